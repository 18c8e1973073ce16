/* SPDX-License-Identifier: MIT */
/*
 * Sleeps: never early (CLOCK_MONOTONIC has reached the deadline when the
 * sleep is READY), a deadline in the past is immediate, re-polling an
 * in-flight sleep is harmless, and a pending sleep dropped by abort or
 * shutdown retires without leaking.
 */
#include "helpers.h"

#define MS 1000000ull

WT_TEST(time, now_is_clock_monotonic)
{
	uint64_t prev = weft_now_ns();
	for (int i = 0; i < 10000; i++) {
		uint64_t t1 = wt_mono_ns();
		uint64_t n = weft_now_ns();
		uint64_t t2 = wt_mono_ns();
		cr_assert(t1 <= n && n <= t2,
			  "weft_now_ns is not CLOCK_MONOTONIC");
		cr_assert_geq(n, prev);
		prev = n;
	}
}

/* A task sleeping once; output: result and the time it woke. */
struct sleep_out {
	int64_t res;
	uint64_t woke_ns;
	int64_t polls;
};

struct sleep_probe {
	weft_io io;
	int spurious;  /* wake itself on every PENDING poll */
	int init_here; /* init the sleep at the first poll */
	uint64_t ns;
	struct wt_counters *c;
	int64_t polls;
	uint64_t before_ns; /* set by init_here */
};

static weft_poll sleep_probe_poll(void *self, weft_cx *cx, void *out)
{
	struct sleep_probe *s = self;
	struct sleep_out *o = out;
	int64_t res;
	if (s->c)
		atomic_fetch_add(&s->c->polls, 1);
	if (s->init_here && s->polls == 0) {
		s->before_ns = weft_now_ns();
		weft_io_prep_sleep(&s->io, s->ns);
	}
	s->polls++;
	WT_CHECK(!weft_io_is_done(&s->io), "done before READY");
	if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING) {
		if (s->spurious)
			weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	o->woke_ns = weft_now_ns();
	o->res = res;
	o->polls = s->polls;
	WT_CHECK(weft_io_is_done(&s->io), "not done after READY");
	return WEFT_READY;
}

static void sleep_probe_drop(void *self)
{
	struct sleep_probe *s = self;
	weft_io_drop(&s->io);
	if (s->c)
		atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc sleep_probe_desc = {
	.poll = sleep_probe_poll,
	.drop = sleep_probe_drop,
	.size = sizeof(struct sleep_probe),
	.output_size = sizeof(struct sleep_out),
};

WT_RT_TEST(time, sleep_never_early)
{
	weft_runtime *rt = wt_rt_new(cfg);
	enum { N = 200 };
	weft_join *j[N];
	uint64_t want[N];
	for (int i = 0; i < N; i++) {
		struct sleep_probe s = { 0 };
		/* 0..20 ms plus a sub-millisecond offset. */
		s.ns = (uint64_t)(i % 21) * MS +
		       (uint64_t)((i * 7919) % 1000) * 1000;
		uint64_t before = weft_now_ns();
		weft_io_prep_sleep(&s.io, s.ns);
		want[i] = before + s.ns;
		wt_spawn(rt, &sleep_probe_desc, &s, &j[i]);
	}
	for (int i = 0; i < N; i++) {
		struct sleep_out o = { .res = 99 };
		int st = 1;
		wt_join_wait(j[i], &st, &o);
		cr_expect_eq(st, 0);
		cr_expect_eq(o.res, 0, "sleep %d: result %lld", i,
			     (long long)o.res);
		cr_expect_geq(o.woke_ns, want[i],
			      "sleep %d woke %lld ns early", i,
			      (long long)(want[i] - o.woke_ns));
		cr_expect_lt(o.woke_ns - want[i], 3000 * MS,
			     "sleep %d woke %llu ms late", i,
			     (unsigned long long)((o.woke_ns - want[i]) / MS));
		weft_join_drop(j[i]);
	}
	wt_rt_free(rt);
}

WT_RT_TEST(time, deadline_taken_at_init_in_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct sleep_probe s = { .init_here = 1, .ns = 5 * MS };
	struct sleep_out o = { .res = 99 };
	uint64_t t0 = weft_now_ns();
	wt_block_on(rt, &sleep_probe_desc, &s, &o);
	cr_expect_eq(o.res, 0);
	cr_expect_geq(o.woke_ns, t0 + 5 * MS);
	cr_expect_geq(o.polls, 2, "a 5 ms sleep READY at its first poll");
	wt_rt_free(rt);
}

WT_RT_TEST(time, zero_sleep_completes)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct sleep_probe s = { 0 };
	struct sleep_out o = { .res = 99 };
	weft_io_prep_sleep(&s.io, 0);
	wt_block_on(rt, &sleep_probe_desc, &s, &o);
	cr_expect_eq(o.res, 0);
	wt_rt_free(rt);
}

WT_RT_TEST(time, sleep_until_past_is_immediate)
{
	weft_runtime *rt = wt_rt_new(cfg);
	uint64_t deadlines[] = { 0, 1, weft_now_ns() - 1000 * MS,
				 weft_now_ns() };
	for (size_t i = 0; i < sizeof(deadlines) / sizeof(deadlines[0]); i++) {
		struct sleep_probe s = { 0 };
		struct sleep_out o = { .res = 99 };
		uint64_t t0 = wt_mono_ns();
		weft_io_prep_sleep_until(&s.io, deadlines[i]);
		wt_block_on(rt, &sleep_probe_desc, &s, &o);
		cr_expect_eq(o.res, 0, "deadline %llu: %lld",
			     (unsigned long long)deadlines[i],
			     (long long)o.res);
		cr_expect_lt(wt_mono_ns() - t0, 2000 * MS,
			     "past deadline waited");
	}
	wt_rt_free(rt);
}

WT_RT_TEST(time, sleep_until_future_deadline)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct sleep_probe s = { 0 };
	struct sleep_out o = { .res = 99 };
	uint64_t deadline = weft_now_ns() + 8 * MS;
	weft_io_prep_sleep_until(&s.io, deadline);
	wt_block_on(rt, &sleep_probe_desc, &s, &o);
	cr_expect_eq(o.res, 0);
	cr_expect_geq(o.woke_ns, deadline);
	wt_rt_free(rt);
}

WT_RT_TEST(time, repolled_sleep_not_early)
{
	/* The task wakes itself on every PENDING poll, so the in-flight op
	 * is polled again and again: it must neither complete early nor be
	 * submitted twice (the second would leak or fire twice). */
	weft_runtime *rt = wt_rt_new(cfg);
	struct sleep_probe s = { .spurious = 1 };
	struct sleep_out o = { .res = 99 };
	uint64_t before = weft_now_ns();
	weft_io_prep_sleep(&s.io, 15 * MS);
	wt_block_on(rt, &sleep_probe_desc, &s, &o);
	cr_expect_eq(o.res, 0);
	cr_expect_geq(o.woke_ns, before + 15 * MS);
	cr_expect_gt(o.polls, 2, "spurious wakes did not re-poll");
	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	/* A sleep is a timer on the wheel: no SQE, however often polled. */
	cr_expect_eq(m.ops_submitted, 0, "%llu ring ops for one sleep",
		     (unsigned long long)m.ops_submitted);
	wt_rt_free(rt);
}

/* One task, several sleeps in series: the weft_io is re-initialised. */
struct serial_sleeps {
	weft_io io;
	int n;
	int done;
	int armed;
};

static weft_poll serial_sleeps_poll(void *self, weft_cx *cx, void *out)
{
	struct serial_sleeps *s = self;
	int64_t res;
	while (s->done < s->n) {
		if (!s->armed) {
			weft_io_drop(&s->io); /* safe on a finished op */
			weft_io_prep_sleep(&s->io, 2 * MS);
			s->armed = 1;
		}
		if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		WT_CHECK(res == 0, "sleep %d: %lld", s->done, (long long)res);
		s->armed = 0;
		s->done++;
	}
	*(int64_t *)out = s->done;
	return WEFT_READY;
}

static void serial_sleeps_drop(void *self)
{
	struct serial_sleeps *s = self;
	weft_io_drop(&s->io);
}

static const weft_future_desc serial_sleeps_desc = {
	.poll = serial_sleeps_poll,
	.drop = serial_sleeps_drop,
	.size = sizeof(struct serial_sleeps),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(time, sleeps_in_series)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct serial_sleeps s = { .n = 5 };
	int64_t done = 0;
	uint64_t t0 = wt_mono_ns();
	wt_block_on(rt, &serial_sleeps_desc, &s, &done);
	cr_expect_eq(done, 5);
	cr_expect_geq(wt_mono_ns() - t0, 10 * MS, "5 x 2 ms took less");
	wt_rt_free(rt);
}

/* Two sleeps polled side by side in one task. */
struct two_sleeps {
	weft_io a, b;
	uint64_t a_ns, b_ns, start;
	uint64_t a_woke, b_woke;
};

static weft_poll two_sleeps_poll(void *self, weft_cx *cx, void *out)
{
	struct two_sleeps *s = self;
	int64_t res;
	if (!s->a_woke && weft_io_poll(&s->a, cx, &res) == WEFT_READY) {
		WT_CHECK(res == 0, "a: %lld", (long long)res);
		s->a_woke = weft_now_ns();
	}
	if (!s->b_woke && weft_io_poll(&s->b, cx, &res) == WEFT_READY) {
		WT_CHECK(res == 0, "b: %lld", (long long)res);
		s->b_woke = weft_now_ns();
	}
	if (!s->a_woke || !s->b_woke)
		return WEFT_PENDING;
	((uint64_t *)out)[0] = s->a_woke;
	((uint64_t *)out)[1] = s->b_woke;
	return WEFT_READY;
}

static void two_sleeps_drop(void *self)
{
	struct two_sleeps *s = self;
	weft_io_drop(&s->a);
	weft_io_drop(&s->b);
}

static const weft_future_desc two_sleeps_desc = {
	.poll = two_sleeps_poll,
	.drop = two_sleeps_drop,
	.size = sizeof(struct two_sleeps),
	.output_size = 2 * sizeof(uint64_t),
};

WT_RT_TEST(time, two_sleeps_in_one_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct two_sleeps s = { 0 };
	uint64_t woke[2] = { 0, 0 };
	uint64_t t0 = weft_now_ns();
	weft_io_prep_sleep(&s.a, 12 * MS);
	weft_io_prep_sleep(&s.b, 3 * MS);
	wt_block_on(rt, &two_sleeps_desc, &s, woke);
	cr_expect_geq(woke[0], t0 + 12 * MS);
	cr_expect_geq(woke[1], t0 + 3 * MS);
	wt_rt_free(rt);
}

/* --- dropping pending sleeps ------------------------------------------ */

WT_RT_TEST(time, abort_pending_sleeps)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	enum { N = 50 };
	weft_join *j[N];
	for (int i = 0; i < N; i++) {
		struct sleep_probe s = { .c = &c };
		weft_io_prep_sleep(&s.io, 3600ull * 1000 * MS);
		wt_spawn(rt, &sleep_probe_desc, &s, &j[i]);
	}
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, N, 5000), N);
	uint64_t t0 = wt_mono_ns();
	for (int i = 0; i < N; i++)
		weft_task_abort(j[i]);
	for (int i = 0; i < N; i++) {
		int st = 1;
		wt_join_wait(j[i], &st, NULL);
		cr_expect_eq(st, -ECANCELED, "sleep %d", i);
		weft_join_drop(j[i]);
	}
	cr_expect_lt(wt_mono_ns() - t0, 2000 * MS);
	cr_expect_eq(atomic_load(&c.drops), N);
	/* Every cancelled op retires before shutdown returns; LSan then
	 * checks nothing is left. */
	wt_rt_free(rt);
}

WT_RT_TEST(time, abort_sleep_before_first_poll)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct sleep_probe s = { .c = &c };
	weft_join *j;
	weft_io_prep_sleep(&s.io, 3600ull * 1000 * MS);
	wt_spawn(rt, &sleep_probe_desc, &s, &j);
	weft_task_abort(j);
	int st = 1;
	wt_join_wait(j, &st, NULL);
	cr_expect_eq(st, -ECANCELED);
	cr_expect_eq(atomic_load(&c.drops), 1);
	weft_join_drop(j);
	wt_rt_free(rt);
}

WT_RT_TEST(time, shutdown_with_pending_sleeps)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	enum { N = 50 };
	for (int i = 0; i < N; i++) {
		struct sleep_probe s = { .c = &c };
		weft_io_prep_sleep(&s.io, 3600ull * 1000 * MS);
		wt_spawn(rt, &sleep_probe_desc, &s, NULL);
	}
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, N, 5000), N);
	uint64_t t0 = wt_mono_ns();
	wt_rt_free(rt);
	cr_expect_lt(wt_mono_ns() - t0, 3000 * MS,
		     "shutdown waited for the sleeps");
	cr_expect_eq(atomic_load(&c.drops), N);
}

WT_TEST(time, drop_unpolled_sleep_anywhere)
{
	/* An op never polled may be dropped from any thread, twice. */
	weft_io io;
	weft_io_prep_sleep(&io, 1000 * MS);
	cr_expect_not(weft_io_is_done(&io));
	weft_io_drop(&io);
	weft_io_drop(&io);
	weft_io zero;
	memset(&zero, 0, sizeof(zero));
	weft_io_drop(&zero);
}
