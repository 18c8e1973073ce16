/* SPDX-License-Identifier: MIT */
/*
 * A broadcast channel (Tokio's sync::broadcast): many senders, many
 * receivers, and every receiver sees every value sent after it subscribed,
 * in order.
 *
 * Values are copied in and out by size: value_size bytes each, fixed when
 * the channel is made. The channel keeps the last `capacity` values in a
 * ring (capacity rounded up to a power of two). A send never waits: when
 * the ring is full it overwrites the oldest value, and a receiver that had
 * not read it yet falls behind ("lags"): its next receive reports
 * -EOVERFLOW with the number of values it missed, and the one after that
 * continues from the oldest value still retained. A slow receiver thus
 * skips values instead of slowing the senders or the other receivers.
 *
 * Ownership of values. The channel copies the value_size bytes and never
 * looks inside them. To pass a large object without copying, send a
 * pointer (value_size = sizeof(void *)); the channel then neither
 * dereferences nor frees it, and the pointee stays the sender's problem:
 * it must remain valid as long as any receiver may still receive the
 * pointer, and since a lagging receiver skips values without ever seeing
 * them, counting receives cannot tell when that ends. Use immutable
 * objects that outlive every receiver (an arena freed after the last
 * receiver is dropped, interned or static data), or copy the bytes.
 *
 * Lifetime. The handles are separate objects, each owned by the caller and
 * released by its own drop; the channel is freed when the last handle of
 * either kind is dropped. When every sender is gone the channel is closed:
 * each receiver still gets what is retained for it, then -EPIPE.
 *
 * Threads. Every call is thread-safe, and each may be made from a task on
 * any worker or from a plain thread; one lock per channel (a spinlock: the
 * critical sections are a copy of one value, so keep values small or send
 * pointers) guards the ring, the cursors and the waiter queue. Wakers are
 * never run under it. A recv future is polled by one thread at a time.
 *
 * NULL: see weft/core.h.
 */
#ifndef WEFT_BROADCAST_H
#define WEFT_BROADCAST_H

#include <stdint.h>

#include <weft/core.h>
#include <weft/sync.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_broadcast_tx weft_broadcast_tx;
typedef struct weft_broadcast_rx weft_broadcast_rx;

/** Largest capacity weft_broadcast_new() accepts (values retained). */
#define WEFT_BROADCAST_MAX_CAPACITY ((size_t)1 << 30)

/**
 * Create a broadcast channel of values of @value_size bytes (0 allowed,
 * at most WEFT_FUTURE_MAX_SIZE) retaining the last @capacity values
 * (1..WEFT_BROADCAST_MAX_CAPACITY, rounded up to a power of two; the ring
 * takes capacity * value_size bytes). Sets *@tx to the first sender and
 * *@rx to the first receiver, both the caller's to drop.
 * Returns 0, -EINVAL (NULL @tx or @rx, a size or capacity out of range;
 * nothing is set) or -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_broadcast_new(size_t value_size, size_t capacity,
				weft_broadcast_tx **tx,
				weft_broadcast_rx **rx);

/**
 * A new sender for the channel of @tx, set in *@out (the caller's to
 * drop); the channel closes only when every sender is dropped.
 * Returns 0, -EINVAL (NULL argument) or -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_broadcast_tx_clone(const weft_broadcast_tx *tx,
				     weft_broadcast_tx **out);

/**
 * Release a sender. Dropping the last one closes the channel: every
 * receiver drains what is retained for it, then gets -EPIPE, and every
 * pending recv is woken. Frees the channel if no receiver is left.
 * NULL is accepted. Thread-safe (but each handle is dropped once).
 */
WEFT_API void weft_broadcast_tx_drop(weft_broadcast_tx *tx);

/**
 * A new receiver, set in *@out, that receives every value sent from now
 * on (not those sent before; Tokio's subscribe). Returns 0, -EINVAL
 * (NULL argument) or -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_broadcast_subscribe(const weft_broadcast_tx *tx,
				      weft_broadcast_rx **out);

/**
 * Release a receiver; values it had not read are simply no longer
 * retained for it. Every recv future on @rx must be dropped first (they
 * borrow it). Frees the channel if no sender is left. NULL is accepted.
 */
WEFT_API void weft_broadcast_rx_drop(weft_broadcast_rx *rx);

/**
 * Send @value (value_size bytes, copied; may be NULL when value_size is
 * 0) to every receiver, overwriting the oldest retained value if the ring
 * is full, and wake every pending recv. Never waits (beyond the lock).
 * Returns the number of receivers that exist (each will see the value
 * unless it lags past it), or -EPIPE when there are none: nothing is
 * stored. -EINVAL: NULL @tx, or NULL @value with a non-zero value_size.
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_broadcast_send(weft_broadcast_tx *tx, const void *value);

/**
 * Receive the next value for @rx without waiting: 0 with the value copied
 * to @out (value_size bytes; NULL discards it); -EAGAIN, nothing new yet;
 * -EOVERFLOW, @rx fell behind: *@missed (if @missed is not NULL) is the
 * number of values it lost, and the next receive continues from the
 * oldest value still retained; -EPIPE, every sender is gone and nothing
 * is left for @rx; -EINVAL, NULL @rx. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_broadcast_try_recv(weft_broadcast_rx *rx, void *out,
				     uint64_t *missed);

/**
 * A receive as a future. Private fields; the waiter node inside is what
 * the channel queues, so it must not move from its first poll until
 * READY or its drop.
 */
typedef struct weft_broadcast_recv {
	weft_broadcast_rx *_rx;
	void *_out;
	uint64_t *_missed;
	unsigned _state;
	weft__wait_node _node;
} weft_broadcast_recv;

/**
 * Prepare @r to receive the next value of @rx (borrowed: it must outlive
 * @r) into @out (value_size bytes; NULL discards), writing a lag count to
 * *@missed (may be NULL). Returns 0 or -EINVAL (NULL @r or @rx).
 * NULL: see core.h.
 */
WEFT_API int weft_broadcast_recv_init(weft_broadcast_recv *r,
				      weft_broadcast_rx *rx, void *out,
				      uint64_t *missed);

/**
 * Poll: READY with *@status (may be NULL) = 0 and the value in @out,
 * -EOVERFLOW with the missed count in *@missed (see
 * weft_broadcast_try_recv), or -EPIPE (closed and drained). PENDING
 * otherwise, woken by the next send or the last sender's drop. A poll
 * after READY returns READY with -EALREADY; an unprepared @r, READY with
 * -EINVAL.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_broadcast_recv_poll(weft_broadcast_recv *r,
					    weft_cx *cx, int *status);

/**
 * Drop the receive. A pending one leaves the waiter queue; nothing is
 * consumed until a poll returns READY, so the value it was waiting for
 * stays for the next receive on the same receiver. Idempotent; NULL is
 * accepted.
 */
WEFT_API void weft_broadcast_recv_drop(weft_broadcast_recv *r);

/** weft_broadcast_recv as a generic future: output int (*@status). */
WEFT_API extern const weft_future_desc weft_broadcast_recv_desc;

/**
 * Receive on a plain thread, sleeping until a value, a lag or the close:
 * returns what weft_broadcast_recv_poll() would report (0, -EOVERFLOW
 * with *@missed, -EPIPE), or -EINVAL (NULL @rx), -EDEADLK (called on a
 * worker thread, where it would stall the worker: nothing received; await
 * weft_broadcast_recv there), -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_broadcast_recv_blocking(weft_broadcast_rx *rx, void *out,
					  uint64_t *missed);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_BROADCAST_H */
