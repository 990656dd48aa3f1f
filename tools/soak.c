/* Soak test: trains the MNIST MLP (examples/mnist_mlp.cfg) for N epochs (default 20) and prints the resident
 * memory after each epoch, so a leak or a growing arena shows as a rising column.
 *   make build/soak && build/soak [epochs] [data/mnist] */
#include "dendrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    int epochs = argc > 1 ? atoi(argv[1]) : 20;
    const char *dir = argc > 2 ? argv[2] : "data/mnist";
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/train-images-idx3-ubyte", dir);
    snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte", dir);
    dn_model *m = NULL;
    dn_train_config c;
    dn_dataset *d = NULL;
    dn_trainer *t = NULL;
    if (dn_model_load_cfg("examples/mnist_mlp.cfg", &m, &c) || dn_dataset_load_idx_compact(a, b, 1.0f / 255.0f, &d)) {
        fprintf(stderr, "soak: %s\n", dn_last_error());
        return 1;
    }
    d->ndim = 1;
    d->shape[0] = 784;
    c.epochs = epochs;
    c.patience = 0;
    if (dn_trainer_new(m, &c, d, NULL, &t)) {
        fprintf(stderr, "soak: %s\n", dn_last_error());
        return 1;
    }
    printf("epoch  rss_kb  train_loss\n");
    printf("%5d  %6ld  -\n", 0, rss_kb());
    long first = 0, last = 0;
    while (!dn_trainer_finished(t)) {
        dn_epoch_stats st;
        if (dn_trainer_epoch(t, &st)) {
            fprintf(stderr, "soak: %s\n", dn_last_error());
            return 1;
        }
        last = rss_kb();
        if (st.epoch == 1) first = last;
        printf("%5d  %6ld  %.4f\n", st.epoch, last, st.train_loss);
        fflush(stdout);
    }
    printf("growth after epoch 1: %ld kB\n", last - first);
    dn_trainer_free(t);
    dn_dataset_free(d);
    dn_model_free(m);
    return 0;
}
