/* The cfg tokenizer (see ini.h for the syntax). */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ parsing */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static char *copy_range(const char *b, const char *e)
{
    char *s = dn_alloc((size_t)(e - b) + 1);
    if (s) {
        memcpy(s, b, (size_t)(e - b));
        s[e - b] = '\0';
    }
    return s;
}

static void trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b)) (*b)++;
    while (*e > *b && is_space((*e)[-1])) (*e)--;
}

static dn_status add_section(dn_ini *ini, const char *b, const char *e, int line)
{
    dn_ini_section *s = dn_realloc(ini->sections, (size_t)(ini->n_sections + 1) * sizeof *s);
    if (!s) return DN_ERR_NOMEM;
    ini->sections = s;
    s = &ini->sections[ini->n_sections];
    memset(s, 0, sizeof *s);
    s->name = copy_range(b, e);
    if (!s->name) return DN_ERR_NOMEM;
    s->line = line;
    s->file = ini->file;
    ini->n_sections++;
    return DN_OK;
}

static dn_status add_entry(dn_ini_section *s, const char *kb, const char *ke, const char *vb, const char *ve,
                           int line)
{
    for (int i = 0; i < s->n_entries; i++) {
        const char *k = s->entries[i].key;
        if (strlen(k) == (size_t)(ke - kb) && memcmp(k, kb, (size_t)(ke - kb)) == 0)
            return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s' repeated in [%s] (first set at line %d)", s->file,
                            line, k, s->name, s->entries[i].line);
    }
    dn_ini_entry *en = dn_realloc(s->entries, (size_t)(s->n_entries + 1) * sizeof *en);
    if (!en) return DN_ERR_NOMEM;
    s->entries = en;
    en = &s->entries[s->n_entries];
    en->key = copy_range(kb, ke);
    en->value = copy_range(vb, ve);
    en->line = line;
    en->used = false;
    if (!en->key || !en->value) {
        dn_free(en->key);
        dn_free(en->value);
        return DN_ERR_NOMEM;
    }
    s->n_entries++;
    return DN_OK;
}

/* One line [b, e) without its newline.  A comment starts at a '#' or ';' that begins the line or follows
 * whitespace, so values such as "a;b" stay intact while "lr = 0.1  # tuned" loses its remark. */
static dn_status parse_line(dn_ini *ini, const char *b, const char *e, int line)
{
    for (const char *p = b; p < e; p++) {
        if ((*p == '#' || *p == ';') && (p == b || is_space(p[-1]))) {
            e = p;
            break;
        }
    }
    trim(&b, &e);
    if (b == e) return DN_OK;
    if (*b == '[') {
        if (e[-1] != ']')
            return dn_error(DN_ERR_FORMAT, "%s:%d: section header '%.*s' does not end with ']'", ini->file, line,
                            (int)(e - b > 60 ? 60 : e - b), b);
        const char *nb = b + 1, *ne = e - 1;
        trim(&nb, &ne);
        if (nb == ne) return dn_error(DN_ERR_FORMAT, "%s:%d: empty section name '[]'", ini->file, line);
        for (const char *p = nb; p < ne; p++)
            if (*p == '[' || *p == ']')
                return dn_error(DN_ERR_FORMAT, "%s:%d: section name '%.*s' contains a bracket", ini->file, line,
                                (int)(ne - nb > 60 ? 60 : ne - nb), nb);
        return add_section(ini, nb, ne, line);
    }
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (!eq)
        return dn_error(DN_ERR_FORMAT, "%s:%d: expected '[section]' or 'key = value', found '%.*s'", ini->file, line,
                        (int)(e - b > 60 ? 60 : e - b), b);
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim(&kb, &ke);
    trim(&vb, &ve);
    if (kb == ke) return dn_error(DN_ERR_FORMAT, "%s:%d: '=' with no key before it", ini->file, line);
    if (ini->n_sections == 0)
        return dn_error(DN_ERR_FORMAT, "%s:%d: key '%.*s' comes before any [section]", ini->file, line,
                        (int)(ke - kb > 60 ? 60 : ke - kb), kb);
    return add_entry(&ini->sections[ini->n_sections - 1], kb, ke, vb, ve, line);
}

dn_status dn_ini_parse(const char *text, const char *filename, dn_ini **out)
{
    if (!text || !out) return dn_error(DN_ERR_ARG, "dn_ini_parse: text and out must not be NULL");
    *out = NULL;
    dn_ini *ini = dn_calloc(1, sizeof *ini);
    if (!ini) return DN_ERR_NOMEM;
    ini->file = dn_strdup(filename ? filename : "<string>");
    if (!ini->file) {
        dn_free(ini);
        return DN_ERR_NOMEM;
    }
    int line = 1;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        dn_status s = parse_line(ini, p, e, line);
        if (s) {
            dn_ini_free(ini);
            return s;
        }
        if (!*e) break;
        p = e + 1;
        if (line == INT_MAX) {
            dn_ini_free(ini);
            return dn_error(DN_ERR_FORMAT, "%s: more than %d lines", filename ? filename : "<string>", INT_MAX);
        }
        line++;
    }
    *out = ini;
    return DN_OK;
}

void dn_ini_free(dn_ini *ini)
{
    if (!ini) return;
    for (int i = 0; i < ini->n_sections; i++) {
        dn_ini_section *s = &ini->sections[i];
        for (int j = 0; j < s->n_entries; j++) {
            dn_free(s->entries[j].key);
            dn_free(s->entries[j].value);
        }
        dn_free(s->entries);
        dn_free(s->name);
    }
    dn_free(ini->sections);
    dn_free(ini->file);
    dn_free(ini);
}

/* ------------------------------------------------------------------ getters */

dn_ini_entry *dn_ini_find(dn_ini_section *s, const char *key)
{
    if (!s || !key) return NULL;
    for (int i = 0; i < s->n_entries; i++) {
        if (strcmp(s->entries[i].key, key) == 0) {
            s->entries[i].used = true;
            return &s->entries[i];
        }
    }
    return NULL;
}

dn_status dn_ini_require(dn_ini_section *s, const char *key)
{
    if (!s || !key) return dn_error(DN_ERR_ARG, "dn_ini_require: section and key must not be NULL");
    for (int i = 0; i < s->n_entries; i++)
        if (strcmp(s->entries[i].key, key) == 0) return DN_OK;
    return dn_error(DN_ERR_FORMAT, "%s:%d: [%s] needs key '%s'", s->file, s->line, s->name, key);
}

static dn_status bad_value(const dn_ini_section *s, const dn_ini_entry *en, const char *text, size_t len,
                           const char *what)
{
    return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s': '%.*s' is not %s", s->file, en->line, en->key,
                    (int)(len > 60 ? 60 : len), text, what);
}

/* Whole-token parses: the token [b, b+len) must be a number and nothing else. */
static bool parse_int_token(const char *b, size_t len, int *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, b, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (end == buf || *end || errno == ERANGE || v < INT_MIN || v > INT_MAX) return false;
    *out = (int)v;
    return true;
}

static bool parse_float_token(const char *b, size_t len, float *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, b, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    /* also refuses nan, inf and values beyond float's range, which would poison training silently */
    if (end == buf || *end || !isfinite(v) || fabs(v) > 3.4028234663852886e38) return false;
    *out = (float)v;
    return true;
}

dn_status dn_ini_get_int(dn_ini_section *s, const char *key, int def, int *out)
{
    dn_ini_entry *en = dn_ini_find(s, key);
    if (!en) {
        *out = def;
        return DN_OK;
    }
    if (!parse_int_token(en->value, strlen(en->value), out))
        return bad_value(s, en, en->value, strlen(en->value), "an integer");
    return DN_OK;
}

dn_status dn_ini_get_float(dn_ini_section *s, const char *key, float def, float *out)
{
    dn_ini_entry *en = dn_ini_find(s, key);
    if (!en) {
        *out = def;
        return DN_OK;
    }
    if (!parse_float_token(en->value, strlen(en->value), out))
        return bad_value(s, en, en->value, strlen(en->value), "a finite number");
    return DN_OK;
}

static bool word_is(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (tolower((unsigned char)*a) != *b) return false;
    return !*a && !*b;
}

dn_status dn_ini_get_bool(dn_ini_section *s, const char *key, bool def, bool *out)
{
    dn_ini_entry *en = dn_ini_find(s, key);
    if (!en) {
        *out = def;
        return DN_OK;
    }
    const char *v = en->value;
    if (word_is(v, "1") || word_is(v, "true") || word_is(v, "yes") || word_is(v, "on")) {
        *out = true;
    } else if (word_is(v, "0") || word_is(v, "false") || word_is(v, "no") || word_is(v, "off")) {
        *out = false;
    } else {
        return bad_value(s, en, v, strlen(v), "a boolean (use 1/0, true/false, yes/no or on/off)");
    }
    return DN_OK;
}

dn_status dn_ini_get_string(dn_ini_section *s, const char *key, const char *def, const char **out)
{
    dn_ini_entry *en = dn_ini_find(s, key);
    *out = en ? en->value : def;
    return DN_OK;
}

/* Walks "a, b, c": calls parse on each trimmed element.  kind names the element type for messages. */
static dn_status get_list(dn_ini_section *s, const char *key, void *vals, size_t elem_size, int max, int *count,
                          bool (*parse)(const char *, size_t, void *), const char *kind)
{
    *count = 0;
    dn_ini_entry *en = dn_ini_find(s, key);
    if (!en) return DN_OK;
    const char *p = en->value;
    int n = 0;
    if (!*p) return DN_OK; /* "key =" is an empty list */
    for (;;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        const char *b = p, *te = e;
        trim(&b, &te);
        if (n >= max)
            return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s': more than %d values", s->file, en->line, en->key, max);
        if (!parse(b, (size_t)(te - b), (char *)vals + (size_t)n * elem_size)) {
            if (b == te)
                return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s': value %d of the list is empty", s->file, en->line,
                                en->key, n + 1);
            return dn_error(DN_ERR_FORMAT, "%s:%d: key '%s': '%.*s' (value %d of the list) is not %s", s->file,
                            en->line, en->key, (int)(te - b > 60 ? 60 : te - b), b, n + 1, kind);
        }
        n++;
        if (!*e) break;
        p = e + 1;
    }
    *count = n;
    return DN_OK;
}

static bool parse_int_void(const char *b, size_t len, void *out) { return parse_int_token(b, len, out); }
static bool parse_float_void(const char *b, size_t len, void *out) { return parse_float_token(b, len, out); }

dn_status dn_ini_get_ints(dn_ini_section *s, const char *key, int *vals, int max, int *count)
{
    return get_list(s, key, vals, sizeof *vals, max, count, parse_int_void, "an integer");
}

dn_status dn_ini_get_floats(dn_ini_section *s, const char *key, float *vals, int max, int *count)
{
    return get_list(s, key, vals, sizeof *vals, max, count, parse_float_void, "a finite number");
}

dn_status dn_ini_check_unused(const dn_ini *ini)
{
    if (!ini) return DN_OK;
    for (int i = 0; i < ini->n_sections; i++) {
        const dn_ini_section *s = &ini->sections[i];
        for (int j = 0; j < s->n_entries; j++)
            if (!s->entries[j].used)
                return dn_error(DN_ERR_FORMAT, "%s:%d: unknown key '%s' in [%s]", ini->file, s->entries[j].line,
                                s->entries[j].key, s->name);
    }
    return DN_OK;
}
