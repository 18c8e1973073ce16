/* SPDX-License-Identifier: MIT */
/* weft_future: a future by reference (descriptor, state, output slot). */
#include <errno.h>

#include <weft/future.h>

#include "core/future.h"

WEFT_API int weft_future_init(weft_future *f, const weft_future_desc *desc,
			      void *state, void *out)
{
	if (!f || !desc || !desc->poll || (!state && desc->size) ||
	    (!out && desc->output_size))
		return -EINVAL;
	*f = (weft_future){ .desc = desc, .state = state, .out = out };
	return 0;
}

WEFT_API void weft_future_drop(weft_future *f)
{
	if (!f || !f->desc || (f->_flags & WEFT__FUT_DROPPED))
		return;
	f->_flags |= WEFT__FUT_DROPPED;
	if (f->desc->drop)
		f->desc->drop(f->state);
}

WEFT_API weft_poll weft_future_poll(weft_future *f, weft_cx *cx)
{
	if (!f || !f->desc || (f->_flags & WEFT__FUT_DROPPED))
		return WEFT_READY;
	if (f->desc->poll(f->state, cx, f->out) == WEFT_PENDING)
		return WEFT_PENDING;
	f->_flags |= WEFT__FUT_READY;
	/* The descriptor contract: drop runs right after READY. */
	weft_future_drop(f);
	return WEFT_READY;
}

WEFT_API bool weft_future_is_ready(const weft_future *f)
{
	return f && (f->_flags & WEFT__FUT_READY);
}

bool weft__future_arms_valid(const weft_future *arms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!arms[i].desc || !arms[i].desc->poll)
			return false;
	return true;
}
