/* SPDX-License-Identifier: MIT */
/*
 * Deadlines on ring ops (weft_io_set_deadline / weft_io_set_timeout,
 * weft/io.h): one io_uring linked timeout submitted with the op.
 *
 *  - recv, accept and read with nothing to do: -ETIMEDOUT no earlier than
 *    the deadline, and the op transferred nothing (data sent or a client
 *    connecting afterwards is there for a new op); a write to a full pipe
 *    likewise wrote nothing;
 *  - an op that completes first gives its result (data before the
 *    deadline, data already there, a connect, a close);
 *  - a deadline already past; many recvs with random timeouts, never
 *    early; data racing the deadline, many times: either the data or
 *    -ETIMEDOUT (not before the deadline) with the data still in the
 *    socket, never lost; and a later op without a deadline untouched by
 *    how that race ended;
 *  - aborting a task whose op has a deadline;
 *  - errors: -EBUSY in flight (and the op goes on), -EINVAL on a sleep, an
 *    unprepared io, a failed prep, NULL.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "io_helpers.h"

#define MS WT_MS


/* Run @io (prepared, deadline set) on @rt; *@took: ns from @t0 to done. */
static int64_t run_timed(weft_runtime *rt, const weft_io *io, uint64_t t0,
			 uint64_t *took)
{
	int64_t res = wt_op_run(rt, io);
	*took = wt_mono_ns() - t0;
	return res;
}

/* Expect -ETIMEDOUT after at least @ns (and not absurdly later). */
static void expect_timed_out(int64_t res, uint64_t took, uint64_t ns)
{
	cr_expect_eq(res, -ETIMEDOUT, "result %lld (%s)", (long long)res,
		     res < 0 ? weft_strerror((int)res) : "data");
	cr_expect_geq(took, ns, "timed out %llu us early",
		      (unsigned long long)((ns - took) / 1000));
	cr_expect_lt(took, ns + 2000 * MS, "timed out %llu ms late",
		     (unsigned long long)((took - ns) / MS));
}

/* --- nothing to do: -ETIMEDOUT, nothing transferred ---------------------- */

WT_RT_TEST(deadline, recv_times_out_consumes_nothing)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[64], buf2[64] = { 0 };
	weft_io io = WEFT_IO_INIT;
	uint64_t took, t0 = wt_mono_ns();
	cr_assert_eq(weft_io_prep_recv(&io, sv[0], buf, sizeof(buf), 0), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 30 * MS), 0);
	int64_t res = run_timed(rt, &io, t0, &took);
	expect_timed_out(res, took, 30 * MS);

	cr_assert_eq(send(sv[1], "abc", 3, MSG_NOSIGNAL), 3);
	weft_io again = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_recv(&again, sv[0], buf2, sizeof(buf2), 0),
		     0);
	cr_expect_eq(wt_op_run(rt, &again), 3);
	cr_expect_eq(memcmp(buf2, "abc", 3), 0);
	cr_expect(wt_ops_quiesce(rt, 3000));
	wt_rt_pair_close(&fx);
}

WT_RT_TEST(deadline, read_pipe_times_out_consumes_nothing)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	wt_pipe(p);
	char buf[8], c = 0;
	weft_io io = WEFT_IO_INIT;
	uint64_t took, t0 = wt_mono_ns();
	cr_assert_eq(weft_io_prep_read(&io, p[0], buf, sizeof(buf), -1), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 20 * MS), 0);
	int64_t res = run_timed(rt, &io, t0, &took);
	expect_timed_out(res, took, 20 * MS);
	cr_assert_eq(write(p[1], "z", 1), 1);
	cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	cr_expect_eq(read(p[0], &c, 1), 1, "the byte was consumed");
	cr_expect_eq(c, 'z');
	wt_rt_free_prompt(rt);
	close(p[0]);
	close(p[1]);
}

/* A full pipe: the write times out having written nothing. */
WT_RT_TEST(deadline, write_full_pipe_times_out_writes_nothing)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	wt_pipe(p);
	char chunk[4096];
	memset(chunk, 'f', sizeof(chunk));
	cr_assert_eq(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	size_t filled = 0;
	for (;;) {
		ssize_t n = write(p[1], chunk, sizeof(chunk));
		if (n < 0) {
			cr_assert_eq(errno, EAGAIN);
			break;
		}
		filled += (size_t)n;
	}
	/* Fill the last partial page too, byte by byte. */
	while (write(p[1], chunk, 1) == 1)
		filled++;
	cr_assert_eq(fcntl(p[1], F_SETFL, 0), 0);
	weft_io io = WEFT_IO_INIT;
	uint64_t took, t0 = wt_mono_ns();
	cr_assert_eq(weft_io_prep_write(&io, p[1], "W", 1, -1), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 20 * MS), 0);
	int64_t res = run_timed(rt, &io, t0, &took);
	expect_timed_out(res, took, 20 * MS);
	cr_expect(wt_ops_quiesce(rt, 3000));
	/* Exactly what was filled is in the pipe: no 'W'. */
	cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(p[0], chunk, sizeof(chunk));
		if (n <= 0)
			break;
		cr_assert_eq(memchr(chunk, 'W', (size_t)n), NULL,
			     "the timed-out write wrote");
		got += (size_t)n;
	}
	cr_expect_eq(got, filled);
	wt_rt_free_prompt(rt);
	close(p[0]);
	close(p[1]);
}

/* A listener without clients: the accept times out, and a client that
 * connects afterwards is accepted by the next accept (not lost). */
WT_RT_TEST(deadline, accept_times_out_then_accepts)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int lfd = weft_tcp_listen("127.0.0.1", 0, 8);
	cr_assert_geq(lfd, 0);
	weft_io io = WEFT_IO_INIT;
	uint64_t took, t0 = wt_mono_ns();
	cr_assert_eq(weft_io_prep_accept(&io, lfd), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 25 * MS), 0);
	int64_t res = run_timed(rt, &io, t0, &took);
	expect_timed_out(res, took, 25 * MS);
	cr_expect(wt_ops_quiesce(rt, 3000));

	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(weft_addr_parse("127.0.0.1",
				     (uint16_t)weft_tcp_local_port(lfd), &ss,
				     &len), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(c, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&ss, len), 0);
	weft_io acc = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_accept(&acc, lfd), 0);
	cr_assert_eq(weft_io_set_timeout(&acc, 5000 * MS), 0);
	int64_t fd = wt_op_run(rt, &acc);
	cr_assert_geq(fd, 0, "accept: %s", weft_strerror((int)fd));
	cr_assert_eq(send(c, "q", 1, MSG_NOSIGNAL), 1);
	char q = 0;
	cr_expect_eq(recv((int)fd, &q, 1, 0), 1);
	cr_expect_eq(q, 'q');
	wt_rt_free_prompt(rt);
	close((int)fd);
	close(c);
	close(lfd);
}

/* --- the op completes first -------------------------------------------- */

WT_RT_TEST(deadline, recv_data_before_deadline)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[64] = { 0 };
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_recv(&io, sv[0], buf, sizeof(buf), 0), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 150 * MS), 0);
	uint64_t deadline = weft_now_ns() + 150 * MS;
	weft_join *j = wt_op_spawn(rt, &io, NULL);
	wt_sleep_ms(20);
	cr_assert_eq(send(sv[1], "early", 5, MSG_NOSIGNAL), 5);
	cr_expect_eq(wt_op_join(j), 5);
	cr_expect_eq(memcmp(buf, "early", 5), 0);
	/* Past the deadline the finished op's timeout must not act. */
	while (weft_now_ns() < deadline + 50 * MS)
		wt_sleep_ms(10);
	cr_expect(wt_ops_quiesce(rt, 3000));
	wt_rt_pair_close(&fx);
}

WT_RT_TEST(deadline, recv_data_already_there)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[64] = { 0 };
	cr_assert_eq(send(sv[1], "ready", 5, MSG_NOSIGNAL), 5);
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_recv(&io, sv[0], buf, sizeof(buf), 0), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 1000 * MS), 0);
	uint64_t took, t0 = wt_mono_ns();
	cr_expect_eq(run_timed(rt, &io, t0, &took), 5);
	cr_expect_lt(took, 900 * MS);
	cr_expect_eq(memcmp(buf, "ready", 5), 0);
	wt_rt_pair_close(&fx);
}

/* A client connecting while the accept (with a deadline) is pending. */
WT_RT_TEST(deadline, accept_before_deadline)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int lfd = weft_tcp_listen("127.0.0.1", 0, 8);
	cr_assert_geq(lfd, 0);
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_accept(&io, lfd), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 5000 * MS), 0);
	weft_join *j = wt_op_spawn(rt, &io, NULL);
	wt_sleep_ms(20);
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(weft_addr_parse("127.0.0.1",
				     (uint16_t)weft_tcp_local_port(lfd), &ss,
				     &len), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&ss, len), 0);
	int64_t fd = wt_op_join(j);
	cr_expect_geq(fd, 0, "accept: %s", weft_strerror((int)fd));
	wt_rt_free_prompt(rt);
	if (fd >= 0)
		close((int)fd);
	close(c);
	close(lfd);
}

/* Every ring op takes a deadline: a connect and a close that finish in
 * time give their own results. */
WT_RT_TEST(deadline, connect_and_close_in_time)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int lfd = weft_tcp_listen("127.0.0.1", 0, 8);
	cr_assert_geq(lfd, 0);
	struct sockaddr_storage ss;
	socklen_t len;
	cr_assert_eq(weft_addr_parse("127.0.0.1",
				     (uint16_t)weft_tcp_local_port(lfd), &ss,
				     &len), 0);
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_connect(&io, (struct sockaddr *)&ss, len),
		     0);
	cr_assert_eq(weft_io_set_timeout(&io, 5000 * MS), 0);
	int64_t fd = wt_op_run(rt, &io);
	cr_assert_geq(fd, 0, "connect: %s", weft_strerror((int)fd));

	weft_io cl = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_close(&cl, (int)fd), 0);
	cr_assert_eq(weft_io_set_timeout(&cl, 5000 * MS), 0);
	cr_expect_eq(wt_op_run(rt, &cl), 0);
	cr_expect_eq(fcntl((int)fd, F_GETFD), -1, "fd still open");
	wt_rt_free_prompt(rt);
	close(lfd);
}

/* --- past deadlines, many deadlines ---------------------------------------- */

WT_RT_TEST(deadline, past_deadline_times_out_at_once)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[8];
	uint64_t past[] = { 1, weft_now_ns() - 10 * MS };
	for (size_t i = 0; i < 2; i++) {
		weft_io io = WEFT_IO_INIT;
		cr_assert_eq(weft_io_prep_recv(&io, sv[0], buf, sizeof(buf),
					       0), 0);
		cr_assert_eq(weft_io_set_deadline(&io, past[i]), 0);
		uint64_t took, t0 = wt_mono_ns();
		int64_t res = run_timed(rt, &io, t0, &took);
		cr_expect_eq(res, -ETIMEDOUT, "deadline %zu: %lld", i,
			     (long long)res);
		cr_expect_lt(took, 1000 * MS);
	}
	wt_rt_pair_close(&fx);
}

/*
 * Each task sets a random 1..40 ms timeout on a recv that gets no data
 * (at its first poll, timing it) and checks on its worker that the
 * -ETIMEDOUT did not come early.
 */
struct timed_recv {
	int fd;
	uint64_t ns;
	/* private */
	int started;
	uint64_t t0;
	weft_io io;
	unsigned char buf[16];
};

static weft_poll timed_recv_poll(void *self, weft_cx *cx, void *out)
{
	struct timed_recv *s = self;
	int64_t res;
	if (!s->started) {
		s->t0 = weft_now_ns();
		WT_CHECK(weft_io_prep_recv(&s->io, s->fd, s->buf,
					   sizeof(s->buf), 0) == 0, "prep");
		WT_CHECK(weft_io_set_timeout(&s->io, s->ns) == 0, "timeout");
		s->started = 1;
	}
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	uint64_t now = weft_now_ns();
	WT_CHECK(res == -ETIMEDOUT, "recv: %lld", (long long)res);
	WT_CHECK(now >= s->t0 + s->ns, "timed out %llu ns early",
		 (unsigned long long)(s->t0 + s->ns - now));
	*(int64_t *)out = (int64_t)(now - s->t0 - s->ns);
	return WEFT_READY;
}

static void timed_recv_drop(void *self)
{
	weft_io_drop(&((struct timed_recv *)self)->io);
}

static const weft_future_desc timed_recv_desc = {
	.poll = timed_recv_poll,
	.drop = timed_recv_drop,
	.size = sizeof(struct timed_recv),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST_T(deadline, many_recvs_never_early, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	enum { N = 100 };
	int sv[N][2];
	weft_join *j[N];
	uint32_t x = 12345u + cfg->workers;
	for (int i = 0; i < N; i++) {
		wt_sock_pair(sv[i]);
		x = x * 1103515245u + 12345u;
		struct timed_recv t = { .fd = sv[i][0],
					.ns = 1 * MS + (x >> 4) % (39 * MS) };
		wt_spawn(rt, &timed_recv_desc, &t, &j[i]);
	}
	int64_t worst = 0;
	for (int i = 0; i < N; i++) {
		int64_t late = -1;
		int st = 1;
		wt_join_wait(j[i], &st, &late);
		cr_expect_eq(st, 0);
		if (late > worst)
			worst = late;
		weft_join_drop(j[i]);
	}
	cr_log_info("latest -ETIMEDOUT %lld us after its deadline",
		    (long long)worst / 1000);
	cr_expect_lt(worst, 1000 * (int64_t)MS);
	wt_rt_free_prompt(rt);
	for (int i = 0; i < N; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

/*
 * Data racing the deadline. A pacer thread sends one byte at a given time,
 * busy-waiting to it (a clock of its own, not weft's timers); the recv's
 * deadline is 300..600 us ahead and the byte goes at deadline +- 150 us.
 */
struct pacer {
	int fd;
	pthread_t th;
	atomic_uint_fast64_t at; /* when to send; 0 idle, UINT64_MAX quit */
	atomic_int byte;
};

static void *pacer_main(void *arg)
{
	struct pacer *p = arg;
	for (;;) {
		uint64_t at;
		while ((at = atomic_load(&p->at)) == 0)
			sched_yield();
		if (at == UINT64_MAX)
			return NULL;
		while (weft_now_ns() < at)
			;
		unsigned char b = (unsigned char)atomic_load(&p->byte);
		if (send(p->fd, &b, 1, MSG_NOSIGNAL) != 1)
			abort();
		atomic_store(&p->at, 0);
	}
}

static void pacer_start(struct pacer *p, int fd)
{
	p->fd = fd;
	atomic_init(&p->at, 0);
	cr_assert_eq(pthread_create(&p->th, NULL, pacer_main, p), 0);
}

static void pacer_stop(struct pacer *p)
{
	atomic_store(&p->at, UINT64_MAX);
	pthread_join(p->th, NULL);
}

/* Wait until the pacer has sent its byte. */
static void pacer_wait(struct pacer *p)
{
	uint64_t end = wt_mono_ns() + 5000 * MS;
	while (atomic_load(&p->at) != 0 && wt_mono_ns() < end)
		sched_yield();
	cr_assert_eq(atomic_load(&p->at), 0, "the pacer never sent");
}

/* One recv on @fd with a deadline, and the pacer's byte @i at about it. */
struct race {
	uint64_t deadline;
	unsigned char byte;
	unsigned char buf[4];
	weft_join *j;
};

static void race_start(weft_runtime *rt, int fd, struct pacer *p,
		       uint64_t *x, int i, struct race *r)
{
	weft_io io = WEFT_IO_INIT;
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	r->byte = (unsigned char)i;
	r->deadline = weft_now_ns() + 300000 + (*x >> 33) % 300000;
	cr_assert_eq(weft_io_prep_recv(&io, fd, r->buf, sizeof(r->buf), 0), 0);
	cr_assert_eq(weft_io_set_deadline(&io, r->deadline), 0);
	r->j = wt_op_spawn(rt, &io, NULL);
	atomic_store(&p->byte, r->byte);
	atomic_store(&p->at, r->deadline - 150000 + (*x >> 13) % 300000);
}

/*
 * How the race ended, checked: the byte, or -ETIMEDOUT no earlier than
 * the deadline with the byte still in the socket (the linked timeout
 * cancels the recv in the kernel, atomically with the transfer: a
 * -ETIMEDOUT that had consumed data would lose it). Returns 1 for the
 * byte, 0 for -ETIMEDOUT.
 */
static int race_check(int fd, const struct race *r, int64_t res, int i)
{
	if (res == 1) {
		cr_assert_eq(r->buf[0], r->byte, "iteration %d: byte %u", i,
			     r->buf[0]);
		return 1;
	}
	cr_assert_eq(res, -ETIMEDOUT, "iteration %d: recv %lld", i,
		     (long long)res);
	uint64_t now = weft_now_ns();
	cr_assert_geq(now, r->deadline, "iteration %d: -ETIMEDOUT %llu us "
		      "before the deadline", i,
		      (unsigned long long)(r->deadline - now) / 1000);
	unsigned char c = 0;
	cr_assert_eq(recv(fd, &c, 1, MSG_DONTWAIT), 1,
		     "iteration %d: -ETIMEDOUT and the byte is gone (%s)", i,
		     strerror(errno));
	cr_assert_eq(c, r->byte);
	return 0;
}

WT_RT_TEST_T(deadline, data_racing_deadline_never_lost, 60)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	struct pacer p;
	pacer_start(&p, sv[1]);
	uint64_t x = 99 + cfg->workers + cfg->flags;
	int got = 0, i;
	uint64_t end = wt_mono_ns() + 10000 * MS;
	for (i = 0; i < 300 && wt_mono_ns() < end; i++) {
		struct race r;
		race_start(rt, sv[0], &p, &x, i, &r);
		int64_t res = wt_op_join(r.j);
		pacer_wait(&p);
		got += race_check(sv[0], &r, res, i);
	}
	cr_log_info("%d iterations: data %d, -ETIMEDOUT %d", i, got, i - got);
	pacer_stop(&p);
	wt_rt_pair_close(&fx);
}

/*
 * The same race, each time followed at once by a recv without a deadline
 * on another socket, which must wait for its data: the first op's
 * deadline, however its race ended, must not touch a later op (the kernel
 * cancels a linked timeout's op by user_data, so a record reused before the
 * timeout's CQE would be cancelled in its place).
 */
WT_RT_TEST_T(deadline, raced_deadline_spares_later_ops, 60)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2], sw[2];
	wt_sock_pair(sv);
	wt_sock_pair(sw);
	struct pacer p;
	pacer_start(&p, sv[1]);
	uint64_t x = 5 + cfg->workers + cfg->flags;
	int i;
	uint64_t end = wt_mono_ns() + 10000 * MS;
	for (i = 0; i < 200 && wt_mono_ns() < end; i++) {
		struct race r;
		unsigned char buf[4] = { 0 };
		weft_io later = WEFT_IO_INIT;
		race_start(rt, sv[0], &p, &x, i, &r);
		int64_t res = wt_op_join(r.j);
		cr_assert_eq(weft_io_prep_recv(&later, sw[0], buf, sizeof(buf),
					       0), 0);
		weft_join *jl = wt_op_spawn(rt, &later, NULL);
		pacer_wait(&p);
		race_check(sv[0], &r, res, i);
		wt_sleep_ms(1);
		cr_assert_eq(send(sw[1], "L", 1, MSG_NOSIGNAL), 1);
		int64_t lres = wt_op_join(jl);
		cr_assert_eq(lres, 1, "iteration %d: a recv without deadline "
			     "after a raced one: %lld (%s)", i,
			     (long long)lres,
			     lres < 0 ? weft_strerror((int)lres) : "data");
	}
	cr_log_info("%d iterations", i);
	pacer_stop(&p);
	wt_rt_free_prompt(rt);
	close(sv[0]);
	close(sv[1]);
	close(sw[0]);
	close(sw[1]);
}

/* --- cancel --------------------------------------------------------------- */

WT_RT_TEST(deadline, abort_op_with_deadline)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	unsigned char buf[8];
	struct wt_counters c = { 0 };
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_recv(&io, sv[0], buf, sizeof(buf), 0), 0);
	cr_assert_eq(weft_io_set_timeout(&io, 10000 * MS), 0);
	weft_join *j = wt_op_spawn(rt, &io, &c);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	weft_task_abort(j);
	int st = 1;
	wt_join_wait(j, &st, NULL);
	cr_expect_eq(st, -ECANCELED);
	weft_join_drop(j);
	cr_expect_eq(atomic_load(&c.drops), 1);
	cr_expect(wt_ops_quiesce(rt, 3000), "the recv was not cancelled");
	wt_rt_pair_close(&fx);
}

/* --- errors ----------------------------------------------------------------- */

/* Setting a deadline on an op in flight: -EBUSY, and the op goes on. */
struct busy_recv {
	int fd;
	/* private */
	int step;
	weft_io io;
	unsigned char buf[8];
};

struct busy_out {
	int e_deadline, e_timeout;
	int64_t res;
	unsigned char buf[8];
};

static weft_poll busy_recv_poll(void *self, weft_cx *cx, void *out)
{
	struct busy_recv *s = self;
	struct busy_out *o = out;
	int64_t res;
	if (s->step == 0) {
		WT_CHECK(weft_io_prep_recv(&s->io, s->fd, s->buf,
					   sizeof(s->buf), 0) == 0, "prep");
		WT_CHECK(weft_io_poll(&s->io, cx, &res) == WEFT_PENDING,
			 "recv READY at once: %lld", (long long)res);
		o->e_deadline = weft_io_set_deadline(&s->io, 1);
		o->e_timeout = weft_io_set_timeout(&s->io, 0);
		s->step = 1;
		return WEFT_PENDING;
	}
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	o->res = res;
	memcpy(o->buf, s->buf, sizeof(o->buf));
	return WEFT_READY;
}

static void busy_recv_drop(void *self)
{
	weft_io_drop(&((struct busy_recv *)self)->io);
}

static const weft_future_desc busy_recv_desc = {
	.poll = busy_recv_poll,
	.drop = busy_recv_drop,
	.size = sizeof(struct busy_recv),
	.output_size = sizeof(struct busy_out),
};

WT_RT_TEST(deadline, set_on_op_in_flight_is_ebusy)
{
	struct wt_rt_pair fx = wt_rt_pair_open(cfg);
	weft_runtime *rt = fx.rt;
	int *sv = fx.sv;
	struct busy_recv b = { .fd = sv[0] };
	weft_join *j;
	struct busy_out o = { 0 };
	wt_spawn(rt, &busy_recv_desc, &b, &j);
	/* Were the deadlines (1 ns; now) applied, the recv would end with
	 * -ETIMEDOUT long before this data. */
	wt_sleep_ms(30);
	cr_assert_eq(send(sv[1], "go", 2, MSG_NOSIGNAL), 2);
	int st = 1;
	wt_join_wait(j, &st, &o);
	weft_join_drop(j);
	cr_expect_eq(st, 0);
	cr_expect_eq(o.e_deadline, -EBUSY, "set_deadline in flight: %d",
		     o.e_deadline);
	cr_expect_eq(o.e_timeout, -EBUSY, "set_timeout in flight: %d",
		     o.e_timeout);
	cr_expect_eq(o.res, 2, "the op in flight: %lld", (long long)o.res);
	cr_expect_eq(memcmp(o.buf, "go", 2), 0);
	wt_rt_pair_close(&fx);
}

/* A sleep is its own deadline: -EINVAL, and the sleep is unchanged. */
WT_RT_TEST(deadline, set_on_sleep_is_einval)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_sleep(&io, 20 * MS), 0);
	uint64_t t0 = wt_mono_ns();
	cr_expect_eq(weft_io_set_deadline(&io, 1), -EINVAL);
	cr_expect_eq(weft_io_set_timeout(&io, 0), -EINVAL);
	weft_io until = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_sleep_until(&until, weft_now_ns() + MS), 0);
	cr_expect_eq(weft_io_set_deadline(&until, 1), -EINVAL);
	weft_io_drop(&until);
	cr_expect_eq(wt_op_run(rt, &io), 0);
	cr_expect_geq(wt_mono_ns() - t0, 20 * MS,
		      "the rejected deadline shortened the sleep");
	wt_rt_free(rt);
}

WT_TEST(deadline, set_on_unprepared_is_einval)
{
	weft_io io = WEFT_IO_INIT;
	cr_expect_eq(weft_io_set_deadline(&io, weft_now_ns() + MS), -EINVAL);
	cr_expect_eq(weft_io_set_timeout(&io, MS), -EINVAL);
	cr_expect_eq(weft_io_set_deadline(NULL, 0), -EINVAL);
	cr_expect_eq(weft_io_set_timeout(NULL, MS), -EINVAL);
	/* A prep that failed leaves the io unprepared. */
	cr_expect_eq(weft_io_prep_recv(&io, 0, NULL, 10, 0), -EINVAL);
	cr_expect_eq(weft_io_set_timeout(&io, MS), -EINVAL);
	weft_io_drop(&io);
}
