/* SPDX-License-Identifier: MIT */
/*
 * Socket options: weft_tcp_set_nodelay and weft_tcp_set_keepalive (values
 * read back with getsockopt, every error), TCP_NODELAY on by default for
 * sockets weft accepts or connects (and not for one accepted by a plain
 * syscall), and weft_tcp_listen_opts: two SO_REUSEPORT listeners on one
 * port that both accept, IPV6_V6ONLY either way, bad flags.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, pipe2 */
#endif
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "helpers.h"

static int get_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	cr_assert_eq(getsockopt(fd, level, name, &v, &len), 0,
		     "getsockopt(%d, %d): %s", level, name, strerror(errno));
	return v;
}

static int nodelay(int fd)
{
	return get_int(fd, IPPROTO_TCP, TCP_NODELAY);
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	return fd;
}

static int listen_local(uint16_t *port, int flags)
{
	int fd = weft_tcp_listen_opts("127.0.0.1", 0, 128, flags);
	cr_assert_geq(fd, 0, "listen: %s", weft_strerror(fd));
	int p = weft_tcp_local_port(fd);
	cr_assert_gt(p, 0);
	*port = (uint16_t)p;
	return fd;
}

/* A client connected by plain syscalls (the listener's backlog takes it
 * before anyone accepts). */
static int plain_connect(const char *host, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(weft_addr_parse(host, port, &ss, &len), 0);
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0,
		     "connect %s:%u: %s", host, port, strerror(errno));
	return fd;
}

/* --- weft_tcp_set_nodelay ---------------------------------------------- */

WT_TEST(sockopt, nodelay_set_and_clear)
{
	int fd = tcp_socket();
	cr_expect_eq(nodelay(fd), 0, "a new socket has Nagle on");
	cr_expect_eq(weft_tcp_set_nodelay(fd, true), 0);
	cr_expect_neq(nodelay(fd), 0);
	cr_expect_eq(weft_tcp_set_nodelay(fd, false), 0);
	cr_expect_eq(nodelay(fd), 0);
	close(fd);
}

/* Descriptors that are not TCP sockets: a pipe end, a Unix stream socket,
 * a UDP socket. */
struct not_tcp {
	int pipe[2], unix_sv[2], udp;
};

static struct not_tcp not_tcp_open(void)
{
	struct not_tcp n;
	cr_assert_eq(pipe2(n.pipe, O_CLOEXEC), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				n.unix_sv),
		     0);
	n.udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(n.udp, 0);
	return n;
}

static void not_tcp_close(struct not_tcp *n)
{
	int *fds[] = { &n->pipe[0], &n->pipe[1], &n->unix_sv[0],
		       &n->unix_sv[1], &n->udp };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close(*fds[i]);
}

WT_TEST(sockopt, nodelay_errors)
{
	struct not_tcp n = not_tcp_open();
	cr_expect_eq(weft_tcp_set_nodelay(-1, true), -EBADF);
	cr_expect_eq(weft_tcp_set_nodelay(n.pipe[0], true), -ENOTSOCK);
	cr_expect_eq(weft_tcp_set_nodelay(n.unix_sv[0], true), -EOPNOTSUPP);
	cr_expect_eq(weft_tcp_set_nodelay(n.udp, true), -EOPNOTSUPP);
	not_tcp_close(&n);
}

/* --- weft_tcp_set_keepalive -------------------------------------------- */

WT_TEST(sockopt, keepalive_on_and_off)
{
	int fd = tcp_socket();
	cr_expect_eq(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	cr_assert_eq(weft_tcp_set_keepalive(fd, 30, 5, 4), 0);
	cr_expect_neq(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 5);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
	/* The kernel's largest values are accepted. */
	cr_expect_eq(weft_tcp_set_keepalive(fd, 32767, 32767, 127), 0);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 32767);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 127);
	cr_expect_eq(weft_tcp_set_keepalive(fd, 0, 0, 0), 0);
	cr_expect_eq(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	close(fd);
}

WT_TEST(sockopt, keepalive_bad_arguments_change_nothing)
{
	static const unsigned bad[][3] = {
		{ 0, 5, 4 }, { 30, 0, 4 }, { 30, 5, 0 }, { 0, 0, 4 },
		{ 32768, 5, 4 }, { 30, 32768, 4 }, { 30, 5, 128 },
		{ 30, 5, 4000000000u },
	};
	int fd = tcp_socket();
	int idle = get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE);
	int intvl = get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL);
	int cnt = get_int(fd, IPPROTO_TCP, TCP_KEEPCNT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(weft_tcp_set_keepalive(fd, bad[i][0], bad[i][1],
						    bad[i][2]),
			     -EINVAL, "{%u, %u, %u}", bad[i][0], bad[i][1],
			     bad[i][2]);
	cr_expect_eq(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), idle);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), intvl);
	cr_expect_eq(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), cnt);
	close(fd);
}

WT_TEST(sockopt, keepalive_errors)
{
	struct not_tcp n = not_tcp_open();
	cr_expect_eq(weft_tcp_set_keepalive(-1, 30, 5, 4), -EBADF);
	cr_expect_eq(weft_tcp_set_keepalive(n.pipe[0], 30, 5, 4), -ENOTSOCK);
	cr_expect_eq(weft_tcp_set_keepalive(n.unix_sv[0], 30, 5, 4),
		     -EOPNOTSUPP);
	cr_expect_eq(weft_tcp_set_keepalive(n.udp, 30, 5, 4), -EOPNOTSUPP);
	cr_expect_eq(get_int(n.udp, SOL_SOCKET, SO_KEEPALIVE), 0,
		     "a failed call turned keepalive on");
	cr_expect_eq(weft_tcp_set_keepalive(n.pipe[0], 0, 0, 0), -ENOTSOCK);
	not_tcp_close(&n);
}

/* --- TCP_NODELAY by default -------------------------------------------- */

WT_RT_TEST(sockopt, accepted_and_connected_sockets_have_nodelay)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint16_t port;
	int lfd = listen_local(&port, 0);
	cr_expect_eq(nodelay(lfd), 0, "the listener itself is untouched");

	/* A connect op, accepted by an accept op. */
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(weft_addr_parse("127.0.0.1", port, &ss, &len), 0);
	weft_io con = WEFT_IO_INIT, acc = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_connect(&con, (struct sockaddr *)&ss, len),
		     0);
	int c = (int)wt_op_run(rt, &con);
	cr_assert_geq(c, 0, "connect: %s", weft_strerror(c));
	weft_io_prep_accept(&acc, lfd);
	int s = (int)wt_op_run(rt, &acc);
	cr_assert_geq(s, 0, "accept: %s", weft_strerror(s));
	cr_expect_neq(nodelay(c), 0, "connect op");
	cr_expect_neq(nodelay(s), 0, "accept op");

	/* weft_tcp_connect, by name. */
	weft_tcp_connect tc = { 0 };
	int64_t c2 = INT64_MIN;
	cr_assert_eq(weft_tcp_connect_init(&tc, "127.0.0.1", port), 0);
	wt_block_on(rt, &weft_tcp_connect_desc, &tc, &c2);
	cr_assert_geq(c2, 0, "weft_tcp_connect: %s", weft_strerror((int)c2));
	cr_expect_neq(nodelay((int)c2), 0, "weft_tcp_connect");

	/* The default comes from weft: a plain accept4 leaves Nagle on. */
	int s2 = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(s2, 0);
	cr_expect_eq(nodelay(s2), 0, "plain accept4");

	/* And it can be turned off again. */
	cr_expect_eq(weft_tcp_set_nodelay(s, false), 0);
	cr_expect_eq(nodelay(s), 0);
	close(c);
	close(s);
	close((int)c2);
	close(s2);
	close(lfd);
	wt_rt_free(rt);
}

WT_TEST(sockopt, unix_accept_ignores_nodelay)
{
	/* The accept kind sets TCP_NODELAY on whatever it accepted; a Unix
	 * socket refuses the option and the accept must still succeed. */
	struct wt_cfg one = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&one);
	char path[64];
	snprintf(path, sizeof(path), "/tmp/weft-sockopt-%d.sock", getpid());
	unlink(path);
	int lfd = weft_unix_listen(path, 4);
	cr_assert_geq(lfd, 0, "weft_unix_listen: %s", weft_strerror(lfd));
	int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	memcpy(sun.sun_path, path, strlen(path) + 1);
	cr_assert_eq(connect(c, (struct sockaddr *)&sun, sizeof(sun)), 0);
	weft_io acc = WEFT_IO_INIT;
	weft_io_prep_accept(&acc, lfd);
	int s = (int)wt_op_run(rt, &acc);
	cr_expect_geq(s, 0, "accept: %s", weft_strerror(s));
	cr_expect_eq(write(c, "u", 1), 1);
	char b = 0;
	cr_expect_eq(read(s, &b, 1), 1);
	cr_expect_eq(b, 'u');
	close(s);
	close(c);
	close(lfd);
	unlink(path);
	wt_rt_free(rt);
}

/* --- weft_tcp_listen_opts ---------------------------------------------- */

WT_TEST(sockopt, listen_opts_bad_flags)
{
	cr_expect_eq(weft_tcp_listen_opts("127.0.0.1", 0, 4, 1 << 5), -EINVAL);
	cr_expect_eq(weft_tcp_listen_opts("127.0.0.1", 0, 4, -1), -EINVAL);
	cr_expect_eq(weft_tcp_listen_opts("127.0.0.1", 0, 4, WEFT_TCP_V6ONLY),
		     -EINVAL, "V6ONLY with an IPv4 host");
	cr_expect_eq(weft_tcp_listen_opts(NULL, 0, 4, WEFT_TCP_V6ONLY),
		     -EINVAL, "V6ONLY with the default (IPv4) host");
	cr_expect_eq(weft_tcp_listen_opts("nohost", 0, 4, 0), -EINVAL);
}

WT_TEST(sockopt, listen_sets_reuseaddr_not_reuseport)
{
	uint16_t port;
	int a = listen_local(&port, 0);
	cr_expect_neq(get_int(a, SOL_SOCKET, SO_REUSEADDR), 0);
	cr_expect_eq(get_int(a, SOL_SOCKET, SO_REUSEPORT), 0);
	int b = weft_tcp_listen("127.0.0.1", 0, 4);
	cr_assert_geq(b, 0);
	cr_expect_eq(get_int(b, SOL_SOCKET, SO_REUSEPORT), 0);
	close(a);
	close(b);
}

WT_TEST(sockopt, reuseport_needs_the_flag_on_both)
{
	uint16_t port;
	int a = listen_local(&port, 0);
	cr_expect_eq(weft_tcp_listen_opts("127.0.0.1", port, 4,
					  WEFT_TCP_REUSEPORT),
		     -EADDRINUSE, "first without the flag");
	close(a);
	a = listen_local(&port, WEFT_TCP_REUSEPORT);
	cr_expect_neq(get_int(a, SOL_SOCKET, SO_REUSEPORT), 0);
	cr_expect_eq(weft_tcp_listen_opts("127.0.0.1", port, 4, 0),
		     -EADDRINUSE, "second without the flag");
	close(a);
}

/* Run one accept op on @lfd with a 5 s deadline: a listener that got no
 * connection fails with -ETIMEDOUT instead of hanging. */
static int accept_one(weft_runtime *rt, int lfd)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_accept(&io, lfd), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 5000000000ull), 0);
	return (int)wt_op_run(rt, &io);
}

WT_RT_TEST(sockopt, reuseport_listeners_share_a_port_and_both_accept)
{
	enum { N = 64 };
	weft_runtime *rt = wt_rt_new(cfg);
	uint16_t port;
	int l1 = listen_local(&port, WEFT_TCP_REUSEPORT);
	int l2 = weft_tcp_listen_opts("127.0.0.1", port, 128,
				      WEFT_TCP_REUSEPORT);
	cr_assert_geq(l2, 0, "second listener: %s", weft_strerror(l2));
	cr_expect_eq(weft_tcp_local_port(l2), port);

	/* The kernel picks a listener by a hash of the client's port: with
	 * 64 clients, all on one listener has odds 2^-63. */
	int clients[N];
	for (int i = 0; i < N; i++)
		clients[i] = plain_connect("127.0.0.1", port);

	/* Each listener accepts through the ring... */
	int s1 = accept_one(rt, l1), s2 = accept_one(rt, l2);
	cr_expect_geq(s1, 0, "listener 1: %s", weft_strerror(s1));
	cr_expect_geq(s2, 0, "listener 2: %s", weft_strerror(s2));
	int got = (s1 >= 0) + (s2 >= 0);
	if (s1 >= 0)
		close(s1);
	if (s2 >= 0)
		close(s2);
	/* ...and between them they hold every connection. */
	int lfds[2] = { l1, l2 };
	for (int i = 0; i < 2; i++) {
		int fd;
		cr_assert_eq(fcntl(lfds[i], F_SETFL, O_NONBLOCK), 0);
		while ((fd = accept4(lfds[i], NULL, NULL, SOCK_CLOEXEC)) >=
		       0) {
			got++;
			close(fd);
		}
		cr_expect_eq(errno, EAGAIN);
	}
	cr_expect_eq(got, N, "accepted %d of %d", got, N);
	for (int i = 0; i < N; i++)
		close(clients[i]);
	close(l1);
	close(l2);
	wt_rt_free(rt);
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	bool ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
	close(fd);
	return ok;
}

WT_TEST(sockopt, v6only_either_way)
{
	if (!have_ipv6())
		cr_skip_test("no IPv6 loopback");
	int a = weft_tcp_listen_opts("::", 0, 4, WEFT_TCP_V6ONLY);
	cr_assert_geq(a, 0, "V6ONLY: %s", weft_strerror(a));
	cr_expect_neq(get_int(a, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	/* An IPv4 socket may take the same port: the IPv6 one left it. */
	int port = weft_tcp_local_port(a);
	cr_assert_gt(port, 0);
	int b4 = weft_tcp_listen("0.0.0.0", (uint16_t)port, 4);
	cr_expect_geq(b4, 0, "IPv4 bind next to a V6ONLY socket: %s",
		      weft_strerror(b4));
	if (b4 >= 0)
		close(b4);
	close(a);

	/* Without the flag: dual stack, whatever the sysctl says. */
	int d = weft_tcp_listen_opts("::", 0, 4, 0);
	cr_assert_geq(d, 0, "dual stack: %s", weft_strerror(d));
	cr_expect_eq(get_int(d, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	port = weft_tcp_local_port(d);
	cr_assert_gt(port, 0);
	int c = plain_connect("127.0.0.1", (uint16_t)port);
	int s = accept4(d, NULL, NULL, SOCK_CLOEXEC);
	cr_expect_geq(s, 0, "IPv4 client on a dual-stack listener");
	if (s >= 0)
		close(s);
	close(c);
	close(d);
}
