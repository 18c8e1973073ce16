/* SPDX-License-Identifier: MIT */
/*
 * Oneshot channel: one value, one sender, one receiver. Both handles point
 * at one shared record freed by whichever side lets go last. A spinlock
 * (weft__spinlock: ck_spinlock_fas) guards the few fields; wakers are woken
 * and dropped outside it, since that can run arbitrary code.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <stdatomic.h>

#include <weft/sync.h>

#include "spinlock.h"

struct oneshot {
	weft__spinlock lock;
	_Atomic unsigned refs;
	bool sent;            /* under lock */
	bool tx_closed;       /* under lock */
	bool rx_closed;       /* under lock */
	bool received;        /* receiver only */
	weft_waker rx_waker;  /* under lock */
	size_t size;
	unsigned char value[] __attribute__((aligned(16)));
};

static void release(struct oneshot *c)
{
	/* acq_rel: the other side's last accesses happen before free. */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	weft_waker_drop(&c->rx_waker);
	free(c);
}

WEFT_API int weft_oneshot_new(size_t value_size, weft_oneshot_tx **tx,
			      weft_oneshot_rx **rx)
{
	if (!tx || !rx || value_size > WEFT_FUTURE_MAX_SIZE)
		return -EINVAL;
	struct oneshot *c = malloc(sizeof(*c) + value_size);
	if (!c)
		return -ENOMEM;
	weft__spin_init(&c->lock);
	atomic_init(&c->refs, 2);
	c->sent = c->tx_closed = c->rx_closed = c->received = false;
	c->rx_waker = WEFT_WAKER_EMPTY;
	c->size = value_size;
	*tx = (weft_oneshot_tx *)c;
	*rx = (weft_oneshot_rx *)c;
	return 0;
}

/* Close the sending side, with or without a value. */
static int tx_close(struct oneshot *c, const void *value)
{
	weft_waker w;

	weft__spin_lock(&c->lock);
	if (value && c->rx_closed) {
		c->tx_closed = true;
		weft__spin_unlock(&c->lock);
		release(c);
		return -EPIPE;
	}
	if (value && c->size)
		memcpy(c->value, value, c->size);
	c->sent = value != NULL;
	c->tx_closed = true;
	w = c->rx_waker;
	c->rx_waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&c->lock);
	weft_waker_wake(&w);
	release(c);
	return 0;
}

WEFT_API int weft_oneshot_send(weft_oneshot_tx *tx, const void *value)
{
	static const unsigned char none;
	struct oneshot *c = (struct oneshot *)tx;

	/* Refuse before touching the channel: the sender stays the caller's
	 * to send again or drop. c->size is immutable. */
	if (!c || (!value && c->size))
		return -EINVAL;
	/* A zero-size value may be sent with value == NULL. */
	return tx_close(c, value ? value : &none);
}

WEFT_API void weft_oneshot_tx_drop(weft_oneshot_tx *tx)
{
	if (tx)
		tx_close((struct oneshot *)tx, NULL);
}

WEFT_API weft_poll weft_oneshot_recv_poll(weft_oneshot_rx *rx, weft_cx *cx,
					  int *status, void *out)
{
	struct oneshot *c = (struct oneshot *)rx;
	weft_waker old = WEFT_WAKER_EMPTY;
	int st;

	if (!c || !cx) {
		st = -EINVAL;
		goto ready;
	}
	if (c->received) {
		st = -EALREADY;
		goto ready;
	}
	weft__spin_lock(&c->lock);
	if (!c->tx_closed) {
		old = weft__waker_store(&c->rx_waker, cx->waker);
		weft__spin_unlock(&c->lock);
		weft_waker_drop(&old);
		return WEFT_PENDING;
	}
	bool sent = c->sent;
	weft__spin_unlock(&c->lock);
	/* tx_closed is final and the value was written before it under the
	 * lock: reading it now needs no lock. */
	if (sent && out && c->size)
		memcpy(out, c->value, c->size);
	c->received = true;
	st = sent ? 0 : -EPIPE;
ready:
	if (status)
		*status = st;
	return WEFT_READY;
}

WEFT_API void weft_oneshot_rx_drop(weft_oneshot_rx *rx)
{
	struct oneshot *c = (struct oneshot *)rx;
	weft_waker old;

	if (!c)
		return;
	weft__spin_lock(&c->lock);
	c->rx_closed = true;
	old = c->rx_waker;
	c->rx_waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&c->lock);
	weft_waker_drop(&old);
	release(c);
}
