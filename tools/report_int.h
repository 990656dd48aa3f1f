/* The parts of `dendrite report` and `dendrite visualize` (tools/report*.c), each file one kind of thing drawn or
 * read: report_buf.c the page buffer and atomic writes, report_png.c the PNG encoder, report_log.c the --log
 * reader, report_chart.c the SVG line charts, report_filters.c the filter pictures (and `visualize`), report.c
 * the page itself.  Public header only; not installed. */
#ifndef DENDRITE_TOOLS_REPORT_INT_H
#define DENDRITE_TOOLS_REPORT_INT_H

#include "dendrite.h"
#include "report.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define EXIT_USAGE 2

static inline bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* ------------------------------------------------------------------ report_buf.c */

/* The page is built in memory and written in one go (to a temporary file that is then renamed), so a
 * failure half-way never leaves half a page behind.  An allocation failure is sticky: later writes do
 * nothing and the caller checks `oom` once at the end. */
typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;
void sb_put(sbuf *b, const void *p, size_t n);      /* appends n bytes */
void sb_puts(sbuf *b, const char *s);                 /* appends a string */
void sb_byte(sbuf *b, unsigned char c);               /* appends one byte */
void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;                                                 /* appends formatted text */
void sb_text(sbuf *b, const char *s);                 /* appends text escaped for HTML */
void sb_base64(sbuf *b, const unsigned char *p, size_t n); /* appends n bytes as base64 */
/* Writes b to path through a temporary file and a rename; 0, or 1 with a message (naming cmd) on stderr. */
int write_atomic(const char *cmd, const char *path, const sbuf *b);

/* ------------------------------------------------------------------ report_png.c */

/* A w x h greyscale PNG of `pixels` (one byte each, rows top down) appended to b; text, if not NULL, becomes
 * its Description. */
void png_encode_grey(sbuf *b, const unsigned char *pixels, int w, int h, const char *text);

/* ------------------------------------------------------------------ report_log.c */

/* What one epoch's line says; NaN where a key is absent or null. */
typedef struct epoch_rec {
    double epoch, train_loss, train_accuracy, val_loss, val_accuracy, lr, samples_per_sec, seconds;
} epoch_rec;

typedef struct run_log {
    epoch_rec *r;
    int n, cap;
    int replaced; /* records a resumed run superseded */
} run_log;
/* The keys of a record, in table order, and where each lands in an epoch_rec. */
typedef struct rec_key {
    const char *key;
    size_t offset;
} rec_key;
extern const rec_key rec_keys[];
extern const size_t n_rec_keys;
/* Reads a --log file (a resumed run's later records replace the superseded ones); 0, or 1 with a message. */
int read_log(const char *path, run_log *log);

/* ------------------------------------------------------------------ report_chart.c */

/* A number for an axis or a table: few digits, no trailing zeros. */
void fmt_num(char *buf, size_t n, double v);
typedef struct series {
    const char *name, *color;
    const double *y; /* stride: one epoch_rec apart */
} series;
/* A line chart of per-epoch values, one polyline per series, as inline SVG. */
void svg_line_chart(sbuf *b, const char *title, const char *ylabel, const run_log *log, const series *s, int ns);

/* ------------------------------------------------------------------ report_filters.c */

/* The first convolutional layer's weights, laid out as tiles.  One input channel: the filters wrap into rows
 * of up to 8 (16 for more than 64).  A few channels (up to 8): one row per input channel, one column per
 * filter.  More: each filter's channels are averaged into one tile.  Each filter is normalised to its own
 * min..max over everything drawn of it, so channels of one filter stay comparable. */
typedef struct filter_grid {
    char name[96];
    int64_t f, c, kh, kw;
    int rows, cols, scale, gap, margin;
    bool channel_rows, averaged;
    float *w;        /* [f][planes][kh][kw] as drawn (averaged: one plane) */
    int planes;
    float *lo, *hi;  /* per filter */
} filter_grid;
void filter_grid_free(filter_grid *g);
/* 0 with g filled from the model's first 4-D weight, 1 when it has none, -1 when out of memory. */
int filter_grid_build(dn_model *m, filter_grid *g);
void filter_grid_svg(sbuf *b, const filter_grid *g, bool standalone); /* the grid as SVG (standalone: a file) */
unsigned char *filter_grid_pixels(const filter_grid *g, int *w, int *h); /* the grid as grey bytes (malloc) */
void filter_caption(const filter_grid *g, char *buf, size_t n);         /* "layers.0.weight: 6 filters ..." */

#endif /* DENDRITE_TOOLS_REPORT_INT_H */
