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
#include <sys/time.h>
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

static size_t format_time(char *buf, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    return n;
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

void log_access_write(const struct log_ctx *ctx, const struct log_access *a)
{
    char line[1024];
    if (access_fd < 0)
        return;
    size_t n = format_time(line, sizeof(line));
    int m =
        snprintf(line + n, sizeof(line) - n, " %s %s %s %s %s %d %llu %llu %.3f %s",
                 ctx->peer[0] ? ctx->peer : "-", a->user[0] ? a->user : "-", a->op[0] ? a->op : "-",
                 a->bucket[0] ? a->bucket : "-", a->key[0] ? a->key : "-", a->status,
                 (unsigned long long)a->bytes_in, (unsigned long long)a->bytes_out, a->ms,
                 ctx->request_id[0] ? ctx->request_id : "-");
    if (m > 0)
        n += (size_t)m < sizeof(line) - n ? (size_t)m : sizeof(line) - n - 1;
    sanitize(line, 0, n);
    write_line(access_fd, line, n, sizeof(line));
}
