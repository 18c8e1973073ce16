/* SPDX-License-Identifier: MIT */
/*
 * A hierarchical timer wheel (Varghese & Lauck, "Hashed and hierarchical
 * timing wheels", SOSP 1987; the layout of Tokio's runtime/time/wheel).
 *
 * Time is counted in ticks (WEFT__TICK_SHIFT: 2^16 ns). There are 8 levels
 * of 64 slots; a slot at level L spans 64^L ticks, so the wheel covers
 * 2^48 ticks (584 years of ns): any deadline fits without an overflow list.
 *
 * `elapsed` is the last tick processed: every node with when <= elapsed
 * has been handed out. A node is filed by the highest 6-bit digit in which
 * its `when` differs from `elapsed`: level L, slot = digit L of `when`.
 * So level 0 holds nodes due within the current 64-tick block, one `when`
 * per slot, and every node at a level is later than every node at the
 * levels below it. When `elapsed` reaches the start of an occupied slot at
 * level L > 0, the slot's nodes are re-filed against the new `elapsed`
 * (they cascade to lower levels); a level-0 slot's nodes are due.
 *
 * Insert, remove and finding the next due slot are O(1): a 64-bit
 * occupancy mask per level and a count-trailing-zeros. Each node moves at
 * most once per level on its way down.
 *
 * Due nodes are not handed out all at once: advance moves them to the
 * wheel's expired list, from which the owner pops as many as it can take
 * (a worker wakes only as many tasks as its run queue has room for; the
 * rest wait for its next turn instead of overflowing to the back of the
 * global queue). A node on the expired list is still in the wheel: remove
 * works on it, and next() says "now" while the list is not empty.
 *
 * Owner-only: no locking. Nodes are intrusive (struct weft__wheel_node).
 */
#ifndef WEFT_TIME_WHEEL_H
#define WEFT_TIME_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT__TICK_SHIFT 16
#define WEFT__WHEEL_LEVELS 8
#define WEFT__WHEEL_SLOTS 64
/* The last tick the wheel can hold: deadlines beyond are clamped here. */
#define WEFT__WHEEL_MAX_TICK ((UINT64_C(1) << 48) - 1)

struct weft__wheel_node {
	struct weft__wheel_node *next;
	struct weft__wheel_node **pprev; /* NULL: not in the wheel */
	uint64_t when : 48;              /* tick at which it is due */
	uint64_t slot : 16;              /* level * 64 + slot while filed */
};

/* weft__wheel_node.slot of a node on the expired list */
#define WEFT__WHEEL_EXPIRED 0xffffu

struct weft__wheel {
	uint64_t elapsed;
	size_t count;                     /* filed and expired nodes */
	struct weft__wheel_node *expired; /* due, not yet popped: oldest */
	struct weft__wheel_node **expired_tail; /* first, popped first */
	uint64_t occupied[WEFT__WHEEL_LEVELS];
	struct weft__wheel_node *slots[WEFT__WHEEL_LEVELS][WEFT__WHEEL_SLOTS];
};

/* The first tick at or after @ns (so a node never fires early), clamped to
 * WEFT__WHEEL_MAX_TICK. */
static inline uint64_t weft__wheel_tick_ceil(uint64_t ns)
{
	uint64_t t = (ns >> WEFT__TICK_SHIFT) +
		     ((ns & ((UINT64_C(1) << WEFT__TICK_SHIFT) - 1)) != 0);
	return t > WEFT__WHEEL_MAX_TICK ? WEFT__WHEEL_MAX_TICK : t;
}

/* The tick containing @ns: the ticks up to it may be processed at @ns. */
static inline uint64_t weft__wheel_tick_floor(uint64_t ns)
{
	uint64_t t = ns >> WEFT__TICK_SHIFT;
	return t > WEFT__WHEEL_MAX_TICK ? WEFT__WHEEL_MAX_TICK : t;
}

void weft__wheel_init(struct weft__wheel *w, uint64_t now_tick);

/*
 * File @n, due at tick @when, which must be later than w->elapsed. Returns
 * the tick at which its slot comes up (when, or the start of the
 * higher-level slot it will cascade from): the wheel needs processing then.
 */
uint64_t weft__wheel_insert(struct weft__wheel *w, struct weft__wheel_node *n,
			    uint64_t when);

/* Unfile @n, which is in the wheel (filed or expired). */
void weft__wheel_remove(struct weft__wheel *w, struct weft__wheel_node *n);

/* The tick at which the wheel next needs processing: elapsed while nodes
 * are expired, UINT64_MAX if the wheel is empty. */
uint64_t weft__wheel_next(const struct weft__wheel *w);

/*
 * Process every tick up to @now_tick: cascade, and move the nodes that are
 * due (when <= @now_tick) to the expired list. elapsed becomes
 * max(elapsed, now_tick).
 */
void weft__wheel_advance(struct weft__wheel *w, uint64_t now_tick);

/* Take one expired node out of the wheel (pprev NULL), or NULL. */
struct weft__wheel_node *weft__wheel_pop_expired(struct weft__wheel *w);

#endif /* WEFT_TIME_WHEEL_H */
