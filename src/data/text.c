/* Text data for character language models: a byte vocabulary built from a file, and windows of fixed length
 * whose targets are the same windows shifted by one byte. */
#include "internal.h"

#include <stdlib.h>

#define TEXT_MAX_BYTES ((size_t)256 << 20)

void dn_vocab_build(const unsigned char *text, size_t n, dn_vocab *v)
{
    bool seen[256] = {false};
    for (size_t i = 0; i < n; i++) seen[text[i]] = true;
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) {
        v->index[b] = -1;
        if (seen[b]) {
            v->index[b] = (int16_t)v->size;
            v->bytes[v->size++] = (unsigned char)b;
        }
    }
}

/* Text, not binary: no NUL bytes, and almost every byte printable, whitespace or part of UTF-8. */
static dn_status check_text(const char *path, const unsigned char *t, size_t n)
{
    size_t odd = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = t[i];
        if (c == 0)
            return dn_error(DN_ERR_FORMAT, "%s: byte %zu is NUL: this looks like binary data, not text", path, i);
        if (c < 32 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v') odd++;
    }
    if (odd * 100 > n)
        return dn_error(DN_ERR_FORMAT, "%s: %zu of %zu bytes are control characters: this looks like binary data, not text",
                        path, odd, n);
    return DN_OK;
}

dn_status dn_dataset_load_text(const char *path, int64_t seq_len, const dn_vocab *vocab, dn_vocab *vocab_out,
                               dn_dataset **out)
{
    if (!path || !out) return dn_error(DN_ERR_ARG, "dn_dataset_load_text: path and out must not be NULL");
    *out = NULL;
    if (seq_len < 1 || seq_len > (1 << 20)) return dn_error(DN_ERR_ARG, "sequence length %lld is out of range", (long long)seq_len);
    char *text = NULL;
    size_t n = 0;
    dn_status s = dn_read_file(path, TEXT_MAX_BYTES, &text, &n);
    if (s) return s;
    const unsigned char *t = (const unsigned char *)text;
    if (n == 0) s = dn_error(DN_ERR_FORMAT, "%s: the file is empty", path);
    if (!s) s = check_text(path, t, n);
    if (!s && n < (size_t)seq_len + 1)
        s = dn_error(DN_ERR_FORMAT, "%s: %zu bytes are too few for one window of %lld characters plus its target", path,
                     n, (long long)seq_len);
    dn_vocab v;
    if (!s) {
        if (vocab) {
            v = *vocab;
            for (size_t i = 0; i < n && !s; i++)
                if (v.index[t[i]] < 0)
                    s = dn_error(DN_ERR_FORMAT, "%s: byte %zu (0x%02x) is not in the model's vocabulary of %d characters",
                                 path, i, t[i], v.size);
        } else {
            dn_vocab_build(t, n, &v);
        }
    }
    dn_dataset *d = NULL;
    if (!s) {
        /* non-overlapping windows: sample k covers bytes [kT, kT + T) and predicts [kT + 1, kT + T + 1) */
        int64_t windows = (int64_t)(n - 1) / seq_len;
        d = dn_calloc(1, sizeof *d);
        if (d) {
            d->n = windows;
            d->ndim = 1;
            d->shape[0] = seq_len;
            d->target_size = seq_len;
            d->n_classes = v.size;
            d->x = dn_alloc((size_t)(windows * seq_len) * sizeof(float));
            d->y = dn_alloc((size_t)(windows * seq_len) * sizeof(float));
        }
        if (!d || !d->x || !d->y) {
            dn_dataset_free(d);
            d = NULL;
            s = DN_ERR_NOMEM;
        } else {
            for (int64_t k = 0; k < windows * seq_len; k++) {
                d->x[k] = (float)v.index[t[k]];
                d->y[k] = (float)v.index[t[k + 1]];
            }
        }
    }
    dn_free(text);
    if (s) return s;
    if (vocab_out) *vocab_out = v;
    *out = d;
    return DN_OK;
}

dn_status dn_dataset_streams(dn_dataset *d, int64_t streams)
{
    if (!d || streams < 1) return dn_error(DN_ERR_ARG, "dn_dataset_streams: need a data set and streams >= 1");
    int64_t per = d->n / streams;
    if (per < 1)
        return dn_error(DN_ERR_ARG, "%lld windows are too few for %lld streams (lower the batch size)", (long long)d->n,
                        (long long)streams);
    int64_t ss = dn_dataset_sample_size(d), ts = dn_dataset_target_size(d), n = per * streams;
    /* the samples move as they are stored: floats, or bytes (dn_dataset_load_idx_compact) */
    size_t elem = d->x_bytes ? 1 : sizeof(float);
    const char *old_x = d->x_bytes ? (const char *)d->x_bytes : (const char *)d->x;
    char *x = dn_alloc((size_t)(n * ss) * elem);
    float *y = dn_alloc((size_t)(n * ts) * sizeof(float));
    if (!x || !y) {
        dn_free(x);
        dn_free(y);
        return DN_ERR_NOMEM;
    }
    /* stream i is the i-th contiguous stretch of the text; position k of the new order is window
     * (k % streams) * per + k / streams */
    for (int64_t k = 0; k < n; k++) {
        int64_t src = (k % streams) * per + k / streams;
        if (old_x) memcpy(x + k * ss * (int64_t)elem, old_x + src * ss * (int64_t)elem, (size_t)ss * elem);
        memcpy(y + k * ts, d->y + src * ts, (size_t)ts * sizeof(float));
    }
    dn_free(d->y);
    d->y = y;
    if (d->x_bytes) {
        dn_free(d->x_bytes);
        d->x_bytes = (uint8_t *)x;
    } else {
        dn_free(d->x);
        d->x = (float *)x;
    }
    d->n = n;
    return DN_OK;
}
