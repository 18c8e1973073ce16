/* SPDX-License-Identifier: MIT */
/*
 * The async reader-writer lock: a semaphore of WEFT_RWLOCK_MAX_READERS
 * permits, as Tokio builds its RwLock. A read takes one permit, a write
 * all of them; the semaphore's FIFO queue with partial assignment to the
 * head is what keeps a waiting writer from being starved: once it is at
 * the head it collects permits as readers leave, and readers behind it
 * wait.
 */
#include <errno.h>

#include <weft/sync.h>

#include "sync/semaphore.h"

#define MAX WEFT_RWLOCK_MAX_READERS

static weft_semaphore *sem(weft_rwlock *l)
{
	return (weft_semaphore *)(void *)l;
}

WEFT_API int weft_rwlock_new(weft_rwlock **out)
{
	weft_semaphore *s;
	int err;

	if (!out)
		return -EINVAL;
	err = weft_semaphore_new(MAX, &s);
	if (!err)
		*out = (weft_rwlock *)(void *)s;
	return err;
}

WEFT_API int weft_rwlock_free(weft_rwlock *l)
{
	return weft_semaphore_free(sem(l));
}

WEFT_API int weft_rwlock_try_read(weft_rwlock *l)
{
	return l ? weft_semaphore_try_acquire(sem(l), 1) : -EINVAL;
}

WEFT_API int weft_rwlock_try_write(weft_rwlock *l)
{
	return l ? weft_semaphore_try_acquire(sem(l), MAX) : -EINVAL;
}

/* Unlocks are checked against the free permits only (rwlock.h doc): an
 * unlock that would free more than exist is refused. */
WEFT_API int weft_rwlock_read_unlock(weft_rwlock *l)
{
	return l ? weft__semaphore_release_held(sem(l), 1, MAX) : -EINVAL;
}

WEFT_API int weft_rwlock_write_unlock(weft_rwlock *l)
{
	return l ? weft__semaphore_release_held(sem(l), MAX, MAX) : -EINVAL;
}

WEFT_API int weft_rwlock_read_init(weft_rwlock_lock *k, weft_rwlock *l)
{
	if (!k || !l)
		return -EINVAL;
	return weft_semaphore_acquire_init(&k->_acquire, sem(l), 1);
}

WEFT_API int weft_rwlock_write_init(weft_rwlock_lock *k, weft_rwlock *l)
{
	if (!k || !l)
		return -EINVAL;
	return weft_semaphore_acquire_init(&k->_acquire, sem(l), MAX);
}

WEFT_API weft_poll weft_rwlock_lock_poll(weft_rwlock_lock *k, weft_cx *cx,
					 int *res)
{
	if (!k) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	return weft_semaphore_acquire_poll(&k->_acquire, cx, res);
}

WEFT_API void weft_rwlock_lock_drop(weft_rwlock_lock *k)
{
	if (k)
		weft_semaphore_acquire_drop(&k->_acquire);
}

static weft_poll lock_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_rwlock_lock_poll(self, cx, out);
}

static void lock_desc_drop(void *self)
{
	weft_rwlock_lock_drop(self);
}

WEFT_API const weft_future_desc weft_rwlock_lock_desc = {
	.poll = lock_desc_poll,
	.drop = lock_desc_drop,
	.size = sizeof(weft_rwlock_lock),
	.output_size = sizeof(int),
};
