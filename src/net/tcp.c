/* SPDX-License-Identifier: MIT */
/*
 * TCP: listening sockets by plain syscalls (they complete at once), and the
 * op futures for accept, connect, recv, send and close.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include <weft/net.h>

#include "io/op.h"

WEFT_API int weft_tcp_listen(const char *host, uint16_t port, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, err;

	err = weft_addr_parse(host, port, &ss, &len);
	if (err)
		return err;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
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

WEFT_API void weft_accept_init(weft_io *io, int listen_fd)
{
	weft__io_init(io, WEFT__OP_ACCEPT);
	io->_fd = listen_fd;
}

WEFT_API int weft_connect_init(weft_io *io, const struct sockaddr *addr,
			       socklen_t addrlen)
{
	if (!io || !addr)
		return -EINVAL;
	if (addr->sa_family == AF_INET) {
		if (addrlen < sizeof(struct sockaddr_in))
			return -EINVAL;
		addrlen = sizeof(struct sockaddr_in);
	} else if (addr->sa_family == AF_INET6) {
		if (addrlen < sizeof(struct sockaddr_in6))
			return -EINVAL;
		addrlen = sizeof(struct sockaddr_in6);
	} else {
		return -EAFNOSUPPORT;
	}
	_Static_assert(sizeof(io->_addr) >= sizeof(struct sockaddr_in6),
		       "weft_io address space");
	weft__io_init(io, WEFT__OP_CONNECT);
	memcpy(io->_addr, addr, addrlen);
	io->_addrlen = addrlen;
	return 0;
}

WEFT_API void weft_recv_init(weft_io *io, int fd, void *buf, size_t len,
			     int flags)
{
	weft__io_init(io, WEFT__OP_RECV);
	io->_fd = fd;
	io->_flags = (uint32_t)flags;
	io->_u.rw.buf = buf;
	io->_u.rw.len = len;
}

WEFT_API void weft_send_init(weft_io *io, int fd, const void *buf,
			     size_t len, int flags)
{
	weft__io_init(io, WEFT__OP_SEND);
	io->_fd = fd;
	io->_flags = (uint32_t)flags;
	io->_u.rw.buf = (void *)buf;
	io->_u.rw.len = len;
}

WEFT_API void weft_close_init(weft_io *io, int fd)
{
	weft__io_init(io, WEFT__OP_CLOSE);
	io->_fd = fd;
}
