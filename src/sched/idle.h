/* SPDX-License-Identifier: MIT */
/*
 * Idle workers: who is parked, who is searching for work, and whom to wake
 * when work appears (after Tokio's scheduler/multi_thread/idle.rs).
 *
 * Rules:
 *  - At most half the workers search (steal) at once.
 *  - A push of new work wakes one parked worker only if none is searching;
 *    the woken worker starts out searching.
 *  - A searcher that finds work stops searching; if it was the last one it
 *    wakes another, which may find the rest.
 *  - A worker that parks registers itself, then scans every queue once more
 *    before sleeping. Pushers make their push visible, fence, then read the
 *    idle and searching counts; parkers change the counts, fence, then
 *    scan: with both fences seq_cst, either the pusher sees the parker or
 *    the parker sees the work. No wakeup is lost.
 *
 * The sleepers list is a stack under a mutex (only slow paths take it);
 * num_idle and num_searching are atomics the fast path reads lock-free.
 */
#ifndef WEFT_SCHED_IDLE_H
#define WEFT_SCHED_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct weft_runtime;
struct weft__worker;

struct weft__idle {
	pthread_mutex_t lock;
	unsigned *sleepers; /* worker indices, under lock */
	unsigned nsleepers; /* under lock */
	_Atomic unsigned num_idle;
	_Atomic unsigned num_searching;
};

int weft__idle_init(struct weft__idle *idle, unsigned nworkers);
void weft__idle_destroy(struct weft__idle *idle);

/* Work was pushed: wake a parked worker if nobody is searching. */
void weft__idle_notify(struct weft_runtime *rt);

/* Owner: try to become a searcher. */
bool weft__idle_try_search(struct weft_runtime *rt, struct weft__worker *w);

/* Owner: found work; stop searching (waking another if last). */
void weft__idle_stop_search(struct weft_runtime *rt, struct weft__worker *w);

/* Owner, before parking: enter the sleepers list (stops searching). */
void weft__idle_register(struct weft_runtime *rt, struct weft__worker *w);

/*
 * Owner, after waking or deciding not to park: leave the sleepers list. If
 * a notifier had already taken us out, we were counted as a searcher and
 * w->searching becomes true.
 */
void weft__idle_unregister(struct weft_runtime *rt, struct weft__worker *w);

/* Unpark every worker (shutdown). */
void weft__idle_unpark_all(struct weft_runtime *rt);

#endif /* WEFT_SCHED_IDLE_H */
