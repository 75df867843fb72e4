/* notify: the part of a sender that does not depend on the transport: the copy of the
 * target, the FIFO of sends waiting for one of `concurrency` slots, and the done callbacks,
 * which always run from a deferred event (never before notify_sender_send() returned, never
 * inside a libcurl or hiredis callback). The transports are webhook.c and redis_target.c. */
#include "notify/sender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"
#include "notify/internal.h"
#include "notify/notify.h"

int64_t notify_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- lists ----------------------------------------------------------------------------- */

static void list_push(struct notify_send_list *l, struct notify_send *m)
{
    m->next = NULL;
    if (l->tail != NULL)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
    l->n++;
}

static struct notify_send *list_pop(struct notify_send_list *l)
{
    struct notify_send *m = l->head;

    if (m == NULL)
        return NULL;
    l->head = m->next;
    if (l->head == NULL)
        l->tail = NULL;
    l->n--;
    m->next = NULL;
    return m;
}

static void send_free(struct notify_send *m)
{
    free(m->body);
    free(m->id_header);
    free(m);
}

static void set_result(struct notify_send *m, enum notify_send_result res, const char *reason)
{
    m->res = res;
    snprintf(m->reason, sizeof(m->reason), "%s", reason != NULL ? reason : "");
}

/* ---- the deferred event ---------------------------------------------------------------- */

static void run_finished(struct notify_sender *s)
{
    struct notify_send *m;

    while ((m = list_pop(&s->finished)) != NULL) {
        m->done(m->arg, m->res, m->reason);
        send_free(m);
    }
}

static void start_pending(struct notify_sender *s)
{
    while (!s->closing && s->pending.n > 0 && s->n_inflight < s->t.concurrency) {
        const char *why = NULL;
        int ready = s->ops->ready(s, &why);

        if (ready == 0)
            return; /* connecting: they wait */
        if (ready < 0) {
            notify_sender_fail_pending(s, NOTIFY_UNREACHABLE, why);
            return;
        }
        s->n_inflight++;
        s->ops->start(s, list_pop(&s->pending));
    }
}

static void really_free(struct notify_sender *s);

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct notify_sender *s = arg;

    (void)fd;
    (void)what;
    s->depth++;
    run_finished(s);
    start_pending(s);
    run_finished(s); /* sends a transport refused at once */
    s->depth--;
    if (s->closing) /* a done callback freed the sender */
        really_free(s);
}

void notify_sender_kick(struct notify_sender *s)
{
    if (!s->closing)
        event_active(s->deferred, EV_TIMEOUT, 0);
}

void notify_sender_finish(struct notify_sender *s, struct notify_send *m,
                          enum notify_send_result res, const char *reason)
{
    ASSERT(s->n_inflight > 0);
    s->n_inflight--;
    set_result(m, res, reason);
    list_push(&s->finished, m);
    notify_sender_kick(s);
}

void notify_sender_fail_pending(struct notify_sender *s, enum notify_send_result res,
                                const char *reason)
{
    struct notify_send *m;

    while ((m = list_pop(&s->pending)) != NULL) {
        set_result(m, res, reason);
        list_push(&s->finished, m);
    }
    notify_sender_kick(s);
}

/* ---- the API --------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static void target_copy(struct notify_target *to, const struct notify_target *from)
{
    *to = *from;
    to->id = dup_or_null(from->id);
    to->type = dup_or_null(from->type);
    to->endpoint = dup_or_null(from->endpoint);
    to->ca_file = dup_or_null(from->ca_file);
    to->client_cert = dup_or_null(from->client_cert);
    to->client_key = dup_or_null(from->client_key);
    to->auth_token = dup_or_null(from->auth_token);
    to->key = dup_or_null(from->key != NULL ? from->key : "floodgate-events");
    to->format = dup_or_null(from->format != NULL ? from->format : "stream");
    if (to->concurrency == 0)
        to->concurrency = 16;
    if (to->timeout_ms == 0)
        to->timeout_ms = 10000;
}

static void target_free_copy(struct notify_target *t)
{
    free(t->id);
    free(t->type);
    free(t->endpoint);
    free(t->ca_file);
    free(t->client_cert);
    free(t->client_key);
    free(t->auth_token);
    free(t->key);
    free(t->format);
}

struct notify_sender *notify_sender_new(struct event_base *base, const struct notify_target *t,
                                        char *msg, size_t msg_cap)
{
    struct notify_sender *s;

    if (notify_target_check(t, msg, msg_cap) != 0)
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->base = base;
    target_copy(&s->t, t);
    s->ops = strcmp(t->type, "redis") == 0 ? &notify_redis_ops : &notify_webhook_ops;
    s->deferred = event_new(base, -1, 0, on_deferred, s);
    ASSERT(s->deferred != NULL);
    if (s->ops->open(s, msg, msg_cap) != 0) {
        event_free(s->deferred);
        target_free_copy(&s->t);
        free(s);
        return NULL;
    }
    return s;
}

void notify_sender_send(struct notify_sender *s, const char *event_id, const char *body, size_t len,
                        notify_sent_fn *done, void *arg)
{
    struct notify_send *m = xcalloc(1, sizeof(*m));

    m->s = s;
    m->body = xmalloc(len + 1);
    memcpy(m->body, body, len);
    m->body[len] = '\0';
    m->len = len;
    m->done = done;
    m->arg = arg;
    m->id_header = xasprintf("x-floodgate-event-id: %s", event_id != NULL ? event_id : "");
    if (s->closing) { /* from a done callback during notify_sender_free(): ended there */
        set_result(m, NOTIFY_RETRY, "shutting down");
        list_push(&s->finished, m);
        return;
    }
    list_push(&s->pending, m);
    notify_sender_kick(s);
}

/* Ends everything with "shutting down" and frees. Done callbacks may call send (ended here
 * too, after that send returned) or free (ignored: closing is set). */
static void really_free(struct notify_sender *s)
{
    s->depth++;
    s->ops->close(s);
    notify_sender_fail_pending(s, NOTIFY_RETRY, "shutting down");
    while (s->finished.n > 0 || s->pending.n > 0) {
        notify_sender_fail_pending(s, NOTIFY_RETRY, "shutting down");
        run_finished(s);
    }
    event_free(s->deferred);
    target_free_copy(&s->t);
    free(s);
}

void notify_sender_free(struct notify_sender *s)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    if (s->depth > 0)
        return; /* inside a done callback: on_deferred frees once they returned */
    really_free(s);
}
