/* SPDX-License-Identifier: MIT */
/*
 * peer_stress: the peer network (weft/peer.h) under churn.
 *
 * Each round: a runtime of 1-4 workers and 3-5 nodes on loopback, each
 * listing every other, with small send and event queues, a random
 * shutdown mode and a short flush bound. On each node a plain thread and
 * two fibers act at random: sends (try_send, waiting sends with a short
 * deadline from the fibers, multicast, broadcast), connect, disconnect,
 * and, from the thread, remove and add again (the endpoint gets a new
 * id). Events are taken by a plain thread (weft_peer_event_blocking) or a
 * fiber (weft_co_peer_event), alternately per node. After a while the
 * nodes are shut down one by one in random order while the traffic goes
 * on, then the actors stop.
 *
 * Every message carries its sender, a sequence number and its length, and
 * a body derived from them. Checks, per node once it is shut down and its
 * events are all taken (-EPIPE):
 *   - every send that was accepted (returned 0, or counted by a multicast
 *     or broadcast) is exactly one of: a SENT event, a SEND_FAILED event,
 *     or counted in stats.dropped: nothing lost, nothing twice;
 *   - the counters agree with the events (sent, send_failed, received),
 *     and REMOVED events' dropped add up to no more than stats.dropped;
 *   - received messages are intact, were accepted by their sender, arrive
 *     at most once per receiver, and no receiver got more from a sender
 *     than that sender reported SENT to it;
 *   - every node has as many DISCONNECTED as CONNECTED events at the end;
 *   - nothing leaks (ASan), no data race (TSan).
 *
 * Usage: peer_stress [seed]; WEFT_STRESS_SCALE / _SECONDS: stress.h.
 * Exit 0 pass, 1 fail (with the seed), 77 skip.
 */
#include <weft.h>
#include <weft/peer.h>

#include "stress.h"

#define MAX_NODES 5
#define MAX_SEQ (1u << 18) /* messages one sender may try per round */
#define MAX_IDS 4096       /* endpoint ids one node may hand out */
#define HDR 16

struct node;

struct round {
	struct node *nodes;
	int count;
	atomic_bool stop;
	uint64_t seed;
};

struct node {
	struct round *r;
	int idx;
	weft_peer_node *n;
	uint16_t port;
	/* ids[j]: node j on this node's list now (0: none); idmap: id -> j */
	_Atomic weft_peer_id ids[MAX_NODES];
	_Atomic signed char idmap[MAX_IDS];
	pthread_mutex_t list_mu; /* remove + add of one node's entries */
	/* the sender side */
	atomic_uint_fast32_t next_seq;
	atomic_uint_fast8_t *accepted; /* [MAX_SEQ]: queued for >= 1 */
	atomic_uint_fast64_t accepted_sends; /* per endpoint */
	atomic_bool down;
	/* the events, taken by the collector (one taker) */
	uint64_t ev_sent, ev_failed, ev_msgs, ev_removed_dropped;
	uint64_t ev_connected, ev_disconnected;
	uint64_t sent_to[MAX_NODES]; /* SENT events per receiver node */
	uint64_t got_from[MAX_NODES];
	uint8_t *seen[MAX_NODES]; /* [MAX_SEQ] per sender */
	weft_join *collector_fiber;
	pthread_t collector_thread;
	/* actors */
	pthread_t actor_thread;
	weft_join *actor_fibers[2];
};

/* --- messages ------------------------------------------------------------ */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static unsigned char body_byte(uint32_t sender, uint32_t seq, size_t k)
{
	return (unsigned char)(seq * 2654435761u + sender * 97u + k * 31u);
}

/* A message from @from with a fresh sequence number; *@seq gets it. NULL
 * when the sender ran out of numbers. */
static unsigned char *msg_new(struct node *from, struct stress_rng *rng,
			      size_t *len, uint32_t *seq)
{
	uint32_t s = (uint32_t)atomic_fetch_add(&from->next_seq, 1);
	if (s >= MAX_SEQ)
		return NULL;
	size_t l = HDR + (size_t)stress_below(rng, 2000);
	if (stress_chance(rng, 3))
		l = HDR + 20000 + (size_t)stress_below(rng, 40000);
	unsigned char *m = malloc(l);
	if (!m)
		stress_fail("out of memory");
	put32(m, (uint32_t)from->idx);
	put32(m + 4, s);
	put32(m + 8, (uint32_t)l);
	put32(m + 12, 0x5eed5eed);
	for (size_t k = HDR; k < l; k++)
		m[k] = body_byte((uint32_t)from->idx, s, k);
	*len = l;
	*seq = s;
	return m;
}

static void accept_n(struct node *from, uint32_t seq, int n)
{
	if (n <= 0)
		return;
	atomic_store(&from->accepted[seq], 1);
	atomic_fetch_add(&from->accepted_sends, (uint64_t)n);
}

/* --- the collector ------------------------------------------------------- */

static void on_event(struct node *me, weft_peer_event *ev)
{
	struct round *r = me->r;
	int j = -1;

	/* The actor that added the id maps it once add returns, but the
	 * node may report on the id before that. */
	for (int t = 0; ev->peer > 0 && ev->peer < MAX_IDS && t < 20000; t++) {
		if ((j = atomic_load(&me->idmap[ev->peer])) >= 0)
			break;
		stress_sleep_us(100);
	}

	switch (ev->kind) {
	case WEFT_PEER_SENT:
		me->ev_sent++;
		STRESS_CHECK(j >= 0, "SENT to unknown id %" PRIu64, ev->peer);
		me->sent_to[j]++;
		break;
	case WEFT_PEER_SEND_FAILED:
		me->ev_failed++;
		STRESS_CHECK(ev->error < 0, "SEND_FAILED error %d", ev->error);
		break;
	case WEFT_PEER_REMOVED:
		me->ev_removed_dropped += ev->dropped;
		break;
	case WEFT_PEER_CONNECTED:
		me->ev_connected++;
		break;
	case WEFT_PEER_DISCONNECTED:
		me->ev_disconnected++;
		break;
	case WEFT_PEER_MESSAGE: {
		const unsigned char *m = ev->data;
		me->ev_msgs++;
		STRESS_CHECK(ev->len >= HDR && m, "message of %zu bytes",
			     ev->len);
		uint32_t from = get32(m), seq = get32(m + 4);
		STRESS_CHECK(from < (uint32_t)r->count && seq < MAX_SEQ &&
				     get32(m + 8) == ev->len &&
				     get32(m + 12) == 0x5eed5eed,
			     "bad header: from %u seq %u len %u/%zu", from, seq,
			     get32(m + 8), ev->len);
		STRESS_CHECK(j == (int)from,
			     "node %d: message from node %u came as id %" PRIu64
			     " (node %d)", me->idx, from, ev->peer, j);
		for (size_t k = HDR; k < ev->len; k++)
			STRESS_CHECK(m[k] == body_byte(from, seq, k),
				     "message %u from %u: byte %zu", seq, from,
				     k);
		STRESS_CHECK(!me->seen[from][seq],
			     "node %d got message %u from %u twice", me->idx,
			     seq, from);
		me->seen[from][seq] = 1;
		me->got_from[from]++;
		stress_progress();
		break;
	}
	case WEFT_PEER_REFUSED:
	case WEFT_PEER_ADDED:
		break;
	default:
		stress_fail("event kind %d", ev->kind);
	}
}

static void *collector_thread_fn(void *arg)
{
	struct node *me = arg;
	weft_peer_event ev;
	int rc;

	while ((rc = weft_peer_event_blocking(me->n, &ev)) == 0) {
		on_event(me, &ev);
		weft_peer_event_clear(&ev);
	}
	STRESS_CHECK(rc == -EPIPE, "event_blocking: %d", rc);
	return NULL;
}

static void *collector_fiber_fn(void *arg)
{
	struct node *me = arg;
	weft_peer_event ev;
	int rc;

	for (;;) {
		rc = weft_co_peer_event(me->n, &ev,
					weft_now_ns() + 50 * 1000 * 1000);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc)
			break;
		on_event(me, &ev);
		weft_peer_event_clear(&ev);
	}
	STRESS_CHECK(rc == -EPIPE, "co_peer_event: %d", rc);
	return NULL;
}

/* --- the actors ------------------------------------------------------------ */

static bool send_err_ok(int rc)
{
	return rc == -EAGAIN || rc == -ENOTCONN || rc == -ENOENT ||
	       rc == -ESHUTDOWN || rc == -ETIMEDOUT;
}

/* One random action of node @me. Returns false once @me is shut down. */
static bool act(struct node *me, struct stress_rng *rng, bool fiber,
		bool lists)
{
	struct round *r = me->r;
	int j = (int)stress_below(rng, (uint64_t)r->count - 1);
	if (j >= me->idx)
		j++;
	weft_peer_id id = atomic_load(&me->ids[j]);
	uint64_t dice = stress_below(rng, 1000);
	unsigned char *m;
	size_t len;
	uint32_t seq;
	int rc;

	if (dice < 600) { /* one send */
		if (!(m = msg_new(me, rng, &len, &seq)))
			return true;
		if (fiber && stress_chance(rng, 50))
			rc = weft_co_peer_send(
				me->n, id, m, len,
				weft_now_ns() + stress_below(rng, 3000000));
		else
			rc = weft_peer_try_send(me->n, id, m, len);
		free(m);
		if (rc == 0)
			accept_n(me, seq, 1);
		else
			STRESS_CHECK(send_err_ok(rc), "send: %d", rc);
		return rc != -ESHUTDOWN;
	}
	if (dice < 680) { /* multicast to all */
		weft_peer_id ids[MAX_NODES];
		int errs[MAX_NODES], k = 0;
		for (int i = 0; i < r->count; i++)
			if (i != me->idx)
				ids[k++] = atomic_load(&me->ids[i]);
		if (!(m = msg_new(me, rng, &len, &seq)))
			return true;
		rc = weft_peer_multicast(me->n, ids, (size_t)k, m, len, errs);
		free(m);
		if (rc == -ESHUTDOWN)
			return false;
		STRESS_CHECK(rc >= 0, "multicast: %d", rc);
		int ok = 0;
		for (int i = 0; i < k; i++) {
			ok += errs[i] == 0;
			STRESS_CHECK(errs[i] == 0 || send_err_ok(errs[i]),
				     "multicast errs: %d", errs[i]);
		}
		STRESS_CHECK(ok == rc, "multicast: %d, errs say %d", rc, ok);
		accept_n(me, seq, rc);
		return true;
	}
	if (dice < 720) { /* broadcast */
		size_t full;
		if (!(m = msg_new(me, rng, &len, &seq)))
			return true;
		rc = weft_peer_broadcast(me->n, m, len, &full);
		free(m);
		if (rc == -ESHUTDOWN)
			return false;
		STRESS_CHECK(rc >= 0 && rc < r->count, "broadcast: %d", rc);
		accept_n(me, seq, rc);
		return true;
	}
	if (dice < 800) { /* want it */
		rc = weft_peer_connect(me->n, id);
		STRESS_CHECK(rc == 0 || rc == -ENOENT || rc == -ESHUTDOWN,
			     "connect: %d", rc);
		return rc != -ESHUTDOWN;
	}
	if (dice < 830) {
		rc = weft_peer_disconnect(me->n, id);
		STRESS_CHECK(rc == 0 || rc == -ENOENT || rc == -ESHUTDOWN,
			     "disconnect: %d", rc);
		return !atomic_load(&me->down);
	}
	if (dice < 995 || !lists) { /* a pause */
		if (fiber)
			weft_co_sleep(stress_below(rng, 200000));
		else
			stress_sleep_us((unsigned)stress_below(rng, 200));
		return !atomic_load(&me->down);
	}
	/* remove and list again: a new id */
	pthread_mutex_lock(&me->list_mu);
	id = atomic_load(&me->ids[j]);
	rc = weft_peer_remove(me->n, id);
	STRESS_CHECK(rc == 0 || rc == -ENOENT || rc == -ESHUTDOWN,
		     "remove: %d", rc);
	char url[64];
	weft_peer_id nid = 0;
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", r->nodes[j].port);
	rc = weft_peer_add(me->n, url, &nid);
	if (rc == 0) {
		STRESS_CHECK(nid > id && nid < MAX_IDS, "new id %" PRIu64,
			     nid);
		atomic_store(&me->idmap[nid], (signed char)j);
		atomic_store(&me->ids[j], nid);
		if (stress_chance(rng, 70))
			weft_peer_connect(me->n, nid);
	} else {
		STRESS_CHECK(rc == -ESHUTDOWN, "add: %d", rc);
	}
	pthread_mutex_unlock(&me->list_mu);
	return rc == 0;
}

struct actor {
	struct node *me;
	uint64_t stream;
};

static void *actor_thread_fn(void *arg)
{
	struct node *me = arg;
	struct stress_rng rng;

	stress_rng_init(&rng, me->r->seed * 31 + (uint64_t)me->idx);
	while (!atomic_load(&me->r->stop)) {
		if (!act(me, &rng, false, true))
			break;
		if (stress_chance(&rng, 10))
			stress_sleep_us((unsigned)stress_below(&rng, 300));
	}
	return NULL;
}

static void *actor_fiber_fn(void *arg)
{
	struct actor *a = arg;
	struct stress_rng rng;

	stress_rng_init(&rng, a->stream);
	while (!atomic_load(&a->me->r->stop)) {
		if (!act(a->me, &rng, true, false))
			break;
		if (stress_chance(&rng, 20) && weft_co_yield() == -ECANCELED)
			break;
	}
	free(a);
	return NULL;
}

/* --- a round ------------------------------------------------------------- */

static void node_start(struct round *r, weft_runtime *rt, int i,
		       struct stress_rng *rng)
{
	struct node *me = &r->nodes[i];
	weft_peer_config c;

	me->r = r;
	me->idx = i;
	pthread_mutex_init(&me->list_mu, NULL);
	for (int k = 0; k < MAX_IDS; k++)
		atomic_init(&me->idmap[k], -1);
	me->accepted = calloc(MAX_SEQ, sizeof(*me->accepted));
	for (int k = 0; k < MAX_NODES; k++)
		me->seen[k] = calloc(MAX_SEQ, 1);
	if (!me->accepted || !me->seen[MAX_NODES - 1])
		stress_fail("out of memory");
	weft_peer_config_init(&c);
	c.reconnect_ns = (10 + stress_below(rng, 40)) * 1000 * 1000;
	c.handshake_ns = 2000ull * 1000 * 1000;
	c.send_queue = 1 + (size_t)stress_below(rng, 32);
	c.event_queue = 1 + (size_t)stress_below(rng, 64);
	c.shutdown_mode = (int)stress_below(rng, 2);
	c.shutdown_ns = (50 + stress_below(rng, 300)) * 1000 * 1000;
	c.stack_size = 32 * 1024;
	int rc = weft_peer_node_new(rt, &c, &me->n);
	STRESS_CHECK(rc == 0, "node_new: %d", rc);
	me->port = weft_peer_port(me->n);
}

static void node_list(struct round *r, int i, struct stress_rng *rng)
{
	struct node *me = &r->nodes[i];

	for (int j = 0; j < r->count; j++) {
		char url[64];
		weft_peer_id id = 0;
		if (j == i)
			continue;
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%u",
			 r->nodes[j].port);
		STRESS_CHECK(weft_peer_add(me->n, url, &id) == 0, "add");
		atomic_store(&me->idmap[id], (signed char)j);
		atomic_store(&me->ids[j], id);
		if (stress_chance(rng, 60))
			STRESS_CHECK(weft_peer_connect(me->n, id) == 0,
				     "connect");
	}
}

static void check_node(struct round *r, struct node *me)
{
	weft_peer_stats st = { .size = sizeof(st) };
	uint64_t acc = atomic_load(&me->accepted_sends);

	STRESS_CHECK(weft_peer_stats_get(me->n, &st) == 0, "stats");
	STRESS_CHECK(acc == me->ev_sent + me->ev_failed + st.dropped,
		     "node %d: %" PRIu64 " sends accepted, but %" PRIu64
		     " SENT + %" PRIu64 " SEND_FAILED + %" PRIu64
		     " dropped = %" PRIu64,
		     me->idx, acc, me->ev_sent, me->ev_failed, st.dropped,
		     me->ev_sent + me->ev_failed + st.dropped);
	STRESS_CHECK(st.sent == me->ev_sent,
		     "node %d: stats.sent %" PRIu64 ", %" PRIu64 " SENT events",
		     me->idx, st.sent, me->ev_sent);
	STRESS_CHECK(st.send_failed == me->ev_failed,
		     "node %d: stats.send_failed %" PRIu64 ", %" PRIu64
		     " events",
		     me->idx, st.send_failed, me->ev_failed);
	STRESS_CHECK(st.received == me->ev_msgs,
		     "node %d: stats.received %" PRIu64 ", %" PRIu64
		     " MESSAGE events",
		     me->idx, st.received, me->ev_msgs);
	STRESS_CHECK(me->ev_removed_dropped <= st.dropped,
		     "node %d: REMOVED dropped %" PRIu64 " > stats %" PRIu64,
		     me->idx, me->ev_removed_dropped, st.dropped);
	STRESS_CHECK(me->ev_connected == me->ev_disconnected &&
			     st.connects == st.disconnects && st.connected == 0,
		     "node %d: %" PRIu64 " CONNECTED, %" PRIu64
		     " DISCONNECTED, stats %" PRIu64 "/%" PRIu64 "/%" PRIu64,
		     me->idx, me->ev_connected, me->ev_disconnected,
		     st.connects, st.disconnects, st.connected);
	STRESS_CHECK(st.connects == me->ev_connected,
		     "node %d: connects %" PRIu64 ", %" PRIu64 " events",
		     me->idx, st.connects, me->ev_connected);
	for (int s = 0; s < r->count; s++) {
		struct node *from = &r->nodes[s];
		if (s == me->idx)
			continue;
		STRESS_CHECK(me->got_from[s] <= from->sent_to[me->idx],
			     "node %d got %" PRIu64 " from %d, which SENT %" PRIu64,
			     me->idx, me->got_from[s], s,
			     from->sent_to[me->idx]);
		uint32_t top = (uint32_t)atomic_load(&from->next_seq);
		for (uint32_t q = 0; q < MAX_SEQ; q++) {
			if (q >= top) {
				STRESS_CHECK(!me->seen[s][q],
					     "message %u never made", q);
				continue;
			}
			STRESS_CHECK(!me->seen[s][q] ||
					     atomic_load(&from->accepted[q]),
				     "node %d got message %u from %d, never "
				     "accepted",
				     me->idx, q, s);
		}
	}
}

static void run_round(uint64_t seed, uint64_t *msgs, uint64_t *dropped)
{
	struct round r = { .seed = seed };
	struct stress_rng rng;
	weft_runtime *rt;

	stress_rng_init(&rng, seed);
	r.count = 3 + (int)stress_below(&rng, MAX_NODES - 2);
	r.nodes = calloc((size_t)r.count, sizeof(*r.nodes));
	rt = stress_runtime(1 + (unsigned)stress_below(&rng, 4),
			    stress_chance(&rng, 50));
	stress_set_phase("start");
	for (int i = 0; i < r.count; i++)
		node_start(&r, rt, i, &rng);
	for (int i = 0; i < r.count; i++)
		node_list(&r, i, &rng);
	for (int i = 0; i < r.count; i++) {
		struct node *me = &r.nodes[i];
		if (i % 2)
			STRESS_CHECK(weft_go(rt, collector_fiber_fn, me, NULL,
					     &me->collector_fiber) == 0,
				     "go");
		else
			pthread_create(&me->collector_thread, NULL,
				       collector_thread_fn, me);
		pthread_create(&me->actor_thread, NULL, actor_thread_fn, me);
		for (int k = 0; k < 2; k++) {
			struct actor *a = malloc(sizeof(*a));
			a->me = me;
			a->stream = seed * 131 + (uint64_t)i * 7 + (uint64_t)k;
			STRESS_CHECK(weft_go(rt, actor_fiber_fn, a, NULL,
					     &me->actor_fibers[k]) == 0,
				     "go");
		}
	}
	stress_set_phase("traffic");
	stress_sleep_us(200000 + (unsigned)stress_below(&rng, 600000));
	/* Shut down one by one, in random order, the traffic going on. */
	stress_set_phase("shutdown");
	int order[MAX_NODES];
	for (int i = 0; i < r.count; i++)
		order[i] = i;
	for (int i = r.count - 1; i > 0; i--) {
		int k = (int)stress_below(&rng, (uint64_t)i + 1), t = order[i];
		order[i] = order[k];
		order[k] = t;
	}
	for (int i = 0; i < r.count; i++) {
		struct node *me = &r.nodes[order[i]];
		atomic_store(&me->down, true);
		int rc = weft_peer_shutdown(me->n);
		STRESS_CHECK(rc == 0, "shutdown: %d", rc);
		stress_progress();
		stress_sleep_us((unsigned)stress_below(&rng, 50000));
	}
	atomic_store(&r.stop, true);
	stress_set_phase("join");
	for (int i = 0; i < r.count; i++) {
		struct node *me = &r.nodes[i];
		pthread_join(me->actor_thread, NULL);
		for (int k = 0; k < 2; k++)
			STRESS_CHECK(stress_join_wait(me->actor_fibers[k],
						      NULL) == 0,
				     "actor fiber");
		if (i % 2)
			STRESS_CHECK(stress_join_wait(me->collector_fiber,
						      NULL) == 0,
				     "collector fiber");
		else
			pthread_join(me->collector_thread, NULL);
		if (me->collector_fiber)
			weft_join_drop(me->collector_fiber);
		for (int k = 0; k < 2; k++)
			weft_join_drop(me->actor_fibers[k]);
	}
	stress_set_phase("check");
	for (int i = 0; i < r.count; i++) {
		weft_peer_stats st = { .size = sizeof(st) };
		check_node(&r, &r.nodes[i]);
		weft_peer_stats_get(r.nodes[i].n, &st);
		*msgs += st.received;
		*dropped += st.dropped;
	}
	for (int i = 0; i < r.count; i++) {
		struct node *me = &r.nodes[i];
		STRESS_CHECK(weft_peer_node_free(me->n) == 0, "free");
		free(me->accepted);
		for (int k = 0; k < MAX_NODES; k++)
			free(me->seen[k]);
		pthread_mutex_destroy(&me->list_mu);
	}
	STRESS_CHECK(weft_runtime_shutdown(rt) == 0, "runtime shutdown");
	weft_runtime_free(rt);
	free(r.nodes);
}

int main(int argc, char **argv)
{
	unsigned rounds = 0;
	uint64_t msgs = 0, dropped = 0;
	double budget;

	stress_init("peer_stress", argc, argv);
	budget = stress_seconds < 10 ? stress_seconds : 10;
	while (rounds < 2 || stress_elapsed_s() < budget) {
		run_round(stress_seed + rounds, &msgs, &dropped);
		if (++rounds >= stress_iters(200))
			break;
	}
	return stress_finish("%u rounds, %" PRIu64 " messages received, %" PRIu64
			     " dropped",
			     rounds, msgs, dropped);
}
