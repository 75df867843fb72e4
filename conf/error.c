/* conf: filling struct conf_error. */
#include <stdarg.h>
#include <stdio.h>

#include "conf/conf.h"
#include "conf/internal.h"

void conf_error_set(struct conf_error *err, int line, const char *fmt, ...)
{
    va_list ap;

    err->line = line;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}
