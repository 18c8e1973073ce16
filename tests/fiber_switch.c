/* SPDX-License-Identifier: MIT */
/*
 * The context switch alone (src/fiber/switch_<arch>.S), without the
 * runtime: a main context and a fiber ping-pong 100,000 times, each side
 * keeping floating-point state and its loop counters in callee-saved
 * registers across every switch. The fiber's stack is laid out the way
 * fiber.c's prepare() does it. Exit 0 when both sides computed what the
 * same loops compute without switching. tests/fiber-switch-aarch64.sh
 * runs it for AArch64 under qemu where a cross compiler is installed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *weft__fiber_jump(void **save_sp, void *load_sp, void *arg);
void weft__fiber_trampoline(void);

#define SWITCHES 100000L

static void *main_sp, *fiber_sp;
static volatile double fiber_acc;

static double fiber_step(double d, long i)
{
	return d * 1.0000001 + (double)i;
}

static double main_step(double d)
{
	return d * 0.9999999 + 1;
}

void weft__fiber_main(void *arg);
void weft__fiber_main(void *arg)
{
	long n = (long)arg;
	double d = 1.5;

	for (long i = 0; i < n; i++) {
		d = fiber_step(d, i);
		weft__fiber_jump(&fiber_sp, main_sp, (void *)i);
	}
	fiber_acc = d;
	weft__fiber_jump(&fiber_sp, main_sp, (void *)-1L);
	abort();
}

int main(void)
{
	size_t size = 64 * 1024;
	char *stack = aligned_alloc(16, size);
	uintptr_t top;
	uint64_t *sp;
	double mine = 2.25, want_fiber = 1.5, want_mine = 2.25;
	long expect = 0;
	void *r;

	if (!stack)
		return 1;
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
	puts("fiber_switch: no context switch for this architecture");
	return 77;
#endif
	fiber_sp = sp;
	r = weft__fiber_jump(&main_sp, fiber_sp, (void *)SWITCHES);
	while ((long)r != -1) {
		if ((long)r != expect++) {
			printf("fiber_switch: got %ld, want %ld\n", (long)r,
			       expect - 1);
			return 1;
		}
		mine = main_step(mine);
		r = weft__fiber_jump(&main_sp, fiber_sp, NULL);
	}
	for (long i = 0; i < SWITCHES; i++) {
		want_fiber = fiber_step(want_fiber, i);
		want_mine = main_step(want_mine);
	}
	printf("fiber_switch: %ld round trips, fiber %.3f (want %.3f), "
	       "main %.3f (want %.3f)\n", expect, fiber_acc, want_fiber,
	       mine, want_mine);
	free(stack);
	return expect == SWITCHES && fiber_acc == want_fiber &&
			       mine == want_mine ? 0 : 1;
}
