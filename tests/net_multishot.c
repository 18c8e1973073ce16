/* SPDX-License-Identifier: MIT */
/*
 * Streams (weft/multishot.h) on every rung: multishot, single-shot
 * submitted again (WEFT_RT_NO_MULTISHOT), and the plain recv into the
 * runtime's buffers (WEFT_RT_NO_BUF_RING). Accept streams take every
 * connection; recv streams deliver a byte pattern intact and in order
 * through a tiny pool that runs dry (the stream starves and goes on);
 * buffers released from another thread; EMFILE on accept backs off and
 * recovers.
 */
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/multishot.h>
#include <weft/time.h>

#include "fiber_helpers.h"
#include "net_helpers.h"

/* The configurations of helpers.h are not used: the rungs are. */
static WT_UNUSED const struct wt_cfg *unused_cfgs = wt_cfgs;

static const unsigned rungs[] = { 0, WEFT_RT_NO_MULTISHOT,
				  WEFT_RT_NO_BUF_RING,
				  WEFT_RT_NO_MULTISHOT | WEFT_RT_NO_BUF_RING };
#define NRUNGS (sizeof(rungs) / sizeof(rungs[0]))

static unsigned ring_entries; /* 0: the default */

static weft_runtime *rt_new(unsigned workers, unsigned flags,
			    unsigned buf_count, unsigned buf_size)
{
	weft_runtime_config c;
	weft_runtime *rt = NULL;

	weft_runtime_config_init(&c);
	c.ring_entries = ring_entries;
	c.workers = workers;
	c.flags = flags;
	c.buf_count = buf_count;
	c.buf_size = buf_size;
	int err = weft_runtime_new(&c, &rt);
	cr_assert_eq(err, 0, "weft_runtime_new: %s", weft_strerror(err));
	return rt;
}

static void metrics(weft_runtime *rt, weft_runtime_metrics *m)
{
	m->size = sizeof(*m);
	cr_assert_eq(weft_runtime_metrics_get(rt, m), 0);
}

static int connect_to(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	return fd;
}

/* ---- accept ---- */

struct acc {
	int lfd;
	int want;
	int got;
};

static void *accept_fiber(void *arg)
{
	struct acc *a = arg;
	weft_accept_stream s;

	FCHECK(weft_accept_stream_init(&s, a->lfd) == 0);
	while (a->got < a->want) {
		int fd = weft_co_accept_next(&s, (weft_now_ns() + 5000000000ull));
		FCHECK(fd >= 0, "accept_next: %d", fd);
		int nd = 0;
		socklen_t len = sizeof(nd);
		FCHECK(getsockopt(fd, SOL_SOCKET, SO_TYPE, &nd, &len) == 0);
		close(fd);
		a->got++;
	}
	weft_accept_stream_drop(&s);
	return NULL;
}

static void accept_many(unsigned flags, unsigned workers)
{
	weft_runtime *rt = rt_new(workers, flags, 0, 0);
	struct acc a = { .lfd = weft_tcp_listen("127.0.0.1", 0, 128),
			 .want = 50 };
	int port = weft_tcp_local_port(a.lfd), c[50];

	weft_join *j = wt_go(rt, accept_fiber, &a, "acceptor");
	for (int i = 0; i < 50; i++) {
		c[i] = connect_to(port);
		cr_assert_geq(c[i], 0);
	}
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(a.got, 50);
	weft_runtime_metrics m;
	metrics(rt, &m);
	if (flags & WEFT_RT_NO_MULTISHOT)
		cr_expect_geq(m.multishot_rearms, 49);
	else /* one multishot accept took them all: the rung was taken */
		cr_expect_lt(m.multishot_rearms, 5, "%llu rearms",
			     (unsigned long long)m.multishot_rearms);
	wt_rt_free(rt);
	for (int i = 0; i < 50; i++)
		close(c[i]);
	close(a.lfd);
}

WT_TEST_T(accept_stream, takes_every_connection, 60)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		for (unsigned w = 1; w <= 2; w++)
			accept_many(rungs[r], w);
}

/* ---- recv ---- */

#define PATTERN_LEN (256 * 1024)

static unsigned char pattern_byte(size_t i)
{
	return (unsigned char)((i * 131u + (i >> 9)) & 0xff);
}

struct rcv {
	int fd;
	size_t total;
	unsigned hold;   /* buffers kept before releasing them all */
	int end;         /* the stream's last result */
};

static void *recv_fiber(void *arg)
{
	struct rcv *r = arg;
	weft_recv_stream s;
	weft_buf held[64];
	unsigned nheld = 0;
	int64_t n;

	FCHECK(r->hold <= 64);
	FCHECK(weft_recv_stream_init(&s, r->fd) == 0);
	for (;;) {
		weft_buf b = WEFT_BUF_INIT;
		n = weft_co_recv_next(&s, &b, (weft_now_ns() + 10000000000ull));
		if (n <= 0)
			break;
		FCHECK(b.data && b.len == (size_t)n);
		for (int64_t i = 0; i < n; i++)
			FCHECK(((unsigned char *)b.data)[i] ==
				       pattern_byte(r->total + (size_t)i),
			       "byte %zu differs", r->total + (size_t)i);
		r->total += (size_t)n;
		held[nheld++] = b;
		if (nheld >= r->hold) {
			/* Hold them a while: the pool runs dry meanwhile. */
			if (r->hold > 1)
				weft_co_sleep(1000000);
			while (nheld)
				weft_buf_release(&held[--nheld]);
		}
	}
	while (nheld)
		weft_buf_release(&held[--nheld]);
	r->end = (int)n;
	weft_recv_stream_drop(&s);
	return NULL;
}

static void write_pattern(int fd, size_t len, unsigned seed)
{
	size_t off = 0;
	unsigned char buf[4096];

	while (off < len) {
		seed = seed * 1103515245u + 12345u;
		size_t n = 1 + (seed >> 8) % sizeof(buf);
		if (n > len - off)
			n = len - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern_byte(off + i);
		ssize_t w = write(fd, buf, n);
		cr_assert_gt(w, 0);
		off += (size_t)w;
	}
}

static void recv_pattern(unsigned flags, unsigned workers, unsigned nbufs,
			 unsigned size, unsigned hold)
{
	weft_runtime *rt = rt_new(workers, flags, nbufs, size);
	int a, b;

	wt_tcp_pair(&a, &b);
	struct rcv r = { .fd = b, .hold = hold, .end = 1 };
	weft_join *j = wt_go(rt, recv_fiber, &r, "receiver");
	write_pattern(a, PATTERN_LEN, flags * 7 + workers + hold);
	shutdown(a, SHUT_WR);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(r.end, 0, "stream ended with %d", r.end);
	cr_assert_eq(r.total, PATTERN_LEN);
	weft_runtime_metrics m;
	metrics(rt, &m);
	if (hold > 1 && nbufs <= hold)
		cr_expect_gt(m.bufring_enobufs, 0, "the pool never ran dry");
	/* A pool that never ran dry: one op, unless a burst filled more
	 * than the stream's cap of it before the reader took them (the
	 * stream then paused and received one buffer per SQE a while). */
	if (!flags && !nbufs && !m.stream_pauses)
		cr_expect_lt(m.multishot_rearms, 5, "%llu rearms",
			     (unsigned long long)m.multishot_rearms);
	wt_rt_free(rt);
	close(a);
	close(b);
}

WT_TEST_T(recv_stream, pattern_intact_default_pool, 60)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		recv_pattern(rungs[r], 2, 0, 0, 1);
}

WT_TEST_T(recv_stream, pattern_intact_through_a_dry_pool, 60)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		for (unsigned w = 1; w <= 2; w++)
			recv_pattern(rungs[r], w, 4, 64, 4);
}

/* ==== helpers for the tests below ==== */

#define FOR_RUNGS_WORKERS(r, w)                      \
	for (unsigned r = 0; r < NRUNGS; r++)        \
		for (unsigned w = 1; w <= 2; w++)

static uint64_t in_ms(unsigned ms)
{
	return weft_now_ns() + (uint64_t)ms * WT_MS;
}

/* The descriptors this process has open. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Test thread: wait (5 s at most) until count_fds() is @want. */
static int wait_fds(int want)
{
	uint64_t dl = wt_mono_ns() + 5000 * WT_MS;
	int n;

	while ((n = count_fds()) != want && wt_mono_ns() < dl)
		wt_sleep_ms(1);
	return n;
}

/* Test thread: wait (5 s at most) until the metric at @off is >= @want;
 * returns its last value. */
static uint64_t wait_metric(weft_runtime *rt, size_t off, uint64_t want)
{
	uint64_t dl = wt_mono_ns() + 5000 * WT_MS, v;
	weft_runtime_metrics m;

	for (;;) {
		metrics(rt, &m);
		memcpy(&v, (char *)&m + off, sizeof(v));
		if (v >= want || wt_mono_ns() >= dl)
			return v;
		wt_sleep_ms(1);
	}
}
#define WAIT_METRIC(rt, field, want) \
	wait_metric((rt), offsetof(weft_runtime_metrics, field), (want))

/* Fiber: wait until the test thread moved *@v to @want. */
static void fwait(atomic_int *v, int want)
{
	while (atomic_load(v) < want)
		FCHECK(weft_co_sleep(WT_MS) == 0);
}

/* Check @n received bytes against the pattern at offset @off. */
static void fcheck_pattern(const weft_buf *b, int64_t n, size_t off)
{
	FCHECK(b->data && b->len == (size_t)n, "len %zu, res %lld", b->len,
	       (long long)n);
	for (int64_t i = 0; i < n; i++)
		FCHECK(((unsigned char *)b->data)[i] ==
			       pattern_byte(off + (size_t)i),
		       "byte %zu differs", off + (size_t)i);
}

/* Receive the pattern to its end (0) on @s; returns the bytes. */
static size_t frecv_pattern(weft_recv_stream *s)
{
	size_t total = 0;

	for (;;) {
		weft_buf b = WEFT_BUF_INIT;
		int64_t n = weft_co_recv_next(s, &b, in_ms(10000));

		if (n <= 0) {
			FCHECK(n == 0, "stream ended with %lld", (long long)n);
			FCHECK(!b.data, "a buffer lent with the end");
			return total;
		}
		fcheck_pattern(&b, n, total);
		total += (size_t)n;
		weft_buf_release(&b);
	}
}

static void abortive_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
		     0);
	close(fd);
}

/* ==== dropping a stream gives back what its queue holds ==== */

struct accq {
	int lfd;
	atomic_int step; /* fiber 1: armed and took one; test 2: drop */
};

static void *accept_then_hold(void *arg)
{
	struct accq *a = arg;
	weft_accept_stream s;

	FCHECK(weft_accept_stream_init(&s, a->lfd) == 0);
	int fd = weft_co_accept_next(&s, in_ms(5000));
	FCHECK(fd >= 0, "accept_next: %d", fd);
	close(fd);
	atomic_store(&a->step, 1);
	fwait(&a->step, 2); /* connections queue in the stream meanwhile */
	weft_accept_stream_drop(&s);
	return NULL;
}

#define NQUEUED 8
#define SMALL_PATTERN (32 * 1024)

static void accept_drop_queued(unsigned flags, unsigned workers)
{
	int base = count_fds();
	weft_runtime *rt = rt_new(workers, flags, 0, 0);
	struct accq a = { .lfd = weft_tcp_listen("127.0.0.1", 0, 64) };
	int port = weft_tcp_local_port(a.lfd), c0, c[NQUEUED];

	weft_join *j = wt_go(rt, accept_then_hold, &a, "acceptor");
	c0 = connect_to(port);
	cr_assert_geq(c0, 0);
	cr_assert_eq(wt_wait_atomic_ge(&a.step, 1, 5000), 1);
	int before = count_fds();
	for (int i = 0; i < NQUEUED; i++) {
		c[i] = connect_to(port);
		cr_assert_geq(c[i], 0);
	}
	/* The stream's op stays armed, so it accepts them at once: each
	 * shows up as a descriptor of ours, queued for a next nobody
	 * calls. */
	cr_assert_eq(wait_fds(before + 2 * NQUEUED), before + 2 * NQUEUED,
		     "rung %#x, %u workers: not all accepted", flags,
		     workers);
	atomic_store(&a.step, 2);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	/* The drop closed them before it returned. */
	cr_assert_eq(count_fds(), before + NQUEUED,
		     "rung %#x, %u workers: queued fds left open", flags,
		     workers);
	wt_rt_free(rt);
	for (int i = 0; i < NQUEUED; i++)
		close(c[i]);
	close(c0);
	close(a.lfd);
	cr_assert_eq(count_fds(), base);
}

WT_TEST_T(accept_stream, drop_closes_queued_connections, 60)
{
	FOR_RUNGS_WORKERS(r, w)
		accept_drop_queued(rungs[r], w);
}

/*
 * A stream dropped from a plain thread while its owner is busy: the
 * completions the kernel posts around the cancel (connections accepted,
 * data received into the pool) reach the record after it was orphaned
 * and must be released there, since nobody will take them. Which of
 * them come before the cancel depends on the ring mode: with deferred
 * task work the kernel accepts nothing until the owner enters, so the
 * coop and plain modes are the ones that post them early.
 */
static const unsigned ring_modes[] = { 0, WEFT_RT_NO_DEFER_TASKRUN,
				       WEFT_RT_NO_COOP_TASKRUN };
#define NMODES (sizeof(ring_modes) / sizeof(ring_modes[0]))

struct poll_once {
	weft_accept_stream *as; /* one of the two */
	weft_recv_stream *rs;
	atomic_int *polled;
};

static weft_poll poll_once_poll(void *self, weft_cx *cx, void *out)
{
	struct poll_once *p = self;
	weft_buf b = WEFT_BUF_INIT;
	int64_t res = 0;
	int fd = 0;

	if (p->as)
		WT_CHECK(weft_accept_stream_next(p->as, cx, &fd) ==
				 WEFT_PENDING, "fd %d", fd);
	else
		WT_CHECK(weft_recv_stream_next(p->rs, cx, &b, &res) ==
				 WEFT_PENDING, "res %lld", (long long)res);
	atomic_store(p->polled, 1);
	*(int64_t *)out = 0;
	return WEFT_READY;
}

static const weft_future_desc poll_once_desc = {
	.poll = poll_once_poll,
	.size = sizeof(struct poll_once),
	.output_size = sizeof(int64_t),
};

static atomic_int busy_started;

static int64_t busy_worker(void *arg)
{
	(void)arg;
	atomic_store(&busy_started, 1);
	wt_sleep_ms(100); /* blocks the worker: no reap meanwhile */
	return 0;
}

/* Arm the stream in @po on @rt's one worker, then block that worker
 * with a task; returns the busy task. */
static weft_join *arm_then_block(weft_runtime *rt, struct poll_once *po)
{
	static struct wt_call busy = { busy_worker, NULL };
	weft_join *j, *jb;
	int st;

	atomic_store(&busy_started, 0);
	wt_spawn(rt, &poll_once_desc, po, &j);
	wt_join_wait(j, &st, NULL);
	weft_join_drop(j);
	cr_assert_eq(atomic_load(po->polled), 1);
	wt_spawn(rt, &wt_call_desc, &busy, &jb);
	cr_assert_eq(wt_wait_atomic_ge(&busy_started, 1, 5000), 1);
	return jb;
}

static void accept_drop_remote(unsigned flags)
{
	int base = count_fds();
	weft_runtime *rt = rt_new(1, flags, 0, 0);
	int lfd = weft_tcp_listen("127.0.0.1", 0, 64);
	int port = weft_tcp_local_port(lfd), c[NQUEUED];
	weft_accept_stream s;
	atomic_int polled = 0;
	struct poll_once po = { .as = &s, .polled = &polled };
	int st;

	cr_assert_eq(weft_accept_stream_init(&s, lfd), 0);
	weft_join *jb = arm_then_block(rt, &po);
	for (int i = 0; i < NQUEUED; i++) {
		c[i] = connect_to(port);
		cr_assert_geq(c[i], 0);
	}
	wt_sleep_ms(10); /* accepted, where the ring mode lets the kernel */
	weft_accept_stream_drop(&s); /* the owner is busy: via its inbox */
	wt_join_wait(jb, &st, NULL);
	weft_join_drop(jb);
	wt_rt_free(rt);
	for (int i = 0; i < NQUEUED; i++)
		close(c[i]);
	close(lfd);
	cr_assert_eq(count_fds(), base, "flags %#x: accepted fds left open",
		     flags);
}

WT_TEST_T(accept_stream, drop_from_a_plain_thread_closes_late_arrivals, 30)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		for (unsigned m = 0; m < NMODES; m++)
			accept_drop_remote(rungs[r] | ring_modes[m]);
}

static void *recv_all(void *arg)
{
	weft_recv_stream s;
	size_t *total = arg;

	FCHECK(weft_recv_stream_init(&s, (int)*total) == 0);
	*total = frecv_pattern(&s);
	weft_recv_stream_drop(&s);
	return NULL;
}

static void recv_drop_remote(unsigned flags)
{
	/* One buffer: lose it and the next stream starves for good. */
	weft_runtime *rt = rt_new(1, flags, 1, 64);
	int a1, b1, a2, b2, st;
	unsigned char junk[1024];
	weft_recv_stream s;
	atomic_int polled = 0;
	struct poll_once po = { .rs = &s, .polled = &polled };

	wt_tcp_pair(&a1, &b1);
	wt_tcp_pair(&a2, &b2);
	memset(junk, 0x5a, sizeof(junk));
	cr_assert_eq(weft_recv_stream_init(&s, b1), 0);
	weft_join *jb = arm_then_block(rt, &po);
	for (int i = 0; i < 16; i++) { /* one buffer each, if it can */
		cr_assert_eq(write(a1, junk, 64), 64);
		wt_sleep_ms(1);
	}
	weft_recv_stream_drop(&s);
	wt_join_wait(jb, &st, NULL);
	weft_join_drop(jb);
	/* The one pool must carry a whole pattern now. */
	size_t total = (size_t)b2;
	weft_join *j = wt_go(rt, recv_all, &total, "receiver");
	write_pattern(a2, SMALL_PATTERN, flags);
	shutdown(a2, SHUT_WR);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(total, SMALL_PATTERN);
	wt_rt_free(rt);
	close(a1);
	close(b1);
	close(a2);
	close(b2);
}

WT_TEST_T(recv_stream, drop_from_a_plain_thread_gives_late_buffers_back, 60)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		for (unsigned m = 0; m < NMODES; m++)
			recv_drop_remote(rungs[r] | ring_modes[m]);
}

struct rdrop {
	int fd1, fd2;
	atomic_int step; /* fiber 1: first armed; test 2: drop; fiber 3 */
	size_t total;
	int w1, w2;      /* the workers that polled each stream first */
};

static void *recv_drop_then_again(void *arg)
{
	struct rdrop *r = arg;
	weft_recv_stream s;
	weft_buf b = WEFT_BUF_INIT;
	int64_t n;

	FCHECK(weft_recv_stream_init(&s, r->fd1) == 0);
	r->w1 = weft_worker_index();
	n = weft_co_recv_next(&s, &b, in_ms(1)); /* arms it; nothing came */
	FCHECK(n == -ETIMEDOUT, "%lld", (long long)n);
	atomic_store(&r->step, 1);
	fwait(&r->step, 2); /* the pool fills with data nobody takes */
	weft_recv_stream_drop(&s);
	/* The same pool serves a second stream only if the drop gave the
	 * buffers back. */
	FCHECK(weft_recv_stream_init(&s, r->fd2) == 0);
	r->w2 = weft_worker_index();
	atomic_store(&r->step, 3);
	r->total = frecv_pattern(&s);
	weft_recv_stream_drop(&s);
	return NULL;
}

static void recv_drop_queued(unsigned flags, unsigned workers)
{
	weft_runtime *rt = rt_new(workers, flags, 4, 64);
	int a1, b1, a2, b2;
	unsigned char junk[1024];

	wt_tcp_pair(&a1, &b1);
	wt_tcp_pair(&a2, &b2);
	memset(junk, 0x5a, sizeof(junk));
	struct rdrop r = { .fd1 = b1, .fd2 = b2 };
	weft_join *j = wt_go(rt, recv_drop_then_again, &r, "receiver");
	cr_assert_eq(wt_wait_atomic_ge(&r.step, 1, 5000), 1);
	cr_assert_eq(write(a1, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	/* Four buffers queued, then no buffer for the rest: the stream
	 * starves, or pauses first at its cap (stream_buf_max, 4 here). */
	uint64_t dl = wt_mono_ns() + 5000 * WT_MS;
	weft_runtime_metrics m;
	do {
		wt_sleep_ms(1);
		metrics(rt, &m);
	} while (!m.bufring_enobufs && !m.stream_pauses && wt_mono_ns() < dl);
	cr_assert(m.bufring_enobufs || m.stream_pauses,
		  "rung %#x: the pool never ran dry", flags);
	atomic_store(&r.step, 2);
	cr_assert_eq(wt_wait_atomic_ge(&r.step, 3, 5000), 3);
	write_pattern(a2, SMALL_PATTERN, flags + workers);
	shutdown(a2, SHUT_WR);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(r.total, SMALL_PATTERN);
	cr_log_info("rung %#x, %u workers: streams first polled on %d, %d",
		    flags, workers, r.w1, r.w2);
	wt_rt_free(rt);
	close(a1);
	close(b1);
	close(a2);
	close(b2);
}

WT_TEST_T(recv_stream, drop_gives_back_queued_buffers, 60)
{
	FOR_RUNGS_WORKERS(r, w)
		recv_drop_queued(rungs[r], w);
}

/* ==== buffers given back from elsewhere ==== */

/* Buffers the receiver hands to a plain thread, which gives them back
 * once the stream has starved. */
struct relq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	weft_buf bufs[16];
	unsigned n;
	bool done;
	weft_runtime *rt;
	int fd;
	size_t total;
	unsigned waits_cut; /* times the stream did not starve in 2 s */
};

static void *recv_hand_off(void *arg)
{
	struct relq *q = arg;
	weft_recv_stream s;

	FCHECK(weft_recv_stream_init(&s, q->fd) == 0);
	for (;;) {
		weft_buf b = WEFT_BUF_INIT;
		/* A deadline would wake the owner by itself: none, so only
		 * the giver's unpark can. */
		int64_t n = weft_co_recv_next(&s, &b, 0);

		if (n <= 0) {
			FCHECK(n == 0, "ended with %lld", (long long)n);
			break;
		}
		fcheck_pattern(&b, n, q->total);
		q->total += (size_t)n;
		pthread_mutex_lock(&q->mu);
		FCHECK(q->n < 16);
		q->bufs[q->n++] = b;
		pthread_cond_signal(&q->cv);
		pthread_mutex_unlock(&q->mu);
	}
	pthread_mutex_lock(&q->mu);
	q->done = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	weft_recv_stream_drop(&s);
	return NULL;
}

static void *releaser(void *arg)
{
	struct relq *q = arg;
	weft_buf mine[16];
	uint64_t seen = 0;

	for (;;) {
		unsigned n;

		pthread_mutex_lock(&q->mu);
		while (q->n < 4 && !q->done)
			pthread_cond_wait(&q->cv, &q->mu);
		n = q->n;
		memcpy(mine, q->bufs, n * sizeof(mine[0]));
		q->n = 0;
		bool done = q->done;
		pthread_mutex_unlock(&q->mu);
		if (!n && done)
			return NULL;
		if (!done) {
			/* All 4 are ours: the stream starves (at its next
			 * data or end) before they come back. */
			uint64_t v = WAIT_METRIC(q->rt, bufring_enobufs,
						 seen + 1);
			if (v <= seen)
				q->waits_cut++;
			seen = v;
		}
		while (n)
			weft_buf_release(&mine[--n]);
	}
}

static void recv_remote_release(unsigned flags, unsigned workers)
{
	weft_runtime *rt = rt_new(workers, flags, 4, 64);
	int a, b;
	pthread_t t;

	wt_tcp_pair(&a, &b);
	struct relq q = { .rt = rt, .fd = b };
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);
	cr_assert_eq(pthread_create(&t, NULL, releaser, &q), 0);
	weft_join *j = wt_go(rt, recv_hand_off, &q, "receiver");
	write_pattern(a, SMALL_PATTERN, flags + workers);
	shutdown(a, SHUT_WR);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	pthread_join(t, NULL);
	cr_assert_eq(q.total, SMALL_PATTERN);
	cr_expect_eq(q.waits_cut, 0, "rung %#x: %u waits for a starve cut",
		     flags, q.waits_cut);
	pthread_mutex_destroy(&q.mu);
	pthread_cond_destroy(&q.cv);
	wt_rt_free(rt);
	close(a);
	close(b);
}

WT_TEST_T(recv_stream, resumes_on_buffers_given_back_by_a_plain_thread, 90)
{
	FOR_RUNGS_WORKERS(r, w)
		recv_remote_release(rungs[r], w);
}

/* Buffers lent when the runtime is freed stay valid and are given back
 * afterwards (weft_buf_release's doc). */
struct late {
	int fd;
	weft_buf bufs[4];
	size_t lens[4];
	atomic_int step;
	int64_t last;
};

static void *recv_keep_four(void *arg)
{
	struct late *l = arg;
	weft_recv_stream s;
	size_t total = 0;

	FCHECK(weft_recv_stream_init(&s, l->fd) == 0);
	for (int i = 0; i < 4; i++) {
		int64_t n = weft_co_recv_next(&s, &l->bufs[i], in_ms(5000));
		FCHECK(n > 0, "%lld", (long long)n);
		fcheck_pattern(&l->bufs[i], n, total);
		l->lens[i] = (size_t)n;
		total += (size_t)n;
	}
	atomic_store(&l->step, 1);
	/* Starved (the pool is ours): waits until the shutdown. */
	weft_buf b = WEFT_BUF_INIT;
	l->last = weft_co_recv_next(&s, &b, 0);
	FCHECK(!b.data);
	weft_recv_stream_drop(&s);
	return NULL;
}

static void release_after_free(unsigned flags, unsigned workers)
{
	weft_runtime *rt = rt_new(workers, flags, 4, 64);
	int a, b;

	wt_tcp_pair(&a, &b);
	struct late l = { .fd = b };
	weft_join *j = wt_go(rt, recv_keep_four, &l, "receiver");
	write_pattern(a, 4096, 1);
	cr_assert_eq(wt_wait_atomic_ge(&l.step, 1, 5000), 1);
	cr_assert_geq(WAIT_METRIC(rt, bufring_enobufs, 1), 1);
	/* The shutdown ends the fiber, its stream still starved. */
	weft_join_drop(j);
	wt_rt_free(rt); /* the buffers are still lent: reachable, no leak */
	cr_assert_eq(l.last, -ECANCELED, "%lld", (long long)l.last);
	size_t total = 0;
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(l.bufs[i].len, l.lens[i]);
		for (size_t k = 0; k < l.lens[i]; k++)
			cr_assert_eq(((unsigned char *)l.bufs[i].data)[k],
				     pattern_byte(total + k));
		total += l.lens[i];
		weft_buf_release(&l.bufs[i]);
		cr_assert_null(l.bufs[i].data);
		weft_buf_release(&l.bufs[i]); /* twice: harmless */
	}
	weft_buf_release(NULL);
	wt_leak_check(); /* the last release freed the pool */
	close(a);
	close(b);
}

WT_TEST_T(recv_stream, buffers_released_after_the_runtime_is_freed, 60)
{
	FOR_RUNGS_WORKERS(r, w)
		release_after_free(rungs[r], w);
}

/* ==== the next futures under weft_timeout and select ==== */

struct tmo {
	int fd;
	size_t total;
	atomic_int timeouts;
};

/* Receive the pattern through nexts bounded by weft_timeout at 0-2 ms:
 * a next that times out is dropped and the stream goes on intact. */
static void *recv_under_timeouts(void *arg)
{
	struct tmo *t = arg;
	weft_recv_stream s;
	unsigned x = 1;

	FCHECK(weft_recv_stream_init(&s, t->fd) == 0);
	for (;;) {
		weft_recv_next n = { .stream = &s };
		weft_recv_item it = { .res = -1 };
		weft_future f;
		weft_timeout to;
		int res = 1;

		x = x * 1103515245u + 12345u;
		FCHECK(weft_future_init(&f, &weft_recv_next_desc, &n, &it) ==
		       0);
		FCHECK(weft_timeout_init(&to, &f, (x >> 8) % (2 * WT_MS)) ==
		       0);
		FCHECK(weft_await(&weft_timeout_desc, &to, &res) == 0);
		if (res == -ETIMEDOUT) {
			FCHECK(!it.buf.data);
			atomic_fetch_add(&t->timeouts, 1);
			continue;
		}
		FCHECK(res == 0, "%d", res);
		if (it.res <= 0) {
			FCHECK(it.res == 0, "%lld", (long long)it.res);
			break;
		}
		fcheck_pattern(&it.buf, it.res, t->total);
		t->total += (size_t)it.res;
		weft_buf_release(&it.buf);
	}
	weft_recv_stream_drop(&s);
	return NULL;
}

/* Write the pattern in small pieces with pauses, so that nexts time out
 * between them. */
static void write_pattern_slowly(int fd, size_t len, unsigned seed)
{
	size_t off = 0;
	unsigned char buf[512];

	while (off < len) {
		seed = seed * 1103515245u + 12345u;
		size_t n = 1 + (seed >> 8) % sizeof(buf);
		if (n > len - off)
			n = len - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern_byte(off + i);
		cr_assert_eq(write(fd, buf, n), (ssize_t)n);
		off += n;
		if ((seed >> 4) % 4 == 0)
			wt_sleep_ms(1);
	}
}

static void recv_timeouts(unsigned flags, unsigned workers)
{
	weft_runtime *rt = rt_new(workers, flags, 8, 256);
	int a, b;

	wt_tcp_pair(&a, &b);
	struct tmo t = { .fd = b };
	weft_join *j = wt_go(rt, recv_under_timeouts, &t, "receiver");
	/* The first nexts time out with nothing there. */
	cr_assert_geq(wt_wait_atomic_ge(&t.timeouts, 1, 5000), 1);
	write_pattern_slowly(a, SMALL_PATTERN, flags * 3 + workers);
	shutdown(a, SHUT_WR);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(t.total, SMALL_PATTERN);
	wt_rt_free(rt);
	close(a);
	close(b);
}

WT_TEST_T(recv_stream, timed_out_next_leaves_the_stream_intact, 90)
{
	FOR_RUNGS_WORKERS(r, w)
		recv_timeouts(rungs[r], w);
}

struct sel {
	int lfd;
	atomic_int step;
	int fd;
};

/* select(accept next, 20 ms sleep): the sleep wins while nobody comes,
 * the next wins once a connection came. */
static void *accept_select(void *arg)
{
	struct sel *sl = arg;
	weft_accept_stream s;
	size_t winner = 9;

	FCHECK(weft_accept_stream_init(&s, sl->lfd) == 0);
	for (int round = 0; round < 2; round++) {
		weft_accept_next n = { .stream = &s };
		weft_io sleep;
		int fd = -1;
		int64_t slept = 1;
		weft_future arms[2];
		weft_select se;

		FCHECK(weft_io_prep_sleep(&sleep, 20 * WT_MS) == 0);
		FCHECK(weft_future_init(&arms[0], &weft_accept_next_desc, &n,
					&fd) == 0);
		FCHECK(weft_future_init(&arms[1], &weft_io_desc, &sleep,
					&slept) == 0);
		FCHECK(weft_select_init(&se, arms, 2) == 0);
		FCHECK(weft_await(&weft_select_desc, &se, &winner) == 0);
		if (round == 0) {
			FCHECK(winner == 1 && slept == 0, "%zu", winner);
			atomic_store(&sl->step, 1);
		} else {
			FCHECK(winner == 0 && fd >= 0, "%zu %d", winner, fd);
			sl->fd = fd;
		}
		if (round == 0)
			fwait(&sl->step, 2);
	}
	weft_accept_stream_drop(&s);
	return NULL;
}

WT_TEST_T(accept_stream, next_in_a_select, 30)
{
	FOR_RUNGS_WORKERS(r, w) {
		weft_runtime *rt = rt_new(w, rungs[r], 0, 0);
		struct sel sl = { .lfd = weft_tcp_listen("127.0.0.1", 0, 8),
				  .fd = -1 };
		weft_join *j = wt_go(rt, accept_select, &sl, "acceptor");
		cr_assert_eq(wt_wait_atomic_ge(&sl.step, 1, 5000), 1);
		int c = connect_to(weft_tcp_local_port(sl.lfd));
		cr_assert_geq(c, 0);
		atomic_store(&sl.step, 2);
		cr_assert_eq(wt_fiber_join(j, NULL), 0);
		cr_assert_geq(sl.fd, 0);
		close(sl.fd);
		wt_rt_free(rt);
		close(c);
		close(sl.lfd);
	}
}

/* A next spawned as a task whose output nobody takes (joined with a
 * NULL out): the accepted socket is closed, the buffer given back. */
static void discarded_outputs(unsigned flags, unsigned workers)
{
	weft_runtime *rt = rt_new(workers, flags, 4, 64);
	int lfd = weft_tcp_listen("127.0.0.1", 0, 8);
	int c = connect_to(weft_tcp_local_port(lfd)), a, b, st;
	weft_accept_stream as;
	weft_recv_stream rs;
	weft_join *j;

	cr_assert_geq(c, 0);
	int before = count_fds();
	cr_assert_eq(weft_accept_stream_init(&as, lfd), 0);
	weft_accept_next an = { .stream = &as };
	wt_spawn(rt, &weft_accept_next_desc, &an, &j);
	wt_join_wait(j, &st, NULL);
	weft_join_drop(j);
	cr_assert_eq(st, 0);
	cr_assert_eq(count_fds(), before, "the discarded fd is open");
	weft_accept_stream_drop(&as);

	/* Eight discarded items through a pool of four: each must come
	 * back, or the fifth next starves for good. */
	wt_tcp_pair(&a, &b);
	cr_assert_eq(weft_recv_stream_init(&rs, b), 0);
	for (int i = 0; i < 8; i++) {
		weft_recv_next rn = { .stream = &rs };
		char ch = (char)i;

		cr_assert_eq(write(a, &ch, 1), 1);
		wt_spawn(rt, &weft_recv_next_desc, &rn, &j);
		wt_join_wait(j, &st, NULL);
		weft_join_drop(j);
		cr_assert_eq(st, 0);
	}
	weft_recv_stream_drop(&rs);
	wt_rt_free(rt);
	close(a);
	close(b);
	close(c);
	close(lfd);
}

WT_TEST_T(streams, discarded_next_outputs_are_released, 30)
{
	FOR_RUNGS_WORKERS(r, w)
		discarded_outputs(rungs[r], w);
}

/* ==== how streams end ==== */

struct ending {
	int fd;
	int mode;        /* 0: end of file, 1: reset while armed, 2: reset
			  * before the first next */
	atomic_int step; /* fiber 1: got the data; test 2: peer gone */
	int64_t ends[3];
};

static void *recv_to_the_end(void *arg)
{
	struct ending *e = arg;
	weft_recv_stream s;
	weft_buf b = WEFT_BUF_INIT;
	int64_t n;

	FCHECK(weft_recv_stream_init(&s, e->fd) == 0);
	if (e->mode != 2) {
		n = weft_co_recv_next(&s, &b, in_ms(5000));
		FCHECK(n == 3 && !memcmp(b.data, "abc", 3), "%lld",
		       (long long)n);
		weft_buf_release(&b);
		atomic_store(&e->step, 1);
	}
	for (int i = 0; i < 3; i++) {
		e->ends[i] = weft_co_recv_next(&s, &b, in_ms(5000));
		FCHECK(!b.data);
	}
	weft_recv_stream_drop(&s);
	return NULL;
}

static void recv_end(unsigned flags, unsigned workers, int mode)
{
	weft_runtime *rt = rt_new(workers, flags, 4, 64);
	int a, b;

	wt_tcp_pair(&a, &b);
	struct ending e = { .fd = b, .mode = mode };
	if (mode == 2) {
		abortive_close(a);
		wt_sleep_ms(10); /* the reset has landed */
	} else {
		cr_assert_eq(write(a, "abc", 3), 3);
	}
	weft_join *j = wt_go(rt, recv_to_the_end, &e, "receiver");
	if (mode != 2) {
		cr_assert_eq(wt_wait_atomic_ge(&e.step, 1, 5000), 1);
		if (mode == 0) {
			shutdown(a, SHUT_WR);
		} else {
			wt_sleep_ms(5); /* armed again, usually */
			abortive_close(a);
		}
	}
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	int64_t want = mode ? -ECONNRESET : 0;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(e.ends[i], want,
			     "rung %#x, %u workers, mode %d: end %d is %lld",
			     flags, workers, mode, i, (long long)e.ends[i]);
	wt_rt_free(rt);
	if (mode == 0)
		close(a);
	close(b);
}

WT_TEST_T(recv_stream, end_of_file_ends_the_stream, 30)
{
	FOR_RUNGS_WORKERS(r, w)
		recv_end(rungs[r], w, 0);
}

WT_TEST_T(recv_stream, peer_reset_ends_the_stream, 30)
{
	FOR_RUNGS_WORKERS(r, w) {
		recv_end(rungs[r], w, 1);
		recv_end(rungs[r], w, 2);
	}
}

/* ==== bad arguments and fds ==== */

WT_TEST(streams, init_rejects_bad_arguments)
{
	weft_accept_stream as;
	weft_recv_stream rs;

	cr_assert_eq(weft_accept_stream_init(NULL, 3), -EINVAL);
	cr_assert_eq(weft_accept_stream_init(&as, -1), -EINVAL);
	cr_assert_eq(weft_recv_stream_init(NULL, 3), -EINVAL);
	cr_assert_eq(weft_recv_stream_init(&rs, -1), -EINVAL);
	weft_accept_stream_drop(NULL);
	weft_recv_stream_drop(NULL);
}

/* Off a worker: -EPERM, then the same; the drop is harmless. */
WT_TEST(streams, next_off_a_worker_is_eperm)
{
	struct wt_probe pr;
	weft_accept_stream as;
	weft_recv_stream rs;
	weft_buf b = WEFT_BUF_INIT;
	int fd = 0;
	int64_t res = 0;

	wt_probe_init(&pr);
	cr_assert_eq(weft_accept_stream_init(&as, 0), 0);
	cr_assert_eq(weft_recv_stream_init(&rs, 0), 0);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(weft_accept_stream_next(&as, &pr.cx, &fd),
			     WEFT_READY);
		cr_assert_eq(fd, -EPERM);
		cr_assert_eq(weft_recv_stream_next(&rs, &pr.cx, &b, &res),
			     WEFT_READY);
		cr_assert_eq(res, -EPERM);
		cr_assert_null(b.data);
	}
	weft_accept_stream_drop(&as);
	weft_recv_stream_drop(&rs);
	wt_probe_fini(&pr);
}

struct badfd {
	int fd;
	int ends[2];
};

static void *accept_bad(void *arg)
{
	struct badfd *bf = arg;
	weft_accept_stream s;

	FCHECK(weft_accept_stream_init(&s, bf->fd) == 0);
	for (int i = 0; i < 2; i++)
		bf->ends[i] = weft_co_accept_next(&s, in_ms(5000));
	weft_accept_stream_drop(&s);
	return NULL;
}

static void accept_on(weft_runtime *rt, int fd, int want, const char *what)
{
	struct badfd bf = { .fd = fd };

	cr_assert_eq(wt_fiber_join(wt_go(rt, accept_bad, &bf, what), NULL),
		     0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(bf.ends[i], want, "%s: next %d gave %d", what, i,
			     bf.ends[i]);
}

WT_TEST_T(accept_stream, bad_fd_ends_it_with_an_error, 30)
{
	FOR_RUNGS_WORKERS(r, w) {
		weft_runtime *rt = rt_new(w, rungs[r], 0, 0);
		int plain = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int closed = dup(0); /* last: nothing takes its number */

		cr_assert_geq(plain, 0);
		cr_assert_geq(devnull, 0);
		cr_assert_geq(closed, 0);
		close(closed);
		accept_on(rt, closed, -EBADF, "closed fd");
		accept_on(rt, plain, -EINVAL, "socket not listening");
		accept_on(rt, devnull, -ENOTSOCK, "not a socket");
		wt_rt_free(rt);
		close(plain);
		close(devnull);
	}
}

/* A listening socket shut down while the stream waits on it: the
 * stream ends with an error instead of hanging. */
struct shut {
	int lfd;
	atomic_int step;
	int end;
};

static void *accept_until_shut(void *arg)
{
	struct shut *sh = arg;
	weft_accept_stream s;

	FCHECK(weft_accept_stream_init(&s, sh->lfd) == 0);
	int fd = weft_co_accept_next(&s, in_ms(1));
	FCHECK(fd == -ETIMEDOUT, "%d", fd);
	atomic_store(&sh->step, 1);
	sh->end = weft_co_accept_next(&s, in_ms(5000));
	FCHECK(weft_co_accept_next(&s, in_ms(5000)) == sh->end);
	weft_accept_stream_drop(&s);
	return NULL;
}

WT_TEST_T(accept_stream, listener_shut_down_ends_it, 30)
{
	FOR_RUNGS_WORKERS(r, w) {
		weft_runtime *rt = rt_new(w, rungs[r], 0, 0);
		struct shut sh = { .lfd = weft_tcp_listen("127.0.0.1", 0, 8) };
		weft_join *j = wt_go(rt, accept_until_shut, &sh, "acceptor");

		cr_assert_eq(wt_wait_atomic_ge(&sh.step, 1, 5000), 1);
		wt_sleep_ms(5);
		cr_assert_eq(shutdown(sh.lfd, SHUT_RDWR), 0);
		cr_assert_eq(wt_fiber_join(j, NULL), 0);
		cr_assert_eq(sh.end, -EINVAL, "rung %#x: %d", rungs[r],
			     sh.end);
		wt_rt_free(rt);
		close(sh.lfd);
	}
}

/* init on a stream with an op in flight: -EBUSY and nothing changed;
 * after the drop the same memory is a new stream. */
struct busy {
	int lfd, fd;
	atomic_int step;
	int got;
};

static void *init_while_busy(void *arg)
{
	struct busy *bz = arg;
	weft_accept_stream as;
	weft_recv_stream rs;
	weft_buf b = WEFT_BUF_INIT;

	for (int round = 0; round < 2; round++) {
		FCHECK(weft_accept_stream_init(&as, bz->lfd) == 0);
		FCHECK(weft_co_accept_next(&as, in_ms(1)) == -ETIMEDOUT);
		FCHECK(weft_accept_stream_init(&as, bz->lfd) == -EBUSY);
		FCHECK(weft_accept_stream_init(&as, 0) == -EBUSY);
		FCHECK(weft_recv_stream_init(&rs, bz->fd) == 0);
		FCHECK(weft_co_recv_next(&rs, &b, in_ms(1)) == -ETIMEDOUT);
		FCHECK(weft_recv_stream_init(&rs, bz->fd) == -EBUSY);
		atomic_store(&bz->step, 2 * round + 1);
		fwait(&bz->step, 2 * round + 2);
		int fd = weft_co_accept_next(&as, in_ms(5000));
		FCHECK(fd >= 0, "%d", fd);
		close(fd);
		int64_t n = weft_co_recv_next(&rs, &b, in_ms(5000));
		FCHECK(n == 1, "%lld", (long long)n);
		weft_buf_release(&b);
		bz->got++;
		weft_accept_stream_drop(&as);
		weft_recv_stream_drop(&rs);
	}
	return NULL;
}

WT_TEST_T(streams, init_in_flight_is_ebusy, 30)
{
	FOR_RUNGS_WORKERS(r, w) {
		weft_runtime *rt = rt_new(w, rungs[r], 4, 64);
		int a, b, c[2];
		struct busy bz = { .lfd = weft_tcp_listen("127.0.0.1", 0, 8) };

		wt_tcp_pair(&a, &b);
		bz.fd = b;
		weft_join *j = wt_go(rt, init_while_busy, &bz, "busy");
		for (int round = 0; round < 2; round++) {
			cr_assert_eq(wt_wait_atomic_ge(&bz.step,
						       2 * round + 1, 5000),
				     2 * round + 1);
			c[round] = connect_to(weft_tcp_local_port(bz.lfd));
			cr_assert_geq(c[round], 0);
			cr_assert_eq(write(a, "x", 1), 1);
			atomic_store(&bz.step, 2 * round + 2);
		}
		cr_assert_eq(wt_fiber_join(j, NULL), 0);
		cr_assert_eq(bz.got, 2);
		wt_rt_free(rt);
		close(c[0]);
		close(c[1]);
		close(a);
		close(b);
		close(bz.lfd);
	}
}

/* ==== EMFILE on the library's single-shot accept ==== */

/*
 * A runtime of one worker on @flags, a listener with one connection in
 * its backlog, and the descriptor table full (under a lowered limit):
 * every accept fails with EMFILE until exhausted_refill.
 */
struct exhausted {
	weft_runtime *rt;
	int lfd, c;
	int fill[256], nfill;
	struct rlimit rl;
};

static void exhausted_open(struct exhausted *x, unsigned flags)
{
	int fd;

	x->rt = rt_new(1, flags, 0, 0);
	x->lfd = weft_tcp_listen("127.0.0.1", 0, 16);
	x->c = connect_to(weft_tcp_local_port(x->lfd));
	cr_assert_geq(x->c, 0);
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &x->rl), 0);
	struct rlimit low = { .rlim_cur = 256, .rlim_max = x->rl.rlim_max };
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	x->nfill = 0;
	while (x->nfill < 256 && (fd = dup(0)) >= 0)
		x->fill[x->nfill++] = fd;
	cr_assert_eq(errno, EMFILE);
}

/* Free the descriptors again. */
static void exhausted_refill(struct exhausted *x)
{
	while (x->nfill)
		close(x->fill[--x->nfill]);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &x->rl), 0);
}

/* The connection is still in the backlog: nobody took it. */
static void exhausted_backlog_kept(struct exhausted *x)
{
	int fd = accept4(x->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	cr_assert_geq(fd, 0, "the connection was taken: %s",
		      strerror(errno));
	close(fd);
}

static void exhausted_close(struct exhausted *x)
{
	wt_rt_free(x->rt);
	close(x->c);
	close(x->lfd);
}

static void *accept_one(void *arg)
{
	struct acc *a = arg;
	weft_accept_stream s;

	FCHECK(weft_accept_stream_init(&s, a->lfd) == 0);
	int fd = weft_co_accept_next(&s, (weft_now_ns() + 20000000000ull));
	FCHECK(fd >= 0, "accept_next: %d", fd);
	close(fd);
	a->got++;
	weft_accept_stream_drop(&s);
	return NULL;
}

WT_TEST_T(accept_stream, emfile_backs_off_and_recovers, 30)
{
	struct exhausted x;

	exhausted_open(&x, 0);
	struct acc a = { .lfd = x.lfd };
	weft_join *j = wt_go(x.rt, accept_one, &a, "acceptor");
	sleep(1);
	weft_runtime_metrics m;
	metrics(x.rt, &m);
	cr_expect_eq(a.got, 0);
	cr_expect_geq(m.accept_backoffs, 2, "no backoff seen");
	cr_expect_lt(m.accept_backoffs, 100, "%llu tries in a second",
		     (unsigned long long)m.accept_backoffs);
	exhausted_refill(&x);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(a.got, 1);
	exhausted_close(&x);
}

WT_TEST_T(accept, single_shot_emfile_backs_off_and_recovers, 30)
{
	struct exhausted x;
	weft_io io;

	exhausted_open(&x, 0);
	cr_assert_eq(weft_io_prep_accept(&io, x.lfd), 0);
	weft_join *j = wt_op_spawn(x.rt, &io, NULL);
	sleep(1);
	weft_runtime_metrics m;
	metrics(x.rt, &m);
	cr_expect(!weft_join_is_finished(j));
	cr_expect_geq(m.accept_backoffs, 2, "no backoff seen");
	cr_expect_lt(m.accept_backoffs, 100, "%llu tries in a second",
		     (unsigned long long)m.accept_backoffs);
	exhausted_refill(&x);
	int64_t fd = wt_op_join(j);
	cr_assert_geq(fd, 0, "%lld", (long long)fd);
	close((int)fd);
	exhausted_close(&x);
}

/* A deadline bounds the backoff: the accept ends at it (timed out, or
 * the last -EMFILE) instead of waiting for descriptors. */
WT_TEST_T(accept, single_shot_deadline_ends_a_backoff, 30)
{
	struct exhausted x;
	weft_io io;

	exhausted_open(&x, 0);
	cr_assert_eq(weft_io_prep_accept(&io, x.lfd), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 300 * WT_MS), 0);
	weft_join *j = wt_op_spawn(x.rt, &io, NULL);
	int64_t res = wt_op_join(j); /* 5 s at most */
	exhausted_refill(&x);
	cr_assert(res == -ETIMEDOUT || res == -EMFILE, "%lld",
		  (long long)res);
	cr_assert_geq(wt_metrics(x.rt).accept_backoffs, 1);
	exhausted_backlog_kept(&x);
	exhausted_close(&x);
}

/*
 * Dropped while it backs off (the single-shot accept aborted with its
 * task; the stream dropped): the wait is cancelled, nothing leaks, and
 * the connection is still in the backlog for whoever accepts next.
 */
static void *accept_stream_forever(void *arg)
{
	weft_accept_stream s;

	FCHECK(weft_accept_stream_init(&s, *(int *)arg) == 0);
	int fd = weft_co_accept_next(&s, 0);
	FCHECK(fd == -ECANCELED, "%d", fd);
	weft_accept_stream_drop(&s);
	return NULL;
}

static void drop_in_backoff(unsigned flags, bool stream)
{
	int base = count_fds(), st;
	struct exhausted x;
	weft_io io;
	weft_join *j;

	exhausted_open(&x, flags);
	if (stream) {
		j = wt_go(x.rt, accept_stream_forever, &x.lfd, "acceptor");
	} else {
		cr_assert_eq(weft_io_prep_accept(&io, x.lfd), 0);
		j = wt_op_spawn(x.rt, &io, NULL);
	}
	cr_assert_geq(WAIT_METRIC(x.rt, accept_backoffs, 2), 2);
	weft_task_abort(j);
	cr_assert(wt_join_wait_ms(j, &st, NULL, 5000));
	weft_join_drop(j);
	if (!stream)
		cr_assert_eq(st, -ECANCELED);
	weft_runtime_metrics m1, m2;
	metrics(x.rt, &m1);
	exhausted_refill(&x);
	wt_sleep_ms(300); /* longer than the longest wait */
	metrics(x.rt, &m2);
	cr_assert_eq(m2.accept_backoffs, m1.accept_backoffs,
		     "a dropped accept still backs off");
	exhausted_backlog_kept(&x);
	exhausted_close(&x);
	cr_assert_eq(count_fds(), base);
}

WT_TEST_T(accept, drop_during_backoff_leaks_nothing, 30)
{
	drop_in_backoff(0, false);
	drop_in_backoff(WEFT_RT_NO_MULTISHOT, false);
	for (unsigned r = 0; r < NRUNGS; r++)
		drop_in_backoff(rungs[r], true);
}

/* ==== the fiber calls' deadlines ==== */

struct dl {
	int lfd, fd;
	atomic_int step;
};

static void *nexts_with_deadlines(void *arg)
{
	struct dl *d = arg;
	weft_accept_stream as;
	weft_recv_stream rs;
	weft_buf b = WEFT_BUF_INIT;

	FCHECK(weft_accept_stream_init(&as, d->lfd) == 0);
	FCHECK(weft_recv_stream_init(&rs, d->fd) == 0);
	/* Past deadlines, then short ones: nothing there yet. */
	FCHECK(weft_co_accept_next(&as, 1) == -ETIMEDOUT);
	FCHECK(weft_co_recv_next(&rs, &b, 1) == -ETIMEDOUT);
	FCHECK(weft_co_accept_next(&as, in_ms(10)) == -ETIMEDOUT);
	FCHECK(weft_co_recv_next(&rs, &b, in_ms(10)) == -ETIMEDOUT);
	FCHECK(!b.data);
	atomic_store(&d->step, 1);
	fwait(&d->step, 2);
	/* What came meanwhile waits in the streams: a next whose deadline
	 * has passed still takes it (a ready future wins). */
	FCHECK(weft_co_sleep(20 * WT_MS) == 0);
	int fd = weft_co_accept_next(&as, 1);
	FCHECK(fd >= 0, "%d", fd);
	close(fd);
	int64_t n = weft_co_recv_next(&rs, &b, 1);
	FCHECK(n == 5 && !memcmp(b.data, "hello", 5), "%lld", (long long)n);
	weft_buf_release(&b);
	FCHECK(weft_co_recv_next(&rs, &b, in_ms(5000)) == 0);
	weft_accept_stream_drop(&as);
	weft_recv_stream_drop(&rs);
	FCHECK(weft_co_accept_next(NULL, 0) == -EINVAL);
	FCHECK(weft_co_recv_next(NULL, &b, 0) == -EINVAL);
	FCHECK(weft_co_recv_next(&rs, NULL, 0) == -EINVAL);
	return NULL;
}

WT_TEST_T(streams, fiber_calls_with_deadlines, 30)
{
	FOR_RUNGS_WORKERS(r, w) {
		weft_runtime *rt = rt_new(w, rungs[r], 4, 64);
		int a, b;
		struct dl d = { .lfd = weft_tcp_listen("127.0.0.1", 0, 8) };

		wt_tcp_pair(&a, &b);
		d.fd = b;
		weft_join *j = wt_go(rt, nexts_with_deadlines, &d, "fiber");
		cr_assert_eq(wt_wait_atomic_ge(&d.step, 1, 5000), 1);
		int c = connect_to(weft_tcp_local_port(d.lfd));
		cr_assert_geq(c, 0);
		cr_assert_eq(write(a, "hello", 5), 5);
		shutdown(a, SHUT_WR);
		atomic_store(&d.step, 2);
		cr_assert_eq(wt_fiber_join(j, NULL), 0);
		wt_rt_free(rt);
		close(c);
		close(a);
		close(b);
		close(d.lfd);
	}
}

/* ==== tiny buffers ==== */

/*
 * Buffers smaller than a pointer: one given back from another thread
 * must not write over its neighbours (a free buffer holds the giver's
 * stack link), whatever buf_size the runtime was given.
 */
struct tiny {
	int fd;
	weft_buf bufs[4];
	atomic_int got;  /* buffers the fiber holds so far */
	atomic_int step; /* fiber 1: holds four; test 2: released one */
};

static void *recv_tiny(void *arg)
{
	struct tiny *t = arg;
	weft_recv_stream s;
	char seen[4];

	FCHECK(weft_recv_stream_init(&s, t->fd) == 0);
	for (int i = 0; i < 4; i++) {
		int64_t n = weft_co_recv_next(&s, &t->bufs[i], in_ms(5000));
		FCHECK(n == 1, "%lld", (long long)n);
		seen[i] = *(char *)t->bufs[i].data;
		FCHECK(seen[i] == "abcd"[i], "%c", seen[i]);
		atomic_store(&t->got, i + 1);
	}
	atomic_store(&t->step, 1);
	fwait(&t->step, 2); /* the test thread released bufs[0] */
	for (int i = 1; i < 4; i++) {
		FCHECK(*(char *)t->bufs[i].data == seen[i],
		       "buffer %d now holds %#x", i,
		       *(unsigned char *)t->bufs[i].data);
		weft_buf_release(&t->bufs[i]);
	}
	weft_recv_stream_drop(&s);
	return NULL;
}

WT_TEST_T(recv_stream, tiny_buffers_given_back_remotely, 30)
{
	for (unsigned r = 0; r < NRUNGS; r++) {
		for (unsigned size = 1; size <= 9; size += 4) {
			weft_runtime *rt = rt_new(1, rungs[r], 4, size);
			int a, b;

			wt_tcp_pair(&a, &b);
			struct tiny t = { .fd = b };
			weft_join *j = wt_go(rt, recv_tiny, &t, "receiver");
			/* One byte at a time, each after the last was
			 * received, so no two share a buffer. */
			for (int i = 0; i < 4; i++) {
				cr_assert_eq(write(a, &"abcd"[i], 1), 1);
				cr_assert_geq(wt_wait_atomic_ge(&t.got, i + 1,
								5000), i + 1);
			}
			cr_assert_eq(wt_wait_atomic_ge(&t.step, 1, 5000), 1);
			weft_buf_release(&t.bufs[0]); /* not a worker */
			atomic_store(&t.step, 2);
			cr_assert_eq(wt_fiber_join(j, NULL), 0);
			wt_rt_free(rt);
			close(a);
			close(b);
		}
	}
}

/* A stream first polled while its worker's pool is dry (another stream
 * holds every buffer) waits for buffers like one that ran dry later. */
struct dry {
	int fd1, fd2;
	atomic_int step; /* fiber 1: A holds four, B polled; 2: B's data */
	int64_t first;   /* B's first next */
	int64_t end;     /* B's end before all its data came, 0: none */
};

static void *second_stream_on_a_dry_pool(void *arg)
{
	struct dry *d = arg;
	weft_recv_stream sa, sb;
	weft_buf held[4], b = WEFT_BUF_INIT;
	size_t total = 0;

	FCHECK(weft_recv_stream_init(&sa, d->fd1) == 0);
	for (int i = 0; i < 4; i++) {
		int64_t n = weft_co_recv_next(&sa, &held[i], in_ms(5000));
		FCHECK(n == 1, "%lld", (long long)n);
	}
	FCHECK(weft_recv_stream_init(&sb, d->fd2) == 0);
	d->first = weft_co_recv_next(&sb, &b, in_ms(20));
	atomic_store(&d->step, 1);
	for (int i = 0; i < 4; i++)
		weft_buf_release(&held[i]);
	while (total < 5) {
		int64_t n = weft_co_recv_next(&sb, &b, in_ms(5000));
		if (n <= 0) {
			d->end = n;
			break;
		}
		FCHECK(!memcmp(b.data, &"hello"[total], (size_t)n));
		total += (size_t)n;
		weft_buf_release(&b);
	}
	weft_recv_stream_drop(&sa);
	weft_recv_stream_drop(&sb);
	return NULL;
}

static void first_poll_dry(unsigned flags)
{
	{
		/* One-byte buffers: A's four bytes take the whole pool. */
		weft_runtime *rt = rt_new(1, flags, 4, 1);
		int a1, b1, a2, b2;

		wt_tcp_pair(&a1, &b1);
		wt_tcp_pair(&a2, &b2);
		struct dry d = { .fd1 = b1, .fd2 = b2 };
		cr_assert_eq(write(a1, "wxyz", 4), 4);
		cr_assert_eq(write(a2, "hello", 5), 5);
		weft_join *j = wt_go(rt, second_stream_on_a_dry_pool, &d,
				     "receiver");
		cr_assert_eq(wt_fiber_join(j, NULL), 0);
		cr_assert_eq(d.first, -ETIMEDOUT,
			     "rung %#x: the first next gave %lld", flags,
			     (long long)d.first);
		cr_assert_eq(d.end, 0, "rung %#x: ended with %lld", flags,
			     (long long)d.end);
		wt_rt_free(rt);
		close(a1);
		close(b1);
		close(a2);
		close(b2);
	}
}

WT_TEST_T(recv_stream, first_poll_on_a_dry_pool_waits, 30)
{
	first_poll_dry(0);
	first_poll_dry(WEFT_RT_NO_MULTISHOT);
}

/*
 * The plain rung (no buffer ring): the first submit finds no free buffer
 * and must starve the record (op_submit), not fail the stream with
 * -ENOBUFS, as it once did.
 */
Test(recv_stream, first_poll_on_a_dry_pool_waits_plain_rung, .timeout = 30,
     .fini = wt_fini)
{
	first_poll_dry(WEFT_RT_NO_BUF_RING);
	first_poll_dry(WEFT_RT_NO_BUF_RING | WEFT_RT_NO_MULTISHOT);
}

/* Rings of two SQ entries: a stream's rearms and cancels wait for room,
 * its completions may overflow the CQ; nothing is lost. */
WT_TEST_T(streams, tiny_rings_lose_nothing, 60)
{
	ring_entries = 2;
	FOR_RUNGS_WORKERS(r, w) {
		accept_many(rungs[r], w);
		recv_pattern(rungs[r], w, 0, 0, 1);
		recv_pattern(rungs[r], w, 8, 256, 1);
	}
}

/* ---- datagram streams ---- */

#define DGRAMS 300

struct dg {
	int fd;              /* the bound receiver */
	bool empty_unnamed;  /* the rung that keeps no address for "" */
	struct sockaddr_storage want; /* the sender's address */
	socklen_t wantlen;
	unsigned buf_size;
	_Atomic int got;     /* datagrams checked, for the sender's pacing */
	int end;
};

/* Datagram i: i % 700 bytes, byte k is (i + k) & 0xff. */
static size_t dg_len(int i)
{
	return (size_t)(i * 37 % 700);
}

static void *udp_fiber(void *arg)
{
	struct dg *d = arg;
	weft_udp_stream s;

	FCHECK(weft_udp_stream_init(&s, d->fd) == 0);
	for (int i = 0; i < DGRAMS; i++) {
		weft_buf b = WEFT_BUF_INIT;
		struct sockaddr_storage from;
		socklen_t fromlen = 0;
		int64_t n = weft_co_udp_next(&s, &b, &from, &fromlen,
					     weft_now_ns() + 10000000000ull);
		size_t want = dg_len(i), room = d->buf_size - 144;

		FCHECK(n >= 0, "datagram %d: %lld", i, (long long)n);
		FCHECK((size_t)n == (want < room ? want : room),
		       "datagram %d: %lld bytes, want %zu", i, (long long)n,
		       want);
		if (n == 0 && d->empty_unnamed) { /* weft/multishot.h */
			FCHECK(!b.data && fromlen == 0);
			atomic_fetch_add(&d->got, 1);
			continue;
		}
		FCHECK(b.data != NULL && b.len == (size_t)n,
		       "datagram %d: data %p len %zu", i, b.data, b.len);
		for (int64_t k = 0; k < n; k++)
			FCHECK(((unsigned char *)b.data)[k] ==
				       (unsigned char)(i + k),
			       "datagram %d byte %lld", i, (long long)k);
		FCHECK(fromlen == d->wantlen &&
			       !memcmp(&from, &d->want, fromlen),
		       "datagram %d: source differs", i);
		weft_buf_release(&b);
		atomic_fetch_add(&d->got, 1);
	}
	weft_udp_stream_drop(&s);
	d->end = 0;
	return NULL;
}

static void udp_pattern(unsigned flags, unsigned nbufs, unsigned size)
{
	weft_runtime *rt = rt_new(2, flags, nbufs, size);
	int rx = weft_udp_bind("127.0.0.1", 0, 0);
	int tx = weft_udp_bind("127.0.0.1", 0, 0);
	struct sockaddr_storage to;
	socklen_t tolen = sizeof(to);
	unsigned char buf[700];

	cr_assert_geq(rx, 0);
	cr_assert_geq(tx, 0);
	struct dg d = { .fd = rx, .buf_size = size, .end = 1,
			.empty_unnamed = (flags & WEFT_RT_NO_MULTISHOT) &&
					 !(flags & WEFT_RT_NO_BUF_RING) };
	d.wantlen = sizeof(d.want);
	cr_assert_eq(getsockname(tx, (struct sockaddr *)&d.want, &d.wantlen),
		     0);
	cr_assert_eq(getsockname(rx, (struct sockaddr *)&to, &tolen), 0);
	weft_join *j = wt_go(rt, udp_fiber, &d, "udp");
	for (int i = 0; i < DGRAMS; i++) {
		/* At most 16 ahead: the socket's buffer never drops any. */
		while (i - atomic_load(&d.got) > 16)
			usleep(100);
		for (size_t k = 0; k < dg_len(i); k++)
			buf[k] = (unsigned char)(i + k);
		cr_assert_eq(sendto(tx, buf, dg_len(i), 0,
				    (struct sockaddr *)&to, tolen),
			     (ssize_t)dg_len(i));
	}
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(d.end, 0);
	cr_assert_eq(atomic_load(&d.got), DGRAMS);
	wt_rt_free(rt);
	close(rx);
	close(tx);
}

WT_TEST_T(udp_stream, datagrams_intact_with_sources, 60)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		udp_pattern(rungs[r], 64, 2048);
}

WT_TEST_T(udp_stream, long_datagrams_are_cut_through_a_tiny_pool, 60)
{
	/* 512-byte buffers keep 368 payload bytes; 4 buffers starve. */
	for (unsigned r = 0; r < NRUNGS; r++)
		udp_pattern(rungs[r], 4, 512);
}
