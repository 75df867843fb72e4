/* Services as workers read them (svc:{name} and the `services` set) and the config hash: kept
 * here and written again at every connect, so a Redis restart loses nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/xmalloc.h"
#include "queue/internal.h"

struct queue_svc {
    char *name;
    char *json; /* NULL in the unpublished list */
    struct queue_svc *next;
};

static void on_written(struct queue_conn *c, redisReply *reply, void *arg)
{
    struct queue *q = arg;
    (void)c;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_warn(&q->log, "redis: writing services or config: %.200s", reply->str);
    /* NULL: lost; everything is written again at the next connect */
}

static void send_publish(struct queue *q, const struct queue_svc *s)
{
    char key[QUEUE_KEY_MAX], set[QUEUE_KEY_MAX];
    queue_key(q, key, "svc:", s->name);
    queue_key(q, set, "services", NULL);
    queue_conn_cmdf(q->conn, on_written, q, "SET %s %s", key, s->json);
    queue_conn_cmdf(q->conn, on_written, q, "SADD %s %s", set, s->name);
}

static int send_unpublish(struct queue *q, const char *name)
{
    char key[QUEUE_KEY_MAX], set[QUEUE_KEY_MAX];
    queue_key(q, key, "svc:", name);
    queue_key(q, set, "services", NULL);
    if (queue_conn_cmdf(q->conn, on_written, q, "DEL %s", key) != 0)
        return -1;
    return queue_conn_cmdf(q->conn, on_written, q, "SREM %s %s", set, name);
}

static struct queue_svc *take(struct queue_svc **list, const char *name)
{
    for (struct queue_svc **p = list; *p != NULL; p = &(*p)->next) {
        if (strcmp((*p)->name, name) == 0) {
            struct queue_svc *s = *p;
            *p = s->next;
            s->next = NULL;
            return s;
        }
    }
    return NULL;
}

static void svc_free(struct queue_svc *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->json);
    free(s);
}

static void append(struct queue_svc **list, struct queue_svc *s)
{
    while (*list != NULL)
        list = &(*list)->next;
    *list = s;
}

void queue_publish_service(struct queue *q, const char *name, const char *json)
{
    if (q == NULL || q->freeing || name == NULL || json == NULL)
        return;
    svc_free(take(&q->unpublished, name));
    struct queue_svc *s = take(&q->services, name);
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->name = xstrdup(name);
    }
    free(s->json);
    s->json = xstrdup(json);
    append(&q->services, s);
    if (queue_conn_is_ready(q->conn))
        send_publish(q, s);
}

void queue_unpublish_service(struct queue *q, const char *name)
{
    if (q == NULL || q->freeing || name == NULL)
        return;
    svc_free(take(&q->services, name));
    if (queue_conn_is_ready(q->conn) && send_unpublish(q, name) == 0)
        return;
    /* Not connected: delete it at the next connect. */
    svc_free(take(&q->unpublished, name));
    struct queue_svc *s = xcalloc(1, sizeof(*s));
    s->name = xstrdup(name);
    append(&q->unpublished, s);
}

void queue_services_on_ready(struct queue *q)
{
    char key[QUEUE_KEY_MAX];
    char ttl[24], logmax[24], vis[24];
    snprintf(ttl, sizeof(ttl), "%u", q->cfg.job_ttl_s);
    snprintf(logmax, sizeof(logmax), "%" PRIu64, q->cfg.log_max_bytes);
    snprintf(vis, sizeof(vis), "%u", q->cfg.visibility_ms);
    queue_conn_cmdf(q->conn, on_written, q,
                    "HSET %s job_ttl_s %s log_max_bytes %s visibility_ms %s",
                    queue_key(q, key, "config", NULL), ttl, logmax, vis);
    while (q->unpublished != NULL) {
        struct queue_svc *s = q->unpublished;
        if (send_unpublish(q, s->name) != 0)
            break;
        q->unpublished = s->next;
        svc_free(s);
    }
    for (const struct queue_svc *s = q->services; s != NULL; s = s->next)
        send_publish(q, s);
}

void queue_services_free(struct queue *q)
{
    while (q->services != NULL) {
        struct queue_svc *s = q->services;
        q->services = s->next;
        svc_free(s);
    }
    while (q->unpublished != NULL) {
        struct queue_svc *s = q->unpublished;
        q->unpublished = s->next;
        svc_free(s);
    }
}

void queue_services_each(struct queue *q, queue_svc_each_cb *cb, void *arg)
{
    for (const struct queue_svc *s = q->services; s != NULL; s = s->next)
        cb(s->name, s->json, arg);
}
