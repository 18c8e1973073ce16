/* SPDX-License-Identifier: MIT */
/*
 * Broadcast channel, after Tokio's sync/broadcast, simplified by copying
 * values (they have no destructor, so a slot needs no reader count).
 *
 * Positions. Every value sent gets the next position (`tail`, 64 bits, so
 * it never wraps) and lives in slot pos & mask. The ring retains the
 * positions [oldest, tail), oldest = tail - cap once tail passes cap: a
 * slot's content is known from tail alone, so slots carry no header. Each
 * receiver has a cursor `next`, the position it reads next:
 *   next == tail       nothing new: wait (or -EPIPE once closed);
 *   next <  oldest     it lagged: report oldest - next missed values and
 *                      move the cursor to oldest (no value this time);
 *   otherwise          copy slot next & mask out, next++.
 * A new receiver starts at tail. Missed counts plus values received add up
 * to the values sent since the receiver subscribed, exactly.
 *
 * Locking. One spinlock guards everything below and every receiver's
 * cursor, and each queued recv future's node (waitlist.h): a send takes
 * the queue (all of it, WEFT__WAKESET_MAX at a time, waking each round
 * outside the lock), and a woken future just polls again, so a wake
 * carries no result and a future dropped after its wake loses nothing.
 *
 * Close and free (chan.h, shared with watch). The last sender's drop
 * closes the channel (final) and wakes the queue; the handle drop that
 * leaves no handle of either kind frees the channel.
 *
 * A recv future's state:
 *   IDLE      prepared, never polled
 *   WAITING   polled and PENDING: its node may be queued (node.queued)
 *   DONE      READY returned, or dropped
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <weft/broadcast.h>

#include "task/parker.h"
#include "sync/chan.h"

struct bchan {
	struct weft__chan ch; /* lock, handle counts, close, waiters */
	size_t value_size;
	uint64_t cap, mask;
	uint64_t tail;
	unsigned char *ring;
};

struct weft_broadcast_tx {
	struct bchan *c;
};

struct weft_broadcast_rx {
	struct bchan *c;
	uint64_t next; /* under c->ch.lock */
};

enum { R_IDLE = 1, R_WAITING, R_DONE };

static struct weft__waiter *node_of(weft_broadcast_recv *r)
{
	return (struct weft__waiter *)(void *)&r->_node;
}

static uint64_t round_pow2(uint64_t n)
{
	uint64_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

WEFT_API int weft_broadcast_new(size_t value_size, size_t capacity,
				weft_broadcast_tx **tx,
				weft_broadcast_rx **rx)
{
	struct bchan *c;
	weft_broadcast_tx *t;
	weft_broadcast_rx *r;

	if (!tx || !rx || value_size > WEFT_FUTURE_MAX_SIZE || !capacity ||
	    capacity > WEFT_BROADCAST_MAX_CAPACITY)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	t = malloc(sizeof(*t));
	r = malloc(sizeof(*r));
	if (!c || !t || !r)
		goto out_nomem;
	c->cap = round_pow2(capacity);
	c->mask = c->cap - 1;
	c->value_size = value_size;
	/* value_size and cap are both at most 2^30: no overflow with a
	 * 64-bit size_t; checked where size_t is narrower. */
	if (value_size && (size_t)c->cap > SIZE_MAX / value_size)
		goto out_nomem;
	if (value_size) {
		c->ring = malloc((size_t)c->cap * value_size);
		if (!c->ring)
			goto out_nomem;
	}
	weft__chan_init(&c->ch);
	*t = (weft_broadcast_tx){ .c = c };
	*r = (weft_broadcast_rx){ .c = c, .next = 0 };
	*tx = t;
	*rx = r;
	return 0;

out_nomem:
	free(c);
	free(t);
	free(r);
	return -ENOMEM;
}

static void chan_free(struct bchan *c)
{
	free(c->ring);
	free(c);
}

WEFT_API int weft_broadcast_tx_clone(const weft_broadcast_tx *tx,
				     weft_broadcast_tx **out)
{
	weft_broadcast_tx *t;

	if (!tx || !out)
		return -EINVAL;
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->c = tx->c;
	weft__spin_lock(&t->c->ch.lock);
	t->c->ch.ntx++;
	weft__spin_unlock(&t->c->ch.lock);
	*out = t;
	return 0;
}

WEFT_API void weft_broadcast_tx_drop(weft_broadcast_tx *tx)
{
	struct bchan *c;

	if (!tx)
		return;
	c = tx->c;
	free(tx);
	if (weft__chan_tx_release(&c->ch))
		chan_free(c);
}

static int rx_new(struct bchan *c, weft_broadcast_rx **out)
{
	weft_broadcast_rx *r = malloc(sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->c = c;
	weft__spin_lock(&c->ch.lock);
	r->next = c->tail;
	c->ch.nrx++;
	weft__spin_unlock(&c->ch.lock);
	*out = r;
	return 0;
}

WEFT_API int weft_broadcast_subscribe(const weft_broadcast_tx *tx,
				      weft_broadcast_rx **out)
{
	if (!tx || !out)
		return -EINVAL;
	return rx_new(tx->c, out);
}

WEFT_API void weft_broadcast_rx_drop(weft_broadcast_rx *rx)
{
	struct bchan *c;

	if (!rx)
		return;
	c = rx->c;
	free(rx);
	if (weft__chan_rx_release(&c->ch))
		chan_free(c);
}

WEFT_API int weft_broadcast_send(weft_broadcast_tx *tx, const void *value)
{
	struct bchan *c;
	int n;

	if (!tx || (!value && tx->c->value_size))
		return -EINVAL;
	c = tx->c;
	weft__spin_lock(&c->ch.lock);
	if (!c->ch.nrx) {
		weft__spin_unlock(&c->ch.lock);
		return -EPIPE;
	}
	if (c->value_size)
		memcpy(c->ring + (size_t)(c->tail & c->mask) * c->value_size,
		       value, c->value_size);
	c->tail++;
	n = c->ch.nrx > INT32_MAX ? INT32_MAX : (int)c->ch.nrx;
	weft__waitlist_wake_all_unlock(&c->ch.waiters, &c->ch.lock);
	return n;
}

/* With the lock held: the receive rule of the header comment. */
static int take_locked(weft_broadcast_rx *rx, void *out, uint64_t *missed)
{
	struct bchan *c = rx->c;
	uint64_t oldest = c->tail > c->cap ? c->tail - c->cap : 0;

	if (rx->next == c->tail)
		return c->ch.closed ? -EPIPE : -EAGAIN;
	if (rx->next < oldest) {
		if (missed)
			*missed = oldest - rx->next;
		rx->next = oldest;
		return -EOVERFLOW;
	}
	if (out && c->value_size)
		memcpy(out, c->ring + (size_t)(rx->next & c->mask) *
				       c->value_size,
		       c->value_size);
	rx->next++;
	return 0;
}

WEFT_API int weft_broadcast_try_recv(weft_broadcast_rx *rx, void *out,
				     uint64_t *missed)
{
	int r;

	if (!rx)
		return -EINVAL;
	weft__spin_lock(&rx->c->ch.lock);
	r = take_locked(rx, out, missed);
	weft__spin_unlock(&rx->c->ch.lock);
	return r;
}

WEFT_API int weft_broadcast_recv_init(weft_broadcast_recv *r,
				      weft_broadcast_rx *rx, void *out,
				      uint64_t *missed)
{
	if (!r || !rx)
		return -EINVAL;
	*r = (weft_broadcast_recv){ ._rx = rx, ._out = out,
				    ._missed = missed, ._state = R_IDLE };
	return 0;
}

WEFT_API weft_poll weft_broadcast_recv_poll(weft_broadcast_recv *r,
					    weft_cx *cx, int *status)
{
	int st;

	if (!r || !cx || !r->_rx || !r->_state) {
		st = -EINVAL;
		goto ready;
	}
	if (r->_state == R_DONE) {
		st = -EALREADY;
		goto ready;
	}

	struct bchan *c = r->_rx->c;

	weft__spin_lock(&c->ch.lock);
	st = take_locked(r->_rx, r->_out, r->_missed);
	if (st == -EAGAIN) {
		r->_state = R_WAITING; /* the node was zeroed by init */
		return weft__waitlist_wait_unlock(&c->ch.waiters, node_of(r),
						  cx, &c->ch.lock);
	}
	weft__waitlist_leave_unlock(&c->ch.waiters, node_of(r),
				    &c->ch.lock);
	r->_state = R_DONE;
ready:
	if (status)
		*status = st;
	return WEFT_READY;
}

WEFT_API void weft_broadcast_recv_drop(weft_broadcast_recv *r)
{
	if (!r || r->_state != R_WAITING) {
		if (r && r->_state)
			r->_state = R_DONE;
		return;
	}
	weft__chan_wait_drop(&r->_rx->c->ch, node_of(r));
	r->_state = R_DONE;
}

static weft_poll recv_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_broadcast_recv_poll(self, cx, out);
}

static void recv_desc_drop(void *self)
{
	weft_broadcast_recv_drop(self);
}

WEFT_API const weft_future_desc weft_broadcast_recv_desc = {
	.poll = recv_desc_poll,
	.drop = recv_desc_drop,
	.size = sizeof(weft_broadcast_recv),
	.output_size = sizeof(int),
};

WEFT_API int weft_broadcast_recv_blocking(weft_broadcast_rx *rx, void *out,
					  uint64_t *missed)
{
	weft_broadcast_recv r;
	int st = -EINVAL, err;

	if (weft_broadcast_recv_init(&r, rx, out, missed))
		return -EINVAL;
	err = weft__block_poll(&weft_broadcast_recv_desc, &r, &st);
	return err ? err : st;
}
