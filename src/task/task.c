/* SPDX-License-Identifier: MIT */
/*
 * Task allocation, running and completion. The state protocol is in
 * state.h; this file carries out what each transition tells it to do.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <weft/task.h>

#include "task/hooks.h"
#include "task/owned.h"
#include "task/task.h"

weft__task_dealloc_fn *_Atomic weft__task_dealloc_hook;

static void task_dealloc(struct weft__task *t)
{
	/* Acquire: pairs with the fiber layer's release store (set before
	 * any of its tasks exists, so a relaxed load would do in practice). */
	weft__task_dealloc_fn *hook = atomic_load_explicit(
		&weft__task_dealloc_hook, memory_order_acquire);

	if (hook)
		hook(t->desc, weft__task_future(t));
	if (t->name)
		free(t->name);
	free(t);
}

void weft__task_unref_dead(struct weft__task *t)
{
	task_dealloc(t);
}

void weft__task_ref(struct weft__task *t)
{
	weft__state_ref_inc(&t->state);
}

void weft__task_unref(struct weft__task *t)
{
	if (weft__state_ref_dec(&t->state, 1))
		task_dealloc(t);
}

int weft__task_new(struct weft_runtime *rt, const weft_future_desc *desc,
		   const void *init, bool want_join, char *name,
		   struct weft__task **out)
{
	if (!desc || !desc->poll || desc->size > WEFT_FUTURE_MAX_SIZE ||
	    desc->output_size > WEFT_FUTURE_MAX_SIZE)
		return -EINVAL;

	size_t hdr = WEFT__ALIGN_UP(sizeof(struct weft__task), WEFT__TASK_ALIGN);
	size_t fut = WEFT__ALIGN_UP(desc->size, WEFT__TASK_ALIGN);
	/* glibc malloc returns 16-byte aligned blocks on x86_64 and aarch64,
	 * which is WEFT__TASK_ALIGN. */
	struct weft__task *t = malloc(hdr + fut + desc->output_size);
	if (!t)
		return -ENOMEM;

	/* References: owned list, queue entry, join handle. */
	weft__state_init(&t->state, want_join ? 3 : 2, want_join);
	t->qnode.next = NULL;
	t->rt = rt;
	t->desc = desc;
	t->owned_prev = t->owned_next = NULL;
	t->output_state = WEFT__OUTPUT_NONE;
	t->join_waker = WEFT_WAKER_EMPTY;
	t->name = name;
	t->locals = NULL;
	if (init)
		memcpy(weft__task_future(t), init, desc->size);
	else
		memset(weft__task_future(t), 0, desc->size);

	int err = weft__owned_insert(weft__sched_owned(rt), t);
	if (err) {
		free(t); /* not task_dealloc: @name stays the caller's */
		return err;
	}
	*out = t;
	return 0;
}

/*
 * The future is gone (READY or dropped): publish COMPLETE, hand the output
 * to the join handle or drop it, and release the owned-list and poll
 * references.
 */
static void task_complete(struct weft__task *t)
{
	uint64_t prev = weft__state_to_complete(&t->state);

	if (!(prev & WEFT__ST_JOIN_INTEREST)) {
		/* Nobody will take the output; the join handle is gone, so
		 * output_state is ours alone. */
		if (t->output_state == WEFT__OUTPUT_PRESENT &&
		    t->desc->drop_output)
			t->desc->drop_output(weft__task_output(t));
		t->output_state = WEFT__OUTPUT_TAKEN;
	} else if (prev & WEFT__ST_JOIN_WAKER) {
		weft_waker_wake_by_ref(&t->join_waker);
		uint64_t s = weft__state_unset_join_waker_after_complete(
			&t->state);
		if (!(s & WEFT__ST_JOIN_INTEREST))
			weft_waker_drop(&t->join_waker);
	}

	if (weft__owned_remove(weft__sched_owned(t->rt), t))
		weft__sched_release(t->rt);
	if (weft__state_ref_dec(&t->state, 2))
		task_dealloc(t);
}

/* The future's drop still sees the task's locals and name; the locals'
 * destructors run after it, with no current task. */
static void task_drop_future(struct weft__task *t)
{
	if (t->desc->drop) {
		weft__task_current = t;
		t->desc->drop(weft__task_future(t));
		weft__task_current = NULL;
	}
	if (t->locals)
		weft__task_locals_destroy(t);
}

void weft__task_run(struct weft__task *t)
{
	enum weft__run_action run = weft__state_to_running(&t->state);

	if (run == WEFT__RUN_FAILED) {
		weft__task_unref(t);
		return;
	}

	if (run == WEFT__RUN_CANCEL) {
		task_drop_future(t);
		task_complete(t);
		return;
	}

	weft_waker waker = { &weft__task_waker_vtable, t };
	weft_cx cx = { &waker, NULL };
	weft__task_current = t;
	weft_poll p = t->desc->poll(weft__task_future(t), &cx,
				    weft__task_output(t));
	weft__task_current = NULL;
	if (p == WEFT_READY) {
		t->output_state = WEFT__OUTPUT_PRESENT;
		task_drop_future(t);
		task_complete(t);
		return;
	}

	switch (weft__state_to_idle(&t->state)) {
	case WEFT__IDLE_OK:
		break;
	case WEFT__IDLE_NOTIFIED:
		/* Woken during its own poll (weft_yield, or a wake racing the
		 * poll): back of the queue, so others run first. */
		weft__sched_yield(t);
		break;
	case WEFT__IDLE_CANCELLED:
		task_drop_future(t);
		task_complete(t);
		break;
	}
}

void weft__task_cancel(struct weft__task *t)
{
	if (weft__state_cancel(&t->state) == WEFT__WAKE_SUBMIT)
		weft__sched_schedule(t);
}

WEFT_API int weft_spawn(weft_runtime *rt, const weft_future_desc *desc,
			const void *init, weft_join **join)
{
	struct weft__task *t;

	if (!rt) {
		rt = weft_runtime_current();
		if (!rt)
			return -EINVAL;
	}
	int err = weft__task_new(rt, desc, init, join != NULL, NULL, &t);
	if (err)
		return err;
	if (join)
		*join = (weft_join *)t;
	weft__sched_spawn(rt, t);
	return 0;
}

WEFT_API void weft_spawn_opts_init(weft_spawn_opts *opts)
{
	if (!opts)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->size = sizeof(*opts);
}

WEFT_API int weft_spawn_with(weft_runtime *rt, const weft_spawn_opts *opts,
			     const weft_future_desc *desc, const void *init,
			     weft_join **join)
{
	struct weft__task *t;
	char *name;
	size_t len;

	if (opts && opts->size < sizeof(*opts))
		return -EINVAL;
	if (!opts || !opts->name)
		return weft_spawn(rt, desc, init, join);
	if (!rt) {
		rt = weft_runtime_current();
		if (!rt)
			return -EINVAL;
	}
	len = strnlen(opts->name, WEFT_TASK_NAME_MAX);
	if (len == WEFT_TASK_NAME_MAX)
		return -ENAMETOOLONG;
	name = strndup(opts->name, len);
	if (!name)
		return -ENOMEM;
	int err = weft__task_new(rt, desc, init, join != NULL, name, &t);
	if (err) {
		free(name);
		return err;
	}
	if (join)
		*join = (weft_join *)t;
	weft__sched_spawn(rt, t);
	return 0;
}
