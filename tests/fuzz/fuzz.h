/*
 * fuzz: what every harness in tests/fuzz/ shares.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput() and is linked two ways (see tests/fuzz/README.md):
 * with libFuzzer by clang (`make fuzz`, build/fuzz/<target>) and with replay_main.c by the project's own
 * compiler (`make fuzz-replay`, which runs every corpus file once). So harnesses are plain C11 that gcc
 * compiles with the project's warnings, and they check their invariants with FUZZ_CHECK, which stays on
 * whatever NDEBUG says and aborts: libFuzzer saves the input, replay exits non-zero.
 */
#ifndef CACHETORYD_TESTS_FUZZ_H
#define CACHETORYD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: on failure, say which (file:line, the condition, details) and
 * abort, so that the input is kept as a crash. */
#define FUZZ_CHECK(cond, ...)                                                                   \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

/* Mark bytes as not to be touched (past the length a parser was given, though in the same block), so
 * that AddressSanitizer reports a read there; nothing without ASan (the gcc replay build). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_HAVE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_HAVE_ASAN 1
#endif
#ifdef FUZZ_HAVE_ASAN
#include <sanitizer/asan_interface.h>
#define FUZZ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define FUZZ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define FUZZ_POISON(p, n) ((void)(p), (void)(n))
#define FUZZ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* FNV-1a of the input: a data-derived choice (split point, mode) that is the same on every run of the
 * same input, so that a crash replays. */
static inline uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < size; i++) {
        h ^= data[i];
        h *= 1099511628211ULL;
    }
    return h;
}

#endif
