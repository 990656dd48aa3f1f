/* Tensors (shape, strides, data) and the seeded random generator. */
#include "internal.h"

#include <math.h>

/* ------------------------------------------------------------------ rng: xoshiro128++ */

static uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

void dn_rng_seed(dn_rng *r, uint64_t seed)
{
    /* splitmix64 spreads the seed over the four words (never all zero) */
    for (int i = 0; i < 4; i += 2) {
        seed += 0x9e3779b97f4a7c15ULL;
        uint64_t z = seed;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        r->s[i] = (uint32_t)z;
        r->s[i + 1] = (uint32_t)(z >> 32);
    }
}

uint32_t dn_rng_u32(dn_rng *r)
{
    uint32_t *s = r->s;
    uint32_t result = rotl(s[0] + s[3], 7) + s[0];
    uint32_t t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
}

float dn_rng_uniform(dn_rng *r) { return (float)(dn_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float dn_rng_normal(dn_rng *r)
{
    /* Box-Muller; one value per call keeps the stream simple to reproduce */
    float u1 = ((float)(dn_rng_u32(r) >> 8) + 1.0f) * (1.0f / 16777217.0f);
    float u2 = dn_rng_uniform(r);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

/* ------------------------------------------------------------------ shapes */

int64_t dn_shape_numel(int ndim, const int64_t *shape)
{
    /* saturates instead of overflowing, so a hostile shape reads as "too large", never as a small number */
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) return shape[i] == 0 ? 0 : -1;
        if (n > INT64_MAX / shape[i]) return INT64_MAX;
        n *= shape[i];
    }
    return n;
}

void dn_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i];
    }
}

bool dn_tensor_is_contiguous(const dn_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool dn_same_shape(const dn_tensor *a, const dn_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *dn_shape_str(int ndim, const int64_t *shape)
{
    static _Thread_local char bufs[4][96];
    static _Thread_local int next;
    char *b = bufs[next];
    next = (next + 1) % 4;
    size_t n = 0;
    n += (size_t)snprintf(b + n, sizeof bufs[0] - n, "[");
    for (int i = 0; i < ndim && n < sizeof bufs[0]; i++)
        n += (size_t)snprintf(b + n, sizeof bufs[0] - n, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (n < sizeof bufs[0]) snprintf(b + n, sizeof bufs[0] - n, "]");
    return b;
}

const char *dn_tshape(const dn_tensor *t) { return dn_shape_str(t->ndim, t->shape); }

int dn_norm_axis(int axis, int ndim)
{
    if (axis < 0) axis += ndim;
    return (axis < 0 || axis >= ndim) ? -1 : axis;
}

static dn_status check_shape(int ndim, const int64_t *shape)
{
    if (ndim < 0 || ndim > DN_MAX_DIMS)
        return dn_error(DN_ERR_SHAPE, "a tensor has 0 to %d dimensions, not %d", DN_MAX_DIMS, ndim);
    if (ndim > 0 && !shape) return dn_error(DN_ERR_ARG, "shape is NULL");
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return dn_error(DN_ERR_SHAPE, "dimension %d is negative (%lld)", i, (long long)shape[i]);
        if (shape[i] > 0 && n > ((int64_t)1 << 40) / shape[i])
            return dn_error(DN_ERR_SHAPE, "shape %s has too many elements", dn_shape_str(ndim, shape));
        n *= shape[i];
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ public tensor API */

/* ------------------------------------------------------------------ tensors in a context's arena
 * (the context is the tape's too, but allocating from its arena is this floor's business) */

void *dn_ctx_alloc(dn_ctx *ctx, size_t size) { return dn_arena_alloc(&ctx->arena, size); }
void *dn_ctx_calloc(dn_ctx *ctx, size_t size) { return dn_arena_calloc(&ctx->arena, size); }

static dn_tensor *ctx_header(dn_ctx *ctx, int ndim, const int64_t *shape)
{
    dn_tensor *t = dn_arena_calloc(&ctx->arena, sizeof *t);
    if (!t) return NULL;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    dn_contiguous_strides(ndim, shape, t->stride);
    t->ctx = ctx;
    return t;
}

dn_tensor *dn_ctx_tensor(dn_ctx *ctx, int ndim, const int64_t *shape)
{
    dn_tensor *t = ctx_header(ctx, ndim, shape);
    if (!t) return NULL;
    int64_t n = dn_shape_numel(ndim, shape);
    t->data = dn_arena_alloc(&ctx->arena, (size_t)(n ? n : 1) * sizeof(float));
    return t->data ? t : NULL;
}

dn_tensor *dn_ctx_zeros(dn_ctx *ctx, int ndim, const int64_t *shape)
{
    dn_tensor *t = dn_ctx_tensor(ctx, ndim, shape);
    if (t) memset(t->data, 0, (size_t)dn_shape_numel(ndim, shape) * sizeof(float));
    return t;
}

dn_tensor *dn_ctx_view(dn_ctx *ctx, const dn_tensor *x)
{
    dn_tensor *t = dn_arena_alloc(&ctx->arena, sizeof *t);
    if (!t) return NULL;
    *t = *x;
    t->grad = NULL;
    t->node = NULL;
    t->ctx = ctx;
    t->requires_grad = false;
    t->owns_data = t->owns_grad = false;
    return t;
}

const float *dn_ctx_contig(dn_ctx *ctx, const dn_tensor *t)
{
    if (dn_tensor_is_contiguous(t)) return t->data;
    float *buf = dn_arena_alloc(&ctx->arena, (size_t)dn_tensor_numel(t) * sizeof(float) + sizeof(float));
    if (buf) dn_tensor_read(t, buf);
    return buf;
}

dn_status dn_tensor_new(dn_ctx *ctx, int ndim, const int64_t *shape, dn_tensor **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_tensor_new: out is NULL");
    *out = NULL;
    dn_status s = check_shape(ndim, shape);
    if (s) return s;
    if (ctx) {
        dn_tensor *t = dn_ctx_zeros(ctx, ndim, shape);
        if (!t) return DN_ERR_NOMEM;
        *out = t;
        return DN_OK;
    }
    int64_t n = dn_shape_numel(ndim, shape);
    dn_tensor *t = dn_calloc(1, sizeof *t);
    if (!t) return DN_ERR_NOMEM;
    t->data = dn_calloc((size_t)(n ? n : 1), sizeof(float));
    if (!t->data) {
        dn_free(t);
        return DN_ERR_NOMEM;
    }
    t->owns_data = true;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    dn_contiguous_strides(ndim, shape, t->stride);
    *out = t;
    return DN_OK;
}

dn_status dn_tensor_from(dn_ctx *ctx, int ndim, const int64_t *shape, const float *data, dn_tensor **out)
{
    if (!data) return dn_error(DN_ERR_ARG, "dn_tensor_from: data is NULL");
    dn_status s = dn_tensor_new(ctx, ndim, shape, out);
    if (s) return s;
    memcpy((*out)->data, data, (size_t)dn_shape_numel(ndim, shape) * sizeof(float));
    return DN_OK;
}

void dn_tensor_free(dn_tensor *t)
{
    if (!t || t->ctx) return;
    if (t->owns_data) dn_free(t->data);
    if (t->owns_grad) dn_free(t->grad);
    dn_free(t);
}

int dn_tensor_ndim(const dn_tensor *t) { return t->ndim; }

int64_t dn_tensor_dim(const dn_tensor *t, int axis)
{
    int a = dn_norm_axis(axis, t->ndim);
    return a < 0 ? -1 : t->shape[a];
}

int64_t dn_tensor_numel(const dn_tensor *t) { return dn_shape_numel(t->ndim, t->shape); }

float *dn_tensor_data(dn_tensor *t) { return dn_tensor_is_contiguous(t) ? t->data : NULL; }

/* Offset in elements of the row-major flat index `index`. */
static int64_t flat_offset(const dn_tensor *t, int64_t index)
{
    int64_t off = 0;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t d = t->shape[i];
        off += (index % d) * t->stride[i];
        index /= d;
    }
    return off;
}

float dn_tensor_get(const dn_tensor *t, int64_t index) { return t->data[flat_offset(t, index)]; }

void dn_tensor_read(const dn_tensor *t, float *buf)
{
    int64_t n = dn_tensor_numel(t);
    if (dn_tensor_is_contiguous(t)) {
        memcpy(buf, t->data, (size_t)n * sizeof(float));
        return;
    }
    /* walk the index like an odometer, last axis fastest */
    int64_t idx[DN_MAX_DIMS] = {0};
    int64_t off = 0;
    for (int64_t k = 0; k < n; k++) {
        buf[k] = t->data[off];
        for (int i = t->ndim - 1; i >= 0; i--) {
            if (++idx[i] < t->shape[i]) {
                off += t->stride[i];
                break;
            }
            off -= (idx[i] - 1) * t->stride[i];
            idx[i] = 0;
        }
    }
}

const char *dn_tensor_shape_str(const dn_tensor *t, char *buf, size_t size)
{
    snprintf(buf, size, "%s", dn_tshape(t));
    return buf;
}

dn_status dn_tensor_set_requires_grad(dn_tensor *t, bool requires)
{
    if (!t) return dn_error(DN_ERR_ARG, "dn_tensor_set_requires_grad: tensor is NULL");
    if (requires && !t->ctx && !t->grad) {
        t->grad = dn_calloc((size_t)(dn_tensor_numel(t) ? dn_tensor_numel(t) : 1), sizeof(float));
        if (!t->grad) return DN_ERR_NOMEM;
        t->owns_grad = true;
    }
    t->requires_grad = requires;
    return DN_OK;
}

bool dn_tensor_requires_grad(const dn_tensor *t) { return t->requires_grad; }

float *dn_tensor_grad(dn_tensor *t) { return t->grad; }

void dn_tensor_zero_grad(dn_tensor *t)
{
    if (t && t->grad) memset(t->grad, 0, (size_t)dn_tensor_numel(t) * sizeof(float));
}

static dn_status need_contiguous(dn_tensor *t, const char *fn)
{
    if (!t) return dn_error(DN_ERR_ARG, "%s: tensor is NULL", fn);
    if (!dn_tensor_is_contiguous(t)) return dn_error(DN_ERR_ARG, "%s: tensor %s is not contiguous", fn, dn_tshape(t));
    return DN_OK;
}

dn_status dn_tensor_fill(dn_tensor *t, float value)
{
    dn_status s = need_contiguous(t, "dn_tensor_fill");
    if (s) return s;
    int64_t n = dn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) t->data[i] = value;
    return DN_OK;
}

dn_status dn_tensor_fill_uniform(dn_tensor *t, dn_rng *r, float lo, float hi)
{
    dn_status s = need_contiguous(t, "dn_tensor_fill_uniform");
    if (s) return s;
    int64_t n = dn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) t->data[i] = lo + (hi - lo) * dn_rng_uniform(r);
    return DN_OK;
}

dn_status dn_tensor_fill_normal(dn_tensor *t, dn_rng *r, float mean, float std)
{
    dn_status s = need_contiguous(t, "dn_tensor_fill_normal");
    if (s) return s;
    int64_t n = dn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) t->data[i] = mean + std * dn_rng_normal(r);
    return DN_OK;
}
