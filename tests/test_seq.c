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

/* ------------------------------------------------------------------ prediction and generation through the run API */

static dn_run *char_run;

/* A character LSTM trained once through the run API, shared by the tests below. */
static dn_run *trained_char_run(void)
{
    if (char_run) return char_run;
    make_corpus(path("corpus.txt"));
    char cfg[1024], corpus[512];
    snprintf(cfg, sizeof cfg, char_cfg, "lstm", "");
    write_file(path("run_char.cfg"), cfg, strlen(cfg));
    snprintf(corpus, sizeof corpus, "%s", path("corpus.txt"));
    dn_run_options o;
    dn_run_options_default(&o);
    o.data = corpus;
    o.epochs = 3;
    dn_status s = dn_run_open(path("run_char.cfg"), &o, &char_run);
    if (!s) s = dn_run_train(char_run, NULL, NULL, NULL);
    if (s) {
        printf("    %s\n", dn_last_error());
        dn_run_free(char_run);
        char_run = NULL;
    }
    return char_run;
}

/* A model with a class per time step predicts every step: [N, T] classes, not one argmax over T x classes. */
static void predict_per_step(void)
{
    dn_run *cr = trained_char_run();
    CHECK(cr != NULL);
    if (!cr) return;
    const dn_vocab *v = dn_model_vocab(dn_run_model(cr));
    const char *rows[3] = {"the cat sat on t", "a dog ran to the", "he mat. the cat "};
    float ids[48];
    FILE *f = fopen(path("ids.csv"), "w");
    for (int i = 0; i < 3 && f; i++)
        for (int t = 0; t < 16; t++) {
            ids[i * 16 + t] = (float)v->index[(unsigned char)rows[i][t]];
            fprintf(f, "%d%c", (int)ids[i * 16 + t], t == 15 ? '\n' : ',');
        }
    if (f) fclose(f);
    dn_predictions *p = NULL;
    CHECK_OK(dn_run_predict(cr, path("ids.csv"), &p));
    if (!p) return;
    CHECK_MSG(p->n == 3 && p->steps == 16 && p->outputs == 32, "n %lld, steps %lld, outputs %lld", (long long)p->n,
              (long long)p->steps, (long long)p->outputs);
    /* each step's class is the argmax of that step's logits */
    dn_ctx *ctx = dn_ctx_new();
    dn_tensor *x, *y = NULL;
    dn_ctx_set_grad(ctx, false);
    if (!dn_tensor_from(ctx, 2, (int64_t[]){3, 16}, ids, &x)) y = dn_model_forward(dn_run_model(cr), ctx, x);
    CHECK(y && dn_tensor_ndim(y) == 3);
    int correct = 0;
    for (int i = 0; y && p->steps == 16 && i < 3 * 16; i++) {
        const float *row = dn_tensor_data(y) + i * 32;
        int best = 0;
        for (int j = 1; j < 32; j++)
            if (row[j] > row[best]) best = j;
        CHECK_MSG(p->classes[i] == best, "sample %d step %d: class %lld, argmax %d", i / 16, i % 16,
                  (long long)p->classes[i], best);
        /* the next character of the regular text */
        if (i % 16 < 15 && best == (int)ids[i + 1]) correct++;
    }
    CHECK_MSG(correct >= 30, "%d of 45 next characters right", correct);
    dn_ctx_free(ctx);
    dn_predictions_free(p);
    /* the command prints a sample's index and its 16 classes */
    static char out[1 << 14];
    char args[1024];
    CHECK_OK(dn_run_save(cr, path("run_char.ckpt")));
    snprintf(args, sizeof args, "predict %s %s", path("run_char.ckpt"), path("ids.csv"));
    CHECK(run(args, out, sizeof out) == 0);
    int fields = 0;
    for (char *tok = strtok(out, " \n"); tok && fields < 100; tok = strtok(NULL, " \n")) fields++;
    CHECK_MSG(fields == 3 * 17, "%d fields for 3 samples of 16 steps", fields);
}

/* The old generation: the whole window re-run from a zero state for every character. */
static void generate_by_window(dn_model *m, const char *prime, int length, double temperature, uint64_t seed, char *out)
{
    const dn_vocab *v = dn_model_vocab(m);
    int64_t n = (int64_t)strlen(prime), window = 16;
    float ids[256];
    for (int64_t i = 0; i < n; i++) ids[i] = (float)v->index[(unsigned char)prime[i]];
    dn_rng rng;
    dn_rng_seed(&rng, seed);
    dn_ctx *ctx = dn_ctx_new();
    dn_ctx_set_grad(ctx, false);
    dn_model_set_training(m, false);
    out[0] = '\0';
    for (int k = 0; k < length; k++, n++) {
        int64_t t = n < window ? n : window;
        dn_ctx_reset(ctx);
        dn_tensor *x, *y = NULL;
        if (!dn_tensor_from(ctx, 2, (int64_t[]){1, t}, ids + n - t, &x)) y = dn_model_forward(m, ctx, x);
        if (!y) break;
        const float *logits = dn_tensor_data(y) + (t - 1) * 32;
        double mx = logits[0], sum = 0;
        float probs[256];
        for (int j = 1; j < v->size; j++) mx = logits[j] > mx ? logits[j] : mx;
        for (int j = 0; j < v->size; j++) sum += probs[j] = (float)exp((logits[j] - mx) / temperature);
        double u = dn_rng_uniform(&rng) * sum, acc = 0;
        int pick = v->size - 1;
        for (int j = 0; j < v->size; j++) {
            acc += probs[j];
            if (u < acc) {
                pick = j;
                break;
            }
        }
        ids[n] = (float)pick;
        out[k] = (char)v->bytes[pick];
        out[k + 1] = '\0';
    }
    dn_ctx_free(ctx);
}

/* Generation carries the LSTM's state: one time step per character (linear work), and the same text as
 * re-running the window while the window still covers everything. */
static void generate_carries_state(void)
{
    dn_run *r = trained_char_run();
    CHECK(r != NULL);
    if (!r) return;
    char text[512], ref[512];
    int64_t steps = -1;
    /* prime 4 + 12 drawn: the 16-step window covers the whole prefix, so both ways see the same characters */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        CHECK_OK(dn_run_generate(r, "the ", 12, 0.8, seed, text, &steps));
        generate_by_window(dn_run_model(r), "the ", 12, 0.8, seed, ref);
        CHECK_MSG(strcmp(text, ref) == 0, "seed %llu: carried '%s', window '%s'", (unsigned long long)seed, text, ref);
        CHECK_MSG(steps == 4 + 11, "%lld time steps for 12 characters after a prime of 4", (long long)steps);
    }
    /* the work is linear in the length: one step per character (the last one drawn is never fed) */
    CHECK_OK(dn_run_generate(r, "the ", 200, 0.8, 1, text, &steps));
    CHECK_MSG(steps == 4 + 199, "%lld time steps for 200 characters (a window of 16 would take ~3000)",
              (long long)steps);
    CHECK(strlen(text) == 200);
    /* a prime longer than the window is fed in pieces */
    const char *prime = "the cat sat on the mat. a dog ran to the log. ";
    CHECK_OK(dn_run_generate(r, prime, 10, 0.8, 1, text, &steps));
    CHECK(steps == (int64_t)strlen(prime) + 9 && strlen(text) == 10);
    CHECK(dn_run_generate(r, "Z", 10, 0.8, 1, text, &steps) == DN_ERR_ARG && strstr(dn_last_error(), "0x5a"));
    dn_run_free(char_run);
    char_run = NULL;
    /* the other kinds, stacked (untrained: the logits are what they are, both ways must agree) */
    const char *kinds[3][2] = {{"gru", "layers = 2\n"}, {"rnn", "layers = 2\n"}, {"lstm", "layers = 3\n"}};
    dn_vocab v;
    dn_vocab_build((const unsigned char *)"the cat sat on a mat.", 21, &v);
    for (int k = 0; k < 3; k++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, char_cfg, kinds[k][0], kinds[k][1]);
        dn_model *m = NULL;
        dn_run *kr = NULL;
        CHECK_OK(dn_model_from_cfg(cfg, "kind.cfg", &m, NULL));
        if (!m) continue;
        dn_model_set_vocab(m, &v);
        CHECK_OK(dn_model_save(m, path("kind.ckpt")));
        CHECK_OK(dn_run_load(path("kind.ckpt"), &kr));
        if (kr) {
            CHECK_OK(dn_run_generate(kr, "the", 13, 1.0, 7, text, &steps));
            generate_by_window(dn_run_model(kr), "the", 13, 1.0, 7, ref);
            CHECK_MSG(strcmp(text, ref) == 0 && steps == 15, "%s: carried '%s', window '%s', %lld steps", kinds[k][0],
                      text, ref, (long long)steps);
        }
        dn_run_free(kr);
        dn_model_free(m);
    }
}

void suite_seq(void)
{
    RUN(text_errors);
    RUN(char_models_learn);
    RUN(stateful_truncated_bptt);
    RUN(train_and_generate_cli);
    RUN(predict_per_step);
    RUN(generate_carries_state);
}
