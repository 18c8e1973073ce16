/* SPDX-License-Identifier: MIT */
/*
 * Which io_uring features a ring has: the opcodes the kernel knows
 * (io_uring_get_probe_ring) and what no probe bit says (multishot flags,
 * provided buffer rings). The table of features, kernel versions, probe
 * methods and fallback rungs is in docs/io.md, "Kernel features and
 * fallbacks".
 */
#ifndef WEFT_IO_PROBE_H
#define WEFT_IO_PROBE_H

#include <liburing.h>

/*
 * The WEFT__FEAT_* bits (io/ring.h) of @ring, minus those @rt_flags
 * (WEFT_RT_NO_MULTISHOT, WEFT_RT_NO_BUF_RING, WEFT_RT_NO_SEND_ZC) turn
 * off. Owner thread of @ring (it registers and unregisters a buffer ring:
 * SINGLE_ISSUER). A probe that fails leaves its bits clear, so a kernel
 * or sandbox that refuses the probe gets the fallback rungs.
 */
unsigned weft__probe_features(struct io_uring *ring, unsigned rt_flags);

#endif /* WEFT_IO_PROBE_H */
