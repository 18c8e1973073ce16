/* SPDX-License-Identifier: MIT */
/*
 * weft_runtime_shutdown_timeout: tasks in flight finish and their joins
 * give 0; tasks still running at the deadline are cancelled (-ECANCELED)
 * and the call says -ETIMEDOUT; spawns during the drain fail, from outside
 * and from tasks; detached tasks are waited for; an idle runtime returns
 * at once; the caller is woken by the last completion, not the deadline;
 * errors (-EDEADLK on a worker, -EALREADY, NULL).
 */
#include "helpers.h"

/* --- a task that sleeps, then may try to spawn --------------------------- */

struct drain_counters {
	atomic_int finished; /* READY */
	atomic_int drops;    /* future dropped (READY or cancelled) */
};

/*
 * Sleeps @ms (0: none), then, with @spawn, tries weft_spawn of a child on
 * its own runtime; output (int64_t): that spawn's error, else 0.
 */
struct sleeper {
	unsigned ms;
	bool spawn;
	struct drain_counters *c;
	/* private */
	bool armed;
	weft_io io;
};

static weft_poll sleeper_poll(void *self, weft_cx *cx, void *out)
{
	struct sleeper *s = self;
	int64_t res;

	if (s->ms) {
		if (!s->armed) {
			WT_CHECK(weft_io_prep_sleep(&s->io,
						    s->ms * UINT64_C(1000000)) == 0,
				 "prep_sleep");
			s->armed = true;
		}
		if (weft_io_poll(&s->io, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		WT_CHECK(res == 0, "sleep: %lld", (long long)res);
	}
	*(int64_t *)out = 0;
	if (s->spawn) {
		struct wt_value v = wt_value_init(1, 0, NULL);
		*(int64_t *)out = weft_spawn(NULL, &wt_value_desc, &v, NULL);
	}
	atomic_fetch_add(&s->c->finished, 1);
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

static weft_join *spawn_sleeper(weft_runtime *rt, unsigned ms, bool spawn,
				struct drain_counters *c, bool detach)
{
	struct sleeper s = { .ms = ms, .spawn = spawn, .c = c };
	weft_join *j = NULL;

	wt_spawn(rt, &sleeper_desc, &s, detach ? NULL : &j);
	return j;
}

/* Join @j (already finished or about to), returning status; *@out gets
 * the output when the status is 0. */
static int join_status(weft_join *j, int64_t *out)
{
	int st = 1;

	wt_join_wait(j, &st, out);
	weft_join_drop(j);
	return st;
}

static uint64_t ms_since(uint64_t t0)
{
	return (wt_mono_ns() - t0) / 1000000u;
}

/* --- tests ------------------------------------------------------------ */

/*
 * Tasks sleeping well within the grace period finish, joined or detached
 * (detached tasks are in flight too); the call returns 0 long before the
 * deadline (woken by the last completion: a lost wake would show as a
 * 30 s wait, caught by the bound and the test timeout).
 */
static void drain_sleepers(const struct wt_cfg *cfg, bool detach)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct drain_counters c = { 0 };
	enum { N = 40 };
	weft_join *j[N];

	for (int i = 0; i < N; i++)
		j[i] = spawn_sleeper(rt, 20 + (unsigned)i % 5 * 10, false, &c,
				     detach);
	uint64_t t0 = wt_mono_ns();
	int err = weft_runtime_shutdown_timeout(rt, 30 * UINT64_C(1000000000));
	uint64_t took = ms_since(t0);
	cr_expect_eq(err, 0, "drain: %s", weft_strerror(err));
	cr_expect_lt(took, 10000, "drain took %llu ms: woken by the deadline?",
		     (unsigned long long)took);
	for (int i = 0; i < N && !detach; i++) {
		int64_t out = -1;
		cr_expect_eq(join_status(j[i], &out), 0, "task %d", i);
		cr_expect_eq(out, 0);
	}
	cr_expect_eq(atomic_load(&c.finished), N);
	cr_expect_eq(atomic_load(&c.drops), N);
	weft_runtime_free(rt);
	wt_leak_check();
}

WT_RT_TEST_T(drain, in_flight_tasks_finish, 20)
{
	drain_sleepers(cfg, false);
}

WT_RT_TEST_T(drain, waits_for_detached_tasks, 20)
{
	drain_sleepers(cfg, true);
}

/*
 * Short sleepers finish; sleepers far past the deadline and tasks that
 * never finish are cancelled; -ETIMEDOUT, no sooner than the deadline and
 * within a generous bound.
 */
WT_RT_TEST_T(drain, deadline_cancels_the_rest, 20)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct drain_counters c = { 0 };
	struct wt_counters fc = { 0 };
	enum { N = 20 };
	weft_join *quick[N], *slow[N], *never[N];

	for (int i = 0; i < N; i++) {
		quick[i] = spawn_sleeper(rt, 10, false, &c, false);
		slow[i] = spawn_sleeper(rt, 60000, false, &c, false);
		struct wt_forever f = { &fc };
		wt_spawn(rt, &wt_forever_desc, &f, &never[i]);
	}
	uint64_t t0 = wt_mono_ns();
	int err = weft_runtime_shutdown_timeout(rt, 400 * UINT64_C(1000000));
	uint64_t took = ms_since(t0);
	cr_expect_eq(err, -ETIMEDOUT, "drain: %s", weft_strerror(err));
	cr_expect_geq(took, 400, "returned after %llu ms, before the deadline",
		      (unsigned long long)took);
	cr_expect_lt(took, 10000, "took %llu ms", (unsigned long long)took);
	for (int i = 0; i < N; i++) {
		int64_t out = -1;
		/* 10 ms of sleep in a 400 ms grace: finishes unless the
		 * machine stalls for the whole grace period. */
		cr_expect_eq(join_status(quick[i], &out), 0, "quick %d", i);
		cr_expect_eq(join_status(slow[i], &out), -ECANCELED, "slow %d",
			     i);
		cr_expect_eq(join_status(never[i], &out), -ECANCELED,
			     "never %d", i);
	}
	cr_expect_eq(atomic_load(&c.finished), N);
	cr_expect_eq(atomic_load(&c.drops), 2 * N);
	cr_expect_eq(atomic_load(&fc.drops), N);
	weft_runtime_free(rt);
	wt_leak_check();
}

/* Timeout 0: nothing waits; running tasks are cancelled at once. */
WT_RT_TEST(drain, zero_timeout_cancels_at_once)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters fc = { 0 };
	struct wt_forever f = { &fc };
	weft_join *j;

	wt_spawn(rt, &wt_forever_desc, &f, &j);
	cr_expect_eq(weft_runtime_shutdown_timeout(rt, 0), -ETIMEDOUT);
	int64_t out;
	cr_expect_eq(join_status(j, &out), -ECANCELED);
	cr_expect_eq(atomic_load(&fc.drops), 1);
	weft_runtime_free(rt);
	wt_leak_check();
}

/* Nothing running: 0 at once, even with a long grace; then -EALREADY. */
WT_RT_TEST(drain, idle_runtime_returns_at_once)
{
	weft_runtime *rt = wt_rt_new(cfg);

	/* Something ran and finished first: the count went 1 -> 0 with no
	 * drainer, which must leave no stale state behind. */
	struct wt_value v = wt_value_init(5, 2, NULL);
	int64_t out = 0;
	wt_block_on(rt, &wt_value_desc, &v, &out);

	uint64_t t0 = wt_mono_ns();
	cr_expect_eq(weft_runtime_shutdown_timeout(rt, UINT64_MAX), 0);
	cr_expect_lt(ms_since(t0), 5000);
	cr_expect_eq(weft_runtime_shutdown_timeout(rt, 0), -EALREADY);
	cr_expect_eq(weft_runtime_shutdown(rt), 0);
	cr_expect_eq(weft_spawn(rt, &wt_value_desc, &v, NULL), -ESHUTDOWN);
	weft_runtime_free(rt);
	wt_leak_check();
}

/* After a plain shutdown, a drain has nothing to do. */
WT_TEST(drain, after_shutdown_is_ealready)
{
	struct wt_cfg c = { 2, 0 };
	weft_runtime *rt = wt_rt_new(&c);

	cr_expect_eq(weft_runtime_shutdown(rt), 0);
	cr_expect_eq(weft_runtime_shutdown_timeout(rt, 1000), -EALREADY);
	weft_runtime_free(rt);
	wt_leak_check();
}

struct self_drain {
	weft_runtime *rt;
};

static int64_t drain_self(void *arg)
{
	struct self_drain *s = arg;

	return weft_runtime_shutdown_timeout(s->rt, UINT64_MAX);
}

WT_RT_TEST(drain, from_a_worker_is_edeadlk)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct self_drain s = { rt };

	cr_expect_eq(wt_run_on_worker(rt, drain_self, &s), -EDEADLK);
	/* Nothing was done: spawns still work. */
	struct wt_value v = wt_value_init(3, 1, NULL);
	int64_t out = 0;
	wt_block_on(rt, &wt_value_desc, &v, &out);
	cr_expect_eq(out, 3);
	cr_expect_eq(weft_runtime_shutdown_timeout(rt, UINT64_MAX), 0);
	weft_runtime_free(rt);
	wt_leak_check();
}

/* --- spawns during the drain ------------------------------------------- */

/* Waits on a weft_notify, then tries a spawn; output: its error. */
struct gate {
	weft_notify *n;
	bool waiting;
	weft_notified w;
};

static weft_poll gate_poll(void *self, weft_cx *cx, void *out)
{
	struct gate *g = self;

	if (!g->waiting) {
		WT_CHECK(weft_notified_init(&g->w, g->n) == 0, "notified_init");
		g->waiting = true;
	}
	if (weft_notified_poll(&g->w, cx, NULL) == WEFT_PENDING)
		return WEFT_PENDING;
	struct wt_value v = wt_value_init(1, 0, NULL);
	*(int64_t *)out = weft_spawn(NULL, &wt_value_desc, &v, NULL);
	return WEFT_READY;
}

static void gate_drop(void *self)
{
	struct gate *g = self;

	if (g->waiting)
		weft_notified_drop(&g->w);
}

static const weft_future_desc gate_desc = {
	.poll = gate_poll,
	.drop = gate_drop,
	.size = sizeof(struct gate),
	.output_size = sizeof(int64_t),
};

struct drainer {
	weft_runtime *rt;
	uint64_t timeout_ns;
	int err;
	pthread_t th;
};

static void *drainer_main(void *arg)
{
	struct drainer *d = arg;

	d->err = weft_runtime_shutdown_timeout(d->rt, d->timeout_ns);
	return NULL;
}

static void drainer_start(struct drainer *d, weft_runtime *rt,
			  uint64_t timeout_ns)
{
	d->rt = rt;
	d->timeout_ns = timeout_ns;
	d->err = 1;
	cr_assert_eq(pthread_create(&d->th, NULL, drainer_main, d), 0);
}

/*
 * While a task holds the drain open: spawns from this thread and
 * weft_block_on fail with -ESHUTDOWN, and so does a spawn from the task;
 * once the task finishes the drain returns 0.
 */
WT_RT_TEST_T(drain, spawns_fail_during_drain, 20)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_notify *n;
	weft_join *gj;
	struct drainer d;

	cr_assert_eq(weft_notify_new(&n), 0);
	struct gate g = { .n = n };
	wt_spawn(rt, &gate_desc, &g, &gj);
	drainer_start(&d, rt, 60 * UINT64_C(1000000000));

	/* Spawns succeed until the drainer has closed the list. */
	uint64_t t0 = wt_mono_ns();
	struct wt_value v = wt_value_init(1, 0, NULL);
	int err;
	while ((err = weft_spawn(rt, &wt_value_desc, &v, NULL)) == 0 &&
	       ms_since(t0) < 5000)
		wt_sleep_ms(1);
	cr_expect_eq(err, -ESHUTDOWN, "spawn during drain: %s",
		     weft_strerror(err));
	int64_t out = 0;
	cr_expect_eq(weft_block_on(rt, &wt_value_desc, &v, &out), -ESHUTDOWN);
	cr_expect_eq(d.err, 1, "the drain ended while the gate was open");

	weft_notify_one(n);
	cr_assert_eq(pthread_join(d.th, NULL), 0);
	cr_expect_eq(d.err, 0, "drain: %s", weft_strerror(d.err));
	out = 0;
	cr_expect_eq(join_status(gj, &out), 0);
	cr_expect_eq(out, -ESHUTDOWN, "spawn from a task during the drain: %s",
		     weft_strerror((int)out));
	weft_runtime_free(rt);
	cr_expect_eq(weft_notify_free(n), 0);
	wt_leak_check();
}

/* Sleepers that try to spawn when they wake, mid-drain. */
WT_RT_TEST_T(drain, task_spawn_refused, 20)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct drain_counters c = { 0 };
	enum { N = 10 };
	weft_join *j[N];

	for (int i = 0; i < N; i++)
		j[i] = spawn_sleeper(rt, 100, true, &c, false);
	cr_expect_eq(weft_runtime_shutdown_timeout(rt,
						   30 * UINT64_C(1000000000)),
		     0);
	for (int i = 0; i < N; i++) {
		int64_t out = 0;
		cr_expect_eq(join_status(j[i], &out), 0);
		/* The drain began within 100 ms of the spawns on any sane
		 * machine; a slower start would let the spawn through. */
		cr_expect_eq(out, -ESHUTDOWN, "task %d: %s", i,
			     weft_strerror((int)out));
	}
	weft_runtime_free(rt);
	wt_leak_check();
}

/* --- many tasks --------------------------------------------------------- */

/*
 * Thousands of tasks of every kind (yielding, sleeping, detached, and
 * every 16th never finishing): each is accounted for exactly once, either
 * finished (join 0, right output) or cancelled (join -ECANCELED).
 */
WT_RT_TEST_T(drain, many_tasks, 60)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct drain_counters c = { 0 }, cd = { 0 }; /* joined, detached */
	struct wt_counters vc = { 0 }, fc = { 0 };
	enum { N = 3000 };
	weft_join **j = calloc(N, sizeof(*j));
	int kind[N], detached = 0;

	cr_assert_not_null(j);
	for (int i = 0; i < N; i++) {
		kind[i] = i % 16 == 15 ? 2 : i % 2;
		if (kind[i] == 0) {
			struct wt_value v = wt_value_init(i, (unsigned)i % 7,
							  &vc);
			wt_spawn(rt, &wt_value_desc, &v, &j[i]);
		} else if (kind[i] == 1) {
			bool detach = i % 4 == 1;
			detached += detach;
			j[i] = spawn_sleeper(rt, (unsigned)i % 20, false,
					     detach ? &cd : &c, detach);
		} else {
			struct wt_forever f = { &fc };
			wt_spawn(rt, &wt_forever_desc, &f, &j[i]);
		}
	}
	int err = weft_runtime_shutdown_timeout(rt, 2 * UINT64_C(1000000000));
	cr_expect_eq(err, -ETIMEDOUT, "drain: %s", weft_strerror(err));
	int joined = 0, done = 0, cancelled = 0;
	for (int i = 0; i < N; i++) {
		if (!j[i])
			continue;
		int64_t out = -1;
		int st = join_status(j[i], &out);
		cr_assert(st == 0 || st == -ECANCELED, "task %d: %d", i, st);
		cr_expect(kind[i] != 2 || st == -ECANCELED, "forever %d", i);
		if (st == 0 && kind[i] == 0)
			cr_expect_eq(out, i, "value task %d", i);
		joined++;
		done += st == 0;
		cancelled += st != 0;
	}
	cr_expect_eq(joined, N - detached);
	cr_expect_eq(atomic_load(&cd.drops), detached);
	/* Every future dropped exactly once, finished or cancelled; a join
	 * says 0 exactly for the tasks that finished. */
	cr_expect_eq(atomic_load(&vc.drops) + atomic_load(&c.drops) +
			     atomic_load(&cd.drops) + atomic_load(&fc.drops),
		     N);
	cr_expect_eq(atomic_load(&fc.drops), N / 16);
	cr_expect_eq(atomic_load(&vc.readies) + atomic_load(&c.finished),
		     done);
	cr_expect_geq(cancelled, N / 16);
	free(j);
	weft_runtime_free(rt);
	wt_leak_check();
}
