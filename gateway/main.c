/* floodgate: the gateway daemon. Reads the settings, opens the logs and the store, serves S3
 * on the HTTP layer, and handles signals: SIGTERM/SIGINT drain gracefully, SIGHUP reopens the
 * logs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/h1.h"
#include "gateway/log.h"
#include "gateway/main_api.h"
#include "gateway/main_settings.h"
#include "gateway/xmalloc.h"
#include "notify/notify.h"
#include "queue/queue.h"
#include "s3api/s3api.h"

static struct log_ctx main_log = {.module = "main"};

struct daemon {
    struct event_base *base;
    struct h1_server *srv;
    struct s3_api *api;
    struct notify_registry *reg;
    struct notify_hook hook;
    struct queue *queue;
    struct fg_admin *admin;
    struct notify_sender **senders; /* one per target, in the registry's order */
    size_t n_senders;
    struct h1_handler s3_handler;
    struct h1_handler admin_handler;
    struct event *sig_term;
    struct event *sig_int;
    struct event *sig_hup;
    struct event *drain_timer;
    bool draining;
};

static void on_drained(void *arg)
{
    struct daemon *d = arg;
    log_info(&main_log, "drained; exiting");
    event_base_loopexit(d->base, NULL);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    log_warn(&main_log, "drain timed out with %u connections open; exiting",
             h1_server_n_conns(d->srv));
    event_base_loopexit(d->base, NULL);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;
    if (d->draining) {
        log_info(&main_log, "second signal %d: exiting now", (int)sig);
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->draining = true;
    log_info(&main_log, "signal %d: draining %u connections", (int)sig, h1_server_n_conns(d->srv));
    struct timeval tv = {30, 0};
    d->drain_timer = evtimer_new(d->base, on_drain_timeout, d);
    evtimer_add(d->drain_timer, &tv);
    h1_server_drain(d->srv, on_drained, d);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    if (log_reopen() != 0)
        log_error(&main_log, "reopening logs failed: %m");
    else
        log_info(&main_log, "logs reopened");
}

/* ---- one port, two front ends: the admin API's paths, and S3 for everything else ---- */

static const struct h1_handler *pick(struct daemon *d, struct h1_req *req)
{
    return fg_admin_owns(d->admin, req) ? &d->admin_handler : &d->s3_handler;
}

static void on_request(struct h1_req *req, void *arg)
{
    const struct h1_handler *h = pick(arg, req);
    h->on_request(req, h->arg);
}

static void on_body(struct h1_req *req, struct evbuffer *data, void *arg)
{
    const struct h1_handler *h = pick(arg, req);
    h->on_body(req, data, h->arg);
}

static void on_body_end(struct h1_req *req, void *arg)
{
    const struct h1_handler *h = pick(arg, req);
    h->on_body_end(req, h->arg);
}

static void on_abort(struct h1_req *req, void *arg)
{
    const struct h1_handler *h = pick(arg, req);
    h->on_abort(req, h->arg);
}

static const char *on_error_body(int status, const char *request_id, struct evbuffer *out,
                                 void *arg)
{
    struct daemon *d = arg;
    return d->s3_handler.error_body(status, request_id, out, d->s3_handler.arg);
}

/* ---- the relay's view of the store's outbox ---- */

struct outbox_read {
    queue_outbox_read_cb *cb;
    void *cb_arg;
};

static void on_outbox_read(int err, const struct s3_outbox_rec *recs, size_t n, void *arg)
{
    struct outbox_read *r = arg;
    struct queue_outbox_rec *out = xcalloc(n > 0 ? n : 1, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        out[i] = (struct queue_outbox_rec){recs[i].id, recs[i].data, recs[i].len};
    r->cb(err, out, n, r->cb_arg);
    free(out);
    free(r);
}

static void outbox_read(void *arg, uint64_t after_id, size_t max_n, size_t max_bytes,
                        queue_outbox_read_cb *cb, void *cb_arg)
{
    struct outbox_read *r = xcalloc(1, sizeof(*r));
    r->cb = cb;
    r->cb_arg = cb_arg;
    s3_outbox_read(arg, after_id, max_n, max_bytes, on_outbox_read, r);
}

static void outbox_remove(void *arg, const uint64_t *ids, size_t n)
{
    s3_outbox_remove(arg, ids, n, NULL, NULL);
}

static uint64_t outbox_count(void *arg)
{
    return s3_outbox_count(arg);
}

static void on_outbox(void *arg)
{
    queue_kick(arg);
}

static void publish_one(const struct notify_service *svc, void *arg)
{
    struct daemon *d = arg;
    char *json = notify_registry_get_json(d->reg, svc->name, true);
    if (json != NULL)
        queue_publish_service(d->queue, svc->name, json);
    free(json);
}

/* ---- bucket notification deliveries: queue's push targets through notify's senders ---- */

struct send_ctx {
    queue_send_done_fn *done;
    void *done_arg;
};

static void on_sent(void *arg, enum notify_send_result res, const char *reason)
{
    struct send_ctx *c = arg;
    enum queue_send_result r = QUEUE_FAIL;
    switch (res) {
    case NOTIFY_SENT:
        r = QUEUE_SENT;
        break;
    case NOTIFY_RETRY:
        r = QUEUE_RETRY;
        break;
    case NOTIFY_UNREACHABLE: /* the queue holds the target's messages back and probes */
        r = QUEUE_UNREACHABLE;
        break;
    case NOTIFY_FAIL:
        r = QUEUE_FAIL;
        break;
    }
    queue_send_done_fn *done = c->done;
    void *done_arg = c->done_arg;
    free(c);
    done(done_arg, r, reason);
}

static void send_to_target(void *arg, const char *event_id, const char *body, size_t len,
                           queue_send_done_fn *done, void *done_arg)
{
    struct send_ctx *c = xmalloc(sizeof(*c));
    c->done = done;
    c->done_arg = done_arg;
    notify_sender_send(arg, event_id, body, len, on_sent, c);
}

static int wire_targets(struct daemon *d)
{
    size_t n = notify_registry_n_targets(d->reg);
    d->senders = xcalloc(n > 0 ? n : 1, sizeof(*d->senders));
    for (size_t i = 0; i < n; i++) {
        const struct notify_target *t = notify_registry_target_at(d->reg, i);
        char msg[256] = "";
        d->senders[i] = notify_sender_new(d->base, t, msg, sizeof(msg));
        if (d->senders[i] == NULL) {
            log_error(&main_log, "target %s: %s", t->id, msg);
            return -1;
        }
        d->n_senders = i + 1;
        struct queue_target_policy policy = {
            .concurrency = t->concurrency,
            .max_attempts = t->max_attempts,
            .max_age_s = t->max_age_s,
        };
        queue_add_target(d->queue, t->id, &policy, send_to_target, d->senders[i]);
        log_info(&main_log, "target %s: %s %s", t->id, t->type, t->endpoint);
    }
    return 0;
}

/* Services, the event hook, the relay and the admin API. 0 or -1 (logged). */
static int wire_functions(struct daemon *d, struct fg_settings *s)
{
    char msg[256] = "";
    size_t plen = strlen(s->s3.data_dir) + 32;
    char *state = xmalloc(plen);
    snprintf(state, plen, "%s/services.json", s->s3.data_dir);
    d->reg = notify_registry_new(state, msg, sizeof(msg));
    free(state);
    if (d->reg == NULL) {
        log_error(&main_log, "cannot load the services: %s", msg);
        return -1;
    }
    int rc = notify_registry_add_config(d->reg, s->services, s->n_services, msg, sizeof(msg));
    s->services = NULL;
    s->n_services = 0;
    if (rc != 0) {
        log_error(&main_log, "services: %s", msg);
        return -1;
    }
    rc = notify_registry_set_targets(d->reg, s->targets, s->n_targets, msg, sizeof(msg));
    s->targets = NULL;
    s->n_targets = 0;
    if (rc != 0) {
        log_error(&main_log, "targets: %s", msg);
        return -1;
    }
    s3_api_set_arn_check(d->api, notify_arn_known, d->reg);
    d->hook = (struct notify_hook){.reg = d->reg, .region = s->s3.region};
    s3_api_set_event_hook(d->api, notify_event_hook, &d->hook);
    s3_api_set_outbox_map(d->api, notify_outbox_map, &d->hook);
    if (s->jobs.redis_url != NULL) {
        struct queue_outbox ob = {
            .read = outbox_read,
            .remove = outbox_remove,
            .count = outbox_count,
            .arg = d->api,
        };
        s3_outbox_identity(d->api, ob.source, &ob.first_id);
        d->queue = queue_new(d->base, &s->jobs, &ob, msg, sizeof(msg));
        if (d->queue == NULL) {
            log_error(&main_log, "redis: %s", msg);
            return -1;
        }
        s3_api_on_outbox(d->api, on_outbox, d->queue);
        queue_set_record_map(d->queue, notify_record_expand, &d->hook);
        notify_registry_each(d->reg, publish_one, d);
        if (wire_targets(d) != 0)
            return -1;
        queue_kick(d->queue);
    } else {
        log_warn(&main_log, "no Redis configured (--redis): events wait in the outbox");
        if (notify_registry_n_targets(d->reg) > 0)
            log_warn(&main_log, "notification targets need Redis: nothing is delivered");
    }
    struct fg_admin_deps deps = {
        .api = d->api,
        .reg = d->reg,
        .queue = d->queue,
        .region = s->s3.region,
        .domain = s->s3.domain,
    };
    d->admin = fg_admin_new(&deps);
    fg_admin_handler(d->admin, &d->admin_handler);
    log_info(&main_log, "%zu services", notify_registry_count(d->reg));
    return 0;
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f);
}

int main(int argc, char **argv)
{
    struct fg_settings s;
    int code = 0;
    if (fg_settings_load(&s, argc, argv, &code) != 0)
        return code;

    enum log_level lvl = LOG_INFO;
    if (s.log_level != NULL)
        log_level_parse(s.log_level, &lvl);
    log_level_now = lvl;
    if (log_open(s.error_log, s.access_log) != 0) {
        fprintf(stderr, "floodgate: cannot open logs: %m\n");
        fg_settings_cleanup(&s);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();

    struct daemon d = {0};
    d.base = event_base_new();
    char err[256] = "";
    d.api = s3_api_new(d.base, &s.s3, err, sizeof(err));
    if (d.api == NULL) {
        log_error(&main_log, "cannot open the store in %s: %s", s.s3.data_dir, err);
        code = 1;
        goto out;
    }
    if (wire_functions(&d, &s) != 0) {
        code = 1;
        goto out;
    }
    s3_api_handler(d.api, &d.s3_handler);
    struct h1_handler handler = {
        .on_request = on_request,
        .on_body = on_body,
        .on_body_end = on_body_end,
        .on_abort = on_abort,
        .error_body = d.s3_handler.error_body != NULL ? on_error_body : NULL,
        .arg = &d,
    };
    d.srv = h1_server_new(d.base, &s.limits, &handler);
    if (h1_server_listen(d.srv, s.listen) != 0) {
        code = 1;
        goto out;
    }
    if (s.pid_file != NULL && write_pid_file(s.pid_file) != 0)
        log_warn(&main_log, "cannot write pid file %s: %m", s.pid_file);
    d.sig_term = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
    d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    event_add(d.sig_term, NULL);
    event_add(d.sig_int, NULL);
    event_add(d.sig_hup, NULL);
    log_info(&main_log, "floodgate %s listening on %s (data in %s, region %s)", FG_VERSION,
             s.listen, s.s3.data_dir, s.s3.region);
    event_base_dispatch(d.base);
    log_info(&main_log, "stopped");

out:
    h1_server_free(d.srv);
    fg_admin_free(d.admin);
    /* the store first: closing it finishes the relay's outbox reads, which call the queue */
    s3_api_free(d.api);
    /* senders before the queue: freeing one answers its sends in flight (retry later), which
     * the queue records while it still exists */
    for (size_t i = 0; i < d.n_senders; i++)
        notify_sender_free(d.senders[i]);
    free(d.senders);
    if (d.queue != NULL)
        queue_free(d.queue);
    if (d.reg != NULL)
        notify_registry_free(d.reg);
    if (d.sig_term != NULL) {
        event_free(d.sig_term);
        event_free(d.sig_int);
        event_free(d.sig_hup);
    }
    if (d.drain_timer != NULL)
        event_free(d.drain_timer);
    event_base_free(d.base);
    fg_settings_cleanup(&s);
    log_close();
    return code;
}
