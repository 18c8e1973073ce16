/* SPDX-License-Identifier: MIT */
/*
 * Wakers: the public helpers over any waker vtable, the no-op waker, and the
 * task waker, whose data is the task and which holds one reference to it.
 */
#include <weft/core.h>

#include "task/hooks.h"
#include "task/task.h"

static const weft_waker empty_waker = { NULL, NULL };

WEFT_API void weft_cx_init(weft_cx *cx, const weft_waker *waker)
{
	if (!cx)
		return;
	/* Polls hand cx->waker on unchecked: never leave it NULL. */
	cx->waker = waker ? waker : &empty_waker;
	cx->_reserved = NULL;
}

WEFT_API const weft_waker *weft_cx_waker(const weft_cx *cx)
{
	return cx ? cx->waker : NULL;
}

WEFT_API weft_waker weft_waker_clone(const weft_waker *w)
{
	if (!w || !w->vtable)
		return WEFT_WAKER_EMPTY;
	return w->vtable->clone(w->data);
}

WEFT_API void weft_waker_wake(weft_waker *w)
{
	if (!w || !w->vtable)
		return;
	weft_waker v = *w;
	*w = WEFT_WAKER_EMPTY;
	v.vtable->wake(v.data);
}

WEFT_API void weft_waker_wake_by_ref(const weft_waker *w)
{
	if (w && w->vtable)
		w->vtable->wake_by_ref(w->data);
}

WEFT_API void weft_waker_drop(weft_waker *w)
{
	if (!w || !w->vtable)
		return;
	weft_waker v = *w;
	*w = WEFT_WAKER_EMPTY;
	v.vtable->drop(v.data);
}

WEFT_API bool weft_waker_will_wake(const weft_waker *a, const weft_waker *b)
{
	return a && b && a->vtable == b->vtable && a->data == b->data;
}

static weft_waker noop_clone(const void *data);
static void noop_fn(const void *data)
{
	(void)data;
}

static const weft_waker_vtable noop_vtable = {
	.clone = noop_clone,
	.wake = noop_fn,
	.wake_by_ref = noop_fn,
	.drop = noop_fn,
};

static weft_waker noop_clone(const void *data)
{
	return (weft_waker){ &noop_vtable, data };
}

WEFT_API weft_waker weft_waker_noop(void)
{
	return (weft_waker){ &noop_vtable, NULL };
}

/* --- task waker ---------------------------------------------------------- */

static weft_waker task_waker_clone(const void *data)
{
	struct weft__task *t = (struct weft__task *)data;

	weft__task_ref(t);
	return (weft_waker){ &weft__task_waker_vtable, t };
}

static void task_waker_wake(const void *data)
{
	struct weft__task *t = (struct weft__task *)data;

	switch (weft__state_wake_by_val(&t->state)) {
	case WEFT__WAKE_SUBMIT:
		weft__sched_schedule(t);
		break;
	case WEFT__WAKE_DEALLOC:
		/* Last reference: the task is complete and everyone else has
		 * let go. Dropping the reference frees it. */
		weft__task_unref_dead(t);
		break;
	case WEFT__WAKE_NOTHING:
		break;
	}
}

static void task_waker_wake_by_ref(const void *data)
{
	struct weft__task *t = (struct weft__task *)data;

	if (weft__state_wake_by_ref(&t->state) == WEFT__WAKE_SUBMIT)
		weft__sched_schedule(t);
}

static void task_waker_drop(const void *data)
{
	weft__task_unref((struct weft__task *)data);
}

const weft_waker_vtable weft__task_waker_vtable = {
	.clone = task_waker_clone,
	.wake = task_waker_wake,
	.wake_by_ref = task_waker_wake_by_ref,
	.drop = task_waker_drop,
};
