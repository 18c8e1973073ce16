/* SPDX-License-Identifier: MIT */
/*
 * The NULL rule of include/weft/core.h, checked for every public function
 * of core.h, task.h, runtime.h, sync.h and error.h: each pointer argument
 * that must name an object is passed NULL in turn, and the call must give
 * the documented answer (-EINVAL, READY with -EINVAL, false, 0/NULL, or
 * nothing for drops) instead of crashing. Pointers for which NULL has a
 * documented meaning (weft_spawn's @rt, @init, @join; outputs that discard)
 * are covered by the tests of their area.
 */
#include "helpers.h"

/* One worker, LIFO slot on. */
#define ONE (&wt_cfgs[0])

/* --- core.h -------------------------------------------------------------- */

WT_TEST(api_null, cx_init_null_cx)
{
	weft_waker w = weft_waker_noop();
	weft_cx_init(NULL, &w);
}

WT_TEST(api_null, cx_init_null_waker_lends_empty_waker)
{
	weft_cx cx;
	weft_cx_init(&cx, NULL);
	const weft_waker *w = weft_cx_waker(&cx);
	cr_assert_not_null(w);
	cr_expect_null(w->vtable);
	weft_waker c = weft_waker_clone(w);
	cr_expect_null(c.vtable);
}

WT_TEST(api_null, cx_waker_null_is_null)
{
	cr_expect_null(weft_cx_waker(NULL));
}

WT_TEST(api_null, waker_calls_accept_null)
{
	weft_waker w = weft_waker_noop();
	weft_waker c = weft_waker_clone(NULL);
	cr_expect_null(c.vtable);
	weft_waker_wake(NULL);
	weft_waker_wake_by_ref(NULL);
	weft_waker_drop(NULL);
	cr_expect_not(weft_waker_will_wake(NULL, &w));
	cr_expect_not(weft_waker_will_wake(&w, NULL));
	cr_expect_not(weft_waker_will_wake(NULL, NULL));
}

WT_TEST(api_null, waker_calls_accept_empty)
{
	weft_waker e = WEFT_WAKER_EMPTY;
	weft_waker c = weft_waker_clone(&e);
	cr_expect_null(c.vtable);
	weft_waker_wake_by_ref(&e);
	weft_waker_wake(&e);
	weft_waker_drop(&e);
	cr_expect_null(e.vtable);
}

/* --- task.h -------------------------------------------------------------- */

WT_TEST(api_null, spawn_null_desc_and_runtime)
{
	weft_runtime *rt = wt_rt_new(ONE);
	weft_join *j = NULL;
	cr_expect_eq(weft_spawn(rt, NULL, NULL, &j), -EINVAL);
	cr_expect_null(j);
	/* NULL @rt means "this worker's runtime": off a worker, -EINVAL. */
	cr_expect_eq(weft_spawn(NULL, &wt_value_desc, NULL, &j), -EINVAL);
	cr_expect_null(j);
	wt_rt_free(rt);
}

/* @poll(NULL handle): READY with -EINVAL, and READY without a status. */
#define expect_null_handle_poll(poll)                                      \
	do {                                                               \
		weft_waker w_ = weft_waker_noop();                         \
		weft_cx cx_;                                               \
		int st_ = 1;                                               \
		weft_cx_init(&cx_, &w_);                                   \
		cr_expect_eq(poll(NULL, &cx_, &st_, NULL), WEFT_READY);    \
		cr_expect_eq(st_, -EINVAL);                                \
		cr_expect_eq(poll(NULL, &cx_, NULL, NULL), WEFT_READY);    \
	} while (0)

WT_TEST(api_null, join_poll_null_join)
{
	expect_null_handle_poll(weft_join_poll);
}

/* A NULL context is refused without taking the output: a later poll
 * still gets it. */
WT_TEST(api_null, join_poll_null_cx)
{
	weft_runtime *rt = wt_rt_new(ONE);
	struct wt_value v = wt_value_init(11, 0, NULL);
	weft_join *j;
	wt_spawn(rt, &wt_value_desc, &v, &j);
	int st = 1;
	int64_t out = 0;
	cr_expect_eq(weft_join_poll(j, NULL, &st, &out), WEFT_READY);
	cr_expect_eq(st, -EINVAL);
	cr_expect_eq(out, 0);
	wt_join_wait(j, &st, &out);
	cr_expect_eq(st, 0);
	cr_expect_eq(out, 11);
	weft_join_drop(j);
	wt_rt_free(rt);
}

WT_TEST(api_null, join_drop_abort_is_finished_null)
{
	weft_join_drop(NULL);
	weft_task_abort(NULL);
	cr_expect_not(weft_join_is_finished(NULL));
}

WT_TEST(api_null, yield_poll_null)
{
	weft_waker w = weft_waker_noop();
	weft_cx cx;
	weft_yield y = WEFT_YIELD_INIT;
	weft_cx_init(&cx, &w);
	cr_expect_eq(weft_yield_poll(NULL, &cx), WEFT_READY);
	/* Without a context no wake can be arranged: PENDING would hang. */
	cr_expect_eq(weft_yield_poll(&y, NULL), WEFT_READY);
}

/* --- runtime.h ----------------------------------------------------------- */

WT_TEST(api_null, runtime_config_init_null)
{
	weft_runtime_config_init(NULL);
}

WT_TEST(api_null, runtime_new_null_out)
{
	weft_runtime_config rc;
	weft_runtime_config_init(&rc);
	cr_expect_eq(weft_runtime_new(&rc, NULL), -EINVAL);
	cr_expect_eq(weft_runtime_new(NULL, NULL), -EINVAL);
}

WT_TEST(api_null, runtime_shutdown_free_null)
{
	cr_expect_eq(weft_runtime_shutdown(NULL), -EINVAL);
	cr_expect_eq(weft_runtime_shutdown_timeout(NULL, 0), -EINVAL);
	weft_runtime_free(NULL);
}

WT_TEST(api_null, runtime_workers_null_is_0)
{
	cr_expect_eq(weft_runtime_workers(NULL), 0);
}

WT_TEST(api_null, runtime_current_off_worker)
{
	cr_expect_null(weft_runtime_current());
	cr_expect_eq(weft_worker_index(), -1);
}

WT_TEST(api_null, block_on_null)
{
	weft_runtime *rt = wt_rt_new(ONE);
	int64_t out = 0;
	cr_expect_eq(weft_block_on(NULL, &wt_value_desc, NULL, &out), -EINVAL);
	cr_expect_eq(weft_block_on(rt, NULL, NULL, &out), -EINVAL);
	wt_rt_free(rt);
}

static int64_t block_on_null_desc_on_worker(void *arg)
{
	(void)arg;
	/* A NULL argument is -EINVAL wherever the call is made. */
	return weft_block_on(weft_runtime_current(), NULL, NULL, NULL);
}

WT_TEST(api_null, block_on_null_desc_on_worker)
{
	weft_runtime *rt = wt_rt_new(ONE);
	cr_expect_eq(wt_run_on_worker(rt, block_on_null_desc_on_worker, NULL),
		     -EINVAL);
	wt_rt_free(rt);
}

WT_TEST(api_null, runtime_metrics_get_null)
{
	weft_runtime *rt = wt_rt_new(ONE);
	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_expect_eq(weft_runtime_metrics_get(NULL, &m), -EINVAL);
	cr_expect_eq(weft_runtime_metrics_get(rt, NULL), -EINVAL);
	wt_rt_free(rt);
}

/* --- sync.h -------------------------------------------------------------- */

WT_TEST(api_null, oneshot_new_send_drop_null)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_expect_eq(weft_oneshot_new(8, NULL, &rx), -EINVAL);
	cr_expect_eq(weft_oneshot_new(8, &tx, NULL), -EINVAL);
	cr_expect_eq(weft_oneshot_send(NULL, "12345678"), -EINVAL);
	weft_oneshot_tx_drop(NULL);
	weft_oneshot_rx_drop(NULL);
}

WT_TEST(api_null, oneshot_recv_poll_null_rx)
{
	expect_null_handle_poll(weft_oneshot_recv_poll);
}

/* Refused without consuming the value: a later poll still gets it. */
WT_TEST(api_null, oneshot_recv_poll_null_cx)
{
	weft_oneshot_tx *tx;
	weft_oneshot_rx *rx;
	cr_assert_eq(weft_oneshot_new(sizeof(uint64_t), &tx, &rx), 0);
	uint64_t v = 5, got = 0;
	int st = 1;
	cr_expect_eq(weft_oneshot_recv_poll(rx, NULL, &st, &got), WEFT_READY);
	cr_expect_eq(st, -EINVAL);
	cr_expect_eq(weft_oneshot_send(tx, &v), 0);
	cr_expect_eq(weft_oneshot_recv_poll(rx, NULL, &st, &got), WEFT_READY);
	cr_expect_eq(st, -EINVAL);
	cr_expect_eq(got, 0);
	weft_waker w = weft_waker_noop();
	weft_cx cx;
	weft_cx_init(&cx, &w);
	cr_expect_eq(weft_oneshot_recv_poll(rx, &cx, &st, &got), WEFT_READY);
	cr_expect_eq(st, 0);
	cr_expect_eq(got, 5);
	weft_oneshot_rx_drop(rx);
	wt_leak_check();
}

/* --- error.h ------------------------------------------------------------- */

WT_TEST(api_null, strerror_never_null)
{
	cr_expect_not_null(weft_strerror(0));
	cr_expect_not_null(weft_strerror(-EINVAL));
}
