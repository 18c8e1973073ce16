/* SPDX-License-Identifier: MIT */
/*
 * Spawn/wake stress across 2-4 workers, LIFO slot on and off.
 *
 * Each round runs N "receiver" tasks. Every receiver must collect exactly
 * TARGET credits; each credit is handed over with exactly one wake (by
 * value or by reference, through a waker clone the receiver parked in its
 * slot), so a lost wake leaves a receiver short and the watchdog fires.
 * Credits come from foreign threads and from "distributor" tasks (spawned
 * from the main thread and from inside a task), all interleaved. On top:
 * receivers wake each other spuriously, and spawn storms of short-lived
 * children run from inside tasks and from foreign threads (joined there).
 *
 * Checks: every receiver READY exactly once with TARGET credits, every
 * future dropped exactly once, every child spawned completes, all credits
 * delivered; the runtime shuts down and frees with nothing left over
 * (LSan at exit under ASan).
 *
 * Usage: spawn_wake_stress [seed]; WEFT_STRESS_SCALE / _SECONDS: stress.h.
 */
#include <weft.h>

#include "stress.h"

#define MAX_RECEIVERS 256
#define FOREIGN 2

struct slot {
	pthread_mutex_t mu;
	weft_waker w; /* under mu: a clone of the receiver's waker */
	atomic_int credits;
	atomic_int readies;
	atomic_int drops;
	atomic_int polls;
};

struct round {
	unsigned n;      /* receivers */
	unsigned target; /* credits per receiver */
	struct slot slots[MAX_RECEIVERS];
	weft_runtime *rt;
	/* credits to hand out: receiver indices, shuffled */
	uint32_t *credits;
	size_t ncredits;
	atomic_size_t given;
	atomic_int children_spawned;
	atomic_int children_done;
	atomic_int distributors_done;
	atomic_int spurious;
	unsigned round_no;
};

static struct round R;

/* Hand one credit to receiver @i and wake it once. */
static void give_credit(uint32_t i, uint64_t dice)
{
	struct slot *s = &R.slots[i];
	atomic_fetch_add(&s->credits, 1);
	pthread_mutex_lock(&s->mu);
	if (dice & 1) {
		weft_waker_wake_by_ref(&s->w);
		pthread_mutex_unlock(&s->mu);
	} else {
		weft_waker w = weft_waker_clone(&s->w);
		pthread_mutex_unlock(&s->mu);
		weft_waker_wake(&w);
	}
	atomic_fetch_add(&R.given, 1);
}

/* --- children: spawn storms --------------------------------------------- */

struct child {
	unsigned depth;
	uint64_t seed;
	weft_yield y;
	int yielded;
};

static const weft_future_desc child_desc;

static weft_poll child_poll(void *self, weft_cx *cx, void *out)
{
	struct child *s = self;
	(void)out;
	if (!s->yielded && (s->seed & 3) == 0) {
		if (weft_yield_poll(&s->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		s->yielded = 1;
	}
	if (s->depth) {
		for (int k = 0; k < 2; k++) {
			struct child c = { .depth = s->depth - 1,
					   .seed = s->seed * 31 + (uint64_t)k,
					   .y = WEFT_YIELD_INIT };
			atomic_fetch_add(&R.children_spawned, 1);
			int err = weft_spawn(NULL, &child_desc, &c, NULL);
			STRESS_CHECK(err == 0, "child spawn: %s",
				     weft_strerror(err));
		}
	}
	atomic_fetch_add(&R.children_done, 1);
	return WEFT_READY;
}

static const weft_future_desc child_desc = {
	.poll = child_poll,
	.size = sizeof(struct child),
};

/* --- receivers --------------------------------------------------------- */

struct receiver {
	uint32_t i;
	unsigned consumed;
	unsigned polls;
	weft_waker mine; /* what we parked, to compare with will_wake */
	struct stress_rng rng;
};

static weft_poll receiver_poll(void *self, weft_cx *cx, void *out)
{
	struct receiver *s = self;
	struct slot *sl = &R.slots[s->i];
	const weft_waker *w = weft_cx_waker(cx);

	s->polls++;
	atomic_fetch_add(&sl->polls, 1);
	STRESS_CHECK(weft_worker_index() >= 0, "polled off a worker");
	if (!weft_waker_will_wake(&s->mine, w)) {
		/* Park the waker before reading credits: a credit given
		 * before this finds no waker but is seen below; one given
		 * after finds the waker. */
		weft_waker_drop(&s->mine);
		s->mine = weft_waker_clone(w);
		weft_waker c = weft_waker_clone(w);
		pthread_mutex_lock(&sl->mu);
		weft_waker old = sl->w;
		sl->w = c;
		pthread_mutex_unlock(&sl->mu);
		weft_waker_drop(&old);
	}
	int got = atomic_exchange(&sl->credits, 0);
	s->consumed += (unsigned)got;
	if (got)
		stress_progress();
	STRESS_CHECK(s->consumed <= R.target, "receiver %u: %u credits > %u",
		     s->i, s->consumed, R.target);

	uint64_t dice = stress_rand(&s->rng);
	if ((dice & 15) == 0) {
		/* Spurious wake of another receiver (no credit). */
		uint32_t j = (uint32_t)((dice >> 8) % R.n);
		struct slot *o = &R.slots[j];
		pthread_mutex_lock(&o->mu);
		weft_waker_wake_by_ref(&o->w);
		pthread_mutex_unlock(&o->mu);
		atomic_fetch_add(&R.spurious, 1);
	}
	if (((dice >> 4) & 31) == 0) {
		struct child c = { .depth = (unsigned)(dice >> 20) % 3,
				   .seed = dice, .y = WEFT_YIELD_INIT };
		atomic_fetch_add(&R.children_spawned, 1);
		int err = weft_spawn(NULL, &child_desc, &c, NULL);
		STRESS_CHECK(err == 0, "spawn: %s", weft_strerror(err));
	}
	if (s->consumed < R.target)
		return WEFT_PENDING;
	atomic_fetch_add(&sl->readies, 1);
	stress_progress();
	*(uint64_t *)out = s->consumed;
	return WEFT_READY;
}

static void receiver_drop(void *self)
{
	struct receiver *s = self;
	weft_waker_drop(&s->mine);
	atomic_fetch_add(&R.slots[s->i].drops, 1);
}

static const weft_future_desc receiver_desc = {
	.poll = receiver_poll,
	.drop = receiver_drop,
	.size = sizeof(struct receiver),
	.output_size = sizeof(uint64_t),
};

/* --- distributors: hand out a slice of the credits from a task ---------- */

struct distributor {
	size_t from, to;
	unsigned batch;
	weft_yield y;
	int yielding;
	uint64_t dice;
};

static weft_poll distributor_poll(void *self, weft_cx *cx, void *out)
{
	struct distributor *s = self;
	(void)out;
	while (s->from < s->to) {
		if (s->yielding) {
			if (weft_yield_poll(&s->y, cx) == WEFT_PENDING)
				return WEFT_PENDING;
			s->yielding = 0;
			s->y = (weft_yield)WEFT_YIELD_INIT;
		}
		for (unsigned k = 0; k < s->batch && s->from < s->to; k++) {
			s->dice = s->dice * 6364136223846793005ull + 1;
			give_credit(R.credits[s->from++], s->dice >> 33);
		}
		s->yielding = 1;
	}
	atomic_fetch_add(&R.distributors_done, 1);
	return WEFT_READY;
}

static const weft_future_desc distributor_desc = {
	.poll = distributor_poll,
	.size = sizeof(struct distributor),
};

/* A task that spawns distributors from inside the runtime. */
struct spawner {
	size_t from, to, per;
};

static weft_poll spawner_poll(void *self, weft_cx *cx, void *out)
{
	struct spawner *s = self;
	(void)cx;
	(void)out;
	for (size_t a = s->from; a < s->to; a += s->per) {
		struct distributor d = {
			.from = a,
			.to = a + s->per < s->to ? a + s->per : s->to,
			.batch = 1 + (unsigned)(a % 5), .y = WEFT_YIELD_INIT,
			.dice = a,
		};
		int err = weft_spawn(NULL, &distributor_desc, &d, NULL);
		STRESS_CHECK(err == 0, "spawn distributor: %s",
			     weft_strerror(err));
	}
	return WEFT_READY;
}

static const weft_future_desc spawner_desc = {
	.poll = spawner_poll,
	.size = sizeof(struct spawner),
};

/* --- foreign threads ---------------------------------------------------- */

struct foreign {
	pthread_t th;
	size_t from, to;
	unsigned id;
	int chaff_joined;
};

static void *foreign_main(void *arg)
{
	struct foreign *f = arg;
	struct stress_rng rng;
	stress_rng_init(&rng, 1000 + R.round_no * 16 + f->id);
	weft_join *chaff[8];
	unsigned nchaff = 0;
	for (size_t a = f->from; a < f->to; a++) {
		uint64_t dice = stress_rand(&rng);
		give_credit(R.credits[a], dice);
		if ((dice & 63) == 0 && nchaff < 8) {
			/* Spawn from outside, joined below. */
			struct child c = { .depth = 1, .seed = dice,
					   .y = WEFT_YIELD_INIT };
			atomic_fetch_add(&R.children_spawned, 1);
			int err = weft_spawn(R.rt, &child_desc, &c,
					     &chaff[nchaff]);
			STRESS_CHECK(err == 0, "foreign spawn: %s",
				     weft_strerror(err));
			nchaff++;
		}
		if ((dice & 255) == 1)
			sched_yield();
	}
	for (unsigned k = 0; k < nchaff; k++) {
		int st = stress_join_wait(chaff[k], NULL);
		STRESS_CHECK(st == 0, "chaff join: %d", st);
		weft_join_drop(chaff[k]);
		f->chaff_joined++;
	}
	return NULL;
}

static void run_round(struct stress_rng *rng)
{
	unsigned workers = 2 + (unsigned)stress_below(rng, 3);
	bool no_lifo = stress_chance(rng, 50);
	R.n = 16 + (unsigned)stress_below(rng, MAX_RECEIVERS - 15);
	R.target = 4 + (unsigned)stress_below(rng, 29);
	R.ncredits = (size_t)R.n * R.target;
	atomic_store(&R.given, 0);
	atomic_store(&R.children_spawned, 0);
	atomic_store(&R.children_done, 0);
	atomic_store(&R.distributors_done, 0);
	atomic_store(&R.spurious, 0);
	R.credits = malloc(R.ncredits * sizeof(*R.credits));
	STRESS_CHECK(R.credits != NULL, "out of memory");
	for (size_t a = 0; a < R.ncredits; a++)
		R.credits[a] = (uint32_t)(a % R.n);
	for (size_t a = R.ncredits - 1; a > 0; a--) {
		size_t b = stress_below(rng, a + 1);
		uint32_t t = R.credits[a];
		R.credits[a] = R.credits[b];
		R.credits[b] = t;
	}
	for (unsigned i = 0; i < R.n; i++) {
		struct slot *s = &R.slots[i];
		pthread_mutex_init(&s->mu, NULL);
		s->w = WEFT_WAKER_EMPTY;
		atomic_store(&s->credits, 0);
		atomic_store(&s->readies, 0);
		atomic_store(&s->drops, 0);
		atomic_store(&s->polls, 0);
	}
	R.rt = stress_runtime(workers, no_lifo);

	stress_set_phase("spawn receivers");
	weft_join **joins = calloc(R.n, sizeof(*joins));
	STRESS_CHECK(joins != NULL, "out of memory");
	for (unsigned i = 0; i < R.n; i++) {
		struct receiver r = { .i = i, .mine = WEFT_WAKER_EMPTY };
		stress_rng_init(&r.rng, (uint64_t)R.round_no << 20 | i);
		int err = weft_spawn(R.rt, &receiver_desc, &r, &joins[i]);
		STRESS_CHECK(err == 0, "spawn receiver: %s",
			     weft_strerror(err));
	}

	/* Credits: [0, q) foreign threads, [q, 2q) distributors spawned
	 * here, [2q, end) distributors spawned by a task. */
	stress_set_phase("distribute");
	size_t q = R.ncredits / 3;
	struct foreign f[FOREIGN];
	for (unsigned t = 0; t < FOREIGN; t++) {
		f[t] = (struct foreign){ .from = q * t / FOREIGN,
					 .to = q * (t + 1) / FOREIGN,
					 .id = t };
		STRESS_CHECK(pthread_create(&f[t].th, NULL, foreign_main,
					    &f[t]) == 0,
			     "pthread_create");
	}
	size_t per = 1 + (size_t)stress_below(rng, 64);
	int ndist = 0;
	for (size_t a = q; a < 2 * q; a += per) {
		struct distributor d = {
			.from = a, .to = a + per < 2 * q ? a + per : 2 * q,
			.batch = 1 + (unsigned)stress_below(rng, 8),
			.y = WEFT_YIELD_INIT, .dice = stress_rand(rng),
		};
		int err = weft_spawn(R.rt, &distributor_desc, &d, NULL);
		STRESS_CHECK(err == 0, "spawn: %s", weft_strerror(err));
		ndist++;
	}
	struct spawner sp = { .from = 2 * q, .to = R.ncredits, .per = per };
	for (size_t a = sp.from; a < sp.to; a += per)
		ndist++;
	weft_join *jsp;
	STRESS_CHECK(weft_spawn(R.rt, &spawner_desc, &sp, &jsp) == 0,
		     "spawn spawner");

	stress_set_phase("join receivers");
	for (unsigned i = 0; i < R.n; i++) {
		uint64_t out = 0;
		int st = stress_join_wait(joins[i], &out);
		STRESS_CHECK(st == 0, "round %u receiver %u: status %d",
			     R.round_no, i, st);
		STRESS_CHECK(out == R.target, "receiver %u: %" PRIu64
			     " credits, want %u", i, out, R.target);
		weft_join_drop(joins[i]);
	}
	STRESS_CHECK(stress_join_wait(jsp, NULL) == 0, "spawner");
	weft_join_drop(jsp);
	for (unsigned t = 0; t < FOREIGN; t++)
		pthread_join(f[t].th, NULL);

	stress_set_phase("quiesce");
	/* Every credit was given and consumed (receivers are done), so the
	 * distributors are finishing; children are short-lived. A child is
	 * counted as spawned before weft_spawn, so spawned - done is exactly
	 * the number in flight. (Counting after the call let a grandchild
	 * finish before its parent counted it: done caught up with spawned
	 * while the parent was still about to spawn its second child, and
	 * that spawn met the shutdown below.) */
	while (atomic_load(&R.distributors_done) < ndist ||
	       atomic_load(&R.children_done) <
		       atomic_load(&R.children_spawned)) {
		stress_sleep_us(200);
	}
	STRESS_CHECK(atomic_load(&R.given) == R.ncredits,
		     "%zu of %zu credits given", atomic_load(&R.given),
		     R.ncredits);
	STRESS_CHECK(atomic_load(&R.children_done) ==
			     atomic_load(&R.children_spawned),
		     "children: %d done of %d", atomic_load(&R.children_done),
		     atomic_load(&R.children_spawned));

	stress_set_phase("shutdown");
	for (unsigned i = 0; i < R.n; i++) {
		pthread_mutex_lock(&R.slots[i].mu);
		weft_waker_drop(&R.slots[i].w);
		pthread_mutex_unlock(&R.slots[i].mu);
	}
	STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
	weft_runtime_free(R.rt);
	R.rt = NULL;
	for (unsigned i = 0; i < R.n; i++) {
		struct slot *s = &R.slots[i];
		STRESS_CHECK(atomic_load(&s->readies) == 1,
			     "receiver %u READY %d times", i,
			     atomic_load(&s->readies));
		STRESS_CHECK(atomic_load(&s->drops) == 1,
			     "receiver %u dropped %d times", i,
			     atomic_load(&s->drops));
		STRESS_CHECK(atomic_load(&s->credits) == 0,
			     "receiver %u: %d credits left", i,
			     atomic_load(&s->credits));
		pthread_mutex_destroy(&s->mu);
	}
	if (stress_verbose)
		printf("round %u: %u workers%s, %u receivers x %u credits, "
		       "%d children, %d spurious wakes\n",
		       R.round_no, workers, no_lifo ? " (no LIFO)" : "", R.n,
		       R.target, atomic_load(&R.children_spawned),
		       atomic_load(&R.spurious));
	free(joins);
	free(R.credits);
	R.credits = NULL;
}

int main(int argc, char **argv)
{
	struct stress_rng rng;
	uint64_t rounds_max;
	unsigned round;
	uint64_t credits = 0;

	stress_init("spawn_wake_stress", argc, argv);
	rounds_max = stress_iters(STRESS_TSAN ? 800 : 2000);
	stress_rng_init(&rng, 0);
	for (round = 0; round < rounds_max && stress_time_left(); round++) {
		R.round_no = round;
		run_round(&rng);
		credits += R.ncredits;
		stress_progress();
	}
	return stress_finish("%u rounds, %" PRIu64 " credits delivered",
			     round, credits);
}
