/* Internal declarations shared by the library's source files.  Not installed. */
#ifndef DN_INTERNAL_H
#define DN_INTERNAL_H

#include "dendrite.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base.h"

/* ------------------------------------------------------------------ arena (arena.c) */

/* A bump allocator made of chunks.  Reset keeps the memory; after a reset that followed growth the
 * chunks are merged into one, so a steady training loop stops calling malloc after its first step. */
typedef struct dn_arena_chunk dn_arena_chunk;
typedef struct dn_arena {
    dn_arena_chunk *head;  /* current chunk (newest) */
    size_t used_total;     /* bytes handed out since the last reset */
    size_t high_water;     /* largest used_total seen */
    size_t capacity;       /* bytes held in all chunks */
} dn_arena;

void dn_arena_init(dn_arena *a);
/* The memory budget for one context's working memory (0: none); dn_set_memory_limit sets it. */
size_t dn_memory_limit(void);
/* 64-byte aligned, uninitialised; NULL (with DN_ERR_NOMEM recorded) if out of memory. */
void *dn_arena_alloc(dn_arena *a, size_t size);
void *dn_arena_calloc(dn_arena *a, size_t size);
void dn_arena_reset(dn_arena *a);
void dn_arena_free(dn_arena *a);

/* ------------------------------------------------------------------ tensors (tensor.c) */

typedef struct dn_node dn_node;

struct dn_tensor {
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    int64_t stride[DN_MAX_DIMS]; /* in elements; 0 allowed (broadcast views) */
    float *data;                 /* element [0, 0, ...] */
    float *grad;                 /* contiguous, row-major, numel floats; NULL until needed */
    dn_ctx *ctx;                 /* owner; NULL for heap tensors */
    dn_node *node;               /* the op that produced it, NULL for leaves */
    bool requires_grad;
    bool owns_data;              /* heap tensor: data was allocated with it */
    bool owns_grad;              /* heap tensor: grad was allocated with it */
};

int64_t dn_shape_numel(int ndim, const int64_t *shape);
bool dn_tensor_is_contiguous(const dn_tensor *t);
bool dn_same_shape(const dn_tensor *a, const dn_tensor *b);
/* Row-major strides for a shape. */
void dn_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
/* "[2, 3]" into a static per-call buffer slot (rotates among 4, so up to 4 may appear in one message). */
const char *dn_shape_str(int ndim, const int64_t *shape);
const char *dn_tshape(const dn_tensor *t);
/* Normalises a possibly negative axis; -1 if out of range. */
int dn_norm_axis(int axis, int ndim);

/* ------------------------------------------------------------------ contexts and the tape (autograd.c) */

struct dn_node {
    const dn_op *op;
    int n_in;
    dn_tensor *in[DN_MAX_INPUTS];
    dn_tensor *out;
    double attr[DN_MAX_ATTRS];
    void *saved;   /* op-specific state kept for backward (arena memory) */
    const char *tag; /* the context's tag when the node was recorded */
    dn_node *prev; /* the tape is a list, newest first */
};

struct dn_ctx {
    dn_arena arena;
    dn_node *tape;     /* newest node */
    dn_status status;  /* sticky first error */
    bool grad_enabled;
    bool backward_done; /* dn_backward ran on this tape */
    bool detect_anomaly; /* check every op's output and gradients for NaN/inf */
    const char *tag;     /* what is being computed (a model sets "layer 3 (conv2d)"), for messages */
    /* Data parallelism (src/dist): when `replica` is set, this context computes one shard of a global batch of
     * `global_batch` samples, whose first sample has global index `shard_offset`.  Ops that look across the batch
     * (batch norm's statistics, the loss's mean, dropout's masks) use them so that the K shards together compute
     * exactly what one process computes on the whole batch.  NULL: the context holds the whole batch. */
    const struct dn_replica *replica;
    int64_t shard_offset, global_batch;
};

/* One of K processes that each compute a shard of every global batch.  `sum` adds n doubles in place over all
 * replicas, in a fixed order, and every replica gets the same bits; it is collective: every replica calls it the
 * same number of times with the same n, including a replica whose shard is empty.  Returns DN_OK or an error (set
 * with dn_error). */
typedef struct dn_replica {
    int rank, size;
    dn_status (*sum)(void *user, double *buf, size_t n);
    void *user;
} dn_replica;

/* dn_backward that calls after(user, node) once each node's backward has run (after may be NULL): the gradients a
 * node writes last are final then (distributed training starts their all-reduce, src/dist/grad_sync.c). */
dn_status dn_backward_hooked(dn_ctx *ctx, dn_tensor *loss, void (*after)(void *user, const dn_node *node), void *user);

/* A tensor in the context's arena: contiguous, uninitialised (new) or zeroed (zeros). */
dn_tensor *dn_ctx_tensor(dn_ctx *ctx, int ndim, const int64_t *shape);
dn_tensor *dn_ctx_zeros(dn_ctx *ctx, int ndim, const int64_t *shape);
/* A view header sharing x's data (shape/strides filled by the caller). */
dn_tensor *dn_ctx_view(dn_ctx *ctx, const dn_tensor *x);
void *dn_ctx_alloc(dn_ctx *ctx, size_t size);
void *dn_ctx_calloc(dn_ctx *ctx, size_t size);
/* Contiguous elements of t: its own data when already contiguous, else a copy in the arena. */
const float *dn_ctx_contig(dn_ctx *ctx, const dn_tensor *t);
/* The gradient buffer of t, allocated (zeroed) on first use. */
float *dn_grad_buf(dn_ctx *ctx, dn_tensor *t);
/* Adds src (numel floats, row-major) into t's gradient.  When t lives in ctx and has no gradient yet, src itself
 * becomes the gradient (no zeroing, no copy): src must be an arena buffer of ctx that the caller no longer
 * writes.  DN_ERR_NOMEM if a buffer was needed and could not be had. */
dn_status dn_grad_add(dn_ctx *ctx, dn_tensor *t, float *src);
/* True when input i of the node needs a gradient. */
static inline bool dn_needs_grad(const dn_node *n, int i) { return n->in[i]->requires_grad; }

/* ------------------------------------------------------------------ strided iteration (iter.c) */

/* Walks up to DN_ITER_MAX operands of the same logical shape row by row: for each row (all axes but the
 * last) `off[k]` is operand k's element offset; `inner` elements follow with stride `step[k]`.
 * Broadcasting is a stride of 0.  Usage:
 *     dn_iter it; dn_iter_init(&it, ndim, shape, nops, strides);
 *     do { ... it.off[k] + j * it.step[k] ... } while (dn_iter_next(&it)); */
#define DN_ITER_MAX 6
typedef struct dn_iter {
    int ndim, nops;
    int64_t shape[DN_MAX_DIMS];
    int64_t stride[DN_ITER_MAX][DN_MAX_DIMS];
    int64_t idx[DN_MAX_DIMS];
    int64_t off[DN_ITER_MAX];
    int64_t step[DN_ITER_MAX];
    int64_t inner; /* elements per row (1 for 0-d) */
    bool empty;
} dn_iter;
void dn_iter_init(dn_iter *it, int ndim, const int64_t *shape, int nops, const int64_t *const *strides);
bool dn_iter_next(dn_iter *it);
/* Strides that read a tensor of shape (ndim_in, shape_in) broadcast to (ndim, shape): aligned right,
 * 0 where the input has size 1 or lacks the axis.  base: the input's strides (or contiguous ones). */
void dn_broadcast_strides(int ndim, const int64_t *shape, int ndim_in, const int64_t *shape_in,
                          const int64_t *base, int64_t *out);
/* The broadcast shape of a and b; DN_ERR_SHAPE (message names op) if incompatible. */
dn_status dn_broadcast_shape(const char *op, const dn_tensor *a, const dn_tensor *b, int *ndim, int64_t *shape);

/* ------------------------------------------------------------------ ops (registry.c and src/ops/) */

/* A gradient-check sample: one input tensor's shape and how to fill it. */
enum {
    DN_FILL_UNIFORM = 0, /* uniform in [lo, hi), kept at least 4*eps away from the op's kinks */
    DN_FILL_CLASS,       /* integers 0 .. hi-1 (class indices) */
    DN_FILL_SIGN,        /* -1 or +1 */
    DN_FILL_PROB,        /* positive rows summing to 1 along the last axis */
    DN_FILL_BINARY       /* 0 or 1 */
};
typedef struct dn_input_spec {
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    int fill;
    float lo, hi;
} dn_input_spec;

#define DN_CASE_MAX_INPUTS 6 /* inputs a gradient-check sample may have (lstm_cell has 6) */
typedef struct dn_case {
    int n_in;
    dn_input_spec in[DN_CASE_MAX_INPUTS];
    const char *attrs; /* "name=value name=value", names from the op; NULL for defaults */
} dn_case;

/* What an op is for, beyond computing: the lists the rest of the library derives from the registry (the
 * activations a layer may apply, the losses a trainer may use). */
enum {
    DN_OPF_ACTIVATION = 1u << 0, /* a [activation] layer or a layer's activation= may name it */
    DN_OPF_LOSS = 1u << 1,       /* [net] loss= may name it; input 0 the prediction, input 1 the target */
    DN_OPF_RELU = 1u << 2,       /* a fused op: a ReLU applied to the output in its write-back, and the gradient
                                  * masked in its backward (linear_relu, conv2d_relu), bit for bit op + relu */
};
/* The targets a loss compares against, which decide how a batch's labels become a target tensor. */
typedef enum dn_loss_target {
    DN_TARGET_DENSE = 0, /* values of the prediction's shape (a one-hot row when labels are classes) */
    DN_TARGET_INDEX,     /* class indices */
    DN_TARGET_SIGN,      /* +-1 (a one-hot row of +-1 when labels are classes) */
} dn_loss_target;
/* The learnable parameter of an activation whose second input is learnt (prelu's alpha, swish's beta): the
 * activation layer creates it as `layers.<i>.<name>` filled with `init`. */
enum {
    DN_OP_PARAM_ONE = 1,  /* one element */
    DN_OP_PARAM_CHANNELS, /* 1 (shared) or the input's channel count, chosen by the layer's channels= key */
};
typedef struct dn_op_param {
    const char *name; /* NULL: the op has no learnable parameter */
    int shape;        /* DN_OP_PARAM_* */
    double init;
} dn_op_param;

struct dn_op {
    const char *name;
    unsigned flags;        /* DN_OPF_* */
    dn_loss_target target; /* losses: what input 1 holds */
    dn_op_param param;     /* activations: the learnt second input, if any */
    int arity; /* -1: variadic, 1 .. DN_MAX_INPUTS */
    int n_attrs;
    const char *attr_names[DN_MAX_ATTRS];
    double attr_defaults[DN_MAX_ATTRS];
    unsigned nondiff; /* bit i: input i takes no gradient (class indices, labels) */
    /* Checks shapes and attributes, allocates node->out in ctx and computes it. */
    dn_status (*forward)(dn_ctx *ctx, dn_node *node);
    /* Adds d(loss)/d(input) into each input that requires grad, from node->out->grad. */
    dn_status (*backward)(dn_ctx *ctx, dn_node *node);
    const char *doc;
    /* Gradient-check samples; kinks: points where the derivative jumps (FD samples keep away). */
    const dn_case *cases;
    int n_cases;
    float kinks[4];
    int n_kinks;
    double grad_tol; /* 0: the default tolerance */
};

/* The ops of each file, in tables that end with an entry whose name is NULL. */
extern const dn_op dn_ops_elementwise[];
extern const dn_op dn_ops_unary[];
extern const dn_op dn_ops_reduce[];
extern const dn_op dn_ops_shape[];
extern const dn_op dn_ops_matmul[];
extern const dn_op dn_ops_activation[];
extern const dn_op dn_ops_loss[];
extern const dn_op dn_ops_conv[];
/* conv2d with its fast paths off (im2col + gemm only, whatever the CPU), for tests; not in the registry. */
extern const dn_op dn_op_conv2d_reference;
extern const dn_op dn_op_conv2d_relu_reference;
extern const dn_op dn_ops_pool[];
extern const dn_op dn_ops_norm[];
extern const dn_op dn_ops_rnn[];

/* Derived from the rows.  An activation / a loss by name (NULL if no such row has that flag). */
const dn_op *dn_op_find_flagged(const char *name, unsigned flag);
/* The names of the rows with every bit of `flag`, as "a, b, c" in registry order; learnt: 0 every such row,
 * 1 only those with a learnable parameter, -1 only those without.  Returns buf (always terminated). */
const char *dn_op_list(unsigned flag, int learnt, char *buf, size_t size);
/* DN_OK for a registered loss, else DN_ERR_ARG with every loss's name. */
dn_status dn_check_loss_name(const char *loss);
/* The target kind of a loss (DN_TARGET_DENSE for a name that is no loss). */
dn_loss_target dn_loss_target_kind(const char *loss);

/* Applies an op by name with attributes given as "name=value ..." (NULL for defaults).  For wrappers. */
dn_tensor *dn_apply_named(dn_ctx *ctx, const char *name, int n, dn_tensor *const *in, const char *attrs);
/* Applies with a full attribute array. */
dn_tensor *dn_apply(dn_ctx *ctx, const char *name, int n, dn_tensor *const *in, const double *attrs);
/* Parses "a=1 b=2" over the op's defaults into attrs; unknown names are errors. */
dn_status dn_parse_attrs(const dn_op *op, const char *text, double *attrs);

/* Pointwise ops in one line each (unary.c): forward computes y = f(x) over contiguous arrays; backward
 * ADDS dy * f'(x) into dx.  x is the input, y the saved output (either may be what the derivative needs). */
typedef void (*dn_pointwise_fn)(const float *x, float *y, int64_t n, const double *attr);
typedef void (*dn_pointwise_grad_fn)(const float *x, const float *y, const float *dy, float *dx, int64_t n,
                                     const double *attr);
dn_status dn_pointwise_forward(dn_ctx *ctx, dn_node *node, dn_pointwise_fn f);
dn_status dn_pointwise_backward(dn_ctx *ctx, dn_node *node, dn_pointwise_grad_fn df);
/* In place, dy[i] = y[i] > 0 ? dy[i] : 0: the backward step of a ReLU fused into an op's output y. */
void dn_relu_mask_grad(float *dy, const float *y, int64_t n);

/* Defines name_f (forward over an array), name_df (adds the gradient) and name_bwd for a pointwise op; in the
 * expressions v is x[i], out is y[i], g is dy[i] and attr the op's attributes.  DN_POINTWISE_FORWARD adds a
 * name_fwd that checks nothing. */
#define DN_POINTWISE(name, fwd_expr, grad_expr)                                                             \
    static void name##_f(const float *x, float *y, int64_t n, const double *attr)                           \
    {                                                                                                       \
        (void)attr;                                                                                         \
        for (int64_t i = 0; i < n; i++) {                                                                   \
            float v = x[i];                                                                                 \
            y[i] = (fwd_expr);                                                                              \
        }                                                                                                   \
    }                                                                                                       \
    static void name##_df(const float *x, const float *y, const float *dy, float *dx, int64_t n,            \
                          const double *attr)                                                               \
    {                                                                                                       \
        (void)attr;                                                                                         \
        for (int64_t i = 0; i < n; i++) {                                                                   \
            float v = x[i], out = y[i], g = dy[i];                                                          \
            (void)v;                                                                                        \
            (void)out;                                                                                      \
            dx[i] += (grad_expr);                                                                           \
        }                                                                                                   \
    }                                                                                                       \
    static dn_status name##_bwd(dn_ctx *ctx, dn_node *node) { return dn_pointwise_backward(ctx, node, name##_df); }
#define DN_POINTWISE_FORWARD(name)                                                                          \
    static dn_status name##_fwd(dn_ctx *ctx, dn_node *node) { return dn_pointwise_forward(ctx, node, name##_f); }

/* The attributes of conv2d, by index (their names are the row's attr_names, in this order). */
enum dn_conv_attr {
    DN_CONV_STRIDE_H, DN_CONV_STRIDE_W, DN_CONV_PAD_H, DN_CONV_PAD_W, DN_CONV_DILATION_H, DN_CONV_DILATION_W,
    DN_CONV_GROUPS,
    DN_CONV_N_ATTRS
};
/* The attributes of max/avg/min_pool2d, by index. */
enum dn_pool_attr { DN_POOL_KERNEL_H, DN_POOL_KERNEL_W, DN_POOL_STRIDE_H, DN_POOL_STRIDE_W, DN_POOL_PAD_H, DN_POOL_PAD_W,
                    DN_POOL_N_ATTRS };
/* Output length of a convolution or pooling window along one axis (torch's formula):
 *     out = floor((in + 2 pad - dilation (k - 1) - 1) / stride) + 1,
 * and 0 when the dilated window does not fit in the padded input. */
static inline int64_t dn_conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dilation)
{
    int64_t span = in + 2 * pad - dilation * (k - 1) - 1;
    return span < 0 ? 0 : span / stride + 1;
}

/* Returns DN_ERR_NUMERIC with the op's name if any element of t is NaN or infinite. */
dn_status dn_check_finite(const char *op, const char *what, const dn_tensor *t);

/* ------------------------------------------------------------------ kernels (src/kernels/) */

#include "kernels/gemm.h"

#endif /* DN_INTERNAL_H */
