/* Optimisers over one flat parameter buffer: SGD, Adam, AdamW, RMSprop, Adagrad, and gradient clipping.
 *
 * Each update follows PyTorch 1.13's single-tensor implementation (torch/optim/<name>.py, foreach=False)
 * operation by operation, in float32, with the scalar coefficients (1 - beta1, lr / (1 - beta1^t), ...)
 * computed in double as Python computes them and rounded to float where torch hands them to a kernel.  Torch's
 * kernels round after every operation, so the order matters to the last bit:
 *     t.add_(u, alpha=a)           t + a*u        a fused multiply-add: muladd(a, u, t)
 *     t.addcmul_(u, v, value=c)    t + (c*u)*v    the last product fused: muladd(c*u, v, t)
 *     t.addcdiv_(u, v, value=c)    t + (c*u)/v    (a division: nothing to fuse)
 * With this, the goldens of tests/test_optim.c agree with torch to the bit.  docs/optimisers.md has the
 * equations. */
#include "internal.h"
#include "kernels/threads.h"

#include <math.h>
#include <strings.h>

/* Every other product and sum must round on its own, as torch's do: clang would otherwise fuse, say,
 * buf*momentum + g/avg into one FMA where the CPU has it (-march=native).  GCC fuses nothing in ISO C mode
 * (-std=c11, as the Makefile builds); under -std=gnu11 it would need -ffp-contract=off. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define MAX_STATE 3

/* a*b + c rounded once, as torch's CPU kernels compute `t + alpha*u` (their compilers fuse it into an FMA
 * instruction).  The product of two floats is exact in double, so only the sum rounds, to double and then to
 * float.  That double rounding differs from a true fused multiply-add only when the double lands exactly
 * halfway between two floats (rare enough never to show in the goldens), and unlike fmaf() it is fast without
 * an FMA instruction and gives the same bits on every machine and with every compiler flag. */
static inline float muladd(float a, float b, float c) { return (float)((double)a * (double)b + (double)c); }

struct dn_optim {
    dn_optim_config cfg;
    size_t n;
    uint8_t *decay_mask;  /* n bytes, or NULL: every element decays */
    int64_t step;         /* steps taken; torch's state['step'] */
    /* State buffers, each n floats, all in one block (`block`); names as torch's state dict keys. */
    int n_state;
    const char *state_name[MAX_STATE];
    float *state[MAX_STATE];
    float *block;
    /* The same buffers by role (NULL where the settings need none). */
    float *momentum_buf;  /* SGD, RMSprop: "momentum_buffer" */
    float *exp_avg;       /* Adam/AdamW: first moment */
    float *exp_avg_sq;    /* Adam/AdamW: second moment */
    float *max_exp_avg_sq; /* Adam/AdamW amsgrad: running maximum of the second moment */
    float *square_avg;    /* RMSprop */
    float *grad_avg;      /* RMSprop centered */
    float *sum;           /* Adagrad: sum of squared gradients */
};

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
#define N_KINDS (int)(sizeof kind_names / sizeof kind_names[0])

void dn_optim_defaults(dn_optim_kind kind, dn_optim_config *cfg)
{
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->beta1 = 0.9f;
    cfg->beta2 = 0.999f;
    cfg->alpha = 0.99f;
    switch (kind) {
    case DN_SGD: cfg->lr = 0.01f; break; /* torch has no default: 0.01 is ours */
    case DN_ADAM: cfg->lr = 1e-3f; cfg->eps = 1e-8f; break;
    case DN_ADAMW: cfg->lr = 1e-3f; cfg->eps = 1e-8f; cfg->weight_decay = 0.01f; break;
    case DN_RMSPROP: cfg->lr = 0.01f; cfg->eps = 1e-8f; break;
    case DN_ADAGRAD: cfg->lr = 0.01f; cfg->eps = 1e-10f; break;
    }
}

dn_status dn_optim_kind_parse(const char *name, dn_optim_kind *kind)
{
    if (!name || !kind) return dn_error(DN_ERR_ARG, "dn_optim_kind_parse: NULL argument");
    for (int i = 0; i < N_KINDS; i++) {
        if (strcasecmp(name, kind_names[i]) == 0) {
            *kind = (dn_optim_kind)i;
            return DN_OK;
        }
    }
    return dn_error(DN_ERR_ARG, "unknown optimiser '%s' (expected sgd, adam, adamw, rmsprop or adagrad)", name);
}

const char *dn_optim_kind_name(dn_optim_kind kind)
{
    return (int)kind >= 0 && (int)kind < N_KINDS ? kind_names[kind] : "unknown";
}

/* ------------------------------------------------------------------ construction */

/* The checks torch's constructors make, with their messages.  `!(x >= 0)` also rejects NaN. */
static dn_status validate(const dn_optim_config *c)
{
    const char *k = dn_optim_kind_name(c->kind);
    if ((int)c->kind < 0 || (int)c->kind >= N_KINDS)
        return dn_error(DN_ERR_ARG, "dn_optim_new: unknown optimiser kind %d", (int)c->kind);
    if (!(c->lr >= 0)) return dn_error(DN_ERR_ARG, "dn_optim_new (%s): Invalid learning rate: %g", k, c->lr);
    if (!(c->weight_decay >= 0))
        return dn_error(DN_ERR_ARG, "dn_optim_new (%s): Invalid weight_decay value: %g", k, c->weight_decay);
    if (c->kind != DN_SGD && !(c->eps >= 0))
        return dn_error(DN_ERR_ARG, "dn_optim_new (%s): Invalid epsilon value: %g", k, c->eps);
    switch (c->kind) {
    case DN_SGD:
        if (!(c->momentum >= 0))
            return dn_error(DN_ERR_ARG, "dn_optim_new (sgd): Invalid momentum value: %g", c->momentum);
        if (!isfinite(c->dampening))
            return dn_error(DN_ERR_ARG, "dn_optim_new (sgd): Invalid dampening value: %g", c->dampening);
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return dn_error(DN_ERR_ARG,
                            "dn_optim_new (sgd): Nesterov momentum requires a momentum and zero dampening "
                            "(momentum %g, dampening %g)", c->momentum, c->dampening);
        break;
    case DN_ADAM:
    case DN_ADAMW:
        if (!(c->beta1 >= 0 && c->beta1 < 1))
            return dn_error(DN_ERR_ARG, "dn_optim_new (%s): Invalid beta parameter at index 0: %g", k, c->beta1);
        if (!(c->beta2 >= 0 && c->beta2 < 1))
            return dn_error(DN_ERR_ARG, "dn_optim_new (%s): Invalid beta parameter at index 1: %g", k, c->beta2);
        break;
    case DN_RMSPROP:
        if (!(c->momentum >= 0))
            return dn_error(DN_ERR_ARG, "dn_optim_new (rmsprop): Invalid momentum value: %g", c->momentum);
        if (!(c->alpha >= 0)) return dn_error(DN_ERR_ARG, "dn_optim_new (rmsprop): Invalid alpha value: %g", c->alpha);
        break;
    case DN_ADAGRAD:
        if (!(c->lr_decay >= 0))
            return dn_error(DN_ERR_ARG, "dn_optim_new (adagrad): Invalid lr_decay value: %g", c->lr_decay);
        if (!(c->initial_accumulator >= 0))
            return dn_error(DN_ERR_ARG, "dn_optim_new (adagrad): Invalid initial_accumulator_value value: %g",
                            c->initial_accumulator);
        break;
    }
    return DN_OK;
}

/* Hands out the next state buffer of the block under its checkpoint name. */
static float *add_state(dn_optim *o, const char *name)
{
    float *p = o->block + (size_t)o->n_state * o->n;
    o->state_name[o->n_state] = name;
    o->state[o->n_state] = p;
    o->n_state++;
    return p;
}

dn_status dn_optim_new(const dn_optim_config *cfg, size_t n, const uint8_t *decay_mask, dn_optim **out)
{
    if (!out) return dn_error(DN_ERR_ARG, "dn_optim_new: out is NULL");
    *out = NULL;
    if (!cfg) return dn_error(DN_ERR_ARG, "dn_optim_new: cfg is NULL");
    if (n == 0) return dn_error(DN_ERR_ARG, "dn_optim_new (%s): got an empty parameter list (n = 0)",
                                dn_optim_kind_name(cfg->kind));
    dn_status s = validate(cfg);
    if (s) return s;

    /* How many state buffers the settings need: allocate them all now, so that a step never allocates. */
    int n_state = 0;
    switch (cfg->kind) {
    case DN_SGD: n_state = cfg->momentum != 0; break;
    case DN_ADAM:
    case DN_ADAMW: n_state = 2 + cfg->amsgrad; break;
    case DN_RMSPROP: n_state = 1 + cfg->centered + (cfg->momentum > 0); break;
    case DN_ADAGRAD: n_state = 1; break;
    }
    if ((size_t)n_state * n > SIZE_MAX / sizeof(float) / 2)
        return dn_error(DN_ERR_NOMEM, "dn_optim_new: %zu parameters are too many", n);

    dn_optim *o = dn_calloc(1, sizeof *o);
    if (!o) return DN_ERR_NOMEM;
    o->cfg = *cfg;
    o->n = n;
    if (n_state) {
        o->block = dn_calloc((size_t)n_state * n, sizeof(float));
        if (!o->block) goto nomem;
    }
    if (decay_mask) {
        o->decay_mask = dn_alloc(n);
        if (!o->decay_mask) goto nomem;
        memcpy(o->decay_mask, decay_mask, n);
    }

    switch (cfg->kind) {
    case DN_SGD:
        if (cfg->momentum != 0) o->momentum_buf = add_state(o, "momentum_buffer");
        break;
    case DN_ADAM:
    case DN_ADAMW:
        o->exp_avg = add_state(o, "exp_avg");
        o->exp_avg_sq = add_state(o, "exp_avg_sq");
        if (cfg->amsgrad) o->max_exp_avg_sq = add_state(o, "max_exp_avg_sq");
        break;
    case DN_RMSPROP:
        o->square_avg = add_state(o, "square_avg");
        if (cfg->momentum > 0) o->momentum_buf = add_state(o, "momentum_buffer");
        if (cfg->centered) o->grad_avg = add_state(o, "grad_avg");
        break;
    case DN_ADAGRAD:
        o->sum = add_state(o, "sum");
        for (size_t i = 0; i < n; i++) o->sum[i] = cfg->initial_accumulator;
        break;
    }
    *out = o;
    return DN_OK;

nomem:
    dn_optim_free(o);
    return dn_error(DN_ERR_NOMEM, "dn_optim_new (%s): out of memory for the state of %zu parameters",
                    dn_optim_kind_name(cfg->kind), n);
}

void dn_optim_free(dn_optim *o)
{
    if (!o) return;
    dn_free(o->block);
    dn_free(o->decay_mask);
    dn_free(o);
}

/* ------------------------------------------------------------------ the updates */

/* Every update runs over the flat buffer in chunks of CHUNK elements, and within a chunk as a few simple loops,
 * one per line of the formula, with every setting (momentum or not, the first step, nesterov, amsgrad, the decay
 * mask) decided once per chunk rather than once per element.  Loops without branches in them are what the
 * compiler turns into vector code; the arithmetic and its order are exactly the per-element formula's, so the
 * results stay bit-identical to torch.optim (tests/test_optim.c). */
enum { CHUNK = 512 };

/* The update loops are compiled three times, for AVX-512, for AVX2 and for any x86-64, and the loader picks one
 * for the CPU (GCC's function multiversioning): wider vectors make the step 2.5x faster (0.32 -> 0.13 ms for
 * SGD with momentum over 535,818 parameters).  The build never lets the compiler fuse a multiply and an add
 * (ISO C mode: -ffp-contract=off), so all versions round exactly alike. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DN_UPDATE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DN_UPDATE_CLONES
#endif

/* g = grad + wd*p for the chunk [i0, i0+len) (torch: grad = grad.add(param, alpha=weight_decay)); elements the
 * mask excludes see the plain gradient.  Returns g: grad itself when nothing decays (no copy), else out. */
static const float *decayed_chunk(const dn_optim *o, size_t i0, size_t len, const float *p, const float *grad,
                                  float *out)
{
    const float wd = o->cfg.weight_decay;
    if (wd == 0) return grad;
    if (!o->decay_mask) {
        for (size_t i = 0; i < len; i++) out[i] = muladd(wd, p[i], grad[i]);
    } else {
        /* a select, not 0*p: an excluded infinite weight must not turn its gradient into NaN */
        const uint8_t *mask = o->decay_mask + i0;
        for (size_t i = 0; i < len; i++) out[i] = mask[i] ? muladd(wd, p[i], grad[i]) : grad[i];
    }
    return out;
}

static size_t chunk_len(size_t n, size_t i0) { return n - i0 < CHUNK ? n - i0 : CHUNK; }

/* d = g + wd*p;  buf = d on the first step, else buf = momentum*buf + (1 - dampening)*d;
 * nesterov: d = d + momentum*buf, else d = buf;  p = p - lr*d */
DN_UPDATE_CLONES static void sgd_step(dn_optim *o, float *params, const float *grads, size_t begin, size_t end)
{
    const dn_optim_config *c = &o->cfg;
    const float neg_lr = -c->lr, momentum = c->momentum;
    const float keep = (float)(1.0 - (double)c->dampening);
    const bool first = o->step == 1; /* torch: the buffer does not exist yet, so it starts as d */
    float tmp[CHUNK], nest[CHUNK];
    for (size_t i0 = begin; i0 < end; i0 += CHUNK) {
        const size_t len = chunk_len(end, i0);
        float *p = params + i0;
        const float *d = decayed_chunk(o, i0, len, p, grads + i0, tmp);
        if (o->momentum_buf) {
            float *buf = o->momentum_buf + i0;
            if (first)
                for (size_t i = 0; i < len; i++) buf[i] = d[i];
            else
                for (size_t i = 0; i < len; i++) buf[i] = muladd(keep, d[i], buf[i] * momentum);
            if (c->nesterov) {
                for (size_t i = 0; i < len; i++) nest[i] = muladd(momentum, buf[i], d[i]);
                d = nest;
            } else {
                d = buf;
            }
        }
        for (size_t i = 0; i < len; i++) p[i] = muladd(neg_lr, d[i], p[i]);
    }
}

/* Adam (L2: g += wd*p) and AdamW (decoupled: p *= 1 - lr*wd first), at step t:
 *     m = beta1*m + (1 - beta1)*g          v = beta2*v + (1 - beta2)*g²      (amsgrad: vmax = max(vmax, v))
 *     p = p - lr/(1 - beta1^t) * m / (sqrt(v)/sqrt(1 - beta2^t) + eps) */
DN_UPDATE_CLONES static void adam_step(dn_optim *o, float *params, const float *grads, size_t begin, size_t end)
{
    const dn_optim_config *c = &o->cfg;
    const bool decoupled = c->kind == DN_ADAMW;
    const double t = (double)o->step;
    const double bias_correction1 = 1.0 - pow(c->beta1, t);
    const double bias_correction2 = 1.0 - pow(c->beta2, t);
    const float neg_step_size = (float)-((double)c->lr / bias_correction1);
    const float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    const float beta1 = c->beta1, beta2 = c->beta2, eps = c->eps;
    const float one_minus_beta1 = (float)(1.0 - (double)c->beta1);
    const float one_minus_beta2 = (float)(1.0 - (double)c->beta2);
    const float shrink = (float)(1.0 - (double)c->lr * (double)c->weight_decay); /* AdamW */
    float tmp[CHUNK];
    for (size_t i0 = begin; i0 < end; i0 += CHUNK) {
        const size_t len = chunk_len(end, i0);
        float *p = params + i0, *m = o->exp_avg + i0, *v = o->exp_avg_sq + i0;
        const float *g = grads + i0;
        if (!decoupled) {
            g = decayed_chunk(o, i0, len, p, g, tmp);
        } else if (c->weight_decay != 0) {
            if (!o->decay_mask) {
                for (size_t i = 0; i < len; i++) p[i] = p[i] * shrink;
            } else {
                const uint8_t *mask = o->decay_mask + i0;
                for (size_t i = 0; i < len; i++) p[i] = mask[i] ? p[i] * shrink : p[i];
            }
        }
        if (!o->max_exp_avg_sq) {
            for (size_t i = 0; i < len; i++) {
                m[i] = muladd(one_minus_beta1, g[i], m[i] * beta1);
                v[i] = muladd(one_minus_beta2 * g[i], g[i], v[i] * beta2);
                const float denom = sqrtf(v[i]) / bias_correction2_sqrt + eps;
                p[i] = p[i] + neg_step_size * m[i] / denom;
            }
        } else {
            float *vmax = o->max_exp_avg_sq + i0;
            for (size_t i = 0; i < len; i++) {
                m[i] = muladd(one_minus_beta1, g[i], m[i] * beta1);
                v[i] = muladd(one_minus_beta2 * g[i], g[i], v[i] * beta2);
                vmax[i] = isnan(v[i]) || v[i] > vmax[i] ? v[i] : vmax[i]; /* torch.maximum: NaN wins */
                const float denom = sqrtf(vmax[i]) / bias_correction2_sqrt + eps;
                p[i] = p[i] + neg_step_size * m[i] / denom;
            }
        }
    }
}

/* g += wd*p;  s = alpha*s + (1 - alpha)*g²;  centered: a = alpha*a + (1 - alpha)*g, avg = sqrt(s - a²) + eps,
 * else avg = sqrt(s) + eps;  momentum: b = momentum*b + g/avg, p = p - lr*b;  else p = p - lr*g/avg */
DN_UPDATE_CLONES static void rmsprop_step(dn_optim *o, float *params, const float *grads, size_t begin, size_t end)
{
    const dn_optim_config *c = &o->cfg;
    const float alpha = c->alpha, eps = c->eps, momentum = c->momentum, neg_lr = -c->lr;
    const float one_minus_alpha = (float)(1.0 - (double)c->alpha);
    float tmp[CHUNK], avg[CHUNK];
    for (size_t i0 = begin; i0 < end; i0 += CHUNK) {
        const size_t len = chunk_len(end, i0);
        float *p = params + i0, *s = o->square_avg + i0;
        const float *g = decayed_chunk(o, i0, len, p, grads + i0, tmp);
        for (size_t i = 0; i < len; i++) s[i] = muladd(one_minus_alpha * g[i], g[i], s[i] * alpha);
        if (o->grad_avg) {
            float *a = o->grad_avg + i0;
            for (size_t i = 0; i < len; i++) {
                a[i] = muladd(one_minus_alpha, g[i], a[i] * alpha);
                avg[i] = sqrtf(muladd(-a[i], a[i], s[i])) + eps;
            }
        } else {
            for (size_t i = 0; i < len; i++) avg[i] = sqrtf(s[i]) + eps;
        }
        if (o->momentum_buf) {
            float *b = o->momentum_buf + i0;
            for (size_t i = 0; i < len; i++) {
                b[i] = b[i] * momentum + g[i] / avg[i];
                p[i] = muladd(neg_lr, b[i], p[i]);
            }
        } else {
            for (size_t i = 0; i < len; i++) p[i] = p[i] + neg_lr * g[i] / avg[i];
        }
    }
}

/* g += wd*p;  clr = lr / (1 + (t - 1)*lr_decay);  sum = sum + g²;  p = p - clr * g / (sqrt(sum) + eps) */
DN_UPDATE_CLONES static void adagrad_step(dn_optim *o, float *params, const float *grads, size_t begin, size_t end)
{
    const dn_optim_config *c = &o->cfg;
    const double clr = (double)c->lr / (1.0 + (double)(o->step - 1) * (double)c->lr_decay);
    const float neg_clr = (float)-clr, eps = c->eps;
    float tmp[CHUNK];
    for (size_t i0 = begin; i0 < end; i0 += CHUNK) {
        const size_t len = chunk_len(end, i0);
        float *p = params + i0, *sum = o->sum + i0;
        const float *g = decayed_chunk(o, i0, len, p, grads + i0, tmp);
        for (size_t i = 0; i < len; i++) {
            sum[i] = muladd(g[i], g[i], sum[i]);
            p[i] = p[i] + neg_clr * g[i] / (sqrtf(sum[i]) + eps);
        }
    }
}

/* The elements [begin, end) of the update; begin is a multiple of CHUNK. */
static void step_range(dn_optim *o, float *params, const float *grads, size_t begin, size_t end)
{
    switch (o->cfg.kind) {
    case DN_SGD: sgd_step(o, params, grads, begin, end); break;
    case DN_ADAM:
    case DN_ADAMW: adam_step(o, params, grads, begin, end); break;
    case DN_RMSPROP: rmsprop_step(o, params, grads, begin, end); break;
    case DN_ADAGRAD: adagrad_step(o, params, grads, begin, end); break;
    }
}

/* A large update is shared between the kernels' threads in whole chunks; every element is updated on its own,
 * so the cut changes no result. */
#define STEP_PAR_MIN ((size_t)1 << 17)

typedef struct step_job {
    dn_optim *o;
    float *params;
    const float *grads;
} step_job;

static void step_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const step_job *j = arg;
    const size_t chunks = (j->o->n + CHUNK - 1) / CHUNK;
    const size_t c0 = chunks * (size_t)part / (size_t)parts, c1 = chunks * (size_t)(part + 1) / (size_t)parts;
    const size_t end = c1 * CHUNK < j->o->n ? c1 * CHUNK : j->o->n;
    if (c0 * CHUNK < end) step_range(j->o, j->params, j->grads, c0 * CHUNK, end);
}

void dn_optim_step(dn_optim *o, float *params, const float *grads)
{
    if (!o || !params || !grads) return;
    o->step++;
    const int parts = o->n >= STEP_PAR_MIN ? dn_parallel_parts() : 1;
    if (parts <= 1) {
        step_range(o, params, grads, 0, o->n);
        return;
    }
    step_job j = {o, params, grads};
    dn_parallel_run(parts, step_part, &j);
}

/* ------------------------------------------------------------------ settings and state */

void dn_optim_set_lr(dn_optim *o, float lr)
{
    if (o) o->cfg.lr = lr;
}

float dn_optim_get_lr(const dn_optim *o) { return o ? o->cfg.lr : 0.0f; }

int dn_optim_state_count(const dn_optim *o) { return o ? o->n_state : 0; }

const char *dn_optim_state_name(const dn_optim *o, int i)
{
    return o && i >= 0 && i < o->n_state ? o->state_name[i] : NULL;
}

float *dn_optim_state_data(dn_optim *o, int i) { return o && i >= 0 && i < o->n_state ? o->state[i] : NULL; }

int64_t dn_optim_get_step(const dn_optim *o) { return o ? o->step : 0; }

void dn_optim_set_step(dn_optim *o, int64_t step)
{
    if (o) o->step = step > 0 ? step : 0;
}

/* ------------------------------------------------------------------ gradient clipping */

/* torch.nn.utils.clip_grad_norm_: total = ||g||₂ over the whole buffer; coef = max_norm / (total + 1e-6);
 * g *= min(coef, 1).  The sum of squares runs in double, in index order, so it is the same on every run. */
float dn_clip_grad_norm(float *grads, size_t n, float max_norm)
{
    if (!grads) return 0.0f;
    double sq = 0.0;
    for (size_t i = 0; i < n; i++) sq += (double)grads[i] * grads[i];
    const float total = (float)sqrt(sq);
    /* A negative or NaN bound would flip or poison every gradient: leave them alone instead.  A non-finite
     * total is returned as it is, so the caller can see it and skip the step (torch's default scales anyway). */
    if (!(max_norm >= 0)) return total;
    const float coef = max_norm / (total + 1e-6f);
    if (coef < 1.0f)
        for (size_t i = 0; i < n; i++) grads[i] *= coef;
    return total;
}

/* torch.nn.utils.clip_grad_value_: g = clamp(g, -clip, clip); NaN stays NaN. */
void dn_clip_grad_value(float *grads, size_t n, float clip)
{
    if (!grads || !(clip >= 0)) return;
    for (size_t i = 0; i < n; i++) {
        if (grads[i] > clip)
            grads[i] = clip;
        else if (grads[i] < -clip)
            grads[i] = -clip;
    }
}
