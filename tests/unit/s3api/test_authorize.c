/* s3_api_authorize over real requests: a loopback HTTP server whose handler asks it, and a
 * client sending Basic and SigV4 credentials, right and wrong. */
#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/h1.h"
#include "gateway/xmalloc.h"
#include "s3api/encode.h"
#include "s3api/s3api.h"
#include "tests/unit/s3api/store_fixture.h"
#include "tests/unit/tap.h"

static struct s3_api *api;
static struct h1_server *srv;

/* What the handler saw for the last request. */
static struct {
    bool done;
    bool ok;
    char user[64];
    char sha[80];
    char msg[256];
} last;

static void on_request(struct h1_req *req, void *arg)
{
    (void)arg;
    last.ok = s3_api_authorize(api, req, last.user, sizeof(last.user), last.sha, sizeof(last.sha),
                               last.msg, sizeof(last.msg));
    last.done = true;
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "x", 1);
    h1_resp_send(req, last.ok ? 200 : 403, "text/plain", b);
    evbuffer_free(b);
}

static void on_body(struct h1_req *req, struct evbuffer *data, void *arg)
{
    (void)req;
    (void)arg;
    evbuffer_drain(data, evbuffer_get_length(data));
}

static void on_req_end(struct h1_req *req, void *arg)
{
    (void)req;
    (void)arg;
}

/* Sends "GET target" with `headers` (CRLF-ended lines) and runs the loop until the handler
 * has answered. */
static bool ask(const char *target, const char *headers)
{
    memset(&last, 0, sizeof(last));
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)h1_server_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    char *head = xasprintf("GET %s HTTP/1.1\r\nHost: admin.test\r\n%s\r\n", target, headers);
    size_t n = strlen(head);
    ASSERT(send(fd, head, n, MSG_NOSIGNAL) == (ssize_t)n);
    free(head);
    while (!last.done)
        event_base_loop(base, EVLOOP_ONCE);
    close(fd);
    /* let the server see the close before the next request */
    for (int i = 0; i < 3; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    return last.ok;
}

static bool ask_basic(const char *access, const char *secret)
{
    char plain[128], b64[200], hdr[256];
    int n = snprintf(plain, sizeof(plain), "%s:%s", access, secret);
    s3_base64_encode((const unsigned char *)plain, (size_t)n, b64, sizeof(b64));
    snprintf(hdr, sizeof(hdr), "Authorization: Basic %s\r\n", b64);
    return ask("/admin/status", hdr);
}

static void test_authorize_basic(void)
{
    ok(ask_basic("AKIDALICE", "alice-secret-0123456789"), "Basic with the right secret");
    is_str(last.user, "alice", "the user's name");
    is_str(last.sha, "", "no payload hash for Basic");
    ok(ask_basic("AKIDBOB", "bob-secret-abcdefghij"), "another user");
    is_str(last.user, "bob", "its name");

    ok(!ask_basic("AKIDALICE", "alice-secret-012345678"), "a wrong secret is refused");
    ok(last.msg[0] != '\0' && strstr(last.msg, "alice-secret") == NULL,
       "with a message that leaks nothing");
    is_str(last.user, "", "and no user");
    ok(!ask_basic("AKIDALICE", "bob-secret-abcdefghij"), "another user's secret is refused");
    ok(!ask_basic("AKIDNOBODY", "alice-secret-0123456789"), "an unknown access key is refused");
    ok(!ask_basic("AKIDALICE", ""), "an empty secret is refused");
    ok(!ask("/admin/status", "Authorization: Basic !!!notbase64\r\n"), "bad base64 is refused");
    ok(!ask("/admin/status", ""), "no credentials are refused");
    ok(last.msg[0] != '\0', "with a message");
}

static bool ask_sigv4(const char *secret, const char *path, const char *query, const char *sha)
{
    struct s3_signed_headers h;
    s3_sign_v4("AKIDALICE", secret, "us-east-1", "GET", "admin.test", path, query, sha, time(NULL),
               &h);
    char *hdr = xasprintf("x-amz-date: %s\r\nx-amz-content-sha256: %s\r\nAuthorization: %s\r\n",
                          h.amz_date, h.content_sha256, h.authorization);
    char *target = xasprintf("%s%s%s", path, query[0] ? "?" : "", query);
    bool r = ask(target, hdr);
    free(target);
    free(hdr);
    return r;
}

static void test_authorize_sigv4(void)
{
    ok(ask_sigv4("alice-secret-0123456789", "/admin/rules", "", NULL), "SigV4 header");
    is_str(last.user, "alice", "the user's name");
    is_str(last.sha, "UNSIGNED-PAYLOAD", "the payload hash as sent");
    ok(ask_sigv4("alice-secret-0123456789", "/admin/rules", "b=2&a=1", NULL), "with a query");

    const char *sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
    ok(ask_sigv4("alice-secret-0123456789", "/admin/rules", "", sha), "a signed payload hash");
    is_str(last.sha, sha, "is handed back to check against the body");

    ok(!ask_sigv4("wrong-secret", "/admin/rules", "", NULL), "SigV4 with a wrong secret");
    ok(strstr(last.msg, "SignatureDoesNotMatch") != NULL, "says why");
}

int main(void)
{
    fixture_init("authz"); /* the loop and a temp dir; the api has its own store */

    struct s3_user_config users[] = {
        {"alice", "AKIDALICE", "alice-secret-0123456789"},
        {"bob", "AKIDBOB", "bob-secret-abcdefghij"},
    };
    struct s3_config cfg = {
        .data_dir = root,
        .region = "us-east-1",
        .users = users,
        .n_users = 2,
        .sigv2 = true,
        .max_skew_s = 900,
        .max_object_bytes = 1 << 20,
        .disk_threads = 2,
    };
    char err[256] = "";
    api = s3_api_new(base, &cfg, err, sizeof(err));
    if (api == NULL)
        printf("# s3_api_new: %s\n", err);
    ASSERT(api != NULL);
    struct h1_limits limits;
    h1_limits_default(&limits);
    struct h1_handler handler = {
        .on_request = on_request,
        .on_body = on_body,
        .on_body_end = on_req_end,
        .on_abort = on_req_end,
    };
    srv = h1_server_new(base, &limits, &handler);
    ASSERT(h1_server_listen(srv, "127.0.0.1:0") == 0);

    subtest(test_authorize_basic);
    subtest(test_authorize_sigv4);

    h1_server_free(srv);
    s3_api_free(api);
    fixture_fini();
    return done_testing();
}
