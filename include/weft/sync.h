/* SPDX-License-Identifier: MIT */
/* Synchronisation between tasks (and threads): oneshot, semaphore, notify,
 * mutex, rwlock, barrier. */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdint.h>

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

/* The waiter node a wait future embeds (src/sync/waitlist.h, asserted to
 * match): private. */
typedef struct weft__wait_node {
	void *_link[2];
	weft_waker _waker;
	bool _queued;
} weft__wait_node;

/* --------------------------------------------------------------- semaphore */

/**
 * A counting semaphore (Tokio's Semaphore): permits taken and given back
 * in any number, fairly. Waiters are served in FIFO order: a waiter at the
 * head is given permits as they are released, even part of what it asked
 * for, so a large request is not starved by a stream of small ones, and a
 * new acquire never jumps a queued one. Every call is thread-safe; an
 * acquire may be polled by a task or through weft_block_on().
 */
typedef struct weft_semaphore weft_semaphore;

/**
 * Create a semaphore with @permits permits. Returns 0 and sets *@out, or
 * -EINVAL (NULL @out), -ENOMEM.
 */
WEFT_API int weft_semaphore_new(size_t permits, weft_semaphore **out);

/**
 * Free @s. Returns 0, or -EBUSY (an acquire is queued on it; nothing is
 * freed). NULL is accepted (0). Not concurrently with any other call on
 * @s.
 */
WEFT_API int weft_semaphore_free(weft_semaphore *s);

/**
 * Take @n permits now, or fail: 0, -EAGAIN (fewer than @n available, or
 * acquires are queued ahead), -EPIPE (closed), -EINVAL (NULL @s).
 */
WEFT_API int weft_semaphore_try_acquire(weft_semaphore *s, size_t n);

/**
 * Give @n permits (back) to @s: to the queued acquires first, in order,
 * the rest to the pool. Wakes the acquires it completes (after its lock is
 * released). NULL is accepted.
 */
WEFT_API void weft_semaphore_release(weft_semaphore *s, size_t n);

/**
 * Close @s: every queued acquire completes with -EPIPE, and so will every
 * later acquire and try_acquire; release still works (permits are counted
 * but nobody can take them). NULL is accepted.
 */
WEFT_API void weft_semaphore_close(weft_semaphore *s);

/** Permits available now (a snapshot). 0 for NULL. */
WEFT_API size_t weft_semaphore_available(const weft_semaphore *s);

/**
 * An acquire of permits: a future. Fields are private; the waiter node
 * inside it is what the semaphore queues, so it must not move from the
 * first poll until READY or its drop.
 */
typedef struct weft_semaphore_acquire {
	weft_semaphore *_sem;
	size_t _want;
	size_t _assigned;
	unsigned _state;
	int _result;
	weft__wait_node _node;
} weft_semaphore_acquire;

/**
 * Prepare @a to take @n permits of @s (0 permits: READY at once). Returns
 * 0 or -EINVAL (NULL @a or @s). A request larger than the permits that
 * will ever be free waits until @s is closed.
 */
WEFT_API int weft_semaphore_acquire_init(weft_semaphore_acquire *a,
					 weft_semaphore *s, size_t n);

/**
 * Poll: READY with *@res (may be NULL) = 0 once the @n permits are the
 * caller's (give them back with weft_semaphore_release()), or -EPIPE if
 * @s was closed first (nothing taken). A poll after READY returns READY
 * with -EALREADY; an unprepared @a, READY with -EINVAL.
 */
WEFT_API weft_poll weft_semaphore_acquire_poll(weft_semaphore_acquire *a,
					       weft_cx *cx, int *res);

/**
 * Drop the acquire. A queued one leaves the queue, and the permits it had
 * been given so far go back (to the next waiters first); an acquire that
 * completed but whose READY was never seen gives its permits back too, so
 * a dropped acquire never loses a permit. After READY (the permits are
 * the caller's) it does nothing. Idempotent; NULL is accepted.
 */
WEFT_API void weft_semaphore_acquire_drop(weft_semaphore_acquire *a);

/** weft_semaphore_acquire as a generic future: output int (*@res). */
WEFT_API extern const weft_future_desc weft_semaphore_acquire_desc;

/* ------------------------------------------------------------------ notify */

/**
 * Notify (Tokio's Notify): wake one waiting task, or all of them, without
 * data. notify_one with nobody waiting stores one permit, taken by the
 * next wait, so a notification sent just before a task starts waiting is
 * not lost. Waiters are woken in FIFO order. Thread-safe.
 */
typedef struct weft_notify weft_notify;

/** Create one. 0, or -EINVAL (NULL @out), -ENOMEM. */
WEFT_API int weft_notify_new(weft_notify **out);

/** Free @n: 0, or -EBUSY (a wait is queued; nothing freed). NULL: 0. */
WEFT_API int weft_notify_free(weft_notify *n);

/**
 * Wake the first queued wait; with none queued, store one permit (several
 * calls store one, not several). NULL is accepted.
 */
WEFT_API void weft_notify_one(weft_notify *n);

/**
 * Wake every wait prepared before this call (queued or not yet polled);
 * stores no permit, so later waits wait. NULL is accepted.
 */
WEFT_API void weft_notify_waiters(weft_notify *n);

/** A wait for a notification: a future. Private fields; must not move
 * once polled. */
typedef struct weft_notified {
	weft_notify *_n;
	uint64_t _seq;
	unsigned _state;
	unsigned _how;
	weft__wait_node _node;
} weft_notified;

/** Prepare @w to wait on @n (notify_waiters from now on reaches it). 0,
 * or -EINVAL (NULL argument). */
WEFT_API int weft_notified_init(weft_notified *w, weft_notify *n);

/**
 * Poll: READY with *@res (may be NULL) = 0 once notified (or a stored
 * permit was taken), -EALREADY after READY, -EINVAL unprepared.
 */
WEFT_API weft_poll weft_notified_poll(weft_notified *w, weft_cx *cx,
				      int *res);

/**
 * Drop the wait. A queued one leaves the queue. One that a notify_one
 * chose but that never saw it passes the notification on (to the next
 * wait, or as the stored permit), so dropping a wait never loses a
 * notify_one. Idempotent; NULL is accepted.
 */
WEFT_API void weft_notified_drop(weft_notified *w);

/** weft_notified as a generic future: output int (*@res). */
WEFT_API extern const weft_future_desc weft_notified_desc;

/* ------------------------------------------------------------------- mutex */

/**
 * An async mutex (Tokio's Mutex): a lock held across awaits, handed to
 * waiters in FIFO order. It is a one-permit weft_semaphore, so it is fair
 * and cancellation-safe the same way: a dropped lock future never leaves
 * the mutex locked or a waiter queued. It guards no data of its own: it
 * orders the tasks that agree to take it. Thread-safe. For a critical
 * section that never awaits, a plain pthread mutex is cheaper.
 */
typedef struct weft_mutex weft_mutex;

/** Create an unlocked mutex. 0, or -EINVAL (NULL @out), -ENOMEM. */
WEFT_API int weft_mutex_new(weft_mutex **out);

/** Free @m: 0, or -EBUSY (a lock is queued; nothing freed). NULL: 0. */
WEFT_API int weft_mutex_free(weft_mutex *m);

/** Lock now or fail: 0, -EAGAIN (locked, or waiters queued), -EINVAL. */
WEFT_API int weft_mutex_try_lock(weft_mutex *m);

/**
 * Unlock: the next queued lock (FIFO) gets the mutex. 0, or -EPERM (@m is
 * not locked: nothing changes), -EINVAL (NULL). Any thread may unlock a
 * mutex its task holds (a lock is not tied to a thread).
 */
WEFT_API int weft_mutex_unlock(weft_mutex *m);

/** A lock of a mutex: a future. Private fields; must not move once
 * polled (see weft_semaphore_acquire). */
typedef struct weft_mutex_lock {
	weft_semaphore_acquire _acquire;
} weft_mutex_lock;

/** Prepare @l to lock @m. 0, or -EINVAL (NULL argument). */
WEFT_API int weft_mutex_lock_init(weft_mutex_lock *l, weft_mutex *m);

/**
 * Poll: READY with *@res (may be NULL) = 0 once the caller holds the
 * mutex (unlock it with weft_mutex_unlock()), -EALREADY after READY,
 * -EINVAL unprepared.
 */
WEFT_API weft_poll weft_mutex_lock_poll(weft_mutex_lock *l, weft_cx *cx,
					int *res);

/** Drop the lock future: a queued lock leaves the queue; a lock granted
 * but never seen is unlocked. After READY it does nothing (the caller
 * holds the mutex). Idempotent; NULL is accepted. */
WEFT_API void weft_mutex_lock_drop(weft_mutex_lock *l);

/** weft_mutex_lock as a generic future: output int (*@res). */
WEFT_API extern const weft_future_desc weft_mutex_lock_desc;

/* ------------------------------------------------------------------ rwlock */

/** Readers a weft_rwlock admits at once. */
#define WEFT_RWLOCK_MAX_READERS ((size_t)1 << 24)

/**
 * An async reader-writer lock (Tokio's RwLock): many readers or one
 * writer, held across awaits, in FIFO order: a waiting writer is not
 * starved by a stream of readers (readers that come after it wait behind
 * it). Built like Tokio's, on a semaphore of WEFT_RWLOCK_MAX_READERS
 * permits: a read takes one, a write takes them all; it inherits the
 * semaphore's cancellation safety. Thread-safe.
 */
typedef struct weft_rwlock weft_rwlock;

/** Create one. 0, or -EINVAL (NULL @out), -ENOMEM. */
WEFT_API int weft_rwlock_new(weft_rwlock **out);

/** Free @l: 0, or -EBUSY (a lock is queued; nothing freed). NULL: 0. */
WEFT_API int weft_rwlock_free(weft_rwlock *l);

/** Take a read lock now: 0, -EAGAIN (a writer holds it or waits), -EINVAL. */
WEFT_API int weft_rwlock_try_read(weft_rwlock *l);

/** Take the write lock now: 0, -EAGAIN (held, or waiters queued), -EINVAL. */
WEFT_API int weft_rwlock_try_write(weft_rwlock *l);

/**
 * Release a read lock: 0, -EINVAL, or -EPERM when nothing at all is
 * locked (nothing changes). Unlocks are checked against the free permits
 * only: a read unlock while a writer holds the lock, or a write unlock
 * while only readers do, is a caller bug this does not always catch.
 */
WEFT_API int weft_rwlock_read_unlock(weft_rwlock *l);

/** Release the write lock: 0, -EINVAL, or -EPERM when it is not held by
 * anyone in full (nothing changes); see weft_rwlock_read_unlock(). */
WEFT_API int weft_rwlock_write_unlock(weft_rwlock *l);

/** A read or write lock of a weft_rwlock: a future. Private fields. */
typedef struct weft_rwlock_lock {
	weft_semaphore_acquire _acquire;
} weft_rwlock_lock;

/** Prepare @k to take a read lock of @l. 0 or -EINVAL. */
WEFT_API int weft_rwlock_read_init(weft_rwlock_lock *k, weft_rwlock *l);

/** Prepare @k to take the write lock of @l. 0 or -EINVAL. */
WEFT_API int weft_rwlock_write_init(weft_rwlock_lock *k, weft_rwlock *l);

/**
 * Poll: READY with *@res (may be NULL) = 0 once the lock is held (release
 * it with the matching unlock), -EALREADY after READY, -EINVAL
 * unprepared.
 */
WEFT_API weft_poll weft_rwlock_lock_poll(weft_rwlock_lock *k, weft_cx *cx,
					 int *res);

/** Drop: as weft_semaphore_acquire_drop (a queued lock leaves the queue;
 * one granted but never seen is released). NULL is accepted. */
WEFT_API void weft_rwlock_lock_drop(weft_rwlock_lock *k);

/** weft_rwlock_lock as a generic future: output int (*@res). */
WEFT_API extern const weft_future_desc weft_rwlock_lock_desc;

/* ----------------------------------------------------------------- barrier */

/**
 * A barrier (Tokio's sync::Barrier): each wait completes once @n waits
 * have arrived, and then the barrier starts over (a new generation).
 * Exactly one wait of each generation, the one that arrived last, is told
 * it is the leader. A pending wait that is dropped leaves: the count of
 * arrivals goes back down, so the generation then needs one more arrival
 * (Tokio's wait is not cancellation-safe this way; here it is). A wait of
 * a generation already released keeps its release when dropped unseen.
 * Thread-safe.
 */
typedef struct weft_barrier weft_barrier;

/**
 * Create a barrier for @n waits (@n of 0 counts as 1, as in Tokio).
 * 0, or -EINVAL (NULL @out), -ENOMEM.
 */
WEFT_API int weft_barrier_new(size_t n, weft_barrier **out);

/** Free @b: 0, or -EBUSY (a wait is queued, or a leader is still waking
 * its generation; nothing freed). NULL: 0. */
WEFT_API int weft_barrier_free(weft_barrier *b);

/** A wait at a barrier: a future. Private fields; must not move once
 * polled. */
typedef struct weft_barrier_wait {
	weft_barrier *_b;
	uint64_t _gen;
	unsigned _state;
	weft__wait_node _node;
} weft_barrier_wait;

/** Prepare @w to wait at @b (it arrives at its first poll). 0, or
 * -EINVAL (NULL argument). */
WEFT_API int weft_barrier_wait_init(weft_barrier_wait *w, weft_barrier *b);

/**
 * Poll: the first poll arrives at the barrier. READY once @n waits of
 * this generation have arrived, with *@res (may be NULL) 1 for the
 * leader (the last to arrive; its first poll is READY) and 0 for the
 * others. -EALREADY after READY, -EINVAL unprepared.
 */
WEFT_API weft_poll weft_barrier_wait_poll(weft_barrier_wait *w, weft_cx *cx,
					  int *res);

/** Drop the wait: a queued one leaves and un-counts its arrival (see
 * weft_barrier). Idempotent; NULL is accepted. */
WEFT_API void weft_barrier_wait_drop(weft_barrier_wait *w);

/** weft_barrier_wait as a generic future: output int (*@res). */
WEFT_API extern const weft_future_desc weft_barrier_wait_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SYNC_H */
