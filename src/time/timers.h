/* SPDX-License-Identifier: MIT */
/*
 * A worker's timers: a timer wheel (wheel.h) that only the owning worker
 * touches, plus an inbox through which other threads hand back timers
 * they are done with. The scheduler drives it, like the io driver:
 *
 *   process       fire what is due (wake the tasks, as many as the run
 *                 queue has room for), free what the inbox returned;
 *                 cheap when nothing is due (one clock read);
 *   park_timeout  ns until the next tick the wheel needs processing: the
 *                 timeout of the worker's park (one kernel timeout per
 *                 worker, never one per timer).
 *
 * Timer lifetime. A timer (struct weft__timer) is allocated by the first
 * poll of a sleep on some worker, whose wheel owns it for life: only the
 * owner files, unfiles and frees it. The future (the weft_io) holds it
 * until it takes the result or is dropped; then it is released:
 *   - on the owner's thread: unfiled if still filed, freed at once;
 *   - on any other thread (the task was stolen, or aborted from outside):
 *     if it has fired (the owner is done with it) it is freed there;
 *     otherwise its waker is taken and it is pushed to the owner's inbox,
 *     and the owner unfiles and frees it at its next process.
 * `fired` and the waker are under the timer's spinlock, where
 * the owner's firing meets a poll or release on another thread. Between
 * the owner's thread and the future on that same thread no lock is taken.
 * Unlike an op, a timer does not keep its task alive: there is no buffer
 * the kernel could write, so the waker is released as soon as the future
 * lets go of the timer.
 */
#ifndef WEFT_TIME_TIMERS_H
#define WEFT_TIME_TIMERS_H

#include <ck_stack.h>
#include <stdint.h>

#include <weft/core.h>

#include "internal.h"
#include "io/driver.h"
#include "io/inbox.h"
#include "spinlock.h"
#include "time/wheel.h"

struct weft__timer {
	struct weft__wheel_node node;  /* owner only */
	ck_stack_entry_t inbox_entry;  /* written by the releasing thread */
	weft__spinlock lock;
	bool fired;                    /* under lock */
	weft_waker waker;              /* under lock */
};

struct weft__timers {
	struct weft__wheel wheel;      /* owner only */
	uint64_t next_ns;              /* owner: process again at (ns) */
	struct weft__driver *driver;   /* the owner's, to unpark it */
	struct weft__inbox inbox weft__cacheline_aligned; /* released timers */
};

/* Set up on the owning thread, which becomes the current one. */
void weft__timers_init(struct weft__timers *t, struct weft__driver *d);

/* Owner: stop being the calling thread's timers. */
void weft__timers_leave(struct weft__timers *t);

/* Once no thread uses @t: free every timer it still holds (dropping the
 * wakers of timers whose future never let go of them). */
void weft__timers_exit(struct weft__timers *t);

/* The calling thread's timers, or NULL off a worker. */
struct weft__timers *weft__timers_current(void);

/*
 * Owner: free what was released, and fire what is due, waking at most
 * @budget tasks (the room in the caller's run queue); timers beyond it
 * stay due, in deadline order, and make park_timeout 0. Returns the number
 * of tasks woken.
 */
unsigned weft__timers_process(struct weft__timers *t, unsigned budget);

/* Owner: ns from now until process has work (0: now), UINT64_MAX: none. */
uint64_t weft__timers_park_timeout(struct weft__timers *t);

/* Any thread: timers are waiting in the inbox. */
static inline bool weft__timers_has_inbox(struct weft__timers *t)
{
	return !weft__inbox_is_empty(&t->inbox);
}

/* Owner: arm a timer due at @deadline_ns holding a clone of @waker.
 * NULL when out of memory. The deadline must be in the future. */
struct weft__timer *weft__timer_arm(struct weft__timers *t,
				    uint64_t deadline_ns,
				    const weft_waker *waker);

/* The future's side, on any thread: true once fired; otherwise store a
 * clone of @waker (replacing one that would not wake the same task). */
bool weft__timer_poll(struct weft__timers *owner, struct weft__timer *tm,
		      const weft_waker *waker);

/* The future's side, on any thread: let go of @tm (fired or not). */
void weft__timer_release(struct weft__timers *owner, struct weft__timer *tm);

#endif /* WEFT_TIME_TIMERS_H */
