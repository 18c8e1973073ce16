/* SPDX-License-Identifier: MIT */
/*
 * ticker: an interval and a timeout on any future (docs/time.md).
 *
 * One task ticks a weft_interval every 10 ms five times, then waits for a
 * oneshot message under a weft_timeout twice: the first wait times out
 * (nobody has sent yet), the second gets the message main sends once the
 * task asks for it. Prints what happened; exits 0 when every tick came at
 * or after its deadline, one period apart, and the two waits ended as
 * expected.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

#define MS 1000000ull
#define TICKS 5

/* What the task reports: its output. */
struct report {
	int64_t deadline[TICKS];  /* each tick's scheduled time (ns) */
	uint64_t woke[TICKS];     /* when the task saw it */
	int first, second;        /* the two timeouts' results */
	int value;                /* the message of the second */
};

struct ticker {
	int step, ticks;
	weft_interval iv;
	struct report r;
	weft_oneshot_rx *never;   /* nobody sends on it: the first wait */
	weft_oneshot_rx *msg;     /* main sends on it: the second wait */
	weft_oneshot_tx *ask;     /* tells main to send */
	weft_oneshot_recv recv;   /* the inner future of each timeout */
	int recv_status;
	weft_timeout timeout;
};

/* A timeout of @ns around a receive on @rx, which the recv then owns. */
static void wait_for_message(struct ticker *t, weft_oneshot_rx *rx,
			     uint64_t ns)
{
	weft_future inner;

	t->recv.rx = rx;
	t->recv.value = &t->r.value;
	weft_future_init(&inner, &weft_oneshot_recv_desc, &t->recv,
			 &t->recv_status);
	weft_timeout_init(&t->timeout, &inner, ns);
}

static weft_poll ticker_poll(void *self, weft_cx *cx, void *out)
{
	struct ticker *t = self;

	switch (t->step) {
	case 0: /* five ticks, the first at once */
		while (t->ticks < TICKS) {
			int64_t d;

			if (weft_interval_tick(&t->iv, cx, &d) == WEFT_PENDING)
				return WEFT_PENDING;
			t->r.woke[t->ticks] = weft_now_ns();
			t->r.deadline[t->ticks++] = d;
		}
		wait_for_message(t, t->never, 30 * MS);
		t->never = NULL; /* the timeout's inner future owns it now */
		t->step = 1;
		/* fall through */
	case 1: /* nobody sends: times out, and the receive is dropped */
		if (weft_timeout_poll(&t->timeout, cx, &t->r.first) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		wait_for_message(t, t->msg, 5000 * MS);
		t->msg = NULL;
		weft_oneshot_send(t->ask, &(int){ 1 });
		t->ask = NULL; /* a send consumes the sender */
		t->step = 2;
		/* fall through */
	case 2: /* main sends 42 now */
		if (weft_timeout_poll(&t->timeout, cx, &t->r.second) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
	}
	memcpy(out, &t->r, sizeof(t->r));
	return WEFT_READY;
}

static void ticker_drop(void *self)
{
	struct ticker *t = self;

	weft_interval_drop(&t->iv);
	weft_timeout_drop(&t->timeout);
	weft_oneshot_rx_drop(t->never);
	weft_oneshot_rx_drop(t->msg);
	weft_oneshot_tx_drop(t->ask);
}

static const weft_future_desc ticker_desc = {
	.poll = ticker_poll,
	.drop = ticker_drop,
	.size = sizeof(struct ticker),
	.output_size = sizeof(struct report),
};

int main(void)
{
	struct ticker t;
	struct report r;
	weft_oneshot_tx *never_tx, *msg_tx;
	weft_oneshot_rx *ask_rx;
	weft_runtime *rt;
	weft_join *join;
	int asked = 0, status = -1, ok;

	memset(&t, 0, sizeof(t));
	if (weft_runtime_new(NULL, &rt) < 0 ||
	    weft_oneshot_new(sizeof(int), &never_tx, &t.never) < 0 ||
	    weft_oneshot_new(sizeof(int), &msg_tx, &t.msg) < 0 ||
	    weft_oneshot_new(sizeof(int), &t.ask, &ask_rx) < 0)
		return 1;
	weft_interval_init(&t.iv, weft_now_ns(), 10 * MS, WEFT_MISSED_SKIP);
	if (weft_spawn(rt, &ticker_desc, &t, &join) < 0)
		return 1;

	/* Wait until the task asks, then send it 42. */
	weft_oneshot_recv ask = { .rx = ask_rx, .value = &asked };
	if (weft_block_on(rt, &weft_oneshot_recv_desc, &ask, &status) < 0 ||
	    status != 0)
		return 1;
	weft_oneshot_send(msg_tx, &(int){ 42 });

	/* The task's output is its report. */
	weft_join_future jf = { .join = join, .value = &r };
	if (weft_block_on(rt, &weft_join_future_desc, &jf, &status) < 0 ||
	    status != 0)
		return 1;
	weft_oneshot_tx_drop(never_tx);
	weft_runtime_free(rt);

	ok = r.first == -ETIMEDOUT && r.second == 0 && r.value == 42;
	for (int i = 0; i < TICKS; i++) {
		printf("tick %d: %+.3f ms after start, %.3f ms late\n", i,
		       (double)(r.deadline[i] - r.deadline[0]) / MS,
		       (double)(r.woke[i] - (uint64_t)r.deadline[i]) / MS);
		ok &= r.woke[i] >= (uint64_t)r.deadline[i];
		if (i)
			ok &= r.deadline[i] - r.deadline[i - 1] ==
			      (int64_t)(10 * MS);
	}
	printf("first wait: %s\n", r.first == -ETIMEDOUT
					   ? "timed out"
					   : weft_strerror(r.first));
	printf("second wait: %s, message %d\n",
	       r.second == 0 ? "received" : weft_strerror(r.second), r.value);
	return ok ? 0 : 1;
}
