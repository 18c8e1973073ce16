/* SPDX-License-Identifier: MIT */
/*
 * The blocking pool (weft/blocking.h): results reach tasks and threads, a
 * blocked job does not hold a worker, the thread limit and the keep-alive
 * hold, detached and abandoned jobs still run, and shutdown waits for the
 * running jobs while the queued ones never run (their receivers: -EPIPE).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>

#include "io_helpers.h"

#define MS WT_MS

static weft_runtime *pool_rt(unsigned workers, unsigned threads,
			     unsigned keepalive_ms)
{
	weft_runtime_config rc;
	weft_runtime *rt = NULL;

	weft_runtime_config_init(&rc);
	rc.workers = workers;
	rc.blocking_threads = threads;
	rc.blocking_keepalive_ms = keepalive_ms;
	rc.log = wt_log_sink;
	cr_assert_eq(weft_runtime_new(&rc, &rt), 0);
	return rt;
}

/* Threads of this process named "weft-blocking". */
static int pool_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[320], name[32] = { 0 };
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* the thread just left */
		ssize_t r = read(fd, name, sizeof(name) - 1);
		close(fd);
		if (r > 0 && strncmp(name, "weft-blocking", 13) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Receive a job's result from this (non-worker) thread. */
static int recv_result(weft_runtime *rt, weft_oneshot_rx *rx, void **value)
{
	weft_oneshot_recv r = { .rx = rx, .value = value };
	int status = 1;

	cr_assert_eq(weft_block_on(rt, &weft_oneshot_recv_desc, &r, &status),
		     0);
	return status;
}

static void *add_one(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

WT_TEST(blocking, result_reaches_a_thread)
{
	weft_runtime *rt = pool_rt(1, 0, 0);
	weft_oneshot_rx *rx = NULL;
	void *v = NULL;

	cr_assert_eq(weft_spawn_blocking(rt, add_one, NULL, (void *)41, &rx),
		     0);
	cr_assert_not_null(rx);
	cr_expect_eq(recv_result(rt, rx, &v), 0);
	cr_expect_eq((uintptr_t)v, 42);
	wt_rt_free(rt);
}

/* --- a task awaits jobs while its worker keeps running other tasks ---- */

struct gate {
	atomic_int open;   /* set by a task on the worker */
	atomic_int waited; /* the job saw it open */
};

/* Blocks its pool thread until a task opens the gate (5 s at most). */
static void *wait_gate(void *arg)
{
	struct gate *g = arg;
	uint64_t end = wt_mono_ns() + 5000 * MS;

	while (!atomic_load(&g->open) && wt_mono_ns() < end)
		wt_sleep_ms(1);
	atomic_store(&g->waited, atomic_load(&g->open));
	return g;
}

struct awaiter {
	struct gate *g;
	int step, status;
	void *value;
	weft_oneshot_recv recv;
};

static weft_poll awaiter_poll(void *self, weft_cx *cx, void *out)
{
	struct awaiter *a = self;
	weft_oneshot_rx *rx = NULL;

	if (a->step == 0) {
		WT_CHECK(weft_spawn_blocking(NULL, wait_gate, NULL, a->g,
					     &rx) == 0,
			 "spawn_blocking from a task");
		a->recv.rx = rx;
		a->recv.value = &a->value;
		a->step = 1;
	}
	if (weft_oneshot_recv_desc.poll(&a->recv, cx, &a->status) ==
	    WEFT_PENDING)
		return WEFT_PENDING;
	*(int *)out = a->status == 0 && a->value == a->g;
	return WEFT_READY;
}

static void awaiter_drop(void *self)
{
	struct awaiter *a = self;

	if (a->step == 1)
		weft_oneshot_recv_desc.drop(&a->recv);
}

static const weft_future_desc awaiter_desc = {
	.poll = awaiter_poll,
	.drop = awaiter_drop,
	.size = sizeof(struct awaiter),
	.output_size = sizeof(int),
};

static weft_poll opener_poll(void *self, weft_cx *cx, void *out)
{
	(void)cx;
	(void)out;
	atomic_store(&(*(struct gate **)self)->open, 1);
	return WEFT_READY;
}

static const weft_future_desc opener_desc = {
	.poll = opener_poll,
	.size = sizeof(struct gate *),
};

/*
 * One worker: a task awaits a job that blocks until another task opens the
 * gate. Were the job run on the worker, the opener could never run.
 */
WT_TEST(blocking, job_does_not_hold_the_worker)
{
	weft_runtime *rt = pool_rt(1, 0, 0);
	struct gate g = { 0 };
	struct awaiter a = { .g = &g };
	weft_join *ja, *jo;
	int ok = 0, st = 1;

	wt_spawn(rt, &awaiter_desc, &a, &ja);
	wt_sleep_ms(20); /* the job is running and blocked by now */
	struct gate *gp = &g;
	wt_spawn(rt, &opener_desc, &gp, &jo);
	cr_assert(wt_join_wait_ms(ja, &st, &ok, 10000), "awaiter hung");
	cr_expect_eq(st, 0);
	cr_expect(ok, "the task did not get the job's result");
	cr_expect_eq(atomic_load(&g.waited), 1,
		     "the job gave up: the opener never ran");
	weft_join_drop(ja);
	cr_assert(wt_join_wait_ms(jo, &st, NULL, 10000));
	weft_join_drop(jo);
	wt_rt_free(rt);
}

/* --- the thread limit ------------------------------------------------- */

struct conc {
	atomic_int now, max, ran;
	int need; /* wait until this many run at once (0: just sleep) */
};

static void *concurrent(void *arg)
{
	struct conc *c = arg;
	int n = atomic_fetch_add(&c->now, 1) + 1;
	int m = atomic_load(&c->max);

	while (n > m && !atomic_compare_exchange_weak(&c->max, &m, n))
		;
	if (c->need)
		wt_wait_atomic_ge(&c->now, c->need, 5000);
	else
		wt_sleep_ms(30);
	atomic_fetch_sub(&c->now, 1);
	atomic_fetch_add(&c->ran, 1);
	return NULL;
}

WT_TEST(blocking, never_more_threads_than_the_limit)
{
	weft_runtime *rt = pool_rt(1, 2, 0);
	struct conc c = { .need = 0 };

	for (int i = 0; i < 8; i++)
		cr_assert_eq(weft_spawn_blocking(rt, concurrent, NULL, &c,
						 NULL), 0);
	cr_assert(wt_wait_atomic_ge(&c.ran, 8, 10000), "jobs did not run");
	cr_expect_eq(atomic_load(&c.max), 2, "%d at once with a limit of 2",
		     atomic_load(&c.max));
	cr_expect_leq(pool_threads(), 2);
	wt_rt_free(rt);
}

/* A burst with one idle thread: the pool starts the threads it needs. */
WT_TEST(blocking, grows_to_run_a_burst_at_once)
{
	weft_runtime *rt = pool_rt(1, 8, 0);
	struct conc warm = { .need = 0 };
	struct conc c = { .need = 6 };

	cr_assert_eq(weft_spawn_blocking(rt, concurrent, NULL, &warm, NULL),
		     0);
	cr_assert(wt_wait_atomic_ge(&warm.ran, 1, 5000)); /* one idle now */
	for (int i = 0; i < 6; i++)
		cr_assert_eq(weft_spawn_blocking(rt, concurrent, NULL, &c,
						 NULL), 0);
	cr_assert(wt_wait_atomic_ge(&c.ran, 6, 10000), "jobs did not run");
	cr_expect_eq(atomic_load(&c.max), 6,
		     "only %d of 6 ran at once with a limit of 8",
		     atomic_load(&c.max));
	wt_rt_free(rt);
}

WT_TEST(blocking, idle_threads_leave_after_the_keepalive)
{
	weft_runtime *rt = pool_rt(1, 4, 50);
	struct conc c = { .need = 3 };

	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_spawn_blocking(rt, concurrent, NULL, &c,
						 NULL), 0);
	cr_assert(wt_wait_atomic_ge(&c.ran, 3, 10000));
	cr_expect_eq(atomic_load(&c.max), 3);
	uint64_t end = wt_mono_ns() + 5000 * MS;
	while (pool_threads() > 0 && wt_mono_ns() < end)
		wt_sleep_ms(10);
	cr_expect_eq(pool_threads(), 0, "idle threads stayed");
	/* And the pool starts again afterwards (the left ones are joined). */
	weft_oneshot_rx *rx = NULL;
	void *v = NULL;
	cr_assert_eq(weft_spawn_blocking(rt, add_one, NULL, (void *)1, &rx), 0);
	cr_expect_eq(recv_result(rt, rx, &v), 0);
	cr_expect_eq((uintptr_t)v, 2);
	wt_rt_free(rt);
}

/* --- detached, abandoned ---------------------------------------------- */

static void *set_flag(void *arg)
{
	wt_sleep_ms(20); /* outlive a receiver dropped right away */
	atomic_store((atomic_int *)arg, 1);
	return arg;
}

WT_TEST(blocking, detached_and_abandoned_jobs_still_run)
{
	weft_runtime *rt = pool_rt(1, 0, 0);
	atomic_int detached = 0, abandoned = 0;
	weft_oneshot_rx *rx = NULL;

	cr_assert_eq(weft_spawn_blocking(rt, set_flag, NULL, &detached, NULL),
		     0);
	cr_assert_eq(weft_spawn_blocking(rt, set_flag, NULL, &abandoned, &rx),
		     0);
	weft_oneshot_rx_drop(rx); /* the result will have nowhere to go */
	cr_expect(wt_wait_atomic_ge(&detached, 1, 5000), "detached job");
	cr_expect(wt_wait_atomic_ge(&abandoned, 1, 5000), "abandoned job");
	wt_rt_free(rt); /* LSan: the undelivered result's channel is freed */
}

/* --- shutdown --------------------------------------------------------- */

struct slow {
	atomic_int started, finished, cancelled;
};

static void slow_cancel(void *arg)
{
	atomic_fetch_add(&((struct slow *)arg)->cancelled, 1);
}

static void *slow_job(void *arg)
{
	struct slow *s = arg;

	atomic_fetch_add(&s->started, 1);
	wt_sleep_ms(150);
	atomic_fetch_add(&s->finished, 1);
	return s;
}

/*
 * One pool thread: job A runs, job B waits in the queue. Shutdown waits
 * for A and never runs B: B's cancel callback runs instead and its
 * receiver gets -EPIPE; new jobs fail.
 */
WT_TEST(blocking, shutdown_waits_for_running_drops_queued)
{
	weft_runtime *rt = pool_rt(1, 1, 0);
	struct slow a = { 0 }, b = { 0 };
	weft_oneshot_rx *ra = NULL, *rb = NULL;
	weft_cx cx;
	weft_waker w;
	void *v = NULL;
	int st = 1;

	cr_assert_eq(weft_spawn_blocking(rt, slow_job, slow_cancel, &a, &ra),
		     0);
	cr_assert(wt_wait_atomic_ge(&a.started, 1, 5000));
	cr_assert_eq(weft_spawn_blocking(rt, slow_job, slow_cancel, &b, &rb),
		     0);
	cr_assert_eq(weft_runtime_shutdown(rt), 0);
	cr_expect_eq(atomic_load(&a.finished), 1,
		     "shutdown returned while a job ran");
	cr_expect_eq(atomic_load(&b.started), 0, "a queued job ran");
	cr_expect_eq(atomic_load(&b.cancelled), 1, "its cancel did not run");
	cr_expect_eq(atomic_load(&a.cancelled), 0, "a job ran and cancelled");
	cr_expect_eq(weft_spawn_blocking(rt, slow_job, NULL, &b, NULL),
		     -ESHUTDOWN);

	wt_noop_cx(&cx, &w);
	cr_expect_eq(weft_oneshot_recv_poll(ra, &cx, &st, &v), WEFT_READY);
	cr_expect_eq(st, 0);
	cr_expect_eq(v, &a, "A's result");
	weft_oneshot_rx_drop(ra);
	st = 1;
	cr_expect_eq(weft_oneshot_recv_poll(rb, &cx, &st, &v), WEFT_READY);
	cr_expect_eq(st, -EPIPE, "the dropped job's receiver: %d", st);
	weft_oneshot_rx_drop(rb);
	weft_runtime_free(rt);
	wt_leak_check();
}

WT_TEST(blocking, bad_arguments)
{
	weft_runtime *rt = pool_rt(1, 0, 0);
	weft_oneshot_rx *rx = (weft_oneshot_rx *)&rx;

	cr_expect_eq(weft_spawn_blocking(rt, NULL, NULL, NULL, &rx), -EINVAL);
	cr_expect_eq(rx, (weft_oneshot_rx *)&rx, "*rx written on error");
	/* NULL runtime off a worker: there is no current one. */
	cr_expect_eq(weft_spawn_blocking(NULL, add_one, NULL, NULL, NULL),
		     -EINVAL);
	wt_rt_free(rt);
}

/* --- many jobs from many tasks ----------------------------------------- */

enum { FAN_TASKS = 64, FAN_JOBS = 8 };

struct fan {
	unsigned base, k;
	int status;
	void *value;
	weft_oneshot_recv recv;
	int waiting;
};

static weft_poll fan_poll(void *self, weft_cx *cx, void *out)
{
	struct fan *f = self;

	while (f->k < FAN_JOBS) {
		if (!f->waiting) {
			weft_oneshot_rx *rx = NULL;
			uintptr_t x = f->base * FAN_JOBS + f->k;
			WT_CHECK(weft_spawn_blocking(NULL, add_one, NULL, (void *)x,
						     &rx) == 0, "spawn");
			f->recv.rx = rx;
			f->recv.value = &f->value;
			f->waiting = 1;
		}
		if (weft_oneshot_recv_desc.poll(&f->recv, cx, &f->status) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		/* READY: the future's drop runs now (weft/future.h). */
		weft_oneshot_recv_desc.drop(&f->recv);
		f->waiting = 0;
		WT_CHECK(f->status == 0 &&
				 (uintptr_t)f->value ==
					 f->base * FAN_JOBS + f->k + 1,
			 "job %u/%u: status %d", f->base, f->k, f->status);
		f->k++;
	}
	*(int *)out = (int)f->k;
	return WEFT_READY;
}

static void fan_drop(void *self)
{
	struct fan *f = self;

	if (f->waiting)
		weft_oneshot_recv_desc.drop(&f->recv);
}

static const weft_future_desc fan_desc = {
	.poll = fan_poll,
	.drop = fan_drop,
	.size = sizeof(struct fan),
	.output_size = sizeof(int),
};

WT_RT_TEST_T(blocking, many_tasks_many_jobs, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_join *j[FAN_TASKS];

	for (unsigned i = 0; i < FAN_TASKS; i++) {
		struct fan f = { .base = i };
		wt_spawn(rt, &fan_desc, &f, &j[i]);
	}
	for (unsigned i = 0; i < FAN_TASKS; i++) {
		int st = 1, n = -1;
		cr_assert(wt_join_wait_ms(j[i], &st, &n, 20000),
			  "task %u hung", i);
		cr_expect_eq(st, 0);
		cr_expect_eq(n, FAN_JOBS);
		weft_join_drop(j[i]);
	}
	wt_rt_free(rt);
}
