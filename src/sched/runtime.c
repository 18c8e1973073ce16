/* SPDX-License-Identifier: MIT */
/*
 * Runtime lifecycle.
 *
 * Start: allocate, start the workers; each creates its ring on its own
 * thread (SINGLE_ISSUER) and reports; if any failed, all are told to exit
 * and weft_runtime_new returns that error. Workers run with every signal
 * blocked, so signals go to the application's threads and never interrupt
 * io_uring_enter.
 *
 * Shutdown, in order:
 *   0. close the blocking pool: new jobs fail, queued ones are dropped;
 *   1. close the owned-task list (spawns now fail with -ESHUTDOWN) and
 *      cancel every task in it; cancelled tasks are queued;
 *   2. set rt->shutdown and unpark every worker;
 *   3. workers run the cancellations: each future is dropped on a worker,
 *      and dropping an in-flight op submits a cancel on the op's ring;
 *   4. a worker exits once the owned list is empty, its ring has no op or
 *      cancel in flight and its inbox is empty (closing before setting the
 *      flag means the owned count can only fall once workers look at it);
 *   5. join the workers;
 *   6. wait for the blocking jobs still running and join the pool's
 *      threads (sched/blocking.h): after the tasks are gone, so a job
 *      waiting on a task cannot hold this up, and before the rings and
 *      queues are torn down, because a job's result wakes its task (a
 *      push to the injector and an unpark through a worker's eventfd);
 *   7. tear down the rings and queues.
 *
 * Graceful drain (weft_runtime_shutdown_timeout) comes before step 0:
 *   a. close the owned-task list without cancelling anything: spawns fail
 *      with -ESHUTDOWN from here on, so the live count can only fall;
 *   b. sleep on the futex word rt->drain until the count is 0 or the
 *      deadline passes. The completion that empties the list
 *      (weft__sched_release) sets the word to WOKEN and wakes us. The
 *      drainer stores WAITING then loads the count, the completer
 *      decrements the count then loads the word, all four seq_cst: one
 *      of them sees the other, so the last completion is never missed;
 *   c. run steps 0-7: whatever is still live is cancelled.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <weft/error.h>
#include <weft/runtime.h>

#include "sched/runtime.h"
#include "task/task.h"

#define MAX_WORKERS 256
#define DEFAULT_SPIN_ROUNDS 4
#define DEFAULT_BLOCKING_THREADS 64
#define DEFAULT_BLOCKING_KEEPALIVE_MS 10000
#ifdef WEFT_SMALL_QUEUES
#define DEQUE_LOG2 2
#else
#define DEQUE_LOG2 8
#endif

void weft__log(struct weft_runtime *rt, int level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!rt->log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rt->log(rt->log_arg, level, buf);
}

WEFT_API void weft_runtime_config_init(weft_runtime_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
}

static void free_parts(struct weft_runtime *rt)
{
	if (rt->workers) {
		for (unsigned i = 0; i < rt->nworkers; i++)
			weft__deque_destroy(&rt->workers[i].dq);
		free(rt->workers);
	}
	weft__owned_destroy(&rt->owned);
	weft__idle_destroy(&rt->idle);
	weft__injector_destroy(&rt->injector);
	pthread_mutex_destroy(&rt->start_lock);
	pthread_cond_destroy(&rt->start_cond);
	pthread_mutex_destroy(&rt->shutdown_lock);
	weft__blocking_destroy(&rt->blocking);
	free(rt);
}

/* Provided buffers per worker: a power of two (buffer rings need one). */
static unsigned buf_count(unsigned n)
{
	unsigned c = 1;

	if (!n)
		return 256;
	while (c < n)
		c <<= 1;
	return c;
}

/* The buffers one stream may hold queued (weft_runtime_config). */
static unsigned stream_buf_max(unsigned n, unsigned buf_count)
{
	if (n)
		return n;
	return buf_count / 8 > 4 ? buf_count / 8 : 4;
}

static int alloc_runtime(const weft_runtime_config *cfg, unsigned n,
			 struct weft_runtime **out)
{
	struct weft_runtime *rt = calloc(1, sizeof(*rt));
	int err;

	if (!rt)
		return -ENOMEM;
	rt->nworkers = n;
	rt->flags = cfg->flags;
	rt->spin_rounds = cfg->spin_rounds ? cfg->spin_rounds
					   : DEFAULT_SPIN_ROUNDS;
	rt->ring_entries = cfg->ring_entries ? cfg->ring_entries : 256;
	rt->log = cfg->log;
	rt->log_arg = cfg->log_arg;
	pthread_mutex_init(&rt->start_lock, NULL);
	pthread_cond_init(&rt->start_cond, NULL);
	pthread_mutex_init(&rt->shutdown_lock, NULL);
	atomic_init(&rt->shutdown, false);
	atomic_init(&rt->drain, WEFT__DRAIN_NONE);
	weft__blocking_init(&rt->blocking,
			    cfg->blocking_threads ? cfg->blocking_threads
						  : DEFAULT_BLOCKING_THREADS,
			    (cfg->blocking_keepalive_ms
				     ? cfg->blocking_keepalive_ms
				     : DEFAULT_BLOCKING_KEEPALIVE_MS) *
				    UINT64_C(1000000));

	if ((err = weft__injector_init(&rt->injector)) ||
	    (err = weft__idle_init(&rt->idle, n)) ||
	    (err = weft__owned_init(&rt->owned, 4 * n)))
		goto fail;
	rt->workers = aligned_alloc(WEFT__CACHELINE,
				    WEFT__ALIGN_UP(n * sizeof(*rt->workers),
						   WEFT__CACHELINE));
	if (!rt->workers) {
		err = -ENOMEM;
		goto fail;
	}
	memset(rt->workers, 0, n * sizeof(*rt->workers));
	for (unsigned i = 0; i < n; i++) {
		struct weft__worker *w = &rt->workers[i];

		w->rt = rt;
		w->index = i;
		w->fifo_owner = cfg->flags & WEFT_RT_FIFO_OWNER;
		w->pop_top = w->fifo_owner;
		w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
		weft__driver_prepare(&w->driver);
		w->driver.buf_count = buf_count(cfg->buf_count);
		w->driver.buf_size = cfg->buf_size ? cfg->buf_size : 4096;
		w->driver.stream_buf_max = stream_buf_max(
			cfg->stream_buf_max, w->driver.buf_count);
		/* Read by weft__ring_init on the worker thread. */
		w->driver.ring.cq_entries = cfg->cq_entries;
		if ((err = weft__deque_init(&w->dq, DEQUE_LOG2))) {
			rt->nworkers = i; /* free only those made */
			goto fail;
		}
	}
	*out = rt;
	return 0;
fail:
	free_parts(rt);
	return err;
}

void weft__signals_for_threads(sigset_t *set)
{
	sigfillset(set);
	sigdelset(set, SIGSEGV);
	sigdelset(set, SIGBUS);
	sigdelset(set, SIGFPE);
	sigdelset(set, SIGILL);
	sigdelset(set, SIGTRAP);
}

/* Start the worker threads; on failure none is left running. */
static int start_workers(struct weft_runtime *rt)
{
	sigset_t all, old;
	unsigned made = 0;
	int err = 0;

	/* Workers take no asynchronous signals (they go to the application's
	 * threads), but the synchronous ones stay deliverable: a fault on a
	 * worker (a fiber's stack overflow, a bug) must reach a handler,
	 * ASan's or weft's, instead of killing the process silently. */
	weft__signals_for_threads(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; made < rt->nworkers; made++) {
		struct weft__worker *w = &rt->workers[made];
		err = -pthread_create(&w->thread, NULL, weft__worker_main, w);
		if (err)
			break;
		char name[16];
		snprintf(name, sizeof(name), "weft-w%u", made % 1000);
		pthread_setname_np(w->thread, name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&rt->start_lock);
	while (rt->started < made)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	if (!err)
		err = rt->start_err;
	rt->go = err ? -1 : 1;
	pthread_cond_broadcast(&rt->start_cond);
	pthread_mutex_unlock(&rt->start_lock);

	if (err) {
		for (unsigned i = 0; i < made; i++) {
			pthread_join(rt->workers[i].thread, NULL);
			weft__driver_exit(&rt->workers[i].driver);
			weft__timers_exit(&rt->workers[i].timers);
		}
	}
	return err;
}

static const char *ring_mode_name(unsigned mode)
{
	switch (mode) {
	case WEFT_RING_DEFER_TASKRUN:
		return "SINGLE_ISSUER|DEFER_TASKRUN";
	case WEFT_RING_COOP_TASKRUN:
		return "COOP_TASKRUN";
	default:
		return "plain";
	}
}

/* The struct sizes of the first release: the floor a caller may pass. */
#define WEFT__END_OF(type, field) \
	(offsetof(type, field) + sizeof(((type *)0)->field))
#define CONFIG_V1_SIZE \
	WEFT__END_OF(weft_runtime_config, blocking_keepalive_ms)
#define METRICS_V1_SIZE WEFT__END_OF(weft_runtime_metrics, remote_cancels)
#define MAX_CQ_ENTRIES 65536u /* the kernel's IORING_MAX_CQ_ENTRIES */

static unsigned round_pow2(unsigned v)
{
	unsigned p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

/* The kernel's own rule (io_uring_create), checked here so that the
 * caller gets -EINVAL from weft_runtime_new rather than from a worker. */
static bool cq_entries_ok(const weft_runtime_config *cfg)
{
	unsigned sq = cfg->ring_entries ? cfg->ring_entries : 256;

	if (!cfg->cq_entries)
		return true;
	return cfg->cq_entries <= MAX_CQ_ENTRIES &&
	       round_pow2(cfg->cq_entries) >= round_pow2(sq);
}

WEFT_API int weft_runtime_new(const weft_runtime_config *cfg,
			      weft_runtime **out)
{
	weft_runtime_config def, full;
	struct weft_runtime *rt;
	int err;

	if (!out)
		return -EINVAL;
	if (!cfg) {
		weft_runtime_config_init(&def);
		cfg = &def;
	}
	/* A caller built against an older header passes a shorter struct:
	 * the fields it lacks keep their defaults. */
	if (cfg->size < CONFIG_V1_SIZE)
		return -EINVAL;
	weft_runtime_config_init(&full);
	memcpy(&full, cfg, cfg->size < sizeof(full) ? cfg->size : sizeof(full));
	full.size = sizeof(full);
	cfg = &full;
	if (cfg->workers > MAX_WORKERS || cfg->ring_entries > 32768 ||
	    !cq_entries_ok(cfg) ||
	    cfg->buf_count > 32768 || cfg->buf_size > (1u << 20))
		return -EINVAL;

	unsigned n = cfg->workers;
	if (!n) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		n = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS
						      : (unsigned)cpus;
	}
	err = alloc_runtime(cfg, n, &rt);
	if (err)
		return err;
	err = start_workers(rt);
	if (err) {
		weft__log(rt, WEFT_LOG_ERROR,
			  "weft: cannot start workers: %s", weft_strerror(err));
		free_parts(rt);
		return err;
	}
	weft__log(rt, WEFT_LOG_INFO, "weft: %u workers, io_uring %s", n,
		  ring_mode_name(rt->ring_mode));
	*out = rt;
	return 0;
}

static void drain_queues(struct weft_runtime *rt)
{
	struct weft__qnode *q;
	struct weft__task *t;

	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct weft__worker *w = &rt->workers[i];
		if (w->lifo)
			weft__task_unref(w->lifo);
		w->lifo = NULL;
		while ((t = weft__deque_pop(&w->dq)))
			weft__task_unref(t);
	}
	while ((q = weft__injector_pop(&rt->injector)))
		weft__task_unref(weft__task_from_qnode(q));
}

/* Steps 0-7 (top of file), under rt->shutdown_lock, once. */
static void shutdown_locked(struct weft_runtime *rt)
{
	weft__blocking_close(&rt->blocking);
	weft__owned_close_and_cancel(&rt->owned);
	/* seq_cst: after the close (step 1), before the unparks (step 2);
	 * workers load it seq_cst with the owned count in exit_ready, so a
	 * worker that sees the flag sees the list closed. */
	atomic_store_explicit(&rt->shutdown, true, memory_order_seq_cst);
	weft__idle_unpark_all(rt);
	for (unsigned i = 0; i < rt->nworkers; i++)
		pthread_join(rt->workers[i].thread, NULL);
	/* Before the rings go: a job that returns now still wakes its
	 * task, which queues it and unparks a worker through its ring. */
	weft__blocking_shutdown(&rt->blocking);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		weft__driver_exit(&rt->workers[i].driver);
		weft__timers_exit(&rt->workers[i].timers);
	}
	drain_queues(rt);
	rt->shut_down = true;
}

WEFT_API int weft_runtime_shutdown(weft_runtime *rt)
{
	if (!rt)
		return -EINVAL;
	struct weft__worker *self = weft__worker_current();
	if (self && self->rt == rt)
		return -EDEADLK;

	pthread_mutex_lock(&rt->shutdown_lock);
	if (!rt->shut_down)
		shutdown_locked(rt);
	pthread_mutex_unlock(&rt->shutdown_lock);
	return 0;
}

void weft__drain_wake(struct weft_runtime *rt)
{
	/* seq_cst: after the caller's seq_cst decrement of the owned count
	 * (weft__owned_remove), against the drainer's store of WAITING and
	 * load of the count (step b). Plain runtimes stop at this load. */
	if (atomic_load_explicit(&rt->drain, memory_order_seq_cst) !=
	    WEFT__DRAIN_WAITING)
		return;
	/* The drainer returns, and rt may be freed, only after joining the
	 * workers, and completions run on workers: the word is alive. */
	if (atomic_exchange_explicit(&rt->drain, WEFT__DRAIN_WOKEN,
				     memory_order_seq_cst) ==
	    WEFT__DRAIN_WAITING)
		syscall(SYS_futex, &rt->drain, FUTEX_WAKE_PRIVATE, 1, NULL,
			NULL, 0);
}

/*
 * Step b: sleep until the owned list is empty (true) or CLOCK_MONOTONIC
 * passes @deadline (false; NULL: no deadline). The list is closed, so an
 * empty list stays empty.
 */
static bool wait_drained(struct weft_runtime *rt,
			 const struct timespec *deadline)
{
	int saved = errno;
	bool empty;

	for (;;) {
		/* seq_cst store and load: see weft__drain_wake. Re-armed on
		 * every round, so a WOKEN left by a completion we have
		 * already counted cannot turn the wait into a spin. */
		atomic_store_explicit(&rt->drain, WEFT__DRAIN_WAITING,
				      memory_order_seq_cst);
		empty = atomic_load_explicit(&rt->owned.count,
					     memory_order_seq_cst) == 0;
		if (empty)
			break;
		/* BITSET: an absolute CLOCK_MONOTONIC deadline, so wakes and
		 * EINTR do not stretch the wait. */
		if (syscall(SYS_futex, &rt->drain, FUTEX_WAIT_BITSET_PRIVATE,
			    WEFT__DRAIN_WAITING, deadline, NULL,
			    FUTEX_BITSET_MATCH_ANY) < 0 &&
		    errno == ETIMEDOUT) {
			empty = atomic_load_explicit(&rt->owned.count,
						     memory_order_seq_cst) == 0;
			break;
		}
	}
	atomic_store_explicit(&rt->drain, WEFT__DRAIN_NONE,
			      memory_order_relaxed);
	errno = saved;
	return empty;
}

WEFT_API int weft_runtime_shutdown_timeout(weft_runtime *rt,
					   uint64_t timeout_ns)
{
	struct timespec deadline, *dl = NULL;
	bool drained;

	if (!rt)
		return -EINVAL;
	struct weft__worker *self = weft__worker_current();
	if (self && self->rt == rt)
		return -EDEADLK;
	if (timeout_ns != UINT64_MAX) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += (time_t)(timeout_ns / 1000000000u);
		deadline.tv_nsec += (long)(timeout_ns % 1000000000u);
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		dl = &deadline;
	}

	pthread_mutex_lock(&rt->shutdown_lock);
	if (rt->shut_down) {
		pthread_mutex_unlock(&rt->shutdown_lock);
		return -EALREADY;
	}
	weft__owned_close(&rt->owned); /* step a */
	drained = wait_drained(rt, dl);
	shutdown_locked(rt);
	pthread_mutex_unlock(&rt->shutdown_lock);
	return drained ? 0 : -ETIMEDOUT;
}

WEFT_API void weft_runtime_free(weft_runtime *rt)
{
	if (!rt)
		return;
	if (weft_runtime_shutdown(rt))
		return; /* called on one of its own workers: leak, not crash */
	free_parts(rt);
}

WEFT_API unsigned weft_runtime_workers(const weft_runtime *rt)
{
	return rt ? rt->nworkers : 0;
}

WEFT_API weft_runtime *weft_runtime_current(void)
{
	struct weft__worker *w = weft__worker_current();

	return w ? w->rt : NULL;
}

WEFT_API int weft_worker_index(void)
{
	struct weft__worker *w = weft__worker_current();

	return w ? (int)w->index : -1;
}

static void metrics_fill(const weft_runtime *rt, weft_runtime_metrics *m);

WEFT_API int weft_runtime_metrics_get(const weft_runtime *rt,
				      weft_runtime_metrics *m)
{
	weft_runtime_metrics all;

	if (!rt || !m || m->size < METRICS_V1_SIZE)
		return -EINVAL;
	/* Filled whole, copied out as far as the caller's struct goes. */
	size_t size = m->size < sizeof(all) ? m->size : sizeof(all);
	memset(&all, 0, sizeof(all));
	all.size = m->size;
	metrics_fill(rt, &all);
	memcpy(m, &all, size);
	return 0;
}

static void metrics_fill(const weft_runtime *rt, weft_runtime_metrics *m)
{
	m->workers = rt->nworkers;
	m->ring_mode = rt->ring_mode;
	m->spawned = atomic_load_explicit(&rt->spawned_remote,
					  memory_order_relaxed);
#define SUM(field) \
	m->field += atomic_load_explicit(&w->m.field, memory_order_relaxed)
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct weft__worker *w = &rt->workers[i];
		SUM(spawned);
		SUM(polls);
		SUM(lifo_polls);
		SUM(steals);
		SUM(injector_pops);
		SUM(overflows);
		SUM(parks);
	}
#undef SUM
#define SUM(field, dfield) \
	m->field += atomic_load_explicit(&w->driver.m.dfield, \
					 memory_order_relaxed)
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct weft__worker *w = &rt->workers[i];
		SUM(unparks_sent, unparks);
		SUM(ops_submitted, ops_submitted);
		SUM(ops_completed, ops_completed);
		SUM(remote_cancels, remote_cancels);
		SUM(multishot_rearms, multishot_rearms);
		SUM(bufring_enobufs, bufring_enobufs);
		SUM(accept_backoffs, accept_backoffs);
		SUM(stream_pauses, stream_pauses);
		SUM(stream_spills, stream_spills);
	}
#undef SUM
	/* Written by each worker before weft_runtime_new returned (the start
	 * handshake's mutex orders it), never after: a plain read. */
	m->features = rt->nworkers ? UINT64_MAX : 0;
	for (unsigned i = 0; i < rt->nworkers; i++)
		m->features &= rt->workers[i].driver.ring.features;
}
