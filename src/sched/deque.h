/* SPDX-License-Identifier: MIT */
/*
 * A bounded work-stealing deque of pointers (Chase & Lev, "Dynamic Circular
 * Work-Stealing Deque", SPAA 2005), with the C11 memory orders of Le, Pop,
 * Cohen and Zappa Nardelli, "Correct and Efficient Work-Stealing for Weak
 * Memory Models", PPoPP 2013.
 *
 * Concurrency contract (names say who may call):
 *   weft__deque_push        owner only   add at the bottom
 *   weft__deque_pop_lifo    owner only   take the newest item (bottom, LIFO):
 *                                        Chase-Lev's take, no CAS unless it
 *                                        is the last item
 *   weft__deque_pop         owner only   take the oldest item (top, FIFO),
 *                                        one CAS
 *   weft__deque_steal       any thread   take the oldest item (top)
 *   weft__deque_steal_into  owner of dst take up to half, one CAS per item:
 *                                        safe whatever the owner of src does
 *   weft__deque_steal_batch_into
 *                           owner of dst take up to half with one CAS: only
 *                                        if the owner of src never calls
 *                                        pop_lifo (a FIFO owner)
 *   weft__deque_len         any thread   a snapshot, possibly stale
 *
 * The buffer is fixed: a full push fails and the scheduler moves half of
 * the queue to the injector (Tokio, Go), so no memory reclamation is needed
 * and crossbeam's CVE-2021-32810 (a thief reading a buffer the owner freed
 * while growing) cannot arise. Indices are signed 64-bit so that an empty
 * deque (bottom - 1 < top during pop_lifo) never looks full.
 *
 * Why a batch steal with one CAS needs a FIFO owner: see the top of
 * deque.c.
 */
#ifndef WEFT_SCHED_DEQUE_H
#define WEFT_SCHED_DEQUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

struct weft__deque {
	/* Thieves CAS top; keep it off the owner's line. */
	_Atomic int64_t top weft__cacheline_aligned;
	_Atomic int64_t bottom weft__cacheline_aligned;
	_Atomic(void *) *buf;
	int64_t mask; /* capacity - 1 */
};

/* Capacity is 1 << @log2_cap items (1..24). Returns 0 or -ENOMEM/-EINVAL. */
int weft__deque_init(struct weft__deque *dq, unsigned log2_cap);
void weft__deque_destroy(struct weft__deque *dq);

/* Owner: add @item at the bottom. False (nothing done) when full. */
bool weft__deque_push(struct weft__deque *dq, void *item);

/* Owner: take the oldest item (one CAS on top), NULL when empty. */
void *weft__deque_pop(struct weft__deque *dq);

/* Owner: take the newest item (no CAS unless it is the last), NULL when
 * empty. A deque whose owner calls this must not be batch-stolen from. */
void *weft__deque_pop_lifo(struct weft__deque *dq);

/* Any thread: take the oldest item; NULL when empty or the CAS was lost. */
void *weft__deque_steal(struct weft__deque *dq);

/*
 * The owner of @dst, stealing from another worker's @src: move up to half of
 * @src (at most @max items) into @dst, one single steal at a time, and
 * return the last one stolen to run now (NULL if nothing was stolen; then
 * *@stolen is 0). @dst must have room for @max - 1 items.
 */
void *weft__deque_steal_into(struct weft__deque *src, struct weft__deque *dst,
			     size_t max, size_t *stolen);

/*
 * As weft__deque_steal_into, but the whole batch is claimed with one CAS
 * on @src's top. Only for a @src whose owner never calls
 * weft__deque_pop_lifo (the proof is at the top of deque.c); a lost CAS
 * means another thread took items, and the batch is retried.
 */
void *weft__deque_steal_batch_into(struct weft__deque *src,
				   struct weft__deque *dst, size_t max,
				   size_t *stolen);

size_t weft__deque_len(const struct weft__deque *dq);

static inline size_t weft__deque_capacity(const struct weft__deque *dq)
{
	return (size_t)dq->mask + 1;
}

#endif /* WEFT_SCHED_DEQUE_H */
