/* SPDX-License-Identifier: MIT */
/*
 * peer-bench: messages between weft peer nodes (weft/peer.h) in one
 * process on 127.0.0.1; bench/tokio/src/peer_bench.rs runs the same
 * workload on Tokio + tokio-util, and bench/peer-compare.sh sets them side
 * by side.
 *
 *   --mode pair        node A sends --count messages of --size bytes to B
 *   --mode broadcast   A sends each message to --peers receiver nodes
 *   --mode conns       memory: --peers nodes each connect to one hub; the
 *                      resident set before and after, per connection (both
 *                      ends, with their nodes, fibers and buffers)
 *   --workers W        runtime workers (default 2)
 *
 * Each message: bytes 0..7 its sequence number (LE), 8..15 the send time
 * (CLOCK_MONOTONIC ns, LE), then a pattern derived from the sequence
 * number. Receivers check order and every byte, and record the latency
 * (receive time - send time). Senders wait when a send queue is full
 * (weft_co_peer_send / weft_co_peer_multicast).
 *
 * Output: peer: mode=M size=S count=N secs=F msgs_per_sec=F p50_us=F
 * p99_us=F errors=E (secs: first send to last delivery; msgs_per_sec
 * counts deliveries). Exit 1 on any error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

static struct {
	const char *mode;
	size_t size;
	uint64_t count;
	unsigned workers, peers;
} opt = { "pair", 64, 100000, 2, 10 };

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned char pattern(uint64_t seq, size_t i)
{
	return (unsigned char)(seq * 31 + i * 7);
}

struct receiver {
	weft_peer_node *node;
	uint64_t *lat;   /* opt.count latencies, ns */
	uint64_t got;
	uint64_t errors;
	uint64_t last_ns;
	atomic_int done;
};

static void *receive(void *arg)
{
	struct receiver *r = arg;
	weft_peer_event ev;

	while (r->got < opt.count) {
		int e = weft_co_peer_event(r->node, &ev, 0);
		if (e) {
			r->errors++;
			break;
		}
		if (ev.kind != WEFT_PEER_MESSAGE) {
			weft_peer_event_clear(&ev);
			continue;
		}
		uint64_t now = mono_ns(), seq, t;
		const unsigned char *p = ev.data;
		memcpy(&seq, p, 8);
		memcpy(&t, p + 8, 8);
		if (ev.len != opt.size || seq != r->got)
			r->errors++;
		for (size_t i = 16; i < ev.len; i++)
			if (p[i] != pattern(seq, i)) {
				r->errors++;
				break;
			}
		r->lat[r->got++] = now - t;
		r->last_ns = now;
		weft_peer_event_clear(&ev);
	}
	atomic_store(&r->done, 1);
	return NULL;
}

struct sender {
	weft_peer_node *node;
	weft_peer_id *ids;
	unsigned n;
	uint64_t start_ns;
	uint64_t errors;
	atomic_int done;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	unsigned char *buf = malloc(opt.size);

	for (size_t i = 16; i < opt.size; i++)
		buf[i] = 0;
	s->start_ns = mono_ns();
	for (uint64_t seq = 0; seq < opt.count; seq++) {
		for (size_t i = 16; i < opt.size; i++)
			buf[i] = pattern(seq, i);
		uint64_t t = mono_ns();
		memcpy(buf, &seq, 8);
		memcpy(buf + 8, &t, 8);
		int r = s->n == 1 ? weft_co_peer_send(s->node, s->ids[0], buf,
						      opt.size, 0)
				  : weft_co_peer_multicast(s->node, s->ids,
							   s->n, buf, opt.size,
							   NULL, 0);
		if (r < 0 || (s->n > 1 && r != (int)s->n)) {
			s->errors++;
			break;
		}
	}
	free(buf);
	atomic_store(&s->done, 1);
	return NULL;
}

/* Sleep (plain thread) until *@flag is set. */
static void wait_flag(atomic_int *flag)
{
	while (!atomic_load(flag))
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(const char *me)
{
	fprintf(stderr,
		"usage: %s [--mode pair|broadcast|conns] [--size S>=16] "
		"[--count N] [--workers W] [--peers P]\n",
		me);
	exit(2);
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mode", 1, 0, 'm' }, { "size", 1, 0, 's' },
		{ "count", 1, 0, 'n' }, { "workers", 1, 0, 'w' },
		{ "peers", 1, 0, 'p' }, { 0, 0, 0, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "m:s:n:w:p:", lo, NULL)) != -1) {
		switch (c) {
		case 'm': opt.mode = optarg; break;
		case 's': opt.size = strtoull(optarg, NULL, 10); break;
		case 'n': opt.count = strtoull(optarg, NULL, 10); break;
		case 'w': opt.workers = (unsigned)atoi(optarg); break;
		case 'p': opt.peers = (unsigned)atoi(optarg); break;
		default: usage(argv[0]);
		}
	}
	if (strcmp(opt.mode, "pair") && strcmp(opt.mode, "broadcast") &&
	    strcmp(opt.mode, "conns"))
		usage(argv[0]);
	if (!strcmp(opt.mode, "pair"))
		opt.peers = 1;
	if (opt.size < 16 || !opt.count || !opt.workers || !opt.peers ||
	    opt.peers > 5000)
		usage(argv[0]);
}

/* Wait (plain thread) until @n has @want connections. */
static int wait_connected(weft_peer_node *n, uint64_t want)
{
	weft_peer_stats st = { .size = sizeof(st) };

	for (int i = 0; i < 5000; i++) {
		weft_peer_stats_get(n, &st);
		if (st.connected >= want)
			return 0;
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	return -ETIMEDOUT;
}

/* Resident set of this process, KiB (VmRSS), or 0. */
static long rss_kib(void)
{
	char line[256];
	long v = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/* --mode conns: what a connection costs in memory. */
static int conns(weft_runtime *rt, const weft_peer_config *pc)
{
	weft_peer_node *hub, **leaves = calloc(opt.peers, sizeof(*leaves));
	char url[64];
	long before, after;

	if (!leaves || weft_peer_node_new(rt, pc, &hub))
		return 1;
	wait_connected(hub, 0);
	before = rss_kib();
	for (unsigned i = 0; i < opt.peers; i++) {
		weft_peer_id id;
		if (weft_peer_node_new(rt, pc, &leaves[i]))
			return 1;
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%u",
			 weft_peer_port(leaves[i]));
		weft_peer_add(hub, url, NULL);
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%u",
			 weft_peer_port(hub));
		weft_peer_add(leaves[i], url, &id);
		weft_peer_connect(leaves[i], id);
	}
	if (wait_connected(hub, opt.peers)) {
		fprintf(stderr, "peer-bench: leaves did not connect\n");
		return 1;
	}
	/* one message each way, so every reader and writer has run */
	weft_peer_broadcast(hub, "x", 1, NULL);
	nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
	after = rss_kib();
	printf("peer: mode=conns peers=%u rss_before_kib=%ld "
	       "rss_after_kib=%ld bytes_per_connection=%.0f "
	       "(both ends and a node each side)\n",
	       opt.peers, before, after,
	       (double)(after - before) * 1024 / opt.peers);
	for (unsigned i = 0; i < opt.peers; i++)
		weft_peer_node_free(leaves[i]);
	weft_peer_node_free(hub);
	free(leaves);
	return 0;
}

int main(int argc, char **argv)
{
	weft_runtime_config rc;
	weft_runtime *rt;
	weft_peer_config pc;
	weft_peer_node *a;
	struct receiver *rs;
	struct sender s = { 0 };
	uint64_t errors = 0, total = 0, last = 0;
	char url[64];
	int err;

	parse(argc, argv);
	weft_runtime_config_init(&rc);
	rc.workers = opt.workers;
	if (getenv("PEER_STREAM_BUF_MAX"))
		rc.stream_buf_max = (unsigned)atoi(getenv("PEER_STREAM_BUF_MAX"));
	if ((err = weft_runtime_new(&rc, &rt))) {
		fprintf(stderr, "runtime: %s\n", strerror(-err));
		return 1;
	}
	weft_peer_config_init(&pc);
	pc.events_off = WEFT_PEER_EV(WEFT_PEER_SENT);
	if (getenv("PEER_STACK"))
		pc.stack_size = strtoul(getenv("PEER_STACK"), NULL, 10);
	if (!strcmp(opt.mode, "conns")) {
		int r = conns(rt, &pc);
		weft_runtime_free(rt);
		return r;
	}
	if ((err = weft_peer_node_new(rt, &pc, &a))) {
		fprintf(stderr, "node: %s\n", strerror(-err));
		return 1;
	}
	rs = calloc(opt.peers, sizeof(*rs));
	s.ids = calloc(opt.peers, sizeof(*s.ids));
	s.node = a;
	s.n = opt.peers;
	for (unsigned i = 0; i < opt.peers; i++) {
		weft_peer_id back;
		rs[i].lat = malloc(opt.count * sizeof(uint64_t));
		if (!rs[i].lat || weft_peer_node_new(rt, &pc, &rs[i].node)) {
			fprintf(stderr, "receiver %u: out of memory\n", i);
			return 1;
		}
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%u",
			 weft_peer_port(rs[i].node));
		weft_peer_add(a, url, &s.ids[i]);
		snprintf(url, sizeof(url), "tcp://127.0.0.1:%u",
			 weft_peer_port(a));
		weft_peer_add(rs[i].node, url, &back);
		weft_peer_connect(a, s.ids[i]);
	}
	if (wait_connected(a, opt.peers)) {
		fprintf(stderr, "peer-bench: nodes did not connect\n");
		return 1;
	}
	for (unsigned i = 0; i < opt.peers; i++)
		if (weft_go(rt, receive, &rs[i], NULL, NULL))
			return 1;
	if (weft_go(rt, send_all, &s, NULL, NULL))
		return 1;
	wait_flag(&s.done);
	for (unsigned i = 0; i < opt.peers; i++)
		wait_flag(&rs[i].done);
	errors = s.errors;
	uint64_t *all = malloc(opt.peers * opt.count * sizeof(uint64_t));
	for (unsigned i = 0; i < opt.peers; i++) {
		errors += rs[i].errors;
		memcpy(all + total, rs[i].lat, rs[i].got * sizeof(uint64_t));
		total += rs[i].got;
		if (rs[i].last_ns > last)
			last = rs[i].last_ns;
	}
	qsort(all, total, sizeof(uint64_t), cmp_u64);
	double secs = (double)(last - s.start_ns) / 1e9;
	double p50 = total ? all[total / 2] / 1e3 : 0;
	double p99 = total ? all[total * 99 / 100] / 1e3 : 0;
	if (total != opt.count * opt.peers)
		errors++;
	printf("peer: mode=%s size=%zu count=%llu secs=%.3f "
	       "msgs_per_sec=%.0f p50_us=%.1f p99_us=%.1f errors=%llu\n",
	       opt.mode, opt.size, (unsigned long long)opt.count, secs,
	       secs > 0 ? (double)total / secs : 0.0, p50, p99,
	       (unsigned long long)errors);
	weft_peer_node_free(a);
	for (unsigned i = 0; i < opt.peers; i++) {
		weft_peer_node_free(rs[i].node);
		free(rs[i].lat);
	}
	free(all);
	free(rs);
	free(s.ids);
	weft_runtime_free(rt);
	return errors != 0;
}
