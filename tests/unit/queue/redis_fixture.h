/* A real redis-server for the queue's unit tests: started on a free loopback port in a temp
 * dir (no persistence unless rfx.aof), stopped and restarted on the same port for fault tests,
 * killed at the end; plus a plain synchronous hiredis connection for checking and for playing the
 * worker, and a loop driver with a deadline. Header-only: one copy per test executable. */
#ifndef FG_TESTS_QUEUE_REDIS_FIXTURE_H
#define FG_TESTS_QUEUE_REDIS_FIXTURE_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#define REDIS_SERVER "/usr/bin/redis-server"

static struct {
    pid_t pid;
    int port;
    char dir[64];
    char url[64];
    bool aof; /* set before rfx_start: append-only file, fsync always (data survives kills) */
} rfx;

static long long rfx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline bool rfx_available(void)
{
    return access(REDIS_SERVER, X_OK) == 0;
}

static int rfx_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(sa.sin_port);
}

static redisContext *rfx_connect(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", rfx.port, tv);
    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static bool rfx_spawn(void)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", rfx.port);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        /* a test that dies (an assertion, a crash) takes its server with it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execl(REDIS_SERVER, REDIS_SERVER, "--port", port, "--bind", "127.0.0.1", "--save", "",
              "--appendonly", rfx.aof ? "yes" : "no", "--appendfsync", "always", "--dir", rfx.dir,
              "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    rfx.pid = pid;
    for (int i = 0; i < 500; i++) { /* 5 s */
        redisContext *c = rfx_connect();
        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            bool up = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (up)
                return true;
        }
        usleep(10000);
    }
    return false;
}

/* Starts the server; false when it could not (the caller skips). */
static inline bool rfx_start(void)
{
    snprintf(rfx.dir, sizeof(rfx.dir), "/tmp/fg-queue-XXXXXX");
    if (mkdtemp(rfx.dir) == NULL)
        return false;
    rfx.port = rfx_free_port();
    snprintf(rfx.url, sizeof(rfx.url), "redis://127.0.0.1:%d", rfx.port);
    return rfx.port > 0 && rfx_spawn();
}

/* Kills the server for real (SIGKILL). */
static void rfx_kill(void)
{
    if (rfx.pid > 0) {
        kill(rfx.pid, SIGKILL);
        waitpid(rfx.pid, NULL, 0);
        rfx.pid = 0;
    }
}

static inline bool rfx_restart(void)
{
    return rfx_spawn();
}

static inline void rfx_stop(void)
{
    rfx_kill();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", rfx.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", rfx.dir);
}

/* One command on a fresh sync connection; the reply or NULL. Free with freeReplyObject. */
static inline redisReply *rfx_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline redisReply *rfx_cmd(const char *fmt, ...)
{
    redisContext *c = rfx_connect();
    if (c == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* A command whose reply does not matter. */
#define rfx_do(...) freeReplyObject(rfx_cmd(__VA_ARGS__))

static inline long long rfx_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline long long rfx_int(const char *fmt, ...)
{
    redisContext *c = rfx_connect();
    if (c == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* A string reply as a static copy ("" when none). */
static inline const char *rfx_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *rfx_str(const char *fmt, ...)
{
    static char buf[4096];
    buf[0] = '\0';
    redisContext *c = rfx_connect();
    if (c == NULL)
        return buf;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        snprintf(buf, sizeof(buf), "%s", r->str);
    freeReplyObject(r);
    redisFree(c);
    return buf;
}

/* ---- the loop ---- */

static void rfx_on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

typedef bool rfx_cond_fn(void *arg);

/* Runs the loop until cond(arg) or timeout_ms; returns cond's last value. */
static inline bool rfx_run_until(struct event_base *base, rfx_cond_fn *cond, void *arg,
                                 long long timeout_ms)
{
    struct event *wake = event_new(base, -1, EV_PERSIST, rfx_on_wake, NULL);
    struct timeval tv = {0, 10 * 1000};
    event_add(wake, &tv);
    long long end = rfx_now_ms() + timeout_ms;
    bool done = cond(arg);
    while (!done && rfx_now_ms() < end) {
        event_base_loop(base, EVLOOP_ONCE);
        done = cond(arg);
    }
    event_free(wake);
    return done;
}

static inline bool rfx_flag_set(void *arg)
{
    return *(bool *)arg;
}

/* Runs the loop for ms whatever happens. */
static bool rfx_never(void *arg)
{
    (void)arg;
    return false;
}

static inline void rfx_run_for(struct event_base *base, long long ms)
{
    rfx_run_until(base, rfx_never, NULL, ms);
}

#endif
