/* SPDX-License-Identifier: MIT */
/*
 * Join handles. A weft_join is the task pointer itself; the handle holds one
 * reference and JOIN_INTEREST. The join waker hand-off is described in
 * state.h.
 */
#include <errno.h>
#include <string.h>

#include <weft/task.h>

#include "task/hooks.h"
#include "task/task.h"

/* For "%s%s%s" in log messages: ` (task "NAME")`, or nothing if unnamed.
 * The name is immutable from spawn until the task is freed. */
#define NAME_ARGS(t) \
	(t)->name ? " (task \"" : "", (t)->name ? (t)->name : "", \
		(t)->name ? "\")" : ""

static struct weft__task *task_of(const weft_join *j)
{
	return (struct weft__task *)j;
}

/* The task is COMPLETE and the join handle has seen it (acquire). */
static int take_output(struct weft__task *t, void *out)
{
	switch (t->output_state) {
	case WEFT__OUTPUT_PRESENT:
		if (out)
			memcpy(out, weft__task_output(t), t->desc->output_size);
		else if (t->desc->drop_output)
			t->desc->drop_output(weft__task_output(t));
		t->output_state = WEFT__OUTPUT_TAKEN;
		return 0;
	case WEFT__OUTPUT_NONE:
		t->output_state = WEFT__OUTPUT_TAKEN;
		return -ECANCELED;
	default:
		return -EALREADY;
	}
}

/*
 * Register cx's waker for completion. Returns false if the task completed
 * meanwhile (the caller then takes the output).
 */
static bool register_waker(struct weft__task *t, uint64_t s, weft_cx *cx)
{
	if (s & WEFT__ST_JOIN_WAKER) {
		if (weft_waker_will_wake(&t->join_waker, cx->waker))
			return true;
		/* Take the field back to replace it; if COMPLETE beat us the
		 * runtime owns the field now and we must not touch it. */
		if (!weft__state_unset_join_waker(&t->state))
			return false;
	}
	/* JOIN_WAKER is clear: the field is ours alone. */
	weft_waker_drop(&t->join_waker);
	t->join_waker = weft_waker_clone(cx->waker);
	if (weft__state_set_join_waker(&t->state))
		return true;
	weft_waker_drop(&t->join_waker);
	return false;
}

WEFT_API weft_poll weft_join_poll(weft_join *join, weft_cx *cx, int *status,
				  void *out)
{
	struct weft__task *t = task_of(join);
	uint64_t s;
	int st;

	if (!t || !cx) {
		st = -EINVAL;
		goto ready;
	}
	s = weft__state_load(&t->state);
	if (!(s & WEFT__ST_JOIN_INTEREST)) {
		/* Dropped, yet still alive: the waker field and the output
		 * are no longer the handle's to touch. */
		weft__log(t->rt, WEFT_LOG_ERROR,
			  "weft_join_poll: join handle %p%s%s%s polled after "
			  "weft_join_drop", (void *)join, NAME_ARGS(t));
		st = -EINVAL;
		goto ready;
	}
	if (!(s & WEFT__ST_COMPLETE) && register_waker(t, s, cx))
		return WEFT_PENDING;
	/* Acquire load: pairs with the acq_rel to_complete, so the output
	 * written before it is visible. */
	s = weft__state_load(&t->state);
	weft__assert(s & WEFT__ST_COMPLETE);
	st = take_output(t, out);
ready:
	if (status)
		*status = st;
	return WEFT_READY;
}

WEFT_API void weft_join_drop(weft_join *join)
{
	struct weft__task *t = task_of(join);

	if (!t)
		return;
	uint64_t prev = weft__state_drop_join_interest(&t->state);
	if (!(prev & WEFT__ST_JOIN_INTEREST)) {
		/* Still alive, so readable; the handle's reference is gone
		 * already and must not be dropped again. */
		weft__log(t->rt, WEFT_LOG_ERROR,
			  "weft_join_drop: join handle %p%s%s%s was already "
			  "dropped; ignored", (void *)join, NAME_ARGS(t));
		return;
	}
	if (prev & WEFT__ST_COMPLETE) {
		if (t->output_state == WEFT__OUTPUT_PRESENT &&
		    t->desc->drop_output)
			t->desc->drop_output(weft__task_output(t));
		t->output_state = WEFT__OUTPUT_TAKEN;
		/* With JOIN_WAKER still set the runtime is between waking the
		 * waker and clearing the bit; it sees JOIN_INTEREST gone and
		 * drops the waker itself. */
		if (!(prev & WEFT__ST_JOIN_WAKER))
			weft_waker_drop(&t->join_waker);
	} else {
		/* We cleared JOIN_WAKER with JOIN_INTEREST: the field is ours,
		 * and the runtime will drop the output at completion. */
		weft_waker_drop(&t->join_waker);
	}
	weft__task_unref(t);
}

WEFT_API void weft_task_abort(weft_join *join)
{
	if (join)
		weft__task_cancel(task_of(join));
}

WEFT_API bool weft_join_is_finished(const weft_join *join)
{
	struct weft__task *t = task_of(join);

	return t && (weft__state_load(&t->state) & WEFT__ST_COMPLETE);
}
