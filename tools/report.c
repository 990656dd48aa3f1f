/* dendrite report / visualize: an HTML page about a training run, and pictures of convolution filters.
 *
 * Everything here uses the public header only, and the output needs nothing but a browser: the page carries
 * its charts as inline SVG, its images as PNG data URIs and its style as one <style> block.  The PNG encoder is
 * the smallest that is still valid: zlib "stored" (uncompressed) deflate blocks, CRC-32 and Adler-32 by hand.
 */
#include "report.h"

#include "dendrite.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_USAGE 2

/* ------------------------------------------------------------------ a growable byte buffer */

/* The page is built in memory and written in one go (to a temporary file that is then renamed), so a
 * failure half-way never leaves half a page behind.  An allocation failure is sticky: later writes do
 * nothing and the caller checks `oom` once at the end. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static bool sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

static void sb_put(sbuf *b, const void *p, size_t n)
{
    if (!sb_reserve(b, n)) return;
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_byte(sbuf *b, unsigned char c) { sb_put(b, &c, 1); }

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Text for HTML and SVG (both XML-ish): the five characters with a meaning there become entities. */
static void sb_text(sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default: sb_byte(b, (unsigned char)*s);
        }
    }
}

static void sb_base64(sbuf *b, const unsigned char *p, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        /* three bytes -> four 6-bit digits; '=' pads a short last group */
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char out[4] = {digits[v >> 18 & 63], digits[v >> 12 & 63], i + 1 < n ? digits[v >> 6 & 63] : '=',
                       i + 2 < n ? digits[v & 63] : '='};
        sb_put(b, out, 4);
    }
}

/* Writes the buffer to `path` through a temporary file in the same folder and a rename, so readers see the
 * old file or the new one, never a half-written one.  Something that exists and is not a regular file
 * (/dev/stdout, a pipe) is written directly: renaming over it would replace the device with a file. */
static int write_atomic(const char *cmd, const char *path, const sbuf *b)
{
    if (b->oom) {
        fprintf(stderr, "dendrite %s: out of memory building %s\n", cmd, path);
        return 1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "wb");
        bool ok = f && fwrite(b->s, 1, b->len, f) == b->len;
        if (f && fclose(f) != 0) ok = false;
        if (!ok) fprintf(stderr, "dendrite %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        return ok ? 0 : 1;
    }
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        fprintf(stderr, "dendrite %s: out of memory\n", cmd);
        return 1;
    }
    snprintf(tmp, n, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wbx");
    bool ok = f && fwrite(b->s, 1, b->len, f) == b->len;
    int err = errno;
    if (f && fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        fprintf(stderr, "dendrite %s: cannot write %s: %s\n", cmd, path, strerror(err));
        if (f) remove(tmp);
    }
    free(tmp);
    return ok ? 0 : 1;
}

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
static void png_encode_grey(sbuf *b, const unsigned char *pixels, int w, int h, const char *text)
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

/* ------------------------------------------------------------------ the log: a tiny JSON-lines reader */

/* What one epoch's line says; NaN where a key is absent or null. */
typedef struct epoch_rec {
    double epoch, train_loss, train_accuracy, val_loss, val_accuracy, lr, samples_per_sec, seconds;
} epoch_rec;

static const struct {
    const char *key;
    size_t offset;
} rec_keys[] = {
    {"epoch", offsetof(epoch_rec, epoch)},
    {"train_loss", offsetof(epoch_rec, train_loss)},
    {"train_accuracy", offsetof(epoch_rec, train_accuracy)},
    {"val_loss", offsetof(epoch_rec, val_loss)},
    {"val_accuracy", offsetof(epoch_rec, val_accuracy)},
    {"lr", offsetof(epoch_rec, lr)},
    {"samples_per_sec", offsetof(epoch_rec, samples_per_sec)},
    {"seconds", offsetof(epoch_rec, seconds)},
};
#define N_REC_KEYS (sizeof rec_keys / sizeof rec_keys[0])

/* A cursor over one line.  Errors are written into `err` as "FILE:LINE: what" and the parse stops. */
typedef struct jcur {
    const char *p, *line_start;
    const char *file;
    long line;
    char err[512];
} jcur;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
static bool jfail(jcur *c, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(c->err, sizeof c->err, "%s:%ld: %s (column %ld)", c->file, c->line, what, (long)(c->p - c->line_start) + 1);
    return false;
}

static void jws(jcur *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n') c->p++;
}

/* A JSON string; its first `size - 1` bytes (escapes kept as written: keys we know have none) go to buf. */
static bool jstring(jcur *c, char *buf, size_t size)
{
    size_t n = 0;
    if (*c->p != '"') return jfail(c, "expected a string");
    c->p++;
    for (;;) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') break;
        if (ch == '\0') return jfail(c, "unterminated string");
        if (ch < 0x20) return jfail(c, "control character inside a string");
        if (ch == '\\') {
            char e = c->p[1];
            if (!e || !strchr("\"\\/bfnrtu", e)) return jfail(c, "bad escape in a string");
            if (buf && n + 1 < size) buf[n++] = (char)ch;
            c->p++;
            ch = (unsigned char)e;
        }
        if (buf && n + 1 < size) buf[n++] = (char)ch;
        c->p++;
    }
    c->p++;
    if (buf) buf[n] = '\0';
    return true;
}

/* A JSON number, checked against JSON's grammar (strtod alone would take "nan", "inf", hex and "1."). */
static bool jnumber(jcur *c, double *out)
{
    const char *s = c->p, *q = s;
    if (*q == '-') q++;
    if (*q == '0') q++;
    else if (*q >= '1' && *q <= '9') while (*q >= '0' && *q <= '9') q++;
    else return jfail(c, "expected a number");
    if (*q == '.') {
        q++;
        if (!(*q >= '0' && *q <= '9')) return jfail(c, "expected digits after the decimal point");
        while (*q >= '0' && *q <= '9') q++;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!(*q >= '0' && *q <= '9')) return jfail(c, "expected digits in the exponent");
        while (*q >= '0' && *q <= '9') q++;
    }
    char tmp[64];
    size_t n = (size_t)(q - s);
    if (n >= sizeof tmp) return jfail(c, "number too long");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    if (!isfinite(*out)) return jfail(c, "number out of range");
    c->p = q;
    return true;
}

static bool jword(jcur *c, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(c->p, w, n)) return jfail(c, "expected a JSON value");
    c->p += n;
    return true;
}

/* Skips any value (for keys we do not know), nested up to a sane depth. */
static bool jskip(jcur *c, int depth)
{
    if (depth > 64) return jfail(c, "nested too deeply");
    jws(c);
    char ch = *c->p;
    if (ch == '"') return jstring(c, NULL, 0);
    if (ch == 't') return jword(c, "true");
    if (ch == 'f') return jword(c, "false");
    if (ch == 'n') return jword(c, "null");
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        double v;
        return jnumber(c, &v);
    }
    if (ch != '{' && ch != '[') return jfail(c, "expected a JSON value");
    char close = ch == '{' ? '}' : ']';
    c->p++;
    jws(c);
    if (*c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        if (close == '}') {
            jws(c);
            if (!jstring(c, NULL, 0)) return false;
            jws(c);
            if (*c->p != ':') return jfail(c, "expected ':'");
            c->p++;
        }
        if (!jskip(c, depth + 1)) return false;
        jws(c);
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == close) {
            c->p++;
            return true;
        }
        return jfail(c, "expected ',' or '%c'", close);
    }
}

/* One line: a flat object whose known keys hold numbers (or null); other keys are skipped. */
static bool parse_line(jcur *c, epoch_rec *r)
{
    for (size_t k = 0; k < N_REC_KEYS; k++) *(double *)((char *)r + rec_keys[k].offset) = NAN;
    jws(c);
    if (*c->p != '{') return jfail(c, "expected a JSON object");
    c->p++;
    jws(c);
    if (*c->p == '}') c->p++;
    else {
        for (;;) {
            char key[64];
            jws(c);
            if (*c->p != '"') return jfail(c, "expected a key in double quotes");
            if (!jstring(c, key, sizeof key)) return false;
            jws(c);
            if (*c->p != ':') return jfail(c, "expected ':' after \"%s\"", key);
            c->p++;
            jws(c);
            size_t k = 0;
            while (k < N_REC_KEYS && strcmp(key, rec_keys[k].key)) k++;
            if (k == N_REC_KEYS) {
                if (!jskip(c, 0)) return false;
            } else {
                double *slot = (double *)((char *)r + rec_keys[k].offset);
                if (!strncmp(c->p, "null", 4)) {
                    c->p += 4;
                    *slot = NAN;
                } else if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
                    if (!jnumber(c, slot)) return false;
                } else {
                    return jfail(c, "\"%s\" should be a number or null", key);
                }
            }
            jws(c);
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p == '}') {
                c->p++;
                break;
            }
            return jfail(c, "expected ',' or '}'");
        }
    }
    jws(c);
    if (*c->p) return jfail(c, "unexpected text after the object");
    return true;
}

typedef struct run_log {
    epoch_rec *r;
    int n, cap;
    int replaced; /* records a resumed run superseded */
} run_log;

/* Reads a --log file.  A resumed run appends to its log, starting again from the checkpoint's epoch: a
 * record whose epoch is not after the previous one replaces the records from that epoch on, so the
 * curves show the run that produced the final weights.  Returns 0, or 1 with a message on stderr. */
static int read_log(const char *path, run_log *log)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "dendrite report: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    jcur c = {0};
    c.file = path;
    int rc = 0;
    bool figures = false; /* some line has a value worth drawing */
    while ((len = getline(&line, &cap, f)) != -1) {
        c.line++;
        c.p = c.line_start = line;
        if (strlen(line) != (size_t)len) {
            fprintf(stderr, "dendrite report: %s:%ld: a NUL byte in the line (is this a text file?)\n", path, c.line);
            rc = 1;
            break;
        }
        if (c.line == 1 && !strncmp(c.p, "\xef\xbb\xbf", 3)) c.p += 3; /* a UTF-8 byte-order mark */
        jws(&c);
        if (!*c.p) continue; /* blank lines (a trailing newline, say) carry nothing */
        epoch_rec r;
        if (!parse_line(&c, &r)) {
            fprintf(stderr, "dendrite report: %s\n", c.err);
            rc = 1;
            break;
        }
        figures |= !isnan(r.train_loss) || !isnan(r.val_loss) || !isnan(r.train_accuracy) || !isnan(r.val_accuracy) ||
                   !isnan(r.lr);
        if (isnan(r.epoch)) r.epoch = log->n ? log->r[log->n - 1].epoch + 1 : 1;
        while (log->n > 0 && log->r[log->n - 1].epoch >= r.epoch) {
            log->n--;
            log->replaced++;
        }
        if (log->n == log->cap) {
            int ncap = log->cap ? 2 * log->cap : 64;
            epoch_rec *nr = realloc(log->r, (size_t)ncap * sizeof *nr);
            if (!nr) {
                fprintf(stderr, "dendrite report: out of memory reading %s\n", path);
                rc = 1;
                break;
            }
            log->r = nr;
            log->cap = ncap;
        }
        log->r[log->n++] = r;
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "dendrite report: cannot read %s: %s\n", path, strerror(errno));
        rc = 1;
    }
    if (!rc && log->n == 0) {
        fprintf(stderr, "dendrite report: %s: the log is empty (train with --log FILE to fill it)\n", path);
        rc = 1;
    }
    if (!rc && !figures) {
        fprintf(stderr, "dendrite report: %s: no per-epoch figures (train_loss, val_loss, lr, ...) in the log\n", path);
        rc = 1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------ charts */

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`. */
static double nice_step(double span, int target)
{
    double raw = span / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Decimals that show a multiple of `step` exactly (0.05 -> 2, 0.0005 -> 4, 2 -> 0). */
static int step_decimals(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 10 ? 10 : d;
}

static void fmt_num(char *buf, size_t n, double v)
{
    if (!isfinite(v)) snprintf(buf, n, "–");
    else if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e6)) snprintf(buf, n, "%.3g", v);
    else snprintf(buf, n, "%.4g", v);
}

typedef struct series {
    const char *name, *color;
    const double *y; /* stride: one epoch_rec apart */
} series;

#define CHART_W 640
#define CHART_H 300

static double rec_at(const double *y, int i) { return *(const double *)((const char *)y + (size_t)i * sizeof(epoch_rec)); }

/* A line chart of per-epoch values: title, legend, gridlines, ticks and axis labels, one polyline per series
 * (broken where a value is missing) and, for short runs, a dot per epoch with its value on hover. */
static void svg_line_chart(sbuf *b, const char *title, const char *ylabel, const run_log *log, const series *s, int ns)
{
    const int right = 20, top = 48, bottom = 52, ph = CHART_H - top - bottom;
    int left = 70, pw = CHART_W - left - right;
    double ylo = INFINITY, yhi = -INFINITY, xlo = log->r[0].epoch, xhi = log->r[log->n - 1].epoch;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < log->n; i++) {
            double v = rec_at(s[k].y, i);
            if (isnan(v)) continue;
            ylo = v < ylo ? v : ylo;
            yhi = v > yhi ? v : yhi;
        }
    sb_printf(b, "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
              CHART_W, CHART_H, CHART_W, CHART_H);
    sb_text(b, title);
    sb_printf(b, "\"><title>");
    sb_text(b, title);
    sb_printf(b, "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>", CHART_W, CHART_H);
    sb_puts(b, "<text x=\"14\" y=\"26\" class=\"ct\">");
    sb_text(b, title);
    sb_puts(b, "</text>");
    if (!(ylo <= yhi) || !isfinite(yhi - ylo)) {
        sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"note\" text-anchor=\"middle\">%s</text></svg></figure>\n",
                  CHART_W / 2, CHART_H / 2, ylo <= yhi ? "values out of range" : "not in this log");
        return;
    }
    /* a flat line still needs a span to divide by */
    if (yhi - ylo < 1e-12 * (fabs(yhi) + 1)) {
        double pad = fabs(yhi) > 0 ? fabs(yhi) * 0.1 : 0.5;
        ylo -= pad;
        yhi += pad;
    }
    if (xhi <= xlo) {
        xlo -= 1;
        xhi += 1;
    }
    double ystep = nice_step(yhi - ylo, 5);
    ylo = floor(ylo / ystep + 1e-9) * ystep;
    yhi = ceil(yhi / ystep - 1e-9) * ystep;
    double xstep = nice_step(xhi - xlo, 8);
    if (xstep < 1) xstep = 1;
    int ydec = step_decimals(ystep), yticks = (int)lround((yhi - ylo) / ystep);
    /* tick j is at ylo + j * ystep, snapped to 0 near it (so never "-0.00") */
#define YTICK(j) (fabs(ylo + (j) * ystep) < ystep * 1e-6 ? 0.0 : ylo + (j) * ystep)
    /* room for the widest tick label (~6.5 px a character at 11 px) between the axis title and the axis */
    int widest = 0;
    for (int j = 0; j <= yticks; j++) {
        int n = snprintf(NULL, 0, "%.*f", ydec, YTICK(j));
        widest = n > widest ? n : widest;
    }
    left = 38 + (int)(widest * 6.5);
    left = left < 60 ? 60 : left;
    pw = CHART_W - left - right;

#define PX(x) (left + ((x) - xlo) / (xhi - xlo) * pw)
#define PY(y) (top + (yhi - (y)) / (yhi - ylo) * ph)
    /* legend, right-aligned in the title row; ~7 px per character of 12 px text */
    int lx = CHART_W - right;
    for (int k = ns - 1; k >= 0; k--) {
        bool any = false;
        for (int i = 0; i < log->n && !any; i++) any = !isnan(rec_at(s[k].y, i));
        if (!any) continue;
        lx -= 7 * (int)strlen(s[k].name) + 34;
        sb_printf(b, "<line x1=\"%d\" y1=\"22\" x2=\"%d\" y2=\"22\" stroke=\"%s\" stroke-width=\"3\" "
                     "stroke-linecap=\"round\"/>"
                     "<text x=\"%d\" y=\"26\" class=\"lg\">",
                  lx, lx + 18, s[k].color, lx + 24);
        sb_text(b, s[k].name);
        sb_puts(b, "</text>");
    }
    /* horizontal gridlines with the y ticks */
    for (int j = 0; j <= yticks; j++) {
        double v = YTICK(j);
        sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                     "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.*f</text>",
                  left, left + pw, PY(v), PY(v), left - 8, PY(v) + 4, ydec, v);
    }
    /* x ticks at whole multiples of the step (counted, not summed, so no rounding drift) */
    for (double i = ceil(xlo / xstep - 1e-9); i * xstep <= xhi + 1e-9; i++) {
        double x = i * xstep + 0.0; /* + 0.0: a tick at zero reads "0", not "-0" */
        sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>"
                     "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%g</text>",
                  PX(x), PX(x), top + ph, top + ph + 5, PX(x), top + ph + 20, x);
    }
    sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>", left, left + pw, top + ph, top + ph);
    sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>", left, left, top, top + ph);
    sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"al\" text-anchor=\"middle\">epoch</text>", left + pw / 2, CHART_H - 12);
    sb_printf(b, "<text transform=\"translate(16 %d) rotate(-90)\" class=\"al\" text-anchor=\"middle\">", top + ph / 2);
    sb_text(b, ylabel);
    sb_puts(b, "</text>");

    for (int k = 0; k < ns; k++) {
        sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" stroke-linejoin=\"round\" d=\"", s[k].color);
        bool pen = false;
        for (int i = 0; i < log->n; i++) {
            double v = rec_at(s[k].y, i);
            if (isnan(v)) {
                pen = false;
                continue;
            }
            sb_printf(b, "%s%.1f %.1f", pen ? " L" : (i ? " M" : "M"), PX(log->r[i].epoch), PY(v));
            pen = true;
        }
        sb_puts(b, "\"/>");
        /* dots on every epoch of a short run; on a long one only where a value stands alone (no line shows it) */
        for (int i = 0; i < log->n; i++) {
            double v = rec_at(s[k].y, i);
            if (isnan(v)) continue;
            bool alone = (i == 0 || isnan(rec_at(s[k].y, i - 1))) && (i + 1 == log->n || isnan(rec_at(s[k].y, i + 1)));
            if (log->n > 60 && !alone) continue;
            char num[32];
            fmt_num(num, sizeof num, v);
            sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"#fff\" stroke=\"%s\" stroke-width=\"2\"><title>",
                      PX(log->r[i].epoch), PY(v), s[k].color);
            sb_text(b, s[k].name);
            sb_printf(b, ", epoch %g: %s</title></circle>", log->r[i].epoch, num);
        }
    }
#undef PX
#undef PY
#undef YTICK
    sb_puts(b, "</svg></figure>\n");
}

/* ------------------------------------------------------------------ filters (first conv layer) */

/* The first convolutional layer's weights, laid out as tiles.  One input channel: the filters wrap into rows
 * of up to 8 (16 for more than 64).  A few channels (up to 8): one row per input channel, one column per
 * filter.  More: each filter's channels are averaged into one tile.  Each filter is normalised to its own
 * min..max over everything drawn of it, so channels of one filter stay comparable. */
typedef struct filter_grid {
    char name[96];
    int64_t f, c, kh, kw;
    int rows, cols, scale, gap, margin;
    bool channel_rows, averaged;
    float *w;        /* [f][planes][kh][kw] as drawn (averaged: one plane) */
    int planes;
    float *lo, *hi;  /* per filter */
} filter_grid;

static void filter_grid_free(filter_grid *g)
{
    free(g->w);
    free(g->lo);
    free(g->hi);
    memset(g, 0, sizeof *g);
}

/* Finds the first 4-D weight ([F, C/groups, kh, kw]: only convolutions have them).  Returns 0 with g filled,
 * 1 when there is none (no message), -1 when out of memory. */
static int filter_grid_build(dn_model *m, filter_grid *g)
{
    memset(g, 0, sizeof *g);
    int n = dn_model_tensor_count(m), at = -1;
    for (int i = 0; i < n && at < 0; i++) {
        const char *name = dn_model_tensor_name(m, i);
        size_t len = strlen(name);
        if (dn_tensor_ndim(dn_model_tensor(m, i)) == 4 && len >= 7 && !strcmp(name + len - 7, ".weight")) at = i;
    }
    if (at < 0) return 1;
    dn_tensor *t = dn_model_tensor(m, at);
    snprintf(g->name, sizeof g->name, "%s", dn_model_tensor_name(m, at));
    g->f = dn_tensor_dim(t, 0);
    g->c = dn_tensor_dim(t, 1);
    g->kh = dn_tensor_dim(t, 2);
    g->kw = dn_tensor_dim(t, 3);
    g->channel_rows = g->c > 1 && g->c <= 8;
    g->averaged = g->c > 8;
    g->planes = g->channel_rows ? (int)g->c : 1;
    int64_t k = g->kh * g->kw, numel = dn_tensor_numel(t);
    float *all = malloc((size_t)numel * sizeof *all);
    g->w = malloc((size_t)(g->f * g->planes * k) * sizeof *g->w);
    g->lo = malloc((size_t)g->f * sizeof *g->lo);
    g->hi = malloc((size_t)g->f * sizeof *g->hi);
    if (!all || !g->w || !g->lo || !g->hi) {
        free(all);
        filter_grid_free(g);
        return -1;
    }
    dn_tensor_read(t, all);
    for (int64_t fi = 0; fi < g->f; fi++) {
        float *dst = g->w + fi * g->planes * k;
        const float *src = all + fi * g->c * k;
        if (g->averaged) {
            for (int64_t j = 0; j < k; j++) {
                double sum = 0;
                for (int64_t ci = 0; ci < g->c; ci++) sum += src[ci * k + j];
                dst[j] = (float)(sum / (double)g->c);
            }
        } else {
            memcpy(dst, src, (size_t)(g->planes * k) * sizeof *dst);
        }
        float lo = dst[0], hi = dst[0];
        for (int64_t j = 1; j < g->planes * k; j++) {
            lo = dst[j] < lo ? dst[j] : lo;
            hi = dst[j] > hi ? dst[j] : hi;
        }
        g->lo[fi] = lo;
        g->hi[fi] = hi;
    }
    free(all);
    if (g->channel_rows) {
        g->rows = (int)g->c;
        g->cols = (int)g->f;
    } else {
        g->cols = (int)(g->f <= 8 ? g->f : g->f <= 64 ? 8 : 16);
        g->rows = (int)((g->f + g->cols - 1) / g->cols);
    }
    int64_t big = g->kh > g->kw ? g->kh : g->kw;
    g->scale = (int)(big >= 30 ? 2 : 60 / big);
    g->gap = 6;
    g->margin = 12;
    return 0;
}

/* Grey level 0..255 of one kernel element: its filter's min is black, its max white (flat filters: mid grey). */
static int filter_grey(const filter_grid *g, int64_t fi, float v)
{
    float lo = g->lo[fi], hi = g->hi[fi];
    if (!(hi > lo)) return 128;
    return (int)lrintf((v - lo) / (hi - lo) * 255.0f);
}

/* Top-left pixel of a tile, and which filter/plane it shows. */
static void tile_at(const filter_grid *g, int row, int col, int *x, int *y)
{
    int tw = (int)g->kw * g->scale, th = (int)g->kh * g->scale;
    *x = g->margin + col * (tw + g->gap) + (g->channel_rows ? 40 : 0);
    *y = g->margin + row * (th + g->gap) + (g->channel_rows ? 16 : 0);
}

static void filter_grid_size(const filter_grid *g, int *w, int *h)
{
    int x, y;
    tile_at(g, g->rows - 1, g->cols - 1, &x, &y);
    *w = x + (int)g->kw * g->scale + g->margin;
    *h = y + (int)g->kh * g->scale + g->margin;
}

static void filter_caption(const filter_grid *g, char *buf, size_t n)
{
    const char *how = g->channel_rows ? "one row per input channel, one column per filter"
                      : g->averaged   ? "input channels averaged, one tile per filter"
                                      : "one tile per filter";
    snprintf(buf, n, "%s: %lld filters of %lld×%lld over %lld input channel%s; %s; each filter scaled to its own "
                     "min (black) .. max (white)",
             g->name, (long long)g->f, (long long)g->kh, (long long)g->kw, (long long)g->c, g->c == 1 ? "" : "s", how);
}

/* The grid as SVG (an element that also stands alone as a file), caption below the tiles. */
static void filter_grid_svg(sbuf *b, const filter_grid *g, bool standalone)
{
    int w, h;
    filter_grid_size(g, &w, &h);
    char caption[512];
    filter_caption(g, caption, sizeof caption);
    int cap_h = 54, total_h = h + cap_h, total_w = w < 560 ? 560 : w;
    if (standalone) sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "shape-rendering=\"crispEdges\" "
                 "font-family=\"system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif\" "
                 "class=\"filters\" role=\"img\"><title>",
              total_w, total_h, total_w, total_h);
    sb_text(b, caption);
    sb_printf(b, "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", total_w, total_h);
    int64_t k = g->kh * g->kw;
    for (int row = 0; row < g->rows; row++)
        for (int col = 0; col < g->cols; col++) {
            int64_t fi = g->channel_rows ? col : (int64_t)row * g->cols + col;
            int plane = g->channel_rows ? row : 0;
            if (fi >= g->f) continue;
            int x0, y0;
            tile_at(g, row, col, &x0, &y0);
            sb_printf(b, "<g><title>filter %lld", (long long)fi);
            if (g->channel_rows) sb_printf(b, ", input channel %d", plane);
            sb_printf(b, " (min %.4g, max %.4g)</title>", (double)g->lo[fi], (double)g->hi[fi]);
            const float *src = g->w + (fi * g->planes + plane) * k;
            for (int64_t yy = 0; yy < g->kh; yy++)
                for (int64_t xx = 0; xx < g->kw; xx++) {
                    int v = filter_grey(g, fi, src[yy * g->kw + xx]);
                    sb_printf(b, "<rect x=\"%lld\" y=\"%lld\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>",
                              (long long)(x0 + xx * g->scale), (long long)(y0 + yy * g->scale), g->scale, g->scale, v,
                              v, v);
                }
            sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%lld\" height=\"%lld\" fill=\"none\" stroke=\"#9aa5b1\" "
                         "stroke-width=\"1\"/></g>\n",
                      x0 - 0.5, y0 - 0.5, (long long)(g->kw * g->scale + 1), (long long)(g->kh * g->scale + 1));
        }
    if (g->channel_rows) {
        int x, y;
        for (int col = 0; col < g->cols; col++) {
            tile_at(g, 0, col, &x, &y);
            sb_printf(b, "<text x=\"%lld\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" fill=\"#52606d\">%d</text>",
                      (long long)(x + g->kw * g->scale / 2), y - 5, col);
        }
        for (int row = 0; row < g->rows; row++) {
            tile_at(g, row, 0, &x, &y);
            sb_printf(b, "<text x=\"%d\" y=\"%lld\" text-anchor=\"end\" font-size=\"10\" fill=\"#52606d\">ch %d</text>",
                      x - 6, (long long)(y + g->kh * g->scale / 2 + 3), row);
        }
    }
    sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#52606d\">",
              g->margin, h + 14);
    /* the caption can be long: break it after the "; " separators into at most three lines */
    const char *p = caption;
    int line = 0;
    while (*p) {
        const char *semi = strstr(p, "; ");
        size_t len = semi && line < 2 ? (size_t)(semi - p) + 1 : strlen(p);
        char part[512];
        snprintf(part, sizeof part, "%.*s", (int)len, p);
        sb_printf(b, "<tspan x=\"%d\" dy=\"%d\">", g->margin, line ? 13 : 0);
        sb_text(b, part);
        sb_puts(b, "</tspan>");
        p += len;
        while (*p == ' ') p++;
        line++;
    }
    sb_puts(b, "</text></svg>\n");
}

/* The same grid as greyscale pixels (white background, a grey frame around each tile). */
static unsigned char *filter_grid_pixels(const filter_grid *g, int *w, int *h)
{
    filter_grid_size(g, w, h);
    unsigned char *px = malloc((size_t)*w * (size_t)*h);
    if (!px) return NULL;
    memset(px, 255, (size_t)*w * (size_t)*h);
    int64_t k = g->kh * g->kw;
    int tw = (int)g->kw * g->scale, th = (int)g->kh * g->scale;
    for (int row = 0; row < g->rows; row++)
        for (int col = 0; col < g->cols; col++) {
            int64_t fi = g->channel_rows ? col : (int64_t)row * g->cols + col;
            int plane = g->channel_rows ? row : 0;
            if (fi >= g->f) continue;
            int x0, y0;
            tile_at(g, row, col, &x0, &y0);
            for (int y = -1; y <= th; y++)
                for (int x = -1; x <= tw; x++) {
                    unsigned char v = 160; /* the frame */
                    if (y >= 0 && y < th && x >= 0 && x < tw) {
                        const float *src = g->w + (fi * g->planes + plane) * k;
                        v = (unsigned char)filter_grey(g, fi, src[(y / g->scale) * g->kw + x / g->scale]);
                    }
                    px[(size_t)(y0 + y) * (size_t)*w + (size_t)(x0 + x)] = v;
                }
        }
    return px;
}

/* ------------------------------------------------------------------ test set */

/* Height and width when samples are greyscale images: [H, W], [1, H, W], or a flat square of >= 256 pixels
 * (MNIST as CSV).  False otherwise (no pictures then). */
static bool image_geometry(int ndim, const int64_t *shape, int *h, int *w)
{
    if (ndim == 2 || (ndim == 3 && shape[0] == 1)) {
        *h = (int)shape[ndim - 2];
        *w = (int)shape[ndim - 1];
        return *h > 0 && *w > 0 && *h <= 512 && *w <= 512;
    }
    if (ndim == 1 && shape[0] >= 256 && shape[0] <= 512 * 512) {
        int s = (int)lround(sqrt((double)shape[0]));
        if ((int64_t)s * s == shape[0]) {
            *h = *w = s;
            return true;
        }
    }
    return false;
}

typedef struct mistake {
    int64_t index;
    int truth, pred;
    double p; /* the predicted class's probability (softmax models), NaN otherwise */
} mistake;

/* The first `max` misclassified samples in test-set order, from the run's predictions (argmax, or a threshold
 * for one output, as evaluation counts them). */
static int find_mistakes(const dn_train_config *c, const dn_dataset *d, const dn_predictions *p, mistake *out, int max)
{
    bool softmax = !strcmp(c->loss, "softmax_cross_entropy") || !strcmp(c->loss, "softmax_cross_entropy_soft");
    int found = 0;
    for (int64_t i = 0; i < d->n && found < max; i++) {
        int64_t pred = p->classes[i], truth = (int64_t)d->y[i];
        if (p->outputs == 1 && !strcmp(c->loss, "hinge_loss")) truth = d->y[i] > 0;
        if (pred == truth) continue;
        /* softmax models: the predicted class's probability */
        double prob = softmax && p->outputs > 1 ? p->values[i * p->outputs + pred] : NAN;
        out[found++] = (mistake){i, (int)truth, (int)pred, prob};
    }
    return found;
}

static const char *const page_style =
    ":root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2563eb}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "\"Helvetica Neue\",Arial,\"Noto Sans\",sans-serif;-webkit-font-smoothing:antialiased}"
    "main{max-width:1360px;margin:0 auto;padding:32px 24px 48px}"
    "header h1{font-size:26px;font-weight:650;margin:0 0 4px;letter-spacing:-.01em}"
    "header p{margin:0;color:var(--muted)}"
    "code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\",monospace;font-size:13px}"
    "h2{font-size:18px;font-weight:600;margin:36px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:20px 0 4px}"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 16px;min-width:130px}"
    ".card b{display:block;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}"
    ".card b small{font-size:12px;font-weight:400;color:var(--muted);margin-left:6px}"
    ".card span{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,540px),1fr));gap:16px}"
    "figure{margin:0}"
    ".chart svg,.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;max-width:100%;height:auto}"
    ".panel{padding:16px;display:inline-block}"
    ".ct{font-size:15px;font-weight:600;fill:#1f2933}.lg{font-size:12px;fill:#3e4c59}"
    ".tick{font-size:11px;fill:#616e7c;font-variant-numeric:tabular-nums}.al{font-size:12px;fill:#3e4c59}"
    ".grid{stroke:#eef0f3;stroke-width:1}.axis{stroke:#9aa5b1;stroke-width:1}.note{font-size:13px;fill:#9aa5b1}"
    "svg text{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif}"
    "table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:10px;"
    "font-variant-numeric:tabular-nums}"
    "th,td{padding:5px 14px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap}"
    "th{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}"
    "td.num,th.num{text-align:right}tr:last-child td{border-bottom:0}"
    ".foot{color:var(--muted);margin:8px 0 0;font-size:14px}"
    ".warn{background:#fff8e6;border:1px solid #f5d48a;border-radius:8px;padding:10px 14px;color:#7a5200}"
    ".mistakes{display:flex;flex-wrap:wrap;gap:10px}"
    ".mistakes figure{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px;text-align:center}"
    ".mistakes img{display:block;width:84px;height:84px;image-rendering:pixelated;border-radius:4px}"
    ".mistakes figcaption{font-size:13px;margin-top:4px;font-variant-numeric:tabular-nums}"
    ".mistakes figcaption small{display:block;color:var(--muted);font-size:11px}"
    "details summary{cursor:pointer;color:var(--accent);margin:8px 0}"
    "footer{margin-top:40px;color:var(--muted);font-size:13px}";

static void card_note(sbuf *b, const char *label, const char *value, const char *note)
{
    sb_puts(b, "<div class=\"card\"><span>");
    sb_text(b, label);
    sb_puts(b, "</span><b>");
    sb_text(b, value);
    if (note) {
        sb_puts(b, "<small>");
        sb_text(b, note);
        sb_puts(b, "</small>");
    }
    sb_puts(b, "</b></div>");
}

static void card(sbuf *b, const char *label, const char *value) { card_note(b, label, value, NULL); }

static void card_num(sbuf *b, const char *label, double v, const char *fmt)
{
    char buf[64];
    if (!isfinite(v)) return;
    snprintf(buf, sizeof buf, fmt, v);
    card(b, label, buf);
}

static void summary_cards(sbuf *b, const run_log *log)
{
    const epoch_rec *last = &log->r[log->n - 1];
    double secs = 0, sps = 0, best_acc = NAN, best_acc_ep = 0, best_loss = NAN, best_loss_ep = 0;
    int sps_n = 0;
    for (int i = 0; i < log->n; i++) {
        const epoch_rec *r = &log->r[i];
        if (!isnan(r->seconds)) secs += r->seconds;
        if (!isnan(r->samples_per_sec)) {
            sps += r->samples_per_sec;
            sps_n++;
        }
        /* "not worse than the best so far" is also true while the best is still NaN */
        if (!isnan(r->val_accuracy) && !(r->val_accuracy <= best_acc)) {
            best_acc = r->val_accuracy;
            best_acc_ep = r->epoch;
        }
        if (!isnan(r->val_loss) && !(r->val_loss >= best_loss)) {
            best_loss = r->val_loss;
            best_loss_ep = r->epoch;
        }
    }
    char buf[64], note[32];
    sb_puts(b, "<div class=\"cards\">");
    snprintf(buf, sizeof buf, "%g", last->epoch);
    card(b, "epochs", buf);
    card_num(b, "final train loss", last->train_loss, "%.4f");
    card_num(b, "final train accuracy", last->train_accuracy * 100, "%.2f%%");
    if (!isnan(best_loss)) {
        snprintf(buf, sizeof buf, "%.4f", best_loss);
        snprintf(note, sizeof note, "epoch %g", best_loss_ep);
        card_note(b, "best val loss", buf, note);
    }
    if (!isnan(best_acc)) {
        snprintf(buf, sizeof buf, "%.2f%%", best_acc * 100);
        snprintf(note, sizeof note, "epoch %g", best_acc_ep);
        card_note(b, "best val accuracy", buf, note);
    }
    card_num(b, "final learning rate", last->lr, "%.3g");
    card_num(b, "samples / s", sps_n ? sps / sps_n : NAN, "%.0f");
    if (secs > 0) {
        if (secs < 120) snprintf(buf, sizeof buf, "%.1f s", secs);
        else snprintf(buf, sizeof buf, "%.0f min %.0f s", floor(secs / 60), fmod(secs, 60));
        card(b, "training time", buf);
    }
    sb_puts(b, "</div>\n");
}

static void epoch_table(sbuf *b, const run_log *log)
{
    static const char *const heads[] = {"epoch",   "train loss", "train acc", "val loss",
                                        "val acc", "lr",         "samples/s", "seconds"};
    sb_printf(b, "<details><summary>Per-epoch figures (%d epochs)</summary><table><tr>", log->n);
    for (size_t k = 0; k < sizeof heads / sizeof heads[0]; k++) sb_printf(b, "<th class=\"num\">%s</th>", heads[k]);
    sb_puts(b, "</tr>\n");
    for (int i = 0; i < log->n; i++) {
        sb_puts(b, "<tr>");
        for (size_t k = 0; k < N_REC_KEYS; k++) {
            char num[32];
            fmt_num(num, sizeof num, *(const double *)((const char *)&log->r[i] + rec_keys[k].offset));
            sb_printf(b, "<td class=\"num\">%s</td>", num);
        }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</table></details>\n");
}

/* dn_model_summary's text as an HTML table: columns are separated by two or more spaces; lines with a single
 * field (the totals) go below the table.  Anything unexpected is shown as the plain text instead. */
static void summary_table(sbuf *b, const char *text)
{
    enum { MAXC = 12, MAXLEN = 128 };
    int rows = 0, ncols = 0;
    bool ok = true;
    sbuf body = {0}, foot = {0};
    char cells[MAXC][MAXLEN];
    bool numeric[MAXC];
    for (int k = 0; k < MAXC; k++) numeric[k] = true;
    /* two passes: the first decides which columns are numeric (right-aligned), the second writes */
    for (int pass = 0; pass < 2 && ok; pass++) {
        const char *p = text;
        rows = 0;
        while (*p && ok) {
            const char *end = strchr(p, '\n');
            if (!end) end = p + strlen(p);
            int n = 0;
            const char *q = p;
            while (q < end && n < MAXC) {
                while (q < end && *q == ' ') q++;
                if (q >= end) break;
                const char *start = q;
                while (q < end && !(q[0] == ' ' && (q + 1 >= end || q[1] == ' '))) q++;
                size_t len = (size_t)(q - start);
                if (len >= MAXLEN) len = MAXLEN - 1;
                memcpy(cells[n], start, len);
                cells[n++][len] = '\0';
            }
            if (q < end) ok = false; /* more columns than we expect */
            if (rows == 0 && n < 2) ok = false;
            if (rows == 0) ncols = n;
            if (n > ncols) ok = false;
            if (!ok) break;
            if (n >= 2) {
                for (int k = 0; k < n && pass == 0 && rows > 0; k++)
                    if (strspn(cells[k], "0123456789.,kMGT") != strlen(cells[k])) numeric[k] = false;
                if (pass == 1) {
                    const char *tag = rows == 0 ? "th" : "td";
                    sb_puts(&body, "<tr>");
                    for (int k = 0; k < ncols; k++) {
                        sb_printf(&body, "<%s%s>", tag, numeric[k] && k > 0 ? " class=\"num\"" : "");
                        if (k < n) sb_text(&body, cells[k]);
                        sb_printf(&body, "</%s>", tag);
                    }
                    sb_puts(&body, "</tr>\n");
                }
                rows++;
            } else if (n == 1 && pass == 1) {
                sb_puts(&foot, "<p class=\"foot\">");
                sb_text(&foot, cells[0]);
                sb_puts(&foot, "</p>");
            }
            p = *end ? end + 1 : end;
        }
    }
    if (ok && rows > 1 && !body.oom && !foot.oom) {
        sb_puts(b, "<table class=\"summary\">\n");
        sb_puts(b, body.s);
        sb_puts(b, "</table>");
        if (foot.s) sb_puts(b, foot.s);
    } else {
        sb_puts(b, "<pre class=\"panel\">");
        sb_text(b, text);
        sb_puts(b, "</pre>");
    }
    sb_puts(b, "\n");
    free(body.s);
    free(foot.s);
}

/* A heat map of the confusion matrix (rows: true class, columns: predicted).  Colour is each cell's share of
 * its row: blue on the diagonal (correct), orange off it (mistakes, drawn stronger: a square root lifts rare
 * errors into view).  Counts are printed in cells big enough to hold them. */
static void confusion_svg(sbuf *b, const int64_t *conf, int k)
{
    int cell = k <= 10 ? 44 : 480 / k < 6 ? 6 : 480 / k;
    int left = 70, top = 64, gw = cell * k;
    int w = left + gw + 24, h = top + gw + 40;
    if (w < 360) w = 360;
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "class=\"panel heatmap\" role=\"img\" aria-label=\"confusion matrix\"><title>Confusion matrix (rows: "
                 "true class, columns: predicted class)</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>",
              w, h, w, h, w, h);
    sb_printf(b, "<text x=\"%d\" y=\"22\" class=\"al\" text-anchor=\"middle\">predicted class</text>", left + gw / 2);
    sb_printf(b, "<text transform=\"translate(20 %d) rotate(-90)\" class=\"al\" text-anchor=\"middle\">true class</text>",
              top + gw / 2);
    bool labels = cell >= 14, counts = cell >= 22;
    for (int i = 0; i < k; i++) {
        int64_t row = 0;
        for (int j = 0; j < k; j++) row += conf[i * k + j];
        if (labels) {
            sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%d</text>",
                      left + i * cell + cell / 2, top - 8, i);
            sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%d</text>", left - 8,
                      top + i * cell + cell / 2 + 4, i);
        }
        for (int j = 0; j < k; j++) {
            int64_t n = conf[i * k + j];
            double share = row ? (double)n / (double)row : 0;
            /* mix white with the hue: t = share on the diagonal, sqrt(share) (x2, capped) off it */
            double t = i == j ? share : fmin(1.0, 2.0 * sqrt(share));
            int r0 = i == j ? 37 : 234, g0 = i == j ? 99 : 88, b0 = i == j ? 235 : 12;
            int r = (int)lround(255 + (r0 - 255) * t), g = (int)lround(255 + (g0 - 255) * t),
                bl = (int)lround(255 + (b0 - 255) * t);
            sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" stroke=\"#eef0f3\">"
                         "<title>true %d, predicted %d: %lld (%.1f%% of class %d)</title></rect>",
                      left + j * cell, top + i * cell, cell, cell, r, g, bl, i, j, (long long)n, 100 * share, i);
            if (counts && n)
                sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"%d\" fill=\"%s\">%lld</text>",
                          left + j * cell + cell / 2, top + i * cell + cell / 2 + 4, cell >= 40 ? 12 : 9,
                          t > 0.55 ? "#fff" : "#1f2933", (long long)n);
        }
    }
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#9aa5b1\"/>", left, top,
              gw, gw);
    sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"tick\">colour: share of the true class (blue: correct, orange: "
                 "mistakes)</text></svg>\n",
              left, top + gw + 26);
}

/* A sample as a PNG data URI: [0,1] values map to 0..255 (MNIST's scaling), anything else to its own min..max. */
static void sample_img(sbuf *b, const float *x, int h, int w)
{
    size_t n = (size_t)h * (size_t)w;
    unsigned char *px = malloc(n);
    if (!px) {
        b->oom = true;
        return;
    }
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    if (lo >= 0 && hi <= 1) lo = 0, hi = 1;
    for (size_t i = 0; i < n; i++) px[i] = hi > lo ? (unsigned char)lrintf((x[i] - lo) / (hi - lo) * 255.0f) : 0;
    sbuf png = {0};
    png_encode_grey(&png, px, w, h, NULL);
    free(px);
    if (png.oom) b->oom = true;
    sb_puts(b, "data:image/png;base64,");
    if (!png.oom) sb_base64(b, (const unsigned char *)png.s, png.len);
    free(png.s);
}

/* The checkpoint's half of the page: layer table, test-set figures, confusion matrix, mistakes, filters. */
static int model_sections(sbuf *b, const char *ckpt, const char *data)
{
    dn_run *run = NULL;
    if (dn_run_load(ckpt, &run)) {
        fprintf(stderr, "dendrite report: %s\n", dn_last_error());
        return 1;
    }
    dn_model *m = dn_run_model(run);
    const dn_train_config *cp = dn_run_config(run);
    const dn_train_config c = *cp;
    int rc = 1;
    char *text = NULL;
    mistake *mis = NULL;
    float *pixels = NULL; /* one test sample, for its picture */
    dn_predictions *pred = NULL;
    const dn_dataset *test = NULL;
    filter_grid g = {0};

    sb_puts(b, "<h2>Model</h2>\n");
    size_t need = dn_model_summary(m, NULL, 0) + 1;
    if (!(text = malloc(need))) goto oom;
    dn_model_summary(m, text, need);
    summary_table(b, text);
    sb_printf(b, "<p class=\"foot\">loss <code>%s</code>, optimizer <code>%s</code>, batch %lld, learning rate %g</p>\n",
              c.loss, dn_optim_kind_name(c.optim.kind), (long long)c.batch, (double)c.optim.lr);

    int gr = filter_grid_build(m, &g);
    if (gr < 0) goto oom;

    /* the test set as `dendrite eval` finds it, normalised as in training (the run API's one code path) */
    char why[1400] = "";
    if (!strcmp(c.data_format, "text"))
        snprintf(why, sizeof why, "character models are not evaluated in the report (use dendrite generate)");
    else if (dn_run_load_test(run, data))
        snprintf(why, sizeof why, "%s", dn_last_error());
    else
        test = dn_run_test_set(run);
    sb_puts(b, "<h2>Test set</h2>\n");
    if (!test) {
        fprintf(stderr, "dendrite report: warning: no test-set sections: %s\n", why);
        sb_puts(b, "<p class=\"warn\">No test-set evaluation: ");
        sb_text(b, why);
        sb_puts(b, "</p>\n");
    } else {
        int img_h = 0, img_w = 0;
        bool images = image_geometry(test->ndim, test->shape, &img_h, &img_w);
        dn_run_eval r;
        if (dn_run_evaluate(run, NULL, &r)) {
            fprintf(stderr, "dendrite report: evaluating %s: %s\n", ckpt, dn_last_error());
            goto out;
        }
        int k = dn_dataset_target_size(test) == 1 ? r.n_classes : 0;
        sb_puts(b, "<div class=\"cards\">");
        card_num(b, "test loss", r.loss, "%.4f");
        card_num(b, "test accuracy", r.accuracy * 100, "%.2f%%");
        card_num(b, "test samples", (double)r.n, "%.0f");
        if (k > 0 && isfinite(r.accuracy)) card_num(b, "mistakes", (double)r.n - r.accuracy * (double)r.n, "%.0f");
        sb_puts(b, "</div>\n");
        if (k > 0 && k <= 100) {
            sb_puts(b, "<h2>Confusion matrix</h2>\n");
            confusion_svg(b, r.confusion, k);
        }
        if (k > 0 && images) {
            enum { MAX_SHOWN = 32 };
            if (!(mis = malloc(MAX_SHOWN * sizeof *mis))) goto oom;
            if (dn_run_predict_set(run, test, &pred)) {
                fprintf(stderr, "dendrite report: predicting with %s: %s\n", ckpt, dn_last_error());
                goto out;
            }
            int found = find_mistakes(&c, test, pred, mis, MAX_SHOWN);
            sb_printf(b, "<h2>Misclassified test images <small class=\"foot\">(the first %d, true &rarr; predicted)</small>"
                         "</h2>\n<div class=\"mistakes\">\n",
                      found);
            /* one sample as floats, whether the test set holds floats or bytes */
            if (!(pixels = malloc((size_t)dn_dataset_sample_size(test) * sizeof *pixels))) goto oom;
            for (int i = 0; i < found; i++) {
                sb_printf(b, "<figure title=\"test sample #%lld\"><img alt=\"test sample %lld\" src=\"",
                          (long long)mis[i].index, (long long)mis[i].index);
                dn_dataset_get(test, mis[i].index, 1, pixels);
                sample_img(b, pixels, img_h, img_w);
                sb_printf(b, "\"><figcaption>%d &rarr; %d", mis[i].truth, mis[i].pred);
                if (!isnan(mis[i].p)) sb_printf(b, "<small>p = %.2f · #%lld</small>", mis[i].p, (long long)mis[i].index);
                else sb_printf(b, "<small>#%lld</small>", (long long)mis[i].index);
                sb_puts(b, "</figcaption></figure>\n");
            }
            if (!found) sb_puts(b, "<p class=\"foot\">None: every test sample is classified correctly.</p>");
            sb_puts(b, "</div>\n");
        }
    }
    if (gr == 0) {
        sb_puts(b, "<h2>First-layer filters</h2>\n<div class=\"panel\">");
        filter_grid_svg(b, &g, false);
        sb_puts(b, "</div>\n");
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "dendrite report: out of memory\n");
out:
    filter_grid_free(&g);
    free(text);
    free(mis);
    free(pixels);
    dn_predictions_free(pred);
    dn_run_free(run);
    return rc;
}

static const char *const usage_report =
    "usage: dendrite report LOG.jsonl [CKPT] [-o report.html] [--data DIR|FILE]\n"
    "Writes one self-contained HTML page: loss, accuracy and learning-rate curves from a training log\n"
    "(`dendrite train --log LOG.jsonl`) and, given the checkpoint, its layers, the test-set confusion matrix,\n"
    "misclassified test images and first-layer filters.  The test set is found as `dendrite eval` finds it.\n"
    "  -o FILE          the page (default report.html)\n"
    "  --data DIR|FILE  test data (MNIST folder or CSV file; default: the cfg's [data] section)\n";

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

int dn_cli_report(int argc, char **argv)
{
    const char *log_path = NULL, *ckpt = NULL, *out = "report.html", *data = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (is_help(a)) {
            fputs(usage_report, stdout);
            return 0;
        }
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out = argv[++i];
        else if (!strcmp(a, "--data") && has) data = argv[++i];
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dendrite report: unknown option or missing value: '%s'\n", a);
            fputs(usage_report, stderr);
            return EXIT_USAGE;
        } else if (!log_path) log_path = a;
        else if (!ckpt) ckpt = a;
        else {
            fprintf(stderr, "dendrite report: unexpected argument '%s'\n", a);
            fputs(usage_report, stderr);
            return EXIT_USAGE;
        }
    }
    if (!log_path) {
        fputs(usage_report, stderr);
        return EXIT_USAGE;
    }
    run_log log = {0};
    if (read_log(log_path, &log)) {
        free(log.r);
        return 1;
    }

    sbuf b = {0};
    sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>dendrite report: ");
    sb_text(&b, log_path);
    sb_puts(&b, "</title>\n<style>");
    sb_puts(&b, page_style);
    sb_puts(&b, "</style></head>\n<body><main>\n<header><h1>Training report</h1><p>log <code>");
    sb_text(&b, log_path);
    sb_puts(&b, "</code>");
    if (ckpt) {
        sb_puts(&b, " · checkpoint <code>");
        sb_text(&b, ckpt);
        sb_puts(&b, "</code>");
    }
    sb_puts(&b, "</p></header>\n");
    summary_cards(&b, &log);

    const epoch_rec *r0 = log.r;
    series loss[] = {{"training", "#2563eb", &r0->train_loss}, {"validation", "#ea580c", &r0->val_loss}};
    series acc[] = {{"training", "#2563eb", &r0->train_accuracy}, {"validation", "#ea580c", &r0->val_accuracy}};
    series lr[] = {{"learning rate", "#7c3aed", &r0->lr}};
    sb_puts(&b, "<h2>Training curves</h2>\n<div class=\"charts\">\n");
    svg_line_chart(&b, "Loss", "loss", &log, loss, 2);
    svg_line_chart(&b, "Accuracy", "accuracy", &log, acc, 2);
    svg_line_chart(&b, "Learning rate", "learning rate", &log, lr, 1);
    sb_puts(&b, "</div>\n");
    if (log.replaced)
        sb_printf(&b, "<p class=\"foot\">The log goes back in epochs (a resumed run appends to it): the %d earlier "
                      "record%s it restarts over %s not drawn.</p>\n",
                  log.replaced, log.replaced == 1 ? "" : "s", log.replaced == 1 ? "is" : "are");
    epoch_table(&b, &log);

    int rc = ckpt ? model_sections(&b, ckpt, data) : 0;
    if (!rc) {
        sb_puts(&b, "<footer>Made by <code>dendrite report</code> " DN_VERSION ". Self-contained: no scripts, fonts or "
                    "files outside this page.</footer>\n</main></body></html>\n");
        rc = write_atomic("report", out, &b);
    }
    if (!rc)
        fprintf(stderr, "dendrite report: wrote %s (%d epoch%s%s)\n", out, log.n, log.n == 1 ? "" : "s",
                ckpt ? ", with the checkpoint" : "");
    free(b.s);
    free(log.r);
    return rc;
}

/* ------------------------------------------------------------------ visualize */

static const char *const usage_visualize =
    "usage: dendrite visualize CKPT [-o filters.svg|filters.png]\n"
    "Draws the first convolutional layer's filters as greyscale tiles, each filter scaled to its own min..max.\n"
    "With up to 8 input channels each channel is a row; with more, the channels are averaged.  The format\n"
    "follows the extension (default filters.svg); the PNG carries the caption as its Description.\n";

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k) return false;
    for (size_t i = 0; i < k; i++) {
        char c = s[n - k + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suffix[i]) return false;
    }
    return true;
}

int dn_cli_visualize(int argc, char **argv)
{
    const char *ckpt = NULL, *out = "filters.svg";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(usage_visualize, stdout);
            return 0;
        }
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) out = argv[++i];
        else if (a[0] == '-' || ckpt) {
            fprintf(stderr, "dendrite visualize: unexpected argument '%s'\n", a);
            fputs(usage_visualize, stderr);
            return EXIT_USAGE;
        } else ckpt = a;
    }
    if (!ckpt) {
        fputs(usage_visualize, stderr);
        return EXIT_USAGE;
    }
    bool png = ends_with(out, ".png");
    if (!png && !ends_with(out, ".svg")) {
        fprintf(stderr, "dendrite visualize: %s: the output must end in .svg or .png\n", out);
        return EXIT_USAGE;
    }
    dn_model *m = NULL;
    if (dn_model_load(ckpt, &m, NULL)) {
        fprintf(stderr, "dendrite visualize: %s\n", dn_last_error());
        return 1;
    }
    filter_grid g;
    int gr = filter_grid_build(m, &g), rc = 1;
    if (gr > 0)
        fprintf(stderr, "dendrite visualize: %s has no convolutional layer (no 4-D weight), so no filters to draw\n",
                ckpt);
    if (gr < 0) fprintf(stderr, "dendrite visualize: out of memory\n");
    if (gr == 0) {
        char caption[512];
        filter_caption(&g, caption, sizeof caption);
        sbuf b = {0};
        if (png) {
            int w, h;
            unsigned char *px = filter_grid_pixels(&g, &w, &h);
            if (!px) b.oom = true;
            else {
                /* tEXt is Latin-1: spell the caption's "×" as "x" there */
                char latin[512];
                size_t j = 0;
                for (const char *p = caption; *p && j + 1 < sizeof latin; p++) {
                    if ((unsigned char)*p == 0xc3 && (unsigned char)p[1] == 0x97) {
                        latin[j++] = 'x';
                        p++;
                    } else if ((unsigned char)*p < 0x80) latin[j++] = *p;
                }
                latin[j] = '\0';
                png_encode_grey(&b, px, w, h, latin);
                free(px);
            }
        } else {
            filter_grid_svg(&b, &g, true);
        }
        rc = write_atomic("visualize", out, &b);
        if (!rc) fprintf(stderr, "dendrite visualize: wrote %s: %s\n", out, caption);
        free(b.s);
    }
    filter_grid_free(&g);
    dn_model_free(m);
    return rc;
}
