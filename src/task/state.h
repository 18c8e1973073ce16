/* SPDX-License-Identifier: MIT */
/*
 * The task state word: every lifecycle fact of a task in one atomic 64-bit
 * word, after Tokio's runtime/task/state.rs. C11 atomics.
 *
 *  bit 0  RUNNING        a worker is polling the future (or dropping it)
 *  bit 1  COMPLETE       the future is gone; output (if any) is in place
 *  bit 2  NOTIFIED       the task is queued, or will be re-queued by the
 *                        worker polling it; at most one queue entry exists
 *  bit 3  CANCELLED      abort requested; the next scheduling point drops
 *                        the future instead of polling it
 *  bit 4  JOIN_INTEREST  a join handle exists
 *  bit 5  JOIN_WAKER     the join handle has stored a waker in the task and
 *                        handed the field to the runtime (see below)
 *  bits 6..63            reference count (REF_ONE = 1 << 6)
 *
 * References. One each for: the owned-task list (from spawn until the task
 * completes), the join handle, every waker, the queue entry (while
 * NOTIFIED and not RUNNING), the worker polling it (the queue entry's
 * reference, carried into the poll), and every in-flight op the task
 * submitted. The task is freed by whoever drops the last one, never
 * earlier.
 *
 * Scheduling: a wake moves idle -> NOTIFIED and takes a reference for the
 * queue entry; only that transition enqueues, so a task is never queued
 * twice and a wake that races a poll (NOTIFIED set while RUNNING) is
 * carried out by the poller when it finishes the poll: it re-queues the
 * task with the reference it already holds. No wake is ever lost.
 *
 * Join waker field (task->join_waker): while JOIN_WAKER is clear only the
 * join handle touches it; while set, only the runtime reads it, and only
 * after setting COMPLETE. The join handle sets JOIN_WAKER with a CAS that
 * fails once COMPLETE is set; the runtime, after waking it, clears
 * JOIN_WAKER and drops the waker itself if the join handle is gone.
 *
 * Every transition is one CAS loop or one fetch-op on the word, returning
 * an enum the caller must act on.
 */
#ifndef WEFT_TASK_STATE_H
#define WEFT_TASK_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

#define WEFT__ST_RUNNING ((uint64_t)1 << 0)
#define WEFT__ST_COMPLETE ((uint64_t)1 << 1)
#define WEFT__ST_NOTIFIED ((uint64_t)1 << 2)
#define WEFT__ST_CANCELLED ((uint64_t)1 << 3)
#define WEFT__ST_JOIN_INTEREST ((uint64_t)1 << 4)
#define WEFT__ST_JOIN_WAKER ((uint64_t)1 << 5)
#define WEFT__ST_REF_SHIFT 6
#define WEFT__ST_REF_ONE ((uint64_t)1 << WEFT__ST_REF_SHIFT)
#define WEFT__ST_FLAGS (WEFT__ST_REF_ONE - 1)

typedef _Atomic uint64_t weft__state;

static inline uint64_t weft__state_refs(uint64_t s)
{
	return s >> WEFT__ST_REF_SHIFT;
}

static inline uint64_t weft__state_load(weft__state *st)
{
	/* Acquire: a reader that sees COMPLETE sees the output (written
	 * before the AcqRel transition to COMPLETE). */
	return atomic_load_explicit(st, memory_order_acquire);
}

/* Initial state of a new task: queued, @refs references, join or not. */
static inline void weft__state_init(weft__state *st, unsigned refs,
				    bool join_interest)
{
	uint64_t s = WEFT__ST_NOTIFIED | (uint64_t)refs * WEFT__ST_REF_ONE;
	if (join_interest)
		s |= WEFT__ST_JOIN_INTEREST;
	atomic_init(st, s);
}

/* --- references ---------------------------------------------------------- */

void weft__state_ref_inc(weft__state *st);

/* Drop @n references; true if they were the last (free the task). */
bool weft__state_ref_dec(weft__state *st, unsigned n)
	__attribute__((warn_unused_result));

/* --- wakes --------------------------------------------------------------- */

enum weft__wake_action {
	WEFT__WAKE_NOTHING, /* no queue entry to make */
	WEFT__WAKE_SUBMIT,  /* enqueue the task (a reference was taken for it) */
	WEFT__WAKE_DEALLOC, /* (by value only) last reference dropped: free */
};

/* Wake keeping the caller's reference (wake_by_ref). Never DEALLOC. */
enum weft__wake_action weft__state_wake_by_ref(weft__state *st)
	__attribute__((warn_unused_result));

/*
 * Wake consuming the caller's reference (wake by value). On SUBMIT the
 * caller's reference becomes the queue entry's.
 */
enum weft__wake_action weft__state_wake_by_val(weft__state *st)
	__attribute__((warn_unused_result));

/*
 * Abort: set CANCELLED. If the task is idle, also NOTIFIED plus a queue
 * reference (SUBMIT) so that a worker drops its future.
 */
enum weft__wake_action weft__state_cancel(weft__state *st)
	__attribute__((warn_unused_result));

/* --- polling ------------------------------------------------------------- */

enum weft__run_action {
	WEFT__RUN_POLL,     /* RUNNING set, NOTIFIED cleared: poll the future */
	WEFT__RUN_CANCEL,   /* as POLL, but CANCELLED: drop the future instead */
	WEFT__RUN_FAILED,   /* already complete: drop the queue reference */
};

/* Worker, holding the queue entry's reference. */
enum weft__run_action weft__state_to_running(weft__state *st)
	__attribute__((warn_unused_result));

enum weft__idle_action {
	WEFT__IDLE_OK,        /* RUNNING cleared, the poll's reference dropped */
	WEFT__IDLE_NOTIFIED,  /* woken during the poll: re-queue; the poll's
			       * reference becomes the queue entry's */
	WEFT__IDLE_CANCELLED, /* CANCELLED during the poll: still RUNNING; drop
			       * the future and complete */
};

/* Worker, after poll returned PENDING. */
enum weft__idle_action weft__state_to_idle(weft__state *st)
	__attribute__((warn_unused_result));

/*
 * Worker, after the future returned READY or was dropped for cancel:
 * clear RUNNING, set COMPLETE. Returns the state before (acq_rel: the output
 * written before is visible to whoever sees COMPLETE).
 */
uint64_t weft__state_to_complete(weft__state *st);

/* --- join handle --------------------------------------------------------- */

/*
 * Join handle: set JOIN_WAKER after storing a waker. False if the task
 * completed first (the join handle still owns the field).
 */
bool weft__state_set_join_waker(weft__state *st)
	__attribute__((warn_unused_result));

/*
 * Join handle: clear JOIN_WAKER to take the field back for replacing it.
 * False if the task completed first (the field is then the runtime's to
 * read until it clears JOIN_WAKER itself; the join handle must not touch
 * it, but the output is ready).
 */
bool weft__state_unset_join_waker(weft__state *st)
	__attribute__((warn_unused_result));

/*
 * Runtime, after COMPLETE and waking the join waker: clear JOIN_WAKER.
 * Returns the state before; if JOIN_INTEREST is clear there, the join
 * handle has gone and the runtime must drop the waker.
 */
uint64_t weft__state_unset_join_waker_after_complete(weft__state *st);

/*
 * Join handle dropped: clear JOIN_INTEREST, and JOIN_WAKER too unless
 * COMPLETE (before completion, the join handle takes the waker field back
 * with it). Returns the state before. With JOIN_INTEREST already clear (a
 * second drop of the handle: user misuse) it changes nothing.
 */
uint64_t weft__state_drop_join_interest(weft__state *st);

#endif /* WEFT_TASK_STATE_H */
