/* SPDX-License-Identifier: MIT */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A static description of a weft error: @err is a negative errno as weft
 * calls return it (a positive value is treated the same). Errors with a
 * weft-specific cause (e.g. -EPERM from weft_runtime_new: io_uring disabled)
 * say so. Never NULL; thread-safe.
 */
WEFT_API const char *weft_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_ERROR_H */
