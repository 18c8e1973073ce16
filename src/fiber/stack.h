/* SPDX-License-Identifier: MIT */
/*
 * Fiber stacks: mmap'd, a PROT_NONE guard page below the usable part, and
 * a per-thread pool of default-size stacks so that starting a fiber
 * usually costs no system call (Go keeps per-P stack caches for the same
 * reason; libdill pools stacks too). The header lives in the top bytes of
 * its own mapping: no allocation besides the mapping.
 */
#ifndef WEFT_FIBER_STACK_H
#define WEFT_FIBER_STACK_H

#include <stddef.h>

struct weft__stack {
	char *map;    /* the mapping: the guard pages first */
	size_t guard; /* bytes of guard (one page) */
	size_t len;   /* bytes of the whole mapping */
	struct weft__stack *next; /* in a pool */
};

/* A stack with at least @size usable bytes: from this thread's pool for
 * the default size, else mapped. NULL on -ENOMEM. */
struct weft__stack *weft__stack_get(size_t size);

/* Give @s back (to this thread's pool, or unmapped). Any thread. */
void weft__stack_put(struct weft__stack *s);

/* The usable range: [lo, hi), hi 16-byte aligned (the header is above). */
static inline char *weft__stack_lo(const struct weft__stack *s)
{
	return s->map + s->guard;
}

static inline char *weft__stack_hi(const struct weft__stack *s)
{
	return (char *)((unsigned long)s & ~15ul);
}

#endif /* WEFT_FIBER_STACK_H */
