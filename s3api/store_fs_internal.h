/* Internals of the embedded fs store (store_fs*.c, store_*.c), shared by its files and its unit
 * tests. Nothing outside the store includes this.
 *
 * On disk, under the data dir:
 *   LOCK               flock()ed by the one process that owns the store
 *   index/             the LMDB env; named DBs:
 *     buckets          bucket name -> bucket record (created_ms)
 *     objects          bucket '\0' key[0..400) -> group: the sorted (key suffix, object record)
 *                      pairs of every key starting with those bytes (one pair for short keys)
 *     uploads          bucket '\0' upload id -> upload record (key, initiated, headers)
 *     parts            upload id, part number (u32 BE) -> part record (size, etag, file id)
 *     meta             "format" -> u32, "next_id" -> u64 (file ids below it may be in use),
 *                      "next_seq" -> u64 (event seqs and outbox ids below it may be in use)
 *     pending          file id -> "" : committed files still lying in tmp/ (not yet moved)
 *     trash            file id -> "" : files no committed record references (to unlink)
 *     outbox           record id (u64 BE) -> opaque bytes: the event hook's records, written in
 *                      the txn of the mutation they describe (s3api.h); created when missing
 *     notif            bucket name -> its notification configuration (notif.c's encoding);
 *                      absent when it has none; created when missing
 *   objects/xx/<id>    data files, <id> 16 hex digits, xx its low byte; never named by key
 *   tmp/<id>           data being written; moved into objects/ after its commit
 *
 * Commit protocol for a file (see store_fs.c): write tmp/<id>, fdatasync, fsync(tmp/) once per
 * batch, one LMDB txn that writes the record and `pending/<id>`; after it, rename into
 * objects/xx/, fsync that dir, and drop `pending/<id>` in a later txn. At open, pending files
 * still in tmp/ are moved, trash is unlinked, and everything else in tmp/ (uncommitted) is
 * removed: no orphan survives a crash and nothing partial is ever visible.
 *
 * Threading: the fields of struct s3_store under `loop` are the event loop's; the rest is
 * immutable after open, atomic, or under `pins.mu`. */
#ifndef FG_S3API_STORE_FS_INTERNAL_H
#define FG_S3API_STORE_FS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "s3api/store.h"

#define S3_FS_KEY_MAX        1024u /* S3's object key limit, bytes */
#define S3_FS_BUCKET_MAX     63u
#define S3_FS_IDX_PREFIX     400u /* key bytes in an objects index key; LMDB keys are <= 511 */
#define S3_FS_IDX_KEY_MAX    (S3_FS_BUCKET_MAX + 1 + S3_FS_IDX_PREFIX)
#define S3_FS_UPLOAD_ID_LEN  32u
#define S3_FS_PART_MAX       10000u
#define S3_FS_MIN_PART_BYTES (5ull << 20)
#define S3_FS_SYNC_RANGE     (8ull << 20) /* sync_file_range() every this many bytes */
#define S3_FS_READ_MAX       (1u << 20)   /* s3_obj_read() limit per call */
#define S3_FS_FORMAT         1u
#define S3_FS_NAME_LEN       32 /* "xx/0123456789abcdef" + NUL, with room */

/* ---- encoding helpers (store_meta.c) ---- */

/* A growable byte buffer for records; little-endian integers. */
struct s3_fs_wbuf {
    unsigned char *p;
    size_t len;
    size_t cap;
};
void s3_fs_wbuf_cleanup(struct s3_fs_wbuf *b);
void s3_fs_wbuf_bytes(struct s3_fs_wbuf *b, const void *p, size_t n);
void s3_fs_wbuf_u8(struct s3_fs_wbuf *b, uint8_t v);
void s3_fs_wbuf_u16(struct s3_fs_wbuf *b, uint16_t v);
void s3_fs_wbuf_u32(struct s3_fs_wbuf *b, uint32_t v);
void s3_fs_wbuf_u64(struct s3_fs_wbuf *b, uint64_t v);

/* A reader over stored bytes; any overrun sets `bad` and yields zeros. */
struct s3_fs_rbuf {
    const unsigned char *p;
    size_t len;
    size_t off;
    bool bad;
};
uint8_t s3_fs_rbuf_u8(struct s3_fs_rbuf *r);
uint16_t s3_fs_rbuf_u16(struct s3_fs_rbuf *r);
uint32_t s3_fs_rbuf_u32(struct s3_fs_rbuf *r);
uint64_t s3_fs_rbuf_u64(struct s3_fs_rbuf *r);
const unsigned char *s3_fs_rbuf_bytes(struct s3_fs_rbuf *r, size_t n);

void s3_fs_put_be32(unsigned char *p, uint32_t v);
uint32_t s3_fs_get_be32(const unsigned char *p);
void s3_fs_put_be64(unsigned char *p, uint64_t v);
uint64_t s3_fs_get_be64(const unsigned char *p);
/* memcmp order, a proper prefix first: LMDB's default key order. */
int s3_fs_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* Where an object's bytes are: inline in its record, or a list of file segments (one for a
 * PUT or copy, one per part for a completed multipart upload). */
enum s3_fs_loc_kind { S3_FS_LOC_INLINE = 0, S3_FS_LOC_SEGS = 1 };
struct s3_fs_seg {
    uint64_t file_id; /* objects/xx/<id> */
    uint64_t size;
};
struct s3_fs_loc {
    enum s3_fs_loc_kind kind;
    unsigned char *data; /* inline bytes, owned */
    size_t data_len;
    struct s3_fs_seg *segs; /* owned */
    size_t n_segs;
};
/* One object: its S3 metadata and its data location. */
struct s3_fs_rec {
    struct s3_obj_meta meta;
    struct s3_fs_loc loc;
};
void s3_fs_rec_cleanup(struct s3_fs_rec *r); /* accepts a zeroed record */
void s3_fs_rec_encode(struct s3_fs_wbuf *b, const struct s3_fs_rec *r);
int s3_fs_rec_decode(const void *p, size_t len, struct s3_fs_rec *out);
/* Just what a listing needs, without allocating. */
int s3_fs_rec_peek(const void *p, size_t len, uint64_t *size, int64_t *mtime_ms, char etag[48]);
/* Headers only (s3_obj_meta's headers; used by upload records). */
void s3_fs_headers_encode(struct s3_fs_wbuf *b, const struct s3_obj_meta *m);
void s3_fs_headers_decode(struct s3_fs_rbuf *r, struct s3_obj_meta *m);
void s3_fs_meta_take_headers(struct s3_obj_meta *dst, struct s3_obj_meta *src);

/* An objects value: `n` (suffix, record) pairs sorted by suffix, pointing into the value. */
struct s3_fs_grp_item {
    const unsigned char *suffix; /* the key bytes after the index key's S3_FS_IDX_PREFIX */
    size_t suffix_len;
    const unsigned char *rec;
    size_t rec_len;
};
int s3_fs_grp_parse(const void *p, size_t len, struct s3_fs_grp_item **items, size_t *n);
void s3_fs_grp_encode(struct s3_fs_wbuf *b, const struct s3_fs_grp_item *items, size_t n);

/* ---- file ids ---- */
struct s3_fs_ids {
    uint64_t *v;
    size_t n;
    size_t cap;
};
void s3_fs_ids_push(struct s3_fs_ids *ids, uint64_t id);
void s3_fs_ids_append(struct s3_fs_ids *dst, const struct s3_fs_ids *src);
void s3_fs_ids_cleanup(struct s3_fs_ids *ids);

/* ---- pins (store_file.c): files a reader holds; their unlink waits for the last unpin ---- */
struct s3_fs_pin;
struct s3_fs_pins {
    pthread_mutex_t mu;
    struct s3_fs_pin *slots[256];
};

/* ---- the group committer (store_fs.c) ---- */
struct s3_fs_op;
struct s3_fs_wtxn;
/* Runs on a pool thread inside the batch's write txn. Checks first and writes only when it
 * returns S3_OK, so a refused op leaves the txn untouched; an LMDB failure while writing is
 * reported through s3_fs_wtxn_fail() and fails the batch (each op is then retried alone). */
typedef enum s3_err s3_fs_apply_fn(struct s3_fs_op *op, struct s3_fs_wtxn *w);
/* Runs on the loop after the commit (or failure), once; may free the op. */
typedef void s3_fs_finish_fn(struct s3_fs_op *op);

struct s3_fs_op {
    struct s3_fs_op *next;
    s3_fs_apply_fn *apply;
    s3_fs_finish_fn *finish;
    enum s3_err err;
    uint64_t publish_id;           /* tmp/<id> committed by apply (s3_fs_wtxn_publish); 0 none */
    struct s3_fs_ids trash;        /* files this op stopped referencing (filled by apply) */
    struct s3_fs_wbuf touched;     /* object records it wrote or removed (s3_fs_wtxn_touch) */
    struct s3_event_origin origin; /* who asked, for the events it reports; zeroed: unknown */
};

struct s3_fs_wtxn {
    struct s3_store *st;
    MDB_txn *txn;
    int64_t now_ms; /* the batch's commit time: every object's mtime */
    struct s3_fs_op *op;
    int rc;                /* first LMDB error; the batch is aborted */
    size_t outbox_added;   /* outbox records written in this txn */
    size_t outbox_removed; /* outbox records deleted in this txn */
};
/* Records an LMDB error; returns S3_ERR_INTERNAL_ERROR for `return s3_fs_wtxn_fail(w, rc)`. */
enum s3_err s3_fs_wtxn_fail(struct s3_fs_wtxn *w, int rc);
/* The op commits tmp/<id>: recorded in `pending` and moved once committed. */
enum s3_err s3_fs_wtxn_publish(struct s3_fs_wtxn *w, uint64_t id);
/* The op drops the files of `loc`: recorded in `trash` and unlinked once committed. */
enum s3_err s3_fs_wtxn_trash_loc(struct s3_fs_wtxn *w, const struct s3_fs_loc *loc);
enum s3_err s3_fs_wtxn_trash(struct s3_fs_wtxn *w, uint64_t id);
/* The op writes or removes the record of bucket/key (key NULL: any key of the bucket), so the
 * loop's record cache forgets it when the batch is done (store_cache.c). */
void s3_fs_wtxn_touch(struct s3_fs_wtxn *w, const char *bucket, const char *key);
/* Copies `o` into the op (NULL: unknown, all empty). */
void s3_fs_op_set_origin(struct s3_fs_op *op, const struct s3_event_origin *o);
/* The op committed a mutation of bucket/key: reports it to the event hook, if any, with the
 * op's origin and the batch's time (store_outbox.c). S3_OK, or S3_ERR_INTERNAL_ERROR when the
 * hook's records could not be written (the batch then fails: w->rc is set). */
enum s3_err s3_fs_wtxn_event(struct s3_fs_wtxn *w, enum s3_event_kind kind, const char *bucket,
                             const char *key, uint64_t size, const char *etag);
/* The same for S3_EV_TEST: `notif` (len > 0) is the configuration just set on `bucket`. */
enum s3_err s3_fs_wtxn_test_event(struct s3_fs_wtxn *w, const char *bucket, const void *notif,
                                  size_t notif_len);
/* Removes bucket's notification configuration, if any (DeleteBucket; store_notif.c). */
enum s3_err s3_fs_notif_drop(struct s3_fs_wtxn *w, const char *bucket);

/* ---- the loop's caches (store_cache.c) ----
 *
 * Records: a GET of a recently read key is answered on the loop, with no pool job. Every
 * record the loop holds is a struct s3_fs_crec, shared (refcounted, loop thread only) by the
 * cache and the objs reading it, and immutable once made: pool jobs may read its `rec`.
 * Freshness: every index mutation goes through the group committer, whose ops name the keys
 * they touched; when a batch is done the loop forgets those keys before any of the batch's
 * callbacks run, so no client is told of a change the cache does not know. A lookup started
 * before that may still bring back the old record: it takes a stamp (its key's stripe of
 * generation counters) when it is submitted, and its record is cached only if no batch
 * touching that stripe was done in between.
 *
 * Open files: a struct s3_fs_fh is a data file opened on the pool (and mapped, for mincore, on
 * kernels without cachestat), shared by the fd cache, objs, read jobs and the evbuffer file
 * segments that send from it; the last reference closes it on the pool. Data files never change
 * once committed and their ids are never reused, so an open file always holds the bytes its record
 * names, even after an overwrite unlinked it. Only files of records the record cache holds enter
 * the fd cache, and it forgets a file when a batch trashes it (after forgetting the record). */
#define S3_FS_CACHE_DEFAULT_BYTES (16u << 20)
#define S3_FS_CACHE_STRIPES       256u
#define S3_FS_FDS_MAX             64u
#define S3_FS_FDS_SLOTS           128u

struct s3_fs_crec {
    struct s3_fs_rec rec;
    unsigned char *head; /* bytes [0, head_len) of a file-backed object, read with the record */
    size_t head_len;
    bool head_read; /* by a lookup for a GET (head_len may still be 0) */
    unsigned refs;
    bool cached; /* linked below */
    uint64_t hash;
    char *ckey; /* bucket '\0' key */
    size_t ckey_len;
    size_t cost; /* bytes charged to the cache */
    struct s3_fs_crec *hnext, *prev, *next;
};

struct s3_fs_fh {
    struct s3_store *st;
    uint64_t id;
    int fd;
    uint64_t size; /* at open; data files never change */
    void *map;     /* PROT_READ view for mincore() where cachestat() is missing, else NULL */
    size_t map_len;
    unsigned refs;
    bool cached;
    struct s3_fs_fh *hnext, *prev, *next;
};

struct s3_fs_cache {
    size_t max_bytes;
    uint64_t seed; /* of the key hash */
    size_t bytes;
    size_t n;
    size_t n_slots;
    struct s3_fs_crec **slots;
    struct s3_fs_crec *head, *tail; /* most recently used first */
    uint32_t gens[S3_FS_CACHE_STRIPES];
    uint64_t hits, misses, inserts, stale; /* stale: lookups not cached (a commit raced) */
};

struct s3_fs_fds {
    size_t n;
    struct s3_fs_fh *slots[S3_FS_FDS_SLOTS];
    struct s3_fs_fh *head, *tail;
    uint64_t sendfile_bytes, touched_bytes; /* appended as file segments; read in by the pool */
};

/* Counters for tests and metrics. */
struct s3_fs_stats {
    atomic_uint_fast64_t commits;       /* LMDB write txns committed by the committer */
    atomic_uint_fast64_t ops_committed; /* ops in those txns */
};

struct s3_store {
    struct event_base *base;
    struct gw_pool *pool;
    struct gw_pool *fast_pool; /* one thread: index lookups and small reads, never syncs */
    char *data_dir;
    size_t inline_max_bytes;
    int64_t upload_max_age_ms;
    int lock_fd;
    int tmp_fd;     /* tmp/ */
    int objects_fd; /* objects/ */
    MDB_env *env;
    MDB_dbi db_buckets, db_objects, db_uploads, db_parts, db_meta, db_pending, db_trash;
    MDB_dbi db_outbox;
    MDB_dbi db_notif;
    atomic_uint_fast64_t next_id;  /* the next file id to hand out */
    atomic_uint_fast64_t next_seq; /* the next event seq or outbox id (write txns only) */
    atomic_uint_fast64_t outbox_n; /* records in `outbox` (counted at open, then at commits) */
    char source[33];               /* the outbox's identity (meta "source"), hex */
    uint64_t seq_at_open;          /* next_seq when the index was opened */
    struct {
        s3_event_hook_fn *fn; /* set before serving; called on pool threads */
        void *arg;
    } hook;
    struct {
        s3_outbox_map_fn *fn; /* set before serving; called on the read thread */
        void *arg;
    } outbox_map;
    struct s3_fs_pins pins;
    struct s3_fs_stats stats;
    struct {
        unsigned inflight; /* pool jobs submitted by the store whose done has not run */
        struct s3_fs_op *queue;
        struct s3_fs_op **queue_tail;
        bool committing;                  /* a batch is on the pool */
        struct s3_fs_ids cleared_pending; /* moved: drop from `pending` in the next txn */
        struct s3_fs_ids cleared_trash;   /* unlinked: drop from `trash` in the next txn */
        struct event *sweep_timer;
        bool sweep_queued;
        struct s3_fs_cache cache;
        struct s3_fs_fds fds;
        void (*on_outbox)(void *arg); /* after a batch that added outbox records */
        void *on_outbox_arg;
    } loop;
    struct {
        bool skip_publish; /* leave committed files in tmp/ (simulates a crash) */
        bool no_cachestat; /* ask mincore, as on kernels without cachestat */
        bool fail_batch;   /* the next txn of a batch of 2+ ops fails (its ops are retried) */
    } test;
};

/* ---- store_fs.c ---- */
/* gw_pool_submit, counted for s3_store_close(). s3_fs_submit_fast() uses the one-thread lane
 * for short read-only jobs (lookups, listings, first blocks), so they never queue behind a
 * sync and are batched by one thread instead of waking several. */
void s3_fs_submit_fast(struct s3_store *st, void (*work)(void *), void (*done)(void *), void *arg);
void s3_fs_submit(struct s3_store *st, void (*work)(void *), void (*done)(void *), void *arg);
/* cb(err, arg) from a later loop iteration. */
void s3_fs_defer_err(struct s3_store *st, s3_store_cb *cb, enum s3_err err, void *arg);
/* fn(arg) from a later loop iteration, counted like a pool job. */
void s3_fs_defer(struct s3_store *st, void (*fn)(void *), void *arg);
/* Queues `op` for the next group commit (loop thread). */
void s3_fs_commit(struct s3_store *st, struct s3_fs_op *op);
/* Takes `op` back out of the queue if no batch has taken it yet (true). */
bool s3_fs_commit_cancel(struct s3_store *st, struct s3_fs_op *op);
/* Queues a removal of the uploads older than upload_max_age_ms (the hourly timer's job). */
void s3_fs_sweep(struct s3_store *st);
/* Unlinks tmp/<id> on the pool (a file whose commit failed); id 0 is nothing. */
void s3_fs_discard_tmp(struct s3_store *st, uint64_t id);
int64_t s3_fs_now_ms(void);
enum s3_err s3_fs_check_bucket_name(const char *bucket);
enum s3_err s3_fs_check_key(const char *key);

/* ---- store_index.c: LMDB layout ---- */
int s3_fs_index_open(struct s3_store *st, size_t map_size, char *err, size_t err_cap);
/* Index key of bucket/key in `objects` (or of a bucket's first possible key when `key` is
 * NULL); `out` has room for S3_FS_IDX_KEY_MAX bytes. Returns the length. */
size_t s3_fs_obj_idx_key(unsigned char *out, const char *bucket, const void *key, size_t key_len);
/* 0 found, MDB_NOTFOUND, or an LMDB error. */
int s3_fs_bucket_exists(struct s3_store *st, MDB_txn *txn, const char *bucket);
int s3_fs_obj_get(struct s3_store *st, MDB_txn *txn, const char *bucket, const char *key,
                  struct s3_fs_rec *out);
/* Inserts or replaces; the replaced record's files are trashed when `trash_old` (not when
 * `rec` keeps them: a metadata-only copy onto itself). */
enum s3_err s3_fs_obj_put(struct s3_fs_wtxn *w, const char *bucket, const char *key,
                          const struct s3_fs_rec *rec, bool trash_old);
/* Removes (trashing its files); S3_OK when absent too, `*found` says which. */
enum s3_err s3_fs_obj_del(struct s3_fs_wtxn *w, const char *bucket, const char *key, bool *found);
/* Sets *any when some key of `dbi` starts with bucket '\0' (objects or uploads). */
int s3_fs_bucket_has_entries(MDB_txn *txn, MDB_dbi dbi, const char *bucket, bool *any);

/* Multipart records. */
struct s3_fs_upload {
    char *key;
    int64_t initiated_ms;
    struct s3_obj_meta meta; /* headers of the final object */
};
void s3_fs_upload_cleanup(struct s3_fs_upload *u);
size_t s3_fs_upload_idx_key(unsigned char *out, const char *bucket, const char *upload_id);
int s3_fs_upload_decode(const void *p, size_t len, struct s3_fs_upload *out);
void s3_fs_upload_encode(struct s3_fs_wbuf *b, const struct s3_fs_upload *u);
/* 0 found (u filled when non-NULL), MDB_NOTFOUND, or an LMDB error. */
int s3_fs_upload_get(struct s3_store *st, MDB_txn *txn, const char *bucket, const char *upload_id,
                     struct s3_fs_upload *u);
struct s3_fs_part {
    unsigned part_number;
    uint64_t size;
    int64_t mtime_ms;
    char etag[48];
    uint64_t file_id; /* 0: empty part, no file */
};
#define S3_FS_PART_KEY_LEN (S3_FS_UPLOAD_ID_LEN + 4)
void s3_fs_part_idx_key(unsigned char *out, const char *upload_id, unsigned part_number);
void s3_fs_part_encode(struct s3_fs_wbuf *b, const struct s3_fs_part *p);
int s3_fs_part_decode(const void *p, size_t len, struct s3_fs_part *out);
bool s3_fs_upload_id_valid(const char *upload_id);
/* Records a part of bucket/key's upload (S3_ERR_NO_SUCH_UPLOAD when it does not exist),
 * trashing the part it replaces; sets part->mtime_ms. Shared by UploadPart and part copy. */
enum s3_err s3_fs_part_commit(struct s3_fs_wtxn *w, const char *bucket, const char *key,
                              const char *upload_id, struct s3_fs_part *part);
/* Deletes an upload and all its parts, trashing the part files except those in `keep`. */
enum s3_err s3_fs_upload_remove(struct s3_fs_wtxn *w, const char *bucket, const char *upload_id,
                                const struct s3_fs_ids *keep);
/* Removes uploads initiated before `cutoff_ms` (all buckets). */
enum s3_err s3_fs_uploads_expire(struct s3_fs_wtxn *w, int64_t cutoff_ms, size_t *n_removed);

/* ---- store_file.c: data files ---- */
/* "xx/<id>" (under objects/) or "<id>" (under tmp/). */
void s3_fs_file_name(char out[S3_FS_NAME_LEN], uint64_t id, bool in_tmp);
uint64_t s3_fs_new_id(struct s3_store *st);
/* Creates tmp/<id> for writing; -1 with errno. */
int s3_fs_tmp_create(struct s3_store *st, uint64_t *id);
/* Opens a committed file wherever it is (tmp/ until moved, then objects/); -1 with errno. */
int s3_fs_file_open(struct s3_store *st, uint64_t id);
/* Unlinks a file wherever it is; 0 when gone (ENOENT counts as gone). */
int s3_fs_file_unlink(struct s3_store *st, uint64_t id);
/* Moves tmp/<id> into objects/ (ENOENT: already moved or unlinked). Adds the dir to fsync. */
int s3_fs_file_publish(struct s3_store *st, uint64_t id);
int s3_fs_fsync_obj_dir(struct s3_store *st, uint64_t id);
/* Removes every file in tmp/ (at open, after recovery). */
int s3_fs_tmp_clear(struct s3_store *st);
/* Copies `len` bytes from `in` at `off` to the end of `out` (copy_file_range, else read/write). */
int s3_fs_copy_range(int in, uint64_t off, int out, uint64_t len);
/* write(2) all of it. */
int s3_fs_write_all(int fd, const void *p, size_t n);

void s3_fs_pins_init(struct s3_fs_pins *p);
void s3_fs_pins_cleanup(struct s3_fs_pins *p);
void s3_fs_pins_add(struct s3_store *st, const struct s3_fs_loc *loc);
/* Drops a reader's pins; unlinks files whose unlink waited for it (pool thread). */
void s3_fs_pins_release(struct s3_store *st, const struct s3_fs_loc *loc);
/* Drops a reader's pins without touching the file system (any thread): the ids of files whose
 * unlink waited for it are appended to `doomed`, for the caller to unlink on the pool. */
void s3_fs_pins_drop(struct s3_store *st, const struct s3_fs_loc *loc, struct s3_fs_ids *doomed);
/* Unlinks `id` now (true), or when its last reader unpins (false; its trash entry then stays
 * until the next open). Pool thread. */
bool s3_fs_unlink_when_unpinned(struct s3_store *st, uint64_t id);

/* ---- store_fs.c: readers, shared by get, copy and part copy ---- */
/* Looks bucket/key up and pins its files so they outlive a concurrent overwrite or delete
 * (pool thread). With `pin` false the data is not pinned (HEAD). */
enum s3_err s3_fs_obj_open(struct s3_store *st, const char *bucket, const char *key, bool pin,
                           struct s3_fs_rec *out);
/* Reads [off, off+len) of a located object into `buf` (pool thread), keeping one segment open. */
struct s3_fs_reader {
    struct s3_store *st;
    const struct s3_fs_loc *loc;
    size_t cur_seg;     /* the segment `fd` belongs to */
    uint64_t cur_start; /* its offset in the object */
    int fd;             /* -1 until needed */
};
void s3_fs_reader_init(struct s3_fs_reader *rd, struct s3_store *st, const struct s3_fs_loc *loc);
int s3_fs_reader_pread(struct s3_fs_reader *rd, void *buf, size_t len, uint64_t off);
void s3_fs_reader_cleanup(struct s3_fs_reader *rd);

/* ---- store_cache.c: the loop's record cache and fd cache (loop thread unless said) ---- */
void s3_fs_cache_init(struct s3_store *st, size_t max_bytes);
/* Forgets everything (at close); records still held by objs live on until they are freed. */
void s3_fs_cache_cleanup(struct s3_store *st);
/* A new reference to the cached record of bucket/key, or NULL. */
struct s3_fs_crec *s3_fs_cache_get(struct s3_store *st, const char *bucket, const char *key);
/* Taken when a lookup of bucket/key is submitted. */
uint32_t s3_fs_cache_stamp(struct s3_store *st, const char *bucket, const char *key);
/* Wraps `rec` (taken over) into a record with one reference for the caller. */
struct s3_fs_crec *s3_fs_crec_new(struct s3_fs_rec *rec);
/* Caches `e` (complete, not cached yet; the cache takes its own reference) when no batch
 * touching bucket/key was done since `stamp` was taken, replacing bucket/key's record. */
void s3_fs_cache_put(struct s3_store *st, const char *bucket, const char *key, uint32_t stamp,
                     struct s3_fs_crec *e);
void s3_fs_crec_unref(struct s3_fs_crec *c); /* accepts NULL */
/* A batch is done (before its callbacks): forgets the records its ops touched and the open
 * files they trashed. */
void s3_fs_cache_batch_done(struct s3_store *st, struct s3_fs_op *ops);
void s3_fs_cache_forget(struct s3_store *st, const char *bucket, const char *key);
void s3_fs_cache_forget_bucket(struct s3_store *st, const char *bucket);

/* Opens and maps file `id` (pool thread); NULL with errno. One reference, for the caller. */
struct s3_fs_fh *s3_fs_fh_open(struct s3_store *st, uint64_t id);
/* Pool thread: closes and frees an open file the loop never saw. Accepts NULL. */
void s3_fs_fh_close(struct s3_fs_fh *fh);
void s3_fs_fh_ref(struct s3_fs_fh *fh);
/* The last reference closes the file on the pool. Accepts NULL. */
void s3_fs_fh_unref(struct s3_fs_fh *fh);
/* Whether bytes [off, off+len) are in the page cache (cachestat, or mincore on the mapping:
 * no I/O, any thread). A page may still be evicted before it is sent: that costs the loop a
 * wait for the disk, not an error. */
bool s3_fs_fh_resident(const struct s3_fs_fh *fh, uint64_t off, size_t len);
/* Pool thread: brings [off, off+len) into the page cache (readahead, then reads it). */
int s3_fs_fh_make_resident(struct s3_fs_fh *fh, uint64_t off, size_t len);
/* A new reference to the cached open file `id`, or NULL. */
struct s3_fs_fh *s3_fs_fds_get(struct s3_store *st, uint64_t id);
/* Caches `fh` (the cache takes its own reference; nothing if it holds that file already).
 * Only for a file of a record the record cache holds (crec->cached): such a file is not
 * trashed, since a batch forgets the records it touches before it forgets the files it
 * trashes, and an unlinked file must not stay open in the cache. */
void s3_fs_fds_put(struct s3_store *st, struct s3_fs_fh *fh);
void s3_fs_fds_forget(struct s3_store *st, uint64_t id);

/* Test hooks. */
const struct s3_fs_stats *s3_fs_store_stats(const struct s3_store *st);

#endif
