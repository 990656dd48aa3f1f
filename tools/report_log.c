/* `dendrite report`: the --log reader. */
#include "report_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ the log: a tiny JSON-lines reader */

const rec_key rec_keys[] = {
    {"epoch", offsetof(epoch_rec, epoch)},
    {"train_loss", offsetof(epoch_rec, train_loss)},
    {"train_accuracy", offsetof(epoch_rec, train_accuracy)},
    {"val_loss", offsetof(epoch_rec, val_loss)},
    {"val_accuracy", offsetof(epoch_rec, val_accuracy)},
    {"lr", offsetof(epoch_rec, lr)},
    {"samples_per_sec", offsetof(epoch_rec, samples_per_sec)},
    {"seconds", offsetof(epoch_rec, seconds)},
};
const size_t n_rec_keys = sizeof rec_keys / sizeof rec_keys[0];

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
    for (size_t k = 0; k < n_rec_keys; k++) *(double *)((char *)r + rec_keys[k].offset) = NAN;
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
            while (k < n_rec_keys && strcmp(key, rec_keys[k].key)) k++;
            if (k == n_rec_keys) {
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

/* Reads a --log file.  A resumed run appends to its log, starting again from the checkpoint's epoch: a
 * record whose epoch is not after the previous one replaces the records from that epoch on, so the
 * curves show the run that produced the final weights.  Returns 0, or 1 with a message on stderr. */
int read_log(const char *path, run_log *log)
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
