/* SPDX-License-Identifier: MIT */
/*
 * What the broadcast and watch channels share: a lock, the count of live
 * sender and receiver handles, the close, and the queue of waits (which
 * re-check at each poll: waitlist.h). Each handle is its own allocation
 * pointing here; the handle drop that leaves no handle of either kind
 * frees the channel, after its unlock, when nobody else can reach it.
 * Every field is under the lock.
 */
#ifndef WEFT_SYNC_CHAN_H
#define WEFT_SYNC_CHAN_H

#include "spinlock.h"
#include "sync/waitlist.h"

struct weft__chan {
	weft__spinlock lock;
	size_t ntx, nrx;
	bool closed; /* every sender is gone (final) */
	struct weft__waitlist waiters;
};

static inline void weft__chan_init(struct weft__chan *c)
{
	weft__spin_init(&c->lock);
	c->ntx = c->nrx = 1;
	c->closed = false;
	c->waiters = (struct weft__waitlist){ NULL, NULL };
}

/*
 * Release a sender handle. The last one closes the channel and wakes
 * every wait. True when no handle is left: the caller frees the channel.
 */
static inline bool weft__chan_tx_release(struct weft__chan *c)
{
	bool last;

	weft__spin_lock(&c->lock);
	if (--c->ntx) {
		weft__spin_unlock(&c->lock);
		return false;
	}
	c->closed = true;
	if (!c->nrx) { /* no receiver, so no wait is queued */
		weft__spin_unlock(&c->lock);
		return true;
	}
	/* The wake rounds drop the lock, and a woken task may then drop
	 * the last receiver, which would free @c under us (our handle is
	 * gone): hold a receiver count across them. */
	c->nrx++;
	weft__waitlist_wake_all_unlock(&c->waiters, &c->lock);
	weft__spin_lock(&c->lock);
	last = --c->nrx == 0;
	weft__spin_unlock(&c->lock);
	return last;
}

/* Release a receiver handle. True when no handle is left (free it). */
static inline bool weft__chan_rx_release(struct weft__chan *c)
{
	bool last;

	weft__spin_lock(&c->lock);
	last = --c->nrx == 0 && c->ntx == 0;
	weft__spin_unlock(&c->lock);
	return last;
}

/* Drop a wait whose future was polled: it leaves the queue if queued. */
static inline void weft__chan_wait_drop(struct weft__chan *c,
					struct weft__waiter *w)
{
	weft__spin_lock(&c->lock);
	weft__waitlist_leave_unlock(&c->waiters, w, &c->lock);
}

#endif /* WEFT_SYNC_CHAN_H */
