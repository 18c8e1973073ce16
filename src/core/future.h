/* SPDX-License-Identifier: MIT */
/* Internals of weft_future shared by the combinators. */
#ifndef WEFT_CORE_FUTURE_H
#define WEFT_CORE_FUTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <weft/future.h>

/* weft_future._flags */
enum {
	WEFT__FUT_READY = 1u << 0,   /* poll returned READY */
	WEFT__FUT_DROPPED = 1u << 1, /* desc->drop has run */
};

/* Combinator _state values */
enum { WEFT__COMB_NONE = 0, WEFT__COMB_LIVE = 1, WEFT__COMB_DONE = 2 };

/* Every arm has a descriptor with a poll function. */
bool weft__future_arms_valid(const weft_future *arms, size_t n);

#endif /* WEFT_CORE_FUTURE_H */
