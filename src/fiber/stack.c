/* SPDX-License-Identifier: MIT */
/*
 * Fiber stacks (stack.h). The pool is per thread (no lock): a stack freed
 * on another worker than the one it came from simply joins that worker's
 * pool. A thread's pool is unmapped when the thread exits (a pthread key
 * destructor). Only default-size stacks are pooled, at most POOL_MAX.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weft/fiber.h>

#include "fiber/stack.h"
#include "internal.h"

#define POOL_MAX 64

struct pool {
	struct weft__stack *head;
	unsigned n;
};

static WEFT__TLS struct pool pool;
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void unmap(struct weft__stack *s)
{
	munmap(s->map, s->len);
}

static void pool_destroy(void *arg)
{
	struct pool *p = arg;
	struct weft__stack *s;

	while ((s = p->head)) {
		p->head = s->next;
		unmap(s);
	}
	p->n = 0;
}

static void pool_key_init(void)
{
	(void)pthread_key_create(&pool_key, pool_destroy);
}

static size_t page_size(void)
{
	/* Relaxed atomic: workers may ask first at once (all compute the
	 * same value; a plain static was a data race under TSan). */
	static _Atomic size_t ps;
	size_t v = atomic_load_explicit(&ps, memory_order_relaxed);

	if (!v) {
		long p = sysconf(_SC_PAGESIZE);

		v = p > 0 ? (size_t)p : 4096;
		atomic_store_explicit(&ps, v, memory_order_relaxed);
	}
	return v;
}

struct weft__stack *weft__stack_get(size_t size)
{
	size_t ps = page_size();
	struct weft__stack *s;
	char *map;
	size_t len;

	if (size == WEFT_FIBER_STACK && (s = pool.head)) {
		pool.head = s->next;
		pool.n--;
		return s;
	}
	/* Usable bytes rounded up to pages, plus the header's bytes. */
	len = (size + sizeof(*s) + ps - 1) / ps * ps + ps;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		   -1, 0);
	if (map == MAP_FAILED)
		return NULL;
	if (mprotect(map, ps, PROT_NONE) != 0) {
		munmap(map, len);
		return NULL;
	}
	s = (struct weft__stack *)(map + len - sizeof(*s));
	s->map = map;
	s->guard = ps;
	s->len = len;
	s->next = NULL;
	return s;
}

void weft__stack_put(struct weft__stack *s)
{
	size_t usable = s->len - s->guard - sizeof(*s);

	/* A default-size stack has WEFT_FIBER_STACK usable bytes, rounded
	 * to pages: pool it. */
	if (usable >= WEFT_FIBER_STACK && usable < WEFT_FIBER_STACK + s->guard &&
	    pool.n < POOL_MAX) {
		pthread_once(&pool_once, pool_key_init);
		if (!pool.n)
			(void)pthread_setspecific(pool_key, &pool);
		s->next = pool.head;
		pool.head = s;
		pool.n++;
		return;
	}
	unmap(s);
}
