/* Recurrent layers: dn_rnn_sequence (src/nn/rnn.c) against torch.nn.RNN / LSTM / GRU (goldens from
 * tools/golden_rnn.py), a finite-difference gradient check of whole sequences, padding invariance, truncated
 * BPTT, error paths, and the embedding and cell ops by hand.  The cell ops' own PyTorch goldens and gradient
 * checks run with every other op (tests/golden/<op>.txt, the registry gradient check).
 *
 * Golden criterion, per element (as tests/test_golden.c):
 *     |got - expected| <= tol * max(|expected|, 1e-2 * max|expected over the tensor|, 1e-3)
 * with tol = 1e-5 for y, hn, cn, and the file's grad_tol (5e-5) for gradients: BPTT sums a weight's gradient
 * over every step, row, and both layers above it, and torch's own float32 lands up to 2.5e-5 from the float64
 * reference there (tools/golden_rnn.py prints the ratio).  RNN_VERBOSE=1 prints every tensor's worst ratio. */
#include "test.h"

#include "internal.h"
#include "nn/rnn.h"

#include <errno.h>
#include <stdlib.h>

/* The cell wrappers (src/ops/rnn.c); also declared in dendrite.h, and a matching redeclaration is harmless. */
dn_tensor *dn_embedding(dn_ctx *ctx, dn_tensor *indices, dn_tensor *weight);
dn_tensor *dn_rnn_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *w_hh, dn_tensor *b_hh, dn_tensor *mask,
                       int nonlinearity);
dn_tensor *dn_lstm_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *c, dn_tensor *w_hh, dn_tensor *b_hh,
                        dn_tensor *mask);
dn_tensor *dn_gru_cell(dn_ctx *ctx, dn_tensor *xw, dn_tensor *h, dn_tensor *w_hh, dn_tensor *b_hh, dn_tensor *mask);

#define MAX_LAYERS 2
#define MAX_PARAMS (4 * 2 * MAX_LAYERS)

/* ------------------------------------------------------------------ a recurrent problem */

/* Everything one dn_rnn_sequence call needs, as heap leaves (so contexts can be reset between forward
 * passes while the leaves and their gradients stay), and the weights of the loss
 *     L = sum(y * gy) + sum(hn * ghn) (+ sum(cn * gcn)). */
typedef struct seq_net {
    dn_rnn_kind kind;
    int layers;
    bool bidir;
    int64_t n, steps, in, hid;
    dn_tensor *x, *h0, *c0; /* h0, c0 may be NULL */
    dn_tensor *params[MAX_PARAMS];
    int64_t lengths[8];
    bool use_lengths;
    float dropout;
    bool training;
    float *gy, *ghn, *gcn;
} seq_net;

static int dirs_of(const seq_net *net) { return net->bidir ? 2 : 1; }
static int n_params(const seq_net *net) { return 4 * net->layers * dirs_of(net); }

static dn_tensor *heap_tensor(int ndim, const int64_t *shape, const float *data, bool grad)
{
    dn_tensor *t = NULL;
    if (data ? dn_tensor_from(NULL, ndim, shape, data, &t) : dn_tensor_new(NULL, ndim, shape, &t)) return NULL;
    if (grad && dn_tensor_set_requires_grad(t, true)) {
        dn_tensor_free(t);
        return NULL;
    }
    return t;
}

static void fill_uniform(dn_tensor *t, dn_rng *r, float lo, float hi)
{
    int64_t n = dn_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) dn_tensor_data(t)[i] = lo + (hi - lo) * dn_rng_uniform(r);
}

static float *random_floats(int64_t n, dn_rng *r)
{
    float *v = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; v && i < n; i++) v[i] = 2 * dn_rng_uniform(r) - 1;
    return v;
}

static void net_free(seq_net *net)
{
    dn_tensor_free(net->x);
    dn_tensor_free(net->h0);
    dn_tensor_free(net->c0);
    for (int k = 0; k < MAX_PARAMS; k++) dn_tensor_free(net->params[k]);
    free(net->gy);
    free(net->ghn);
    free(net->gcn);
    memset(net, 0, sizeof *net);
}

/* A random problem: parameters in [-0.8, 0.8), inputs in [-1, 1), states in [-0.5, 0.5). */
static bool net_random(seq_net *net, dn_rnn_kind kind, int layers, bool bidir, int64_t n, int64_t steps, int64_t in,
                       int64_t hid, const int64_t *lengths, bool with_h0, uint64_t seed)
{
    memset(net, 0, sizeof *net);
    net->kind = kind;
    net->layers = layers;
    net->bidir = bidir;
    net->n = n;
    net->steps = steps;
    net->in = in;
    net->hid = hid;
    net->use_lengths = lengths != NULL;
    for (int64_t i = 0; lengths && i < n; i++) net->lengths[i] = lengths[i];
    dn_rng r;
    dn_rng_seed(&r, seed);
    int dirs = dirs_of(net);
    int64_t g = dn_rnn_gates(kind), rows = (int64_t)layers * dirs;
    net->x = heap_tensor(3, (int64_t[]){n, steps, in}, NULL, true);
    bool ok = net->x != NULL;
    if (ok) fill_uniform(net->x, &r, -1, 1);
    if (with_h0) {
        net->h0 = heap_tensor(3, (int64_t[]){rows, n, hid}, NULL, true);
        ok = ok && net->h0;
        if (ok) fill_uniform(net->h0, &r, -0.5f, 0.5f);
        if (kind == DN_LSTM) {
            net->c0 = heap_tensor(3, (int64_t[]){rows, n, hid}, NULL, true);
            ok = ok && net->c0;
            if (ok) fill_uniform(net->c0, &r, -0.5f, 0.5f);
        }
    }
    for (int l = 0; ok && l < layers; l++)
        for (int d = 0; ok && d < dirs; d++) {
            int64_t cols = l == 0 ? in : dirs * hid;
            dn_tensor **p = net->params + 4 * (l * dirs + d);
            p[0] = heap_tensor(2, (int64_t[]){g * hid, cols}, NULL, true);
            p[1] = heap_tensor(2, (int64_t[]){g * hid, hid}, NULL, true);
            p[2] = heap_tensor(1, (int64_t[]){g * hid}, NULL, true);
            p[3] = heap_tensor(1, (int64_t[]){g * hid}, NULL, true);
            for (int k = 0; ok && k < 4; k++) {
                ok = p[k] != NULL;
                if (ok) fill_uniform(p[k], &r, -0.8f, 0.8f);
            }
        }
    net->gy = random_floats(n * steps * dirs * hid, &r);
    net->ghn = random_floats(rows * n * hid, &r);
    net->gcn = random_floats(rows * n * hid, &r);
    ok = ok && net->gy && net->ghn && net->gcn;
    if (!ok) net_free(net);
    return ok;
}

/* The leaves that take gradients: x, h0, c0, then the parameters. */
static int net_leaves(seq_net *net, dn_tensor **out)
{
    int k = 0;
    out[k++] = net->x;
    if (net->h0) out[k++] = net->h0;
    if (net->c0) out[k++] = net->c0;
    for (int i = 0; i < n_params(net); i++) out[k++] = net->params[i];
    return k;
}

static void net_zero_grad(seq_net *net)
{
    dn_tensor *leaves[3 + MAX_PARAMS];
    int k = net_leaves(net, leaves);
    for (int i = 0; i < k; i++) dn_tensor_zero_grad(leaves[i]);
}

/* One forward pass; dropout masks come from a generator reseeded each time, so repeated passes agree. */
static dn_status net_forward(dn_ctx *ctx, seq_net *net, dn_tensor **y, dn_tensor **hn, dn_tensor **cn)
{
    dn_rng r;
    dn_rng_seed(&r, 77);
    return dn_rnn_sequence(ctx, net->kind, net->x, net->use_lengths ? net->lengths : NULL, net->layers, net->bidir,
                           net->params, net->h0, net->c0, net->dropout, &r, net->training, y, hn, cn);
}

/* sum(t * w) as an op (for backward). */
static dn_tensor *weighted_sum(dn_ctx *ctx, dn_tensor *t, const float *w)
{
    int64_t shape[DN_MAX_DIMS];
    for (int i = 0; i < dn_tensor_ndim(t); i++) shape[i] = dn_tensor_dim(t, i);
    dn_tensor *wt = NULL;
    if (dn_tensor_from(ctx, dn_tensor_ndim(t), shape, w, &wt)) return NULL;
    return dn_sum(ctx, dn_mul(ctx, t, wt), 0, false);
}

static dn_tensor *net_loss(dn_ctx *ctx, const seq_net *net, dn_tensor *y, dn_tensor *hn, dn_tensor *cn)
{
    dn_tensor *loss = dn_add(ctx, weighted_sum(ctx, y, net->gy), weighted_sum(ctx, hn, net->ghn));
    return cn ? dn_add(ctx, loss, weighted_sum(ctx, cn, net->gcn)) : loss;
}

/* The same loss in double, from the outputs' values (for finite differences). */
static double net_loss_value(const seq_net *net, const dn_tensor *y, const dn_tensor *hn, const dn_tensor *cn)
{
    double s = 0;
    for (int64_t i = 0; i < dn_tensor_numel(y); i++) s += (double)net->gy[i] * dn_tensor_get(y, i);
    for (int64_t i = 0; i < dn_tensor_numel(hn); i++) s += (double)net->ghn[i] * dn_tensor_get(hn, i);
    for (int64_t i = 0; cn && i < dn_tensor_numel(cn); i++) s += (double)net->gcn[i] * dn_tensor_get(cn, i);
    return s;
}

/* Forward and backward once: leaves' gradients hold dL/dleaf afterwards. */
static bool net_backward(seq_net *net)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *y, *hn, *cn;
    net_zero_grad(net);
    dn_status s = net_forward(ctx, net, &y, &hn, net->kind == DN_LSTM ? &cn : NULL);
    if (net->kind != DN_LSTM) cn = NULL;
    if (!s) s = dn_backward(ctx, net_loss(ctx, net, y, hn, cn));
    CHECK_MSG(s == DN_OK, "forward/backward: %s", dn_last_error());
    dn_ctx_free(ctx);
    return s == DN_OK;
}

/* ------------------------------------------------------------------ golden files (tools/golden_rnn.py) */

#define SEQ_MAX_TENSORS 64
#define SEQ_MAX_NUMEL 4096

typedef struct seq_tensor {
    char name[48];
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    int64_t numel;
    float *v;
} seq_tensor;

typedef struct seq_file {
    char kind[16];
    int layers, bidirectional;
    double tol, grad_tol;
    int n;
    seq_tensor t[SEQ_MAX_TENSORS];
} seq_file;

static void seq_file_free(seq_file *f)
{
    for (int i = 0; i < f->n; i++) free(f->t[i].v);
    f->n = 0;
}

/* Whitespace tokens, '#' comments to the end of the line. */
static char *next_token(char **p)
{
    char *s = *p;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
        if (*s != '#') break;
        while (*s && *s != '\n') s++;
    }
    if (!*s) return NULL;
    char *tok = s;
    while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') s++;
    if (*s) *s++ = '\0';
    *p = s;
    return tok;
}

static bool parse_long(const char *tok, long lo, long hi, long *out)
{
    if (!tok) return false;
    char *end;
    errno = 0;
    long v = strtol(tok, &end, 10);
    if (end == tok || *end || errno || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Reads tests/golden/<name>; a malformed file is a test failure naming the problem, never a crash. */
static bool seq_file_load(const char *name, seq_file *f)
{
    memset(f, 0, sizeof *f);
    f->tol = 1e-5;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", t_golden_dir(), name);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        t_fail(__FILE__, __LINE__, "cannot open %s (run /usr/bin/python3 tools/golden_rnn.py)", path);
        return false;
    }
    char *text = malloc(1 << 20);
    size_t len = text ? fread(text, 1, (1 << 20) - 1, fp) : 0;
    fclose(fp);
    if (!text) return false;
    text[len] = '\0';
    char *p = text, *tok;
    const char *err = NULL;
    while (!err && (tok = next_token(&p))) {
        long v = 0;
        if (!strncmp(tok, "kind=", 5)) {
            snprintf(f->kind, sizeof f->kind, "%s", tok + 5);
        } else if (!strncmp(tok, "layers=", 7)) {
            if (!parse_long(tok + 7, 1, MAX_LAYERS, &v)) err = "bad layers=";
            f->layers = (int)v;
        } else if (!strncmp(tok, "bidirectional=", 14)) {
            if (!parse_long(tok + 14, 0, 1, &v)) err = "bad bidirectional=";
            f->bidirectional = (int)v;
        } else if (!strncmp(tok, "tol=", 4)) {
            f->tol = strtod(tok + 4, NULL);
        } else if (!strncmp(tok, "grad_tol=", 9)) {
            f->grad_tol = strtod(tok + 9, NULL);
        } else if (!strcmp(tok, "tensor")) {
            if (f->n == SEQ_MAX_TENSORS) {
                err = "too many tensors";
                break;
            }
            seq_tensor *t = &f->t[f->n];
            tok = next_token(&p);
            if (!tok || strlen(tok) >= sizeof t->name) {
                err = "bad tensor name";
                break;
            }
            strcpy(t->name, tok);
            if (!parse_long(next_token(&p), 0, DN_MAX_DIMS, &v)) {
                err = "bad rank";
                break;
            }
            t->ndim = (int)v;
            t->numel = 1;
            for (int i = 0; i < t->ndim && !err; i++) {
                if (!parse_long(next_token(&p), 0, SEQ_MAX_NUMEL, &v)) err = "bad dimension";
                t->shape[i] = v;
                t->numel *= v;
                if (t->numel > SEQ_MAX_NUMEL) err = "tensor too large";
            }
            if (err) break;
            t->v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
            if (!t->v) {
                err = "out of memory";
                break;
            }
            f->n++;
            for (int64_t i = 0; i < t->numel && !err; i++) {
                char *end;
                tok = next_token(&p);
                if (!tok) err = "file ends inside a tensor";
                else t->v[i] = strtof(tok, &end);
                if (tok && (end == tok || *end)) err = "value is not a number";
            }
        } else {
            err = "unknown item";
        }
    }
    if (err) t_fail(__FILE__, __LINE__, "%s: %s (at '%s')", path, err, tok ? tok : "end of file");
    free(text);
    if (f->grad_tol == 0) f->grad_tol = f->tol;
    if (err) seq_file_free(f);
    return err == NULL;
}

static const seq_tensor *seq_get(const seq_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    t_fail(__FILE__, __LINE__, "golden file lacks tensor '%s'", name);
    return NULL;
}


/* The golden criterion (top of the file); reports the worst element. */
static void check_close(const char *what, const float *got, const seq_tensor *exp, double tol)
{
    double peak = 0;
    for (int64_t i = 0; i < exp->numel; i++) peak = t_worse(peak, fabs(exp->v[i]));
    double floor = fmax(1e-2 * peak, 1e-3), worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < exp->numel; i++) {
        double r = fabs(got[i] - exp->v[i]) / (tol * fmax(fabs(exp->v[i]), floor));
        if (t_is_worse(worst, r)) {
            worst = r;
            at = i;
        }
    }
    if (getenv("RNN_VERBOSE")) printf("    %-28s worst %.3f of tol %g\n", what, worst, tol);
    CHECK_MSG(worst <= 1.0, "%s: element %lld is %.9g, torch says %.9g (%.2f of the tolerance %g)", what,
              (long long)at, (double)got[at], (double)exp->v[at], worst, tol);
}

static void check_tensor_close(const char *what, const dn_tensor *t, const seq_tensor *exp, double tol)
{
    if (!t || !exp) {
        t_fail(__FILE__, __LINE__, "%s: missing", what);
        return;
    }
    CHECK_MSG(dn_tensor_numel(t) == exp->numel, "%s: %lld elements, expected %lld", what,
              (long long)dn_tensor_numel(t), (long long)exp->numel);
    if (dn_tensor_numel(t) != exp->numel) return;
    float *buf = malloc((size_t)exp->numel * sizeof(float));
    if (!buf) return;
    dn_tensor_read(t, buf);
    check_close(what, buf, exp, tol);
    free(buf);
}

static dn_tensor *from_golden(const seq_tensor *t)
{
    return t ? heap_tensor(t->ndim, t->shape, t->v, true) : NULL;
}

static void run_golden(const char *file, dn_rnn_kind kind)
{
    seq_file f;
    if (!seq_file_load(file, &f)) return;
    CHECK_MSG(!strcmp(f.kind, dn_rnn_kind_name(kind)), "%s holds kind '%s'", file, f.kind);
    seq_net net;
    memset(&net, 0, sizeof net);
    net.kind = kind;
    net.layers = f.layers;
    net.bidir = f.bidirectional;
    net.x = from_golden(seq_get(&f, "input"));
    net.h0 = from_golden(seq_get(&f, "h0"));
    net.c0 = kind == DN_LSTM ? from_golden(seq_get(&f, "c0")) : NULL;
    const seq_tensor *len = seq_get(&f, "lengths");
    bool ok = net.x && net.h0 && len && (kind != DN_LSTM || net.c0) && len->numel <= 8;
    for (int64_t i = 0; ok && i < len->numel; i++) net.lengths[i] = (int64_t)len->v[i];
    net.use_lengths = true;
    char name[64];
    for (int k = 0; ok && k < n_params(&net); k++) {
        int dirs = dirs_of(&net);
        dn_rnn_param_name(k / 4 / dirs, (k / 4) % dirs, k % 4, name, sizeof name);
        net.params[k] = from_golden(seq_get(&f, name));
        ok = net.params[k] != NULL;
    }
    const seq_tensor *gy = ok ? seq_get(&f, "gy") : NULL, *ghn = ok ? seq_get(&f, "ghn") : NULL;
    const seq_tensor *gcn = ok && kind == DN_LSTM ? seq_get(&f, "gcn") : NULL;
    ok = ok && gy && ghn && (kind != DN_LSTM || gcn);
    if (!ok) goto done;
    net.gy = malloc((size_t)gy->numel * sizeof(float));
    net.ghn = malloc((size_t)ghn->numel * sizeof(float));
    if (!net.gy || !net.ghn) goto done;
    memcpy(net.gy, gy->v, (size_t)gy->numel * sizeof(float));
    memcpy(net.ghn, ghn->v, (size_t)ghn->numel * sizeof(float));
    if (gcn) {
        net.gcn = malloc((size_t)gcn->numel * sizeof(float));
        if (!net.gcn) goto done;
        memcpy(net.gcn, gcn->v, (size_t)gcn->numel * sizeof(float));
    }

    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *y, *hn, *cn = NULL;
    dn_status s = net_forward(ctx, &net, &y, &hn, &cn);
    CHECK_MSG(s == DN_OK, "dn_rnn_sequence: %s", dn_last_error());
    if (!s) {
        check_tensor_close("y", y, seq_get(&f, "y"), f.tol);
        check_tensor_close("hn", hn, seq_get(&f, "hn"), f.tol);
        if (kind == DN_LSTM) check_tensor_close("cn", cn, seq_get(&f, "cn"), f.tol);
        else CHECK(cn == NULL);
        /* padding steps of y are exactly 0 */
        int64_t steps = dn_tensor_dim(y, 1), feat = dn_tensor_dim(y, 2);
        for (int64_t i = 0; i < dn_tensor_dim(y, 0); i++)
            for (int64_t t = net.lengths[i]; t < steps; t++)
                for (int64_t j = 0; j < feat; j++) CHECK(dn_tensor_get(y, (i * steps + t) * feat + j) == 0.0f);
        s = dn_backward(ctx, net_loss(ctx, &net, y, hn, cn));
        CHECK_MSG(s == DN_OK, "backward: %s", dn_last_error());
    }
    if (!s) {
        check_close("grad.input", dn_tensor_grad(net.x), seq_get(&f, "grad.input"), f.grad_tol);
        check_close("grad.h0", dn_tensor_grad(net.h0), seq_get(&f, "grad.h0"), f.grad_tol);
        if (kind == DN_LSTM) check_close("grad.c0", dn_tensor_grad(net.c0), seq_get(&f, "grad.c0"), f.grad_tol);
        for (int k = 0; k < n_params(&net); k++) {
            int dirs = dirs_of(&net);
            char gname[72];
            dn_rnn_param_name(k / 4 / dirs, (k / 4) % dirs, k % 4, name, sizeof name);
            snprintf(gname, sizeof gname, "grad.%s", name);
            const seq_tensor *e = seq_get(&f, gname);
            if (e) check_close(gname, dn_tensor_grad(net.params[k]), e, f.grad_tol);
        }
    }
    dn_ctx_free(ctx);
done:
    CHECK(ok);
    net_free(&net);
    seq_file_free(&f);
}

static void test_seq_golden_rnn_tanh(void) { run_golden("seq_rnn_tanh.txt", DN_RNN_TANH); }
static void test_seq_golden_rnn_relu(void) { run_golden("seq_rnn_relu.txt", DN_RNN_RELU); }
static void test_seq_golden_lstm(void) { run_golden("seq_lstm.txt", DN_LSTM); }
static void test_seq_golden_gru(void) { run_golden("seq_gru.txt", DN_GRU); }

/* ------------------------------------------------------------------ gradient check of whole sequences */

/* Central differences of L with respect to every element of every leaf, against one backward pass:
 *     |analytic - numeric| <= 5e-3 + 1e-2 |numeric|,   numeric = (L(v + h) - L(v - h)) / 2h,  h = 1e-3
 * (the registry gradient check's tolerance; L is summed in double from the float32 outputs). */
static void gradcheck_net(seq_net *net, const char *label)
{
    if (!net_backward(net)) return;
    dn_ctx *ctx = dn_ctx_new();
    dn_ctx_set_grad(ctx, false);
    dn_tensor *leaves[3 + MAX_PARAMS];
    int nl = net_leaves(net, leaves), failures = 0;
    double worst = 0;
    for (int k = 0; k < nl && failures < 3; k++) {
        float *v = dn_tensor_data(leaves[k]), *grad = dn_tensor_grad(leaves[k]);
        for (int64_t i = 0; i < dn_tensor_numel(leaves[k]) && failures < 3; i++) {
            float v0 = v[i];
            double loss[2];
            for (int side = 0; side < 2; side++) {
                v[i] = v0 + (side ? -1e-3f : 1e-3f);
                dn_ctx_reset(ctx);
                dn_tensor *y, *hn, *cn = NULL;
                dn_status s = net_forward(ctx, net, &y, &hn, net->kind == DN_LSTM ? &cn : NULL);
                loss[side] = s ? NAN : net_loss_value(net, y, hn, cn);
            }
            double h2 = (double)(v0 + 1e-3f) - (double)(v0 - 1e-3f);
            v[i] = v0;
            double numeric = (loss[0] - loss[1]) / h2, analytic = grad[i];
            double err = fabs(analytic - numeric) / (5e-3 + 1e-2 * fabs(numeric));
            worst = t_worse(worst, err);
            if (!(err <= 1.0)) {
                failures++;
                t_fail(__FILE__, __LINE__, "%s: leaf %d element %lld: analytic %.6g, numeric %.6g", label, k,
                       (long long)i, analytic, numeric);
            }
        }
    }
    dn_ctx_free(ctx);
}

static void test_seq_gradcheck(void)
{
    static const dn_rnn_kind kinds[] = {DN_RNN_TANH, DN_RNN_RELU, DN_LSTM, DN_GRU};
    const int64_t lengths[] = {3, 2};
    for (int i = 0; i < 4; i++) {
        seq_net net;
        char label[64];
        /* 2 layers, bidirectional, uneven lengths, given initial states */
        snprintf(label, sizeof label, "%s bidirectional", dn_rnn_kind_name(kinds[i]));
        if (!net_random(&net, kinds[i], 2, true, 2, 3, 2, 2, lengths, true, 10 + (uint64_t)i)) {
            t_fail(__FILE__, __LINE__, "out of memory");
            return;
        }
        gradcheck_net(&net, label);
        /* the same in training with dropout 0.4 between the layers (masks redrawn identically each pass) */
        net.dropout = 0.4f;
        net.training = true;
        snprintf(label, sizeof label, "%s with dropout", dn_rnn_kind_name(kinds[i]));
        gradcheck_net(&net, label);
        net_free(&net);
        /* one layer, one direction, zero initial state, no lengths */
        snprintf(label, sizeof label, "%s plain", dn_rnn_kind_name(kinds[i]));
        if (!net_random(&net, kinds[i], 1, false, 2, 3, 3, 2, NULL, false, 20 + (uint64_t)i)) return;
        gradcheck_net(&net, label);
        net_free(&net);
    }
}

/* ------------------------------------------------------------------ padding */

static bool same_floats(const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* Outputs and gradients of a net, copied out. */
typedef struct seq_result {
    float *y, *hn, *cn, *grads[3 + MAX_PARAMS];
    int64_t ny, nh, ngrad[3 + MAX_PARAMS];
    int n_leaves;
} seq_result;

static void result_free(seq_result *r)
{
    free(r->y);
    free(r->hn);
    free(r->cn);
    for (int k = 0; k < r->n_leaves; k++) free(r->grads[k]);
    memset(r, 0, sizeof *r);
}

static float *copy_out(const dn_tensor *t, int64_t *n)
{
    *n = t ? dn_tensor_numel(t) : 0;
    float *v = malloc((size_t)(*n ? *n : 1) * sizeof(float));
    if (v && t) dn_tensor_read(t, v);
    return v;
}

static bool run_result(seq_net *net, seq_result *r)
{
    memset(r, 0, sizeof *r);
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *y, *hn, *cn = NULL;
    net_zero_grad(net);
    dn_status s = net_forward(ctx, net, &y, &hn, net->kind == DN_LSTM ? &cn : NULL);
    if (!s) s = dn_backward(ctx, net_loss(ctx, net, y, hn, cn));
    CHECK_MSG(s == DN_OK, "%s", dn_last_error());
    if (!s) {
        int64_t nc;
        r->y = copy_out(y, &r->ny);
        r->hn = copy_out(hn, &r->nh);
        r->cn = copy_out(cn, &nc);
        dn_tensor *leaves[3 + MAX_PARAMS];
        r->n_leaves = net_leaves(net, leaves);
        for (int k = 0; k < r->n_leaves; k++) {
            r->ngrad[k] = dn_tensor_numel(leaves[k]);
            r->grads[k] = malloc((size_t)r->ngrad[k] * sizeof(float));
            if (r->grads[k]) memcpy(r->grads[k], dn_tensor_grad(leaves[k]), (size_t)r->ngrad[k] * sizeof(float));
        }
    }
    dn_ctx_free(ctx);
    return s == DN_OK;
}

/* Garbage after each sequence's length changes nothing at all: outputs, final states and every gradient are
 * bit for bit the same, and the input's gradient is 0 at padding steps.  (Garbage must be finite: 0 * NaN in
 * the input projection's weight gradient would still be NaN.) */
static void test_seq_padding_invariance(void)
{
    static const dn_rnn_kind kinds[] = {DN_RNN_TANH, DN_LSTM, DN_GRU};
    const int64_t lengths[] = {5, 3, 2};
    for (int i = 0; i < 3; i++) {
        seq_net net;
        if (!net_random(&net, kinds[i], 2, true, 3, 5, 4, 3, lengths, true, 40 + (uint64_t)i)) return;
        float *x = dn_tensor_data(net.x);
        for (int64_t b = 0; b < 3; b++)
            for (int64_t t = lengths[b]; t < 5; t++)
                for (int64_t j = 0; j < 4; j++) x[(b * 5 + t) * 4 + j] = 0.0f;
        seq_result clean, noisy;
        bool ok = run_result(&net, &clean);
        dn_rng r;
        dn_rng_seed(&r, 99);
        for (int64_t b = 0; b < 3; b++)
            for (int64_t t = lengths[b]; t < 5; t++)
                for (int64_t j = 0; j < 4; j++) x[(b * 5 + t) * 4 + j] = 1000.0f * (2 * dn_rng_uniform(&r) - 1);
        ok = run_result(&net, &noisy) && ok;
        if (ok) {
            CHECK_MSG(same_floats(clean.y, noisy.y, clean.ny), "%s: y changed", dn_rnn_kind_name(kinds[i]));
            CHECK_MSG(same_floats(clean.hn, noisy.hn, clean.nh), "%s: hn changed", dn_rnn_kind_name(kinds[i]));
            if (kinds[i] == DN_LSTM) CHECK_MSG(same_floats(clean.cn, noisy.cn, clean.nh), "cn changed");
            for (int k = 0; k < clean.n_leaves; k++)
                CHECK_MSG(same_floats(clean.grads[k], noisy.grads[k], clean.ngrad[k]), "%s: gradient of leaf %d changed",
                          dn_rnn_kind_name(kinds[i]), k);
            for (int64_t b = 0; b < 3; b++)
                for (int64_t t = lengths[b]; t < 5; t++)
                    for (int64_t j = 0; j < 4; j++) CHECK(clean.grads[0][(b * 5 + t) * 4 + j] == 0.0f);
        }
        result_free(&clean);
        result_free(&noisy);
        net_free(&net);
    }
}

/* Each sequence of a padded batch gives what it gives alone, unpadded (N = 1, T = its length): this is what
 * makes the reverse direction start at the sequence's own last step. */
static void test_seq_batch_matches_single(void)
{
    const int64_t lengths[] = {5, 3, 2};
    const int64_t N = 3, T = 5, I = 4, H = 3, rows = 4;
    seq_net net;
    if (!net_random(&net, DN_LSTM, 2, true, N, T, I, H, lengths, true, 60)) return;
    seq_result all;
    if (!run_result(&net, &all)) {
        net_free(&net);
        return;
    }
    for (int64_t b = 0; b < N; b++) {
        int64_t len = lengths[b];
        seq_net one;
        if (!net_random(&one, DN_LSTM, 2, true, 1, len, I, H, NULL, true, 61)) break;
        /* the batch's parameters, sequence b's input, states and loss weights */
        for (int k = 0; k < n_params(&net); k++)
            memcpy(dn_tensor_data(one.params[k]), dn_tensor_data(net.params[k]),
                   (size_t)dn_tensor_numel(net.params[k]) * sizeof(float));
        memcpy(dn_tensor_data(one.x), dn_tensor_data(net.x) + b * T * I, (size_t)(len * I) * sizeof(float));
        memcpy(one.gy, net.gy + b * T * 2 * H, (size_t)(len * 2 * H) * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            memcpy(dn_tensor_data(one.h0) + r * H, dn_tensor_data(net.h0) + (r * N + b) * H, (size_t)H * sizeof(float));
            memcpy(dn_tensor_data(one.c0) + r * H, dn_tensor_data(net.c0) + (r * N + b) * H, (size_t)H * sizeof(float));
            memcpy(one.ghn + r * H, net.ghn + (r * N + b) * H, (size_t)H * sizeof(float));
            memcpy(one.gcn + r * H, net.gcn + (r * N + b) * H, (size_t)H * sizeof(float));
        }
        seq_result res;
        if (run_result(&one, &res)) {
            double worst = 0;
            for (int64_t t = 0; t < len; t++)
                for (int64_t j = 0; j < 2 * H; j++)
                    worst = t_worse(worst, fabs(res.y[t * 2 * H + j] - all.y[(b * T + t) * 2 * H + j]));
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < H; j++) {
                    worst = t_worse(worst, fabs(res.hn[r * H + j] - all.hn[(r * N + b) * H + j]));
                    worst = t_worse(worst, fabs(res.cn[r * H + j] - all.cn[(r * N + b) * H + j]));
                }
            for (int64_t i = 0; i < len * I; i++)
                worst = t_worse(worst, fabs(res.grads[0][i] - all.grads[0][b * T * I + i]));
            CHECK_MSG(worst <= 1e-6, "sequence %lld alone differs from its row of the batch by %g", (long long)b, worst);
        }
        result_free(&res);
        net_free(&one);
    }
    result_free(&all);
    net_free(&net);
}

/* ------------------------------------------------------------------ truncated BPTT */

/* Two chunks of 3 steps, the second starting from the first's final state copied into a fresh leaf, give
 * the same outputs as one run of 6 steps; the second chunk's backward stops at that leaf. */
static void test_seq_truncated_bptt(void)
{
    const int64_t N = 2, T = 6, I = 3, H = 4;
    seq_net net;
    if (!net_random(&net, DN_LSTM, 1, false, N, T, I, H, NULL, false, 80)) return;
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *y, *hn, *cn;
    CHECK_OK(net_forward(ctx, &net, &y, &hn, &cn));
    float full[2 * 6 * 4];
    if (y) dn_tensor_read(y, full);

    dn_tensor *h = NULL, *c = NULL; /* carried state: plain values, no history */
    float chunk[2 * 3 * 4];
    for (int part = 0; part < 2 && y; part++) {
        dn_ctx_reset(ctx);
        dn_tensor *xs = dn_contiguous(ctx, dn_slice(ctx, net.x, 1, part * 3, part * 3 + 3, 1));
        dn_tensor *yc, *hc, *cc;
        dn_status s = dn_rnn_sequence(ctx, DN_LSTM, xs, NULL, 1, false, net.params, h, c, 0, NULL, true, &yc, &hc, &cc);
        CHECK_MSG(s == DN_OK, "%s", dn_last_error());
        if (s) break;
        if (part == 1) {
            dn_tensor_read(yc, chunk);
            for (int64_t b = 0; b < N; b++)
                for (int64_t t = 0; t < 3; t++)
                    for (int64_t j = 0; j < H; j++)
                        CHECK_NEAR(chunk[(b * 3 + t) * H + j], full[(b * T + 3 + t) * H + j], 1e-6);
            dn_tensor_zero_grad(h);
            CHECK_OK(dn_backward(ctx, dn_sum(ctx, yc, 0, false)));
            float *gh = dn_tensor_grad(h);
            double norm = 0;
            for (int64_t i = 0; gh && i < N * H; i++) norm += fabs(gh[i]);
            CHECK_MSG(gh && norm > 0, "the gradient should reach the carried state's leaf");
        }
        /* the caller's side of truncated BPTT: copy hn's values into fresh leaves */
        int64_t shape[3] = {1, N, H};
        float buf[2 * 4];
        dn_tensor_free(h);
        dn_tensor_free(c);
        dn_tensor_read(hc, buf);
        h = heap_tensor(3, shape, buf, true);
        dn_tensor_read(cc, buf);
        c = heap_tensor(3, shape, buf, true);
    }
    dn_tensor_free(h);
    dn_tensor_free(c);
    dn_ctx_free(ctx);
    net_free(&net);
}

/* ------------------------------------------------------------------ errors */

#define EXPECT_ERR(call, status, text)                                                                      \
    do {                                                                                                    \
        dn_ctx_reset(ctx);                                                                                  \
        dn_status s_ = (call);                                                                              \
        CHECK_MSG(s_ == (status), "%s returned %s, expected %s (%s)", #call, dn_status_name(s_),            \
                  dn_status_name(status), dn_last_error());                                                 \
        CHECK_MSG(strstr(dn_last_error(), text), "message '%s' should mention '%s'", dn_last_error(), text); \
        CHECK(dn_ctx_status(ctx) == (status));                                                              \
    } while (0)

static void test_seq_errors(void)
{
    const int64_t lengths[] = {3, 2};
    seq_net net;
    if (!net_random(&net, DN_LSTM, 2, true, 2, 3, 2, 2, lengths, true, 5)) return;
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *y = net.x, *hn, *cn; /* not NULL: a failed call must clear it */
    dn_tensor *P[MAX_PARAMS];
    memcpy(P, net.params, sizeof P);

    /* h0 of the wrong shape: [4, 2, 2] expected */
    dn_tensor *bad_h0 = heap_tensor(3, (int64_t[]){2, 2, 2}, NULL, false);
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, bad_h0, net.c0, 0, NULL, false, &y, &hn, &cn),
               DN_ERR_SHAPE, "h0 must be [layers*dirs, N, H] = [4, 2, 2]");
    CHECK(y == NULL); /* results are cleared on error */
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, net.h0, bad_h0, 0, NULL, false, &y, &hn, &cn),
               DN_ERR_SHAPE, "c0");
    /* an LSTM's weights (4H tall) given to a GRU (3H) */
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_GRU, net.x, lengths, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn, NULL),
               DN_ERR_SHAPE, "weight_hh_l0 must be [3*H, H], got [8, 2]");
    /* lengths outside 1..T */
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, (int64_t[]){3, 4}, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn,
                               &cn),
               DN_ERR_ARG, "lengths[1] = 4 is outside 1..T = 1..3");
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, (int64_t[]){0, 2}, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn,
                               &cn),
               DN_ERR_ARG, "lengths[0] = 0");
    /* a parameter of the wrong shape, named as torch names it */
    dn_tensor *saved = P[4 * 3 + 0];
    P[4 * 3 + 0] = net.params[0]; /* layer 0's [8, 2] where weight_ih_l1_reverse [8, 4] belongs */
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn, &cn),
               DN_ERR_SHAPE, "weight_ih_l1_reverse must be [8, 4], got [8, 2]");
    P[4 * 3 + 0] = saved;
    saved = P[4 * 1 + 3];
    P[4 * 1 + 3] = net.params[0];
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn, &cn),
               DN_ERR_SHAPE, "bias_hh_l0_reverse must be [8]");
    P[4 * 1 + 3] = saved;
    saved = P[4 * 2 + 1];
    P[4 * 2 + 1] = NULL;
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn, &cn),
               DN_ERR_ARG, "weight_hh_l1 is NULL");
    P[4 * 2 + 1] = saved;
    /* c0 for a GRU */
    seq_net gru;
    if (net_random(&gru, DN_GRU, 1, false, 2, 3, 2, 2, NULL, true, 6)) {
        EXPECT_ERR(dn_rnn_sequence(ctx, DN_GRU, gru.x, NULL, 1, false, gru.params, gru.h0, bad_h0, 0, NULL, false, &y,
                                   &hn, NULL),
                   DN_ERR_SHAPE, "c0");
        dn_tensor *c0 = heap_tensor(3, (int64_t[]){1, 2, 2}, NULL, false);
        EXPECT_ERR(dn_rnn_sequence(ctx, DN_GRU, gru.x, NULL, 1, false, gru.params, gru.h0, c0, 0, NULL, false, &y, &hn,
                                   NULL),
                   DN_ERR_ARG, "c0 is only for LSTM");
        dn_tensor_free(c0);
        net_free(&gru);
    }
    /* x of the wrong rank, bad dropout, dropout without a generator, no layers */
    dn_tensor *x2 = heap_tensor(2, (int64_t[]){2, 3}, NULL, false);
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, x2, NULL, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn, &cn),
               DN_ERR_SHAPE, "x must be [N, T, I]");
    dn_tensor_free(x2);
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, NULL, NULL, 1.0f, NULL, true, &y, &hn, &cn),
               DN_ERR_ARG, "dropout must be in [0, 1)");
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, NULL, NULL, 0.5f, NULL, true, &y, &hn, &cn),
               DN_ERR_ARG, "random generator");
    EXPECT_ERR(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 0, true, P, NULL, NULL, 0, NULL, false, &y, &hn, &cn),
               DN_ERR_ARG, "layers must be");
    /* an earlier error is sticky: nothing runs until the context is reset */
    CHECK(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn, &cn) ==
          DN_ERR_ARG);
    dn_ctx_reset(ctx);
    CHECK_OK(dn_rnn_sequence(ctx, DN_LSTM, net.x, lengths, 2, true, P, NULL, NULL, 0, NULL, false, &y, &hn, &cn));
    dn_tensor_free(bad_h0);
    dn_ctx_free(ctx);
    net_free(&net);
}

/* ------------------------------------------------------------------ embedding and cells by hand */

static dn_tensor *ctx_tensor(dn_ctx *ctx, int ndim, const int64_t *shape, const float *data, bool grad)
{
    dn_tensor *t = NULL;
    if (dn_tensor_from(ctx, ndim, shape, data, &t)) return NULL;
    if (grad && dn_tensor_set_requires_grad(t, true)) return NULL;
    return t;
}

static void test_embedding(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *w = ctx_tensor(ctx, 2, (int64_t[]){3, 2}, (const float[]){0, 1, 10, 11, 20, 21}, true);
    dn_tensor *idx = ctx_tensor(ctx, 2, (int64_t[]){2, 2}, (const float[]){2, 0, 2, 2}, false);
    dn_tensor *y = dn_embedding(ctx, idx, w);
    CHECK_MSG(y && dn_tensor_ndim(y) == 3 && dn_tensor_dim(y, 2) == 2, "%s", dn_last_error());
    if (y) {
        const float want[] = {20, 21, 0, 1, 20, 21, 20, 21};
        for (int i = 0; i < 8; i++) CHECK_NEAR(dn_tensor_get(y, i), want[i], 0);
        CHECK_OK(dn_backward(ctx, dn_sum(ctx, y, 0, false)));
        const float dw[] = {1, 1, 0, 0, 3, 3}; /* row 2 was looked up three times */
        for (int i = 0; i < 6; i++) CHECK_NEAR(dn_tensor_grad(w)[i], dw[i], 0);
    }
    /* out of range, negative, and non-integer indices */
    const float bad[][1] = {{3}, {-1}, {1.5f}};
    for (int k = 0; k < 3; k++) {
        dn_ctx_reset(ctx);
        w = ctx_tensor(ctx, 2, (int64_t[]){3, 2}, (const float[]){0, 1, 10, 11, 20, 21}, true);
        idx = ctx_tensor(ctx, 1, (int64_t[]){1}, bad[k], false);
        CHECK(dn_embedding(ctx, idx, w) == NULL);
        CHECK(dn_ctx_status(ctx) == DN_ERR_ARG);
        CHECK_MSG(strstr(dn_last_error(), "embedding: index") && strstr(dn_last_error(), "[0, 3)"), "%s",
                  dn_last_error());
    }
    dn_ctx_free(ctx);
}

/* One GRU step with every number chosen so the result is checkable by hand: H = 1, W_hh = 0, b_hh = 0, so
 * r = σ(xw_r), z = σ(xw_z), n = tanh(xw_n), h' = (1 - z) n + z h.  xw = (0, 0, 0): z = 1/2, n = 0, h' = h/2. */
static void test_cells_by_hand(void)
{
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *xw = ctx_tensor(ctx, 2, (int64_t[]){2, 3}, (const float[]){0, 0, 0, 5, 5, 5}, true);
    dn_tensor *h = ctx_tensor(ctx, 2, (int64_t[]){2, 1}, (const float[]){0.8f, -0.4f}, true);
    dn_tensor *w = ctx_tensor(ctx, 2, (int64_t[]){3, 1}, (const float[]){0, 0, 0}, true);
    dn_tensor *mask = ctx_tensor(ctx, 1, (int64_t[]){2}, (const float[]){1, 0}, false);
    dn_tensor *y = dn_gru_cell(ctx, xw, h, w, NULL, mask); /* NULL b_hh: no recurrent bias */
    CHECK_MSG(y != NULL, "%s", dn_last_error());
    if (y) {
        CHECK_NEAR(dn_tensor_get(y, 0), 0.4, 1e-7);
        CHECK(dn_tensor_get(y, 1) == -0.4f); /* masked: h kept exactly */
        CHECK_OK(dn_backward(ctx, dn_sum(ctx, y, 0, false)));
        CHECK_NEAR(dn_tensor_grad(h)[1], 1.0, 0); /* masked row: dh = dh' */
        CHECK_NEAR(dn_tensor_grad(h)[0], 0.5, 1e-7); /* dh'/dh = z */
        for (int j = 3; j < 6; j++) CHECK(dn_tensor_grad(xw)[j] == 0.0f);
    }
    /* LSTM with a NULL mask (every row steps): xw = 0 gives i = f = o = 1/2, g = 0, c' = c/2, h' = tanh(c/2)/2 */
    dn_ctx_reset(ctx);
    xw = ctx_tensor(ctx, 2, (int64_t[]){1, 4}, (const float[]){0, 0, 0, 0}, true);
    h = ctx_tensor(ctx, 2, (int64_t[]){1, 1}, (const float[]){0.3f}, true);
    dn_tensor *c = ctx_tensor(ctx, 2, (int64_t[]){1, 1}, (const float[]){1.0f}, true);
    w = ctx_tensor(ctx, 2, (int64_t[]){4, 1}, (const float[]){0, 0, 0, 0}, true);
    y = dn_lstm_cell(ctx, xw, h, c, w, NULL, NULL);
    CHECK_MSG(y && dn_tensor_dim(y, 1) == 2, "%s", dn_last_error());
    if (y) {
        CHECK_NEAR(dn_tensor_get(y, 0), 0.5 * tanh(0.5), 1e-7);
        CHECK_NEAR(dn_tensor_get(y, 1), 0.5, 1e-7);
    }
    /* RNN relu: h' = relu(xw + h W_hhᵀ + b) */
    dn_ctx_reset(ctx);
    xw = ctx_tensor(ctx, 2, (int64_t[]){1, 2}, (const float[]){1, -1}, true);
    h = ctx_tensor(ctx, 2, (int64_t[]){1, 2}, (const float[]){0.5f, 0.25f}, true);
    w = ctx_tensor(ctx, 2, (int64_t[]){2, 2}, (const float[]){1, 0, 0, 1}, true);
    dn_tensor *b = ctx_tensor(ctx, 1, (int64_t[]){2}, (const float[]){0.1f, 0.2f}, true);
    y = dn_rnn_cell(ctx, xw, h, w, b, NULL, 1);
    CHECK_MSG(y != NULL, "%s", dn_last_error());
    if (y) {
        CHECK_NEAR(dn_tensor_get(y, 0), 1.6, 1e-6);
        CHECK_NEAR(dn_tensor_get(y, 1), 0.0, 0);
    }
    /* errors: a mask that is not 0/1, and a w_hh of the wrong shape */
    mask = ctx_tensor(ctx, 1, (int64_t[]){1}, (const float[]){0.5f}, false);
    CHECK(dn_rnn_cell(ctx, xw, h, w, b, mask, 0) == NULL);
    CHECK_MSG(strstr(dn_last_error(), "rnn_cell: mask must hold 0"), "%s", dn_last_error());
    dn_ctx_reset(ctx);
    xw = ctx_tensor(ctx, 2, (int64_t[]){1, 4}, (const float[]){0, 0, 0, 0}, true);
    w = ctx_tensor(ctx, 2, (int64_t[]){3, 1}, (const float[]){0, 0, 0}, true);
    h = ctx_tensor(ctx, 2, (int64_t[]){1, 1}, (const float[]){0.3f}, true);
    c = ctx_tensor(ctx, 2, (int64_t[]){1, 1}, (const float[]){1.0f}, true);
    CHECK(dn_lstm_cell(ctx, xw, h, c, w, NULL, NULL) == NULL);
    CHECK_MSG(strstr(dn_last_error(), "lstm_cell: w_hh must be [4*H, H] = [4, 1]"), "%s", dn_last_error());
    CHECK(dn_ctx_status(ctx) == DN_ERR_SHAPE);
    dn_ctx_free(ctx);
}

/* The registry gradient check draws each cell's mask at random (one dn_rng_u32 per element of every input,
 * in order, seeded 1000 + case index, mask bit = u32 & 1): every case must have both a step and a padding row,
 * or the masked path would go unchecked. */
static void test_cell_gradcheck_masks_mixed(void)
{
    static const char *const names[] = {"rnn_cell", "lstm_cell", "gru_cell"};
    for (int o = 0; o < 3; o++) {
        const dn_op *op = dn_op_find(names[o]);
        CHECK(op != NULL);
        for (int k = 0; op && k < op->n_cases; k++) {
            const dn_case *c = &op->cases[k];
            dn_rng r;
            dn_rng_seed(&r, 1000u + (uint64_t)k);
            for (int i = 0; i < c->n_in - 1; i++)
                for (int64_t j = 0; j < dn_shape_numel(c->in[i].ndim, c->in[i].shape); j++) dn_rng_u32(&r);
            const dn_input_spec *m = &c->in[c->n_in - 1];
            int ones = 0, rows = (int)m->shape[0];
            for (int j = 0; j < rows; j++) ones += (int)(dn_rng_u32(&r) & 1);
            CHECK_MSG(m->fill == DN_FILL_BINARY && ones > 0 && ones < rows, "%s case %d: mask has %d of %d rows set",
                      names[o], k, ones, rows);
        }
    }
}

void suite_rnn(void)
{
    RUN(test_seq_golden_rnn_tanh);
    RUN(test_seq_golden_rnn_relu);
    RUN(test_seq_golden_lstm);
    RUN(test_seq_golden_gru);
    RUN(test_seq_gradcheck);
    RUN(test_seq_padding_invariance);
    RUN(test_seq_batch_matches_single);
    RUN(test_seq_truncated_bptt);
    RUN(test_seq_errors);
    RUN(test_embedding);
    RUN(test_cells_by_hand);
    RUN(test_cell_gradcheck_masks_mixed);
}
