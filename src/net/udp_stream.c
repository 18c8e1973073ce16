/* SPDX-License-Identifier: MIT */
/*
 * Datagram streams (weft/multishot.h): multishot recvmsg into provided
 * buffers. Every buffer a datagram lands in has the layout the kernel
 * gives a multishot recvmsg (struct io_uring_recvmsg_out, then the source
 * address in UDP_NAMELEN bytes, then the payload), whatever the rung: the
 * single-shot rungs receive into the same places (the plain rung) or are
 * rewritten into them in the reap (a buffer-ring recvmsg puts the payload
 * first and the address in the record's msghdr), so the consumer parses
 * one layout.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <weft/multishot.h>

#include "io/bufpool.h"
#include "io/op.h"

/* Bytes kept for the source address in each buffer. */
#define UDP_NAMELEN ((unsigned)sizeof(struct sockaddr_storage))
#define UDP_HDR ((unsigned)sizeof(struct io_uring_recvmsg_out) + UDP_NAMELEN)

/* The op in flight (or about to be) is a multishot recvmsg: fixup runs
 * before the reap changes single (io/multishot.c). */
static bool udp_multishot(const struct weft__op *op)
{
	return op->big[0].ms.pool->br && !op->big[0].ms.single &&
	       weft__ring_has(&op->owner->ring, WEFT__FEAT_MULTISHOT_RECV);
}

static int udp_reprep(struct weft__op *op, struct io_uring_sqe *sqe)
{
	struct weft__op_ms *ms = &op->big[0].ms;
	struct weft__bufpool *p = ms->pool;

	memset(&ms->msg, 0, sizeof(ms->msg));
	if (!p->br) { /* the plain rung: address and payload in our buffer */
		int32_t bid = weft__bufpool_take(p);
		unsigned char *b;

		if (bid < 0)
			return -ENOBUFS;
		b = weft__bufpool_data(p, bid);
		ms->armed_bid = bid;
		ms->iov.iov_base = b + UDP_HDR;
		ms->iov.iov_len = p->size - UDP_HDR;
		ms->msg.msg_name = b + sizeof(struct io_uring_recvmsg_out);
		ms->msg.msg_namelen = UDP_NAMELEN;
		ms->msg.msg_iov = &ms->iov;
		ms->msg.msg_iovlen = 1;
		io_uring_prep_recvmsg(sqe, op->target, &ms->msg, 0);
		return 0;
	}
	if (udp_multishot(op)) {
		ms->msg.msg_namelen = UDP_NAMELEN;
		io_uring_prep_recvmsg_multishot(sqe, op->target, &ms->msg, 0);
	} else { /* a buffer from the ring for the payload alone */
		ms->msg.msg_name = &ms->name;
		ms->msg.msg_namelen = UDP_NAMELEN;
		ms->msg.msg_iov = &ms->iov;
		ms->msg.msg_iovlen = 1;
		ms->iov.iov_base = NULL;
		ms->iov.iov_len = p->size;
		io_uring_prep_recvmsg(sqe, op->target, &ms->msg, 0);
	}
	weft__bufpool_select(p, sqe);
	return 0;
}

static int udp_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		    const weft_io *io)
{
	int err = weft__ms_attach_pool(op, io->_fd);

	if (err)
		return err;
	if (op->big[0].ms.pool->size <= UDP_HDR)
		return -EMSGSIZE; /* no room for an address and a payload */
	return udp_reprep(op, sqe);
}

/* The single-shot rungs: lay the buffer out as a multishot recvmsg does. */
static int32_t udp_fixup(struct weft__op *op, int32_t res, int32_t bid,
			 bool more)
{
	struct weft__op_ms *ms = &op->big[0].ms;
	struct weft__bufpool *p = ms->pool;
	unsigned char *b = weft__bufpool_data(p, bid);
	struct io_uring_recvmsg_out out = { 0 };
	uint32_t keep = (uint32_t)res;

	if (more || (p->br && udp_multishot(op)))
		return res; /* the kernel's own layout */
	if (p->br) {
		/* Payload first: move it behind the header and address (the
		 * tail past size - UDP_HDR is cut, as on every rung). */
		if (keep > p->size - UDP_HDR)
			keep = p->size - UDP_HDR;
		memmove(b + UDP_HDR, b, keep);
		memcpy(b + sizeof(out), &ms->name, UDP_NAMELEN);
	}
	out.namelen = ms->msg.msg_namelen;
	out.payloadlen = (uint32_t)res;
	out.flags = (uint32_t)ms->msg.msg_flags;
	memcpy(b, &out, sizeof(out));
	return (int32_t)(UDP_HDR + keep);
}

static const struct weft__op_kind udp_ms_kind = {
	.prep = udp_prep,
	.reprep = udp_reprep,
	.fixup = udp_fixup,
	.multishot = true,
	.zero_ends = false, /* an empty datagram is a datagram */
	.extra = sizeof(union weft__op_big),
};

WEFT_API int weft_udp_stream_init(weft_udp_stream *s, int fd)
{
	if (!s || fd < 0)
		return -EINVAL;
	return weft__io_prep(&s->_io, &udp_ms_kind, fd);
}

WEFT_API weft_poll weft_udp_stream_next(weft_udp_stream *s, weft_cx *cx,
					weft_buf *buf,
					struct sockaddr_storage *from,
					socklen_t *fromlen, int64_t *res)
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
	if (bid < 0 && !heap && r == 0 && from) {
		/* An empty datagram on the single-shot buffer-ring rung: the
		 * kernel used no buffer, and its address is not kept. */
		memset(from, 0, sizeof(*from));
		if (fromlen)
			*fromlen = 0;
	}
	if (bid >= 0 || heap) {
		struct weft__bufpool *p =
			((struct weft__op *)s->_io._op)->big[0].ms.pool;
		/* A copy past the stream's cap has the buffer's layout. */
		unsigned char *b = heap ? heap : weft__bufpool_data(p, bid);
		struct io_uring_recvmsg_out out;
		uint32_t room = (uint32_t)r > UDP_HDR ? (uint32_t)r - UDP_HDR : 0;

		memcpy(&out, b, sizeof(out));
		if (from) {
			socklen_t n = out.namelen < UDP_NAMELEN ? out.namelen
								 : UDP_NAMELEN;
			memset(from, 0, sizeof(*from));
			memcpy(from, b + sizeof(out), n);
			if (fromlen)
				*fromlen = n;
		}
		r = (int32_t)(out.payloadlen < room ? out.payloadlen : room);
		if (heap)
			weft__buf_lend_heap(heap, b + UDP_HDR, (size_t)r, buf);
		else
			weft__bufpool_lend(p, bid, b + UDP_HDR, (size_t)r,
					   buf);
	}
	return weft__bufpool_deliver(buf, res, r);
}

WEFT_API void weft_udp_stream_drop(weft_udp_stream *s)
{
	if (s)
		weft_io_drop(&s->_io);
}

static weft_poll udp_next_poll(void *self, weft_cx *cx, void *out)
{
	weft_udp_next *n = self;
	weft_recv_item *it = out;
	weft_buf unused;

	/* No output wanted: a NULL res gives the buffer straight back. */
	return weft_udp_stream_next(n->stream, cx, it ? &it->buf : &unused,
				    n->from, n->fromlen,
				    it ? &it->res : NULL);
}

/* No drop: the next future only borrows the stream. */
WEFT_API const weft_future_desc weft_udp_next_desc = {
	.poll = udp_next_poll,
	.drop_output = weft__recv_item_release,
	.size = sizeof(weft_udp_next),
	.output_size = sizeof(weft_recv_item),
};
