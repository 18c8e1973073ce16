/* SPDX-License-Identifier: MIT */
/* Idle workers and unparking; see idle.h. C11 atomics. */
#include <errno.h>
#include <stdlib.h>

#include "sched/runtime.h"

int weft__idle_init(struct weft__idle *idle, unsigned nworkers)
{
	idle->sleepers = calloc(nworkers, sizeof(*idle->sleepers));
	if (!idle->sleepers)
		return -ENOMEM;
	pthread_mutex_init(&idle->lock, NULL);
	idle->nsleepers = 0;
	atomic_init(&idle->num_idle, 0);
	atomic_init(&idle->num_searching, 0);
	return 0;
}

void weft__idle_destroy(struct weft__idle *idle)
{
	if (!idle->sleepers)
		return;
	pthread_mutex_destroy(&idle->lock);
	free(idle->sleepers);
	idle->sleepers = NULL;
}

void weft__idle_notify(struct weft_runtime *rt)
{
	struct weft__idle *idle = &rt->idle;
	struct weft__worker *w;

	/* Orders the caller's push before the loads below, against the
	 * parker's count change / fence / scan (see idle.h). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&idle->num_searching, memory_order_relaxed))
		return;
	if (!atomic_load_explicit(&idle->num_idle, memory_order_relaxed))
		return;

	pthread_mutex_lock(&idle->lock);
	if (atomic_load_explicit(&idle->num_searching, memory_order_relaxed) ||
	    !idle->nsleepers) {
		pthread_mutex_unlock(&idle->lock);
		return;
	}
	w = &rt->workers[idle->sleepers[--idle->nsleepers]];
	w->in_sleepers = false;
	/* seq_cst (both): other notifiers read these counts after their own
	 * fence without the lock; the unpark below follows them. */
	atomic_fetch_sub_explicit(&idle->num_idle, 1, memory_order_seq_cst);
	/* The woken worker starts as a searcher, so that further pushes do
	 * not wake a herd (Tokio's rule). */
	atomic_fetch_add_explicit(&idle->num_searching, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&idle->lock);
	weft__worker_unpark(w);
}

bool weft__idle_try_search(struct weft_runtime *rt, struct weft__worker *w)
{
	struct weft__idle *idle = &rt->idle;

	if (w->searching)
		return true;
	unsigned n = atomic_load_explicit(&idle->num_searching,
					  memory_order_relaxed);
	if (2 * n >= rt->nworkers && rt->nworkers > 1)
		return false;
	/* seq_cst: a pusher that fences and then sees a searcher wakes
	 * nobody, so this must precede the steal scan that follows. */
	atomic_fetch_add_explicit(&idle->num_searching, 1, memory_order_seq_cst);
	w->searching = true;
	return true;
}

void weft__idle_stop_search(struct weft_runtime *rt, struct weft__worker *w)
{
	if (!w->searching)
		return;
	w->searching = false;
	/* seq_cst: the last searcher's decrement is ordered against
	 * pushers' fence-then-load of num_searching (idle.h), so either a
	 * pusher sees no searcher and wakes one, or we notify below. */
	if (atomic_fetch_sub_explicit(&rt->idle.num_searching, 1,
				      memory_order_seq_cst) == 1)
		weft__idle_notify(rt);
}

void weft__idle_register(struct weft_runtime *rt, struct weft__worker *w)
{
	struct weft__idle *idle = &rt->idle;

	pthread_mutex_lock(&idle->lock);
	idle->sleepers[idle->nsleepers++] = w->index;
	w->in_sleepers = true;
	/* seq_cst (both): the count changes precede the parker's fence and
	 * final scan (worker.c park), against the pusher's push / fence /
	 * count loads (idle.h): one of the two sees the other. */
	atomic_fetch_add_explicit(&idle->num_idle, 1, memory_order_seq_cst);
	if (w->searching) {
		w->searching = false;
		atomic_fetch_sub_explicit(&idle->num_searching, 1,
					  memory_order_seq_cst);
	}
	pthread_mutex_unlock(&idle->lock);
}

void weft__idle_unregister(struct weft_runtime *rt, struct weft__worker *w)
{
	struct weft__idle *idle = &rt->idle;

	pthread_mutex_lock(&idle->lock);
	if (w->in_sleepers) {
		for (unsigned i = 0; i < idle->nsleepers; i++) {
			if (idle->sleepers[i] != w->index)
				continue;
			idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
			break;
		}
		w->in_sleepers = false;
		/* seq_cst: as in notify, for lock-free readers of num_idle. */
		atomic_fetch_sub_explicit(&idle->num_idle, 1,
					  memory_order_seq_cst);
	} else {
		/* A notifier popped us and counted us as searching. */
		w->searching = true;
	}
	pthread_mutex_unlock(&idle->lock);
}

void weft__idle_unpark_all(struct weft_runtime *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++)
		weft__worker_unpark(&rt->workers[i]);
}
