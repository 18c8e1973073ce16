/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the op-level Criterion tests (future_select, io_fd,
 * net_stream), on top of helpers.h:
 *
 *  - wt_ops_quiesce: wait (CLOCK_MONOTONIC deadline) until every op the
 *    runtime submitted has completed. A cancelled op completes only when
 *    its cancel lands, so this is how a test sees that a dropped op (a
 *    10 s sleep, a recv that never gets data) was really cancelled: it
 *    catches up long before the op could have finished by itself.
 *  - wt_noop_cx: a context lending the no-op waker, for polling from the
 *    test thread.
 *  - wt_pipe: a blocking pipe (O_CLOEXEC), asserting.
 *  - wt_rt_free_prompt: wt_rt_free that also checks shutdown was quick
 *    (nothing waited for a long op to finish by itself).
 *
 * Header-only: each test program is one translation unit.
 */
#ifndef WEFT_TESTS_IO_HELPERS_H
#define WEFT_TESTS_IO_HELPERS_H

#include <fcntl.h>
#include <sys/socket.h>

#include "helpers.h"

#define WT_MS 1000000ull

/* Read @rt's metrics, asserting success. */
static WT_UNUSED weft_runtime_metrics wt_metrics(weft_runtime *rt)
{
	weft_runtime_metrics m = { .size = sizeof(m) };
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	return m;
}

/*
 * Wait at most @ms ms until ops_completed has caught up with
 * ops_submitted. Returns true if it did.
 */
static WT_UNUSED bool wt_ops_quiesce(weft_runtime *rt, unsigned ms)
{
	uint64_t deadline = wt_mono_ns() + (uint64_t)ms * WT_MS;
	for (;;) {
		weft_runtime_metrics m = wt_metrics(rt);
		if (m.ops_completed == m.ops_submitted)
			return true;
		if (wt_mono_ns() >= deadline) {
			cr_log_error("ops: %llu submitted, %llu completed",
				     (unsigned long long)m.ops_submitted,
				     (unsigned long long)m.ops_completed);
			return false;
		}
		wt_sleep_ms(1);
	}
}

/* Point @cx at the no-op waker stored in *@w. */
static WT_UNUSED weft_cx *wt_noop_cx(weft_cx *cx, weft_waker *w)
{
	*w = weft_waker_noop();
	weft_cx_init(cx, w);
	return cx;
}

/* A blocking pipe: reads wait in the kernel for data. */
static WT_UNUSED void wt_pipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
}

/*
 * Shut @rt down and free it (wt_rt_free: leak check under ASan), expecting
 * it to take less than 2 s: a dropped long op must have been cancelled,
 * not waited for.
 */
static WT_UNUSED void wt_rt_free_prompt(weft_runtime *rt)
{
	uint64_t t0 = wt_mono_ns();
	wt_rt_free(rt);
	uint64_t took = wt_mono_ns() - t0;
	cr_expect_lt(took, 2000 * WT_MS, "shutdown took %llu ms",
		     (unsigned long long)(took / WT_MS));
}

/* A connected AF_UNIX stream socket pair. */
static WT_UNUSED void wt_sock_pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0,
		     "socketpair: %s", strerror(errno));
}

/* A runtime for @cfg and a socket pair; closing checks the shutdown was
 * prompt (nothing waited for a long op). */
struct wt_rt_pair {
	weft_runtime *rt;
	int sv[2];
};

static WT_UNUSED struct wt_rt_pair wt_rt_pair_open(const struct wt_cfg *cfg)
{
	struct wt_rt_pair f = { .rt = wt_rt_new(cfg) };
	wt_sock_pair(f.sv);
	return f;
}

static WT_UNUSED void wt_rt_pair_close(struct wt_rt_pair *f)
{
	wt_rt_free_prompt(f->rt);
	close(f->sv[0]);
	close(f->sv[1]);
}

#endif /* WEFT_TESTS_IO_HELPERS_H */
