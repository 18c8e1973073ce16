/* SPDX-License-Identifier: MIT */
/*
 * weft-bench: the scheduler benchmarks of Tokio's benches/rt_multi_threaded.rs
 * with the same names and sizes, so the numbers can be set side by side:
 *
 *   spawn_many_local        a task on a worker spawns 10,000 tasks
 *   spawn_many_remote_idle  the main thread spawns 10,000 tasks into an idle
 *                           runtime and awaits their join handles
 *   yield_many              200 tasks yield 1,000 times each
 *   ping_pong               1,000 concurrent oneshot round trips, each with
 *                           its own pair of tasks
 *   chained_spawn           each task spawns the next, 1,000 deep
 *
 * and the timer workloads of issue 6 (the timer wheel):
 *
 *   timer_churn             one task arms and cancels 1,000,000 10 s sleeps:
 *                           each is polled once (PENDING: the timer is
 *                           armed) and dropped; ns per arm + cancel
 *   timers_10k, timers_100k N tasks, spawned by one task, each sleep
 *                           1..100 ms (a fixed-seed per-task PRNG) from
 *                           their first poll, as tokio::time::sleep(d)
 *                           does, and record how late they woke: wall
 *                           time and mean, p99 and max lateness
 *   sleep_rss               1,000,000 tasks pending in 10 s sleeps: RSS
 *                           growth per pending sleep and peak RSS
 *
 * Each workload gets one runtime, one warm-up iteration and --reps timed
 * ones (at most TIMER_REPS for the timer workloads, which take up to a
 * second each); the median is reported. Completion is signalled as Tokio
 * does it: an atomic countdown whose last decrement sends on a channel
 * (here a oneshot) that the waiting side awaits.
 *
 * and the channel, mutex and fiber workloads (mpsc_*, mutex_*, fiber_*),
 * each described above its code.
 *
 * task_memory spawns 100,000 tasks that park on a shared gate and reports
 * the growth of the resident set per task. It runs first, on a fresh heap,
 * so that memory freed by other workloads does not hide the growth.
 * sleep_rss runs in a child process (weft-bench run again with
 * --sleep-rss-child), on a fresh heap for the same reason, and so that its
 * million tasks do not count in the peak RSS of the others.
 *
 * Output: tables for people, then lines for scripts (each one line):
 *   bench: <workload> workers=<n> ops_per_sec=<f> ns_per_op=<f> reps=<n>
 *   bench: <timers_*> workers=<n> tasks=<n> wall_ms=<f> mean_us=<f>
 *          p99_us=<f> max_us=<f> early=<n> start_p99_us=<f> reps=<n>
 *   bench: sleep_rss workers=<n> sleeps=<n> peak_rss_kib=<n>
 *          rss_delta_kib=<n> bytes_per_sleep=<f>
 *   bench: bytes_per_task=<f>
 *   bench: peak_rss_kib=<n>            (all but sleep_rss)
 * The timers_* figures are medians over the reps of each run's figure;
 * early counts wakes before the deadline (there must be none), summed over
 * the reps; start_p99_us is the p99 of how long a sleeper waited from its
 * spawn to its first poll (the spawn backlog, which is not in the
 * lateness: the sleep starts at the first poll).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft.h>

#include "bench_util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define NUM_SPAWN 10000		/* spawn_many_* */
#define YIELD_TASKS 200		/* yield_many */
#define NUM_YIELD 1000
#define NUM_PINGS 1000		/* ping_pong */
#define CHAIN_DEPTH 1000	/* chained_spawn */
#define MEM_TASKS 100000	/* task_memory */
#define CHURN_OPS 1000000	/* timer_churn */
#define RSS_SLEEPS 1000000	/* sleep_rss */
#define LONG_SLEEP_NS 10000000000ull /* timer_churn, sleep_rss: 10 s */
#define TIMER_REPS 5		/* the most reps of a timer workload */

static unsigned rt_flags; /* WEFT_RT_* from the command line */

/* Any weft error is fatal here; tasks call this too, so no unwinding. */
static void check(int err, const char *what)
{
	if (err >= 0)
		return;
	fflush(stdout);
	fprintf(stderr, "weft-bench: %s: %s\n", what, weft_strerror(err));
	exit(1);
}

/* A runtime with @workers workers and the command line's flags. */
static weft_runtime *new_runtime(unsigned workers)
{
	weft_runtime_config cfg;
	weft_runtime *rt;

	weft_runtime_config_init(&cfg);
	cfg.workers = workers;
	cfg.flags |= rt_flags;
	check(weft_runtime_new(&cfg, &rt), "weft_runtime_new");
	return rt;
}

/* ------------------------------------------------------------- latch */

/*
 * A countdown: whoever brings it to zero sends on a oneshot, and a future
 * awaiting the receiver learns that all the work is done.
 */
struct latch {
	atomic_size_t rem;
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
};

static void latch_init(struct latch *l, size_t n)
{
	atomic_init(&l->rem, n);
	check(weft_oneshot_new(0, &l->tx, &l->rx), "weft_oneshot_new");
}

static void latch_count_down(struct latch *l)
{
	/*
	 * acq_rel: the decrements form one release sequence, so everything a
	 * task did before its decrement happens before the send made by the
	 * last one, and so before the waiter returns and reuses the memory
	 * the tasks were pointing at (the latch itself lives on its stack).
	 */
	if (atomic_fetch_sub_explicit(&l->rem, 1, memory_order_acq_rel) == 1)
		check(weft_oneshot_send(l->tx, l), "weft_oneshot_send");
}

/* Poll the latch's receiver: READY once it reached zero. */
static weft_poll latch_poll(struct latch *l, weft_cx *cx)
{
	int status;

	if (weft_oneshot_recv_poll(l->rx, cx, &status, NULL) == WEFT_PENDING)
		return WEFT_PENDING;
	check(status, "latch receive");
	return WEFT_READY;
}

/* A future that only awaits a latch; for block_on from the main thread. */
struct latch_wait {
	struct latch *l;
};

static weft_poll latch_wait_poll(void *self, weft_cx *cx, void *out)
{
	struct latch_wait *w = self;

	(void)out;
	return latch_poll(w->l, cx);
}

static const weft_future_desc latch_wait_desc = {
	.poll = latch_wait_poll,
	.size = sizeof(struct latch_wait),
};

/* Wait from main for @l to reach zero, then release its receiver. */
static void latch_wait(weft_runtime *rt, struct latch *l)
{
	struct latch_wait w = { .l = l };

	check(weft_block_on(rt, &latch_wait_desc, &w, NULL), "weft_block_on");
	weft_oneshot_rx_drop(l->rx);
	l->rx = NULL;
}

/* A future that finishes at once (Tokio's `async {}`). */
static weft_poll noop_poll(void *self, weft_cx *cx, void *out)
{
	(void)self;
	(void)cx;
	(void)out;
	return WEFT_READY;
}

static const weft_future_desc noop_desc = { .poll = noop_poll };

/* A task that counts a latch down and finishes. */
struct count_task {
	struct latch *done;
};

static weft_poll count_poll(void *self, weft_cx *cx, void *out)
{
	struct count_task *t = self;

	(void)cx;
	(void)out;
	latch_count_down(t->done);
	return WEFT_READY;
}

static const weft_future_desc count_desc = {
	.poll = count_poll,
	.size = sizeof(struct count_task),
};

/* -------------------------------------------------- spawn_many_local */

/* A fiber that counts a latch down and returns (fiber_spawn_many). */
static void *count_fiber(void *arg)
{
	latch_count_down(arg);
	return NULL;
}

/* Spawns NUM_SPAWN counting tasks (or fibers) from its worker, then
 * awaits them. */
struct sml_root {
	struct latch *done;
	bool fibers;
	bool spawned;
};

static weft_poll sml_root_poll(void *self, weft_cx *cx, void *out)
{
	struct sml_root *r = self;
	struct count_task c = { .done = r->done };

	(void)out;
	for (int i = 0; !r->spawned && i < NUM_SPAWN; i++) {
		if (r->fibers)
			check(weft_go(NULL, count_fiber, r->done, NULL, NULL),
			      "weft_go");
		else
			check(weft_spawn(NULL, &count_desc, &c, NULL),
			      "weft_spawn");
	}
	r->spawned = true;
	return latch_poll(r->done, cx);
}

static const weft_future_desc sml_root_desc = {
	.poll = sml_root_poll,
	.size = sizeof(struct sml_root),
};

static void spawn_many_run(weft_runtime *rt, bool fibers)
{
	struct latch done;
	struct sml_root r = { .done = &done, .fibers = fibers };

	latch_init(&done, NUM_SPAWN);
	check(weft_block_on(rt, &sml_root_desc, &r, NULL), "weft_block_on");
	weft_oneshot_rx_drop(done.rx);
}

static void spawn_many_local(weft_runtime *rt)
{
	spawn_many_run(rt, false);
}

/* -------------------------------------------- spawn_many_remote_idle */

/* Awaits join handles h[next..n) in order, dropping each when done. */
struct join_all {
	weft_join **h;
	size_t n;
	size_t next;
};

static weft_poll join_all_poll(void *self, weft_cx *cx, void *out)
{
	struct join_all *j = self;
	int status;

	(void)out;
	while (j->next < j->n) {
		if (weft_join_poll(j->h[j->next], cx, &status, NULL) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		check(status, "weft_join_poll");
		weft_join_drop(j->h[j->next]);
		j->h[j->next++] = NULL;
	}
	return WEFT_READY;
}

static void join_all_drop(void *self)
{
	struct join_all *j = self;

	for (; j->next < j->n; j->next++) {
		weft_join_drop(j->h[j->next]);
		j->h[j->next] = NULL;
	}
}

static const weft_future_desc join_all_desc = {
	.poll = join_all_poll,
	.drop = join_all_drop,
	.size = sizeof(struct join_all),
};

static void spawn_many_remote_idle(weft_runtime *rt)
{
	static weft_join *handles[NUM_SPAWN];
	struct join_all j = { .h = handles, .n = NUM_SPAWN };

	for (int i = 0; i < NUM_SPAWN; i++)
		check(weft_spawn(rt, &noop_desc, NULL, &handles[i]),
		      "weft_spawn");
	check(weft_block_on(rt, &join_all_desc, &j, NULL), "weft_block_on");
}

/* -------------------------------------------------------- yield_many */

struct yield_task {
	struct latch *done;
	unsigned left;
	weft_yield y;
};

static weft_poll yield_task_poll(void *self, weft_cx *cx, void *out)
{
	struct yield_task *t = self;

	(void)out;
	while (t->left > 0) {
		if (weft_yield_poll(&t->y, cx) == WEFT_PENDING)
			return WEFT_PENDING;
		t->y = (weft_yield)WEFT_YIELD_INIT;
		t->left--;
	}
	latch_count_down(t->done);
	return WEFT_READY;
}

static const weft_future_desc yield_task_desc = {
	.poll = yield_task_poll,
	.size = sizeof(struct yield_task),
};

static void yield_many(weft_runtime *rt)
{
	struct latch done;
	struct yield_task t = {
		.done = &done,
		.left = NUM_YIELD,
		.y = WEFT_YIELD_INIT,
	};

	latch_init(&done, YIELD_TASKS);
	for (int i = 0; i < YIELD_TASKS; i++)
		check(weft_spawn(rt, &yield_task_desc, &t, NULL), "weft_spawn");
	latch_wait(rt, &done);
}

/* --------------------------------------------------------- ping_pong */

/* pong: await rx1, then answer on tx2. */
struct pong {
	weft_oneshot_rx *rx1;
	weft_oneshot_tx *tx2;
};

static weft_poll pong_poll(void *self, weft_cx *cx, void *out)
{
	struct pong *p = self;
	int status;

	(void)out;
	if (weft_oneshot_recv_poll(p->rx1, cx, &status, NULL) == WEFT_PENDING)
		return WEFT_PENDING;
	check(status, "pong receive");
	weft_oneshot_rx_drop(p->rx1);
	p->rx1 = NULL;
	check(weft_oneshot_send(p->tx2, p), "pong send");
	p->tx2 = NULL;
	return WEFT_READY;
}

static void pong_drop(void *self)
{
	struct pong *p = self;

	weft_oneshot_rx_drop(p->rx1);
	weft_oneshot_tx_drop(p->tx2);
}

static const weft_future_desc pong_desc = {
	.poll = pong_poll,
	.drop = pong_drop,
	.size = sizeof(struct pong),
};

/* ping: spawn a pong, send on tx1, await rx2, count down. */
struct ping {
	struct latch *done;
	weft_oneshot_rx *rx2;
};

static weft_poll ping_poll(void *self, weft_cx *cx, void *out)
{
	struct ping *p = self;
	weft_oneshot_tx *tx1;
	int status;

	(void)out;
	if (!p->rx2) {
		struct pong pong;

		check(weft_oneshot_new(0, &tx1, &pong.rx1), "weft_oneshot_new");
		check(weft_oneshot_new(0, &pong.tx2, &p->rx2),
		      "weft_oneshot_new");
		/* The pong task owns rx1 and tx2 from here on. */
		check(weft_spawn(NULL, &pong_desc, &pong, NULL), "weft_spawn");
		check(weft_oneshot_send(tx1, p), "ping send");
	}
	if (weft_oneshot_recv_poll(p->rx2, cx, &status, NULL) == WEFT_PENDING)
		return WEFT_PENDING;
	check(status, "ping receive");
	latch_count_down(p->done);
	return WEFT_READY;
}

static void ping_drop(void *self)
{
	struct ping *p = self;

	weft_oneshot_rx_drop(p->rx2);
}

static const weft_future_desc ping_desc = {
	.poll = ping_poll,
	.drop = ping_drop,
	.size = sizeof(struct ping),
};

/* The spawner: NUM_PINGS pings from one worker. */
static weft_poll pp_spawner_poll(void *self, weft_cx *cx, void *out)
{
	struct ping p = { .done = *(struct latch **)self };

	(void)cx;
	(void)out;
	for (int i = 0; i < NUM_PINGS; i++)
		check(weft_spawn(NULL, &ping_desc, &p, NULL), "weft_spawn");
	return WEFT_READY;
}

static const weft_future_desc pp_spawner_desc = {
	.poll = pp_spawner_poll,
	.size = sizeof(struct latch *),
};

/* The block_on future: spawn the spawner, await it, await the pings. */
struct pp_root {
	struct latch *done;
	weft_join *spawner;
	int step;
};

static weft_poll pp_root_poll(void *self, weft_cx *cx, void *out)
{
	struct pp_root *r = self;
	int status;

	(void)out;
	switch (r->step) {
	case 0:
		check(weft_spawn(NULL, &pp_spawner_desc, &r->done,
				 &r->spawner), "weft_spawn");
		r->step = 1;
		/* fall through */
	case 1:
		if (weft_join_poll(r->spawner, cx, &status, NULL) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		check(status, "weft_join_poll");
		weft_join_drop(r->spawner);
		r->spawner = NULL;
		r->step = 2;
		/* fall through */
	default:
		return latch_poll(r->done, cx);
	}
}

static void pp_root_drop(void *self)
{
	struct pp_root *r = self;

	weft_join_drop(r->spawner);
}

static const weft_future_desc pp_root_desc = {
	.poll = pp_root_poll,
	.drop = pp_root_drop,
	.size = sizeof(struct pp_root),
};

static void ping_pong(weft_runtime *rt)
{
	struct latch done;
	struct pp_root r = { .done = &done };

	latch_init(&done, NUM_PINGS);
	check(weft_block_on(rt, &pp_root_desc, &r, NULL), "weft_block_on");
	weft_oneshot_rx_drop(done.rx);
}

/* ----------------------------------------------------- chained_spawn */

struct chain {
	struct latch *done;
	unsigned n;
};

/* Tentative definition: each link spawns the next with it. */
static const weft_future_desc chain_desc;

static weft_poll chain_poll(void *self, weft_cx *cx, void *out)
{
	struct chain *c = self;
	struct chain next = { .done = c->done, .n = c->n - 1 };

	(void)cx;
	(void)out;
	if (c->n == 0)
		latch_count_down(c->done);
	else
		check(weft_spawn(NULL, &chain_desc, &next, NULL),
		      "weft_spawn");
	return WEFT_READY;
}

static const weft_future_desc chain_desc = {
	.poll = chain_poll,
	.size = sizeof(struct chain),
};

/* The block_on future: start the chain from a worker and await its end. */
struct chain_root {
	struct latch *done;
	bool spawned;
};

static weft_poll chain_root_poll(void *self, weft_cx *cx, void *out)
{
	struct chain_root *r = self;
	struct chain first = { .done = r->done, .n = CHAIN_DEPTH };

	(void)out;
	if (!r->spawned) {
		check(weft_spawn(NULL, &chain_desc, &first, NULL),
		      "weft_spawn");
		r->spawned = true;
	}
	return latch_poll(r->done, cx);
}

static const weft_future_desc chain_root_desc = {
	.poll = chain_root_poll,
	.size = sizeof(struct chain_root),
};

static void chained_spawn(weft_runtime *rt)
{
	struct latch done;
	struct chain_root r = { .done = &done };

	latch_init(&done, 1);
	check(weft_block_on(rt, &chain_root_desc, &r, NULL), "weft_block_on");
	weft_oneshot_rx_drop(done.rx);
}

/* ------------------------------------------------------- task_memory */

/*
 * A gate that parks any number of tasks until it opens. Each waiting task
 * links a node embedded in its own state into the gate's list, so parking
 * allocates nothing and the RSS growth is the tasks' own.
 *
 * Locking: every field of the gate and of a linked node (including its
 * waker) is under gate->lock. gate_open() wakes the nodes while it holds
 * the lock, so a woken task, which must take the lock to see the gate
 * open, cannot finish and free its node while the opener still walks the
 * list.
 */
struct gate_node {
	struct gate_node *prev, *next;
	weft_waker waker;
	bool linked;
};

struct gate {
	pthread_mutex_t lock;
	bool open;
	struct gate_node list; /* circular, list itself is the sentinel */
};

static void gate_init(struct gate *g)
{
	pthread_mutex_init(&g->lock, NULL);
	g->open = false;
	g->list.prev = g->list.next = &g->list;
}

static void gate_unlink(struct gate_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
	n->linked = false;
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	while (g->list.next != &g->list) {
		struct gate_node *n = g->list.next;

		gate_unlink(n);
		weft_waker_wake(&n->waker);
	}
	pthread_mutex_unlock(&g->lock);
}

struct gate_task {
	struct gate *gate;
	struct latch *parked;
	struct latch *done;
	bool counted;
	struct gate_node node;
};

static weft_poll gate_task_poll(void *self, weft_cx *cx, void *out)
{
	struct gate_task *t = self;
	struct gate *g = t->gate;
	const weft_waker *w = weft_cx_waker(cx);

	(void)out;
	pthread_mutex_lock(&g->lock);
	if (g->open) {
		if (t->node.linked)
			gate_unlink(&t->node);
		pthread_mutex_unlock(&g->lock);
		weft_waker_drop(&t->node.waker);
		latch_count_down(t->done);
		return WEFT_READY;
	}
	if (!t->node.linked) {
		t->node.prev = g->list.prev;
		t->node.next = &g->list;
		g->list.prev->next = &t->node;
		g->list.prev = &t->node;
		t->node.linked = true;
		t->node.waker = weft_waker_clone(w);
	} else if (!weft_waker_will_wake(&t->node.waker, w)) {
		weft_waker_drop(&t->node.waker);
		t->node.waker = weft_waker_clone(w);
	}
	pthread_mutex_unlock(&g->lock);

	if (!t->counted) {
		t->counted = true;
		latch_count_down(t->parked);
	}
	return WEFT_PENDING;
}

/* Cancelled while parked (runtime shutdown): leave the gate. */
static void gate_task_drop(void *self)
{
	struct gate_task *t = self;

	pthread_mutex_lock(&t->gate->lock);
	if (t->node.linked)
		gate_unlink(&t->node);
	pthread_mutex_unlock(&t->gate->lock);
	weft_waker_drop(&t->node.waker);
}

static const weft_future_desc gate_task_desc = {
	.poll = gate_task_poll,
	.drop = gate_task_drop,
	.size = sizeof(struct gate_task),
};

/*
 * RSS growth per parked task: spawn MEM_TASKS gate tasks from main, wait
 * until every one has been polled and parked, and read RSS. Returns bytes
 * per task.
 */
static double task_memory(unsigned workers)
{
	weft_runtime *rt;
	struct latch parked, done;
	struct gate gate;
	struct gate_task t;
	long before, after;

	rt = new_runtime(workers);
	/* Let every worker start and touch its stack and ring first. */
	check(weft_block_on(rt, &noop_desc, NULL, NULL), "weft_block_on");

	gate_init(&gate);
	latch_init(&parked, MEM_TASKS);
	latch_init(&done, MEM_TASKS);
	memset(&t, 0, sizeof(t));
	t.gate = &gate;
	t.parked = &parked;
	t.done = &done;

	before = bench_rss_bytes();
	for (int i = 0; i < MEM_TASKS; i++)
		check(weft_spawn(rt, &gate_task_desc, &t, NULL), "weft_spawn");
	latch_wait(rt, &parked);
	after = bench_rss_bytes();

	gate_open(&gate);
	latch_wait(rt, &done);
	weft_runtime_free(rt);
	pthread_mutex_destroy(&gate.lock);

	if (before < 0 || after < 0) {
		fprintf(stderr, "weft-bench: cannot read /proc/self/statm\n");
		return -1.0;
	}
	printf("task_memory: %d parked tasks (%zu bytes of future state "
	       "each): RSS +%ld KiB, %.1f bytes/task\n\n", MEM_TASKS,
	       sizeof(struct gate_task), (after - before) / 1024,
	       (double)(after - before) / MEM_TASKS);
	fflush(stdout);
	return (double)(after - before) / MEM_TASKS;
}

/* ------------------------------------------------------- timer_churn */

/*
 * Arms and cancels CHURN_OPS timers from one task: a 10 s sleep polled
 * once, which arms it (PENDING: the deadline is far), then dropped, which
 * disarms it. Nothing fires: this is the cost of a deadline that is set
 * and then not needed, the common case of an I/O timeout.
 */
static weft_poll churn_poll(void *self, weft_cx *cx, void *out)
{
	weft_io *sleep = self;
	int64_t res;

	(void)out;
	for (int i = 0; i < CHURN_OPS; i++) {
		check(weft_io_prep_sleep(sleep, LONG_SLEEP_NS),
		      "weft_io_prep_sleep");
		if (weft_io_poll(sleep, cx, &res) == WEFT_READY) {
			check((int)res, "timer_churn sleep");
			check(-EPROTO, "timer_churn: a 10 s sleep was ready");
		}
		weft_io_drop(sleep);
	}
	return WEFT_READY;
}

/* Drop for any future state whose first member is its weft_io. */
static void sleep_drop(void *self)
{
	weft_io_drop(self);
}

static const weft_future_desc churn_desc = {
	.poll = churn_poll,
	.drop = sleep_drop,
	.size = sizeof(weft_io),
};

static void timer_churn(weft_runtime *rt)
{
	weft_io sleep = WEFT_IO_INIT;

	check(weft_block_on(rt, &churn_desc, &sleep, NULL), "weft_block_on");
}

/* ------------------------------------------------------------ timers */

#define TIMER_SEED 0x74696d657273ull	/* "timers" */
#define TIMER_MIN_NS 1000000ull		/* 1 ms */
#define TIMER_MAX_NS 100000000ull	/* 100 ms */

/*
 * The sleep of task @i of a timers run: the i-th number of a splitmix64
 * stream (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014) that starts at TIMER_SEED, uniform in
 * TIMER_MIN_NS..TIMER_MAX_NS. The generator is counter-based, so each
 * spawn computes its own, and task i sleeps as long in every rep and in
 * tokio-bench. The modulo bias (below 2^27 / 2^64) is negligible.
 */
static uint64_t timer_duration_ns(uint64_t i)
{
	uint64_t z = TIMER_SEED + i * 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return TIMER_MIN_NS + z % (TIMER_MAX_NS - TIMER_MIN_NS + 1);
}

/*
 * What the sleepers of a timers workload share: a slot of each array per
 * sleeper, written by that sleeper only and published to main by the
 * latch's release sequence.
 */
struct timers_run {
	struct latch done;
	size_t n;
	int64_t *lateness;	/* wake time - deadline, ns */
	int64_t *start;		/* first poll - spawn, ns */
};

/*
 * One sleeper: at its first poll, sleeps its duration from now (the
 * deadline is taken then, as tokio::time::sleep(d) takes it), then writes
 * how late it woke (ns; negative if early) to its slot and counts the
 * latch down. It also records how long it waited to be polled at all.
 */
struct sleeper {
	weft_io sleep;		/* first: sleep_drop() */
	struct timers_run *run;
	size_t i;
	uint64_t spawned;
	uint64_t deadline;
	bool prepared;
};

static weft_poll sleeper_poll(void *self, weft_cx *cx, void *out)
{
	struct sleeper *s = self;
	int64_t res;

	(void)out;
	if (!s->prepared) {
		uint64_t now = weft_now_ns();

		s->run->start[s->i] = (int64_t)(now - s->spawned);
		s->deadline = now + timer_duration_ns(s->i);
		check(weft_io_prep_sleep_until(&s->sleep, s->deadline),
		      "weft_io_prep_sleep_until");
		s->prepared = true;
	}
	if (weft_io_poll(&s->sleep, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	s->run->lateness[s->i] = (int64_t)(weft_now_ns() - s->deadline);
	check((int)res, "timers sleep");
	latch_count_down(&s->run->done);
	return WEFT_READY;
}

static const weft_future_desc sleeper_desc = {
	.poll = sleeper_poll,
	.drop = sleep_drop,
	.size = sizeof(struct sleeper),
};

/* Spawns run->n sleepers from its worker, then awaits them. */
struct timers_root {
	struct timers_run *run;
	bool spawned;
};

static weft_poll timers_root_poll(void *self, weft_cx *cx, void *out)
{
	struct timers_root *r = self;

	(void)out;
	if (!r->spawned) {
		for (size_t i = 0; i < r->run->n; i++) {
			struct sleeper s = {
				.run = r->run,
				.i = i,
				.spawned = weft_now_ns(),
			};

			check(weft_spawn(NULL, &sleeper_desc, &s, NULL),
			      "weft_spawn");
		}
		r->spawned = true;
	}
	return latch_poll(&r->run->done, cx);
}

static const weft_future_desc timers_root_desc = {
	.poll = timers_root_poll,
	.size = sizeof(struct timers_root),
};

/* What one timers run measured; lateness in us. */
struct timer_stats {
	double wall_ms, mean_us, p99_us, max_us;
	double start_p99_us;	/* p99 of spawn -> first poll */
	unsigned long early;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Sorts @v[0..@n) in place and returns its p99 in us: the smallest value
 * that at least 99% of the samples do not exceed (nearest rank). */
static double p99_us(int64_t *v, size_t n)
{
	if (n == 0)
		return 0.0;
	qsort(v, n, sizeof(*v), cmp_i64);
	return (double)v[(n * 99 + 99) / 100 - 1] / 1e3;
}

/* The figures of a finished run (sorts its lateness). */
static void timer_stats_of(struct timers_run *run, struct timer_stats *st)
{
	size_t n = run->n;
	double sum = 0;

	st->early = 0;
	for (size_t i = 0; i < n; i++) {
		sum += (double)run->lateness[i];
		st->early += run->lateness[i] < 0;
	}
	st->mean_us = sum / (double)n / 1e3;
	st->p99_us = p99_us(run->lateness, n);
	st->max_us = (double)run->lateness[n - 1] / 1e3;
	st->start_p99_us = p99_us(run->start, n);
}

static void timers_run(weft_runtime *rt, struct timers_run *run,
		       struct timer_stats *st)
{
	struct timers_root r = { .run = run };
	uint64_t t0;

	latch_init(&run->done, run->n);
	t0 = bench_now_ns();
	check(weft_block_on(rt, &timers_root_desc, &r, NULL), "weft_block_on");
	st->wall_ms = (double)(bench_now_ns() - t0) / 1e6;
	weft_oneshot_rx_drop(run->done.rx);
	timer_stats_of(run, st);
}

/* --------------------------------------------------------- sleep_rss */

/* A task that sleeps 10 s and counts @parked down once it is pending. */
struct parked_sleep {
	weft_io sleep;		/* first: sleep_drop() */
	struct latch *parked;
	bool counted;
};

static weft_poll parked_sleep_poll(void *self, weft_cx *cx, void *out)
{
	struct parked_sleep *p = self;
	int64_t res;

	(void)out;
	if (!p->counted)
		check(weft_io_prep_sleep(&p->sleep, LONG_SLEEP_NS),
		      "weft_io_prep_sleep");
	if (weft_io_poll(&p->sleep, cx, &res) == WEFT_READY) {
		check((int)res, "sleep_rss sleep");
		check(-ETIME, "sleep_rss: a 10 s sleep ended before all "
		      "were pending");
	}
	if (!p->counted) {
		p->counted = true;
		latch_count_down(p->parked);
	}
	return WEFT_PENDING;
}

static const weft_future_desc parked_sleep_desc = {
	.poll = parked_sleep_poll,
	.drop = sleep_drop,
	.size = sizeof(struct parked_sleep),
};

struct sleep_rss_result {
	long peak_rss_kib, delta_kib;
	double bytes_per_sleep;
};

/*
 * Memory of pending sleeps: spawn RSS_SLEEPS sleepers from main, wait until
 * every one is pending (its timer armed), read the RSS, and free the
 * runtime, which drops them all (disarming the timers). Run it in a fresh
 * process (sleep_rss_in_child).
 */
static void sleep_rss(unsigned workers, struct sleep_rss_result *r)
{
	weft_runtime *rt;
	struct latch parked;
	struct parked_sleep p = { .parked = &parked };
	long before, after;
	uint64_t t0, t1, t2;

	rt = new_runtime(workers);
	check(weft_block_on(rt, &noop_desc, NULL, NULL), "weft_block_on");
	latch_init(&parked, RSS_SLEEPS);

	before = bench_rss_bytes();
	t0 = bench_now_ns();
	for (int i = 0; i < RSS_SLEEPS; i++)
		check(weft_spawn(rt, &parked_sleep_desc, &p, NULL),
		      "weft_spawn");
	latch_wait(rt, &parked);
	t1 = bench_now_ns();
	after = bench_rss_bytes();
	r->peak_rss_kib = bench_peak_rss_kib();
	weft_runtime_free(rt);
	t2 = bench_now_ns();

	if (before < 0 || after < 0) {
		fprintf(stderr, "weft-bench: cannot read /proc/self/statm\n");
		exit(1);
	}
	r->delta_kib = (after - before) / 1024;
	r->bytes_per_sleep = (double)(after - before) / RSS_SLEEPS;
	printf("sleep_rss: %d pending 10 s sleeps (%zu bytes of future state "
	       "each): RSS +%ld KiB, %.1f bytes/sleep, peak RSS %ld KiB; "
	       "spawned and pending in %.0f ms, dropped in %.0f ms\n",
	       RSS_SLEEPS, sizeof(struct parked_sleep), r->delta_kib,
	       r->bytes_per_sleep, r->peak_rss_kib, (double)(t1 - t0) / 1e6,
	       (double)(t2 - t1) / 1e6);
	fflush(stdout);
}

/*
 * Run sleep_rss in a child, weft-bench again with --sleep-rss-child, and
 * pass on what it prints. A fresh process, because memory that earlier
 * workloads freed stays resident where malloc_trim() cannot return it (a
 * worker arena's free top) and the sleepers' timers would reuse it, hiding
 * their growth; and because ru_maxrss cannot be reset. The child ends its
 * output with "sleep_rss_result <peak_rss_kib> <delta_kib> <bytes>".
 * Called with no runtime alive, so this process has one thread.
 */
static void sleep_rss_in_child(unsigned workers, struct sleep_rss_result *r)
{
	char nworkers[16], line[512];
	char *argv[] = {
		(char *)"weft-bench", (char *)"--sleep-rss-child",
		(char *)"--workers", nworkers,
		rt_flags & WEFT_RT_FIFO_OWNER ? (char *)"--fifo-owner" : NULL,
		NULL,
	};
	int fds[2], status;
	bool got = false;
	pid_t pid;
	FILE *f;

	snprintf(nworkers, sizeof(nworkers), "%u", workers);
	fflush(stdout);
	if (pipe(fds) != 0 || (pid = fork()) < 0) {
		perror("weft-bench: sleep_rss child");
		exit(1);
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execv("/proc/self/exe", argv);
		perror("weft-bench: exec /proc/self/exe");
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "sleep_rss_result %ld %ld %lf",
			   &r->peak_rss_kib, &r->delta_kib,
			   &r->bytes_per_sleep) == 3)
			got = true;
		else
			fputs(line, stdout);
	}
	if (f)
		fclose(f);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("weft-bench: waitpid");
			exit(1);
		}
	if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "weft-bench: the sleep_rss child failed\n");
		exit(1);
	}
	fflush(stdout);
}


/* ------------------------------------------------ channels and mutex */

/*
 * mpsc_{bounded,unbounded}_{1,4}p: P producer tasks send MPSC_MSGS u64s
 * in all into one channel (bounded: capacity MPSC_CAP); the root task is
 * the consumer and receives until every producer dropped its sender.
 * mutex_uncontended: one task locks and unlocks MUTEX_OPS times;
 * mutex_contended: MUTEX_TASKS tasks share MUTEX_OPS lock/unlock pairs on
 * one mutex. Tokio's benches/sync_mpsc.rs and sync_mutex.rs, sized alike
 * in bench/tokio.
 */
#define MPSC_MSGS 100000
#define MPSC_CAP 1024
#define MUTEX_OPS 100000
#define MUTEX_TASKS 4

struct producer {
	weft_mpsc_tx *tx;
	uint64_t next, end, value;
	bool bounded, sending;
	weft_mpsc_send send;
};

static weft_poll producer_poll(void *self, weft_cx *cx, void *out)
{
	struct producer *p = self;
	int res;

	(void)out;
	/* Unbounded: a send never waits, so it is a plain call (as Tokio's
	 * UnboundedSender::send is not async). */
	for (; !p->bounded && p->next < p->end; p->next++)
		check(weft_mpsc_try_send(p->tx, &p->next), "mpsc try_send");
	for (;;) {
		if (!p->sending) {
			if (p->next == p->end)
				break;
			p->value = p->next;
			check(weft_mpsc_send_init(&p->send, p->tx, &p->value),
			      "weft_mpsc_send_init");
			p->sending = true;
		}
		if (weft_mpsc_send_poll(&p->send, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_mpsc_send_drop(&p->send);
		check(res, "mpsc send");
		p->sending = false;
		p->next++;
	}
	weft_mpsc_tx_drop(p->tx);
	p->tx = NULL;
	return WEFT_READY;
}

static void producer_drop(void *self)
{
	struct producer *p = self;

	if (p->sending)
		weft_mpsc_send_drop(&p->send);
	weft_mpsc_tx_drop(p->tx);
}

static const weft_future_desc producer_desc = {
	.poll = producer_poll,
	.drop = producer_drop,
	.size = sizeof(struct producer),
};

struct mpsc_root {
	size_t capacity;
	unsigned producers;
	bool started;
	weft_mpsc_rx *rx;
	uint64_t value, got, sum;
};

static weft_poll mpsc_root_poll(void *self, weft_cx *cx, void *out)
{
	struct mpsc_root *r = self;
	int res;

	(void)out;
	if (!r->started) {
		weft_mpsc_config cfg = { .value_size = sizeof(uint64_t),
					 .capacity = r->capacity };
		weft_mpsc_tx *tx;
		uint64_t per = MPSC_MSGS / r->producers;

		check(weft_mpsc_new(&cfg, &tx, &r->rx), "weft_mpsc_new");
		for (unsigned i = 0; i < r->producers; i++) {
			struct producer p = { .next = i * per,
					      .end = (i + 1) * per,
					      .bounded = r->capacity != 0 };

			if (i + 1 < r->producers)
				check(weft_mpsc_tx_clone(tx, &p.tx),
				      "weft_mpsc_tx_clone");
			else
				p.tx = tx;
			check(weft_spawn(NULL, &producer_desc, &p, NULL),
			      "weft_spawn");
		}
		r->started = true;
	}
	/* weft_mpsc_poll_recv: what Tokio's recv().await compiles to. */
	for (;;) {
		if (weft_mpsc_poll_recv(r->rx, cx, &r->value, &res) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		if (res == -EPIPE) /* every producer is done */
			break;
		check(res, "mpsc recv");
		r->got++;
		r->sum += r->value;
	}
	weft_mpsc_rx_drop(r->rx);
	r->rx = NULL;
	if (r->got != MPSC_MSGS ||
	    r->sum != (uint64_t)MPSC_MSGS * (MPSC_MSGS - 1) / 2) {
		fprintf(stderr, "weft-bench: mpsc lost values (%lu)\n",
			(unsigned long)r->got);
		exit(1);
	}
	return WEFT_READY;
}

static const weft_future_desc mpsc_root_desc = {
	.poll = mpsc_root_poll,
	.size = sizeof(struct mpsc_root),
};

static void mpsc_run(weft_runtime *rt, size_t capacity, unsigned producers)
{
	struct mpsc_root r = { .capacity = capacity,
			       .producers = producers };

	check(weft_block_on(rt, &mpsc_root_desc, &r, NULL), "weft_block_on");
}

static void mpsc_bounded_1p(weft_runtime *rt) { mpsc_run(rt, MPSC_CAP, 1); }
static void mpsc_bounded_4p(weft_runtime *rt) { mpsc_run(rt, MPSC_CAP, 4); }
static void mpsc_unbounded_1p(weft_runtime *rt) { mpsc_run(rt, 0, 1); }
static void mpsc_unbounded_4p(weft_runtime *rt) { mpsc_run(rt, 0, 4); }

struct locker {
	weft_mutex *m;
	uint64_t *counter;
	unsigned left;
	bool locking;
	weft_mutex_lock lock;
	struct latch *done;
};

static weft_poll locker_poll(void *self, weft_cx *cx, void *out)
{
	struct locker *l = self;
	int res;

	(void)out;
	while (l->left) {
		if (!l->locking) {
			check(weft_mutex_lock_init(&l->lock, l->m),
			      "weft_mutex_lock_init");
			l->locking = true;
		}
		if (weft_mutex_lock_poll(&l->lock, cx, &res) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_mutex_lock_drop(&l->lock);
		l->locking = false;
		check(res, "mutex lock");
		(*l->counter)++;
		check(weft_mutex_unlock(l->m), "weft_mutex_unlock");
		l->left--;
	}
	latch_count_down(l->done);
	return WEFT_READY;
}

static const weft_future_desc locker_desc = {
	.poll = locker_poll,
	.size = sizeof(struct locker),
};

static void mutex_run(weft_runtime *rt, unsigned tasks)
{
	struct latch done;
	uint64_t counter = 0;
	weft_mutex *m;

	check(weft_mutex_new(&m), "weft_mutex_new");
	latch_init(&done, tasks);
	for (unsigned i = 0; i < tasks; i++) {
		struct locker l = { .m = m, .counter = &counter,
				    .left = MUTEX_OPS / tasks,
				    .done = &done };

		check(weft_spawn(rt, &locker_desc, &l, NULL), "weft_spawn");
	}
	latch_wait(rt, &done);
	check(weft_mutex_free(m), "weft_mutex_free");
	if (counter != MUTEX_OPS) {
		fprintf(stderr, "weft-bench: mutex lost updates\n");
		exit(1);
	}
}

static void mutex_uncontended(weft_runtime *rt) { mutex_run(rt, 1); }
static void mutex_contended(weft_runtime *rt) { mutex_run(rt, MUTEX_TASKS); }

/* ------------------------------------------------------------ fibers */

/*
 * The fiber workloads of issue 8, run the same way in bench/go with
 * goroutines:
 *
 *   fiber_spawn_join   a fiber starts FIBER_SPAWN fibers that do nothing,
 *                      keeping their join handles, then joins each with
 *                      weft_co_join; ns per spawn + join
 *   fiber_spawn_many   a plain task (spawn_many_local's root) starts
 *                      FIBER_SPAWN detached fibers that count a latch down
 *                      and awaits the latch: the join is one shared
 *                      countdown, as a Go sync.WaitGroup is
 *   fiber_switch       one fiber calls weft_co_yield() FIBER_YIELDS times.
 *                      One op is one suspend + resume: the fiber jumps to
 *                      its worker's stack, the poll returns PENDING, the
 *                      worker requeues the woken task, pops it, polls it
 *                      and jumps back onto the fiber's stack. That is the
 *                      cheapest complete switch a fiber can make through
 *                      the scheduler (Go: runtime.Gosched)
 *   fiber_yield_many   yield_many with fibers: 200 fibers yield 1,000
 *                      times each
 *   fiber_ping_pong    two fibers send a u64 back and forth over two
 *                      bounded (capacity 1) mpsc channels; one op is one
 *                      round trip: two sends, two receives, and on one
 *                      worker two suspends + resumes (Go: two unbuffered
 *                      channels)
 *
 * Each starts from main with weft_go() on the runtime and is awaited with
 * weft_block_on() on the root fiber's join handle (fiber_spawn_many's root
 * is a plain task).
 */
#define FIBER_SPAWN NUM_SPAWN /* fiber_spawn_*: 10,000 */
#define FIBER_YIELDS 1000000	/* fiber_switch */
#define PING_ROUNDS 100000	/* fiber_ping_pong */

/* Run @fn(@arg) as a fiber on @rt and wait for it from main. */
static void run_fiber(weft_runtime *rt, weft_fiber_fn fn, void *arg)
{
	weft_join *h;
	struct join_all j = { .h = &h, .n = 1 };

	check(weft_go(rt, fn, arg, NULL, &h), "weft_go");
	check(weft_block_on(rt, &join_all_desc, &j, NULL), "weft_block_on");
}

static void *nop_fiber(void *arg)
{
	return arg;
}

static void *spawn_join_fiber(void *arg)
{
	static weft_join *h[FIBER_SPAWN];
	void *out;

	(void)arg;
	for (int i = 0; i < FIBER_SPAWN; i++)
		check(weft_go(NULL, nop_fiber, &h[i], NULL, &h[i]), "weft_go");
	for (int i = 0; i < FIBER_SPAWN; i++) {
		void *want = &h[i];

		check(weft_co_join(h[i], &out), "weft_co_join");
		if (out != want)
			check(-EPROTO, "fiber_spawn_join: wrong output");
	}
	return NULL;
}

static void fiber_spawn_join(weft_runtime *rt)
{
	run_fiber(rt, spawn_join_fiber, NULL);
}

/* The counting fibers and their root task are spawn_many_local's. */
static void fiber_spawn_many(weft_runtime *rt)
{
	spawn_many_run(rt, true);
}

static void *switch_fiber(void *arg)
{
	unsigned long n = (unsigned long)(uintptr_t)arg;

	for (unsigned long i = 0; i < n; i++)
		check(weft_co_yield(), "weft_co_yield");
	return NULL;
}

static void fiber_switch(weft_runtime *rt)
{
	run_fiber(rt, switch_fiber, (void *)(uintptr_t)FIBER_YIELDS);
}

static void *yield_many_fiber(void *arg)
{
	switch_fiber((void *)(uintptr_t)NUM_YIELD);
	latch_count_down(arg);
	return NULL;
}

static void fiber_yield_many(weft_runtime *rt)
{
	struct latch done;

	latch_init(&done, YIELD_TASKS);
	for (int i = 0; i < YIELD_TASKS; i++)
		check(weft_go(rt, yield_many_fiber, &done, NULL, NULL),
		      "weft_go");
	latch_wait(rt, &done);
}

/* One end of a ping-pong: its receiver and the other end's sender. */
struct pp_end {
	weft_mpsc_rx *rx;
	weft_mpsc_tx *tx;
};

static void pp_send(weft_mpsc_tx *tx, uint64_t v)
{
	weft_mpsc_send s;
	int res;

	check(weft_mpsc_send_init(&s, tx, &v), "weft_mpsc_send_init");
	check(weft_await(&weft_mpsc_send_desc, &s, &res), "weft_await");
	check(res, "ping_pong send");
}

static uint64_t pp_recv(weft_mpsc_rx *rx)
{
	weft_mpsc_recv r;
	uint64_t v;
	int res;

	check(weft_mpsc_recv_init(&r, rx, &v), "weft_mpsc_recv_init");
	check(weft_await(&weft_mpsc_recv_desc, &r, &res), "weft_await");
	check(res, "ping_pong recv");
	return v;
}

/* The pong: answers each value with the next until the ping hangs up. */
static void *pong_fiber(void *arg)
{
	struct pp_end *e = arg;

	for (int i = 0; i < PING_ROUNDS; i++)
		pp_send(e->tx, pp_recv(e->rx) + 1);
	return NULL;
}

static void *ping_fiber(void *arg)
{
	struct pp_end ping, pong;
	weft_join *h;
	uint64_t v = 0;

	(void)arg;
	check(weft_mpsc_bounded(sizeof(uint64_t), 1, &pong.tx, &ping.rx),
	      "weft_mpsc_bounded");
	check(weft_mpsc_bounded(sizeof(uint64_t), 1, &ping.tx, &pong.rx),
	      "weft_mpsc_bounded");
	check(weft_go(NULL, pong_fiber, &pong, NULL, &h), "weft_go");
	for (int i = 0; i < PING_ROUNDS; i++) {
		pp_send(ping.tx, v);
		if (pp_recv(ping.rx) != v + 1)
			check(-EPROTO, "fiber_ping_pong: wrong answer");
		v += 2;
	}
	check(weft_co_join(h, NULL), "weft_co_join");
	weft_mpsc_tx_drop(ping.tx);
	weft_mpsc_tx_drop(pong.tx);
	weft_mpsc_rx_drop(ping.rx);
	weft_mpsc_rx_drop(pong.rx);
	return NULL;
}

static void fiber_ping_pong(weft_runtime *rt)
{
	run_fiber(rt, ping_fiber, NULL);
}

/* ---------------------------------------------------------- harness */

struct workload {
	const char *name;
	void (*iter)(weft_runtime *rt);
	double ops; /* operations per iteration */
	unsigned max_reps; /* 0: as many as --reps */
};

static const struct workload workloads[] = {
	{ "spawn_many_local", spawn_many_local, NUM_SPAWN, 0 },
	{ "spawn_many_remote_idle", spawn_many_remote_idle, NUM_SPAWN, 0 },
	{ "yield_many", yield_many, (double)YIELD_TASKS * NUM_YIELD, 0 },
	{ "ping_pong", ping_pong, NUM_PINGS, 0 },
	{ "chained_spawn", chained_spawn, CHAIN_DEPTH, 0 },
	{ "timer_churn", timer_churn, CHURN_OPS, TIMER_REPS },
	{ "mpsc_bounded_1p", mpsc_bounded_1p, MPSC_MSGS, 0 },
	{ "mpsc_bounded_4p", mpsc_bounded_4p, MPSC_MSGS, 0 },
	{ "mpsc_unbounded_1p", mpsc_unbounded_1p, MPSC_MSGS, 0 },
	{ "mpsc_unbounded_4p", mpsc_unbounded_4p, MPSC_MSGS, 0 },
	{ "mutex_uncontended", mutex_uncontended, MUTEX_OPS, 0 },
	{ "mutex_contended", mutex_contended, MUTEX_OPS, 0 },
	{ "fiber_spawn_join", fiber_spawn_join, FIBER_SPAWN, 0 },
	{ "fiber_spawn_many", fiber_spawn_many, FIBER_SPAWN, 0 },
	{ "fiber_switch", fiber_switch, FIBER_YIELDS, 0 },
	{ "fiber_yield_many", fiber_yield_many,
	  (double)YIELD_TASKS * NUM_YIELD, 0 },
	{ "fiber_ping_pong", fiber_ping_pong, PING_ROUNDS, 0 },
};

struct result {
	double median_ms, min_ms, max_ms;
	double ops_per_sec, ns_per_op;
	unsigned reps;
};

static unsigned reps_for(unsigned max_reps, unsigned reps)
{
	return max_reps && max_reps < reps ? max_reps : reps;
}

static void run_workload(const struct workload *w, unsigned workers,
			 unsigned reps, struct result *r)
{
	weft_runtime *rt;
	double *ms;

	reps = reps_for(w->max_reps, reps);
	ms = calloc(reps, sizeof(*ms));
	if (!ms) {
		fprintf(stderr, "weft-bench: out of memory\n");
		exit(1);
	}
	rt = new_runtime(workers);

	w->iter(rt); /* warm-up */
	for (unsigned i = 0; i < reps; i++) {
		uint64_t t0 = bench_now_ns();

		w->iter(rt);
		ms[i] = (double)(bench_now_ns() - t0) / 1e6;
	}
	weft_runtime_free(rt);

	r->median_ms = bench_median(ms, reps);
	r->min_ms = ms[0];
	r->max_ms = ms[reps - 1];
	r->ops_per_sec = w->ops / (r->median_ms / 1e3);
	r->ns_per_op = r->median_ms * 1e6 / w->ops;
	r->reps = reps;
	free(ms);
}

struct timers_workload {
	const char *name;
	size_t tasks;
};

static const struct timers_workload timers_workloads[] = {
	{ "timers_10k", 10000 },
	{ "timers_100k", 100000 },
};

/* Median over @st[0..@n) of the double at @off in struct timer_stats. */
static double timer_stats_median(const struct timer_stats *st, unsigned n,
				 size_t off, double *tmp)
{
	for (unsigned i = 0; i < n; i++)
		tmp[i] = *(const double *)((const char *)&st[i] + off);
	return bench_median(tmp, n);
}

static void print_timer_row(const char *name, unsigned workers, size_t tasks,
			    const char *rep, const struct timer_stats *st)
{
	printf("%-24s %7u %7zu %6s %9.1f %9.1f %9.1f %9.1f %6lu %12.1f\n",
	       name, workers, tasks, rep, st->wall_ms, st->mean_us,
	       st->p99_us, st->max_us, st->early, st->start_p99_us);
}

/*
 * One runtime, one warm-up run and @reps timed ones, each printed; @med
 * gets the median of each figure over the timed runs, and the total of
 * early wakes.
 */
static void run_timers(const struct timers_workload *w, unsigned workers,
		       unsigned reps, struct timer_stats *med)
{
	weft_runtime *rt;
	struct timers_run run = {
		.n = w->tasks,
		.lateness = calloc(w->tasks, sizeof(*run.lateness)),
		.start = calloc(w->tasks, sizeof(*run.start)),
	};
	struct timer_stats *st = calloc(reps + 1, sizeof(*st));
	double *tmp = calloc(reps, sizeof(*tmp));
	char rep[16];

	if (!run.lateness || !run.start || !st || !tmp) {
		fprintf(stderr, "weft-bench: out of memory\n");
		exit(1);
	}
	rt = new_runtime(workers);

	timers_run(rt, &run, &st[reps]); /* warm-up */
	med->early = 0;
	for (unsigned i = 0; i < reps; i++) {
		timers_run(rt, &run, &st[i]);
		med->early += st[i].early;
		snprintf(rep, sizeof(rep), "%u", i + 1);
		print_timer_row(w->name, workers, w->tasks, rep, &st[i]);
		fflush(stdout);
	}
	weft_runtime_free(rt);

	med->wall_ms = timer_stats_median(st, reps,
			offsetof(struct timer_stats, wall_ms), tmp);
	med->mean_us = timer_stats_median(st, reps,
			offsetof(struct timer_stats, mean_us), tmp);
	med->p99_us = timer_stats_median(st, reps,
			offsetof(struct timer_stats, p99_us), tmp);
	med->max_us = timer_stats_median(st, reps,
			offsetof(struct timer_stats, max_us), tmp);
	med->start_p99_us = timer_stats_median(st, reps,
			offsetof(struct timer_stats, start_p99_us), tmp);
	print_timer_row(w->name, workers, w->tasks, "median", med);
	fflush(stdout);
	free(tmp);
	free(st);
	free(run.start);
	free(run.lateness);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: weft-bench [--workers N] [--reps N] [--filter SUBSTR]\n"
		"                  [--fifo-owner]\n"
		"\n"
		"Tokio's rt_multi_threaded workloads on a weft runtime:\n"
		"  spawn_many_local spawn_many_remote_idle yield_many\n"
		"  ping_pong chained_spawn\n"
		"plus task_memory (RSS per parked task, run first), the\n"
		"timer workloads timer_churn timers_10k timers_100k, and\n"
		"sleep_rss (RSS per pending sleep, in a child process),\n"
		"mpsc_bounded_1p mpsc_bounded_4p mpsc_unbounded_1p\n"
		"mpsc_unbounded_4p (100,000 u64s through one channel) and\n"
		"mutex_uncontended mutex_contended (100,000 lock/unlock),\n"
		"and the fiber workloads fiber_spawn_join fiber_spawn_many\n"
		"fiber_switch fiber_yield_many fiber_ping_pong.\n"
		"\n"
		"  --workers N      worker threads (default: online CPUs)\n"
		"  --reps N         timed iterations per workload, after one\n"
		"                   warm-up (default 10; the timer workloads\n"
		"                   at most %d); the median is shown\n"
		"  --filter SUBSTR  run only workloads whose name contains it\n"
		"  --fifo-owner     WEFT_RT_FIFO_OWNER: workers pop their own\n"
		"                   queue oldest first (default: newest first)\n"
		"  --help           this text\n", TIMER_REPS);
}

static unsigned parse_uint(const char *opt, const char *s, unsigned lo,
			   unsigned hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "weft-bench: %s wants a number in %u..%u\n",
			opt, lo, hi);
		exit(1);
	}
	return (unsigned)v;
}

static bool selected(const char *name, const char *filter)
{
	return !filter || strstr(name, filter);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "workers", required_argument, NULL, 'w' },
		{ "reps", required_argument, NULL, 'r' },
		{ "filter", required_argument, NULL, 'f' },
		{ "fifo-owner", no_argument, NULL, 'F' },
		{ "sleep-rss-child", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct result res[ARRAY_SIZE(workloads)];
	bool ran[ARRAY_SIZE(workloads)] = { false };
	struct timer_stats tres[ARRAY_SIZE(timers_workloads)];
	bool tran[ARRAY_SIZE(timers_workloads)] = { false };
	struct sleep_rss_result rss = { 0 };
	bool rss_ran = false, header = false, theader = false;
	const char *filter = NULL;
	double bytes_per_task = -1.0;
	unsigned workers, reps = 10, treps;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	bool rss_child = false;
	int c;

	workers = cpus < 1 ? 1 : cpus > 256 ? 256 : (unsigned)cpus;
	while ((c = getopt_long(argc, argv, "w:r:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			workers = parse_uint("--workers", optarg, 1, 256);
			break;
		case 'r':
			reps = parse_uint("--reps", optarg, 1, 1000000);
			break;
		case 'f':
			filter = optarg;
			break;
		case 'F':
			rt_flags |= WEFT_RT_FIFO_OWNER;
			break;
		case 'S':
			rss_child = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}
	if (rss_child) {
		sleep_rss(workers, &rss);
		printf("sleep_rss_result %ld %ld %.1f\n", rss.peak_rss_kib,
		       rss.delta_kib, rss.bytes_per_sleep);
		return 0;
	}

	if (selected("task_memory", filter))
		bytes_per_task = task_memory(workers);

	for (size_t i = 0; i < ARRAY_SIZE(workloads); i++) {
		const struct workload *w = &workloads[i];
		struct result *r = &res[i];

		if (!selected(w->name, filter))
			continue;
		if (!header)
			printf("%-24s %7s %11s %14s %10s %10s %10s\n",
			       "workload", "workers", "median ms", "ops/s",
			       "ns/op", "min ms", "max ms");
		header = true;
		run_workload(w, workers, reps, r);
		ran[i] = true;
		printf("%-24s %7u %11.3f %14.1f %10.1f %10.3f %10.3f\n",
		       w->name, workers, r->median_ms, r->ops_per_sec,
		       r->ns_per_op, r->min_ms, r->max_ms);
		fflush(stdout);
	}

	treps = reps_for(TIMER_REPS, reps);
	for (size_t i = 0; i < ARRAY_SIZE(timers_workloads); i++) {
		if (!selected(timers_workloads[i].name, filter))
			continue;
		if (!theader)
			printf("\n%-24s %7s %7s %6s %9s %9s %9s %9s %6s "
			       "%12s\n", "timers (lateness)", "workers",
			       "tasks", "rep", "wall ms", "mean us", "p99 us",
			       "max us", "early", "start p99 us");
		theader = true;
		run_timers(&timers_workloads[i], workers, treps, &tres[i]);
		tran[i] = true;
	}

	if (selected("sleep_rss", filter)) {
		printf("\n");
		sleep_rss_in_child(workers, &rss);
		rss_ran = true;
	}

	printf("\n");
	for (size_t i = 0; i < ARRAY_SIZE(workloads); i++) {
		if (!ran[i])
			continue;
		printf("bench: %s workers=%u ops_per_sec=%.1f ns_per_op=%.2f "
		       "reps=%u\n", workloads[i].name, workers,
		       res[i].ops_per_sec, res[i].ns_per_op, res[i].reps);
	}
	for (size_t i = 0; i < ARRAY_SIZE(timers_workloads); i++) {
		if (!tran[i])
			continue;
		printf("bench: %s workers=%u tasks=%zu wall_ms=%.3f "
		       "mean_us=%.1f p99_us=%.1f max_us=%.1f early=%lu "
		       "start_p99_us=%.1f reps=%u\n",
		       timers_workloads[i].name, workers,
		       timers_workloads[i].tasks, tres[i].wall_ms,
		       tres[i].mean_us, tres[i].p99_us, tres[i].max_us,
		       tres[i].early, tres[i].start_p99_us, treps);
	}
	if (rss_ran)
		printf("bench: sleep_rss workers=%u sleeps=%d peak_rss_kib=%ld "
		       "rss_delta_kib=%ld bytes_per_sleep=%.1f\n", workers,
		       RSS_SLEEPS, rss.peak_rss_kib, rss.delta_kib,
		       rss.bytes_per_sleep);
	if (bytes_per_task >= 0)
		printf("bench: bytes_per_task=%.1f\n", bytes_per_task);
	printf("bench: peak_rss_kib=%ld\n", bench_peak_rss_kib());
	return 0;
}
