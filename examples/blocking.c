/* SPDX-License-Identifier: MIT */
/*
 * blocking: CPU-bound work on the blocking pool (docs/blocking.md).
 *
 * One worker. A task hands a prime count to the pool with
 * weft_spawn_blocking() and awaits the result, while an interval task keeps
 * ticking on the same worker: the count runs on a pool thread, NULL, so it never
 * holds the worker. The count also checks that the ticker ticked while it
 * ran. Prints the count and the ticks; exits 0 when both are right.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define MS 1000000ull
#define LIMIT 500000u /* primes below it: 41,538 */

static atomic_int ticks;

/* The blocking job: plain C, runs on a pool thread. */
struct count {
	unsigned limit;
	unsigned primes;
	int ticks_during; /* ticks the worker made while we counted */
};

static void *count_primes(void *arg)
{
	struct count *c = arg;
	int before = atomic_load(&ticks);

	c->primes = 0;
	for (unsigned n = 2; n < c->limit; n++) {
		unsigned d = 2;

		while (d * d <= n && n % d)
			d++;
		c->primes += d * d > n;
	}
	/* However fast the count was, wait (5 s at most) for the ticker to
	 * prove it ran meanwhile: on the worker, this would hang it. */
	for (int i = 0; i < 5000 && atomic_load(&ticks) < before + 3; i++) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	c->ticks_during = atomic_load(&ticks) - before;
	return c;
}

/* Task 1: hands the count to the pool and awaits it. */
struct counter {
	struct count job;
	weft_oneshot_recv recv;
	void *result;
	int started, status;
};

static weft_poll counter_poll(void *self, weft_cx *cx, void *out)
{
	struct counter *c = self;

	if (!c->started) {
		weft_oneshot_rx *rx;

		/* &c->job lives in this task's state, which stays put and
		 * outlives the job: the task waits for the result. */
		if (weft_spawn_blocking(NULL, count_primes, NULL, &c->job, &rx)) {
			*(int *)out = -1;
			return WEFT_READY;
		}
		c->recv.rx = rx;
		c->recv.value = &c->result;
		c->started = 1;
	}
	if (weft_oneshot_recv_desc.poll(&c->recv, cx, &c->status) ==
	    WEFT_PENDING)
		return WEFT_PENDING;
	memcpy(out, &c->job, sizeof(c->job));
	return WEFT_READY;
}

static void counter_drop(void *self)
{
	struct counter *c = self;

	/* Dropped while waiting (shutdown): the job still finishes, and
	 * shutdown waits for it, so &c->job stays valid until then. */
	if (c->started)
		weft_oneshot_recv_desc.drop(&c->recv);
}

static const weft_future_desc counter_desc = {
	.poll = counter_poll,
	.drop = counter_drop,
	.size = sizeof(struct counter),
	.output_size = sizeof(struct count),
};

/* Task 2: ticks every 2 ms until the count is done. */
struct ticker {
	weft_interval iv;
	atomic_int *stop;
};

static weft_poll ticker_poll(void *self, weft_cx *cx, void *out)
{
	struct ticker *t = self;
	int64_t d;

	(void)out;
	while (!atomic_load(t->stop)) {
		if (weft_interval_tick(&t->iv, cx, &d) == WEFT_PENDING)
			return WEFT_PENDING;
		atomic_fetch_add(&ticks, 1);
	}
	return WEFT_READY;
}

static void ticker_drop(void *self)
{
	weft_interval_drop(&((struct ticker *)self)->iv);
}

static const weft_future_desc ticker_desc = {
	.poll = ticker_poll,
	.drop = ticker_drop,
	.size = sizeof(struct ticker),
};

int main(void)
{
	weft_runtime_config cfg;
	weft_runtime *rt;
	atomic_int stop = 0;
	struct counter c = { .job = { .limit = LIMIT } };
	struct ticker t = { .stop = &stop };
	struct count result = { 0 };
	weft_join *jc;
	int status = -1;

	weft_runtime_config_init(&cfg);
	cfg.workers = 1; /* one worker: a blocked one would stop the ticker */
	if (weft_runtime_new(&cfg, &rt))
		return 1;
	weft_interval_init(&t.iv, weft_now_ns(), 2 * MS, WEFT_MISSED_SKIP);
	if (weft_spawn(rt, &ticker_desc, &t, NULL) ||
	    weft_spawn(rt, &counter_desc, &c, &jc))
		return 1;

	weft_join_future jf = { .join = jc, .value = &result };
	if (weft_block_on(rt, &weft_join_future_desc, &jf, &status) ||
	    status)
		return 1;
	atomic_store(&stop, 1);
	weft_runtime_free(rt);

	printf("primes below %u: %u\n", LIMIT, result.primes);
	printf("ticks while counting: %d\n", result.ticks_during);
	return result.primes == 41538 && result.ticks_during >= 3 ? 0 : 1;
}
