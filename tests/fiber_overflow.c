/* SPDX-License-Identifier: MIT */
/*
 * Helper of tests/fiber-overflow.sh: a fiber named "deep-recursion" with
 * the default stack recurses until it runs off the bottom. weft must
 * report it on stderr and the process must die by SIGSEGV; exit 0 means
 * the recursion ended without a fault (a failure for the script).
 *
 *   fiber_overflow            run it
 *   fiber_overflow --sanitizer  print "asan" or "tsan" when built with
 *                               that sanitizer, else "none" (the script
 *                               then expects the sanitizer's report
 *                               instead of a bare SIGSEGV)
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <weft.h>
#include <weft/fiber.h>

static unsigned recurse(unsigned depth)
{
	volatile char frame[512];

	frame[0] = (char)depth;
	frame[sizeof(frame) - 1] = (char)depth;
	if (depth > (1u << 30))
		return frame[0];
	return recurse(depth + 1) + frame[sizeof(frame) - 1];
}

static void *deep(void *arg)
{
	(void)arg;
	return (void *)(unsigned long)recurse(0);
}

int main(int argc, char **argv)
{
	weft_runtime_config rc;
	weft_runtime *rt;
	weft_fiber_opts o;
	weft_join *j;
	weft_waker w = weft_waker_noop();
	weft_cx cx;
	int st = 0;
	void *out;

	if (argc > 1 && !strcmp(argv[1], "--sanitizer")) {
#if defined(__SANITIZE_ADDRESS__) || defined(WEFT_SANITIZE_ADDRESS)
		puts("asan");
#elif defined(__SANITIZE_THREAD__) || defined(WEFT_SANITIZE_THREAD)
		puts("tsan");
#else
		puts("none");
#endif
		return 0;
	}
	weft_runtime_config_init(&rc);
	rc.workers = 2;
	if (weft_runtime_new(&rc, &rt))
		return 2;
	weft_fiber_opts_init(&o);
	o.name = "deep-recursion";
	if (weft_go(rt, deep, NULL, &o, &j))
		return 2;
	weft_cx_init(&cx, &w);
	/* The process dies before the fiber could finish. */
	while (weft_join_poll(j, &cx, &st, &out) == WEFT_PENDING) {
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	weft_join_drop(j);
	weft_runtime_free(rt);
	return 0;
}
