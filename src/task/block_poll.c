/* SPDX-License-Identifier: MIT */
/*
 * weft__block_poll: run a future that needs no worker (a channel or sync
 * wait) to completion on the calling plain thread, over a parker. The
 * blocking calls of the channels and of the JoinSet use it.
 */
#include <errno.h>

#include "task/hooks.h"
#include "task/parker.h"

int weft__block_poll(const weft_future_desc *desc, void *state, void *out)
{
	if (weft__sched_on_worker())
		return -EDEADLK;
	struct weft__parker *p = weft__parker_new();
	if (!p)
		return -ENOMEM;

	weft_waker waker = weft__parker_waker(p);
	weft_cx cx;
	weft_cx_init(&cx, &waker);
	while (desc->poll(state, &cx, out) == WEFT_PENDING)
		weft__parker_wait(p);
	if (desc->drop)
		desc->drop(state);
	weft_waker_drop(&waker);
	weft__parker_unref(p);
	return 0;
}
