/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the fiber tests (fiber_basic, fiber_cancel, fiber_migrate),
 * on top of io_helpers.h:
 *
 *  - wt_go: weft_go with a name, asserting, returning the join handle.
 *  - wt_fiber_join: join a fiber from the test thread; its status, the
 *    void * output in *out.
 *  - wt_fiber_run: start a fiber and join it, asserting status 0.
 *  - FCHECK: WT_CHECK for fiber code (runs on a worker thread).
 *
 * Header-only: each test program is one translation unit.
 */
#ifndef WEFT_TESTS_FIBER_HELPERS_H
#define WEFT_TESTS_FIBER_HELPERS_H

#include <weft/fiber.h>

#include "io_helpers.h"

#define FCHECK(cond, ...) WT_CHECK(cond, "" __VA_ARGS__)

/* Start @fn(@arg) as a fiber named @name (NULL: none) on @rt. */
static WT_UNUSED weft_join *wt_go(weft_runtime *rt, weft_fiber_fn fn,
				  void *arg, const char *name)
{
	weft_fiber_opts o;
	weft_join *j = NULL;
	weft_fiber_opts_init(&o);
	o.name = name;
	int err = weft_go(rt, fn, arg, &o, &j);
	cr_assert_eq(err, 0, "weft_go: %s", weft_strerror(err));
	cr_assert_not_null(j);
	return j;
}

/* Join @j from the test thread (5 s at most) and drop it; returns the
 * status, the output in *@out (may be NULL). */
static WT_UNUSED int wt_fiber_join(weft_join *j, void **out)
{
	int st = 1;
	void *o = NULL;
	wt_join_wait(j, &st, &o);
	weft_join_drop(j);
	if (out)
		*out = o;
	return st;
}

/* Run @fn(@arg) as a fiber on @rt to its end; returns its output. */
static WT_UNUSED void *wt_fiber_run(weft_runtime *rt, weft_fiber_fn fn,
				    void *arg)
{
	void *out = NULL;
	int st = wt_fiber_join(wt_go(rt, fn, arg, NULL), &out);
	cr_assert_eq(st, 0, "fiber join: %s", weft_strerror(st));
	return out;
}

#endif /* WEFT_TESTS_FIBER_HELPERS_H */
