/* SPDX-License-Identifier: MIT */
/*
 * peer: two nodes of a peer network say hello (docs/peer.md).
 *
 * Nodes a and b listen on 127.0.0.1, on ports the kernel picks, and list
 * each other. a dials b and queues "ping" for it at once (an endpoint
 * that is wanted takes messages before it is connected); b answers
 * "pong" to the endpoint the ping came from. Then both shut down, a's
 * queue flushed. Every event each node sees is printed. Exits 0 when
 * each got the other's message.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>
#include <weft/peer.h>

#define SEC UINT64_C(1000000000)

static const char *kind_name(int kind)
{
	static const char *names[] = {
		"?", "added", "removed", "connected", "disconnected",
		"message", "sent", "send failed", "refused", "discovered",
	};

	return kind > 0 && kind <= WEFT_PEER_DISCOVERED ? names[kind] : "?";
}

/* Take @n's events until one of @kind (in @ev, the caller's to clear). */
static int wait_for(const char *name, weft_peer_node *n, int kind,
		    weft_peer_event *ev, uint64_t deadline)
{
	int err;

	while ((err = weft_co_peer_event(n, ev, deadline)) == 0) {
		printf("peer: %s: %s, endpoint %llu\n", name,
		       kind_name(ev->kind), (unsigned long long)ev->peer);
		if (ev->kind == kind)
			return 0;
		weft_peer_event_clear(ev);
	}
	return err;
}

/* "tcp://127.0.0.1:PORT" of @n, listed on @on; its endpoint id there. */
static weft_peer_id list(weft_peer_node *on, const weft_peer_node *n)
{
	char url[48];
	weft_peer_id id = 0;

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", weft_peer_port(n));
	return weft_peer_add(on, url, &id) ? 0 : id;
}

static void *run(void *arg)
{
	uint64_t deadline = weft_now_ns() + 5 * SEC;
	weft_peer_node *a = NULL, *b = NULL;
	weft_peer_id b_on_a, a_on_b;
	weft_peer_event ev = { 0 };
	int ok = 0;

	(void)arg;
	/* NULL config: the defaults, 127.0.0.1 on a port the kernel picks. */
	if (weft_peer_node_new(weft_runtime_current(), NULL, &a) ||
	    weft_peer_node_new(weft_runtime_current(), NULL, &b))
		goto out;
	b_on_a = list(a, b);
	a_on_b = list(b, a); /* without it, b refuses a's connection */
	if (!b_on_a || !a_on_b || weft_peer_connect(a, b_on_a) ||
	    weft_co_peer_send(a, b_on_a, "ping", 4, deadline))
		goto out;

	/* b: the ping, from the endpoint that is a; answer it. */
	if (wait_for("b", b, WEFT_PEER_MESSAGE, &ev, deadline) ||
	    ev.peer != a_on_b || ev.len != 4 || memcmp(ev.data, "ping", 4) ||
	    weft_co_peer_send(b, ev.peer, "pong", 4, deadline))
		goto out;
	weft_peer_event_clear(&ev);

	/* a: the pong. */
	if (wait_for("a", a, WEFT_PEER_MESSAGE, &ev, deadline) ||
	    ev.peer != b_on_a || ev.len != 4 || memcmp(ev.data, "pong", 4))
		goto out;
	ok = 1;
out:
	weft_peer_event_clear(&ev);
	/* From a fiber: each shutdown suspends it until that node's tasks
	 * are done, then free drops the events nobody took. */
	weft_peer_node_free(a);
	weft_peer_node_free(b);
	return (void *)(uintptr_t)ok;
}

int main(void)
{
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_join_future jf = { 0 };
	void *ok = NULL;
	int st = -1;

	weft_runtime_config_init(&cfg);
	if (weft_runtime_new(&cfg, &rt))
		return 1;
	jf.value = &ok;
	if (weft_go(rt, run, NULL, NULL, &jf.join) == 0 &&
	    weft_block_on(rt, &weft_join_future_desc, &jf, &st) < 0)
		st = -1;
	weft_runtime_free(rt);
	printf("peer: %s\n", st == 0 && ok ? "ok" : "FAILED");
	return st == 0 && ok ? 0 : 1;
}
