/* Contexts, the tape, and reverse-mode differentiation.
 *
 * Define-by-run: each op computes its output at once and, when some input requires a gradient, pushes a
 * node (op, inputs, attributes, saved state) onto the context's tape.  dn_backward() seeds the loss with
 * d(loss)/d(loss) = 1 and visits the tape newest-first; creation order is a topological order, so when a
 * node is visited every consumer of its output has already added its share into out->grad. */
#include "internal.h"
#include "kernels/threads.h"

#include <math.h>

dn_ctx *dn_ctx_new(void)
{
    dn_ctx *ctx = dn_calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    dn_arena_init(&ctx->arena);
    ctx->grad_enabled = true;
    return ctx;
}

void dn_ctx_free(dn_ctx *ctx)
{
    if (!ctx) return;
    dn_arena_free(&ctx->arena);
    dn_free(ctx);
}

void dn_ctx_reset(dn_ctx *ctx)
{
    if (!ctx) return;
    dn_arena_reset(&ctx->arena);
    ctx->tape = NULL;
    ctx->status = DN_OK;
    ctx->backward_done = false;
}

dn_status dn_ctx_status(const dn_ctx *ctx) { return ctx ? ctx->status : DN_ERR_ARG; }

bool dn_ctx_set_grad(dn_ctx *ctx, bool enabled)
{
    bool old = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return old;
}

size_t dn_ctx_arena_bytes(const dn_ctx *ctx) { return ctx->arena.capacity; }

void dn_ctx_set_detect_anomaly(dn_ctx *ctx, bool enabled)
{
    if (ctx) ctx->detect_anomaly = enabled;
}

/* The first non-finite element of n floats, or -1. */
static int64_t first_nonfinite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return -1;
}

dn_status dn_grad_add(dn_ctx *ctx, dn_tensor *t, float *src)
{
    if (!t->grad && t->ctx == ctx) {
        t->grad = src; /* first gradient of an arena tensor: adopt the buffer */
        return DN_OK;
    }
    float *g = dn_grad_buf(ctx, t);
    if (!g) return DN_ERR_NOMEM;
    for (int64_t i = 0, n = dn_tensor_numel(t); i < n; i++) g[i] += src[i];
    return DN_OK;
}

float *dn_grad_buf(dn_ctx *ctx, dn_tensor *t)
{
    if (t->grad) return t->grad;
    size_t bytes = (size_t)(dn_tensor_numel(t) ? dn_tensor_numel(t) : 1) * sizeof(float);
    if (t->ctx) {
        t->grad = dn_arena_alloc(&ctx->arena, bytes);
        if (t->grad) dn_parallel_zero(t->grad, bytes); /* backward adds into it */
    } else {
        t->grad = dn_calloc(1, bytes);
        t->owns_grad = t->grad != NULL;
    }
    return t->grad;
}

/* ------------------------------------------------------------------ applying ops */

static dn_tensor *fail(dn_ctx *ctx, dn_status s)
{
    if (ctx && !ctx->status) ctx->status = s;
    return NULL;
}

dn_tensor *dn_op_apply(dn_ctx *ctx, const dn_op *op, int n, dn_tensor *const *in, const double *attrs)
{
    if (!ctx) {
        dn_error(DN_ERR_ARG, "%s: context is NULL", op ? op->name : "op");
        return NULL;
    }
    if (ctx->status) return NULL; /* sticky: the first error's message stays in dn_last_error() */
    if (!op) return fail(ctx, dn_error(DN_ERR_ARG, "unknown op (NULL)"));
    if ((op->arity >= 0 && n != op->arity) || n < 1 || n > DN_MAX_INPUTS)
        return fail(ctx, dn_error(DN_ERR_ARG, "%s: takes %d input(s), got %d", op->name, op->arity, n));
    dn_node *node = dn_arena_calloc(&ctx->arena, sizeof *node);
    if (!node) return fail(ctx, DN_ERR_NOMEM);
    node->op = op;
    node->n_in = n;
    bool requires = false;
    for (int i = 0; i < n; i++) {
        if (!in[i]) return fail(ctx, dn_error(DN_ERR_ARG, "%s: input %d is NULL", op->name, i));
        node->in[i] = in[i];
        if (in[i]->requires_grad && !(op->nondiff & (1u << i))) requires = true;
    }
    for (int i = 0; i < op->n_attrs; i++) node->attr[i] = attrs ? attrs[i] : op->attr_defaults[i];
    dn_status s = op->forward(ctx, node);
    if (s) {
        /* messages that already begin with "name:" (dn_check_finite, dn_broadcast_shape) keep one prefix */
        const char *msg = dn_last_error();
        size_t len = strlen(op->name);
        if (strncmp(msg, op->name, len) != 0 || msg[len] != ':') dn_error_prefix("%s", op->name);
        return fail(ctx, s);
    }
    if (ctx->detect_anomaly) {
        dn_tensor *y = node->out;
        int64_t bad = -1;
        if (dn_tensor_is_contiguous(y)) bad = first_nonfinite(y->data, dn_tensor_numel(y));
        else if (dn_check_finite(op->name, "output", y)) bad = 0;
        if (bad >= 0) {
            float v = dn_tensor_get(y, bad);
            dn_error(DN_ERR_NUMERIC, "anomaly: %s%s%s produced %g at element %lld of its output %s (forward pass)",
                     op->name, ctx->tag ? " in " : "", ctx->tag ? ctx->tag : "", (double)v, (long long)bad,
                     dn_tshape(y));
            return fail(ctx, DN_ERR_NUMERIC);
        }
    }
    node->tag = ctx->tag;
    if (ctx->grad_enabled && requires) {
        node->out->requires_grad = true;
        node->out->node = node;
        node->prev = ctx->tape;
        ctx->tape = node;
    }
    return node->out;
}

dn_tensor *dn_apply(dn_ctx *ctx, const char *name, int n, dn_tensor *const *in, const double *attrs)
{
    const dn_op *op = dn_op_find(name);
    if (!op) {
        dn_error(DN_ERR_ARG, "no op named '%s'", name);
        return fail(ctx, DN_ERR_ARG);
    }
    return dn_op_apply(ctx, op, n, in, attrs);
}

dn_tensor *dn_apply_named(dn_ctx *ctx, const char *name, int n, dn_tensor *const *in, const char *text)
{
    const dn_op *op = dn_op_find(name);
    double attrs[DN_MAX_ATTRS];
    if (!op) {
        dn_error(DN_ERR_ARG, "no op named '%s'", name);
        return fail(ctx, DN_ERR_ARG);
    }
    if (ctx && ctx->status) return NULL;
    dn_status s = dn_parse_attrs(op, text, attrs);
    if (s) return fail(ctx, s);
    return dn_op_apply(ctx, op, n, in, attrs);
}

/* ------------------------------------------------------------------ backward */

static dn_status backward(dn_ctx *ctx, dn_tensor *out, const float *grad,
                          void (*after)(void *user, const dn_node *node), void *user)
{
    if (!ctx || !out || !grad) return dn_error(DN_ERR_ARG, "dn_backward: context, tensor and gradient must not be NULL");
    if (ctx->status)
        return dn_error(DN_ERR_STATE, "dn_backward: the context holds an earlier error (%s); reset it first",
                        dn_status_name(ctx->status));
    if (ctx->backward_done)
        return dn_error(DN_ERR_STATE, "dn_backward: already called on this tape; call dn_ctx_reset() before the next step");
    if (!out->requires_grad)
        return dn_error(DN_ERR_STATE, "dn_backward: the tensor %s does not depend on anything that requires a gradient "
                                      "(or gradient recording was off)", dn_tshape(out));
    if (out->ctx != ctx) return dn_error(DN_ERR_ARG, "dn_backward: the tensor belongs to another context");
    float *g = dn_grad_buf(ctx, out);
    if (!g) return DN_ERR_NOMEM;
    int64_t n = dn_tensor_numel(out);
    for (int64_t i = 0; i < n; i++) g[i] += grad[i];
    for (dn_node *node = ctx->tape; node; node = node->prev) {
        if (!node->out->grad) { /* nothing flowed into this node */
            if (after) after(user, node);
            continue;
        }
        dn_status s = node->op->backward(ctx, node);
        if (s) {
            dn_error_prefix("%s backward", node->op->name);
            ctx->status = s;
            return s;
        }
        for (int i = 0; ctx->detect_anomaly && i < node->n_in; i++) {
            dn_tensor *in = node->in[i];
            if (!in->requires_grad || !in->grad) continue;
            int64_t bad = first_nonfinite(in->grad, dn_tensor_numel(in));
            if (bad >= 0) {
                ctx->status = dn_error(DN_ERR_NUMERIC, "anomaly: the backward pass of %s%s%s produced %g at element "
                                                       "%lld of the gradient of its input %d %s",
                                       node->op->name, node->tag ? " in " : "", node->tag ? node->tag : "",
                                       (double)in->grad[bad], (long long)bad, i, dn_tshape(in));
                return ctx->status;
            }
        }
        if (after) after(user, node);
    }
    ctx->backward_done = true;
    return DN_OK;
}

dn_status dn_backward_with(dn_ctx *ctx, dn_tensor *out, const float *grad)
{
    return backward(ctx, out, grad, NULL, NULL);
}

dn_status dn_backward_hooked(dn_ctx *ctx, dn_tensor *loss, void (*after)(void *user, const dn_node *node), void *user)
{
    if (!loss) return dn_error(DN_ERR_ARG, "dn_backward: loss is NULL (did an op before it fail? see dn_ctx_status)");
    if (dn_tensor_numel(loss) != 1)
        return dn_error(DN_ERR_SHAPE, "dn_backward: the loss must have one element, got %s (reduce it, or use "
                                      "dn_backward_with)", dn_tshape(loss));
    const float one = 1.0f;
    return backward(ctx, loss, &one, after, user);
}

dn_status dn_backward(dn_ctx *ctx, dn_tensor *loss) { return dn_backward_hooked(ctx, loss, NULL, NULL); }

dn_status dn_check_finite(const char *op, const char *what, const dn_tensor *t)
{
    int64_t n = dn_tensor_numel(t);
    bool contig = dn_tensor_is_contiguous(t);
    for (int64_t i = 0; i < n; i++) {
        float v = contig ? t->data[i] : dn_tensor_get(t, i);
        if (!isfinite(v))
            return dn_error(DN_ERR_NUMERIC, "%s: %s %s has a non-finite value (%g) at flat index %lld", op, what,
                            dn_tshape(t), (double)v, (long long)i);
    }
    return DN_OK;
}
