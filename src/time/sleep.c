/* SPDX-License-Identifier: MIT */
/*
 * Sleep futures: an absolute IORING_OP_TIMEOUT per sleep on the polling
 * worker's ring, so the kernel's hrtimer decides when it fires and it never
 * fires early. A per-worker timer wheel driven by one ring timeout is the
 * planned replacement when many timers are live (docs/design.md).
 */
#include <errno.h>
#include <time.h>

#include <weft/time.h>

#include "io/op.h"

enum { ARG_DEADLINE };

WEFT_API uint64_t weft_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int sleep_prep(struct weft__op *op, struct io_uring_sqe *sqe,
		      const weft_io *io)
{
	uint64_t ns = io->_arg[ARG_DEADLINE];

	op->u.ts.tv_sec = (long long)(ns / 1000000000u);
	op->u.ts.tv_nsec = (long long)(ns % 1000000000u);
	/* Absolute on CLOCK_MONOTONIC (the default clock), so the deadline
	 * does not move with submission latency. */
	io_uring_prep_timeout(sqe, &op->u.ts, 0, IORING_TIMEOUT_ABS);
	return 0;
}

/* An expired timeout completes with -ETIME: that is the sleep's success. */
static int64_t sleep_complete(struct weft__op *op, int32_t res)
{
	(void)op;
	return res == -ETIME ? 0 : res;
}

static const struct weft__op_kind sleep_kind = {
	.prep = sleep_prep, .complete = sleep_complete,
};

WEFT_API int weft_io_prep_sleep_until(weft_io *io, uint64_t deadline_ns)
{
	int err = weft__io_prep(io, &sleep_kind, -1);

	if (err)
		return err;
	io->_arg[ARG_DEADLINE] = deadline_ns;
	return 0;
}

WEFT_API int weft_io_prep_sleep(weft_io *io, uint64_t ns)
{
	uint64_t now = weft_now_ns();
	uint64_t deadline = now + ns;

	if (deadline < now) /* saturate rather than wrap into the past */
		deadline = UINT64_MAX;
	return weft_io_prep_sleep_until(io, deadline);
}
