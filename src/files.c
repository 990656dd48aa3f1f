/* Reading a whole file, checked (floor 0: used by the data readers and the file formats above). */
#include "base.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

dn_status dn_read_file(const char *path, size_t max_bytes, char **text, size_t *len)
{
    if (!path || !text) return dn_error(DN_ERR_ARG, "dn_read_file: path and text must not be NULL");
    *text = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return dn_error(DN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    bool have_st = fstat(fileno(f), &st) == 0;
    if (have_st && S_ISDIR(st.st_mode)) {
        fclose(f);
        return dn_error(DN_ERR_IO, "cannot read %s: it is a directory", path);
    }
    bool regular = have_st && S_ISREG(st.st_mode);
    if (max_bytes && regular && (uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return dn_error(DN_ERR_IO, "file %s is %lld bytes, more than the limit of %zu bytes", path,
                        (long long)st.st_size, max_bytes);
    }
    /* Read in a loop rather than trusting st_size: pipes report 0 and a file may change under us. */
    size_t cap = regular && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
    char *buf = dn_alloc(cap);
    if (!buf) {
        fclose(f);
        return DN_ERR_NOMEM;
    }
    for (;;) {
        if (n + 1 >= cap) {
            /* Full: peek one byte first, so a file read exactly to its end does not double the buffer. */
            int c = getc(f);
            if (c == EOF) break;
            size_t ncap = cap * 2;
            char *nb = ncap > cap ? dn_realloc(buf, ncap) : NULL;
            if (!nb) {
                dn_free(buf);
                fclose(f);
                return dn_error(DN_ERR_NOMEM, "out of memory reading %s (%zu bytes so far)", path, n);
            }
            buf = nb;
            cap = ncap;
            buf[n++] = (char)c;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (max_bytes && n > max_bytes) {
            dn_free(buf);
            fclose(f);
            return dn_error(DN_ERR_IO, "file %s is more than the limit of %zu bytes", path, max_bytes);
        }
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        dn_free(buf);
        return dn_error(DN_ERR_IO, "error reading %s after %zu bytes", path, n);
    }
    buf[n] = '\0';
    *text = buf;
    if (len) *len = n;
    return DN_OK;
}
