/* The layer table: one entry per layer kind, beside the op registry.  An entry holds everything the rest of the
 * library needs to know about a kind: its cfg section names and keys (with defaults), how it is built from those
 * keys (checks, parameters and buffers with their checkpoint names, output shape), its forward pass (made of
 * registry ops) and how its parameters are re-initialised.  (ONNX export has its own table of the same shape on
 * floor 6, src/io/onnx_export.c, since this floor must not see file formats.)  The cfg reader
 * (src/io/cfg.c), dn_model_forward, dn_model_reinit and the summary all go through it, and a test checks
 * docs/cfg.md against it.
 *
 * Adding a layer kind: a value in dn_layer_kind (nn/model.h), one block in a file of src/nn/ with its builder,
 * forward and `const dn_layer_def`, and its line in the table (layer_table.c).  docs/design.md has a worked
 * example. */
#ifndef DN_NN_LAYER_TABLE_H
#define DN_NN_LAYER_TABLE_H

#include "nn/model.h"

/* The type of a cfg key's value. */
typedef enum dn_key_type {
    DN_KEY_INT,
    DN_KEY_FLOAT,
    DN_KEY_BOOL,   /* 1/0, true/false, yes/no, on/off */
    DN_KEY_STRING,
    DN_KEY_INTS,   /* a comma-separated list of integers (at most DN_MAX_ROUTE) */
} dn_key_type;

typedef struct dn_layer_key {
    const char *name;
    dn_key_type type;
    const char *def;     /* the default as cfg text; NULL: required; "": none (the builder decides) */
    const char *only;    /* read only in this section ("rnn" for nonlinearity); NULL: in every section */
    const char *doc_def; /* the default as docs/cfg.md shows it, when that is not `def` ("= size") */
} dn_layer_key;

/* Key rows: DN_KEY(name, type, default), DN_KEY_IN(..., only section), DN_KEY_DOC(..., docs' default). */
#define DN_KEY(n, t, d) {(n), (t), (d), NULL, NULL}
#define DN_KEY_IN(n, t, d, only) {(n), (t), (d), (only), NULL}
#define DN_KEY_DOC(n, t, d, doc) {(n), (t), (d), NULL, (doc)}

#define DN_LAYER_MAX_KEYS 12

typedef struct dn_layer_def dn_layer_def;

/* The values of a section's keys, read by the cfg reader in the order of def->keys, for the builder. */
typedef struct dn_layer_args {
    const dn_layer_def *def;
    const char *section;            /* the section name as written ("maxpool", "conv") */
    bool given[DN_LAYER_MAX_KEYS];  /* the key was in the section */
    int i[DN_LAYER_MAX_KEYS];       /* DN_KEY_INT and DN_KEY_BOOL */
    float f[DN_LAYER_MAX_KEYS];     /* DN_KEY_FLOAT */
    const char *s[DN_LAYER_MAX_KEYS]; /* DN_KEY_STRING (owned by the caller) */
    int ints[DN_MAX_ROUTE], n_ints; /* the DN_KEY_INTS key (one per entry at most) */
    char extra[256];                /* open keys (def->open_key accepted them) as "key=value key=value " */
    const char *fault;              /* set by a failing builder: the key at fault (NULL: the section) */
} dn_layer_args;

/* What dn_model_forward hands each layer's forward besides its input. */
typedef struct dn_layer_env {
    dn_tensor *p0, *p1;  /* the layer's first two parameters (or a folded batch norm's W', b') */
    bool bias;           /* p1 is a bias to add */
    bool relu;           /* apply a ReLU to the output (fused into the op where the op has a fused row) */
    dn_tensor **outs;    /* outs[0] the model input, outs[i + 1] layer i's output (for shortcut and route) */
} dn_layer_env;

struct dn_layer_def {
    dn_layer_kind kind;
    const char *sections[4]; /* cfg section names; the first is the one docs/cfg.md's heading names first */
    dn_layer_key keys[DN_LAYER_MAX_KEYS];
    const char *open_doc;    /* keys accepted by open_key, as docs/cfg.md names them ("channels init") */
    /* Whether a key that is not in `keys` belongs to the section (the activation's op attributes): DN_OK, or an
     * error naming it.  NULL: none does (dn_ini_check_unused reports it). */
    dn_status (*open_key)(const dn_layer_args *a, const char *key);
    /* Checks the values and appends the layer to m (parameters, buffers, output shape, FLOPs). */
    dn_status (*build)(dn_model *m, dn_layer_args *a);
    /* The layer's output for a batch h (one op or a few, from the registry); NULL with ctx->status set. */
    dn_tensor *(*forward)(dn_model *m, dn_ctx *ctx, dn_layer *l, dn_tensor *h, const dn_layer_env *e);
    /* Draws the parameters afresh from m's generator (NULL: the layer keeps what dn_model_reinit sets: buffers
     * to mean 0 / variance 1, other parameters to param_init). */
    void (*reinit)(dn_model *m, const dn_layer *l);
    /* The layer column of its summary line (dn_model_summary, `dendrite info`) into buf; NULL: the layer's type
     * ("dense", "max_pool2d", "lstm"). */
    void (*summary)(const dn_layer *l, char *buf, size_t size);
    /* A layer that a batch norm may fold into and a ReLU may fuse with (dense, conv2d). */
    bool fusable;
};

/* The table, indexed by dn_layer_kind. */
const dn_layer_def *dn_layer_def_of(dn_layer_kind kind);
/* The entry whose sections include name, or NULL. */
const dn_layer_def *dn_layer_def_find(const char *section);
/* All entries, in dn_layer_kind order (for tests and docs). */
int dn_layer_def_count(void);
/* The index of key in a->def->keys (-1 if it has none). */
int dn_layer_key_index(const dn_layer_def *def, const char *key);
/* A key's value (the key must be in the entry: asserted). */
int dn_layer_arg_int(const dn_layer_args *a, const char *key);
float dn_layer_arg_float(const dn_layer_args *a, const char *key);
const char *dn_layer_arg_str(const dn_layer_args *a, const char *key);
bool dn_layer_arg_given(const dn_layer_args *a, const char *key);
/* activation=NAME on a layer just built: fused into it (nothing for "", identity or linear); a->fault names the key. */
dn_status dn_layer_fuse_arg(dn_model *m, dn_layer_args *a);

/* reinit of dense and conv2d: the initialisation the layer was built with, drawn afresh. */
void dn_layer_reinit_affine(dn_model *m, const dn_layer *l);

/* The entries (each beside its builder and forward). */
extern const dn_layer_def dn_layer_dense, dn_layer_activation, dn_layer_flatten, dn_layer_conv2d, dn_layer_pool,
    dn_layer_global_pool, dn_layer_batchnorm, dn_layer_dropout, dn_layer_shortcut, dn_layer_route, dn_layer_embedding,
    dn_layer_recurrent;

#endif
