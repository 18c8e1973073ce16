/* SPDX-License-Identifier: MIT */
/*
 * The task: one allocation holding the header, the future's state and the
 * output slot (like Tokio's Cell and async-task's RawTask).
 *
 *   [ struct weft__task | future state (desc->size) | output (output_size) ]
 *     each part aligned to WEFT__TASK_ALIGN
 *
 * Field ownership:
 *   state        atomic; see state.h
 *   qnode        the run queue holding the task's queue entry
 *   owned_*      the owned-task list, under its shard lock
 *   join_waker   see state.h (JOIN_WAKER)
 *   output_state written by the poller before COMPLETE; read and updated by
 *                the join handle after it has seen COMPLETE
 *   name         NULL, or the task's own copy (weft_spawn_with); immutable
 *   locals       NULL until the first weft_task_local_set; touched only by
 *                the worker running the task (set/get from its poll and
 *                drop, destroyed right after the drop)
 *   everything else is immutable after spawn
 */
#ifndef WEFT_TASK_TASK_H
#define WEFT_TASK_TASK_H

#include <weft/core.h>
#include <weft/runtime.h>
#include <weft/task.h>

#include "internal.h"
#include "task/state.h"

#define WEFT__TASK_ALIGN 16

enum weft__output_state {
	WEFT__OUTPUT_NONE = 0,     /* cancelled before READY */
	WEFT__OUTPUT_PRESENT = 1,  /* written, not yet taken */
	WEFT__OUTPUT_TAKEN = 2,    /* taken or dropped */
};

/* One task-local value (current.c). */
struct weft__local {
	const weft_task_local_key *key;
	void *value;
};

/* A task's local values, allocated at its first weft_task_local_set, so
 * that tasks without any pay one NULL store at spawn. */
struct weft__locals {
	unsigned n, cap;
	struct weft__local slot[];
};

struct weft__task {
	weft__state state;
	struct weft__qnode qnode;
	struct weft_runtime *rt;
	const weft_future_desc *desc;
	struct weft__task *owned_prev;
	struct weft__task *owned_next;
	uint64_t id;
	unsigned output_state;
	weft_waker join_waker;
	char *name;
	struct weft__locals *locals;
} __attribute__((aligned(WEFT__TASK_ALIGN)));

/* The task whose future this thread is polling or dropping, or NULL
 * (current.c; set by weft__task_run). */
extern WEFT__TLS struct weft__task *weft__task_current;

static inline void *weft__task_future(struct weft__task *t)
{
	return (char *)t + WEFT__ALIGN_UP(sizeof(*t), WEFT__TASK_ALIGN);
}

static inline void *weft__task_output(struct weft__task *t)
{
	return (char *)weft__task_future(t) +
	       WEFT__ALIGN_UP(t->desc->size, WEFT__TASK_ALIGN);
}

static inline struct weft__task *weft__task_from_qnode(struct weft__qnode *n)
{
	return weft__container_of(n, struct weft__task, qnode);
}

/*
 * Allocate and register a task of @rt in @rt's owned list (state NOTIFIED,
 * refs: owned list, queue entry, join handle if @want_join) without
 * scheduling it. @name (malloc'd, may be NULL) becomes the task's on
 * success and stays the caller's on failure. Returns 0 or -EINVAL /
 * -ENOMEM / -ESHUTDOWN.
 */
int weft__task_new(struct weft_runtime *rt, const weft_future_desc *desc,
		   const void *init, bool want_join, char *name,
		   struct weft__task **out);

/* Destroy the task's local values and free the table (current.c): after
 * its future's drop, on the worker that dropped it. */
void weft__task_locals_destroy(struct weft__task *t);

/*
 * Run a task popped from a run queue (the caller's queue reference is
 * consumed): poll it, or drop its future if cancelled, and re-queue it if
 * it was woken during the poll. Worker threads only.
 */
void weft__task_run(struct weft__task *t);

/* Drop one reference (freeing the task if it was the last). */
void weft__task_unref(struct weft__task *t);
void weft__task_ref(struct weft__task *t);

/* Free a task whose count a transition has already taken to zero. */
void weft__task_unref_dead(struct weft__task *t);

extern const weft_waker_vtable weft__task_waker_vtable;

/* Abort @t (weft_task_abort and shutdown). */
void weft__task_cancel(struct weft__task *t);

#endif /* WEFT_TASK_TASK_H */
