/* SPDX-License-Identifier: MIT */
/*
 * Futures by reference, and the combinators written once for all of them.
 *
 * Every weft future has one shape: a weft_future_desc (weft/core.h: one
 * poll signature, a drop, the sizes of state and output) plus its state.
 * Leaf futures publish their descriptor next to their type:
 *
 *   weft_io_desc            weft_io            output int64_t (weft/io.h)
 *   weft_send_all_desc      weft_send_all      output int64_t (weft/net.h)
 *   weft_recv_exact_desc    weft_recv_exact    output int64_t (weft/net.h)
 *   weft_join_future_desc   weft_join_future   output int     (weft/task.h)
 *   weft_oneshot_recv_desc  weft_oneshot_recv  output int     (weft/sync.h)
 *   weft_yield_desc         weft_yield         no output      (weft/task.h)
 *   weft_select_desc, weft_join_all_desc       (below)
 *
 * and a user's own future is just another descriptor. A weft_future names
 * one of them: descriptor, state, and where its output goes. The
 * combinators below poll any mix of them, and are futures themselves, so
 * they nest and can be spawned.
 *
 * Address stability: a future's state keeps its address from its first
 * poll until it is dropped. A task owns its state (weft_spawn copies it into
 * the task once), so state embedded in a task's state never moves; an op in
 * flight relies on it. Arms arrays and their states must likewise stay put
 * while a combinator uses them.
 *
 * Drop: as for tasks, a future's drop runs exactly once, either right after
 * its poll returned WEFT_READY or instead of further polls. Dropping a
 * future with an op in flight cancels the op (weft/io.h, lifetime rule).
 *
 * Threads: a future is polled by one thread at a time (the task's worker).
 * NULL: see weft/core.h.
 */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A future by reference. Fields other than those set by init are private. */
typedef struct weft_future {
	const weft_future_desc *desc;
	void *state; /**< desc->size bytes, owned by the caller */
	void *out;   /**< desc->output_size bytes: where READY writes */
	unsigned _flags;
} weft_future;

/**
 * Make @f refer to the future with descriptor @desc and state @state,
 * writing its output to @out. @state and @out are borrowed: they must
 * outlive @f's use and not move (see Address stability).
 * Returns 0, or -EINVAL: NULL @f, @desc or @desc->poll; NULL @state with a
 * non-zero size; NULL @out with a non-zero output size.
 */
WEFT_API int weft_future_init(weft_future *f, const weft_future_desc *desc,
			      void *state, void *out);

/**
 * Poll @f once. On WEFT_READY the output is in @f->out and @f's drop has
 * run; later polls return WEFT_READY without polling again (fused). A
 * future dropped before it was ready also returns WEFT_READY, with nothing
 * written. NULL @f: WEFT_READY.
 */
WEFT_API weft_poll weft_future_poll(weft_future *f, weft_cx *cx);

/** Drop @f's state unless that already happened. NULL is accepted. */
WEFT_API void weft_future_drop(weft_future *f);

/** True once weft_future_poll() returned READY after a real poll. */
WEFT_API bool weft_future_is_ready(const weft_future *f);

/**
 * weft_select: the first of N futures to be ready wins (Tokio's select!,
 * with `biased;`). Arms are polled in array order on every poll of the
 * select, so when several are ready at once the lowest index wins: put the
 * arm that must win ties first (e.g. a shutdown signal before a recv). As
 * soon as one arm is ready, every other arm is dropped (an op in flight is
 * cancelled; a join handle is detached; a oneshot receiver is released).
 *
 * Cost: each poll of the select polls every arm, O(N): meant for a handful
 * of arms. A timeout is a select of the future and a sleep
 * (weft_io_prep_sleep) with the future first.
 */
typedef struct weft_select {
	weft_future *_arms;
	size_t _n;
	size_t _winner;
	unsigned _state;
} weft_select;

/**
 * Prepare @s over the @n arms at @arms (borrowed; initialised with
 * weft_future_init). Returns 0, or -EINVAL (NULL @s or @arms, @n of 0, an
 * arm without descriptor).
 */
WEFT_API int weft_select_init(weft_select *s, weft_future *arms, size_t n);

/**
 * Poll the arms in order. READY when one is ready: *@winner (may be NULL)
 * is its index, its output is in its out, and every other arm has been
 * dropped. A poll after READY returns READY with the same winner.
 * NULL or unprepared @s: READY with *@winner = SIZE_MAX.
 */
WEFT_API weft_poll weft_select_poll(weft_select *s, weft_cx *cx,
				    size_t *winner);

/** Drop every arm not yet dropped. NULL is accepted. */
WEFT_API void weft_select_drop(weft_select *s);

/** weft_select as a generic future: output size_t, the winner's index. */
WEFT_API extern const weft_future_desc weft_select_desc;

/**
 * weft_join_all: wait for all N futures; each writes its output to its own
 * out (futures::join_all). Every pending arm is polled on each poll, O(N);
 * for many tasks use one join handle each. Dropping it drops the arms that
 * have not finished.
 */
typedef struct weft_join_all {
	weft_future *_arms;
	size_t _n;
	size_t _pending;
	unsigned _state;
} weft_join_all;

/**
 * Prepare @j over the @n arms at @arms (borrowed). @n may be 0 (ready at
 * once). Returns 0, or -EINVAL (NULL @j, NULL @arms with @n > 0, an arm
 * without descriptor).
 */
WEFT_API int weft_join_all_init(weft_join_all *j, weft_future *arms,
				size_t n);

/**
 * Poll every arm not yet ready. READY once all are (their outputs are in
 * their outs). NULL or unprepared @j: READY.
 */
WEFT_API weft_poll weft_join_all_poll(weft_join_all *j, weft_cx *cx);

/** Drop every arm not yet dropped. NULL is accepted. */
WEFT_API void weft_join_all_drop(weft_join_all *j);

/** weft_join_all as a generic future: no output. */
WEFT_API extern const weft_future_desc weft_join_all_desc;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_FUTURE_H */
