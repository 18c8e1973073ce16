/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the runtime-level Criterion tests.
 *
 *  - WT_RT_TEST(suite, name): a test run once per runtime configuration
 *    (1, 2, 4 workers x LIFO slot on/off), like liburing's
 *    FOR_ALL_TEST_CONFIGS; the body sees `const struct wt_cfg *cfg`.
 *  - wt_rt_new / wt_rt_free: a runtime per configuration, asserting.
 *    WEFT_TEST_RING_MODE=defer|coop|plain in the environment forces every
 *    such runtime into that io_uring mode, and the test fails if the
 *    runtime reports another one while the kernel has it.
 *  - wt_parker: a user-defined, reference-counted waker that parks a plain
 *    thread (the test thread or a pthread) until woken; wt_join_wait polls a
 *    join handle from such a thread.
 *  - wt_block_on: weft_block_on asserting 0.
 *  - probe futures: wt_value (READY with a value after N yields, counting
 *    polls/drops), wt_forever (PENDING until aborted).
 *  - WT_CHECK: a check usable inside a future's poll on a worker thread
 *    (Criterion's asserts only work on the test's own thread): it prints
 *    and aborts, which Criterion reports as a crash of the test.
 *
 * Under ASan, every runtime test ends with an LSan check (a leak inside a
 * Criterion test does not fail it otherwise; docs/design.md, Testing).
 *
 * Header-only: each test program is one translation unit.
 */
#ifndef WEFT_TESTS_HELPERS_H
#define WEFT_TESTS_HELPERS_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h> /* only to probe the kernel's ring modes */
#include <weft.h>

#if defined(__SANITIZE_ADDRESS__) || defined(WEFT_SANITIZE_ADDRESS)
#define WT_ASAN 1
#include <sanitizer/lsan_interface.h>
/*
 * Criterion's runner (the parent process) leaks 48 bytes when it runs
 * tests in parallel (CRITERION_JOBS=2), which would make every program
 * exit 1 under ASan. So: leaks found at process exit do not change the
 * exit status (exitcode=0), while every ASan/UBSan error aborts
 * (abort_on_error=1; without it exitcode=0 would let a use-after-free
 * exit 0 and pass). Our own leaks are caught explicitly: wt_leak_check()
 * in the tests and wt_fini() after each. ASAN_OPTIONS/LSAN_OPTIONS from
 * the environment still override these defaults.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "abort_on_error=1";
}
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "exitcode=0";
}
#else
#define WT_ASAN 0
#endif

#define WT_UNUSED __attribute__((unused))

/* --- checks on worker threads -------------------------------------------- */

#define WT_CHECK(cond, fmt, ...)                                           \
	do {                                                               \
		if (__builtin_expect(!(cond), 0)) {                        \
			fprintf(stderr, "%s:%d: check failed: %s: " fmt    \
					"\n",                              \
				__FILE__, __LINE__, #cond, ##__VA_ARGS__); \
			abort();                                           \
		}                                                          \
	} while (0)

/* --- time -------------------------------------------------------------- */

static WT_UNUSED uint64_t wt_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Fill @b with @n pseudo-random bytes from @seed (xorshift32), so that a
 * receiver can regenerate and compare them. */
static WT_UNUSED void wt_fill(unsigned char *b, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (unsigned char)x;
	}
}

static WT_UNUSED void wt_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Wait (on a plain thread) until *@v >= @target, polling every 100 us, for
 * at most @ms milliseconds. Returns the last value seen.
 */
static WT_UNUSED int wt_wait_atomic_ge(atomic_int *v, int target,
				       unsigned ms)
{
	uint64_t deadline = wt_mono_ns() + (uint64_t)ms * 1000000u;
	int cur;
	while ((cur = atomic_load(v)) < target && wt_mono_ns() < deadline) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	return cur;
}

/* --- runtime configurations ---------------------------------------------- */

/* Plain integers only: Criterion copies parameters into the test process. */
struct wt_cfg {
	unsigned workers;
	unsigned flags;
};

static struct wt_cfg wt_cfgs[] = {
	{ 1, 0 }, { 2, 0 }, { 4, 0 },
	{ 1, WEFT_RT_NO_LIFO_SLOT }, { 2, WEFT_RT_NO_LIFO_SLOT },
	{ 4, WEFT_RT_NO_LIFO_SLOT },
};

#define WT_NCFGS (sizeof(wt_cfgs) / sizeof(wt_cfgs[0]))

static WT_UNUSED void wt_fini(void)
{
#if WT_ASAN
	/* A Criterion test that leaks still passes under ASan: ask LSan
	 * now. A crash in .fini does not mark the test failed in the TAP
	 * output, but it makes the program exit 1, which the TAP driver
	 * reports as an error. Tests check earlier with wt_leak_check()
	 * for a clean report; this is the backstop. */
	if (__lsan_do_recoverable_leak_check())
		abort();
#endif
}

/*
 * A test run for every configuration, with a timeout so that a hang fails
 * instead of stalling the suite. Use as
 *   WT_RT_TEST(suite, name) { weft_runtime *rt = wt_rt_new(cfg); ... }
 */
#define WT_RT_TEST_T(suite, name, secs)                                    \
	ParameterizedTestParameters(suite, name)                           \
	{                                                                  \
		return cr_make_param_array(struct wt_cfg, wt_cfgs,         \
					   WT_NCFGS);                      \
	}                                                                  \
	ParameterizedTest(const struct wt_cfg *cfg, suite, name,           \
			  .timeout = (secs), .fini = wt_fini)
#define WT_RT_TEST(suite, name) WT_RT_TEST_T(suite, name, 10)

/* A plain (single-configuration) test with a timeout and the same fini. */
#define WT_TEST_T(suite, name, secs)                                       \
	Test(suite, name, .timeout = (secs), .fini = wt_fini)
#define WT_TEST(suite, name) WT_TEST_T(suite, name, 10)

static WT_UNUSED void wt_log_sink(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= WEFT_LOG_WARN)
		fprintf(stderr, "weft log %d: %s\n", level, msg);
}

/* --- ring mode from the environment ------------------------------------ */

/*
 * WEFT_TEST_RING_MODE selects the io_uring mode of every runtime wt_rt_new
 * builds, so one `make check` per mode covers all of them without each test
 * knowing (.ci/run does this). Unset or empty: the runtime's own choice.
 */
struct wt_ring_mode {
	const char *name;   /* value of WEFT_TEST_RING_MODE */
	unsigned rt_flags;  /* ORed into weft_runtime_config.flags */
	unsigned mode;      /* WEFT_RING_* the runtime must report */
	int setup_flags;    /* io_uring_setup flags; -1: headers lack them */
};

static const struct wt_ring_mode wt_ring_modes[] = {
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_DEFER_TASKRUN)
	{ "defer", 0, WEFT_RING_DEFER_TASKRUN,
	  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN },
#else
	{ "defer", 0, WEFT_RING_DEFER_TASKRUN, -1 },
#endif
#if defined(IORING_SETUP_COOP_TASKRUN) && defined(IORING_SETUP_TASKRUN_FLAG)
	{ "coop", WEFT_RT_NO_DEFER_TASKRUN, WEFT_RING_COOP_TASKRUN,
	  IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG },
#else
	{ "coop", WEFT_RT_NO_DEFER_TASKRUN, WEFT_RING_COOP_TASKRUN, -1 },
#endif
	{ "plain", WEFT_RT_NO_COOP_TASKRUN, WEFT_RING_PLAIN, 0 },
};

/* The mode WEFT_TEST_RING_MODE asks for, or NULL; fails on a bad value. */
static WT_UNUSED const struct wt_ring_mode *wt_ring_mode_wanted(void)
{
	const char *v = getenv("WEFT_TEST_RING_MODE");
	if (!v || !*v)
		return NULL;
	for (size_t i = 0; i < sizeof(wt_ring_modes) / sizeof(wt_ring_modes[0]);
	     i++)
		if (!strcmp(v, wt_ring_modes[i].name))
			return &wt_ring_modes[i];
	cr_assert_fail("WEFT_TEST_RING_MODE=%s: want defer, coop or plain", v);
	return NULL;
}

/* Whether this kernel sets up a ring in mode @m (a throwaway ring). */
static WT_UNUSED bool wt_ring_mode_supported(const struct wt_ring_mode *m)
{
	struct io_uring ring;
	if (m->setup_flags < 0)
		return false;
	if (io_uring_queue_init(4, &ring, (unsigned)m->setup_flags) < 0)
		return false;
	io_uring_queue_exit(&ring);
	return true;
}

/*
 * Fail unless @rt runs in mode @m, or, where the kernel lacks @m, in a
 * lesser one: proof that the requested mode really took effect.
 */
static WT_UNUSED void wt_ring_mode_check(weft_runtime *rt,
					 const struct wt_ring_mode *m)
{
	weft_runtime_metrics met = { .size = sizeof(met) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &met), 0);
	if (wt_ring_mode_supported(m))
		cr_assert_eq(met.ring_mode, m->mode,
			     "WEFT_TEST_RING_MODE=%s: ring_mode is %u, want %u",
			     m->name, met.ring_mode, m->mode);
	else
		cr_assert_lt(met.ring_mode, m->mode,
			     "WEFT_TEST_RING_MODE=%s (not in this kernel): "
			     "ring_mode is %u", m->name, met.ring_mode);
}

/* Create a runtime for @c, asserting success. */
static WT_UNUSED weft_runtime *wt_rt_new(const struct wt_cfg *c)
{
	const struct wt_ring_mode *mode = wt_ring_mode_wanted();
	weft_runtime_config rc;
	weft_runtime *rt = NULL;
	weft_runtime_config_init(&rc);
	rc.workers = c->workers;
	rc.flags |= c->flags | (mode ? mode->rt_flags : 0);
	rc.log = wt_log_sink;
	int err = weft_runtime_new(&rc, &rt);
	cr_assert_eq(err, 0, "weft_runtime_new(workers=%u, flags=%#x): %s",
		     c->workers, rc.flags, weft_strerror(err));
	cr_assert_not_null(rt);
	cr_assert_eq(weft_runtime_workers(rt), c->workers);
	if (mode)
		wt_ring_mode_check(rt, mode);
	/* Which configuration failed: run the program with --verbose. */
	cr_log_info("runtime: %u workers, LIFO slot %s, ring mode %s",
		    c->workers, (c->flags & WEFT_RT_NO_LIFO_SLOT) ? "off" : "on",
		    mode ? mode->name : "default");
	return rt;
}

/*
 * Under ASan: fail the test if memory is unreachable now. Call it once
 * everything the test made is freed (wt_rt_free does).
 */
#if WT_ASAN
#define wt_leak_check()                                                    \
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0,                \
		     "LeakSanitizer found leaks (report above)")
#else
#define wt_leak_check() ((void)0)
#endif

/*
 * Shut down (asserting 0) and free, then check for leaks: join handles,
 * wakers and everything the tasks owned must be released by then.
 */
static WT_UNUSED void wt_rt_free(weft_runtime *rt)
{
	int err = weft_runtime_shutdown(rt);
	cr_assert_eq(err, 0, "weft_runtime_shutdown: %s", weft_strerror(err));
	weft_runtime_free(rt);
	wt_leak_check();
}

/* --- a waker that parks a plain thread ----------------------------------- */

/*
 * Reference counted: the runtime may keep a clone after the waiter is gone
 * (a join handle's stored waker, a oneshot's). A clone that is never dropped
 * leaks the parker, which LSan reports under ASan.
 */
struct wt_parker {
	atomic_int refs;
	atomic_int wakes; /* wake + wake_by_ref calls */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool notified;
};

static void wt_parker_unref(struct wt_parker *p)
{
	if (atomic_fetch_sub(&p->refs, 1) == 1) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
	}
}

static void wt_parker_notify(struct wt_parker *p)
{
	atomic_fetch_add(&p->wakes, 1);
	pthread_mutex_lock(&p->mu);
	p->notified = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static weft_waker wt_parker_clone(const void *data);

static void wt_parker_wake(const void *data)
{
	struct wt_parker *p = (struct wt_parker *)data;
	wt_parker_notify(p);
	wt_parker_unref(p);
}

static void wt_parker_wake_by_ref(const void *data)
{
	wt_parker_notify((struct wt_parker *)data);
}

static void wt_parker_drop(const void *data)
{
	wt_parker_unref((struct wt_parker *)data);
}

static const weft_waker_vtable wt_parker_vtable = {
	.clone = wt_parker_clone,
	.wake = wt_parker_wake,
	.wake_by_ref = wt_parker_wake_by_ref,
	.drop = wt_parker_drop,
};

static weft_waker wt_parker_clone(const void *data)
{
	struct wt_parker *p = (struct wt_parker *)data;
	atomic_fetch_add(&p->refs, 1);
	return (weft_waker){ &wt_parker_vtable, p };
}

/* A new parker with one reference (the caller's). */
static WT_UNUSED struct wt_parker *wt_parker_new(void)
{
	struct wt_parker *p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	atomic_init(&p->refs, 1);
	atomic_init(&p->wakes, 0);
	pthread_condattr_t a;
	pthread_mutex_init(&p->mu, NULL);
	/* Monotonic: a wall-clock step must not end a wait early. */
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &a);
	pthread_condattr_destroy(&a);
	return p;
}

/* A waker for @p holding a new reference. */
static WT_UNUSED weft_waker wt_parker_waker(struct wt_parker *p)
{
	return wt_parker_clone(p);
}

/* Drop the caller's reference. */
static WT_UNUSED void wt_parker_release(struct wt_parker *p)
{
	wt_parker_unref(p);
}

/*
 * A context for polling futures by hand from the test thread, whose waker
 * counts its wakes (wt_probe_wakes). wt_probe_fini releases both
 * references.
 */
struct wt_probe {
	struct wt_parker *p;
	weft_waker w;
	weft_cx cx;
};

static WT_UNUSED void wt_probe_init(struct wt_probe *pr)
{
	pr->p = wt_parker_new();
	pr->w = wt_parker_waker(pr->p);
	weft_cx_init(&pr->cx, &pr->w);
}

static WT_UNUSED int wt_probe_wakes(struct wt_probe *pr)
{
	return atomic_load(&pr->p->wakes);
}

static WT_UNUSED void wt_probe_fini(struct wt_probe *pr)
{
	weft_waker_drop(&pr->w);
	wt_parker_release(pr->p);
}

/*
 * Wait until woken (consuming the notification) for at most @ms ms.
 * Returns false on timeout.
 */
static WT_UNUSED bool wt_parker_wait(struct wt_parker *p, unsigned ms)
{
	struct timespec ts;
	bool ok = true;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->mu);
	while (!p->notified) {
		if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT) {
			ok = p->notified;
			break;
		}
	}
	p->notified = false;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

/*
 * Await @join from a plain thread (not a worker): poll it with a parker
 * waker until READY. Returns false on timeout (@ms without a wake). On true,
 * *@status is what weft_join_poll reported.
 */
static WT_UNUSED bool wt_join_wait_ms(weft_join *join, int *status,
				      void *out, unsigned ms)
{
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	weft_cx cx;
	bool ok = true;
	weft_cx_init(&cx, &w);
	while (weft_join_poll(join, &cx, status, out) == WEFT_PENDING) {
		if (!wt_parker_wait(p, ms)) {
			ok = false;
			break;
		}
	}
	weft_waker_drop(&w);
	wt_parker_release(p);
	return ok;
}

/* wt_join_wait_ms with a 5 s limit, asserting it finished. */
#define wt_join_wait(join, status, out)                                    \
	cr_assert(wt_join_wait_ms((join), (status), (out), 5000),          \
		  "join did not finish within 5 s")

/* --- spawning and block_on ----------------------------------------------- */

#define wt_spawn(rt, desc, init, join)                                     \
	do {                                                               \
		int wt_err_ = weft_spawn((rt), (desc), (init), (join));    \
		cr_assert_eq(wt_err_, 0, "weft_spawn: %s",                 \
			     weft_strerror(wt_err_));                      \
	} while (0)

#define wt_block_on(rt, desc, init, out)                                   \
	do {                                                               \
		int wt_err_ = weft_block_on((rt), (desc), (init), (out));  \
		cr_assert_eq(wt_err_, 0, "weft_block_on: %s",              \
			     weft_strerror(wt_err_));                      \
	} while (0)

/* --- probe futures ---------------------------------------------------- */

/* Counters a probe updates; live in the test's stack frame. */
struct wt_counters {
	atomic_int polls;
	atomic_int readies;
	atomic_int drops;
	atomic_int drop_outputs;
	atomic_llong dropped_output_sum; /* sum of outputs drop_output saw */
};

/*
 * wt_value: yields @yields times through weft_yield, then READY with
 * @value (int64_t). Every poll happens on a worker of some runtime.
 */
struct wt_value {
	int64_t value;
	unsigned yields;
	struct wt_counters *c; /* optional */
	/* private */
	unsigned done_yields;
	weft_yield y;
};

static weft_poll wt_value_poll(void *self, weft_cx *cx, void *out)
{
	struct wt_value *s = self;
	if (s->c)
		atomic_fetch_add(&s->c->polls, 1);
	WT_CHECK(weft_worker_index() >= 0, "polled off a worker");
	while (s->done_yields < s->yields) {
		if (weft_yield_poll(&s->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		s->done_yields++;
		s->y = (weft_yield)WEFT_YIELD_INIT;
	}
	*(int64_t *)out = s->value;
	if (s->c)
		atomic_fetch_add(&s->c->readies, 1);
	return WEFT_READY;
}

static void wt_value_drop(void *self)
{
	struct wt_value *s = self;
	if (s->c)
		atomic_fetch_add(&s->c->drops, 1);
}

static void wt_value_drop_output(void *out);

static const weft_future_desc wt_value_desc = {
	.poll = wt_value_poll,
	.drop = wt_value_drop,
	.drop_output = wt_value_drop_output,
	.size = sizeof(struct wt_value),
	.output_size = sizeof(int64_t),
};

/*
 * drop_output has no state pointer, so counters for it are global: the
 * process (one per Criterion test) has one set.
 */
static struct wt_counters *wt_output_counters;

static void wt_value_drop_output(void *out)
{
	if (wt_output_counters) {
		atomic_fetch_add(&wt_output_counters->drop_outputs, 1);
		atomic_fetch_add(&wt_output_counters->dropped_output_sum,
				 *(int64_t *)out);
	}
}

static WT_UNUSED struct wt_value wt_value_init(int64_t v, unsigned yields,
					       struct wt_counters *c)
{
	return (struct wt_value){ .value = v, .yields = yields, .c = c,
				  .y = WEFT_YIELD_INIT };
}

/*
 * wt_forever: PENDING on every poll, never arranging a wake: the task
 * stays idle until aborted or the runtime shuts down. Its output is never
 * produced.
 */
struct wt_forever {
	struct wt_counters *c;
};

static weft_poll wt_forever_poll(void *self, weft_cx *cx, void *out)
{
	struct wt_forever *s = self;
	(void)cx;
	(void)out;
	if (s->c)
		atomic_fetch_add(&s->c->polls, 1);
	return WEFT_PENDING;
}

static void wt_forever_drop(void *self)
{
	struct wt_forever *s = self;
	if (s->c)
		atomic_fetch_add(&s->c->drops, 1);
}

static WT_UNUSED const weft_future_desc wt_forever_desc = {
	.poll = wt_forever_poll,
	.drop = wt_forever_drop,
	.size = sizeof(struct wt_forever),
	.output_size = sizeof(int64_t),
};

/*
 * Spawn @n wt_value tasks from this (non-worker) thread with values
 * @base + i, join them all, and return the sum of their outputs. Asserts
 * every join reports 0.
 */
static WT_UNUSED int64_t wt_spawn_n_join(weft_runtime *rt, unsigned n,
					 int64_t base, unsigned yields,
					 struct wt_counters *c)
{
	weft_join **joins = calloc(n, sizeof(*joins));
	int64_t sum = 0;
	cr_assert_not_null(joins);
	for (unsigned i = 0; i < n; i++) {
		struct wt_value v = wt_value_init(base + i, yields, c);
		wt_spawn(rt, &wt_value_desc, &v, &joins[i]);
	}
	for (unsigned i = 0; i < n; i++) {
		int st = 1;
		int64_t out = -1;
		wt_join_wait(joins[i], &st, &out);
		cr_assert_eq(st, 0, "task %u: %s", i, weft_strerror(st));
		cr_assert_eq(out, base + i, "task %u output", i);
		sum += out;
		weft_join_drop(joins[i]);
	}
	free(joins);
	return sum;
}

/* --- a future that runs a callback once on a worker ---------------------- */

/*
 * wt_call: READY at its first poll with fn(arg) as output (int64_t). Used
 * with weft_block_on to run a check on a worker thread.
 */
struct wt_call {
	int64_t (*fn)(void *arg);
	void *arg;
};

static weft_poll wt_call_poll(void *self, weft_cx *cx, void *out)
{
	struct wt_call *s = self;
	(void)cx;
	*(int64_t *)out = s->fn(s->arg);
	return WEFT_READY;
}

static WT_UNUSED const weft_future_desc wt_call_desc = {
	.poll = wt_call_poll,
	.size = sizeof(struct wt_call),
	.output_size = sizeof(int64_t),
};

/* Run @fn(@arg) on a worker of @rt and return its result. */
static WT_UNUSED int64_t wt_run_on_worker(weft_runtime *rt,
					  int64_t (*fn)(void *), void *arg)
{
	struct wt_call c = { fn, arg };
	int64_t out = INT64_MIN;
	wt_block_on(rt, &wt_call_desc, &c, &out);
	return out;
}

/* --- one op as a task ------------------------------------------------- */

/*
 * wt_op: polls one weft_io (initialised by the caller before spawning: the
 * state is copied into the task) and returns its result as an int64_t.
 * Its drop drops the op, so aborting it cancels the op.
 */
struct wt_op {
	weft_io io;
	struct wt_counters *c; /* optional */
};

static weft_poll wt_op_poll(void *self, weft_cx *cx, void *out)
{
	struct wt_op *s = self;
	if (s->c)
		atomic_fetch_add(&s->c->polls, 1);
	return weft_io_poll(&s->io, cx, (int64_t *)out);
}

static void wt_op_drop(void *self)
{
	struct wt_op *s = self;
	weft_io_drop(&s->io);
	if (s->c)
		atomic_fetch_add(&s->c->drops, 1);
}

static WT_UNUSED const weft_future_desc wt_op_desc = {
	.poll = wt_op_poll,
	.drop = wt_op_drop,
	.size = sizeof(struct wt_op),
	.output_size = sizeof(int64_t),
};

/* Run the op @io (initialised, never polled) to completion on @rt. */
static WT_UNUSED int64_t wt_op_run(weft_runtime *rt, const weft_io *io)
{
	struct wt_op op = { .io = *io };
	int64_t res = INT64_MIN;
	wt_block_on(rt, &wt_op_desc, &op, &res);
	return res;
}

/* Spawn the op @io; its join handle yields the result. */
static WT_UNUSED weft_join *wt_op_spawn(weft_runtime *rt, const weft_io *io,
					struct wt_counters *c)
{
	struct wt_op op = { .io = *io, .c = c };
	weft_join *j = NULL;
	wt_spawn(rt, &wt_op_desc, &op, &j);
	return j;
}

/* Join an op task from the test thread; returns its result. */
static WT_UNUSED int64_t wt_op_join(weft_join *j)
{
	int st = 1;
	int64_t res = INT64_MIN;
	wt_join_wait(j, &st, &res);
	cr_assert_eq(st, 0, "op task: %s", weft_strerror(st));
	weft_join_drop(j);
	return res;
}

#endif /* WEFT_TESTS_HELPERS_H */
