/* floodgate-worker's job runner (queue/worker_job.c, included to reach its static functions):
 * removing a job's temp dir whatever the script left in it (read-only and unreadable dirs,
 * symlinks that must not be followed, trees deeper than the descriptor-based walk goes).
 * What worker_job.c calls in other files is stubbed below; none of it runs here. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/worker_job.c"
#include "tests/unit/tap.h"

/* ---- stubs --------------------------------------------------------------------------------- */

struct log_ctx worker_log = {.module = "worker"};

uint64_t worker_now_ms(void)
{
    return 0;
}
void worker_sleep_ms(struct worker *w, unsigned ms, bool hard)
{
    (void)w, (void)ms, (void)hard;
}
char *worker_key(const struct worker *w, char *buf, size_t cap, const char *kind, const char *name)
{
    (void)w, (void)kind, (void)name;
    snprintf(buf, cap, "stub");
    return buf;
}
redisReply *worker_redis_cmd(struct worker_redis *r, int argc, const char **argv,
                             const size_t *lens)
{
    (void)r, (void)argc, (void)argv, (void)lens;
    return NULL;
}
enum worker_svc_result worker_services_get(struct worker_services *cache, struct worker_redis *r,
                                           const char *name, const char *rev,
                                           struct worker_service **out, char *msg, size_t msg_cap)
{
    (void)cache, (void)r, (void)name, (void)rev, (void)msg, (void)msg_cap;
    *out = NULL;
    return WORKER_SVC_ERROR;
}
void worker_services_release(struct worker_services *cache, struct worker_service *svc)
{
    (void)cache, (void)svc;
}
bool worker_output_matches(const struct worker_output *o, const char *rel_path)
{
    (void)o, (void)rel_path;
    return false;
}
bool worker_output_is_local(const struct worker_output *o)
{
    (void)o;
    return true;
}
bool worker_limits_acquire(struct worker_limits *l, const char *service, unsigned max,
                           unsigned wait_ms, const atomic_int *stop)
{
    (void)l, (void)service, (void)max, (void)wait_ms, (void)stop;
    return true;
}
void worker_limits_release(struct worker_limits *l, const char *service)
{
    (void)l, (void)service;
}
enum worker_s3_result worker_s3_get(CURL *c, const struct worker_s3 *s3, const char *bucket,
                                    const char *key, const char *path, const atomic_int *cancel,
                                    char *msg, size_t msg_cap)
{
    (void)c, (void)s3, (void)bucket, (void)key, (void)path, (void)cancel, (void)msg, (void)msg_cap;
    return WORKER_S3_FAILED;
}
enum worker_s3_result worker_s3_put(CURL *c, const struct worker_s3 *s3, const char *bucket,
                                    const char *key, const char *path, const atomic_int *cancel,
                                    char *msg, size_t msg_cap)
{
    (void)c, (void)s3, (void)bucket, (void)key, (void)path, (void)cancel, (void)msg, (void)msg_cap;
    return WORKER_S3_FAILED;
}
void worker_unhold(struct worker_slot *s, const struct worker_entry *e)
{
    (void)s, (void)e;
}
enum worker_peek_result worker_peek(struct worker_slot *s, const struct worker_entry *e,
                                    char *service, size_t service_cap, char *rev, size_t rev_cap)
{
    (void)s, (void)e, (void)service, (void)service_cap, (void)rev, (void)rev_cap;
    return WORKER_PEEK_DOWN;
}
int worker_hand_back(struct worker_slot *s, const struct worker_entry *e)
{
    (void)s, (void)e;
    return -1;
}
void worker_job_cleanup(struct worker_job *job)
{
    (void)job;
}
enum worker_start_result worker_start(struct worker_slot *s, const struct worker_entry *e,
                                      struct worker_job *job)
{
    (void)s, (void)e, (void)job;
    return WORKER_START_DOWN;
}
int worker_finish(struct worker_slot *s, const struct worker_entry *e, const struct worker_job *job,
                  const struct worker_outcome *o)
{
    (void)s, (void)e, (void)job, (void)o;
    return -1;
}
void worker_env_init(struct worker_env *e)
{
    (void)e;
}
void worker_env_contract(struct worker_env *e, const struct worker_contract *c)
{
    (void)e, (void)c;
}
void worker_env_cleanup(struct worker_env *e)
{
    (void)e;
}
int worker_run(const struct worker_run_spec *spec, struct worker_run_result *res)
{
    (void)spec, (void)res;
    return -1;
}
void worker_run_result_cleanup(struct worker_run_result *res)
{
    (void)res;
}

/* ---- tests --------------------------------------------------------------------------------- */

static char base[] = "/tmp/fg_test_worker_job_XXXXXX";

static void put_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs("x\n", f);
        fclose(f);
    }
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_remove_tree_takes_whatever_the_script_left(void)
{
    char tmp[256], p[512], outside[256];
    snprintf(tmp, sizeof(tmp), "%s/fg-job-1", base);
    snprintf(outside, sizeof(outside), "%s/outside", base);
    mkdir(outside, 0700);
    put_file(outside, "keep");
    mkdir(tmp, 0700);
    put_file(tmp, "script.sh");
    snprintf(p, sizeof(p), "%s/input", tmp);
    mkdir(p, 0700);
    put_file(p, "photo.jpg");
    snprintf(p, sizeof(p), "%s/output", tmp);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/output/a/b/c", tmp);
    char q[512];
    snprintf(q, sizeof(q), "%s/output/a", tmp);
    mkdir(q, 0700);
    snprintf(q, sizeof(q), "%s/output/a/b", tmp);
    mkdir(q, 0700);
    mkdir(p, 0700);
    put_file(p, "deep");
    /* a symlink to a dir outside: removed, never followed */
    snprintf(p, sizeof(p), "%s/output/link", tmp);
    ok(symlink(outside, p) == 0, "symlink made");
    /* a read-only dir with a file, and an unreadable one */
    snprintf(p, sizeof(p), "%s/ro", tmp);
    mkdir(p, 0700);
    put_file(p, "f");
    snprintf(q, sizeof(q), "%s/ro/sub", tmp);
    mkdir(q, 0700);
    put_file(q, "h");
    chmod(p, 0500);
    snprintf(p, sizeof(p), "%s/none", tmp);
    mkdir(p, 0700);
    put_file(p, "g");
    chmod(p, 0);

    remove_tree(tmp);
    ok(!exists(tmp), "the temp dir is gone");
    snprintf(p, sizeof(p), "%s/keep", outside);
    ok(exists(p), "the symlink's target is untouched");
    unlink(p);
    rmdir(outside);
}

static void test_remove_tree_deeper_than_the_fast_walk(void)
{
    char tmp[256], p[4096];
    snprintf(tmp, sizeof(tmp), "%s/fg-job-2", base);
    mkdir(tmp, 0700);
    size_t len = (size_t)snprintf(p, sizeof(p), "%s", tmp);
    for (int i = 0; i < REMOVE_MAX_DEPTH + 8 && len + 3 < sizeof(p); i++) {
        len += (size_t)snprintf(p + len, sizeof(p) - len, "/d");
        mkdir(p, 0700);
    }
    put_file(p, "bottom");
    remove_tree(tmp);
    ok(!exists(tmp), "a deep tree is gone too");
}

static void test_remove_tree_of_a_missing_dir_is_quiet(void)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s/never-made", base);
    remove_tree(tmp);
    ok(!exists(tmp), "nothing there, nothing done");
}

int main(void)
{
    if (mkdtemp(base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    subtest(test_remove_tree_takes_whatever_the_script_left);
    subtest(test_remove_tree_deeper_than_the_fast_walk);
    subtest(test_remove_tree_of_a_missing_dir_is_quiet);
    rmdir(base);
    return done_testing();
}
