/* SPDX-License-Identifier: MIT */
/*
 * weft_mpsc: per-sender order, exact bounded capacity (also with values
 * in the receiver's outbox, so freed slots come back through the reclaim
 * path, and across block boundaries for every block shape), waiting
 * senders served in FIFO order with nobody jumping them, the drop paths
 * (a queued send, a send with a reserved slot never polled, a pending
 * recv), closing from either side, drop_value for discarded values, the
 * argument checks, blocking calls from plain threads, and tasks on a
 * 2-worker runtime moving 100k values.
 */
#include "io_helpers.h"

/* --- hand-polled futures ------------------------------------------------ */

/* A send polled from this thread with a counting waker. */
struct hsend {
	weft_mpsc_send s;
	struct wt_probe pr;
	uint64_t v;
};

static void hsend_init(struct hsend *h, weft_mpsc_tx *tx, uint64_t v)
{
	h->v = v;
	wt_probe_init(&h->pr);
	cr_assert_eq(weft_mpsc_send_init(&h->s, tx, &h->v), 0);
}

/* 1 while pending, else the send's result. */
static int hsend_poll(struct hsend *h)
{
	int r = 1;

	if (weft_mpsc_send_poll(&h->s, &h->pr.cx, &r) == WEFT_PENDING)
		return 1;
	return r;
}

static int hsend_wakes(struct hsend *h)
{
	return wt_probe_wakes(&h->pr);
}

static void hsend_fini(struct hsend *h)
{
	weft_mpsc_send_drop(&h->s);
	wt_probe_fini(&h->pr);
}

struct hrecv {
	weft_mpsc_recv r;
	struct wt_probe pr;
	uint64_t out;
};

static void hrecv_init(struct hrecv *h, weft_mpsc_rx *rx)
{
	h->out = UINT64_MAX;
	wt_probe_init(&h->pr);
	cr_assert_eq(weft_mpsc_recv_init(&h->r, rx, &h->out), 0);
}

static int hrecv_poll(struct hrecv *h)
{
	int r = 1;

	if (weft_mpsc_recv_poll(&h->r, &h->pr.cx, &r) == WEFT_PENDING)
		return 1;
	return r;
}

static void hrecv_fini(struct hrecv *h)
{
	weft_mpsc_recv_drop(&h->r);
	wt_probe_fini(&h->pr);
}

static uint64_t recv_u64(weft_mpsc_rx *rx)
{
	uint64_t v = UINT64_MAX;

	cr_assert_eq(weft_mpsc_try_recv(rx, &v), 0, "nothing to receive");
	return v;
}

static void send_u64(weft_mpsc_tx *tx, uint64_t v)
{
	cr_assert_eq(weft_mpsc_try_send(tx, &v), 0, "try_send %" PRIu64, v);
}

/* --- order and capacity ------------------------------------------------- */

/* Check that @v is the next value from its sender (id << 32 | seq). */
static void expect_next(uint64_t v, uint64_t *want, unsigned nsenders)
{
	unsigned id = (unsigned)(v >> 32);

	cr_assert_lt(id, nsenders, "bad sender id in %#" PRIx64, v);
	cr_assert_eq(v & 0xffffffffu, want[id],
		     "sender %u: got seq %" PRIu64 ", want %" PRIu64, id,
		     v & 0xffffffffu, want[id]);
	want[id]++;
}

WT_TEST(mpsc, order_per_sender)
{
	for (int bounded = 0; bounded < 2; bounded++) {
		weft_mpsc_tx *tx[3];
		weft_mpsc_rx *rx;
		uint64_t sent[3] = { 0 }, want[3] = { 0 }, v;

		if (bounded)
			cr_assert_eq(weft_mpsc_bounded(8, 1000, &tx[0], &rx),
				     0);
		else
			cr_assert_eq(weft_mpsc_unbounded(8, &tx[0], &rx), 0);
		cr_assert_eq(weft_mpsc_tx_clone(tx[0], &tx[1]), 0);
		cr_assert_eq(weft_mpsc_tx_clone(tx[1], &tx[2]), 0);
		/* Interleave irregularly, receiving now and then so values
		 * sit in the outbox and the inbox at once. */
		for (uint64_t i = 0; i < 900; i++) {
			unsigned who = (unsigned)((i * 7 + i / 5) % 3);

			send_u64(tx[who], (uint64_t)who << 32 | sent[who]++);
			if (i % 13 == 0)
				expect_next(recv_u64(rx), want, 3);
		}
		for (int i = 0; i < 3; i++)
			weft_mpsc_tx_drop(tx[i]);
		while (weft_mpsc_try_recv(rx, &v) == 0)
			expect_next(v, want, 3);
		cr_expect_eq(weft_mpsc_try_recv(rx, &v), -EPIPE);
		for (int i = 0; i < 3; i++)
			cr_expect_eq(want[i], sent[i], "sender %d: %" PRIu64
				     " of %" PRIu64 " received", i, want[i],
				     sent[i]);
		weft_mpsc_rx_drop(rx);
	}
	wt_leak_check();
}

/* Value number @k of a channel of @vs-byte values: bytes from seed k. */
static void gen(unsigned char *b, size_t vs, uint64_t k)
{
	wt_fill(b, vs, (uint32_t)k + 1);
}

static void recv_expect(weft_mpsc_rx *rx, size_t vs, uint64_t k)
{
	unsigned char got[WEFT_MPSC_MAX_VALUE], want[WEFT_MPSC_MAX_VALUE];
	int r;

	gen(want, vs, k);
	memset(got, 0xee, vs);
	r = weft_mpsc_try_recv(rx, got);
	cr_assert_eq(r, 0, "value %" PRIu64 " (size %zu): %d", k, vs, r);
	cr_assert(!memcmp(got, want, vs),
		  "value %" PRIu64 " (size %zu) corrupted or out of order", k,
		  vs);
}

/* Send exactly @n more values (numbered from *@sent), then see -EAGAIN. */
static void fill_exactly(weft_mpsc_tx *tx, size_t vs, uint64_t *sent,
			 size_t n, size_t cap)
{
	unsigned char b[WEFT_MPSC_MAX_VALUE];

	for (size_t i = 0; i < n; i++) {
		gen(b, vs, *sent);
		cr_assert_eq(weft_mpsc_try_send(tx, b), 0,
			     "size %zu cap %zu: send %zu of %zu refused", vs,
			     cap, i + 1, n);
		(*sent)++;
	}
	gen(b, vs, *sent);
	cr_assert_eq(weft_mpsc_try_send(tx, b), -EAGAIN,
		     "size %zu cap %zu: a send beyond capacity", vs, cap);
}

WT_TEST_T(mpsc, capacity_exact_every_block_shape, 30)
{
	static const size_t sizes[] = { 1, 8, 24, 100, 4096 };
	static const size_t caps[] = { 1, 2, 39, 40, 41, 63, 64, 65, 129,
				       200 };

	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		for (size_t ci = 0; ci < sizeof(caps) / sizeof(caps[0]);
		     ci++) {
			size_t vs = sizes[si], cap = caps[ci];
			weft_mpsc_tx *tx;
			weft_mpsc_rx *rx;
			uint64_t sent = 0, recvd = 0;

			cr_assert_eq(weft_mpsc_bounded(vs, cap, &tx, &rx), 0);
			fill_exactly(tx, vs, &sent, cap, cap);
			cr_expect_eq(weft_mpsc_len(rx), cap);
			/* The first recv moves the whole inbox to the
			 * outbox: the freed slot comes back by reclaim. */
			recv_expect(rx, vs, recvd++);
			cr_expect_eq(weft_mpsc_len(rx), cap - 1);
			fill_exactly(tx, vs, &sent, 1, cap);
			cr_expect_eq(weft_mpsc_len(rx), cap);
			/* Take k, put k back, k varying: values cross every
			 * block boundary and blocks are reused. */
			for (unsigned round = 0; round < 12; round++) {
				size_t k = 1 + (round * 37 + 5) % cap;

				for (size_t i = 0; i < k; i++)
					recv_expect(rx, vs, recvd++);
				fill_exactly(tx, vs, &sent, k, cap);
				cr_expect_eq(weft_mpsc_len(rx), cap,
					     "size %zu cap %zu round %u", vs,
					     cap, round);
			}
			while (recvd < sent)
				recv_expect(rx, vs, recvd++);
			cr_expect_eq(weft_mpsc_try_recv(rx, NULL), -EAGAIN);
			cr_expect_eq(weft_mpsc_len(rx), 0);
			/* Empty again: the whole capacity is back. */
			fill_exactly(tx, vs, &sent, cap, cap);
			while (recvd < sent)
				recv_expect(rx, vs, recvd++);
			weft_mpsc_tx_drop(tx);
			cr_expect_eq(weft_mpsc_try_recv(rx, NULL), -EPIPE);
			weft_mpsc_rx_drop(rx);
		}
	}
	wt_leak_check();
}

/* --- waiting senders ---------------------------------------------------- */

WT_TEST(mpsc, pending_send_completes_after_recv)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct hsend a;

	cr_assert_eq(weft_mpsc_bounded(8, 1, &tx, &rx), 0);
	send_u64(tx, 1);
	hsend_init(&a, tx, 2);
	cr_expect_eq(hsend_poll(&a), 1, "full: pending");
	cr_expect_eq(hsend_poll(&a), 1, "still full: pending");
	cr_expect_eq(hsend_wakes(&a), 0);
	cr_expect_eq(weft_mpsc_len(rx), 1, "a pending send copied its value");
	cr_expect_eq(recv_u64(rx), 1);
	cr_expect_eq(hsend_wakes(&a), 1, "the recv woke the waiting send");
	cr_expect_eq(hsend_poll(&a), 0);
	cr_expect_eq(hsend_poll(&a), -EALREADY);
	cr_expect_eq(recv_u64(rx), 2);
	hsend_fini(&a);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(mpsc, waiting_senders_fifo_and_never_jumped)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct hsend a, b, c, d;
	uint64_t v = 99;

	cr_assert_eq(weft_mpsc_bounded(8, 2, &tx, &rx), 0);
	send_u64(tx, 1);
	send_u64(tx, 2);
	hsend_init(&a, tx, 10);
	hsend_init(&b, tx, 11);
	hsend_init(&c, tx, 12);
	cr_expect_eq(hsend_poll(&a), 1);
	cr_expect_eq(hsend_poll(&b), 1);
	cr_expect_eq(hsend_poll(&c), 1);
	/* One slot frees: it is a's, and only a is woken. */
	cr_expect_eq(recv_u64(rx), 1);
	cr_expect_eq(hsend_wakes(&a), 1);
	cr_expect_eq(hsend_wakes(&b), 0, "b woken out of turn");
	cr_expect_eq(hsend_wakes(&c), 0, "c woken out of turn");
	/* a has not run yet: nobody takes its slot. */
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EAGAIN,
		     "try_send jumped a woken, reserved waiter");
	cr_expect_eq(hsend_poll(&c), 1, "c jumped a and b");
	cr_expect_eq(hsend_poll(&b), 1, "b jumped a");
	hsend_init(&d, tx, 13);
	cr_expect_eq(hsend_poll(&d), 1, "a new send jumped the queue");
	cr_expect_eq(hsend_poll(&a), 0);
	/* Free two: b then c, not d. */
	cr_expect_eq(recv_u64(rx), 2);
	cr_expect_eq(hsend_wakes(&b), 1);
	cr_expect_eq(hsend_wakes(&c), 0);
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EAGAIN,
		     "try_send jumped waiting senders");
	cr_expect_eq(recv_u64(rx), 10);
	cr_expect_eq(hsend_wakes(&c), 1);
	cr_expect_eq(hsend_wakes(&d), 0);
	/* b and c hold slots and copy in the order they are polled; d,
	 * queued behind them, still waits. */
	cr_expect_eq(hsend_poll(&c), 0);
	cr_expect_eq(hsend_poll(&b), 0);
	cr_expect_eq(hsend_poll(&d), 1, "d ran with no room");
	cr_expect_eq(recv_u64(rx), 12);
	cr_expect_eq(hsend_wakes(&d), 1);
	cr_expect_eq(hsend_poll(&d), 0);
	cr_expect_eq(recv_u64(rx), 11);
	cr_expect_eq(recv_u64(rx), 13);
	cr_expect_eq(weft_mpsc_try_recv(rx, &v), -EAGAIN);
	/* Nothing queued or reserved is left: full capacity. */
	send_u64(tx, 3);
	send_u64(tx, 4);
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EAGAIN);
	hsend_fini(&a);
	hsend_fini(&b);
	hsend_fini(&c);
	hsend_fini(&d);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

/* --- dropped sends ------------------------------------------------------ */

WT_TEST(mpsc, dropped_pending_send_sends_nothing)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct hsend a, b;
	uint64_t v;

	cr_assert_eq(weft_mpsc_bounded(8, 1, &tx, &rx), 0);
	send_u64(tx, 1);
	hsend_init(&a, tx, 2);
	cr_expect_eq(hsend_poll(&a), 1);
	hsend_fini(&a); /* dropped while queued */
	cr_expect_eq(recv_u64(rx), 1);
	cr_expect_eq(weft_mpsc_try_recv(rx, &v), -EAGAIN,
		     "a dropped send delivered its value");
	/* No waiter left behind: a try_send is not refused for it. */
	send_u64(tx, 3);
	cr_expect_eq(recv_u64(rx), 3);
	/* Dropped before its first poll: holds nothing either. */
	hsend_init(&b, tx, 4);
	hsend_fini(&b);
	send_u64(tx, 5);
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EAGAIN);
	cr_expect_eq(recv_u64(rx), 5);
	cr_expect_eq(weft_mpsc_try_recv(rx, &v), -EAGAIN);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(mpsc, dropped_reserved_send_passes_its_slot_on)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct hsend a, b, c;
	uint64_t v = 0;

	cr_assert_eq(weft_mpsc_bounded(8, 3, &tx, &rx), 0);
	send_u64(tx, 1);
	send_u64(tx, 2);
	send_u64(tx, 3);
	hsend_init(&a, tx, 10);
	hsend_init(&b, tx, 11);
	cr_expect_eq(hsend_poll(&a), 1);
	cr_expect_eq(hsend_poll(&b), 1);
	cr_expect_eq(recv_u64(rx), 1); /* a's slot, reserved */
	cr_expect_eq(hsend_wakes(&a), 1);
	cr_expect_eq(hsend_wakes(&b), 0);
	hsend_fini(&a); /* woken, never polled: the slot goes to b */
	cr_expect_eq(hsend_wakes(&b), 1, "the slot did not pass to b");
	cr_expect_eq(hsend_poll(&b), 0);
	cr_expect_eq(recv_u64(rx), 2);
	cr_expect_eq(recv_u64(rx), 3);
	cr_expect_eq(recv_u64(rx), 11);
	cr_expect_eq(weft_mpsc_try_recv(rx, &v), -EAGAIN, "a's value sent");
	/* With no waiter behind it, the slot goes back to capacity. */
	for (int i = 0; i < 3; i++)
		send_u64(tx, 20 + (uint64_t)i);
	hsend_init(&c, tx, 30);
	cr_expect_eq(hsend_poll(&c), 1);
	cr_expect_eq(recv_u64(rx), 20);
	cr_expect_eq(hsend_wakes(&c), 1);
	hsend_fini(&c);
	send_u64(tx, 23);
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EAGAIN,
		     "a slot counted twice");
	for (int i = 21; i <= 23; i++)
		cr_expect_eq(recv_u64(rx), (uint64_t)i);
	/* Nothing leaked: three sends fit again, and no fourth. */
	for (int i = 0; i < 3; i++)
		send_u64(tx, 40 + (uint64_t)i);
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EAGAIN);
	hsend_fini(&b);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

/* Many waiters, more than one wakeset holds: freeing many slots at once
 * (by dropping the head waiters) must wake every one that got a slot. */
WT_TEST(mpsc, many_waiters_all_served)
{
	enum { N = 80, CAP = 70 };
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	static struct hsend w[N];
	uint64_t v;

	cr_assert_eq(weft_mpsc_bounded(8, CAP, &tx, &rx), 0);
	for (int i = 0; i < CAP; i++)
		send_u64(tx, (uint64_t)i);
	for (int i = 0; i < N; i++) {
		hsend_init(&w[i], tx, 1000 + (uint64_t)i);
		cr_expect_eq(hsend_poll(&w[i]), 1);
	}
	/* Drain everything: each recv hands a slot to the next waiter. */
	for (int i = 0; i < CAP; i++)
		cr_expect_eq(recv_u64(rx), (uint64_t)i);
	for (int i = 0; i < N; i++)
		cr_expect_eq(hsend_wakes(&w[i]), i < CAP ? 1 : 0,
			     "waiter %d", i);
	/* Drop the first 40 reserved ones: 40 slots pass on, 10 to the
	 * waiters left, 30 back to capacity. */
	for (int i = 0; i < 40; i++)
		hsend_fini(&w[i]);
	for (int i = 40; i < N; i++) {
		cr_expect_eq(hsend_wakes(&w[i]), 1, "waiter %d", i);
		cr_expect_eq(hsend_poll(&w[i]), 0, "waiter %d", i);
	}
	for (int i = 40; i < N; i++)
		cr_expect_eq(recv_u64(rx), 1000 + (uint64_t)i);
	cr_expect_eq(weft_mpsc_try_recv(rx, &v), -EAGAIN);
	for (int i = 0; i < CAP; i++)
		send_u64(tx, (uint64_t)i);
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EAGAIN);
	for (int i = 40; i < N; i++)
		hsend_fini(&w[i]);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

/* --- closing ------------------------------------------------------------ */

WT_TEST(mpsc, last_sender_gone_drains_then_epipe)
{
	weft_mpsc_tx *tx, *tx2;
	weft_mpsc_rx *rx;
	struct hrecv r;

	cr_assert_eq(weft_mpsc_unbounded(8, &tx, &rx), 0);
	cr_assert_eq(weft_mpsc_tx_clone(tx, &tx2), 0);
	send_u64(tx, 1);
	send_u64(tx2, 2);
	weft_mpsc_tx_drop(tx);
	cr_expect_eq(recv_u64(rx), 1);
	weft_mpsc_tx_drop(tx2);
	cr_expect_eq(recv_u64(rx), 2, "queued values are still received");
	cr_expect_eq(weft_mpsc_try_recv(rx, NULL), -EPIPE);
	hrecv_init(&r, rx);
	cr_expect_eq(hrecv_poll(&r), -EPIPE);
	hrecv_fini(&r);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(mpsc, pending_recv_woken_by_last_sender_drop)
{
	weft_mpsc_tx *tx, *tx2;
	weft_mpsc_rx *rx;
	struct hrecv r;

	cr_assert_eq(weft_mpsc_bounded(8, 4, &tx, &rx), 0);
	cr_assert_eq(weft_mpsc_tx_clone(tx, &tx2), 0);
	hrecv_init(&r, rx);
	cr_expect_eq(hrecv_poll(&r), 1);
	weft_mpsc_tx_drop(tx);
	cr_expect_eq(hrecv_poll(&r), 1, "one sender is left");
	weft_mpsc_tx_drop(tx2);
	cr_expect_geq(wt_probe_wakes(&r.pr), 1, "the last drop did not wake");
	cr_expect_eq(hrecv_poll(&r), -EPIPE);
	cr_expect_eq(hrecv_poll(&r), -EALREADY);
	hrecv_fini(&r);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(mpsc, pending_recv_woken_by_rx_close)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct hrecv r;

	cr_assert_eq(weft_mpsc_unbounded(8, &tx, &rx), 0);
	hrecv_init(&r, rx);
	cr_expect_eq(hrecv_poll(&r), 1);
	weft_mpsc_rx_close(rx); /* e.g. from another thread: a stop signal */
	cr_expect_geq(wt_probe_wakes(&r.pr), 1, "the close did not wake");
	cr_expect_eq(hrecv_poll(&r), -EPIPE);
	hrecv_fini(&r);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(mpsc, rx_close_fails_sends_and_drains)
{
	enum { N = 80 }; /* more waiters than one wakeset holds */
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	static struct hsend w[N];
	struct hsend late, reserved;
	uint64_t v = 77;

	cr_assert_eq(weft_mpsc_bounded(8, 2, &tx, &rx), 0);
	send_u64(tx, 1);
	send_u64(tx, 2);
	hsend_init(&reserved, tx, 5);
	cr_expect_eq(hsend_poll(&reserved), 1);
	for (int i = 0; i < N; i++) {
		hsend_init(&w[i], tx, 100 + (uint64_t)i);
		cr_expect_eq(hsend_poll(&w[i]), 1);
	}
	cr_expect_eq(recv_u64(rx), 1); /* a slot reserved, not yet used */
	cr_expect_not(weft_mpsc_is_closed(tx));
	weft_mpsc_rx_close(rx);
	cr_expect(weft_mpsc_is_closed(tx));
	for (int i = 0; i < N; i++) {
		cr_expect_eq(hsend_wakes(&w[i]), 1, "waiter %d not woken", i);
		cr_expect_eq(hsend_poll(&w[i]), -EPIPE, "waiter %d", i);
		cr_expect_eq(w[i].v, 100 + (uint64_t)i, "value touched");
	}
	cr_expect_eq(hsend_poll(&reserved), -EPIPE,
		     "a reserved slot used after the close");
	cr_expect_eq(weft_mpsc_try_send(tx, &v), -EPIPE);
	cr_expect_eq(v, 77);
	hsend_init(&late, tx, 6);
	cr_expect_eq(hsend_poll(&late), -EPIPE);
	cr_expect_eq(weft_mpsc_send_blocking(tx, &v), -EPIPE);
	/* What was queued before the close is still there, then -EPIPE
	 * although a sender remains. */
	cr_expect_eq(weft_mpsc_len(rx), 1);
	cr_expect_eq(recv_u64(rx), 2);
	cr_expect_eq(weft_mpsc_try_recv(rx, &v), -EPIPE);
	cr_expect_eq(weft_mpsc_recv_blocking(rx, &v), -EPIPE);
	for (int i = 0; i < N; i++)
		hsend_fini(&w[i]);
	hsend_fini(&reserved);
	hsend_fini(&late);
	weft_mpsc_rx_close(rx); /* twice is harmless */
	weft_mpsc_rx_drop(rx);
	weft_mpsc_tx_drop(tx);
	wt_leak_check();
}

/* Pointer values: malloc'd by the sender, freed by drop_value. */
struct drops {
	atomic_int n;
	atomic_int seen[64];
};

static void free_value(void *value, void *ctx)
{
	struct drops *d = ctx;
	int *p = *(int **)value;

	atomic_fetch_add(&d->n, 1);
	cr_assert(*p >= 0 && *p < 64);
	atomic_fetch_add(&d->seen[*p], 1);
	free(p);
}

static void send_ptr(weft_mpsc_tx *tx, int i)
{
	int *p = malloc(sizeof(*p));

	cr_assert_not_null(p);
	*p = i;
	cr_assert_eq(weft_mpsc_try_send(tx, &p), 0);
}

WT_TEST(mpsc, rx_drop_discards_every_queued_value_once)
{
	/* order 0: drop the receiver first; 1: the sender first; 2: close,
	 * then drop the receiver. */
	for (int order = 0; order < 3; order++) {
		struct drops d = { 0 };
		weft_mpsc_config cfg = { .value_size = sizeof(int *),
					 .capacity = order == 1 ? 0 : 64,
					 .drop_value = free_value,
					 .drop_ctx = &d };
		weft_mpsc_tx *tx;
		weft_mpsc_rx *rx;
		int *p;

		cr_assert_eq(weft_mpsc_new(&cfg, &tx, &rx), 0);
		/* 40 values across blocks of 64 pointers... */
		for (int i = 0; i < 40; i++)
			send_ptr(tx, i);
		/* ...one received (the rest move to the outbox)... */
		cr_assert_eq(weft_mpsc_try_recv(rx, &p), 0);
		cr_expect_eq(*p, 0);
		free(p);
		/* ...and more in the inbox. */
		for (int i = 40; i < 64; i++)
			send_ptr(tx, i);
		if (order == 2)
			weft_mpsc_rx_close(rx);
		cr_expect_eq(atomic_load(&d.n), 0, "discarded while queued");
		if (order == 1) {
			weft_mpsc_tx_drop(tx);
			weft_mpsc_rx_drop(rx);
		} else {
			weft_mpsc_rx_drop(rx);
			cr_expect(weft_mpsc_is_closed(tx));
			cr_expect_eq(weft_mpsc_try_send(tx, &p), -EPIPE);
			weft_mpsc_tx_drop(tx);
		}
		cr_expect_eq(atomic_load(&d.n), 63, "order %d", order);
		for (int i = 1; i < 64; i++)
			cr_expect_eq(atomic_load(&d.seen[i]), 1,
				     "order %d: value %d dropped %d times",
				     order, i, atomic_load(&d.seen[i]));
		wt_leak_check(); /* the values and the channel are freed */
	}
}

/* --- the recv side ------------------------------------------------------ */

WT_TEST(mpsc, dropped_pending_recv_is_not_woken_and_loses_nothing)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct hrecv r, r2;

	cr_assert_eq(weft_mpsc_bounded(8, 4, &tx, &rx), 0);
	hrecv_init(&r, rx);
	cr_expect_eq(hrecv_poll(&r), 1);
	cr_expect_eq(hrecv_poll(&r), 1);
	weft_mpsc_recv_drop(&r.r);
	send_u64(tx, 7);
	cr_expect_eq(wt_probe_wakes(&r.pr), 0, "a dropped recv was woken");
	cr_expect_eq(r.out, UINT64_MAX, "a dropped recv took a value");
	hrecv_init(&r2, rx);
	cr_expect_eq(hrecv_poll(&r2), 0);
	cr_expect_eq(r2.out, 7);
	/* Pending, then woken by a send. */
	hrecv_fini(&r2);
	hrecv_init(&r2, rx);
	cr_expect_eq(hrecv_poll(&r2), 1);
	send_u64(tx, 8);
	cr_expect_eq(wt_probe_wakes(&r2.pr), 1);
	cr_expect_eq(hrecv_poll(&r2), 0);
	cr_expect_eq(r2.out, 8);
	weft_mpsc_tx_drop(tx);
	cr_expect_eq(wt_probe_wakes(&r.pr), 0);
	hrecv_fini(&r);
	hrecv_fini(&r2);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(mpsc, try_recv_len_and_signals)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct hsend s;
	struct wt_probe pr;
	weft_mpsc_recv r;
	int res = 1;

	/* value_size 0: a channel of signals; NULL values are fine. */
	cr_assert_eq(weft_mpsc_bounded(0, 100, &tx, &rx), 0);
	cr_expect_eq(weft_mpsc_try_recv(rx, NULL), -EAGAIN);
	cr_expect_eq(weft_mpsc_len(rx), 0);
	for (int i = 0; i < 100; i++)
		cr_expect_eq(weft_mpsc_try_send(tx, NULL), 0, "signal %d", i);
	cr_expect_eq(weft_mpsc_try_send(tx, NULL), -EAGAIN);
	cr_expect_eq(weft_mpsc_len(rx), 100);
	cr_expect_eq(weft_mpsc_try_recv(rx, NULL), 0);
	cr_expect_eq(weft_mpsc_len(rx), 99);
	cr_expect_eq(weft_mpsc_send_init(&s.s, tx, NULL), 0);
	wt_probe_init(&s.pr);
	cr_expect_eq(hsend_poll(&s), 0);
	cr_expect_eq(weft_mpsc_len(rx), 100);
	hsend_fini(&s);
	wt_probe_init(&pr);
	cr_expect_eq(weft_mpsc_recv_init(&r, rx, NULL), 0);
	cr_expect_eq(weft_mpsc_recv_poll(&r, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, 0);
	weft_mpsc_recv_drop(&r);
	wt_probe_fini(&pr);
	for (int i = 0; i < 99; i++)
		cr_expect_eq(weft_mpsc_try_recv(rx, NULL), 0, "signal %d", i);
	cr_expect_eq(weft_mpsc_try_recv(rx, NULL), -EAGAIN);
	weft_mpsc_tx_drop(tx);
	cr_expect_eq(weft_mpsc_try_recv(rx, NULL), -EPIPE);
	weft_mpsc_rx_drop(rx);

	/* Discarding receives (NULL out) of a sized channel. */
	cr_assert_eq(weft_mpsc_unbounded(8, &tx, &rx), 0);
	send_u64(tx, 1);
	send_u64(tx, 2);
	cr_expect_eq(weft_mpsc_try_recv(rx, NULL), 0);
	cr_expect_eq(recv_u64(rx), 2);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

WT_TEST(mpsc, bad_arguments)
{
	weft_mpsc_config big = { .value_size = WEFT_MPSC_MAX_VALUE + 1 };
	weft_mpsc_config ok = { .value_size = 8, .capacity = 1 };
	weft_mpsc_tx *tx = NULL, *tx2 = NULL;
	weft_mpsc_rx *rx = NULL;
	weft_mpsc_send s, zs;
	weft_mpsc_recv r, zr;
	struct wt_probe pr;
	uint64_t v = 5, out = 0;
	int res;

	cr_expect_eq(weft_mpsc_new(&big, &tx, &rx), -EINVAL);
	cr_expect_null(tx, "*tx written on failure");
	cr_expect_eq(weft_mpsc_bounded(WEFT_MPSC_MAX_VALUE + 1, 1, &tx, &rx),
		     -EINVAL);
	cr_expect_eq(weft_mpsc_unbounded(WEFT_MPSC_MAX_VALUE + 1, &tx, &rx),
		     -EINVAL);
	cr_expect_eq(weft_mpsc_bounded(8, 0, &tx, &rx), -EINVAL);
	cr_expect_eq(weft_mpsc_new(NULL, &tx, &rx), -EINVAL);
	cr_expect_eq(weft_mpsc_new(&ok, NULL, &rx), -EINVAL);
	cr_expect_eq(weft_mpsc_new(&ok, &tx, NULL), -EINVAL);
	cr_expect_eq(weft_mpsc_bounded(8, 1, NULL, &rx), -EINVAL);
	cr_expect_eq(weft_mpsc_unbounded(8, &tx, NULL), -EINVAL);
	cr_expect_null(tx);
	cr_expect_null(rx);
	cr_expect_eq(weft_mpsc_new(&ok, &tx, &rx), 0);

	cr_expect_eq(weft_mpsc_tx_clone(NULL, &tx2), -EINVAL);
	cr_expect_eq(weft_mpsc_tx_clone(tx, NULL), -EINVAL);
	weft_mpsc_tx_drop(NULL);
	weft_mpsc_rx_close(NULL);
	weft_mpsc_rx_drop(NULL);
	cr_expect_eq(weft_mpsc_try_send(NULL, &v), -EINVAL);
	cr_expect_eq(weft_mpsc_try_send(tx, NULL), -EINVAL);
	cr_expect_eq(weft_mpsc_try_recv(NULL, &out), -EINVAL);
	cr_expect_eq(weft_mpsc_len(NULL), 0);
	cr_expect_not(weft_mpsc_is_closed(NULL));
	cr_expect_eq(weft_mpsc_send_blocking(NULL, &v), -EINVAL);
	cr_expect_eq(weft_mpsc_send_blocking(tx, NULL), -EINVAL);
	cr_expect_eq(weft_mpsc_recv_blocking(NULL, &out), -EINVAL);

	cr_expect_eq(weft_mpsc_send_init(NULL, tx, &v), -EINVAL);
	cr_expect_eq(weft_mpsc_send_init(&s, NULL, &v), -EINVAL);
	cr_expect_eq(weft_mpsc_send_init(&s, tx, NULL), -EINVAL);
	cr_expect_eq(weft_mpsc_recv_init(NULL, rx, &out), -EINVAL);
	cr_expect_eq(weft_mpsc_recv_init(&r, NULL, &out), -EINVAL);
	weft_mpsc_send_drop(NULL);
	weft_mpsc_recv_drop(NULL);

	wt_probe_init(&pr);
	res = 1;
	cr_expect_eq(weft_mpsc_send_poll(NULL, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	cr_expect_eq(weft_mpsc_send_poll(NULL, &pr.cx, NULL), WEFT_READY);
	res = 1;
	cr_expect_eq(weft_mpsc_recv_poll(NULL, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	cr_expect_eq(weft_mpsc_recv_poll(NULL, &pr.cx, NULL), WEFT_READY);
	/* Unprepared (zeroed) futures. */
	memset(&zs, 0, sizeof(zs));
	memset(&zr, 0, sizeof(zr));
	res = 1;
	cr_expect_eq(weft_mpsc_send_poll(&zs, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	res = 1;
	cr_expect_eq(weft_mpsc_recv_poll(&zr, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	weft_mpsc_send_drop(&zs);
	weft_mpsc_recv_drop(&zr);

	/* A NULL cx consumes nothing: a later valid poll still works. */
	cr_assert_eq(weft_mpsc_send_init(&s, tx, &v), 0);
	res = 1;
	cr_expect_eq(weft_mpsc_send_poll(&s, NULL, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	cr_expect_eq(weft_mpsc_len(rx), 0, "a NULL-cx poll sent");
	res = 1;
	cr_expect_eq(weft_mpsc_send_poll(&s, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, 0);
	res = 1;
	cr_expect_eq(weft_mpsc_send_poll(&s, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -EALREADY);
	weft_mpsc_send_drop(&s);
	cr_assert_eq(weft_mpsc_recv_init(&r, rx, &out), 0);
	res = 1;
	cr_expect_eq(weft_mpsc_recv_poll(&r, NULL, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	cr_expect_eq(weft_mpsc_len(rx), 1, "a NULL-cx poll took the value");
	res = 1;
	cr_expect_eq(weft_mpsc_recv_poll(&r, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, 0);
	cr_expect_eq(out, 5);
	res = 1;
	cr_expect_eq(weft_mpsc_recv_poll(&r, &pr.cx, &res), WEFT_READY);
	cr_expect_eq(res, -EALREADY);
	weft_mpsc_recv_drop(&r);
	weft_mpsc_recv_drop(&r); /* after READY, dropping twice is harmless */
	wt_probe_fini(&pr);

	/* The generic descriptors. */
	cr_expect_eq(weft_mpsc_send_desc.size, sizeof(weft_mpsc_send));
	cr_expect_eq(weft_mpsc_send_desc.output_size, sizeof(int));
	cr_expect_not_null(weft_mpsc_send_desc.poll);
	cr_expect_not_null(weft_mpsc_send_desc.drop);
	cr_expect_eq(weft_mpsc_recv_desc.size, sizeof(weft_mpsc_recv));
	cr_expect_eq(weft_mpsc_recv_desc.output_size, sizeof(int));
	cr_expect_not_null(weft_mpsc_recv_desc.poll);
	cr_expect_not_null(weft_mpsc_recv_desc.drop);
	weft_mpsc_tx_drop(tx);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

/* --- blocking calls ----------------------------------------------------- */

enum { BT_THREADS = 4, BT_EACH = 3000 };

struct bsender {
	weft_mpsc_tx *tx;
	unsigned id;
	int err;
};

static void *bsender_main(void *arg)
{
	struct bsender *b = arg;

	for (uint64_t i = 0; i < BT_EACH && !b->err; i++) {
		uint64_t v = (uint64_t)b->id << 32 | i;

		b->err = weft_mpsc_send_blocking(b->tx, &v);
	}
	weft_mpsc_tx_drop(b->tx);
	return NULL;
}

struct breceiver {
	weft_mpsc_rx *rx;
	uint64_t want[BT_THREADS];
	unsigned got, bad;
	int end;
};

static void *breceiver_main(void *arg)
{
	struct breceiver *b = arg;
	uint64_t v;
	int r;

	while ((r = weft_mpsc_recv_blocking(b->rx, &v)) == 0) {
		unsigned id = (unsigned)(v >> 32);

		if (id >= BT_THREADS || (v & 0xffffffffu) != b->want[id])
			b->bad++;
		else
			b->want[id]++;
		b->got++;
	}
	b->end = r;
	return NULL;
}

WT_TEST_T(mpsc, blocking_threads, 30)
{
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	struct bsender s[BT_THREADS];
	struct breceiver rv = { 0 };
	pthread_t th[BT_THREADS], rth;

	cr_assert_eq(weft_mpsc_bounded(8, 4, &tx, &rx), 0);
	rv.rx = rx;
	for (unsigned i = 0; i < BT_THREADS; i++) {
		s[i] = (struct bsender){ .id = i };
		if (i == 0)
			s[i].tx = tx;
		else
			cr_assert_eq(weft_mpsc_tx_clone(tx, &s[i].tx), 0);
	}
	cr_assert_eq(pthread_create(&rth, NULL, breceiver_main, &rv), 0);
	for (unsigned i = 0; i < BT_THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, bsender_main, &s[i]),
			     0);
	for (unsigned i = 0; i < BT_THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(s[i].err, 0, "sender %u: %d", i, s[i].err);
	}
	pthread_join(rth, NULL);
	cr_expect_eq(rv.end, -EPIPE);
	cr_expect_eq(rv.bad, 0, "values lost, repeated or out of order");
	cr_expect_eq(rv.got, BT_THREADS * BT_EACH);
	for (unsigned i = 0; i < BT_THREADS; i++)
		cr_expect_eq(rv.want[i], BT_EACH, "sender %u", i);
	weft_mpsc_rx_drop(rx);
	wt_leak_check();
}

struct on_worker {
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	int send, recv;
};

static int64_t blocking_on_worker(void *arg)
{
	struct on_worker *w = arg;
	uint64_t v = 1;

	w->send = weft_mpsc_send_blocking(w->tx, &v);
	w->recv = weft_mpsc_recv_blocking(w->rx, &v);
	return 0;
}

WT_RT_TEST(mpsc, blocking_on_a_worker_is_edeadlk)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct on_worker w = { 0 };

	cr_assert_eq(weft_mpsc_bounded(8, 4, &w.tx, &w.rx), 0);
	send_u64(w.tx, 42); /* so that a recv would not have to wait */
	wt_run_on_worker(rt, blocking_on_worker, &w);
	cr_expect_eq(w.send, -EDEADLK);
	cr_expect_eq(w.recv, -EDEADLK);
	cr_expect_eq(weft_mpsc_len(w.rx), 1, "sent or took a value");
	cr_expect_eq(recv_u64(w.rx), 42);
	weft_mpsc_tx_drop(w.tx);
	weft_mpsc_rx_drop(w.rx);
	wt_rt_free(rt);
}

/* --- tasks -------------------------------------------------------------- */

enum { PRODUCERS = 4, TOTAL = 100000 };

struct producer {
	weft_mpsc_tx *tx;
	uint64_t id, seq, n, v;
	bool sending;
	weft_mpsc_send s;
};

static weft_poll producer_poll(void *self, weft_cx *cx, void *out)
{
	struct producer *p = self;
	int r;

	(void)out;
	while (p->seq < p->n) {
		if (!p->sending) {
			p->v = p->id << 32 | p->seq;
			WT_CHECK(weft_mpsc_send_init(&p->s, p->tx, &p->v) == 0,
				 "init");
			p->sending = true;
		}
		if (weft_mpsc_send_poll(&p->s, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_mpsc_send_drop(&p->s);
		p->sending = false;
		WT_CHECK(r == 0, "send: %d", r);
		p->seq++;
		if (p->seq % 1000 == 0) { /* let others in now and then */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
	}
	weft_mpsc_tx_drop(p->tx);
	p->tx = NULL;
	return WEFT_READY;
}

static void producer_drop(void *self)
{
	struct producer *p = self;

	if (p->sending)
		weft_mpsc_send_drop(&p->s);
	weft_mpsc_tx_drop(p->tx);
}

static const weft_future_desc producer_desc = {
	.poll = producer_poll,
	.drop = producer_drop,
	.size = sizeof(struct producer),
};

struct consumer {
	weft_mpsc_rx *rx;
	uint64_t want[PRODUCERS], got, sum, v;
	bool receiving;
	weft_mpsc_recv r;
};

static weft_poll consumer_poll(void *self, weft_cx *cx, void *out)
{
	struct consumer *c = self;
	int r;

	for (;;) {
		if (!c->receiving) {
			WT_CHECK(weft_mpsc_recv_init(&c->r, c->rx, &c->v) == 0,
				 "init");
			c->receiving = true;
		}
		if (weft_mpsc_recv_poll(&c->r, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_mpsc_recv_drop(&c->r);
		c->receiving = false;
		if (r == -EPIPE)
			break;
		WT_CHECK(r == 0, "recv: %d", r);
		unsigned id = (unsigned)(c->v >> 32);
		WT_CHECK(id < PRODUCERS, "id %u", id);
		WT_CHECK((c->v & 0xffffffffu) == c->want[id],
			 "producer %u: seq %" PRIu64 ", want %" PRIu64, id,
			 c->v & 0xffffffffu, c->want[id]);
		c->want[id]++;
		c->got++;
		c->sum += c->v & 0xffffffffu;
	}
	*(int64_t *)out = (int64_t)c->got;
	return WEFT_READY;
}

static void consumer_drop(void *self)
{
	struct consumer *c = self;

	if (c->receiving)
		weft_mpsc_recv_drop(&c->r);
	weft_mpsc_rx_drop(c->rx);
}

static const weft_future_desc consumer_desc = {
	.poll = consumer_poll,
	.drop = consumer_drop,
	.size = sizeof(struct consumer),
	.output_size = sizeof(int64_t),
};

static void tasks_run(size_t capacity)
{
	weft_runtime *rt = wt_rt_new(&(struct wt_cfg){ 2, 0 });
	weft_mpsc_config cfg = { .value_size = 8, .capacity = capacity };
	weft_mpsc_tx *tx;
	weft_mpsc_rx *rx;
	weft_join *jc, *jp[PRODUCERS];
	int64_t got = -1;
	int st = 1;

	cr_assert_eq(weft_mpsc_new(&cfg, &tx, &rx), 0);
	struct consumer c = { .rx = rx };
	wt_spawn(rt, &consumer_desc, &c, &jc);
	for (unsigned i = 0; i < PRODUCERS; i++) {
		struct producer p = { .id = i, .n = TOTAL / PRODUCERS };

		if (i == PRODUCERS - 1)
			p.tx = tx;
		else
			cr_assert_eq(weft_mpsc_tx_clone(tx, &p.tx), 0);
		wt_spawn(rt, &producer_desc, &p, &jp[i]);
	}
	for (unsigned i = 0; i < PRODUCERS; i++) {
		cr_assert(wt_join_wait_ms(jp[i], &st, NULL, 20000),
			  "producer %u hung (capacity %zu)", i, capacity);
		cr_expect_eq(st, 0);
		weft_join_drop(jp[i]);
	}
	cr_assert(wt_join_wait_ms(jc, &st, &got, 20000),
		  "consumer hung (capacity %zu)", capacity);
	cr_expect_eq(st, 0);
	cr_expect_eq(got, TOTAL, "capacity %zu", capacity);
	weft_join_drop(jc);
	wt_rt_free(rt);
}

WT_TEST_T(mpsc, tasks_bounded, 60)
{
	tasks_run(16);
}

WT_TEST_T(mpsc, tasks_bounded_one, 60)
{
	tasks_run(1);
}

WT_TEST_T(mpsc, tasks_unbounded, 60)
{
	tasks_run(0);
}
