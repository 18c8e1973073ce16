/* SPDX-License-Identifier: MIT */
/*
 * Chase-Lev deque stress: one owner mixing push / pop / pop_lifo against 1-3
 * thieves (single steals and steal_into a deque of their own), with tiny
 * capacities (2..8) so that "full" and wrap-around happen on nearly every
 * operation. Every item must be taken exactly once and no item invented.
 * In half the rounds the owner is FIFO only (push / pop) and the thieves
 * batch-steal with one CAS (steal_batch_into) instead of steal_into: that
 * claim is sound only without pop_lifo (deque.c).
 *
 * Build it three ways (docs/design.md, Testing): -O2 exercises the fence
 * version of deque.c; under TSan deque.c swaps the fences for seq_cst
 * accesses (TSan does not model fences), which checks the rest of the
 * orders; ASan+UBSan checks the buffer indexing.
 *
 * Usage: deque_stress [seed]; WEFT_STRESS_SCALE / _SECONDS, see stress.h.
 */
#include "stress.h"

#include "sched/deque.h"

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((uintptr_t)(p))

#define MAX_THIEVES 3

struct round {
	struct weft__deque dq;
	unsigned thieves;
	uintptr_t items;
	_Atomic unsigned char *seen;
	atomic_bool owner_done;
	atomic_uint_fast64_t taken;
	unsigned steal_into_mask; /* thief k uses steal_into if bit k set */
	bool fifo_owner;          /* no pop_lifo; steal_into is the batch */
	unsigned round_no;
};

static void take(struct round *r, void *it, const char *who)
{
	uintptr_t v = I(it);
	STRESS_CHECK(v >= 1 && v <= r->items,
		     "round %u: %s took invented item %#zx", r->round_no, who,
		     (size_t)v);
	unsigned prev = atomic_fetch_add_explicit(&r->seen[v], 1,
						  memory_order_relaxed);
	STRESS_CHECK(prev == 0, "round %u: item %zu taken twice (%s)",
		     r->round_no, (size_t)v, who);
	if ((atomic_fetch_add_explicit(&r->taken, 1, memory_order_relaxed) &
	     1023) == 0)
		stress_progress();
}

struct thief_arg {
	struct round *r;
	unsigned k;
};

static void *thief_main(void *arg)
{
	struct thief_arg *ta = arg;
	struct round *r = ta->r;
	bool into = r->steal_into_mask >> ta->k & 1;
	struct weft__deque mine;
	/* Small destination too; steal_into needs room for max - 1. */
	STRESS_CHECK(weft__deque_init(&mine, 3) == 0, "deque_init");
	for (;;) {
		bool done = atomic_load(&r->owner_done);
		void *it;
		if (into) {
			size_t n = 77;
			it = r->fifo_owner
				     ? weft__deque_steal_batch_into(
					       &r->dq, &mine, 8, &n)
				     : weft__deque_steal_into(&r->dq, &mine,
							      8, &n);
			STRESS_CHECK(it ? n >= 1 && n <= 8 : n == 0,
				     "steal_into returned %p with n=%zu", it,
				     n);
			STRESS_CHECK(weft__deque_len(&mine) + (it ? 1 : 0) == n,
				     "steal_into: %zu in dst, stolen %zu",
				     weft__deque_len(&mine), n);
			if (it) {
				take(r, it, "steal_into");
				/* Drain our own deque both ways. */
				void *x;
				while ((x = (n & 1) ? weft__deque_pop(&mine)
						    : weft__deque_pop_lifo(
							      &mine)))
					take(r, x, "thief own deque");
			}
		} else {
			it = weft__deque_steal(&r->dq);
			if (it)
				take(r, it, "steal");
		}
		if (!it && done && weft__deque_len(&r->dq) == 0)
			break;
	}
	weft__deque_destroy(&mine);
	return NULL;
}

static void run_round(struct round *r, struct stress_rng *rng)
{
	pthread_t th[MAX_THIEVES];
	struct thief_arg ta[MAX_THIEVES];
	unsigned log2 = 1 + (unsigned)stress_below(rng, 3); /* 2, 4, 8 */
	/* Operation mix of this round, in percent. */
	unsigned p_pop = (unsigned)stress_below(rng, 40);
	unsigned p_lifo = r->fifo_owner ? 0 : (unsigned)stress_below(rng, 40);

	STRESS_CHECK(weft__deque_init(&r->dq, log2) == 0, "deque_init");
	size_t cap = weft__deque_capacity(&r->dq);
	atomic_store(&r->owner_done, false);
	atomic_store(&r->taken, 0);
	for (uintptr_t v = 0; v <= r->items; v++)
		atomic_store_explicit(&r->seen[v], 0, memory_order_relaxed);

	for (unsigned k = 0; k < r->thieves; k++) {
		ta[k] = (struct thief_arg){ r, k };
		STRESS_CHECK(pthread_create(&th[k], NULL, thief_main,
					    &ta[k]) == 0,
			     "pthread_create");
	}

	uint64_t full = 0;
	for (uintptr_t v = 1; v <= r->items; v++) {
		while (!weft__deque_push(&r->dq, P(v))) {
			full++;
			size_t len = weft__deque_len(&r->dq);
			STRESS_CHECK(len <= cap, "len %zu > capacity %zu", len,
				     cap);
			void *it = r->fifo_owner || stress_chance(rng, 50)
					   ? weft__deque_pop(&r->dq)
					   : weft__deque_pop_lifo(&r->dq);
			if (it)
				take(r, it, "owner (full)");
		}
		unsigned dice = (unsigned)stress_below(rng, 100);
		void *it = NULL;
		if (dice < p_pop)
			it = weft__deque_pop(&r->dq);
		else if (dice < p_pop + p_lifo)
			it = weft__deque_pop_lifo(&r->dq);
		if (it)
			take(r, it, dice < p_pop ? "pop" : "pop_lifo");
	}
	void *it;
	while ((it = !r->fifo_owner && stress_chance(rng, 50)
			     ? weft__deque_pop_lifo(&r->dq)
			     : weft__deque_pop(&r->dq)))
		take(r, it, "owner drain");
	atomic_store(&r->owner_done, true);
	for (unsigned k = 0; k < r->thieves; k++)
		pthread_join(th[k], NULL);

	uint64_t taken = atomic_load(&r->taken);
	STRESS_CHECK(taken == r->items, "round %u: %" PRIu64
		     " of %zu items taken (cap %zu, %u thieves)",
		     r->round_no, taken, (size_t)r->items, cap, r->thieves);
	for (uintptr_t v = 1; v <= r->items; v++)
		STRESS_CHECK(atomic_load(&r->seen[v]) == 1,
			     "round %u: item %zu taken %u times", r->round_no,
			     (size_t)v, (unsigned)atomic_load(&r->seen[v]));
	STRESS_CHECK(weft__deque_len(&r->dq) == 0, "not empty at the end");
	STRESS_CHECK(weft__deque_pop(&r->dq) == NULL, "pop after drain");
	STRESS_CHECK(weft__deque_steal(&r->dq) == NULL, "steal after drain");
	weft__deque_destroy(&r->dq);
	if (stress_verbose)
		printf("round %u: cap %zu, %u thieves (into %#x, %s), "
		       "mix %u/%u, %" PRIu64 " full pushes\n",
		       r->round_no, cap, r->thieves, r->steal_into_mask,
		       r->fifo_owner ? "batch" : "per item", p_pop, p_lifo,
		       full);
}

int main(int argc, char **argv)
{
	struct stress_rng rng;
	struct round r;
	uint64_t rounds_max, items_total = 0;
	unsigned round;

	stress_init("deque_stress", argc, argv);
	rounds_max = stress_iters(STRESS_TSAN ? 200 : 1500);
	r.items = (uintptr_t)stress_iters(20000);
	r.seen = calloc(r.items + 1, sizeof(*r.seen));
	if (!r.seen)
		stress_fail("out of memory");
	stress_rng_init(&rng, 0);

	for (round = 0; round < rounds_max && stress_time_left(); round++) {
		r.round_no = round;
		r.thieves = 1 + (unsigned)stress_below(&rng, MAX_THIEVES);
		r.steal_into_mask = (unsigned)stress_below(&rng, 8);
		r.fifo_owner = stress_chance(&rng, 50);
		stress_set_phase("round");
		run_round(&r, &rng);
		items_total += r.items;
		stress_progress();
	}
	free(r.seen);
	return stress_finish("%u rounds, %" PRIu64 " items", round,
			     items_total);
}
