/* SPDX-License-Identifier: MIT */
/* The injector: see injector.h. C11 atomics for the length. */
#include <errno.h>

#include "sched/injector.h"

int weft__injector_init(struct weft__injector *inj)
{
	int err = pthread_mutex_init(&inj->lock, NULL);
	if (err)
		return -err;
	inj->head = inj->tail = NULL;
	atomic_init(&inj->len, 0);
	return 0;
}

void weft__injector_destroy(struct weft__injector *inj)
{
	pthread_mutex_destroy(&inj->lock);
}

void weft__injector_push_batch(struct weft__injector *inj,
			       struct weft__qnode *first,
			       struct weft__qnode *last, size_t count)
{
	last->next = NULL;
	pthread_mutex_lock(&inj->lock);
	if (inj->tail)
		inj->tail->next = first;
	else
		inj->head = first;
	inj->tail = last;
	size_t len = atomic_load_explicit(&inj->len, memory_order_relaxed);
	/* seq_cst: the pusher's following load of the idle count (notify in
	 * sched/idle.c) must not be ordered before this store. */
	atomic_store_explicit(&inj->len, len + count, memory_order_seq_cst);
	pthread_mutex_unlock(&inj->lock);
}

void weft__injector_push(struct weft__injector *inj, struct weft__qnode *n)
{
	weft__injector_push_batch(inj, n, n, 1);
}

struct weft__qnode *weft__injector_pop_batch(struct weft__injector *inj,
					     size_t max, size_t *count)
{
	struct weft__qnode *first, *last;
	size_t n = 0;

	*count = 0;
	if (weft__injector_is_empty(inj) || max == 0)
		return NULL;
	pthread_mutex_lock(&inj->lock);
	first = last = inj->head;
	if (!first) {
		pthread_mutex_unlock(&inj->lock);
		return NULL;
	}
	n = 1;
	while (n < max && last->next) {
		last = last->next;
		n++;
	}
	inj->head = last->next;
	if (!inj->head)
		inj->tail = NULL;
	size_t len = atomic_load_explicit(&inj->len, memory_order_relaxed);
	atomic_store_explicit(&inj->len, len - n, memory_order_relaxed);
	pthread_mutex_unlock(&inj->lock);
	last->next = NULL;
	*count = n;
	return first;
}

struct weft__qnode *weft__injector_pop(struct weft__injector *inj)
{
	size_t n;
	return weft__injector_pop_batch(inj, 1, &n);
}
