/*
 * SipHash-c-d, written from the paper ("SipHash: a fast short-input PRF", 2012). See siphash.h for why
 * it is here. Input and key are read as little-endian 64-bit words whatever the host byte order, so a
 * given key and input always give the same hash.
 */
#include "util/siphash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* Little-endian load of 8 bytes; memcpy-free so unaligned input is fine on every architecture. */
static inline uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

#define SIPROUND()                                                              \
    do {                                                                        \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);               \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                  \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                  \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);               \
    } while (0)

/*
 * The generic SipHash-c-d. Inlined into the two public wrappers with constant c and d, so the round
 * loops unroll and cost nothing over a hand-specialised version.
 */
static inline uint64_t siphash_cd(const void *in, size_t len, const uint8_t key[SIPHASH_KEY_LEN],
                                  int c, int d)
{
    const uint8_t *p = in;
    const uint8_t *end = p + (len & ~(size_t)7);
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = (uint64_t)len << 56;

    for (; p != end; p += 8) {
        uint64_t m = load_le64(p);
        v3 ^= m;
        for (int i = 0; i < c; i++)
            SIPROUND();
        v0 ^= m;
    }

    /* Last 0..7 bytes, with the length in the top byte. */
    switch (len & 7) {
    case 7: b |= (uint64_t)p[6] << 48; /* fall through */
    case 6: b |= (uint64_t)p[5] << 40; /* fall through */
    case 5: b |= (uint64_t)p[4] << 32; /* fall through */
    case 4: b |= (uint64_t)p[3] << 24; /* fall through */
    case 3: b |= (uint64_t)p[2] << 16; /* fall through */
    case 2: b |= (uint64_t)p[1] << 8;  /* fall through */
    case 1: b |= (uint64_t)p[0];       /* fall through */
    case 0: break;
    }
    v3 ^= b;
    for (int i = 0; i < c; i++)
        SIPROUND();
    v0 ^= b;

    v2 ^= 0xff;
    for (int i = 0; i < d; i++)
        SIPROUND();
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t siphash13(const void *in, size_t len, const uint8_t key[SIPHASH_KEY_LEN])
{
    return siphash_cd(in, len, key, 1, 3);
}

uint64_t siphash24(const void *in, size_t len, const uint8_t key[SIPHASH_KEY_LEN])
{
    return siphash_cd(in, len, key, 2, 4);
}
