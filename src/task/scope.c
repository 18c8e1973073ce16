/* SPDX-License-Identifier: MIT */
/*
 * weft_scope on weft_joinset: a set of int-returning tasks, a first
 * error, and a cancelled flag.
 *
 * `lock` guards `cancelled` and `first_err`, and is held across a spawn's
 * check-and-insert and across cancel's flag-and-abort_all, so a spawn
 * either fails with -ECANCELED or lands in the set before abort_all walks
 * it: no task escapes a cancel. Order: scope lock, then the set's lock
 * (inside weft_joinset_*); no waker runs under either.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <weft/joinset.h>

#include "internal.h"
#include "task/joinset.h"

struct weft_scope {
	pthread_mutex_t lock;
	weft_joinset *set;
	unsigned flags;
	bool cancelled;
	int first_err;
};

/* A join takes at most this many finished tasks per poll, then yields. */
#define JOIN_BUDGET 128

WEFT_API int weft_scope_new(weft_scope **out, unsigned flags)
{
	weft_scope *s;
	int err;

	if (!out || (flags & ~WEFT_SCOPE_CANCEL_ON_ERROR))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	err = weft_joinset_new(sizeof(int), &s->set);
	if (err)
		goto out_free;
	if (pthread_mutex_init(&s->lock, NULL)) {
		err = -ENOMEM;
		goto out_set;
	}
	s->flags = flags;
	*out = s;
	return 0;
out_set:
	weft_joinset_free(s->set);
out_free:
	free(s);
	return err;
}

WEFT_API int weft_scope_free(weft_scope *scope)
{
	if (!scope)
		return 0;
	if (!weft__joinset_all_finished(scope->set))
		return -EBUSY;
	/* Every task has finished: this only releases handles (and drops
	 * outputs nobody joined). */
	weft_joinset_free(scope->set);
	pthread_mutex_destroy(&scope->lock);
	free(scope);
	return 0;
}

WEFT_API int weft_scope_spawn(weft_scope *scope, weft_runtime *rt,
			      const weft_future_desc *desc, const void *init)
{
	int err;

	if (!scope || !desc || desc->output_size != sizeof(int))
		return -EINVAL;
	pthread_mutex_lock(&scope->lock);
	if (scope->cancelled)
		err = -ECANCELED;
	else
		err = weft_joinset_spawn(scope->set, rt, desc, init, NULL);
	pthread_mutex_unlock(&scope->lock);
	return err;
}

/* Under scope->lock. */
static void cancel_locked(weft_scope *scope)
{
	scope->cancelled = true;
	weft_joinset_abort_all(scope->set);
}

WEFT_API void weft_scope_cancel(weft_scope *scope)
{
	if (!scope)
		return;
	pthread_mutex_lock(&scope->lock);
	cancel_locked(scope);
	pthread_mutex_unlock(&scope->lock);
}

/* A task finished with @status (from the set) and output @value. */
static void record(weft_scope *scope, int status, int value)
{
	int err = status ? status : (value < 0 ? value : 0);

	if (!err)
		return;
	pthread_mutex_lock(&scope->lock);
	if (!scope->first_err) {
		scope->first_err = err;
		if ((scope->flags & WEFT_SCOPE_CANCEL_ON_ERROR) &&
		    !scope->cancelled)
			cancel_locked(scope);
	}
	pthread_mutex_unlock(&scope->lock);
}

enum { J_IDLE = 1, J_DONE };

WEFT_API int weft_scope_join_init(weft_scope_join *j, weft_scope *scope)
{
	if (!j || !scope)
		return -EINVAL;
	*j = (weft_scope_join){ ._scope = scope, ._state = J_IDLE };
	weft_joinset_join_next_init(&j->_next, scope->set, &j->_value);
	return 0;
}

static weft_poll join_ready(weft_scope_join *j, int *res, int v)
{
	if (j && j->_state)
		j->_state = J_DONE;
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API weft_poll weft_scope_join_poll(weft_scope_join *j, weft_cx *cx,
					int *res)
{
	weft_joinset_next next;
	int err;

	if (!j || !cx || !j->_scope || !j->_state)
		return join_ready(NULL, res, -EINVAL);
	if (j->_state == J_DONE)
		return join_ready(j, res, -EALREADY);
	/* Pointed here, not at init: the state may have been copied (into
	 * a task) between init and the first poll. */
	j->_next._value = &j->_value;
	for (unsigned n = 0; n < JOIN_BUDGET; n++) {
		if (weft_joinset_join_next_poll(&j->_next, cx, &next) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		weft_joinset_join_next_drop(&j->_next);
		if (next.status == -ENOENT) {
			pthread_mutex_lock(&j->_scope->lock);
			err = j->_scope->first_err;
			pthread_mutex_unlock(&j->_scope->lock);
			return join_ready(j, res, err);
		}
		record(j->_scope, next.status, j->_value);
		weft_joinset_join_next_init(&j->_next, j->_scope->set,
					    &j->_value);
	}
	/* Many finished at once: let other tasks run between batches. */
	weft_waker_wake_by_ref(cx->waker);
	return WEFT_PENDING;
}

WEFT_API void weft_scope_join_drop(weft_scope_join *j)
{
	if (!j || !j->_state)
		return;
	weft_joinset_join_next_drop(&j->_next);
	j->_state = J_DONE;
}

static weft_poll scope_join_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_scope_join_poll(self, cx, out);
}

static void scope_join_desc_drop(void *self)
{
	weft_scope_join_drop(self);
}

WEFT_API const weft_future_desc weft_scope_join_desc = {
	.poll = scope_join_desc_poll,
	.drop = scope_join_desc_drop,
	.size = sizeof(weft_scope_join),
	.output_size = sizeof(int),
};
