/* SPDX-License-Identifier: MIT */
/* A oneshot receiver as a generic future (weft_oneshot_recv, weft/sync.h). */
#include <weft/sync.h>

static weft_poll oneshot_recv_poll(void *self, weft_cx *cx, void *out)
{
	weft_oneshot_recv *f = self;

	return weft_oneshot_recv_poll(f->rx, cx, out, f->value);
}

static void oneshot_recv_drop(void *self)
{
	weft_oneshot_recv *f = self;

	weft_oneshot_rx_drop(f->rx);
	f->rx = NULL;
}

WEFT_API const weft_future_desc weft_oneshot_recv_desc = {
	.poll = oneshot_recv_poll,
	.drop = oneshot_recv_drop,
	.size = sizeof(weft_oneshot_recv),
	.output_size = sizeof(int),
};
