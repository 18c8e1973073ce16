/* SPDX-License-Identifier: MIT */
/*
 * peer-table: the cost of finding an endpoint by id, which every peer send
 * does, with the node's table (src/peer/table.c: ck_hs read in a ck_epoch
 * section, a record per worker) against the same ck_hs behind one global
 * mutex, on 1..W workers at once. Each worker's fiber looks up random
 * listed ids (taking and dropping a reference, as a send does) for
 * --seconds; the output is lookups per second in all and ns per lookup
 * per worker: the median of 5 rounds, the two sides alternating.
 *
 *   peer-table [--workers W] [--endpoints E] [--seconds S]
 *              [--only epoch|mutex]
 *
 * Links the library's internals (libweft-core), as the tests do.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#include "peer/peer.h"

static unsigned workers = 2, endpoints = 1000;
static const char *only; /* "epoch" or "mutex": run one side (profiling) */
static double seconds = 1.0;

struct run {
	weft_peer_node *node;
	bool locked;
	atomic_uint started, done;
	atomic_bool stop;
	atomic_uint_fast64_t lookups;
	uint64_t misses;
};

static struct weft_peer_endpoint *get_locked(weft_peer_node *n,
					     weft_peer_id id)
{
	struct weft_peer_endpoint *ep;

	pthread_mutex_lock(&n->lock);
	ep = ck_hs_get(&n->table.hs, n->table.hs.hf(&id, n->table.hs.seed),
		       &id);
	if (ep)
		weft__peer_ep_ref(ep);
	pthread_mutex_unlock(&n->lock);
	return ep;
}

static void *looker(void *arg)
{
	struct run *r = arg;
	uint64_t x = (uint64_t)weft_worker_index() * 0x9e3779b97f4a7c15ull + 1,
		 k = 0, miss = 0;

	atomic_fetch_add(&r->started, 1);
	while (atomic_load(&r->started) < workers)
		;
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		for (int i = 0; i < 1024; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			weft_peer_id id = 1 + x % endpoints;
			struct weft_peer_endpoint *ep =
				r->locked ? get_locked(r->node, id)
					  : weft__peer_table_get(
						    &r->node->table, id);
			if (ep)
				weft__peer_ep_unref(ep);
			else
				miss++;
		}
		k += 1024;
	}
	atomic_fetch_add(&r->lookups, k);
	if (miss)
		r->misses += miss;
	atomic_fetch_add(&r->done, 1);
	return NULL;
}

static double run_once(weft_runtime *rt, weft_peer_node *n, bool locked,
		       unsigned w)
{
	struct run r = { .node = n, .locked = locked };
	unsigned saved = workers;

	workers = w;
	for (unsigned i = 0; i < w; i++)
		if (weft_go(rt, looker, &r, NULL, NULL))
			exit(1);
	struct timespec ts = { (time_t)seconds,
			       (long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&r.stop, true);
	while (atomic_load(&r.done) < w)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	workers = saved;
	if (r.misses)
		fprintf(stderr, "peer-table: %llu misses\n",
			(unsigned long long)r.misses);
	return (double)atomic_load(&r.lookups) / seconds;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median5(double *v)
{
	qsort(v, 5, sizeof(*v), cmp_d);
	return v[2];
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "workers", 1, 0, 'w' }, { "endpoints", 1, 0, 'e' },
		{ "seconds", 1, 0, 's' }, { "only", 1, 0, 'o' },
		{ 0, 0, 0, 0 },
	};
	weft_runtime_config rc;
	weft_runtime *rt;
	weft_peer_node *n;
	char url[64];
	int c;

	while ((c = getopt_long(argc, argv, "w:e:s:o:", lo, NULL)) != -1) {
		switch (c) {
		case 'w': workers = (unsigned)atoi(optarg); break;
		case 'e': endpoints = (unsigned)atoi(optarg); break;
		case 's': seconds = atof(optarg); break;
		case 'o': only = optarg; break;
		default:
			fprintf(stderr, "usage: %s [--workers W] "
				"[--endpoints E] [--seconds S] "
				"[--only epoch|mutex]\n", argv[0]);
			return 2;
		}
	}
	if (!workers || !endpoints || seconds <= 0)
		return 2;
	weft_runtime_config_init(&rc);
	rc.workers = workers;
	if (weft_runtime_new(&rc, &rt) || weft_peer_node_new(rt, NULL, &n))
		return 1;
	for (unsigned i = 0; i < endpoints; i++) {
		snprintf(url, sizeof(url), "tcp://127.0.0.%u:%u",
			 1 + i / 60000, 1 + i % 60000);
		if (weft_peer_add(n, url, NULL))
			return 1;
	}
	printf("| workers | ck_hs + ck_epoch lookups/s | ns/lookup/worker "
	       "| global mutex lookups/s | ns/lookup/worker | ratio |\n");
	printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
	for (unsigned w = 1; w <= workers; w++) {
		/* alternate the two, 5 rounds each; the median of each */
		double es[5], ms[5], e, m;
		bool all = !only;
		for (int k = 0; k < 5; k++) {
			es[k] = all || !strcmp(only, "epoch")
					? run_once(rt, n, false, w) : 1;
			ms[k] = all || !strcmp(only, "mutex")
					? run_once(rt, n, true, w) : 1;
		}
		e = median5(es);
		m = median5(ms);
		printf("| %u | %.0f | %.1f | %.0f | %.1f | %.2f |\n", w, e,
		       1e9 * w / e, m, 1e9 * w / m, e / m);
	}
	weft_peer_node_free(n);
	weft_runtime_free(rt);
	return 0;
}
