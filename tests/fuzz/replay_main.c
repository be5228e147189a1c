/*
 * replay_main: runs a fuzz harness over saved inputs without libFuzzer, so that `make fuzz-replay` (and
 * `make test`) checks every corpus with the project's own compiler and flags.
 *
 *   build/fuzz-replay/<target> PATH...     each PATH a file, or a directory whose files are all run
 *
 * Files are run in name order, each once, through LLVMFuzzerTestOneInput (and LLVMFuzzerInitialize
 * first, if the harness has one). A failed check in the harness aborts, and a crash or a sanitizer
 * report ends the process: the exit status is non-zero and "replay: crashed on FILE" names the input
 * (FUZZ_REPLAY_VERBOSE=1 names every file before it runs). At the end one line: "<target>: N inputs
 * replayed in T s". Exit status 2 if a PATH cannot be read or holds no input at all: an empty corpus
 * would otherwise pass unnoticed.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* the sanitizers' hook, when one is linked in (the replay build with SANITIZER=address|undefined) */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static int verbose;
static const char *volatile current;       /* the input being run, for the crash message */

/* Name the input that crashed; async-signal-safe (write only). */
static void say_crashed(void)
{
    const char *p = current;
    if (p == NULL)
        return;
    current = NULL;
    (void)!write(2, "replay: crashed on ", 19);
    (void)!write(2, p, strlen(p));
    (void)!write(2, "\n", 1);
}

static void crash_handler(int sig)
{
    say_crashed();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the file into a block of exactly its size and run it. 0, or -1 if it cannot be read. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *data = malloc(cap);
    for (;;) {
        size_t r = fread(data + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        cap *= 2;
        data = realloc(data, cap);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(data);
        return -1;
    }
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, data, n);
    free(data);
    if (verbose)
        fprintf(stderr, "replay: running %s (%zu bytes)\n", path, n);
    current = path;
    LLVMFuzzerTestOneInput(exact, n);
    current = NULL;
    free(exact);
    return 0;
}

/* Run a file, or every regular file of a directory (not recursing). Returns the number run, -1 on error. */
static long replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path) < 0 ? -1 : 1;

    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (nnames == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof(*names));
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[nnames] = malloc(len);
        snprintf(names[nnames], len, "%s/%s", path, e->d_name);
        nnames++;
    }
    closedir(d);
    qsort(names, nnames, sizeof(*names), cmp_names);

    long count = 0;
    for (size_t i = 0; i < nnames; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i]) < 0)
                count = -1;
            else if (count >= 0)
                count++;
        }
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    const char *v = getenv("FUZZ_REPLAY_VERBOSE");
    struct timespec t0, t1;
    long total = 0;
    int status = 0;

    verbose = v != NULL && strcmp(v, "1") == 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
        return 2;
    }
    /* A sanitizer reports SEGV and friends itself (and then calls the death callback): keep its
     * handlers, take only SIGABRT (failed checks, assert). Without one, name the input on any crash. */
    signal(SIGABRT, crash_handler);
    if (__sanitizer_set_death_callback != NULL) {
        __sanitizer_set_death_callback(say_crashed);
    } else {
        signal(SIGSEGV, crash_handler);
        signal(SIGBUS, crash_handler);
        signal(SIGFPE, crash_handler);
        signal(SIGILL, crash_handler);
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 1; i < argc; i++) {
        long n = replay_path(argv[i]);
        if (n <= 0) {
            if (n == 0)
                fprintf(stderr, "replay: %s: no inputs\n", argv[i]);
            status = 2;
        } else {
            total += n;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%s: %ld inputs replayed in %.2f s\n", name, total,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return status;
}
