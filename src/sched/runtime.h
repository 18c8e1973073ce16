/* SPDX-License-Identifier: MIT */
/*
 * The runtime and its workers: the structures the scheduler, the task
 * module and the io driver share, and the scheduler's entry points.
 */
#ifndef WEFT_SCHED_RUNTIME_H
#define WEFT_SCHED_RUNTIME_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include <weft/runtime.h>

#include "internal.h"
#include "io/driver.h"
#include "sched/blocking.h"
#include "sched/deque.h"
#include "sched/idle.h"
#include "sched/injector.h"
#include "task/hooks.h"
#include "task/owned.h"
#include "time/timers.h"

struct weft__task;

/* Per-worker counters: written by the owner with relaxed atomics, summed on
 * read by weft_runtime_metrics_get (the io counters live in the driver). */
struct weft__worker_metrics {
	_Atomic uint64_t spawned, polls, lifo_polls, steals, injector_pops,
		overflows, parks;
};

#define WEFT__METRIC_INC(w, field) \
	atomic_store_explicit(&(w)->m.field, \
		atomic_load_explicit(&(w)->m.field, memory_order_relaxed) + 1, \
		memory_order_relaxed)
#define WEFT__METRIC_ADD(w, field, n) \
	atomic_store_explicit(&(w)->m.field, \
		atomic_load_explicit(&(w)->m.field, memory_order_relaxed) + (n), \
		memory_order_relaxed)

struct weft__worker {
	/* Owner-only hot data. */
	struct weft_runtime *rt;
	unsigned index;
	uint32_t tick;
	uint64_t rng;
	struct weft__task *lifo;
	bool searching;
	bool fifo_owner; /* WEFT_RT_FIFO_OWNER, kept here for next_task */
	/* A task went to the bottom of the deque to run after the others (a
	 * yield, the LIFO budget): the next pop takes from the top. */
	bool pop_top;

	/* Shared with other threads. */
	struct weft__driver driver; /* ring, inbox, park state, io counters */
	struct weft__timers timers; /* wheel owner-only; inbox shared */
	struct weft__deque dq weft__cacheline_aligned;
	bool in_sleepers; /* under rt->idle.lock */
	pthread_t thread;
	struct weft__worker_metrics m weft__cacheline_aligned;
} weft__cacheline_aligned;

struct weft_runtime {
	/* First: task/hooks.h finds it at offset 0 without a call. */
	struct weft__owned owned;
	unsigned nworkers;
	unsigned flags;
	unsigned spin_rounds;
	unsigned ring_entries;
	unsigned ring_mode;
	struct weft__worker *workers;
	struct weft__injector injector;
	struct weft__idle idle;
	struct weft__blocking blocking; /* weft_spawn_blocking's pool */
	_Atomic uint64_t spawned_remote; /* spawns from non-worker threads */
	_Atomic bool shutdown;   /* workers exit once the owned list is empty */
	bool shut_down;          /* weft_runtime_shutdown completed */
	/* Futex word of weft_runtime_shutdown_timeout: WEFT__DRAIN_*. */
	_Atomic uint32_t drain;
	pthread_mutex_t shutdown_lock;

	/* start-up handshake */
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	unsigned started;
	int start_err;
	int go; /* 1 run, -1 abort */

	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
};

/* rt->drain: nobody drains; a drainer may sleep on the word; a task
 * completion emptied the owned list since the drainer last looked. */
enum { WEFT__DRAIN_NONE = 0, WEFT__DRAIN_WAITING = 1, WEFT__DRAIN_WOKEN = 2 };

/* The owned list became empty: wake a draining weft_runtime_shutdown_timeout
 * if there is one (runtime.c). Any thread. */
void weft__drain_wake(struct weft_runtime *rt);

/* The worker running on this thread, or NULL. */
struct weft__worker *weft__worker_current(void);

/* The signal mask of weft's threads (workers, blocking pool): every
 * signal but the synchronous fault signals. */
void weft__signals_for_threads(sigset_t *set);

/* The task hooks (weft__sched_spawn, _schedule, _yield, _release, _owned,
 * weft__log) are declared in task/hooks.h. */
_Static_assert(offsetof(struct weft_runtime, owned) == 0,
	       "task/hooks.h: weft__sched_owned");

/* Wake worker @w if it is parked. Any thread. */
static inline void weft__worker_unpark(struct weft__worker *w)
{
	weft__driver_unpark(&w->driver);
}

/* Worker thread entry (worker.c). */
void *weft__worker_main(void *arg);

#endif /* WEFT_SCHED_RUNTIME_H */
