/* SPDX-License-Identifier: MIT */
/*
 * A worker's io_uring: setup with feature probing, the unpark channel, and
 * reaping. Owner-thread only unless a function says otherwise.
 *
 * user_data encoding of the SQEs a worker submits:
 *   an op record pointer (8-aligned)          the op's own completion
 *   an op record pointer | WEFT__UD_CANCEL    completion of a cancel for it
 *   WEFT__UD_UNPARK                           MSG_RING from another worker
 *   WEFT__UD_EVENTFD                          the eventfd read (foreign wakes)
 *   an op record pointer | WEFT__UD_LINK      the op's linked timeout (its
 *                                              deadline); it holds a reference
 *                                              to the record until this CQE,
 *                                              because the kernel names the op
 *                                              by user_data when it fires
 *   WEFT__UD_IGNORE                           nothing to do (never posted:
 *                                              CQE_SKIP_SUCCESS where used)
 */
#ifndef WEFT_IO_RING_H
#define WEFT_IO_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/runtime.h>

#define WEFT__UD_IGNORE ((uint64_t)0)
#define WEFT__UD_UNPARK ((uint64_t)1)
#define WEFT__UD_EVENTFD ((uint64_t)2)
#define WEFT__UD_CANCEL ((uint64_t)1) /* low bits on an op pointer */
#define WEFT__UD_LINK ((uint64_t)2)
#define WEFT__UD_FLAGS (WEFT__UD_CANCEL | WEFT__UD_LINK)
#define WEFT__UD_TAG_MAX ((uint64_t)16)

/*
 * Kernel features a ring may use (src/io/probe.c): the public WEFT_FEAT_*
 * bits of weft/runtime.h, so that the metrics can report them as they are.
 */
enum {
	WEFT__FEAT_MULTISHOT_ACCEPT = WEFT_FEAT_MULTISHOT_ACCEPT,
	WEFT__FEAT_MULTISHOT_RECV = WEFT_FEAT_MULTISHOT_RECV,
	WEFT__FEAT_BUF_RING = WEFT_FEAT_BUF_RING,
	WEFT__FEAT_SEND_ZC = WEFT_FEAT_SEND_ZC,
	WEFT__FEAT_SOCKET = WEFT_FEAT_SOCKET,
	WEFT__FEAT_SHUTDOWN = WEFT_FEAT_SHUTDOWN,
	WEFT__FEAT_STATX = WEFT_FEAT_STATX,
	WEFT__FEAT_OPENAT = WEFT_FEAT_OPENAT,
	WEFT__FEAT_MSG_RING = WEFT_FEAT_MSG_RING,
};

struct weft__ring {
	struct io_uring uring;
	unsigned mode;        /* WEFT_RING_* */
	/* WEFT__FEAT_*: probed by weft__ring_init, minus those the runtime
	 * flags turn off; constant afterwards (read by other threads after
	 * the runtime's start handshake). */
	unsigned features;
	/* CQ size wanted, set before weft__ring_init (0: 16 * entries);
	 * kept across init. */
	unsigned cq_entries;
	int eventfd;
	uint64_t efd_buf;     /* target of the armed eventfd read */
	bool efd_armed;
	unsigned inflight;    /* ops and cancels whose CQE is due */
	unsigned unsubmitted; /* SQEs prepared since the last submit */
	bool taskrun_flag;    /* DEFER_TASKRUN with IORING_SETUP_TASKRUN_FLAG */
};

/* Create the ring on the calling (worker) thread and probe its features.
 * 0 or negative errno. */
int weft__ring_init(struct weft__ring *r, unsigned entries, unsigned flags,
		    unsigned *mode_out);
void weft__ring_exit(struct weft__ring *r);

/* An SQE, submitting first if the SQ is full. Never NULL. */
struct io_uring_sqe *weft__ring_sqe(struct weft__ring *r);

/* Make sure the next @n weft__ring_sqe calls submit nothing in between
 * (a linked chain must reach the kernel in one submission). */
void weft__ring_reserve(struct weft__ring *r, unsigned n);

/* Submit what is prepared and let the kernel post completions (runs
 * deferred task work under DEFER_TASKRUN). Non-blocking. */
void weft__ring_flush(struct weft__ring *r);

/* Submit and wait for at least one CQE (parking), or until @timeout_ns
 * (relative, UINT64_MAX: none) has passed. EINTR returns. */
void weft__ring_wait(struct weft__ring *r, uint64_t timeout_ns);

/* Arm the eventfd read if it is not armed. */
void weft__ring_arm_eventfd(struct weft__ring *r);

/* Any thread: wake the ring's owner through its eventfd. */
void weft__ring_signal_eventfd(struct weft__ring *r);

/* Owner of @from: post an UNPARK CQE to ring @to_fd with MSG_RING. */
void weft__ring_msg(struct weft__ring *from, int to_fd);

/* The ring has every feature in @feat (WEFT__FEAT_* bits), and the
 * runtime flags did not turn any of them off. Any thread, after init. */
static inline bool weft__ring_has(const struct weft__ring *r, unsigned feat)
{
	return (r->features & feat) == feat;
}

static inline int weft__ring_fd(const struct weft__ring *r)
{
	return r->uring.ring_fd;
}

#endif /* WEFT_IO_RING_H */
