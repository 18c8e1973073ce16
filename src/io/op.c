/* SPDX-License-Identifier: MIT */
/*
 * Op futures (weft_io): submission, completion, and cancellation across
 * threads. The record lifetime rule is in op.h. C11 atomics for the
 * reference count; weft__spinlock for the record.
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <weft/io.h>
#include <weft/time.h>

#include "io/op.h"

/* The size is ABI (weft/io.h): new kinds use the spare argument words. */
_Static_assert(sizeof(void *) != 8 || sizeof(weft_io) == 128,
	       "weft_io is 128 bytes on 64-bit targets");

void weft__op_ref(struct weft__op *op)
{
	/* Relaxed: the caller already holds a reference. */
	atomic_fetch_add_explicit(&op->refs, 1, memory_order_relaxed);
}

void weft__op_unref(struct weft__op *op)
{
	/* acq_rel: every holder's accesses happen before the free. */
	if (atomic_fetch_sub_explicit(&op->refs, 1, memory_order_acq_rel) == 1) {
		if (op->kind->multishot)
			weft__ms_free(op);
		free(op->owned);
		free(op);
	}
}

#define op_ref weft__op_ref
#define op_unref weft__op_unref

/* A result that reached nobody: release what it created. */
static void discard_result(struct weft__op *op, int32_t res)
{
	if (op->kind->discard)
		op->kind->discard(op, res);
}

void weft__op_submit_cancel(struct weft__driver *d, struct weft__op *op)
{
	/* A stream waiting for buffers has nothing in the kernel. */
	if (op->kind->multishot && weft__ms_cancel_idle(d, op)) {
		op_unref(op); /* the cancel reference */
		return;
	}
	struct io_uring_sqe *sqe = weft__ring_sqe(&d->ring);

	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | WEFT__UD_CANCEL);
	d->ring.inflight++;
}

void weft__op_cancel_done(struct weft__driver *d, struct weft__op *op)
{
	d->ring.inflight--;
	op_unref(op);
}

void weft__op_link_done(struct weft__driver *d, struct weft__op *op)
{
	d->ring.inflight--;
	op_unref(op);
}

#if defined(WEFT_SANITIZE_ADDRESS)
#include <sanitizer/asan_interface.h>
/*
 * ASan cannot see the kernel writing into freed memory, so check the rule
 * it would otherwise miss: when an op with a user buffer completes, the
 * buffer must still be live (op.h: the waker keeps the task, where buffers
 * live).
 */
static void check_buffer_alive(const struct weft__op *op, int32_t res)
{
	size_t n = res > 0 ? (size_t)res : 0;

	if (op->buf && n && n <= op->len &&
	    __asan_region_is_poisoned(op->buf, n))
		weft__assert_fail("op buffer freed while the kernel used it",
				  __FILE__, __LINE__);
}
#else
static void check_buffer_alive(const struct weft__op *op, int32_t res)
{
	(void)op;
	(void)res;
}
#endif

static bool retry_or_backoff(struct weft__driver *d, struct weft__op *op,
			     int32_t *res);

void weft__op_complete(struct weft__driver *d, struct weft__op *op,
		       int32_t res, uint32_t cflags)
{
	weft_waker waker;
	bool orphaned;

	if (op->kind->multishot) {
		weft__ms_complete(d, op, res, cflags);
		return;
	}
	if ((op->phase == WEFT__PH_BACKOFF || op->kind->backoff) &&
	    retry_or_backoff(d, op, &res))
		return;
	if (op->kind->notif) {
		if (!(cflags & IORING_CQE_F_NOTIF) &&
		    (cflags & IORING_CQE_F_MORE)) {
			op->zc_res = res; /* the buffer is still the kernel's */
			op->zc_wait = true;
			return;
		}
		if (op->zc_wait) {
			res = op->zc_res;
			op->zc_wait = false;
		}
	}
	check_buffer_alive(op, res);
	d->ring.inflight--;
	WEFT__DRV_INC(d, ops_completed);
	weft__spin_lock(&op->lock);
	op->done = true;
	op->result = res;
	orphaned = op->orphaned;
	waker = op->waker;
	op->waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&op->lock);

	/* The waker is released only now, after the kernel is done with
	 * every buffer: it is what keeps the task's memory alive. */
	if (orphaned) {
		discard_result(op, res);
		weft_waker_drop(&waker);
	} else {
		weft_waker_wake(&waker);
	}
	op_unref(op);
}

/*
 * Chain an absolute IORING_OP_LINK_TIMEOUT to @sqe, the op's: if the op
 * is still running at its deadline the kernel cancels it (-ECANCELED,
 * reported as -ETIMEDOUT by complete_result). The kernel copies the
 * timespec when it takes the SQE. The timeout holds a record reference
 * until its own CQE (op.h).
 */
static void link_deadline(struct weft__driver *d, struct weft__op *op,
			  struct io_uring_sqe *sqe)
{
	struct io_uring_sqe *lt;

	sqe->flags |= IOSQE_IO_LINK;
	lt = weft__ring_sqe(&d->ring); /* reserved by op_submit */
	op->link_ts.tv_sec = (long long)(op->deadline / 1000000000u);
	op->link_ts.tv_nsec = (long long)(op->deadline % 1000000000u);
	io_uring_prep_link_timeout(lt, &op->link_ts, IORING_TIMEOUT_ABS);
	io_uring_sqe_set_data64(lt, (uint64_t)(uintptr_t)op | WEFT__UD_LINK);
	op_ref(op);
	d->ring.inflight++;
}

/* An SQE taken from the ring that must not run after all (its prep
 * failed): a NOP whose CQE is never posted and names no record. */
static void nop_out(struct io_uring_sqe *sqe)
{
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, WEFT__UD_IGNORE);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

bool weft__op_is_orphaned(struct weft__op *op)
{
	bool o;

	weft__spin_lock(&op->lock);
	o = op->orphaned;
	weft__spin_unlock(&op->lock);
	return o;
}

/*
 * Owner, in the reap: instead of completing with @res, retry @op after
 * @ms. The timeout's user_data is the op's own, so a cancel of the op
 * (a drop) cancels the wait. It never outlasts the op's deadline. False:
 * the op is orphaned, complete it now.
 */
bool weft__op_start_backoff(struct weft__driver *d, struct weft__op *op,
			    uint32_t ms)
{
	uint64_t ns = (uint64_t)ms * 1000000u;

	if (weft__op_is_orphaned(op))
		return false;
	if (op->deadline) {
		uint64_t now = weft_now_ns();

		if (now >= op->deadline)
			return false;
		if (op->deadline - now < ns)
			ns = op->deadline - now;
	}
	op->retry_ts.tv_sec = (long long)(ns / 1000000000u);
	op->retry_ts.tv_nsec = (long long)(ns % 1000000000u);
	struct io_uring_sqe *sqe = weft__ring_sqe(&d->ring);
	io_uring_prep_timeout(sqe, &op->retry_ts, 0, 0);
	io_uring_sqe_set_data(sqe, op);
	op->phase = WEFT__PH_BACKOFF;
	d->ring.inflight++;
	WEFT__DRV_INC(d, accept_backoffs);
	return true;
}

/*
 * Owner: a CQE of @op's own user_data that may not be its result: the end
 * of a backoff (true: handled, the op was submitted again), or a failure
 * the kind backs off from (true: handled). *@res may be rewritten.
 */
static bool retry_or_backoff(struct weft__driver *d, struct weft__op *op,
			     int32_t *res)
{
	if (op->phase == WEFT__PH_BACKOFF) {
		op->phase = WEFT__PH_ARMED;
		/* -ECANCELED: dropped while it waited. The caller counts
		 * this CQE (the timeout's) off as the op's. */
		if (*res != -ETIME || weft__op_is_orphaned(op)) {
			*res = -ECANCELED;
			return false;
		}
		int err = weft__op_resubmit(d, op);
		if (err) {
			*res = err;
			return false;
		}
		d->ring.inflight--; /* the timeout's; the new SQE counts */
		return true;
	}
	if (*res < 0 && op->kind->backoff) {
		uint32_t ms = op->kind->backoff(op, *res);

		if (ms && weft__op_start_backoff(d, op, ms)) {
			d->ring.inflight--; /* the op's; the timeout counts */
			return true;
		}
	}
	return false;
}

int weft__op_resubmit(struct weft__driver *d, struct weft__op *op)
{
	struct io_uring_sqe *sqe;
	int err;

	if (op->deadline)
		weft__ring_reserve(&d->ring, 2);
	sqe = weft__ring_sqe(&d->ring);
	err = op->kind->reprep(op, sqe);
	if (err) {
		nop_out(sqe);
		return err;
	}
	io_uring_sqe_set_data(sqe, op);
	op->phase = WEFT__PH_ARMED;
	d->ring.inflight++;
	WEFT__DRV_INC(d, ops_submitted);
	if (op->deadline)
		link_deadline(d, op, sqe);
	return 0;
}

/* Fill and submit @op on @d's ring. 0, or a negative errno for a failure
 * that happened before anything reached the kernel. */
static int op_submit(struct weft__driver *d, struct weft__op *op,
		     const weft_io *io)
{
	struct io_uring_sqe *sqe;

	/* The op and its link timeout must reach the kernel together: a
	 * chain cut by a submit in between would run without deadline. */
	if (op->deadline)
		weft__ring_reserve(&d->ring, 2);
	sqe = weft__ring_sqe(&d->ring);
	int err = op->kind->prep(op, sqe, io);

	if (err == -ENOBUFS && op->kind->multishot) {
		/* A stream with no buffer to receive into yet: it waits for
		 * one on the driver's list instead of failing. */
		nop_out(sqe);
		weft__ms_starve(d, op);
		return 0;
	}
	if (err) {
		/* The SQE is already taken from the ring: make it a NOP
		 * whose (ignored) CQE names no record. */
		nop_out(sqe);
		return err;
	}
	io_uring_sqe_set_data(sqe, op);
	d->ring.inflight++;
	WEFT__DRV_INC(d, ops_submitted);
	if (op->deadline)
		link_deadline(d, op, sqe);
	return 0;
}

/* The future's result from the CQE's @res. The kernel reports an op its
 * linked timeout cancelled as -ECANCELED, and the timeout fires no sooner
 * than the deadline; weft itself cancels only orphans, whose result nobody
 * reads. A cancel before the deadline (the kernel's own, at ring exit)
 * stays -ECANCELED. */
static int64_t complete_result(struct weft__op *op, int32_t res)
{
	if (res == -ECANCELED && op->deadline &&
	    weft_now_ns() >= op->deadline) {
		if (op->kind->discard)
			op->kind->discard(op, res);
		return -ETIMEDOUT;
	}
	return op->kind->complete ? op->kind->complete(op, res) : res;
}

static weft_poll io_ready(weft_io *io, int64_t *res, int64_t value)
{
	io->_done = 1;
	if (res)
		*res = value;
	return WEFT_READY;
}

struct weft__op *weft__op_start(weft_io *io, weft_cx *cx, int *errp)
{
	struct weft__driver *d = weft__driver_current();

	*errp = -EPERM;
	if (!d)
		return NULL;
	*errp = -ENOMEM;
	struct weft__op *op = malloc(sizeof(*op) + io->_kind->extra);
	if (!op)
		return NULL;
	memset(op, 0, offsetof(struct weft__op, link_ts));
	if (io->_kind->extra)
		memset(op->big, 0, io->_kind->extra);
	atomic_init(&op->refs, 2); /* the driver's and the future's */
	weft__spin_init(&op->lock);
	op->kind = io->_kind;
	op->owner = d;
	op->fd = -1;
	op->deadline = io->_arg[WEFT__ARG_DEADLINE];
	/* Before the SQE can reach the kernel (a full SQ submits inside
	 * weft__ring_sqe): the CQE may be reaped by the next turn. */
	op->waker = weft_waker_clone(cx->waker);
	int err = op_submit(d, op, io);
	if (err) {
		weft_waker_drop(&op->waker);
		*errp = err;
		atomic_store_explicit(&op->refs, 1, memory_order_relaxed);
		weft__op_unref(op);
		return NULL;
	}
	weft__io_set_op(io, op);
	return op;
}

/* First poll: create the record and submit. */
static weft_poll io_start(weft_io *io, weft_cx *cx, int64_t *res)
{
	int err;

	if (!weft__op_start(io, cx, &err))
		return io_ready(io, res, err);
	return WEFT_PENDING;
}

WEFT_API weft_poll weft_io_poll(weft_io *io, weft_cx *cx, int64_t *res)
{
	if (!io || !cx) { /* NULL rule (core.h): nothing is touched */
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	if (io->_magic != WEFT__IO_MAGIC || io->_done)
		return io_ready(io, res, -EINVAL);
	if (!io->_kind) /* the prep failed: report its error */
		return io_ready(io, res, io->_fd);
	if (io->_kind->multishot) /* a stream: polled through its next */
		return io_ready(io, res, -EINVAL);
	if (io->_kind->poll) { /* not a ring op (a sleep) */
		int64_t v;

		if (io->_kind->poll(io, cx, &v) == WEFT_PENDING)
			return WEFT_PENDING;
		weft__io_set_op(io, NULL);
		return io_ready(io, res, v);
	}

	if (!weft__io_in_flight(io))
		return io_start(io, cx, res);
	struct weft__op *op = io->_op;

	/* The owner's reap may run concurrently on another thread. The op
	 * fields other than those under the lock are immutable by now. */
	weft_waker old = WEFT_WAKER_EMPTY;
	weft__spin_lock(&op->lock);
	if (!op->done) {
		old = weft__waker_store(&op->waker, cx->waker);
		weft__spin_unlock(&op->lock);
		/* Dropping may free a task: not under the spinlock. */
		weft_waker_drop(&old);
		return WEFT_PENDING;
	}
	int32_t r = op->result;
	weft__spin_unlock(&op->lock);

	int64_t v = complete_result(op, r);
	weft__io_set_op(io, NULL);
	op_unref(op);
	return io_ready(io, res, v);
}

static WEFT__TLS unsigned sync_drops;

void weft__io_sync_drops(bool on)
{
	if (on)
		sync_drops++;
	else
		sync_drops--;
}

/*
 * Wait until the kernel is done with orphaned @op (its CQE was handled):
 * turn this thread's own ring meanwhile, which is the owner's or may hold
 * cancels the owner's thread waits for in turn (two workers waiting on
 * each other's rings both make progress).
 */
static void wait_done(struct weft__op *op)
{
	struct weft__driver *d = weft__driver_current();

	for (unsigned spins = 0;; spins++) {
		bool done;

		weft__spin_lock(&op->lock);
		done = op->done;
		weft__spin_unlock(&op->lock);
		if (done)
			return;
		if (d)
			weft__driver_turn(d);
		if (spins >= 64)
			sched_yield();
	}
}

WEFT_API void weft_io_drop(weft_io *io)
{
	if (!io || !weft__io_in_flight(io))
		return;
	if (io->_kind && io->_kind->multishot) {
		weft__ms_drop(io);
		return;
	}
	if (io->_kind && io->_kind->drop) { /* not a ring op (a sleep) */
		io->_kind->drop(io);
		weft__io_set_op(io, NULL);
		io->_done = 1;
		return;
	}
	struct weft__op *op = io->_op;
	weft__io_set_op(io, NULL);
	io->_done = 1;

	weft__spin_lock(&op->lock);
	if (op->done) {
		int32_t r = op->result;
		weft__spin_unlock(&op->lock);
		discard_result(op, r);
		op_unref(op);
		return;
	}
	/* The waker stays with the record until the CQE (op.h). */
	op->orphaned = true;
	weft__spin_unlock(&op->lock);

	weft__op_cancel(op);
	if (sync_drops)
		wait_done(op);
	op_unref(op);
}

void weft__op_cancel(struct weft__op *op)
{
	/* Cancel on the op's own ring. The cancel reference keeps the record
	 * (and so the user_data the cancel names) alive until the cancel's
	 * CQE. */
	struct weft__driver *d = weft__driver_current();
	op_ref(op);
	if (d == op->owner) {
		weft__op_submit_cancel(d, op);
	} else {
		weft__inbox_push(&op->owner->inbox, &op->inbox_entry);
		atomic_fetch_add_explicit(&op->owner->m.remote_cancels, 1,
					  memory_order_relaxed);
		weft__driver_unpark(op->owner);
	}
}

WEFT_API bool weft_io_is_done(const weft_io *io)
{
	return io && io->_done != 0;
}

int weft__io_prep(weft_io *io, const struct weft__op_kind *kind, int fd)
{
	if (!io)
		return -EINVAL;
	/* An op in flight is neither leaked nor silently cancelled: the
	 * caller drops it first if it means to replace it. */
	if (weft__io_in_flight(io))
		return -EBUSY;
	memset(io, 0, sizeof(*io));
	io->_magic = WEFT__IO_MAGIC;
	io->_kind = kind;
	io->_fd = fd;
	return 0;
}

int weft__io_prep_buf(weft_io *io, const struct weft__op_kind *kind, int fd,
		      const void *buf, size_t len)
{
	int err = weft__io_prep(io, kind, fd);

	if (err)
		return err;
	if (!buf && len)
		return weft__io_prep_fail(io, -EINVAL);
	io->_arg[WEFT__ARG_BUF] = (uint64_t)(uintptr_t)buf;
	io->_arg[WEFT__ARG_LEN] = len > WEFT_IO_MAX_LEN ? WEFT_IO_MAX_LEN : len;
	return 0;
}

WEFT_API int weft_io_set_deadline(weft_io *io, uint64_t deadline_ns)
{
	if (!io || io->_magic != WEFT__IO_MAGIC)
		return -EINVAL;
	if (weft__io_in_flight(io))
		return -EBUSY;
	if (!io->_kind || io->_kind->poll || io->_kind->multishot || io->_done)
		return -EINVAL;
	/* 0 means "none" in the record: the epoch is long past anyway. */
	io->_arg[WEFT__ARG_DEADLINE] = deadline_ns ? deadline_ns : 1;
	return 0;
}

WEFT_API int weft_io_set_timeout(weft_io *io, uint64_t ns)
{
	return weft_io_set_deadline(io, weft__deadline_in(ns));
}

int weft__io_prep_fail(weft_io *io, int err)
{
	io->_kind = NULL;
	io->_fd = err;
	return err;
}

static weft_poll io_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_io_poll(self, cx, out);
}

static void io_desc_drop(void *self)
{
	weft_io_drop(self);
}

WEFT_API const weft_future_desc weft_io_desc = {
	.poll = io_desc_poll,
	.drop = io_desc_drop,
	.size = sizeof(weft_io),
	.output_size = sizeof(int64_t),
};
