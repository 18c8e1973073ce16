/* SPDX-License-Identifier: MIT */
/*
 * Fibers: C code written top to bottom, on the same work-stealing
 * scheduler as poll-based futures.
 *
 * A fiber is a task whose poll switches to the fiber's own stack. Inside,
 * weft_await() polls any weft future with the task's waker; when the
 * future is pending the fiber switches back and the poll returns
 * WEFT_PENDING, and when the waker fires the task is polled again and the
 * fiber resumes where it stopped. So fibers and futures share workers,
 * wakers, stealing, timers and the io_uring driver, and a fiber can await
 * any future (an op, a channel, a join handle, a select of several).
 *
 * Fiber calls. Every call that may suspend the fiber is named weft_co_*
 * (weft_co_recv, weft_co_sleep, weft_co_mpsc_recv, ...), plus
 * weft_await() itself: the suspension points are visible in the code, as
 * .await is in Rust. They return what the future would (a byte count, 0,
 * or a negative errno) and may only be called on a fiber (else -EPERM,
 * nothing done). The I/O calls take an absolute deadline in ns on the
 * weft_now_ns() clock (0: none) and fail with -ETIMEDOUT past it. Any
 * other future is awaited with weft_await() (weft_mpsc_send_desc,
 * weft_mutex_lock_desc, weft_select_desc, ...), bounded by a deadline
 * with weft_await_until().
 *
 * Cancellation (libdill's model). When the fiber's task is aborted, or the
 * runtime shuts down, the pending call drops its future (an op in flight
 * is cancelled on its ring) and returns -ECANCELED, and every later fiber
 * call fails at once with -ECANCELED without suspending, so the fiber runs
 * its own cleanup and returns. A fiber aborted before it first ran still
 * runs, with every call failing, so that it can release its argument.
 * Fiber code must return on -ECANCELED: a fiber that loops forever
 * ignoring it holds up the runtime's shutdown.
 *
 * Stacks. Each fiber runs on an mmap'd stack (default WEFT_FIBER_STACK,
 * 64 KiB; weft_fiber_opts.stack_size) with a guard page below it, taken
 * from a per-thread pool. Buffers on a fiber's stack may be handed to an
 * op: the stack lives until the task is freed, after its ops, and an op
 * that a weft_await gives up on (cancelled, past a deadline, a select's
 * losing arm) is finished in the kernel before the call returns, so the
 * frame that held its buffer can be reused at once. (A weft_io the fiber
 * drops by hand with weft_io_drop is cancelled asynchronously: keep its
 * buffer alive, e.g. in the caller's frame, until the fiber returns.) A
 * stack
 * overflow hits the guard page: weft reports "weft: fiber <name> overflowed
 * its stack" on stderr from an alternate signal stack and the process
 * dies with SIGSEGV, never silently corrupting memory. How to pick a size:
 * docs/fibers.md.
 *
 * Threads and migration. A suspended fiber may be resumed by another
 * worker (work stealing), so code after a fiber call may run on another
 * thread than the code before it. Do not keep the address of a
 * thread-local variable (or a value read from one, errno included) across
 * a fiber call; weft's own calls return errors as values, not in errno.
 * docs/fibers.md explains why compilers may cache such addresses.
 *
 * NULL: see weft/core.h.
 */
#ifndef WEFT_FIBER_H
#define WEFT_FIBER_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <weft/core.h>
#include <weft/runtime.h>
#include <weft/task.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Default stack size of a fiber, in bytes (usable; plus a guard page). */
#define WEFT_FIBER_STACK (64 * 1024)
/** Smallest stack_size weft_go() accepts, in bytes. */
#define WEFT_FIBER_STACK_MIN (16 * 1024)
/** Largest stack_size weft_go() accepts, in bytes. */
#define WEFT_FIBER_STACK_MAX (64 * 1024 * 1024)

/** A fiber's function: runs on the fiber; its return value is the join
 * handle's output (a void *). */
typedef void *(*weft_fiber_fn)(void *arg);

/** Options of weft_go(). Set size = sizeof(weft_fiber_opts) (or call
 * weft_fiber_opts_init()); zero fields take the defaults. */
typedef struct weft_fiber_opts {
	size_t size;       /**< sizeof(weft_fiber_opts) */
	size_t stack_size; /**< bytes; 0: WEFT_FIBER_STACK; rounded up to
			    *   pages */
	const char *name;  /**< task name (copied, < WEFT_TASK_NAME_MAX
			    *   bytes); NULL: "fiber" in reports */
} weft_fiber_opts;

/** Set @opts to the defaults. NULL is accepted. */
WEFT_API void weft_fiber_opts_init(weft_fiber_opts *opts);

/**
 * Start a fiber running @fn(@arg) on @rt (NULL: the runtime of the calling
 * worker or fiber), as a task: it goes where weft_spawn() puts tasks.
 * @arg is passed as is (the fiber owns what it points to, if the caller
 * says so). @join (may be NULL: detached) receives a join handle whose
 * output is @fn's void * return value (output_size sizeof(void *)); the
 * caller drops it with weft_join_drop(). The stack is allocated when the
 * fiber first runs (so a fiber that starts many others and joins them
 * does not hold a stack for each; should none be available then, the
 * fiber yields and tries again at its next turn).
 * Returns 0, or -EINVAL (NULL @fn, @rt NULL off a worker, a bad @opts:
 * size too small, stack_size out of [WEFT_FIBER_STACK_MIN,
 * WEFT_FIBER_STACK_MAX]), -ENAMETOOLONG, -ENOMEM, -ESHUTDOWN (as
 * weft_spawn). On failure nothing was started and @arg is still the
 * caller's. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API WEFT_MUST_USE int weft_go(weft_runtime *rt, weft_fiber_fn fn,
				   void *arg, const weft_fiber_opts *opts,
				   weft_join **join);

/** True when called on a fiber. */
WEFT_API bool weft_in_fiber(void);

/**
 * Run the future @state (descriptor @desc) to completion from a fiber: poll
 * it with the fiber's waker, suspending the fiber while it is pending. On
 * completion its output is in @out (desc->output_size bytes; may be NULL
 * only when that is 0) and desc->drop has run; on -ECANCELED it was
 * dropped: the future is consumed either way.
 * Returns 0 (completed), -ECANCELED (the fiber's task was aborted or the
 * runtime shut down: the future was dropped, @out untouched), -EPERM (not
 * on a fiber: nothing polled, the future is still the caller's),
 * -EINVAL (NULL @desc or @desc->poll; NULL @state or @out with a non-zero
 * size: nothing polled).
 * @state must not move while it is awaited (a local of the fiber is fine:
 * the stack stays put).
 */
WEFT_API int weft_await(const weft_future_desc *desc, void *state,
			void *out);

/**
 * weft_await() bounded by an absolute @deadline_ns (weft_now_ns() clock;
 * 0: none): past it the future is dropped and -ETIMEDOUT returned (as
 * weft_timeout: a future that completes at the deadline wins).
 */
WEFT_API int weft_await_until(const weft_future_desc *desc, void *state,
			      void *out, uint64_t deadline_ns);

/**
 * Let the other tasks run: the fiber goes to the back of its worker's
 * queue and resumes at its next turn. Returns 0, -ECANCELED or -EPERM.
 */
WEFT_API int weft_co_yield(void);

/** Sleep for @ns ns (0: a yield through the timer). Returns 0, -ECANCELED
 * or -EPERM. */
WEFT_API int weft_co_sleep(uint64_t ns);

/** Sleep until @deadline_ns on the weft_now_ns() clock. Returns 0,
 * -ECANCELED or -EPERM. */
WEFT_API int weft_co_sleep_until(uint64_t deadline_ns);

/*
 * I/O from a fiber: the ring op of weft/io.h and weft/net.h, awaited.
 * Each returns what the op's CQE says (bytes, a new fd, or 0) or a
 * negative errno, plus -ETIMEDOUT past @deadline_ns (0: none; nothing was
 * transferred), -ECANCELED and -EPERM as above. Buffers may live on the
 * fiber's stack. The fd stays the caller's except in weft_co_close.
 */

/** recv(2) up to @len bytes into @buf. 0 at EOF. */
WEFT_API int64_t weft_co_recv(int fd, void *buf, size_t len, int flags,
			      uint64_t deadline_ns);

/** send(2) up to @len bytes (MSG_NOSIGNAL added). */
WEFT_API int64_t weft_co_send(int fd, const void *buf, size_t len,
			      int flags, uint64_t deadline_ns);

/** weft_io_prep_send_zc awaited: bytes sent or a negative errno, as
 * weft_co_send; the buffer is the caller's again when it returns. */
WEFT_API int64_t weft_co_send_zc(int fd, const void *buf, size_t len,
				 int flags, uint64_t deadline_ns);

/** Send all @len bytes (weft_send_all): @len, or a negative errno (how
 * much went before an error is not reported: the stream is broken). */
WEFT_API int64_t weft_co_send_all(int fd, const void *buf, size_t len,
				  int flags, uint64_t deadline_ns);

/** Receive exactly @len bytes (weft_recv_exact): @len, -EPIPE at an EOF
 * before that, or a negative errno. */
WEFT_API int64_t weft_co_recv_exact(int fd, void *buf, size_t len,
				    uint64_t deadline_ns);

/** read(2)/pread at @offset ((uint64_t)-1: the file position). */
WEFT_API int64_t weft_co_read(int fd, void *buf, size_t len,
			      uint64_t offset, uint64_t deadline_ns);

/** write(2)/pwrite at @offset ((uint64_t)-1: the file position). */
WEFT_API int64_t weft_co_write(int fd, const void *buf, size_t len,
			       uint64_t offset, uint64_t deadline_ns);

/** accept4(2) on @listen_fd (SOCK_CLOEXEC): a new fd, the caller's. */
WEFT_API int weft_co_accept(int listen_fd, uint64_t deadline_ns);

/** A new TCP socket connected to @addr (@addrlen bytes, copied; AF_INET
 * or AF_INET6): the fd, the caller's. */
WEFT_API int weft_co_connect(const struct sockaddr *addr, socklen_t addrlen,
			     uint64_t deadline_ns);

/** Resolve @host and connect to the first address of it that answers on
 * @port (weft_tcp_connect): a new connected fd, the caller's. */
WEFT_API int weft_co_tcp_connect(const char *host, uint16_t port,
				 uint64_t deadline_ns);

/** shutdown(2) @fd (weft_io_prep_shutdown): @how is SHUT_RD, SHUT_WR or
 * SHUT_RDWR; 0, -EINVAL (another @how), -ENOTCONN, -ENOTSOCK, -EBADF.
 * The fd stays open. */
WEFT_API int weft_co_shutdown(int fd, int how, uint64_t deadline_ns);

/** Close @fd through the ring; @fd is gone whatever the result. */
WEFT_API int weft_co_close(int fd);

/** Wait for the task of @join and drop the handle (consumed either way).
 * 0 with the output in @out (NULL: discarded); -ECANCELED when that task
 * was cancelled, or when this fiber is (then the task is detached);
 * -EINVAL (NULL @join), -EPERM (not on a fiber: @join untouched). */
WEFT_API int weft_co_join(weft_join *join, void *out);

/*
 * Channels, sync primitives and task groups from a fiber: the future of
 * weft/sync.h, weft/mpsc.h, weft/broadcast.h, weft/watch.h or
 * weft/joinset.h, awaited. Each returns that future's int result (see its
 * poll's doc: 0, -EPIPE, -EOVERFLOW, ...), -ETIMEDOUT past @deadline_ns
 * (0: none; where there is one: nothing was taken or sent), -ECANCELED or
 * -EPERM as above, or the init's -EINVAL. Waiting fibers queue exactly as
 * tasks polling the same futures do (FIFO where the primitive is).
 */
struct weft_mpsc_tx;
struct weft_mpsc_rx;
struct weft_oneshot_rx;
struct weft_broadcast_rx;
struct weft_watch_rx;
struct weft_semaphore;
struct weft_mutex;
struct weft_rwlock;
struct weft_notify;
struct weft_barrier;
struct weft_joinset;
struct weft_scope;

/** weft_mpsc_send: copies @value in; waits while a bounded channel is
 * full. */
WEFT_API int weft_co_mpsc_send(struct weft_mpsc_tx *tx, const void *value,
			       uint64_t deadline_ns);

/** weft_mpsc_recv into @out (NULL: discard); -EPIPE when closed and
 * drained. */
WEFT_API int weft_co_mpsc_recv(struct weft_mpsc_rx *rx, void *out,
			       uint64_t deadline_ns);

/** Receive a oneshot's value into @out; the receiver is consumed (as the
 * weft_oneshot_recv future owns it). 0 or -EPIPE. */
WEFT_API int weft_co_oneshot_recv(struct weft_oneshot_rx *rx, void *out);

/** weft_broadcast_recv: 0, -EOVERFLOW (*@missed set), -EPIPE. */
WEFT_API int weft_co_broadcast_recv(struct weft_broadcast_rx *rx, void *out,
				    uint64_t *missed, uint64_t deadline_ns);

/** weft_watch_changed: 0 once there is an unseen version (marked seen),
 * -EPIPE when the sender is gone. */
WEFT_API int weft_co_watch_changed(struct weft_watch_rx *rx,
				   uint64_t deadline_ns);

/** Acquire @n permits (give them back with weft_semaphore_release). */
WEFT_API int weft_co_semaphore_acquire(struct weft_semaphore *s, size_t n,
				       uint64_t deadline_ns);

/** Lock @m (unlock with weft_mutex_unlock). */
WEFT_API int weft_co_mutex_lock(struct weft_mutex *m, uint64_t deadline_ns);

/** Read-lock @l (weft_rwlock_read_unlock). */
WEFT_API int weft_co_rwlock_read(struct weft_rwlock *l, uint64_t deadline_ns);

/** Write-lock @l (weft_rwlock_write_unlock). */
WEFT_API int weft_co_rwlock_write(struct weft_rwlock *l,
				  uint64_t deadline_ns);

/** Wait for a notification of @n (weft_notified). */
WEFT_API int weft_co_notified(struct weft_notify *n, uint64_t deadline_ns);

/** Wait at @b: 1 for the generation's leader, 0 for the others. */
WEFT_API int weft_co_barrier_wait(struct weft_barrier *b);

/** The next task of @set to finish: its status (0 with its output in
 * @value, -ECANCELED) and *@id (may be NULL); -ENOENT when the set is
 * empty. */
WEFT_API int weft_co_joinset_join_next(struct weft_joinset *set, void *value,
				       uint64_t *id);

/** Wait for every task of @scope: its first error, or 0. */
WEFT_API int weft_co_scope_join(struct weft_scope *scope);

/*
 * Datagrams and Unix domain sockets from a fiber (weft/udp.h): the ring op
 * awaited, with the same results and errors as weft_co_recv above.
 */

/** One datagram to @addr (@addrlen bytes, any family; NULL/0: the
 * connected peer): bytes sent. */
WEFT_API int64_t weft_co_send_to(int fd, const void *buf, size_t len,
				 const struct sockaddr *addr,
				 socklen_t addrlen, int flags,
				 uint64_t deadline_ns);

/** One datagram into @buf (truncated to @len; its full length with
 * MSG_TRUNC in @flags) and its sender into @from / *@fromlen (both NULL:
 * not wanted; written only on success). */
WEFT_API int64_t weft_co_recv_from(int fd, void *buf, size_t len, int flags,
				   struct sockaddr_storage *from,
				   socklen_t *fromlen, uint64_t deadline_ns);

/** A new Unix stream socket connected to the socket file @path: the fd,
 * the caller's; -ENOENT, -ECONNREFUSED, -ENAMETOOLONG, ... */
WEFT_API int weft_co_unix_connect(const char *path, uint64_t deadline_ns);

/*
 * Files from a fiber: the ring ops of weft/file.h, awaited, with the same
 * results, copies and errors as their weft_io_prep_* (the path and the
 * iovec array are copied; the data buffers may live on the fiber's stack),
 * plus -ETIMEDOUT past @deadline_ns (0: none; the op was cancelled: an
 * fd opened meanwhile is closed), -ECANCELED and -EPERM as above.
 */
struct statx;

/** openat(2) @path relative to @dirfd: the new fd (the caller's) or a
 * negative errno. */
WEFT_API int weft_co_openat(int dirfd, const char *path, int flags,
			    mode_t mode, uint64_t deadline_ns);

/** preadv(2) at @offset (-1: the file position): bytes read or -errno. */
WEFT_API int64_t weft_co_readv(int fd, const struct iovec *iov, int iovcnt,
			       int64_t offset, uint64_t deadline_ns);

/** pwritev(2) at @offset (-1: the file position): bytes written or
 * -errno. */
WEFT_API int64_t weft_co_writev(int fd, const struct iovec *iov, int iovcnt,
				int64_t offset, uint64_t deadline_ns);

/** fsync(2), or fdatasync(2) with @datasync: 0 or -errno. */
WEFT_API int weft_co_fsync(int fd, bool datasync, uint64_t deadline_ns);

/** statx(2) of @path relative to @dirfd into *@out: 0 or -errno (*@out
 * untouched on failure). */
WEFT_API int weft_co_statx(int dirfd, const char *path, int flags,
			   unsigned mask, struct statx *out,
			   uint64_t deadline_ns);

/*
 * Streams from a fiber (weft/multishot.h): the next completion of a
 * stream the fiber owns (initialised with weft_accept_stream_init or
 * weft_recv_stream_init; the fiber drops it with its _drop when done).
 * Past @deadline_ns (0: none) they return -ETIMEDOUT and the stream is
 * left as it was: nothing is lost, the next call goes on. -ECANCELED and
 * -EPERM as above.
 */
struct weft_accept_stream;
struct weft_recv_stream;
struct weft_buf;

/** The next accepted socket (the caller's) or the stream's ending error
 * (weft_accept_stream_next). */
WEFT_API int weft_co_accept_next(struct weft_accept_stream *s,
				 uint64_t deadline_ns);

/** The next received data: bytes > 0 lent in *@buf (give it back with
 * weft_buf_release), 0 at end of file, or a negative errno
 * (weft_recv_stream_next). */
WEFT_API int64_t weft_co_recv_next(struct weft_recv_stream *s,
				   struct weft_buf *buf, uint64_t deadline_ns);

struct weft_udp_stream;

/** The next datagram: payload bytes >= 0 lent in *@buf (give it back with
 * weft_buf_release), its source in *@from / *@fromlen (may be NULL), or
 * a negative errno (weft_udp_stream_next). */
WEFT_API int64_t weft_co_udp_next(struct weft_udp_stream *s,
				  struct weft_buf *buf,
				  struct sockaddr_storage *from,
				  socklen_t *fromlen, uint64_t deadline_ns);

/*
 * A raw SQE from a fiber: weft_io_prep_raw (weft/io.h) awaited, with its
 * checks and its lifetime rule (what the SQE points to may live on the
 * fiber's stack: the fiber is alive until the op ends).
 */
struct io_uring_sqe;

/** Submit the SQE @fill prepares (weft_io_raw_fill) and await its CQE:
 * the CQE's res, @fill's error, -EINVAL for an SQE weft refuses,
 * -ETIMEDOUT past @deadline_ns (0: none; the op was cancelled),
 * -ECANCELED and -EPERM as above. */
WEFT_API int weft_co_raw(int (*fill)(struct io_uring_sqe *sqe, void *arg),
			 void *arg, uint64_t deadline_ns);

/*
 * Frames from a fiber (weft/framed.h): read the next frame, send one.
 * Past @deadline_ns (0: none) they return -ETIMEDOUT and the reader or
 * writer is left as it was (a frame half received stays buffered; a frame
 * queued stays queued). -ECANCELED and -EPERM as above.
 */
struct weft_framed_reader;
struct weft_framed_writer;
struct weft_frame_view;

/** The next frame into *@frame (valid until the next read): 1, 0 when
 * the peer closed at a frame boundary, or a negative errno
 * (weft_framed_read_poll). */
WEFT_API int weft_co_frame_read(struct weft_framed_reader *r,
				struct weft_frame_view *frame,
				uint64_t deadline_ns);

/** Send one frame (weft_framed_send_init / _poll): 0 or a negative
 * errno; with @flush, everything queued has reached the socket. */
WEFT_API int weft_co_frame_send(struct weft_framed_writer *w,
				const void *payload, size_t len, bool flush,
				uint64_t deadline_ns);

/** Send everything queued (weft_framed_flush_poll): 0 or the writer's
 * sticky error. */
WEFT_API int weft_co_frame_flush(struct weft_framed_writer *w,
				 uint64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_FIBER_H */
