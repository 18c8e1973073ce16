/* SPDX-License-Identifier: MIT */
/*
 * Join handles, detach, abort and yield: a join yields the output (or
 * -ECANCELED after an abort), whatever the order of completion and polling;
 * every future is dropped exactly once and every output either taken or
 * passed to drop_output exactly once; spawns work from tasks and from
 * foreign threads and fail cleanly after shutdown or with a bad descriptor.
 */
#include "helpers.h"

/* --- a gate: a task PENDING until the test opens it ---------------------- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static bool gate_open;
static weft_waker gate_waker; /* under gate_mu */

struct gated {
	int64_t value;
	struct wt_counters *c;
};

static weft_poll gated_poll(void *self, weft_cx *cx, void *out)
{
	struct gated *s = self;
	atomic_fetch_add(&s->c->polls, 1);
	pthread_mutex_lock(&gate_mu);
	if (!gate_open) {
		if (!weft_waker_will_wake(&gate_waker, weft_cx_waker(cx))) {
			weft_waker_drop(&gate_waker);
			gate_waker = weft_waker_clone(weft_cx_waker(cx));
		}
		pthread_mutex_unlock(&gate_mu);
		return WEFT_PENDING;
	}
	pthread_mutex_unlock(&gate_mu);
	*(int64_t *)out = s->value;
	atomic_fetch_add(&s->c->readies, 1);
	return WEFT_READY;
}

static void gated_drop(void *self)
{
	struct gated *s = self;
	atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc gated_desc = {
	.poll = gated_poll,
	.drop = gated_drop,
	.drop_output = wt_value_drop_output,
	.size = sizeof(struct gated),
	.output_size = sizeof(int64_t),
};

static void open_gate(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	weft_waker w = gate_waker;
	gate_waker = WEFT_WAKER_EMPTY;
	pthread_mutex_unlock(&gate_mu);
	weft_waker_wake(&w);
}

static void *open_gate_later(void *arg)
{
	(void)arg;
	wt_sleep_ms(20);
	open_gate();
	return NULL;
}

/* Wait (test thread) until the task has been polled at least once. */
static void wait_polled(struct wt_counters *c)
{
	cr_assert_geq(wt_wait_atomic_ge(&c->polls, 1, 5000), 1,
		      "task never polled");
}

/* --- join ---------------------------------------------------------------- */

WT_RT_TEST(join, yields_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_value v = wt_value_init(42, 0, &c);
	weft_join *j;
	wt_spawn(rt, &wt_value_desc, &v, &j);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 42);
	cr_expect(weft_join_is_finished(j));
	cr_expect_eq(atomic_load(&c.polls), 1);
	cr_expect_eq(atomic_load(&c.readies), 1);
	/* drop runs right after READY; whether before the join sees
	 * COMPLETE is not promised, so wait for it. */
	cr_expect_eq(wt_wait_atomic_ge(&c.drops, 1, 5000), 1);
	weft_join_drop(j);
	wt_sleep_ms(2);
	cr_expect_eq(atomic_load(&c.drops), 1, "dropped twice");
	wt_rt_free(rt);
}

WT_RT_TEST(join, completed_before_first_poll)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_value v = wt_value_init(7, 0, &c);
	weft_join *j;
	wt_spawn(rt, &wt_value_desc, &v, &j);
	cr_assert_eq(wt_wait_atomic_ge(&c.drops, 1, 5000), 1);
	uint64_t deadline = wt_mono_ns() + 5000000000ull;
	while (!weft_join_is_finished(j) && wt_mono_ns() < deadline)
		wt_sleep_ms(1);
	cr_assert(weft_join_is_finished(j));

	/* Already complete: READY at once, no waker needed. */
	weft_waker noop = weft_waker_noop();
	weft_cx cx;
	weft_cx_init(&cx, &noop);
	int st = 1;
	int64_t out = 0;
	cr_expect_eq(weft_join_poll(j, &cx, &st, &out), WEFT_READY);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 7);
	weft_join_drop(j);
	wt_rt_free(rt);
}

WT_RT_TEST(join, poll_after_ready_is_ealready)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_value v = wt_value_init(5, 0, NULL);
	weft_join *j;
	wt_spawn(rt, &wt_value_desc, &v, &j);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	out = 1234;
	weft_waker noop = weft_waker_noop();
	weft_cx cx;
	weft_cx_init(&cx, &noop);
	cr_expect_eq(weft_join_poll(j, &cx, &st, &out), WEFT_READY);
	cr_expect_eq(st, -EALREADY);
	cr_expect_eq(out, 1234, "output copied twice");
	weft_join_drop(j);
	wt_rt_free(rt);
}

WT_RT_TEST(join, null_out_drops_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	struct wt_value v = wt_value_init(99, 0, &c);
	weft_join *j;
	wt_spawn(rt, &wt_value_desc, &v, &j);
	int st = 1;
	wt_join_wait(j, &st, NULL);
	cr_expect_eq(st, 0);
	cr_expect_eq(atomic_load(&c.drop_outputs), 1);
	cr_expect_eq(atomic_load(&c.dropped_output_sum), 99);
	weft_join_drop(j);
	cr_expect_eq(atomic_load(&c.drop_outputs), 1, "dropped twice");
	wt_rt_free(rt);
	wt_output_counters = NULL;
}

WT_RT_TEST(join, drop_after_completion_drops_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	struct wt_value v = wt_value_init(1234, 1, &c);
	weft_join *j;
	wt_spawn(rt, &wt_value_desc, &v, &j);
	cr_assert_eq(wt_wait_atomic_ge(&c.drops, 1, 5000), 1);
	while (!weft_join_is_finished(j))
		wt_sleep_ms(1);
	cr_expect_eq(atomic_load(&c.drop_outputs), 0, "output dropped early");
	weft_join_drop(j);
	cr_expect_eq(atomic_load(&c.drop_outputs), 1);
	cr_expect_eq(atomic_load(&c.dropped_output_sum), 1234);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&c.drop_outputs), 1);
	wt_output_counters = NULL;
}

WT_RT_TEST(join, taken_output_is_not_dropped)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	int64_t sum = wt_spawn_n_join(rt, 20, 100, 0, &c);
	cr_expect_eq(sum, 20 * 100 + 19 * 20 / 2);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&c.drop_outputs), 0);
	cr_expect_eq(atomic_load(&c.drops), 20);
	wt_output_counters = NULL;
}

/* --- detach ------------------------------------------------------------ */

WT_RT_TEST(join, detached_task_still_runs)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	struct gated g = { .value = 77, .c = &c };
	weft_join *j;
	wt_spawn(rt, &gated_desc, &g, &j);
	wait_polled(&c);
	weft_join_drop(j); /* detach while PENDING */
	open_gate();
	cr_expect_eq(wt_wait_atomic_ge(&c.drop_outputs, 1, 5000), 1,
		     "detached task did not finish");
	cr_expect_eq(atomic_load(&c.readies), 1);
	cr_expect_eq(atomic_load(&c.drops), 1);
	cr_expect_eq(atomic_load(&c.dropped_output_sum), 77);
	wt_rt_free(rt);
	wt_output_counters = NULL;
}

WT_RT_TEST(join, spawn_without_join_runs)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	for (int i = 0; i < 100; i++) {
		struct wt_value v = wt_value_init(i, (unsigned)i % 3, &c);
		wt_spawn(rt, &wt_value_desc, &v, NULL);
	}
	cr_expect_eq(wt_wait_atomic_ge(&c.drop_outputs, 100, 5000), 100);
	cr_expect_eq(atomic_load(&c.readies), 100);
	cr_expect_eq(atomic_load(&c.dropped_output_sum), 99 * 100 / 2);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&c.drops), 100);
	wt_output_counters = NULL;
}

WT_RT_TEST(join, drop_releases_registered_waker)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	wt_output_counters = &c;
	struct gated g = { .value = 1, .c = &c };
	weft_join *j;
	wt_spawn(rt, &gated_desc, &g, &j);
	wait_polled(&c);

	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	weft_cx cx;
	weft_cx_init(&cx, &w);
	int st = 1;
	cr_assert_eq(weft_join_poll(j, &cx, &st, NULL), WEFT_PENDING);
	cr_expect_eq(atomic_load(&p->refs), 3, "join did not keep a clone");
	weft_join_drop(j);
	open_gate();
	cr_assert_eq(wt_wait_atomic_ge(&c.drop_outputs, 1, 5000), 1);
	weft_waker_drop(&w);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&p->refs), 1, "join waker leaked");
	cr_expect_eq(atomic_load(&p->wakes), 0, "dropped join was woken");
	wt_parker_release(p);
	wt_output_counters = NULL;
}

WT_RT_TEST(join, latest_waker_is_woken)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct gated g = { .value = 3, .c = &c };
	weft_join *j;
	wt_spawn(rt, &gated_desc, &g, &j);
	wait_polled(&c);

	struct wt_parker *pa = wt_parker_new(), *pb = wt_parker_new();
	weft_waker wa = wt_parker_waker(pa), wb = wt_parker_waker(pb);
	weft_cx cxa, cxb;
	weft_cx_init(&cxa, &wa);
	weft_cx_init(&cxb, &wb);
	int st = 1;
	int64_t out = 0;
	cr_assert_eq(weft_join_poll(j, &cxa, &st, &out), WEFT_PENDING);
	cr_assert_eq(weft_join_poll(j, &cxa, &st, &out), WEFT_PENDING);
	cr_assert_eq(weft_join_poll(j, &cxb, &st, &out), WEFT_PENDING);
	open_gate();
	cr_expect(wt_parker_wait(pb, 5000), "the latest waker was not woken");
	cr_expect_eq(weft_join_poll(j, &cxb, &st, &out), WEFT_READY);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 3);
	weft_waker_drop(&wa);
	weft_waker_drop(&wb);
	weft_join_drop(j);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&pa->refs), 1, "replaced waker leaked");
	cr_expect_eq(atomic_load(&pb->refs), 1, "join waker leaked");
	wt_parker_release(pa);
	wt_parker_release(pb);
}

/* --- abort --------------------------------------------------------------- */

WT_RT_TEST(join, abort_pending_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_forever f = { &c };
	weft_join *j;
	wt_spawn(rt, &wt_forever_desc, &f, &j);
	wait_polled(&c);
	cr_expect_not(weft_join_is_finished(j));
	weft_task_abort(j);
	int st = 1;
	int64_t out = 555;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, -ECANCELED);
	cr_expect_eq(out, 555, "output written for a cancelled task");
	cr_expect(weft_join_is_finished(j));
	cr_expect_eq(atomic_load(&c.drops), 1);
	int polls = atomic_load(&c.polls);
	weft_task_abort(j); /* again: no effect */
	wt_sleep_ms(2);
	cr_expect_eq(atomic_load(&c.drops), 1);
	cr_expect_eq(atomic_load(&c.polls), polls, "polled after abort");
	weft_join_drop(j);
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&c.drops), 1);
}

WT_RT_TEST(join, abort_before_first_poll)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	weft_join *j[32];
	for (int i = 0; i < 32; i++) {
		struct wt_forever f = { &c };
		wt_spawn(rt, &wt_forever_desc, &f, &j[i]);
		weft_task_abort(j[i]);
	}
	for (int i = 0; i < 32; i++) {
		int st = 1;
		wt_join_wait(j[i], &st, NULL);
		cr_expect_eq(st, -ECANCELED, "task %d", i);
		weft_join_drop(j[i]);
	}
	cr_expect_eq(atomic_load(&c.drops), 32);
	wt_rt_free(rt);
}

WT_RT_TEST(join, abort_after_completion_keeps_output)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_value v = wt_value_init(31337, 0, &c);
	weft_join *j;
	wt_spawn(rt, &wt_value_desc, &v, &j);
	cr_assert_eq(wt_wait_atomic_ge(&c.drops, 1, 5000), 1);
	while (!weft_join_is_finished(j))
		wt_sleep_ms(1);
	weft_task_abort(j);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 31337);
	cr_expect_eq(atomic_load(&c.drops), 1);
	weft_join_drop(j);
	wt_rt_free(rt);
}

/* A task blocked in a one-hour sleep. */
struct sleeper {
	weft_io io;
	struct wt_counters *c;
};

static weft_poll sleeper_poll(void *self, weft_cx *cx, void *out)
{
	struct sleeper *s = self;
	int64_t res;
	atomic_fetch_add(&s->c->polls, 1);
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int64_t *)out = res;
	return WEFT_READY;
}

static void sleeper_drop(void *self)
{
	struct sleeper *s = self;
	weft_io_drop(&s->io);
	atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc sleeper_desc = {
	.poll = sleeper_poll,
	.drop = sleeper_drop,
	.size = sizeof(struct sleeper),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(join, abort_task_in_long_sleep)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct sleeper s = { .c = &c };
	weft_join *j;
	weft_io_prep_sleep(&s.io, 3600ull * 1000000000ull);
	wt_spawn(rt, &sleeper_desc, &s, &j);
	wait_polled(&c);
	uint64_t t0 = wt_mono_ns();
	weft_task_abort(j);
	int st = 1;
	wt_join_wait(j, &st, NULL);
	cr_expect_eq(st, -ECANCELED);
	cr_expect_lt(wt_mono_ns() - t0, 2000000000ull, "abort took > 2 s");
	cr_expect_eq(atomic_load(&c.drops), 1);
	weft_join_drop(j);
	wt_rt_free(rt);
}

/* A task waiting on a oneshot nobody sends. */
struct rx_waiter {
	weft_oneshot_rx *rx;
	struct wt_counters *c;
};

static weft_poll rx_waiter_poll(void *self, weft_cx *cx, void *out)
{
	struct rx_waiter *s = self;
	int st;
	atomic_fetch_add(&s->c->polls, 1);
	if (weft_oneshot_recv_poll(s->rx, cx, &st, out) == WEFT_PENDING)
		return WEFT_PENDING;
	WT_CHECK(st == 0, "recv status %d", st);
	return WEFT_READY;
}

static void rx_waiter_drop(void *self)
{
	struct rx_waiter *s = self;
	weft_oneshot_rx_drop(s->rx);
	s->rx = NULL;
	atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc rx_waiter_desc = {
	.poll = rx_waiter_poll,
	.drop = rx_waiter_drop,
	.size = sizeof(struct rx_waiter),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(join, abort_task_waiting_on_oneshot)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	weft_oneshot_tx *tx;
	struct rx_waiter r = { .c = &c };
	cr_assert_eq(weft_oneshot_new(sizeof(int64_t), &tx, &r.rx), 0);
	weft_join *j;
	wt_spawn(rt, &rx_waiter_desc, &r, &j);
	wait_polled(&c);
	weft_task_abort(j);
	int st = 1;
	wt_join_wait(j, &st, NULL);
	cr_expect_eq(st, -ECANCELED);
	cr_expect_eq(atomic_load(&c.drops), 1);
	/* The future's drop released the receiver. */
	int64_t v = 1;
	cr_expect_eq(weft_oneshot_send(tx, &v), -EPIPE);
	weft_join_drop(j);
	wt_rt_free(rt);
}

WT_RT_TEST(join, abort_while_woken)
{
	/* Abort racing a wake of the same task: cancelled or completed,
	 * dropped exactly once either way. */
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct gated g = { .value = 8, .c = &c };
	weft_join *j;
	pthread_t th;
	wt_spawn(rt, &gated_desc, &g, &j);
	wait_polled(&c);
	cr_assert_eq(pthread_create(&th, NULL, open_gate_later, NULL), 0);
	wt_sleep_ms(20);
	weft_task_abort(j);
	pthread_join(th, NULL);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect(st == 0 || st == -ECANCELED, "status %d", st);
	if (st == 0)
		cr_expect_eq(out, 8);
	cr_expect_eq(atomic_load(&c.drops), 1);
	weft_join_drop(j);
	wt_rt_free(rt);
}

/* --- spawning ------------------------------------------------------------ */

/* A parent that spawns children from its worker and joins them all. */
#define CHILDREN 48

struct parent {
	weft_join *joins[CHILDREN];
	int spawned;
	int joined;
	int64_t sum;
	struct wt_counters *c;
};

static weft_poll parent_poll(void *self, weft_cx *cx, void *out)
{
	struct parent *s = self;
	if (!s->spawned) {
		WT_CHECK(weft_runtime_current() != NULL, "no runtime");
		for (int i = 0; i < CHILDREN; i++) {
			struct wt_value v =
				wt_value_init(i, (unsigned)i % 4, s->c);
			int err = weft_spawn(NULL, &wt_value_desc, &v,
					     &s->joins[i]);
			WT_CHECK(err == 0, "spawn from task: %d", err);
		}
		s->spawned = 1;
	}
	while (s->joined < CHILDREN) {
		int st;
		int64_t v;
		if (weft_join_poll(s->joins[s->joined], cx, &st, &v) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		WT_CHECK(st == 0, "child %d status %d", s->joined, st);
		WT_CHECK(v == s->joined, "child %d output %lld", s->joined,
			 (long long)v);
		s->sum += v;
		weft_join_drop(s->joins[s->joined]);
		s->joins[s->joined++] = NULL;
	}
	*(int64_t *)out = s->sum;
	return WEFT_READY;
}

static void parent_drop(void *self)
{
	struct parent *s = self;
	for (int i = s->joined; i < CHILDREN && s->spawned; i++)
		weft_join_drop(s->joins[i]);
}

static const weft_future_desc parent_desc = {
	.poll = parent_poll,
	.drop = parent_drop,
	.size = sizeof(struct parent),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(join, spawn_and_join_from_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct parent p = { .c = &c };
	int64_t sum = -1;
	wt_block_on(rt, &parent_desc, &p, &sum);
	cr_expect_eq(sum, (CHILDREN - 1) * CHILDREN / 2);
	cr_expect_eq(atomic_load(&c.readies), CHILDREN);
	cr_expect_eq(atomic_load(&c.drops), CHILDREN);
	wt_rt_free(rt);
}

/* A task joining a task that finishes later (woken through its join). */
struct joiner {
	weft_join *j;
};

static weft_poll joiner_poll(void *self, weft_cx *cx, void *out)
{
	struct joiner *s = self;
	int st;
	int64_t v = 0;
	if (weft_join_poll(s->j, cx, &st, &v) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int64_t *)out = st ? st : v;
	return WEFT_READY;
}

static void joiner_drop(void *self)
{
	struct joiner *s = self;
	weft_join_drop(s->j);
}

static const weft_future_desc joiner_desc = {
	.poll = joiner_poll,
	.drop = joiner_drop,
	.size = sizeof(struct joiner),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(join, task_awaits_task_finishing_later)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct gated g = { .value = 4242, .c = &c };
	struct joiner jn;
	pthread_t th;
	wt_spawn(rt, &gated_desc, &g, &jn.j);
	wait_polled(&c);
	cr_assert_eq(pthread_create(&th, NULL, open_gate_later, NULL), 0);
	int64_t out = 0;
	wt_block_on(rt, &joiner_desc, &jn, &out);
	pthread_join(th, NULL);
	cr_expect_eq(out, 4242);
	wt_rt_free(rt);
}

WT_RT_TEST(join, task_awaits_aborted_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_forever f = { &c };
	struct joiner jn;
	wt_spawn(rt, &wt_forever_desc, &f, &jn.j);
	wait_polled(&c);
	weft_task_abort(jn.j);
	int64_t out = 0;
	wt_block_on(rt, &joiner_desc, &jn, &out);
	cr_expect_eq(out, -ECANCELED);
	wt_rt_free(rt);
}

struct foreign_arg {
	weft_runtime *rt;
	int base;
	atomic_int *errors;
	int64_t sum;
};

static void *foreign_spawner(void *arg)
{
	struct foreign_arg *a = arg;
	weft_join *j[50];
	for (int i = 0; i < 50; i++) {
		struct wt_value v = wt_value_init(a->base + i, i % 2, NULL);
		if (weft_spawn(a->rt, &wt_value_desc, &v, &j[i])) {
			atomic_fetch_add(a->errors, 1);
			j[i] = NULL;
		}
	}
	for (int i = 0; i < 50; i++) {
		int st = 1;
		int64_t out = 0;
		if (!j[i])
			continue;
		if (!wt_join_wait_ms(j[i], &st, &out, 5000) || st ||
		    out != a->base + i)
			atomic_fetch_add(a->errors, 1);
		a->sum += out;
		weft_join_drop(j[i]);
	}
	return NULL;
}

WT_RT_TEST(join, spawn_from_foreign_threads)
{
	weft_runtime *rt = wt_rt_new(cfg);
	atomic_int errors = 0;
	struct foreign_arg a[4];
	pthread_t th[4];
	for (int t = 0; t < 4; t++) {
		a[t] = (struct foreign_arg){ rt, t * 1000, &errors, 0 };
		cr_assert_eq(pthread_create(&th[t], NULL, foreign_spawner,
					    &a[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		cr_expect_eq(a[t].sum, 50 * t * 1000 + 49 * 50 / 2);
	}
	cr_expect_eq(atomic_load(&errors), 0);
	wt_rt_free(rt);
}

WT_RT_TEST(join, null_init_zeroes_state)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int64_t out = -1;
	/* wt_value with zeroed state: value 0, no yields, no counters. */
	wt_block_on(rt, &wt_value_desc, NULL, &out);
	cr_expect_eq(out, 0);
	wt_rt_free(rt);
}

/* Big state and output: copied whole, both 16-byte aligned. */
#define BIG_STATE 65536
#define BIG_OUT 4096

struct big {
	unsigned char bytes[BIG_STATE];
};

static weft_poll big_poll(void *self, weft_cx *cx, void *out)
{
	struct big *s = self;
	unsigned char *o = out;
	(void)cx;
	WT_CHECK(((uintptr_t)self & 15) == 0, "state misaligned: %p", self);
	WT_CHECK(((uintptr_t)out & 15) == 0, "output misaligned: %p", out);
	for (size_t i = 0; i < BIG_STATE; i++)
		WT_CHECK(s->bytes[i] == (unsigned char)(i * 7 + 3),
			 "state byte %zu", i);
	for (size_t i = 0; i < BIG_OUT; i++)
		o[i] = (unsigned char)(i * 13 + 1);
	return WEFT_READY;
}

static const weft_future_desc big_desc = {
	.poll = big_poll,
	.size = sizeof(struct big),
	.output_size = BIG_OUT,
};

WT_RT_TEST(join, large_state_and_output_copied)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct big *b = malloc(sizeof(*b));
	unsigned char *out = calloc(1, BIG_OUT + 16);
	cr_assert(b && out);
	for (size_t i = 0; i < BIG_STATE; i++)
		b->bytes[i] = (unsigned char)(i * 7 + 3);
	weft_join *j;
	wt_spawn(rt, &big_desc, b, &j);
	memset(b, 0, sizeof(*b)); /* spawn copied it */
	int st = 1;
	wt_join_wait(j, &st, out);
	cr_expect_eq(st, 0);
	size_t bad = 0;
	for (size_t i = 0; i < BIG_OUT; i++)
		bad += out[i] != (unsigned char)(i * 13 + 1);
	cr_expect_eq(bad, 0);
	for (size_t i = BIG_OUT; i < BIG_OUT + 16; i++)
		cr_expect_eq(out[i], 0, "wrote past output_size");
	weft_join_drop(j);
	free(b);
	free(out);
	wt_rt_free(rt);
}

/* --- yield ------------------------------------------------------------- */

WT_RT_TEST(join, yield_repolls_once_per_yield)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_value v = wt_value_init(11, 25, &c);
	int64_t out = 0;
	wt_block_on(rt, &wt_value_desc, &v, &out);
	cr_expect_eq(out, 11);
	cr_expect_eq(atomic_load(&c.polls), 26);
	wt_rt_free(rt);
}

/* A yields until B has run; B sets the flag. */
static atomic_int b_ran;

struct yielder {
	weft_yield y;
	int spawn_setter;
	int64_t spins;
	uint64_t give_up_ns; /* a time, not a spin count: a thief preempted
			      * while holding the setter must not fail us */
};

static const weft_future_desc flag_setter_desc;

static weft_poll yielder_poll(void *self, weft_cx *cx, void *out)
{
	struct yielder *s = self;
	if (s->spawn_setter) {
		s->spawn_setter = 0;
		s->give_up_ns = weft_now_ns() + 5000000000ull;
		WT_CHECK(weft_spawn(NULL, &flag_setter_desc, NULL, NULL) == 0,
			 "spawn");
	}
	for (;;) {
		if (atomic_load(&b_ran)) {
			*(int64_t *)out = s->spins;
			return WEFT_READY;
		}
		if (++s->spins % 1024 == 0 && weft_now_ns() > s->give_up_ns) {
			*(int64_t *)out = -1;
			return WEFT_READY;
		}
		if (weft_yield_poll(&s->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		s->y = (weft_yield)WEFT_YIELD_INIT;
	}
}

static const weft_future_desc yielder_desc = {
	.poll = yielder_poll,
	.size = sizeof(struct yielder),
	.output_size = sizeof(int64_t),
};

static weft_poll flag_setter_poll(void *self, weft_cx *cx, void *out)
{
	(void)self;
	(void)cx;
	atomic_store(&b_ran, 1);
	*(int64_t *)out = 1;
	return WEFT_READY;
}

static const weft_future_desc flag_setter_desc = {
	.poll = flag_setter_poll,
	.size = 1,
	.output_size = sizeof(int64_t),
};

/*
 * block_on the yielder: its first poll spawns the flag setter on the same
 * worker, then it yields until the setter has run. With one worker only
 * yield lets the setter run (and a yield that re-entered the LIFO slot
 * would keep pre-empting it).
 */
WT_RT_TEST(join, yield_lets_other_tasks_run)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct yielder y = { .y = WEFT_YIELD_INIT, .spawn_setter = 1 };
	int64_t spins = 0;
	wt_block_on(rt, &yielder_desc, &y, &spins);
	cr_expect_neq(spins, -1, "the other task never ran");
	cr_expect_eq(atomic_load(&b_ran), 1);
	wt_rt_free(rt);
}

/* --- spawn errors ---------------------------------------------------- */

WT_RT_TEST(join, spawn_after_shutdown_fails)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	cr_assert_eq(weft_runtime_shutdown(rt), 0);
	struct wt_value v = wt_value_init(1, 0, &c);
	weft_join *j = (weft_join *)(uintptr_t)0x1;
	cr_expect_eq(weft_spawn(rt, &wt_value_desc, &v, &j), -ESHUTDOWN);
	cr_expect_eq(weft_spawn(rt, &wt_value_desc, &v, NULL), -ESHUTDOWN);
	int64_t out;
	cr_expect_eq(weft_block_on(rt, &wt_value_desc, &v, &out), -ESHUTDOWN);
	cr_expect_eq(atomic_load(&c.polls), 0);
	cr_expect_eq(atomic_load(&c.drops), 0, "drop called on failure");
	weft_runtime_free(rt);
	wt_leak_check();
}

static weft_poll dummy_poll(void *self, weft_cx *cx, void *out)
{
	(void)self;
	(void)cx;
	(void)out;
	return WEFT_READY;
}

WT_TEST(join, spawn_bad_desc_fails)
{
	struct wt_cfg one = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&one);
	weft_join *j = NULL;
	weft_future_desc no_poll = { .size = 8, .output_size = 8 };
	weft_future_desc big_state = { .poll = dummy_poll,
				       .size = WEFT_FUTURE_MAX_SIZE + 1 };
	weft_future_desc big_out = { .poll = dummy_poll,
				     .output_size = WEFT_FUTURE_MAX_SIZE + 1 };
	cr_expect_eq(weft_spawn(rt, NULL, NULL, &j), -EINVAL);
	cr_expect_eq(weft_spawn(rt, &no_poll, NULL, &j), -EINVAL);
	cr_expect_eq(weft_spawn(rt, &big_state, NULL, &j), -EINVAL);
	cr_expect_eq(weft_spawn(rt, &big_out, NULL, &j), -EINVAL);
	cr_expect_null(j, "join set on failure");
	/* NULL runtime off a worker thread. */
	cr_expect_eq(weft_spawn(NULL, &wt_value_desc, NULL, &j), -EINVAL);
	cr_expect_eq(weft_block_on(rt, NULL, NULL, NULL), -EINVAL);
	wt_rt_free(rt);
}

static int64_t spawn_null_rt_on_worker(void *arg)
{
	(void)arg;
	/* rt NULL means "this worker's runtime" on a worker. */
	return weft_spawn(NULL, &wt_value_desc, NULL, NULL);
}

WT_RT_TEST(join, spawn_null_runtime_on_worker)
{
	weft_runtime *rt = wt_rt_new(cfg);
	cr_expect_eq(wt_run_on_worker(rt, spawn_null_rt_on_worker, NULL), 0);
	wt_rt_free(rt);
}

/* --- misuse the library can detect -------------------------------------- */

/* A log sink that keeps the last ERROR message (any thread). */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_last[256];
static int log_errors;

static void log_capture(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level != WEFT_LOG_ERROR)
		return;
	pthread_mutex_lock(&log_mu);
	snprintf(log_last, sizeof(log_last), "%s", msg);
	log_errors++;
	pthread_mutex_unlock(&log_mu);
}

static weft_runtime *rt_new_capturing(const struct wt_cfg *c)
{
	weft_runtime_config rc;
	weft_runtime *rt = NULL;
	weft_runtime_config_init(&rc);
	rc.workers = c->workers;
	rc.flags |= c->flags;
	rc.log = log_capture;
	cr_assert_eq(weft_runtime_new(&rc, &rt), 0);
	return rt;
}

/* Expect exactly one ERROR since the last call, naming @fn. */
static void expect_logged(const char *fn)
{
	pthread_mutex_lock(&log_mu);
	cr_expect_eq(log_errors, 1, "ERROR messages logged: %d", log_errors);
	cr_expect(strstr(log_last, fn) != NULL, "log does not name %s: %s",
		  fn, log_last);
	log_errors = 0;
	log_last[0] = '\0';
	pthread_mutex_unlock(&log_mu);
}

/*
 * Spawn a wt_forever task, wait for its first poll and drop its handle
 * once. The task stays alive (the owned list holds it) until shutdown, so
 * the stale handle may still be passed to the library.
 */
static weft_join *spawn_forever_and_drop(weft_runtime *rt,
					 struct wt_counters *c)
{
	struct wt_forever f = { c };
	weft_join *j;
	wt_spawn(rt, &wt_forever_desc, &f, &j);
	wait_polled(c);
	weft_join_drop(j);
	return j;
}

/*
 * A second weft_join_drop while the task is alive (the owned list holds it)
 * is the caller's mistake: it is logged and changes nothing, instead of
 * aborting on an internal assertion.
 */
WT_RT_TEST(join, double_drop_is_logged_not_fatal)
{
	weft_runtime *rt = rt_new_capturing(cfg);
	struct wt_counters c = { 0 };
	weft_join *j = spawn_forever_and_drop(rt, &c);
	weft_join_drop(j);
	expect_logged("weft_join_drop");
	cr_expect(!weft_join_is_finished(j));
	wt_rt_free(rt);
	cr_expect_eq(atomic_load(&c.drops), 1);
}

/* Polling a dropped handle of a live task: logged, READY with -EINVAL. */
WT_RT_TEST(join, poll_after_drop_is_logged_einval)
{
	weft_runtime *rt = rt_new_capturing(cfg);
	struct wt_counters c = { 0 };
	weft_join *j = spawn_forever_and_drop(rt, &c);
	weft_waker noop = weft_waker_noop();
	weft_cx cx;
	weft_cx_init(&cx, &noop);
	int st = 1;
	cr_expect_eq(weft_join_poll(j, &cx, &st, NULL), WEFT_READY);
	cr_expect_eq(st, -EINVAL);
	expect_logged("weft_join_poll");
	wt_rt_free(rt);
}
