/* SPDX-License-Identifier: MIT */
/* weft_select: first ready arm wins, the rest are dropped (future.h). */
#include <errno.h>
#include <stdint.h>

#include "core/future.h"

WEFT_API int weft_select_init(weft_select *s, weft_future *arms, size_t n)
{
	if (!s || !arms || !n || !weft__future_arms_valid(arms, n))
		return -EINVAL;
	*s = (weft_select){ ._arms = arms, ._n = n, ._winner = SIZE_MAX,
			    ._state = WEFT__COMB_LIVE };
	return 0;
}

static void drop_others(weft_select *s, size_t keep)
{
	for (size_t i = 0; i < s->_n; i++)
		if (i != keep)
			weft_future_drop(&s->_arms[i]);
}

WEFT_API weft_poll weft_select_poll(weft_select *s, weft_cx *cx,
				    size_t *winner)
{
	if (!s || s->_state != WEFT__COMB_LIVE) {
		if (winner)
			*winner = s && s->_state == WEFT__COMB_DONE ? s->_winner
								    : SIZE_MAX;
		return WEFT_READY;
	}
	for (size_t i = 0; i < s->_n; i++) {
		if (weft_future_poll(&s->_arms[i], cx) == WEFT_PENDING)
			continue;
		s->_winner = i;
		s->_state = WEFT__COMB_DONE;
		drop_others(s, i);
		if (winner)
			*winner = i;
		return WEFT_READY;
	}
	return WEFT_PENDING;
}

WEFT_API void weft_select_drop(weft_select *s)
{
	if (!s || s->_state == WEFT__COMB_NONE)
		return;
	drop_others(s, SIZE_MAX);
	s->_state = WEFT__COMB_DONE;
}

static weft_poll select_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_select_poll(self, cx, out);
}

static void select_desc_drop(void *self)
{
	weft_select_drop(self);
}

WEFT_API const weft_future_desc weft_select_desc = {
	.poll = select_desc_poll,
	.drop = select_desc_drop,
	.size = sizeof(weft_select),
	.output_size = sizeof(size_t),
};
