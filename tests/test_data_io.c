/* Data loading, batching, safetensors checkpoints and the cfg tokenizer: real MNIST when it is present,
 * and every malformed-file path of each reader.  Temporary files live in a mkdtemp folder removed at the end. */
#include "test.h"

#include "internal.h"
#include "io/ini.h"
#include "io/safetensors.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static char tmp_dir[64];

/* name inside the temporary folder; the result lives until 8 more calls (copy it to keep it longer) */
static const char *tpath(const char *name)
{
    static char buf[8][256];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f) return;
    CHECK(n == 0 || fwrite(data, 1, n, f) == n);
    CHECK(fclose(f) == 0);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* The last error contains every given fragment. */
#define CHECK_ERR(status, expected, ...)                                                                    \
    do {                                                                                                    \
        dn_status st_ = (status);                                                                           \
        CHECK_MSG(st_ == (expected), "%s returned %s, expected %s (%s)", #status, dn_status_name(st_),      \
                  dn_status_name(expected), dn_last_error());                                               \
        const char *frags_[] = {__VA_ARGS__};                                                               \
        for (size_t i_ = 0; i_ < sizeof frags_ / sizeof *frags_; i_++)                                      \
            CHECK_MSG(strstr(dn_last_error(), frags_[i_]) != NULL, "message '%s' lacks '%s'",               \
                      dn_last_error(), frags_[i_]);                                                         \
    } while (0)

/* ------------------------------------------------------------------ IDX */

/* An IDX header: 00 00 type ndim, then big-endian dims. Returns its length. */
static size_t idx_header(unsigned char *h, int type, int ndim, const uint32_t *dims)
{
    h[0] = 0, h[1] = 0, h[2] = (unsigned char)type, h[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        h[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        h[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        h[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        h[7 + 4 * i] = (unsigned char)dims[i];
    }
    return 4 + 4 * (size_t)ndim;
}

static void write_idx(const char *path, int type, int ndim, const uint32_t *dims, const void *data, size_t n)
{
    unsigned char buf[1024];
    size_t h = idx_header(buf, type, ndim, dims);
    memcpy(buf + h, data, n);
    write_bytes(path, buf, h + n);
}

static void test_idx_mnist(void)
{
    char images[512], labels[512];
    snprintf(images, sizeof images, "%s/mnist/train-images-idx3-ubyte", t_data_dir());
    snprintf(labels, sizeof labels, "%s/mnist/train-labels-idx1-ubyte", t_data_dir());
    if (!file_exists(images) || !file_exists(labels)) {
        t_skip("mnist", "%s not found (run scripts/fetch-mnist.sh)", images);
        return;
    }
    dn_dataset *d = NULL;
    CHECK_OK(dn_dataset_load_idx(images, labels, 1.0f / 255.0f, &d));
    if (!d) return;
    CHECK(d->n == 60000);
    CHECK(d->ndim == 2 && d->shape[0] == 28 && d->shape[1] == 28);
    CHECK(dn_dataset_sample_size(d) == 784);
    CHECK(d->n_classes == 10);
    CHECK(d->y[0] == 5.0f);
    int counts[10] = {0};
    bool labels_ok = true;
    for (int64_t i = 0; i < d->n; i++) {
        int c = (int)d->y[i];
        if (c < 0 || c > 9 || (float)c != d->y[i]) labels_ok = false;
        else counts[c]++;
    }
    CHECK(labels_ok);
    CHECK(counts[1] == 6742); /* the well-known class counts of the training set */
    CHECK(counts[5] == 5421);
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < d->n * 784; i++) {
        lo = (float)-t_worse(-lo, -d->x[i]); /* NaN-aware minimum and maximum */
        hi = (float)t_worse(hi, d->x[i]);
    }
    CHECK(lo == 0.0f && hi == 1.0f);
    dn_dataset_free(d);

    snprintf(images, sizeof images, "%s/mnist/t10k-images-idx3-ubyte", t_data_dir());
    snprintf(labels, sizeof labels, "%s/mnist/t10k-labels-idx1-ubyte", t_data_dir());
    CHECK_OK(dn_dataset_load_idx(images, labels, 1.0f / 255.0f, &d));
    if (d) {
        CHECK(d->n == 10000 && d->n_classes == 10 && d->y[0] == 7.0f);
        dn_dataset_free(d);
    }
    /* train images with test labels: the counts disagree */
    snprintf(images, sizeof images, "%s/mnist/train-images-idx3-ubyte", t_data_dir());
    CHECK_ERR(dn_dataset_load_idx(images, labels, 1.0f, &d), DN_ERR_SHAPE, "images have 60000 samples but labels 10000");
    CHECK(d == NULL);
}

static void test_idx_small(void)
{
    const uint32_t dims3[] = {3, 2, 2}, dims1[] = {3};
    unsigned char px[12] = {0, 255, 128, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    unsigned char lab[3] = {2, 0, 7};
    write_idx(tpath("img"), 0x08, 3, dims3, px, 12);
    write_idx(tpath("lab"), 0x08, 1, dims1, lab, 3);
    dn_dataset *d = NULL;
    CHECK_OK(dn_dataset_load_idx(tpath("img"), tpath("lab"), 0.5f, &d));
    if (d) {
        CHECK(d->n == 3 && d->ndim == 2 && d->shape[0] == 2 && d->shape[1] == 2);
        CHECK(d->x[1] == 127.5f && d->x[2] == 64.0f && d->x[11] == 4.5f);
        CHECK(d->y[0] == 2 && d->y[1] == 0 && d->y[2] == 7 && d->n_classes == 8);
        dn_dataset_free(d);
    }
    /* no labels: y is zero and the class count unknown */
    CHECK_OK(dn_dataset_load_idx(tpath("img"), NULL, 1.0f, &d));
    if (d) {
        CHECK(d->y[2] == 0.0f && d->n_classes == 0 && d->x[1] == 255.0f);
        dn_dataset_free(d);
    }
    /* every element type, big-endian: sbyte, short, int, float, double */
    const uint32_t dims2[] = {2, 1};
    signed char sb[2] = {-3, 5};
    unsigned char sh[4] = {0xFF, 0xFE, 0x01, 0x00};                 /* -2, 256 */
    unsigned char in[8] = {0xFF, 0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x00, 0x00}; /* -3, 65536 */
    unsigned char fl[8] = {0x3F, 0xC0, 0x00, 0x00, 0xC0, 0x20, 0x00, 0x00}; /* 1.5, -2.5 */
    unsigned char db[16] = {0x3F, 0xD0, 0, 0, 0, 0, 0, 0, 0x40, 0x59, 0, 0, 0, 0, 0, 0}; /* 0.25, 100 */
    struct { int type; const void *data; size_t n; float a, b; } cases[] = {
        {0x09, sb, 2, -3, 5}, {0x0B, sh, 4, -2, 256}, {0x0C, in, 8, -3, 65536}, {0x0D, fl, 8, 1.5f, -2.5f},
        {0x0E, db, 16, 0.25f, 100}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_idx(tpath("typed"), cases[i].type, 2, dims2, cases[i].data, cases[i].n);
        CHECK_OK(dn_dataset_load_idx(tpath("typed"), NULL, 1.0f, &d));
        if (d) {
            CHECK_MSG(d->x[0] == cases[i].a && d->x[1] == cases[i].b, "type 0x%02x read %g %g", cases[i].type,
                      (double)d->x[0], (double)d->x[1]);
            CHECK(d->ndim == 1 && d->shape[0] == 1);
            dn_dataset_free(d);
        }
    }
    /* a rank-1 file holds one value per sample: shape [1] */
    write_idx(tpath("rank1"), 0x08, 1, dims1, lab, 3);
    CHECK_OK(dn_dataset_load_idx(tpath("rank1"), tpath("lab"), 1.0f, &d));
    if (d) {
        CHECK(d->n == 3 && d->ndim == 1 && d->shape[0] == 1 && d->x[2] == 7.0f);
        dn_dataset_free(d);
    }
}

static void test_idx_malformed(void)
{
    dn_dataset *d = (dn_dataset *)1;
    const uint32_t dims3[] = {3, 2, 2}, dims1[] = {3}, dims2[] = {2};
    unsigned char px[16] = {0};
    unsigned char buf[64];
    write_idx(tpath("lab"), 0x08, 1, dims1, px, 3);

    CHECK_ERR(dn_dataset_load_idx(tpath("missing"), NULL, 1.0f, &d), DN_ERR_IO, "missing");
    CHECK(d == NULL);
    /* truncated: 12 bytes promised, 10 present */
    write_idx(tpath("trunc"), 0x08, 3, dims3, px, 10);
    CHECK_ERR(dn_dataset_load_idx(tpath("trunc"), NULL, 1.0f, &d), DN_ERR_FORMAT, "trunc", "expected 12 bytes of data",
              "found 10");
    /* trailing garbage */
    write_idx(tpath("trail"), 0x08, 3, dims3, px, 13);
    CHECK_ERR(dn_dataset_load_idx(tpath("trail"), NULL, 1.0f, &d), DN_ERR_FORMAT, "trail", "1 bytes of trailing data");
    /* wrong magic, gzip, unknown type, bad ndim, truncated header, tiny file */
    memcpy(buf, "\x01\x02\x08\x01", 4);
    write_bytes(tpath("magic"), buf, 20);
    CHECK_ERR(dn_dataset_load_idx(tpath("magic"), NULL, 1.0f, &d), DN_ERR_FORMAT, "not an IDX file", "01 02 08 01");
    memcpy(buf, "\x1f\x8b\x08\x00", 4);
    write_bytes(tpath("gz"), buf, 20);
    CHECK_ERR(dn_dataset_load_idx(tpath("gz"), NULL, 1.0f, &d), DN_ERR_FORMAT, "gzip");
    size_t h = idx_header(buf, 0x0A, 1, dims1);
    write_bytes(tpath("type"), buf, h + 3);
    CHECK_ERR(dn_dataset_load_idx(tpath("type"), NULL, 1.0f, &d), DN_ERR_FORMAT, "element type 0x0a");
    h = idx_header(buf, 0x08, 0, dims1);
    write_bytes(tpath("ndim0"), buf, h + 3);
    CHECK_ERR(dn_dataset_load_idx(tpath("ndim0"), NULL, 1.0f, &d), DN_ERR_FORMAT, "0 dimensions");
    memcpy(buf, "\x00\x00\x08\x09", 4);
    write_bytes(tpath("ndim9"), buf, 48);
    CHECK_ERR(dn_dataset_load_idx(tpath("ndim9"), NULL, 1.0f, &d), DN_ERR_FORMAT, "9 dimensions");
    h = idx_header(buf, 0x08, 3, dims3);
    write_bytes(tpath("hdr"), buf, 10);
    CHECK_ERR(dn_dataset_load_idx(tpath("hdr"), NULL, 1.0f, &d), DN_ERR_FORMAT, "truncated IDX header");
    write_bytes(tpath("tiny"), buf, 2);
    CHECK_ERR(dn_dataset_load_idx(tpath("tiny"), NULL, 1.0f, &d), DN_ERR_FORMAT, "too short");
    /* a zero dimension */
    const uint32_t dz[] = {3, 0};
    write_idx(tpath("zero"), 0x08, 2, dz, px, 0);
    CHECK_ERR(dn_dataset_load_idx(tpath("zero"), NULL, 1.0f, &d), DN_ERR_FORMAT, "dimension 1", "is 0");
    /* absurd dimensions are refused from the header alone, before any allocation */
    const uint32_t huge2[] = {0x80000000u, 0x80000000u}, huge3[] = {0x80000000u, 0x80000000u, 0x80000000u};
    write_idx(tpath("huge2"), 0x08, 2, huge2, px, 16);
    CHECK_ERR(dn_dataset_load_idx(tpath("huge2"), NULL, 1.0f, &d), DN_ERR_FORMAT,
              "expected 4611686018427387904 bytes of data", "found 16");
    write_idx(tpath("huge3"), 0x0E, 3, huge3, px, 16);
    CHECK_ERR(dn_dataset_load_idx(tpath("huge3"), NULL, 1.0f, &d), DN_ERR_FORMAT, "need more than", "found 16");
    /* count mismatch, labels of rank 2, bad labels */
    write_idx(tpath("img"), 0x08, 3, dims3, px, 12);
    write_idx(tpath("lab2"), 0x08, 1, dims2, px, 2);
    CHECK_ERR(dn_dataset_load_idx(tpath("img"), tpath("lab2"), 1.0f, &d), DN_ERR_SHAPE,
              "images have 3 samples but labels 2");
    const uint32_t dl2[] = {3, 1};
    write_idx(tpath("labr2"), 0x08, 2, dl2, px, 3);
    CHECK_ERR(dn_dataset_load_idx(tpath("img"), tpath("labr2"), 1.0f, &d), DN_ERR_FORMAT, "labr2", "one dimension");
    signed char neg[3] = {1, -1, 0};
    write_idx(tpath("labneg"), 0x09, 1, dims1, neg, 3);
    CHECK_ERR(dn_dataset_load_idx(tpath("img"), tpath("labneg"), 1.0f, &d), DN_ERR_FORMAT, "label 1 is -1");
    unsigned char half[12] = {0, 0, 0, 0, 0x3F, 0xC0, 0, 0, 0, 0, 0, 0}; /* 0, 1.5, 0 */
    write_idx(tpath("labhalf"), 0x0D, 1, dims1, half, 12);
    CHECK_ERR(dn_dataset_load_idx(tpath("img"), tpath("labhalf"), 1.0f, &d), DN_ERR_FORMAT, "label 1 is 1.5");
    unsigned char nan[4] = {0x7F, 0xC0, 0, 0};
    const uint32_t d11[] = {1, 1};
    write_idx(tpath("nan"), 0x0D, 2, d11, nan, 4);
    CHECK_ERR(dn_dataset_load_idx(tpath("nan"), NULL, 1.0f, &d), DN_ERR_NUMERIC, "element 0");
    CHECK_ERR(dn_dataset_load_idx(tpath("img"), NULL, 0.0f, &d), DN_ERR_ARG, "scale");
    CHECK_ERR(dn_dataset_load_idx(tmp_dir, NULL, 1.0f, &d), DN_ERR_IO, "not a regular file");
    CHECK(d == NULL);
}

/* ------------------------------------------------------------------ CSV */

static void test_csv_good(void)
{
    dn_dataset *d = NULL;
    /* a header detected by its words, CRLF, spaces, a trailing blank line; the label first */
    write_text(tpath("a.csv"), "label, f1 ,f2\r\n1, 0.5, -2\r\n0,1e3 , 3\r\n\r\n2,  7,8\r\n\r\n");
    CHECK_OK(dn_dataset_load_csv(tpath("a.csv"), 0, -1, &d));
    if (d) {
        CHECK(d->n == 3 && d->ndim == 1 && d->shape[0] == 2 && d->n_classes == 3);
        float ex[] = {0.5f, -2, 1000, 3, 7, 8}, ey[] = {1, 0, 2};
        for (int i = 0; i < 6; i++) CHECK(d->x[i] == ex[i]);
        for (int i = 0; i < 3; i++) CHECK(d->y[i] == ey[i]);
        dn_dataset_free(d);
    }
    /* no header, label last (-1), regression targets */
    write_text(tpath("b.csv"), "1,2,0.5\n3,4,-1.25");
    CHECK_OK(dn_dataset_load_csv(tpath("b.csv"), -1, -1, &d));
    if (d) {
        CHECK(d->n == 2 && d->shape[0] == 2 && d->n_classes == 0);
        CHECK(d->x[2] == 3 && d->y[0] == 0.5f && d->y[1] == -1.25f);
        dn_dataset_free(d);
    }
    /* header forced: a numeric first row is skipped */
    CHECK_OK(dn_dataset_load_csv(tpath("b.csv"), 1, 1, &d));
    if (d) {
        CHECK(d->n == 1 && d->y[0] == 4 && d->x[0] == 3 && d->x[1] == -1.25f && d->n_classes == 5);
        dn_dataset_free(d);
    }
    CHECK_OK(dn_dataset_load_csv(tpath("b.csv"), -2, 0, &d));
    if (d) {
        CHECK(d->n == 2 && d->y[1] == 4 && d->n_classes == 5);
        dn_dataset_free(d);
    }
}

static void test_csv_malformed(void)
{
    dn_dataset *d = (dn_dataset *)1;
    write_text(tpath("c.csv"), "a,b,c\n1,2,3\n4,abc,6\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, -1, &d), DN_ERR_FORMAT, "c.csv:3: column 2: 'abc' is not a number");
    CHECK(d == NULL);
    write_text(tpath("c.csv"), "1,2,3\n4,5,6\n\n7,8\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, -1, &d), DN_ERR_FORMAT, "line 4 has 2 columns, expected 3");
    write_text(tpath("c.csv"), "1,2,3\n4,5,6,7\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, "line 2 has 4 columns, expected 3");
    write_text(tpath("c.csv"), "");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, -1, &d), DN_ERR_FORMAT, "empty file");
    write_text(tpath("c.csv"), "\n  \n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, -1, &d), DN_ERR_FORMAT, "empty file");
    write_text(tpath("c.csv"), "x,y\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, -1, &d), DN_ERR_FORMAT, "no data rows");
    write_text(tpath("c.csv"), "1,2,3\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), 3, 0, &d), DN_ERR_ARG, "label column 3 is out of range for 3 columns");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -4, 0, &d), DN_ERR_ARG, "label column -4");
    write_text(tpath("c.csv"), "1,2,3\n4,,6\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, "c.csv:2: column 2: empty field");
    write_text(tpath("c.csv"), "1,2,3\n4,5,nan\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, ":2: column 3: 'nan' is not a finite");
    write_text(tpath("c.csv"), "1,2,3\n4,5,1e40\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, "column 3: '1e40'", "float32");
    write_text(tpath("c.csv"), "1,2,3\n4,5,6x\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, "'6x' is not a number");
    /* without a header, a word in the first row is an error at line 1 */
    write_text(tpath("c.csv"), "a,b\n1,2\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, "c.csv:1: column 1: 'a'");
    write_text(tpath("c.csv"), "1\n2\n");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, "1 column");
    write_bytes(tpath("c.csv"), "1,2\n3,\0", 7);
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 0, &d), DN_ERR_FORMAT, "c.csv:2", "NUL byte");
    CHECK_ERR(dn_dataset_load_csv(tpath("none.csv"), -1, 0, &d), DN_ERR_IO, "none.csv");
    CHECK_ERR(dn_dataset_load_csv(tmp_dir, -1, 0, &d), DN_ERR_IO, "directory");
    CHECK_ERR(dn_dataset_load_csv(tpath("c.csv"), -1, 2, &d), DN_ERR_ARG, "header");
    CHECK(d == NULL);
}

/* ------------------------------------------------------------------ data sets and batches */

/* n samples of shape [2]: x = (i, 10 i), y = i. */
static dn_dataset *counting_dataset(int64_t n)
{
    dn_dataset *d = calloc(1, sizeof *d);
    d->n = n;
    d->ndim = 1;
    d->shape[0] = 2;
    d->x = malloc((size_t)(2 * n + 1) * sizeof(float));
    d->y = malloc((size_t)(n + 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        d->x[2 * i] = (float)i;
        d->x[2 * i + 1] = 10.0f * (float)i;
        d->y[i] = (float)i;
    }
    return d;
}

static void free_counting(dn_dataset *d)
{
    free(d->x);
    free(d->y);
    free(d);
}

static void test_dataset_split(void)
{
    dn_dataset *d = counting_dataset(10), *a = NULL, *b = NULL, *a2 = NULL, *b2 = NULL;
    CHECK(dn_dataset_sample_size(d) == 2);
    dn_dataset_free(NULL);
    CHECK_OK(dn_dataset_split(d, 0.3, 42, &a, &b));
    if (a && b) {
        CHECK(a->n == 7 && b->n == 3);
        CHECK(a->ndim == 1 && a->shape[0] == 2 && b->shape[0] == 2);
        /* every sample lands in exactly one part, x still matching y, original order kept */
        int seen[10] = {0};
        for (int part = 0; part < 2; part++) {
            const dn_dataset *p = part ? b : a;
            for (int64_t i = 0; i < p->n; i++) {
                int k = (int)p->y[i];
                seen[k]++;
                CHECK(p->x[2 * i] == (float)k && p->x[2 * i + 1] == 10.0f * (float)k);
                if (i) CHECK(p->y[i] > p->y[i - 1]);
            }
        }
        for (int k = 0; k < 10; k++) CHECK(seen[k] == 1);
        /* the same seed gives the same split */
        CHECK_OK(dn_dataset_split(d, 0.3, 42, &a2, &b2));
        if (b2) CHECK(memcmp(b->y, b2->y, 3 * sizeof(float)) == 0);
        dn_dataset_free(a2);
        dn_dataset_free(b2);
    }
    dn_dataset_free(a);
    dn_dataset_free(b);
    /* 60000 * 0.1 is 6000 exactly, whatever the rounding of the product */
    dn_dataset *big = counting_dataset(60000);
    CHECK_OK(dn_dataset_split(big, 0.1, 1, &a, &b));
    if (a && b) CHECK(a->n == 54000 && b->n == 6000);
    dn_dataset_free(a);
    dn_dataset_free(b);
    free_counting(big);
    /* fraction 0: b is an empty data set, not NULL */
    CHECK_OK(dn_dataset_split(d, 0.0, 1, &a, &b));
    if (a && b) CHECK(a->n == 10 && b->n == 0 && b->shape[0] == 2);
    dn_dataset_free(a);
    dn_dataset_free(b);
    CHECK_ERR(dn_dataset_split(d, 1.0, 1, &a, &b), DN_ERR_ARG, "fraction 1");
    CHECK_ERR(dn_dataset_split(d, -0.1, 1, &a, &b), DN_ERR_ARG, "fraction");
    CHECK_ERR(dn_dataset_split(d, NAN, 1, &a, &b), DN_ERR_ARG, "fraction");
    CHECK_ERR(dn_dataset_split(d, 0.99, 1, &a, &b), DN_ERR_ARG, "none for training");
    CHECK(a == NULL && b == NULL);
    free_counting(d);
}

static void test_dataset_stats(void)
{
    dn_dataset *d = counting_dataset(4); /* features (0,1,2,3) and (0,10,20,30) */
    d->x[1] = d->x[3] = d->x[5] = d->x[7] = 5.0f;  /* second feature constant */
    float mean[2], std[2];
    dn_dataset_stats(d, mean, std);
    CHECK_NEAR(mean[0], 1.5, 1e-6);
    CHECK_NEAR(std[0], sqrt(1.25), 1e-6); /* population std of 0..3 */
    CHECK_NEAR(mean[1], 5.0, 1e-6);
    CHECK(std[1] == 0.0f);
    CHECK_OK(dn_dataset_normalize(d, mean, std));
    CHECK_NEAR(d->x[0], -1.5 / sqrt(1.25), 1e-6);
    CHECK_NEAR(d->x[6], 1.5 / sqrt(1.25), 1e-6);
    CHECK(d->x[1] == 0.0f && d->x[7] == 0.0f); /* std 0 is treated as 1 */
    free_counting(d);
    /* more features than one accumulation block */
    dn_dataset *w = calloc(1, sizeof *w);
    w->n = 3;
    w->ndim = 1;
    w->shape[0] = 300;
    w->x = malloc(900 * sizeof(float));
    w->y = calloc(3, sizeof(float));
    for (int i = 0; i < 900; i++) w->x[i] = (float)(i % 300) + (float)(i / 300);
    float m[300], s[300];
    dn_dataset_stats(w, m, s);
    CHECK_NEAR(m[0], 1.0, 1e-6);
    CHECK_NEAR(m[299], 300.0, 1e-5);
    CHECK_NEAR(s[299], sqrt(2.0 / 3.0), 1e-6);
    free_counting(w);
}

/* ------------------------------------------------------------------ byte storage */

/* An IDX file of any size (write_idx's buffer is small). */
static void write_idx_big(const char *path, int type, int ndim, const uint32_t *dims, const void *data, size_t n)
{
    unsigned char *buf = malloc(64 + n);
    if (!buf) return;
    size_t h = idx_header(buf, type, ndim, dims);
    memcpy(buf + h, data, n);
    write_bytes(path, buf, h + n);
    free(buf);
}

/* n images of 4x5 bytes, every byte value present, and labels 0..2 that depend on the pixels (learnable). */
enum { BYTES_N = 300, BYTES_SS = 20 };
static void write_byte_images(const char *images, const char *labels)
{
    static unsigned char px[BYTES_N * BYTES_SS], lab[BYTES_N];
    uint32_t r = 12345;
    for (int i = 0; i < BYTES_N * BYTES_SS; i++) {
        r = r * 1664525u + 1013904223u;
        px[i] = i < 256 ? (unsigned char)i : (unsigned char)(r >> 24);
    }
    for (int i = 0; i < BYTES_N; i++) lab[i] = (unsigned char)((px[i * BYTES_SS] + px[i * BYTES_SS + 7]) % 3);
    const uint32_t dims[] = {BYTES_N, 4, 5}, ldims[] = {BYTES_N};
    write_idx_big(images, 0x08, 3, dims, px, sizeof px);
    write_idx_big(labels, 0x08, 1, ldims, lab, sizeof lab);
}

/* a and b hold the same samples, bit for bit, whatever their storage (and the same targets and shape). */
static bool same_samples(const dn_dataset *a, const dn_dataset *b)
{
    if (!a || !b || a->n != b->n || a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof a->shape) ||
        a->n_classes != b->n_classes || dn_dataset_target_size(a) != dn_dataset_target_size(b))
        return false;
    int64_t ss = dn_dataset_sample_size(a), nx = a->n * ss, ny = a->n * dn_dataset_target_size(a);
    float *xa = malloc((size_t)(nx + 1) * sizeof(float)), *xb = malloc((size_t)(nx + 1) * sizeof(float));
    bool same = xa && xb && dn_dataset_get(a, 0, a->n, xa) == a->n && dn_dataset_get(b, 0, b->n, xb) == b->n &&
                memcmp(xa, xb, (size_t)nx * sizeof(float)) == 0 && memcmp(a->y, b->y, (size_t)ny * sizeof(float)) == 0;
    free(xa);
    free(xb);
    return same;
}

static bool is_bytes(const dn_dataset *d) { return d && d->x == NULL && d->x_bytes != NULL; }

/* The compact loader keeps bytes, and dn_dataset_get gives exactly the floats the float loader makes. */
static void test_idx_bytes(void)
{
    write_byte_images(tpath("bimg"), tpath("blab"));
    const float scales[] = {1.0f / 255.0f, 1.0f, 0.5f, 3.7f, -0.0123f, 1e-30f, 1e35f, 1.0f / 3.0f};
    for (size_t k = 0; k < sizeof scales / sizeof *scales; k++) {
        dn_dataset *f = NULL, *b = NULL;
        CHECK_OK(dn_dataset_load_idx(tpath("bimg"), tpath("blab"), scales[k], &f));
        CHECK_OK(dn_dataset_load_idx_compact(tpath("bimg"), tpath("blab"), scales[k], &b));
        if (f && b) {
            CHECK(f->x && !f->x_bytes);
            CHECK(is_bytes(b) && b->x_scale == scales[k] && !b->x_mean && !b->x_std);
            CHECK(b->n == BYTES_N && b->ndim == 2 && b->shape[0] == 4 && b->shape[1] == 5 && b->n_classes == 3);
            CHECK_MSG(same_samples(f, b), "scale %g: byte samples differ from float samples", (double)scales[k]);
        }
        dn_dataset_free(f);
        dn_dataset_free(b);
    }
    /* dn_dataset_get copies what is there: fewer at the end, none out of range */
    dn_dataset *b = NULL;
    CHECK_OK(dn_dataset_load_idx_compact(tpath("bimg"), NULL, 1.0f, &b));
    if (b) {
        float out[3 * BYTES_SS];
        CHECK(dn_dataset_get(b, 1, 2, out) == 2 && out[0] == 20.0f && out[19] == 39.0f && out[20] == 40.0f);
        CHECK(dn_dataset_get(b, BYTES_N - 1, 3, out) == 1);
        CHECK(dn_dataset_get(b, BYTES_N, 1, out) == 0 && dn_dataset_get(b, -1, 1, out) == 0);
        CHECK(dn_dataset_get(b, 0, 0, out) == 0 && dn_dataset_get(NULL, 0, 1, out) == 0);
        CHECK(dn_dataset_get(b, 0, 1, NULL) == 0);
        CHECK(b->n_classes == 0 && b->y[0] == 0.0f);
        dn_dataset_free(b);
    }
    /* other element types load as floats */
    const uint32_t dims2[] = {2, 1};
    unsigned char fl[8] = {0x3F, 0xC0, 0x00, 0x00, 0xC0, 0x20, 0x00, 0x00}; /* 1.5, -2.5 */
    write_idx(tpath("typed"), 0x0D, 2, dims2, fl, 8);
    CHECK_OK(dn_dataset_load_idx_compact(tpath("typed"), NULL, 2.0f, &b));
    if (b) {
        CHECK(b->x && !b->x_bytes && b->x[0] == 3.0f && b->x[1] == -5.0f);
        dn_dataset_free(b);
    }
    /* the same errors as the float loader, named for the compact one */
    CHECK_ERR(dn_dataset_load_idx_compact(tpath("missing"), NULL, 1.0f, &b), DN_ERR_IO, "missing");
    CHECK_ERR(dn_dataset_load_idx_compact(tpath("bimg"), NULL, 0.0f, &b), DN_ERR_ARG, "dn_dataset_load_idx_compact",
              "scale");
    CHECK_ERR(dn_dataset_load_idx_compact(NULL, NULL, 1.0f, &b), DN_ERR_ARG, "no images file");
    const uint32_t dims3[] = {3, 2, 2};
    unsigned char px[13] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    write_idx(tpath("trunc"), 0x08, 3, dims3, px, 10);
    CHECK_ERR(dn_dataset_load_idx_compact(tpath("trunc"), NULL, 1.0f, &b), DN_ERR_FORMAT, "expected 12 bytes of data");
    write_idx(tpath("trail"), 0x08, 3, dims3, px, 13);
    CHECK_ERR(dn_dataset_load_idx_compact(tpath("trail"), NULL, 1.0f, &b), DN_ERR_FORMAT, "1 bytes of trailing data");
    write_idx(tpath("img"), 0x08, 3, dims3, px, 12);
    const uint32_t dims1b[] = {2};
    write_idx(tpath("lab2"), 0x08, 1, dims1b, px, 2);
    CHECK_ERR(dn_dataset_load_idx_compact(tpath("img"), tpath("lab2"), 1.0f, &b), DN_ERR_SHAPE,
              "images have 3 samples but labels 2");
    /* a scale that overflows float32 for some byte: the first such element, as the float loader says */
    CHECK_ERR(dn_dataset_load_idx(tpath("img"), NULL, 1e38f, &b), DN_ERR_NUMERIC, "element 4 is");
    CHECK_ERR(dn_dataset_load_idx_compact(tpath("img"), NULL, 1e38f, &b), DN_ERR_NUMERIC, "element 4 is 4", "1e+38");
    CHECK(b == NULL);
}

/* Split, stats, normalisation, batches and streams give the same bits from bytes as from floats. */
static void test_bytes_dataset_ops(void)
{
    write_byte_images(tpath("bimg"), tpath("blab"));
    dn_dataset *f = NULL, *b = NULL;
    CHECK_OK(dn_dataset_load_idx(tpath("bimg"), tpath("blab"), 1.0f / 255.0f, &f));
    CHECK_OK(dn_dataset_load_idx_compact(tpath("bimg"), tpath("blab"), 1.0f / 255.0f, &b));
    if (!f || !is_bytes(b)) {
        dn_dataset_free(f);
        dn_dataset_free(b);
        return;
    }
    /* split: the parts keep byte storage */
    dn_dataset *fa = NULL, *fb = NULL, *ba = NULL, *bb = NULL;
    CHECK_OK(dn_dataset_split(f, 0.25, 9, &fa, &fb));
    CHECK_OK(dn_dataset_split(b, 0.25, 9, &ba, &bb));
    CHECK(is_bytes(ba) && is_bytes(bb) && ba->n == 225 && bb->n == 75);
    CHECK(same_samples(fa, ba) && same_samples(fb, bb));
    /* stats, then normalisation with the training part's statistics */
    float fm[BYTES_SS], fs[BYTES_SS], bm[BYTES_SS], bs[BYTES_SS];
    dn_dataset_stats(fa, fm, fs);
    dn_dataset_stats(ba, bm, bs);
    CHECK(memcmp(fm, bm, sizeof fm) == 0 && memcmp(fs, bs, sizeof fs) == 0);
    fs[3] = bs[3] = 0.0f; /* a zero deviation is treated as 1 in both */
    CHECK_OK(dn_dataset_normalize(fa, fm, fs));
    CHECK_OK(dn_dataset_normalize(fb, fm, fs));
    CHECK_OK(dn_dataset_normalize(ba, bm, bs));
    CHECK_OK(dn_dataset_normalize(bb, bm, bs));
    CHECK(is_bytes(ba) && ba->x_mean && ba->x_std && ba->x_std[3] == 1.0f);
    CHECK(same_samples(fa, ba) && same_samples(fb, bb));
    /* statistics of normalised data, and a split of it (which carries the normalisation along) */
    dn_dataset_stats(fa, fm, fs);
    dn_dataset_stats(ba, bm, bs);
    CHECK(memcmp(fm, bm, sizeof fm) == 0 && memcmp(fs, bs, sizeof fs) == 0);
    dn_dataset *f2 = NULL, *f3 = NULL, *b2 = NULL, *b3 = NULL;
    CHECK_OK(dn_dataset_split(fa, 0.5, 4, &f2, &f3));
    CHECK_OK(dn_dataset_split(ba, 0.5, 4, &b2, &b3));
    CHECK(is_bytes(b2) && b2->x_mean && same_samples(f2, b2) && same_samples(f3, b3));
    /* shuffled batches, the last one short */
    dn_batcher *bf = NULL, *bt = NULL;
    CHECK_OK(dn_batcher_new(fa, 16, true, 77, &bf));
    CHECK_OK(dn_batcher_new(ba, 16, true, 77, &bt));
    if (bf && bt) {
        float x1[16 * BYTES_SS], x2[16 * BYTES_SS], y1[16], y2[16];
        int64_t k1, k2, batches = 0;
        bool same = true;
        for (int e = 0; e < 2; e++) {
            dn_batcher_reset(bf);
            dn_batcher_reset(bt);
            do {
                k1 = dn_batcher_next(bf, x1, y1);
                k2 = dn_batcher_next(bt, x2, y2);
                same = same && k1 == k2 && memcmp(x1, x2, (size_t)(k1 * BYTES_SS) * sizeof(float)) == 0 &&
                       memcmp(y1, y2, (size_t)k1 * sizeof(float)) == 0;
                batches += k1 > 0;
            } while (k1 > 0 && k2 > 0);
        }
        CHECK(same && batches == 2 * 15);
    }
    dn_batcher_free(bf);
    dn_batcher_free(bt);
    /* a second normalisation has no byte form: the samples become floats, still the same bits */
    CHECK_OK(dn_dataset_normalize(fb, fm, fs));
    CHECK_OK(dn_dataset_normalize(bb, bm, bs));
    CHECK(bb->x && !bb->x_bytes && !bb->x_mean && !bb->x_std && same_samples(fb, bb));
    /* streams (the text layout) reorder bytes like floats */
    CHECK_OK(dn_dataset_streams(f3, 8));
    CHECK_OK(dn_dataset_streams(b3, 8));
    CHECK(is_bytes(b3) && b3->n == 112 && same_samples(f3, b3));
    /* a data set claiming both storages, or half a normalisation, is refused */
    dn_dataset bad = *b2;
    bad.x = f2->x;
    dn_batcher *none = NULL;
    CHECK_ERR(dn_batcher_new(&bad, 4, false, 1, &none), DN_ERR_ARG, "both x and x_bytes");
    CHECK_ERR(dn_dataset_normalize(&bad, fm, fs), DN_ERR_ARG, "both x and x_bytes");
    bad.x = NULL;
    bad.x_std = NULL;
    dn_dataset *u1 = NULL, *u2 = NULL;
    CHECK_ERR(dn_dataset_split(&bad, 0.5, 1, &u1, &u2), DN_ERR_ARG, "x_mean");
    CHECK_ERR(dn_dataset_normalize(&bad, fm, fs), DN_ERR_ARG, "only one of x_mean and x_std");
    CHECK_ERR(dn_dataset_normalize(NULL, fm, fs), DN_ERR_ARG, "NULL");
    dn_dataset *parts[] = {f, b, fa, fb, ba, bb, f2, f3, b2, b3};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) dn_dataset_free(parts[i]);
}

static const char *bytes_cfg =
    "[net]\n"
    "input = 4, 5\n"
    "batch = 16\n"
    "seed = 3\n"
    "optimizer = adam\n"
    "lr = 0.01\n"
    "validation = 0.2\n"
    "\n"
    "[dense]\n"
    "units = 8\n"
    "activation = relu\n"
    "\n"
    "[dense]\n"
    "units = 3\n";

/* Trains bytes_cfg for 2 epochs on d (normalised first, as `dendrite train` does with normalize = 1); the
 * trainer's own validation split and evaluation see d's storage too.  Returns the model, NULL on failure. */
static dn_model *train_small(dn_dataset *d, double *val_loss)
{
    dn_model *m = NULL;
    dn_train_config c;
    dn_trainer *t = NULL;
    float mean[BYTES_SS], sd[BYTES_SS];
    dn_dataset_stats(d, mean, sd);
    dn_status s = dn_dataset_normalize(d, mean, sd);
    if (!s) s = dn_model_from_cfg(bytes_cfg, "bytes.cfg", &m, &c);
    c.epochs = 2;
    if (!s) s = dn_trainer_new(m, &c, d, NULL, &t);
    dn_epoch_stats st = {0};
    while (!s && !dn_trainer_finished(t)) s = dn_trainer_epoch(t, &st);
    dn_trainer_free(t);
    CHECK_OK(s);
    if (s) {
        dn_model_free(m);
        return NULL;
    }
    *val_loss = st.val_loss;
    return m;
}

/* A training run from byte storage ends with the same weights, bit for bit, as one from float storage. */
static void test_bytes_training(void)
{
    write_byte_images(tpath("bimg"), tpath("blab"));
    dn_dataset *f = NULL, *b = NULL;
    CHECK_OK(dn_dataset_load_idx(tpath("bimg"), tpath("blab"), 1.0f / 255.0f, &f));
    CHECK_OK(dn_dataset_load_idx_compact(tpath("bimg"), tpath("blab"), 1.0f / 255.0f, &b));
    double lf = NAN, lb = NAN;
    dn_model *mf = f ? train_small(f, &lf) : NULL, *mb = is_bytes(b) ? train_small(b, &lb) : NULL;
    if (mf && mb) {
        size_t n = dn_model_param_count(mf);
        CHECK(n > 0 && n == dn_model_param_count(mb));
        CHECK_MSG(memcmp(dn_model_params(mf), dn_model_params(mb), n * sizeof(float)) == 0,
                  "weights trained from bytes differ from those trained from floats");
        CHECK_MSG(isfinite(lf) && memcmp(&lf, &lb, sizeof lf) == 0, "validation loss %.9g (floats) vs %.9g (bytes)",
                  lf, lb);
        /* and evaluation reads bytes as it reads floats */
        dn_train_config c;
        dn_train_defaults(&c);
        dn_eval_result rf, rb;
        CHECK_OK(dn_evaluate(mf, &c, f, &rf, NULL));
        CHECK_OK(dn_evaluate(mf, &c, b, &rb, NULL));
        CHECK(rf.n == BYTES_N && rf.loss == rb.loss && rf.accuracy == rb.accuracy);
    }
    dn_model_free(mf);
    dn_model_free(mb);
    dn_dataset_free(f);
    dn_dataset_free(b);
}

/* The real test set: bytes and floats agree on every pixel, on the statistics and once normalised. */
static void test_bytes_mnist(void)
{
    char images[512], labels[512];
    snprintf(images, sizeof images, "%s/mnist/t10k-images-idx3-ubyte", t_data_dir());
    snprintf(labels, sizeof labels, "%s/mnist/t10k-labels-idx1-ubyte", t_data_dir());
    if (!file_exists(images) || !file_exists(labels)) {
        t_skip("mnist", "%s not found (run scripts/fetch-mnist.sh)", images);
        return;
    }
    dn_dataset *f = NULL, *b = NULL;
    CHECK_OK(dn_dataset_load_idx(images, labels, 1.0f / 255.0f, &f));
    CHECK_OK(dn_dataset_load_idx_compact(images, labels, 1.0f / 255.0f, &b));
    if (f && is_bytes(b)) {
        CHECK(b->n == 10000 && b->n_classes == 10 && b->y[0] == 7.0f);
        CHECK(same_samples(f, b));
        static float fm[784], fs[784], bm[784], bs[784];
        dn_dataset_stats(f, fm, fs);
        dn_dataset_stats(b, bm, bs);
        CHECK(memcmp(fm, bm, sizeof fm) == 0 && memcmp(fs, bs, sizeof fs) == 0);
        CHECK_OK(dn_dataset_normalize(f, fm, fs));
        CHECK_OK(dn_dataset_normalize(b, bm, bs));
        CHECK(same_samples(f, b));
    }
    dn_dataset_free(f);
    dn_dataset_free(b);
}

static int64_t alloc_calls;
static void *count_alloc(size_t n, void *u) { (void)u; alloc_calls++; return malloc(n); }
static void *count_realloc(void *p, size_t n, void *u) { (void)u; alloc_calls++; return realloc(p, n); }
static void count_free(void *p, void *u) { (void)u; free(p); }

/* Runs one epoch, appending the y of every sample to order (n floats) and batch sizes to sizes. */
static int epoch(dn_batcher *b, float *order, int64_t *sizes)
{
    float x[8], y[4];
    int nb = 0;
    int64_t k, pos = 0;
    while ((k = dn_batcher_next(b, x, y)) > 0) {
        for (int64_t i = 0; i < k; i++) {
            CHECK(x[2 * i] == y[i] && x[2 * i + 1] == 10.0f * y[i]);
            order[pos++] = y[i];
        }
        sizes[nb++] = k;
    }
    return nb;
}

static bool is_permutation(const float *order, int n)
{
    int seen[64] = {0};
    for (int i = 0; i < n; i++) {
        int k = (int)order[i];
        if (k < 0 || k >= n || seen[k]++) return false;
    }
    return true;
}

static void test_batcher(void)
{
    dn_dataset *d = counting_dataset(10);
    dn_batcher *b = NULL, *c = NULL;
    float o1[10], o2[10], o3[10];
    int64_t sizes[8];
    /* no shuffle: file order, the last batch smaller, then 0 until reset */
    CHECK_OK(dn_batcher_new(d, 4, false, 7, &b));
    if (b) {
        CHECK(epoch(b, o1, sizes) == 3);
        CHECK(sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2);
        for (int i = 0; i < 10; i++) CHECK(o1[i] == (float)i);
        CHECK(dn_batcher_next(b, NULL, NULL) == 0);
        dn_batcher_reset(b);
        CHECK(epoch(b, o2, sizes) == 3 && memcmp(o1, o2, sizeof o1) == 0);
        dn_batcher_free(b);
    }
    /* shuffle: same seed, same batches; each epoch a new permutation */
    CHECK_OK(dn_batcher_new(d, 4, true, 123, &b));
    CHECK_OK(dn_batcher_new(d, 4, true, 123, &c));
    if (b && c) {
        epoch(b, o1, sizes);
        epoch(c, o2, sizes);
        CHECK(memcmp(o1, o2, sizeof o1) == 0);
        CHECK(is_permutation(o1, 10));
        /* save the generator between epochs, as a checkpoint does */
        dn_rng saved = *dn_batcher_rng(b);
        dn_batcher_reset(b);
        epoch(b, o2, sizes);
        CHECK(is_permutation(o2, 10));
        CHECK(memcmp(o1, o2, sizeof o1) != 0);
        dn_batcher_reset(b);
        epoch(b, o3, sizes); /* the epoch after that, for the resumed run to reproduce too */
        /* resume: a batcher made with another seed, given the saved state, continues identically */
        dn_batcher *r = NULL;
        CHECK_OK(dn_batcher_new(d, 4, true, 999, &r));
        if (r) {
            *dn_batcher_rng(r) = saved;
            dn_batcher_reset(r);
            float p[10];
            epoch(r, p, sizes);
            CHECK(memcmp(p, o2, sizeof p) == 0);
            dn_batcher_reset(r);
            epoch(r, p, sizes);
            CHECK(memcmp(p, o3, sizeof p) == 0);
            dn_batcher_free(r);
        }
        /* dn_batcher_next allocates nothing */
        dn_allocator counting = {count_alloc, count_realloc, count_free, NULL};
        dn_set_allocator(&counting);
        alloc_calls = 0;
        dn_batcher_reset(c);
        epoch(c, o1, sizes);
        dn_set_allocator(NULL);
        CHECK(alloc_calls == 0);
    }
    dn_batcher_free(b);
    dn_batcher_free(c);
    dn_batcher_free(NULL);
    CHECK_ERR(dn_batcher_new(d, 0, true, 1, &b), DN_ERR_ARG, "batch size 0");
    CHECK(b == NULL);
    /* an empty data set gives no batches */
    dn_dataset empty = {0};
    empty.ndim = 1;
    empty.shape[0] = 2;
    CHECK_OK(dn_batcher_new(&empty, 4, true, 1, &b));
    if (b) CHECK(dn_batcher_next(b, o1, o2) == 0);
    dn_batcher_free(b);
    free_counting(d);
}

/* ------------------------------------------------------------------ safetensors */

/* Written by /usr/bin/python3 (torch tensors, header as the reference implementation lays it out, with
 * Python's ASCII escapes: \u00e9 and the surrogate pair \ud83d\ude00). */
static const unsigned char reference_file[] = {
    0x60, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x22, 0x5f, 0x5f, 0x6d, 0x65, 0x74, 0x61,
    0x64, 0x61, 0x74, 0x61, 0x5f, 0x5f, 0x22, 0x3a, 0x7b, 0x22, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74,
    0x22, 0x3a, 0x22, 0x70, 0x74, 0x22, 0x2c, 0x22, 0x6e, 0x6f, 0x74, 0x65, 0x22, 0x3a, 0x22, 0x6c,
    0x69, 0x6e, 0x65, 0x31, 0x5c, 0x6e, 0x6c, 0x69, 0x6e, 0x65, 0x32, 0x20, 0x5c, 0x22, 0x71, 0x5c,
    0x22, 0x20, 0x5c, 0x5c, 0x20, 0x74, 0x61, 0x62, 0x5c, 0x74, 0x20, 0x63, 0x61, 0x66, 0x5c, 0x75,
    0x30, 0x30, 0x65, 0x39, 0x20, 0x5c, 0x75, 0x64, 0x38, 0x33, 0x64, 0x5c, 0x75, 0x64, 0x65, 0x30,
    0x30, 0x22, 0x7d, 0x2c, 0x22, 0x65, 0x6d, 0x70, 0x74, 0x79, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74,
    0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70,
    0x65, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x34, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f,
    0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x30, 0x5d, 0x7d, 0x2c, 0x22,
    0x6c, 0x61, 0x79, 0x65, 0x72, 0x73, 0x2e, 0x30, 0x2e, 0x62, 0x69, 0x61, 0x73, 0x22, 0x3a, 0x7b,
    0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22, 0x73,
    0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x33, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f,
    0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x30, 0x2c, 0x31, 0x32, 0x5d, 0x7d,
    0x2c, 0x22, 0x6c, 0x61, 0x79, 0x65, 0x72, 0x73, 0x2e, 0x30, 0x2e, 0x77, 0x65, 0x69, 0x67, 0x68,
    0x74, 0x22, 0x3a, 0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32,
    0x22, 0x2c, 0x22, 0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x32, 0x2c, 0x33, 0x5d, 0x2c,
    0x22, 0x64, 0x61, 0x74, 0x61, 0x5f, 0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b,
    0x31, 0x32, 0x2c, 0x33, 0x36, 0x5d, 0x7d, 0x2c, 0x22, 0x73, 0x63, 0x61, 0x6c, 0x65, 0x22, 0x3a,
    0x7b, 0x22, 0x64, 0x74, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0x46, 0x33, 0x32, 0x22, 0x2c, 0x22,
    0x73, 0x68, 0x61, 0x70, 0x65, 0x22, 0x3a, 0x5b, 0x5d, 0x2c, 0x22, 0x64, 0x61, 0x74, 0x61, 0x5f,
    0x6f, 0x66, 0x66, 0x73, 0x65, 0x74, 0x73, 0x22, 0x3a, 0x5b, 0x33, 0x36, 0x2c, 0x34, 0x30, 0x5d,
    0x7d, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x00, 0x00, 0xc0, 0xbf, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x10, 0x40, 0x00, 0x00, 0x00, 0x00, 0x25, 0x49, 0x12, 0x3e, 0x25, 0x49, 0x92, 0x3e,
    0xb7, 0x6d, 0xdb, 0x3e, 0x25, 0x49, 0x12, 0x3f, 0x6e, 0xdb, 0x36, 0x3f, 0x00, 0x00, 0x40, 0x40,
};

static void test_st_reference(void)
{
    write_bytes(tpath("ref.safetensors"), reference_file, sizeof reference_file);
    dn_st_file *f = NULL;
    CHECK_OK(dn_st_read(tpath("ref.safetensors"), 0, &f));
    if (!f) return;
    CHECK(dn_st_count(f) == 4);
    CHECK(strcmp(dn_st_name(f, 0), "empty") == 0 && strcmp(dn_st_name(f, 3), "scale") == 0);
    const dn_st_entry *w = dn_st_find(f, "layers.0.weight"), *b = dn_st_find(f, "layers.0.bias");
    const dn_st_entry *s = dn_st_find(f, "scale"), *e = dn_st_find(f, "empty");
    CHECK(w && b && s && e && !dn_st_find(f, "nope"));
    if (w && b && s && e) {
        CHECK(w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 && dn_st_numel(w) == 6);
        for (int i = 0; i < 6; i++) CHECK(w->data[i] == (float)i / 7.0f);
        CHECK(b->ndim == 1 && b->data[0] == -1.5f && b->data[1] == 0.0f && b->data[2] == 2.25f);
        CHECK(s->ndim == 0 && dn_st_numel(s) == 1 && s->data[0] == 3.0f);
        CHECK(e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 4 && dn_st_numel(e) == 0);
    }
    CHECK(dn_st_meta_count(f) == 2);
    CHECK(dn_st_meta(f, "format") && strcmp(dn_st_meta(f, "format"), "pt") == 0);
    const char *note = dn_st_meta(f, "note");
    CHECK(note && strcmp(note, "line1\nline2 \"q\" \\ tab\t caf\xc3\xa9 \xf0\x9f\x98\x80") == 0);
    CHECK(dn_st_meta(f, "absent") == NULL);
    dn_st_free(f);
    dn_st_free(NULL);
}

static const char *meta_text = "[net]\nlr = 0.1  # \"tuned\"\n\\path\\ \x01 caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\n";

static void test_st_roundtrip(void)
{
    float w[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65504}, bias[3] = {0.25f, 0.5f, 0.75f}, sc = 42;
    dn_st_entry in[4] = {
        {"layers.0.weight", 2, {2, 3}, w},
        {"layers.0.bias", 1, {3}, bias},
        {"step", 0, {0}, &sc},
        {"nothing", 2, {0, 5}, NULL},
    };
    const char *keys[] = {"cfg", "json", "empty"};
    const char *vals[] = {meta_text, "{\"epoch\": 3, \"loss\": [0.5, 0.25]}", ""};
    char path[256];
    snprintf(path, sizeof path, "%s", tpath("rt.safetensors"));
    CHECK_OK(dn_st_write(path, 4, in, 3, keys, vals));
    char tmpname[300];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!file_exists(tmpname));

    /* byte-level: 8-byte little-endian length, padded JSON, then the floats in the order given */
    char *bytes = NULL;
    size_t len = 0;
    CHECK_OK(dn_read_file(path, 0, &bytes, &len));
    if (bytes) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)bytes[i];
        CHECK(n % 8 == 0 && 8 + n + 4 * 10 == len);
        const char *expect = "{\"__metadata__\":{\"cfg\":\"[net]\\nlr = 0.1  # \\\"tuned\\\"\\n\\\\path\\\\ \\u0001 "
                             "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\\n\",\"json\":\"{\\\"epoch\\\": 3, \\\"loss\\\": "
                             "[0.5, 0.25]}\",\"empty\":\"\"},\"layers.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                             "\"data_offsets\":[0,24]},\"layers.0.bias\":{\"dtype\":\"F32\",\"shape\":[3],"
                             "\"data_offsets\":[24,36]},\"step\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":"
                             "[36,40]},\"nothing\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[40,40]}}";
        size_t el = strlen(expect);
        CHECK_MSG(n >= el && memcmp(bytes + 8, expect, el) == 0, "header is %.*s", (int)n, bytes + 8);
        for (size_t i = el; i < n; i++) CHECK(bytes[8 + i] == ' ');
        unsigned char one[4] = {0, 0, 0x80, 0x3F}; /* 1.0f little-endian */
        CHECK(memcmp(bytes + 8 + n, one, 4) == 0);
        dn_free(bytes);
    }

    dn_st_file *f = NULL;
    CHECK_OK(dn_st_read(path, 1000, &f));
    if (f) {
        CHECK(dn_st_count(f) == 4);
        for (int i = 0; i < 4 && i < dn_st_count(f); i++) {
            const dn_st_entry *e = dn_st_at(f, i);
            CHECK(strcmp(e->name, in[i].name) == 0 && e->ndim == in[i].ndim);
            for (int k = 0; k < e->ndim; k++) CHECK(e->shape[k] == in[i].shape[k]);
            if (dn_st_numel(e)) CHECK(memcmp(e->data, in[i].data, (size_t)dn_st_numel(e) * 4) == 0);
        }
        CHECK(dn_st_meta_count(f) == 3);
        for (int i = 0; i < 3; i++) {
            CHECK(strcmp(dn_st_meta_key(f, i), keys[i]) == 0);
            CHECK(dn_st_meta_value(f, i) && strcmp(dn_st_meta_value(f, i), vals[i]) == 0);
        }
        dn_st_free(f);
    }
    /* the budget counts the tensors' bytes: 40 here */
    CHECK_ERR(dn_st_read(path, 39, &f), DN_ERR_FORMAT, "need 40 bytes", "39");
    CHECK(f == NULL);

    /* a reader in another language: Python's struct + json (when /usr/bin/python3 is there) */
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import json,struct,sys\n"
                 "b=open(sys.argv[1],\"rb\").read(); n=struct.unpack(\"<Q\",b[:8])[0]; h=json.loads(b[8:8+n])\n"
                 "w=h[\"layers.0.weight\"]; s,e=w[\"data_offsets\"]\n"
                 "v=struct.unpack(\"<6f\",b[8+n+s:8+n+e])\n"
                 "ok=v[2]==3.5 and w[\"shape\"]==[2,3] and h[\"__metadata__\"][\"cfg\"].startswith(\"[net]\\nlr\")\n"
                 "ok=ok and \"\\u2713\" in h[\"__metadata__\"][\"cfg\"] and json.loads(h[\"__metadata__\"][\"json\"])[\"epoch\"]==3\n"
                 "sys.exit(0 if ok else 1)' %s",
                 path);
        CHECK_MSG(system(cmd) == 0, "python could not read %s", path);
    } else {
        t_skip("python3", "/usr/bin/python3 not found: the cross-language read was not checked");
    }

    /* nothing at all: a valid file with an empty header */
    CHECK_OK(dn_st_write(tpath("empty.safetensors"), 0, NULL, 0, NULL, NULL));
    CHECK_OK(dn_st_read(tpath("empty.safetensors"), 0, &f));
    if (f) CHECK(dn_st_count(f) == 0 && dn_st_meta_count(f) == 0);
    dn_st_free(f);
}

static void test_st_write_errors(void)
{
    float w[2] = {1, 2}, v[2] = {3, 4};
    dn_st_entry one = {"w", 1, {2}, w}, other = {"w", 1, {2}, v};
    char path[256], dir[256];
    snprintf(path, sizeof path, "%s", tpath("keep.safetensors"));
    CHECK_OK(dn_st_write(path, 1, &one, 0, NULL, NULL));
    char tmpname[300];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());

    /* the temporary file cannot be created (a folder is in its place): the old file stays as it was */
    CHECK(mkdir(tmpname, 0700) == 0);
    CHECK_ERR(dn_st_write(path, 1, &other, 0, NULL, NULL), DN_ERR_IO, "keep.safetensors");
    rmdir(tmpname);
    dn_st_file *f = NULL;
    CHECK_OK(dn_st_read(path, 0, &f));
    if (f) CHECK(dn_st_find(f, "w") && dn_st_find(f, "w")->data[0] == 1.0f);
    dn_st_free(f);

    /* the rename fails (the target is a non-empty folder): an error, and no temporary file left behind */
    snprintf(dir, sizeof dir, "%s", tpath("adir"));
    CHECK(mkdir(dir, 0700) == 0);
    write_text(tpath("adir/x"), "x");
    CHECK_ERR(dn_st_write(dir, 1, &other, 0, NULL, NULL), DN_ERR_IO, "renaming");
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", dir, (long)getpid());
    CHECK(!file_exists(tmpname) && file_exists(tpath("adir/x")));

    /* a folder that does not exist */
    CHECK_ERR(dn_st_write(tpath("no/such/dir/m.safetensors"), 1, &one, 0, NULL, NULL), DN_ERR_IO, "no/such/dir");
    CHECK(!file_exists(tpath("no")));

    /* bad arguments never touch the disk */
    dn_st_entry two[2] = {one, other};
    CHECK_ERR(dn_st_write(path, 2, two, 0, NULL, NULL), DN_ERR_ARG, "'w' appears twice");
    dn_st_entry bad = {"__metadata__", 1, {2}, w};
    CHECK_ERR(dn_st_write(path, 1, &bad, 0, NULL, NULL), DN_ERR_ARG, "reserved");
    bad = (dn_st_entry){"neg", 1, {-2}, w};
    CHECK_ERR(dn_st_write(path, 1, &bad, 0, NULL, NULL), DN_ERR_ARG, "negative");
    bad = (dn_st_entry){"nodata", 1, {2}, NULL};
    CHECK_ERR(dn_st_write(path, 1, &bad, 0, NULL, NULL), DN_ERR_ARG, "no data");
    const char *k[] = {"a", "a"}, *vv[] = {"1", "2"}, *badutf[] = {"\xff"};
    CHECK_ERR(dn_st_write(path, 1, &one, 2, k, vv), DN_ERR_ARG, "'a' appears twice");
    CHECK_ERR(dn_st_write(path, 1, &one, 1, k, badutf), DN_ERR_ARG, "UTF-8");
    CHECK_OK(dn_st_read(path, 0, &f));
    if (f) CHECK(dn_st_count(f) == 1 && dn_st_find(f, "w")->data[1] == 2.0f);
    dn_st_free(f);
}

/* A file with the given header text (padded to 8) and data_len zero bytes of data. */
static void write_st_raw(const char *path, const char *header, size_t data_len)
{
    size_t h = strlen(header), padded = (h + 7) / 8 * 8;
    unsigned char *buf = calloc(1, 8 + padded + data_len);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', padded - h);
    write_bytes(path, buf, 8 + padded + data_len);
    free(buf);
}

static void expect_st_error(const char *header, size_t data_len, dn_status want, const char *frag)
{
    const char *path = tpath("bad.safetensors");
    write_st_raw(path, header, data_len);
    dn_st_file *f = (dn_st_file *)1;
    dn_status s = dn_st_read(path, 0, &f);
    CHECK_MSG(s == want, "header %s: got %s (%s), expected %s", header, dn_status_name(s), dn_last_error(),
              dn_status_name(want));
    CHECK_MSG(strstr(dn_last_error(), frag) && strstr(dn_last_error(), "bad.safetensors"),
              "header %s: message '%s' lacks '%s' or the file name", header, dn_last_error(), frag);
    CHECK(f == NULL);
}

#define T32(name, shape, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_st_hostile(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s", tpath("bad.safetensors"));
    dn_st_file *f = NULL;
    /* a sane file for the checks that only change one thing */
    write_st_raw(path, "{" T32("a", "[2]", 0, 8) "," T32("b", "[1,2]", 8, 16) "}", 16);
    CHECK_OK(dn_st_read(path, 0, &f));
    dn_st_free(f);
    f = NULL;

    /* sizes in the first 8 bytes */
    unsigned char junk[512];
    memset(junk, 'x', sizeof junk);
    uint64_t big = 8101238;
    for (int i = 0; i < 8; i++) junk[i] = (unsigned char)(big >> (8 * i));
    write_bytes(path, junk, sizeof junk);
    CHECK_ERR(dn_st_read(path, 0, &f), DN_ERR_FORMAT, "not a safetensors file (header length 8101238 exceeds file size 512)");
    write_bytes(path, junk, 5);
    CHECK_ERR(dn_st_read(path, 0, &f), DN_ERR_FORMAT, "not a safetensors file", "only 5 bytes");
    memset(junk, 0xFF, 8);
    write_bytes(path, junk, 64);
    CHECK_ERR(dn_st_read(path, 0, &f), DN_ERR_FORMAT, "exceeds file size 64");
    /* a header over 100 MB, in a sparse file so the test writes almost nothing */
    {
        uint64_t hl = DN_ST_MAX_HEADER + 8;
        unsigned char l8[8];
        for (int i = 0; i < 8; i++) l8[i] = (unsigned char)(hl >> (8 * i));
        write_bytes(path, l8, 8);
        CHECK(truncate(path, (off_t)(8 + hl)) == 0);
        CHECK_ERR(dn_st_read(path, 0, &f), DN_ERR_FORMAT, "larger than the 100000000-byte limit");
    }
    CHECK_ERR(dn_st_read(tpath("absent.safetensors"), 0, &f), DN_ERR_IO, "absent.safetensors");
    CHECK_ERR(dn_st_read(tmp_dir, 0, &f), DN_ERR_IO, "not a regular file");
    CHECK(f == NULL);

    /* tensor checks */
    expect_st_error("{" T32("a", "[2]", 0, 8) "}", 4, DN_ERR_FORMAT, "only 4 bytes of data (truncated");
    expect_st_error("{" T32("a", "[2]", 100, 108) "}", 16, DN_ERR_FORMAT, "needs bytes 100..108");
    expect_st_error("{" T32("a", "[4]", 0, 16) "," T32("b", "[4]", 8, 24) "}", 24, DN_ERR_FORMAT, "overlap");
    expect_st_error("{" T32("a", "[2]", 8, 16) "," T32("b", "[4]", 0, 16) "}", 24, DN_ERR_FORMAT,
                    "'b' [0, 16] and 'a' [8, 16] overlap");
    expect_st_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, DN_ERR_FORMAT,
                    "dtype F16; dendrite reads only F32");
    expect_st_error("{" T32("a", "[3]", 0, 8) "}", 8, DN_ERR_FORMAT, "shape [3] (12 bytes of F32) but data_offsets [0, 8]");
    expect_st_error("{" T32("a", "[4294967296,4294967296,4294967296]", 0, 8) "}", 8, DN_ERR_FORMAT, "more than");
    expect_st_error("{" T32("a", "[2]", 8, 0) "}", 8, DN_ERR_FORMAT, "end before they begin");
    expect_st_error("{" T32("a", "[2]", 0, 8) "," T32("a", "[2]", 8, 16) "}", 16, DN_ERR_FORMAT,
                    "'a' appears twice");
    expect_st_error("{" T32("a", "[1,1,1,1,1,1,1]", 0, 4) "}", 4, DN_ERR_FORMAT, "more than 6 dimensions");
    expect_st_error("{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DN_ERR_FORMAT, "lacks \"dtype\"");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                    DN_ERR_FORMAT, "\"dtype\" twice");
    expect_st_error("{\"__metadata__\":{\"k\":1}}", 0, DN_ERR_FORMAT, "value for key 'k' is not a string");
    expect_st_error("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, DN_ERR_FORMAT, "key 'k' appears twice");
    expect_st_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0, DN_ERR_FORMAT, "appears twice");

    /* JSON syntax */
    expect_st_error("[]", 0, DN_ERR_FORMAT, "does not start with '{'");
    expect_st_error("", 0, DN_ERR_FORMAT, "does not start with '{'");
    expect_st_error("{" T32("a", "[2]", 0, 8), 8, DN_ERR_FORMAT, "expected '}'");
    expect_st_error("{" T32("a", "[2]", 0, 8) ",}", 8, DN_ERR_FORMAT, "expected '\"'");
    expect_st_error("{" T32("a", "[2]", 0, 8) "} x", 8, DN_ERR_FORMAT, "after the header object");
    expect_st_error("{\"a", 0, DN_ERR_FORMAT, "unterminated string");
    expect_st_error("{\"a\\q\":{}}", 0, DN_ERR_FORMAT, "bad escape");
    expect_st_error("{\"a\\ud800\":{}}", 0, DN_ERR_FORMAT, "unpaired UTF-16 surrogate");
    expect_st_error("{\"a\\u0000\":{}}", 0, DN_ERR_FORMAT, "\\u0000");
    expect_st_error("{\"a\xff\":{}}", 0, DN_ERR_FORMAT, "invalid UTF-8");
    expect_st_error("{\"a\xc0\x80\":{}}", 0, DN_ERR_FORMAT, "invalid UTF-8"); /* overlong NUL */
    expect_st_error("{\"a\tb\":{}}", 0, DN_ERR_FORMAT, "control character");
    expect_st_error("{" T32("a", "[02]", 0, 8) "}", 8, DN_ERR_FORMAT, "leading zero");
    expect_st_error("{" T32("a", "[-2]", 0, 8) "}", 8, DN_ERR_FORMAT, "non-negative integer");
    expect_st_error("{" T32("a", "[2.0]", 0, 8) "}", 8, DN_ERR_FORMAT, "must be an integer");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", 8,
                    DN_ERR_FORMAT, "too large");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, DN_ERR_FORMAT, "expected ','");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"x\":tru,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DN_ERR_FORMAT,
                    "expected a value");
    expect_st_error("{\"a\":{\"dtype\":\"F32\",\"x\":1.,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, DN_ERR_FORMAT,
                    "bad number");
    {
        char deep[400] = "{\"a\":{\"x\":";
        for (int i = 0; i < 100; i++) strcat(deep, "[");
        strcat(deep, "]}}");
        expect_st_error(deep, 0, DN_ERR_FORMAT, "nested more than 64 levels");
    }

    /* accepted: unknown keys skipped (any JSON value), null metadata, escapes in names, gaps in the data */
    write_st_raw(path, "{\"__metadata__\":null,\"a\\/\\u00e9\":{\"extra\":[1,-2.5e3,{\"k\":[true,false,null]}],"
                       "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 12);
    CHECK_OK(dn_st_read(path, 0, &f));
    if (f) CHECK(dn_st_find(f, "a/\xc3\xa9") && dn_st_find(f, "a/\xc3\xa9")->data[0] == 0.0f);
    dn_st_free(f);
}

/* ------------------------------------------------------------------ cfg tokenizer */

static void test_ini(void)
{
    const char *text = "# a model\r\n"
                       "[net]\r\n"
                       "batch = 64\n"
                       "lr=0.01   # tuned by hand\n"
                       "  ; a comment line\n"
                       "shuffle = Yes\n"
                       "name = my;net#1\n"
                       "sizes = 3, 5 ,7\n"
                       "\n"
                       "[conv]\n"
                       "filters = 32\n"
                       "[conv]\n"
                       "filters = 64\n"
                       "lern_rate = 0.1\n"
                       "empty =\n";
    dn_ini *ini = NULL;
    CHECK_OK(dn_ini_parse(text, "model.cfg", &ini));
    if (!ini) return;
    CHECK(ini->n_sections == 3);
    dn_ini_section *net = &ini->sections[0], *c1 = &ini->sections[1], *c2 = &ini->sections[2];
    CHECK(strcmp(net->name, "net") == 0 && net->line == 2 && net->n_entries == 5);
    CHECK(strcmp(c2->name, "conv") == 0 && c2->line == 12);
    int batch = 0, filters = 0, missing = 0, sizes[4], n = 0;
    float lr = 0;
    bool shuffle = false;
    const char *name = NULL, *empty = NULL;
    CHECK_OK(dn_ini_get_int(net, "batch", 1, &batch));
    CHECK_OK(dn_ini_get_float(net, "lr", 0.1f, &lr));
    CHECK_OK(dn_ini_get_bool(net, "shuffle", false, &shuffle));
    CHECK_OK(dn_ini_get_string(net, "name", NULL, &name));
    CHECK_OK(dn_ini_get_ints(net, "sizes", sizes, 4, &n));
    CHECK_OK(dn_ini_get_int(net, "missing", 7, &missing));
    CHECK(batch == 64 && lr == 0.01f && shuffle && missing == 7);
    CHECK(name && strcmp(name, "my;net#1") == 0); /* '#' and ';' inside a value are not comments */
    CHECK(n == 3 && sizes[0] == 3 && sizes[1] == 5 && sizes[2] == 7);
    CHECK_OK(dn_ini_get_int(c1, "filters", 0, &filters));
    CHECK(filters == 32);
    CHECK_OK(dn_ini_get_int(c2, "filters", 0, &filters));
    CHECK(filters == 64);
    CHECK_OK(dn_ini_get_string(c2, "empty", "d", &empty));
    CHECK(empty && *empty == '\0');
    CHECK_OK(dn_ini_require(c2, "filters"));
    CHECK_ERR(dn_ini_require(c1, "size"), DN_ERR_FORMAT, "model.cfg:10: [conv] needs key 'size'");
    /* the misspelt key is the one left unused */
    CHECK_ERR(dn_ini_check_unused(ini), DN_ERR_FORMAT, "model.cfg:14: unknown key 'lern_rate' in [conv]");
    CHECK(dn_ini_find(c2, "lern_rate") != NULL);
    CHECK_OK(dn_ini_check_unused(ini));
    dn_ini_free(ini);
    dn_ini_free(NULL);

    /* value errors name file, line and key */
    CHECK_OK(dn_ini_parse("[net]\nbatch = abc\nlr = 1e50\nflag = maybe\nl = 1,,2\nm = 1,2,3\nbig = 99999999999\n"
                          "f = nan\nfl = 1.5, x\n", "m.cfg", &ini));
    if (ini) {
        dn_ini_section *s = &ini->sections[0];
        int i;
        float x;
        bool b;
        int v[2];
        float fv[2];
        CHECK_ERR(dn_ini_get_int(s, "batch", 0, &i), DN_ERR_FORMAT, "m.cfg:2: key 'batch': 'abc' is not an integer");
        CHECK_ERR(dn_ini_get_float(s, "lr", 0, &x), DN_ERR_FORMAT, "m.cfg:3: key 'lr': '1e50' is not a finite number");
        CHECK_ERR(dn_ini_get_bool(s, "flag", 0, &b), DN_ERR_FORMAT, "m.cfg:4: key 'flag': 'maybe' is not a boolean");
        CHECK_ERR(dn_ini_get_ints(s, "l", v, 2, &i), DN_ERR_FORMAT, "m.cfg:5: key 'l': value 2 of the list is empty");
        CHECK_ERR(dn_ini_get_ints(s, "m", v, 2, &i), DN_ERR_FORMAT, "m.cfg:6: key 'm': more than 2 values");
        CHECK_ERR(dn_ini_get_int(s, "big", 0, &i), DN_ERR_FORMAT, "'99999999999' is not an integer");
        CHECK_ERR(dn_ini_get_float(s, "f", 0, &x), DN_ERR_FORMAT, "'nan' is not a finite number");
        CHECK_ERR(dn_ini_get_floats(s, "fl", fv, 2, &i), DN_ERR_FORMAT, "m.cfg:9: key 'fl': 'x' (value 2");
        dn_ini_free(ini);
    }

    /* syntax errors */
    ini = (dn_ini *)1;
    CHECK_ERR(dn_ini_parse("batch = 1\n[net]\n", "a.cfg", &ini), DN_ERR_FORMAT, "a.cfg:1: key 'batch' comes before any [section]");
    CHECK(ini == NULL);
    CHECK_ERR(dn_ini_parse("[net]\n\nbatch 1\n", "a.cfg", &ini), DN_ERR_FORMAT, "a.cfg:3: expected '[section]' or 'key = value', found 'batch 1'");
    CHECK_ERR(dn_ini_parse("[ ]\n", "a.cfg", &ini), DN_ERR_FORMAT, "a.cfg:1: empty section name");
    CHECK_ERR(dn_ini_parse("[net\n", "a.cfg", &ini), DN_ERR_FORMAT, "a.cfg:1: section header '[net' does not end");
    CHECK_ERR(dn_ini_parse("[net]\n = 3\n", "a.cfg", &ini), DN_ERR_FORMAT, "a.cfg:2: '=' with no key");
    CHECK_ERR(dn_ini_parse("[net]\nlr = 1\nlr = 2\n", "a.cfg", &ini), DN_ERR_FORMAT,
              "a.cfg:3: key 'lr' repeated in [net] (first set at line 2)");
    CHECK(ini == NULL);
    CHECK_OK(dn_ini_parse("", NULL, &ini));
    if (ini) CHECK(ini->n_sections == 0 && strcmp(ini->file, "<string>") == 0);
    dn_ini_free(ini);
}

static void test_read_file(void)
{
    char *text = NULL;
    size_t len = 0;
    write_text(tpath("t.cfg"), "[net]\nbatch=1\n");
    CHECK_OK(dn_read_file(tpath("t.cfg"), 100, &text, &len));
    CHECK(text && len == 14 && strcmp(text, "[net]\nbatch=1\n") == 0);
    dn_free(text);
    CHECK_ERR(dn_read_file(tpath("t.cfg"), 10, &text, &len), DN_ERR_IO, "14 bytes, more than the limit of 10");
    CHECK(text == NULL);
    CHECK_ERR(dn_read_file(tpath("none.cfg"), 0, &text, &len), DN_ERR_IO, "none.cfg");
    CHECK_ERR(dn_read_file(tmp_dir, 0, &text, &len), DN_ERR_IO, "directory");
    write_text(tpath("e.cfg"), "");
    CHECK_OK(dn_read_file(tpath("e.cfg"), 0, &text, &len));
    CHECK(text && len == 0 && text[0] == '\0');
    dn_free(text);
    /* larger than the first buffer guess */
    char *big = malloc(10001);
    memset(big, 'a', 10000);
    big[10000] = '\0';
    write_text(tpath("big.cfg"), big);
    free(big);
    CHECK_OK(dn_read_file(tpath("big.cfg"), 0, &text, &len));
    CHECK(text && len == 10000 && text[9999] == 'a' && text[10000] == '\0');
    dn_free(text);
}

/* ------------------------------------------------------------------ out of memory everywhere */

static int64_t fail_countdown; /* the allocation that fails: 0 is the first; -1 never */
static void *failing_alloc(size_t n, void *u) { (void)u; return fail_countdown-- == 0 ? NULL : malloc(n); }
static void *failing_realloc(void *p, size_t n, void *u) { (void)u; return fail_countdown-- == 0 ? NULL : realloc(p, n); }

/* Runs op with the k-th allocation failing, for k = 0, 1, ... until it succeeds: each failure must be a
 * clean DN_ERR_NOMEM (ASan's leak check sees whatever a failure path forgets to free). */
static void each_alloc_failure(const char *what, dn_status (*op)(void))
{
    dn_allocator failing = {failing_alloc, failing_realloc, count_free, NULL};
    for (int64_t k = 0; k < 1000; k++) {
        fail_countdown = k;
        dn_set_allocator(&failing);
        dn_status s = op();
        dn_set_allocator(NULL);
        if (s == DN_OK) return;
        CHECK_MSG(s == DN_ERR_NOMEM, "%s with allocation %lld failing: %s (%s)", what, (long long)k,
                  dn_status_name(s), dn_last_error());
        if (s != DN_ERR_NOMEM) return;
    }
    CHECK_MSG(0, "%s never succeeded", what);
}

static dn_status op_csv(void)
{
    dn_dataset *d = NULL;
    dn_status s = dn_dataset_load_csv(tpath("a.csv"), 0, -1, &d);
    dn_dataset_free(d);
    return s;
}

static dn_status op_idx(void)
{
    dn_dataset *d = NULL;
    dn_status s = dn_dataset_load_idx(tpath("img"), tpath("lab"), 1.0f, &d);
    dn_dataset_free(d);
    return s;
}

static dn_status op_idx_compact(void)
{
    dn_dataset *d = NULL;
    dn_status s = dn_dataset_load_idx_compact(tpath("img"), tpath("lab"), 1.0f, &d);
    dn_dataset_free(d);
    return s;
}

/* A split of normalised byte storage (the parts copy the normalisation), then a second normalisation of one
 * part (which turns it into floats). */
static dn_status op_bytes_split_normalize(void)
{
    dn_dataset *d = NULL, *a = NULL, *b = NULL;
    float mean[4] = {1, 2, 3, 4}, std[4] = {2, 0, 1, 3};
    dn_set_allocator(NULL); /* the load is swept on its own (op_idx_compact) */
    dn_status s = dn_dataset_load_idx_compact(tpath("img"), tpath("lab"), 1.0f, &d);
    dn_allocator failing = {failing_alloc, failing_realloc, count_free, NULL};
    dn_set_allocator(&failing);
    if (!s) s = dn_dataset_normalize(d, mean, std);
    if (!s) s = dn_dataset_split(d, 0.5, 3, &a, &b);
    if (!s) s = dn_dataset_normalize(a, mean, std);
    dn_dataset_free(a);
    dn_dataset_free(b);
    dn_dataset_free(d);
    return s;
}

static dn_status op_split(void)
{
    dn_dataset *d = counting_dataset(10), *a = NULL, *b = NULL;
    dn_status s = dn_dataset_split(d, 0.5, 3, &a, &b);
    dn_dataset_free(a);
    dn_dataset_free(b);
    free_counting(d);
    return s;
}

static dn_status op_batcher(void)
{
    dn_dataset *d = counting_dataset(10);
    dn_batcher *b = NULL;
    dn_status s = dn_batcher_new(d, 3, true, 3, &b);
    dn_batcher_free(b);
    free_counting(d);
    return s;
}

static dn_status op_st_write(void)
{
    float w[2] = {1, 2};
    dn_st_entry e = {"w", 1, {2}, w};
    const char *k[] = {"cfg"}, *v[] = {meta_text};
    return dn_st_write(tpath("oom.safetensors"), 1, &e, 1, k, v);
}

static dn_status op_st_read(void)
{
    dn_st_file *f = NULL;
    dn_status s = dn_st_read(tpath("ref.safetensors"), 0, &f);
    dn_st_free(f);
    return s;
}

static dn_status op_ini(void)
{
    dn_ini *ini = NULL;
    dn_status s = dn_ini_parse("[net]\nbatch = 1\nlr = 2\n[conv]\nsize = 3\n", "m.cfg", &ini);
    dn_ini_free(ini);
    return s;
}

static dn_status op_read_file(void)
{
    char *text = NULL;
    dn_status s = dn_read_file(tpath("big.cfg"), 0, &text, NULL);
    dn_free(text);
    return s;
}

static void test_alloc_failures(void)
{
    /* the fixtures of the earlier tests, made again so this test stands alone */
    const uint32_t dims3[] = {3, 2, 2}, dims1[] = {3};
    unsigned char px[12] = {0};
    write_idx(tpath("img"), 0x08, 3, dims3, px, 12);
    write_idx(tpath("lab"), 0x08, 1, dims1, px, 3);
    write_text(tpath("a.csv"), "label, f1 ,f2\n1, 0.5, -2\n0,1e3 , 3\n");
    write_bytes(tpath("ref.safetensors"), reference_file, sizeof reference_file);
    char big[5001];
    memset(big, 'a', 5000);
    big[5000] = '\0';
    write_text(tpath("big.cfg"), big);

    each_alloc_failure("dn_dataset_load_csv", op_csv);
    each_alloc_failure("dn_dataset_load_idx", op_idx);
    each_alloc_failure("dn_dataset_load_idx_compact", op_idx_compact);
    each_alloc_failure("byte storage: dn_dataset_normalize, dn_dataset_split", op_bytes_split_normalize);
    each_alloc_failure("dn_dataset_split", op_split);
    each_alloc_failure("dn_batcher_new", op_batcher);
    each_alloc_failure("dn_st_write", op_st_write);
    each_alloc_failure("dn_st_read", op_st_read);
    each_alloc_failure("dn_ini_parse", op_ini);
    each_alloc_failure("dn_read_file", op_read_file);
}

void suite_data_io(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s", "/tmp/dn_data_io_XXXXXX");
    if (!mkdtemp(tmp_dir)) {
        printf("FAIL data_io: cannot create a temporary folder\n");
        return;
    }
    RUN(test_idx_mnist);
    RUN(test_idx_small);
    RUN(test_idx_malformed);
    RUN(test_csv_good);
    RUN(test_csv_malformed);
    RUN(test_dataset_split);
    RUN(test_dataset_stats);
    RUN(test_batcher);
    RUN(test_idx_bytes);
    RUN(test_bytes_dataset_ops);
    RUN(test_bytes_training);
    RUN(test_bytes_mnist);
    RUN(test_st_reference);
    RUN(test_st_roundtrip);
    RUN(test_st_write_errors);
    RUN(test_st_hostile);
    RUN(test_ini);
    RUN(test_read_file);
    RUN(test_alloc_failures);
    rm_tree(tmp_dir);
}
