/* The registry and the layer table are the only lists: the documentation is checked against them here, so an
 * op or a layer key missing from docs/ops.md or docs/cfg.md (or listed there but gone from the code) fails the
 * suite.  Run from the repository root. */
#include "test.h"

#include "../src/internal.h"
#include "../src/nn/layer_table.h"

#include <stdlib.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* The text from the heading line `head` (a whole line) to the next heading of the same or a higher level; NULL if
 * there is no such heading.  The result is a copy. */
static char *section(const char *doc, const char *head)
{
    size_t hl = strlen(head);
    const char *p = doc;
    while ((p = strstr(p, head)) != NULL) {
        if ((p == doc || p[-1] == '\n') && (p[hl] == '\n' || p[hl] == '\0')) break;
        p += hl;
    }
    if (!p) return NULL;
    int level = 0;
    while (head[level] == '#') level++;
    const char *body = p + hl, *end = body;
    for (;;) {
        end = strchr(end, '\n');
        if (!end) {
            end = body + strlen(body);
            break;
        }
        end++;
        int l = 0;
        while (end[l] == '#') l++;
        if (l > 0 && l <= level && end[l] == ' ') break;
    }
    size_t n = (size_t)(end - body);
    char *s = malloc(n + 1);
    memcpy(s, body, n);
    s[n] = '\0';
    return s;
}

/* The first cell of the table row in `text` whose first cell holds `name` in backticks, copied into row (the whole
 * line); false if there is none. */
static bool table_row(const char *text, const char *name, char *row, size_t size)
{
    char want[96];
    snprintf(want, sizeof want, "`%s`", name);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (line[0] != '|') continue;
        const char *cell_end = strchr(line + 1, '|');
        const char *eol = strchr(line, '\n');
        if (!eol) eol = line + strlen(line);
        if (!cell_end || cell_end > eol) continue;
        size_t n = (size_t)(cell_end - line);
        char cell[256];
        if (n >= sizeof cell) n = sizeof cell - 1;
        memcpy(cell, line, n);
        cell[n] = '\0';
        if (!strstr(cell, want)) continue;
        size_t m = (size_t)(eol - line) < size - 1 ? (size_t)(eol - line) : size - 1;
        memcpy(row, line, m);
        row[m] = '\0';
        return true;
    }
    return false;
}

/* Every name in backticks in `text` (from `from` on) is in `list` ("a, b, c"), and every name of `list` is in
 * backticks in `text`. */
static void same_names(const char *what, const char *text, const char *list)
{
    char names[1024];
    snprintf(names, sizeof names, "%s", list);
    for (char *save = NULL, *tok = strtok_r(names, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char want[96];
        snprintf(want, sizeof want, "`%s`", tok);
        CHECK_MSG(strstr(text, want), "%s: the code has %s, the documentation does not list it", what, tok);
    }
    for (const char *p = strchr(text, '`'); p; p = strchr(p, '`')) {
        const char *q = strchr(p + 1, '`');
        if (!q) break;
        char name[96];
        size_t n = (size_t)(q - p - 1) < sizeof name - 1 ? (size_t)(q - p - 1) : sizeof name - 1;
        memcpy(name, p + 1, n);
        name[n] = '\0';
        size_t ln = strlen(list);
        bool found = false;
        for (const char *s = strstr(list, name); s && !found; s = strstr(s + 1, name))
            found = (s == list || s[-2] == ',') && (s + n == list + ln || s[n] == ',');
        CHECK_MSG(found, "%s: the documentation lists %s, which the code does not have", what, name);
        p = q + 1;
    }
}

/* docs/ops.md has a table row for every op of the registry; activations sit under "## Activations" and losses
 * under "## Losses". */
static void ops_doc_has_every_row(void)
{
    char *doc = slurp("docs/ops.md");
    CHECK_MSG(doc, "cannot read docs/ops.md (run from the repository root)");
    if (!doc) return;
    char *acts = section(doc, "## Activations"), *losses = section(doc, "## Losses");
    CHECK(acts && losses);
    char row[4096];
    for (int i = 0; i < dn_op_count(); i++) {
        const dn_op *op = dn_op_at(i);
        CHECK_MSG(table_row(doc, op->name, row, sizeof row), "docs/ops.md has no table row for op %s", op->name);
        if (acts && (op->flags & DN_OPF_ACTIVATION))
            CHECK_MSG(table_row(acts, op->name, row, sizeof row), "docs/ops.md: activation %s is not under Activations",
                      op->name);
        if (losses && (op->flags & DN_OPF_LOSS))
            CHECK_MSG(table_row(losses, op->name, row, sizeof row), "docs/ops.md: loss %s is not under Losses", op->name);
        /* the other way round: an op listed as an activation or loss has the flag */
        if (acts && !(op->flags & DN_OPF_ACTIVATION))
            CHECK_MSG(!table_row(acts, op->name, row, sizeof row), "docs/ops.md lists %s as an activation", op->name);
        if (losses && !(op->flags & DN_OPF_LOSS))
            CHECK_MSG(!table_row(losses, op->name, row, sizeof row), "docs/ops.md lists %s as a loss", op->name);
        /* the attributes of activations and losses are named in their row (cfg files use these names) */
        if ((op->flags & (DN_OPF_ACTIVATION | DN_OPF_LOSS)) && table_row(doc, op->name, row, sizeof row))
            for (int k = 0; k < op->n_attrs; k++) {
                char want[96];
                snprintf(want, sizeof want, "`%s`", op->attr_names[k]);
                CHECK_MSG(strstr(row, want), "docs/ops.md: the row of %s lacks its attribute %s", op->name,
                          op->attr_names[k]);
            }
    }
    free(acts);
    free(losses);
    free(doc);
}

/* docs/cfg.md's list of losses ([net] loss) and of activations ([activation] type, and the op attributes it
 * accepts as keys) are the registry's. */
static void cfg_doc_lists_are_the_registry(void)
{
    char *doc = slurp("docs/cfg.md");
    CHECK_MSG(doc, "cannot read docs/cfg.md (run from the repository root)");
    if (!doc) return;
    char *net = section(doc, "## `[net]` (required, first)"), *act = section(doc, "### `[activation]`");
    CHECK(net && act);
    char row[4096], list[1024];
    if (net && table_row(net, "loss", row, sizeof row)) {
        char *cells = strchr(row + 1, '|'); /* past the key: the default, then the values */
        cells = cells ? strchr(cells + 1, '|') : NULL;
        same_names("docs/cfg.md [net] loss", cells ? cells : "", dn_op_list(DN_OPF_LOSS, 0, list, sizeof list));
    } else
        CHECK_MSG(0, "docs/cfg.md: [net] has no loss row");
    if (act && table_row(act, "type", row, sizeof row)) {
        char *cells = strchr(row + 1, '|');
        same_names("docs/cfg.md [activation] type", cells ? cells : "",
                   dn_op_list(DN_OPF_ACTIVATION, 0, list, sizeof list));
    } else
        CHECK_MSG(0, "docs/cfg.md: [activation] has no type row");
    if (act) {
        /* every attribute of an activation is a documented key of [activation] */
        for (int i = 0; i < dn_op_count(); i++) {
            const dn_op *op = dn_op_at(i);
            if (!(op->flags & DN_OPF_ACTIVATION)) continue;
            for (int k = 0; k < op->n_attrs; k++) {
                char want[96];
                snprintf(want, sizeof want, "`%s`", op->attr_names[k]);
                CHECK_MSG(strstr(act, want), "docs/cfg.md [activation] does not name %s's attribute %s", op->name,
                          op->attr_names[k]);
            }
        }
    }
    free(net);
    free(act);
    free(doc);
}

/* The derived lists say what the rows say. */
static void registry_lists_follow_the_rows(void)
{
    char list[1024];
    dn_op_list(DN_OPF_ACTIVATION, 1, list, sizeof list);
    CHECK_MSG(strcmp(list, "prelu, swish") == 0, "learnt activations: %s", list);
    CHECK(dn_check_loss_name("mse_loss") == DN_OK);
    CHECK(dn_check_loss_name("relu") == DN_ERR_ARG);
    CHECK(strstr(dn_last_error(), "unknown loss 'relu'") && strstr(dn_last_error(), "softmax_cross_entropy_soft"));
    CHECK(dn_loss_target_kind("softmax_cross_entropy") == DN_TARGET_INDEX);
    CHECK(dn_loss_target_kind("nll_loss") == DN_TARGET_INDEX);
    CHECK(dn_loss_target_kind("multi_margin_loss") == DN_TARGET_INDEX);
    CHECK(dn_loss_target_kind("hinge_loss") == DN_TARGET_SIGN);
    CHECK(dn_loss_target_kind("mse_loss") == DN_TARGET_DENSE);
    CHECK(dn_op_find_flagged("relu", DN_OPF_ACTIVATION) && !dn_op_find_flagged("relu", DN_OPF_LOSS));
    CHECK(!dn_op_find_flagged("exp", DN_OPF_ACTIVATION));
    /* a list too long for its buffer stops at the last whole name */
    char small[12];
    dn_op_list(DN_OPF_ACTIVATION, 0, small, sizeof small);
    CHECK_MSG(strcmp(small, "identity") == 0, "'%s'", small);
    /* every learnt parameter's op takes it as input 1 */
    for (int i = 0; i < dn_op_count(); i++) {
        const dn_op *op = dn_op_at(i);
        if (op->param.name) CHECK_MSG(op->arity == 2 && (op->flags & DN_OPF_ACTIVATION), "%s", op->name);
        if (op->flags & DN_OPF_LOSS) CHECK_MSG(op->arity == 2 && op->nondiff == 2, "%s", op->name);
    }
}

/* Every layer kind has its entry, at its index, and no section name or key is listed twice. */
static void layer_table_is_complete(void)
{
    CHECK(dn_layer_def_count() == DN_LAYER_KIND_COUNT);
    for (int k = 0; k < dn_layer_def_count(); k++) {
        const dn_layer_def *d = dn_layer_def_of((dn_layer_kind)k);
        CHECK_MSG(d && (int)d->kind == k, "layer kind %d has no entry of its own", k);
        if (!d) continue;
        CHECK_MSG(d->sections[0] && d->build && d->forward, "layer kind %d: sections, build and forward are required", k);
        for (int j = 0; j < 4 && d->sections[j]; j++)
            CHECK_MSG(dn_layer_def_find(d->sections[j]) == d, "section [%s] belongs to two entries", d->sections[j]);
        for (int i = 0; i < DN_LAYER_MAX_KEYS && d->keys[i].name; i++)
            CHECK_MSG(dn_layer_key_index(d, d->keys[i].name) == i, "[%s] lists key %s twice", d->sections[0],
                      d->keys[i].name);
    }
    CHECK(!dn_layer_def_find("net") && !dn_layer_def_find("data") && !dn_layer_def_find("nonsense"));
    /* the attribute enums name the rows' attributes in order */
    const dn_op *conv = dn_op_find("conv2d"), *pool = dn_op_find("max_pool2d");
    CHECK(conv && conv->n_attrs == DN_CONV_N_ATTRS && pool && pool->n_attrs == DN_POOL_N_ATTRS);
    if (conv && pool) {
        CHECK(!strcmp(conv->attr_names[DN_CONV_STRIDE_H], "stride_h") && !strcmp(conv->attr_names[DN_CONV_STRIDE_W], "stride_w"));
        CHECK(!strcmp(conv->attr_names[DN_CONV_PAD_H], "pad_h") && !strcmp(conv->attr_names[DN_CONV_PAD_W], "pad_w"));
        CHECK(!strcmp(conv->attr_names[DN_CONV_DILATION_H], "dilation_h") &&
              !strcmp(conv->attr_names[DN_CONV_DILATION_W], "dilation_w"));
        CHECK(!strcmp(conv->attr_names[DN_CONV_GROUPS], "groups"));
        CHECK(!strcmp(pool->attr_names[DN_POOL_KERNEL_H], "kernel_h") && !strcmp(pool->attr_names[DN_POOL_KERNEL_W], "kernel_w"));
        CHECK(!strcmp(pool->attr_names[DN_POOL_STRIDE_H], "stride_h") && !strcmp(pool->attr_names[DN_POOL_STRIDE_W], "stride_w"));
        CHECK(!strcmp(pool->attr_names[DN_POOL_PAD_H], "pad_h") && !strcmp(pool->attr_names[DN_POOL_PAD_W], "pad_w"));
    }
    /* one output-size formula for conv, pooling and the layers (torch's) */
    CHECK(dn_conv_out_size(28, 5, 1, 0, 1) == 24 && dn_conv_out_size(28, 3, 2, 1, 1) == 14);
    CHECK(dn_conv_out_size(7, 3, 1, 0, 3) == 1 && dn_conv_out_size(6, 3, 1, 0, 3) == 0);
}

/* The "### `[name]`" heading of docs/cfg.md that names `section`, with its text; NULL if none does. */
static char *layer_doc(const char *doc, const char *section_name, char *heading, size_t size)
{
    char want[96];
    snprintf(want, sizeof want, "`[%s]`", section_name);
    for (const char *line = doc; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "### ", 4)) continue;
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n >= size) n = size - 1;
        memcpy(heading, line, n);
        heading[n] = '\0';
        if (strstr(heading, want)) return section(doc, heading);
    }
    return NULL;
}

/* docs/cfg.md documents each layer kind under a heading naming all its sections, with every key the table lists,
 * the table's default for each key with a row of its own, and no key the table does not have. */
static void cfg_doc_keys_are_the_layer_table(void)
{
    char *doc = slurp("docs/cfg.md");
    CHECK_MSG(doc, "cannot read docs/cfg.md (run from the repository root)");
    if (!doc) return;
    for (int k = 0; k < dn_layer_def_count(); k++) {
        const dn_layer_def *d = dn_layer_def_of((dn_layer_kind)k);
        if (!d) continue;
        char heading[256], row[1024];
        char *text = layer_doc(doc, d->sections[0], heading, sizeof heading);
        CHECK_MSG(text, "docs/cfg.md has no heading for [%s]", d->sections[0]);
        if (!text) continue;
        for (int j = 0; j < 4 && d->sections[j]; j++) {
            char want[96];
            snprintf(want, sizeof want, "`[%s]`", d->sections[j]);
            CHECK_MSG(strstr(heading, want), "docs/cfg.md: the heading '%s' does not name [%s]", heading, d->sections[j]);
        }
        for (int i = 0; i < DN_LAYER_MAX_KEYS && d->keys[i].name; i++) {
            const dn_layer_key *key = &d->keys[i];
            char want[96];
            snprintf(want, sizeof want, "`%s`", key->name);
            CHECK_MSG(strstr(text, want), "docs/cfg.md [%s] does not document key %s", d->sections[0], key->name);
            if (!table_row(text, key->name, row, sizeof row)) continue;
            /* | key | default | meaning |: the default cell, without backticks and spaces */
            char *c1 = strchr(row + 1, '|'), *c2 = c1 ? strchr(c1 + 1, '|') : NULL;
            if (!c2 || !strchr(c2 + 1, '|')) continue; /* a two-column table: no defaults */
            char got[128];
            size_t n = 0;
            for (const char *p = c1 + 1; p < c2 && n < sizeof got - 1; p++)
                if (*p != '`' && *p != ' ') got[n++] = *p;
            got[n] = '\0';
            const char *want_def = key->doc_def ? key->doc_def : !key->def ? "(required)" : !*key->def ? "(none)" : key->def;
            char want_def_ns[128];
            n = 0;
            for (const char *p = want_def; *p && n < sizeof want_def_ns - 1; p++)
                if (*p != ' ') want_def_ns[n++] = *p;
            want_def_ns[n] = '\0';
            CHECK_MSG(!strcmp(got, want_def_ns), "docs/cfg.md [%s] %s: the default is %s in the docs, %s in the code",
                      d->sections[0], key->name, got, want_def);
        }
        /* every key row of the section's table is a key of the entry (or one open_key takes) */
        for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            if (strncmp(line, "| `", 3)) continue;
            const char *end = strchr(line + 3, '`');
            if (!end) continue;
            char name[64];
            size_t n = (size_t)(end - line - 3) < sizeof name - 1 ? (size_t)(end - line - 3) : sizeof name - 1;
            memcpy(name, line + 3, n);
            name[n] = '\0';
            bool open = false;
            if (d->open_doc) {
                const char *p = strstr(d->open_doc, name);
                open = p && (p == d->open_doc || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0');
            }
            CHECK_MSG(dn_layer_key_index(d, name) >= 0 || open, "docs/cfg.md [%s] documents key %s, which it does not read",
                      d->sections[0], name);
        }
        free(text);
    }
    /* and every layer heading names sections that exist */
    for (const char *line = doc; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "### ", 4)) continue;
        const char *eol = strchr(line, '\n');
        for (const char *p = strstr(line, "`["); p && (!eol || p < eol); p = strstr(p + 2, "`[")) {
            const char *q = strstr(p, "]`");
            if (!q) break;
            char name[64];
            size_t n = (size_t)(q - p - 2) < sizeof name - 1 ? (size_t)(q - p - 2) : sizeof name - 1;
            memcpy(name, p + 2, n);
            name[n] = '\0';
            CHECK_MSG(dn_layer_def_find(name), "docs/cfg.md documents a section [%s] that the layer table lacks", name);
        }
    }
    free(doc);
}

/* The cfg reader goes through the layer table: defaults, section aliases, and errors that point at the line of the
 * key at fault. */
static void cfg_reads_layers_through_the_table(void)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"[net]\ninput = 4\n[dense]\nbias = 1\nunits = 0\n", "t.cfg:5: units must be positive"},
        {"[net]\ninput = 4\n[dense]\nunits = 3\ninit = nope\n", "t.cfg:5: unknown initialisation"},
        {"[net]\ninput = 4\n[dense]\nunits = 3\nactivation = prelu\n", "t.cfg:5: 'prelu' cannot follow"},
        {"[net]\ninput = 1, 6, 6\n[conv]\nfilters = 2\nsize = 3\npad = x\n", "t.cfg:6: key 'pad'"},
        {"[net]\ninput = 1, 6, 6\n[conv2d]\nfilters = 2\n", "[conv2d] needs key 'size'"},
        {"[net]\ninput = 8, 4\n[lstm]\nhidden = 3\nnonlinearity = relu\n", "t.cfg:5: unknown key 'nonlinearity'"},
        {"[net]\ninput = 8, 4\n[rnn]\nhidden = 3\nnonlinearity = sigmoid\n", "t.cfg:5: nonlinearity must be"},
        {"[net]\ninput = 4\n[activation]\ntype = relu\nalpha = 2\n", "t.cfg:5: unknown key 'alpha' for activation relu"},
        {"[net]\ninput = 4\n[activation]\ntype = elu\nalpha = x\n", "t.cfg:5: key 'alpha': 'x' is not a number"},
        {"[net]\ninput = 4\n[upsample]\n", "t.cfg:3: unknown section [upsample] (net, data, dense, connected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dn_model *m = NULL;
        dn_status s = dn_model_from_cfg(bad[i].text, "t.cfg", &m, NULL);
        CHECK_MSG(s == DN_ERR_FORMAT && !m && strstr(dn_last_error(), bad[i].want), "case %zu: %s: '%s' lacks '%s'", i,
                  dn_status_name(s), dn_last_error(), bad[i].want);
        dn_model_free(m);
    }
    /* defaults from the table: pool stride = size, prelu's learnt alpha from its op row (0.25, per channel) */
    dn_model *m = NULL;
    CHECK_OK(dn_model_from_cfg("[net]\ninput = 2, 8, 8\n[avgpool]\nsize = 4\n[activation]\ntype = prelu\n"
                               "channels = 2\n[flatten]\n[connected]\nunits = 3\nactivation = relu\n",
                               "t.cfg", &m, NULL));
    if (!m) return;
    int64_t shape[DN_MAX_DIMS];
    int nd = 0;
    dn_model_output_shape(m, &nd, shape);
    CHECK(nd == 1 && shape[0] == 3);
    CHECK(dn_model_tensor_count(m) == 3 && !strcmp(dn_model_tensor_name(m, 0), "layers.1.alpha"));
    dn_tensor *alpha = dn_model_tensor(m, 0);
    CHECK(alpha && dn_tensor_numel(alpha) == 2 && dn_tensor_get(alpha, 1) == 0.25f);
    CHECK(!strcmp(dn_model_tensor_name(m, 1), "layers.3.weight") && !strcmp(dn_model_tensor_name(m, 2), "layers.3.bias"));
    dn_model_free(m);
}

void suite_tables(void)
{
    RUN(cfg_reads_layers_through_the_table);
    RUN(layer_table_is_complete);
    RUN(cfg_doc_keys_are_the_layer_table);
    RUN(registry_lists_follow_the_rows);
    RUN(ops_doc_has_every_row);
    RUN(cfg_doc_lists_are_the_registry);
}
