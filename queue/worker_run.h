/* floodgate-worker's process runner: runs a job's script in a temp dir with a clean
 * environment, in its own process group, with a wall-clock limit, and captures stdout and
 * stderr into capped buffers. Private to queue/worker*.c (and its unit test); knows nothing of
 * Redis or S3. */
#ifndef FG_QUEUE_WORKER_RUN_H
#define FG_QUEUE_WORKER_RUN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- capped capture ------------------------------------------------------------------------
 * Keeps at most max_bytes of a stream: the first half as it came, and the last half in a
 * ring, so a script writing gigabytes costs bounded memory and is never blocked. */
struct worker_capbuf {
    size_t head_cap, tail_cap;
    char *head;
    size_t head_len;
    char *tail;      /* ring of tail_cap bytes, allocated once the head is full */
    size_t tail_pos; /* where the oldest byte of the ring is */
    size_t tail_len;
    uint64_t total; /* bytes appended */
};
void worker_capbuf_init(struct worker_capbuf *b, size_t max_bytes);
void worker_capbuf_append(struct worker_capbuf *b, const void *p, size_t n);
/* The kept bytes, malloc'd and NUL-terminated (len excludes the NUL): everything when it fit,
 * else the head, a "[... N bytes cut ...]" line, and the tail. Empties the buffer. */
char *worker_capbuf_take(struct worker_capbuf *b, size_t *len);
void worker_capbuf_cleanup(struct worker_capbuf *b); /* accepts a zeroed buffer */

/* ---- environment ---------------------------------------------------------------------------
 * A NULL-terminated "NAME=value" array built from scratch (nothing is inherited). */
struct worker_env {
    char **vars; /* always NULL-terminated after init */
    size_t n, cap;
};
void worker_env_init(struct worker_env *e);
/* Sets or replaces NAME. Names that are empty or hold '=' are ignored (-1). */
int worker_env_set(struct worker_env *e, const char *name, const char *value);
const char *worker_env_get(const struct worker_env *e, const char *name);
void worker_env_cleanup(struct worker_env *e);

/* What OSCAR's contract gives a script (see DESIGN.md "Functions, pools and the continuum"). */
struct worker_contract {
    const char *path;       /* PATH; NULL: "/usr/local/bin:/usr/bin:/bin" */
    const char *tmp_dir;    /* HOME and the working directory */
    const char *input_dir;  /* TMP_INPUT_DIR */
    const char *output_dir; /* TMP_OUTPUT_DIR */
    const char *input_file; /* INPUT_FILE_PATH ("" when the job has no input) */
    const char *object_key; /* STORAGE_OBJECT_KEY ("" none) */
    const char *event_json; /* EVENT */
    uint64_t event_ms;      /* EVENT_TIME, as ISO 8601 UTC with milliseconds */
    const char *job_id;     /* JOB_UUID and JOB_NAME */
    const char *service;    /* SERVICE_NAME */
    /* the service's environment.variables then environment.secrets, as pairs */
    const char *const *extra_names;
    const char *const *extra_values;
    size_t n_extra;
};
/* Fills `e` (initialised) with PATH, HOME, LANG=C.UTF-8, then the service's variables (which
 * may override those three), then the contract's variables (which nothing overrides). */
void worker_env_contract(struct worker_env *e, const struct worker_contract *c);
/* "2024-05-01T12:34:56.789Z" into out (at least 25 bytes). */
void worker_iso8601_ms(uint64_t ms, char *out, size_t cap);

/* ---- running ------------------------------------------------------------------------------- */
enum worker_run_end {
    WORKER_RUN_EXITED,    /* code = exit status */
    WORKER_RUN_SIGNALED,  /* code = signal number */
    WORKER_RUN_TIMED_OUT, /* the group was killed at the limit */
    WORKER_RUN_CANCELLED, /* the group was killed because *cancel became non-zero */
    WORKER_RUN_FAILED,    /* the script could not be started; reason says why */
};

struct worker_run_spec {
    const char *dir;          /* the job's temp dir: cwd, and where script.sh is written */
    const char *script_text;  /* run with /bin/sh; one starting "#!" with the interpreter
                                 its first line names, given the file's path, as the kernel
                                 would (the file itself is never exec'd) */
    char *const *envp;        /* the whole environment */
    unsigned timeout_s;       /* 0: no limit */
    size_t log_max_bytes;     /* cap of the log (stdout and stderr) and of stdout alone */
    const atomic_int *cancel; /* polled every 100 ms; NULL: none */
};

struct worker_run_result {
    enum worker_run_end end;
    int code;
    char reason[128]; /* "exit status 3", "killed by signal 9", "timed out after 5s", ... */
    char *log;        /* stdout and stderr interleaved as they came, capped; malloc'd */
    size_t log_len;
    char *out; /* stdout alone, capped; malloc'd */
    size_t out_len;
    uint64_t ms; /* wall-clock run time */
};

/* Runs the script and waits for it: a new session (setsid) so the whole group can be killed,
 * stdin from /dev/null, every other fd closed. The group is SIGKILLed at the timeout, on
 * cancel, and also once the main process has exited, so background children never outlive
 * the job. Safe to call from several threads at once. Returns 0 with `res` filled (check
 * res->end), or -1 when the script could not even be written (res->reason says why); either
 * way release `res` with worker_run_result_cleanup(). */
int worker_run(const struct worker_run_spec *spec, struct worker_run_result *res);
void worker_run_result_cleanup(struct worker_run_result *res);

#endif
