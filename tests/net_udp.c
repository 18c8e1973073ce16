/* SPDX-License-Identifier: MIT */
/*
 * Datagrams and Unix domain sockets (weft/udp.h): UDP echo on IPv4 and
 * IPv6 loopback with the source addresses checked, truncation, a
 * recv_from deadline, a dropped recv_from that must write nothing, Unix
 * stream connect/accept and Unix datagrams, the weft_co_* calls, and the
 * argument errors.
 */
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <weft/udp.h>

#include "fiber_helpers.h"

/* A bound UDP socket on @host, port 0; NULL fd -1 when @host has no
 * loopback here (IPv6 off). */
static int udp_local(const char *host)
{
	int fd = weft_udp_bind(host, 0, 0);
	if (fd == -EADDRNOTAVAIL || fd == -EAFNOSUPPORT)
		return -1;
	cr_assert_geq(fd, 0, "weft_udp_bind(%s): %s", host, weft_strerror(fd));
	return fd;
}

static void local_addr(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
	*len = sizeof(*ss);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)ss, len), 0);
}

/* recv_from on @fd in a task; send_to from @from_fd to @fd's address in
 * another; checks the bytes and that the source is @from_fd's address. */
static void datagram_once(weft_runtime *rt, int from_fd, int fd,
			  const char *msg)
{
	struct sockaddr_storage dst, src, want;
	socklen_t dlen, slen = 0, wlen;
	char buf[256];
	size_t n = strlen(msg);
	weft_io rio = WEFT_IO_INIT, sio = WEFT_IO_INIT;

	local_addr(fd, &dst, &dlen);
	local_addr(from_fd, &want, &wlen);
	memset(&src, 0xab, sizeof(src));
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(weft_io_prep_recv_from(&rio, fd, buf, sizeof(buf), 0,
					    &src, &slen), 0);
	cr_assert_eq(weft_io_prep_send_to(&sio, from_fd, msg, n,
					  (struct sockaddr *)&dst, dlen, 0), 0);
	weft_join *jr = wt_op_spawn(rt, &rio, NULL);
	weft_join *js = wt_op_spawn(rt, &sio, NULL);
	cr_assert_eq(wt_op_join(js), (int64_t)n);
	cr_assert_eq(wt_op_join(jr), (int64_t)n);
	cr_expect_eq(memcmp(buf, msg, n), 0);
	cr_assert_eq(slen, wlen, "source length %u, want %u", slen, wlen);
	cr_expect_eq(memcmp(&src, &want, wlen), 0, "source address differs");
}

static void echo_test(const struct wt_cfg *cfg, const char *host)
{
	int a = udp_local(host), b = udp_local(host);
	if (a < 0 || b < 0)
		cr_skip_test("no %s loopback here", host);
	weft_runtime *rt = wt_rt_new(cfg);
	datagram_once(rt, a, b, "ping");
	datagram_once(rt, b, a, "pong, a longer answer");
	datagram_once(rt, a, b, "");
	wt_rt_free(rt);
	close(a);
	close(b);
}

WT_RT_TEST(udp, echo_ipv4)
{
	echo_test(cfg, "127.0.0.1");
}

WT_RT_TEST(udp, echo_ipv6)
{
	echo_test(cfg, "::1");
}

/* Send @n bytes from @a to @b with a plain syscall (the datagram waits in
 * @b's queue). */
static void send_plain(int a, int b, const void *msg, size_t n)
{
	struct sockaddr_storage dst;
	socklen_t dlen;
	local_addr(b, &dst, &dlen);
	cr_assert_eq(sendto(a, msg, n, 0, (struct sockaddr *)&dst, dlen),
		     (ssize_t)n);
}

WT_RT_TEST(udp, truncation)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int a = udp_local("127.0.0.1"), b = udp_local("127.0.0.1");
	unsigned char msg[100], buf[sizeof(msg)];
	wt_fill(msg, sizeof(msg), 3);

	/* Plain: the datagram is cut to the buffer, the rest discarded. */
	send_plain(a, b, msg, sizeof(msg));
	memset(buf, 0, sizeof(buf));
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_recv_from(&io, b, buf, 10, 0, NULL, NULL);
	cr_expect_eq(wt_op_run(rt, &io), 10);
	cr_expect_eq(memcmp(buf, msg, 10), 0);
	cr_expect_eq(buf[10], 0, "wrote past @len");

	/* MSG_TRUNC: the full length comes back, still 10 bytes stored. */
	send_plain(a, b, msg, sizeof(msg));
	memset(buf, 0, sizeof(buf));
	weft_io_prep_recv_from(&io, b, buf, 10, MSG_TRUNC, NULL, NULL);
	cr_expect_eq(wt_op_run(rt, &io), (int64_t)sizeof(msg));
	cr_expect_eq(memcmp(buf, msg, 10), 0);
	cr_expect_eq(buf[10], 0, "wrote past @len");
	wt_rt_free(rt);
	close(a);
	close(b);
}

WT_RT_TEST(udp, recv_from_deadline_writes_nothing)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int b = udp_local("127.0.0.1");
	struct sockaddr_storage from;
	socklen_t fromlen = 12345;
	char buf[8];
	memset(&from, 0xab, sizeof(from));
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_recv_from(&io, b, buf, sizeof(buf), 0, &from, &fromlen);
	cr_assert_eq(weft_io_set_timeout(&io, 20 * WT_MS), 0);
	cr_expect_eq(wt_op_run(rt, &io), -ETIMEDOUT);
	cr_expect_eq(fromlen, 12345);
	cr_expect_eq(((unsigned char *)&from)[0], 0xab);
	wt_rt_free(rt);
	close(b);
}

WT_RT_TEST(udp, dropped_recv_from_writes_nothing)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int a = udp_local("127.0.0.1"), b = udp_local("127.0.0.1");
	struct sockaddr_storage *from = malloc(sizeof(*from));
	socklen_t *fromlen = malloc(sizeof(*fromlen));
	cr_assert(from && fromlen);
	memset(from, 0xab, sizeof(*from));
	*fromlen = 12345;
	char buf[8];
	struct wt_counters c = { 0 };
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_recv_from(&io, b, buf, sizeof(buf), 0, from, fromlen);
	weft_join *j = wt_op_spawn(rt, &io, &c);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	weft_task_abort(j);
	int st = 1;
	wt_join_wait(j, &st, NULL);
	cr_expect_eq(st, -ECANCELED);
	weft_join_drop(j);
	cr_expect(wt_ops_quiesce(rt, 3000), "the recv was not cancelled");
	/* A datagram now is not taken by the cancelled op. */
	send_plain(a, b, "late", 4);
	cr_expect_eq(*fromlen, 12345);
	cr_expect_eq(((unsigned char *)from)[0], 0xab);
	struct sockaddr_storage src;
	socklen_t slen = 0;
	weft_io_prep_recv_from(&io, b, buf, sizeof(buf), 0, &src, &slen);
	cr_expect_eq(wt_op_run(rt, &io), 4);
	cr_expect_eq(memcmp(buf, "late", 4), 0);
	cr_expect_eq(slen, sizeof(struct sockaddr_in));
	wt_rt_free(rt);
	free(from);
	free(fromlen);
	close(a);
	close(b);
}

/* --- Unix domain sockets ------------------------------------------------ */

/* A fresh directory for socket files; the paths are in it. */
struct unix_dir {
	char dir[64];
	char a[128];
	char b[128];
};

static void unix_dir_make(struct unix_dir *d)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/weft-udp-XXXXXX");
	cr_assert_not_null(mkdtemp(d->dir));
	snprintf(d->a, sizeof(d->a), "%s/a.sock", d->dir);
	snprintf(d->b, sizeof(d->b), "%s/b.sock", d->dir);
}

static void unix_dir_remove(struct unix_dir *d)
{
	unlink(d->a);
	unlink(d->b);
	rmdir(d->dir);
}

WT_RT_TEST(unix_sock, stream_connect_accept_send_recv)
{
	struct unix_dir d;
	unix_dir_make(&d);
	weft_runtime *rt = wt_rt_new(cfg);
	int lfd = weft_unix_listen(d.a, 16);
	cr_assert_geq(lfd, 0, "weft_unix_listen: %s", weft_strerror(lfd));

	weft_io acc = WEFT_IO_INIT, con = WEFT_IO_INIT;
	weft_io_prep_accept(&acc, lfd);
	cr_assert_eq(weft_io_prep_unix_connect(&con, d.a), 0);
	weft_join *ja = wt_op_spawn(rt, &acc, NULL);
	weft_join *jc = wt_op_spawn(rt, &con, NULL);
	int64_t s = wt_op_join(ja), c = wt_op_join(jc);
	cr_assert_geq(s, 0, "accept: %s", weft_strerror((int)s));
	cr_assert_geq(c, 0, "unix connect: %s", weft_strerror((int)c));
	int fl = fcntl((int)c, F_GETFD);
	cr_expect(fl >= 0 && (fl & FD_CLOEXEC), "connected fd not CLOEXEC");

	char buf[16] = { 0 };
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_send(&io, (int)c, "hello", 5, 0);
	cr_expect_eq(wt_op_run(rt, &io), 5);
	weft_io_prep_recv(&io, (int)s, buf, sizeof(buf), 0);
	cr_expect_eq(wt_op_run(rt, &io), 5);
	cr_expect_str_eq(buf, "hello");

	/* A stale socket file is left alone: the caller unlinks it. */
	cr_expect_eq(weft_unix_listen(d.a, 16), -EADDRINUSE);
	close((int)s);
	close((int)c);
	close(lfd);
	wt_rt_free(rt);
	unix_dir_remove(&d);
}

WT_RT_TEST(unix_sock, datagram_send_to_recv_from)
{
	struct unix_dir d;
	unix_dir_make(&d);
	weft_runtime *rt = wt_rt_new(cfg);
	int a = weft_unix_dgram_bind(d.a), b = weft_unix_dgram_bind(d.b);
	cr_assert_geq(a, 0, "%s", weft_strerror(a));
	cr_assert_geq(b, 0, "%s", weft_strerror(b));
	datagram_once(rt, a, b, "over a unix socket");
	datagram_once(rt, b, a, "and back");

	/* The source address names the sender's file. */
	struct sockaddr_storage src;
	socklen_t slen = 0;
	char buf[8];
	send_plain(a, b, "x", 1);
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_recv_from(&io, b, buf, sizeof(buf), 0, &src, &slen);
	cr_expect_eq(wt_op_run(rt, &io), 1);
	cr_expect_eq(src.ss_family, AF_UNIX);
	cr_expect_str_eq(((struct sockaddr_un *)&src)->sun_path, d.a);

	/* To a path nobody is bound to. */
	struct sockaddr_un none = { .sun_family = AF_UNIX };
	snprintf(none.sun_path, sizeof(none.sun_path), "%s/none", d.dir);
	weft_io_prep_send_to(&io, a, "x", 1, (struct sockaddr *)&none,
			     sizeof(none), 0);
	cr_expect_eq(wt_op_run(rt, &io), -ENOENT);
	close(a);
	close(b);
	wt_rt_free(rt);
	unix_dir_remove(&d);
}

WT_RT_TEST(unix_sock, errors)
{
	struct unix_dir d;
	unix_dir_make(&d);
	weft_runtime *rt = wt_rt_new(cfg);
	char longp[200];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;

	weft_io io = WEFT_IO_INIT;
	cr_expect_eq(weft_io_prep_unix_connect(&io, d.a), 0);
	cr_expect_eq(wt_op_run(rt, &io), -ENOENT);
	cr_expect_eq(weft_io_prep_unix_connect(&io, longp), -ENAMETOOLONG);
	cr_expect_eq(wt_op_run(rt, &io), -ENAMETOOLONG);
	cr_expect_eq(weft_io_prep_unix_connect(&io, NULL), -EINVAL);
	cr_expect_eq(weft_io_prep_unix_connect(&io, ""), -EINVAL);
	cr_expect_eq(weft_io_prep_unix_connect(NULL, d.a), -EINVAL);
	cr_expect_eq(weft_unix_listen(longp, 1), -ENAMETOOLONG);
	cr_expect_eq(weft_unix_listen(NULL, 1), -EINVAL);
	cr_expect_eq(weft_unix_listen("", 1), -EINVAL);
	cr_expect_eq(weft_unix_dgram_bind(longp), -ENAMETOOLONG);
	cr_expect_eq(weft_unix_dgram_bind(""), -EINVAL);

	/* A file that is not listening. */
	int u = weft_unix_dgram_bind(d.b);
	cr_assert_geq(u, 0);
	weft_io_prep_unix_connect(&io, d.b);
	int64_t r = wt_op_run(rt, &io);
	cr_expect(r == -ECONNREFUSED || r == -EPROTOTYPE, "%s",
		  weft_strerror((int)r));
	close(u);

	/* The longest path that fits: sun_path less its NUL. */
	struct sockaddr_un sun;
	char fit[sizeof(sun.sun_path)];
	memset(fit, 'y', sizeof(fit) - 1);
	fit[sizeof(fit) - 1] = 0;
	cr_expect_eq(weft_io_prep_unix_connect(&io, fit), 0);
	cr_expect_eq(wt_op_run(rt, &io), -ENOENT);
	/* One more byte: no room for the NUL. */
	longp[sizeof(sun.sun_path)] = 0;
	cr_expect_eq(weft_io_prep_unix_connect(&io, longp), -ENAMETOOLONG);
	cr_expect_eq(weft_unix_dgram_bind(longp), -ENAMETOOLONG);
	wt_rt_free(rt);
	unix_dir_remove(&d);
}

WT_TEST(udp, prep_errors)
{
	char buf[4];
	struct sockaddr_storage ss;
	socklen_t len = 0;
	weft_io io = WEFT_IO_INIT;

	cr_expect_eq(weft_udp_bind("127.0.0.1", 0, 4), -EINVAL);
	cr_expect_eq(weft_udp_bind("not an address", 0, 0), -EINVAL);
	int fd = weft_udp_bind(NULL, 0, WEFT_UDP_REUSEADDR | WEFT_UDP_REUSEPORT);
	cr_expect_geq(fd, 0, "%s", weft_strerror(fd));
	cr_expect_gt(weft_tcp_local_port(fd), 0);
	close(fd);

	cr_expect_eq(weft_io_prep_recv_from(NULL, 0, buf, 4, 0, NULL, NULL),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_recv_from(&io, 0, NULL, 4, 0, NULL, NULL),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_recv_from(&io, 0, buf, 4, 0, &ss, NULL),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_recv_from(&io, 0, buf, 4, 0, NULL, &len),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_send_to(NULL, 0, buf, 4, NULL, 0, 0),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_send_to(&io, 0, NULL, 4, NULL, 0, 0),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_send_to(&io, 0, buf, 4, NULL, 8, 0),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_send_to(&io, 0, buf, 4,
					  (struct sockaddr *)&ss, 0, 0),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_send_to(&io, 0, buf, 4,
					  (struct sockaddr *)&ss,
					  sizeof(ss) + 1, 0),
		     -EINVAL);
	cr_expect_eq(weft_io_prep_send_to(&io, 0, buf, 4, NULL, 0, 0), 0);
	weft_io_drop(&io);
}

WT_RT_TEST(udp, send_to_bad_fd_and_refused)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int a = udp_local("127.0.0.1"), b = udp_local("127.0.0.1");
	struct sockaddr_storage dst;
	socklen_t dlen;
	local_addr(b, &dst, &dlen);
	weft_io io = WEFT_IO_INIT;
	weft_io_prep_send_to(&io, -1, "x", 1, (struct sockaddr *)&dst, dlen, 0);
	cr_expect_eq(wt_op_run(rt, &io), -EBADF);
	/* Unconnected and no address. */
	weft_io_prep_send_to(&io, a, "x", 1, NULL, 0, 0);
	int64_t r = wt_op_run(rt, &io);
	cr_expect_eq(r, -EDESTADDRREQ, "%s", weft_strerror((int)r));
	wt_rt_free(rt);
	close(a);
	close(b);
}

/* --- fibers -------------------------------------------------------------- */

struct co_args {
	int a, b;
	const char *path;
};

static void *co_udp(void *arg)
{
	struct co_args *t = arg;
	struct sockaddr_storage dst, src, want;
	socklen_t dlen = sizeof(dst), slen = 0, wlen = sizeof(want);
	char buf[16] = { 0 };
	uint64_t dl = weft_now_ns() + 5000 * WT_MS;

	FCHECK(getsockname(t->b, (struct sockaddr *)&dst, &dlen) == 0);
	FCHECK(getsockname(t->a, (struct sockaddr *)&want, &wlen) == 0);
	FCHECK(weft_co_send_to(t->a, "co", 2, (struct sockaddr *)&dst, dlen,
			       0, dl) == 2);
	FCHECK(weft_co_recv_from(t->b, buf, sizeof(buf), 0, &src, &slen,
				 dl) == 2);
	FCHECK(memcmp(buf, "co", 2) == 0);
	FCHECK(slen == wlen && memcmp(&src, &want, wlen) == 0);
	slen = 7;
	FCHECK(weft_co_recv_from(t->b, buf, sizeof(buf), 0, &src, &slen,
				 weft_now_ns() + 10 * WT_MS) == -ETIMEDOUT);
	FCHECK(slen == 7);
	FCHECK(weft_co_unix_connect(t->path, dl) == -ENOENT);
	return NULL;
}

/* The listener's backlog completes the connect without an accept. */
static void *co_unix(void *arg)
{
	struct co_args *t = arg;
	t->b = weft_co_unix_connect(t->path, weft_now_ns() + 5000 * WT_MS);
	return NULL;
}

WT_RT_TEST(udp, fiber_calls)
{
	struct unix_dir d;
	unix_dir_make(&d);
	weft_runtime *rt = wt_rt_new(cfg);
	struct co_args t = { udp_local("127.0.0.1"), udp_local("127.0.0.1"),
			     d.a };
	wt_fiber_run(rt, co_udp, &t);
	/* And a unix connect that succeeds. */
	int lfd = weft_unix_listen(d.a, 4);
	cr_assert_geq(lfd, 0);
	struct co_args u = { lfd, -1, d.a };
	wt_fiber_run(rt, co_unix, &u);
	cr_expect_geq(u.b, 0, "weft_co_unix_connect: %s", weft_strerror(u.b));
	int s = accept(lfd, NULL, NULL);
	cr_expect_geq(s, 0);
	wt_rt_free(rt);
	close(s);
	close(u.b);
	close(lfd);
	close(t.a);
	close(t.b);
	unix_dir_remove(&d);
}
