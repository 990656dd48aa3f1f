/* The gradient all-reduce of a model, in buckets started while backward still runs (dist.h explains the scheme;
 * docs/distributed.md the bucket size). */
#include "dist/dist.h"

#include <stdlib.h>
#include <time.h>

/* 1 MiB of floats.  Big enough that a bucket's fixed cost (a few microseconds of latency on shared memory, tens on
 * a network) is small next to moving it (~100 us at 10 GB/s), small enough that a network of a few MB (the CNN and
 * LeNet examples) has several buckets and the first starts while most of backward is still to run.  DN_BUCKET_KB
 * in the environment chooses another size (tests use a small one to exercise many buckets). */
#define BUCKET_BYTES_DEFAULT (1u << 20)

struct grad_sync {
    dn_model *m;
    size_t n;           /* floats in the flat gradient buffer */
    size_t bucket;      /* floats per bucket */
    int n_params;
    int *order;         /* parameter indices by ascending offset */
    const dn_node **last; /* per parameter (model index): the node that writes its gradient last, NULL if none */
    bool *final;        /* per parameter (model index) */
    int tail;           /* order[tail..] are final (n_params: none yet) */
    size_t started;     /* [started, n) has been handed to the sums */
    float *shadow;      /* tests: each bucket's values as it starts (grad_sync_set_shadow) */
    int early;          /* buckets started during backward this step */
};

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Sorts parameter indices by their offset in the flat buffer (insertion sort: a model has tens of parameters, and
 * qsort would need a global for the model). */
static void sort_by_offset(const dn_model *m, int *order, int n)
{
    for (int i = 1; i < n; i++) {
        int v = order[i], j = i;
        for (; j > 0 && m->tensors[order[j - 1]].offset > m->tensors[v].offset; j--) order[j] = order[j - 1];
        order[j] = v;
    }
}

dn_status grad_sync_new(dn_model *m, grad_sync **out)
{
    *out = NULL;
    grad_sync *g = dn_calloc(1, sizeof *g);
    if (!g) return DN_ERR_NOMEM;
    g->m = m;
    g->n = dn_model_param_count(m);
    g->n_params = m->n_tensors;
    size_t np = (size_t)(g->n_params > 0 ? g->n_params : 1);
    g->order = dn_alloc(np * sizeof *g->order);
    g->last = dn_calloc(np, sizeof *g->last);
    g->final = dn_calloc(np, sizeof *g->final);
    if (!g->order || !g->last || !g->final) {
        grad_sync_free(g);
        return DN_ERR_NOMEM;
    }
    for (int i = 0; i < g->n_params; i++) g->order[i] = i;
    sort_by_offset(m, g->order, g->n_params);
    size_t bytes = BUCKET_BYTES_DEFAULT;
    const char *env = getenv("DN_BUCKET_KB");
    if (env && atol(env) > 0) bytes = (size_t)atol(env) * 1024u;
    g->bucket = bytes / sizeof(float);
    if (g->bucket < 1) g->bucket = 1;
    /* at most 512 buckets in flight (the transport holds 1024 requests) */
    if (g->n / g->bucket > 512) g->bucket = g->n / 512 + 1;
    *out = g;
    return DN_OK;
}

void grad_sync_free(grad_sync *g)
{
    if (!g) return;
    dn_free(g->order);
    dn_free((void *)g->last);
    dn_free(g->final);
    dn_free(g);
}

size_t grad_sync_bucket_floats(const grad_sync *g) { return g->bucket; }

/* The model index of a parameter tensor, or -1 for any other tensor. */
static int param_index(const grad_sync *g, const dn_tensor *t)
{
    const dn_param *p = g->m->tensors;
    if (t->node || !g->n_params || (const char *)t < (const char *)p ||
        (const char *)t >= (const char *)(p + g->n_params))
        return -1;
    size_t i = (size_t)((const char *)t - (const char *)p) / sizeof *p;
    return &p[i].t == t ? (int)i : -1;
}

void grad_sync_begin(grad_sync *g, const dn_ctx *ctx)
{
    for (int i = 0; i < g->n_params; i++) {
        g->last[i] = NULL;
        g->final[i] = false;
    }
    /* newest first: the last assignment is the oldest node that takes the parameter, which backward visits last */
    for (const dn_node *node = ctx->tape; node; node = node->prev)
        for (int k = 0; k < node->n_in; k++) {
            int p = param_index(g, node->in[k]);
            if (p >= 0) g->last[p] = node;
        }
    g->tail = g->n_params;
    g->started = g->n;
    g->early = 0;
}

void grad_sync_set_shadow(grad_sync *g, float *shadow) { g->shadow = shadow; }
int grad_sync_early_buckets(const grad_sync *g) { return g->early; }

/* Hands [from, g->started) to the sums in whole buckets counted from the end of the buffer (the layout is the
 * same on every process whatever the timing); all of it when `all`. */
static void start_buckets(grad_sync *g, size_t from, bool all)
{
    float *grads = dn_model_grads(g->m);
    while (g->started > 0) {
        /* the fixed layout: bucket k is [n - (k+1)B, n - kB) */
        size_t k = (g->n - g->started) / g->bucket;
        size_t lo = g->n > (k + 1) * g->bucket ? g->n - (k + 1) * g->bucket : 0;
        if (!all && lo < from) break;
        if (g->shadow) memcpy(g->shadow + lo, grads + lo, (g->started - lo) * sizeof(float));
        if (!all) g->early++;
        /* an error here is MPI's, which aborts the job by default; the final wait reports any other */
        (void)dist_isum_float(grads + lo, g->started - lo);
        g->started = lo;
    }
}

void grad_sync_node(void *user, const dn_node *node)
{
    grad_sync *g = user;
    bool any = false;
    for (int k = 0; k < node->n_in; k++) {
        int p = param_index(g, node->in[k]);
        if (p >= 0 && g->last[p] == node && !g->final[p]) {
            g->final[p] = true;
            any = true;
        }
    }
    if (any) {
        while (g->tail > 0 && g->final[g->order[g->tail - 1]]) g->tail--;
        size_t from = g->tail < g->n_params ? g->m->tensors[g->order[g->tail]].offset : g->n;
        start_buckets(g, from, false);
    }
    dist_progress();
}

dn_status grad_sync_finish(grad_sync *g, double *wait_seconds)
{
    start_buckets(g, 0, true);
    double t0 = seconds();
    dn_status s = dist_wait();
    *wait_seconds += seconds() - t0;
    return s;
}

/* FNV-1a, 64 bits, over the bytes of the parameters and then the buffers. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t dn_model_fingerprint(const dn_model *m)
{
    if (!m) return 0;
    uint64_t h = fnv(0xcbf29ce484222325ULL, m->params, m->n_params * sizeof(float));
    return fnv(h, m->bufdata, m->n_bufdata * sizeof(float));
}
