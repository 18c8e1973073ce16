/* SPDX-License-Identifier: MIT */
/*
 * Tasks: spawning futures, join handles, abort and yield.
 *
 * A task is one allocation holding a header, the future's state and its
 * output slot. Its life is governed by one atomic state word (flags plus a
 * reference count, after Tokio's runtime/task/state.rs); the protocol is
 * written at the top of src/task/state.h.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <weft/core.h>
#include <weft/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A join handle: the right to the output of one task. */
typedef struct weft_join weft_join;

/**
 * Spawn a task running the future described by @desc.
 *
 * @rt:   the runtime; NULL means the runtime of the calling worker thread.
 * @desc: the future type; must outlive the task.
 * @init: @desc->size bytes copied into the task, or NULL for zeroes.
 * @join: receives a join handle, which the caller must eventually pass to
 *        weft_join_drop(); NULL detaches the task at once.
 *
 * From a worker thread of @rt the task goes to that worker's LIFO slot
 * (the task it displaces, if any, to the back of the worker's deque, where
 * idle workers may steal it); from any other thread to the injector, and an
 * idle worker is unparked.
 *
 * Returns 0, or:
 *  -EINVAL     @desc or @desc->poll NULL, sizes above WEFT_FUTURE_MAX_SIZE,
 *              or @rt NULL off a worker thread
 *  -ENOMEM     out of memory
 *  -ESHUTDOWN  the runtime is shutting down
 * On failure nothing was spawned and @desc->drop was not called.
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API WEFT_MUST_USE int weft_spawn(weft_runtime *rt,
				      const weft_future_desc *desc,
				      const void *init, weft_join **join);

/**
 * Poll a join handle: WEFT_READY once the task has finished.
 *
 * @status: set on READY to 0 (the output was copied to @out) or -ECANCELED
 *          (the task was aborted or the runtime shut down before the
 *          future finished; @out untouched). A poll after READY returns
 *          READY with -EALREADY. A poll after weft_join_drop() while the
 *          task is alive returns READY with -EINVAL and is logged at
 *          WEFT_LOG_ERROR; after the task is freed it is an undetectable
 *          use-after-free.
 * @out:    output_size bytes; NULL discards the output (drop_output runs).
 *
 * May be polled from any thread, but by one thread at a time.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_join_poll(weft_join *join, weft_cx *cx, int *status,
				  void *out);

/**
 * Drop the join handle. A running task is detached: it runs to completion
 * and its output is dropped. @join is invalid afterwards; NULL is accepted.
 * Not concurrently with a poll of the same handle.
 *
 * Dropping a handle twice is a bug in the caller. While the task has not
 * finished, the second drop does nothing and is reported through
 * weft_runtime_config.log at WEFT_LOG_ERROR. Once the task has finished
 * it may already be freed, and a second drop is a use-after-free the
 * library cannot detect.
 * NULL: see core.h.
 */
WEFT_API void weft_join_drop(weft_join *join);

/**
 * Request cancellation of the task. Its future is dropped on a worker at
 * the task's next scheduling point (never in the middle of a poll); the
 * join handle then yields -ECANCELED. No effect on a finished task.
 * Does not drop the handle. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API void weft_task_abort(weft_join *join);

/**
 * True once the task has finished (completed or cancelled). Thread-safe.
 * NULL: see core.h.
 */
WEFT_API bool weft_join_is_finished(const weft_join *join);

/** A future that yields once to the scheduler. */
typedef struct weft_yield {
	unsigned yielded;
} weft_yield;

/** Initialiser for weft_yield. */
#define WEFT_YIELD_INIT { 0 }

/**
 * First poll: wake the task and return PENDING, putting the task at the
 * back of its worker's run queue (not the LIFO slot) so others run first;
 * next poll: READY. Re-initialise with WEFT_YIELD_INIT to yield again.
 * NULL: see core.h (READY at once: there is no status).
 */
WEFT_API weft_poll weft_yield_poll(weft_yield *y, weft_cx *cx);

/** weft_yield as a generic future (weft/future.h): no output. */
WEFT_API extern const weft_future_desc weft_yield_desc;

/**
 * A join handle as a generic future (weft/future.h): state for
 * weft_join_future_desc, whose output is an int status (0, or -ECANCELED
 * as weft_join_poll() reports it) and which writes the task's output to
 * @value (output_size bytes; NULL discards it). The future owns @join:
 * its drop (after READY, or when a select drops a losing arm) calls
 * weft_join_drop(), which detaches a task still running.
 */
typedef struct weft_join_future {
	weft_join *join;
	void *value;
} weft_join_future;

/** The descriptor of weft_join_future. */
WEFT_API extern const weft_future_desc weft_join_future_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TASK_H */
