/* SPDX-License-Identifier: MIT */
/*
 * Fibers (weft/fiber.h): weft_go and joins, fibers spawning fibers,
 * weft_await of the library's futures, weft_await_until, sleeps and yields
 * next to poll-based tasks, every weft_co_* I/O call, deadlines, stack
 * buffers and sizes, and the errors (-EPERM off a fiber, bad options,
 * -ESHUTDOWN). Every runtime test runs on 1, 2 and 4 workers.
 * Cancellation: fiber_cancel.c; migration: fiber_migrate.c.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "fiber_helpers.h"

/* ------------------------------------------------------------ go, join */

struct pair {
	int a, b;
};

static void *add_fn(void *arg)
{
	struct pair *p = arg;
	FCHECK(weft_in_fiber());
	FCHECK(weft_worker_index() >= 0);
	p->b = p->a + 1;
	return p;
}

WT_RT_TEST(fiber, go_join_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct pair p = { 41, 0 };
	cr_assert_eq(wt_fiber_run(rt, add_fn, &p), &p);
	cr_assert_eq(p.b, 42);
	cr_assert_not(weft_in_fiber());
	wt_rt_free(rt);
}

static atomic_int detached_done;

static void *detached_fn(void *arg)
{
	FCHECK(weft_co_sleep(2 * WT_MS) == 0);
	atomic_fetch_add(&detached_done, 1);
	return arg;
}

WT_RT_TEST(fiber, detached)
{
	weft_runtime *rt = wt_rt_new(cfg);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(weft_go(rt, detached_fn, NULL, NULL, NULL), 0);
	cr_assert_eq(wt_wait_atomic_ge(&detached_done, 16, 5000), 16);
	wt_rt_free(rt);
}

/* A tree: each fiber of depth d > 0 starts 3 children on the current
 * runtime (rt NULL), joins them and returns 1 + the sum of their counts. */
static void *tree_fn(void *arg)
{
	intptr_t depth = (intptr_t)arg, n = 1;
	weft_join *j[3];
	weft_fiber_opts o;

	if (depth == 0)
		return (void *)n;
	weft_fiber_opts_init(&o);
	o.name = "tree";
	for (int i = 0; i < 3; i++)
		FCHECK(weft_go(NULL, tree_fn, (void *)(depth - 1), &o,
			       &j[i]) == 0);
	FCHECK(weft_co_yield() == 0);
	for (int i = 0; i < 3; i++) {
		void *out = NULL;
		FCHECK(weft_co_join(j[i], &out) == 0);
		n += (intptr_t)out;
	}
	return (void *)n;
}

WT_RT_TEST(fiber, fibers_spawn_fibers)
{
	weft_runtime *rt = wt_rt_new(cfg);
	/* 1 + 3 + 9 + 27 + 81 */
	cr_assert_eq((intptr_t)wt_fiber_run(rt, tree_fn, (void *)4), 121);
	wt_rt_free(rt);
}

/* ------------------------------------------------------------- awaits */

struct sender {
	weft_oneshot_tx *tx;
	weft_semaphore *sem;
	weft_mpsc_tx *mtx;
};

static void *oneshot_sender(void *arg)
{
	weft_oneshot_tx *tx = arg;
	int v = 42;
	FCHECK(weft_co_sleep(3 * WT_MS) == 0);
	FCHECK(weft_oneshot_send(tx, &v) == 0);
	return NULL;
}

static void *sem_releaser(void *arg)
{
	FCHECK(weft_co_sleep(3 * WT_MS) == 0);
	weft_semaphore_release(arg, 2);
	return NULL;
}

static void *mpsc_sender(void *arg)
{
	weft_mpsc_tx *tx = arg;
	for (int i = 1; i <= 10; i++) {
		weft_mpsc_send s;
		int res = 1;
		FCHECK(weft_mpsc_send_init(&s, tx, &i) == 0);
		FCHECK(weft_await(&weft_mpsc_send_desc, &s, &res) == 0);
		FCHECK(res == 0, "send: %d", res);
		if (i % 3 == 0)
			FCHECK(weft_co_yield() == 0);
	}
	weft_mpsc_tx_drop(tx);
	return NULL;
}

static void *await_fn(void *arg)
{
	(void)arg;
	/* An op. */
	{
		weft_io io = WEFT_IO_INIT;
		int64_t res = -1;
		uint64_t t0 = weft_now_ns();
		FCHECK(weft_io_prep_sleep(&io, 2 * WT_MS) == 0);
		FCHECK(weft_await(&weft_io_desc, &io, &res) == 0);
		FCHECK(res == 0, "sleep op: %lld", (long long)res);
		FCHECK(weft_now_ns() - t0 >= 2 * WT_MS);
	}
	/* A oneshot, sent by another fiber after a while. */
	{
		weft_oneshot_tx *tx;
		weft_oneshot_rx *rx;
		int v = 0, st = 1;
		FCHECK(weft_oneshot_new(sizeof(int), &tx, &rx) == 0);
		FCHECK(weft_go(NULL, oneshot_sender, tx, NULL, NULL) == 0);
		weft_oneshot_recv r = { rx, &v };
		FCHECK(weft_await(&weft_oneshot_recv_desc, &r, &st) == 0);
		FCHECK(st == 0 && v == 42, "oneshot: %d %d", st, v);
	}
	/* A semaphore acquire. */
	{
		weft_semaphore *sem;
		weft_semaphore_acquire a;
		int res = 1;
		FCHECK(weft_semaphore_new(0, &sem) == 0);
		FCHECK(weft_go(NULL, sem_releaser, sem, NULL, NULL) == 0);
		FCHECK(weft_semaphore_acquire_init(&a, sem, 2) == 0);
		FCHECK(weft_await(&weft_semaphore_acquire_desc, &a, &res) == 0);
		FCHECK(res == 0);
		FCHECK(weft_semaphore_available(sem) == 0);
		weft_semaphore_release(sem, 2);
		FCHECK(weft_semaphore_free(sem) == 0);
	}
	/* An mpsc recv until the sender is gone. */
	{
		weft_mpsc_tx *tx;
		weft_mpsc_rx *rx;
		int sum = 0, n = 0;
		FCHECK(weft_mpsc_bounded(sizeof(int), 2, &tx, &rx) == 0);
		FCHECK(weft_go(NULL, mpsc_sender, tx, NULL, NULL) == 0);
		for (;;) {
			weft_mpsc_recv r;
			int v = 0, res = 1;
			FCHECK(weft_mpsc_recv_init(&r, rx, &v) == 0);
			FCHECK(weft_await(&weft_mpsc_recv_desc, &r, &res) == 0);
			if (res == -EPIPE)
				break;
			FCHECK(res == 0);
			sum += v;
			n++;
		}
		FCHECK(n == 10 && sum == 55, "mpsc: %d values, sum %d", n, sum);
		weft_mpsc_rx_drop(rx);
	}
	/* A select: a oneshot nobody sends against a short sleep. */
	{
		weft_oneshot_tx *tx;
		weft_oneshot_rx *rx;
		int v = 0, st = 1, one = 1;
		int64_t sres = -1;
		size_t winner = 9;
		weft_io io = WEFT_IO_INIT;
		weft_future arms[2];
		weft_select sel;
		FCHECK(weft_oneshot_new(sizeof(int), &tx, &rx) == 0);
		weft_oneshot_recv r = { rx, &v };
		FCHECK(weft_io_prep_sleep(&io, 3 * WT_MS) == 0);
		FCHECK(weft_future_init(&arms[0], &weft_oneshot_recv_desc, &r,
					&st) == 0);
		FCHECK(weft_future_init(&arms[1], &weft_io_desc, &io, &sres) ==
		       0);
		FCHECK(weft_select_init(&sel, arms, 2) == 0);
		FCHECK(weft_await(&weft_select_desc, &sel, &winner) == 0);
		FCHECK(winner == 1 && sres == 0, "winner %zu", winner);
		/* The losing arm was dropped: the receiver is gone. */
		FCHECK(weft_oneshot_send(tx, &one) == -EPIPE);
	}
	return (void *)1;
}

WT_RT_TEST(fiber, await_futures)
{
	weft_runtime *rt = wt_rt_new(cfg);
	cr_assert_eq(wt_fiber_run(rt, await_fn, NULL), (void *)1);
	wt_rt_free(rt);
}

static void *await_until_fn(void *arg)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	int v = 0, st = 7, one = 1;
	(void)arg;

	FCHECK(weft_oneshot_new(sizeof(int), &tx, &rx) == 0);
	weft_oneshot_recv r = { rx, &v };
	uint64_t t0 = weft_now_ns();
	int err = weft_await_until(&weft_oneshot_recv_desc, &r, &st,
				   t0 + 20 * WT_MS);
	FCHECK(err == -ETIMEDOUT, "await_until: %d", err);
	FCHECK(weft_now_ns() - t0 >= 20 * WT_MS);
	FCHECK(st == 7, "output written on timeout");
	/* The future was dropped: its receiver is released. */
	FCHECK(weft_oneshot_send(tx, &one) == -EPIPE);

	/* Ready before the deadline: 0 and the output. */
	FCHECK(weft_oneshot_new(sizeof(int), &tx, &rx) == 0);
	FCHECK(weft_oneshot_send(tx, &one) == 0);
	weft_oneshot_recv r2 = { rx, &v };
	FCHECK(weft_await_until(&weft_oneshot_recv_desc, &r2, &st,
				weft_now_ns() + 5000 * WT_MS) == 0);
	FCHECK(st == 0 && v == 1);

	/* Deadline 0: no deadline. */
	weft_yield y = WEFT_YIELD_INIT;
	FCHECK(weft_await_until(&weft_yield_desc, &y, NULL, 0) == 0);
	/* Bad arguments. */
	FCHECK(weft_await_until(NULL, &y, NULL, 1) == -EINVAL);
	FCHECK(weft_await(NULL, &y, NULL) == -EINVAL);
	FCHECK(weft_await(&weft_oneshot_recv_desc, NULL, &st) == -EINVAL);
	return (void *)1;
}

WT_RT_TEST(fiber, await_until_timeout)
{
	weft_runtime *rt = wt_rt_new(cfg);
	cr_assert_eq(wt_fiber_run(rt, await_until_fn, NULL), (void *)1);
	wt_rt_free(rt);
}

/* ------------------------------------------------------- sleep, yield */

static atomic_int wake_seq;
static int wake_order[5];

static void *sleeper_fn(void *arg)
{
	intptr_t i = (intptr_t)arg;
	uint64_t ns = (uint64_t)(5 - i) * 100 * WT_MS, t0 = weft_now_ns();
	FCHECK(weft_co_sleep(ns) == 0);
	FCHECK(weft_now_ns() - t0 >= ns, "woke early");
	wake_order[atomic_fetch_add(&wake_seq, 1)] = (int)i;
	/* sleep_until in the past returns at once. */
	FCHECK(weft_co_sleep_until(t0) == 0);
	FCHECK(weft_co_sleep(0) == 0);
	return NULL;
}

WT_RT_TEST(fiber, sleep_order)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_join *j[5];
	/* Fiber i sleeps (5 - i) * 100 ms: they wake in reverse order (100 ms
	 * apart, so a loaded machine stalling one worker does not reorder). */
	for (intptr_t i = 0; i < 5; i++)
		j[i] = wt_go(rt, sleeper_fn, (void *)i, "sleeper");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(wt_fiber_join(j[i], NULL), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(wake_order[i], 4 - i, "wake %d was fiber %d", i,
			     wake_order[i]);
	wt_rt_free(rt);
}

static atomic_bool poll_task_ran;

static int64_t set_flag(void *arg)
{
	(void)arg;
	atomic_store(&poll_task_ran, true);
	return 0;
}

/* Yield until a poll-based task spawned on this worker has run. */
static void *yielder_fn(void *arg)
{
	struct wt_call c = { set_flag, NULL };
	intptr_t n = 0;
	(void)arg;
	FCHECK(weft_spawn(NULL, &wt_call_desc, &c, NULL) == 0);
	while (!atomic_load(&poll_task_ran) && n < 1000000) {
		FCHECK(weft_co_yield() == 0);
		n++;
	}
	return (void *)n;
}

WT_RT_TEST(fiber, yield_lets_futures_run)
{
	weft_runtime *rt = wt_rt_new(cfg);
	intptr_t n = (intptr_t)wt_fiber_run(rt, yielder_fn, NULL);
	cr_assert(atomic_load(&poll_task_ran), "task starved by %ld yields",
		  (long)n);
	/* On one worker the task can only run between the fiber's yields:
	 * it must, at once. With more, another worker may have taken it and
	 * be descheduled by the OS while this one yields: no bound. */
	if (weft_runtime_workers(rt) == 1)
		cr_assert_lt(n, 1000);
	wt_rt_free(rt);
}

/* Two fibers and a poll task yielding in turns on one worker: each makes
 * progress while the others do. */
static atomic_int turns[3];
static atomic_bool turns_stop;

static void *turn_fiber(void *arg)
{
	intptr_t id = (intptr_t)arg;
	while (!atomic_load(&turns_stop)) {
		atomic_fetch_add(&turns[id], 1);
		FCHECK(weft_co_yield() == 0);
	}
	return NULL;
}

struct turn_task {
	weft_yield y;
	int n;
};

static weft_poll turn_task_poll(void *self, weft_cx *cx, void *out)
{
	struct turn_task *t = self;
	(void)out;
	while (t->n < 2000) {
		if (weft_yield_poll(&t->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		t->y = (weft_yield)WEFT_YIELD_INIT;
		t->n++;
		atomic_fetch_add(&turns[2], 1);
	}
	atomic_store(&turns_stop, true);
	return WEFT_READY;
}

static const weft_future_desc turn_task_desc = {
	.poll = turn_task_poll,
	.size = sizeof(struct turn_task),
};

WT_TEST(fiber, yield_fair_one_worker)
{
	struct wt_cfg c = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&c);
	weft_join *a = wt_go(rt, turn_fiber, (void *)0, "a");
	weft_join *b = wt_go(rt, turn_fiber, (void *)1, "b");
	struct turn_task t = { WEFT_YIELD_INIT, 0 };
	weft_join *jt;
	wt_spawn(rt, &turn_task_desc, &t, &jt);
	int st = 1;
	wt_join_wait(jt, &st, NULL);
	weft_join_drop(jt);
	cr_assert_eq(wt_fiber_join(a, NULL), 0);
	cr_assert_eq(wt_fiber_join(b, NULL), 0);
	/* Round robin: each fiber had about as many turns as the task. */
	for (int i = 0; i < 2; i++)
		cr_assert_gt(atomic_load(&turns[i]), 1000, "fiber %d: %d turns",
			     i, atomic_load(&turns[i]));
	wt_rt_free(rt);
}

/* ------------------------------------------------------------------ I/O */

/* Over a socket pair: send/recv with stack buffers, send_all/recv_exact
 * of 256 KiB (several partial transfers), a recv deadline that consumes
 * nothing, EOF, -EPIPE, close through the ring. */
static void *sock_fn(void *arg)
{
	int *sv = arg;
	char small[64];

	FCHECK(weft_co_send(sv[0], "hello", 5, 0, 0) == 5);
	memset(small, 0, sizeof(small));
	FCHECK(weft_co_recv(sv[1], small, sizeof(small), 0, 0) == 5);
	FCHECK(!memcmp(small, "hello", 5));

	/* Deadline with nothing to read: -ETIMEDOUT; then data sent after it
	 * is all there. */
	uint64_t t0 = weft_now_ns();
	int64_t r = weft_co_recv(sv[1], small, sizeof(small), 0,
				 t0 + 20 * WT_MS);
	FCHECK(r == -ETIMEDOUT, "recv deadline: %lld", (long long)r);
	FCHECK(weft_now_ns() - t0 >= 20 * WT_MS);
	FCHECK(weft_co_send(sv[0], "abc", 3, 0, weft_now_ns() + 5000 * WT_MS) ==
	       3);
	FCHECK(weft_co_recv(sv[1], small, 3, 0, weft_now_ns() + 5000 * WT_MS) ==
	       3);
	FCHECK(!memcmp(small, "abc", 3));
	/* recv_exact past a deadline: -ETIMEDOUT. */
	r = weft_co_recv_exact(sv[1], small, 4, weft_now_ns() + 10 * WT_MS);
	FCHECK(r == -ETIMEDOUT, "recv_exact deadline: %lld", (long long)r);
	return (void *)1;
}

static void *exact_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static unsigned char back[256 * 1024];
	unsigned char want[4096];
	int64_t r = weft_co_recv_exact(fd, back, sizeof(back), 0);
	FCHECK(r == (int64_t)sizeof(back), "recv_exact: %lld", (long long)r);
	for (size_t off = 0; off < sizeof(back); off += sizeof(want)) {
		wt_fill(want, sizeof(want), (uint32_t)(off / sizeof(want)));
		FCHECK(!memcmp(back + off, want, sizeof(want)), "at %zu", off);
	}
	/* Then EOF before 10 more bytes: -EPIPE. */
	r = weft_co_recv_exact(fd, back, 10, 0);
	FCHECK(r == -EPIPE, "recv_exact at EOF: %lld", (long long)r);
	return (void *)1;
}

static void *bulk_fn(void *arg)
{
	int *sv = arg;
	static unsigned char big[256 * 1024];
	weft_join *j;
	void *out = NULL;

	for (size_t off = 0; off < sizeof(big); off += 4096)
		wt_fill(big + off, 4096, (uint32_t)(off / 4096));
	FCHECK(weft_go(NULL, exact_reader, (void *)(intptr_t)sv[1], NULL,
		       &j) == 0);
	FCHECK(weft_co_send_all(sv[0], big, sizeof(big), 0, 0) ==
	       (int64_t)sizeof(big));
	FCHECK(weft_co_close(sv[0]) == 0);
	FCHECK(weft_co_join(j, &out) == 0 && out == (void *)1);
	/* The peer is closed: recv sees EOF, send -EPIPE (no SIGPIPE). */
	char c;
	FCHECK(weft_co_recv(sv[1], &c, 1, 0, 0) == 0);
	FCHECK(weft_co_close(sv[1]) == 0);
	return (void *)1;
}

WT_RT_TEST(fiber, io_socketpair)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2];
	wt_sock_pair(sv);
	cr_assert_eq(wt_fiber_run(rt, sock_fn, sv), (void *)1);
	cr_assert_eq(wt_fiber_run(rt, bulk_fn, sv), (void *)1);
	/* weft_co_close closed both. */
	cr_assert_eq(fcntl(sv[0], F_GETFD), -1);
	cr_assert_eq(fcntl(sv[1], F_GETFD), -1);
	wt_rt_free(rt);
}

static void *send_epipe_fn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	int64_t r = weft_co_send(fd, "x", 1, 0, 0);
	FCHECK(r == -EPIPE, "send to a closed peer: %lld", (long long)r);
	return (void *)1;
}

WT_RT_TEST(fiber, send_to_closed_peer)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2];
	wt_sock_pair(sv);
	close(sv[1]);
	cr_assert_eq(wt_fiber_run(rt, send_epipe_fn, (void *)(intptr_t)sv[0]),
		     (void *)1);
	close(sv[0]);
	wt_rt_free(rt);
}

/* TCP over loopback: a fiber accepts three connections, made by
 * weft_co_connect, weft_co_tcp_connect("127.0.0.1") and
 * weft_co_tcp_connect("localhost"), and echoes one byte on each. */
struct tcp_ctx {
	int lfd;
	int port;
};

static void *acceptor_fn(void *arg)
{
	struct tcp_ctx *t = arg;
	for (int i = 0; i < 3; i++) {
		int fd = weft_co_accept(t->lfd, weft_now_ns() + 5000 * WT_MS);
		char c;
		FCHECK(fd >= 0, "accept: %d", fd);
		FCHECK(weft_co_recv(fd, &c, 1, 0, 0) == 1);
		c++;
		FCHECK(weft_co_send(fd, &c, 1, 0, 0) == 1);
		FCHECK(weft_co_close(fd) == 0);
	}
	/* Nobody else connects: the accept deadline passes. */
	int r = weft_co_accept(t->lfd, weft_now_ns() + 10 * WT_MS);
	FCHECK(r == -ETIMEDOUT, "accept deadline: %d", r);
	return (void *)1;
}

static void echo_once(int fd, char c)
{
	char back = 0;
	FCHECK(fd >= 0, "connect: %d", fd);
	FCHECK(weft_co_send(fd, &c, 1, 0, 0) == 1);
	FCHECK(weft_co_recv(fd, &back, 1, 0, weft_now_ns() + 5000 * WT_MS) ==
	       1);
	FCHECK(back == c + 1);
	FCHECK(weft_co_recv(fd, &back, 1, 0, 0) == 0); /* closed */
	FCHECK(weft_co_close(fd) == 0);
}

static void *connector_fn(void *arg)
{
	struct tcp_ctx *t = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t dl = weft_now_ns() + 5000 * WT_MS;

	FCHECK(weft_addr_parse("127.0.0.1", (uint16_t)t->port, &ss, &len) ==
	       0);
	echo_once(weft_co_connect((struct sockaddr *)&ss, len, dl), 'a');
	echo_once(weft_co_tcp_connect("127.0.0.1", (uint16_t)t->port, dl), 'b');
	echo_once(weft_co_tcp_connect("localhost", (uint16_t)t->port, dl), 'c');
	return (void *)1;
}

WT_RT_TEST(fiber, io_tcp)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct tcp_ctx t;
	t.lfd = weft_tcp_listen("127.0.0.1", 0, 8);
	cr_assert_geq(t.lfd, 0);
	t.port = weft_tcp_local_port(t.lfd);
	weft_join *a = wt_go(rt, acceptor_fn, &t, "acceptor");
	weft_join *c = wt_go(rt, connector_fn, &t, "connector");
	void *out = NULL;
	cr_assert_eq(wt_fiber_join(c, &out), 0);
	cr_assert_eq(out, (void *)1);
	cr_assert_eq(wt_fiber_join(a, &out), 0);
	cr_assert_eq(out, (void *)1);
	close(t.lfd);
	wt_rt_free(rt);
}

/* A pipe (file position) and a file (pread/pwrite at offsets). */
static void *pipe_file_fn(void *arg)
{
	int *fds = arg; /* pipe read, pipe write, file */
	char buf[32];
	uint64_t pos = (uint64_t)-1;

	FCHECK(weft_co_write(fds[1], "pipe!", 5, pos, 0) == 5);
	FCHECK(weft_co_read(fds[0], buf, sizeof(buf), pos, 0) == 5);
	FCHECK(!memcmp(buf, "pipe!", 5));
	/* A read with a deadline on an empty pipe. */
	int64_t r = weft_co_read(fds[0], buf, sizeof(buf), pos,
				 weft_now_ns() + 10 * WT_MS);
	FCHECK(r == -ETIMEDOUT, "pipe read deadline: %lld", (long long)r);

	FCHECK(weft_co_write(fds[2], "0123456789", 10, 0, 0) == 10);
	FCHECK(weft_co_write(fds[2], "AB", 2, 4, 0) == 2);
	FCHECK(weft_co_write(fds[2], "zz", 2, 100, 0) == 2);
	memset(buf, 0, sizeof(buf));
	FCHECK(weft_co_read(fds[2], buf, 6, 2, 0) == 6);
	FCHECK(!memcmp(buf, "23AB67", 6), "read %.6s", buf);
	FCHECK(weft_co_read(fds[2], buf, sizeof(buf), 100, 0) == 2);
	FCHECK(weft_co_read(fds[2], buf, sizeof(buf), 200, 0) == 0);
	/* File position: the writes at offsets did not move it. */
	FCHECK(weft_co_read(fds[2], buf, 3, pos, 0) == 3);
	FCHECK(!memcmp(buf, "012", 3));
	return (void *)1;
}

WT_RT_TEST(fiber, io_pipe_file)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	char path[] = "/tmp/weft-fiber-XXXXXX";
	wt_pipe(p);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	int fds[3] = { p[0], p[1], fd };
	cr_assert_eq(wt_fiber_run(rt, pipe_file_fn, fds), (void *)1);
	close(p[0]);
	close(p[1]);
	close(fd);
	wt_rt_free(rt);
}

/* ---------------------------------------------------------------- stack */

static void *big_stack_fn(void *arg)
{
	volatile unsigned char a[512 * 1024];
	unsigned sum = 0;
	(void)arg;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (unsigned char)i;
	FCHECK(weft_co_yield() == 0);
	FCHECK(weft_co_sleep(WT_MS) == 0);
	for (size_t i = 0; i < sizeof(a); i += 4096)
		sum += a[i + 7];
	return (void *)(uintptr_t)sum;
}

static void *small_stack_fn(void *arg)
{
	(void)arg;
	FCHECK(weft_co_yield() == 0);
	FCHECK(weft_co_sleep(WT_MS) == 0);
	return (void *)1;
}

/* Runs default-stack children (their stacks join the pools of the workers
 * they end on), then a 1 MiB one from this worker. */
static void *pool_then_big_fn(void *arg)
{
	weft_fiber_opts o;
	weft_join *j[8];
	void *out = NULL;
	(void)arg;
	for (int i = 0; i < 8; i++)
		FCHECK(weft_go(NULL, small_stack_fn, NULL, NULL, &j[i]) == 0);
	for (int i = 0; i < 8; i++)
		FCHECK(weft_co_join(j[i], NULL) == 0);
	weft_fiber_opts_init(&o);
	o.stack_size = 1024 * 1024;
	for (int i = 0; i < 4; i++) {
		FCHECK(weft_go(NULL, big_stack_fn, NULL, &o, &j[i]) == 0);
		FCHECK(weft_co_join(j[i], &out) == 0);
		FCHECK((uintptr_t)out == 128u * 7);
	}
	return (void *)1;
}

WT_RT_TEST(fiber, stack_size)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_fiber_opts o;
	weft_join *j;
	void *out = NULL;

	weft_fiber_opts_init(&o);
	o.stack_size = 1024 * 1024;
	cr_assert_eq(weft_go(rt, big_stack_fn, NULL, &o, &j), 0);
	cr_assert_eq(wt_fiber_join(j, &out), 0);
	cr_assert_eq((uintptr_t)out, 128u * 7);
	/* The bounds are accepted. */
	o.stack_size = WEFT_FIBER_STACK_MIN;
	cr_assert_eq(weft_go(rt, small_stack_fn, NULL, &o, &j), 0);
	cr_assert_eq(wt_fiber_join(j, &out), 0);
	o.stack_size = WEFT_FIBER_STACK_MAX;
	cr_assert_eq(weft_go(rt, small_stack_fn, NULL, &o, &j), 0);
	cr_assert_eq(wt_fiber_join(j, &out), 0);
	/* A big stack asked for on a worker whose pool holds default ones. */
	cr_assert_eq(wt_fiber_run(rt, pool_then_big_fn, NULL), (void *)1);
	/* Not a multiple of the page size. */
	o.stack_size = WEFT_FIBER_STACK + 1;
	cr_assert_eq(weft_go(rt, small_stack_fn, NULL, &o, &j), 0);
	cr_assert_eq(wt_fiber_join(j, &out), 0);
	wt_rt_free(rt);
}

/* Many fibers at once: pooled stacks go back and forth between threads. */
static void *many_fn(void *arg)
{
	char buf[1024];
	memset(buf, (int)(intptr_t)arg, sizeof(buf));
	FCHECK(weft_co_yield() == 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		FCHECK(buf[i] == (char)(intptr_t)arg);
	return arg;
}

WT_RT_TEST(fiber, many_fibers)
{
	weft_runtime *rt = wt_rt_new(cfg);
	for (int round = 0; round < 3; round++) {
		weft_join *j[200];
		for (intptr_t i = 0; i < 200; i++)
			j[i] = wt_go(rt, many_fn, (void *)i, NULL);
		for (intptr_t i = 0; i < 200; i++) {
			void *out = NULL;
			cr_assert_eq(wt_fiber_join(j[i], &out), 0);
			cr_assert_eq(out, (void *)i);
		}
	}
	wt_rt_free(rt);
}

/* --------------------------------------------------------------- errors */

static atomic_int never_ran;

static void *never_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&never_ran, 1);
	return NULL;
}

WT_TEST(fiber, bad_args)
{
	struct wt_cfg c = { 2, 0 };
	weft_runtime *rt = wt_rt_new(&c);
	weft_fiber_opts o;
	weft_join *j = (weft_join *)&o; /* must stay untouched */
	char name[WEFT_TASK_NAME_MAX + 8];

	cr_assert_eq(weft_go(rt, NULL, NULL, NULL, &j), -EINVAL);
	cr_assert_eq(weft_go(NULL, never_fn, NULL, NULL, &j), -EINVAL,
		     "NULL runtime off a worker");
	weft_fiber_opts_init(&o);
	o.size = sizeof(o) - 1;
	cr_assert_eq(weft_go(rt, never_fn, NULL, &o, &j), -EINVAL);
	o.size = 0;
	cr_assert_eq(weft_go(rt, never_fn, NULL, &o, &j), -EINVAL);
	weft_fiber_opts_init(&o);
	o.stack_size = WEFT_FIBER_STACK_MIN - 1;
	cr_assert_eq(weft_go(rt, never_fn, NULL, &o, &j), -EINVAL);
	o.stack_size = 1;
	cr_assert_eq(weft_go(rt, never_fn, NULL, &o, &j), -EINVAL);
	o.stack_size = WEFT_FIBER_STACK_MAX + 1;
	cr_assert_eq(weft_go(rt, never_fn, NULL, &o, &j), -EINVAL);
	o.stack_size = SIZE_MAX;
	cr_assert_eq(weft_go(rt, never_fn, NULL, &o, &j), -EINVAL);
	weft_fiber_opts_init(&o);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	o.name = name;
	cr_assert_eq(weft_go(rt, never_fn, NULL, &o, &j), -ENAMETOOLONG);
	cr_assert_eq(j, (weft_join *)&o);
	weft_fiber_opts_init(NULL);
	/* Nothing ran. */
	wt_sleep_ms(20);
	cr_assert_eq(atomic_load(&never_ran), 0);

	cr_assert_eq(weft_runtime_shutdown(rt), 0);
	cr_assert_eq(weft_go(rt, never_fn, NULL, NULL, &j), -ESHUTDOWN);
	cr_assert_eq(weft_go(rt, never_fn, NULL, NULL, NULL), -ESHUTDOWN);
	cr_assert_eq(j, (weft_join *)&o);
	cr_assert_eq(atomic_load(&never_ran), 0);
	weft_runtime_free(rt);
	wt_leak_check();
}

static void *join_target(void *arg)
{
	return arg;
}

/* Every fiber call off a fiber: -EPERM, nothing done. */
static void check_off_fiber(int sv[2], weft_join *j)
{
	char buf[8];
	struct sockaddr_storage ss;
	socklen_t len;
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	int v = 0, st = 5, one = 1;

	FCHECK(!weft_in_fiber());
	FCHECK(weft_co_yield() == -EPERM);
	FCHECK(weft_co_sleep(WT_MS) == -EPERM);
	FCHECK(weft_co_sleep_until(weft_now_ns() + WT_MS) == -EPERM);
	FCHECK(weft_co_send(sv[0], "x", 1, 0, 0) == -EPERM);
	FCHECK(weft_co_send_all(sv[0], "x", 1, 0, 0) == -EPERM);
	FCHECK(weft_co_write(sv[0], "x", 1, (uint64_t)-1, 0) == -EPERM);
	/* Nothing was sent. */
	FCHECK(recv(sv[1], buf, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN);
	FCHECK(send(sv[1], "y", 1, 0) == 1);
	FCHECK(weft_co_recv(sv[0], buf, 1, 0, 0) == -EPERM);
	FCHECK(weft_co_recv_exact(sv[0], buf, 1, 0) == -EPERM);
	FCHECK(weft_co_read(sv[0], buf, 1, (uint64_t)-1, 0) == -EPERM);
	/* Nothing was received. */
	FCHECK(recv(sv[0], buf, 1, MSG_DONTWAIT) == 1 && buf[0] == 'y');
	FCHECK(weft_co_accept(sv[0], 0) == -EPERM);
	FCHECK(weft_addr_parse("127.0.0.1", 9, &ss, &len) == 0);
	FCHECK(weft_co_connect((struct sockaddr *)&ss, len, 0) == -EPERM);
	FCHECK(weft_co_tcp_connect("localhost", 9, 0) == -EPERM);
	FCHECK(weft_co_close(sv[0]) == -EPERM);
	FCHECK(fcntl(sv[0], F_GETFD) >= 0, "closed off a fiber");
	if (j)
		FCHECK(weft_co_join(j, NULL) == -EPERM);
	FCHECK(weft_co_join(NULL, NULL) == -EINVAL);

	FCHECK(weft_oneshot_new(sizeof(int), &tx, &rx) == 0);
	weft_oneshot_recv r = { rx, &v };
	FCHECK(weft_await(&weft_oneshot_recv_desc, &r, &st) == -EPERM);
	FCHECK(weft_await_until(&weft_oneshot_recv_desc, &r, &st,
				weft_now_ns() + WT_MS) == -EPERM);
	FCHECK(st == 5);
	/* The future is still the caller's: the receiver is alive. */
	FCHECK(weft_oneshot_send(tx, &one) == 0);
	weft_oneshot_recv_desc.drop(&r);
}

static int64_t off_fiber_on_worker(void *arg)
{
	FCHECK(weft_worker_index() >= 0);
	check_off_fiber(arg, NULL);
	return 1;
}

WT_RT_TEST(fiber, eperm_off_fiber)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sv[2];
	wt_sock_pair(sv);
	/* On the test thread, with a join handle of a fiber. */
	weft_join *j = wt_go(rt, join_target, (void *)3, NULL);
	check_off_fiber(sv, j);
	void *out = NULL;
	cr_assert_eq(wt_fiber_join(j, &out), 0, "handle still usable");
	cr_assert_eq(out, (void *)3);
	/* On a worker, in a poll-based task. */
	cr_assert_eq(wt_run_on_worker(rt, off_fiber_on_worker, sv), 1);
	close(sv[0]);
	close(sv[1]);
	wt_rt_free(rt);
}

/* The name and the runtime are the task's. */
static void *named_fn(void *arg)
{
	weft_runtime *rt = arg;
	const char *n = weft_task_name();
	FCHECK(n && !strcmp(n, "named-fiber"), "name %s", n ? n : "(null)");
	FCHECK(weft_runtime_current() == rt);
	FCHECK(weft_co_sleep(WT_MS) == 0);
	n = weft_task_name();
	FCHECK(n && !strcmp(n, "named-fiber"));
	FCHECK(weft_runtime_current() == rt);
	return (void *)1;
}

WT_RT_TEST(fiber, name_and_runtime)
{
	weft_runtime *rt = wt_rt_new(cfg);
	void *out = NULL;
	cr_assert_eq(wt_fiber_join(wt_go(rt, named_fn, rt, "named-fiber"),
				   &out), 0);
	cr_assert_eq(out, (void *)1);
	wt_rt_free(rt);
}
