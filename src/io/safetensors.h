/* safetensors files: the checkpoint format of Hugging Face's `safetensors` (float32 tensors only).
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of JSON, then the raw little-endian data.  The JSON
 * maps each tensor name to {"dtype":"F32","shape":[...],"data_offsets":[begin,end]}, offsets relative to
 * the start of the data; an optional "__metadata__" object maps strings to strings.
 *
 * The writer is crash-safe: it writes "<path>.tmp.<pid>", syncs it and renames it over the target, so the
 * old file stays intact when anything fails.  The reader trusts nothing in the file: every size, offset
 * and string is checked before memory is allocated for it. */
#ifndef DN_IO_SAFETENSORS_H
#define DN_IO_SAFETENSORS_H

#include "internal.h"

/* Headers larger than this are refused (the reference implementation's limit). */
#define DN_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct dn_st_entry {
    const char *name;
    int ndim;
    int64_t shape[DN_MAX_DIMS];
    const float *data; /* numel floats (may be NULL when numel is 0) */
} dn_st_entry;

/* Writes n tensors, laid out in the order given, and n_meta metadata pairs (keys[i] -> values[i], any
 * UTF-8 text: newlines and quotes are escaped).  Names must be non-empty, unique and not "__metadata__". */
DN_NODISCARD dn_status dn_st_write(const char *path, int n, const dn_st_entry *entries, int n_meta,
                                   const char *const *keys, const char *const *values);

typedef struct dn_st_file dn_st_file; /* tensors and metadata read from a file; owns its memory */

/* Reads and checks a whole file.  max_bytes bounds the tensor data it may allocate (0: no bound); a file
 * that needs more is refused before anything is allocated for it. */
DN_NODISCARD dn_status dn_st_read(const char *path, uint64_t max_bytes, dn_st_file **out);
void dn_st_free(dn_st_file *f);

/* Tensors in the order of the file's header. */
int dn_st_count(const dn_st_file *f);
const dn_st_entry *dn_st_at(const dn_st_file *f, int i);
const char *dn_st_name(const dn_st_file *f, int i);
/* The tensor called name, or NULL. */
const dn_st_entry *dn_st_find(const dn_st_file *f, const char *name);
int64_t dn_st_numel(const dn_st_entry *e);

/* Metadata in header order; dn_st_meta gives the value for a key or NULL. */
int dn_st_meta_count(const dn_st_file *f);
const char *dn_st_meta_key(const dn_st_file *f, int i);
const char *dn_st_meta_value(const dn_st_file *f, int i);
const char *dn_st_meta(const dn_st_file *f, const char *key);

#endif /* DN_IO_SAFETENSORS_H */
