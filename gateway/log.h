/* Logging: one line per event (time, level, module context, message) to the error log, and
 * one access-log line per request. Never pass secrets (Authorization, signatures, secret keys,
 * presigned queries) to these functions. */
#ifndef FG_GATEWAY_LOG_H
#define FG_GATEWAY_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Context carried by a request or connection so every line can be traced. */
struct log_ctx {
    const char *module;  /* "h1", "s3", "store", ... */
    char request_id[24]; /* also sent as x-amz-request-id; empty outside requests */
    uint64_t conn_id;    /* 0 outside connections */
    char peer[48];       /* "addr:port" or empty */
};

/* What the access log records for one request; the HTTP layer fills the transport fields,
 * the S3 layer the rest. */
struct log_access {
    char user[64];
    char op[40]; /* "PutObject", ... */
    char bucket[64];
    char key[256]; /* truncated for the log only */
    int status;
    uint64_t bytes_in;
    uint64_t bytes_out;
    double ms;
};

extern enum log_level log_level_now;

/* Opens the logs; NULL paths mean stderr (error log) and stdout (access log); "off" disables
 * the access log. 0 or -1 (errno set). May be called again: it reopens (SIGHUP). */
int log_open(const char *error_path, const char *access_path);
int log_reopen(void);
void log_close(void);
int log_level_parse(const char *s, enum log_level *out);

void log_write(enum log_level lvl, const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_access_write(const struct log_ctx *ctx, const struct log_access *a);

#define LOG_AT(lvl, ctx, ...)                                                                      \
    do {                                                                                           \
        if ((lvl) <= log_level_now)                                                                \
            log_write((lvl), (ctx), __VA_ARGS__);                                                  \
    } while (0)
#define log_error(ctx, ...) LOG_AT(LOG_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...)  LOG_AT(LOG_WARN, ctx, __VA_ARGS__)
#define log_info(ctx, ...)  LOG_AT(LOG_INFO, ctx, __VA_ARGS__)
#define log_debug(ctx, ...) LOG_AT(LOG_DEBUG, ctx, __VA_ARGS__)

#endif
