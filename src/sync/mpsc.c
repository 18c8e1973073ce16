/* SPDX-License-Identifier: MIT */
/*
 * mpsc channel (weft/mpsc.h).
 *
 * Two queues. Senders append to the inbox under a spinlock, which also
 * guards the counts and both kinds of waiter, and no waker runs under it.
 * The receiver owns a second queue, the outbox, and takes values from it
 * without any lock; only when the outbox is empty does it take the lock and
 * move the whole inbox over in O(1). So a busy receiver touches the shared
 * lock once per batch, not once per value, and the lock's cache line stays
 * with the senders (Vyukov's "swap the whole list" consumer; Tokio's
 * receiver likewise reads its blocks without a lock).
 *
 * Both queues are lists of fixed-size blocks of value slots (Tokio's
 * sync/mpsc/block.rs uses blocks of 32 for the same reason: no allocation
 * per value, and an unbounded channel grows without copying). Blocks the
 * receiver has drained go back to the senders' free list at the next swap.
 *
 * Capacity (bounded channels; Tokio's bounded channel is a semaphore in
 * front of the same queue): `permits` is the free capacity the senders know
 * of. The receiver counts what it took in `popped` (one atomic store per
 * value, on its own cache line); a sender that finds no permit reclaims
 * `popped - reclaimed`. A send that still finds none queues its future on
 * `waiting` and raises `has_waiters`; a receiver that sees it after a take
 * locks and hands the freed slots to the head waiters (reserved: the
 * waiter's next poll copies its value in). The store of popped and the load
 * of has_waiters, against the store of has_waiters and the load of popped,
 * are sequentially consistent (Dekker): either the sender sees the slot
 * freed, or the receiver sees the waiter. A reserved slot whose waiter is
 * dropped passes to the next. So sends are served in FIFO order, a new
 * send never jumps a waiting one, and no capacity leaks.
 *
 * Why not ck_ring: a weft channel has a run-time value size and async
 * waiters on both sides. ck_ring's MP enqueue stores pointers (or a
 * compile-time type) and makes each producer wait for the one before it
 * to publish; the waiter bookkeeping needs the lock anyway, and under it a
 * plain block append is one copy. Measured against Tokio in bench/ (mpsc_*
 * workloads, docs/sync.md).
 *
 * A send future's state: IDLE (prepared), WAITING (queued, or dequeued
 * with a reserved slot (_result 0) or by a close (-EPIPE) and not yet seen
 * by a poll), DONE.
 */
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <weft/mpsc.h>

#include "task/parker.h"
#include "spinlock.h"
#include "sync/waitlist.h"

#define FREE_BLOCKS 8 /* drained blocks kept for reuse */

struct block {
	struct block *next;
	unsigned char data[];
};

/* A queue: values from slot hi of head up to len of them. */
struct queue {
	struct block *head, *tail;
	unsigned hi, ti; /* ti: next free slot of tail */
	size_t len;
};

struct weft_mpsc {
	/* Senders' side, under lock. */
	weft__spinlock lock;
	struct queue in;
	struct block *free; /* blocks to reuse */
	unsigned nfree;
	size_t permits;   /* bounded: free capacity known to the senders */
	size_t reclaimed; /* popped values already counted in permits */
	bool bounded;
	bool rx_closed;  /* sends fail */
	bool rx_dropped; /* the receiver handle is gone */
	size_t senders;
	weft_waker rx_waker; /* set while a recv waits */
	struct weft__waitlist waiting; /* sends waiting for room */
	_Atomic bool has_waiters;      /* waiting is not empty */

	/* Receiver's side: one thread at a time, no lock. */
	alignas(WEFT__CACHELINE) struct queue out;
	struct block *drained; /* to hand back at the next swap */
	unsigned ndrained;
	size_t npopped;
	_Atomic size_t popped; /* npopped, for senders to reclaim */

	struct shape { /* immutable */
		unsigned per_block;
		size_t value_size;
		void (*drop_value)(void *value, void *ctx);
		void *drop_ctx;
	} shape;
};

enum { S_IDLE = 1, S_WAITING, S_DONE };

static struct weft_mpsc *chan_tx(const weft_mpsc_tx *tx)
{
	return (struct weft_mpsc *)tx;
}

static struct weft_mpsc *chan_rx(const weft_mpsc_rx *rx)
{
	return (struct weft_mpsc *)rx;
}

static struct weft__waiter *node_of(weft_mpsc_send *s)
{
	return (struct weft__waiter *)(void *)&s->_node;
}

static weft_mpsc_send *send_of(struct weft__waiter *w)
{
	return weft__container_of((void *)w, weft_mpsc_send, _node);
}

WEFT_API int weft_mpsc_new(const weft_mpsc_config *cfg, weft_mpsc_tx **tx,
			   weft_mpsc_rx **rx)
{
	struct weft_mpsc *c;

	if (!cfg || !tx || !rx || cfg->value_size > WEFT_MPSC_MAX_VALUE)
		return -EINVAL;
	c = aligned_alloc(WEFT__CACHELINE,
			  (sizeof(*c) + WEFT__CACHELINE - 1) /
				  WEFT__CACHELINE * WEFT__CACHELINE);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	weft__spin_init(&c->lock);
	atomic_init(&c->has_waiters, false);
	atomic_init(&c->popped, 0);
	c->bounded = cfg->capacity != 0;
	c->permits = cfg->capacity;
	c->senders = 1;
	/* Blocks of about 4 KiB of values, 1 to 64 slots. */
	c->shape.value_size = cfg->value_size;
	c->shape.per_block = cfg->value_size ? (unsigned)(4096 /
							  cfg->value_size)
					     : 64;
	if (c->shape.per_block > 64)
		c->shape.per_block = 64;
	if (c->shape.per_block < 1)
		c->shape.per_block = 1;
	c->shape.drop_value = cfg->drop_value;
	c->shape.drop_ctx = cfg->drop_ctx;
	*tx = (weft_mpsc_tx *)c;
	*rx = (weft_mpsc_rx *)c;
	return 0;
}

WEFT_API int weft_mpsc_bounded(size_t value_size, size_t capacity,
			       weft_mpsc_tx **tx, weft_mpsc_rx **rx)
{
	weft_mpsc_config cfg = { .value_size = value_size,
				 .capacity = capacity };

	if (!capacity)
		return -EINVAL;
	return weft_mpsc_new(&cfg, tx, rx);
}

WEFT_API int weft_mpsc_unbounded(size_t value_size, weft_mpsc_tx **tx,
				 weft_mpsc_rx **rx)
{
	weft_mpsc_config cfg = { .value_size = value_size };

	return weft_mpsc_new(&cfg, tx, rx);
}

/* ------------------------------------------------------------ the queues */

static unsigned char *slot(const struct shape *sh, struct block *b,
			   unsigned i)
{
	return b->data + (size_t)i * sh->value_size;
}

/* Copy one value: word-sized values (pointers, integers: the common case)
 * without a call to memcpy. */
static inline void copy_value(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 0:
		break;
	case 4:
		memcpy(dst, src, 4);
		break;
	case 8:
		memcpy(dst, src, 8);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	default:
		memcpy(dst, src, n);
	}
}

/* Under the lock: append a copy of @v to the inbox. -ENOMEM leaves
 * nothing changed. */
static __attribute__((noinline)) int grow(struct weft_mpsc *c)
{
	struct queue *q = &c->in;
	struct block *b = c->free;

	if (b) {
		c->free = b->next;
		c->nfree--;
	} else if (!(b = malloc(sizeof(*b) + (size_t)c->shape.per_block *
						     c->shape.value_size))) {
		return -ENOMEM;
	}
	b->next = NULL;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
	q->ti = 0;
	return 0;
}

/* The send fast path: inlined; a new block is the cold case. */
static inline __attribute__((always_inline)) int push(struct weft_mpsc *c,
						      const void *v)
{
	struct queue *q = &c->in;

	if (weft__unlikely(!q->tail || q->ti == c->shape.per_block)) {
		int err = grow(c);

		if (err)
			return err;
	}
	copy_value(slot(&c->shape, q->tail, q->ti), v, c->shape.value_size);
	q->ti++;
	q->len++;
	return 0;
}

/* Receiver: a drained block, kept to hand back to the senders. */
static void drained(struct weft_mpsc *c, struct block *b)
{
	if (c->ndrained == FREE_BLOCKS) {
		free(b);
		return;
	}
	b->next = c->drained;
	c->drained = b;
	c->ndrained++;
}

/* Receiver, with out.len > 0: take the oldest value into @v (NULL
 * discards). */
static inline __attribute__((always_inline)) void pop(struct weft_mpsc *c,
						       void *v)
{
	struct queue *q = &c->out;

	if (weft__unlikely(q->hi == c->shape.per_block)) {
		struct block *b = q->head;

		q->head = b->next;
		q->hi = 0;
		drained(c, b);
	}
	if (v)
		copy_value(v, slot(&c->shape, q->head, q->hi),
			   c->shape.value_size);
	q->hi++;
	if (weft__unlikely(--q->len == 0)) {
		drained(c, q->head);
		*q = (struct queue){ 0 };
	}
}

/* Under the lock, as the receiver with an empty outbox: give drained
 * blocks back and move the inbox over. */
static void swap_locked(struct weft_mpsc *c)
{
	while (c->drained && c->nfree < FREE_BLOCKS) {
		struct block *b = c->drained;

		c->drained = b->next;
		c->ndrained--;
		b->next = c->free;
		c->free = b;
		c->nfree++;
	}
	c->out = c->in;
	c->in = (struct queue){ 0 };
}

/* Under the lock: a value was queued; take the receiver's waker to wake. */
static weft_waker sent_locked(struct weft_mpsc *c)
{
	weft_waker w = c->rx_waker;

	c->rx_waker = WEFT_WAKER_EMPTY;
	return w;
}

/* Under the lock: count the slots the receiver freed since last time. */
static void reclaim_locked(struct weft_mpsc *c)
{
	size_t p = atomic_load_explicit(&c->popped, memory_order_seq_cst);

	c->permits += p - c->reclaimed;
	c->reclaimed = p;
}

/* Under the lock: reserve free slots for the head waiters, collecting
 * their wakers in @ws (as many as fit). */
static void grant_locked(struct weft_mpsc *c, struct weft__wakeset *ws)
{
	struct weft__waiter *w;

	while (c->permits && (w = c->waiting.head) &&
	       !weft__wakeset_full(ws)) {
		weft__waitlist_remove(&c->waiting, w);
		c->permits--;
		send_of(w)->_result = 0;
		weft__wakeset_take(ws, w);
	}
	if (!c->waiting.head)
		atomic_store_explicit(&c->has_waiters, false,
				      memory_order_relaxed);
}

/* Lock, reclaim and grant until no permit or no waiter is left; unlocks
 * and wakes. */
static void grant(struct weft_mpsc *c)
{
	WEFT__WAKESET_DECL(ws);

	weft__spin_lock(&c->lock);
	for (;;) {
		reclaim_locked(c);
		grant_locked(c, &ws);
		if (!weft__wakeset_full(&ws))
			break;
		weft__spin_unlock(&c->lock);
		weft__wakeset_wake(&ws);
		weft__spin_lock(&c->lock);
	}
	weft__spin_unlock(&c->lock);
	weft__wakeset_wake(&ws);
}

/* Discard a detached queue (no lock held: drop_value is user code). Takes
 * the shape by value: the channel may be freed meanwhile by its last
 * sender. */
static void discard(struct shape sh, struct queue q)
{
	struct block *b = q.head;
	unsigned hi = q.hi;

	while (b) {
		struct block *next = b->next;

		for (; q.len && hi < sh.per_block; hi++, q.len--)
			if (sh.drop_value)
				sh.drop_value(slot(&sh, b, hi), sh.drop_ctx);
		free(b);
		b = next;
		hi = 0;
	}
}

static void free_list(struct block *b)
{
	while (b) {
		struct block *next = b->next;

		free(b);
		b = next;
	}
}

static void chan_free(struct weft_mpsc *c)
{
	discard(c->shape, c->in);
	discard(c->shape, c->out);
	free_list(c->free);
	free_list(c->drained);
	weft_waker_drop(&c->rx_waker);
	free(c);
}

/* --------------------------------------------------------------- handles */

WEFT_API int weft_mpsc_tx_clone(weft_mpsc_tx *tx, weft_mpsc_tx **out)
{
	struct weft_mpsc *c = chan_tx(tx);

	if (!c || !out)
		return -EINVAL;
	weft__spin_lock(&c->lock);
	c->senders++;
	weft__spin_unlock(&c->lock);
	*out = tx;
	return 0;
}

WEFT_API void weft_mpsc_tx_drop(weft_mpsc_tx *tx)
{
	struct weft_mpsc *c = chan_tx(tx);
	weft_waker wake = WEFT_WAKER_EMPTY;
	bool last;

	if (!c)
		return;
	weft__spin_lock(&c->lock);
	if (--c->senders == 0) /* a waiting recv now sees the end */
		wake = sent_locked(c);
	last = c->senders == 0 && c->rx_dropped;
	weft__spin_unlock(&c->lock);
	weft_waker_wake(&wake);
	if (last)
		chan_free(c);
}

/* Under the lock: fail every waiting send; unlocks. */
static void close_locked(struct weft_mpsc *c)
{
	WEFT__WAKESET_DECL(ws);
	struct weft__waiter *w;

	c->rx_closed = true;
	while ((w = c->waiting.head)) {
		if (weft__wakeset_full(&ws)) {
			weft__spin_unlock(&c->lock);
			weft__wakeset_wake(&ws);
			weft__spin_lock(&c->lock);
			continue;
		}
		weft__waitlist_remove(&c->waiting, w);
		send_of(w)->_result = -EPIPE;
		weft__wakeset_take(&ws, w);
	}
	atomic_store_explicit(&c->has_waiters, false, memory_order_relaxed);
	weft__spin_unlock(&c->lock);
	weft__wakeset_wake(&ws);
}

WEFT_API void weft_mpsc_rx_close(weft_mpsc_rx *rx)
{
	struct weft_mpsc *c = chan_rx(rx);
	weft_waker w;

	if (!c)
		return;
	weft__spin_lock(&c->lock);
	/* A recv pending on an empty channel sees -EPIPE at its next poll:
	 * wake it (the close may come from another thread, as a stop). */
	w = sent_locked(c);
	close_locked(c);
	weft_waker_wake(&w);
}

WEFT_API void weft_mpsc_rx_drop(weft_mpsc_rx *rx)
{
	struct weft_mpsc *c = chan_rx(rx);
	struct shape shape;
	struct queue in, out;
	weft_waker old;
	bool last;

	if (!c)
		return;
	shape = c->shape;
	out = c->out; /* the receiver's own */
	c->out = (struct queue){ 0 };
	weft__spin_lock(&c->lock);
	close_locked(c);
	weft__spin_lock(&c->lock);
	c->rx_dropped = true;
	in = c->in; /* detach; discard outside the lock */
	c->in = (struct queue){ 0 };
	old = c->rx_waker;
	c->rx_waker = WEFT_WAKER_EMPTY;
	last = c->senders == 0;
	weft__spin_unlock(&c->lock);
	weft_waker_drop(&old);
	discard(shape, out);
	discard(shape, in);
	if (last)
		chan_free(c);
}

WEFT_API size_t weft_mpsc_len(const weft_mpsc_rx *rx)
{
	struct weft_mpsc *c = chan_rx(rx);
	size_t n;

	if (!c)
		return 0;
	weft__spin_lock(&c->lock);
	n = c->in.len;
	weft__spin_unlock(&c->lock);
	return n + c->out.len;
}

WEFT_API bool weft_mpsc_is_closed(const weft_mpsc_tx *tx)
{
	struct weft_mpsc *c = chan_tx(tx);
	bool closed;

	if (!c)
		return false;
	weft__spin_lock(&c->lock);
	closed = c->rx_closed;
	weft__spin_unlock(&c->lock);
	return closed;
}

/* ------------------------------------------------------------------ send */

/*
 * Under the lock, a bounded channel, no waiter queued: take a permit if
 * one is free. When none is, has_waiters is raised before the second look
 * at popped (the Dekker pair above), and left up: the caller queues itself.
 */
static bool take_permit_locked(struct weft_mpsc *c)
{
	if (!c->permits)
		reclaim_locked(c);
	if (!c->permits) {
		atomic_store_explicit(&c->has_waiters, true,
				      memory_order_seq_cst);
		reclaim_locked(c);
		if (!c->permits)
			return false;
		atomic_store_explicit(&c->has_waiters, false,
				      memory_order_relaxed);
	}
	c->permits--;
	return true;
}

/* Under the lock, holding a permit (or unbounded): queue the value. On
 * -ENOMEM the permit goes back (to a waiter if one is queued). */
static inline __attribute__((always_inline)) int
send_locked(struct weft_mpsc *c, const void *v, weft_waker *wake,
	    struct weft__wakeset *ws)
{
	int r = push(c, v);

	if (!r) {
		*wake = sent_locked(c);
	} else if (c->bounded) {
		c->permits++;
		grant_locked(c, ws);
	}
	return r;
}

WEFT_API int weft_mpsc_try_send(weft_mpsc_tx *tx, const void *value)
{
	struct weft_mpsc *c = chan_tx(tx);
	WEFT__WAKESET_DECL(ws);
	weft_waker wake = WEFT_WAKER_EMPTY;
	int err;

	if (!c || (!value && c->shape.value_size))
		return -EINVAL;
	weft__spin_lock(&c->lock);
	if (c->rx_closed) {
		err = -EPIPE;
	} else if (c->bounded && c->waiting.head) {
		err = -EAGAIN; /* never jump a waiting send */
	} else if (c->bounded && !c->permits &&
		   (reclaim_locked(c), !c->permits)) {
		err = -EAGAIN;
	} else {
		if (c->bounded)
			c->permits--;
		err = send_locked(c, value, &wake, &ws);
	}
	weft__spin_unlock(&c->lock);
	weft_waker_wake(&wake);
	weft__wakeset_wake(&ws);
	return err;
}

WEFT_API int weft_mpsc_send_init(weft_mpsc_send *s, weft_mpsc_tx *tx,
				 const void *value)
{
	if (!s || !tx || (!value && chan_tx(tx)->shape.value_size))
		return -EINVAL;
	*s = (weft_mpsc_send){ ._tx = tx, ._value = value,
			       ._state = S_IDLE };
	return 0;
}

static weft_poll send_ready(weft_mpsc_send *s, int *res, int v)
{
	s->_state = S_DONE;
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API weft_poll weft_mpsc_send_poll(weft_mpsc_send *s, weft_cx *cx,
				       int *res)
{
	if (!s || !cx || !s->_tx || !s->_state)
		return res ? (*res = -EINVAL, WEFT_READY) : WEFT_READY;
	if (s->_state == S_DONE)
		return send_ready(s, res, -EALREADY);

	struct weft_mpsc *c = chan_tx(s->_tx);
	struct weft__waiter *w = node_of(s);
	WEFT__WAKESET_DECL(ws);
	weft_waker wake = WEFT_WAKER_EMPTY;
	int r;

	weft__spin_lock(&c->lock);
	if (s->_state == S_IDLE) {
		if (c->rx_closed) {
			r = -EPIPE;
		} else if (!c->bounded ||
			   (!c->waiting.head && take_permit_locked(c))) {
			r = send_locked(c, s->_value, &wake, &ws);
		} else {
			w->waker = weft_waker_clone(cx->waker);
			weft__waitlist_push(&c->waiting, w);
			atomic_store_explicit(&c->has_waiters, true,
					      memory_order_seq_cst);
			s->_state = S_WAITING;
			weft__spin_unlock(&c->lock);
			return WEFT_PENDING;
		}
	} else if (w->queued) {
		weft_waker old = weft__waker_store(&w->waker, cx->waker);

		weft__spin_unlock(&c->lock);
		weft_waker_drop(&old); /* may free a task: not under the lock */
		return WEFT_PENDING;
	} else if ((r = s->_result) == 0) { /* a slot was reserved for us */
		if (c->rx_closed)
			r = -EPIPE;
		else
			r = send_locked(c, s->_value, &wake, &ws);
	}
	weft__spin_unlock(&c->lock);
	weft_waker_wake(&wake);
	weft__wakeset_wake(&ws);
	return send_ready(s, res, r);
}

WEFT_API void weft_mpsc_send_drop(weft_mpsc_send *s)
{
	if (!s || s->_state != S_WAITING) {
		if (s && s->_state)
			s->_state = S_DONE;
		return;
	}
	struct weft_mpsc *c = chan_tx(s->_tx);
	struct weft__waiter *w = node_of(s);
	WEFT__WAKESET_DECL(ws);
	weft_waker old;

	weft__spin_lock(&c->lock);
	if (w->queued) {
		weft__waitlist_remove(&c->waiting, w);
		if (!c->waiting.head)
			atomic_store_explicit(&c->has_waiters, false,
					      memory_order_relaxed);
	} else if (s->_result == 0 && !c->rx_closed) {
		c->permits++; /* reserved, never used: pass it on */
		grant_locked(c, &ws);
	}
	old = w->waker;
	w->waker = WEFT_WAKER_EMPTY;
	s->_state = S_DONE;
	weft__spin_unlock(&c->lock);
	weft_waker_drop(&old);
	weft__wakeset_wake(&ws);
}

static weft_poll send_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_mpsc_send_poll(self, cx, out);
}

static void send_desc_drop(void *self)
{
	weft_mpsc_send_drop(self);
}

WEFT_API const weft_future_desc weft_mpsc_send_desc = {
	.poll = send_desc_poll,
	.drop = send_desc_drop,
	.size = sizeof(weft_mpsc_send),
	.output_size = sizeof(int),
};

/* ------------------------------------------------------------------ recv */

/*
 * As the receiver: 0 with a value in @v, -EPIPE (closed and drained) or
 * -EAGAIN (empty; with @cx, its waker is registered under the same lock
 * that saw the inbox empty, so no send is missed).
 */
/* As the receiver, after a pop: publish the freed slot (bounded), and hand
 * it over if a send waits. */
static inline void popped(struct weft_mpsc *c)
{
	if (!c->bounded)
		return;
	atomic_store_explicit(&c->popped, ++c->npopped, memory_order_seq_cst);
	if (atomic_load_explicit(&c->has_waiters, memory_order_seq_cst))
		grant(c);
}

/* take() with an empty outbox: swap the inbox in under the lock. */
static __attribute__((noinline)) int take_slow(struct weft_mpsc *c, void *v,
					       weft_cx *cx)
{
	weft_waker old = WEFT_WAKER_EMPTY;
	int r = 0;

	weft__spin_lock(&c->lock);
	swap_locked(c);
	if (!c->out.len) {
		r = c->senders == 0 || c->rx_closed ? -EPIPE : -EAGAIN;
		if (r == -EAGAIN && cx)
			old = weft__waker_store(&c->rx_waker, cx->waker);
	}
	weft__spin_unlock(&c->lock);
	weft_waker_drop(&old);
	if (r)
		return r;
	pop(c, v);
	popped(c);
	return 0;
}

/*
 * As the receiver: 0 with a value in @v, -EPIPE (closed and drained) or
 * -EAGAIN (empty; with @cx, its waker is registered under the same lock
 * that saw the inbox empty, so no send is missed). The outbox needs no
 * lock: the fast path.
 */
static inline __attribute__((always_inline)) int take(struct weft_mpsc *c,
						      void *v, weft_cx *cx)
{
	if (weft__unlikely(!c->out.len))
		return take_slow(c, v, cx);
	pop(c, v);
	popped(c);
	return 0;
}

WEFT_API int weft_mpsc_try_recv(weft_mpsc_rx *rx, void *out)
{
	struct weft_mpsc *c = chan_rx(rx);

	if (!c)
		return -EINVAL;
	return take(c, out, NULL);
}

WEFT_API weft_poll weft_mpsc_poll_recv(weft_mpsc_rx *rx, weft_cx *cx,
				       void *out, int *res)
{
	int v;

	if (!rx || !cx)
		v = -EINVAL;
	else if ((v = take(chan_rx(rx), out, cx)) == -EAGAIN)
		return WEFT_PENDING;
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API int weft_mpsc_recv_init(weft_mpsc_recv *r, weft_mpsc_rx *rx,
				 void *out)
{
	if (!r || !rx)
		return -EINVAL;
	*r = (weft_mpsc_recv){ ._rx = rx, ._out = out, ._state = S_IDLE };
	return 0;
}

WEFT_API weft_poll weft_mpsc_recv_poll(weft_mpsc_recv *r, weft_cx *cx,
				       int *res)
{
	int v;

	if (!r || !cx || !r->_rx || !r->_state) {
		v = -EINVAL;
	} else if (r->_state == S_DONE) {
		v = -EALREADY;
	} else if ((v = take(chan_rx(r->_rx), r->_out, cx)) == -EAGAIN) {
		r->_state = S_WAITING;
		return WEFT_PENDING;
	} else {
		r->_state = S_DONE;
	}
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API void weft_mpsc_recv_drop(weft_mpsc_recv *r)
{
	if (!r || r->_state != S_WAITING) {
		if (r && r->_state)
			r->_state = S_DONE;
		return;
	}
	struct weft_mpsc *c = chan_rx(r->_rx);
	weft_waker old;

	/* Unregister: a send must not wake a task that stopped waiting. */
	weft__spin_lock(&c->lock);
	old = c->rx_waker;
	c->rx_waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&c->lock);
	weft_waker_drop(&old);
	r->_state = S_DONE;
}

static weft_poll recv_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_mpsc_recv_poll(self, cx, out);
}

static void recv_desc_drop(void *self)
{
	weft_mpsc_recv_drop(self);
}

WEFT_API const weft_future_desc weft_mpsc_recv_desc = {
	.poll = recv_desc_poll,
	.drop = recv_desc_drop,
	.size = sizeof(weft_mpsc_recv),
	.output_size = sizeof(int),
};

/* -------------------------------------------------------------- blocking */

WEFT_API int weft_mpsc_send_blocking(weft_mpsc_tx *tx, const void *value)
{
	weft_mpsc_send s;
	int res, err;

	if ((err = weft_mpsc_send_init(&s, tx, value)))
		return err;
	if ((err = weft__block_poll(&weft_mpsc_send_desc, &s, &res))) {
		weft_mpsc_send_drop(&s);
		return err;
	}
	return res;
}

WEFT_API int weft_mpsc_recv_blocking(weft_mpsc_rx *rx, void *out)
{
	weft_mpsc_recv r;
	int res, err;

	if ((err = weft_mpsc_recv_init(&r, rx, out)))
		return err;
	if ((err = weft__block_poll(&weft_mpsc_recv_desc, &r, &res))) {
		weft_mpsc_recv_drop(&r);
		return err;
	}
	return res;
}
