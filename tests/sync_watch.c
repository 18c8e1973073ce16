/* SPDX-License-Identifier: MIT */
/*
 * weft_watch: versions and what marks them seen (borrow does not,
 * borrow_and_update and changed do; a clone keeps its original's, a
 * subscriber starts at the current), send refused without receivers and
 * send_replace storing anyway and handing back the old value, the close
 * (an unseen change first, then -EPIPE) with every drop order, the drop
 * rule for a pending changed future, many waiters woken by one send, bad
 * input changing nothing, the blocking wait on a plain thread (and
 * -EDEADLK on a worker), and tasks on several workers never seeing a
 * torn or older value.
 */
#include "io_helpers.h"

struct hand {
	weft_watch_changed c;
	struct wt_probe pr;
};

static void hand_init(struct hand *h, weft_watch_rx *rx)
{
	wt_probe_init(&h->pr);
	cr_assert_eq(weft_watch_changed_init(&h->c, rx), 0);
}

/* 1: pending; else the status. */
static int hand_poll(struct hand *h)
{
	int st = 1;

	if (weft_watch_changed_poll(&h->c, &h->pr.cx, &st) == WEFT_PENDING)
		return 1;
	return st;
}

static void hand_fini(struct hand *h)
{
	weft_watch_changed_drop(&h->c);
	wt_probe_fini(&h->pr);
}

static int borrow_int(weft_watch_rx *rx)
{
	int v = -1;

	cr_assert_eq(weft_watch_borrow(rx, &v), 0);
	return v;
}

WT_TEST(watch, versions_and_seen)
{
	weft_watch_tx *tx;
	weft_watch_rx *rx, *clone, *sub;
	int v = 1, out = 0;

	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &rx), 0);
	cr_expect_eq(weft_watch_has_changed(rx), 0, "initial counts as seen");
	cr_expect_eq(borrow_int(rx), 1);
	v = 2;
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	cr_expect_eq(weft_watch_has_changed(rx), 1);
	cr_expect_eq(borrow_int(rx), 2);
	cr_expect_eq(weft_watch_has_changed(rx), 1, "borrow marked it seen");
	cr_assert_eq(weft_watch_rx_clone(rx, &clone), 0);
	cr_assert_eq(weft_watch_tx_subscribe(tx, &sub), 0);
	cr_expect_eq(weft_watch_has_changed(clone), 1, "clone keeps unseen");
	cr_expect_eq(weft_watch_has_changed(sub), 0, "subscriber saw it");
	cr_assert_eq(weft_watch_borrow_and_update(rx, &out), 0);
	cr_expect_eq(out, 2);
	cr_expect_eq(weft_watch_has_changed(rx), 0);
	cr_expect_eq(weft_watch_has_changed(clone), 1, "receivers share seen");
	cr_assert_eq(weft_watch_borrow_and_update(clone, NULL), 0);
	cr_expect_eq(weft_watch_has_changed(clone), 0);
	/* Several sends, one change: only the latest is there. */
	for (v = 3; v < 10; v++)
		cr_assert_eq(weft_watch_send(tx, &v), 0);
	cr_expect_eq(weft_watch_has_changed(sub), 1);
	cr_expect_eq(borrow_int(sub), 9);
	weft_watch_rx_drop(clone);
	weft_watch_rx_drop(sub);
	weft_watch_rx_drop(rx);
	weft_watch_tx_drop(tx);
	wt_leak_check();
}

WT_TEST(watch, send_without_receivers)
{
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	int v = 1, old = 0;

	cr_assert_eq(weft_watch_new(sizeof(int), NULL, &tx, &rx), 0);
	cr_expect_eq(borrow_int(rx), 0, "NULL initial: zeroes");
	weft_watch_rx_drop(rx);
	cr_expect_eq(weft_watch_send(tx, &v), -EPIPE);
	v = 5;
	cr_expect_eq(weft_watch_send_replace(tx, &v, &old), 0);
	cr_expect_eq(old, 0, "the refused send stored something");
	cr_assert_eq(weft_watch_tx_subscribe(tx, &rx), 0);
	cr_expect_eq(borrow_int(rx), 5);
	cr_expect_eq(weft_watch_has_changed(rx), 0);
	v = 6;
	cr_expect_eq(weft_watch_send_replace(tx, &v, &old), 0);
	cr_expect_eq(old, 5);
	cr_expect_eq(weft_watch_has_changed(rx), 1);
	weft_watch_tx_drop(tx);
	weft_watch_rx_drop(rx); /* last handle: frees (LSan) */
	wt_leak_check();
}

WT_TEST(watch, close_unseen_first_then_epipe)
{
	weft_watch_tx *tx;
	weft_watch_rx *rx, *seen;
	struct hand h;
	int v = 1;

	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &rx), 0);
	cr_assert_eq(weft_watch_rx_clone(rx, &seen), 0);
	v = 2;
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	cr_assert_eq(weft_watch_borrow_and_update(seen, NULL), 0);
	weft_watch_tx_drop(tx);
	cr_expect_eq(weft_watch_has_changed(rx), 1);
	cr_expect_eq(weft_watch_has_changed(seen), -EPIPE);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 0, "a change made before the close");
	cr_expect_eq(hand_poll(&h), -EALREADY);
	hand_fini(&h);
	cr_expect_eq(borrow_int(rx), 2, "the value outlives the sender");
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), -EPIPE);
	hand_fini(&h);
	cr_expect_eq(weft_watch_changed_blocking(seen), -EPIPE);
	weft_watch_rx_drop(seen);
	weft_watch_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(watch, pending_changed_woken_by_send_and_close)
{
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	struct hand h;
	int v = 0;

	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &rx), 0);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	cr_expect_eq(hand_poll(&h), 1);
	v = 7;
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	cr_expect_eq(wt_probe_wakes(&h.pr), 1);
	cr_expect_eq(hand_poll(&h), 0);
	cr_expect_eq(weft_watch_has_changed(rx), 0, "changed marked it seen");
	hand_fini(&h);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	weft_watch_tx_drop(tx);
	cr_expect_eq(wt_probe_wakes(&h.pr), 1, "close woke nobody");
	cr_expect_eq(hand_poll(&h), -EPIPE);
	hand_fini(&h);
	weft_watch_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(watch, dropped_changed_leaves_no_waiter_marks_nothing)
{
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	struct hand h;
	int v = 0;

	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &rx), 0);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	weft_watch_changed_drop(&h.c);
	memset(&h.c, 0xa5, sizeof(h.c)); /* reused at once */
	v = 1;
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	cr_expect_eq(wt_probe_wakes(&h.pr), 0, "a dropped wait was woken");
	wt_probe_fini(&h.pr);
	cr_expect_eq(weft_watch_has_changed(rx), 1);
	/* Woken, then dropped before it saw the change: still unseen. */
	cr_assert_eq(weft_watch_borrow_and_update(rx, NULL), 0);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	v = 2;
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	cr_expect_eq(wt_probe_wakes(&h.pr), 1);
	hand_fini(&h);
	weft_watch_changed_drop(&h.c); /* idempotent */
	cr_expect_eq(weft_watch_has_changed(rx), 1);
	weft_watch_rx_drop(rx);
	weft_watch_tx_drop(tx);
	wt_leak_check();
}

enum { MANY = 100 }; /* more than one wake round */

WT_TEST(watch, one_send_wakes_many)
{
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	static struct hand h[MANY];
	int v = 0;

	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &rx), 0);
	for (int i = 0; i < MANY; i++) {
		hand_init(&h[i], rx);
		cr_assert_eq(hand_poll(&h[i]), 1);
	}
	v = 1;
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	for (int i = 0; i < MANY; i++)
		cr_expect_eq(wt_probe_wakes(&h[i].pr), 1, "waiter %d", i);
	/* One receiver: the first to poll takes the change; the others
	 * wait again, until the close. */
	cr_expect_eq(hand_poll(&h[0]), 0);
	for (int i = 1; i < MANY; i++)
		cr_expect_eq(hand_poll(&h[i]), 1);
	weft_watch_tx_drop(tx);
	for (int i = 1; i < MANY; i++) {
		cr_expect_eq(hand_poll(&h[i]), -EPIPE);
		hand_fini(&h[i]);
	}
	hand_fini(&h[0]);
	weft_watch_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(watch, bad_input_changes_nothing)
{
	weft_watch_tx *tx = NULL;
	weft_watch_rx *rx = NULL, *r2 = NULL;
	weft_watch_changed c = { 0 };
	struct wt_probe pr;
	int v = 4, st = 1;

	cr_expect_eq(weft_watch_new(4, &v, NULL, &rx), -EINVAL);
	cr_expect_eq(weft_watch_new(4, &v, &tx, NULL), -EINVAL);
	cr_expect_eq(weft_watch_new(WEFT_FUTURE_MAX_SIZE + 1, NULL, &tx, &rx),
		     -EINVAL);
	cr_expect(!tx && !rx);
	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &rx), 0);
	cr_expect_eq(weft_watch_send(NULL, &v), -EINVAL);
	cr_expect_eq(weft_watch_send(tx, NULL), -EINVAL);
	cr_expect_eq(weft_watch_send_replace(NULL, &v, NULL), -EINVAL);
	cr_expect_eq(weft_watch_send_replace(tx, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_watch_has_changed(rx), 0, "a refused send stored");
	cr_expect_eq(weft_watch_tx_subscribe(NULL, &r2), -EINVAL);
	cr_expect_eq(weft_watch_tx_subscribe(tx, NULL), -EINVAL);
	cr_expect_eq(weft_watch_rx_clone(NULL, &r2), -EINVAL);
	cr_expect_eq(weft_watch_rx_clone(rx, NULL), -EINVAL);
	cr_expect(!r2);
	cr_expect_eq(weft_watch_borrow(NULL, &v), -EINVAL);
	cr_expect_eq(weft_watch_borrow_and_update(NULL, &v), -EINVAL);
	cr_expect_eq(weft_watch_has_changed(NULL), -EINVAL);
	cr_expect_eq(weft_watch_changed_blocking(NULL), -EINVAL);
	cr_expect_eq(weft_watch_changed_init(NULL, rx), -EINVAL);
	cr_expect_eq(weft_watch_changed_init(&c, NULL), -EINVAL);
	wt_probe_init(&pr);
	cr_expect_eq(weft_watch_changed_poll(&c, &pr.cx, &st), WEFT_READY);
	cr_expect_eq(st, -EINVAL, "unprepared");
	cr_expect_eq(weft_watch_changed_poll(NULL, &pr.cx, NULL), WEFT_READY);
	cr_assert_eq(weft_watch_changed_init(&c, rx), 0);
	st = 1;
	cr_expect_eq(weft_watch_changed_poll(&c, NULL, &st), WEFT_READY);
	cr_expect_eq(st, -EINVAL);
	cr_expect_eq(weft_watch_changed_poll(&c, &pr.cx, &st), WEFT_PENDING,
		     "a NULL-cx poll consumed the future");
	weft_watch_changed_drop(&c);
	weft_watch_changed_drop(NULL);
	weft_watch_tx_drop(NULL);
	weft_watch_rx_drop(NULL);
	wt_probe_fini(&pr);
	weft_watch_rx_drop(rx);
	weft_watch_tx_drop(tx);
	wt_leak_check();
}

/* --- plain threads ------------------------------------------------------ */

struct waiter {
	weft_watch_rx *rx;
	int status[2];
	int value;
	atomic_int started;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	atomic_store(&w->started, 1);
	w->status[0] = weft_watch_changed_blocking(w->rx);
	weft_watch_borrow(w->rx, &w->value);
	w->status[1] = weft_watch_changed_blocking(w->rx);
	return NULL;
}

WT_TEST(watch, blocking_wait_on_a_plain_thread)
{
	weft_watch_tx *tx;
	struct waiter w = { 0 };
	pthread_t t;
	int v = 0;

	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &w.rx), 0);
	cr_assert_eq(pthread_create(&t, NULL, waiter_main, &w), 0);
	wt_wait_atomic_ge(&w.started, 1, 5000);
	wt_sleep_ms(20); /* most likely asleep now */
	v = 3;
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	wt_sleep_ms(20);
	weft_watch_tx_drop(tx);
	pthread_join(t, NULL);
	cr_expect_eq(w.status[0], 0);
	cr_expect_eq(w.value, 3);
	cr_expect_eq(w.status[1], -EPIPE);
	weft_watch_rx_drop(w.rx);
	wt_leak_check();
}

static int64_t blocking_on_worker(void *arg)
{
	return weft_watch_changed_blocking(arg);
}

WT_RT_TEST(watch, blocking_wait_refused_on_a_worker)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	int v = 0;

	cr_assert_eq(weft_watch_new(sizeof(int), &v, &tx, &rx), 0);
	cr_assert_eq(weft_watch_send(tx, &v), 0);
	cr_expect_eq(wt_run_on_worker(rt, blocking_on_worker, rx), -EDEADLK);
	cr_expect_eq(weft_watch_has_changed(rx), 1, "marked seen there");
	weft_watch_rx_drop(rx);
	weft_watch_tx_drop(tx);
	wt_rt_free(rt);
}

/* --- tasks -------------------------------------------------------------- */

enum { READERS = 6, UPDATES = 2000, WIDTH = 16 };

/* Every word holds the same number: a torn copy would mix two. */
struct wide {
	uint64_t w[WIDTH];
};

struct reader {
	weft_watch_rx *rx;
	uint64_t last;
	bool waiting;
	weft_watch_changed c;
};

static weft_poll reader_poll(void *self, weft_cx *cx, void *out)
{
	struct reader *r = self;
	struct wide v;
	int st;

	for (;;) {
		if (!r->waiting) {
			weft_watch_changed_init(&r->c, r->rx);
			r->waiting = true;
		}
		if (weft_watch_changed_poll(&r->c, cx, &st) == WEFT_PENDING)
			return WEFT_PENDING;
		r->waiting = false;
		if (st == -EPIPE)
			break;
		WT_CHECK(st == 0, "changed: %d", st);
		weft_watch_borrow_and_update(r->rx, &v);
		for (int i = 1; i < WIDTH; i++)
			WT_CHECK(v.w[i] == v.w[0], "torn value");
		WT_CHECK(v.w[0] > r->last, "went back: %" PRIu64 " after %"
			 PRIu64, v.w[0], r->last);
		r->last = v.w[0];
	}
	*(int64_t *)out = (int64_t)r->last;
	return WEFT_READY;
}

static void reader_drop(void *self)
{
	struct reader *r = self;

	if (r->waiting)
		weft_watch_changed_drop(&r->c);
	weft_watch_rx_drop(r->rx);
}

static const weft_future_desc reader_desc = {
	.poll = reader_poll,
	.drop = reader_drop,
	.size = sizeof(struct reader),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST_T(watch, readers_see_the_last_value, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_watch_tx *tx;
	weft_watch_rx *rx;
	weft_join *j[READERS];
	struct wide v = { { 0 } };

	cr_assert_eq(weft_watch_new(sizeof(v), &v, &tx, &rx), 0);
	for (int i = 0; i < READERS; i++) {
		struct reader r = { 0 };
		cr_assert_eq(weft_watch_rx_clone(rx, &r.rx), 0);
		wt_spawn(rt, &reader_desc, &r, &j[i]);
	}
	weft_watch_rx_drop(rx);
	for (uint64_t n = 1; n <= UPDATES; n++) {
		for (int i = 0; i < WIDTH; i++)
			v.w[i] = n;
		cr_assert_eq(weft_watch_send(tx, &v), 0);
	}
	weft_watch_tx_drop(tx);
	for (int i = 0; i < READERS; i++) {
		int st = 1;
		int64_t last = -1;
		wt_join_wait(j[i], &st, &last);
		cr_expect_eq(st, 0);
		cr_expect_eq(last, UPDATES, "reader %d ended at %" PRId64, i,
			     last);
		weft_join_drop(j[i]);
	}
	wt_rt_free(rt);
}

/*
 * A send wakes the receivers waiting when it began, not those that queue
 * while it is waking them (woken tasks that re-poll at once on another
 * worker and wait again): with more waiters than one wake batch, waking
 * until the list was empty never ended under that stream.
 */
#define RQ 40
static weft_watch_changed rq_f[RQ];
static weft_watch_rx *rq_rx[RQ];
static long rq_wakes;

static weft_waker rq_clone(const void *d);
static void rq_wake_by_ref(const void *d)
{
	int i = (int)(intptr_t)d, st;
	weft_waker k = rq_clone(d);
	weft_cx cx;

	if (++rq_wakes > 100 * RQ)
		return; /* the test fails below; stop the loop */
	weft_cx_init(&cx, &k);
	if (weft_watch_changed_poll(&rq_f[i], &cx, &st) == WEFT_READY) {
		weft_watch_changed_drop(&rq_f[i]);
		weft_watch_changed_init(&rq_f[i], rq_rx[i]);
		weft_watch_changed_poll(&rq_f[i], &cx, &st); /* waits again */
	}
}
static void rq_wake(const void *d) { rq_wake_by_ref(d); }
static void rq_drop(const void *d) { (void)d; }
static const weft_waker_vtable rq_vt = { rq_clone, rq_wake, rq_wake_by_ref,
					 rq_drop };
static weft_waker rq_clone(const void *d)
{
	return (weft_waker){ &rq_vt, d };
}

Test(watch, send_wakes_each_waiter_once_while_they_requeue)
{
	weft_watch_tx *tx;
	weft_watch_rx *r0;
	int v = 0, st;

	cr_assert_eq(weft_watch_new(sizeof(v), &v, &tx, &r0), 0);
	for (int i = 0; i < RQ; i++) {
		weft_waker k = rq_clone((void *)(intptr_t)i);
		weft_cx cx;

		cr_assert_eq(weft_watch_tx_subscribe(tx, &rq_rx[i]), 0);
		cr_assert_eq(weft_watch_changed_init(&rq_f[i], rq_rx[i]), 0);
		weft_cx_init(&cx, &k);
		cr_assert_eq(weft_watch_changed_poll(&rq_f[i], &cx, &st),
			     WEFT_PENDING);
	}
	v = 1;
	cr_expect_geq(weft_watch_send(tx, &v), 0);
	cr_expect_eq(rq_wakes, RQ, "%ld wakes for %d waiters", rq_wakes, RQ);
	for (int i = 0; i < RQ; i++) {
		weft_watch_changed_drop(&rq_f[i]);
		weft_watch_rx_drop(rq_rx[i]);
	}
	weft_watch_rx_drop(r0);
	weft_watch_tx_drop(tx);
}
