/* SPDX-License-Identifier: MIT */
/*
 * Sleep futures: a weft_io whose kind is not a ring op but a timer on the
 * polling worker's wheel (timers.h). io->_op holds the timer while it is
 * armed; _arg holds the deadline and the wheel that owns the timer.
 */
#include <errno.h>

#include <weft/time.h>

#include "io/op.h"
#include "time/timers.h"

enum { ARG_DEADLINE, ARG_OWNER };

static struct weft__timers *owner_of(const weft_io *io)
{
	return (struct weft__timers *)(uintptr_t)io->_arg[ARG_OWNER];
}

static weft_poll sleep_poll(weft_io *io, weft_cx *cx, int64_t *res)
{
	struct weft__timer *tm = (struct weft__timer *)io->_op;

	if (weft__io_in_flight(io)) {
		struct weft__timers *owner = owner_of(io);

		if (!weft__timer_poll(owner, tm, cx->waker))
			return WEFT_PENDING;
		weft__timer_release(owner, tm);
		*res = 0;
		return WEFT_READY;
	}
	/* First poll. */
	struct weft__timers *t = weft__timers_current();
	if (!t) {
		*res = -EPERM; /* as every op off a worker */
		return WEFT_READY;
	}
	uint64_t deadline = io->_arg[ARG_DEADLINE];
	if (weft_now_ns() >= deadline) {
		*res = 0;
		return WEFT_READY;
	}
	tm = weft__timer_arm(t, deadline, cx->waker);
	if (!tm) {
		*res = -ENOMEM;
		return WEFT_READY;
	}
	io->_arg[ARG_OWNER] = (uint64_t)(uintptr_t)t;
	weft__io_set_op(io, (struct weft__op *)tm);
	return WEFT_PENDING;
}

static void sleep_drop(weft_io *io)
{
	weft__timer_release(owner_of(io), (struct weft__timer *)io->_op);
}

static const struct weft__op_kind sleep_kind = {
	.poll = sleep_poll, .drop = sleep_drop,
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
	return weft_io_prep_sleep_until(io, weft__deadline_in(ns));
}
