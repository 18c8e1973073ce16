/* SPDX-License-Identifier: MIT */
/*
 * datagram: UDP and Unix domain sockets from a fiber (docs/io.md).
 *
 * A UDP echo on 127.0.0.1: the client sends "ping" to the server's port,
 * the server answers to the source address weft_co_recv_from gave it, and
 * the client checks that the answer came from the server. Then a Unix
 * stream socket in a fresh directory: connect, accept, send, receive.
 * Exits 0 when every check held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <weft.h>

#define SEC UINT64_C(1000000000)

static int udp_echo(void)
{
	int server = weft_udp_bind("127.0.0.1", 0, 0);
	int client = weft_udp_bind("127.0.0.1", 0, 0);
	struct sockaddr_storage to, from, peer;
	socklen_t tolen, fromlen, peerlen;
	uint64_t dl = weft_now_ns() + 5 * SEC;
	char buf[64];
	int64_t n;
	int ok = 0;

	if (server < 0 || client < 0)
		goto out;
	weft_addr_parse("127.0.0.1", (uint16_t)weft_tcp_local_port(server),
			&to, &tolen);
	if (weft_co_send_to(client, "ping", 4, (struct sockaddr *)&to, tolen,
			    0, dl) != 4)
		goto out;
	/* The server: one datagram and who sent it; answer there. */
	n = weft_co_recv_from(server, buf, sizeof(buf), 0, &from, &fromlen, dl);
	if (n != 4 || weft_co_send_to(server, "pong", 4,
				      (struct sockaddr *)&from, fromlen, 0,
				      dl) != 4)
		goto out;
	n = weft_co_recv_from(client, buf, sizeof(buf), 0, &peer, &peerlen,
			      dl);
	ok = n == 4 && !memcmp(buf, "pong", 4) && peerlen == tolen &&
	     !memcmp(&peer, &to, tolen);
out:
	if (server >= 0)
		close(server);
	if (client >= 0)
		close(client);
	return ok;
}

static int unix_stream(void)
{
	char dir[] = "/tmp/weft-datagram-XXXXXX", path[64];
	uint64_t dl = weft_now_ns() + 5 * SEC;
	int lfd, c, s = -1, ok = 0;
	char buf[8];

	if (!mkdtemp(dir))
		return 0;
	snprintf(path, sizeof(path), "%s/sock", dir);
	lfd = weft_unix_listen(path, 4);
	c = lfd >= 0 ? weft_co_unix_connect(path, dl) : -1;
	if (c >= 0 && (s = weft_co_accept(lfd, dl)) >= 0 &&
	    weft_co_send(c, "hi", 2, 0, dl) == 2)
		ok = weft_co_recv(s, buf, sizeof(buf), 0, dl) == 2 &&
		     !memcmp(buf, "hi", 2);
	if (s >= 0)
		weft_co_close(s);
	if (c >= 0)
		weft_co_close(c);
	if (lfd >= 0)
		weft_co_close(lfd);
	unlink(path); /* the socket file outlives the socket */
	rmdir(dir);
	return ok;
}

static void *run(void *arg)
{
	(void)arg;
	return (void *)(uintptr_t)(udp_echo() && unix_stream());
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
	printf("datagram: %s\n", st == 0 && ok ? "ok" : "FAILED");
	return st == 0 && ok ? 0 : 1;
}
