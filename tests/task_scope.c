/* SPDX-License-Identifier: MIT */
/*
 * weft_scope: the join waits for every task and reports the first error;
 * with WEFT_SCOPE_CANCEL_ON_ERROR the first error aborts the rest and
 * later spawns fail; free refuses while a task runs; only int outputs.
 */
#include "helpers.h"

/* READY with the int it receives (-EPIPE if the sender is dropped). */
struct itask {
	weft_oneshot_rx *rx;
	atomic_int *drops;
};

static weft_poll itask_poll(void *self, weft_cx *cx, void *out)
{
	struct itask *t = self;
	int v = 0, st;

	if (weft_oneshot_recv_poll(t->rx, cx, &st, &v) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int *)out = st ? st : v;
	return WEFT_READY;
}

static void itask_drop(void *self)
{
	struct itask *t = self;

	weft_oneshot_rx_drop(t->rx);
	atomic_fetch_add(t->drops, 1);
}

static const weft_future_desc itask_desc = {
	.poll = itask_poll,
	.drop = itask_drop,
	.size = sizeof(struct itask),
	.output_size = sizeof(int),
};

static weft_oneshot_tx *spawn_itask(weft_scope *s, weft_runtime *rt,
				    atomic_int *drops)
{
	struct itask t = { .drops = drops };
	weft_oneshot_tx *tx;

	cr_assert_eq(weft_oneshot_new(sizeof(int), &tx, &t.rx), 0);
	cr_assert_eq(weft_scope_spawn(s, rt, &itask_desc, &t), 0);
	return tx;
}

static void send_int(weft_oneshot_tx *tx, int v)
{
	cr_assert_eq(weft_oneshot_send(tx, &v), 0);
}

static int join_scope(weft_runtime *rt, weft_scope *s)
{
	weft_scope_join j;
	int res = 1;

	cr_assert_eq(weft_scope_join_init(&j, s), 0);
	wt_block_on(rt, &weft_scope_join_desc, &j, &res);
	return res;
}

enum { N = 6 };

/* N tasks in a scope, and its join polled by hand with a probe. */
struct fix {
	weft_runtime *rt;
	weft_scope *s;
	weft_oneshot_tx *tx[N];
	atomic_int drops;
	struct wt_probe pr;
	weft_scope_join j;
};

static void fix_init(struct fix *f, const struct wt_cfg *cfg)
{
	f->rt = wt_rt_new(cfg);
	atomic_init(&f->drops, 0);
	wt_probe_init(&f->pr);
	cr_assert_eq(weft_scope_new(&f->s, 0), 0);
	for (int i = 0; i < N; i++)
		f->tx[i] = spawn_itask(f->s, f->rt, &f->drops);
	cr_assert_eq(weft_scope_join_init(&f->j, f->s), 0);
}

/* 1 while pending, else the join's result. */
static int fix_poll(struct fix *f)
{
	int res = 1;

	if (weft_scope_join_poll(&f->j, &f->pr.cx, &res) == WEFT_PENDING)
		return 1;
	return res;
}

/* Poll until READY, sleeping on the probe between polls. */
static int fix_wait(struct fix *f)
{
	int res;

	for (int k = 0; (res = fix_poll(f)) == 1; k++)
		cr_assert(k < 10 && wt_parker_wait(f->pr.p, 5000));
	return res;
}

static void fix_fini(struct fix *f)
{
	weft_scope_join_drop(&f->j);
	cr_expect_eq(weft_scope_free(f->s), 0);
	wt_probe_fini(&f->pr);
	wt_rt_free(f->rt);
}

WT_RT_TEST(scope, join_waits_for_every_task)
{
	struct fix f;

	fix_init(&f, cfg);
	for (int i = 0; i < N; i++) {
		cr_expect_eq(fix_poll(&f), 1, "READY with %d of %d done", i,
			     N);
		send_int(f.tx[i], 0);
		cr_assert(wt_parker_wait(f.pr.p, 5000), "join not woken");
	}
	/* The last completion's wake may have come before its join. */
	cr_expect_eq(fix_wait(&f), 0);
	cr_expect_eq(fix_poll(&f), -EALREADY);
	cr_expect_eq(atomic_load(&f.drops), N);
	fix_fini(&f);
}

WT_RT_TEST(scope, first_error_cancels_the_rest)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_oneshot_tx *tx[N];
	atomic_int drops = 0;
	weft_scope *s;
	struct itask t = { .drops = &drops };

	cr_assert_eq(weft_scope_new(&s, WEFT_SCOPE_CANCEL_ON_ERROR), 0);
	for (int i = 0; i < N; i++)
		tx[i] = spawn_itask(s, rt, &drops);
	send_int(tx[2], -EIO);
	cr_expect_eq(join_scope(rt, s), -EIO, "the first error");
	cr_expect_eq(atomic_load(&drops), N, "every task finished");
	/* The others were aborted: their senders find nobody. */
	for (int i = 0; i < N; i++)
		if (i != 2)
			cr_expect_eq(weft_oneshot_send(tx[i], &i), -EPIPE);
	cr_expect_eq(weft_scope_spawn(s, rt, &itask_desc, &t), -ECANCELED);
	cr_expect_eq(join_scope(rt, s), -EIO, "remembered");
	cr_expect_eq(weft_scope_free(s), 0);
	wt_rt_free(rt);
}

WT_RT_TEST(scope, error_without_cancel_waits_for_the_rest)
{
	struct fix f;

	fix_init(&f, cfg);
	send_int(f.tx[0], -EIO);
	send_int(f.tx[1], -ENOSPC);
	cr_expect_eq(wt_wait_atomic_ge(&f.drops, 2, 5000), 2);
	cr_expect_eq(fix_poll(&f), 1,
		     "an error without the flag does not end the scope");
	for (int i = 2; i < N; i++)
		send_int(f.tx[i], 0);
	cr_expect_eq(fix_wait(&f), -EIO, "the first of the two errors");
	fix_fini(&f);
}

WT_RT_TEST(scope, free_refuses_while_a_task_runs)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_oneshot_tx *tx[N];
	atomic_int drops = 0;
	weft_scope *s;

	cr_assert_eq(weft_scope_new(&s, 0), 0);
	for (int i = 0; i < N; i++)
		tx[i] = spawn_itask(s, rt, &drops);
	cr_expect_eq(weft_scope_free(s), -EBUSY);
	for (int i = 0; i < N - 1; i++)
		send_int(tx[i], 0);
	cr_expect_eq(wt_wait_atomic_ge(&drops, N - 1, 5000), N - 1);
	cr_expect_eq(weft_scope_free(s), -EBUSY, "one still runs");
	weft_scope_cancel(s);
	cr_expect_eq(join_scope(rt, s), -ECANCELED);
	cr_expect_eq(weft_oneshot_send(tx[N - 1], &(int){ 0 }), -EPIPE);
	cr_expect_eq(weft_scope_free(s), 0);

	/* Finished but never joined: free releases them. */
	cr_assert_eq(weft_scope_new(&s, 0), 0);
	tx[0] = spawn_itask(s, rt, &drops);
	send_int(tx[0], -EIO);
	cr_expect_eq(wt_wait_atomic_ge(&drops, N + 1, 5000), N + 1);
	int r = -EBUSY;
	for (int k = 0; k < 5000 && r == -EBUSY; k++) {
		r = weft_scope_free(s);
		if (r == -EBUSY)
			wt_sleep_ms(1); /* the drop runs just before completion */
	}
	cr_expect_eq(r, 0);
	wt_rt_free(rt);
}

WT_TEST(scope, bad_arguments)
{
	struct wt_cfg one = { 1, 0 };
	weft_runtime *rt = wt_rt_new(&one);
	struct wt_value v = wt_value_init(1, 0, NULL);
	weft_scope_join j;
	weft_scope *s;
	weft_waker noop = weft_waker_noop();
	weft_cx cx;
	int res = 1;

	weft_cx_init(&cx, &noop);
	cr_expect_eq(weft_scope_new(NULL, 0), -EINVAL);
	cr_expect_eq(weft_scope_new(&s, 0x10), -EINVAL);
	cr_assert_eq(weft_scope_new(&s, 0), 0);
	cr_expect_eq(weft_scope_spawn(s, rt, &wt_value_desc, &v), -EINVAL,
		     "an int64_t output is not an int");
	cr_expect_eq(weft_scope_spawn(s, rt, NULL, NULL), -EINVAL);
	cr_expect_eq(weft_scope_spawn(NULL, rt, &itask_desc, NULL), -EINVAL);
	cr_expect_eq(weft_scope_join_init(NULL, s), -EINVAL);
	cr_expect_eq(weft_scope_join_init(&j, NULL), -EINVAL);
	cr_expect_eq(weft_scope_join_poll(NULL, &cx, &res), WEFT_READY);
	cr_expect_eq(res, -EINVAL);
	/* An empty scope is joined at once. */
	cr_assert_eq(weft_scope_join_init(&j, s), 0);
	cr_expect_eq(weft_scope_join_poll(&j, &cx, &res), WEFT_READY);
	cr_expect_eq(res, 0);
	weft_scope_join_drop(&j);
	weft_scope_join_drop(NULL);
	weft_scope_cancel(NULL);
	cr_expect_eq(weft_scope_free(NULL), 0);
	cr_expect_eq(weft_scope_free(s), 0);
	wt_rt_free(rt);
}
