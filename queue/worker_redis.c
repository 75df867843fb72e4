/* floodgate-worker's Redis connections: synchronous hiredis that reconnects by itself with
 * capped backoff, and the EVALSHA/EVAL calls of keys.h's scripts. What the commands mean is
 * worker_claim.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "gateway/xmalloc.h"
#include "queue/keys.h"
#include "queue/worker.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* XREADGROUP blocks for 1 s; a reply slower than this means the connection is gone. */
#define COMMAND_TIMEOUT_S 15

void worker_redis_init(struct worker_redis *r, struct worker *w, const char *name, bool loud)
{
    memset(r, 0, sizeof(*r));
    r->w = w;
    r->name = name;
    r->loud = loud;
    r->was_up = true; /* so the first failure is logged */
}

static void drop(struct worker_redis *r, const char *reason)
{
    char why[160]; /* `reason` may live in the context freed here */
    snprintf(why, sizeof(why), "%s", reason);
    if (r->c != NULL) {
        redisFree(r->c);
        r->c = NULL;
    }
    if (r->was_up) {
        if (r->loud)
            log_warn(&worker_log, "%s: Redis unavailable (%s); retrying", r->name, why);
        else
            log_debug(&worker_log, "%s: Redis unavailable (%s)", r->name, why);
        r->was_up = false;
    }
    r->backoff_ms = r->backoff_ms == 0 ? BACKOFF_MIN_MS : r->backoff_ms * 2;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    r->next_try_ms = worker_now_ms() + r->backoff_ms;
}

void worker_redis_cleanup(struct worker_redis *r)
{
    if (r->c != NULL)
        redisFree(r->c);
    r->c = NULL;
}

char *worker_key(const struct worker *w, char *buf, size_t cap, const char *kind, const char *name)
{
    return qk_key(buf, cap, w->cfg.prefix, kind, name);
}

/* A command during the handshake: false (and the connection dropped) unless it succeeded or
 * failed with an error that starts with `ok_error`. */
static bool handshake_cmd(struct worker_redis *r, int argc, const char **argv, const char *ok_error)
{
    redisReply *rep = redisCommandArgv(r->c, argc, argv, NULL);
    if (rep == NULL) {
        drop(r, r->c->errstr);
        return false;
    }
    bool ok = rep->type != REDIS_REPLY_ERROR ||
              (ok_error != NULL && strncmp(rep->str, ok_error, strlen(ok_error)) == 0);
    if (!ok) {
        char why[160];
        snprintf(why, sizeof(why), "%s: %.120s", argv[0], rep->str);
        drop(r, why);
    }
    freeReplyObject(rep);
    return ok;
}

static bool connect_now(struct worker_redis *r)
{
    struct qk_url url;
    char db[16], key[512];
    struct timeval tv = {2, 0};

    if (qk_parse_url(r->w->cfg.redis, &url) != 0) {
        drop(r, "bad URL");
        return false;
    }
    r->c = redisConnectWithTimeout(url.host, url.port, tv);
    if (r->c == NULL || r->c->err) {
        drop(r, r->c != NULL ? r->c->errstr : "out of memory");
        return false;
    }
    tv.tv_sec = COMMAND_TIMEOUT_S;
    redisSetTimeout(r->c, tv);
    redisEnableKeepAlive(r->c);
    if (url.password[0] != '\0') {
        const char *argv[] = {"AUTH", url.password};
        if (!handshake_cmd(r, 2, argv, NULL))
            return false;
    }
    if (url.db != 0) {
        snprintf(db, sizeof(db), "%d", url.db);
        const char *argv[] = {"SELECT", db};
        if (!handshake_cmd(r, 2, argv, NULL))
            return false;
    }
    for (size_t i = 0; i < r->w->cfg.n_pools; i++) {
        worker_key(r->w, key, sizeof(key), "inv:", r->w->cfg.pools[i]);
        const char *argv[] = {"XGROUP", "CREATE", key, QK_GROUP, "0", "MKSTREAM"};
        if (!handshake_cmd(r, 6, argv, "BUSYGROUP"))
            return false;
    }
    if (!r->was_up) {
        if (r->loud)
            log_info(&worker_log, "%s: Redis is back", r->name);
        else
            log_debug(&worker_log, "%s: Redis is back", r->name);
    }
    r->was_up = true;
    r->backoff_ms = 0;
    return true;
}

bool worker_redis_up(struct worker_redis *r)
{
    if (r->c != NULL)
        return true;
    if (worker_now_ms() < r->next_try_ms)
        return false;
    return connect_now(r);
}

redisReply *worker_redis_cmd(struct worker_redis *r, int argc, const char **argv,
                             const size_t *lens)
{
    if (!worker_redis_up(r))
        return NULL;
    redisReply *rep = redisCommandArgv(r->c, argc, argv, lens);
    if (rep == NULL) {
        drop(r, r->c->errstr);
        return NULL;
    }
    /* the group vanished (the stream was deleted, or Redis lost its data): re-made on the
     * next connect */
    if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOGROUP", 7) == 0) {
        freeReplyObject(rep);
        drop(r, "consumer group missing");
        r->next_try_ms = 0;
        return NULL;
    }
    return rep;
}

redisReply *worker_redis_script(struct worker_redis *r, struct qk_script *s, int n_keys, int argc,
                                const char **argv, const size_t *lens)
{
    char nk[16];
    const char **full = xcalloc((size_t)argc + 3, sizeof(char *));
    size_t *full_lens = xcalloc((size_t)argc + 3, sizeof(size_t));
    redisReply *rep;

    snprintf(nk, sizeof(nk), "%d", n_keys);
    full[0] = "EVALSHA";
    full[1] = s->sha;
    full[2] = nk;
    for (int i = 0; i < 3; i++)
        full_lens[i] = strlen(full[i]);
    for (int i = 0; i < argc; i++) {
        full[i + 3] = argv[i];
        full_lens[i + 3] = lens != NULL ? lens[i] : strlen(argv[i]);
    }
    rep = worker_redis_cmd(r, argc + 3, full, full_lens);
    if (rep != NULL && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(rep);
        full[0] = "EVAL";
        full[1] = s->text;
        full_lens[0] = 4;
        full_lens[1] = strlen(s->text);
        rep = worker_redis_cmd(r, argc + 3, full, full_lens);
    }
    free(full);
    free(full_lens);
    return rep;
}
