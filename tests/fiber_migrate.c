/* SPDX-License-Identifier: MIT */
/*
 * Fiber migration (weft/fiber.h, Threads and migration): a fiber woken
 * from another thread is resumed by whichever worker takes it, so code
 * after a fiber call may run on another thread than the code before it.
 * After every call the fiber checks that what it sees of "the current
 * thread" is the thread it really runs on (the kernel's tid): its own
 * thread-locals read through noinline functions, pthread_self(),
 * weft_worker_index(), and the library's own per-thread state:
 * weft_runtime_current(), weft_task_name(), task-locals.
 *
 * bad_tls() shows why the rule "do not keep the address of a thread-local
 * across a fiber call" exists: compilers may compute the address of a
 * thread-local once per function (movq %fs:0, %rax; leaq slot@tpoff(%rax),
 * %rbx) and keep it in a callee-saved register across calls, since to them
 * the thread pointer cannot change inside a function. So `&tls_slot`
 * written twice around weft_co_yield() may be one address: after a
 * migration, the second is the old thread's variable. gcc 12 -O2 on
 * x86-64 does it here (every migrated call reports it); clang 14 -O2
 * reloads %fs:0 in bad_tls, but caches it too in the plainer
 * `f(&slot); weft_co_yield(); f(&slot);` with a direct call to f. The test
 * counts how often it happens and asserts only that it never happens
 * without a migration (how often migrations happen is up to the
 * scheduler, and what a compiler caches is up to its optimiser).
 */
#include <sys/syscall.h>

#include "fiber_helpers.h"

static pid_t real_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* The test's thread-locals, read only through noinline functions (the
 * rule): each call computes the address on the thread it runs on. */
static __thread pid_t tls_tid;
static __thread long tls_slot;

static __attribute__((noinline)) pid_t tls_tid_get(void)
{
	if (!tls_tid)
		tls_tid = real_tid();
	return tls_tid;
}

static __attribute__((noinline)) long *tls_slot_addr(void)
{
	long *p = &tls_slot;
	__asm__ volatile("" : "+r"(p));
	return p;
}

static __attribute__((noinline)) pthread_t self_get(void)
{
	return pthread_self();
}

/* tid -> pthread_self, worker index: both must stay the same per thread,
 * and the worker indexes differ between threads. */
static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	pid_t tid;
	pthread_t self;
	int widx;
} tab[64];
static int ntab;

static void check_thread(unsigned workers)
{
	pid_t t = real_tid();
	pthread_t s = self_get();
	int w = weft_worker_index();

	FCHECK(tls_tid_get() == t, "thread-local of tid %d read on %d",
	       (int)tls_tid_get(), (int)t);
	FCHECK(w >= 0 && (unsigned)w < workers, "worker index %d", w);
	pthread_mutex_lock(&tab_mu);
	int i;
	for (i = 0; i < ntab && tab[i].tid != t; i++)
		FCHECK(tab[i].widx != w, "index %d on tids %d and %d", w,
		       (int)tab[i].tid, (int)t);
	if (i == ntab) {
		FCHECK(ntab < 64);
		tab[ntab].tid = t;
		tab[ntab].self = s;
		tab[ntab].widx = w;
		ntab++;
	} else {
		FCHECK(pthread_equal(tab[i].self, s), "pthread_self");
		FCHECK(tab[i].widx == w, "worker index %d, was %d", w,
		       tab[i].widx);
	}
	pthread_mutex_unlock(&tab_mu);
}

/* Records @p in *@where; called through a volatile pointer so that the
 * caller must materialise the thread-local's address (no inlining, no
 * constant propagation into a clone). */
static void rec_fn(long **where, long *p)
{
	*where = p;
}

static void (*volatile rec)(long **, long *) = rec_fn;

/*
 * The anti-pattern: `&tls_slot` on both sides of a fiber call. Returns 1
 * if the call migrated, plus 2 if the second `&tls_slot` was not this
 * thread's variable (the compiler reused the first address).
 */
static __attribute__((noinline)) int bad_tls(void)
{
	long *before = NULL, *after = NULL;
	pid_t t0 = real_tid();

	rec(&before, &tls_slot);
	FCHECK(weft_co_yield() == 0);
	rec(&after, &tls_slot);
	return (real_tid() != t0) | (after != tls_slot_addr()) << 1;
}

static const weft_task_local_key local_key = WEFT_TASK_LOCAL_KEY_INIT(free);

struct mig {
	weft_runtime *rt;
	unsigned workers;
	int id;
	weft_mpsc_rx *rx;
	int migrations, bad_migrated, bad_stale, values;
};

#define MIG_FIBERS 6
#define MIG_ROUNDS 150

static void check_all(struct mig *m, const char *name, int *local,
		      pid_t *last)
{
	pid_t t = real_tid();
	const char *n = weft_task_name();

	check_thread(m->workers);
	FCHECK(weft_runtime_current() == m->rt);
	FCHECK(n && !strcmp(n, name), "task name %s, want %s",
	       n ? n : "(null)", name);
	FCHECK(weft_task_local_get(&local_key) == local, "task-local");
	FCHECK(weft_in_fiber());
	if (t != *last)
		m->migrations++;
	*last = t;
}

static void *mig_fn(void *arg)
{
	struct mig *m = arg;
	char name[32];
	int *local = malloc(sizeof(*local));
	pid_t last = real_tid();

	FCHECK(local);
	*local = m->id;
	snprintf(name, sizeof(name), "mig-%d", m->id);
	FCHECK(weft_task_local_set(&local_key, local) == 0);
	check_all(m, name, local, &last);
	for (;;) {
		/* Woken by the test thread: through the injector, to any
		 * worker. */
		weft_mpsc_recv r;
		int v = -1, res = 1;
		FCHECK(weft_mpsc_recv_init(&r, m->rx, &v) == 0);
		FCHECK(weft_await(&weft_mpsc_recv_desc, &r, &res) == 0);
		check_all(m, name, local, &last);
		if (res == -EPIPE)
			break;
		FCHECK(res == 0 && v == m->values, "value %d, want %d", v,
		       m->values);
		m->values++;
		FCHECK(weft_co_yield() == 0);
		check_all(m, name, local, &last);
		if (v % 8 == 0) {
			FCHECK(weft_co_sleep(50000) == 0);
			check_all(m, name, local, &last);
		}
		int b = bad_tls();
		check_all(m, name, local, &last);
		m->bad_migrated += b & 1;
		m->bad_stale += (b >> 1) & 1;
		FCHECK((b & 1) || !(b & 2), "stale address without migration");
	}
	return (void *)1;
}

WT_RT_TEST_T(fiber_migrate, thread_state_follows, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct mig m[MIG_FIBERS];
	weft_mpsc_tx *tx[MIG_FIBERS];
	weft_join *j[MIG_FIBERS];
	struct wt_counters busy = { 0 };
	weft_join *bj[8];

	/* Poll-based tasks keeping the workers busy meanwhile. */
	for (int i = 0; i < 8; i++) {
		struct wt_value v = wt_value_init(i, 3000, &busy);
		wt_spawn(rt, &wt_value_desc, &v, &bj[i]);
	}
	for (int i = 0; i < MIG_FIBERS; i++) {
		char name[32];
		m[i] = (struct mig){ .rt = rt, .workers = cfg->workers,
				     .id = i };
		cr_assert_eq(weft_mpsc_unbounded(sizeof(int), &tx[i],
						 &m[i].rx), 0);
		snprintf(name, sizeof(name), "mig-%d", i);
		j[i] = wt_go(rt, mig_fn, &m[i], name);
	}
	for (int round = 0; round < MIG_ROUNDS; round++) {
		for (int i = 0; i < MIG_FIBERS; i++)
			cr_assert_eq(weft_mpsc_try_send(tx[i], &round), 0);
		if (round % 4 == 0)
			wt_sleep_ms(1);
	}
	int migrations = 0, bad_migrated = 0, bad_stale = 0;
	for (int i = 0; i < MIG_FIBERS; i++) {
		weft_mpsc_tx_drop(tx[i]);
		void *out = NULL;
		cr_assert_eq(wt_fiber_join(j[i], &out), 0);
		cr_assert_eq(out, (void *)1);
		cr_assert_eq(m[i].values, MIG_ROUNDS);
		weft_mpsc_rx_drop(m[i].rx);
		migrations += m[i].migrations;
		bad_migrated += m[i].bad_migrated;
		bad_stale += m[i].bad_stale;
	}
	for (int i = 0; i < 8; i++) {
		int st = 1;
		int64_t out;
		wt_join_wait(bj[i], &st, &out);
		cr_assert_eq(st, 0);
		weft_join_drop(bj[i]);
	}
	if (cfg->workers == 1)
		cr_assert_eq(migrations, 0);
	cr_log_info("%u workers: %d migrations; bad_tls: %d calls migrated, "
		    "%d of them used the old thread's variable",
		    cfg->workers, migrations, bad_migrated, bad_stale);
	wt_rt_free(rt);
}

/*
 * A future that stays PENDING for 30 polls, handing a clone of each
 * poll's waker to a plain thread that wakes it: every poll after the
 * first comes after a wake from outside the runtime, so one weft_await
 * is resumed on whichever worker takes it, and each poll must use the
 * context of the resume it runs in (a stale one loses the wake).
 */
static weft_mpsc_tx *waker_tx;

struct remote {
	int polls;
};

static weft_poll remote_poll(void *self, weft_cx *cx, void *out)
{
	struct remote *r = self;
	(void)out;
	if (++r->polls > 30)
		return WEFT_READY;
	weft_waker w = weft_waker_clone(weft_cx_waker(cx));
	FCHECK(weft_mpsc_try_send(waker_tx, &w) == 0);
	return WEFT_PENDING;
}

static const weft_future_desc remote_desc = {
	.poll = remote_poll,
	.size = sizeof(struct remote),
};

static void *remote_fn(void *arg)
{
	pid_t last = real_tid();
	int *moved = arg;
	for (int i = 0; i < 5; i++) {
		struct remote r = { 0 };
		FCHECK(weft_await(&remote_desc, &r, NULL) == 0);
		FCHECK(r.polls == 31);
		if (real_tid() != last)
			(*moved)++;
		last = real_tid();
	}
	return (void *)1;
}

static void *waker_thread(void *arg)
{
	weft_mpsc_rx *rx = arg;
	weft_waker w;
	while (weft_mpsc_recv_blocking(rx, &w) == 0) {
		struct timespec ts = { 0, 20000 };
		nanosleep(&ts, NULL);
		weft_waker_wake(&w);
	}
	return NULL;
}

WT_RT_TEST(fiber_migrate, polls_use_the_current_context)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_mpsc_rx *rx;
	pthread_t th;
	weft_join *j[4];
	int moved[4] = { 0 };
	struct wt_counters busy = { 0 };
	weft_join *bj[4];

	cr_assert_eq(weft_mpsc_unbounded(sizeof(weft_waker), &waker_tx, &rx),
		     0);
	cr_assert_eq(pthread_create(&th, NULL, waker_thread, rx), 0);
	for (int i = 0; i < 4; i++) {
		struct wt_value v = wt_value_init(i, 2000, &busy);
		wt_spawn(rt, &wt_value_desc, &v, &bj[i]);
	}
	for (int i = 0; i < 4; i++)
		j[i] = wt_go(rt, remote_fn, &moved[i], "remote");
	for (int i = 0; i < 4; i++) {
		void *out = NULL;
		cr_assert_eq(wt_fiber_join(j[i], &out), 0);
		cr_assert_eq(out, (void *)1);
	}
	for (int i = 0; i < 4; i++) {
		int st = 1;
		int64_t out;
		wt_join_wait(bj[i], &st, &out);
		weft_join_drop(bj[i]);
	}
	weft_mpsc_tx_drop(waker_tx);
	pthread_join(th, NULL);
	weft_mpsc_rx_drop(rx);
	cr_log_info("%u workers: moved %d %d %d %d", cfg->workers, moved[0],
		    moved[1], moved[2], moved[3]);
	wt_rt_free(rt);
}
