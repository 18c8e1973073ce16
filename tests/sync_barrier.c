/* SPDX-License-Identifier: MIT */
/*
 * weft_barrier: n waits complete together, exactly one leader per
 * generation, reuse across generations, a dropped pending wait takes its
 * arrival back; then tasks on several workers going through many
 * generations.
 */
#include "io_helpers.h"

struct hand {
	weft_barrier_wait w;
	struct wt_probe pr;
};

static void hand_init(struct hand *h, weft_barrier *b)
{
	wt_probe_init(&h->pr);
	cr_assert_eq(weft_barrier_wait_init(&h->w, b), 0);
}

/* 2: pending; else the result (1 leader, 0 follower, <0 error). */
static int hand_poll(struct hand *h)
{
	int r = 2;

	if (weft_barrier_wait_poll(&h->w, &h->pr.cx, &r) == WEFT_PENDING)
		return 2;
	return r;
}

static void hand_fini(struct hand *h)
{
	weft_barrier_wait_drop(&h->w);
	wt_probe_fini(&h->pr);
}

WT_TEST(barrier, generations_and_one_leader_each)
{
	weft_barrier *b;
	struct hand h[3];

	cr_assert_eq(weft_barrier_new(3, &b), 0);
	for (int gen = 0; gen < 3; gen++) {
		for (int i = 0; i < 3; i++)
			hand_init(&h[i], b);
		cr_expect_eq(hand_poll(&h[0]), 2);
		cr_expect_eq(hand_poll(&h[1]), 2);
		cr_expect_eq(hand_poll(&h[0]), 2, "still 2 of 3");
		cr_expect_eq(weft_barrier_free(b), -EBUSY);
		cr_expect_eq(hand_poll(&h[2]), 1, "the last is the leader");
		cr_expect_eq(wt_probe_wakes(&h[0].pr), 1);
		cr_expect_eq(wt_probe_wakes(&h[1].pr), 1);
		cr_expect_eq(hand_poll(&h[0]), 0);
		cr_expect_eq(hand_poll(&h[1]), 0);
		cr_expect_eq(hand_poll(&h[1]), -EALREADY);
		for (int i = 0; i < 3; i++)
			hand_fini(&h[i]);
	}
	cr_expect_eq(weft_barrier_free(b), 0);
	wt_leak_check();
}

WT_TEST(barrier, dropped_wait_takes_its_arrival_back)
{
	weft_barrier *b;
	struct hand a, c, d, e;

	cr_assert_eq(weft_barrier_new(2, &b), 0);
	hand_init(&a, b);
	cr_expect_eq(hand_poll(&a), 2);
	hand_fini(&a); /* leaves: the barrier needs 2 again */
	hand_init(&c, b);
	cr_expect_eq(hand_poll(&c), 2, "a dropped wait still counted");
	hand_init(&d, b);
	cr_expect_eq(hand_poll(&d), 1);
	/* c was released but has not seen it: dropping it changes nothing
	 * for the next generation. */
	hand_fini(&c);
	hand_fini(&d);
	hand_init(&e, b);
	cr_expect_eq(hand_poll(&e), 2, "next generation starts at 0");
	hand_fini(&e);
	cr_expect_eq(weft_barrier_free(b), 0);
	wt_leak_check();
}

WT_TEST(barrier, zero_is_one_and_bad_args)
{
	weft_barrier *b;
	struct hand a;
	weft_waker noop = weft_waker_noop();
	weft_cx cx;
	int r = 2;

	weft_cx_init(&cx, &noop);
	cr_expect_eq(weft_barrier_new(1, NULL), -EINVAL);
	cr_assert_eq(weft_barrier_new(0, &b), 0);
	hand_init(&a, b);
	cr_expect_eq(hand_poll(&a), 1, "n 0 acts as 1: alone, the leader");
	hand_fini(&a);
	cr_expect_eq(weft_barrier_wait_init(NULL, b), -EINVAL);
	cr_expect_eq(weft_barrier_wait_init(&a.w, NULL), -EINVAL);
	cr_expect_eq(weft_barrier_wait_poll(NULL, &cx, &r), WEFT_READY);
	cr_expect_eq(r, -EINVAL);
	weft_barrier_wait_drop(NULL);
	cr_expect_eq(weft_barrier_free(NULL), 0);
	cr_expect_eq(weft_barrier_free(b), 0);
	wt_leak_check();
}

/* --- tasks ------------------------------------------------------------- */

enum { PARTIES = 5, ROUNDS = 50 };

struct party {
	weft_barrier *b;
	atomic_int *leaders; /* per round */
	atomic_int *passed;  /* per round */
	atomic_int *arrived; /* per round */
	int round, waiting;
	weft_barrier_wait w;
};

/*
 * A generation bigger than one wake batch (32): its leader unlocks between
 * batches, and a wait of that generation still queued then may be dropped
 * (an abort, a select losing). It was released: dropping it must not take
 * an arrival from the next generation (which would then need n + 1), and
 * the barrier must not be freeable while the leader is still at work.
 */
#define BIG 34
static weft_barrier_wait big[BIG];
static weft_barrier *big_b;
static int big_dropped, big_free_err;

static weft_waker big_clone(const void *d);
static void big_wake_by_ref(const void *d)
{
	if (d == &big[0] && !big_dropped) { /* mid-release: batch 1 */
		big_dropped = 1;
		weft_barrier_wait_drop(&big[32]); /* queued, released */
		big_free_err = weft_barrier_free(big_b);
	}
}
static void big_wake(const void *d) { big_wake_by_ref(d); }
static void big_drop(const void *d) { (void)d; }
static const weft_waker_vtable big_vt = { big_clone, big_wake,
					  big_wake_by_ref, big_drop };
static weft_waker big_clone(const void *d)
{
	return (weft_waker){ &big_vt, d };
}

Test(barrier, dropping_a_released_wait_mid_release)
{
	static weft_barrier_wait next[BIG];
	int res, leaders = 0;

	cr_assert_eq(weft_barrier_new(BIG, &big_b), 0);
	for (int i = 0; i < BIG; i++) {
		weft_waker k = { &big_vt, &big[i] };
		weft_cx cx;

		weft_cx_init(&cx, &k);
		cr_assert_eq(weft_barrier_wait_init(&big[i], big_b), 0);
		weft_poll p = weft_barrier_wait_poll(&big[i], &cx, &res);
		cr_assert_eq(p == WEFT_READY, i == BIG - 1);
	}
	cr_assert(big_dropped, "the first batch was not woken");
	cr_expect_eq(big_free_err, -EBUSY, "freed while the leader works");
	for (int i = 0; i < BIG; i++) { /* the next generation: n waits */
		weft_waker k = weft_waker_noop();
		weft_cx cx;

		weft_cx_init(&cx, &k);
		cr_assert_eq(weft_barrier_wait_init(&next[i], big_b), 0);
		if (weft_barrier_wait_poll(&next[i], &cx, &res) == WEFT_READY &&
		    res == 1)
			leaders++;
	}
	cr_expect_eq(leaders, 1, "the next generation needed one more wait");
	for (int i = 0; i < BIG; i++) {
		weft_barrier_wait_drop(&big[i]);
		weft_barrier_wait_drop(&next[i]);
	}
	cr_expect_eq(weft_barrier_free(big_b), 0);
}

static weft_poll party_poll(void *self, weft_cx *cx, void *out)
{
	struct party *p = self;
	int r;

	(void)out;
	while (p->round < ROUNDS) {
		if (!p->waiting) {
			weft_barrier_wait_init(&p->w, p->b);
			atomic_fetch_add(&p->arrived[p->round], 1);
			p->waiting = 1;
		}
		if (weft_barrier_wait_poll(&p->w, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		WT_CHECK(r == 0 || r == 1, "result %d", r);
		/* Nobody passes round k before all arrived at it. */
		WT_CHECK(atomic_load(&p->arrived[p->round]) == PARTIES,
			 "round %d passed with %d arrived", p->round,
			 atomic_load(&p->arrived[p->round]));
		atomic_fetch_add(&p->leaders[p->round], r);
		atomic_fetch_add(&p->passed[p->round], 1);
		p->waiting = 0;
		p->round++;
	}
	return WEFT_READY;
}

static void party_drop(void *self)
{
	struct party *p = self;

	if (p->waiting)
		weft_barrier_wait_drop(&p->w);
}

static const weft_future_desc party_desc = {
	.poll = party_poll,
	.drop = party_drop,
	.size = sizeof(struct party),
};

WT_RT_TEST(barrier, tasks_through_many_generations)
{
	weft_runtime *rt = wt_rt_new(cfg);
	atomic_int leaders[ROUNDS] = { 0 }, passed[ROUNDS] = { 0 },
		   arrived[ROUNDS] = { 0 };
	weft_join *j[PARTIES];
	weft_barrier *b;

	cr_assert_eq(weft_barrier_new(PARTIES, &b), 0);
	for (int i = 0; i < PARTIES; i++) {
		struct party p = { .b = b, .leaders = leaders,
				   .passed = passed, .arrived = arrived };
		wt_spawn(rt, &party_desc, &p, &j[i]);
	}
	for (int i = 0; i < PARTIES; i++) {
		int st = 1;
		wt_join_wait(j[i], &st, NULL);
		cr_expect_eq(st, 0);
		weft_join_drop(j[i]);
	}
	for (int k = 0; k < ROUNDS; k++) {
		cr_expect_eq(atomic_load(&leaders[k]), 1, "round %d", k);
		cr_expect_eq(atomic_load(&passed[k]), PARTIES);
	}
	cr_expect_eq(weft_barrier_free(b), 0);
	wt_rt_free(rt);
}
