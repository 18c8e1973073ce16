/* SPDX-License-Identifier: MIT */
/*
 * Shared scaffolding for the standalone stress programs (liburing's test
 * convention): exit 0 pass, 1 fail, 77 skip; loops bounded in time and in
 * count; a watchdog that fails the run when no progress is made for
 * STRESS_WATCHDOG_S seconds; a seed printed at start so a failure can be
 * replayed.
 *
 * Knobs, all optional:
 *   argv[1] or WEFT_STRESS_SEED   seed (decimal or 0x hex); default: time
 *   WEFT_STRESS_SCALE             multiply the iteration counts (e.g. 0.1,
 *                                 10); default 1
 *   WEFT_STRESS_SECONDS           time budget for the main loop; default
 *                                 8 s (12 s under a sanitizer); at least
 *                                 one round always runs
 *   WEFT_STRESS_VERBOSE           print per-round lines
 *
 * Header-only: each program is a single translation unit.
 */
#ifndef WEFT_TESTS_STRESS_H
#define WEFT_TESTS_STRESS_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STRESS_PASS 0
#define STRESS_FAIL 1
#define STRESS_SKIP 77

#ifndef STRESS_WATCHDOG_S
#define STRESS_WATCHDOG_S 20
#endif

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__) || \
	defined(WEFT_SANITIZE_THREAD) || defined(WEFT_SANITIZE_ADDRESS)
#define STRESS_SANITIZED 1
#else
#define STRESS_SANITIZED 0
#endif
#if defined(__SANITIZE_THREAD__) || defined(WEFT_SANITIZE_THREAD)
#define STRESS_TSAN 1
#else
#define STRESS_TSAN 0
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#undef STRESS_SANITIZED
#define STRESS_SANITIZED 1
#endif
#if __has_feature(thread_sanitizer)
#undef STRESS_TSAN
#define STRESS_TSAN 1
#endif
#endif

static const char *stress_name = "stress";
static uint64_t stress_seed;
static double stress_scale = 1.0;
static double stress_seconds;
static int stress_verbose;
static atomic_uint_fast64_t stress_progress_ctr;
static atomic_bool stress_watchdog_stop;
static pthread_t stress_watchdog_thread;
static const char *_Atomic stress_phase = "start";
static uint64_t stress_t0;

static inline uint64_t stress_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double stress_elapsed_s(void)
{
	return (double)(stress_now_ns() - stress_t0) / 1e9;
}

/* Report a failure and exit 1 (from any thread). */
static void __attribute__((noreturn, unused, format(printf, 1, 2)))
stress_fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: FAIL (seed %" PRIu64 ", phase %s, %.1f s): ",
		stress_name, stress_seed, atomic_load(&stress_phase),
		stress_elapsed_s());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	_exit(STRESS_FAIL);
}

static void __attribute__((noreturn, unused, format(printf, 1, 2)))
stress_skip(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: SKIP: ", stress_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(STRESS_SKIP);
}

/* A check that holds in every build (not compiled out by NDEBUG). */
#define STRESS_CHECK(cond, fmt, ...)                                       \
	do {                                                               \
		if (__builtin_expect(!(cond), 0))                          \
			stress_fail("%s:%d: %s: " fmt, __FILE__, __LINE__, \
				    #cond, ##__VA_ARGS__);                 \
	} while (0)

static inline void stress_progress(void)
{
	atomic_fetch_add_explicit(&stress_progress_ctr, 1,
				  memory_order_relaxed);
}

static inline void stress_set_phase(const char *phase)
{
	atomic_store(&stress_phase, phase);
}

static void *stress_watchdog_main(void *arg)
{
	(void)arg;
	uint64_t last = atomic_load(&stress_progress_ctr);
	unsigned idle_ms = 0;
	while (!atomic_load(&stress_watchdog_stop)) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		uint64_t now = atomic_load(&stress_progress_ctr);
		if (now != last) {
			last = now;
			idle_ms = 0;
			continue;
		}
		idle_ms += 100;
		if (idle_ms >= STRESS_WATCHDOG_S * 1000u)
			stress_fail("watchdog: no progress for %d s (a hang, "
				    "a lost wake or a deadlock)",
				    STRESS_WATCHDOG_S);
	}
	return NULL;
}

/* --- random numbers: splitmix64 seeds xoshiro-like per-thread state ----- */

static inline uint64_t stress_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct stress_rng {
	uint64_t s;
};

static inline void stress_rng_init(struct stress_rng *r, uint64_t stream)
{
	r->s = stress_seed ^ (stream * 0xd1342543de82ef95ull);
	(void)stress_splitmix(&r->s);
}

static inline uint64_t stress_rand(struct stress_rng *r)
{
	return stress_splitmix(&r->s);
}

/* Uniform in [0, n). */
static inline uint64_t stress_below(struct stress_rng *r, uint64_t n)
{
	return n ? stress_rand(r) % n : 0;
}

static inline bool stress_chance(struct stress_rng *r, unsigned percent)
{
	return stress_below(r, 100) < percent;
}

/* Scale a default iteration count by WEFT_STRESS_SCALE (at least 1). */
static inline uint64_t stress_iters(uint64_t dflt)
{
	double v = (double)dflt * stress_scale;
	return v < 1 ? 1 : (uint64_t)v;
}

/* True while the time budget lasts. */
static inline bool stress_time_left(void)
{
	return stress_elapsed_s() < stress_seconds;
}

static inline void stress_sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

static void __attribute__((unused))
stress_init(const char *name, int argc, char **argv)
{
	const char *s;
	stress_name = name;
	stress_t0 = stress_now_ns();
	setvbuf(stdout, NULL, _IOLBF, 0);

	s = argc > 1 ? argv[1] : getenv("WEFT_STRESS_SEED");
	if (s && *s)
		stress_seed = strtoull(s, NULL, 0);
	else
		stress_seed = stress_now_ns() ^ ((uint64_t)getpid() << 32);
	s = getenv("WEFT_STRESS_SCALE");
	if (s && *s && atof(s) > 0)
		stress_scale = atof(s);
	stress_seconds = STRESS_SANITIZED ? 12 : 8;
	s = getenv("WEFT_STRESS_SECONDS");
	if (s && *s && atof(s) > 0)
		stress_seconds = atof(s);
	s = getenv("WEFT_STRESS_VERBOSE");
	stress_verbose = s && *s && *s != '0';

	printf("%s: seed %" PRIu64 " (replay: %s %" PRIu64
	       "), scale %g, budget %g s%s\n",
	       name, stress_seed, argv[0], stress_seed, stress_scale,
	       stress_seconds, STRESS_SANITIZED ? ", sanitized" : "");
	if (pthread_create(&stress_watchdog_thread, NULL,
			   stress_watchdog_main, NULL))
		stress_fail("cannot start the watchdog thread");
}

/* Stop the watchdog; print the summary. Returns STRESS_PASS. */
static int __attribute__((unused, format(printf, 1, 2)))
stress_finish(const char *fmt, ...)
{
	va_list ap;
	atomic_store(&stress_watchdog_stop, true);
	pthread_join(stress_watchdog_thread, NULL);
	printf("%s: PASS in %.2f s: ", stress_name, stress_elapsed_s());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return STRESS_PASS;
}

/* --- helpers for programs that use the weft runtime ---------------------
 *
 * Available when <weft.h> is included before this header.
 */
#ifdef WEFT_H

/* A reference-counted waker that parks a plain thread (see tests/helpers.h
 * for the Criterion twin). */
struct stress_parker {
	atomic_int refs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool notified;
};

static void stress_parker_unref(struct stress_parker *p)
{
	if (atomic_fetch_sub(&p->refs, 1) == 1) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
	}
}

static void stress_parker_notify(struct stress_parker *p)
{
	pthread_mutex_lock(&p->mu);
	p->notified = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static weft_waker stress_parker_clone(const void *d);
static void stress_parker_wake(const void *d)
{
	stress_parker_notify((struct stress_parker *)d);
	stress_parker_unref((struct stress_parker *)d);
}
static void stress_parker_wake_by_ref(const void *d)
{
	stress_parker_notify((struct stress_parker *)d);
}
static void stress_parker_drop(const void *d)
{
	stress_parker_unref((struct stress_parker *)d);
}
static const weft_waker_vtable stress_parker_vt = {
	stress_parker_clone, stress_parker_wake, stress_parker_wake_by_ref,
	stress_parker_drop,
};
static weft_waker stress_parker_clone(const void *d)
{
	atomic_fetch_add(&((struct stress_parker *)d)->refs, 1);
	return (weft_waker){ &stress_parker_vt, d };
}

/*
 * Await @j from a plain thread: returns weft_join_poll's status. Waits
 * without limit; the watchdog catches a join that never completes.
 */
static __attribute__((unused)) int stress_join_wait(weft_join *j, void *out)
{
	struct stress_parker *p = calloc(1, sizeof(*p));
	int st = 1;
	if (!p)
		stress_fail("out of memory");
	atomic_init(&p->refs, 1);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	weft_waker w = stress_parker_clone(p);
	weft_cx cx;
	weft_cx_init(&cx, &w);
	while (weft_join_poll(j, &cx, &st, out) == WEFT_PENDING) {
		pthread_mutex_lock(&p->mu);
		while (!p->notified)
			pthread_cond_wait(&p->cv, &p->mu);
		p->notified = false;
		pthread_mutex_unlock(&p->mu);
	}
	weft_waker_drop(&w);
	stress_parker_unref(p);
	return st;
}

/* A runtime with @workers workers, LIFO slot on or off; fails on error. */
static __attribute__((unused)) weft_runtime *
stress_runtime(unsigned workers, bool no_lifo)
{
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_runtime_config_init(&cfg);
	cfg.workers = workers;
	if (no_lifo)
		cfg.flags |= WEFT_RT_NO_LIFO_SLOT;
	int err = weft_runtime_new(&cfg, &rt);
	if (err == -EPERM || err == -ENOSYS)
		stress_skip("io_uring unavailable: %s", weft_strerror(err));
	STRESS_CHECK(err == 0, "weft_runtime_new: %s", weft_strerror(err));
	return rt;
}

#endif /* WEFT_H */

#endif /* WEFT_TESTS_STRESS_H */
