/* SPDX-License-Identifier: MIT */
/* Runtime metrics that count what threads outside the runtime cause. */
#include "helpers.h"

static weft_runtime_metrics metrics(weft_runtime *rt)
{
	weft_runtime_metrics m = { .size = sizeof(m) };

	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	return m;
}

/*
 * One worker, so every unpark comes from this (non-worker) thread through
 * the eventfd. Regression: such unparks were not counted in unparks_sent.
 */
Test(sched_metrics, unparks_from_foreign_threads_are_counted, .timeout = 30)
{
	weft_runtime_config cfg;
	weft_runtime *rt;

	(void)wt_cfgs; /* this suite needs one fixed configuration */
	weft_runtime_config_init(&cfg);
	cfg.workers = 1;
	cr_assert_eq(weft_runtime_new(&cfg, &rt), 0);

	uint64_t deadline = wt_mono_ns() + 10ull * 1000000000u;
	uint64_t unparks = 0;
	while (unparks == 0 && wt_mono_ns() < deadline) {
		/* Let the worker park, then give it work from here. */
		uint64_t parks = metrics(rt).parks;
		while (metrics(rt).parks == parks && wt_mono_ns() < deadline)
			wt_sleep_ms(1);
		wt_sleep_ms(5);
		struct wt_value v = wt_value_init(1, 0, NULL);
		int64_t out = 0;
		cr_assert_eq(weft_block_on(rt, &wt_value_desc, &v, &out), 0);
		cr_assert_eq(out, 1);
		unparks = metrics(rt).unparks_sent;
	}
	cr_assert_gt(unparks, 0, "no unpark from a foreign thread counted");
	weft_runtime_free(rt);
	wt_leak_check();
}
