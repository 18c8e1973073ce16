/* SPDX-License-Identifier: MIT */
/*
 * Watch channel, after Tokio's sync/watch: one value, a version that
 * every store bumps, and per receiver the version it has seen.
 *
 * Locking. One spinlock guards the value, `version`, `closed`, the handle
 * counts, every receiver's `seen` and the queued changed futures' nodes
 * (waitlist.h). Values are copied under it, so no reader sees a torn
 * value; Tokio uses an RwLock for the same reason. A store takes the whole
 * queue and wakes it outside the lock (weft__waitlist_wake_all_unlock); a
 * woken future re-checks its receiver's version at its next poll, so a
 * wake carries no result and a future dropped after its wake marks
 * nothing seen.
 *
 * Close and free (chan.h, shared with broadcast). Dropping the sender
 * closes the channel (final) and wakes the queue; the handle drop that
 * leaves no handle frees the channel.
 *
 * A changed future's state: IDLE (never polled), WAITING (PENDING
 * returned; its node may be queued), DONE (READY returned, or dropped).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <weft/watch.h>

#include "task/parker.h"
#include "sync/chan.h"

struct wchan {
	struct weft__chan ch; /* lock, handle counts, close, waiters */
	size_t value_size;
	uint64_t version;
	unsigned char value[] __attribute__((aligned(16)));
};

struct weft_watch_tx {
	struct wchan *c;
};

struct weft_watch_rx {
	struct wchan *c;
	uint64_t seen; /* under c->ch.lock */
};

enum { C_IDLE = 1, C_WAITING, C_DONE };

static struct weft__waiter *node_of(weft_watch_changed *c)
{
	return (struct weft__waiter *)(void *)&c->_node;
}

WEFT_API int weft_watch_new(size_t value_size, const void *initial,
			    weft_watch_tx **tx, weft_watch_rx **rx)
{
	struct wchan *c;
	weft_watch_tx *t;
	weft_watch_rx *r;

	if (!tx || !rx || value_size > WEFT_FUTURE_MAX_SIZE)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + value_size);
	t = malloc(sizeof(*t));
	r = malloc(sizeof(*r));
	if (!c || !t || !r) {
		free(c);
		free(t);
		free(r);
		return -ENOMEM;
	}
	weft__chan_init(&c->ch);
	c->value_size = value_size;
	if (initial && value_size)
		memcpy(c->value, initial, value_size);
	*t = (weft_watch_tx){ .c = c };
	*r = (weft_watch_rx){ .c = c, .seen = 0 };
	*tx = t;
	*rx = r;
	return 0;
}

/* With the lock held: store @value, keep the old one in @old, wake all;
 * returns with the lock released. */
static void store_unlock(struct wchan *c, const void *value, void *old)
{
	if (c->value_size) {
		if (old)
			memcpy(old, c->value, c->value_size);
		memcpy(c->value, value, c->value_size);
	}
	c->version++;
	weft__waitlist_wake_all_unlock(&c->ch.waiters, &c->ch.lock);
}

WEFT_API int weft_watch_send(weft_watch_tx *tx, const void *value)
{
	struct wchan *c;

	if (!tx || (!value && tx->c->value_size))
		return -EINVAL;
	c = tx->c;
	weft__spin_lock(&c->ch.lock);
	if (!c->ch.nrx) {
		weft__spin_unlock(&c->ch.lock);
		return -EPIPE;
	}
	store_unlock(c, value, NULL);
	return 0;
}

WEFT_API int weft_watch_send_replace(weft_watch_tx *tx, const void *value,
				     void *old)
{
	if (!tx || (!value && tx->c->value_size))
		return -EINVAL;
	weft__spin_lock(&tx->c->ch.lock);
	store_unlock(tx->c, value, old);
	return 0;
}

static int rx_new(struct wchan *c, const weft_watch_rx *from,
		  weft_watch_rx **out)
{
	weft_watch_rx *r = malloc(sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->c = c;
	weft__spin_lock(&c->ch.lock);
	r->seen = from ? from->seen : c->version;
	c->ch.nrx++;
	weft__spin_unlock(&c->ch.lock);
	*out = r;
	return 0;
}

WEFT_API int weft_watch_tx_subscribe(const weft_watch_tx *tx,
				     weft_watch_rx **out)
{
	if (!tx || !out)
		return -EINVAL;
	return rx_new(tx->c, NULL, out);
}

WEFT_API int weft_watch_rx_clone(const weft_watch_rx *rx,
				 weft_watch_rx **out)
{
	if (!rx || !out)
		return -EINVAL;
	return rx_new(rx->c, rx, out);
}

WEFT_API void weft_watch_tx_drop(weft_watch_tx *tx)
{
	struct wchan *c;

	if (!tx)
		return;
	c = tx->c;
	free(tx);
	if (weft__chan_tx_release(&c->ch))
		free(c);
}

WEFT_API void weft_watch_rx_drop(weft_watch_rx *rx)
{
	struct wchan *c;

	if (!rx)
		return;
	c = rx->c;
	free(rx);
	if (weft__chan_rx_release(&c->ch))
		free(c);
}

static int borrow(weft_watch_rx *rx, void *out, bool update)
{
	struct wchan *c;

	if (!rx)
		return -EINVAL;
	c = rx->c;
	weft__spin_lock(&c->ch.lock);
	if (out && c->value_size)
		memcpy(out, c->value, c->value_size);
	if (update)
		rx->seen = c->version;
	weft__spin_unlock(&c->ch.lock);
	return 0;
}

WEFT_API int weft_watch_borrow(weft_watch_rx *rx, void *out)
{
	return borrow(rx, out, false);
}

WEFT_API int weft_watch_borrow_and_update(weft_watch_rx *rx, void *out)
{
	return borrow(rx, out, true);
}

/* With the lock held: 1 unseen version, 0 none yet, -EPIPE none ever. */
static int changed_locked(const weft_watch_rx *rx)
{
	if (rx->seen != rx->c->version)
		return 1;
	return rx->c->ch.closed ? -EPIPE : 0;
}

WEFT_API int weft_watch_has_changed(weft_watch_rx *rx)
{
	int r;

	if (!rx)
		return -EINVAL;
	weft__spin_lock(&rx->c->ch.lock);
	r = changed_locked(rx);
	weft__spin_unlock(&rx->c->ch.lock);
	return r;
}

WEFT_API int weft_watch_changed_init(weft_watch_changed *c,
				     weft_watch_rx *rx)
{
	if (!c || !rx)
		return -EINVAL;
	*c = (weft_watch_changed){ ._rx = rx, ._state = C_IDLE };
	return 0;
}

WEFT_API weft_poll weft_watch_changed_poll(weft_watch_changed *c,
					   weft_cx *cx, int *status)
{
	int st;

	if (!c || !cx || !c->_rx || !c->_state) {
		st = -EINVAL;
		goto ready;
	}
	if (c->_state == C_DONE) {
		st = -EALREADY;
		goto ready;
	}

	weft_watch_rx *rx = c->_rx;
	struct wchan *wc = rx->c;

	weft__spin_lock(&wc->ch.lock);
	st = changed_locked(rx);
	if (!st) {
		c->_state = C_WAITING; /* the node was zeroed by init */
		return weft__waitlist_wait_unlock(&wc->ch.waiters, node_of(c),
						  cx, &wc->ch.lock);
	}
	if (st > 0) {
		rx->seen = wc->version;
		st = 0;
	}
	weft__waitlist_leave_unlock(&wc->ch.waiters, node_of(c),
				    &wc->ch.lock);
	c->_state = C_DONE;
ready:
	if (status)
		*status = st;
	return WEFT_READY;
}

WEFT_API void weft_watch_changed_drop(weft_watch_changed *c)
{
	if (!c || c->_state != C_WAITING) {
		if (c && c->_state)
			c->_state = C_DONE;
		return;
	}
	weft__chan_wait_drop(&c->_rx->c->ch, node_of(c));
	c->_state = C_DONE;
}

static weft_poll changed_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_watch_changed_poll(self, cx, out);
}

static void changed_desc_drop(void *self)
{
	weft_watch_changed_drop(self);
}

WEFT_API const weft_future_desc weft_watch_changed_desc = {
	.poll = changed_desc_poll,
	.drop = changed_desc_drop,
	.size = sizeof(weft_watch_changed),
	.output_size = sizeof(int),
};

WEFT_API int weft_watch_changed_blocking(weft_watch_rx *rx)
{
	weft_watch_changed c;
	int st = -EINVAL, err;

	if (weft_watch_changed_init(&c, rx))
		return -EINVAL;
	err = weft__block_poll(&weft_watch_changed_desc, &c, &st);
	return err ? err : st;
}
