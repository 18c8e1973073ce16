/* SPDX-License-Identifier: MIT */
/*
 * weft_send_all and weft_recv_exact: loops of send/recv ops until a whole
 * buffer has moved (Tokio's write_all and read_exact). Both are a
 * struct weft__xfer driven by the same code; only the op differs.
 */
#include <errno.h>

#include <weft/net.h>

#include "io/op.h"

static weft_poll finish(int64_t *res, int64_t v)
{
	if (res)
		*res = v;
	return WEFT_READY;
}

static int xfer_init(struct weft__xfer *x, int fd, const void *buf,
		     size_t len, int flags)
{
	if (weft__io_in_flight(&x->io))
		return -EBUSY;
	*x = (struct weft__xfer){ .buf = (unsigned char *)buf, .len = len,
				  .fd = fd, .flags = flags };
	if (!buf && len)
		x->err = -EINVAL; /* reported by the poll too */
	return x->err;
}

/*
 * Drive @x until done reaches len: prepare the next send or recv whenever
 * no op is in flight, poll it, count what moved. An op that moves 0 bytes
 * of a non-empty rest means the peer is gone: -EPIPE.
 */
static weft_poll xfer_poll(struct weft__xfer *x, bool send, weft_cx *cx,
			   int64_t *res)
{
	int64_t r;

	if (x->err)
		return finish(res, x->err);
	while (x->done < x->len) {
		if (!weft__io_in_flight(&x->io)) {
			unsigned char *p = x->buf + x->done;
			size_t n = x->len - x->done;
			int e = send ? weft_io_prep_send(&x->io, x->fd, p, n,
							 x->flags)
				     : weft_io_prep_recv(&x->io, x->fd, p, n,
							 x->flags);
			if (e)
				return finish(res, e);
		}
		if (weft_io_poll(&x->io, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		if (r < 0)
			return finish(res, r);
		if (r == 0)
			return finish(res, -EPIPE);
		x->done += (size_t)r;
	}
	return finish(res, (int64_t)x->len);
}

WEFT_API int weft_send_all_init(weft_send_all *f, int fd, const void *buf,
				size_t len, int flags)
{
	return f ? xfer_init(&f->_x, fd, buf, len, flags) : -EINVAL;
}

WEFT_API weft_poll weft_send_all_poll(weft_send_all *f, weft_cx *cx,
				      int64_t *res)
{
	return f ? xfer_poll(&f->_x, true, cx, res) : finish(res, -EINVAL);
}

WEFT_API size_t weft_send_all_done(const weft_send_all *f)
{
	return f ? f->_x.done : 0;
}

WEFT_API void weft_send_all_drop(weft_send_all *f)
{
	if (f)
		weft_io_drop(&f->_x.io);
}

WEFT_API int weft_recv_exact_init(weft_recv_exact *f, int fd, void *buf,
				  size_t len, int flags)
{
	return f ? xfer_init(&f->_x, fd, buf, len, flags) : -EINVAL;
}

WEFT_API weft_poll weft_recv_exact_poll(weft_recv_exact *f, weft_cx *cx,
					int64_t *res)
{
	return f ? xfer_poll(&f->_x, false, cx, res) : finish(res, -EINVAL);
}

WEFT_API size_t weft_recv_exact_done(const weft_recv_exact *f)
{
	return f ? f->_x.done : 0;
}

WEFT_API void weft_recv_exact_drop(weft_recv_exact *f)
{
	if (f)
		weft_io_drop(&f->_x.io);
}

static weft_poll send_all_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_send_all_poll(self, cx, out);
}

static void send_all_desc_drop(void *self)
{
	weft_send_all_drop(self);
}

static weft_poll recv_exact_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_recv_exact_poll(self, cx, out);
}

static void recv_exact_desc_drop(void *self)
{
	weft_recv_exact_drop(self);
}

WEFT_API const weft_future_desc weft_send_all_desc = {
	.poll = send_all_desc_poll,
	.drop = send_all_desc_drop,
	.size = sizeof(weft_send_all),
	.output_size = sizeof(int64_t),
};

WEFT_API const weft_future_desc weft_recv_exact_desc = {
	.poll = recv_exact_desc_poll,
	.drop = recv_exact_desc_drop,
	.size = sizeof(weft_recv_exact),
	.output_size = sizeof(int64_t),
};
