/* SPDX-License-Identifier: MIT */
/*
 * chat-client: a load generator and checker for line-based chat servers
 * (examples/chat-server.c): every line a client sends is delivered to every
 * other client, prefixed with "<sender>: ".
 *
 * Like bench/echo-client it does not use weft: one thread, epoll, and
 * nonblocking sockets. --clients C connect and each sends --messages M
 * lines, one every --interval-us, of the form "c<id> <seq> <send-ns>";
 * --slow K more clients connect, send nothing and never read, so their
 * socket buffers fill up: a chat room must not let them slow the others.
 * --lagging L more clients, with tiny receive windows, read nothing until
 * the sending is over and then everything they can: they must have been
 * told of every line they did not get.
 *
 * Checks, for every reading client and every sender: sequence numbers
 * arrive in increasing order, none twice, and a gap is allowed only if the
 * server said so with a line "*** skipped N messages" (then the gaps must
 * add up to at most the skips announced). When the sending is done it
 * waits up to --settle-ms for the last lines.
 *
 * Output: a line for scripts:
 *   chat: clients=C slow=K messages=M delivered=D expected=E skipped=S
 *         lines_per_sec=F p50_us=F p99_us=F lagging=L lag_delivered=N
 *         lag_skipped=N errors=N
 * Exit status 1 on any error (order, duplicate, unannounced loss, a socket
 * error), or if the reading clients got less than --min-delivered percent
 * (default 100) of what was sent to them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 512
#define IN_BUF (64 * 1024)

static struct {
	const char *host, *port;
	unsigned clients, slow, lagging, messages, interval_us, settle_ms;
	double min_delivered;
} opt = {
	.host = "127.0.0.1",
	.port = "7001",
	.clients = 10,
	.slow = 0,
	.lagging = 0,
	.messages = 1000,
	.interval_us = 1000,
	.settle_ms = 3000,
	.min_delivered = 100.0,
};

struct client {
	int fd;
	unsigned id;
	bool slow, lagging;
	unsigned sent;       /* lines sent */
	char out[LINE_MAX_LEN];
	size_t out_len, out_off; /* a line being sent */
	char in[IN_BUF];
	size_t in_len;
	uint32_t *next_seq;  /* per sender: the next seq expected */
	uint64_t delivered, gaps, skipped;
};

static struct client *clients;
static unsigned nclients;
static uint64_t *lat;
static size_t nlat, cap_lat;
static unsigned long errors;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void __attribute__((format(printf, 2, 3)))
error(unsigned id, const char *fmt, ...)
{
	va_list ap;

	if (++errors > 10)
		return;
	fprintf(stderr, "chat-client: client %u: ", id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		perror("chat-client: fcntl");
		return -1;
	}
	return 0;
}

/* A blocking connected socket; @rcvbuf > 0 sets SO_RCVBUF first (it only
 * shapes the window when set before the connect). */
static int connect_one(const struct addrinfo *ai, int rcvbuf)
{
	uint64_t give_up = now_ns() + 2000000000ull;

	for (;;) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				ai->ai_protocol);

		if (fd < 0)
			return -1;
		if (rcvbuf > 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				   sizeof(rcvbuf));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return fd;
		close(fd);
		if (errno != ECONNREFUSED || now_ns() > give_up)
			return -1;
		usleep(20000);
	}
}

static void record_latency(uint64_t ns)
{
	if (nlat == cap_lat) {
		cap_lat = cap_lat ? 2 * cap_lat : 65536;
		lat = realloc(lat, cap_lat * sizeof(*lat));
		if (!lat) {
			perror("chat-client: realloc");
			exit(1);
		}
	}
	lat[nlat++] = ns;
}

/* One line received by @c (without its '\n'). */
static void on_line(struct client *c, char *line)
{
	unsigned long n, from, seq, t;
	char *body;

	if (sscanf(line, "*** skipped %lu", &n) == 1) {
		c->skipped += n;
		return;
	}
	body = strstr(line, ": ");
	if (!body || sscanf(body + 2, "c%lu %lu %lu", &from, &seq, &t) != 3 ||
	    from >= nclients) {
		error(c->id, "unexpected line (%zu bytes)", strlen(line));
		return;
	}
	if (from == c->id) {
		error(c->id, "got its own line back (seq %lu)", seq);
		return;
	}
	if (seq < c->next_seq[from]) {
		error(c->id, "from %lu: seq %lu again or out of order", from,
		      seq);
		return;
	}
	c->gaps += seq - c->next_seq[from];
	c->next_seq[from] = (uint32_t)seq + 1;
	c->delivered++;
	if (!c->lagging)
		record_latency(now_ns() - t);
}

static void on_readable(struct client *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len,
				 sizeof(c->in) - c->in_len, 0);
		char *start, *nl;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			error(c->id, "connection lost (%s)",
			      n < 0 ? strerror(errno) : "EOF");
			close(c->fd);
			c->fd = -1;
			return;
		}
		c->in_len += (size_t)n;
		start = c->in;
		while ((nl = memchr(start, '\n', c->in_len -
						      (size_t)(start - c->in)))) {
			*nl = '\0';
			on_line(c, start);
			start = nl + 1;
		}
		c->in_len -= (size_t)(start - c->in);
		memmove(c->in, start, c->in_len);
		if (c->in_len == sizeof(c->in)) {
			error(c->id, "line too long");
			c->in_len = 0;
		}
	}
}

/* Send what is left of @c's current line; true when all of it went. */
static bool flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off,
				 c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			return false;
		if (n < 0) {
			error(c->id, "send: %s", strerror(errno));
			return false;
		}
		c->out_off += (size_t)n;
	}
	return true;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: chat-client [--host ADDR] [--port N] [--clients C]\n"
		"                   [--slow K] [--lagging L] [--messages M]\n"
		"                   [--interval-us U]\n"
		"                   [--settle-ms S] [--min-delivered PCT]\n");
}

static unsigned long num(const char *name, const char *s, unsigned long lo,
			 unsigned long hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "chat-client: %s wants %lu..%lu\n", name, lo,
			hi);
		exit(1);
	}
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "clients", required_argument, NULL, 'c' },
		{ "slow", required_argument, NULL, 's' },
		{ "lagging", required_argument, NULL, 'l' },
		{ "messages", required_argument, NULL, 'm' },
		{ "interval-us", required_argument, NULL, 'i' },
		{ "settle-ms", required_argument, NULL, 'S' },
		{ "min-delivered", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct epoll_event evs[256];
	uint64_t t0, t_end, next_tick, expected = 0, delivered = 0;
	uint64_t skipped = 0, gaps = 0;
	int c, epfd, err;

	while ((c = getopt_long(argc, argv, "H:p:c:s:l:m:i:S:d:h", opts,
				NULL)) != -1) {
		switch (c) {
		case 'H': opt.host = optarg; break;
		case 'p': opt.port = optarg; break;
		case 'c': opt.clients = num("--clients", optarg, 2, 1000); break;
		case 's': opt.slow = num("--slow", optarg, 0, 1000); break;
		case 'l': opt.lagging = num("--lagging", optarg, 0, 1000); break;
		case 'm': opt.messages = num("--messages", optarg, 1, 10000000); break;
		case 'i': opt.interval_us = num("--interval-us", optarg, 0, 10000000); break;
		case 'S': opt.settle_ms = num("--settle-ms", optarg, 0, 600000); break;
		case 'd': opt.min_delivered = (double)num("--min-delivered", optarg, 0, 100); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if ((err = getaddrinfo(opt.host, opt.port, &hints, &ai))) {
		fprintf(stderr, "chat-client: %s: %s\n", opt.host,
			gai_strerror(err));
		return 1;
	}
	nclients = opt.clients + opt.lagging + opt.slow;
	clients = calloc(nclients, sizeof(*clients));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!clients || epfd < 0) {
		perror("chat-client");
		return 1;
	}
	for (unsigned i = 0; i < nclients; i++) {
		struct client *cl = &clients[i];
		int one = 1;

		cl->id = i;
		cl->lagging = i >= opt.clients && i < opt.clients + opt.lagging;
		cl->slow = i >= opt.clients + opt.lagging;
		cl->next_seq = calloc(nclients, sizeof(*cl->next_seq));
		/* A slow client's tiny receive window fills at once. */
		cl->fd = connect_one(ai, cl->slow || cl->lagging ? 2048 : 0);
		if (!cl->next_seq || cl->fd < 0) {
			fprintf(stderr, "chat-client: connect %s:%s: %s\n",
				opt.host, opt.port, strerror(errno));
			return 1;
		}
		if (cl->slow)
			continue; /* never read, never send */
		setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one,
			   sizeof(one));
		if (set_nonblock(cl->fd))
			return 1;
		if (cl->lagging)
			continue; /* reads only when the sending is over */
		struct epoll_event ev = { .events = EPOLLIN,
					  .data.u32 = i };
		epoll_ctl(epfd, EPOLL_CTL_ADD, cl->fd, &ev);
	}
	freeaddrinfo(ai);
	usleep(100000); /* let the server register everyone */

	t0 = now_ns();
	next_tick = t0;
	t_end = 0;
	for (;;) {
		uint64_t now = now_ns();
		bool sending = false;
		int timeout_ms, n;

		if (now >= next_tick) { /* every fast client sends a line */
			for (unsigned i = 0; i < opt.clients; i++) {
				struct client *cl = &clients[i];

				if (cl->fd < 0)
					continue;
				if (cl->out_off == cl->out_len &&
				    cl->sent < opt.messages) {
					cl->out_len = (size_t)snprintf(
						cl->out, sizeof(cl->out),
						"c%u %u %lu\n", cl->id,
						cl->sent,
						(unsigned long)now_ns());
					cl->out_off = 0;
					cl->sent++;
				}
				flush(cl);
			}
			next_tick += (uint64_t)opt.interval_us * 1000;
			if (next_tick < now)
				next_tick = now;
		}
		for (unsigned i = 0; i < opt.clients; i++)
			if (clients[i].fd >= 0 &&
			    (clients[i].sent < opt.messages ||
			     clients[i].out_off < clients[i].out_len))
				sending = true;
		if (!sending && !t_end)
			t_end = now_ns();
		if (t_end) {
			uint64_t want = 0, got = 0;

			for (unsigned i = 0; i < opt.clients; i++) {
				got += clients[i].delivered + clients[i].skipped;
				want += (uint64_t)(opt.clients - 1) * opt.messages;
			}
			if (got >= want ||
			    now_ns() > t_end + opt.settle_ms * 1000000ull)
				break;
		}
		timeout_ms = 1;
		n = epoll_wait(epfd, evs, 256, timeout_ms);
		for (int k = 0; k < n; k++)
			on_readable(&clients[evs[k].data.u32]);
	}

	/* The lagging clients read now, until 300 ms pass with nothing. */
	uint64_t lag_delivered = 0, lag_skipped = 0, lag_gaps = 0;
	if (opt.lagging) {
		for (unsigned i = opt.clients; i < opt.clients + opt.lagging;
		     i++) {
			struct epoll_event ev = { .events = EPOLLIN,
						  .data.u32 = i };
			epoll_ctl(epfd, EPOLL_CTL_ADD, clients[i].fd, &ev);
		}
		int n;
		while ((n = epoll_wait(epfd, evs, 256, 300)) > 0)
			for (int k = 0; k < n; k++)
				on_readable(&clients[evs[k].data.u32]);
		for (unsigned i = opt.clients; i < opt.clients + opt.lagging;
		     i++) {
			struct client *cl = &clients[i];

			lag_delivered += cl->delivered;
			lag_skipped += cl->skipped;
			lag_gaps += cl->gaps;
			for (unsigned f = 0; f < opt.clients; f++)
				lag_gaps += opt.messages - cl->next_seq[f];
		}
		if (lag_gaps > lag_skipped) {
			fprintf(stderr, "chat-client: lagging clients lost "
				"%lu lines, only %lu announced\n",
				(unsigned long)lag_gaps,
				(unsigned long)lag_skipped);
			errors++;
		}
	}

	for (unsigned i = 0; i < opt.clients; i++) {
		struct client *cl = &clients[i];

		delivered += cl->delivered;
		skipped += cl->skipped;
		gaps += cl->gaps;
		expected += (uint64_t)(opt.clients - 1) * opt.messages;
		/* lines never seen at the end count as gaps too */
		for (unsigned f = 0; f < opt.clients; f++)
			if (f != i)
				gaps += opt.messages - cl->next_seq[f];
	}
	if (gaps > skipped) {
		fprintf(stderr, "chat-client: %lu lines lost, only %lu "
			"announced as skipped\n", (unsigned long)gaps,
			(unsigned long)skipped);
		errors++;
	}
	double secs = (double)((t_end ? t_end : now_ns()) - t0) / 1e9;
	double pct = expected ? 100.0 * (double)delivered / (double)expected
			      : 0;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	printf("chat: clients=%u slow=%u messages=%u delivered=%lu "
	       "expected=%lu skipped=%lu lines_per_sec=%.0f p50_us=%.1f "
	       "p99_us=%.1f lagging=%u lag_delivered=%lu lag_skipped=%lu "
	       "errors=%lu\n", opt.clients, opt.slow,
	       opt.messages, (unsigned long)delivered,
	       (unsigned long)expected, (unsigned long)skipped,
	       secs > 0 ? (double)delivered / secs : 0,
	       nlat ? (double)lat[nlat / 2] / 1e3 : 0,
	       nlat ? (double)lat[nlat * 99 / 100] / 1e3 : 0, opt.lagging,
	       (unsigned long)lag_delivered, (unsigned long)lag_skipped,
	       errors);
	if (pct < opt.min_delivered) {
		fprintf(stderr, "chat-client: delivered %.2f%% < %.2f%%\n",
			pct, opt.min_delivered);
		return 1;
	}
	return errors ? 1 : 0;
}
