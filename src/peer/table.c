/* SPDX-License-Identifier: MIT */
/*
 * The endpoint table: read on every send by any thread, written by add and
 * remove only. Concurrency Kit's ck_hs in SPMC mode (one writer, under
 * node->lock; readers without a lock) with ck_epoch for what a reader may
 * still be looking at: the map ck_hs replaces when it grows, and a removed
 * endpoint until the reader has taken its reference.
 *
 * Epoch records: one per worker of the node's runtime (a task runs on one
 * worker thread and never suspends inside a read section), and one shared
 * by every other thread under a spinlock. Writers wait for a grace period
 * with ck_epoch_synchronize_wait, which needs no record.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include <weft/runtime.h>

#include "internal.h"
#include "peer/peer.h"

#if WEFT__TSAN
#include <sanitizer/tsan_interface.h>
/* ck_epoch synchronises through libck's own atomics, which
 * ThreadSanitizer does not see: tell it that every read section
 * happens before the grace period that follows it. */
#define SECTION_END(t) __tsan_release(&(t)->epoch)
#define GRACE_DONE(t) __tsan_acquire(&(t)->epoch)
#else
#define SECTION_END(t) ((void)(t))
#define GRACE_DONE(t) ((void)(t))
#endif

/* ck_hs's allocator has no context argument: the writer says which table
 * it works on (it holds node->lock meanwhile). */
static _Thread_local struct peer_table *tl_writer;

static void *hs_malloc(size_t n)
{
	return malloc(n);
}

static void *hs_realloc(void *p, size_t old, size_t n, bool defer)
{
	(void)old;
	(void)defer; /* ck_hs does not realloc a map readers may see */
	return realloc(p, n);
}

static void grace_wait(ck_epoch_t *e, ck_epoch_record_t *r, void *ctx)
{
	(void)e;
	(void)r;
	(void)ctx;
	sched_yield(); /* a reader may be preempted inside its section */
}

static void hs_free(void *p, size_t n, bool defer)
{
	(void)n;
	if (defer && tl_writer) {
		ck_epoch_synchronize_wait(&tl_writer->epoch, grace_wait, NULL);
		GRACE_DONE(tl_writer);
	}
	free(p);
}

static struct ck_malloc hs_alloc = {
	.malloc = hs_malloc,
	.realloc = hs_realloc,
	.free = hs_free,
};

static unsigned long hs_hash(const void *key, unsigned long seed)
{
	uint64_t x = *(const uint64_t *)key ^ seed;

	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (unsigned long)x;
}

static bool hs_cmp(const void *a, const void *b)
{
	/* @a is a listed endpoint: ck_hs published it with its own atomics,
	 * which ThreadSanitizer does not see; this acquire pairs with add's
	 * release store and orders the read of its id after its writes. */
	const struct weft_peer_endpoint *ep = a;

	(void)atomic_load_explicit(&((struct weft_peer_endpoint *)ep)->refs,
				   memory_order_acquire);
	return ep->id == *(const uint64_t *)b;
}

static unsigned long key_hash(const struct peer_table *t, weft_peer_id id)
{
	return hs_hash(&id, t->hs.seed);
}

int weft__peer_table_init(struct peer_table *t, weft_runtime *rt)
{
	t->rt = rt;
	t->nrecs = weft_runtime_workers(rt);
	t->recs = calloc(t->nrecs ? t->nrecs : 1, sizeof(*t->recs));
	if (!t->recs)
		return -ENOMEM;
	ck_epoch_init(&t->epoch);
	for (unsigned i = 0; i < t->nrecs; i++)
		ck_epoch_register(&t->epoch, &t->recs[i], NULL);
	ck_epoch_register(&t->epoch, &t->ext, NULL);
	weft__spin_init(&t->ext_lock);
	if (!ck_hs_init(&t->hs, CK_HS_MODE_SPMC | CK_HS_MODE_OBJECT, hs_hash,
			hs_cmp, &hs_alloc, 64, 0x9e3779b97f4a7c15ul)) {
		free(t->recs);
		return -ENOMEM;
	}
	return 0;
}

void weft__peer_table_fini(struct peer_table *t)
{
	ck_hs_destroy(&t->hs);
	free(t->recs);
}

int weft__peer_table_put(struct peer_table *t, struct weft_peer_endpoint *ep)
{
	bool ok;

	tl_writer = t;
	ok = ck_hs_put(&t->hs, key_hash(t, ep->id), ep);
	tl_writer = NULL;
	return ok ? 0 : -ENOMEM;
}

void weft__peer_table_del(struct peer_table *t, struct weft_peer_endpoint *ep)
{
	tl_writer = t;
	ck_hs_remove(&t->hs, key_hash(t, ep->id), ep);
	tl_writer = NULL;
	/* After this no reader can be between its get and its ref. */
	ck_epoch_synchronize_wait(&t->epoch, grace_wait, NULL);
	GRACE_DONE(t);
}

/* Enter a read section with the calling thread's record. */
static ck_epoch_record_t *read_begin(struct peer_table *t)
{
	ck_epoch_record_t *rec = &t->ext;

	if (weft_runtime_current() == t->rt) {
		int w = weft_worker_index();
		if (w >= 0 && (unsigned)w < t->nrecs)
			rec = &t->recs[w];
	}
	if (rec == &t->ext)
		weft__spin_lock(&t->ext_lock);
	ck_epoch_begin(rec, NULL);
	return rec;
}

static void read_end(struct peer_table *t, ck_epoch_record_t *rec)
{
	SECTION_END(t);
	ck_epoch_end(rec, NULL);
	if (rec == &t->ext)
		weft__spin_unlock(&t->ext_lock);
}

struct weft_peer_endpoint *weft__peer_table_get(struct peer_table *t,
						weft_peer_id id)
{
	ck_epoch_record_t *rec = read_begin(t);
	struct weft_peer_endpoint *ep = ck_hs_get(&t->hs, key_hash(t, id), &id);

	if (ep)
		weft__peer_ep_ref(ep);
	read_end(t, rec);
	return ep;
}

int weft__peer_table_call(struct peer_table *t, weft_peer_id id,
			  int (*fn)(struct weft_peer_endpoint *, void *),
			  void *arg)
{
	ck_epoch_record_t *rec = read_begin(t);
	struct weft_peer_endpoint *ep = ck_hs_get(&t->hs, key_hash(t, id), &id);
	int r = ep ? fn(ep, arg) : -ENOENT;

	read_end(t, rec);
	return r;
}

void weft__peer_table_each(struct peer_table *t,
			   void (*fn)(struct weft_peer_endpoint *, void *),
			   void *arg)
{
	ck_epoch_record_t *rec = read_begin(t);
	ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
	void *p;

	while (ck_hs_next_spmc(&t->hs, &it, &p)) {
		struct weft_peer_endpoint *ep = p;
		/* pairs with add's release store: ep's fields are set */
		(void)atomic_load_explicit(&ep->refs, memory_order_acquire);
		fn(ep, arg);
	}
	read_end(t, rec);
}
