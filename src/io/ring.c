/* SPDX-License-Identifier: MIT */
/*
 * A worker's io_uring. Setup probes the best mode the kernel accepts:
 *   1. SINGLE_ISSUER | DEFER_TASKRUN (6.1+): completions are posted only
 *      when the owner enters the kernel, which it does in batches;
 *   2. COOP_TASKRUN | TASKRUN_FLAG (5.19+): no IPI to interrupt the owner;
 *   3. plain.
 * Only -EINVAL (flag unknown to this kernel) moves down the list; any other
 * error (EPERM under seccomp, ENOMEM from the memlock limit, ENOSYS) is
 * returned as is. The ring's opcodes and features are then probed
 * (io/probe.h) for the rungs the op kinds take.
 *
 * CQ overflow: a completion that finds the CQ full goes to the kernel's
 * overflow list (IORING_FEAT_NODROP) and is flushed back into the CQ by
 * the next enter with GETEVENTS, which liburing makes whenever the kernel
 * raises IORING_SQ_CQ_OVERFLOW. weft__ring_flush does that even with
 * nothing to submit; the driver reaps after each flush, so a CQ of 8
 * entries drains 10,000 completions in turns (tests/io_cq_overflow.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "internal.h"
#include "io/probe.h"
#include "io/ring.h"

static int try_setup(struct weft__ring *r, unsigned entries, unsigned flags)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	p.flags = flags | IORING_SETUP_CQSIZE;
	if (r->cq_entries) {
		/* Checked against the kernel's limits by weft_runtime_new. */
		p.cq_entries = r->cq_entries;
	} else {
		/* A large CQ: every connection may have a recv in flight.
		 * CLAMP: a large ring_entries caps at the kernel's maximum
		 * instead of failing. */
		p.flags |= IORING_SETUP_CLAMP;
		p.cq_entries = entries * 16;
	}
	return io_uring_queue_init_params(entries, &r->uring, &p);
}

int weft__ring_init(struct weft__ring *r, unsigned entries, unsigned flags,
		    unsigned *mode_out)
{
	unsigned cq_entries = r->cq_entries;
	int err = -EINVAL;

	memset(r, 0, sizeof(*r));
	r->cq_entries = cq_entries;
	r->eventfd = -1;
#if HAVE_DECL_IORING_SETUP_DEFER_TASKRUN && HAVE_DECL_IORING_SETUP_SINGLE_ISSUER
	if (!(flags & (WEFT_RT_NO_DEFER_TASKRUN | WEFT_RT_NO_COOP_TASKRUN))) {
		/* TASKRUN_FLAG (6.1+ with DEFER_TASKRUN): the kernel raises
		 * IORING_SQ_TASKRUN when completions wait for us to enter, so
		 * a turn with nothing to submit and nothing waiting makes no
		 * syscall (weft__ring_flush). */
		err = try_setup(r, entries, IORING_SETUP_SINGLE_ISSUER |
						    IORING_SETUP_DEFER_TASKRUN |
						    IORING_SETUP_TASKRUN_FLAG);
		if (!err)
			r->taskrun_flag = true;
		else if (err == -EINVAL)
			err = try_setup(r, entries,
					IORING_SETUP_SINGLE_ISSUER |
						IORING_SETUP_DEFER_TASKRUN);
		if (!err)
			*mode_out = WEFT_RING_DEFER_TASKRUN;
	}
#endif
#if HAVE_DECL_IORING_SETUP_COOP_TASKRUN && HAVE_DECL_IORING_SETUP_TASKRUN_FLAG
	if (err == -EINVAL && !(flags & WEFT_RT_NO_COOP_TASKRUN)) {
		err = try_setup(r, entries, IORING_SETUP_COOP_TASKRUN |
						    IORING_SETUP_TASKRUN_FLAG);
		if (!err)
			*mode_out = WEFT_RING_COOP_TASKRUN;
	}
#endif
	if (err == -EINVAL) {
		err = try_setup(r, entries, 0);
		if (!err)
			*mode_out = WEFT_RING_PLAIN;
	}
	if (err)
		return err;
	r->mode = *mode_out;

	/* Blocking on purpose: io_uring returns -EAGAIN at once for an
	 * O_NONBLOCK file instead of waiting for it to become readable. */
	r->eventfd = eventfd(0, EFD_CLOEXEC);
	if (r->eventfd < 0) {
		err = -errno;
		io_uring_queue_exit(&r->uring);
		return err;
	}
	r->features = weft__probe_features(&r->uring, flags);
	return 0;
}

void weft__ring_exit(struct weft__ring *r)
{
	/* The armed eventfd read is cancelled by the ring's teardown; a
	 * cancelled read writes nothing into efd_buf. */
	io_uring_queue_exit(&r->uring);
	if (r->eventfd >= 0)
		close(r->eventfd);
	r->eventfd = -1;
}

/* Submit what is queued to make room in the SQ. */
static void make_room(struct weft__ring *r)
{
	int ret = io_uring_submit(&r->uring);

	/* -EBUSY/-EAGAIN: the CQ is backed up; reaping happens in the
	 * caller's loop, but the SQ must drain first. Flushing completions
	 * into the overflow list makes room. */
	if (ret < 0 && ret != -EINTR)
		io_uring_get_events(&r->uring);
	r->unsubmitted = 0;
}

struct io_uring_sqe *weft__ring_sqe(struct weft__ring *r)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->uring)))
		make_room(r);
	r->unsubmitted++;
	return sqe;
}

void weft__ring_reserve(struct weft__ring *r, unsigned n)
{
	while (io_uring_sq_space_left(&r->uring) < n)
		make_room(r);
}

void weft__ring_flush(struct weft__ring *r)
{
	/* Completions wait for us to enter: overflowed CQEs only come back
	 * after an enter, and with TASKRUN_FLAG (COOP_TASKRUN, or
	 * DEFER_TASKRUN on 6.1+) the kernel raises SQ_TASKRUN for them. */
	bool waiting = IO_URING_READ_ONCE(*r->uring.sq.kflags) &
		       (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
	int ret;

	if (r->mode == WEFT_RING_DEFER_TASKRUN &&
	    (r->unsubmitted || waiting || !r->taskrun_flag)) {
		ret = io_uring_submit_and_get_events(&r->uring);
	} else if (r->unsubmitted) {
		ret = io_uring_submit(&r->uring);
	} else {
		if (waiting)
			io_uring_get_events(&r->uring);
		return;
	}
	/* EINTR/EBUSY/EAGAIN: nothing lost, the SQEs stay queued for the
	 * next flush. */
	if (ret >= 0)
		r->unsubmitted = 0;
}

void weft__ring_wait(struct weft__ring *r, uint64_t timeout_ns)
{
	struct __kernel_timespec ts;
	int ret;

	/* Ignoring EINTR and ETIME is safe here: the caller re-checks its
	 * queues and parks again (retrying EINTR in a loop here, without that
	 * re-check, could hang; docs/design.md, Testing). */
	if (timeout_ns == UINT64_MAX) {
		ret = io_uring_submit_and_wait(&r->uring, 1);
	} else {
		struct io_uring_cqe *cqe;

		ts.tv_sec = (long long)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long long)(timeout_ns % 1000000000u);
		/* Submits what is prepared, then waits (EXT_ARG, 5.11+). */
		ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts,
						       NULL);
	}
	if (ret >= 0 || ret == -ETIME)
		r->unsubmitted = 0;
}

void weft__ring_arm_eventfd(struct weft__ring *r)
{
	if (r->efd_armed)
		return;
	struct io_uring_sqe *sqe = weft__ring_sqe(r);
	io_uring_prep_read(sqe, r->eventfd, &r->efd_buf, sizeof(r->efd_buf), 0);
	io_uring_sqe_set_data64(sqe, WEFT__UD_EVENTFD);
	r->efd_armed = true;
}

void weft__ring_signal_eventfd(struct weft__ring *r)
{
	uint64_t one = 1;

	/* Cannot block (the counter would need to reach 2^64-2) and cannot
	 * fail on a valid eventfd; a failure would only mean a lost unpark
	 * of a runtime being torn down. */
	if (write(r->eventfd, &one, sizeof(one)) < 0)
		return;
}

void weft__ring_msg(struct weft__ring *from, int to_fd)
{
#if HAVE_DECL_IO_URING_PREP_MSG_RING
	struct io_uring_sqe *sqe = weft__ring_sqe(from);

	io_uring_prep_msg_ring(sqe, to_fd, 0, WEFT__UD_UNPARK, 0);
	io_uring_sqe_set_data64(sqe, WEFT__UD_IGNORE);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	/* The target sleeps until this is submitted: do it now. */
	if (io_uring_submit(&from->uring) >= 0)
		from->unsubmitted = 0;
#else
	(void)from;
	(void)to_fd;
#error "liburing without io_uring_prep_msg_ring (need 2.2+)"
#endif
}
