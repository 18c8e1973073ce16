/* SPDX-License-Identifier: MIT */
/*
 * TCP over io_uring on 127.0.0.1 (port 0): listen, accept and connect in
 * tasks, send/recv round trips from 1 byte to 1 MiB (looping over partial
 * sends), many concurrent echo connections verifying every byte, and close
 * through the ring.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "helpers.h"

static int listen_local(const char *host, uint16_t *port)
{
	int fd = weft_tcp_listen(host, 0, 256);
	cr_assert_geq(fd, 0, "weft_tcp_listen(%s): %s", host ? host : "NULL",
		      weft_strerror(fd));
	int p = weft_tcp_local_port(fd);
	cr_assert_gt(p, 0, "weft_tcp_local_port: %s", weft_strerror(p));
	*port = (uint16_t)p;
	return fd;
}

/* Accept and connect as two tasks; returns both ends. */
static void connect_pair(weft_runtime *rt, const char *host, int lfd,
			 uint16_t port, int *server, int *client)
{
	struct sockaddr_storage ss;
	socklen_t len;
	weft_io acc = WEFT_IO_INIT, con = WEFT_IO_INIT;
	cr_assert_eq(weft_addr_parse(host, port, &ss, &len), 0);
	weft_io_prep_accept(&acc, lfd);
	cr_assert_eq(weft_io_prep_connect(&con, (struct sockaddr *)&ss, len), 0);
	weft_join *ja = wt_op_spawn(rt, &acc, NULL);
	weft_join *jc = wt_op_spawn(rt, &con, NULL);
	int64_t s = wt_op_join(ja), c = wt_op_join(jc);
	cr_assert_geq(s, 0, "accept: %s", weft_strerror((int)s));
	cr_assert_geq(c, 0, "connect: %s", weft_strerror((int)c));
	*server = (int)s;
	*client = (int)c;
}

static int op_close(weft_runtime *rt, int fd)
{
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_close(&io, fd);
	return (int)wt_op_run(rt, &io);
}

/* --- transfer: send all / receive exactly ------------------------------ */

struct xfer {
	int fd;
	int is_send;
	unsigned char *buf;
	size_t len;
	size_t chunk; /* at most this much per op */
	int64_t *ops_out; /* optional: ops used, written at READY */
	/* private */
	size_t off;
	int armed;
	int64_t ops;
	weft_io io;
};

/* Output: bytes moved (short only at EOF) or a negative errno. */
static weft_poll xfer_poll(void *self, weft_cx *cx, void *out)
{
	struct xfer *s = self;
	int64_t res;
	while (s->off < s->len) {
		if (!s->armed) {
			size_t n = s->len - s->off;
			if (n > s->chunk)
				n = s->chunk;
			weft_io_drop(&s->io);
			if (s->is_send)
				weft_io_prep_send(&s->io, s->fd, s->buf + s->off,
					       n, 0);
			else
				weft_io_prep_recv(&s->io, s->fd, s->buf + s->off,
					       n, 0);
			s->armed = 1;
			s->ops++;
		}
		if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		s->armed = 0;
		if (res < 0) {
			*(int64_t *)out = res;
			return WEFT_READY;
		}
		if (res == 0) {
			WT_CHECK(!s->is_send, "send of %zu bytes sent 0",
				 s->len - s->off);
			break; /* EOF */
		}
		WT_CHECK((size_t)res <= s->len - s->off, "moved %lld > %zu",
			 (long long)res, s->len - s->off);
		s->off += (size_t)res;
	}
	*(int64_t *)out = (int64_t)s->off;
	if (s->ops_out)
		*s->ops_out = s->ops;
	return WEFT_READY;
}

static void xfer_drop(void *self)
{
	struct xfer *s = self;
	weft_io_drop(&s->io);
}

static const weft_future_desc xfer_desc = {
	.poll = xfer_poll,
	.drop = xfer_drop,
	.size = sizeof(struct xfer),
	.output_size = sizeof(int64_t),
};

static weft_join *xfer_spawn(weft_runtime *rt, int fd, int is_send,
			     unsigned char *buf, size_t len, size_t chunk)
{
	struct xfer x = { .fd = fd, .is_send = is_send, .buf = buf,
			  .len = len, .chunk = chunk };
	weft_join *j;
	wt_spawn(rt, &xfer_desc, &x, &j);
	return j;
}

static int64_t join_i64(weft_join *j)
{
	int st = 1;
	int64_t v = INT64_MIN;
	/* Large transfers under sanitizers: allow more than 5 s. */
	cr_assert(wt_join_wait_ms(j, &st, &v, 20000), "join timed out");
	cr_assert_eq(st, 0, "%s", weft_strerror(st));
	weft_join_drop(j);
	return v;
}

static size_t first_diff(const unsigned char *a, const unsigned char *b,
			 size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

/* --- tests ------------------------------------------------------------- */

WT_TEST(tcp, listen_port_zero_picks_a_port)
{
	uint16_t p1, p2;
	int a = listen_local("127.0.0.1", &p1);
	int b = listen_local(NULL, &p2);
	cr_expect_neq(p1, p2);
	/* A plain connect reaches it: it really listens. */
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(p1),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_expect_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
	int fl = fcntl(a, F_GETFD);
	cr_expect(fl >= 0 && (fl & FD_CLOEXEC), "listen fd not CLOEXEC");
	close(c);
	close(a);
	close(b);
}

WT_RT_TEST(tcp, accept_and_connect)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint16_t port;
	int lfd = listen_local("127.0.0.1", &port);
	int s, c;
	connect_pair(rt, "127.0.0.1", lfd, port, &s, &c);

	/* The two fds are the two ends of one connection. */
	struct sockaddr_in cl, peer;
	socklen_t l1 = sizeof(cl), l2 = sizeof(peer);
	cr_assert_eq(getsockname(c, (struct sockaddr *)&cl, &l1), 0);
	cr_assert_eq(getpeername(s, (struct sockaddr *)&peer, &l2), 0);
	cr_expect_eq(cl.sin_port, peer.sin_port);
	cr_assert_eq(getpeername(c, (struct sockaddr *)&peer, &l2), 0);
	cr_expect_eq(ntohs(peer.sin_port), port);
	int fl = fcntl(s, F_GETFD);
	cr_expect(fl >= 0 && (fl & FD_CLOEXEC), "accepted fd not CLOEXEC");
	fl = fcntl(c, F_GETFD);
	cr_expect(fl >= 0 && (fl & FD_CLOEXEC), "connected fd not CLOEXEC");

	cr_expect_eq(op_close(rt, s), 0);
	cr_expect_eq(op_close(rt, c), 0);
	close(lfd);
	wt_rt_free(rt);
}

WT_RT_TEST_T(tcp, round_trip_sizes, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint16_t port;
	int lfd = listen_local("127.0.0.1", &port);
	int s, c;
	connect_pair(rt, "127.0.0.1", lfd, port, &s, &c);
	static const size_t sizes[] = { 1, 2, 100, 4096, 65536 + 7,
					300000, 1 << 20 };
	size_t max = 1 << 20;
	unsigned char *a = malloc(max), *b = malloc(max), *r = malloc(max);
	cr_assert(a && b && r);

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k];
		wt_fill(a, n, (unsigned)k);
		memset(b, 0, n);
		/* client -> server, sender and receiver as separate tasks;
		 * small receive chunks on odd rounds */
		weft_join *js = xfer_spawn(rt, c, 1, a, n, SIZE_MAX);
		weft_join *jr = xfer_spawn(rt, s, 0, b, n,
					   k & 1 ? 1000 : 65536);
		cr_assert_eq(join_i64(js), (int64_t)n, "send %zu", n);
		cr_assert_eq(join_i64(jr), (int64_t)n, "recv %zu", n);
		size_t d = first_diff(a, b, n);
		cr_assert_eq(d, n, "size %zu: byte %zu differs", n, d);
		/* and back */
		memset(r, 0, n);
		js = xfer_spawn(rt, s, 1, b, n, k & 1 ? 7777 : SIZE_MAX);
		jr = xfer_spawn(rt, c, 0, r, n, 65536);
		cr_assert_eq(join_i64(js), (int64_t)n);
		cr_assert_eq(join_i64(jr), (int64_t)n);
		d = first_diff(a, r, n);
		cr_assert_eq(d, n, "size %zu back: byte %zu differs", n, d);
	}
	cr_expect_eq(op_close(rt, s), 0);
	cr_expect_eq(op_close(rt, c), 0);
	close(lfd);
	wt_rt_free(rt);
	free(a);
	free(b);
	free(r);
}

WT_RT_TEST(tcp, close_through_ring)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint16_t port;
	int lfd = listen_local("127.0.0.1", &port);
	int s, c;
	connect_pair(rt, "127.0.0.1", lfd, port, &s, &c);
	cr_expect_eq(op_close(rt, c), 0);
	/* The peer sees an orderly shutdown. */
	unsigned char buf[16];
	weft_join *jr = xfer_spawn(rt, s, 0, buf, sizeof(buf), sizeof(buf));
	cr_expect_eq(join_i64(jr), 0, "recv after the peer closed");
	cr_expect_eq(op_close(rt, s), 0);
	/* Closing again: the fd is gone. (No other thread of this test
	 * opens fds meanwhile, so the number is not reused.) */
	cr_expect_eq(op_close(rt, s), -EBADF);
	close(lfd);
	wt_rt_free(rt);
}

WT_RT_TEST(tcp, ipv6_loopback)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int lfd = weft_tcp_listen("::1", 0, 16);
	if (lfd == -EADDRNOTAVAIL || lfd == -EAFNOSUPPORT) {
		wt_rt_free(rt);
		cr_skip_test("no IPv6 loopback here");
	}
	cr_assert_geq(lfd, 0, "%s", weft_strerror(lfd));
	uint16_t port = (uint16_t)weft_tcp_local_port(lfd);
	int s, c;
	connect_pair(rt, "::1", lfd, port, &s, &c);
	unsigned char a[3000], b[3000];
	wt_fill(a, sizeof(a), 6);
	weft_join *js = xfer_spawn(rt, c, 1, a, sizeof(a), SIZE_MAX);
	weft_join *jr = xfer_spawn(rt, s, 0, b, sizeof(b), 512);
	cr_expect_eq(join_i64(js), (int64_t)sizeof(a));
	cr_expect_eq(join_i64(jr), (int64_t)sizeof(b));
	cr_expect_eq(memcmp(a, b, sizeof(a)), 0);
	cr_expect_eq(op_close(rt, s), 0);
	cr_expect_eq(op_close(rt, c), 0);
	close(lfd);
	wt_rt_free(rt);
}

/* --- many concurrent echo connections ---------------------------------- */

struct server_stats {
	atomic_int accepted;
	atomic_int closed;
	atomic_int errors;
	atomic_llong echoed;
};

/* Echo until EOF, then close through the ring. 16 KiB buffer in the task
 * itself: the kernel writes into task memory. */
struct echo {
	int fd;
	struct server_stats *st;
	int step; /* 0 recv, 1 send, 2 close */
	int armed;
	size_t n, off;
	int64_t total;
	weft_io io;
	unsigned char buf[16384];
};

static weft_poll echo_poll(void *self, weft_cx *cx, void *out)
{
	struct echo *s = self;
	int64_t res;
	for (;;) {
		if (!s->armed) {
			weft_io_drop(&s->io);
			if (s->step == 0)
				weft_io_prep_recv(&s->io, s->fd, s->buf,
					       sizeof(s->buf), 0);
			else if (s->step == 1)
				weft_io_prep_send(&s->io, s->fd, s->buf + s->off,
					       s->n - s->off, 0);
			else
				weft_io_prep_close(&s->io, s->fd);
			s->armed = 1;
		}
		if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		s->armed = 0;
		switch (s->step) {
		case 0:
			if (res < 0)
				atomic_fetch_add(&s->st->errors, 1);
			if (res <= 0) {
				s->step = 2;
			} else {
				s->n = (size_t)res;
				s->off = 0;
				s->step = 1;
			}
			break;
		case 1:
			if (res <= 0) {
				atomic_fetch_add(&s->st->errors, 1);
				s->step = 2;
				break;
			}
			s->off += (size_t)res;
			s->total += res;
			if (s->off == s->n)
				s->step = 0;
			break;
		default:
			if (res != 0)
				atomic_fetch_add(&s->st->errors, 1);
			s->fd = -1;
			atomic_fetch_add(&s->st->echoed, s->total);
			atomic_fetch_add(&s->st->closed, 1);
			*(int64_t *)out = s->total;
			return WEFT_READY;
		}
	}
}

static void echo_drop(void *self)
{
	struct echo *s = self;
	weft_io_drop(&s->io);
	if (s->fd >= 0)
		close(s->fd);
}

static const weft_future_desc echo_desc = {
	.poll = echo_poll,
	.drop = echo_drop,
	.size = sizeof(struct echo),
	.output_size = sizeof(int64_t),
};

/* Accept @want connections, spawning a detached echo task for each. */
struct acceptor {
	int lfd;
	int want;
	struct server_stats *st;
	int got;
	int armed;
	weft_io io;
};

static weft_poll acceptor_poll(void *self, weft_cx *cx, void *out)
{
	struct acceptor *s = self;
	int64_t res;
	while (s->got < s->want) {
		if (!s->armed) {
			weft_io_drop(&s->io);
			weft_io_prep_accept(&s->io, s->lfd);
			s->armed = 1;
		}
		if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		s->armed = 0;
		if (res < 0) {
			atomic_fetch_add(&s->st->errors, 1);
			*(int64_t *)out = res;
			return WEFT_READY;
		}
		struct echo e = { .fd = (int)res, .st = s->st };
		if (weft_spawn(NULL, &echo_desc, &e, NULL)) {
			close((int)res);
			atomic_fetch_add(&s->st->errors, 1);
		}
		s->got++;
		atomic_fetch_add(&s->st->accepted, 1);
	}
	*(int64_t *)out = s->got;
	return WEFT_READY;
}

static void acceptor_drop(void *self)
{
	struct acceptor *s = self;
	weft_io_drop(&s->io);
}

static const weft_future_desc acceptor_desc = {
	.poll = acceptor_poll,
	.drop = acceptor_drop,
	.size = sizeof(struct acceptor),
	.output_size = sizeof(int64_t),
};

/*
 * Client: connect, then send everything while receiving the echo in the
 * same task (two ops in flight at once), half-close after the last byte,
 * read to EOF, close through the ring. Output: bytes received, or a
 * negative errno.
 */
struct client {
	const unsigned char *sbuf;
	unsigned char *rbuf; /* len + 1 bytes: room to see extra data */
	size_t len;
	/* private */
	int fd;
	int step;
	int s_armed, r_armed, shut, eof;
	size_t soff, roff;
	weft_io cio, sio, rio, xio;
};

static weft_poll client_poll(void *self, weft_cx *cx, void *out)
{
	struct client *s = self;
	int64_t res;

	if (s->step == 0) {
		if (weft_io_poll(&s->cio, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		if (res < 0) {
			*(int64_t *)out = res;
			return WEFT_READY;
		}
		s->fd = (int)res;
		s->step = 1;
	}
	while (s->step == 1) {
		int moved = 0;
		if (s->soff < s->len) {
			if (!s->s_armed) {
				weft_io_drop(&s->sio);
				weft_io_prep_send(&s->sio, s->fd,
					       s->sbuf + s->soff,
					       s->len - s->soff, 0);
				s->s_armed = 1;
			}
			if (weft_io_poll(&s->sio, cx, &res) == WEFT_READY) {
				s->s_armed = 0;
				if (res <= 0) {
					*(int64_t *)out = res ? res : -EIO;
					return WEFT_READY;
				}
				s->soff += (size_t)res;
				moved = 1;
			}
		} else if (!s->shut) {
			WT_CHECK(shutdown(s->fd, SHUT_WR) == 0, "shutdown");
			s->shut = 1;
		}
		if (!s->eof) {
			if (!s->r_armed) {
				weft_io_drop(&s->rio);
				weft_io_prep_recv(&s->rio, s->fd,
					       s->rbuf + s->roff,
					       s->len + 1 - s->roff, 0);
				s->r_armed = 1;
			}
			if (weft_io_poll(&s->rio, cx, &res) == WEFT_READY) {
				s->r_armed = 0;
				if (res < 0) {
					*(int64_t *)out = res;
					return WEFT_READY;
				}
				if (res == 0)
					s->eof = 1;
				s->roff += (size_t)res;
				moved = 1;
				if (s->roff > s->len) {
					*(int64_t *)out = -EOVERFLOW;
					return WEFT_READY;
				}
			}
		}
		if (s->eof && s->shut)
			s->step = 2;
		else if (!moved)
			return WEFT_PENDING;
	}
	if (s->step == 2) {
		weft_io_prep_close(&s->xio, s->fd);
		s->step = 3;
	}
	if (weft_io_poll(&s->xio, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	s->fd = -1;
	*(int64_t *)out = res ? res : (int64_t)s->roff;
	return WEFT_READY;
}

static void client_drop(void *self)
{
	struct client *s = self;
	weft_io_drop(&s->cio);
	weft_io_drop(&s->sio);
	weft_io_drop(&s->rio);
	weft_io_drop(&s->xio);
	if (s->fd >= 0)
		close(s->fd);
}

static const weft_future_desc client_desc = {
	.poll = client_poll,
	.drop = client_drop,
	.size = sizeof(struct client),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST_T(tcp, many_concurrent_echo_connections, 30)
{
	enum { CONNS = 100 };
	weft_runtime *rt = wt_rt_new(cfg);
	struct server_stats st = { 0 };
	uint16_t port;
	int lfd = listen_local("127.0.0.1", &port);
	struct sockaddr_storage ss;
	socklen_t sslen;
	cr_assert_eq(weft_addr_parse("127.0.0.1", port, &ss, &sslen), 0);

	struct acceptor a = { .lfd = lfd, .want = CONNS, .st = &st };
	weft_join *ja;
	wt_spawn(rt, &acceptor_desc, &a, &ja);

	unsigned char *sb[CONNS], *rb[CONNS];
	size_t len[CONNS];
	weft_join *jc[CONNS];
	long long total = 0;
	for (int i = 0; i < CONNS; i++) {
		len[i] = 1 + ((size_t)i * 7919) % 32768;
		if (i % 10 == 0)
			len[i] = 200000 + (size_t)i; /* some bigger ones */
		total += (long long)len[i];
		sb[i] = malloc(len[i]);
		rb[i] = calloc(1, len[i] + 1);
		cr_assert(sb[i] && rb[i]);
		wt_fill(sb[i], len[i], 1000u + (unsigned)i);
		struct client c = { .sbuf = sb[i], .rbuf = rb[i],
				    .len = len[i], .fd = -1 };
		cr_assert_eq(weft_io_prep_connect(&c.cio, (struct sockaddr *)&ss,
					       sslen), 0);
		wt_spawn(rt, &client_desc, &c, &jc[i]);
	}
	for (int i = 0; i < CONNS; i++) {
		int64_t got = join_i64(jc[i]);
		cr_expect_eq(got, (int64_t)len[i], "conn %d: %lld of %zu (%s)",
			     i, (long long)got, len[i],
			     got < 0 ? weft_strerror((int)got) : "short");
		size_t d = first_diff(sb[i], rb[i], len[i]);
		cr_expect_eq(d, len[i], "conn %d: byte %zu differs", i, d);
	}
	cr_expect_eq(join_i64(ja), CONNS);
	/* Every echo task sees EOF and closes; wait for the last ones. */
	cr_expect_eq(wt_wait_atomic_ge(&st.closed, CONNS, 5000), CONNS);
	cr_expect_eq(atomic_load(&st.errors), 0);
	cr_expect_eq(atomic_load(&st.echoed), total);
	close(lfd);
	wt_rt_free(rt);
	for (int i = 0; i < CONNS; i++) {
		free(sb[i]);
		free(rb[i]);
	}
}

WT_RT_TEST(tcp, partial_send_chunks_fill_socket_buffer)
{
	/* A sender far ahead of a slow receiver: sends complete partially
	 * or wait for buffer space, and nothing is lost or reordered. */
	weft_runtime *rt = wt_rt_new(cfg);
	uint16_t port;
	int lfd = listen_local("127.0.0.1", &port);
	int s, c;
	connect_pair(rt, "127.0.0.1", lfd, port, &s, &c);
	/* A small send buffer (a small receive buffer too would make TCP
	 * crawl: seconds per 100 KiB). */
	int small = 4096;
	setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	size_t n = 512 * 1024;
	unsigned char *a = malloc(n), *b = calloc(1, n);
	cr_assert(a && b);
	wt_fill(a, n, 77);
	int64_t send_ops = 0;
	struct xfer x = { .fd = c, .is_send = 1, .buf = a, .len = n,
			  .chunk = SIZE_MAX, .ops_out = &send_ops };
	weft_join *js;
	wt_spawn(rt, &xfer_desc, &x, &js);
	wt_sleep_ms(20); /* let the sender fill the buffers first */
	weft_join *jr = xfer_spawn(rt, s, 0, b, n, 3000);
	cr_expect_eq(join_i64(js), (int64_t)n);
	cr_expect_eq(join_i64(jr), (int64_t)n);
	cr_expect_gt(send_ops, 1, "no partial send happened");
	size_t d = first_diff(a, b, n);
	cr_expect_eq(d, n, "byte %zu differs", d);
	cr_expect_eq(op_close(rt, s), 0);
	cr_expect_eq(op_close(rt, c), 0);
	close(lfd);
	wt_rt_free(rt);
	free(a);
	free(b);
}
