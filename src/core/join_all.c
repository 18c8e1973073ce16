/* SPDX-License-Identifier: MIT */
/* weft_join_all: wait for every arm (future.h). */
#include <errno.h>

#include "core/future.h"

WEFT_API int weft_join_all_init(weft_join_all *j, weft_future *arms,
				size_t n)
{
	if (!j || (!arms && n) || !weft__future_arms_valid(arms, n))
		return -EINVAL;
	*j = (weft_join_all){ ._arms = arms, ._n = n, ._pending = n,
			      ._state = WEFT__COMB_LIVE };
	return 0;
}

WEFT_API weft_poll weft_join_all_poll(weft_join_all *j, weft_cx *cx)
{
	if (!j || j->_state != WEFT__COMB_LIVE)
		return WEFT_READY;
	for (size_t i = 0; i < j->_n && j->_pending; i++) {
		weft_future *f = &j->_arms[i];

		if (f->_flags & WEFT__FUT_DROPPED)
			continue; /* finished earlier */
		if (weft_future_poll(f, cx) == WEFT_READY)
			j->_pending--;
	}
	if (j->_pending)
		return WEFT_PENDING;
	j->_state = WEFT__COMB_DONE;
	return WEFT_READY;
}

WEFT_API void weft_join_all_drop(weft_join_all *j)
{
	if (!j || j->_state == WEFT__COMB_NONE)
		return;
	for (size_t i = 0; i < j->_n; i++)
		weft_future_drop(&j->_arms[i]);
	j->_state = WEFT__COMB_DONE;
}

static weft_poll join_all_desc_poll(void *self, weft_cx *cx, void *out)
{
	(void)out;
	return weft_join_all_poll(self, cx);
}

static void join_all_desc_drop(void *self)
{
	weft_join_all_drop(self);
}

WEFT_API const weft_future_desc weft_join_all_desc = {
	.poll = join_all_desc_poll,
	.drop = join_all_desc_drop,
	.size = sizeof(weft_join_all),
	.output_size = 0,
};
