/* SPDX-License-Identifier: MIT */
/*
 * http-hello: an HTTP/1.1 "Hello, World!" server written with fibers.
 *
 *   http-hello [--host ADDR] [--port N] [--workers N]
 *
 * Every request gets "Hello, World!" (headers only for HEAD). Requests are
 * parsed with Node's http_parser (Debian: libhttp-parser-dev; Debian 12
 * has no llhttp), fed whatever each recv brings.
 *
 * One fiber per connection. The parser's callbacks run on that fiber, so
 * a callback may call weft_co_send_all() and suspend the fiber in the
 * middle of http_parser_execute(): blocking-style code inside a library
 * that knows nothing of weft. That is how responses are flushed when the
 * output buffer fills.
 *
 * HTTP, as RFC 9112 asks:
 *  - Keep-alive: HTTP/1.1 connections stay open unless the request says
 *    "Connection: close"; HTTP/1.0 ones close unless it says
 *    "Connection: keep-alive" (http_should_keep_alive). A response that
 *    ends the connection says "Connection: close", and nothing after that
 *    request is read.
 *  - Pipelining: requests that arrive together are answered in order, all
 *    responses of one recv going out in one send.
 *  - Errors: a request the parser rejects gets 400, one with more than
 *    HEAD_MAX bytes of request line and headers 431, one with a body over
 *    BODY_MAX 413; each closes the connection. A connection idle for
 *    IDLE_NS is closed.
 *
 * Output: "http-hello: listening on HOST:PORT" (the actual port, so
 * --port 0 works), and at SIGINT/SIGTERM the number of connections and
 * requests served, then the runtime is shut down (every fiber's pending
 * call returns -ECANCELED and the fiber closes its socket).
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <http_parser.h>

#include <weft.h>

#define IN_SIZE (8 * 1024)   /* one recv */
#define OUT_SIZE (8 * 1024)  /* responses waiting to be sent */
#define HEAD_MAX (8 * 1024)  /* request line and headers of one request */
#define BODY_MAX (64 * 1024) /* body of one request */
#define IDLE_NS (30 * UINT64_C(1000000000))   /* keep-alive */
#define LINGER_NS (2 * UINT64_C(1000000000)) /* lingering close */

#define HELLO "Hello, World!"
#define HEADERS                                   \
	"Content-Type: text/plain\r\n"            \
	"Content-Length: 13\r\n"

static atomic_ulong connections, requests;

/* One connection: lives on its fiber's stack. */
struct conn {
	int fd;
	size_t head_bytes; /* of the request being parsed */
	uint64_t body_bytes;
	int status;        /* an error found by a callback: 413 or 431 */
	bool close;        /* close after the responses so far */
	bool broken;       /* a send failed: stop */
	size_t out_len;
	char out[OUT_SIZE];
};

/* Send what is buffered. Returns 0, or -1 (the connection is broken). */
static int flush(struct conn *c)
{
	if (c->out_len && !c->broken &&
	    weft_co_send_all(c->fd, c->out, c->out_len, 0, 0) < 0)
		c->broken = true;
	c->out_len = 0;
	return c->broken ? -1 : 0;
}

static void append(struct conn *c, const char *s, size_t len)
{
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
}

#define APPEND(c, lit) append((c), (lit), sizeof(lit) - 1)
/* Room for the longest response. */
#define RESPONSE_MAX 160

/* An error response; the connection closes after it. */
static void error_response(struct conn *c, int status)
{
	if (sizeof(c->out) - c->out_len < RESPONSE_MAX && flush(c))
		return;
	switch (status) {
	case 413:
		APPEND(c, "HTTP/1.1 413 Content Too Large\r\n");
		break;
	case 431:
		APPEND(c, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
		break;
	default:
		APPEND(c, "HTTP/1.1 400 Bad Request\r\n");
		break;
	}
	APPEND(c, "Content-Length: 0\r\nConnection: close\r\n\r\n");
	c->close = true;
}

/* ----------------------------------------------- http_parser callbacks */

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	c->head_bytes = 0;
	c->body_bytes = 0;
	return 0;
}

/* The request line and header pieces: count them against HEAD_MAX. */
static int on_head_data(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	(void)at;
	c->head_bytes += len;
	if (c->head_bytes <= HEAD_MAX)
		return 0;
	c->status = 431;
	return -1; /* stops the parser with an error */
}

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;

	/* A declared length over the limit fails before the body comes;
	 * ULLONG_MAX: none declared (chunked or no body). */
	if (p->content_length == UINT64_MAX || p->content_length <= BODY_MAX)
		return 0;
	c->status = 413;
	return -1;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	(void)at;
	c->body_bytes += len;
	if (c->body_bytes <= BODY_MAX)
		return 0;
	c->status = 413;
	return -1;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	bool keep_alive = http_should_keep_alive(p);

	/* Pipelined requests fill the buffer: send it, suspending the
	 * fiber inside http_parser_execute. */
	if (sizeof(c->out) - c->out_len < RESPONSE_MAX && flush(c))
		return -1;
	APPEND(c, "HTTP/1.1 200 OK\r\n" HEADERS);
	if (!keep_alive)
		APPEND(c, "Connection: close\r\n");
	else if (p->http_major == 1 && p->http_minor == 0)
		APPEND(c, "Connection: keep-alive\r\n");
	APPEND(c, "\r\n");
	if (p->method != HTTP_HEAD)
		APPEND(c, HELLO);
	atomic_fetch_add_explicit(&requests, 1, memory_order_relaxed);
	if (!keep_alive) {
		/* Read nothing after this request. */
		c->close = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_head_data,
	.on_header_field = on_head_data,
	.on_header_value = on_head_data,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ------------------------------------------------------ the fibers */

static void *conn_fiber(void *arg)
{
	struct conn c = { .fd = (int)(intptr_t)arg };
	char in[IN_SIZE];
	http_parser p;
	enum http_errno err;
	uint64_t linger;
	int64_t n;
	int one = 1;

	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	http_parser_init(&p, HTTP_REQUEST);
	p.data = &c;
	while (!c.close) {
		n = weft_co_recv(c.fd, in, sizeof(in), 0,
				 weft_now_ns() + IDLE_NS);
		if (n <= 0) /* EOF, idle, -ECANCELED, an error */
			break;
		http_parser_execute(&p, &settings, in, (size_t)n);
		err = HTTP_PARSER_ERRNO(&p);
		if (c.broken)
			break;
		if (err != HPE_OK && err != HPE_PAUSED)
			error_response(&c, c.status ? c.status : 400);
		else if (p.upgrade) /* we speak no other protocol */
			c.close = true;
		if (flush(&c))
			break;
	}
	if (c.close && !c.broken) {
		/*
		 * Lingering close (RFC 9112 9.6): closing with unread bytes
		 * (requests pipelined after the last one answered) makes
		 * the kernel send a reset, which can destroy the responses
		 * still on their way. So half-close, and read until the
		 * client closes too, or LINGER_NS passes.
		 */
		shutdown(c.fd, SHUT_WR);
		linger = weft_now_ns() + LINGER_NS;
		while (weft_co_recv(c.fd, in, sizeof(in), 0, linger) > 0)
			;
	}
	weft_co_close(c.fd); /* also when cancelled: then synchronously */
	return NULL;
}

static void *acceptor(void *arg)
{
	int lfd = *(const int *)arg, fd;

	while ((fd = weft_co_accept(lfd, 0)) != -ECANCELED) {
		if (fd == -ECONNABORTED)
			continue;
		if (fd < 0) {
			fprintf(stderr, "http-hello: accept: %s\n",
				weft_strerror(fd));
			if (fd == -EBADF || fd == -EINVAL || fd == -ENOTSOCK)
				break;
			weft_co_sleep(100 * 1000 * 1000); /* out of fds */
			continue;
		}
		if (weft_go(NULL, conn_fiber, (void *)(intptr_t)fd, NULL,
			    NULL))
			close(fd);
		else
			atomic_fetch_add_explicit(&connections, 1,
						  memory_order_relaxed);
	}
	return NULL;
}

/* ------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f, "usage: http-hello [--host ADDR] [--port N] "
		   "[--workers N]\n"
		   "  --host ADDR  numeric address (default 127.0.0.1)\n"
		   "  --port N     TCP port; 0: the kernel picks (default "
		   "8080)\n"
		   "  --workers N  worker threads (default: online CPUs)\n"
		   "Runs until SIGINT or SIGTERM.\n");
}

static unsigned long number(const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v > max) {
		usage(stderr);
		exit(1);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	unsigned long port = 8080;
	weft_runtime_config cfg;
	weft_runtime *rt;
	sigset_t sigs;
	int lfd, err, sig = 0, c;

	weft_runtime_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "H:p:w:h", opts, NULL)) != -1) {
		if (c == 'H') {
			host = optarg;
		} else if (c == 'p') {
			port = number(optarg, 65535);
		} else if (c == 'w') {
			cfg.workers = (unsigned)number(optarg, 256);
		} else {
			usage(c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}

	/* Before any thread exists, so that only sigwait() takes them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	lfd = weft_tcp_listen(host, (uint16_t)port, 0);
	if (lfd < 0) {
		fprintf(stderr, "http-hello: listen on %s:%lu: %s\n", host,
			port, weft_strerror(lfd));
		return 1;
	}
	err = weft_runtime_new(&cfg, &rt);
	if (err) {
		fprintf(stderr, "http-hello: runtime: %s\n",
			weft_strerror(err));
		close(lfd);
		return 1;
	}
	/* &lfd stays valid: main outlives the runtime. */
	err = weft_go(rt, acceptor, &lfd, NULL, NULL);
	if (err) {
		fprintf(stderr, "http-hello: weft_go: %s\n",
			weft_strerror(err));
		weft_runtime_free(rt);
		close(lfd);
		return 1;
	}
	printf("http-hello: listening on %s:%d\n", host,
	       weft_tcp_local_port(lfd));
	fflush(stdout);

	do {
		err = sigwait(&sigs, &sig);
	} while (err == EINTR);
	/* Cancels every fiber: each closes its socket on the way out. */
	weft_runtime_shutdown(rt);
	weft_runtime_free(rt);
	close(lfd);
	printf("http-hello: %s, served %lu connections, %lu requests\n",
	       sig == SIGINT ? "SIGINT" : "SIGTERM",
	       atomic_load_explicit(&connections, memory_order_relaxed),
	       atomic_load_explicit(&requests, memory_order_relaxed));
	return 0;
}
