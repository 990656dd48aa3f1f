/* Writes the binary seed files of the fuzz corpora: small checkpoints made by dn_model_save and dn_trainer_save,
 * and IDX files in the input layout of fuzz_idx (a mode byte, then the file or a length-prefixed pair).  The text
 * seeds (cfg, CSV, text) are plain files kept in fuzz/corpus/ by hand.
 *     make -f fuzz/Makefile corpus          (runs build-fuzz/make_corpus fuzz/corpus) */
#include "dendrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *root;

static void die(const char *what, dn_status s)
{
    fprintf(stderr, "make_corpus: %s: %s: %s\n", what, dn_status_name(s), dn_last_error());
    exit(1);
}

static void path_of(char *buf, size_t size, const char *target, const char *name)
{
    snprintf(buf, size, "%s/%s/%s", root, target, name);
}

static void write_bytes(const char *target, const char *name, const unsigned char *b, size_t n)
{
    char path[512];
    path_of(path, sizeof path, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* A checkpoint of the model the cfg describes, every parameter set to a small distinct value. */
static void save_cfg_model(const char *name, const char *cfg, const dn_vocab *vocab)
{
    dn_model *m;
    dn_status s = dn_model_from_cfg(cfg, name, &m, NULL);
    if (s) die(name, s);
    if (vocab) dn_model_set_vocab(m, vocab);
    float *p = dn_model_params(m);
    for (size_t i = 0; i < dn_model_param_count(m); i++) p[i] = 0.125f * (float)(i % 7) - 0.25f;
    char path[512];
    path_of(path, sizeof path, "checkpoint", name);
    if ((s = dn_model_save(m, path))) die(name, s);
    dn_model_free(m);
}

static void checkpoints(void)
{
    /* the shape of fuzz_common.h's fixed model, so dn_model_load_params succeeds on it */
    save_cfg_model("dense.ckpt",
                   "[net]\ninput = 4\n[dense]\nunits = 3\n[activation]\ntype = relu\n[dense]\nunits = 2\n", NULL);
    save_cfg_model("conv_bn.ckpt",
                   "[net]\ninput = 2, 4, 4\nloss = mse_loss\n[convolutional]\nfilters = 2\nsize = 3\npad = same\n"
                   "bias = 0\n[batchnorm]\n[maxpool]\nsize = 2\n[shortcut]\nfrom = -1\n[route]\nlayers = -1, -2\n"
                   "[global_avgpool]\n[dense]\nunits = 1\n",
                   NULL);
    dn_vocab v;
    dn_vocab_build((const unsigned char *)"abcd\n", 5, &v);
    save_cfg_model("gru_text.ckpt",
                   "[net]\ninput = 6\noptimizer = adam\n[embedding]\nvocab = 5\nsize = 2\n[gru]\nhidden = 2\n"
                   "bidirectional = 1\n[dense]\nunits = 5\n",
                   &v);

    /* a model built in C: no cfg in the file, so only dn_model_load_params takes it */
    dn_model *m;
    dn_status s = dn_model_new(1, (int64_t[]){4}, 1, &m);
    if (!s) s = dn_model_add_dense(m, 3, DN_INIT_DEFAULT, true);
    if (!s) s = dn_model_add_activation(m, "relu", NULL);
    if (!s) s = dn_model_add_dense(m, 2, DN_INIT_DEFAULT, true);
    char path[512];
    path_of(path, sizeof path, "checkpoint", "no_cfg.ckpt");
    if (!s) s = dn_model_save(m, path);
    if (s) die("no_cfg.ckpt", s);
    dn_model_free(m);

    /* a training checkpoint of the same model (optimiser state, best weights, training metadata), as
     * fuzz_common.h's trainer resumes it: Adam, batch 4, 8 samples of 4 features, validated on the same */
    dn_train_config tc;
    s = dn_model_from_cfg("[net]\ninput = 4\nbatch = 4\nepochs = 2\noptimizer = adam\n[dense]\nunits = 3\n"
                          "[activation]\ntype = relu\n[dense]\nunits = 2\n",
                          "trainer", &m, &tc);
    if (s) die("trainer", s);
    float x[32], y[8];
    for (int i = 0; i < 32; i++) x[i] = 0.25f * (float)(i % 5);
    for (int i = 0; i < 8; i++) y[i] = (float)(i % 2);
    dn_dataset d = {.n = 8, .ndim = 1, .shape = {4}, .x = x, .y = y, .n_classes = 2};
    dn_trainer *t;
    dn_epoch_stats st;
    if ((s = dn_trainer_new(m, &tc, &d, &d, &t)) || (s = dn_trainer_epoch(t, &st))) die("trainer", s);
    path_of(path, sizeof path, "checkpoint", "trainer.ckpt");
    if ((s = dn_trainer_save(t, path))) die("trainer.ckpt", s);
    dn_trainer_free(t);
    dn_model_free(m);
}

/* An IDX header: 00 00 type ndim, then big-endian u32 dimensions. */
static size_t idx_header(unsigned char *b, int type, int ndim, const unsigned *dims)
{
    b[0] = b[1] = 0;
    b[2] = (unsigned char)type;
    b[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (unsigned char)(dims[i] >> (24 - 8 * k));
    return 4 + 4 * (size_t)ndim;
}

/* fuzz_idx input: mode byte 0 + the images file, or mode byte 1 + u16 length + images + labels. */
static void idx_seed(const char *name, const unsigned char *img, size_t n_img, const unsigned char *lab, size_t n_lab)
{
    unsigned char buf[1024];
    size_t n = 0;
    buf[n++] = lab ? 1 : 0;
    if (lab) {
        buf[n++] = (unsigned char)(n_img & 0xFF);
        buf[n++] = (unsigned char)(n_img >> 8);
    }
    memcpy(buf + n, img, n_img);
    n += n_img;
    if (lab) {
        memcpy(buf + n, lab, n_lab);
        n += n_lab;
    }
    write_bytes("idx", name, buf, n);
}

static void idx_files(void)
{
    unsigned char img[512], lab[64];
    /* 3 images of 2x3 bytes with labels 0, 2, 1 */
    size_t h = idx_header(img, 0x08, 3, (unsigned[]){3, 2, 3});
    for (int i = 0; i < 18; i++) img[h + i] = (unsigned char)(i * 14);
    size_t hl = idx_header(lab, 0x08, 1, (unsigned[]){3});
    lab[hl] = 0, lab[hl + 1] = 2, lab[hl + 2] = 1;
    idx_seed("ubyte_pair", img, h + 18, lab, hl + 3);
    idx_seed("ubyte_images", img, h + 18, NULL, 0);

    /* 2 samples of 3 big-endian floats, int labels */
    h = idx_header(img, 0x0D, 2, (unsigned[]){2, 3});
    const unsigned char f[6][4] = {{0x3f, 0x80, 0, 0}, {0xbf, 0, 0, 0}, {0x40, 0x49, 0x0f, 0xdb},
                                   {0, 0, 0, 0},       {0x42, 0xc8, 0, 0}, {0xc1, 0x20, 0, 0}};
    memcpy(img + h, f, sizeof f);
    hl = idx_header(lab, 0x0C, 1, (unsigned[]){2});
    memcpy(lab + hl, (const unsigned char[]){0, 0, 0, 1, 0, 0, 0, 0}, 8);
    idx_seed("float_int_pair", img, h + sizeof f, lab, hl + 8);

    /* rank-1 signed bytes, shorts and doubles */
    h = idx_header(img, 0x09, 1, (unsigned[]){4});
    memcpy(img + h, (const unsigned char[]){0x80, 0x7f, 0, 0xff}, 4);
    idx_seed("sbyte_rank1", img, h + 4, NULL, 0);
    h = idx_header(img, 0x0B, 2, (unsigned[]){2, 2});
    memcpy(img + h, (const unsigned char[]){0x80, 0, 0x7f, 0xff, 0, 1, 0xff, 0xff}, 8);
    idx_seed("short", img, h + 8, NULL, 0);
    h = idx_header(img, 0x0E, 1, (unsigned[]){2});
    memcpy(img + h, (const unsigned char[]){0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0}, 16);
    hl = idx_header(lab, 0x0B, 1, (unsigned[]){2});
    memcpy(lab + hl, (const unsigned char[]){0, 3, 0, 0}, 4);
    idx_seed("double_short_pair", img, h + 16, lab, hl + 4);
}

int main(int argc, char **argv)
{
    root = argc > 1 ? argv[1] : "fuzz/corpus";
    checkpoints();
    idx_files();
    printf("make_corpus: seeds written under %s/checkpoint and %s/idx\n", root, root);
    return 0;
}
