/* SPDX-License-Identifier: MIT */
/*
 * A watch channel (Tokio's sync::watch): one sender publishes a value,
 * any number of receivers read the latest one and can wait for the next
 * change. Intermediate values may be skipped: a receiver sees the value
 * current when it looks, never a queue of them (configuration reloads,
 * a shutdown flag, a status).
 *
 * The channel holds one value of value_size bytes and a version that
 * every store increments. Each receiver remembers the version it has
 * seen: weft_watch_borrow_and_update() and a weft_watch_changed future
 * mark the current version seen; weft_watch_borrow() does not. A new
 * receiver (from weft_watch_new or weft_watch_tx_subscribe) has seen the
 * current value; a clone has seen what its original had.
 *
 * Ownership of values. Values are copied in and out by size, under the
 * channel's lock, so a reader never sees a half-written value. To share a
 * large object send a pointer (value_size = sizeof(void *)): the channel
 * neither dereferences nor frees it. Receivers that copied it out hold no
 * reference, so the sender must keep an object valid while any receiver
 * may still use it; weft_watch_send_replace() hands the sender the
 * pointer it replaced, to retire it (after a grace period, or once every
 * receiver is gone, or by reference counting done in the object itself).
 *
 * Lifetime. Each handle is owned by the caller and released by its drop;
 * the channel is freed with the last handle. Dropping the sender closes
 * the channel: the last value stays readable, and a wait for a change
 * returns -EPIPE once nothing unseen is left.
 *
 * Threads. Every call is thread-safe, from tasks on any worker or from
 * plain threads; one spinlock per channel guards the value, the versions
 * and the waiter queue (keep values small). Wakers never run under it.
 * A changed future is polled by one thread at a time.
 *
 * NULL: see weft/core.h.
 */
#ifndef WEFT_WATCH_H
#define WEFT_WATCH_H

#include <stdint.h>

#include <weft/core.h>
#include <weft/sync.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_watch_tx weft_watch_tx;
typedef struct weft_watch_rx weft_watch_rx;

/**
 * Create a watch channel of @value_size bytes (0 allowed, at most
 * WEFT_FUTURE_MAX_SIZE) holding a copy of @initial (may be NULL: zeroes).
 * Sets *@tx to the sender and *@rx to a receiver that has seen @initial.
 * Returns 0, -EINVAL (NULL @tx or @rx, size too large; nothing set) or
 * -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_new(size_t value_size, const void *initial,
			    weft_watch_tx **tx, weft_watch_rx **rx);

/**
 * Store @value (copied; may be NULL when value_size is 0) as the new
 * value, bump the version and wake every pending changed future.
 * Returns 0, or -EPIPE when every receiver is gone: nothing is stored
 * (Tokio's send); -EINVAL for a NULL @tx, or a NULL @value with a
 * non-zero value_size. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_send(weft_watch_tx *tx, const void *value);

/**
 * Store @value as weft_watch_send() does, but even when no receiver
 * exists (a later weft_watch_tx_subscribe sees it), and copy the value it
 * replaced to @old (value_size bytes; NULL discards it), all under one
 * lock: with pointer values, the sender gets back the pointer to retire.
 * Returns 0 or -EINVAL (as weft_watch_send). Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_send_replace(weft_watch_tx *tx, const void *value,
				     void *old);

/**
 * A new receiver, set in *@out, that has seen the current value.
 * Returns 0, -EINVAL (NULL argument) or -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_tx_subscribe(const weft_watch_tx *tx,
				     weft_watch_rx **out);

/**
 * Release the sender: the channel is closed; the value stays readable,
 * receivers can still see a change they had not seen, and then every
 * changed future returns -EPIPE (pending ones are woken). Frees the
 * channel if no receiver is left. NULL is accepted.
 */
WEFT_API void weft_watch_tx_drop(weft_watch_tx *tx);

/**
 * A new receiver, set in *@out, that has seen the same version as @rx.
 * Returns 0, -EINVAL (NULL argument) or -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_rx_clone(const weft_watch_rx *rx,
				 weft_watch_rx **out);

/**
 * Release a receiver. Every changed future on @rx must be dropped first
 * (they borrow it). Frees the channel if the sender is gone too. NULL is
 * accepted.
 */
WEFT_API void weft_watch_rx_drop(weft_watch_rx *rx);

/**
 * Copy the current value to @out (value_size bytes; NULL copies nothing)
 * without marking it seen. Returns 0 or -EINVAL (NULL @rx). Works after
 * the sender is gone. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_borrow(weft_watch_rx *rx, void *out);

/**
 * Copy the current value to @out (NULL copies nothing) and mark it seen.
 * Returns 0 or -EINVAL (NULL @rx). Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_borrow_and_update(weft_watch_rx *rx, void *out);

/**
 * Whether a version @rx has not seen exists: 1 yes, 0 no, -EPIPE no and
 * the sender is gone (so never will), -EINVAL NULL @rx. Unlike Tokio's
 * has_changed, an unseen change made before the close still reports 1,
 * as weft_watch_changed does. Marks nothing. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_has_changed(weft_watch_rx *rx);

/**
 * A wait for a change, as a future. Private fields; the waiter node
 * inside is what the channel queues, so it must not move from its first
 * poll until READY or its drop.
 */
typedef struct weft_watch_changed {
	weft_watch_rx *_rx;
	unsigned _state;
	weft__wait_node _node;
} weft_watch_changed;

/**
 * Prepare @c to wait for a version @rx (borrowed: it must outlive @c) has
 * not seen. Returns 0 or -EINVAL (NULL argument).
 * NULL: see core.h.
 */
WEFT_API int weft_watch_changed_init(weft_watch_changed *c,
				     weft_watch_rx *rx);

/**
 * Poll: READY with *@status (may be NULL) = 0 when @rx has an unseen
 * version (now marked seen: read it with weft_watch_borrow), or -EPIPE
 * when the sender is gone and nothing unseen is left. PENDING otherwise,
 * woken by the next store or the sender's drop. -EALREADY after READY,
 * -EINVAL unprepared.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_watch_changed_poll(weft_watch_changed *c,
					   weft_cx *cx, int *status);

/**
 * Drop the wait: a pending one leaves the queue; nothing is marked seen
 * until READY, so a change it was woken for is still unseen for the next
 * wait. Idempotent; NULL is accepted.
 */
WEFT_API void weft_watch_changed_drop(weft_watch_changed *c);

/** weft_watch_changed as a generic future: output int (*@status). */
WEFT_API extern const weft_future_desc weft_watch_changed_desc;

/**
 * Wait on a plain thread for a change: returns what
 * weft_watch_changed_poll() reports (0 or -EPIPE), or -EINVAL (NULL @rx),
 * -EDEADLK (called on a worker thread: nothing waited for), -ENOMEM.
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_watch_changed_blocking(weft_watch_rx *rx);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_WATCH_H */
