/* The page buffer of `dendrite report` / `visualize`, with HTML escaping, base64 and atomic writes. */
#include "report_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ a growable byte buffer */

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

void sb_put(sbuf *b, const void *p, size_t n)
{
    if (!sb_reserve(b, n)) return;
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

void sb_byte(sbuf *b, unsigned char c) { sb_put(b, &c, 1); }

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 2, 3)))
#endif
void sb_printf(sbuf *b, const char *fmt, ...)
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
void sb_text(sbuf *b, const char *s)
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

void sb_base64(sbuf *b, const unsigned char *p, size_t n)
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
int write_atomic(const char *cmd, const char *path, const sbuf *b)
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
