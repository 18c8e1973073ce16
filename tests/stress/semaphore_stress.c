/* SPDX-License-Identifier: MIT */
/*
 * semaphore_stress: tasks on 1-4 workers take 1..P permits of a P-permit
 * semaphore, hold them across yields and give them back, some through a
 * weft_timeout that gives up after a few microseconds (the acquire is then
 * dropped while queued, or completed and never seen), while a foreign
 * thread aborts tasks at random: queued, holding, or between.
 *
 * Checks: never more than P permits held at once; at the end nobody holds
 * any, every permit is back (no drop path lost one or handed one out
 * twice) and no waiter is left queued (the semaphore frees). Under TSan
 * this checks the waiter list's locking. Exit 0 pass, 1 fail (seed).
 */
#include <weft.h>

#include "stress.h"

enum { TASKS = 32, ROUNDS_PER_TASK = 30 };

struct shared {
	weft_semaphore *s;
	size_t permits;
	atomic_int held;
	atomic_int timeouts;
};

struct user {
	struct shared *sh;
	uint64_t seed;
	int round, holding, want, yields, step;
	bool timed;
	weft_semaphore_acquire a;
	int ares;
	weft_timeout t;
};

static uint64_t next(uint64_t *x)
{
	return stress_splitmix(x);
}

static weft_poll user_poll(void *self, weft_cx *cx, void *out)
{
	struct user *u = self;
	int r;

	(void)out;
	while (u->round < ROUNDS_PER_TASK) {
		if (u->step == 0) {
			u->want = 1 + (int)(next(&u->seed) % u->sh->permits);
			weft_semaphore_acquire_init(&u->a, u->sh->s,
						    (size_t)u->want);
			u->timed = next(&u->seed) % 3 == 0;
			if (u->timed) {
				weft_future inner;
				weft_future_init(&inner,
						 &weft_semaphore_acquire_desc,
						 &u->a, &u->ares);
				weft_timeout_init(&u->t, &inner,
						  next(&u->seed) % 200000);
			}
			u->step = 1;
		}
		if (u->step == 1) {
			if (u->timed) {
				if (weft_timeout_poll(&u->t, cx, &r) ==
				    WEFT_PENDING)
					return WEFT_PENDING;
				if (r == -ETIMEDOUT) {
					atomic_fetch_add(&u->sh->timeouts, 1);
					u->step = 0;
					u->round++;
					continue;
				}
				if (r == 0)
					r = u->ares;
			} else if (weft_semaphore_acquire_poll(&u->a, cx, &r) ==
				   WEFT_PENDING) {
				return WEFT_PENDING;
			}
			if (r != 0)
				stress_fail("acquire: %d", r);
			u->holding = u->want;
			if (atomic_fetch_add(&u->sh->held, u->holding) +
				    u->holding > (int)u->sh->permits)
				stress_fail("more than %zu permits held",
					    u->sh->permits);
			u->yields = (int)(next(&u->seed) % 3);
			u->step = 2;
		}
		if (u->yields-- > 0) {
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		atomic_fetch_sub(&u->sh->held, u->holding);
		weft_semaphore_release(u->sh->s, (size_t)u->holding);
		u->holding = 0;
		u->step = 0;
		u->round++;
		stress_progress();
	}
	return WEFT_READY;
}

static void user_drop(void *self)
{
	struct user *u = self;

	if (u->step == 1) {
		if (u->timed)
			weft_timeout_drop(&u->t);
		else
			weft_semaphore_acquire_drop(&u->a);
	}
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

static void run_round(uint64_t seed, unsigned *aborted)
{
	uint64_t x = seed;
	weft_runtime_config cfg;
	weft_runtime *rt;
	struct shared sh = { .permits = 1 + next(&x) % 4 };
	weft_join *j[TASKS];

	weft_runtime_config_init(&cfg);
	cfg.workers = 1 + (unsigned)(next(&x) % 4);
	if (weft_runtime_new(&cfg, &rt) ||
	    weft_semaphore_new(sh.permits, &sh.s))
		stress_fail("setup");
	for (int i = 0; i < TASKS; i++) {
		struct user u = { .sh = &sh, .seed = next(&x) };
		if (weft_spawn(rt, &user_desc, &u, &j[i]))
			stress_fail("spawn");
	}
	/* Abort a random few, at random moments. */
	for (int i = 0; i < TASKS; i++) {
		if (next(&x) % 4)
			continue;
		stress_sleep_us((unsigned)(next(&x) % 300));
		weft_task_abort(j[i]);
		(*aborted)++;
	}
	for (int i = 0; i < TASKS; i++) {
		weft_join_future jf = { .join = j[i], .value = NULL };
		int st;
		if (weft_block_on(rt, &weft_join_future_desc, &jf, &st))
			stress_fail("block_on");
		if (st != 0 && st != -ECANCELED)
			stress_fail("task %d: %d", i, st);
	}
	if (atomic_load(&sh.held))
		stress_fail("%d permits still held", atomic_load(&sh.held));
	if (weft_semaphore_available(sh.s) != sh.permits)
		stress_fail("%zu of %zu permits back (seed %" PRIu64 ")",
			    weft_semaphore_available(sh.s), sh.permits, seed);
	if (weft_semaphore_free(sh.s))
		stress_fail("a waiter is still queued");
	weft_runtime_free(rt);
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, aborted = 0;
	double budget;

	stress_init("semaphore_stress", argc, argv);
	budget = stress_seconds < 4 ? stress_seconds : 4;
	while (rounds < 3 || stress_elapsed_s() < budget) {
		stress_set_phase("round");
		run_round(stress_seed + rounds, &aborted);
		if (++rounds >= 300)
			break;
	}
	return stress_finish("%u rounds, %u aborts", rounds, aborted);
}
