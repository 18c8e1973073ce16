/* SPDX-License-Identifier: MIT */
/*
 * Op records and the driver side of a worker's ring.
 *
 * An op record is created by the first poll of a weft_io and submitted on
 * the polling worker's ring, which owns it for life. References:
 *   - the driver: from submit until the op's CQE has been handled;
 *   - the future (weft_io): until it takes the result or is dropped;
 *   - a cancel in flight: from the cancel request (local, or pushed to the
 *     owner's inbox by another worker) until the cancel's own CQE.
 * The last one frees the record, so no cancel ever names a freed (or
 * reused) record. The record also holds a reference to the submitting
 * task until the op's CQE, so the task's memory, where buffers usually
 * live, outlives the kernel's use of it.
 *
 * state, result, waker and orphaned are under the record's spinlock: the
 * owner's reap and a poll or drop on another worker meet there.
 */
#ifndef WEFT_IO_OP_H
#define WEFT_IO_OP_H

#include <ck_stack.h>
#include <linux/time_types.h>
#include <netinet/in.h>
#include <string.h>

#include <weft/io.h>

#include "sched/runtime.h"
#include "spinlock.h"

enum weft__op_kind {
	WEFT__OP_NONE = 0,
	WEFT__OP_SLEEP,
	WEFT__OP_ACCEPT,
	WEFT__OP_CONNECT,
	WEFT__OP_RECV,
	WEFT__OP_SEND,
	WEFT__OP_CLOSE,
};

struct weft__op {
	ck_stack_entry_t inbox_entry;  /* first: entry -> record cast */
	_Atomic unsigned refs;
	weft__spinlock lock;
	bool done;                     /* under lock */
	bool orphaned;                 /* under lock: the future is gone */
	int32_t result;                /* under lock */
	weft_waker waker;              /* under lock */
	struct weft__task *task;       /* reference until the CQE */
	struct weft__worker *owner;
	enum weft__op_kind kind;
	int fd;                        /* connect: the socket it made */
	void *buf;                     /* recv/send: the user's buffer */
	union {
		struct __kernel_timespec ts;
		struct sockaddr_in6 addr;
	} u;
};

/* Drain the inbox, submit, and reap; true if any CQE was handled. */
bool weft__op_drive(struct weft__worker *w);

/* Handle the CQEs already posted (no syscall). */
unsigned weft__op_reap(struct weft__worker *w);

static inline bool weft__inbox_empty(struct weft__worker *w)
{
	return weft__inbox_is_empty(&w->inbox);
}

/* Reset @io to an unpolled op of @kind (used by the *_init calls). */
static inline void weft__io_init(weft_io *io, enum weft__op_kind kind)
{
	memset(io, 0, sizeof(*io));
	io->_kind = kind;
	io->_fd = -1;
}

#endif /* WEFT_IO_OP_H */
