/* dendrite report / visualize: an HTML page about a training run, and pictures of convolution filters.
 *
 * Everything here uses the public header only, and the output needs nothing but a browser: the page carries
 * its charts as inline SVG, its images as PNG data URIs and its style as one <style> block.  The PNG encoder is
 * the smallest that is still valid: zlib "stored" (uncompressed) deflate blocks, CRC-32 and Adler-32 by hand.
 */
#include "report_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ test set */

/* Height and width when samples are greyscale images: [H, W], [1, H, W], or a flat square of >= 256 pixels
 * (MNIST as CSV).  False otherwise (no pictures then). */
static bool image_geometry(int ndim, const int64_t *shape, int *h, int *w)
{
    if (ndim == 2 || (ndim == 3 && shape[0] == 1)) {
        *h = (int)shape[ndim - 2];
        *w = (int)shape[ndim - 1];
        return *h > 0 && *w > 0 && *h <= 512 && *w <= 512;
    }
    if (ndim == 1 && shape[0] >= 256 && shape[0] <= 512 * 512) {
        int s = (int)lround(sqrt((double)shape[0]));
        if ((int64_t)s * s == shape[0]) {
            *h = *w = s;
            return true;
        }
    }
    return false;
}

typedef struct mistake {
    int64_t index;
    int truth, pred;
    double p; /* the predicted class's probability (softmax models), NaN otherwise */
} mistake;

/* The first `max` misclassified samples in test-set order, from the run's predictions (argmax, or a threshold
 * for one output, as evaluation counts them). */
static int find_mistakes(const dn_train_config *c, const dn_dataset *d, const dn_predictions *p, mistake *out, int max)
{
    bool softmax = !strcmp(c->loss, "softmax_cross_entropy") || !strcmp(c->loss, "softmax_cross_entropy_soft");
    int found = 0;
    for (int64_t i = 0; i < d->n && found < max; i++) {
        int64_t pred = p->classes[i], truth = (int64_t)d->y[i];
        if (p->outputs == 1 && !strcmp(c->loss, "hinge_loss")) truth = d->y[i] > 0;
        if (pred == truth) continue;
        /* softmax models: the predicted class's probability */
        double prob = softmax && p->outputs > 1 ? p->values[i * p->outputs + pred] : NAN;
        out[found++] = (mistake){i, (int)truth, (int)pred, prob};
    }
    return found;
}

static const char *const page_style =
    ":root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--card:#fff;--accent:#2563eb}"
    "*{box-sizing:border-box}"
    "body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,"
    "\"Helvetica Neue\",Arial,\"Noto Sans\",sans-serif;-webkit-font-smoothing:antialiased}"
    "main{max-width:1360px;margin:0 auto;padding:32px 24px 48px}"
    "header h1{font-size:26px;font-weight:650;margin:0 0 4px;letter-spacing:-.01em}"
    "header p{margin:0;color:var(--muted)}"
    "code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\",monospace;font-size:13px}"
    "h2{font-size:18px;font-weight:600;margin:36px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:20px 0 4px}"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:10px 16px;min-width:130px}"
    ".card b{display:block;font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}"
    ".card b small{font-size:12px;font-weight:400;color:var(--muted);margin-left:6px}"
    ".card span{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}"
    ".charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,540px),1fr));gap:16px}"
    "figure{margin:0}"
    ".chart svg,.panel{background:var(--card);border:1px solid var(--line);border-radius:10px;max-width:100%;height:auto}"
    ".panel{padding:16px;display:inline-block}"
    ".ct{font-size:15px;font-weight:600;fill:#1f2933}.lg{font-size:12px;fill:#3e4c59}"
    ".tick{font-size:11px;fill:#616e7c;font-variant-numeric:tabular-nums}.al{font-size:12px;fill:#3e4c59}"
    ".grid{stroke:#eef0f3;stroke-width:1}.axis{stroke:#9aa5b1;stroke-width:1}.note{font-size:13px;fill:#9aa5b1}"
    "svg text{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif}"
    "table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:10px;"
    "font-variant-numeric:tabular-nums}"
    "th,td{padding:5px 14px;text-align:left;border-bottom:1px solid var(--line);white-space:nowrap}"
    "th{font-size:12px;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}"
    "td.num,th.num{text-align:right}tr:last-child td{border-bottom:0}"
    ".foot{color:var(--muted);margin:8px 0 0;font-size:14px}"
    ".warn{background:#fff8e6;border:1px solid #f5d48a;border-radius:8px;padding:10px 14px;color:#7a5200}"
    ".mistakes{display:flex;flex-wrap:wrap;gap:10px}"
    ".mistakes figure{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px;text-align:center}"
    ".mistakes img{display:block;width:84px;height:84px;image-rendering:pixelated;border-radius:4px}"
    ".mistakes figcaption{font-size:13px;margin-top:4px;font-variant-numeric:tabular-nums}"
    ".mistakes figcaption small{display:block;color:var(--muted);font-size:11px}"
    "details summary{cursor:pointer;color:var(--accent);margin:8px 0}"
    "footer{margin-top:40px;color:var(--muted);font-size:13px}";

static void card_note(sbuf *b, const char *label, const char *value, const char *note)
{
    sb_puts(b, "<div class=\"card\"><span>");
    sb_text(b, label);
    sb_puts(b, "</span><b>");
    sb_text(b, value);
    if (note) {
        sb_puts(b, "<small>");
        sb_text(b, note);
        sb_puts(b, "</small>");
    }
    sb_puts(b, "</b></div>");
}

static void card(sbuf *b, const char *label, const char *value) { card_note(b, label, value, NULL); }

static void card_num(sbuf *b, const char *label, double v, const char *fmt)
{
    char buf[64];
    if (!isfinite(v)) return;
    snprintf(buf, sizeof buf, fmt, v);
    card(b, label, buf);
}

static void summary_cards(sbuf *b, const run_log *log)
{
    const epoch_rec *last = &log->r[log->n - 1];
    double secs = 0, sps = 0, best_acc = NAN, best_acc_ep = 0, best_loss = NAN, best_loss_ep = 0;
    int sps_n = 0;
    for (int i = 0; i < log->n; i++) {
        const epoch_rec *r = &log->r[i];
        if (!isnan(r->seconds)) secs += r->seconds;
        if (!isnan(r->samples_per_sec)) {
            sps += r->samples_per_sec;
            sps_n++;
        }
        /* "not worse than the best so far" is also true while the best is still NaN */
        if (!isnan(r->val_accuracy) && !(r->val_accuracy <= best_acc)) {
            best_acc = r->val_accuracy;
            best_acc_ep = r->epoch;
        }
        if (!isnan(r->val_loss) && !(r->val_loss >= best_loss)) {
            best_loss = r->val_loss;
            best_loss_ep = r->epoch;
        }
    }
    char buf[64], note[32];
    sb_puts(b, "<div class=\"cards\">");
    snprintf(buf, sizeof buf, "%g", last->epoch);
    card(b, "epochs", buf);
    card_num(b, "final train loss", last->train_loss, "%.4f");
    card_num(b, "final train accuracy", last->train_accuracy * 100, "%.2f%%");
    if (!isnan(best_loss)) {
        snprintf(buf, sizeof buf, "%.4f", best_loss);
        snprintf(note, sizeof note, "epoch %g", best_loss_ep);
        card_note(b, "best val loss", buf, note);
    }
    if (!isnan(best_acc)) {
        snprintf(buf, sizeof buf, "%.2f%%", best_acc * 100);
        snprintf(note, sizeof note, "epoch %g", best_acc_ep);
        card_note(b, "best val accuracy", buf, note);
    }
    card_num(b, "final learning rate", last->lr, "%.3g");
    card_num(b, "samples / s", sps_n ? sps / sps_n : NAN, "%.0f");
    if (secs > 0) {
        if (secs < 120) snprintf(buf, sizeof buf, "%.1f s", secs);
        else snprintf(buf, sizeof buf, "%.0f min %.0f s", floor(secs / 60), fmod(secs, 60));
        card(b, "training time", buf);
    }
    sb_puts(b, "</div>\n");
}

static void epoch_table(sbuf *b, const run_log *log)
{
    static const char *const heads[] = {"epoch",   "train loss", "train acc", "val loss",
                                        "val acc", "lr",         "samples/s", "seconds"};
    sb_printf(b, "<details><summary>Per-epoch figures (%d epochs)</summary><table><tr>", log->n);
    for (size_t k = 0; k < sizeof heads / sizeof heads[0]; k++) sb_printf(b, "<th class=\"num\">%s</th>", heads[k]);
    sb_puts(b, "</tr>\n");
    for (int i = 0; i < log->n; i++) {
        sb_puts(b, "<tr>");
        for (size_t k = 0; k < n_rec_keys; k++) {
            char num[32];
            fmt_num(num, sizeof num, *(const double *)((const char *)&log->r[i] + rec_keys[k].offset));
            sb_printf(b, "<td class=\"num\">%s</td>", num);
        }
        sb_puts(b, "</tr>\n");
    }
    sb_puts(b, "</table></details>\n");
}

/* dn_model_summary's text as an HTML table: columns are separated by two or more spaces; lines with a single
 * field (the totals) go below the table.  Anything unexpected is shown as the plain text instead. */
static void summary_table(sbuf *b, const char *text)
{
    enum { MAXC = 12, MAXLEN = 128 };
    int rows = 0, ncols = 0;
    bool ok = true;
    sbuf body = {0}, foot = {0};
    char cells[MAXC][MAXLEN];
    bool numeric[MAXC];
    for (int k = 0; k < MAXC; k++) numeric[k] = true;
    /* two passes: the first decides which columns are numeric (right-aligned), the second writes */
    for (int pass = 0; pass < 2 && ok; pass++) {
        const char *p = text;
        rows = 0;
        while (*p && ok) {
            const char *end = strchr(p, '\n');
            if (!end) end = p + strlen(p);
            int n = 0;
            const char *q = p;
            while (q < end && n < MAXC) {
                while (q < end && *q == ' ') q++;
                if (q >= end) break;
                const char *start = q;
                while (q < end && !(q[0] == ' ' && (q + 1 >= end || q[1] == ' '))) q++;
                size_t len = (size_t)(q - start);
                if (len >= MAXLEN) len = MAXLEN - 1;
                memcpy(cells[n], start, len);
                cells[n++][len] = '\0';
            }
            if (q < end) ok = false; /* more columns than we expect */
            if (rows == 0 && n < 2) ok = false;
            if (rows == 0) ncols = n;
            if (n > ncols) ok = false;
            if (!ok) break;
            if (n >= 2) {
                for (int k = 0; k < n && pass == 0 && rows > 0; k++)
                    if (strspn(cells[k], "0123456789.,kMGT") != strlen(cells[k])) numeric[k] = false;
                if (pass == 1) {
                    const char *tag = rows == 0 ? "th" : "td";
                    sb_puts(&body, "<tr>");
                    for (int k = 0; k < ncols; k++) {
                        sb_printf(&body, "<%s%s>", tag, numeric[k] && k > 0 ? " class=\"num\"" : "");
                        if (k < n) sb_text(&body, cells[k]);
                        sb_printf(&body, "</%s>", tag);
                    }
                    sb_puts(&body, "</tr>\n");
                }
                rows++;
            } else if (n == 1 && pass == 1) {
                sb_puts(&foot, "<p class=\"foot\">");
                sb_text(&foot, cells[0]);
                sb_puts(&foot, "</p>");
            }
            p = *end ? end + 1 : end;
        }
    }
    if (ok && rows > 1 && !body.oom && !foot.oom) {
        sb_puts(b, "<table class=\"summary\">\n");
        sb_puts(b, body.s);
        sb_puts(b, "</table>");
        if (foot.s) sb_puts(b, foot.s);
    } else {
        sb_puts(b, "<pre class=\"panel\">");
        sb_text(b, text);
        sb_puts(b, "</pre>");
    }
    sb_puts(b, "\n");
    free(body.s);
    free(foot.s);
}

/* A heat map of the confusion matrix (rows: true class, columns: predicted).  Colour is each cell's share of
 * its row: blue on the diagonal (correct), orange off it (mistakes, drawn stronger: a square root lifts rare
 * errors into view).  Counts are printed in cells big enough to hold them. */
static void confusion_svg(sbuf *b, const int64_t *conf, int k)
{
    int cell = k <= 10 ? 44 : 480 / k < 6 ? 6 : 480 / k;
    int left = 70, top = 64, gw = cell * k;
    int w = left + gw + 24, h = top + gw + 40;
    if (w < 360) w = 360;
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "class=\"panel heatmap\" role=\"img\" aria-label=\"confusion matrix\"><title>Confusion matrix (rows: "
                 "true class, columns: predicted class)</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>",
              w, h, w, h, w, h);
    sb_printf(b, "<text x=\"%d\" y=\"22\" class=\"al\" text-anchor=\"middle\">predicted class</text>", left + gw / 2);
    sb_printf(b, "<text transform=\"translate(20 %d) rotate(-90)\" class=\"al\" text-anchor=\"middle\">true class</text>",
              top + gw / 2);
    bool labels = cell >= 14, counts = cell >= 22;
    for (int i = 0; i < k; i++) {
        int64_t row = 0;
        for (int j = 0; j < k; j++) row += conf[i * k + j];
        if (labels) {
            sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%d</text>",
                      left + i * cell + cell / 2, top - 8, i);
            sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"end\">%d</text>", left - 8,
                      top + i * cell + cell / 2 + 4, i);
        }
        for (int j = 0; j < k; j++) {
            int64_t n = conf[i * k + j];
            double share = row ? (double)n / (double)row : 0;
            /* mix white with the hue: t = share on the diagonal, sqrt(share) (x2, capped) off it */
            double t = i == j ? share : fmin(1.0, 2.0 * sqrt(share));
            int r0 = i == j ? 37 : 234, g0 = i == j ? 99 : 88, b0 = i == j ? 235 : 12;
            int r = (int)lround(255 + (r0 - 255) * t), g = (int)lround(255 + (g0 - 255) * t),
                bl = (int)lround(255 + (b0 - 255) * t);
            sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" stroke=\"#eef0f3\">"
                         "<title>true %d, predicted %d: %lld (%.1f%% of class %d)</title></rect>",
                      left + j * cell, top + i * cell, cell, cell, r, g, bl, i, j, (long long)n, 100 * share, i);
            if (counts && n)
                sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"%d\" fill=\"%s\">%lld</text>",
                          left + j * cell + cell / 2, top + i * cell + cell / 2 + 4, cell >= 40 ? 12 : 9,
                          t > 0.55 ? "#fff" : "#1f2933", (long long)n);
        }
    }
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#9aa5b1\"/>", left, top,
              gw, gw);
    sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"tick\">colour: share of the true class (blue: correct, orange: "
                 "mistakes)</text></svg>\n",
              left, top + gw + 26);
}

/* A sample as a PNG data URI: [0,1] values map to 0..255 (MNIST's scaling), anything else to its own min..max. */
static void sample_img(sbuf *b, const float *x, int h, int w)
{
    size_t n = (size_t)h * (size_t)w;
    unsigned char *px = malloc(n);
    if (!px) {
        b->oom = true;
        return;
    }
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    if (lo >= 0 && hi <= 1) lo = 0, hi = 1;
    for (size_t i = 0; i < n; i++) px[i] = hi > lo ? (unsigned char)lrintf((x[i] - lo) / (hi - lo) * 255.0f) : 0;
    sbuf png = {0};
    png_encode_grey(&png, px, w, h, NULL);
    free(px);
    if (png.oom) b->oom = true;
    sb_puts(b, "data:image/png;base64,");
    if (!png.oom) sb_base64(b, (const unsigned char *)png.s, png.len);
    free(png.s);
}

/* The checkpoint's half of the page: layer table, test-set figures, confusion matrix, mistakes, filters. */
static int model_sections(sbuf *b, const char *ckpt, const char *data)
{
    dn_run *run = NULL;
    if (dn_run_load(ckpt, &run)) {
        fprintf(stderr, "dendrite report: %s\n", dn_last_error());
        return 1;
    }
    dn_model *m = dn_run_model(run);
    const dn_train_config *cp = dn_run_config(run);
    const dn_train_config c = *cp;
    int rc = 1;
    char *text = NULL;
    mistake *mis = NULL;
    float *pixels = NULL; /* one test sample, for its picture */
    dn_predictions *pred = NULL;
    const dn_dataset *test = NULL;
    filter_grid g = {0};

    sb_puts(b, "<h2>Model</h2>\n");
    size_t need = dn_model_summary(m, NULL, 0) + 1;
    if (!(text = malloc(need))) goto oom;
    dn_model_summary(m, text, need);
    summary_table(b, text);
    sb_printf(b, "<p class=\"foot\">loss <code>%s</code>, optimizer <code>%s</code>, batch %lld, learning rate %g</p>\n",
              c.loss, dn_optim_kind_name(c.optim.kind), (long long)c.batch, (double)c.optim.lr);

    int gr = filter_grid_build(m, &g);
    if (gr < 0) goto oom;

    /* the test set as `dendrite eval` finds it, normalised as in training (the run API's one code path) */
    char why[1400] = "";
    if (!strcmp(c.data_format, "text"))
        snprintf(why, sizeof why, "character models are not evaluated in the report (use dendrite generate)");
    else if (dn_run_load_test(run, data))
        snprintf(why, sizeof why, "%s", dn_last_error());
    else
        test = dn_run_test_set(run);
    sb_puts(b, "<h2>Test set</h2>\n");
    if (!test) {
        fprintf(stderr, "dendrite report: warning: no test-set sections: %s\n", why);
        sb_puts(b, "<p class=\"warn\">No test-set evaluation: ");
        sb_text(b, why);
        sb_puts(b, "</p>\n");
    } else {
        int img_h = 0, img_w = 0;
        bool images = image_geometry(test->ndim, test->shape, &img_h, &img_w);
        dn_run_eval r;
        if (dn_run_evaluate(run, NULL, &r)) {
            fprintf(stderr, "dendrite report: evaluating %s: %s\n", ckpt, dn_last_error());
            goto out;
        }
        int k = dn_dataset_target_size(test) == 1 ? r.n_classes : 0;
        sb_puts(b, "<div class=\"cards\">");
        card_num(b, "test loss", r.loss, "%.4f");
        card_num(b, "test accuracy", r.accuracy * 100, "%.2f%%");
        card_num(b, "test samples", (double)r.n, "%.0f");
        if (k > 0 && isfinite(r.accuracy)) card_num(b, "mistakes", (double)r.n - r.accuracy * (double)r.n, "%.0f");
        sb_puts(b, "</div>\n");
        if (k > 0 && k <= 100) {
            sb_puts(b, "<h2>Confusion matrix</h2>\n");
            confusion_svg(b, r.confusion, k);
        }
        if (k > 0 && images) {
            enum { MAX_SHOWN = 32 };
            if (!(mis = malloc(MAX_SHOWN * sizeof *mis))) goto oom;
            if (dn_run_predict_set(run, test, &pred)) {
                fprintf(stderr, "dendrite report: predicting with %s: %s\n", ckpt, dn_last_error());
                goto out;
            }
            int found = find_mistakes(&c, test, pred, mis, MAX_SHOWN);
            sb_printf(b, "<h2>Misclassified test images <small class=\"foot\">(the first %d, true &rarr; predicted)</small>"
                         "</h2>\n<div class=\"mistakes\">\n",
                      found);
            /* one sample as floats, whether the test set holds floats or bytes */
            if (!(pixels = malloc((size_t)dn_dataset_sample_size(test) * sizeof *pixels))) goto oom;
            for (int i = 0; i < found; i++) {
                sb_printf(b, "<figure title=\"test sample #%lld\"><img alt=\"test sample %lld\" src=\"",
                          (long long)mis[i].index, (long long)mis[i].index);
                dn_dataset_get(test, mis[i].index, 1, pixels);
                sample_img(b, pixels, img_h, img_w);
                sb_printf(b, "\"><figcaption>%d &rarr; %d", mis[i].truth, mis[i].pred);
                if (!isnan(mis[i].p)) sb_printf(b, "<small>p = %.2f · #%lld</small>", mis[i].p, (long long)mis[i].index);
                else sb_printf(b, "<small>#%lld</small>", (long long)mis[i].index);
                sb_puts(b, "</figcaption></figure>\n");
            }
            if (!found) sb_puts(b, "<p class=\"foot\">None: every test sample is classified correctly.</p>");
            sb_puts(b, "</div>\n");
        }
    }
    if (gr == 0) {
        sb_puts(b, "<h2>First-layer filters</h2>\n<div class=\"panel\">");
        filter_grid_svg(b, &g, false);
        sb_puts(b, "</div>\n");
    }
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "dendrite report: out of memory\n");
out:
    filter_grid_free(&g);
    free(text);
    free(mis);
    free(pixels);
    dn_predictions_free(pred);
    dn_run_free(run);
    return rc;
}

static const char *const usage_report =
    "usage: dendrite report LOG.jsonl [CKPT] [-o report.html] [--data DIR|FILE]\n"
    "Writes one self-contained HTML page: loss, accuracy and learning-rate curves from a training log\n"
    "(`dendrite train --log LOG.jsonl`) and, given the checkpoint, its layers, the test-set confusion matrix,\n"
    "misclassified test images and first-layer filters.  The test set is found as `dendrite eval` finds it.\n"
    "  -o FILE          the page (default report.html)\n"
    "  --data DIR|FILE  test data (MNIST folder or CSV file; default: the cfg's [data] section)\n";

int dn_cli_report(int argc, char **argv)
{
    const char *log_path = NULL, *ckpt = NULL, *out = "report.html", *data = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (is_help(a)) {
            fputs(usage_report, stdout);
            return 0;
        }
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out = argv[++i];
        else if (!strcmp(a, "--data") && has) data = argv[++i];
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dendrite report: unknown option or missing value: '%s'\n", a);
            fputs(usage_report, stderr);
            return EXIT_USAGE;
        } else if (!log_path) log_path = a;
        else if (!ckpt) ckpt = a;
        else {
            fprintf(stderr, "dendrite report: unexpected argument '%s'\n", a);
            fputs(usage_report, stderr);
            return EXIT_USAGE;
        }
    }
    if (!log_path) {
        fputs(usage_report, stderr);
        return EXIT_USAGE;
    }
    run_log log = {0};
    if (read_log(log_path, &log)) {
        free(log.r);
        return 1;
    }

    sbuf b = {0};
    sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>dendrite report: ");
    sb_text(&b, log_path);
    sb_puts(&b, "</title>\n<style>");
    sb_puts(&b, page_style);
    sb_puts(&b, "</style></head>\n<body><main>\n<header><h1>Training report</h1><p>log <code>");
    sb_text(&b, log_path);
    sb_puts(&b, "</code>");
    if (ckpt) {
        sb_puts(&b, " · checkpoint <code>");
        sb_text(&b, ckpt);
        sb_puts(&b, "</code>");
    }
    sb_puts(&b, "</p></header>\n");
    summary_cards(&b, &log);

    const epoch_rec *r0 = log.r;
    series loss[] = {{"training", "#2563eb", &r0->train_loss}, {"validation", "#ea580c", &r0->val_loss}};
    series acc[] = {{"training", "#2563eb", &r0->train_accuracy}, {"validation", "#ea580c", &r0->val_accuracy}};
    series lr[] = {{"learning rate", "#7c3aed", &r0->lr}};
    sb_puts(&b, "<h2>Training curves</h2>\n<div class=\"charts\">\n");
    svg_line_chart(&b, "Loss", "loss", &log, loss, 2);
    svg_line_chart(&b, "Accuracy", "accuracy", &log, acc, 2);
    svg_line_chart(&b, "Learning rate", "learning rate", &log, lr, 1);
    sb_puts(&b, "</div>\n");
    if (log.replaced)
        sb_printf(&b, "<p class=\"foot\">The log goes back in epochs (a resumed run appends to it): the %d earlier "
                      "record%s it restarts over %s not drawn.</p>\n",
                  log.replaced, log.replaced == 1 ? "" : "s", log.replaced == 1 ? "is" : "are");
    epoch_table(&b, &log);

    int rc = ckpt ? model_sections(&b, ckpt, data) : 0;
    if (!rc) {
        sb_puts(&b, "<footer>Made by <code>dendrite report</code> " DN_VERSION ". Self-contained: no scripts, fonts or "
                    "files outside this page.</footer>\n</main></body></html>\n");
        rc = write_atomic("report", out, &b);
    }
    if (!rc)
        fprintf(stderr, "dendrite report: wrote %s (%d epoch%s%s)\n", out, log.n, log.n == 1 ? "" : "s",
                ckpt ? ", with the checkpoint" : "");
    free(b.s);
    free(log.r);
    return rc;
}
