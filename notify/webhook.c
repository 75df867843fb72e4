/* notify: the webhook transport of a sender: HTTP POSTs through one libcurl multi handle per
 * target, driven by the libevent loop (CURLMOPT_SOCKETFUNCTION watches curl's sockets with
 * one event each, CURLMOPT_TIMERFUNCTION arms one timer: curl's "hiperfifo" pattern), so the
 * loop never blocks. Easy handles are kept and reused, and the multi handle keeps the
 * connections alive between requests. The FIFO and the concurrency cap are sender.c's. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"
#include "notify/sender.h"

/* One socket curl asked us to watch. */
struct sock {
    struct sock *next, *prev;
    struct notify_sender *s;
    curl_socket_t fd;
    struct event *ev;
};

struct webhook {
    CURLM *multi;
    struct event *timer;
    struct curl_slist *headers; /* the fixed ones; each request puts its id in front */
    CURL **idle;                /* easy handles ready for reuse */
    size_t n_idle;
    struct notify_send **active; /* in flight, at most concurrency */
    size_t n_active;
    struct sock *socks; /* for freeing what curl never removed */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    /* once per process; libcurl's own reference count covers other users (the worker) */
    ASSERT(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
}

/* ---- curl's callbacks ------------------------------------------------------------------ */

static void check_done(struct notify_sender *s);

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
    struct sock *k = arg;
    struct notify_sender *s = k->s; /* k may be freed by the call below */
    struct webhook *w = s->impl;
    int flags =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;

    curl_multi_socket_action(w->multi, fd, flags, &running);
    check_done(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct notify_sender *s = arg;
    struct webhook *w = s->impl;
    int running;

    (void)fd;
    (void)what;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(s);
}

static void sock_free(struct webhook *w, struct sock *k)
{
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        w->socks = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    event_free(k->ev);
    free(k);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct notify_sender *s = userp;
    struct webhook *w = s->impl;
    struct sock *k = socketp;
    short kind = EV_PERSIST;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (k != NULL) {
            curl_multi_assign(w->multi, fd, NULL);
            sock_free(w, k);
        }
        return 0;
    }
    if (what & CURL_POLL_IN)
        kind |= EV_READ;
    if (what & CURL_POLL_OUT)
        kind |= EV_WRITE;
    if (k == NULL) {
        k = xcalloc(1, sizeof(*k));
        k->s = s;
        k->fd = fd;
        k->ev = event_new(s->base, fd, kind, on_sock_event, k);
        ASSERT(k->ev != NULL);
        k->next = w->socks;
        if (w->socks != NULL)
            w->socks->prev = k;
        w->socks = k;
        curl_multi_assign(w->multi, fd, k);
    } else {
        event_del(k->ev);
        event_assign(k->ev, s->base, fd, kind, on_sock_event, k);
    }
    event_add(k->ev, NULL);
    return 0;
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    struct notify_sender *s = userp;
    struct webhook *w = s->impl;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(w->timer);
    } else {
        /* 0 means "now": still from the loop, never from inside curl */
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(w->timer, &tv);
    }
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n; /* the response body is not read */
}

/* ---- requests -------------------------------------------------------------------------- */

static CURL *easy_new(struct notify_sender *s)
{
    const struct notify_target *t = &s->t;
    CURL *h = curl_easy_init();

    ASSERT(h != NULL);
    curl_easy_setopt(h, CURLOPT_URL, t->endpoint);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, t->tls_verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, t->tls_verify ? 2L : 0L);
    if (t->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
    if (t->client_cert != NULL)
        curl_easy_setopt(h, CURLOPT_SSLCERT, t->client_cert);
    if (t->client_key != NULL)
        curl_easy_setopt(h, CURLOPT_SSLKEY, t->client_key);
    return h;
}

static void active_remove(struct webhook *w, const struct notify_send *m)
{
    for (size_t i = 0; i < w->n_active; i++) {
        if (w->active[i] == m) {
            w->active[i] = w->active[--w->n_active];
            return;
        }
    }
}

/* Sends the easy handle back to the idle list and ends `m`. */
static void request_end(struct notify_sender *s, struct notify_send *m, enum notify_send_result res,
                        const char *reason)
{
    struct webhook *w = s->impl;

    curl_multi_remove_handle(w->multi, m->easy);
    w->idle[w->n_idle++] = m->easy;
    m->easy = NULL;
    active_remove(w, m);
    notify_sender_finish(s, m, res, reason);
}

/* Transport errors that mean nothing reached the receiver, or nothing came back: the target
 * is unreachable, not the message at fault (notify.h). */
static bool is_unreachable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT: /* connect timeout, or the timeout without a response */
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SEND_ERROR: /* reset while sending */
    case CURLE_RECV_ERROR: /* reset while waiting */
    case CURLE_GOT_NOTHING:
        return true;
    default:
        return false;
    }
}

/* notify.h: 2xx sent; no connection or no response unreachable; 408, 429, 5xx and other
 * transport errors retried; other statuses failed. */
static void classify(struct notify_send *m, CURLcode rc, enum notify_send_result *res, char *reason,
                     size_t cap)
{
    long status = 0;

    curl_easy_getinfo(m->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        /* a status line came before the error: the target answered, so it is reachable */
        *res = status == 0 && is_unreachable(rc) ? NOTIFY_UNREACHABLE : NOTIFY_RETRY;
        snprintf(reason, cap, "%.150s", m->errbuf[0] != '\0' ? m->errbuf : curl_easy_strerror(rc));
        return;
    }
    snprintf(reason, cap, "HTTP %ld", status);
    if (status >= 200 && status <= 299)
        *res = NOTIFY_SENT;
    else if (status == 408 || status == 429 || status >= 500)
        *res = NOTIFY_RETRY;
    else
        *res = NOTIFY_FAIL;
}

static void check_done(struct notify_sender *s)
{
    struct webhook *w = s->impl;
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(w->multi, &left)) != NULL) {
        struct notify_send *m = NULL;
        enum notify_send_result res;
        char reason[160];

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&m);
        ASSERT(m != NULL && m->easy == msg->easy_handle);
        classify(m, msg->data.result, &res, reason, sizeof(reason));
        request_end(s, m, res, reason);
    }
}

static void start(struct notify_sender *s, struct notify_send *m)
{
    struct webhook *w = s->impl;
    CURLMcode rc;

    m->easy = w->n_idle > 0 ? w->idle[--w->n_idle] : easy_new(s);
    m->hdr.data = m->id_header;
    m->hdr.next = w->headers;
    m->errbuf[0] = '\0';
    curl_easy_setopt(m->easy, CURLOPT_HTTPHEADER, &m->hdr);
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->len);
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(m->easy, CURLOPT_PRIVATE, (char *)m);
    curl_easy_setopt(m->easy, CURLOPT_ERRORBUFFER, m->errbuf);
    w->active[w->n_active++] = m;
    /* curl answers through the timer callback (timeout 0), so the result always comes from
     * the loop, later */
    rc = curl_multi_add_handle(w->multi, m->easy);
    if (rc != CURLM_OK) {
        char reason[160];
        snprintf(reason, sizeof(reason), "curl: %s", curl_multi_strerror(rc));
        active_remove(w, m);
        w->idle[w->n_idle++] = m->easy;
        m->easy = NULL;
        notify_sender_finish(s, m, NOTIFY_RETRY, reason);
    }
}

static int ready(struct notify_sender *s, const char **why)
{
    (void)s;
    (void)why;
    return 1;
}

/* ---- open and close -------------------------------------------------------------------- */

static int check_url(const char *url, char *msg, size_t msg_cap)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;

    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        snprintf(msg, msg_cap, "not a URL: %s", url);
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(msg, msg_cap, "a webhook needs an http:// or https:// URL: %s", url);
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int check_file(const char *what, const char *path, char *msg, size_t msg_cap)
{
    if (path == NULL || access(path, R_OK) == 0)
        return 0;
    snprintf(msg, msg_cap, "%s %s cannot be read", what, path);
    return -1;
}

static struct curl_slist *header_add(struct curl_slist *l, char *line)
{
    struct curl_slist *n = curl_slist_append(l, line);

    ASSERT(n != NULL);
    free(line);
    return n;
}

/* The fixed headers. "Expect:" turns off curl's 100-continue wait on larger bodies. */
static struct curl_slist *fixed_headers(const struct notify_target *t)
{
    struct curl_slist *l = NULL;

    l = header_add(l, xstrdup("Content-Type: application/json"));
    l = header_add(l, xstrdup("User-Agent: floodgate/" FG_VERSION));
    l = header_add(l, xstrdup("Expect:"));
    if (t->auth_token != NULL && t->auth_token[0] != '\0') {
        /* "tok" -> Bearer tok; "Scheme value" as given (MinIO's rule) */
        bool has_scheme = strpbrk(t->auth_token, " \t") != NULL;
        l = header_add(
            l, xasprintf("Authorization: %s%s", has_scheme ? "" : "Bearer ", t->auth_token));
    }
    return l;
}

static int open_webhook(struct notify_sender *s, char *msg, size_t msg_cap)
{
    const struct notify_target *t = &s->t;
    struct webhook *w;

    pthread_once(&curl_once, curl_init_once);
    if (check_url(t->endpoint, msg, msg_cap) != 0 ||
        check_file("ca_file", t->ca_file, msg, msg_cap) != 0 ||
        check_file("client_cert", t->client_cert, msg, msg_cap) != 0 ||
        check_file("client_key", t->client_key, msg, msg_cap) != 0)
        return -1;
    if (t->auth_token != NULL && strpbrk(t->auth_token, "\r\n") != NULL) {
        snprintf(msg, msg_cap, "auth_token holds a line break");
        return -1;
    }
    w = xcalloc(1, sizeof(*w));
    w->multi = curl_multi_init();
    ASSERT(w->multi != NULL);
    w->timer = evtimer_new(s->base, on_timeout, s);
    ASSERT(w->timer != NULL);
    w->headers = fixed_headers(t);
    w->idle = xcalloc(t->concurrency, sizeof(*w->idle));
    w->active = xcalloc(t->concurrency, sizeof(struct notify_send *));
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, s);
    /* keep a connection per slot alive between deliveries */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)t->concurrency);
    s->impl = w;
    return 0;
}

static void close_webhook(struct notify_sender *s)
{
    struct webhook *w = s->impl;

    while (w->n_active > 0) {
        struct notify_send *m = w->active[0];
        request_end(s, m, NOTIFY_RETRY, "shutting down");
    }
    for (size_t i = 0; i < w->n_idle; i++)
        curl_easy_cleanup(w->idle[i]);
    curl_multi_cleanup(w->multi);
    while (w->socks != NULL)
        sock_free(w, w->socks);
    event_free(w->timer);
    curl_slist_free_all(w->headers);
    free(w->idle);
    free(w->active);
    free(w);
    s->impl = NULL;
}

const struct notify_sender_ops notify_webhook_ops = {
    .open = open_webhook,
    .ready = ready,
    .start = start,
    .close = close_webhook,
};
