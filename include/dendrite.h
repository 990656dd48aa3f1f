/* dendrite — a small neural-network library in C11.
 *
 * One header, four ideas:
 *   - dn_tensor: float32, up to DN_MAX_DIMS dimensions, row-major with strides (views share storage).
 *   - dn_ctx: a per-step context.  Every tensor an op makes lives in the context's arena and is
 *     recorded on its tape; dn_ctx_reset() drops them all at once and keeps the memory for the next step.
 *   - Ops return a new tensor, or NULL on error.  The first error is sticky: every later op on that
 *     context returns NULL too, so a chain of calls needs one check at the end (dn_ctx_status()).
 *   - dn_backward() walks the tape in reverse and accumulates gradients into every tensor that
 *     requires them.
 *
 * Functions that can fail return dn_status (0 is DN_OK) and leave a message in dn_last_error().
 * The library never prints, exits or aborts on bad input.
 */
#ifndef DENDRITE_H
#define DENDRITE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
/* Marks a function whose dn_status result must not be ignored (warn_unused_result on GCC and Clang). */
#define DN_NODISCARD __attribute__((warn_unused_result))
#else
#define DN_NODISCARD /* other compilers: nothing */
#endif

/* Everything this header declares is the library's interface: the shared library exports these names and no
 * others (it is built with -fvisibility=hidden). */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(_WIN32)
#pragma GCC visibility push(default)
#define DN_VISIBILITY_PUSHED /* popped at the end of this header */
#endif

#define DN_VERSION "0.1.0" /* the library's version, major.minor.patch */
#define DN_MAX_DIMS 6   /* most dimensions a tensor may have */
#define DN_MAX_ATTRS 8  /* most numeric attributes an op may take */
#define DN_MAX_INPUTS 16 /* most inputs an op may take (concat is variadic) */

/* ------------------------------------------------------------------ errors */

/* What a fallible call returns: DN_OK (0) on success, else the kind of failure (details in dn_last_error()). */
typedef enum dn_status {
    DN_OK = 0,      /* success */
    DN_ERR_ARG,     /* a bad argument: NULL, out of range, unknown name */
    DN_ERR_SHAPE,   /* shapes that do not fit together */
    DN_ERR_NOMEM,   /* an allocation failed */
    DN_ERR_IO,      /* a file could not be opened, read or written */
    DN_ERR_FORMAT,  /* a file's contents are malformed */
    DN_ERR_NUMERIC, /* a NaN or infinity where a finite number is needed */
    DN_ERR_STATE    /* a call out of order (backward twice, a context with an earlier error, ...) */
} dn_status;

/* The message of the most recent error on this thread ("" if none). */
const char *dn_last_error(void);
/* A short name for a status code ("DN_ERR_SHAPE", ...). */
const char *dn_status_name(dn_status s);

/* ------------------------------------------------------------------ memory */

/* A replacement for malloc, realloc and free; each function also receives `user`. */
typedef struct dn_allocator {
    void *(*alloc)(size_t size, void *user);              /* as malloc */
    void *(*realloc)(void *ptr, size_t size, void *user); /* as realloc */
    void (*free)(void *ptr, void *user);                  /* as free */
    void *user;                                           /* passed to each of the three */
} dn_allocator;
/* Replace the allocator (NULL restores malloc/realloc/free).  For embedding and for tests that fail
 * the N-th allocation.  Set it before creating any object. */
void dn_set_allocator(const dn_allocator *a);

/* ------------------------------------------------------------------ random numbers */

/* A small, seeded generator (xoshiro128++).  Same seed, same sequence, on every platform. */
typedef struct dn_rng { uint32_t s[4]; /* the state; set it with dn_rng_seed */ } dn_rng;
void dn_rng_seed(dn_rng *r, uint64_t seed); /* any seed, 0 included */
uint32_t dn_rng_u32(dn_rng *r);             /* the next 32 random bits */
float dn_rng_uniform(dn_rng *r);  /* in [0, 1) */
float dn_rng_normal(dn_rng *r);   /* mean 0, variance 1 */

/* ------------------------------------------------------------------ contexts */

/* A per-step context: the arena that holds the step's tensors, the tape, and the step's first error. */
typedef struct dn_ctx dn_ctx;
/* A float32 tensor of up to DN_MAX_DIMS dimensions, row-major with strides; views share storage. */
typedef struct dn_tensor dn_tensor;

/* A new, empty context; NULL if out of memory (dn_last_error says so). */
dn_ctx *dn_ctx_new(void);
/* Frees the context, its arena, its tape and every tensor made in it.  NULL does nothing. */
void dn_ctx_free(dn_ctx *ctx);
/* Drops all tensors and the tape and clears a sticky error; the memory is kept for reuse. */
void dn_ctx_reset(dn_ctx *ctx);
/* DN_OK, or the first error an op on this context met since the last reset. */
dn_status dn_ctx_status(const dn_ctx *ctx);
/* Turn gradient recording on (default) or off (inference: no tape, less memory).  Returns the old value. */
bool dn_ctx_set_grad(dn_ctx *ctx, bool enabled);
/* Bytes the arena holds (its high-water mark). */
size_t dn_ctx_arena_bytes(const dn_ctx *ctx);
/* Anomaly detection: every op's output and every gradient is checked for NaN and infinity, and the first one
 * found is an error naming the op (and the model layer) that produced it.  Slower; off by default. */
void dn_ctx_set_detect_anomaly(dn_ctx *ctx, bool enabled);
/* A budget for each context's working memory in bytes (0: none; default: DN_MEMORY_LIMIT in MB from the
 * environment).  A step that would need more fails with DN_ERR_NOMEM and says how much it needed. */
void dn_set_memory_limit(size_t bytes);

/* ------------------------------------------------------------------ tensors */

/* New tensors.  With ctx, the tensor lives in the context's arena until dn_ctx_reset(); with ctx NULL it
 * lives on the heap until dn_tensor_free().  dn_tensor_new fills with zeros; dn_tensor_from copies data. */
DN_NODISCARD dn_status dn_tensor_new(dn_ctx *ctx, int ndim, const int64_t *shape, dn_tensor **out);
DN_NODISCARD dn_status dn_tensor_from(dn_ctx *ctx, int ndim, const int64_t *shape, const float *data,
                                      dn_tensor **out);
/* Frees a heap tensor (and its gradient).  NULL, and tensors that belong to a context, are ignored. */
void dn_tensor_free(dn_tensor *t);

int dn_tensor_ndim(const dn_tensor *t);                /* number of dimensions (0 for a scalar) */
int64_t dn_tensor_dim(const dn_tensor *t, int axis);  /* negative axes count from the end */
int64_t dn_tensor_numel(const dn_tensor *t);          /* number of elements */
/* Pointer to the elements if the tensor is contiguous, else NULL (use dn_contiguous first). */
float *dn_tensor_data(dn_tensor *t);
/* Copies the elements in row-major order into buf (numel floats), whatever the strides. */
void dn_tensor_read(const dn_tensor *t, float *buf);
/* Element at a flat row-major index (strides respected). */
float dn_tensor_get(const dn_tensor *t, int64_t index);
/* Formats "[2, 3, 4]" into buf. */
const char *dn_tensor_shape_str(const dn_tensor *t, char *buf, size_t size);

/* Gradients.  A tensor that requires grad receives d(loss)/d(tensor) in dn_backward(); the gradient is
 * contiguous, in row-major order of the tensor's shape, and NULL until first written. */
DN_NODISCARD dn_status dn_tensor_set_requires_grad(dn_tensor *t, bool requires);
bool dn_tensor_requires_grad(const dn_tensor *t); /* whether backward computes this tensor's gradient */
float *dn_tensor_grad(dn_tensor *t);              /* the gradient (numel floats), NULL until first written */
void dn_tensor_zero_grad(dn_tensor *t);           /* sets the gradient, if there is one, to zero */

/* Fill helpers for heap or context tensors (contiguous only). */
DN_NODISCARD dn_status dn_tensor_fill(dn_tensor *t, float value);
DN_NODISCARD dn_status dn_tensor_fill_uniform(dn_tensor *t, dn_rng *r, float lo, float hi); /* U(lo, hi) */
DN_NODISCARD dn_status dn_tensor_fill_normal(dn_tensor *t, dn_rng *r, float mean, float std); /* N(mean, std²) */

/* ------------------------------------------------------------------ autodiff */

/* Backpropagates from a scalar (one element) tensor: its gradient is set to 1 and every op on the tape
 * adds its inputs' gradients.  Gradients accumulate: zero them between steps. */
DN_NODISCARD dn_status dn_backward(dn_ctx *ctx, dn_tensor *loss);
/* As dn_backward, but seeds the output with the given gradient (numel floats, row-major). */
DN_NODISCARD dn_status dn_backward_with(dn_ctx *ctx, dn_tensor *out, const float *grad);

/* ------------------------------------------------------------------ the op registry */

/* Every differentiable op is one entry in a registry that the tests walk.  Attributes are numbers
 * with names (axis, alpha, reduction, ...); names, never positions, are what files store. */
typedef struct dn_op dn_op;
int dn_op_count(void);                     /* number of ops in the registry */
const dn_op *dn_op_at(int i);              /* op i, 0 <= i < dn_op_count(); NULL outside */
const dn_op *dn_op_find(const char *name); /* the op of that name ("relu"), NULL if there is none */
const char *dn_op_name(const dn_op *op);   /* the name files and dn_op_find use */
/* Number of inputs (-1: variadic); number of attributes and their names and defaults. */
int dn_op_arity(const dn_op *op);
int dn_op_attr_count(const dn_op *op);                /* number of attributes */
const char *dn_op_attr_name(const dn_op *op, int i);  /* name of attribute i ("alpha") */
double dn_op_attr_default(const dn_op *op, int i);    /* default of attribute i */
/* Looks up an attribute index by name, -1 if the op has none of that name. */
int dn_op_attr_index(const dn_op *op, const char *name);
/* One-line formula for the documentation and `dendrite gradcheck`. */
const char *dn_op_doc(const dn_op *op);
/* Applies an op by registry entry.  attrs: dn_op_attr_count() numbers, or NULL for all defaults. */
dn_tensor *dn_op_apply(dn_ctx *ctx, const dn_op *op, int n, dn_tensor *const *inputs, const double *attrs);

/* Checks one op's backward against central finite differences on the op's built-in sample cases.
 * Returns DN_OK if every gradient agrees; *max_err gets the worst scaled error seen.  msg (may be NULL)
 * receives a short human-readable verdict. */
DN_NODISCARD dn_status dn_gradcheck_op(const dn_op *op, double *max_err, char *msg, size_t msg_size);

/* ------------------------------------------------------------------ ops (each returns NULL on error) */

/* Reductions for losses. */
enum { DN_REDUCE_MEAN = 0, DN_REDUCE_SUM = 1, DN_REDUCE_NONE = 2 };

/* Elementwise arithmetic with NumPy/PyTorch broadcasting. */
dn_tensor *dn_add(dn_ctx *ctx, dn_tensor *a, dn_tensor *b);        /* a + b */
dn_tensor *dn_sub(dn_ctx *ctx, dn_tensor *a, dn_tensor *b);        /* a - b */
dn_tensor *dn_mul(dn_ctx *ctx, dn_tensor *a, dn_tensor *b);        /* a * b */
dn_tensor *dn_div(dn_ctx *ctx, dn_tensor *a, dn_tensor *b);        /* a / b */
dn_tensor *dn_scale(dn_ctx *ctx, dn_tensor *x, float factor);      /* factor * x */
dn_tensor *dn_add_scalar(dn_ctx *ctx, dn_tensor *x, float value);  /* x + value */

/* Unary maths. */
dn_tensor *dn_exp(dn_ctx *ctx, dn_tensor *x);                        /* e^x */
dn_tensor *dn_log(dn_ctx *ctx, dn_tensor *x);                        /* natural logarithm */
dn_tensor *dn_sqrt(dn_ctx *ctx, dn_tensor *x);                       /* square root */
dn_tensor *dn_pow(dn_ctx *ctx, dn_tensor *x, float exponent);        /* x^exponent */
dn_tensor *dn_abs(dn_ctx *ctx, dn_tensor *x);                        /* |x| */
dn_tensor *dn_clamp(dn_ctx *ctx, dn_tensor *x, float lo, float hi);  /* min(max(x, lo), hi) */

/* Matrix products.  matmul: [.., M, K] x [.., K, N] -> [.., M, N]; batch dimensions broadcast, and a 2-D
 * right side is shared by every batch.  linear: x [.., in] with W [out, in] and b [out] (b may be NULL)
 * gives x Wᵀ + b, as torch.nn.functional.linear. */
dn_tensor *dn_matmul(dn_ctx *ctx, dn_tensor *a, dn_tensor *b);
dn_tensor *dn_linear(dn_ctx *ctx, dn_tensor *x, dn_tensor *w, dn_tensor *b);

/* Reductions over a set of axes, given as a bit mask (bit i = axis i); mask 0 means every axis. */
dn_tensor *dn_sum(dn_ctx *ctx, dn_tensor *x, unsigned axes, bool keepdim);
dn_tensor *dn_mean(dn_ctx *ctx, dn_tensor *x, unsigned axes, bool keepdim); /* sum / count */
dn_tensor *dn_max(dn_ctx *ctx, dn_tensor *x, unsigned axes, bool keepdim);  /* ties share the gradient */

/* Shape ops.  reshape, permute and slice return views when they can (no copy); a -1 in reshape is
 * inferred.  slice takes [start, end) with step along one axis (negative start/end count from the end). */
dn_tensor *dn_reshape(dn_ctx *ctx, dn_tensor *x, int ndim, const int64_t *shape);
dn_tensor *dn_permute(dn_ctx *ctx, dn_tensor *x, const int *perm);
dn_tensor *dn_transpose(dn_ctx *ctx, dn_tensor *x, int axis0, int axis1);  /* swaps two axes (a view) */
dn_tensor *dn_slice(dn_ctx *ctx, dn_tensor *x, int axis, int64_t start, int64_t end, int64_t step);
dn_tensor *dn_concat(dn_ctx *ctx, int n, dn_tensor *const *xs, int axis);  /* n tensors joined along axis */
dn_tensor *dn_contiguous(dn_ctx *ctx, dn_tensor *x);                       /* a row-major copy */

/* Activations (the seed's full list). */
dn_tensor *dn_identity(dn_ctx *ctx, dn_tensor *x);                           /* x */
dn_tensor *dn_sigmoid(dn_ctx *ctx, dn_tensor *x);                            /* 1 / (1 + e^-x) */
dn_tensor *dn_tanh(dn_ctx *ctx, dn_tensor *x);                               /* tanh(x) */
dn_tensor *dn_relu(dn_ctx *ctx, dn_tensor *x);                               /* max(0, x) */
dn_tensor *dn_leaky_relu(dn_ctx *ctx, dn_tensor *x, float alpha);            /* alpha default 0.01 */
dn_tensor *dn_softmax(dn_ctx *ctx, dn_tensor *x, int axis);                  /* e^x / sum(e^x) along axis */
dn_tensor *dn_log_softmax(dn_ctx *ctx, dn_tensor *x, int axis);              /* log(softmax), computed stably */
/* PReLU: alpha has 1 element (shared) or C elements, one per channel (axis 1 of x). */
dn_tensor *dn_prelu(dn_ctx *ctx, dn_tensor *x, dn_tensor *alpha);
dn_tensor *dn_elu(dn_ctx *ctx, dn_tensor *x, float alpha);                   /* alpha default 1 */
/* Swish x*sigmoid(beta*x); beta is a 1-element tensor so it can be learned. */
dn_tensor *dn_swish(dn_ctx *ctx, dn_tensor *x, dn_tensor *beta);
dn_tensor *dn_mish(dn_ctx *ctx, dn_tensor *x);                               /* x * tanh(softplus(x)) */
/* dn_gelu: x * Phi(x) (Phi: the normal CDF), exact (DN_GELU_ERF) or with PyTorch's tanh approximation. */
enum { DN_GELU_ERF = 0, DN_GELU_TANH = 1 };
dn_tensor *dn_gelu(dn_ctx *ctx, dn_tensor *x, int approximate);
dn_tensor *dn_softplus(dn_ctx *ctx, dn_tensor *x, float beta, float threshold); /* 1, 20 */
dn_tensor *dn_selu(dn_ctx *ctx, dn_tensor *x);   /* lambda * (x > 0 ? x : alpha (e^x - 1)), PyTorch's constants */
/* max(0, min(1, slope*x + offset)): the seed's form is slope 0.5, offset 0.5; PyTorch's is 1/6, 0.5. */
dn_tensor *dn_hard_sigmoid(dn_ctx *ctx, dn_tensor *x, float slope, float offset);
dn_tensor *dn_hard_tanh(dn_ctx *ctx, dn_tensor *x, float lo, float hi);     /* -1, 1 */

/* Losses.  pred and target of the same shape unless said otherwise; reduction is DN_REDUCE_*.
 * Class targets are class indices stored as floats, shape [N] (or [N, d1..] for pred [N, C, d1..]). */
dn_tensor *dn_mse_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, int reduction); /* (pred - target)^2 */
dn_tensor *dn_l1_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, int reduction);  /* |pred - target| */
/* d = pred - target: d^2 / 2 where |d| <= delta, else delta (|d| - delta / 2) (torch.nn.HuberLoss). */
dn_tensor *dn_huber_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, float delta, int reduction);
/* Cross-entropy on probabilities: -sum_c y_c log p_c per row (pred [N, C] of probabilities, target [N, C]). */
dn_tensor *dn_cross_entropy_prob(dn_ctx *ctx, dn_tensor *prob, dn_tensor *target, int reduction);
/* Binary cross-entropy -(y log p + (1 - y) log(1 - p)) on probabilities p. */
dn_tensor *dn_bce_loss(dn_ctx *ctx, dn_tensor *prob, dn_tensor *target, int reduction);
/* The same on logits: p = sigmoid(logits), computed stably (torch.nn.BCEWithLogitsLoss). */
dn_tensor *dn_bce_with_logits(dn_ctx *ctx, dn_tensor *logits, dn_tensor *target, int reduction);
/* Hinge with labels +1/-1: max(0, 1 - y*pred). */
dn_tensor *dn_hinge_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, int reduction);
/* Multi-class hinge (torch.nn.MultiMarginLoss, p=1, margin 1): pred [N, C], target class indices [N]. */
dn_tensor *dn_multi_margin_loss(dn_ctx *ctx, dn_tensor *pred, dn_tensor *target, float margin, int reduction);
/* Softmax cross-entropy from logits [N, C]: target class indices [N], as torch.nn.CrossEntropyLoss. */
dn_tensor *dn_softmax_cross_entropy(dn_ctx *ctx, dn_tensor *logits, dn_tensor *target, int reduction);
/* The same with probability targets [N, C]. */
dn_tensor *dn_softmax_cross_entropy_soft(dn_ctx *ctx, dn_tensor *logits, dn_tensor *target, int reduction);
/* Negative log-likelihood on log-probabilities [N, C] with class indices [N]. */
dn_tensor *dn_nll_loss(dn_ctx *ctx, dn_tensor *logp, dn_tensor *target, int reduction);

/* Convolution and pooling, NCHW.  conv2d: x [N, C, H, W], w [F, C/groups, kh, kw], b [F] or NULL; output
 * [N, F, Ho, Wo] with Ho = (H + 2 pad_h - dilation_h (kh - 1) - 1) / stride_h + 1; torch.nn.functional.conv2d. */
dn_tensor *dn_conv2d(dn_ctx *ctx, dn_tensor *x, dn_tensor *w, dn_tensor *b, int stride_h, int stride_w, int pad_h,
                     int pad_w, int dilation_h, int dilation_w, int groups);
/* Pooling over kh x kw windows with stride (0: = kernel) and zero/-inf padding; gradients go to the first extreme
 * element of a window (PyTorch's rule); average pooling divides by kh*kw (count_include_pad). */
dn_tensor *dn_max_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw);
dn_tensor *dn_avg_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw); /* average */
dn_tensor *dn_min_pool2d(dn_ctx *ctx, dn_tensor *x, int kh, int kw, int sh, int sw, int ph, int pw); /* minimum */
/* [N, C, H, W] -> [N, C, 1, 1]. */
dn_tensor *dn_global_avg_pool2d(dn_ctx *ctx, dn_tensor *x); /* mean over H and W */
dn_tensor *dn_global_max_pool2d(dn_ctx *ctx, dn_tensor *x); /* maximum over H and W */
/* Batch normalisation over axis 1 of x [N, C, ...], as torch.nn.functional.batch_norm: in training, batch
 * statistics normalise (biased variance) and the running statistics are updated in place (unbiased variance);
 * in evaluation the running statistics normalise. */
dn_tensor *dn_batch_norm(dn_ctx *ctx, dn_tensor *x, dn_tensor *gamma, dn_tensor *beta, dn_tensor *running_mean,
                         dn_tensor *running_var, bool training, float momentum, float eps);

/* Recurrent ops (docs/rnn.md).  embedding: indices (integers stored as floats, any shape, usually [N] or [N, T])
 * into weight [V, E] -> indices.shape + [E]; gradient to weight only.  The cells take xw = x W_ihᵀ + b_ih for one
 * step and a mask [N] of 0/1 (0: a padding step, the row keeps its state; NULL: every row steps); b_hh may be NULL.
 * rnn_cell: h' = act(xw + h W_hhᵀ + b_hh), nonlinearity 0 tanh, 1 relu.  lstm_cell: gates i f g o, returns
 * [h' | c'] as [N, 2H].  gru_cell: gates r z n, n = tanh(xw_n + r (h W_hnᵀ + b_hn)), h' = (1 - z) n + z h. */
dn_tensor *dn_embedding(dn_ctx *ctx, dn_tensor *indices, dn_tensor *weight);
dn_tensor *dn_rnn_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *w_hh, dn_tensor *b_hh, dn_tensor *mask,
                       int nonlinearity);
dn_tensor *dn_lstm_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *c, dn_tensor *w_hh, dn_tensor *b_hh,
                        dn_tensor *mask);
dn_tensor *dn_gru_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *w_hh, dn_tensor *b_hh, dn_tensor *mask);

/* ------------------------------------------------------------------ data sets */

/* Samples in memory: n samples of shape `shape` (row-major) and, in y, one target per sample (a class index
 * stored as a float, or a regression value).  The samples are stored in one of two ways; exactly one of x and
 * x_bytes is set (both may be NULL when n * sample_size is 0):
 *   - x: float32 values (the CSV and text loaders, dn_dataset_load_idx, data sets built by hand);
 *   - x_bytes: one unsigned byte per value, a quarter of the memory (dn_dataset_load_idx_compact, which the CLI
 *     uses): value = (float)(x_bytes[k] * x_scale), then (value - x_mean[f]) / x_std[f] for feature f once
 *     dn_dataset_normalize has run.  x is NULL then.
 * Read samples with dn_dataset_get(), which serves both and gives bit for bit the floats x would hold; code that
 * reads d->x directly must handle x == NULL.  Loaders check every size and say what is wrong. */
typedef struct dn_dataset {
    int64_t n;                     /* number of samples */
    int ndim;                      /* rank of one sample */
    int64_t shape[DN_MAX_DIMS];    /* shape of one sample */
    float *x;                      /* n * sample_size floats, or NULL when the samples are bytes (x_bytes) */
    float *y;                      /* n * target_size floats */
    int n_classes;                 /* 1 + largest label for classification data; 0 if unknown */
    int64_t target_size;           /* targets per sample: 0 or 1 for one label, T for a sequence of labels */
    uint8_t *x_bytes;              /* n * sample_size bytes, or NULL when the samples are floats (x) */
    float x_scale;                 /* byte storage: a byte b stands for (float)(b * x_scale) */
    float *x_mean;                 /* byte storage: sample_size means subtracted on the way out, or NULL */
    float *x_std;                  /* byte storage: sample_size divisors (a 0 already made 1); set with x_mean */
} dn_dataset;

/* Elements of one sample. */
int64_t dn_dataset_sample_size(const dn_dataset *d);
/* Targets of one sample (1 unless target_size says more). */
int64_t dn_dataset_target_size(const dn_dataset *d);
/* Copies samples first .. first + count - 1 into out (count * sample_size floats), from either storage.
 * Returns the number copied: fewer at the end of the data, 0 when first is out of range. */
int64_t dn_dataset_get(const dn_dataset *d, int64_t first, int64_t count, float *out);
/* MNIST-style IDX pair: images (any rank, unsigned byte or float/int) scaled by `scale` (1/255 for bytes
 * to [0,1]), labels (rank 1).  labels may be NULL (y is then zero).  Counts must agree.  Samples as floats (x). */
DN_NODISCARD dn_status dn_dataset_load_idx(const char *images, const char *labels, float scale, dn_dataset **out);
/* As dn_dataset_load_idx, but unsigned-byte images stay bytes (x_bytes, x NULL): a quarter of the memory, the
 * same values through dn_dataset_get.  Images of other element types load as floats. */
DN_NODISCARD dn_status dn_dataset_load_idx_compact(const char *images, const char *labels, float scale,
                                                   dn_dataset **out);
/* Numeric CSV: one sample per row, `label_col` (negative counts from the end) is the target, the other
 * columns are features.  header: 1 skip the first line, 0 none, -1 detect (a first row that is not numeric).
 * Errors name the line and column. */
DN_NODISCARD dn_status dn_dataset_load_csv(const char *path, int label_col, int header, dn_dataset **out);
/* label_col value meaning "no label column": every column is a feature and y is zero (for prediction). */
#define DN_CSV_NO_LABEL (-2147483647 - 1)
void dn_dataset_free(dn_dataset *d); /* frees the data set and its arrays; NULL does nothing */
/* Splits a seeded permutation: b gets round(fraction * n) samples (validation), a the rest (training);
 * fraction in [0, 1); both keep the original sample order and d's storage (floats or bytes); b may be empty. */
DN_NODISCARD dn_status dn_dataset_split(const dn_dataset *d, double fraction, uint64_t seed, dn_dataset **a,
                                        dn_dataset **b);
/* Per-feature mean and population standard deviation of d (arrays of sample_size floats, caller-allocated);
 * an empty data set gives mean 0, std 1. */
void dn_dataset_stats(const dn_dataset *d, float *mean, float *std);
/* x = (x - mean) / std per feature (std 0 is treated as 1).  Byte storage keeps copies of mean and std and
 * applies them in dn_dataset_get; normalising it a second time turns it into floats (no byte form is exact). */
DN_NODISCARD dn_status dn_dataset_normalize(dn_dataset *d, const float *mean, const float *std);

/* A character (byte) vocabulary: the distinct bytes of a text, in byte order. */
typedef struct dn_vocab {
    int size;                 /* number of distinct bytes */
    unsigned char bytes[256]; /* id -> byte */
    int16_t index[256];       /* byte -> id, -1 if absent */
} dn_vocab;
void dn_vocab_build(const unsigned char *text, size_t n, dn_vocab *v); /* the vocabulary of n bytes of text */
/* A text file as windows of seq_len character ids (x) whose targets are the next characters (y, target_size =
 * seq_len).  vocab: use this vocabulary (bytes outside it are errors), or NULL to build one from the file into
 * *vocab_out.  Binary files and empty files are refused. */
DN_NODISCARD dn_status dn_dataset_load_text(const char *path, int64_t seq_len, const dn_vocab *vocab,
                                            dn_vocab *vocab_out, dn_dataset **out);

/* Reorders text windows into `streams` parallel streams (dropping the remainder) so that, unshuffled, row i of
 * batch k continues row i of batch k-1: the layout truncated BPTT needs (batch = streams). */
DN_NODISCARD dn_status dn_dataset_streams(dn_dataset *d, int64_t streams);

/* Seeded shuffled minibatches over a data set.  Each epoch draws a new permutation from the generator. */
typedef struct dn_batcher dn_batcher;
/* The data set is borrowed: it must outlive the batcher.  The generator is used only by new and reset, so
 * saving dn_batcher_rng() between epochs and restoring it before dn_batcher_reset() resumes the same order. */
DN_NODISCARD dn_status dn_batcher_new(const dn_dataset *d, int64_t batch, bool shuffle, uint64_t seed,
                                      dn_batcher **out);
void dn_batcher_free(dn_batcher *b); /* frees the batcher (not the data set); NULL does nothing */
/* Starts a new epoch (reshuffles). */
void dn_batcher_reset(dn_batcher *b);
/* Copies the next batch into x (batch * sample_size floats) and y (batch * target_size floats); returns its
 * size, 0 at the end of the epoch.  The last batch may be smaller. */
int64_t dn_batcher_next(dn_batcher *b, float *x, float *y);
/* The generator state, for checkpoints (resume continues the same sequence). */
dn_rng *dn_batcher_rng(dn_batcher *b);

/* ------------------------------------------------------------------ optimisers */

/* The optimisers, each with PyTorch's update rule (docs/optimisers.md). */
typedef enum dn_optim_kind { DN_SGD = 0, DN_ADAM, DN_ADAMW, DN_RMSPROP, DN_ADAGRAD } dn_optim_kind;

/* Settings with PyTorch's names and defaults (dn_optim_defaults fills them for a kind). */
typedef struct dn_optim_config {
    dn_optim_kind kind;  /* which optimiser */
    float lr;            /* SGD 0.01 (torch requires it; we pick 0.01), Adam/AdamW 1e-3, RMSprop 0.01, Adagrad 0.01 */
    float momentum;      /* SGD, RMSprop: 0 */
    float dampening;     /* SGD: 0 */
    bool nesterov;       /* SGD */
    float beta1;         /* Adam/AdamW: 0.9 */
    float beta2;         /* Adam/AdamW: 0.999 */
    float eps;           /* Adam/AdamW 1e-8, RMSprop 1e-8, Adagrad 1e-10 */
    float weight_decay;  /* L2 added to the gradient (SGD, Adam, RMSprop, Adagrad) or decoupled (AdamW, default 0.01) */
    bool amsgrad;        /* Adam/AdamW */
    float alpha;         /* RMSprop smoothing: 0.99 */
    bool centered;       /* RMSprop */
    float lr_decay;      /* Adagrad: 0 */
    float initial_accumulator; /* Adagrad: 0 */
} dn_optim_config;

void dn_optim_defaults(dn_optim_kind kind, dn_optim_config *cfg); /* fills cfg with the kind's defaults above */
/* Parses "sgd", "adam", "adamw", "rmsprop", "adagrad". */
DN_NODISCARD dn_status dn_optim_kind_parse(const char *name, dn_optim_kind *kind);
const char *dn_optim_kind_name(dn_optim_kind kind); /* "sgd", "adam", ... */

/* An optimiser and its state (momentum buffers, moment estimates, step count). */
typedef struct dn_optim dn_optim;
/* An optimiser over n parameters kept in one flat buffer.  decay_mask (n bytes, may be NULL = all 1):
 * 0 excludes an element from weight decay (biases, batch-norm parameters). */
DN_NODISCARD dn_status dn_optim_new(const dn_optim_config *cfg, size_t n, const uint8_t *decay_mask, dn_optim **out);
void dn_optim_free(dn_optim *o); /* NULL does nothing */
/* One update of params from grads, with PyTorch's update rule for the kind. */
void dn_optim_step(dn_optim *o, float *params, const float *grads);
void dn_optim_set_lr(dn_optim *o, float lr); /* the learning rate of the next steps (schedules set it) */
float dn_optim_get_lr(const dn_optim *o);     /* the learning rate now */
/* Optimiser state for checkpoints: buffers named like "momentum_buffer", "exp_avg", "exp_avg_sq",
 * "max_exp_avg_sq", "square_avg", "grad_avg", "sum", each n floats; plus the step count. */
int dn_optim_state_count(const dn_optim *o);
const char *dn_optim_state_name(const dn_optim *o, int i); /* name of state buffer i */
float *dn_optim_state_data(dn_optim *o, int i);            /* its n floats */
int64_t dn_optim_get_step(const dn_optim *o);              /* steps taken */
void dn_optim_set_step(dn_optim *o, int64_t step);         /* for resuming: Adam's bias correction needs it */

/* Gradient clipping over a flat gradient buffer: by global L2 norm (returns the norm before clipping, as
 * torch.nn.utils.clip_grad_norm_) and by value. */
float dn_clip_grad_norm(float *grads, size_t n, float max_norm);
void dn_clip_grad_value(float *grads, size_t n, float clip); /* each gradient into [-clip, clip] */

/* Learning-rate schedules, evaluated per epoch (PyTorch's closed forms).  Warm-up, when set, ramps linearly
 * from lr*warmup_start_factor to lr over warmup_epochs before the schedule proper begins. */
typedef enum dn_sched_kind { DN_SCHED_CONSTANT = 0, DN_SCHED_STEP, DN_SCHED_EXPONENTIAL, DN_SCHED_COSINE,
                             DN_SCHED_PLATEAU } dn_sched_kind;
/* A schedule's settings and, for plateau, its state (dn_schedule_defaults fills it). */
typedef struct dn_schedule {
    dn_sched_kind kind;  /* which schedule */
    float base_lr;       /* the learning rate the schedule starts from */
    int step_size;       /* step: every step_size epochs multiply by gamma */
    float gamma;         /* step 0.1, exponential 0.95 */
    int t_max;           /* cosine: period in epochs */
    float eta_min;       /* cosine: floor 0 */
    int warmup_epochs;   /* 0: none */
    float warmup_start_factor; /* 1/3 as torch LinearLR's default */
    /* reduce-on-plateau (mode min) */
    float factor;        /* multiplies the learning rate on a plateau: 0.1 */
    float threshold;     /* relative improvement that counts: 1e-4 */
    float min_lr;        /* lower bound: 0 */
    int patience;        /* epochs without improvement before a cut: 10 */
    int cooldown;        /* epochs to wait after a cut: 0 */
    /* plateau state */
    float best;          /* best metric so far */
    float current_lr;    /* learning rate now */
    int bad_epochs;      /* epochs since the best */
    int cooldown_left;   /* cooldown epochs left */
} dn_schedule;
void dn_schedule_defaults(dn_sched_kind kind, float base_lr, dn_schedule *s); /* the defaults above */
/* Parses "constant", "step", "exponential", "cosine", "plateau". */
DN_NODISCARD dn_status dn_sched_kind_parse(const char *name, dn_sched_kind *kind);
/* Learning rate for epoch `epoch` (0-based).  For plateau, call dn_schedule_observe after each epoch. */
float dn_schedule_lr(dn_schedule *s, int epoch);
void dn_schedule_observe(dn_schedule *s, float metric); /* plateau: the epoch's monitored metric */

/* ------------------------------------------------------------------ models */

/* A model is a chain of layers with all parameters and gradients in two flat buffers (so an optimiser
 * step is one loop over them).  Input shape is per sample; a batch adds a leading axis N. */
typedef struct dn_model dn_model;

/* Weight initialisation of dense, convolutional and recurrent layers. */
typedef enum dn_init {
    DN_INIT_DEFAULT = 0,  /* PyTorch's nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias */
    DN_INIT_XAVIER_UNIFORM, /* Glorot: U(-a, a), a = sqrt(6 / (fan_in + fan_out)); bias 0 */
    DN_INIT_XAVIER_NORMAL,  /* N(0, 2 / (fan_in + fan_out)); bias 0 */
    DN_INIT_HE_UNIFORM,     /* Kaiming (ReLU gain): U(-a, a), a = sqrt(6 / fan_in); bias 0 */
    DN_INIT_HE_NORMAL       /* N(0, 2 / fan_in); bias 0 */
} dn_init;
/* Parses "default", "xavier_uniform" (or "glorot"), "xavier_normal", "he_uniform" (or "kaiming"), "he_normal". */
DN_NODISCARD dn_status dn_init_parse(const char *name, dn_init *init);

/* A new, empty model taking samples of the given shape; `seed` drives initialisation (and dropout). */
DN_NODISCARD dn_status dn_model_new(int ndim, const int64_t *input_shape, uint64_t seed, dn_model **out);
void dn_model_free(dn_model *m); /* NULL does nothing */
/* Fully connected layer y = x Wᵀ + b; inputs of rank > 1 per sample are flattened first. */
DN_NODISCARD dn_status dn_model_add_dense(dn_model *m, int64_t units, dn_init init, bool bias);
/* An activation op by name ("relu", "leaky_relu", "softmax", "prelu", "swish", ...) with attributes as
 * "name=value ..." (NULL for defaults).  prelu learns alpha (attribute channels=1 or C, init=0.25);
 * swish learns beta (init=1). */
DN_NODISCARD dn_status dn_model_add_activation(dn_model *m, const char *name, const char *attrs);
/* Flattens each sample to one axis. */
DN_NODISCARD dn_status dn_model_add_flatten(dn_model *m);
#define DN_PAD_SAME (-1) /* dn_model_add_conv2d's pad that keeps H and W (for stride 1) */
/* Convolution over images [C, H, W]: `filters` kernels of kh x kw, stride, padding (DN_PAD_SAME keeps H and W
 * for stride 1), dilation and groups (groups = C: depthwise). */
DN_NODISCARD dn_status dn_model_add_conv2d(dn_model *m, int64_t filters, int kh, int kw, int stride, int pad,
                                           int dilation, int groups, dn_init init, bool bias);
/* Pooling: kind "max", "avg" or "min"; stride 0 means = size. */
DN_NODISCARD dn_status dn_model_add_pool2d(dn_model *m, const char *kind, int size, int stride, int pad);
/* Global pooling over H and W: kind "avg" or "max"; [C, H, W] -> [C, 1, 1]. */
DN_NODISCARD dn_status dn_model_add_global_pool(dn_model *m, const char *kind);
/* Batch normalisation over channels (1d for [C] or [C, L], 2d for [C, H, W]); PyTorch's defaults are
 * momentum 0.1, eps 1e-5. */
DN_NODISCARD dn_status dn_model_add_batchnorm(dn_model *m, float momentum, float eps);
/* Inverted dropout with drop probability p in training (identity in evaluation); channels: drop whole
 * channels of images (Dropout2d). */
DN_NODISCARD dn_status dn_model_add_dropout(dn_model *m, float p, bool channels);
/* Token embedding as the first layer: ids [T] (floats holding integers below vocab) -> vectors [T, size];
 * torch.nn.Embedding (weights N(0, 1)). */
DN_NODISCARD dn_status dn_model_add_embedding(dn_model *m, int64_t vocab, int64_t size);
/* Recurrent layer over sequences [T, F]: kind "rnn" (tanh), "rnn_relu", "lstm" or "gru", with PyTorch's equations,
 * gate order and parameter names (layers.<i>.weight_ih_l<k>[_reverse], ...).  layers stacked, bidirectional,
 * dropout between layers in training.  return_sequences: output [T, dirs*H]; else the last layer's final state
 * [dirs*H].  stateful: the final state of a batch starts the next one (truncated BPTT: values only, no history). */
DN_NODISCARD dn_status dn_model_add_recurrent(dn_model *m, const char *kind, int64_t hidden, int layers,
                                              bool bidirectional, float dropout, bool return_sequences, bool stateful);
/* The character vocabulary of a text model (saved in checkpoints; size 0 if none). */
void dn_model_set_vocab(dn_model *m, const dn_vocab *v);
const dn_vocab *dn_model_vocab(const dn_model *m); /* the vocabulary set or loaded */
/* Forgets the carried state of stateful recurrent layers (start of an epoch, or of a new text). */
void dn_model_reset_state(dn_model *m);
/* Streaming inference (text generation): in evaluation mode every recurrent layer starts each forward call from
 * the state the previous call ended with, so a text is fed a step at a time.  Turning it on or off resets it. */
void dn_model_set_streaming(dn_model *m, bool on);
bool dn_model_can_stream(const dn_model *m); /* false when a recurrent layer is bidirectional (needs the future) */
/* The input normalisation a model was trained with (CSV normalize = 1): n per-feature means and deviations,
 * saved in checkpoints as "input.mean" and "input.std".  n 0 removes it. */
DN_NODISCARD dn_status dn_model_set_input_stats(dn_model *m, int64_t n, const float *mean, const float *std);
/* Its length (0: none) and arrays (owned by the model; either pointer may be NULL). */
int64_t dn_model_input_stats(const dn_model *m, const float **mean, const float **std);
/* Residual add: the previous layer's output plus layer `from`'s (negative: counted back, -1 the previous). */
DN_NODISCARD dn_status dn_model_add_shortcut(dn_model *m, int from);
/* Channel concatenation of earlier layers' outputs (negative indices count back), as Darknet's route. */
DN_NODISCARD dn_status dn_model_add_route(dn_model *m, int n, const int *layers);

/* Forward pass of a batch x [N, input shape...]; NULL on error (see dn_ctx_status). */
dn_tensor *dn_model_forward(dn_model *m, dn_ctx *ctx, dn_tensor *x);
/* Training mode (dropout active, batch statistics) or evaluation mode. */
void dn_model_set_training(dn_model *m, bool training);

int dn_model_layer_count(const dn_model *m); /* number of layers */
/* Shape of one input sample; returns its rank. */
int dn_model_input_shape(const dn_model *m, int64_t *shape);
/* Re-initialises every parameter as construction would with this seed (and reseeds dropout). */
DN_NODISCARD dn_status dn_model_reinit(dn_model *m, uint64_t seed);
/* Output shape of one sample after the model (rank in *ndim). */
void dn_model_output_shape(const dn_model *m, int *ndim, int64_t *shape);
size_t dn_model_param_count(const dn_model *m); /* number of parameters (floats) */
float *dn_model_params(dn_model *m);            /* all parameters, one flat buffer */
float *dn_model_grads(dn_model *m);             /* their gradients, in the same layout (dn_backward adds here) */
void dn_model_zero_grad(dn_model *m);           /* zeroes the gradients; call before each backward */
/* Named parameter tensors ("layers.0.weight"), in creation order. */
int dn_model_tensor_count(const dn_model *m);
const char *dn_model_tensor_name(const dn_model *m, int i); /* name of tensor i */
dn_tensor *dn_model_tensor(dn_model *m, int i);             /* tensor i (its data lies in the flat buffer) */
/* 1 for elements that weight decay / L1 / L2 apply to (weights), 0 for biases and activation parameters. */
const uint8_t *dn_model_decay_mask(const dn_model *m);
/* A text table of layers: name, output shape, parameters, FLOPs per sample (multiply-adds count 2);
 * totals at the end.  Returns the bytes written (like snprintf). */
size_t dn_model_summary(const dn_model *m, char *buf, size_t size);
/* Multiply-add FLOPs of one sample's forward pass. */
int64_t dn_model_flops(const dn_model *m);

/* ------------------------------------------------------------------ model files (.cfg) */

/* Training settings (defined below, with the trainer). */
typedef struct dn_train_config dn_train_config;
/* Builds a model from cfg text (Darknet-style sections; docs/cfg.md).  `filename` is used in messages
 * ("model.cfg:12: ...").  Training settings from [net] go to *train (may be NULL). */
DN_NODISCARD dn_status dn_model_from_cfg(const char *text, const char *filename, dn_model **model,
                                         dn_train_config *train);
/* The same from a file. */
DN_NODISCARD dn_status dn_model_load_cfg(const char *path, dn_model **model, dn_train_config *train);
/* The cfg text the model was built from (NULL when built from C). */
const char *dn_model_cfg_text(const dn_model *m);

/* ------------------------------------------------------------------ training */

/* The figure early stopping and restore_best watch: validation loss (lower is better) or accuracy. */
typedef enum dn_monitor { DN_MONITOR_VAL_LOSS = 0, DN_MONITOR_VAL_ACCURACY } dn_monitor;

/* Everything a cfg file's [net] and [data] sections set, with the defaults in the comments. */
struct dn_train_config {
    int epochs;             /* 10 */
    int64_t batch;          /* 64 */
    uint64_t seed;          /* 1: initialisation, shuffling, dropout */
    char loss[48];          /* "softmax_cross_entropy" (also mse_loss, l1_loss, huber_loss, bce_with_logits, ...) */
    float huber_delta;      /* 1 */
    dn_optim_config optim;  /* SGD lr 0.01 unless set */
    dn_schedule schedule;   /* constant unless set */
    float l1;               /* penalty l1 * sum|w| on weights; 0 */
    float l2;               /* penalty l2/2 * sum w^2 on weights (the seed's form); 0 */
    bool decay_bias;        /* apply L1/L2/weight decay to biases too; false */
    float clip_norm;        /* clip the global gradient norm to this; 0 = off */
    float clip_value;       /* clip each gradient to [-v, v]; 0 = off */
    float validation;       /* fraction of the training data held out; 0 = none (unless a set is given) */
    int patience;           /* early stopping: epochs without improvement; 0 = off */
    float min_delta;        /* smallest change that counts as improvement; 0 */
    dn_monitor monitor;     /* val_loss */
    bool restore_best;      /* restore the best weights when stopping early or at the end; true */
    int threads;            /* kernel threads while this trainer works (0: the process's, see dn_set_threads) */
    bool shuffle;           /* reshuffle the training data every epoch; true (false for stateful text models) */
    bool detect_anomaly;    /* report the first op that produces NaN/inf (forward or backward); false */
    /* [data] section: where `dendrite train` finds data when --data is not given */
    char data_format[16];   /* "mnist" (IDX files in a folder), "csv" or "text"; "mnist" */
    char data_train[256];   /* folder (mnist) or file (csv, text); "data/mnist" */
    char data_test[256];    /* csv, text: test file; "" none */
    int label_column;       /* csv: -1 (last) */
    int csv_header;         /* csv: -1 detect */
    bool normalize;         /* csv: standardise features with the training set's statistics */
};
void dn_train_defaults(dn_train_config *c); /* fills c with the defaults above */

/* Figures of one finished epoch. */
typedef struct dn_epoch_stats {
    int epoch;              /* 1-based */
    int epochs;             /* epochs planned */
    double train_loss;      /* mean loss over the epoch's batches */
    double train_accuracy;  /* NaN when the data has no classes */
    double val_loss;        /* NaN when there is no validation set */
    double val_accuracy;    /* NaN when there is no validation set */
    double lr;              /* learning rate of the epoch */
    double seconds;         /* time the epoch took */
    double samples_per_sec; /* training speed */
    bool improved;          /* the monitored metric improved (checkpoint-worthy) */
    bool stop;              /* early stopping triggered after this epoch */
    double comm_seconds;    /* distributed training: time spent waiting for gradient all-reduces (0 otherwise) */
    int64_t steps;          /* optimiser steps in the epoch */
} dn_epoch_stats;
/* Progress within an epoch: batch index, batch count, running loss. */
typedef void (*dn_batch_fn)(void *user, int epoch, int64_t batch, int64_t batches, double loss);

/* A training run in progress: model, optimiser, batcher and early-stopping state, all of which a checkpoint
 * saves so that a resumed run continues bit-identically. */
typedef struct dn_trainer dn_trainer;
/* train: the training data; val: a validation set, or NULL to hold out config->validation of train. */
DN_NODISCARD dn_status dn_trainer_new(dn_model *m, const dn_train_config *config, const dn_dataset *train,
                                      const dn_dataset *val, dn_trainer **out);
void dn_trainer_free(dn_trainer *t); /* NULL does nothing; the model and data sets are the caller's */
/* fn(user, ...) is called after every batch (progress bars); NULL for none. */
void dn_trainer_set_batch_callback(dn_trainer *t, dn_batch_fn fn, void *user);
/* Runs one epoch; *stats describes it.  Returns DN_ERR_NUMERIC (naming the op) if the loss diverges. */
DN_NODISCARD dn_status dn_trainer_epoch(dn_trainer *t, dn_epoch_stats *stats);
/* Epochs completed so far, and whether early stopping has ended the run. */
int dn_trainer_epochs_done(const dn_trainer *t);
bool dn_trainer_finished(const dn_trainer *t); /* all epochs done, or stopped early */
/* Puts the best weights back (if restore_best and a validation set); call when the run ends. */
void dn_trainer_restore_best(dn_trainer *t);
/* Checkpoints: parameters, optimiser state, cfg text and training state in one safetensors file, written to a
 * temporary file and renamed (a crash never leaves a broken file). */
DN_NODISCARD dn_status dn_trainer_save(const dn_trainer *t, const char *path);
/* Continues a run from dn_trainer_save's checkpoint, in a trainer built with the same model and config. */
DN_NODISCARD dn_status dn_trainer_resume(dn_trainer *t, const char *path);

/* What dn_evaluate measured: mean loss, accuracy (NaN without classes) and the number of samples. */
typedef struct dn_eval_result {
    double loss;     /* mean loss per sample */
    double accuracy; /* share of correct predictions (per step for sequences) */
    int64_t n;       /* samples evaluated */
} dn_eval_result;
/* Loss, accuracy (classification) and optional confusion matrix (n_classes^2 ints, row = truth) of a model
 * on a data set, in evaluation mode. */
DN_NODISCARD dn_status dn_evaluate(dn_model *m, const dn_train_config *config, const dn_dataset *d,
                                   dn_eval_result *r, int64_t *confusion);

/* Saves just the model: parameters and cfg text (a model built in C has no cfg; see dn_model_load_params). */
DN_NODISCARD dn_status dn_model_save(const dn_model *m, const char *path);
/* Loads a model from a checkpoint written by either save; train (may be NULL) receives the cfg's settings. */
DN_NODISCARD dn_status dn_model_load(const char *path, dn_model **model, dn_train_config *train);
/* The kinds of model file dn_model_open reads. */
typedef enum dn_model_file { DN_MODEL_CFG, DN_MODEL_CHECKPOINT, DN_MODEL_ONNX } dn_model_file;
/* What a model file is: a checkpoint (a safetensors file: an 8-byte little-endian header length, then '{'), an
 * ONNX file (by its .onnx name), else a cfg. */
dn_model_file dn_model_file_kind(const char *path);
/* Any model file, as dn_model_file_kind tells it: a cfg's freshly initialised model (dn_model_load_cfg), a
 * checkpoint's model (dn_model_load) or an imported ONNX model (dn_model_import_onnx); train may be NULL. */
DN_NODISCARD dn_status dn_model_open(const char *path, dn_model **model, dn_train_config *train);
/* Loads parameters by name into an existing model (for models built in C); shapes must match. */
DN_NODISCARD dn_status dn_model_load_params(dn_model *m, const char *path);

/* ------------------------------------------------------------------ runs */

/* A whole run, as `dendrite train/eval/predict/generate/report` do it: the model (from a cfg or a checkpoint),
 * the data its [data] section names (IDX folder, CSV or text file), the validation split, input normalisation
 * (statistics of the training part only, saved in the checkpoint), the trainer, evaluation, prediction and text
 * generation.  Every verb of the command goes through these functions, so a C program gets the same behaviour. */
typedef struct dn_run dn_run;

/* Settings that override the cfg's; dn_run_options_default fills "keep the cfg's" everywhere. */
typedef struct dn_run_options {
    const char *data;     /* training data: an MNIST folder or a CSV/text file instead of the cfg's [data]; NULL */
    int epochs;           /* -1: the cfg's */
    int64_t batch;        /* 0: the cfg's */
    double lr;            /* 0: the cfg's */
    int threads;          /* 0: the cfg's */
    int64_t seed;         /* -1: the cfg's; another seed re-initialises the model */
    bool detect_anomaly;  /* on when true (the cfg's otherwise) */
} dn_run_options;
void dn_run_options_default(dn_run_options *o); /* every field "keep the cfg's" */

/* Opens a run to train: builds the model from the cfg file, loads the training data (and the test set the cfg
 * names, or an MNIST folder's t10k files), splits off validation, normalises, and makes the trainer.
 * options may be NULL.  cfg_path may also name a checkpoint or an .onnx file (imported): fine-tuning, from its
 * layers, weights and settings, with a fresh optimiser (options.seed then only reseeds shuffling and dropout). */
DN_NODISCARD dn_status dn_run_open(const char *cfg_path, const dn_run_options *options, dn_run **out);
/* Opens a trained model from a checkpoint (with its normalisation and vocabulary) for evaluation, prediction
 * and generation; no data is read until asked for. */
DN_NODISCARD dn_status dn_run_load(const char *checkpoint, dn_run **out);
void dn_run_free(dn_run *r); /* the model, data and trainer; NULL does nothing */

dn_model *dn_run_model(dn_run *r);                      /* the run's model (owned by the run) */
const dn_train_config *dn_run_config(const dn_run *r);  /* its settings, overrides applied */
dn_trainer *dn_run_trainer(dn_run *r);                  /* the trainer (NULL for a run from dn_run_load) */
/* The data sets (owned by the run, NULL when absent): training part, validation part, test set. */
const dn_dataset *dn_run_train_set(const dn_run *r);
const dn_dataset *dn_run_val_set(const dn_run *r);      /* held out by the cfg's validation fraction */
const dn_dataset *dn_run_test_set(const dn_run *r);     /* the cfg's test set, or dn_run_load_test's */

/* Called after every epoch of dn_run_train; a non-zero status stops training and is returned. */
typedef dn_status (*dn_epoch_fn)(void *user, const dn_epoch_stats *stats);
/* Trains to the end (all epochs, or early stopping) with a callback after every epoch (fn may be NULL), then
 * restores the best epoch's parameters and buffers when restore_best applies.  *last (may be NULL): the last
 * epoch's figures. */
DN_NODISCARD dn_status dn_run_train(dn_run *r, dn_epoch_fn fn, void *user, dn_epoch_stats *last);
/* Continues training from a checkpoint saved by dn_run_save during an earlier run of the same cfg. */
DN_NODISCARD dn_status dn_run_resume(dn_run *r, const char *path);
/* Before training: the parameters and buffers from a checkpoint or an .onnx file (imported), matched by name and
 * shape, as the starting point of training; the optimiser starts fresh (`dendrite train CFG --init FILE`). */
DN_NODISCARD dn_status dn_run_init_weights(dn_run *r, const char *path);
/* A checkpoint: during training the whole trainer state (dn_trainer_save), else the model; both keep the
 * input normalisation and vocabulary.  In a distributed run (dn_run_set_distributed) only rank 0 writes; on the
 * others it does nothing and returns DN_OK. */
DN_NODISCARD dn_status dn_run_save(const dn_run *r, const char *path);

/* Loads a labelled test set as `dendrite eval --data` does: NULL the cfg's (its test file, or the t10k files of
 * its MNIST folder), a folder's t10k files, or a labelled CSV/text file; shaped for the model and normalised
 * with the run's statistics.  It replaces the run's test set. */
DN_NODISCARD dn_status dn_run_load_test(dn_run *r, const char *data);
/* What dn_run_evaluate measured; the confusion matrix belongs to the run (valid until the next call). */
typedef struct dn_run_eval {
    double loss;              /* mean loss per sample */
    double accuracy;          /* share correct (per step for sequences); NaN without classes */
    int64_t n;                /* samples */
    int n_classes;            /* rows and columns of confusion (0: none); at least the model's outputs */
    const int64_t *confusion; /* n_classes^2 counts, row = true class */
} dn_run_eval;
/* Loss, accuracy and confusion matrix on a data set (NULL: the run's test set), in evaluation mode. */
DN_NODISCARD dn_status dn_run_evaluate(dn_run *r, const dn_dataset *d, dn_run_eval *out);

/* Predictions for n samples: per sample one class, or one per time step for a model with a class per step. */
typedef struct dn_predictions {
    int64_t n;        /* samples */
    int64_t steps;    /* predictions per sample: 1, or T for a sequence model's [T, classes] output */
    int64_t outputs;  /* values per prediction: classes (probabilities), or the raw outputs */
    int64_t *classes; /* n * steps predicted classes: argmax, or a threshold for one output */
    float *values;    /* n * steps * outputs: softmax / sigmoid probabilities for those losses, else outputs */
} dn_predictions;
/* Predicts a file as `dendrite predict` does: IDX images or a CSV of features (no label column), shaped for
 * the model and normalised with the run's statistics.  Free *out with dn_predictions_free. */
DN_NODISCARD dn_status dn_run_predict(dn_run *r, const char *path, dn_predictions **out);
/* The same for samples already in memory (already normalised, as the run's own sets are). */
DN_NODISCARD dn_status dn_run_predict_set(dn_run *r, const dn_dataset *d, dn_predictions **out);
void dn_predictions_free(dn_predictions *p); /* NULL does nothing */

/* Samples `length` characters from a character model after the prime text into out (length + 1 bytes, ends
 * with NUL).  The recurrent state is carried from character to character, so each costs one time step
 * (bidirectional models recompute their window).  temperature > 0 (below 1 sharpens); seed fixes the draws.
 * *steps (may be NULL): time steps the model processed, prime included. */
DN_NODISCARD dn_status dn_run_generate(dn_run *r, const char *prime, int64_t length, double temperature,
                                       uint64_t seed, char *out, int64_t *steps);

/* Data-parallel training across processes (docs/distributed.md), an optional part of the build (make MPI=1, Open
 * MPI): `mpirun -np K dendrite train CFG` runs K copies that each take a shard of every global batch; gradients are
 * summed across them before the optimiser step, so the K processes train the one model a single process would.
 * Without MPI the functions below describe a group of one process and distributed training is never on.
 * dn_dist_init starts MPI (MPI_Init_thread) once per process, before any other dn_dist_ call; argc/argv may be NULL. */
DN_NODISCARD dn_status dn_dist_init(int *argc, char ***argv);
bool dn_dist_supported(void); /* whether this build has MPI (make MPI=1) */
int dn_dist_rank(void);       /* this process's rank in MPI_COMM_WORLD (0 before dn_dist_init or without MPI) */
int dn_dist_size(void);       /* the number of processes (1 before dn_dist_init or without MPI) */
/* Ends every process of the job with `code` (MPI_Abort): for a process that hit an error the others cannot know of;
 * without MPI (or a group of one) it returns and does nothing. */
void dn_dist_abort(int code);
void dn_dist_finalize(void); /* MPI_Finalize, once, at the end (nothing without MPI or before dn_dist_init) */
/* Makes the trainer (and its validation) work as one shard of a group of dn_dist_size() processes when `on` and
 * the group has more than one; every process of the group must make the same calls in the same order. */
void dn_trainer_set_distributed(dn_trainer *t, bool on);
/* The same for a run: its trainer, and dn_run_evaluate (each process evaluates a shard; the figures are summed). */
void dn_run_set_distributed(dn_run *r, bool on);
/* A cheap fingerprint (FNV-1a over the bits) of the model's parameters and buffers: equal on every process of a
 * distributed run (the trainer checks it after every epoch and fails with DN_ERR_STATE where they differ). */
uint64_t dn_model_fingerprint(const dn_model *m);

/* ONNX (docs/onnx.md), an optional part of the build (make ONNX=1); without it export and import fail with DN_ERR_STATE. */
#define DN_ONNX_OPSET 13 /* the opset dn_model_export_onnx writes when asked for 0 */
/* Writes the model as an ONNX file (inference form, dynamic batch axis) at opset 0 (= DN_ONNX_OPSET) or 13 to 17. */
DN_NODISCARD dn_status dn_model_export_onnx(const dn_model *m, const char *path, int opset);
/* Reads an ONNX file of feed-forward layers (as torch.onnx.export writes them) into a model with a cfg text. */
DN_NODISCARD dn_status dn_model_import_onnx(const char *path, dn_model **model, dn_train_config *train);
/* Whether this build can read and write ONNX files (built with make ONNX=1). */
bool dn_onnx_supported(void);

/* Threads used by kernels: n, or 0 for the default (DN_THREADS from the environment, else every core this
 * process may run on).  Results are bit-identical for any count.  Not while kernels are running. */
void dn_set_threads(int n);
int dn_get_threads(void); /* the number in use */

/* Instruction sets the kernels can use.  On x86-64 the order is portable < avx2 (with FMA) < avx512; on aarch64
 * portable < neon. */
typedef enum dn_isa { DN_ISA_PORTABLE, DN_ISA_AVX2, DN_ISA_AVX512, DN_ISA_NEON } dn_isa;
/* The set in force: the best this CPU has, capped by the environment variable DN_ISA (a name below) or dn_set_isa. */
dn_isa dn_get_isa(void);
/* Caps the kernels at isa (tests and benchmarks run each path this way); DN_ERR_ARG if the CPU cannot run it.
 * Results differ between sets only in rounding; not while kernels are running. */
DN_NODISCARD dn_status dn_set_isa(dn_isa isa);
/* Whether this CPU can run isa's code (portable: always). */
bool dn_isa_supported(dn_isa isa);
/* "portable", "avx2", "avx512", "neon" ("unknown" for other values). */
const char *dn_isa_name(dn_isa isa);
/* The dn_isa of such a name; DN_ERR_ARG for another. */
DN_NODISCARD dn_status dn_isa_from_name(const char *name, dn_isa *isa);

#ifdef DN_VISIBILITY_PUSHED
#pragma GCC visibility pop
#undef DN_VISIBILITY_PUSHED
#endif

#ifdef __cplusplus
}
#endif
#endif /* DENDRITE_H */
