/* SPDX-License-Identifier: MIT */
/*
 * weft_interval (weft/time.h): ticks every period.
 *
 *  - a first tick at start = now is READY at its first poll; a later start
 *    is waited for; ticks follow start + k * period and are never early;
 *  - missed ticks: the task's thread is blocked for more than two periods
 *    inside a poll, then the next deadlines must follow the schedule that
 *    weft_missed_tick documents for BURST, DELAY and SKIP;
 *  - reset (before a tick, and while a tick is pending), drop keeping the
 *    schedule, -EBUSY while pending, the generic tick future in a select;
 *  - many intervals at once, never early; argument errors.
 *
 * Every tick records when it was first polled and when it was READY; the
 * test thread checks the schedule from those (schedule_check).
 */
#include "io_helpers.h"

#define MS WT_MS

/* One tick as the ticker saw it. */
struct tick_rec {
	int64_t deadline;    /* what weft_interval_tick reported */
	uint64_t first_poll; /* when this tick was first polled */
	uint64_t ready;      /* when it returned READY */
	int polls;
};

/*
 * A task that waits for @nticks ticks of one interval, recording each in
 * @rec (test-owned), and optionally disturbs it: stall the thread after a
 * tick, reset before a tick or while it is pending, drop a pending tick.
 */
struct ticker {
	uint64_t period;
	weft_missed_tick mode;
	uint64_t start_in;   /* first tick at (first poll + start_in) */
	int nticks;
	struct tick_rec *rec;
	int stall_after;     /* after this tick, block the thread ... */
	uint64_t stall_to;   /* ... until start + stall_to; 0: no stall */
	int reset_before;    /* reset just before this tick (> 0); 0: none */
	int pending_act;     /* act on this tick (> 0) once it is pending */
	int act_drop;        /* the act: 1 drop (and -EBUSY check), 0 reset */
	uint64_t act_wait;   /* busy-wait this long before the act */
	/* private */
	int started;
	int k;
	int act_state;       /* 0, 1 woke itself to act, 2 acted */
	uint64_t start;
	uint64_t reset_lo, reset_hi; /* around the reset call */
	weft_interval iv;
};

struct ticker_out {
	uint64_t start, reset_lo, reset_hi;
	int ticks;
};

/*
 * Block the calling worker until CLOCK_MONOTONIC reaches @t. Sleeping, not
 * spinning: the worker is just as blocked, but a thread that burnt tens of
 * ms of CPU is then placed behind the other runnable threads when it next
 * wakes (EEVDF keeps its negative lag), and under a parallel make check
 * that delayed its later ticks by 60-90 ms, failing LATE_BOUND.
 */
static void block_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
			       .tv_nsec = (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL))
		;
}

static void ticker_reset(struct ticker *s)
{
	s->reset_lo = weft_now_ns();
	WT_CHECK(weft_interval_reset(&s->iv) == 0, "reset");
	s->reset_hi = weft_now_ns();
}

/* The act on a pending tick, at the poll after the one that found it
 * pending. */
static void ticker_act(struct ticker *s)
{
	block_until(weft_now_ns() + s->act_wait);
	if (!s->act_drop) {
		ticker_reset(s);
		return;
	}
	WT_CHECK(weft_interval_init(&s->iv, s->start, s->period, s->mode) ==
			 -EBUSY, "init while a tick is pending");
	weft_interval_drop(&s->iv);
	weft_interval_drop(&s->iv);
}

static weft_poll ticker_poll(void *self, weft_cx *cx, void *out)
{
	struct ticker *s = self;
	int64_t d;
	if (!s->started) {
		s->start = weft_now_ns() + s->start_in;
		WT_CHECK(weft_interval_init(&s->iv, s->start, s->period,
					    s->mode) == 0, "init");
		s->started = 1;
	}
	while (s->k < s->nticks) {
		struct tick_rec *r = &s->rec[s->k];
		if (r->polls == 0 && s->reset_before &&
		    s->k == s->reset_before)
			ticker_reset(s);
		if (s->act_state == 1) {
			ticker_act(s);
			s->act_state = 2;
		}
		if (r->polls++ == 0)
			r->first_poll = weft_now_ns();
		if (weft_interval_tick(&s->iv, cx, &d) == WEFT_PENDING) {
			if (s->pending_act && s->k == s->pending_act &&
			    s->act_state == 0) {
				s->act_state = 1;
				weft_waker_wake_by_ref(weft_cx_waker(cx));
			}
			return WEFT_PENDING;
		}
		r->ready = weft_now_ns();
		r->deadline = d;
		WT_CHECK(d >= 0, "tick %d: %s", s->k, weft_strerror((int)d));
		WT_CHECK(r->ready >= (uint64_t)d, "tick %d %llu ns early",
			 s->k, (unsigned long long)((uint64_t)d - r->ready));
		if (s->stall_to && s->k == s->stall_after)
			block_until(s->start + s->stall_to);
		s->k++;
	}
	struct ticker_out *o = out;
	o->start = s->start;
	o->reset_lo = s->reset_lo;
	o->reset_hi = s->reset_hi;
	o->ticks = s->k;
	return WEFT_READY;
}

static void ticker_drop(void *self)
{
	weft_interval_drop(&((struct ticker *)self)->iv);
}

static const weft_future_desc ticker_desc = {
	.poll = ticker_poll,
	.drop = ticker_drop,
	.size = sizeof(struct ticker),
	.output_size = sizeof(struct ticker_out),
};

static struct ticker_out ticker_run(weft_runtime *rt, struct ticker *t)
{
	struct ticker_out o = { 0 };
	memset(t->rec, 0, sizeof(*t->rec) * (size_t)t->nticks);
	wt_block_on(rt, &ticker_desc, t, &o);
	cr_assert_eq(o.ticks, t->nticks);
	return o;
}

static const char *mode_name(weft_missed_tick m)
{
	return m == WEFT_MISSED_BURST ? "BURST" :
	       m == WEFT_MISSED_DELAY ? "DELAY" : "SKIP";
}

/* Sanity bound on how late a tick that waited may be (see time_sleep.c). */
#define LATE_BOUND (250 * MS)

/*
 * Check ticks @from.. of @rec against weft_missed_tick's rules: each tick
 * never early; READY at its first poll when it was already due then; and
 * the next deadline follows from this one's deadline D and completion N
 * (somewhere in [first_poll, ready]): D + P unless N >= D + P (missed),
 * then BURST D + P, DELAY N + P, SKIP the first D + jP after N. Where the
 * range of N straddles D + P, either branch is accepted.
 */
static void schedule_check(const struct tick_rec *rec, int n, uint64_t p,
			   weft_missed_tick mode)
{
	for (int k = 0; k < n; k++) {
		uint64_t d = (uint64_t)rec[k].deadline;
		cr_expect_geq(rec[k].ready, d, "%s tick %d early",
			      mode_name(mode), k);
		if (d <= rec[k].first_poll)
			cr_expect_eq(rec[k].polls, 1,
				     "%s tick %d was due at its first poll, "
				     "yet waited (%d polls)", mode_name(mode),
				     k, rec[k].polls);
		else
			cr_expect_lt(rec[k].ready - d, LATE_BOUND,
				     "%s tick %d %llu ms late", mode_name(mode),
				     k, (unsigned long long)((rec[k].ready -
							      d) / MS));
	}
	for (int k = 0; k + 1 < n; k++) {
		uint64_t d = (uint64_t)rec[k].deadline;
		uint64_t lo = rec[k].first_poll, hi = rec[k].ready;
		uint64_t next = (uint64_t)rec[k + 1].deadline;
		bool ok = false;
		if (lo < d + p && next == d + p)
			ok = true; /* possibly not missed */
		if (hi >= d + p) { /* possibly missed */
			uint64_t nlo = lo > d + p ? lo : d + p;
			switch (mode) {
			case WEFT_MISSED_BURST:
				ok |= next == d + p;
				break;
			case WEFT_MISSED_DELAY:
				ok |= next >= nlo + p && next <= hi + p;
				break;
			case WEFT_MISSED_SKIP:
				ok |= next > nlo && next <= hi + p &&
				      (next - d) % p == 0 &&
				      next - p <= hi;
				break;
			}
		}
		cr_expect(ok,
			  "%s: tick %d at D=%llu completed in [%llu, %llu] "
			  "(us after D), next tick at D+%llu us, period %llu us",
			  mode_name(mode), k, (unsigned long long)d,
			  (unsigned long long)((lo - d) / 1000),
			  (unsigned long long)((hi - d) / 1000),
			  (unsigned long long)((next - d) / 1000),
			  (unsigned long long)(p / 1000));
	}
}

/* --- first tick, regular ticks -------------------------------------------- */

WT_RT_TEST(interval, first_tick_at_now_is_immediate)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct tick_rec rec[1];
	struct ticker t = { .period = 1000 * MS, .nticks = 1, .rec = rec };
	struct ticker_out o = ticker_run(rt, &t);
	cr_expect_eq(rec[0].polls, 1, "first tick waited (%d polls)",
		     rec[0].polls);
	cr_expect_eq(rec[0].deadline, (int64_t)o.start);
	wt_rt_free(rt);
}

WT_RT_TEST(interval, later_start_is_waited_for)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct tick_rec rec[3];
	struct ticker t = { .period = 10 * MS, .start_in = 20 * MS,
			    .nticks = 3, .rec = rec };
	struct ticker_out o = ticker_run(rt, &t);
	for (int k = 0; k < 3; k++)
		cr_expect_eq(rec[k].deadline,
			     (int64_t)(o.start + (uint64_t)k * 10 * MS),
			     "tick %d", k);
	cr_expect_gt(rec[0].polls, 1, "a tick 20 ms ahead was READY at once");
	schedule_check(rec, 3, 10 * MS, WEFT_MISSED_BURST);
	wt_rt_free(rt);
}

WT_RT_TEST(interval, ticks_follow_the_period)
{
	weft_runtime *rt = wt_rt_new(cfg);
	enum { N = 8 };
	struct tick_rec rec[N];
	uint64_t p = 7 * MS + 12345; /* not a whole number of wheel ticks */
	struct ticker t = { .period = p, .nticks = N, .rec = rec,
			    .mode = WEFT_MISSED_BURST };
	struct ticker_out o = ticker_run(rt, &t);
	schedule_check(rec, N, p, WEFT_MISSED_BURST);
	/* BURST keeps start + k * P even if a tick was late. */
	for (int k = 0; k < N; k++)
		cr_expect_eq(rec[k].deadline, (int64_t)(o.start + k * p),
			     "tick %d at start + %lld us", k,
			     (long long)(rec[k].deadline - (int64_t)o.start) /
				     1000);
	wt_rt_free(rt);
}

/* --- missed ticks ---------------------------------------------------------- */

struct missed_cfg {
	weft_missed_tick mode;
	unsigned stall_tenths; /* stall until start + this/10 periods */
};

static struct missed_cfg missed_cfgs[] = {
	{ WEFT_MISSED_BURST, 25 }, { WEFT_MISSED_DELAY, 25 },
	{ WEFT_MISSED_SKIP, 25 },  { WEFT_MISSED_BURST, 37 },
	{ WEFT_MISSED_DELAY, 37 }, { WEFT_MISSED_SKIP, 37 },
};

ParameterizedTestParameters(interval, missed_ticks_follow_the_mode)
{
	return cr_make_param_array(struct missed_cfg, missed_cfgs,
				   sizeof(missed_cfgs) /
					   sizeof(missed_cfgs[0]));
}

/*
 * Tick 0 at start S (immediate), then the thread is blocked until
 * S + 2.5P (or 3.7P), so tick 1 (due S + P) completes at N >= S + 2P:
 * missed. Then, per weft_missed_tick:
 *   BURST: S+P, S+2P (READY at once), S+3P, ... (S+3P too at 3.7P)
 *   DELAY: S+P, then N+P, N+2P, ...
 *   SKIP:  S+P, then the first S+kP after N: S+3P (S+4P at 3.7P), ...
 */
ParameterizedTest(struct missed_cfg *mc, interval,
		  missed_ticks_follow_the_mode, .timeout = 20, .fini = wt_fini)
{
	enum { N = 6 };
	const uint64_t p = 20 * MS;
	struct wt_cfg c = { 2, 0 };
	weft_runtime *rt = wt_rt_new(&c);
	struct tick_rec rec[N];
	struct ticker t = { .period = p, .mode = mc->mode, .nticks = N,
			    .rec = rec, .stall_after = 0,
			    .stall_to = p * mc->stall_tenths / 10 };
	struct ticker_out o = ticker_run(rt, &t);
	uint64_t s = o.start;
	cr_log_info("%s, stall to %u/10 P: deadlines (ms after start) "
		    "%.2f %.2f %.2f %.2f %.2f %.2f", mode_name(mc->mode),
		    mc->stall_tenths, (rec[0].deadline - (int64_t)s) / 1e6,
		    (rec[1].deadline - (int64_t)s) / 1e6,
		    (rec[2].deadline - (int64_t)s) / 1e6,
		    (rec[3].deadline - (int64_t)s) / 1e6,
		    (rec[4].deadline - (int64_t)s) / 1e6,
		    (rec[5].deadline - (int64_t)s) / 1e6);
	cr_expect_eq(rec[0].deadline, (int64_t)s);
	cr_expect_eq(rec[1].deadline, (int64_t)(s + p));
	cr_assert_geq(rec[1].first_poll, s + 2 * p,
		      "the stall did not make tick 1 miss");
	schedule_check(rec, N, p, mc->mode);
	/* The exact shapes, where the generic rule above allows several. */
	uint64_t stall = s + t.stall_to;
	switch (mc->mode) {
	case WEFT_MISSED_BURST:
		for (int k = 0; k < N; k++)
			cr_expect_eq(rec[k].deadline, (int64_t)(s + k * p),
				     "BURST tick %d", k);
		for (int k = 1; k < N && s + k * p <= stall; k++)
			cr_expect_eq(rec[k].polls, 1,
				     "BURST tick %d was due, yet waited", k);
		break;
	case WEFT_MISSED_DELAY:
		cr_expect_geq(rec[2].deadline,
			      (int64_t)(rec[1].first_poll + p));
		cr_expect_leq(rec[2].deadline, (int64_t)(rec[1].ready + p));
		cr_expect_gt(rec[2].polls, 1, "DELAY tick 2 did not wait");
		break;
	case WEFT_MISSED_SKIP:
		cr_expect_eq((rec[2].deadline - (int64_t)s) % (int64_t)p, 0,
			     "SKIP lost the phase");
		cr_expect_gt((uint64_t)rec[2].deadline, stall,
			     "SKIP kept a missed tick");
		cr_expect_leq((uint64_t)rec[2].deadline, rec[1].ready + p);
		break;
	}
	wt_rt_free(rt);
}

/* --- reset, drop ------------------------------------------------------------ */

/*
 * Reset 15 ms after tick 0 (start S): tick 1 comes one period after the
 * reset, not at S + P, and tick 2 one period after that. Either before
 * tick 1 is polled, or while it is pending (armed for S + P: the old timer
 * may wake the task then, but the tick must not be READY).
 */
static void check_reset(const struct wt_cfg *cfg, int while_pending)
{
	weft_runtime *rt = wt_rt_new(cfg);
	const uint64_t p = 40 * MS;
	struct tick_rec rec[3];
	struct ticker t = { .period = p, .nticks = 3, .rec = rec };
	if (while_pending) {
		t.pending_act = 1;
		t.act_wait = 15 * MS;
	} else {
		t.stall_after = 0;
		t.stall_to = 15 * MS;
		t.reset_before = 1;
	}
	struct ticker_out o = ticker_run(rt, &t);
	cr_assert_neq(o.reset_lo, 0, "no reset happened");
	cr_expect_geq(rec[1].deadline, (int64_t)(o.reset_lo + p),
		      "tick 1 at start + %lld us ignored the reset",
		      (long long)(rec[1].deadline - (int64_t)o.start) / 1000);
	cr_expect_leq(rec[1].deadline, (int64_t)(o.reset_hi + p));
	cr_expect_eq(rec[2].deadline, rec[1].deadline + (int64_t)p);
	schedule_check(rec + 1, 2, p, WEFT_MISSED_BURST);
	wt_rt_free(rt);
}

WT_RT_TEST(interval, reset_before_a_tick)
{
	check_reset(cfg, 0);
}

WT_RT_TEST(interval, reset_while_pending)
{
	check_reset(cfg, 1);
}

/* Drop a pending tick: init is -EBUSY before, the schedule is kept after:
 * tick 1 still comes at start + P and tick 2 at start + 2P. */
WT_RT_TEST(interval, drop_keeps_the_schedule)
{
	weft_runtime *rt = wt_rt_new(cfg);
	const uint64_t p = 30 * MS;
	struct tick_rec rec[3];
	struct ticker t = { .period = p, .nticks = 3, .rec = rec,
			    .pending_act = 1, .act_drop = 1,
			    .act_wait = 5 * MS };
	struct ticker_out o = ticker_run(rt, &t);
	for (int k = 0; k < 3; k++)
		cr_expect_eq(rec[k].deadline, (int64_t)(o.start + k * p),
			     "tick %d", k);
	cr_expect_gt(rec[1].polls, 2, "tick 1 was not dropped while pending");
	schedule_check(rec, 3, p, WEFT_MISSED_BURST);
	wt_rt_free(rt);
}

/* --- the generic tick future in a select ----------------------------------- */

/*
 * Interval A (period 5 ms) raced against a 10 s sleep: A wins four times,
 * one select per tick, and the losing sleeps are cancelled. Interval B
 * (first tick 60 ms ahead) raced against a 5 ms sleep: the sleep wins and
 * the dropped tick future cancels only the wait: B's next tick is still
 * its first, at its start.
 */
struct tick_select {
	/* private */
	int started, round;
	uint64_t a_start, b_start;
	weft_interval a, b;
	int64_t tick_out, sleep_out;
	weft_io sleep;
	weft_future arms[2];
	weft_select sel;
};

struct tick_select_out {
	int64_t a_deadline[4];
	uint64_t a_start, b_start, b_ready;
	int64_t b_deadline;
	size_t b_winner;
};

static void tick_select_arm(struct tick_select *s, weft_interval *iv,
			    uint64_t sleep_ns)
{
	weft_io_drop(&s->sleep);
	memset(&s->sleep, 0, sizeof(s->sleep));
	weft_io_prep_sleep(&s->sleep, sleep_ns);
	weft_future_init(&s->arms[0], &weft_interval_tick_desc, iv,
			 &s->tick_out);
	weft_future_init(&s->arms[1], &weft_io_desc, &s->sleep,
			 &s->sleep_out);
	WT_CHECK(weft_select_init(&s->sel, s->arms, 2) == 0, "select");
}

static weft_poll tick_select_poll(void *self, weft_cx *cx, void *out)
{
	struct tick_select *s = self;
	struct tick_select_out *o = out;
	size_t w;
	if (!s->started) {
		s->a_start = weft_now_ns();
		WT_CHECK(weft_interval_init(&s->a, s->a_start, 5 * MS,
					    WEFT_MISSED_BURST) == 0, "a");
		tick_select_arm(s, &s->a, 10000 * MS);
		s->started = 1;
	}
	while (s->round < 5) {
		if (weft_select_poll(&s->sel, cx, &w) == WEFT_PENDING)
			return WEFT_PENDING;
		if (s->round < 4) {
			WT_CHECK(w == 0, "round %d: the 10 s sleep won",
				 s->round);
			o->a_deadline[s->round] = s->tick_out;
		} else {
			o->b_winner = w;
		}
		s->round++;
		if (s->round < 4)
			tick_select_arm(s, &s->a, 10000 * MS);
		else if (s->round == 4) {
			/* B starts 200 ms from now, not from the test's
			 * start: a loaded machine may take longer than that
			 * for A's ticks, and then B would beat the 5 ms
			 * sleep (it did, in a parallel make check). */
			s->b_start = weft_now_ns() + 200 * MS;
			WT_CHECK(weft_interval_init(&s->b, s->b_start,
						    1000 * MS,
						    WEFT_MISSED_BURST) == 0,
				 "b");
			tick_select_arm(s, &s->b, 5 * MS);
		}
	}
	if (weft_interval_tick(&s->b, cx, &o->b_deadline) == WEFT_PENDING)
		return WEFT_PENDING;
	o->b_ready = weft_now_ns();
	o->a_start = s->a_start;
	o->b_start = s->b_start;
	return WEFT_READY;
}

static void tick_select_drop(void *self)
{
	struct tick_select *s = self;
	if (s->started)
		weft_select_drop(&s->sel); /* after READY: nothing left */
	weft_io_drop(&s->sleep);
	weft_interval_drop(&s->a);
	weft_interval_drop(&s->b);
}

static const weft_future_desc tick_select_desc = {
	.poll = tick_select_poll,
	.drop = tick_select_drop,
	.size = sizeof(struct tick_select),
	.output_size = sizeof(struct tick_select_out),
};

WT_RT_TEST(interval, tick_future_in_select)
{
	weft_runtime *rt = wt_rt_new(cfg);
	struct tick_select_out o = { .b_winner = 99 };
	wt_block_on(rt, &tick_select_desc, NULL, &o);
	for (int k = 0; k < 4; k++)
		cr_expect_eq(o.a_deadline[k],
			     (int64_t)(o.a_start + (uint64_t)k * 5 * MS),
			     "tick %d of A", k);
	cr_expect_eq(o.b_winner, 1, "the 5 ms sleep lost to a tick 200 ms out");
	cr_expect_eq(o.b_deadline, (int64_t)o.b_start,
		     "B's first tick moved after its tick future was dropped");
	cr_expect_geq(o.b_ready, o.b_start);
	cr_expect(wt_ops_quiesce(rt, 3000));
	wt_rt_free_prompt(rt);
}

/* --- many intervals, never early ------------------------------------------- */

/* An interval of random period and mode checking each tick on its worker:
 * never early, the next deadline at least a period on, BURST exactly one
 * period on, SKIP a whole number of periods on. */
struct rand_ticker {
	uint64_t period;
	weft_missed_tick mode;
	int nticks;
	/* private */
	int started, k;
	int64_t prev;
	weft_interval iv;
};

static weft_poll rand_ticker_poll(void *self, weft_cx *cx, void *out)
{
	struct rand_ticker *s = self;
	int64_t d;
	if (!s->started) {
		WT_CHECK(weft_interval_init(&s->iv, weft_now_ns(), s->period,
					    s->mode) == 0, "init");
		s->started = 1;
	}
	while (s->k < s->nticks) {
		if (weft_interval_tick(&s->iv, cx, &d) == WEFT_PENDING)
			return WEFT_PENDING;
		uint64_t now = weft_now_ns();
		WT_CHECK(d >= 0 && now >= (uint64_t)d, "tick %d early by %lld",
			 s->k, (long long)(d - (int64_t)now));
		if (s->k > 0) {
			uint64_t gap = (uint64_t)(d - s->prev);
			WT_CHECK(d > s->prev && gap >= s->period,
				 "%s tick %d only %llu ns after the last",
				 mode_name(s->mode), s->k,
				 (unsigned long long)gap);
			WT_CHECK(s->mode != WEFT_MISSED_BURST ||
					 gap == s->period,
				 "BURST gap %llu", (unsigned long long)gap);
			WT_CHECK(s->mode != WEFT_MISSED_SKIP ||
					 gap % s->period == 0,
				 "SKIP gap %llu", (unsigned long long)gap);
		}
		s->prev = d;
		s->k++;
	}
	*(int64_t *)out = s->k;
	return WEFT_READY;
}

static void rand_ticker_drop(void *self)
{
	weft_interval_drop(&((struct rand_ticker *)self)->iv);
}

static const weft_future_desc rand_ticker_desc = {
	.poll = rand_ticker_poll,
	.drop = rand_ticker_drop,
	.size = sizeof(struct rand_ticker),
	.output_size = sizeof(int64_t),
};

WT_RT_TEST_T(interval, many_intervals_never_early, 30)
{
	weft_runtime *rt = wt_rt_new(cfg);
	enum { N = 100, TICKS = 15 };
	weft_join *j[N];
	uint32_t x = 2463534242u + cfg->workers;
	for (int i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		struct rand_ticker r = {
			.period = 1 * MS + x % (6 * MS),
			.mode = (weft_missed_tick)((x >> 24) % 3),
			.nticks = TICKS,
		};
		wt_spawn(rt, &rand_ticker_desc, &r, &j[i]);
	}
	for (int i = 0; i < N; i++) {
		int64_t n = -1;
		int st = 1;
		cr_assert(wt_join_wait_ms(j[i], &st, &n, 10000),
			  "interval %d stuck", i);
		cr_expect_eq(st, 0);
		cr_expect_eq(n, TICKS);
		weft_join_drop(j[i]);
	}
	wt_rt_free(rt);
}

/* --- arguments ---------------------------------------------------------------- */

WT_TEST(interval, argument_errors)
{
	weft_interval iv;
	uint64_t now = weft_now_ns();
	memset(&iv, 0, sizeof(iv));
	cr_expect_eq(weft_interval_init(NULL, now, MS, WEFT_MISSED_BURST),
		     -EINVAL);
	cr_expect_eq(weft_interval_init(&iv, now, 0, WEFT_MISSED_BURST),
		     -EINVAL);
	cr_expect_eq(weft_interval_init(&iv, now, MS, (weft_missed_tick)3),
		     -EINVAL);
	cr_expect_eq(weft_interval_init(&iv, now, MS, (weft_missed_tick)-1),
		     -EINVAL);
	cr_expect_eq(weft_interval_reset(NULL), -EINVAL);
	memset(&iv, 0, sizeof(iv));
	cr_expect_eq(weft_interval_reset(&iv), -EINVAL, "reset unprepared");
	weft_interval_drop(NULL);

	weft_waker w;
	weft_cx cx;
	int64_t d = 1;
	wt_noop_cx(&cx, &w);
	cr_expect_eq(weft_interval_tick(NULL, &cx, &d), WEFT_READY);
	cr_expect_eq(d, -EINVAL);
	d = 1;
	cr_expect_eq(weft_interval_tick(&iv, &cx, &d), WEFT_READY);
	cr_expect_eq(d, -EINVAL, "tick of an unprepared interval: %lld",
		     (long long)d);

	/* Off a worker a tick that must wait cannot arm its sleep. */
	cr_assert_eq(weft_interval_init(&iv, now + 1000 * MS, MS,
					WEFT_MISSED_SKIP), 0);
	d = 1;
	cr_expect_eq(weft_interval_tick(&iv, &cx, &d), WEFT_READY);
	cr_expect_eq(d, -EPERM, "off a worker: %lld", (long long)d);
	/* The schedule is unchanged: the same error again, no tick lost. */
	d = 1;
	cr_expect_eq(weft_interval_tick(&iv, &cx, &d), WEFT_READY);
	cr_expect_eq(d, -EPERM);
	weft_interval_drop(&iv);
	cr_expect_eq(weft_interval_init(&iv, now, MS, WEFT_MISSED_DELAY), 0,
		     "re-init after drop");
	weft_interval_drop(&iv);
}
