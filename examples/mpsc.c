/* SPDX-License-Identifier: MIT */
/*
 * mpsc: tasks and a plain thread feed one consumer (docs/sync.md).
 *
 * Three producer tasks send 1,000 numbers each into a bounded channel of 16
 * (each send waits while it is full: backpressure), and a plain pthread
 * sends 1,000 more with the blocking call. The consumer, run with
 * weft_block_on, receives until every sender is gone (-EPIPE) and checks
 * the sum. Then a channel of pointers: the receiver drops it with two
 * messages still queued, and drop_value frees them, so nothing leaks.
 * Exits 0 when every number arrived once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#define PER 1000
#define PRODUCERS 4 /* three tasks and one thread */

struct producer {
	weft_mpsc_tx *tx;
	uint64_t next, end;
	bool sending;
	weft_mpsc_send send;
};

static weft_poll producer_poll(void *self, weft_cx *cx, void *out)
{
	struct producer *p = self;
	int r;

	(void)out;
	while (p->next < p->end) {
		if (!p->sending) { /* borrows &p->next until READY */
			weft_mpsc_send_init(&p->send, p->tx, &p->next);
			p->sending = true;
		}
		if (weft_mpsc_send_poll(&p->send, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING; /* full: wait for room */
		weft_mpsc_send_drop(&p->send);
		p->sending = false;
		if (r < 0) /* -EPIPE: the receiver is gone */
			break;
		p->next++;
	}
	return WEFT_READY;
}

static void producer_drop(void *self)
{
	struct producer *p = self;

	if (p->sending) /* dropped while waiting: nothing was sent */
		weft_mpsc_send_drop(&p->send);
	weft_mpsc_tx_drop(p->tx);
}

static const weft_future_desc producer_desc = {
	.poll = producer_poll,
	.drop = producer_drop,
	.size = sizeof(struct producer),
};

static void *thread_producer(void *arg)
{
	weft_mpsc_tx *tx = arg;

	for (uint64_t v = 3 * PER; v < 4 * PER; v++)
		if (weft_mpsc_send_blocking(tx, &v) < 0)
			break;
	weft_mpsc_tx_drop(tx);
	return NULL;
}

struct consumer {
	weft_mpsc_rx *rx;
	bool receiving;
	weft_mpsc_recv recv;
	uint64_t value, sum, count;
};

static weft_poll consumer_poll(void *self, weft_cx *cx, void *out)
{
	struct consumer *c = self;
	int r;

	for (;;) {
		if (!c->receiving) {
			weft_mpsc_recv_init(&c->recv, c->rx, &c->value);
			c->receiving = true;
		}
		if (weft_mpsc_recv_poll(&c->recv, cx, &r) == WEFT_PENDING)
			return WEFT_PENDING;
		weft_mpsc_recv_drop(&c->recv);
		c->receiving = false;
		if (r == -EPIPE) { /* every sender is gone, all received */
			memcpy(out, c, sizeof(*c));
			return WEFT_READY;
		}
		c->sum += c->value;
		c->count++;
	}
}

static void consumer_drop(void *self)
{
	struct consumer *c = self;

	if (c->receiving)
		weft_mpsc_recv_drop(&c->recv);
}

static const weft_future_desc consumer_desc = {
	.poll = consumer_poll,
	.drop = consumer_drop,
	.size = sizeof(struct consumer),
	.output_size = sizeof(struct consumer),
};

static int freed;

static void free_message(void *value, void *ctx)
{
	(void)ctx;
	free(*(char **)value); /* the value is a char * */
	freed++;
}

int main(void)
{
	weft_runtime *rt;
	weft_mpsc_tx *tx;
	struct consumer c = { 0 };
	pthread_t th;
	int err;

	if ((err = weft_runtime_new(NULL, &rt))) {
		fprintf(stderr, "mpsc: runtime: %s\n", weft_strerror(err));
		return 1;
	}
	if ((err = weft_mpsc_bounded(sizeof(uint64_t), 16, &tx, &c.rx)))
		goto fail;
	for (int i = 0; i < 3; i++) {
		struct producer p = { .next = (uint64_t)i * PER,
				      .end = (uint64_t)(i + 1) * PER };

		if ((err = weft_mpsc_tx_clone(tx, &p.tx)) ||
		    (err = weft_spawn(rt, &producer_desc, &p, NULL)))
			goto fail;
	}
	/* The thread takes the first sender; every sender is now out. */
	if (pthread_create(&th, NULL, thread_producer, tx)) {
		fprintf(stderr, "mpsc: pthread_create failed\n");
		return 1;
	}
	err = weft_block_on(rt, &consumer_desc, &c, &c);
	pthread_join(th, NULL);
	weft_mpsc_rx_drop(c.rx);
	if (err)
		goto fail;
	uint64_t n = (uint64_t)PRODUCERS * PER;
	printf("received %lu numbers, sum %lu (want %lu)\n",
	       (unsigned long)c.count, (unsigned long)c.sum,
	       (unsigned long)(n * (n - 1) / 2));

	/* Pointers: the channel owns what is queued; drop_value frees it. */
	weft_mpsc_config cfg = { .value_size = sizeof(char *),
				 .drop_value = free_message };
	weft_mpsc_rx *prx;
	if ((err = weft_mpsc_new(&cfg, &tx, &prx)))
		goto fail;
	for (int i = 0; i < 2; i++) {
		char *msg = strdup("never read");

		if (!msg || weft_mpsc_try_send(tx, &msg) < 0)
			free(msg); /* not sent: still ours */
	}
	weft_mpsc_rx_drop(prx); /* two queued: drop_value frees both */
	weft_mpsc_tx_drop(tx);
	printf("dropped the receiver with 2 queued: freed %d\n", freed);

	weft_runtime_free(rt);
	return c.count == n && c.sum == n * (n - 1) / 2 && freed == 2 ? 0 : 1;
fail:
	fprintf(stderr, "mpsc: %s\n", weft_strerror(err));
	return 1;
}
