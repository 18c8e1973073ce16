/* SPDX-License-Identifier: MIT */
/*
 * weft_semaphore: try_acquire, FIFO order (a large request is not starved
 * and nobody jumps the queue), partial assignment, close, and the drop
 * paths: a queued acquire, one completed but never polled, and one with
 * permits assigned so far all give their permits back. Many tasks on
 * several workers with random aborts end with every permit accounted for.
 */
#include "io_helpers.h"

#define MS WT_MS

WT_TEST(semaphore, try_acquire_release_close)
{
	weft_semaphore *s;

	cr_assert_eq(weft_semaphore_new(3, &s), 0);
	cr_expect_eq(weft_semaphore_try_acquire(s, 2), 0);
	cr_expect_eq(weft_semaphore_available(s), 1);
	cr_expect_eq(weft_semaphore_try_acquire(s, 2), -EAGAIN);
	cr_expect_eq(weft_semaphore_available(s), 1, "a failed try took");
	weft_semaphore_release(s, 2);
	cr_expect_eq(weft_semaphore_available(s), 3);
	weft_semaphore_close(s);
	cr_expect_eq(weft_semaphore_try_acquire(s, 1), -EPIPE);
	cr_expect_eq(weft_semaphore_try_acquire(NULL, 1), -EINVAL);
	cr_expect_eq(weft_semaphore_new(1, NULL), -EINVAL);
	cr_expect_eq(weft_semaphore_free(s), 0);
	cr_expect_eq(weft_semaphore_free(NULL), 0);
}

/* Acquires polled by hand from this thread with a counting waker. */
struct hand {
	weft_semaphore_acquire a;
	struct wt_probe pr;
};

static void hand_init(struct hand *h, weft_semaphore *s, size_t n)
{
	wt_probe_init(&h->pr);
	cr_assert_eq(weft_semaphore_acquire_init(&h->a, s, n), 0);
}

static int hand_poll(struct hand *h)
{
	int r = 1;

	if (weft_semaphore_acquire_poll(&h->a, &h->pr.cx, &r) == WEFT_PENDING)
		return 1; /* pending */
	return r;
}

static int hand_wakes(struct hand *h)
{
	return wt_probe_wakes(&h->pr);
}

static void hand_fini(struct hand *h)
{
	weft_semaphore_acquire_drop(&h->a);
	wt_probe_fini(&h->pr);
}

WT_TEST(semaphore, fifo_and_partial_assignment)
{
	weft_semaphore *s;
	struct hand big, small;

	cr_assert_eq(weft_semaphore_new(1, &s), 0);
	hand_init(&big, s, 3);
	hand_init(&small, s, 1);
	cr_expect_eq(hand_poll(&big), 1, "3 of 1 permits: pending");
	cr_expect_eq(weft_semaphore_available(s), 0,
		     "the head took the one permit there was");
	cr_expect_eq(hand_poll(&small), 1, "queued behind the big one");
	cr_expect_eq(weft_semaphore_try_acquire(s, 1), -EAGAIN);
	weft_semaphore_release(s, 1);
	cr_expect_eq(hand_wakes(&big), 0, "2 of 3: not woken yet");
	cr_expect_eq(hand_poll(&small), 1, "the small one did not jump");
	/* 1 completes big; the second goes to small, next in line. */
	weft_semaphore_release(s, 2);
	cr_expect_eq(hand_wakes(&big), 1);
	cr_expect_eq(hand_wakes(&small), 1);
	cr_expect_eq(hand_poll(&big), 0);
	cr_expect_eq(weft_semaphore_available(s), 0);
	cr_expect_eq(hand_poll(&small), 0);
	cr_expect_eq(hand_poll(&small), -EALREADY);
	weft_semaphore_release(s, 4);
	cr_expect_eq(weft_semaphore_available(s), 4);
	hand_fini(&big);
	hand_fini(&small);
	cr_expect_eq(weft_semaphore_free(s), 0);
	wt_leak_check();
}

WT_TEST(semaphore, dropped_acquires_give_permits_back)
{
	weft_semaphore *s;
	struct hand a, b, c;

	cr_assert_eq(weft_semaphore_new(2, &s), 0);
	hand_init(&a, s, 5);
	hand_init(&b, s, 1);
	cr_expect_eq(hand_poll(&a), 1); /* took the 2 there were */
	cr_expect_eq(hand_poll(&b), 1);
	cr_expect_eq(weft_semaphore_free(s), -EBUSY, "freed with waiters");
	/* a leaves with 2 assigned: they go to b first, then the pool. */
	hand_fini(&a);
	cr_expect_eq(hand_wakes(&b), 1);
	cr_expect_eq(weft_semaphore_available(s), 1);
	/* b completed but never polled: dropping it returns its permit. */
	hand_fini(&b);
	cr_expect_eq(weft_semaphore_available(s), 2);
	/* Dropped before its first poll: holds nothing. */
	hand_init(&c, s, 2);
	hand_fini(&c);
	cr_expect_eq(weft_semaphore_available(s), 2);
	cr_expect_eq(weft_semaphore_free(s), 0);
	wt_leak_check();
}

WT_TEST(semaphore, close_fails_the_queued)
{
	weft_semaphore *s;
	struct hand a, b;

	cr_assert_eq(weft_semaphore_new(0, &s), 0);
	hand_init(&a, s, 1);
	cr_expect_eq(hand_poll(&a), 1);
	weft_semaphore_close(s);
	cr_expect_eq(hand_wakes(&a), 1);
	cr_expect_eq(hand_poll(&a), -EPIPE);
	hand_init(&b, s, 1);
	cr_expect_eq(hand_poll(&b), -EPIPE);
	hand_fini(&b);
	hand_fini(&a);
	cr_expect_eq(weft_semaphore_free(s), 0);
	wt_leak_check();
}

/* --- many tasks ------------------------------------------------------- */

enum { PERMITS = 5, WORKERS_TASKS = 48, ROUNDS = 40 };

struct shared {
	weft_semaphore *s;
	atomic_int held; /* permits held right now */
	atomic_int over; /* times held exceeded PERMITS */
};

struct user {
	struct shared *sh;
	unsigned seed;
	int round, holding, want;
	weft_semaphore_acquire a;
	int yields;
};

static weft_poll user_poll(void *self, weft_cx *cx, void *out)
{
	struct user *u = self;
	int r;

	(void)out;
	while (u->round < ROUNDS) {
		if (!u->holding) {
			if (!u->want) {
				u->seed = u->seed * 1103515245u + 12345u;
				u->want = 1 + (int)((u->seed >> 16) % 3);
				weft_semaphore_acquire_init(&u->a, u->sh->s,
							    (size_t)u->want);
			}
			if (weft_semaphore_acquire_poll(&u->a, cx, &r) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			WT_CHECK(r == 0, "acquire: %d", r);
			u->holding = u->want;
			if (atomic_fetch_add(&u->sh->held, u->holding) +
				    u->holding > PERMITS)
				atomic_fetch_add(&u->sh->over, 1);
			u->yields = 0;
		}
		if (u->yields++ < 2) { /* hold across a yield */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		atomic_fetch_sub(&u->sh->held, u->holding);
		weft_semaphore_release(u->sh->s, (size_t)u->holding);
		u->holding = u->want = 0;
		u->round++;
	}
	return WEFT_READY;
}

static void user_drop(void *self)
{
	struct user *u = self;

	weft_semaphore_acquire_drop(&u->a); /* a pending one gives back */
	if (u->holding) {
		atomic_fetch_sub(&u->sh->held, u->holding);
		weft_semaphore_release(u->sh->s, (size_t)u->holding);
	}
}

static const weft_future_desc user_desc = {
	.poll = user_poll,
	.drop = user_drop,
	.size = sizeof(struct user),
};

WT_RT_TEST_T(semaphore, many_tasks_with_aborts, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct shared sh = { 0 };
	weft_join *j[WORKERS_TASKS];

	cr_assert_eq(weft_semaphore_new(PERMITS, &sh.s), 0);
	for (int i = 0; i < WORKERS_TASKS; i++) {
		struct user u = { .sh = &sh, .seed = (unsigned)i * 7919u + 1 };
		wt_spawn(rt, &user_desc, &u, &j[i]);
	}
	/* Abort every third task wherever it is: queued, holding, done. */
	for (int i = 0; i < WORKERS_TASKS; i += 3)
		weft_task_abort(j[i]);
	for (int i = 0; i < WORKERS_TASKS; i++) {
		int st = 1;
		cr_assert(wt_join_wait_ms(j[i], &st, NULL, 20000),
			  "task %d hung (a lost permit or wake)", i);
		cr_expect(st == 0 || (i % 3 == 0 && st == -ECANCELED),
			  "task %d: %d", i, st);
		weft_join_drop(j[i]);
	}
	cr_expect_eq(atomic_load(&sh.over), 0, "more than %d held", PERMITS);
	cr_expect_eq(atomic_load(&sh.held), 0);
	cr_expect_eq(weft_semaphore_available(sh.s), PERMITS,
		     "permits lost: %zu of %d",
		     weft_semaphore_available(sh.s), PERMITS);
	cr_expect_eq(weft_semaphore_free(sh.s), 0);
	wt_rt_free(rt);
}
