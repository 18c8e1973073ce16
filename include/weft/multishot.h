/* SPDX-License-Identifier: MIT */
/**
 * @file weft/multishot.h
 * Streams: one io_uring op that yields many completions. An accept stream
 * is a multishot accept (one SQE accepts every connection that comes); a
 * recv stream is a multishot recv into provided buffers (buffers owned by
 * the runtime, picked by the kernel as data arrives, lent to the caller
 * and given back with weft_buf_release). Where the kernel lacks a feature
 * the same calls fall back (docs/io.md, Kernel features and fallbacks):
 * multishot accept to a single-shot accept submitted again after each
 * connection; multishot recv to a single-shot recv with a provided buffer,
 * and without buffer rings to a recv into a buffer of the runtime's pool.
 *
 * A stream's op is bound to the ring of the worker that polled it first;
 * the stream's task may move (stolen), completions still reach it. The
 * runtime's metrics count the submissions again (multishot_rearms), the
 * times a recv stream found no free buffer (bufring_enobufs), accept's
 * waits after EMFILE/ENFILE (accept_backoffs), and the pauses of recv and
 * datagram streams whose owner fell behind (stream_pauses, stream_spills;
 * see weft_recv_stream_init).
 *
 * Lifetimes: a stream is caller-owned memory that must not move after its
 * first next-poll and is dropped exactly once (its drop cancels the op on
 * its ring, closes the accepted fds and returns the buffers nobody took).
 * Thread-safety: one task polls a stream at a time; weft_buf_release is
 * for any thread.
 */
#ifndef WEFT_MULTISHOT_H
#define WEFT_MULTISHOT_H

#include <stdint.h>
#include <sys/socket.h>

#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A received buffer, lent by the runtime. data and len describe the bytes;
 * the buffer is the runtime's until weft_buf_release gives it back (every
 * lent buffer must be given back once, or the pool runs dry: the streams
 * then wait, data stays in the socket, nothing is lost).
 */
typedef struct weft_buf {
	void *data;    /**< the bytes received; NULL when nothing is lent */
	size_t len;    /**< how many, > 0 */
	void *_pool;
	int32_t _bid;
} weft_buf;

#define WEFT_BUF_INIT { 0 }

/**
 * Give @buf back to the runtime (its pool on the worker that received
 * it) and clear it. A cleared or NULL @buf is a no-op, so releasing twice
 * is harmless. Any thread; also after the runtime was freed.
 */
WEFT_API void weft_buf_release(weft_buf *buf);

/** A stream of accepted connections (multishot accept). */
typedef struct weft_accept_stream {
	weft_io _io;
} weft_accept_stream;

/**
 * Prepare @s to accept connections on @listen_fd (a listening socket the
 * caller keeps open while the stream lives). Nothing is submitted until
 * the first weft_accept_stream_next. Accepted sockets are SOCK_CLOEXEC
 * and blocking (io_uring ops do not need O_NONBLOCK).
 *
 * EMFILE/ENFILE (no descriptor free) never reach the caller: the stream
 * waits 5 ms, then doubles the wait up to 200 ms, and accepts again (so
 * fewer than 100 tries per second while descriptors are exhausted); the
 * connections wait in the listen backlog meanwhile. Errors of one
 * connection or of the network that accept(2) says to treat like EAGAIN
 * (ECONNABORTED, EPROTO, ENETDOWN, EHOSTUNREACH, EPERM, ...) are skipped
 * too: the stream accepts the next connection.
 *
 * Returns 0; -EINVAL for a NULL @s or a negative fd; -EBUSY while @s has
 * an op in flight (drop it first). Thread-safe for distinct streams.
 */
WEFT_API int weft_accept_stream_init(weft_accept_stream *s, int listen_fd);

/**
 * Poll for the next connection. READY with *@fd >= 0: an accepted
 * socket, now the caller's. READY with a negative errno: the stream has
 * ended and returns that from now on (-EBADF/-EINVAL: @listen_fd is not
 * a listening socket or was closed; -ECANCELED: the runtime is shutting
 * down; -EPERM: polled off a worker; -ENOMEM). PENDING: the task is woken
 * when a connection comes. Call from a task.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_accept_stream_next(weft_accept_stream *s, weft_cx *cx,
					   int *fd);

/**
 * Drop @s: cancel its op on its ring and close every accepted socket the
 * caller has not taken. Exactly once after the first next (also after it
 * ended); harmless on a stream never polled. Any thread.
 */
WEFT_API void weft_accept_stream_drop(weft_accept_stream *s);

/** A stream of received data in provided buffers (multishot recv). */
typedef struct weft_recv_stream {
	weft_io _io;
} weft_recv_stream;

/**
 * Prepare @s to receive from the connected socket @fd (which the caller
 * keeps open while the stream lives) into the runtime's buffers: each
 * worker ring has a pool of weft_runtime_config.buf_count buffers of
 * buf_size bytes (defaults 256 x 4096), created with the first recv
 * stream on that ring. One completion is at most one buffer.
 *
 * A stream holds at most weft_runtime_config.stream_buf_max of those
 * buffers queued, received but not yet returned by next (32 by default):
 * when its owner falls behind, the stream stops receiving (it cancels its
 * multishot recv, or does not submit the next single-shot one), the data
 * waits in the socket, where TCP pushes back on the sender, and the other
 * streams of the worker keep the rest of the pool. Once the owner has
 * taken the queue down to half the cap the stream receives again. Nothing
 * is lost or reordered. What a multishot recv had already received when
 * it was cancelled is copied out of the pool into memory of its own
 * (metric stream_spills), so the pool never lends one stream more than the
 * cap; such a stream then receives one buffer per submission until it has
 * caught up. Buffers already returned by next do not count: the owner
 * holds them until weft_buf_release. Datagram streams pause the same way
 * (datagrams then wait in the socket, or are dropped by the kernel when
 * its buffer is full).
 *
 * Returns 0; -EINVAL for a NULL @s or a negative fd; -EBUSY while @s has
 * an op in flight. Thread-safe for distinct streams.
 */
WEFT_API int weft_recv_stream_init(weft_recv_stream *s, int fd);

/**
 * Poll for the next data. READY with *@res > 0: @buf lends *@res bytes
 * (buf->data, buf->len); give it back with weft_buf_release. READY with
 * *@res == 0: the peer closed its side (end of file); < 0: an error
 * (-ECONNRESET, -ENOTCONN, -EBADF, -ECANCELED at shutdown, -ENOMEM,
 * -EPERM off a worker). After 0 or an error the stream has ended and
 * returns the same. PENDING: the task is woken when data comes. Data is
 * delivered in order, also when buffers ran out meanwhile (the stream
 * waits for buffers and goes on). Call from a task.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_recv_stream_next(weft_recv_stream *s, weft_cx *cx,
					 weft_buf *buf, int64_t *res);

/**
 * Drop @s: cancel its op on its ring and give back every buffer the
 * caller has not taken (buffers already lent stay the caller's until
 * released). Exactly once after the first next. Any thread.
 */
WEFT_API void weft_recv_stream_drop(weft_recv_stream *s);

/** A stream of datagrams with their source addresses (multishot
 * recvmsg). */
typedef struct weft_udp_stream {
	weft_io _io;
} weft_udp_stream;

/**
 * Prepare @s to receive datagrams on the bound datagram socket @fd (UDP,
 * or a Unix datagram socket; the caller keeps it open while the stream
 * lives) into the runtime's buffers (the pool of weft_recv_stream_init).
 * Each buffer also holds the source address, so a datagram keeps
 * buf_size - 144 bytes at most; a longer one is cut there, as recvfrom(2)
 * cuts it to the buffer it is given. On kernels without multishot recvmsg
 * (6.0) it is a recvmsg submitted again after each datagram; there, with
 * a buffer ring (Linux 5.19, or WEFT_RT_NO_MULTISHOT), an empty datagram
 * takes no buffer (buf->data NULL) and its source address is not kept
 * (*fromlen 0).
 *
 * Returns 0; -EINVAL for a NULL @s or a negative fd; -EBUSY while @s has
 * an op in flight. Thread-safe for distinct streams.
 */
WEFT_API int weft_udp_stream_init(weft_udp_stream *s, int fd);

/**
 * Poll for the next datagram. READY with *@res >= 0: @buf lends its
 * *@res payload bytes (0: an empty datagram; still give the buffer back
 * with weft_buf_release) and, when @from is not NULL, *@from / *@fromlen
 * are its source address. READY with a negative errno: the stream has
 * ended and returns that from now on (-EBADF, -ENOTSOCK, -ECANCELED at
 * shutdown, -EMSGSIZE when buf_size leaves no room for an address,
 * -ENOMEM, -EPERM off a worker). PENDING: the task is woken when a
 * datagram comes. Datagrams the socket queues while the pool is dry wait
 * in the socket (or are dropped by the kernel when its buffer is full, as
 * for any UDP socket). Call from a task.
 * NULL: see core.h (@from and @fromlen may be NULL).
 */
WEFT_API weft_poll weft_udp_stream_next(weft_udp_stream *s, weft_cx *cx,
					weft_buf *buf,
					struct sockaddr_storage *from,
					socklen_t *fromlen, int64_t *res);

/** Drop @s: cancel its op and give back the buffers it queued. Exactly
 * once after the first next. Any thread. */
WEFT_API void weft_udp_stream_drop(weft_udp_stream *s);

/**
 * The next datagram of a stream as a future: output weft_recv_item (the
 * payload in its buf); the source address goes to *from / *fromlen when
 * they are not NULL. Dropping it leaves the stream as it was; a discarded
 * output's buffer is released.
 */
typedef struct weft_udp_next {
	weft_udp_stream *stream;        /**< borrowed; outlives the future */
	struct sockaddr_storage *from;  /**< may be NULL */
	socklen_t *fromlen;             /**< may be NULL */
} weft_udp_next;
WEFT_API extern const weft_future_desc weft_udp_next_desc;

/**
 * The next connection of a stream as a future, for select, timeout and
 * weft_await: output int (weft_accept_stream_next's *fd). Dropping it
 * leaves the stream as it was; a discarded output socket is closed.
 */
typedef struct weft_accept_next {
	weft_accept_stream *stream; /**< borrowed; outlives the future */
} weft_accept_next;
WEFT_API extern const weft_future_desc weft_accept_next_desc;

/** Output of weft_recv_next_desc. */
typedef struct weft_recv_item {
	int64_t res;  /**< as weft_recv_stream_next's *res */
	weft_buf buf; /**< lent when res > 0 */
} weft_recv_item;

/**
 * The next data of a stream as a future: output weft_recv_item. Dropping
 * it leaves the stream as it was; a discarded output's buffer is
 * released.
 */
typedef struct weft_recv_next {
	weft_recv_stream *stream; /**< borrowed; outlives the future */
} weft_recv_next;
WEFT_API extern const weft_future_desc weft_recv_next_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_MULTISHOT_H */
