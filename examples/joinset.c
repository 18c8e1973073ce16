/* SPDX-License-Identifier: MIT */
/*
 * joinset: results in the order tasks finish, a scope, and a barrier
 * (docs/tasks.md, docs/sync.md).
 *
 * 1. Five tasks sleep 40, 10, 30, 50, 20 ms and return their sleep; a
 *    weft_joinset hands them back as they finish (from this plain thread,
 *    with weft_joinset_join_next_blocking).
 * 2. A weft_scope with WEFT_SCOPE_CANCEL_ON_ERROR: one task fails at once,
 *    the others (10 s sleeps) are cancelled, the join reports the error.
 * 3. Four tasks meet at a weft_barrier; exactly one is the leader.
 * Exits 0 when all three behave.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>

#include <weft.h>

#define MS 1000000ull

/* Sleep @ms, then READY with an output of @ms (int64_t), or with -@fail
 * as an int in a scope. */
struct napper {
	int64_t ms;
	int scoped; /* output an int (0, or -fail at once) for the scope */
	int fail;
	int step;
	weft_io sleep;
};

static weft_poll napper_poll(void *self, weft_cx *cx, void *out)
{
	struct napper *n = self;
	int64_t r;

	if (n->scoped && n->fail) {
		*(int *)out = -n->fail;
		return WEFT_READY;
	}
	if (n->step == 0) {
		weft_io_prep_sleep(&n->sleep, (uint64_t)n->ms * MS);
		n->step = 1;
	}
	if (weft_io_poll(&n->sleep, cx, &r) == WEFT_PENDING)
		return WEFT_PENDING;
	if (n->scoped)
		*(int *)out = 0;
	else
		*(int64_t *)out = n->ms;
	return WEFT_READY;
}

static void napper_drop(void *self)
{
	weft_io_drop(&((struct napper *)self)->sleep); /* cancels a sleep */
}

static const weft_future_desc napper_desc = {
	.poll = napper_poll,
	.drop = napper_drop,
	.size = sizeof(struct napper),
	.output_size = sizeof(int64_t),
};

/* The same future with an int output, for the scope. */
static const weft_future_desc scoped_desc = {
	.poll = napper_poll,
	.drop = napper_drop,
	.size = sizeof(struct napper),
	.output_size = sizeof(int),
};

static atomic_int leaders;

struct party {
	weft_barrier *b;
	weft_barrier_wait w;
	int started;
};

static weft_poll party_poll(void *self, weft_cx *cx, void *out)
{
	struct party *p = self;
	int leader;

	(void)out;
	if (!p->started) {
		weft_barrier_wait_init(&p->w, p->b);
		p->started = 1;
	}
	if (weft_barrier_wait_poll(&p->w, cx, &leader) == WEFT_PENDING)
		return WEFT_PENDING;
	atomic_fetch_add(&leaders, leader);
	return WEFT_READY;
}

static void party_drop(void *self)
{
	weft_barrier_wait_drop(&((struct party *)self)->w);
}

static const weft_future_desc party_desc = {
	.poll = party_poll,
	.drop = party_drop,
	.size = sizeof(struct party),
};

int main(void)
{
	static const int64_t naps[] = { 40, 10, 30, 50, 20 };
	weft_runtime *rt;
	weft_joinset *set;
	weft_scope *scope;
	weft_barrier *b;
	int64_t last = 0;
	int ok = 1, res;

	if (weft_runtime_new(NULL, &rt))
		return 1;

	/* 1. Completion order. */
	if (weft_joinset_new(sizeof(int64_t), &set))
		return 1;
	for (int i = 0; i < 5; i++) {
		struct napper n = { .ms = naps[i] };
		if (weft_joinset_spawn(set, rt, &napper_desc, &n, NULL))
			return 1;
	}
	for (;;) {
		weft_joinset_next next;
		int64_t ms;
		if (weft_joinset_join_next_blocking(set, &next, &ms))
			return 1;
		if (next.status == -ENOENT)
			break; /* empty */
		printf("task %llu finished: slept %lld ms\n",
		       (unsigned long long)next.id, (long long)ms);
		/* 10 ms apart: in order unless the machine stalls 10 ms. */
		ok &= next.status == 0 && ms > 0;
		last = ms;
	}
	weft_joinset_free(set);
	ok &= last > 0;

	/* 2. A scope: the first error cancels the rest. */
	if (weft_scope_new(&scope, WEFT_SCOPE_CANCEL_ON_ERROR))
		return 1;
	for (int i = 0; i < 4; i++) {
		struct napper n = { .ms = 10000, .scoped = 1,
				    .fail = i == 2 ? EIO : 0 };
		if (weft_scope_spawn(scope, rt, &scoped_desc, &n))
			return 1;
	}
	weft_scope_join j;
	weft_scope_join_init(&j, scope);
	if (weft_block_on(rt, &weft_scope_join_desc, &j, &res))
		return 1;
	printf("scope: first error %d (%s), the 10 s sleepers cancelled\n",
	       res, weft_strerror(res));
	ok &= res == -EIO && weft_scope_free(scope) == 0;

	/* 3. A barrier of four. */
	weft_join *pj[4];
	if (weft_barrier_new(4, &b))
		return 1;
	for (int i = 0; i < 4; i++) {
		struct party p = { .b = b };
		if (weft_spawn(rt, &party_desc, &p, &pj[i]))
			return 1;
	}
	for (int i = 0; i < 4; i++) {
		weft_join_future jf = { .join = pj[i], .value = NULL };
		int st;
		if (weft_block_on(rt, &weft_join_future_desc, &jf, &st))
			return 1;
	}
	printf("barrier: 4 passed, %d leader\n", atomic_load(&leaders));
	ok &= atomic_load(&leaders) == 1 && weft_barrier_free(b) == 0;

	weft_runtime_free(rt);
	return ok ? 0 : 1;
}
