/* SPDX-License-Identifier: MIT */
/*
 * weft_tcp_connect: weft_resolve, then one connect op per address, in the
 * order getaddrinfo gave them, until one succeeds (Tokio's
 * TcpStream::connect). Each connect op makes its own socket and closes it
 * on failure (net/tcp.c), so a failed address leaves nothing behind.
 */
#include <errno.h>
#include <string.h>

#include <weft/net.h>

#include "io/op.h"

enum { C_RESOLVING = 1, C_NEXT, C_CONNECTING, C_DONE };

WEFT_API int weft_tcp_connect_init(weft_tcp_connect *c, const char *host,
				   uint16_t port)
{
	if (!c)
		return -EINVAL;
	if (c->_state == C_CONNECTING && weft__io_in_flight(&c->_io))
		return -EBUSY;
	memset(&c->_io, 0, sizeof(c->_io));
	c->_state = 0;
	c->_next = 0;
	c->_result = -ENOENT;
	int err = weft_resolve_init(&c->_resolve, host, port);
	if (!err)
		c->_state = C_RESOLVING;
	return err;
}

static weft_poll done(weft_tcp_connect *c, int64_t *res, int64_t v)
{
	c->_state = C_DONE;
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API weft_poll weft_tcp_connect_poll(weft_tcp_connect *c, weft_cx *cx,
					 int64_t *res)
{
	if (!c || !cx || !c->_state) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	if (c->_state == C_DONE)
		return done(c, res, -EALREADY);
	if (c->_state == C_RESOLVING) {
		int n;

		if (weft_resolve_poll(&c->_resolve, cx, &n) == WEFT_PENDING)
			return WEFT_PENDING;
		if (n < 0)
			return done(c, res, n);
		c->_state = C_NEXT;
	}
	for (;;) {
		int64_t r;

		if (c->_state == C_NEXT) {
			struct sockaddr_storage ss;
			socklen_t len;

			if (weft_resolve_addr(&c->_resolve, c->_next, &ss,
					      &len))
				return done(c, res, c->_result); /* all failed */
			c->_next++;
			weft_io_prep_connect(&c->_io, (struct sockaddr *)&ss,
					     len);
			c->_state = C_CONNECTING;
		}
		if (weft_io_poll(&c->_io, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		if (r >= 0)
			return done(c, res, r);
		c->_result = r; /* try the next address */
		c->_state = C_NEXT;
	}
}

WEFT_API void weft_tcp_connect_drop(weft_tcp_connect *c)
{
	if (!c)
		return;
	weft_resolve_drop(&c->_resolve);
	weft_io_drop(&c->_io); /* a socket connected meanwhile is closed */
	if (c->_state)
		c->_state = C_DONE;
}

static weft_poll connect_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_tcp_connect_poll(self, cx, out);
}

static void connect_desc_drop(void *self)
{
	weft_tcp_connect_drop(self);
}

WEFT_API const weft_future_desc weft_tcp_connect_desc = {
	.poll = connect_desc_poll,
	.drop = connect_desc_drop,
	.size = sizeof(weft_tcp_connect),
	.output_size = sizeof(int64_t),
};
