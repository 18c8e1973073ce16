/* SPDX-License-Identifier: MIT */
/*
 * channel_stress: weft_broadcast and weft_watch under load on a 2-worker
 * runtime, many seeds.
 *
 * broadcast: 3 producer tasks send through their own sender clone into a
 * ring of 1..64 slots while 4 consumer tasks and one plain thread (the
 * blocking recv) receive until the close. Consumers drop their pending
 * recv future at random (and re-create it), and the main thread aborts
 * random producers and consumers at random moments. In half the rounds
 * the producers stamp each value with a global sequence number taken
 * under a lock held across the send, so the channel's order is known:
 * every surviving receiver must then see exactly 0, 1, 2, ... with each
 * reported lag skipping exactly the missed count. In the other rounds
 * sends race freely and each producer's own numbers must rise. Always:
 * received + missed = values sent successfully, for every receiver that
 * lived through the round (a dropped pending recv must lose nothing).
 *
 * Under ASan/LSan the process exit finds any handle or channel leaked by
 * an abort or drop path; under TSan this checks the channel locking and
 * the wake rounds. Exit 0 pass, 1 fail (with the seed), 77 skip.
 */
#include <weft.h>

#include "stress.h"

enum { PRODUCERS = 3, CONSUMERS = 4, PER_PRODUCER = 400 };

/* --- broadcast ----------------------------------------------------------- */

struct bround {
	bool stamped;
	pthread_mutex_t order; /* stamped rounds: held across each send */
	uint64_t next_stamp;   /* under order */
	atomic_llong sent;     /* successful sends */
};

/* A value: stamp (stamped rounds) or producer << 32 | its count. */
struct bval {
	uint64_t v;
	uint64_t check; /* ~v: a torn copy would not match */
};

struct producer {
	struct bround *r;
	weft_broadcast_tx *tx;
	uint64_t seed;
	int id, n;
};

static weft_poll producer_poll(void *self, weft_cx *cx, void *out)
{
	struct producer *p = self;

	(void)out;
	while (p->n < PER_PRODUCER) {
		struct bval b;
		int got;

		if (p->r->stamped)
			pthread_mutex_lock(&p->r->order);
		b.v = p->r->stamped ? p->r->next_stamp
				    : (uint64_t)p->id << 32 | (uint64_t)p->n;
		b.check = ~b.v;
		got = weft_broadcast_send(p->tx, &b);
		if (got > 0 && p->r->stamped)
			p->r->next_stamp++;
		if (p->r->stamped)
			pthread_mutex_unlock(&p->r->order);
		if (got > 0)
			atomic_fetch_add(&p->r->sent, 1);
		else if (got != -EPIPE)
			stress_fail("send: %d", got);
		p->n++;
		stress_progress();
		if (stress_splitmix(&p->seed) % 8 == 0) {
			/* let the consumers run (and lag) */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
	}
	return WEFT_READY;
}

static void producer_drop(void *self)
{
	weft_broadcast_tx_drop(((struct producer *)self)->tx);
}

static const weft_future_desc producer_desc = {
	.poll = producer_poll,
	.drop = producer_drop,
	.size = sizeof(struct producer),
};

/* What one receiver saw; checked against the round's totals. */
struct tally {
	bool stamped;
	uint64_t expect;              /* stamped: the next stamp */
	uint64_t last[PRODUCERS];     /* free: 1 + last count seen */
	int64_t received, missed;
	atomic_bool finished;         /* saw -EPIPE */
};

static void tally_value(struct tally *t, const struct bval *b)
{
	if (b->check != ~b->v)
		stress_fail("torn value %#" PRIx64, b->v);
	if (t->stamped) {
		if (b->v != t->expect)
			stress_fail("got stamp %" PRIu64 ", want %" PRIu64,
				    b->v, t->expect);
		t->expect++;
	} else {
		unsigned id = (unsigned)(b->v >> 32);
		uint64_t n = b->v & 0xffffffffu;
		if (id >= PRODUCERS || n + 1 <= t->last[id])
			stress_fail("producer %u: %" PRIu64 " after %" PRIu64,
				    id, n, t->last[id]);
		t->last[id] = n + 1;
	}
	t->received++;
}

static void tally_lag(struct tally *t, uint64_t missed)
{
	if (!missed)
		stress_fail("a lag of 0");
	t->expect += missed;
	t->missed += (int64_t)missed;
}

struct consumer {
	struct tally *t;
	weft_broadcast_rx *rx;
	uint64_t seed;
	bool waiting;
	struct bval b;
	uint64_t missed;
	weft_broadcast_recv r;
};

static weft_poll consumer_poll(void *self, weft_cx *cx, void *out)
{
	struct consumer *c = self;
	int st;

	(void)out;
	for (;;) {
		if (!c->waiting) {
			weft_broadcast_recv_init(&c->r, c->rx, &c->b,
						 &c->missed);
			c->waiting = true;
		}
		if (weft_broadcast_recv_poll(&c->r, cx, &st) == WEFT_PENDING) {
			if (stress_splitmix(&c->seed) % 4)
				return WEFT_PENDING;
			/* Drop the pending recv: it must lose nothing. */
			weft_broadcast_recv_drop(&c->r);
			c->waiting = false;
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		c->waiting = false;
		if (st == -EPIPE)
			break;
		if (st == -EOVERFLOW)
			tally_lag(c->t, c->missed);
		else if (st == 0)
			tally_value(c->t, &c->b);
		else
			stress_fail("recv: %d", st);
		stress_progress();
	}
	atomic_store(&c->t->finished, true);
	return WEFT_READY;
}

static void consumer_drop(void *self)
{
	struct consumer *c = self;

	if (c->waiting)
		weft_broadcast_recv_drop(&c->r);
	weft_broadcast_rx_drop(c->rx);
}

static const weft_future_desc consumer_desc = {
	.poll = consumer_poll,
	.drop = consumer_drop,
	.size = sizeof(struct consumer),
};

struct blocker {
	struct tally *t;
	weft_broadcast_rx *rx;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;
	struct bval v;
	uint64_t missed;
	int st;

	while ((st = weft_broadcast_recv_blocking(b->rx, &v, &missed)) !=
	       -EPIPE) {
		if (st == -EOVERFLOW)
			tally_lag(b->t, missed);
		else if (st == 0)
			tally_value(b->t, &v);
		else
			stress_fail("blocking recv: %d", st);
	}
	atomic_store(&b->t->finished, true);
	weft_broadcast_rx_drop(b->rx);
	return NULL;
}

static void broadcast_round(weft_runtime *rt, uint64_t seed,
			    unsigned *aborts, int64_t *lags)
{
	uint64_t x = seed;
	struct bround r = { .stamped = stress_splitmix(&x) % 2 };
	size_t cap = (size_t)1 << (stress_splitmix(&x) % 7);
	struct tally tl[CONSUMERS + 1];
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;
	weft_join *jp[PRODUCERS], *jc[CONSUMERS];
	struct blocker bl;
	pthread_t t;

	pthread_mutex_init(&r.order, NULL);
	for (int i = 0; i <= CONSUMERS; i++) {
		tl[i] = (struct tally){ .stamped = r.stamped };
		atomic_init(&tl[i].finished, false);
	}
	if (weft_broadcast_new(sizeof(struct bval), cap, &tx, &rx))
		stress_fail("broadcast_new");
	/* Every receiver subscribes before the first send. */
	for (int i = 0; i < CONSUMERS; i++) {
		struct consumer c = { .t = &tl[i], .seed = stress_splitmix(&x) };
		if (weft_broadcast_subscribe(tx, &c.rx) ||
		    weft_spawn(rt, &consumer_desc, &c, &jc[i]))
			stress_fail("consumer");
	}
	bl = (struct blocker){ .t = &tl[CONSUMERS], .rx = rx };
	if (pthread_create(&t, NULL, blocker_main, &bl))
		stress_fail("pthread_create");
	for (int i = 0; i < PRODUCERS; i++) {
		struct producer p = { .r = &r, .id = i,
				      .seed = stress_splitmix(&x) };
		if (weft_broadcast_tx_clone(tx, &p.tx) ||
		    weft_spawn(rt, &producer_desc, &p, &jp[i]))
			stress_fail("producer");
	}
	weft_broadcast_tx_drop(tx); /* the producers hold the rest */

	bool aborted_c[CONSUMERS] = { 0 };
	for (int k = 0; k < 3; k++) {
		unsigned which = (unsigned)(stress_splitmix(&x) % 16);
		stress_sleep_us((unsigned)(stress_splitmix(&x) % 500));
		if (which < PRODUCERS) {
			weft_task_abort(jp[which]);
			(*aborts)++;
		} else if (which < PRODUCERS + CONSUMERS) {
			weft_task_abort(jc[which - PRODUCERS]);
			aborted_c[which - PRODUCERS] = true;
			(*aborts)++;
		}
	}
	for (int i = 0; i < PRODUCERS; i++) {
		int st = stress_join_wait(jp[i], NULL);
		if (st != 0 && st != -ECANCELED)
			stress_fail("producer %d: %d", i, st);
		weft_join_drop(jp[i]);
	}
	for (int i = 0; i < CONSUMERS; i++) {
		int st = stress_join_wait(jc[i], NULL);
		if (st == -ECANCELED)
			aborted_c[i] = true;
		else if (st != 0)
			stress_fail("consumer %d: %d", i, st);
		weft_join_drop(jc[i]);
	}
	pthread_join(t, NULL);

	int64_t sent = atomic_load(&r.sent);
	for (int i = 0; i <= CONSUMERS; i++) {
		if (i < CONSUMERS && aborted_c[i])
			continue;
		if (!atomic_load(&tl[i].finished))
			stress_fail("receiver %d never saw the close", i);
		if (tl[i].received + tl[i].missed != sent)
			stress_fail("receiver %d (cap %zu, %s): %" PRId64
				    " received + %" PRId64 " missed != %" PRId64
				    " sent", i, cap,
				    r.stamped ? "stamped" : "free",
				    tl[i].received, tl[i].missed, sent);
		*lags += tl[i].missed;
	}
	pthread_mutex_destroy(&r.order);
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, aborts = 0;
	int64_t lags = 0;
	double budget;
	weft_runtime *rt;

	stress_init("channel_stress", argc, argv);
	budget = stress_seconds < 6 ? stress_seconds : 6;
	rt = stress_runtime(2, false);
	while (rounds < 4 || stress_elapsed_s() < budget) {
		stress_set_phase("broadcast");
		broadcast_round(rt, stress_seed + rounds, &aborts, &lags);
		if (++rounds >= 1000)
			break;
	}
	weft_runtime_free(rt);
	return stress_finish("%u rounds, %u aborts, %" PRId64 " values lagged",
			     rounds, aborts, lags);
}
