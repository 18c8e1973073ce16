/* SPDX-License-Identifier: MIT */
/*
 * weft_send_all and weft_recv_exact over a TCP pair on 127.0.0.1: a large
 * buffer moved by partial sends and receives, a peer that sends less than
 * asked and closes, a send to a closed peer, and a recv whose length does
 * not fit in 32 bits.
 */
#include <netinet/in.h>
#include <sys/socket.h>

#include "io_helpers.h"

/* A connected TCP pair made with plain syscalls (loopback completes the
 * handshake at connect). */
static void tcp_pair(int *client, int *server)
{
	int lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	cr_assert_geq(lfd, 0, "listen: %s", weft_strerror(lfd));
	int port = weft_tcp_local_port(lfd);
	cr_assert_gt(port, 0);
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(weft_addr_parse("127.0.0.1", (uint16_t)port, &ss, &len), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(c, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&ss, len), 0, "connect: %s",
		     strerror(errno));
	int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(s, 0, "accept: %s", strerror(errno));
	close(lfd);
	*client = c;
	*server = s;
}

/* One weft_send_all or weft_recv_exact as a task, reporting done. */
struct stream_task {
	int is_send;
	weft_send_all s;
	weft_recv_exact r;
};

struct stream_out {
	int64_t res;
	size_t done;
};

static weft_poll stream_poll(void *self, weft_cx *cx, void *out)
{
	struct stream_task *t = self;
	struct stream_out *o = out;
	int64_t res;
	if (t->is_send) {
		if (weft_send_all_poll(&t->s, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		o->done = weft_send_all_done(&t->s);
	} else {
		if (weft_recv_exact_poll(&t->r, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		o->done = weft_recv_exact_done(&t->r);
	}
	o->res = res;
	return WEFT_READY;
}

static void stream_drop(void *self)
{
	struct stream_task *t = self;
	weft_send_all_drop(&t->s);
	weft_recv_exact_drop(&t->r);
}

static const weft_future_desc stream_desc = {
	.poll = stream_poll,
	.drop = stream_drop,
	.size = sizeof(struct stream_task),
	.output_size = sizeof(struct stream_out),
};

/* Spawn a send_all (@is_send) or recv_exact of @len bytes at @buf. */
static weft_join *stream_spawn(weft_runtime *rt, int is_send, int fd,
			       unsigned char *buf, size_t len)
{
	struct stream_task t = { .is_send = is_send };
	if (is_send)
		cr_assert_eq(weft_send_all_init(&t.s, fd, buf, len, 0), 0);
	else
		cr_assert_eq(weft_recv_exact_init(&t.r, fd, buf, len, 0), 0);
	weft_join *j;
	wt_spawn(rt, &stream_desc, &t, &j);
	return j;
}

static struct stream_out stream_join(weft_join *j)
{
	struct stream_out o = { .res = INT64_MIN };
	int st = 1;
	/* 8 MiB under ASan on a shared machine: allow more than 5 s. */
	cr_assert(wt_join_wait_ms(j, &st, &o, 30000), "transfer timed out");
	cr_assert_eq(st, 0, "%s", weft_strerror(st));
	weft_join_drop(j);
	return o;
}

enum { BIG = 8 << 20 };

WT_RT_TEST_T(stream, send_all_recv_exact_8mib, 60)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int c, s;
	tcp_pair(&c, &s);
	unsigned char *a = malloc(BIG), *b = calloc(1, BIG);
	cr_assert(a && b);
	wt_fill(a, BIG, 8);
	weft_join *jr = stream_spawn(rt, 0, s, b, BIG);
	weft_join *js = stream_spawn(rt, 1, c, a, BIG);
	struct stream_out os = stream_join(js), orr = stream_join(jr);
	cr_expect_eq(os.res, BIG, "send_all: %lld", (long long)os.res);
	cr_expect_eq(os.done, BIG);
	cr_expect_eq(orr.res, BIG, "recv_exact: %lld", (long long)orr.res);
	cr_expect_eq(orr.done, BIG);
	cr_expect_eq(memcmp(a, b, BIG), 0, "bytes differ");
	/* More than one op per side: the loops really looped. */
	cr_expect_gt(wt_metrics(rt).ops_submitted, 2);
	wt_rt_free(rt);
	close(c);
	close(s);
	free(a);
	free(b);
}

WT_RT_TEST(stream, recv_exact_short_then_close_is_epipe)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int c, s;
	tcp_pair(&c, &s);
	unsigned char sent[100], got[1000];
	wt_fill(sent, sizeof(sent), 3);
	memset(got, 0xee, sizeof(got));
	weft_join *jr = stream_spawn(rt, 0, s, got, sizeof(got));
	cr_assert_eq(send(c, sent, 60, MSG_NOSIGNAL), 60);
	wt_sleep_ms(5); /* likely two receives, not one */
	cr_assert_eq(send(c, sent + 60, 40, MSG_NOSIGNAL), 40);
	close(c);
	struct stream_out o = stream_join(jr);
	cr_expect_eq(o.res, -EPIPE, "recv_exact: %lld", (long long)o.res);
	cr_expect_eq(o.done, sizeof(sent), "done %zu", o.done);
	cr_expect_eq(memcmp(got, sent, sizeof(sent)), 0, "received bytes lost");
	for (size_t i = sizeof(sent); i < sizeof(got); i++)
		cr_assert_eq(got[i], 0xee, "byte %zu written past done", i);
	wt_rt_free(rt);
	close(s);
}

WT_RT_TEST_T(stream, send_all_to_closed_peer_fails, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int c, s;
	tcp_pair(&c, &s);
	close(s);
	unsigned char *a = malloc(BIG);
	cr_assert_not_null(a);
	wt_fill(a, BIG, 4);
	weft_join *js = stream_spawn(rt, 1, c, a, BIG);
	struct stream_out o = stream_join(js);
	cr_expect(o.res == -EPIPE || o.res == -ECONNRESET,
		  "send_all to a closed peer: %lld (%s)", (long long)o.res,
		  o.res < 0 ? weft_strerror((int)o.res) : "no error");
	cr_expect_lt(o.done, (size_t)BIG, "done %zu", o.done);
	wt_rt_free(rt);
	close(c);
	free(a);
}

/*
 * Regression test for a 32-bit truncation: a length of 4 GiB cut to its
 * low 32 bits is a recv of 0 bytes, which returns 0 as if the peer had
 * closed. The length is clamped to WEFT_IO_MAX_LEN instead, so the recv
 * returns the 5 bytes queued. Only 5 bytes can arrive, so a 64-byte
 * buffer is safe (the same trick is not safe for send: the kernel would
 * read past the buffer).
 *
 * The buffer is static, not on the stack: the kernel checks that the
 * whole (clamped, ~2 GiB) range lies in user space (access_ok), and a
 * stack near the top of the address space fails that with -EFAULT.
 */
static unsigned char recv_4gib_buf[64];

WT_RT_TEST(stream, recv_len_4gib_returns_queued_bytes)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int c, s;
	tcp_pair(&c, &s);
	cr_assert_eq(send(c, "hello", 5, MSG_NOSIGNAL), 5);
	unsigned char *buf = recv_4gib_buf;
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_recv(&io, s, buf, 1ull << 32, 0), 0);
	int64_t r = wt_op_run(rt, &io);
	cr_expect_eq(r, 5, "recv of len 2^32: %lld", (long long)r);
	cr_expect_eq(memcmp(buf, "hello", 5), 0);
	/* And 2^32 + 5: truncated that would be a 5-byte recv. */
	cr_assert_eq(send(c, "world!", 6, MSG_NOSIGNAL), 6);
	cr_assert_eq(weft_io_prep_recv(&io, s, buf, (1ull << 32) + 5, 0), 0);
	cr_expect_eq(wt_op_run(rt, &io), 6);
	cr_expect_eq(memcmp(buf, "world!", 6), 0);
	wt_rt_free(rt);
	close(c);
	close(s);
}

WT_RT_TEST(stream, argument_errors_and_zero_length)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int c, s;
	tcp_pair(&c, &s);
	weft_send_all sa;
	weft_recv_exact re;
	memset(&sa, 0, sizeof(sa));
	memset(&re, 0, sizeof(re));
	cr_expect_eq(weft_send_all_init(NULL, c, "x", 1, 0), -EINVAL);
	cr_expect_eq(weft_recv_exact_init(NULL, s, &sa, 1, 0), -EINVAL);
	/* A NULL buffer with a length: refused, and the poll says so. */
	cr_expect_eq(weft_send_all_init(&sa, c, NULL, 10, 0), -EINVAL);
	cr_expect_eq(weft_recv_exact_init(&re, s, NULL, 10, 0), -EINVAL);
	weft_waker w;
	weft_cx cx;
	int64_t r = 0;
	wt_noop_cx(&cx, &w);
	cr_expect_eq(weft_send_all_poll(&sa, &cx, &r), WEFT_READY);
	cr_expect_eq(r, -EINVAL);
	cr_expect_eq(weft_recv_exact_poll(&re, &cx, &r), WEFT_READY);
	cr_expect_eq(r, -EINVAL);
	cr_expect_eq(weft_send_all_done(NULL), 0);
	cr_expect_eq(weft_recv_exact_done(NULL), 0);
	weft_send_all_drop(NULL);
	weft_recv_exact_drop(NULL);
	/* Zero bytes: done at once, in a task. */
	weft_join *js = stream_spawn(rt, 1, c, NULL, 0);
	weft_join *jr = stream_spawn(rt, 0, s, NULL, 0);
	struct stream_out os = stream_join(js), orr = stream_join(jr);
	cr_expect_eq(os.res, 0);
	cr_expect_eq(orr.res, 0);
	cr_expect_eq(wt_metrics(rt).ops_submitted, 0);
	wt_rt_free(rt);
	close(c);
	close(s);
}
