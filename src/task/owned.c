/* SPDX-License-Identifier: MIT */
/* The owned-task list; see owned.h. C11 atomics for the count. */
#include <errno.h>
#include <stdlib.h>

#include "task/hooks.h"
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
		weft__spin_init(&o->shards[i].lock);
	o->mask = n - 1;
	atomic_init(&o->count, 0);
	atomic_init(&o->next_id, 1);
	return 0;
}

void weft__owned_destroy(struct weft__owned *o)
{
	if (!o->shards)
		return;
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
	t->id = atomic_fetch_add_explicit(&o->next_id, 1, memory_order_relaxed);

	struct weft__owned_shard *s = shard_of(o, t);

	weft__spin_lock(&s->lock);
	if (s->closed) {
		weft__spin_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	t->owned_prev = NULL;
	t->owned_next = s->head;
	if (s->head)
		s->head->owned_prev = t;
	s->head = t;
	atomic_fetch_add_explicit(&o->count, 1, memory_order_relaxed);
	weft__spin_unlock(&s->lock);
	return 0;
}

bool weft__owned_remove(struct weft__owned *o, struct weft__task *t)
{
	struct weft__owned_shard *s = shard_of(o, t);

	weft__spin_lock(&s->lock);
	if (t->owned_prev)
		t->owned_prev->owned_next = t->owned_next;
	else
		s->head = t->owned_next;
	if (t->owned_next)
		t->owned_next->owned_prev = t->owned_prev;
	/* acq_rel: the worker that sees 0 at shutdown sees every task's
	 * completion (and its op submissions) before it. seq_cst besides:
	 * with the drainer's seq_cst store of rt->drain and load of the
	 * count (weft_runtime_shutdown_timeout), one of the two sides sees
	 * the other, so the last completion cannot miss a draining caller.
	 * An RMW costs the same either way on x86 and arm64. */
	size_t prev = atomic_fetch_sub_explicit(&o->count, 1,
						memory_order_seq_cst);
	weft__spin_unlock(&s->lock);
	return prev == 1;
}

static void close_shards(struct weft__owned *o, bool cancel)
{
	for (unsigned i = 0; i <= o->mask; i++) {
		struct weft__owned_shard *s = &o->shards[i];
		struct weft__qnode *first = NULL, **tail = &first;

		/* Under the spinlock only atomic state transitions: tasks in
		 * the list hold the list's reference and removal takes this
		 * lock, so each is alive while we cancel it. An idle task
		 * comes back SUBMIT with a queue reference, and its qnode is
		 * ours until it is queued: chain it, queue it after unlock
		 * (queueing may take the injector lock or make a syscall). */
		weft__spin_lock(&s->lock);
		s->closed = true;
		for (struct weft__task *t = cancel ? s->head : NULL; t;
		     t = t->owned_next) {
			if (weft__state_cancel(&t->state) == WEFT__WAKE_SUBMIT) {
				*tail = &t->qnode;
				tail = &t->qnode.next;
			}
		}
		*tail = NULL;
		weft__spin_unlock(&s->lock);
		while (first) {
			struct weft__qnode *next = first->next;
			weft__sched_schedule(weft__task_from_qnode(first));
			first = next;
		}
	}
}

void weft__owned_close(struct weft__owned *o)
{
	close_shards(o, false);
}

void weft__owned_close_and_cancel(struct weft__owned *o)
{
	close_shards(o, true);
}
