/*
 * Allocation that never returns NULL.
 *
 * cachetoryd bounds its memory by policy (maxmemory, query and output limits), not by checking every
 * malloc: when the C library itself cannot give memory the process is already beyond what it was
 * configured for, so, like redis's zmalloc, we log and abort rather than limp on.
 */
#ifndef CACHETORYD_UTIL_MEM_H
#define CACHETORYD_UTIL_MEM_H

#include <stddef.h>

void *mem_alloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *ptr, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
void mem_free(void *ptr);
/* Out of memory (also for a library's allocation that failed): say so and abort. */
void mem_oom(size_t size) __attribute__((noreturn));

#endif
