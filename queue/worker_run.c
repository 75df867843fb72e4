/* floodgate-worker's process runner: script file, clean environment, fork+exec into a new
 * session, poll()ed capture of stdout/stderr with caps, timeout and group kill. Downloading
 * inputs and uploading outputs are worker_job.c's. */
#include "queue/worker_run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gateway/xmalloc.h"

/* ---- capped capture ------------------------------------------------------------------------ */

void worker_capbuf_init(struct worker_capbuf *b, size_t max_bytes)
{
    memset(b, 0, sizeof(*b));
    b->head_cap = max_bytes / 2;
    b->tail_cap = max_bytes - b->head_cap;
}

static void tail_append(struct worker_capbuf *b, const char *p, size_t n)
{
    if (b->tail_cap == 0)
        return;
    if (b->tail == NULL)
        b->tail = xmalloc(b->tail_cap);
    if (n >= b->tail_cap) {
        /* only the last tail_cap bytes of this chunk can survive */
        memcpy(b->tail, p + n - b->tail_cap, b->tail_cap);
        b->tail_pos = 0;
        b->tail_len = b->tail_cap;
        return;
    }
    size_t end = (b->tail_pos + b->tail_len) % b->tail_cap; /* where the next byte goes */
    size_t first = b->tail_cap - end < n ? b->tail_cap - end : n;
    memcpy(b->tail + end, p, first);
    memcpy(b->tail, p + first, n - first);
    b->tail_len += n;
    if (b->tail_len > b->tail_cap) {
        /* the oldest bytes were overwritten */
        b->tail_pos = (b->tail_pos + b->tail_len - b->tail_cap) % b->tail_cap;
        b->tail_len = b->tail_cap;
    }
}

void worker_capbuf_append(struct worker_capbuf *b, const void *data, size_t n)
{
    const char *p = data;
    b->total += n;
    if (b->head_len < b->head_cap) {
        size_t take = b->head_cap - b->head_len < n ? b->head_cap - b->head_len : n;
        if (b->head == NULL)
            b->head = xmalloc(b->head_cap);
        memcpy(b->head + b->head_len, p, take);
        b->head_len += take;
        p += take;
        n -= take;
    }
    if (n > 0)
        tail_append(b, p, n);
}

char *worker_capbuf_take(struct worker_capbuf *b, size_t *len)
{
    uint64_t cut = b->total - b->head_len - b->tail_len;
    char mark[64] = "";
    size_t mark_len = 0;
    if (cut > 0) {
        bool nl = b->head_len == 0 || b->head[b->head_len - 1] == '\n';
        mark_len = (size_t)snprintf(mark, sizeof(mark), "%s[... %" PRIu64 " bytes cut ...]\n",
                                    nl ? "" : "\n", cut);
    }
    size_t n = b->head_len + mark_len + b->tail_len;
    char *out = xmalloc(n + 1);
    if (b->head_len > 0)
        memcpy(out, b->head, b->head_len);
    memcpy(out + b->head_len, mark, mark_len);
    char *t = out + b->head_len + mark_len;
    size_t first =
        b->tail_cap - b->tail_pos < b->tail_len ? b->tail_cap - b->tail_pos : b->tail_len;
    if (first > 0)
        memcpy(t, b->tail + b->tail_pos, first);
    if (b->tail_len > first)
        memcpy(t + first, b->tail, b->tail_len - first);
    out[n] = '\0';
    *len = n;
    size_t max_bytes = b->head_cap + b->tail_cap;
    worker_capbuf_cleanup(b);
    worker_capbuf_init(b, max_bytes);
    return out;
}

void worker_capbuf_cleanup(struct worker_capbuf *b)
{
    free(b->head);
    free(b->tail);
    b->head = b->tail = NULL;
    b->head_len = b->tail_len = b->tail_pos = 0;
    b->total = 0;
}

/* ---- environment --------------------------------------------------------------------------- */

void worker_env_init(struct worker_env *e)
{
    e->cap = 16;
    e->n = 0;
    e->vars = xcalloc(e->cap, sizeof(char *));
}

static bool env_name_ok(const char *name)
{
    return name != NULL && name[0] != '\0' && strchr(name, '=') == NULL;
}

int worker_env_set(struct worker_env *e, const char *name, const char *value)
{
    if (!env_name_ok(name))
        return -1;
    size_t nl = strlen(name);
    char *var = xasprintf("%s=%s", name, value != NULL ? value : "");
    for (size_t i = 0; i < e->n; i++) {
        if (strncmp(e->vars[i], name, nl) == 0 && e->vars[i][nl] == '=') {
            free(e->vars[i]);
            e->vars[i] = var;
            return 0;
        }
    }
    if (e->n + 1 >= e->cap) {
        e->cap *= 2;
        e->vars = xrealloc(e->vars, e->cap * sizeof(char *));
    }
    e->vars[e->n++] = var;
    e->vars[e->n] = NULL;
    return 0;
}

const char *worker_env_get(const struct worker_env *e, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->vars[i], name, nl) == 0 && e->vars[i][nl] == '=')
            return e->vars[i] + nl + 1;
    return NULL;
}

void worker_env_cleanup(struct worker_env *e)
{
    if (e->vars != NULL)
        for (size_t i = 0; i < e->n; i++)
            free(e->vars[i]);
    free(e->vars);
    e->vars = NULL;
    e->n = e->cap = 0;
}

void worker_iso8601_ms(uint64_t ms, char *out, size_t cap)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    char day[24];
    gmtime_r(&sec, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03uZ", day, (unsigned)(ms % 1000));
}

void worker_env_contract(struct worker_env *e, const struct worker_contract *c)
{
    char when[40];
    worker_env_set(e, "PATH", c->path != NULL ? c->path : "/usr/local/bin:/usr/bin:/bin");
    worker_env_set(e, "HOME", c->tmp_dir);
    worker_env_set(e, "LANG", "C.UTF-8");
    for (size_t i = 0; i < c->n_extra; i++)
        worker_env_set(e, c->extra_names[i], c->extra_values[i]);
    worker_iso8601_ms(c->event_ms, when, sizeof(when));
    worker_env_set(e, "INPUT_FILE_PATH", c->input_file != NULL ? c->input_file : "");
    worker_env_set(e, "TMP_INPUT_DIR", c->input_dir);
    worker_env_set(e, "TMP_OUTPUT_DIR", c->output_dir);
    worker_env_set(e, "STORAGE_OBJECT_KEY", c->object_key != NULL ? c->object_key : "");
    worker_env_set(e, "EVENT", c->event_json != NULL ? c->event_json : "");
    worker_env_set(e, "EVENT_TIME", when);
    worker_env_set(e, "JOB_UUID", c->job_id);
    worker_env_set(e, "JOB_NAME", c->job_id);
    worker_env_set(e, "SERVICE_NAME", c->service);
}

/* ---- running ------------------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int write_script(const char *path, const char *text, bool executable)
{
    mode_t mode = executable ? 0700 : 0600;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (fchmod(fd, mode) != 0) { /* the mode given to open() only applies to a new file */
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

/* Moves fd onto target in the child; dup2 clears FD_CLOEXEC, except when fd == target. */
static void child_move_fd(int fd, int target)
{
    if (fd == target)
        fcntl(fd, F_SETFD, 0);
    else
        dup2(fd, target);
}

/* Between fork and exec of a threaded program: async-signal-safe calls only. */
/* The group, and the main process itself in case it has not reached setsid() yet. */
static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

static void child_exec(const char *dir, char *const argv[], char *const envp[], int devnull,
                       int out_w, int err_w, int max_fd, pid_t parent)
{
    sigset_t none;
    const char msg[] = "floodgate-worker: cannot exec the script\n";

    setsid();
    /* A worker killed outright takes the script's main process with it (its children are
     * orphaned; the job is reclaimed and run again elsewhere). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    /* The worker blocks its stop signals and ignores SIGPIPE; both survive exec. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    child_move_fd(devnull, 0);
    child_move_fd(out_w, 1);
    child_move_fd(err_w, 2);
    /* Sockets and pipes other threads opened without O_CLOEXEC must not leak into the job. */
    if (close_range(3, ~0u, 0) != 0)
        for (int fd = 3; fd < max_fd; fd++)
            close(fd);
    if (chdir(dir) != 0)
        _exit(126);
    execve(argv[0], argv, envp);
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

struct capture {
    int fd[2]; /* stdout, stderr read ends; -1 once closed */
    struct worker_capbuf log, out;
};

/* Reads what is there (a bounded number of reads, so timeouts are still checked when a
 * script writes without pause). */
static void drain_fd(struct capture *cap, int which)
{
    char buf[65536];
    for (int i = 0; i < 16; i++) {
        ssize_t r = read(cap->fd[which], buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            close(cap->fd[which]);
            cap->fd[which] = -1;
            return;
        }
        worker_capbuf_append(&cap->log, buf, (size_t)r);
        if (which == 0)
            worker_capbuf_append(&cap->out, buf, (size_t)r);
    }
}

static void poll_once(struct capture *cap, int wait_ms)
{
    struct pollfd pfd[2];
    int map[2];
    nfds_t n = 0;
    for (int i = 0; i < 2; i++) {
        if (cap->fd[i] < 0)
            continue;
        pfd[n].fd = cap->fd[i];
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        map[n++] = i;
    }
    if (n == 0) {
        struct timespec ts = {0, (long)wait_ms * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    if (poll(pfd, n, wait_ms) <= 0)
        return;
    for (nfds_t i = 0; i < n; i++)
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
            drain_fd(cap, map[i]);
}

/* After the main process has exited its group is killed; a child that escaped into a session
 * of its own may still hold a pipe open, so the pipes get this long to reach EOF. */
#define EXIT_GRACE_MS 2000

/* The parent's side: capture until the main process has exited and the pipes are closed (or
 * the grace period ran out), killing the group on timeout or cancel. Fills res->end/code. */
static void supervise(pid_t pid, const struct worker_run_spec *spec, struct capture *cap,
                      struct worker_run_result *res)
{
    uint64_t start = mono_ms();
    uint64_t deadline = spec->timeout_s > 0 ? start + (uint64_t)spec->timeout_s * 1000u : 0;
    uint64_t exited_at = 0;
    bool exited = false, killed = false;
    int status = 0;

    for (;;) {
        uint64_t now = mono_ms();
        if (!exited) {
            siginfo_t si;
            memset(&si, 0, sizeof(si));
            /* WNOWAIT: the zombie keeps its pid (and so the group id) from being reused until
             * the group has been killed */
            if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                si.si_pid == pid) {
                kill(-pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                    ;
                exited = true;
                exited_at = now;
            }
        }
        if (!exited && !killed && deadline != 0 && now >= deadline) {
            kill_group(pid);
            killed = true;
            res->end = WORKER_RUN_TIMED_OUT;
        }
        if (!exited && !killed && spec->cancel != NULL && atomic_load(spec->cancel) != 0) {
            kill_group(pid);
            killed = true;
            res->end = WORKER_RUN_CANCELLED;
        }
        if (exited && ((cap->fd[0] < 0 && cap->fd[1] < 0) || now - exited_at > EXIT_GRACE_MS))
            break;
        int wait_ms = 100;
        if (!exited && !killed && deadline != 0 && deadline - now < (uint64_t)wait_ms)
            wait_ms = (int)(deadline - now) + 1;
        poll_once(cap, wait_ms);
    }
    res->ms = mono_ms() - start;
    if (killed)
        return;
    if (WIFEXITED(status)) {
        res->end = WORKER_RUN_EXITED;
        res->code = WEXITSTATUS(status);
    } else {
        res->end = WORKER_RUN_SIGNALED;
        res->code = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
}

static void set_reason(struct worker_run_result *res, const struct worker_run_spec *spec)
{
    switch (res->end) {
    case WORKER_RUN_EXITED:
        snprintf(res->reason, sizeof(res->reason), "exit status %d", res->code);
        break;
    case WORKER_RUN_SIGNALED:
        snprintf(res->reason, sizeof(res->reason), "killed by signal %d", res->code);
        break;
    case WORKER_RUN_TIMED_OUT:
        snprintf(res->reason, sizeof(res->reason), "timed out after %us", spec->timeout_s);
        break;
    case WORKER_RUN_CANCELLED:
        snprintf(res->reason, sizeof(res->reason), "killed: the worker is stopping");
        break;
    case WORKER_RUN_FAILED:
        break;
    }
}

static int max_fd_guess(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536)
        return 65536;
    return (int)rl.rlim_cur;
}

int worker_run(const struct worker_run_spec *spec, struct worker_run_result *res)
{
    char path[PATH_MAX];
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, devnull = -1;
    struct capture cap = {.fd = {-1, -1}};
    int ret = -1;

    memset(res, 0, sizeof(*res));
    res->end = WORKER_RUN_FAILED;
    worker_capbuf_init(&cap.log, spec->log_max_bytes);
    worker_capbuf_init(&cap.out, spec->log_max_bytes);
    bool shebang = strncmp(spec->script_text, "#!", 2) == 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/script.sh", spec->dir) >= sizeof(path)) {
        snprintf(res->reason, sizeof(res->reason), "work dir path too long");
        goto out;
    }
    if (write_script(path, spec->script_text, shebang) != 0) {
        snprintf(res->reason, sizeof(res->reason), "cannot write the script: %s", strerror(errno));
        goto out;
    }
    ret = 0;
    char sh[] = "/bin/sh";
    char *argv_sh[] = {sh, path, NULL};
    char *argv_direct[] = {path, NULL};
    char *const *argv = shebang ? argv_direct : argv_sh;
    int max_fd = max_fd_guess();
    if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(res->reason, sizeof(res->reason), "cannot start the script: %s", strerror(errno));
        goto out;
    }
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->reason, sizeof(res->reason), "cannot start the script: fork: %s",
                 strerror(errno));
        goto out;
    }
    if (pid == 0)
        child_exec(spec->dir, argv, spec->envp, devnull, out_p[1], err_p[1], max_fd, self);
    close(out_p[1]);
    close(err_p[1]);
    out_p[1] = err_p[1] = -1;
    cap.fd[0] = out_p[0];
    cap.fd[1] = err_p[0];
    out_p[0] = err_p[0] = -1;
    fcntl(cap.fd[0], F_SETFL, O_NONBLOCK);
    fcntl(cap.fd[1], F_SETFL, O_NONBLOCK);
    supervise(pid, spec, &cap, res);
    set_reason(res, spec);

out:
    for (int i = 0; i < 2; i++) {
        if (cap.fd[i] >= 0)
            close(cap.fd[i]);
        if (out_p[i] >= 0)
            close(out_p[i]);
        if (err_p[i] >= 0)
            close(err_p[i]);
    }
    if (devnull >= 0)
        close(devnull);
    res->log = worker_capbuf_take(&cap.log, &res->log_len);
    res->out = worker_capbuf_take(&cap.out, &res->out_len);
    worker_capbuf_cleanup(&cap.log);
    worker_capbuf_cleanup(&cap.out);
    return ret;
}

void worker_run_result_cleanup(struct worker_run_result *res)
{
    if (res == NULL)
        return;
    free(res->log);
    free(res->out);
    res->log = res->out = NULL;
    res->log_len = res->out_len = 0;
}
