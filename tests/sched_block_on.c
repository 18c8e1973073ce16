/* SPDX-License-Identifier: MIT */
/*
 * The runtime's outer surface: weft_block_on, runtime creation and its
 * config errors, the per-thread queries (runtime_current, worker_index),
 * start/stop cycles, shutdown cancelling tasks, and metrics.
 */
#include <fcntl.h>

#include <stddef.h>

#include "helpers.h"

/* --- block_on ---------------------------------------------------------- */

WT_RT_TEST(block_on, returns_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	for (int i = 0; i < 20; i++) {
		struct wt_value v = wt_value_init(i * 3, (unsigned)i % 4, &c);
		int64_t out = -1;
		wt_block_on(rt, &wt_value_desc, &v, &out);
		cr_expect_eq(out, i * 3);
	}
	cr_expect_eq(atomic_load(&c.readies), 20);
	wt_rt_free(rt);
}

WT_RT_TEST(block_on, null_out_drops_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	struct wt_value v = wt_value_init(17, 0, &c);
	wt_block_on(rt, &wt_value_desc, &v, NULL);
	cr_expect_eq(atomic_load(&c.drop_outputs), 1);
	cr_expect_eq(atomic_load(&c.dropped_output_sum), 17);
	wt_rt_free(rt);
	wt_output_counters = NULL;
}

/* Where did the future run? */
struct where {
	weft_runtime *rt;
	unsigned workers;
};

static int64_t where_fn(void *arg)
{
	struct where *w = arg;
	int idx = weft_worker_index();
	if (weft_runtime_current() != w->rt)
		return -1000;
	if (idx < 0 || (unsigned)idx >= w->workers)
		return -2000 + idx;
	return idx;
}

WT_RT_TEST(block_on, runs_on_a_worker)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct where w = { rt, cfg->workers };
	for (int i = 0; i < 10; i++) {
		int64_t r = wt_run_on_worker(rt, where_fn, &w);
		cr_expect_geq(r, 0, "runtime_current/worker_index wrong: %lld",
			      (long long)r);
	}
	/* And not on this thread. */
	cr_expect_null(weft_runtime_current());
	cr_expect_eq(weft_worker_index(), -1);
	wt_rt_free(rt);
}

struct bo_thread {
	weft_runtime *rt;
	int id;
	int failures;
};

static void *block_on_thread(void *arg)
{
	struct bo_thread *t = arg;
	for (int i = 0; i < 40; i++) {
		struct wt_value v = wt_value_init(t->id * 1000 + i,
						  (unsigned)i % 3, NULL);
		int64_t out = -1;
		int err = weft_block_on(t->rt, &wt_value_desc, &v, &out);
		if (err || out != t->id * 1000 + i)
			t->failures++;
	}
	return NULL;
}

WT_RT_TEST(block_on, concurrent_from_many_threads)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct bo_thread t[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		t[i] = (struct bo_thread){ rt, i, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, block_on_thread,
					    &t[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(t[i].failures, 0, "thread %d", i);
	}
	wt_rt_free(rt);
}

static int64_t nested_block_on(void *arg)
{
	weft_runtime *target = arg;
	struct wt_value v = wt_value_init(1, 0, NULL);
	int64_t out;
	return weft_block_on(target, &wt_value_desc, &v, &out);
}

WT_RT_TEST(block_on, on_worker_is_edeadlk)
{
	weft_runtime *rt = wt_rt_new(cfg);
	cr_expect_eq(wt_run_on_worker(rt, nested_block_on, rt), -EDEADLK);
	/* Any runtime's worker, not only the target's. */
	struct wt_cfg one = { 1, 0 };
	weft_runtime *other = wt_rt_new(&one);
	cr_expect_eq(wt_run_on_worker(rt, nested_block_on, other), -EDEADLK);
	wt_rt_free(other);
	wt_rt_free(rt);
}

static int64_t shutdown_from_worker(void *arg)
{
	return weft_runtime_shutdown(arg);
}

WT_RT_TEST(block_on, shutdown_on_worker_is_edeadlk)
{
	weft_runtime *rt = wt_rt_new(cfg);
	cr_expect_eq(wt_run_on_worker(rt, shutdown_from_worker, rt), -EDEADLK);
	/* The runtime still works. */
	cr_expect_eq(wt_spawn_n_join(rt, 4, 0, 0, NULL), 6);
	wt_rt_free(rt);
}

struct bo_cancel {
	weft_runtime *rt;
	struct wt_counters *c;
	int err;
};

static void *block_on_forever(void *arg)
{
	struct bo_cancel *b = arg;
	struct wt_forever f = { b->c };
	int64_t out;
	b->err = weft_block_on(b->rt, &wt_forever_desc, &f, &out);
	return NULL;
}

WT_RT_TEST(block_on, cancelled_by_shutdown)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct bo_cancel b = { rt, &c, 1 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, block_on_forever, &b), 0);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	cr_assert_eq(weft_runtime_shutdown(rt), 0);
	pthread_join(th, NULL);
	cr_expect_eq(b.err, -ECANCELED);
	cr_expect_eq(atomic_load(&c.drops), 1);
	weft_runtime_free(rt);
	wt_leak_check();
}

/* --- runtime creation ------------------------------------------------ */

WT_TEST(runtime, config_init_defaults)
{
	weft_runtime_config cfg;
	memset(&cfg, 0xff, sizeof(cfg));
	weft_runtime_config_init(&cfg);
	cr_expect_eq(cfg.size, sizeof(cfg));
	cr_expect_eq(cfg.workers, 0);
	cr_expect_eq(cfg.ring_entries, 0);
	cr_expect_eq(cfg.flags, 0);
	cr_expect_eq(cfg.spin_rounds, 0);
	cr_expect_null(cfg.log);
	cr_expect_null(cfg.log_arg);
}

WT_TEST(runtime, config_errors)
{
	weft_runtime_config cfg;
	weft_runtime *sentinel = (weft_runtime *)(uintptr_t)0x5a5a;
	weft_runtime *rt = sentinel;

	weft_runtime_config_init(&cfg);
	cfg.workers = 257;
	cr_expect_eq(weft_runtime_new(&cfg, &rt), -EINVAL);
	cr_expect_eq(rt, sentinel, "out touched on failure");

	weft_runtime_config_init(&cfg);
	cfg.ring_entries = 32769;
	cr_expect_eq(weft_runtime_new(&cfg, &rt), -EINVAL);

	weft_runtime_config_init(&cfg);
	cfg.size = 0;
	cr_expect_eq(weft_runtime_new(&cfg, &rt), -EINVAL);
	cfg.size = 3;
	cr_expect_eq(weft_runtime_new(&cfg, &rt), -EINVAL);
	cr_expect_eq(rt, sentinel);
	wt_leak_check();
}

WT_TEST(runtime, null_config_uses_defaults)
{
	weft_runtime *rt = NULL;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int err = weft_runtime_new(NULL, &rt);
	cr_assert_eq(err, 0, "%s", weft_strerror(err));
	unsigned n = weft_runtime_workers(rt);
	cr_expect_geq(n, 1);
	cr_expect_leq(n, 256);
	if (cpus > 0 && cpus <= 256)
		cr_expect_eq(n, (unsigned)cpus, "workers=0 means online CPUs");
	cr_expect_eq(wt_spawn_n_join(rt, 8, 1, 1, NULL), 8 + 28);
	wt_rt_free(rt);
}

WT_TEST_T(runtime, start_stop_cycles, 30)
{
	for (unsigned w = 1; w <= 4; w++) {
		for (int i = 0; i < 8; i++) {
			struct wt_cfg c = { w, (i & 1) ? WEFT_RT_NO_LIFO_SLOT
							: 0 };
			weft_runtime *rt = wt_rt_new(&c);
			if (i % 4 == 0) {
				/* Some cycles run nothing at all. */
			} else {
				cr_assert_eq(wt_spawn_n_join(rt, 4, 10, 1,
							     NULL),
					     46);
			}
			if (i % 3 == 0) {
				/* free without shutdown shuts down */
				weft_runtime_free(rt);
				wt_leak_check();
			} else {
				cr_assert_eq(weft_runtime_shutdown(rt), 0);
				cr_assert_eq(weft_runtime_shutdown(rt), 0,
					     "shutdown not idempotent");
				weft_runtime_free(rt);
			}
		}
	}
	weft_runtime_free(NULL);
	wt_leak_check();
}

WT_TEST(runtime, queries_off_worker)
{
	cr_expect_null(weft_runtime_current());
	cr_expect_eq(weft_worker_index(), -1);
}

static int64_t worker_index_fn(void *arg)
{
	(void)arg;
	return weft_worker_index();
}

WT_TEST_T(runtime, worker_index_in_range, 20)
{
	/* Each block_on lands on some worker, which reports an index in
	 * range. */
	struct wt_cfg c = { 4, 0 };
	weft_runtime *rt = wt_rt_new(&c);
	for (int i = 0; i < 200; i++) {
		int64_t idx = wt_run_on_worker(rt, worker_index_fn, NULL);
		cr_assert(idx >= 0 && idx < 4, "index %lld", (long long)idx);
	}
	wt_rt_free(rt);
}

static atomic_int log_calls, log_info;

static void counting_log(void *arg, int level, const char *msg)
{
	(void)arg;
	/* Called on any thread: no Criterion asserts here. */
	if (!msg)
		abort();
	atomic_fetch_add(&log_calls, 1);
	if (level == WEFT_LOG_INFO)
		atomic_fetch_add(&log_info, 1);
}

WT_TEST(runtime, ring_mode_is_logged)
{
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_runtime_config_init(&cfg);
	cfg.workers = 2;
	cfg.log = counting_log;
	cr_assert_eq(weft_runtime_new(&cfg, &rt), 0);
	wt_rt_free(rt);
	cr_expect_geq(atomic_load(&log_info), 1,
		      "ring mode not logged at INFO");
}

/* --- shutdown -------------------------------------------------------- */

WT_RT_TEST(runtime, shutdown_cancels_pending_tasks)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	enum { N = 20 };
	weft_join *j[N];
	for (int i = 0; i < N; i++) {
		struct wt_forever f = { &c };
		wt_spawn(rt, &wt_forever_desc, &f, &j[i]);
	}
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, N, 5000), N);
	cr_assert_eq(weft_runtime_shutdown(rt), 0);
	cr_expect_eq(atomic_load(&c.drops), N, "shutdown returned before "
		     "every future was dropped");
	for (int i = 0; i < N; i++) {
		int st = 1;
		/* Join handles stay valid after shutdown. */
		wt_join_wait(j[i], &st, NULL);
		cr_expect_eq(st, -ECANCELED, "task %d", i);
		cr_expect(weft_join_is_finished(j[i]));
		weft_join_drop(j[i]);
	}
	weft_runtime_free(rt);
	cr_expect_eq(atomic_load(&c.drops), N);
	wt_leak_check();
}

WT_RT_TEST(runtime, shutdown_with_queued_tasks)
{
	/* Tasks spawned right before shutdown, some never polled: each
	 * future is dropped exactly once, each join reports READY. */
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	enum { N = 500 };
	weft_join **j = calloc(N, sizeof(*j));
	cr_assert_not_null(j);
	for (int i = 0; i < N; i++) {
		struct wt_value v = wt_value_init(i, (unsigned)i % 5, &c);
		wt_spawn(rt, &wt_value_desc, &v, i % 2 ? &j[i] : NULL);
	}
	cr_assert_eq(weft_runtime_shutdown(rt), 0);
	cr_expect_eq(atomic_load(&c.drops), N);
	int done = 0, cancelled = 0;
	for (int i = 1; i < N; i += 2) {
		int st = 1;
		int64_t out = -1;
		wt_join_wait(j[i], &st, &out);
		if (st == 0) {
			cr_expect_eq(out, i);
			done++;
		} else {
			cr_expect_eq(st, -ECANCELED);
			cancelled++;
		}
		weft_join_drop(j[i]);
	}
	cr_expect_eq(done + cancelled, N / 2);
	weft_runtime_free(rt);
	free(j);
	/* Detached ones that finished had their output dropped. */
	cr_expect_eq(atomic_load(&c.readies),
		     done + atomic_load(&c.drop_outputs));
	wt_output_counters = NULL;
	wt_leak_check();
}

WT_RT_TEST(runtime, many_spawns_complete)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	enum { N = 20000 };
	for (int i = 0; i < N; i++) {
		struct wt_value v = wt_value_init(1, (unsigned)i % 2, &c);
		wt_spawn(rt, &wt_value_desc, &v, NULL);
	}
	cr_expect_eq(wt_wait_atomic_ge(&c.drop_outputs, N, 8000), N);
	cr_expect_eq(atomic_load(&c.readies), N);
	wt_rt_free(rt);
	wt_output_counters = NULL;
}

/* --- metrics ------------------------------------------------------------ */

WT_RT_TEST(runtime, metrics)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_runtime_metrics m;
	memset(&m, 0xff, sizeof(m));
	m.size = sizeof(m);
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	cr_expect_eq(m.size, sizeof(m));
	cr_expect_eq(m.workers, cfg->workers);
	cr_expect_leq(m.ring_mode, WEFT_RING_DEFER_TASKRUN);
	uint64_t spawned0 = m.spawned, polls0 = m.polls;
	cr_expect_lt(spawned0, 1000, "garbage in a fresh runtime's counters");

	enum { N = 100 };
	cr_assert_eq(wt_spawn_n_join(rt, N, 0, 2, NULL), (N - 1) * N / 2);
	memset(&m, 0, sizeof(m));
	m.size = sizeof(m);
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	cr_expect_geq(m.spawned - spawned0, N);
	cr_expect_geq(m.polls - polls0, 3 * N, "3 polls each (2 yields)");
	cr_expect_leq(m.lifo_polls, m.polls);
	if (cfg->flags & WEFT_RT_NO_LIFO_SLOT)
		cr_expect_eq(m.lifo_polls, 0, "LIFO slot used while disabled");
	if (cfg->workers == 1)
		cr_expect_eq(m.steals, 0, "one worker stole from whom?");
	cr_expect_leq(m.ops_completed, m.ops_submitted);
	wt_rt_free(rt);
}

WT_TEST(runtime, metrics_errors)
{
	struct wt_cfg one = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&one);
	weft_runtime_metrics m;
	cr_expect_eq(weft_runtime_metrics_get(rt, NULL), -EINVAL);
	cr_expect_eq(weft_runtime_metrics_get(NULL, &m), -EINVAL);
	/* Shorter than the first release's struct: refused. (A caller
	 * built against that release passes its own, shorter size and gets
	 * the fields it knows: tests/io_probe.c.) */
	m.size = offsetof(weft_runtime_metrics, remote_cancels);
	cr_expect_eq(weft_runtime_metrics_get(rt, &m), -EINVAL);
	m.size = 0;
	cr_expect_eq(weft_runtime_metrics_get(rt, &m), -EINVAL);
	wt_rt_free(rt);
}

struct nap {
	weft_io io;
};

static weft_poll nap_poll(void *self, weft_cx *cx, void *out)
{
	struct nap *s = self;
	int64_t res;
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int64_t *)out = res;
	return WEFT_READY;
}

static void nap_drop(void *self)
{
	struct nap *s = self;
	weft_io_drop(&s->io);
}

static const weft_future_desc nap_desc = {
	.poll = nap_poll,
	.drop = nap_drop,
	.size = sizeof(struct nap),
	.output_size = sizeof(int64_t),
};

WT_TEST(runtime, metrics_count_io_ops)
{
	struct wt_cfg two = { 2, 0 };
	weft_runtime *rt = wt_rt_new(&two);
	weft_runtime_metrics m0 = { .size = sizeof(m0) };
	weft_runtime_metrics m1 = { .size = sizeof(m1) };
	/* Writes to /dev/null: ring ops (a sleep is a timer, not an op). */
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(weft_runtime_metrics_get(rt, &m0), 0);
	for (int i = 0; i < 10; i++) {
		struct nap n;
		int64_t res = 1;
		memset(&n, 0, sizeof(n));
		weft_io_prep_write(&n.io, fd, "x", 1, -1);
		wt_block_on(rt, &nap_desc, &n, &res);
		cr_expect_eq(res, 1);
	}
	close(fd);
	cr_assert_eq(weft_runtime_metrics_get(rt, &m1), 0);
	cr_expect_geq(m1.ops_submitted - m0.ops_submitted, 10);
	cr_expect_geq(m1.ops_completed - m0.ops_completed, 10);
	cr_expect_geq(m1.polls - m0.polls, 20, "two polls per op");
	wt_rt_free(rt);
}
