/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <weft/error.h>

WEFT_API const char *weft_strerror(int err)
{
	/* -INT_MIN overflows; no errno is that large anyway. */
	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return "success";
	case EPERM:
		return "operation not permitted (from weft_runtime_new: io_uring "
		       "is disabled by seccomp or kernel.io_uring_disabled; "
		       "from an op: polled off a weft worker thread)";
	case ENOSYS:
		return "function not implemented (the kernel has no io_uring)";
	case ESHUTDOWN:
		return "the runtime is shut down";
	case ECANCELED:
		return "operation cancelled (task aborted or runtime shut down)";
	case EDEADLK:
		return "would deadlock (blocking call made on a worker thread)";
	case EALREADY:
		return "already completed (future polled after it was ready)";
	default: {
		/* strerrordesc_np (glibc 2.32+) returns static strings, unlike
		 * strerror's per-thread buffer for unknown codes. */
		const char *s = strerrordesc_np(err);
		return s ? s : "unknown error";
	}
	}
}
