/* SPDX-License-Identifier: MIT */
/*
 * weft_io: the future of one io_uring operation (an "op").
 *
 * Prepare it with one of the weft_io_prep_* calls (this header for any fd;
 * weft/file.h for files; weft/net.h for sockets; weft/time.h for sleeps), as liburing's
 * io_uring_prep_* prepare an SQE. Poll it with weft_io_poll() from a task,
 * or through weft_io_future() with the combinators of weft/future.h, and
 * drop it with weft_io_drop() when the future that embeds it is dropped.
 * The first poll submits the op on the ring of the worker that polls; the
 * op belongs to that ring for life.
 *
 * Lifetime rule: an in-flight op is a record owned by the driver until its
 * CQE arrives, and the record holds the waker of the task that polled it
 * (a task waker is a reference to the task). Dropping a weft_io whose op is
 * in flight submits a cancel (on the op's own ring, forwarded there if the
 * task now runs on another worker) and returns at once; the task's memory,
 * and so any buffer inside the task's state, stays allocated until the
 * kernel is done. A buffer that lives outside the task must stay valid
 * until the task itself is freed.
 *
 * Address: a weft_io must not move between its first poll and the end of
 * the op (READY or drop); inside a task's state it never does.
 *
 * Preparing: a weft_io must be zero-filled (WEFT_IO_INIT, calloc, a task's
 * zeroed state) or previously prepared before a weft_io_prep_* call.
 * Preparing one whose op is still in flight fails with -EBUSY and changes
 * nothing: the op goes on (its record is not leaked, nothing is silently
 * cancelled) and the next poll continues it; call weft_io_drop() first to
 * replace it. Once weft_io_poll() has returned WEFT_READY the weft_io holds
 * nothing and may be prepared again.
 *
 * Errors from a prep call are returned and also kept: polling a weft_io
 * whose prep failed returns WEFT_READY with that error, so an unchecked
 * prep never loses its error (except -EBUSY, which leaves the op alone).
 *
 * NULL: see weft/core.h. weft_io_prep_* with a NULL @io return -EINVAL.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <sys/types.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft__op;
struct weft__op_kind;

/**
 * One op future: 128 bytes on 64-bit targets. Its fields are private; the
 * layout is public only so that futures can embed it, and its size only
 * changes with the library's major version (new op kinds use the spare
 * argument words).
 */
typedef struct weft_io {
	struct weft__op *_op;
	const struct weft__op_kind *_kind;
	uint32_t _magic;
	uint32_t _done;
	int32_t _fd;
	uint32_t _flags;
	uint64_t _check;
	uint64_t _arg[11];
} weft_io;

/** Zero initialiser for a weft_io. */
#define WEFT_IO_INIT { 0 }

/**
 * Largest transfer of one read, write, recv or send op, in bytes: the
 * kernel's per-call limit (MAX_RW_COUNT, 2 GiB - 4 KiB). Longer requests
 * are clamped to it; the op then transfers at most this many bytes, which
 * read/recv/write/send callers already handle as a short transfer.
 */
#define WEFT_IO_MAX_LEN ((size_t)0x7ffff000)

/**
 * Poll the op. The first poll submits it (on the calling worker's ring).
 *
 * @res: on READY, the op's result: bytes transferred, a new fd, or 0 as the
 *       op documents; or a negative errno. -EPERM when polled off a weft
 *       worker thread (ops need a worker's ring), for every kind; -ENOMEM
 *       when no op record could be allocated; -EINVAL for an unprepared
 *       weft_io or a poll after READY; the prep call's error if it failed.
 *       NULL discards the result.
 *
 * Returns WEFT_PENDING after storing a clone of the context's waker, which
 * is woken when the CQE arrives. Must be called by the task that owns @io
 * (one poller at a time). NULL @io or @cx: READY with -EINVAL, @io
 * untouched.
 */
WEFT_API weft_poll weft_io_poll(weft_io *io, weft_cx *cx, int64_t *res);

/**
 * Drop the op future. If its op is in flight, a cancel is submitted and the
 * record lives on until the CQE; a result that arrives anyway is discarded
 * (an accepted or connected fd is closed). Idempotent; safe on a zeroed or
 * finished weft_io and on NULL. Call from a worker thread (from a future's
 * drop) or, for an op never polled, from anywhere.
 */
WEFT_API void weft_io_drop(weft_io *io);

/** True once @io has returned READY (false for NULL). */
WEFT_API bool weft_io_is_done(const weft_io *io);

/**
 * The descriptor of weft_io as a generic future (weft/core.h): state is a
 * weft_io, output an int64_t (the @res of weft_io_poll), drop weft_io_drop.
 */
WEFT_API extern const weft_future_desc weft_io_desc;

/**
 * Give the prepared ring op @io a deadline (call after its weft_io_prep_*
 * and before its first poll). If the op has not completed by @deadline_ns
 * (CLOCK_MONOTONIC), the kernel cancels it and the poll returns
 * -ETIMEDOUT. It is one io_uring linked timeout (IORING_OP_LINK_TIMEOUT,
 * absolute) submitted with the op: no timer-wheel entry and no extra
 * syscall. A timed-out op transferred nothing (a recv consumed no data, an
 * accept accepted no connection, a connect's socket is closed), so nothing
 * is lost. For a future made of several ops (weft_send_all, a whole
 * request) use weft_timeout (weft/time.h) instead.
 *
 * Works for every ring op: read, write, close, accept, connect, recv,
 * send, send_zc, shutdown, raw, and the file ops of weft/file.h (a
 * timed-out openat opened nothing). Returns 0, -EINVAL (NULL @io, @io not
 * prepared or its prep failed, a sleep, which is its own deadline, or a
 * stream of weft/multishot.h, whose nexts take deadlines instead), or
 * -EBUSY (the op is in flight: the deadline must be set before the first
 * poll).
 */
WEFT_API int weft_io_set_deadline(weft_io *io, uint64_t deadline_ns);

/** As weft_io_set_deadline(), @ns from now (saturating). */
WEFT_API int weft_io_set_timeout(weft_io *io, uint64_t ns);

/**
 * Read up to @len bytes from @fd into @buf at file offset @offset (-1: the
 * file's current position, for pipes, sockets, eventfd and other streams).
 * Works on any fd: regular files, pipes, eventfd, timerfd, sockets.
 * Result: bytes read, 0 at end of file, or a negative errno (-EBADF,
 * -EINVAL, -EISDIR, ...). @len above WEFT_IO_MAX_LEN is clamped. @buf must
 * stay valid while the op may be in flight (see the lifetime rule).
 * Returns 0, or -EINVAL (NULL @io, NULL @buf with a non-zero @len, @offset
 * below -1), or -EBUSY (an op of @io is in flight; see Preparing).
 *
 * A blocking fd (a pipe or eventfd opened without O_NONBLOCK) is fine: the
 * kernel waits for it (poll-driven for pipes and sockets). For an
 * O_NONBLOCK fd with nothing to read the result may be -EAGAIN.
 */
WEFT_API int weft_io_prep_read(weft_io *io, int fd, void *buf, size_t len,
			       off_t offset);

/**
 * Write up to @len bytes from @buf to @fd at @offset (-1: current position
 * or append for O_APPEND files and streams). Result: bytes written
 * (possibly fewer than @len) or a negative errno (-EBADF, -EPIPE for a pipe
 * without readers: io_uring does not raise SIGPIPE for write, -ENOSPC).
 * Same arguments and errors as weft_io_prep_read().
 */
WEFT_API int weft_io_prep_write(weft_io *io, int fd, const void *buf,
				size_t len, off_t offset);

/**
 * Close @fd through the ring. Result: 0 or a negative errno (-EBADF).
 * Returns 0, -EINVAL for NULL @io, or -EBUSY (see Preparing).
 */
WEFT_API int weft_io_prep_close(weft_io *io, int fd);

/* --- Raw SQEs ---------------------------------------------------------- */

/* liburing's SQE; weft's headers never need <liburing.h>. */
struct io_uring_sqe;

/**
 * The callback of weft_io_prep_raw(): prepare @sqe, typically with one
 * io_uring_prep_* call, and return 0; or return a negative errno to fail
 * the op with it (nothing is submitted; a positive value fails it with
 * -EINVAL). @sqe arrives zero-filled. It runs once, on the worker thread
 * that polls the op first, inside that poll: it must not block, must not
 * keep @sqe, and must not touch the weft_io.
 */
typedef int (*weft_io_raw_fill)(struct io_uring_sqe *sqe, void *arg);

/**
 * Prepare an op that weft has no wrapper for (the escape hatch): at the
 * op's first poll, weft takes an SQE of the polling worker's ring, calls
 * @fill(@sqe, @arg), and submits it. The result is the CQE's res: what
 * the io_uring operation documents (0, a count, an fd) or a negative
 * errno.
 *
 * weft owns user_data (set after @fill returns, whatever @fill wrote) and
 * the SQE flags. @fill may set only IOSQE_ASYNC; any other flag
 * (IOSQE_IO_LINK, IOSQE_IO_HARDLINK, IOSQE_CQE_SKIP_SUCCESS,
 * IOSQE_BUFFER_SELECT: no buffer group is lent to raw ops,
 * IOSQE_FIXED_FILE: weft registers no files, IOSQE_IO_DRAIN: weft's rings
 * use CQE_SKIP_SUCCESS, with which the kernel refuses drains) fails the op
 * with -EINVAL and submits nothing. To chain a
 * deadline use weft_io_set_deadline() on @io, which works as for any op.
 *
 * One SQE, one CQE: an op that posts more than one CQE is refused with
 * -EINVAL where weft can tell from the SQE: multishot accept
 * (IORING_ACCEPT_MULTISHOT), multishot recv/recvmsg
 * (IORING_RECV_MULTISHOT), multishot poll (IORING_POLL_ADD_MULTI),
 * multishot timeouts (IORING_TIMEOUT_MULTISHOT), IORING_OP_READ_MULTISHOT,
 * IORING_OP_RECV_ZC, and the zero-copy sends (IORING_OP_SEND_ZC,
 * IORING_OP_SENDMSG_ZC, which post a second, notification CQE). Do not submit any other operation
 * that can post several CQEs, and do not send IORING_OP_MSG_RING to a
 * weft worker's ring: weft would take the extra CQE for one of its own
 * (undefined behaviour).
 *
 * Lifetime: everything the SQE points to (buffers, iovecs, paths,
 * timespecs, msghdrs) follows the rule for buffers at the top of this
 * header. It must stay valid until the op is READY or, if @io is dropped
 * first, until the kernel is done, which weft only guarantees by keeping
 * the polling task alive until the CQE: memory inside the task's state is
 * fine; memory outside it must outlive the task. @arg itself is used only
 * during @fill.
 *
 * Cancellation: dropping @io while its op is in flight submits an async
 * cancel naming it (IORING_OP_ASYNC_CANCEL by user_data), as for every
 * op; the op then ends with whatever the kernel reports (-ECANCELED,
 * -EINTR, or a result it had already produced), which nobody reads. An
 * operation the kernel cannot cancel runs to its end, and the task's
 * memory with it.
 *
 * Returns 0, -EINVAL (NULL @io, or NULL @fill: kept for the poll), or -EBUSY
 * (an op of @io is in flight; see Preparing). Polls of the op may also
 * return -EPERM, -ENOMEM and -EINVAL as weft_io_poll() documents, and
 * @fill's error.
 */
WEFT_API int weft_io_prep_raw(weft_io *io, weft_io_raw_fill fill, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
