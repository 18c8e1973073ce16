/* SPDX-License-Identifier: MIT */
/*
 * Chase-Lev work-stealing deque; see deque.h for the contract and sources.
 * C11 atomics throughout this file.
 *
 * ThreadSanitizer does not model standalone fences, so under TSan the
 * "relaxed access + seq_cst fence" pairs become seq_cst accesses (as
 * crossbeam does); the fence versions are exercised by the -O2 stress run.
 */
#include <errno.h>
#include <stdlib.h>

#include "sched/deque.h"

int weft__deque_init(struct weft__deque *dq, unsigned log2_cap)
{
	if (log2_cap < 1 || log2_cap > 24)
		return -EINVAL;
	size_t cap = (size_t)1 << log2_cap;
	dq->buf = calloc(cap, sizeof(*dq->buf));
	if (!dq->buf)
		return -ENOMEM;
	dq->mask = (int64_t)cap - 1;
	atomic_init(&dq->top, 0);
	atomic_init(&dq->bottom, 0);
	return 0;
}

void weft__deque_destroy(struct weft__deque *dq)
{
	free(dq->buf);
	dq->buf = NULL;
}

bool weft__deque_push(struct weft__deque *dq, void *item)
{
	int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
	/* Acquire: pairs with the thieves' CAS on top, so the slot they took
	 * has been read before we overwrite it. */
	int64_t t = atomic_load_explicit(&dq->top, memory_order_acquire);

	if (b - t > dq->mask)
		return false;
	atomic_store_explicit(&dq->buf[b & dq->mask], item,
			      memory_order_relaxed);
	/* Release: publishes the slot write to whoever reads the new bottom
	 * (thieves' acquire load of bottom). */
	atomic_store_explicit(&dq->bottom, b + 1, memory_order_release);
	return true;
}

void *weft__deque_pop(struct weft__deque *dq)
{
	/* Only the owner moves bottom, so a relaxed read of it is exact. */
	int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&dq->top, memory_order_relaxed);

	while (t < b) {
		void *item = atomic_load_explicit(&dq->buf[t & dq->mask],
						  memory_order_relaxed);
		/* The CAS orders against thieves taking the same slot; the
		 * item was written by this thread, so no acquire is needed
		 * for its contents. On failure t is reloaded. */
		if (atomic_compare_exchange_weak_explicit(
			    &dq->top, &t, t + 1, memory_order_seq_cst,
			    memory_order_relaxed))
			return item;
	}
	return NULL;
}

void *weft__deque_pop_lifo(struct weft__deque *dq)
{
	int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed) - 1;
	int64_t t;

#if WEFT__TSAN
	atomic_store_explicit(&dq->bottom, b, memory_order_seq_cst);
	t = atomic_load_explicit(&dq->top, memory_order_seq_cst);
#else
	atomic_store_explicit(&dq->bottom, b, memory_order_relaxed);
	/* The fence Chase-Lev cannot do without: orders the bottom store
	 * before the top load against the thief's top load / fence / bottom
	 * load, so that a thief and the owner never both take the last item
	 * without one of them going through the CAS below. */
	atomic_thread_fence(memory_order_seq_cst);
	t = atomic_load_explicit(&dq->top, memory_order_relaxed);
#endif
	if (t > b) {
		/* Empty: restore. */
		atomic_store_explicit(&dq->bottom, b + 1, memory_order_relaxed);
		return NULL;
	}
	void *item = atomic_load_explicit(&dq->buf[b & dq->mask],
					  memory_order_relaxed);
	if (t == b) {
		/* Last item: race the thieves for it through top. */
		if (!atomic_compare_exchange_strong_explicit(
			    &dq->top, &t, t + 1, memory_order_seq_cst,
			    memory_order_relaxed))
			item = NULL;
		atomic_store_explicit(&dq->bottom, b + 1, memory_order_relaxed);
	}
	return item;
}

void *weft__deque_steal(struct weft__deque *dq)
{
	int64_t t, b;

#if WEFT__TSAN
	t = atomic_load_explicit(&dq->top, memory_order_seq_cst);
	b = atomic_load_explicit(&dq->bottom, memory_order_seq_cst);
#else
	/* Acquire on top: pairs with other thieves' CAS. */
	t = atomic_load_explicit(&dq->top, memory_order_acquire);
	/* Pairs with the fence in pop_lifo (see there). */
	atomic_thread_fence(memory_order_seq_cst);
	/* Acquire on bottom: pairs with push's release, so the slot is
	 * visible. */
	b = atomic_load_explicit(&dq->bottom, memory_order_acquire);
#endif
	if (t >= b)
		return NULL;
	/* The slot may be overwritten by a push that wrapped around if top
	 * has moved on; the CAS below then fails and the value is dropped.
	 * The relaxed atomic load keeps that race defined. */
	void *item = atomic_load_explicit(&dq->buf[t & dq->mask],
					  memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&dq->top, &t, t + 1,
						     memory_order_seq_cst,
						     memory_order_relaxed))
		return NULL;
	return item;
}

void *weft__deque_steal_into(struct weft__deque *src, struct weft__deque *dst,
			     size_t max, size_t *stolen)
{
	size_t n = weft__deque_len(src);
	void *run = NULL;
	size_t got = 0;

	n = n - n / 2; /* half, rounded up: a single item is worth taking */
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++) {
		void *item = weft__deque_steal(src);
		if (!item)
			break;
		got++;
		if (run && !weft__deque_push(dst, run))
			weft__assert(!"steal_into: destination full");
		run = item;
	}
	*stolen = got;
	return run;
}

size_t weft__deque_len(const struct weft__deque *dq)
{
	/* Acquire both so a len seen as non-zero by a parking worker's final
	 * scan reflects a push that happened before (see sched/idle.c). */
	int64_t b = atomic_load_explicit(&dq->bottom, memory_order_acquire);
	int64_t t = atomic_load_explicit(&dq->top, memory_order_acquire);
	return b > t ? (size_t)(b - t) : 0;
}
