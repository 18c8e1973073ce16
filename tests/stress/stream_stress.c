/* SPDX-License-Identifier: MIT */
/*
 * Stress for accept and recv streams (weft/multishot.h) on every rung.
 *
 * Each round: a runtime of 2-4 workers on a random rung (multishot or
 * not, buffer ring or not) and ring mode, with a small pool (8 x 64 B per worker, so
 * streams starve all the time). N TCP connections, each read by a task
 * polling a recv stream; a writer thread writes each connection's
 * pattern in random pieces (non-blocking), then shuts it down. Readers
 * check every byte in order, and do one of three things with each lent
 * buffer: give it back at once, hold it for a while, or hand it off to
 * be given back later by a plain thread or by another reader (on any
 * worker). Before a reader returns PENDING it hands off what it holds,
 * so buffers never wait on a task that waits for buffers. The
 * controller aborts random readers mid-stream. Meanwhile an accept
 * stream takes a few of the connections made to a listener and is then
 * aborted with the rest queued. The round ends with the writers done
 * and every surviving reader at its end of file with all its bytes, or
 * with a runtime shutdown under the readers' feet.
 *
 * Checks: the bytes of each stream arrive complete and in order; every
 * task's future is dropped exactly once; a reader ends only at end of
 * file (or -ECANCELED at shutdown); the process has the same descriptors
 * after each round as before (queued connections closed); the buffers
 * given back after the runtime was freed are fine (ASan), and nothing
 * leaks (LSan at exit: the last release frees a pool).
 *
 * Usage: stream_stress [seed [seconds]]: a longer run is as many rounds
 * as fit in @seconds (default 8, 12 under a sanitizer, at most 400 or 150
 * rounds); WEFT_STRESS_SCALE / _SECONDS: stress.h.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <weft.h>
#include <weft/multishot.h>

#include "stress.h"

#define MAX_CONNS 12
#define MAX_CLIENTS 12
#define MAX_LEN (48 * 1024)
#define HOLD_MAX 2

static const unsigned rungs[] = { 0, WEFT_RT_NO_MULTISHOT,
				  WEFT_RT_NO_BUF_RING,
				  WEFT_RT_NO_MULTISHOT | WEFT_RT_NO_BUF_RING };

/* With deferred task work the kernel posts nothing until the owner
 * enters; the other modes post completions at any moment, so more of
 * them race a drop. */
static const unsigned ring_modes[] = { 0, WEFT_RT_NO_DEFER_TASKRUN,
				       WEFT_RT_NO_COOP_TASKRUN };

static inline unsigned char pattern(unsigned conn, uint64_t k)
{
	return (unsigned char)(k * 131u + (k >> 8) * 7u + conn * 29u + 1u);
}

/* --- buffers handed off: given back later by the releaser thread, or
 * earlier by any reader that passes by ----------------------------------- */

#define HANDOFF_CAP 1024

static struct {
	pthread_mutex_t mu;
	weft_buf bufs[HANDOFF_CAP];
	uint64_t due[HANDOFF_CAP];
	unsigned head, count;
	atomic_bool stop;
	atomic_uint_fast64_t by_thread, by_task;
} H = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void handoff(weft_buf *b, unsigned delay_us)
{
	pthread_mutex_lock(&H.mu);
	if (H.count == HANDOFF_CAP) {
		pthread_mutex_unlock(&H.mu);
		weft_buf_release(b);
		return;
	}
	unsigned i = (H.head + H.count++) % HANDOFF_CAP;
	H.bufs[i] = *b;
	H.due[i] = stress_now_ns() + (uint64_t)delay_us * 1000u;
	pthread_mutex_unlock(&H.mu);
	*b = (weft_buf)WEFT_BUF_INIT;
}

/* Take the oldest handed-off buffer, if any (due or not with @any). */
static bool handoff_take(weft_buf *b, bool any)
{
	bool got = false;

	pthread_mutex_lock(&H.mu);
	if (H.count && (any || H.due[H.head] <= stress_now_ns())) {
		*b = H.bufs[H.head];
		H.head = (H.head + 1) % HANDOFF_CAP;
		H.count--;
		got = true;
	}
	pthread_mutex_unlock(&H.mu);
	return got;
}

static void *releaser_main(void *arg)
{
	weft_buf b;

	(void)arg;
	while (!atomic_load(&H.stop)) {
		while (handoff_take(&b, false)) {
			weft_buf_release(&b);
			atomic_fetch_add(&H.by_thread, 1);
		}
		stress_sleep_us(200);
	}
	while (handoff_take(&b, true))
		weft_buf_release(&b);
	return NULL;
}

/* --- a round --------------------------------------------------------------- */

struct conn {
	int rfd, wfd;              /* reader (task) side, writer side */
	uint64_t len;              /* bytes the writer sends */
	uint64_t written;          /* writer thread only */
	atomic_uint_fast64_t got;  /* bytes the reader checked */
	atomic_int abandoned;      /* aborted: the writer stops */
	atomic_int drops;
	atomic_int eof;
	bool aborted;
	weft_join *join;
};

static struct round {
	weft_runtime *rt;
	unsigned flags, workers, nconns;
	struct conn c[MAX_CONNS];
	atomic_bool writer_stop;
	int lfd;
	uint16_t port;
	int clients[MAX_CLIENTS];
	unsigned nclients;
	atomic_int acc_drops, acc_taken;
	weft_join *acc_join;
} R;

static atomic_uint_fast64_t total_bytes, total_items, total_aborts,
	total_shutdowns, total_queued_closed;

/* Reader: a recv stream to its end of file. Output 0, or the stream's
 * error. */
struct reader {
	unsigned idx;
	bool inited;
	weft_recv_stream s;
	weft_buf held[HOLD_MAX];
	unsigned nheld;
	uint64_t off;
	unsigned nexts;
	struct stress_rng rng;
};

static void reader_hand_off_held(struct reader *r)
{
	while (r->nheld)
		handoff(&r->held[--r->nheld],
			(unsigned)stress_below(&r->rng, 2000));
}

static weft_poll reader_poll(void *self, weft_cx *cx, void *out)
{
	struct reader *r = self;
	struct conn *c = &R.c[r->idx];
	weft_buf b = WEFT_BUF_INIT;
	int64_t res;

	if (!r->inited) {
		STRESS_CHECK(weft_recv_stream_init(&r->s, c->rfd) == 0,
			     "init");
		r->inited = true;
	}
	for (unsigned items = 0;; items++) {
		/* Give back someone else's buffer now and then (any
		 * worker's pool, from this one). */
		if (stress_chance(&r->rng, 20) && handoff_take(&b, true)) {
			weft_buf_release(&b);
			atomic_fetch_add(&H.by_task, 1);
		}
		if (items >= 16) { /* let the others run */
			reader_hand_off_held(r);
			weft_waker_wake_by_ref(cx->waker);
			return WEFT_PENDING;
		}
		if (weft_recv_stream_next(&r->s, cx, &b, &res) ==
		    WEFT_PENDING) {
			reader_hand_off_held(r);
			return WEFT_PENDING;
		}
		r->nexts++;
		if (res <= 0) {
			STRESS_CHECK(!b.data, "a buffer with the end");
			reader_hand_off_held(r);
			if (res == 0)
				atomic_store(&c->eof, 1);
			*(int64_t *)out = res;
			return WEFT_READY;
		}
		STRESS_CHECK(b.data && b.len == (size_t)res, "len %zu res %lld",
			     b.len, (long long)res);
		for (int64_t k = 0; k < res; k++)
			if (((unsigned char *)b.data)[k] !=
			    pattern(r->idx, r->off + (uint64_t)k))
				stress_fail("conn %u: byte %llu differs "
					    "(rung %#x)", r->idx,
					    (unsigned long long)(r->off +
								 (uint64_t)k),
					    R.flags);
		r->off += (uint64_t)res;
		atomic_store(&c->got, r->off);
		atomic_fetch_add_explicit(&total_items, 1,
					  memory_order_relaxed);
		stress_progress();
		switch (stress_below(&r->rng, 4)) {
		case 0:
		case 1:
			weft_buf_release(&b);
			break;
		case 2:
			if (r->nheld < HOLD_MAX) {
				r->held[r->nheld++] = b;
				break;
			}
			/* fall through */
		default:
			handoff(&b, (unsigned)stress_below(&r->rng, 3000));
			break;
		}
	}
}

static void reader_drop(void *self)
{
	struct reader *r = self;

	while (r->nheld)
		weft_buf_release(&r->held[--r->nheld]);
	if (r->inited)
		weft_recv_stream_drop(&r->s);
	atomic_fetch_add(&R.c[r->idx].drops, 1);
}

static const weft_future_desc reader_desc = {
	.poll = reader_poll,
	.drop = reader_drop,
	.size = sizeof(struct reader),
	.output_size = sizeof(int64_t),
};

/* Acceptor: takes @take connections (closing them), then waits forever
 * with the stream armed, the others queueing, until aborted. */
struct acceptor {
	int lfd;
	unsigned take;
	bool inited;
	weft_accept_stream s;
};

static weft_poll acceptor_poll(void *self, weft_cx *cx, void *out)
{
	struct acceptor *a = self;
	int fd;

	(void)out;
	if (!a->inited) {
		STRESS_CHECK(weft_accept_stream_init(&a->s, a->lfd) == 0,
			     "init");
		a->inited = true;
	}
	while (atomic_load(&R.acc_taken) < (int)a->take) {
		if (weft_accept_stream_next(&a->s, cx, &fd) == WEFT_PENDING)
			return WEFT_PENDING;
		STRESS_CHECK(fd >= 0 || fd == -ECANCELED, "accept: %d", fd);
		if (fd < 0)
			return WEFT_READY;
		close(fd);
		atomic_fetch_add(&R.acc_taken, 1);
		stress_progress();
	}
	return WEFT_PENDING; /* nobody wakes us: aborted from outside */
}

static void acceptor_drop(void *self)
{
	struct acceptor *a = self;

	if (a->inited)
		weft_accept_stream_drop(&a->s);
	atomic_fetch_add(&R.acc_drops, 1);
}

static const weft_future_desc acceptor_desc = {
	.poll = acceptor_poll,
	.drop = acceptor_drop,
	.size = sizeof(struct acceptor),
	.output_size = sizeof(int64_t),
};

/* --- the writer thread ----------------------------------------------------- */

static void *writer_main(void *arg)
{
	struct stress_rng rng;
	unsigned char buf[2048];

	stress_rng_init(&rng, (uint64_t)(uintptr_t)arg);
	while (!atomic_load(&R.writer_stop)) {
		bool busy = false;

		for (unsigned i = 0; i < R.nconns; i++) {
			struct conn *c = &R.c[i];

			if (c->wfd < 0 || atomic_load(&c->abandoned))
				continue;
			if (c->written == c->len) {
				shutdown(c->wfd, SHUT_WR);
				c->wfd = -c->wfd - 2; /* done; closed later */
				continue;
			}
			busy = true;
			size_t n = 1 + stress_below(&rng, sizeof(buf));
			if (n > c->len - c->written)
				n = (size_t)(c->len - c->written);
			for (size_t k = 0; k < n; k++)
				buf[k] = pattern(i, c->written + k);
			ssize_t w = send(c->wfd, buf, n,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				c->written += (uint64_t)w;
			else
				STRESS_CHECK(errno == EAGAIN, "send: %s",
					     strerror(errno));
		}
		if (!busy)
			break;
		if (stress_chance(&rng, 10))
			stress_sleep_us((unsigned)stress_below(&rng, 300));
	}
	return NULL;
}

/* --- plumbing ---------------------------------------------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	STRESS_CHECK(d, "opendir: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

static int listener(uint16_t *port)
{
	int l = weft_tcp_listen("127.0.0.1", 0, 64);

	STRESS_CHECK(l >= 0, "listen: %s", weft_strerror(l));
	*port = (uint16_t)weft_tcp_local_port(l);
	return l;
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	STRESS_CHECK(fd >= 0, "socket: %s", strerror(errno));
	STRESS_CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0,
		     "connect: %s", strerror(errno));
	return fd;
}

static void tcp_pair(int *a, int *b)
{
	uint16_t port;
	int l = listener(&port);

	*a = connect_to(port);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	STRESS_CHECK(*b >= 0, "accept4: %s", strerror(errno));
	close(l);
}

static void *connector_main(void *arg)
{
	struct stress_rng rng;

	stress_rng_init(&rng, (uint64_t)R.nclients * 7919u + R.port);
	for (unsigned i = (unsigned)(uintptr_t)arg; i < R.nclients; i++) {
		R.clients[i] = connect_to(R.port);
		stress_sleep_us((unsigned)stress_below(&rng, 300));
	}
	return NULL;
}

static weft_runtime *round_runtime(unsigned workers, unsigned flags)
{
	weft_runtime_config cfg;
	weft_runtime *rt;

	weft_runtime_config_init(&cfg);
	cfg.workers = workers;
	cfg.flags = flags;
	cfg.buf_count = 8;
	cfg.buf_size = 64;
	int err = weft_runtime_new(&cfg, &rt);
	if (err == -EPERM || err == -ENOSYS)
		stress_skip("io_uring unavailable: %s", weft_strerror(err));
	STRESS_CHECK(err == 0, "weft_runtime_new: %s", weft_strerror(err));
	return rt;
}

static void run_round(unsigned round_no, struct stress_rng *rng)
{
	int base = count_fds();
	bool by_shutdown = stress_chance(rng, 35);
	pthread_t writer;
	uint16_t port;

	memset(&R, 0, sizeof(R));
	R.workers = 2 + (unsigned)stress_below(rng, 3);
	R.flags = rungs[stress_below(rng, 4)] | ring_modes[stress_below(rng, 3)];
	R.nconns = 4 + (unsigned)stress_below(rng, MAX_CONNS - 3);
	R.rt = round_runtime(R.workers, R.flags);
	stress_set_phase("readers");
	for (unsigned i = 0; i < R.nconns; i++) {
		struct conn *c = &R.c[i];
		struct reader r = { .idx = i };

		tcp_pair(&c->wfd, &c->rfd);
		c->len = 1 + stress_below(rng, MAX_LEN);
		stress_rng_init(&r.rng, (uint64_t)round_no * 1000 + i);
		STRESS_CHECK(weft_spawn(R.rt, &reader_desc, &r, &c->join) == 0,
			     "spawn");
	}
	STRESS_CHECK(pthread_create(&writer, NULL, writer_main,
				    (void *)(uintptr_t)(round_no + 1)) == 0,
		     "writer thread");

	/* An accept stream that takes a few and is aborted with the rest
	 * queued (or still in the backlog). */
	stress_set_phase("acceptor");
	R.lfd = listener(&port);
	struct acceptor a = { .lfd = R.lfd };
	R.nclients = 1 + (unsigned)stress_below(rng, MAX_CLIENTS);
	a.take = (unsigned)stress_below(rng, R.nclients + 1);
	STRESS_CHECK(weft_spawn(R.rt, &acceptor_desc, &a, &R.acc_join) == 0,
		     "spawn");
	/* The first it takes; the rest come while it is being aborted, so
	 * some are accepted around the cancel (after the drop). */
	for (unsigned i = 0; i < a.take; i++)
		R.clients[i] = connect_to(port);
	pthread_t connector;
	R.port = port;
	STRESS_CHECK(pthread_create(&connector, NULL, connector_main,
				    (void *)(uintptr_t)a.take) == 0,
		     "connector thread");
	stress_sleep_us((unsigned)stress_below(rng, 1500));
	weft_task_abort(R.acc_join);
	pthread_join(connector, NULL);

	/* Abort random readers mid-stream. */
	stress_set_phase("aborts");
	unsigned naborts = (unsigned)stress_below(rng, R.nconns / 2 + 1);
	for (unsigned k = 0; k < naborts; k++) {
		struct conn *c = &R.c[stress_below(rng, R.nconns)];

		stress_sleep_us((unsigned)stress_below(rng, 3000));
		if (c->aborted)
			continue;
		c->aborted = true;
		atomic_store(&c->abandoned, 1);
		weft_task_abort(c->join);
		atomic_fetch_add(&total_aborts, 1);
	}
	stress_sleep_us((unsigned)stress_below(rng, 5000));

	if (by_shutdown) {
		stress_set_phase("shutdown");
		stress_sleep_us((unsigned)stress_below(rng, 20000));
		STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
		atomic_store(&R.writer_stop, true);
		atomic_fetch_add(&total_shutdowns, 1);
	}
	pthread_join(writer, NULL);

	stress_set_phase("joins");
	for (unsigned i = 0; i < R.nconns; i++) {
		struct conn *c = &R.c[i];
		int64_t res = INT64_MIN;
		int st = stress_join_wait(c->join, &res);

		weft_join_drop(c->join);
		if (st == -ECANCELED) {
			STRESS_CHECK(c->aborted || by_shutdown,
				     "conn %u cancelled, never aborted", i);
			continue;
		}
		STRESS_CHECK(st == 0, "conn %u: join %d", i, st);
		if (res == -ECANCELED && by_shutdown)
			continue;
		STRESS_CHECK(res == 0, "conn %u (rung %#x): ended with %lld",
			     i, R.flags, (long long)res);
		STRESS_CHECK(atomic_load(&c->eof), "conn %u: no end", i);
		STRESS_CHECK(atomic_load(&c->got) == c->len,
			     "conn %u: %llu of %llu bytes", i,
			     (unsigned long long)atomic_load(&c->got),
			     (unsigned long long)c->len);
		atomic_fetch_add(&total_bytes, c->len);
	}
	int st = stress_join_wait(R.acc_join, NULL);
	STRESS_CHECK(st == -ECANCELED || st == 0, "acceptor join %d", st);
	weft_join_drop(R.acc_join);
	if (!by_shutdown)
		STRESS_CHECK(weft_runtime_shutdown(R.rt) == 0, "shutdown");
	weft_runtime_free(R.rt);

	/* Every future was dropped once; every descriptor is back. */
	for (unsigned i = 0; i < R.nconns; i++)
		STRESS_CHECK(atomic_load(&R.c[i].drops) == 1,
			     "conn %u dropped %d times", i,
			     atomic_load(&R.c[i].drops));
	STRESS_CHECK(atomic_load(&R.acc_drops) == 1, "acceptor drops %d",
		     atomic_load(&R.acc_drops));
	int queued = count_fds() - base -
		     2 * (int)R.nconns - (int)R.nclients - 1;
	STRESS_CHECK(queued == 0,
		     "%d accepted descriptors left open (rung %#x, took %u "
		     "of %u)", queued, R.flags, a.take, R.nclients);
	atomic_fetch_add(&total_queued_closed,
			 R.nclients - (unsigned)atomic_load(&R.acc_taken));
	for (unsigned i = 0; i < R.nconns; i++) {
		struct conn *c = &R.c[i];

		close(c->rfd);
		close(c->wfd >= 0 ? c->wfd : -c->wfd - 2);
	}
	for (unsigned i = 0; i < R.nclients; i++)
		close(R.clients[i]);
	close(R.lfd);
	STRESS_CHECK(count_fds() == base, "%d descriptors left open",
		     count_fds() - base);
	if (stress_verbose)
		printf("round %u: rung %#x, %u workers, %u conns, %u aborts, "
		       "%s\n", round_no, R.flags, R.workers, R.nconns,
		       naborts, by_shutdown ? "shutdown" : "to the end");
}

int main(int argc, char **argv)
{
	pthread_t releaser;
	struct stress_rng rng;
	unsigned rounds = 0;

	stress_init("stream_stress", argc, argv);
	stress_rng_init(&rng, 0);
	STRESS_CHECK(pthread_create(&releaser, NULL, releaser_main, NULL) ==
			     0,
		     "releaser thread");
	uint64_t max_rounds = stress_iters(STRESS_SANITIZED ? 150 : 400);
	if (argc > 2 && atof(argv[2]) > 0) { /* a long run */
		stress_seconds = atof(argv[2]);
		max_rounds = UINT64_MAX;
	}
	do {
		run_round(rounds, &rng);
		rounds++;
		stress_progress();
	} while (rounds < max_rounds && stress_time_left());
	atomic_store(&H.stop, true);
	pthread_join(releaser, NULL);
	return stress_finish("%u rounds, %llu bytes checked in %llu items, "
			     "%llu readers aborted, %llu shutdowns, %llu "
			     "queued or backlogged connections dropped, "
			     "buffers given back by a thread %llu, by tasks "
			     "%llu",
			     rounds, (unsigned long long)total_bytes,
			     (unsigned long long)total_items,
			     (unsigned long long)total_aborts,
			     (unsigned long long)total_shutdowns,
			     (unsigned long long)total_queued_closed,
			     (unsigned long long)H.by_thread,
			     (unsigned long long)H.by_task);
}
