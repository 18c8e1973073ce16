/* SPDX-License-Identifier: MIT */
/*
 * Kernel feature probing and the fallback rungs: weft_runtime_metrics'
 * features agree with an independent probe of this kernel, the
 * WEFT_RT_NO_* flags clear exactly their bits, and the new counters start
 * at zero. Also the config and metrics structs' growth (callers built
 * against the shorter, first-release structs keep working) and the
 * cq_entries checks.
 */
#include <stddef.h>
#include <sys/mman.h>

#include "io_helpers.h"

#define ALL_FEATS                                                          \
	(WEFT_FEAT_MULTISHOT_ACCEPT | WEFT_FEAT_MULTISHOT_RECV |           \
	 WEFT_FEAT_BUF_RING | WEFT_FEAT_SEND_ZC | WEFT_FEAT_SOCKET |       \
	 WEFT_FEAT_SHUTDOWN | WEFT_FEAT_STATX | WEFT_FEAT_OPENAT |         \
	 WEFT_FEAT_MSG_RING)

static int rt_new(unsigned workers, unsigned flags, unsigned ring_entries,
		  unsigned cq_entries, weft_runtime **rt)
{
	weft_runtime_config c;
	weft_runtime_config_init(&c);
	c.workers = workers;
	c.flags = flags;
	c.ring_entries = ring_entries;
	c.cq_entries = cq_entries;
	c.log = wt_log_sink;
	return weft_runtime_new(&c, rt);
}

static weft_runtime *rt_make(unsigned workers, unsigned flags)
{
	weft_runtime *rt = NULL;
	int err = rt_new(workers, flags, 0, 0, &rt);
	cr_assert_eq(err, 0, "weft_runtime_new: %s", weft_strerror(err));
	return rt;
}

/* What this kernel has, found the way a user of liburing would. */
static uint64_t kernel_features(void)
{
	struct io_uring ring;
	uint64_t f = 0;
	cr_assert_eq(io_uring_queue_init(4, &ring, 0), 0);
	struct io_uring_probe *p = io_uring_get_probe_ring(&ring);
	cr_assert_not_null(p);
	if (io_uring_opcode_supported(p, IORING_OP_SOCKET))
		f |= WEFT_FEAT_SOCKET | WEFT_FEAT_MULTISHOT_ACCEPT;
	if (io_uring_opcode_supported(p, IORING_OP_SEND_ZC))
		f |= WEFT_FEAT_SEND_ZC | WEFT_FEAT_MULTISHOT_RECV;
	if (io_uring_opcode_supported(p, IORING_OP_SHUTDOWN))
		f |= WEFT_FEAT_SHUTDOWN;
	if (io_uring_opcode_supported(p, IORING_OP_STATX))
		f |= WEFT_FEAT_STATX;
	if (io_uring_opcode_supported(p, IORING_OP_OPENAT))
		f |= WEFT_FEAT_OPENAT;
	if (io_uring_opcode_supported(p, IORING_OP_MSG_RING))
		f |= WEFT_FEAT_MSG_RING;
	io_uring_free_probe(p);

	void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(mem, MAP_FAILED);
	struct io_uring_buf_reg reg = { .ring_addr = (uintptr_t)mem,
					.ring_entries = 1, .bgid = 3 };
	if (io_uring_register_buf_ring(&ring, &reg, 0) == 0)
		f |= WEFT_FEAT_BUF_RING;
	io_uring_queue_exit(&ring);
	munmap(mem, 4096);
	return f;
}

WT_RT_TEST(io_probe, features_match_the_kernel)
{
	weft_runtime *rt = wt_rt_new(cfg);
	weft_runtime_metrics m = wt_metrics(rt);
	uint64_t want = kernel_features();
	cr_expect_eq(m.features, want, "features %#llx, kernel %#llx",
		     (unsigned long long)m.features, (unsigned long long)want);
	cr_expect_eq(m.features & ~(uint64_t)ALL_FEATS, 0);
	cr_expect_eq(m.multishot_rearms, 0);
	cr_expect_eq(m.bufring_enobufs, 0);
	cr_expect_eq(m.accept_backoffs, 0);
	cr_log_info("features %#llx", (unsigned long long)m.features);
	wt_rt_free(rt);
}

WT_TEST(io_probe, no_flags_clear_their_bits)
{
	static const struct {
		unsigned flag;
		uint64_t bits;
	} cases[] = {
		{ WEFT_RT_NO_MULTISHOT,
		  WEFT_FEAT_MULTISHOT_ACCEPT | WEFT_FEAT_MULTISHOT_RECV },
		{ WEFT_RT_NO_BUF_RING, WEFT_FEAT_BUF_RING },
		{ WEFT_RT_NO_SEND_ZC, WEFT_FEAT_SEND_ZC },
		{ WEFT_RT_NO_MULTISHOT | WEFT_RT_NO_BUF_RING |
			  WEFT_RT_NO_SEND_ZC,
		  WEFT_FEAT_MULTISHOT_ACCEPT | WEFT_FEAT_MULTISHOT_RECV |
			  WEFT_FEAT_BUF_RING | WEFT_FEAT_SEND_ZC },
	};
	uint64_t have = kernel_features();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* Two workers: the bits are an AND over the rings. */
		weft_runtime *rt = rt_make(2, cases[i].flag);
		weft_runtime_metrics m = wt_metrics(rt);
		cr_expect_eq(m.features, have & ~cases[i].bits,
			     "flags %#x: features %#llx", cases[i].flag,
			     (unsigned long long)m.features);
		wt_rt_free(rt);
	}
}

/* --- struct growth ----------------------------------------------------- */

WT_TEST(io_probe, metrics_of_the_first_release_size)
{
	weft_runtime *rt = rt_make(1, 0);
	size_t v1 = offsetof(weft_runtime_metrics, features);
	union {
		weft_runtime_metrics m;
		unsigned char b[sizeof(weft_runtime_metrics) + 16];
	} u;
	memset(&u, 0xa5, sizeof(u));
	u.m.size = v1;
	cr_expect_eq(weft_runtime_metrics_get(rt, &u.m), 0);
	cr_expect_eq(u.m.size, v1);
	cr_expect_eq(u.m.workers, 1);
	for (size_t i = v1; i < sizeof(u.b); i++)
		cr_expect_eq(u.b[i], 0xa5, "byte %zu past the caller's struct "
			     "was written", i);
	u.m.size = v1 - 1;
	cr_expect_eq(weft_runtime_metrics_get(rt, &u.m), -EINVAL);
	/* A caller from a later release: its extra bytes are left alone. */
	memset(&u, 0xa5, sizeof(u));
	u.m.size = sizeof(u.b);
	cr_expect_eq(weft_runtime_metrics_get(rt, &u.m), 0);
	cr_expect_eq(u.m.size, sizeof(u.b));
	cr_expect_eq(u.m.accept_backoffs, 0);
	for (size_t i = sizeof(weft_runtime_metrics); i < sizeof(u.b); i++)
		cr_expect_eq(u.b[i], 0xa5);
	wt_rt_free(rt);
}

WT_TEST(io_probe, config_of_the_first_release_size)
{
	weft_runtime_config c;
	weft_runtime *rt = NULL;
	weft_runtime_config_init(&c);
	c.workers = 1;
	c.ring_entries = 64;
	/* Beyond an old caller's struct: garbage it never meant. */
	c.cq_entries = 3;
	c.size = offsetof(weft_runtime_config, cq_entries);
	cr_expect_eq(weft_runtime_new(&c, &rt), 0,
		     "an old-size config was refused");
	if (rt)
		wt_rt_free(rt);
	rt = NULL;
	c.size = offsetof(weft_runtime_config, blocking_keepalive_ms);
	cr_expect_eq(weft_runtime_new(&c, &rt), -EINVAL);
	cr_expect_null(rt);
	/* The full size reads cq_entries: 3 is below 64. */
	c.size = sizeof(c);
	cr_expect_eq(weft_runtime_new(&c, &rt), -EINVAL);
	cr_expect_null(rt);
}

/* --- cq_entries -------------------------------------------------------- */

WT_TEST(io_probe, cq_entries_checked_after_rounding)
{
	static const struct {
		unsigned sq, cq;
		int want;
	} cases[] = {
		{ 8, 8, 0 },         { 8, 4, -EINVAL },   { 8, 5, 0 },
		{ 16, 9, 0 },        { 17, 16, -EINVAL }, { 17, 17, 0 },
		{ 0, 128, -EINVAL }, { 0, 256, 0 },       { 4, 65536, 0 },
		{ 4, 65537, -EINVAL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		weft_runtime *rt = NULL;
		int err = rt_new(1, 0, cases[i].sq, cases[i].cq, &rt);
		cr_expect_eq(err, cases[i].want, "sq %u cq %u: %s",
			     cases[i].sq, cases[i].cq, weft_strerror(err));
		if (rt)
			wt_rt_free(rt);
	}
}

/* The default CQ (16 x ring_entries) of the largest ring is above the
 * kernel's CQ maximum: it is clamped, not refused. */
WT_TEST(io_probe, largest_ring_default_cq)
{
	weft_runtime *rt = NULL;
	int err = rt_new(1, 0, 32768, 0, &rt);
	cr_expect_eq(err, 0, "ring_entries 32768: %s", weft_strerror(err));
	if (rt)
		wt_rt_free(rt);
}
