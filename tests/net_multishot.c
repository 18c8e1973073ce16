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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/multishot.h>

#include "fiber_helpers.h"

/* The configurations of helpers.h are not used: the rungs are. */
static WT_UNUSED const struct wt_cfg *unused_cfgs = wt_cfgs;

static const unsigned rungs[] = { 0, WEFT_RT_NO_MULTISHOT,
				  WEFT_RT_NO_BUF_RING,
				  WEFT_RT_NO_MULTISHOT | WEFT_RT_NO_BUF_RING };
#define NRUNGS (sizeof(rungs) / sizeof(rungs[0]))

static weft_runtime *rt_new(unsigned workers, unsigned flags,
			    unsigned buf_count, unsigned buf_size)
{
	weft_runtime_config c;
	weft_runtime *rt = NULL;

	weft_runtime_config_init(&c);
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

/* A connected TCP pair on loopback by plain syscalls. */
static void tcp_pair(int *a, int *b)
{
	int l = weft_tcp_listen("127.0.0.1", 0, 16);
	cr_assert_geq(l, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons((uint16_t)
						weft_tcp_local_port(l)),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(*a, 0);
	cr_assert_eq(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(*b, 0);
	close(l);
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
	wt_rt_free(rt);
	for (int i = 0; i < 50; i++)
		close(c[i]);
	close(a.lfd);
}

Test(accept_stream, takes_every_connection)
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

	tcp_pair(&a, &b);
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
	wt_rt_free(rt);
	close(a);
	close(b);
}

Test(recv_stream, pattern_intact_default_pool)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		recv_pattern(rungs[r], 2, 0, 0, 1);
}

Test(recv_stream, pattern_intact_through_a_dry_pool)
{
	for (unsigned r = 0; r < NRUNGS; r++)
		for (unsigned w = 1; w <= 2; w++)
			recv_pattern(rungs[r], w, 4, 64, 4);
}

/* ---- EMFILE ---- */

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

Test(accept_stream, emfile_backs_off_and_recovers)
{
	weft_runtime *rt = rt_new(1, 0, 0, 0);
	struct acc a = { .lfd = weft_tcp_listen("127.0.0.1", 0, 16) };
	int c = connect_to(weft_tcp_local_port(a.lfd));
	cr_assert_geq(c, 0);

	/* Exhaust the descriptor table: lower the soft limit, then fill. */
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	struct rlimit low = { .rlim_cur = 256, .rlim_max = rl.rlim_max };
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	int fill[256], nfill = 0, fd;
	while (nfill < 256 && (fd = dup(0)) >= 0)
		fill[nfill++] = fd;
	cr_assert_eq(errno, EMFILE);

	weft_join *j = wt_go(rt, accept_one, &a, "acceptor");
	sleep(1);
	weft_runtime_metrics m;
	metrics(rt, &m);
	cr_expect_eq(a.got, 0);
	cr_expect_geq(m.accept_backoffs, 2, "no backoff seen");
	cr_expect_lt(m.accept_backoffs, 100, "%llu tries in a second",
		     (unsigned long long)m.accept_backoffs);
	while (nfill)
		close(fill[--nfill]);
	cr_assert_eq(wt_fiber_join(j, NULL), 0);
	cr_assert_eq(a.got, 1);
	setrlimit(RLIMIT_NOFILE, &rl);
	wt_rt_free(rt);
	close(c);
	close(a.lfd);
}
