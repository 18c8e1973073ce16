/* SPDX-License-Identifier: MIT */
/*
 * weft_mutex: try_lock and unlock (an unlock of an unlocked mutex is
 * -EPERM and changes nothing), FIFO hand-off, the drop paths (a queued
 * lock, a lock granted but never seen), and many tasks on several workers
 * updating plain memory under the lock across awaits, with aborts.
 */
#include "io_helpers.h"

WT_TEST(mutex, try_lock_unlock)
{
	weft_mutex *m;

	cr_assert_eq(weft_mutex_new(&m), 0);
	cr_expect_eq(weft_mutex_unlock(m), -EPERM, "unlocked an unlocked");
	cr_expect_eq(weft_mutex_try_lock(m), 0);
	cr_expect_eq(weft_mutex_try_lock(m), -EAGAIN);
	cr_expect_eq(weft_mutex_unlock(m), 0);
	cr_expect_eq(weft_mutex_unlock(m), -EPERM, "double unlock");
	cr_expect_eq(weft_mutex_try_lock(m), 0, "the double unlock freed two");
	cr_expect_eq(weft_mutex_try_lock(m), -EAGAIN);
	cr_expect_eq(weft_mutex_unlock(m), 0);
	cr_expect_eq(weft_mutex_try_lock(NULL), -EINVAL);
	cr_expect_eq(weft_mutex_unlock(NULL), -EINVAL);
	cr_expect_eq(weft_mutex_new(NULL), -EINVAL);
	cr_expect_eq(weft_mutex_free(m), 0);
}

struct hand {
	weft_mutex_lock l;
	struct wt_probe pr;
};

static void hand_init(struct hand *h, weft_mutex *m)
{
	wt_probe_init(&h->pr);
	cr_assert_eq(weft_mutex_lock_init(&h->l, m), 0);
}

/* 1: pending; else the result. */
static int hand_poll(struct hand *h)
{
	int r = 1;

	if (weft_mutex_lock_poll(&h->l, &h->pr.cx, &r) == WEFT_PENDING)
		return 1;
	return r;
}

static void hand_fini(struct hand *h)
{
	weft_mutex_lock_drop(&h->l);
	wt_probe_fini(&h->pr);
}

WT_TEST(mutex, fifo_hand_off)
{
	weft_mutex *m;
	struct hand b, c;

	cr_assert_eq(weft_mutex_new(&m), 0);
	cr_assert_eq(weft_mutex_try_lock(m), 0); /* A holds it */
	hand_init(&b, m);
	hand_init(&c, m);
	cr_expect_eq(hand_poll(&b), 1);
	cr_expect_eq(hand_poll(&c), 1);
	cr_expect_eq(weft_mutex_try_lock(m), -EAGAIN, "jumped the queue");
	cr_expect_eq(weft_mutex_unlock(m), 0);
	cr_expect_eq(wt_probe_wakes(&b.pr), 1, "B, first in line");
	cr_expect_eq(wt_probe_wakes(&c.pr), 0);
	cr_expect_eq(hand_poll(&c), 1);
	cr_expect_eq(hand_poll(&b), 0);
	cr_expect_eq(weft_mutex_unlock(m), 0);
	cr_expect_eq(hand_poll(&c), 0);
	cr_expect_eq(weft_mutex_unlock(m), 0);
	cr_expect_eq(weft_mutex_unlock(m), -EPERM);
	hand_fini(&b);
	hand_fini(&c);
	cr_expect_eq(weft_mutex_free(m), 0);
	wt_leak_check();
}

WT_TEST(mutex, dropped_locks_leave_it_unlocked)
{
	weft_mutex *m;
	struct hand b, c;

	cr_assert_eq(weft_mutex_new(&m), 0);
	cr_assert_eq(weft_mutex_try_lock(m), 0);
	hand_init(&b, m);
	hand_init(&c, m);
	cr_expect_eq(hand_poll(&b), 1);
	cr_expect_eq(hand_poll(&c), 1);
	cr_expect_eq(weft_mutex_free(m), -EBUSY);
	hand_fini(&b); /* queued: leaves the queue */
	cr_expect_eq(weft_mutex_unlock(m), 0); /* goes to C */
	cr_expect_eq(wt_probe_wakes(&c.pr), 1);
	hand_fini(&c); /* granted, never seen: unlocks */
	cr_expect_eq(weft_mutex_try_lock(m), 0, "left locked");
	cr_expect_eq(weft_mutex_unlock(m), 0);
	cr_expect_eq(weft_mutex_free(m), 0);
	wt_leak_check();
}

/* --- many tasks, plain memory under the lock --------------------------- */

enum { TASKS = 24, ROUNDS = 50 };

struct counter {
	weft_mutex *m;
	long value;          /* plain: only touched under the lock */
	atomic_int inside;
	atomic_int overlap;  /* times two were inside */
	atomic_long done;    /* increments that completed */
};

struct bumper {
	struct counter *c;
	int round, step;
	long seen;
	weft_mutex_lock l;
};

static weft_poll bumper_poll(void *self, weft_cx *cx, void *out)
{
	struct bumper *b = self;
	int r;

	(void)out;
	while (b->round < ROUNDS) {
		if (b->step == 0) {
			weft_mutex_lock_init(&b->l, b->c->m);
			b->step = 1;
		}
		if (b->step == 1) {
			if (weft_mutex_lock_poll(&b->l, cx, &r) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			WT_CHECK(r == 0, "lock: %d", r);
			if (atomic_fetch_add(&b->c->inside, 1))
				atomic_fetch_add(&b->c->overlap, 1);
			b->seen = b->c->value;
			b->step = 2;
			/* Hold it across an await: yield once. */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		b->c->value = b->seen + 1; /* lost if two were inside */
		atomic_fetch_sub(&b->c->inside, 1);
		atomic_fetch_add(&b->c->done, 1);
		WT_CHECK(weft_mutex_unlock(b->c->m) == 0, "unlock");
		b->step = 0;
		b->round++;
	}
	return WEFT_READY;
}

static void bumper_drop(void *self)
{
	struct bumper *b = self;

	if (b->step == 1)
		weft_mutex_lock_drop(&b->l);
	if (b->step == 2) { /* aborted holding it */
		atomic_fetch_sub(&b->c->inside, 1);
		weft_mutex_unlock(b->c->m);
	}
}

static const weft_future_desc bumper_desc = {
	.poll = bumper_poll,
	.drop = bumper_drop,
	.size = sizeof(struct bumper),
};

WT_RT_TEST_T(mutex, many_tasks_across_awaits, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct counter c = { 0 };
	weft_join *j[TASKS];

	cr_assert_eq(weft_mutex_new(&c.m), 0);
	for (int i = 0; i < TASKS; i++) {
		struct bumper b = { .c = &c };
		wt_spawn(rt, &bumper_desc, &b, &j[i]);
	}
	wt_sleep_ms(2);
	for (int i = 0; i < TASKS; i += 4)
		weft_task_abort(j[i]);
	for (int i = 0; i < TASKS; i++) {
		int st = 1;
		cr_assert(wt_join_wait_ms(j[i], &st, NULL, 20000),
			  "task %d hung: a lock never handed on", i);
		weft_join_drop(j[i]);
	}
	cr_expect_eq(atomic_load(&c.overlap), 0, "two tasks inside");
	cr_expect_eq(c.value, atomic_load(&c.done), "lost updates");
	cr_expect_eq(weft_mutex_try_lock(c.m), 0, "left locked");
	cr_expect_eq(weft_mutex_unlock(c.m), 0);
	cr_expect_eq(weft_mutex_free(c.m), 0);
	wt_rt_free(rt);
}
