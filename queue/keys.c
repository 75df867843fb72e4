/* The Redis protocol's scripts and helpers (see keys.h). */
#include "queue/keys.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* API jobs (POST /job, /run): the record first, then the entry that names it. */
struct qk_script qk_enqueue = {
    .name = "enqueue",
    .text = "redis.call('HSET', KEYS[1], 'status', 'pending', 'attempts', '0', unpack(ARGV, 3))\n"
            "redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])\n"
            "redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])\n"
            "return 1\n",
};

/* A job relayed from an outbox has no record until its first start: the record is made from
 * the fields of the outbox record its entry carries (queue.h's binary form: "FR1j", then
 * [u32 LE length][name][u32 LE length][value] pairs). A tombstone (status "deleted", left by a
 * DELETE) stops it. */
struct qk_script qk_start = {
    .name = "start",
    .text = "local st = redis.call('HGET', KEYS[1], 'status')\n"
            "if not st then\n"
            "  local e = redis.call('XRANGE', KEYS[2], ARGV[3], ARGV[3])\n"
            "  local f, rec = e[1] and e[1][2] or {}, nil\n"
            "  for i = 1, #f - 1, 2 do if f[i] == 'rec' then rec = f[i + 1] end end\n"
            "  if not rec then return false end\n"
            "  if rec:sub(1, 4) ~= 'FR1j' then return redis.error_reply('not a job record') end\n"
            "  local h, pos, n = {'status', 'pending', 'attempts', '0'}, 5, #rec\n"
            "  while pos <= n do\n"
            "    if pos + 3 > n then return redis.error_reply('a truncated job record') end\n"
            "    local len = struct.unpack('<I4', rec, pos)\n"
            "    if pos + 3 + len > n then return redis.error_reply('a truncated job record') end\n"
            "    h[#h + 1] = rec:sub(pos + 4, pos + 3 + len)\n"
            "    pos = pos + 4 + len\n"
            "  end\n"
            "  if #h % 2 ~= 0 then return redis.error_reply('a truncated job record') end\n"
            "  redis.call('HSET', KEYS[1], unpack(h))\n"
            "elseif st == 'deleted' then return false\n"
            "elseif st == 'succeeded' or st == 'dead' then return 'ended' end\n"
            "redis.call('HSET', KEYS[1], 'status', 'running', 'worker', ARGV[1], "
            "'started_ms', ARGV[2])\n"
            "redis.call('HINCRBY', KEYS[1], 'attempts', 1)\n"
            "return redis.call('HGETALL', KEYS[1])\n",
};

struct qk_script qk_finish = {
    .name = "finish",
    .text = "local id, entry, status = ARGV[1], ARGV[2], ARGV[3]\n"
            "local ttl = tonumber(ARGV[8])\n"
            "if entry ~= '' then\n"
            "  redis.call('XACK', KEYS[2], 'workers', entry)\n"
            "  redis.call('XDEL', KEYS[2], entry)\n"
            "end\n"
            "local cur = redis.call('HGET', KEYS[1], 'status')\n"
            "if not cur or cur == 'deleted' then return 0 end\n"
            "redis.call('HSET', KEYS[1], 'status', status, 'finished_ms', ARGV[4], "
            "'exit_code', ARGV[5], 'reason', ARGV[6])\n"
            "redis.call('SET', KEYS[3], ARGV[7], 'EX', ttl)\n"
            "if status == 'failed' then\n"
            "  redis.call('ZADD', KEYS[4], ARGV[9], id)\n"
            "  return 1\n"
            "end\n"
            "redis.call('EXPIRE', KEYS[1], ttl)\n"
            "redis.call('DEL', KEYS[8])\n"
            "if status == 'dead' then\n"
            "  redis.call('XADD', KEYS[5], '*', 'job', id, 'reason', ARGV[6], 'attempts', "
            "redis.call('HGET', KEYS[1], 'attempts'), 'log_tail', ARGV[11], 'time_ms', ARGV[4])\n"
            "end\n"
            "if redis.call('HGET', KEYS[1], 'sync') == '1' then\n"
            "  if status == 'succeeded' then redis.call('SET', KEYS[7], ARGV[10], 'EX', 300) end\n"
            "  redis.call('RPUSH', KEYS[6], status)\n"
            "  redis.call('EXPIRE', KEYS[6], 300)\n"
            "end\n"
            "return 1\n",
};

struct qk_script qk_promote = {
    .name = "promote",
    .text = "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, "
            "tonumber(ARGV[3]))\n"
            "for _, id in ipairs(ids) do\n"
            "  redis.call('ZREM', KEYS[1], id)\n"
            "  local jk = ARGV[1] .. 'job:' .. id\n"
            "  local pool = redis.call('HGET', jk, 'pool')\n"
            "  if pool then\n"
            "    redis.call('HSET', jk, 'status', 'pending')\n"
            "    redis.call('XADD', ARGV[1] .. 'inv:' .. pool, '*', 'job', id)\n"
            "  end\n"
            "end\n"
            "return #ids\n",
};

struct qk_script qk_relay_check = {
    .name = "relay_check",
    .text = "local last = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
            "local first = tonumber(ARGV[1])\n"
            "if first > 0 and last >= first then\n"
            "  redis.call('DEL', KEYS[1])\n"
            "  return {0, last}\n"
            "end\n"
            "return {last, 0}\n",
};

struct qk_script qk_ntf_retry = {
    .name = "ntf_retry",
    .text = "if redis.call('XACK', KEYS[1], 'deliver', ARGV[1]) == 0 then return 0 end\n"
            "redis.call('XDEL', KEYS[1], ARGV[1])\n"
            "local m = cjson.encode({id = ARGV[3], body = ARGV[4], created_ms = ARGV[5], "
            "attempts = ARGV[6]})\n"
            "redis.call('ZADD', KEYS[2], ARGV[2], m)\n"
            "return 1\n",
};

struct qk_script qk_ntf_dead = {
    .name = "ntf_dead",
    .text = "if redis.call('XACK', KEYS[1], 'deliver', ARGV[1]) == 0 then return 0 end\n"
            "redis.call('XDEL', KEYS[1], ARGV[1])\n"
            "redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], ARGV[7], ARGV[3], 'created_ms', "
            "ARGV[4], 'attempts', ARGV[5], 'reason', ARGV[6])\n"
            "return 1\n",
};

struct qk_script qk_ntf_promote = {
    .name = "ntf_promote",
    .text = "local ms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, "
            "tonumber(ARGV[2]))\n"
            "for _, m in ipairs(ms) do\n"
            "  local ok, e = pcall(cjson.decode, m)\n"
            "  if ok and type(e) == 'table' then\n"
            "    redis.call('XADD', KEYS[2], '*', 'id', tostring(e.id or ''), 'body', "
            "tostring(e.body or ''), 'created_ms', tostring(e.created_ms or '0'), 'attempts', "
            "tostring(e.attempts or '0'))\n"
            "  end\n"
            "  redis.call('ZREM', KEYS[1], m)\n"
            "end\n"
            "local nx = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
            "return {#ms, nx[2] or '-1'}\n",
};

struct qk_script qk_ntf_replay = {
    .name = "ntf_replay",
    .text = "local es = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', tonumber(ARGV[1]))\n"
            "for _, e in ipairs(es) do\n"
            "  local f = {}\n"
            "  for i = 1, #e[2], 2 do f[e[2][i]] = e[2][i + 1] end\n"
            "  if f.rec then\n"
            "    redis.call('XADD', KEYS[2], '*', 'rec', f.rec)\n"
            "  else\n"
            "    redis.call('XADD', KEYS[2], '*', 'id', f.id or '', 'body', f.body or '', "
            "'created_ms', f.created_ms or '0', 'attempts', '0')\n"
            "  end\n"
            "  redis.call('XDEL', KEYS[1], e[1])\n"
            "end\n"
            "return #es\n",
};

struct qk_script *const qk_scripts[] = {
    &qk_enqueue,  &qk_start,       &qk_finish,     &qk_promote,     &qk_ntf_retry,
    &qk_ntf_dead, &qk_ntf_promote, &qk_ntf_replay, &qk_relay_check,
};
const size_t qk_n_scripts = sizeof(qk_scripts) / sizeof(qk_scripts[0]);

static void sha1_hex(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_sha1(), NULL);
    for (unsigned i = 0; i < len && i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[40] = '\0';
}

static void init_once(void)
{
    for (size_t i = 0; i < qk_n_scripts; i++)
        sha1_hex(qk_scripts[i]->text, qk_scripts[i]->sha);
}

void qk_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
}

char *qk_key(char *buf, size_t cap, const char *prefix, const char *kind, const char *name)
{
    snprintf(buf, cap, "%s%s%s", prefix != NULL ? prefix : "", kind != NULL ? kind : "",
             name != NULL ? name : "");
    return buf;
}

static int copy_part(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int qk_parse_url(const char *url, struct qk_url *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url == NULL || url[0] == '\0')
        return -1;
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    else if (strstr(p, "://") != NULL)
        return -1;
    const char *at = strrchr(p, '@');
    const char *slash = strchr(p, '/');
    if (at != NULL && (slash == NULL || at < slash)) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon != NULL ? colon + 1 : p;
        if (copy_part(out->password, sizeof(out->password), pw, (size_t)(at - pw)) != 0)
            return -1;
        p = at + 1;
    }
    size_t hostlen = slash != NULL ? (size_t)(slash - p) : strlen(p);
    const char *hp = p;
    const char *colon = NULL;
    if (hostlen > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', hostlen);
        if (close == NULL)
            return -1;
        if (copy_part(out->host, sizeof(out->host), hp + 1, (size_t)(close - hp - 1)) != 0)
            return -1;
        if (close + 1 < hp + hostlen) {
            if (close[1] != ':')
                return -1;
            colon = close + 1;
        }
    } else {
        colon = memchr(hp, ':', hostlen);
        size_t n = colon != NULL ? (size_t)(colon - hp) : hostlen;
        if (copy_part(out->host, sizeof(out->host), hp, n) != 0)
            return -1;
    }
    if (out->host[0] == '\0')
        return -1;
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != hp + hostlen || end == colon + 1 || port <= 0 || port > 65535)
            return -1;
        out->port = (int)port;
    }
    if (slash != NULL && slash[1] != '\0') {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end != '\0' || end == slash + 1 || db < 0 || db > 1000000)
            return -1;
        out->db = (int)db;
    }
    return 0;
}
