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
 * Each workload gets one runtime, one warm-up iteration and --reps timed
 * ones; the median is reported. Completion is signalled as Tokio does it:
 * an atomic countdown whose last decrement sends on a channel (here a
 * oneshot) that the waiting side awaits.
 *
 * task_memory spawns 100,000 tasks that park on a shared gate and reports
 * the growth of the resident set per task. It runs first, on a fresh heap,
 * so that memory freed by other workloads does not hide the growth.
 *
 * Output: a table for people, then one line per workload for scripts:
 *   bench: <workload> workers=<n> ops_per_sec=<f> ns_per_op=<f> reps=<n>
 *   bench: bytes_per_task=<f>
 *   bench: peak_rss_kib=<n>
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Any weft error is fatal here; tasks call this too, so no unwinding. */
static void check(int err, const char *what)
{
	if (err >= 0)
		return;
	fflush(stdout);
	fprintf(stderr, "weft-bench: %s: %s\n", what, weft_strerror(err));
	exit(1);
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

/* Spawns NUM_SPAWN counting tasks from its worker, then awaits them. */
struct sml_root {
	struct latch *done;
	bool spawned;
};

static weft_poll sml_root_poll(void *self, weft_cx *cx, void *out)
{
	struct sml_root *r = self;
	struct count_task c = { .done = r->done };

	(void)out;
	if (!r->spawned) {
		for (int i = 0; i < NUM_SPAWN; i++)
			check(weft_spawn(NULL, &count_desc, &c, NULL),
			      "weft_spawn");
		r->spawned = true;
	}
	return latch_poll(r->done, cx);
}

static const weft_future_desc sml_root_desc = {
	.poll = sml_root_poll,
	.size = sizeof(struct sml_root),
};

static void spawn_many_local(weft_runtime *rt)
{
	struct latch done;
	struct sml_root r = { .done = &done };

	latch_init(&done, NUM_SPAWN);
	check(weft_block_on(rt, &sml_root_desc, &r, NULL), "weft_block_on");
	weft_oneshot_rx_drop(done.rx);
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
	weft_runtime_config cfg;
	weft_runtime *rt;
	struct latch parked, done;
	struct gate gate;
	struct gate_task t;
	long before, after;

	weft_runtime_config_init(&cfg);
	cfg.workers = workers;
	check(weft_runtime_new(&cfg, &rt), "weft_runtime_new");
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

/* ---------------------------------------------------------- harness */

struct workload {
	const char *name;
	void (*iter)(weft_runtime *rt);
	double ops; /* operations per iteration */
};

static const struct workload workloads[] = {
	{ "spawn_many_local", spawn_many_local, NUM_SPAWN },
	{ "spawn_many_remote_idle", spawn_many_remote_idle, NUM_SPAWN },
	{ "yield_many", yield_many, (double)YIELD_TASKS * NUM_YIELD },
	{ "ping_pong", ping_pong, NUM_PINGS },
	{ "chained_spawn", chained_spawn, CHAIN_DEPTH },
};

struct result {
	double median_ms, min_ms, max_ms;
	double ops_per_sec, ns_per_op;
};

static unsigned rt_flags; /* WEFT_RT_* from the command line */

static void run_workload(const struct workload *w, unsigned workers,
			 unsigned reps, struct result *r)
{
	weft_runtime_config cfg;
	weft_runtime *rt;
	double *ms = calloc(reps, sizeof(*ms));

	if (!ms) {
		fprintf(stderr, "weft-bench: out of memory\n");
		exit(1);
	}
	weft_runtime_config_init(&cfg);
	cfg.workers = workers;
	cfg.flags |= rt_flags;
	check(weft_runtime_new(&cfg, &rt), "weft_runtime_new");

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
	free(ms);
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
		"plus task_memory (RSS per parked task, run first).\n"
		"\n"
		"  --workers N      worker threads (default: online CPUs)\n"
		"  --reps N         timed iterations per workload, after one\n"
		"                   warm-up (default 10); the median is shown\n"
		"  --filter SUBSTR  run only workloads whose name contains it\n"
		"  --fifo-owner     WEFT_RT_FIFO_OWNER: workers pop their own\n"
		"                   queue oldest first (default: newest first)\n"
		"  --help           this text\n");
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct result res[ARRAY_SIZE(workloads)];
	bool ran[ARRAY_SIZE(workloads)] = { false };
	const char *filter = NULL;
	double bytes_per_task = -1.0;
	unsigned workers, reps = 10;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
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

	if (selected("task_memory", filter))
		bytes_per_task = task_memory(workers);

	printf("%-24s %7s %11s %14s %10s %10s %10s\n", "workload", "workers",
	       "median ms", "ops/s", "ns/op", "min ms", "max ms");
	for (size_t i = 0; i < ARRAY_SIZE(workloads); i++) {
		const struct workload *w = &workloads[i];
		struct result *r = &res[i];

		if (!selected(w->name, filter))
			continue;
		run_workload(w, workers, reps, r);
		ran[i] = true;
		printf("%-24s %7u %11.3f %14.1f %10.1f %10.3f %10.3f\n",
		       w->name, workers, r->median_ms, r->ops_per_sec,
		       r->ns_per_op, r->min_ms, r->max_ms);
		fflush(stdout);
	}

	printf("\n");
	for (size_t i = 0; i < ARRAY_SIZE(workloads); i++) {
		if (!ran[i])
			continue;
		printf("bench: %s workers=%u ops_per_sec=%.1f ns_per_op=%.2f "
		       "reps=%u\n", workloads[i].name, workers,
		       res[i].ops_per_sec, res[i].ns_per_op, reps);
	}
	if (bytes_per_task >= 0)
		printf("bench: bytes_per_task=%.1f\n", bytes_per_task);
	printf("bench: peak_rss_kib=%ld\n", bench_peak_rss_kib());
	return 0;
}
