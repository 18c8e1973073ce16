/* SPDX-License-Identifier: MIT */
/*
 * Name resolution (weft_resolve: getaddrinfo on the blocking pool) and
 * weft_tcp_connect by name: /etc/hosts names and numeric addresses, an
 * unknown name, a refused port, fallback across addresses, drops before
 * and during the lookup (LSan), and the errors of a poll off a worker.
 * This machine has no DNS server: unknown names give -ENOENT or -EAGAIN.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "io_helpers.h"

#define MS WT_MS

/* A task that resolves and reports what it found. */
struct found {
	int n;
	int family[WEFT_RESOLVE_MAX];
	uint16_t port[WEFT_RESOLVE_MAX];
	bool loopback[WEFT_RESOLVE_MAX];
};

struct resolver {
	weft_resolve r;
};

static weft_poll resolver_poll(void *self, weft_cx *cx, void *out)
{
	struct resolver *s = self;
	struct found *f = out;
	int n;

	if (weft_resolve_poll(&s->r, cx, &n) == WEFT_PENDING)
		return WEFT_PENDING;
	memset(f, 0, sizeof(*f));
	f->n = n;
	for (int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		WT_CHECK(weft_resolve_addr(&s->r, (size_t)i, &ss, &len) == 0,
			 "addr %d", i);
		f->family[i] = ss.ss_family;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			f->port[i] = ntohs(a->sin_port);
			f->loopback[i] = ntohl(a->sin_addr.s_addr) >> 24 == 127;
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			f->port[i] = ntohs(a->sin6_port);
			f->loopback[i] = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
		}
	}
	WT_CHECK(weft_resolve_addr(&s->r, (size_t)(n > 0 ? n : 0), &(struct
		 sockaddr_storage){ 0 }, &(socklen_t){ 0 }) == -EINVAL,
		 "address past the count");
	return WEFT_READY;
}

static void resolver_drop(void *self)
{
	weft_resolve_drop(&((struct resolver *)self)->r);
}

static const weft_future_desc resolver_desc = {
	.poll = resolver_poll,
	.drop = resolver_drop,
	.size = sizeof(struct resolver),
	.output_size = sizeof(struct found),
};

static struct found resolve_on(weft_runtime *rt, const char *host,
			       uint16_t port)
{
	struct resolver s;
	struct found f = { .n = 99 };

	cr_assert_eq(weft_resolve_init(&s.r, host, port), 0);
	wt_block_on(rt, &resolver_desc, &s, &f);
	return f;
}

WT_RT_TEST(resolve, localhost_from_etc_hosts)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct found f = resolve_on(rt, "localhost", 8080);

	cr_assert_geq(f.n, 1, "localhost: %s", weft_strerror(f.n));
	for (int i = 0; i < f.n; i++) {
		cr_expect(f.family[i] == AF_INET || f.family[i] == AF_INET6);
		cr_expect_eq(f.port[i], 8080);
		cr_expect(f.loopback[i], "address %d is not loopback", i);
	}
	wt_rt_free(rt);
}

WT_RT_TEST(resolve, numeric_addresses)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct found f = resolve_on(rt, "127.0.0.1", 9);

	cr_expect_eq(f.n, 1);
	cr_expect_eq(f.family[0], AF_INET);
	cr_expect_eq(f.port[0], 9);
	f = resolve_on(rt, "::1", 65535);
	cr_expect_eq(f.n, 1);
	cr_expect_eq(f.family[0], AF_INET6);
	cr_expect_eq(f.port[0], 65535);
	wt_rt_free(rt);
}

WT_RT_TEST(resolve, unknown_name)
{
	weft_runtime *rt = wt_rt_new(cfg);
	/* .invalid never resolves (RFC 6761). */
	struct found f = resolve_on(rt, "no-such-host.invalid", 80);

	cr_expect(f.n == -ENOENT || f.n == -EAGAIN, "got %d (%s)", f.n,
		  weft_strerror(f.n));
	wt_rt_free(rt);
}

WT_TEST(resolve, bad_arguments_and_off_worker)
{
	weft_resolve r;
	struct sockaddr_storage ss;
	socklen_t len;
	weft_cx cx;
	weft_waker w;
	int res = 0;

	cr_expect_eq(weft_resolve_init(NULL, "localhost", 1), -EINVAL);
	cr_expect_eq(weft_resolve_init(&r, NULL, 1), -EINVAL);
	cr_expect_eq(weft_resolve_init(&r, "", 1), -EINVAL);
	cr_expect_eq(weft_resolve_addr(&r, 0, &ss, &len), -EINVAL);
	weft_resolve_drop(&r); /* after a failed init: nothing to free */
	/* Polled off a worker: no pool to run the lookup on. */
	cr_assert_eq(weft_resolve_init(&r, "localhost", 1), 0);
	cr_expect_eq(weft_resolve_poll(&r, wt_noop_cx(&cx, &w), &res),
		     WEFT_READY);
	cr_expect_eq(res, -EPERM);
	cr_expect_eq(weft_resolve_poll(&r, &cx, &res), WEFT_READY);
	cr_expect_eq(res, -EPERM, "a poll after READY repeats the result");
	weft_resolve_drop(&r);
	/* Prepared, never polled, dropped: the host copy is freed (LSan). */
	cr_assert_eq(weft_resolve_init(&r, "localhost", 1), 0);
	weft_resolve_drop(&r);
	wt_leak_check();
}

/* --- connect by name --------------------------------------------------- */

static int64_t connect_on(weft_runtime *rt, const char *host, uint16_t port)
{
	weft_tcp_connect c = { 0 };
	int64_t fd = INT64_MIN;

	cr_assert_eq(weft_tcp_connect_init(&c, host, port), 0);
	wt_block_on(rt, &weft_tcp_connect_desc, &c, &fd);
	return fd;
}

/*
 * Where "localhost" also resolves to ::1, first (gai.conf), the listener on
 * 127.0.0.1 refuses that address and the next one connects: the fallback.
 * On this project's machines /etc/hosts has 127.0.0.1 only, so this is the
 * plain path there.
 */
WT_RT_TEST(resolve, connect_by_name)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int lfd = weft_tcp_listen("127.0.0.1", 0, 8);
	cr_assert_geq(lfd, 0);
	uint16_t port = (uint16_t)weft_tcp_local_port(lfd);

	int64_t fd = connect_on(rt, "localhost", port);
	cr_assert_geq(fd, 0, "connect: %s", weft_strerror((int)fd));
	int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(afd, 0);
	cr_assert_eq(write((int)fd, "hi", 2), 2);
	char buf[2];
	cr_assert_eq(read(afd, buf, 2), 2);
	cr_expect_eq(memcmp(buf, "hi", 2), 0);
	close(afd);
	close((int)fd);
	close(lfd);
	wt_rt_free(rt);
}

WT_RT_TEST(resolve, connect_refused_and_unknown)
{
	weft_runtime *rt = wt_rt_new(cfg);
	/* A port nobody listens on: bound, then closed. */
	int lfd = weft_tcp_listen("127.0.0.1", 0, 1);
	cr_assert_geq(lfd, 0);
	uint16_t port = (uint16_t)weft_tcp_local_port(lfd);
	close(lfd);

	cr_expect_eq(connect_on(rt, "127.0.0.1", port), -ECONNREFUSED);
	int64_t r = connect_on(rt, "no-such-host.invalid", port);
	cr_expect(r == -ENOENT || r == -EAGAIN, "got %lld", (long long)r);
	wt_rt_free(rt);
}

/* --- drops ------------------------------------------------------------- */

/*
 * select(first, second): with the lookup first it is polled (handed to the
 * pool) and then dropped in flight when the 0 ns sleep wins; with the
 * sleep first the lookup is dropped before it was ever polled. Either way
 * nothing leaks (the pool thread frees an abandoned lookup) and shutdown
 * is prompt.
 */
struct race {
	bool lookup_first;
	weft_resolve r;
	weft_io sleep;
	int rres;
	int64_t sres;
	weft_future arm[2];
	weft_select sel;
	int started;
};

static weft_poll race_poll(void *self, weft_cx *cx, void *out)
{
	struct race *s = self;
	size_t w;

	if (!s->started) {
		WT_CHECK(weft_resolve_init(&s->r, "localhost", 80) == 0, "init");
		weft_io_prep_sleep(&s->sleep, 0);
		int l = s->lookup_first ? 0 : 1;
		weft_future_init(&s->arm[l], &weft_resolve_desc, &s->r,
				 &s->rres);
		weft_future_init(&s->arm[1 - l], &weft_io_desc, &s->sleep,
				 &s->sres);
		weft_select_init(&s->sel, s->arm, 2);
		s->started = 1;
	}
	if (weft_select_poll(&s->sel, cx, &w) == WEFT_PENDING)
		return WEFT_PENDING;
	*(size_t *)out = w;
	return WEFT_READY;
}

static void race_drop(void *self)
{
	struct race *s = self;

	if (s->started)
		weft_select_drop(&s->sel);
}

static const weft_future_desc race_desc = {
	.poll = race_poll,
	.drop = race_drop,
	.size = sizeof(struct race),
	.output_size = sizeof(size_t),
};

WT_RT_TEST(resolve, dropped_before_and_during_the_lookup)
{
	weft_runtime *rt = wt_rt_new(cfg);

	for (int i = 0; i < 50; i++) {
		struct race s = { .lookup_first = i % 2 };
		size_t w = 9;
		wt_block_on(rt, &race_desc, &s, &w);
		/* Usually the sleep wins; a lookup quicker than one poll of
		 * the select may win first. Both are fine. */
		cr_expect(w < 2);
	}
	wt_rt_free_prompt(rt); /* and the leak check */
}
