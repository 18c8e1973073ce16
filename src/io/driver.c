/* SPDX-License-Identifier: MIT */
/* The io driver; the protocol is in driver.h. C11 atomics. */
#include <errno.h>
#include <string.h>

#include "io/driver.h"
#include "io/bufpool.h"
#include "io/op.h"

static WEFT__TLS struct weft__driver *tls_driver;

struct weft__driver *weft__driver_current(void)
{
	return tls_driver;
}

void weft__driver_prepare(struct weft__driver *d)
{
	memset(&d->ring, 0, sizeof(d->ring));
	d->ring.eventfd = -1;
	weft__inbox_init(&d->inbox);
	weft__inbox_init(&d->resumes);
	atomic_init(&d->park_state, WEFT__DRV_RUNNING);
	atomic_init(&d->m.ops_submitted, 0);
	atomic_init(&d->m.ops_completed, 0);
	atomic_init(&d->m.remote_cancels, 0);
	atomic_init(&d->m.unparks, 0);
	atomic_init(&d->m.accept_backoffs, 0);
	atomic_init(&d->m.multishot_rearms, 0);
	atomic_init(&d->m.bufring_enobufs, 0);
	atomic_init(&d->m.stream_pauses, 0);
	atomic_init(&d->m.stream_spills, 0);
	d->pool = NULL;
	d->starved = NULL;
	d->paused = NULL;
}

int weft__driver_init(struct weft__driver *d, unsigned entries,
		      unsigned flags, unsigned *mode_out)
{
	int err = weft__ring_init(&d->ring, entries, flags, mode_out);

	if (!err)
		tls_driver = d;
	return err;
}

void weft__driver_leave(struct weft__driver *d)
{
	weft__ms_exit(d);
	if (tls_driver == d)
		tls_driver = NULL;
}

void weft__driver_exit(struct weft__driver *d)
{
	weft__bufpool_close(d);
	if (d->ring.uring.ring_fd > 0)
		weft__ring_exit(&d->ring);
	weft__bufpool_exit(d); /* after the ring let go of its buffers */
}

unsigned weft__driver_reap(struct weft__driver *d)
{
	struct io_uring *ring = &d->ring.uring;
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(ring, head, cqe) {
		uint64_t ud = cqe->user_data;

		n++;
		if (ud < WEFT__UD_TAG_MAX) {
			if (ud == WEFT__UD_EVENTFD)
				d->ring.efd_armed = false;
			continue;
		}
		struct weft__op *op = (struct weft__op *)(uintptr_t)(
			ud & ~WEFT__UD_FLAGS);
		if (ud & WEFT__UD_CANCEL)
			weft__op_cancel_done(d, op);
		else if (ud & WEFT__UD_LINK)
			weft__op_link_done(d, op);
		else
			weft__op_complete(d, op, cqe->res, cqe->flags);
	}
	io_uring_cq_advance(ring, n);
	return n;
}

bool weft__driver_turn(struct weft__driver *d)
{
	if (!weft__inbox_is_empty(&d->inbox)) {
		ck_stack_entry_t *e = weft__inbox_take_all(&d->inbox);
		while (e) {
			ck_stack_entry_t *next = e->next;
			/* The pusher took the cancel reference for us. */
			weft__op_submit_cancel(d, (struct weft__op *)e);
			e = next;
		}
	}
	if (!weft__inbox_is_empty(&d->resumes))
		weft__ms_resume_all(d);
	if (d->pool && weft__bufpool_has_remote(d->pool))
		weft__bufpool_drain(d->pool);
	if (d->ring.unsubmitted || d->ring.inflight)
		weft__ring_flush(&d->ring);
	return weft__driver_reap(d) > 0;
}

bool weft__driver_is_idle(struct weft__driver *d)
{
	return d->ring.inflight == 0 && !weft__driver_has_inbox(d);
}

bool weft__driver_park_begin(struct weft__driver *d)
{
	int expected = WEFT__DRV_RUNNING;

	/* seq_cst: orders this store before the caller's scan of the run
	 * queues (sched/idle.h), against unpark's exchange, which follows
	 * the unparker's publication of work or of a cancel. */
	if (atomic_compare_exchange_strong_explicit(
		    &d->park_state, &expected, WEFT__DRV_PARKED,
		    memory_order_seq_cst, memory_order_seq_cst))
		return true;
	/* NOTIFIED: an unpark came while we ran; consume it. */
	atomic_store_explicit(&d->park_state, WEFT__DRV_RUNNING,
			      memory_order_relaxed);
	return false;
}

void weft__driver_park_abort(struct weft__driver *d)
{
	/* seq_cst: a later unpark's exchange must see RUNNING (and send
	 * nothing) only after our decision not to sleep. */
	atomic_store_explicit(&d->park_state, WEFT__DRV_RUNNING,
			      memory_order_seq_cst);
}

void weft__driver_park(struct weft__driver *d, uint64_t timeout_ns)
{
	weft__ring_arm_eventfd(&d->ring);
	weft__ring_wait(&d->ring, timeout_ns);
	/* seq_cst: as in park_abort. */
	atomic_store_explicit(&d->park_state, WEFT__DRV_RUNNING,
			      memory_order_seq_cst);
	weft__driver_reap(d);
}

void weft__driver_unpark(struct weft__driver *d)
{
	/* seq_cst: the caller's write of what the owner should see (inbox
	 * push, shutdown flag, queued work) is ordered before this exchange,
	 * and the owner's CAS to PARKED precedes its final scan. */
	int prev = atomic_exchange_explicit(&d->park_state, WEFT__DRV_NOTIFIED,
					    memory_order_seq_cst);
	if (prev != WEFT__DRV_PARKED)
		return; /* running: it sees NOTIFIED before it next parks */

	struct weft__driver *self = tls_driver;
	if (self == d)
		return;
	if (self)
		weft__ring_msg(&self->ring, weft__ring_fd(&d->ring));
	else
		weft__ring_signal_eventfd(&d->ring);
	atomic_fetch_add_explicit(&d->m.unparks, 1, memory_order_relaxed);
}
