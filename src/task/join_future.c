/* SPDX-License-Identifier: MIT */
/* A join handle as a generic future (weft_join_future, weft/task.h). */
#include <weft/task.h>

static weft_poll join_future_poll(void *self, weft_cx *cx, void *out)
{
	weft_join_future *f = self;

	return weft_join_poll(f->join, cx, out, f->value);
}

static void join_future_drop(void *self)
{
	weft_join_future *f = self;

	weft_join_drop(f->join);
	f->join = NULL;
}

WEFT_API const weft_future_desc weft_join_future_desc = {
	.poll = join_future_poll,
	.drop = join_future_drop,
	.size = sizeof(weft_join_future),
	.output_size = sizeof(int),
};
