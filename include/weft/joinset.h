/* SPDX-License-Identifier: MIT */
/*
 * Groups of tasks: the JoinSet (Tokio's task::JoinSet), joined in the
 * order they finish, and the scope built on it (structured concurrency: an
 * owner that cannot finish before the tasks it started).
 *
 * Both are built on join handles (weft/task.h) polled with wakers of their
 * own, after Tokio's util/idle_notified_set: a finished task moves its
 * entry to a "notified" list, and joining polls only those, so taking the
 * next finished task of N costs O(1), not O(N).
 *
 * A set (and a scope) must be freed before its runtime (weft_runtime_free
 * wants every join handle dropped).
 * NULL: see weft/core.h.
 */
#ifndef WEFT_JOINSET_H
#define WEFT_JOINSET_H

#include <stdint.h>

#include <weft/core.h>
#include <weft/runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------- JoinSet */

/**
 * A set of spawned tasks whose outputs all have one size (Tokio's
 * JoinSet<T>: one T per set): given at weft_joinset_new(), checked at each
 * spawn. The set owns the tasks' join handles; freeing it aborts the tasks
 * still running. Calls are thread-safe, with two limits: one thread at a
 * time takes finished tasks (join_next, try_join_next, join_next_blocking),
 * and weft_joinset_free() runs alone.
 */
typedef struct weft_joinset weft_joinset;

/**
 * Create an empty set for tasks whose output is @output_size bytes (0 for
 * none; at most WEFT_FUTURE_MAX_SIZE). Returns 0 and sets *@out, or
 * -EINVAL (NULL @out, size too large), -ENOMEM.
 * NULL: see core.h.
 */
WEFT_API int weft_joinset_new(size_t output_size, weft_joinset **out);

/**
 * Abort every task still in @set, release their join handles and free
 * @set (Tokio's drop of a JoinSet). Outputs not taken are dropped
 * (drop_output); the aborted tasks' futures are dropped on a worker later,
 * as by weft_task_abort(). Not concurrently with any other call on @set,
 * and no join_next future of @set may be alive (drop it first). NULL is
 * accepted.
 */
WEFT_API void weft_joinset_free(weft_joinset *set);

/**
 * Spawn a task into @set, as weft_spawn(@rt, @desc, @init) does (@rt NULL:
 * the calling worker's runtime). *@id (@id may be NULL) receives the
 * task's id in the set: 1 for the first spawn, then counting up; never 0,
 * never reused within the set. Returns 0, or -EINVAL (NULL @set or @desc,
 * @desc->output_size is not the set's output size, or as weft_spawn),
 * -ENOMEM, -ESHUTDOWN (as weft_spawn: nothing was spawned).
 * Thread-safe.
 */
WEFT_API WEFT_MUST_USE int weft_joinset_spawn(weft_joinset *set,
					      weft_runtime *rt,
					      const weft_future_desc *desc,
					      const void *init, uint64_t *id);

/**
 * Tasks in @set: spawned and not yet taken by a join (running or
 * finished). A snapshot; 0 for NULL. Thread-safe.
 */
WEFT_API size_t weft_joinset_len(const weft_joinset *set);

/**
 * Request cancellation of every task in @set (weft_task_abort on each).
 * They stay in the set: each is then taken by a join, with status
 * -ECANCELED unless it finished first. Thread-safe. NULL is accepted.
 */
WEFT_API void weft_joinset_abort_all(weft_joinset *set);

/** What a join of a set reports about the task it took. */
typedef struct weft_joinset_next {
	/**
	 * 0: the task completed, its output was copied out.
	 * -ECANCELED: it was aborted (or its runtime shut down) first; no
	 * output. -ENOENT: the set is empty (id 0). -EINVAL: bad arguments.
	 * -EALREADY: a poll after READY.
	 */
	int status;
	uint64_t id; /**< the task's id, as weft_joinset_spawn gave it */
} weft_joinset_next;

/**
 * Take one finished task now, if there is one: the one that finished
 * first among those not yet taken (completion order). Its output goes to
 * @value (the set's output size; NULL drops it through drop_output).
 * Returns 0 with *@next set (status 0 or -ECANCELED), -EAGAIN (tasks are
 * in the set but none has finished), -ENOENT (the set is empty), -EINVAL
 * (NULL @set or @next). One taker at a time (see weft_joinset).
 */
WEFT_API int weft_joinset_try_join_next(weft_joinset *set,
					weft_joinset_next *next,
					void *value);

/**
 * Wait for the next task of @set to finish: a future. Private fields;
 * must not move once polled. It holds no task: dropping it while pending
 * loses nothing.
 */
typedef struct weft_joinset_join_next {
	weft_joinset *_set;
	void *_value;
	unsigned _state;
} weft_joinset_join_next;

/**
 * Prepare @j to take the next finished task of @set, copying its output to
 * @value (the set's output size, owned by the caller, alive until READY or
 * the drop; NULL drops outputs). 0, or -EINVAL (NULL @j or @set).
 */
WEFT_API int weft_joinset_join_next_init(weft_joinset_join_next *j,
					 weft_joinset *set, void *value);

/**
 * Poll: READY with *@next (may be NULL) describing the task taken, in
 * completion order (status 0 with its output in @value, or -ECANCELED),
 * or with status -ENOENT when the set is empty. PENDING while tasks are
 * in the set and none has finished: the waker is woken when one does, or
 * when a task is spawned into the set. Each poll looks at finished tasks
 * only (plus each new task once), never at every task. One poller at a
 * time per set. -EALREADY after READY, -EINVAL unprepared.
 */
WEFT_API weft_poll weft_joinset_join_next_poll(weft_joinset_join_next *j,
					       weft_cx *cx,
					       weft_joinset_next *next);

/** Drop the future: unregisters its waker; no task is lost (a finished
 * task stays in the set for the next join). Idempotent; NULL is accepted. */
WEFT_API void weft_joinset_join_next_drop(weft_joinset_join_next *j);

/** weft_joinset_join_next as a generic future: output weft_joinset_next. */
WEFT_API extern const weft_future_desc weft_joinset_join_next_desc;

/**
 * weft_joinset_join_next from a plain thread (not a worker): sleep until
 * a task of @set finishes (or the set is empty) and take it. *@next and
 * @value as for the future. Returns 0 (see next->status), -EINVAL (NULL
 * @set or @next), -EDEADLK on a worker thread of any runtime (nothing
 * taken), -ENOMEM.
 */
WEFT_API int weft_joinset_join_next_blocking(weft_joinset *set,
					     weft_joinset_next *next,
					     void *value);

/* ------------------------------------------------------------------- scope */

/** weft_scope_new flag: the first task to fail cancels the others. */
#define WEFT_SCOPE_CANCEL_ON_ERROR 1u

/**
 * A scope: tasks that its owner waits for before going on (structured
 * concurrency, like Trio's nursery or Kotlin's coroutineScope). Every
 * task spawned into it returns an int: 0 on success or a negative errno.
 * weft_scope_join is READY only once every task has finished, with the
 * first error; weft_scope_free refuses while any task is still running,
 * so no task outlives its scope. Built on weft_joinset. Thread-safe,
 * except that one thread at a time polls weft_scope_join and
 * weft_scope_free runs alone.
 */
typedef struct weft_scope weft_scope;

/**
 * Create a scope. @flags: 0 or WEFT_SCOPE_CANCEL_ON_ERROR (the first
 * error aborts every other task, and later spawns fail). Returns 0 and
 * sets *@out, or -EINVAL (NULL @out, unknown flags), -ENOMEM.
 */
WEFT_API int weft_scope_new(weft_scope **out, unsigned flags);

/**
 * Free @scope. Returns 0, or -EBUSY while a task in it has not finished
 * (completed or cancelled): nothing is freed, so a scope never leaks a
 * running task. Finished tasks whose result the join did not take are
 * released. Not concurrently with any other call on @scope, and no join
 * future of it alive. NULL is accepted (0).
 */
WEFT_API int weft_scope_free(weft_scope *scope);

/**
 * Spawn a task into @scope, as weft_spawn does. The future's output must
 * be an int (@desc->output_size == sizeof(int)): 0 for success, a
 * negative errno for failure. Returns 0, or -EINVAL (NULL @scope or
 * @desc, another output size, or as weft_spawn), -ECANCELED (the scope
 * was cancelled, by weft_scope_cancel or a first error under
 * WEFT_SCOPE_CANCEL_ON_ERROR: nothing spawned), -ENOMEM, -ESHUTDOWN.
 * Thread-safe.
 */
WEFT_API WEFT_MUST_USE int weft_scope_spawn(weft_scope *scope,
					    weft_runtime *rt,
					    const weft_future_desc *desc,
					    const void *init);

/**
 * Cancel the scope: abort every task in it, and make later spawns fail
 * with -ECANCELED. The join still waits for the aborted tasks to finish.
 * Thread-safe. NULL is accepted.
 */
WEFT_API void weft_scope_cancel(weft_scope *scope);

/** Wait for every task of a scope: a future. Private; must not move once
 * polled. */
typedef struct weft_scope_join {
	weft_scope *_scope;
	unsigned _state;
	int _value;
	weft_joinset_join_next _next;
} weft_scope_join;

/** Prepare @j to join @scope. 0, or -EINVAL (NULL argument). */
WEFT_API int weft_scope_join_init(weft_scope_join *j, weft_scope *scope);

/**
 * Poll: READY once every task spawned into the scope so far has finished,
 * with *@res (may be NULL) the scope's first error: the first negative
 * output in completion order, or -ECANCELED for a task aborted before it
 * finished (weft_scope_cancel, runtime shutdown), unless an error came
 * first; 0 when every task returned 0. The error is remembered: a later
 * join of the same scope reports it again. -EALREADY after READY, -EINVAL
 * unprepared. One poller at a time.
 */
WEFT_API weft_poll weft_scope_join_poll(weft_scope_join *j, weft_cx *cx,
					int *res);

/** Drop the join future (tasks keep running). Idempotent; NULL accepted. */
WEFT_API void weft_scope_join_drop(weft_scope_join *j);

/** weft_scope_join as a generic future: output int (*@res). */
WEFT_API extern const weft_future_desc weft_scope_join_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_JOINSET_H */
