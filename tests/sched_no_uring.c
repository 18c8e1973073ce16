/* SPDX-License-Identifier: MIT */
/*
 * weft_runtime_new where io_uring is unavailable, and the ring-mode
 * fallback. Criterion runs each test in its own process, so a seccomp filter
 * installed by one test (as a container runtime would) affects only it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <weft.h>

/* Make io_uring_setup fail with @err in this process. */
static void forbid_io_uring(int err)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0,
		     "seccomp: %s", strerror(errno));
}

static char logged[512];
static int logged_level = -1;

static void capture_log(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level == WEFT_LOG_ERROR) {
		logged_level = level;
		snprintf(logged, sizeof(logged), "%s", msg);
	}
}

static void expect_runtime_new_fails(int err)
{
	weft_runtime_config cfg;
	weft_runtime *rt = (weft_runtime *)0x1;

	forbid_io_uring(err);
	weft_runtime_config_init(&cfg);
	cfg.workers = 2;
	cfg.log = capture_log;
	cr_assert_eq(weft_runtime_new(&cfg, &rt), -err);
	cr_expect_eq(rt, (weft_runtime *)0x1, "out must be untouched");
	cr_expect_eq(logged_level, WEFT_LOG_ERROR);
	cr_expect(strstr(logged, weft_strerror(-err)) != NULL,
		  "log says why: '%s'", logged);
	cr_expect(strstr(weft_strerror(-err), "io_uring") != NULL,
		  "weft_strerror names io_uring: '%s'", weft_strerror(-err));
}

Test(no_uring, eperm_under_seccomp, .timeout = 10)
{
	expect_runtime_new_fails(EPERM);
}

Test(no_uring, enosys_without_io_uring, .timeout = 10)
{
	expect_runtime_new_fails(ENOSYS);
}

struct nap {
	int step;
	weft_io io;
};

static weft_poll nap_poll(void *self, weft_cx *cx, void *out)
{
	struct nap *n = self;
	int64_t res;

	if (n->step == 0) {
		weft_io_prep_sleep(&n->io, 1000000);
		n->step = 1;
	}
	if (weft_io_poll(&n->io, cx, &res) == WEFT_PENDING)
		return WEFT_PENDING;
	*(int64_t *)out = res;
	return WEFT_READY;
}

static void nap_drop(void *self)
{
	weft_io_drop(&((struct nap *)self)->io);
}

static const weft_future_desc nap_desc = {
	.poll = nap_poll,
	.drop = nap_drop,
	.size = sizeof(struct nap),
	.output_size = sizeof(int64_t),
};

Test(no_uring, coop_taskrun_fallback_runs_ops, .timeout = 10)
{
	weft_runtime_config cfg;
	weft_runtime_metrics m = { .size = sizeof(m) };
	weft_runtime *rt;
	int64_t res = -1;

	weft_runtime_config_init(&cfg);
	cfg.workers = 2;
	cfg.flags = WEFT_RT_NO_DEFER_TASKRUN;
	cr_assert_eq(weft_runtime_new(&cfg, &rt), 0);
	cr_assert_eq(weft_runtime_metrics_get(rt, &m), 0);
	cr_expect_eq(m.ring_mode, WEFT_RING_COOP_TASKRUN);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(weft_block_on(rt, &nap_desc, NULL, &res), 0);
		cr_assert_eq(res, 0);
	}
	weft_runtime_free(rt);
}
