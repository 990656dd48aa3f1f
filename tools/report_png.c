/* The PNG encoder of `dendrite report` / `visualize`. */
#include "report_int.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ PNG */

/* CRC-32 as PNG (and zlib, gzip) define it: polynomial 0x04C11DB7, bit-reversed (0xEDB88320), start and end
 * inverted.  Bit by bit rather than with a table: slower, but there is nothing to get wrong.  Chaining
 * calls gives the CRC of the concatenation. */
static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_be32(sbuf *b, uint32_t v)
{
    unsigned char q[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    sb_put(b, q, 4);
}

/* A chunk: length (big-endian), 4-letter type, data, CRC of type + data. */
static void png_chunk(sbuf *b, const char type[4], const unsigned char *data, size_t n)
{
    put_be32(b, (uint32_t)n);
    sb_put(b, type, 4);
    if (n) sb_put(b, data, n);
    put_be32(b, crc32_update(crc32_update(0, (const unsigned char *)type, 4), data, n));
}

/* An 8-bit greyscale PNG of w x h pixels (row-major, 0 black .. 255 white); `text`, when given, is stored
 * as a tEXt "Description" chunk (a caption image viewers can show). */
void png_encode_grey(sbuf *b, const unsigned char *pixels, int w, int h, const char *text)
{
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    sb_put(b, signature, 8);

    unsigned char ihdr[13] = {0};
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (unsigned char)((uint32_t)w >> (24 - 8 * i));
        ihdr[4 + i] = (unsigned char)((uint32_t)h >> (24 - 8 * i));
    }
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 0;  /* colour type 0: greyscale; compression, filter and interlace methods stay 0 */
    png_chunk(b, "IHDR", ihdr, sizeof ihdr);

    if (text) {
        sbuf t = {0};
        sb_puts(&t, "Description");
        sb_byte(&t, 0); /* keyword, NUL, Latin-1 text */
        sb_puts(&t, text);
        if (t.oom) b->oom = true;
        else png_chunk(b, "tEXt", (const unsigned char *)t.s, t.len);
        free(t.s);
    }

    /* The image data: each row is a filter-type byte (0: none) and its pixels ... */
    size_t raw_n = (size_t)h * ((size_t)w + 1);
    unsigned char *raw = malloc(raw_n ? raw_n : 1);
    if (!raw) {
        b->oom = true;
        return;
    }
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * ((size_t)w + 1)] = 0;
        memcpy(raw + (size_t)y * ((size_t)w + 1) + 1, pixels + (size_t)y * (size_t)w, (size_t)w);
    }
    /* ... wrapped in a zlib stream: header 0x78 0x01 (deflate, 32K window; (0x78 << 8 | 0x01) % 31 == 0 as the
     * format requires), then stored deflate blocks of at most 65535 bytes, each with a 1-byte header (the
     * last-block bit, type 00), LEN and its ones' complement NLEN little-endian, then the bytes; then the
     * Adler-32 of the uncompressed bytes, big-endian. */
    sbuf z = {0};
    sb_byte(&z, 0x78);
    sb_byte(&z, 0x01);
    size_t at = 0;
    do {
        size_t n = raw_n - at < 65535 ? raw_n - at : 65535;
        bool last = at + n == raw_n;
        unsigned char hdr[5] = {last ? 1 : 0, (unsigned char)(n & 0xff), (unsigned char)(n >> 8),
                                (unsigned char)(~n & 0xff), (unsigned char)((~n >> 8) & 0xff)};
        sb_put(&z, hdr, 5);
        sb_put(&z, raw + at, n);
        at += n;
    } while (at < raw_n);
    /* Adler-32: a = 1 + sum of bytes, b = sum of the running a's, both mod 65521; value b << 16 | a. */
    uint32_t a = 1, s = 0;
    for (size_t i = 0; i < raw_n; i++) {
        a = (a + raw[i]) % 65521u;
        s = (s + a) % 65521u;
    }
    put_be32(&z, s << 16 | a);
    free(raw);
    if (z.oom) b->oom = true;
    else png_chunk(b, "IDAT", (const unsigned char *)z.s, z.len);
    free(z.s);
    png_chunk(b, "IEND", NULL, 0);
}
