/*
 * resp/frame: where one reply ends in a stream of RESP2 or RESP3 replies, without building it.
 *
 * A proxy that relays replies in the protocol the upstream already speaks (a RESP3 client's forwarded
 * command on a connection opened with HELLO 3) needs only the boundaries: the bytes go to the client as
 * they are. hiredis 0.14's reader knows RESP2 alone and builds an object per element; this framer knows
 * every RESP3 type, allocates nothing, and is written here because no Debian-packaged library frames
 * RESP3 (hiredis 1.x, which reads it, is not in Debian 12).
 *
 * Types: simple lines + - : _ , # ( ; blobs $ ! = (a length, the bytes, CRLF; $-1 is RESP2's null); the
 * aggregates * ~ > (N elements; *-1 is RESP2's null array) and % (N pairs); | is an attribute (N pairs)
 * that comes before the value it describes and is part of the same frame. Streamed strings and
 * aggregates ($? *? ...), which Redis never sends, are protocol errors.
 *
 * Incremental: the caller keeps the unconsumed input contiguous from the start of the current frame and
 * calls resp_frame_scan() with all of it when more bytes arrive; the scan resumes where it stopped, so no
 * byte is examined twice. Bounded: nesting up to RESP_FRAME_DEPTH, a blob or an aggregate's count up to
 * the limits given, a line (the type byte to CRLF) up to RESP_FRAME_LINE_MAX bytes.
 */
#ifndef CACHETORYD_RESP_FRAME_H
#define CACHETORYD_RESP_FRAME_H

#include <stddef.h>

#define RESP_FRAME_DEPTH 64
#define RESP_FRAME_LINE_MAX (64 * 1024)

typedef struct resp_frame {
    size_t pos;                     /* bytes of the current frame scanned so far */
    long long blob_left;            /* >= 0: inside a blob, this many bytes (payload + CRLF) to go */
    int depth;                      /* open aggregates */
    long long left[RESP_FRAME_DEPTH];  /* elements each still expects */
    unsigned char attr[RESP_FRAME_DEPTH];  /* 1: an attribute, whose end does not count as its parent's element */
    long long blob_max;             /* the longest blob accepted */
    long long count_max;            /* the largest aggregate count accepted */
    char err[96];
} resp_frame_t;

#define RESP_FRAME_DONE  1          /* a whole frame: its length is f->pos */
#define RESP_FRAME_AGAIN 0          /* more bytes are needed */
#define RESP_FRAME_ERROR (-1)       /* not RESP: f->err says why; every later call answers the same */

void resp_frame_init(resp_frame_t *f, long long blob_max, long long count_max);
/* Scan buf[0..len), the current frame from its start. After RESP_FRAME_DONE the caller drops f->pos
 * bytes and calls resp_frame_next() before scanning the next frame. */
int resp_frame_scan(resp_frame_t *f, const char *buf, size_t len);
void resp_frame_next(resp_frame_t *f);

#endif
