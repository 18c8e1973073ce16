/* SPDX-License-Identifier: MIT */
/*
 * Datagrams and Unix domain sockets over io_uring.
 *
 * UDP sockets (weft_udp_bind) and Unix datagram sockets
 * (weft_unix_dgram_bind) are made with plain syscalls, which complete at
 * once; weft_io_prep_send_to and weft_io_prep_recv_from are op futures
 * (weft_io, IORING_OP_SENDMSG / IORING_OP_RECVMSG) for any datagram socket,
 * whatever its family. Unix stream sockets: weft_unix_listen, then accept
 * with weft_io_prep_accept (weft/net.h); weft_io_prep_unix_connect
 * connects. send and recv on connected sockets are weft/net.h's. All fds
 * are created with SOCK_CLOEXEC and are owned by the caller (close them
 * with weft_io_prep_close). NULL: see weft/core.h.
 *
 * Addresses passed by pointer (@addr of send_to, @path of unix_connect)
 * are copied into the op record at the op's first poll: they must stay
 * valid from the prep call until that poll (the weft_co_* calls poll at
 * once). The op's own copy then lives as long as the kernel may read it.
 */
#ifndef WEFT_UDP_H
#define WEFT_UDP_H

#include <sys/socket.h>
#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/** weft_udp_bind @flags: set SO_REUSEADDR before bind. */
#define WEFT_UDP_REUSEADDR (1 << 0)
/** weft_udp_bind @flags: set SO_REUSEPORT before bind. */
#define WEFT_UDP_REUSEPORT (1 << 1)

/**
 * Create a UDP socket bound to @host:@port (numeric address as for
 * weft_addr_parse; NULL: 127.0.0.1; port 0: the kernel picks, read it back
 * with weft_tcp_local_port, which works for any bound socket).
 * @flags: 0 or WEFT_UDP_REUSEADDR | WEFT_UDP_REUSEPORT.
 * Returns the fd (>= 0), or -EINVAL (bad host, unknown @flags bits),
 * -EADDRINUSE, -EADDRNOTAVAIL, or another negative errno from
 * socket/setsockopt/bind. Thread-safe.
 */
WEFT_API int weft_udp_bind(const char *host, uint16_t port, int flags);

/**
 * Send one datagram of the @len bytes at @buf on @fd to @addr (@addrlen
 * bytes, any family: IPv4, IPv6, AF_UNIX; copied at the first poll, see
 * above). A NULL @addr with @addrlen 0 sends to the connected peer.
 * MSG_NOSIGNAL is always added to @flags (sendmsg(2) flags).
 * Result: bytes sent (the whole datagram) or a negative errno (-EMSGSIZE
 * for a datagram too large, -ECONNREFUSED after an ICMP port
 * unreachable, -ENOENT or -ECONNREFUSED for a Unix path nobody is bound
 * to, -EDESTADDRREQ, -EAFNOSUPPORT, ...). @len above WEFT_IO_MAX_LEN is
 * clamped. @buf must stay valid while the op may be in flight (weft/io.h).
 * Returns 0, or -EINVAL (NULL @io, NULL @buf with a non-zero @len, NULL
 * @addr with a non-zero @addrlen or the reverse, @addrlen above
 * sizeof(struct sockaddr_storage)), or -EBUSY (weft/io.h, Preparing);
 * polling then returns the same error.
 */
WEFT_API int weft_io_prep_send_to(weft_io *io, int fd, const void *buf,
				  size_t len, const struct sockaddr *addr,
				  socklen_t addrlen, int flags);

/**
 * Receive one datagram from @fd into the @len bytes at @buf, and its
 * source address into @from.
 *
 * Result: bytes received, or a negative errno (-EBADF, -ENOTSOCK, ...). A
 * datagram longer than @len is truncated to @len and the rest discarded,
 * as recvfrom(2) does; with MSG_TRUNC in @flags (recvmsg(2) flags) the
 * result is the datagram's full length instead (only @len bytes are
 * stored). With a deadline (weft_io_set_deadline) a recv that got nothing
 * in time ends with -ETIMEDOUT.
 *
 * @from (may be NULL, then @fromlen must be NULL too): on a result >= 0,
 * the sender's address is written to *@from and its length to *@fromlen
 * (sizeof(sa_family_t) or 0 for an unbound Unix sender). They are written
 * in the poll that returns READY (the op's own copy until then), so they
 * must stay valid until the future is READY or dropped; a dropped,
 * failed or timed-out recv writes nothing to them. @buf must stay valid
 * while the op may be in flight (weft/io.h).
 *
 * Returns 0, or -EINVAL (NULL @io, NULL @buf with a non-zero @len, only
 * one of @from and @fromlen NULL), or -EBUSY; polling then returns it.
 */
WEFT_API int weft_io_prep_recv_from(weft_io *io, int fd, void *buf,
				    size_t len, int flags,
				    struct sockaddr_storage *from,
				    socklen_t *fromlen);

/**
 * Create a Unix stream socket bound to the file @path, listening with
 * @backlog (<= 0: SOMAXCONN); accept on it with weft_io_prep_accept.
 * A file already at @path (a stale socket from an earlier run included) is
 * not removed: bind fails with -EADDRINUSE, and the caller decides whether
 * to unlink(2) it. The socket file stays after close; unlink it when done.
 * Returns the fd (>= 0), or -EINVAL (NULL or empty @path),
 * -ENAMETOOLONG (@path longer than sun_path holds, 107 bytes on Linux),
 * -EADDRINUSE, -ENOENT (no such directory), -EACCES, or another negative
 * errno from socket/bind/listen. Thread-safe.
 */
WEFT_API int weft_unix_listen(const char *path, int backlog);

/**
 * Create a Unix datagram socket bound to the file @path (send_to and
 * recv_from above use it; peers address it with a struct sockaddr_un
 * naming @path). A NULL @path makes an unbound socket, which can send but
 * which peers cannot answer. Same file rules and errors as
 * weft_unix_listen(). Returns the fd (>= 0) or a negative errno.
 */
WEFT_API int weft_unix_dgram_bind(const char *path);

/**
 * Connect a new Unix stream socket to the socket file @path (copied at
 * the first poll, see above; the socket is created there too, as for
 * weft_io_prep_connect). Result: the connected fd (owned by the caller)
 * or a negative errno (-ENOENT: no such file, -ECONNREFUSED: nobody
 * listens there, -EACCES, ...). If the future is dropped first, the
 * socket is closed. Returns 0, or -EINVAL (NULL @io, NULL or empty @path),
 * -ENAMETOOLONG (@path longer than sun_path holds), or -EBUSY; polling then
 * returns it.
 */
WEFT_API int weft_io_prep_unix_connect(weft_io *io, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_UDP_H */
