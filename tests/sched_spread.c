/* SPDX-License-Identifier: MIT */
/*
 * Work reaches every worker: N tasks (N = workers) that each wait, spinning,
 * until all N are running at once. They can only meet if every parked
 * worker was woken and picked one up; a worker left asleep (a lost or
 * suppressed unpark) makes the rendezvous time out.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>

#include <weft.h>

/* Generous: on an oversubscribed 2-vCPU machine a worker thread can wait a
 * while for a CPU; a lost unpark waits forever. 2x this stays under the
 * tests' 20 s timeout. */
#define RENDEZVOUS_NS (8ull * 1000000000ull)

struct meet {
	atomic_uint *started;
	unsigned want;
};

/* Output: 1 if all met in time. */
static weft_poll meet_poll(void *self, weft_cx *cx, void *out)
{
	struct meet *m = self;
	uint64_t deadline = weft_now_ns() + RENDEZVOUS_NS;

	(void)cx;
	atomic_fetch_add(m->started, 1);
	/* Deliberately blocks its worker: the others must run the rest. */
	while (atomic_load(m->started) < m->want && weft_now_ns() < deadline)
		sched_yield();
	*(int *)out = atomic_load(m->started) >= m->want;
	return WEFT_READY;
}

static const weft_future_desc meet_desc = {
	.poll = meet_poll,
	.size = sizeof(struct meet),
	.output_size = sizeof(int),
};

static weft_runtime *new_rt(unsigned workers, unsigned flags)
{
	weft_runtime_config cfg;
	weft_runtime *rt;

	weft_runtime_config_init(&cfg);
	cfg.workers = workers;
	cfg.flags = flags;
	cr_assert_eq(weft_runtime_new(&cfg, &rt), 0);
	return rt;
}

/*
 * Poll each join handle from the test thread with a no-op waker until it
 * is ready; each task must report that all @n met. Drops the handles.
 */
static void expect_all_met(weft_join **j, unsigned n, atomic_uint *started)
{
	for (unsigned i = 0; i < n; i++) {
		weft_waker w = weft_waker_noop();
		weft_cx cx;
		int status = -1, ok = 0;

		weft_cx_init(&cx, &w);
		uint64_t end = weft_now_ns() + 2 * RENDEZVOUS_NS;
		while (weft_join_poll(j[i], &cx, &status, &ok) == WEFT_PENDING) {
			cr_assert(weft_now_ns() < end, "task %u never finished", i);
			sched_yield();
		}
		cr_expect_eq(status, 0);
		cr_expect_eq(ok, 1, "task %u: only %u of %u tasks ran at once",
			     i, atomic_load(started), n);
		weft_join_drop(j[i]);
	}
}

/* Spawned from the test thread: through the injector. */
static void spread_remote(unsigned workers, unsigned flags)
{
	weft_runtime *rt = new_rt(workers, flags);
	weft_join *j[8];
	atomic_uint started = 0;
	struct meet m = { &started, workers };

	/* Let every worker park first: the interesting case. */
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	for (unsigned i = 0; i < workers; i++)
		cr_assert_eq(weft_spawn(rt, &meet_desc, &m, &j[i]), 0);
	expect_all_met(j, workers, &started);
	weft_runtime_free(rt);
}

/* Spawned from inside a task: LIFO slot and deque, then stealing. */
struct spawner {
	atomic_uint *started;
	unsigned want;
	weft_join **joins;
};

static weft_poll spawner_poll(void *self, weft_cx *cx, void *out)
{
	struct spawner *s = self;
	struct meet m = { s->started, s->want };

	(void)cx;
	*(int *)out = 0;
	for (unsigned i = 0; i < s->want; i++)
		if (weft_spawn(NULL, &meet_desc, &m, &s->joins[i]))
			return WEFT_READY;
	*(int *)out = 1;
	return WEFT_READY;
}

static const weft_future_desc spawner_desc = {
	.poll = spawner_poll,
	.size = sizeof(struct spawner),
	.output_size = sizeof(int),
};

static void spread_local(unsigned workers, unsigned flags)
{
	weft_runtime *rt = new_rt(workers, flags);
	weft_join *j[8];
	atomic_uint started = 0;
	struct spawner s = { &started, workers, j };
	int spawned = 0;

	cr_assert_eq(weft_block_on(rt, &spawner_desc, &s, &spawned), 0);
	cr_assert_eq(spawned, 1);
	expect_all_met(j, workers, &started);
	weft_runtime_free(rt);
}

Test(spread, remote_2_workers, .timeout = 20) { spread_remote(2, 0); }
Test(spread, remote_4_workers, .timeout = 20) { spread_remote(4, 0); }
Test(spread, remote_4_workers_no_lifo, .timeout = 20)
{
	spread_remote(4, WEFT_RT_NO_LIFO_SLOT);
}
Test(spread, local_2_workers, .timeout = 20) { spread_local(2, 0); }
Test(spread, local_4_workers, .timeout = 20) { spread_local(4, 0); }
Test(spread, local_4_workers_no_lifo, .timeout = 20)
{
	spread_local(4, WEFT_RT_NO_LIFO_SLOT);
}
