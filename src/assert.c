/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

/*
 * The one place libweft writes to stderr: a broken internal invariant,
 * never user input. Printing then aborting leaves a core and a message.
 */
void weft__assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "weft: internal error: %s (%s:%d)\n", expr, file, line);
	abort();
}
