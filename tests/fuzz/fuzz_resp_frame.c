/*
 * fuzz_resp_frame: the reply framer (src/resp/frame.c).
 *
 * The input is a stream of replies as an upstream would send them (any bytes). The first byte chooses
 * small limits (blob and count maxima) or large ones; the rest is framed twice:
 *
 *   whole    frame after frame over the whole input (each frame scanned with everything after its start);
 *   pieces   the same, each frame's bytes handed over in growing prefixes (one byte at a time for short
 *            inputs, data-derived chunks for longer ones) on one framer.
 *
 * Both must find the same frames (the same lengths) and end the same way (AGAIN or ERROR with the same
 * text). Invariants: DONE gives pos in 1..len; AGAIN gives pos <= len and the same answer when asked
 * again; a proper prefix of a frame never completes it; ERROR sticks and has a message.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "resp/frame.h"

typedef struct outcome {
    size_t lens[256];
    size_t n;
    int rc;                     /* the final AGAIN or ERROR */
    char err[96];
} outcome_t;

static void frame_whole(const char *buf, size_t len, long long bmax, long long cmax, outcome_t *o)
{
    resp_frame_t f;
    size_t at = 0;

    resp_frame_init(&f, bmax, cmax);
    memset(o, 0, sizeof(*o));
    for (;;) {
        int rc = resp_frame_scan(&f, buf + at, len - at);
        if (rc == RESP_FRAME_DONE) {
            FUZZ_CHECK(f.pos >= 1 && f.pos <= len - at, "DONE with pos %zu of %zu", f.pos, len - at);
            if (o->n < sizeof(o->lens) / sizeof(o->lens[0]))
                o->lens[o->n] = f.pos;
            o->n++;
            at += f.pos;
            resp_frame_next(&f);
            continue;
        }
        FUZZ_CHECK(f.pos <= len - at, "pos %zu past %zu", f.pos, len - at);
        o->rc = rc;
        if (rc == RESP_FRAME_ERROR) {
            FUZZ_CHECK(f.err[0] != '\0', "ERROR without a message");
            memcpy(o->err, f.err, sizeof(o->err));
            FUZZ_CHECK(resp_frame_scan(&f, buf + at, len - at) == RESP_FRAME_ERROR, "ERROR did not stick");
        } else {
            FUZZ_CHECK(rc == RESP_FRAME_AGAIN, "rc %d", rc);
            size_t pos = f.pos;
            FUZZ_CHECK(resp_frame_scan(&f, buf + at, len - at) == RESP_FRAME_AGAIN && f.pos == pos,
                       "AGAIN changed when asked again");
        }
        return;
    }
}

static void frame_pieces(const char *buf, size_t len, long long bmax, long long cmax, size_t chunk, outcome_t *o)
{
    resp_frame_t f;
    size_t at = 0;

    resp_frame_init(&f, bmax, cmax);
    memset(o, 0, sizeof(*o));
    for (;;) {
        size_t k = 0;
        int rc;
        for (;;) {
            k = k + chunk < len - at ? k + chunk : len - at;
            rc = resp_frame_scan(&f, buf + at, k);
            if (rc != RESP_FRAME_AGAIN || k == len - at)
                break;
        }
        if (rc == RESP_FRAME_DONE) {
            FUZZ_CHECK(f.pos == k || chunk > 1, "a proper prefix (%zu of %zu) completed a frame", f.pos, k);
            if (o->n < sizeof(o->lens) / sizeof(o->lens[0]))
                o->lens[o->n] = f.pos;
            o->n++;
            at += f.pos;
            resp_frame_next(&f);
            continue;
        }
        o->rc = rc;
        if (rc == RESP_FRAME_ERROR)
            memcpy(o->err, f.err, sizeof(o->err));
        return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int small = data[0] & 1;
    long long bmax = small ? 64 : 512LL * 1024 * 1024, cmax = small ? 8 : 1LL << 31;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    outcome_t whole, pieces;
    frame_whole(buf, len, bmax, cmax, &whole);
    size_t chunk = len <= 4096 ? 1 : 1 + (size_t)(data[0] >> 1) % 97;
    frame_pieces(buf, len, bmax, cmax, chunk, &pieces);
    FUZZ_CHECK(whole.n == pieces.n, "%zu frames whole, %zu in pieces", whole.n, pieces.n);
    for (size_t i = 0; i < whole.n && i < sizeof(whole.lens) / sizeof(whole.lens[0]); i++)
        FUZZ_CHECK(whole.lens[i] == pieces.lens[i], "frame %zu: %zu bytes whole, %zu in pieces", i, whole.lens[i],
                   pieces.lens[i]);
    /* the last, unfinished frame: an error is found whether the bytes come at once or not, except a line
     * too long, which depends on how much has arrived (as for the request parser) */
    if (strstr(whole.err, "too long") == NULL && strstr(pieces.err, "too long") == NULL) {
        FUZZ_CHECK(whole.rc == pieces.rc, "ends %d whole, %d in pieces", whole.rc, pieces.rc);
        FUZZ_CHECK(strcmp(whole.err, pieces.err) == 0, "'%s' whole, '%s' in pieces", whole.err, pieces.err);
    }
    free(buf);
    return 0;
}
