/*
 * hex: the value of one hexadecimal digit, for every parser that reads one (JSON's \uXXXX, a URL's %XX,
 * an inline command's "\xHH"). Header only: no state, no allocation.
 */
#ifndef CACHETORYD_UTIL_HEX_H
#define CACHETORYD_UTIL_HEX_H

/* 0..15 for '0'-'9', 'a'-'f' and 'A'-'F'; -1 for anything else, including negative values (a plain
 * char above 0x7f), so a caller may pass a char as it is. */
static inline int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
