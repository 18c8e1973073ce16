/* SPDX-License-Identifier: MIT */
/* Fiber internals shared by fiber.c, calls.c and guard.c. */
#ifndef WEFT_FIBER_FIBER_H
#define WEFT_FIBER_FIBER_H

#include <stdbool.h>

struct weft__stack;

/* True on a fiber. */
bool weft__fiber_on(void);

/* True on a fiber whose task is being cancelled. */
bool weft__fiber_cancelled(void);

/* The stack of the fiber running on this thread, or NULL (for the
 * SIGSEGV handler: reads the thread-local directly). */
const struct weft__stack *weft__fiber_stack(void);

/* Install the SIGSEGV handler that reports a stack overflow (once per
 * process), and give this thread an alternate signal stack if it has none
 * (once per thread), so the handler can run when the fiber stack is
 * exhausted. guard.c. */
void weft__fiber_guard_install(void);
void weft__fiber_guard_thread(void);

#endif /* WEFT_FIBER_FIBER_H */
