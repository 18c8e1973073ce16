/* SPDX-License-Identifier: MIT */
/* Synchronisation between tasks (and threads): the oneshot channel. */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_oneshot_tx weft_oneshot_tx;
typedef struct weft_oneshot_rx weft_oneshot_rx;

/**
 * Create a oneshot channel carrying one value of @value_size bytes
 * (0 allowed, at most WEFT_FUTURE_MAX_SIZE). Each side is owned by the
 * caller and released by its own call (send or drop for the sender,
 * drop for the receiver); the channel is freed when both are gone.
 * Returns 0, -EINVAL (NULL pointers, size too large) or -ENOMEM.
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_oneshot_new(size_t value_size, weft_oneshot_tx **tx,
			      weft_oneshot_rx **rx);

/**
 * Send @value (value_size bytes, copied; may be NULL when value_size is 0)
 * and release the sender.
 * Returns 0, or -EPIPE if the receiver was dropped: nothing was sent, the
 * caller still owns whatever @value refers to, and the sender is released
 * all the same. -EINVAL for a NULL @tx, or a NULL @value when value_size
 * is not 0: then nothing happened and @tx is still the caller's, to send
 * again or drop. Thread-safe, callable from any thread (a worker or not).
 * NULL: see core.h.
 */
WEFT_API int weft_oneshot_send(weft_oneshot_tx *tx, const void *value);

/**
 * Release the sender without sending; a waiting receiver then gets -EPIPE.
 * NULL is accepted.
 * NULL: see core.h.
 */
WEFT_API void weft_oneshot_tx_drop(weft_oneshot_tx *tx);

/**
 * Poll for the value. On READY, *@status is 0 and the value is copied to
 * @out (value_size bytes; @out may be NULL to discard), or -EPIPE if the
 * sender was dropped without sending. A poll after READY returns READY with
 * -EALREADY. One poller at a time.
 * NULL: see core.h.
 */
WEFT_API weft_poll weft_oneshot_recv_poll(weft_oneshot_rx *rx, weft_cx *cx,
					  int *status, void *out);

/**
 * Release the receiver; a later send fails with -EPIPE. A value already
 * sent and not received is discarded. NULL is accepted.
 * NULL: see core.h.
 */
WEFT_API void weft_oneshot_rx_drop(weft_oneshot_rx *rx);

/**
 * A oneshot receiver as a generic future (weft/future.h): state for
 * weft_oneshot_recv_desc, whose output is an int status (0 or -EPIPE, as
 * weft_oneshot_recv_poll() reports it) and which copies the value to
 * @value (NULL discards it). The future owns @rx: its drop (after READY,
 * or when a select drops a losing arm) calls weft_oneshot_rx_drop().
 */
typedef struct weft_oneshot_recv {
	weft_oneshot_rx *rx;
	void *value;
} weft_oneshot_recv;

/** The descriptor of weft_oneshot_recv. */
WEFT_API extern const weft_future_desc weft_oneshot_recv_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SYNC_H */
