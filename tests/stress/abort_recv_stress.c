/* SPDX-License-Identifier: MIT */
/*
 * Abort/shutdown stress on tasks blocked in io_uring ops.
 *
 * Each round: tasks receive from socketpairs (buffer inside the task, so
 * the kernel writes into task memory) and from TCP connections they
 * accept; a controller thread writes data, closes writers (EOF), connects
 * clients, and aborts tasks at random moments, while a second thread aborts
 * too; then the round ends one of three ways: writers closed and the
 * survivors joined, everything aborted, or the runtime shut down with
 * tasks still blocked in recv/accept.
 *
 * Checks: a join yields either -ECANCELED (only for an aborted task or
 * after shutdown/abort-all) or the real result, which must equal the bytes
 * written (in order: every byte is verified); every future is dropped
 * exactly once; no crash, no use-after-free, no leak (run it under ASan:
 * the op-record lifetime rule of weft/io.h is what keeps the kernel from
 * writing into freed task memory).
 *
 * Usage: abort_recv_stress [seed]; WEFT_STRESS_SCALE / _SECONDS: stress.h.
 */
#include <netinet/in.h>
#include <sys/socket.h>
#include <weft.h>

#include "stress.h"

#define MAX_PAIRS 48
#define MAX_ACCEPTORS 12
#define MAX_CLIENTS 24

static inline unsigned char pattern(uint64_t k)
{
	return (unsigned char)(k * 131 + 7);
}

struct pair {
	int rfd, wfd;          /* reader (task side), writer (controller) */
	atomic_int wclosed;    /* writer closed: EOF sent */
	atomic_uint_fast64_t written;
	atomic_int aborted;
	atomic_int drops;
	atomic_int polls;
	weft_join *join;
};

struct acc {
	atomic_int aborted;
	atomic_int drops;
	weft_join *join;
};

struct round {
	weft_runtime *rt;
	unsigned npairs, nacc;
	struct pair pairs[MAX_PAIRS];
	struct acc accs[MAX_ACCEPTORS];
	int lfd;
	uint16_t port;
	atomic_bool stop;
	atomic_int data_errors;
	unsigned round_no;
	int clients[MAX_CLIENTS];
	unsigned nclients;
	unsigned nconnects; /* bounded below the backlog: a connect to a
			     * full backlog would block for seconds */
};

static struct round R;

/*
 * Check @n received bytes against the stream pattern from offset @total
 * (count a mismatch in R.data_errors); returns the new offset.
 */
static uint64_t check_received(const unsigned char *buf, int64_t n,
			       uint64_t total)
{
	for (int64_t k = 0; k < n; k++)
		if (buf[k] != pattern(total + (uint64_t)k)) {
			atomic_fetch_add(&R.data_errors, 1);
			break;
		}
	stress_progress();
	return total + (uint64_t)n;
}

/* --- tasks ---------------------------------------------------------------- */

/* Receive until EOF, verifying the pattern. Output: bytes, or -errno. */
struct receiver {
	int idx;
	int fd;
	uint64_t total;
	int armed;
	weft_io io;
	unsigned char buf[2048];
};

static weft_poll receiver_poll(void *self, weft_cx *cx, void *out)
{
	struct receiver *s = self;
	int64_t res;
	atomic_fetch_add(&R.pairs[s->idx].polls, 1);
	for (;;) {
		if (!s->armed) {
			weft_io_drop(&s->io);
			weft_io_prep_recv(&s->io, s->fd, s->buf, sizeof(s->buf),
				       0);
			s->armed = 1;
		}
		if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		s->armed = 0;
		if (res <= 0) {
			*(int64_t *)out = res < 0 ? res : (int64_t)s->total;
			return WEFT_READY;
		}
		s->total = check_received(s->buf, res, s->total);
	}
}

static void receiver_drop(void *self)
{
	struct receiver *s = self;
	weft_io_drop(&s->io);
	atomic_fetch_add(&R.pairs[s->idx].drops, 1);
}

static const weft_future_desc receiver_desc = {
	.poll = receiver_poll,
	.drop = receiver_drop,
	.size = sizeof(struct receiver),
	.output_size = sizeof(int64_t),
};

/* Accept one connection, then receive from it until EOF. The accepted fd
 * is the task's: closed by its drop. */
struct acceptor {
	int idx;
	int lfd;
	int fd;
	int step;
	uint64_t total;
	int armed;
	weft_io io;
	unsigned char buf[2048];
};

static weft_poll acceptor_poll(void *self, weft_cx *cx, void *out)
{
	struct acceptor *s = self;
	int64_t res;
	for (;;) {
		if (!s->armed) {
			weft_io_drop(&s->io);
			if (s->step == 0)
				weft_io_prep_accept(&s->io, s->lfd);
			else
				weft_io_prep_recv(&s->io, s->fd, s->buf,
					       sizeof(s->buf), 0);
			s->armed = 1;
		}
		if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		s->armed = 0;
		if (s->step == 0) {
			if (res < 0) {
				*(int64_t *)out = res;
				return WEFT_READY;
			}
			s->fd = (int)res;
			s->step = 1;
			continue;
		}
		if (res <= 0) {
			*(int64_t *)out = res < 0 ? res : (int64_t)s->total;
			return WEFT_READY;
		}
		s->total = check_received(s->buf, res, s->total);
	}
}

static void acceptor_drop(void *self)
{
	struct acceptor *s = self;
	weft_io_drop(&s->io);
	if (s->fd >= 0)
		close(s->fd);
	atomic_fetch_add(&R.accs[s->idx].drops, 1);
}

static const weft_future_desc acceptor_desc = {
	.poll = acceptor_poll,
	.drop = acceptor_drop,
	.size = sizeof(struct acceptor),
	.output_size = sizeof(int64_t),
};

/* --- controller and aborter threads -------------------------------------- */

/* Write up to @n pattern bytes to pair @i without blocking. */
static void write_some(struct pair *p, size_t n)
{
	unsigned char buf[4096];
	uint64_t off = atomic_load(&p->written);
	if (n > sizeof(buf))
		n = sizeof(buf);
	for (size_t k = 0; k < n; k++)
		buf[k] = pattern(off + k);
	ssize_t w = send(p->wfd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w > 0)
		atomic_store(&p->written, off + (uint64_t)w);
}

static void client_connect(struct stress_rng *rng)
{
	if (R.nclients >= MAX_CLIENTS || R.nconnects >= 2 * MAX_CLIENTS)
		return;
	R.nconnects++;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	STRESS_CHECK(fd >= 0, "socket");
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(R.port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	STRESS_CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		     "connect: %s", strerror(errno));
	size_t n = (size_t)stress_below(rng, 3000);
	unsigned char buf[3000];
	for (size_t k = 0; k < n; k++)
		buf[k] = pattern(k);
	(void)!send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (stress_chance(rng, 50)) {
		close(fd); /* EOF after the data */
		return;
	}
	R.clients[R.nclients++] = fd;
}

static void abort_random(struct stress_rng *rng)
{
	unsigned k = (unsigned)stress_below(rng, R.npairs + R.nacc);
	if (k < R.npairs) {
		atomic_store(&R.pairs[k].aborted, 1);
		weft_task_abort(R.pairs[k].join);
	} else {
		atomic_store(&R.accs[k - R.npairs].aborted, 1);
		weft_task_abort(R.accs[k - R.npairs].join);
	}
}

static void *controller_main(void *arg)
{
	struct stress_rng rng;
	(void)arg;
	stress_rng_init(&rng, 5000 + R.round_no);
	while (!atomic_load(&R.stop)) {
		unsigned dice = (unsigned)stress_below(&rng, 100);
		struct pair *p = &R.pairs[stress_below(&rng, R.npairs)];
		if (dice < 60) {
			if (!atomic_load(&p->wclosed))
				write_some(p, 1 + stress_below(&rng, 5000));
		} else if (dice < 66) {
			if (!atomic_exchange(&p->wclosed, 1))
				close(p->wfd);
		} else if (dice < 72) {
			client_connect(&rng);
		} else if (dice < 76) {
			abort_random(&rng);
		} else if (dice < 80) {
			sched_yield();
		}
	}
	return NULL;
}

static void *aborter_main(void *arg)
{
	struct stress_rng rng;
	(void)arg;
	stress_rng_init(&rng, 9000 + R.round_no);
	while (!atomic_load(&R.stop)) {
		stress_sleep_us((unsigned)stress_below(&rng, 2000));
		abort_random(&rng);
	}
	return NULL;
}

/* --- one round --------------------------------------------------------- */

enum end_mode { END_EOF, END_ABORT_ALL, END_SHUTDOWN };

static void run_round(struct stress_rng *rng)
{
	unsigned workers = 1 + (unsigned)stress_below(rng, 4);
	bool no_lifo = stress_chance(rng, 50);
	enum end_mode mode = (enum end_mode)stress_below(rng, 3);
	memset(&R.pairs, 0, sizeof(R.pairs));
	memset(&R.accs, 0, sizeof(R.accs));
	R.npairs = 4 + (unsigned)stress_below(rng, MAX_PAIRS - 3);
	R.nacc = 1 + (unsigned)stress_below(rng, MAX_ACCEPTORS);
	R.nclients = 0;
	R.nconnects = 0;
	atomic_store(&R.stop, false);
	atomic_store(&R.data_errors, 0);

	R.rt = stress_runtime(workers, no_lifo);
	R.lfd = weft_tcp_listen("127.0.0.1", 0, 4 * MAX_CLIENTS);
	STRESS_CHECK(R.lfd >= 0, "listen: %s", weft_strerror(R.lfd));
	R.port = (uint16_t)weft_tcp_local_port(R.lfd);

	stress_set_phase("spawn");
	for (unsigned i = 0; i < R.npairs; i++) {
		struct pair *p = &R.pairs[i];
		int sv[2];
		STRESS_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
					sv) == 0,
			     "socketpair");
		p->rfd = sv[0];
		p->wfd = sv[1];
		struct receiver r = { .idx = (int)i, .fd = p->rfd };
		STRESS_CHECK(weft_spawn(R.rt, &receiver_desc, &r, &p->join) ==
				     0,
			     "spawn receiver");
	}
	for (unsigned i = 0; i < R.nacc; i++) {
		struct acceptor a = { .idx = (int)i, .lfd = R.lfd, .fd = -1 };
		STRESS_CHECK(weft_spawn(R.rt, &acceptor_desc, &a,
					&R.accs[i].join) == 0,
			     "spawn acceptor");
	}

	stress_set_phase("chaos");
	pthread_t ctl, ab;
	STRESS_CHECK(pthread_create(&ctl, NULL, controller_main, NULL) == 0,
		     "pthread_create");
	STRESS_CHECK(pthread_create(&ab, NULL, aborter_main, NULL) == 0,
		     "pthread_create");
	stress_sleep_us(5000 + (unsigned)stress_below(rng, 40000));
	atomic_store(&R.stop, true);
	pthread_join(ctl, NULL);
	pthread_join(ab, NULL);
	stress_progress();

	stress_set_phase("end");
	switch (mode) {
	case END_EOF:
		/* Close every writer and client: receivers see EOF;
		 * acceptors without a connection are aborted. */
		for (unsigned i = 0; i < R.npairs; i++)
			if (!atomic_exchange(&R.pairs[i].wclosed, 1))
				close(R.pairs[i].wfd);
		for (unsigned c = 0; c < R.nclients; c++)
			close(R.clients[c]);
		R.nclients = 0;
		break;
	case END_ABORT_ALL:
		for (unsigned i = 0; i < R.npairs; i++) {
			atomic_store(&R.pairs[i].aborted, 1);
			weft_task_abort(R.pairs[i].join);
		}
		for (unsigned i = 0; i < R.nacc; i++) {
			atomic_store(&R.accs[i].aborted, 1);
			weft_task_abort(R.accs[i].join);
		}
		break;
	case END_SHUTDOWN:
		/* With tasks blocked in recv and accept. */
		STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
		break;
	}

	stress_set_phase("join");
	for (unsigned i = 0; i < R.npairs; i++) {
		struct pair *p = &R.pairs[i];
		int64_t out = INT64_MIN;
		int st = stress_join_wait(p->join, &out);
		bool may_cancel = mode != END_EOF || atomic_load(&p->aborted);
		if (st == -ECANCELED) {
			STRESS_CHECK(may_cancel, "round %u pair %u cancelled "
				     "without abort", R.round_no, i);
		} else {
			STRESS_CHECK(st == 0, "pair %u: join %d", i, st);
			STRESS_CHECK(out >= 0, "pair %u: recv error %s", i,
				     weft_strerror((int)out));
			/* READY means EOF: everything written arrived. */
			STRESS_CHECK(atomic_load(&p->wclosed),
				     "pair %u: EOF without close", i);
			STRESS_CHECK((uint64_t)out == atomic_load(&p->written),
				     "pair %u: %" PRId64 " bytes of %" PRIu64,
				     i, out,
				     (uint64_t)atomic_load(&p->written));
		}
		weft_join_drop(p->join);
	}
	if (mode == END_EOF) {
		/* Acceptors still waiting for a connection: abort now. */
		for (unsigned i = 0; i < R.nacc; i++) {
			if (!weft_join_is_finished(R.accs[i].join)) {
				atomic_store(&R.accs[i].aborted, 1);
				weft_task_abort(R.accs[i].join);
			}
		}
	}
	for (unsigned i = 0; i < R.nacc; i++) {
		int64_t out = INT64_MIN;
		int st = stress_join_wait(R.accs[i].join, &out);
		if (st == -ECANCELED)
			STRESS_CHECK(mode != END_EOF ||
					     atomic_load(&R.accs[i].aborted),
				     "acceptor %u cancelled without abort", i);
		else
			STRESS_CHECK(st == 0 && out >= 0,
				     "acceptor %u: %d / %s", i, st,
				     weft_strerror((int)out));
		weft_join_drop(R.accs[i].join);
	}
	STRESS_CHECK(atomic_load(&R.data_errors) == 0,
		     "round %u: %d corrupted receives", R.round_no,
		     atomic_load(&R.data_errors));

	stress_set_phase("free");
	STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
	weft_runtime_free(R.rt);
	R.rt = NULL;
	for (unsigned i = 0; i < R.npairs; i++) {
		STRESS_CHECK(atomic_load(&R.pairs[i].drops) == 1,
			     "pair %u dropped %d times", i,
			     atomic_load(&R.pairs[i].drops));
		close(R.pairs[i].rfd);
		if (!atomic_load(&R.pairs[i].wclosed))
			close(R.pairs[i].wfd);
	}
	for (unsigned i = 0; i < R.nacc; i++)
		STRESS_CHECK(atomic_load(&R.accs[i].drops) == 1,
			     "acceptor %u dropped %d times", i,
			     atomic_load(&R.accs[i].drops));
	for (unsigned c = 0; c < R.nclients; c++)
		close(R.clients[c]);
	close(R.lfd);
	if (stress_verbose)
		printf("round %u: %u workers%s, %u pairs, %u acceptors, "
		       "end %d\n",
		       R.round_no, workers, no_lifo ? " (no LIFO)" : "",
		       R.npairs, R.nacc, (int)mode);
}

int main(int argc, char **argv)
{
	struct stress_rng rng;
	unsigned round;
	uint64_t rounds_max;

	stress_init("abort_recv_stress", argc, argv);
	rounds_max = stress_iters(STRESS_TSAN ? 150 : 300);
	stress_rng_init(&rng, 0);
	for (round = 0; round < rounds_max && stress_time_left(); round++) {
		R.round_no = round;
		run_round(&rng);
		stress_progress();
	}
	return stress_finish("%u rounds", round);
}
