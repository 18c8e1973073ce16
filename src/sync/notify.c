/* SPDX-License-Identifier: MIT */
/*
 * Notify over the waiter list (waitlist.h), after Tokio's sync/notify:
 *   - notify_one wakes the head of the queue, or stores one permit;
 *   - notify_waiters wakes the whole queue and bumps `seq`, so a wait
 *     prepared before the call but not yet polled sees it at its first
 *     poll (it captured the old seq at init);
 *   - a wait chosen by notify_one and dropped unseen hands the
 *     notification on, so none is lost.
 * Every field, and a queued wait's _how, is under the spinlock.
 */
#include <errno.h>
#include <stdlib.h>

#include <weft/sync.h>

#include "spinlock.h"
#include "sync/waitlist.h"

struct weft_notify {
	weft__spinlock lock;
	bool permit;
	uint64_t seq; /* notify_waiters calls */
	struct weft__waitlist waiters;
};

enum { W_IDLE = 1, W_WAITING, W_DONE };
enum { HOW_NONE, HOW_ONE, HOW_ALL }; /* how a queued wait was woken */

static struct weft__waiter *node_of(weft_notified *w)
{
	return (struct weft__waiter *)(void *)&w->_node;
}

static weft_notified *wait_of(struct weft__waiter *node)
{
	return weft__container_of((void *)node, weft_notified, _node);
}

WEFT_API int weft_notify_new(weft_notify **out)
{
	weft_notify *n;

	if (!out)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	weft__spin_init(&n->lock);
	*out = n;
	return 0;
}

WEFT_API int weft_notify_free(weft_notify *n)
{
	if (!n)
		return 0;
	weft__spin_lock(&n->lock);
	bool busy = n->waiters.head != NULL;
	weft__spin_unlock(&n->lock);
	if (busy)
		return -EBUSY;
	free(n);
	return 0;
}

/* Under the lock: the head wait gets a notify_one, else the permit. The
 * waker, if any, lands in @ws. */
static void one_locked(weft_notify *n, struct weft__wakeset *ws)
{
	struct weft__waiter *node = n->waiters.head;

	if (!node) {
		n->permit = true;
		return;
	}
	weft__waitlist_remove(&n->waiters, node);
	wait_of(node)->_how = HOW_ONE;
	weft__wakeset_take(ws, node);
}

WEFT_API void weft_notify_one(weft_notify *n)
{
	WEFT__WAKESET_DECL(ws);

	if (!n)
		return;
	weft__spin_lock(&n->lock);
	one_locked(n, &ws);
	weft__spin_unlock(&n->lock);
	weft__wakeset_wake(&ws);
}

WEFT_API void weft_notify_waiters(weft_notify *n)
{
	WEFT__WAKESET_DECL(ws);
	struct weft__waiter *node;

	if (!n)
		return;
	weft__spin_lock(&n->lock);
	n->seq++;
	while ((node = n->waiters.head)) {
		if (weft__wakeset_full(&ws)) {
			/* Those still queued are woken next round: they
			 * wait from before this call. */
			weft__spin_unlock(&n->lock);
			weft__wakeset_wake(&ws);
			weft__spin_lock(&n->lock);
			continue;
		}
		weft__waitlist_remove(&n->waiters, node);
		wait_of(node)->_how = HOW_ALL;
		weft__wakeset_take(&ws, node);
	}
	weft__spin_unlock(&n->lock);
	weft__wakeset_wake(&ws);
}

WEFT_API int weft_notified_init(weft_notified *w, weft_notify *n)
{
	if (!w || !n)
		return -EINVAL;
	*w = (weft_notified){ ._n = n, ._state = W_IDLE };
	weft__spin_lock(&n->lock);
	w->_seq = n->seq;
	weft__spin_unlock(&n->lock);
	return 0;
}

static weft_poll ready(weft_notified *w, int *res)
{
	w->_state = W_DONE;
	if (res)
		*res = 0;
	return WEFT_READY;
}

WEFT_API weft_poll weft_notified_poll(weft_notified *w, weft_cx *cx,
				      int *res)
{
	if (!w || !cx || !w->_n || !w->_state) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	if (w->_state == W_DONE) {
		if (res)
			*res = -EALREADY;
		return WEFT_READY;
	}

	weft_notify *n = w->_n;
	struct weft__waiter *node = node_of(w);
	weft_waker old = WEFT_WAKER_EMPTY;

	weft__spin_lock(&n->lock);
	if (w->_state == W_IDLE) {
		if (n->seq != w->_seq || n->permit) {
			if (n->seq == w->_seq)
				n->permit = false; /* took the permit */
			weft__spin_unlock(&n->lock);
			return ready(w, res);
		}
		node->waker = weft_waker_clone(cx->waker);
		weft__waitlist_push(&n->waiters, node);
		w->_state = W_WAITING;
		weft__spin_unlock(&n->lock);
		return WEFT_PENDING;
	}
	if (!node->queued) { /* woken by notify_one or notify_waiters */
		weft__spin_unlock(&n->lock);
		return ready(w, res);
	}
	old = weft__waker_store(&node->waker, cx->waker);
	weft__spin_unlock(&n->lock);
	weft_waker_drop(&old);
	return WEFT_PENDING;
}

WEFT_API void weft_notified_drop(weft_notified *w)
{
	WEFT__WAKESET_DECL(ws);

	if (!w || w->_state != W_WAITING) {
		if (w && w->_state)
			w->_state = W_DONE;
		return;
	}
	weft_notify *n = w->_n;
	struct weft__waiter *node = node_of(w);
	weft_waker old;

	weft__spin_lock(&n->lock);
	if (node->queued)
		weft__waitlist_remove(&n->waiters, node);
	else if (w->_how == HOW_ONE)
		one_locked(n, &ws); /* pass the notify_one on */
	old = node->waker;
	node->waker = WEFT_WAKER_EMPTY;
	w->_state = W_DONE;
	weft__spin_unlock(&n->lock);
	weft_waker_drop(&old);
	weft__wakeset_wake(&ws);
}

static weft_poll notified_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_notified_poll(self, cx, out);
}

static void notified_desc_drop(void *self)
{
	weft_notified_drop(self);
}

WEFT_API const weft_future_desc weft_notified_desc = {
	.poll = notified_desc_poll,
	.drop = notified_desc_drop,
	.size = sizeof(weft_notified),
	.output_size = sizeof(int),
};
