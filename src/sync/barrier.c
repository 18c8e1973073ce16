/* SPDX-License-Identifier: MIT */
/*
 * Barrier over the waiter list (waitlist.h), after Tokio's sync/barrier.
 * `arrived` counts the queued waits of generation `gen`; the n-th arrival
 * is the leader: it bumps `gen`, resets `arrived` and dequeues every wait
 * of the old generation, which then see their node unqueued and are READY.
 * Every field, and a queued wait's node, is under the spinlock. Waits of
 * the old generation are all ahead of any new one in the FIFO, so a
 * release that unlocks to wake a batch stops at the first newer wait.
 * A dropped queued wait of the current generation takes its arrival back;
 * one of an older generation (still queued while its leader wakes it in
 * batches, with the lock dropped between them) was released and only
 * leaves.
 */
#include <errno.h>
#include <stdlib.h>

#include <weft/sync.h>

#include "spinlock.h"
#include "sync/waitlist.h"

struct weft_barrier {
	weft__spinlock lock;
	size_t n;
	size_t arrived;
	uint64_t gen;
	unsigned releasing; /* leaders between wake batches: b in use */
	struct weft__waitlist waiters;
};

enum { W_IDLE = 1, W_WAITING, W_DONE };

static struct weft__waiter *node_of(weft_barrier_wait *w)
{
	return (struct weft__waiter *)(void *)&w->_node;
}

static weft_barrier_wait *wait_of(struct weft__waiter *node)
{
	return weft__container_of((void *)node, weft_barrier_wait, _node);
}

WEFT_API int weft_barrier_new(size_t n, weft_barrier **out)
{
	weft_barrier *b;

	if (!out)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	weft__spin_init(&b->lock);
	b->n = n ? n : 1;
	*out = b;
	return 0;
}

WEFT_API int weft_barrier_free(weft_barrier *b)
{
	if (!b)
		return 0;
	weft__spin_lock(&b->lock);
	bool busy = b->waiters.head != NULL || b->releasing;
	weft__spin_unlock(&b->lock);
	if (busy)
		return -EBUSY;
	free(b);
	return 0;
}

/* With b->lock held: release generation @gen (and any older one still
 * queued: a later leader may run while an earlier one is unlocked to wake
 * a batch), unlock, wake. */
static void release_locked(weft_barrier *b, uint64_t gen)
{
	WEFT__WAKESET_DECL(ws);
	struct weft__waiter *node;

	b->releasing++; /* weft_barrier_free waits for us */
	while ((node = b->waiters.head) && wait_of(node)->_gen <= gen) {
		if (weft__wakeset_full(&ws)) {
			weft__spin_unlock(&b->lock);
			weft__wakeset_wake(&ws);
			weft__spin_lock(&b->lock);
			continue;
		}
		weft__waitlist_remove(&b->waiters, node);
		weft__wakeset_take(&ws, node);
	}
	b->releasing--;
	weft__spin_unlock(&b->lock);
	weft__wakeset_wake(&ws); /* touches no field of b */
}

WEFT_API int weft_barrier_wait_init(weft_barrier_wait *w, weft_barrier *b)
{
	if (!w || !b)
		return -EINVAL;
	*w = (weft_barrier_wait){ ._b = b, ._state = W_IDLE };
	return 0;
}

static weft_poll ready(weft_barrier_wait *w, int *res, int v)
{
	if (w && w->_state)
		w->_state = W_DONE;
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API weft_poll weft_barrier_wait_poll(weft_barrier_wait *w, weft_cx *cx,
					  int *res)
{
	if (!w || !cx || !w->_b || !w->_state)
		return ready(NULL, res, -EINVAL);
	if (w->_state == W_DONE)
		return ready(w, res, -EALREADY);

	weft_barrier *b = w->_b;
	struct weft__waiter *node = node_of(w);
	weft_waker old;

	weft__spin_lock(&b->lock);
	if (w->_state == W_IDLE) {
		if (++b->arrived == b->n) { /* the last: the leader */
			uint64_t gen = b->gen++;

			b->arrived = 0;
			release_locked(b, gen);
			return ready(w, res, 1);
		}
		w->_gen = b->gen;
		node->waker = weft_waker_clone(cx->waker);
		weft__waitlist_push(&b->waiters, node);
		w->_state = W_WAITING;
		weft__spin_unlock(&b->lock);
		return WEFT_PENDING;
	}
	if (!node->queued) { /* released by its generation's leader */
		weft__spin_unlock(&b->lock);
		return ready(w, res, 0);
	}
	old = weft__waker_store(&node->waker, cx->waker);
	weft__spin_unlock(&b->lock);
	weft_waker_drop(&old);
	return WEFT_PENDING;
}

WEFT_API void weft_barrier_wait_drop(weft_barrier_wait *w)
{
	if (!w || w->_state != W_WAITING) {
		if (w && w->_state)
			w->_state = W_DONE;
		return;
	}
	weft_barrier *b = w->_b;
	struct weft__waiter *node = node_of(w);
	weft_waker old;

	weft__spin_lock(&b->lock);
	if (node->queued) {
		weft__waitlist_remove(&b->waiters, node);
		/* Of the current generation: take the arrival back. One of an
		 * older generation is still queued only because its leader is
		 * waking that generation in batches (it unlocks between them):
		 * it was released, and `arrived` already counts the new one. */
		if (w->_gen == b->gen)
			b->arrived--;
	}
	old = node->waker;
	node->waker = WEFT_WAKER_EMPTY;
	w->_state = W_DONE;
	weft__spin_unlock(&b->lock);
	weft_waker_drop(&old);
}

static weft_poll wait_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_barrier_wait_poll(self, cx, out);
}

static void wait_desc_drop(void *self)
{
	weft_barrier_wait_drop(self);
}

WEFT_API const weft_future_desc weft_barrier_wait_desc = {
	.poll = wait_desc_poll,
	.drop = wait_desc_drop,
	.size = sizeof(weft_barrier_wait),
	.output_size = sizeof(int),
};
