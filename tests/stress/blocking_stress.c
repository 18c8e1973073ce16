/* SPDX-License-Identifier: MIT */
/*
 * blocking_stress: the blocking pool under churn. Each round makes a
 * runtime with a random thread limit and a 1-20 ms keep-alive (threads
 * come and go), and foreign threads spawn jobs (kept, dropped or detached
 * receivers) while, in half the rounds, the runtime shuts down under them.
 *
 * Every accepted job either runs or is cancelled, exactly once, and never
 * runs after shutdown returned; once
 * shutdown returns every kept receiver is READY: with the job's own token
 * if it ran, -EPIPE if it was dropped from the queue. Under TSan this
 * checks the pool's lock, condition variables and thread hand-off.
 * Exit 0 pass, 1 fail (with the seed to replay).
 */
#include <weft.h>

#include "stress.h"

enum { SPAWNERS = 2, PER_SPAWNER = 300 };

struct token {
	atomic_int ran;
	atomic_int cancelled; /* dropped unrun at shutdown */
	bool accepted;
	weft_oneshot_rx *rx; /* kept receiver, or NULL */
};

struct round {
	weft_runtime *rt;
	atomic_bool shut;     /* weft_runtime_shutdown returned */
	atomic_int late;      /* jobs that started after that */
	struct token tok[SPAWNERS][PER_SPAWNER];
	uint64_t seed;
};

struct spawner {
	struct round *r;
	int id;
	int refused; /* -ESHUTDOWN results */
	int spawned;
};

static void *job(void *arg)
{
	struct token *t = arg;

	if (atomic_fetch_add(&t->ran, 1) != 0)
		stress_fail("a job ran twice");
	stress_progress();
	return t;
}

/* Jobs that sleep a little, so queues form behind the thread limit. */
static void *slow_job(void *arg)
{
	stress_sleep_us(200);
	return job(arg);
}

static struct round *cur_round; /* for the late check */

static void *checked_job(void *arg)
{
	if (atomic_load(&cur_round->shut))
		atomic_fetch_add(&cur_round->late, 1);
	return slow_job(arg);
}

static void token_cancel(void *arg)
{
	struct token *t = arg;

	if (atomic_fetch_add(&t->cancelled, 1) != 0)
		stress_fail("a job cancelled twice");
}

static void *spawner_main(void *arg)
{
	struct spawner *s = arg;
	struct round *r = s->r;
	struct stress_rng rng;

	stress_rng_init(&rng, r->seed * 31 + (uint64_t)s->id);
	for (int i = 0; i < PER_SPAWNER; i++) {
		struct token *t = &r->tok[s->id][i];
		unsigned how = (unsigned)stress_below(&rng, 3);
		weft_oneshot_rx *rx = NULL;
		int err = weft_spawn_blocking(r->rt, checked_job, token_cancel,
					      t, how == 2 ? NULL : &rx);

		if (err == -ESHUTDOWN) {
			s->refused++;
			continue;
		}
		if (err)
			stress_fail("weft_spawn_blocking: %d", err);
		s->spawned++;
		t->accepted = true;
		if (how == 1)
			weft_oneshot_rx_drop(rx); /* abandoned */
		else
			t->rx = rx; /* NULL when detached */
		if (stress_chance(&rng, 10))
			stress_sleep_us(100);
	}
	return NULL;
}

static void noop(const void *d)
{
	(void)d;
}

static weft_waker noop_clone(const void *d)
{
	extern const weft_waker_vtable stress_noop_vt;
	return (weft_waker){ &stress_noop_vt, d };
}

const weft_waker_vtable stress_noop_vt = { noop_clone, noop, noop, noop };

static void run_round(uint64_t seed, unsigned *ran_total, unsigned *piped)
{
	static struct round r;
	struct stress_rng rng;
	weft_runtime_config cfg;
	struct spawner sp[SPAWNERS];
	pthread_t th[SPAWNERS];

	memset(&r, 0, sizeof(r));
	r.seed = seed;
	cur_round = &r;
	stress_rng_init(&rng, seed);
	weft_runtime_config_init(&cfg);
	cfg.workers = 1 + (unsigned)stress_below(&rng, 2);
	cfg.blocking_threads = 1 + (unsigned)stress_below(&rng, 6);
	cfg.blocking_keepalive_ms = 1 + (unsigned)stress_below(&rng, 20);
	if (weft_runtime_new(&cfg, &r.rt))
		stress_fail("weft_runtime_new");
	bool race = stress_chance(&rng, 50);

	for (int i = 0; i < SPAWNERS; i++) {
		sp[i] = (struct spawner){ .r = &r, .id = i };
		if (pthread_create(&th[i], NULL, spawner_main, &sp[i]))
			stress_fail("pthread_create");
	}
	if (race)
		stress_sleep_us((unsigned)stress_below(&rng, 20000));
	else
		for (int i = 0; i < SPAWNERS; i++)
			pthread_join(th[i], NULL);
	if (!race && stress_chance(&rng, 50)) {
		/* Let every job run, and sometimes the keep-alive pass, so
		 * threads leave and later jobs start new ones. */
		int want = 0;
		for (int i = 0; i < SPAWNERS; i++)
			want += sp[i].spawned;
		stress_set_phase("drain");
		for (;;) {
			int ran = 0;
			for (int i = 0; i < SPAWNERS; i++)
				for (int k = 0; k < PER_SPAWNER; k++)
					ran += atomic_load(&r.tok[i][k].ran);
			if (ran == want)
				break;
			stress_sleep_us(500);
		}
		if (stress_chance(&rng, 50))
			stress_sleep_us(25000);
	}
	stress_set_phase("shutdown");
	if (weft_runtime_shutdown(r.rt))
		stress_fail("weft_runtime_shutdown");
	atomic_store(&r.shut, true);
	if (race)
		for (int i = 0; i < SPAWNERS; i++)
			pthread_join(th[i], NULL);
	stress_set_phase("check");
	if (atomic_load(&r.late))
		stress_fail("%d jobs started after shutdown returned",
			    atomic_load(&r.late));

	weft_waker w = { &stress_noop_vt, NULL };
	weft_cx cx;
	weft_cx_init(&cx, &w);
	for (int i = 0; i < SPAWNERS; i++) {
		for (int k = 0; k < PER_SPAWNER; k++) {
			struct token *t = &r.tok[i][k];
			int ran = atomic_load(&t->ran);
			int cancelled = atomic_load(&t->cancelled);
			*ran_total += (unsigned)ran;
			if (t->accepted && ran + cancelled != 1)
				stress_fail("job %d/%d: ran %d, cancelled %d",
					    i, k, ran, cancelled);
			if (!t->accepted && ran + cancelled)
				stress_fail("refused job %d/%d ran", i, k);
			if (!t->rx)
				continue;
			int st = 1;
			void *v = NULL;
			if (weft_oneshot_recv_poll(t->rx, &cx, &st, &v) !=
			    WEFT_READY)
				stress_fail("a receiver still pending after "
					    "shutdown (job %d/%d)", i, k);
			if (st == 0 && (v != t || ran != 1))
				stress_fail("job %d/%d: value %p ran %d", i,
					    k, v, ran);
			if (st == -EPIPE) {
				if (ran)
					stress_fail("job %d/%d ran, yet EPIPE",
						    i, k);
				(*piped)++;
			} else if (st != 0) {
				stress_fail("job %d/%d: status %d", i, k, st);
			}
			weft_oneshot_rx_drop(t->rx);
		}
	}
	weft_runtime_free(r.rt);
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, ran = 0, piped = 0;
	double budget;

	stress_init("blocking_stress", argc, argv);
	budget = stress_seconds < 4 ? stress_seconds : 4;
	while (rounds < 3 || stress_elapsed_s() < budget) {
		stress_set_phase("round");
		run_round(stress_seed + rounds, &ran, &piped);
		rounds++;
		if (rounds >= 200)
			break;
	}
	return stress_finish("%u rounds: %u jobs ran, %u dropped at "
			     "shutdown (-EPIPE)", rounds, ran, piped);
}
