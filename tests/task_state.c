/* SPDX-License-Identifier: MIT */
/*
 * The task state word (src/task/state.c) driven directly, without a
 * runtime: each transition of the protocol in src/task/state.h, then
 * concurrent wakers against a poller to check "never queued twice, no wake
 * lost".
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "task/state.h"

#define RUNNING WEFT__ST_RUNNING
#define COMPLETE WEFT__ST_COMPLETE
#define NOTIFIED WEFT__ST_NOTIFIED
#define CANCELLED WEFT__ST_CANCELLED
#define JOIN_INTEREST WEFT__ST_JOIN_INTEREST
#define JOIN_WAKER WEFT__ST_JOIN_WAKER

static uint64_t flags(weft__state *st)
{
	return weft__state_load(st) & WEFT__ST_FLAGS;
}

static uint64_t refs(weft__state *st)
{
	return weft__state_refs(weft__state_load(st));
}

/*
 * A freshly spawned task with a join handle: refs owned list + queue entry
 * + join handle = 3, NOTIFIED.
 */
static void spawned(weft__state *st)
{
	weft__state_init(st, 3, true);
}

/* Spawned, polled once, PENDING: idle with 2 refs (owned list, join). */
static void idle(weft__state *st)
{
	spawned(st);
	cr_assert_eq(weft__state_to_running(st), WEFT__RUN_POLL);
	cr_assert_eq(weft__state_to_idle(st), WEFT__IDLE_OK);
	cr_assert_eq(flags(st), JOIN_INTEREST);
	cr_assert_eq(refs(st), 2);
}

Test(state, init)
{
	weft__state st;
	weft__state_init(&st, 3, true);
	cr_expect_eq(flags(&st), NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(refs(&st), 3);
	weft__state_init(&st, 2, false);
	cr_expect_eq(flags(&st), NOTIFIED);
	cr_expect_eq(refs(&st), 2);
}

Test(state, flag_bits_are_distinct)
{
	uint64_t all[] = { RUNNING, COMPLETE, NOTIFIED, CANCELLED,
			   JOIN_INTEREST, JOIN_WAKER };
	uint64_t acc = 0;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		cr_expect_eq(acc & all[i], 0);
		cr_expect_eq(all[i] & ~WEFT__ST_FLAGS, 0);
		acc |= all[i];
	}
	cr_expect_eq(WEFT__ST_REF_ONE & WEFT__ST_FLAGS, 0);
}

Test(state, first_poll)
{
	weft__state st;
	spawned(&st);
	cr_expect_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	cr_expect_eq(flags(&st), RUNNING | JOIN_INTEREST);
	cr_expect_eq(refs(&st), 3, "the queue ref is carried into the poll");
	cr_expect_eq(weft__state_to_idle(&st), WEFT__IDLE_OK);
	cr_expect_eq(flags(&st), JOIN_INTEREST);
	cr_expect_eq(refs(&st), 2, "to_idle drops the poll's ref");
}

Test(state, wake_by_ref_idle_submits_with_ref)
{
	weft__state st;
	idle(&st);
	cr_expect_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_SUBMIT);
	cr_expect_eq(flags(&st), NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(refs(&st), 3, "SUBMIT takes a ref for the queue entry");
	/* The queued task is then polled normally. */
	cr_expect_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	cr_expect_eq(flags(&st), RUNNING | JOIN_INTEREST);
}

Test(state, wake_by_ref_notified_does_nothing)
{
	weft__state st;
	idle(&st);
	cr_assert_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_SUBMIT);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), 3);
	cr_expect_eq(flags(&st), NOTIFIED | JOIN_INTEREST);
	/* Also on a freshly spawned (queued) task. */
	spawned(&st);
	cr_expect_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), 3);
}

Test(state, wake_while_running_then_to_idle_notified)
{
	weft__state st;
	idle(&st);
	cr_assert_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_SUBMIT);
	cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	uint64_t r = refs(&st);

	cr_expect_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(flags(&st), RUNNING | NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(refs(&st), r, "no ref taken while RUNNING");
	cr_expect_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_NOTHING);

	cr_expect_eq(weft__state_to_idle(&st), WEFT__IDLE_NOTIFIED);
	cr_expect_eq(flags(&st), NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(refs(&st), r, "the poll's ref becomes the queue's");
	/* Re-queued: the next run polls again. */
	cr_expect_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	cr_expect_eq(weft__state_to_idle(&st), WEFT__IDLE_OK);
	cr_expect_eq(refs(&st), r - 1);
	cr_expect_eq(flags(&st), JOIN_INTEREST);
}

Test(state, wake_by_val_idle_submits_with_callers_ref)
{
	weft__state st;
	idle(&st);
	weft__state_ref_inc(&st); /* a waker */
	cr_assert_eq(refs(&st), 3);
	cr_expect_eq(weft__state_wake_by_val(&st), WEFT__WAKE_SUBMIT);
	cr_expect_eq(refs(&st), 3, "the waker's ref became the queue's");
	cr_expect_eq(flags(&st), NOTIFIED | JOIN_INTEREST);
}

Test(state, wake_by_val_notified_drops_ref)
{
	weft__state st;
	spawned(&st);
	weft__state_ref_inc(&st);
	cr_expect_eq(weft__state_wake_by_val(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), 3);
	cr_expect_eq(flags(&st), NOTIFIED | JOIN_INTEREST);
}

Test(state, wake_by_val_running_sets_notified_drops_ref)
{
	weft__state st;
	spawned(&st);
	cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	weft__state_ref_inc(&st);
	cr_expect_eq(weft__state_wake_by_val(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), 3);
	cr_expect_eq(flags(&st), RUNNING | NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(weft__state_to_idle(&st), WEFT__IDLE_NOTIFIED);
}

/* Run an idle-or-queued task to completion: returns refs left. */
static void complete(weft__state *st)
{
	cr_assert_eq(weft__state_to_running(st), WEFT__RUN_POLL);
	uint64_t prev = weft__state_to_complete(st);
	cr_assert(prev & RUNNING);
	cr_assert_not(prev & COMPLETE);
	cr_assert_not(flags(st) & RUNNING);
	cr_assert(flags(st) & COMPLETE);
}

Test(state, to_complete)
{
	weft__state st;
	spawned(&st);
	cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	uint64_t prev = weft__state_to_complete(&st);
	cr_expect_eq(prev & WEFT__ST_FLAGS, RUNNING | JOIN_INTEREST);
	cr_expect_eq(flags(&st), COMPLETE | JOIN_INTEREST);
	cr_expect_eq(refs(&st), 3, "to_complete leaves refs alone");
}

Test(state, wake_on_complete_does_nothing)
{
	weft__state st;
	spawned(&st);
	complete(&st);
	uint64_t r = refs(&st);
	cr_expect_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), r);
	cr_expect_not(flags(&st) & NOTIFIED);
}

Test(state, wake_by_val_on_complete_deallocs_at_last_ref)
{
	weft__state st;
	spawned(&st);
	weft__state_ref_inc(&st); /* waker A */
	weft__state_ref_inc(&st); /* waker B */
	complete(&st);
	/* The worker drops the poll ref and the owned list's; the join
	 * handle is dropped. Left: the two wakers. */
	cr_assert_not(weft__state_ref_dec(&st, 2));
	cr_assert_not(weft__state_ref_dec(&st, 1));
	cr_assert_eq(refs(&st), 2);
	cr_expect_eq(weft__state_wake_by_val(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), 1);
	cr_expect_eq(weft__state_wake_by_val(&st), WEFT__WAKE_DEALLOC);
	cr_expect_eq(refs(&st), 0);
}

Test(state, cancel_idle_submits)
{
	weft__state st;
	idle(&st);
	cr_expect_eq(weft__state_cancel(&st), WEFT__WAKE_SUBMIT);
	cr_expect_eq(flags(&st), CANCELLED | NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(refs(&st), 3, "SUBMIT takes a queue ref");
	cr_expect_eq(weft__state_to_running(&st), WEFT__RUN_CANCEL);
	cr_expect(flags(&st) & RUNNING);
	cr_expect_not(flags(&st) & NOTIFIED);
}

Test(state, cancel_queued_marks_only)
{
	weft__state st;
	spawned(&st);
	cr_expect_eq(weft__state_cancel(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(flags(&st), CANCELLED | NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(refs(&st), 3);
	cr_expect_eq(weft__state_to_running(&st), WEFT__RUN_CANCEL);
}

Test(state, cancel_running_then_to_idle_cancelled)
{
	weft__state st;
	spawned(&st);
	cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	cr_expect_eq(weft__state_cancel(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(flags(&st), RUNNING | CANCELLED | JOIN_INTEREST);
	cr_expect_eq(refs(&st), 3);
	cr_expect_eq(weft__state_to_idle(&st), WEFT__IDLE_CANCELLED);
	cr_expect(flags(&st) & RUNNING, "still RUNNING: the worker drops it");
	cr_expect_eq(refs(&st), 3);
	(void)weft__state_to_complete(&st);
	cr_expect_eq(flags(&st), COMPLETE | CANCELLED | JOIN_INTEREST);
}

Test(state, cancel_beats_notified_in_to_idle)
{
	weft__state st;
	spawned(&st);
	cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	cr_assert_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_NOTHING);
	cr_assert_eq(weft__state_cancel(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(weft__state_to_idle(&st), WEFT__IDLE_CANCELLED);
}

Test(state, cancel_twice_and_after_complete)
{
	weft__state st;
	idle(&st);
	cr_assert_eq(weft__state_cancel(&st), WEFT__WAKE_SUBMIT);
	cr_expect_eq(weft__state_cancel(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), 3, "second cancel takes no ref");

	spawned(&st);
	complete(&st);
	uint64_t r = refs(&st);
	cr_expect_eq(weft__state_cancel(&st), WEFT__WAKE_NOTHING);
	cr_expect_not(flags(&st) & CANCELLED);
	cr_expect_eq(refs(&st), r);
}

Test(state, wake_after_cancel_does_not_requeue)
{
	weft__state st;
	idle(&st);
	cr_assert_eq(weft__state_cancel(&st), WEFT__WAKE_SUBMIT);
	cr_expect_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_NOTHING);
	cr_expect_eq(refs(&st), 3);
}

Test(state, to_running_on_complete_fails)
{
	weft__state st;
	spawned(&st);
	complete(&st);
	cr_expect_eq(weft__state_to_running(&st), WEFT__RUN_FAILED);
	cr_expect_eq(flags(&st) & (RUNNING | COMPLETE), COMPLETE);
}

/* --- join waker ------------------------------------------------------- */

Test(state, join_waker_set_and_unset_before_complete)
{
	weft__state st;
	idle(&st);
	cr_expect(weft__state_set_join_waker(&st));
	cr_expect_eq(flags(&st), JOIN_INTEREST | JOIN_WAKER);
	cr_expect(weft__state_unset_join_waker(&st));
	cr_expect_eq(flags(&st), JOIN_INTEREST);
	cr_expect(weft__state_set_join_waker(&st));
	cr_expect_eq(refs(&st), 2, "join waker transitions leave refs alone");
}

Test(state, join_waker_set_after_complete_fails)
{
	weft__state st;
	spawned(&st);
	complete(&st);
	cr_expect_not(weft__state_set_join_waker(&st));
	cr_expect_not(flags(&st) & JOIN_WAKER);
}

Test(state, join_waker_unset_after_complete_fails)
{
	weft__state st;
	idle(&st);
	cr_assert(weft__state_set_join_waker(&st));
	cr_assert_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_SUBMIT);
	complete(&st);
	cr_expect_not(weft__state_unset_join_waker(&st));
	cr_expect(flags(&st) & JOIN_WAKER, "the field is the runtime's now");
	/* The runtime, after waking it: */
	uint64_t prev = weft__state_unset_join_waker_after_complete(&st);
	cr_expect(prev & JOIN_WAKER);
	cr_expect(prev & JOIN_INTEREST, "join alive: it drops the waker");
	cr_expect_not(flags(&st) & JOIN_WAKER);
	cr_expect(flags(&st) & COMPLETE);
}

Test(state, drop_join_interest_before_complete)
{
	weft__state st;
	idle(&st);
	cr_assert(weft__state_set_join_waker(&st));
	uint64_t prev = weft__state_drop_join_interest(&st);
	cr_expect_eq(prev & WEFT__ST_FLAGS, JOIN_INTEREST | JOIN_WAKER);
	cr_expect_eq(flags(&st), 0,
		     "JOIN_WAKER goes with the handle before completion");
	cr_expect_eq(refs(&st), 2, "the handle drops its ref separately");
	cr_expect_not(weft__state_ref_dec(&st, 1));
	/* The task completes later: nobody to wake. */
	cr_assert_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_SUBMIT);
	complete(&st);
	prev = weft__state_unset_join_waker_after_complete(&st);
	cr_expect_not(prev & JOIN_WAKER);
	cr_expect_not(prev & JOIN_INTEREST);
}

Test(state, drop_join_interest_after_complete)
{
	weft__state st;
	idle(&st);
	cr_assert(weft__state_set_join_waker(&st));
	cr_assert_eq(weft__state_wake_by_ref(&st), WEFT__WAKE_SUBMIT);
	complete(&st);
	/* The handle goes between COMPLETE and the runtime's unset: */
	uint64_t prev = weft__state_drop_join_interest(&st);
	cr_expect(prev & COMPLETE);
	cr_expect(flags(&st) & JOIN_WAKER, "runtime still owns the field");
	cr_expect_not(flags(&st) & JOIN_INTEREST);
	prev = weft__state_unset_join_waker_after_complete(&st);
	cr_expect(prev & JOIN_WAKER);
	cr_expect_not(prev & JOIN_INTEREST,
		      "runtime sees the handle gone: it drops the waker");
	cr_expect_not(flags(&st) & JOIN_WAKER);
}

Test(state, drop_join_interest_without_waker)
{
	weft__state st;
	spawned(&st);
	uint64_t prev = weft__state_drop_join_interest(&st);
	cr_expect_eq(prev & WEFT__ST_FLAGS, NOTIFIED | JOIN_INTEREST);
	cr_expect_eq(flags(&st), NOTIFIED);
}

/* --- references -------------------------------------------------------- */

Test(state, ref_inc_dec_and_last)
{
	weft__state st;
	weft__state_init(&st, 1, false);
	for (int i = 0; i < 10; i++)
		weft__state_ref_inc(&st);
	cr_expect_eq(refs(&st), 11);
	cr_expect_eq(flags(&st), NOTIFIED, "refs do not touch flags");
	for (int i = 0; i < 5; i++)
		cr_expect_not(weft__state_ref_dec(&st, 1));
	cr_expect_not(weft__state_ref_dec(&st, 4));
	cr_expect_eq(refs(&st), 2);
	cr_expect(weft__state_ref_dec(&st, 2), "dropping the last two");
	cr_expect_eq(refs(&st), 0);
}

Test(state, ref_dec_single_last)
{
	weft__state st;
	weft__state_init(&st, 2, true);
	cr_expect_not(weft__state_ref_dec(&st, 1));
	cr_expect(weft__state_ref_dec(&st, 1));
}

Test(state, ref_inc_from_zero_aborts, .signal = SIGABRT)
{
	weft__state st;
	weft__state_init(&st, 1, false);
	cr_assert(weft__state_ref_dec(&st, 1));
	weft__state_ref_inc(&st); /* use after free: invariant check */
}

Test(state, ref_dec_below_zero_aborts, .signal = SIGABRT)
{
	weft__state st;
	weft__state_init(&st, 1, false);
	if (weft__state_ref_dec(&st, 2))
		cr_log_error("unreachable");
}

Test(state, to_idle_when_not_running_aborts, .signal = SIGABRT)
{
	weft__state st;
	idle(&st);
	if (weft__state_to_idle(&st) == WEFT__IDLE_OK)
		cr_log_error("unreachable");
}

Test(state, full_lifecycle)
{
	/* spawn (join) -> poll PENDING -> wake by a waker -> poll READY ->
	 * join reads -> join dropped -> waker dropped: freed exactly at the
	 * last reference. */
	weft__state st;
	spawned(&st);
	cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	weft__state_ref_inc(&st); /* poll clones the waker */
	cr_assert_eq(weft__state_to_idle(&st), WEFT__IDLE_OK);
	cr_assert(weft__state_set_join_waker(&st));
	cr_assert_eq(refs(&st), 3); /* owned, join, waker */
	weft__state_ref_inc(&st); /* clone for wake_by_val */
	cr_assert_eq(weft__state_wake_by_val(&st), WEFT__WAKE_SUBMIT);
	cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_POLL);
	uint64_t prev = weft__state_to_complete(&st);
	cr_assert(prev & JOIN_WAKER);
	prev = weft__state_unset_join_waker_after_complete(&st);
	cr_assert(prev & JOIN_INTEREST);
	/* Worker: drop the poll ref and the owned-list ref. */
	cr_assert_not(weft__state_ref_dec(&st, 2));
	(void)weft__state_drop_join_interest(&st);
	cr_assert_not(weft__state_ref_dec(&st, 1)); /* join */
	cr_assert_eq(refs(&st), 1);
	cr_assert(weft__state_ref_dec(&st, 1)); /* last waker */
}

/* --- concurrency ----------------------------------------------------------
 *
 * A model of the scheduler around one task word. K waker threads each hold
 * one waker reference and, N times, publish an event ("produced++") and wake
 * the task (by ref, or by value after a clone). A SUBMIT puts the task into
 * a one-slot "queue" (mailbox). One poller thread takes queue entries, runs
 * to_running, consumes every event it can see, and to_idle; a NOTIFIED
 * result re-queues the task with the poll's reference.
 *
 * "tokens" counts queue entries plus the running poll: the protocol says it
 * is never above 1 (a task is never queued twice, nor queued while being
 * polled). No wake is lost iff, once the wakers are done and the poller
 * has nothing queued, the last poll consumed every event: a wake that
 * neither submitted nor marked a running poll NOTIFIED would leave events
 * unconsumed with the task idle.
 */

#define WAKERS 4
#define WAKES_PER_THREAD 100000

static weft__state g_st;
static atomic_int tokens;
static atomic_int mailbox;
static atomic_int double_queue;
static atomic_uint_fast64_t produced;
static atomic_int wakers_done;
static atomic_uint_fast64_t submits;
static atomic_bool poller_stop;
static int wakes_per_thread = WAKES_PER_THREAD;

static void token_add(void)
{
	if (atomic_fetch_add(&tokens, 1) != 0)
		atomic_fetch_add(&double_queue, 1);
}

static void *waker_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	for (int i = 0; i < wakes_per_thread; i++) {
		atomic_fetch_add(&produced, 1);
		enum weft__wake_action act;
		seed = seed * 1103515245u + 12345u;
		if ((seed >> 16) & 1) {
			act = weft__state_wake_by_ref(&g_st);
		} else {
			weft__state_ref_inc(&g_st); /* clone */
			act = weft__state_wake_by_val(&g_st);
		}
		if (act == WEFT__WAKE_DEALLOC) {
			fprintf(stderr, "DEALLOC with refs held\n");
			abort();
		}
		if (act == WEFT__WAKE_SUBMIT) {
			atomic_fetch_add(&submits, 1);
			token_add();
			atomic_store(&mailbox, 1);
		}
		/* Sometimes let the poller catch up so wakes hit every state
		 * (idle, queued, running). */
		if (((seed >> 20) & 63) == 0)
			sched_yield();
	}
	atomic_fetch_add(&wakers_done, 1);
	return NULL;
}

struct poller_result {
	uint64_t polls;
	uint64_t consumed;
	uint64_t requeues;
	int bad_run;
	int lost;
};

static void *poller_main(void *arg)
{
	struct poller_result *r = arg;
	bool have_entry = false;
	unsigned seed = 99;

	for (;;) {
		if (!have_entry) {
			if (atomic_exchange(&mailbox, 0)) {
				have_entry = true;
			} else {
				/* stop is set after every waker and the
				 * canceller finished: an empty mailbox
				 * seen after it is final. */
				if (atomic_load(&poller_stop) &&
				    !atomic_load(&mailbox))
					break;
				sched_yield();
				continue;
			}
		}
		if (weft__state_to_running(&g_st) != WEFT__RUN_POLL)
			r->bad_run++;
		r->polls++;
		/* The poll reads every event published before it started. */
		r->consumed = atomic_load(&produced);
		seed = seed * 1103515245u + 12345u;
		for (unsigned spin = (seed >> 16) & 255; spin; spin--)
			__asm__ volatile("" ::: "memory");
		/* Give the token back before to_idle: once to_idle's CAS
		 * makes the task idle, a waker may SUBMIT at once. While we
		 * are RUNNING no waker can, so nobody sees the gap. */
		atomic_fetch_sub(&tokens, 1);
		switch (weft__state_to_idle(&g_st)) {
		case WEFT__IDLE_OK:
			have_entry = false;
			break;
		case WEFT__IDLE_NOTIFIED:
			r->requeues++; /* re-queued with the poll's ref */
			token_add();
			break;
		default:
			r->bad_run++;
			have_entry = false;
			break;
		}
	}
	uint64_t s = weft__state_load(&g_st);
	if (s & (WEFT__ST_NOTIFIED | WEFT__ST_RUNNING))
		r->lost++;
	return NULL;
}

Test(state, concurrent_wakes_vs_poller, .timeout = 60)
{
	pthread_t w[WAKERS], p;
	struct poller_result r = { 0 };

	/* Refs: owned list 1 + one waker per thread; start idle (the first
	 * poll happened). */
	weft__state_init(&g_st, 1 + WAKERS + 1, false);
	cr_assert_eq(weft__state_to_running(&g_st), WEFT__RUN_POLL);
	cr_assert_eq(weft__state_to_idle(&g_st), WEFT__IDLE_OK);
	cr_assert_eq(refs(&g_st), 1 + WAKERS);

	cr_assert_eq(pthread_create(&p, NULL, poller_main, &r), 0);
	for (uintptr_t i = 0; i < WAKERS; i++)
		cr_assert_eq(pthread_create(&w[i], NULL, waker_main,
					    (void *)i), 0);
	for (int i = 0; i < WAKERS; i++)
		pthread_join(w[i], NULL);
	atomic_store(&poller_stop, true);
	pthread_join(p, NULL);

	uint64_t total = (uint64_t)WAKERS * WAKES_PER_THREAD;
	cr_expect_eq(atomic_load(&double_queue), 0,
		     "task queued twice (or queued while running)");
	cr_expect_eq(r.bad_run, 0, "to_running/to_idle gave an odd action");
	cr_expect_eq(r.lost, 0, "ended NOTIFIED or RUNNING with no entry");
	cr_expect_eq(r.consumed, total, "lost wake: %llu of %llu consumed",
		     (unsigned long long)r.consumed,
		     (unsigned long long)total);
	cr_expect_eq(atomic_load(&tokens), 0);
	cr_expect_eq(r.polls, atomic_load(&submits) + r.requeues,
		     "every poll comes from exactly one queue entry");
	cr_expect_eq(refs(&g_st), 1 + WAKERS, "refcount drifted");
	cr_expect_eq(flags(&g_st), 0);
	cr_log_info("polls %llu submits %llu requeues %llu",
		    (unsigned long long)r.polls,
		    (unsigned long long)atomic_load(&submits),
		    (unsigned long long)r.requeues);
}

/*
 * Lost wakes, round by round. The free-running test above only notices a
 * lost wake if it happens to be the very last one; here every round ends in
 * quiescence and is checked. Each round the controller kicks the task (so
 * the poller is likely RUNNING), the K wakers each fire 1..3 wakes at once,
 * and once the poller is idle with nothing queued, every event produced
 * must have been seen by some poll that started after it.
 */
#define ROUNDS 20000

static atomic_uint round_gen;
static atomic_uint round_done;
static atomic_bool poller_busy;
static atomic_uint_fast64_t consumed;

static void submit_entry(void)
{
	atomic_fetch_add(&submits, 1);
	token_add();
	atomic_store(&mailbox, 1);
}

static void wake_once(unsigned *seed)
{
	atomic_fetch_add(&produced, 1);
	*seed = *seed * 1103515245u + 12345u;
	enum weft__wake_action act;
	if ((*seed >> 16) & 1) {
		act = weft__state_wake_by_ref(&g_st);
	} else {
		weft__state_ref_inc(&g_st);
		act = weft__state_wake_by_val(&g_st);
	}
	if (act == WEFT__WAKE_SUBMIT)
		submit_entry();
}

static void *round_waker_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 31u + 7u;
	for (unsigned r = 1; r <= ROUNDS; r++) {
		while (atomic_load(&round_gen) < r)
			sched_yield();
		seed = seed * 1103515245u + 12345u;
		for (unsigned n = 1 + (seed >> 16) % 3; n; n--)
			wake_once(&seed);
		atomic_fetch_add(&round_done, 1);
	}
	return NULL;
}

static void *round_poller_main(void *arg)
{
	struct poller_result *r = arg;
	bool have_entry = false;
	unsigned seed = 5;
	while (!atomic_load(&poller_stop)) {
		if (!have_entry) {
			/* busy before the take: see the controller. */
			atomic_store(&poller_busy, true);
			if (!atomic_exchange(&mailbox, 0)) {
				atomic_store(&poller_busy, false);
				sched_yield();
				continue;
			}
			have_entry = true;
		}
		if (weft__state_to_running(&g_st) != WEFT__RUN_POLL)
			r->bad_run++;
		r->polls++;
		atomic_store(&consumed, atomic_load(&produced));
		seed = seed * 1103515245u + 12345u;
		/* Stay RUNNING a while (a yield lets the wakers on this core
		 * run) so that wakes land inside the poll. */
		if ((seed >> 16) & 1)
			sched_yield();
		for (unsigned spin = (seed >> 17) & 1023; spin; spin--)
			__asm__ volatile("" ::: "memory");
		atomic_fetch_sub(&tokens, 1);
		switch (weft__state_to_idle(&g_st)) {
		case WEFT__IDLE_OK:
			have_entry = false;
			atomic_store(&poller_busy, false);
			break;
		case WEFT__IDLE_NOTIFIED:
			r->requeues++;
			token_add();
			break;
		default:
			r->bad_run++;
			break;
		}
	}
	return NULL;
}

Test(state, no_lost_wake_per_round, .timeout = 60)
{
	pthread_t w[WAKERS], p;
	struct poller_result r = { 0 };
	unsigned lost_rounds = 0, first_lost = 0;
	unsigned seed = 1;

	/* owned + K wakers + the controller's waker + the spawn's entry */
	weft__state_init(&g_st, 1 + WAKERS + 1 + 1, false);
	cr_assert_eq(weft__state_to_running(&g_st), WEFT__RUN_POLL);
	cr_assert_eq(weft__state_to_idle(&g_st), WEFT__IDLE_OK);
	cr_assert_eq(pthread_create(&p, NULL, round_poller_main, &r), 0);
	for (uintptr_t i = 0; i < WAKERS; i++)
		cr_assert_eq(pthread_create(&w[i], NULL, round_waker_main,
					    (void *)i), 0);

	for (unsigned round = 1; round <= ROUNDS; round++) {
		/* The controller holds a waker too (the +1 above). */
		wake_once(&seed);
		atomic_store(&round_gen, round);
		while (atomic_load(&round_done) < round * WAKERS)
			sched_yield();
		/* Quiescence: nothing queued, poller idle. mailbox is read
		 * before busy: the poller sets busy before it takes. */
		for (;;) {
			if (!atomic_load(&mailbox) &&
			    !atomic_load(&poller_busy))
				break;
			sched_yield();
		}
		if (atomic_load(&consumed) != atomic_load(&produced) ||
		    (weft__state_load(&g_st) & WEFT__ST_NOTIFIED)) {
			if (!lost_rounds++)
				first_lost = round;
			/* Unstick the model so later rounds still run. */
			atomic_store(&consumed, atomic_load(&produced));
		}
	}
	atomic_store(&poller_stop, true);
	for (int i = 0; i < WAKERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(p, NULL);

	cr_expect_eq(lost_rounds, 0, "wakes lost in %u rounds (first: %u)",
		     lost_rounds, first_lost);
	cr_expect_eq(atomic_load(&double_queue), 0);
	cr_expect_eq(r.bad_run, 0);
	cr_expect_eq(r.polls, atomic_load(&submits) + r.requeues);
	cr_expect_eq(refs(&g_st), 1 + WAKERS + 1);
	cr_log_info("polls %llu requeues %llu", (unsigned long long)r.polls,
		    (unsigned long long)r.requeues);
}

/*
 * Cancel racing wakes: the task is dropped exactly once, no queue entry is
 * left behind, and wakes after completion do nothing.
 */
static atomic_bool cancel_go;
static atomic_int cancel_submits;

static void *canceller_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&cancel_go))
		sched_yield();
	if (weft__state_cancel(&g_st) == WEFT__WAKE_SUBMIT) {
		atomic_fetch_add(&cancel_submits, 1);
		token_add();
		atomic_store(&mailbox, 1);
	}
	return NULL;
}

struct cancel_result {
	int completions;
	int polls;
	int bad;
};

static void *cancel_poller_main(void *arg)
{
	struct cancel_result *r = arg;
	bool have_entry = false;
	bool completed = false;
	for (;;) {
		if (!have_entry) {
			if (atomic_exchange(&mailbox, 0)) {
				have_entry = true;
			} else {
				/* stop is set after every waker and the
				 * canceller finished: an empty mailbox
				 * seen after it is final. */
				if (atomic_load(&poller_stop) &&
				    !atomic_load(&mailbox))
					break;
				sched_yield();
				continue;
			}
		}
		if (completed)
			r->bad++; /* an entry after completion */
		switch (weft__state_to_running(&g_st)) {
		case WEFT__RUN_POLL:
			r->polls++;
			if (r->polls == 5)
				atomic_store(&cancel_go, true);
			/* As in poller_main: release before to_idle. */
			atomic_fetch_sub(&tokens, 1);
			switch (weft__state_to_idle(&g_st)) {
			case WEFT__IDLE_OK:
				have_entry = false;
				break;
			case WEFT__IDLE_NOTIFIED:
				token_add();
				break;
			case WEFT__IDLE_CANCELLED:
				(void)weft__state_to_complete(&g_st);
				r->completions++;
				completed = true;
				have_entry = false;
				if (weft__state_ref_dec(&g_st, 2))
					r->bad++;
				break;
			}
			break;
		case WEFT__RUN_CANCEL:
			(void)weft__state_to_complete(&g_st);
			r->completions++;
			completed = true;
			have_entry = false;
			atomic_fetch_sub(&tokens, 1);
			/* Poll ref and owned-list ref. */
			if (weft__state_ref_dec(&g_st, 2))
				r->bad++;
			break;
		case WEFT__RUN_FAILED:
			r->bad++;
			have_entry = false;
			break;
		}
	}
	return NULL;
}

Test(state, cancel_races_wakes, .timeout = 60)
{
	wakes_per_thread = 500;
	for (int round = 0; round < 100; round++) {
		pthread_t w[WAKERS], p, c;
		struct cancel_result r = { 0 };
		atomic_store(&tokens, 0);
		atomic_store(&mailbox, 0);
		atomic_store(&double_queue, 0);
		atomic_store(&wakers_done, 0);
		atomic_store(&cancel_go, false);
		atomic_store(&cancel_submits, 0);
		atomic_store(&poller_stop, false);
		/* owned + K wakers + the queue entry of the spawn. */
		weft__state_init(&g_st, 1 + WAKERS + 1, false);
		token_add();
		atomic_store(&mailbox, 1);

		cr_assert_eq(pthread_create(&p, NULL, cancel_poller_main, &r),
			     0);
		cr_assert_eq(pthread_create(&c, NULL, canceller_main, NULL),
			     0);
		for (uintptr_t i = 0; i < WAKERS; i++)
			cr_assert_eq(pthread_create(&w[i], NULL,
						    waker_main, (void *)i),
				     0);
		for (int i = 0; i < WAKERS; i++)
			pthread_join(w[i], NULL);
		/* If the poller never reached 5 polls, cancel now. */
		atomic_store(&cancel_go, true);
		pthread_join(c, NULL);
		atomic_store(&poller_stop, true);
		pthread_join(p, NULL);

		cr_assert_eq(r.completions, 1, "round %d: %d completions",
			     round, r.completions);
		cr_assert_eq(r.bad, 0, "round %d", round);
		cr_assert_eq(atomic_load(&double_queue), 0, "round %d", round);
		cr_assert_eq(atomic_load(&tokens), 0);
		uint64_t s = weft__state_load(&g_st);
		cr_assert(s & COMPLETE);
		cr_assert(s & CANCELLED);
		cr_assert_not(s & RUNNING);
		cr_assert_eq(weft__state_refs(s), WAKERS, "only wakers left");
		/* Late wakes do nothing; the last waker dropped frees it. */
		cr_assert_eq(weft__state_wake_by_ref(&g_st),
			     WEFT__WAKE_NOTHING);
		for (int i = 0; i < WAKERS - 1; i++)
			cr_assert_eq(weft__state_wake_by_val(&g_st),
				     WEFT__WAKE_NOTHING);
		cr_assert_eq(weft__state_wake_by_val(&g_st),
			     WEFT__WAKE_DEALLOC);
	}
}
