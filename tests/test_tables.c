/* The registry and the layer table are the only lists: the documentation is checked against them here, so an
 * op or a layer key missing from docs/ops.md or docs/cfg.md (or listed there but gone from the code) fails the
 * suite.  Run from the repository root. */
#include "test.h"

#include "../src/internal.h"

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

void suite_tables(void)
{
    RUN(registry_lists_follow_the_rows);
    RUN(ops_doc_has_every_row);
    RUN(cfg_doc_lists_are_the_registry);
}
