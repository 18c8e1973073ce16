/* SPDX-License-Identifier: MIT */
/*
 * Task state transitions; the protocol is in state.h. C11 atomics.
 *
 * Orders: transitions that hand the task to another thread (wake -> queue,
 * to_idle -> re-queue, to_complete -> join handle) are acq_rel so that the
 * future's state written by one poller is visible to the next one and the
 * output to the joiner. Reference increments are relaxed (the caller
 * already holds a reference, as with Arc); decrements are acq_rel so the
 * thread that frees sees every other holder's writes.
 */
#include "task/state.h"

#define CAS(st, cur, next)                                              \
	atomic_compare_exchange_weak_explicit((st), &(cur), (next),     \
					      memory_order_acq_rel,     \
					      memory_order_acquire)

void weft__state_ref_inc(weft__state *st)
{
	uint64_t prev = atomic_fetch_add_explicit(st, WEFT__ST_REF_ONE,
						  memory_order_relaxed);
	/* An increment from zero means a reference was used after free; an
	 * overflow into nothing would wrap the count. Both are weft bugs. */
	weft__assert(weft__state_refs(prev) > 0);
	weft__assert(weft__state_refs(prev) < (UINT64_MAX >> WEFT__ST_REF_SHIFT));
}

bool weft__state_ref_dec(weft__state *st, unsigned n)
{
	uint64_t sub = (uint64_t)n * WEFT__ST_REF_ONE;
	uint64_t prev = atomic_fetch_sub_explicit(st, sub,
						  memory_order_acq_rel);
	weft__assert(weft__state_refs(prev) >= n);
	return weft__state_refs(prev) == n;
}

enum weft__wake_action weft__state_wake_by_ref(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	uint64_t next;
	enum weft__wake_action act;

	do {
		if (cur & (WEFT__ST_COMPLETE | WEFT__ST_NOTIFIED))
			return WEFT__WAKE_NOTHING;
		if (cur & WEFT__ST_RUNNING) {
			/* The poller re-queues it when the poll ends. */
			next = cur | WEFT__ST_NOTIFIED;
			act = WEFT__WAKE_NOTHING;
		} else {
			next = (cur | WEFT__ST_NOTIFIED) + WEFT__ST_REF_ONE;
			act = WEFT__WAKE_SUBMIT;
		}
	} while (!CAS(st, cur, next));
	return act;
}

enum weft__wake_action weft__state_wake_by_val(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	uint64_t next;
	enum weft__wake_action act;

	do {
		if (cur & WEFT__ST_RUNNING) {
			/* The poller holds a reference, so ours is not the
			 * last. */
			weft__assert(weft__state_refs(cur) > 1);
			next = (cur | WEFT__ST_NOTIFIED) - WEFT__ST_REF_ONE;
			act = WEFT__WAKE_NOTHING;
		} else if (cur & (WEFT__ST_COMPLETE | WEFT__ST_NOTIFIED)) {
			weft__assert(weft__state_refs(cur) > 0);
			next = cur - WEFT__ST_REF_ONE;
			act = weft__state_refs(next) == 0 ? WEFT__WAKE_DEALLOC
							  : WEFT__WAKE_NOTHING;
		} else {
			/* Our reference becomes the queue entry's. */
			next = cur | WEFT__ST_NOTIFIED;
			act = WEFT__WAKE_SUBMIT;
		}
	} while (!CAS(st, cur, next));
	return act;
}

enum weft__wake_action weft__state_cancel(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	uint64_t next;
	enum weft__wake_action act;

	do {
		if (cur & (WEFT__ST_COMPLETE | WEFT__ST_CANCELLED))
			return WEFT__WAKE_NOTHING;
		if (cur & (WEFT__ST_RUNNING | WEFT__ST_NOTIFIED)) {
			/* The poller (to_idle) or the queued entry
			 * (to_running) will see CANCELLED. */
			next = cur | WEFT__ST_CANCELLED;
			act = WEFT__WAKE_NOTHING;
		} else {
			next = (cur | WEFT__ST_CANCELLED | WEFT__ST_NOTIFIED) +
			       WEFT__ST_REF_ONE;
			act = WEFT__WAKE_SUBMIT;
		}
	} while (!CAS(st, cur, next));
	return act;
}

enum weft__run_action weft__state_to_running(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	uint64_t next;

	do {
		weft__assert(cur & WEFT__ST_NOTIFIED ||
			     cur & WEFT__ST_COMPLETE);
		if (cur & (WEFT__ST_RUNNING | WEFT__ST_COMPLETE))
			return WEFT__RUN_FAILED;
		next = (cur | WEFT__ST_RUNNING) & ~WEFT__ST_NOTIFIED;
	} while (!CAS(st, cur, next));
	return next & WEFT__ST_CANCELLED ? WEFT__RUN_CANCEL : WEFT__RUN_POLL;
}

enum weft__idle_action weft__state_to_idle(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	uint64_t next;
	enum weft__idle_action act;

	do {
		weft__assert(cur & WEFT__ST_RUNNING);
		if (cur & WEFT__ST_CANCELLED)
			return WEFT__IDLE_CANCELLED;
		next = cur & ~WEFT__ST_RUNNING;
		if (cur & WEFT__ST_NOTIFIED) {
			act = WEFT__IDLE_NOTIFIED;
		} else {
			/* The owned list still holds a reference, so this
			 * is never the last. */
			weft__assert(weft__state_refs(cur) > 1);
			next -= WEFT__ST_REF_ONE;
			act = WEFT__IDLE_OK;
		}
	} while (!CAS(st, cur, next));
	return act;
}

uint64_t weft__state_to_complete(weft__state *st)
{
	uint64_t prev = atomic_fetch_xor_explicit(
		st, WEFT__ST_RUNNING | WEFT__ST_COMPLETE, memory_order_acq_rel);
	weft__assert(prev & WEFT__ST_RUNNING);
	weft__assert(!(prev & WEFT__ST_COMPLETE));
	return prev;
}

bool weft__state_set_join_waker(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);

	do {
		weft__assert(cur & WEFT__ST_JOIN_INTEREST);
		weft__assert(!(cur & WEFT__ST_JOIN_WAKER));
		if (cur & WEFT__ST_COMPLETE)
			return false;
	} while (!CAS(st, cur, cur | WEFT__ST_JOIN_WAKER));
	return true;
}

bool weft__state_unset_join_waker(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);

	do {
		weft__assert(cur & WEFT__ST_JOIN_INTEREST);
		weft__assert(cur & WEFT__ST_JOIN_WAKER);
		if (cur & WEFT__ST_COMPLETE)
			return false;
	} while (!CAS(st, cur, cur & ~WEFT__ST_JOIN_WAKER));
	return true;
}

uint64_t weft__state_unset_join_waker_after_complete(weft__state *st)
{
	return atomic_fetch_and_explicit(st, ~WEFT__ST_JOIN_WAKER,
					 memory_order_acq_rel);
}

uint64_t weft__state_drop_join_interest(weft__state *st)
{
	uint64_t cur = atomic_load_explicit(st, memory_order_acquire);
	uint64_t next;

	do {
		/* Already dropped: the caller's mistake, reported by it. */
		if (!(cur & WEFT__ST_JOIN_INTEREST))
			return cur;
		next = cur & ~WEFT__ST_JOIN_INTEREST;
		if (!(cur & WEFT__ST_COMPLETE))
			next &= ~WEFT__ST_JOIN_WAKER;
	} while (!CAS(st, cur, next));
	return cur;
}
