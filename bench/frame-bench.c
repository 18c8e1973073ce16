/* SPDX-License-Identifier: MIT */
/*
 * frame-bench: a closed-loop load generator for length-delimited echo
 * servers (examples/frame-echo, tokio-frame-echo-server, any server that
 * sends each frame back as a frame).
 *
 * Frames are tokio-util's LengthDelimitedCodec defaults: a 4-byte
 * big-endian length, then that many bytes of payload. Like
 * bench/echo-client (whose threads, connections, options, histogram and
 * table it shares: bench/loadgen.h) it does not use weft, so that it
 * measures the server.
 *
 * Each connection keeps --window W frames of --size S bytes outstanding:
 * it sends W frames, then one more each time an echo comes back. The
 * payload of frame number seq on connection id is derived from (id, seq)
 * (as echo-client's messages), and every byte that comes back is checked:
 * the length field must be S, the payload that of the oldest frame not yet
 * echoed. A wrong byte, data with no frame outstanding, an EOF or a socket
 * error is an error and retires the connection. The latency of a frame is
 * from when it is queued for sending (the send follows at once unless the
 * socket is full) to the last byte of its echo; frames whose echo
 * completes after the deadline are not counted.
 *
 * Output: a table, then one line for scripts:
 *   frame: connections=C size=S window=W secs=D msgs_per_sec=F p50_us=F
 *          p99_us=F errors=N
 * (one line). Exit status 1 if there were errors or no frame came back.
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

#define HDR 4                /* length field: 4 bytes, big-endian */
#define RECV_BUF (64u << 10) /* one recv at most */
#define OUT_BUF (64u << 10)  /* frames queued at once, if more fit */

static struct lg_opts opt = LG_OPTS_INIT("frame-bench");
static unsigned window = 1;
static size_t frame_size; /* HDR + opt.size */
static size_t out_cap;    /* bytes of frames one connection queues */

struct conn {
	struct lg_conn base;
	uint32_t send_seq;   /* the next frame to queue */
	uint32_t recv_seq;   /* the frame whose echo comes next */
	unsigned char *out;  /* queued frames: [out_off, out_len) unsent */
	size_t out_len;
	size_t out_off;
	size_t in_off;       /* bytes of frame recv_seq's echo checked */
	unsigned char hdr[HDR];
	uint64_t *queued_ns; /* [seq % window]: when frame seq was queued */
};

/*
 * Queue frames while fewer than @window are outstanding and they fit,
 * stamped with the time.
 */
static void conn_fill(struct conn *c)
{
	uint64_t now = 0;

	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	while (c->send_seq - c->recv_seq < window &&
	       c->out_len + frame_size <= out_cap) {
		unsigned char *f = c->out + c->out_len;
		uint32_t len = (uint32_t)opt.size;

		if (now == 0)
			now = bench_now_ns();
		f[0] = (unsigned char)(len >> 24);
		f[1] = (unsigned char)(len >> 16);
		f[2] = (unsigned char)(len >> 8);
		f[3] = (unsigned char)len;
		lg_fill_pattern(f + HDR, opt.size, c->base.id, c->send_seq);
		c->queued_ns[c->send_seq % window] = now;
		c->send_seq++;
		c->out_len += frame_size;
	}
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/*
 * Check @n received bytes at @p against the echoes expected next. Returns
 * false if @c was retired: an error, or an echo completed too late.
 */
static bool conn_check(struct lg_worker *w, struct conn *c,
		       const unsigned char *p, size_t n)
{
	struct lg_conn *lc = &c->base;

	while (n > 0) {
		size_t take;

		if (c->in_off == 0 && c->recv_seq == c->send_seq) {
			lg_conn_fail(w, lc, "data with no frame outstanding",
				     0);
			return false;
		}
		if (c->in_off < HDR) {
			take = HDR - c->in_off;
			if (take > n)
				take = n;
			memcpy(c->hdr + c->in_off, p, take);
			if (c->in_off + take == HDR &&
			    be32(c->hdr) != opt.size) {
				lg_conn_fail(w, lc, "echoed length field "
					     "differs from the frame's", 0);
				return false;
			}
		} else {
			take = frame_size - c->in_off;
			if (take > n)
				take = n;
			if (!lg_check_pattern(p, take, lc->id, c->recv_seq,
					      c->in_off - HDR)) {
				lg_conn_fail(w, lc, "echoed frame differs "
					     "from the frame sent", 0);
				return false;
			}
		}
		c->in_off += take;
		p += take;
		n -= take;
		w->bytes_verified += take;
		if (c->in_off == frame_size) {
			uint64_t now = bench_now_ns(), queued;

			if (now > w->b->deadline_ns) {
				/* Too late to count; stop here. */
				lg_conn_retire(w, lc);
				return false;
			}
			queued = c->queued_ns[c->recv_seq % window];
			lg_hist_record(w->hist, now - queued);
			w->ops++;
			c->recv_seq++;
			c->in_off = 0;
		}
	}
	return true;
}

/*
 * Move @c on until the socket would block both ways (edge-triggered epoll
 * reports only changes). Receiving goes on while frames are unsent: a
 * window larger than the socket buffers would otherwise deadlock against
 * a server that echoes as it reads.
 */
static void conn_progress(struct lg_worker *w, struct lg_conn *lc)
{
	struct conn *c = (struct conn *)lc;
	ssize_t n;

	while (lc->fd >= 0) {
		bool moved = false;

		conn_fill(c);
		if (c->out_off < c->out_len) {
			n = lg_send(w, lc, c->out + c->out_off,
				    c->out_len - c->out_off);
			if (n < 0)
				return;
			c->out_off += (size_t)n;
			moved = n > 0;
		}

		n = lg_recv(w, lc, w->scratch, RECV_BUF, "EOF from the server");
		if (n < 0)
			return;
		if (n > 0) {
			if (!conn_check(w, c, w->scratch, (size_t)n))
				return;
			moved = true;
		}
		if (!moved)
			return;
	}
}

/* ------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: frame-bench --port N [--host ADDR] [--connections C]\n"
		"                   [--size S] [--duration D] [--threads T]\n"
		"                   [--window W]\n"
		"\n"
		"Closed-loop load on a length-delimited echo server (4-byte\n"
		"big-endian length, then S bytes): each connection keeps W\n"
		"frames outstanding, checks every byte echoed, for D s.\n"
		"\n"
		LG_USAGE_OPTS
		"  --window W        frames outstanding per connection\n"
		"                    (default 1)\n"
		"  --help            this text\n");
}

static void window_opt(int c, const char *arg)
{
	(void)c; /* 'w', the only one */
	window = (unsigned)lg_parse_ulong(&opt, "--window", arg, 1, 65536);
}

static void conn_free(struct lg_conn *lc)
{
	struct conn *c = (struct conn *)lc;

	free(c->out);
	free(c->queued_ns);
}

int main(int argc, char **argv)
{
	struct lg_bench b;
	struct lg_result r;

	static const struct option window_long[] = {
		{ "window", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};

	lg_parse_args(&opt, argc, argv, window_long, "w:", window_opt, usage);
	frame_size = HDR + opt.size;
	/* All W frames at once if they fit in OUT_BUF, else what fits (at
	 * least one). */
	out_cap = frame_size * window;
	if (out_cap > OUT_BUF)
		out_cap = frame_size > OUT_BUF ? frame_size :
			  OUT_BUF / frame_size * frame_size;

	lg_init(&b, &opt, sizeof(struct conn), RECV_BUF, NULL, conn_progress);
	for (unsigned i = 0; i < opt.connections; i++) {
		struct conn *c = (struct conn *)lg_conn_at(&b, i);

		c->out = lg_xcalloc(&opt, 1, out_cap);
		c->queued_ns = lg_xcalloc(&opt, window, sizeof(uint64_t));
	}
	lg_run(&b);

	r = lg_report(&b, "messages", "window", window);
	printf("frame: connections=%u size=%zu window=%u secs=%g "
	       "msgs_per_sec=%.1f p50_us=%.1f p99_us=%.1f errors=%llu\n",
	       opt.connections, opt.size, window, opt.duration, r.rate,
	       r.p50_us, r.p99_us, (unsigned long long)b.errors);
	return lg_finish(&b, "no frame came back", conn_free);
}
