/* SPDX-License-Identifier: MIT */
/*
 * weft_resolve: getaddrinfo on the blocking pool. The job shares one
 * refcounted record with the future (the job's reference and the
 * future's): the job writes the addresses and drops its reference before
 * returning, so the oneshot that signals completion orders the writes
 * before the future reads them, and a future dropped mid-lookup leaves the
 * record to the job. The pool is reached through the scheduler hook
 * (task/hooks.h): net/ sits below the scheduler.
 */
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/net.h>
#include <weft/sync.h>

#include "task/hooks.h"

struct weft__resolve_job {
	_Atomic int refs;
	int err;                       /* 0 or a negative errno */
	unsigned n;
	char port[8];
	socklen_t len[WEFT_RESOLVE_MAX];
	struct sockaddr_storage addr[WEFT_RESOLVE_MAX];
	char host[];
};

enum { R_PREPARED = 1, R_WAITING, R_DONE };

static void job_unref(struct weft__resolve_job *j)
{
	if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1)
		free(j);
}

/* getaddrinfo's EAI_* as a negative errno. */
static int gai_errno(int rc)
{
	switch (rc) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
	case EAI_ADDRFAMILY:
#endif
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EIO;
	}
}

/* On a pool thread. */
static void *lookup(void *arg)
{
	struct weft__resolve_job *j = arg;
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(j->host, j->port, &hints, &res);

	if (rc) {
		j->err = gai_errno(rc);
	} else {
		for (struct addrinfo *a = res; a && j->n < WEFT_RESOLVE_MAX;
		     a = a->ai_next) {
			if (a->ai_addrlen > sizeof(j->addr[0]))
				continue;
			memcpy(&j->addr[j->n], a->ai_addr, a->ai_addrlen);
			j->len[j->n++] = a->ai_addrlen;
		}
		freeaddrinfo(res);
		if (!j->n)
			j->err = -ENOENT;
	}
	job_unref(j);
	return NULL;
}

/* The pool dropped the lookup unrun (shutdown): release its reference. */
static void lookup_cancel(void *arg)
{
	job_unref(arg);
}

WEFT_API int weft_resolve_init(weft_resolve *r, const char *host,
			       uint16_t port)
{
	if (!r)
		return -EINVAL;
	memset(r, 0, offsetof(weft_resolve, _len));
	if (!host || !*host)
		return -EINVAL;
	size_t hlen = strlen(host);
	struct weft__resolve_job *j = calloc(1, sizeof(*j) + hlen + 1);
	if (!j)
		return -ENOMEM;
	memcpy(j->host, host, hlen + 1);
	snprintf(j->port, sizeof(j->port), "%u", (unsigned)port);
	atomic_init(&j->refs, 1);
	r->_job = j;
	r->_state = R_PREPARED;
	return 0;
}

static weft_poll finish(weft_resolve *r, int *res, int v)
{
	if (r->_job) {
		job_unref(r->_job);
		r->_job = NULL;
	}
	r->_state = R_DONE;
	r->_result = v;
	if (res)
		*res = v;
	return WEFT_READY;
}

WEFT_API weft_poll weft_resolve_poll(weft_resolve *r, weft_cx *cx, int *res)
{
	int status = 0;

	if (!r || !cx || !r->_state) {
		if (res)
			*res = -EINVAL;
		return WEFT_READY;
	}
	if (r->_state == R_DONE) {
		if (res)
			*res = r->_result;
		return WEFT_READY;
	}
	if (r->_state == R_PREPARED) {
		struct weft_oneshot_rx *rx = NULL;

		atomic_fetch_add_explicit(&r->_job->refs, 1,
					  memory_order_relaxed);
		int err = weft__sched_spawn_blocking(NULL, lookup, lookup_cancel,
						     r->_job, &rx);
		if (err) {
			atomic_fetch_sub_explicit(&r->_job->refs, 1,
						  memory_order_relaxed);
			/* Off a worker there is no runtime to ask. */
			return finish(r, res, err == -EINVAL ? -EPERM
					      : err == -ESHUTDOWN ? -ECANCELED
								 : err);
		}
		r->_rx = rx;
		r->_state = R_WAITING;
	}
	if (weft_oneshot_recv_poll(r->_rx, cx, &status, NULL) == WEFT_PENDING)
		return WEFT_PENDING;
	weft_oneshot_rx_drop(r->_rx);
	r->_rx = NULL;
	if (status) /* the pool dropped the job: shutdown */
		return finish(r, res, -ECANCELED);

	struct weft__resolve_job *j = r->_job;
	if (j->err)
		return finish(r, res, j->err);
	r->_n = j->n;
	memcpy(r->_len, j->len, sizeof(r->_len));
	memcpy(r->_addr, j->addr, j->n * sizeof(j->addr[0]));
	return finish(r, res, (int)j->n);
}

WEFT_API int weft_resolve_addr(const weft_resolve *r, size_t i,
			       struct sockaddr_storage *ss, socklen_t *len)
{
	if (!r || !ss || !len || r->_state != R_DONE || i >= r->_n)
		return -EINVAL;
	memcpy(ss, &r->_addr[i], r->_len[i]);
	*len = r->_len[i];
	return 0;
}

WEFT_API void weft_resolve_drop(weft_resolve *r)
{
	if (!r || !r->_state || r->_state == R_DONE)
		return;
	/* A lookup in flight keeps its own reference; its result is
	 * discarded with the receiver. */
	weft_oneshot_rx_drop(r->_rx);
	r->_rx = NULL;
	if (r->_job) {
		job_unref(r->_job);
		r->_job = NULL;
	}
	r->_state = R_DONE;
	r->_result = -ECANCELED;
}

static weft_poll resolve_desc_poll(void *self, weft_cx *cx, void *out)
{
	return weft_resolve_poll(self, cx, out);
}

static void resolve_desc_drop(void *self)
{
	weft_resolve_drop(self);
}

WEFT_API const weft_future_desc weft_resolve_desc = {
	.poll = resolve_desc_poll,
	.drop = resolve_desc_drop,
	.size = sizeof(weft_resolve),
	.output_size = sizeof(int),
};
