/* SPDX-License-Identifier: MIT */
/*
 * Op futures (weft_io) and the driver: submission, completion, and
 * cancellation across workers. The record lifetime rule is in op.h.
 * C11 atomics for the reference count; weft__spinlock for the record.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/io.h>

#include "io/op.h"
#include "task/task.h"

static void op_ref(struct weft__op *op)
{
	/* Relaxed: the caller already holds a reference. */
	atomic_fetch_add_explicit(&op->refs, 1, memory_order_relaxed);
}

static void op_unref(struct weft__op *op)
{
	/* acq_rel: every holder's accesses happen before the free. */
	if (atomic_fetch_sub_explicit(&op->refs, 1, memory_order_acq_rel) == 1)
		free(op);
}

/* A result that reached nobody: release what it created. */
static void discard_result(struct weft__op *op, int32_t res)
{
	if (op->kind == WEFT__OP_ACCEPT && res >= 0)
		close(res);
	if (op->kind == WEFT__OP_CONNECT && op->fd >= 0)
		close(op->fd);
}

static void submit_cancel(struct weft__worker *w, struct weft__op *op)
{
	struct io_uring_sqe *sqe = weft__ring_sqe(&w->ring);

	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | WEFT__UD_CANCEL);
	w->ring.inflight++;
}

#if defined(WEFT_SANITIZE_ADDRESS)
#include <sanitizer/asan_interface.h>
/*
 * ASan cannot see the kernel writing into freed memory, so check the rule
 * it would otherwise miss: when a recv or send completes, its buffer must
 * still be live (op.h: the record keeps the task, where buffers live).
 */
static void check_buffer_alive(const struct weft__op *op, int32_t res)
{
	if ((op->kind == WEFT__OP_RECV || op->kind == WEFT__OP_SEND) &&
	    res > 0 && __asan_region_is_poisoned(op->buf, (size_t)res))
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

static void op_complete(struct weft__worker *w, struct weft__op *op,
			int32_t res)
{
	weft_waker waker;
	bool orphaned;

	check_buffer_alive(op, res);
	w->ring.inflight--;
	WEFT__METRIC_INC(w, ops_completed);
	weft__spin_lock(&op->lock);
	op->done = true;
	op->result = res;
	orphaned = op->orphaned;
	waker = op->waker;
	op->waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&op->lock);

	if (orphaned)
		discard_result(op, res);
	else
		weft_waker_wake(&waker);
	if (op->task)
		weft__task_unref(op->task);
	op_unref(op);
}

unsigned weft__op_reap(struct weft__worker *w)
{
	struct io_uring *ring = &w->ring.uring;
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(ring, head, cqe) {
		uint64_t ud = cqe->user_data;

		n++;
		if (ud < WEFT__UD_TAG_MAX) {
			if (ud == WEFT__UD_EVENTFD)
				w->ring.efd_armed = false;
			continue;
		}
		struct weft__op *op = (struct weft__op *)(uintptr_t)(
			ud & ~WEFT__UD_CANCEL);
		if (ud & WEFT__UD_CANCEL) {
			w->ring.inflight--;
			op_unref(op);
		} else {
			op_complete(w, op, cqe->res);
		}
	}
	io_uring_cq_advance(ring, n);
	return n;
}

bool weft__op_drive(struct weft__worker *w)
{
	if (!weft__inbox_empty(w)) {
		ck_stack_entry_t *e = weft__inbox_take_all(&w->inbox);
		while (e) {
			ck_stack_entry_t *next = e->next;
			/* The pusher took the cancel reference for us. */
			submit_cancel(w, (struct weft__op *)e);
			e = next;
		}
	}
	if (w->ring.unsubmitted || w->ring.inflight)
		weft__ring_flush(&w->ring);
	return weft__op_reap(w) > 0;
}

/* Fill and submit @op from @io on @w's ring. 0, or a negative errno for a
 * failure that happened before anything reached the kernel. */
static int op_submit(struct weft__worker *w, struct weft__op *op,
		     const weft_io *io)
{
	struct io_uring_sqe *sqe;
	uint64_t ns;

	if (op->kind == WEFT__OP_CONNECT) {
		memcpy(&op->u.addr, io->_addr, io->_addrlen);
		op->fd = socket(op->u.addr.sin6_family,
				SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (op->fd < 0)
			return -errno;
	}
	sqe = weft__ring_sqe(&w->ring);
	switch (op->kind) {
	case WEFT__OP_SLEEP:
		ns = io->_u.deadline_ns;
		op->u.ts.tv_sec = (long long)(ns / 1000000000u);
		op->u.ts.tv_nsec = (long long)(ns % 1000000000u);
		/* Absolute on CLOCK_MONOTONIC (the default clock), so the
		 * deadline does not move with submission latency. */
		io_uring_prep_timeout(sqe, &op->u.ts, 0, IORING_TIMEOUT_ABS);
		break;
	case WEFT__OP_ACCEPT:
		io_uring_prep_accept(sqe, io->_fd, NULL, NULL, SOCK_CLOEXEC);
		break;
	case WEFT__OP_CONNECT:
		io_uring_prep_connect(sqe, op->fd,
				      (const struct sockaddr *)&op->u.addr,
				      io->_addrlen);
		break;
	case WEFT__OP_RECV:
		op->buf = io->_u.rw.buf;
		io_uring_prep_recv(sqe, io->_fd, io->_u.rw.buf, io->_u.rw.len,
				   (int)io->_flags);
		break;
	case WEFT__OP_SEND:
		op->buf = io->_u.rw.buf;
		io_uring_prep_send(sqe, io->_fd, io->_u.rw.buf, io->_u.rw.len,
				   (int)io->_flags | MSG_NOSIGNAL);
		break;
	case WEFT__OP_CLOSE:
		io_uring_prep_close(sqe, io->_fd);
		break;
	default:
		weft__assert(!"op kind");
	}
	io_uring_sqe_set_data(sqe, op);
	w->ring.inflight++;
	WEFT__METRIC_INC(w, ops_submitted);
	return 0;
}

static weft_poll io_ready(weft_io *io, int64_t *res, int64_t value)
{
	io->_done = 1;
	if (res)
		*res = value;
	return WEFT_READY;
}

/* First poll: create the record and submit. */
static weft_poll io_start(weft_io *io, weft_cx *cx, int64_t *res)
{
	struct weft__worker *w = weft__worker_current();

	if (!w)
		return io_ready(io, res, -EPERM);
	struct weft__op *op = malloc(sizeof(*op));
	if (!op)
		return io_ready(io, res, -ENOMEM);
	memset(op, 0, offsetof(struct weft__op, u));
	atomic_init(&op->refs, 2); /* the driver's and the future's */
	weft__spin_init(&op->lock);
	op->kind = (enum weft__op_kind)io->_kind;
	op->owner = w;
	op->fd = -1;
	int err = op_submit(w, op, io);
	if (err) {
		free(op);
		return io_ready(io, res, err);
	}
	op->waker = weft_waker_clone(cx->waker);
	op->task = weft__task_current();
	if (op->task)
		weft__task_ref(op->task);
	io->_op = op;
	return WEFT_PENDING;
}

WEFT_API weft_poll weft_io_poll(weft_io *io, weft_cx *cx, int64_t *res)
{
	if (io->_done || io->_kind == WEFT__OP_NONE)
		return io_ready(io, res, -EINVAL);

	struct weft__op *op = io->_op;
	if (!op)
		return io_start(io, cx, res);

	/* The owner's reap may run concurrently on another worker. The op
	 * fields other than those under the lock are immutable by now. */
	weft_waker old = WEFT_WAKER_EMPTY;
	weft__spin_lock(&op->lock);
	if (!op->done) {
		if (!weft_waker_will_wake(&op->waker, cx->waker)) {
			old = op->waker;
			op->waker = weft_waker_clone(cx->waker);
		}
		weft__spin_unlock(&op->lock);
		/* Dropping may free a task: not under the spinlock. */
		weft_waker_drop(&old);
		return WEFT_PENDING;
	}
	int64_t r = op->result;
	weft__spin_unlock(&op->lock);

	if (op->kind == WEFT__OP_CONNECT) {
		if (r == 0)
			r = op->fd;
		else
			close(op->fd);
	} else if (op->kind == WEFT__OP_SLEEP && r == -ETIME) {
		r = 0;
	}
	io->_op = NULL;
	op_unref(op);
	return io_ready(io, res, r);
}

WEFT_API void weft_io_drop(weft_io *io)
{
	struct weft__op *op = io->_op;

	if (!op)
		return;
	io->_op = NULL;
	io->_done = 1;

	weft__spin_lock(&op->lock);
	if (op->done) {
		int32_t r = op->result;
		weft__spin_unlock(&op->lock);
		discard_result(op, r);
		op_unref(op);
		return;
	}
	op->orphaned = true;
	weft_waker old = op->waker;
	op->waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&op->lock);
	weft_waker_drop(&old);

	/* Cancel on the op's own ring. The cancel reference keeps the record
	 * (and so the user_data the cancel names) alive until the cancel's
	 * CQE. */
	struct weft__worker *w = weft__worker_current();
	op_ref(op);
	if (w == op->owner) {
		submit_cancel(w, op);
	} else {
		weft__inbox_push(&op->owner->inbox, &op->inbox_entry);
		if (w)
			WEFT__METRIC_INC(w, remote_cancels);
		weft__worker_unpark(op->owner);
	}
	op_unref(op);
}

WEFT_API bool weft_io_is_done(const weft_io *io)
{
	return io->_done != 0;
}
