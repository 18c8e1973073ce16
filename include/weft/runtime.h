/* SPDX-License-Identifier: MIT */
/*
 * The runtime: N worker threads, each with a Chase-Lev run queue, a LIFO
 * slot and its own io_uring, plus a global injector queue. Tasks move
 * between workers by stealing (Chase & Lev, SPAA 2005; C11 orders from Le et
 * al., PPoPP 2013); the shape of the scheduler follows Tokio's
 * multi-threaded runtime.
 */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_runtime weft_runtime;

/** Log levels passed to weft_runtime_config.log. */
enum {
	WEFT_LOG_ERROR = 0,
	WEFT_LOG_WARN = 1,
	WEFT_LOG_INFO = 2,
};

/** weft_runtime_config.flags */
enum {
	/** Never use the LIFO slot: every wake goes to the back of a queue. */
	WEFT_RT_NO_LIFO_SLOT = 1u << 0,
	/** Do not ask for IORING_SETUP_DEFER_TASKRUN even if the kernel has it. */
	WEFT_RT_NO_DEFER_TASKRUN = 1u << 1,
	/**
	 * Each worker takes its own queued tasks oldest first (one CAS per
	 * pop), and thieves then steal half a queue with one CAS. Without
	 * it a worker takes its newest task first (Chase-Lev's take, no
	 * CAS) and thieves pay one CAS per stolen task. See docs/design.md.
	 */
	WEFT_RT_FIFO_OWNER = 1u << 2,
	/**
	 * A plain ring: ask for neither DEFER_TASKRUN nor COOP_TASKRUN
	 * (implies WEFT_RT_NO_DEFER_TASKRUN). For tests and comparisons.
	 */
	WEFT_RT_NO_COOP_TASKRUN = 1u << 3,
	/** Streams (weft/multishot.h) use single-shot ops submitted again
	 * after each completion instead of multishot ops. */
	WEFT_RT_NO_MULTISHOT = 1u << 4,
	/** Recv streams receive into a buffer the runtime picks (plain recv)
	 * instead of registering a kernel buffer ring. */
	WEFT_RT_NO_BUF_RING = 1u << 5,
};

/**
 * Runtime settings. Initialise with weft_runtime_config_init(), then change
 * fields; the size field lets later versions grow the struct.
 */
typedef struct weft_runtime_config {
	size_t size;           /**< sizeof(weft_runtime_config); set by init */
	unsigned workers;      /**< worker threads; 0: online CPUs (max 256) */
	unsigned ring_entries; /**< SQ entries per worker ring; 0: 256 */
	unsigned flags;        /**< WEFT_RT_* */
	/**
	 * Search rounds (scans of the injector and the other workers) a worker
	 * makes before it parks; 0: the default (see docs/design.md).
	 */
	unsigned spin_rounds;
	/**
	 * Optional diagnostics sink; called from any thread, may be called
	 * concurrently; @msg is valid for the call only. The library never
	 * prints on its own.
	 */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	/** Blocking-pool threads at most (weft/blocking.h); 0: 64. */
	unsigned blocking_threads;
	/** ms an idle blocking-pool thread waits for work before it exits;
	 * 0: 10,000. */
	unsigned blocking_keepalive_ms;
	/** Provided buffers per worker for recv streams (weft/multishot.h),
	 * rounded up to a power of two, at most 32,768; 0: 256. */
	unsigned buf_count;
	/** Bytes per provided buffer, at most 1 MiB; 0: 4,096. */
	unsigned buf_size;
} weft_runtime_config;

/**
 * Fill @cfg with the defaults. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API void weft_runtime_config_init(weft_runtime_config *cfg);

/**
 * Create a runtime and start its workers.
 *
 * @cfg:  settings, or NULL for the defaults; read during the call only.
 * @out:  receives the runtime on success; untouched on failure.
 *
 * Each worker sets up an io_uring, asking for SINGLE_ISSUER and
 * DEFER_TASKRUN (kernel 6.1+), else COOP_TASKRUN, else a plain ring; the
 * mode chosen is in weft_runtime_metrics.ring_mode and logged at INFO.
 *
 * Returns 0, or:
 *  -EINVAL  bad config (size field, workers > 256, ring_entries > 32768)
 *  -ENOMEM  out of memory, or io_uring's locked-memory limit (RLIMIT_MEMLOCK)
 *  -EPERM   io_uring is forbidden (seccomp, kernel.io_uring_disabled)
 *  -ENOSYS  the kernel has no io_uring
 *  -EAGAIN  a worker thread could not be created
 *  other negative errno from io_uring_setup or eventfd.
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API WEFT_MUST_USE int weft_runtime_new(const weft_runtime_config *cfg,
					    weft_runtime **out);

/**
 * Shut the runtime down: stop accepting spawns (they fail with -ESHUTDOWN),
 * cancel every task (their futures are dropped on a worker, as by
 * weft_task_abort), wait for every in-flight io_uring op to retire, and join
 * the worker threads. Join handles stay valid: awaiting them yields
 * -ECANCELED for tasks that did not finish. Idempotent.
 *
 * Returns 0, or -EDEADLK when called from a worker thread of @rt (it would
 * wait for itself). Call from one thread at a time.
 * NULL: see core.h.
 */
WEFT_API int weft_runtime_shutdown(weft_runtime *rt);

/**
 * Graceful drain, then shutdown: stop new spawns, let the tasks already
 * spawned run until they have all finished or @timeout_ns has passed, then
 * shut down as weft_runtime_shutdown() does, cancelling whatever is left.
 *
 * From the call on, weft_spawn() and weft_spawn_with() on @rt fail with
 * -ESHUTDOWN from every thread, tasks of @rt included, and so does
 * weft_block_on(). A task that spawns a child to finish its work must
 * handle that error (do the work itself, or fail): refusing every spawn
 * means the drain only ever waits for work that existed when it began, so
 * a task that keeps spawning (an accept loop, a retry chain) cannot hold
 * it up. weft_spawn_blocking() (weft/blocking.h) is still accepted until
 * the deadline, since a task finishing its request may wait on a blocking
 * job and that job is not a new task.
 *
 * Workers keep running: tasks are polled, timers fire and io completes as
 * before. Detached tasks are waited for like joined ones. A task that
 * would never finish on its own (an accept loop, a wait on a peer that
 * stays silent) is cancelled at the deadline: abort such tasks first
 * (weft_task_abort()) if the drain should not wait for them. The caller
 * sleeps on a futex and is woken by the completion of the last task; it
 * does not poll.
 *
 * @timeout_ns: the grace period in ns, measured on CLOCK_MONOTONIC from
 *              the call; 0 cancels at once what is running;
 *              UINT64_MAX waits without a deadline.
 *
 * Join handles stay valid: tasks that finished give their output; those
 * cancelled at the deadline give -ECANCELED.
 *
 * Returns 0 (every task finished before the deadline; also when none was
 * running), or:
 *  -ETIMEDOUT  tasks were still running at the deadline and were
 *              cancelled; the shutdown completed all the same
 *  -EDEADLK    called from a worker thread of @rt (nothing was done)
 *  -EALREADY   @rt is already shut down (by either call; nothing was done)
 *  -EINVAL     @rt is NULL
 * Holds the same lock as weft_runtime_shutdown() for the whole call: a
 * concurrent weft_runtime_shutdown() waits for the drain to end. Call
 * from one thread at a time.
 * NULL: see core.h.
 */
WEFT_API int weft_runtime_shutdown_timeout(weft_runtime *rt,
					   uint64_t timeout_ns);

/**
 * Free the runtime, shutting it down first if needed. Join handles must have
 * been dropped and wakers for its tasks released before; @rt is invalid
 * afterwards. Not for a worker thread of @rt. NULL is accepted.
 * NULL: see core.h.
 */
WEFT_API void weft_runtime_free(weft_runtime *rt);

/**
 * Number of worker threads of @rt. Thread-safe.
 * NULL: see core.h.
 */
WEFT_API unsigned weft_runtime_workers(const weft_runtime *rt);

/**
 * The runtime whose worker thread is calling, or NULL on any other thread.
 * Thread-safe.
 */
WEFT_API weft_runtime *weft_runtime_current(void);

/**
 * Index (0..workers-1) of the calling worker thread, or -1 when not on a
 * worker. Thread-safe.
 */
WEFT_API int weft_worker_index(void);

/**
 * Run a future to completion from a thread that is not a worker of @rt, and
 * wait for it. The future is spawned as a task (its state, @desc->size bytes
 * at @init or zeroes if @init is NULL, is copied) and the calling thread
 * sleeps on a futex until it completes.
 *
 * @out: receives @desc->output_size bytes on success; may be NULL to
 *       discard the output (desc->drop_output is then called).
 *
 * Returns 0, or:
 *  -EINVAL     NULL @rt or @desc (checked first, on any thread), or a
 *              bad @desc
 *  -ENOMEM     out of memory
 *  -ESHUTDOWN  the runtime is shut down
 *  -ECANCELED  the task was cancelled (runtime shutdown) before finishing
 *  -EDEADLK    called from a worker thread of any weft runtime
 * Thread-safe: any number of threads may block_on concurrently.
 * NULL: see core.h.
 */
WEFT_API WEFT_MUST_USE int weft_block_on(weft_runtime *rt,
					 const weft_future_desc *desc,
					 const void *init, void *out);

/** weft_runtime_metrics.ring_mode */
enum {
	WEFT_RING_PLAIN = 0,        /**< no task-run optimisations */
	WEFT_RING_COOP_TASKRUN = 1, /**< IORING_SETUP_COOP_TASKRUN */
	WEFT_RING_DEFER_TASKRUN = 2 /**< SINGLE_ISSUER + DEFER_TASKRUN */
};

/**
 * Counters summed over all workers. Counters are relaxed reads of
 * per-worker values: a snapshot, not a consistent cut.
 */
typedef struct weft_runtime_metrics {
	size_t size;             /**< set by the caller to sizeof(*m) */
	unsigned workers;
	unsigned ring_mode;      /**< WEFT_RING_* */
	uint64_t spawned;        /**< tasks spawned */
	uint64_t polls;          /**< task polls */
	uint64_t lifo_polls;     /**< polls of a task taken from the LIFO slot */
	uint64_t steals;         /**< tasks stolen from another worker */
	uint64_t injector_pops;  /**< tasks taken from the injector */
	uint64_t overflows;      /**< batches moved from a full deque to the injector */
	uint64_t parks;          /**< times a worker parked */
	uint64_t unparks_sent;   /**< unpark messages sent (MSG_RING or eventfd) */
	uint64_t ops_submitted;  /**< io_uring ops submitted (excluding internal) */
	uint64_t ops_completed;  /**< their completions */
	uint64_t remote_cancels; /**< op cancels forwarded to another worker */
	uint64_t accept_backoffs;  /**< accept waits after EMFILE/ENFILE */
	uint64_t multishot_rearms; /**< streams' ops submitted again */
	uint64_t bufring_enobufs;  /**< recv streams that found no buffer */
} weft_runtime_metrics;

/**
 * Read @rt's counters into @m. Set m->size = sizeof(*m) first.
 * Returns 0, or -EINVAL for a NULL pointer or a smaller size.
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_runtime_metrics_get(const weft_runtime *rt,
				      weft_runtime_metrics *m);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_RUNTIME_H */
