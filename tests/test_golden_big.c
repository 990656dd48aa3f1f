/* Goldens at real sizes: the ops whose kernels change with size (linear, matmul, conv2d, lstm_seq, gru_seq, the
 * fused ReLU, batch norm folded at inference) against PyTorch, once per instruction set this CPU has.
 *
 * tools/golden_big.py writes tests/golden/big/<family>.txt; its docstring gives the format, the seeded generator
 * and why the checks catch kernel bugs.  In short: inputs are not stored but regenerated here from a splitmix64
 * stream per tensor (exact in float32 on both sides), and each output or gradient is checked through its row and
 * column projections on seeded weights (computed in double) and a few sampled elements.  Each family runs once per
 * dn_isa the CPU supports (dn_set_isa: avx512, avx2, portable, neon), so that every kernel variant meets PyTorch.
 * DN_GOLDEN_VERBOSE=1 prints the worst error per check, as a fraction of its tolerance. */
#include "test.h"

#include "../src/nn/model.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* The fixture files, one per family of cases (a missing one fails). */
static const char *const gb_families[] = {"linear", "matmul", "conv2d", "lstm_seq", "gru_seq", "bn_fold"};

#define GB_FLOOR_REL 1e-2 /* the floor rule of tools/make_goldens.py and tests/test_golden.c */
#define GB_FLOOR_ABS 1e-3
#define GB_NAME 64
#define GB_MAX_INPUTS 12
#define GB_MAX_NODES 4
#define GB_MAX_NODE_IN 8
#define GB_MAX_ATTRS 12
#define GB_MAX_SETS 12
#define GB_MAX_CHECKS 12
#define GB_MAX_NUMEL (1 << 24)
#define GB_MAX_FILE (4 << 20)

/* ------------------------------------------------------------------ the seeded generator (as golden_big.py) */

static uint64_t gb_fnv1a(const char *s)
{
    uint64_t h = 0xCBF29CE484222325u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3u;
    return h;
}

/* Output i of the splitmix64 stream seeded with s. */
static uint64_t gb_mix(uint64_t s, uint64_t i)
{
    uint64_t z = s + (i + 1) * 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1), a multiple of 2^-23 (exact in float). */
static float gb_uniform(uint64_t s, uint64_t i)
{
    return (float)((int64_t)(gb_mix(s, i) >> 40) - (1 << 23)) / 8388608.0f;
}

/* A projection weight: magnitude in [0.5, 1), random sign. */
static double gb_weight(uint64_t s, uint64_t i)
{
    const double u = gb_uniform(s, i);
    return 0.5 * u + (u < 0 ? -0.5 : 0.5);
}

static uint64_t gb_stream(const char *a, const char *b, const char *c)
{
    char name[3 * GB_NAME + 8];
    snprintf(name, sizeof name, "%s/%s%s", a, b, c);
    return gb_fnv1a(name);
}

typedef struct gb_fill {
    char kind[16]; /* uniform, positive, steps */
    double scale;  /* uniform: a power of two */
} gb_fill;

/* n values of the stream into out; the shape is needed by "steps" ([T, N]: 1 where t < T - n % 4). */
static void gb_fill_values(uint64_t s, const gb_fill *f, int ndim, const int64_t *shape, int64_t n, float *out)
{
    if (strcmp(f->kind, "steps") == 0) {
        const int64_t steps = shape[0], rows = ndim == 2 ? shape[1] : 1;
        for (int64_t t = 0; t < steps; t++)
            for (int64_t r = 0; r < rows; r++) out[t * rows + r] = t < steps - r % 4 ? 1.0f : 0.0f;
        return;
    }
    const bool positive = strcmp(f->kind, "positive") == 0;
    const float scale = (float)f->scale;
    for (int64_t i = 0; i < n; i++) {
        const float u = gb_uniform(s, (uint64_t)i);
        out[i] = positive ? fabsf(u) + 0.5f : u * scale;
    }
}

/* ------------------------------------------------------------------ the fixture */

typedef struct gb_input {
    char name[GB_NAME];
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    gb_fill fill;
    bool grad;
} gb_input;

typedef struct gb_node {
    char out[GB_NAME], op[GB_NAME];
    int n_in, n_attrs;
    char in[GB_MAX_NODE_IN][GB_NAME];
    char attr[GB_MAX_ATTRS][GB_NAME];
    double value[GB_MAX_ATTRS];
    int line;
} gb_node;

typedef struct gb_set {
    char name[GB_NAME];
    gb_fill fill;
} gb_set;

typedef struct gb_check {
    char target[GB_NAME]; /* "output" or "grad.<input>" */
    int ndim, line;
    int64_t shape[DN_MAX_DIMS], numel, rows, cols, n_samples;
    double tol, peak;
    double *row_proj, *col_proj;
    double *samples; /* 8 significant digits: within 5e-8 relative of the float64 reference */
} gb_check;

typedef struct gb_case {
    char name[GB_NAME];
    int line;
    int n_inputs, n_nodes, n_sets, n_checks;
    gb_input inputs[GB_MAX_INPUTS];
    gb_node nodes[GB_MAX_NODES];
    char *cfg; /* a model case: cfg text, parameters set by name */
    gb_set sets[GB_MAX_SETS];
    gb_check checks[GB_MAX_CHECKS];
} gb_case;

static void gb_case_free(gb_case *c)
{
    for (int i = 0; i < c->n_checks; i++) {
        free(c->checks[i].row_proj);
        free(c->checks[i].col_proj);
        free(c->checks[i].samples);
    }
    free(c->cfg);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------ reading it */

typedef struct gb_lexer {
    const char *path, *text;
    size_t pos;
    int line, tok_line;
    char tok[256];
    bool failed;
} gb_lexer;

static void gb_fail(gb_lexer *lx, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void gb_fail(gb_lexer *lx, const char *fmt, ...)
{
    if (lx->failed) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t_fail(lx->path, lx->tok_line, "%s", msg);
    lx->failed = true;
}

/* The next token ('#' comments skipped); false at the end or after a failure. */
static bool gb_next(gb_lexer *lx)
{
    if (lx->failed) return false;
    const char *s = lx->text;
    for (;;) {
        while (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\r' || s[lx->pos] == '\n')
            if (s[lx->pos++] == '\n') lx->line++;
        if (s[lx->pos] != '#') break;
        while (s[lx->pos] && s[lx->pos] != '\n') lx->pos++;
    }
    lx->tok_line = lx->line;
    size_t n = 0;
    while (s[lx->pos] && !strchr(" \t\r\n#", s[lx->pos])) {
        if (n + 1 >= sizeof lx->tok) {
            gb_fail(lx, "token longer than %zu characters", sizeof lx->tok - 1);
            return false;
        }
        lx->tok[n++] = s[lx->pos++];
    }
    lx->tok[n] = '\0';
    return n > 0;
}

static bool gb_word(gb_lexer *lx, const char *what, char *out, size_t size)
{
    if (!gb_next(lx)) {
        gb_fail(lx, "expected %s, got the end of the file", what);
        return false;
    }
    if (strlen(lx->tok) >= size) {
        gb_fail(lx, "%s '%s' is longer than %zu characters", what, lx->tok, size - 1);
        return false;
    }
    snprintf(out, size, "%s", lx->tok);
    return true;
}

static bool gb_expect(gb_lexer *lx, const char *word)
{
    char got[GB_NAME];
    if (!gb_word(lx, word, got, sizeof got)) return false;
    if (strcmp(got, word) != 0) gb_fail(lx, "expected '%s', got '%s'", word, got);
    return !lx->failed;
}

static bool gb_int(gb_lexer *lx, const char *what, int64_t lo, int64_t hi, int64_t *out)
{
    if (!gb_next(lx)) {
        gb_fail(lx, "expected %s, got the end of the file", what);
        return false;
    }
    char *end;
    errno = 0;
    long long v = strtoll(lx->tok, &end, 10);
    if (end == lx->tok || *end || errno || v < lo || v > hi) {
        gb_fail(lx, "expected %s (an integer in [%lld, %lld]), got '%s'", what, (long long)lo, (long long)hi, lx->tok);
        return false;
    }
    *out = v;
    return true;
}

static bool gb_number(gb_lexer *lx, const char *what, double *out)
{
    if (!gb_next(lx)) {
        gb_fail(lx, "expected %s, got the end of the file", what);
        return false;
    }
    char *end;
    double v = strtod(lx->tok, &end);
    if (end == lx->tok || *end || !isfinite(v)) {
        gb_fail(lx, "expected %s (a finite number), got '%s'", what, lx->tok);
        return false;
    }
    *out = v;
    return true;
}

/* "<ndim> <dims..>" */
static bool gb_shape(gb_lexer *lx, int *ndim, int64_t *shape, int64_t *numel)
{
    int64_t nd, d;
    if (!gb_int(lx, "a rank", 0, DN_MAX_DIMS, &nd)) return false;
    *ndim = (int)nd;
    *numel = 1;
    for (int i = 0; i < *ndim; i++) {
        if (!gb_int(lx, "a dimension", 1, GB_MAX_NUMEL, &d)) return false;
        shape[i] = d;
        *numel *= d;
        if (*numel > GB_MAX_NUMEL) {
            gb_fail(lx, "tensor has more than %d elements", GB_MAX_NUMEL);
            return false;
        }
    }
    return true;
}

/* "uniform <power of two>", "positive" or "steps" */
static bool gb_read_fill(gb_lexer *lx, gb_fill *f)
{
    if (!gb_word(lx, "a fill (uniform, positive, steps)", f->kind, sizeof f->kind)) return false;
    f->scale = 1;
    if (strcmp(f->kind, "uniform") == 0) {
        int e;
        if (!gb_number(lx, "a scale", &f->scale)) return false;
        if (!(f->scale > 0) || frexp(f->scale, &e) != 0.5) gb_fail(lx, "scale %g is not a power of two", f->scale);
    } else if (strcmp(f->kind, "positive") != 0 && strcmp(f->kind, "steps") != 0) {
        gb_fail(lx, "unknown fill '%s' (uniform, positive, steps)", f->kind);
    }
    return !lx->failed;
}

static bool gb_read_doubles(gb_lexer *lx, const char *what, int64_t n, double **out)
{
    *out = malloc((size_t)(n ? n : 1) * sizeof **out);
    if (!*out) {
        gb_fail(lx, "out of memory reading %s", what);
        return false;
    }
    for (int64_t i = 0; i < n; i++)
        if (!gb_number(lx, what, &(*out)[i])) return false;
    return true;
}

static bool gb_read_check(gb_lexer *lx, gb_check *k)
{
    k->line = lx->tok_line;
    if (!gb_word(lx, "a check target", k->target, sizeof k->target)) return false;
    if (!gb_shape(lx, &k->ndim, k->shape, &k->numel)) return false;
    if (!gb_expect(lx, "rows") || !gb_int(lx, "rows", 1, GB_MAX_NUMEL, &k->rows)) return false;
    if (!gb_expect(lx, "cols") || !gb_int(lx, "cols", 1, GB_MAX_NUMEL, &k->cols)) return false;
    if (k->rows * k->cols != k->numel) {
        gb_fail(lx, "rows %lld x cols %lld is not the tensor's %lld elements", (long long)k->rows, (long long)k->cols,
                (long long)k->numel);
        return false;
    }
    if (!gb_expect(lx, "tol") || !gb_number(lx, "a tolerance", &k->tol)) return false;
    if (!(k->tol > 0 && k->tol < 1e-2)) {
        gb_fail(lx, "tolerance %g is not in (0, 1e-2)", k->tol);
        return false;
    }
    if (!gb_expect(lx, "peak") || !gb_number(lx, "the peak", &k->peak)) return false;
    if (!gb_expect(lx, "samples") || !gb_int(lx, "a sample count", 0, k->numel, &k->n_samples)) return false;
    return gb_read_doubles(lx, "a row projection", k->rows, &k->row_proj) &&
           gb_read_doubles(lx, "a column projection", k->cols, &k->col_proj) &&
           gb_read_doubles(lx, "a sampled element", k->n_samples, &k->samples);
}

/* "case <name> ... end" (the "case" token consumed). */
static bool gb_read_case(gb_lexer *lx, gb_case *c)
{
    c->line = lx->tok_line;
    if (!gb_word(lx, "a case name", c->name, sizeof c->name)) return false;
    char word[GB_NAME];
    while (gb_word(lx, "input, node, model, set, check or end", word, sizeof word)) {
        if (strcmp(word, "end") == 0) break;
        if (strcmp(word, "input") == 0) {
            if (c->n_inputs == GB_MAX_INPUTS) gb_fail(lx, "more than %d inputs", GB_MAX_INPUTS);
            gb_input *in = &c->inputs[c->n_inputs++];
            int64_t numel, grad;
            if (!gb_word(lx, "an input name", in->name, sizeof in->name) ||
                !gb_shape(lx, &in->ndim, in->shape, &numel) || !gb_read_fill(lx, &in->fill) ||
                !gb_int(lx, "requires_grad (0 or 1)", 0, 1, &grad))
                return false;
            in->grad = grad == 1;
            if (strcmp(in->fill.kind, "steps") == 0 && in->ndim != 2) gb_fail(lx, "a steps mask is [T, N]");
        } else if (strcmp(word, "node") == 0) {
            if (c->n_nodes == GB_MAX_NODES) gb_fail(lx, "more than %d nodes", GB_MAX_NODES);
            gb_node *n = &c->nodes[c->n_nodes++];
            n->line = lx->tok_line;
            if (!gb_word(lx, "the node's output name", n->out, sizeof n->out) ||
                !gb_word(lx, "an op name", n->op, sizeof n->op))
                return false;
            /* input names, then name=value attributes, up to the end of the line */
            while (!lx->failed) {
                size_t save = lx->pos;
                int save_line = lx->line;
                if (!gb_next(lx) || lx->tok_line != n->line) {
                    lx->pos = save;
                    lx->line = save_line;
                    break;
                }
                char *eq = strchr(lx->tok, '=');
                if (!eq) {
                    if (n->n_attrs || n->n_in == GB_MAX_NODE_IN || strlen(lx->tok) >= GB_NAME) {
                        gb_fail(lx, "node %s: unexpected '%s'", n->out, lx->tok);
                        break;
                    }
                    snprintf(n->in[n->n_in++], GB_NAME, "%s", lx->tok);
                    continue;
                }
                char *end;
                if (n->n_attrs == GB_MAX_ATTRS || eq == lx->tok || (size_t)(eq - lx->tok) >= GB_NAME) {
                    gb_fail(lx, "node %s: bad attribute '%s'", n->out, lx->tok);
                    break;
                }
                snprintf(n->attr[n->n_attrs], GB_NAME, "%.*s", (int)(eq - lx->tok), lx->tok);
                n->value[n->n_attrs] = strtod(eq + 1, &end);
                if (end == eq + 1 || *end) gb_fail(lx, "node %s: attribute '%s' has no number", n->out, lx->tok);
                n->n_attrs++;
            }
        } else if (strcmp(word, "model") == 0) {
            int64_t lines;
            if (c->cfg || !gb_int(lx, "a number of cfg lines", 1, 1000, &lines)) {
                gb_fail(lx, "a second model, or no line count");
                return false;
            }
            /* the cfg: the next `lines` lines, verbatim */
            while (lx->text[lx->pos] && lx->text[lx->pos] != '\n') lx->pos++;
            if (lx->text[lx->pos]) lx->pos++, lx->line++;
            const size_t start = lx->pos;
            for (int64_t i = 0; i < lines && lx->text[lx->pos]; i++) {
                while (lx->text[lx->pos] && lx->text[lx->pos] != '\n') lx->pos++;
                if (lx->text[lx->pos]) lx->pos++, lx->line++;
            }
            c->cfg = malloc(lx->pos - start + 1);
            if (!c->cfg) gb_fail(lx, "out of memory");
            else {
                memcpy(c->cfg, lx->text + start, lx->pos - start);
                c->cfg[lx->pos - start] = '\0';
            }
        } else if (strcmp(word, "set") == 0) {
            if (c->n_sets == GB_MAX_SETS) gb_fail(lx, "more than %d sets", GB_MAX_SETS);
            gb_set *s = &c->sets[c->n_sets++];
            if (!gb_word(lx, "a parameter name", s->name, sizeof s->name) || !gb_read_fill(lx, &s->fill)) return false;
            if (strcmp(s->fill.kind, "steps") == 0) gb_fail(lx, "set %s: a steps mask is for inputs only", s->name);
        } else if (strcmp(word, "check") == 0) {
            if (c->n_checks == GB_MAX_CHECKS) gb_fail(lx, "more than %d checks", GB_MAX_CHECKS);
            else if (!gb_read_check(lx, &c->checks[c->n_checks++])) return false;
        } else {
            gb_fail(lx, "expected input, node, model, set, check or end, got '%s'", word);
        }
        if (lx->failed) return false;
    }
    if (!lx->failed && (c->n_nodes > 0) == (c->cfg != NULL))
        gb_fail(lx, "case %s: give nodes or a model (one of them)", c->name);
    if (!lx->failed && !c->n_checks) gb_fail(lx, "case %s has no checks", c->name);
    return !lx->failed;
}

/* ------------------------------------------------------------------ comparing */

/* The worst ratio of error to allowance over the check's projections and samples (<= 1 passes; NaN -> INFINITY),
 * reporting the first few failures. */
static double gb_compare(const char *path, const gb_case *c, const gb_check *k, const float *got, const char *isa,
                         bool quiet)
{
    const int64_t R = k->rows, C = k->cols;
    const double floor = fmax(GB_FLOOR_REL * k->peak, GB_FLOOR_ABS), peak = k->peak;
    const double scale = k->tol / (1 - k->tol);
    double *v = malloc((size_t)C * sizeof *v), *w = malloc((size_t)R * sizeof *w);
    double *colp = calloc((size_t)C, sizeof *colp), *cola = calloc((size_t)C, sizeof *cola);
    if (!v || !w || !colp || !cola) {
        t_fail(path, k->line, "out of memory");
        free(v), free(w), free(colp), free(cola);
        return INFINITY;
    }
    const uint64_t sv = gb_stream(c->name, k->target, "#v"), sw = gb_stream(c->name, k->target, "#w");
    for (int64_t j = 0; j < C; j++) v[j] = gb_weight(sv, (uint64_t)j);
    for (int64_t i = 0; i < R; i++) w[i] = gb_weight(sw, (uint64_t)i);
    double worst = 0;
    int reported = 0;
#define GB_JUDGE(what, idx, g, e, allowed)                                                                        \
    do {                                                                                                          \
        double r_ = fabs((g) - (e)) / (allowed);                                                                  \
        if (!(r_ <= 1.0)) {                                                                                       \
            if (!quiet && reported++ < 3)                                                                         \
                t_fail(path, k->line, "%s [%s] %s: %s %lld: got %.9g, expected %.9g (error %.3g, allowed %.3g)",  \
                       c->name, isa, k->target, what, (long long)(idx), (double)(g), (double)(e),                 \
                       fabs((g) - (e)), (double)(allowed));                                                       \
            r_ = isnan(r_) ? INFINITY : r_;                                                                       \
        }                                                                                                         \
        if (r_ > worst) worst = r_;                                                                               \
    } while (0)
    for (int64_t i = 0; i < R; i++) {
        double p = 0, a = 0;
        for (int64_t j = 0; j < C; j++) {
            const double g = got[i * C + j], m = fmax(fmin(fabs(g), peak), floor); /* fmin(NaN, peak) = peak */
            p += v[j] * g;
            a += fabs(v[j]) * m;
            colp[j] += w[i] * g;
            cola[j] += fabs(w[i]) * m;
        }
        GB_JUDGE("row projection", i, p, k->row_proj[i], scale * a);
    }
    for (int64_t j = 0; j < C; j++) GB_JUDGE("column projection", j, colp[j], k->col_proj[j], scale * cola[j]);
    const uint64_t ss = gb_stream(c->name, k->target, "#s");
    for (int64_t s = 0; s < k->n_samples; s++) {
        const int64_t at = (int64_t)(((gb_mix(ss, (uint64_t)s) >> 32) * (uint64_t)k->numel) >> 32);
        const double e = k->samples[s];
        GB_JUDGE("element", at, (double)got[at], e, k->tol * fmax(fabs(e), floor));
    }
#undef GB_JUDGE
    if (!quiet && reported > 3)
        t_fail(path, k->line, "%s [%s] %s: %d checks out of tolerance in all", c->name, isa, k->target, reported);
    free(v), free(w), free(colp), free(cola);
    return worst;
}

/* ------------------------------------------------------------------ running a case */

typedef struct gb_result {
    double worst[GB_MAX_CHECKS];
    double tampered; /* self-test: the smallest ratio over the tampered copies of the output (see below) */
} gb_result;

/* The self-test (golden_big/catches_one_wrong_element) sets this: the output is then also compared after one
 * element is replaced by its neighbour in the row, at GB_TAMPERED seeded places in turn, each of which must fail. */
static bool gb_tamper;
#define GB_TAMPERED 16

/* The check's tensor: the output, or the gradient of a named input (zeros if none reached it). */
static const float *gb_target(const gb_check *k, dn_tensor *y, const gb_case *c, dn_tensor *const *ins, float *buf)
{
    if (strcmp(k->target, "output") == 0) {
        dn_tensor_read(y, buf);
        return buf;
    }
    for (int i = 0; i < c->n_inputs; i++)
        if (strncmp(k->target, "grad.", 5) == 0 && strcmp(k->target + 5, c->inputs[i].name) == 0) {
            const float *g = dn_tensor_grad(ins[i]);
            if (g) return g;
            memset(buf, 0, (size_t)k->numel * sizeof(float));
            return buf;
        }
    return NULL;
}

static bool gb_same_shape(const dn_tensor *t, const gb_check *k)
{
    if (dn_tensor_ndim(t) != k->ndim) return false;
    for (int i = 0; i < k->ndim; i++)
        if (dn_tensor_dim(t, i) != k->shape[i]) return false;
    return true;
}

/* Builds the case's inputs, runs its nodes (or model), backward if any input wants a gradient, and compares every
 * check; res gets the worst ratio per check. */
static void gb_run_case(const char *path, const gb_case *c, const char *isa, gb_result *res)
{
    for (int i = 0; i < c->n_checks; i++) res->worst[i] = INFINITY;
    res->tampered = 0;
    dn_ctx *ctx = dn_ctx_new();
    dn_model *m = NULL;
    dn_tensor *ins[GB_MAX_INPUTS] = {0}, *y = NULL;
    float *buf = NULL, *gy = NULL;
    bool any_grad = false;
    CHECK_MSG(ctx, "dn_ctx_new: %s", dn_last_error());
    for (int i = 0; ctx && i < c->n_inputs; i++) {
        const gb_input *in = &c->inputs[i];
        dn_status s = dn_tensor_new(ctx, in->ndim, in->shape, &ins[i]);
        if (!s) {
            gb_fill_values(gb_stream(c->name, in->name, ""), &in->fill, in->ndim, in->shape, dn_tensor_numel(ins[i]),
                           dn_tensor_data(ins[i]));
            if (in->grad) s = dn_tensor_set_requires_grad(ins[i], true);
        }
        if (s) {
            t_fail(path, c->line, "%s: input %s: %s", c->name, in->name, dn_last_error());
            goto done;
        }
        any_grad |= in->grad;
    }
    if (!ctx) goto done;
    if (c->cfg) {
        /* batch norm folding: evaluation mode, no tape; parameters and running statistics set by name */
        if (dn_model_from_cfg(c->cfg, c->name, &m, NULL) != DN_OK) {
            t_fail(path, c->line, "%s: model: %s", c->name, dn_last_error());
            goto done;
        }
        for (int k = 0; k < c->n_sets; k++) {
            dn_tensor *t = NULL;
            for (int i = 0; !t && i < dn_model_tensor_count(m); i++)
                if (strcmp(dn_model_tensor_name(m, i), c->sets[k].name) == 0) t = dn_model_tensor(m, i);
            for (int i = 0; !t && i < m->n_buffers; i++)
                if (strcmp(m->buffers[i].name, c->sets[k].name) == 0) t = &m->buffers[i].t;
            if (!t) {
                t_fail(path, c->line, "%s: the model has no tensor or buffer '%s'", c->name, c->sets[k].name);
                goto done;
            }
            gb_fill_values(gb_stream(c->name, c->sets[k].name, ""), &c->sets[k].fill, dn_tensor_ndim(t), NULL,
                           dn_tensor_numel(t), dn_tensor_data(t));
        }
        dn_model_set_training(m, false);
        dn_ctx_set_grad(ctx, false);
        y = c->n_inputs ? dn_model_forward(m, ctx, ins[0]) : NULL;
        any_grad = false;
    } else {
        dn_tensor *env[GB_MAX_INPUTS + GB_MAX_NODES];
        const char *names[GB_MAX_INPUTS + GB_MAX_NODES];
        int n_env = 0;
        for (int i = 0; i < c->n_inputs; i++) env[n_env] = ins[i], names[n_env++] = c->inputs[i].name;
        for (int k = 0; k < c->n_nodes; k++) {
            const gb_node *n = &c->nodes[k];
            const dn_op *op = dn_op_find(n->op);
            if (!op) {
                t_fail(path, n->line, "%s: no op '%s' in the registry", c->name, n->op);
                goto done;
            }
            double attrs[DN_MAX_ATTRS];
            for (int a = 0; a < dn_op_attr_count(op); a++) attrs[a] = dn_op_attr_default(op, a);
            for (int a = 0; a < n->n_attrs; a++) {
                const int idx = dn_op_attr_index(op, n->attr[a]);
                if (idx < 0) {
                    t_fail(path, n->line, "%s: op %s has no attribute '%s'", c->name, n->op, n->attr[a]);
                    goto done;
                }
                attrs[idx] = n->value[a];
            }
            dn_tensor *args[GB_MAX_NODE_IN];
            for (int a = 0; a < n->n_in; a++) {
                args[a] = NULL;
                for (int e = 0; e < n_env; e++)
                    if (strcmp(names[e], n->in[a]) == 0) args[a] = env[e];
                if (!args[a]) {
                    t_fail(path, n->line, "%s: node %s reads '%s', which is not defined before it", c->name, n->out,
                           n->in[a]);
                    goto done;
                }
            }
            y = dn_op_apply(ctx, op, n->n_in, args, attrs);
            if (!y) break;
            env[n_env] = y, names[n_env++] = n->out;
        }
    }
    if (!y) {
        t_fail(path, c->line, "%s: forward failed: %s: %s", c->name, dn_status_name(dn_ctx_status(ctx)),
               dn_last_error());
        goto done;
    }
    const int64_t ny = dn_tensor_numel(y);
    if (any_grad) {
        gy = malloc((size_t)ny * sizeof *gy);
        if (!gy) goto done;
        const gb_fill unit = {"uniform", 1.0};
        gb_fill_values(gb_stream(c->name, "grad_output", ""), &unit, 0, NULL, ny, gy);
        dn_status s = dn_backward_with(ctx, y, gy);
        if (s) {
            t_fail(path, c->line, "%s: backward failed: %s: %s", c->name, dn_status_name(s), dn_last_error());
            goto done;
        }
    }
    for (int k = 0; k < c->n_checks; k++) {
        const gb_check *ck = &c->checks[k];
        float *tmp = realloc(buf, (size_t)ck->numel * sizeof *tmp);
        if (!tmp) goto done;
        buf = tmp;
        int idx = -1;
        for (int i = 0; i < c->n_inputs; i++)
            if (strncmp(ck->target, "grad.", 5) == 0 && strcmp(ck->target + 5, c->inputs[i].name) == 0) idx = i;
        const dn_tensor *shape_of = idx >= 0 ? ins[idx] : y;
        if (strcmp(ck->target, "output") != 0 && (idx < 0 || !c->inputs[idx].grad)) {
            t_fail(path, ck->line, "%s: check %s names no input that takes a gradient", c->name, ck->target);
            continue;
        }
        if (!gb_same_shape(shape_of, ck)) {
            t_fail(path, ck->line, "%s: %s has %lld elements in a shape other than the fixture's", c->name,
                   ck->target, (long long)dn_tensor_numel(shape_of));
            continue;
        }
        const float *got = gb_target(ck, y, c, ins, buf);
        res->worst[k] = gb_compare(path, c, ck, got, isa, false);
        if (gb_tamper && strcmp(ck->target, "output") == 0) {
            float *bad = malloc((size_t)ck->numel * sizeof *bad);
            res->tampered = bad ? INFINITY : 0;
            for (uint64_t t = 0; bad && t < GB_TAMPERED; t++) {
                memcpy(bad, got, (size_t)ck->numel * sizeof *bad);
                int64_t at = (int64_t)(((gb_mix(gb_fnv1a("tamper"), t) >> 32) * (uint64_t)ck->numel) >> 32);
                at -= at % ck->cols == ck->cols - 1; /* a neighbour in the same row */
                bad[at] = bad[at + 1];
                const double r = gb_compare(path, c, ck, bad, isa, true);
                if (!(r >= res->tampered)) res->tampered = r;
            }
            free(bad);
        }
    }
    if (m) {
        /* the fold really ran: with the tape on (which never folds) the output differs in some bit */
        float *folded = malloc((size_t)ny * sizeof *folded), *plain = malloc((size_t)ny * sizeof *plain);
        dn_ctx_set_grad(ctx, true);
        dn_tensor *y2 = folded && plain ? dn_model_forward(m, ctx, ins[0]) : NULL;
        if (!y2 || dn_tensor_numel(y2) != ny) {
            t_fail(path, c->line, "%s: forward with the tape on failed: %s", c->name, dn_last_error());
        } else {
            dn_tensor_read(y, folded);
            dn_tensor_read(y2, plain);
            CHECK_MSG(memcmp(folded, plain, (size_t)ny * sizeof *plain) != 0,
                      "%s [%s]: the output equals the unfolded model's bit for bit: was the batch norm folded?",
                      c->name, isa);
        }
        free(folded);
        free(plain);
    }
done:
    free(buf);
    free(gy);
    dn_model_free(m);
    dn_ctx_free(ctx);
}

/* ------------------------------------------------------------------ one test per family and instruction set */

static char *gb_read_file(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    *size = -1;
    if (!f) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && n <= GB_MAX_FILE && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    *size = n;
    return buf;
}

static const char *current_family;
static dn_isa current_isa;

static void golden_big_family(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/big/%s.txt", t_golden_dir(), current_family);
    const char *isa = dn_isa_name(current_isa);
    long size;
    char *text = gb_read_file(path, &size);
    if (!text) {
        t_fail(path, 1, "cannot read the fixture (regenerate: /usr/bin/python3 tools/golden_big.py)");
        return;
    }
    gb_lexer lx = {.path = path, .text = text, .line = 1};
    if ((long)strlen(text) != size) gb_fail(&lx, "file contains a NUL byte");
    int64_t version;
    if (!lx.failed && gb_expect(&lx, "golden_big")) gb_int(&lx, "the format version", 1, 1, &version);
    const dn_isa saved = dn_get_isa();
    const clock_t t0 = clock();
    CHECK_OK(dn_set_isa(current_isa));
    const char *verbose = getenv("DN_GOLDEN_VERBOSE");
    int n_cases = 0;
    double family_worst = 0;
    gb_case *c = calloc(1, sizeof *c);
    CHECK(c != NULL);
    while (c && !lx.failed && gb_next(&lx)) {
        if (strcmp(lx.tok, "case") != 0) {
            gb_fail(&lx, "expected 'case' or the end of the file, got '%s'", lx.tok);
            break;
        }
        if (gb_read_case(&lx, c)) {
            gb_result res;
            gb_run_case(path, c, isa, &res);
            for (int k = 0; k < c->n_checks; k++) {
                if (verbose && *verbose && *verbose != '0')
                    printf("    golden_big/%s/%s [%s] %s: tol %g, worst %.3g of tol\n", current_family, c->name, isa,
                           c->checks[k].target, c->checks[k].tol, res.worst[k]);
                if (res.worst[k] > family_worst) family_worst = res.worst[k];
            }
            n_cases++;
        }
        gb_case_free(c);
    }
    if (!lx.failed && n_cases == 0) gb_fail(&lx, "fixture has no cases");
    if (verbose && *verbose && *verbose != '0')
        printf("    golden_big/%s [%s]: %d case(s), worst %.3g of tol, %.2f s of CPU time\n", current_family, isa,
               n_cases, family_worst, (double)(clock() - t0) / CLOCKS_PER_SEC);
    CHECK_OK(dn_set_isa(saved));
    free(c);
    free(text);
}

/* The checks can fail: the first linear case (64x784 -> 512) at the best instruction set passes, and each of 16
 * copies of its output with one element replaced by its row neighbour (a plainly wrong element, as an index off
 * by one gives) fails. */
static void golden_big_catches_one_wrong_element(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/big/linear.txt", t_golden_dir());
    long size;
    char *text = gb_read_file(path, &size);
    if (!text) {
        t_fail(path, 1, "cannot read the fixture");
        return;
    }
    gb_lexer lx = {.path = path, .text = text, .line = 1};
    int64_t version;
    gb_case *c = calloc(1, sizeof *c);
    CHECK(c != NULL);
    if (c && gb_expect(&lx, "golden_big") && gb_int(&lx, "the format version", 1, 1, &version) &&
        gb_expect(&lx, "case") && gb_read_case(&lx, c)) {
        gb_result res;
        gb_tamper = true;
        gb_run_case(path, c, dn_isa_name(dn_get_isa()), &res);
        gb_tamper = false;
        CHECK_MSG(res.worst[0] <= 1, "%s: the untouched output fails (%g of tol)", c->name, res.worst[0]);
        CHECK_MSG(res.tampered > 1, "%s: an output with one wrong element passes (%g of tol)", c->name, res.tampered);
        const char *verbose = getenv("DN_GOLDEN_VERBOSE");
        if (verbose && *verbose && *verbose != '0')
            printf("    golden_big: one wrong element: at least %.3g of tol (untouched: %.3g)\n", res.tampered,
                   res.worst[0]);
    }
    if (c) gb_case_free(c);
    free(c);
    free(text);
}

void suite_golden_big(void)
{
    RUN(golden_big_catches_one_wrong_element);
    static char name[128];
    static const dn_isa isas[] = {DN_ISA_AVX512, DN_ISA_AVX2, DN_ISA_PORTABLE, DN_ISA_NEON};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!dn_isa_supported(isas[i])) continue;
        for (size_t f = 0; f < sizeof gb_families / sizeof gb_families[0]; f++) {
            current_family = gb_families[f];
            current_isa = isas[i];
            snprintf(name, sizeof name, "golden_big/%s/%s", current_family, dn_isa_name(isas[i]));
            t_run(name, golden_big_family);
        }
    }
}
