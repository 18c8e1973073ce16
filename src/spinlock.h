/* SPDX-License-Identifier: MIT */
/*
 * A tiny spinlock for critical sections of a few loads and stores (op
 * records, oneshot channels): ck_spinlock_fas.
 *
 * Under ThreadSanitizer it becomes a C11 atomic_flag lock: ck's builtin port
 * implements ck_pr_store as a volatile store after a fence, which TSan sees
 * as a plain write, so it would miss the unlock's release and report the
 * data the lock protects as racing. The C11 version has the same semantics
 * in a form TSan models.
 */
#ifndef WEFT_SPINLOCK_H
#define WEFT_SPINLOCK_H

#include "internal.h"

#if WEFT__TSAN
#include <stdatomic.h>

typedef struct {
	atomic_flag flag;
} weft__spinlock;

static inline void weft__spin_init(weft__spinlock *l)
{
	atomic_flag_clear_explicit(&l->flag, memory_order_relaxed);
}

static inline void weft__spin_lock(weft__spinlock *l)
{
	while (atomic_flag_test_and_set_explicit(&l->flag,
						 memory_order_acquire))
		;
}

static inline void weft__spin_unlock(weft__spinlock *l)
{
	atomic_flag_clear_explicit(&l->flag, memory_order_release);
}
#else
#include <ck_spinlock.h>

typedef ck_spinlock_fas_t weft__spinlock;

static inline void weft__spin_init(weft__spinlock *l)
{
	ck_spinlock_fas_init(l);
}

static inline void weft__spin_lock(weft__spinlock *l)
{
	ck_spinlock_fas_lock(l);
}

static inline void weft__spin_unlock(weft__spinlock *l)
{
	ck_spinlock_fas_unlock(l);
}
#endif

#endif /* WEFT_SPINLOCK_H */
