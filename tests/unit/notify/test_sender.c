/* Unit tests for notify/sender.c, webhook.c and redis_target.c: a tiny HTTP/1.1 server runs in
 * a thread of this test (configurable status and delay, keep-alive, Content-Length bodies,
 * counting requests in progress), and a real redis-server is started when installed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "notify/notify.h"
#include "tests/unit/queue/redis_fixture.h"
#include "tests/unit/tap.h"

/* ---- the HTTP server ---- */

static struct {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int status;
    atomic_int delay_ms;
    atomic_int current, max_current, requests, connections, threads;
    pthread_mutex_t mu;
    char last_head[4096];
    char last_body[4096];
} srv;

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    size_t have = 0;

    while (!srv.stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char *end, *cl;
        size_t head_len, body_len = 0;
        ssize_t n;
        char resp[128];
        int len;

        end = have > 0 ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (end == NULL) {
            if (poll(&p, 1, 100) <= 0)
                continue;
            n = read(fd, buf + have, sizeof(buf) - 1 - have);
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        head_len = (size_t)(end - buf) + 4;
        buf[head_len - 1] = '\0';
        cl = strcasestr(buf, "\r\ncontent-length:");
        if (cl != NULL)
            body_len = strtoul(cl + 17, NULL, 10);
        buf[head_len - 1] = '\n';
        while (have < head_len + body_len && !srv.stop) {
            n = read(fd, buf + have, sizeof(buf) - 1 - have);
            if (n <= 0)
                goto out;
            have += (size_t)n;
        }
        int now = ++srv.current;
        for (int m = srv.max_current;
             now > m && !atomic_compare_exchange_weak(&srv.max_current, &m, now);)
            ;
        srv.requests++;
        pthread_mutex_lock(&srv.mu);
        snprintf(srv.last_head, sizeof(srv.last_head), "%.*s", (int)head_len, buf);
        snprintf(srv.last_body, sizeof(srv.last_body), "%.*s", (int)body_len, buf + head_len);
        pthread_mutex_unlock(&srv.mu);
        for (int waited = 0; waited < srv.delay_ms && !srv.stop; waited += 10)
            usleep(10000);
        srv.current--;
        len = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok",
                       srv.status);
        if (send(fd, resp, (size_t)len, MSG_NOSIGNAL) != len)
            break;
        memmove(buf, buf + head_len + body_len, have - head_len - body_len);
        have -= head_len + body_len;
    }
out:
    close(fd);
    srv.threads--;
    return NULL;
}

static void *serve(void *arg)
{
    (void)arg;
    while (!srv.stop) {
        struct pollfd p = {.fd = srv.fd, .events = POLLIN};
        pthread_t th;
        int c;

        if (poll(&p, 1, 100) <= 0)
            continue;
        c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            continue;
        srv.connections++;
        srv.threads++;
        pthread_create(&th, NULL, serve_conn, (void *)(intptr_t)c);
        pthread_detach(th);
    }
    return NULL;
}

static void srv_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);

    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(srv.fd, (struct sockaddr *)&sa, sizeof(sa));
    listen(srv.fd, 512);
    getsockname(srv.fd, (struct sockaddr *)&sa, &len);
    srv.port = ntohs(sa.sin_port);
    srv.status = 200;
    pthread_mutex_init(&srv.mu, NULL);
    pthread_create(&srv.thread, NULL, serve, NULL);
}

static void srv_stop(void)
{
    srv.stop = true;
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    for (int i = 0; i < 100 && srv.threads > 0; i++)
        usleep(10000);
}

static void srv_reset(int status, int delay_ms)
{
    /* a request of an earlier test (one a client gave up on) may still be sleeping */
    for (int i = 0; i < 500 && srv.current > 0; i++)
        usleep(10000);
    srv.status = status;
    srv.delay_ms = delay_ms;
    srv.max_current = 0;
    srv.requests = 0;
    srv.connections = 0;
}

/* ---- results ---- */

struct results {
    int n;
    int sent, retry, fail, unreachable;
    char last_reason[160];
    bool early; /* a done ran before its send returned */
};

static bool sending;

static void on_done(void *arg, enum notify_send_result res, const char *reason)
{
    struct results *r = arg;

    r->n++;
    r->sent += res == NOTIFY_SENT;
    r->retry += res == NOTIFY_RETRY;
    r->fail += res == NOTIFY_FAIL;
    r->unreachable += res == NOTIFY_UNREACHABLE;
    r->early |= sending;
    snprintf(r->last_reason, sizeof(r->last_reason), "%s", reason);
}

struct wait_for {
    struct results *r;
    int n;
};

static bool reached(void *arg)
{
    struct wait_for *w = arg;

    return w->r->n >= w->n;
}

static bool run_until_done(struct event_base *base, struct results *r, int n, long long ms)
{
    struct wait_for w = {r, n};

    return rfx_run_until(base, reached, &w, ms);
}

static void send_one(struct notify_sender *s, const char *id, const char *body, struct results *r)
{
    sending = true;
    notify_sender_send(s, id, body, strlen(body), on_done, r);
    sending = false;
}

/* One send on s, waited for (5 s at most); r is cleared first. */
static bool send_and_wait(struct event_base *base, struct notify_sender *s, const char *id,
                          const char *body, struct results *r)
{
    memset(r, 0, sizeof(*r));
    send_one(s, id, body, r);
    return run_until_done(base, r, 1, 5000);
}

static struct notify_target webhook_target(const char *path, unsigned timeout_ms,
                                           unsigned concurrency)
{
    static char url[128];
    struct notify_target t = {.id = "w",
                              .type = "webhook",
                              .endpoint = url,
                              .tls_verify = true,
                              .timeout_ms = timeout_ms,
                              .concurrency = concurrency,
                              .max_attempts = 3};

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, path);
    return t;
}

static struct notify_sender *sender_for(struct event_base *base, struct notify_target t)
{
    char msg[160] = "";
    struct notify_sender *s = notify_sender_new(base, &t, msg, sizeof(msg));

    if (s == NULL)
        printf("# notify_sender_new: %s\n", msg);
    return s;
}

/* ---- webhook ---- */

static void test_webhook_200_is_sent_with_headers(void)
{
    struct event_base *base = event_base_new();
    struct notify_target t = webhook_target("/hook", 2000, 4);
    struct notify_sender *s;
    struct results r = {0};
    char auth[] = "sekrit";

    t.auth_token = auth;
    s = sender_for(base, t);
    srv_reset(200, 0);
    send_one(s, "ev-1", "{\"a\":1}", &r);
    is_int(r.n, 0, "done not called before send returned");
    ok(run_until_done(base, &r, 1, 5000), "done");
    is_int(r.sent, 1, "200 -> SENT");
    ok(!r.early, "never before send returned");
    pthread_mutex_lock(&srv.mu);
    ok(strncmp(srv.last_head, "POST /hook HTTP/1.1\r\n", 21) == 0, "POST to the path");
    ok(strcasestr(srv.last_head, "\r\nx-floodgate-event-id: ev-1\r\n") != NULL, "event id");
    ok(strcasestr(srv.last_head, "\r\nAuthorization: Bearer sekrit\r\n") != NULL, "Bearer");
    ok(strcasestr(srv.last_head, "\r\nContent-Type: application/json\r\n") != NULL, "JSON");
    ok(strcasestr(srv.last_head, "\r\nUser-Agent: floodgate/") != NULL, "User-Agent");
    ok(strcasestr(srv.last_head, "Expect:") == NULL, "no Expect");
    is_str(srv.last_body, "{\"a\":1}", "body");
    pthread_mutex_unlock(&srv.mu);
    notify_sender_free(s);

    t.auth_token = "Basic dTpw";
    s = sender_for(base, t);
    send_one(s, "ev-2", "{}", &r);
    run_until_done(base, &r, 2, 5000);
    pthread_mutex_lock(&srv.mu);
    ok(strcasestr(srv.last_head, "\r\nAuthorization: Basic dTpw\r\n") != NULL, "scheme as is");
    pthread_mutex_unlock(&srv.mu);
    notify_sender_free(s);
    event_base_free(base);
}

static void test_webhook_statuses_classified(void)
{
    static const struct {
        int status;
        enum notify_send_result want;
    } cases[] = {
        {200, NOTIFY_SENT},  {204, NOTIFY_SENT},  {500, NOTIFY_RETRY},
        {503, NOTIFY_RETRY}, {408, NOTIFY_RETRY}, {429, NOTIFY_RETRY},
        {404, NOTIFY_FAIL},  {400, NOTIFY_FAIL},  {301, NOTIFY_FAIL},
    };
    struct event_base *base = event_base_new();
    struct notify_sender *s = sender_for(base, webhook_target("/", 2000, 2));

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct results r = {0};
        char name[32];

        srv_reset(cases[i].status, 0);
        send_one(s, "id", "{}", &r);
        run_until_done(base, &r, 1, 5000);
        snprintf(name, sizeof(name), "HTTP %d", cases[i].status);
        is_int(cases[i].want == NOTIFY_SENT    ? r.sent
               : cases[i].want == NOTIFY_RETRY ? r.retry
                                               : r.fail,
               1, name);
        is_str(r.last_reason, name, "reason");
    }
    notify_sender_free(s);
    event_base_free(base);
}

static void test_webhook_no_response_is_unreachable(void)
{
    struct event_base *base = event_base_new();
    struct notify_sender *s = sender_for(base, webhook_target("/", 300, 2));
    struct results r = {0};
    long long t0 = rfx_now_ms();
    struct notify_target t;
    char url[64];

    srv_reset(200, 1500);
    send_one(s, "slow", "{}", &r);
    ok(run_until_done(base, &r, 1, 5000), "done");
    is_int(r.unreachable, 1, "no response within the timeout -> UNREACHABLE");
    ok(rfx_now_ms() - t0 < 1200, "within about the timeout");
    printf("# timeout: %s\n", r.last_reason);
    notify_sender_free(s);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", rfx_free_port());
    t = webhook_target("/", 2000, 2);
    t.endpoint = url;
    s = sender_for(base, t);
    ok(send_and_wait(base, s, "refused", "{}", &r), "done");
    is_int(r.unreachable, 1, "connection refused -> UNREACHABLE");
    printf("# refused: %s\n", r.last_reason);
    notify_sender_free(s);

    t.endpoint = "http://no-such-host.invalid/";
    s = sender_for(base, t);
    ok(send_and_wait(base, s, "dns", "{}", &r), "done");
    is_int(r.unreachable, 1, "DNS failure -> UNREACHABLE");
    printf("# dns: %s\n", r.last_reason);
    notify_sender_free(s);
    event_base_free(base);
}

/* A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs
 * until the client gives up. */
static void test_webhook_connect_timeout_is_unreachable(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[4];
    struct event_base *base = event_base_new();
    struct notify_target t = webhook_target("/", 300, 1);
    struct notify_sender *s;
    struct results r = {0};
    long long t0;
    char url[64];

    bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
    listen(lfd, 0);
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    for (int i = 0; i < 4; i++) { /* fill the accept queue; later SYNs are dropped */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(50000);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    t.endpoint = url;
    s = sender_for(base, t);
    t0 = rfx_now_ms();
    send_one(s, "hang", "{}", &r);
    ok(run_until_done(base, &r, 1, 5000), "done");
    is_int(r.unreachable, 1, "connect timeout -> UNREACHABLE");
    ok(rfx_now_ms() - t0 < 1500, "within about the timeout");
    printf("# connect timeout: %s\n", r.last_reason);
    notify_sender_free(s);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
    event_base_free(base);
}

/* The target answered: an error status is no reason to stop sending to it. */
static void test_webhook_answer_is_never_unreachable(void)
{
    struct event_base *base = event_base_new();
    struct notify_sender *s = sender_for(base, webhook_target("/", 2000, 2));
    struct results r = {0};

    srv_reset(503, 0);
    send_one(s, "busy", "{}", &r);
    ok(run_until_done(base, &r, 1, 5000), "done");
    is_int(r.retry, 1, "503 -> RETRY");
    is_int(r.unreachable, 0, "not UNREACHABLE");
    notify_sender_free(s);
    event_base_free(base);
}

static void test_webhook_concurrency_cap_and_keep_alive(void)
{
    struct event_base *base = event_base_new();
    struct notify_sender *s = sender_for(base, webhook_target("/", 5000, 3));
    struct results r = {0};

    srv_reset(200, 100);
    for (int i = 0; i < 12; i++)
        send_one(s, "c", "{}", &r);
    ok(run_until_done(base, &r, 12, 10000), "all done");
    is_int(r.sent, 12, "all sent");
    ok(srv.max_current <= 3, "at most 3 at once");
    ok(srv.max_current >= 2, "in parallel");
    printf("# max in progress %d, connections %d\n", srv.max_current, srv.connections);
    ok(srv.connections <= 3, "connections kept alive and reused");
    notify_sender_free(s);
    event_base_free(base);
}

static void test_webhook_thousand_sends(void)
{
    struct event_base *base = event_base_new();
    struct notify_sender *s = sender_for(base, webhook_target("/", 5000, 16));
    struct results r = {0};
    long long t0;

    srv_reset(200, 0);
    t0 = rfx_now_ms();
    for (int i = 0; i < 1000; i++)
        send_one(s, "many", "{\"Records\":[]}", &r);
    ok(run_until_done(base, &r, 1000, 60000), "1000 done");
    is_int(r.sent, 1000, "1000 sent");
    printf("# 1000 sends in %lld ms: %.0f sends/s over %d connections\n", rfx_now_ms() - t0,
           1000.0 * 1000 / (double)(rfx_now_ms() - t0 + 1), srv.connections);
    notify_sender_free(s);
    event_base_free(base);
}

struct resender {
    struct notify_sender *s;
    struct results r;
    bool resend, free_it;
};

static void on_done_again(void *arg, enum notify_send_result res, const char *reason)
{
    struct resender *x = arg;

    on_done(&x->r, res, reason);
    if (x->resend) {
        x->resend = false;
        notify_sender_send(x->s, "again", "{}", 2, on_done_again, x);
    }
    if (x->free_it) {
        x->free_it = false;
        notify_sender_free(x->s);
    }
}

static void test_webhook_free_cancels_in_flight(void)
{
    struct event_base *base = event_base_new();
    struct resender x = {0};

    srv_reset(200, 3000);
    x.s = sender_for(base, webhook_target("/", 10000, 2));
    for (int i = 0; i < 3; i++) /* two in flight, one waiting */
        notify_sender_send(x.s, "x", "{}", 2, on_done_again, &x);
    rfx_run_for(base, 200);
    is_int(x.r.n, 0, "nothing done yet");
    x.resend = true; /* the first done sends again: ended too */
    notify_sender_free(x.s);
    is_int(x.r.n, 4, "every send ended by free, the one sent from a done too");
    is_int(x.r.retry, 4, "as RETRY");
    is_str(x.r.last_reason, "shutting down", "shutting down");

    /* a done callback that frees its sender */
    memset(&x, 0, sizeof(x));
    srv_reset(404, 0);
    x.s = sender_for(base, webhook_target("/", 10000, 1));
    notify_sender_send(x.s, "x", "{}", 2, on_done_again, &x);
    notify_sender_send(x.s, "y", "{}", 2, on_done_again, &x);
    x.free_it = true;
    ok(run_until_done(base, &x.r, 2, 5000), "both done");
    is_int(x.r.fail, 1, "the first failed (404)");
    is_int(x.r.retry, 1, "the second ended by the free");
    rfx_run_for(base, 50);
    event_base_free(base);
}

static void test_sender_new_rejects(void)
{
    struct event_base *base = event_base_new();
    struct notify_target t = webhook_target("/", 1000, 1);
    char msg[160] = "", ca[] = "/nonexistent/ca.pem", bad[] = "http://[::1/x";

    t.ca_file = ca;
    ok(notify_sender_new(base, &t, msg, sizeof(msg)) == NULL, "unreadable CA file");
    printf("# %s\n", msg);
    t.ca_file = NULL;
    t.endpoint = bad;
    ok(notify_sender_new(base, &t, msg, sizeof(msg)) == NULL, "bad URL");
    printf("# %s\n", msg);
    t.type = "redis";
    t.endpoint = "redis://";
    ok(notify_sender_new(base, &t, msg, sizeof(msg)) == NULL, "redis URL without a host");
    event_base_free(base);
}

/* ---- redis ---- */

static void test_redis_target(void)
{
    struct event_base *base;
    struct notify_target t = {.id = "r",
                              .type = "redis",
                              .endpoint = rfx.url,
                              .timeout_ms = 2000,
                              .concurrency = 4,
                              .key = "evs",
                              .format = "stream"};
    struct notify_sender *s;
    struct results r = {0};
    bool up = false;

    if (!rfx_available() || !rfx_start()) {
        ok(0, "a redis-server starts (tools/deps.sh installs it)");
        return;
    }
    base = event_base_new();
    t.endpoint = rfx.url;
    s = sender_for(base, t);
    for (int i = 0; i < 3; i++)
        send_one(s, "id", "{\"n\":1}", &r);
    ok(run_until_done(base, &r, 3, 5000), "three done");
    is_int(r.sent, 3, "XADD -> SENT");
    is_int(rfx_int("XLEN evs"), 3, "three stream entries");
    {
        redisReply *x = rfx_cmd("XRANGE evs - + COUNT 1");
        const redisReply *fields = x != NULL && x->elements == 1 ? x->element[0]->element[1] : NULL;
        ok(fields != NULL && fields->elements == 2 &&
               strcmp(fields->element[0]->str, "event") == 0 &&
               strcmp(fields->element[1]->str, "{\"n\":1}") == 0,
           "entry {event: body}");
        freeReplyObject(x);
    }
    notify_sender_free(s);

    t.format = "list";
    t.key = "lst";
    s = sender_for(base, t);
    ok(send_and_wait(base, s, "id", "{\"l\":2}", &r), "done");
    is_int(r.sent, 1, "RPUSH -> SENT");
    is_str(rfx_str("LINDEX lst 0"), "{\"l\":2}", "list element");
    notify_sender_free(s);

    rfx_do("SET wrong x");
    t.key = "wrong";
    t.format = "stream";
    s = sender_for(base, t);
    ok(send_and_wait(base, s, "id", "{}", &r), "done");
    is_int(r.fail, 1, "error reply -> FAIL");
    printf("# %s\n", r.last_reason);
    notify_sender_free(s);

    t.key = "evs";
    s = sender_for(base, t);
    send_and_wait(base, s, "id", "{}", &r);
    rfx_kill();
    rfx_run_for(base, 100);
    ok(send_and_wait(base, s, "id", "{}", &r), "done while down");
    is_int(r.unreachable, 1, "Redis down -> UNREACHABLE");
    printf("# %s\n", r.last_reason);
    ok(rfx_restart(), "redis back");
    for (int i = 0; i < 100 && !up; i++) { /* reconnects within the 5 s backoff cap */
        send_and_wait(base, s, "id", "{}", &r);
        up = r.sent == 1;
        if (!up)
            rfx_run_for(base, 100);
    }
    ok(up, "sent again after the reconnect");
    notify_sender_free(s);
    event_base_free(base);
    rfx_stop();
}

int main(void)
{
    srv_start();
    subtest(test_webhook_200_is_sent_with_headers);
    subtest(test_webhook_statuses_classified);
    subtest(test_webhook_no_response_is_unreachable);
    subtest(test_webhook_connect_timeout_is_unreachable);
    subtest(test_webhook_answer_is_never_unreachable);
    subtest(test_webhook_concurrency_cap_and_keep_alive);
    subtest(test_webhook_thousand_sends);
    subtest(test_webhook_free_cancels_in_flight);
    subtest(test_sender_new_rejects);
    subtest(test_redis_target);
    srv_stop();
    return done_testing();
}
