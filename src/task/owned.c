/* SPDX-License-Identifier: MIT */
/* The owned-task list; see owned.h. C11 atomics for the count. */
#include <errno.h>
#include <stdlib.h>

#include "task/owned.h"
#include "task/task.h"

int weft__owned_init(struct weft__owned *o, unsigned min_shards)
{
	unsigned n = 1;

	while (n < min_shards)
		n <<= 1;
	o->shards = calloc(n, sizeof(*o->shards));
	if (!o->shards)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		pthread_mutex_init(&o->shards[i].lock, NULL);
	o->mask = n - 1;
	atomic_init(&o->count, 0);
	return 0;
}

void weft__owned_destroy(struct weft__owned *o)
{
	if (!o->shards)
		return;
	for (unsigned i = 0; i <= o->mask; i++)
		pthread_mutex_destroy(&o->shards[i].lock);
	free(o->shards);
	o->shards = NULL;
}

static struct weft__owned_shard *shard_of(struct weft__owned *o,
					  struct weft__task *t)
{
	return &o->shards[t->id & o->mask];
}

int weft__owned_insert(struct weft__owned *o, struct weft__task *t)
{
	struct weft__owned_shard *s = shard_of(o, t);

	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	t->owned_prev = NULL;
	t->owned_next = s->head;
	if (s->head)
		s->head->owned_prev = t;
	s->head = t;
	atomic_fetch_add_explicit(&o->count, 1, memory_order_relaxed);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

bool weft__owned_remove(struct weft__owned *o, struct weft__task *t)
{
	struct weft__owned_shard *s = shard_of(o, t);

	pthread_mutex_lock(&s->lock);
	if (t->owned_prev)
		t->owned_prev->owned_next = t->owned_next;
	else
		s->head = t->owned_next;
	if (t->owned_next)
		t->owned_next->owned_prev = t->owned_prev;
	/* acq_rel: the worker that sees 0 at shutdown sees every task's
	 * completion (and its op submissions) before it. */
	size_t prev = atomic_fetch_sub_explicit(&o->count, 1,
						memory_order_acq_rel);
	pthread_mutex_unlock(&s->lock);
	return prev == 1;
}

void weft__owned_close_and_cancel(struct weft__owned *o)
{
	for (unsigned i = 0; i <= o->mask; i++) {
		struct weft__owned_shard *s = &o->shards[i];

		pthread_mutex_lock(&s->lock);
		s->closed = true;
		/* Tasks in the list hold the list's reference, and removal
		 * takes this lock, so each is alive while we cancel it.
		 * Cancelling only queues the task; nothing here re-enters
		 * this shard's lock. */
		for (struct weft__task *t = s->head; t; t = t->owned_next)
			weft__task_cancel(t);
		pthread_mutex_unlock(&s->lock);
	}
}
