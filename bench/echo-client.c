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
#include <time.h>
#include <unistd.h>

#define CONNECT_RETRY_NS (2ull * 1000000000u) /* keep retrying refusals */
#define CONNECT_TIMEOUT_MS 5000               /* one connect attempt */
#define MAX_ERROR_REPORTS 10                  /* on stderr */
#define MAX_EVENTS 256

static struct {
	const char *host;
	const char *port;
	unsigned connections;
	size_t size;
	double duration;
	unsigned threads;
} opt = {
	.host = "127.0.0.1",
	.connections = 50,
	.size = 64,
	.duration = 5.0,
	.threads = 2,
};

static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;

/*
 * Written by main before the second barrier and read by the threads only
 * after it; the barrier orders them.
 */
static uint64_t deadline_ns;
static uint64_t connect_deadline_ns;

static pthread_barrier_t barrier;
static atomic_uint error_reports;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------- histogram */

/*
 * Values below 2 * HIST_SUB ns are counted exactly; above, each power of
 * two [2^m, 2^(m+1)) is cut into HIST_SUB equal buckets.
 */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (2 * HIST_SUB + (63 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t total;
	uint64_t max;
};

static unsigned hist_index(uint64_t v)
{
	unsigned m, shift;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	m = 63 - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
	shift = m - HIST_SUB_BITS;             /* v >> shift in [SUB, 2 SUB) */
	return 2 * HIST_SUB + (m - HIST_SUB_BITS - 1) * HIST_SUB +
	       (unsigned)((v >> shift) - HIST_SUB);
}

/* The middle of bucket @idx. */
static uint64_t hist_value(unsigned idx)
{
	unsigned k, shift;
	uint64_t lo;

	if (idx < 2 * HIST_SUB)
		return idx;
	k = idx - 2 * HIST_SUB;
	shift = k / HIST_SUB + 1;
	lo = (uint64_t)(HIST_SUB + k % HIST_SUB) << shift;
	return lo + ((1ull << shift) >> 1);
}

static void hist_record(struct hist *h, uint64_t v)
{
	h->count[hist_index(v)]++;
	h->total++;
	if (v > h->max)
		h->max = v;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		to->count[i] += from->count[i];
	to->total += from->total;
	if (from->max > to->max)
		to->max = from->max;
}

/* The value at quantile @q (0 < q <= 1), in ns; 0 for an empty histogram. */
static uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (h->total == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->total + 0.999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);

			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* ------------------------------------------------------ connections */

struct conn {
	int fd;
	uint32_t id;
	uint32_t seq;
	size_t sent;  /* bytes of the current message sent */
	size_t recvd; /* bytes of the current message received and checked */
	uint64_t start_ns;
	unsigned char *msg; /* the current message: what must come back */
};

struct worker {
	pthread_t thread;
	unsigned index;
	struct conn *conns;
	unsigned nconns;
	unsigned live;
	int epfd;
	unsigned char *scratch;
	struct hist *hist;
	uint64_t rtts;
	uint64_t bytes_verified;
	uint64_t errors;
};

/* splitmix64 (Steele, Lea, Flood; OOPSLA 2014). */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The message for (@id, @seq): a byte stream no other pair produces. */
static void fill_pattern(unsigned char *p, size_t n, uint32_t id, uint32_t seq)
{
	uint64_t state = (uint64_t)id << 32 | seq, x = 0;

	for (size_t i = 0; i < n; i++) {
		if ((i & 7) == 0)
			x = splitmix64(&state);
		p[i] = (unsigned char)(x >> ((i & 7) * 8));
	}
}

static void report_error(const struct conn *c, const char *what, int err)
{
	if (atomic_fetch_add_explicit(&error_reports, 1,
				      memory_order_relaxed) >=
	    MAX_ERROR_REPORTS)
		return;
	if (err)
		fprintf(stderr, "echo-client: connection %u: %s: %s\n", c->id,
			what, strerror(err));
	else
		fprintf(stderr, "echo-client: connection %u: %s\n", c->id,
			what);
}

static void conn_retire(struct worker *w, struct conn *c)
{
	if (c->fd < 0)
		return;
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	w->live--;
}

static void conn_fail(struct worker *w, struct conn *c, const char *what,
		      int err)
{
	report_error(c, what, err);
	w->errors++;
	conn_retire(w, c);
}

static void conn_start_message(struct conn *c, uint64_t now)
{
	c->seq++;
	fill_pattern(c->msg, opt.size, c->id, c->seq);
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
static void conn_progress(struct worker *w, struct conn *c)
{
	size_t size = opt.size;
	ssize_t n;

	while (c->fd >= 0) {
		bool moved = false;

		if (c->sent < size) {
			n = send(c->fd, c->msg + c->sent, size - c->sent,
				 MSG_NOSIGNAL);
			if (n > 0) {
				c->sent += (size_t)n;
				moved = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				conn_fail(w, c, "send", errno);
				return;
			}
		}

		n = recv(c->fd, w->scratch, size - c->recvd, 0);
		if (n == 0) {
			conn_fail(w, c, "EOF in the middle of a reply", 0);
			return;
		} else if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) {
				conn_fail(w, c, "recv", errno);
				return;
			}
		} else {
			if (memcmp(w->scratch, c->msg + c->recvd, (size_t)n)) {
				conn_fail(w, c, "reply differs from message",
					  0);
				return;
			}
			c->recvd += (size_t)n;
			w->bytes_verified += (size_t)n;
			moved = true;
			if (c->recvd == size) {
				uint64_t now = now_ns();

				if (now > deadline_ns) {
					/* Too late to count; stop here. */
					conn_retire(w, c);
					return;
				}
				hist_record(w->hist, now - c->start_ns);
				w->rtts++;
				conn_start_message(c, now);
			}
		}
		if (!moved)
			return;
	}
}

/*
 * Connect to the server: nonblocking, at most CONNECT_TIMEOUT_MS per try,
 * refusals retried until connect_deadline_ns. Returns the fd or -errno.
 */
static int connect_server(void)
{
	const struct sockaddr *sa = (const struct sockaddr *)&server_addr;
	int fd, err, one = 1;

	for (;;) {
		fd = socket(sa->sa_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, sa, server_addrlen) == 0) {
			err = 0;
		} else if (errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			socklen_t len = sizeof(err);
			int r = poll(&p, 1, CONNECT_TIMEOUT_MS);

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
		if (err != ECONNREFUSED || now_ns() >= connect_deadline_ns)
			return -err;
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	/* Small messages must not wait for Nagle. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[MAX_EVENTS];

	for (unsigned i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		int fd = connect_server();

		if (fd < 0) {
			report_error(c, "connect", -fd);
			w->errors++;
			continue;
		}
		c->fd = fd;
		w->live++;
	}

	pthread_barrier_wait(&barrier); /* everyone connected */
	pthread_barrier_wait(&barrier); /* main has set deadline_ns: go */

	uint64_t now = now_ns();

	for (unsigned i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		struct epoll_event e = {
			.events = EPOLLIN | EPOLLOUT | EPOLLET,
			.data.ptr = c,
		};

		if (c->fd < 0)
			continue;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) {
			conn_fail(w, c, "epoll_ctl", errno);
			continue;
		}
		conn_start_message(c, now);
		conn_progress(w, c);
	}

	while (w->live > 0) {
		int n, timeout_ms;

		now = now_ns();
		if (now >= deadline_ns)
			break;
		timeout_ms = (int)((deadline_ns - now) / 1000000u) + 1;
		if (timeout_ms > 100)
			timeout_ms = 100;
		n = epoll_wait(w->epfd, ev, MAX_EVENTS, timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo-client: epoll_wait");
			w->errors++;
			break;
		}
		for (int i = 0; i < n; i++)
			conn_progress(w, ev[i].data.ptr);
	}

	for (unsigned i = 0; i < w->nconns; i++)
		conn_retire(w, &w->conns[i]);
	return NULL;
}

/* ------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: echo-client --port N [--host ADDR] [--connections C]\n"
		"                   [--size S] [--duration D] [--threads T]\n"
		"\n"
		"Closed-loop TCP echo load: each connection sends S bytes,\n"
		"reads them back, checks every byte, and repeats for D s.\n"
		"\n"
		"  --host ADDR       server address (default 127.0.0.1)\n"
		"  --port N          server port (required)\n"
		"  --connections C   concurrent connections (default 50)\n"
		"  --size S          message size in bytes (default 64)\n"
		"  --duration D      seconds of load, after connecting\n"
		"                    (default 5)\n"
		"  --threads T       client threads (default 2)\n"
		"  --help            this text\n");
}

static unsigned long parse_ulong(const char *name, const char *s,
				 unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v < lo || v > hi) {
		fprintf(stderr, "echo-client: %s wants a number in %lu..%lu\n",
			name, lo, hi);
		exit(1);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "connections", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "H:p:c:s:d:t:h", opts, NULL)) !=
	       -1) {
		switch (c) {
		case 'H':
			opt.host = optarg;
			break;
		case 'p':
			parse_ulong("--port", optarg, 1, 65535);
			opt.port = optarg;
			break;
		case 'c':
			opt.connections = (unsigned)parse_ulong(
				"--connections", optarg, 1, 1000000);
			break;
		case 's':
			opt.size = parse_ulong("--size", optarg, 1, 64 << 20);
			break;
		case 'd':
			opt.duration = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' ||
			    !(opt.duration > 0 && opt.duration <= 86400)) {
				fprintf(stderr, "echo-client: --duration wants "
					"seconds in (0, 86400]\n");
				exit(1);
			}
			break;
		case 't':
			opt.threads = (unsigned)parse_ulong("--threads", optarg,
							    1, 1024);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(1);
		}
	}
	if (optind < argc || !opt.port) {
		if (!opt.port)
			fprintf(stderr, "echo-client: --port is required\n");
		usage(stderr);
		exit(1);
	}
	if (opt.threads > opt.connections)
		opt.threads = opt.connections;
}

static void resolve(void)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *ai;
	int err = getaddrinfo(opt.host, opt.port, &hints, &ai);

	if (err) {
		fprintf(stderr, "echo-client: %s: %s\n", opt.host,
			gai_strerror(err));
		exit(1);
	}
	memcpy(&server_addr, ai->ai_addr, ai->ai_addrlen);
	server_addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
}

/* One fd per connection plus a few: take all the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)opt.connections + 16)
		fprintf(stderr, "echo-client: warning: RLIMIT_NOFILE is %llu, "
			"too low for %u connections\n",
			(unsigned long long)rl.rlim_cur, opt.connections);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "echo-client: out of memory\n");
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	struct worker *workers;
	struct conn *conns;
	struct hist *all;
	uint64_t rtts = 0, bytes = 0, errors = 0;
	double rate, p50, p99, max;
	int err;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	resolve();

	workers = xcalloc(opt.threads, sizeof(*workers));
	conns = xcalloc(opt.connections, sizeof(*conns));
	all = xcalloc(1, sizeof(*all));
	for (unsigned t = 0; t < opt.threads; t++) {
		struct worker *w = &workers[t];

		w->index = t;
		w->conns = &conns[t * opt.connections / opt.threads];
		w->nconns = (t + 1) * opt.connections / opt.threads -
			    t * opt.connections / opt.threads;
		w->scratch = xcalloc(1, opt.size);
		w->hist = xcalloc(1, sizeof(*w->hist));
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0) {
			perror("echo-client: epoll_create1");
			return 1;
		}
	}
	for (unsigned i = 0; i < opt.connections; i++) {
		conns[i].fd = -1;
		conns[i].id = i;
		conns[i].msg = xcalloc(1, opt.size);
	}

	pthread_barrier_init(&barrier, NULL, opt.threads + 1);
	connect_deadline_ns = now_ns() + CONNECT_RETRY_NS;
	for (unsigned t = 0; t < opt.threads; t++) {
		err = pthread_create(&workers[t].thread, NULL, worker_main,
				     &workers[t]);
		if (err) {
			fprintf(stderr, "echo-client: pthread_create: %s\n",
				strerror(err));
			return 1;
		}
	}
	pthread_barrier_wait(&barrier);
	deadline_ns = now_ns() + (uint64_t)(opt.duration * 1e9);
	pthread_barrier_wait(&barrier);

	for (unsigned t = 0; t < opt.threads; t++) {
		struct worker *w = &workers[t];

		pthread_join(w->thread, NULL);
		hist_merge(all, w->hist);
		rtts += w->rtts;
		bytes += w->bytes_verified;
		errors += w->errors;
	}

	rate = (double)rtts / opt.duration;
	p50 = (double)hist_quantile(all, 0.50) / 1e3;
	p99 = (double)hist_quantile(all, 0.99) / 1e3;
	max = (double)all->max / 1e3;

	printf("echo-client: %s port %s, %u threads\n", opt.host, opt.port,
	       opt.threads);
	printf("  %-16s %u\n", "connections", opt.connections);
	printf("  %-16s %zu bytes\n", "message size", opt.size);
	printf("  %-16s %.3f s\n", "duration", opt.duration);
	printf("  %-16s %llu\n", "round trips", (unsigned long long)rtts);
	printf("  %-16s %.1f\n", "round trips/s", rate);
	printf("  %-16s %.1f us\n", "latency p50", p50);
	printf("  %-16s %.1f us\n", "latency p99", p99);
	printf("  %-16s %.1f us\n", "latency max", max);
	printf("  %-16s %llu\n", "bytes verified", (unsigned long long)bytes);
	printf("  %-16s %llu\n", "errors", (unsigned long long)errors);
	printf("echo: connections=%u size=%zu secs=%g rtt_per_sec=%.1f "
	       "p50_us=%.1f p99_us=%.1f errors=%llu\n", opt.connections,
	       opt.size, opt.duration, rate, p50, p99,
	       (unsigned long long)errors);

	if (rtts == 0)
		fprintf(stderr, "echo-client: no round trip completed\n");

	/* Freed so that a sanitizer build's leak check (tests/echo-fiber.sh
	 * runs the client under ASan) reports weft's leaks, not ours. */
	for (unsigned t = 0; t < opt.threads; t++) {
		close(workers[t].epfd);
		free(workers[t].scratch);
		free(workers[t].hist);
	}
	for (unsigned i = 0; i < opt.connections; i++)
		free(conns[i].msg);
	free(all);
	free(conns);
	free(workers);
	return errors > 0 || rtts == 0 ? 1 : 0;
}
