/* SPDX-License-Identifier: MIT */
/*
 * Fiber stress (weft/fiber.h). Each round, from its own seed: a runtime of
 * 1-4 workers; producer fibers and poll-based producer tasks send values
 * over a bounded mpsc channel to a consumer fiber; between sends the
 * fibers yield, sleep, and start child fibers that hand a value back over
 * a oneshot and as their join output. The main thread aborts random
 * producers and sometimes the consumer, at random moments (mid-call), and
 * in some rounds shuts the runtime down with fibers still blocked.
 *
 * Checks: every value sent is received by the consumer or still in the
 * channel afterwards (sum and count); a join says 0 exactly when the
 * fiber ran to its end without seeing -ECANCELED; a child's value comes
 * back intact over both paths when the parent was not cancelled; every
 * fiber's cleanup ran (children free their argument: LSan finds a leak
 * under ASan). TSan checks the stack switches and migrations.
 */
#include <weft.h>
#include <weft/fiber.h>

#include "stress.h"

#define MAX_PROD 8
#define MAX_TASKS 4
#define VALUES 40

struct round {
	weft_mpsc_rx *rx;
	atomic_llong sent_sum, recv_sum;
	atomic_int sent_n, recv_n;
	atomic_int cleaned, children, children_done;
	uint64_t seed;
};

/* Per fiber: finished is set only when it ran to its end without a
 * -ECANCELED. */
struct prod {
	struct round *r;
	weft_mpsc_tx *tx;
	uint64_t seed;
	int id;
	atomic_bool finished;
};

struct child_arg {
	struct round *r;
	weft_oneshot_tx *tx;
	long value;
	unsigned sleep_us;
};

static void *child_fn(void *arg)
{
	struct child_arg *c = arg;
	long v = c->value;
	int err = c->sleep_us ? weft_co_sleep(c->sleep_us * 1000ull)
			      : weft_co_yield();

	if (err == 0) {
		(void)weft_oneshot_send(c->tx, &v); /* -EPIPE: parent gone */
	} else {
		STRESS_CHECK(err == -ECANCELED, "child: %d", err);
		weft_oneshot_tx_drop(c->tx);
	}
	atomic_fetch_add(&c->r->children_done, 1);
	free(c);
	return (void *)v;
}

/* Start a child; exchange a value with it both ways. Returns 0 or
 * -ECANCELED. */
static int with_child(struct prod *p, struct stress_rng *g)
{
	struct child_arg *c = malloc(sizeof(*c));
	weft_oneshot_rx *rx;
	weft_join *j;
	long got = -1;
	int st = 1, err;
	void *out = NULL;

	STRESS_CHECK(c != NULL, "malloc");
	STRESS_CHECK(weft_oneshot_new(sizeof(long), &c->tx, &rx) == 0, "os");
	c->r = p->r;
	c->value = (long)stress_rand(g) & 0xffffff;
	c->sleep_us = stress_chance(g, 50) ? (unsigned)stress_below(g, 300) : 0;
	long want = c->value;
	err = weft_go(NULL, child_fn, c, NULL, &j);
	if (err) { /* -ESHUTDOWN: the runtime is stopping; this fiber's
		    * cancellation comes next */
		STRESS_CHECK(err == -ESHUTDOWN, "weft_go: %d", err);
		weft_oneshot_tx_drop(c->tx);
		weft_oneshot_rx_drop(rx);
		free(c);
		return 0;
	}
	atomic_fetch_add(&p->r->children, 1);
	weft_oneshot_recv r = { rx, &got };
	err = weft_await(&weft_oneshot_recv_desc, &r, &st);
	if (err) {
		STRESS_CHECK(err == -ECANCELED, "await: %d", err);
		STRESS_CHECK(weft_co_join(j, NULL) == -ECANCELED, "join");
		return -ECANCELED;
	}
	err = weft_co_join(j, &out);
	if (err) {
		STRESS_CHECK(err == -ECANCELED, "co_join: %d", err);
		/* This fiber's cancellation, or the child's alone (a
		 * shutdown dropped it first): a yield tells which. */
		if (weft_co_yield() == 0) {
			STRESS_CHECK(st == -EPIPE, "child cancelled, st %d", st);
			return 0;
		}
		return -ECANCELED;
	}
	/* The child finished: both paths carry its value. (st -EPIPE: the
	 * child was cancelled before sending, but then its join says so.) */
	STRESS_CHECK(st == 0 && got == want, "oneshot %d %ld, want %ld", st,
		     got, want);
	STRESS_CHECK((long)out == want, "join output %ld, want %ld",
		     (long)out, want);
	return 0;
}

static void *prod_fn(void *arg)
{
	struct prod *p = arg;
	struct stress_rng g;
	int err = 0;

	const char *what = "none";

	stress_rng_init(&g, p->seed);
	for (int i = 0; i < VALUES && !err; i++) {
		long v = p->id * 1000 + i + 1;
		weft_mpsc_send s;
		int res = 1;
		STRESS_CHECK(weft_mpsc_send_init(&s, p->tx, &v) == 0, "init");
		what = "send";
		err = weft_await(&weft_mpsc_send_desc, &s, &res);
		if (err)
			break;
		if (res == 0) {
			atomic_fetch_add(&p->r->sent_sum, v);
			atomic_fetch_add(&p->r->sent_n, 1);
		} else {
			STRESS_CHECK(res == -EPIPE, "send: %d", res);
		}
		switch (stress_below(&g, 8)) {
		case 0:
		case 1:
			what = "yield";
			err = weft_co_yield();
			break;
		case 2:
			what = "sleep";
			err = weft_co_sleep(stress_below(&g, 200) * 1000);
			break;
		case 3:
			what = "child";
			err = with_child(p, &g);
			break;
		default:
			break;
		}
		stress_progress();
	}
	STRESS_CHECK(err == 0 || err == -ECANCELED, "producer: %d", err);
	/* Cleanup: always runs, cancelled or not. */
	if (err)
		STRESS_CHECK(weft_co_yield() == -ECANCELED,
			     "-ECANCELED from %s, then a call that did not fail",
			     what);
	weft_mpsc_tx_drop(p->tx);
	atomic_fetch_add(&p->r->cleaned, 1);
	if (!err)
		atomic_store(&p->finished, true);
	return p;
}

static void *consumer_fn(void *arg)
{
	struct prod *p = arg; /* tx unused */
	struct stress_rng g;
	int err = 0;

	stress_rng_init(&g, p->seed);
	for (;;) {
		weft_mpsc_recv r;
		long v = 0;
		int res = 1;
		STRESS_CHECK(weft_mpsc_recv_init(&r, p->r->rx, &v) == 0, "i");
		if ((err = weft_await(&weft_mpsc_recv_desc, &r, &res)))
			break;
		if (res == -EPIPE)
			break;
		STRESS_CHECK(res == 0 && v > 0, "recv %d %ld", res, v);
		atomic_fetch_add(&p->r->recv_sum, v);
		atomic_fetch_add(&p->r->recv_n, 1);
		if (stress_chance(&g, 10) && (err = weft_co_yield()))
			break;
	}
	STRESS_CHECK(err == 0 || err == -ECANCELED, "consumer: %d", err);
	/* Cancelled: no more values will be taken; waiting senders fail
	 * (the main thread drains what is queued). */
	weft_mpsc_rx_close(p->r->rx);
	atomic_fetch_add(&p->r->cleaned, 1);
	if (!err)
		atomic_store(&p->finished, true);
	return p;
}

/* A poll-based producer: sends its values, yielding now and then. */
struct ptask {
	struct round *r;
	weft_mpsc_tx *tx;
	int id, i;
	bool sending;
	weft_mpsc_send s;
	weft_yield y;
	long v;
};

static weft_poll ptask_poll(void *self, weft_cx *cx, void *out)
{
	struct ptask *t = self;
	(void)out;
	while (t->i < VALUES) {
		if (!t->sending) {
			t->v = 500000 + t->id * 1000 + t->i + 1;
			STRESS_CHECK(weft_mpsc_send_init(&t->s, t->tx, &t->v) ==
				     0, "init");
			t->sending = true;
		}
		int res = 1;
		if (weft_mpsc_send_poll(&t->s, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_mpsc_send_drop(&t->s);
		t->sending = false;
		if (res == 0) {
			atomic_fetch_add(&t->r->sent_sum, t->v);
			atomic_fetch_add(&t->r->sent_n, 1);
		}
		t->i++;
		if (t->i % 7 == 0 && weft_yield_poll(&t->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		t->y = (weft_yield)WEFT_YIELD_INIT;
	}
	return WEFT_READY;
}

static void ptask_drop(void *self)
{
	struct ptask *t = self;
	if (t->sending)
		weft_mpsc_send_drop(&t->s);
	weft_mpsc_tx_drop(t->tx);
	atomic_fetch_add(&t->r->cleaned, 1);
}

static const weft_future_desc ptask_desc = {
	.poll = ptask_poll,
	.drop = ptask_drop,
	.size = sizeof(struct ptask),
};

static void run_round(uint64_t seed, unsigned *aborts, unsigned *shutdowns,
		      unsigned *children)
{
	struct stress_rng g;
	struct round r;
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_mpsc_tx *tx;
	struct prod prods[MAX_PROD + 1]; /* [MAX_PROD]: the consumer */
	weft_join *pj[MAX_PROD + 1], *tj[MAX_TASKS];
	bool aborted[MAX_PROD + 1] = { false };

	stress_rng_init(&g, seed);
	memset(&r, 0, sizeof(r));
	r.seed = seed;
	weft_runtime_config_init(&cfg);
	cfg.workers = 1 + (unsigned)stress_below(&g, 4);
	if (stress_chance(&g, 30))
		cfg.flags |= WEFT_RT_NO_LIFO_SLOT;
	unsigned nprod = 1 + (unsigned)stress_below(&g, MAX_PROD);
	unsigned ntask = (unsigned)stress_below(&g, MAX_TASKS + 1);
	bool shutdown = stress_chance(&g, 25);
	STRESS_CHECK(weft_runtime_new(&cfg, &rt) == 0, "runtime");
	STRESS_CHECK(weft_mpsc_bounded(sizeof(long),
				       1 + stress_below(&g, 8), &tx, &r.rx) ==
		     0, "mpsc");

	weft_fiber_opts o;
	weft_fiber_opts_init(&o);
	o.name = "consumer";
	prods[MAX_PROD] = (struct prod){ .r = &r, .seed = stress_rand(&g) };
	STRESS_CHECK(weft_go(rt, consumer_fn, &prods[MAX_PROD], &o,
			     &pj[MAX_PROD]) == 0, "go consumer");
	o.name = "producer";
	for (unsigned i = 0; i < nprod; i++) {
		prods[i] = (struct prod){ .r = &r, .seed = stress_rand(&g),
					  .id = (int)i + 1 };
		STRESS_CHECK(weft_mpsc_tx_clone(tx, &prods[i].tx) == 0, "clone");
		STRESS_CHECK(weft_go(rt, prod_fn, &prods[i], &o, &pj[i]) == 0,
			     "go");
	}
	for (unsigned i = 0; i < ntask; i++) {
		struct ptask t = { .r = &r, .id = (int)i + 1,
				   .y = WEFT_YIELD_INIT };
		STRESS_CHECK(weft_mpsc_tx_clone(tx, &t.tx) == 0, "clone");
		STRESS_CHECK(weft_spawn(rt, &ptask_desc, &t, &tj[i]) == 0,
			     "spawn");
	}
	weft_mpsc_tx_drop(tx);

	/* Aborts from this (foreign) thread, at random moments. */
	stress_set_phase("aborts");
	for (unsigned i = 0; i <= MAX_PROD; i++) {
		if (i < MAX_PROD && i >= nprod)
			continue;
		if (!stress_chance(&g, i == MAX_PROD ? 10 : 25))
			continue;
		stress_sleep_us((unsigned)stress_below(&g, 500));
		weft_task_abort(pj[i]);
		aborted[i] = true;
		(*aborts)++;
	}
	if (shutdown) {
		stress_set_phase("shutdown");
		stress_sleep_us((unsigned)stress_below(&g, 2000));
		STRESS_CHECK(weft_runtime_shutdown(rt) == 0, "shutdown");
		(*shutdowns)++;
	}

	stress_set_phase("joins");
	for (unsigned i = 0; i <= MAX_PROD; i++) {
		if (i < MAX_PROD && i >= nprod)
			continue;
		void *out = NULL;
		int st = stress_join_wait(pj[i], &out);
		bool fin = atomic_load(&prods[i].finished);
		STRESS_CHECK((st == 0) == fin, "fiber %u: join %d, finished %d",
			     i, st, fin);
		STRESS_CHECK(st == 0 || st == -ECANCELED, "join %d", st);
		if (st == 0)
			STRESS_CHECK(out == &prods[i], "output");
		STRESS_CHECK(st == 0 || aborted[i] || shutdown,
			     "fiber %u cancelled unasked", i);
		weft_join_drop(pj[i]);
	}
	for (unsigned i = 0; i < ntask; i++) {
		int st = stress_join_wait(tj[i], NULL);
		STRESS_CHECK(st == 0 || (shutdown && st == -ECANCELED),
			     "task %u: %d", i, st);
		weft_join_drop(tj[i]);
	}
	STRESS_CHECK(weft_runtime_shutdown(rt) == 0, "shutdown");
	weft_runtime_free(rt);

	/* Every value accounted for: received, or still in the channel. */
	long v;
	while (weft_mpsc_try_recv(r.rx, &v) == 0) {
		atomic_fetch_add(&r.recv_sum, v);
		atomic_fetch_add(&r.recv_n, 1);
	}
	weft_mpsc_rx_drop(r.rx);
	STRESS_CHECK(atomic_load(&r.sent_n) == atomic_load(&r.recv_n) &&
		     atomic_load(&r.sent_sum) == atomic_load(&r.recv_sum),
		     "sent %d (sum %lld), received %d (sum %lld)",
		     atomic_load(&r.sent_n), atomic_load(&r.sent_sum),
		     atomic_load(&r.recv_n), atomic_load(&r.recv_sum));
	STRESS_CHECK(atomic_load(&r.cleaned) == (int)(nprod + 1 + ntask),
		     "%d cleanups of %u", atomic_load(&r.cleaned),
		     nprod + 1 + ntask);
	STRESS_CHECK(atomic_load(&r.children) ==
			     atomic_load(&r.children_done),
		     "%d children, %d ended", atomic_load(&r.children),
		     atomic_load(&r.children_done));
	if (!shutdown && !aborted[MAX_PROD])
		STRESS_CHECK(atomic_load(&prods[MAX_PROD].finished),
			     "the consumer did not see the end");
	*children += (unsigned)atomic_load(&r.children);
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, aborts = 0, shutdowns = 0, children = 0;
	double budget;

	stress_init("fiber_stress", argc, argv);
	budget = stress_seconds < 5 ? stress_seconds : 5;
	while (rounds < 3 || stress_elapsed_s() < budget) {
		stress_set_phase("round");
		run_round(stress_seed + rounds, &aborts, &shutdowns, &children);
		if (++rounds >= 400)
			break;
	}
	return stress_finish("%u rounds, %u aborts, %u shutdowns, %u child "
			     "fibers", rounds, aborts, shutdowns, children);
}
