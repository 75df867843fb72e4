/* floodgate-worker: one attempt of one job, from qk_start to qk_finish. Reads the service and
 * takes a unit of its concurrency (or hands the job back), makes the temp dir, fetches the
 * input (S3 object or P in:{id}), runs the script (worker_run.c), uploads the outputs on exit
 * 0, decides succeeded / failed (retry later) / dead, and writes the worker's own lines into
 * the job log by the service's log_level. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "gateway/xmalloc.h"
#include "queue/worker.h"
#include "queue/worker_run.h"

#define RETRY_BASE_MS    1000
#define RETRY_MAX_MS     60000
#define MAX_OUTPUT_FILES 100000
/* The worker's lines take at most an eighth of log_max_bytes, and at most this; the script's
 * log gets the rest, so the whole log stays within the cap. */
#define NOTES_MAX_BYTES  (16u << 10)
#define NOTE_MAX_LINE    2048
#define NOTE_CUT_RESERVE 64 /* room kept for the "N more lines cut" line */
#define NOTE_PREFIX      "[floodgate-worker] "

/* The worker's lines in the job log: `pre` goes before the script's log, `post` after. */
struct notes {
    enum worker_log_level level;
    char *pre, *post;
    size_t pre_len, post_len;
    size_t left;  /* bytes the budget still allows */
    size_t n_cut; /* lines dropped for want of budget */
};

struct attempt {
    struct worker_slot *s;
    const struct worker_job *job;
    struct worker_service *svc;
    bool svc_read;                  /* svc_res and svc_msg hold the lookup made before start */
    enum worker_svc_result svc_res; /* the service lookup's result */
    char svc_msg[256];
    bool limit_taken; /* holds a unit of the service's concurrency */
    struct notes notes;
    size_t script_log_max; /* log_max_bytes less the notes' budget */
    uint64_t download_ms, upload_ms;
    char tmp[PATH_MAX];
    char in_dir[PATH_MAX];
    char out_dir[PATH_MAX];
    char input_file[PATH_MAX];
    struct worker_run_result run;
    bool ran;       /* run holds a result */
    bool ok;        /* everything succeeded */
    bool fatal;     /* no point retrying */
    bool cancelled; /* the worker hard-stopped: leave the entry for reclaim */
    char exit_code[16];
    char reason[256];
};

static void fail(struct attempt *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct attempt *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof(a->reason), fmt, ap);
    va_end(ap);
    a->ok = false;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the worker's lines in the job log ----------------------------------------------------- */

/* Sets the level and carves the notes' budget out of the log cap. */
static void notes_init(struct attempt *a)
{
    struct notes *n = &a->notes;
    size_t log_max = (size_t)atomic_load(&a->s->w->log_max_bytes);
    size_t budget = 0;
    n->level = a->svc != NULL ? a->svc->log_level : WORKER_LOG_INFO;
    if (n->level >= WORKER_LOG_INFO) { /* below INFO only the failure line, as ever */
        budget = log_max / 8 < NOTES_MAX_BYTES ? log_max / 8 : NOTES_MAX_BYTES;
        n->left = budget > NOTE_CUT_RESERVE ? budget - NOTE_CUT_RESERVE : 0;
    }
    a->script_log_max = log_max - budget;
}

static void notes_cleanup(struct notes *n)
{
    free(n->pre);
    free(n->post);
}

static void note(struct attempt *a, bool after, enum worker_log_level min, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One line, when the service's level shows `min`; `after`: after the script's log. */
static void note(struct attempt *a, bool after, enum worker_log_level min, const char *fmt, ...)
{
    struct notes *n = &a->notes;
    char line[NOTE_MAX_LINE];
    if (n->level < min)
        return;
    size_t len = sizeof(NOTE_PREFIX) - 1;
    memcpy(line, NOTE_PREFIX, len);
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    va_end(ap);
    if (k < 0)
        return;
    len += (size_t)k;
    if (len > sizeof(line) - 2) { /* cut: end with "...\n" */
        len = sizeof(line) - 5;
        line[len++] = '.';
        line[len++] = '.';
        line[len++] = '.';
    }
    line[len++] = '\n';
    if (len > n->left) {
        n->n_cut++;
        return;
    }
    n->left -= len;
    char **buf = after ? &n->post : &n->pre;
    size_t *used = after ? &n->post_len : &n->pre_len;
    *buf = xrealloc(*buf, *used + len);
    memcpy(*buf + *used, line, len);
    *used += len;
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* ---- temp dir ------------------------------------------------------------------------------ */

static int on_chmod_dir(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_D || type == FTW_DNR)
        chmod(path, 0700); /* a script may have left a directory we cannot empty */
    return 0;
}

static int on_remove(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        log_debug(&worker_log, "cannot remove %s: %m", path);
    return 0;
}

/* The thorough way: any depth (nftw reopens directories as needed), every directory made
 * writable first. */
static void remove_tree_walk(const char *dir)
{
    nftw(dir, on_chmod_dir, 16, FTW_PHYS | FTW_MOUNT);
    nftw(dir, on_remove, 16, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
}

/* Deeper trees are left to remove_tree_walk (each level holds a descriptor here). */
#define REMOVE_MAX_DEPTH 32

static int remove_dir_at(int parent, const char *name, dev_t dev, int depth);

/* Removes the entries of the open directory fd (one pass). -1 when some remain. */
static int remove_entries(int fd, DIR *d, dev_t dev, int depth)
{
    struct dirent *de;
    bool made_writable = false;
    int ret = 0;
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
            continue;
        for (;;) {
            int r =
                de->d_type == DT_DIR ? remove_dir_at(fd, n, dev, depth + 1) : unlinkat(fd, n, 0);
            if (r == 0 || errno == ENOENT)
                break;
            if (de->d_type == DT_UNKNOWN && errno == EISDIR) {
                de->d_type = DT_DIR;
                continue;
            }
            if (errno == EACCES && !made_writable) { /* a script may leave a dir read-only */
                made_writable = true;
                if (fchmod(fd, 0700) == 0)
                    continue;
            }
            ret = -1;
            break;
        }
    }
    return ret;
}

/* Removes the directory `name` of `parent` and everything in it, on file system `dev` only
 * (0: the directory's own). 0, or -1 when something is left. */
static int remove_dir_at(int parent, const char *name, dev_t dev, int depth)
{
    struct stat st;
    if (depth > REMOVE_MAX_DEPTH) {
        errno = ELOOP;
        return -1;
    }
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && fchmodat(parent, name, 0700, AT_SYMLINK_NOFOLLOW) == 0)
        fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || (dev != 0 && st.st_dev != dev)) {
        close(fd); /* something mounted there: not ours to empty */
        errno = EXDEV;
        return -1;
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    int ret = remove_entries(fd, d, st.st_dev, depth);
    if (ret == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0) {
        ret = -1;
        if (errno == ENOTEMPTY) {
            /* readdir may miss entries while the directory changes under it: once more */
            rewinddir(d);
            ret = remove_entries(fd, d, st.st_dev, depth);
            if (ret == 0 && unlinkat(parent, name, AT_REMOVEDIR) != 0)
                ret = -1;
        }
    }
    int e = errno; /* the caller looks at why (EACCES: it makes `parent` writable) */
    closedir(d);
    errno = e;
    return ret;
}

/* The job's temp dir, with what the script left: by descriptors, no walk of paths and no
 * chmod unless a removal is refused (each is a metadata write), then the thorough way for
 * whatever that left. */
static void remove_tree(const char *dir)
{
    if (remove_dir_at(AT_FDCWD, dir, 0, 0) == 0)
        return;
    remove_tree_walk(dir);
    if (access(dir, F_OK) == 0)
        log_warn(&worker_log, "could not remove all of %s", dir);
}

/* dir/name into out; -1 when it does not fit. */
static int join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int make_dirs(struct attempt *a)
{
    const struct worker *w = a->s->w;
    const char *base = w->cfg.work_dir;
    if (base == NULL || base[0] == '\0')
        base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if ((size_t)snprintf(a->tmp, sizeof(a->tmp), "%s/fg-job-XXXXXX", base) >= sizeof(a->tmp) - 16 ||
        mkdtemp(a->tmp) == NULL) {
        a->tmp[0] = '\0';
        fail(a, "cannot create a temp dir in %s: %s", base, strerror(errno));
        return -1;
    }
    /* the checks above leave room for both names */
    if (join(a->in_dir, sizeof(a->in_dir), a->tmp, "input") != 0 ||
        join(a->out_dir, sizeof(a->out_dir), a->tmp, "output") != 0 ||
        mkdir(a->in_dir, 0700) != 0 || mkdir(a->out_dir, 0700) != 0) {
        fail(a, "cannot create %s/input and output: %s", a->tmp, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- input --------------------------------------------------------------------------------- */

/* A file name from untrusted text: the part after the last '/', or `fallback` when that is
 * empty, "." or "..", or too long for a file name. */
static const char *safe_name(const char *s, const char *fallback)
{
    const char *slash = strrchr(s, '/');
    const char *name = slash != NULL ? slash + 1 : s;
    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) > 200)
        return fallback;
    return name;
}

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}

static int fetch_payload(struct attempt *a)
{
    char key[512];
    const struct worker_job *job = a->job;
    if (join(a->input_file, sizeof(a->input_file), a->in_dir, safe_name(job->id, "input")) != 0) {
        fail(a, "input path too long");
        return -1;
    }
    worker_key(a->s->w, key, sizeof(key), "in:", job->id);
    const char *argv[] = {"GET", key};
    redisReply *rep = worker_redis_cmd(&a->s->redis, 2, argv, NULL);
    int ret = -1;
    if (rep == NULL)
        fail(a, "reading the payload: Redis unavailable");
    else if (rep->type == REDIS_REPLY_NIL)
        fail(a, "input not found");
    else if (rep->type != REDIS_REPLY_STRING)
        fail(a, "reading the payload: %s", rep->type == REDIS_REPLY_ERROR ? rep->str : "bad type");
    else if (write_file(a->input_file, rep->str, rep->len) != 0)
        fail(a, "writing the payload: %s", strerror(errno));
    else
        ret = 0;
    if (ret == 0)
        note(a, false, WORKER_LOG_INFO, "input: the job's payload, %zu bytes", rep->len);
    if (rep != NULL)
        freeReplyObject(rep);
    return ret;
}

static int fetch_input(struct attempt *a)
{
    const struct worker_job *job = a->job;
    char msg[512];
    if (job->payload)
        return fetch_payload(a);
    if (job->bucket[0] == '\0' || job->key[0] == '\0') {
        a->input_file[0] = '\0'; /* a job without input */
        note(a, false, WORKER_LOG_INFO, "no input");
        return 0;
    }
    if (join(a->input_file, sizeof(a->input_file), a->in_dir,
             safe_name(job->key, safe_name(job->id, "input"))) != 0) {
        fail(a, "input path too long");
        return -1;
    }
    switch (worker_s3_get(a->s->curl, &a->s->w->s3, job->bucket, job->key, a->input_file,
                          &a->s->w->hard, msg, sizeof(msg))) {
    case WORKER_S3_OK:
        note(a, false, WORKER_LOG_INFO, "input %s/%s: %lld bytes", job->bucket, job->key,
             file_size(a->input_file));
        return 0;
    case WORKER_S3_NOT_FOUND:
        fail(a, "input not found");
        log_info(&worker_log, "job %s: %s", job->id, msg);
        return -1;
    case WORKER_S3_FAILED:
        break;
    }
    fail(a, "download failed: %s", msg);
    return -1;
}

/* ---- running ------------------------------------------------------------------------------- */

/* DEBUG: the names the script's environment holds; never their values (secrets are there). */
static void note_env_names(struct attempt *a, const struct worker_env *env)
{
    char names[NOTE_MAX_LINE];
    size_t len = 0;
    if (a->notes.level < WORKER_LOG_DEBUG)
        return;
    names[0] = '\0';
    for (size_t i = 0; i < env->n && len < sizeof(names); i++) {
        const char *eq = strchr(env->vars[i], '=');
        int n = (int)(eq != NULL ? eq - env->vars[i] : (ptrdiff_t)strlen(env->vars[i]));
        int k = snprintf(names + len, sizeof(names) - len, "%s%.*s", len > 0 ? " " : "", n,
                         env->vars[i]);
        if (k < 0)
            break;
        len += (size_t)k;
    }
    note(a, false, WORKER_LOG_DEBUG, "environment: %s", names);
}

static void run_script(struct attempt *a)
{
    struct worker *w = a->s->w;
    const struct worker_job *job = a->job;
    struct worker_env env;
    struct worker_contract c = {
        .path = w->path_env,
        .tmp_dir = a->tmp,
        .input_dir = a->in_dir,
        .output_dir = a->out_dir,
        .input_file = a->input_file,
        .object_key = job->key,
        .event_json = job->event,
        .event_ms = job->created_ms != 0 ? job->created_ms : worker_now_ms(),
        .job_id = job->id,
        .service = job->service,
        .extra_names = (const char *const *)a->svc->env_names,
        .extra_values = (const char *const *)a->svc->env_values,
        .n_extra = a->svc->n_env,
    };
    worker_env_init(&env);
    worker_env_contract(&env, &c);
    note_env_names(a, &env);
    struct worker_run_spec spec = {
        .dir = a->tmp,
        .script_text = a->svc->script_text,
        .envp = env.vars,
        .timeout_s = a->svc->timeout_s,
        .log_max_bytes = a->script_log_max,
        .cancel = &w->hard,
    };
    worker_run(&spec, &a->run);
    worker_env_cleanup(&env);
    if (a->run.end != WORKER_RUN_CANCELLED)
        note(a, true, WORKER_LOG_INFO, "%s after %" PRIu64 " ms", a->run.reason, a->run.ms);
    a->ran = true;
    a->ok = false;
    switch (a->run.end) {
    case WORKER_RUN_EXITED:
        snprintf(a->exit_code, sizeof(a->exit_code), "%d", a->run.code);
        a->ok = a->run.code == 0;
        break;
    case WORKER_RUN_SIGNALED:
        snprintf(a->exit_code, sizeof(a->exit_code), "%d", 128 + a->run.code);
        break;
    case WORKER_RUN_CANCELLED:
        a->cancelled = true;
        break;
    case WORKER_RUN_TIMED_OUT:
    case WORKER_RUN_FAILED:
        break;
    }
    if (!a->ok)
        snprintf(a->reason, sizeof(a->reason), "%s", a->run.reason);
    log_debug(&worker_log, "job %s: script ended in %" PRIu64 " ms: %s", job->id, a->run.ms,
              a->run.reason);
}

/* ---- outputs ------------------------------------------------------------------------------- */

struct file_list {
    char **rel; /* paths relative to the output dir */
    size_t n, cap;
    size_t base_len;
    bool truncated;
};

/* nftw has no user argument; one walk per thread at a time. */
static _Thread_local struct file_list *walk_list;

static int on_output_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    struct file_list *l = walk_list;
    /* regular files only: a symlink could point anywhere on the worker's host */
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    if (l->n >= MAX_OUTPUT_FILES) {
        l->truncated = true;
        return 1; /* stops the walk */
    }
    if (l->n == l->cap) {
        l->cap = l->cap == 0 ? 16 : l->cap * 2;
        l->rel = xrealloc(l->rel, l->cap * sizeof(char *));
    }
    l->rel[l->n++] = xstrdup(path + l->base_len + 1);
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void upload_outputs(struct attempt *a)
{
    struct worker *w = a->s->w;
    struct file_list l = {.base_len = strlen(a->out_dir)};
    char path[PATH_MAX], msg[512];
    size_t n_put = 0;

    walk_list = &l;
    nftw(a->out_dir, on_output_file, 16, FTW_PHYS | FTW_MOUNT);
    walk_list = NULL;
    if (l.truncated) {
        fail(a, "more than %d output files", MAX_OUTPUT_FILES);
        goto out;
    }
    if (l.n > 1)
        qsort(l.rel, l.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < l.n && a->ok; i++) {
        if (join(path, sizeof(path), a->out_dir, l.rel[i]) != 0) {
            fail(a, "output path too long: %.100s", l.rel[i]);
            break;
        }
        for (size_t j = 0; j < a->svc->n_outputs && a->ok; j++) {
            const struct worker_output *o = &a->svc->outputs[j];
            if (!worker_output_matches(o, l.rel[i]))
                continue;
            char *key = xasprintf("%s%s", o->key_prefix, l.rel[i]);
            if (worker_s3_put(a->s->curl, &w->s3, o->bucket, key, path, &w->hard, msg,
                              sizeof(msg)) != WORKER_S3_OK) {
                fail(a, "upload failed: %s", msg);
                a->cancelled = atomic_load(&w->hard) != 0;
            } else {
                n_put++;
                note(a, true, WORKER_LOG_INFO, "output %s/%s: %lld bytes", o->bucket, key,
                     file_size(path));
            }
            free(key);
        }
    }
    if (a->ok)
        log_debug(&worker_log, "job %s: %zu output files, %zu uploads", a->job->id, l.n, n_put);
out:
    for (size_t i = 0; i < l.n; i++)
        free(l.rel[i]);
    free(l.rel);
}

static bool check_providers(struct attempt *a)
{
    for (size_t i = 0; i < a->svc->n_outputs; i++) {
        if (!worker_output_is_local(&a->svc->outputs[i])) {
            fail(a, "unknown storage provider %s", a->svc->outputs[i].provider);
            return false;
        }
    }
    return true;
}

/* ---- one attempt --------------------------------------------------------------------------- */

static void attempt_run(struct attempt *a)
{
    struct worker_slot *s = a->s;
    const struct worker_job *job = a->job;

    if (!a->svc_read) /* the record had no service before the start */
        a->svc_res = worker_services_get(s->w->services, &s->redis, job->service, job->rev, &a->svc,
                                         a->svc_msg, sizeof(a->svc_msg));
    notes_init(a);
    note(a, false, WORKER_LOG_INFO, "attempt %u of %u of job %s, worker %s %s", job->attempts,
         job->max_attempts, job->id, s->w->id, s->name);
    if (job->attempts > job->max_attempts) {
        /* every earlier attempt ended with its worker (reclaimed each time) */
        fail(a, "gave up after %u attempts (workers lost)", job->attempts - 1);
        a->fatal = true;
        return;
    }
    switch (a->svc_res) {
    case WORKER_SVC_OK:
        break;
    case WORKER_SVC_UNKNOWN:
        fail(a, "unknown service");
        a->fatal = true;
        return;
    case WORKER_SVC_ERROR:
        fail(a, "reading the service: %s", a->svc_msg);
        return;
    }
    uint64_t t0 = mono_ms();
    if (!check_providers(a) || make_dirs(a) != 0 || fetch_input(a) != 0) {
        a->cancelled = atomic_load(&s->w->hard) != 0;
        return;
    }
    a->download_ms = mono_ms() - t0;
    run_script(a);
    if (a->ok && a->svc->n_outputs > 0) {
        t0 = mono_ms();
        upload_outputs(a);
        a->upload_ms = mono_ms() - t0;
    }
    note(a, true, WORKER_LOG_DEBUG,
         "timings: download %" PRIu64 " ms, run %" PRIu64 " ms, upload %" PRIu64 " ms",
         a->download_ms, a->ran ? a->run.ms : 0, a->upload_ms);
}

static void append(char *dst, size_t *len, const char *src, size_t n)
{
    if (n > 0)
        memcpy(dst + *len, src, n);
    *len += n;
}

/* The job log: the worker's lines before, the script's log, the worker's lines after, and a
 * line saying why the attempt failed. Byte copies only: the script's log may hold NULs. */
static void make_log(struct attempt *a, struct worker_outcome *o)
{
    const struct notes *n = &a->notes;
    const char *log = a->ran ? a->run.log : "";
    size_t len = a->ran ? a->run.log_len : 0;
    if (a->ok && n->pre_len == 0 && n->post_len == 0 && n->n_cut == 0 && a->ran) {
        o->log = a->run.log; /* taken over */
        o->log_len = len;
        a->run.log = NULL;
        return;
    }
    const char *sep = len > 0 && log[len - 1] != '\n' ? "\n" : "";
    char cut[NOTE_CUT_RESERVE] = "", why[400] = "";
    int n_cut = 0, n_why = 0;
    if (n->n_cut > 0)
        n_cut = snprintf(cut, sizeof(cut), NOTE_PREFIX "%zu more lines cut\n", n->n_cut);
    if (!a->ok)
        n_why = snprintf(why, sizeof(why), NOTE_PREFIX "attempt %u of %u: %s\n", a->job->attempts,
                         a->job->max_attempts, a->reason);
    if (n_cut < 0 || (size_t)n_cut >= sizeof(cut))
        n_cut = (int)strlen(cut);
    if (n_why < 0 || (size_t)n_why >= sizeof(why))
        n_why = (int)strlen(why);
    o->log = xmalloc(n->pre_len + len + 1 + n->post_len + (size_t)n_cut + (size_t)n_why + 1);
    o->log_len = 0;
    append(o->log, &o->log_len, n->pre, n->pre_len);
    append(o->log, &o->log_len, log, len);
    append(o->log, &o->log_len, sep, strlen(sep));
    append(o->log, &o->log_len, n->post, n->post_len);
    append(o->log, &o->log_len, cut, (size_t)n_cut);
    append(o->log, &o->log_len, why, (size_t)n_why);
    o->log[o->log_len] = '\0';
}

static uint64_t next_rand(struct worker_slot *s)
{
    /* xorshift64: jitter only */
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static void decide(struct attempt *a, struct worker_outcome *o)
{
    const struct worker_job *job = a->job;
    snprintf(o->exit_code, sizeof(o->exit_code), "%s", a->exit_code);
    snprintf(o->reason, sizeof(o->reason), "%s", a->ok ? "" : a->reason);
    make_log(a, o);
    if (a->ran && a->ok && job->sync) { /* stdout is kept for POST /run only */
        o->out = a->run.out;
        o->out_len = a->run.out_len;
        a->run.out = NULL;
    }
    if (a->ok) {
        o->status = "succeeded";
    } else if (!a->fatal && job->attempts < job->max_attempts) {
        unsigned shift = job->attempts > 0 ? job->attempts - 1 : 0;
        uint64_t delay = shift >= 6 ? RETRY_MAX_MS : (uint64_t)RETRY_BASE_MS << shift;
        if (delay > RETRY_MAX_MS)
            delay = RETRY_MAX_MS;
        delay += next_rand(a->s) % (delay / 10 + 1); /* up to 10% more, so retries spread */
        o->status = "failed";
        o->retry_due_ms = worker_now_ms() + delay;
    } else {
        o->status = "dead";
    }
}

/* Before qk_start: reads the job's service and takes a unit of its concurrency, waiting a
 * little; hands the job back when none comes (worker.h). true: start it; false: it was handed
 * back or left (the slot is done with it). */
static bool admit(struct worker_slot *s, const struct worker_entry *e, struct attempt *a)
{
    struct worker *w = s->w;
    char service[128], rev[64];
    enum worker_peek_result p;

    while ((p = worker_peek(s, e, service, sizeof(service), rev, sizeof(rev))) ==
           WORKER_PEEK_DOWN) {
        if (atomic_load(&w->stopping)) { /* not started: reclaimed after the timeout */
            worker_unhold(s, e);
            return false;
        }
        worker_sleep_ms(w, 500, false);
    }
    if (p == WORKER_PEEK_GONE)
        return true; /* worker_start acks a job that is gone */
    a->svc_read = true;
    a->svc_res = worker_services_get(w->services, &s->redis, service, rev, &a->svc, a->svc_msg,
                                     sizeof(a->svc_msg));
    if (a->svc_res != WORKER_SVC_OK)
        return true; /* the attempt fails with the reason */
    if (worker_limits_acquire(w->limits, a->svc->name, a->svc->concurrency, WORKER_LIMIT_WAIT_MS,
                              &w->stopping)) {
        a->limit_taken = true;
        return true;
    }
    log_debug(&worker_log, "%s: service %s is at its concurrency (%u) here; job %s handed back",
              s->name, a->svc->name, a->svc->concurrency, e->job_id);
    worker_hand_back(s, e);
    return false;
}

void worker_job_handle(struct worker_slot *s, const struct worker_entry *e)
{
    struct worker *w = s->w;
    struct worker_job job = {0};
    struct attempt a = {.s = s, .job = &job};
    enum worker_start_result st = WORKER_START_SKIP;

    if (!admit(s, e, &a))
        goto out;
    while ((st = worker_start(s, e, &job)) == WORKER_START_DOWN) {
        /* not started: nothing to lose by leaving it pending for a reclaim */
        if (atomic_load(&w->stopping)) {
            worker_unhold(s, e);
            goto out;
        }
        worker_sleep_ms(w, 500, false);
    }
    if (st == WORKER_START_SKIP)
        goto out;

    atomic_store(&s->running, true);
    a.ok = true;
    log_info(&worker_log, "%s: job %s (%s) attempt %u of %u", s->name, job.id, job.service,
             job.attempts, job.max_attempts);
    attempt_run(&a);
    if (a.tmp[0] != '\0')
        remove_tree(a.tmp);
    if (a.cancelled) {
        log_warn(&worker_log, "%s: job %s interrupted; left for another worker", s->name, job.id);
        worker_unhold(s, e);
    } else {
        struct worker_outcome o = {0};
        decide(&a, &o);
        if (a.ok)
            log_info(&worker_log, "%s: job %s succeeded", s->name, job.id);
        else
            log_info(&worker_log, "%s: job %s %s: %s", s->name, job.id, o.status, o.reason);
        if (worker_finish(s, e, &job, &o) == 0) {
            if (a.ok)
                atomic_fetch_add(&w->n_done, 1);
            else
                atomic_fetch_add(&w->n_failed, 1);
        }
        free(o.log);
        free(o.out);
    }
    if (a.ran)
        worker_run_result_cleanup(&a.run);
    atomic_store(&s->running, false);
out:
    if (a.limit_taken) /* after qk_finish: the record no longer says running */
        worker_limits_release(w->limits, a.svc->name);
    notes_cleanup(&a.notes);
    worker_services_release(w->services, a.svc);
    worker_job_cleanup(&job);
}
