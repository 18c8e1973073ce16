/* SPDX-License-Identifier: MIT */
/* weft_spawn: the task layer allocates, the scheduler queues. */
#include <errno.h>

#include <weft/task.h>

#include "sched/runtime.h"
#include "task/task.h"

WEFT_API int weft_spawn(weft_runtime *rt, const weft_future_desc *desc,
			const void *init, weft_join **join)
{
	struct weft__task *t;

	if (!rt) {
		rt = weft_runtime_current();
		if (!rt)
			return -EINVAL;
	}
	int err = weft__task_new(rt, desc, init, join != NULL, &t);
	if (err)
		return err;
	if (join)
		*join = (weft_join *)t;
	weft__sched_spawn(rt, t);
	return 0;
}
