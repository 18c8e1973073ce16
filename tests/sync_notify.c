/* SPDX-License-Identifier: MIT */
/*
 * weft_notify: the stored permit (one, however many notify_one calls),
 * FIFO wakes, notify_waiters reaching waits prepared before it (polled or
 * not) and storing nothing, and the drop rule: a wait chosen by notify_one
 * and dropped unseen passes the notification on. Then tasks on several
 * workers woken one notification at a time, none lost.
 */
#include "io_helpers.h"

struct hand {
	weft_notified w;
	struct wt_probe pr;
};

static void hand_init(struct hand *h, weft_notify *n)
{
	wt_probe_init(&h->pr);
	cr_assert_eq(weft_notified_init(&h->w, n), 0);
}

/* 1: pending; else the result. */
static int hand_poll(struct hand *h)
{
	int r = 1;

	if (weft_notified_poll(&h->w, &h->pr.cx, &r) == WEFT_PENDING)
		return 1;
	return r;
}

static int hand_wakes(struct hand *h)
{
	return wt_probe_wakes(&h->pr);
}

static void hand_fini(struct hand *h)
{
	weft_notified_drop(&h->w);
	wt_probe_fini(&h->pr);
}

WT_TEST(notify, one_permit_however_many_notifies)
{
	weft_notify *n;
	struct hand a, b;

	cr_assert_eq(weft_notify_new(&n), 0);
	weft_notify_one(n);
	weft_notify_one(n);
	hand_init(&a, n);
	cr_expect_eq(hand_poll(&a), 0, "the stored permit");
	cr_expect_eq(hand_poll(&a), -EALREADY);
	hand_init(&b, n);
	cr_expect_eq(hand_poll(&b), 1, "two notifies stored two permits");
	hand_fini(&a);
	hand_fini(&b);
	cr_expect_eq(weft_notify_free(n), 0);
	cr_expect_eq(weft_notify_new(NULL), -EINVAL);
	wt_leak_check();
}

WT_TEST(notify, fifo_and_notify_waiters)
{
	weft_notify *n;
	struct hand a, b, c, d;

	cr_assert_eq(weft_notify_new(&n), 0);
	hand_init(&a, n);
	hand_init(&b, n);
	cr_expect_eq(hand_poll(&a), 1);
	cr_expect_eq(hand_poll(&b), 1);
	cr_expect_eq(weft_notify_free(n), -EBUSY);
	weft_notify_one(n);
	cr_expect_eq(hand_wakes(&a), 1, "A first");
	cr_expect_eq(hand_wakes(&b), 0);
	cr_expect_eq(hand_poll(&b), 1);
	cr_expect_eq(hand_poll(&a), 0);
	/* c is prepared but not polled: notify_waiters reaches it too. */
	hand_init(&c, n);
	weft_notify_waiters(n);
	cr_expect_eq(hand_wakes(&b), 1);
	cr_expect_eq(hand_poll(&b), 0);
	cr_expect_eq(hand_poll(&c), 0, "prepared before notify_waiters");
	hand_init(&d, n);
	cr_expect_eq(hand_poll(&d), 1, "notify_waiters stored a permit");
	hand_fini(&a);
	hand_fini(&b);
	hand_fini(&c);
	hand_fini(&d);
	cr_expect_eq(weft_notify_free(n), 0);
	wt_leak_check();
}

WT_TEST(notify, dropped_chosen_wait_passes_it_on)
{
	weft_notify *n;
	struct hand a, b, c;

	cr_assert_eq(weft_notify_new(&n), 0);
	hand_init(&a, n);
	hand_init(&b, n);
	cr_expect_eq(hand_poll(&a), 1);
	cr_expect_eq(hand_poll(&b), 1);
	weft_notify_one(n); /* chooses A */
	hand_fini(&a);      /* unseen: B gets it */
	cr_expect_eq(hand_wakes(&b), 1);
	weft_notify_one(n); /* nobody queued: a permit */
	hand_fini(&b);      /* B had seen nothing but was chosen: passes on */
	hand_init(&c, n);
	cr_expect_eq(hand_poll(&c), 0, "a notification was lost");
	hand_fini(&c);
	/* Dropped while queued: nothing to pass on. */
	hand_init(&a, n);
	cr_expect_eq(hand_poll(&a), 1);
	hand_fini(&a);
	hand_init(&b, n);
	cr_expect_eq(hand_poll(&b), 1, "a queued drop made a permit");
	hand_fini(&b);
	cr_expect_eq(weft_notify_free(n), 0);
	wt_leak_check();
}

/* --- tasks ------------------------------------------------------------- */

enum { WAITERS = 8, NOTIFIES = 200 };

struct room {
	weft_notify *n;
	atomic_int woken;
};

struct sleeper {
	struct room *r;
	int waiting;
	weft_notified w;
};

static weft_poll sleeper_poll(void *self, weft_cx *cx, void *out)
{
	struct sleeper *s = self;
	int r;

	(void)out;
	for (;;) {
		if (!s->waiting) {
			weft_notified_init(&s->w, s->r->n);
			s->waiting = 1;
		}
		if (weft_notified_poll(&s->w, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		WT_CHECK(r == 0, "notified: %d", r);
		s->waiting = 0;
		atomic_fetch_add(&s->r->woken, 1);
	}
}

static void sleeper_drop(void *self)
{
	struct sleeper *s = self;

	if (s->waiting)
		weft_notified_drop(&s->w);
}

static const weft_future_desc sleeper_desc = {
	.poll = sleeper_poll,
	.drop = sleeper_drop,
	.size = sizeof(struct sleeper),
};

WT_RT_TEST_T(notify, each_notify_one_wakes_one, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct room r = { 0 };
	weft_join *j[WAITERS];

	cr_assert_eq(weft_notify_new(&r.n), 0);
	for (int i = 0; i < WAITERS; i++) {
		struct sleeper s = { .r = &r };
		wt_spawn(rt, &sleeper_desc, &s, &j[i]);
	}
	/* One at a time: with no waiter queued a second notify would only
	 * refresh the single permit. */
	for (int k = 1; k <= NOTIFIES; k++) {
		weft_notify_one(r.n);
		cr_assert(wt_wait_atomic_ge(&r.woken, k, 5000),
			  "notify %d lost", k);
	}
	wt_sleep_ms(20);
	cr_expect_eq(atomic_load(&r.woken), NOTIFIES, "woken more than sent");
	for (int i = 0; i < WAITERS; i++) {
		weft_task_abort(j[i]);
		int st;
		cr_assert(wt_join_wait_ms(j[i], &st, NULL, 5000));
		weft_join_drop(j[i]);
	}
	cr_expect_eq(weft_notify_free(r.n), 0, "a wait left queued");
	wt_rt_free(rt);
}
