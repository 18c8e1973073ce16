/* SPDX-License-Identifier: MIT */
/*
 * The Chase-Lev deque (src/sched/deque.c): sequential semantics of each
 * operation, then one owner against concurrent thieves with an exactly-once
 * check. Items are small integers cast to pointers (never NULL: NULL means
 * "empty").
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sched/deque.h"

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((uintptr_t)(p))

static struct weft__deque dq;

static void dq_init(unsigned log2)
{
	int rc = weft__deque_init(&dq, log2);
	cr_assert_eq(rc, 0, "deque_init(%u) = %d", log2, rc);
}

static void dq_fini(void)
{
	weft__deque_destroy(&dq);
}

Test(deque, init_rejects_bad_capacity)
{
	struct weft__deque d;
	cr_expect_eq(weft__deque_init(&d, 0), -EINVAL);
	cr_expect_eq(weft__deque_init(&d, 25), -EINVAL);
	cr_expect_eq(weft__deque_init(&d, 1), 0);
	cr_expect_eq(weft__deque_capacity(&d), 2);
	weft__deque_destroy(&d);
	cr_expect_eq(weft__deque_init(&d, 10), 0);
	cr_expect_eq(weft__deque_capacity(&d), 1024);
	weft__deque_destroy(&d);
}

Test(deque, empty_returns_null)
{
	dq_init(2);
	cr_expect_null(weft__deque_pop(&dq));
	cr_expect_null(weft__deque_pop_lifo(&dq));
	cr_expect_null(weft__deque_steal(&dq));
	cr_expect_eq(weft__deque_len(&dq), 0);
	/* pop_lifo on empty moves bottom down and back: the deque must still
	 * work normally afterwards. */
	for (int i = 0; i < 10; i++)
		cr_expect_null(weft__deque_pop_lifo(&dq));
	cr_expect_eq(weft__deque_len(&dq), 0);
	cr_assert(weft__deque_push(&dq, P(7)));
	cr_expect_eq(weft__deque_len(&dq), 1);
	cr_expect_eq(I(weft__deque_pop(&dq)), 7);
	cr_expect_null(weft__deque_pop(&dq));
	dq_fini();
}

Test(deque, pop_is_fifo)
{
	dq_init(4);
	for (uintptr_t i = 1; i <= 10; i++)
		cr_assert(weft__deque_push(&dq, P(i)));
	for (uintptr_t i = 1; i <= 10; i++)
		cr_expect_eq(I(weft__deque_pop(&dq)), i);
	cr_expect_null(weft__deque_pop(&dq));
	dq_fini();
}

Test(deque, pop_lifo_is_lifo)
{
	dq_init(4);
	for (uintptr_t i = 1; i <= 10; i++)
		cr_assert(weft__deque_push(&dq, P(i)));
	for (uintptr_t i = 10; i >= 1; i--)
		cr_expect_eq(I(weft__deque_pop_lifo(&dq)), i);
	cr_expect_null(weft__deque_pop_lifo(&dq));
	cr_expect_eq(weft__deque_len(&dq), 0);
	dq_fini();
}

Test(deque, steal_takes_oldest)
{
	dq_init(4);
	for (uintptr_t i = 1; i <= 5; i++)
		cr_assert(weft__deque_push(&dq, P(i)));
	cr_expect_eq(I(weft__deque_steal(&dq)), 1);
	cr_expect_eq(I(weft__deque_steal(&dq)), 2);
	cr_expect_eq(I(weft__deque_pop_lifo(&dq)), 5);
	cr_expect_eq(I(weft__deque_pop(&dq)), 3);
	cr_expect_eq(I(weft__deque_steal(&dq)), 4);
	cr_expect_null(weft__deque_steal(&dq));
	cr_expect_null(weft__deque_pop(&dq));
	cr_expect_null(weft__deque_pop_lifo(&dq));
	dq_fini();
}

Test(deque, last_item_taken_by_pop_lifo)
{
	/* The t == b path of pop_lifo (CAS on top) with no contention. */
	dq_init(2);
	cr_assert(weft__deque_push(&dq, P(1)));
	cr_expect_eq(I(weft__deque_pop_lifo(&dq)), 1);
	cr_expect_eq(weft__deque_len(&dq), 0);
	cr_expect_null(weft__deque_steal(&dq));
	cr_assert(weft__deque_push(&dq, P(2)));
	cr_expect_eq(I(weft__deque_steal(&dq)), 2);
	cr_expect_null(weft__deque_pop_lifo(&dq));
	dq_fini();
}

Test(deque, len_tracks_contents)
{
	dq_init(3);
	for (size_t i = 0; i < 8; i++) {
		cr_expect_eq(weft__deque_len(&dq), i);
		cr_assert(weft__deque_push(&dq, P(i + 1)));
	}
	cr_expect_eq(weft__deque_len(&dq), 8);
	(void)weft__deque_pop(&dq);
	cr_expect_eq(weft__deque_len(&dq), 7);
	(void)weft__deque_pop_lifo(&dq);
	cr_expect_eq(weft__deque_len(&dq), 6);
	(void)weft__deque_steal(&dq);
	cr_expect_eq(weft__deque_len(&dq), 5);
	dq_fini();
}

Test(deque, push_fails_when_full)
{
	dq_init(2); /* capacity 4 */
	for (uintptr_t i = 1; i <= 4; i++)
		cr_assert(weft__deque_push(&dq, P(i)), "push %zu", (size_t)i);
	cr_expect_not(weft__deque_push(&dq, P(99)));
	cr_expect_not(weft__deque_push(&dq, P(99)));
	cr_expect_eq(weft__deque_len(&dq), 4);
	/* The failed pushes stored nothing: contents are intact. */
	cr_expect_eq(I(weft__deque_steal(&dq)), 1);
	cr_assert(weft__deque_push(&dq, P(5)));
	cr_expect_not(weft__deque_push(&dq, P(99)));
	for (uintptr_t i = 2; i <= 5; i++)
		cr_expect_eq(I(weft__deque_pop(&dq)), i);
	cr_expect_null(weft__deque_pop(&dq));
	dq_fini();
}

Test(deque, wraps_around_many_times)
{
	/* Capacity 4: indices pass the buffer size thousands of times, with
	 * every mix of the three ways to take items. */
	dq_init(2);
	uintptr_t next = 1, expect_lo = 1;
	for (int round = 0; round < 5000; round++) {
		size_t n = 1 + (size_t)(round % 4);
		uintptr_t first = next;
		for (size_t k = 0; k < n; k++)
			cr_assert(weft__deque_push(&dq, P(next++)));
		cr_assert_eq(weft__deque_len(&dq), n);
		switch (round % 3) {
		case 0:
			for (uintptr_t v = first; v < next; v++)
				cr_assert_eq(I(weft__deque_pop(&dq)), v);
			break;
		case 1:
			for (uintptr_t v = next; v-- > first;)
				cr_assert_eq(I(weft__deque_pop_lifo(&dq)), v);
			break;
		default:
			for (uintptr_t v = first; v < next; v++)
				cr_assert_eq(I(weft__deque_steal(&dq)), v);
			break;
		}
		cr_assert_null(weft__deque_pop(&dq));
		expect_lo = next;
	}
	cr_expect_eq(expect_lo, next);
	cr_expect_gt(next, 10000);
	dq_fini();
}

Test(deque, wraps_around_while_partly_full)
{
	/* Keep 1..3 items resident while pushing through the ring so that the
	 * live window straddles the wrap point. */
	dq_init(2);
	uintptr_t head = 1, tail = 1; /* live items are [head, tail) */
	for (int i = 0; i < 3; i++)
		cr_assert(weft__deque_push(&dq, P(tail++)));
	for (int round = 0; round < 10000; round++) {
		cr_assert(weft__deque_push(&dq, P(tail++)));
		cr_assert_not(weft__deque_push(&dq, P(999999)));
		if (round & 1)
			cr_assert_eq(I(weft__deque_pop(&dq)), head);
		else
			cr_assert_eq(I(weft__deque_steal(&dq)), head);
		head++;
		cr_assert_eq(weft__deque_len(&dq), tail - head);
	}
	/* Newest first from the bottom. */
	cr_expect_eq(I(weft__deque_pop_lifo(&dq)), tail - 1);
	cr_expect_eq(I(weft__deque_pop(&dq)), head);
	cr_expect_eq(I(weft__deque_pop(&dq)), head + 1);
	cr_expect_null(weft__deque_pop(&dq));
	dq_fini();
}

/* --- steal_into ---------------------------------------------------------- */

static struct weft__deque dst;

Test(deque, steal_into_takes_half_rounded_up)
{
	dq_init(5);
	cr_assert_eq(weft__deque_init(&dst, 5), 0);
	for (uintptr_t i = 1; i <= 9; i++)
		cr_assert(weft__deque_push(&dq, P(i)));
	size_t stolen = 1234;
	void *run = weft__deque_steal_into(&dq, &dst, 32, &stolen);
	/* ceil(9 / 2) = 5 taken, the oldest ones; the last is returned to
	 * run now, the others land in dst in order. */
	cr_expect_eq(stolen, 5);
	cr_expect_eq(I(run), 5);
	cr_expect_eq(weft__deque_len(&dst), 4);
	for (uintptr_t i = 1; i <= 4; i++)
		cr_expect_eq(I(weft__deque_pop(&dst)), i);
	cr_expect_eq(weft__deque_len(&dq), 4);
	for (uintptr_t i = 6; i <= 9; i++)
		cr_expect_eq(I(weft__deque_pop(&dq)), i);
	weft__deque_destroy(&dst);
	dq_fini();
}

Test(deque, steal_into_respects_max)
{
	dq_init(5);
	cr_assert_eq(weft__deque_init(&dst, 1), 0); /* room for 2 */
	for (uintptr_t i = 1; i <= 20; i++)
		cr_assert(weft__deque_push(&dq, P(i)));
	size_t stolen = 0;
	void *run = weft__deque_steal_into(&dq, &dst, 3, &stolen);
	cr_expect_eq(stolen, 3);
	cr_expect_eq(I(run), 3);
	cr_expect_eq(I(weft__deque_pop(&dst)), 1);
	cr_expect_eq(I(weft__deque_pop(&dst)), 2);
	cr_expect_null(weft__deque_pop(&dst));
	cr_expect_eq(weft__deque_len(&dq), 17);
	cr_expect_eq(I(weft__deque_steal(&dq)), 4);
	weft__deque_destroy(&dst);
	dq_fini();
}

Test(deque, steal_into_single_and_empty)
{
	dq_init(3);
	cr_assert_eq(weft__deque_init(&dst, 3), 0);
	size_t stolen = 77;
	cr_expect_null(weft__deque_steal_into(&dq, &dst, 8, &stolen));
	cr_expect_eq(stolen, 0);
	cr_assert(weft__deque_push(&dq, P(42)));
	void *run = weft__deque_steal_into(&dq, &dst, 8, &stolen);
	cr_expect_eq(stolen, 1);
	cr_expect_eq(I(run), 42);
	cr_expect_eq(weft__deque_len(&dst), 0);
	cr_expect_eq(weft__deque_len(&dq), 0);
	weft__deque_destroy(&dst);
	dq_fini();
}

/* --- steal_batch_into: the same results with one CAS ---------------------- */

Test(deque, steal_batch_into_takes_half_rounded_up)
{
	dq_init(5);
	cr_assert_eq(weft__deque_init(&dst, 5), 0);
	for (uintptr_t i = 1; i <= 9; i++)
		cr_assert(weft__deque_push(&dq, P(i)));
	int64_t top0 = atomic_load(&dq.top);
	size_t stolen = 1234;
	void *run = weft__deque_steal_batch_into(&dq, &dst, 32, &stolen);
	cr_expect_eq(stolen, 5);
	cr_expect_eq(I(run), 5);
	cr_expect_eq(atomic_load(&dq.top), top0 + 5);
	cr_expect_eq(weft__deque_len(&dst), 4);
	for (uintptr_t i = 1; i <= 4; i++)
		cr_expect_eq(I(weft__deque_pop(&dst)), i);
	for (uintptr_t i = 6; i <= 9; i++)
		cr_expect_eq(I(weft__deque_pop(&dq)), i);
	cr_expect_null(weft__deque_steal_batch_into(&dq, &dst, 32, &stolen));
	cr_expect_eq(stolen, 0);
	weft__deque_destroy(&dst);
	dq_fini();
}

Test(deque, steal_batch_into_respects_max_and_room)
{
	dq_init(5);
	cr_assert_eq(weft__deque_init(&dst, 2), 0); /* room for 4 */
	for (uintptr_t i = 1; i <= 20; i++)
		cr_assert(weft__deque_push(&dq, P(i)));
	size_t stolen = 0;
	void *run = weft__deque_steal_batch_into(&dq, &dst, 3, &stolen);
	cr_expect_eq(stolen, 3);
	cr_expect_eq(I(run), 3);
	cr_expect_eq(weft__deque_len(&dst), 2);
	/* dst now has room for 2: at most 3 more (2 queued, 1 to run),
	 * across the wrap point of its 4-slot buffer. */
	run = weft__deque_steal_batch_into(&dq, &dst, 16, &stolen);
	cr_expect_eq(stolen, 3);
	cr_expect_eq(I(run), 6);
	cr_expect_eq(weft__deque_len(&dst), 4);
	for (uintptr_t i = 1; i <= 5; i++) {
		if (i == 3)
			continue;
		cr_expect_eq(I(weft__deque_pop(&dst)), i);
	}
	/* Full dst: only the one to run. */
	for (uintptr_t i = 0; i < 4; i++)
		cr_assert(weft__deque_push(&dst, P(100 + i)));
	run = weft__deque_steal_batch_into(&dq, &dst, 16, &stolen);
	cr_expect_eq(stolen, 1);
	cr_expect_eq(I(run), 7);
	cr_expect_eq(weft__deque_len(&dq), 13);
	weft__deque_destroy(&dst);
	dq_fini();
}

/* --- one owner, K thieves ------------------------------------------------- */

#define THIEVES 3
#define M_ITEMS 200000

static _Atomic unsigned char seen[M_ITEMS + 1];
static atomic_bool owner_done;
static atomic_size_t taken_total;
static atomic_int thieves_ready;

static void take(uintptr_t v)
{
	/* Out of range would be an invented item. */
	if (v < 1 || v > M_ITEMS) {
		fprintf(stderr, "invented item %zu\n", (size_t)v);
		abort();
	}
	atomic_fetch_add_explicit(&seen[v], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&taken_total, 1, memory_order_relaxed);
}

/* What the thieves use; with BATCH the owner never calls pop_lifo. */
enum thief_mode { SINGLE, INTO, BATCH };

static void *thief_main(void *arg)
{
	enum thief_mode mode = (enum thief_mode)((uintptr_t)arg >> 1);
	/* Odd thieves use the mode, even ones single steals: a mix. */
	bool batch = (uintptr_t)arg & 1;
	struct weft__deque mine;
	if (weft__deque_init(&mine, 6))
		abort();
	atomic_fetch_add(&thieves_ready, 1);
	for (;;) {
		bool done = atomic_load(&owner_done);
		void *it;
		if (batch && mode != SINGLE) {
			size_t n;
			it = mode == BATCH
				     ? weft__deque_steal_batch_into(&dq, &mine,
								    32, &n)
				     : weft__deque_steal_into(&dq, &mine, 32,
							      &n);
			if (it) {
				take(I(it));
				while ((it = weft__deque_pop_lifo(&mine)))
					take(I(it));
				it = P(1); /* not empty */
			}
		} else {
			it = weft__deque_steal(&dq);
			if (it)
				take(I(it));
		}
		/* Only stop once the owner finished and the deque was seen
		 * empty after that. */
		if (!it && done && weft__deque_len(&dq) == 0)
			break;
	}
	weft__deque_destroy(&mine);
	return NULL;
}

/* The owner's take: FIFO only when thieves batch-steal (deque.h). */
static void *owner_take(bool lifo, enum thief_mode mode)
{
	return lifo && mode != BATCH ? weft__deque_pop_lifo(&dq)
				     : weft__deque_pop(&dq);
}

static void owner_vs_thieves(unsigned log2, enum thief_mode mode)
{
	pthread_t th[THIEVES];
	dq_init(log2);
	atomic_store(&owner_done, false);
	atomic_store(&taken_total, 0);
	atomic_store(&thieves_ready, 0);
	for (size_t i = 0; i <= M_ITEMS; i++)
		atomic_store(&seen[i], 0);
	for (uintptr_t k = 0; k < THIEVES; k++)
		cr_assert_eq(pthread_create(&th[k], NULL, thief_main,
					    (void *)((uintptr_t)mode << 1 |
						     (k & 1))),
			     0);
	/* Start together, or the owner is done before a thief runs. */
	while (atomic_load(&thieves_ready) < THIEVES)
		sched_yield();

	unsigned x = 12345;
	for (uintptr_t v = 1; v <= M_ITEMS; v++) {
		while (!weft__deque_push(&dq, P(v))) {
			/* Full: take one ourselves. */
			void *it = owner_take(!(v & 1), mode);
			if (it)
				take(I(it));
		}
		x = x * 1103515245u + 12345u;
		/* Take often enough that the deque is usually nearly empty:
		 * that is where pop_lifo races the thieves for the last
		 * item. */
		switch ((x >> 16) % 8) {
		case 0:
		case 1:
		case 2:
		case 3: {
			void *it = owner_take(true, mode);
			if (it)
				take(I(it));
			break;
		}
		case 4: {
			void *it = owner_take(false, mode);
			if (it)
				take(I(it));
			break;
		}
		default:
			break;
		}
	}
	/* Drain our share, racing the thieves for the last items. */
	void *it;
	while ((it = owner_take(true, mode)))
		take(I(it));
	atomic_store(&owner_done, true);
	for (int k = 0; k < THIEVES; k++)
		pthread_join(th[k], NULL);

	cr_expect_eq(atomic_load(&taken_total), M_ITEMS);
	size_t bad = 0;
	for (size_t v = 1; v <= M_ITEMS; v++) {
		unsigned c = atomic_load(&seen[v]);
		if (c != 1 && bad++ < 5)
			cr_log_error("item %zu taken %u times", v, c);
	}
	cr_expect_eq(bad, 0, "%zu items not taken exactly once", bad);
	cr_expect_eq(weft__deque_len(&dq), 0);
	dq_fini();
}

Test(deque, owner_vs_thieves_small, .timeout = 30)
{
	for (int round = 0; round < 5; round++)
		owner_vs_thieves(2, SINGLE);
}

Test(deque, owner_vs_thieves_large, .timeout = 30)
{
	owner_vs_thieves(8, SINGLE);
}

Test(deque, owner_vs_steal_into, .timeout = 30)
{
	for (int round = 0; round < 5; round++)
		owner_vs_thieves(3, INTO);
}

Test(deque, fifo_owner_vs_steal_batch_into, .timeout = 30)
{
	for (int round = 0; round < 5; round++)
		owner_vs_thieves(3, BATCH);
	owner_vs_thieves(8, BATCH);
}
