/* SPDX-License-Identifier: MIT */
/*
 * weft_rwlock: readers share, a writer excludes, a queued writer is not
 * starved by later readers (FIFO), unlocks of nothing are refused, and
 * tasks on several workers read and write plain memory under it across
 * awaits, with aborts.
 */
#include "io_helpers.h"

struct hand {
	weft_rwlock_lock k;
	struct wt_probe pr;
};

static void hand_init(struct hand *h, weft_rwlock *l, bool write)
{
	wt_probe_init(&h->pr);
	cr_assert_eq(write ? weft_rwlock_write_init(&h->k, l)
			   : weft_rwlock_read_init(&h->k, l), 0);
}

/* 1: pending; else the result. */
static int hand_poll(struct hand *h)
{
	int r = 1;

	if (weft_rwlock_lock_poll(&h->k, &h->pr.cx, &r) == WEFT_PENDING)
		return 1;
	return r;
}

static void hand_fini(struct hand *h)
{
	weft_rwlock_lock_drop(&h->k);
	wt_probe_fini(&h->pr);
}

WT_TEST(rwlock, readers_share_writer_excludes)
{
	weft_rwlock *l;

	cr_assert_eq(weft_rwlock_new(&l), 0);
	cr_expect_eq(weft_rwlock_read_unlock(l), -EPERM);
	cr_expect_eq(weft_rwlock_write_unlock(l), -EPERM);
	cr_expect_eq(weft_rwlock_try_read(l), 0);
	cr_expect_eq(weft_rwlock_try_read(l), 0);
	cr_expect_eq(weft_rwlock_try_write(l), -EAGAIN);
	cr_expect_eq(weft_rwlock_write_unlock(l), -EPERM, "readers hold it");
	cr_expect_eq(weft_rwlock_read_unlock(l), 0);
	cr_expect_eq(weft_rwlock_read_unlock(l), 0);
	cr_expect_eq(weft_rwlock_read_unlock(l), -EPERM);
	cr_expect_eq(weft_rwlock_try_write(l), 0);
	cr_expect_eq(weft_rwlock_try_read(l), -EAGAIN);
	cr_expect_eq(weft_rwlock_write_unlock(l), 0);
	cr_expect_eq(weft_rwlock_write_unlock(l), -EPERM);
	cr_expect_eq(weft_rwlock_free(l), 0);
}

WT_TEST(rwlock, waiting_writer_not_starved)
{
	weft_rwlock *l;
	struct hand w, r2;

	cr_assert_eq(weft_rwlock_new(&l), 0);
	cr_assert_eq(weft_rwlock_try_read(l), 0); /* reader 1 */
	hand_init(&w, l, true);
	cr_expect_eq(hand_poll(&w), 1, "a reader holds it");
	hand_init(&r2, l, false);
	cr_expect_eq(hand_poll(&r2), 1, "a later reader jumped the writer");
	cr_expect_eq(weft_rwlock_try_read(l), -EAGAIN);
	cr_expect_eq(weft_rwlock_read_unlock(l), 0); /* reader 1 leaves */
	cr_expect_eq(wt_probe_wakes(&w.pr), 1);
	cr_expect_eq(hand_poll(&w), 0, "the writer");
	cr_expect_eq(hand_poll(&r2), 1);
	cr_expect_eq(weft_rwlock_write_unlock(l), 0);
	cr_expect_eq(hand_poll(&r2), 0);
	cr_expect_eq(weft_rwlock_read_unlock(l), 0);
	hand_fini(&w);
	hand_fini(&r2);
	/* A writer dropped while queued leaves the lock usable. */
	cr_assert_eq(weft_rwlock_try_read(l), 0);
	hand_init(&w, l, true);
	cr_expect_eq(hand_poll(&w), 1);
	hand_fini(&w);
	cr_expect_eq(weft_rwlock_try_read(l), 0, "the dropped writer blocks");
	cr_expect_eq(weft_rwlock_read_unlock(l), 0);
	cr_expect_eq(weft_rwlock_read_unlock(l), 0);
	cr_expect_eq(weft_rwlock_try_write(l), 0, "permits lost");
	cr_expect_eq(weft_rwlock_write_unlock(l), 0);
	cr_expect_eq(weft_rwlock_free(l), 0);
	wt_leak_check();
}

/* --- tasks ------------------------------------------------------------- */

enum { TASKS = 24, ROUNDS = 40 };

struct table {
	weft_rwlock *l;
	long a, b;           /* plain; a == b whenever no writer is inside */
	atomic_int readers, writers, bad;
	atomic_long writes;
};

struct user {
	struct table *t;
	unsigned seed;
	int round, step;
	bool write;
	weft_rwlock_lock k;
};

static weft_poll user_poll(void *self, weft_cx *cx, void *out)
{
	struct user *u = self;
	struct table *t = u->t;
	int r;

	(void)out;
	while (u->round < ROUNDS) {
		if (u->step == 0) {
			u->seed = u->seed * 1103515245u + 12345u;
			u->write = (u->seed >> 16) % 4 == 0;
			if (u->write)
				weft_rwlock_write_init(&u->k, t->l);
			else
				weft_rwlock_read_init(&u->k, t->l);
			u->step = 1;
		}
		if (u->step == 1) {
			if (weft_rwlock_lock_poll(&u->k, cx, &r) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			WT_CHECK(r == 0, "lock: %d", r);
			if (u->write) {
				if (atomic_fetch_add(&t->writers, 1) ||
				    atomic_load(&t->readers))
					atomic_fetch_add(&t->bad, 1);
				t->a++;
			} else {
				atomic_fetch_add(&t->readers, 1);
				if (atomic_load(&t->writers) || t->a != t->b)
					atomic_fetch_add(&t->bad, 1);
			}
			u->step = 2;
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING; /* hold it across a yield */
		}
		if (u->write) {
			t->b++;
			atomic_fetch_add(&t->writes, 1);
			atomic_fetch_sub(&t->writers, 1);
			WT_CHECK(weft_rwlock_write_unlock(t->l) == 0, "unlock");
		} else {
			atomic_fetch_sub(&t->readers, 1);
			WT_CHECK(weft_rwlock_read_unlock(t->l) == 0, "unlock");
		}
		u->step = 0;
		u->round++;
	}
	return WEFT_READY;
}

static void user_drop(void *self)
{
	struct user *u = self;
	struct table *t = u->t;

	if (u->step == 1)
		weft_rwlock_lock_drop(&u->k);
	if (u->step == 2) { /* aborted holding it */
		if (u->write) {
			t->b++;
			atomic_fetch_add(&t->writes, 1);
			atomic_fetch_sub(&t->writers, 1);
			weft_rwlock_write_unlock(t->l);
		} else {
			atomic_fetch_sub(&t->readers, 1);
			weft_rwlock_read_unlock(t->l);
		}
	}
}

static const weft_future_desc user_desc = {
	.poll = user_poll,
	.drop = user_drop,
	.size = sizeof(struct user),
};

WT_RT_TEST_T(rwlock, many_tasks_across_awaits, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct table t = { 0 };
	weft_join *j[TASKS];

	cr_assert_eq(weft_rwlock_new(&t.l), 0);
	for (int i = 0; i < TASKS; i++) {
		struct user u = { .t = &t, .seed = (unsigned)i * 2654435761u };
		wt_spawn(rt, &user_desc, &u, &j[i]);
	}
	wt_sleep_ms(2);
	for (int i = 0; i < TASKS; i += 5)
		weft_task_abort(j[i]);
	for (int i = 0; i < TASKS; i++) {
		int st;
		cr_assert(wt_join_wait_ms(j[i], &st, NULL, 20000),
			  "task %d hung", i);
		weft_join_drop(j[i]);
	}
	cr_expect_eq(atomic_load(&t.bad), 0, "a reader met a writer");
	cr_expect_eq(t.a, atomic_load(&t.writes));
	cr_expect_eq(t.b, t.a);
	cr_expect_eq(weft_rwlock_try_write(t.l), 0, "left locked");
	cr_expect_eq(weft_rwlock_write_unlock(t.l), 0);
	cr_expect_eq(weft_rwlock_free(t.l), 0);
	wt_rt_free(rt);
}
