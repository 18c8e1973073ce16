/* SPDX-License-Identifier: MIT */
/*
 * weft_joinset: tasks are taken in the order they finish (not spawned),
 * with their ids and outputs; abort_all gives -ECANCELED to those still
 * running; free aborts the rest and leaks nothing; an empty set answers
 * -ENOENT; 10,000 tasks are each taken exactly once; and joins work from a
 * task, from a hand-polled future, and from a plain thread.
 */
#include "helpers.h"

#include "task/joinset.h"

/* --- a task that finishes when the test says so -------------------------- */

/* READY with the int64_t it receives on its oneshot (-1 if the sender is
 * dropped). */
struct waiter {
	weft_oneshot_rx *rx;
};

static weft_poll waiter_poll(void *self, weft_cx *cx, void *out)
{
	struct waiter *w = self;
	int64_t v = -1;
	int st;

	if (weft_oneshot_recv_poll(w->rx, cx, &st, &v) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int64_t *)out = st ? -1 : v;
	return WEFT_READY;
}

static void waiter_drop(void *self)
{
	struct waiter *w = self;

	weft_oneshot_rx_drop(w->rx);
}

/* Outputs dropped unseen, and their sum. */
static atomic_int dropped_outputs;
static atomic_llong dropped_sum;

static void waiter_drop_output(void *out)
{
	atomic_fetch_add(&dropped_outputs, 1);
	atomic_fetch_add(&dropped_sum, *(int64_t *)out);
}

static const weft_future_desc waiter_desc = {
	.poll = waiter_poll,
	.drop = waiter_drop,
	.drop_output = waiter_drop_output,
	.size = sizeof(struct waiter),
	.output_size = sizeof(int64_t),
};

static weft_oneshot_tx *spawn_waiter(weft_joinset *set, weft_runtime *rt,
				     uint64_t *id)
{
	struct waiter w;
	weft_oneshot_tx *tx;

	cr_assert_eq(weft_oneshot_new(sizeof(int64_t), &tx, &w.rx), 0);
	cr_assert_eq(weft_joinset_spawn(set, rt, &waiter_desc, &w, id), 0);
	return tx;
}

/* Wait (plain thread, sleeping) until @n entries of @set are notified. */
static bool wait_notified(weft_joinset *set, size_t n)
{
	uint64_t deadline = wt_mono_ns() + 5000ull * 1000000u;

	while (weft__joinset_notified(set) < n) {
		if (wt_mono_ns() > deadline)
			return false;
		wt_sleep_ms(1);
	}
	return true;
}

static weft_joinset_next join_blocking(weft_joinset *set, int64_t *value)
{
	weft_joinset_next next = { .status = 1 };

	cr_assert_eq(weft_joinset_join_next_blocking(set, &next, value), 0);
	return next;
}

enum { ORDER_N = 5 };

WT_RT_TEST(joinset, completion_order_not_spawn_order)
{
	static const int order[ORDER_N] = { 3, 1, 4, 0, 2 };
	weft_runtime *rt = wt_rt_new(cfg);
	weft_oneshot_tx *tx[ORDER_N];
	uint64_t id[ORDER_N];
	weft_joinset *set;
	weft_joinset_next next;
	int64_t v;

	cr_assert_eq(weft_joinset_new(sizeof(int64_t), &set), 0);
	for (int i = 0; i < ORDER_N; i++) {
		tx[i] = spawn_waiter(set, rt, &id[i]);
		cr_expect_eq(id[i], (uint64_t)i + 1, "ids count from 1");
	}
	cr_expect_eq(weft_joinset_len(set), ORDER_N);
	/* Poll each once: all idle, none finished. */
	cr_expect_eq(weft_joinset_try_join_next(set, &next, &v), -EAGAIN);
	cr_expect_eq(weft__joinset_notified(set), 0);
	/* Finish them one at a time, each seen before the next starts. */
	for (int i = 0; i < ORDER_N; i++) {
		int64_t val = 100 + order[i];
		cr_assert_eq(weft_oneshot_send(tx[order[i]], &val), 0);
		cr_assert(wait_notified(set, (size_t)i + 1),
			  "completion %d never seen", i);
	}
	for (int i = 0; i < ORDER_N; i++) {
		v = -2;
		next = join_blocking(set, &v);
		cr_expect_eq(next.status, 0);
		cr_expect_eq(next.id, id[order[i]], "join %d: id %" PRIu64
			     ", want %" PRIu64, i, next.id, id[order[i]]);
		cr_expect_eq(v, 100 + order[i]);
		cr_expect_eq(weft_joinset_len(set), (size_t)(ORDER_N - i - 1));
	}
	next = join_blocking(set, &v);
	cr_expect_eq(next.status, -ENOENT, "empty: %d", next.status);
	cr_expect_eq(next.id, 0);
	weft_joinset_free(set);
	wt_rt_free(rt);
}

WT_RT_TEST(joinset, abort_all_cancels_the_running)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_forever f = { .c = &c };
	weft_joinset *set;
	weft_joinset_next next;
	uint64_t done_id;
	int64_t v = 0;
	weft_oneshot_tx *tx;
	int cancelled = 0;

	cr_assert_eq(weft_joinset_new(sizeof(int64_t), &set), 0);
	tx = spawn_waiter(set, rt, &done_id);
	cr_expect_eq(weft_joinset_try_join_next(set, &next, &v), -EAGAIN);
	v = 7;
	cr_assert_eq(weft_oneshot_send(tx, &v), 0);
	cr_assert(wait_notified(set, 1));
	for (int i = 0; i < 8; i++)
		cr_assert_eq(weft_joinset_spawn(set, rt, &wt_forever_desc, &f,
						NULL), 0);
	weft_joinset_abort_all(set);
	cr_expect_eq(weft_joinset_len(set), 9, "abort_all removes nothing");
	for (int i = 0; i < 9; i++) {
		v = -1;
		next = join_blocking(set, &v);
		if (next.id == done_id) {
			cr_expect_eq(next.status, 0, "finished before abort");
			cr_expect_eq(v, 7);
		} else {
			cr_expect_eq(next.status, -ECANCELED);
			cancelled++;
		}
	}
	cr_expect_eq(cancelled, 8);
	cr_expect_eq(atomic_load(&c.drops), 8);
	cr_expect_eq(weft_joinset_try_join_next(set, &next, &v), -ENOENT);
	weft_joinset_free(set);
	wt_rt_free(rt);
}

WT_RT_TEST(joinset, free_aborts_running_and_drops_outputs)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct wt_forever f = { .c = &c };
	weft_joinset *set;
	weft_joinset_next next;
	weft_oneshot_tx *tx;
	int64_t v = 77;

	cr_assert_eq(weft_joinset_new(sizeof(int64_t), &set), 0);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(weft_joinset_spawn(set, rt, &wt_forever_desc, &f,
						NULL), 0);
	tx = spawn_waiter(set, rt, NULL);
	cr_expect_eq(weft_joinset_try_join_next(set, &next, NULL), -EAGAIN);
	cr_assert_eq(weft_oneshot_send(tx, &v), 0);
	cr_assert(wait_notified(set, 1));
	weft_joinset_free(set);
	cr_expect_eq(wt_wait_atomic_ge(&c.drops, 16, 5000), 16,
		     "every running task aborted");
	cr_expect_eq(atomic_load(&dropped_outputs), 1,
		     "the finished task's output dropped");
	cr_expect_eq(atomic_load(&dropped_sum), 77);
	wt_rt_free(rt);
}

WT_TEST(joinset, empty_set_and_bad_args)
{
	weft_joinset *set;
	weft_joinset_join_next j;
	weft_joinset_next next = { .status = 1, .id = 9 };
	weft_waker noop = weft_waker_noop();
	weft_cx cx;

	weft_cx_init(&cx, &noop);
	cr_expect_eq(weft_joinset_new(8, NULL), -EINVAL);
	cr_expect_eq(weft_joinset_new(WEFT_FUTURE_MAX_SIZE + 1, &set),
		     -EINVAL);
	cr_assert_eq(weft_joinset_new(8, &set), 0);
	cr_expect_eq(weft_joinset_len(set), 0);
	cr_expect_eq(weft_joinset_try_join_next(set, &next, NULL), -ENOENT);
	cr_expect_eq(weft_joinset_join_next_init(&j, set, NULL), 0);
	cr_expect_eq(weft_joinset_join_next_poll(&j, &cx, &next), WEFT_READY);
	cr_expect_eq(next.status, -ENOENT);
	cr_expect_eq(next.id, 0);
	cr_expect_eq(weft_joinset_join_next_poll(&j, &cx, &next), WEFT_READY);
	cr_expect_eq(next.status, -EALREADY);
	weft_joinset_join_next_drop(&j);
	next = (weft_joinset_next){ 1, 1 };
	cr_expect_eq(weft_joinset_join_next_blocking(set, &next, NULL), 0);
	cr_expect_eq(next.status, -ENOENT);
	/* Output size is the set's (8 here; weft_yield has none). */
	struct wt_cfg one = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&one);
	cr_expect_eq(weft_joinset_spawn(set, rt, &weft_yield_desc, NULL,
					NULL), -EINVAL);
	cr_expect_eq(weft_joinset_len(set), 0);
	wt_rt_free(rt);
	cr_expect_eq(weft_joinset_spawn(NULL, NULL, &wt_call_desc, NULL, NULL),
		     -EINVAL);
	cr_expect_eq(weft_joinset_spawn(set, NULL, NULL, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_joinset_try_join_next(NULL, &next, NULL), -EINVAL);
	cr_expect_eq(weft_joinset_try_join_next(set, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_joinset_join_next_init(NULL, set, NULL), -EINVAL);
	cr_expect_eq(weft_joinset_join_next_init(&j, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_joinset_join_next_poll(NULL, &cx, &next),
		     WEFT_READY);
	cr_expect_eq(next.status, -EINVAL);
	cr_expect_eq(weft_joinset_join_next_blocking(NULL, &next, NULL),
		     -EINVAL);
	cr_expect_eq(weft_joinset_len(NULL), 0);
	weft_joinset_abort_all(NULL);
	weft_joinset_join_next_drop(NULL);
	weft_joinset_free(NULL);
	weft_joinset_free(set);
	wt_leak_check();
}

/* A hand-polled join: PENDING, woken by a spawn and by a completion. */
WT_RT_TEST(joinset, join_next_future_wakes)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_probe pr;
	weft_joinset *set;
	weft_joinset_join_next j;
	weft_joinset_next next = { .status = 1 };
	weft_oneshot_tx *tx;
	uint64_t id;
	int64_t v = 0;

	wt_probe_init(&pr);
	cr_assert_eq(weft_joinset_new(sizeof(int64_t), &set), 0);
	tx = spawn_waiter(set, rt, &id);
	cr_assert_eq(weft_joinset_join_next_init(&j, set, &v), 0);
	cr_expect_eq(weft_joinset_join_next_poll(&j, &pr.cx, &next),
		     WEFT_PENDING);
	/* A spawn wakes the pending join (a new task to look at). */
	weft_oneshot_tx *tx2 = spawn_waiter(set, rt, NULL);
	cr_expect_eq(wt_probe_wakes(&pr), 1, "spawn woke the join");
	cr_assert(wt_parker_wait(pr.p, 5000)); /* consume that wake */
	cr_expect_eq(weft_joinset_join_next_poll(&j, &pr.cx, &next),
		     WEFT_PENDING);
	v = 42;
	cr_assert_eq(weft_oneshot_send(tx, &v), 0);
	cr_expect(wt_parker_wait(pr.p, 5000), "the completion woke the join");
	v = 0;
	cr_expect_eq(weft_joinset_join_next_poll(&j, &pr.cx, &next),
		     WEFT_READY);
	cr_expect_eq(next.status, 0);
	cr_expect_eq(next.id, id);
	cr_expect_eq(v, 42);
	weft_joinset_join_next_drop(&j);
	/* A pending join dropped loses nothing. */
	cr_assert_eq(weft_joinset_join_next_init(&j, set, &v), 0);
	cr_expect_eq(weft_joinset_join_next_poll(&j, &pr.cx, &next),
		     WEFT_PENDING);
	weft_joinset_join_next_drop(&j);
	weft_oneshot_tx_drop(tx2);
	next = join_blocking(set, &v);
	cr_expect_eq(next.status, 0);
	cr_expect_eq(v, -1, "the sender was dropped");
	weft_joinset_free(set);
	wt_probe_fini(&pr);
	wt_rt_free(rt);
}

/* --- many tasks, joined from a plain thread and from a task --------------- */

enum { MANY = 10000 };

WT_RT_TEST_T(joinset, ten_thousand_each_once, 60)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_joinset *set;
	unsigned char *seen = calloc(MANY + 1, 1);
	int64_t sum = 0, want = 0;

	cr_assert_not_null(seen);
	cr_assert_eq(weft_joinset_new(sizeof(int64_t), &set), 0);
	for (int i = 0; i < MANY; i++) {
		struct wt_value val = wt_value_init(i, (unsigned)i % 3, NULL);
		uint64_t id;
		cr_assert_eq(weft_joinset_spawn(set, rt, &wt_value_desc, &val,
						&id), 0);
		cr_assert_eq(id, (uint64_t)i + 1);
		want += i;
	}
	for (int i = 0; i < MANY; i++) {
		int64_t v = -1;
		weft_joinset_next next = join_blocking(set, &v);
		cr_assert_eq(next.status, 0);
		cr_assert(next.id >= 1 && next.id <= MANY);
		cr_assert_eq(seen[next.id], 0, "id %" PRIu64 " twice",
			     next.id);
		seen[next.id] = 1;
		cr_assert_eq(v, (int64_t)next.id - 1, "output of its own task");
		sum += v;
	}
	cr_expect_eq(sum, want);
	cr_expect_eq(weft_joinset_len(set), 0);
	free(seen);
	weft_joinset_free(set);
	wt_rt_free(rt);
}

/* A task that spawns N tasks into a set and joins them with the future. */
struct collector {
	weft_joinset *set;
	int n, spawned, joined;
	int64_t sum;
	weft_joinset_join_next j;
	int64_t v;
};

static weft_poll collector_poll(void *self, weft_cx *cx, void *out)
{
	struct collector *c = self;
	weft_joinset_next next;

	while (c->spawned < c->n) {
		struct wt_value val = wt_value_init(c->spawned, 1, NULL);
		WT_CHECK(weft_joinset_spawn(c->set, NULL, &wt_value_desc, &val,
					    NULL) == 0, "spawn");
		c->spawned++;
		if (c->spawned == 1)
			weft_joinset_join_next_init(&c->j, c->set, &c->v);
	}
	for (;;) {
		if (weft_joinset_join_next_poll(&c->j, cx, &next) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		weft_joinset_join_next_drop(&c->j);
		if (next.status == -ENOENT)
			break;
		WT_CHECK(next.status == 0, "status %d", next.status);
		c->sum += c->v;
		c->joined++;
		weft_joinset_join_next_init(&c->j, c->set, &c->v);
	}
	*(int64_t *)out = c->joined == c->n ? c->sum : -1;
	return WEFT_READY;
}

static void collector_drop(void *self)
{
	struct collector *c = self;

	if (c->spawned)
		weft_joinset_join_next_drop(&c->j);
}

static const weft_future_desc collector_desc = {
	.poll = collector_poll,
	.drop = collector_drop,
	.size = sizeof(struct collector),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(joinset, joined_from_a_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct collector c = { .n = 500 };
	int64_t sum = 0;

	cr_assert_eq(weft_joinset_new(sizeof(int64_t), &c.set), 0);
	wt_block_on(rt, &collector_desc, &c, &sum);
	cr_expect_eq(sum, 499 * 500 / 2);
	weft_joinset_free(c.set);
	wt_rt_free(rt);
}

/* Joins from a second plain thread while this one spawns. */
struct taker {
	weft_joinset *set;
	int want, got;
	int64_t sum;
};

static void *taker_main(void *arg)
{
	struct taker *t = arg;

	while (t->got < t->want) {
		weft_joinset_next next;
		int64_t v;
		if (weft_joinset_join_next_blocking(t->set, &next, &v))
			return NULL;
		if (next.status == -ENOENT) {
			wt_sleep_ms(1); /* ahead of the spawner */
			continue;
		}
		if (next.status)
			return NULL;
		t->sum += v;
		t->got++;
	}
	return NULL;
}

WT_RT_TEST(joinset, spawn_and_join_on_two_threads)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct taker t = { .want = 2000 };
	pthread_t th;

	cr_assert_eq(weft_joinset_new(sizeof(int64_t), &t.set), 0);
	cr_assert_eq(pthread_create(&th, NULL, taker_main, &t), 0);
	for (int i = 0; i < t.want; i++) {
		struct wt_value val = wt_value_init(i, (unsigned)i % 2, NULL);
		cr_assert_eq(weft_joinset_spawn(t.set, rt, &wt_value_desc, &val,
						NULL), 0);
	}
	pthread_join(th, NULL);
	cr_expect_eq(t.got, t.want);
	cr_expect_eq(t.sum, (int64_t)(t.want - 1) * t.want / 2);
	weft_joinset_free(t.set);
	wt_rt_free(rt);
}

/* From a worker, the blocking join refuses. */
static int64_t blocking_on_worker(void *arg)
{
	weft_joinset_next next;

	return weft_joinset_join_next_blocking(arg, &next, NULL);
}

WT_TEST(joinset, blocking_join_refused_on_a_worker)
{
	struct wt_cfg c = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&c);
	weft_joinset *set;

	cr_assert_eq(weft_joinset_new(0, &set), 0);
	cr_expect_eq(wt_run_on_worker(rt, blocking_on_worker, set), -EDEADLK);
	weft_joinset_free(set);
	wt_rt_free(rt);
}
