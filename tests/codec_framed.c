/* SPDX-License-Identifier: MIT */
/*
 * Framed reader and writer (weft/framed.h) over TCP on loopback, from
 * fibers: frames of every size from 0 to 100 KiB arrive intact and in
 * order with two codecs; 10,000 small unflushed frames go out in far
 * fewer sends; an oversize frame is refused by the writer and by the
 * reader from its header alone; a connection that ends inside a frame is
 * -EPROTO, at a boundary 0; a writer facing a peer that does not read
 * stops at its high-water mark, then delivers everything; freeing a
 * writer with a send in flight is safe.
 */
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/framed.h>

#include "fiber_helpers.h"
#include "net_helpers.h"

/* The configurations of helpers.h are not used. */
static WT_UNUSED const struct wt_cfg *unused_cfgs = wt_cfgs;

static weft_runtime *rt2(void)
{
	return wt_rt_new(&(struct wt_cfg){ 2, 0 });
}

static size_t frame_len(int i)
{
	static const size_t sizes[] = { 0, 1, 3, 64, 1000, 4096, 65535,
					65536, 100000 };
	return i < 9 ? sizes[i] : (size_t)(i * 7919) % 20000;
}

static unsigned char fbyte(int i, size_t k)
{
	return (unsigned char)(i * 31 + k);
}

struct side {
	int fd;
	weft_codec codec;
	int frames;
	int got;
	int end;     /* the reader's last result */
	int sends;   /* the writer: how many returned 0 */
};

static void *writer_fiber(void *arg)
{
	struct side *s = arg;
	weft_framed_writer w;
	unsigned char *buf = malloc(100000);

	FCHECK(buf && weft_framed_writer_init(&w, s->fd, &s->codec, 0) == 0);
	for (int i = 0; i < s->frames; i++) {
		size_t n = frame_len(i);
		for (size_t k = 0; k < n; k++)
			buf[k] = fbyte(i, k);
		int r = weft_co_frame_send(&w, buf, n, i % 3 == 0, 0);
		FCHECK(r == 0, "frame %d: %d", i, r);
		memset(buf, 0xee, n); /* copied at the send: must not show */
		s->sends++;
	}
	FCHECK(weft_co_frame_send(&w, NULL, 0, true, 0) == 0);
	weft_framed_writer_free(&w);
	free(buf);
	shutdown(s->fd, SHUT_WR);
	return NULL;
}

static void *reader_fiber(void *arg)
{
	struct side *s = arg;
	weft_framed_reader r;
	weft_frame_view f;
	int rc;

	FCHECK(weft_framed_reader_init(&r, s->fd, &s->codec) == 0);
	while ((rc = weft_co_frame_read(&r, &f, weft_now_ns() +
						      10000000000ull)) == 1) {
		if (s->got == s->frames) { /* the final empty frame */
			FCHECK(f.len == 0);
			s->got++;
			continue;
		}
		FCHECK(f.len == frame_len(s->got), "frame %d: %zu bytes",
		       s->got, f.len);
		for (size_t k = 0; k < f.len; k++)
			FCHECK(((const unsigned char *)f.data)[k] ==
				       fbyte(s->got, k),
			       "frame %d byte %zu", s->got, k);
		s->got++;
	}
	s->end = rc;
	weft_framed_reader_free(&r);
	return NULL;
}

static void round_trip(const weft_codec *c, int frames)
{
	weft_runtime *rt = rt2();
	int a, b;

	wt_tcp_pair(&a, &b);
	struct side w = { .fd = a, .codec = *c, .frames = frames };
	struct side r = { .fd = b, .codec = *c, .frames = frames, .end = 9 };
	weft_join *jr = wt_go(rt, reader_fiber, &r, "reader");
	weft_join *jw = wt_go(rt, writer_fiber, &w, "writer");
	cr_assert_eq(wt_fiber_join(jw, NULL), 0);
	cr_assert_eq(wt_fiber_join(jr, NULL), 0);
	cr_expect_eq(w.sends, frames);
	cr_expect_eq(r.got, frames + 1);
	cr_expect_eq(r.end, 0, "the reader ended with %d", r.end);
	wt_rt_free(rt);
	close(a);
	close(b);
}

Test(framed, every_size_default_codec, .timeout = 60, .fini = wt_fini)
{
	weft_codec c;

	weft_codec_init(&c);
	round_trip(&c, 200);
}

Test(framed, every_size_three_byte_little_endian, .timeout = 60,
     .fini = wt_fini)
{
	weft_codec c;

	weft_codec_init(&c);
	c.length_bytes = 3;
	c.little_endian = true;
	cr_assert_eq(weft_codec_check(&c), 0);
	round_trip(&c, 120);
}

/* ---- small frames are batched ---- */

struct many {
	int fd;
	int n;
	int got;
};

static void *many_writer(void *arg)
{
	struct many *m = arg;
	weft_framed_writer w;
	weft_codec c;
	unsigned char msg[64];

	weft_codec_init(&c);
	FCHECK(weft_framed_writer_init(&w, m->fd, &c, 0) == 0);
	for (int i = 0; i < m->n; i++) {
		memset(msg, i & 0xff, sizeof(msg));
		FCHECK(weft_co_frame_send(&w, msg, sizeof(msg), false, 0) == 0);
	}
	FCHECK(weft_co_frame_send(&w, msg, 0, true, 0) == 0);
	weft_framed_writer_free(&w);
	return NULL;
}

static void *many_reader(void *arg)
{
	struct many *m = arg;
	weft_framed_reader r;
	weft_frame_view f;
	weft_codec c;

	weft_codec_init(&c);
	FCHECK(weft_framed_reader_init(&r, m->fd, &c) == 0);
	while (m->got <= m->n &&
	       weft_co_frame_read(&r, &f, weft_now_ns() + 10000000000ull) ==
		       1) {
		if (m->got < m->n)
			FCHECK(f.len == 64 &&
			       ((const unsigned char *)f.data)[63] ==
				       (m->got & 0xff));
		m->got++;
	}
	weft_framed_reader_free(&r);
	return NULL;
}

Test(framed, small_frames_share_sends, .timeout = 60, .fini = wt_fini)
{
	weft_runtime *rt = wt_rt_new(&(struct wt_cfg){ 1, 0 });
	int a, b;

	wt_tcp_pair(&a, &b);
	struct many mw = { .fd = a, .n = 10000 }, mr = { .fd = b, .n = 10000 };
	weft_join *jr = wt_go(rt, many_reader, &mr, "reader");
	weft_join *jw = wt_go(rt, many_writer, &mw, "writer");
	cr_assert_eq(wt_fiber_join(jw, NULL), 0);
	cr_assert_eq(wt_fiber_join(jr, NULL), 0);
	cr_expect_eq(mr.got, 10001);
	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	/* 10,001 frames (680 KB): sends and recvs together far fewer. */
	cr_expect_lt(m.ops_submitted, 2500, "%llu ops for 10,001 frames",
		     (unsigned long long)m.ops_submitted);
	wt_rt_free(rt);
	close(a);
	close(b);
}

/* ---- errors ---- */

struct one {
	int fd;
	weft_codec codec;
	int rc;
	size_t cap;
};

static void *read_one(void *arg)
{
	struct one *o = arg;
	weft_framed_reader r;
	weft_frame_view f;

	FCHECK(weft_framed_reader_init(&r, o->fd, &o->codec) == 0);
	o->rc = weft_co_frame_read(&r, &f, weft_now_ns() + 10000000000ull);
	/* Sticky. */
	FCHECK(o->rc == 1 ||
	       weft_co_frame_read(&r, &f, weft_now_ns() + 1000000000ull) ==
		       o->rc);
	o->cap = r._cap;
	weft_framed_reader_free(&r);
	return NULL;
}

static int read_raw(const weft_codec *c, const void *bytes, size_t n,
		    size_t *cap)
{
	weft_runtime *rt = rt2();
	int a, b;

	wt_tcp_pair(&a, &b);
	struct one o = { .fd = b, .codec = *c, .rc = 9 };
	weft_join *j = wt_go(rt, read_one, &o, "reader");
	cr_assert_eq(write(a, bytes, n), (ssize_t)n);
	shutdown(a, SHUT_WR);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	wt_rt_free(rt);
	close(a);
	close(b);
	if (cap)
		*cap = o.cap;
	return o.rc;
}

Test(framed, reader_errors, .timeout = 60, .fini = wt_fini)
{
	weft_codec c;
	size_t cap = 0;

	weft_codec_init(&c);
	c.max_frame = 1000;
	/* 1001 announced: refused from the header, nothing buffered for it. */
	unsigned char over[4] = { 0, 0, 0x03, 0xe9 };
	cr_expect_eq(read_raw(&c, over, sizeof(over), &cap), -EMSGSIZE);
	cr_expect_leq(cap, 16 * 1024, "the reader grew to %zu", cap);
	/* 100 announced, 50 sent, then EOF. */
	unsigned char trunc[54] = { 0, 0, 0, 100 };
	cr_expect_eq(read_raw(&c, trunc, sizeof(trunc), NULL), -EPROTO);
	/* A header cut short, then EOF. */
	cr_expect_eq(read_raw(&c, trunc, 2, NULL), -EPROTO);
	/* EOF at a boundary. */
	cr_expect_eq(read_raw(&c, trunc, 0, NULL), 0);
	/* Exactly the maximum is a frame. */
	unsigned char *max = calloc(1, 1004);
	max[2] = 0x03;
	max[3] = 0xe8;
	cr_expect_eq(read_raw(&c, max, 1004, NULL), 1);
	free(max);
}

static void *send_over(void *arg)
{
	struct one *o = arg;
	weft_framed_writer w;
	static unsigned char big[2000];

	FCHECK(weft_framed_writer_init(&w, o->fd, &o->codec, 0) == 0);
	o->rc = weft_co_frame_send(&w, big, 1001, true, 0);
	/* Not sticky: the writer goes on. */
	FCHECK(weft_co_frame_send(&w, big, 1000, true, 0) == 0);
	weft_framed_writer_free(&w);
	return NULL;
}

Test(framed, writer_refuses_oversize, .timeout = 30, .fini = wt_fini)
{
	weft_runtime *rt = rt2();
	weft_codec c;
	int a, b;

	weft_codec_init(&c);
	c.max_frame = 1000;
	wt_tcp_pair(&a, &b);
	struct one o = { .fd = a, .codec = c };
	cr_assert_eq(wt_fiber_join(wt_go(rt, send_over, &o, "w"), NULL), 0);
	cr_expect_eq(o.rc, -EMSGSIZE);
	unsigned char hdr[4];
	cr_assert_eq(read(b, hdr, 4), 4);
	cr_expect_eq(hdr[2] * 256 + hdr[3], 1000, "only the second frame");
	wt_rt_free(rt);
	close(a);
	close(b);
}

/* ---- backpressure ---- */

struct bp {
	int fd;
	_Atomic int queued;
	_Atomic bool stop;
	size_t max_cap;
};

static void *bp_writer(void *arg)
{
	struct bp *p = arg;
	weft_framed_writer w;
	weft_codec c;
	unsigned char kb[1024] = { 0 };

	weft_codec_init(&c);
	FCHECK(weft_framed_writer_init(&w, p->fd, &c, 32 * 1024) == 0);
	while (!atomic_load(&p->stop)) {
		int r = weft_co_frame_send(&w, kb, sizeof(kb), false,
					   weft_now_ns() + 50000000ull);
		if (r == -ETIMEDOUT)
			continue; /* blocked on the socket: backpressure */
		FCHECK(r == 0, "send: %d", r);
		atomic_fetch_add(&p->queued, 1);
		if (w._cap > p->max_cap)
			p->max_cap = w._cap;
	}
	weft_framed_writer_free(&w); /* a send may be in flight */
	return NULL;
}

Test(framed, backpressure_bounds_the_writer, .timeout = 60,
     .fini = wt_fini)
{
	weft_runtime *rt = rt2();
	int a, b, small = 16 * 1024;

	wt_tcp_pair(&a, &b);
	setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(b, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct bp p = { .fd = a };
	weft_join *j = wt_go(rt, bp_writer, &p, "writer");
	usleep(300 * 1000);
	int q1 = atomic_load(&p.queued);
	usleep(300 * 1000);
	int q2 = atomic_load(&p.queued);
	/* Nobody reads: the writer is stuck at its mark, not growing. */
	cr_expect_eq(q1, q2, "still queueing: %d then %d frames", q1, q2);
	cr_expect_lt(q2, 1000, "%d frames queued without a reader", q2);
	cr_expect_leq(p.max_cap, 128 * 1024, "buffer grew to %zu", p.max_cap);
	atomic_store(&p.stop, true);
	/* Drain so the writer can notice the stop. */
	char sink[65536];
	while (!weft_join_is_finished(j))
		if (recv(b, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			usleep(1000);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	wt_rt_free(rt);
	close(a);
	close(b);
}

/* ==== the non-waiting calls ==== */

/*
 * weft_framed_try_send queues without sending until the high-water mark,
 * then says -EAGAIN; nothing leaves before a flush. weft_framed_try_read
 * hands out the frames already received, then -EAGAIN, and the stream's
 * end once it came.
 */
struct tries {
	int a, b;
	int queued;     /* try_send returned 0 */
	int took_fast;  /* try_read returned 1 */
	int total;      /* frames read */
};

static void *try_both(void *arg)
{
	struct tries *t = arg;
	weft_framed_writer w;
	weft_framed_reader r;
	weft_codec c;
	weft_frame_view f;
	unsigned char m[100];
	int rc;

	weft_codec_init(&c);
	FCHECK(weft_framed_writer_init(&w, t->a, &c, 1000) == 0);
	FCHECK(weft_framed_reader_init(&r, t->b, &c) == 0);
	FCHECK(weft_framed_try_read(&r, &f) == -EAGAIN);
	for (;;) {
		memset(m, t->queued, sizeof(m));
		rc = weft_framed_try_send(&w, m, sizeof(m));
		if (rc)
			break;
		t->queued++;
	}
	FCHECK(rc == -EAGAIN, "%d", rc);
	FCHECK(t->queued == 10, "%d queued below 1000 bytes", t->queued);
	FCHECK(weft_framed_try_send(&w, m, c.max_frame + 1) == -EMSGSIZE);
	/* Nothing was sent yet: the reader has nothing. */
	FCHECK(weft_co_sleep(20000000) == 0);
	FCHECK(weft_framed_try_read(&r, &f) == -EAGAIN);
	FCHECK(weft_co_frame_send(&w, NULL, 0, true, 0) == 0); /* flush */
	shutdown(t->a, SHUT_WR);
	for (;;) {
		rc = weft_framed_try_read(&r, &f);
		if (rc == 1) {
			t->took_fast++;
		} else if (rc == -EAGAIN) {
			rc = weft_co_frame_read(&r, &f, weft_now_ns() +
							      5000000000ull);
			if (rc != 1)
				break;
		} else {
			break;
		}
		if (t->total < t->queued)
			FCHECK(f.len == sizeof(m) &&
				       ((unsigned char *)f.data)[99] ==
					       t->total,
			       "frame %d", t->total);
		else
			FCHECK(f.len == 0);
		t->total++;
	}
	FCHECK(rc == 0, "end %d", rc);
	FCHECK(weft_framed_try_read(&r, &f) == 0); /* the end, again */
	FCHECK(weft_framed_try_read(NULL, &f) == -EINVAL);
	FCHECK(weft_framed_try_send(NULL, m, 1) == -EINVAL);
	weft_framed_reader_free(&r);
	weft_framed_writer_free(&w);
	return NULL;
}

WT_TEST_T(framed, try_send_and_try_read, 30)
{
	weft_runtime *rt = rt2();
	struct tries t = { 0 };

	wt_tcp_pair(&t.a, &t.b);
	cr_assert_eq(wt_fiber_join(wt_go(rt, try_both, &t, "tries"), NULL), 0);
	cr_assert_eq(t.total, t.queued + 1);
	/* 11 frames of 104 bytes or fewer came in one or few segments: most
	 * were taken without waiting */
	cr_assert_gt(t.took_fast, 0);
	wt_rt_free(rt);
	close(t.a);
	close(t.b);
}
