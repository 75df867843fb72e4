/* floodgate-worker as an S3 client: GET an input object into a file and PUT an output file,
 * over libcurl easy handles, signed with SigV4 (s3_sign_v4, UNSIGNED-PAYLOAD). Which objects
 * to move is worker_job.c's. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gateway/xmalloc.h"
#include "queue/worker.h"
#include "s3api/s3api.h"

#define CONNECT_TIMEOUT_MS 10000
/* A transfer slower than 1 byte/s for this long is abandoned (the attempt fails). */
#define STALL_TIME_S   60
#define ERROR_BODY_MAX 1024

int worker_s3_init(struct worker_s3 *s3, const char *endpoint, char *msg, size_t msg_cap)
{
    memset(s3, 0, sizeof(*s3));
    const char *rest;
    if (strncmp(endpoint, "http://", 7) == 0)
        rest = endpoint + 7;
    else if (strncmp(endpoint, "https://", 8) == 0)
        rest = endpoint + 8;
    else {
        snprintf(msg, msg_cap, "endpoint must start with http:// or https://");
        return -1;
    }
    size_t hl = strcspn(rest, "/?#");
    if (hl == 0 || hl >= sizeof(s3->host) || (rest[hl] != '\0' && strcmp(rest + hl, "/") != 0)) {
        snprintf(msg, msg_cap, "endpoint must be scheme://host[:port] with no path");
        return -1;
    }
    memcpy(s3->host, rest, hl);
    s3->host[hl] = '\0';
    snprintf(s3->base_url, sizeof(s3->base_url), "%.*s%s", (int)(rest - endpoint), endpoint,
             s3->host);
    return 0;
}

/* SigV4's URI encoding of a path: unreserved characters and '/' as they are, every other
 * byte as %XX (upper-case hex). */
static char *encode_path(const char *bucket, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t bl = strlen(bucket), kl = strlen(key);
    char *out = xmalloc(3 * (bl + kl) + 3);
    char *p = out;
    const char *parts[2] = {bucket, key};
    for (int part = 0; part < 2; part++) {
        *p++ = '/';
        for (const unsigned char *s = (const unsigned char *)parts[part]; *s != '\0'; s++) {
            if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                *s == '-' || *s == '.' || *s == '_' || *s == '~' || (part == 1 && *s == '/')) {
                *p++ = (char)*s;
            } else {
                *p++ = '%';
                *p++ = hex[*s >> 4];
                *p++ = hex[*s & 15];
            }
        }
    }
    *p = '\0';
    return out;
}

struct transfer {
    CURL *c;
    FILE *f; /* GET: the destination, written only on a 2xx */
    const atomic_int *cancel;
    long status; /* known once the first body byte arrived */
    char err_body[ERROR_BODY_MAX];
    size_t err_len;
    bool write_failed;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct transfer *t = arg;
    size_t n = size * nmemb;
    if (t->status == 0)
        curl_easy_getinfo(t->c, CURLINFO_RESPONSE_CODE, &t->status);
    if (t->status >= 200 && t->status < 300 && t->f != NULL) {
        if (fwrite(ptr, 1, n, t->f) != n) {
            t->write_failed = true;
            return 0;
        }
        return n;
    }
    size_t room = sizeof(t->err_body) - 1 - t->err_len;
    size_t take = n < room ? n : room;
    memcpy(t->err_body + t->err_len, ptr, take);
    t->err_len += take;
    t->err_body[t->err_len] = '\0';
    return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct transfer *t = arg;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return t->cancel != NULL && atomic_load(t->cancel) != 0; /* non-zero aborts */
}

/* The S3 error code of an error body (<Code>NoSuchKey</Code>), or "" */
static void error_code(const char *body, char *out, size_t cap)
{
    const char *p = strstr(body, "<Code>");
    out[0] = '\0';
    if (p == NULL)
        return;
    p += 6;
    size_t n = strcspn(p, "<");
    snprintf(out, cap, "%.*s", (int)(n < 64 ? n : 64), p);
}

/* Signs and performs one request; the caller set the method's own options. */
static enum worker_s3_result perform(struct transfer *t, const struct worker_s3 *s3,
                                     const char *method, const char *bucket, const char *key,
                                     char *msg, size_t msg_cap)
{
    struct s3_signed_headers sh;
    struct curl_slist *hdrs = NULL;
    char line[600];
    enum worker_s3_result res = WORKER_S3_FAILED;
    char *path = encode_path(bucket, key);
    char *url = xasprintf("%s%s", s3->base_url, path);

    s3_sign_v4(s3->access_key, s3->secret_key, s3->region, method, s3->host, path, "", NULL,
               time(NULL), &sh);
    snprintf(line, sizeof(line), "Host: %s", s3->host);
    hdrs = curl_slist_append(hdrs, line);
    snprintf(line, sizeof(line), "x-amz-date: %s", sh.amz_date);
    hdrs = curl_slist_append(hdrs, line);
    snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sh.content_sha256);
    hdrs = curl_slist_append(hdrs, line);
    snprintf(line, sizeof(line), "Authorization: %s", sh.authorization);
    hdrs = curl_slist_append(hdrs, line);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */

    curl_easy_setopt(t->c, CURLOPT_URL, url);
    curl_easy_setopt(t->c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(t->c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(t->c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(t->c, CURLOPT_LOW_SPEED_TIME, (long)STALL_TIME_S);
    curl_easy_setopt(t->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(t->c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(t->c, CURLOPT_XFERINFODATA, t);

    CURLcode rc = curl_easy_perform(t->c);
    if (t->status == 0)
        curl_easy_getinfo(t->c, CURLINFO_RESPONSE_CODE, &t->status);
    if (t->write_failed) {
        snprintf(msg, msg_cap, "%s %s/%s: writing the file: %s", method, bucket, key,
                 strerror(errno));
    } else if (rc != CURLE_OK) {
        snprintf(msg, msg_cap, "%s %s/%s: %s", method, bucket, key,
                 rc == CURLE_ABORTED_BY_CALLBACK ? "cancelled" : curl_easy_strerror(rc));
    } else if (t->status < 200 || t->status >= 300) {
        char code[72];
        error_code(t->err_body, code, sizeof(code));
        snprintf(msg, msg_cap, "%s %s/%s: HTTP %ld%s%s", method, bucket, key, t->status,
                 code[0] != '\0' ? " " : "", code);
        if (t->status == 404)
            res = WORKER_S3_NOT_FOUND;
    } else {
        res = WORKER_S3_OK;
    }

    curl_slist_free_all(hdrs);
    free(url);
    free(path);
    return res;
}

enum worker_s3_result worker_s3_get(CURL *c, const struct worker_s3 *s3, const char *bucket,
                                    const char *key, const char *path, const atomic_int *cancel,
                                    char *msg, size_t msg_cap)
{
    struct transfer t = {.c = c, .cancel = cancel};
    t.f = fopen(path, "wbe");
    if (t.f == NULL) {
        snprintf(msg, msg_cap, "cannot create %s: %s", path, strerror(errno));
        return WORKER_S3_FAILED;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    enum worker_s3_result res = perform(&t, s3, "GET", bucket, key, msg, msg_cap);
    if (fclose(t.f) != 0 && res == WORKER_S3_OK) {
        snprintf(msg, msg_cap, "GET %s/%s: writing the file: %s", bucket, key, strerror(errno));
        res = WORKER_S3_FAILED;
    }
    return res;
}

enum worker_s3_result worker_s3_put(CURL *c, const struct worker_s3 *s3, const char *bucket,
                                    const char *key, const char *path, const atomic_int *cancel,
                                    char *msg, size_t msg_cap)
{
    struct transfer t = {.c = c, .cancel = cancel};
    struct stat st;
    FILE *f = fopen(path, "rbe");
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        snprintf(msg, msg_cap, "cannot read %s: %s", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return WORKER_S3_FAILED;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READDATA, f); /* the default read callback is fread() */
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
    enum worker_s3_result res = perform(&t, s3, "PUT", bucket, key, msg, msg_cap);
    fclose(f);
    /* a 404 on PUT is a missing bucket: an ordinary failure */
    return res == WORKER_S3_NOT_FOUND ? WORKER_S3_FAILED : res;
}
