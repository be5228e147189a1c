/*
 * glob: redis's glob patterns (stringmatchlen), the one matcher of the program: KEYS and SCAN MATCH
 * (case-sensitive, on keys) and CONFIG GET (nocase, on option names).
 *
 * Syntax: '*' any run of bytes, '?' one byte, [abc] [^abc] [a-z] one byte of (or not of) a set, \x the
 * byte x. Pattern and string are bytes with a length (NUL is an ordinary byte); nothing is allocated and
 * the stack does not grow with the pattern. The answers are redis's, with three documented exceptions
 * (see glob.c): a pattern of only stars matches the empty string, bytes >= 0x80 in a range compare as
 * unsigned, and with nocase a range's ends are lowered before reversed ends are swapped.
 */
#ifndef CACHETORYD_UTIL_GLOB_H
#define CACHETORYD_UTIL_GLOB_H

#include <stddef.h>

/* 1 if string[0..slen) matches pattern[0..plen), 0 if not. nocase: ASCII letters compare without case,
 * except an escaped member of a set ("[\\S]"), which redis compares exactly. O(plen * slen) at worst. */
int glob_match(const char *pattern, size_t plen, const char *string, size_t slen, int nocase);

#endif
