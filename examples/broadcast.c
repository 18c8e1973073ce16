/* SPDX-License-Identifier: MIT */
/*
 * broadcast: a chat room in miniature (docs/sync.md).
 *
 * Three listener tasks and one slow client on the main thread subscribe to
 * a weft_broadcast of chat lines that keeps the last 4. The main thread
 * posts 10 lines without waiting for anyone. Each listener takes what the
 * ring still holds when it gets to run and is told how many lines it
 * skipped; the slow client reads only at the end and is told it missed 6. Every receiver accounts for all 10 lines as
 * received plus missed; the program exits 0 when they all do.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <weft.h>

#define LISTENERS 3
#define LINES 10

struct line {
	int from;
	char text[60];
};

struct listener {
	int id;
	weft_broadcast_rx *rx;
	bool waiting;
	struct line line;
	uint64_t missed;
	int64_t got, skipped;
	weft_broadcast_recv recv;
};

static weft_poll listener_poll(void *self, weft_cx *cx, void *out)
{
	struct listener *l = self;
	int st;

	for (;;) {
		if (!l->waiting) {
			weft_broadcast_recv_init(&l->recv, l->rx, &l->line,
						 &l->missed);
			l->waiting = true;
		}
		if (weft_broadcast_recv_poll(&l->recv, cx, &st) ==
		    WEFT_PENDING)
			return WEFT_PENDING;
		l->waiting = false;
		if (st == -EPIPE) /* the room closed and we read it all */
			break;
		if (st == -EOVERFLOW) { /* too slow: skip, don't block */
			l->skipped += (int64_t)l->missed;
			continue;
		}
		l->got++;
	}
	printf("listener %d: %" PRId64 " lines, %" PRId64 " skipped\n",
	       l->id, l->got, l->skipped);
	*(int64_t *)out = l->got + l->skipped;
	return WEFT_READY;
}

static void listener_drop(void *self)
{
	struct listener *l = self;

	if (l->waiting)
		weft_broadcast_recv_drop(&l->recv);
	weft_broadcast_rx_drop(l->rx);
}

static const weft_future_desc listener_desc = {
	.poll = listener_poll,
	.drop = listener_drop,
	.size = sizeof(struct listener),
	.output_size = sizeof(int64_t),
};

int main(void)
{
	weft_runtime *rt;
	weft_broadcast_tx *tx;
	weft_broadcast_rx *slow;
	weft_join *j[LISTENERS];
	int ok = 1;

	if (weft_runtime_new(NULL, &rt) ||
	    weft_broadcast_new(sizeof(struct line), 4, &tx, &slow))
		return 1;
	for (int i = 0; i < LISTENERS; i++) {
		struct listener l = { .id = i };
		if (weft_broadcast_subscribe(tx, &l.rx) ||
		    weft_spawn(rt, &listener_desc, &l, &j[i]))
			return 1;
	}
	for (int i = 0; i < LINES; i++) {
		struct line ln = { .from = i % 2 };
		snprintf(ln.text, sizeof(ln.text), "line %d", i);
		/* Returns how many receivers exist; never waits. */
		if (weft_broadcast_send(tx, &ln) != LISTENERS + 1)
			return 1;
	}
	weft_broadcast_tx_drop(tx); /* the room closes */

	/* The slow client, on a plain thread: it lagged by 6. */
	struct line ln;
	uint64_t missed = 0;
	int64_t got = 0, skipped = 0;
	for (int st; (st = weft_broadcast_recv_blocking(slow, &ln, &missed)) !=
		     -EPIPE;) {
		if (st == -EOVERFLOW)
			skipped += (int64_t)missed;
		else if (st == 0)
			got++;
		else
			return 1;
	}
	printf("slow client: %" PRId64 " lines (last: %s), %" PRId64
	       " skipped\n", got, ln.text, skipped);
	weft_broadcast_rx_drop(slow);
	ok &= got == 4 && skipped == LINES - 4;

	for (int i = 0; i < LISTENERS; i++) {
		int64_t total = 0;
		weft_join_future jf = { .join = j[i], .value = &total };
		int status;
		if (weft_block_on(rt, &weft_join_future_desc, &jf, &status))
			return 1;
		ok &= status == 0 && total == LINES;
	}
	weft_runtime_free(rt);
	return ok ? 0 : 1;
}
