/* SPDX-License-Identifier: MIT */
/*
 * TCP faults as the ops see them, on real 127.0.0.1 connections:
 *  - peer reset (SO_LINGER {1, 0}: the close sends a RST): the first op
 *    after it fails with -ECONNRESET, a recv in flight included; after
 *    that sends fail with -EPIPE and recvs return 0;
 *  - half-close by the peer (shutdown SHUT_WR): our recv returns 0, our
 *    sends still arrive;
 *  - our weft_io_prep_shutdown: SHUT_WR gives the peer EOF after the data
 *    sent before it, SHUT_RD makes our recv (one in flight too) return 0,
 *    SHUT_RDWR both; its errors;
 *  - the same from a fiber (weft_co_recv on a reset, weft_co_shutdown).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2 */
#endif
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include "fiber_helpers.h"
#include "net_helpers.h"

/* A runtime and a TCP pair: a is ours (used through ops), b the peer
 * (plain syscalls); either may be closed early and set to -1. */
struct fix {
	weft_runtime *rt;
	int a, b;
};

static struct fix fix_open(const struct wt_cfg *cfg)
{
	struct fix f = { .rt = wt_rt_new(cfg) };
	wt_tcp_pair(&f.a, &f.b);
	return f;
}

static void fix_close(struct fix *f)
{
	if (f->a >= 0)
		close(f->a);
	if (f->b >= 0)
		close(f->b);
	wt_rt_free(f->rt);
}

/* The peer resets the connection. */
static void fix_reset(struct fix *f)
{
	wt_close_with_reset(f->b);
	f->b = -1;
}

/* Wait (5 s at most) until @fd has seen the peer's RST or FIN, so that
 * the next op finds it rather than racing it. */
static void wait_hup(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
	cr_assert_eq(poll(&p, 1, 5000), 1, "no RST/FIN within 5 s");
}

/* Read from the peer @fd with plain syscalls: the result of one read()
 * after at most 5 s of waiting (-ETIMEDOUT if nothing came). */
static ssize_t peer_read(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		return -ETIMEDOUT;
	ssize_t n = read(fd, buf, len);
	return n < 0 ? -errno : n;
}

static int64_t shutdown_op(weft_runtime *rt, int fd, int how)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_shutdown(&io, fd, how), 0);
	return wt_op_run(rt, &io);
}

/* Spawn a recv op on @fd into @buf and return once it has been polled
 * and found nothing to read (it is in flight, PENDING). */
static weft_join *pending_recv(weft_runtime *rt, int fd, void *buf,
			       size_t len, struct wt_counters *c)
{
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_recv(&io, fd, buf, len, 0);
	weft_join *j = wt_op_spawn(rt, &io, c);
	cr_assert_eq(wt_wait_atomic_ge(&c->polls, 1, 5000), 1);
	wt_sleep_ms(5);
	cr_expect_not(weft_join_is_finished(j), "recv finished with no data");
	return j;
}

/* --- peer reset ---------------------------------------------------------- */

WT_RT_TEST(net_faults, reset_fails_recv_in_flight_then_send_is_epipe)
{
	struct fix f = fix_open(cfg);
	static unsigned char buf[64];
	struct wt_counters c = { 0 };
	weft_join *j = pending_recv(f.rt, f.a, buf, sizeof(buf), &c);
	fix_reset(&f);
	cr_expect_eq(wt_op_join(j), -ECONNRESET);
	/* The reset was reported once; the connection is gone. */
	cr_expect_eq(wt_send_op(f.rt, f.a, "x", 1), -EPIPE);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 0);
	fix_close(&f);
}

WT_RT_TEST(net_faults, reset_fails_first_send_with_econnreset)
{
	struct fix f = fix_open(cfg);
	fix_reset(&f);
	wait_hup(f.a);
	/* No recv consumed the reset: the next op of any kind reports it,
	 * here a send (no SIGPIPE: MSG_NOSIGNAL), then -EPIPE. */
	cr_expect_eq(wt_send_op(f.rt, f.a, "x", 1), -ECONNRESET);
	cr_expect_eq(wt_send_op(f.rt, f.a, "x", 1), -EPIPE);
	static unsigned char buf[16];
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 0);
	fix_close(&f);
}

WT_RT_TEST(net_faults, reset_after_data_delivers_the_data_first)
{
	/* Bytes that arrived before the RST stay readable (Linux does not
	 * purge them): recv returns them, then -ECONNRESET, then 0. */
	struct fix f = fix_open(cfg);
	cr_assert_eq(write(f.b, "kept", 4), 4);
	fix_reset(&f);
	wait_hup(f.a);
	static unsigned char buf[16];
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 4);
	cr_expect_eq(memcmp(buf, "kept", 4), 0);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), -ECONNRESET);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 0);
	fix_close(&f);
}

/* --- half-close by the peer -------------------------------------------- */

WT_RT_TEST(net_faults, peer_half_close_gives_eof_and_we_can_still_send)
{
	struct fix f = fix_open(cfg);
	static unsigned char buf[64];
	/* Data first, then EOF for a recv in flight. */
	cr_assert_eq(write(f.b, "ping", 4), 4);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 4);
	cr_expect_eq(memcmp(buf, "ping", 4), 0);
	struct wt_counters c = { 0 };
	weft_join *j = pending_recv(f.rt, f.a, buf, sizeof(buf), &c);
	cr_assert_eq(shutdown(f.b, SHUT_WR), 0);
	cr_expect_eq(wt_op_join(j), 0);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 0, "EOF is sticky");
	/* Our direction is still open: the peer reads our reply. */
	cr_expect_eq(wt_send_op(f.rt, f.a, "pong", 4), 4);
	char got[8] = { 0 };
	cr_expect_eq(peer_read(f.b, got, sizeof(got)), 4);
	cr_expect_str_eq(got, "pong");
	fix_close(&f);
}

/* --- our shutdown --------------------------------------------------------- */

WT_RT_TEST(net_faults, shutdown_wr_gives_peer_eof_after_the_data)
{
	struct fix f = fix_open(cfg);
	cr_expect_eq(wt_send_op(f.rt, f.a, "last", 4), 4);
	cr_expect_eq(shutdown_op(f.rt, f.a, SHUT_WR), 0);
	char got[8] = { 0 };
	cr_expect_eq(peer_read(f.b, got, sizeof(got)), 4);
	cr_expect_str_eq(got, "last");
	cr_expect_eq(peer_read(f.b, got, sizeof(got)), 0, "peer sees EOF");
	/* Half-closed: we still receive; our own sends fail. */
	cr_assert_eq(write(f.b, "back", 4), 4);
	static unsigned char buf[16];
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 4);
	cr_expect_eq(memcmp(buf, "back", 4), 0);
	cr_expect_eq(wt_send_op(f.rt, f.a, "x", 1), -EPIPE);
	fix_close(&f);
}

WT_RT_TEST(net_faults, shutdown_rd_makes_recv_eof)
{
	struct fix f = fix_open(cfg);
	static unsigned char buf[16];
	cr_expect_eq(shutdown_op(f.rt, f.a, SHUT_RD), 0);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 0);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 0);
	/* The other direction is untouched. */
	cr_expect_eq(wt_send_op(f.rt, f.a, "w", 1), 1);
	char got[4] = { 0 };
	cr_expect_eq(peer_read(f.b, got, sizeof(got)), 1);
	fix_close(&f);
}

WT_RT_TEST(net_faults, shutdown_rd_ends_recv_in_flight)
{
	/* A way to stop a reader without cancelling its op: the recv in
	 * flight returns 0 once the shutdown lands. */
	struct fix f = fix_open(cfg);
	static unsigned char buf[16];
	struct wt_counters c = { 0 };
	weft_join *j = pending_recv(f.rt, f.a, buf, sizeof(buf), &c);
	cr_expect_eq(shutdown_op(f.rt, f.a, SHUT_RD), 0);
	cr_expect_eq(wt_op_join(j), 0);
	fix_close(&f);
}

WT_RT_TEST(net_faults, shutdown_rdwr)
{
	struct fix f = fix_open(cfg);
	static unsigned char buf[16];
	cr_expect_eq(shutdown_op(f.rt, f.a, SHUT_RDWR), 0);
	char got[4];
	cr_expect_eq(peer_read(f.b, got, sizeof(got)), 0, "peer sees EOF");
	cr_expect_eq(wt_send_op(f.rt, f.a, "x", 1), -EPIPE);
	cr_expect_eq(wt_recv_op(f.rt, f.a, buf, sizeof(buf)), 0);
	fix_close(&f);
}

WT_RT_TEST(net_faults, shutdown_unix_stream)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	cr_expect_eq(shutdown_op(rt, sv[0], SHUT_WR), 0);
	char got[4];
	cr_expect_eq(peer_read(sv[1], got, sizeof(got)), 0);
	cr_expect_eq(write(sv[1], "u", 1), 1);
	static unsigned char buf[4];
	cr_expect_eq(wt_recv_op(rt, sv[0], buf, sizeof(buf)), 1);
	close(sv[0]);
	close(sv[1]);
	wt_rt_free(rt);
}

WT_RT_TEST(net_faults, shutdown_errors)
{
	struct fix f = fix_open(cfg);
	weft_io io = WEFT_IO_INIT;
	/* Only the three values of shutdown(2): the prep and the poll both
	 * say so, and nothing reaches the socket. */
	static const int bad[] = { -1, 3, 42 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(weft_io_prep_shutdown(&io, f.a, bad[i]), -EINVAL,
			     "how %d", bad[i]);
		cr_expect_eq(wt_op_run(f.rt, &io), -EINVAL, "how %d", bad[i]);
	}
	cr_expect_eq(weft_io_prep_shutdown(NULL, f.a, SHUT_WR), -EINVAL);
	cr_assert_eq(write(f.a, "y", 1), 1, "still fully open");
	char got[4];
	cr_expect_eq(peer_read(f.b, got, sizeof(got)), 1);

	int unconnected = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(unconnected, 0);
	cr_expect_eq(shutdown_op(f.rt, unconnected, SHUT_WR), -ENOTCONN);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_expect_eq(shutdown_op(f.rt, p[0], SHUT_RD), -ENOTSOCK);
	cr_expect_eq(shutdown_op(f.rt, -1, SHUT_RD), -EBADF);
	close(unconnected);
	close(p[0]);
	close(p[1]);
	fix_close(&f);
}

/* --- from a fiber --------------------------------------------------------- */

struct fiber_reset {
	int fd;
	atomic_int receiving;
	int64_t recv, send, recv_after, shut_bad, shut_wr;
};

static void *fiber_reset_fn(void *arg)
{
	struct fiber_reset *f = arg;
	unsigned char buf[32];
	atomic_store(&f->receiving, 1);
	f->recv = weft_co_recv(f->fd, buf, sizeof(buf), 0, 0);
	f->send = weft_co_send(f->fd, "x", 1, 0, 0);
	f->recv_after = weft_co_recv(f->fd, buf, sizeof(buf), 0, 0);
	f->shut_bad = weft_co_shutdown(f->fd, 7, 0);
	f->shut_wr = weft_co_shutdown(f->fd, SHUT_WR,
				       wt_mono_ns() + 5000 * WT_MS);
	return NULL;
}

WT_RT_TEST(net_faults, fiber_recv_sees_reset)
{
	struct fix x = fix_open(cfg);
	struct fiber_reset f = { .fd = x.a };
	weft_join *j = wt_go(x.rt, fiber_reset_fn, &f, "reset");
	cr_assert_eq(wt_wait_atomic_ge(&f.receiving, 1, 5000), 1);
	wt_sleep_ms(5);
	fix_reset(&x);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_expect_eq(f.recv, -ECONNRESET);
	cr_expect_eq(f.send, -EPIPE);
	cr_expect_eq(f.recv_after, 0);
	cr_expect_eq(f.shut_bad, -EINVAL);
	/* The reset connection is not connected any more. */
	cr_expect_eq(f.shut_wr, -ENOTCONN);
	fix_close(&x);
}

struct fiber_half {
	int fd;
	int64_t shut, recv;
	char got[8];
};

static void *fiber_half_fn(void *arg)
{
	struct fiber_half *f = arg;
	f->shut = weft_co_shutdown(f->fd, SHUT_WR, 0);
	f->recv = weft_co_recv(f->fd, f->got, sizeof(f->got) - 1, 0,
			       wt_mono_ns() + 5000 * WT_MS);
	return NULL;
}

WT_RT_TEST(net_faults, fiber_shutdown_wr_half_closes)
{
	struct fix x = fix_open(cfg);
	struct fiber_half f = { .fd = x.a };
	weft_join *j = wt_go(x.rt, fiber_half_fn, &f, "half");
	char got[4];
	cr_expect_eq(peer_read(x.b, got, sizeof(got)), 0, "peer sees EOF");
	cr_assert_eq(write(x.b, "reply", 5), 5);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_expect_eq(f.shut, 0);
	cr_expect_eq(f.recv, 5);
	cr_expect_str_eq(f.got, "reply");
	fix_close(&x);
}

WT_TEST(net_faults, co_shutdown_off_fiber_is_eperm)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
		     0);
	cr_expect_eq(weft_co_shutdown(sv[0], SHUT_WR, 0), -EPERM);
	/* Nothing was done: the peer can still read what we write. */
	cr_expect_eq(write(sv[0], "z", 1), 1);
	char got[2];
	cr_expect_eq(read(sv[1], got, sizeof(got)), 1);
	close(sv[0]);
	close(sv[1]);
}
