/* SPDX-License-Identifier: MIT */
/*
 * The injector: the runtime's global MPMC run queue, for spawns and wakes
 * from outside the workers and for overflow from full worker deques.
 *
 * An intrusive singly linked FIFO under a mutex, as Tokio's Inject is: no
 * allocation per push, unbounded, and batch pushes for overflow. The
 * length is also kept in an atomic so that the hot "is it empty?" check of
 * every worker tick takes no lock.
 *
 * Every call is thread-safe.
 */
#ifndef WEFT_SCHED_INJECTOR_H
#define WEFT_SCHED_INJECTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

struct weft__injector {
	pthread_mutex_t lock;
	struct weft__qnode *head; /* under lock */
	struct weft__qnode *tail; /* under lock */
	_Atomic size_t len;       /* written under lock, read anywhere */
};

int weft__injector_init(struct weft__injector *inj);
void weft__injector_destroy(struct weft__injector *inj);

void weft__injector_push(struct weft__injector *inj, struct weft__qnode *n);

/* Push the chain @first..@last (linked by next) of @count nodes at once. */
void weft__injector_push_batch(struct weft__injector *inj,
			       struct weft__qnode *first,
			       struct weft__qnode *last, size_t count);

/* The oldest node, or NULL. */
struct weft__qnode *weft__injector_pop(struct weft__injector *inj);

/*
 * Pop up to @max nodes in one lock; returns the chain (linked by next,
 * NULL-terminated) and sets *@count.
 */
struct weft__qnode *weft__injector_pop_batch(struct weft__injector *inj,
					     size_t max, size_t *count);

static inline size_t weft__injector_len(struct weft__injector *inj)
{
	/* Acquire: pairs with the release store under the lock in push, for
	 * the parking worker's final scan (see sched/idle.c). */
	return atomic_load_explicit(&inj->len, memory_order_acquire);
}

static inline bool weft__injector_is_empty(struct weft__injector *inj)
{
	return weft__injector_len(inj) == 0;
}

#endif /* WEFT_SCHED_INJECTOR_H */
