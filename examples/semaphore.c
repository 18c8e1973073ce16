/* SPDX-License-Identifier: MIT */
/*
 * semaphore: at most 3 of 10 tasks in a section at once (docs/sync.md).
 *
 * Each task acquires a permit of a 3-permit weft_semaphore, sleeps 5 ms
 * holding it (as if it used a connection of a pool of 3), and gives it
 * back. Prints the most that were ever inside at once; exits 0 when that
 * is at most 3 and every permit came back.
 */
#include <stdatomic.h>
#include <stdio.h>

#include <weft.h>

#define TASKS 10
#define MS 1000000ull

static atomic_int inside, most, done;

struct worker {
	weft_semaphore *sem;
	int step;
	weft_semaphore_acquire acquire;
	weft_io sleep;
};

static weft_poll worker_poll(void *self, weft_cx *cx, void *out)
{
	struct worker *w = self;
	int64_t r64;
	int r;

	(void)out;
	switch (w->step) {
	case 0:
		weft_semaphore_acquire_init(&w->acquire, w->sem, 1);
		w->step = 1;
		/* fall through */
	case 1: /* wait for a permit: FIFO among the waiters */
		if (weft_semaphore_acquire_poll(&w->acquire, cx, &r) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		if (r < 0) /* -EPIPE: closed */
			return WEFT_READY;
		int n = atomic_fetch_add(&inside, 1) + 1;
		for (int m = atomic_load(&most);
		     n > m && !atomic_compare_exchange_weak(&most, &m, n);)
			;
		weft_io_prep_sleep(&w->sleep, 5 * MS);
		w->step = 2;
		/* fall through */
	case 2: /* the section: hold the permit across an await */
		if (weft_io_poll(&w->sleep, cx, &r64) == WEFT_PENDING)
			return WEFT_PENDING;
		atomic_fetch_sub(&inside, 1);
		weft_semaphore_release(w->sem, 1);
		w->step = 3;
		atomic_fetch_add(&done, 1);
	}
	return WEFT_READY;
}

static void worker_drop(void *self)
{
	struct worker *w = self;

	/* A waiting acquire gives back whatever it was given. */
	weft_semaphore_acquire_drop(&w->acquire);
	weft_io_drop(&w->sleep);
	if (w->step == 2) /* dropped inside: give the permit back */
		weft_semaphore_release(w->sem, 1);
}

static const weft_future_desc worker_desc = {
	.poll = worker_poll,
	.drop = worker_drop,
	.size = sizeof(struct worker),
};

int main(void)
{
	weft_runtime *rt;
	weft_semaphore *sem;
	weft_join *j[TASKS];

	if (weft_runtime_new(NULL, &rt) || weft_semaphore_new(3, &sem))
		return 1;
	for (int i = 0; i < TASKS; i++) {
		struct worker w = { .sem = sem };
		if (weft_spawn(rt, &worker_desc, &w, &j[i]))
			return 1;
	}
	for (int i = 0; i < TASKS; i++) {
		weft_join_future jf = { .join = j[i], .value = NULL };
		int status;
		if (weft_block_on(rt, &weft_join_future_desc, &jf, &status))
			return 1;
	}
	size_t left = weft_semaphore_available(sem);
	weft_runtime_free(rt);
	weft_semaphore_free(sem);
	printf("%d tasks done, at most %d inside at once, %zu permits back\n",
	       atomic_load(&done), atomic_load(&most), left);
	/* Usually exactly 3; fewer only if the machine stalled a task for
	 * longer than another's 5 ms section. Never more. */
	return atomic_load(&done) == TASKS && atomic_load(&most) >= 1 &&
			       atomic_load(&most) <= 3 && left == 3
		       ? 0
		       : 1;
}
