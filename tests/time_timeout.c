/* SPDX-License-Identifier: MIT */
/*
 * weft_timeout (weft/time.h): a future with a deadline.
 *
 *  - the inner future wins: its output, result 0, and the timer is gone;
 *  - the deadline wins: -ETIMEDOUT no earlier than the deadline, the inner
 *    future dropped exactly once by the time the timeout is READY, its
 *    output untouched; an inner recv is cancelled in flight and consumed
 *    nothing (data sent afterwards is read whole by a new recv);
 *  - ties: an inner future that is ready when the deadline is noticed
 *    wins; a deadline already past with an inner future ready at once too;
 *  - races: the inner future completing at about the deadline, from a task
 *    on another worker or from a timer of its own, many times: 0 with the
 *    output or -ETIMEDOUT with the inner dropped, never both or neither;
 *  - aborting a task whose timeout is pending, nesting, the generic
 *    descriptor, argument errors and a poll off a worker.
 */
#include <sys/socket.h>

#include "io_helpers.h"

#define MS WT_MS

/* --- a task running one timeout over an inner future of any kind -------- */

#define IN_STATE 192
#define IN_OUT 16

/* What a losing inner future leaves in its output: untouched bytes. */
#define UNTOUCHED 0xa5

struct to_task {
	const weft_future_desc *desc;             /* the inner future */
	_Alignas(16) unsigned char st[IN_STATE];  /* its state (copied) */
	uint64_t ns;                              /* timeout from the init */
	int until;                                /* 1: @deadline instead */
	uint64_t deadline;
	struct wt_counters *c; /* the inner's counters, or NULL */
	/* private */
	int started;
	int polls;
	uint64_t t_init;
	_Alignas(16) unsigned char out[IN_OUT];
	weft_timeout t;
};

struct to_out {
	int res;
	int polls;
	int drops_at_ready; /* the inner's drops when READY; -1: unknown */
	uint64_t t_init, t_done;
	_Alignas(16) unsigned char out[IN_OUT];
};

static weft_poll to_poll(void *self, weft_cx *cx, void *out)
{
	struct to_task *s = self;
	struct to_out *o = out;
	int res = 12345;
	if (!s->started) {
		weft_future f;
		memset(s->out, UNTOUCHED, sizeof(s->out));
		WT_CHECK(weft_future_init(&f, s->desc, s->st, s->out) == 0,
			 "future_init");
		s->t_init = weft_now_ns();
		if (s->until)
			WT_CHECK(weft_timeout_init_until(&s->t, &f,
							 s->deadline) == 0,
				 "timeout_init_until");
		else
			WT_CHECK(weft_timeout_init(&s->t, &f, s->ns) == 0,
				 "timeout_init");
		s->started = 1;
	}
	s->polls++;
	if (weft_timeout_poll(&s->t, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	o->t_done = weft_now_ns();
	o->res = res;
	o->polls = s->polls;
	o->drops_at_ready = s->c ? atomic_load(&s->c->drops) : -1;
	o->t_init = s->t_init;
	memcpy(o->out, s->out, sizeof(o->out));
	return WEFT_READY;
}

static void to_drop(void *self)
{
	struct to_task *s = self;
	if (s->started)
		weft_timeout_drop(&s->t);
	else if (s->desc->drop)
		s->desc->drop(s->st);
}

static const weft_future_desc to_desc = {
	.poll = to_poll,
	.drop = to_drop,
	.size = sizeof(struct to_task),
	.output_size = sizeof(struct to_out),
};

static struct to_task to_make(const weft_future_desc *desc, const void *st,
			      uint64_t ns, struct wt_counters *c)
{
	struct to_task t = { .desc = desc, .ns = ns, .c = c };
	cr_assert_leq(desc->size, IN_STATE);
	cr_assert_leq(desc->output_size, IN_OUT);
	memcpy(t.st, st, desc->size);
	return t;
}

static struct to_out to_run(weft_runtime *rt, const struct to_task *t)
{
	struct to_out o = { .res = 12345 };
	wt_block_on(rt, &to_desc, t, &o);
	return o;
}

static int64_t out_i64(const struct to_out *o)
{
	int64_t v;
	memcpy(&v, o->out, sizeof(v));
	return v;
}

static bool out_untouched(const struct to_out *o)
{
	for (size_t i = 0; i < sizeof(o->out); i++)
		if (o->out[i] != UNTOUCHED)
			return false;
	return true;
}


/* A weft_io recv of up to @len bytes from @fd into @buf, as inner state. */
static weft_io recv_io(int fd, void *buf, size_t len)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_recv(&io, fd, buf, len, 0), 0);
	return io;
}

/* --- the inner future wins ---------------------------------------------- */

WT_RT_TEST(timeout, inner_wins_with_its_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_value v = wt_value_init(42, 3, &c);
	struct to_task t = to_make(&wt_value_desc, &v, 5000 * MS, &c);
	uint64_t t0 = wt_mono_ns();
	struct to_out o = to_run(rt, &t);
	cr_expect_eq(o.res, 0, "timeout: %d", o.res);
	cr_expect_eq(out_i64(&o), 42);
	cr_expect_eq(atomic_load(&c.readies), 1);
	cr_expect_eq(o.drops_at_ready, 1, "inner dropped %d times",
		     o.drops_at_ready);
	/* Neither the wait nor the shutdown waited for the 5 s timer. */
	cr_expect_lt(wt_mono_ns() - t0, 2000 * MS);
	wt_rt_free_prompt(rt);
	cr_expect_eq(atomic_load(&c.drops), 1);
}

WT_RT_TEST(timeout, inner_recv_wins_before_deadline)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[64] = { 0 };
	weft_io io = recv_io(sv[0], buf, sizeof(buf));
	struct to_task t = to_make(&weft_io_desc, &io, 5000 * MS, NULL);
	weft_join *j;
	wt_spawn(rt, &to_desc, &t, &j);
	wt_sleep_ms(20);
	cr_assert_eq(send(sv[1], "hello", 5, MSG_NOSIGNAL), 5);
	struct to_out o = { .res = 12345 };
	int st = 1;
	wt_join_wait(j, &st, &o);
	weft_join_drop(j);
	cr_expect_eq(st, 0);
	cr_expect_eq(o.res, 0, "timeout: %d", o.res);
	cr_expect_eq(out_i64(&o), 5, "recv: %lld", (long long)out_i64(&o));
	cr_expect_eq(memcmp(buf, "hello", 5), 0);
	cr_expect_lt(o.t_done - o.t_init, 4000 * MS);
	wt_rt_pair_close(&fx);
}

/* --- the deadline wins -------------------------------------------------- */

WT_RT_TEST(timeout, deadline_wins_inner_dropped_once)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_forever f = { &c };
	struct to_task t = to_make(&wt_forever_desc, &f, 15 * MS, &c);
	struct to_out o = to_run(rt, &t);
	cr_expect_eq(o.res, -ETIMEDOUT, "timeout: %d", o.res);
	cr_expect_geq(o.t_done, o.t_init + 15 * MS, "timed out %llu us early",
		      (unsigned long long)((o.t_init + 15 * MS - o.t_done) /
					   1000));
	cr_expect_lt(o.t_done - o.t_init, 15 * MS + 1000 * MS);
	cr_expect_eq(o.drops_at_ready, 1,
		     "inner dropped %d times by the time of -ETIMEDOUT",
		     o.drops_at_ready);
	cr_expect_geq(atomic_load(&c.polls), 1);
	cr_expect(out_untouched(&o), "the losing inner wrote an output");
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&c.drops), 1);
}

/*
 * An inner recv with nothing to read loses: it is cancelled in flight
 * (the op counters catch up: its CQE came long before data could), and
 * it consumed nothing: what is sent afterwards is read whole by a new
 * recv.
 */
WT_RT_TEST(timeout, deadline_wins_recv_cancelled_nothing_lost)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[64], buf2[64] = { 0 };
	memset(buf, 0xee, sizeof(buf));
	weft_io io = recv_io(sv[0], buf, sizeof(buf));
	struct to_task t = to_make(&weft_io_desc, &io, 30 * MS, NULL);
	struct to_out o = to_run(rt, &t);
	cr_expect_eq(o.res, -ETIMEDOUT, "timeout: %d (recv %lld)", o.res,
		     (long long)out_i64(&o));
	cr_expect_geq(o.t_done, o.t_init + 30 * MS);
	cr_expect(out_untouched(&o), "the cancelled recv wrote a result");
	cr_expect(wt_ops_quiesce(rt, 3000), "the recv was not cancelled");
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0xee, "cancelled recv wrote byte %zu", i);

	cr_assert_eq(send(sv[1], "later", 5, MSG_NOSIGNAL), 5);
	weft_io again = recv_io(sv[0], buf2, sizeof(buf2));
	int64_t n = wt_op_run(rt, &again);
	cr_expect_eq(n, 5, "recv after the timeout: %lld", (long long)n);
	cr_expect_eq(memcmp(buf2, "later", 5), 0);
	wt_rt_pair_close(&fx);
}

/* --- deadlines already past, and ties ----------------------------------- */

WT_RT_TEST(timeout, past_deadline_inner_ready_at_once_wins)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_value v = wt_value_init(9, 0, &c);
	struct to_task t = to_make(&wt_value_desc, &v, 0, &c);
	t.until = 1;
	t.deadline = 1;
	struct to_out o = to_run(rt, &t);
	cr_expect_eq(o.res, 0, "the inner future is polled first: %d", o.res);
	cr_expect_eq(out_i64(&o), 9);
	cr_expect_eq(o.polls, 1);
	wt_rt_free(rt);
}

WT_RT_TEST(timeout, past_deadline_inner_pending_times_out_at_once)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_forever f = { &c };
	struct to_task t = to_make(&wt_forever_desc, &f, 0, &c);
	t.until = 1;
	t.deadline = weft_now_ns() - 5 * MS;
	struct to_out o = to_run(rt, &t);
	cr_expect_eq(o.res, -ETIMEDOUT, "timeout: %d", o.res);
	cr_expect_eq(o.polls, 1, "a past deadline waited (%d polls)",
		     o.polls);
	cr_expect_eq(atomic_load(&c.polls), 1, "the inner was not polled once");
	cr_expect_eq(o.drops_at_ready, 1);
	wt_rt_free(rt);
}

/*
 * A flag: an inner future READY with @value once @f->set, else PENDING
 * with its waker stored in @f. Whoever sets the flag may wake that waker
 * or leave it (the inner's drop releases it).
 */
struct flag {
	atomic_int set;
	atomic_flag lock;
	weft_waker waker;
};

static void flag_lock(struct flag *f)
{
	while (atomic_flag_test_and_set_explicit(&f->lock,
						 memory_order_acquire))
		sched_yield();
}

static void flag_unlock(struct flag *f)
{
	atomic_flag_clear_explicit(&f->lock, memory_order_release);
}

/* Set @f; wake its waiter if @wake. Any thread. */
static void flag_raise(struct flag *f, int wake)
{
	weft_waker w = WEFT_WAKER_EMPTY;
	atomic_store(&f->set, 1);
	if (!wake)
		return;
	flag_lock(f);
	w = f->waker;
	f->waker = WEFT_WAKER_EMPTY;
	flag_unlock(f);
	weft_waker_wake(&w);
}

struct flag_wait {
	struct flag *f;
	int64_t value;
	struct wt_counters *c;
};

static weft_poll flag_wait_poll(void *self, weft_cx *cx, void *out)
{
	struct flag_wait *s = self;
	atomic_fetch_add(&s->c->polls, 1);
	if (!atomic_load(&s->f->set)) {
		flag_lock(s->f);
		weft_waker_drop(&s->f->waker);
		s->f->waker = weft_waker_clone(weft_cx_waker(cx));
		flag_unlock(s->f);
		if (!atomic_load(&s->f->set))
			return WEFT_PENDING;
	}
	*(int64_t *)out = s->value;
	atomic_fetch_add(&s->c->readies, 1);
	return WEFT_READY;
}

static void flag_wait_drop(void *self)
{
	struct flag_wait *s = self;
	flag_lock(s->f);
	weft_waker_drop(&s->f->waker);
	flag_unlock(s->f);
	atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc flag_wait_desc = {
	.poll = flag_wait_poll,
	.drop = flag_wait_drop,
	.size = sizeof(struct flag_wait),
	.output_size = sizeof(int64_t),
};

/*
 * The flag is raised without a wake, so the task is next polled when the
 * deadline fires: the inner future is ready by then and is polled first,
 * so it wins (weft/time.h).
 */
WT_RT_TEST(timeout, inner_ready_when_deadline_noticed_wins)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct flag fl = { .lock = ATOMIC_FLAG_INIT };
	struct flag_wait fw = { &fl, 77, &c };
	struct to_task t = to_make(&flag_wait_desc, &fw, 40 * MS, &c);
	weft_join *j;
	wt_spawn(rt, &to_desc, &t, &j);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	flag_raise(&fl, 0);
	struct to_out o = { .res = 12345 };
	int st = 1;
	wt_join_wait(j, &st, &o);
	weft_join_drop(j);
	cr_expect_eq(o.res, 0, "the ready inner lost to the deadline: %d",
		     o.res);
	cr_expect_eq(out_i64(&o), 77);
	cr_expect_eq(o.drops_at_ready, 1);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&c.drops), 1);
}

/* --- races: the inner future completes at about the deadline ------------ */

/* A sleep as an inner future with counters: output @value when READY. */
struct counted_sleep {
	weft_io io;
	int64_t value;
	struct wt_counters *c;
};

static weft_poll counted_sleep_poll(void *self, weft_cx *cx, void *out)
{
	struct counted_sleep *s = self;
	int64_t res;
	atomic_fetch_add(&s->c->polls, 1);
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	WT_CHECK(res == 0, "inner sleep: %lld", (long long)res);
	*(int64_t *)out = s->value;
	atomic_fetch_add(&s->c->readies, 1);
	return WEFT_READY;
}

static void counted_sleep_drop(void *self)
{
	struct counted_sleep *s = self;
	weft_io_drop(&s->io);
	atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc counted_sleep_desc = {
	.poll = counted_sleep_poll,
	.drop = counted_sleep_drop,
	.size = sizeof(struct counted_sleep),
	.output_size = sizeof(int64_t),
};

/* A task that sleeps until @at, then raises @f with a wake. */
struct raiser {
	struct flag *f;
	uint64_t at;
	/* private */
	int armed;
	weft_io io;
};

static weft_poll raiser_poll(void *self, weft_cx *cx, void *out)
{
	struct raiser *s = self;
	int64_t res;
	(void)out;
	if (!s->armed) {
		weft_io_prep_sleep_until(&s->io, s->at);
		s->armed = 1;
	}
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	flag_raise(s->f, 1);
	return WEFT_READY;
}

static void raiser_drop(void *self)
{
	weft_io_drop(&((struct raiser *)self)->io);
}

static const weft_future_desc raiser_desc = {
	.poll = raiser_poll,
	.drop = raiser_drop,
	.size = sizeof(struct raiser),
};

struct race_stats {
	atomic_int wins, timeouts;
};

/*
 * Iteration after iteration: a timeout to D (150..450 us ahead) over an
 * inner future that completes at D +- 200 us: a flag raised by a task
 * that may run on another worker, or a sleep of its own. Checked at each
 * READY: exactly one outcome, the inner dropped exactly once, nothing
 * written by a loser, never early. The raiser is joined before the next
 * iteration reuses the flag. Never cancelled: the raiser points into this
 * state.
 */
struct racer {
	unsigned iters;
	uint64_t seed;
	uint64_t end_ns; /* stop early past this time (slow builds) */
	struct race_stats *stats;
	/* private */
	unsigned i;
	int phase;
	uint64_t deadline;
	struct flag fl;
	struct wt_counters c;
	weft_join *raiser;
	union {
		struct flag_wait fw;
		struct counted_sleep cs;
	} in;
	int64_t in_out;
	weft_timeout t;
};

static uint64_t rnd(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void racer_start(struct racer *s)
{
	uint64_t r = rnd(&s->seed);
	uint64_t now = weft_now_ns();
	weft_future f;
	s->deadline = now + 150000 + r % 300000;
	uint64_t at = s->deadline - 200000 + (r >> 20) % 400000;
	memset(&s->c, 0, sizeof(s->c));
	s->in_out = INT64_MIN;
	atomic_store(&s->fl.set, 0);
	if ((r >> 40) & 1) {
		struct raiser rs = { .f = &s->fl, .at = at };
		WT_CHECK(weft_spawn(NULL, &raiser_desc, &rs, &s->raiser) == 0,
			 "spawn raiser");
		s->in.fw = (struct flag_wait){ &s->fl, s->i + 1, &s->c };
		weft_future_init(&f, &flag_wait_desc, &s->in.fw, &s->in_out);
	} else {
		memset(&s->in.cs, 0, sizeof(s->in.cs));
		s->in.cs.value = s->i + 1;
		s->in.cs.c = &s->c;
		weft_io_prep_sleep_until(&s->in.cs.io, at);
		weft_future_init(&f, &counted_sleep_desc, &s->in.cs,
				 &s->in_out);
	}
	WT_CHECK(weft_timeout_init_until(&s->t, &f, s->deadline) == 0,
		 "init");
}

static void racer_check(struct racer *s, int res)
{
	uint64_t now = weft_now_ns();
	WT_CHECK(atomic_load(&s->c.drops) == 1,
		 "iteration %u: inner dropped %d times at READY (res %d)", s->i,
		 atomic_load(&s->c.drops), res);
	if (res == 0) {
		WT_CHECK(atomic_load(&s->c.readies) == 1 &&
				 s->in_out == (int64_t)s->i + 1,
			 "iteration %u: 0 but the inner gave %lld (%d readies)",
			 s->i, (long long)s->in_out,
			 atomic_load(&s->c.readies));
		atomic_fetch_add(&s->stats->wins, 1);
		return;
	}
	WT_CHECK(res == -ETIMEDOUT, "iteration %u: result %d", s->i, res);
	WT_CHECK(atomic_load(&s->c.readies) == 0 && s->in_out == INT64_MIN,
		 "iteration %u: -ETIMEDOUT and the inner finished too "
		 "(%lld, %d readies)", s->i, (long long)s->in_out,
		 atomic_load(&s->c.readies));
	WT_CHECK(now >= s->deadline, "iteration %u: timed out %llu ns early",
		 s->i, (unsigned long long)(s->deadline - now));
	atomic_fetch_add(&s->stats->timeouts, 1);
}

static weft_poll racer_poll(void *self, weft_cx *cx, void *out)
{
	struct racer *s = self;
	int res, st;
	for (;;) {
		switch (s->phase) {
		case 0:
			if (s->i == s->iters || weft_now_ns() > s->end_ns) {
				*(int64_t *)out = s->i;
				return WEFT_READY;
			}
			racer_start(s);
			s->phase = 1;
			/* fall through */
		case 1:
			if (weft_timeout_poll(&s->t, cx, &res) == WEFT_PENDING)
				return WEFT_PENDING;
			racer_check(s, res);
			weft_timeout_drop(&s->t); /* after READY: nothing */
			WT_CHECK(atomic_load(&s->c.drops) == 1,
				 "drop after READY dropped the inner again");
			s->phase = 2;
			/* fall through */
		case 2:
			if (s->raiser) {
				if (weft_join_poll(s->raiser, cx, &st, NULL) ==
				    WEFT_PENDING)
					return WEFT_PENDING;
				WT_CHECK(st == 0, "raiser: %d", st);
				weft_join_drop(s->raiser);
				s->raiser = NULL;
			}
			WT_CHECK(s->fl.waker.vtable == NULL,
				 "iteration %u left a waker behind", s->i);
			s->i++;
			s->phase = 0;
		}
	}
}

static const weft_future_desc racer_desc = {
	.poll = racer_poll,
	.size = sizeof(struct racer),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST_T(timeout, races_inner_completing_at_deadline, 60)
{
	enum { RACERS = 2, ITERS = 600 };
	weft_runtime *rt = wt_rt_new(cfg);
	struct race_stats stats = { 0 };
	weft_join *j[RACERS];
	uint64_t end = weft_now_ns() + 8000 * MS;
	for (int i = 0; i < RACERS; i++) {
		struct racer r = { .iters = ITERS,
				   .seed = 7 + (uint64_t)i * 1000 +
					   cfg->workers * 10 + cfg->flags,
				   .end_ns = end, .stats = &stats };
		wt_spawn(rt, &racer_desc, &r, &j[i]);
	}
	int64_t done = 0;
	for (int i = 0; i < RACERS; i++) {
		int64_t n = -1;
		int st = 1;
		cr_assert(wt_join_wait_ms(j[i], &st, &n, 30000),
			  "racer %d stuck", i);
		cr_assert_eq(st, 0);
		done += n;
		weft_join_drop(j[i]);
	}
	int w = atomic_load(&stats.wins), t = atomic_load(&stats.timeouts);
	cr_log_info("%lld iterations: inner won %d, deadline won %d",
		    (long long)done, w, t);
	cr_expect_eq(w + t, done);
	cr_expect_gt(done, 50, "only %lld iterations ran", (long long)done);
	wt_rt_free(rt);
}

/* --- cancelling a pending timeout ---------------------------------------- */

WT_RT_TEST(timeout, abort_with_timeout_pending_cancels_inner)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[64];
	struct wt_counters c = { 0 };
	/* Two tasks: a pending recv inside, and a pending probe inside. */
	weft_io io = recv_io(sv[0], buf, sizeof(buf));
	struct to_task t1 = to_make(&weft_io_desc, &io, 10000 * MS, NULL);
	struct wt_forever f = { &c };
	struct to_task t2 = to_make(&wt_forever_desc, &f, 10000 * MS, &c);
	weft_join *j1, *j2;
	wt_spawn(rt, &to_desc, &t1, &j1);
	wt_spawn(rt, &to_desc, &t2, &j2);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	wt_sleep_ms(5); /* let the recv be submitted too */
	weft_task_abort(j1);
	weft_task_abort(j2);
	int st1 = 1, st2 = 1;
	wt_join_wait(j1, &st1, NULL);
	wt_join_wait(j2, &st2, NULL);
	cr_expect_eq(st1, -ECANCELED);
	cr_expect_eq(st2, -ECANCELED);
	weft_join_drop(j1);
	weft_join_drop(j2);
	cr_expect_eq(atomic_load(&c.drops), 1);
	cr_expect(wt_ops_quiesce(rt, 3000), "the recv was not cancelled");
	/* Nothing consumed: data sent now stays in the socket. */
	cr_assert_eq(send(sv[1], "x", 1, MSG_NOSIGNAL), 1);
	char got;
	cr_expect_eq(recv(sv[0], &got, 1, MSG_DONTWAIT), 1);
	wt_rt_pair_close(&fx);
}

WT_RT_TEST(timeout, shutdown_with_timeouts_pending)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	enum { N = 64 };
	for (int i = 0; i < N; i++) {
		struct wt_forever f = { &c };
		struct to_task t = to_make(&wt_forever_desc, &f,
					   3600000 * MS, &c);
		wt_spawn(rt, &to_desc, &t, NULL);
	}
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, N, 5000), N);
	wt_rt_free_prompt(rt);
	cr_expect_eq(atomic_load(&c.drops), N);
}

/* --- nesting and the generic descriptor ---------------------------------- */

/*
 * An outer timeout over an inner one (weft_timeout_desc as the inner
 * future) over a recv; everything but the outer timeout (copied into the
 * task before its first poll) stays in the test frame.
 */
struct nested {
	weft_io io;
	int64_t recv_out;
	weft_timeout inner;
	int inner_res;
	weft_timeout outer;
	int res;
	uint64_t t0, t1;
};

static void run_nested(weft_runtime *rt, struct nested *n, int fd, void *buf,
		       uint64_t inner_ns, uint64_t outer_ns)
{
	weft_future rf, tf;
	memset(n, 0, sizeof(*n));
	n->recv_out = INT64_MIN;
	n->inner_res = n->res = 12345;
	cr_assert_eq(weft_io_prep_recv(&n->io, fd, buf, 16, 0), 0);
	cr_assert_eq(weft_future_init(&rf, &weft_io_desc, &n->io,
				      &n->recv_out), 0);
	n->t0 = weft_now_ns();
	cr_assert_eq(weft_timeout_init(&n->inner, &rf, inner_ns), 0);
	cr_assert_eq(weft_future_init(&tf, &weft_timeout_desc, &n->inner,
				      &n->inner_res), 0);
	cr_assert_eq(weft_timeout_init(&n->outer, &tf, outer_ns), 0);
	wt_block_on(rt, &weft_timeout_desc, &n->outer, &n->res);
	n->t1 = weft_now_ns();
}

WT_RT_TEST(timeout, nested_outer_deadline_first)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[16];
	struct nested n;
	run_nested(rt, &n, sv[0], buf, 5000 * MS, 20 * MS);
	cr_expect_eq(n.res, -ETIMEDOUT, "outer: %d", n.res);
	cr_expect_geq(n.t1 - n.t0, 20 * MS);
	cr_expect_eq(n.inner_res, 12345, "the dropped inner timeout wrote %d",
		     n.inner_res);
	cr_expect_eq(n.recv_out, INT64_MIN);
	cr_expect(wt_ops_quiesce(rt, 3000), "the recv was not cancelled");
	wt_rt_pair_close(&fx);
}

WT_RT_TEST(timeout, nested_inner_deadline_first)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[16];
	struct nested n;
	run_nested(rt, &n, sv[0], buf, 20 * MS, 5000 * MS);
	cr_expect_eq(n.res, 0, "outer: %d", n.res);
	cr_expect_eq(n.inner_res, -ETIMEDOUT, "inner: %d", n.inner_res);
	cr_expect_geq(n.t1 - n.t0, 20 * MS);
	cr_expect_lt(n.t1 - n.t0, 4000 * MS);
	cr_expect_eq(n.recv_out, INT64_MIN);
	cr_expect(wt_ops_quiesce(rt, 3000), "the recv was not cancelled");
	wt_rt_pair_close(&fx);
}

/* weft_timeout_desc spawned directly, its inner state in the test frame. */
WT_RT_TEST(timeout, generic_descriptor)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_value v = wt_value_init(5, 2, &c);
	int64_t vout = -1;
	weft_future f;
	weft_timeout t;
	int res = 12345;
	memset(&t, 0, sizeof(t));
	cr_assert_eq(weft_future_init(&f, &wt_value_desc, &v, &vout), 0);
	cr_assert_eq(weft_timeout_init(&t, &f, 5000 * MS), 0);
	wt_block_on(rt, &weft_timeout_desc, &t, &res);
	cr_expect_eq(res, 0);
	cr_expect_eq(vout, 5);

	struct wt_forever fv = { &c };
	cr_assert_eq(weft_future_init(&f, &wt_forever_desc, &fv, &vout), 0);
	memset(&t, 0, sizeof(t));
	cr_assert_eq(weft_timeout_init(&t, &f, 10 * MS), 0);
	res = 12345;
	wt_block_on(rt, &weft_timeout_desc, &t, &res);
	cr_expect_eq(res, -ETIMEDOUT);
	cr_expect_eq(atomic_load(&c.drops), 2, "drops: %d",
		     atomic_load(&c.drops));
	cr_expect_eq(weft_timeout_desc.output_size, sizeof(int));
	wt_rt_free(rt);
}

/* --- arguments ----------------------------------------------------------- */

WT_TEST(timeout, argument_errors)
{
	struct wt_counters c = { 0 };
	struct wt_forever fv = { &c };
	int64_t out;
	weft_future f, nodesc;
	weft_timeout t;
	int res;
	memset(&nodesc, 0, sizeof(nodesc));
	memset(&t, 0, sizeof(t));
	cr_assert_eq(weft_future_init(&f, &wt_forever_desc, &fv, &out), 0);
	cr_expect_eq(weft_timeout_init(NULL, &f, MS), -EINVAL);
	cr_expect_eq(weft_timeout_init(&t, NULL, MS), -EINVAL);
	cr_expect_eq(weft_timeout_init(&t, &nodesc, MS), -EINVAL);
	cr_expect_eq(weft_timeout_init_until(NULL, &f, 0), -EINVAL);
	cr_expect_eq(weft_timeout_init_until(&t, NULL, 0), -EINVAL);
	cr_expect_eq(weft_timeout_init_until(&t, &nodesc, 0), -EINVAL);

	weft_waker w;
	weft_cx cx;
	wt_noop_cx(&cx, &w);
	res = 1;
	cr_expect_eq(weft_timeout_poll(NULL, &cx, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	res = 1;
	memset(&t, 0, sizeof(t));
	cr_expect_eq(weft_timeout_poll(&t, &cx, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL, "unprepared timeout: %d", res);
	weft_timeout_drop(NULL);
	cr_expect_eq(atomic_load(&c.polls), 0);
}

/* Off a worker the sleep cannot be armed: READY with -EPERM; the inner
 * future is dropped exactly once, by then or by the drop. */
WT_TEST(timeout, poll_off_worker_is_eperm)
{
	struct wt_counters c = { 0 };
	struct wt_forever fv = { &c };
	int64_t out;
	weft_future f;
	weft_timeout t;
	int res = 1;
	memset(&t, 0, sizeof(t));
	cr_assert_eq(weft_future_init(&f, &wt_forever_desc, &fv, &out), 0);
	cr_assert_eq(weft_timeout_init(&t, &f, 1000 * MS), 0);
	weft_waker w;
	weft_cx cx;
	wt_noop_cx(&cx, &w);
	cr_expect_eq(weft_timeout_poll(&t, &cx, &res), WEFT_READY);
	cr_expect_eq(res, -EPERM, "off a worker: %d", res);
	weft_timeout_drop(&t);
	weft_timeout_drop(&t);
	cr_expect_eq(atomic_load(&c.drops), 1, "inner dropped %d times",
		     atomic_load(&c.drops));
}
