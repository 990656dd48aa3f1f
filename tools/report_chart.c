/* `dendrite report`: SVG line charts of per-epoch figures. */
#include "report_int.h"

#include <math.h>
#include <stdio.h>

/* ------------------------------------------------------------------ charts */

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`. */
static double nice_step(double span, int target)
{
    double raw = span / target, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Decimals that show a multiple of `step` exactly (0.05 -> 2, 0.0005 -> 4, 2 -> 0). */
static int step_decimals(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 10 ? 10 : d;
}

void fmt_num(char *buf, size_t n, double v)
{
    if (!isfinite(v)) snprintf(buf, n, "–");
    else if (v != 0 && (fabs(v) < 1e-3 || fabs(v) >= 1e6)) snprintf(buf, n, "%.3g", v);
    else snprintf(buf, n, "%.4g", v);
}

#define CHART_W 640
#define CHART_H 300

static double rec_at(const double *y, int i) { return *(const double *)((const char *)y + (size_t)i * sizeof(epoch_rec)); }

/* A line chart of per-epoch values: title, legend, gridlines, ticks and axis labels, one polyline per series
 * (broken where a value is missing) and, for short runs, a dot per epoch with its value on hover. */
void svg_line_chart(sbuf *b, const char *title, const char *ylabel, const run_log *log, const series *s, int ns)
{
    const int right = 20, top = 48, bottom = 52, ph = CHART_H - top - bottom;
    int left = 70, pw = CHART_W - left - right;
    double ylo = INFINITY, yhi = -INFINITY, xlo = log->r[0].epoch, xhi = log->r[log->n - 1].epoch;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < log->n; i++) {
            double v = rec_at(s[k].y, i);
            if (isnan(v)) continue;
            ylo = v < ylo ? v : ylo;
            yhi = v > yhi ? v : yhi;
        }
    sb_printf(b, "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
              CHART_W, CHART_H, CHART_W, CHART_H);
    sb_text(b, title);
    sb_printf(b, "\"><title>");
    sb_text(b, title);
    sb_printf(b, "</title><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>", CHART_W, CHART_H);
    sb_puts(b, "<text x=\"14\" y=\"26\" class=\"ct\">");
    sb_text(b, title);
    sb_puts(b, "</text>");
    if (!(ylo <= yhi) || !isfinite(yhi - ylo)) {
        sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"note\" text-anchor=\"middle\">%s</text></svg></figure>\n",
                  CHART_W / 2, CHART_H / 2, ylo <= yhi ? "values out of range" : "not in this log");
        return;
    }
    /* a flat line still needs a span to divide by */
    if (yhi - ylo < 1e-12 * (fabs(yhi) + 1)) {
        double pad = fabs(yhi) > 0 ? fabs(yhi) * 0.1 : 0.5;
        ylo -= pad;
        yhi += pad;
    }
    if (xhi <= xlo) {
        xlo -= 1;
        xhi += 1;
    }
    double ystep = nice_step(yhi - ylo, 5);
    ylo = floor(ylo / ystep + 1e-9) * ystep;
    yhi = ceil(yhi / ystep - 1e-9) * ystep;
    double xstep = nice_step(xhi - xlo, 8);
    if (xstep < 1) xstep = 1;
    int ydec = step_decimals(ystep), yticks = (int)lround((yhi - ylo) / ystep);
    /* tick j is at ylo + j * ystep, snapped to 0 near it (so never "-0.00") */
#define YTICK(j) (fabs(ylo + (j) * ystep) < ystep * 1e-6 ? 0.0 : ylo + (j) * ystep)
    /* room for the widest tick label (~6.5 px a character at 11 px) between the axis title and the axis */
    int widest = 0;
    for (int j = 0; j <= yticks; j++) {
        int n = snprintf(NULL, 0, "%.*f", ydec, YTICK(j));
        widest = n > widest ? n : widest;
    }
    left = 38 + (int)(widest * 6.5);
    left = left < 60 ? 60 : left;
    pw = CHART_W - left - right;

#define PX(x) (left + ((x) - xlo) / (xhi - xlo) * pw)
#define PY(y) (top + (yhi - (y)) / (yhi - ylo) * ph)
    /* legend, right-aligned in the title row; ~7 px per character of 12 px text */
    int lx = CHART_W - right;
    for (int k = ns - 1; k >= 0; k--) {
        bool any = false;
        for (int i = 0; i < log->n && !any; i++) any = !isnan(rec_at(s[k].y, i));
        if (!any) continue;
        lx -= 7 * (int)strlen(s[k].name) + 34;
        sb_printf(b, "<line x1=\"%d\" y1=\"22\" x2=\"%d\" y2=\"22\" stroke=\"%s\" stroke-width=\"3\" "
                     "stroke-linecap=\"round\"/>"
                     "<text x=\"%d\" y=\"26\" class=\"lg\">",
                  lx, lx + 18, s[k].color, lx + 24);
        sb_text(b, s[k].name);
        sb_puts(b, "</text>");
    }
    /* horizontal gridlines with the y ticks */
    for (int j = 0; j <= yticks; j++) {
        double v = YTICK(j);
        sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
                     "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.*f</text>",
                  left, left + pw, PY(v), PY(v), left - 8, PY(v) + 4, ydec, v);
    }
    /* x ticks at whole multiples of the step (counted, not summed, so no rounding drift) */
    for (double i = ceil(xlo / xstep - 1e-9); i * xstep <= xhi + 1e-9; i++) {
        double x = i * xstep + 0.0; /* + 0.0: a tick at zero reads "0", not "-0" */
        sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>"
                     "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%g</text>",
                  PX(x), PX(x), top + ph, top + ph + 5, PX(x), top + ph + 20, x);
    }
    sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>", left, left + pw, top + ph, top + ph);
    sb_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>", left, left, top, top + ph);
    sb_printf(b, "<text x=\"%d\" y=\"%d\" class=\"al\" text-anchor=\"middle\">epoch</text>", left + pw / 2, CHART_H - 12);
    sb_printf(b, "<text transform=\"translate(16 %d) rotate(-90)\" class=\"al\" text-anchor=\"middle\">", top + ph / 2);
    sb_text(b, ylabel);
    sb_puts(b, "</text>");

    for (int k = 0; k < ns; k++) {
        sb_printf(b, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" stroke-linejoin=\"round\" d=\"", s[k].color);
        bool pen = false;
        for (int i = 0; i < log->n; i++) {
            double v = rec_at(s[k].y, i);
            if (isnan(v)) {
                pen = false;
                continue;
            }
            sb_printf(b, "%s%.1f %.1f", pen ? " L" : (i ? " M" : "M"), PX(log->r[i].epoch), PY(v));
            pen = true;
        }
        sb_puts(b, "\"/>");
        /* dots on every epoch of a short run; on a long one only where a value stands alone (no line shows it) */
        for (int i = 0; i < log->n; i++) {
            double v = rec_at(s[k].y, i);
            if (isnan(v)) continue;
            bool alone = (i == 0 || isnan(rec_at(s[k].y, i - 1))) && (i + 1 == log->n || isnan(rec_at(s[k].y, i + 1)));
            if (log->n > 60 && !alone) continue;
            char num[32];
            fmt_num(num, sizeof num, v);
            sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"#fff\" stroke=\"%s\" stroke-width=\"2\"><title>",
                      PX(log->r[i].epoch), PY(v), s[k].color);
            sb_text(b, s[k].name);
            sb_printf(b, ", epoch %g: %s</title></circle>", log->r[i].epoch, num);
        }
    }
#undef PX
#undef PY
#undef YTICK
    sb_puts(b, "</svg></figure>\n");
}
