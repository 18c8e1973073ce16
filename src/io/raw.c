/* SPDX-License-Identifier: MIT */
/*
 * The raw op kind (weft_io_prep_raw): the caller fills the SQE, weft
 * checks it, owns its user_data and submits it like any op. The checks
 * keep the driver's invariant that an op record gets exactly one CQE
 * carrying its address (ring.h: user_data encoding): a second CQE for a
 * record would be handled after the record was freed.
 */
#include <errno.h>
#include <string.h>

#include <weft/io.h>

#include "io/op.h"

/* Flags and opcodes newer than liburing 2.3's headers, by their kernel
 * values (include/uapi/linux/io_uring.h). */
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6) /* 6.4 */
#endif
#define RAW_OP_READ_MULTISHOT 49 /* IORING_OP_READ_MULTISHOT, 6.7 */
#define RAW_OP_RECV_ZC 58        /* IORING_OP_RECV_ZC, 6.15: multishot only */

/* Arguments in weft_io._arg. */
enum { ARG_FILL = 0, ARG_ARG = 1 };

_Static_assert(sizeof(weft_io_raw_fill) <= sizeof(uint64_t),
	       "a function pointer fits an argument word");

/*
 * SQE flags that leave one SQE, one CQE, named by weft's user_data.
 * Not IOSQE_IO_DRAIN: the kernel refuses it (-EOPNOTSUPP) on a ring that
 * has seen IOSQE_CQE_SKIP_SUCCESS, which weft's own SQEs use (MSG_RING
 * unparks), so it would work or not by the ring's history.
 */
#define RAW_FLAGS_OK IOSQE_ASYNC

/* 0, or -EINVAL for an SQE whose CQEs weft could not account for. */
static int raw_check(const struct io_uring_sqe *sqe)
{
	if (sqe->flags & ~RAW_FLAGS_OK)
		return -EINVAL;
	switch (sqe->opcode) {
	case IORING_OP_ACCEPT:
		return sqe->ioprio & IORING_ACCEPT_MULTISHOT ? -EINVAL : 0;
	case IORING_OP_RECV:
	case IORING_OP_RECVMSG:
		return sqe->ioprio & IORING_RECV_MULTISHOT ? -EINVAL : 0;
	case IORING_OP_POLL_ADD:
		return sqe->len & IORING_POLL_ADD_MULTI ? -EINVAL : 0;
	case IORING_OP_TIMEOUT:
		return sqe->timeout_flags & IORING_TIMEOUT_MULTISHOT ? -EINVAL
								      : 0;
	case IORING_OP_SEND_ZC:
	case IORING_OP_SENDMSG_ZC:
	case RAW_OP_READ_MULTISHOT:
	case RAW_OP_RECV_ZC:
		return -EINVAL;
	default:
		return 0;
	}
}

static int raw_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		    const weft_io *io)
{
	weft_io_raw_fill fill;
	void *arg = (void *)(uintptr_t)io->_arg[ARG_ARG];
	int err;

	(void)op;
	memcpy(&fill, &io->_arg[ARG_FILL], sizeof(fill));
	/* liburing hands out SQEs as the last submission left them: a fill
	 * that sets fields by hand must not inherit stale ones. */
	memset(sqe, 0, sizeof(*sqe));
	err = fill(sqe, arg);
	if (err)
		return err < 0 ? err : -EINVAL;
	/* user_data is set by op_submit after this returns; a rejected SQE
	 * is turned into a NOP there, flags included. */
	return raw_check(sqe);
}

static const struct weft__op_kind raw_kind = {
	.prep = raw_prep,
};

WEFT_API int weft_io_prep_raw(weft_io *io, weft_io_raw_fill fill, void *arg)
{
	int err = weft__io_prep(io, &raw_kind, -1);

	if (err)
		return err;
	if (!fill)
		return weft__io_prep_fail(io, -EINVAL);
	memcpy(&io->_arg[ARG_FILL], &fill, sizeof(fill));
	io->_arg[ARG_ARG] = (uint64_t)(uintptr_t)arg;
	return 0;
}
