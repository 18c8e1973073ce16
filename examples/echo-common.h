/* SPDX-License-Identifier: MIT */
/*
 * echo-common.h: what examples/echo-server.c (poll futures) and
 * examples/echo-fiber.c (fibers) share, so that each of them shows only
 * its connection handler and accept loop: the command line, the
 * listening socket, the runtime, and the drain on SIGINT/SIGTERM.
 *
 *   [--host ADDR] [--port N] [--workers N] [--idle-timeout S] [--grace-ms N]
 *
 * echo_start() parses the options, blocks SIGINT and SIGTERM (before the
 * runtime exists, so that worker threads inherit the mask and never take
 * them), opens the listening socket and creates the runtime. The program
 * then starts its accept task and calls echo_run(), which prints
 * "NAME: listening on HOST:PORT" (the actual port, so --port 0 works),
 * waits in sigwait() and drains: it sets echo.draining and notifies
 * echo.drain_notify (connections waiting for a request close), aborts
 * the accept task (no new connections) and calls
 * weft_runtime_shutdown_timeout() with the --grace-ms period (requests in
 * flight finish; what is left then is cancelled). On exit it prints the
 * number of connections served and of those closed for idling.
 *
 * A header of static functions, included by one .c file each.
 */
#ifndef ECHO_COMMON_H
#define ECHO_COMMON_H

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft.h>

/* During the drain a connection closes after this long without a byte. */
#define DRAIN_IDLE_NS (1000 * 1000 * 1000)

static struct echo {
	const char *name;         /* the program's, prefix of its output */
	const char *host;
	unsigned long port;
	unsigned long grace_ms;
	uint64_t idle_timeout_ns; /* --idle-timeout; 0: none */
	int lfd;                  /* the listening socket */
	int local_port;
	sigset_t sigs;
	weft_runtime *rt;
	/* Set by echo_run when the drain begins, before drain_notify is
	 * notified (notify_waiters: wakes the waits prepared before it). */
	atomic_bool draining;
	weft_notify *drain_notify;
	atomic_ulong served;      /* connections accepted */
	atomic_ulong idle_closed; /* closed by --idle-timeout */
	bool metrics;             /* --metrics: print the counters at exit */
	bool streams;             /* --streams: accept and recv streams */
} echo;

static void echo_usage(FILE *f)
{
	fprintf(f,
		"usage: %s [--host ADDR] [--port N] [--workers N]\n"
		"       [--idle-timeout S] [--grace-ms N] [--metrics]\n"
		"       [--streams] [--fifo-owner]\n"
		"\n"
		"  --host ADDR   numeric IPv4 or IPv6 address (default "
		"127.0.0.1)\n"
		"  --port N      TCP port; 0 lets the kernel pick (default "
		"7000)\n"
		"  --workers N   worker threads (default: online CPUs)\n"
		"  --idle-timeout S\n"
		"                close a connection that sends nothing for S "
		"seconds\n"
		"                (decimals allowed; default: never)\n"
		"  --grace-ms N  on SIGINT or SIGTERM, let requests in flight "
		"finish for\n"
		"                up to N ms before closing what is left "
		"(default 5000)\n"
		"  --metrics     at exit, print the runtime's counters "
		"(weft_runtime_metrics)\n"
		"  --streams     accept and receive with streams: multishot "
		"accept, and\n"
		"                multishot recv into provided buffers "
		"(weft/multishot.h)\n"
		"  --fifo-owner  workers take their own queued tasks oldest "
		"first\n"
		"                (WEFT_RT_FIFO_OWNER)\n"
		"\n"
		"Runs until SIGINT or SIGTERM.\n", echo.name);
}

/* --metrics: the runtime's counters, one "name value" per line. */
static void echo_print_metrics(const weft_runtime *rt)
{
	weft_runtime_metrics m = { .size = sizeof(m) };

	if (weft_runtime_metrics_get(rt, &m))
		return;
	printf("metrics: polls %llu lifo_polls %llu steals %llu "
	       "injector_pops %llu overflows %llu parks %llu unparks %llu "
	       "ops_submitted %llu ops_completed %llu remote_cancels %llu "
	       "multishot_rearms %llu bufring_enobufs %llu "
	       "accept_backoffs %llu features 0x%llx\n",
	       (unsigned long long)m.polls, (unsigned long long)m.lifo_polls,
	       (unsigned long long)m.steals,
	       (unsigned long long)m.injector_pops,
	       (unsigned long long)m.overflows, (unsigned long long)m.parks,
	       (unsigned long long)m.unparks_sent,
	       (unsigned long long)m.ops_submitted,
	       (unsigned long long)m.ops_completed,
	       (unsigned long long)m.remote_cancels,
	       (unsigned long long)m.multishot_rearms,
	       (unsigned long long)m.bufring_enobufs,
	       (unsigned long long)m.accept_backoffs,
	       (unsigned long long)m.features);
}

/* A number in [0, @max], or exit(1). */
static unsigned long echo_number(const char *opt, const char *s,
				 unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno || v > max) {
		fprintf(stderr, "%s: %s wants a number in 0..%lu\n",
			echo.name, opt, max);
		exit(1);
	}
	return v;
}

/* Seconds in (0, 1e6], decimals allowed, in ns; or exit(1). */
static uint64_t echo_seconds(const char *opt, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno || !(v > 0) || v > 1e6) {
		fprintf(stderr, "%s: %s wants seconds in (0, 1e6]\n",
			echo.name, opt);
		exit(1);
	}
	return (uint64_t)(v * 1e9);
}

/* Parse the command line; exits on --help (0) or a bad option (1). */
static void echo_parse(int argc, char **argv, weft_runtime_config *cfg)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "grace-ms", required_argument, NULL, 'g' },
		{ "metrics", no_argument, NULL, 'm' },
		{ "streams", no_argument, NULL, 's' },
		{ "fifo-owner", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "H:p:w:i:g:msfh", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			echo.host = optarg;
			break;
		case 'p':
			echo.port = echo_number("--port", optarg, 65535);
			break;
		case 'w':
			cfg->workers = (unsigned)echo_number("--workers",
							     optarg, 256);
			break;
		case 'i':
			echo.idle_timeout_ns = echo_seconds("--idle-timeout",
							    optarg);
			break;
		case 'g':
			echo.grace_ms = echo_number("--grace-ms", optarg,
						    86400000);
			break;
		case 'm':
			echo.metrics = true;
			break;
		case 's':
			echo.streams = true;
			/* 1,024 x 4 KiB per worker: 1,000 connections with a
			 * message each in flight do not run the pool dry. */
			cfg->buf_count = 1024;
			break;
		case 'f':
			cfg->flags |= WEFT_RT_FIFO_OWNER;
			break;
		case 'h':
			echo_usage(stdout);
			exit(0);
		default:
			echo_usage(stderr);
			exit(1);
		}
	}
	if (optind < argc) {
		echo_usage(stderr);
		exit(1);
	}
}

/*
 * Parse the options, block the signals, listen, create the runtime
 * (echo.rt). Returns 0, or -1 after printing why (nothing left open).
 */
static int echo_start(const char *name, int argc, char **argv)
{
	weft_runtime_config cfg;
	int err;

	echo.name = name;
	echo.host = "127.0.0.1";
	echo.port = 7000;
	echo.grace_ms = 5000;
	weft_runtime_config_init(&cfg);
	echo_parse(argc, argv, &cfg);

	/*
	 * Threads inherit the signal mask, so block first: then only
	 * sigwait() in echo_run ever takes SIGINT and SIGTERM. A send to a
	 * closed peer gives -EPIPE (weft adds MSG_NOSIGNAL), so SIGPIPE
	 * needs nothing.
	 */
	sigemptyset(&echo.sigs);
	sigaddset(&echo.sigs, SIGINT);
	sigaddset(&echo.sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &echo.sigs, NULL);

	echo.lfd = weft_tcp_listen(echo.host, (uint16_t)echo.port, 0);
	if (echo.lfd < 0) {
		fprintf(stderr, "%s: listen on %s:%lu: %s\n", name, echo.host,
			echo.port, weft_strerror(echo.lfd));
		return -1;
	}
	echo.local_port = weft_tcp_local_port(echo.lfd);
	err = echo.local_port < 0 ? echo.local_port
				  : weft_notify_new(&echo.drain_notify);
	if (!err)
		err = weft_runtime_new(&cfg, &echo.rt);
	if (err) {
		fprintf(stderr, "%s: start: %s\n", name, weft_strerror(err));
		weft_notify_free(echo.drain_notify);
		close(echo.lfd);
		return -1;
	}
	return 0;
}

/*
 * Serve until SIGINT or SIGTERM, drain, free everything. @acceptor is the
 * accept task's join handle (consumed); NULL: it could not be started,
 * just free everything. Returns main's exit status.
 */
static int echo_run(weft_join *acceptor)
{
	uint64_t t0;
	int sig = 0, err;

	if (!acceptor) {
		weft_runtime_free(echo.rt);
		weft_notify_free(echo.drain_notify);
		close(echo.lfd);
		return 1;
	}
	printf("%s: listening on %s:%d\n", echo.name, echo.host,
	       echo.local_port);
	fflush(stdout);

	do {
		err = sigwait(&echo.sigs, &sig);
	} while (err == EINTR);

	/*
	 * Drain: no new connections (the acceptor is cancelled, and spawns
	 * fail from now on anyway), idle connections close, requests in
	 * flight finish within the grace period; then whatever is left is
	 * cancelled and the workers are joined.
	 */
	t0 = weft_now_ns();
	atomic_store(&echo.draining, true);
	weft_notify_waiters(echo.drain_notify);
	weft_task_abort(acceptor);
	err = weft_runtime_shutdown_timeout(echo.rt,
					    echo.grace_ms * UINT64_C(1000000));
	if (err == -ETIMEDOUT) {
		printf("%s: grace period of %lu ms over: closed the "
		       "connections left\n", echo.name, echo.grace_ms);
		err = 0;
	} else if (!err) {
		printf("%s: drained in %llu ms\n", echo.name,
		       (unsigned long long)((weft_now_ns() - t0) / 1000000));
	} else {
		fprintf(stderr, "%s: shutdown: %s\n", echo.name,
			weft_strerror(err));
	}
	weft_join_drop(acceptor);
	if (echo.metrics)
		echo_print_metrics(echo.rt);
	weft_runtime_free(echo.rt);
	weft_notify_free(echo.drain_notify);
	close(echo.lfd);
	printf("%s: %s, served %lu connections, %lu closed idle\n",
	       echo.name, sig == SIGINT ? "SIGINT" : "SIGTERM",
	       atomic_load_explicit(&echo.served, memory_order_relaxed),
	       atomic_load_explicit(&echo.idle_closed, memory_order_relaxed));
	return err ? 1 : 0;
}

#endif /* ECHO_COMMON_H */
