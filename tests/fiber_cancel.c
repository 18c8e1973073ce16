/* SPDX-License-Identifier: MIT */
/*
 * Fiber cancellation (weft/fiber.h, libdill's model): an aborted fiber's
 * pending call returns -ECANCELED, every later call fails at once without
 * suspending, its cleanup runs and the join handle says -ECANCELED; a
 * fiber aborted before it ever ran still runs (to free its argument); a
 * runtime shutdown unwinds every fiber, whatever it is blocked in; a
 * fiber aborted while joining another detaches it.
 */
#include <fcntl.h>
#include <semaphore.h>

#include "fiber_helpers.h"

/* ------------------------------------------------- abort during a recv */

struct recv_ctx {
	int fd;
	atomic_int stage; /* 1: about to recv, 2: cleanup done */
	int64_t recv, recv2, send;
	int yield, sleep, await, close;
	uint64_t unwind_ns;
};

static void *recv_fn(void *arg)
{
	struct recv_ctx *c = arg;
	char buf[128]; /* on the fiber's stack, handed to the op */
	weft_yield y = WEFT_YIELD_INIT;

	atomic_store(&c->stage, 1);
	c->recv = weft_co_recv(c->fd, buf, sizeof(buf), 0, 0);
	uint64_t t0 = weft_now_ns();
	c->yield = weft_co_yield();
	c->sleep = weft_co_sleep(10000 * WT_MS);
	c->recv2 = weft_co_recv(c->fd, buf, sizeof(buf), 0, 0);
	c->send = weft_co_send(c->fd, "x", 1, 0, 0);
	c->await = weft_await(&weft_yield_desc, &y, NULL);
	c->unwind_ns = weft_now_ns() - t0;
	FCHECK(weft_in_fiber());
	c->close = weft_co_close(c->fd);
	atomic_store(&c->stage, 2);
	return (void *)1;
}

WT_RT_TEST(fiber_cancel, abort_in_recv)
{
	struct wt_rt_pair p = wt_rt_pair_open(cfg);
	struct recv_ctx c = { .fd = p.sv[0] };
	weft_join *j = wt_go(p.rt, recv_fn, &c, "recv");

	cr_assert_eq(wt_wait_atomic_ge(&c.stage, 1, 5000), 1);
	wt_sleep_ms(20); /* the recv is in flight */
	weft_task_abort(j);
	cr_assert_eq(wt_fiber_join(j, NULL), -ECANCELED);
	cr_assert_eq(atomic_load(&c.stage), 2, "cleanup did not run");
	cr_assert_eq(c.recv, -ECANCELED);
	cr_assert_eq(c.yield, -ECANCELED);
	cr_assert_eq(c.sleep, -ECANCELED);
	cr_assert_eq(c.recv2, -ECANCELED);
	cr_assert_eq(c.send, -ECANCELED);
	cr_assert_eq(c.await, -ECANCELED);
	/* Without suspending: no 10 s sleep. */
	cr_assert_lt(c.unwind_ns, 1000 * WT_MS);
	cr_assert_eq(c.close, 0);
	/* The fd is closed: the peer sees EOF, and nothing was sent. */
	char b;
	cr_assert_eq(recv(p.sv[1], &b, 1, 0), 0);
	cr_assert_eq(fcntl(p.sv[0], F_GETFD), -1);
	p.sv[0] = dup(p.sv[1]); /* for wt_rt_pair_close */
	cr_assert(wt_ops_quiesce(p.rt, 2000), "the recv was not cancelled");
	wt_rt_pair_close(&p);
}

static void *quick_fn(void *arg)
{
	return arg;
}

/* An abort after the fiber finished changes nothing. */
WT_RT_TEST(fiber_cancel, abort_after_finish)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_join *j = wt_go(rt, quick_fn, (void *)5, NULL);
	void *out = NULL;
	for (int i = 0; i < 5000 && !weft_join_is_finished(j); i++)
		wt_sleep_ms(1);
	cr_assert(weft_join_is_finished(j));
	weft_task_abort(j);
	cr_assert_eq(wt_fiber_join(j, &out), 0);
	cr_assert_eq(out, (void *)5);
	wt_rt_free(rt);
}

/* --------------------------------------------- abort before it ever ran */

struct blocker {
	sem_t *go;
};

/* Blocks its worker (in the poll) until the test posts: nothing else runs
 * on a 1-worker runtime meanwhile. */
static weft_poll blocker_poll(void *self, weft_cx *cx, void *out)
{
	struct blocker *b = self;
	(void)cx;
	(void)out;
	while (sem_wait(b->go) != 0)
		;
	return WEFT_READY;
}

static const weft_future_desc blocker_desc = {
	.poll = blocker_poll,
	.size = sizeof(struct blocker),
};

struct owned {
	int *counter;
	int yield, sleep, recv, join;
	bool in_fiber;
};

static atomic_int owned_done;

static void *owned_fn(void *arg)
{
	struct owned *o = arg;
	char b;
	o->in_fiber = weft_in_fiber();
	o->yield = weft_co_yield();
	o->sleep = weft_co_sleep(10000 * WT_MS);
	o->recv = (int)weft_co_recv(0, &b, 1, 0, 0);
	*o->counter = o->yield + o->sleep + o->recv;
	free(o); /* the fiber owns its argument */
	atomic_fetch_add(&owned_done, 1);
	return NULL;
}

WT_TEST(fiber_cancel, abort_before_first_run)
{
	struct wt_cfg cf = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&cf);
	sem_t go;
	int sum = 0;
	cr_assert_eq(sem_init(&go, 0, 0), 0);
	struct blocker b = { &go };
	weft_join *jb;
	wt_spawn(rt, &blocker_desc, &b, &jb);
	wt_sleep_ms(20); /* the worker is in the blocker */

	struct owned *o = calloc(1, sizeof(*o));
	cr_assert_not_null(o);
	o->counter = &sum;
	weft_join *j = wt_go(rt, owned_fn, o, "owned");
	weft_task_abort(j);
	sem_post(&go);
	cr_assert_eq(wt_fiber_join(j, NULL), -ECANCELED);
	cr_assert_eq(atomic_load(&owned_done), 1, "the fiber did not run");
	cr_assert_eq(sum, -3 * ECANCELED);
	int st = 1;
	wt_join_wait(jb, &st, NULL);
	weft_join_drop(jb);
	sem_destroy(&go);
	wt_rt_free(rt); /* LSan: the fiber freed its argument */
}

/* ------------------------------------------- shutdown with many blocked */

enum kind {
	K_RECV, K_SLEEP, K_MPSC, K_ONESHOT, K_SEM, K_JOIN_TASK, K_YIELD,
	K_ACCEPT, K_PIPE, K_AWAIT_UNTIL, K_SEND_ALL, K_JOIN_FIBER, K_MUTEX,
	NKINDS
};
#define PER_KIND 3
#define NFIBERS (NKINDS * PER_KIND)

struct blocked_ctx {
	int sv[2], lfd, pipe[2], full[2];
	weft_mpsc_rx *mrx[PER_KIND];
	weft_oneshot_rx *orx[PER_KIND];
	weft_semaphore *sem;
	weft_mutex *mu;
	atomic_int started, cleaned;
	int res[NFIBERS];
};

struct blocked_arg {
	struct blocked_ctx *c;
	int kind, i;
};

static unsigned char send_buf[4 << 20];

static void *sleepy_child(void *arg)
{
	(void)arg;
	FCHECK(weft_co_sleep(10000 * WT_MS) == -ECANCELED);
	return NULL;
}

static void *blocked_fn(void *arg)
{
	struct blocked_arg *a = arg;
	struct blocked_ctx *c = a->c;
	int64_t r = 0;
	char buf[64];

	atomic_fetch_add(&c->started, 1);
	switch (a->kind) {
	case K_RECV:
		r = weft_co_recv(c->sv[0], buf, sizeof(buf), 0, 0);
		break;
	case K_SLEEP:
		r = weft_co_sleep(10000 * WT_MS);
		break;
	case K_MPSC: {
		weft_mpsc_recv rv;
		int v, res;
		FCHECK(weft_mpsc_recv_init(&rv, c->mrx[a->i], &v) == 0);
		r = weft_await(&weft_mpsc_recv_desc, &rv, &res);
		break;
	}
	case K_ONESHOT: {
		int v, st;
		weft_oneshot_recv rv = { c->orx[a->i], &v };
		r = weft_await(&weft_oneshot_recv_desc, &rv, &st);
		break;
	}
	case K_SEM: {
		weft_semaphore_acquire acq;
		int res;
		FCHECK(weft_semaphore_acquire_init(&acq, c->sem, 1) == 0);
		r = weft_await(&weft_semaphore_acquire_desc, &acq, &res);
		break;
	}
	case K_JOIN_TASK: {
		struct wt_forever f = { NULL };
		weft_join *j;
		int64_t out;
		FCHECK(weft_spawn(NULL, &wt_forever_desc, &f, &j) == 0);
		weft_join_future jf = { j, &out };
		int st;
		r = weft_await(&weft_join_future_desc, &jf, &st);
		break;
	}
	case K_YIELD:
		while ((r = weft_co_yield()) == 0)
			;
		break;
	case K_ACCEPT:
		r = weft_co_accept(c->lfd, 0);
		break;
	case K_PIPE:
		r = weft_co_read(c->pipe[0], buf, sizeof(buf), (uint64_t)-1, 0);
		break;
	case K_AWAIT_UNTIL: {
		weft_io io = WEFT_IO_INIT;
		int64_t res;
		weft_io_prep_sleep(&io, 20000 * WT_MS);
		r = weft_await_until(&weft_io_desc, &io, &res,
				     weft_now_ns() + 10000 * WT_MS);
		break;
	}
	case K_SEND_ALL:
		r = weft_co_send_all(c->full[0], send_buf, sizeof(send_buf), 0,
				     0);
		break;
	case K_JOIN_FIBER: {
		weft_join *j;
		FCHECK(weft_go(NULL, sleepy_child, NULL, NULL, &j) == 0);
		r = weft_co_join(j, NULL);
		break;
	}
	case K_MUTEX: {
		weft_mutex_lock l;
		int res;
		FCHECK(weft_mutex_lock_init(&l, c->mu) == 0);
		r = weft_await(&weft_mutex_lock_desc, &l, &res);
		break;
	}
	}
	/* Cleanup, with every call failing now. */
	c->res[a->kind * PER_KIND + a->i] = (int)r;
	FCHECK(weft_co_yield() == -ECANCELED);
	free(a);
	atomic_fetch_add(&c->cleaned, 1);
	return (void *)1;
}

WT_RT_TEST_T(fiber_cancel, shutdown_unwinds_all, 20)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct blocked_ctx c;
	weft_mpsc_tx *mtx[PER_KIND];
	weft_oneshot_tx *otx[PER_KIND];
	weft_join *j[NFIBERS];

	memset(&c, 0, sizeof(c));
	wt_sock_pair(c.sv);
	wt_sock_pair(c.full);
	wt_pipe(c.pipe);
	c.lfd = weft_tcp_listen("127.0.0.1", 0, 4);
	cr_assert_geq(c.lfd, 0);
	cr_assert_eq(weft_semaphore_new(0, &c.sem), 0);
	cr_assert_eq(weft_mutex_new(&c.mu), 0);
	cr_assert_eq(weft_mutex_try_lock(c.mu), 0);
	for (int i = 0; i < PER_KIND; i++) {
		cr_assert_eq(weft_mpsc_unbounded(sizeof(int), &mtx[i],
						 &c.mrx[i]), 0);
		cr_assert_eq(weft_oneshot_new(sizeof(int), &otx[i], &c.orx[i]),
			     0);
	}
	for (int k = 0; k < NKINDS; k++)
		for (int i = 0; i < PER_KIND; i++) {
			struct blocked_arg *a = malloc(sizeof(*a));
			cr_assert_not_null(a);
			*a = (struct blocked_arg){ &c, k, i };
			j[k * PER_KIND + i] = wt_go(rt, blocked_fn, a,
						    "blocked");
		}
	cr_assert_eq(wt_wait_atomic_ge(&c.started, NFIBERS, 5000), NFIBERS);
	wt_sleep_ms(30); /* into their calls */
	uint64_t t0 = wt_mono_ns();
	cr_assert_eq(weft_runtime_shutdown(rt), 0);
	cr_expect_lt(wt_mono_ns() - t0, 3000 * WT_MS, "slow shutdown");
	cr_assert_eq(atomic_load(&c.cleaned), NFIBERS);
	for (int n = 0; n < NFIBERS; n++) {
		cr_expect_eq(c.res[n], -ECANCELED, "kind %d: %d", n / PER_KIND,
			     c.res[n]);
		int st = 1;
		wt_join_wait(j[n], &st, NULL);
		cr_expect_eq(st, -ECANCELED, "kind %d join: %d", n / PER_KIND,
			     st);
		weft_join_drop(j[n]);
	}
	weft_runtime_free(rt);
	for (int i = 0; i < PER_KIND; i++) {
		weft_mpsc_tx_drop(mtx[i]);
		weft_mpsc_rx_drop(c.mrx[i]);
		weft_oneshot_tx_drop(otx[i]);
	}
	/* The acquires were dropped: no permit lost, none taken. */
	weft_semaphore_release(c.sem, 1);
	cr_assert_eq(weft_semaphore_available(c.sem), 1);
	cr_assert_eq(weft_semaphore_free(c.sem), 0);
	cr_assert_eq(weft_mutex_unlock(c.mu), 0);
	cr_assert_eq(weft_mutex_free(c.mu), 0);
	close(c.sv[0]);
	close(c.sv[1]);
	close(c.full[0]);
	close(c.full[1]);
	close(c.pipe[0]);
	close(c.pipe[1]);
	close(c.lfd);
	wt_leak_check();
}

/* --------------------------------------- abort a fiber that is joining */

struct joiner_ctx {
	weft_oneshot_rx *rx; /* the child's */
	atomic_int stage; /* 1: joining; 2: joiner unwound; 3: child done */
	int join_res;
	int child_got;
};

static void *child_fn(void *arg)
{
	struct joiner_ctx *c = arg;
	int v = 0, st = 1;
	weft_oneshot_recv r = { c->rx, &v };
	FCHECK(weft_await(&weft_oneshot_recv_desc, &r, &st) == 0);
	c->child_got = st == 0 ? v : -1;
	atomic_store(&c->stage, 3);
	return (void *)(intptr_t)v;
}

static void *joiner_fn(void *arg)
{
	struct joiner_ctx *c = arg;
	weft_join *j;
	void *out = (void *)-1;
	FCHECK(weft_go(NULL, child_fn, c, NULL, &j) == 0);
	atomic_store(&c->stage, 1);
	c->join_res = weft_co_join(j, &out); /* consumes j either way */
	FCHECK(out == (void *)-1, "output written on -ECANCELED");
	atomic_store(&c->stage, 2);
	return NULL;
}

WT_RT_TEST(fiber_cancel, abort_joiner)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_oneshot_tx *tx;
	struct joiner_ctx c = { 0 };
	int v = 77;

	cr_assert_eq(weft_oneshot_new(sizeof(int), &tx, &c.rx), 0);
	weft_join *j = wt_go(rt, joiner_fn, &c, "joiner");
	cr_assert_eq(wt_wait_atomic_ge(&c.stage, 1, 5000), 1);
	wt_sleep_ms(20);
	weft_task_abort(j);
	cr_assert_eq(wt_fiber_join(j, NULL), -ECANCELED);
	cr_assert_eq(atomic_load(&c.stage), 2);
	cr_assert_eq(c.join_res, -ECANCELED);
	/* The child was detached, not cancelled: it still finishes. */
	cr_assert_eq(weft_oneshot_send(tx, &v), 0);
	cr_assert_eq(wt_wait_atomic_ge(&c.stage, 3, 5000), 3);
	cr_assert_eq(c.child_got, 77);
	wt_rt_free(rt);
}
