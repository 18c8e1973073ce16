/* SPDX-License-Identifier: MIT */
#include <weft/task.h>

WEFT_API weft_poll weft_yield_poll(weft_yield *y, weft_cx *cx)
{
	/* NULL: see core.h. Without @cx no wake can be arranged, so PENDING
	 * would hang the caller. */
	if (!y || !cx || y->yielded)
		return WEFT_READY;
	y->yielded = 1;
	/* Waking ourselves while RUNNING only sets NOTIFIED; the worker then
	 * re-queues the task at the back of its queue (weft__sched_yield),
	 * never in the LIFO slot. */
	weft_waker_wake_by_ref(cx->waker);
	return WEFT_PENDING;
}

static weft_poll yield_desc_poll(void *self, weft_cx *cx, void *out)
{
	(void)out;
	return weft_yield_poll(self, cx);
}

WEFT_API const weft_future_desc weft_yield_desc = {
	.poll = yield_desc_poll,
	.size = sizeof(weft_yield),
	.output_size = 0,
};
