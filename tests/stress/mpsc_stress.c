/* SPDX-License-Identifier: MIT */
/*
 * mpsc_stress: per seed, a 2-worker runtime, one weft_mpsc channel
 * (capacity 1, 2, 7, 64 or unbounded; values of 8, 16 or 24 bytes), P
 * producer tasks and a few plain threads with blocking sends, and one
 * consumer task.
 *
 * Producers send (id, seq) and count a value as sent only when its send
 * returned READY 0 (or try_send 0); they drop pending send futures at
 * random and send the same value again, and the main thread aborts random
 * producers mid-wait. The consumer mixes try_recv with recv futures and
 * sometimes drops a pending recv and makes a new one. Some rounds end
 * early: the consumer closes the receiver after a while (senders then see
 * -EPIPE and it drains the rest) or drops it (what is queued goes to
 * drop_value). After each round, a ping-pong: two plain threads send
 * large values into a channel of capacity 1 or 2 while the main thread
 * receives, which hits the popped/has_waiters handshake on most sends.
 *
 * Checks: per producer, the seqs received (and then discarded) are
 * exactly 0..k-1 in order, where k is the number of successes that
 * producer counted: nothing lost, duplicated, reordered or torn; every
 * task and thread ends (no lost wake: the watchdog). Under ASan the
 * channel and everything queued is freed; under TSan, the lock-free
 * receiver side and the popped/has_waiters handshake are checked.
 * Exit 0 pass, 1 fail (seed printed), 77 skip.
 */
#include <weft.h>

#include "stress.h"

enum { PRODUCERS = 4, THREADS = 2, SENDERS = PRODUCERS + THREADS };
enum { MODE_DRAIN, MODE_CLOSE, MODE_DROP };

struct value {
	uint64_t tag; /* id << 32 | seq */
	uint64_t inv; /* ~tag (16- and 24-byte values) */
	uint64_t mul; /* tag * golden (24-byte values) */
};

struct round {
	size_t value_size;
	int mode;
	uint64_t per_sender;
	uint64_t stop_after; /* MODE_CLOSE/DROP: values received first */
	_Atomic uint64_t sent[SENDERS]; /* successes each sender counted */
	uint64_t seen[SENDERS]; /* received or discarded, by the consumer */
	uint64_t dropped;       /* discarded through drop_value */
	atomic_uint send_drops, recv_drops, try_sends, try_recvs;
};

static struct value make(const struct round *r, uint64_t id, uint64_t seq)
{
	struct value v = { .tag = id << 32 | seq };

	(void)r;
	v.inv = ~v.tag;
	v.mul = v.tag * 0x9e3779b97f4a7c15ull;
	return v;
}

/* The consumer's check of one value (received or discarded). */
static void check_value(struct round *r, const struct value *v)
{
	uint64_t id = v->tag >> 32, seq = v->tag & 0xffffffffu;

	STRESS_CHECK(id < SENDERS, "bad id in %#" PRIx64, v->tag);
	if (r->value_size >= 16)
		STRESS_CHECK(v->inv == ~v->tag, "torn value %#" PRIx64,
			     v->tag);
	if (r->value_size >= 24)
		STRESS_CHECK(v->mul == v->tag * 0x9e3779b97f4a7c15ull,
			     "torn value %#" PRIx64, v->tag);
	STRESS_CHECK(seq == r->seen[id],
		     "sender %" PRIu64 ": seq %" PRIu64 " after %" PRIu64
		     " (lost, repeated or reordered)",
		     id, seq, r->seen[id]);
	r->seen[id]++;
}

static void drop_value(void *value, void *ctx)
{
	struct round *r = ctx;
	struct value v = { 0 };

	memcpy(&v, value, r->value_size);
	check_value(r, &v);
	r->dropped++;
}

/* --- producer tasks ----------------------------------------------------- */

struct producer {
	struct round *r;
	weft_mpsc_tx *tx;
	uint64_t id, seq, rng;
	struct value v;
	bool sending;
	weft_mpsc_send s;
};

static void producer_done(struct producer *p)
{
	if (p->sending)
		weft_mpsc_send_drop(&p->s);
	p->sending = false;
	weft_mpsc_tx_drop(p->tx);
	p->tx = NULL;
}

static void producer_sent(struct producer *p)
{
	p->seq++;
	atomic_store(&p->r->sent[p->id], p->seq);
}

static weft_poll producer_poll(void *self, weft_cx *cx, void *out)
{
	struct producer *p = self;
	int res;

	(void)out;
	while (p->seq < p->r->per_sender) {
		if (!p->sending) {
			p->v = make(p->r, p->id, p->seq);
			if (stress_splitmix(&p->rng) % 8 == 0) {
				atomic_fetch_add(&p->r->try_sends, 1);
				res = weft_mpsc_try_send(p->tx, &p->v);
				if (res == 0) {
					producer_sent(p);
					continue;
				}
				if (res == -EPIPE)
					break;
				STRESS_CHECK(res == -EAGAIN, "try_send: %d",
					     res);
			}
			STRESS_CHECK(weft_mpsc_send_init(&p->s, p->tx,
							 &p->v) == 0,
				     "send_init");
			p->sending = true;
		}
		if (weft_mpsc_send_poll(&p->s, cx, &res) == WEFT_PENDING) {
			if (stress_splitmix(&p->rng) % 6)
				return WEFT_PENDING;
			/* Give up on this send and send it again later. */
			weft_mpsc_send_drop(&p->s);
			p->sending = false;
			atomic_fetch_add(&p->r->send_drops, 1);
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		weft_mpsc_send_drop(&p->s);
		p->sending = false;
		if (res == -EPIPE)
			break;
		STRESS_CHECK(res == 0, "send: %d", res);
		producer_sent(p);
		if (stress_splitmix(&p->rng) % 16 == 0) { /* yield */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
	}
	producer_done(p);
	return WEFT_READY;
}

static void producer_drop(void *self)
{
	producer_done(self);
}

static const weft_future_desc producer_desc = {
	.poll = producer_poll,
	.drop = producer_drop,
	.size = sizeof(struct producer),
};

/* --- blocking senders on plain threads ---------------------------------- */

struct bsender {
	struct round *r;
	weft_mpsc_tx *tx;
	uint64_t id, rng;
	pthread_t th;
};

static void *bsender_main(void *arg)
{
	struct bsender *b = arg;

	for (uint64_t seq = 0; seq < b->r->per_sender; seq++) {
		struct value v = make(b->r, b->id, seq);
		int res = -EAGAIN;

		if (stress_splitmix(&b->rng) % 4 == 0)
			res = weft_mpsc_try_send(b->tx, &v);
		if (res == -EAGAIN)
			res = weft_mpsc_send_blocking(b->tx, &v);
		if (res == -EPIPE)
			break;
		STRESS_CHECK(res == 0, "send_blocking: %d", res);
		atomic_store(&b->r->sent[b->id], seq + 1);
	}
	weft_mpsc_tx_drop(b->tx);
	return NULL;
}

/* --- the consumer task -------------------------------------------------- */

struct consumer {
	struct round *r;
	weft_mpsc_rx *rx;
	uint64_t rng, got;
	struct value v;
	bool receiving, closed;
	weft_mpsc_recv recv;
};

/* One value arrived; maybe end the round early. Returns false once the
 * receiver is dropped. */
static bool consumer_got(struct consumer *c)
{
	check_value(c->r, &c->v);
	c->got++;
	stress_progress();
	if (c->got != c->r->stop_after)
		return true;
	if (c->r->mode == MODE_CLOSE) {
		weft_mpsc_rx_close(c->rx);
		c->closed = true;
	} else if (c->r->mode == MODE_DROP) {
		weft_mpsc_rx_drop(c->rx); /* the rest goes to drop_value */
		c->rx = NULL;
		return false;
	}
	return true;
}

static weft_poll consumer_poll(void *self, weft_cx *cx, void *out)
{
	struct consumer *c = self;
	int res;

	(void)out;
	while (c->rx) {
		if (!c->receiving) {
			if (stress_splitmix(&c->rng) % 4 == 0) {
				atomic_fetch_add(&c->r->try_recvs, 1);
				res = weft_mpsc_try_recv(c->rx, &c->v);
				if (res == 0) {
					consumer_got(c);
					continue;
				}
				if (res == -EPIPE)
					break;
				STRESS_CHECK(res == -EAGAIN, "try_recv: %d",
					     res);
			}
			STRESS_CHECK(weft_mpsc_recv_init(&c->recv, c->rx,
							 &c->v) == 0,
				     "recv_init");
			c->receiving = true;
		}
		if (weft_mpsc_recv_poll(&c->recv, cx, &res) == WEFT_PENDING) {
			if (stress_splitmix(&c->rng) % 5)
				return WEFT_PENDING;
			weft_mpsc_recv_drop(&c->recv);
			c->receiving = false;
			atomic_fetch_add(&c->r->recv_drops, 1);
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		weft_mpsc_recv_drop(&c->recv);
		c->receiving = false;
		if (res == -EPIPE)
			break;
		STRESS_CHECK(res == 0, "recv: %d", res);
		consumer_got(c);
	}
	if (c->rx) {
		STRESS_CHECK(weft_mpsc_len(c->rx) == 0, "len %zu at the end",
			     weft_mpsc_len(c->rx));
		weft_mpsc_rx_drop(c->rx);
		c->rx = NULL;
	}
	return WEFT_READY;
}

static void consumer_drop(void *self)
{
	struct consumer *c = self;

	if (c->receiving)
		weft_mpsc_recv_drop(&c->recv);
	weft_mpsc_rx_drop(c->rx);
}

static const weft_future_desc consumer_desc = {
	.poll = consumer_poll,
	.drop = consumer_drop,
	.size = sizeof(struct consumer),
};

/* --- a round ------------------------------------------------------------ */

struct totals {
	unsigned rounds, aborts;
	uint64_t values, dropped, send_drops, recv_drops, try_sends,
		try_recvs;
};

static void run_round(uint64_t seed, struct totals *t)
{
	static const size_t caps[] = { 1, 2, 7, 64, 0 };
	static const size_t sizes[] = { 8, 16, 24 };
	uint64_t x = seed;
	struct round *r = calloc(1, sizeof(*r));
	weft_mpsc_config cfg = { 0 };
	weft_runtime *rt;
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	weft_join *jc, *jp[PRODUCERS];
	struct bsender bs[THREADS];
	unsigned nthreads = (unsigned)(stress_splitmix(&x) % (THREADS + 1));
	int st;

	STRESS_CHECK(r, "out of memory");
	r->value_size = sizes[stress_splitmix(&x) % 3];
	r->per_sender = 50 + stress_splitmix(&x) % 400;
	r->mode = (int)(stress_splitmix(&x) % 4); /* DRAIN twice as often */
	if (r->mode > MODE_DROP)
		r->mode = MODE_DRAIN;
	r->stop_after = 1 + stress_splitmix(&x) % (r->per_sender * 2);
	cfg.value_size = r->value_size;
	cfg.capacity = caps[stress_splitmix(&x) % 5];
	cfg.drop_value = drop_value;
	cfg.drop_ctx = r;

	rt = stress_runtime(2, stress_splitmix(&x) % 2);
	STRESS_CHECK(weft_mpsc_new(&cfg, &tx, &rx) == 0, "weft_mpsc_new");
	struct consumer c = { .r = r, .rx = rx, .rng = stress_splitmix(&x) };
	STRESS_CHECK(weft_spawn(rt, &consumer_desc, &c, &jc) == 0, "spawn");
	for (unsigned i = 0; i < PRODUCERS; i++) {
		struct producer p = { .r = r, .id = i,
				      .rng = stress_splitmix(&x) };

		STRESS_CHECK(weft_mpsc_tx_clone(tx, &p.tx) == 0, "clone");
		STRESS_CHECK(weft_spawn(rt, &producer_desc, &p, &jp[i]) == 0,
			     "spawn");
	}
	for (unsigned i = 0; i < nthreads; i++) {
		bs[i] = (struct bsender){ .r = r, .id = PRODUCERS + i,
					  .rng = stress_splitmix(&x) };
		STRESS_CHECK(weft_mpsc_tx_clone(tx, &bs[i].tx) == 0, "clone");
		STRESS_CHECK(pthread_create(&bs[i].th, NULL, bsender_main,
					    &bs[i]) == 0,
			     "pthread_create");
	}
	weft_mpsc_tx_drop(tx);
	/* Abort a random few producers, at random moments. */
	for (unsigned i = 0; i < PRODUCERS; i++) {
		if (stress_splitmix(&x) % 3)
			continue;
		stress_sleep_us((unsigned)(stress_splitmix(&x) % 2000));
		weft_task_abort(jp[i]);
		t->aborts++;
	}
	for (unsigned i = 0; i < PRODUCERS; i++) {
		st = stress_join_wait(jp[i], NULL);
		STRESS_CHECK(st == 0 || st == -ECANCELED, "producer %u: %d", i,
			     st);
		weft_join_drop(jp[i]);
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(bs[i].th, NULL);
	st = stress_join_wait(jc, NULL);
	STRESS_CHECK(st == 0, "consumer: %d", st);
	weft_join_drop(jc);
	weft_runtime_free(rt);

	for (unsigned i = 0; i < PRODUCERS + nthreads; i++) {
		uint64_t k = atomic_load(&r->sent[i]);

		/* In a drop round, values sent after the drop were refused;
		 * everything counted as sent was received or discarded. */
		STRESS_CHECK(r->seen[i] == k,
			     "sender %u: %" PRIu64 " sent, %" PRIu64
			     " received or discarded (mode %d, capacity %zu)",
			     i, k, r->seen[i], r->mode, cfg.capacity);
		if (r->mode == MODE_DRAIN)
			STRESS_CHECK(k == r->per_sender || i < PRODUCERS,
				     "thread sender %u stopped at %" PRIu64,
				     i, k);
		t->values += k;
	}
	if (r->mode != MODE_DROP)
		STRESS_CHECK(r->dropped == 0, "%" PRIu64 " values discarded",
			     r->dropped);
	t->dropped += r->dropped;
	t->send_drops += atomic_load(&r->send_drops);
	t->recv_drops += atomic_load(&r->recv_drops);
	t->try_sends += atomic_load(&r->try_sends);
	t->try_recvs += atomic_load(&r->try_recvs);
	if (stress_verbose)
		printf("round %u: capacity %zu, size %zu, mode %d, %u threads"
		       "\n",
		       t->rounds, cfg.capacity, r->value_size, r->mode,
		       nthreads);
	free(r);
}

/* --- ping-pong: the popped/has_waiters handshake ------------------------ */

/*
 * One plain thread sends into a channel of capacity 1 or 2 while this
 * thread receives, spinning a little on try_recv before it blocks: the
 * sender finds the channel full on most sends, so a slot freed just as a
 * sender queues itself is the common case. Values are large, so that the
 * receiver's copy out (before it publishes the freed slot) overlaps the
 * sender's look at the count. A lost handshake leaves the sender waiting
 * on a drained channel: a hang, which the watchdog reports.
 */
#define PING_SIZE WEFT_MPSC_MAX_VALUE

struct pinger {
	weft_mpsc_tx *tx;
	uint64_t n, id;
};

static void *pinger_main(void *arg)
{
	struct pinger *p = arg;
	static _Thread_local uint64_t v[PING_SIZE / 8];

	for (uint64_t i = 0; i < p->n; i++) {
		v[0] = p->id << 32 | i;
		v[PING_SIZE / 8 - 1] = ~v[0];
		STRESS_CHECK(weft_mpsc_send_blocking(p->tx, v) == 0, "send");
	}
	weft_mpsc_tx_drop(p->tx);
	return NULL;
}

static void ping_pong(uint64_t seed, uint64_t n)
{
	struct pinger p[2] = { { .n = n, .id = 0 }, { .n = n, .id = 1 } };
	weft_mpsc_rx *rx;
	pthread_t th[2];
	static uint64_t v[PING_SIZE / 8];
	uint64_t want[2] = { 0, 0 };
	int res;

	STRESS_CHECK(weft_mpsc_bounded(PING_SIZE, 1 + seed % 2, &p[0].tx,
				       &rx) == 0,
		     "weft_mpsc_bounded");
	STRESS_CHECK(weft_mpsc_tx_clone(p[0].tx, &p[1].tx) == 0, "clone");
	for (int i = 0; i < 2; i++)
		STRESS_CHECK(pthread_create(&th[i], NULL, pinger_main,
					    &p[i]) == 0,
			     "pthread_create");
	for (;;) {
		for (int spin = 0; spin < 64; spin++)
			if ((res = weft_mpsc_try_recv(rx, v)) != -EAGAIN)
				break;
		if (res == -EAGAIN)
			res = weft_mpsc_recv_blocking(rx, v);
		if (res == -EPIPE)
			break;
		STRESS_CHECK(res == 0, "recv: %d", res);
		uint64_t id = v[0] >> 32;
		STRESS_CHECK(id < 2 && (v[0] & 0xffffffffu) == want[id] &&
				     v[PING_SIZE / 8 - 1] == ~v[0],
			     "got %#" PRIx64, v[0]);
		want[id]++;
		if ((want[0] + want[1]) % 256 == 0)
			stress_progress();
	}
	STRESS_CHECK(want[0] == n && want[1] == n, "%" PRIu64 ", %" PRIu64
		     " of %" PRIu64, want[0], want[1], n);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	weft_mpsc_rx_drop(rx);
}

int main(int argc, char **argv)
{
	struct totals t = { 0 };
	double budget;

	stress_init("mpsc_stress", argc, argv);
	budget = stress_seconds < 5 ? stress_seconds : 5;
	while (t.rounds < 4 || stress_elapsed_s() < budget) {
		stress_set_phase("round");
		run_round(stress_seed + t.rounds, &t);
		stress_set_phase("ping-pong");
		ping_pong(stress_seed + t.rounds,
			  stress_iters(STRESS_TSAN ? 300 : 2000));
		if (++t.rounds >= 1000)
			break;
	}
	return stress_finish("%u rounds, %" PRIu64 " values, %" PRIu64
			     " discarded, %u aborts, %" PRIu64
			     " send drops, %" PRIu64 " recv drops, %" PRIu64
			     " try_sends, %" PRIu64 " try_recvs",
			     t.rounds, t.values, t.dropped, t.aborts,
			     t.send_drops, t.recv_drops, t.try_sends,
			     t.try_recvs);
}
