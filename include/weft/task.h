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

/** Longest task name weft_spawn_with() accepts, in bytes, with the NUL. */
#define WEFT_TASK_NAME_MAX 64

/**
 * Options for weft_spawn_with() (Tokio's task::Builder). Initialise with
 * weft_spawn_opts_init(), then set fields; the size field lets later
 * versions add options without breaking callers built against this one.
 */
typedef struct weft_spawn_opts {
	size_t size;      /**< sizeof(weft_spawn_opts); set by init */
	/**
	 * The task's name, for weft_task_name() and the runtime's log
	 * messages about the task; NULL: unnamed. Copied at spawn (the
	 * caller's string may go away at once); at most
	 * WEFT_TASK_NAME_MAX - 1 bytes. Any bytes but NUL; not parsed.
	 */
	const char *name;
} weft_spawn_opts;

/**
 * Fill @opts with the defaults (no name). Thread-safe.
 * NULL: see core.h.
 */
WEFT_API void weft_spawn_opts_init(weft_spawn_opts *opts);

/**
 * weft_spawn() with options. @opts NULL, or without a name, spawns exactly
 * as weft_spawn() does; the other arguments and the placement of the task
 * are weft_spawn()'s. A name costs one allocation at spawn; weft_spawn()
 * itself pays nothing for names.
 *
 * Returns 0, or weft_spawn()'s errors, or:
 *  -EINVAL        @opts->size smaller than this version's
 *                 sizeof(weft_spawn_opts)
 *  -ENAMETOOLONG  the name has WEFT_TASK_NAME_MAX bytes or more
 * On failure nothing was spawned and @desc->drop was not called.
 * Thread-safe.
 * NULL: see core.h (@opts NULL: the defaults).
 */
WEFT_API WEFT_MUST_USE int weft_spawn_with(weft_runtime *rt,
					   const weft_spawn_opts *opts,
					   const weft_future_desc *desc,
					   const void *init, weft_join **join);

/**
 * The name of the task whose future the calling thread is polling (or
 * dropping), as given to weft_spawn_with(); NULL for an unnamed task or
 * off a task (a plain thread, a worker between polls, a task-local
 * destructor). Valid until that poll or drop returns; copy it to keep it.
 * Thread-safe (it only reads the calling thread's own task).
 */
WEFT_API const char *weft_task_name(void);

/**
 * A task-local key (Tokio's task_local!): one value per task, looked up by
 * the key's address. Define keys with static storage duration (or at least
 * outliving every task that sets them):
 *
 *     static const weft_task_local_key request_id =
 *             WEFT_TASK_LOCAL_KEY_INIT(free);
 *
 * @destroy (may be NULL) is called exactly once with each non-NULL value
 * the key held: when weft_task_local_set() replaces it by a different one
 * (inside that call, in the task, the new value already in place), or
 * after the task's future has been dropped (the task finished or was
 * cancelled: abort, runtime shutdown). The future's drop function still
 * sees the values; the destructors run after it on the same worker thread
 * with no current task: weft_task_local_get() there returns NULL and
 * weft_task_local_set() -EPERM. Several keys' destructors run in no
 * particular order.
 */
typedef struct weft_task_local_key {
	void (*destroy)(void *value);
	void *_reserved; /**< zero; for later use */
} weft_task_local_key;

/** Initialiser for a weft_task_local_key with destructor @destroy. */
#define WEFT_TASK_LOCAL_KEY_INIT(destroy) { (destroy), NULL }

/**
 * Set the calling task's value for @key to @value (owned by the task from
 * now: the key's destructor frees it). The previous value, if any and
 * different from @value, is destroyed after the new one is stored. Setting NULL removes the value (destroying the old one). Values
 * belong to the task, not the thread: they follow the task when another
 * worker steals it. The table is allocated at a task's first set, so tasks
 * that use none pay nothing.
 *
 * Returns 0, or:
 *  -EPERM   not called from a task's poll or drop (a plain thread, a
 *           task-local destructor); nothing stored, @value not destroyed
 *  -ENOMEM  no room for a new key's slot; nothing stored, @value not
 *           destroyed
 *  -EINVAL  @key is NULL
 * Call only from the task itself (it reads the calling thread's task).
 * NULL: see core.h.
 */
WEFT_API int weft_task_local_set(const weft_task_local_key *key, void *value);

/**
 * The calling task's value for @key, or NULL if it set none (or set
 * NULL), or when not called from a task's poll or drop.
 * NULL: see core.h.
 */
WEFT_API void *weft_task_local_get(const weft_task_local_key *key);

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
