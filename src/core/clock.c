/* SPDX-License-Identifier: MIT */
/* The clock every layer shares: CLOCK_MONOTONIC in ns (vDSO, no syscall). */
#include <time.h>

#include <weft/time.h>

WEFT_API uint64_t weft_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t weft__deadline_in(uint64_t ns)
{
	uint64_t now = weft_now_ns();

	/* Saturate rather than wrap into the past. */
	return now + ns < now ? UINT64_MAX : now + ns;
}
