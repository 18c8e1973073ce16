/* SPDX-License-Identifier: MIT */
/*
 * TCP faults under load: resets, half-closes and shutdowns that land while
 * recv and send ops are in flight, at random moments, on 1-4 workers.
 *
 * Each round opens 4-32 TCP connections on 127.0.0.1. Our end of each is
 * driven by a task (a recv loop, or for SEND_RST a send loop); the peer end
 * by this thread, which writes a random amount of patterned data and then
 * ends the connection one way, in random order with random pauses:
 *   FIN       peer shutdown(SHUT_WR): the recv loop gets every byte, then 0;
 *   RST       peer close with SO_LINGER {1, 0}: a prefix of the bytes,
 *             then -ECONNRESET (never 0 first: the reset is not lost);
 *   SHUT_RD   a shutdown op (weft_io_prep_shutdown) on our end from another
 *             task: a prefix, then 0, and the shutdown op gives 0;
 *   ABORT     weft_task_abort on the recv task: -ECANCELED, op cancelled;
 *   SEND_RST  the peer reads a little, then resets, while our task's send
 *             is blocked on a full buffer or about to be: -ECONNRESET or
 *             -EPIPE, never SIGPIPE, never a hang.
 * Checks: every received byte matches the pattern at its offset; the ends
 * above; every task's future dropped exactly once; no fd leaked over the
 * run; under ASan no use-after-free and no leak.
 *
 * Usage: socket_fault_stress [seed]; WEFT_STRESS_SCALE / _SECONDS: stress.h.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <weft.h>

#include "stress.h"

#define MAX_CONNS 32
#define MAX_DATA 8192 /* fits the socket buffers: writes never block */

enum mode { FIN, RST, SHUT_RD_OP, ABORT, SEND_RST, NMODES };

static inline unsigned char pattern(uint64_t k)
{
	return (unsigned char)(k * 131 + 7);
}

struct conn {
	int a, b;            /* our end (ops), the peer's (this thread) */
	enum mode mode;
	size_t written;
	atomic_int drops;
	atomic_int data_errors;
	weft_join *join;
	weft_join *shut;     /* SHUT_RD_OP: the shutdown op's task */
};

/* The output of a loop task: bytes moved, and the result that ended it. */
struct loop_out {
	int64_t bytes;
	int64_t end;
};

/* A recv loop (or, with @send, a send loop) on @c->a. */
struct loop {
	struct conn *c;
	bool send;
	bool armed;
	size_t chunk;
	int64_t bytes;
	weft_io io;
	unsigned char buf[512]; /* recv: the kernel writes into task memory */
};

static const unsigned char send_buf[65536]; /* static: outlives tasks */

static weft_poll loop_poll(void *self, weft_cx *cx, void *out)
{
	struct loop *l = self;
	int64_t res;

	for (;;) {
		if (!l->armed) {
			if (l->send)
				weft_io_prep_send(&l->io, l->c->a, send_buf,
						  sizeof(send_buf), 0);
			else
				weft_io_prep_recv(&l->io, l->c->a, l->buf,
						  l->chunk, 0);
			l->armed = true;
		}
		if (weft_io_poll(&l->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		l->armed = false;
		if (res <= 0)
			break;
		if (!l->send)
			for (int64_t i = 0; i < res; i++)
				if (l->buf[i] !=
				    pattern((uint64_t)(l->bytes + i)))
					atomic_fetch_add(&l->c->data_errors,
							 1);
		l->bytes += res;
	}
	*(struct loop_out *)out = (struct loop_out){ l->bytes, res };
	return WEFT_READY;
}

static void loop_drop(void *self)
{
	struct loop *l = self;
	weft_io_drop(&l->io);
	atomic_fetch_add(&l->c->drops, 1);
}

static const weft_future_desc loop_desc = {
	.poll = loop_poll,
	.drop = loop_drop,
	.size = sizeof(struct loop),
	.output_size = sizeof(struct loop_out),
};

/* One prepared op as a task (the shutdown of SHUT_RD_OP). */
static weft_poll op_poll(void *self, weft_cx *cx, void *out)
{
	return weft_io_poll(self, cx, out);
}

static void op_drop(void *self)
{
	weft_io_drop(self);
}

static const weft_future_desc op_desc = {
	.poll = op_poll,
	.drop = op_drop,
	.size = sizeof(weft_io),
	.output_size = sizeof(int64_t),
};

static unsigned count_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void close_with_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	STRESS_CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) ==
			     0,
		     "SO_LINGER");
	close(fd);
}

static void tcp_pair(int lfd, uint16_t port, int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	STRESS_CHECK(*a >= 0, "socket: %s", strerror(errno));
	STRESS_CHECK(connect(*a, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		     "connect: %s", strerror(errno));
	*b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	STRESS_CHECK(*b >= 0, "accept: %s", strerror(errno));
}

/* Write @n patterned bytes to the peer end (never blocks: n <= MAX_DATA). */
static void peer_write(struct conn *c, size_t n)
{
	unsigned char buf[MAX_DATA];
	for (size_t i = 0; i < n; i++)
		buf[i] = pattern(i);
	STRESS_CHECK(write(c->b, buf, n) == (ssize_t)n, "write: %s",
		     strerror(errno));
	c->written = n;
}

/* End @c its round's way. */
static void peer_end(weft_runtime *rt, struct conn *c, struct stress_rng *rng)
{
	switch (c->mode) {
	case FIN:
		STRESS_CHECK(shutdown(c->b, SHUT_WR) == 0, "shutdown");
		break;
	case RST:
	case SEND_RST:
		if (c->mode == SEND_RST) {
			/* Read some of what the task sends, or nothing. */
			unsigned char buf[4096];
			int fl = fcntl(c->b, F_GETFL);
			fcntl(c->b, F_SETFL, fl | O_NONBLOCK);
			for (uint64_t k = stress_below(rng, 8); k > 0; k--)
				if (read(c->b, buf, sizeof(buf)) <= 0)
					break;
		}
		close_with_reset(c->b);
		c->b = -1;
		break;
	case SHUT_RD_OP: {
		weft_io io = WEFT_IO_INIT;
		STRESS_CHECK(weft_io_prep_shutdown(&io, c->a, SHUT_RD) == 0,
			     "prep_shutdown");
		STRESS_CHECK(weft_spawn(rt, &op_desc, &io, &c->shut) == 0,
			     "spawn shutdown");
		break;
	}
	case ABORT:
		weft_task_abort(c->join);
		break;
	default:
		break;
	}
}

static unsigned mode_count[NMODES], send_epipe;

static void check_conn(struct conn *c, unsigned i)
{
	struct loop_out o = { -1, INT64_MIN };
	int st = stress_join_wait(c->join, &o);

	if (c->mode == ABORT) {
		/* Nothing ends the connection: only the abort ends the task. */
		STRESS_CHECK(st == -ECANCELED, "conn %u (abort): join %d", i,
			     st);
	} else {
		STRESS_CHECK(st == 0, "conn %u (mode %d): join %d", i, c->mode,
			     st);
		STRESS_CHECK(o.bytes >= 0, "conn %u: %" PRId64 " bytes", i,
			     o.bytes);
	}
	switch (st == 0 ? c->mode : NMODES) {
	case FIN:
		STRESS_CHECK(o.end == 0 && (size_t)o.bytes == c->written,
			     "conn %u (FIN): %" PRId64 " of %zu bytes, end %s",
			     i, o.bytes, c->written,
			     weft_strerror((int)o.end));
		break;
	case RST:
		STRESS_CHECK(o.end == -ECONNRESET &&
				     (size_t)o.bytes <= c->written,
			     "conn %u (RST): %" PRId64 " of %zu bytes, end %s",
			     i, o.bytes, c->written,
			     weft_strerror((int)o.end));
		break;
	case SHUT_RD_OP: {
		int64_t r = INT64_MIN;
		STRESS_CHECK(stress_join_wait(c->shut, &r) == 0 && r == 0,
			     "conn %u: shutdown op %s", i,
			     weft_strerror((int)r));
		weft_join_drop(c->shut);
		STRESS_CHECK(o.end == 0 && (size_t)o.bytes <= c->written,
			     "conn %u (SHUT_RD): %" PRId64 " of %zu bytes, "
			     "end %s",
			     i, o.bytes, c->written,
			     weft_strerror((int)o.end));
		break;
	}
	case SEND_RST:
		STRESS_CHECK(o.end == -ECONNRESET || o.end == -EPIPE,
			     "conn %u (SEND_RST): end %s", i,
			     weft_strerror((int)o.end));
		send_epipe += o.end == -EPIPE;
		break;
	default:
		break;
	}
	STRESS_CHECK(atomic_load(&c->data_errors) == 0,
		     "conn %u: %d corrupted bytes", i,
		     atomic_load(&c->data_errors));
	weft_join_drop(c->join);
}

static void run_round(struct stress_rng *rng)
{
	static struct conn conns[MAX_CONNS];
	unsigned workers = 1 + (unsigned)stress_below(rng, 4);
	unsigned n = 4 + (unsigned)stress_below(rng, MAX_CONNS - 3);
	unsigned order[MAX_CONNS];
	weft_runtime *rt = stress_runtime(workers, stress_chance(rng, 50));
	int lfd = weft_tcp_listen("127.0.0.1", 0, MAX_CONNS);
	STRESS_CHECK(lfd >= 0, "listen: %s", weft_strerror(lfd));
	uint16_t port = (uint16_t)weft_tcp_local_port(lfd);

	stress_set_phase("spawn");
	memset(conns, 0, sizeof(conns));
	for (unsigned i = 0; i < n; i++) {
		struct conn *c = &conns[i];
		tcp_pair(lfd, port, &c->a, &c->b);
		c->mode = (enum mode)stress_below(rng, NMODES);
		mode_count[c->mode]++;
		if (c->mode == SEND_RST) {
			/* A small buffer: the send loop blocks soon. */
			int sz = 16384;
			setsockopt(c->a, SOL_SOCKET, SO_SNDBUF, &sz,
				   sizeof(sz));
		}
		/* Some data before the task starts, some after. */
		if (c->mode != SEND_RST && stress_chance(rng, 50))
			peer_write(c, (size_t)stress_below(rng, MAX_DATA + 1));
		struct loop l = { .c = c, .send = c->mode == SEND_RST,
				  .chunk = 1 + stress_below(rng, 512) };
		STRESS_CHECK(weft_spawn(rt, &loop_desc, &l, &c->join) == 0,
			     "spawn");
		order[i] = i;
	}
	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = (unsigned)stress_below(rng, i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}

	stress_set_phase("end");
	for (unsigned k = 0; k < n; k++) {
		struct conn *c = &conns[order[k]];
		if (c->mode != SEND_RST && !c->written)
			peer_write(c, (size_t)stress_below(rng, MAX_DATA + 1));
		if (stress_chance(rng, 30))
			stress_sleep_us((unsigned)stress_below(rng, 300));
		peer_end(rt, c, rng);
	}

	stress_set_phase("join");
	for (unsigned i = 0; i < n; i++)
		check_conn(&conns[i], i);
	stress_progress();

	stress_set_phase("free");
	STRESS_CHECK(weft_runtime_shutdown(rt) == 0, "shutdown");
	weft_runtime_free(rt);
	for (unsigned i = 0; i < n; i++) {
		STRESS_CHECK(atomic_load(&conns[i].drops) == 1,
			     "conn %u dropped %d times", i,
			     atomic_load(&conns[i].drops));
		close(conns[i].a);
		if (conns[i].b >= 0)
			close(conns[i].b);
	}
	close(lfd);
}

int main(int argc, char **argv)
{
	struct stress_rng rng;
	unsigned round;
	uint64_t rounds_max;
	unsigned fds0;

	stress_init("socket_fault_stress", argc, argv);
	rounds_max = stress_iters(STRESS_TSAN ? 300 : 1000);
	stress_rng_init(&rng, 0);
	fds0 = count_fds();
	for (round = 0; round < rounds_max && stress_time_left(); round++) {
		run_round(&rng);
		stress_progress();
	}
	STRESS_CHECK(count_fds() == fds0, "fds: %u at start, %u at end", fds0,
		     count_fds());
	return stress_finish("%u rounds; ends: %u FIN, %u RST, %u SHUT_RD, "
			     "%u abort, %u send-RST (%u of them -EPIPE)",
			     round, mode_count[FIN], mode_count[RST],
			     mode_count[SHUT_RD_OP], mode_count[ABORT],
			     mode_count[SEND_RST], send_epipe);
}
