/* SPDX-License-Identifier: MIT */
/*
 * The async mutex: a one-permit semaphore (Tokio builds its Mutex the same
 * way). Locked means the permit is taken; unlock gives it to the head of
 * the queue, so the order is FIFO; a dropped lock future gives back what
 * it was granted (semaphore.c), so nothing is left locked.
 */
#include <errno.h>

#include <weft/sync.h>

#include "sync/semaphore.h"

/* The handle is the semaphore itself, under another name. */
static weft_semaphore *sem(weft_mutex *m)
{
	return (weft_semaphore *)(void *)m;
}

WEFT_API int weft_mutex_new(weft_mutex **out)
{
	weft_semaphore *s;
	int err;

	if (!out)
		return -EINVAL;
	err = weft_semaphore_new(1, &s);
	if (!err)
		*out = (weft_mutex *)(void *)s;
	return err;
}

WEFT_API int weft_mutex_free(weft_mutex *m)
{
	return weft_semaphore_free(sem(m));
}

WEFT_API int weft_mutex_try_lock(weft_mutex *m)
{
	return m ? weft_semaphore_try_acquire(sem(m), 1) : -EINVAL;
}

WEFT_API int weft_mutex_unlock(weft_mutex *m)
{
	return m ? weft__semaphore_release_held(sem(m), 1, 1) : -EINVAL;
}

WEFT_API int weft_mutex_lock_init(weft_mutex_lock *l, weft_mutex *m)
{
	if (!l || !m)
		return -EINVAL;
	return weft_semaphore_acquire_init(&l->_acquire, sem(m), 1);
}

WEFT_API weft_poll weft_mutex_lock_poll(weft_mutex_lock *l, weft_cx *cx,
					int *res)
{
	if (!l) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	return weft_semaphore_acquire_poll(&l->_acquire, cx, res);
}

WEFT_API void weft_mutex_lock_drop(weft_mutex_lock *l)
{
	if (l)
		weft_semaphore_acquire_drop(&l->_acquire);
}

static weft_poll lock_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_mutex_lock_poll(self, cx, out);
}

static void lock_desc_drop(void *self)
{
	weft_mutex_lock_drop(self);
}

WEFT_API const weft_future_desc weft_mutex_lock_desc = {
	.poll = lock_desc_poll,
	.drop = lock_desc_drop,
	.size = sizeof(weft_mutex_lock),
	.output_size = sizeof(int),
};
