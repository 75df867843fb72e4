/* floodgate-worker's process runner (queue/worker_run.c, compiled into this test): exit
 * status and signal reporting, timeouts that kill the whole process group, orphans killed
 * once the script exits, capped logs that keep the first and last halves, and the
 * environment contract. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/worker_run.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/fg_test_worker_run_XXXXXX";

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int run_script(const char *text, unsigned timeout_s, size_t log_max,
                      struct worker_run_result *res)
{
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct worker_run_spec spec = {
        .dir = dir,
        .script_text = text,
        .envp = envp,
        .timeout_s = timeout_s,
        .log_max_bytes = log_max,
    };
    return worker_run(&spec, res);
}

/* True when the process is gone or a zombie (in a container nobody may reap it). */
static bool process_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren != NULL && (close_paren[2] == 'Z' || close_paren[2] == 'X');
}

static pid_t read_pid_file(const char *name)
{
    char path[256];
    long pid = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

/* True when `text` holds `line` as a whole line. */
static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

static void test_capbuf_keeps_everything_below_the_cap(void)
{
    struct worker_capbuf b;
    size_t len;
    worker_capbuf_init(&b, 16);
    worker_capbuf_append(&b, "hello ", 6);
    worker_capbuf_append(&b, "world", 5);
    char *s = worker_capbuf_take(&b, &len);
    is_str(s, "hello world", "all kept");
    is_int(len, 11, "length");
    free(s);
    worker_capbuf_cleanup(&b);
}

static void test_capbuf_keeps_first_and_last_halves(void)
{
    struct worker_capbuf b;
    size_t len;
    worker_capbuf_init(&b, 10);
    worker_capbuf_append(&b, "0123", 4);
    worker_capbuf_append(&b, "456789ab", 8);
    worker_capbuf_append(&b, "cd", 2);
    worker_capbuf_append(&b, "ef", 2);
    char *s = worker_capbuf_take(&b, &len);
    is_str(s, "01234\n[... 6 bytes cut ...]\nbcdef", "head, mark, tail");
    free(s);
    /* one chunk larger than the whole cap */
    worker_capbuf_append(&b, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26);
    s = worker_capbuf_take(&b, &len);
    is_str(s, "ABCDE\n[... 16 bytes cut ...]\nVWXYZ", "one big chunk");
    free(s);
    worker_capbuf_cleanup(&b);
}

static void test_run_reports_exit_status(void)
{
    struct worker_run_result res;
    is_int(run_script("echo out; echo err >&2; exit 3\n", 10, 1 << 20, &res), 0, "ran");
    is_int(res.end, WORKER_RUN_EXITED, "exited");
    is_int(res.code, 3, "status 3");
    is_str(res.reason, "exit status 3", "reason");
    is_str(res.out, "out\n", "stdout alone");
    ok(strstr(res.log, "out\n") != NULL && strstr(res.log, "err\n") != NULL,
       "log holds stdout and stderr");
    worker_run_result_cleanup(&res);

    run_script("exit 0\n", 10, 1 << 20, &res);
    is_int(res.end, WORKER_RUN_EXITED, "exit 0: exited");
    is_int(res.code, 0, "exit 0: status 0");
    worker_run_result_cleanup(&res);
}

static void test_run_reports_signal(void)
{
    struct worker_run_result res;
    run_script("kill -TERM $$\n", 10, 1 << 20, &res);
    is_int(res.end, WORKER_RUN_SIGNALED, "signaled");
    is_int(res.code, SIGTERM, "SIGTERM");
    is_str(res.reason, "killed by signal 15", "reason");
    worker_run_result_cleanup(&res);
}

static void test_run_shebang_is_executed_directly(void)
{
    struct worker_run_result res;
    run_script("#!/bin/sh\necho \"$0\"\n", 10, 1 << 20, &res);
    is_int(res.end, WORKER_RUN_EXITED, "exited");
    ok(strstr(res.out, "/script.sh\n") != NULL && strncmp(res.out, "/bin/sh", 7) != 0,
       "argv[0] is the script");
    worker_run_result_cleanup(&res);
}

static void test_run_shebang_argument_and_blanks(void)
{
    struct worker_run_result res;
    /* one argument after the interpreter, blanks around both, as the kernel splits them */
    run_script("#!  /bin/sh   -e  \nfalse\necho not reached\n", 10, 1 << 20, &res);
    is_int(res.end, WORKER_RUN_EXITED, "-e: exited");
    is_int(res.code, 1, "-e: the argument reached the interpreter");
    is_str(res.out, "", "-e: stopped at the failure");
    worker_run_result_cleanup(&res);

    run_script("#!/nonexistent/interpreter\necho hi\n", 10, 1 << 20, &res);
    is_int(res.end, WORKER_RUN_EXITED, "missing interpreter: exited");
    is_int(res.code, 127, "missing interpreter: 127");
    ok(strstr(res.log, "cannot exec") != NULL, "missing interpreter: said so");
    worker_run_result_cleanup(&res);

    run_script("#!\necho hi\n", 10, 1 << 20, &res);
    is_int(res.code, 127, "no interpreter: 127");
    worker_run_result_cleanup(&res);
}

/* Threads each writing and running "#!" scripts in their own dirs: a child forked by one
 * thread while another holds its script open for writing must not make that script's exec
 * fail (ETXTBSY, seen as exit status 127). */
#define RACE_THREADS 16
#define RACE_RUNS    100

struct race {
    char dir[64];
    int n_ok, n_127;
};

static void *race_main(void *arg)
{
    struct race *r = arg;
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct worker_run_spec spec = {.dir = r->dir,
                                   .script_text = "#!/bin/sh\nexit 0\n",
                                   .envp = envp,
                                   .timeout_s = 30,
                                   .log_max_bytes = 4096};
    for (int i = 0; i < RACE_RUNS; i++) {
        struct worker_run_result res;
        worker_run(&spec, &res);
        if (res.end == WORKER_RUN_EXITED && res.code == 0)
            r->n_ok++;
        else if (res.end == WORKER_RUN_EXITED && res.code == 127)
            r->n_127++;
        worker_run_result_cleanup(&res);
    }
    return NULL;
}

static void test_concurrent_shebang_scripts_never_fail_to_exec(void)
{
    struct race races[RACE_THREADS];
    pthread_t threads[RACE_THREADS];
    int n_ok = 0, n_127 = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        memset(&races[i], 0, sizeof(races[i]));
        snprintf(races[i].dir, sizeof(races[i].dir), "%s/race%d", dir, i);
        mkdir(races[i].dir, 0700);
        pthread_create(&threads[i], NULL, race_main, &races[i]);
    }
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(threads[i], NULL);
        n_ok += races[i].n_ok;
        n_127 += races[i].n_127;
        char path[128];
        snprintf(path, sizeof(path), "%.64s/script.sh", races[i].dir);
        unlink(path);
        rmdir(races[i].dir);
    }
    is_int(n_127, 0, "no exit status 127");
    is_int(n_ok, RACE_THREADS * RACE_RUNS, "every run succeeded");
}

/* A script that closes its output long before it exits: its exit must end the wait at once,
 * not at the next 100 ms tick (the pipes' EOF came first, so only the exit can wake it). */
static void test_exit_after_closing_output_is_seen_at_once(void)
{
    struct worker_run_result res;
    uint64_t t0 = now_ms();
    for (int i = 0; i < 10; i++) {
        run_script("exec >&- 2>&-\nsleep 0.02\n", 10, 1024, &res);
        is_int(res.code, 0, "exited 0");
        worker_run_result_cleanup(&res);
    }
    uint64_t took = now_ms() - t0;
    ok(took < 800, "10 runs of 20 ms took well under 10 x 100 ms");
    if (took >= 800)
        printf("#   took %llu ms\n", (unsigned long long)took);
}

static void test_timeout_kills_the_group(void)
{
    struct worker_run_result res;
    uint64_t t0 = now_ms();
    run_script("sleep 30 &\necho $! > bg.pid\necho started\nsleep 30\n", 1, 1 << 20, &res);
    uint64_t took = now_ms() - t0;
    is_int(res.end, WORKER_RUN_TIMED_OUT, "timed out");
    is_str(res.reason, "timed out after 1s", "reason");
    ok(took >= 900 && took < 5000, "about one second");
    ok(strstr(res.log, "started") != NULL, "log kept");
    pid_t bg = read_pid_file("bg.pid");
    ok(bg > 0, "background child started");
    usleep(100 * 1000);
    ok(bg > 0 && process_dead(bg), "background child killed");
    worker_run_result_cleanup(&res);
}

static void test_orphans_die_when_the_script_exits(void)
{
    struct worker_run_result res;
    uint64_t t0 = now_ms();
    /* the orphan holds stdout open: the runner must not wait for it */
    run_script("sleep 30 &\necho $! > orphan.pid\nexit 0\n", 60, 1 << 20, &res);
    uint64_t took = now_ms() - t0;
    is_int(res.end, WORKER_RUN_EXITED, "exited");
    ok(took < 5000, "did not wait for the orphan");
    pid_t bg = read_pid_file("orphan.pid");
    usleep(100 * 1000);
    ok(bg > 0 && process_dead(bg), "orphan killed");
    worker_run_result_cleanup(&res);
}

static void test_cancel_kills_the_group(void)
{
    atomic_int cancel = 1;
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct worker_run_spec spec = {.dir = dir,
                                   .script_text = "sleep 30\n",
                                   .envp = envp,
                                   .timeout_s = 60,
                                   .log_max_bytes = 1024,
                                   .cancel = &cancel};
    struct worker_run_result res;
    uint64_t t0 = now_ms();
    worker_run(&spec, &res);
    is_int(res.end, WORKER_RUN_CANCELLED, "cancelled");
    ok(now_ms() - t0 < 3000, "promptly");
    worker_run_result_cleanup(&res);
}

static void test_log_cap_keeps_first_and_last_halves(void)
{
    struct worker_run_result res;
    const size_t cap = 1 << 20;
    /* 50 MiB of 'x' between two markers, on stdout */
    run_script("echo START\nhead -c 52428800 /dev/zero | tr '\\0' x\necho\necho END\n", 60, cap,
               &res);
    is_int(res.end, WORKER_RUN_EXITED, "exited");
    is_int(res.code, 0, "status 0");
    ok(strncmp(res.log, "START\nxxxx", 10) == 0, "log starts with the first bytes");
    ok(res.log_len > 8 && strcmp(res.log + res.log_len - 8, "xxx\nEND\n") == 0,
       "log ends with the last bytes");
    uint64_t written = 6 + 52428800 + 1 + 4;
    char mark[64];
    snprintf(mark, sizeof(mark), "\n[... %llu bytes cut ...]\n",
             (unsigned long long)(written - cap));
    ok(strstr(res.log, mark) != NULL, "the cut line counts the bytes dropped");
    is_int(res.log_len, cap + strlen(mark), "log bounded by the cap");
    is_int(res.out_len, cap + strlen(mark), "stdout bounded by the cap");
    worker_run_result_cleanup(&res);
}

static void test_env_contract(void)
{
    struct worker_env env;
    const char *names[] = {"GREETING", "PATH", "JOB_UUID", "API_TOKEN"};
    const char *values[] = {"hello world", "/bin:/usr/bin", "forged", "s3cr3t"};
    struct worker_contract c = {
        .path = "/usr/bin:/bin",
        .tmp_dir = dir,
        .input_dir = "/x/input",
        .output_dir = "/x/output",
        .input_file = "/x/input/photo.jpg",
        .object_key = "in/photo.jpg",
        .event_json = "{\"Records\":[]}",
        .event_ms = 1700000000123ull,
        .job_id = "0b7e4f1a-1111-4222-8333-444455556666",
        .service = "thumbs",
        .extra_names = names,
        .extra_values = values,
        .n_extra = 4,
    };
    setenv("FG_TEST_LEAK", "1", 1);
    worker_env_init(&env);
    worker_env_contract(&env, &c);
    is_str(worker_env_get(&env, "PATH"), "/bin:/usr/bin", "a service may override PATH");
    is_str(worker_env_get(&env, "JOB_UUID"), c.job_id, "nothing overrides the contract");

    char *const *envp = env.vars;
    struct worker_run_spec spec = {
        .dir = dir, .script_text = "env\n", .envp = envp, .timeout_s = 10, .log_max_bytes = 65536};
    struct worker_run_result res;
    worker_run(&spec, &res);
    is_int(res.code, 0, "env ran");
    const char *want[] = {
        "INPUT_FILE_PATH=/x/input/photo.jpg",
        "TMP_INPUT_DIR=/x/input",
        "TMP_OUTPUT_DIR=/x/output",
        "STORAGE_OBJECT_KEY=in/photo.jpg",
        "EVENT={\"Records\":[]}",
        "EVENT_TIME=2023-11-14T22:13:20.123Z",
        "JOB_UUID=0b7e4f1a-1111-4222-8333-444455556666",
        "JOB_NAME=0b7e4f1a-1111-4222-8333-444455556666",
        "SERVICE_NAME=thumbs",
        "GREETING=hello world",
        "API_TOKEN=s3cr3t",
        "LANG=C.UTF-8",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ok(has_line(res.out, want[i]), want[i]);
    char home[128];
    snprintf(home, sizeof(home), "HOME=%s\n", dir);
    ok(strstr(res.out, home) != NULL, "HOME is the temp dir");
    ok(strstr(res.out, "FG_TEST_LEAK") == NULL, "nothing inherited from the worker");
    worker_run_result_cleanup(&res);

    /* the working directory is the temp dir */
    spec.script_text = "pwd\n";
    worker_run(&spec, &res);
    char cwd[128];
    snprintf(cwd, sizeof(cwd), "%s\n", dir);
    is_str(res.out, cwd, "cwd is the temp dir");
    worker_run_result_cleanup(&res);
    worker_env_cleanup(&env);
}

static void test_stdin_is_dev_null(void)
{
    struct worker_run_result res;
    run_script("cat; echo done\n", 5, 1024, &res);
    is_int(res.end, WORKER_RUN_EXITED, "cat did not wait for input");
    is_str(res.out, "done\n", "empty stdin");
    worker_run_result_cleanup(&res);
}

static void test_unwritable_dir_fails(void)
{
    char *envp[] = {NULL};
    struct worker_run_spec spec = {.dir = "/nonexistent/fg-worker-test",
                                   .script_text = "true\n",
                                   .envp = envp,
                                   .log_max_bytes = 1024};
    struct worker_run_result res;
    is_int(worker_run(&spec, &res), -1, "-1");
    is_int(res.end, WORKER_RUN_FAILED, "failed");
    ok(strstr(res.reason, "cannot write the script") != NULL, "reason");
    worker_run_result_cleanup(&res);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    subtest(test_capbuf_keeps_everything_below_the_cap);
    subtest(test_capbuf_keeps_first_and_last_halves);
    subtest(test_run_reports_exit_status);
    subtest(test_run_reports_signal);
    subtest(test_run_shebang_is_executed_directly);
    subtest(test_run_shebang_argument_and_blanks);
    subtest(test_concurrent_shebang_scripts_never_fail_to_exec);
    subtest(test_exit_after_closing_output_is_seen_at_once);
    subtest(test_timeout_kills_the_group);
    subtest(test_orphans_die_when_the_script_exits);
    subtest(test_cancel_kills_the_group);
    subtest(test_log_cap_keeps_first_and_last_halves);
    subtest(test_env_contract);
    subtest(test_stdin_is_dev_null);
    subtest(test_unwritable_dir_fails);
    const char *files[] = {"script.sh", "bg.pid", "orphan.pid"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return done_testing();
}
