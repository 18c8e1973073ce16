/* SPDX-License-Identifier: MIT */
/*
 * loadgen.h: the closed-loop TCP load generator shared by bench/echo-client
 * (raw echo) and bench/frame-bench (length-delimited frames).
 *
 * Neither uses weft, so that they measure a weft server and not
 * themselves: plain pthreads, one epoll instance per thread, nonblocking
 * sockets and edge-triggered events. What is here is what both need:
 *
 *  - the common options (--host --port --connections --size --duration
 *    --threads) and their parsing;
 *  - a log-linear latency histogram (as HdrHistogram: 128 buckets per
 *    power of two, < 0.8% error), one per thread, merged at the end;
 *  - the message contents, derived from (connection id, sequence number):
 *    filled into a buffer, or checked against received bytes at any offset;
 *  - connect with retry: all connections are made before the timed phase
 *    starts (a refused connect is retried for up to 2 s, so a server that
 *    was just started is fine);
 *  - the threads: each connects its share of the connections, waits at a
 *    barrier until all are connected and main has set the deadline, then
 *    runs its epoll loop until the deadline or until none of its
 *    connections is left; the program supplies what a connection does
 *    (start and progress callbacks);
 *  - the report: a table of totals (the program adds its own lines).
 *
 * Work completed after the deadline is not counted (the progress callback
 * retires a connection whose operation completes late), so the rate is
 * completed operations over --duration.
 *
 * Header-only: everything is static, as in bench_util.h.
 */
#ifndef WEFT_BENCH_LOADGEN_H
#define WEFT_BENCH_LOADGEN_H

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"

#define LG_CONNECT_RETRY_NS (2ull * 1000000000u) /* keep retrying refusals */
#define LG_CONNECT_TIMEOUT_MS 5000               /* one connect attempt */
#define LG_MAX_ERROR_REPORTS 10                  /* on stderr */
#define LG_MAX_EVENTS 256

/* ---------------------------------------------------------- options */

struct lg_opts {
	const char *prog; /* the program's name, for messages */
	const char *host;
	const char *port;
	unsigned connections;
	size_t size;
	double duration;
	unsigned threads;
};

#define LG_OPTS_INIT(name)                                                  \
	{                                                                   \
		.prog = (name), .host = "127.0.0.1", .connections = 50,     \
		.size = 64, .duration = 5.0, .threads = 2,                  \
	}

/* getopt_long entries and short letters of the common options (--help
 * included). */
#define LG_LONG_OPTS                                                        \
	{ "host", required_argument, NULL, 'H' },                           \
	{ "port", required_argument, NULL, 'p' },                           \
	{ "connections", required_argument, NULL, 'c' },                    \
	{ "size", required_argument, NULL, 's' },                           \
	{ "duration", required_argument, NULL, 'd' },                       \
	{ "threads", required_argument, NULL, 't' },                        \
	{ "help", no_argument, NULL, 'h' }
#define LG_SHORT_OPTS "H:p:c:s:d:t:h"

/* The usage lines of the common options (--help is the program's). */
#define LG_USAGE_OPTS                                                       \
	"  --host ADDR       server address (default 127.0.0.1)\n"          \
	"  --port N          server port (required)\n"                      \
	"  --connections C   concurrent connections (default 50)\n"         \
	"  --size S          message size in bytes (default 64)\n"          \
	"  --duration D      seconds of load, after connecting\n"           \
	"                    (default 5)\n"                                 \
	"  --threads T       client threads (default 2)\n"

/* @s as a number in [@lo, @hi], or exit(1) saying what @name wants. */
static inline unsigned long lg_parse_ulong(const struct lg_opts *o,
					   const char *name, const char *s,
					   unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v < lo || v > hi) {
		fprintf(stderr, "%s: %s wants a number in %lu..%lu\n",
			o->prog, name, lo, hi);
		exit(1);
	}
	return v;
}

/*
 * Option @c of getopt_long with argument @arg: if it is a common one, store
 * it in @o (exit(1) on a bad value) and return true.
 */
static inline bool lg_parse_opt(struct lg_opts *o, int c, const char *arg)
{
	char *end;

	switch (c) {
	case 'H':
		o->host = arg;
		return true;
	case 'p':
		lg_parse_ulong(o, "--port", arg, 1, 65535);
		o->port = arg;
		return true;
	case 'c':
		o->connections = (unsigned)lg_parse_ulong(o, "--connections",
							  arg, 1, 1000000);
		return true;
	case 's':
		o->size = lg_parse_ulong(o, "--size", arg, 1, 64 << 20);
		return true;
	case 'd':
		o->duration = strtod(arg, &end);
		if (*arg == '\0' || *end != '\0' ||
		    !(o->duration > 0 && o->duration <= 86400)) {
			fprintf(stderr, "%s: --duration wants seconds in "
				"(0, 86400]\n", o->prog);
			exit(1);
		}
		return true;
	case 't':
		o->threads = (unsigned)lg_parse_ulong(o, "--threads", arg, 1,
						      1024);
		return true;
	}
	return false;
}

#define LG_MAX_EXTRA_OPTS 8

/*
 * Parse the command line into @o: the common options, and the program's
 * @extra long options (up to LG_MAX_EXTRA_OPTS, ended by a zeroed entry;
 * NULL for none) whose short letters @extra_short lists in getopt's
 * syntax; @extra_opt is called with each of those and stores it (exit(1)
 * on a bad value). --help prints @usage on stdout and exits 0; an unknown
 * option, an operand or no --port prints it on stderr and exits 1. At most
 * one thread per connection.
 */
static inline void lg_parse_args(struct lg_opts *o, int argc, char **argv,
				 const struct option *extra,
				 const char *extra_short,
				 void (*extra_opt)(int c, const char *arg),
				 void (*usage)(FILE *))
{
	static const struct option common[] = { LG_LONG_OPTS };
	struct option opts[sizeof(common) / sizeof(common[0]) +
			   LG_MAX_EXTRA_OPTS + 1];
	char short_opts[64];
	size_t n = 0;
	int c;

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		opts[n++] = common[i];
	for (size_t i = 0; extra && extra[i].name; i++) {
		if (i == LG_MAX_EXTRA_OPTS)
			abort(); /* the program's bug */
		opts[n++] = extra[i];
	}
	memset(&opts[n], 0, sizeof(opts[n]));
	snprintf(short_opts, sizeof(short_opts), "%s%s", LG_SHORT_OPTS,
		 extra_short ? extra_short : "");

	while ((c = getopt_long(argc, argv, short_opts, opts, NULL)) != -1) {
		if (lg_parse_opt(o, c, optarg))
			continue;
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == '?' || !extra_opt) {
			usage(stderr);
			exit(1);
		}
		extra_opt(c, optarg);
	}
	if (optind < argc || !o->port) {
		if (!o->port)
			fprintf(stderr, "%s: --port is required\n", o->prog);
		usage(stderr);
		exit(1);
	}
	if (o->threads > o->connections)
		o->threads = o->connections;
}

/* -------------------------------------------------------- histogram */

/*
 * Values below 2 * LG_HIST_SUB ns are counted exactly; above, each power
 * of two [2^m, 2^(m+1)) is cut into LG_HIST_SUB equal buckets.
 */
#define LG_HIST_SUB_BITS 7
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
#define LG_HIST_BUCKETS                                                     \
	(2 * LG_HIST_SUB + (63 - LG_HIST_SUB_BITS) * LG_HIST_SUB)

struct lg_hist {
	uint64_t count[LG_HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

static inline unsigned lg_hist_index(uint64_t v)
{
	unsigned m, shift;

	if (v < 2 * LG_HIST_SUB)
		return (unsigned)v;
	m = 63 - (unsigned)__builtin_clzll(v); /* >= LG_HIST_SUB_BITS + 1 */
	shift = m - LG_HIST_SUB_BITS;          /* v >> shift in [SUB, 2 SUB) */
	return 2 * LG_HIST_SUB + (m - LG_HIST_SUB_BITS - 1) * LG_HIST_SUB +
	       (unsigned)((v >> shift) - LG_HIST_SUB);
}

/* The middle of bucket @idx. */
static inline uint64_t lg_hist_value(unsigned idx)
{
	unsigned k, shift;
	uint64_t lo;

	if (idx < 2 * LG_HIST_SUB)
		return idx;
	k = idx - 2 * LG_HIST_SUB;
	shift = k / LG_HIST_SUB + 1;
	lo = (uint64_t)(LG_HIST_SUB + k % LG_HIST_SUB) << shift;
	return lo + ((1ull << shift) >> 1);
}

static inline void lg_hist_record(struct lg_hist *h, uint64_t v)
{
	h->count[lg_hist_index(v)]++;
	h->total++;
	if (v > h->max)
		h->max = v;
}

static inline void lg_hist_merge(struct lg_hist *to,
				 const struct lg_hist *from)
{
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		to->count[i] += from->count[i];
	to->total += from->total;
	if (from->max > to->max)
		to->max = from->max;
}

/* The value at quantile @q (0 < q <= 1), in ns; 0 for an empty histogram. */
static inline uint64_t lg_hist_quantile(const struct lg_hist *h,
					double q)
{
	uint64_t rank, seen = 0;

	if (h->total == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t v = lg_hist_value(i);

			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* --------------------------------------------------------- contents */

/*
 * The message for (id, seq) is the little-endian bytes of the words
 * splitmix64 (Steele, Lea, Flood; OOPSLA 2014) draws from the seed
 * id << 32 | seq: a byte stream no other pair produces. Word k is
 * mix(seed + (k + 1) * golden), so any offset can be checked without
 * generating what comes before it.
 */
static inline uint64_t lg_pattern_word(uint32_t id, uint32_t seq,
				       uint64_t k)
{
	uint64_t z = ((uint64_t)id << 32 | seq) +
		     (k + 1) * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Bytes [0, @n) of the message for (@id, @seq), into @p. */
static inline void lg_fill_pattern(unsigned char *p, size_t n, uint32_t id,
				   uint32_t seq)
{
	uint64_t x = 0;

	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = lg_pattern_word(id, seq, i >> 3);
		p[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
}

/*
 * Whether @p[0..@n) are bytes [@off, @off + @n) of the message for
 * (@id, @seq).
 */
static inline bool lg_check_pattern(const unsigned char *p, size_t n,
				    uint32_t id, uint32_t seq, size_t off)
{
	size_t i = 0;
	uint64_t x;

	/* Up to the next word boundary, byte by byte. */
	if (off & 7) {
		x = lg_pattern_word(id, seq, off >> 3);
		for (; i < n && ((off + i) & 7); i++)
			if (p[i] != (unsigned char)(x >> (((off + i) & 7) * 8)))
				return false;
	}
	/* Whole words; the compiler makes the byte assembly one load. */
	for (; i + 8 <= n; i += 8) {
		const unsigned char *q = p + i;
		uint64_t v = (uint64_t)q[0] | (uint64_t)q[1] << 8 |
			     (uint64_t)q[2] << 16 | (uint64_t)q[3] << 24 |
			     (uint64_t)q[4] << 32 | (uint64_t)q[5] << 40 |
			     (uint64_t)q[6] << 48 | (uint64_t)q[7] << 56;

		if (v != lg_pattern_word(id, seq, (off + i) >> 3))
			return false;
	}
	if (i < n) {
		x = lg_pattern_word(id, seq, (off + i) >> 3);
		for (unsigned b = 0; i < n; i++, b++)
			if (p[i] != (unsigned char)(x >> (b * 8)))
				return false;
	}
	return true;
}

/* ------------------------------------------------- threads and conns */

struct lg_bench;

/* The program's connection struct starts with this. */
struct lg_conn {
	int fd; /* -1 once retired */
	uint32_t id;
};

struct lg_worker {
	pthread_t thread;
	struct lg_bench *b;
	unsigned first; /* its connections: [first, first + nconns) */
	unsigned nconns;
	unsigned live; /* connections not yet retired */
	int epfd;
	unsigned char *scratch; /* the program's: a receive buffer */
	struct lg_hist *hist;
	uint64_t ops; /* completed in time: round trips, frames */
	uint64_t bytes_verified;
	uint64_t errors;
};

struct lg_bench {
	struct lg_opts *opt;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	/*
	 * Written by main before the second barrier and read by the
	 * threads only after it; the barrier orders them.
	 */
	uint64_t deadline_ns;
	uint64_t connect_deadline_ns;
	pthread_barrier_t barrier;
	atomic_uint error_reports;
	struct lg_worker *workers;
	unsigned char *conns; /* opt->connections of conn_size bytes */
	size_t conn_size;
	/* Begin @c's traffic at @now: its fd is in the epoll set (NULL:
	 * progress alone starts it). */
	void (*start)(struct lg_worker *w, struct lg_conn *c, uint64_t now);
	/* Move @c on until its socket would block both ways. */
	void (*progress)(struct lg_worker *w, struct lg_conn *c);
	/* Totals, after lg_run. */
	struct lg_hist *all;
	uint64_t ops, bytes_verified, errors;
};

static inline void *lg_xcalloc(const struct lg_opts *o, size_t n,
			       size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "%s: out of memory\n", o->prog);
		exit(1);
	}
	return p;
}

static inline struct lg_conn *lg_conn_at(struct lg_bench *b, unsigned i)
{
	return (struct lg_conn *)(b->conns + (size_t)i * b->conn_size);
}

static inline void lg_report_error(struct lg_worker *w,
				   const struct lg_conn *c, const char *what,
				   int err)
{
	struct lg_bench *b = w->b;

	if (atomic_fetch_add_explicit(&b->error_reports, 1,
				      memory_order_relaxed) >=
	    LG_MAX_ERROR_REPORTS)
		return;
	if (err)
		fprintf(stderr, "%s: connection %u: %s: %s\n", b->opt->prog,
			c->id, what, strerror(err));
	else
		fprintf(stderr, "%s: connection %u: %s\n", b->opt->prog, c->id,
			what);
}

/* Close @c and take it out of @w's set (no more traffic). */
static inline void lg_conn_retire(struct lg_worker *w, struct lg_conn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	w->live--;
}

/* An error on @c: report it (the first few), count it, retire @c. */
static inline void lg_conn_fail(struct lg_worker *w, struct lg_conn *c,
				const char *what, int err)
{
	lg_report_error(w, c, what, err);
	w->errors++;
	lg_conn_retire(w, c);
}

/*
 * send(2) on @c's nonblocking socket: the bytes sent, 0 if none could be
 * (the socket is full), or -1 after failing @c on an error.
 */
static inline ssize_t lg_send(struct lg_worker *w, struct lg_conn *c,
			      const void *p, size_t n)
{
	ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);

	if (r >= 0)
		return r;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	lg_conn_fail(w, c, "send", errno);
	return -1;
}

/*
 * recv(2) on @c's nonblocking socket: the bytes received, 0 if none are
 * there yet, or -1 after failing @c on an error or on EOF (reported as
 * @eof_what: the server must not close first).
 */
static inline ssize_t lg_recv(struct lg_worker *w, struct lg_conn *c,
			      void *p, size_t n, const char *eof_what)
{
	ssize_t r = recv(c->fd, p, n, 0);

	if (r > 0)
		return r;
	if (r == 0) {
		lg_conn_fail(w, c, eof_what, 0);
		return -1;
	}
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	lg_conn_fail(w, c, "recv", errno);
	return -1;
}

/*
 * Connect to the server: nonblocking, at most LG_CONNECT_TIMEOUT_MS per
 * try, refusals retried until connect_deadline_ns. Returns the fd (with
 * TCP_NODELAY) or -errno.
 */
static inline int lg_connect(struct lg_bench *b)
{
	const struct sockaddr *sa = (const struct sockaddr *)&b->addr;
	int fd, err, one = 1;

	for (;;) {
		fd = socket(sa->sa_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, sa, b->addrlen) == 0) {
			err = 0;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			socklen_t len = sizeof(err);
			int r = poll(&p, 1, LG_CONNECT_TIMEOUT_MS);

			if (r == 0)
				err = ETIMEDOUT;
			else if (r < 0)
				err = errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
					    &len) < 0)
				err = errno;
		} else {
			err = errno;
		}
		if (err == 0)
			break;
		close(fd);
		if (err != ECONNREFUSED ||
		    bench_now_ns() >= b->connect_deadline_ns)
			return -err;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	/* Small messages must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static inline void *lg_worker_main(void *arg)
{
	struct lg_worker *w = arg;
	struct lg_bench *b = w->b;
	struct epoll_event ev[LG_MAX_EVENTS];
	uint64_t now;

	for (unsigned i = 0; i < w->nconns; i++) {
		struct lg_conn *c = lg_conn_at(b, w->first + i);
		int fd = lg_connect(b);

		if (fd < 0) {
			lg_report_error(w, c, "connect", -fd);
			w->errors++;
			continue;
		}
		c->fd = fd;
		w->live++;
	}

	pthread_barrier_wait(&b->barrier); /* everyone connected */
	pthread_barrier_wait(&b->barrier); /* main has set deadline_ns: go */

	now = bench_now_ns();
	for (unsigned i = 0; i < w->nconns; i++) {
		struct lg_conn *c = lg_conn_at(b, w->first + i);
		struct epoll_event e = {
			.events = EPOLLIN | EPOLLOUT | EPOLLET,
			.data.ptr = c,
		};

		if (c->fd < 0)
			continue;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) {
			lg_conn_fail(w, c, "epoll_ctl", errno);
			continue;
		}
		if (b->start)
			b->start(w, c, now);
		b->progress(w, c);
	}

	while (w->live > 0) {
		int n, timeout_ms;

		now = bench_now_ns();
		if (now >= b->deadline_ns)
			break;
		timeout_ms = (int)((b->deadline_ns - now) / 1000000u) + 1;
		if (timeout_ms > 100)
			timeout_ms = 100;
		n = epoll_wait(w->epfd, ev, LG_MAX_EVENTS, timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: epoll_wait: %s\n", b->opt->prog,
				strerror(errno));
			w->errors++;
			break;
		}
		for (int i = 0; i < n; i++)
			b->progress(w, ev[i].data.ptr);
	}

	for (unsigned i = 0; i < w->nconns; i++)
		lg_conn_retire(w, lg_conn_at(b, w->first + i));
	return NULL;
}

static inline void lg_resolve(struct lg_bench *b)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *ai;
	int err = getaddrinfo(b->opt->host, b->opt->port, &hints, &ai);

	if (err) {
		fprintf(stderr, "%s: %s: %s\n", b->opt->prog, b->opt->host,
			gai_strerror(err));
		exit(1);
	}
	memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
	b->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
}

/* One fd per connection plus a few: take all the hard limit allows. */
static inline void lg_raise_nofile(const struct lg_opts *o)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)o->connections + 16)
		fprintf(stderr, "%s: warning: RLIMIT_NOFILE is %llu, "
			"too low for %u connections\n", o->prog,
			(unsigned long long)rl.rlim_cur, o->connections);
}

/*
 * Set up @b for the options @o (after lg_parse_args): resolve the server
 * (exit(1) on failure), ignore SIGPIPE, raise the fd limit, and allocate
 * the threads (each with an epoll instance, a histogram and a @scratch
 * byte buffer) and the connections (@conn_size bytes each, starting with
 * a struct lg_conn: zeroed, fd -1, ids 0, 1, ...). The program then
 * initialises its part of each connection (lg_conn_at) and calls lg_run.
 */
static inline void lg_init(struct lg_bench *b, struct lg_opts *o,
			   size_t conn_size, size_t scratch,
			   void (*start)(struct lg_worker *, struct lg_conn *,
					 uint64_t),
			   void (*progress)(struct lg_worker *,
					    struct lg_conn *))
{
	memset(b, 0, sizeof(*b));
	b->opt = o;
	b->conn_size = conn_size;
	b->start = start;
	b->progress = progress;
	signal(SIGPIPE, SIG_IGN);
	lg_raise_nofile(o);
	lg_resolve(b);

	b->workers = lg_xcalloc(o, o->threads, sizeof(*b->workers));
	b->conns = lg_xcalloc(o, o->connections, conn_size);
	b->all = lg_xcalloc(o, 1, sizeof(*b->all));
	for (unsigned t = 0; t < o->threads; t++) {
		struct lg_worker *w = &b->workers[t];

		w->b = b;
		w->first = t * o->connections / o->threads;
		w->nconns = (t + 1) * o->connections / o->threads - w->first;
		w->scratch = lg_xcalloc(o, 1, scratch);
		w->hist = lg_xcalloc(o, 1, sizeof(*w->hist));
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0) {
			fprintf(stderr, "%s: epoll_create1: %s\n", o->prog,
				strerror(errno));
			exit(1);
		}
	}
	for (unsigned i = 0; i < o->connections; i++) {
		struct lg_conn *c = lg_conn_at(b, i);

		c->fd = -1;
		c->id = i;
	}
}

/*
 * Connect, run the timed phase for opt->duration, join the threads and
 * sum their counts and histograms into @b. exit(1) if a thread cannot be
 * started.
 */
static inline void lg_run(struct lg_bench *b)
{
	struct lg_opts *o = b->opt;
	int err;

	pthread_barrier_init(&b->barrier, NULL, o->threads + 1);
	b->connect_deadline_ns = bench_now_ns() + LG_CONNECT_RETRY_NS;
	for (unsigned t = 0; t < o->threads; t++) {
		err = pthread_create(&b->workers[t].thread, NULL,
				     lg_worker_main, &b->workers[t]);
		if (err) {
			fprintf(stderr, "%s: pthread_create: %s\n", o->prog,
				strerror(err));
			exit(1);
		}
	}
	pthread_barrier_wait(&b->barrier);
	b->deadline_ns = bench_now_ns() + (uint64_t)(o->duration * 1e9);
	pthread_barrier_wait(&b->barrier);

	for (unsigned t = 0; t < o->threads; t++) {
		struct lg_worker *w = &b->workers[t];

		pthread_join(w->thread, NULL);
		lg_hist_merge(b->all, w->hist);
		b->ops += w->ops;
		b->bytes_verified += w->bytes_verified;
		b->errors += w->errors;
	}
	pthread_barrier_destroy(&b->barrier);
}

struct lg_result {
	double rate; /* ops per second of --duration */
	double p50_us, p99_us, max_us;
};

/*
 * The table on stdout: a header, connections, message size, then
 * @extra_name/@extra (when @extra_name is not NULL), duration, @ops_name
 * ("round trips") and @ops_name + "/s", latencies, bytes verified and
 * errors. Returns the figures for the program's machine line.
 */
static inline struct lg_result lg_report(const struct lg_bench *b,
					 const char *ops_name,
					 const char *extra_name,
					 unsigned long extra)
{
	const struct lg_opts *o = b->opt;
	struct lg_result r = {
		.rate = (double)b->ops / o->duration,
		.p50_us = (double)lg_hist_quantile(b->all, 0.50) / 1e3,
		.p99_us = (double)lg_hist_quantile(b->all, 0.99) / 1e3,
		.max_us = (double)b->all->max / 1e3,
	};
	char rate_name[64];

	snprintf(rate_name, sizeof(rate_name), "%s/s", ops_name);
	printf("%s: %s port %s, %u threads\n", o->prog, o->host, o->port,
	       o->threads);
	printf("  %-16s %u\n", "connections", o->connections);
	printf("  %-16s %zu bytes\n", "message size", o->size);
	if (extra_name)
		printf("  %-16s %lu\n", extra_name, extra);
	printf("  %-16s %.3f s\n", "duration", o->duration);
	printf("  %-16s %llu\n", ops_name, (unsigned long long)b->ops);
	printf("  %-16s %.1f\n", rate_name, r.rate);
	printf("  %-16s %.1f us\n", "latency p50", r.p50_us);
	printf("  %-16s %.1f us\n", "latency p99", r.p99_us);
	printf("  %-16s %.1f us\n", "latency max", r.max_us);
	printf("  %-16s %llu\n", "bytes verified",
	       (unsigned long long)b->bytes_verified);
	printf("  %-16s %llu\n", "errors", (unsigned long long)b->errors);
	return r;
}

/*
 * The end of the program, after its machine line: say @none_msg on stderr
 * if nothing completed; free what lg_init allocated, after @conn_free (if
 * not NULL) on each connection, so that a sanitizer build's leak check
 * (tests/echo-fiber.sh runs echo-client under ASan) reports the server's
 * leaks, not ours. Returns the exit status: 1 if there were errors or
 * nothing completed, else 0.
 */
static inline int lg_finish(struct lg_bench *b, const char *none_msg,
			    void (*conn_free)(struct lg_conn *c))
{
	int status = b->errors > 0 || b->ops == 0 ? 1 : 0;

	if (b->ops == 0)
		fprintf(stderr, "%s: %s\n", b->opt->prog, none_msg);
	for (unsigned i = 0; conn_free && i < b->opt->connections; i++)
		conn_free(lg_conn_at(b, i));
	for (unsigned t = 0; t < b->opt->threads; t++) {
		close(b->workers[t].epfd);
		free(b->workers[t].scratch);
		free(b->workers[t].hist);
	}
	free(b->all);
	free(b->conns);
	free(b->workers);
	return status;
}

#endif /* WEFT_BENCH_LOADGEN_H */
