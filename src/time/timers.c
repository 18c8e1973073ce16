/* SPDX-License-Identifier: MIT */
/* A worker's timers; the lifetime rule is in timers.h. */
#include <stdlib.h>

#include <weft/time.h>

#include "time/timers.h"

/* 56 bytes: with malloc's 8-byte header, one 64-byte chunk per timer. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct weft__timer) <= 56,
	       "a timer fits a 64-byte malloc chunk");
_Static_assert(WEFT_TIMER_TICK_NS == (1u << WEFT__TICK_SHIFT),
	       "the public tick is the wheel's");

static WEFT__TLS struct weft__timers *tls_timers;

struct weft__timers *weft__timers_current(void)
{
	return tls_timers;
}

static uint64_t tick_to_ns(uint64_t tick)
{
	return tick >= (UINT64_MAX >> WEFT__TICK_SHIFT)
		       ? UINT64_MAX
		       : tick << WEFT__TICK_SHIFT;
}

void weft__timers_init(struct weft__timers *t, struct weft__driver *d)
{
	weft__wheel_init(&t->wheel, weft__wheel_tick_floor(weft_now_ns()));
	t->next_ns = UINT64_MAX;
	t->driver = d;
	weft__inbox_init(&t->inbox);
	tls_timers = t;
}

void weft__timers_leave(struct weft__timers *t)
{
	if (tls_timers == t)
		tls_timers = NULL;
}

static struct weft__timer *from_node(struct weft__wheel_node *n)
{
	return (struct weft__timer *)n; /* node is the first member */
}

/* Owner: free the timers other threads released. */
static void drain_inbox(struct weft__timers *t)
{
	ck_stack_entry_t *e = weft__inbox_take_all(&t->inbox);

	while (e) {
		ck_stack_entry_t *next = e->next;
		struct weft__timer *tm =
			weft__container_of(e, struct weft__timer, inbox_entry);

		/* The releaser took the waker; fired or not, it is ours. */
		if (tm->node.pprev)
			weft__wheel_remove(&t->wheel, &tm->node);
		free(tm);
		e = next;
	}
}

void weft__timers_exit(struct weft__timers *t)
{
	struct weft__wheel_node *n;

	drain_inbox(t);
	weft__wheel_advance(&t->wheel, WEFT__WHEEL_MAX_TICK);
	while ((n = weft__wheel_pop_expired(&t->wheel))) {
		struct weft__timer *tm = from_node(n);

		weft_waker_drop(&tm->waker);
		free(tm);
	}
}

unsigned weft__timers_process(struct weft__timers *t, unsigned budget)
{
	struct weft__wheel_node *n;
	unsigned woke = 0;

	if (weft__timers_has_inbox(t))
		drain_inbox(t);
	if (t->next_ns == UINT64_MAX)
		return 0;
	uint64_t now = weft_now_ns();
	if (now < t->next_ns)
		return 0;

	weft__wheel_advance(&t->wheel, weft__wheel_tick_floor(now));
	while (woke < budget && (n = weft__wheel_pop_expired(&t->wheel))) {
		struct weft__timer *tm = from_node(n);
		weft_waker w;

		weft__spin_lock(&tm->lock);
		tm->fired = true;
		w = tm->waker;
		tm->waker = WEFT_WAKER_EMPTY;
		/* Released already: the releaser took the waker and the
		 * inbox frees the timer. Nothing here touches it again. */
		weft__spin_unlock(&tm->lock);
		if (w.vtable) {
			weft_waker_wake(&w);
			woke++;
		}
	}
	/* "Now" while expired timers wait for room. */
	t->next_ns = tick_to_ns(weft__wheel_next(&t->wheel));
	return woke;
}

uint64_t weft__timers_park_timeout(struct weft__timers *t)
{
	if (t->next_ns == UINT64_MAX)
		return UINT64_MAX;
	uint64_t now = weft_now_ns();
	return now >= t->next_ns ? 0 : t->next_ns - now;
}

struct weft__timer *weft__timer_arm(struct weft__timers *t,
				    uint64_t deadline_ns,
				    const weft_waker *waker)
{
	struct weft__timer *tm = malloc(sizeof(*tm));

	if (!tm)
		return NULL;
	weft__spin_init(&tm->lock);
	tm->fired = false;
	tm->waker = weft_waker_clone(waker);
	/* Against elapsed, not the clock: a worker that has not processed
	 * for a while files it behind and fires it at its next process. */
	uint64_t when = weft__wheel_tick_ceil(deadline_ns);
	if (when <= t->wheel.elapsed)
		when = t->wheel.elapsed + 1; /* due at the next process */
	uint64_t at = tick_to_ns(weft__wheel_insert(&t->wheel, &tm->node,
						    when));
	if (at < t->next_ns)
		t->next_ns = at;
	return tm;
}

bool weft__timer_poll(struct weft__timers *owner, struct weft__timer *tm,
		      const weft_waker *waker)
{
	weft_waker old = WEFT_WAKER_EMPTY;
	bool fired;

	if (owner == tls_timers) {
		/* Only this thread writes the timer now (timers.h). */
		if (tm->fired)
			return true;
		old = weft__waker_store(&tm->waker, waker);
		weft_waker_drop(&old);
		return false;
	}
	weft__spin_lock(&tm->lock);
	fired = tm->fired;
	if (!fired)
		old = weft__waker_store(&tm->waker, waker);
	weft__spin_unlock(&tm->lock);
	/* Dropping may free a task: not under the spinlock. */
	weft_waker_drop(&old);
	return fired;
}

void weft__timer_release(struct weft__timers *owner, struct weft__timer *tm)
{
	weft_waker old;

	if (owner == tls_timers) {
		if (tm->node.pprev)
			weft__wheel_remove(&owner->wheel, &tm->node);
		weft_waker_drop(&tm->waker);
		free(tm);
		return;
	}
	weft__spin_lock(&tm->lock);
	bool fired = tm->fired;
	old = tm->waker;
	tm->waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&tm->lock);
	weft_waker_drop(&old);
	if (fired) { /* the owner is done with it */
		free(tm);
		return;
	}
	/* Only the owner may unfile it. The unpark makes a parked owner
	 * free it now rather than at its next deadline. */
	weft__inbox_push(&owner->inbox, &tm->inbox_entry);
	weft__driver_unpark(owner->driver);
}
