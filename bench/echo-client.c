/* SPDX-License-Identifier: MIT */
/*
 * echo-client: a closed-loop load generator for TCP echo servers.
 *
 * It does not use weft, so that it measures a weft server and not itself:
 * plain pthreads, one epoll instance per thread, nonblocking sockets, and
 * edge-triggered events.
 *
 * Each connection repeats one round trip at a time: send a message of
 * --size bytes whose contents are derived from (connection id, sequence
 * number), read back exactly that many bytes and compare every one of them
 * with what was sent. A mismatch, an EOF or a socket error is an error and
 * retires the connection. The latency of a round trip is from the first
 * send to the last byte received; latencies go into a log-linear histogram
 * (as HdrHistogram: 128 buckets per power of two, < 0.8% error) per thread.
 * The threads, connections, options, histogram and table are
 * bench/loadgen.h's, shared with bench/frame-bench.
 *
 * All connections are made before the timed phase starts (a refused
 * connect is retried for up to 2 s, so a server that was just started is
 * fine). Round trips that complete after the deadline are not counted, so
 * round trips/s is completed round trips over --duration.
 *
 * Output: a table, then one line for scripts:
 *   echo: connections=C size=S secs=D rtt_per_sec=F p50_us=F p99_us=F errors=N
 * Exit status 1 if there were errors or no round trip completed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "loadgen.h"

static struct lg_opts opt = LG_OPTS_INIT("echo-client");

struct conn {
	struct lg_conn base;
	uint32_t seq;
	size_t sent;  /* bytes of the current message sent */
	size_t recvd; /* bytes of the current message received and checked */
	uint64_t start_ns;
	unsigned char *msg; /* the current message: what must come back */
};

static void conn_start_message(struct lg_worker *w, struct lg_conn *lc,
			       uint64_t now)
{
	struct conn *c = (struct conn *)lc;

	(void)w;
	c->seq++;
	lg_fill_pattern(c->msg, opt.size, c->base.id, c->seq);
	c->sent = 0;
	c->recvd = 0;
	c->start_ns = now;
}

/*
 * Move @c on until the socket would block both ways. Edge-triggered epoll
 * reports only changes, so returning earlier could lose the connection.
 * Receiving is tried even while the message is not all sent: a message
 * larger than the socket buffers would otherwise deadlock against a server
 * that echoes as it reads.
 */
static void conn_progress(struct lg_worker *w, struct lg_conn *lc)
{
	struct conn *c = (struct conn *)lc;
	size_t size = opt.size;
	ssize_t n;

	while (lc->fd >= 0) {
		bool moved = false;

		if (c->sent < size) {
			n = lg_send(w, lc, c->msg + c->sent, size - c->sent);
			if (n < 0)
				return;
			c->sent += (size_t)n;
			moved = n > 0;
		}

		n = lg_recv(w, lc, w->scratch, size - c->recvd,
			    "EOF in the middle of a reply");
		if (n < 0)
			return;
		if (n > 0) {
			if (memcmp(w->scratch, c->msg + c->recvd, (size_t)n)) {
				lg_conn_fail(w, lc,
					     "reply differs from message", 0);
				return;
			}
			c->recvd += (size_t)n;
			w->bytes_verified += (size_t)n;
			moved = true;
			if (c->recvd == size) {
				uint64_t now = bench_now_ns();

				if (now > w->b->deadline_ns) {
					/* Too late to count; stop here. */
					lg_conn_retire(w, lc);
					return;
				}
				lg_hist_record(w->hist, now - c->start_ns);
				w->ops++;
				conn_start_message(w, lc, now);
			}
		}
		if (!moved)
			return;
	}
}

/* ------------------------------------------------------------- main */

static void conn_free(struct lg_conn *lc)
{
	free(((struct conn *)lc)->msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: echo-client --port N [--host ADDR] [--connections C]\n"
		"                   [--size S] [--duration D] [--threads T]\n"
		"\n"
		"Closed-loop TCP echo load: each connection sends S bytes,\n"
		"reads them back, checks every byte, and repeats for D s.\n"
		"\n"
		LG_USAGE_OPTS
		"  --help            this text\n");
}

int main(int argc, char **argv)
{
	struct lg_bench b;
	struct lg_result r;

	lg_parse_args(&opt, argc, argv, NULL, NULL, NULL, usage);
	lg_init(&b, &opt, sizeof(struct conn), opt.size, conn_start_message,
		conn_progress);
	for (unsigned i = 0; i < opt.connections; i++) {
		struct conn *c = (struct conn *)lg_conn_at(&b, i);

		c->msg = lg_xcalloc(&opt, 1, opt.size);
	}
	lg_run(&b);

	r = lg_report(&b, "round trips", NULL, 0);
	printf("echo: connections=%u size=%zu secs=%g rtt_per_sec=%.1f "
	       "p50_us=%.1f p99_us=%.1f errors=%llu\n", opt.connections,
	       opt.size, opt.duration, r.rate, r.p50_us, r.p99_us,
	       (unsigned long long)b.errors);
	return lg_finish(&b, "no round trip completed", conn_free);
}
