/* SPDX-License-Identifier: MIT */
/*
 * The injector (src/sched/injector.c): FIFO order, batch push and pop, the
 * lock-free length, and exactly-once delivery with many producers and
 * consumers.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sched/injector.h"

struct item {
	struct weft__qnode node;
	unsigned producer;
	unsigned seq;
};

static struct weft__injector inj;

static void inj_init(void)
{
	cr_assert_eq(weft__injector_init(&inj), 0);
}

static struct item *item_of(struct weft__qnode *n)
{
	return n ? weft__container_of(n, struct item, node) : NULL;
}

static void fill(struct item *it, size_t n, unsigned first_seq)
{
	for (size_t i = 0; i < n; i++) {
		it[i].node.next = (struct weft__qnode *)0x1; /* garbage */
		it[i].producer = 0;
		it[i].seq = first_seq + (unsigned)i;
	}
}

/* Link it[0..n) into a chain; the injector must not rely on the last
 * node's next being NULL on entry. */
static void chain(struct item *it, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		it[i].node.next = &it[i + 1].node;
	it[n - 1].node.next = (struct weft__qnode *)0x1;
}

Test(injector, empty)
{
	inj_init();
	cr_expect_eq(weft__injector_len(&inj), 0);
	cr_expect(weft__injector_is_empty(&inj));
	cr_expect_null(weft__injector_pop(&inj));
	size_t count = 99;
	cr_expect_null(weft__injector_pop_batch(&inj, 8, &count));
	cr_expect_eq(count, 0);
	weft__injector_destroy(&inj);
}

Test(injector, push_pop_fifo)
{
	struct item it[16];
	inj_init();
	fill(it, 16, 0);
	for (int i = 0; i < 16; i++) {
		weft__injector_push(&inj, &it[i].node);
		cr_expect_eq(weft__injector_len(&inj), (size_t)i + 1);
	}
	cr_expect_not(weft__injector_is_empty(&inj));
	for (unsigned i = 0; i < 16; i++) {
		struct item *p = item_of(weft__injector_pop(&inj));
		cr_assert_not_null(p);
		cr_expect_eq(p->seq, i);
		cr_expect_eq(weft__injector_len(&inj), 15 - (size_t)i);
	}
	cr_expect_null(weft__injector_pop(&inj));
	cr_expect(weft__injector_is_empty(&inj));
	weft__injector_destroy(&inj);
}

Test(injector, reusable_after_drain)
{
	/* Draining must reset the tail: a push onto an emptied queue must
	 * not link behind a node that was already popped. */
	struct item a[3];
	inj_init();
	fill(a, 3, 0);
	for (int round = 0; round < 5; round++) {
		weft__injector_push(&inj, &a[0].node);
		cr_expect_eq(item_of(weft__injector_pop(&inj)), &a[0]);
		cr_expect_null(weft__injector_pop(&inj));
		weft__injector_push(&inj, &a[1].node);
		weft__injector_push(&inj, &a[2].node);
		cr_expect_eq(item_of(weft__injector_pop(&inj)), &a[1]);
		cr_expect_eq(item_of(weft__injector_pop(&inj)), &a[2]);
		cr_expect_null(weft__injector_pop(&inj));
		cr_expect_eq(weft__injector_len(&inj), 0);
	}
	weft__injector_destroy(&inj);
}

Test(injector, push_batch_appends_in_order)
{
	struct item single[2], batch[10];
	inj_init();
	fill(single, 2, 100);
	fill(batch, 10, 0);
	chain(batch, 10);
	weft__injector_push(&inj, &single[0].node);
	weft__injector_push_batch(&inj, &batch[0].node, &batch[9].node, 10);
	cr_expect_eq(weft__injector_len(&inj), 11);
	weft__injector_push(&inj, &single[1].node);
	cr_expect_eq(weft__injector_len(&inj), 12);

	cr_expect_eq(item_of(weft__injector_pop(&inj)), &single[0]);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(item_of(weft__injector_pop(&inj)), &batch[i]);
	cr_expect_eq(item_of(weft__injector_pop(&inj)), &single[1]);
	cr_expect_null(weft__injector_pop(&inj));
	weft__injector_destroy(&inj);
}

Test(injector, push_batch_of_one)
{
	struct item a[1];
	inj_init();
	fill(a, 1, 5);
	weft__injector_push_batch(&inj, &a[0].node, &a[0].node, 1);
	cr_expect_eq(weft__injector_len(&inj), 1);
	cr_expect_eq(item_of(weft__injector_pop(&inj)), &a[0]);
	cr_expect_null(weft__injector_pop(&inj));
	weft__injector_destroy(&inj);
}

Test(injector, pop_batch_partial)
{
	struct item it[10];
	inj_init();
	fill(it, 10, 0);
	for (int i = 0; i < 10; i++)
		weft__injector_push(&inj, &it[i].node);

	size_t count = 0;
	struct weft__qnode *n = weft__injector_pop_batch(&inj, 4, &count);
	cr_expect_eq(count, 4);
	cr_expect_eq(weft__injector_len(&inj), 6);
	for (unsigned i = 0; i < 4; i++) {
		cr_assert_not_null(n, "chain ended after %u nodes", i);
		cr_expect_eq(item_of(n)->seq, i);
		n = n->next;
	}
	cr_expect_null(n, "chain not NULL-terminated");

	/* max beyond the length: take everything left. */
	n = weft__injector_pop_batch(&inj, 100, &count);
	cr_expect_eq(count, 6);
	for (unsigned i = 4; i < 10; i++) {
		cr_assert_not_null(n);
		cr_expect_eq(item_of(n)->seq, i);
		n = n->next;
	}
	cr_expect_null(n);
	cr_expect_eq(weft__injector_len(&inj), 0);
	cr_expect_null(weft__injector_pop(&inj));

	/* And the queue still works. */
	weft__injector_push(&inj, &it[3].node);
	cr_expect_eq(item_of(weft__injector_pop(&inj)), &it[3]);
	weft__injector_destroy(&inj);
}

Test(injector, pop_batch_max_zero)
{
	struct item it[2];
	inj_init();
	fill(it, 2, 0);
	weft__injector_push(&inj, &it[0].node);
	size_t count = 5;
	cr_expect_null(weft__injector_pop_batch(&inj, 0, &count));
	cr_expect_eq(count, 0);
	cr_expect_eq(weft__injector_len(&inj), 1);
	cr_expect_eq(item_of(weft__injector_pop(&inj)), &it[0]);
	weft__injector_destroy(&inj);
}

/* --- many producers, many consumers -------------------------------------- */

#define PRODUCERS 4
#define CONSUMERS 3
#define PER_PRODUCER 50000

static struct item *pool[PRODUCERS];
static _Atomic unsigned char got[PRODUCERS][PER_PRODUCER];
static atomic_int producers_done;
static atomic_size_t consumed;
static atomic_int order_errors;

static void *producer_main(void *arg)
{
	unsigned p = (unsigned)(uintptr_t)arg;
	struct item *it = pool[p];
	unsigned i = 0;
	while (i < PER_PRODUCER) {
		/* Alternate single pushes and batches of 1..7. */
		unsigned n = (i / 3) % 8;
		if (n > PER_PRODUCER - i)
			n = PER_PRODUCER - i;
		if (n <= 1) {
			weft__injector_push(&inj, &it[i].node);
			i++;
		} else {
			for (unsigned k = 0; k + 1 < n; k++)
				it[i + k].node.next = &it[i + k + 1].node;
			weft__injector_push_batch(&inj, &it[i].node,
						  &it[i + n - 1].node, n);
			i += n;
		}
	}
	atomic_fetch_add(&producers_done, 1);
	return NULL;
}

static void consume(struct item *p, unsigned *last)
{
	if (p->producer >= PRODUCERS || p->seq >= PER_PRODUCER) {
		fprintf(stderr, "invented node %u/%u\n", p->producer, p->seq);
		abort();
	}
	/* One consumer sees each producer's nodes in push order (FIFO). */
	if (last[p->producer] != UINT32_MAX && p->seq <= last[p->producer])
		atomic_fetch_add(&order_errors, 1);
	last[p->producer] = p->seq;
	atomic_fetch_add_explicit(&got[p->producer][p->seq], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed);
}

static void *consumer_main(void *arg)
{
	bool batch = (uintptr_t)arg & 1;
	unsigned last[PRODUCERS];
	for (int p = 0; p < PRODUCERS; p++)
		last[p] = UINT32_MAX;
	for (;;) {
		bool done = atomic_load(&producers_done) == PRODUCERS;
		bool any = false;
		if (batch) {
			size_t count;
			struct weft__qnode *n =
				weft__injector_pop_batch(&inj, 5, &count);
			size_t seen_n = 0;
			while (n) {
				struct weft__qnode *next = n->next;
				consume(item_of(n), last);
				seen_n++;
				n = next;
			}
			if (seen_n != count)
				atomic_fetch_add(&order_errors, 1000000);
			any = seen_n > 0;
		} else {
			struct weft__qnode *n = weft__injector_pop(&inj);
			if (n) {
				consume(item_of(n), last);
				any = true;
			}
		}
		if (!any && done && weft__injector_is_empty(&inj))
			break;
	}
	return NULL;
}

Test(injector, mpmc_exactly_once, .timeout = 30)
{
	pthread_t prod[PRODUCERS], cons[CONSUMERS];
	inj_init();
	for (unsigned p = 0; p < PRODUCERS; p++) {
		pool[p] = calloc(PER_PRODUCER, sizeof(struct item));
		cr_assert_not_null(pool[p]);
		for (unsigned i = 0; i < PER_PRODUCER; i++) {
			pool[p][i].producer = p;
			pool[p][i].seq = i;
		}
	}
	for (uintptr_t c = 0; c < CONSUMERS; c++)
		cr_assert_eq(pthread_create(&cons[c], NULL, consumer_main,
					    (void *)c), 0);
	for (uintptr_t p = 0; p < PRODUCERS; p++)
		cr_assert_eq(pthread_create(&prod[p], NULL, producer_main,
					    (void *)p), 0);
	for (int p = 0; p < PRODUCERS; p++)
		pthread_join(prod[p], NULL);
	for (int c = 0; c < CONSUMERS; c++)
		pthread_join(cons[c], NULL);

	cr_expect_eq(atomic_load(&consumed), (size_t)PRODUCERS * PER_PRODUCER);
	cr_expect_eq(atomic_load(&order_errors), 0);
	size_t bad = 0;
	for (int p = 0; p < PRODUCERS; p++)
		for (int i = 0; i < PER_PRODUCER; i++)
			if (atomic_load(&got[p][i]) != 1)
				bad++;
	cr_expect_eq(bad, 0, "%zu nodes not delivered exactly once", bad);
	cr_expect_eq(weft__injector_len(&inj), 0);
	for (int p = 0; p < PRODUCERS; p++)
		free(pool[p]);
	weft__injector_destroy(&inj);
}
