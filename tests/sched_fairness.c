/* SPDX-License-Identifier: MIT */
/*
 * No task starves behind a task that wakes itself during its poll.
 *
 * On one worker, a root task spawns K victims and then a yielder that
 * loops on weft_yield until every victim has run. Each victim records how
 * many times the yielder had been polled when it ran. A worker that takes
 * its newest task first (Chase-Lev's take) and re-queues a yielder at the
 * bottom would hand the yielder straight back forever: the victims then
 * run only after the yielder gives up (YIELD_CAP polls). weft re-queues a
 * yielder and takes the next task from the top (worker.c,
 * weft__sched_yield), so victim i runs within about i yielder polls.
 */
#include "helpers.h"

/* The victims and the yielder fit a 4-entry deque (--enable-small-queues):
 * more would overflow to the injector, which a worker checks every 61
 * ticks, a looser bound than this test is about. */
#define VICTIMS 3
#define YIELD_CAP 100000u

struct fair {
	atomic_uint yielder_polls;
	atomic_uint victims_done;
	atomic_int yielder_done;
	atomic_uint seen[VICTIMS]; /* yielder polls when victim i ran */
};

struct victim {
	struct fair *f;
	unsigned i;
};

static weft_poll victim_poll(void *self, weft_cx *cx, void *out)
{
	struct victim *v = self;

	(void)cx;
	(void)out;
	atomic_store(&v->f->seen[v->i], atomic_load(&v->f->yielder_polls));
	atomic_fetch_add(&v->f->victims_done, 1);
	return WEFT_READY;
}

static const weft_future_desc victim_desc = {
	.poll = victim_poll,
	.size = sizeof(struct victim),
};

struct yielder {
	struct fair *f;
	weft_yield y;
};

static weft_poll yielder_poll(void *self, weft_cx *cx, void *out)
{
	struct yielder *s = self;
	struct fair *f = s->f;

	(void)out;
	unsigned polls = atomic_fetch_add(&f->yielder_polls, 1) + 1;
	if (atomic_load(&f->victims_done) == VICTIMS || polls >= YIELD_CAP) {
		atomic_store(&f->yielder_done, 1);
		return WEFT_READY;
	}
	/* A self-wake: READY only on the poll after the wake. */
	s->y = (weft_yield)WEFT_YIELD_INIT;
	WT_CHECK(weft_yield_poll(&s->y, cx) == WEFT_PENDING,
		 "a fresh weft_yield is READY");
	return WEFT_PENDING;
}

static const weft_future_desc yielder_desc = {
	.poll = yielder_poll,
	.size = sizeof(struct yielder),
};

/* Spawns the victims, then the yielder, all detached. */
static weft_poll root_poll(void *self, weft_cx *cx, void *out)
{
	struct fair *f = *(struct fair **)self;
	weft_runtime *rt = weft_runtime_current();

	(void)cx;
	(void)out;
	WT_CHECK(rt, "root polled off a worker");
	for (unsigned i = 0; i < VICTIMS; i++) {
		struct victim v = { f, i };
		WT_CHECK(weft_spawn(rt, &victim_desc, &v, NULL) == 0,
			 "spawn victim");
	}
	struct yielder y = { f, WEFT_YIELD_INIT };
	WT_CHECK(weft_spawn(rt, &yielder_desc, &y, NULL) == 0, "spawn yielder");
	return WEFT_READY;
}

static const weft_future_desc root_desc = {
	.poll = root_poll,
	.size = sizeof(struct fair *),
};

/* One worker: the victims have nowhere else to run. */
static struct wt_cfg fair_cfgs[] = {
	{ 1, 0 },
	{ 1, WEFT_RT_NO_LIFO_SLOT },
	{ 1, WEFT_RT_FIFO_OWNER },
	{ 1, WEFT_RT_FIFO_OWNER | WEFT_RT_NO_LIFO_SLOT },
};

ParameterizedTestParameters(sched_fairness, yielder_does_not_starve_queue)
{
	return cr_make_param_array(struct wt_cfg, fair_cfgs,
				   sizeof(fair_cfgs) / sizeof(fair_cfgs[0]));
}

ParameterizedTest(const struct wt_cfg *cfg, sched_fairness,
		  yielder_does_not_starve_queue, .timeout = 20,
		  .fini = wt_fini)
{
	static struct fair f; /* outlives nothing: the tasks end first */
	struct fair *fp = &f;
	weft_runtime *rt = wt_rt_new(cfg);

	(void)wt_cfgs; /* helpers.h's set; this test wants one worker */
	memset(&f, 0, sizeof(f));
	wt_block_on(rt, &root_desc, &fp, NULL);
	cr_assert_eq(wt_wait_atomic_ge(&f.yielder_done, 1, 10000),
		     1, "the yielder never finished");
	cr_assert_eq(atomic_load(&f.victims_done), VICTIMS);

	unsigned polls = atomic_load(&f.yielder_polls);
	for (unsigned i = 0; i < VICTIMS; i++) {
		unsigned seen = atomic_load(&f.seen[i]);
		/* Victim i has i victims ahead of it: one yielder poll each,
		 * plus slack for the spawn order and the periodic ticks. */
		cr_expect_leq(seen, 2 * (i + 1) + 2,
			      "flags %#x: victim %u ran after %u polls of the "
			      "yielder (%u polls in all; cap %u)",
			      cfg->flags, i, seen, polls, YIELD_CAP);
	}
	cr_expect_lt(polls, YIELD_CAP, "the victims starved");
	wt_rt_free(rt);
}

/*
 * Both owner policies on several workers: yielding tasks spawned from
 * outside spread by stealing (one CAS per task against a LIFO owner, one
 * per batch against a FIFO one) and every one completes exactly once.
 */
static struct wt_cfg steal_cfgs[] = {
	{ 2, 0 },
	{ 4, 0 },
	{ 2, WEFT_RT_FIFO_OWNER },
	{ 4, WEFT_RT_FIFO_OWNER },
	{ 4, WEFT_RT_FIFO_OWNER | WEFT_RT_NO_LIFO_SLOT },
};

ParameterizedTestParameters(sched_fairness, owner_policies_complete_all)
{
	return cr_make_param_array(struct wt_cfg, steal_cfgs,
				   sizeof(steal_cfgs) / sizeof(steal_cfgs[0]));
}

ParameterizedTest(const struct wt_cfg *cfg, sched_fairness,
		  owner_policies_complete_all, .timeout = 30,
		  .fini = wt_fini)
{
	struct wt_counters c = { 0 };
	weft_runtime *rt = wt_rt_new(cfg);
	const unsigned n = 2000, yields = 5;

	int64_t sum = wt_spawn_n_join(rt, n, 1, yields, &c);
	cr_expect_eq(sum, (int64_t)n * (n + 1) / 2);
	cr_expect_eq(atomic_load(&c.readies), (int)n);
	cr_expect_eq(atomic_load(&c.polls), (int)(n * (yields + 1)));
	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	cr_log_info("flags %#x: %llu steals", cfg->flags,
		    (unsigned long long)m.steals);
	wt_rt_free(rt);
}
