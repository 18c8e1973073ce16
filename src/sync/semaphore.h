/* SPDX-License-Identifier: MIT */
/* What the primitives built on weft_semaphore (the mutex) need besides its
 * public API. */
#ifndef WEFT_SYNC_SEMAPHORE_H
#define WEFT_SYNC_SEMAPHORE_H

#include <weft/sync.h>

/*
 * weft_semaphore_release(@s, @n), unless that would leave more than @max
 * permits free (they were never taken): then -EPERM and nothing changes.
 * For a semaphore of @max permits this tells a release by a holder from
 * one by nobody (checked and done under the semaphore's lock).
 */
int weft__semaphore_release_held(weft_semaphore *s, size_t n, size_t max);

#endif /* WEFT_SYNC_SEMAPHORE_H */
