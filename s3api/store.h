/* The object store behind one asynchronous interface (private to s3api/). The embedded
 * backend (store_fs.c) keeps data files named by internal ids under the data dir and an LMDB
 * index of buckets, objects (with their metadata), multipart uploads and parts.
 *
 * Threading: every function here is called on the loop thread; the work (file-system calls,
 * LMDB transactions) runs on the gw_pool, and every callback runs later on the loop thread,
 * never before the starting call has returned. Callbacks run exactly once. Strings passed in
 * are copied; results handed to a callback are owned by the callee unless said otherwise.
 *
 * Visibility: an object becomes visible only by its commit (data fdatasync'd, then one LMDB
 * write transaction); a crash before that leaves nothing visible, and stale temp files are
 * removed at open. Concurrent commits are grouped into one LMDB transaction (one sync).
 *
 * Events: the functions that commit an object mutation (s3_put_commit, s3_store_copy,
 * s3_store_mpu_complete, s3_store_delete, s3_store_delete_many) take the request's origin
 * (copied; NULL for unknown) and report each change to the event hook inside the commit's
 * transaction (see s3api.h, "events and the transactional outbox"). */
#ifndef FG_S3API_STORE_H
#define FG_S3API_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s3api/error.h"
#include "s3api/s3api.h"

struct event_base;
struct evbuffer;
struct gw_pool;
struct s3_store;

struct s3_store_config {
    const char *data_dir;
    size_t inline_max_bytes;   /* objects up to this size live in the LMDB value; default 64 KiB */
    size_t map_size_bytes;     /* LMDB map size; default 64 GiB (sparse) */
    unsigned upload_max_age_s; /* abandoned multipart uploads older than this are removed */
    size_t cache_max_bytes;    /* records of recently read objects kept on the loop (inline
                                  bytes included); default 16 MiB, used only as objects are read */
};

/* A stored header: lowercase name ("content-type", "x-amz-meta-foo", "x-amz-checksum-crc32")
 * and value, both NUL-terminated and owned by the meta. */
struct s3_kv {
    char *name;
    char *value;
};

struct s3_obj_meta {
    uint64_t size;
    int64_t mtime_ms;     /* Last-Modified, ms since the epoch; set by the store at commit */
    char etag[48];        /* hex MD5, or "hex-N" for multipart; no quotes */
    unsigned parts_count; /* 0 for a single PUT */
    struct s3_kv *headers;
    size_t n_headers;
};

void s3_obj_meta_init(struct s3_obj_meta *m);
void s3_obj_meta_cleanup(struct s3_obj_meta *m); /* frees headers; accepts a zeroed meta */
void s3_obj_meta_add(struct s3_obj_meta *m, const char *name, const char *value); /* copies */
const char *s3_obj_meta_get(const struct s3_obj_meta *m, const char *name);
void s3_obj_meta_copy(struct s3_obj_meta *dst, const struct s3_obj_meta *src);

typedef void s3_store_cb(enum s3_err err, void *arg);

/* Opens (creating) the store synchronously at start-up; removes stale temp files and
 * expired uploads. NULL with a message in `err` on failure. */
struct s3_store *s3_store_open(struct event_base *base, struct gw_pool *pool,
                               const struct s3_store_config *cfg, char *err, size_t err_cap);
/* Waits for in-flight commits, closes LMDB. Accepts NULL. It runs the loop until the store's
 * pool jobs are done, so call it after event_base_dispatch() returned, not from a callback,
 * with the pool still alive; abort open puts and free objs first. */
void s3_store_close(struct s3_store *st);

/* ---- buckets ---- */
struct s3_bucket_info {
    char name[64];
    int64_t created_ms;
};
typedef void s3_bucket_list_cb(enum s3_err err, struct s3_bucket_info *v, size_t n, void *arg);
/* S3_ERR_BUCKET_ALREADY_OWNED_BY_YOU when it exists. Names are validated by the caller. */
void s3_store_bucket_create(struct s3_store *st, const char *bucket, s3_store_cb *cb, void *arg);
/* S3_ERR_NO_SUCH_BUCKET, S3_ERR_BUCKET_NOT_EMPTY (objects or uploads in progress). */
void s3_store_bucket_delete(struct s3_store *st, const char *bucket, s3_store_cb *cb, void *arg);
void s3_store_bucket_head(struct s3_store *st, const char *bucket, s3_store_cb *cb, void *arg);
/* `v` (sorted by name) is freed by the store after cb returns. */
void s3_store_bucket_list(struct s3_store *st, s3_bucket_list_cb *cb, void *arg);

/* ---- writing: PutObject, UploadPart ---- */
struct s3_put;
/* Runs on a pool thread, in order, for every block written (hashing off the loop). When the
 * put ends (committed, failed or aborted) it is called once more with (NULL, 0), on the loop
 * thread and after every other call, so it can free its state. */
typedef void s3_put_tap_cb(void *tap_arg, const void *data, size_t len);

/* Starts an upload of bucket/key. The bucket is checked at commit. `tap` may be NULL. */
struct s3_put *s3_put_new(struct s3_store *st, const char *bucket, const char *key,
                          s3_put_tap_cb *tap, void *tap_arg);
/* Starts an upload of part `part_number` (1..10000) of `upload_id`; S3_ERR_NO_SUCH_UPLOAD at
 * commit if the upload does not exist. */
struct s3_put *s3_put_new_part(struct s3_store *st, const char *bucket, const char *key,
                               const char *upload_id, unsigned part_number, s3_put_tap_cb *tap,
                               void *tap_arg);
/* Moves all of `data` into the upload's queue; returns the bytes queued and not yet written.
 * The caller stops feeding above S3_PUT_HIGH_WATER and waits for the drain callback. */
#define S3_PUT_HIGH_WATER (4u << 20)
#define S3_PUT_LOW_WATER  (1u << 20)
size_t s3_put_write(struct s3_put *put, struct evbuffer *data);
/* One-shot: cb(S3_OK, arg) once the queue is at or below S3_PUT_LOW_WATER (deferred if it
 * already is), or cb(err) if a write failed. */
void s3_put_on_drain(struct s3_put *put, s3_store_cb *cb, void *arg);
/* All data given: waits until every byte is written (the taps have all run), then cb. */
void s3_put_flush(struct s3_put *put, s3_store_cb *cb, void *arg);
/* Makes the upload visible with `meta` (taken over; size is checked against the bytes written,
 * mtime set by the store): fdatasync, then the grouped LMDB commit. For a part, records
 * the part (etag, size) in its upload (no event). Frees `put` after cb has returned. */
void s3_put_commit(struct s3_put *put, struct s3_obj_meta *meta,
                   const struct s3_event_origin *origin, s3_store_cb *cb, void *arg);
/* Discards the upload (temp data removed on the pool) and frees `put`. Any time, once;
 * pending callbacks of `put` are not called afterwards. */
void s3_put_abort(struct s3_put *put);

/* ---- reading: GetObject, HeadObject ---- */
struct s3_obj;
typedef void s3_obj_cb(enum s3_err err, struct s3_obj *obj, void *arg);
/* Looks up bucket/key (S3_ERR_NO_SUCH_BUCKET, S3_ERR_NO_SUCH_KEY); with open_data the data is
 * opened too, so a concurrent overwrite or delete cannot change what this reader sees. */
void s3_store_get(struct s3_store *st, const char *bucket, const char *key, bool open_data,
                  s3_obj_cb *cb, void *arg);
const struct s3_obj_meta *s3_obj_meta(const struct s3_obj *obj);
/* Appends bytes [off, off+len) to `out` (len <= 1 MiB per call). */
void s3_obj_read(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out,
                 s3_store_cb *cb, void *arg);
/* The same for a body on its way to a plain socket: bytes of data files are appended as
 * file segments that libevent sends with sendfile(2), after the store made sure they are in
 * the page cache (mincore on the loop, or a pool job that reads them in), so the loop only
 * copies memory. `out` gets EVBUFFER_FLAG_DRAINS_TO_FD: move it whole (evbuffer_add_buffer)
 * into the output of a socket bufferevent, never read it or hand it to a TLS bufferevent.
 * The segments keep their files open until sent or freed, which must be before
 * s3_store_close(). */
void s3_obj_send(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out,
                 s3_store_cb *cb, void *arg);
/* s3_obj_send() without a callback when no pool job is needed (bytes held in memory, or data
 * already open and in the page cache): true when [off, off+len) (clamped as there) has been
 * appended; false when nothing was, and s3_obj_send() must be used. */
bool s3_obj_send_now(struct s3_obj *obj, uint64_t off, size_t len, struct evbuffer *out);
/* Frees (closing files on the pool). Accepts NULL; not while a read is in flight. */
void s3_obj_free(struct s3_obj *obj);

/* ---- CopyObject ---- */
/* Copies src to dst (a new data file; onto itself only the metadata changes). `meta` (taken
 * over) is the destination's metadata without size/etag/mtime, which the store fills from the
 * source; `out` receives the result (etag, mtime). */
void s3_store_copy(struct s3_store *st, const char *src_bucket, const char *src_key,
                   const char *dst_bucket, const char *dst_key, struct s3_obj_meta *meta,
                   struct s3_obj_meta *out, const struct s3_event_origin *origin, s3_store_cb *cb,
                   void *arg);

/* ---- deleting ---- */
/* Deleting a missing key succeeds (S3 semantics) and reports no event; S3_ERR_NO_SUCH_BUCKET
 * when no bucket. */
void s3_store_delete(struct s3_store *st, const char *bucket, const char *key,
                     const struct s3_event_origin *origin, s3_store_cb *cb, void *arg);
/* Deletes many keys in one transaction; errs[i] receives each key's result. */
void s3_store_delete_many(struct s3_store *st, const char *bucket, const char *const *keys,
                          size_t n, enum s3_err *errs, const struct s3_event_origin *origin,
                          s3_store_cb *cb, void *arg);

/* ---- listing ---- */
struct s3_list_params {
    const char *prefix;      /* "" for all */
    const char *delimiter;   /* NULL or "" for none */
    const char *start_after; /* exclusive start (marker / start-after / continuation) */
    unsigned max_keys;       /* 0..1000; 0 returns nothing but IsTruncated as S3 does */
};
struct s3_list_entry {
    char *key;
    uint64_t size;
    int64_t mtime_ms;
    char etag[48];
};
struct s3_list_result {
    struct s3_list_entry *entries; /* in key order */
    size_t n_entries;
    char **prefixes; /* CommonPrefixes, in order */
    size_t n_prefixes;
    bool truncated;
    char *next_marker; /* last key or prefix returned, when truncated */
};
typedef void s3_list_cb(enum s3_err err, struct s3_list_result *res, void *arg);
/* `res` is freed by the store after cb returns. Keys and prefixes together count against
 * max_keys, as S3 counts them. */
void s3_store_list(struct s3_store *st, const char *bucket, const struct s3_list_params *p,
                   s3_list_cb *cb, void *arg);

/* ---- multipart ---- */
typedef void s3_upload_cb(enum s3_err err, const char *upload_id, void *arg);
/* Creates an upload holding the final object's headers (`meta` taken over). */
void s3_store_mpu_create(struct s3_store *st, const char *bucket, const char *key,
                         struct s3_obj_meta *meta, s3_upload_cb *cb, void *arg);
struct s3_part_ref {
    unsigned part_number;
    char etag[48]; /* hex, without quotes */
};
/* Validates (S3_ERR_INVALID_PART, S3_ERR_INVALID_PART_ORDER, S3_ERR_ENTITY_TOO_SMALL for a
 * part but the last under 5 MiB, S3_ERR_NO_SUCH_UPLOAD), then publishes the object (etag
 * "md5-of-part-md5s-N") and removes the upload; unlisted parts are deleted. `out` receives
 * the object's meta. */
void s3_store_mpu_complete(struct s3_store *st, const char *bucket, const char *key,
                           const char *upload_id, const struct s3_part_ref *parts, size_t n,
                           struct s3_obj_meta *out, const struct s3_event_origin *origin,
                           s3_store_cb *cb, void *arg);
void s3_store_mpu_abort(struct s3_store *st, const char *bucket, const char *key,
                        const char *upload_id, s3_store_cb *cb, void *arg);
struct s3_part_info {
    unsigned part_number;
    uint64_t size;
    int64_t mtime_ms;
    char etag[48];
};
struct s3_parts_result {
    struct s3_part_info *parts;
    size_t n;
    bool truncated;
    unsigned next_marker;
};
typedef void s3_parts_cb(enum s3_err err, struct s3_parts_result *res, void *arg);
void s3_store_mpu_list_parts(struct s3_store *st, const char *bucket, const char *key,
                             const char *upload_id, unsigned marker, unsigned max_parts,
                             s3_parts_cb *cb, void *arg);
struct s3_upload_info {
    char *key;
    char upload_id[64];
    int64_t initiated_ms;
};
struct s3_uploads_result {
    struct s3_upload_info *uploads;
    size_t n;
    char **prefixes;
    size_t n_prefixes;
    bool truncated;
    char *next_key_marker;
    char next_upload_id_marker[64];
};
typedef void s3_uploads_cb(enum s3_err err, struct s3_uploads_result *res, void *arg);
void s3_store_mpu_list(struct s3_store *st, const char *bucket, const char *prefix,
                       const char *delimiter, const char *key_marker, const char *upload_id_marker,
                       unsigned max_uploads, s3_uploads_cb *cb, void *arg);
/* UploadPartCopy: copies [off, off+len) of src (len UINT64_MAX = to the end) into part
 * `part_number` of the upload; `out` receives the part's etag and mtime. */
void s3_store_part_copy(struct s3_store *st, const char *src_bucket, const char *src_key,
                        uint64_t off, uint64_t len, const char *bucket, const char *key,
                        const char *upload_id, unsigned part_number, struct s3_part_info *out,
                        s3_store_cb *cb, void *arg);

/* ---- bucket notification configurations (store_notif.c) ---- */
/* Sets bucket's configuration to `data` (copied; notif.c's encoding) through the group
 * committer, reporting S3_EV_TEST with it in the same txn; len 0 removes it (no event).
 * S3_ERR_NO_SUCH_BUCKET. `origin` is copied (NULL: unknown). */
void s3_store_notif_set(struct s3_store *st, const char *bucket, const void *data, size_t len,
                        const struct s3_event_origin *origin, s3_store_cb *cb, void *arg);
/* The stored configuration (data NULL, len 0 when none; valid during cb only), or
 * S3_ERR_NO_SUCH_BUCKET. A job on the read lane. */
typedef void s3_notif_get_cb(enum s3_err err, const void *data, size_t len, void *arg);
void s3_store_notif_get(struct s3_store *st, const char *bucket, s3_notif_get_cb *cb, void *arg);

/* ---- events and the outbox (store_outbox.c; the contract is in s3api.h) ---- */
/* Installs the event hook (NULL: none); before serving, since pool threads read it. */
void s3_store_set_event_hook(struct s3_store *st, s3_event_hook_fn *fn, void *arg);
/* Installs the map of outbox reads (s3_api_set_outbox_map); before serving. */
void s3_store_set_outbox_map(struct s3_store *st, s3_outbox_map_fn *fn, void *arg);
/* fn(arg) on the loop after each commit batch that added outbox records, after the batch's
 * callbacks (NULL: none). */
void s3_store_on_outbox(struct s3_store *st, void (*fn)(void *arg), void *arg);
/* A job on the read lane; cb from a later loop iteration with the records (valid during cb). */
void s3_store_outbox_read(struct s3_store *st, uint64_t after_id, size_t max_n, size_t max_bytes,
                          s3_outbox_read_cb *cb, void *arg);
/* Deletes the records (ids copied; missing ones are skipped) through the group committer;
 * cb (may be NULL) gets 0 or -1. */
void s3_store_outbox_remove(struct s3_store *st, const uint64_t *ids, size_t n,
                            void (*cb)(int err, void *arg), void *arg);
/* Records in the outbox after the last commit (any thread). */
uint64_t s3_store_outbox_count(const struct s3_store *st);
/* See s3_outbox_identity() in s3api.h. */
void s3_store_outbox_identity(const struct s3_store *st, char source[33], uint64_t *first_id);

#endif
