/* SPDX-License-Identifier: MIT */
/* Time: the monotonic clock and sleep futures. Durations are nanoseconds. */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/** CLOCK_MONOTONIC now, in ns. Thread-safe. */
WEFT_API uint64_t weft_now_ns(void);

/**
 * Initialise @io as a sleep of @ns nanoseconds from now (the deadline is
 * taken at this call). Poll with weft_io_poll(): READY with 0 once
 * CLOCK_MONOTONIC has reached the deadline (never earlier). Implemented as
 * an absolute IORING_OP_TIMEOUT on the polling worker's ring.
 */
WEFT_API void weft_sleep_init(weft_io *io, uint64_t ns);

/** As weft_sleep_init(), to an absolute CLOCK_MONOTONIC deadline in ns. */
WEFT_API void weft_sleep_until_init(weft_io *io, uint64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TIME_H */
