/* Sequence models end to end: text data, a character model that learns, generation, stateful truncated BPTT,
 * and the errors a user meets (binary or empty text, sequences longer than configured). */
#include "test.h"

#include <stdlib.h>
#include <unistd.h>

#define path t_tmp_path

static void write_file(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (f) {
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* A small, very regular text: a model must learn it quickly. */
static void make_corpus(const char *p)
{
    FILE *f = fopen(p, "wb");
    if (!f) return;
    for (int i = 0; i < 300; i++) fputs(i % 3 ? "the cat sat on the mat. " : "a dog ran to the log. ", f);
    fclose(f);
}

static void text_errors(void)
{
    dn_dataset *d = NULL;
    dn_vocab v;
    write_file(path("empty.txt"), "", 0);
    CHECK(dn_dataset_load_text(path("empty.txt"), 8, NULL, &v, &d) == DN_ERR_FORMAT && strstr(dn_last_error(), "empty"));
    unsigned char bin[64];
    for (int i = 0; i < 64; i++) bin[i] = (unsigned char)(i * 37);
    write_file(path("bin.dat"), bin, sizeof bin);
    CHECK(dn_dataset_load_text(path("bin.dat"), 8, NULL, &v, &d) == DN_ERR_FORMAT && strstr(dn_last_error(), "binary"));
    write_file(path("short.txt"), "abc", 3);
    CHECK(dn_dataset_load_text(path("short.txt"), 8, NULL, &v, &d) == DN_ERR_FORMAT && strstr(dn_last_error(), "too few"));
    CHECK(dn_dataset_load_text(path("missing.txt"), 8, NULL, &v, &d) == DN_ERR_IO);
    /* windows and targets */
    write_file(path("abc.txt"), "abcabcabca", 10);
    CHECK_OK(dn_dataset_load_text(path("abc.txt"), 3, NULL, &v, &d));
    if (d) {
        CHECK(v.size == 3 && d->n == 3 && d->target_size == 3 && d->n_classes == 3);
        CHECK(d->x[0] == 0 && d->x[1] == 1 && d->y[0] == 1 && d->y[2] == 0); /* "abc" -> "bca" */
        CHECK_OK(dn_dataset_streams(d, 2));
        CHECK(d->n == 2);
    }
    dn_dataset_free(d);
    /* a vocabulary from elsewhere refuses unknown bytes */
    dn_vocab_build((const unsigned char *)"ab", 2, &v);
    CHECK(dn_dataset_load_text(path("abc.txt"), 3, &v, NULL, &d) == DN_ERR_FORMAT && strstr(dn_last_error(), "0x63"));
}

static const char *char_cfg = "[net]\ninput = 16\nbatch = 16\nepochs = 4\nseed = 4\noptimizer = adam\nlr = 0.01\n"
                              "clip_norm = 5\n[data]\nformat = text\n[embedding]\nvocab = 32\nsize = 16\n"
                              "[%s]\nhidden = 48\n%s[dense]\nunits = 32\n";

static double train_text(const char *kind, const char *extra, bool shuffle, dn_model **out)
{
    char cfg[1024];
    snprintf(cfg, sizeof cfg, char_cfg, kind, extra);
    dn_model *m = NULL;
    dn_train_config c;
    dn_dataset *d = NULL;
    dn_vocab v;
    dn_trainer *t = NULL;
    double loss = -1;
    if (dn_model_from_cfg(cfg, "char.cfg", &m, &c)) return -1;
    c.shuffle = shuffle;
    if (dn_dataset_load_text(path("corpus.txt"), 16, NULL, &v, &d) == DN_OK) {
        dn_model_set_vocab(m, &v);
        if (!shuffle && dn_dataset_streams(d, c.batch)) loss = -2;
        if (loss != -2 && dn_trainer_new(m, &c, d, NULL, &t) == DN_OK) {
            dn_epoch_stats st;
            dn_status s = DN_OK;
            while (!s && !dn_trainer_finished(t)) s = dn_trainer_epoch(t, &st);
            if (!s) loss = st.train_loss;
            else printf("    %s\n", dn_last_error());
        }
    }
    dn_trainer_free(t);
    dn_dataset_free(d);
    if (out) *out = m;
    else dn_model_free(m);
    return loss;
}

static void char_models_learn(void)
{
    make_corpus(path("corpus.txt"));
    /* 14 distinct characters: ln 14 = 2.64 nats is knowing nothing; the text is nearly periodic */
    double lstm = train_text("lstm", "", true, NULL);
    double gru = train_text("gru", "layers = 2\ndropout = 0.1\n", true, NULL);
    double rnn = train_text("rnn", "", true, NULL);
    CHECK_MSG(lstm > 0 && lstm < 0.6, "LSTM train loss %.3f", lstm);
    CHECK_MSG(gru > 0 && gru < 0.6, "GRU train loss %.3f", gru);
    CHECK_MSG(rnn > 0 && rnn < 1.2, "RNN train loss %.3f", rnn);
}

static void stateful_truncated_bptt(void)
{
    make_corpus(path("corpus.txt"));
    dn_model *m = NULL;
    double loss = train_text("lstm", "stateful = 1\n", false, &m);
    CHECK_MSG(loss > 0 && loss < 0.6, "stateful LSTM train loss %.3f", loss);
    if (!m) return;
    /* a sequence longer than the configured 16 steps is refused; shorter ones are fine */
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x;
    CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){1, 17}, &x));
    CHECK(dn_model_forward(m, ctx, x) == NULL && strstr(dn_last_error(), "longer than"));
    dn_ctx_reset(ctx);
    CHECK_OK(dn_tensor_new(ctx, 2, (int64_t[]){2, 5}, &x));
    dn_tensor *y = dn_model_forward(m, ctx, x);
    CHECK(y && dn_tensor_dim(y, 1) == 5 && dn_tensor_dim(y, 2) == 32);
    dn_ctx_free(ctx);
    dn_model_free(m);
}

static int run(const char *args, char *out, size_t size)
{
    char cmd[1024];
    const char *bin = getenv("DN_BUILD");
    const char *pre = getenv("DN_RUN_PREFIX"); /* e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu" for a cross build */
    snprintf(cmd, sizeof cmd, "%s%s%s/dendrite %s 2>&1", pre ? pre : "", pre ? " " : "", bin ? bin : "build", args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void train_and_generate_cli(void)
{
    make_corpus(path("corpus.txt"));
    char cfg[1024], args[1024];
    static char out[1 << 14];
    snprintf(cfg, sizeof cfg, char_cfg, "lstm", "");
    write_file(path("char.cfg"), cfg, strlen(cfg));
    snprintf(args, sizeof args, "train %s --data %s --epochs 3 --quiet --save %s", path("char.cfg"), path("corpus.txt"),
             path("char.ckpt"));
    int rc = run(args, out, sizeof out);
    CHECK_MSG(rc == 0 && strstr(out, "\"epochs\": 3"), "train exited %d: %s", rc, out);
    snprintf(args, sizeof args, "generate %s --prime \"the \" --length 40 --seed 3", path("char.ckpt"));
    CHECK(run(args, out, sizeof out) == 0 && strncmp(out, "the ", 4) == 0 && strlen(out) == 45);
    /* same seed, same text */
    static char again[1 << 14];
    CHECK(run(args, again, sizeof again) == 0 && strcmp(out, again) == 0);
    snprintf(args, sizeof args, "generate %s --prime \"Z\"", path("char.ckpt"));
    CHECK(run(args, out, sizeof out) == 1 && strstr(out, "does not occur"));
    snprintf(args, sizeof args, "generate %s --temperature 0", path("char.ckpt"));
    CHECK(run(args, out, sizeof out) == 2);
    snprintf(args, sizeof args, "train %s --data %s --quiet", path("char.cfg"), path("bin.dat"));
    unsigned char bin[64];
    for (int i = 0; i < 64; i++) bin[i] = (unsigned char)(i * 37);
    write_file(path("bin.dat"), bin, sizeof bin);
    CHECK(run(args, out, sizeof out) == 1 && strstr(out, "binary"));
    snprintf(args, sizeof args, "info %s", path("char.ckpt"));
    CHECK(run(args, out, sizeof out) == 0 && strstr(out, "lstm") && strstr(out, "embedding"));
}

void suite_seq(void)
{
    RUN(text_errors);
    RUN(char_models_learn);
    RUN(stateful_truncated_bptt);
    RUN(train_and_generate_cli);
}
