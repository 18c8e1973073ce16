/* SPDX-License-Identifier: MIT */
/*
 * streams: an echo server on accept and recv streams (docs/io.md,
 * Streams), checked by clients in the same process.
 *
 * The acceptor fiber takes connections from one multishot accept; each
 * connection fiber echoes from a multishot recv, whose data arrives in
 * the runtime's provided buffers: the fiber sends a buffer back and
 * releases it. Four client fibers each send 100 messages and check every
 * echoed byte. Exits 0 when every check held and the runtime's metrics
 * show which rung the kernel gave (multishot, buffer ring).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#define SEC UINT64_C(1000000000)
#define CLIENTS 4
#define MESSAGES 100

static weft_runtime *rt;

/* One connection: echo until the peer closes. */
static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	weft_recv_stream s;
	weft_buf b = WEFT_BUF_INIT;
	int64_t n;

	weft_recv_stream_init(&s, fd);
	while ((n = weft_co_recv_next(&s, &b, 0)) > 0) {
		int64_t w = weft_co_send_all(fd, b.data, b.len, 0, 0);

		weft_buf_release(&b); /* back to the pool */
		if (w < 0)
			break;
	}
	weft_recv_stream_drop(&s);
	weft_co_close(fd);
	return NULL;
}

/* Accept CLIENTS connections, a fiber each. */
static void *acceptor(void *arg)
{
	weft_accept_stream s;
	int lfd = (int)(intptr_t)arg;

	weft_accept_stream_init(&s, lfd);
	for (int i = 0; i < CLIENTS; i++) {
		int fd = weft_co_accept_next(&s, weft_now_ns() + 5 * SEC);

		if (fd < 0)
			break;
		if (weft_go(rt, serve, (void *)(intptr_t)fd, NULL, NULL))
			close(fd);
	}
	weft_accept_stream_drop(&s); /* closes what came meanwhile */
	return NULL;
}

/* A client: MESSAGES messages of growing size, each echoed back. */
static void *client(void *arg)
{
	int port = (int)(intptr_t)arg;
	char out[512], in[512];
	intptr_t ok = 0;
	int fd = weft_co_tcp_connect("127.0.0.1", (uint16_t)port,
				     weft_now_ns() + 5 * SEC);

	if (fd < 0)
		return (void *)0;
	for (int m = 0; m < MESSAGES; m++) {
		size_t len = 1 + (size_t)(m * 5) % sizeof(out);

		for (size_t i = 0; i < len; i++)
			out[i] = (char)(m + i);
		if (weft_co_send_all(fd, out, len, 0, 0) != (int64_t)len ||
		    weft_co_recv_exact(fd, in, len, weft_now_ns() + 5 * SEC) !=
			    (int64_t)len ||
		    memcmp(in, out, len))
			goto out;
	}
	ok = 1;
out:
	weft_co_close(fd);
	return (void *)ok;
}

static void *run(void *arg)
{
	int lfd = weft_tcp_listen("127.0.0.1", 0, 64);
	weft_join *acc = NULL, *cl[CLIENTS];
	intptr_t good = 0;

	(void)arg;
	if (lfd < 0)
		return (void *)0;
	if (weft_go(rt, acceptor, (void *)(intptr_t)lfd, NULL, &acc))
		acc = NULL;
	for (int i = 0; i < CLIENTS; i++)
		if (weft_go(rt, client,
			    (void *)(intptr_t)weft_tcp_local_port(lfd), NULL,
			    &cl[i]))
			cl[i] = NULL;
	for (int i = 0; i < CLIENTS; i++) {
		void *r = NULL;

		/* weft_co_join consumes the handle. */
		if (cl[i] && weft_co_join(cl[i], &r) == 0)
			good += (intptr_t)r;
	}
	if (acc)
		weft_co_join(acc, NULL);
	close(lfd);
	return (void *)good;
}

int main(void)
{
	weft_runtime_config cfg;
	weft_join_future jf = { 0 };
	weft_runtime_metrics m = { .size = sizeof(m) };
	void *good = NULL;
	int st = -1;

	weft_runtime_config_init(&cfg);
	cfg.workers = 2;
	if (weft_runtime_new(&cfg, &rt))
		return 1;
	jf.value = &good;
	if (weft_go(rt, run, NULL, NULL, &jf.join) == 0 &&
	    weft_block_on(rt, &weft_join_future_desc, &jf, &st) < 0)
		st = -1;
	if (st != 0)
		good = NULL;
	weft_runtime_metrics_get(rt, &m);
	weft_runtime_free(rt);
	printf("streams: %d of %d clients echoed intact; multishot accept %s, "
	       "multishot recv %s, buffer ring %s\n",
	       (int)(intptr_t)good, CLIENTS,
	       m.features & WEFT_FEAT_MULTISHOT_ACCEPT ? "yes" : "no",
	       m.features & WEFT_FEAT_MULTISHOT_RECV ? "yes" : "no",
	       m.features & WEFT_FEAT_BUF_RING ? "yes" : "no");
	return (intptr_t)good == CLIENTS ? 0 : 1;
}
