/* SPDX-License-Identifier: MIT */
/*
 * Feature probing, once per ring at setup (a few syscalls per worker).
 *
 * Opcodes come from IORING_REGISTER_PROBE. Multishot accept and multishot
 * recv are flags of ACCEPT and RECV, which the probe cannot show; an old
 * kernel rejects them only when an op runs. Trying one at setup would
 * need a listening socket and a round trip per ring, so an opcode of the
 * same kernel release stands in for each:
 *   IORING_ACCEPT_MULTISHOT  5.19, like IORING_OP_SOCKET;
 *   IORING_RECV_MULTISHOT    6.0, like IORING_OP_SEND_ZC.
 * Neither flag was backported without its release's opcodes in mainline
 * or stable kernels. Provided buffer rings have no opcode either; they are
 * tried: register a one-entry ring and unregister it (a kernel without
 * them fails with -EINVAL).
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weft/runtime.h>

#include "io/probe.h"
#include "io/ring.h"

/* The probe's buffer group; free again once the probe returns. */
#define PROBE_BGID 0xfffe

static bool buf_ring_works(struct io_uring *ring)
{
	long page = sysconf(_SC_PAGESIZE);
	struct io_uring_buf_reg reg = { 0 };
	bool ok;

	if (page <= 0)
		return false;
	/* The kernel pins the ring's memory, which must be page-aligned. */
	void *mem = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	reg.ring_addr = (uint64_t)(uintptr_t)mem;
	reg.ring_entries = 1;
	reg.bgid = PROBE_BGID;
	ok = io_uring_register_buf_ring(ring, &reg, 0) == 0;
	if (ok)
		io_uring_unregister_buf_ring(ring, PROBE_BGID);
	munmap(mem, (size_t)page);
	return ok;
}

unsigned weft__probe_features(struct io_uring *ring, unsigned rt_flags)
{
	static const struct {
		int op;
		unsigned feat;
	} ops[] = {
		{ IORING_OP_SOCKET,
		  WEFT__FEAT_SOCKET | WEFT__FEAT_MULTISHOT_ACCEPT },
		{ IORING_OP_SEND_ZC,
		  WEFT__FEAT_SEND_ZC | WEFT__FEAT_MULTISHOT_RECV },
		{ IORING_OP_SHUTDOWN, WEFT__FEAT_SHUTDOWN },
		{ IORING_OP_STATX, WEFT__FEAT_STATX },
		{ IORING_OP_OPENAT, WEFT__FEAT_OPENAT },
		{ IORING_OP_MSG_RING, WEFT__FEAT_MSG_RING },
	};
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	unsigned feat = 0;

	if (p) {
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
			if (io_uring_opcode_supported(p, ops[i].op))
				feat |= ops[i].feat;
		io_uring_free_probe(p);
	}
	if (!(rt_flags & WEFT_RT_NO_BUF_RING) && buf_ring_works(ring))
		feat |= WEFT__FEAT_BUF_RING;
	if (rt_flags & WEFT_RT_NO_MULTISHOT)
		feat &= ~(unsigned)(WEFT__FEAT_MULTISHOT_ACCEPT |
				    WEFT__FEAT_MULTISHOT_RECV);
	if (rt_flags & WEFT_RT_NO_SEND_ZC)
		feat &= ~(unsigned)WEFT__FEAT_SEND_ZC;
	return feat;
}
