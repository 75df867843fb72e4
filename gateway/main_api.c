/* The admin API (see main_api.h): routing, credentials, bodies, and the calls into notify's
 * registry and queue's jobs. */
#include "gateway/main_api.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "gateway/h1.h"
#include "gateway/log.h"
#include "gateway/span.h"
#include "gateway/xmalloc.h"
#include "notify/notify.h"
#include "queue/queue.h"
#include "s3api/s3api.h"

#define SERVICE_BODY_MAX (1u << 20)  /* a service definition, script included */
#define PAYLOAD_BODY_MAX (16u << 20) /* a job's payload */

static struct log_ctx api_log = {.module = "admin"};

struct fg_admin {
    struct fg_admin_deps deps;
};

enum route {
    R_NONE,
    R_HEALTH,
    R_INFO,
    R_SERVICES, /* /system/services */
    R_SERVICE,  /* /system/services/{name} */
    R_JOB,      /* /job/{service} */
    R_RUN,      /* /run/{service} */
    R_LOGS,     /* /system/logs/{service} */
    R_LOG,      /* /system/logs/{service}/{job} */
    R_METRICS,  /* /metrics */
    R_TARGETS,  /* /system/notifications */
    R_DLQ,      /* /system/notifications/{target}/dlq */
    R_REPLAY,   /* /system/notifications/{target}/dlq/replay */
};

struct areq {
    struct fg_admin *adm;
    struct h1_req *req;
    enum route route;
    char method[8];
    char name[80]; /* service */
    char job[80];
    bool record; /* ?record */
    char payload_sha[80];
    struct evbuffer *body;
    size_t body_max;
    bool too_big;
    bool aborted; /* the client went away while a queue call was pending */
    bool waiting; /* a queue call is pending */
};

/* ---- routing ---- */

static bool seg_ok(const char *s, size_t n)
{
    if (n == 0 || n >= 80)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/* Splits the path of `target` into at most MAX_SEGS segments; returns the count, -1 if more. */
#define MAX_SEGS 6

static int split_path(struct span target, struct span seg[MAX_SEGS], struct span *query)
{
    const char *p = target.ptr;
    size_t n = target.len;
    const char *q = memchr(p, '?', n);
    *query = q != NULL ? (struct span){q + 1, n - (size_t)(q + 1 - p)} : (struct span){"", 0};
    size_t plen = q != NULL ? (size_t)(q - p) : n;
    int count = 0;
    size_t i = 0;
    while (i < plen) {
        if (p[i] == '/') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < plen && p[i] != '/')
            i++;
        if (count == MAX_SEGS)
            return -1;
        seg[count++] = (struct span){p + start, i - start};
    }
    return count;
}

static bool seg_is(struct span s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static bool is_vhost(const struct fg_admin *adm, struct h1_req *req)
{
    const char *domain = adm->deps.domain;
    if (domain == NULL || domain[0] == '\0')
        return false;
    struct span host = h1_req_header(req, "host");
    if (host.ptr == NULL)
        return false;
    const char *colon = memchr(host.ptr, ':', host.len);
    size_t hl = colon != NULL ? (size_t)(colon - host.ptr) : host.len;
    size_t dl = strlen(domain);
    return hl > dl + 1 && host.ptr[hl - dl - 1] == '.' &&
           strncasecmp(host.ptr + hl - dl, domain, dl) == 0;
}

static enum route classify(struct span target, char *name, char *job, bool *record)
{
    struct span seg[MAX_SEGS], query;
    int n = split_path(target, seg, &query);
    name[0] = job[0] = '\0';
    *record = query.len > 0 && (seg_is(query, "record") || strncmp(query.ptr, "record=", 7) == 0 ||
                                strncmp(query.ptr, "record&", 7) == 0);
    if (n < 1)
        return R_NONE;
    if (n == 1 && seg_is(seg[0], "health"))
        return R_HEALTH;
    if (n == 1 && seg_is(seg[0], "metrics"))
        return R_METRICS;
    if ((seg_is(seg[0], "job") || seg_is(seg[0], "run")) && n == 2) {
        if (!seg_ok(seg[1].ptr, seg[1].len))
            return R_NONE;
        snprintf(name, 80, "%.*s", (int)seg[1].len, seg[1].ptr);
        return seg_is(seg[0], "job") ? R_JOB : R_RUN;
    }
    if (!seg_is(seg[0], "system") || n < 2)
        return R_NONE;
    if (seg_is(seg[1], "info") && n == 2)
        return R_INFO;
    if (seg_is(seg[1], "services")) {
        if (n == 2)
            return R_SERVICES;
        if (n == 3 && seg_ok(seg[2].ptr, seg[2].len)) {
            snprintf(name, 80, "%.*s", (int)seg[2].len, seg[2].ptr);
            return R_SERVICE;
        }
        return R_NONE;
    }
    if (seg_is(seg[1], "notifications")) {
        if (n == 2)
            return R_TARGETS;
        if (n >= 4 && seg_ok(seg[2].ptr, seg[2].len) && seg_is(seg[3], "dlq")) {
            snprintf(name, 80, "%.*s", (int)seg[2].len, seg[2].ptr);
            if (n == 4)
                return R_DLQ;
            if (n == 5 && seg_is(seg[4], "replay"))
                return R_REPLAY;
        }
        return R_NONE;
    }
    if (seg_is(seg[1], "logs") && n >= 3 && seg_ok(seg[2].ptr, seg[2].len)) {
        snprintf(name, 80, "%.*s", (int)seg[2].len, seg[2].ptr);
        if (n == 3)
            return R_LOGS;
        if (n == 4 && seg_ok(seg[3].ptr, seg[3].len)) {
            snprintf(job, 80, "%.*s", (int)seg[3].len, seg[3].ptr);
            return R_LOG;
        }
    }
    return R_NONE;
}

bool fg_admin_owns(const struct fg_admin *adm, struct h1_req *req)
{
    struct span t = h1_req_target(req);
    if (t.len == 0 || t.ptr[0] != '/' || is_vhost(adm, req))
        return false;
    struct span seg[MAX_SEGS], query;
    int n = split_path(t, seg, &query);
    if (n == 0)
        return false;
    if (n < 0) /* too deep for any route: still ours (404) when under /system */
        return t.len > 7 && memcmp(t.ptr, "/system/", 8) == 0;
    return (n == 1 && (seg_is(seg[0], "health") || seg_is(seg[0], "metrics"))) ||
           seg_is(seg[0], "system") || seg_is(seg[0], "job") || seg_is(seg[0], "run");
}

/* ---- responses ---- */

static void areq_free(struct areq *a)
{
    if (a->body != NULL)
        evbuffer_free(a->body);
    free(a);
}

static void send_body(struct areq *a, int status, const char *type, const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (body != NULL)
        evbuffer_add(b, body, len);
    h1_req_access(a->req)->status = status;
    h1_resp_send(a->req, status, type, b);
    evbuffer_free(b);
    areq_free(a);
}

static void send_json(struct areq *a, int status, const char *json)
{
    send_body(a, status, "application/json", json, json != NULL ? strlen(json) : 0);
}

static void send_error(struct areq *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_error(struct areq *a, int status, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "message", msg);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    send_json(a, status, s);
    free(s);
}

static void send_empty(struct areq *a, int status)
{
    send_body(a, status, NULL, NULL, 0);
}

/* ---- services ---- */

static void publish(struct fg_admin *adm, const char *name)
{
    if (adm->deps.queue == NULL)
        return;
    char *json = notify_registry_get_json(adm->deps.reg, name, true);
    if (json != NULL)
        queue_publish_service(adm->deps.queue, name, json);
    free(json);
}

static void put_service(struct areq *a, bool update)
{
    size_t len = evbuffer_get_length(a->body);
    const char *doc = (const char *)evbuffer_pullup(a->body, -1);
    struct notify_service *svc = xcalloc(1, sizeof(*svc));
    struct conf_error err;
    if (notify_service_parse(doc != NULL ? doc : "", len, svc, &err) != 0) {
        free(svc);
        if (err.line > 0)
            send_error(a, 400, "line %d: %s", err.line, err.msg);
        else
            send_error(a, 400, "%s", err.msg);
        return;
    }
    if (a->route == R_SERVICE && strcmp(a->name, svc->name) != 0) {
        send_error(a, 400, "the body names service '%s', the path '%s'", svc->name, a->name);
        notify_service_free(svc);
        free(svc);
        return;
    }
    char name[80];
    snprintf(name, sizeof(name), "%s", svc->name);
    enum notify_put_result r = notify_registry_put(a->adm->deps.reg, svc, update);
    free(svc); /* its fields were taken over */
    switch (r) {
    case NOTIFY_CREATED:
    case NOTIFY_UPDATED:
        publish(a->adm, name);
        log_info(&api_log, "service %s %s", name, r == NOTIFY_CREATED ? "created" : "updated");
        if (r == NOTIFY_CREATED) {
            char *json = notify_registry_get_json(a->adm->deps.reg, name, false);
            send_json(a, 201, json);
            free(json);
        } else {
            send_empty(a, 204);
        }
        return;
    case NOTIFY_EXISTS:
        send_error(a, 409, "service '%s' already exists", name);
        return;
    case NOTIFY_NOT_FOUND:
        send_error(a, 404, "service '%s' not found", name);
        return;
    case NOTIFY_READ_ONLY:
        send_error(a, 409, "service '%s' is defined in the config file", name);
        return;
    case NOTIFY_IO_ERROR:
        break;
    }
    send_error(a, 500, "cannot save the services");
}

static void delete_service(struct areq *a)
{
    enum notify_put_result r = notify_registry_delete(a->adm->deps.reg, a->name);
    if (r == NOTIFY_NOT_FOUND) {
        send_error(a, 404, "service '%s' not found", a->name);
    } else if (r == NOTIFY_READ_ONLY) {
        send_error(a, 409, "service '%s' is defined in the config file", a->name);
    } else if (r == NOTIFY_IO_ERROR) {
        send_error(a, 500, "cannot save the services");
    } else {
        if (a->adm->deps.queue != NULL)
            queue_unpublish_service(a->adm->deps.queue, a->name);
        log_info(&api_log, "service %s deleted", a->name);
        send_empty(a, 204);
    }
}

/* ---- queue calls ---- */

static void on_queue_reply(int status, const char *body, size_t len, void *arg)
{
    struct areq *a = arg;
    a->waiting = false;
    if (a->aborted) {
        areq_free(a);
        return;
    }
    if (status == 503 && body == NULL) {
        send_error(a, 503, "the job queue (Redis) is not available");
        return;
    }
    const char *type = "application/json";
    if ((a->route == R_LOG && !a->record) || (a->route == R_RUN && status == 200))
        type = "text/plain; charset=utf-8";
    if (status == 404 && body == NULL) {
        send_error(a, 404, "job not found");
        return;
    }
    send_body(a, status, body != NULL ? type : NULL, body, body != NULL ? len : 0);
}

static struct queue *need_queue(struct areq *a)
{
    if (a->adm->deps.queue == NULL)
        send_error(a, 503, "no Redis is configured (--redis)");
    return a->adm->deps.queue;
}

/* An event's key as S3 writes it (form encoding: '+' for space, %XX); NULL when it holds a
 * bad escape or a NUL byte. malloc'd. */
static char *form_decode(const char *in)
{
    char *out = xmalloc(strlen(in) + 1);
    size_t o = 0;
    for (const char *p = in; *p != '\0'; p++) {
        if (*p == '+') {
            out[o++] = ' ';
        } else if (*p == '%') {
            int hi = gw_hex_digit(p[1]), lo = hi < 0 ? -1 : gw_hex_digit(p[2]);
            if (lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

static void invoke(struct areq *a)
{
    char pool[64], rev[17];
    unsigned max_attempts = 1;
    if (!notify_registry_lookup(a->adm->deps.reg, a->name, pool, sizeof(pool), &max_attempts,
                                rev)) {
        send_error(a, 404, "service '%s' not found", a->name);
        return;
    }
    struct queue *q = need_queue(a);
    if (q == NULL)
        return;
    size_t len = evbuffer_get_length(a->body);
    const char *body = (const char *)evbuffer_pullup(a->body, -1);
    struct queue_job_spec spec = {
        .service = a->name,
        .pool = pool,
        .max_attempts = a->route == R_RUN ? 1 : max_attempts,
        .rev = rev,
    };
    /* A body that is an S3 event names the input object; anything else is the input. */
    json_t *ev = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *rec0 = json_array_get(json_object_get(ev, "Records"), 0);
    json_t *s3 = json_object_get(rec0, "s3");
    const char *bucket = json_string_value(json_object_get(json_object_get(s3, "bucket"), "name"));
    const char *key = json_string_value(json_object_get(json_object_get(s3, "object"), "key"));
    char *dkey = NULL;
    if (bucket != NULL && key != NULL) {
        /* event keys are URL-encoded ('+' for spaces) */
        dkey = form_decode(key);
        if (dkey == NULL) {
            json_decref(ev);
            send_error(a, 400, "the event's object key is not a valid URL-encoded key");
            return;
        }
        spec.bucket = bucket;
        spec.key = dkey;
    } else {
        spec.payload = body;
        spec.payload_len = len;
    }
    char *event_text = NULL;
    if (len > 0 && memchr(body, '\0', len) == NULL) {
        event_text = xmalloc(len + 1);
        memcpy(event_text, body, len);
        event_text[len] = '\0';
    }
    spec.event_json = event_text != NULL ? event_text : "";
    a->waiting = true;
    if (a->route == R_RUN)
        queue_job_run(q, &spec, on_queue_reply, a);
    else
        queue_job_submit(q, &spec, on_queue_reply, a);
    free(event_text);
    free(dkey);
    json_decref(ev);
}

static void service_known_or_404(struct areq *a, bool *ok)
{
    char pool[64], rev[17];
    unsigned ma;
    *ok = notify_registry_lookup(a->adm->deps.reg, a->name, pool, sizeof(pool), &ma, rev);
    if (!*ok)
        send_error(a, 404, "service '%s' not found", a->name);
}

static void on_info(int status, const char *body, size_t len, void *arg)
{
    struct areq *a = arg;
    a->waiting = false;
    if (a->aborted) {
        areq_free(a);
        return;
    }
    json_t *o = json_pack("{s:s,s:s,s:I}", "name", "floodgate", "version", FG_VERSION, "services",
                          (json_int_t)notify_registry_count(a->adm->deps.reg));
    struct queue_stats st = {0};
    if (a->adm->deps.queue != NULL)
        queue_get_stats(a->adm->deps.queue, &st);
    json_object_set_new(o, "redis",
                        json_string(!st.configured ? "not configured"
                                    : st.connected ? "connected"
                                                   : "disconnected"));
    json_object_set_new(o, "outbox", json_integer((json_int_t)s3_outbox_count(a->adm->deps.api)));
    if (status == 200 && body != NULL) {
        json_t *live = json_loadb(body, len, 0, NULL);
        if (json_is_object(live))
            json_object_update(o, live);
        json_decref(live);
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    send_json(a, 200, s);
    free(s);
}

#define MAX_TARGETS 256

static size_t target_stats(struct fg_admin *adm, struct queue_target_stats **out)
{
    *out = xcalloc(MAX_TARGETS, sizeof(**out));
    return adm->deps.queue != NULL ? queue_target_stats(adm->deps.queue, *out, MAX_TARGETS) : 0;
}

static json_t *targets_json(struct fg_admin *adm, bool full)
{
    struct queue_target_stats *st;
    size_t n = target_stats(adm, &st);
    json_t *o = json_object();
    size_t nt = notify_registry_n_targets(adm->deps.reg);
    for (size_t i = 0; i < nt; i++) {
        const struct notify_target *t = notify_registry_target_at(adm->deps.reg, i);
        const struct queue_target_stats *ts = NULL;
        for (size_t j = 0; j < n && ts == NULL; j++)
            if (strcmp(st[j].id, t->id) == 0)
                ts = &st[j];
        json_t *e = json_pack("{s:I,s:I,s:b}", "backlog", (json_int_t)(ts ? ts->backlog : 0), "dlq",
                              (json_int_t)(ts ? ts->dlq : 0), "up", ts ? ts->up : true);
        if (full) {
            char arn[160];
            snprintf(arn, sizeof(arn), "arn:floodgate:sqs::%s:%s", t->id, t->type);
            json_object_set_new(e, "type", json_string(t->type));
            json_object_set_new(e, "arn", json_string(arn));
            json_object_set_new(e, "endpoint", json_string(t->endpoint));
            json_object_set_new(e, "delivered", json_integer((json_int_t)(ts ? ts->delivered : 0)));
            json_object_set_new(e, "retried", json_integer((json_int_t)(ts ? ts->retried : 0)));
            json_object_set_new(e, "dead_lettered",
                                json_integer((json_int_t)(ts ? ts->dead_lettered : 0)));
            json_object_set_new(e, "in_flight", json_integer((json_int_t)(ts ? ts->in_flight : 0)));
        }
        json_object_set_new(o, t->id, e);
    }
    free(st);
    return o;
}

static void health(struct areq *a)
{
    struct queue_stats st = {0};
    if (a->adm->deps.queue != NULL)
        queue_get_stats(a->adm->deps.queue, &st);
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:I}", "status", st.configured && !st.connected ? "degraded" : "ok",
                  "store", "ok", "redis",
                  !st.configured ? "not configured"
                  : st.connected ? "connected"
                                 : "disconnected",
                  "outbox", (json_int_t)s3_outbox_count(a->adm->deps.api));
    json_object_set_new(o, "targets", targets_json(a->adm, false));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    send_json(a, 200, s);
    free(s);
}

/* GET /metrics: Prometheus text format. */
static void metric(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics(struct areq *a)
{
    struct fg_admin *adm = a->adm;
    struct queue_stats qs = {0};
    if (adm->deps.queue != NULL)
        queue_get_stats(adm->deps.queue, &qs);
    struct evbuffer *b = evbuffer_new();
    metric(b, "floodgate_outbox_records", "gauge",
           "Records in the outbox that have not reached Redis yet.");
    evbuffer_add_printf(b, "floodgate_outbox_records %llu\n",
                        (unsigned long long)s3_outbox_count(adm->deps.api));
    metric(b, "floodgate_redis_up", "gauge", "1 when the relay's Redis connection is up.");
    evbuffer_add_printf(b, "floodgate_redis_up %d\n", qs.connected ? 1 : 0);
    metric(b, "floodgate_relayed_total", "counter", "Outbox records moved to Redis.");
    evbuffer_add_printf(b, "floodgate_relayed_total %llu\n", (unsigned long long)qs.relayed);
    metric(b, "floodgate_services", "gauge", "Services defined.");
    evbuffer_add_printf(b, "floodgate_services %zu\n", notify_registry_count(adm->deps.reg));

    struct queue_target_stats *st;
    size_t n = target_stats(adm, &st);
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } per[] = {
        {"floodgate_notification_backlog", "gauge",
         "Messages waiting for delivery (stream and retries due later).",
         offsetof(struct queue_target_stats, backlog)},
        {"floodgate_notification_delivered_total", "counter", "Messages delivered.",
         offsetof(struct queue_target_stats, delivered)},
        {"floodgate_notification_retried_total", "counter", "Deliveries that will be retried.",
         offsetof(struct queue_target_stats, retried)},
        {"floodgate_notification_dead_lettered_total", "counter",
         "Messages moved to the dead-letter stream.",
         offsetof(struct queue_target_stats, dead_lettered)},
        {"floodgate_notification_dlq", "gauge", "Messages in the dead-letter stream.",
         offsetof(struct queue_target_stats, dlq)},
        {"floodgate_notification_in_flight", "gauge", "Deliveries in flight.",
         offsetof(struct queue_target_stats, in_flight)},
    };
    for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
        metric(b, per[k].name, per[k].type, per[k].help);
        for (size_t i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, (const char *)&st[i] + per[k].off, sizeof(v));
            evbuffer_add_printf(b, "%s{target=\"%s\"} %llu\n", per[k].name, st[i].id,
                                (unsigned long long)v);
        }
    }
    metric(b, "floodgate_notification_target_up", "gauge",
           "0 while the target cannot be reached (its messages are held, one probe at a time).");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b, "floodgate_notification_target_up{target=\"%s\"} %d\n", st[i].id,
                            st[i].up ? 1 : 0);
    metric(b, "floodgate_notification_probes_total", "counter",
           "Probes sent to a target that could not be reached.");
    for (size_t i = 0; i < n; i++)
        evbuffer_add_printf(b, "floodgate_notification_probes_total{target=\"%s\"} %llu\n",
                            st[i].id, (unsigned long long)st[i].probes);
    static const unsigned bounds[] = QUEUE_LATENCY_BOUNDS_MS;
    metric(b, "floodgate_notification_delivery_seconds", "histogram",
           "Time from the commit of an event to its delivery.");
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof(bounds) / sizeof(bounds[0]); j++)
            evbuffer_add_printf(b,
                                "floodgate_notification_delivery_seconds_bucket{target=\"%s\","
                                "le=\"%g\"} %llu\n",
                                st[i].id, bounds[j] / 1000.0,
                                (unsigned long long)st[i].latency_le[j]);
        evbuffer_add_printf(b,
                            "floodgate_notification_delivery_seconds_bucket{target=\"%s\","
                            "le=\"+Inf\"} %llu\n",
                            st[i].id, (unsigned long long)st[i].latency_count);
        evbuffer_add_printf(b, "floodgate_notification_delivery_seconds_sum{target=\"%s\"} %.6f\n",
                            st[i].id, st[i].latency_sum_s);
        evbuffer_add_printf(b,
                            "floodgate_notification_delivery_seconds_count{target=\"%s\"} %llu\n",
                            st[i].id, (unsigned long long)st[i].latency_count);
    }
    free(st);
    h1_req_access(a->req)->status = 200;
    h1_resp_send(a->req, 200, "text/plain; version=0.0.4", b);
    evbuffer_free(b);
    areq_free(a);
}

static void targets_list(struct areq *a)
{
    json_t *o = targets_json(a->adm, true);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    send_json(a, 200, s);
    free(s);
}

/* ---- dispatch ---- */

static bool method_is(const struct areq *a, const char *m)
{
    return strcmp(a->method, m) == 0;
}

static void serve(struct areq *a)
{
    struct fg_admin *adm = a->adm;
    bool ok;
    switch (a->route) {
    case R_NONE:
        send_error(a, 404, "no such resource");
        return;
    case R_HEALTH:
        if (!method_is(a, "GET") && !method_is(a, "HEAD"))
            break;
        health(a);
        return;
    case R_METRICS:
        if (!method_is(a, "GET"))
            break;
        metrics(a);
        return;
    case R_TARGETS:
        if (!method_is(a, "GET"))
            break;
        targets_list(a);
        return;
    case R_DLQ:
    case R_REPLAY:
        if (!method_is(a, a->route == R_DLQ ? "GET" : "POST"))
            break;
        if (notify_registry_target(adm->deps.reg, a->name) == NULL) {
            send_error(a, 404, "target '%s' not found", a->name);
            return;
        }
        if (need_queue(a) == NULL)
            return;
        a->waiting = true;
        if (a->route == R_DLQ)
            queue_target_dlq_list(adm->deps.queue, a->name, on_queue_reply, a);
        else
            queue_target_dlq_replay(adm->deps.queue, a->name, on_queue_reply, a);
        return;
    case R_INFO:
        if (!method_is(a, "GET"))
            break;
        if (adm->deps.queue == NULL) {
            on_info(503, NULL, 0, a);
            return;
        }
        a->waiting = true;
        queue_info(adm->deps.queue, on_info, a);
        return;
    case R_SERVICES:
        if (method_is(a, "GET")) {
            char *json = notify_registry_list_json(adm->deps.reg, false);
            send_json(a, 200, json);
            free(json);
            return;
        }
        if (method_is(a, "POST") || method_is(a, "PUT")) {
            put_service(a, method_is(a, "PUT"));
            return;
        }
        break;
    case R_SERVICE:
        if (method_is(a, "GET")) {
            char *json = notify_registry_get_json(adm->deps.reg, a->name, false);
            if (json == NULL)
                send_error(a, 404, "service '%s' not found", a->name);
            else
                send_json(a, 200, json);
            free(json);
            return;
        }
        if (method_is(a, "PUT")) {
            put_service(a, true);
            return;
        }
        if (method_is(a, "DELETE")) {
            delete_service(a);
            return;
        }
        break;
    case R_JOB:
    case R_RUN:
        if (!method_is(a, "POST"))
            break;
        invoke(a);
        return;
    case R_LOGS:
    case R_LOG:
        if (!method_is(a, "GET") && !method_is(a, "DELETE"))
            break;
        service_known_or_404(a, &ok);
        if (!ok || need_queue(a) == NULL)
            return;
        a->waiting = true;
        if (method_is(a, "DELETE"))
            queue_job_delete(adm->deps.queue, a->name, a->route == R_LOG ? a->job : NULL,
                             on_queue_reply, a);
        else if (a->route == R_LOGS)
            queue_jobs_list(adm->deps.queue, a->name, on_queue_reply, a);
        else if (a->record)
            queue_job_get(adm->deps.queue, a->name, a->job, on_queue_reply, a);
        else
            queue_job_log(adm->deps.queue, a->name, a->job, on_queue_reply, a);
        return;
    }
    h1_resp_header(a->req, "Allow", "GET, POST, PUT, DELETE");
    send_error(a, 405, "method %s not allowed here", a->method);
}

static bool body_hash_ok(struct areq *a)
{
    const char *want = a->payload_sha;
    if (want[0] == '\0' || strncmp(want, "UNSIGNED-PAYLOAD", 16) == 0 ||
        strncmp(want, "STREAMING-", 10) == 0)
        return true;
    unsigned char md[32];
    unsigned len = 0;
    size_t n = evbuffer_get_length(a->body);
    EVP_Digest(evbuffer_pullup(a->body, -1), n, md, &len, EVP_sha256(), NULL);
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return strncasecmp(hex, want, 64) == 0;
}

static void on_request(struct h1_req *req, void *arg)
{
    struct fg_admin *adm = arg;
    struct areq *a = xcalloc(1, sizeof(*a));
    a->adm = adm;
    a->req = req;
    a->body = evbuffer_new();
    struct span m = h1_req_method(req);
    snprintf(a->method, sizeof(a->method), "%.*s", (int)m.len, m.ptr);
    a->route = classify(h1_req_target(req), a->name, a->job, &a->record);
    a->body_max = a->route == R_JOB || a->route == R_RUN ? PAYLOAD_BODY_MAX : SERVICE_BODY_MAX;
    h1_req_set_data(req, a);
    struct log_access *acc = h1_req_access(req);
    snprintf(acc->op, sizeof(acc->op), "admin");
    snprintf(acc->key, sizeof(acc->key), "%.*s", (int)h1_req_target(req).len,
             h1_req_target(req).ptr);

    if (a->route != R_HEALTH && a->route != R_METRICS && a->route != R_NONE) {
        char msg[200];
        if (!s3_api_authorize(adm->deps.api, req, acc->user, sizeof(acc->user), a->payload_sha,
                              sizeof(a->payload_sha), msg, sizeof(msg))) {
            h1_resp_header(req, "WWW-Authenticate", "Basic realm=\"floodgate\"");
            send_error(a, 401, "%s", msg);
            return;
        }
    }
    int64_t cl = h1_req_content_length(req);
    if (cl > 0 && (uint64_t)cl > a->body_max) {
        send_error(a, 413, "the body is larger than %zu bytes", a->body_max);
        return;
    }
    if (h1_req_has_body(req)) {
        h1_req_read_body(req);
        return;
    }
    serve(a);
}

static void on_body(struct h1_req *req, struct evbuffer *data, void *arg)
{
    (void)arg;
    struct areq *a = h1_req_data(req);
    size_t n = evbuffer_get_length(data);
    if (a->too_big || evbuffer_get_length(a->body) + n > a->body_max) {
        a->too_big = true;
        evbuffer_drain(data, n);
        return;
    }
    evbuffer_add_buffer(a->body, data);
}

static void on_body_end(struct h1_req *req, void *arg)
{
    (void)arg;
    struct areq *a = h1_req_data(req);
    if (a->too_big) {
        send_error(a, 413, "the body is larger than %zu bytes", a->body_max);
        return;
    }
    if (!body_hash_ok(a)) {
        send_error(a, 400, "the body does not match x-amz-content-sha256");
        return;
    }
    serve(a);
}

static void on_abort(struct h1_req *req, void *arg)
{
    (void)arg;
    struct areq *a = h1_req_data(req);
    if (a == NULL)
        return;
    if (a->waiting)
        a->aborted = true;
    else
        areq_free(a);
}

struct fg_admin *fg_admin_new(const struct fg_admin_deps *deps)
{
    struct fg_admin *adm = xcalloc(1, sizeof(*adm));
    adm->deps = *deps;
    return adm;
}

void fg_admin_free(struct fg_admin *adm)
{
    free(adm);
}

void fg_admin_handler(struct fg_admin *adm, struct h1_handler *out)
{
    memset(out, 0, sizeof(*out));
    out->on_request = on_request;
    out->on_body = on_body;
    out->on_body_end = on_body_end;
    out->on_abort = on_abort;
    out->arg = adm;
}
