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
	/**
	 * Never use multishot accept or multishot recv, even where the
	 * kernel has them: take the single-shot rung (one SQE per accepted
	 * connection or received buffer). For tests and comparisons; clears
	 * WEFT_FEAT_MULTISHOT_ACCEPT and WEFT_FEAT_MULTISHOT_RECV.
	 */
	WEFT_RT_NO_MULTISHOT = 1u << 4,
	/**
	 * Never register provided buffer rings: recv into caller buffers
	 * (the plain rung). Clears WEFT_FEAT_BUF_RING.
	 */
	WEFT_RT_NO_BUF_RING = 1u << 5,
	/** Never use zero-copy send (IORING_OP_SEND_ZC): copy as send(2)
	 * does. Clears WEFT_FEAT_SEND_ZC. */
	WEFT_RT_NO_SEND_ZC = 1u << 6,
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
	/**
	 * CQ entries per worker ring; 0: 16 * ring_entries. The kernel rounds
	 * both up to a power of two; the rounded CQ must hold at least the
	 * rounded SQ, and at most 65,536 entries. A completion that finds
	 * the CQ full is kept by the kernel (overflow list) and reaped later,
	 * never lost (docs/io.md, CQ size and overflow): a small CQ costs
	 * extra syscalls under load, not completions.
	 */
	unsigned cq_entries;
	/**
	 * Provided buffers one stream (a recv or datagram stream,
	 * weft/multishot.h) may hold queued, received but not yet taken by
	 * its owner's next; 0: max(4, buf_count / 8), 32 by default. A
	 * stream that reaches it stops receiving (the data waits in the
	 * socket, so TCP pushes back on the sender) until its owner has
	 * taken it down to half, so one slow reader cannot starve the other
	 * streams of its worker. Buffers already lent to the owner do not
	 * count. A value of buf_count or more leaves one stream free to
	 * take the whole pool.
	 */
	unsigned stream_buf_max;
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
 *  -EINVAL  bad config (size field below the first release's struct,
 *           workers > 256, ring_entries > 32768, cq_entries > 65536 or,
 *           rounded up to a power of two, below the rounded ring_entries)
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

/**
 * weft_runtime_metrics.features: the io_uring features the worker rings
 * use, probed when each ring is set up (docs/io.md, Kernel features and
 * fallbacks). A bit is set only if every worker's ring has the feature and
 * no WEFT_RT_NO_* flag turned it off; where it is clear the library takes
 * the fallback rung.
 */
enum {
	/** IORING_ACCEPT_MULTISHOT (5.19), else one accept SQE per
	 * connection. */
	WEFT_FEAT_MULTISHOT_ACCEPT = 1u << 0,
	/** IORING_RECV_MULTISHOT (6.0), else one recv SQE per buffer. */
	WEFT_FEAT_MULTISHOT_RECV = 1u << 1,
	/** Provided buffer rings (IORING_REGISTER_PBUF_RING, 5.19), else
	 * recv into the caller's buffer. */
	WEFT_FEAT_BUF_RING = 1u << 2,
	/** IORING_OP_SEND_ZC (6.0), else copying send. */
	WEFT_FEAT_SEND_ZC = 1u << 3,
	/** IORING_OP_SOCKET (5.19), else socket(2). */
	WEFT_FEAT_SOCKET = 1u << 4,
	/** IORING_OP_SHUTDOWN (5.11), else shutdown(2). */
	WEFT_FEAT_SHUTDOWN = 1u << 5,
	/** IORING_OP_STATX (5.6). */
	WEFT_FEAT_STATX = 1u << 6,
	/** IORING_OP_OPENAT (5.6). */
	WEFT_FEAT_OPENAT = 1u << 7,
	/** IORING_OP_MSG_RING (5.18): worker-to-worker unparks. */
	WEFT_FEAT_MSG_RING = 1u << 8,
};

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
	/* Fields below were added after the first release; a caller built
	 * against the older, shorter struct gets the fields it knows. */
	uint64_t features;       /**< WEFT_FEAT_*: rungs every worker took */
	uint64_t multishot_rearms; /**< multishot ops re-armed after their end */
	uint64_t bufring_enobufs;  /**< recvs ended by an empty buffer ring */
	uint64_t accept_backoffs;  /**< accept pauses after EMFILE/ENFILE */
	uint64_t stream_pauses;    /**< streams that stopped receiving at
				    * stream_buf_max queued buffers */
	uint64_t stream_spills;    /**< buffers a multishot recv filled past
				    * a stream's cap, copied out to free
				    * them (weft/multishot.h) */
} weft_runtime_metrics;

/**
 * Read @rt's counters into @m. Set m->size = sizeof(*m) first: the call
 * writes min(m->size, sizeof(weft_runtime_metrics)) bytes, so a caller
 * built against an older, shorter struct keeps working.
 * Returns 0, or -EINVAL for a NULL pointer or a size below the first
 * release's struct (up to remote_cancels).
 * Thread-safe.
 * NULL: see core.h.
 */
WEFT_API int weft_runtime_metrics_get(const weft_runtime *rt,
				      weft_runtime_metrics *m);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_RUNTIME_H */
