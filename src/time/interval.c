/* SPDX-License-Identifier: MIT */
/*
 * weft_interval: a schedule (next deadline, period, missed-tick mode) and
 * one sleep, prepared afresh for each tick. The modes are documented on
 * weft_missed_tick (weft/time.h); Tokio's MissedTickBehavior is the model,
 * with "missed" defined exactly (the next tick is already due) instead of
 * Tokio's 5 ms tolerance.
 */
#include <errno.h>
#include <string.h>

#include <weft/time.h>

#include "io/op.h"

#define INTERVAL_MAGIC 0x696e7476u /* "intv" */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

WEFT_API int weft_interval_init(weft_interval *iv, uint64_t start_ns,
				uint64_t period_ns, weft_missed_tick mode)
{
	if (!iv || !period_ns || (unsigned)mode > WEFT_MISSED_SKIP)
		return -EINVAL;
	if (iv->_magic == INTERVAL_MAGIC && weft__io_in_flight(&iv->_sleep))
		return -EBUSY;
	memset(iv, 0, sizeof(*iv));
	iv->_period = period_ns;
	iv->_next = start_ns;
	iv->_mode = (uint32_t)mode;
	iv->_magic = INTERVAL_MAGIC;
	return 0;
}

/* The tick scheduled at @d completed at @now: when is the next one? */
static uint64_t next_tick(const weft_interval *iv, uint64_t d, uint64_t now)
{
	uint64_t p = iv->_period;
	uint64_t next = add_sat(d, p);

	if (next > now)
		return next;
	switch (iv->_mode) {
	case WEFT_MISSED_DELAY:
		return add_sat(now, p);
	case WEFT_MISSED_SKIP: {
		uint64_t skip;

		if (__builtin_mul_overflow((now - d) / p + 1, p, &skip))
			return UINT64_MAX;
		return add_sat(d, skip);
	}
	default: /* WEFT_MISSED_BURST */
		return next;
	}
}

WEFT_API weft_poll weft_interval_tick(weft_interval *iv, weft_cx *cx,
				      int64_t *deadline)
{
	int64_t r;

	if (!iv || !cx || iv->_magic != INTERVAL_MAGIC) {
		if (deadline)
			*deadline = -EINVAL;
		return WEFT_READY;
	}
	if (!weft__io_in_flight(&iv->_sleep))
		weft_io_prep_sleep_until(&iv->_sleep, iv->_next);
	if (weft_io_poll(&iv->_sleep, cx, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	if (r < 0) { /* the schedule stays; the next call retries */
		if (deadline)
			*deadline = r;
		return WEFT_READY;
	}
	uint64_t d = iv->_next;
	iv->_next = next_tick(iv, d, weft_now_ns());
	if (deadline)
		*deadline = (int64_t)d;
	return WEFT_READY;
}

WEFT_API int weft_interval_reset(weft_interval *iv)
{
	if (!iv || iv->_magic != INTERVAL_MAGIC)
		return -EINVAL;
	weft_io_drop(&iv->_sleep);
	iv->_next = weft__deadline_in(iv->_period);
	return 0;
}

WEFT_API void weft_interval_drop(weft_interval *iv)
{
	if (iv && iv->_magic == INTERVAL_MAGIC)
		weft_io_drop(&iv->_sleep);
}

static weft_poll tick_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_interval_tick(self, cx, out);
}

static void tick_desc_drop(void *self)
{
	weft_interval_drop(self);
}

WEFT_API const weft_future_desc weft_interval_tick_desc = {
	.poll = tick_desc_poll,
	.drop = tick_desc_drop,
	.size = sizeof(weft_interval),
	.output_size = sizeof(int64_t),
};
