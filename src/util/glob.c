/*
 * glob: redis's stringmatchlen without recursion (see glob.h for the contract).
 */
#include "util/glob.h"

#include <ctype.h>
#include <stdint.h>

static inline unsigned char glob_fold(unsigned char c, int nocase)
{
    return nocase ? (unsigned char)tolower(c) : c;
}

/*
 * Does the single-character token of pattern p at index i ('?', a [class], \x or a literal) match c?
 * *next receives the index after the token. Parsing is redis's stringmatchlen, bounds-checked (redis
 * reads the terminating NUL): in a class, \x is x (compared case-sensitively, as redis does), a-z is a
 * range (reversed ends are swapped; "[a-]" is the range a..']', as in redis), ^ first negates, and a
 * class left open runs to the end of the pattern. A lone trailing backslash is a literal backslash.
 */
static int glob_token(const unsigned char *p, size_t plen, size_t i, size_t *next, unsigned char c, int nocase)
{
    switch (p[i]) {
    case '?':
        *next = i + 1;
        return 1;
    case '[': {
        int neg = 0, match = 0;
        i++;
        if (i < plen && p[i] == '^') {
            neg = 1;
            i++;
        }
        while (i < plen) {
            if (p[i] == '\\' && plen - i >= 2) {
                i++;
                if (p[i] == c)
                    match = 1;
            } else if (p[i] == ']') {
                break;
            } else if (plen - i >= 3 && p[i + 1] == '-') {
                unsigned char lo = glob_fold(p[i], nocase), hi = glob_fold(p[i + 2], nocase);
                unsigned char x = glob_fold(c, nocase);
                if (lo > hi) {
                    unsigned char t = lo;
                    lo = hi;
                    hi = t;
                }
                if (x >= lo && x <= hi)
                    match = 1;
                i += 2;
            } else if (glob_fold(p[i], nocase) == glob_fold(c, nocase)) {
                match = 1;
            }
            i++;
        }
        *next = i < plen ? i + 1 : plen;
        return neg ? !match : match;
    }
    case '\\':
        if (plen - i >= 2)
            i++;
        /* fall through */
    default:
        *next = i + 1;
        return glob_fold(p[i], nocase) == glob_fold(c, nocase);
    }
}

/*
 * Every token but '*' matches exactly one byte, so on a mismatch it is enough to go back to the most
 * recent '*' and let it swallow one more byte (an earlier '*' never needs to be retried: anything it
 * could match longer, the later one can absorb). That is redis 7's skipLongerMatches argument, and it
 * bounds the work by plen * slen with constant stack, so neither "a*a*a*...b" (exponential in naive
 * backtracking) nor thousands of stars (stack depth; redis caps nesting at 1000) can hurt, even with a
 * pattern from a client. Same answers as redis, except that bytes >= 0x80 in ranges compare as
 * unsigned (redis compares signed chars on x86), with nocase a range's ends are lowered before being
 * swapped (redis swaps first: "[P-l]" is empty there), and a pattern of only stars matches the empty
 * string (redis answers no, but its KEYS * and SCAN special-case "*" so the empty key is still listed).
 */
int glob_match(const char *pattern, size_t plen, const char *string, size_t slen, int nocase)
{
    const unsigned char *p = (const unsigned char *)pattern, *s = (const unsigned char *)string;
    size_t pi = 0, si = 0;
    size_t star_pi = SIZE_MAX, star_si = 0;     /* token after the last '*', and where it was tried */

    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*')
                pi++;
            if (pi == plen)
                return 1;
            star_pi = pi;
            star_si = si;
            continue;
        }
        size_t next;
        if (pi < plen && glob_token(p, plen, pi, &next, s[si], nocase)) {
            pi = next;
            si++;
            continue;
        }
        if (star_pi == SIZE_MAX)
            return 0;
        pi = star_pi;
        si = ++star_si;
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}
