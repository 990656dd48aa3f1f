/* safetensors reader and writer (see safetensors.h).  The JSON header is parsed by a small strict parser
 * that knows the schema: the top-level object, "__metadata__" (string -> string) and tensor objects
 * (dtype, shape, data_offsets; other keys are skipped, as the reference implementation does). */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ bytes */

static bool host_is_little_endian(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void swap4(void *p, int64_t n)
{
    unsigned char *b = p;
    for (int64_t i = 0; i < n; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.  Returns the length of
 * the sequence at s (at most n bytes available), or 0 if it is malformed. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = utf8_seq_len(p, n);
        if (!k) return false;
        p += k;
        n -= k;
    }
    return true;
}

/* ------------------------------------------------------------------ a growable string for the header */

typedef struct sbuf {
    char *data;
    size_t len, cap;
    bool nomem;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->nomem) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = dn_realloc(b->data, cap);
        if (!d) {
            b->nomem = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_int(sbuf *b, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal.  Bytes >= 0x80 pass through: s was checked to be UTF-8, which JSON allows. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sb_put(b, "\\\"", 2); break;
        case '\\': sb_put(b, "\\\\", 2); break;
        case '\n': sb_put(b, "\\n", 2); break;
        case '\r': sb_put(b, "\\r", 2); break;
        case '\t': sb_put(b, "\\t", 2); break;
        case '\b': sb_put(b, "\\b", 2); break;
        case '\f': sb_put(b, "\\f", 2); break;
        default:
            if (*p < 0x20 || *p == 0x7F) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                sb_put(b, esc, 6);
            } else {
                sb_put(b, (const char *)p, 1);
            }
        }
    }
    sb_put(b, "\"", 1);
}

/* ------------------------------------------------------------------ writing */

static int64_t numel_of(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int64_t dn_st_numel(const dn_st_entry *e) { return e ? numel_of(e->ndim, e->shape) : 0; }

/* Checks what the caller asks us to write; nothing touches the disk before this passes. */
static dn_status check_write_args(const char *path, int n, const dn_st_entry *entries, int n_meta,
                                  const char *const *keys, const char *const *values)
{
    if (!path || !*path) return dn_error(DN_ERR_ARG, "dn_st_write: no path given");
    if (n < 0 || (n > 0 && !entries)) return dn_error(DN_ERR_ARG, "dn_st_write %s: bad tensor list (n = %d)", path, n);
    if (n_meta < 0 || (n_meta > 0 && (!keys || !values)))
        return dn_error(DN_ERR_ARG, "dn_st_write %s: bad metadata list (n_meta = %d)", path, n_meta);
    /* Bytes of data so far: every offset must fit in an int64 for readers in any language. */
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const dn_st_entry *e = &entries[i];
        if (!e->name || !*e->name) return dn_error(DN_ERR_ARG, "dn_st_write %s: tensor %d has no name", path, i);
        if (!utf8_valid(e->name))
            return dn_error(DN_ERR_ARG, "dn_st_write %s: tensor %d's name is not valid UTF-8", path, i);
        if (strcmp(e->name, "__metadata__") == 0)
            return dn_error(DN_ERR_ARG, "dn_st_write %s: '__metadata__' is reserved and cannot name a tensor", path);
        for (int j = 0; j < i; j++)
            if (strcmp(entries[j].name, e->name) == 0)
                return dn_error(DN_ERR_ARG, "dn_st_write %s: tensor name '%s' appears twice (entries %d and %d)",
                                path, e->name, j, i);
        if (e->ndim < 0 || e->ndim > DN_MAX_DIMS)
            return dn_error(DN_ERR_ARG, "dn_st_write %s: tensor '%s' has %d dimensions (0..%d allowed)", path,
                            e->name, e->ndim, DN_MAX_DIMS);
        int64_t bytes = 4;
        for (int d = 0; d < e->ndim; d++) {
            if (e->shape[d] < 0)
                return dn_error(DN_ERR_ARG, "dn_st_write %s: tensor '%s' has a negative dimension %lld", path, e->name,
                                (long long)e->shape[d]);
            if (e->shape[d] > 0 && bytes > INT64_MAX / e->shape[d])
                return dn_error(DN_ERR_ARG, "dn_st_write %s: tensor '%s' is too large", path, e->name);
            bytes *= e->shape[d];
        }
        if (bytes > 0 && !e->data) return dn_error(DN_ERR_ARG, "dn_st_write %s: tensor '%s' has no data", path, e->name);
        if (bytes > INT64_MAX - total) return dn_error(DN_ERR_ARG, "dn_st_write %s: tensors too large in total", path);
        total += bytes;
    }
    for (int i = 0; i < n_meta; i++) {
        if (!keys[i] || !values[i])
            return dn_error(DN_ERR_ARG, "dn_st_write %s: metadata entry %d has a NULL key or value", path, i);
        if (!utf8_valid(keys[i]) || !utf8_valid(values[i]))
            return dn_error(DN_ERR_ARG, "dn_st_write %s: metadata '%s' is not valid UTF-8 text", path, keys[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(keys[j], keys[i]) == 0)
                return dn_error(DN_ERR_ARG, "dn_st_write %s: metadata key '%s' appears twice", path, keys[i]);
    }
    return DN_OK;
}

/* {"__metadata__":{...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...} padded with spaces
 * to a multiple of 8 bytes, so the data that follows the 8-byte length starts 8-aligned (as the reference
 * writer does). */
static dn_status build_header(int n, const dn_st_entry *entries, int n_meta, const char *const *keys,
                              const char *const *values, sbuf *h)
{
    sb_puts(h, "{");
    if (n_meta > 0) {
        sb_puts(h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_puts(h, ",");
            sb_json_string(h, keys[i]);
            sb_puts(h, ":");
            sb_json_string(h, values[i]);
        }
        sb_puts(h, "}");
    }
    int64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const dn_st_entry *e = &entries[i];
        int64_t bytes = 4 * numel_of(e->ndim, e->shape);
        if (i || n_meta > 0) sb_puts(h, ",");
        sb_json_string(h, e->name);
        sb_puts(h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) sb_puts(h, ",");
            sb_int(h, e->shape[d]);
        }
        sb_puts(h, "],\"data_offsets\":[");
        sb_int(h, offset);
        sb_puts(h, ",");
        sb_int(h, offset + bytes);
        sb_puts(h, "]}");
        offset += bytes;
    }
    sb_puts(h, "}");
    while (!h->nomem && h->len % 8) sb_puts(h, " ");
    return h->nomem ? DN_ERR_NOMEM : DN_OK;
}

/* fwrite of n floats as little-endian, whatever the host's byte order. */
static bool write_floats(FILE *f, const float *x, int64_t n)
{
    if (host_is_little_endian()) return n == 0 || fwrite(x, 4, (size_t)n, f) == (size_t)n;
    float buf[1024];
    for (int64_t i = 0; i < n; i += 1024) {
        int64_t k = n - i < 1024 ? n - i : 1024;
        memcpy(buf, x + i, (size_t)k * 4);
        swap4(buf, k);
        if (fwrite(buf, 4, (size_t)k, f) != (size_t)k) return false;
    }
    return true;
}

/* Makes the rename itself durable; best effort, since some file systems refuse to sync a directory and
 * the data is already safe in the file. */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1; /* "/file" lives in "/" */
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

dn_status dn_st_write(const char *path, int n, const dn_st_entry *entries, int n_meta, const char *const *keys,
                      const char *const *values)
{
    dn_status s = check_write_args(path, n, entries, n_meta, keys, values);
    if (s) return s;
    sbuf h = {0};
    s = build_header(n, entries, n_meta, keys, values, &h);
    if (s) {
        dn_free(h.data);
        return dn_error(DN_ERR_NOMEM, "dn_st_write %s: out of memory building the header", path);
    }

    size_t tmp_size = strlen(path) + 32;
    char *tmp = dn_alloc(tmp_size);
    if (!tmp) {
        dn_free(h.data);
        return DN_ERR_NOMEM;
    }
    snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());

    FILE *f = fopen(tmp, "wb");
    if (!f) {
        s = dn_error(DN_ERR_IO, "cannot write %s: cannot create %s: %s", path, tmp, strerror(errno));
        dn_free(tmp);
        dn_free(h.data);
        return s;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.data, 1, h.len, f) == h.len;
    for (int i = 0; ok && i < n; i++) ok = write_floats(f, entries[i].data, numel_of(entries[i].ndim, entries[i].shape));
    int err = ok ? 0 : errno;
    /* The data must be on disk before the rename makes it the file, or a crash could leave a torn file. */
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) ok = false, err = errno;
    if (fclose(f) != 0 && ok) ok = false, err = errno;
    if (ok && rename(tmp, path) != 0) {
        s = dn_error(DN_ERR_IO, "cannot write %s: renaming %s over it failed: %s", path, tmp, strerror(errno));
        remove(tmp);
    } else if (!ok) {
        s = dn_error(DN_ERR_IO, "cannot write %s: writing %s failed: %s (disk full?); the old file is unchanged",
                     path, tmp, err ? strerror(err) : "unknown error");
        remove(tmp);
    } else {
        sync_parent_dir(path);
    }
    dn_free(tmp);
    dn_free(h.data);
    return s;
}

/* ------------------------------------------------------------------ the file in memory */

typedef struct st_tensor {
    dn_st_entry e; /* first, so &t->e and the array index agree */
    uint64_t begin, end;
    char dtype[16];
    bool has_dtype, has_shape, has_offsets;
} st_tensor;

struct dn_st_file {
    int n;
    st_tensor *t;
    const st_tensor **by_name; /* sorted by name, for dn_st_find */
    int n_meta, meta_cap;
    char **meta_keys, **meta_values;
    float *data; /* all tensors, packed */
};

int dn_st_count(const dn_st_file *f) { return f ? f->n : 0; }
const dn_st_entry *dn_st_at(const dn_st_file *f, int i) { return f && i >= 0 && i < f->n ? &f->t[i].e : NULL; }
const char *dn_st_name(const dn_st_file *f, int i) { return f && i >= 0 && i < f->n ? f->t[i].e.name : NULL; }
int dn_st_meta_count(const dn_st_file *f) { return f ? f->n_meta : 0; }
const char *dn_st_meta_key(const dn_st_file *f, int i) { return f && i >= 0 && i < f->n_meta ? f->meta_keys[i] : NULL; }
const char *dn_st_meta_value(const dn_st_file *f, int i)
{
    return f && i >= 0 && i < f->n_meta ? f->meta_values[i] : NULL;
}

const char *dn_st_meta(const dn_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const st_tensor *const *)a)->e.name, (*(const st_tensor *const *)b)->e.name);
}

const dn_st_entry *dn_st_find(const dn_st_file *f, const char *name)
{
    if (!f || !name || !f->by_name) return NULL;
    st_tensor key;
    key.e.name = name;
    const st_tensor *kp = &key;
    const st_tensor *const *hit = bsearch(&kp, f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    return hit ? &(*hit)->e : NULL;
}

void dn_st_free(dn_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) dn_free((char *)f->t[i].e.name);
    for (int i = 0; i < f->n_meta; i++) {
        dn_free(f->meta_keys[i]);
        dn_free(f->meta_values[i]);
    }
    dn_free(f->t);
    dn_free(f->by_name);
    dn_free(f->meta_keys);
    dn_free(f->meta_values);
    dn_free(f->data);
    dn_free(f);
}

/* ------------------------------------------------------------------ the JSON header */

typedef struct jparser {
    const char *start, *p, *end;
    const char *path;
} jparser;

/* Every JSON error names the file and the byte of the header where it happened. */
static dn_status jfail(const jparser *j, const char *what)
{
    return dn_error(DN_ERR_FORMAT, "%s: bad safetensors header (JSON) at byte %td: %s", j->path, j->p - j->start,
                    what);
}

static void jws(jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static dn_status jexpect(jparser *j, char c)
{
    jws(j);
    if (j->p >= j->end || *j->p != c) {
        char msg[40];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return jfail(j, msg);
    }
    j->p++;
    return DN_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(jparser *j, unsigned *out)
{
    if (j->end - j->p < 4) return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0) return false;
        v = v * 16 + (unsigned)h;
    }
    j->p += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string literal, decoded into a new NUL-terminated buffer.  The decoded text is never longer than the
 * literal (every escape shrinks), so one allocation of the literal's length suffices. */
static dn_status jstring(jparser *j, char **out)
{
    *out = NULL;
    dn_status s = jexpect(j, '"');
    if (s) return s;
    const char *q = j->p;
    while (q < j->end && *q != '"') q += (*q == '\\' && q + 1 < j->end) ? 2 : 1;
    if (q >= j->end) return jfail(j, "unterminated string");
    char *o = dn_alloc((size_t)(q - j->p) + 1), *w = o;
    if (!o) return DN_ERR_NOMEM;
    while (*j->p != '"') {
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20) {
            dn_free(o);
            return jfail(j, "control character in a string (must be escaped)");
        }
        if (c >= 0x80) {
            size_t k = utf8_seq_len((const unsigned char *)j->p, (size_t)(j->end - j->p));
            if (!k) {
                dn_free(o);
                return jfail(j, "invalid UTF-8 in a string");
            }
            memcpy(w, j->p, k);
            w += k;
            j->p += k;
            continue;
        }
        if (c != '\\') {
            *w++ = (char)c;
            j->p++;
            continue;
        }
        j->p++;
        char e = *j->p++;
        char plain = e == '"' ? '"' : e == '\\' ? '\\' : e == '/' ? '/' : e == 'b' ? '\b' : e == 'f' ? '\f'
                   : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : 0;
        if (plain) {
            *w++ = plain;
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || !read_hex4(j, &cp)) {
            dn_free(o);
            return jfail(j, "bad escape sequence in a string");
        }
        /* UTF-16 surrogate pair: cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00) */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            bool paired = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u';
            if (paired) {
                j->p += 2;
                paired = read_hex4(j, &lo) && lo >= 0xDC00 && lo <= 0xDFFF;
            }
            if (!paired) {
                dn_free(o);
                return jfail(j, "unpaired UTF-16 surrogate in a \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            dn_free(o);
            return jfail(j, "unpaired UTF-16 surrogate in a \\u escape");
        } else if (cp == 0) {
            dn_free(o);
            return jfail(j, "\\u0000 in a string (names and metadata cannot hold NUL)");
        }
        w += put_utf8(w, cp);
    }
    j->p++; /* closing quote */
    *w = '\0';
    *out = o;
    return DN_OK;
}

/* A non-negative integer as safetensors uses for shapes and offsets: digits only, no sign, fraction or
 * exponent, no leading zeros (JSON's rule), at most INT64_MAX. */
static dn_status juint(jparser *j, const char *what, uint64_t *out)
{
    jws(j);
    const char *b = j->p;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a non-negative integer", what);
        return jfail(j, msg);
    }
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        unsigned d = (unsigned)(*j->p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) {
            char msg[96];
            snprintf(msg, sizeof msg, "%s is too large", what);
            return jfail(j, msg);
        }
        v = v * 10 + d;
        j->p++;
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be an integer", what);
        return jfail(j, msg);
    }
    if (*b == '0' && j->p - b > 1) return jfail(j, "number with a leading zero");
    *out = v;
    return DN_OK;
}

#define JSON_MAX_DEPTH 64

/* Validates and skips any JSON value (for keys we do not use). */
static dn_status jskip(jparser *j, int depth)
{
    if (depth > JSON_MAX_DEPTH) return jfail(j, "nested more than 64 levels deep");
    jws(j);
    if (j->p >= j->end) return jfail(j, "unexpected end of header");
    char c = *j->p;
    dn_status s;
    if (c == '"') {
        char *str;
        s = jstring(j, &str);
        dn_free(str);
        return s;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        jws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return DN_OK;
        }
        for (;;) {
            if (c == '{') {
                char *key;
                if ((s = jstring(j, &key))) return s;
                dn_free(key);
                if ((s = jexpect(j, ':'))) return s;
            }
            if ((s = jskip(j, depth + 1))) return s;
            jws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            return jexpect(j, close);
        }
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
            j->p += n;
            return DN_OK;
        }
    }
    /* number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    const char *p = j->p;
    if (p < j->end && *p == '-') p++;
    if (p >= j->end || *p < '0' || *p > '9') return jfail(j, "expected a value");
    if (*p == '0') {
        p++;
    } else {
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < j->end && *p == '.') {
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return jfail(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return jfail(j, "bad number");
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    j->p = p;
    return DN_OK;
}

/* Is the next non-space character c?  Consumes it if so. */
static bool jaccept(jparser *j, char c)
{
    jws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static dn_status parse_metadata(jparser *j, dn_st_file *f)
{
    dn_status s;
    jws(j);
    if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        return DN_OK;
    }
    if ((s = jexpect(j, '{'))) return s;
    if (jaccept(j, '}')) return DN_OK;
    for (;;) {
        char *key = NULL, *value = NULL;
        if ((s = jstring(j, &key))) return s;
        if ((s = jexpect(j, ':'))) {
            dn_free(key);
            return s;
        }
        jws(j);
        if (j->p >= j->end || *j->p != '"') {
            dn_error(DN_ERR_FORMAT, "%s: __metadata__ value for key '%.60s' is not a string", j->path, key);
            dn_free(key);
            return DN_ERR_FORMAT;
        }
        if ((s = jstring(j, &value))) {
            dn_free(key);
            return s;
        }
        if (f->n_meta == f->meta_cap) {
            int cap = f->meta_cap ? 2 * f->meta_cap : 8;
            char **nk = cap > f->meta_cap ? dn_realloc(f->meta_keys, (size_t)cap * sizeof *nk) : NULL;
            if (nk) f->meta_keys = nk;
            char **nv = nk ? dn_realloc(f->meta_values, (size_t)cap * sizeof *nv) : NULL;
            if (nv) f->meta_values = nv;
            if (!nk || !nv) {
                dn_free(key);
                dn_free(value);
                return DN_ERR_NOMEM;
            }
            f->meta_cap = cap;
        }
        f->meta_keys[f->n_meta] = key;
        f->meta_values[f->n_meta] = value;
        f->n_meta++;
        if (jaccept(j, ',')) continue;
        return jexpect(j, '}');
    }
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [b, e]} for tensor t (its name is already set). */
static dn_status parse_tensor(jparser *j, st_tensor *t)
{
    dn_status s;
    const char *name = t->e.name;
    if ((s = jexpect(j, '{'))) return s;
    if (jaccept(j, '}')) goto done;
    for (;;) {
        char *key;
        if ((s = jstring(j, &key))) return s;
        if ((s = jexpect(j, ':'))) {
            dn_free(key);
            return s;
        }
        bool *seen = strcmp(key, "dtype") == 0          ? &t->has_dtype
                     : strcmp(key, "shape") == 0        ? &t->has_shape
                     : strcmp(key, "data_offsets") == 0 ? &t->has_offsets
                                                        : NULL;
        if (seen && *seen) {
            dn_error(DN_ERR_FORMAT, "%s: tensor '%.80s' gives \"%s\" twice", j->path, name, key);
            dn_free(key);
            return DN_ERR_FORMAT;
        }
        if (seen) *seen = true;
        if (strcmp(key, "dtype") == 0) {
            char *dt;
            dn_free(key);
            if ((s = jstring(j, &dt))) return s;
            snprintf(t->dtype, sizeof t->dtype, "%s", dt);
            dn_free(dt);
        } else if (strcmp(key, "shape") == 0) {
            dn_free(key);
            if ((s = jexpect(j, '['))) return s;
            if (!jaccept(j, ']')) {
                for (;;) {
                    uint64_t d;
                    if (t->e.ndim == DN_MAX_DIMS)
                        return dn_error(DN_ERR_FORMAT, "%s: tensor '%.80s' has more than %d dimensions, the most "
                                        "dendrite supports", j->path, name, DN_MAX_DIMS);
                    if ((s = juint(j, "a shape dimension", &d))) return s;
                    t->e.shape[t->e.ndim++] = (int64_t)d;
                    if (jaccept(j, ',')) continue;
                    if ((s = jexpect(j, ']'))) return s;
                    break;
                }
            }
        } else if (strcmp(key, "data_offsets") == 0) {
            dn_free(key);
            if ((s = jexpect(j, '[')) || (s = juint(j, "data_offsets[0]", &t->begin)) || (s = jexpect(j, ',')) ||
                (s = juint(j, "data_offsets[1]", &t->end)) || (s = jexpect(j, ']')))
                return s;
        } else {
            dn_free(key);
            if ((s = jskip(j, 1))) return s;
        }
        if (jaccept(j, ',')) continue;
        if ((s = jexpect(j, '}'))) return s;
        break;
    }
done:
    if (!t->has_dtype || !t->has_shape || !t->has_offsets)
        return dn_error(DN_ERR_FORMAT, "%s: tensor '%.80s' lacks \"%s\"", j->path, name,
                        !t->has_dtype ? "dtype" : !t->has_shape ? "shape" : "data_offsets");
    return DN_OK;
}

static dn_status parse_header(jparser *j, dn_st_file *f)
{
    dn_status s;
    bool seen_meta = false;
    jws(j);
    if (j->p >= j->end || *j->p != '{')
        return dn_error(DN_ERR_FORMAT, "%s: not a safetensors file (the header does not start with '{')", j->path);
    j->p++;
    if (!jaccept(j, '}')) {
        int cap = 0;
        for (;;) {
            char *key;
            if ((s = jstring(j, &key))) return s;
            if ((s = jexpect(j, ':'))) {
                dn_free(key);
                return s;
            }
            if (strcmp(key, "__metadata__") == 0) {
                dn_free(key);
                if (seen_meta) return dn_error(DN_ERR_FORMAT, "%s: \"__metadata__\" appears twice", j->path);
                seen_meta = true;
                if ((s = parse_metadata(j, f))) return s;
            } else {
                if (f->n == cap) {
                    int ncap = cap ? 2 * cap : 16;
                    st_tensor *nt = ncap > cap ? dn_realloc(f->t, (size_t)ncap * sizeof *nt) : NULL;
                    if (!nt) {
                        dn_free(key);
                        return DN_ERR_NOMEM;
                    }
                    f->t = nt;
                    cap = ncap;
                }
                st_tensor *t = &f->t[f->n++];
                memset(t, 0, sizeof *t);
                t->e.name = key;
                if ((s = parse_tensor(j, t))) return s;
            }
            if (jaccept(j, ',')) continue;
            if ((s = jexpect(j, '}'))) return s;
            break;
        }
    }
    jws(j); /* the writer pads with spaces */
    if (j->p != j->end) return jfail(j, "unexpected characters after the header object");
    return DN_OK;
}

/* ------------------------------------------------------------------ reading */

static int cmp_begin(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Checks each tensor's dtype, size and offsets against a data area of data_len bytes, then that no two
 * tensors share a byte and no name repeats.  Sets *total to the bytes all tensors need. */
static dn_status check_tensors(dn_st_file *f, const char *path, uint64_t data_len, uint64_t *total)
{
    *total = 0;
    for (int i = 0; i < f->n; i++) {
        st_tensor *t = &f->t[i];
        if (strcmp(t->dtype, "F32") != 0)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%.80s' has dtype %s; dendrite reads only F32 (convert "
                            "with tensor.float() before saving)", path, t->e.name, t->dtype);
        /* the number of bytes the shape implies, with overflow treated as a mismatch */
        uint64_t bytes = 4;
        bool overflow = false;
        for (int d = 0; d < t->e.ndim; d++) {
            uint64_t dim = (uint64_t)t->e.shape[d];
            if (dim && bytes > (uint64_t)INT64_MAX / dim) overflow = true;
            else bytes *= dim;
        }
        if (t->end < t->begin)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%.80s' has data_offsets [%llu, %llu] that end before they "
                            "begin", path, t->e.name, (unsigned long long)t->begin, (unsigned long long)t->end);
        if (overflow || bytes != t->end - t->begin)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%.80s' has shape %s (%s%llu bytes of F32) but data_offsets "
                            "[%llu, %llu] hold %llu bytes", path, t->e.name, dn_shape_str(t->e.ndim, t->e.shape),
                            overflow ? "more than " : "", (unsigned long long)bytes, (unsigned long long)t->begin,
                            (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
        if (t->end > data_len)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%.80s' needs bytes %llu..%llu of the data but the file has "
                            "only %llu bytes of data (truncated file?)", path, t->e.name,
                            (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_len);
        *total += bytes; /* trusted only after the overlap check below, which bounds it by data_len */
    }
    if (f->n == 0) return DN_OK;

    const st_tensor **order = dn_alloc((size_t)f->n * sizeof *order);
    if (!order) return DN_ERR_NOMEM;
    for (int i = 0; i < f->n; i++) order[i] = &f->t[i];
    qsort(order, (size_t)f->n, sizeof *order, cmp_begin);
    const st_tensor *last = NULL; /* the non-empty tensor that reaches furthest so far */
    for (int i = 0; i < f->n; i++) {
        const st_tensor *t = order[i];
        if (t->end == t->begin) continue; /* an empty tensor occupies no bytes */
        if (last && t->begin < last->end) {
            dn_status s = dn_error(DN_ERR_FORMAT, "%s: tensors '%.80s' [%llu, %llu] and '%.80s' [%llu, %llu] overlap "
                                   "in the data area", path, last->e.name, (unsigned long long)last->begin,
                                   (unsigned long long)last->end, t->e.name, (unsigned long long)t->begin,
                                   (unsigned long long)t->end);
            dn_free(order);
            return s;
        }
        if (!last || t->end > last->end) last = t;
    }
    /* names: sorted once, kept for dn_st_find */
    qsort(order, (size_t)f->n, sizeof *order, cmp_name);
    f->by_name = order;
    for (int i = 1; i < f->n; i++)
        if (strcmp(order[i - 1]->e.name, order[i]->e.name) == 0)
            return dn_error(DN_ERR_FORMAT, "%s: tensor name '%.80s' appears twice in the header", path, order[i]->e.name);
    return DN_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Repeated metadata keys, found by sorting a copy of the key list (a hostile header may hold millions). */
static dn_status check_metadata(const dn_st_file *f, const char *path)
{
    if (f->n_meta < 2) return DN_OK;
    char **keys = dn_alloc((size_t)f->n_meta * sizeof *keys);
    if (!keys) return DN_ERR_NOMEM;
    memcpy(keys, f->meta_keys, (size_t)f->n_meta * sizeof *keys);
    qsort(keys, (size_t)f->n_meta, sizeof *keys, cmp_str);
    dn_status s = DN_OK;
    for (int i = 1; i < f->n_meta && !s; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            s = dn_error(DN_ERR_FORMAT, "%s: __metadata__ key '%.60s' appears twice", path, keys[i]);
    dn_free(keys);
    return s;
}

static dn_status read_tensors(dn_st_file *f, FILE *fp, const char *path, uint64_t data_start, uint64_t total)
{
    if (total == 0) return DN_OK;
    if (total > SIZE_MAX) return dn_error(DN_ERR_NOMEM, "%s: %llu bytes of tensors do not fit in memory", path,
                                          (unsigned long long)total);
    f->data = dn_alloc((size_t)total);
    if (!f->data) return dn_error(DN_ERR_NOMEM, "%s: out of memory for %llu bytes of tensors", path,
                                  (unsigned long long)total);
    float *w = f->data;
    for (int i = 0; i < f->n; i++) {
        st_tensor *t = &f->t[i];
        uint64_t bytes = t->end - t->begin;
        t->e.data = bytes ? w : NULL;
        if (!bytes) continue;
        if (fseeko(fp, (off_t)(data_start + t->begin), SEEK_SET) != 0 || fread(w, 1, bytes, fp) != bytes)
            return dn_error(DN_ERR_IO, "%s: cannot read the %llu bytes of tensor '%.80s' (file truncated or "
                            "changed while reading?)", path, (unsigned long long)bytes, t->e.name);
        if (!host_is_little_endian()) swap4(w, (int64_t)(bytes / 4));
        w += bytes / 4;
    }
    return DN_OK;
}

dn_status dn_st_read(const char *path, uint64_t max_bytes, dn_st_file **out)
{
    if (!path || !out) return dn_error(DN_ERR_ARG, "dn_st_read: path and out must not be NULL");
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return dn_error(DN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return dn_error(DN_ERR_IO, "cannot read %s: not a regular file", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, fp) != 8) {
        fclose(fp);
        return dn_error(DN_ERR_FORMAT, "%s: not a safetensors file (only %llu bytes; it must start with an 8-byte "
                        "header length)", path, (unsigned long long)size);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | len8[i];
    if (hlen > size - 8) {
        fclose(fp);
        return dn_error(DN_ERR_FORMAT, "%s: not a safetensors file (header length %llu exceeds file size %llu)",
                        path, (unsigned long long)hlen, (unsigned long long)size);
    }
    if (hlen > DN_ST_MAX_HEADER) {
        fclose(fp);
        return dn_error(DN_ERR_FORMAT, "%s: safetensors header of %llu bytes is larger than the %u-byte limit",
                        path, (unsigned long long)hlen, DN_ST_MAX_HEADER);
    }
    dn_status s = DN_OK;
    dn_st_file *f = dn_calloc(1, sizeof *f);
    char *header = dn_alloc((size_t)hlen + 1);
    if (!f || !header) {
        s = DN_ERR_NOMEM;
        goto fail;
    }
    if (fread(header, 1, (size_t)hlen, fp) != hlen) {
        s = dn_error(DN_ERR_IO, "%s: cannot read the %llu-byte header", path, (unsigned long long)hlen);
        goto fail;
    }
    header[hlen] = '\0';
    jparser j = {header, header, header + hlen, path};
    if ((s = parse_header(&j, f)) || (s = check_metadata(f, path))) goto fail;
    uint64_t total;
    if ((s = check_tensors(f, path, size - 8 - hlen, &total))) goto fail;
    if (max_bytes && total > max_bytes) {
        s = dn_error(DN_ERR_FORMAT, "%s: tensors need %llu bytes, more than the allowed %llu (is this the right "
                     "file? raise the limit if so)", path, (unsigned long long)total, (unsigned long long)max_bytes);
        goto fail;
    }
    if ((s = read_tensors(f, fp, path, 8 + hlen, total))) goto fail;
    dn_free(header);
    fclose(fp);
    *out = f;
    return DN_OK;
fail:
    dn_free(header);
    dn_st_free(f);
    fclose(fp);
    return s;
}
