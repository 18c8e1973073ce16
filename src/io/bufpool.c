/* SPDX-License-Identifier: MIT */
/* Provided buffers; the design is in bufpool.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/bufpool.h"
#include "spinlock.h"
#include "io/driver.h"
#include "io/op.h"

static struct weft__inbox *remote(struct weft__bufpool *p)
{
	return &p->remote;
}

static void ring_add(struct weft__bufpool *p, int32_t bid)
{
	io_uring_buf_ring_add(p->br, weft__bufpool_data(p, bid), p->size,
			      (unsigned short)bid,
			      io_uring_buf_ring_mask(p->nbufs), 0);
	io_uring_buf_ring_advance(p->br, 1);
}

/* Register a kernel buffer ring for @p on @d's ring. False: the kernel
 * has none (or the runtime was told not to use it): the plain rung. */
static bool register_ring(struct weft__driver *d, struct weft__bufpool *p)
{
	struct io_uring_buf_reg reg;
	size_t bytes = (size_t)p->nbufs * sizeof(struct io_uring_buf);
	long page = sysconf(_SC_PAGESIZE);
	void *mem;

	if (!weft__ring_has(&d->ring, WEFT__FEAT_BUF_RING))
		return false;
	if (posix_memalign(&mem, page > 0 ? (size_t)page : 4096, bytes))
		return false;
	memset(mem, 0, bytes);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)(uintptr_t)mem;
	reg.ring_entries = p->nbufs;
	reg.bgid = WEFT__BUFPOOL_BGID;
	if (io_uring_register_buf_ring(&d->ring.uring, &reg, 0) < 0) {
		free(mem);
		return false;
	}
	p->br = mem;
	p->bgid = WEFT__BUFPOOL_BGID;
	io_uring_buf_ring_init(p->br);
	for (unsigned i = 0; i < p->nbufs; i++)
		io_uring_buf_ring_add(p->br, weft__bufpool_data(p, (int32_t)i),
				      p->size, (unsigned short)i,
				      io_uring_buf_ring_mask(p->nbufs),
				      (int)i);
	io_uring_buf_ring_advance(p->br, (int)p->nbufs);
	return true;
}

struct weft__bufpool *weft__bufpool_get(struct weft__driver *d)
{
	struct weft__bufpool *p = d->pool;

	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->owner = d;
	p->nbufs = d->buf_count;
	p->size = d->buf_size;
	/* A buffer given back from another thread holds a stack entry: a
	 * buffer smaller than one (or not a multiple of its size) would
	 * have it written over its neighbours. */
	p->stride = (p->size + sizeof(ck_stack_entry_t) - 1) /
		    sizeof(ck_stack_entry_t) * sizeof(ck_stack_entry_t);
	atomic_init(&p->refs, 1);
	atomic_init(&p->starving, false);
	weft__spin_init(&p->exit_lock);
	p->alive = true;
	weft__inbox_init(remote(p));
	/* 64-byte aligned memory, so each buffer (stride apart) can hold a
	 * stack entry when given back from another thread. */
	if (posix_memalign((void **)&p->mem, 64,
			   (size_t)p->nbufs * p->stride))
		goto fail;
	if (!register_ring(d, p)) {
		p->free = malloc(p->nbufs * sizeof(*p->free));
		if (!p->free)
			goto fail;
		for (unsigned i = 0; i < p->nbufs; i++)
			p->free[i] = (int32_t)(p->nbufs - 1 - i);
		p->nfree = p->nbufs;
	}
	d->pool = p;
	return p;
fail:
	free(p->mem);
	free(p);
	return NULL;
}

int32_t weft__bufpool_take(struct weft__bufpool *p)
{
	if (!p->nfree)
		return -1;
	p->out++;
	return p->free[--p->nfree];
}

bool weft__bufpool_has_free(const struct weft__bufpool *p)
{
	return p->out < p->nbufs;
}

/* Owner: @bid is free again. */
static void put(struct weft__bufpool *p, int32_t bid)
{
	if (p->br)
		ring_add(p, bid);
	else
		p->free[p->nfree++] = bid;
	p->out--;
}

void weft__bufpool_give(struct weft__bufpool *p, int32_t bid)
{
	if (weft__driver_current() == p->owner) {
		put(p, bid);
		if (p->owner->starved)
			weft__ms_rearm_starved(p->owner);
		return;
	}
	weft__inbox_push(remote(p),
			 (ck_stack_entry_t *)weft__bufpool_data(p, bid));
	/* seq_cst: the push before the load of starving (bufpool.h). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&p->starving, memory_order_relaxed)) {
		/* Under exit_lock: the driver may be torn down meanwhile
		 * (weft__bufpool_exit clears alive first). */
		weft__spin_lock(&p->exit_lock);
		if (p->alive)
			weft__driver_unpark(p->owner);
		weft__spin_unlock(&p->exit_lock);
	}
}

void weft__bufpool_drain(struct weft__bufpool *p)
{
	ck_stack_entry_t *e = weft__inbox_take_all(remote(p));

	if (!e)
		return;
	while (e) {
		ck_stack_entry_t *next = e->next;

		put(p, (int32_t)(((unsigned char *)e - p->mem) / p->stride));
		e = next;
	}
	if (p->owner->starved)
		weft__ms_rearm_starved(p->owner);
}

void weft__bufpool_ref(struct weft__bufpool *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void weft__bufpool_unref(struct weft__bufpool *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(p->br);
	free(p->free);
	free(p->mem);
	free(p);
}

void weft__bufpool_close(struct weft__driver *d)
{
	if (!d->pool)
		return;
	weft__spin_lock(&d->pool->exit_lock);
	d->pool->alive = false; /* no giver unparks this driver from now */
	weft__spin_unlock(&d->pool->exit_lock);
}

void weft__bufpool_exit(struct weft__driver *d)
{
	if (!d->pool)
		return;
	weft__bufpool_unref(d->pool);
	d->pool = NULL;
}

void weft__recv_item_release(void *out)
{
	weft_buf_release(&((weft_recv_item *)out)->buf);
}
