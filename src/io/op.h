/* SPDX-License-Identifier: MIT */
/*
 * Op records and op kinds.
 *
 * An op record is created by the first poll of a weft_io and submitted on
 * the polling thread's driver, which owns it for life. References:
 *   - the driver: from submit until the op's CQE has been handled;
 *   - the future (weft_io): until it takes the result or is dropped;
 *   - a cancel in flight: from the cancel request (local, or pushed to the
 *     owner's inbox by another thread) until the cancel's own CQE;
 *   - a linked timeout (weft_io_set_deadline): from submit until its own
 *     CQE, which may come after the op's. When it fires the kernel cancels
 *     the op by user_data: were the record freed at the op's CQE, a new op
 *     allocated at the same address could be cancelled instead (it was:
 *     tests/io_deadline.c, raced_deadline_spares_later_ops).
 * The last one frees the record, so no cancel ever names a freed (or
 * reused) record.
 *
 * Op-lifetime rule: the record holds a waker from submit until the op's
 * CQE, also after the future was dropped (it is released, not woken, then).
 * A task's waker is a reference to the task, so the task's memory, where
 * buffers usually live, outlives the kernel's use of it. The io layer needs
 * no task or worker pointer for that.
 *
 * done, orphaned, result and waker are under the record's spinlock: the
 * owner's reap and a poll or drop on another thread meet there.
 *
 * Op kinds are a table, not a switch: each kind (struct weft__op_kind)
 * prepares its SQE, turns the CQE's result into the future's result, and
 * releases a result nobody will read. A new kind is a new const struct in
 * the file of its layer (fd.c, file.c, tcp.c, sleep.c), nothing else.
 */
#ifndef WEFT_IO_OP_H
#define WEFT_IO_OP_H

#include <ck_stack.h>
#include <linux/time_types.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <weft/io.h>

#include "io/driver.h"
#include "spinlock.h"

struct weft__bufpool;

#define WEFT__IO_MAGIC 0x77656674u /* "weft": the weft_io was prepared */

/*
 * io->_check ties io->_op to io's own address, so that a weft_io that was
 * never zeroed (stack garbage, even a stale weft_io at another address) is
 * never taken for one with an op in flight, and no wild _op is followed.
 */
static inline uint64_t weft__io_check(const weft_io *io)
{
	return (uint64_t)(uintptr_t)io->_op ^ (uint64_t)(uintptr_t)io ^
	       0x9e3779b97f4a7c15ull;
}

static inline void weft__io_set_op(weft_io *io, struct weft__op *op)
{
	io->_op = op;
	io->_check = op ? weft__io_check(io) : 0;
}

/* @io holds an op record: prepared, polled, not yet READY or dropped. */
static inline bool weft__io_in_flight(const weft_io *io)
{
	return io->_magic == WEFT__IO_MAGIC && io->_op &&
	       io->_check == weft__io_check(io);
}

/* The kernel-visible arguments of a sendmsg or recvmsg op. */
struct weft__op_msg {
	struct msghdr hdr;
	struct iovec iov;
	struct sockaddr_storage *from; /* recv_from's @from, written at READY */
	socklen_t *fromlen;
	struct sockaddr_storage addr;  /* the destination, or the source */
};

/* One completion a multishot op queued for its stream. */
struct weft__ms_item {
	int32_t res;
	int32_t bid;                   /* provided buffer id, -1: none */
	void *heap;                    /* or its bytes copied out (malloc'd):
					* received past the stream's cap */
};

/*
 * The stream part of a multishot record (multishot.c). The queue, held,
 * paused and resume_queued are under the record's lock; phase, stopping,
 * the list links and the pool are the owner's; held_max is set before the
 * record is shared and never changes.
 */
struct weft__op_ms {
	struct weft__ms_item *q;       /* ring array of cap items */
	unsigned cap, head, count;
	unsigned held;                 /* under lock: queued items with a
					* pool buffer */
	unsigned held_max;             /* the stream's cap on held, 0: none
					* (streams without a pool) */
	bool paused;                   /* under lock: held reached held_max,
					* the owner stops receiving; the taker
					* clears it at held_max / 2 items */
	bool resume_queued;            /* under lock: resume_entry is in the
					* owner's resumes inbox */
	bool stopping;                 /* owner: a pause's cancel is in
					* flight, the op's final CQE is due */
	bool single;                   /* owner: receive one buffer per SQE
					* (a multishot op overshot the cap)
					* until the taker has caught up */
	bool ended;                    /* under lock: end_res is final */
	int32_t end_res;               /* under lock: what next returns last */
	int32_t armed_bid;             /* owner: plain rung's buffer in use */
	struct weft__op *prev, *next;  /* owner: the driver's starved or
					* paused list */
	struct weft__bufpool *pool;    /* owner's pool (recv streams) */
	ck_stack_entry_t resume_entry; /* a taker's request to re-arm */
	/* Datagram streams (net/udp_stream.c): the recvmsg arguments. */
	struct msghdr msg;
	struct iovec iov;
	struct sockaddr_storage name;
};

/* Owner-only phase of a record (op.c, multishot.c). */
enum {
	WEFT__PH_ARMED = 0,   /* its SQE is in flight */
	WEFT__PH_BACKOFF,     /* a retry timeout is in flight (user_data op) */
	WEFT__PH_STARVED,     /* nothing in flight: waits for buffers */
	WEFT__PH_ENDED,       /* nothing in flight, never again */
	WEFT__PH_PAUSED,      /* nothing in flight: its stream holds
			       * held_max buffers, waits for the taker */
};

struct weft__op {
	ck_stack_entry_t inbox_entry;  /* first: entry -> record cast */
	_Atomic unsigned refs;
	weft__spinlock lock;
	bool done;                     /* under lock */
	bool orphaned;                 /* under lock: the future is gone */
	int32_t result;                /* under lock */
	weft_waker waker;              /* under lock; held until the CQE */
	struct weft__driver *owner;
	const struct weft__op_kind *kind;
	int fd;                        /* a resource the op made (connect) */
	void *buf;                     /* user buffer the kernel writes/reads */
	size_t len;
	void *owned;                   /* malloc'd by prep, freed with us */
	uint64_t deadline;             /* weft_io_set_deadline, 0: none */
	uint8_t phase;                 /* owner: WEFT__PH_* */
	bool zc_wait;                  /* owner: a send_zc's notif is due */
	int32_t zc_res;                /* owner: its result, until then */
	uint32_t retry_ms;             /* owner: the last backoff, ms */
	int target;                    /* the fd the op works on (reprep) */
	struct __kernel_timespec link_ts; /* its IORING_OP_LINK_TIMEOUT */
	struct __kernel_timespec retry_ts; /* a backoff's IORING_OP_TIMEOUT */
	union {                        /* kernel-visible copies of arguments */
		struct __kernel_timespec ts;
		struct sockaddr_in6 addr;
		uint64_t u64[4];
	} u;
	/*
	 * Larger kernel-visible arguments, only in the records of kinds that
	 * ask for them (weft__op_kind.extra bytes): a recv or send keeps its
	 * record small, a sendmsg carries a whole msghdr and address.
	 */
	union weft__op_big {
		struct sockaddr_un un;     /* unix connect (unix.c) */
		struct weft__op_msg msg;   /* sendmsg/recvmsg (udp.c) */
		struct weft__op_ms ms;     /* multishot streams (multishot.c) */
	} big[];
};

struct weft__op_kind {
	/*
	 * Fill @sqe for @op from the prepared @io (user_data is set by the
	 * caller). May set op->fd/buf/len/u, and op->owned: a malloc'd copy
	 * of what the kernel reads or writes (a path, an iovec array, a
	 * result), freed with the record. Returns 0, or a negative errno
	 * for a failure before anything reached the kernel (the SQE is then
	 * turned into a NOP by the caller).
	 */
	int (*prep)(struct weft__op *op, struct io_uring_sqe *sqe,
		    const weft_io *io);
	/* Optional: the future's result from the CQE's @res (default @res).
	 * Runs once, in the future's poll; may take op->fd. */
	int64_t (*complete)(struct weft__op *op, int32_t res);
	/* Optional: release what a result nobody takes holds (an accepted
	 * fd, a connected socket). Runs once. */
	void (*discard)(struct weft__op *op, int32_t res);
	/*
	 * Optional, for a kind that is not a ring op (a sleep is a timer on
	 * the worker's wheel): replace weft_io_poll's submit and completion
	 * and weft_io_drop's cancel. poll returns READY with *@res, which
	 * weft_io_poll then marks done, or PENDING with its own record in
	 * io->_op (weft__io_set_op) and anything else in _arg. drop runs for
	 * an io whose record is in flight, and must release it.
	 */
	weft_poll (*poll)(weft_io *io, weft_cx *cx, int64_t *res);
	void (*drop)(weft_io *io);
	/* Bytes of op->big[] the kind uses (sizeof(union weft__op_big) or
	 * 0): records are allocated with that much more. */
	size_t extra;
	/*
	 * Optional, with reprep: a failure that is worth retrying later
	 * (EMFILE on accept). Returns the delay in ms before the op is
	 * submitted again (the caller never sees @res), or 0 to complete
	 * with it. Owner thread, in the reap.
	 */
	uint32_t (*backoff)(struct weft__op *op, int32_t res);
	/* Fill @sqe again for @op from what prep kept in the record (a
	 * retry, or a multishot op the kernel ended). 0 or negative errno. */
	int (*reprep)(struct weft__op *op, struct io_uring_sqe *sqe);
	/* A stream of completions (multishot.c), polled with
	 * weft__ms_poll_next, not weft_io_poll. */
	bool multishot;
	/* Two CQEs (IORING_OP_SEND_ZC): the result with IORING_CQE_F_MORE,
	 * then IORING_CQE_F_NOTIF once the kernel let go of the buffer; the
	 * op completes with the first's result at the second. */
	bool notif;
	/* Multishot: release what an untaken item holds (close an fd). */
	void (*discard_item)(struct weft__op *op, int32_t res);
	/* Multishot: a result of 0 ends the stream (recv's end of file)
	 * instead of being an item (accept's fd 0). */
	bool zero_ends;
	/* Multishot, optional: a failure that concerns one item, not the
	 * stream (accept's ECONNABORTED): skipped, the op goes on. */
	bool (*transient)(int32_t res);
	/* Multishot, optional: rewrite a received buffer @bid (result @res)
	 * into the kind's layout before it is queued; returns the new res.
	 * Owner thread, in the reap. */
	int32_t (*fixup)(struct weft__op *op, int32_t res, int32_t bid,
			 bool more);
};

/*
 * complete and discard of a kind whose prep made a socket in op->fd and
 * connects it (TCP and Unix connect, net/tcp.c): the future takes the
 * socket on success; it is closed on failure or when nobody takes it.
 */
int64_t weft__connect_complete(struct weft__op *op, int32_t res);

/*
 * backoff of the accept kinds (net/multishot.c): EMFILE, ENFILE, ENOBUFS
 * and ENOMEM retry after 5 ms, doubling to 200 ms (libuv and Tokio leave
 * this to the caller, whose loop then spins; Go's net package sleeps
 * too). The op's retry_ms holds the last wait.
 */
#define WEFT__ACCEPT_BACKOFF_MIN_MS 5u
#define WEFT__ACCEPT_BACKOFF_MAX_MS 200u
uint32_t weft__accept_backoff(struct weft__op *op, int32_t res);
void weft__connect_discard(struct weft__op *op, int32_t res);

/*
 * Start preparing @io as an op of @kind: zero it, record the kind. Returns
 * 0, -EINVAL for a NULL @io, or -EBUSY (nothing changed) while @io's op is
 * in flight (see weft/io.h, Preparing).
 */
int weft__io_prep(weft_io *io, const struct weft__op_kind *kind, int fd);

/*
 * weft__io_prep for a kind that moves @len bytes at @buf: stores them in
 * _arg[WEFT__ARG_BUF] and _arg[WEFT__ARG_LEN], @len clamped to
 * WEFT_IO_MAX_LEN. A NULL @buf with a non-zero @len fails with -EINVAL.
 */
enum { WEFT__ARG_BUF = 0, WEFT__ARG_LEN = 1 };

/* weft_io_set_deadline's deadline, 0: none. The last argument word: kinds
 * use the words from 0 up (connect, the largest, uses 5), and _flags is
 * theirs too (recv/send pass it as MSG_* flags). */
enum { WEFT__ARG_DEADLINE = 10 };
int weft__io_prep_buf(weft_io *io, const struct weft__op_kind *kind, int fd,
		      const void *buf, size_t len);

/* In a kind's prep: record the buffer stored by weft__io_prep_buf in @op
 * (for the ASan liveness check at the CQE). */
static inline void weft__op_take_buf(struct weft__op *op, const weft_io *io)
{
	op->buf = (void *)(uintptr_t)io->_arg[WEFT__ARG_BUF];
	op->len = (size_t)io->_arg[WEFT__ARG_LEN];
}

/* Mark @io as failed with @err (polls return it); returns @err. */
int weft__io_prep_fail(weft_io *io, int err);

/* Driver: the CQE of @op arrived with @res and @cflags. */
void weft__op_complete(struct weft__driver *d, struct weft__op *op,
		       int32_t res, uint32_t cflags);

/*
 * Between weft__io_sync_drops(true) and (false) on this thread, a
 * weft_io_drop of an op in flight returns only once the kernel is done
 * with it (the fiber layer, whose ops may use buffers on a fiber stack
 * that is reused as soon as the call returns). Nests.
 */
void weft__io_sync_drops(bool on);

/* The future is gone (reads the flag under the record's lock). */
bool weft__op_is_orphaned(struct weft__op *op);

/* References on a record (see the rule at the top). */
void weft__op_ref(struct weft__op *op);
void weft__op_unref(struct weft__op *op);

/* Owner: submit @op's SQE again through kind->reprep (with its deadline
 * link, if any). 0 or the reprep's negative errno (nothing submitted). */
int weft__op_resubmit(struct weft__driver *d, struct weft__op *op);

/* multishot.c: a CQE of a multishot record; a cancel of one that has
 * nothing in flight (true: handled, no cancel SQE needed). */
void weft__ms_complete(struct weft__driver *d, struct weft__op *op,
		       int32_t res, uint32_t cflags);
bool weft__ms_cancel_idle(struct weft__driver *d, struct weft__op *op);
/* multishot.c, owner: @op found no free buffer: wait on the driver's list
 * (the driver's reference goes with it). */
void weft__ms_starve(struct weft__driver *d, struct weft__op *op);
/* multishot.c, in a receiving stream kind's prep: take the owner's pool
 * for @op (a reference) and remember @fd. 0 or -ENOMEM. */
int weft__ms_attach_pool(struct weft__op *op, int fd);
/* multishot.c, owner: buffers came back; submit the starved streams. */
void weft__ms_rearm_starved(struct weft__driver *d);
/* multishot.c, owner: re-arm the paused streams whose takers asked
 * (the driver's resumes inbox). */
void weft__ms_resume_all(struct weft__driver *d);
/* multishot.c, owner at exit: end the streams still starved or paused. */
void weft__ms_exit(struct weft__driver *d);
/* multishot.c: a stream's next completion (any thread). READY with *res
 * and *bid (-1: no buffer) or *heap (not NULL: the bytes in memory of
 * their own, the caller's to free), or PENDING. */
weft_poll weft__ms_poll_next(weft_io *io, weft_cx *cx, int32_t *res,
			     int32_t *bid, void **heap);

/* op.c: the first poll of @io: a record, submitted. NULL with *@err. */
struct weft__op *weft__op_start(weft_io *io, weft_cx *cx, int *err);
/* op.c: cancel @op on its owner's ring (the caller has marked it
 * orphaned under its lock). */
void weft__op_cancel(struct weft__op *op);
/* op.c, owner: wait @ms before submitting @op again (its user_data, so a
 * cancel of the op ends the wait). False: orphaned, or past its
 * deadline. */
bool weft__op_start_backoff(struct weft__driver *d, struct weft__op *op,
			    uint32_t ms);
/* multishot.c: drop a stream's future (any thread). */
void weft__ms_drop(weft_io *io);
/* multishot.c: free what a stream record holds (its last reference). */
void weft__ms_free(struct weft__op *op);

/* Driver: the CQE of a cancel for @op arrived. */
void weft__op_cancel_done(struct weft__driver *d, struct weft__op *op);

/* Driver: the CQE of @op's linked timeout arrived. */
void weft__op_link_done(struct weft__driver *d, struct weft__op *op);

/* Driver: submit the cancel for @op, whose reference the pusher took. */
void weft__op_submit_cancel(struct weft__driver *d, struct weft__op *op);

#endif /* WEFT_IO_OP_H */
