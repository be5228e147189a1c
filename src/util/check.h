/*
 * check: invariant checks that stay on in release builds. A broken invariant (a corrupt hash table, an
 * accounting figure gone negative) must stop the process, not serve wrong answers: CHECK(cond) prints
 * "cachetoryd: FILE:LINE: invariant failed: COND" on stderr and aborts (a core dump, if enabled, shows
 * the state). Not for input errors: those are answered, never aborted on.
 */
#ifndef CACHETORYD_UTIL_CHECK_H
#define CACHETORYD_UTIL_CHECK_H

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond))                                                                       \
            check_fail(__FILE__, __LINE__, #cond);                                         \
    } while (0)

/* What CHECK calls when cond is false: report and abort(). */
void check_fail(const char *file, int line, const char *what) __attribute__((noreturn, cold));

#endif
