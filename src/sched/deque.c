/* SPDX-License-Identifier: MIT */
/*
 * Chase-Lev work-stealing deque; see deque.h for the contract and sources.
 * C11 atomics throughout this file.
 *
 * ThreadSanitizer does not model standalone fences, so under TSan the
 * thief's "load + seq_cst fence + load" becomes seq_cst loads (as
 * crossbeam does); the fence version is exercised by the -O2 stress run.
 * The owner's side needs no such switch: pop_lifo orders its bottom store
 * and top load with a seq_cst exchange and a seq_cst load.
 *
 * Who takes what, and why a batch costs one CAS only for a FIFO owner
 * ------------------------------------------------------------------
 * Every taker except pop_lifo claims items by moving top forward with a
 * CAS, so their claims are disjoint intervals of indices. pop_lifo is
 * Chase-Lev's take: the owner stores bottom = b and then reads top = t'
 * (a seq_cst exchange and a seq_cst load, which order like Lê et al.'s
 * store / seq_cst fence / load) and, if b > t', takes item b with no CAS
 * at all. Only b == t' (the last item) goes through the CAS.
 *
 * A thief reads top = t, fences (seq_cst), reads bottom = B, and claims
 * [t, t + n) by CAS(top, t, t + n).
 *
 * n == 1 against pop_lifo (Lê et al.): take the owner's exchange and the
 * thief's fence in S. If the exchange is first, the thief's bottom load
 * sees b or a later value, so it never claims index b while the owner
 * still holds it (B <= b means t < b; a later B means the owner finished
 * and index b was pushed again). If the fence is first, so is the CAS
 * that stored t (it happens before the fence), and the owner's seq_cst
 * top load sees at least t; a claim of [t, t + 1) can hit b only if
 * b == t, and then the owner takes it by CAS too and exactly one CAS wins.
 *
 * n > 1 against pop_lifo is unsound. In the second case above the
 * thief's B may be any bottom from before the owner's exchange: a thief
 * that read B and was then descheduled still holds that B while the owner pops
 * b, b - 1, ... without CASes (top is still t, so its check passes), and
 * the thief's CAS then succeeds and claims indices the owner already took.
 * Nothing the owner reads shows the pending claim. A rule such as "take
 * without a CAS only when b >= t' + MAX_BATCH" closes the race, but below
 * that depth the owner cannot take the bottom item with a CAS on top at
 * all (that CAS claims [t', b], not b), so it would have to pop FIFO
 * whenever fewer than MAX_BATCH items are queued, which is nearly always
 * in this scheduler. So weft__deque_steal_into, used against a LIFO
 * owner, claims one item per CAS (crossbeam's Flavor::Lifo does the
 * same).
 *
 * n > 1 against a FIFO owner (push, pop, never pop_lifo) is sound, which
 * is what weft__deque_steal_batch_into relies on (crossbeam's
 * Flavor::Fifo, Tokio's steal_into). Then bottom only grows, and every
 * removal is a CAS on top. The thief's acquire load of B synchronises
 * with the push that stored B, so the slots [t, B) hold the items pushed
 * there. A successful CAS from t means top was t from the thief's load to
 * its CAS, so none of [t, t + n) (n <= B - t) had been removed, and the
 * CAS makes the claim exclusive. A slot the thief read might have been
 * overwritten by a push that wrapped around only if that push saw top
 * past the slot's index (its acquire load of top), i.e. after some CAS
 * moved top past t; then the thief's CAS fails and the values it read are
 * dropped. If the push saw the thief's own CAS, that CAS (release)
 * happens before the overwrite, and so do the thief's reads.
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
		/* seq_cst, like a thief's: the CAS orders against the
		 * thieves' CASes on top. The item was
		 * written by this thread, so no acquire is needed for its
		 * contents. On failure t is reloaded. */
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
	int64_t t = atomic_load_explicit(&dq->top, memory_order_relaxed);

	/* Empty without the exchange: top only grows, so a stale top is at
	 * most the real one and b < t means empty now too. The worker asks
	 * an empty deque often (the LIFO slot feeds message-passing pairs
	 * and chains). */
	if (b < t)
		return NULL;
	/* One item (as far as we can tell): it is both the newest and the
	 * oldest, so take it from the top with one CAS, as a thief or the
	 * owner's periodic FIFO pop does, instead of the exchange plus the
	 * last-item CAS below. With the LIFO slot the deque often holds just
	 * the one task the slot displaced. If top moved meanwhile, the CAS
	 * (or pop's own check) sees an empty deque. */
	if (b == t)
		return weft__deque_pop(dq);

	/* Dekker's pattern, the ordering Chase-Lev cannot do without: a
	 * seq_cst exchange of bottom, then a seq_cst load of top, ordered in
	 * S against the thief's top load / fence / bottom load (the two cases
	 * at the top of this file), so that a thief and the owner never both
	 * take the last item without one of them going through the CAS
	 * below. Lê et al. write a relaxed store and a seq_cst fence; the
	 * exchange is one locked instruction on x86 where gcc's fence is an
	 * mfence (cheaper per pop; docs/design.md), and TSan models it, where
	 * it does not model fences. */
	(void)atomic_exchange_explicit(&dq->bottom, b, memory_order_seq_cst);
	t = atomic_load_explicit(&dq->top, memory_order_seq_cst);
	if (t > b) {
		/* Empty: restore. */
		atomic_store_explicit(&dq->bottom, b + 1, memory_order_relaxed);
		return NULL;
	}
	void *item = atomic_load_explicit(&dq->buf[b & dq->mask],
					  memory_order_relaxed);
	if (t == b) {
		/* Last item: race the thieves for it through top
		 * (seq_cst, against their CASes). */
		if (!atomic_compare_exchange_strong_explicit(
			    &dq->top, &t, t + 1, memory_order_seq_cst,
			    memory_order_relaxed))
			item = NULL;
		atomic_store_explicit(&dq->bottom, b + 1, memory_order_relaxed);
	}
	return item;
}

/*
 * A thief's view: top, then bottom. Returns bottom - top (<= 0: empty) and
 * sets *@t.
 */
static int64_t thief_view(struct weft__deque *dq, int64_t *t)
{
	int64_t b;

#if WEFT__TSAN
	/* seq_cst loads stand in for the fence below (TSan). */
	*t = atomic_load_explicit(&dq->top, memory_order_seq_cst);
	b = atomic_load_explicit(&dq->bottom, memory_order_seq_cst);
#else
	/* Acquire on top: pairs with other thieves' CAS. */
	*t = atomic_load_explicit(&dq->top, memory_order_acquire);
	/* Pairs with the exchange in pop_lifo: orders this top load before
	 * the bottom load against the owner's bottom exchange / top load
	 * (the two cases at the top of this file). */
	atomic_thread_fence(memory_order_seq_cst);
	/* Acquire on bottom: pairs with push's release, so the slots below
	 * it are visible. */
	b = atomic_load_explicit(&dq->bottom, memory_order_acquire);
#endif
	return b - *t;
}

void *weft__deque_steal(struct weft__deque *dq)
{
	int64_t t;

	if (thief_view(dq, &t) <= 0)
		return NULL;
	/* The slot may be overwritten by a push that wrapped around if top
	 * has moved on; the CAS below then fails and the value is dropped.
	 * The relaxed atomic load keeps that race defined. */
	void *item = atomic_load_explicit(&dq->buf[t & dq->mask],
					  memory_order_relaxed);
	/* seq_cst: the claim is ordered in S against pop_lifo's exchange (the
	 * last-item race) and against every other CAS on top. */
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

void *weft__deque_steal_batch_into(struct weft__deque *src,
				   struct weft__deque *dst, size_t max,
				   size_t *stolen)
{
	int64_t t, n;

	while ((n = thief_view(src, &t)) > 0) {
		n -= n / 2; /* half, rounded up */
		if (n > (int64_t)max)
			n = (int64_t)max;
		/* Copy into dst's free slots above its bottom, unpublished
		 * until the claim succeeds. Acquire on dst's top, as in push:
		 * dst's thieves have read the slots we may reuse. */
		int64_t db = atomic_load_explicit(&dst->bottom,
						  memory_order_relaxed);
		int64_t dt = atomic_load_explicit(&dst->top,
						  memory_order_acquire);
		int64_t room = dst->mask + 1 - (db - dt);
		if (n - 1 > room)
			n = room + 1; /* the last one is returned, not queued */
		void *run = NULL;
		for (int64_t i = 0; i < n; i++) {
			/* Relaxed: a stale slot (wrapped over) makes the CAS
			 * below fail; see the top of this file. */
			void *item = atomic_load_explicit(
				&src->buf[(t + i) & src->mask],
				memory_order_relaxed);
			if (i == n - 1)
				run = item;
			else
				atomic_store_explicit(
					&dst->buf[(db + i) & dst->mask], item,
					memory_order_relaxed);
		}
		/* seq_cst: one claim for the whole batch, ordered against
		 * the owner's pop and the other thieves' CASes on top. */
		if (!atomic_compare_exchange_strong_explicit(
			    &src->top, &t, t + n, memory_order_seq_cst,
			    memory_order_relaxed))
			continue; /* someone else took items: look again */
		if (n > 1)
			/* Release: publishes the copied slots to dst's
			 * thieves (their acquire load of bottom). */
			atomic_store_explicit(&dst->bottom, db + n - 1,
					      memory_order_release);
		*stolen = (size_t)n;
		return run;
	}
	*stolen = 0;
	return NULL;
}

size_t weft__deque_len(const struct weft__deque *dq)
{
	/* Acquire both so a len seen as non-zero by a parking worker's final
	 * scan reflects a push that happened before (see sched/idle.c). */
	int64_t b = atomic_load_explicit(&dq->bottom, memory_order_acquire);
	int64_t t = atomic_load_explicit(&dq->top, memory_order_acquire);
	return b > t ? (size_t)(b - t) : 0;
}
