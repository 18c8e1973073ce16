/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the benchmarks: a monotonic clock, the median of a set
 * of samples, and the process's memory footprint. Header-only; everything
 * is static inline so each program takes only what it uses.
 */
#ifndef WEFT_BENCH_UTIL_H
#define WEFT_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * Median of @v[0..@n): sorts @v in place (so v[0] and v[n-1] are the min
 * and max afterwards). An even count gives the mean of the middle two.
 * Returns 0 for n == 0.
 */
static inline double bench_median(double *v, size_t n)
{
	if (n == 0)
		return 0.0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	if (n & 1)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Peak resident set size of the process so far, in KiB (ru_maxrss). */
static inline long bench_peak_rss_kib(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss;
}

/*
 * Current resident set size in bytes, from /proc/self/statm (its second
 * field, in pages). Returns -1 if it cannot be read.
 */
static inline long bench_rss_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	if (n != 2)
		return -1;
	return (long)resident * sysconf(_SC_PAGESIZE);
}

#endif /* WEFT_BENCH_UTIL_H */
