/* SPDX-License-Identifier: MIT */
/*
 * drain_stress: weft_runtime_shutdown_timeout racing the tasks it drains.
 *
 * Each round, on 1-4 workers: tasks that sleep a random 0-4 ms (some
 * spawning a child first, which may race the start of the drain and be
 * refused), tasks that yield a random number of times, and tasks that
 * wait forever on a notify (one, in a third of the rounds); then a drain
 * with a random grace period of 0-8 ms.
 * Checks: the call returns 0 only if every task finished, else
 * -ETIMEDOUT; each join handle gives 0 (finished: its counter was bumped)
 * or -ECANCELED (not finished); a child refused with -ESHUTDOWN is
 * refused only after the drain began; no task is lost or run twice, and
 * (ASan/LSan) nothing leaks. Exit 0 pass, 1 fail (seed).
 */
#include <weft.h>

#include "stress.h"

enum { TASKS = 48 };

struct shared {
	atomic_int finished;
	atomic_int children;
	atomic_bool draining;
	weft_notify *never;
};

struct child {
	struct shared *sh;
};

static weft_poll child_poll(void *self, weft_cx *cx, void *out)
{
	struct child *c = self;

	(void)cx;
	(void)out;
	atomic_fetch_add(&c->sh->children, 1);
	return WEFT_READY;
}

static const weft_future_desc child_desc = {
	.poll = child_poll,
	.size = sizeof(struct child),
};

enum { K_SLEEP, K_YIELD, K_FOREVER };

struct job {
	struct shared *sh;
	int kind, step, yields;
	uint64_t sleep_ns;
	bool spawn_child;
	int *done; /* the slot for this task's "finished" mark */
	weft_io sleep;
	weft_notified w;
};

static weft_poll job_poll(void *self, weft_cx *cx, void *out)
{
	struct job *j = self;
	int64_t r;
	int rc;

	(void)out;
	switch (j->kind) {
	case K_SLEEP:
		if (j->step == 0) {
			if (j->spawn_child) {
				struct child c = { .sh = j->sh };
				int err = weft_spawn(NULL, &child_desc, &c,
						     NULL);

				if (err == -ESHUTDOWN &&
				    !atomic_load(&j->sh->draining))
					stress_fail("spawn refused before the "
						    "drain");
				if (err && err != -ESHUTDOWN)
					stress_fail("child spawn: %d", err);
			}
			weft_io_prep_sleep(&j->sleep, j->sleep_ns);
			j->step = 1;
		}
		if (weft_io_poll(&j->sleep, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		break;
	case K_YIELD:
		if (j->yields-- > 0) {
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		break;
	case K_FOREVER:
		if (j->step == 0) {
			weft_notified_init(&j->w, j->sh->never);
			j->step = 1;
		}
		if (weft_notified_poll(&j->w, cx, &rc) == WEFT_PENDING)
			return WEFT_PENDING;
		stress_fail("a wait nobody notifies finished");
	}
	*j->done = 1;
	atomic_fetch_add(&j->sh->finished, 1);
	stress_progress();
	return WEFT_READY;
}

static void job_drop(void *self)
{
	struct job *j = self;

	weft_io_drop(&j->sleep);
	if (j->kind == K_FOREVER && j->step == 1)
		weft_notified_drop(&j->w);
}

static const weft_future_desc job_desc = {
	.poll = job_poll,
	.drop = job_drop,
	.size = sizeof(struct job),
};

static void round_once(uint64_t seed, unsigned *timed_out)
{
	uint64_t x = seed;
	weft_runtime_config cfg;
	weft_runtime *rt;
	struct shared sh = { 0 };
	weft_join *jh[TASKS];
	int done[TASKS] = { 0 };
	int err;

	weft_runtime_config_init(&cfg);
	cfg.workers = 1 + (unsigned)(stress_splitmix(&x) % 4);
	if (weft_runtime_new(&cfg, &rt) || weft_notify_new(&sh.never))
		stress_fail("setup");
	bool forever = stress_splitmix(&x) % 3 == 0;
	for (int i = 0; i < TASKS; i++) {
		struct job j = {
			.sh = &sh,
			.kind = forever && i == 0 ? K_FOREVER
						  : (int)(stress_splitmix(&x) % 2),
			.sleep_ns = stress_splitmix(&x) % 4000000,
			.yields = (int)(stress_splitmix(&x) % 200),
			.spawn_child = stress_splitmix(&x) % 4 == 0,
			.done = &done[i],
		};

		if (weft_spawn(rt, &job_desc, &j, &jh[i]))
			stress_fail("spawn");
	}
	stress_sleep_us((unsigned)(stress_splitmix(&x) % 1000));
	atomic_store(&sh.draining, true);
	err = weft_runtime_shutdown_timeout(rt, stress_splitmix(&x) % 8000000);
	if (err != 0 && err != -ETIMEDOUT)
		stress_fail("shutdown_timeout: %d", err);

	int finished = 0;
	for (int i = 0; i < TASKS; i++) {
		weft_poll p;
		int st;
		weft_waker none = WEFT_WAKER_EMPTY;
		weft_cx cx;

		weft_cx_init(&cx, &none);
		p = weft_join_poll(jh[i], &cx, &st, NULL);
		if (p != WEFT_READY)
			stress_fail("task %d not finished after shutdown", i);
		if (st == 0 && !done[i])
			stress_fail("task %d: 0 without finishing", i);
		if (st == -ECANCELED && done[i])
			stress_fail("task %d finished but was cancelled", i);
		if (st != 0 && st != -ECANCELED)
			stress_fail("task %d: %d", i, st);
		finished += st == 0;
		weft_join_drop(jh[i]);
	}
	if (finished != atomic_load(&sh.finished))
		stress_fail("%d joins say finished, %d finished", finished,
			    atomic_load(&sh.finished));
	if (err == 0 && finished != TASKS)
		stress_fail("0 returned with %d of %d finished", finished,
			    TASKS);
	if (forever && err != -ETIMEDOUT)
		stress_fail("a task waiting forever, yet %d", err);
	*timed_out += err == -ETIMEDOUT;
	weft_runtime_free(rt);
	if (weft_notify_free(sh.never))
		stress_fail("a wait is still queued");
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, timed_out = 0;
	double budget;

	stress_init("drain_stress", argc, argv);
	budget = stress_seconds < 4 ? stress_seconds : 4;
	while (rounds < 3 || stress_elapsed_s() < budget) {
		stress_set_phase("round");
		round_once(stress_seed + rounds, &timed_out);
		if (++rounds >= 300)
			break;
	}
	return stress_finish("%u rounds, %u timed out", rounds, timed_out);
}
