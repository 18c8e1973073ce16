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
 * watch: one producer task stores 1, 2, 3, ... (each value a row of
 * equal words, so a torn copy shows), checking with send_replace that the
 * value it replaced is its previous one; 4 reader tasks and a plain thread
 * wait for changes (dropping pending waits at random) and read with
 * borrow_and_update; the main thread aborts random readers and sometimes
 * the producer. Every value read is whole and newer than the last one,
 * and each surviving reader ends (-EPIPE) having read the final value.
 *
 * Under ASan/LSan the process exit finds any handle or channel leaked by
 * an abort or drop path; under TSan this checks the channel locking and
 * the wake rounds. Exit 0 pass, 1 fail (with the seed), 77 skip.
 */
#include <weft.h>

#include "stress.h"

enum { PRODUCERS = 3, CONSUMERS = 4, PER_PRODUCER = 400 };
enum { READERS = 4, UPDATES = 600, WIDTH = 8 };

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

/* --- watch --------------------------------------------------------------- */

struct wide {
	uint64_t w[WIDTH];
};

struct wround {
	atomic_ullong stored; /* the last value the producer stored */
};

struct wproducer {
	struct wround *r;
	weft_watch_tx *tx;
	uint64_t seed, n;
};

static weft_poll wproducer_poll(void *self, weft_cx *cx, void *out)
{
	struct wproducer *p = self;
	struct wide v, old;

	(void)out;
	while (p->n < UPDATES) {
		p->n++;
		for (int i = 0; i < WIDTH; i++)
			v.w[i] = p->n;
		if (stress_splitmix(&p->seed) % 2) {
			int err = weft_watch_send(p->tx, &v);
			if (err && err != -EPIPE)
				stress_fail("watch send: %d", err);
			if (err) /* every reader gone: not stored */
				p->n--;
		} else {
			if (weft_watch_send_replace(p->tx, &v, &old))
				stress_fail("send_replace");
			if (old.w[0] != p->n - 1 || old.w[WIDTH - 1] != p->n - 1)
				stress_fail("replaced %" PRIu64 ", not %" PRIu64,
					    old.w[0], p->n - 1);
		}
		atomic_store(&p->r->stored, p->n);
		stress_progress();
		if (stress_splitmix(&p->seed) % 4 == 0) {
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
	}
	return WEFT_READY;
}

static void wproducer_drop(void *self)
{
	weft_watch_tx_drop(((struct wproducer *)self)->tx);
}

static const weft_future_desc wproducer_desc = {
	.poll = wproducer_poll,
	.drop = wproducer_drop,
	.size = sizeof(struct wproducer),
};

/* A value read: whole, and newer than the last. */
static void wide_check(const struct wide *v, uint64_t *last)
{
	for (int i = 1; i < WIDTH; i++)
		if (v->w[i] != v->w[0])
			stress_fail("torn watch value");
	if (v->w[0] <= *last)
		stress_fail("watch went back: %" PRIu64 " after %" PRIu64,
			    v->w[0], *last);
	*last = v->w[0];
}

struct wreader {
	weft_watch_rx *rx;
	uint64_t seed, last;
	atomic_ullong *end; /* the last value read, once -EPIPE came */
	bool waiting;
	weft_watch_changed c;
};

static weft_poll wreader_poll(void *self, weft_cx *cx, void *out)
{
	struct wreader *r = self;
	struct wide v;
	int st;

	(void)out;
	for (;;) {
		if (!r->waiting) {
			weft_watch_changed_init(&r->c, r->rx);
			r->waiting = true;
		}
		if (weft_watch_changed_poll(&r->c, cx, &st) == WEFT_PENDING) {
			if (stress_splitmix(&r->seed) % 4)
				return WEFT_PENDING;
			weft_watch_changed_drop(&r->c); /* marks nothing */
			r->waiting = false;
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		r->waiting = false;
		if (st == -EPIPE)
			break;
		if (st)
			stress_fail("changed: %d", st);
		weft_watch_borrow_and_update(r->rx, &v);
		wide_check(&v, &r->last);
	}
	atomic_store(r->end, r->last);
	return WEFT_READY;
}

static void wreader_drop(void *self)
{
	struct wreader *r = self;

	if (r->waiting)
		weft_watch_changed_drop(&r->c);
	weft_watch_rx_drop(r->rx);
}

static const weft_future_desc wreader_desc = {
	.poll = wreader_poll,
	.drop = wreader_drop,
	.size = sizeof(struct wreader),
};

struct wblocker {
	weft_watch_rx *rx;
	atomic_ullong *end;
};

static void *wblocker_main(void *arg)
{
	struct wblocker *b = arg;
	uint64_t last = 0;
	struct wide v;
	int st;

	while ((st = weft_watch_changed_blocking(b->rx)) == 0) {
		weft_watch_borrow_and_update(b->rx, &v);
		wide_check(&v, &last);
	}
	if (st != -EPIPE)
		stress_fail("changed_blocking: %d", st);
	atomic_store(b->end, last);
	weft_watch_rx_drop(b->rx);
	return NULL;
}

static void watch_round(weft_runtime *rt, uint64_t seed, unsigned *aborts)
{
	uint64_t x = seed;
	struct wround r;
	struct wide zero = { { 0 } };
	atomic_ullong end[READERS + 1];
	bool aborted[READERS + 1] = { 0 };
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	weft_join *jp, *jr[READERS];
	struct wblocker bl;
	pthread_t t;

	atomic_init(&r.stored, 0);
	for (int i = 0; i <= READERS; i++)
		atomic_init(&end[i], UINT64_MAX);
	if (weft_watch_new(sizeof(struct wide), &zero, &tx, &rx))
		stress_fail("watch_new");
	for (int i = 0; i < READERS; i++) {
		struct wreader w = { .seed = stress_splitmix(&x),
				     .end = &end[i] };
		if (weft_watch_rx_clone(rx, &w.rx) ||
		    weft_spawn(rt, &wreader_desc, &w, &jr[i]))
			stress_fail("reader");
	}
	bl = (struct wblocker){ .rx = rx, .end = &end[READERS] };
	if (pthread_create(&t, NULL, wblocker_main, &bl))
		stress_fail("pthread_create");
	struct wproducer p = { .r = &r, .tx = tx, .seed = stress_splitmix(&x) };
	if (weft_spawn(rt, &wproducer_desc, &p, &jp))
		stress_fail("producer");
	for (int k = 0; k < 2; k++) {
		unsigned which = (unsigned)(stress_splitmix(&x) % 12);
		stress_sleep_us((unsigned)(stress_splitmix(&x) % 500));
		if (which < READERS) {
			weft_task_abort(jr[which]);
			aborted[which] = true;
			(*aborts)++;
		} else if (which == READERS) {
			weft_task_abort(jp);
			(*aborts)++;
		}
	}
	int st = stress_join_wait(jp, NULL);
	if (st != 0 && st != -ECANCELED)
		stress_fail("watch producer: %d", st);
	weft_join_drop(jp);
	for (int i = 0; i < READERS; i++) {
		st = stress_join_wait(jr[i], NULL);
		if (st != 0 && st != -ECANCELED)
			stress_fail("reader %d: %d", i, st);
		weft_join_drop(jr[i]);
	}
	pthread_join(t, NULL);
	uint64_t final = atomic_load(&r.stored);
	for (int i = 0; i <= READERS; i++) {
		uint64_t e = atomic_load(&end[i]);
		if (aborted[i] && e == UINT64_MAX)
			continue;
		if (e != final)
			stress_fail("reader %d ended at %" PRIu64 ", final %"
				    PRIu64, i, e, final);
	}
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, aborts = 0, wrounds = 0;
	int64_t lags = 0;
	double budget;
	weft_runtime *rt;

	stress_init("channel_stress", argc, argv);
	budget = stress_seconds < 6 ? stress_seconds : 6;
	rt = stress_runtime(2, false);
	while (rounds < 4 || stress_elapsed_s() < budget) {
		stress_set_phase("broadcast");
		broadcast_round(rt, stress_seed + rounds, &aborts, &lags);
		stress_set_phase("watch");
		watch_round(rt, ~(stress_seed + rounds), &aborts);
		wrounds++;
		if (++rounds >= 600)
			break;
	}
	weft_runtime_free(rt);
	return stress_finish("%u broadcast and %u watch rounds, %u aborts, %"
			     PRId64 " values lagged", rounds, wrounds, aborts,
			     lags);
}
