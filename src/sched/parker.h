/* SPDX-License-Identifier: MIT */
/*
 * A thread parker for threads that are not workers (weft_block_on): a
 * refcounted futex word with a waker. The waker holds a reference, so a
 * wake that arrives after the waiting thread returned touches live memory
 * (Tokio's CachedParkThread keeps its Inner in an Arc for the same reason).
 */
#ifndef WEFT_SCHED_PARKER_H
#define WEFT_SCHED_PARKER_H

#include <weft/core.h>

struct weft__parker;

/* NULL on -ENOMEM. One reference, the caller's. */
struct weft__parker *weft__parker_new(void);
void weft__parker_unref(struct weft__parker *p);

/* A waker holding a new reference; waking it unparks the waiting thread. */
weft_waker weft__parker_waker(struct weft__parker *p);

/* Sleep until woken (consumes the wake; returns at once if one is
 * pending). Only the thread that owns the parker waits. */
void weft__parker_wait(struct weft__parker *p);

#endif /* WEFT_SCHED_PARKER_H */
