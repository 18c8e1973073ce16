/* SPDX-License-Identifier: MIT */
/*
 * sync_stress: notify, rwlock and barrier on 1-4 workers, many seeds.
 *
 *  - notify: a foreign thread hands out K items one at a time (count up,
 *    notify_one); consumer tasks take items or wait, prepared before they
 *    look (the lost-wakeup-free pattern). After a quarter of the
 *    notifies the thread aborts a random consumer at once (often the wait
 *    notify_one chose, woken but not yet polled: its drop must pass the
 *    notification on), checks the item is still taken within 5 s, and
 *    replaces the consumer. Every item is taken exactly once. Then
 *    notify_waiters with a done flag releases the rest.
 *  - rwlock: readers and writers check exclusion (no writer with anyone
 *    else inside, ever) across yields while holding; random aborts,
 *    including of holders (their drop unlocks). At the end the lock is
 *    free and nobody waits.
 *  - barrier: B tasks pass G generations; exactly one leader each.
 *
 * Exit 0 pass, 1 fail (with the seed to replay).
 */
#include <weft.h>

#include "stress.h"

enum { CONSUMERS = 8, ITEMS = 400, RW_TASKS = 16, RW_ROUNDS = 40,
       BARRIER_TASKS = 6, GENERATIONS = 60 };

static uint64_t next(uint64_t *x)
{
	return stress_splitmix(x);
}

static weft_runtime *new_runtime(uint64_t *x)
{
	weft_runtime_config cfg;
	weft_runtime *rt;

	weft_runtime_config_init(&cfg);
	cfg.workers = 1 + (unsigned)(next(x) % 4);
	if (weft_runtime_new(&cfg, &rt))
		stress_fail("runtime");
	return rt;
}

static void join_all(weft_runtime *rt, weft_join **j, int n)
{
	for (int i = 0; i < n; i++) {
		weft_join_future jf = { .join = j[i], .value = NULL };
		int st;

		if (weft_block_on(rt, &weft_join_future_desc, &jf, &st))
			stress_fail("block_on");
		if (st != 0 && st != -ECANCELED)
			stress_fail("task %d: %d", i, st);
	}
}

/* ---------------------------------------------------------------- notify */

struct items {
	weft_notify *n;
	atomic_int left;     /* handed out, not yet taken */
	atomic_int taken;
	atomic_bool done;
};

struct consumer {
	struct items *it;
	bool waiting;
	weft_notified w;
};

static bool take(struct items *it)
{
	int v = atomic_load(&it->left);

	while (v > 0)
		if (atomic_compare_exchange_weak(&it->left, &v, v - 1))
			return true;
	return false;
}

static weft_poll consumer_poll(void *self, weft_cx *cx, void *out)
{
	struct consumer *c = self;
	int r;

	(void)out;
	for (;;) {
		if (!c->waiting) {
			/* Prepare first, then look: a notify between the
			 * look and the poll is not lost. */
			weft_notified_init(&c->w, c->it->n);
			c->waiting = true;
			if (take(c->it)) {
				atomic_fetch_add(&c->it->taken, 1);
				stress_progress();
				weft_notified_drop(&c->w);
				c->waiting = false;
				continue;
			}
			if (atomic_load(&c->it->done)) {
				weft_notified_drop(&c->w);
				c->waiting = false;
				return WEFT_READY;
			}
		}
		if (weft_notified_poll(&c->w, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		if (r)
			stress_fail("notified: %d", r);
		weft_notified_drop(&c->w);
		c->waiting = false;
	}
}

static void consumer_drop(void *self)
{
	struct consumer *c = self;

	if (c->waiting)
		weft_notified_drop(&c->w);
}

static const weft_future_desc consumer_desc = {
	.poll = consumer_poll,
	.drop = consumer_drop,
	.size = sizeof(struct consumer),
};

static unsigned notify_round(uint64_t seed)
{
	uint64_t x = seed;
	weft_runtime *rt = new_runtime(&x);
	struct items it = { 0 };
	weft_join *j[CONSUMERS];
	unsigned aborted = 0;

	if (weft_notify_new(&it.n))
		stress_fail("notify_new");
	for (int i = 0; i < CONSUMERS; i++) {
		struct consumer c = { .it = &it };

		if (weft_spawn(rt, &consumer_desc, &c, &j[i]))
			stress_fail("spawn");
	}
	for (int k = 0; k < ITEMS; k++) {
		atomic_fetch_add(&it.left, 1);
		weft_notify_one(it.n);
		if (next(&x) % 4)
			continue;
		/* Abort a consumer right after the notify: often the one it
		 * chose, woken but not yet polled, whose drop must pass the
		 * notification on. Then the item must still be taken. */
		int v = (int)(next(&x) % CONSUMERS);
		weft_task_abort(j[v]);
		aborted++;
		uint64_t give_up = stress_now_ns() + 5000000000ull;
		while (atomic_load(&it.taken) < k + 1)
			if (stress_now_ns() > give_up)
				stress_fail("notify: item %d never taken: a "
					    "notification was lost", k);
		join_all(rt, &j[v], 1);
		struct consumer c = { .it = &it };
		if (weft_spawn(rt, &consumer_desc, &c, &j[v]))
			stress_fail("spawn");
	}
	/* Every item is taken, unless a notification was lost. */
	while (atomic_load(&it.taken) < ITEMS)
		stress_sleep_us(200);
	if (atomic_load(&it.taken) != ITEMS || atomic_load(&it.left) != 0)
		stress_fail("notify: %d taken, %d left of %d",
			    atomic_load(&it.taken), atomic_load(&it.left),
			    ITEMS);
	atomic_store(&it.done, true);
	weft_notify_waiters(it.n);
	join_all(rt, j, CONSUMERS);
	if (weft_notify_free(it.n))
		stress_fail("notify: a wait is still queued");
	weft_runtime_free(rt);
	return aborted;
}

/* ---------------------------------------------------------------- rwlock */

struct rw_shared {
	weft_rwlock *l;
	atomic_int readers, writers;
};

struct rw_user {
	struct rw_shared *sh;
	uint64_t seed;
	int round, step, yields;
	bool writer, held;
	weft_rwlock_lock k;
};

static void rw_enter(struct rw_user *u)
{
	struct rw_shared *sh = u->sh;

	if (u->writer) {
		if (atomic_fetch_add(&sh->writers, 1) != 0 ||
		    atomic_load(&sh->readers) != 0)
			stress_fail("rwlock: a writer is not alone");
	} else {
		atomic_fetch_add(&sh->readers, 1);
		if (atomic_load(&sh->writers) != 0)
			stress_fail("rwlock: a reader beside a writer");
	}
	u->held = true;
}

static void rw_leave(struct rw_user *u)
{
	if (u->writer) {
		atomic_fetch_sub(&u->sh->writers, 1);
		if (weft_rwlock_write_unlock(u->sh->l))
			stress_fail("write_unlock");
	} else {
		atomic_fetch_sub(&u->sh->readers, 1);
		if (weft_rwlock_read_unlock(u->sh->l))
			stress_fail("read_unlock");
	}
	u->held = false;
}

static weft_poll rw_poll(void *self, weft_cx *cx, void *out)
{
	struct rw_user *u = self;
	int r;

	(void)out;
	while (u->round < RW_ROUNDS) {
		if (u->step == 0) {
			u->writer = next(&u->seed) % 4 == 0;
			if (u->writer)
				weft_rwlock_write_init(&u->k, u->sh->l);
			else
				weft_rwlock_read_init(&u->k, u->sh->l);
			u->step = 1;
		}
		if (u->step == 1) {
			if (weft_rwlock_lock_poll(&u->k, cx, &r) ==
			    WEFT_PENDING)
				return WEFT_PENDING;
			weft_rwlock_lock_drop(&u->k);
			if (r)
				stress_fail("rwlock lock: %d", r);
			rw_enter(u);
			u->yields = (int)(next(&u->seed) % 3);
			u->step = 2;
		}
		if (u->yields-- > 0) { /* hold it across a yield */
			weft_waker_wake_by_ref(weft_cx_waker(cx));
			return WEFT_PENDING;
		}
		rw_leave(u);
		u->step = 0;
		u->round++;
		stress_progress();
	}
	return WEFT_READY;
}

static void rw_drop(void *self)
{
	struct rw_user *u = self;

	if (u->step == 1)
		weft_rwlock_lock_drop(&u->k);
	if (u->held)
		rw_leave(u);
}

static const weft_future_desc rw_desc = {
	.poll = rw_poll,
	.drop = rw_drop,
	.size = sizeof(struct rw_user),
};

static unsigned rwlock_round(uint64_t seed)
{
	uint64_t x = seed;
	weft_runtime *rt = new_runtime(&x);
	struct rw_shared sh = { 0 };
	weft_join *j[RW_TASKS];
	unsigned aborted = 0;

	if (weft_rwlock_new(&sh.l))
		stress_fail("rwlock_new");
	for (int i = 0; i < RW_TASKS; i++) {
		struct rw_user u = { .sh = &sh, .seed = next(&x) };

		if (weft_spawn(rt, &rw_desc, &u, &j[i]))
			stress_fail("spawn");
	}
	for (int i = 0; i < RW_TASKS; i++) {
		if (next(&x) % 4)
			continue;
		stress_sleep_us((unsigned)(next(&x) % 300));
		weft_task_abort(j[i]);
		aborted++;
	}
	join_all(rt, j, RW_TASKS);
	if (atomic_load(&sh.readers) || atomic_load(&sh.writers))
		stress_fail("rwlock: still held at the end");
	if (weft_rwlock_try_write(sh.l))
		stress_fail("rwlock: not free at the end");
	if (weft_rwlock_write_unlock(sh.l) || weft_rwlock_free(sh.l))
		stress_fail("rwlock: unlock or free");
	weft_runtime_free(rt);
	return aborted;
}

/* --------------------------------------------------------------- barrier */

struct passer {
	weft_barrier *b;
	atomic_int *leaders;
	int gen;
	bool waiting;
	weft_barrier_wait w;
};

static weft_poll passer_poll(void *self, weft_cx *cx, void *out)
{
	struct passer *p = self;
	int leader;

	(void)out;
	while (p->gen < GENERATIONS) {
		if (!p->waiting) {
			weft_barrier_wait_init(&p->w, p->b);
			p->waiting = true;
		}
		if (weft_barrier_wait_poll(&p->w, cx, &leader) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_barrier_wait_drop(&p->w);
		p->waiting = false;
		if (leader < 0)
			stress_fail("barrier wait: %d", leader);
		atomic_fetch_add(p->leaders, leader);
		p->gen++;
		stress_progress();
	}
	return WEFT_READY;
}

static void passer_drop(void *self)
{
	struct passer *p = self;

	if (p->waiting)
		weft_barrier_wait_drop(&p->w);
}

static const weft_future_desc passer_desc = {
	.poll = passer_poll,
	.drop = passer_drop,
	.size = sizeof(struct passer),
};

static void barrier_round(uint64_t seed)
{
	uint64_t x = seed;
	weft_runtime *rt = new_runtime(&x);
	atomic_int leaders = 0;
	weft_join *j[BARRIER_TASKS];
	weft_barrier *b;

	if (weft_barrier_new(BARRIER_TASKS, &b))
		stress_fail("barrier_new");
	for (int i = 0; i < BARRIER_TASKS; i++) {
		struct passer p = { .b = b, .leaders = &leaders };

		if (weft_spawn(rt, &passer_desc, &p, &j[i]))
			stress_fail("spawn");
	}
	join_all(rt, j, BARRIER_TASKS);
	if (atomic_load(&leaders) != GENERATIONS)
		stress_fail("barrier: %d leaders in %d generations",
			    atomic_load(&leaders), GENERATIONS);
	if (weft_barrier_free(b))
		stress_fail("barrier: a wait is still queued");
	weft_runtime_free(rt);
}

int main(int argc, char **argv)
{
	unsigned rounds = 0, aborted = 0;
	double budget;

	stress_init("sync_stress", argc, argv);
	budget = stress_seconds < 6 ? stress_seconds : 6;
	while (rounds < 3 || stress_elapsed_s() < budget) {
		uint64_t seed = stress_seed + rounds;

		stress_set_phase("notify");
		aborted += notify_round(seed);
		stress_set_phase("rwlock");
		aborted += rwlock_round(seed);
		stress_set_phase("barrier");
		barrier_round(seed);
		if (++rounds >= 200)
			break;
	}
	return stress_finish("%u rounds, %u aborts", rounds, aborted);
}
