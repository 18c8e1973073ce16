/* SPDX-License-Identifier: MIT */
/*
 * What a task can ask about itself while it runs: its name and its
 * task-local values (Tokio's task_local!). The name is
 * copied at spawn; the table of values is allocated at the first set
 * (task.h), so a task that uses neither pays two NULL stores.
 *
 * The current task is a thread-local pointer that weft__task_run sets
 * around each poll and each drop of a future. The values are per task,
 * not per thread: a task that migrates to another worker takes its table
 * with it, and only the worker running the task touches the table (a
 * task runs on one worker at a time, and the state word's RUNNING
 * transitions order one run after the previous one).
 *
 * The table is a small array searched linearly, keyed by the key's
 * address: a task holds a handful of values at most.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <weft/task.h>

#include "task/task.h"

WEFT__TLS struct weft__task *weft__task_current;

WEFT_API const char *weft_task_name(void)
{
	struct weft__task *t = weft__task_current;

	return t ? t->name : NULL;
}

static struct weft__local *find(struct weft__locals *ls,
				const weft_task_local_key *key)
{
	for (unsigned i = 0; ls && i < ls->n; i++)
		if (ls->slot[i].key == key)
			return &ls->slot[i];
	return NULL;
}

WEFT_API void *weft_task_local_get(const weft_task_local_key *key)
{
	struct weft__task *t = weft__task_current;
	struct weft__local *l;

	if (!t || !key)
		return NULL;
	l = find(t->locals, key);
	return l ? l->value : NULL;
}

/* Room for one more value in @t's table: allocate or grow it. 0 or
 * -ENOMEM (the table unchanged). */
static int reserve(struct weft__task *t)
{
	struct weft__locals *ls = t->locals;

	if (ls && ls->n < ls->cap)
		return 0;
	unsigned cap = ls ? 2 * ls->cap : 4;
	ls = realloc(ls, sizeof(*ls) + cap * sizeof(ls->slot[0]));
	if (!ls)
		return -ENOMEM;
	if (!t->locals)
		ls->n = 0;
	ls->cap = cap;
	t->locals = ls;
	return 0;
}

WEFT_API int weft_task_local_set(const weft_task_local_key *key, void *value)
{
	struct weft__task *t = weft__task_current;
	struct weft__local *l;

	if (!key)
		return -EINVAL;
	if (!t)
		return -EPERM;
	l = find(t->locals, key);
	if (l) {
		void *old = l->value;

		l->value = value;
		/* After the store: a destructor that reads the key sees the
		 * new value, never the one being destroyed. */
		if (old && old != value && key->destroy)
			key->destroy(old);
		return 0;
	}
	if (!value)
		return 0; /* nothing to store: absent reads as NULL */
	if (reserve(t))
		return -ENOMEM;
	t->locals->slot[t->locals->n++] = (struct weft__local){ key, value };
	return 0;
}

void weft__task_locals_destroy(struct weft__task *t)
{
	struct weft__locals *ls = t->locals;

	/* Detach first. The caller has cleared the current task, so a
	 * destructor cannot reach the table (set gives -EPERM, get NULL):
	 * each value is destroyed exactly once, whatever it does. */
	t->locals = NULL;
	for (unsigned i = 0; i < ls->n; i++)
		if (ls->slot[i].value && ls->slot[i].key->destroy)
			ls->slot[i].key->destroy(ls->slot[i].value);
	free(ls);
}
