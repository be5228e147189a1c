/*
 * codec/null: null:// and noop://, the identity. It adds no layer to a chain (no functions): a chain of
 * only these stores values as they are.
 */
#include "codec/codec.h"

const codec_t codec_null = {
    .name = "null",
    .schemes = (const char *const[]){ "null", "noop", NULL },
};
