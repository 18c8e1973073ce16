/* SPDX-License-Identifier: MIT */
/* The hierarchical timer wheel; the invariants are in wheel.h. */
#include <string.h>

#include "internal.h"
#include "time/wheel.h"

#define SLOT_BITS 6
#define SLOT_MASK (WEFT__WHEEL_SLOTS - 1)

void weft__wheel_init(struct weft__wheel *w, uint64_t now_tick)
{
	memset(w, 0, sizeof(*w));
	w->elapsed = now_tick;
	w->expired_tail = &w->expired;
}

/* The level of a node due at @when: the highest 6-bit digit in which it
 * differs from @elapsed (level 0 when only the lowest digit differs). */
static unsigned level_for(uint64_t elapsed, uint64_t when)
{
	uint64_t masked = (elapsed ^ when) | SLOT_MASK;

	return (unsigned)(63 - __builtin_clzll(masked)) / SLOT_BITS;
}

static void push(struct weft__wheel_node **head, struct weft__wheel_node *n)
{
	n->next = *head;
	if (n->next)
		n->next->pprev = &n->next;
	n->pprev = head;
	*head = n;
}

static void unlink_node(struct weft__wheel_node *n)
{
	*n->pprev = n->next;
	if (n->next)
		n->next->pprev = n->pprev;
	n->pprev = NULL;
	n->next = NULL;
}

static void file(struct weft__wheel *w, struct weft__wheel_node *n,
		 unsigned level, unsigned slot)
{
	push(&w->slots[level][slot], n);
	n->slot = level * WEFT__WHEEL_SLOTS + slot;
	w->occupied[level] |= UINT64_C(1) << slot;
}

uint64_t weft__wheel_insert(struct weft__wheel *w, struct weft__wheel_node *n,
			    uint64_t when)
{
	weft__assert(when > w->elapsed && when <= WEFT__WHEEL_MAX_TICK);
	unsigned level = level_for(w->elapsed, when);
	unsigned shift = level * SLOT_BITS;
	unsigned slot = (unsigned)(when >> shift) & SLOT_MASK;

	n->when = when;
	file(w, n, level, slot);
	w->count++;
	/* The slot's start: @when with the digits below the level cleared. */
	return when & ~((UINT64_C(1) << shift) - 1);
}

/* Append @n to the expired list: popped in the order they came due. */
static void expire(struct weft__wheel *w, struct weft__wheel_node *n)
{
	n->next = NULL;
	n->pprev = w->expired_tail;
	*w->expired_tail = n;
	w->expired_tail = &n->next;
	n->slot = WEFT__WHEEL_EXPIRED;
}

void weft__wheel_remove(struct weft__wheel *w, struct weft__wheel_node *n)
{
	unsigned level = n->slot / WEFT__WHEEL_SLOTS;
	unsigned slot = n->slot % WEFT__WHEEL_SLOTS;

	w->count--;
	if (n->slot == WEFT__WHEEL_EXPIRED) {
		if (!n->next) /* the tail */
			w->expired_tail = n->pprev;
		unlink_node(n);
		return;
	}
	unlink_node(n);
	if (!w->slots[level][slot])
		w->occupied[level] &= ~(UINT64_C(1) << slot);
}

struct weft__wheel_node *weft__wheel_pop_expired(struct weft__wheel *w)
{
	struct weft__wheel_node *n = w->expired;

	if (n)
		weft__wheel_remove(w, n);
	return n;
}

/*
 * The first occupied slot of @level at or after elapsed's (none before it
 * can be occupied: wheel.h), and the tick at which it starts.
 */
static bool level_next(const struct weft__wheel *w, unsigned level,
		       unsigned *slot_out, uint64_t *start_out)
{
	uint64_t occ = w->occupied[level];

	if (!occ)
		return false;
	unsigned shift = level * SLOT_BITS;
	unsigned now_slot = (unsigned)(w->elapsed >> shift) & SLOT_MASK;
	uint64_t ahead = occ >> now_slot; /* slots now_slot..63 */

	weft__assert(ahead != 0);
	unsigned slot = now_slot + (unsigned)__builtin_ctzll(ahead);
	uint64_t level_start = w->elapsed &
			       ~((UINT64_C(1) << (shift + SLOT_BITS)) - 1);

	*slot_out = slot;
	*start_out = level_start + ((uint64_t)slot << shift);
	return true;
}

uint64_t weft__wheel_next(const struct weft__wheel *w)
{
	if (w->expired)
		return w->elapsed;
	for (unsigned level = 0; level < WEFT__WHEEL_LEVELS; level++) {
		unsigned slot;
		uint64_t start;

		/* Every node of a level is later than those below it. */
		if (level_next(w, level, &slot, &start))
			return start;
	}
	return UINT64_MAX;
}

void weft__wheel_advance(struct weft__wheel *w, uint64_t now_tick)
{
	for (;;) {
		unsigned level, slot = 0;
		uint64_t start = 0;

		for (level = 0; level < WEFT__WHEEL_LEVELS; level++)
			if (level_next(w, level, &slot, &start))
				break;
		if (level == WEFT__WHEEL_LEVELS || start > now_tick)
			break;

		struct weft__wheel_node *n = w->slots[level][slot];
		w->slots[level][slot] = NULL;
		w->occupied[level] &= ~(UINT64_C(1) << slot);
		if (start > w->elapsed)
			w->elapsed = start;
		while (n) {
			struct weft__wheel_node *next = n->next;

			if (n->when <= w->elapsed) {
				expire(w, n);
			} else { /* cascade: re-file against the new elapsed */
				unsigned l = level_for(w->elapsed, n->when);
				unsigned s = (unsigned)(n->when >> (l * SLOT_BITS)) &
					     SLOT_MASK;
				file(w, n, l, s);
			}
			n = next;
		}
	}
	if (now_tick > w->elapsed)
		w->elapsed = now_tick;
}
