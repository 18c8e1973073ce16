/* SPDX-License-Identifier: MIT */
/*
 * Network error paths: every failure comes back as the documented negative
 * errno through the op's result (never a signal, never a hang): EOF as 0,
 * refused connects, bad fds, ports in use, bad addresses, resets, and ops
 * polled off a worker.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2 */
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "net_helpers.h"

static int64_t recv_once(weft_runtime *rt, int fd, size_t len)
{
	static unsigned char buf[65536];
	return wt_recv_op(rt, fd, buf, len);
}

/* --- EOF and resets ---------------------------------------------------- */

WT_RT_TEST(net_err, recv_after_peer_close_is_zero_socketpair)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	cr_assert_eq(write(sv[1], "hi", 2), 2);
	close(sv[1]);
	/* Buffered data first, then EOF. */
	cr_expect_eq(recv_once(rt, sv[0], 100), 2);
	cr_expect_eq(recv_once(rt, sv[0], 100), 0);
	cr_expect_eq(recv_once(rt, sv[0], 100), 0, "EOF is sticky");
	close(sv[0]);
	wt_rt_free(rt);
}

WT_RT_TEST(net_err, pending_recv_sees_peer_close)
{
	/* The recv is in flight (PENDING) when the peer closes. */
	weft_runtime *rt = wt_rt_new(cfg);
	int a, b;
	wt_tcp_pair(&a, &b);
	static unsigned char buf[64];
	weft_io io = WEFT_IO_INIT;
	struct wt_counters c = { 0 };
	weft_io_prep_recv(&io, a, buf, sizeof(buf), 0);
	weft_join *j = wt_op_spawn(rt, &io, &c);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	wt_sleep_ms(5);
	cr_expect_not(weft_join_is_finished(j), "recv finished with no data");
	shutdown(b, SHUT_WR);
	cr_expect_eq(wt_op_join(j), 0);
	close(a);
	close(b);
	wt_rt_free(rt);
}

WT_RT_TEST(net_err, recv_after_reset_is_econnreset)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int a, b;
	wt_tcp_pair(&a, &b);
	wt_close_with_reset(b);
	cr_expect_eq(recv_once(rt, a, 100), -ECONNRESET);
	close(a);
	wt_rt_free(rt);
}

WT_RT_TEST(net_err, send_to_reset_peer_fails_without_sigpipe)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int a, b;
	wt_tcp_pair(&a, &b);
	wt_close_with_reset(b);
	static unsigned char buf[65536];
	int64_t res = 0;
	/* The first send may still be accepted by the local stack; keep
	 * going until the error surfaces. SIGPIPE would kill the test. */
	for (int i = 0; i < 100 && res >= 0; i++)
		res = wt_send_op(rt, a, buf, sizeof(buf));
	cr_expect(res == -EPIPE || res == -ECONNRESET, "send gave %lld (%s)",
		  (long long)res, weft_strerror((int)res));
	close(a);
	wt_rt_free(rt);
}

WT_RT_TEST(net_err, send_after_peer_closed_is_epipe)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	close(sv[1]);
	cr_expect_eq(wt_send_op(rt, sv[0], "x", 1), -EPIPE);
	close(sv[0]);
	wt_rt_free(rt);
}

/* --- connect ------------------------------------------------------- */

WT_RT_TEST(net_err, connect_refused)
{
	weft_runtime *rt = wt_rt_new(cfg);
	/* A port bound but not listening: nobody accepts, and nobody else
	 * can take it while we hold it. */
	int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(hold, (struct sockaddr *)&sin, sizeof(sin)), 0);
	int port = weft_tcp_local_port(hold);
	cr_assert_gt(port, 0);
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(weft_addr_parse("127.0.0.1", (uint16_t)port, &ss, &len),
		     0);
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_connect(&io, (struct sockaddr *)&ss, len), 0);
	cr_expect_eq(wt_op_run(rt, &io), -ECONNREFUSED);
	close(hold);
	wt_rt_free(rt);
}

WT_TEST(net_err, connect_init_bad_address)
{
	weft_io io = WEFT_IO_INIT;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int r = weft_io_prep_connect(&io, (struct sockaddr *)&sun, sizeof(sun));
	cr_expect(r == -EAFNOSUPPORT || r == -EINVAL, "AF_UNIX: %d", r);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	cr_expect_eq(weft_io_prep_connect(&io, (struct sockaddr *)&sin, 4),
		     -EINVAL, "truncated sockaddr_in");
	cr_expect_eq(weft_io_prep_connect(&io, NULL, sizeof(sin)), -EINVAL);
}

/* --- bad fds ------------------------------------------------------------ */

WT_RT_TEST(net_err, ops_on_bad_fd_are_ebadf)
{
	weft_runtime *rt = wt_rt_new(cfg);
	/* -1, and a number far above anything this test opens: EBADF whether
	 * it lies below the fd limit (not open) or above it. */
	int bad[] = { -1, 19000 };
	for (size_t i = 0; i < 2; i++) {
		int fd = bad[i];
		weft_io io;
		cr_expect_eq(recv_once(rt, fd, 10), -EBADF, "recv fd %d", fd);
		cr_expect_eq(wt_send_op(rt, fd, "x", 1), -EBADF, "send fd %d",
			     fd);
		weft_io_prep_accept(&io, fd);
		cr_expect_eq(wt_op_run(rt, &io), -EBADF, "accept fd %d", fd);
		weft_io_prep_close(&io, fd);
		cr_expect_eq(wt_op_run(rt, &io), -EBADF, "close fd %d", fd);
	}
	wt_rt_free(rt);
}

WT_RT_TEST(net_err, ops_on_closed_fd_are_ebadf)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	close(sv[0]);
	close(sv[1]);
	/* Nothing else in this test opens fds, so the numbers stay free. */
	cr_expect_eq(recv_once(rt, sv[0], 10), -EBADF);
	cr_expect_eq(wt_send_op(rt, sv[1], "x", 1), -EBADF);
	wt_rt_free(rt);
}

WT_RT_TEST(net_err, recv_on_non_socket)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_expect_eq(recv_once(rt, p[0], 10), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	wt_rt_free(rt);
}

WT_RT_TEST(net_err, accept_on_unlistened_socket)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_accept(&io, fd);
	cr_expect_eq(wt_op_run(rt, &io), -EINVAL);
	close(fd);
	wt_rt_free(rt);
}

/* --- listen and addresses ---------------------------------------------- */

WT_TEST(net_err, listen_port_in_use)
{
	int a = weft_tcp_listen("127.0.0.1", 0, 4);
	cr_assert_geq(a, 0);
	int port = weft_tcp_local_port(a);
	cr_assert_gt(port, 0);
	cr_expect_eq(weft_tcp_listen("127.0.0.1", (uint16_t)port, 4),
		     -EADDRINUSE);
	close(a);
}

WT_TEST(net_err, listen_bad_host)
{
	cr_expect_eq(weft_tcp_listen("localhost", 0, 4), -EINVAL);
	cr_expect_eq(weft_tcp_listen("300.1.1.1", 0, 4), -EINVAL);
	cr_expect_eq(weft_tcp_listen("", 0, 4), -EINVAL);
}

WT_TEST(net_err, local_port_of_bad_fd)
{
	cr_expect_eq(weft_tcp_local_port(-1), -EBADF);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_expect_eq(weft_tcp_local_port(p[0]), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
}

WT_TEST(net_err, addr_parse_rejects_bad_hosts)
{
	static const char *bad[] = {
		"localhost", "example.com", "", "1.2.3.4.5",
		"256.0.0.1", "::g", "1.2.3.4:80", " 127.0.0.1", "[::1]",
	};
	struct sockaddr_storage ss;
	socklen_t len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(weft_addr_parse(bad[i], 80, &ss, &len), -EINVAL,
			     "\"%s\" accepted", bad[i]);
	cr_expect_eq(weft_addr_parse("127.0.0.1", 80, NULL, &len), -EINVAL);
}

WT_TEST(net_err, addr_parse_good_hosts)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	cr_assert_eq(weft_addr_parse("10.1.2.3", 8080, &ss, &len), 0);
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	cr_expect_eq(len, sizeof(struct sockaddr_in));
	cr_expect_eq(in->sin_family, AF_INET);
	cr_expect_eq(ntohs(in->sin_port), 8080);
	cr_expect_eq(ntohl(in->sin_addr.s_addr), 0x0a010203u);

	cr_assert_eq(weft_addr_parse(NULL, 1, &ss, &len), 0);
	cr_expect_eq(in->sin_family, AF_INET);
	cr_expect_eq(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK,
		     "NULL host is 127.0.0.1");

	cr_assert_eq(weft_addr_parse("::1", 443, &ss, &len), 0);
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	cr_expect_eq(len, sizeof(struct sockaddr_in6));
	cr_expect_eq(in6->sin6_family, AF_INET6);
	cr_expect_eq(ntohs(in6->sin6_port), 443);
	cr_expect(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
}

/* --- ops in the wrong place -------------------------------------------- */

WT_TEST(net_err, op_polled_off_worker_is_eperm)
{
	/* With and without a runtime around: this thread is no worker. */
	struct wt_cfg one = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&one);
	weft_waker noop = weft_waker_noop();
	weft_cx cx;
	weft_cx_init(&cx, &noop);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	unsigned char buf[8];
	weft_io ios[4];
	weft_io_prep_sleep(&ios[0], 1000000);
	weft_io_prep_recv(&ios[1], sv[0], buf, sizeof(buf), 0);
	weft_io_prep_send(&ios[2], sv[0], "x", 1, 0);
	weft_io_prep_close(&ios[3], sv[1]);
	for (int i = 0; i < 4; i++) {
		int64_t res = 0;
		cr_expect_eq(weft_io_poll(&ios[i], &cx, &res), WEFT_READY,
			     "op %d", i);
		cr_expect_eq(res, -EPERM, "op %d: %lld", i, (long long)res);
		weft_io_drop(&ios[i]);
	}
	/* The close never ran: sv[1] is still open. */
	cr_expect_eq(write(sv[1], "y", 1), 1);
	close(sv[0]);
	close(sv[1]);
	wt_rt_free(rt);
}

struct bad_poll {
	weft_io io;
	int mode; /* 0: zeroed io; 1: poll again after READY */
};

static weft_poll bad_poll_poll(void *self, weft_cx *cx, void *out)
{
	struct bad_poll *s = self;
	int64_t res = 0;
	if (s->mode == 1) {
		weft_poll p = weft_io_poll(&s->io, cx, &res);
		if (p == WEFT_PENDING)
			return WEFT_PENDING;
		WT_CHECK(res == 0, "sleep gave %lld", (long long)res);
		res = 0;
	}
	/* Zeroed io, or an io polled after READY. */
	weft_poll p = weft_io_poll(&s->io, cx, &res);
	*(int64_t *)out = p == WEFT_READY ? res : INT64_MIN;
	return WEFT_READY;
}

static void bad_poll_drop(void *self)
{
	struct bad_poll *s = self;
	weft_io_drop(&s->io);
}

static const weft_future_desc bad_poll_desc = {
	.poll = bad_poll_poll,
	.drop = bad_poll_drop,
	.size = sizeof(struct bad_poll),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(net_err, uninitialised_or_finished_op_is_einval)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct bad_poll b;
	int64_t out = 0;
	memset(&b, 0, sizeof(b));
	wt_block_on(rt, &bad_poll_desc, &b, &out);
	cr_expect_eq(out, -EINVAL, "zeroed weft_io: %lld", (long long)out);

	memset(&b, 0, sizeof(b));
	b.mode = 1;
	weft_io_prep_sleep(&b.io, 0);
	wt_block_on(rt, &bad_poll_desc, &b, &out);
	cr_expect_eq(out, -EINVAL, "poll after READY: %lld", (long long)out);
	wt_rt_free(rt);
}

/* --- error strings ------------------------------------------------------ */

WT_TEST(net_err, strerror_covers_weft_errors)
{
	int errs[] = { 0, EPERM, ENOSYS, ESHUTDOWN, ECANCELED, EDEADLK,
		       EALREADY, EINVAL, ENOMEM, EPIPE, ECONNREFUSED, EBADF,
		       EADDRINUSE, 123456 };
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		/* Copy: for an unknown code the text is glibc's per-thread
		 * buffer, replaced by the next call. */
		char a[256];
		const char *s = weft_strerror(-errs[i]);
		cr_assert_not_null(s);
		snprintf(a, sizeof(a), "%s", s);
		const char *b = weft_strerror(errs[i]);
		cr_assert_not_null(b);
		cr_expect_gt(strlen(a), 0);
		cr_expect_str_eq(a, b, "sign matters for %d", errs[i]);
	}
	cr_expect_str_neq(weft_strerror(-ECANCELED), weft_strerror(-EPIPE));
}

/* INT_MIN has no positive counterpart: negating it was signed overflow
 * (UBSan aborts in the address build). */
WT_TEST(net_err, strerror_int_min_is_unknown)
{
	cr_expect_str_eq(weft_strerror(INT_MIN), "unknown error");
	cr_expect_str_eq(weft_strerror(INT_MAX), "unknown error");
	cr_expect_str_eq(weft_strerror(-INT_MAX), "unknown error");
}

/* SIGPIPE must never be what reports a closed peer. */
static void sigpipe_fatal(void)
{
	signal(SIGPIPE, SIG_DFL);
}

Test(net_err, no_sigpipe_on_send, .init = sigpipe_fatal, .timeout = 10,
     .fini = wt_fini)
{
	struct wt_cfg one = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&one);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	close(sv[1]);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(wt_send_op(rt, sv[0], "abc", 3), -EPIPE);
	close(sv[0]);
	wt_rt_free(rt);
}
