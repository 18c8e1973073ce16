/* SPDX-License-Identifier: MIT */
/* The one object of the waiter list (waitlist.h): the sentinel tag. */
#include "sync/waitlist.h"

const char weft__waitlist_sentinel_tag = 0;
