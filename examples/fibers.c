/* SPDX-License-Identifier: MIT */
/*
 * fibers: weft code written top to bottom (docs/fibers.md).
 *
 * A parent fiber starts a producer fiber and a consumer fiber joined by a
 * bounded mpsc channel of 4: the producer sends 1..N (each send waits
 * while the channel is full, and it naps 1 ms every 100 values), the
 * consumer adds up what it receives until the producer is gone (-EPIPE)
 * and returns the sum. Meanwhile the parent waits on an empty channel with
 * a 20 ms deadline (weft_await_until: -ETIMEDOUT), and starts a sleeper
 * fiber that it aborts: the sleeper's pending call returns -ECANCELED,
 * it runs its cleanup, and its join reports -ECANCELED. Then it joins
 * the others and checks the sum. main waits for the parent from outside
 * the runtime with weft_block_on on its join handle.
 * Exits 0 when every check held.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

#define N 1000

static atomic_bool sleeper_cleaned_up;

static void *producer(void *arg)
{
	weft_mpsc_tx *tx = arg; /* ours: dropped at the end */
	uint64_t v;
	int r = 0;

	for (v = 1; v <= N && r == 0; v++) {
		weft_mpsc_send send;

		weft_mpsc_send_init(&send, tx, &v);
		/* Suspends while the channel is full; -EPIPE if the
		 * receiver is gone, -ECANCELED if we are. */
		if (weft_await(&weft_mpsc_send_desc, &send, &r))
			break;
		if (v % 100 == 0)
			weft_co_sleep(1000 * 1000);
	}
	weft_mpsc_tx_drop(tx); /* the last sender: the consumer sees -EPIPE */
	return NULL;
}

static void *consumer(void *arg)
{
	weft_mpsc_rx *rx = arg;
	uint64_t v, sum = 0;
	weft_mpsc_recv recv;
	int r;

	for (;;) {
		weft_mpsc_recv_init(&recv, rx, &v);
		if (weft_await(&weft_mpsc_recv_desc, &recv, &r) || r)
			break; /* r == -EPIPE: every sender is gone */
		sum += v;
	}
	weft_mpsc_rx_drop(rx);
	return (void *)(uintptr_t)sum;
}

static void *sleeper(void *arg)
{
	(void)arg;
	/* Aborted while here: returns -ECANCELED, and every fiber call
	 * after it would too, at once; so clean up and return. */
	if (weft_co_sleep(10 * UINT64_C(1000000000)) == -ECANCELED)
		atomic_store(&sleeper_cleaned_up, true);
	return NULL;
}

static void *parent(void *arg)
{
	weft_mpsc_tx *tx, *idle_tx;
	weft_mpsc_rx *rx, *idle_rx;
	weft_join *pj, *cj, *sj;
	weft_mpsc_recv recv;
	void *sum = NULL;
	bool ok;
	uint64_t v;
	int r = 0, err;

	(void)arg;
	if (weft_mpsc_bounded(sizeof(uint64_t), 4, &tx, &rx) ||
	    weft_mpsc_bounded(sizeof(uint64_t), 1, &idle_tx, &idle_rx))
		return NULL; /* out of memory: main reports the failure */
	/* weft_go hands the fiber its argument; NULL rt: this runtime. */
	if (weft_go(NULL, producer, tx, NULL, &pj) ||
	    weft_go(NULL, consumer, rx, NULL, &cj) ||
	    weft_go(NULL, sleeper, NULL, NULL, &sj))
		return NULL;

	/* A timeout on any future: nothing ever comes on idle_rx. */
	weft_mpsc_recv_init(&recv, idle_rx, &v);
	err = weft_await_until(&weft_mpsc_recv_desc, &recv, &r,
			       weft_now_ns() + 20 * 1000 * 1000);
	printf("fibers: recv on an empty channel: %s\n", weft_strerror(err));
	weft_mpsc_tx_drop(idle_tx);
	weft_mpsc_rx_drop(idle_rx);
	if (err != -ETIMEDOUT)
		return NULL;

	/* Cancel the sleeper; its join then reports -ECANCELED. */
	weft_task_abort(sj);
	err = weft_co_join(sj, NULL);
	printf("fibers: aborted sleeper: %s, cleaned up: %s\n",
	       weft_strerror(err),
	       atomic_load(&sleeper_cleaned_up) ? "yes" : "no");
	if (err != -ECANCELED || !atomic_load(&sleeper_cleaned_up))
		return NULL;

	/* Join: the output of a fiber is its function's void *. */
	if (weft_co_join(pj, NULL) || weft_co_join(cj, &sum))
		return NULL;
	printf("fibers: consumer's sum: %llu (expected %llu)\n",
	       (unsigned long long)(uintptr_t)sum,
	       (unsigned long long)N * (N + 1) / 2);
	ok = (uintptr_t)sum == (uintptr_t)N * (N + 1) / 2;
	return (void *)(uintptr_t)ok;
}

int main(void)
{
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_join_future jf = { 0 };
	void *ok = NULL;
	int st = -1;

	weft_runtime_config_init(&cfg);
	cfg.workers = 2; /* fibers migrate between them */
	if (weft_runtime_new(&cfg, &rt))
		return 1;
	/* Wait for a fiber from a plain thread: block on its join handle
	 * as a future (which owns the handle and drops it). */
	jf.value = &ok;
	if (weft_go(rt, parent, NULL, NULL, &jf.join) == 0 &&
	    weft_block_on(rt, &weft_join_future_desc, &jf, &st) < 0)
		st = -1;
	weft_runtime_free(rt);
	printf("fibers: %s\n", st == 0 && ok ? "ok" : "FAILED");
	return st == 0 && ok ? 0 : 1;
}
