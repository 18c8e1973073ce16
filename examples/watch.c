/* SPDX-License-Identifier: MIT */
/*
 * watch: a configuration that tasks follow (docs/sync.md).
 *
 * The main thread publishes five successive configurations through a
 * weft_watch and then closes it. Three tasks wait for changes and read the
 * latest with borrow_and_update: they may skip intermediate ones, but
 * never see an older configuration after a newer one, and each ends having
 * read the last. A plain thread follows with the blocking wait. Exits 0
 * when every follower ended on generation 5.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

#define FOLLOWERS 3
#define GENERATIONS 5

struct config {
	int generation;
	int max_clients;
};

struct follower {
	weft_watch_rx *rx;
	bool waiting;
	struct config seen;
	weft_watch_changed changed;
};

static weft_poll follower_poll(void *self, weft_cx *cx, void *out)
{
	struct follower *f = self;
	int st;

	for (;;) {
		if (!f->waiting) {
			weft_watch_changed_init(&f->changed, f->rx);
			f->waiting = true;
		}
		if (weft_watch_changed_poll(&f->changed, cx, &st) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		f->waiting = false;
		if (st == -EPIPE) /* the publisher is gone */
			break;
		struct config c;
		weft_watch_borrow_and_update(f->rx, &c);
		if (c.generation <= f->seen.generation) { /* never */
			*(int *)out = -1;
			return WEFT_READY;
		}
		f->seen = c;
	}
	*(int *)out = f->seen.generation;
	return WEFT_READY;
}

static void follower_drop(void *self)
{
	struct follower *f = self;

	if (f->waiting)
		weft_watch_changed_drop(&f->changed);
	weft_watch_rx_drop(f->rx);
}

static const weft_future_desc follower_desc = {
	.poll = follower_poll,
	.drop = follower_drop,
	.size = sizeof(struct follower),
	.output_size = sizeof(int),
};

static void *thread_follower(void *arg)
{
	weft_watch_rx *rx = arg;
	struct config c = { 0 };

	while (weft_watch_changed_blocking(rx) == 0)
		weft_watch_borrow_and_update(rx, &c);
	weft_watch_rx_drop(rx);
	return (void *)(intptr_t)c.generation;
}

int main(void)
{
	weft_runtime *rt;
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	weft_join *j[FOLLOWERS];
	struct config c = { .generation = 0, .max_clients = 10 };
	pthread_t t;
	void *thread_gen;
	int ok = 1;

	if (weft_runtime_new(NULL, &rt) ||
	    weft_watch_new(sizeof(c), &c, &tx, &rx))
		return 1;
	for (int i = 0; i < FOLLOWERS; i++) {
		struct follower f = { 0 };
		if (weft_watch_rx_clone(rx, &f.rx) ||
		    weft_spawn(rt, &follower_desc, &f, &j[i]))
			return 1;
	}
	if (pthread_create(&t, NULL, thread_follower, rx)) /* takes rx */
		return 1;
	for (int g = 1; g <= GENERATIONS; g++) {
		c = (struct config){ .generation = g, .max_clients = 10 * g };
		if (weft_watch_send(tx, &c))
			return 1;
	}
	weft_watch_tx_drop(tx); /* followers see the last, then -EPIPE */

	for (int i = 0; i < FOLLOWERS; i++) {
		int gen = 0, status;
		weft_join_future jf = { .join = j[i], .value = &gen };
		if (weft_block_on(rt, &weft_join_future_desc, &jf, &status))
			return 1;
		printf("follower %d ended on generation %d\n", i, gen);
		ok &= status == 0 && gen == GENERATIONS;
	}
	pthread_join(t, &thread_gen);
	printf("thread follower ended on generation %d\n",
	       (int)(intptr_t)thread_gen);
	ok &= (intptr_t)thread_gen == GENERATIONS;
	weft_runtime_free(rt);
	return ok ? 0 : 1;
}
