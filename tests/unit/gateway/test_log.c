/* The access log line: fields in order, "-" for empty ones, and numbers formatted exactly as
 * " %s %s %s %s %s %d %llu %llu %.3f %s" would, after an ISO 8601 UTC time. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/log.h"
#include "tests/unit/tap.h"

static char path[] = "/tmp/fg_test_log_XXXXXX";

/* Writes one access line and returns it (without the newline) in out. */
static void write_and_read(const struct log_ctx *ctx, const struct log_access *a, char *out,
                           size_t cap)
{
    FILE *f;
    long size;

    log_open(NULL, path);
    f = fopen(path, "r");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    log_access_write(ctx, a);
    fseek(f, size, SEEK_SET);
    out[0] = '\0';
    if (fgets(out, (int)cap, f) != NULL)
        out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

static bool time_prefix_ok(const char *line)
{
    /* 2024-05-01T12:34:56.789Z */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? line[i] < '0' || line[i] > '9' : line[i] != shape[i])
            return false;
    }
    return line[sizeof(shape) - 1] == ' ';
}

static void check(const struct log_ctx *ctx, const struct log_access *a, const char *name)
{
    char line[2048], want[2048];

    write_and_read(ctx, a, line, sizeof(line));
    snprintf(want, sizeof(want), " %s %s %s %s %s %d %llu %llu %.3f %s",
             ctx->peer[0] ? ctx->peer : "-", a->user[0] ? a->user : "-", a->op[0] ? a->op : "-",
             a->bucket[0] ? a->bucket : "-", a->key[0] ? a->key : "-", a->status,
             (unsigned long long)a->bytes_in, (unsigned long long)a->bytes_out, a->ms,
             ctx->request_id[0] ? ctx->request_id : "-");
    ok(time_prefix_ok(line), "starts with the time");
    is_str(strlen(line) > 24 ? line + 24 : "", want, name);
}

static void test_access_line_fields(void)
{
    struct log_ctx ctx = {
        .module = "h1", .conn_id = 7, .peer = "127.0.0.1:5555", .request_id = "0123456789ABCDEF"};
    struct log_access a = {.user = "admin",
                           .op = "GetObject",
                           .bucket = "b",
                           .key = "a%20key",
                           .status = 200,
                           .bytes_in = 0,
                           .bytes_out = 4096,
                           .ms = 0.123456};

    check(&ctx, &a, "all fields");
    struct log_ctx empty_ctx = {.module = "h1"};
    struct log_access empty = {.status = 400};
    check(&empty_ctx, &empty, "empty fields are '-'");
    a.status = -1;
    a.bytes_in = UINT64_MAX;
    a.bytes_out = 1234567890123ULL;
    check(&ctx, &a, "negative status, big counters");
}

static void test_access_line_durations(void)
{
    static const double ms[] = {0,     0.0004,   0.0006,    0.9994, 1.5,
                                17.25, 999.9996, 12345.678, 1e13,   -2.5};
    struct log_ctx ctx = {.module = "h1", .peer = "p", .request_id = "r"};
    struct log_access a = {.op = "o", .status = 200};

    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        a.ms = ms[i];
        check(&ctx, &a, "milliseconds as %.3f");
    }
}

static void test_access_line_sanitized(void)
{
    struct log_ctx ctx = {.module = "h1", .peer = "p", .request_id = "r"};
    struct log_access a = {.op = "o", .key = "a\nb\tc", .status = 200};
    char line[2048];

    write_and_read(&ctx, &a, line, sizeof(line));
    ok(strstr(line, " a?b?c ") != NULL, "control characters replaced");
}

int main(void)
{
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    subtest(test_access_line_fields);
    subtest(test_access_line_durations);
    subtest(test_access_line_sanitized);
    log_close();
    unlink(path);
    return done_testing();
}
