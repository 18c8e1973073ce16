/* SPDX-License-Identifier: MIT */
/* What weft_scope needs of weft_joinset besides its public API. */
#ifndef WEFT_TASK_JOINSET_H
#define WEFT_TASK_JOINSET_H

#include <stdbool.h>

#include <weft/joinset.h>

/* True if every task in @set has finished (completed or cancelled), taken
 * by a join or not. O(len), under the set's lock. */
bool weft__joinset_all_finished(weft_joinset *set);

/* Entries on the notified list now (tests: a completion has been seen). */
size_t weft__joinset_notified(weft_joinset *set);

#endif /* WEFT_TASK_JOINSET_H */
