/* SPDX-License-Identifier: MIT */
/*
 * Time: the monotonic clock and sleep futures. Durations and deadlines are
 * nanoseconds on CLOCK_MONOTONIC. NULL: see weft/core.h.
 */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/** CLOCK_MONOTONIC now, in ns. Thread-safe. */
WEFT_API uint64_t weft_now_ns(void);

/**
 * Prepare @io as a sleep of @ns nanoseconds from now (the deadline is
 * taken at this call; a deadline past UINT64_MAX saturates). Poll with
 * weft_io_poll(): READY with 0 once CLOCK_MONOTONIC has reached the
 * deadline (never earlier). Implemented as an absolute IORING_OP_TIMEOUT on
 * the polling worker's ring, so, like every op, polling it off a worker
 * gives -EPERM whatever the deadline. Returns 0, or -EINVAL for NULL @io.
 */
WEFT_API int weft_io_prep_sleep(weft_io *io, uint64_t ns);

/** As weft_io_prep_sleep(), to an absolute CLOCK_MONOTONIC deadline in ns. */
WEFT_API int weft_io_prep_sleep_until(weft_io *io, uint64_t deadline_ns);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TIME_H */
