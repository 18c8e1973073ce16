/* SPDX-License-Identifier: MIT */
/*
 * Streams: one op record that yields many completions (multishot accept
 * and recv, or their single-shot rungs submitted again after each one).
 *
 * The owner's reap queues each completion in the record (under its lock)
 * and wakes the stream's task; the task takes them in order with
 * weft__ms_poll_next. When the kernel ends the op (no IORING_CQE_F_MORE)
 * the record is submitted again (the kernel ended a multishot op, or the
 * rung is single-shot), starves (-ENOBUFS: no provided buffer was free;
 * the driver keeps a list and submits it again when buffers come back),
 * backs off (the kind asks for it: EMFILE on accept), or ends (anything
 * else: the stream's last result).
 *
 * References: the driver holds one while the record is armed, backing off,
 * starved or paused; the future holds one until its drop; a cancel holds
 * one (op.h), and so does a taker's resume request until the owner has
 * handled it. Dropping the future cancels the op on its owner's ring and
 * gives back what the queue still holds (fds closed, buffers returned).
 *
 * Pausing (a stream whose taker falls behind must not hold every buffer of
 * its worker's pool, nor keep the data out of the socket, where TCP would
 * push back on the sender): held counts the queued items that hold a
 * buffer. When the reap queues the one that makes held reach held_max
 * (weft_runtime_config.stream_buf_max), it sets paused under the lock and
 *   1. on a multishot op (IORING_CQE_F_MORE), cancels it (stopping);
 *      completions posted before the cancel took effect are still queued,
 *      in order (copied out of the pool: below);
 *   2. at the op's final CQE (an item on a single-shot rung, the cancel's
 *      -ECANCELED, or -ENOBUFS) does not submit it again: the record waits
 *      on the driver's paused list (PH_PAUSED).
 * A multishot op cannot be told to stop at a count: the kernel posts what
 * the socket holds, up to 32 buffers a pass and several passes between two
 * reaps (a burst took a whole pool of 64 in tests/net_stream_cap.c). So
 *   - a buffer that comes while held is at held_max is copied out to the
 *     heap and given back at once (spill; metric stream_spills): the pool
 *     never lends a stream more than held_max queued buffers;
 *   - a stream that had to cancel receives one buffer per SQE (single)
 *     while its taker is behind, so the copies stay rare, and goes back to
 *     multishot once a completion finds the rest of its queue taken. (It
 *     used to wait for the socket to be empty too, no
 *     IORING_CQE_F_SOCK_NONEMPTY: a bulk stream, whose socket always has
 *     a backlog, then stayed single-shot for good after one pause, and
 *     bench/peer-bench's 4 KiB pair fell from about 350k to 230k
 *     messages/s.)
 *   - the taker asks for a resume by queued items (count), spilled ones
 *     included, so the copies are bounded by one overshoot too.
 * The taker, in weft__ms_poll_next, clears paused once its queue is down
 * to held_max / 2 items and asks the owner to re-arm: directly on the owner's
 * thread, else through the driver's resumes inbox (resume_queued keeps the
 * entry in the stack once). The owner re-arms only a PAUSED record whose
 * paused is still clear; a final CQE that finds paused already clear
 * re-arms at once, and the request then finds the record armed and does
 * nothing. Either order submits the op once.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "io/bufpool.h"
#include "io/op.h"

static struct weft__op_ms *ms_of(struct weft__op *op)
{
	return &op->big[0].ms;
}

/* Under the lock: append an item. False: out of memory. */
static bool q_push(struct weft__op_ms *ms, int32_t res, int32_t bid,
		   void *heap)
{
	if (ms->count == ms->cap) {
		unsigned ncap = ms->cap ? ms->cap * 2 : 8;
		struct weft__ms_item *nq = malloc(ncap * sizeof(*nq));

		if (!nq)
			return false;
		for (unsigned i = 0; i < ms->count; i++)
			nq[i] = ms->q[(ms->head + i) % ms->cap];
		free(ms->q);
		ms->q = nq;
		ms->cap = ncap;
		ms->head = 0;
	}
	ms->q[(ms->head + ms->count) % ms->cap] =
		(struct weft__ms_item){ .res = res, .bid = bid, .heap = heap };
	ms->count++;
	return true;
}

/* Release what an item nobody will take holds. Any thread. */
static void discard(struct weft__op *op, int32_t res, int32_t bid,
		    void *heap)
{
	if (heap)
		free(heap);
	else if (bid >= 0)
		weft__bufpool_give(ms_of(op)->pool, bid);
	else if (res >= 0 && op->kind->discard_item)
		op->kind->discard_item(op, res);
}

/* Owner: nothing is in flight and nothing will be: drop the driver's
 * reference. */
static void end(struct weft__op *op)
{
	op->phase = WEFT__PH_ENDED;
	weft__op_unref(op);
}

static struct weft__op *op_of_ms(struct weft__op_ms *ms)
{
	return (struct weft__op *)((char *)ms - offsetof(struct weft__op, big));
}

/* Owner: the driver's starved and paused lists. */
static void list_push(struct weft__op **head, struct weft__op *op)
{
	ms_of(op)->next = *head;
	ms_of(op)->prev = NULL;
	if (*head)
		ms_of(*head)->prev = op;
	*head = op;
}

static void list_unlink(struct weft__op **head, struct weft__op *op)
{
	struct weft__op_ms *ms = ms_of(op);

	if (ms->prev)
		ms_of(ms->prev)->next = ms->next;
	else
		*head = ms->next;
	if (ms->next)
		ms_of(ms->next)->prev = ms->prev;
	ms->prev = ms->next = NULL;
}

static void starved_unlink(struct weft__driver *d, struct weft__op *op)
{
	list_unlink(&d->starved, op);
	if (!d->starved && d->pool)
		atomic_store_explicit(&d->pool->starving, false,
				      memory_order_relaxed);
}

/* Owner: @op stops receiving until its taker catches up. */
static void pause_stream(struct weft__driver *d, struct weft__op *op)
{
	op->phase = WEFT__PH_PAUSED;
	list_push(&d->paused, op);
}

static void rearm(struct weft__driver *d, struct weft__op *op);

/* Owner: no buffer was free for @op. Wait on the driver's list unless
 * buffers came back meanwhile. */
void weft__ms_starve(struct weft__driver *d, struct weft__op *op)
{
	struct weft__bufpool *p = ms_of(op)->pool;

	WEFT__DRV_INC(d, bufring_enobufs);
	op->phase = WEFT__PH_STARVED;
	list_push(&d->starved, op);
	/* seq_cst: the store before the drain's look at the stack, against
	 * a giver's push before its load (bufpool.h). */
	atomic_store_explicit(&p->starving, true, memory_order_seq_cst);
	weft__bufpool_drain(p); /* submits the starved if it took any */
	if (op->phase == WEFT__PH_STARVED && weft__bufpool_has_free(p)) {
		starved_unlink(d, op);
		rearm(d, op);
	}
}

/* Set the stream's last result and wake it. */
static void finish(struct weft__op *op, int32_t res)
{
	struct weft__op_ms *ms = ms_of(op);
	weft_waker w = WEFT_WAKER_EMPTY;

	weft__spin_lock(&op->lock);
	if (!ms->ended) {
		ms->ended = true;
		ms->end_res = res;
	}
	w = op->waker;
	op->waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&op->lock);
	weft_waker_wake(&w);
}

/* Owner: submit @op again; it is neither armed nor backing off. */
static void rearm(struct weft__driver *d, struct weft__op *op)
{
	if (weft__op_is_orphaned(op)) {
		end(op);
		return;
	}
	int err = weft__op_resubmit(d, op);
	if (!err) {
		WEFT__DRV_INC(d, multishot_rearms);
		return;
	}
	if (err == -ENOBUFS) {
		weft__ms_starve(d, op);
		return;
	}
	finish(op, err);
	end(op);
}

void weft__ms_rearm_starved(struct weft__driver *d)
{
	struct weft__op *list = d->starved;

	d->starved = NULL;
	if (d->pool)
		atomic_store_explicit(&d->pool->starving, false,
				      memory_order_relaxed);
	while (list) {
		struct weft__op *op = list;

		list = ms_of(op)->next;
		if (list)
			ms_of(list)->prev = NULL;
		ms_of(op)->next = NULL;
		op->phase = WEFT__PH_ARMED;
		rearm(d, op); /* may starve again, onto the new list */
	}
}

/* Owner: a taker asked to re-arm @op (the request's reference comes with
 * it). */
static void resume(struct weft__driver *d, struct weft__op *op)
{
	struct weft__op_ms *ms = ms_of(op);
	bool go;

	weft__spin_lock(&op->lock);
	ms->resume_queued = false;
	go = !ms->paused; /* else paused again since the request */
	weft__spin_unlock(&op->lock);
	if (go && op->phase == WEFT__PH_PAUSED) {
		list_unlink(&d->paused, op);
		op->phase = WEFT__PH_ARMED;
		rearm(d, op); /* ends it instead if it was dropped */
	}
	weft__op_unref(op);
}

void weft__ms_resume_all(struct weft__driver *d)
{
	ck_stack_entry_t *e = weft__inbox_take_all(&d->resumes);

	while (e) {
		ck_stack_entry_t *next = e->next;

		resume(d, op_of_ms(weft__container_of(
			       e, struct weft__op_ms, resume_entry)));
		e = next;
	}
}

/* Any thread, the taker: held fell to the low mark; have the owner submit
 * @op again. */
static void request_resume(struct weft__op *op)
{
	struct weft__driver *d = weft__driver_current();

	weft__op_ref(op); /* the request's */
	if (d == op->owner) {
		resume(d, op);
		return;
	}
	weft__inbox_push(&op->owner->resumes, &ms_of(op)->resume_entry);
	weft__driver_unpark(op->owner);
}

void weft__ms_exit(struct weft__driver *d)
{
	while (d->starved) {
		struct weft__op *op = d->starved;

		starved_unlink(d, op);
		finish(op, -ECANCELED);
		end(op);
	}
	while (d->paused) {
		struct weft__op *op = d->paused;

		list_unlink(&d->paused, op);
		finish(op, -ECANCELED); /* after what it queued */
		end(op);
	}
	weft__ms_resume_all(d); /* only releases: nothing is paused now */
}

bool weft__ms_cancel_idle(struct weft__driver *d, struct weft__op *op)
{
	if (op->phase == WEFT__PH_STARVED) {
		starved_unlink(d, op);
		end(op);
		return true;
	}
	if (op->phase == WEFT__PH_PAUSED) {
		list_unlink(&d->paused, op);
		end(op);
		return true;
	}
	return op->phase == WEFT__PH_ENDED;
}

/*
 * Owner: buffer @bid came for @op, which already holds its cap (the
 * multishot op's completions before its cancel took effect): copy its
 * @res bytes out and give the buffer back to the pool, so the stream
 * never keeps more than held_max of them. NULL: under the cap, or out of
 * memory (then the buffer is kept: nothing is lost).
 */
static void *spill(struct weft__op *op, int32_t res, int32_t bid)
{
	struct weft__op_ms *ms = ms_of(op);
	bool over;
	void *heap;

	if (!ms->held_max)
		return NULL;
	weft__spin_lock(&op->lock);
	over = ms->held >= ms->held_max;
	weft__spin_unlock(&op->lock);
	if (!over || !(heap = malloc(res > 0 ? (size_t)res : 1)))
		return NULL;
	memcpy(heap, weft__bufpool_data(ms->pool, bid), (size_t)res);
	weft__bufpool_give(ms->pool, bid);
	WEFT__DRV_INC(op->owner, stream_spills);
	return heap;
}

/* What to do once a CQE without IORING_CQE_F_MORE is handled. */
enum next { KEEP, REARM, STARVE, BACKOFF, PAUSE, END };

void weft__ms_complete(struct weft__driver *d, struct weft__op *op,
		       int32_t res, uint32_t cflags)
{
	struct weft__op_ms *ms = ms_of(op);
	bool more = cflags & IORING_CQE_F_MORE;
	int32_t bid = -1;
	enum next next = KEEP;
	weft_waker w = WEFT_WAKER_EMPTY;

	if (op->phase == WEFT__PH_BACKOFF) { /* the wait after EMFILE */
		d->ring.inflight--;
		op->phase = WEFT__PH_ARMED;
		if (res == -ETIME)
			rearm(d, op);
		else
			end(op); /* cancelled: dropped while it waited */
		return;
	}
	if (!more)
		d->ring.inflight--;
	if (cflags & IORING_CQE_F_BUFFER) {
		bid = (int32_t)(cflags >> IORING_CQE_BUFFER_SHIFT);
		weft__bufpool_taken(ms->pool);
	} else if (!more && ms->armed_bid >= 0) { /* the plain rung's */
		bid = ms->armed_bid;
		ms->armed_bid = -1;
	}
	bool item = res > 0 || (res == 0 && !op->kind->zero_ends);

	if (item && bid >= 0 && op->kind->fixup)
		res = op->kind->fixup(op, res, bid, more);
	void *heap = item && bid >= 0 ? spill(op, res, bid) : NULL;
	if (heap)
		bid = -1; /* given back: the bytes are in heap now */

	weft__spin_lock(&op->lock);
	if (op->orphaned || ms->ended) { /* nobody takes it */
		weft__spin_unlock(&op->lock);
		if (item)
			discard(op, res, bid, heap);
		else if (bid >= 0)
			weft__bufpool_give(ms->pool, bid);
		if (!more)
			end(op);
		return;
	}
	if (item)
		op->retry_ms = 0; /* a backoff starts over */
	bool stop = false; /* this item makes the stream pause */
	if (item && !q_push(ms, res, bid, heap)) {
		/* Out of memory: the stream ends here, the item is released
		 * and the kernel's op (if it goes on) is cancelled. */
		ms->ended = true;
		ms->end_res = -ENOMEM;
		w = op->waker;
		op->waker = WEFT_WAKER_EMPTY;
		weft__spin_unlock(&op->lock);
		weft_waker_wake(&w);
		discard(op, res, bid, heap);
		if (more) {
			weft__op_ref(op); /* the cancel's */
			weft__op_submit_cancel(d, op);
		} else {
			end(op);
		}
		return;
	}
	if (item && bid >= 0 && ++ms->held >= ms->held_max && ms->held_max &&
	    !ms->paused) {
		ms->paused = true; /* the taker fell behind */
		stop = true;
	}
	if (!more) {
		if (item || (res < 0 && op->kind->transient &&
			     op->kind->transient(res)))
			next = REARM;
		else if (res == -ENOBUFS && ms->pool)
			next = STARVE;
		else if (res == -ECANCELED && ms->stopping)
			next = REARM; /* our pause's cancel, not an end */
		else if (res < 0 && op->kind->backoff &&
			 (op->retry_ms = op->kind->backoff(op, res)))
			next = BACKOFF;
		else
			next = END;
		if ((next == REARM || next == STARVE) && ms->paused)
			next = PAUSE;
		if (next == END && !ms->ended) {
			ms->ended = true;
			ms->end_res = res;
		}
		/* After fixup, which reads the mode of the op that ended. */
		if (ms->stopping)
			ms->single = true;
		else if (item && ms->count <= 1 && !ms->paused)
			ms->single = false; /* the taker had taken the rest
					     * and the socket is empty */
		ms->stopping = false;
	}
	if (item || next == END) {
		w = op->waker;
		op->waker = WEFT_WAKER_EMPTY;
	}
	weft__spin_unlock(&op->lock);
	weft_waker_wake(&w);
	if (!item && bid >= 0) /* end of file or an error on the plain rung */
		weft__bufpool_give(ms->pool, bid);
	if (stop)
		WEFT__DRV_INC(d, stream_pauses);
	if (stop && more) {
		/* Its CQEs go on until the cancel is done; the final one
		 * pauses the record (or re-arms it, were the taker quick). */
		ms->stopping = true;
		weft__op_ref(op); /* the cancel's */
		weft__op_submit_cancel(d, op);
	}

	switch (next) {
	case KEEP:
		break;
	case PAUSE:
		pause_stream(d, op);
		break;
	case REARM:
		rearm(d, op);
		break;
	case STARVE:
		weft__ms_starve(d, op);
		break;
	case BACKOFF:
		if (weft__op_start_backoff(d, op, op->retry_ms))
			break;
		end(op); /* orphaned meanwhile */
		break;
	case END:
		end(op);
		break;
	}
}

weft_poll weft__ms_poll_next(weft_io *io, weft_cx *cx, int32_t *res,
			     int32_t *bid, void **heap)
{
	*bid = -1;
	*heap = NULL;
	if (io->_magic != WEFT__IO_MAGIC || io->_done) {
		*res = -EINVAL;
		return WEFT_READY;
	}
	if (!io->_kind) { /* the prep failed */
		*res = io->_fd;
		return WEFT_READY;
	}
	if (!weft__io_in_flight(io)) {
		int err;

		if (weft__op_start(io, cx, &err))
			return WEFT_PENDING;
		weft__io_prep_fail(io, err); /* every later call returns it */
		*res = err;
		return WEFT_READY;
	}
	struct weft__op *op = io->_op;
	struct weft__op_ms *ms = ms_of(op);
	weft_waker old = WEFT_WAKER_EMPTY;

	weft__spin_lock(&op->lock);
	if (ms->count) {
		struct weft__ms_item it = ms->q[ms->head];
		bool ask = false;

		ms->head = (ms->head + 1) % ms->cap;
		ms->count--;
		if (it.bid >= 0)
			ms->held--;
		/* The items count, not held: spilled ones hold memory too. */
		if (ms->paused && ms->count <= ms->held_max / 2) {
			ms->paused = false;
			ask = !ms->resume_queued; /* else one is on its way */
			ms->resume_queued = true;
		}
		weft__spin_unlock(&op->lock);
		if (ask)
			request_resume(op);
		*res = it.res;
		*bid = it.bid;
		*heap = it.heap;
		return WEFT_READY;
	}
	if (ms->ended) {
		*res = ms->end_res;
		weft__spin_unlock(&op->lock);
		return WEFT_READY;
	}
	old = weft__waker_store(&op->waker, cx->waker);
	weft__spin_unlock(&op->lock);
	weft_waker_drop(&old);
	return WEFT_PENDING;
}

void weft__ms_drop(weft_io *io)
{
	struct weft__op *op = io->_op;
	struct weft__op_ms *ms = ms_of(op);
	struct weft__ms_item *q;
	unsigned head, count, cap;
	weft_waker w;

	weft__io_set_op(io, NULL);
	io->_done = 1;
	weft__spin_lock(&op->lock);
	op->orphaned = true;
	q = ms->q;
	head = ms->head;
	count = ms->count;
	cap = ms->cap;
	ms->count = 0;
	ms->held = 0;
	w = op->waker;
	op->waker = WEFT_WAKER_EMPTY;
	weft__spin_unlock(&op->lock);
	weft_waker_drop(&w);
	/* The owner pushes no more once it sees orphaned; q stays ours to
	 * read (it is replaced only by a push). */
	for (unsigned i = 0; i < count; i++) {
		struct weft__ms_item it = q[(head + i) % cap];

		discard(op, it.res, it.bid, it.heap);
	}
	weft__op_cancel(op);
	weft__op_unref(op);
}

int weft__ms_attach_pool(struct weft__op *op, int fd)
{
	struct weft__bufpool *p = weft__bufpool_get(op->owner);

	if (!p)
		return -ENOMEM;
	weft__bufpool_ref(p);
	op->big[0].ms.pool = p;
	op->big[0].ms.held_max = op->owner->stream_buf_max;
	op->big[0].ms.armed_bid = -1;
	op->target = fd;
	return 0;
}

void weft__ms_free(struct weft__op *op)
{
	struct weft__op_ms *ms = ms_of(op);

	free(ms->q);
	if (ms->pool)
		weft__bufpool_unref(ms->pool);
}
