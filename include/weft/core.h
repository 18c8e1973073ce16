/* SPDX-License-Identifier: MIT */
/*
 * weft core types: poll results, wakers, the poll context and the future
 * descriptor. Everything else in weft is built on these.
 *
 * The model is Rust's std::task (Future, Waker, Context) written in C: a
 * future is caller-owned state plus a poll function. Polling returns
 * WEFT_READY once, with its output written where the future says, or
 * WEFT_PENDING after arranging for the waker in the context to be woken
 * when polling again can make progress.
 *
 * NULL arguments, the rule for every public weft function. A NULL pointer
 * where an object is required is a usage error that each call answers
 * without crashing and without side effects:
 *  - calls that return int return -EINVAL;
 *  - polls return WEFT_READY with *status (when status is not NULL) set to
 *    -EINVAL, consuming nothing (a later valid poll still sees the value);
 *  - predicates return false;
 *  - getters return 0 (NULL for pointers);
 *  - drop, free and abort calls accept NULL and do nothing;
 *  - other void calls do nothing;
 *  - wakers: every weft_waker_* call accepts NULL or an empty waker and
 *    does nothing (a clone of either is the empty waker).
 * A pointer whose doc gives NULL a meaning (weft_spawn's @rt and @join, an
 * @out that discards, an @init that zeroes) keeps that meaning. Function
 * docs refer here with "NULL: see core.h". A dangling (freed) pointer is
 * not NULL and cannot be detected.
 */
#ifndef WEFT_CORE_H
#define WEFT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_BUILDING)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

#if defined(__GNUC__)
#define WEFT_MUST_USE __attribute__((warn_unused_result))
#else
#define WEFT_MUST_USE
#endif

/** Result of polling a future. */
typedef enum weft_poll {
	WEFT_PENDING = 0, /**< not done; the context's waker will be woken */
	WEFT_READY = 1,   /**< done; the output has been written */
} weft_poll;

typedef struct weft_waker weft_waker;

/**
 * Operations of a waker. A waker for a weft task holds one reference to the
 * task; user-defined wakers may implement any scheme.
 *
 * clone:       return a new waker for the same target (adds a reference).
 * wake:        wake the target and release this waker's reference.
 * wake_by_ref: wake the target; the reference is kept.
 * drop:        release the reference without waking.
 * All four must be callable from any thread.
 */
typedef struct weft_waker_vtable {
	weft_waker (*clone)(const void *data);
	void (*wake)(const void *data);
	void (*wake_by_ref)(const void *data);
	void (*drop)(const void *data);
} weft_waker_vtable;

/**
 * A waker: a vtable and a data pointer, passed by value. A waker whose
 * vtable is NULL is empty; every weft_waker_* call accepts an empty waker
 * and does nothing with it.
 */
struct weft_waker {
	const weft_waker_vtable *vtable;
	const void *data;
};

/** An empty waker, for initialising fields. */
#define WEFT_WAKER_EMPTY ((weft_waker){ NULL, NULL })

/**
 * The context handed to a poll function. It lends the waker of whoever
 * polls; the lend lasts for the poll call only (clone it to keep it).
 */
typedef struct weft_cx {
	const weft_waker *waker;
	void *_reserved; /* must be NULL */
} weft_cx;

/**
 * Initialise a context that lends @waker. @waker must outlive every poll
 * made with the context. For callers that poll futures themselves (tests,
 * custom executors). Thread-safe: touches only @cx.
 * NULL: see core.h; a NULL @waker lends the empty waker.
 */
WEFT_API void weft_cx_init(weft_cx *cx, const weft_waker *waker);

/**
 * The waker lent by @cx, valid for the current poll call only; clone it with
 * weft_waker_clone() to keep it. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API const weft_waker *weft_cx_waker(const weft_cx *cx);

/**
 * Return a new waker for the same target as @w (one more reference).
 * Cloning an empty waker returns an empty waker. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API weft_waker weft_waker_clone(const weft_waker *w);

/**
 * Wake the target of *@w and consume the waker: *@w is empty afterwards.
 * Thread-safe; the same waker value must not be consumed twice.
 * NULL: see core.h.
 */
WEFT_API void weft_waker_wake(weft_waker *w);

/**
 * Wake the target of @w, keeping the waker. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API void weft_waker_wake_by_ref(const weft_waker *w);

/**
 * Release *@w without waking it; *@w is empty afterwards. Dropping an empty
 * waker does nothing. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API void weft_waker_drop(weft_waker *w);

/**
 * True if @a and @b wake the same target (same vtable and data), so a
 * future may keep its stored waker instead of replacing it. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API bool weft_waker_will_wake(const weft_waker *a, const weft_waker *b);

/**
 * A waker that does nothing: clone, wake and drop are no-ops. Useful to poll
 * a future once without registering interest. Thread-safe.
 */
WEFT_API weft_waker weft_waker_noop(void);

/**
 * Describes a future type to the runtime, which copies its state into a task.
 *
 * poll:        required. Called on a worker thread with the task's copy of
 *              the state in @self. On WEFT_READY it must have written
 *              output_size bytes to @out; after WEFT_READY it is never
 *              called again.
 * drop:        optional. Called exactly once, on a worker thread, when the
 *              future is dropped: right after poll returns WEFT_READY, or
 *              when the task is cancelled (abort or runtime shutdown). It
 *              must release what the state owns (drop nested futures such
 *              as weft_io with weft_io_drop, close fds it owns, ...).
 * drop_output: optional. Called with the output when nobody will take it
 *              (the join handle was dropped or never requested).
 * size:        bytes of future state, at most WEFT_FUTURE_MAX_SIZE.
 * output_size: bytes of output, at most WEFT_FUTURE_MAX_SIZE.
 *
 * State and output are aligned to 16 bytes (max_align_t on x86_64).
 * The descriptor must outlive every task spawned from it (make it static
 * const).
 */
typedef struct weft_future_desc {
	weft_poll (*poll)(void *self, weft_cx *cx, void *out);
	void (*drop)(void *self);
	void (*drop_output)(void *out);
	size_t size;
	size_t output_size;
} weft_future_desc;

/** Upper bound on weft_future_desc.size and .output_size (bytes). */
#define WEFT_FUTURE_MAX_SIZE ((size_t)1 << 30)

#ifdef __cplusplus
}
#endif
#endif /* WEFT_CORE_H */
