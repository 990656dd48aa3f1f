/* Shards and replicas (issue 17): K replicas that each compute a shard of a global batch, with their gradients
 * summed, compute what one context computes on the whole batch.  A fake replica group of K threads in this process
 * stands in for K MPI processes: its sum adds the K buffers in rank order behind a barrier (so every rank gets the
 * same bits), and a rank that makes fewer sum calls than the others makes them time out with an error instead of
 * hanging the suite.  DN_REPLICA_VERBOSE=1 prints each comparison's relative difference. */
#include "test.h"
#include "internal.h"
#include "nn/model.h" /* the model's buffers (batch-norm running statistics) */
#include "train.h"    /* dn_apply_loss */
#include "kernels/threads.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define MAX_K 4
#define STEPS 2      /* steps per run: the second checks that generators and running statistics stay in step */
#define LR 0.05f     /* each step applies params -= LR * summed gradient on every rank */
#define TOL 1e-5     /* relative, against the largest magnitude of the reference (see rel_err) */

/* ------------------------------------------------------------------ the fake replica group */

typedef struct group {
    int k;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;
    unsigned generation;
    double *slot[MAX_K];
    size_t n[MAX_K];
    bool failed; /* a barrier timed out (under mu) */
} group;

typedef struct rank_ctx {
    group *g;
    dn_replica rep;
    int calls;
} rank_ctx;

/* All k ranks meet here; false when the others did not come within 2 s (a rank made fewer sum calls). */
static bool barrier(group *g)
{
    pthread_mutex_lock(&g->mu);
    unsigned gen = g->generation;
    bool ok = true;
    if (++g->arrived == g->k) {
        g->arrived = 0;
        g->generation++;
        pthread_cond_broadcast(&g->cv);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        while (gen == g->generation && !g->failed)
            if (pthread_cond_timedwait(&g->cv, &g->mu, &until) == ETIMEDOUT) {
                g->failed = true;
                pthread_cond_broadcast(&g->cv);
            }
        ok = !g->failed;
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static dn_status fake_sum(void *user, double *buf, size_t n)
{
    rank_ctx *r = user;
    group *g = r->g;
    r->calls++;
    g->slot[r->rep.rank] = buf;
    g->n[r->rep.rank] = n;
    if (!barrier(g)) return dn_error(DN_ERR_STATE, "fake replica %d: the other ranks did not join sum call %d",
                                     r->rep.rank, r->calls);
    bool same = true; /* every rank sums as many numbers (each sees the same sizes, so all agree) */
    for (int q = 0; q < g->k; q++) same = same && g->n[q] == n;
    double *tmp = malloc((n ? n : 1) * sizeof *tmp);
    for (size_t i = 0; tmp && same && i < n; i++) {
        double s = 0;
        for (int q = 0; q < g->k; q++) s += g->slot[q][i];
        tmp[i] = s;
    }
    bool ok = barrier(g) && tmp && same;
    if (ok) memcpy(buf, tmp, n * sizeof *tmp);
    free(tmp);
    return ok ? DN_OK : dn_error(DN_ERR_STATE, "fake replica %d: sum call %d failed (sizes differ or a rank left)",
                                 r->rep.rank, r->calls);
}

/* ------------------------------------------------------------------ one rank's (or the reference's) run */

typedef struct scenario {
    const char *cfg;
    int64_t n;        /* global batch */
    int64_t ts;       /* targets per sample */
    const float *x;   /* n samples */
    const float *y;   /* n * ts labels */
} scenario;

typedef struct run_out {
    float loss[STEPS];             /* this rank's share of each step's loss (the whole loss for the reference) */
    float *grads[STEPS];           /* summed gradients (the reference's own) */
    float *params, *buffers;       /* after the last step */
    size_t n_params, n_buffers;
    int calls;                     /* sum calls of this rank */
    bool bad_local;                /* a NaN in this rank's own loss or gradients, or an empty shard's not 0 */
    dn_status status;
    char error[256];
} run_out;

typedef struct rank_job {
    const scenario *sc;
    int rank, k;        /* k 0: the reference (no replica) */
    bool replica_off;   /* a shard run with no replica (the unsynchronised control) */
    rank_ctx rc;
    run_out out;
} rank_job;

/* Real inputs are offset + scale * (values of about [-1, 1.6]); a test sets them and puts them back. */
static float x_offset = 0, x_scale = 1;

static int64_t shard_lo(int64_t n, int r, int k) { return (int64_t)r * n / k; }

static void fail_job(rank_job *j, dn_status s)
{
    j->out.status = s ? s : DN_ERR_STATE;
    snprintf(j->out.error, sizeof j->out.error, "%s", dn_last_error());
}

static void *rank_main(void *arg)
{
    rank_job *j = arg;
    const scenario *sc = j->sc;
    dn_model *m = NULL;
    dn_train_config cfg;
    dn_ctx *ctx = dn_ctx_new();
    dn_status s = dn_model_from_cfg(sc->cfg, "replica.cfg", &m, &cfg);
    if (s || !ctx) {
        fail_job(j, s);
        dn_model_free(m);
        dn_ctx_free(ctx);
        return NULL;
    }
    dn_model_set_training(m, true);
    int64_t lo = 0, hi = sc->n;
    if (j->k > 0) {
        lo = shard_lo(sc->n, j->rank, j->k);
        hi = shard_lo(sc->n, j->rank + 1, j->k);
    }
    const int64_t nb = hi - lo;
    int64_t shape[DN_MAX_DIMS];
    int nd = dn_model_input_shape(m, shape + 1) + 1;
    shape[0] = nb;
    int64_t per_sample = 1;
    for (int i = 1; i < nd; i++) per_sample *= shape[i];
    const size_t np = dn_model_param_count(m);
    double *acc = malloc((np ? np : 1) * sizeof *acc);
    for (int step = 0; step < STEPS && acc; step++) {
        dn_ctx_reset(ctx);
        if (j->k > 0 && !j->replica_off) {
            ctx->replica = &j->rc.rep;
            ctx->shard_offset = lo;
            ctx->global_batch = sc->n;
        }
        dn_tensor *x = NULL;
        s = dn_tensor_from(ctx, nd, shape, sc->x + lo * per_sample, &x);
        dn_tensor *out = s ? NULL : dn_model_forward(m, ctx, x);
        dn_tensor *loss = dn_apply_loss(ctx, &cfg, out, sc->y + lo * sc->ts, nb, sc->ts);
        if (!loss) {
            fail_job(j, dn_ctx_status(ctx));
            break;
        }
        j->out.loss[step] = loss->data[0];
        dn_model_zero_grad(m);
        s = dn_backward(ctx, loss);
        if (s) {
            fail_job(j, s);
            break;
        }
        float *g = dn_model_grads(m);
        /* this rank's own numbers: finite, and exactly 0 for an empty shard */
        if (!isfinite(j->out.loss[step]) || (nb == 0 && j->out.loss[step] != 0)) j->out.bad_local = true;
        for (size_t i = 0; i < np; i++)
            if (!isfinite(g[i]) || (nb == 0 && g[i] != 0)) j->out.bad_local = true;
        if (j->k > 0) { /* the all-reduce of the gradients */
            for (size_t i = 0; i < np; i++) acc[i] = g[i];
            s = j->rc.rep.sum(j->rc.rep.user, acc, np);
            if (s) {
                fail_job(j, s);
                break;
            }
            for (size_t i = 0; i < np; i++) g[i] = (float)acc[i];
        }
        j->out.grads[step] = malloc((np ? np : 1) * sizeof(float));
        if (j->out.grads[step]) memcpy(j->out.grads[step], g, np * sizeof(float));
        float *p = dn_model_params(m);
        for (size_t i = 0; i < np; i++) p[i] -= LR * g[i];
    }
    j->out.n_params = np;
    j->out.params = malloc((np ? np : 1) * sizeof(float));
    if (j->out.params) memcpy(j->out.params, dn_model_params(m), np * sizeof(float));
    j->out.n_buffers = m->n_bufdata;
    j->out.buffers = malloc((m->n_bufdata ? m->n_bufdata : 1) * sizeof(float));
    if (j->out.buffers && m->n_bufdata) memcpy(j->out.buffers, m->bufdata, m->n_bufdata * sizeof(float));
    j->out.calls = j->rc.calls;
    free(acc);
    dn_ctx_free(ctx);
    dn_model_free(m);
    return NULL;
}

static void free_out(run_out *o)
{
    for (int s = 0; s < STEPS; s++) free(o->grads[s]);
    free(o->params);
    free(o->buffers);
}

/* k ranks on threads (k = 0: the reference, on this thread).  jobs[0 .. max(k,1)). */
static void run_group(const scenario *sc, int k, bool replica_off, rank_job *jobs)
{
    static group g; /* one group at a time */
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    g.k = k;
    pthread_t th[MAX_K];
    for (int r = 0; r < (k ? k : 1); r++) {
        memset(&jobs[r], 0, sizeof jobs[r]);
        jobs[r].sc = sc;
        jobs[r].rank = r;
        jobs[r].k = k;
        jobs[r].replica_off = replica_off;
        jobs[r].rc.g = &g;
        jobs[r].rc.rep = (dn_replica){.rank = r, .size = k, .sum = fake_sum, .user = &jobs[r].rc};
    }
    if (!k) {
        rank_main(&jobs[0]);
    } else {
        for (int r = 0; r < k; r++) pthread_create(&th[r], NULL, rank_main, &jobs[r]);
        for (int r = 0; r < k; r++) pthread_join(th[r], NULL);
    }
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
}

/* |a - b| <= TOL * max(|b|) over the arrays (a relative error against the reference's scale, so a gradient element
 * that is nearly 0 through cancellation is not held to more digits than the sum that made it). */
static double rel_err(const float *a, const float *b, size_t n)
{
    double scale = 1e-30, worst = 0;
    /* a comparison, not fmax: gcc 12.2 for aarch64 fails (ICE) on an fmax reduction at -O3 */
    for (size_t i = 0; i < n; i++)
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    for (size_t i = 0; i < n; i++) worst = t_worse(worst, fabs((double)a[i] - (double)b[i]) / scale);
    return worst;
}

/* The worst relative difference of the K-rank run from the reference (loss, gradients, running statistics,
 * parameters), or -1 when a run failed (the message is reported). */
static double compare(const char *what, const rank_job *ref, const rank_job *jobs, int k)
{
    double worst = 0;
    for (int r = 0; r < (k ? k : 1); r++)
        if (jobs[r].out.status || !jobs[r].out.params) {
            t_fail(__FILE__, __LINE__, "%s: rank %d of %d failed: %s", what, r, k, jobs[r].out.error);
            return -1;
        }
    for (int step = 0; step < STEPS; step++) {
        float total = 0;
        for (int r = 0; r < (k ? k : 1); r++) total += jobs[r].out.loss[step];
        worst = t_worse(worst, rel_err(&total, &ref->out.loss[step], 1));
        for (int r = 0; r < (k ? k : 1); r++)
            worst = t_worse(worst, rel_err(jobs[r].out.grads[step], ref->out.grads[step], ref->out.n_params));
    }
    for (int r = 0; r < (k ? k : 1); r++) {
        worst = t_worse(worst, rel_err(jobs[r].out.params, ref->out.params, ref->out.n_params));
        if (ref->out.n_buffers)
            worst = t_worse(worst, rel_err(jobs[r].out.buffers, ref->out.buffers, ref->out.n_buffers));
        if (jobs[r].out.bad_local)
            t_fail(__FILE__, __LINE__, "%s: rank %d's own loss or gradient is not finite, or not 0 on an empty shard",
                   what, r);
        if (jobs[r].out.calls != jobs[0].out.calls)
            t_fail(__FILE__, __LINE__, "%s: rank %d made %d sum calls, rank 0 %d", what, r, jobs[r].out.calls,
                   jobs[0].out.calls);
    }
    return worst;
}

/* The scenario on K = 2 and 3 ranks for each batch size (divisible or not, and below K: an empty shard) equals the
 * reference within TOL; K = 1 equals it bit for bit. */
static void check_equivalence(const char *name, const char *cfg, int64_t per_sample, int64_t ts, int classes,
                              int vocab, const int64_t *sizes, int n_sizes)
{
    int64_t nmax = 0;
    for (int i = 0; i < n_sizes; i++) nmax = sizes[i] > nmax ? sizes[i] : nmax;
    float *x = malloc((size_t)(nmax * per_sample) * sizeof(float)), *y = malloc((size_t)(nmax * ts) * sizeof(float));
    if (!x || !y) {
        t_fail(__FILE__, __LINE__, "out of memory");
        free(x);
        free(y);
        return;
    }
    uint32_t h = 12345;
    for (int64_t i = 0; i < nmax * per_sample; i++) {
        h = h * 1664525u + 1013904223u;
        x[i] = vocab ? (float)((h >> 8) % (uint32_t)vocab)
                     : x_offset + x_scale * ((float)(h >> 8) / 16777216.0f * 2.0f - 1.0f + (float)(i % 7) * 0.1f);
    }
    for (int64_t i = 0; i < nmax * ts; i++) y[i] = (float)((i * 7 + i / 3) % classes);
    for (int si = 0; si < n_sizes; si++) {
        scenario sc = {cfg, sizes[si], ts, x, y};
        rank_job ref[1], one[1], jobs[MAX_K];
        run_group(&sc, 0, false, ref);
        if (ref[0].out.status) {
            t_fail(__FILE__, __LINE__, "%s N=%lld: the reference failed: %s", name, (long long)sc.n, ref[0].out.error);
            free_out(&ref[0].out);
            continue;
        }
        /* one replica: bit for bit the context without one */
        run_group(&sc, 1, false, one);
        if (!one[0].out.status && one[0].out.params) {
            bool same = !memcmp(one[0].out.params, ref[0].out.params, ref[0].out.n_params * sizeof(float)) &&
                        (!ref[0].out.n_buffers ||
                         !memcmp(one[0].out.buffers, ref[0].out.buffers, ref[0].out.n_buffers * sizeof(float)));
            for (int s = 0; s < STEPS; s++)
                same = same && one[0].out.loss[s] == ref[0].out.loss[s] &&
                       !memcmp(one[0].out.grads[s], ref[0].out.grads[s], ref[0].out.n_params * sizeof(float));
            CHECK_MSG(same, "%s N=%lld: one replica differs from no replica", name, (long long)sc.n);
        } else {
            t_fail(__FILE__, __LINE__, "%s N=%lld K=1 failed: %s", name, (long long)sc.n, one[0].out.error);
        }
        free_out(&one[0].out);
        for (int k = 2; k <= 3; k++) {
            run_group(&sc, k, false, jobs);
            double e = compare(name, ref, jobs, k);
            if (getenv("DN_REPLICA_VERBOSE")) printf("    %s N=%lld K=%d: %.3g\n", name, (long long)sc.n, k, e);
            CHECK_MSG(e >= 0 && e <= TOL, "%s N=%lld K=%d: relative difference %.3g from one process (tolerance %g)",
                      name, (long long)sc.n, k, e, TOL);
            for (int r = 0; r < k; r++) free_out(&jobs[r].out);
        }
        free_out(&ref[0].out);
    }
    free(x);
    free(y);
}

/* The same with the shards computed independently (no replica on their contexts, gradients still summed): far
 * from the whole batch's numbers, so the comparison above can fail and is not met by accident. */
static void check_unsynchronised_differs(const char *name, const char *cfg, int64_t per_sample, int classes)
{
    const int64_t n = 7;
    float x[7 * 128], y[7];
    if (per_sample > 128) {
        t_fail(__FILE__, __LINE__, "sample too large");
        return;
    }
    for (int64_t i = 0; i < n * per_sample; i++) x[i] = (float)((i * 37) % 19) / 9.0f - 1.0f;
    for (int64_t i = 0; i < n; i++) y[i] = (float)(i % classes);
    scenario sc = {cfg, n, 1, x, y};
    rank_job ref[1], jobs[MAX_K];
    run_group(&sc, 0, false, ref);
    run_group(&sc, 2, true, jobs);
    double e = compare(name, ref, jobs, 2);
    CHECK_MSG(e > 100 * TOL, "%s: unsynchronised shards differ by only %.3g", name, e);
    free_out(&ref[0].out);
    for (int r = 0; r < 2; r++) free_out(&jobs[r].out);
}

/* ------------------------------------------------------------------ the networks */

static const int64_t sizes[] = {6, 7, 2};

static const char mlp_cfg[] = "[net]\ninput = 12\nseed = 3\nloss = softmax_cross_entropy\n"
                              "[dense]\nunits = 16\nactivation = relu\n"
                              "[dropout]\np = 0.3\n"
                              "[dense]\nunits = 4\n";

static void replica_mlp_dropout(void)
{
    check_equivalence("mlp+dropout", mlp_cfg, 12, 1, 4, 0, sizes, 3);
    check_unsynchronised_differs("mlp+dropout", mlp_cfg, 12, 4);
}

/* mse on one output: the elementwise losses' mean */
static void replica_mlp_mse(void)
{
    static const char cfg[] = "[net]\ninput = 5\nseed = 4\nloss = mse_loss\n"
                              "[dense]\nunits = 8\nactivation = tanh\n"
                              "[dense]\nunits = 1\n";
    check_equivalence("mlp mse", cfg, 5, 1, 3, 0, sizes, 3);
}

static void replica_lenet(void)
{
    static const char cfg[] = "[net]\ninput = 1, 8, 8\nseed = 5\n"
                              "[convolutional]\nfilters = 4\nsize = 3\npad = same\nactivation = relu\n"
                              "[maxpool]\nsize = 2\n"
                              "[convolutional]\nfilters = 6\nsize = 3\n"
                              "[avgpool]\nsize = 2\n"
                              "[flatten]\n"
                              "[dense]\nunits = 10\nactivation = relu\n"
                              "[dense]\nunits = 3\n";
    check_equivalence("lenet", cfg, 64, 1, 3, 0, sizes, 3);
}

static const char bn_cfg[] = "[net]\ninput = 2, 6, 6\nseed = 6\n"
                             "[convolutional]\nfilters = 4\nsize = 3\npad = same\nbias = 0\n"
                             "[batchnorm]\n"
                             "[activation]\ntype = relu\n"
                             "[maxpool]\nsize = 2\n"
                             "[dropout2d]\np = 0.25\n"
                             "[dense]\nunits = 8\n"
                             "[batchnorm]\nmomentum = 0.3\n"
                             "[activation]\ntype = relu\n"
                             "[dense]\nunits = 3\n";

static void replica_bn_cnn(void)
{
    check_equivalence("bn cnn", bn_cfg, 72, 1, 3, 0, sizes, 3);
    check_unsynchronised_differs("bn cnn", bn_cfg, 72, 3);
}

/* Batch norm on [N, C] needs more than one value per channel in the whole batch: one sample per shard is enough,
 * one sample in all is an error on every rank (before any collective call, so none waits). */
static void replica_bn_global_count(void)
{
    static const char cfg[] = "[net]\ninput = 3\nseed = 19\n"
                              "[dense]\nunits = 4\n"
                              "[batchnorm]\n"
                              "[dense]\nunits = 2\n";
    static const int64_t two[] = {2};
    check_equivalence("bn one sample per shard", cfg, 3, 1, 2, 0, two, 1);
    float x[3] = {0.5f, -1, 2}, y[1] = {1};
    scenario sc = {cfg, 1, 1, x, y};
    rank_job jobs[MAX_K];
    run_group(&sc, 2, false, jobs);
    for (int r = 0; r < 2; r++) {
        CHECK_MSG(jobs[r].out.status == DN_ERR_SHAPE && strstr(jobs[r].out.error, "more than 1 value per channel"),
                  "rank %d: %s", r, jobs[r].out.status ? jobs[r].out.error : "no error");
        free_out(&jobs[r].out);
    }
}

/* channels with 64 values per sample: the batch-norm kernel's long-run path (the cnn above takes the short one) */
static void replica_bn_long_runs(void)
{
    static const char cfg[] = "[net]\ninput = 3, 8, 8\nseed = 7\n"
                              "[convolutional]\nfilters = 3\nsize = 1\n"
                              "[batchnorm]\n"
                              "[global_avgpool]\n"
                              "[flatten]\n"
                              "[dense]\nunits = 2\n";
    check_equivalence("bn long runs", cfg, 192, 1, 2, 0, sizes, 3);
    /* shards of 32768 values and more: the kernels share the channels between threads */
    static const char big[] = "[net]\ninput = 8, 16, 16\nseed = 18\n"
                              "[batchnorm]\n"
                              "[activation]\ntype = relu\n"
                              "[dense]\nunits = 2\n";
    static const int64_t n32[] = {32};
    const int old = dn_threads_requested();
    dn_set_threads(3);
    check_equivalence("bn threaded", big, 8 * 16 * 16, 1, 2, 0, n32, 1);
    dn_set_threads(old);
}

/* A channel whose mean is large against its spread (1000 and 0.01): the synchronised statistics keep the spread,
 * on both kernel paths (64 values per sample and channel, and 1).  (Not a convolution before the batch norm: its
 * weights' gradient, sum dy x with x near 1000 and sum dy = 0, cancels in the reference itself.) */
static void replica_bn_large_mean(void)
{
    /* ReLU after the batch norm: a following batch norm would remove an error in the first one's mean */
    static const char runs[] = "[net]\ninput = 2, 8, 8\nseed = 16\n"
                               "[batchnorm]\n"
                               "[activation]\ntype = relu\n"
                               "[dense]\nunits = 3\n";
    static const char cols[] = "[net]\ninput = 6\nseed = 17\n"
                               "[batchnorm]\n"
                               "[activation]\ntype = relu\n"
                               "[dense]\nunits = 3\n";
    x_offset = 1000;
    x_scale = 0.01f;
    check_equivalence("bn large mean, long runs", runs, 128, 1, 3, 0, sizes, 3);
    check_equivalence("bn large mean, short runs", cols, 6, 1, 3, 0, sizes, 3);
    x_offset = 0;
    x_scale = 1;
}

static void replica_lstm_gru(void)
{
    static const char lstm[] = "[net]\ninput = 4, 3\nseed = 8\n"
                               "[lstm]\nhidden = 5\nlayers = 2\ndropout = 0.4\nreturn_sequences = 0\n"
                               "[dense]\nunits = 3\n";
    static const char gru[] = "[net]\ninput = 4, 3\nseed = 9\n"
                              "[gru]\nhidden = 4\nlayers = 3\nbidirectional = 1\ndropout = 0.3\n"
                              "[flatten]\n"
                              "[dense]\nunits = 3\n";
    check_equivalence("lstm", lstm, 12, 1, 3, 0, sizes, 3);
    check_equivalence("gru", gru, 12, 1, 3, 0, sizes, 3);
}

/* a class per time step: the loss's mean runs over N * T terms */
static void replica_sequence_targets(void)
{
    static const char cfg[] = "[net]\ninput = 4\nseed = 10\n"
                              "[embedding]\nvocab = 5\nsize = 3\n"
                              "[rnn]\nhidden = 4\nlayers = 2\ndropout = 0.5\n"
                              "[dense]\nunits = 5\n";
    static const int64_t ns[] = {5, 1};
    check_equivalence("rnn per step", cfg, 4, 4, 5, 5, ns, 2); /* token ids below the vocabulary in x */
}

static dn_status no_sum(void *user, double *buf, size_t n)
{
    (void)user, (void)buf, (void)n;
    return dn_error(DN_ERR_STATE, "evaluation made a collective sum");
}

/* Evaluation (running statistics, no tape, batch norm folded) of an empty shard: an empty output, a loss of 0 and no
 * collective call. */
static void check_empty_eval(const char *name, const char *cfg_text)
{
    dn_model *m = NULL;
    dn_train_config cfg;
    dn_ctx *ctx = dn_ctx_new();
    if (dn_model_from_cfg(cfg_text, "replica.cfg", &m, &cfg) || !ctx) {
        t_fail(__FILE__, __LINE__, "%s: %s", name, dn_last_error());
        dn_model_free(m);
        dn_ctx_free(ctx);
        return;
    }
    dn_model_set_training(m, false);
    dn_ctx_set_grad(ctx, false);
    const dn_replica rep = {.rank = 1, .size = 2, .sum = no_sum};
    ctx->replica = &rep;
    ctx->shard_offset = 3;
    ctx->global_batch = 3;
    int64_t shape[DN_MAX_DIMS];
    int nd = dn_model_input_shape(m, shape + 1) + 1;
    shape[0] = 0;
    float none[1] = {0};
    dn_tensor *x = NULL, *out = NULL, *loss = NULL;
    if (!dn_tensor_from(ctx, nd, shape, none, &x)) out = dn_model_forward(m, ctx, x);
    if (out) loss = dn_apply_loss(ctx, &cfg, out, none, 0, 1);
    CHECK_MSG(out && dn_tensor_numel(out) == 0 && loss && loss->data[0] == 0.0f,
              "%s: evaluation of an empty shard: %s", name, loss ? "a loss not 0" : dn_last_error());
    dn_ctx_free(ctx);
    dn_model_free(m);
}

/* Every layer kind on an empty shard (and on the others): convolution with a fused ReLU, prelu, shortcut, route,
 * the pools, batch norm, channel dropout, flatten, softmax; embedding and recurrent layers (bidirectional, stacked,
 * stateful, with dropout). */
static void replica_layer_zoo(void)
{
    static const char conv[] = "[net]\ninput = 2, 6, 6\nseed = 11\nloss = cross_entropy_prob\n"
                               "[convolutional]\nfilters = 3\nsize = 3\npad = same\nactivation = relu\n" /* 0 */
                               "[activation]\ntype = prelu\nchannels = 3\n"                             /* 1 */
                               "[convolutional]\nfilters = 3\nsize = 3\npad = same\n"                  /* 2 */
                               "[shortcut]\nfrom = -3\nactivation = relu\n"                           /* 3 */
                               "[route]\nlayers = -1, -4\n"                                           /* 4 */
                               "[minpool]\nsize = 2\n"                                               /* 5 */
                               "[batchnorm]\n"
                               "[dropout2d]\np = 0.2\n"
                               "[maxpool]\nsize = 2\nstride = 1\n"
                               "[global_maxpool]\n"
                               "[flatten]\n"
                               "[dense]\nunits = 3\n"
                               "[activation]\ntype = softmax\n";
    static const char pool[] = "[net]\ninput = 1, 6, 6\nseed = 12\nloss = nll_loss\n"
                               "[convolutional]\nfilters = 2\nsize = 3\n"
                               "[avgpool]\nsize = 2\n"
                               "[global_avgpool]\n"
                               "[dense]\nunits = 3\n"
                               "[activation]\ntype = log_softmax\n";
    static const char seq[] = "[net]\ninput = 5\nseed = 13\n"
                              "[embedding]\nvocab = 6\nsize = 3\n"
                              "[lstm]\nhidden = 3\nlayers = 2\nbidirectional = 1\ndropout = 0.3\nstateful = 1\n"
                              "[rnn]\nhidden = 3\nnonlinearity = relu\nstateful = 1\n"
                              "[gru]\nhidden = 4\nreturn_sequences = 0\n"
                              "[dense]\nunits = 3\n";
    static const int64_t ns[] = {5, 1};
    check_equivalence("conv zoo", conv, 72, 1, 3, 0, ns, 2);
    check_equivalence("pool zoo", pool, 36, 1, 3, 0, ns, 2);
    check_equivalence("sequence zoo", seq, 5, 1, 3, 6, ns, 2);
    check_empty_eval("conv zoo", conv);
    check_empty_eval("pool zoo", pool);
    check_empty_eval("sequence zoo", seq);
    check_empty_eval("bn cnn", bn_cfg);
}

/* Every loss: a mean over the global batch, and 0 with a zero gradient on an empty shard. */
static void replica_every_loss(void)
{
    static const struct {
        const char *loss, *act;
    } losses[] = {
        {"softmax_cross_entropy", NULL}, {"nll_loss", "log_softmax"}, {"multi_margin_loss", NULL},
        {"hinge_loss", NULL}, {"mse_loss", NULL}, {"l1_loss", NULL}, {"huber_loss", NULL}, {"bce_loss", "sigmoid"},
        {"bce_with_logits", NULL}, {"cross_entropy_prob", "softmax"}, {"softmax_cross_entropy_soft", NULL},
    };
    static const int64_t ns[] = {5, 2};
    char cfg[512], name[64];
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
        snprintf(cfg, sizeof cfg,
                 "[net]\ninput = 4\nseed = 14\nloss = %s\n[dense]\nunits = 6\nactivation = tanh\n"
                 "[dense]\nunits = 3\n%s%s%s",
                 losses[i].loss, losses[i].act ? "[activation]\ntype = " : "", losses[i].act ? losses[i].act : "",
                 losses[i].act ? "\n" : "");
        snprintf(name, sizeof name, "%s", losses[i].loss);
        check_equivalence(name, cfg, 4, 1, 3, 0, ns, 2);
    }
    /* one output: the threshold targets (0/1, or -1/+1 for hinge) */
    static const char *one[] = {"hinge_loss", "bce_with_logits", "mse_loss"};
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        snprintf(cfg, sizeof cfg, "[net]\ninput = 4\nseed = 15\nloss = %s\n[dense]\nunits = 5\nactivation = relu\n"
                                  "[dense]\nunits = 1\n", one[i]);
        snprintf(name, sizeof name, "%s, one output", one[i]);
        check_equivalence(name, cfg, 4, 1, 2, 0, ns, 2);
    }
}

void suite_replica(void)
{
    RUN(replica_mlp_dropout);
    RUN(replica_mlp_mse);
    RUN(replica_lenet);
    RUN(replica_bn_cnn);
    RUN(replica_bn_long_runs);
    RUN(replica_bn_large_mean);
    RUN(replica_bn_global_count);
    RUN(replica_lstm_gru);
    RUN(replica_sequence_targets);
    RUN(replica_layer_zoo);
    RUN(replica_every_loss);
}
