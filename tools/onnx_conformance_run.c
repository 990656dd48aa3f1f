/* onnx_conformance_run — the dendrite side of tools/onnx_conformance.py (docs/onnx.md, "Conformance"): for each case
 * directory named on stdin (one per line) it imports DIR/model.onnx, runs DIR/input.bin through the model in
 * evaluation mode and compares with DIR/expected.bin.  One line per case on stdout, flushed before the next case
 * starts (so a crash names its case):
 *   CASE<TAB>pass<TAB>worst          within |got - want| <= 1e-6 + 1e-5 |want| everywhere (worst: the largest
 *                                    |got - want| / (1e-6 + 1e-5 |want|), at most 1)
 *   CASE<TAB>refused<TAB>message     dn_model_import_onnx refused the model (its message)
 *   CASE<TAB>wrong<TAB>what          imported, but the run failed or gave another shape or other values
 * The .bin files: int32 rank, int64 dims[rank], float32 data, little-endian (as the script writes them).
 * Public header only, like the command-line tool. */
#include "dendrite.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct blob {
    int ndim;
    int64_t dims[DN_MAX_DIMS];
    int64_t numel;
    float *data;
} blob;

static bool read_blob(const char *path, blob *b)
{
    memset(b, 0, sizeof *b);
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    int32_t nd = 0;
    bool ok = fread(&nd, sizeof nd, 1, f) == 1 && nd >= 0 && nd <= DN_MAX_DIMS;
    b->ndim = ok ? nd : 0;
    b->numel = 1;
    for (int i = 0; ok && i < b->ndim; i++) {
        ok = fread(&b->dims[i], sizeof b->dims[i], 1, f) == 1 && b->dims[i] >= 0 && b->dims[i] <= (1 << 24);
        b->numel *= ok ? b->dims[i] : 1;
        ok = ok && b->numel <= (1 << 26);
    }
    if (ok) ok = (b->data = malloc((size_t)(b->numel ? b->numel : 1) * sizeof *b->data)) != NULL;
    if (ok) ok = fread(b->data, sizeof *b->data, (size_t)b->numel, f) == (size_t)b->numel;
    fclose(f);
    if (!ok) {
        free(b->data);
        b->data = NULL;
    }
    return ok;
}

/* One case: its result line. */
static void run_case(const char *dir)
{
    char path[4200], what[512] = "";
    const char *name = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    dn_model *m = NULL;
    if (dn_model_import_onnx(path, &m, NULL)) {
        /* one line: the message without its newlines */
        char msg[2048];
        snprintf(msg, sizeof msg, "%s", dn_last_error()[0] ? dn_last_error() : "(no message)");
        for (char *p = msg; *p; p++)
            if (*p == '\n' || *p == '\t') *p = ' ';
        printf("%s\trefused\t%s\n", name, msg);
        return;
    }
    /* imported: the input and the expected output must be there (float tensors) */
    blob x, want;
    snprintf(path, sizeof path, "%s/input.bin", dir);
    bool ok_x = read_blob(path, &x);
    snprintf(path, sizeof path, "%s/expected.bin", dir);
    bool ok_y = read_blob(path, &want);
    if (!ok_x || !ok_y) {
        printf("%s\twrong\timported, but the case has no float input.bin or expected.bin\n", name);
        free(x.data);
        free(want.data);
        dn_model_free(m);
        return;
    }
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *t = NULL;
    double worst = 0;
    if (!ctx || dn_tensor_new(ctx, x.ndim, x.dims, &t)) {
        snprintf(what, sizeof what, "cannot make the input tensor: %s", dn_last_error());
    } else {
        memcpy(dn_tensor_data(t), x.data, (size_t)x.numel * sizeof *x.data);
        dn_ctx_set_grad(ctx, false);
        dn_model_set_training(m, false);
        dn_tensor *y = dn_model_forward(m, ctx, t);
        char shape[128];
        bool same = y && dn_tensor_ndim(y) == want.ndim;
        for (int i = 0; same && i < want.ndim; i++) same = dn_tensor_dim(y, i) == want.dims[i];
        if (!y) snprintf(what, sizeof what, "imported, but the forward pass fails: %s", dn_last_error());
        else if (!same)
            snprintf(what, sizeof what, "output shape %s, expected rank %d with %lld values",
                     dn_tensor_shape_str(y, shape, sizeof shape), want.ndim, (long long)want.numel);
        else {
            const float *got = dn_tensor_data(y);
            for (int64_t i = 0; i < want.numel && !what[0]; i++) {
                const double g = got[i], w = want.data[i], bound = 1e-6 + 1e-5 * fabs(w);
                if (g == w) continue; /* equal infinities too */
                const double r = fabs(g - w) / bound;
                if (!(r <= 1))
                    snprintf(what, sizeof what, "element %lld is %.9g, expected %.9g", (long long)i, g, w);
                else if (r > worst)
                    worst = r;
            }
        }
    }
    if (what[0]) printf("%s\twrong\t%s\n", name, what);
    else printf("%s\tpass\t%.3g\n", name, worst);
    dn_ctx_free(ctx);
    dn_model_free(m);
    free(x.data);
    free(want.data);
}

int main(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: onnx_conformance_run < CASE_DIRS (tools/onnx_conformance.py runs it)\n");
        return 2;
    }
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        run_case(line);
        fflush(stdout);
    }
    return 0;
}
