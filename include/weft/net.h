/* SPDX-License-Identifier: MIT */
/*
 * TCP over io_uring. Listening sockets are made with plain syscalls
 * (socket, bind and listen complete at once), and so are socket options;
 * accept, connect, recv, send and shutdown are op futures (weft_io,
 * prepared with weft_io_prep_*), and weft_send_all / weft_recv_exact loop
 * over them. Close any fd with weft_io_prep_close() (weft/io.h). All fds
 * are created with SOCK_CLOEXEC.
 *
 * TCP_NODELAY is on by default for every socket weft accepts
 * (weft_io_prep_accept) or connects (weft_io_prep_connect,
 * weft_tcp_connect): small writes go out at once instead of waiting for
 * the peer's delayed ACK (up to 40 ms on Linux), as a request/response
 * protocol wants. Turn Nagle back on with weft_tcp_set_nodelay(fd, false).
 * NULL: see weft/core.h.
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <sys/socket.h>
#include <weft/io.h>

struct weft_oneshot_rx;

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

/** weft_tcp_listen_opts @flags: set SO_REUSEPORT before bind, so that
 * several sockets (each with the flag, of the same user) listen on one
 * port and the kernel spreads new connections among them by a hash of
 * the peer's address and port. */
#define WEFT_TCP_REUSEPORT (1 << 0)
/** weft_tcp_listen_opts @flags: an IPv6 socket takes IPv6 connections
 * only (IPV6_V6ONLY). Without it an IPv6 socket bound to "::" takes IPv4
 * connections too (as ::ffff:a.b.c.d), whatever the
 * net.ipv6.bindv6only sysctl says. */
#define WEFT_TCP_V6ONLY (1 << 1)

/**
 * weft_tcp_listen() with options: a TCP socket bound to @host:@port
 * (@host numeric as for weft_addr_parse(), NULL: 127.0.0.1; port 0: the
 * kernel picks) with SO_REUSEADDR, listening with @backlog (<= 0:
 * SOMAXCONN). @flags: 0 or WEFT_TCP_REUSEPORT | WEFT_TCP_V6ONLY.
 * Returns the listening fd (>= 0, the caller's), or -EINVAL (bad host,
 * unknown @flags bits, WEFT_TCP_V6ONLY with an IPv4 @host), -EADDRINUSE
 * (the port is taken, also by a socket without SO_REUSEPORT when @flags
 * has it), -EADDRNOTAVAIL, or another negative errno from
 * socket/setsockopt/bind/listen. Thread-safe.
 */
WEFT_API int weft_tcp_listen_opts(const char *host, uint16_t port,
				  int backlog, int flags);

/**
 * Turn Nagle's algorithm off (@on: TCP_NODELAY set) or back on for the
 * TCP socket @fd. Sockets weft accepts or connects start with it off
 * (see the top of this header). Synchronous (one setsockopt(2)).
 * Returns 0, or -EBADF (@fd is not open), -ENOTSOCK (not a socket),
 * -EOPNOTSUPP (a socket, but not TCP). Thread-safe.
 */
WEFT_API int weft_tcp_set_nodelay(int fd, bool on);

/**
 * Configure TCP keepalive on @fd: after @idle_s seconds without data the
 * kernel sends a probe every @interval_s seconds, and after @count
 * unanswered probes it drops the connection; an op on it then fails with
 * -ETIMEDOUT. @idle_s = @interval_s = @count = 0 turns keepalive off (the
 * default of a new socket). Synchronous (setsockopt(2) of SO_KEEPALIVE,
 * TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT).
 * Returns 0, or -EINVAL (some but not all of the three are 0, @idle_s or
 * @interval_s above 32767, @count above 127: the kernel's limits; nothing
 * is changed), -EBADF, -ENOTSOCK, -EOPNOTSUPP (a socket, but not TCP; when
 * turning keepalive on: turning it off is a socket-level option that
 * every socket accepts). Thread-safe.
 */
WEFT_API int weft_tcp_set_keepalive(int fd, unsigned idle_s,
				    unsigned interval_s, unsigned count);

/**
 * The local port of a bound socket, or a negative errno (getsockname).
 * Thread-safe.
 */
WEFT_API int weft_tcp_local_port(int fd);

/**
 * Accept one connection on @listen_fd. Result: the connected fd (owned by
 * the caller, SOCK_CLOEXEC) or a negative errno (-EBADF, -EINVAL for a
 * socket that is not listening, -EMFILE, ...). If the future is dropped
 * after the kernel accepted, the fd is closed. Returns 0, -EINVAL for NULL
 * @io, or -EBUSY (an op of @io is in flight; weft/io.h, Preparing). Every
 * weft_io_prep_* call returns -EBUSY the same way.
 */
WEFT_API int weft_io_prep_accept(weft_io *io, int listen_fd);

/**
 * Connect a new TCP socket to @addr (copied; AF_INET or AF_INET6).
 * Result: the connected fd (owned by the caller) or a negative errno
 * (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, ...). The socket is created at
 * the first poll; if the future is dropped first, it is closed.
 * Returns 0, or -EINVAL (NULL @io or @addr, short @addrlen) or
 * -EAFNOSUPPORT (another family); polling @io then returns that error.
 */
WEFT_API int weft_io_prep_connect(weft_io *io, const struct sockaddr *addr,
				  socklen_t addrlen);

/**
 * Receive up to @len bytes from @fd into @buf. Result: bytes received, 0 at
 * the peer's orderly shutdown, or a negative errno (-ECONNRESET, -EBADF,
 * -ENOTSOCK, ...). @len above WEFT_IO_MAX_LEN (2 GiB - 4 KiB) is clamped to
 * it: the op is then a short receive, never a silently truncated length.
 * @buf must stay valid while the op may be in flight (see weft/io.h).
 * @flags: recv(2) flags. Returns 0, or -EINVAL (NULL @io, NULL @buf with a
 * non-zero @len).
 *
 * A peer reset (RST) is reported once, to the first recv or send after it
 * (in flight or new): -ECONNRESET, after any bytes that arrived before
 * it; from then on recvs return 0 and sends -EPIPE. docs/io.md ("Shutdown
 * and half-close") lists what each fault returns.
 */
WEFT_API int weft_io_prep_recv(weft_io *io, int fd, void *buf, size_t len,
			       int flags);

/**
 * Send up to @len bytes from @buf on @fd (MSG_NOSIGNAL is always added, so
 * a closed peer gives -EPIPE, not SIGPIPE). Result: bytes sent (possibly
 * fewer than @len; see weft_send_all) or a negative errno: -EPIPE after
 * our SHUT_WR or after a reset was reported, -ECONNRESET for the first op
 * after a reset (see weft_io_prep_recv()). @len is clamped as for
 * weft_io_prep_recv(). Same return values.
 */
WEFT_API int weft_io_prep_send(weft_io *io, int fd, const void *buf,
			       size_t len, int flags);

/**
 * weft_io_prep_send, zero-copy (IORING_OP_SEND_ZC, Linux 6.0): the kernel
 * sends from @buf's pages instead of copying them into the socket, and the
 * op completes only once the kernel has let go of them (its notification
 * CQE), so @buf is the caller's again at READY, as after a plain send.
 * Worth it for large sends (tens of KiB and up) to a real NIC; on
 * loopback the kernel copies anyway and it costs more than a plain send
 * (docs/io.md, Zero-copy send, has the numbers). Where the kernel lacks
 * the op, or with WEFT_RT_NO_SEND_ZC, it is a plain send
 * (weft_runtime_metrics.features says which: WEFT_FEAT_SEND_ZC). Same
 * results, clamping and errors as weft_io_prep_send.
 */
WEFT_API int weft_io_prep_send_zc(weft_io *io, int fd, const void *buf,
				  size_t len, int flags);

/**
 * Shut down part of the full-duplex connection on @fd (shutdown(2),
 * IORING_OP_SHUTDOWN): @how is SHUT_RD, SHUT_WR or SHUT_RDWR. The fd stays
 * open (close it as usual). Result: 0, or a negative errno: -ENOTCONN
 * (not connected), -ENOTSOCK, -EBADF.
 *  - SHUT_WR (half-close): the peer's recv sees EOF (0) once it has read
 *    what was sent before; this side can still receive, and its sends
 *    fail with -EPIPE.
 *  - SHUT_RD: a recv on @fd that finds nothing buffered returns 0 (EOF)
 *    from then on, also one that is in flight when the shutdown lands
 *    (Linux still queues TCP data that arrives later; a recv returns it).
 *  - SHUT_RDWR: both; a later send fails with -EPIPE.
 * Returns 0, or -EINVAL (NULL @io; another @how, which polling @io then
 * returns too), or -EBUSY (see weft_io_prep_accept).
 */
WEFT_API int weft_io_prep_shutdown(weft_io *io, int fd, int how);

/**
 * weft_send_all: send all @len bytes, looping on partial sends (Tokio's
 * write_all). A future: prepare it with weft_send_all_init(), poll it with
 * weft_send_all_poll() or as a generic future (weft_send_all_desc), drop it
 * with weft_send_all_drop(). Fields are private; the struct must not move
 * while an op is in flight, and must be zero-filled or previously
 * initialised before weft_send_all_init() (see weft/io.h, Preparing).
 */
/* Private: the state weft_send_all and weft_recv_exact share. */
struct weft__xfer {
	weft_io io;
	unsigned char *buf;
	size_t len;
	size_t done;
	int fd;
	int flags;
	int err;
};

typedef struct weft_send_all {
	struct weft__xfer _x;
} weft_send_all;

/**
 * Prepare @f to send the @len bytes at @buf on @fd (send(2) @flags, plus
 * MSG_NOSIGNAL). @buf must stay valid until the future is READY or dropped
 * and the task is freed (see weft/io.h). Returns 0, -EINVAL (NULL @f, NULL
 * @buf with a non-zero @len; polling then returns it too), or -EBUSY while
 * a send of @f is in flight (nothing changes; drop it first to replace).
 */
WEFT_API int weft_send_all_init(weft_send_all *f, int fd, const void *buf,
				size_t len, int flags);

/**
 * Poll: READY with *@res = @len once every byte was sent, or a negative
 * errno from the first failing send (-EPIPE, -ECONNRESET, ...); then the
 * first weft_send_all_done() bytes were sent and no more. A send that
 * returns 0 bytes ends with -EPIPE. NULL @res discards the result.
 */
WEFT_API weft_poll weft_send_all_poll(weft_send_all *f, weft_cx *cx,
				      int64_t *res);

/** Bytes sent so far (0 for NULL). */
WEFT_API size_t weft_send_all_done(const weft_send_all *f);

/** Drop: cancels a send in flight. NULL is accepted. */
WEFT_API void weft_send_all_drop(weft_send_all *f);

/** weft_send_all as a generic future: output int64_t. */
WEFT_API extern const weft_future_desc weft_send_all_desc;

/**
 * weft_recv_exact: receive exactly @len bytes, looping on short receives
 * (Tokio's read_exact). Same shape as weft_send_all.
 */
typedef struct weft_recv_exact {
	struct weft__xfer _x;
} weft_recv_exact;

/**
 * Prepare @f to fill the @len bytes at @buf from @fd (recv(2) @flags).
 * Returns 0, -EINVAL (NULL @f, NULL @buf with a non-zero @len), or -EBUSY
 * as for weft_send_all_init().
 */
WEFT_API int weft_recv_exact_init(weft_recv_exact *f, int fd, void *buf,
				  size_t len, int flags);

/**
 * Poll: READY with *@res = @len once @buf is full; -EPIPE if the peer shut
 * down first (weft_recv_exact_done() bytes of @buf are valid: nothing
 * received is lost), or the negative errno of the failing recv.
 */
WEFT_API weft_poll weft_recv_exact_poll(weft_recv_exact *f, weft_cx *cx,
					int64_t *res);

/** Bytes received so far (0 for NULL). */
WEFT_API size_t weft_recv_exact_done(const weft_recv_exact *f);

/** Drop: cancels a recv in flight. NULL is accepted. */
WEFT_API void weft_recv_exact_drop(weft_recv_exact *f);

/** weft_recv_exact as a generic future: output int64_t. */
WEFT_API extern const weft_future_desc weft_recv_exact_desc;

/* ---------------------------------------------------- name resolution */

/** Most addresses a weft_resolve keeps (the first ones getaddrinfo gives). */
#define WEFT_RESOLVE_MAX 8

struct weft__resolve_job;

/**
 * weft_resolve: look up a host name (Tokio's lookup_host). getaddrinfo(3)
 * runs on the runtime's blocking pool (weft/blocking.h), so /etc/hosts,
 * DNS and nsswitch behave as for any program, and no worker blocks. The
 * addresses (TCP, IPv4 and IPv6 in getaddrinfo's order, which follows
 * RFC 6724 and /etc/gai.conf) are copied into the weft_resolve when the
 * lookup completes, so they outlive its drop. About 1.1 KiB; fields are
 * private.
 */
typedef struct weft_resolve {
	struct weft__resolve_job *_job;
	struct weft_oneshot_rx *_rx;
	unsigned _state;
	unsigned _n;
	int _result;
	socklen_t _len[WEFT_RESOLVE_MAX];
	struct sockaddr_storage _addr[WEFT_RESOLVE_MAX];
} weft_resolve;

/**
 * Prepare @r to resolve @host (a name such as "localhost", or a numeric
 * address; copied) with @port. Returns 0, -EINVAL (NULL @r, NULL or empty
 * @host), or -ENOMEM. A prepared weft_resolve must be polled to READY or
 * dropped (weft_resolve_drop), or its copy of @host leaks.
 */
WEFT_API int weft_resolve_init(weft_resolve *r, const char *host,
			       uint16_t port);

/**
 * Poll the lookup; the first poll hands it to the blocking pool of the
 * polling worker's runtime. READY with *@res (may be NULL) = the number of
 * addresses (1..WEFT_RESOLVE_MAX), or a negative errno: -ENOENT (no such
 * name, or no address for it), -EAGAIN (temporary failure: no DNS server
 * answered), -ENOMEM, -EIO (any other getaddrinfo failure), -EPERM
 * (polled off a worker), -ECANCELED (the runtime shut down first),
 * -EINVAL (unprepared). A poll after READY returns READY with the same
 * result. @r must not move from the first poll until READY or its drop.
 */
WEFT_API weft_poll weft_resolve_poll(weft_resolve *r, weft_cx *cx, int *res);

/**
 * Address @i (0-based, below the count) of a finished lookup into @ss and
 * *@len. Returns 0, or -EINVAL (NULL argument, @i out of range, lookup not
 * finished or failed). Usable after weft_resolve_drop().
 */
WEFT_API int weft_resolve_addr(const weft_resolve *r, size_t i,
			       struct sockaddr_storage *ss, socklen_t *len);

/**
 * Release what the lookup holds; a lookup in flight finishes on its pool
 * thread and is discarded. Idempotent; NULL is accepted. The addresses of
 * a finished lookup stay readable.
 */
WEFT_API void weft_resolve_drop(weft_resolve *r);

/** weft_resolve as a generic future: output int, the *@res above. */
WEFT_API extern const weft_future_desc weft_resolve_desc;

/**
 * weft_tcp_connect: connect to a host by name (or numeric address):
 * resolve it (weft_resolve), then try its addresses in order with connect
 * ops until one succeeds, as Tokio's TcpStream::connect does.
 */
typedef struct weft_tcp_connect {
	weft_resolve _resolve;
	weft_io _io;
	unsigned _state;
	unsigned _next;
	int64_t _result;
} weft_tcp_connect;

/**
 * Prepare @c to connect to @host:@port. Returns 0, -EINVAL (NULL @c, NULL
 * or empty @host), -ENOMEM, or -EBUSY (a connect of @c is in flight).
 */
WEFT_API int weft_tcp_connect_init(weft_tcp_connect *c, const char *host,
				   uint16_t port);

/**
 * Poll: READY with *@res (may be NULL) = the connected socket (the caller
 * owns it), or a negative errno: the lookup's error (see
 * weft_resolve_poll), or the last address's connect error
 * (-ECONNREFUSED, -ETIMEDOUT, -ENETUNREACH, ...) when none accepted. A
 * poll after READY returns READY with -EALREADY (the fd is handed out
 * once). Must be polled on a worker.
 */
WEFT_API weft_poll weft_tcp_connect_poll(weft_tcp_connect *c, weft_cx *cx,
					 int64_t *res);

/** Cancel a lookup or connect in flight (a socket connected meanwhile is
 * closed). Idempotent; NULL is accepted. */
WEFT_API void weft_tcp_connect_drop(weft_tcp_connect *c);

/** weft_tcp_connect as a generic future: output int64_t, the *@res above. */
WEFT_API extern const weft_future_desc weft_tcp_connect_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_NET_H */
