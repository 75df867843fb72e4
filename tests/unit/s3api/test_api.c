/* The S3 front end over a loopback server: signed requests (signed with s3_sign_v4, as the
 * worker does) commit mutations whose events carry the request's origin (access key, peer
 * address, request id), and the api's outbox calls (read, count, remove, on_outbox) reach
 * the store's outbox. */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/h1.h"
#include "gateway/xmalloc.h"
#include "s3api/s3api.h"
#include "tests/unit/s3api/store_fixture.h"
#include "tests/unit/tap.h"

#define AKID   "AKIDALICE"
#define SECRET "alice-secret-0123456789"

static struct s3_api *api;
static struct h1_server *srv;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    size_t n;
    enum s3_event_kind kind;
    char key[64];
    struct s3_event_origin origin;
} seen; /* under mu */
static unsigned n_notified;

static void on_event(void *arg, const struct s3_event *ev, struct s3_outbox_txn *tx)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    seen.n++;
    seen.kind = ev->kind;
    snprintf(seen.key, sizeof(seen.key), "%s", ev->key);
    seen.origin = *ev->origin;
    pthread_mutex_unlock(&mu);
    ASSERT(s3_outbox_add(tx, ev->key, strlen(ev->key)) == 0);
}

static void on_notified(void *arg)
{
    (void)arg;
    n_notified++;
}

/* Sends a signed request and runs the loop until the response head has arrived; returns the
 * status (0 when none came). */
static int http(const char *method, const char *path, const char *body)
{
    struct s3_signed_headers h;
    s3_sign_v4(AKID, SECRET, "us-east-1", method, "s3.test", path, "", NULL, time(NULL), &h);
    char *req =
        xasprintf("%s %s HTTP/1.1\r\nHost: s3.test\r\nx-amz-date: %s\r\n"
                  "x-amz-content-sha256: %s\r\nAuthorization: %s\r\n"
                  "Content-Length: %zu\r\n\r\n%s",
                  method, path, h.amz_date, h.content_sha256, h.authorization, strlen(body), body);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)h1_server_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    ASSERT(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    free(req);
    char resp[4096];
    size_t got = 0;
    int status = 0;
    for (int spins = 0; spins < 2000 && status == 0; spins++) {
        event_base_loop(base, EVLOOP_ONCE);
        ssize_t n = recv(fd, resp + got, sizeof(resp) - 1 - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        resp[got] = '\0';
        if (strstr(resp, "\r\n\r\n") != NULL && sscanf(resp, "HTTP/1.1 %d", &status) != 1)
            status = -1;
    }
    close(fd);
    for (int i = 0; i < 3; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    return status;
}

struct read_res {
    bool done;
    int err;
    size_t n;
    uint64_t ids[8];
    char data[8][64];
};

static void on_read(int err, const struct s3_outbox_rec *recs, size_t n, void *arg)
{
    struct read_res *r = arg;
    r->done = true;
    r->err = err;
    r->n = n;
    for (size_t i = 0; i < n && i < 8; i++) {
        r->ids[i] = recs[i].id;
        snprintf(r->data[i], sizeof(r->data[i]), "%.*s", (int)recs[i].len,
                 (const char *)recs[i].data);
    }
}

static void on_removed(int err, void *arg)
{
    *(int *)arg = err;
}

static void test_api_events_carry_the_request_origin(void)
{
    is_int(http("PUT", "/bkt1", ""), 200, "create a bucket");
    is_int(seen.n, 0, "no event for a bucket");
    is_int(http("PUT", "/bkt1/hello%20world.txt", "hello"), 200, "put an object");
    pthread_mutex_lock(&mu);
    size_t n = seen.n;
    struct s3_event_origin o = seen.origin;
    pthread_mutex_unlock(&mu);
    is_int(n, 1, "one event");
    ok(seen.kind == S3_EV_PUT && strcmp(seen.key, "hello world.txt") == 0,
       "PUT of the decoded key");
    is_str(o.principal, AKID, "principal: the signing access key");
    is_str(o.source_ip, "127.0.0.1", "source ip: the peer address without its port");
    ok(strlen(o.request_id) >= 8, "the request id");
    ok(n_notified >= 1, "on_outbox was called");
    is_int(s3_outbox_count(api), 1, "one record");

    is_int(http("DELETE", "/bkt1/hello%20world.txt", ""), 204, "delete it");
    is_int(http("DELETE", "/bkt1/missing", ""), 204, "delete a missing key");
    is_int(seen.n, 2, "only the existing key reported");
    is_int(seen.kind, S3_EV_DELETE, "as a delete");

    struct read_res r = {0};
    s3_outbox_read(api, 0, 8, 1 << 20, on_read, &r);
    while (!r.done)
        event_base_loop(base, EVLOOP_ONCE);
    ok(r.err == 0 && r.n == 2, "both records read through the api");
    ok(r.n == 2 && strcmp(r.data[0], "hello world.txt") == 0 && r.ids[1] > r.ids[0], "in order");
    int err = 1;
    s3_outbox_remove(api, r.ids, r.n, on_removed, &err);
    while (err == 1)
        event_base_loop(base, EVLOOP_ONCE);
    is_int(err, 0, "removed through the api");
    is_int(s3_outbox_count(api), 0, "none left");
}

int main(void)
{
    fixture_init("api"); /* the loop and a temp dir; the api has its own store */

    struct s3_user_config users[] = {{"alice", AKID, SECRET}};
    struct s3_config cfg = {
        .data_dir = root,
        .region = "us-east-1",
        .users = users,
        .n_users = 1,
        .max_skew_s = 900,
        .max_object_bytes = 1 << 20,
        .disk_threads = 2,
    };
    char err[256] = "";
    api = s3_api_new(base, &cfg, err, sizeof(err));
    if (api == NULL)
        printf("# s3_api_new: %s\n", err);
    ASSERT(api != NULL);
    s3_api_set_event_hook(api, on_event, NULL);
    s3_api_on_outbox(api, on_notified, NULL);
    struct h1_limits limits;
    h1_limits_default(&limits);
    struct h1_handler handler;
    s3_api_handler(api, &handler);
    srv = h1_server_new(base, &limits, &handler);
    ASSERT(h1_server_listen(srv, "127.0.0.1:0") == 0);

    subtest(test_api_events_carry_the_request_origin);

    h1_server_free(srv);
    s3_api_free(api);
    fixture_fini();
    return done_testing();
}
