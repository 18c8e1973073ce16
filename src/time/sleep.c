/* SPDX-License-Identifier: MIT */
/*
 * Sleep futures: an absolute IORING_OP_TIMEOUT per sleep on the polling
 * worker's ring, so the kernel's hrtimer decides when it fires and it never
 * fires early. A per-worker timer wheel driven by one ring timeout is the
 * planned replacement when many timers are live (docs/design.md).
 */
#include <time.h>

#include <weft/time.h>

#include "io/op.h"

WEFT_API uint64_t weft_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

WEFT_API void weft_sleep_until_init(weft_io *io, uint64_t deadline_ns)
{
	weft__io_init(io, WEFT__OP_SLEEP);
	io->_u.deadline_ns = deadline_ns;
}

WEFT_API void weft_sleep_init(weft_io *io, uint64_t ns)
{
	uint64_t now = weft_now_ns();
	uint64_t deadline = now + ns;

	if (deadline < now) /* saturate rather than wrap into the past */
		deadline = UINT64_MAX;
	weft_sleep_until_init(io, deadline);
}
