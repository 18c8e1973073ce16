/* SPDX-License-Identifier: MIT */
/*
 * The worker loop.
 *
 *   loop:
 *     task = LIFO slot, else (every 61st tick: one from the injector
 *            first) own deque, else a batch from the injector that fits
 *            the deque
 *     run it, then up to 3 tasks it woke through the LIFO slot
 *     every 61 ticks, and whenever the queue runs dry: fire due timers
 *            and turn the driver (forward cancels from the inbox, submit
 *            SQEs, reap CQEs)
 *     queue dry: search (steal half of a random victim's deque, or take
 *            from the injector) for a few rounds
 *     nothing: park inside io_uring_enter until a CQE arrives (an op, a
 *            MSG_RING from another worker, the eventfd from a foreign
 *            thread) or the earliest timer is due
 *
 * Numbers from Tokio: global_queue_interval and event_interval 61,
 * MAX_LIFO_POLLS_PER_TICK 3, local queue of 256.
 */
#include <signal.h>
#include <stdlib.h>

#include "sched/runtime.h"
#include "task/task.h"

#define EVENT_INTERVAL 61
#define MAX_LIFO_POLLS 3
/* A LIFO owner takes from the top (oldest first) every this many ticks. */
#define OWNER_FIFO_INTERVAL 16

static WEFT__TLS struct weft__worker *tls_worker;

struct weft__worker *weft__worker_current(void)
{
	return tls_worker;
}

static uint32_t rng_next(struct weft__worker *w)
{
	/* xorshift64*, per worker: victim choice only. */
	uint64_t x = w->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	w->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Move half of the full local deque to the injector, oldest first. */
static void overflow(struct weft__worker *w)
{
	struct weft__qnode *first = NULL, *last = NULL;
	size_t n = 0, half = weft__deque_capacity(&w->dq) / 2;

	for (; n < half; n++) {
		struct weft__task *t = weft__deque_pop(&w->dq);
		if (!t)
			break;
		t->qnode.next = NULL;
		if (last)
			last->next = &t->qnode;
		else
			first = &t->qnode;
		last = &t->qnode;
	}
	if (n)
		weft__injector_push_batch(&w->rt->injector, first, last, n);
	WEFT__METRIC_INC(w, overflows);
}

/* Queue @t at the back of this worker's deque, telling nobody. */
static void push_local_quiet(struct weft__worker *w, struct weft__task *t)
{
	while (!weft__deque_push(&w->dq, t))
		overflow(w);
}

/* Queue @t at the back of this worker's deque; it is stealable work. */
static void push_local(struct weft__worker *w, struct weft__task *t)
{
	push_local_quiet(w, t);
	weft__idle_notify(w->rt);
}

/* Queue @t from a worker of its runtime: the LIFO slot, or the deque. */
static void schedule_local(struct weft__worker *w, struct weft__task *t)
{
	if (w->rt->flags & WEFT_RT_NO_LIFO_SLOT) {
		push_local(w, t);
		return;
	}
	struct weft__task *prev = w->lifo;
	w->lifo = t;
	/* A displaced task becomes stealable: tell the idle. A lone LIFO task
	 * is kept for locality and wakes nobody (Tokio does the same). */
	if (prev)
		push_local(w, prev);
}

void weft__sched_spawn(struct weft_runtime *rt, struct weft__task *t)
{
	struct weft__worker *w = tls_worker;

	if (w && w->rt == rt) {
		/* Like a wake, as Tokio does: a spawned task usually depends on
		 * its spawner's data, so it runs next on this core. */
		WEFT__METRIC_INC(w, spawned);
		schedule_local(w, t);
		return;
	}
	atomic_fetch_add_explicit(&rt->spawned_remote, 1, memory_order_relaxed);
	weft__injector_push(&rt->injector, &t->qnode);
	weft__idle_notify(rt);
}

void weft__sched_schedule(struct weft__task *t)
{
	struct weft__worker *w = tls_worker;
	struct weft_runtime *rt = t->rt;

	if (w && w->rt == rt) {
		schedule_local(w, t);
		return;
	}
	weft__injector_push(&rt->injector, &t->qnode);
	weft__idle_notify(rt);
}

void weft__sched_yield(struct weft__task *t)
{
	struct weft__worker *w = tls_worker;

	weft__assert(w && w->rt == t->rt);
	push_local(w, t);
	/* A LIFO owner's next pop would hand @t straight back and starve
	 * everyone queued before it: take the next one from the top, so a
	 * yield-looping task gets one poll per task ahead of it at most
	 * (tests/sched_fairness.c). */
	w->pop_top = true;
}

void weft__sched_release(struct weft_runtime *rt)
{
	weft__drain_wake(rt);
	/* seq_cst: pairs with the store in weft_runtime_shutdown; the
	 * owned list's acq_rel count decrement precedes this load. */
	if (atomic_load_explicit(&rt->shutdown, memory_order_seq_cst))
		weft__idle_unpark_all(rt);
}

/*
 * Take up to @limit tasks from the injector: the first to run now, the
 * rest queued here.
 */
static struct weft__task *pop_injector(struct weft__worker *w, size_t limit)
{
	struct weft_runtime *rt = w->rt;
	size_t len = weft__injector_len(&rt->injector);
	size_t n;

	if (!len)
		return NULL;
	/* A fair share, at most half a deque (Tokio), and never more than
	 * the deque has room for: a batch that overflowed would send the
	 * deque's oldest tasks (tasks woken here, by timers or I/O) to the
	 * back of the injector, behind its whole backlog. Thieves only take,
	 * so the room can only grow meanwhile. */
	size_t max = len / rt->nworkers + 1;
	size_t cap = weft__deque_capacity(&w->dq);
	size_t used = weft__deque_len(&w->dq);
	size_t room = (used < cap ? cap - used : 0) + 1; /* +1: runs now */
	if (room > cap / 2)
		room = cap / 2;
	if (max > room)
		max = room;
	if (max > limit)
		max = limit;
	struct weft__qnode *q = weft__injector_pop_batch(&rt->injector, max, &n);
	if (!q)
		return NULL;
	WEFT__METRIC_ADD(w, injector_pops, n);
	struct weft__task *first = weft__task_from_qnode(q);
	for (q = q->next; q;) {
		struct weft__qnode *next = q->next;
		push_local_quiet(w, weft__task_from_qnode(q));
		q = next;
	}
	/* One notify for the batch: a woken thief takes half of it. */
	if (n > 1)
		weft__idle_notify(rt);
	return first;
}

static struct weft__task *next_task(struct weft__worker *w)
{
	struct weft__task *t;

	/* Every 61st tick one task from the injector, so that local work
	 * cannot starve it; a batch only when local work has run out
	 * (Tokio's next_task). */
	if (++w->tick % EVENT_INTERVAL == 0) {
		t = pop_injector(w, 1);
		if (t)
			return t;
	}
	if (w->lifo) {
		t = w->lifo;
		w->lifo = NULL;
		return t;
	}
	/* A LIFO owner (Chase-Lev's take, no CAS) keeps the newest task's
	 * data in cache; a periodic or post-yield pop from the top bounds
	 * how long the oldest waits. */
	if (w->pop_top || w->tick % OWNER_FIFO_INTERVAL == 0) {
		w->pop_top = w->fifo_owner; /* a FIFO owner always pops top */
		t = weft__deque_pop(&w->dq);
	} else {
		t = weft__deque_pop_lifo(&w->dq);
	}
	if (t)
		return t;
	return pop_injector(w, SIZE_MAX);
}

static void run_task(struct weft__worker *w, struct weft__task *t)
{
	/* A worker woken by a notifier starts out searching. Whichever way it
	 * found this task, it must stop counting as a searcher before running
	 * it, or pushes while it runs would see "someone is searching" and
	 * wake nobody (Tokio: transition_from_searching before the poll). */
	if (w->searching)
		weft__idle_stop_search(w->rt, w);
	WEFT__METRIC_INC(w, polls);
	weft__task_run(t);
	for (int i = 0; i < MAX_LIFO_POLLS && w->lifo; i++) {
		t = w->lifo;
		w->lifo = NULL;
		WEFT__METRIC_INC(w, polls);
		WEFT__METRIC_INC(w, lifo_polls);
		weft__task_run(t);
	}
	if (w->lifo) {
		/* Budget spent: the chain continues behind everyone else on
		 * this worker, which runs next and will pick it up. Waking an
		 * idle worker here would only move the chain to another core
		 * (Tokio's run_task does not notify either). */
		t = w->lifo;
		w->lifo = NULL;
		push_local_quiet(w, t);
		/* Behind everyone else on a LIFO owner too (see yield). */
		w->pop_top = true;
	}
}

/* Fire due timers, then turn the driver. True if either woke a task or
 * handled a completion. */
static bool drive(struct weft__worker *w)
{
	/* Wake no more tasks than the deque (and an empty LIFO slot) has
	 * room for: an overflow would push the oldest, often tasks woken
	 * just now, to the back of the injector, behind its whole backlog.
	 * The rest fire at the next turn, in deadline order. */
	size_t cap = weft__deque_capacity(&w->dq), len = weft__deque_len(&w->dq);
	size_t room = (len < cap ? cap - len : 0) + (w->lifo ? 0 : 1);
	bool woke = weft__timers_process(&w->timers, (unsigned)room) > 0;

	return weft__driver_turn(&w->driver) || woke;
}

static bool has_local_work(struct weft__worker *w)
{
	return w->lifo || weft__deque_len(&w->dq);
}

static struct weft__task *steal(struct weft__worker *w)
{
	struct weft_runtime *rt = w->rt;
	unsigned n = rt->nworkers;
	unsigned start = rng_next(w) % n;
	size_t max = weft__deque_capacity(&w->dq) / 2;

	for (unsigned i = 0; i < n; i++) {
		struct weft__worker *v = &rt->workers[(start + i) % n];
		size_t got;

		if (v == w)
			continue;
		/* One CAS per batch only when no owner pops LIFO (deque.c). */
		struct weft__task *t =
			(rt->flags & WEFT_RT_FIFO_OWNER)
				? weft__deque_steal_batch_into(&v->dq, &w->dq,
							       max, &got)
				: weft__deque_steal_into(&v->dq, &w->dq, max,
							 &got);
		if (t) {
			WEFT__METRIC_ADD(w, steals, got);
			return t;
		}
	}
	return pop_injector(w, SIZE_MAX);
}

/*
 * Search for work for a few rounds, driving the ring between rounds.
 * Returns a task to run, or NULL with w->lifo/deque possibly filled by
 * completions.
 */
static struct weft__task *search(struct weft__worker *w)
{
	struct weft_runtime *rt = w->rt;

	for (unsigned round = 0; round < rt->spin_rounds; round++) {
		if (!weft__idle_try_search(rt, w))
			return NULL;
		struct weft__task *t = steal(w);
		if (t)
			return t; /* run_task stops the search */
		if (drive(w) && has_local_work(w)) {
			weft__idle_stop_search(rt, w);
			return NULL;
		}
	}
	return NULL;
}

static bool work_anywhere(struct weft__worker *w)
{
	struct weft_runtime *rt = w->rt;

	if (has_local_work(w) || !weft__injector_is_empty(&rt->injector) ||
	    weft__driver_has_inbox(&w->driver) ||
	    weft__timers_has_inbox(&w->timers))
		return true;
	for (unsigned i = 0; i < rt->nworkers; i++)
		if (weft__deque_len(&rt->workers[i].dq))
			return true;
	return false;
}

static bool exit_ready(struct weft__worker *w)
{
	struct weft_runtime *rt = w->rt;

	/* seq_cst: pairs with the store in weft_runtime_shutdown (the list
	 * is closed before the flag is set, so the count can only fall). */
	return atomic_load_explicit(&rt->shutdown, memory_order_seq_cst) &&
	       weft__owned_count(&rt->owned) == 0 &&
	       weft__driver_is_idle(&w->driver);
}

static void park(struct weft__worker *w)
{
	struct weft_runtime *rt = w->rt;

	/* An unpark that came while we ran: look again instead of sleeping
	 * (the driver's park protocol, io/driver.h). */
	if (!weft__driver_park_begin(&w->driver))
		return;
	weft__idle_register(rt, w);
	/* Pairs with the fence in weft__idle_notify (see idle.h): after it,
	 * any push we do not see below saw us in the idle count. */
	atomic_thread_fence(memory_order_seq_cst);
	/* The earliest timer is the park's timeout: one kernel timeout per
	 * worker, however many timers it holds. */
	uint64_t timeout = weft__timers_park_timeout(&w->timers);
	if (timeout == 0 || work_anywhere(w) || exit_ready(w)) {
		weft__driver_park_abort(&w->driver);
		weft__idle_unregister(rt, w);
		return;
	}
	WEFT__METRIC_INC(w, parks);
	weft__driver_park(&w->driver, timeout);
	weft__idle_unregister(rt, w);
}

/*
 * Every EVENT_INTERVAL ticks: reap completions, and if stealable work sits
 * here while nobody searches, wake a worker for it (Tokio's park_timeout
 * does the same). This covers tasks queued without a notify (the LIFO
 * budget path) behind a long poll.
 */
static void maintenance(struct weft__worker *w)
{
	drive(w);
	if (!w->searching && weft__deque_len(&w->dq))
		weft__idle_notify(w->rt);
}

static void run(struct weft__worker *w)
{
	for (;;) {
		struct weft__task *t = next_task(w);

		if (t) {
			run_task(w, t);
			if (w->tick % EVENT_INTERVAL == 0)
				maintenance(w);
			continue;
		}
		drive(w);
		if (has_local_work(w))
			continue;
		t = search(w);
		if (t) {
			run_task(w, t);
			continue;
		}
		if (has_local_work(w))
			continue;
		if (exit_ready(w))
			break;
		park(w);
	}
	/* Whatever searching state remained must not count anymore. */
	if (w->searching) {
		w->searching = false;
		/* seq_cst: as in weft__idle_stop_search; nobody needs waking
		 * now, the runtime is shutting down. */
		atomic_fetch_sub_explicit(&w->rt->idle.num_searching, 1,
					  memory_order_seq_cst);
	}
}

void *weft__worker_main(void *arg)
{
	struct weft__worker *w = arg;
	struct weft_runtime *rt = w->rt;
	unsigned mode = 0;
	int err;

	tls_worker = w;
	weft__timers_init(&w->timers, &w->driver);
	/* SINGLE_ISSUER binds the ring to the thread that creates it. */
	err = weft__driver_init(&w->driver, rt->ring_entries, rt->flags, &mode);

	pthread_mutex_lock(&rt->start_lock);
	if (err && !rt->start_err)
		rt->start_err = err;
	if (!err)
		rt->ring_mode = mode;
	rt->started++;
	pthread_cond_broadcast(&rt->start_cond);
	while (!rt->go)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	int go = rt->go;
	pthread_mutex_unlock(&rt->start_lock);

	if (go > 0)
		run(w);
	weft__timers_leave(&w->timers);
	weft__driver_leave(&w->driver);
	tls_worker = NULL;
	return NULL;
}
