/* The checkpoint file's parts (checkpoint.c), for the files above this floor that write or read more than a model:
 * the trainer's state (src/train_checkpoint.c).  Floor 6.  Not installed. */
#ifndef DN_IO_CHECKPOINT_H
#define DN_IO_CHECKPOINT_H

#include "internal.h"
#include "io/safetensors.h"
#include "nn/model.h"

#define DN_CKPT_FORMAT "dendrite-checkpoint/1" /* metadata "format" of every checkpoint */
#define DN_CKPT_MAX_BYTES ((uint64_t)4 << 30)  /* larger files are refused before reading */

/* Metadata being gathered for a write: up to 32 keys with short values. */
typedef struct dn_ckpt_meta {
    int n;
    const char *keys[32];
    char vals[32][96];
    const char *vptr[32];
} dn_ckpt_meta;
void dn_ckpt_meta_add(dn_ckpt_meta *l, const char *key, const char *fmt, ...) DN_PRINTF(3, 4);

/* A generator's state as 32 hexadecimal digits, and back (DN_ERR_FORMAT naming path when malformed). */
void dn_ckpt_rng_text(const dn_rng *r, char *buf, size_t size);
dn_status dn_ckpt_rng_parse(const char *path, const char *text, dn_rng *r);
/* The model's parameters, buffers and input normalisation as entries (e must have room for all of them + 2). */
int dn_ckpt_param_entries(const dn_model *m, dn_st_entry *e);
/* Loads those back by name, checking every shape, before changing anything. */
dn_status dn_ckpt_load_params(dn_model *m, const dn_st_file *f, const char *path);
/* Reads a checkpoint (size-limited) and verifies its checksums; *f is NULL on failure (free with dn_st_free). */
dn_status dn_ckpt_open(const char *path, dn_st_file **f);
/* Compares every tensor with the CRC-32 the file records for it. */
dn_status dn_ckpt_verify(const dn_st_file *f, const char *path);
/* "name=crc;..." for the first n entries (free with dn_free; NULL when out of memory). */
char *dn_ckpt_checksums_text(const dn_st_entry *e, int n);
/* The model's vocabulary (text models) as metadata text. */
void dn_ckpt_vocab_text(const dn_model *m, char *buf, size_t size);

#endif /* DN_IO_CHECKPOINT_H */
