/* The op registry (every op of every file in one list) and the finite-difference gradient check. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

static const dn_op *const tables[] = {
    dn_ops_elementwise, dn_ops_unary, dn_ops_reduce, dn_ops_shape,
    dn_ops_matmul,      dn_ops_activation, dn_ops_loss, dn_ops_conv, dn_ops_pool, dn_ops_norm,
    dn_ops_rnn,
};

static const dn_op *registry[256];
static int registry_count;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

/* Made once, by whichever thread asks first (pthread_once), so concurrent first calls are safe. */
static void fill_registry(void)
{
    int n = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const dn_op *op = tables[t]; op->name && n < 256; op++) registry[n++] = op;
    registry_count = n;
}

static void build_registry(void) { pthread_once(&registry_once, fill_registry); }

int dn_op_count(void)
{
    build_registry();
    return registry_count;
}

const dn_op *dn_op_at(int i)
{
    build_registry();
    return (i >= 0 && i < registry_count) ? registry[i] : NULL;
}

const dn_op *dn_op_find(const char *name)
{
    build_registry();
    if (!name) return NULL;
    /* models look ops up by name at every forward pass: the first letter settles most comparisons */
    for (int i = 0; i < registry_count; i++)
        if (registry[i]->name[0] == name[0] && strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

const dn_op *dn_op_find_flagged(const char *name, unsigned flag)
{
    const dn_op *op = dn_op_find(name);
    return op && (op->flags & flag) == flag ? op : NULL;
}

const char *dn_op_list(unsigned flag, int learnt, char *buf, size_t size)
{
    build_registry();
    size_t n = 0;
    if (size) buf[0] = '\0';
    for (int i = 0; i < registry_count && size; i++) {
        const dn_op *op = registry[i];
        if ((op->flags & flag) != flag || (learnt > 0 && !op->param.name) || (learnt < 0 && op->param.name)) continue;
        int k = snprintf(buf + n, size - n, "%s%s", n ? ", " : "", op->name);
        if (k < 0 || (size_t)k >= size - n) { /* no room: the list stops at the last whole name */
            buf[n] = '\0';
            break;
        }
        n += (size_t)k;
    }
    return buf;
}

dn_status dn_check_loss_name(const char *loss)
{
    if (loss && dn_op_find_flagged(loss, DN_OPF_LOSS)) return DN_OK;
    char list[512];
    return dn_error(DN_ERR_ARG, "unknown loss '%s' (%s)", loss ? loss : "(null)", dn_op_list(DN_OPF_LOSS, 0, list, sizeof list));
}

dn_loss_target dn_loss_target_kind(const char *loss)
{
    const dn_op *op = loss ? dn_op_find_flagged(loss, DN_OPF_LOSS) : NULL;
    return op ? op->target : DN_TARGET_DENSE;
}

const char *dn_op_name(const dn_op *op) { return op->name; }
int dn_op_arity(const dn_op *op) { return op->arity; }
int dn_op_attr_count(const dn_op *op) { return op->n_attrs; }
const char *dn_op_attr_name(const dn_op *op, int i) { return (i >= 0 && i < op->n_attrs) ? op->attr_names[i] : NULL; }
double dn_op_attr_default(const dn_op *op, int i) { return (i >= 0 && i < op->n_attrs) ? op->attr_defaults[i] : 0; }
const char *dn_op_doc(const dn_op *op) { return op->doc; }

int dn_op_attr_index(const dn_op *op, const char *name)
{
    for (int i = 0; i < op->n_attrs; i++)
        if (strcmp(op->attr_names[i], name) == 0) return i;
    return -1;
}

dn_status dn_parse_attrs(const dn_op *op, const char *text, double *attrs)
{
    for (int i = 0; i < op->n_attrs; i++) attrs[i] = op->attr_defaults[i];
    if (!text) return DN_OK;
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) break;
        const char *eq = strchr(p, '=');
        if (!eq) return dn_error(DN_ERR_ARG, "%s: attribute text '%s' lacks '='", op->name, p);
        char name[64];
        size_t len = (size_t)(eq - p);
        if (len == 0 || len >= sizeof name) return dn_error(DN_ERR_ARG, "%s: bad attribute name in '%s'", op->name, text);
        memcpy(name, p, len);
        name[len] = '\0';
        int idx = dn_op_attr_index(op, name);
        if (idx < 0) return dn_error(DN_ERR_ARG, "%s: no attribute named '%s'", op->name, name);
        char *end;
        double v = strtod(eq + 1, &end);
        if (end == eq + 1) return dn_error(DN_ERR_ARG, "%s: attribute '%s' needs a number", op->name, name);
        attrs[idx] = v;
        p = end;
    }
    return DN_OK;
}

/* ------------------------------------------------------------------ gradient check */

/* The loss is L = sum_i w_i y_i, summed in double over the op's float outputs y with fixed random weights w, and
 * each input element's derivative is the central difference (L(x+h) - L(x-h)) / 2h, h = 1e-3 (small enough to
 * stay clear of the kinks the inputs keep away from, truncation error O(h^2) ~ 1e-7).  What limits the numeric
 * value is the float rounding of the outputs that the step changed, about u |y_i| each (u = 2^-24), divided by
 * 2h.  So an element passes when
 *     |analytic - numeric| <= ATOL + RTOL |numeric| + NOISE u sum_{i: y_i changed} |w_i| |y_i| / 2h
 * (docs/reliability.md gives the measured margin: the worst element of any op reaches 0.39 of this, and a 5%
 * error in one element is caught wherever |numeric| exceeds ~1e-3).  The old bound, 5e-3 + 1% of |numeric|,
 * let a 5% error through in any element whose gradient was below 0.125. */
#define GC_H 1e-3
#define GC_ATOL 2e-5
#define GC_RTOL 1e-3
#define GC_NOISE 8.0
#define GC_KINK_GAP (4 * GC_H)

static void fill_input(dn_tensor *t, const dn_input_spec *sp, const dn_op *op, dn_rng *r)
{
    int64_t n = dn_tensor_numel(t);
    int64_t last = t->ndim ? t->shape[t->ndim - 1] : 1;
    float *d = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (sp->fill) {
        case DN_FILL_CLASS: d[i] = (float)(dn_rng_u32(r) % (uint32_t)sp->hi); break;
        case DN_FILL_SIGN: d[i] = (dn_rng_u32(r) & 1) ? 1.0f : -1.0f; break;
        case DN_FILL_BINARY: d[i] = (float)(dn_rng_u32(r) & 1); break;
        case DN_FILL_PROB: d[i] = 0.1f + dn_rng_uniform(r); break;
        default: {
            float v = sp->lo + (sp->hi - sp->lo) * dn_rng_uniform(r);
            for (int k = 0; k < op->n_kinks; k++) {
                float kink = op->kinks[k];
                /* the first elements sit deliberately close to a kink (but outside the FD stencil) */
                if (i < 2 * op->n_kinks && i / 2 == k) v = kink + (i % 2 ? -1.0f : 1.0f) * (float)(GC_KINK_GAP * 1.5);
                if (fabsf(v - kink) < GC_KINK_GAP) v = kink + (v < kink ? -1.0f : 1.0f) * (float)GC_KINK_GAP;
            }
            d[i] = v;
        }
        }
    }
    if (sp->fill == DN_FILL_PROB) {
        for (int64_t row = 0; row < n / last; row++) {
            double s = 0;
            for (int64_t j = 0; j < last; j++) s += d[row * last + j];
            for (int64_t j = 0; j < last; j++) d[row * last + j] = (float)(d[row * last + j] / s);
        }
    }
}

/* sum_i w_i * out_i in double, with gradient recording off; the outputs go to y. */
static dn_status weighted_output(dn_ctx *ctx, const dn_op *op, int n, dn_tensor **in, const double *attrs,
                                 const float *w, double *value, float *y)
{
    bool old = dn_ctx_set_grad(ctx, false);
    dn_tensor *out = dn_op_apply(ctx, op, n, in, attrs);
    dn_ctx_set_grad(ctx, old);
    if (!out) return ctx->status ? ctx->status : DN_ERR_STATE;
    double s = 0;
    int64_t m = dn_tensor_numel(out);
    for (int64_t i = 0; i < m; i++) {
        y[i] = dn_tensor_get(out, i);
        s += (double)w[i] * y[i];
    }
    *value = s;
    return DN_OK;
}

static dn_status check_case(const dn_op *op, const dn_case *c, uint64_t seed, double *worst, char *msg, size_t msg_size)
{
    dn_status s = DN_OK;
    dn_ctx *ctx = dn_ctx_new();
    float *wbuf = NULL, *yp = NULL, *ym = NULL;
    if (!ctx) return DN_ERR_NOMEM;
    dn_rng r;
    dn_rng_seed(&r, seed);
    double attrs[DN_MAX_ATTRS];
    s = dn_parse_attrs(op, c->attrs, attrs);
    if (s) goto done;
    dn_tensor *in[DN_CASE_MAX_INPUTS];
    for (int i = 0; i < c->n_in; i++) {
        in[i] = dn_ctx_zeros(ctx, c->in[i].ndim, c->in[i].shape);
        if (!in[i]) { s = DN_ERR_NOMEM; goto done; }
        fill_input(in[i], &c->in[i], op, &r);
        if (!(op->nondiff & (1u << i))) in[i]->requires_grad = true;
    }
    dn_tensor *out = dn_op_apply(ctx, op, c->n_in, in, attrs);
    if (!out) { s = ctx->status; goto done; }
    int64_t m = dn_tensor_numel(out);
    wbuf = dn_alloc((size_t)m * sizeof(float));
    yp = dn_alloc((size_t)m * sizeof(float)); /* the outputs at x + h and x - h */
    ym = dn_alloc((size_t)m * sizeof(float));
    if (!wbuf || !yp || !ym) { s = DN_ERR_NOMEM; goto done; }
    for (int64_t i = 0; i < m; i++) wbuf[i] = dn_rng_normal(&r);
    s = dn_backward_with(ctx, out, wbuf);
    if (s) goto done;
    for (int i = 0; i < c->n_in; i++) {
        if (op->nondiff & (1u << i)) continue;
        int64_t n = dn_tensor_numel(in[i]);
        for (int64_t j = 0; j < n; j++) {
            double analytic = in[i]->grad ? in[i]->grad[j] : 0.0;
            float x0 = in[i]->data[j];
            double fp, fm;
            in[i]->data[j] = (float)(x0 + GC_H);
            s = weighted_output(ctx, op, c->n_in, in, attrs, wbuf, &fp, yp);
            in[i]->data[j] = (float)(x0 - GC_H);
            if (!s) s = weighted_output(ctx, op, c->n_in, in, attrs, wbuf, &fm, ym);
            in[i]->data[j] = x0;
            if (s) goto done;
            /* the actual step is the float difference, which is not exactly 2h */
            double h2 = (double)(float)(x0 + GC_H) - (double)(float)(x0 - GC_H);
            double numeric = (fp - fm) / h2;
            /* the rounding noise of the outputs this step moved */
            double moved = 0;
            for (int64_t k = 0; k < m; k++)
                if (yp[k] != ym[k]) moved += fabs((double)wbuf[k]) * fmax(fabs((double)yp[k]), fabs((double)ym[k]));
            double noise = GC_NOISE * (FLT_EPSILON / 2) * moved / h2;
            double tol = op->grad_tol > 0 ? op->grad_tol : 1.0;
            double err = fabs(analytic - numeric) / ((GC_ATOL + GC_RTOL * fabs(numeric) + noise) * tol);
            if (isnan(err) || err > *worst) *worst = err; /* a NaN stays */
            if (!(err <= 1.0)) { /* NaN fails too */
                if (msg)
                    snprintf(msg, msg_size, "input %d %s element %lld: analytic %.6g, numeric %.6g, %.2f of the "
                             "tolerance (x = %.6g, attrs '%s')",
                             i, dn_tshape(in[i]), (long long)j, analytic, numeric, err, (double)x0,
                             c->attrs ? c->attrs : "");
                s = dn_error(DN_ERR_NUMERIC, "%s: gradient check failed: %s", op->name, msg ? msg : "");
                goto done;
            }
        }
    }
done:
    dn_free(wbuf);
    dn_free(yp);
    dn_free(ym);
    dn_ctx_free(ctx);
    return s;
}

dn_status dn_gradcheck_op(const dn_op *op, double *max_err, char *msg, size_t msg_size)
{
    double worst = 0;
    if (msg && msg_size) msg[0] = '\0';
    if (!op) return dn_error(DN_ERR_ARG, "dn_gradcheck_op: op is NULL");
    if (op->n_cases == 0) {
        if (msg) snprintf(msg, msg_size, "no gradient-check cases registered");
        return dn_error(DN_ERR_STATE, "%s: no gradient-check cases registered", op->name);
    }
    for (int k = 0; k < op->n_cases; k++) {
        dn_status s = check_case(op, &op->cases[k], 1000u + (uint64_t)k, &worst, msg, msg_size);
        if (s) {
            if (max_err) *max_err = worst;
            if (msg && !msg[0]) snprintf(msg, msg_size, "case %d: %s", k, dn_last_error());
            return s;
        }
    }
    if (max_err) *max_err = worst;
    if (msg) snprintf(msg, msg_size, "%d case(s), worst error %.3f of tolerance", op->n_cases, worst);
    return DN_OK;
}
