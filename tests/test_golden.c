/* Golden tests: every op in the registry against PyTorch's forward and backward values.
 *
 * tools/make_goldens.py writes tests/golden/<op>.txt (format described at the top of that script): cases of
 * float32 inputs, attributes by name, the expected output, an upstream gradient and the expected input
 * gradients, all computed by torch in float64; for an op whose forward writes into an input (batch_norm's running
 * statistics), optional `updated` blocks give that input's values after forward.  This file walks the registry, so an op added later is
 * covered without touching this file, and an op without a fixture fails.
 *
 * A malformed fixture is a test failure that names file:line, never a crash: the parser checks every token,
 * bounds every size, and stops at the first problem. */
#include "test.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

/* An element passes when
 *     |got - expected| <= tol * max(|expected|, FLOOR_REL * max|expected over the tensor|, FLOOR_ABS).
 * Relative to the element where it is large.  But float32 rounding is relative to the numbers an element
 * was computed from, so an element that lands near zero by cancellation (a sum, a dot product, softmax's
 * g - <g, y>) is judged against 1% of its tensor's largest value; and FLOOR_ABS stops all-tiny tensors (a
 * saturated sigmoid's gradient, ~1e-9) from being held to better than 1e-3 * tol absolute.
 * tools/make_goldens.py applies the same rule to torch's own float32 results as a self-check. */
#define GOLDEN_FLOOR_REL 1e-2
#define GOLDEN_FLOOR_ABS 1e-3

#define G_MAX_FILE (4 << 20)    /* fixtures are a few KB; refuse anything absurd */
#define G_MAX_NUMEL (1 << 20)
#define G_MAX_TOKEN 128
#define G_MAX_FIXTURE_ATTRS 16  /* more than any op has, so a surplus name is reported, not truncated */

/* ------------------------------------------------------------------ the fixture reader */

typedef struct g_lexer {
    const char *path;
    const char *text;
    size_t pos;
    int line;     /* line of the read position */
    int tok_line; /* line of the last token returned */
    char tok[G_MAX_TOKEN];
    bool failed;  /* a parse error was reported; stop */
} g_lexer;

#if defined(__GNUC__) || defined(__clang__)
#define G_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define G_PRINTF(a, b)
#endif

/* Reports a parse error at path:line; only the first one, since later ones are its echoes. */
static void g_fail_at(g_lexer *lx, int line, const char *fmt, ...) G_PRINTF(3, 4);

static void g_fail_at(g_lexer *lx, int line, const char *fmt, ...)
{
    if (lx->failed) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t_fail(lx->path, line, "%s", msg);
    lx->failed = true;
}

/* The next whitespace-separated token, skipping '#' comments; false at the end of the text. */
static bool g_next(g_lexer *lx)
{
    const char *s = lx->text;
    for (;;) {
        while (s[lx->pos] == ' ' || s[lx->pos] == '\t' || s[lx->pos] == '\r' || s[lx->pos] == '\n') {
            if (s[lx->pos] == '\n') lx->line++;
            lx->pos++;
        }
        if (s[lx->pos] != '#') break;
        while (s[lx->pos] && s[lx->pos] != '\n') lx->pos++;
    }
    lx->tok_line = lx->line;
    if (!s[lx->pos]) {
        lx->tok[0] = '\0';
        return false;
    }
    size_t n = 0;
    while (s[lx->pos] && s[lx->pos] != ' ' && s[lx->pos] != '\t' && s[lx->pos] != '\r' && s[lx->pos] != '\n' &&
           s[lx->pos] != '#') {
        if (n + 1 >= sizeof lx->tok) {
            g_fail_at(lx, lx->tok_line, "token longer than %d characters", G_MAX_TOKEN - 1);
            lx->tok[0] = '\0';
            return false;
        }
        lx->tok[n++] = s[lx->pos++];
    }
    lx->tok[n] = '\0';
    return true;
}

/* The next token without consuming it ("" at the end). */
static const char *g_peek(g_lexer *lx, char *buf, size_t size)
{
    g_lexer save = *lx;
    if (!g_next(lx)) lx->tok[0] = '\0';
    snprintf(buf, size, "%s", lx->tok);
    bool failed = lx->failed;
    *lx = save;
    lx->failed = failed;
    return buf;
}

static bool g_expect(g_lexer *lx, const char *word)
{
    if (!g_next(lx)) {
        if (!lx->failed) g_fail_at(lx, lx->tok_line, "expected '%s', got the end of the file", word);
        return false;
    }
    if (strcmp(lx->tok, word) != 0) {
        g_fail_at(lx, lx->tok_line, "expected '%s', got '%s'", word, lx->tok);
        return false;
    }
    return true;
}

static bool g_int(g_lexer *lx, const char *what, long lo, long hi, long *out)
{
    if (!g_next(lx)) {
        if (!lx->failed) g_fail_at(lx, lx->tok_line, "expected %s, got the end of the file", what);
        return false;
    }
    char *end;
    errno = 0;
    long v = strtol(lx->tok, &end, 10);
    if (end == lx->tok || *end || errno || v < lo || v > hi) {
        g_fail_at(lx, lx->tok_line, "expected %s (an integer in [%ld, %ld]), got '%s'", what, lo, hi, lx->tok);
        return false;
    }
    *out = v;
    return true;
}

static bool g_double(g_lexer *lx, const char *what, const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end) {
        g_fail_at(lx, lx->tok_line, "expected %s (a number), got '%s'", what, text);
        return false;
    }
    *out = v;
    return true;
}

/* A tensor as the fixture gives it: shape and row-major values. */
typedef struct g_tensor {
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    int64_t numel;
    float *v;
} g_tensor;

/* "<ndim> <d0> .. <dk>" */
static bool g_shape(g_lexer *lx, g_tensor *t)
{
    long nd, d;
    if (!g_int(lx, "a rank", 0, DN_MAX_DIMS, &nd)) return false;
    t->ndim = (int)nd;
    t->numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (!g_int(lx, "a dimension", 0, G_MAX_NUMEL, &d)) return false;
        t->shape[i] = d;
        t->numel *= d;
        if (t->numel > G_MAX_NUMEL) {
            g_fail_at(lx, lx->tok_line, "tensor has more than %d elements", G_MAX_NUMEL);
            return false;
        }
    }
    return true;
}

/* numel values after the header line */
static bool g_values(g_lexer *lx, g_tensor *t, const char *what)
{
    t->v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!t->v) {
        g_fail_at(lx, lx->tok_line, "out of memory reading %s", what);
        return false;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        if (!g_next(lx)) {
            if (!lx->failed)
                g_fail_at(lx, lx->tok_line, "%s: expected %lld values, the file ends after %lld", what,
                          (long long)t->numel, (long long)i);
            return false;
        }
        char *end;
        float v = strtof(lx->tok, &end); /* strtof, not strtod: %.9g text rounds straight to the float */
        if (end == lx->tok || *end) {
            g_fail_at(lx, lx->tok_line, "%s: value %lld of %lld is not a number: '%s'", what, (long long)i + 1,
                      (long long)t->numel, lx->tok);
            return false;
        }
        t->v[i] = v;
    }
    return true;
}

static bool same_shape(const g_tensor *a, const g_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static const char *shape_text(const g_tensor *t, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* One case of a fixture. */
typedef struct g_case {
    int line; /* of "case" */
    char attr_text[256];
    int n_attrs;
    char attr_name[G_MAX_FIXTURE_ATTRS][G_MAX_TOKEN];
    double attr_value[G_MAX_FIXTURE_ATTRS];
    int n_in;
    g_tensor in[DN_MAX_INPUTS];
    bool requires_grad[DN_MAX_INPUTS];
    g_tensor out, grad_out;
    bool has_grad[DN_MAX_INPUTS];
    g_tensor grad_in[DN_MAX_INPUTS];
    bool has_updated[DN_MAX_INPUTS]; /* the input's values after forward are given (an in-place update) */
    g_tensor updated[DN_MAX_INPUTS];
} g_case;

static void g_case_free(g_case *c)
{
    for (int i = 0; i < DN_MAX_INPUTS; i++) {
        free(c->in[i].v);
        free(c->grad_in[i].v);
        free(c->updated[i].v);
    }
    free(c->out.v);
    free(c->grad_out.v);
    memset(c, 0, sizeof *c);
}

/* Reads "case ... end" (the "case" token already consumed). */
static bool g_read_case(g_lexer *lx, g_case *c)
{
    char peek[G_MAX_TOKEN];
    c->line = lx->tok_line;
    if (!g_expect(lx, "attrs")) return false;
    /* attributes: name=value tokens until the first input */
    while (strchr(g_peek(lx, peek, sizeof peek), '=')) {
        g_next(lx);
        if (c->n_attrs == G_MAX_FIXTURE_ATTRS) {
            g_fail_at(lx, lx->tok_line, "more than %d attributes", G_MAX_FIXTURE_ATTRS);
            return false;
        }
        char *eq = strchr(lx->tok, '=');
        size_t len = (size_t)(eq - lx->tok);
        if (len == 0) {
            g_fail_at(lx, lx->tok_line, "attribute '%s' has no name", lx->tok);
            return false;
        }
        memcpy(c->attr_name[c->n_attrs], lx->tok, len);
        c->attr_name[c->n_attrs][len] = '\0';
        if (!g_double(lx, "an attribute value", eq + 1, &c->attr_value[c->n_attrs])) return false;
        size_t used = strlen(c->attr_text);
        snprintf(c->attr_text + used, sizeof c->attr_text - used, "%s%s", used ? " " : "", lx->tok);
        c->n_attrs++;
    }
    while (strcmp(g_peek(lx, peek, sizeof peek), "input") == 0) {
        g_next(lx);
        if (c->n_in == DN_MAX_INPUTS) {
            g_fail_at(lx, lx->tok_line, "more than %d inputs", DN_MAX_INPUTS);
            return false;
        }
        g_tensor *t = &c->in[c->n_in];
        long rg;
        char what[64];
        snprintf(what, sizeof what, "input %d", c->n_in);
        if (!g_shape(lx, t) || !g_int(lx, "requires_grad (0 or 1)", 0, 1, &rg)) return false;
        c->requires_grad[c->n_in] = rg == 1;
        if (!g_values(lx, t, what)) return false;
        c->n_in++;
    }
    if (c->n_in == 0) {
        g_fail_at(lx, lx->tok_line, "expected an attribute (name=value) or an 'input' block, got '%s'", peek);
        return false;
    }
    if (!g_expect(lx, "output") || !g_shape(lx, &c->out) || !g_values(lx, &c->out, "output")) return false;
    while (strcmp(g_peek(lx, peek, sizeof peek), "updated") == 0) {
        g_next(lx);
        long idx;
        if (!g_int(lx, "an input index", 0, c->n_in - 1, &idx)) return false;
        int i = (int)idx;
        if (c->has_updated[i]) {
            g_fail_at(lx, lx->tok_line, "updated %d: given twice", i);
            return false;
        }
        char what[64];
        snprintf(what, sizeof what, "updated %d", i);
        if (!g_shape(lx, &c->updated[i]) || !g_values(lx, &c->updated[i], what)) return false;
        if (!same_shape(&c->updated[i], &c->in[i])) {
            g_fail_at(lx, lx->tok_line, "updated %d's shape differs from input %d's", i, i);
            return false;
        }
        c->has_updated[i] = true;
    }
    if (!g_expect(lx, "grad_output") || !g_shape(lx, &c->grad_out) || !g_values(lx, &c->grad_out, "grad_output"))
        return false;
    if (!same_shape(&c->out, &c->grad_out)) {
        g_fail_at(lx, lx->tok_line, "grad_output's shape differs from output's");
        return false;
    }
    while (strcmp(g_peek(lx, peek, sizeof peek), "grad_input") == 0) {
        g_next(lx);
        long idx;
        if (!g_int(lx, "an input index", 0, c->n_in - 1, &idx)) return false;
        int i = (int)idx;
        if (!c->requires_grad[i] || c->has_grad[i]) {
            g_fail_at(lx, lx->tok_line, "grad_input %d: %s", i,
                      c->has_grad[i] ? "given twice" : "that input has requires_grad 0");
            return false;
        }
        char what[64];
        snprintf(what, sizeof what, "grad_input %d", i);
        if (!g_shape(lx, &c->grad_in[i]) || !g_values(lx, &c->grad_in[i], what)) return false;
        if (!same_shape(&c->grad_in[i], &c->in[i])) {
            g_fail_at(lx, lx->tok_line, "grad_input %d's shape differs from input %d's", i, i);
            return false;
        }
        c->has_grad[i] = true;
    }
    for (int i = 0; i < c->n_in; i++)
        if (c->requires_grad[i] && !c->has_grad[i]) {
            g_fail_at(lx, lx->tok_line, "input %d has requires_grad 1 but no grad_input block", i);
            return false;
        }
    return g_expect(lx, "end");
}

/* The whole file, NUL-terminated; *size is its length in bytes (more than G_MAX_FILE: not read, but
 * reported by the caller).  NULL if it cannot be opened or read. */
static char *read_file(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    *size = -1; /* stays -1 only when the file cannot be opened */
    if (!f) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        size_t want = n > G_MAX_FILE ? 0 : (size_t)n;
        buf = malloc(want + 1);
        if (buf && fread(buf, 1, want, f) != want) {
            free(buf);
            buf = NULL;
        }
        if (buf) buf[want] = '\0';
    }
    fclose(f);
    *size = n < 0 ? 0 : n;
    return buf;
}

/* ------------------------------------------------------------------ running a case */

/* Compares got against the expected tensor; reports up to three elements.  Returns the worst ratio of
 * error to allowed error (<= 1 passes). */
static double compare(const char *path, const g_case *c, const char *what, const float *got, const g_tensor *exp,
                      double tol)
{
    double peak = 0, worst = 0;
    int reported = 0;
    for (int64_t i = 0; i < exp->numel; i++)
        peak = t_worse(peak, fabs(exp->v[i]));
    double floor = fmax(GOLDEN_FLOOR_REL * peak, GOLDEN_FLOOR_ABS);
    for (int64_t i = 0; i < exp->numel; i++) {
        double e = exp->v[i], g = got[i];
        double allowed = tol * fmax(fabs(e), floor);
        double ratio = fabs(g - e) / allowed;
        if (!(ratio <= 1.0)) { /* NaN fails too */
            if (reported++ < 3) {
                char sb[64];
                t_fail(path, c->line, "case (attrs '%s'): %s %s element %lld: got %.9g, expected %.9g "
                       "(error %.3g, allowed %.3g)", c->attr_text, what, shape_text(exp, sb, sizeof sb),
                       (long long)i, g, e, fabs(g - e), allowed);
            }
            ratio = isnan(ratio) ? INFINITY : ratio;
        }
        worst = t_worse(worst, ratio);
    }
    if (reported > 3)
        t_fail(path, c->line, "case (attrs '%s'): %s: %d elements out of tolerance in all", c->attr_text, what,
               reported);
    return worst;
}

/* Runs one parsed case through the op; returns the worst error ratio seen (INFINITY if it could not run). */
static double run_case(const char *path, const dn_op *op, dn_ctx *ctx, const g_case *c, double tol)
{
    double attrs[DN_MAX_ATTRS];
    for (int i = 0; i < dn_op_attr_count(op); i++) attrs[i] = dn_op_attr_default(op, i);
    for (int k = 0; k < c->n_attrs; k++) {
        int idx = dn_op_attr_index(op, c->attr_name[k]);
        if (idx < 0) {
            char names[256] = "";
            for (int i = 0; i < dn_op_attr_count(op); i++) {
                size_t used = strlen(names);
                snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", dn_op_attr_name(op, i));
            }
            t_fail(path, c->line, "op %s has no attribute '%s' (it has: %s)", dn_op_name(op), c->attr_name[k],
                   names[0] ? names : "none");
            return INFINITY;
        }
        attrs[idx] = c->attr_value[k];
    }

    dn_ctx_reset(ctx);
    dn_tensor *in[DN_MAX_INPUTS];
    bool any_grad = false;
    for (int i = 0; i < c->n_in; i++) {
        dn_status s = dn_tensor_from(ctx, c->in[i].ndim, c->in[i].shape, c->in[i].v, &in[i]);
        if (!s && c->requires_grad[i]) s = dn_tensor_set_requires_grad(in[i], true);
        if (s) {
            t_fail(path, c->line, "input %d: %s: %s", i, dn_status_name(s), dn_last_error());
            return INFINITY;
        }
        any_grad |= c->requires_grad[i];
    }
    dn_tensor *out = dn_op_apply(ctx, op, c->n_in, in, attrs);
    if (!out) {
        t_fail(path, c->line, "case (attrs '%s'): %s failed: %s: %s", c->attr_text, dn_op_name(op),
               dn_status_name(dn_ctx_status(ctx)), dn_last_error());
        return INFINITY;
    }
    g_tensor shape = {.ndim = dn_tensor_ndim(out)};
    for (int i = 0; i < shape.ndim && i < DN_MAX_DIMS; i++) shape.shape[i] = dn_tensor_dim(out, i);
    if (!same_shape(&shape, &c->out)) {
        char sa[64], sb[64];
        t_fail(path, c->line, "case (attrs '%s'): output shape %s, expected %s", c->attr_text,
               shape_text(&shape, sa, sizeof sa), shape_text(&c->out, sb, sizeof sb));
        return INFINITY;
    }
    float *got = malloc((size_t)(c->out.numel ? c->out.numel : 1) * sizeof(float));
    if (!got) {
        t_fail(path, c->line, "out of memory");
        return INFINITY;
    }
    dn_tensor_read(out, got); /* views (reshape, permute, slice) have strides: read in row-major order */
    double worst = compare(path, c, "output", got, &c->out, tol);
    free(got);
    for (int i = 0; i < c->n_in; i++) {
        if (!c->has_updated[i]) continue;
        /* the input tensor itself, which forward was to write into */
        char what[64];
        snprintf(what, sizeof what, "updated input %d", i);
        double w = compare(path, c, what, dn_tensor_data(in[i]), &c->updated[i], tol);
        worst = t_worse(worst, w);
    }
    if (!any_grad) return worst;

    dn_status s = dn_backward_with(ctx, out, c->grad_out.v);
    if (s) {
        t_fail(path, c->line, "case (attrs '%s'): backward failed: %s: %s", c->attr_text, dn_status_name(s),
               dn_last_error());
        return INFINITY;
    }
    for (int i = 0; i < c->n_in; i++) {
        if (!c->has_grad[i]) continue;
        const float *g = dn_tensor_grad(in[i]);
        float *zeros = NULL;
        if (!g) { /* no gradient reached the input: compare as zeros, so a nonzero expectation fails */
            zeros = calloc((size_t)(c->in[i].numel ? c->in[i].numel : 1), sizeof(float));
            if (!zeros) {
                t_fail(path, c->line, "out of memory");
                return INFINITY;
            }
            g = zeros;
        }
        char what[64];
        snprintf(what, sizeof what, "grad_input %d%s", i, zeros ? " (none reached it)" : "");
        double w = compare(path, c, what, g, &c->grad_in[i], tol);
        worst = t_worse(worst, w);
        free(zeros);
    }
    return worst;
}

/* ------------------------------------------------------------------ one test per registered op */

static const dn_op *current_op;

static void golden_op(void)
{
    const dn_op *op = current_op;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.txt", t_golden_dir(), dn_op_name(op));
    long size;
    char *text = read_file(path, &size);
    if (!text && size >= 0) {
        t_fail(path, 1, "cannot read the fixture (%ld bytes)", size);
        return;
    }
    if (!text) {
        t_fail(__FILE__, __LINE__, "op %s has no golden fixture %s (add it to tools/make_goldens.py and run "
               "/usr/bin/python3 tools/make_goldens.py %s)", dn_op_name(op), path, dn_op_name(op));
        return;
    }
    g_lexer lx = {.path = path, .text = text, .line = 1};
    if (size > G_MAX_FILE) g_fail_at(&lx, 1, "file larger than %d bytes (or not a regular file)", G_MAX_FILE);
    if ((long)strlen(text) != size && !lx.failed) g_fail_at(&lx, 1, "file contains a NUL byte");

    double tol = 0;
    if (!lx.failed && g_expect(&lx, "op")) {
        if (!g_next(&lx))
            g_fail_at(&lx, lx.tok_line, "expected the op's name after 'op'");
        else if (strcmp(lx.tok, dn_op_name(op)) != 0)
            g_fail_at(&lx, lx.tok_line, "fixture is for op '%s', expected '%s'", lx.tok, dn_op_name(op));
    }
    if (!lx.failed && g_expect(&lx, "tol")) {
        if (!g_next(&lx) || !g_double(&lx, "a tolerance", lx.tok, &tol)) {
            if (!lx.failed) g_fail_at(&lx, lx.tok_line, "expected a tolerance after 'tol'");
        } else if (!(tol > 0 && tol < 1)) {
            g_fail_at(&lx, lx.tok_line, "tolerance %g is not in (0, 1)", tol);
        }
    }

    dn_ctx *ctx = dn_ctx_new();
    CHECK_MSG(ctx, "dn_ctx_new: %s", dn_last_error());
    int n_cases = 0;
    double worst = 0;
    while (ctx && !lx.failed && g_next(&lx)) {
        if (strcmp(lx.tok, "case") != 0) {
            g_fail_at(&lx, lx.tok_line, "expected 'case' or the end of the file, got '%s'", lx.tok);
            break;
        }
        g_case *c = calloc(1, sizeof *c);
        if (!c) {
            g_fail_at(&lx, lx.tok_line, "out of memory");
            break;
        }
        if (g_read_case(&lx, c)) {
            double w = run_case(path, op, ctx, c, tol);
            worst = t_worse(worst, w);
            n_cases++;
        }
        g_case_free(c);
        free(c);
    }
    if (!lx.failed && n_cases == 0) g_fail_at(&lx, lx.line, "fixture has no cases");
    const char *verbose = getenv("DN_GOLDEN_VERBOSE");
    if (verbose && *verbose && *verbose != '0')
        printf("    golden/%s: %d case(s), tol %g, worst error %.3g of tolerance\n", dn_op_name(op), n_cases, tol,
               worst);
    dn_ctx_free(ctx);
    free(text);
}

void suite_golden(void)
{
    static char name[128];
    for (int i = 0; i < dn_op_count(); i++) {
        current_op = dn_op_at(i);
        snprintf(name, sizeof name, "golden/%s", dn_op_name(current_op));
        t_run(name, golden_op);
    }
}

/* One op's fixture, for suites that rerun some goldens under other settings (tests/test_rowkernels.c runs the
 * softmax and batch-norm ones once per ISA). */
void t_golden_file(const char *op_name);
void t_golden_file(const char *op_name)
{
    current_op = dn_op_find(op_name);
    if (!current_op) {
        t_fail(__FILE__, __LINE__, "no op named %s", op_name);
        return;
    }
    golden_op();
}
