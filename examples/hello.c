/* SPDX-License-Identifier: MIT */
/*
 * hello: the smallest complete weft program.
 *
 * It starts a runtime, runs one future to completion from main with
 * weft_block_on(), and frees the runtime. The future sleeps 1 ms and then
 * returns 42:
 *
 *   cc hello.c $(pkg-config --cflags --libs weft) -o hello
 */
#include <stdbool.h>
#include <stdio.h>

#include <weft.h>

struct hello {
	bool sleeping; /* the sleep op below has been started */
	weft_io sleep;
};

/* Output: 42, or the sleep's negative errno. */
static weft_poll hello_poll(void *self, weft_cx *cx, void *out)
{
	struct hello *h = self;
	int64_t res;

	if (!h->sleeping) {
		weft_io_prep_sleep(&h->sleep, 1000 * 1000); /* ns */
		h->sleeping = true;
	}
	if (weft_io_poll(&h->sleep, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING; /* the timer's completion wakes us */
	*(int *)out = res < 0 ? (int)res : 42;
	return WEFT_READY;
}

static void hello_drop(void *self)
{
	struct hello *h = self;

	weft_io_drop(&h->sleep);
}

static const weft_future_desc hello_desc = {
	.poll = hello_poll,
	.drop = hello_drop,
	.size = sizeof(struct hello),
	.output_size = sizeof(int),
};

int main(void)
{
	weft_runtime *rt;
	int answer = 0, err;

	err = weft_runtime_new(NULL, &rt);
	if (err) {
		fprintf(stderr, "hello: runtime: %s\n", weft_strerror(err));
		return 1;
	}
	/* NULL init: the state starts zeroed. */
	err = weft_block_on(rt, &hello_desc, NULL, &answer);
	weft_runtime_free(rt);
	if (err || answer < 0) {
		fprintf(stderr, "hello: %s\n",
			weft_strerror(err ? err : answer));
		return 1;
	}
	printf("hello from weft: %d\n", answer);
	return 0;
}
