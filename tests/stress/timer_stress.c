/* SPDX-License-Identifier: MIT */
/*
 * Timer-wheel stress: timers armed, cancelled and fired across workers.
 *
 * Each round starts a runtime (1-4 workers, LIFO slot on or off) and many
 * tasks, each running a random script of:
 *   - sleeps of 0..1.5 ms (some already due), never early;
 *   - weft_timeout of a short sleep against a random deadline: 0 with the
 *     sleep's result, or -ETIMEDOUT with the inner untouched, never early;
 *   - weft_timeout of a 10 s sleep against a short deadline: -ETIMEDOUT,
 *     the long timer dropped;
 *   - a sleep the task keeps yielding over (each yield puts it at the back
 *     of its worker's queue, where idle workers steal it), so the timer
 *     fires on the arming worker while the task is queued, stolen or
 *     running elsewhere; some polls also wake the task spuriously;
 *   - intervals of random mode and period, checked against
 *     weft_missed_tick's rules (never early; BURST one period on, SKIP a
 *     whole number of periods on, DELAY at least one);
 *   - spawning a detached child that sleeps.
 * Meanwhile a foreign thread aborts tasks at random. The round ends with
 * the scripts joined, everything aborted, or the runtime shut down while
 * every task waits in a long sleep.
 *
 * Checks: the above on every op (on the workers), join results (the
 * script's length, or -ECANCELED only where an abort or shutdown allows
 * it), every task and child dropped exactly once, and under ASan no
 * use-after-free or leak: a timer disarmed by a drop on another worker
 * must never fire into freed memory.
 *
 * Usage: timer_stress [seed]; WEFT_STRESS_SCALE / _SECONDS: stress.h.
 */
#include <weft.h>

#include "stress.h"

#define MAX_TASKS 96
#define US 1000ull
#define MS 1000000ull

enum end_mode { END_JOIN, END_ABORT_ALL, END_SHUTDOWN };

struct tslot {
	weft_join *join;
	atomic_int aborted;
	atomic_int drops;
};

struct round {
	weft_runtime *rt;
	unsigned ntasks;
	enum end_mode end;
	unsigned round_no;
	atomic_bool stop;
	atomic_int children_spawned, children_dropped;
	atomic_long fired, timed_out, inner_won, ticks, steals_seen;
	struct tslot t[MAX_TASKS];
};

static struct round R;

static uint64_t below(uint64_t *x, uint64_t n)
{
	return n ? stress_splitmix(x) % n : 0;
}

/* --- a detached child: one sleep ---------------------------------------- */

struct child {
	uint64_t ns;
	/* private */
	int armed;
	uint64_t deadline;
	weft_io io;
};

static weft_poll child_poll(void *self, weft_cx *cx, void *out)
{
	struct child *s = self;
	int64_t res;
	(void)out;
	if (!s->armed) {
		s->deadline = weft_now_ns() + s->ns;
		weft_io_prep_sleep_until(&s->io, s->deadline);
		s->armed = 1;
	}
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	uint64_t now = weft_now_ns();
	STRESS_CHECK(res == 0, "child sleep: %" PRId64, res);
	STRESS_CHECK(now >= s->deadline, "child woke %" PRIu64 " ns early",
		     s->deadline - now);
	return WEFT_READY;
}

static void child_drop(void *self)
{
	weft_io_drop(&((struct child *)self)->io);
	atomic_fetch_add(&R.children_dropped, 1);
}

static const weft_future_desc child_desc = {
	.poll = child_poll,
	.drop = child_drop,
	.size = sizeof(struct child),
};

/* --- the scripted task ---------------------------------------------------- */

enum act { A_SLEEP, A_TIMEOUT, A_LONG, A_STEAL, A_INTERVAL, A_SPAWN, A_N };

struct script {
	unsigned idx;
	unsigned nops;
	uint64_t rng;
	/* private */
	unsigned op;
	int busy;  /* an op is under way */
	int final; /* waiting in the final long sleep (END_SHUTDOWN) */
	enum act act;
	int to_live, iv_live;
	uint64_t deadline, inner_deadline;
	int last_worker;
	unsigned yields;
	weft_yield y;
	weft_io sleep;
	weft_io inner;
	int64_t inner_out;
	weft_timeout to;
	weft_interval iv;
	uint64_t period;
	weft_missed_tick mode;
	int ticks_left;
	int64_t last_tick;
};

static void script_start(struct script *s)
{
	uint64_t now = weft_now_ns();
	weft_future f;
	s->act = (enum act)below(&s->rng, A_N);
	switch (s->act) {
	case A_SLEEP:
		/* One in eight already due, or due within the tick. */
		s->deadline = now + below(&s->rng, 1500 * US);
		if (below(&s->rng, 8) == 0)
			s->deadline = now - below(&s->rng, 100 * US);
		weft_io_prep_sleep_until(&s->sleep, s->deadline);
		break;
	case A_TIMEOUT:
	case A_LONG:
		s->inner_out = INT64_MIN;
		s->deadline = now + below(&s->rng, 800 * US);
		if (s->act == A_LONG)
			s->inner_deadline = now + 10000 * MS;
		else
			s->inner_deadline = now + below(&s->rng, 800 * US);
		weft_io_prep_sleep_until(&s->inner, s->inner_deadline);
		weft_future_init(&f, &weft_io_desc, &s->inner, &s->inner_out);
		STRESS_CHECK(weft_timeout_init_until(&s->to, &f,
						     s->deadline) == 0,
			     "timeout_init");
		s->to_live = 1;
		break;
	case A_STEAL:
		s->deadline = now + 100 * US + below(&s->rng, 500 * US);
		weft_io_prep_sleep_until(&s->sleep, s->deadline);
		s->yields = 0;
		s->last_worker = weft_worker_index();
		break;
	case A_INTERVAL:
		s->period = 100 * US + below(&s->rng, 400 * US);
		s->mode = (weft_missed_tick)below(&s->rng, 3);
		s->ticks_left = 2 + (int)below(&s->rng, 4);
		s->last_tick = -1;
		STRESS_CHECK(weft_interval_init(&s->iv,
						now + below(&s->rng, 300 * US),
						s->period, s->mode) == 0,
			     "interval_init");
		s->iv_live = 1;
		break;
	case A_SPAWN:
	case A_N:
		break;
	}
	s->busy = 1;
}

static void check_tick(struct script *s, int64_t d)
{
	uint64_t now = weft_now_ns();
	STRESS_CHECK(d >= 0, "tick: %s", weft_strerror((int)d));
	STRESS_CHECK(now >= (uint64_t)d, "tick %" PRIu64 " ns early",
		     (uint64_t)d - now);
	if (s->last_tick >= 0) {
		uint64_t gap = (uint64_t)(d - s->last_tick);
		STRESS_CHECK(d > s->last_tick && gap >= s->period,
			     "mode %d: tick %" PRIu64 " ns after the last, "
			     "period %" PRIu64, (int)s->mode, gap, s->period);
		STRESS_CHECK(s->mode != WEFT_MISSED_BURST || gap == s->period,
			     "BURST gap %" PRIu64 ", period %" PRIu64, gap,
			     s->period);
		STRESS_CHECK(s->mode != WEFT_MISSED_SKIP ||
				     gap % s->period == 0,
			     "SKIP gap %" PRIu64 ", period %" PRIu64, gap,
			     s->period);
	}
	s->last_tick = d;
	atomic_fetch_add_explicit(&R.ticks, 1, memory_order_relaxed);
}

static void check_timeout(struct script *s, int res)
{
	uint64_t now = weft_now_ns();
	s->to_live = 0;
	if (res == 0) {
		STRESS_CHECK(s->act == A_TIMEOUT,
			     "a 10 s sleep beat a short deadline");
		STRESS_CHECK(s->inner_out == 0, "inner won with %" PRId64,
			     s->inner_out);
		STRESS_CHECK(now >= s->inner_deadline,
			     "inner sleep %" PRIu64 " ns early",
			     s->inner_deadline - now);
		atomic_fetch_add_explicit(&R.inner_won, 1,
					  memory_order_relaxed);
		return;
	}
	STRESS_CHECK(res == -ETIMEDOUT, "timeout: %d", res);
	STRESS_CHECK(s->inner_out == INT64_MIN,
		     "-ETIMEDOUT, yet the inner wrote %" PRId64, s->inner_out);
	STRESS_CHECK(now >= s->deadline, "timed out %" PRIu64 " ns early",
		     s->deadline - now);
	atomic_fetch_add_explicit(&R.timed_out, 1, memory_order_relaxed);
}

/* Run the current op; WEFT_READY once it is done. */
static weft_poll script_step(struct script *s, weft_cx *cx)
{
	int64_t res, d;
	int r;
	switch (s->act) {
	case A_SLEEP:
		if (weft_io_poll(&s->sleep, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		STRESS_CHECK(res == 0, "sleep: %" PRId64, res);
		STRESS_CHECK(weft_now_ns() >= s->deadline, "sleep early");
		atomic_fetch_add_explicit(&R.fired, 1, memory_order_relaxed);
		return WEFT_READY;
	case A_TIMEOUT:
	case A_LONG:
		if (weft_timeout_poll(&s->to, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		check_timeout(s, r);
		return WEFT_READY;
	case A_STEAL:
		if (weft_worker_index() != s->last_worker) {
			atomic_fetch_add_explicit(&R.steals_seen, 1,
						  memory_order_relaxed);
			s->last_worker = weft_worker_index();
		}
		if (weft_io_poll(&s->sleep, cx, &res) == WEFT_READY) {
			STRESS_CHECK(res == 0, "sleep: %" PRId64, res);
			STRESS_CHECK(weft_now_ns() >= s->deadline,
				     "sleep early after %u yields", s->yields);
			return WEFT_READY;
		}
		/* Yield while the timer is armed: back of the queue. */
		if (s->yields++ < 64 || below(&s->rng, 4) == 0) {
			s->y = (weft_yield)WEFT_YIELD_INIT;
			(void)weft_yield_poll(&s->y, cx);
		} else if (below(&s->rng, 2) == 0) {
			weft_waker_wake_by_ref(weft_cx_waker(cx));
		}
		return WEFT_PENDING;
	case A_INTERVAL:
		while (s->ticks_left > 0) {
			if (weft_interval_tick(&s->iv, cx, &d) == WEFT_PENDING)
				return WEFT_PENDING;
			check_tick(s, d);
			s->ticks_left--;
		}
		weft_interval_drop(&s->iv);
		s->iv_live = 0;
		return WEFT_READY;
	case A_SPAWN: {
		struct child c = { .ns = below(&s->rng, 3 * MS) };
		int err = weft_spawn(NULL, &child_desc, &c, NULL);
		if (err == 0)
			atomic_fetch_add(&R.children_spawned, 1);
		else
			STRESS_CHECK(err == -ESHUTDOWN, "spawn child: %s",
				     weft_strerror(err));
		return WEFT_READY;
	}
	case A_N:
		break;
	}
	return WEFT_READY;
}

static weft_poll script_poll(void *self, weft_cx *cx, void *out)
{
	struct script *s = self;
	int64_t res;
	for (;;) {
		if (s->final) {
			if (weft_io_poll(&s->sleep, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			stress_fail("task %u: a 60 s sleep fired", s->idx);
		}
		if (!s->busy) {
			if (s->op == s->nops) {
				if (R.end != END_SHUTDOWN) {
					*(int64_t *)out = s->op;
					return WEFT_READY;
				}
				weft_io_prep_sleep(&s->sleep, 60000 * MS);
				s->final = 1;
				stress_progress();
				continue;
			}
			script_start(s);
		}
		if (script_step(s, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		s->busy = 0;
		s->op++;
		stress_progress();
	}
}

static void script_drop(void *self)
{
	struct script *s = self;
	if (s->to_live)
		weft_timeout_drop(&s->to);
	if (s->iv_live)
		weft_interval_drop(&s->iv);
	weft_io_drop(&s->sleep);
	weft_io_drop(&s->inner);
	atomic_fetch_add(&R.t[s->idx].drops, 1);
}

static const weft_future_desc script_desc = {
	.poll = script_poll,
	.drop = script_drop,
	.size = sizeof(struct script),
	.output_size = sizeof(int64_t),
};

/* --- the aborter ------------------------------------------------------------ */

static void abort_task(unsigned i)
{
	atomic_store(&R.t[i].aborted, 1);
	weft_task_abort(R.t[i].join);
}

static void *aborter_main(void *arg)
{
	struct stress_rng rng;
	(void)arg;
	stress_rng_init(&rng, 7000 + R.round_no);
	while (!atomic_load(&R.stop)) {
		stress_sleep_us((unsigned)stress_below(&rng, 3000));
		if (stress_chance(&rng, 60))
			abort_task((unsigned)stress_below(&rng, R.ntasks));
	}
	return NULL;
}

/* --- one round -------------------------------------------------------------- */

static void run_round(struct stress_rng *rng)
{
	unsigned workers = 1 + (unsigned)stress_below(rng, 4);
	bool no_lifo = stress_chance(rng, 50);
	unsigned i;

	memset(R.t, 0, sizeof(R.t));
	R.ntasks = 8 + (unsigned)stress_below(rng, MAX_TASKS - 7);
	R.end = (enum end_mode)stress_below(rng, 3);
	atomic_store(&R.stop, false);
	atomic_store(&R.children_spawned, 0);
	atomic_store(&R.children_dropped, 0);
	R.rt = stress_runtime(workers, no_lifo);

	stress_set_phase("spawn");
	for (i = 0; i < R.ntasks; i++) {
		struct script s = {
			.idx = i,
			.nops = 4 + (unsigned)stress_below(rng, 30),
			.rng = stress_rand(rng),
		};
		STRESS_CHECK(weft_spawn(R.rt, &script_desc, &s,
					&R.t[i].join) == 0, "spawn");
	}

	stress_set_phase("run");
	pthread_t ab;
	STRESS_CHECK(pthread_create(&ab, NULL, aborter_main, NULL) == 0,
		     "pthread_create");
	stress_sleep_us(2000 + (unsigned)stress_below(rng, 30000));
	atomic_store(&R.stop, true);
	pthread_join(ab, NULL);

	stress_set_phase("end");
	if (R.end == END_ABORT_ALL)
		for (i = 0; i < R.ntasks; i++)
			abort_task(i);
	if (R.end == END_SHUTDOWN)
		STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");

	stress_set_phase("join");
	for (i = 0; i < R.ntasks; i++) {
		struct tslot *t = &R.t[i];
		int64_t out = -1;
		int st = stress_join_wait(t->join, &out);
		if (st == -ECANCELED)
			STRESS_CHECK(R.end != END_JOIN ||
					     atomic_load(&t->aborted),
				     "round %u task %u cancelled without abort",
				     R.round_no, i);
		else
			STRESS_CHECK(st == 0 && R.end != END_SHUTDOWN &&
					     out > 0,
				     "round %u task %u: join %d, output %"
				     PRId64, R.round_no, i, st, out);
		weft_join_drop(t->join);
	}

	stress_set_phase("free");
	STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
	weft_runtime_free(R.rt);
	R.rt = NULL;
	for (i = 0; i < R.ntasks; i++)
		STRESS_CHECK(atomic_load(&R.t[i].drops) == 1,
			     "round %u task %u dropped %d times", R.round_no,
			     i, atomic_load(&R.t[i].drops));
	STRESS_CHECK(atomic_load(&R.children_dropped) ==
			     atomic_load(&R.children_spawned),
		     "round %u: %d children spawned, %d dropped", R.round_no,
		     atomic_load(&R.children_spawned),
		     atomic_load(&R.children_dropped));
	if (stress_verbose)
		printf("round %u: %u workers%s, %u tasks, end %d\n", R.round_no,
		       workers, no_lifo ? " (no LIFO)" : "", R.ntasks,
		       (int)R.end);
}

int main(int argc, char **argv)
{
	struct stress_rng rng;
	unsigned round;
	uint64_t rounds_max;

	stress_init("timer_stress", argc, argv);
	rounds_max = stress_iters(STRESS_TSAN ? 150 : 400);
	stress_rng_init(&rng, 0);
	for (round = 0; round < rounds_max && stress_time_left(); round++) {
		R.round_no = round;
		run_round(&rng);
		stress_progress();
	}
	return stress_finish("%u rounds: %ld sleeps, %ld timeouts (%ld inner "
			     "won), %ld ticks, %ld moves seen", round,
			     atomic_load(&R.fired), atomic_load(&R.timed_out),
			     atomic_load(&R.inner_won), atomic_load(&R.ticks),
			     atomic_load(&R.steals_seen));
}
