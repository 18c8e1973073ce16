/* SPDX-License-Identifier: MIT */
/*
 * The oneshot channel: send/recv in both orders, a dropped sender gives
 * -EPIPE to the receiver, a dropped receiver makes send fail with -EPIPE,
 * wakers are replaced and released, and sends from foreign threads reach
 * tasks. The channel needs no runtime, so half of these poll it from the
 * test thread with a parker waker.
 */
#include "helpers.h"

struct val {
	uint64_t a, b;
};

/* Poll @rx once from this thread with @w. */
static weft_poll poll_rx(weft_oneshot_rx *rx, const weft_waker *w, int *st,
			 void *out)
{
	weft_cx cx;
	weft_cx_init(&cx, w);
	return weft_oneshot_recv_poll(rx, &cx, st, out);
}

/* Poll until READY, waiting on a parker between polls. */
static int recv_wait(weft_oneshot_rx *rx, void *out)
{
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	int st = 1;
	while (poll_rx(rx, &w, &st, out) == WEFT_PENDING)
		cr_assert(wt_parker_wait(p, 5000), "receiver never woken");
	weft_waker_drop(&w);
	wt_parker_release(p);
	return st;
}

WT_TEST(oneshot, new_rejects_bad_args)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_expect_eq(weft_oneshot_new(8, NULL, &rx), -EINVAL);
	cr_expect_eq(weft_oneshot_new(8, &tx, NULL), -EINVAL);
	cr_expect_eq(weft_oneshot_new(WEFT_FUTURE_MAX_SIZE + 1, &tx, &rx),
		     -EINVAL);
	cr_expect_eq(weft_oneshot_send(NULL, "x"), -EINVAL);
	weft_oneshot_tx_drop(NULL);
	weft_oneshot_rx_drop(NULL);
	wt_leak_check();
}

WT_TEST(oneshot, send_then_recv)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(struct val), &tx, &rx), 0);
	struct val v = { 0x1122334455667788ull, 42 };
	cr_expect_eq(weft_oneshot_send(tx, &v), 0);
	v.a = v.b = 0; /* copied at send */
	struct val got = { 0 };
	weft_waker noop = weft_waker_noop();
	int st = 1;
	cr_expect_eq(poll_rx(rx, &noop, &st, &got), WEFT_READY);
	cr_expect_eq(st, 0);
	cr_expect_eq(got.a, 0x1122334455667788ull);
	cr_expect_eq(got.b, 42);
	got.a = 7;
	cr_expect_eq(poll_rx(rx, &noop, &st, &got), WEFT_READY);
	cr_expect_eq(st, -EALREADY);
	cr_expect_eq(got.a, 7, "value delivered twice");
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

struct send_later {
	weft_oneshot_tx *tx;
	struct val v;
	unsigned delay_ms;
	int drop_instead;
	int result;
};

static void *send_later_thread(void *arg)
{
	struct send_later *s = arg;
	wt_sleep_ms(s->delay_ms);
	if (s->drop_instead)
		weft_oneshot_tx_drop(s->tx);
	else
		s->result = weft_oneshot_send(s->tx, &s->v);
	return NULL;
}

WT_TEST(oneshot, pending_recv_woken_by_send)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(struct val), &tx, &rx), 0);
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	int st = 1;
	struct val got = { 0 };
	cr_assert_eq(poll_rx(rx, &w, &st, &got), WEFT_PENDING);
	cr_expect_eq(atomic_load(&p->refs), 3, "receiver kept no waker");

	struct send_later s = { .tx = tx, .v = { 5, 6 }, .delay_ms = 10,
				.result = 1 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, send_later_thread, &s), 0);
	cr_expect(wt_parker_wait(p, 5000), "send did not wake the receiver");
	pthread_join(th, NULL);
	cr_expect_eq(s.result, 0);
	cr_expect_eq(poll_rx(rx, &w, &st, &got), WEFT_READY);
	cr_expect_eq(st, 0);
	cr_expect_eq(got.a, 5);
	cr_expect_eq(got.b, 6);
	weft_oneshot_rx_drop(rx);
	weft_waker_drop(&w);
	cr_expect_eq(atomic_load(&p->refs), 1, "channel leaked the waker");
	wt_parker_release(p);
	wt_leak_check();
}

WT_TEST(oneshot, tx_dropped_before_poll_is_epipe)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(8, &tx, &rx), 0);
	weft_oneshot_tx_drop(tx);
	uint64_t out = 99;
	weft_waker noop = weft_waker_noop();
	int st = 1;
	cr_expect_eq(poll_rx(rx, &noop, &st, &out), WEFT_READY);
	cr_expect_eq(st, -EPIPE);
	cr_expect_eq(out, 99, "out written without a value");
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(oneshot, tx_dropped_while_pending_wakes_with_epipe)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(8, &tx, &rx), 0);
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	int st = 1;
	uint64_t out = 0;
	cr_assert_eq(poll_rx(rx, &w, &st, &out), WEFT_PENDING);
	struct send_later s = { .tx = tx, .delay_ms = 5, .drop_instead = 1 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, send_later_thread, &s), 0);
	cr_expect(wt_parker_wait(p, 5000), "tx drop did not wake");
	pthread_join(th, NULL);
	cr_expect_eq(poll_rx(rx, &w, &st, &out), WEFT_READY);
	cr_expect_eq(st, -EPIPE);
	weft_oneshot_rx_drop(rx);
	weft_waker_drop(&w);
	cr_expect_eq(atomic_load(&p->refs), 1);
	wt_parker_release(p);
	wt_leak_check();
}

WT_TEST(oneshot, rx_dropped_send_is_epipe)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	/* The value is a pointer the sender owns: after -EPIPE it is still
	 * ours to free (ASan reports a double free or a leak otherwise). */
	cr_assert_eq(weft_oneshot_new(sizeof(char *), &tx, &rx), 0);
	weft_oneshot_rx_drop(rx);
	char *owned = strdup("still mine");
	cr_assert_not_null(owned);
	cr_expect_eq(weft_oneshot_send(tx, &owned), -EPIPE);
	cr_expect_str_eq(owned, "still mine");
	free(owned);
	wt_leak_check();
}

WT_TEST(oneshot, unreceived_value_is_discarded)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(1000, &tx, &rx), 0);
	char buf[1000];
	memset(buf, 'x', sizeof(buf));
	cr_expect_eq(weft_oneshot_send(tx, buf), 0);
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(oneshot, zero_size_value)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(0, &tx, &rx), 0);
	char dummy = 0;
	cr_expect_eq(weft_oneshot_send(tx, &dummy), 0);
	int st = recv_wait(rx, NULL);
	cr_expect_eq(st, 0);
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

/*
 * A NULL value with a non-zero size is refused and loses nothing: the
 * sender stays usable (it used to copy value_size bytes from a static
 * byte: an out-of-bounds read, then the sender was gone).
 */
WT_TEST(oneshot, send_null_value_is_einval_and_keeps_sender)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(struct val), &tx, &rx), 0);
	cr_expect_eq(weft_oneshot_send(tx, NULL), -EINVAL);
	weft_waker noop = weft_waker_noop();
	int st = 1;
	cr_expect_eq(poll_rx(rx, &noop, &st, NULL), WEFT_PENDING,
		     "the refused send closed the channel");
	struct val v = { 7, 9 }, got = { 0 };
	cr_expect_eq(weft_oneshot_send(tx, &v), 0);
	cr_expect_eq(recv_wait(rx, &got), 0);
	cr_expect(got.a == 7 && got.b == 9);
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(oneshot, send_null_value_then_drop_is_epipe)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	/* 64 MiB: far past any static byte, so the old read faulted. */
	cr_assert_eq(weft_oneshot_new((size_t)64 << 20, &tx, &rx), 0);
	cr_expect_eq(weft_oneshot_send(tx, NULL), -EINVAL);
	weft_oneshot_tx_drop(tx);
	cr_expect_eq(recv_wait(rx, NULL), -EPIPE);
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(oneshot, zero_size_value_may_be_null)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(0, &tx, &rx), 0);
	cr_expect_eq(weft_oneshot_send(tx, NULL), 0);
	cr_expect_eq(recv_wait(rx, NULL), 0);
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(oneshot, large_value_copied_whole)
{
	enum { N = 65536 + 13 };
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(N, &tx, &rx), 0);
	unsigned char *in = malloc(N), *out = calloc(1, N + 16);
	cr_assert(in && out);
	for (size_t i = 0; i < N; i++)
		in[i] = (unsigned char)(i * 31 + 7);
	cr_expect_eq(weft_oneshot_send(tx, in), 0);
	memset(in, 0, N);
	cr_expect_eq(recv_wait(rx, out), 0);
	size_t bad = 0;
	for (size_t i = 0; i < N; i++)
		bad += out[i] != (unsigned char)(i * 31 + 7);
	cr_expect_eq(bad, 0);
	for (size_t i = N; i < N + 16; i++)
		cr_expect_eq(out[i], 0, "wrote past value_size");
	weft_oneshot_rx_drop(rx);
	free(in);
	free(out);
	wt_leak_check();
}

WT_TEST(oneshot, null_out_discards)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(8, &tx, &rx), 0);
	uint64_t v = 3;
	cr_expect_eq(weft_oneshot_send(tx, &v), 0);
	cr_expect_eq(recv_wait(rx, NULL), 0);
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(oneshot, latest_waker_is_woken)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(8, &tx, &rx), 0);
	struct wt_parker *pa = wt_parker_new(), *pb = wt_parker_new();
	weft_waker wa = wt_parker_waker(pa), wb = wt_parker_waker(pb);
	int st;
	uint64_t out = 0, v = 11;
	cr_assert_eq(poll_rx(rx, &wa, &st, &out), WEFT_PENDING);
	cr_assert_eq(poll_rx(rx, &wa, &st, &out), WEFT_PENDING);
	cr_assert_eq(poll_rx(rx, &wb, &st, &out), WEFT_PENDING);
	cr_expect_eq(atomic_load(&pa->refs), 2, "replaced waker kept");
	cr_expect_eq(weft_oneshot_send(tx, &v), 0);
	cr_expect(wt_parker_wait(pb, 5000));
	cr_expect_eq(poll_rx(rx, &wb, &st, &out), WEFT_READY);
	cr_expect_eq(out, 11);
	weft_oneshot_rx_drop(rx);
	weft_waker_drop(&wa);
	weft_waker_drop(&wb);
	cr_expect_eq(atomic_load(&pa->refs), 1);
	cr_expect_eq(atomic_load(&pb->refs), 1);
	wt_parker_release(pa);
	wt_parker_release(pb);
	wt_leak_check();
}

WT_TEST(oneshot, rx_drop_releases_waker)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(8, &tx, &rx), 0);
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	int st;
	uint64_t out, v = 1;
	cr_assert_eq(poll_rx(rx, &w, &st, &out), WEFT_PENDING);
	weft_oneshot_rx_drop(rx);
	cr_expect_eq(atomic_load(&p->refs), 2, "rx drop kept the waker");
	cr_expect_eq(weft_oneshot_send(tx, &v), -EPIPE);
	cr_expect_eq(atomic_load(&p->wakes), 0, "dropped receiver woken");
	weft_waker_drop(&w);
	wt_parker_release(p);
	wt_leak_check();
}

/* Send racing the receiver's poll, many times. */
struct race {
	weft_oneshot_tx *tx;
	atomic_int *go;
	uint64_t v;
};

static void *race_sender(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(r->go))
		;
	if (weft_oneshot_send(r->tx, &r->v))
		abort();
	return NULL;
}

WT_TEST_T(oneshot, send_races_poll, 30)
{
	struct wt_parker *p = wt_parker_new();
	weft_waker w = wt_parker_waker(p);
	for (int i = 0; i < 2000; i++) {
		weft_oneshot_tx *tx;
		weft_oneshot_rx *rx;
		atomic_int go = 0;
		cr_assert_eq(weft_oneshot_new(8, &tx, &rx), 0);
		struct race r = { tx, &go, (uint64_t)i * 3 + 1 };
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, race_sender, &r), 0);
		int st = 1;
		uint64_t out = 0;
		atomic_store(&go, 1);
		while (poll_rx(rx, &w, &st, &out) == WEFT_PENDING)
			cr_assert(wt_parker_wait(p, 5000),
				  "iteration %d: wake lost", i);
		pthread_join(th, NULL);
		cr_assert_eq(st, 0);
		cr_assert_eq(out, (uint64_t)i * 3 + 1);
		weft_oneshot_rx_drop(rx);
		/* Discard a wake that arrived after the last poll. */
		(void)wt_parker_wait(p, 0);
	}
	weft_waker_drop(&w);
	cr_expect_eq(atomic_load(&p->refs), 1);
	wt_parker_release(p);
	wt_leak_check();
}

/* --- with tasks ---------------------------------------------------------- */

/* Receives one uint64_t; output: value, or the negative status. */
struct receiver {
	weft_oneshot_rx *rx;
	struct wt_counters *c;
};

static weft_poll receiver_poll(void *self, weft_cx *cx, void *out)
{
	struct receiver *s = self;
	int st = 1;
	uint64_t v = 0;
	if (s->c)
		atomic_fetch_add(&s->c->polls, 1);
	if (weft_oneshot_recv_poll(s->rx, cx, &st, &v) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int64_t *)out = st ? st : (int64_t)v;
	return WEFT_READY;
}

static void receiver_drop(void *self)
{
	struct receiver *s = self;
	weft_oneshot_rx_drop(s->rx);
	if (s->c)
		atomic_fetch_add(&s->c->drops, 1);
}

static const weft_future_desc receiver_desc = {
	.poll = receiver_poll,
	.drop = receiver_drop,
	.size = sizeof(struct receiver),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(oneshot, task_receives_from_foreign_thread)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	weft_oneshot_tx *tx;
	struct receiver r = { .c = &c };
	cr_assert_eq(weft_oneshot_new(8, &tx, &r.rx), 0);
	weft_join *j;
	wt_spawn(rt, &receiver_desc, &r, &j);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	struct send_later s = { .tx = tx, .v = { 4242, 0 }, .delay_ms = 2,
				.result = 1 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, send_later_thread, &s), 0);
	pthread_join(th, NULL);
	cr_expect_eq(s.result, 0);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 4242);
	weft_join_drop(j);
	wt_rt_free(rt);
}

WT_RT_TEST(oneshot, task_sees_epipe_when_tx_dropped)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c = { 0 };
	weft_oneshot_tx *tx;
	struct receiver r = { .c = &c };
	cr_assert_eq(weft_oneshot_new(8, &tx, &r.rx), 0);
	weft_join *j;
	wt_spawn(rt, &receiver_desc, &r, &j);
	cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
	weft_oneshot_tx_drop(tx);
	int st = 1;
	int64_t out = 0;
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, -EPIPE);
	weft_join_drop(j);
	wt_rt_free(rt);
}

/* Sends one value from a task, after yielding a few times. */
struct sender {
	weft_oneshot_tx *tx;
	uint64_t v;
	unsigned yields;
	weft_yield y;
};

static weft_poll sender_poll(void *self, weft_cx *cx, void *out)
{
	struct sender *s = self;
	while (s->yields) {
		if (weft_yield_poll(&s->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		s->yields--;
		s->y = (weft_yield)WEFT_YIELD_INIT;
	}
	int r = weft_oneshot_send(s->tx, &s->v);
	s->tx = NULL;
	*(int64_t *)out = r;
	return WEFT_READY;
}

static void sender_drop(void *self)
{
	struct sender *s = self;
	weft_oneshot_tx_drop(s->tx); /* NULL after a send */
}

static const weft_future_desc sender_desc = {
	.poll = sender_poll,
	.drop = sender_drop,
	.size = sizeof(struct sender),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST(oneshot, task_to_task)
{
	enum { PAIRS = 200 };
	weft_runtime *rt = wt_rt_new(cfg);
	weft_join *jr[PAIRS], *js[PAIRS];
	for (int i = 0; i < PAIRS; i++) {
		weft_oneshot_tx *tx;
		struct receiver r = { 0 };
		cr_assert_eq(weft_oneshot_new(8, &tx, &r.rx), 0);
		struct sender s = { .tx = tx, .v = (uint64_t)i * 1000 + 1,
				    .yields = (unsigned)i % 3,
				    .y = WEFT_YIELD_INIT };
		/* Alternate which side starts first. */
		if (i & 1) {
			wt_spawn(rt, &receiver_desc, &r, &jr[i]);
			wt_spawn(rt, &sender_desc, &s, &js[i]);
		} else {
			wt_spawn(rt, &sender_desc, &s, &js[i]);
			wt_spawn(rt, &receiver_desc, &r, &jr[i]);
		}
	}
	for (int i = 0; i < PAIRS; i++) {
		int st = 1;
		int64_t out = 0;
		wt_join_wait(js[i], &st, &out);
		cr_expect_eq(st, 0);
		cr_expect_eq(out, 0, "send %d: %lld", i, (long long)out);
		wt_join_wait(jr[i], &st, &out);
		cr_expect_eq(st, 0);
		cr_expect_eq(out, i * 1000 + 1, "pair %d", i);
		weft_join_drop(js[i]);
		weft_join_drop(jr[i]);
	}
	wt_rt_free(rt);
}

/* Many receivers, senders on several foreign threads. */
#define MANY 1000
static weft_oneshot_tx *many_tx[MANY];

static void *many_sender(void *arg)
{
	int t = (int)(intptr_t)arg;
	/* Thread t sends i = t, t+4, ... backwards, to mix the order. */
	for (int i = MANY - 4 + t; i >= 0; i -= 4) {
		uint64_t v = (uint64_t)i * 7 + 3;
		if (weft_oneshot_send(many_tx[i], &v))
			abort();
	}
	return NULL;
}

WT_RT_TEST(oneshot, many_channels_from_threads)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_join **j = calloc(MANY, sizeof(*j));
	cr_assert_not_null(j);
	for (int i = 0; i < MANY; i++) {
		struct receiver r = { 0 };
		cr_assert_eq(weft_oneshot_new(8, &many_tx[i], &r.rx), 0);
		wt_spawn(rt, &receiver_desc, &r, &j[i]);
	}
	pthread_t th[4];
	for (int t = 0; t < 4; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, many_sender,
					    (void *)(intptr_t)t), 0);
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < MANY; i++) {
		int st = 1;
		int64_t out = 0;
		wt_join_wait(j[i], &st, &out);
		cr_expect_eq(st, 0);
		cr_expect_eq(out, i * 7 + 3, "channel %d", i);
		weft_join_drop(j[i]);
	}
	free(j);
	wt_rt_free(rt);
}

WT_RT_TEST(oneshot, abort_receiver_racing_send)
{
	/* Either the value got through (send 0, join 0) or the receiver
	 * was dropped first (join -ECANCELED; send 0 or -EPIPE). Never a
	 * value reported received that the sender saw refused. */
	weft_runtime *rt = wt_rt_new(cfg);
	for (int i = 0; i < 100; i++) {
		struct wt_counters c = { 0 };
		weft_oneshot_tx *tx;
		struct receiver r = { .c = &c };
		cr_assert_eq(weft_oneshot_new(8, &tx, &r.rx), 0);
		weft_join *j;
		wt_spawn(rt, &receiver_desc, &r, &j);
		if (i & 1)
			cr_assert_eq(wt_wait_atomic_ge(&c.polls, 1, 5000), 1);
		struct send_later s = { .tx = tx, .v = { (uint64_t)i, 0 },
					.result = 1 };
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, send_later_thread, &s),
			     0);
		weft_task_abort(j);
		pthread_join(th, NULL);
		int st = 1;
		int64_t out = -1;
		wt_join_wait(j, &st, &out);
		cr_assert(s.result == 0 || s.result == -EPIPE, "send: %d",
			  s.result);
		if (st == 0) {
			cr_assert_eq(out, i);
			cr_assert_eq(s.result, 0);
		} else {
			cr_assert_eq(st, -ECANCELED);
		}
		cr_assert_eq(wt_wait_atomic_ge(&c.drops, 1, 5000), 1);
		weft_join_drop(j);
	}
	wt_rt_free(rt);
}
