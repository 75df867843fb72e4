/* Error and access logs. Lines are written with one write(2) each so concurrent threads never
 * interleave within a line. */
#include "gateway/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gateway/xmalloc.h"

enum log_level log_level_now = LOG_INFO;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int error_fd = 2;
static int access_fd = 1;
static char *error_path_saved;
static char *access_path_saved;

static const char *level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

static int open_log(const char *path, int dflt)
{
    if (path == NULL || path[0] == '\0' || strcmp(path, "-") == 0)
        return dflt;
    if (strcmp(path, "off") == 0)
        return -1;
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void swap_fd(int *slot, int fd)
{
    int old = *slot;
    *slot = fd;
    if (old > 2)
        close(old);
}

int log_open(const char *error_path, const char *access_path)
{
    int efd = open_log(error_path, 2);
    if (efd < 0 && error_path != NULL && strcmp(error_path, "off") != 0)
        return -1;
    int afd = open_log(access_path, 1);
    if (afd < 0 && access_path != NULL && strcmp(access_path, "off") != 0) {
        if (efd > 2)
            close(efd);
        return -1;
    }
    pthread_mutex_lock(&log_mu);
    swap_fd(&error_fd, efd);
    swap_fd(&access_fd, afd);
    if (error_path != error_path_saved) {
        free(error_path_saved);
        error_path_saved = error_path ? xstrdup(error_path) : NULL;
    }
    if (access_path != access_path_saved) {
        free(access_path_saved);
        access_path_saved = access_path ? xstrdup(access_path) : NULL;
    }
    pthread_mutex_unlock(&log_mu);
    return 0;
}

int log_reopen(void)
{
    return log_open(error_path_saved, access_path_saved);
}

void log_close(void)
{
    pthread_mutex_lock(&log_mu);
    swap_fd(&error_fd, 2);
    swap_fd(&access_fd, 1);
    free(error_path_saved);
    free(access_path_saved);
    error_path_saved = access_path_saved = NULL;
    pthread_mutex_unlock(&log_mu);
}

/* "2024-05-01T12:34:56.789Z". Every request writes one of these, so the part up to the
 * seconds is formatted only when the second changes (per thread: no lock, and the error log
 * is written from several threads). `cap` must leave room for 32 bytes. */
static size_t format_time(char *buf, size_t cap)
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[24];
    static _Thread_local size_t cached_len;
    struct timespec ts;

    ASSERT(cap >= 32);
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        cached_len = strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    unsigned ms = (unsigned)(ts.tv_nsec / 1000000);
    memcpy(buf, cached, cached_len);
    char *p = buf + cached_len;
    p[0] = '.';
    p[1] = (char)('0' + ms / 100);
    p[2] = (char)('0' + ms / 10 % 10);
    p[3] = (char)('0' + ms % 10);
    p[4] = 'Z';
    return cached_len + 5;
}

static void write_line(int fd, char *line, size_t len, size_t cap)
{
    if (fd < 0)
        return;
    if (len >= cap - 1)
        len = cap - 2;
    line[len++] = '\n';
    ssize_t r;
    do {
        r = write(fd, line, len);
    } while (r < 0 && errno == EINTR);
}

/* Replaces control characters so a hostile key or header cannot forge log lines. */
static void sanitize(char *s, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = '?';
}

void log_write(enum log_level lvl, const struct log_ctx *ctx, const char *fmt, ...)
{
    char line[2048];
    size_t n = format_time(line, sizeof(line));
    int saved_errno = errno;
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %s", level_names[lvl],
                          ctx && ctx->module ? ctx->module : "-");
    if (ctx != NULL && ctx->conn_id != 0)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " c=%llu",
                              (unsigned long long)ctx->conn_id);
    if (ctx != NULL && ctx->request_id[0] != '\0')
        n += (size_t)snprintf(line + n, sizeof(line) - n, " r=%s", ctx->request_id);
    if (ctx != NULL && ctx->peer[0] != '\0')
        n += (size_t)snprintf(line + n, sizeof(line) - n, " peer=%s", ctx->peer);
    if (n < sizeof(line) - 2)
        line[n++] = ' ';
    size_t msg_start = n;
    va_list ap;
    va_start(ap, fmt);
    errno = saved_errno;
    int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m < sizeof(line) - n ? (size_t)m : sizeof(line) - n - 1;
    sanitize(line, msg_start, n);
    write_line(error_fd, line, n, sizeof(line));
}

/* ---- access log ---------------------------------------------------------------------------
 * One line per request, so it is put together by hand rather than with snprintf, whose
 * format parsing cost more than everything else here together. The fields are those of
 * " %s %s %s %s %s %d %llu %llu %.3f %s" after the time. */

struct line_buf {
    char *p;
    size_t len, cap; /* cap excludes the room write_line needs for the newline */
};

static void put_bytes(struct line_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len)
        n = b->cap - b->len; /* truncated, as snprintf would */
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* " value", or " -" when the value is empty. */
static void put_field(struct line_buf *b, const char *s)
{
    put_bytes(b, " ", 1);
    if (s[0] == '\0')
        put_bytes(b, "-", 1);
    else
        put_bytes(b, s, strlen(s));
}

static void put_digits(struct line_buf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_bytes(b, tmp + i, sizeof(tmp) - i);
}

static void put_u64(struct line_buf *b, uint64_t v)
{
    put_bytes(b, " ", 1);
    put_digits(b, v);
}

static void put_int(struct line_buf *b, int v)
{
    put_bytes(b, v < 0 ? " -" : " ", v < 0 ? 2 : 1);
    put_digits(b, v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v);
}

/* " %.3f" for the usual durations, rounded to the nearest thousandth (for a value within a
 * rounding error of a half-thousandth the last digit may differ from printf's); printf itself
 * for anything unusual. */
static void put_ms(struct line_buf *b, double ms)
{
    if (ms >= 0 && ms < 1e12) {
        uint64_t t = (uint64_t)(ms * 1000.0 + 0.5);
        unsigned f = (unsigned)(t % 1000);
        char frac[4] = {'.', (char)('0' + f / 100), (char)('0' + f / 10 % 10),
                        (char)('0' + f % 10)};
        put_u64(b, t / 1000);
        put_bytes(b, frac, sizeof(frac));
        return;
    }
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), " %.3f", ms);
    if (n > 0)
        put_bytes(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void log_access_write(const struct log_ctx *ctx, const struct log_access *a)
{
    char line[1024];
    if (access_fd < 0)
        return;
    struct line_buf b = {.p = line, .cap = sizeof(line) - 2};
    b.len = format_time(line, sizeof(line));
    put_field(&b, ctx->peer);
    put_field(&b, a->user);
    put_field(&b, a->op);
    put_field(&b, a->bucket);
    put_field(&b, a->key);
    put_int(&b, a->status);
    put_u64(&b, a->bytes_in);
    put_u64(&b, a->bytes_out);
    put_ms(&b, a->ms);
    put_field(&b, ctx->request_id);
    sanitize(line, 0, b.len);
    write_line(access_fd, line, b.len, sizeof(line));
}
