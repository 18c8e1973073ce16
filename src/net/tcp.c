/* SPDX-License-Identifier: MIT */
/*
 * TCP: listening sockets by plain syscalls (they complete at once), and the
 * op kinds accept, connect, recv, send and shutdown. Accepted and
 * connected sockets get TCP_NODELAY (net/sockopt.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/net.h>

#include "io/op.h"
#include "net/sockopt.h"

/* Set the int option @name to @v; false (errno set) on failure. */
static bool set_opt(int fd, int level, int name, int v)
{
	return setsockopt(fd, level, name, &v, sizeof(v)) == 0;
}

WEFT_API int weft_tcp_listen_opts(const char *host, uint16_t port,
				  int backlog, int flags)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, err;

	if (flags & ~(WEFT_TCP_REUSEPORT | WEFT_TCP_V6ONLY))
		return -EINVAL;
	err = weft_addr_parse(host, port, &ss, &len);
	if (err)
		return err;
	if ((flags & WEFT_TCP_V6ONLY) && ss.ss_family != AF_INET6)
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/*
	 * IPV6_V6ONLY is set either way on an IPv6 socket, so that whether
	 * "::" also takes IPv4 connections depends on @flags, not on the
	 * net.ipv6.bindv6only sysctl.
	 */
	if (!set_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) ||
	    ((flags & WEFT_TCP_REUSEPORT) &&
	     !set_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1)) ||
	    (ss.ss_family == AF_INET6 &&
	     !set_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY,
		      !!(flags & WEFT_TCP_V6ONLY))) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

WEFT_API int weft_tcp_listen(const char *host, uint16_t port, int backlog)
{
	return weft_tcp_listen_opts(host, port, backlog, 0);
}

WEFT_API int weft_tcp_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

/* Arguments in weft_io._arg */
enum { ARG_ADDRLEN, ARG_ADDR };
_Static_assert(sizeof(((weft_io *)0)->_arg) - ARG_ADDR * sizeof(uint64_t) >=
		       sizeof(struct sockaddr_in6),
	       "weft_io has room for an IPv6 address");

static int accept_reprep(struct weft__op *op, struct io_uring_sqe *sqe)
{
	io_uring_prep_accept(sqe, op->target, NULL, NULL, SOCK_CLOEXEC);
	return 0;
}

static int accept_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		       const weft_io *io)
{
	op->target = io->_fd;
	return accept_reprep(op, sqe);
}

/* Nagle off by default (net.h); a Unix listener's socket refuses it. */
static int64_t accept_complete(struct weft__op *op, int32_t res)
{
	(void)op;
	if (res >= 0)
		weft__tcp_nodelay_default(res);
	return res;
}

static void accept_discard(struct weft__op *op, int32_t res)
{
	(void)op;
	if (res >= 0)
		close(res);
}

static int connect_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			const weft_io *io)
{
	socklen_t len = (socklen_t)io->_arg[ARG_ADDRLEN];

	memcpy(&op->u.addr, &io->_arg[ARG_ADDR], len);
	op->fd = socket(op->u.addr.sin6_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (op->fd < 0)
		return -errno;
	/* Before the connect: no segment of the connection sees Nagle. */
	weft__tcp_nodelay_default(op->fd);
	io_uring_prep_connect(sqe, op->fd, (const struct sockaddr *)&op->u.addr,
			      len);
	return 0;
}

/* The future takes the socket on success and closes it on failure. */
int64_t weft__connect_complete(struct weft__op *op, int32_t res)
{
	int fd = op->fd;

	op->fd = -1;
	if (res == 0)
		return fd;
	close(fd);
	return res;
}

void weft__connect_discard(struct weft__op *op, int32_t res)
{
	(void)res;
	if (op->fd >= 0)
		close(op->fd);
	op->fd = -1;
}

static int recv_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		     const weft_io *io)
{
	weft__op_take_buf(op, io);
	io_uring_prep_recv(sqe, io->_fd, op->buf, op->len, (int)io->_flags);
	return 0;
}

static int send_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		     const weft_io *io)
{
	weft__op_take_buf(op, io);
	io_uring_prep_send(sqe, io->_fd, op->buf, op->len,
			   (int)io->_flags | MSG_NOSIGNAL);
	return 0;
}

static int shutdown_prep(struct weft__op *op, struct io_uring_sqe *sqe,
			 const weft_io *io)
{
	(void)op;
	io_uring_prep_shutdown(sqe, io->_fd, (int)io->_flags);
	return 0;
}

static const struct weft__op_kind accept_kind = {
	.prep = accept_prep,
	.complete = accept_complete, .discard = accept_discard,
	.backoff = weft__accept_backoff, .reprep = accept_reprep,
};
static const struct weft__op_kind connect_kind = {
	.prep = connect_prep,
	.complete = weft__connect_complete, .discard = weft__connect_discard,
};
static const struct weft__op_kind recv_kind = {
	.prep = recv_prep,
};
static const struct weft__op_kind send_kind = {
	.prep = send_prep,
};
static const struct weft__op_kind shutdown_kind = {
	.prep = shutdown_prep,
};

WEFT_API int weft_io_prep_accept(weft_io *io, int listen_fd)
{
	return weft__io_prep(io, &accept_kind, listen_fd);
}

WEFT_API int weft_io_prep_connect(weft_io *io, const struct sockaddr *addr,
				  socklen_t addrlen)
{
	int err = weft__io_prep(io, &connect_kind, -1);

	if (err)
		return err;
	if (!addr)
		return weft__io_prep_fail(io, -EINVAL);
	if (addr->sa_family == AF_INET) {
		if (addrlen < sizeof(struct sockaddr_in))
			return weft__io_prep_fail(io, -EINVAL);
		addrlen = sizeof(struct sockaddr_in);
	} else if (addr->sa_family == AF_INET6) {
		if (addrlen < sizeof(struct sockaddr_in6))
			return weft__io_prep_fail(io, -EINVAL);
		addrlen = sizeof(struct sockaddr_in6);
	} else {
		return weft__io_prep_fail(io, -EAFNOSUPPORT);
	}
	memcpy(&io->_arg[ARG_ADDR], addr, addrlen);
	io->_arg[ARG_ADDRLEN] = addrlen;
	return 0;
}

WEFT_API int weft_io_prep_recv(weft_io *io, int fd, void *buf, size_t len,
			       int flags)
{
	int err = weft__io_prep_buf(io, &recv_kind, fd, buf, len);

	if (!err)
		io->_flags = (uint32_t)flags;
	return err;
}

WEFT_API int weft_io_prep_send(weft_io *io, int fd, const void *buf,
			       size_t len, int flags)
{
	int err = weft__io_prep_buf(io, &send_kind, fd, buf, len);

	if (!err)
		io->_flags = (uint32_t)flags;
	return err;
}

WEFT_API int weft_io_prep_shutdown(weft_io *io, int fd, int how)
{
	int err = weft__io_prep(io, &shutdown_kind, fd);

	if (err)
		return err;
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return weft__io_prep_fail(io, -EINVAL);
	io->_flags = (uint32_t)how;
	return 0;
}
