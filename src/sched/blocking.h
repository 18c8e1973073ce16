/* SPDX-License-Identifier: MIT */
/*
 * The blocking pool (weft/blocking.h): a FIFO of jobs under a mutex, and
 * threads started on demand up to a limit that wait on a condition
 * variable, with a keep-alive.
 *
 * Thread lifetime: pool threads are joinable. A thread that leaves (idle
 * past the keep-alive, or at shutdown) moves itself from `live` to the
 * `exited` list under the lock; whoever next starts a thread, and the
 * shutdown, joins the exited ones. So no thread is leaked and nothing
 * frees the pool while a leaving thread still touches it (pthread_join
 * returns only once the thread is gone).
 *
 * Shutdown, in two steps around the runtime's own (sched/runtime.c):
 * close first (new jobs: -ESHUTDOWN; queued jobs are dropped, so their
 * receivers get -EPIPE; idle threads leave), and once the workers have
 * stopped, but before the rings are torn down, wait until no thread is
 * live and join them all. Waiting only after the tasks are cancelled means
 * a job that block_ons a task cannot hold shutdown up; waiting before the
 * rings go means a job's last wake (an unpark through an eventfd) never
 * meets a closed fd (TSan caught that in examples/blocking).
 */
#ifndef WEFT_SCHED_BLOCKING_H
#define WEFT_SCHED_BLOCKING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct weft__blocking_job;
struct weft__blocking_exit;

struct weft__blocking {
	pthread_mutex_t lock;
	pthread_cond_t work;      /* a job was queued, or closing */
	pthread_cond_t gone;      /* a thread left (shutdown waits) */
	struct weft__blocking_job *head, *tail; /* FIFO of queued jobs */
	struct weft__blocking_exit *exited;     /* left, not yet joined */
	unsigned live;            /* threads started and not left */
	unsigned idle;            /* live threads waiting, not yet claimed */
	unsigned notified;        /* claims signalled, not yet taken */
	unsigned max;
	uint64_t keepalive_ns;
	bool closed;
};

void weft__blocking_init(struct weft__blocking *p, unsigned max,
			 uint64_t keepalive_ns);

/* Refuse new jobs (-ESHUTDOWN) and drop the queued ones. Idempotent. */
void weft__blocking_close(struct weft__blocking *p);

/* Close, then wait for the running jobs and join every thread.
 * Idempotent. */
void weft__blocking_shutdown(struct weft__blocking *p);

/* After shutdown: release the lock and condition variables. */
void weft__blocking_destroy(struct weft__blocking *p);

#endif /* WEFT_SCHED_BLOCKING_H */
