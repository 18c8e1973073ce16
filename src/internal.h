/* SPDX-License-Identifier: MIT */
/* Helpers shared by every module of libweft. Not installed. */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#include <weft/core.h>

#define weft__container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define weft__likely(x) __builtin_expect(!!(x), 1)
#define weft__unlikely(x) __builtin_expect(!!(x), 0)

/*
 * A future's waker slot (op records, oneshot, timers, waiter lists): store
 * a clone of @w in *@slot unless the one there already wakes the same
 * target. Returns the waker it replaced (empty if none), which the caller
 * drops after releasing any lock: a drop may free a task.
 */
static inline weft_waker weft__waker_store(weft_waker *slot,
					   const weft_waker *w)
{
	weft_waker old = WEFT_WAKER_EMPTY;

	if (!weft_waker_will_wake(slot, w)) {
		old = *slot;
		*slot = weft_waker_clone(w);
	}
	return old;
}

#define WEFT__CACHELINE 64
#define weft__cacheline_aligned __attribute__((aligned(WEFT__CACHELINE)))

/*
 * Thread-local storage for the library's per-thread pointers. initial-exec
 * makes each access one %fs-relative load instead of a __tls_get_addr call
 * (the default for -fPIC code); docs/design.md has the measurement.
 * The cost is a few bytes of static TLS, which glibc reserves for dlopen'd
 * libraries (jemalloc and glibc itself do the same).
 */
#define WEFT__TLS __thread __attribute__((tls_model("initial-exec")))

/* A run-queue link, embedded in whatever is queued (a task header). */
struct weft__qnode {
	struct weft__qnode *next;
};

#define WEFT__ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Round @n up to a multiple of @a (a power of two). */
#define WEFT__ALIGN_UP(n, a) (((n) + ((a) - 1)) & ~((size_t)(a) - 1))

#if defined(__SANITIZE_THREAD__) || defined(WEFT_SANITIZE_THREAD)
#define WEFT__TSAN 1
#else
#define WEFT__TSAN 0
#endif

/*
 * Internal invariant check. It never fires on user input (that gets an
 * errno); a failure means weft itself is broken, so it aborts loudly.
 */
void weft__assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn, cold));
#define weft__assert(e) \
	(weft__likely(e) ? (void)0 : weft__assert_fail(#e, __FILE__, __LINE__))

/* CLOCK_MONOTONIC now + @ns, saturating at UINT64_MAX (src/core/clock.c). */
uint64_t weft__deadline_in(uint64_t ns);

#endif /* WEFT_INTERNAL_H */
