/* SPDX-License-Identifier: MIT */
/*
 * The combinators of weft/future.h over a mix of leaf futures (weft_io
 * sleeps and reads, join handles, oneshot receivers, yields, probes):
 *
 *  - select: the right arm wins and delivers its output; the losers are
 *    dropped: an op in flight is cancelled (the runtime's op counters catch
 *    up long before a 10 s sleep could end, shutdown is prompt, ASan/LSan
 *    see nothing freed early or leaked), a join handle detaches its task
 *    (which still runs to completion), a oneshot receiver is released (the
 *    sender's send then fails with -EPIPE);
 *  - many selects dropping recv ops in flight, buffers in the task state;
 *  - biased order, a timeout as select(inner, sleep), aborting a task
 *    whose select is pending, nesting, and select spawned as a task;
 *  - join_all: every output delivered, n = 0, dropped mid-way;
 *  - argument errors.
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "io_helpers.h"

#define MS WT_MS

/* --- nap: a task that sleeps, counts its finish and returns a value ----- */

struct nap {
	uint64_t ns;
	int64_t value;
	atomic_int *finished; /* optional: incremented when READY */
	/* private */
	int armed;
	weft_io io;
};

static weft_poll nap_poll(void *self, weft_cx *cx, void *out)
{
	struct nap *s = self;
	int64_t r;
	if (!s->armed) {
		weft_io_prep_sleep(&s->io, s->ns);
		s->armed = 1;
	}
	if (weft_io_poll(&s->io, cx, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	WT_CHECK(r == 0, "nap: sleep gave %lld", (long long)r);
	if (s->finished)
		atomic_fetch_add(s->finished, 1);
	*(int64_t *)out = s->value;
	return WEFT_READY;
}

static void nap_drop(void *self)
{
	weft_io_drop(&((struct nap *)self)->io);
}

static const weft_future_desc nap_desc = {
	.poll = nap_poll,
	.drop = nap_drop,
	.size = sizeof(struct nap),
	.output_size = sizeof(int64_t),
};

/* --- sender: a task that sleeps, then sends on a oneshot --------------- */

struct send_outcome {
	atomic_int done; /* 1 once weft_oneshot_send returned */
	atomic_int res;  /* what it returned */
};

struct sender {
	uint64_t ns;
	weft_oneshot_tx *tx; /* owned */
	int64_t value;
	struct send_outcome *o;
	/* private */
	int armed;
	weft_io io;
};

static weft_poll sender_poll(void *self, weft_cx *cx, void *out)
{
	struct sender *s = self;
	int64_t r;
	(void)out;
	if (!s->armed) {
		weft_io_prep_sleep(&s->io, s->ns);
		s->armed = 1;
	}
	if (weft_io_poll(&s->io, cx, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	int err = weft_oneshot_send(s->tx, &s->value);
	s->tx = NULL;
	atomic_store(&s->o->res, err);
	atomic_store(&s->o->done, 1);
	return WEFT_READY;
}

static void sender_drop(void *self)
{
	struct sender *s = self;
	weft_io_drop(&s->io);
	weft_oneshot_tx_drop(s->tx);
	s->tx = NULL;
}

static const weft_future_desc sender_desc = {
	.poll = sender_poll,
	.drop = sender_drop,
	.size = sizeof(struct sender),
	.output_size = 0,
};

/* --- comb_task: select or join_all over arms kept in the task state ---- */

#define ARMS_MAX 5
#define ARM_STATE 160
#define ARM_OUT 16

/*
 * One arm: its descriptor and a copy of its state (a weft_io prepared but
 * never polled, a weft_join_future, ...), filled on the test thread; the
 * state is copied into the task, and the arms are wired at the first poll,
 * when the task state has its final address.
 */
struct arm_spec {
	const weft_future_desc *desc;
	_Alignas(16) unsigned char st[ARM_STATE];
};

struct comb_task {
	unsigned n;
	int join_all; /* 0: select */
	struct arm_spec arm[ARMS_MAX];
	atomic_int *polled; /* optional: incremented on every poll */
	/* private */
	int started;
	_Alignas(16) unsigned char out[ARMS_MAX][ARM_OUT];
	weft_future f[ARMS_MAX];
	weft_select sel;
	weft_join_all ja;
};

struct comb_out {
	size_t winner;       /* select only */
	unsigned ready_mask; /* arms whose future returned READY */
	_Alignas(16) unsigned char out[ARMS_MAX][ARM_OUT];
};

static void arm_set(struct arm_spec *a, const weft_future_desc *desc,
		    const void *state)
{
	cr_assert_leq(desc->size, ARM_STATE);
	cr_assert_leq(desc->output_size, ARM_OUT);
	a->desc = desc;
	memcpy(a->st, state, desc->size);
}

static weft_poll comb_poll(void *self, weft_cx *cx, void *out)
{
	struct comb_task *s = self;
	struct comb_out *o = out;
	size_t w = SIZE_MAX;
	weft_poll p;

	WT_CHECK(weft_worker_index() >= 0, "polled off a worker");
	if (!s->started) {
		for (unsigned i = 0; i < s->n; i++)
			WT_CHECK(weft_future_init(&s->f[i], s->arm[i].desc,
						  s->arm[i].st,
						  s->out[i]) == 0,
				 "arm %u", i);
		if (s->join_all)
			WT_CHECK(weft_join_all_init(&s->ja, s->f, s->n) == 0,
				 "join_all_init");
		else
			WT_CHECK(weft_select_init(&s->sel, s->f, s->n) == 0,
				 "select_init");
		s->started = 1;
	}
	if (s->join_all)
		p = weft_join_all_poll(&s->ja, cx);
	else
		p = weft_select_poll(&s->sel, cx, &w);
	if (s->polled)
		atomic_fetch_add(s->polled, 1);
	if (p == WEFT_PENDING)
		return WEFT_PENDING;
	o->winner = w;
	o->ready_mask = 0;
	for (unsigned i = 0; i < s->n; i++)
		if (weft_future_is_ready(&s->f[i]))
			o->ready_mask |= 1u << i;
	memcpy(o->out, s->out, sizeof(o->out));
	return WEFT_READY;
}

static void comb_drop(void *self)
{
	struct comb_task *s = self;
	if (s->started) {
		if (s->join_all)
			weft_join_all_drop(&s->ja);
		else
			weft_select_drop(&s->sel);
		return;
	}
	/* Dropped before the first poll: the arms were never wired. */
	for (unsigned i = 0; i < s->n; i++)
		if (s->arm[i].desc->drop)
			s->arm[i].desc->drop(s->arm[i].st);
}

static const weft_future_desc comb_desc = {
	.poll = comb_poll,
	.drop = comb_drop,
	.size = sizeof(struct comb_task),
	.output_size = sizeof(struct comb_out),
};

/* Arm builders (the state is copied, so locals are fine). */
static void arm_sleep(struct arm_spec *a, uint64_t ns)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_sleep(&io, ns), 0);
	arm_set(a, &weft_io_desc, &io);
}

static void arm_read(struct arm_spec *a, int fd, void *buf, size_t len)
{
	weft_io io = WEFT_IO_INIT;
	cr_assert_eq(weft_io_prep_read(&io, fd, buf, len, -1), 0);
	arm_set(a, &weft_io_desc, &io);
}

static void arm_join(struct arm_spec *a, weft_join *j, void *value)
{
	weft_join_future jf = { .join = j, .value = value };
	arm_set(a, &weft_join_future_desc, &jf);
}

static void arm_rx(struct arm_spec *a, weft_oneshot_rx *rx, void *value)
{
	weft_oneshot_recv rf = { .rx = rx, .value = value };
	arm_set(a, &weft_oneshot_recv_desc, &rf);
}

static int64_t out_i64(const struct comb_out *o, unsigned i)
{
	int64_t v;
	memcpy(&v, o->out[i], sizeof(v));
	return v;
}

static int out_int(const struct comb_out *o, unsigned i)
{
	int v;
	memcpy(&v, o->out[i], sizeof(v));
	return v;
}

/* --- select over a mix ------------------------------------------------- */

/*
 * select(a 10 s sleep, the join of a nap task of @join_ns, a oneshot whose
 * sender task sends after @send_ns): what each arm and task left behind.
 */
struct mix {
	atomic_int nap_done;
	struct send_outcome so;
	int64_t join_val, rx_val;
	struct comb_out o;
};

static weft_runtime *run_mix(const struct wt_cfg *cfg, struct mix *m,
			     uint64_t join_ns, uint64_t send_ns)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(int64_t), &tx, &rx), 0);
	struct nap n = { .ns = join_ns, .value = 42, .finished = &m->nap_done };
	weft_join *jn;
	wt_spawn(rt, &nap_desc, &n, &jn);
	struct sender snd = { .ns = send_ns, .tx = tx, .value = 7,
			      .o = &m->so };
	wt_spawn(rt, &sender_desc, &snd, NULL);

	m->join_val = m->rx_val = -1;
	struct comb_task t = { .n = 3 };
	arm_sleep(&t.arm[0], 10000 * MS);
	arm_join(&t.arm[1], jn, &m->join_val);
	arm_rx(&t.arm[2], rx, &m->rx_val);
	wt_block_on(rt, &comb_desc, &t, &m->o);
	return rt;
}

/*
 * The join is faster: it wins with status 0 and the task's value; the
 * receiver is released, so the (later) send fails with -EPIPE; the sleep
 * is cancelled.
 */
WT_RT_TEST_T(select, mix_join_wins_losers_dropped, 20)
{
	struct mix m = { 0 };
	weft_runtime *rt = run_mix(cfg, &m, 5 * MS, 400 * MS);
	cr_expect_eq(m.o.winner, 1, "winner %zu", m.o.winner);
	cr_expect_eq(m.o.ready_mask, 1u << 1, "ready mask %#x",
		     m.o.ready_mask);
	cr_expect_eq(out_int(&m.o, 1), 0, "join status");
	cr_expect_eq(m.join_val, 42);
	cr_expect_eq(m.rx_val, -1, "losing receiver wrote a value");
	cr_expect_eq(atomic_load(&m.nap_done), 1);
	/* The released receiver makes the sender's send fail. */
	cr_assert_eq(wt_wait_atomic_ge(&m.so.done, 1, 5000), 1, "no send");
	cr_expect_eq(atomic_load(&m.so.res), -EPIPE, "send: %d",
		     atomic_load(&m.so.res));
	/* The 10 s sleep was cancelled. */
	cr_expect(wt_ops_quiesce(rt, 3000), "the losing sleep still runs");
	wt_rt_free_prompt(rt);
}

/*
 * The oneshot is faster: it wins with status 0 and the value; the losing
 * join handle is dropped, which detaches its task: the task still runs to
 * completion.
 */
WT_RT_TEST_T(select, mix_oneshot_wins_join_detached, 20)
{
	struct mix m = { 0 };
	weft_runtime *rt = run_mix(cfg, &m, 300 * MS, 5 * MS);
	cr_expect_eq(m.o.winner, 2, "winner %zu", m.o.winner);
	cr_expect_eq(m.o.ready_mask, 1u << 2, "ready mask %#x",
		     m.o.ready_mask);
	cr_expect_eq(out_int(&m.o, 2), 0, "recv status");
	cr_expect_eq(m.rx_val, 7);
	cr_expect_eq(m.join_val, -1, "losing join wrote a value");
	/* The send woke the select before the sender recorded its result:
	 * wait for that (reading it at once raced: a flaky failure). */
	cr_assert_eq(wt_wait_atomic_ge(&m.so.done, 1, 5000), 1, "no send");
	cr_expect_eq(atomic_load(&m.so.res), 0);
	/* Detached, not cancelled: the nap finishes. */
	cr_expect_eq(wt_wait_atomic_ge(&m.nap_done, 1, 5000), 1,
		     "the detached task did not run to completion");
	cr_expect(wt_ops_quiesce(rt, 3000), "the losing sleep still runs");
	wt_rt_free_prompt(rt);
}

/* --- dropping losers with recv ops in flight, many times --------------- */

enum { RACE_RECVS = 3, RACE_TASKS = 8, RACE_ITERS = 250 };

/*
 * Each round: a select over recvs on sockets that never get data (buffers
 * in the task state) and a 0-40 us sleep. The sleep wins; the recvs are
 * dropped in flight and must be cancelled without the kernel ever seeing
 * freed memory (the task is kept until their CQEs) or a record leaking.
 */
struct recv_race {
	int fds[RACE_RECVS];
	unsigned iters;
	atomic_int *wins;
	/* private */
	unsigned done;
	int started;
	weft_io io[RACE_RECVS + 1];
	int64_t res[RACE_RECVS + 1];
	weft_future f[RACE_RECVS + 1];
	weft_select sel;
	unsigned char buf[RACE_RECVS][512];
};

static weft_poll recv_race_poll(void *self, weft_cx *cx, void *out)
{
	struct recv_race *s = self;
	size_t w;
	while (s->done < s->iters) {
		if (!s->started) {
			for (int k = 0; k < RACE_RECVS; k++) {
				WT_CHECK(weft_io_prep_recv(&s->io[k], s->fds[k],
							   s->buf[k],
							   sizeof(s->buf[k]),
							   0) == 0, "prep");
				weft_future_init(&s->f[k], &weft_io_desc,
						 &s->io[k], &s->res[k]);
			}
			weft_io_prep_sleep(&s->io[RACE_RECVS],
					   (s->done % 5) * 10000);
			weft_future_init(&s->f[RACE_RECVS], &weft_io_desc,
					 &s->io[RACE_RECVS], &s->res[RACE_RECVS]);
			WT_CHECK(weft_select_init(&s->sel, s->f,
						  RACE_RECVS + 1) == 0, "init");
			s->started = 1;
		}
		if (weft_select_poll(&s->sel, cx, &w) == WEFT_PENDING)
			return WEFT_PENDING;
		WT_CHECK(w == RACE_RECVS, "round %u: arm %zu won (res %lld)",
			 s->done, w, (long long)s->res[w]);
		WT_CHECK(s->res[w] == 0, "sleep gave %lld",
			 (long long)s->res[w]);
		s->started = 0;
		s->done++;
		atomic_fetch_add(s->wins, 1);
	}
	*(int64_t *)out = s->done;
	return WEFT_READY;
}

static void recv_race_drop(void *self)
{
	struct recv_race *s = self;
	if (s->started)
		weft_select_drop(&s->sel);
}

static const weft_future_desc recv_race_desc = {
	.poll = recv_race_poll,
	.drop = recv_race_drop,
	.size = sizeof(struct recv_race),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST_T(select, losers_recv_in_flight_many_rounds, 60)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int sp[RACE_RECVS][2];
	atomic_int wins = 0;
	for (int k = 0; k < RACE_RECVS; k++)
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
					sp[k]), 0);
	weft_join *j[RACE_TASKS];
	for (int i = 0; i < RACE_TASKS; i++) {
		struct recv_race r = { .iters = RACE_ITERS, .wins = &wins };
		for (int k = 0; k < RACE_RECVS; k++)
			r.fds[k] = sp[k][0];
		wt_spawn(rt, &recv_race_desc, &r, &j[i]);
	}
	for (int i = 0; i < RACE_TASKS; i++) {
		int st = 1;
		int64_t done = -1;
		cr_assert(wt_join_wait_ms(j[i], &st, &done, 30000),
			  "task %d did not finish", i);
		cr_expect_eq(st, 0);
		cr_expect_eq(done, RACE_ITERS);
		weft_join_drop(j[i]);
	}
	cr_expect_eq(atomic_load(&wins), RACE_TASKS * RACE_ITERS);
	cr_expect(wt_ops_quiesce(rt, 5000), "cancelled recvs did not retire");
	wt_rt_free_prompt(rt);
	for (int k = 0; k < RACE_RECVS; k++) {
		close(sp[k][0]);
		close(sp[k][1]);
	}
}

/* --- biased order ------------------------------------------------------ */

WT_RT_TEST(select, biased_lower_index_wins_ties)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c0 = { 0 }, c1 = { 0 };
	struct comb_task t = { .n = 2 };
	struct wt_value v0 = wt_value_init(10, 0, &c0);
	struct wt_value v1 = wt_value_init(20, 0, &c1);
	arm_set(&t.arm[0], &wt_value_desc, &v0);
	arm_set(&t.arm[1], &wt_value_desc, &v1);
	struct comb_out o;
	wt_block_on(rt, &comb_desc, &t, &o);
	cr_expect_eq(o.winner, 0);
	cr_expect_eq(out_i64(&o, 0), 10);
	cr_expect_eq(o.ready_mask, 1u);
	/* The loser was never polled, and dropped exactly once. */
	cr_expect_eq(atomic_load(&c1.polls), 0);
	cr_expect_eq(atomic_load(&c1.drops), 1);
	cr_expect_eq(atomic_load(&c0.drops), 1);
	wt_rt_free(rt);
}

WT_RT_TEST(select, biased_first_ready_after_pending_arm)
{
	/* Arm 0 is pending at the first poll (it yields), arms 1 and 2 are
	 * ready: arm 1 wins, arm 2 is never polled. */
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c[3] = { 0 };
	struct comb_task t = { .n = 3 };
	for (int i = 0; i < 3; i++) {
		struct wt_value v = wt_value_init(100 + i, i == 0 ? 2 : 0,
						  &c[i]);
		arm_set(&t.arm[i], &wt_value_desc, &v);
	}
	struct comb_out o;
	wt_block_on(rt, &comb_desc, &t, &o);
	cr_expect_eq(o.winner, 1);
	cr_expect_eq(out_i64(&o, 1), 101);
	cr_expect_eq(atomic_load(&c[0].readies), 0);
	cr_expect_eq(atomic_load(&c[2].polls), 0);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(atomic_load(&c[i].drops), 1, "arm %d drops", i);
	wt_rt_free(rt);
}

/* --- timeout: select(inner, sleep) ------------------------------------- */

WT_RT_TEST(select, timeout_fires_when_inner_is_slower)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	wt_pipe(p);
	unsigned char buf[8] = { 0 };
	struct comb_task t = { .n = 2 };
	arm_read(&t.arm[0], p[0], buf, sizeof(buf)); /* never gets data */
	uint64_t t0 = weft_now_ns();
	arm_sleep(&t.arm[1], 20 * MS);
	struct comb_out o;
	wt_block_on(rt, &comb_desc, &t, &o);
	uint64_t took = weft_now_ns() - t0;
	cr_expect_eq(o.winner, 1);
	cr_expect_eq(out_i64(&o, 1), 0, "sleep result");
	cr_expect_geq(took, 20 * MS, "timeout after %llu ns",
		      (unsigned long long)took);
	/* The read was cancelled: it completes without data ... */
	cr_expect(wt_ops_quiesce(rt, 3000), "the timed-out read still runs");
	/* ... and did not consume what is written afterwards. */
	cr_assert_eq(write(p[1], "z", 1), 1);
	cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	char z = 0;
	cr_expect_eq(read(p[0], &z, 1), 1, "a cancelled read took the byte");
	cr_expect_eq(z, 'z');
	wt_rt_free_prompt(rt);
	close(p[0]);
	close(p[1]);
}

WT_RT_TEST(select, timeout_not_fired_when_inner_is_faster)
{
	weft_runtime *rt = wt_rt_new(cfg);
	int p[2];
	wt_pipe(p);
	cr_assert_eq(write(p[1], "abc", 3), 3);
	unsigned char buf[8] = { 0 };
	struct comb_task t = { .n = 2 };
	arm_read(&t.arm[0], p[0], buf, sizeof(buf));
	arm_sleep(&t.arm[1], 10000 * MS);
	struct comb_out o;
	wt_block_on(rt, &comb_desc, &t, &o);
	cr_expect_eq(o.winner, 0);
	cr_expect_eq(out_i64(&o, 0), 3, "read result %lld",
		     (long long)out_i64(&o, 0));
	cr_expect_eq(memcmp(buf, "abc", 3), 0);
	cr_expect(wt_ops_quiesce(rt, 3000), "the timeout sleep still runs");
	wt_rt_free_prompt(rt);
	close(p[0]);
	close(p[1]);
}

/* --- aborting the task that polls a pending select --------------------- */

WT_RT_TEST_T(select, abort_drops_every_arm, 20)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters fc = { 0 };
	atomic_int polled = 0, nap_done = 0;
	int p[2];
	wt_pipe(p);
	unsigned char buf[8];
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(int64_t), &tx, &rx), 0);
	struct nap n = { .ns = 50 * MS, .value = 1, .finished = &nap_done };
	weft_join *jn;
	wt_spawn(rt, &nap_desc, &n, &jn);

	int64_t join_val = -1, rx_val = -1;
	struct comb_task t = { .n = 5, .polled = &polled };
	arm_sleep(&t.arm[0], 10000 * MS);
	arm_read(&t.arm[1], p[0], buf, sizeof(buf));
	struct wt_forever f = { .c = &fc };
	arm_set(&t.arm[2], &wt_forever_desc, &f);
	arm_join(&t.arm[3], jn, &join_val);
	arm_rx(&t.arm[4], rx, &rx_val);
	weft_join *j;
	wt_spawn(rt, &comb_desc, &t, &j);
	cr_assert_geq(wt_wait_atomic_ge(&polled, 1, 5000), 1, "never polled");
	cr_assert_geq(atomic_load(&fc.polls), 1);

	weft_task_abort(j);
	int st = 1;
	struct comb_out o;
	wt_join_wait(j, &st, &o);
	weft_join_drop(j);
	cr_expect_eq(st, -ECANCELED);
	cr_expect_eq(atomic_load(&fc.drops), 1, "forever arm drops");
	/* The receiver was released, the join handle detached. */
	int64_t v = 5;
	cr_expect_eq(weft_oneshot_send(tx, &v), -EPIPE);
	cr_expect_eq(wt_wait_atomic_ge(&nap_done, 1, 5000), 1,
		     "the detached task did not finish");
	cr_expect_eq(join_val, -1);
	cr_expect_eq(rx_val, -1);
	cr_expect(wt_ops_quiesce(rt, 3000), "sleep or read not cancelled");
	wt_rt_free_prompt(rt);
	close(p[0]);
	close(p[1]);
}

/* --- nesting ----------------------------------------------------------- */

/*
 * outer = select(inner, sleep C), inner = select(sleep A, sleep B), all
 * in the task state. inner_wins: A = 10 s, B = 5 ms, C = 10 s: the outer
 * winner is 0 and the inner one 1. Otherwise A = B = 10 s and C = 5 ms:
 * the outer winner is 1 and dropping the inner select drops its arms.
 */
struct nested {
	int inner_wins;
	/* private */
	int started;
	weft_io a, b, c;
	int64_t ra, rb, rc;
	size_t inner_winner;
	weft_future in_arms[2], out_arms[2];
	weft_select inner, outer;
};

struct nested_out {
	size_t outer, inner;
	int64_t res;
};

static weft_poll nested_poll(void *self, weft_cx *cx, void *out)
{
	struct nested *s = self;
	struct nested_out *o = out;
	size_t w;
	if (!s->started) {
		uint64_t fast = 5 * MS, slow = 10000 * MS;
		weft_io_prep_sleep(&s->a, slow);
		weft_io_prep_sleep(&s->b, s->inner_wins ? fast : slow);
		weft_io_prep_sleep(&s->c, s->inner_wins ? slow : fast);
		s->inner_winner = SIZE_MAX;
		weft_future_init(&s->in_arms[0], &weft_io_desc, &s->a, &s->ra);
		weft_future_init(&s->in_arms[1], &weft_io_desc, &s->b, &s->rb);
		WT_CHECK(weft_select_init(&s->inner, s->in_arms, 2) == 0, "in");
		WT_CHECK(weft_future_init(&s->out_arms[0], &weft_select_desc,
					  &s->inner, &s->inner_winner) == 0,
			 "select as an arm");
		weft_future_init(&s->out_arms[1], &weft_io_desc, &s->c, &s->rc);
		WT_CHECK(weft_select_init(&s->outer, s->out_arms, 2) == 0, "out");
		s->started = 1;
	}
	if (weft_select_poll(&s->outer, cx, &w) == WEFT_PENDING)
		return WEFT_PENDING;
	o->outer = w;
	o->inner = s->inner_winner;
	o->res = w == 0 ? s->rb : s->rc;
	return WEFT_READY;
}

static void nested_drop(void *self)
{
	struct nested *s = self;
	if (s->started)
		weft_select_drop(&s->outer);
}

static const weft_future_desc nested_desc = {
	.poll = nested_poll,
	.drop = nested_drop,
	.size = sizeof(struct nested),
	.output_size = sizeof(struct nested_out),
};

WT_RT_TEST(select, nested_inner_wins)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct nested n = { .inner_wins = 1 };
	struct nested_out o;
	wt_block_on(rt, &nested_desc, &n, &o);
	cr_expect_eq(o.outer, 0);
	cr_expect_eq(o.inner, 1);
	cr_expect_eq(o.res, 0);
	cr_expect(wt_ops_quiesce(rt, 3000), "losing sleeps still run");
	wt_rt_free_prompt(rt);
}

WT_RT_TEST(select, nested_outer_drops_inner_arms)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct nested n = { .inner_wins = 0 };
	struct nested_out o;
	wt_block_on(rt, &nested_desc, &n, &o);
	cr_expect_eq(o.outer, 1);
	cr_expect_eq(o.inner, SIZE_MAX, "inner select wrote a winner");
	cr_expect_eq(o.res, 0);
	cr_expect(wt_ops_quiesce(rt, 3000), "the inner sleeps still run");
	wt_rt_free_prompt(rt);
}

/* --- select spawned as a task (weft_select_desc) ----------------------- */

/*
 * The spawned state is the weft_select itself, so the arms and their
 * states live outside the task and must outlive it (freed after the
 * runtime).
 */
struct ext_arms {
	weft_io s0, s2;
	int64_t r0, r2, value;
	int rst;
	weft_oneshot_recv rf;
	weft_future f[3];
};

WT_RT_TEST(select, spawned_with_select_desc)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct ext_arms *e = calloc(1, sizeof(*e));
	cr_assert_not_null(e);
	weft_oneshot_tx *tx;
	cr_assert_eq(weft_oneshot_new(sizeof(int64_t), &tx, &e->rf.rx), 0);
	e->rf.value = &e->value;
	e->value = -1;
	weft_io_prep_sleep(&e->s0, 10000 * MS);
	weft_io_prep_sleep(&e->s2, 10000 * MS);
	cr_assert_eq(weft_future_init(&e->f[0], &weft_io_desc, &e->s0, &e->r0),
		     0);
	cr_assert_eq(weft_future_init(&e->f[1], &weft_oneshot_recv_desc, &e->rf,
				      &e->rst), 0);
	cr_assert_eq(weft_future_init(&e->f[2], &weft_io_desc, &e->s2, &e->r2),
		     0);
	weft_select sel;
	cr_assert_eq(weft_select_init(&sel, e->f, 3), 0);
	weft_join *j;
	wt_spawn(rt, &weft_select_desc, &sel, &j);
	/* Sent from the test thread while the select waits (or not yet). */
	int64_t v = 1234;
	cr_expect_eq(weft_oneshot_send(tx, &v), 0);
	int st = 1;
	size_t winner = 99;
	wt_join_wait(j, &st, &winner);
	weft_join_drop(j);
	cr_expect_eq(st, 0);
	cr_expect_eq(winner, 1);
	cr_expect_eq(e->rst, 0);
	cr_expect_eq(e->value, 1234);
	cr_expect(weft_future_is_ready(&e->f[1]));
	cr_expect(!weft_future_is_ready(&e->f[0]));
	cr_expect(!weft_future_is_ready(&e->f[2]));
	cr_expect(wt_ops_quiesce(rt, 3000), "losing sleeps still run");
	wt_rt_free_prompt(rt);
	free(e);
}

/* --- join_all ---------------------------------------------------------- */

WT_RT_TEST(join_all, mix_all_outputs_delivered)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct send_outcome so = { 0 };
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(int64_t), &tx, &rx), 0);
	struct wt_value tv = wt_value_init(99, 3, NULL);
	weft_join *jv;
	wt_spawn(rt, &wt_value_desc, &tv, &jv);
	struct sender snd = { .ns = 2 * MS, .tx = tx, .value = 7, .o = &so };
	wt_spawn(rt, &sender_desc, &snd, NULL);

	int64_t join_val = -1, rx_val = -1;
	struct comb_task t = { .n = 5, .join_all = 1 };
	uint64_t t0 = weft_now_ns();
	arm_sleep(&t.arm[0], 8 * MS);
	arm_sleep(&t.arm[1], 1 * MS);
	arm_join(&t.arm[2], jv, &join_val);
	arm_rx(&t.arm[3], rx, &rx_val);
	weft_yield y = WEFT_YIELD_INIT;
	arm_set(&t.arm[4], &weft_yield_desc, &y);
	struct comb_out o;
	wt_block_on(rt, &comb_desc, &t, &o);
	cr_expect_geq(weft_now_ns() - t0, 8 * MS, "ready before the sleep");
	cr_expect_eq(o.ready_mask, 0x1fu, "ready mask %#x", o.ready_mask);
	cr_expect_eq(out_i64(&o, 0), 0);
	cr_expect_eq(out_i64(&o, 1), 0);
	cr_expect_eq(out_int(&o, 2), 0);
	cr_expect_eq(join_val, 99);
	cr_expect_eq(out_int(&o, 3), 0);
	cr_expect_eq(rx_val, 7);
	cr_expect_eq(atomic_load(&so.res), 0);
	cr_expect(wt_ops_quiesce(rt, 3000));
	wt_rt_free(rt);
}

WT_RT_TEST(join_all, zero_arms_ready_at_once)
{
	weft_runtime *rt = wt_rt_new(cfg);
	/* Polled directly: READY at the first poll. */
	weft_join_all ja;
	weft_waker w;
	weft_cx cx;
	cr_assert_eq(weft_join_all_init(&ja, NULL, 0), 0);
	cr_expect_eq(weft_join_all_poll(&ja, wt_noop_cx(&cx, &w)), WEFT_READY);
	weft_join_all_drop(&ja);
	/* Spawned as a task. */
	cr_assert_eq(weft_join_all_init(&ja, NULL, 0), 0);
	wt_block_on(rt, &weft_join_all_desc, &ja, NULL);
	/* And in a task, with an arms array. */
	struct comb_task t = { .n = 0, .join_all = 1 };
	struct comb_out o;
	wt_block_on(rt, &comb_desc, &t, &o);
	cr_expect_eq(o.ready_mask, 0);
	wt_rt_free(rt);
}

WT_RT_TEST_T(join_all, abort_mid_way_drops_pending_arms, 20)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct wt_counters c0 = { 0 }, c2 = { 0 };
	atomic_int polled = 0;
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(int64_t), &tx, &rx), 0);
	int64_t rx_val = -1;
	struct comb_task t = { .n = 4, .join_all = 1, .polled = &polled };
	struct wt_value v0 = wt_value_init(5, 0, &c0); /* done at once */
	arm_set(&t.arm[0], &wt_value_desc, &v0);
	arm_sleep(&t.arm[1], 10000 * MS);
	struct wt_forever f = { .c = &c2 };
	arm_set(&t.arm[2], &wt_forever_desc, &f);
	arm_rx(&t.arm[3], rx, &rx_val);
	weft_join *j;
	wt_spawn(rt, &comb_desc, &t, &j);
	cr_assert_geq(wt_wait_atomic_ge(&polled, 1, 5000), 1, "never polled");
	cr_expect_eq(atomic_load(&c0.readies), 1);

	weft_task_abort(j);
	int st = 1;
	struct comb_out o;
	wt_join_wait(j, &st, &o);
	weft_join_drop(j);
	cr_expect_eq(st, -ECANCELED);
	/* The finished arm was dropped once (at READY), not again. */
	cr_expect_eq(atomic_load(&c0.drops), 1, "finished arm drops");
	cr_expect_eq(atomic_load(&c2.drops), 1, "pending arm drops");
	int64_t v = 1;
	cr_expect_eq(weft_oneshot_send(tx, &v), -EPIPE,
		     "receiver not released");
	cr_expect_eq(rx_val, -1);
	cr_expect(wt_ops_quiesce(rt, 3000), "the pending sleep still runs");
	wt_rt_free_prompt(rt);
}

/* --- argument errors ------------------------------------------------- */

static weft_poll ready_poll(void *self, weft_cx *cx, void *out)
{
	(void)cx;
	(void)out;
	if (self)
		(*(int *)self)++;
	return WEFT_READY;
}

static const weft_future_desc ready_stateless_desc = {
	.poll = ready_poll,
};

static const weft_future_desc ready_counting_desc = {
	.poll = ready_poll,
	.size = sizeof(int),
	.output_size = sizeof(int64_t),
};

static const weft_future_desc no_poll_desc = {
	.size = sizeof(int),
};

WT_TEST(future, init_argument_errors)
{
	weft_future f;
	int st = 0;
	int64_t out;
	cr_expect_eq(weft_future_init(NULL, &ready_counting_desc, &st, &out),
		     -EINVAL);
	cr_expect_eq(weft_future_init(&f, NULL, &st, &out), -EINVAL);
	cr_expect_eq(weft_future_init(&f, &no_poll_desc, &st, &out), -EINVAL);
	cr_expect_eq(weft_future_init(&f, &ready_counting_desc, NULL, &out),
		     -EINVAL);
	cr_expect_eq(weft_future_init(&f, &ready_counting_desc, &st, NULL),
		     -EINVAL);
	/* No state, no output: NULLs are fine. */
	cr_expect_eq(weft_future_init(&f, &ready_stateless_desc, NULL, NULL),
		     0);
	cr_expect_eq(weft_future_init(&f, &ready_counting_desc, &st, &out), 0);
}

WT_TEST(future, poll_is_fused_and_null_safe)
{
	weft_future f;
	int polls = 0;
	int64_t out;
	weft_waker w;
	weft_cx cx;
	wt_noop_cx(&cx, &w);
	cr_assert_eq(weft_future_init(&f, &ready_counting_desc, &polls, &out),
		     0);
	cr_expect(!weft_future_is_ready(&f));
	cr_expect_eq(weft_future_poll(&f, &cx), WEFT_READY);
	cr_expect(weft_future_is_ready(&f));
	cr_expect_eq(weft_future_poll(&f, &cx), WEFT_READY);
	cr_expect_eq(polls, 1, "polled again after READY");
	weft_future_drop(&f);
	cr_expect_eq(weft_future_poll(NULL, &cx), WEFT_READY);
	cr_expect(!weft_future_is_ready(NULL));
	weft_future_drop(NULL);
}

WT_TEST(select, init_argument_errors)
{
	weft_select s;
	weft_future arms[2];
	int st = 0;
	int64_t out;
	cr_assert_eq(weft_future_init(&arms[0], &ready_counting_desc, &st,
				      &out), 0);
	memset(&arms[1], 0, sizeof(arms[1])); /* no descriptor */
	cr_expect_eq(weft_select_init(NULL, arms, 1), -EINVAL);
	cr_expect_eq(weft_select_init(&s, NULL, 1), -EINVAL);
	cr_expect_eq(weft_select_init(&s, arms, 0), -EINVAL);
	cr_expect_eq(weft_select_init(&s, arms, 2), -EINVAL);
	cr_expect_eq(weft_select_init(&s, arms, 1), 0);
}

WT_TEST(select, poll_null_is_ready_with_size_max)
{
	weft_waker w;
	weft_cx cx;
	size_t winner = 7;
	wt_noop_cx(&cx, &w);
	cr_expect_eq(weft_select_poll(NULL, &cx, &winner), WEFT_READY);
	cr_expect_eq(winner, SIZE_MAX);
	cr_expect_eq(weft_select_poll(NULL, &cx, NULL), WEFT_READY);
	weft_select_drop(NULL);
}

WT_TEST(select, poll_after_ready_keeps_winner)
{
	weft_select s;
	weft_future arms[2];
	int st[2] = { 0, 0 };
	int64_t out[2];
	weft_waker w;
	weft_cx cx;
	wt_noop_cx(&cx, &w);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(weft_future_init(&arms[i], &ready_counting_desc,
					      &st[i], &out[i]), 0);
	cr_assert_eq(weft_select_init(&s, arms, 2), 0);
	size_t winner = 9;
	cr_expect_eq(weft_select_poll(&s, &cx, &winner), WEFT_READY);
	cr_expect_eq(winner, 0);
	winner = 9;
	cr_expect_eq(weft_select_poll(&s, &cx, &winner), WEFT_READY);
	cr_expect_eq(winner, 0, "second poll: winner %zu", winner);
	cr_expect_eq(st[0], 1);
	cr_expect_eq(st[1], 0, "a loser was polled");
	weft_select_drop(&s);
}

WT_TEST(join_all, init_argument_errors)
{
	weft_join_all j;
	weft_future arms[2];
	int st = 0;
	int64_t out;
	weft_waker w;
	weft_cx cx;
	wt_noop_cx(&cx, &w);
	cr_assert_eq(weft_future_init(&arms[0], &ready_counting_desc, &st,
				      &out), 0);
	memset(&arms[1], 0, sizeof(arms[1]));
	cr_expect_eq(weft_join_all_init(NULL, arms, 1), -EINVAL);
	cr_expect_eq(weft_join_all_init(&j, NULL, 2), -EINVAL);
	cr_expect_eq(weft_join_all_init(&j, arms, 2), -EINVAL);
	cr_expect_eq(weft_join_all_init(&j, NULL, 0), 0);
	cr_expect_eq(weft_join_all_poll(NULL, &cx), WEFT_READY);
	weft_join_all_drop(NULL);
}

/*
 * Regression: weft/future.h says "NULL or unprepared @s: READY with
 * *@winner = SIZE_MAX", but for a zero-filled (never initialised)
 * weft_select the poll reported s->_winner, which is 0: the caller
 * believed arm 0 won and read an output that was never written.
 */
WT_TEST(select, poll_unprepared_is_ready_with_size_max)
{
	weft_select s;
	weft_waker w;
	weft_cx cx;
	size_t winner = 7;
	memset(&s, 0, sizeof(s));
	wt_noop_cx(&cx, &w);
	cr_expect_eq(weft_select_poll(&s, &cx, &winner), WEFT_READY);
	cr_expect_eq(winner, SIZE_MAX, "unprepared select reports winner %zu",
		     winner);
	weft_select_drop(&s);
}
