/* SPDX-License-Identifier: MIT */
/*
 * A FIFO of waiters for the sync primitives (semaphore today; mutex,
 * notify and channels build on it), after Tokio's intrusive linked list
 * in sync/batch_semaphore.
 *
 * A waiter node lives inside the future that waits (its state never moves
 * from the first poll on: weft/future.h), so queueing allocates nothing.
 * Every field of a node and the list is under the owner's lock. The rule
 * that makes drops safe: a node is touched by the primitive only while it
 * is queued, and a future's drop dequeues its node under the same lock; so
 * once the drop has the lock, nothing else will touch the node again.
 *
 * Wakers are never run under the lock (a wake may run arbitrary code, or
 * free the task that holds the node): weft__wakeset collects them while the
 * lock is held, and weft__wakeset_wake() runs them after the unlock.
 */
#ifndef WEFT_SYNC_WAITLIST_H
#define WEFT_SYNC_WAITLIST_H

#include <stdbool.h>
#include <stddef.h>

#include <weft/core.h>
#include <weft/sync.h>

#include "internal.h"
#include "spinlock.h"

struct weft__waiter {
	struct weft__waiter *next, *prev;
	weft_waker waker;
	bool queued;
};

/* The public weft__wait_node (weft/sync.h) is this struct. */
_Static_assert(sizeof(weft__wait_node) == sizeof(struct weft__waiter) &&
		       _Alignof(weft__wait_node) ==
			       _Alignof(struct weft__waiter),
	       "weft__wait_node matches struct weft__waiter");

struct weft__waitlist {
	struct weft__waiter *head, *tail;
};

static inline void weft__waitlist_push(struct weft__waitlist *l,
				       struct weft__waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	w->queued = true;
}

static inline void weft__waitlist_remove(struct weft__waitlist *l,
					 struct weft__waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->next = w->prev = NULL;
	w->queued = false;
}

/* Wakers taken under a lock, to run after it. */
#define WEFT__WAKESET_MAX 32
struct weft__wakeset {
	unsigned n;
	weft_waker w[WEFT__WAKESET_MAX];
};

/* Start an empty set. Only n is set: zeroing all 32 wakers (520 bytes)
 * showed up as the top cost of an uncontended mpsc send. */
#define WEFT__WAKESET_DECL(name) \
	struct weft__wakeset name; \
	name.n = 0

static inline bool weft__wakeset_full(const struct weft__wakeset *s)
{
	return s->n == WEFT__WAKESET_MAX;
}

/* Under the lock: take @w's waker into @s (which must not be full). */
static inline void weft__wakeset_take(struct weft__wakeset *s,
				      struct weft__waiter *w)
{
	s->w[s->n++] = w->waker;
	w->waker = WEFT_WAKER_EMPTY;
}

/* After the unlock: wake (and release) every collected waker. */
static inline void weft__wakeset_wake(struct weft__wakeset *s)
{
	for (unsigned i = 0; i < s->n; i++)
		weft_waker_wake(&s->w[i]);
	s->n = 0;
}

/*
 * For waits that are woken without a result and re-check at their next
 * poll (channels). With @lock held: (re)arm @w with @cx's waker, queue it
 * unless it is queued, unlock, and drop the waker it replaced (a drop may
 * free a task: not under the lock). Returns WEFT_PENDING.
 */
static inline weft_poll weft__waitlist_wait_unlock(struct weft__waitlist *l,
						   struct weft__waiter *w,
						   const weft_cx *cx,
						   weft__spinlock *lock)
{
	weft_waker old = weft__waker_store(&w->waker, cx->waker);

	if (!w->queued)
		weft__waitlist_push(l, w);
	weft__spin_unlock(lock);
	weft_waker_drop(&old);
	return WEFT_PENDING;
}

/*
 * With @lock held: take @w off @l if it is queued and its waker out,
 * unlock, and drop the waker. After this nothing touches @w again.
 */
static inline void weft__waitlist_leave_unlock(struct weft__waitlist *l,
					       struct weft__waiter *w,
					       weft__spinlock *lock)
{
	weft_waker old = w->waker;

	if (w->queued)
		weft__waitlist_remove(l, w);
	w->waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(lock);
	weft_waker_drop(&old);
}

/* A sentinel's waker: no vtable, this tag as data (a queued waiter's
 * waker is never that). Wake-all rounds skip each other's sentinels. */
extern const char weft__waitlist_sentinel_tag;

static inline bool weft__waiter_is_sentinel(const struct weft__waiter *w)
{
	return !w->waker.vtable && w->waker.data == &weft__waitlist_sentinel_tag;
}

/*
 * With @lock held: wake every waiter queued on @l now, WEFT__WAKESET_MAX at
 * a time with the lock dropped in between, and return with @lock released.
 * A sentinel node (on this call's stack) marks the end of "now": waiters
 * queued during the unlocked stretches, including woken ones that re-poll
 * on another worker and queue again, are behind it and are not woken by
 * this call (waking until the list is empty could go on forever under a
 * steady stream of re-queued waiters: the sender would never return). The
 * caller must keep the lock's owner alive across the unlocked stretches (a
 * woken task may drop its handle).
 */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
/* The sentinel is a local on purpose: it leaves the list before return. */
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
static inline void weft__waitlist_wake_all_unlock(struct weft__waitlist *l,
						  weft__spinlock *lock)
{
	WEFT__WAKESET_DECL(ws);
	struct weft__waiter end = {
		.waker = { NULL, &weft__waitlist_sentinel_tag },
	};
	struct weft__waiter *w;

	weft__waitlist_push(l, &end);
	for (w = l->head; w != &end;) {
		struct weft__waiter *next = w->next;

		if (weft__waiter_is_sentinel(w)) { /* another round's */
			w = next;
			continue;
		}
		if (weft__wakeset_full(&ws)) {
			weft__spin_unlock(lock);
			weft__wakeset_wake(&ws);
			weft__spin_lock(lock);
			w = l->head; /* nodes may have left meanwhile */
			continue;
		}
		weft__waitlist_remove(l, w);
		weft__wakeset_take(&ws, w);
		w = next;
	}
	weft__waitlist_remove(l, &end);
	weft__spin_unlock(lock);
	weft__wakeset_wake(&ws);
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

#endif /* WEFT_SYNC_WAITLIST_H */
