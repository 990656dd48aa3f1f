/* IDX files (the MNIST format): magic 00 00 <type> <ndim>, ndim big-endian u32 dimensions, then the
 * elements, big-endian, row-major.  Every size is checked against the real file size before anything is
 * allocated, so a corrupt or hostile header cannot ask for a huge buffer. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>

/* The largest exact integer in a float: labels above it could not be told apart. */
#define MAX_LABEL 16777216.0f

typedef struct idx_file {
    const char *path;
    FILE *f;
    int type;                        /* 0x08 .. 0x0E */
    int elem;                        /* bytes per element */
    int ndim;
    int64_t dims[DN_MAX_DIMS + 1];
    int64_t count;                   /* elements */
} idx_file;

static int elem_size(int type)
{
    switch (type) {
    case 0x08: return 1; /* unsigned byte */
    case 0x09: return 1; /* signed byte */
    case 0x0B: return 2; /* short */
    case 0x0C: return 4; /* int */
    case 0x0D: return 4; /* float */
    case 0x0E: return 8; /* double */
    default: return 0;
    }
}

static void idx_close(idx_file *x)
{
    if (x->f) fclose(x->f);
    x->f = NULL;
}

/* Opens path and checks its header and size; on success the file is positioned at the first element. */
static dn_status idx_open(const char *path, int max_ndim, idx_file *x)
{
    memset(x, 0, sizeof *x);
    x->path = path;
    x->f = fopen(path, "rb");
    if (!x->f) return dn_error(DN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(x->f), &st) != 0 || !S_ISREG(st.st_mode)) {
        idx_close(x);
        return dn_error(DN_ERR_IO, "cannot read %s: not a regular file", path);
    }
    int64_t size = (int64_t)st.st_size;
    unsigned char h[4 + 4 * (DN_MAX_DIMS + 1)];
    dn_status s = DN_ERR_FORMAT;
    if (fread(h, 1, 4, x->f) != 4) {
        dn_error(s, "file %s: too short for an IDX header (%lld bytes)", path, (long long)size);
        goto fail;
    }
    if (h[0] == 0x1f && h[1] == 0x8b) {
        dn_error(s, "file %s: is gzip-compressed; unpack it first (gunzip %s)", path, path);
        goto fail;
    }
    if (h[0] != 0 || h[1] != 0) {
        dn_error(s, "file %s: not an IDX file (magic bytes %02x %02x %02x %02x; IDX files start with 00 00)", path,
                 h[0], h[1], h[2], h[3]);
        goto fail;
    }
    x->type = h[2];
    x->elem = elem_size(x->type);
    if (!x->elem) {
        dn_error(s, "file %s: unknown IDX element type 0x%02x (expected 0x08 ubyte, 0x09 sbyte, 0x0B short, "
                 "0x0C int, 0x0D float or 0x0E double)", path, x->type);
        goto fail;
    }
    x->ndim = h[3];
    if (x->ndim < 1 || x->ndim > max_ndim) {
        dn_error(s, "file %s: IDX header gives %d dimensions; expected 1 to %d", path, x->ndim, max_ndim);
        goto fail;
    }
    if (fread(h + 4, 4, (size_t)x->ndim, x->f) != (size_t)x->ndim) {
        dn_error(s, "file %s: truncated IDX header (%lld bytes, the header needs %d)", path, (long long)size,
                 4 + 4 * x->ndim);
        goto fail;
    }
    /* count = product of dims, refusing overflow: 2^31 x 2^31 x 4 bytes would wrap an int64 */
    bool overflow = false;
    x->count = 1;
    for (int i = 0; i < x->ndim; i++) {
        const unsigned char *p = h + 4 + 4 * i;
        x->dims[i] = (int64_t)p[0] << 24 | (int64_t)p[1] << 16 | (int64_t)p[2] << 8 | (int64_t)p[3];
        if (x->dims[i] == 0) {
            dn_error(s, "file %s: dimension %d of %s is 0 (an empty data set)", path, i,
                     dn_shape_str(x->ndim, x->dims));
            goto fail;
        }
        if (x->count > INT64_MAX / x->elem / x->dims[i]) overflow = true;
        else x->count *= x->dims[i];
    }
    int64_t header = 4 + 4 * (int64_t)x->ndim, have = size - header;
    if (overflow) {
        dn_error(s, "file %s: dimensions %s need more than %lld bytes of data, found %lld (corrupt header?)", path,
                 dn_shape_str(x->ndim, x->dims), (long long)INT64_MAX, (long long)have);
        goto fail;
    }
    int64_t need = x->count * x->elem;
    if (have < need) {
        dn_error(s, "file %s: expected %lld bytes of data for shape %s, found %lld (truncated file?)", path,
                 (long long)need, dn_shape_str(x->ndim, x->dims), (long long)have);
        goto fail;
    }
    if (have > need) {
        dn_error(s, "file %s: %lld bytes of trailing data after the %lld bytes that shape %s needs (wrong or "
                 "corrupt file?)", path, (long long)(have - need), (long long)need, dn_shape_str(x->ndim, x->dims));
        goto fail;
    }
    return DN_OK;
fail:
    idx_close(x);
    return s;
}

/* One big-endian element as a double. */
static double idx_value(int type, const unsigned char *p)
{
    switch (type) {
    case 0x08: return p[0];
    case 0x09: return (signed char)p[0];
    case 0x0B: return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
    case 0x0C: return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    case 0x0D: {
        uint32_t u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | p[i];
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    }
}

/* Reads all x->count elements into dst as scale * value, in chunks so no second full-size buffer is needed. */
static dn_status idx_read(idx_file *x, float *dst, float scale)
{
    unsigned char buf[1 << 16];
    int64_t per = (int64_t)sizeof buf / x->elem;
    for (int64_t i = 0; i < x->count; i += per) {
        int64_t k = x->count - i < per ? x->count - i : per;
        if (fread(buf, (size_t)x->elem, (size_t)k, x->f) != (size_t)k)
            return dn_error(DN_ERR_IO, "file %s: read failed after %lld elements (file changed while reading?)",
                            x->path, (long long)i);
        for (int64_t j = 0; j < k; j++) {
            float v = (float)(scale * idx_value(x->type, buf + j * x->elem));
            if (!isfinite(v))
                return dn_error(DN_ERR_NUMERIC, "file %s: element %lld is %g after scaling by %g (not a finite "
                                "float32)", x->path, (long long)(i + j), idx_value(x->type, buf + j * x->elem),
                                (double)scale);
            dst[i + j] = v;
        }
    }
    return DN_OK;
}

/* Reads all x->count unsigned bytes straight into dst: the bytes are the samples, no float copy is made.  The
 * values they stand for, (float)(scale * byte) as idx_read computes them, must be finite like idx_read's. */
static dn_status idx_read_bytes(idx_file *x, uint8_t *dst, float scale)
{
    size_t got = fread(dst, 1, (size_t)x->count, x->f);
    if (got != (size_t)x->count)
        return dn_error(DN_ERR_IO, "file %s: read failed after %lld elements (file changed while reading?)", x->path,
                        (long long)got);
    /* only a scale beyond FLT_MAX / 255 can overflow; then find the first byte that does, as idx_read would */
    unsigned char top = 255;
    if (isfinite((float)(scale * idx_value(0x08, &top)))) return DN_OK;
    for (int64_t i = 0; i < x->count; i++) {
        float v = (float)(scale * idx_value(0x08, dst + i));
        if (!isfinite(v))
            return dn_error(DN_ERR_NUMERIC, "file %s: element %lld is %d after scaling by %g (not a finite float32)",
                            x->path, (long long)i, dst[i], (double)scale);
    }
    return DN_OK;
}

/* compact: keep unsigned-byte images as bytes (x_bytes) instead of floats. */
static dn_status load_idx(const char *fn, const char *images, const char *labels, float scale, bool compact,
                          dn_dataset **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "%s: out must not be NULL", fn);
    *out = NULL;
    if (!images) return dn_error(DN_ERR_ARG, "%s: no images file given", fn);
    if (!isfinite(scale) || scale == 0.0f)
        return dn_error(DN_ERR_ARG, "%s: scale %g must be finite and non-zero (1/255 maps bytes to [0, 1], 1 keeps "
                        "the values)", fn, (double)scale);

    /* Both headers first: a count mismatch is reported before 47 MB of images are read. */
    idx_file xi, yi = {0};
    dn_status s = idx_open(images, DN_MAX_DIMS + 1, &xi);
    if (s) return s;
    if (labels) {
        if ((s = idx_open(labels, DN_MAX_DIMS + 1, &yi))) goto done;
        if (yi.ndim != 1) {
            s = dn_error(DN_ERR_FORMAT, "file %s: labels have shape %s; expected one dimension (one label per "
                         "sample)", labels, dn_shape_str(yi.ndim, yi.dims));
            goto done;
        }
        if (yi.dims[0] != xi.dims[0]) {
            s = dn_error(DN_ERR_SHAPE, "images have %lld samples but labels %lld (%s vs %s)", (long long)xi.dims[0],
                         (long long)yi.dims[0], images, labels);
            goto done;
        }
    }

    dn_dataset *d = dn_calloc(1, sizeof *d);
    if (!d) {
        s = DN_ERR_NOMEM;
        goto done;
    }
    d->n = xi.dims[0];
    /* a rank-1 file holds one scalar per sample: give it shape [1] so batches are [B, 1] matrices */
    d->ndim = xi.ndim > 1 ? xi.ndim - 1 : 1;
    d->shape[0] = 1;
    for (int i = 1; i < xi.ndim; i++) d->shape[i - 1] = xi.dims[i];
    if ((uint64_t)xi.count > SIZE_MAX / sizeof(float)) {
        s = dn_error(DN_ERR_NOMEM, "file %s: %lld elements do not fit in memory", images, (long long)xi.count);
        dn_free(d);
        goto done;
    }
    bool bytes = compact && xi.type == 0x08;
    if (bytes) {
        d->x_bytes = dn_alloc((size_t)xi.count);
        d->x_scale = scale;
    } else {
        d->x = dn_alloc((size_t)xi.count * sizeof(float));
    }
    d->y = dn_calloc((size_t)d->n, sizeof(float));
    if ((!d->x && !d->x_bytes) || !d->y) {
        s = DN_ERR_NOMEM;
        dn_dataset_free(d);
        goto done;
    }
    if ((s = bytes ? idx_read_bytes(&xi, d->x_bytes, scale) : idx_read(&xi, d->x, scale))) {
        dn_dataset_free(d);
        goto done;
    }
    if (labels) {
        if ((s = idx_read(&yi, d->y, 1.0f))) {
            dn_dataset_free(d);
            goto done;
        }
        float max = 0.0f;
        for (int64_t i = 0; i < d->n; i++) {
            float v = d->y[i];
            if (v < 0.0f || v != floorf(v) || v >= MAX_LABEL) {
                s = dn_error(DN_ERR_FORMAT, "file %s: label %lld is %g; labels must be integers from 0 to %.0f", labels,
                             (long long)i, (double)v, (double)MAX_LABEL - 1);
                dn_dataset_free(d);
                goto done;
            }
            if (v > max) max = v;
        }
        d->n_classes = 1 + (int)max;
    }
    *out = d;
done:
    idx_close(&xi);
    idx_close(&yi);
    return s;
}

dn_status dn_dataset_load_idx(const char *images, const char *labels, float scale, dn_dataset **out)
{
    return load_idx("dn_dataset_load_idx", images, labels, scale, false, out);
}

dn_status dn_dataset_load_idx_compact(const char *images, const char *labels, float scale, dn_dataset **out)
{
    return load_idx("dn_dataset_load_idx_compact", images, labels, scale, true, out);
}
