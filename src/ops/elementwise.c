/* Binary elementwise arithmetic with broadcasting: add, sub, mul, div. */
#include "internal.h"
#include "kernels/threads.h"

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

/* The common case, two contiguous inputs of the output's own shape, runs as flat loops; a large one is shared
 * between the kernels' threads in stretches (each element on its own: the same numbers for any thread count). */
#define FLAT_PAR_MIN 65536

typedef struct flat_job {
    int kind;
    bool backward;
    const float *a, *b, *g; /* inputs; the output's gradient (backward) */
    float *y, *da, *db;     /* forward: y; backward: the gradients to add into (either may be NULL) */
    int64_t n;
} flat_job;

static bool flat_case(const dn_tensor *a, const dn_tensor *b, int nd, const int64_t *shape)
{
    if (a->ndim != nd || b->ndim != nd || !dn_tensor_is_contiguous(a) || !dn_tensor_is_contiguous(b)) return false;
    for (int i = 0; i < nd; i++)
        if (a->shape[i] != shape[i] || b->shape[i] != shape[i]) return false;
    return true;
}

static void flat_part(void *arg, int part, int parts, void *scratch)
{
    (void)scratch;
    const flat_job *j = arg;
    int64_t lo, hi;
    dn_part_range(j->n, 16, part, parts, &lo, &hi);
    const float *a = j->a, *b = j->b, *g = j->g;
    if (!j->backward) {
        float *y = j->y;
        switch (j->kind) {
        case OP_ADD: for (int64_t i = lo; i < hi; i++) y[i] = a[i] + b[i]; break;
        case OP_SUB: for (int64_t i = lo; i < hi; i++) y[i] = a[i] - b[i]; break;
        case OP_MUL: for (int64_t i = lo; i < hi; i++) y[i] = a[i] * b[i]; break;
        default: for (int64_t i = lo; i < hi; i++) y[i] = a[i] / b[i]; break;
        }
        return;
    }
    float *da = j->da, *db = j->db;
    switch (j->kind) {
    case OP_ADD:
    case OP_SUB:
        if (da) for (int64_t i = lo; i < hi; i++) da[i] += g[i];
        if (db && j->kind == OP_ADD) for (int64_t i = lo; i < hi; i++) db[i] += g[i];
        if (db && j->kind == OP_SUB) for (int64_t i = lo; i < hi; i++) db[i] -= g[i];
        break;
    case OP_MUL:
        if (da) for (int64_t i = lo; i < hi; i++) da[i] += g[i] * b[i];
        if (db) for (int64_t i = lo; i < hi; i++) db[i] += g[i] * a[i];
        break;
    default:
        if (da) for (int64_t i = lo; i < hi; i++) da[i] += g[i] / b[i];
        if (db) for (int64_t i = lo; i < hi; i++) db[i] -= g[i] * a[i] / (b[i] * b[i]);
        break;
    }
}

static void flat_run(flat_job *j)
{
    dn_parallel_run(j->n >= FLAT_PAR_MIN ? dn_parallel_parts() : 1, flat_part, j);
}

static dn_status binary_forward(dn_ctx *ctx, dn_node *node, int kind)
{
    dn_tensor *a = node->in[0], *b = node->in[1];
    int nd;
    int64_t shape[DN_MAX_DIMS];
    dn_status s = dn_broadcast_shape(node->op->name, a, b, &nd, shape);
    if (s) return s;
    dn_tensor *y = dn_ctx_tensor(ctx, nd, shape);
    if (!y) return DN_ERR_NOMEM;
    if (flat_case(a, b, nd, shape)) {
        flat_job j = {.kind = kind, .a = a->data, .b = b->data, .y = y->data, .n = dn_tensor_numel(y)};
        flat_run(&j);
        node->out = y;
        return DN_OK;
    }
    int64_t sa[DN_MAX_DIMS], sb[DN_MAX_DIMS];
    dn_broadcast_strides(nd, shape, a->ndim, a->shape, a->stride, sa);
    dn_broadcast_strides(nd, shape, b->ndim, b->shape, b->stride, sb);
    const int64_t *strides[] = {y->stride, sa, sb};
    dn_iter it;
    dn_iter_init(&it, nd, shape, 3, strides);
    if (!it.empty) do {
        float *yo = y->data + it.off[0];
        const float *ao = a->data + it.off[1], *bo = b->data + it.off[2];
        int64_t ia = it.step[1], ib = it.step[2];
        switch (kind) {
        case OP_ADD: for (int64_t j = 0; j < it.inner; j++) yo[j] = ao[j * ia] + bo[j * ib]; break;
        case OP_SUB: for (int64_t j = 0; j < it.inner; j++) yo[j] = ao[j * ia] - bo[j * ib]; break;
        case OP_MUL: for (int64_t j = 0; j < it.inner; j++) yo[j] = ao[j * ia] * bo[j * ib]; break;
        default: for (int64_t j = 0; j < it.inner; j++) yo[j] = ao[j * ia] / bo[j * ib]; break;
        }
    } while (dn_iter_next(&it));
    node->out = y;
    return DN_OK;
}

/* Gradients flow back through the same broadcast: an input that was repeated along an axis receives the
 * sum over that axis, which the zero strides of its gradient buffer give for free (+= in row order). */
static dn_status binary_backward(dn_ctx *ctx, dn_node *node, int kind)
{
    dn_tensor *a = node->in[0], *b = node->in[1], *y = node->out;
    float *da = a->requires_grad ? dn_grad_buf(ctx, a) : NULL;
    float *db = b->requires_grad ? dn_grad_buf(ctx, b) : NULL;
    if ((a->requires_grad && !da) || (b->requires_grad && !db)) return DN_ERR_NOMEM;
    if (flat_case(a, b, y->ndim, y->shape)) {
        flat_job j = {.kind = kind, .backward = true, .a = a->data, .b = b->data, .g = y->grad, .da = da, .db = db,
                      .n = dn_tensor_numel(y)};
        flat_run(&j);
        return DN_OK;
    }
    int64_t ca[DN_MAX_DIMS], cb[DN_MAX_DIMS], sa[DN_MAX_DIMS], sb[DN_MAX_DIMS], ga[DN_MAX_DIMS], gb[DN_MAX_DIMS];
    dn_contiguous_strides(a->ndim, a->shape, ca);
    dn_contiguous_strides(b->ndim, b->shape, cb);
    dn_broadcast_strides(y->ndim, y->shape, a->ndim, a->shape, a->stride, sa);
    dn_broadcast_strides(y->ndim, y->shape, b->ndim, b->shape, b->stride, sb);
    dn_broadcast_strides(y->ndim, y->shape, a->ndim, a->shape, ca, ga);
    dn_broadcast_strides(y->ndim, y->shape, b->ndim, b->shape, cb, gb);
    const int64_t *strides[] = {y->stride, sa, sb, ga, gb};
    dn_iter it;
    dn_iter_init(&it, y->ndim, y->shape, 5, strides);
    if (!it.empty) do {
        const float *g = y->grad + it.off[0];
        const float *av = a->data + it.off[1], *bv = b->data + it.off[2];
        int64_t ia = it.step[1], ib = it.step[2], ja = it.step[3], jb = it.step[4];
        float *gao = da ? da + it.off[3] : NULL, *gbo = db ? db + it.off[4] : NULL;
        for (int64_t j = 0; j < it.inner; j++) {
            float gj = g[j];
            switch (kind) {
            case OP_ADD:
                if (gao) gao[j * ja] += gj;
                if (gbo) gbo[j * jb] += gj;
                break;
            case OP_SUB:
                if (gao) gao[j * ja] += gj;
                if (gbo) gbo[j * jb] -= gj;
                break;
            case OP_MUL:
                if (gao) gao[j * ja] += gj * bv[j * ib];
                if (gbo) gbo[j * jb] += gj * av[j * ia];
                break;
            default: {
                /* d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 */
                float bj = bv[j * ib];
                if (gao) gao[j * ja] += gj / bj;
                if (gbo) gbo[j * jb] -= gj * av[j * ia] / (bj * bj);
            }
            }
        }
    } while (dn_iter_next(&it));
    return DN_OK;
}

static dn_status add_fwd(dn_ctx *c, dn_node *n) { return binary_forward(c, n, OP_ADD); }
static dn_status sub_fwd(dn_ctx *c, dn_node *n) { return binary_forward(c, n, OP_SUB); }
static dn_status mul_fwd(dn_ctx *c, dn_node *n) { return binary_forward(c, n, OP_MUL); }
static dn_status div_fwd(dn_ctx *c, dn_node *n) { return binary_forward(c, n, OP_DIV); }
static dn_status add_bwd(dn_ctx *c, dn_node *n) { return binary_backward(c, n, OP_ADD); }
static dn_status sub_bwd(dn_ctx *c, dn_node *n) { return binary_backward(c, n, OP_SUB); }
static dn_status mul_bwd(dn_ctx *c, dn_node *n) { return binary_backward(c, n, OP_MUL); }
static dn_status div_bwd(dn_ctx *c, dn_node *n) { return binary_backward(c, n, OP_DIV); }

/* Same shapes, a row broadcast, a column broadcast, and a scalar: every broadcasting path is checked. */
#define BINARY_CASES(lo_b, hi_b)                                                                            \
    {2, {{2, {3, 4}, DN_FILL_UNIFORM, -2, 2}, {2, {3, 4}, DN_FILL_UNIFORM, lo_b, hi_b}}, NULL},              \
    {2, {{3, {2, 3, 4}, DN_FILL_UNIFORM, -2, 2}, {1, {4}, DN_FILL_UNIFORM, lo_b, hi_b}}, NULL},              \
    {2, {{2, {3, 1}, DN_FILL_UNIFORM, -2, 2}, {3, {2, 1, 4}, DN_FILL_UNIFORM, lo_b, hi_b}}, NULL},           \
    {2, {{2, {2, 3}, DN_FILL_UNIFORM, -2, 2}, {0, {0}, DN_FILL_UNIFORM, lo_b, hi_b}}, NULL}

static const dn_case arith_cases[] = {BINARY_CASES(-2, 2)};
static const dn_case div_cases[] = {BINARY_CASES(0.5f, 2)};

const dn_op dn_ops_elementwise[] = {
    {.name = "add", .arity = 2, .forward = add_fwd, .backward = add_bwd, .doc = "y = a + b (broadcasting)",
     .cases = arith_cases, .n_cases = 4},
    {.name = "sub", .arity = 2, .forward = sub_fwd, .backward = sub_bwd, .doc = "y = a - b (broadcasting)",
     .cases = arith_cases, .n_cases = 4},
    {.name = "mul", .arity = 2, .forward = mul_fwd, .backward = mul_bwd, .doc = "y = a * b (broadcasting)",
     .cases = arith_cases, .n_cases = 4},
    {.name = "div", .arity = 2, .forward = div_fwd, .backward = div_bwd, .doc = "y = a / b (broadcasting)",
     .cases = div_cases, .n_cases = 4},
    {0},
};

static dn_tensor *binary(dn_ctx *ctx, const char *name, dn_tensor *a, dn_tensor *b)
{
    dn_tensor *in[] = {a, b};
    return dn_apply(ctx, name, 2, in, NULL);
}

dn_tensor *dn_add(dn_ctx *ctx, dn_tensor *a, dn_tensor *b) { return binary(ctx, "add", a, b); }
dn_tensor *dn_sub(dn_ctx *ctx, dn_tensor *a, dn_tensor *b) { return binary(ctx, "sub", a, b); }
dn_tensor *dn_mul(dn_ctx *ctx, dn_tensor *a, dn_tensor *b) { return binary(ctx, "mul", a, b); }
dn_tensor *dn_div(dn_ctx *ctx, dn_tensor *a, dn_tensor *b) { return binary(ctx, "div", a, b); }
