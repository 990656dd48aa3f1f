/* The per-thread error message behind dn_last_error(). */
#include "base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_msg[1024];

const char *dn_last_error(void) { return err_msg; }

const char *dn_status_name(dn_status s)
{
    switch (s) {
    case DN_OK: return "DN_OK";
    case DN_ERR_ARG: return "DN_ERR_ARG";
    case DN_ERR_SHAPE: return "DN_ERR_SHAPE";
    case DN_ERR_NOMEM: return "DN_ERR_NOMEM";
    case DN_ERR_IO: return "DN_ERR_IO";
    case DN_ERR_FORMAT: return "DN_ERR_FORMAT";
    case DN_ERR_NUMERIC: return "DN_ERR_NUMERIC";
    case DN_ERR_STATE: return "DN_ERR_STATE";
    }
    return "DN_ERR_UNKNOWN";
}

dn_status dn_error(dn_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    return s;
}

void dn_error_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof err_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof old);
    /* truncation of an over-long message is acceptable; build it piecewise to say so to the compiler */
    size_t n = strlen(prefix);
    if (n > sizeof err_msg - 3) n = sizeof err_msg - 3;
    memcpy(err_msg, prefix, n);
    err_msg[n++] = ':';
    err_msg[n++] = ' ';
    size_t m = strlen(old);
    if (m > sizeof err_msg - 1 - n) m = sizeof err_msg - 1 - n;
    memcpy(err_msg + n, old, m);
    err_msg[n + m] = '\0';
}

void dn_error_clear(void) { err_msg[0] = '\0'; }
