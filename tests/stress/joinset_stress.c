/* SPDX-License-Identifier: MIT */
/*
 * joinset_stress: tasks of a weft_joinset finish on 1-3 workers (yielding
 * a random number of times) while a plain thread takes them with
 * join_next_blocking and try_join_next, the main thread spawns more into
 * the set meanwhile, and at random moments calls abort_all, or stops the
 * taker and frees the set with tasks still running.
 *
 * Checks, per round, after the runtime is freed (every task dropped):
 * every id is taken at most once, with the output of its own task; every
 * future finished exactly once (ready + cancelled == spawned); every
 * output produced was either taken or dropped unseen (taken + dropped ==
 * ready); and the join never says "empty" while tasks are left. Under
 * ASan, LSan checks that free and the late wakes leave nothing behind;
 * under TSan, the entry wakes racing with joins and free. Exit 0 pass, 1
 * fail (seed).
 */
#include <weft.h>

#include "stress.h"

enum { TASKS = 96 };

struct counts {
	atomic_int ready, cancelled;
};

static atomic_int dropped_outputs;

struct job {
	struct counts *c;
	int64_t value;
	int yields;
	bool done;
};

static weft_poll job_poll(void *self, weft_cx *cx, void *out)
{
	struct job *j = self;

	if (j->yields-- > 0) {
		weft_waker_wake_by_ref(weft_cx_waker(cx));
		return WEFT_PENDING;
	}
	*(int64_t *)out = j->value;
	j->done = true;
	atomic_fetch_add(&j->c->ready, 1);
	stress_progress();
	return WEFT_READY;
}

static void job_drop(void *self)
{
	struct job *j = self;

	if (!j->done)
		atomic_fetch_add(&j->c->cancelled, 1);
}

static void job_drop_output(void *out)
{
	(void)out;
	atomic_fetch_add(&dropped_outputs, 1);
}

static const weft_future_desc job_desc = {
	.poll = job_poll,
	.drop = job_drop,
	.drop_output = job_drop_output,
	.size = sizeof(struct job),
	.output_size = sizeof(int64_t),
};

struct round {
	weft_joinset *set;
	atomic_bool stop, all_spawned;
	int taken_ok, taken_cancelled;
	unsigned char seen[TASKS + 1];
	uint64_t seed;
};

static void take_one(struct round *r, weft_joinset_next *n, int64_t v)
{
	if (n->id < 1 || n->id > TASKS)
		stress_fail("id %" PRIu64, n->id);
	if (r->seen[n->id]++)
		stress_fail("id %" PRIu64 " taken twice", n->id);
	if (n->status == 0) {
		if (v != (int64_t)n->id * 3)
			stress_fail("id %" PRIu64 ": output %" PRId64, n->id,
				    v);
		r->taken_ok++;
	} else if (n->status == -ECANCELED) {
		r->taken_cancelled++;
	} else {
		stress_fail("status %d", n->status);
	}
}

static void *taker_main(void *arg)
{
	struct round *r = arg;
	uint64_t x = r->seed;

	while (!atomic_load(&r->stop)) {
		weft_joinset_next n;
		int64_t v = -1;
		int err;

		/* Read before the join: an empty set means done only if
		 * every spawn had happened before the join looked. */
		bool spawned_all = atomic_load(&r->all_spawned);

		if (stress_splitmix(&x) % 4 == 0) {
			err = weft_joinset_try_join_next(r->set, &n, &v);
			if (err == -EAGAIN || err == -ENOENT) {
				if (err == -ENOENT && spawned_all)
					break;
				stress_sleep_us(20);
				continue;
			}
		} else {
			err = weft_joinset_join_next_blocking(r->set, &n, &v);
			if (!err && n.status == -ENOENT) {
				if (spawned_all)
					break;
				stress_sleep_us(20);
				continue;
			}
		}
		if (err)
			stress_fail("join: %d", err);
		take_one(r, &n, v);
	}
	return NULL;
}

static void run_round(uint64_t seed, unsigned *frees, unsigned *aborts)
{
	uint64_t x = seed;
	weft_runtime_config cfg;
	weft_runtime *rt;
	struct counts c = { 0 };
	struct round *r = calloc(1, sizeof(*r));
	int mode = (int)(stress_splitmix(&x) % 3); /* 0 all, 1 abort, 2 free */
	int spawned = 0, left = 0;
	pthread_t th;

	if (!r)
		stress_fail("calloc");
	r->seed = stress_splitmix(&x);
	atomic_store(&dropped_outputs, 0);
	weft_runtime_config_init(&cfg);
	cfg.workers = 1 + (unsigned)(stress_splitmix(&x) % 3);
	if (weft_runtime_new(&cfg, &rt) ||
	    weft_joinset_new(sizeof(int64_t), &r->set))
		stress_fail("setup");
	if (pthread_create(&th, NULL, taker_main, r))
		stress_fail("pthread_create");
	for (int i = 0; i < TASKS; i++) {
		struct job j = { .c = &c, .value = (int64_t)(i + 1) * 3,
				 .yields = (int)(stress_splitmix(&x) % 8) };
		uint64_t id;

		if (weft_joinset_spawn(r->set, rt, &job_desc, &j, &id))
			stress_fail("spawn");
		if (id != (uint64_t)i + 1)
			stress_fail("id %" PRIu64 " for spawn %d", id, i);
		spawned++;
		if (stress_splitmix(&x) % 16 == 0)
			stress_sleep_us((unsigned)(stress_splitmix(&x) % 200));
		if (mode == 1 && stress_splitmix(&x) % TASKS == 0) {
			weft_joinset_abort_all(r->set);
			(*aborts)++;
		}
	}
	atomic_store(&r->all_spawned, true);
	if (mode == 1) {
		stress_sleep_us((unsigned)(stress_splitmix(&x) % 300));
		weft_joinset_abort_all(r->set);
		(*aborts)++;
	}
	if (mode == 2) {
		stress_sleep_us((unsigned)(stress_splitmix(&x) % 300));
		atomic_store(&r->stop, true);
	}
	pthread_join(th, NULL);
	left = (int)weft_joinset_len(r->set);
	if (mode != 2 && left)
		stress_fail("%d tasks left after the join said empty", left);
	if (mode == 2)
		(*frees)++;
	weft_joinset_free(r->set); /* aborts what is left */
	weft_runtime_free(rt);     /* every task dropped by now */

	int ready = atomic_load(&c.ready), cancelled = atomic_load(&c.cancelled);
	if (ready + cancelled != spawned)
		stress_fail("%d ready + %d cancelled != %d spawned", ready,
			    cancelled, spawned);
	if (r->taken_ok + r->taken_cancelled + left != spawned)
		stress_fail("%d + %d taken + %d left != %d", r->taken_ok,
			    r->taken_cancelled, left, spawned);
	if (r->taken_ok + atomic_load(&dropped_outputs) != ready)
		stress_fail("%d taken + %d dropped outputs != %d ready",
			    r->taken_ok, atomic_load(&dropped_outputs), ready);
	if (r->taken_cancelled > cancelled)
		stress_fail("more cancelled taken than cancelled");
	free(r);
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, frees = 0, aborts = 0;
	double budget;

	stress_init("joinset_stress", argc, argv);
	budget = stress_seconds < 4 ? stress_seconds : 4;
	while (rounds < 3 || stress_elapsed_s() < budget) {
		stress_set_phase("round");
		run_round(stress_seed + rounds, &frees, &aborts);
		if (++rounds >= 400)
			break;
	}
	return stress_finish("%u rounds, %u frees mid-flight, %u abort_alls",
			     rounds, frees, aborts);
}
