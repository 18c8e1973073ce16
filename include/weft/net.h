/* SPDX-License-Identifier: MIT */
/*
 * TCP over io_uring. Listening sockets are made with plain syscalls
 * (socket, bind and listen complete at once); accept, connect, recv, send
 * and close are op futures (weft_io) polled with weft_io_poll().
 * All fds are created with SOCK_CLOEXEC.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <sys/socket.h>
#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Parse a numeric IPv4 or IPv6 address and a port into @ss.
 * @host: "127.0.0.1", "::1", ...; NULL means 127.0.0.1. No DNS lookups.
 * Returns 0 and sets *@len, or -EINVAL (not a numeric address, NULL @ss).
 * Thread-safe.
 */
WEFT_API int weft_addr_parse(const char *host, uint16_t port,
			     struct sockaddr_storage *ss, socklen_t *len);

/**
 * Create a TCP socket bound to @host:@port (port 0: the kernel picks) with
 * SO_REUSEADDR, listening with @backlog (<= 0: SOMAXCONN).
 * Returns the listening fd (>= 0), or -EINVAL (bad host), -EADDRINUSE, or
 * another negative errno from socket/bind/listen. The caller owns the fd.
 * Thread-safe.
 */
WEFT_API int weft_tcp_listen(const char *host, uint16_t port, int backlog);

/**
 * The local port of a bound socket, or a negative errno (getsockname).
 * Thread-safe.
 */
WEFT_API int weft_tcp_local_port(int fd);

/**
 * Accept one connection on @listen_fd. Result: the connected fd (owned by
 * the caller) or a negative errno (-EBADF, -EINVAL for a socket that is not
 * listening, -EMFILE, ...).
 */
WEFT_API void weft_accept_init(weft_io *io, int listen_fd);

/**
 * Connect a new TCP socket to @addr (copied; AF_INET or AF_INET6).
 * Result: the connected fd (owned by the caller) or a negative errno
 * (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, ...). The socket is created at
 * the first poll; if the future is dropped first, it is closed.
 * Returns 0, or -EINVAL / -EAFNOSUPPORT for a bad address (then @io is
 * left uninitialised and must not be polled).
 */
WEFT_API int weft_connect_init(weft_io *io, const struct sockaddr *addr,
			       socklen_t addrlen);

/**
 * Receive up to @len bytes from @fd into @buf. Result: bytes received, 0 at
 * the peer's orderly shutdown, or a negative errno (-ECONNRESET, -EBADF,
 * -ENOTSOCK, ...). @buf must stay valid while the op may be in flight (see
 * weft/io.h). @flags: recv(2) flags.
 */
WEFT_API void weft_recv_init(weft_io *io, int fd, void *buf, size_t len,
			     int flags);

/**
 * Send up to @len bytes from @buf on @fd (MSG_NOSIGNAL is always added, so
 * a closed peer gives -EPIPE, not SIGPIPE). Result: bytes sent (possibly
 * fewer than @len) or a negative errno.
 */
WEFT_API void weft_send_init(weft_io *io, int fd, const void *buf,
			     size_t len, int flags);

/** Close @fd through the ring. Result: 0 or a negative errno (-EBADF). */
WEFT_API void weft_close_init(weft_io *io, int fd);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_NET_H */
