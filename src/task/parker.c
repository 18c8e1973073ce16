/* SPDX-License-Identifier: MIT */
/* Futex parker; see parker.h. C11 atomics. */
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "task/parker.h"

enum { EMPTY = 0, NOTIFIED = 1, PARKED = 2 };

struct weft__parker {
	_Atomic uint32_t state;
	_Atomic unsigned refs;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

struct weft__parker *weft__parker_new(void)
{
	struct weft__parker *p = malloc(sizeof(*p));

	if (!p)
		return NULL;
	atomic_init(&p->state, EMPTY);
	atomic_init(&p->refs, 1);
	return p;
}

void weft__parker_unref(struct weft__parker *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		free(p);
}

static void unpark(struct weft__parker *p)
{
	/* Release: what the waker's caller wrote (a task's output) is
	 * visible to the thread that consumes NOTIFIED with acquire. */
	if (atomic_exchange_explicit(&p->state, NOTIFIED,
				     memory_order_release) == PARKED)
		futex_wake(&p->state);
}

void weft__parker_wait(struct weft__parker *p)
{
	for (;;) {
		uint32_t s = NOTIFIED;
		/* Acquire: pairs with unpark's release. */
		if (atomic_compare_exchange_strong_explicit(
			    &p->state, &s, EMPTY, memory_order_acquire,
			    memory_order_relaxed))
			return;
		s = EMPTY;
		if (atomic_compare_exchange_strong_explicit(
			    &p->state, &s, PARKED, memory_order_relaxed,
			    memory_order_relaxed) || s == PARKED)
			futex_wait(&p->state, PARKED);
	}
}

static weft_waker pw_clone(const void *data);

static void pw_wake_by_ref(const void *data)
{
	unpark((struct weft__parker *)data);
}

static void pw_drop(const void *data)
{
	weft__parker_unref((struct weft__parker *)data);
}

static void pw_wake(const void *data)
{
	pw_wake_by_ref(data);
	pw_drop(data);
}

static const weft_waker_vtable parker_vtable = {
	.clone = pw_clone,
	.wake = pw_wake,
	.wake_by_ref = pw_wake_by_ref,
	.drop = pw_drop,
};

static weft_waker pw_clone(const void *data)
{
	struct weft__parker *p = (struct weft__parker *)data;

	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return (weft_waker){ &parker_vtable, p };
}

weft_waker weft__parker_waker(struct weft__parker *p)
{
	return pw_clone(p);
}
