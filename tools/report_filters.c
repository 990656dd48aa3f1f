/* The first convolutional layer's filters as pictures: a section of the report, and `dendrite visualize`. */
#include "report_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ filters (first conv layer) */

void filter_grid_free(filter_grid *g)
{
    free(g->w);
    free(g->lo);
    free(g->hi);
    memset(g, 0, sizeof *g);
}

/* Finds the first 4-D weight ([F, C/groups, kh, kw]: only convolutions have them).  Returns 0 with g filled,
 * 1 when there is none (no message), -1 when out of memory. */
int filter_grid_build(dn_model *m, filter_grid *g)
{
    memset(g, 0, sizeof *g);
    int n = dn_model_tensor_count(m), at = -1;
    for (int i = 0; i < n && at < 0; i++) {
        const char *name = dn_model_tensor_name(m, i);
        size_t len = strlen(name);
        if (dn_tensor_ndim(dn_model_tensor(m, i)) == 4 && len >= 7 && !strcmp(name + len - 7, ".weight")) at = i;
    }
    if (at < 0) return 1;
    dn_tensor *t = dn_model_tensor(m, at);
    snprintf(g->name, sizeof g->name, "%s", dn_model_tensor_name(m, at));
    g->f = dn_tensor_dim(t, 0);
    g->c = dn_tensor_dim(t, 1);
    g->kh = dn_tensor_dim(t, 2);
    g->kw = dn_tensor_dim(t, 3);
    g->channel_rows = g->c > 1 && g->c <= 8;
    g->averaged = g->c > 8;
    g->planes = g->channel_rows ? (int)g->c : 1;
    int64_t k = g->kh * g->kw, numel = dn_tensor_numel(t);
    float *all = malloc((size_t)numel * sizeof *all);
    g->w = malloc((size_t)(g->f * g->planes * k) * sizeof *g->w);
    g->lo = malloc((size_t)g->f * sizeof *g->lo);
    g->hi = malloc((size_t)g->f * sizeof *g->hi);
    if (!all || !g->w || !g->lo || !g->hi) {
        free(all);
        filter_grid_free(g);
        return -1;
    }
    dn_tensor_read(t, all);
    for (int64_t fi = 0; fi < g->f; fi++) {
        float *dst = g->w + fi * g->planes * k;
        const float *src = all + fi * g->c * k;
        if (g->averaged) {
            for (int64_t j = 0; j < k; j++) {
                double sum = 0;
                for (int64_t ci = 0; ci < g->c; ci++) sum += src[ci * k + j];
                dst[j] = (float)(sum / (double)g->c);
            }
        } else {
            memcpy(dst, src, (size_t)(g->planes * k) * sizeof *dst);
        }
        float lo = dst[0], hi = dst[0];
        for (int64_t j = 1; j < g->planes * k; j++) {
            lo = dst[j] < lo ? dst[j] : lo;
            hi = dst[j] > hi ? dst[j] : hi;
        }
        g->lo[fi] = lo;
        g->hi[fi] = hi;
    }
    free(all);
    if (g->channel_rows) {
        g->rows = (int)g->c;
        g->cols = (int)g->f;
    } else {
        g->cols = (int)(g->f <= 8 ? g->f : g->f <= 64 ? 8 : 16);
        g->rows = (int)((g->f + g->cols - 1) / g->cols);
    }
    int64_t big = g->kh > g->kw ? g->kh : g->kw;
    g->scale = (int)(big >= 30 ? 2 : 60 / big);
    g->gap = 6;
    g->margin = 12;
    return 0;
}

/* Grey level 0..255 of one kernel element: its filter's min is black, its max white (flat filters: mid grey). */
static int filter_grey(const filter_grid *g, int64_t fi, float v)
{
    float lo = g->lo[fi], hi = g->hi[fi];
    if (!(hi > lo)) return 128;
    return (int)lrintf((v - lo) / (hi - lo) * 255.0f);
}

/* Top-left pixel of a tile, and which filter/plane it shows. */
static void tile_at(const filter_grid *g, int row, int col, int *x, int *y)
{
    int tw = (int)g->kw * g->scale, th = (int)g->kh * g->scale;
    *x = g->margin + col * (tw + g->gap) + (g->channel_rows ? 40 : 0);
    *y = g->margin + row * (th + g->gap) + (g->channel_rows ? 16 : 0);
}

static void filter_grid_size(const filter_grid *g, int *w, int *h)
{
    int x, y;
    tile_at(g, g->rows - 1, g->cols - 1, &x, &y);
    *w = x + (int)g->kw * g->scale + g->margin;
    *h = y + (int)g->kh * g->scale + g->margin;
}

void filter_caption(const filter_grid *g, char *buf, size_t n)
{
    const char *how = g->channel_rows ? "one row per input channel, one column per filter"
                      : g->averaged   ? "input channels averaged, one tile per filter"
                                      : "one tile per filter";
    snprintf(buf, n, "%s: %lld filters of %lld×%lld over %lld input channel%s; %s; each filter scaled to its own "
                     "min (black) .. max (white)",
             g->name, (long long)g->f, (long long)g->kh, (long long)g->kw, (long long)g->c, g->c == 1 ? "" : "s", how);
}

/* The grid as SVG (an element that also stands alone as a file), caption below the tiles. */
void filter_grid_svg(sbuf *b, const filter_grid *g, bool standalone)
{
    int w, h;
    filter_grid_size(g, &w, &h);
    char caption[512];
    filter_caption(g, caption, sizeof caption);
    int cap_h = 54, total_h = h + cap_h, total_w = w < 560 ? 560 : w;
    if (standalone) sb_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "shape-rendering=\"crispEdges\" "
                 "font-family=\"system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif\" "
                 "class=\"filters\" role=\"img\"><title>",
              total_w, total_h, total_w, total_h);
    sb_text(b, caption);
    sb_printf(b, "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", total_w, total_h);
    int64_t k = g->kh * g->kw;
    for (int row = 0; row < g->rows; row++)
        for (int col = 0; col < g->cols; col++) {
            int64_t fi = g->channel_rows ? col : (int64_t)row * g->cols + col;
            int plane = g->channel_rows ? row : 0;
            if (fi >= g->f) continue;
            int x0, y0;
            tile_at(g, row, col, &x0, &y0);
            sb_printf(b, "<g><title>filter %lld", (long long)fi);
            if (g->channel_rows) sb_printf(b, ", input channel %d", plane);
            sb_printf(b, " (min %.4g, max %.4g)</title>", (double)g->lo[fi], (double)g->hi[fi]);
            const float *src = g->w + (fi * g->planes + plane) * k;
            for (int64_t yy = 0; yy < g->kh; yy++)
                for (int64_t xx = 0; xx < g->kw; xx++) {
                    int v = filter_grey(g, fi, src[yy * g->kw + xx]);
                    sb_printf(b, "<rect x=\"%lld\" y=\"%lld\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\"/>",
                              (long long)(x0 + xx * g->scale), (long long)(y0 + yy * g->scale), g->scale, g->scale, v,
                              v, v);
                }
            sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%lld\" height=\"%lld\" fill=\"none\" stroke=\"#9aa5b1\" "
                         "stroke-width=\"1\"/></g>\n",
                      x0 - 0.5, y0 - 0.5, (long long)(g->kw * g->scale + 1), (long long)(g->kh * g->scale + 1));
        }
    if (g->channel_rows) {
        int x, y;
        for (int col = 0; col < g->cols; col++) {
            tile_at(g, 0, col, &x, &y);
            sb_printf(b, "<text x=\"%lld\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\" fill=\"#52606d\">%d</text>",
                      (long long)(x + g->kw * g->scale / 2), y - 5, col);
        }
        for (int row = 0; row < g->rows; row++) {
            tile_at(g, row, 0, &x, &y);
            sb_printf(b, "<text x=\"%d\" y=\"%lld\" text-anchor=\"end\" font-size=\"10\" fill=\"#52606d\">ch %d</text>",
                      x - 6, (long long)(y + g->kh * g->scale / 2 + 3), row);
        }
    }
    sb_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#52606d\">",
              g->margin, h + 14);
    /* the caption can be long: break it after the "; " separators into at most three lines */
    const char *p = caption;
    int line = 0;
    while (*p) {
        const char *semi = strstr(p, "; ");
        size_t len = semi && line < 2 ? (size_t)(semi - p) + 1 : strlen(p);
        char part[512];
        snprintf(part, sizeof part, "%.*s", (int)len, p);
        sb_printf(b, "<tspan x=\"%d\" dy=\"%d\">", g->margin, line ? 13 : 0);
        sb_text(b, part);
        sb_puts(b, "</tspan>");
        p += len;
        while (*p == ' ') p++;
        line++;
    }
    sb_puts(b, "</text></svg>\n");
}

/* The same grid as greyscale pixels (white background, a grey frame around each tile). */
unsigned char *filter_grid_pixels(const filter_grid *g, int *w, int *h)
{
    filter_grid_size(g, w, h);
    unsigned char *px = malloc((size_t)*w * (size_t)*h);
    if (!px) return NULL;
    memset(px, 255, (size_t)*w * (size_t)*h);
    int64_t k = g->kh * g->kw;
    int tw = (int)g->kw * g->scale, th = (int)g->kh * g->scale;
    for (int row = 0; row < g->rows; row++)
        for (int col = 0; col < g->cols; col++) {
            int64_t fi = g->channel_rows ? col : (int64_t)row * g->cols + col;
            int plane = g->channel_rows ? row : 0;
            if (fi >= g->f) continue;
            int x0, y0;
            tile_at(g, row, col, &x0, &y0);
            for (int y = -1; y <= th; y++)
                for (int x = -1; x <= tw; x++) {
                    unsigned char v = 160; /* the frame */
                    if (y >= 0 && y < th && x >= 0 && x < tw) {
                        const float *src = g->w + (fi * g->planes + plane) * k;
                        v = (unsigned char)filter_grey(g, fi, src[(y / g->scale) * g->kw + x / g->scale]);
                    }
                    px[(size_t)(y0 + y) * (size_t)*w + (size_t)(x0 + x)] = v;
                }
        }
    return px;
}

/* ------------------------------------------------------------------ visualize */

static const char *const usage_visualize =
    "usage: dendrite visualize CKPT [-o filters.svg|filters.png]\n"
    "Draws the first convolutional layer's filters as greyscale tiles, each filter scaled to its own min..max.\n"
    "With up to 8 input channels each channel is a row; with more, the channels are averaged.  The format\n"
    "follows the extension (default filters.svg); the PNG carries the caption as its Description.\n";

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k) return false;
    for (size_t i = 0; i < k; i++) {
        char c = s[n - k + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suffix[i]) return false;
    }
    return true;
}

int dn_cli_visualize(int argc, char **argv)
{
    const char *ckpt = NULL, *out = "filters.svg";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(usage_visualize, stdout);
            return 0;
        }
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) out = argv[++i];
        else if (a[0] == '-' || ckpt) {
            fprintf(stderr, "dendrite visualize: unexpected argument '%s'\n", a);
            fputs(usage_visualize, stderr);
            return EXIT_USAGE;
        } else ckpt = a;
    }
    if (!ckpt) {
        fputs(usage_visualize, stderr);
        return EXIT_USAGE;
    }
    bool png = ends_with(out, ".png");
    if (!png && !ends_with(out, ".svg")) {
        fprintf(stderr, "dendrite visualize: %s: the output must end in .svg or .png\n", out);
        return EXIT_USAGE;
    }
    dn_model *m = NULL;
    if (dn_model_load(ckpt, &m, NULL)) {
        fprintf(stderr, "dendrite visualize: %s\n", dn_last_error());
        return 1;
    }
    filter_grid g;
    int gr = filter_grid_build(m, &g), rc = 1;
    if (gr > 0)
        fprintf(stderr, "dendrite visualize: %s has no convolutional layer (no 4-D weight), so no filters to draw\n",
                ckpt);
    if (gr < 0) fprintf(stderr, "dendrite visualize: out of memory\n");
    if (gr == 0) {
        char caption[512];
        filter_caption(&g, caption, sizeof caption);
        sbuf b = {0};
        if (png) {
            int w, h;
            unsigned char *px = filter_grid_pixels(&g, &w, &h);
            if (!px) b.oom = true;
            else {
                /* tEXt is Latin-1: spell the caption's "×" as "x" there */
                char latin[512];
                size_t j = 0;
                for (const char *p = caption; *p && j + 1 < sizeof latin; p++) {
                    if ((unsigned char)*p == 0xc3 && (unsigned char)p[1] == 0x97) {
                        latin[j++] = 'x';
                        p++;
                    } else if ((unsigned char)*p < 0x80) latin[j++] = *p;
                }
                latin[j] = '\0';
                png_encode_grey(&b, px, w, h, latin);
                free(px);
            }
        } else {
            filter_grid_svg(&b, &g, true);
        }
        rc = write_atomic("visualize", out, &b);
        if (!rc) fprintf(stderr, "dendrite visualize: wrote %s: %s\n", out, caption);
        free(b.s);
    }
    filter_grid_free(&g);
    dn_model_free(m);
    return rc;
}
