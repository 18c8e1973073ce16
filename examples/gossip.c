/* SPDX-License-Identifier: MIT */
/*
 * gossip: a message flooded through a full mesh of peer nodes
 * (docs/peer.md).
 *
 *   gossip [--nodes N] [--rounds R] [--port BASE] [--timeout-ms MS]
 *          [--reconnect-ms MS]
 *   gossip --node I --port BASE [--nodes N] [--send] [--passive]
 *          [--reconnect-ms MS]
 *
 * Every node lists every other one and connects to it. Node 0 floods a
 * message: a node that receives a message id for the first time forwards
 * it to all its connected peers but the one it came from; an id it has
 * seen is dropped (gossip flooding with a seen-set). A message is 24
 * bytes: the origin's node id and index, a sequence number, and the time
 * the origin sent it (CLOCK_MONOTONIC, the same clock in every process of
 * a machine), so each node knows how long the message took to reach it.
 *
 * By default the N nodes (5) run in this process, on ports the kernel
 * picks (--port BASE: node i on BASE+i). Once every node is connected to
 * all the others, node 0 floods R messages (1), one after the other; the
 * program prints the delivery count and the latency (origin send to each
 * node's first receipt, max and mean) and exits 0 when every node got
 * every message, 1 if that did not happen within --timeout-ms (10000).
 *
 * --node I runs node I alone, as its own process, on port BASE+I, with
 * BASE+j listed for every other j < N, until SIGINT or SIGTERM (then it
 * shuts its node down gracefully). It prints one line per event of
 * interest, among them "got I:S from node J after US us" for each message
 * it receives first (I:S: origin index and sequence number; J: the
 * neighbour it came from). --send: it floods a message every second.
 * --passive: it dials nobody, so only the others' dials (their reconnects
 * after it restarted) connect it; tests/gossip-restart.sh uses that.
 *
 * One fiber per node takes its events (connected, disconnected, message)
 * and does the forwarding, so the node's seen-set and connected set have
 * one owner and need no lock.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>
#include <weft/peer.h>

#define MAX_NODES 64
#define MSG_LEN 24
#define MS UINT64_C(1000000)

static struct opts {
	unsigned long nodes, rounds, port, timeout_ms, reconnect_ms;
	long node;       /* --node I; -1: every node in this process */
	bool send;       /* --send */
	bool passive;    /* --passive */
} opt = { .nodes = 5, .rounds = 1, .timeout_ms = 10000, .node = -1 };

/* What a node's event fiber tells the in-process coordinator. */
enum { R_UP, R_DOWN, R_GOT };
struct report {
	int kind;
	int node;
	uint32_t seq;        /* R_GOT */
	uint64_t latency_ns; /* R_GOT */
};

/* Message ids seen, an open-addressing set of non-zero 64-bit keys. */
struct seen {
	uint64_t *keys;
	size_t cap, len;
};

struct node {
	int index;
	weft_peer_node *peer;
	weft_peer_id ep[MAX_NODES]; /* endpoint of node j; 0 for itself */
	/* Connections up per node: CONNECTED adds one and DISCONNECTED takes
	 * one, so a replaced connection (a simultaneous dial, a restart)
	 * counts right whatever order its two events come in. */
	int up[MAX_NODES];
	struct seen seen;
	weft_mpsc_tx *report; /* in-process: to the coordinator */
	weft_join *events;    /* the event fiber */
	uint64_t duplicates, forward_failed;
};

static struct node nodes[MAX_NODES];

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* splitmix64's finaliser: the origin's node id and the sequence number
 * mixed into one key (a collision is a 2^-64 chance). */
static uint64_t mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* 1 if @key was new (now added), 0 if seen before, -ENOMEM. */
static int seen_add(struct seen *s, uint64_t key)
{
	size_t i;

	if (!key)
		key = 1;
	if (2 * (s->len + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		uint64_t *keys = calloc(cap, sizeof(*keys));

		if (!keys)
			return -ENOMEM;
		for (i = 0; i < s->cap; i++) {
			size_t j = s->keys[i] & (cap - 1);

			if (!s->keys[i])
				continue;
			while (keys[j])
				j = (j + 1) & (cap - 1);
			keys[j] = s->keys[i];
		}
		free(s->keys);
		s->keys = keys;
		s->cap = cap;
	}
	for (i = key & (s->cap - 1); s->keys[i]; i = (i + 1) & (s->cap - 1))
		if (s->keys[i] == key)
			return 0;
	s->keys[i] = key;
	s->len++;
	return 1;
}

/* The node that endpoint @id of @n is, or -1. */
static int node_of(const struct node *n, weft_peer_id id)
{
	for (unsigned long j = 0; j < opt.nodes; j++)
		if (id && n->ep[j] == id)
			return (int)j;
	return -1;
}

static void report(struct node *n, int kind, int node, uint32_t seq,
		   uint64_t latency_ns)
{
	struct report r = { kind, node, seq, latency_ns };

	/* Unbounded: never waits. */
	weft_mpsc_try_send(n->report, &r);
}

static void flood_msg(uint8_t *m, const struct node *n, uint32_t seq)
{
	put64(m, weft_peer_node_id(n->peer));
	put64(m + 8, (uint64_t)n->index << 32 | seq);
	put64(m + 16, weft_now_ns());
}

/* A message from neighbour @from: forward it if it is new. */
static void on_message(struct node *n, int from, const weft_peer_event *ev)
{
	const uint8_t *m = ev->data;
	weft_peer_id to[MAX_NODES];
	int errs[MAX_NODES], origin;
	size_t count = 0;
	uint64_t latency;
	uint32_t seq;

	if (ev->len != MSG_LEN)
		return;
	origin = (int)(get64(m + 8) >> 32);
	seq = (uint32_t)get64(m + 8);
	latency = weft_now_ns() - get64(m + 16);
	if (origin == n->index ||
	    seen_add(&n->seen, mix(get64(m) ^ mix(seq))) != 1) {
		n->duplicates++;
		return;
	}
	for (unsigned long j = 0; j < opt.nodes; j++)
		if (n->up[j] > 0 && (int)j != from)
			to[count++] = n->ep[j];
	/* One shared copy for all of them. A full queue (-EAGAIN) skips
	 * that neighbour: it gets the message from another one. */
	if (weft_peer_multicast(n->peer, to, count, m, MSG_LEN, errs) <
	    (int)count)
		n->forward_failed++;
	if (n->report)
		report(n, R_GOT, n->index, seq, latency);
	else
		printf("got %d:%u from node %d after %llu us\n", origin, seq,
		       from, (unsigned long long)(latency / 1000));
}

/* A node's event fiber: runs until the node is shut down (-EPIPE). */
static void *node_events(void *arg)
{
	struct node *n = arg;
	weft_peer_event ev;
	char addr[64], port[8] = "?";
	int err, j;

	while ((err = weft_co_peer_event(n->peer, &ev, 0)) == 0) {
		j = node_of(n, ev.peer);
		switch (ev.kind) {
		case WEFT_PEER_CONNECTED:
		case WEFT_PEER_DISCONNECTED:
			if (j < 0)
				break;
			n->up[j] += ev.kind == WEFT_PEER_CONNECTED ? 1 : -1;
			if (n->report)
				report(n, ev.kind == WEFT_PEER_CONNECTED ?
				       R_UP : R_DOWN, n->index, 0, 0);
			else if (ev.kind == WEFT_PEER_CONNECTED)
				printf("connected to node %d (%s)\n", j,
				       ev.inbound ? "inbound" : "outbound");
			else
				printf("disconnected from node %d: %s\n", j,
				       ev.error ? weft_strerror(ev.error)
						: "the remote closed it");
			break;
		case WEFT_PEER_MESSAGE:
			on_message(n, j, &ev);
			break;
		case WEFT_PEER_REFUSED:
			if (n->report)
				break;
			if (getnameinfo((struct sockaddr *)&ev.addr,
					ev.addrlen, addr, sizeof(addr), port,
					sizeof(port),
					NI_NUMERICHOST | NI_NUMERICSERV))
				strcpy(addr, "?");
			printf("refused %s port %s (node id %016llx): %s\n",
			       addr, port, (unsigned long long)ev.node_id,
			       weft_strerror(ev.error));
			break;
		}
		weft_peer_event_clear(&ev);
	}
	return NULL;
}

/*
 * Create node @i listening on @port (0: the kernel picks), and start its
 * event fiber. The endpoints are added afterwards (add_peers), once every
 * port is known. Returns 0 or a negative errno.
 */
static int node_start(weft_runtime *rt, int i, uint16_t port)
{
	struct node *n = &nodes[i];
	weft_peer_config cfg;
	int err;

	weft_peer_config_init(&cfg);
	cfg.port = port;
	cfg.reconnect_ns = opt.reconnect_ms * MS;
	/* Events we do nothing with stay in the node. */
	cfg.events_off = WEFT_PEER_EV(WEFT_PEER_SENT) |
			 WEFT_PEER_EV(WEFT_PEER_ADDED);
	n->index = i;
	err = weft_peer_node_new(rt, &cfg, &n->peer);
	if (!err)
		err = weft_go(rt, node_events, n, NULL, &n->events);
	return err;
}

/* List every other node j (at @ports[j]) on node @i; dial them unless
 * --passive. */
static int add_peers(int i, const uint16_t *ports)
{
	struct node *n = &nodes[i];
	char url[48];
	int err;

	for (unsigned long j = 0; j < opt.nodes; j++) {
		if ((int)j == i)
			continue;
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", ports[j]);
		err = weft_peer_add(n->peer, url, &n->ep[j]);
		if (!err && !opt.passive)
			err = weft_peer_connect(n->peer, n->ep[j]);
		if (err)
			return err;
	}
	return 0;
}

/* Shut node @i down, wait for its event fiber, free it. */
static void node_stop(int i)
{
	struct node *n = &nodes[i];

	weft_peer_shutdown(n->peer);
	if (n->events)
		weft_co_join(n->events, NULL); /* drops the handle */
	weft_peer_node_free(n->peer);
	weft_mpsc_tx_drop(n->report);
	free(n->seen.keys);
}

/* -------------------------------------------------- all nodes, one process */

/* What the coordinator knows, from the nodes' reports. */
struct tally {
	int up[MAX_NODES];   /* connections up, per node */
	bool got[MAX_NODES]; /* has message `seq` */
	uint32_t seq;        /* the message being flooded */
	unsigned long delivered;
	uint64_t lat_sum, lat_max;
};

/* Take one report into @t, waiting until @deadline at most. */
static int take_report(weft_mpsc_rx *rx, struct tally *t, uint64_t deadline)
{
	struct report r;
	int err = weft_co_mpsc_recv(rx, &r, deadline);

	if (err)
		return err;
	if (r.kind != R_GOT) {
		t->up[r.node] += r.kind == R_UP ? 1 : -1;
	} else if (r.seq == t->seq && !t->got[r.node]) {
		t->got[r.node] = true;
		t->delivered++;
		t->lat_sum += r.latency_ns;
		if (r.latency_ns > t->lat_max)
			t->lat_max = r.latency_ns;
	}
	return 0;
}

/* Every node is connected to every other one. */
static bool mesh_done(const struct tally *t)
{
	for (unsigned long i = 0; i < opt.nodes; i++)
		if (t->up[i] != (int)opt.nodes - 1)
			return false;
	return true;
}

/* Every node but the origin has message t->seq. */
static bool round_done(const struct tally *t)
{
	for (unsigned long i = 1; i < opt.nodes; i++)
		if (!t->got[i])
			return false;
	return true;
}

/* The in-process run: start the nodes, wait for the mesh, flood. */
static void *flood(void *arg)
{
	uint64_t t0 = weft_now_ns(), deadline = t0 + opt.timeout_ms * MS;
	uint64_t t_mesh = 0, received = 0;
	uint16_t ports[MAX_NODES];
	struct tally t = { .seq = 0 };
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	uint8_t m[MSG_LEN];
	unsigned long i;
	int err;

	(void)arg;
	err = weft_mpsc_unbounded(sizeof(struct report), &tx, &rx);
	if (err)
		return NULL;
	for (i = 0; i < opt.nodes && !err; i++) {
		err = weft_mpsc_tx_clone(tx, &nodes[i].report);
		if (!err)
			err = node_start(weft_runtime_current(), (int)i,
					 opt.port ? (uint16_t)(opt.port + i) : 0);
		ports[i] = weft_peer_port(nodes[i].peer);
	}
	for (i = 0; i < opt.nodes && !err; i++)
		err = add_peers((int)i, ports);
	if (!err)
		printf("gossip: %lu nodes on 127.0.0.1 (node 0 on port %u), "
		       "node 0 floods %lu message%s\n", opt.nodes, ports[0],
		       opt.rounds, opt.rounds == 1 ? "" : "s");

	while (!err && !mesh_done(&t))
		err = take_report(rx, &t, deadline);
	for (i = 0; err == -ETIMEDOUT && i < opt.nodes; i++)
		if (t.up[i] != (int)opt.nodes - 1)
			printf("gossip: node %lu is connected to %d of %lu\n",
			       i, t.up[i], opt.nodes - 1);
	if (!err)
		t_mesh = weft_now_ns() - t0;

	/* One message at a time: each latency is the flood's alone. */
	for (t.seq = 1; !err && t.seq <= opt.rounds; t.seq++) {
		memset(t.got, 0, sizeof(t.got));
		flood_msg(m, &nodes[0], t.seq);
		err = weft_peer_broadcast(nodes[0].peer, m, MSG_LEN, NULL);
		err = err < 0 ? err : 0;
		while (err >= 0 && !round_done(&t))
			err = take_report(rx, &t, deadline);
		for (i = 1; err == -ETIMEDOUT && i < opt.nodes; i++)
			if (!t.got[i])
				printf("gossip: node %lu did not get 0:%u\n",
				       i, t.seq);
	}

	for (i = 0; i < opt.nodes; i++) {
		weft_peer_stats st = { .size = sizeof(st) };

		weft_peer_shutdown(nodes[i].peer);
		if (!weft_peer_stats_get(nodes[i].peer, &st))
			received += st.received;
	}
	for (i = 0; i < opt.nodes; i++)
		node_stop((int)i);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	if (err == -ETIMEDOUT)
		printf("gossip: timed out after %lu ms\n", opt.timeout_ms);
	else if (err < 0)
		printf("gossip: %s\n", weft_strerror(err));
	printf("gossip: mesh formed in %.1f ms; delivered %lu of %lu; "
	       "latency max %llu us, mean %llu us; %llu frames received "
	       "in all\n", (double)t_mesh / 1e6, t.delivered,
	       opt.rounds * (opt.nodes - 1),
	       (unsigned long long)(t.lat_max / 1000),
	       (unsigned long long)(t.delivered ? t.lat_sum / t.delivered /
						  1000 : 0),
	       (unsigned long long)received);
	return (void *)(uintptr_t)(t.delivered ==
				   opt.rounds * (opt.nodes - 1));
}

static int run_all(void)
{
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_join_future jf = { 0 };
	void *ok = NULL;
	int st = -1;

	/* A watchdog: should anything hang (a shutdown that never returns,
	 * an event stream that never ends), SIGALRM kills the program
	 * rather than stall make check. */
	alarm((unsigned)(opt.timeout_ms / 1000) + 10);
	weft_runtime_config_init(&cfg);
	if (weft_runtime_new(&cfg, &rt))
		return 1;
	jf.value = &ok;
	if (weft_go(rt, flood, NULL, NULL, &jf.join) == 0 &&
	    weft_block_on(rt, &weft_join_future_desc, &jf, &st) < 0)
		st = -1;
	weft_runtime_free(rt);
	printf("gossip: %s\n", st == 0 && ok ? "ok" : "FAILED");
	return st == 0 && ok ? 0 : 1;
}

/* ------------------------------------------------ one node, its own process */

/* --send: flood a message every second until aborted. */
static void *sender(void *arg)
{
	struct node *n = arg;
	uint8_t m[MSG_LEN];
	uint32_t seq = 0;
	int sent;

	while (weft_co_sleep(1000 * MS) == 0) {
		flood_msg(m, n, ++seq);
		sent = weft_peer_broadcast(n->peer, m, MSG_LEN, NULL);
		printf("sent %d:%u to %d peers\n", n->index, seq, sent);
	}
	return NULL;
}

static int run_one(void)
{
	struct node *n = &nodes[opt.node];
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_join *send = NULL;
	weft_join_future jf = { 0 };
	weft_peer_stats st = { .size = sizeof(st) };
	uint16_t ports[MAX_NODES];
	sigset_t sigs;
	int sig, err;

	/* Before the runtime: its workers inherit the mask, and only
	 * sigwait below takes SIGINT and SIGTERM. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	weft_runtime_config_init(&cfg);
	cfg.workers = 2;
	if (weft_runtime_new(&cfg, &rt))
		return 1;
	for (unsigned long j = 0; j < opt.nodes; j++)
		ports[j] = (uint16_t)(opt.port + j);
	err = node_start(rt, (int)opt.node, ports[opt.node]);
	if (!err)
		err = add_peers((int)opt.node, ports);
	if (!err && opt.send)
		err = weft_go(rt, sender, n, NULL, &send);
	if (err) {
		fprintf(stderr, "gossip: node %ld: %s\n", opt.node,
			weft_strerror(err));
		goto out;
	}
	printf("gossip: node %ld listening on 127.0.0.1:%u\n", opt.node,
	       weft_peer_port(n->peer));

	while (sigwait(&sigs, &sig) == EINTR)
		;
	printf("gossip: node %ld: %s\n", opt.node,
	       sig == SIGINT ? "SIGINT" : "SIGTERM");
out:
	if (send) {
		weft_task_abort(send);
		jf.join = send; /* the future drops it */
		if (weft_block_on(rt, &weft_join_future_desc, &jf, NULL))
			err = err ? err : -ECANCELED;
	}
	/*
	 * From this plain thread the shutdown blocks until the node's tasks
	 * are done; the event fiber then takes the events left and ends
	 * with -EPIPE. Only then may the node be freed: the fiber uses it.
	 */
	weft_peer_shutdown(n->peer);
	if (n->events) {
		jf.join = n->events;
		if (weft_block_on(rt, &weft_join_future_desc, &jf, NULL))
			err = err ? err : -ECANCELED;
	}
	if (!weft_peer_stats_get(n->peer, &st))
		printf("gossip: node %ld: received %llu, sent %llu, "
		       "%llu duplicates, %llu forwards short\n", opt.node,
		       (unsigned long long)st.received,
		       (unsigned long long)st.sent,
		       (unsigned long long)n->duplicates,
		       (unsigned long long)n->forward_failed);
	weft_peer_node_free(n->peer);
	free(n->seen.keys);
	weft_runtime_free(rt);
	return err ? 1 : 0;
}

/* -------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gossip [--nodes N] [--rounds R] [--port BASE] "
		"[--timeout-ms MS]\n"
		"              [--reconnect-ms MS]\n"
		"       gossip --node I --port BASE [--nodes N] [--send] "
		"[--passive]\n"
		"              [--reconnect-ms MS]\n"
		"\n"
		"  --nodes N         nodes in the mesh, 2..%d (default 5)\n"
		"  --rounds R        messages node 0 floods (default 1)\n"
		"  --port BASE       node i listens on BASE+i (default: "
		"ports the kernel picks)\n"
		"  --timeout-ms MS   fail unless every node got every "
		"message by then\n"
		"                    (default 10000)\n"
		"  --reconnect-ms MS redial a lost neighbour every MS "
		"(default 1000)\n"
		"  --node I          run node I alone, until SIGINT or "
		"SIGTERM\n"
		"  --send            with --node: flood a message every "
		"second\n"
		"  --passive         with --node: dial nobody, only accept\n",
		MAX_NODES);
}

static unsigned long number(const char *name, const char *s,
			    unsigned long min, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v < min || v > max) {
		fprintf(stderr, "gossip: %s wants a number in %lu..%lu\n",
			name, min, max);
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "nodes", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "port", required_argument, NULL, 'p' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "reconnect-ms", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'i' },
		{ "send", no_argument, NULL, 's' },
		{ "passive", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			opt.nodes = number("--nodes", optarg, 2, MAX_NODES);
			break;
		case 'r':
			opt.rounds = number("--rounds", optarg, 1, 1000000);
			break;
		case 'p':
			opt.port = number("--port", optarg, 1, 65535);
			break;
		case 't':
			opt.timeout_ms = number("--timeout-ms", optarg, 1,
						86400000);
			break;
		case 'c':
			opt.reconnect_ms = number("--reconnect-ms", optarg, 1,
						  86400000);
			break;
		case 'i':
			opt.node = (long)number("--node", optarg, 0,
						MAX_NODES - 1);
			break;
		case 's':
			opt.send = true;
			break;
		case 'a':
			opt.passive = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc || (opt.node >= 0 && (!opt.port ||
	    (unsigned long)opt.node >= opt.nodes)) ||
	    (opt.node < 0 && (opt.send || opt.passive)) ||
	    opt.port + opt.nodes - 1 > 65535) {
		usage(stderr);
		return 1;
	}
	/* Lines, not blocks: a script reads them while the node runs. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	return opt.node >= 0 ? run_one() : run_all();
}
