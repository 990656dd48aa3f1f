/* Optimisers, gradient clipping and learning-rate schedules, checked against PyTorch 1.13's torch.optim
 * (goldens from tools/golden_optim.py) and by hand.
 *
 * Agreement criterion for goldens: |ours - torch| <= 1e-6 * max(1, |torch|) for every parameter after every
 * step, and for every epoch's learning rate. */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ golden files */

/* One golden file: `key=value` settings and rows `tag v1 v2 ...`, in file order (format in
 * tools/golden_optim.py). */
#define G_MAX_KV 32
#define G_MAX_ROWS 64
#define G_MAX_VALS 64
typedef struct golden {
    int n_kv;
    char key[G_MAX_KV][32];
    char val[G_MAX_KV][64];
    int n_rows;
    char tag[G_MAX_ROWS][16];
    int len[G_MAX_ROWS];
    float v[G_MAX_ROWS][G_MAX_VALS];
} golden;

/* Copies src into dst[size]; false if it does not fit. */
static bool copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) return false;
    memcpy(dst, src, n + 1);
    return true;
}

static bool golden_load(const char *name, golden *g)
{
    char path[512], line[4096];
    snprintf(path, sizeof path, "%s/%s", t_golden_dir(), name);
    FILE *f = fopen(path, "r");
    if (!f) {
        t_fail(__FILE__, __LINE__, "cannot open %s (run /usr/bin/python3 tools/golden_optim.py)", path);
        return false;
    }
    memset(g, 0, sizeof *g);
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') continue;
        char *eq = strchr(line, '=');
        char *sp = strchr(line, ' ');
        if (eq && (!sp || eq < sp)) {
            *eq = '\0';
            ok = g->n_kv < G_MAX_KV && copy_str(g->key[g->n_kv], sizeof g->key[0], line) &&
                 copy_str(g->val[g->n_kv], sizeof g->val[0], eq + 1);
            if (!ok) break;
            g->n_kv++;
            continue;
        }
        ok = sp != NULL && g->n_rows < G_MAX_ROWS;
        if (!ok) break;
        int r = g->n_rows++;
        *sp = '\0';
        ok = copy_str(g->tag[r], sizeof g->tag[0], line);
        if (!ok) break;
        char *p = sp + 1, *end;
        for (;;) {
            float x = strtof(p, &end);
            if (end == p) break;
            ok = g->len[r] < G_MAX_VALS;
            if (!ok) break;
            g->v[r][g->len[r]++] = x;
            p = end;
        }
    }
    fclose(f);
    if (!ok) t_fail(__FILE__, __LINE__, "%s: malformed or too large for the test's reader", path);
    return ok;
}

static const char *g_str(const golden *g, const char *key)
{
    for (int i = 0; i < g->n_kv; i++)
        if (strcmp(g->key[i], key) == 0) return g->val[i];
    return NULL;
}

/* The setting `key`, or `def` when the file lacks it. */
static double g_num(const golden *g, const char *key, double def)
{
    const char *s = g_str(g, key);
    return s ? strtod(s, NULL) : def;
}

/* The k-th row (0-based) with the given tag, or NULL. */
static const float *g_row(const golden *g, const char *tag, int k, int *len)
{
    for (int r = 0; r < g->n_rows; r++) {
        if (strcmp(g->tag[r], tag) == 0 && k-- == 0) {
            if (len) *len = g->len[r];
            return g->v[r];
        }
    }
    return NULL;
}

static bool close_rel(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1.0, fabs(b)); }

/* ------------------------------------------------------------------ optimisers against torch.optim */

static void check_optim_golden(const char *name)
{
    char file[128];
    snprintf(file, sizeof file, "optim_%s.txt", name);
    golden *g = malloc(sizeof *g);
    if (!g || !golden_load(file, g)) {
        free(g);
        return;
    }
    dn_optim_kind kind;
    CHECK_OK(dn_optim_kind_parse(g_str(g, "kind") ? g_str(g, "kind") : "?", &kind));
    dn_optim_config c;
    dn_optim_defaults(kind, &c);
    c.lr = (float)g_num(g, "lr", c.lr);
    c.momentum = (float)g_num(g, "momentum", c.momentum);
    c.dampening = (float)g_num(g, "dampening", c.dampening);
    c.nesterov = g_num(g, "nesterov", c.nesterov) != 0;
    c.beta1 = (float)g_num(g, "beta1", c.beta1);
    c.beta2 = (float)g_num(g, "beta2", c.beta2);
    c.eps = (float)g_num(g, "eps", c.eps);
    c.weight_decay = (float)g_num(g, "weight_decay", c.weight_decay);
    c.amsgrad = g_num(g, "amsgrad", c.amsgrad) != 0;
    c.alpha = (float)g_num(g, "alpha", c.alpha);
    c.centered = g_num(g, "centered", c.centered) != 0;
    c.lr_decay = (float)g_num(g, "lr_decay", c.lr_decay);
    c.initial_accumulator = (float)g_num(g, "initial_accumulator", c.initial_accumulator);

    int n = (int)g_num(g, "n", 0), steps = (int)g_num(g, "steps", 0), len = 0;
    const float *init = g_row(g, "init", 0, &len);
    CHECK_MSG(init && len == n && n > 0 && n <= G_MAX_VALS && steps > 0, "%s: bad header", file);
    if (!init || len != n || n <= 0 || n > G_MAX_VALS || steps <= 0) {
        free(g);
        return;
    }
    uint8_t mask[G_MAX_VALS];
    const float *m = g_row(g, "mask", 0, &len);
    for (int i = 0; i < n; i++) mask[i] = m && i < len ? (uint8_t)(m[i] != 0) : 1;

    dn_optim *o = NULL;
    CHECK_OK(dn_optim_new(&c, (size_t)n, m ? mask : NULL, &o));
    float p[G_MAX_VALS];
    memcpy(p, init, (size_t)n * sizeof(float));
    double worst = 0;
    for (int k = 0; o && k < steps; k++) {
        const float *grad = g_row(g, "grad", k, NULL), *want = g_row(g, "param", k, NULL);
        CHECK_MSG(grad && want, "%s: step %d missing", file, k + 1);
        if (!grad || !want) break;
        dn_optim_step(o, p, grad);
        for (int i = 0; i < n; i++) {
            worst = t_worse(worst, fabs(p[i] - want[i]) / fmax(1.0, fabs(want[i])));
            CHECK_MSG(close_rel(p[i], want[i]), "%s: step %d, parameter %d: %.9g, torch %.9g", file, k + 1, i,
                      p[i], want[i]);
        }
    }
    CHECK(dn_optim_get_step(o) == steps);
    if (getenv("DN_TEST_VERBOSE")) printf("    %-28s worst scaled error %.3g\n", name, worst);
    dn_optim_free(o);
    free(g);
}

static void test_optim_golden_sgd(void)
{
    check_optim_golden("sgd_plain");
    check_optim_golden("sgd_momentum");
    check_optim_golden("sgd_nesterov");
    check_optim_golden("sgd_dampening_wd");
}

static void test_optim_golden_adam(void)
{
    check_optim_golden("adam");
    check_optim_golden("adam_amsgrad");
    check_optim_golden("adam_wd");
    check_optim_golden("adamw");
    check_optim_golden("adamw_amsgrad");
}

static void test_optim_golden_rmsprop(void)
{
    check_optim_golden("rmsprop");
    check_optim_golden("rmsprop_centered_momentum");
    check_optim_golden("rmsprop_wd");
}

static void test_optim_golden_adagrad(void)
{
    check_optim_golden("adagrad");
    check_optim_golden("adagrad_decay");
}

/* ------------------------------------------------------------------ schedules against torch.optim.lr_scheduler */

static void check_sched_golden(const char *name)
{
    char file[128];
    snprintf(file, sizeof file, "sched_%s.txt", name);
    golden *g = malloc(sizeof *g);
    if (!g || !golden_load(file, g)) {
        free(g);
        return;
    }
    dn_sched_kind kind;
    CHECK_OK(dn_sched_kind_parse(g_str(g, "kind") ? g_str(g, "kind") : "?", &kind));
    dn_schedule s;
    dn_schedule_defaults(kind, (float)g_num(g, "base_lr", 0.1), &s);
    s.step_size = (int)g_num(g, "step_size", s.step_size);
    s.gamma = (float)g_num(g, "gamma", s.gamma);
    s.t_max = (int)g_num(g, "t_max", s.t_max);
    s.eta_min = (float)g_num(g, "eta_min", s.eta_min);
    s.warmup_epochs = (int)g_num(g, "warmup_epochs", s.warmup_epochs);
    s.warmup_start_factor = (float)g_num(g, "warmup_start_factor", s.warmup_start_factor);
    s.factor = (float)g_num(g, "factor", s.factor);
    s.threshold = (float)g_num(g, "threshold", s.threshold);
    s.min_lr = (float)g_num(g, "min_lr", s.min_lr);
    s.patience = (int)g_num(g, "patience", s.patience);
    s.cooldown = (int)g_num(g, "cooldown", s.cooldown);

    int epochs = (int)g_num(g, "epochs", 0), n_lr = 0, n_metric = 0;
    const float *lr = g_row(g, "lr", 0, &n_lr);
    const float *metric = g_row(g, "metric", 0, &n_metric);
    CHECK_MSG(lr && n_lr == epochs && epochs > 0, "%s: bad file", file);
    CHECK_MSG(kind != DN_SCHED_PLATEAU || (metric && n_metric == epochs), "%s: plateau needs metrics", file);
    for (int e = 0; lr && e < n_lr; e++) {
        float got = dn_schedule_lr(&s, e);
        CHECK_MSG(close_rel(got, lr[e]), "%s: epoch %d: lr %.9g, torch %.9g", file, e, got, lr[e]);
        if (metric && e < n_metric) dn_schedule_observe(&s, metric[e]);
    }
    free(g);
}

static void test_schedule_golden(void)
{
    check_sched_golden("constant");
    check_sched_golden("step");
    check_sched_golden("exponential");
    check_sched_golden("cosine");
    check_sched_golden("warmup_cosine");
    check_sched_golden("warmup_step");
    check_sched_golden("plateau");
}

/* ------------------------------------------------------------------ by hand */

static void test_clip_grad_norm(void)
{
    /* ||(3, 4)|| = 5 > 1: scaled by 1 / (5 + 1e-6); the norm before clipping is returned */
    float g[2] = {3, 4};
    CHECK_NEAR(dn_clip_grad_norm(g, 2, 1.0f), 5.0, 1e-6);
    CHECK_NEAR(g[0], 3.0 / (5.0 + 1e-6), 1e-7);
    CHECK_NEAR(g[1], 4.0 / (5.0 + 1e-6), 1e-7);

    /* ||(1, -2, 2, 0, -4)|| = 5 over the whole buffer; max 2.5 halves every element (to 1e-6) */
    float h[5] = {1, -2, 2, 0, -4};
    CHECK_NEAR(dn_clip_grad_norm(h, 5, 2.5f), 5.0, 1e-6);
    const float want[5] = {0.5f, -1, 1, 0, -2};
    for (int i = 0; i < 5; i++) CHECK_NEAR(h[i], want[i], 1e-6);

    /* below the bound: unchanged */
    float k[2] = {0.3f, 0.4f};
    CHECK_NEAR(dn_clip_grad_norm(k, 2, 1.0f), 0.5, 1e-7);
    CHECK(k[0] == 0.3f && k[1] == 0.4f);

    /* a negative bound leaves the gradient alone */
    float q[2] = {3, 4};
    CHECK_NEAR(dn_clip_grad_norm(q, 2, -1.0f), 5.0, 1e-6);
    CHECK(q[0] == 3 && q[1] == 4);

    /* by value: clamp to [-clip, clip] */
    float v[4] = {-3, -0.5f, 0.25f, 7};
    dn_clip_grad_value(v, 4, 1.0f);
    CHECK(v[0] == -1 && v[1] == -0.5f && v[2] == 0.25f && v[3] == 1);
}

static void expect_config_error(dn_optim_config c, size_t n, const char *text)
{
    dn_optim *o = (dn_optim *)&o; /* anything but NULL: a failed call must set it to NULL */
    dn_status s = dn_optim_new(&c, n, NULL, &o);
    CHECK_MSG(s == DN_ERR_ARG, "expected DN_ERR_ARG for '%s', got %s", text, dn_status_name(s));
    CHECK(o == NULL);
    CHECK_MSG(strstr(dn_last_error(), text) != NULL, "message '%s' lacks '%s'", dn_last_error(), text);
    if (s == DN_OK) dn_optim_free(o);
}

static void test_optim_config_errors(void)
{
    dn_optim_config c;
    dn_optim_defaults(DN_SGD, &c);
    c.lr = -0.1f;
    expect_config_error(c, 4, "Invalid learning rate");
    c.lr = NAN;
    expect_config_error(c, 4, "Invalid learning rate");
    dn_optim_defaults(DN_SGD, &c);
    c.momentum = -0.5f;
    expect_config_error(c, 4, "Invalid momentum value");
    dn_optim_defaults(DN_SGD, &c);
    c.weight_decay = -1;
    expect_config_error(c, 4, "Invalid weight_decay value");
    dn_optim_defaults(DN_SGD, &c);
    c.nesterov = true;
    expect_config_error(c, 4, "Nesterov momentum requires a momentum and zero dampening");
    c.momentum = 0.9f;
    c.dampening = 0.1f;
    expect_config_error(c, 4, "Nesterov momentum requires a momentum and zero dampening");
    dn_optim_defaults(DN_SGD, &c);
    expect_config_error(c, 0, "empty parameter list");

    dn_optim_defaults(DN_ADAM, &c);
    c.beta1 = 1.0f;
    expect_config_error(c, 4, "Invalid beta parameter at index 0");
    dn_optim_defaults(DN_ADAMW, &c);
    c.beta2 = -0.1f;
    expect_config_error(c, 4, "Invalid beta parameter at index 1");
    dn_optim_defaults(DN_ADAM, &c);
    c.eps = -1e-8f;
    expect_config_error(c, 4, "Invalid epsilon value");

    dn_optim_defaults(DN_RMSPROP, &c);
    c.alpha = -0.1f;
    expect_config_error(c, 4, "Invalid alpha value");
    dn_optim_defaults(DN_RMSPROP, &c);
    c.momentum = -1;
    expect_config_error(c, 4, "Invalid momentum value");

    dn_optim_defaults(DN_ADAGRAD, &c);
    c.lr_decay = -1;
    expect_config_error(c, 4, "Invalid lr_decay value");
    dn_optim_defaults(DN_ADAGRAD, &c);
    c.initial_accumulator = -1;
    expect_config_error(c, 4, "Invalid initial_accumulator_value");

    dn_optim_defaults(DN_SGD, &c);
    c.kind = (dn_optim_kind)42;
    expect_config_error(c, 4, "unknown optimiser kind");

    dn_optim *o = NULL;
    CHECK(dn_optim_new(NULL, 4, NULL, &o) == DN_ERR_ARG && o == NULL);
    dn_optim_defaults(DN_SGD, &c);
    CHECK(dn_optim_new(&c, 4, NULL, NULL) == DN_ERR_ARG);

    /* settings that other kinds ignore are not checked (torch checks only its own) */
    dn_optim_defaults(DN_SGD, &c);
    c.beta1 = 5;
    c.eps = -1;
    CHECK_OK(dn_optim_new(&c, 4, NULL, &o));
    dn_optim_free(o);
}

/* With zero gradients only weight decay moves a parameter: elements the mask excludes must not move at all,
 * the others must shrink towards 0. */
static void test_optim_decay_mask(void)
{
    const dn_optim_kind kinds[] = {DN_SGD, DN_ADAM, DN_ADAMW, DN_RMSPROP, DN_ADAGRAD};
    const uint8_t mask[6] = {1, 0, 1, 0, 0, 1};
    const float init[6] = {1.5f, -2, 0.5f, 3, -1, -0.75f}, zero[6] = {0};
    for (int k = 0; k < 5; k++) {
        dn_optim_config c;
        dn_optim_defaults(kinds[k], &c);
        c.lr = 0.1f;
        c.weight_decay = 0.5f;
        dn_optim *o = NULL;
        CHECK_OK(dn_optim_new(&c, 6, mask, &o));
        if (!o) continue;
        float p[6];
        memcpy(p, init, sizeof p);
        for (int s = 0; s < 5; s++) dn_optim_step(o, p, zero);
        for (int i = 0; i < 6; i++) {
            if (mask[i])
                CHECK_MSG(fabsf(p[i]) < fabsf(init[i]), "%s: element %d did not decay (%g -> %g)",
                          dn_optim_kind_name(kinds[k]), i, init[i], p[i]);
            else
                CHECK_MSG(p[i] == init[i], "%s: masked element %d moved (%g -> %g)", dn_optim_kind_name(kinds[k]),
                          i, init[i], p[i]);
        }
        dn_optim_free(o);
    }
    /* SGD by hand: p = p - lr * wd * p = 0.95 p per step */
    dn_optim_config c;
    dn_optim_defaults(DN_SGD, &c);
    c.lr = 0.1f;
    c.weight_decay = 0.5f;
    dn_optim *o = NULL;
    CHECK_OK(dn_optim_new(&c, 6, mask, &o));
    float p[6];
    memcpy(p, init, sizeof p);
    dn_optim_step(o, p, zero);
    CHECK_NEAR(p[0], 1.5 * 0.95, 1e-6);
    CHECK(p[1] == -2);
    dn_optim_free(o);
}

/* f(x) = 1/2 sum_i a_i (x_i - c_i)^2, grad_i = a_i (x_i - c_i): every optimiser must bring f near 0. */
static void test_optim_quadratic(void)
{
    struct { dn_optim_kind kind; float lr; float momentum; bool nesterov; bool amsgrad; bool centered; } runs[] = {
        {DN_SGD, 0.1f, 0, false, false, false},      {DN_SGD, 0.05f, 0.9f, false, false, false},
        {DN_SGD, 0.05f, 0.9f, true, false, false},   {DN_ADAM, 0.05f, 0, false, false, false},
        {DN_ADAM, 0.05f, 0, false, true, false},     {DN_ADAMW, 0.05f, 0, false, false, false},
        {DN_RMSPROP, 0.01f, 0, false, false, false}, {DN_RMSPROP, 0.005f, 0.5f, false, false, true},
        {DN_ADAGRAD, 0.5f, 0, false, false, false},
    };
    const float a[4] = {1, 3, 0.5f, 2}, target[4] = {1, -2, 0.5f, 3};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        dn_optim_config c;
        dn_optim_defaults(runs[r].kind, &c);
        c.lr = runs[r].lr;
        c.momentum = runs[r].momentum;
        c.nesterov = runs[r].nesterov;
        c.amsgrad = runs[r].amsgrad;
        c.centered = runs[r].centered;
        c.weight_decay = 0; /* AdamW's default decay would pull the minimum away from target */
        dn_optim *o = NULL;
        CHECK_OK(dn_optim_new(&c, 4, NULL, &o));
        if (!o) continue;
        float x[4] = {0, 0, 0, 0}, g[4];
        double f0 = 0, f = 0;
        for (int i = 0; i < 4; i++) f0 += 0.5 * a[i] * (x[i] - target[i]) * (x[i] - target[i]);
        for (int s = 0; s < 1000; s++) {
            for (int i = 0; i < 4; i++) g[i] = a[i] * (x[i] - target[i]);
            dn_optim_step(o, x, g);
        }
        for (int i = 0; i < 4; i++) f += 0.5 * a[i] * (x[i] - target[i]) * (x[i] - target[i]);
        CHECK_MSG(f < 1e-4 * f0, "run %zu (%s): f went from %g to %g", r, dn_optim_kind_name(runs[r].kind), f0, f);
        dn_optim_free(o);
    }
}

/* The state a checkpoint saves (named buffers + step) is enough to resume: 10 + 10 steps through a fresh
 * optimiser equal 20 uninterrupted ones, bit for bit. */
static void test_optim_state_resume(void)
{
    struct { dn_optim_kind kind; float momentum; bool amsgrad; bool centered; int n_state; const char *names; } cases[] = {
        {DN_SGD, 0, false, false, 0, ""},
        {DN_SGD, 0.9f, false, false, 1, "momentum_buffer"},
        {DN_ADAM, 0, false, false, 2, "exp_avg exp_avg_sq"},
        {DN_ADAMW, 0, true, false, 3, "exp_avg exp_avg_sq max_exp_avg_sq"},
        {DN_RMSPROP, 0.9f, false, true, 3, "square_avg momentum_buffer grad_avg"},
        {DN_ADAGRAD, 0, false, false, 1, "sum"},
    };
    enum { N = 5 };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        dn_optim_config c;
        dn_optim_defaults(cases[k].kind, &c);
        c.lr = 0.05f;
        c.momentum = cases[k].momentum;
        c.amsgrad = cases[k].amsgrad;
        c.centered = cases[k].centered;
        c.initial_accumulator = cases[k].kind == DN_ADAGRAD ? 0.25f : 0;
        dn_optim *a = NULL, *b = NULL;
        CHECK_OK(dn_optim_new(&c, N, NULL, &a));
        CHECK_OK(dn_optim_new(&c, N, NULL, &b));
        if (!a || !b) {
            dn_optim_free(a);
            dn_optim_free(b);
            continue;
        }
        CHECK(dn_optim_state_count(a) == cases[k].n_state);
        char names[128] = "";
        for (int i = 0; i < dn_optim_state_count(a); i++) {
            if (i) strcat(names, " ");
            strcat(names, dn_optim_state_name(a, i));
        }
        CHECK_MSG(strcmp(names, cases[k].names) == 0, "%s: state names '%s', expected '%s'",
                  dn_optim_kind_name(cases[k].kind), names, cases[k].names);
        CHECK(dn_optim_state_name(a, cases[k].n_state) == NULL && dn_optim_state_data(a, -1) == NULL);
        if (cases[k].kind == DN_ADAGRAD) CHECK(dn_optim_state_data(a, 0)[3] == 0.25f);

        float pa[N] = {0.5f, -1, 2, 0.1f, -0.3f}, pb[N], g[N];
        dn_rng r;
        dn_rng_seed(&r, 7);
        for (int s = 0; s < 20; s++) {
            for (int i = 0; i < N; i++) g[i] = dn_rng_normal(&r);
            if (s == 10) {
                /* "save" a, "load" into b */
                memcpy(pb, pa, sizeof pa);
                for (int i = 0; i < dn_optim_state_count(a); i++)
                    memcpy(dn_optim_state_data(b, i), dn_optim_state_data(a, i), N * sizeof(float));
                dn_optim_set_step(b, dn_optim_get_step(a));
            }
            dn_optim_step(a, pa, g);
            if (s >= 10) dn_optim_step(b, pb, g);
        }
        CHECK(dn_optim_get_step(a) == 20 && dn_optim_get_step(b) == 20);
        CHECK_MSG(memcmp(pa, pb, sizeof pa) == 0, "%s: resumed run differs", dn_optim_kind_name(cases[k].kind));
        dn_optim_free(a);
        dn_optim_free(b);
    }

    dn_optim_config c;
    dn_optim_defaults(DN_ADAM, &c);
    dn_optim *o = NULL;
    CHECK_OK(dn_optim_new(&c, 3, NULL, &o));
    CHECK(dn_optim_get_lr(o) == 1e-3f);
    dn_optim_set_lr(o, 0.25f);
    CHECK(dn_optim_get_lr(o) == 0.25f);
    dn_optim_free(o);
    dn_optim_free(NULL);
}

static int alloc_count;
static void *count_alloc(size_t n, void *u) { (void)u; alloc_count++; return malloc(n); }
static void *count_realloc(void *p, size_t n, void *u) { (void)u; alloc_count++; return realloc(p, n); }
static void count_free(void *p, void *u) { (void)u; free(p); }

/* dn_optim_step runs inside the training loop, which must not allocate. */
static void test_optim_step_no_alloc(void)
{
    dn_allocator counting = {count_alloc, count_realloc, count_free, NULL};
    dn_set_allocator(&counting);
    const dn_optim_kind kinds[] = {DN_SGD, DN_ADAM, DN_ADAMW, DN_RMSPROP, DN_ADAGRAD};
    float p[8] = {0}, g[8] = {1, -1, 2, -2, 0.5f, 0, 3, -3};
    uint8_t mask[8] = {1, 1, 0, 1, 1, 0, 1, 1};
    for (int k = 0; k < 5; k++) {
        dn_optim_config c;
        dn_optim_defaults(kinds[k], &c);
        c.momentum = kinds[k] == DN_SGD || kinds[k] == DN_RMSPROP ? 0.9f : 0;
        c.amsgrad = true;
        c.centered = true;
        c.weight_decay = 0.1f;
        dn_optim *o = NULL;
        CHECK_OK(dn_optim_new(&c, 8, mask, &o));
        int before = alloc_count;
        for (int s = 0; s < 3; s++) dn_optim_step(o, p, g);
        CHECK_MSG(alloc_count == before, "%s: dn_optim_step allocated", dn_optim_kind_name(kinds[k]));
        dn_optim_free(o);
    }
    dn_set_allocator(NULL);
}

static void test_optim_names(void)
{
    const char *names[] = {"sgd", "adam", "adamw", "rmsprop", "adagrad"};
    for (int i = 0; i < 5; i++) {
        dn_optim_kind k = DN_ADAGRAD;
        CHECK_OK(dn_optim_kind_parse(names[i], &k));
        CHECK((int)k == i);
        CHECK(strcmp(dn_optim_kind_name(k), names[i]) == 0);
    }
    dn_optim_kind k;
    CHECK(dn_optim_kind_parse("adamax", &k) == DN_ERR_ARG);
    CHECK(strstr(dn_last_error(), "adamax") != NULL);

    const char *sched[] = {"constant", "step", "exponential", "cosine", "plateau"};
    for (int i = 0; i < 5; i++) {
        dn_sched_kind s = DN_SCHED_PLATEAU;
        CHECK_OK(dn_sched_kind_parse(sched[i], &s));
        CHECK((int)s == i);
    }
    dn_sched_kind s;
    CHECK(dn_sched_kind_parse("linear", &s) == DN_ERR_ARG);
    CHECK(strstr(dn_last_error(), "linear") != NULL);
}

/* Plateau details the golden does not reach: the min_lr floor, and warm-up scaling the plateau's lr. */
static void test_schedule_plateau_edges(void)
{
    dn_schedule s;
    dn_schedule_defaults(DN_SCHED_PLATEAU, 1.0f, &s);
    s.patience = 0;
    s.factor = 0.5f;
    s.min_lr = 0.3f;
    CHECK(dn_schedule_lr(&s, 0) == 1.0f);
    dn_schedule_observe(&s, 1.0f); /* first metric: an improvement over +inf */
    CHECK(dn_schedule_lr(&s, 1) == 1.0f);
    dn_schedule_observe(&s, 1.0f); /* not better: patience 0 -> reduce */
    CHECK(dn_schedule_lr(&s, 2) == 0.5f);
    dn_schedule_observe(&s, 2.0f);
    CHECK_NEAR(dn_schedule_lr(&s, 3), 0.3, 1e-7); /* 0.25 floored at min_lr */
    dn_schedule_observe(&s, NAN);                  /* NaN never improves */
    CHECK_NEAR(dn_schedule_lr(&s, 4), 0.3, 1e-7);

    dn_schedule_defaults(DN_SCHED_PLATEAU, 0.9f, &s);
    s.warmup_epochs = 3;
    s.warmup_start_factor = 1.0f / 3.0f;
    CHECK_NEAR(dn_schedule_lr(&s, 0), 0.3, 1e-7);
    CHECK_NEAR(dn_schedule_lr(&s, 1), 0.5, 1e-7);
    CHECK_NEAR(dn_schedule_lr(&s, 3), 0.9, 1e-7);

    /* a warm-up on a constant schedule, and negative epochs clamp to 0 */
    dn_schedule_defaults(DN_SCHED_CONSTANT, 0.2f, &s);
    s.warmup_epochs = 4;
    s.warmup_start_factor = 0.0f;
    CHECK_NEAR(dn_schedule_lr(&s, -3), 0.0, 1e-9);
    CHECK_NEAR(dn_schedule_lr(&s, 2), 0.1, 1e-7);
    CHECK_NEAR(dn_schedule_lr(&s, 9), 0.2, 1e-7);
}

void suite_optim(void)
{
    RUN(test_optim_golden_sgd);
    RUN(test_optim_golden_adam);
    RUN(test_optim_golden_rmsprop);
    RUN(test_optim_golden_adagrad);
    RUN(test_schedule_golden);
    RUN(test_clip_grad_norm);
    RUN(test_optim_config_errors);
    RUN(test_optim_decay_mask);
    RUN(test_optim_quadratic);
    RUN(test_optim_state_resume);
    RUN(test_optim_step_no_alloc);
    RUN(test_optim_names);
    RUN(test_schedule_plateau_edges);
}
