/* SPDX-License-Identifier: MIT */
/*
 * Provided buffers: a pool of equal buffers per driver (worker ring),
 * created at the first recv stream on that ring. With a kernel buffer ring
 * (io_uring_register_buf_ring, 5.19+) the kernel picks a buffer for each
 * receive; without one (older kernels, WEFT_RT_NO_BUF_RING) the stream
 * takes one from the pool's free list and receives into it, the plain
 * rung. Either way the bytes arrive in memory the runtime owns, lent to
 * the caller (weft_buf) and given back with weft_buf_release.
 *
 * Threads: the owner (the driver's worker) puts buffers back into the
 * ring; any other thread gives them back through a lock-free stack whose
 * entries live inside the free buffers themselves, drained by the owner's
 * next turn. A give while streams wait for buffers (starving) unparks the
 * owner: Dekker pair, the giver's push then its load of starving against
 * the owner's store of starving then its drain.
 *
 * Lifetime: a reference count, one for the driver, one per record that
 * receives into the pool and one per lent buffer, so a buffer released
 * after the runtime was freed is still a valid release.
 */
#ifndef WEFT_IO_BUFPOOL_H
#define WEFT_IO_BUFPOOL_H

#include <ck_stack.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/multishot.h>

#include "io/inbox.h"
#include "spinlock.h"

struct weft__driver;

struct weft__bufpool {
	_Atomic unsigned refs;
	struct weft__driver *owner;    /* immutable */
	unsigned nbufs;                /* a power of two */
	unsigned size;                 /* bytes per buffer */
	unsigned stride;               /* bytes between buffers: size, but
					* room for an aligned stack entry */
	unsigned char *mem;            /* nbufs * stride */
	struct io_uring_buf_ring *br;  /* NULL: the plain rung */
	uint16_t bgid;
	unsigned out;                  /* owner: buffers not in ring/free list */
	int32_t *free;                 /* owner: plain rung's free ids */
	unsigned nfree;
	/* Any thread: given back elsewhere. io/inbox.h's stack, whose TSan
	 * build uses C11 atomics (TSan reports ck_pr's volatile loads as
	 * races against the CAS). */
	struct weft__inbox remote;
	_Atomic bool starving;         /* owner sets while streams starve */
	weft__spinlock exit_lock;      /* alive, against the driver's exit */
	bool alive;                    /* under exit_lock: owner not torn down */
};

/* The group id weft registers its buffer ring under, per ring. */
#define WEFT__BUFPOOL_BGID 0x7765u

/* Owner: @d's pool, created on first use. NULL: out of memory. */
struct weft__bufpool *weft__bufpool_get(struct weft__driver *d);

/* The memory of buffer @bid. */
static inline void *weft__bufpool_data(const struct weft__bufpool *p,
				       int32_t bid)
{
	return p->mem + (size_t)bid * p->stride;
}

/* Owner, plain rung: a free buffer's id, or -1 when none is free. */
int32_t weft__bufpool_take(struct weft__bufpool *p);

/* Owner: the kernel handed out @bid (a CQE with IORING_CQE_F_BUFFER). */
static inline void weft__bufpool_taken(struct weft__bufpool *p)
{
	p->out++;
}

void weft__bufpool_ref(struct weft__bufpool *p);
void weft__bufpool_unref(struct weft__bufpool *p);

/* @sqe picks its buffer from @p's ring (IOSQE_BUFFER_SELECT). */
static inline void weft__bufpool_select(struct weft__bufpool *p,
					struct io_uring_sqe *sqe)
{
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = p->bgid;
}

/* Lend buffer @bid of @p, @len bytes at @data inside it, as *@buf (a
 * pool reference per lent buffer: weft_buf_release drops it). */
static inline void weft__bufpool_lend(struct weft__bufpool *p, int32_t bid,
				      void *data, size_t len, weft_buf *buf)
{
	weft__bufpool_ref(p);
	*buf = (weft_buf){ .data = data, .len = len, ._pool = p, ._bid = bid };
}

/* weft_buf._bid of bytes in memory of their own (a stream's item copied
 * out past its cap): _pool is that memory, freed by weft_buf_release. */
#define WEFT__BUF_HEAP (-2)

/* Lend @heap (malloc'd, now the caller's), @len bytes at @data inside it,
 * as *@buf. */
static inline void weft__buf_lend_heap(void *heap, void *data, size_t len,
				       weft_buf *buf)
{
	*buf = (weft_buf){ .data = data, .len = len, ._pool = heap,
			   ._bid = WEFT__BUF_HEAP };
}

/* A stream's next is READY with @r: report it in *@res, or, for a caller
 * that passed no @res, give the buffer straight back. */
static inline weft_poll weft__bufpool_deliver(weft_buf *buf, int64_t *res,
					      int32_t r)
{
	if (res)
		*res = r;
	else
		weft_buf_release(buf);
	return WEFT_READY;
}

/* drop_output of the recv and datagram next futures: give back the
 * buffer of a weft_recv_item nobody took. */
void weft__recv_item_release(void *out);

/* Any thread: buffers given back elsewhere wait for the owner's drain. */
static inline bool weft__bufpool_has_remote(struct weft__bufpool *p)
{
	return !weft__inbox_is_empty(&p->remote);
}

/* Owner: buffers are ready to be received into now. */
bool weft__bufpool_has_free(const struct weft__bufpool *p);

/* Any thread: give buffer @bid back to the pool. */
void weft__bufpool_give(struct weft__bufpool *p, int32_t bid);

/* Owner, from the driver's turn: take back what other threads gave. */
void weft__bufpool_drain(struct weft__bufpool *p);


/* Any thread, before the ring is torn down: givers stop unparking the
 * owner (its eventfd is about to close). */
void weft__bufpool_close(struct weft__driver *d);

/* Any thread, after the ring is torn down: the driver's reference. */
void weft__bufpool_exit(struct weft__driver *d);

#endif /* WEFT_IO_BUFPOOL_H */
