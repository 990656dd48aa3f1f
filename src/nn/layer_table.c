/* The layer table (layer_table.h): one entry per dn_layer_kind, and the helpers builders share. */
#include "nn/layer_table.h"

#include <assert.h>

static const dn_layer_def *const table[] = {
    [DN_LAYER_DENSE] = &dn_layer_dense,
    [DN_LAYER_ACTIVATION] = &dn_layer_activation,
    [DN_LAYER_FLATTEN] = &dn_layer_flatten,
    [DN_LAYER_CONV2D] = &dn_layer_conv2d,
    [DN_LAYER_POOL] = &dn_layer_pool,
    [DN_LAYER_GLOBAL_POOL] = &dn_layer_global_pool,
    [DN_LAYER_BATCHNORM] = &dn_layer_batchnorm,
    [DN_LAYER_DROPOUT] = &dn_layer_dropout,
    [DN_LAYER_SHORTCUT] = &dn_layer_shortcut,
    [DN_LAYER_ROUTE] = &dn_layer_route,
    [DN_LAYER_EMBEDDING] = &dn_layer_embedding,
    [DN_LAYER_RECURRENT] = &dn_layer_recurrent,
};
/* a kind added to the enum without its entry fails here (an entry left out in the middle is caught by the test
 * that every entry's kind is its index) */
_Static_assert(sizeof table / sizeof table[0] == DN_LAYER_KIND_COUNT, "one layer-table entry per dn_layer_kind");

const dn_layer_def *dn_layer_def_of(dn_layer_kind kind)
{
    return (int)kind >= 0 && kind < DN_LAYER_KIND_COUNT ? table[kind] : NULL;
}

int dn_layer_def_count(void) { return DN_LAYER_KIND_COUNT; }

const dn_layer_def *dn_layer_def_find(const char *section)
{
    for (int k = 0; k < DN_LAYER_KIND_COUNT && section; k++)
        for (int j = 0; j < 4 && table[k] && table[k]->sections[j]; j++)
            if (!strcmp(table[k]->sections[j], section)) return table[k];
    return NULL;
}

int dn_layer_key_index(const dn_layer_def *def, const char *key)
{
    for (int k = 0; k < DN_LAYER_MAX_KEYS && def->keys[k].name; k++)
        if (!strcmp(def->keys[k].name, key)) return k;
    return -1;
}

static int must(const dn_layer_args *a, const char *key)
{
    int k = dn_layer_key_index(a->def, key);
    assert(k >= 0 && "a builder reads a key its entry does not list");
    return k < 0 ? 0 : k;
}

int dn_layer_arg_int(const dn_layer_args *a, const char *key) { return a->i[must(a, key)]; }
float dn_layer_arg_float(const dn_layer_args *a, const char *key) { return a->f[must(a, key)]; }
const char *dn_layer_arg_str(const dn_layer_args *a, const char *key)
{
    const char *s = a->s[must(a, key)];
    return s ? s : "";
}
bool dn_layer_arg_given(const dn_layer_args *a, const char *key) { return a->given[must(a, key)]; }

dn_status dn_layer_fuse_arg(dn_model *m, dn_layer_args *a)
{
    const char *act = dn_layer_arg_str(a, "activation");
    if (!*act || !strcmp(act, "identity") || !strcmp(act, "linear")) return DN_OK;
    dn_status st = dn_model_fuse_activation(m, act, NULL);
    if (st) a->fault = "activation";
    return st;
}
