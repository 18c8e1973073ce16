/* SPDX-License-Identifier: MIT */
/*
 * The owned-task list: every live task of a runtime, so that shutdown can
 * cancel them all (Tokio's OwnedTasks). Sharded by task id to keep spawns on
 * different workers off one lock. A task is inserted at spawn and removed
 * when it completes; the list holds one reference meanwhile.
 *
 * Closing happens under every shard lock, so a spawn racing shutdown either
 * lands before the close (and is cancelled with the rest) or fails with
 * -ESHUTDOWN. All calls are thread-safe.
 *
 * The shard lock is a spinlock (spinlock.h): insert and remove hold it for
 * a few pointer stores, and close for atomic transitions only (a pthread
 * mutex here showed in chained_spawn; docs/design.md has the numbers).
 */
#ifndef WEFT_TASK_OWNED_H
#define WEFT_TASK_OWNED_H

#include <stdatomic.h>
#include <stdbool.h>

#include "internal.h"
#include "spinlock.h"

struct weft__task;

struct weft__owned_shard {
	weft__spinlock lock;
	struct weft__task *head;
	bool closed;
} weft__cacheline_aligned;

struct weft__owned {
	struct weft__owned_shard *shards;
	unsigned mask;
	_Atomic size_t count;
	_Atomic uint64_t next_id; /* task ids, from 1 */
};

int weft__owned_init(struct weft__owned *o, unsigned min_shards);
void weft__owned_destroy(struct weft__owned *o);

/* Give @t its id and insert it: 0, or -ESHUTDOWN once closed. */
int weft__owned_insert(struct weft__owned *o, struct weft__task *t);

/* Remove @t; true if the list is now empty (after a close, or not). */
bool weft__owned_remove(struct weft__owned *o, struct weft__task *t);

/* Refuse further inserts (the tasks in the list run on). Idempotent. */
void weft__owned_close(struct weft__owned *o);

/* Refuse further inserts and cancel every task in the list. */
void weft__owned_close_and_cancel(struct weft__owned *o);

static inline size_t weft__owned_count(struct weft__owned *o)
{
	return atomic_load_explicit(&o->count, memory_order_acquire);
}

#endif /* WEFT_TASK_OWNED_H */
