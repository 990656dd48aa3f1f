/* Learning-rate schedules per epoch, as PyTorch's schedulers give them: StepLR, ExponentialLR,
 * CosineAnnealingLR, ReduceLROnPlateau (mode "min", relative threshold), with an optional LinearLR warm-up.
 *
 * Closed forms, evaluated in double and rounded to float at the end: torch steps most schedulers by
 * multiplying the previous lr (its "chainable" form), which agrees with the closed form to rounding.
 *
 * Warm-up: for epoch e < W (warmup_epochs) the lr is lr0 * (f + (1 - f) * e / W), f = warmup_start_factor,
 * lr0 = base_lr (torch's LinearLR(start_factor=f, end_factor=1, total_iters=W)).  From epoch W on, the
 * schedule proper runs with its own epoch counted from the end of the warm-up, e - W: a cosine period or a
 * step interval starts when the warm-up ends, so the warm-up does not eat into it.  This is torch's
 * SequentialLR([LinearLR, schedule], milestones=[W]).  ReduceLROnPlateau cannot sit in a SequentialLR; for
 * it the warm-up factor multiplies the plateau's current lr, and dn_schedule_observe works as usual
 * throughout (so observe only after the warm-up if the metric is meaningless before it). */
#include "internal.h"

#include <math.h>
#include <strings.h>

/* pi to double precision (M_PI is not in ISO C) */
#define PI 3.14159265358979323846

static const char *const sched_names[] = {"constant", "step", "exponential", "cosine", "plateau"};
#define N_SCHED (int)(sizeof sched_names / sizeof sched_names[0])

void dn_schedule_defaults(dn_sched_kind kind, float base_lr, dn_schedule *s)
{
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->base_lr = base_lr;
    s->step_size = 10; /* torch requires one; 10 epochs is ours */
    s->gamma = kind == DN_SCHED_EXPONENTIAL ? 0.95f : 0.1f;
    s->t_max = 0;      /* torch requires T_max: 0 means "not set" (the cfg reader fills in the run's epochs) */
    s->eta_min = 0.0f;
    s->warmup_epochs = 0;
    s->warmup_start_factor = 1.0f / 3.0f;
    s->factor = 0.1f;
    s->threshold = 1e-4f;
    s->min_lr = 0.0f;
    s->patience = 10;
    s->cooldown = 0;
    s->best = INFINITY;
    s->current_lr = base_lr;
    s->bad_epochs = 0;
    s->cooldown_left = 0;
}

dn_status dn_sched_kind_parse(const char *name, dn_sched_kind *kind)
{
    if (!name || !kind) return dn_error(DN_ERR_ARG, "dn_sched_kind_parse: NULL argument");
    for (int i = 0; i < N_SCHED; i++) {
        if (strcasecmp(name, sched_names[i]) == 0) {
            *kind = (dn_sched_kind)i;
            return DN_OK;
        }
    }
    return dn_error(DN_ERR_ARG,
                    "unknown learning-rate schedule '%s' (expected constant, step, exponential, cosine or plateau)",
                    name);
}

/* The schedule proper at its own epoch e >= 0 (no warm-up). */
static double proper_lr(const dn_schedule *s, int e)
{
    const double base = s->base_lr;
    switch (s->kind) {
    case DN_SCHED_CONSTANT: return base;
    case DN_SCHED_STEP:
        /* StepLR: lr = base * gamma^floor(e / step_size); a step_size below 1 never steps */
        return s->step_size > 0 ? base * pow(s->gamma, (double)(e / s->step_size)) : base;
    case DN_SCHED_EXPONENTIAL: return base * pow(s->gamma, (double)e); /* lr = base * gamma^e */
    case DN_SCHED_COSINE: {
        /* CosineAnnealingLR: lr = eta_min + (base - eta_min) * (1 + cos(pi * e / T_max)) / 2, which rises
         * again after T_max (period 2*T_max), as torch's does; T_max not set (below 1) keeps base */
        if (s->t_max <= 0) return base;
        const double eta_min = s->eta_min;
        return eta_min + (base - eta_min) * (1.0 + cos(PI * e / s->t_max)) / 2.0;
    }
    case DN_SCHED_PLATEAU: return s->current_lr;
    }
    return base;
}

float dn_schedule_lr(dn_schedule *s, int epoch)
{
    if (!s) return 0.0f;
    if (epoch < 0) epoch = 0;
    const int w = s->warmup_epochs;
    if (w > 0 && epoch < w) {
        /* LinearLR: factor = f + (1 - f) * e / W, from f at epoch 0 to 1 at epoch W */
        const double f = s->warmup_start_factor;
        const double factor = f + (1.0 - f) * epoch / w;
        const double lr0 = s->kind == DN_SCHED_PLATEAU ? s->current_lr : s->base_lr;
        return (float)(lr0 * factor);
    }
    return (float)proper_lr(s, w > 0 ? epoch - w : epoch);
}

/* ReduceLROnPlateau.step(metric), mode "min", threshold_mode "rel":
 *     better:  metric < best * (1 - threshold)   (then best = metric, bad epochs = 0; else bad epochs += 1)
 *     in cooldown, bad epochs are ignored; after more than `patience` bad epochs the lr becomes
 *     max(lr * factor, min_lr) (only if that changes it by more than 1e-8) and a cooldown starts. */
void dn_schedule_observe(dn_schedule *s, float metric)
{
    if (!s || s->kind != DN_SCHED_PLATEAU) return;
    if ((double)metric < (double)s->best * (1.0 - (double)s->threshold)) {
        s->best = metric;
        s->bad_epochs = 0;
    } else {
        s->bad_epochs++; /* NaN is never better, as in torch */
    }
    if (s->cooldown_left > 0) {
        s->cooldown_left--;
        s->bad_epochs = 0;
    }
    if (s->bad_epochs > s->patience) {
        const double old_lr = s->current_lr;
        const double new_lr = fmax(old_lr * s->factor, (double)s->min_lr);
        if (old_lr - new_lr > 1e-8) s->current_lr = (float)new_lr;
        s->cooldown_left = s->cooldown;
        s->bad_epochs = 0;
    }
}
