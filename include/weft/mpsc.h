/* SPDX-License-Identifier: MIT */
/*
 * mpsc: a multi-producer, single-consumer channel (Tokio's sync::mpsc),
 * bounded (a send waits while the channel is full: backpressure) or
 * unbounded.
 *
 * Values are copied in and out by size: every value of a channel is
 * value_size bytes, copied into the channel by a send and out of it by a
 * recv. For zero-copy, send pointers (value_size = sizeof(void *)): the
 * channel then moves the pointer, and the object it points to belongs to
 * whoever holds the pointer: the sender until the send succeeds, the
 * channel while it is queued, the receiver once received. Values the
 * channel discards (queued when the receiver is dropped, or when the last
 * handle goes) are passed to the config's drop_value, so a pointer value
 * can be freed there and nothing leaks.
 *
 * Closing: when every sender is gone, recv returns what is still queued and
 * then -EPIPE. When the receiver is dropped (or closed with
 * weft_mpsc_rx_close), sends fail with -EPIPE and the value stays the
 * caller's: nothing was copied. No value is lost or delivered twice,
 * including when a send or recv future is dropped while it waits: a send
 * future copies its value only in the poll that returns READY with 0, and a
 * recv future takes a value only in the poll that returns it.
 *
 * Fairness: a bounded channel hands freed capacity to waiting senders in
 * FIFO order (a slot is reserved for the head waiter, as Tokio's bounded
 * channel does with its semaphore), and a new send never jumps a waiting
 * one. Values from one sender arrive in the order it sent them.
 *
 * Threads: every call is thread-safe; senders may be used from any thread
 * (workers or plain threads, with the _blocking calls or try_send). The
 * receiver is one handle: its calls and its recv future are used by one
 * thread at a time.
 */
#ifndef WEFT_MPSC_H
#define WEFT_MPSC_H

#include <weft/core.h>
#include <weft/sync.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_mpsc_tx weft_mpsc_tx;
typedef struct weft_mpsc_rx weft_mpsc_rx;

/** The largest value_size a channel takes, in bytes. */
#define WEFT_MPSC_MAX_VALUE 4096

/** How to build a channel: weft_mpsc_new(). Zero is a valid default for
 * every field but value_size (which may be 0 too: a channel of signals). */
typedef struct weft_mpsc_config {
	size_t value_size; /**< bytes per value, 0..WEFT_MPSC_MAX_VALUE */
	size_t capacity;   /**< most values queued at once; 0: unbounded */
	/** Called (on the thread that discards them) for each value the
	 * channel discards: still queued when the receiver is dropped or
	 * closed and drained by nobody. May be NULL. @value points at
	 * value_size bytes valid during the call. */
	void (*drop_value)(void *value, void *ctx);
	void *drop_ctx; /**< passed to drop_value */
} weft_mpsc_config;

/**
 * Create a channel as @cfg says (copied). *@tx gets the first sender and
 * *@rx the receiver, both the caller's to drop. The channel is freed when
 * the receiver and every sender are dropped.
 * Returns 0, -EINVAL (NULL pointers, value_size above
 * WEFT_MPSC_MAX_VALUE) or -ENOMEM. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_new(const weft_mpsc_config *cfg, weft_mpsc_tx **tx,
			   weft_mpsc_rx **rx);

/** weft_mpsc_new() for a bounded channel of @capacity (at least 1; 0 is
 * -EINVAL here) values of @value_size bytes, without drop_value. */
WEFT_API int weft_mpsc_bounded(size_t value_size, size_t capacity,
			       weft_mpsc_tx **tx, weft_mpsc_rx **rx);

/** weft_mpsc_new() for an unbounded channel of values of @value_size
 * bytes, without drop_value. Memory grows with what is queued. */
WEFT_API int weft_mpsc_unbounded(size_t value_size, weft_mpsc_tx **tx,
				 weft_mpsc_rx **rx);

/**
 * Another sender for @tx's channel, in *@out (the caller's to drop).
 * Returns 0 or -EINVAL. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_tx_clone(weft_mpsc_tx *tx, weft_mpsc_tx **out);

/**
 * Drop a sender. When it is the last, the receiver sees -EPIPE once the
 * queue is drained. Dropping a sender with a pending send future is a bug:
 * drop the future first. NULL is accepted. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API void weft_mpsc_tx_drop(weft_mpsc_tx *tx);

/**
 * Close the receiving side without dropping it (Tokio's Receiver::close):
 * every later send, and every waiting one, fails with -EPIPE; what is
 * already queued can still be received, then recv returns -EPIPE. For a
 * graceful stop that loses nothing; a recv waiting on an empty channel is
 * woken. May be called from any thread, also while a recv is pending on
 * another. NULL is accepted.
 * NULL: see core.h.
 */
WEFT_API void weft_mpsc_rx_close(weft_mpsc_rx *rx);

/**
 * Drop the receiver: as weft_mpsc_rx_close, and every queued value is
 * discarded (passed to drop_value). NULL is accepted. Dropping it with a
 * pending recv future is a bug: drop the future first.
 * NULL: see core.h.
 */
WEFT_API void weft_mpsc_rx_drop(weft_mpsc_rx *rx);

/**
 * Send @value (value_size bytes, copied; may be NULL if value_size is 0)
 * without waiting.
 * Returns 0, or -EAGAIN (a bounded channel is full, or senders are
 * waiting for room: nothing was sent), -EPIPE (the receiver is closed or
 * dropped: nothing was sent), -EINVAL (NULL @tx, NULL @value with a
 * non-zero value_size), -ENOMEM (out of memory for a new block of
 * values: nothing was sent). Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_try_send(weft_mpsc_tx *tx, const void *value);

/**
 * Receive one value into @out (value_size bytes; NULL discards it) without
 * waiting. Returns 0, -EAGAIN (empty, senders remain), -EPIPE (empty and
 * every sender is gone, or the receiver was closed and is drained), or
 * -EINVAL.
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_try_recv(weft_mpsc_rx *rx, void *out);

/**
 * Number of values queued now (a snapshot). A receiver's call: one thread
 * at a time, like recv.
 * NULL: see core.h.
 */
WEFT_API size_t weft_mpsc_len(const weft_mpsc_rx *rx);

/**
 * True once the receiver is closed or dropped (sends would fail).
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API bool weft_mpsc_is_closed(const weft_mpsc_tx *tx);

/** A send in progress: a future (state of weft_mpsc_send_desc). Private
 * fields; prepare with weft_mpsc_send_init(). */
typedef struct weft_mpsc_send {
	weft_mpsc_tx *_tx;
	const void *_value;
	unsigned _state;
	int _result;
	weft__wait_node _node;
} weft_mpsc_send;

/**
 * Prepare @s to send @value over @tx. @value is borrowed, not copied, until
 * the send is READY or dropped (so a send that fails leaves it with the
 * caller, untouched); @tx must outlive @s.
 * Returns 0 or -EINVAL (NULL @s or @tx, NULL @value with a non-zero
 * value_size).
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_send_init(weft_mpsc_send *s, weft_mpsc_tx *tx,
				 const void *value);

/**
 * Poll the send. READY with *@res (may be NULL) = 0 (the value was copied
 * into the channel), -EPIPE (the receiver is closed or dropped: nothing was
 * sent), -ENOMEM (out of memory for a new block:
 * nothing sent), -EALREADY
 * (polled after READY) or -EINVAL (NULL or unprepared @s or @cx). PENDING
 * while a bounded channel is full.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_mpsc_send_poll(weft_mpsc_send *s, weft_cx *cx,
				       int *res);

/**
 * Drop the send, before or after READY. A pending send leaves the queue
 * of waiting senders and sends nothing; room reserved for it passes to the
 * next waiting sender. NULL is accepted.
 * NULL: see core.h.
 */
WEFT_API void weft_mpsc_send_drop(weft_mpsc_send *s);

/** weft_mpsc_send as a generic future (weft/future.h): output int. */
WEFT_API extern const weft_future_desc weft_mpsc_send_desc;

/**
 * Poll the receiver directly (Tokio's Receiver::poll_recv): the cheapest
 * way for a hand-written poll function to receive, with no future object
 * to prepare and drop. READY with *@res (may be NULL) = 0 and a value in
 * @out (value_size bytes; NULL discards it), or -EPIPE (closed and
 * drained), -EINVAL (NULL @rx or @cx). PENDING while the channel is empty:
 * @cx's waker is registered and woken by the next send or close. The
 * registration stays until the next poll, recv or receiver drop; a task
 * that stops receiving is at most woken once more for nothing. The
 * receiver's call: one thread at a time.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_mpsc_poll_recv(weft_mpsc_rx *rx, weft_cx *cx,
				       void *out, int *res);

/** A recv in progress: a future (state of weft_mpsc_recv_desc). Private
 * fields; prepare with weft_mpsc_recv_init(). */
typedef struct weft_mpsc_recv {
	weft_mpsc_rx *_rx;
	void *_out;
	unsigned _state;
} weft_mpsc_recv;

/**
 * Prepare @r to receive one value from @rx into @out (value_size bytes,
 * borrowed until READY or drop; NULL discards the value).
 * Returns 0 or -EINVAL (NULL @r or @rx).
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_recv_init(weft_mpsc_recv *r, weft_mpsc_rx *rx,
				 void *out);

/**
 * Poll the recv. READY with *@res (may be NULL) = 0 (a value is in @out),
 * -EPIPE (closed and drained: no more values will come), -EALREADY (polled
 * after READY) or -EINVAL. PENDING while the channel is empty and a
 * sender remains.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_mpsc_recv_poll(weft_mpsc_recv *r, weft_cx *cx,
				       int *res);

/** Drop the recv; a pending one takes nothing. NULL is accepted.
 * NULL: see core.h. */
WEFT_API void weft_mpsc_recv_drop(weft_mpsc_recv *r);

/** weft_mpsc_recv as a generic future (weft/future.h): output int. */
WEFT_API extern const weft_future_desc weft_mpsc_recv_desc;

/**
 * Send from a plain thread, sleeping while a bounded channel is full.
 * Returns what weft_mpsc_send_poll() would, or -EDEADLK when called on a
 * worker thread of any runtime (blocking a worker stalls its tasks: use
 * the send future there; nothing was sent) or -ENOMEM.
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_send_blocking(weft_mpsc_tx *tx, const void *value);

/**
 * Receive from a plain thread, sleeping while the channel is empty.
 * Returns what weft_mpsc_recv_poll() would, or -EDEADLK on a worker thread
 * (nothing was received) or -ENOMEM.
 * NULL: see core.h.
 */
WEFT_API int weft_mpsc_recv_blocking(weft_mpsc_rx *rx, void *out);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_MPSC_H */
