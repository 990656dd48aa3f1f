/* Numeric CSV files: one sample per row, comma-separated numbers, one of the columns is the target.
 * Lines are read one at a time (no whole-file buffer); errors name the file, line and column (1-based, as
 * an editor shows them). */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

/* Labels are class indices when every one is an integer in [0, MAX_CLASS_LABEL): larger integers could not
 * be stored exactly in a float and are more likely measurements. */
#define MAX_CLASS_LABEL 16777216.0

typedef struct csv_reader {
    const char *path;
    FILE *f;
    char *buf;      /* the current line, NUL-terminated, without "\n" or "\r\n" */
    size_t cap, len;
    int64_t line;   /* 1-based number of the current line */
    dn_status err;  /* why read_line returned -1 */
} csv_reader;

static int reader_fail(csv_reader *r, dn_status s)
{
    r->err = s;
    return -1;
}

/* Reads the next line into r->buf.  Returns 1, 0 at the end of the file, or -1 on error (r->err). */
static int read_line(csv_reader *r)
{
    r->len = 0;
    int c = getc(r->f);
    if (c == EOF) {
        if (ferror(r->f))
            return reader_fail(r, dn_error(DN_ERR_IO, "%s: read error after line %lld", r->path, (long long)r->line));
        return 0;
    }
    r->line++;
    for (;; c = getc(r->f)) {
        /* one spare byte for the NUL, whatever the line's length (an empty line too) */
        if (r->len + 2 > r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 256;
            char *b = dn_realloc(r->buf, cap);
            if (!b) return reader_fail(r, DN_ERR_NOMEM);
            r->buf = b;
            r->cap = cap;
        }
        if (c == EOF || c == '\n') break;
        if (c == '\0')
            return reader_fail(r, dn_error(DN_ERR_FORMAT, "%s:%lld: contains a NUL byte (not a text file?)", r->path,
                                           (long long)r->line));
        r->buf[r->len++] = (char)c;
    }
    if (ferror(r->f))
        return reader_fail(r, dn_error(DN_ERR_IO, "%s:%lld: read error", r->path, (long long)r->line));
    if (r->len && r->buf[r->len - 1] == '\r') r->len--; /* CRLF files */
    r->buf[r->len] = '\0';
    return 1;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return false;
    return true;
}

/* Reads the next line that is not blank (blank lines, e.g. a trailing one, are skipped). */
static int next_row(csv_reader *r)
{
    int got;
    while ((got = read_line(r)) == 1 && is_blank(r->buf)) {
    }
    return got;
}

static int count_fields(const char *s)
{
    int n = 1;
    for (; *s; s++) n += *s == ',';
    return n;
}

/* Splits the current line in place: fields[i] points at field i, trimmed and NUL-terminated. */
static void split_fields(char *s, char **fields, int n)
{
    for (int i = 0; i < n; i++) {
        char *e = strchr(s, ',');
        if (e) *e = '\0';
        while (*s == ' ' || *s == '\t') s++;
        char *t = s + strlen(s);
        while (t > s && (t[-1] == ' ' || t[-1] == '\t')) *--t = '\0';
        fields[i] = s;
        s = e ? e + 1 : s + strlen(s);
    }
}

/* A whole field as a finite float.  Returns NULL on success, else why it is not one. */
static const char *parse_number(const char *s, float *out)
{
    if (!*s) return "empty field, expected a number";
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return "is not a number";
    if (!isfinite(v)) return "is not a finite number";
    if (fabs(v) > 3.4028234663852886e38) return "is outside the float32 range";
    *out = (float)v;
    return NULL;
}

static bool row_is_numeric(char *line)
{
    int n = count_fields(line);
    for (char *s = line; n > 0; n--) {
        char *e = strchr(s, ',');
        if (e) *e = '\0';
        while (*s == ' ' || *s == '\t') s++;
        char *t = s + strlen(s);
        while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
        char save = *t;
        *t = '\0';
        float v;
        bool ok = parse_number(s, &v) == NULL;
        *t = save;
        if (e) *e = ',';
        if (!ok) return false;
        s = e ? e + 1 : t;
    }
    return true;
}

/* Grows *p (count elements of size sz) to hold at least need elements, doubling. */
static bool grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 1024;
    while (c < need) {
        if (c > SIZE_MAX / 2 / sz) return false;
        c *= 2;
    }
    void *q = dn_realloc(*p, c * sz);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

dn_status dn_dataset_load_csv(const char *path, int label_col, int header, dn_dataset **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_dataset_load_csv: out must not be NULL");
    *out = NULL;
    if (!path) return dn_error(DN_ERR_ARG, "dn_dataset_load_csv: no path given");
    if (header < -1 || header > 1)
        return dn_error(DN_ERR_ARG, "dn_dataset_load_csv: header must be 1 (skip), 0 (none) or -1 (detect), not %d",
                        header);
    csv_reader r = {path, fopen(path, "rb"), NULL, 0, 0, 0, DN_OK};
    if (!r.f) return dn_error(DN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(r.f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(r.f);
        return dn_error(DN_ERR_IO, "cannot read %s: it is a directory", path);
    }

    dn_status s = DN_OK;
    char **fields = NULL;
    float *x = NULL, *y = NULL;
    size_t x_cap = 0, y_cap = 0;
    int64_t n = 0;
    int got = next_row(&r);
    if (got < 0) goto fail;
    if (got == 0) {
        s = dn_error(DN_ERR_FORMAT, "%s: empty file (no rows)", path);
        goto fail;
    }
    int64_t header_line = r.line;
    if (header == 1 || (header == -1 && !row_is_numeric(r.buf))) {
        if ((got = next_row(&r)) < 0) goto fail;
        if (got == 0) {
            s = dn_error(DN_ERR_FORMAT, "%s: no data rows after the header on line %lld", path, (long long)header_line);
            goto fail;
        }
    }
    int64_t first_line = r.line;
    int ncols = count_fields(r.buf);
    /* without a label column every field is a feature: one column is enough, and the row keeps ncols
     * features; nfeat counts what goes into x */
    bool no_label = label_col == DN_CSV_NO_LABEL;
    if (ncols < (no_label ? 1 : 2)) {
        s = dn_error(DN_ERR_FORMAT, "%s:%lld: found 1 column; a data set needs at least one feature and a label "
                     "(is the separator a comma?)", path, (long long)r.line);
        goto fail;
    }
    int lc = no_label ? -1 : (label_col < 0 ? label_col + ncols : label_col);
    if (!no_label && (lc < 0 || lc >= ncols)) {
        s = dn_error(DN_ERR_ARG, "%s: label column %d is out of range for %d columns (use 0..%d, or -1..-%d from the "
                     "end)", path, label_col, ncols, ncols - 1, ncols);
        goto fail;
    }
    int nfeat = no_label ? ncols : ncols - 1;
    fields = dn_alloc((size_t)ncols * sizeof *fields);
    if (!fields) goto fail;

    bool classes = true; /* every label so far a non-negative integer */
    float max_label = 0.0f;
    for (; got == 1; got = next_row(&r)) {
        int nf = count_fields(r.buf);
        if (nf != ncols) {
            s = dn_error(DN_ERR_FORMAT, "%s: line %lld has %d columns, expected %d (as line %lld)", path,
                         (long long)r.line, nf, ncols, (long long)first_line);
            goto fail;
        }
        if (!grow((void **)&x, &x_cap, (size_t)(n + 1) * (size_t)nfeat, sizeof *x) ||
            !grow((void **)&y, &y_cap, (size_t)n + 1, sizeof *y)) {
            s = dn_error(DN_ERR_NOMEM, "%s:%lld: out of memory after %lld rows", path, (long long)r.line, (long long)n);
            goto fail;
        }
        split_fields(r.buf, fields, ncols);
        float *row = x + n * nfeat;
        if (no_label) y[n] = 0.0f;
        for (int c = 0; c < ncols; c++) {
            float v;
            const char *why = parse_number(fields[c], &v);
            if (why) {
                if (*fields[c])
                    s = dn_error(DN_ERR_FORMAT, "%s:%lld: column %d: '%.40s' %s", path, (long long)r.line, c + 1,
                                 fields[c], why);
                else
                    s = dn_error(DN_ERR_FORMAT, "%s:%lld: column %d: %s", path, (long long)r.line, c + 1, why);
                goto fail;
            }
            if (c == lc) {
                y[n] = v;
                if (v < 0.0f || v != floorf(v) || v >= MAX_CLASS_LABEL) classes = false;
                else if (v > max_label) max_label = v;
            } else {
                *row++ = v;
            }
        }
        n++;
    }
    if (got < 0) goto fail;

    dn_dataset *d = dn_calloc(1, sizeof *d);
    if (!d) goto fail;
    /* give back the slack of the doubling */
    float *xs = dn_realloc(x, (size_t)n * (size_t)nfeat * sizeof *x);
    if (xs) x = xs;
    float *ys = dn_realloc(y, (size_t)n * sizeof *y);
    if (ys) y = ys;
    d->n = n;
    d->ndim = 1;
    d->shape[0] = nfeat;
    d->x = x;
    d->y = y;
    d->n_classes = classes && !no_label ? 1 + (int)max_label : 0;
    dn_free(fields);
    dn_free(r.buf);
    fclose(r.f);
    *out = d;
    return DN_OK;
fail:
    /* the paths that jump here without a status failed in read_line or ran out of memory */
    if (s == DN_OK) s = r.err ? r.err : DN_ERR_NOMEM;
    dn_free(fields);
    dn_free(x);
    dn_free(y);
    dn_free(r.buf);
    fclose(r.f);
    return s;
}
