/* SPDX-License-Identifier: MIT */
/*
 * A fair counting semaphore over the waiter list (waitlist.h), after
 * Tokio's sync/batch_semaphore: a queued acquire is assigned permits as
 * they are released, head first, and leaves the queue once it has all it
 * asked for. Every field below, and the _assigned, _state and _result of a
 * queued acquire, is under the semaphore's spinlock. An acquire's state:
 *
 *   IDLE      prepared, not polled: holds nothing
 *   WAITING   polled, queued or completed by a release/close (node no
 *             longer queued, _result set) and not yet seen by a poll
 *   DONE      READY returned, or dropped
 */
#include <errno.h>
#include <stdlib.h>

#include <weft/sync.h>

#include "spinlock.h"
#include "sync/semaphore.h"
#include "sync/waitlist.h"

struct weft_semaphore {
	weft__spinlock lock;
	bool closed;
	size_t permits;
	struct weft__waitlist waiters;
};

enum { A_IDLE = 1, A_WAITING, A_DONE };

static struct weft__waiter *node_of(weft_semaphore_acquire *a)
{
	return (struct weft__waiter *)(void *)&a->_node;
}

static weft_semaphore_acquire *acquire_of(struct weft__waiter *w)
{
	return weft__container_of((void *)w, weft_semaphore_acquire, _node);
}

WEFT_API int weft_semaphore_new(size_t permits, weft_semaphore **out)
{
	weft_semaphore *s;

	if (!out)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	weft__spin_init(&s->lock);
	s->permits = permits;
	*out = s;
	return 0;
}

WEFT_API int weft_semaphore_free(weft_semaphore *s)
{
	if (!s)
		return 0;
	weft__spin_lock(&s->lock);
	bool busy = s->waiters.head != NULL;
	weft__spin_unlock(&s->lock);
	if (busy)
		return -EBUSY;
	free(s);
	return 0;
}

WEFT_API int weft_semaphore_try_acquire(weft_semaphore *s, size_t n)
{
	int err = 0;

	if (!s)
		return -EINVAL;
	weft__spin_lock(&s->lock);
	if (s->closed)
		err = -EPIPE;
	else if (s->waiters.head || s->permits < n)
		err = -EAGAIN;
	else
		s->permits -= n;
	weft__spin_unlock(&s->lock);
	return err;
}

static size_t add_sat(size_t a, size_t b)
{
	return a + b < a ? SIZE_MAX : a + b;
}

/* With s->lock held: hand @n permits out, unlock, wake. */
static void release_locked(weft_semaphore *s, size_t n)
{
	WEFT__WAKESET_DECL(ws);

	for (;;) {
		struct weft__waiter *w;

		while (n && (w = s->waiters.head) && !weft__wakeset_full(&ws)) {
			weft_semaphore_acquire *a = acquire_of(w);
			size_t give = a->_want - a->_assigned;

			if (give > n)
				give = n;
			a->_assigned += give;
			n -= give;
			if (a->_assigned == a->_want) {
				weft__waitlist_remove(&s->waiters, w);
				a->_result = 0;
				weft__wakeset_take(&ws, w);
			}
		}
		if (!n || !s->waiters.head)
			break;
		/* Many waiters completed: wake them outside the lock, then
		 * go on handing out the rest. */
		weft__spin_unlock(&s->lock);
		weft__wakeset_wake(&ws);
		weft__spin_lock(&s->lock);
	}
	s->permits = add_sat(s->permits, n);
	weft__spin_unlock(&s->lock);
	weft__wakeset_wake(&ws);
}

WEFT_API void weft_semaphore_release(weft_semaphore *s, size_t n)
{
	if (!s || !n)
		return;
	weft__spin_lock(&s->lock);
	release_locked(s, n);
}

int weft__semaphore_release_held(weft_semaphore *s, size_t n, size_t max)
{
	weft__spin_lock(&s->lock);
	/* Free permits only exist while nobody waits: with @max total, a
	 * release that would leave more than @max free gives back permits
	 * nobody took. Checked and done under one lock. */
	if (s->permits + n > max) {
		weft__spin_unlock(&s->lock);
		return -EPERM;
	}
	release_locked(s, n);
	return 0;
}

WEFT_API void weft_semaphore_close(weft_semaphore *s)
{
	WEFT__WAKESET_DECL(ws);
	struct weft__waiter *w;

	if (!s)
		return;
	weft__spin_lock(&s->lock);
	s->closed = true;
	while ((w = s->waiters.head)) {
		weft_semaphore_acquire *a = acquire_of(w);

		if (weft__wakeset_full(&ws)) {
			weft__spin_unlock(&s->lock);
			weft__wakeset_wake(&ws);
			weft__spin_lock(&s->lock);
			continue;
		}
		weft__waitlist_remove(&s->waiters, w);
		s->permits = add_sat(s->permits, a->_assigned);
		a->_assigned = 0;
		a->_result = -EPIPE;
		weft__wakeset_take(&ws, w);
	}
	weft__spin_unlock(&s->lock);
	weft__wakeset_wake(&ws);
}

WEFT_API size_t weft_semaphore_available(const weft_semaphore *s)
{
	size_t n;

	if (!s)
		return 0;
	weft__spin_lock((weft__spinlock *)&s->lock);
	n = s->permits;
	weft__spin_unlock((weft__spinlock *)&s->lock);
	return n;
}

WEFT_API int weft_semaphore_acquire_init(weft_semaphore_acquire *a,
					 weft_semaphore *s, size_t n)
{
	if (!a || !s)
		return -EINVAL;
	*a = (weft_semaphore_acquire){ ._sem = s, ._want = n,
				       ._state = A_IDLE };
	return 0;
}

static weft_poll ready(weft_semaphore_acquire *a, int *res, int v)
{
	a->_state = A_DONE;
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API weft_poll weft_semaphore_acquire_poll(weft_semaphore_acquire *a,
					       weft_cx *cx, int *res)
{
	if (!a || !cx || !a->_sem || !a->_state) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	if (a->_state == A_DONE) {
		if (res)
			*res = -EALREADY;
		return WEFT_READY;
	}

	weft_semaphore *s = a->_sem;
	struct weft__waiter *w = node_of(a);
	weft_waker old = WEFT_WAKER_EMPTY;
	int r;

	weft__spin_lock(&s->lock);
	if (a->_state == A_IDLE) {
		if (s->closed) {
			weft__spin_unlock(&s->lock);
			return ready(a, res, -EPIPE);
		}
		if (!s->waiters.head) { /* nobody ahead: take what there is */
			size_t take = s->permits < a->_want ? s->permits
							    : a->_want;
			s->permits -= take;
			a->_assigned = take;
		}
		if (a->_assigned == a->_want) {
			weft__spin_unlock(&s->lock);
			return ready(a, res, 0);
		}
		w->waker = weft_waker_clone(cx->waker);
		weft__waitlist_push(&s->waiters, w);
		a->_state = A_WAITING;
		weft__spin_unlock(&s->lock);
		return WEFT_PENDING;
	}
	if (!w->queued) { /* completed by a release or the close */
		r = a->_result;
		weft__spin_unlock(&s->lock);
		return ready(a, res, r);
	}
	old = weft__waker_store(&w->waker, cx->waker);
	weft__spin_unlock(&s->lock);
	weft_waker_drop(&old); /* may free a task: not under the lock */
	return WEFT_PENDING;
}

WEFT_API void weft_semaphore_acquire_drop(weft_semaphore_acquire *a)
{
	if (!a || a->_state != A_WAITING) {
		if (a && a->_state)
			a->_state = A_DONE;
		return;
	}
	weft_semaphore *s = a->_sem;
	struct weft__waiter *w = node_of(a);
	size_t give_back;
	weft_waker old;

	weft__spin_lock(&s->lock);
	if (w->queued) {
		weft__waitlist_remove(&s->waiters, w);
		give_back = a->_assigned;
	} else {
		/* Completed, never seen: its permits are nobody's. */
		give_back = a->_result == 0 ? a->_want : 0;
	}
	old = w->waker;
	w->waker = WEFT_WAKER_EMPTY;
	a->_assigned = 0;
	a->_state = A_DONE;
	weft__spin_unlock(&s->lock);
	weft_waker_drop(&old);
	weft_semaphore_release(s, give_back);
}

static weft_poll acquire_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_semaphore_acquire_poll(self, cx, out);
}

static void acquire_desc_drop(void *self)
{
	weft_semaphore_acquire_drop(self);
}

WEFT_API const weft_future_desc weft_semaphore_acquire_desc = {
	.poll = acquire_desc_poll,
	.drop = acquire_desc_drop,
	.size = sizeof(weft_semaphore_acquire),
	.output_size = sizeof(int),
};
