/*
 * check: the failure path of CHECK (see check.h).
 */
#include "util/check.h"

#include <stdio.h>
#include <stdlib.h>

void check_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "cachetoryd: %s:%d: invariant failed: %s\n", file, line, what);
    abort();
}
