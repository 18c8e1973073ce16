/* SPDX-License-Identifier: MIT */
/*
 * A worker's inbox: requests from other threads (op cancels) that only the
 * owner may carry out on its ring. Multi-producer push, owner takes all at
 * once: ck_stack's upmc push and batch pop.
 *
 * Under ThreadSanitizer the same Treiber stack is written with C11 atomics,
 * because ck_pr loads are volatile accesses TSan reports as races against
 * the CAS (see spinlock.h).
 */
#ifndef WEFT_IO_INBOX_H
#define WEFT_IO_INBOX_H

#include <ck_stack.h>
#include <stdbool.h>

#include "internal.h"

#if WEFT__TSAN
#include <stdatomic.h>

struct weft__inbox {
	_Atomic(ck_stack_entry_t *) head;
};

static inline void weft__inbox_init(struct weft__inbox *ib)
{
	atomic_init(&ib->head, NULL);
}

static inline void weft__inbox_push(struct weft__inbox *ib,
				    ck_stack_entry_t *e)
{
	ck_stack_entry_t *head = atomic_load_explicit(&ib->head,
						      memory_order_relaxed);
	do {
		e->next = head;
	} while (!atomic_compare_exchange_weak_explicit(
		&ib->head, &head, e, memory_order_release,
		memory_order_relaxed));
}

static inline ck_stack_entry_t *weft__inbox_take_all(struct weft__inbox *ib)
{
	return atomic_exchange_explicit(&ib->head, NULL, memory_order_acquire);
}

static inline bool weft__inbox_is_empty(struct weft__inbox *ib)
{
	return atomic_load_explicit(&ib->head, memory_order_acquire) == NULL;
}
#else
#include <ck_pr.h>

struct weft__inbox {
	ck_stack_t stack;
};

static inline void weft__inbox_init(struct weft__inbox *ib)
{
	ck_stack_init(&ib->stack);
}

static inline void weft__inbox_push(struct weft__inbox *ib,
				    ck_stack_entry_t *e)
{
	ck_stack_push_upmc(&ib->stack, e);
}

static inline ck_stack_entry_t *weft__inbox_take_all(struct weft__inbox *ib)
{
	return ck_stack_batch_pop_upmc(&ib->stack);
}

static inline bool weft__inbox_is_empty(struct weft__inbox *ib)
{
	return ck_pr_load_ptr(&ib->stack.head) == NULL;
}
#endif

#endif /* WEFT_IO_INBOX_H */
