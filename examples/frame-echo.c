/* SPDX-License-Identifier: MIT */
/*
 * frame-echo: echoes every length-delimited frame back (docs/codec.md).
 *
 *   frame-echo [--host ADDR] [--port N] [--workers N] [--max-frame BYTES]
 *
 * Frames are tokio-util's LengthDelimitedCodec defaults (4-byte big-endian
 * length, then the payload), up to --max-frame bytes (default 8 MiB). One
 * fiber accepts from an accept stream; each connection is a fiber with a
 * framed reader and writer: read a frame, send it back. A frame over the
 * maximum, or a connection that ends
 * inside a frame, closes that connection only. Prints "frame-echo:
 * listening on HOST:PORT", runs until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft.h>

static weft_codec codec;

static void *conn(void *arg)
{
	int fd = (int)(intptr_t)arg, rc;
	weft_framed_reader r;
	weft_framed_writer w;
	weft_frame_view f;

	if (weft_framed_reader_init(&r, fd, &codec) ||
	    weft_framed_writer_init(&w, fd, &codec, 0)) {
		weft_co_close(fd);
		return NULL;
	}
	/* Echo what came in a burst with one send: queue each frame, and
	 * flush only when no whole frame is left to read. */
	while ((rc = weft_co_frame_read(&r, &f, 0)) == 1) {
		do {
			if (weft_co_frame_send(&w, f.data, f.len, false, 0) < 0)
				goto out;
		} while ((rc = weft_framed_try_read(&r, &f)) == 1);
		if (weft_co_frame_flush(&w, 0) < 0 || rc != -EAGAIN)
			break;
	}
out:
	if (rc < 0 && rc != -ECANCELED && rc != -ECONNRESET)
		fprintf(stderr, "frame-echo: connection closed: %s\n",
			weft_strerror(rc));
	weft_framed_writer_free(&w);
	weft_framed_reader_free(&r);
	weft_co_close(fd);
	return NULL;
}

static void *acceptor(void *arg)
{
	weft_accept_stream s;
	int fd;

	weft_accept_stream_init(&s, (int)(intptr_t)arg);
	while ((fd = weft_co_accept_next(&s, 0)) >= 0)
		if (weft_go(NULL, conn, (void *)(intptr_t)fd, NULL, NULL))
			close(fd);
	weft_accept_stream_drop(&s);
	return NULL;
}

static void usage(FILE *f, const char *name)
{
	fprintf(f, "usage: %s [--host ADDR] [--port N] [--workers N] "
		   "[--max-frame BYTES]\n", name);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "max-frame", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	unsigned long port = 7001;
	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_join *acc = NULL;
	sigset_t sigs;
	int c, sig, lfd;
	char *end;

	weft_runtime_config_init(&cfg);
	weft_codec_init(&codec);
	while ((c = getopt_long(argc, argv, "H:p:w:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'p':
			port = strtoul(optarg, &end, 10);
			if (*end || port > 65535)
				goto bad;
			break;
		case 'w':
			cfg.workers = (unsigned)strtoul(optarg, &end, 10);
			if (*end || cfg.workers > 256)
				goto bad;
			break;
		case 'm':
			codec.max_frame = strtoull(optarg, &end, 10);
			if (*end || weft_codec_check(&codec))
				goto bad;
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			goto bad;
		}
	}
	/* Signals go to sigwait below, not to the workers. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	lfd = weft_tcp_listen(host, (uint16_t)port, 1024);
	if (lfd < 0) {
		fprintf(stderr, "frame-echo: listen: %s\n", weft_strerror(lfd));
		return 1;
	}
	if (weft_runtime_new(&cfg, &rt) ||
	    weft_go(rt, acceptor, (void *)(intptr_t)lfd, NULL, &acc)) {
		fprintf(stderr, "frame-echo: cannot start the runtime\n");
		return 1;
	}
	printf("frame-echo: listening on %s:%d\n", host,
	       weft_tcp_local_port(lfd));
	fflush(stdout);
	while (sigwait(&sigs, &sig) == EINTR)
		;
	weft_task_abort(acc);
	weft_join_drop(acc);
	weft_runtime_shutdown(rt);
	weft_runtime_free(rt);
	close(lfd);
	printf("frame-echo: %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	return 0;
bad:
	usage(stderr, argv[0]);
	return 1;
}
