/* SPDX-License-Identifier: MIT */
/*
 * The io driver: one per worker, below the scheduler. It owns a ring, the
 * inboxes through which other threads hand it op cancels and stream
 * resumes, the park state and the io counters. The worker that owns it calls down into it:
 *
 *   turn        drain the inbox, submit prepared SQEs, reap CQEs; never
 *               blocks (under DEFER_TASKRUN this is also when the kernel
 *               runs completion work);
 *   park        sleep inside io_uring_enter until a CQE arrives (an op, an
 *               unpark from another thread) or the timeout passes;
 *   unpark      any thread: wake the owner if it is parked.
 *
 * The driver never names a worker or a task: an op reaches its task only
 * through the waker it holds (op.h), and the scheduler decides what a wake
 * means.
 *
 * Park protocol (park_state: RUNNING, PARKED, NOTIFIED):
 *   owner:   park_begin  CAS RUNNING -> PARKED; a NOTIFIED state means an
 *                        unpark came while it ran: it is consumed and
 *                        park_begin fails (look for work again);
 *            the caller then re-checks its queues (see sched/idle.h), and
 *            either park_abort()s or park()s, both of which end RUNNING.
 *   unpark:  exchange NOTIFIED; only an exchange that saw PARKED sends a
 *            signal (MSG_RING from a thread that owns a driver, else the
 *            eventfd armed in the ring), so there is at most one signal per
 *            park.
 *
 * Thread-safety: unpark, remote cancels (op.c) and the counters are for any
 * thread; everything else is the owner's alone.
 */
#ifndef WEFT_IO_DRIVER_H
#define WEFT_IO_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"
#include "io/inbox.h"
#include "io/ring.h"

/* park_state values */
enum { WEFT__DRV_RUNNING = 0, WEFT__DRV_PARKED = 1, WEFT__DRV_NOTIFIED = 2 };

/*
 * Counters: relaxed atomics, summed on read (weft_runtime_metrics_get).
 * Owner-only counters are bumped with WEFT__DRV_INC(d, field) (no RMW),
 * any-thread ones with atomic_fetch_add_explicit(..., relaxed). Each is
 * zero from the workers' memset (alloc_runtime) even without an
 * atomic_init in weft__driver_prepare.
 */
struct weft__driver_metrics {
	_Atomic uint64_t ops_submitted;  /* owner */
	_Atomic uint64_t ops_completed;  /* owner */
	_Atomic uint64_t remote_cancels; /* any thread: cancels pushed here */
	_Atomic uint64_t unparks;        /* any thread: signals sent here */
	/* owner: a multishot op (accept, recv) ended without error and was
	 * submitted again: WEFT__DRV_INC(d, multishot_rearms) at the rearm */
	_Atomic uint64_t multishot_rearms;
	/* owner: a recv from a provided buffer ring ended with -ENOBUFS:
	 * WEFT__DRV_INC(d, bufring_enobufs) where the CQE is handled */
	_Atomic uint64_t bufring_enobufs;
	/* owner: an accept got EMFILE/ENFILE and paused before retrying:
	 * WEFT__DRV_INC(d, accept_backoffs) once per pause */
	_Atomic uint64_t accept_backoffs;
	/* owner: a stream held its cap of buffers and stopped receiving:
	 * WEFT__DRV_INC(d, stream_pauses) once per pause */
	_Atomic uint64_t stream_pauses;
	/* owner: a buffer that came past a stream's cap was copied out:
	 * WEFT__DRV_INC(d, stream_spills) per buffer */
	_Atomic uint64_t stream_spills;
};

struct weft__bufpool;

struct weft__driver {
	struct weft__ring ring; /* owner only */
	struct weft__bufpool *pool;  /* owner: provided buffers, lazily */
	struct weft__op *starved;    /* owner: streams waiting for buffers */
	struct weft__op *paused;     /* owner: streams waiting for takers */
	unsigned buf_count, buf_size; /* the pool's shape, set before init */
	unsigned stream_buf_max;     /* a stream's cap on queued buffers */

	/* Shared with other threads. */
	struct weft__inbox inbox weft__cacheline_aligned; /* ops to cancel */
	struct weft__inbox resumes;  /* paused streams to re-arm */
	_Atomic int park_state weft__cacheline_aligned;
	struct weft__driver_metrics m weft__cacheline_aligned;
};

/* Relaxed increment of an owner-only counter (no RMW needed). */
#define WEFT__DRV_INC(d, field) \
	atomic_store_explicit(&(d)->m.field, \
		atomic_load_explicit(&(d)->m.field, memory_order_relaxed) + 1, \
		memory_order_relaxed)

/* Before init: the parts other threads may look at. Any thread. */
void weft__driver_prepare(struct weft__driver *d);

/*
 * Set up the ring on the calling thread, which becomes the owner
 * (SINGLE_ISSUER binds the ring to it), and make it this thread's current
 * driver. @flags: WEFT_RT_* ring flags. 0 or a negative errno.
 */
int weft__driver_init(struct weft__driver *d, unsigned entries,
		      unsigned flags, unsigned *mode_out);

/* Owner: stop being the current driver (the thread is leaving). */
void weft__driver_leave(struct weft__driver *d);

/* Any thread, once the owner has left: tear the ring down. */
void weft__driver_exit(struct weft__driver *d);

/* The driver owned by the calling thread, or NULL. */
struct weft__driver *weft__driver_current(void);

/* Owner: forward cancels, submit, reap. True if any CQE was handled. */
bool weft__driver_turn(struct weft__driver *d);

/* Owner: handle the CQEs already posted, without a syscall. */
unsigned weft__driver_reap(struct weft__driver *d);

/* Owner: begin parking (see the protocol above). False: an unpark was
 * pending and has been consumed; do not sleep. */
bool weft__driver_park_begin(struct weft__driver *d);

/* Owner, after park_begin: decided not to sleep after all. */
void weft__driver_park_abort(struct weft__driver *d);

/*
 * Owner, after park_begin: sleep until a CQE arrives or @timeout_ns passes
 * (UINT64_MAX: no timeout), then reap. Returns RUNNING. EINTR returns too:
 * the caller re-checks its queues before parking again.
 */
void weft__driver_park(struct weft__driver *d, uint64_t timeout_ns);

/* Any thread: wake @d's owner if it is parked (at most one signal per
 * park). A no-op on the calling thread's own driver. */
void weft__driver_unpark(struct weft__driver *d);

/* Owner: nothing in flight and no cancel waiting in the inbox. */
bool weft__driver_is_idle(struct weft__driver *d);

/* Any thread: cancels or resumes are waiting in the inboxes. */
static inline bool weft__driver_has_inbox(struct weft__driver *d)
{
	return !weft__inbox_is_empty(&d->inbox) ||
	       !weft__inbox_is_empty(&d->resumes);
}

#endif /* WEFT_IO_DRIVER_H */
