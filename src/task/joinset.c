/* SPDX-License-Identifier: MIT */
/*
 * JoinSet over join handles, after Tokio's util/idle_notified_set.
 *
 * Each task of a set has an entry: its join handle, its id, and the list
 * it is on. The set keeps two lists:
 *
 *   notified  entries that may have finished: new ones, and those whose
 *             waker was woken. Joins poll only these.
 *   idle      entries polled PENDING, whose join waker is the entry's own
 *             waker (entry_vtable, data = the entry).
 *
 * (Both are the waiter list of src/sync/waitlist.h, for its links.)
 * A join pops the head of `notified`, moves it to `idle` and polls its
 * handle with the entry's waker (so a completion racing with the poll
 * moves it back), and on READY removes it from whichever list it is on
 * (where = NONE) and drops the handle. A task finishing wakes its join
 * waker: the entry moves from idle to notified and the set's waker (the
 * pending join's) is taken and woken after the unlock.
 *
 * Lifetimes. An entry is refcounted: one reference while it is in the set
 * (on a list or being polled by the join), one per clone of its waker (the
 * task holds one as its join waker). The set is refcounted too: one for
 * its owner, one per entry alive. So a wake that comes after the entry
 * left the set, or after weft_joinset_free, finds both still allocated,
 * sees where == NONE and does nothing; the last reference frees them.
 *
 * Locking. `lock` (a pthread mutex: abort_all and free walk every entry
 * under it) guards the lists, every entry's `where` and links, len,
 * next_id and waker. No waker is woken or dropped under it (an entry
 * waker's drop may free the entry and a join waker's anything). Join
 * handles are polled and dropped outside it; weft_task_abort is called
 * under it (it only schedules the task, it runs no waker), which keeps a
 * handle from being dropped while it is aborted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <weft/joinset.h>
#include <weft/task.h>

#include "internal.h"
#include "task/parker.h"
#include "sync/waitlist.h"
#include "task/joinset.h"

enum { W_NONE, W_IDLE, W_NOTIFIED };

struct entry {
	atomic_uint refs;
	unsigned where; /* W_*, under set->lock */
	struct weft__waiter node; /* links only: its waker is unused */
	struct weft_joinset *set;
	weft_join *join;
	uint64_t id;
};

struct weft_joinset {
	atomic_size_t refs;
	pthread_mutex_t lock;
	struct weft__waitlist idle, notified;
	size_t len;
	uint64_t next_id;
	size_t output_size;
	weft_waker waker; /* the pending join's */
};

/* A join polls at most this many entries that turn out to be PENDING
 * before it yields (each new task is polled once; 10,000 spawned at once
 * must not make one poll run for long). */
#define POLL_BUDGET 64

static struct entry *entry_of(struct weft__waiter *w)
{
	return w ? weft__container_of(w, struct entry, node) : NULL;
}

static struct weft__waitlist *list_of(weft_joinset *set, struct entry *e)
{
	return e->where == W_IDLE ? &set->idle : &set->notified;
}

/* Under the lock: move @e (on a list) to @where. */
static void entry_move(weft_joinset *set, struct entry *e, unsigned where)
{
	weft__waitlist_remove(list_of(set, e), &e->node);
	e->where = where;
	weft__waitlist_push(list_of(set, e), &e->node);
}

static void set_unref(weft_joinset *set)
{
	/* acq_rel: the last owner sees every write made under the lock by
	 * the others before it frees. */
	if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) ==
	    1) {
		pthread_mutex_destroy(&set->lock);
		free(set);
	}
}

static void entry_unref(struct entry *e)
{
	/* acq_rel: as set_unref, for the entry. */
	if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) ==
	    1) {
		weft_joinset *set = e->set;

		free(e);
		set_unref(set);
	}
}

/* --- the entry's waker -------------------------------------------------- */

static weft_waker entry_clone(const void *data);

static void entry_wake_by_ref(const void *data)
{
	struct entry *e = (struct entry *)data;
	weft_joinset *set = e->set; /* alive: @e holds a reference */
	weft_waker w = WEFT_WAKER_EMPTY;

	pthread_mutex_lock(&set->lock);
	if (e->where == W_IDLE) {
		entry_move(set, e, W_NOTIFIED);
		w = set->waker;
		set->waker = WEFT_WAKER_EMPTY;
	}
	pthread_mutex_unlock(&set->lock);
	weft_waker_wake(&w);
}

static void entry_drop(const void *data)
{
	entry_unref((struct entry *)data);
}

static void entry_wake(const void *data)
{
	entry_wake_by_ref(data);
	entry_drop(data);
}

static const weft_waker_vtable entry_vtable = {
	.clone = entry_clone,
	.wake = entry_wake,
	.wake_by_ref = entry_wake_by_ref,
	.drop = entry_drop,
};

static weft_waker entry_clone(const void *data)
{
	struct entry *e = (struct entry *)data;

	/* Relaxed: the caller already holds a reference. */
	atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
	return (weft_waker){ &entry_vtable, e };
}

/* --- the set ------------------------------------------------------------ */

WEFT_API int weft_joinset_new(size_t output_size, weft_joinset **out)
{
	weft_joinset *set;

	if (!out || output_size > WEFT_FUTURE_MAX_SIZE)
		return -EINVAL;
	set = calloc(1, sizeof(*set));
	if (!set)
		return -ENOMEM;
	if (pthread_mutex_init(&set->lock, NULL)) {
		free(set);
		return -ENOMEM;
	}
	atomic_init(&set->refs, 1);
	set->output_size = output_size;
	*out = set;
	return 0;
}

WEFT_API int weft_joinset_spawn(weft_joinset *set, weft_runtime *rt,
				const weft_future_desc *desc,
				const void *init, uint64_t *id)
{
	struct entry *e;
	weft_waker w;
	int err;

	if (!set || !desc || desc->output_size != set->output_size)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	err = weft_spawn(rt, desc, init, &e->join);
	if (err) {
		free(e);
		return err;
	}
	atomic_init(&e->refs, 1);
	e->set = set;
	/* Relaxed: the caller owns a reference to @set. */
	atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);

	pthread_mutex_lock(&set->lock);
	e->id = ++set->next_id;
	/* Not polled yet, so no join waker: the next join polls it once,
	 * which registers the entry's waker (or finds it finished). */
	e->where = W_NOTIFIED;
	weft__waitlist_push(&set->notified, &e->node);
	set->len++;
	w = set->waker;
	set->waker = WEFT_WAKER_EMPTY;
	if (id)
		*id = e->id;
	pthread_mutex_unlock(&set->lock);
	weft_waker_wake(&w);
	return 0;
}

WEFT_API size_t weft_joinset_len(const weft_joinset *set)
{
	weft_joinset *s = (weft_joinset *)set;
	size_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->len;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void abort_list(struct weft__waitlist *l)
{
	for (struct weft__waiter *w = l->head; w; w = w->next)
		weft_task_abort(entry_of(w)->join);
}

WEFT_API void weft_joinset_abort_all(weft_joinset *set)
{
	if (!set)
		return;
	pthread_mutex_lock(&set->lock);
	/* An entry being polled by a join is on `idle`, so it is reached;
	 * one the join has taken is off both lists, its handle about to be
	 * dropped, and finished anyway. */
	abort_list(&set->idle);
	abort_list(&set->notified);
	pthread_mutex_unlock(&set->lock);
}

bool weft__joinset_all_finished(weft_joinset *set)
{
	bool done = true;

	pthread_mutex_lock(&set->lock);
	for (struct weft__waiter *w = set->idle.head; w && done; w = w->next)
		done = weft_join_is_finished(entry_of(w)->join);
	for (struct weft__waiter *w = set->notified.head; w && done;
	     w = w->next)
		done = weft_join_is_finished(entry_of(w)->join);
	pthread_mutex_unlock(&set->lock);
	return done;
}

size_t weft__joinset_notified(weft_joinset *set)
{
	size_t n = 0;

	pthread_mutex_lock(&set->lock);
	for (struct weft__waiter *w = set->notified.head; w; w = w->next)
		n++;
	pthread_mutex_unlock(&set->lock);
	return n;
}

/* Under the lock: unlink every entry of @l onto the chain *@out (linked
 * through node.next, which nothing else reads once where is W_NONE). */
static void detach_list(struct weft__waitlist *l, struct entry **out)
{
	struct entry *e;

	while ((e = entry_of(l->head))) {
		weft__waitlist_remove(l, &e->node);
		e->where = W_NONE;
		e->node.next = *out ? &(*out)->node : NULL;
		*out = e;
	}
}

WEFT_API void weft_joinset_free(weft_joinset *set)
{
	struct entry *chain = NULL, *e;
	weft_waker w;

	if (!set)
		return;
	pthread_mutex_lock(&set->lock);
	/* From here on a late wake of any entry sees W_NONE. */
	detach_list(&set->idle, &chain);
	detach_list(&set->notified, &chain);
	set->len = 0;
	w = set->waker;
	set->waker = WEFT_WAKER_EMPTY;
	pthread_mutex_unlock(&set->lock);
	while ((e = chain)) {
		chain = entry_of(e->node.next);
		weft_task_abort(e->join);
		weft_join_drop(e->join); /* may drop the entry's waker */
		entry_unref(e);
	}
	weft_waker_drop(&w);
	set_unref(set);
}

/* --- taking finished tasks ---------------------------------------------- */

enum { TAKE_GOT, TAKE_NONE, TAKE_BUDGET };

/*
 * Poll notified entries until one is finished (TAKE_GOT, *@next set, its
 * output in @value), none is left (TAKE_NONE: *@empty says whether the set
 * is empty; if @cx is given, its waker was stored under the same lock), or
 * @budget entries were PENDING (TAKE_BUDGET).
 */
static int take_next(weft_joinset *set, void *value, weft_joinset_next *next,
		     weft_cx *cx, unsigned budget, bool *empty)
{
	weft_waker ew;
	weft_cx ecx;
	int st;

	for (;;) {
		weft_waker old = WEFT_WAKER_EMPTY;
		struct entry *e;

		pthread_mutex_lock(&set->lock);
		e = entry_of(set->notified.head);
		if (!e) {
			*empty = set->len == 0;
			if (cx && !*empty)
				old = weft__waker_store(&set->waker, cx->waker);
			pthread_mutex_unlock(&set->lock);
			weft_waker_drop(&old);
			return TAKE_NONE;
		}
		/* Idle while polled: a completion during the poll moves it
		 * back to notified, so no wake is lost. */
		entry_move(set, e, W_IDLE);
		pthread_mutex_unlock(&set->lock);

		/* The set's reference keeps @e alive: only the one taker
		 * removes entries (and free does not run concurrently). */
		ew = (weft_waker){ &entry_vtable, e };
		weft_cx_init(&ecx, &ew);
		if (weft_join_poll(e->join, &ecx, &st, value) == WEFT_PENDING) {
			if (!--budget)
				return TAKE_BUDGET;
			continue;
		}
		pthread_mutex_lock(&set->lock);
		weft__waitlist_remove(list_of(set, e), &e->node);
		e->where = W_NONE;
		set->len--;
		pthread_mutex_unlock(&set->lock);
		next->status = st;
		next->id = e->id;
		weft_join_drop(e->join);
		entry_unref(e);
		return TAKE_GOT;
	}
}

WEFT_API int weft_joinset_try_join_next(weft_joinset *set,
					weft_joinset_next *next, void *value)
{
	bool empty;

	if (!set || !next)
		return -EINVAL;
	/* No budget: each entry is PENDING once, then idle until its task
	 * finishes, so this ends. */
	if (take_next(set, value, next, NULL, UINT32_MAX, &empty) == TAKE_GOT)
		return 0;
	return empty ? -ENOENT : -EAGAIN;
}

enum { J_IDLE = 1, J_DONE };

WEFT_API int weft_joinset_join_next_init(weft_joinset_join_next *j,
					 weft_joinset *set, void *value)
{
	if (!j || !set)
		return -EINVAL;
	*j = (weft_joinset_join_next){ ._set = set, ._value = value,
				       ._state = J_IDLE };
	return 0;
}

static weft_poll next_ready(weft_joinset_join_next *j, weft_joinset_next *next,
			    int status, uint64_t id)
{
	if (j && j->_state)
		j->_state = J_DONE;
	if (next)
		*next = (weft_joinset_next){ .status = status, .id = id };
	return WEFT_READY;
}

WEFT_API weft_poll weft_joinset_join_next_poll(weft_joinset_join_next *j,
					       weft_cx *cx,
					       weft_joinset_next *next)
{
	weft_joinset_next got;
	bool empty;

	if (!j || !cx || !j->_set || !j->_state)
		return next_ready(NULL, next, -EINVAL, 0);
	if (j->_state == J_DONE)
		return next_ready(j, next, -EALREADY, 0);
	switch (take_next(j->_set, j->_value, &got, cx, POLL_BUDGET, &empty)) {
	case TAKE_GOT:
		return next_ready(j, next, got.status, got.id);
	case TAKE_BUDGET:
		/* More new entries to look at: let other tasks run first. */
		weft_waker_wake_by_ref(cx->waker);
		return WEFT_PENDING;
	default:
		if (empty)
			return next_ready(j, next, -ENOENT, 0);
		return WEFT_PENDING;
	}
}

WEFT_API void weft_joinset_join_next_drop(weft_joinset_join_next *j)
{
	weft_waker old;

	if (!j || j->_state != J_IDLE) {
		if (j && j->_state)
			j->_state = J_DONE;
		return;
	}
	/* The one poller: a waker in the slot is this future's. */
	pthread_mutex_lock(&j->_set->lock);
	old = j->_set->waker;
	j->_set->waker = WEFT_WAKER_EMPTY;
	pthread_mutex_unlock(&j->_set->lock);
	weft_waker_drop(&old);
	j->_state = J_DONE;
}

static weft_poll join_next_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_joinset_join_next_poll(self, cx, out);
}

static void join_next_desc_drop(void *self)
{
	weft_joinset_join_next_drop(self);
}

WEFT_API const weft_future_desc weft_joinset_join_next_desc = {
	.poll = join_next_desc_poll,
	.drop = join_next_desc_drop,
	.size = sizeof(weft_joinset_join_next),
	.output_size = sizeof(weft_joinset_next),
};

WEFT_API int weft_joinset_join_next_blocking(weft_joinset *set,
					     weft_joinset_next *next,
					     void *value)
{
	weft_joinset_join_next j;

	if (!set || !next)
		return -EINVAL;
	weft_joinset_join_next_init(&j, set, value);
	return weft__block_poll(&weft_joinset_join_next_desc, &j, next);
}
