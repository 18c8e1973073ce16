/* SPDX-License-Identifier: MIT */
/*
 * The weft_co_* calls for channels, sync primitives and task groups
 * (weft/fiber.h): each prepares the primitive's future on the fiber's
 * stack and awaits it, so a fiber waits exactly as a task polling that
 * future would (same FIFO order, same drop rules when cancelled).
 */
#include <errno.h>

#include <weft/broadcast.h>
#include <weft/fiber.h>
#include <weft/joinset.h>
#include <weft/mpsc.h>
#include <weft/sync.h>
#include <weft/watch.h>

#include "fiber/fiber.h"

/* Await @desc's future whose output is an int status: the status, or
 * -ECANCELED / -EPERM from weft_await. */
static int await_status(const weft_future_desc *desc, void *state,
			uint64_t deadline_ns)
{
	int st = 0, err;

	if ((err = weft_await_until(desc, state, &st, deadline_ns)))
		return err;
	return st;
}

#define ON_FIBER()                         \
	do {                               \
		if (!weft__fiber_on())     \
			return -EPERM;     \
	} while (0)

WEFT_API int weft_co_mpsc_send(weft_mpsc_tx *tx, const void *value,
			       uint64_t deadline_ns)
{
	weft_mpsc_send s;
	int err;

	ON_FIBER();
	if ((err = weft_mpsc_send_init(&s, tx, value)))
		return err;
	return await_status(&weft_mpsc_send_desc, &s, deadline_ns);
}

WEFT_API int weft_co_mpsc_recv(weft_mpsc_rx *rx, void *out,
			       uint64_t deadline_ns)
{
	weft_mpsc_recv r;
	int err;

	ON_FIBER();
	if ((err = weft_mpsc_recv_init(&r, rx, out)))
		return err;
	return await_status(&weft_mpsc_recv_desc, &r, deadline_ns);
}

WEFT_API int weft_co_oneshot_recv(weft_oneshot_rx *rx, void *out)
{
	weft_oneshot_recv r = { .rx = rx, .value = out };

	if (!rx)
		return -EINVAL;
	ON_FIBER();
	return await_status(&weft_oneshot_recv_desc, &r, 0);
}

WEFT_API int weft_co_broadcast_recv(weft_broadcast_rx *rx, void *out,
				    uint64_t *missed, uint64_t deadline_ns)
{
	weft_broadcast_recv r;
	int err;

	ON_FIBER();
	if ((err = weft_broadcast_recv_init(&r, rx, out, missed)))
		return err;
	return await_status(&weft_broadcast_recv_desc, &r, deadline_ns);
}

WEFT_API int weft_co_watch_changed(weft_watch_rx *rx, uint64_t deadline_ns)
{
	weft_watch_changed c;
	int err;

	ON_FIBER();
	if ((err = weft_watch_changed_init(&c, rx)))
		return err;
	return await_status(&weft_watch_changed_desc, &c, deadline_ns);
}

WEFT_API int weft_co_semaphore_acquire(weft_semaphore *s, size_t n,
				       uint64_t deadline_ns)
{
	weft_semaphore_acquire a;
	int err;

	ON_FIBER();
	if ((err = weft_semaphore_acquire_init(&a, s, n)))
		return err;
	return await_status(&weft_semaphore_acquire_desc, &a, deadline_ns);
}

WEFT_API int weft_co_mutex_lock(weft_mutex *m, uint64_t deadline_ns)
{
	weft_mutex_lock l;
	int err;

	ON_FIBER();
	if ((err = weft_mutex_lock_init(&l, m)))
		return err;
	return await_status(&weft_mutex_lock_desc, &l, deadline_ns);
}

WEFT_API int weft_co_rwlock_read(weft_rwlock *l, uint64_t deadline_ns)
{
	weft_rwlock_lock k;
	int err;

	ON_FIBER();
	if ((err = weft_rwlock_read_init(&k, l)))
		return err;
	return await_status(&weft_rwlock_lock_desc, &k, deadline_ns);
}

WEFT_API int weft_co_rwlock_write(weft_rwlock *l, uint64_t deadline_ns)
{
	weft_rwlock_lock k;
	int err;

	ON_FIBER();
	if ((err = weft_rwlock_write_init(&k, l)))
		return err;
	return await_status(&weft_rwlock_lock_desc, &k, deadline_ns);
}

WEFT_API int weft_co_notified(weft_notify *n, uint64_t deadline_ns)
{
	weft_notified w;
	int err;

	ON_FIBER();
	if ((err = weft_notified_init(&w, n)))
		return err;
	return await_status(&weft_notified_desc, &w, deadline_ns);
}

WEFT_API int weft_co_barrier_wait(weft_barrier *b)
{
	weft_barrier_wait w;
	int err;

	ON_FIBER();
	if ((err = weft_barrier_wait_init(&w, b)))
		return err;
	return await_status(&weft_barrier_wait_desc, &w, 0);
}

WEFT_API int weft_co_joinset_join_next(weft_joinset *set, void *value,
				       uint64_t *id)
{
	weft_joinset_join_next j;
	weft_joinset_next next = { 0 };
	int err;

	ON_FIBER();
	if ((err = weft_joinset_join_next_init(&j, set, value)))
		return err;
	if ((err = weft_await(&weft_joinset_join_next_desc, &j, &next)))
		return err;
	if (id)
		*id = next.id;
	return next.status;
}

WEFT_API int weft_co_scope_join(weft_scope *scope)
{
	weft_scope_join j;
	int err;

	ON_FIBER();
	if ((err = weft_scope_join_init(&j, scope)))
		return err;
	return await_status(&weft_scope_join_desc, &j, 0);
}
