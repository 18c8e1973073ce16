/* SPDX-License-Identifier: MIT */
/*
 * Time: the monotonic clock, sleeps, timeouts on any future, and intervals.
 * Durations and deadlines are nanoseconds on CLOCK_MONOTONIC.
 *
 * Timers live in a per-worker hierarchical timer wheel (docs/time.md):
 * arming, cancelling and firing one is O(1) and costs no SQE; each worker
 * arms one kernel timeout, for its earliest deadline, as the timeout of its
 * park. Resolution: WEFT_TIMER_TICK_NS. A timer never fires before its
 * deadline; it fires at the first wheel tick at or after it, so it is late
 * by less than one tick plus the time its worker takes to wake and reach
 * it (the kernel's timer slack, 50 us by default, and any task running on
 * that worker).
 *
 * NULL: see weft/core.h.
 */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <weft/future.h>
#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Timer wheel resolution: one tick, in ns (2^16 ns = 65.536 us). */
#define WEFT_TIMER_TICK_NS 65536u

/** CLOCK_MONOTONIC now, in ns. Thread-safe. */
WEFT_API uint64_t weft_now_ns(void);

/**
 * Prepare @io as a sleep of @ns nanoseconds from now (the deadline is
 * taken at this call; a deadline past UINT64_MAX saturates). Poll with
 * weft_io_poll(): READY with 0 once CLOCK_MONOTONIC has reached the
 * deadline (never earlier). The first poll arms a timer on the polling
 * worker's wheel, unless the deadline has already passed (then it is READY
 * at once and allocates nothing); dropping it disarms the timer, from any
 * thread. A timer costs 64 bytes (one allocation of 56) beyond the task.
 *
 * Like every weft_io, it must be polled on a worker: off a worker the poll
 * gives -EPERM, and -ENOMEM when no timer could be allocated. Returns 0,
 * -EINVAL for NULL @io, or -EBUSY (an op of @io is in flight).
 */
WEFT_API int weft_io_prep_sleep(weft_io *io, uint64_t ns);

/** As weft_io_prep_sleep(), to an absolute CLOCK_MONOTONIC deadline in ns. */
WEFT_API int weft_io_prep_sleep_until(weft_io *io, uint64_t deadline_ns);

/**
 * weft_timeout: run a future with a deadline (Tokio's time::timeout).
 * A select of the inner future and a sleep, the inner future first, so an
 * inner future that is ready by the time the deadline is noticed wins.
 * When the deadline wins the inner future is dropped at once (an op in
 * flight is cancelled; nothing leaks). The state is about 300 bytes; its
 * fields are private.
 */
typedef struct weft_timeout {
	weft_future _inner;
	uint64_t _deadline;
	unsigned _state;
	int _result;
	int64_t _sleep_res;
	weft_io _sleep;
	weft_future _arms[2];
	weft_select _select;
} weft_timeout;

/**
 * Prepare @t to run @inner (copied: descriptor, state and output pointers;
 * the state and output it names are borrowed and must outlive @t and not
 * move) for at most @ns from now (the deadline is taken at this call).
 * Returns 0, or -EINVAL (NULL @t or @inner, @inner without descriptor).
 */
WEFT_API int weft_timeout_init(weft_timeout *t, const weft_future *inner,
			       uint64_t ns);

/** As weft_timeout_init(), to an absolute CLOCK_MONOTONIC deadline in ns. */
WEFT_API int weft_timeout_init_until(weft_timeout *t,
				     const weft_future *inner,
				     uint64_t deadline_ns);

/**
 * Poll the inner future, then the deadline. READY with *@res = 0 when the
 * inner future finished (its output is in its out), or -ETIMEDOUT when the
 * deadline passed first (the inner future has been dropped), or the
 * sleep's error (-EPERM off a worker, -ENOMEM). @res may be NULL.
 * Must be polled from a worker; @t must not move from the first poll on.
 * NULL or unprepared @t: READY with -EINVAL.
 */
WEFT_API weft_poll weft_timeout_poll(weft_timeout *t, weft_cx *cx, int *res);

/** Drop the inner future and the timer unless already done. NULL is
 * accepted. */
WEFT_API void weft_timeout_drop(weft_timeout *t);

/** weft_timeout as a generic future: state weft_timeout, output int. */
WEFT_API extern const weft_future_desc weft_timeout_desc;

/**
 * What an interval does when a tick is missed, i.e. when a tick completes
 * so late that the next one is already due (Tokio's MissedTickBehavior).
 * With period P, a tick scheduled at D completing at time N >= D + P:
 */
typedef enum weft_missed_tick {
	/** Keep the schedule: the next ticks are D + P, D + 2P, ..., each
	 * ready at once until the interval has caught up (Tokio's default). */
	WEFT_MISSED_BURST = 0,
	/** Restart from now: the next tick is N + P, and the ones after it
	 * follow every P from there. */
	WEFT_MISSED_DELAY = 1,
	/** Keep the phase, drop the missed ticks: the next tick is the first
	 * D + kP after N. */
	WEFT_MISSED_SKIP = 2,
} weft_missed_tick;

/** An interval (Tokio's time::Interval). Fields are private. */
typedef struct weft_interval {
	uint64_t _period;
	uint64_t _next;
	uint32_t _mode;
	uint32_t _magic;
	weft_io _sleep;
} weft_interval;

/**
 * Prepare @iv to tick every @period_ns, the first tick at @start_ns
 * (weft_now_ns() for a first tick that is ready at once, as Tokio's
 * interval()). @mode: see weft_missed_tick. Returns 0, or -EINVAL (NULL
 * @iv, @period_ns of 0, an unknown @mode), or -EBUSY while a tick of @iv
 * is pending (drop it first).
 */
WEFT_API int weft_interval_init(weft_interval *iv, uint64_t start_ns,
				uint64_t period_ns, weft_missed_tick mode);

/**
 * Wait for the next tick. READY with *@deadline (may be NULL) = the time
 * the tick was scheduled for (ns), or with a negative errno in its place
 * when the sleep failed (-EPERM off a worker, -ENOMEM; the schedule is
 * unchanged and the next call retries). Then the schedule moves on by one
 * period, or as @mode says when the tick was missed. Must be polled from a
 * worker. NULL or unprepared @iv: READY with -EINVAL.
 */
WEFT_API weft_poll weft_interval_tick(weft_interval *iv, weft_cx *cx,
				      int64_t *deadline);

/** The next tick one period from now; a pending wait is re-armed on the
 * next poll (Tokio's Interval::reset). 0 or -EINVAL. */
WEFT_API int weft_interval_reset(weft_interval *iv);

/** Cancel a pending wait; the schedule is kept, so the interval can tick
 * again later. NULL is accepted. */
WEFT_API void weft_interval_drop(weft_interval *iv);

/**
 * The next tick as a generic future: state weft_interval, output int64_t
 * (the @deadline of weft_interval_tick). Its drop cancels the pending wait
 * only (weft_interval_drop), so a loop may build one per tick.
 */
WEFT_API extern const weft_future_desc weft_interval_tick_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TIME_H */
