/* SPDX-License-Identifier: MIT */
/*
 * The blocking pool: threads for calls that block or burn CPU (file system
 * calls io_uring does not cover, getaddrinfo, compression, a library that
 * sleeps), so that they do not hold a worker and the tasks queued behind
 * it. Tokio's spawn_blocking.
 *
 * Each runtime owns one pool. Threads are started on demand, up to
 * weft_runtime_config.blocking_threads (default 64); a job queued while all
 * of them are busy waits for the first free one (FIFO). A thread idle for
 * blocking_keepalive_ms (default 10,000) exits.
 *
 * Shutdown (weft_runtime_shutdown): new jobs fail with -ESHUTDOWN; jobs
 * still queued are never run (their receivers get -EPIPE); jobs already
 * running are waited for, after the workers have stopped. A queued job's
 * cancel callback runs instead of the job. A job cannot be
 * interrupted, so one that never returns makes shutdown wait forever.
 *
 * NULL: see weft/core.h.
 */
#ifndef WEFT_BLOCKING_H
#define WEFT_BLOCKING_H

#include <weft/runtime.h>
#include <weft/sync.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Run @fn(@arg) on @rt's blocking pool.
 *
 * @rt:  the runtime; NULL means the calling worker's (weft_runtime_current).
 * @fn:  the job; runs once, on a pool thread, with every signal blocked.
 *       Pool threads are not workers: @fn may block, call weft_spawn() or
 *       weft_block_on() on @rt, but must not wait for @rt's shutdown,
 *       which waits for it.
 * @cancel: may be NULL; called with @arg instead of @fn when the job is
 *       dropped without running (shutdown came first), on the thread that
 *       shuts the runtime down, so that whatever @arg owns can be freed.
 *       Exactly one of @fn and @cancel runs for every job accepted.
 * @arg: passed to @fn (or @cancel); @fn usually takes it over.
 * @rx:  NULL to detach the job; otherwise set to a oneshot receiver (value
 *       size sizeof(void *)) that receives @fn's return value when it
 *       returns: await it with weft_oneshot_recv_desc from a task, or
 *       weft_block_on it from a thread; drop it with
 *       weft_oneshot_rx_drop(). If the receiver is dropped first, the job
 *       still runs and its return value is discarded (free what it owns in
 *       @fn if that matters). If the job is never run (shutdown), the
 *       receiver gets -EPIPE.
 *
 * Returns 0, or -EINVAL (NULL @fn; NULL @rt off a worker), -ESHUTDOWN (the
 * runtime is shutting down), -ENOMEM, or -EAGAIN (no pool thread exists
 * and none could be started). On error nothing was queued and *@rx is
 * untouched. Thread-safe: call from tasks, pool jobs or any thread.
 */
WEFT_API WEFT_MUST_USE int weft_spawn_blocking(weft_runtime *rt,
					       void *(*fn)(void *arg),
					       void (*cancel)(void *arg),
					       void *arg, weft_oneshot_rx **rx);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_BLOCKING_H */
