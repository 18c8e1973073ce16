/* SPDX-License-Identifier: MIT */
/*
 * What the task layer needs from the scheduler above it, declared here (the
 * task layer owns this header) and implemented in src/sched/. The task
 * layer includes no scheduler or io header: this is the inversion that
 * keeps the layers calling down only.
 */
#ifndef WEFT_TASK_HOOKS_H
#define WEFT_TASK_HOOKS_H

#include <stdbool.h>

struct weft_runtime;
struct weft__owned;
struct weft__task;
struct weft_future_desc;

/* Queue a new task of @rt: the LIFO slot on a worker of @rt, else the
 * injector and an unpark. Any thread. */
void weft__sched_spawn(struct weft_runtime *rt, struct weft__task *t);

/*
 * Queue @t, woken from any thread, consuming the queue reference the wake
 * took (state.h): the LIFO slot on a worker of its runtime, else the
 * injector and an unpark.
 */
void weft__sched_schedule(struct weft__task *t);

/* Re-queue @t, woken during its own poll, behind the other runnable tasks
 * of the polling worker. Worker threads only. */
void weft__sched_yield(struct weft__task *t);

/* @rt's owned-task list became empty (shutdown may be waiting for it). */
void weft__sched_release(struct weft_runtime *rt);

/*
 * @rt's owned-task list. A layout contract rather than a call, because
 * spawn and completion use it on every task: the scheduler keeps the list
 * as the first member of struct weft_runtime (asserted in
 * sched/runtime.h).
 */
static inline struct weft__owned *weft__sched_owned(struct weft_runtime *rt)
{
	return (struct weft__owned *)(void *)rt;
}

struct weft_oneshot_rx;

/*
 * Run @fn(@arg) on the blocking pool of @rt (NULL: the calling worker's):
 * weft_spawn_blocking (weft/blocking.h), for the layers below the
 * scheduler (name resolution in net/). Any thread.
 */
int weft__sched_spawn_blocking(struct weft_runtime *rt, void *(*fn)(void *),
			       void (*cancel)(void *), void *arg,
			       struct weft_oneshot_rx **rx);

/* True on a worker thread of any runtime (where blocking would stall the
 * worker's tasks). Any thread. */
bool weft__sched_on_worker(void);

/* Send a diagnostic to @rt's log callback, if any (caller misuse the task
 * layer detects, such as a join handle dropped twice). Any thread. */
void weft__log(struct weft_runtime *rt, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Set by the fiber layer (which sits above the task layer) before its
 * first task: called when a task's memory is about to be freed, after its
 * last reference is gone: also the wakers that op records in flight held,
 * so the kernel is done with whatever the task's future pointed it at. A
 * fiber frees its stack here, not at its future's drop: a recv dropped
 * mid-flight (a cancel, a select's losing arm) may still write into a
 * buffer on that stack until its CQE. Checks @desc to know its own tasks.
 */
typedef void weft__task_dealloc_fn(const struct weft_future_desc *desc,
				   void *future);
extern weft__task_dealloc_fn *_Atomic weft__task_dealloc_hook;

#endif /* WEFT_TASK_HOOKS_H */
