/* A tokenizer for Darknet-style cfg text, and a whole-file text reader.  Internal to the library.
 *
 *     # a comment                  ; also a comment
 *     [net]                        sections may repeat ([conv] ... [conv]); their order is kept
 *     batch = 64                   key = value, spaces around both are trimmed
 *     lr = 0.01   # inline         '#' or ';' after a space starts a comment too
 *     sizes = 3, 3, 5              lists are comma-separated
 *
 * The tokenizer knows no keys: a reader (the model parser) fetches values with the dn_ini_get_* helpers,
 * which mark each entry as used, and then calls dn_ini_check_unused() so that a misspelt key is an error
 * with its line number instead of being silently ignored (Darknet's option_unused). */
#ifndef DN_IO_INI_H
#define DN_IO_INI_H

#include "internal.h"

typedef struct dn_ini_entry {
    char *key;
    char *value; /* "" when the line was "key =" */
    int line;    /* 1-based */
    bool used;   /* set by the getters */
} dn_ini_entry;

typedef struct dn_ini_section {
    char *name;
    int line;
    const char *file; /* the owning dn_ini's file name, for messages */
    int n_entries;
    dn_ini_entry *entries;
} dn_ini_section;

typedef struct dn_ini {
    char *file; /* as given to dn_ini_parse ("<string>" if NULL) */
    int n_sections;
    dn_ini_section *sections;
} dn_ini;

/* Splits cfg text into sections and entries.  filename is used in messages only.  Errors: a key before
 * any section, a line that is neither "[name]" nor "key = value", an empty key or section name, a key
 * repeated within one section. */
DN_NODISCARD dn_status dn_ini_parse(const char *text, const char *filename, dn_ini **out);
void dn_ini_free(dn_ini *ini);

/* The entry for key in s, or NULL.  Marks it used. */
dn_ini_entry *dn_ini_find(dn_ini_section *s, const char *key);
/* DN_ERR_FORMAT "file:line: [name] needs key 'filters'" when key is absent. */
DN_NODISCARD dn_status dn_ini_require(dn_ini_section *s, const char *key);

/* Typed getters: an absent key gives the default and DN_OK; a present key must parse completely, else
 * DN_ERR_FORMAT "file:line: key 'x': 'abc' is not an integer". */
DN_NODISCARD dn_status dn_ini_get_int(dn_ini_section *s, const char *key, int def, int *out);
DN_NODISCARD dn_status dn_ini_get_float(dn_ini_section *s, const char *key, float def, float *out);
/* 1/0, true/false, yes/no, on/off (any case). */
DN_NODISCARD dn_status dn_ini_get_bool(dn_ini_section *s, const char *key, bool def, bool *out);
/* The value text itself (owned by the dn_ini); "" counts as a value. */
DN_NODISCARD dn_status dn_ini_get_string(dn_ini_section *s, const char *key, const char *def, const char **out);
/* Comma-separated lists into caller buffers of max elements; *count gets the number read.  An absent key
 * gives *count = 0.  More than max elements is an error. */
DN_NODISCARD dn_status dn_ini_get_ints(dn_ini_section *s, const char *key, int *vals, int max, int *count);
DN_NODISCARD dn_status dn_ini_get_floats(dn_ini_section *s, const char *key, float *vals, int max, int *count);

/* DN_OK if every entry was fetched; else DN_ERR_FORMAT naming the first one that was not, in file order:
 * "model.cfg:12: unknown key 'lern_rate' in [net]". */
DN_NODISCARD dn_status dn_ini_check_unused(const dn_ini *ini);

#endif /* DN_IO_INI_H */
