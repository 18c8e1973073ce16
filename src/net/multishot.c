/* SPDX-License-Identifier: MIT */
/*
 * Accept and recv streams (weft/multishot.h): the op kinds and the public
 * calls over the stream records of io/multishot.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/multishot.h>

#include "io/bufpool.h"
#include "io/op.h"
#include "net/sockopt.h"

/* ---- accept ---- */

uint32_t weft__accept_backoff(struct weft__op *op, int32_t res)
{
	if (res != -EMFILE && res != -ENFILE && res != -ENOBUFS &&
	    res != -ENOMEM)
		return 0;
	op->retry_ms = !op->retry_ms	     ? WEFT__ACCEPT_BACKOFF_MIN_MS
		       : op->retry_ms >= WEFT__ACCEPT_BACKOFF_MAX_MS / 2
			       ? WEFT__ACCEPT_BACKOFF_MAX_MS
			       : op->retry_ms * 2;
	return op->retry_ms;
}

static bool accept_multishot(const struct weft__op *op)
{
	return weft__ring_has(&op->owner->ring, WEFT__FEAT_MULTISHOT_ACCEPT);
}

static int accept_reprep(struct weft__op *op, struct io_uring_sqe *sqe)
{
	if (accept_multishot(op))
		io_uring_prep_multishot_accept(sqe, op->target, NULL, NULL,
					       SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, op->target, NULL, NULL,
				     SOCK_CLOEXEC);
	return 0;
}

static int accept_ms_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			  const weft_io *io)
{
	op->target = io->_fd;
	op->big[0].ms.armed_bid = -1;
	return accept_reprep(op, sqe);
}

static void accept_discard_item(struct weft__op *op, int32_t fd)
{
	(void)op;
	close(fd);
}

/* accept(2): errors of a connection that was already gone or of the
 * network are to be treated like EAGAIN: accept again. */
static bool accept_transient(int32_t res)
{
	switch (-res) {
	case ECONNABORTED: case EINTR: case EAGAIN: case EPROTO:
	case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN: case ENONET:
	case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case EPERM:
		return true;
	default:
		return false;
	}
}

static const struct weft__op_kind accept_ms_kind = {
	.prep = accept_ms_prep,
	.reprep = accept_reprep,
	.backoff = weft__accept_backoff,
	.multishot = true,
	.discard_item = accept_discard_item,
	.transient = accept_transient,
	.extra = sizeof(union weft__op_big),
};

WEFT_API int weft_accept_stream_init(weft_accept_stream *s, int listen_fd)
{
	if (!s || listen_fd < 0)
		return -EINVAL;
	return weft__io_prep(&s->_io, &accept_ms_kind, listen_fd);
}

WEFT_API weft_poll weft_accept_stream_next(weft_accept_stream *s, weft_cx *cx,
					   int *fd)
{
	int32_t res, bid;
	void *heap; /* never for accept */

	if (!s || !cx) {
		if (fd)
			*fd = -EINVAL;
		return WEFT_READY;
	}
	if (weft__ms_poll_next(&s->_io, cx, &res, &bid, &heap) ==
	    WEFT_PENDING)
		return WEFT_PENDING;
	if (res >= 0)
		weft__tcp_nodelay_default(res); /* as the accept op (net.h) */
	if (fd)
		*fd = res;
	else if (res >= 0)
		close(res);
	return WEFT_READY;
}

WEFT_API void weft_accept_stream_drop(weft_accept_stream *s)
{
	if (s)
		weft_io_drop(&s->_io);
}

/* ---- recv ---- */

static int recv_reprep(struct weft__op *op, struct io_uring_sqe *sqe)
{
	struct weft__bufpool *p = op->big[0].ms.pool;

	if (!p->br) { /* the plain rung: receive into a buffer we pick */
		int32_t bid = weft__bufpool_take(p);

		if (bid < 0)
			return -ENOBUFS;
		op->big[0].ms.armed_bid = bid;
		io_uring_prep_recv(sqe, op->target, weft__bufpool_data(p, bid),
				   p->size, 0);
		return 0;
	}
	if (weft__ring_has(&op->owner->ring, WEFT__FEAT_MULTISHOT_RECV) &&
	    !op->big[0].ms.single)
		io_uring_prep_recv_multishot(sqe, op->target, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, op->target, NULL, p->size, 0);
	weft__bufpool_select(p, sqe);
	return 0;
}

static int recv_ms_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			const weft_io *io)
{
	int err = weft__ms_attach_pool(op, io->_fd);

	return err ? err : recv_reprep(op, sqe);
}

static const struct weft__op_kind recv_ms_kind = {
	.prep = recv_ms_prep,
	.reprep = recv_reprep,
	.multishot = true,
	.zero_ends = true,
	.extra = sizeof(union weft__op_big),
};

WEFT_API int weft_recv_stream_init(weft_recv_stream *s, int fd)
{
	if (!s || fd < 0)
		return -EINVAL;
	return weft__io_prep(&s->_io, &recv_ms_kind, fd);
}

WEFT_API weft_poll weft_recv_stream_next(weft_recv_stream *s, weft_cx *cx,
					 weft_buf *buf, int64_t *res)
{
	int32_t r, bid;
	void *heap;

	if (!s || !cx || !buf) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	if (weft__ms_poll_next(&s->_io, cx, &r, &bid, &heap) == WEFT_PENDING)
		return WEFT_PENDING;
	*buf = (weft_buf){ ._bid = -1 };
	if (heap) {
		weft__buf_lend_heap(heap, heap, (size_t)r, buf);
	} else if (bid >= 0) {
		struct weft__bufpool *p =
			((struct weft__op *)s->_io._op)->big[0].ms.pool;

		weft__bufpool_lend(p, bid, weft__bufpool_data(p, bid),
				   (size_t)r, buf);
	}
	return weft__bufpool_deliver(buf, res, r);
}

WEFT_API void weft_recv_stream_drop(weft_recv_stream *s)
{
	if (s)
		weft_io_drop(&s->_io);
}

WEFT_API void weft_buf_release(weft_buf *buf)
{
	if (!buf || !buf->_pool)
		return;
	if (buf->_bid == WEFT__BUF_HEAP) {
		free(buf->_pool);
		*buf = (weft_buf){ ._bid = -1 };
		return;
	}
	struct weft__bufpool *p = buf->_pool;

	weft__bufpool_give(p, buf->_bid);
	weft__bufpool_unref(p);
	*buf = (weft_buf){ ._bid = -1 };
}

/* ---- next futures ---- */

static weft_poll accept_next_poll(void *self, weft_cx *cx, void *out)
{
	weft_accept_next *n = self;

	return weft_accept_stream_next(n->stream, cx, out);
}

static void close_output(void *out)
{
	int fd = *(int *)out;

	if (fd >= 0)
		close(fd);
}

/* The next futures have no drop: they only borrow the stream. */
WEFT_API const weft_future_desc weft_accept_next_desc = {
	.poll = accept_next_poll,
	.drop_output = close_output,
	.size = sizeof(weft_accept_next),
	.output_size = sizeof(int),
};

static weft_poll recv_next_poll(void *self, weft_cx *cx, void *out)
{
	weft_recv_next *n = self;
	weft_recv_item *it = out;
	weft_buf unused;

	/* No output wanted: a NULL res gives the buffer straight back. */
	return weft_recv_stream_next(n->stream, cx, it ? &it->buf : &unused,
				     it ? &it->res : NULL);
}

WEFT_API const weft_future_desc weft_recv_next_desc = {
	.poll = recv_next_poll,
	.drop_output = weft__recv_item_release,
	.size = sizeof(weft_recv_next),
	.output_size = sizeof(weft_recv_item),
};
