/* SPDX-License-Identifier: MIT */
/*
 * weft_timeout: a biased select of the inner future and a sleep. The arms
 * point into the weft_timeout itself, so they are set up at the first poll
 * (from then on the state does not move; weft/future.h), not at init: a
 * weft_timeout may be initialised and then copied into a task.
 */
#include <errno.h>
#include <string.h>

#include <weft/time.h>

#include "internal.h"

enum { T_PREPARED = 1, T_RUNNING, T_DONE };

WEFT_API int weft_timeout_init_until(weft_timeout *t,
				     const weft_future *inner,
				     uint64_t deadline_ns)
{
	if (!t || !inner || !inner->desc || !inner->desc->poll)
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	t->_inner = *inner;
	t->_deadline = deadline_ns;
	t->_state = T_PREPARED;
	return 0;
}

WEFT_API int weft_timeout_init(weft_timeout *t, const weft_future *inner,
			       uint64_t ns)
{
	return weft_timeout_init_until(t, inner, weft__deadline_in(ns));
}

static weft_poll done(weft_timeout *t, int *res, int value)
{
	t->_state = T_DONE;
	t->_result = value;
	if (res)
		*res = value;
	return WEFT_READY;
}

WEFT_API weft_poll weft_timeout_poll(weft_timeout *t, weft_cx *cx, int *res)
{
	size_t winner;

	if (!t || !cx || !t->_state) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	if (t->_state == T_DONE) {
		if (res)
			*res = t->_result;
		return WEFT_READY;
	}
	if (t->_state == T_PREPARED) {
		int err = weft_io_prep_sleep_until(&t->_sleep, t->_deadline);

		if (!err)
			err = weft_future_init(&t->_arms[1], &weft_io_desc,
					       &t->_sleep, &t->_sleep_res);
		t->_arms[0] = t->_inner;
		if (!err)
			err = weft_select_init(&t->_select, t->_arms, 2);
		if (err) {
			weft_future_drop(&t->_arms[0]);
			return done(t, res, err);
		}
		t->_state = T_RUNNING;
	}
	if (weft_select_poll(&t->_select, cx, &winner) == WEFT_PENDING)
		return WEFT_PENDING;
	if (winner == 0)
		return done(t, res, 0);
	/* The sleep won: the deadline passed, or the sleep failed. */
	return done(t, res, t->_sleep_res == 0 ? -ETIMEDOUT
					       : (int)t->_sleep_res);
}

WEFT_API void weft_timeout_drop(weft_timeout *t)
{
	if (!t)
		return;
	if (t->_state == T_PREPARED)
		weft_future_drop(&t->_inner); /* drop runs once, polled or not */
	else if (t->_state == T_RUNNING)
		weft_select_drop(&t->_select);
	if (t->_state)
		t->_state = T_DONE;
}

static weft_poll timeout_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_timeout_poll(self, cx, out);
}

static void timeout_desc_drop(void *self)
{
	weft_timeout_drop(self);
}

WEFT_API const weft_future_desc weft_timeout_desc = {
	.poll = timeout_desc_poll,
	.drop = timeout_desc_drop,
	.size = sizeof(weft_timeout),
	.output_size = sizeof(int),
};
