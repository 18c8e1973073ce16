/* SPDX-License-Identifier: MIT */
/*
 * weft_broadcast: order and subscription point, the ring's capacity
 * (rounded up) and exact lag counts, the close (drain, then -EPIPE) with
 * every sender and receiver drop order, the drop rule for a pending recv
 * (no waiter left, nothing lost), wakes of more receivers than one wake
 * round holds, bad input changing nothing, the blocking recv on a plain
 * thread (and -EDEADLK on a worker), and tasks on several workers
 * receiving every value.
 */
#include "io_helpers.h"

struct hand {
	weft_broadcast_recv r;
	struct wt_probe pr;
	int value;
	uint64_t missed;
};

static void hand_init(struct hand *h, weft_broadcast_rx *rx)
{
	wt_probe_init(&h->pr);
	h->value = -1;
	h->missed = 0;
	cr_assert_eq(weft_broadcast_recv_init(&h->r, rx, &h->value,
					      &h->missed), 0);
}

/* 1: pending; else the status. */
static int hand_poll(struct hand *h)
{
	int st = 1;

	if (weft_broadcast_recv_poll(&h->r, &h->pr.cx, &st) == WEFT_PENDING)
		return 1;
	return st;
}

static void hand_fini(struct hand *h)
{
	weft_broadcast_recv_drop(&h->r);
	wt_probe_fini(&h->pr);
}

static void send_int(weft_broadcast_tx *tx, int v, int receivers)
{
	cr_assert_eq(weft_broadcast_send(tx, &v), receivers, "send %d", v);
}

/* try_recv asserting a value. */
static void expect_value(weft_broadcast_rx *rx, int want)
{
	int v = -1;
	int st = weft_broadcast_try_recv(rx, &v, NULL);

	cr_assert_eq(st, 0, "want %d, got status %d", want, st);
	cr_assert_eq(v, want);
}

static void expect_lag(weft_broadcast_rx *rx, uint64_t want)
{
	uint64_t missed = 0;

	cr_assert_eq(weft_broadcast_try_recv(rx, NULL, &missed), -EOVERFLOW);
	cr_assert_eq(missed, want, "missed %" PRIu64 ", want %" PRIu64,
		     missed, want);
}

WT_TEST(broadcast, order_and_subscribe_point)
{
	weft_broadcast_tx *tx;
	weft_broadcast_rx *a, *b;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 16, &tx, &a), 0);
	cr_expect_eq(weft_broadcast_try_recv(a, NULL, NULL), -EAGAIN);
	send_int(tx, 1, 1);
	send_int(tx, 2, 1);
	cr_assert_eq(weft_broadcast_subscribe(tx, &b), 0);
	send_int(tx, 3, 2);
	expect_value(a, 1);
	expect_value(a, 2);
	expect_value(a, 3);
	expect_value(b, 3); /* b sees only what was sent after it */
	cr_expect_eq(weft_broadcast_try_recv(a, NULL, NULL), -EAGAIN);
	cr_expect_eq(weft_broadcast_try_recv(b, NULL, NULL), -EAGAIN);
	weft_broadcast_rx_drop(a);
	weft_broadcast_rx_drop(b);
	weft_broadcast_tx_drop(tx);
	wt_leak_check();
}

WT_TEST(broadcast, capacity_rounds_up_and_lag_is_exact)
{
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx, *slow;

	/* 3 rounds up to 4: four values fit, the fifth overwrites. */
	cr_assert_eq(weft_broadcast_new(sizeof(int), 3, &tx, &rx), 0);
	cr_assert_eq(weft_broadcast_subscribe(tx, &slow), 0);
	for (int i = 0; i < 4; i++)
		send_int(tx, i, 2);
	for (int i = 0; i < 4; i++)
		expect_value(rx, i);
	send_int(tx, 4, 2);
	expect_lag(slow, 1);
	for (int i = 1; i <= 4; i++)
		expect_value(slow, i);
	/* Many laps behind: missed = sent - retained. */
	for (int i = 5; i < 1005; i++)
		send_int(tx, i, 2);
	expect_lag(slow, 1000 - 4);
	for (int i = 1001; i < 1005; i++)
		expect_value(slow, i);
	/* rx stopped before 4: it missed 4..1000. */
	expect_lag(rx, 997);
	/* A lag with @missed NULL still moves the cursor. */
	send_int(tx, 1005, 2);
	for (int i = 1006; i < 1010; i++)
		send_int(tx, i, 2);
	cr_expect_eq(weft_broadcast_try_recv(slow, NULL, NULL), -EOVERFLOW);
	expect_value(slow, 1006);
	weft_broadcast_rx_drop(rx);
	weft_broadcast_rx_drop(slow);
	weft_broadcast_tx_drop(tx);
	wt_leak_check();
}

WT_TEST(broadcast, lag_through_the_future)
{
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;
	struct hand h;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 2, &tx, &rx), 0);
	for (int i = 0; i < 7; i++)
		send_int(tx, i, 1);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), -EOVERFLOW);
	cr_expect_eq(h.missed, 5);
	cr_expect_eq(hand_poll(&h), -EALREADY);
	hand_fini(&h);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 0);
	cr_expect_eq(h.value, 5);
	hand_fini(&h);
	weft_broadcast_rx_drop(rx);
	weft_broadcast_tx_drop(tx);
	wt_leak_check();
}

WT_TEST(broadcast, send_without_receivers_stores_nothing)
{
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;
	int v = 7;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 4, &tx, &rx), 0);
	weft_broadcast_rx_drop(rx);
	cr_expect_eq(weft_broadcast_send(tx, &v), -EPIPE);
	cr_assert_eq(weft_broadcast_subscribe(tx, &rx), 0);
	cr_expect_eq(weft_broadcast_try_recv(rx, NULL, NULL), -EAGAIN,
		     "a refused send stored its value");
	send_int(tx, 8, 1);
	expect_value(rx, 8);
	weft_broadcast_tx_drop(tx);
	cr_expect_eq(weft_broadcast_try_recv(rx, NULL, NULL), -EPIPE);
	weft_broadcast_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(broadcast, close_drains_then_epipe)
{
	weft_broadcast_tx *tx, *tx2;
	weft_broadcast_rx *rx, *lagger;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 4, &tx, &rx), 0);
	cr_assert_eq(weft_broadcast_tx_clone(tx, &tx2), 0);
	cr_assert_eq(weft_broadcast_subscribe(tx2, &lagger), 0);
	send_int(tx, 1, 2);
	weft_broadcast_tx_drop(tx);
	cr_expect_eq(weft_broadcast_try_recv(rx, NULL, NULL), 0);
	cr_expect_eq(weft_broadcast_try_recv(rx, NULL, NULL), -EAGAIN,
		     "closed while a clone of the sender lives");
	for (int i = 2; i < 8; i++)
		send_int(tx2, i, 2);
	weft_broadcast_tx_drop(tx2);
	/* Closed: what is retained first, a lag before it if any. */
	expect_lag(lagger, 3);
	for (int i = 4; i < 8; i++)
		expect_value(lagger, i);
	cr_expect_eq(weft_broadcast_try_recv(lagger, NULL, NULL), -EPIPE);
	cr_expect_eq(weft_broadcast_try_recv(lagger, NULL, NULL), -EPIPE);
	weft_broadcast_rx_drop(lagger);
	expect_lag(rx, 2); /* 2 and 3 */
	expect_value(rx, 4);
	weft_broadcast_rx_drop(rx); /* the last handle frees (LSan) */
	wt_leak_check();
}

WT_TEST(broadcast, subscribe_after_close)
{
	weft_broadcast_tx *tx, *keep;
	weft_broadcast_rx *rx, *late;

	cr_assert_eq(weft_broadcast_new(0, 1, &tx, &rx), 0);
	cr_assert_eq(weft_broadcast_tx_clone(tx, &keep), 0);
	cr_expect_eq(weft_broadcast_send(tx, NULL), 1, "value_size 0");
	weft_broadcast_tx_drop(tx);
	cr_assert_eq(weft_broadcast_subscribe(keep, &late), 0);
	weft_broadcast_tx_drop(keep);
	cr_expect_eq(weft_broadcast_try_recv(late, NULL, NULL), -EPIPE);
	cr_expect_eq(weft_broadcast_try_recv(rx, NULL, NULL), 0);
	cr_expect_eq(weft_broadcast_try_recv(rx, NULL, NULL), -EPIPE);
	weft_broadcast_rx_drop(late);
	weft_broadcast_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(broadcast, pending_recv_woken_by_send_and_close)
{
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;
	struct hand h;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 4, &tx, &rx), 0);
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	cr_expect_eq(hand_poll(&h), 1, "a second poll stays queued");
	send_int(tx, 42, 1);
	cr_expect_eq(wt_probe_wakes(&h.pr), 1);
	cr_expect_eq(hand_poll(&h), 0);
	cr_expect_eq(h.value, 42);
	hand_fini(&h);

	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	weft_broadcast_tx_drop(tx);
	cr_expect_eq(wt_probe_wakes(&h.pr), 1, "close woke nobody");
	cr_expect_eq(hand_poll(&h), -EPIPE);
	hand_fini(&h);
	weft_broadcast_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(broadcast, dropped_recv_leaves_no_waiter_loses_nothing)
{
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;
	struct hand h;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 4, &tx, &rx), 0);
	/* Dropped while queued. */
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	weft_broadcast_recv_drop(&h.r);
	/* Its memory may be reused at once: a node left queued would
	 * send the next send through these bytes. */
	memset(&h.r, 0xa5, sizeof(h.r));
	send_int(tx, 5, 1);
	cr_expect_eq(wt_probe_wakes(&h.pr), 0, "a dropped recv was woken");
	wt_probe_fini(&h.pr);
	expect_value(rx, 5);
	/* Woken, then dropped before it polled again: the value stays. */
	hand_init(&h, rx);
	cr_expect_eq(hand_poll(&h), 1);
	send_int(tx, 6, 1);
	cr_expect_eq(wt_probe_wakes(&h.pr), 1);
	hand_fini(&h);
	expect_value(rx, 6);
	/* Never polled, and dropped twice. */
	hand_init(&h, rx);
	hand_fini(&h);
	weft_broadcast_recv_drop(&h.r);
	send_int(tx, 7, 1);
	expect_value(rx, 7);
	weft_broadcast_rx_drop(rx);
	weft_broadcast_tx_drop(tx);
	wt_leak_check();
}

enum { MANY = 100 }; /* more than one wake round (WEFT__WAKESET_MAX) */

WT_TEST(broadcast, one_send_wakes_many_receivers)
{
	weft_broadcast_tx *tx;
	weft_broadcast_rx *first, *rx[MANY];
	static struct hand h[MANY];

	cr_assert_eq(weft_broadcast_new(sizeof(int), 2, &tx, &first), 0);
	for (int i = 0; i < MANY; i++) {
		cr_assert_eq(weft_broadcast_subscribe(tx, &rx[i]), 0);
		hand_init(&h[i], rx[i]);
		cr_assert_eq(hand_poll(&h[i]), 1);
	}
	send_int(tx, 9, MANY + 1);
	for (int i = 0; i < MANY; i++) {
		cr_expect_eq(wt_probe_wakes(&h[i].pr), 1, "receiver %d", i);
		cr_expect_eq(hand_poll(&h[i]), 0);
		cr_expect_eq(h[i].value, 9);
		hand_fini(&h[i]);
		hand_init(&h[i], rx[i]);
		cr_assert_eq(hand_poll(&h[i]), 1);
	}
	weft_broadcast_tx_drop(tx);
	for (int i = 0; i < MANY; i++) {
		cr_expect_eq(hand_poll(&h[i]), -EPIPE, "receiver %d", i);
		hand_fini(&h[i]);
		weft_broadcast_rx_drop(rx[i]);
	}
	expect_value(first, 9);
	weft_broadcast_rx_drop(first);
	wt_leak_check();
}

WT_TEST(broadcast, bad_input_changes_nothing)
{
	weft_broadcast_tx *tx = NULL, *t2 = NULL;
	weft_broadcast_rx *rx = NULL, *r2 = NULL;
	weft_broadcast_recv r = { 0 };
	struct wt_probe pr;
	int st = 1, v = 3;

	cr_expect_eq(weft_broadcast_new(4, 4, NULL, &rx), -EINVAL);
	cr_expect_eq(weft_broadcast_new(4, 4, &tx, NULL), -EINVAL);
	cr_expect_eq(weft_broadcast_new(4, 0, &tx, &rx), -EINVAL);
	cr_expect_eq(weft_broadcast_new(4, WEFT_BROADCAST_MAX_CAPACITY + 1,
					&tx, &rx), -EINVAL);
	cr_expect_eq(weft_broadcast_new(WEFT_FUTURE_MAX_SIZE + 1, 4, &tx,
					&rx), -EINVAL);
	cr_expect(!tx && !rx, "a failed new set a handle");
	cr_assert_eq(weft_broadcast_new(sizeof(int), 4, &tx, &rx), 0);
	cr_expect_eq(weft_broadcast_tx_clone(NULL, &t2), -EINVAL);
	cr_expect_eq(weft_broadcast_tx_clone(tx, NULL), -EINVAL);
	cr_expect_eq(weft_broadcast_subscribe(NULL, &r2), -EINVAL);
	cr_expect_eq(weft_broadcast_subscribe(tx, NULL), -EINVAL);
	cr_expect(!t2 && !r2);
	cr_expect_eq(weft_broadcast_send(NULL, &v), -EINVAL);
	cr_expect_eq(weft_broadcast_send(tx, NULL), -EINVAL);
	cr_expect_eq(weft_broadcast_try_recv(rx, NULL, NULL), -EAGAIN,
		     "a refused send stored a value");
	cr_expect_eq(weft_broadcast_try_recv(NULL, &v, NULL), -EINVAL);
	cr_expect_eq(weft_broadcast_recv_blocking(NULL, &v, NULL), -EINVAL);
	cr_expect_eq(weft_broadcast_recv_init(NULL, rx, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_broadcast_recv_init(&r, NULL, NULL, NULL), -EINVAL);
	wt_probe_init(&pr);
	/* Unprepared (zeroed), NULL future, NULL cx: READY -EINVAL. */
	cr_expect_eq(weft_broadcast_recv_poll(&r, &pr.cx, &st), WEFT_READY);
	cr_expect_eq(st, -EINVAL);
	cr_expect_eq(weft_broadcast_recv_poll(NULL, &pr.cx, &st), WEFT_READY);
	cr_expect_eq(weft_broadcast_recv_init(&r, rx, &v, NULL), 0);
	st = 1;
	cr_expect_eq(weft_broadcast_recv_poll(&r, NULL, &st), WEFT_READY);
	cr_expect_eq(st, -EINVAL);
	/* ... and consumed nothing: the future still works. */
	send_int(tx, 11, 1);
	cr_expect_eq(weft_broadcast_recv_poll(&r, &pr.cx, &st), WEFT_READY);
	cr_expect_eq(st, 0);
	cr_expect_eq(v, 11);
	weft_broadcast_recv_drop(&r);
	weft_broadcast_recv_drop(NULL);
	weft_broadcast_tx_drop(NULL);
	weft_broadcast_rx_drop(NULL);
	wt_probe_fini(&pr);
	weft_broadcast_rx_drop(rx);
	weft_broadcast_tx_drop(tx);
	wt_leak_check();
}

/* --- plain threads ------------------------------------------------------ */

struct blocker {
	weft_broadcast_rx *rx;
	int n;          /* receives to make */
	int values[4];
	int status[4];
	atomic_int started;
};

static void *blocker_main(void *arg)
{
	struct blocker *b = arg;

	atomic_store(&b->started, 1);
	for (int i = 0; i < b->n; i++)
		b->status[i] = weft_broadcast_recv_blocking(b->rx, &b->values[i],
							    NULL);
	return NULL;
}

WT_TEST(broadcast, blocking_recv_on_a_plain_thread)
{
	weft_broadcast_tx *tx;
	struct blocker b = { .n = 3 };
	pthread_t t;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 4, &tx, &b.rx), 0);
	send_int(tx, 1, 1); /* there already: no wait */
	cr_assert_eq(pthread_create(&t, NULL, blocker_main, &b), 0);
	wt_wait_atomic_ge(&b.started, 1, 5000);
	wt_sleep_ms(20); /* most likely asleep in the second recv now */
	send_int(tx, 2, 1);
	weft_broadcast_tx_drop(tx); /* the third recv: -EPIPE */
	pthread_join(t, NULL);
	cr_expect_eq(b.status[0], 0);
	cr_expect_eq(b.values[0], 1);
	cr_expect_eq(b.status[1], 0);
	cr_expect_eq(b.values[1], 2);
	cr_expect_eq(b.status[2], -EPIPE);
	weft_broadcast_rx_drop(b.rx);
	wt_leak_check();
}

static int64_t blocking_on_worker(void *arg)
{
	int v;

	return weft_broadcast_recv_blocking(arg, &v, NULL);
}

WT_RT_TEST(broadcast, blocking_recv_refused_on_a_worker)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 4, &tx, &rx), 0);
	send_int(tx, 1, 1);
	cr_expect_eq(wt_run_on_worker(rt, blocking_on_worker, rx), -EDEADLK);
	expect_value(rx, 1); /* nothing was received there */
	weft_broadcast_rx_drop(rx);
	weft_broadcast_tx_drop(tx);
	wt_rt_free(rt);
}

/* --- tasks -------------------------------------------------------------- */

enum { LISTENERS = 6, VALUES = 300 };

struct listener {
	weft_broadcast_rx *rx;
	atomic_int *done;
	atomic_llong *sum;
	int expect, value, polled, status;
	bool waiting;
	weft_broadcast_recv r;
};

/* Receives until -EPIPE; checks order (capacity holds every value, so
 * no lag); output: its final status. */
static weft_poll listener_poll(void *self, weft_cx *cx, void *out)
{
	struct listener *l = self;
	int st;

	for (;;) {
		if (!l->waiting) {
			weft_broadcast_recv_init(&l->r, l->rx, &l->value,
						 NULL);
			l->waiting = true;
		}
		if (weft_broadcast_recv_poll(&l->r, cx, &st) == WEFT_PENDING)
			return WEFT_PENDING;
		l->waiting = false;
		if (st == -EPIPE)
			break;
		WT_CHECK(st == 0, "recv: %d", st);
		WT_CHECK(l->value == l->expect, "got %d, want %d", l->value,
			 l->expect);
		l->expect++;
		atomic_fetch_add(l->sum, l->value);
	}
	atomic_fetch_add(l->done, 1);
	*(int64_t *)out = l->expect;
	return WEFT_READY;
}

static void listener_drop(void *self)
{
	struct listener *l = self;

	if (l->waiting)
		weft_broadcast_recv_drop(&l->r);
	weft_broadcast_rx_drop(l->rx);
}

static const weft_future_desc listener_desc = {
	.poll = listener_poll,
	.drop = listener_drop,
	.size = sizeof(struct listener),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST_T(broadcast, tasks_receive_everything_then_close, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_broadcast_tx *tx, *clones[3];
	weft_broadcast_rx *rx;
	weft_join *j[LISTENERS];
	atomic_int done = 0;
	atomic_llong sum = 0;

	cr_assert_eq(weft_broadcast_new(sizeof(int), VALUES, &tx, &rx), 0);
	for (int i = 0; i < LISTENERS; i++) {
		struct listener l = { .done = &done, .sum = &sum };
		cr_assert_eq(weft_broadcast_subscribe(tx, &l.rx), 0);
		wt_spawn(rt, &listener_desc, &l, &j[i]);
	}
	weft_broadcast_rx_drop(rx);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(weft_broadcast_tx_clone(tx, &clones[i]), 0);
	for (int v = 0; v < VALUES; v++) {
		send_int(clones[v % 3], v, LISTENERS);
		if (v % 50 == 0)
			wt_sleep_ms(1); /* let some of them wait */
	}
	/* Senders leave while the listeners wait; the last one closes. */
	weft_broadcast_tx_drop(tx);
	for (int i = 0; i < 2; i++)
		weft_broadcast_tx_drop(clones[i]);
	wt_sleep_ms(10);
	cr_expect_eq(atomic_load(&done), 0, "closed with a sender left");
	weft_broadcast_tx_drop(clones[2]);
	for (int i = 0; i < LISTENERS; i++) {
		int st = 1;
		int64_t got = -1;
		wt_join_wait(j[i], &st, &got);
		cr_expect_eq(st, 0);
		cr_expect_eq(got, VALUES, "listener %d stopped at %" PRId64,
			     i, got);
		weft_join_drop(j[i]);
	}
	cr_expect_eq(atomic_load(&sum),
		     (long long)LISTENERS * VALUES * (VALUES - 1) / 2);
	wt_rt_free(rt);
}

WT_RT_TEST(broadcast, aborted_listeners_release_everything)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_broadcast_tx *tx;
	weft_broadcast_rx *rx;
	weft_join *j[LISTENERS];
	atomic_int done = 0;
	atomic_llong sum = 0;

	cr_assert_eq(weft_broadcast_new(sizeof(int), 8, &tx, &rx), 0);
	for (int i = 0; i < LISTENERS; i++) {
		struct listener l = { .done = &done, .sum = &sum };
		cr_assert_eq(weft_broadcast_subscribe(tx, &l.rx), 0);
		wt_spawn(rt, &listener_desc, &l, &j[i]);
	}
	weft_broadcast_rx_drop(rx);
	wt_sleep_ms(10);
	for (int i = 0; i < LISTENERS; i++) {
		int st = 1;
		weft_task_abort(j[i]);
		cr_assert(wt_join_wait_ms(j[i], &st, NULL, 5000));
		cr_expect_eq(st, -ECANCELED);
		weft_join_drop(j[i]);
	}
	/* Every receiver went with its task: nobody to send to. */
	int v = 1;
	cr_expect_eq(weft_broadcast_send(tx, &v), -EPIPE);
	weft_broadcast_tx_drop(tx);
	wt_rt_free(rt); /* and nothing leaked */
}
