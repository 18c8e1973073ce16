/* SPDX-License-Identifier: MIT */
/*
 * Wakers: the weft_waker_* helpers over any vtable, the no-op and empty
 * wakers, and task wakers on a real runtime: clone/wake/wake_by_ref/drop
 * keep the task's reference count balanced (ASan catches a premature free,
 * LSan a leak), wakes coalesce, and a task woken from a foreign thread or
 * from another task completes.
 */
#include "helpers.h"

/* --- wakers without a runtime ---------------------------------------- */

struct counting {
	atomic_int clones, wakes, wake_by_refs, drops;
};

static weft_waker counting_clone(const void *data);
static void counting_wake(const void *data)
{
	atomic_fetch_add(&((struct counting *)data)->wakes, 1);
}
static void counting_wake_by_ref(const void *data)
{
	atomic_fetch_add(&((struct counting *)data)->wake_by_refs, 1);
}
static void counting_drop(const void *data)
{
	atomic_fetch_add(&((struct counting *)data)->drops, 1);
}
static const weft_waker_vtable counting_vt = {
	counting_clone, counting_wake, counting_wake_by_ref, counting_drop,
};
static weft_waker counting_clone(const void *data)
{
	atomic_fetch_add(&((struct counting *)data)->clones, 1);
	return (weft_waker){ &counting_vt, data };
}

Test(waker, helpers_dispatch_to_vtable)
{
	struct counting c = { 0 };
	weft_waker w = { &counting_vt, &c };

	weft_waker w2 = weft_waker_clone(&w);
	cr_expect_eq(atomic_load(&c.clones), 1);
	cr_expect_eq(w2.vtable, &counting_vt);
	cr_expect_eq(w2.data, &c);

	weft_waker_wake_by_ref(&w2);
	cr_expect_eq(atomic_load(&c.wake_by_refs), 1);
	cr_expect_eq(w2.vtable, &counting_vt, "wake_by_ref keeps the waker");

	weft_waker_wake(&w2);
	cr_expect_eq(atomic_load(&c.wakes), 1);
	cr_expect_null(w2.vtable, "wake consumes the waker");
	cr_expect_eq(atomic_load(&c.drops), 0, "wake is not wake+drop");

	weft_waker_drop(&w);
	cr_expect_eq(atomic_load(&c.drops), 1);
	cr_expect_null(w.vtable, "drop empties the waker");

	/* Consumed wakers are empty: further calls do nothing. */
	weft_waker_wake(&w);
	weft_waker_drop(&w2);
	weft_waker_wake_by_ref(&w);
	cr_expect_eq(atomic_load(&c.wakes), 1);
	cr_expect_eq(atomic_load(&c.drops), 1);
	cr_expect_eq(atomic_load(&c.wake_by_refs), 1);
}

Test(waker, will_wake_compares_vtable_and_data)
{
	struct counting a = { 0 }, b = { 0 };
	weft_waker wa = { &counting_vt, &a }, wa2 = { &counting_vt, &a };
	weft_waker wb = { &counting_vt, &b };
	weft_waker noop = weft_waker_noop();

	cr_expect(weft_waker_will_wake(&wa, &wa2));
	cr_expect(weft_waker_will_wake(&wa, &wa));
	cr_expect_not(weft_waker_will_wake(&wa, &wb));
	cr_expect_not(weft_waker_will_wake(&wa, &noop));
	weft_waker c = weft_waker_clone(&wa);
	cr_expect(weft_waker_will_wake(&wa, &c), "a clone wakes the same");
	weft_waker_drop(&c);
}

Test(waker, empty_waker_is_inert)
{
	weft_waker w = WEFT_WAKER_EMPTY;
	weft_waker c = weft_waker_clone(&w);
	cr_expect_null(c.vtable);
	cr_expect_null(c.data);
	weft_waker_wake_by_ref(&w);
	weft_waker_wake(&w);
	cr_expect_null(w.vtable);
	weft_waker_drop(&w);
	cr_expect_null(w.vtable);
	weft_waker_drop(&c);
}

Test(waker, noop_waker)
{
	weft_waker w = weft_waker_noop();
	cr_expect_not_null(w.vtable, "noop is not the empty waker");
	weft_waker c = weft_waker_clone(&w);
	cr_expect_not_null(c.vtable);
	cr_expect(weft_waker_will_wake(&w, &c));
	weft_waker n2 = weft_waker_noop();
	cr_expect(weft_waker_will_wake(&w, &n2), "all noop wakers are one");
	for (int i = 0; i < 1000; i++)
		weft_waker_wake_by_ref(&c);
	weft_waker_wake(&c);
	cr_expect_null(c.vtable);
	weft_waker_drop(&w);
	cr_expect_null(w.vtable);
}

Test(waker, cx_lends_the_waker)
{
	weft_waker w = weft_waker_noop();
	weft_cx cx;
	memset(&cx, 0xab, sizeof(cx));
	weft_cx_init(&cx, &w);
	cr_expect_eq(weft_cx_waker(&cx), &w);
	cr_expect_null(cx._reserved);
}

Test(waker, parker_waker_refcount)
{
	/* The helper every runtime test relies on. */
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	weft_waker c = weft_waker_clone(&w);
	cr_expect_eq(atomic_load(&p->refs), 3);
	weft_waker_wake_by_ref(&c);
	cr_expect(wt_parker_wait(p, 1000));
	cr_expect_not(wt_parker_wait(p, 10), "notification consumed");
	weft_waker_wake(&c);
	cr_expect_eq(atomic_load(&p->refs), 2);
	cr_expect(wt_parker_wait(p, 1000));
	weft_waker_drop(&w);
	cr_expect_eq(atomic_load(&p->refs), 1);
	cr_expect_eq(atomic_load(&p->wakes), 2);
	wt_parker_release(p);
}

/* --- task wakers ---------------------------------------------------------
 *
 * "waiter" futures park their waker in a global slot (one clone, stored
 * once) so that the test thread, another thread or another task can wake
 * them. A waiter returns READY (output: its poll count) at poll number
 * ready_at.
 */

#define NSLOTS 8

static weft_waker slots[NSLOTS];
static atomic_int slot_set[NSLOTS];

struct waiter {
	int slot;
	int ready_at;
	struct wt_counters *c;
	int polls;
};

static weft_poll waiter_poll(void *self, weft_cx *cx, void *out)
{
	struct waiter *s = self;
	s->polls++;
	atomic_fetch_add(&s->c->polls, 1);
	if (!atomic_load(&slot_set[s->slot])) {
		slots[s->slot] = weft_waker_clone(weft_cx_waker(cx));
		/* Release: the slot is written before the flag. */
		atomic_store(&slot_set[s->slot], 1);
	}
	if (s->polls >= s->ready_at) {
		*(int64_t *)out = s->polls;
		atomic_fetch_add(&s->c->readies, 1);
		return WEFT_READY;
	}
	return WEFT_PENDING;
}

static void waiter_drop(void *self)
{
	struct waiter *s = self;
	atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc waiter_desc = {
	.poll = waiter_poll,
	.drop = waiter_drop,
	.size = sizeof(struct waiter),
	.output_size = sizeof(int64_t),
};

static void wait_slot(int i)
{
	cr_assert_eq(wt_wait_atomic_ge(&slot_set[i], 1, 5000), 1,
		     "slot %d never filled", i);
}

static void *wake_slot_thread(void *arg)
{
	int i = (int)(intptr_t)arg;
	weft_waker_wake(&slots[i]); /* by value: consumes the slot */
	return NULL;
}

WT_RT_TEST(waker, wake_from_foreign_thread)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct waiter w = { .slot = 0, .ready_at = 2, .c = &c };
	weft_join *j;
	pthread_t th;

	wt_spawn(rt, &waiter_desc, &w, &j);
	wait_slot(0);
	wt_sleep_ms(2);
	cr_expect_eq(atomic_load(&c.polls), 1, "polled without a wake");
	cr_assert_eq(pthread_create(&th, NULL, wake_slot_thread, (void *)0),
		     0);
	pthread_join(th, NULL);
	cr_expect_null(slots[0].vtable);

	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 2);
	cr_expect_eq(atomic_load(&c.polls), 2);
	cr_expect_eq(atomic_load(&c.drops), 1);
	weft_join_drop(j);
	wt_rt_free(rt);
}

WT_RT_TEST(waker, wake_by_ref_burst_coalesces)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct waiter w = { .slot = 0, .ready_at = 2, .c = &c };
	weft_join *j;

	wt_spawn(rt, &waiter_desc, &w, &j);
	wait_slot(0);
	for (int i = 0; i < 1000; i++)
		weft_waker_wake_by_ref(&slots[0]);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	/* One poll after the burst completes it; every other wake found
	 * the task queued, running or complete. */
	cr_expect_eq(out, 2);
	for (int i = 0; i < 100; i++)
		weft_waker_wake_by_ref(&slots[0]);
	wt_sleep_ms(5);
	cr_expect_eq(atomic_load(&c.polls), 2, "polled after READY");
	cr_expect_eq(atomic_load(&c.drops), 1);
	weft_waker_drop(&slots[0]);
	weft_join_drop(j);
	wt_rt_free(rt);
}

#define WAKE_THREADS 8
static weft_waker thread_wakers[WAKE_THREADS];
static atomic_int go;

static void *wake_clone_thread(void *arg)
{
	int i = (int)(intptr_t)arg;
	while (!atomic_load(&go))
		;
	if (i & 1)
		weft_waker_wake(&thread_wakers[i]);
	else {
		weft_waker_wake_by_ref(&thread_wakers[i]);
		weft_waker_drop(&thread_wakers[i]);
	}
	return NULL;
}

WT_RT_TEST(waker, wake_from_many_threads_at_once)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct waiter w = { .slot = 0, .ready_at = 2, .c = &c };
	weft_join *j;
	pthread_t th[WAKE_THREADS];

	wt_spawn(rt, &waiter_desc, &w, &j);
	wait_slot(0);
	for (int i = 0; i < WAKE_THREADS; i++) {
		thread_wakers[i] = weft_waker_clone(&slots[0]);
		cr_assert(weft_waker_will_wake(&thread_wakers[i], &slots[0]));
		cr_assert_eq(pthread_create(&th[i], NULL, wake_clone_thread,
					    (void *)(intptr_t)i), 0);
	}
	weft_waker_drop(&slots[0]);
	atomic_store(&go, 1);
	for (int i = 0; i < WAKE_THREADS; i++)
		pthread_join(th[i], NULL);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 2, "%d wakes gave %lld polls", WAKE_THREADS,
		     (long long)out);
	weft_join_drop(j);
	wt_rt_free(rt);
}

/* A future that wakes itself during the poll, N times. */
struct self_waker {
	int n;
	int by_value; /* wake a clone by value instead of by ref */
	int polls;
};

static weft_poll self_waker_poll(void *self, weft_cx *cx, void *out)
{
	struct self_waker *s = self;
	if (++s->polls > s->n) {
		*(int64_t *)out = s->polls;
		return WEFT_READY;
	}
	if (s->by_value) {
		weft_waker w = weft_waker_clone(weft_cx_waker(cx));
		weft_waker_wake(&w);
		WT_CHECK(w.vtable == NULL, "wake did not consume");
	} else {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		weft_waker_wake_by_ref(weft_cx_waker(cx));
	}
	return WEFT_PENDING;
}

static const weft_future_desc self_waker_desc = {
	.poll = self_waker_poll,
	.size = sizeof(struct self_waker),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(waker, self_wake_during_poll_repolls)
{
	weft_runtime *rt = wt_rt_new(cfg);
	for (int by_value = 0; by_value < 2; by_value++) {
		struct self_waker s = { .n = 200, .by_value = by_value };
		int64_t out = 0;
		wt_block_on(rt, &self_waker_desc, &s, &out);
		/* Each wake raced its own poll (NOTIFIED while RUNNING): the
		 * worker must re-queue, exactly once per poll. */
		cr_expect_eq(out, 201, "by_value=%d: %lld polls", by_value,
			     (long long)out);
	}
	wt_rt_free(rt);
}

WT_RT_TEST(waker, waker_outlives_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	/* READY at the first poll, leaving a clone in the slot. */
	struct waiter w = { .slot = 0, .ready_at = 1, .c = &c };
	weft_join *j;

	wt_spawn(rt, &waiter_desc, &w, &j);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(out, 1);
	weft_join_drop(j);
	cr_assert_eq(atomic_load(&slot_set[0]), 1);
	/* The slot's clone is now the last reference: wakes must neither
	 * poll the finished future nor free the task under our feet. */
	weft_waker_wake_by_ref(&slots[0]);
	weft_waker c2 = weft_waker_clone(&slots[0]);
	weft_waker_wake(&c2);
	wt_sleep_ms(5);
	cr_expect_eq(atomic_load(&c.polls), 1);
	cr_expect_eq(atomic_load(&c.drops), 1);
	/* Consuming the last reference from this thread frees the task
	 * (LSan: nothing left; ASan: no use after free). */
	weft_waker_wake(&slots[0]);
	wt_rt_free(rt);
}

WT_RT_TEST(waker, drop_last_waker_from_foreign_thread)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct waiter w = { .slot = 1, .ready_at = 1, .c = &c };

	/* Detached: after READY only the slot's waker holds the task. */
	wt_spawn(rt, &waiter_desc, &w, NULL);
	wait_slot(1);
	cr_expect_eq(wt_wait_atomic_ge(&c.drops, 1, 5000), 1);
	weft_waker_drop(&slots[1]);
	cr_expect_null(slots[1].vtable);
	wt_rt_free(rt);
}

/* Clone many times, drop all but one: refcounts must balance exactly. */
struct cloner {
	int n;
	int polls;
};

static weft_poll cloner_poll(void *self, weft_cx *cx, void *out)
{
	struct cloner *s = self;
	if (++s->polls == 2) {
		*(int64_t *)out = s->polls;
		return WEFT_READY;
	}
	weft_waker *ws = malloc(sizeof(*ws) * (size_t)s->n);
	WT_CHECK(ws != NULL, "malloc");
	for (int i = 0; i < s->n; i++)
		ws[i] = weft_waker_clone(weft_cx_waker(cx));
	for (int i = 1; i < s->n; i++) {
		WT_CHECK(weft_waker_will_wake(&ws[0], &ws[i]), "clone %d", i);
		if (i & 1) {
			weft_waker_drop(&ws[i]);
		} else {
			weft_waker_wake_by_ref(&ws[i]);
			weft_waker_drop(&ws[i]);
		}
	}
	slots[2] = ws[0];
	free(ws);
	atomic_store(&slot_set[2], 1);
	return WEFT_PENDING;
}

static const weft_future_desc cloner_desc = {
	.poll = cloner_poll,
	.size = sizeof(struct cloner),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(waker, clone_drop_balance)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct cloner s = { .n = 1000 };
	weft_join *j;
	wt_spawn(rt, &cloner_desc, &s, &j);
	wait_slot(2);
	int st = 1;
	int64_t out = 0;
	/* The wake_by_refs during the poll re-queued it already. */
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 2);
	weft_join_drop(j);
	weft_waker_drop(&slots[2]);
	wt_rt_free(rt);
}

/* will_wake across polls of one task, and between two tasks. */
struct will_wake_probe {
	weft_waker first;
	int polls;
};

static weft_poll will_wake_probe_poll(void *self, weft_cx *cx, void *out)
{
	struct will_wake_probe *s = self;
	if (++s->polls == 1) {
		s->first = weft_waker_clone(weft_cx_waker(cx));
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	int64_t r = weft_waker_will_wake(&s->first, weft_cx_waker(cx));
	weft_waker_drop(&s->first);
	*(int64_t *)out = r;
	return WEFT_READY;
}

static void will_wake_probe_drop(void *self)
{
	struct will_wake_probe *s = self;
	weft_waker_drop(&s->first); /* no-op when already dropped */
}

static const weft_future_desc will_wake_probe_desc = {
	.poll = will_wake_probe_poll,
	.drop = will_wake_probe_drop,
	.size = sizeof(struct will_wake_probe),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(waker, will_wake_same_task_across_polls)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct will_wake_probe s = { .first = WEFT_WAKER_EMPTY };
	int64_t out = -1;
	wt_block_on(rt, &will_wake_probe_desc, &s, &out);
	cr_expect_eq(out, 1, "a task's waker changed between polls");
	wt_rt_free(rt);
}

/* Task B compares its waker with A's (slot 3) and wakes A by value. */
static weft_poll other_waker_poll(void *self, weft_cx *cx, void *out)
{
	(void)self;
	int64_t same = weft_waker_will_wake(&slots[3], weft_cx_waker(cx));
	weft_waker_wake(&slots[3]);
	*(int64_t *)out = same;
	return WEFT_READY;
}

static const weft_future_desc other_waker_desc = {
	.poll = other_waker_poll,
	.size = 1,
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(waker, wake_from_another_task)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	struct waiter w = { .slot = 3, .ready_at = 2, .c = &c };
	weft_join *ja;

	wt_spawn(rt, &waiter_desc, &w, &ja);
	wait_slot(3);
	int64_t same = -1;
	wt_block_on(rt, &other_waker_desc, NULL, &same);
	cr_expect_eq(same, 0, "two tasks' wakers compare equal");
	int st = 1;
	int64_t out = 0;
	wt_join_wait(ja, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 2);
	weft_join_drop(ja);
	wt_rt_free(rt);
}

/*
 * Many tasks, each woken once from a foreign thread while others are being
 * polled: every one completes, each after exactly two polls.
 */
#define MANY 64
static weft_waker many_wakers[MANY];
static atomic_int many_set[MANY];

struct many_waiter {
	int i;
	int polls;
};

static weft_poll many_waiter_poll(void *self, weft_cx *cx, void *out)
{
	struct many_waiter *s = self;
	if (++s->polls == 1) {
		many_wakers[s->i] = weft_waker_clone(weft_cx_waker(cx));
		atomic_store(&many_set[s->i], 1);
		return WEFT_PENDING;
	}
	*(int64_t *)out = s->polls;
	return WEFT_READY;
}

static const weft_future_desc many_waiter_desc = {
	.poll = many_waiter_poll,
	.size = sizeof(struct many_waiter),
	.output_size = sizeof(int64_t),
};

static void *many_waker_thread(void *arg)
{
	int half = (int)(intptr_t)arg;
	for (int i = half; i < MANY; i += 2) {
		while (!atomic_load(&many_set[i]))
			sched_yield();
		weft_waker_wake(&many_wakers[i]);
	}
	return NULL;
}

WT_RT_TEST(waker, many_tasks_woken_from_threads)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_join *j[MANY];
	pthread_t th[2];
	for (int t = 0; t < 2; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, many_waker_thread,
					    (void *)(intptr_t)t), 0);
	for (int i = 0; i < MANY; i++) {
		struct many_waiter s = { .i = i };
		wt_spawn(rt, &many_waiter_desc, &s, &j[i]);
	}
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < MANY; i++) {
		int st = 1;
		int64_t out = 0;
		wt_join_wait(j[i], &st, &out);
		cr_expect_eq(st, 0);
		cr_expect_eq(out, 2, "task %d polled %lld times", i,
			     (long long)out);
		weft_join_drop(j[i]);
	}
	wt_rt_free(rt);
}
