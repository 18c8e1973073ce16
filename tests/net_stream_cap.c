/* SPDX-License-Identifier: MIT */
/*
 * A recv stream whose taker falls behind pauses at its cap of queued
 * buffers (weft_runtime_config.stream_buf_max), on every rung: it holds
 * no more than the cap (what the kernel had already received when the
 * multishot op was cancelled aside), another stream on the same worker
 * keeps receiving from the rest of the pool, and once the taker catches
 * up the paused stream goes on with every byte in order, also when the
 * taker is a plain thread (the re-arm then goes through the owner's
 * inbox).
 */
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/multishot.h>
#include <weft/time.h>

#include "fiber_helpers.h"
#include "net_helpers.h"

/* White box: the stream's queued buffers (io/multishot.c). */
#include "io/op.h"

static WT_UNUSED const struct wt_cfg *unused_cfgs = wt_cfgs;

static const unsigned rungs[] = { 0, WEFT_RT_NO_MULTISHOT,
				  WEFT_RT_NO_BUF_RING,
				  WEFT_RT_NO_MULTISHOT | WEFT_RT_NO_BUF_RING };
#define NRUNGS (sizeof(rungs) / sizeof(rungs[0]))

#define NBUFS 64u
#define BUF_SIZE 256u
#define CAP 8u
/* Several times the pool: without the cap one stream would take it all. */
#define PAT_A (256u * 1024u)
#define PAT_B (64u * 1024u)

static weft_runtime *rt_new(unsigned flags, unsigned cap)
{
	weft_runtime_config c;
	weft_runtime *rt = NULL;

	weft_runtime_config_init(&c);
	c.workers = 1; /* both streams on one worker's pool */
	c.flags = flags;
	c.buf_count = NBUFS;
	c.buf_size = BUF_SIZE;
	c.stream_buf_max = cap;
	int err = weft_runtime_new(&c, &rt);
	cr_assert_eq(err, 0, "weft_runtime_new: %s", weft_strerror(err));
	return rt;
}

static uint64_t pauses(weft_runtime *rt)
{
	weft_runtime_metrics m = { .size = sizeof(m) };

	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	return m.stream_pauses;
}

/* Test thread: wait (5 s at most) until @rt counted @want pauses. */
static uint64_t wait_pauses(weft_runtime *rt, uint64_t want)
{
	uint64_t dl = wt_mono_ns() + 5000 * WT_MS, v;

	while ((v = pauses(rt)) < want && wt_mono_ns() < dl)
		wt_sleep_ms(1);
	return v;
}

static uint64_t in_ms(unsigned ms)
{
	return weft_now_ns() + (uint64_t)ms * WT_MS;
}

static unsigned char pattern_byte(size_t i, unsigned salt)
{
	return (unsigned char)((i * 131u + (i >> 9) + salt) & 0xff);
}

/* The buffers @s holds queued (under its record's lock). */
static unsigned held_of(weft_recv_stream *s)
{
	struct weft__op *op = s->_io._op;
	unsigned h;

	weft__spin_lock(&op->lock);
	h = op->big[0].ms.held;
	weft__spin_unlock(&op->lock);
	return h;
}

/* The owner's phase of @s's record: read it on the owner's thread. */
static int phase_of(weft_recv_stream *s)
{
	return ((struct weft__op *)s->_io._op)->phase;
}

/* A writer thread: the pattern (salted) in pieces of varying size, then
 * end of file. It blocks while the receiver's socket is full: that is the
 * backpressure the pause lets through. */
struct writer {
	pthread_t th;
	int fd;
	size_t len;
	unsigned salt;
	int err;
};

static void *write_main(void *arg)
{
	struct writer *w = arg;
	unsigned char buf[4096];
	unsigned seed = w->salt;
	size_t off = 0;

	while (off < w->len) {
		seed = seed * 1103515245u + 12345u;
		size_t n = 1 + (seed >> 8) % sizeof(buf);
		if (n > w->len - off)
			n = w->len - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern_byte(off + i, w->salt);
		ssize_t r = write(w->fd, buf, n);
		if (r <= 0) {
			w->err = errno;
			return NULL;
		}
		off += (size_t)r;
	}
	shutdown(w->fd, SHUT_WR);
	return NULL;
}

static void writer_start(struct writer *w, int fd, size_t len, unsigned salt)
{
	*w = (struct writer){ .fd = fd, .len = len, .salt = salt };
	cr_assert_eq(pthread_create(&w->th, NULL, write_main, w), 0);
}

static void writer_join(struct writer *w)
{
	cr_assert_eq(pthread_join(w->th, NULL), 0);
	cr_assert_eq(w->err, 0, "write: %s", strerror(w->err));
}

/* Check a received chunk against the pattern at @off. */
static void fcheck_chunk(const weft_buf *b, int64_t n, size_t off,
			 unsigned salt)
{
	FCHECK(b->data && b->len == (size_t)n, "len %zu, res %lld", b->len,
	       (long long)n);
	for (int64_t i = 0; i < n; i++)
		FCHECK(((unsigned char *)b->data)[i] ==
			       pattern_byte(off + (size_t)i, salt),
		       "byte %zu differs", off + (size_t)i);
}

/* Fiber: receive @s to its end; returns the bytes, each checked. */
static size_t frecv_all(weft_recv_stream *s, unsigned salt)
{
	size_t total = 0;

	for (;;) {
		weft_buf b = WEFT_BUF_INIT;
		int64_t n = weft_co_recv_next(s, &b, in_ms(10000));

		if (n <= 0) {
			FCHECK(n == 0, "stream ended with %lld at %zu",
			       (long long)n, total);
			return total;
		}
		fcheck_chunk(&b, n, total, salt);
		total += (size_t)n;
		weft_buf_release(&b);
	}
}

/* ==== a slow taker next to a fast one ==== */

struct pair {
	int fa, fb;        /* the receiving sockets */
	atomic_int step;   /* 1: A armed; 2: A paused (test thread) */
	unsigned held;     /* A's queued buffers once paused */
	unsigned cap;
	size_t total_a, total_b;
};

static void *slow_and_fast(void *arg)
{
	struct pair *p = arg;
	weft_recv_stream sa, sb;
	weft_buf b = WEFT_BUF_INIT;

	FCHECK(weft_recv_stream_init(&sa, p->fa) == 0);
	FCHECK(weft_recv_stream_init(&sb, p->fb) == 0);
	/* Arm A; it may already have data. */
	int64_t n = weft_co_recv_next(&sa, &b, in_ms(1));
	FCHECK(n == -ETIMEDOUT || n > 0, "%lld", (long long)n);
	if (n > 0) {
		fcheck_chunk(&b, n, 0, 1);
		p->total_a = (size_t)n;
		weft_buf_release(&b);
	}
	atomic_store(&p->step, 1);
	while (atomic_load(&p->step) < 2) /* A's taker stops */
		FCHECK(weft_co_sleep(WT_MS) == 0);
	/* Its op's last completion came: nothing is in flight for A. This
	 * fiber runs on the owner (one worker), whose field phase is. */
	for (int i = 0; phase_of(&sa) != WEFT__PH_PAUSED; i++) {
		FCHECK(i < 5000, "A's phase is %d", phase_of(&sa));
		FCHECK(weft_co_sleep(WT_MS) == 0);
	}
	p->held = held_of(&sa);
	/* B receives all of its data while A keeps what it queued. */
	p->total_b = frecv_all(&sb, 2);
	FCHECK(held_of(&sa) == p->held, "A received while paused: %u, %u",
	       p->held, held_of(&sa));
	/* A's taker catches up: every byte, in order. */
	for (;;) {
		n = weft_co_recv_next(&sa, &b, in_ms(10000));
		if (n <= 0) {
			FCHECK(n == 0, "A ended with %lld at %zu",
			       (long long)n, p->total_a);
			break;
		}
		fcheck_chunk(&b, n, p->total_a, 1);
		p->total_a += (size_t)n;
		weft_buf_release(&b);
	}
	weft_recv_stream_drop(&sa);
	weft_recv_stream_drop(&sb);
	return NULL;
}

static void slow_taker(unsigned flags)
{
	weft_runtime *rt = rt_new(flags, CAP);
	int a1, b1, a2, b2;
	struct writer wa, wb;

	wt_tcp_pair(&a1, &b1);
	wt_tcp_pair(&a2, &b2);
	struct pair p = { .fa = b1, .fb = b2 };
	weft_join *j = wt_go(rt, slow_and_fast, &p, "receiver");
	cr_assert_eq(wt_wait_atomic_ge(&p.step, 1, 5000), 1);
	writer_start(&wa, a1, PAT_A, 1);
	cr_assert_geq(wait_pauses(rt, 1), 1, "rung %#x: A never paused",
		      flags);
	atomic_store(&p.step, 2);
	writer_start(&wb, a2, PAT_B, 2);
	int st = 1;
	cr_assert(wt_join_wait_ms(j, &st, NULL, 15000),
		  "rung %#x: the receiver is stuck", flags);
	weft_join_drop(j);
	cr_assert_eq(st, 0);
	writer_join(&wa);
	writer_join(&wb);
	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	cr_log_info("rung %#x: A held %u buffers paused; %llu pauses, "
		    "%llu spills", flags, p.held,
		    (unsigned long long)m.stream_pauses,
		    (unsigned long long)m.stream_spills);
	cr_assert_leq(p.held, CAP, "rung %#x: A holds %u > %u", flags,
		      p.held, CAP);
	cr_assert_geq(p.held, CAP, "rung %#x: A paused at %u", flags,
		      p.held);
	cr_assert_eq(p.total_b, PAT_B, "rung %#x", flags);
	cr_assert_eq(p.total_a, PAT_A, "rung %#x", flags);
	wt_rt_free(rt);
	close(a1);
	close(b1);
	close(a2);
	close(b2);
}

WT_TEST_T(stream_cap, slow_taker_holds_its_cap_and_others_receive, 120)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		slow_taker(rungs[r]);
}

/* ==== a taker on a plain thread ==== */

struct remote {
	int fd;
	weft_recv_stream s;
	atomic_int step;   /* 1: armed (fiber); 2: taken to the end (test) */
	size_t first;      /* bytes the arming next returned */
};

static void *arm_and_wait(void *arg)
{
	struct remote *r = arg;
	weft_buf b = WEFT_BUF_INIT;

	FCHECK(weft_recv_stream_init(&r->s, r->fd) == 0);
	int64_t n = weft_co_recv_next(&r->s, &b, in_ms(1));
	FCHECK(n == -ETIMEDOUT || n > 0, "%lld", (long long)n);
	if (n > 0) {
		fcheck_chunk(&b, n, 0, 3);
		r->first = (size_t)n;
		weft_buf_release(&b);
	}
	atomic_store(&r->step, 1);
	while (atomic_load(&r->step) < 2)
		FCHECK(weft_co_sleep(WT_MS) == 0);
	weft_recv_stream_drop(&r->s);
	return NULL;
}

static void remote_taker(unsigned flags)
{
	weft_runtime *rt = rt_new(flags, 0); /* the default cap: NBUFS / 8 */
	int a, b;
	struct writer w;
	struct wt_probe pr;

	wt_tcp_pair(&a, &b);
	struct remote r = { .fd = b };
	weft_join *j = wt_go(rt, arm_and_wait, &r, "armer");
	cr_assert_eq(wt_wait_atomic_ge(&r.step, 1, 5000), 1);
	writer_start(&w, a, PAT_A, 3);
	wt_probe_init(&pr);
	size_t total = r.first;
	unsigned max_held = 0, slow = 0;
	for (;;) {
		weft_buf buf = WEFT_BUF_INIT;
		int64_t n;
		unsigned h = held_of(&r.s);

		if (h > max_held)
			max_held = h;
		if (weft_recv_stream_next(&r.s, &pr.cx, &buf, &n) ==
		    WEFT_PENDING) {
			cr_assert(wt_parker_wait(pr.p, 10000),
				  "rung %#x: stuck at %zu", flags, total);
			continue;
		}
		if (n <= 0) {
			cr_assert_eq(n, 0, "rung %#x: ended with %lld",
				     flags, (long long)n);
			break;
		}
		cr_assert_eq(buf.len, (size_t)n);
		for (int64_t i = 0; i < n; i++)
			cr_assert_eq(((unsigned char *)buf.data)[i],
				     pattern_byte(total + (size_t)i, 3),
				     "rung %#x: byte %zu differs", flags,
				     total + (size_t)i);
		total += (size_t)n;
		weft_buf_release(&buf);
		/* Slow at first: let the stream fill up and pause. */
		if (slow++ < 64)
			wt_sleep_ms(1);
	}
	wt_probe_fini(&pr);
	atomic_store(&r.step, 2);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	writer_join(&w);
	cr_log_info("rung %#x: held %u at most, %llu pauses", flags,
		    max_held, (unsigned long long)pauses(rt));
	cr_assert_eq(total, PAT_A, "rung %#x", flags);
	cr_assert_geq(pauses(rt), 1, "rung %#x: never paused", flags);
	cr_assert_leq(max_held, NBUFS / 8, "rung %#x: held %u", flags,
		      max_held);
	wt_rt_free(rt);
	close(a);
	close(b);
}

WT_TEST_T(stream_cap, taker_on_a_plain_thread_resumes_it, 120)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		remote_taker(rungs[r]);
}
