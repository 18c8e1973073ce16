/* SPDX-License-Identifier: MIT */
/*
 * bulk-send: throughput of one TCP connection on loopback, send against
 * send_zc (weft_co_send / weft_co_send_zc, IORING_OP_SEND_ZC).
 *
 *   bulk-send [--size BYTES] [--total MIB] [--zc] [--rounds N]
 *
 * A fiber on a 1-worker runtime sends --total MiB in --size byte sends
 * (default 64 KiB, 1024 MiB) from one buffer; a plain thread reads with
 * recv(2) into 1 MiB and counts. Prints MiB/s per round and the median:
 *
 *   bulk-send: mode=<send|send_zc> size=<B> mib_per_sec=<f> zc_rung=<0|1>
 *
 * On loopback the kernel copies zero-copy pages anyway (the skb is
 * delivered locally), so this measures what the notification costs there;
 * the gain of SEND_ZC shows with a real NIC.
 */
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft.h>

static size_t size = 64 * 1024, total = 1024ull << 20;
static int zc;

struct job {
	int fd;
	unsigned char *buf;
	int64_t err;
};

static void *sender(void *arg)
{
	struct job *j = arg;

	for (size_t off = 0; off < total;) {
		size_t n = total - off < size ? total - off : size;
		int64_t r = zc ? weft_co_send_zc(j->fd, j->buf, n, 0, 0)
			       : weft_co_send(j->fd, j->buf, n, 0, 0);
		if (r <= 0) {
			j->err = r;
			break;
		}
		off += (size_t)r;
	}
	return NULL;
}

static void *reader(void *arg)
{
	int fd = *(int *)arg;
	size_t got = 0;
	unsigned char *b = malloc(1 << 20);
	ssize_t n;

	while (b && (n = recv(fd, b, 1 << 20, 0)) > 0)
		got += (size_t)n;
	free(b);
	return (void *)got;
}

static int pair(int *a, int *b)
{
	int l = weft_tcp_listen("127.0.0.1", 0, 4);
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (l < 0)
		return -1;
	sin.sin_port = htons((uint16_t)weft_tcp_local_port(l));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	*b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	return *b < 0 ? -1 : 0;
}

static int cmp(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "total", required_argument, NULL, 't' },
		{ "zc", no_argument, NULL, 'z' },
		{ "rounds", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c, rounds = 3;
	double mibs[64];

	while ((c = getopt_long(argc, argv, "s:t:zr:", opts, NULL)) != -1) {
		switch (c) {
		case 's': size = strtoull(optarg, NULL, 10); break;
		case 't': total = strtoull(optarg, NULL, 10) << 20; break;
		case 'z': zc = 1; break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [--size B] [--total MIB] "
				"[--zc] [--rounds N]\n", argv[0]);
			return 2;
		}
	}
	if (!size || !total || rounds < 1 || rounds > 64)
		return 2;

	weft_runtime_config cfg;
	weft_runtime *rt;
	weft_runtime_metrics m = { .size = sizeof(m) };

	weft_runtime_config_init(&cfg);
	cfg.workers = 1;
	if (weft_runtime_new(&cfg, &rt))
		return 1;
	struct job j = { .buf = malloc(size) };
	if (!j.buf)
		return 1;
	memset(j.buf, 0x5a, size);
	for (int r = 0; r < rounds; r++) {
		int a, b;
		pthread_t th;
		void *got;
		weft_join_future jf = { 0 };
		int st;

		if (pair(&a, &b) || pthread_create(&th, NULL, reader, &b))
			return 1;
		j.fd = a;
		j.err = 0;
		uint64_t t0 = weft_now_ns();
		if (weft_go(rt, sender, &j, NULL, &jf.join) ||
		    weft_block_on(rt, &weft_join_future_desc, &jf, &st) < 0)
			return 1;
		shutdown(a, SHUT_WR);
		pthread_join(th, &got);
		double secs = (double)(weft_now_ns() - t0) / 1e9;
		close(a);
		close(b);
		if (j.err || (size_t)got != total) {
			fprintf(stderr, "bulk-send: error %lld, got %zu\n",
				(long long)j.err, (size_t)got);
			return 1;
		}
		mibs[r] = (double)total / (1 << 20) / secs;
	}
	weft_runtime_metrics_get(rt, &m);
	weft_runtime_free(rt);
	free(j.buf);
	qsort(mibs, (size_t)rounds, sizeof(mibs[0]), cmp);
	printf("bulk-send: mode=%s size=%zu mib_per_sec=%.0f zc_rung=%d\n",
	       zc ? "send_zc" : "send", size, mibs[rounds / 2],
	       zc && (m.features & WEFT_FEAT_SEND_ZC) ? 1 : 0);
	return 0;
}
