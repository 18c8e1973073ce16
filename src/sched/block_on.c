/* SPDX-License-Identifier: MIT */
/*
 * weft_block_on: only workers own rings, so the future runs as a task and
 * the calling thread sleeps on a parker until the join handle is ready.
 */
#include <errno.h>

#include <weft/task.h>

#include "task/parker.h"
#include "sched/runtime.h"
#include "task/hooks.h"

WEFT_API int weft_block_on(weft_runtime *rt, const weft_future_desc *desc,
			   const void *init, void *out)
{
	weft_join *join;
	int status = 0, err;

	if (!rt || !desc)
		return -EINVAL;
	if (weft__worker_current())
		return -EDEADLK;
	struct weft__parker *p = weft__parker_new();
	if (!p)
		return -ENOMEM;
	err = weft_spawn(rt, desc, init, &join);
	if (err) {
		weft__parker_unref(p);
		return err;
	}

	weft_waker waker = weft__parker_waker(p);
	weft_cx cx;
	weft_cx_init(&cx, &waker);
	while (weft_join_poll(join, &cx, &status, out) == WEFT_PENDING)
		weft__parker_wait(p);

	weft_join_drop(join);
	weft_waker_drop(&waker);
	weft__parker_unref(p);
	return status;
}

bool weft__sched_on_worker(void)
{
	return weft__worker_current() != NULL;
}
