/* SPDX-License-Identifier: MIT */
/*
 * weft_io: the future of one io_uring operation (an "op").
 *
 * Initialise it with one of the *_init calls in weft/time.h and weft/net.h,
 * poll it with weft_io_poll() from a task, and drop it with weft_io_drop()
 * when done or when the owning future is dropped. The first poll submits
 * the op on the ring of the worker that polls; the op belongs to that ring
 * for life.
 *
 * Lifetime rule: an in-flight op is a record owned by the driver until its
 * CQE arrives, and it holds a reference to the task that submitted it.
 * Dropping a weft_io whose op is in flight submits a cancel (on the op's own
 * ring, forwarded there if the task now runs on another worker) and returns
 * at once; the task's memory, and so any buffer inside the task's state,
 * stays allocated until the kernel is done. A buffer that lives outside the
 * task must stay valid until the task itself is freed.
 *
 * Once weft_io_poll() has returned WEFT_READY the weft_io holds nothing:
 * it may be re-initialised for the next op without weft_io_drop().
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft__op;

/**
 * One op future. Its fields are private; the layout is public only so that
 * futures can embed it.
 */
typedef struct weft_io {
	struct weft__op *_op;
	int32_t _kind;
	int32_t _fd;
	uint32_t _flags;
	uint32_t _addrlen;
	union {
		struct {
			void *buf;
			size_t len;
		} rw;
		uint64_t deadline_ns;
	} _u;
	unsigned char _addr[28]; /* sockaddr_in or sockaddr_in6 */
	uint32_t _done;
} weft_io;

/**
 * Poll the op. The first poll submits it (on the calling worker's ring).
 *
 * @res: on READY, the op's result: bytes transferred, a new fd, or 0 as the
 *       op documents; or a negative errno. -EPERM when polled off a weft
 *       worker thread (ops need a worker's ring); -ENOMEM when no op record
 *       could be allocated; -EINVAL for an uninitialised weft_io or a poll
 *       after READY.
 *
 * Must be called from the task that owns @io (one poller at a time).
 */
WEFT_API weft_poll weft_io_poll(weft_io *io, weft_cx *cx, int64_t *res);

/**
 * Drop the op future. If its op is in flight, a cancel is submitted and the
 * record lives on until the CQE; a result that arrives anyway is discarded
 * (an accepted or connected fd is closed). Idempotent; safe on a zeroed or
 * finished weft_io. Call from a worker thread (from a future's drop) or, for
 * an op never polled, from anywhere.
 */
WEFT_API void weft_io_drop(weft_io *io);

/** True once @io has returned READY. */
WEFT_API bool weft_io_is_done(const weft_io *io);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
