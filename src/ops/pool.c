/* 2-D pooling (NCHW): max, min and average over kh x kw windows, and their global forms over the whole plane.
 *
 * Window (oh, ow) covers input rows oh*sh - ph .. oh*sh - ph + kh - 1 (and the same for columns); the
 * output size is floor((H + 2 ph - kh) / sh) + 1, as torch with ceil_mode off.  Padding never wins a max
 * or min (it counts as -inf / +inf), so the window is simply clipped to the input.  Average pooling divides
 * by kh*kw even where the window overlaps the padding (torch's count_include_pad=True): the padding
 * counts as zeros.
 *
 * Max and min send the gradient to ONE element per window: the first extreme one in row-major window order
 * (torch's argmax rule, ties included; a NaN wins, as in torch).  The forward pass records that element's
 * index in the plane, so backward is a scatter-add. */
#include "internal.h"
#include "kernels/cpu.h"
#include "kernels/threads.h"

#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum { P_MAX, P_MIN, P_AVG };

typedef struct pool_plan {
    int64_t planes, H, W; /* N*C input planes of H x W */
    int64_t kh, kw, sh, sw, ph, pw;
    int64_t Ho, Wo;
} pool_plan;

static dn_status int_attr(const dn_node *node, int i, int64_t min, int64_t *out)
{
    double v = node->attr[i];
    if (!(v >= (double)min && v <= 1e9 && v == floor(v)))
        return dn_error(DN_ERR_ARG, "%s must be an integer >= %lld, got %g (input %s)", node->op->attr_names[i],
                        (long long)min, v, dn_tshape(node->in[0]));
    *out = (int64_t)v;
    return DN_OK;
}

/* global: one window over the whole plane (no attributes). */
static dn_status plan_pool(const dn_node *node, bool global, pool_plan *p)
{
    const dn_tensor *x = node->in[0];
    if (x->ndim != 4) return dn_error(DN_ERR_SHAPE, "input must be [N, C, H, W], got %s", dn_tshape(x));
    p->planes = x->shape[0] * x->shape[1];
    p->H = x->shape[2];
    p->W = x->shape[3];
    if (p->H < 1 || p->W < 1) return dn_error(DN_ERR_SHAPE, "input %s has an empty plane", dn_tshape(x));
    if (global) {
        p->kh = p->H;
        p->kw = p->W;
        p->sh = p->sw = 1;
        p->ph = p->pw = 0;
    } else {
        dn_status s;
        if ((s = int_attr(node, DN_POOL_KERNEL_H, 1, &p->kh)) || (s = int_attr(node, DN_POOL_KERNEL_W, 1, &p->kw)) ||
            (s = int_attr(node, DN_POOL_STRIDE_H, 0, &p->sh)) || (s = int_attr(node, DN_POOL_STRIDE_W, 0, &p->sw)) ||
            (s = int_attr(node, DN_POOL_PAD_H, 0, &p->ph)) || (s = int_attr(node, DN_POOL_PAD_W, 0, &p->pw)))
            return s;
        if (p->sh == 0) p->sh = p->kh; /* torch's default stride is the kernel size */
        if (p->sw == 0) p->sw = p->kw;
        /* torch's rule; it also guarantees that every window holds at least one input element */
        if (p->ph > p->kh / 2 || p->pw > p->kw / 2)
            return dn_error(DN_ERR_ARG, "padding %lldx%lld must be at most half the kernel %lldx%lld (input %s)",
                            (long long)p->ph, (long long)p->pw, (long long)p->kh, (long long)p->kw, dn_tshape(x));
        if (p->H + 2 * p->ph < p->kh || p->W + 2 * p->pw < p->kw)
            return dn_error(DN_ERR_SHAPE, "kernel %lldx%lld is larger than input %s padded by %lldx%lld",
                            (long long)p->kh, (long long)p->kw, dn_tshape(x), (long long)p->ph, (long long)p->pw);
    }
    p->Ho = dn_conv_out_size(p->H, p->kh, p->sh, p->ph, 1);
    p->Wo = dn_conv_out_size(p->W, p->kw, p->sw, p->pw, 1);
    return DN_OK;
}

/* The window of output (oh, ow), clipped to the input: rows [*h0, *h1), columns [*w0, *w1). */
static void window(const pool_plan *p, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1)
{
    int64_t hs = oh * p->sh - p->ph, ws = ow * p->sw - p->pw;
    *h1 = hs + p->kh < p->H ? hs + p->kh : p->H;
    *w1 = ws + p->kw < p->W ? ws + p->kw : p->W;
    *h0 = hs > 0 ? hs : 0;
    *w0 = ws > 0 ? ws : 0;
}

/* The common case, 2 x 2 windows with stride 2 and no padding, for max and min: every window lies inside the
 * plane, so the clipping goes, and the comparisons keep the general loop's order and rule (strict, so the first
 * extreme element wins ties; a NaN takes over).  The first element needs no comparison: against the -inf
 * (+inf) start it is taken or, being -inf (+inf) itself, equals the start, and the index starts at it either
 * way.  `off` is where the winner lies from the window's first element: 0, 1, W or W + 1. */
static inline float take2(bool is_max, float v, float best, int32_t *off, int32_t here)
{
    const bool take = (is_max ? v > best : v < best) || isnan(v);
    if (take) *off = here;
    return take ? v : best;
}

#ifdef __SSE2__
/* Four windows at once with SSE2 (every x86-64 has it): compare masks select the values and offsets, so no
 * branch depends on the data. */
static inline __m128 take4(bool is_max, __m128 v, __m128 best, __m128i *off, __m128i here)
{
    const __m128 better = is_max ? _mm_cmpgt_ps(v, best) : _mm_cmplt_ps(v, best);
    const __m128 take = _mm_or_ps(better, _mm_cmpunord_ps(v, v));
    const __m128i ti = _mm_castps_si128(take);
    *off = _mm_or_si128(_mm_and_si128(ti, here), _mm_andnot_si128(ti, *off));
    return _mm_or_ps(_mm_and_ps(take, v), _mm_andnot_ps(take, best));
}
#endif

#if defined(__x86_64__) || defined(__i386__)
#define POOL_AVX512 1
#include <immintrin.h>

/* Sixteen windows at once with AVX-512 (a LeNet row of 14 or 5 windows is one pass, the tail masked): the
 * same comparisons, in the same order, as take4. */
__attribute__((target("avx512f"))) static void pool_2x2_rows_avx512(const pool_plan *p, bool is_max, const float *xp,
                                                                      float *yp, int64_t *ap)
{
    const int64_t W = p->W, Ho = p->Ho, Wo = p->Wo;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i one = _mm512_set1_epi32(1), below = _mm512_set1_epi32((int32_t)W), diag = _mm512_set1_epi32((int32_t)W + 1);
    const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
#define POOL_TAKE(v) ((is_max ? _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) : _mm512_cmp_ps_mask(v, best, _CMP_LT_OQ)) | \
                      _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q))
    for (int64_t oh = 0; oh < Ho; oh++) {
        const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
        float *yr = yp + oh * Wo;
        for (int64_t ow = 0; ow < Wo; ow += 16) {
            const int64_t n = Wo - ow < 16 ? Wo - ow : 16; /* windows in this pass: 2n inputs per row */
            const __mmask16 lo_m = (__mmask16)(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1u);
            const __mmask16 hi_m = (__mmask16)(n > 8 ? (1u << (2 * n - 16)) - 1u : 0u);
            const __m512 t0 = _mm512_maskz_loadu_ps(lo_m, r0 + 2 * ow), t1 = _mm512_maskz_loadu_ps(hi_m, r0 + 2 * ow + 16);
            const __m512 u0 = _mm512_maskz_loadu_ps(lo_m, r1 + 2 * ow), u1 = _mm512_maskz_loadu_ps(hi_m, r1 + 2 * ow + 16);
            const __m512 a = _mm512_permutex2var_ps(t0, even, t1), b = _mm512_permutex2var_ps(t0, odd, t1);
            const __m512 c = _mm512_permutex2var_ps(u0, even, u1), d = _mm512_permutex2var_ps(u0, odd, u1);
            __m512 best = a;
            __m512i off = _mm512_setzero_si512();
            __mmask16 take = POOL_TAKE(b);
            best = _mm512_mask_mov_ps(best, take, b);
            off = _mm512_mask_mov_epi32(off, take, one);
            take = POOL_TAKE(c);
            best = _mm512_mask_mov_ps(best, take, c);
            off = _mm512_mask_mov_epi32(off, take, below);
            take = POOL_TAKE(d);
            best = _mm512_mask_mov_ps(best, take, d);
            off = _mm512_mask_mov_epi32(off, take, diag);
            const __mmask16 out_m = (__mmask16)((1u << n) - 1u);
            _mm512_mask_storeu_ps(yr + ow, out_m, best);
            { /* index = 2 oh W + 2 (ow + lane) + off, in 64 bits */
                int64_t *ar = ap + oh * Wo + ow;
                const __m512i base = _mm512_add_epi64(_mm512_set1_epi64(2 * oh * W + 2 * ow), lane2);
                const __m512i lo = _mm512_add_epi64(base, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(off)));
                const __m512i hi = _mm512_add_epi64(_mm512_add_epi64(base, _mm512_set1_epi64(16)),
                                                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(off, 1)));
                _mm512_mask_storeu_epi64(ar, (__mmask8)out_m, lo);
                _mm512_mask_storeu_epi64(ar + 8, (__mmask8)(out_m >> 8), hi);
            }
        }
    }
#undef POOL_TAKE
}

static bool pool_have_avx512(void) { return dn_cpu_avx512(); }
#endif

static inline void pool_2x2(const pool_plan *p, bool is_max, const float *xd, float *yd, int64_t *arg, int64_t pl0,
                            int64_t pl1)
{
#ifdef POOL_AVX512
    if (pool_have_avx512()) {
        for (int64_t pl = pl0; pl < pl1; pl++)
            pool_2x2_rows_avx512(p, is_max, xd + pl * p->H * p->W, yd + pl * p->Ho * p->Wo, arg + pl * p->Ho * p->Wo);
        return;
    }
#endif
    const int64_t W = p->W, Ho = p->Ho, Wo = p->Wo;
    const int32_t down = (int32_t)W; /* W < 2^31: a layer's input has at most 2^31 elements */
    for (int64_t pl = pl0; pl < pl1; pl++) {
        const float *xp = xd + pl * p->H * W;
        for (int64_t oh = 0; oh < Ho; oh++) {
            const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
            float *yr = yd + (pl * Ho + oh) * Wo;
            int64_t *ar = arg + (pl * Ho + oh) * Wo;
            const int64_t first = 2 * oh * W; /* the index of window (oh, 0)'s first element in the plane */
            int64_t ow = 0;
#ifdef __SSE2__
            const __m128i one = _mm_set1_epi32(1), below = _mm_set1_epi32(down), diag = _mm_set1_epi32(down + 1);
            for (; ow + 4 <= Wo; ow += 4) {
                /* columns 2ow .. 2ow+7 of both rows, split into even (left) and odd (right) columns */
                const __m128 t0 = _mm_loadu_ps(r0 + 2 * ow), t1 = _mm_loadu_ps(r0 + 2 * ow + 4);
                const __m128 u0 = _mm_loadu_ps(r1 + 2 * ow), u1 = _mm_loadu_ps(r1 + 2 * ow + 4);
                const __m128 a = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));
                const __m128 b = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));
                const __m128 c = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));
                const __m128 d = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));
                __m128i off = _mm_setzero_si128();
                __m128 best = take4(is_max, b, a, &off, one);
                best = take4(is_max, c, best, &off, below);
                best = take4(is_max, d, best, &off, diag);
                _mm_storeu_ps(yr + ow, best);
                /* index = first + 2 ow + off, widened to 64 bits (off >= 0, so zeros are its high halves) */
                const __m128i lo = _mm_unpacklo_epi32(off, _mm_setzero_si128());
                const __m128i hi = _mm_unpackhi_epi32(off, _mm_setzero_si128());
                const int64_t base = first + 2 * ow;
                _mm_storeu_si128((__m128i *)(ar + ow), _mm_add_epi64(lo, _mm_set_epi64x(base + 2, base)));
                _mm_storeu_si128((__m128i *)(ar + ow + 2), _mm_add_epi64(hi, _mm_set_epi64x(base + 6, base + 4)));
            }
#endif
            for (; ow < Wo; ow++) {
                int32_t off = 0;
                float best = take2(is_max, r0[2 * ow + 1], r0[2 * ow], &off, 1);
                best = take2(is_max, r1[2 * ow], best, &off, down);
                best = take2(is_max, r1[2 * ow + 1], best, &off, down + 1);
                yr[ow] = best;
                ar[ow] = first + 2 * ow + off;
            }
        }
    }
}

/* Planes are independent, so threads take whole planes of a large input: the same numbers for any count. */
#define POOL_PAR_MIN 65536

typedef struct pool_job {
    const pool_plan *p;
    int kind;
    const float *x, *dy; /* input (forward), output gradient (backward) */
    float *y;            /* output (forward), dx (backward) */
    int64_t *arg;        /* max/min: the index in its plane of the element each output took */
} pool_job;

static void pool_forward_planes(const pool_job *j, int64_t pl0, int64_t pl1)
{
    const pool_plan *pp = j->p;
    const pool_plan p = *pp;
    const int kind = j->kind;
    if (kind != P_AVG && p.kh == 2 && p.kw == 2 && p.sh == 2 && p.sw == 2 && p.ph == 0 && p.pw == 0) {
        pool_2x2(pp, kind == P_MAX, j->x, j->y, j->arg, pl0, pl1);
        return;
    }
    const float count = (float)(p.kh * p.kw); /* count_include_pad: always the full window */
    for (int64_t pl = pl0; pl < pl1; pl++) {
        const float *xp = j->x + pl * p.H * p.W;
        float *yp = j->y + pl * p.Ho * p.Wo;
        for (int64_t oh = 0; oh < p.Ho; oh++) {
            for (int64_t ow = 0; ow < p.Wo; ow++) {
                int64_t h0, h1, w0, w1, o = oh * p.Wo + ow;
                window(&p, oh, ow, &h0, &h1, &w0, &w1);
                if (kind == P_AVG) {
                    float sum = 0;
                    for (int64_t i = h0; i < h1; i++)
                        for (int64_t jj = w0; jj < w1; jj++) sum += xp[i * p.W + jj];
                    yp[o] = sum / count;
                    continue;
                }
                /* strict comparison keeps the first extreme element; a NaN always takes over (torch) */
                float best = kind == P_MAX ? -INFINITY : INFINITY;
                int64_t at = h0 * p.W + w0;
                for (int64_t i = h0; i < h1; i++) {
                    for (int64_t jj = w0; jj < w1; jj++) {
                        float v = xp[i * p.W + jj];
                        if ((kind == P_MAX ? v > best : v < best) || isnan(v)) {
                            best = v;
                            at = i * p.W + jj;
                        }
                    }
                }
                yp[o] = best;
                j->arg[pl * p.Ho * p.Wo + o] = at;
            }
        }
    }
}

static void pool_backward_planes(const pool_job *j, int64_t pl0, int64_t pl1)
{
    const pool_plan p = *j->p;
    const float count = (float)(p.kh * p.kw);
    for (int64_t pl = pl0; pl < pl1; pl++) {
        float *dxp = j->y + pl * p.H * p.W;
        const float *dyp = j->dy + pl * p.Ho * p.Wo;
        if (j->kind != P_AVG) {
            const int64_t *ap = j->arg + pl * p.Ho * p.Wo;
            for (int64_t o = 0; o < p.Ho * p.Wo; o++) dxp[ap[o]] += dyp[o];
            continue;
        }
        /* y = (1/(kh kw)) Σ_window x, so every element of the window receives dy / (kh kw) */
        for (int64_t oh = 0; oh < p.Ho; oh++) {
            for (int64_t ow = 0; ow < p.Wo; ow++) {
                int64_t h0, h1, w0, w1;
                window(&p, oh, ow, &h0, &h1, &w0, &w1);
                float g = dyp[oh * p.Wo + ow] / count;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t jj = w0; jj < w1; jj++) dxp[i * p.W + jj] += g;
            }
        }
    }
}

static void pool_forward_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const pool_job *j = arg;
    pool_forward_planes(j, j->p->planes * part / parts, j->p->planes * (part + 1) / parts);
}

static void pool_backward_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const pool_job *j = arg;
    pool_backward_planes(j, j->p->planes * part / parts, j->p->planes * (part + 1) / parts);
}

static int pool_parts(const pool_plan *p)
{
    if (p->planes < 2 || p->planes * p->H * p->W < POOL_PAR_MIN) return 1;
    const int parts = dn_parallel_parts();
    return parts > p->planes ? (int)p->planes : parts;
}

static dn_status pool_forward(dn_ctx *ctx, dn_node *node, int kind, bool global)
{
    pool_plan p;
    dn_status s = plan_pool(node, global, &p);
    if (s) return s;
    dn_tensor *x = node->in[0];
    int64_t shape[4] = {x->shape[0], x->shape[1], p.Ho, p.Wo};
    dn_tensor *y = dn_ctx_tensor(ctx, 4, shape);
    const float *xd = dn_ctx_contig(ctx, x);
    int64_t n_out = dn_tensor_numel(y ? y : x);
    /* max/min: the index in its plane of the element each output took (backward's scatter target) */
    int64_t *arg = kind == P_AVG ? NULL : dn_ctx_alloc(ctx, (size_t)(n_out + 1) * sizeof(int64_t));
    if (!y || !xd || (kind != P_AVG && !arg)) return DN_ERR_NOMEM;
    pool_job j = {.p = &p, .kind = kind, .x = xd, .y = y->data, .arg = arg};
    dn_parallel_run(pool_parts(&p), pool_forward_part, &j);
    node->saved = arg;
    node->out = y;
    return DN_OK;
}

static dn_status pool_backward(dn_ctx *ctx, dn_node *node, int kind, bool global)
{
    dn_tensor *x = node->in[0];
    if (!x->requires_grad) return DN_OK;
    pool_plan p;
    dn_status s = plan_pool(node, global, &p);
    if (s) return s;
    float *dx = dn_grad_buf(ctx, x);
    if (!dx) return DN_ERR_NOMEM;
    pool_job j = {.p = &p, .kind = kind, .dy = node->out->grad, .y = dx, .arg = node->saved};
    dn_parallel_run(pool_parts(&p), pool_backward_part, &j);
    return DN_OK;
}

static dn_status max_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_MAX, false); }
static dn_status min_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_MIN, false); }
static dn_status avg_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_AVG, false); }
static dn_status gmax_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_MAX, true); }
static dn_status gavg_fwd(dn_ctx *c, dn_node *n) { return pool_forward(c, n, P_AVG, true); }
static dn_status max_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_MAX, false); }
static dn_status min_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_MIN, false); }
static dn_status avg_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_AVG, false); }
static dn_status gmax_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_MAX, true); }
static dn_status gavg_bwd(dn_ctx *c, dn_node *n) { return pool_backward(c, n, P_AVG, true); }

/* Inputs spread over -5..5: a max or min flips only when two elements of a window lie within the
 * finite-difference step (2e-3) of each other, which these seeds avoid. */
#define X(n, c, h, w) {4, {n, c, h, w}, DN_FILL_UNIFORM, -5, 5}

static const dn_case pool_cases[] = {
    {1, {X(2, 3, 5, 5)}, NULL},
    /* overlapping windows with padding */
    {1, {X(2, 3, 5, 5)}, "kernel_h=3 kernel_w=3 stride_h=2 stride_w=2 pad_h=1 pad_w=1"},
    /* non-square kernel, a different stride and padding per axis */
    {1, {X(1, 2, 6, 7)}, "kernel_h=2 kernel_w=3 stride_h=1 stride_w=2 pad_w=1"},
};
static const dn_case global_cases[] = {
    {1, {X(2, 3, 4, 5)}, NULL},
    {1, {X(1, 2, 1, 3)}, NULL},
};

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))
#define POOL_OP(nm, f, b, d)                                                                                \
    {.name = nm, .arity = 1, .n_attrs = DN_POOL_N_ATTRS,                                                    \
     .attr_names = {"kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"},                      \
     .attr_defaults = {2, 2, 0, 0, 0, 0}, .forward = f, .backward = b, .doc = d, .cases = pool_cases,        \
     .n_cases = N_OF(pool_cases)}

const dn_op dn_ops_pool[] = {
    POOL_OP("max_pool2d", max_fwd, max_bwd,
            "y = max over each kh x kw window (stride 0 = kernel; padding is -inf); torch.nn.functional.max_pool2d"),
    POOL_OP("avg_pool2d", avg_fwd, avg_bwd,
            "y = window sum / (kh kw), padding counted as zeros; torch.nn.functional.avg_pool2d"),
    POOL_OP("min_pool2d", min_fwd, min_bwd,
            "y = min over each kh x kw window (padding is +inf); -torch.nn.functional.max_pool2d(-x)"),
    {.name = "global_avg_pool2d", .arity = 1, .forward = gavg_fwd, .backward = gavg_bwd,
     .doc = "[N, C, H, W] -> [N, C, 1, 1], mean of each plane; torch.nn.functional.adaptive_avg_pool2d(x, 1)",
     .cases = global_cases, .n_cases = N_OF(global_cases)},
    {.name = "global_max_pool2d", .arity = 1, .forward = gmax_fwd, .backward = gmax_bwd,
     .doc = "[N, C, H, W] -> [N, C, 1, 1], max of each plane; torch.nn.functional.adaptive_max_pool2d(x, 1)",
     .cases = global_cases, .n_cases = N_OF(global_cases)},
    {0},
};

static dn_tensor *pool(dn_ctx *ctx, const char *name, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    double a[] = {kh, kw, sh, sw, ph, pw};
    return dn_apply(ctx, name, 1, &x, a);
}

dn_tensor *dn_max_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    return pool(ctx, "max_pool2d", x, kh, kw, sh, sw, ph, pw);
}

dn_tensor *dn_avg_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    return pool(ctx, "avg_pool2d", x, kh, kw, sh, sw, ph, pw);
}

dn_tensor *dn_min_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw)
{
    return pool(ctx, "min_pool2d", x, kh, kw, sh, sw, ph, pw);
}

dn_tensor *dn_global_avg_pool2d(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "global_avg_pool2d", 1, &x, NULL); }
dn_tensor *dn_global_max_pool2d(dn_ctx *ctx, dn_tensor *x) { return dn_apply(ctx, "global_max_pool2d", 1, &x, NULL); }
