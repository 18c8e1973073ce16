/* SPDX-License-Identifier: MIT */
/*
 * switch-bench: the cost of weft's fiber context switch alone
 * (src/fiber/switch_<arch>.S), without the scheduler: a main context and a
 * fiber jump back and forth 10,000,000 times. A "switch" is one
 * weft__fiber_jump (save one context, restore the other); a fiber yield
 * through the scheduler (weft-bench fiber_switch) costs two of them plus
 * a task wake, a queue round trip and a poll.
 *
 * Output: the median of --reps runs (default 5), and one line for scripts:
 *   bench: fiber_jump ns_per_switch=F
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

void *weft__fiber_jump(void **save_sp, void *load_sp, void *arg);
void weft__fiber_trampoline(void);
void weft__fiber_main(void *arg);

#define JUMPS 10000000L /* round trips per run */

static void *main_sp, *fiber_sp;

void weft__fiber_main(void *arg)
{
	(void)arg;
	for (;;)
		weft__fiber_jump(&fiber_sp, main_sp, NULL);
}

static void *new_fiber(void)
{
	size_t size = 64 * 1024;
	char *stack = aligned_alloc(16, size);
	uintptr_t top;
	uint64_t *sp;

	if (!stack) {
		perror("switch-bench");
		exit(1);
	}
	top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
	sp = (uint64_t *)(top - 80);
	memset(sp, 0, 80);
	sp[0] = 0x1F80u | ((uint64_t)0x037F << 32);
	sp[7] = (uint64_t)(uintptr_t)weft__fiber_trampoline;
#elif defined(__aarch64__)
	sp = (uint64_t *)(top - 176);
	memset(sp, 0, 176);
	sp[11] = (uint64_t)(uintptr_t)weft__fiber_trampoline;
#else
#error "no context switch for this architecture"
#endif
	return sp;
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 5;
	double ns[64];

	if (reps < 1 || reps > 64)
		reps = 5;
	fiber_sp = new_fiber();
	for (int r = 0; r < reps; r++) {
		uint64_t t0 = bench_now_ns();

		for (long i = 0; i < JUMPS; i++)
			weft__fiber_jump(&main_sp, fiber_sp, NULL);
		ns[r] = (double)(bench_now_ns() - t0) / (2.0 * JUMPS);
	}
	printf("fiber_jump: %.2f ns per switch (median of %d runs of %ld "
	       "round trips)\n", bench_median(ns, (unsigned)reps), reps,
	       JUMPS);
	printf("bench: fiber_jump ns_per_switch=%.2f\n",
	       bench_median(ns, (unsigned)reps));
	return 0;
}
