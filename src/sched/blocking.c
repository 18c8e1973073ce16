/* SPDX-License-Identifier: MIT */
/*
 * The blocking pool; the thread-lifetime and shutdown rules are in
 * blocking.h. Idle accounting follows Tokio's blocking pool: a spawner
 * that finds an idle thread claims it (idle--, notified++) and signals; a
 * waking thread that finds notified > 0 takes the claim, so a burst of
 * jobs never relies on one idle thread and starts the threads it needs.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include <weft/blocking.h>

#include "sched/runtime.h"

struct weft__blocking_job {
	struct weft__blocking_job *next;
	void *(*fn)(void *);
	void (*cancel)(void *);
	void *arg;
	weft_oneshot_tx *tx; /* NULL: detached */
};

struct weft__blocking_exit {
	struct weft__blocking_exit *next;
	struct weft__blocking *pool;
	pthread_t thread; /* written under the lock before the thread can
			   * take it, so before it can leave */
};

void weft__blocking_init(struct weft__blocking *p, unsigned max,
			 uint64_t keepalive_ns)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->work, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&p->gone, NULL);
	p->head = p->tail = NULL;
	p->exited = NULL;
	p->live = p->idle = p->notified = 0;
	p->max = max;
	p->keepalive_ns = keepalive_ns;
	p->closed = false;
}

/* A job that will never run. */
static void job_cancel(struct weft__blocking_job *j)
{
	if (j->cancel)
		j->cancel(j->arg);
	weft_oneshot_tx_drop(j->tx); /* the receiver gets -EPIPE */
	free(j);
}

static void join_all(struct weft__blocking_exit *e)
{
	while (e) {
		struct weft__blocking_exit *next = e->next;

		pthread_join(e->thread, NULL);
		free(e);
		e = next;
	}
}

static void run_job(struct weft__blocking_job *j)
{
	void *r = j->fn(j->arg);

	/* -EPIPE: the receiver is gone; the result is the job's to free. */
	if (j->tx)
		weft_oneshot_send(j->tx, &r);
	free(j);
}

/* Waits for a claim; false: leave (keep-alive ran out, or closing). */
static bool wait_for_work(struct weft__blocking *p)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + p->keepalive_ns;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);

	p->idle++;
	for (;;) {
		int rc = pthread_cond_timedwait(&p->work, &p->lock, &ts);

		if (p->notified) { /* a spawner claimed us: idle-- done */
			p->notified--;
			return true;
		}
		if (p->closed || rc == ETIMEDOUT) {
			p->idle--;
			return false;
		}
		/* spurious: wait on */
	}
}

static void *pool_thread(void *arg)
{
	struct weft__blocking_exit *self = arg;
	struct weft__blocking *p = self->pool;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct weft__blocking_job *j = p->head;

		if (j) {
			p->head = j->next;
			if (!p->head)
				p->tail = NULL;
			pthread_mutex_unlock(&p->lock);
			run_job(j);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (p->closed || !wait_for_work(p))
			break;
	}
	p->live--;
	self->next = p->exited;
	p->exited = self;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Under the lock: start one more thread. 0 or a negative errno. */
static int start_thread(struct weft__blocking *p)
{
	struct weft__blocking_exit *e = malloc(sizeof(*e));
	sigset_t all, old;
	int err;

	if (!e)
		return -ENOMEM;
	e->pool = p;
	/* Jobs run with the signals blocked that workers block. */
	weft__signals_for_threads(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&e->thread, NULL, pool_thread, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		free(e);
		return -err;
	}
	pthread_setname_np(e->thread, "weft-blocking");
	p->live++;
	return 0;
}

WEFT_API int weft_spawn_blocking(weft_runtime *rt, void *(*fn)(void *arg),
				 void (*cancel)(void *arg), void *arg,
				 weft_oneshot_rx **rx)
{
	return weft__sched_spawn_blocking(rt, fn, cancel, arg, rx);
}

int weft__sched_spawn_blocking(struct weft_runtime *rt, void *(*fn)(void *),
			       void (*cancel)(void *), void *arg,
			       struct weft_oneshot_rx **rx)
{
	struct weft__blocking_job *j;
	weft_oneshot_rx *r = NULL;
	int err = 0;

	if (!rt)
		rt = weft_runtime_current();
	if (!rt || !fn)
		return -EINVAL;
	j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->next = NULL;
	j->fn = fn;
	j->cancel = cancel;
	j->arg = arg;
	j->tx = NULL;
	if (rx && (err = weft_oneshot_new(sizeof(void *), &j->tx, &r))) {
		free(j);
		return err;
	}

	struct weft__blocking *p = &rt->blocking;
	pthread_mutex_lock(&p->lock);
	if (p->closed) {
		err = -ESHUTDOWN;
		goto fail;
	}
	if (p->idle) { /* claim an idle thread */
		p->idle--;
		p->notified++;
		pthread_cond_signal(&p->work);
	} else if (p->live < p->max) {
		err = start_thread(p);
		/* Busy threads will take the job later; with none at all it
		 * would never run. */
		if (err && p->live == 0)
			goto fail;
		err = 0;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	struct weft__blocking_exit *exited = p->exited;
	p->exited = NULL;
	pthread_mutex_unlock(&p->lock);
	join_all(exited); /* threads that left: reap them */
	if (rx)
		*rx = r;
	return 0;
fail:
	pthread_mutex_unlock(&p->lock);
	weft_oneshot_rx_drop(r);
	weft_oneshot_tx_drop(j->tx); /* not accepted: no callback runs */
	free(j);
	/* pthread_create's EAGAIN, EPERM, EINVAL: no thread to run it. */
	return err == -ENOMEM || err == -ESHUTDOWN ? err : -EAGAIN;
}

void weft__blocking_close(struct weft__blocking *p)
{
	struct weft__blocking_job *queued;

	pthread_mutex_lock(&p->lock);
	p->closed = true;
	queued = p->head;
	p->head = p->tail = NULL;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->lock);
	while (queued) { /* outside the lock: a drop may wake a task */
		struct weft__blocking_job *next = queued->next;

		job_cancel(queued);
		queued = next;
	}
}

void weft__blocking_shutdown(struct weft__blocking *p)
{
	struct weft__blocking_exit *exited;

	weft__blocking_close(p);
	pthread_mutex_lock(&p->lock);
	while (p->live)
		pthread_cond_wait(&p->gone, &p->lock);
	exited = p->exited;
	p->exited = NULL;
	pthread_mutex_unlock(&p->lock);
	join_all(exited);
}

void weft__blocking_destroy(struct weft__blocking *p)
{
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->gone);
}
