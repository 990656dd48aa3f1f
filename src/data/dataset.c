/* Data sets in memory: sizes, seeded splits, feature statistics, and the minibatch iterator.
 * The loaders for IDX and CSV files are in idx.c and csv.c.
 *
 * Samples are stored as floats (x) or as bytes (x_bytes, x_scale, and after normalisation x_mean/x_std).  A byte
 * sample is turned into floats only when it is copied out (dn_dataset_get), by the same float operations, in
 * the same order, that the IDX loader and dn_dataset_normalize apply to float storage, so both storages give
 * identical bits. */
#include "internal.h"

#include <math.h>

int64_t dn_dataset_target_size(const dn_dataset *d) { return d && d->target_size > 1 ? d->target_size : 1; }

int64_t dn_dataset_sample_size(const dn_dataset *d)
{
    if (!d) return 0;
    int64_t n = 1;
    for (int i = 0; i < d->ndim; i++) n *= d->shape[i];
    return n;
}

void dn_dataset_free(dn_dataset *d)
{
    if (!d) return;
    dn_free(d->x);
    dn_free(d->y);
    dn_free(d->x_bytes);
    dn_free(d->x_mean);
    dn_free(d->x_std);
    dn_free(d);
}

/* The 256 byte values as the floats that float storage would hold: the loader computes (float)(scale * (double)b)
 * (exact in double: 24 x 8 bits), and dn_dataset_normalize then (v - mean) / std in float, per feature. */
static void byte_table(const dn_dataset *d, float *table)
{
    for (int b = 0; b < 256; b++) table[b] = (float)(d->x_scale * (double)b);
}

/* Values j0 .. j0 + m - 1 of sample i into out; table: byte_table(d) for byte storage. */
static void get_values_with(const dn_dataset *d, const float *table, int64_t i, int64_t j0, int64_t m, float *out)
{
    int64_t ss = dn_dataset_sample_size(d);
    if (d->x) {
        memcpy(out, d->x + i * ss + j0, (size_t)m * sizeof(float));
        return;
    }
    const uint8_t *row = d->x_bytes + i * ss + j0;
    if (!d->x_mean) {
        for (int64_t j = 0; j < m; j++) out[j] = table[row[j]];
        return;
    }
    const float *mean = d->x_mean + j0, *std = d->x_std + j0;
    for (int64_t j = 0; j < m; j++) out[j] = (table[row[j]] - mean[j]) / std[j];
}

static void get_values(const dn_dataset *d, int64_t i, int64_t j0, int64_t m, float *out)
{
    float table[256];
    if (!d->x) byte_table(d, table);
    get_values_with(d, table, i, j0, m, out);
}

int64_t dn_dataset_get(const dn_dataset *d, int64_t first, int64_t count, float *out)
{
    if (!d || !out || first < 0 || first >= d->n || count <= 0) return 0;
    if (count > d->n - first) count = d->n - first;
    int64_t ss = dn_dataset_sample_size(d);
    if (ss == 0) return count; /* nothing to copy */
    if (!d->x && !d->x_bytes) return 0;
    if (d->x) {
        memcpy(out, d->x + first * ss, (size_t)(count * ss) * sizeof(float));
        return count;
    }
    float table[256];
    byte_table(d, table);
    for (int64_t i = 0; i < count; i++) get_values_with(d, table, first + i, 0, ss, out + i * ss);
    return count;
}

/* A uniform integer in [0, bound), bound >= 1.  Plain `x % bound` would favour small values; rejecting the
 * lowest (2^k mod bound) draws leaves a range whose size is a multiple of bound. */
static uint64_t rand_below(dn_rng *r, uint64_t bound)
{
    if (bound <= UINT32_MAX) {
        uint32_t b = (uint32_t)bound, threshold = (uint32_t)(0u - b) % b;
        for (;;) {
            uint32_t x = dn_rng_u32(r);
            if (x >= threshold) return x % b;
        }
    }
    uint64_t threshold = (0u - bound) % bound;
    for (;;) {
        uint64_t x = ((uint64_t)dn_rng_u32(r) << 32) | dn_rng_u32(r);
        if (x >= threshold) return x % bound;
    }
}

/* perm = a uniformly random permutation of 0..n-1 (Fisher-Yates), a function of the generator state alone:
 * it starts from the identity every time, so restoring the state reproduces the permutation. */
static void random_permutation(dn_rng *r, int64_t *perm, int64_t n)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rand_below(r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

static dn_status check_dataset(const char *fn, const dn_dataset *d)
{
    if (!d) return dn_error(DN_ERR_ARG, "%s: data set is NULL", fn);
    if (d->n < 0 || d->ndim < 0 || d->ndim > DN_MAX_DIMS)
        return dn_error(DN_ERR_ARG, "%s: data set has n = %lld, ndim = %d", fn, (long long)d->n, d->ndim);
    for (int i = 0; i < d->ndim; i++)
        if (d->shape[i] < 0) return dn_error(DN_ERR_ARG, "%s: data set has sample shape %s", fn,
                                             dn_shape_str(d->ndim, d->shape));
    if (d->n > 0 && (!d->y || (!d->x && !d->x_bytes && dn_dataset_sample_size(d) > 0)))
        return dn_error(DN_ERR_ARG, "%s: data set of %lld samples has no x or y array", fn, (long long)d->n);
    if (d->x && d->x_bytes)
        return dn_error(DN_ERR_ARG, "%s: data set has both x and x_bytes; exactly one holds the samples", fn);
    if (d->x_bytes && !d->x_mean != !d->x_std)
        return dn_error(DN_ERR_ARG, "%s: data set has only one of x_mean and x_std", fn);
    return DN_OK;
}

/* An empty data set of n samples shaped and stored like `like` (floats or bytes, with its scale and
 * normalisation), with x or x_bytes and y allocated (uninitialised). */
static dn_dataset *dataset_like(const dn_dataset *like, int64_t n)
{
    int64_t ss = dn_dataset_sample_size(like);
    if (ss > 0 && n > (int64_t)(SIZE_MAX / sizeof(float)) / ss) {
        dn_error(DN_ERR_NOMEM, "data set of %lld samples of %lld floats is too large", (long long)n, (long long)ss);
        return NULL;
    }
    dn_dataset *d = dn_calloc(1, sizeof *d);
    if (!d) return NULL;
    d->n = n;
    d->ndim = like->ndim;
    memcpy(d->shape, like->shape, sizeof d->shape);
    d->n_classes = like->n_classes;
    d->target_size = like->target_size;
    d->x_scale = like->x_scale;
    bool ok = true;
    if (like->x_bytes) {
        ok = (d->x_bytes = dn_alloc((size_t)(n * ss))) != NULL;
        if (ok && like->x_mean) {
            d->x_mean = dn_alloc((size_t)ss * sizeof(float));
            d->x_std = dn_alloc((size_t)ss * sizeof(float));
            ok = d->x_mean && d->x_std;
            if (ok) memcpy(d->x_mean, like->x_mean, (size_t)ss * sizeof(float));
            if (ok) memcpy(d->x_std, like->x_std, (size_t)ss * sizeof(float));
        }
    } else {
        ok = (d->x = dn_alloc((size_t)(n * ss) * sizeof(float))) != NULL;
    }
    d->y = dn_alloc((size_t)(n * dn_dataset_target_size(like)) * sizeof(float));
    if (!ok || !d->y) {
        dn_dataset_free(d);
        return NULL;
    }
    return d;
}

dn_status dn_dataset_split(const dn_dataset *d, double fraction, uint64_t seed, dn_dataset **a, dn_dataset **b)
{
    if (!a || !b) return dn_error(DN_ERR_ARG, "dn_dataset_split: a and b must not be NULL");
    *a = *b = NULL;
    dn_status s = check_dataset("dn_dataset_split", d);
    if (s) return s;
    if (!(fraction >= 0.0 && fraction < 1.0))
        return dn_error(DN_ERR_ARG, "dn_dataset_split: fraction %g is outside [0, 1)", fraction);
    /* round to nearest, so that 0.1 of 60000 is 6000 even when 0.1 * 60000 lands a hair below it */
    int64_t n_b = (int64_t)llround(fraction * (double)d->n);
    int64_t n_a = d->n - n_b;
    if (d->n > 0 && n_a == 0)
        return dn_error(DN_ERR_ARG, "dn_dataset_split: a fraction of %g of %lld samples leaves none for training",
                        fraction, (long long)d->n);

    int64_t *perm = dn_alloc((size_t)(d->n ? d->n : 1) * sizeof *perm);
    unsigned char *in_b = dn_calloc((size_t)(d->n ? d->n : 1), 1);
    dn_dataset *da = dataset_like(d, n_a), *db = dataset_like(d, n_b);
    if (!perm || !in_b || !da || !db) {
        dn_free(perm);
        dn_free(in_b);
        dn_dataset_free(da);
        dn_dataset_free(db);
        return DN_ERR_NOMEM;
    }
    dn_rng r;
    dn_rng_seed(&r, seed);
    random_permutation(&r, perm, d->n);
    for (int64_t i = n_a; i < d->n; i++) in_b[perm[i]] = 1;
    /* Both parts keep the original order of their samples, so a split of ordered data stays readable. */
    int64_t ss = dn_dataset_sample_size(d), ts = dn_dataset_target_size(d), ia = 0, ib = 0;
    for (int64_t i = 0; i < d->n; i++) {
        dn_dataset *dst = in_b[i] ? db : da;
        int64_t *k = in_b[i] ? &ib : &ia;
        if (ss && d->x) memcpy(dst->x + *k * ss, d->x + i * ss, (size_t)ss * sizeof(float));
        if (ss && d->x_bytes) memcpy(dst->x_bytes + *k * ss, d->x_bytes + i * ss, (size_t)ss);
        memcpy(dst->y + *k * ts, d->y + i * ts, (size_t)ts * sizeof(float));
        (*k)++;
    }
    dn_free(perm);
    dn_free(in_b);
    *a = da;
    *b = db;
    return DN_OK;
}

/* Features are processed in blocks whose double accumulators fit on the stack: rows are then read
 * contiguously (cache-friendly) without allocating, and sums run in a fixed order. */
#define STAT_BLOCK 256

void dn_dataset_stats(const dn_dataset *d, float *mean, float *std)
{
    if (!d || !mean || !std) return;
    int64_t ss = dn_dataset_sample_size(d);
    if (d->n <= 0 || (!d->x && !d->x_bytes)) {
        for (int64_t j = 0; j < ss; j++) mean[j] = 0.0f, std[j] = 1.0f;
        return;
    }
    /* byte storage: each row's block of values is made in buf, then summed exactly as float rows are */
    double acc[STAT_BLOCK];
    float buf[STAT_BLOCK];
    for (int64_t j0 = 0; j0 < ss; j0 += STAT_BLOCK) {
        int64_t m = ss - j0 < STAT_BLOCK ? ss - j0 : STAT_BLOCK;
        /* two passes: mean = sum x / n, then std = sqrt(sum (x - mean)^2 / n) (population std, as
         * sklearn's StandardScaler), which avoids the cancellation of sum x^2 - n mean^2 */
        for (int64_t j = 0; j < m; j++) acc[j] = 0.0;
        for (int64_t i = 0; i < d->n; i++) {
            const float *row = d->x ? d->x + i * ss + j0 : buf;
            if (!d->x) get_values(d, i, j0, m, buf);
            for (int64_t j = 0; j < m; j++) acc[j] += row[j];
        }
        for (int64_t j = 0; j < m; j++) mean[j0 + j] = (float)(acc[j] / (double)d->n);
        for (int64_t j = 0; j < m; j++) acc[j] = 0.0;
        for (int64_t i = 0; i < d->n; i++) {
            const float *row = d->x ? d->x + i * ss + j0 : buf;
            if (!d->x) get_values(d, i, j0, m, buf);
            for (int64_t j = 0; j < m; j++) {
                double dev = (double)row[j] - mean[j0 + j];
                acc[j] += dev * dev;
            }
        }
        for (int64_t j = 0; j < m; j++) std[j0 + j] = (float)sqrt(acc[j] / (double)d->n);
    }
}

/* Byte storage normalised once more: (v - m1) / s1 has no byte form, so the samples become floats, computed
 * through dn_dataset_get to be exactly what float storage holds at this point. */
static dn_status bytes_to_floats(dn_dataset *d)
{
    int64_t ss = dn_dataset_sample_size(d);
    if (ss > 0 && d->n > (int64_t)(SIZE_MAX / sizeof(float)) / ss)
        return dn_error(DN_ERR_NOMEM, "dn_dataset_normalize: %lld samples of %lld floats do not fit in memory",
                        (long long)d->n, (long long)ss);
    float *x = dn_alloc((size_t)(d->n * ss > 0 ? d->n * ss : 1) * sizeof(float));
    if (!x) return dn_error(DN_ERR_NOMEM, "dn_dataset_normalize: no memory to turn %lld byte samples into floats",
                            (long long)d->n);
    for (int64_t i = 0; i < d->n; i++) get_values(d, i, 0, ss, x + i * ss);
    dn_free(d->x_bytes);
    dn_free(d->x_mean);
    dn_free(d->x_std);
    d->x_bytes = NULL;
    d->x_mean = d->x_std = NULL;
    d->x = x;
    return DN_OK;
}

dn_status dn_dataset_normalize(dn_dataset *d, const float *mean, const float *std)
{
    if (!d || !mean || !std)
        return dn_error(DN_ERR_ARG, "dn_dataset_normalize: data set, mean and std must not be NULL");
    if (d->x && d->x_bytes)
        return dn_error(DN_ERR_ARG, "dn_dataset_normalize: data set has both x and x_bytes; exactly one holds the "
                        "samples");
    if (d->x_bytes && !d->x_mean != !d->x_std)
        return dn_error(DN_ERR_ARG, "dn_dataset_normalize: data set has only one of x_mean and x_std");
    dn_status s = DN_OK;
    int64_t ss = dn_dataset_sample_size(d);
    if (d->x_bytes && !d->x_mean) {
        /* the first normalisation of bytes: remember it, dn_dataset_get applies it */
        size_t bytes = (size_t)(ss > 0 ? ss : 1) * sizeof(float);
        float *m = dn_alloc(bytes), *sd = dn_alloc(bytes);
        if (!m || !sd) {
            dn_free(m);
            dn_free(sd);
            return dn_error(DN_ERR_NOMEM, "dn_dataset_normalize: no memory for %lld means and deviations",
                            (long long)ss);
        }
        for (int64_t j = 0; j < ss; j++) {
            m[j] = mean[j];
            sd[j] = std[j] != 0.0f ? std[j] : 1.0f; /* as below */
        }
        d->x_mean = m;
        d->x_std = sd;
        return DN_OK;
    }
    if (d->x_bytes && (s = bytes_to_floats(d))) return s;
    if (!d->x) return DN_OK; /* nothing to normalise: no samples, or samples of size 0 */
    for (int64_t i = 0; i < d->n; i++) {
        float *row = d->x + i * ss;
        for (int64_t j = 0; j < ss; j++) {
            float sd = std[j] != 0.0f ? std[j] : 1.0f; /* a constant feature stays finite: just centred */
            row[j] = (row[j] - mean[j]) / sd;
        }
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ the batcher */

struct dn_batcher {
    const dn_dataset *d; /* borrowed: must outlive the batcher */
    int64_t batch;
    bool shuffle;
    dn_rng rng;
    int64_t *perm; /* this epoch's order of the samples */
    int64_t pos;   /* next index into perm */
};

dn_status dn_batcher_new(const dn_dataset *d, int64_t batch, bool shuffle, uint64_t seed, dn_batcher **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_batcher_new: out must not be NULL");
    *out = NULL;
    dn_status s = check_dataset("dn_batcher_new", d);
    if (s) return s;
    if (batch < 1) return dn_error(DN_ERR_ARG, "dn_batcher_new: batch size %lld must be at least 1", (long long)batch);
    dn_batcher *b = dn_calloc(1, sizeof *b);
    if (!b) return DN_ERR_NOMEM;
    b->perm = dn_alloc((size_t)(d->n ? d->n : 1) * sizeof *b->perm);
    if (!b->perm) {
        dn_free(b);
        return DN_ERR_NOMEM;
    }
    b->d = d;
    b->batch = batch;
    b->shuffle = shuffle;
    dn_rng_seed(&b->rng, seed);
    dn_batcher_reset(b);
    *out = b;
    return DN_OK;
}

void dn_batcher_free(dn_batcher *b)
{
    if (!b) return;
    dn_free(b->perm);
    dn_free(b);
}

/* The generator is used here and nowhere else, so its state before a reset fully determines the next
 * epoch's order: a checkpoint that saves it between epochs resumes the identical sequence. */
void dn_batcher_reset(dn_batcher *b)
{
    if (!b) return;
    b->pos = 0;
    if (b->shuffle) {
        random_permutation(&b->rng, b->perm, b->d->n);
    } else {
        for (int64_t i = 0; i < b->d->n; i++) b->perm[i] = i;
    }
}

int64_t dn_batcher_next(dn_batcher *b, float *x, float *y)
{
    if (!b || b->pos >= b->d->n) return 0;
    int64_t k = b->d->n - b->pos < b->batch ? b->d->n - b->pos : b->batch;
    int64_t ss = dn_dataset_sample_size(b->d), ts = dn_dataset_target_size(b->d);
    const bool copy_x = x && ss && (b->d->x || b->d->x_bytes);
    float table[256]; /* byte storage: the value table once per batch, not once per sample */
    if (copy_x && !b->d->x) byte_table(b->d, table);
    for (int64_t i = 0; i < k; i++) {
        int64_t src = b->perm[b->pos + i];
        if (copy_x) get_values_with(b->d, table, src, 0, ss, x + i * ss);
        if (y) memcpy(y + i * ts, b->d->y + src * ts, (size_t)ts * sizeof(float));
    }
    b->pos += k;
    return k;
}

dn_rng *dn_batcher_rng(dn_batcher *b) { return b ? &b->rng : NULL; }
