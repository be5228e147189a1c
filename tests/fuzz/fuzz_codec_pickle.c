/*
 * fuzz_codec_pickle: the pickle codec (src/codec/pickle.c), a serializer: its decoder on any bytes, and encode then
 * decode of any bytes as a client's value. The checks are fuzz_codec.h's.
 */
#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    static void *ctx;
    static int ready;

    if (!ready) {
        codec_params_t p;
        memset(&p, 0, sizeof(p));
        p.compression_level = -1;
        p.pickle_protocol = 5;
        p.max_decoded = FUZZ_MAX_DECODED;
        ctx = codec_pickle.ctx_create ? codec_pickle.ctx_create(&p) : NULL;
        ready = 1;
    }
    fuzz_codec_run(&codec_pickle, ctx, 0, data, n);
    return 0;
}
