/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy send (weft_io_prep_send_zc, weft_co_send_zc): 4 MiB in 256 KiB
 * sends arrive intact on both rungs (IORING_OP_SEND_ZC, and the plain send
 * of WEFT_RT_NO_SEND_ZC), the buffer is overwritten right after each call
 * returns (READY means the kernel let go of it), the rung shows in the
 * metrics, and a send_zc blocked on a peer that does not read is
 * cancelled by an abort with nothing left in flight.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fiber_helpers.h"
#include "net_helpers.h"

/* The configurations of helpers.h are not used: the rungs are. */
static WT_UNUSED const struct wt_cfg *unused_cfgs = wt_cfgs;

#define TOTAL (4u << 20)
#define CHUNK (256u << 10)

static unsigned char pat(size_t i)
{
	return (unsigned char)((i * 7u) ^ (i >> 11));
}

struct rx {
	int fd;
	size_t got;
	size_t bad;
};

static void *reader(void *arg)
{
	struct rx *r = arg;
	unsigned char buf[65536];
	ssize_t n;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pat(r->got + (size_t)i))
				r->bad++;
		r->got += (size_t)n;
	}
	return NULL;
}

static void *sender(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *buf = malloc(CHUNK);
	intptr_t ok = 1;

	FCHECK(buf);
	for (size_t off = 0; off < TOTAL; off += CHUNK) {
		for (size_t i = 0; i < CHUNK; i++)
			buf[i] = pat(off + i);
		size_t done = 0;
		while (done < CHUNK) {
			int64_t n = weft_co_send_zc(fd, buf + done,
						    CHUNK - done, 0, 0);
			if (n <= 0) {
				ok = 0;
				goto out;
			}
			done += (size_t)n;
		}
		/* READY: the kernel let go; scribbling must not show. */
		memset(buf, 0xee, CHUNK);
	}
out:
	free(buf);
	return (void *)ok;
}

static void send_pattern(unsigned flags)
{
	weft_runtime_config c;
	weft_runtime *rt;
	int a, b;
	pthread_t th;

	weft_runtime_config_init(&c);
	c.workers = 2;
	c.flags = flags;
	cr_assert_eq(weft_runtime_new(&c, &rt), 0);
	wt_tcp_pair(&a, &b);
	struct rx r = { .fd = b };
	cr_assert_eq(pthread_create(&th, NULL, reader, &r), 0);
	void *ok = wt_fiber_run(rt, sender, (void *)(intptr_t)a);
	shutdown(a, SHUT_WR);
	pthread_join(th, NULL);
	cr_expect_eq((intptr_t)ok, 1, "a send failed");
	cr_expect_eq(r.got, TOTAL);
	cr_expect_eq(r.bad, 0, "%zu bytes differ", r.bad);

	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	if (flags & WEFT_RT_NO_SEND_ZC)
		cr_expect_eq(m.features & WEFT_FEAT_SEND_ZC, 0);
	wt_rt_free(rt);
	close(a);
	close(b);
}

Test(send_zc, pattern_intact_zero_copy)
{
	send_pattern(0);
}

Test(send_zc, pattern_intact_plain_rung)
{
	send_pattern(WEFT_RT_NO_SEND_ZC);
}

static void *blocked_sender(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static unsigned char big[8u << 20];
	int64_t n = weft_co_send_zc(fd, big, sizeof(big), 0, 0);

	return (void *)(intptr_t)n;
}

Test(send_zc, abort_while_blocked)
{
	weft_runtime *rt = wt_rt_new(&(struct wt_cfg){ 2, 0 });
	int a, b, sz = 4096;

	wt_tcp_pair(&a, &b);
	setsockopt(a, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	weft_join *j = wt_go(rt, blocked_sender, (void *)(intptr_t)a, "zc");
	usleep(50 * 1000);
	weft_task_abort(j);
	void *out = NULL;
	int st = wt_fiber_join(j, &out);
	/* Cancelled in flight: the call returned what the kernel said
	 * (-ECANCELED, or the bytes it had sent), or the join says so. */
	cr_expect(st == -ECANCELED || (intptr_t)out != 0,
		  "join %d, result %ld", st, (long)(intptr_t)out);
	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	cr_expect_eq(m.ops_submitted, m.ops_completed, "an op still in flight");
	wt_rt_free(rt);
	close(a);
	close(b);
}
