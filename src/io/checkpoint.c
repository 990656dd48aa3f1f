/* Checkpoints: a safetensors file holding the parameters (by name: "layers.0.weight"), the optimiser's
 * state ("optim.exp_avg", ...), the best weights seen ("best.params") and, in __metadata__, the model's
 * cfg text and the training state (epoch, step, generators, early-stopping and schedule state).
 * PyTorch users read the weights with safetensors.torch.load_file; dendrite rebuilds the model from the
 * cfg and resumes. */
#include "io/safetensors.h"
#include "io/checkpoint.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* CRC-32 (IEEE, as zlib's) of a tensor's bytes: stored per tensor in the metadata so that a flipped bit
 * anywhere in the data is reported instead of trained on. */
static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void fill_crc_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const void *data, size_t n)
{
    pthread_once(&crc_once, fill_crc_table); /* two threads saving at once must not see a half-made table */
    const unsigned char *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* Reads a checkpoint (refusing files over DN_CKPT_MAX_BYTES) and checks every tensor's CRC; *f is NULL on failure. */
dn_status dn_ckpt_open(const char *path, dn_st_file **f)
{
    *f = NULL;
    dn_status s = dn_st_read(path, DN_CKPT_MAX_BYTES, f);
    if (!s) s = dn_ckpt_verify(*f, path);
    if (s) {
        dn_st_free(*f);
        *f = NULL;
    }
    return s;
}

/* "name=crc;name=crc;..." for the first n entries (heap string, NULL when out of memory). */
char *dn_ckpt_checksums_text(const dn_st_entry *e, int n)
{
    size_t size = 1;
    for (int i = 0; i < n; i++) size += strlen(e[i].name) + 10;
    char *text = dn_alloc(size);
    if (!text) return NULL;
    size_t at = 0;
    text[0] = '\0';
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++) numel *= e[i].shape[d];
        at += (size_t)snprintf(text + at, size - at, "%s=%08" PRIx32 ";", e[i].name,
                               crc32_of(e[i].data, (size_t)numel * sizeof(float)));
    }
    return text;
}

/* Checks every tensor against the stored checksums (files without them, e.g. written by other tools, pass). */
dn_status dn_ckpt_verify(const dn_st_file *f, const char *path)
{
    const char *text = dn_st_meta(f, "checksums");
    if (!text) return DN_OK;
    for (int i = 0; i < dn_st_count(f); i++) {
        const dn_st_entry *e = dn_st_at(f, i);
        size_t len = strlen(e->name);
        const char *p = text, *hit = NULL;
        while ((p = strstr(p, e->name)) != NULL) {
            if ((p == text || p[-1] == ';') && p[len] == '=') {
                hit = p + len + 1;
                break;
            }
            p += len;
        }
        if (!hit)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' has no checksum although the file has checksums (the file "
                                           "was altered)", path, e->name);
        char *end;
        unsigned long want = strtoul(hit, &end, 16);
        uint32_t got = crc32_of(e->data, (size_t)dn_st_numel(e) * sizeof(float));
        if (*end != ';' || (uint32_t)want != got)
            return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' fails its checksum (stored %08lx, data %08" PRIx32 "): the file is "
                                           "damaged; use an earlier checkpoint", path, e->name, want, got);
    }
    return DN_OK;
}

void dn_ckpt_meta_add(dn_ckpt_meta *l, const char *key, const char *fmt, ...) DN_PRINTF(3, 4);
void dn_ckpt_meta_add(dn_ckpt_meta *l, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->vals[l->n], sizeof l->vals[0], fmt, ap);
    va_end(ap);
    l->keys[l->n] = key;
    l->vptr[l->n] = l->vals[l->n];
    l->n++;
}

void dn_ckpt_rng_text(const dn_rng *r, char *buf, size_t size)
{
    snprintf(buf, size, "%08" PRIx32 "%08" PRIx32 "%08" PRIx32 "%08" PRIx32, r->s[0], r->s[1], r->s[2], r->s[3]);
}

dn_status dn_ckpt_rng_parse(const char *path, const char *text, dn_rng *r)
{
    if (!text || strlen(text) != 32) return dn_error(DN_ERR_FORMAT, "%s: generator state is missing or malformed", path);
    for (int i = 0; i < 4; i++) {
        char part[9];
        memcpy(part, text + 8 * i, 8);
        part[8] = '\0';
        char *end;
        unsigned long v = strtoul(part, &end, 16);
        if (*end) return dn_error(DN_ERR_FORMAT, "%s: generator state '%s' is not hexadecimal", path, text);
        r->s[i] = (uint32_t)v;
    }
    return DN_OK;
}

/* Parameters and buffers of m as safetensors entries (the first n entries of e), then the input normalisation
 * ("input.mean", "input.std") when the model has one: at most n_tensors + n_buffers + 2 entries. */
int dn_ckpt_param_entries(const dn_model *m, dn_st_entry *e)
{
    int n = 0;
    for (int k = 0; k < 2; k++) {
        const dn_param *list = k ? m->buffers : m->tensors;
        int count = k ? m->n_buffers : m->n_tensors;
        for (int i = 0; i < count; i++, n++) {
            e[n].name = list[i].name;
            e[n].ndim = list[i].t.ndim;
            memcpy(e[n].shape, list[i].t.shape, sizeof e[n].shape);
            e[n].data = list[i].t.data;
        }
    }
    if (m->in_stats_n > 0) {
        const char *names[2] = {"input.mean", "input.std"};
        float *data[2] = {m->in_mean, m->in_std};
        for (int k = 0; k < 2; k++, n++) {
            e[n].name = names[k];
            e[n].ndim = 1;
            e[n].shape[0] = m->in_stats_n;
            e[n].data = data[k];
        }
    }
    return n;
}

/* The input normalisation saved with the model, if the file has one (older checkpoints have none: fine). */
static dn_status load_input_stats(dn_model *m, const dn_st_file *f, const char *path)
{
    const dn_st_entry *mean = dn_st_find(f, "input.mean"), *sd = dn_st_find(f, "input.std");
    if (!mean && !sd) return dn_model_set_input_stats(m, 0, NULL, NULL);
    if (!mean || !sd || mean->ndim != 1 || sd->ndim != 1 || mean->shape[0] != sd->shape[0])
        return dn_error(DN_ERR_FORMAT, "%s: input.mean and input.std must both be there, of one length", path);
    int64_t n = mean->shape[0];
    for (int64_t j = 0; j < n; j++)
        if (!isfinite(mean->data[j]) || !isfinite(sd->data[j]) || sd->data[j] < 0)
            return dn_error(DN_ERR_NUMERIC, "%s: the input normalisation holds a bad value at feature %lld", path,
                            (long long)j);
    return dn_model_set_input_stats(m, n, mean->data, sd->data);
}

/* The vocabulary as hex digits, two per byte ("" when the model has none). */
void dn_ckpt_vocab_text(const dn_model *m, char *buf, size_t size)
{
    size_t k = 0;
    for (int i = 0; i < m->vocab.size && k + 3 < size; i++, k += 2) snprintf(buf + k, 3, "%02x", m->vocab.bytes[i]);
    buf[k] = '\0';
}

static dn_status vocab_parse(dn_model *m, const char *path, const char *text)
{
    dn_vocab v;
    memset(&v, 0, sizeof v);
    for (int b = 0; b < 256; b++) v.index[b] = -1;
    size_t n = text ? strlen(text) : 0;
    if (n % 2 || n > 512) return dn_error(DN_ERR_FORMAT, "%s: metadata 'vocab' is malformed", path);
    for (size_t i = 0; i < n; i += 2) {
        char hex[3] = {text[i], text[i + 1], 0}, *end;
        if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]))
            return dn_error(DN_ERR_FORMAT, "%s: metadata 'vocab' is malformed", path);
        unsigned long b = strtoul(hex, &end, 16);
        if (*end || b > 255 || v.index[b] >= 0) return dn_error(DN_ERR_FORMAT, "%s: metadata 'vocab' is malformed", path);
        v.index[b] = (int16_t)v.size;
        v.bytes[v.size++] = (unsigned char)b;
    }
    dn_model_set_vocab(m, &v);
    return DN_OK;
}

dn_status dn_model_save(const dn_model *m, const char *path)
{
    if (!m || !path) return dn_error(DN_ERR_ARG, "dn_model_save: model and path must not be NULL");
    dn_st_entry *e = dn_calloc((size_t)m->n_tensors + (size_t)m->n_buffers + 3, sizeof *e);
    if (!e) return DN_ERR_NOMEM;
    int n = dn_ckpt_param_entries(m, e);
    char vocab[520];
    dn_ckpt_vocab_text(m, vocab, sizeof vocab);
    char *sums = dn_ckpt_checksums_text(e, n);
    if (!sums) {
        dn_free(e);
        return DN_ERR_NOMEM;
    }
    const char *keys[] = {"format", "vocab", "checksums", "cfg"};
    const char *vals[] = {DN_CKPT_FORMAT, vocab, sums, m->cfg_text ? m->cfg_text : ""};
    dn_status s = dn_st_write(path, n, e, m->cfg_text ? 4 : 3, keys, vals);
    dn_free(sums);
    dn_free(e);
    return s;
}

/* Copies every parameter and buffer of m from the file, checking names, shapes and values first. */
dn_status dn_ckpt_load_params(dn_model *m, const dn_st_file *f, const char *path)
{
    for (int pass = 0; pass < 2; pass++) { /* pass 0 checks everything, pass 1 copies */
        for (int k = 0; k < 2; k++) {
            dn_param *list = k ? m->buffers : m->tensors;
            int count = k ? m->n_buffers : m->n_tensors;
            for (int i = 0; i < count; i++) {
                dn_param *p = &list[i];
                const dn_st_entry *e = dn_st_find(f, p->name);
                if (pass == 1) {
                    memcpy(p->t.data, e->data, (size_t)dn_st_numel(e) * sizeof(float));
                    continue;
                }
                if (!e)
                    return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' is missing (the checkpoint does not match this model)",
                                    path, p->name);
                bool same = e->ndim == p->t.ndim;
                for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == p->t.shape[d];
                if (!same)
                    return dn_error(DN_ERR_FORMAT, "%s: tensor '%s' has shape %s but the model needs %s", path, p->name,
                                    dn_shape_str(e->ndim, e->shape), dn_tshape(&p->t));
                int64_t numel = dn_st_numel(e);
                for (int64_t j = 0; j < numel; j++)
                    if (!isfinite(e->data[j]))
                        return dn_error(DN_ERR_NUMERIC, "%s: tensor '%s' holds a non-finite value at element %lld", path,
                                        p->name, (long long)j);
            }
        }
    }
    return DN_OK;
}

dn_model_file dn_model_file_kind(const char *path)
{
    if (!path) return DN_MODEL_CFG;
    FILE *f = fopen(path, "rb");
    unsigned char h[9];
    size_t n = f ? fread(h, 1, 9, f) : 0;
    if (f) fclose(f);
    if (n == 9 && h[8] == '{' && h[7] == 0 && h[6] == 0) return DN_MODEL_CHECKPOINT;
    size_t len = strlen(path);
    return len > 5 && !strcmp(path + len - 5, ".onnx") ? DN_MODEL_ONNX : DN_MODEL_CFG;
}

dn_status dn_model_open(const char *path, dn_model **model, dn_train_config *train)
{
    if (!path || !model) return dn_error(DN_ERR_ARG, "dn_model_open: path and model must not be NULL");
    switch (dn_model_file_kind(path)) {
    case DN_MODEL_CHECKPOINT: return dn_model_load(path, model, train);
    case DN_MODEL_ONNX: return dn_model_import_onnx(path, model, train);
    case DN_MODEL_CFG: break;
    }
    return dn_model_load_cfg(path, model, train);
}

dn_status dn_model_load(const char *path, dn_model **model, dn_train_config *train)
{
    if (!path || !model) return dn_error(DN_ERR_ARG, "dn_model_load: path and model must not be NULL");
    *model = NULL;
    dn_st_file *f = NULL;
    dn_model *m = NULL;
    dn_status s = dn_ckpt_open(path, &f);
    if (s) return s;
    const char *cfg = dn_st_meta(f, "cfg");
    if (!cfg || !*cfg) {
        s = dn_error(DN_ERR_FORMAT, "%s: the checkpoint holds no model cfg (it was saved from a model built in C: "
                                    "build the same model and use dn_model_load_params)", path);
        goto done;
    }
    char where[300];
    snprintf(where, sizeof where, "%s[cfg]", path);
    if ((s = dn_model_from_cfg(cfg, where, &m, train))) goto done;
    if ((s = dn_ckpt_load_params(m, f, path))) goto done;
    if ((s = load_input_stats(m, f, path))) goto done;
    if ((s = vocab_parse(m, path, dn_st_meta(f, "vocab")))) goto done;
done:
    dn_st_free(f);
    if (s) {
        dn_model_free(m);
        return s;
    }
    *model = m;
    return DN_OK;
}

dn_status dn_model_load_params(dn_model *m, const char *path)
{
    if (!m || !path) return dn_error(DN_ERR_ARG, "dn_model_load_params: model and path must not be NULL");
    dn_st_file *f = NULL;
    dn_status s = dn_ckpt_open(path, &f);
    if (s) return s;
    s = dn_ckpt_load_params(m, f, path);
    dn_st_free(f);
    return s;
}
