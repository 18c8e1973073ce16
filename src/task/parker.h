/* SPDX-License-Identifier: MIT */
/*
 * A thread parker for threads that are not workers (weft_block_on, the
 * blocking channel calls through weft__block_poll): a
 * refcounted futex word with a waker. The waker holds a reference, so a
 * wake that arrives after the waiting thread returned touches live memory
 * (Tokio's CachedParkThread keeps its Inner in an Arc for the same reason).
 */
#ifndef WEFT_TASK_PARKER_H
#define WEFT_TASK_PARKER_H

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

/*
 * Poll the future @state (descriptor @desc, output to @out) on the calling
 * thread until READY, sleeping on a parker between polls; then its drop
 * runs. For the blocking calls of channels and sync primitives from plain
 * threads (futures that need no worker: no ring op, no timer). Returns 0,
 * -EDEADLK on a worker thread of any runtime (blocking a worker would stall
 * its queue and could deadlock; nothing was polled), or -ENOMEM (nothing
 * was polled; the caller still owns @state undropped).
 */
int weft__block_poll(const weft_future_desc *desc, void *state, void *out);

#endif /* WEFT_TASK_PARKER_H */
