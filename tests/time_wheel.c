/* SPDX-License-Identifier: MIT */
/*
 * The timer wheel alone (src/time/wheel.c), against a reference model: a
 * plain array of (when, live) scanned in full. Random inserts, removes and
 * advances with deadlines from one tick to the wheel's whole range, many
 * seeds. Checks that advance returns exactly the due nodes (never one
 * early, never one missed), that next() is never later than the earliest
 * node, and that the count matches.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "time/wheel.h"

#define N 512

struct model {
	struct weft__wheel_node node[N];
	uint64_t when[N];
	bool live[N];
};

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A distance in ticks: mostly short, sometimes up to the wheel's range. */
static uint64_t distance(uint64_t *s)
{
	unsigned bits = 1 + (unsigned)(rng(s) % 48);
	uint64_t d = 1 + (rng(s) & ((UINT64_C(1) << bits) - 1));
	return d;
}

static void check_advance(struct weft__wheel *w, struct model *m,
			  uint64_t to)
{
	bool seen[N] = { false };
	struct weft__wheel_node *n;
	uint64_t last = 0;

	weft__wheel_advance(w, to);
	if (w->expired)
		cr_assert_eq(weft__wheel_next(w), w->elapsed,
			     "expired nodes must make next() now");
	while ((n = weft__wheel_pop_expired(w))) {
		cr_assert_geq(n->when, last, "expired out of deadline order");
		last = n->when;
		size_t i = (size_t)(n - m->node);
		cr_assert(i < N && m->live[i], "returned a node not filed");
		cr_assert(!seen[i], "node %zu returned twice", i);
		cr_assert_leq(m->when[i], to, "node %zu early: when %llu, at %llu",
			      i, (unsigned long long)m->when[i],
			      (unsigned long long)to);
		cr_assert_null(n->pprev);
		seen[i] = true;
	}
	size_t live = 0;
	for (size_t i = 0; i < N; i++) {
		if (!m->live[i])
			continue;
		if (m->when[i] <= to)
			cr_assert(seen[i], "node %zu due at %llu missed at %llu",
				  i, (unsigned long long)m->when[i],
				  (unsigned long long)to);
		if (seen[i])
			m->live[i] = false;
		else
			live++;
	}
	cr_assert_eq(w->count, live);
	cr_assert_geq(w->elapsed, to);
}

static void check_next(const struct weft__wheel *w, const struct model *m)
{
	uint64_t min = UINT64_MAX;

	for (size_t i = 0; i < N; i++)
		if (m->live[i] && m->when[i] < min)
			min = m->when[i];
	uint64_t next = weft__wheel_next(w);
	if (min == UINT64_MAX) {
		cr_assert_eq(next, UINT64_MAX);
		return;
	}
	cr_assert_leq(next, min, "next %llu after the earliest %llu",
		      (unsigned long long)next, (unsigned long long)min);
	cr_assert_gt(next, 0);
}

static void run_seed(uint64_t seed)
{
	static struct model m;
	struct weft__wheel w;
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	uint64_t start = rng(&s) & ((UINT64_C(1) << 40) - 1);

	memset(&m, 0, sizeof(m));
	weft__wheel_init(&w, start);
	for (int step = 0; step < 20000; step++) {
		size_t i = (size_t)(rng(&s) % N);
		unsigned op = (unsigned)(rng(&s) % 8);

		if (op < 4 && !m.live[i]) {
			uint64_t when = w.elapsed + distance(&s);
			if (when > WEFT__WHEEL_MAX_TICK)
				when = WEFT__WHEEL_MAX_TICK;
			if (when <= w.elapsed)
				continue;
			uint64_t at = weft__wheel_insert(&w, &m.node[i], when);
			cr_assert_leq(at, when);
			cr_assert_gt(at, 0);
			m.when[i] = when;
			m.live[i] = true;
		} else if (op < 6 && m.live[i]) {
			weft__wheel_remove(&w, &m.node[i]);
			cr_assert_null(m.node[i].pprev);
			m.live[i] = false;
		} else if (op == 6) {
			/* Advance to the next slot, as a worker does. */
			uint64_t next = weft__wheel_next(&w);
			if (next != UINT64_MAX)
				check_advance(&w, &m, next);
		} else {
			/* Or jump ahead by a random distance. */
			uint64_t to = w.elapsed + (distance(&s) >> (rng(&s) % 48));
			if (to > WEFT__WHEEL_MAX_TICK)
				to = WEFT__WHEEL_MAX_TICK;
			check_advance(&w, &m, to);
		}
		check_next(&w, &m);
	}
	/* Everything comes out by the end of the range. */
	check_advance(&w, &m, WEFT__WHEEL_MAX_TICK);
	cr_assert_eq(w.count, 0);
	cr_assert_eq(weft__wheel_next(&w), UINT64_MAX);
}

Test(wheel, matches_reference_model, .timeout = 120)
{
	for (uint64_t seed = 1; seed <= 40; seed++)
		run_seed(seed);
}

Test(wheel, tick_rounding_never_early)
{
	uint64_t g = UINT64_C(1) << WEFT__TICK_SHIFT;

	cr_assert_eq(weft__wheel_tick_ceil(0), 0);
	cr_assert_eq(weft__wheel_tick_ceil(1), 1);
	cr_assert_eq(weft__wheel_tick_ceil(g), 1);
	cr_assert_eq(weft__wheel_tick_ceil(g + 1), 2);
	cr_assert_eq(weft__wheel_tick_floor(g - 1), 0);
	cr_assert_eq(weft__wheel_tick_floor(g), 1);
	cr_assert_eq(weft__wheel_tick_ceil(UINT64_MAX), WEFT__WHEEL_MAX_TICK);
	/* A node fires at the first processed tick t with t >= when; the
	 * clock then reads at least t * g >= the deadline. */
	for (uint64_t ns = 1; ns < 10 * g; ns += 997)
		cr_assert_geq(weft__wheel_tick_ceil(ns) * g, ns);
}

Test(wheel, one_level_zero_slot_holds_one_tick)
{
	struct weft__wheel w;
	struct weft__wheel_node a, b;

	weft__wheel_init(&w, 1000);
	weft__wheel_insert(&w, &a, 1001);
	weft__wheel_insert(&w, &b, 1002);
	cr_assert_eq(weft__wheel_next(&w), 1001);
	weft__wheel_advance(&w, 1001);
	cr_assert_eq(weft__wheel_pop_expired(&w), &a);
	cr_assert_null(weft__wheel_pop_expired(&w));
	cr_assert_eq(weft__wheel_next(&w), 1002);
	weft__wheel_remove(&w, &b);
	cr_assert_eq(weft__wheel_next(&w), UINT64_MAX);
	weft__wheel_advance(&w, 5000);
	cr_assert_null(weft__wheel_pop_expired(&w));
	cr_assert_eq(w.elapsed, 5000);
}

Test(wheel, expired_nodes_stay_removable)
{
	struct weft__wheel w;
	struct weft__wheel_node n[4];

	weft__wheel_init(&w, 0);
	for (int i = 0; i < 4; i++)
		weft__wheel_insert(&w, &n[i], 10 + (uint64_t)i);
	weft__wheel_advance(&w, 100);
	cr_assert_eq(w.count, 4);
	cr_assert_eq(weft__wheel_next(&w), 100, "expired: due now");
	weft__wheel_remove(&w, &n[3]); /* the tail */
	weft__wheel_remove(&w, &n[1]); /* the middle */
	cr_assert_eq(weft__wheel_pop_expired(&w), &n[0]);
	cr_assert_eq(weft__wheel_pop_expired(&w), &n[2]);
	cr_assert_null(weft__wheel_pop_expired(&w));
	cr_assert_eq(w.count, 0);
	cr_assert_eq(weft__wheel_next(&w), UINT64_MAX);
	/* The list is usable again after the tail was removed. */
	weft__wheel_insert(&w, &n[0], 101);
	weft__wheel_advance(&w, 101);
	cr_assert_eq(weft__wheel_pop_expired(&w), &n[0]);
}
