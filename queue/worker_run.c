/* floodgate-worker's process runner: script file, clean environment, vfork-style spawn into a
 * new session, poll()ed capture of stdout/stderr with caps, timeout and group kill. Downloading
 * inputs and uploading outputs are worker_job.c's. */
#include "queue/worker_run.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

/* The interpreter only reads the file; a "#!" script is made executable all the same (by
 * open's mode: the dir is new, so is the file), for one that runs "$0" again. */
static int write_script(const char *path, const char *text)
{
    mode_t mode = strncmp(text, "#!", 2) == 0 ? 0700 : 0600;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
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

/* The command that runs the script file at `path`: /bin/sh path, or for a "#!" script its
 * interpreter with path as the last argument, as the kernel does (Linux's binfmt_script:
 * "#!", blanks, the interpreter up to a blank or the line's end, then blanks and optionally
 * one argument, the rest of the line less trailing blanks; argv[0] is the interpreter as
 * written). The script file itself is never exec'd: exec of a file this process has just
 * written fails with ETXTBSY while a child that another thread forked in the meantime still
 * holds the write descriptor (until that child's own exec closes it). A "#!" line without an
 * interpreter leaves interp "", whose exec fails as the kernel's would (exit status 127). */
struct command {
    char interp[PATH_MAX];
    char arg[PATH_MAX];
    char *argv[4];
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void command_init(struct command *cmd, const char *text, char *path)
{
    size_t n = 0;
    cmd->interp[0] = cmd->arg[0] = '\0';
    if (strncmp(text, "#!", 2) != 0) {
        snprintf(cmd->interp, sizeof(cmd->interp), "/bin/sh");
        cmd->argv[n++] = cmd->interp;
        cmd->argv[n++] = path;
        cmd->argv[n] = NULL;
        return;
    }
    const char *p = text + 2;
    while (is_blank(*p))
        p++;
    size_t len = strcspn(p, " \t\n");
    if (len < sizeof(cmd->interp)) {
        memcpy(cmd->interp, p, len);
        cmd->interp[len] = '\0';
    }
    p += len;
    while (is_blank(*p))
        p++;
    len = strcspn(p, "\n");
    while (len > 0 && is_blank(p[len - 1]))
        len--;
    if (len > 0 && len < sizeof(cmd->arg)) {
        memcpy(cmd->arg, p, len);
        cmd->arg[len] = '\0';
    }
    cmd->argv[n++] = cmd->interp;
    if (cmd->arg[0] != '\0')
        cmd->argv[n++] = cmd->arg;
    cmd->argv[n++] = path;
    cmd->argv[n] = NULL;
}

/* What the child needs between clone and exec. */
struct child {
    const char *dir;
    char *const *argv;
    char *const *envp;
    int devnull, out_w, err_w, max_fd;
    pid_t parent;
};

/* Moves fd onto target in the child; dup2 clears FD_CLOEXEC, except when fd == target. */
static void child_move_fd(int fd, int target)
{
    if (fd == target)
        fcntl(fd, F_SETFD, 0);
    else
        dup2(fd, target);
}

/* The group, and the main process itself in case it has not reached setsid() yet. */
static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

#if defined(__SANITIZE_ADDRESS__)
#define NO_ASAN __attribute__((no_sanitize_address))
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_ASAN __attribute__((no_sanitize_address))
#endif
#endif
#ifndef NO_ASAN
#define NO_ASAN
#endif

/* The child until exec. It may share the parent's memory (vfork semantics, see spawn()):
 * system calls only, async-signal-safe, nothing written but its own stack (and errno). */
NO_ASAN static int child_main(void *arg)
{
    const struct child *c = arg;
    sigset_t none;
    const char msg[] = "floodgate-worker: cannot exec the script\n";

    setsid();
    /* A worker killed outright takes the script's main process with it (its children are
     * orphaned; the job is reclaimed and run again elsewhere). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != c->parent)
        _exit(127);
    /* The worker ignores SIGPIPE, which survives exec; spawn() blocked every signal. */
    signal(SIGPIPE, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    child_move_fd(c->devnull, 0);
    child_move_fd(c->out_w, 1);
    child_move_fd(c->err_w, 2);
    /* Sockets and pipes other threads opened without O_CLOEXEC must not leak into the job. */
    if (close_range(3, ~0u, 0) != 0)
        for (int fd = 3; fd < c->max_fd; fd++)
            close(fd);
    if (chdir(c->dir) != 0)
        _exit(126);
    execve(c->argv[0], c->argv, c->envp);
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

#if defined(__SANITIZE_THREAD__)
#define SPAWN_WITH_FORK 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPAWN_WITH_FORK 1
#endif
#endif

#define CHILD_STACK_BYTES (64u << 10)

/* Starts child_main in a new process; its pid, or -1 with errno. Like posix_spawn (which
 * cannot set PR_SET_PDEATHSIG), the child shares our memory and this thread waits until it
 * has exec'd or exited (CLONE_VM | CLONE_VFORK): fork() would copy the page tables of the
 * whole worker and make every thread pay copy-on-write faults until the exec, which costs
 * more than the script's own start. Every signal is blocked meanwhile so that no handler
 * runs in the child on shared memory (the child sets its own mask before exec). */
static pid_t spawn(struct child *c)
{
#ifdef SPAWN_WITH_FORK
    pid_t pid = fork(); /* ThreadSanitizer does not follow a CLONE_VM child */
    if (pid == 0)
        child_main(c);
    return pid;
#else
    sigset_t all, old;
    char *stack = xmalloc(CHILD_STACK_BYTES);
    sigfillset(&all);
    /* the raw call: glibc's wrappers leave its two internal signals unblocked */
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &old, (size_t)(_NSIG / 8));
    pid_t pid = clone(child_main, stack + CHILD_STACK_BYTES, CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    int e = errno;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, (size_t)(_NSIG / 8));
    free(stack);
    errno = e;
    return pid;
#endif
}

/* A descriptor that polls readable once the process has exited; -1 where the kernel has
 * none (before Linux 5.3). */
static int pidfd_for(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
#else
    (void)pid;
    return -1;
#endif
}

struct capture {
    int fd[2]; /* stdout, stderr read ends; -1 once closed */
    int pidfd; /* the main process's, watched until it has exited; -1: none */
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

/* Waits up to wait_ms for output, EOF or (watch_exit) the main process's exit, and reads
 * what came. */
static void poll_once(struct capture *cap, bool watch_exit, int wait_ms)
{
    struct pollfd pfd[3];
    int map[3];
    nfds_t n = 0;
    for (int i = 0; i < 2; i++) {
        if (cap->fd[i] < 0)
            continue;
        pfd[n].fd = cap->fd[i];
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        map[n++] = i;
    }
    if (watch_exit && cap->pidfd >= 0) {
        pfd[n].fd = cap->pidfd;
        pfd[n].events = POLLIN;
        pfd[n].revents = 0;
        map[n++] = -1; /* the caller's waitid() reaps it */
    }
    if (n == 0) {
        struct timespec ts = {wait_ms / 1000, (long)(wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    if (poll(pfd, n, wait_ms) <= 0)
        return;
    for (nfds_t i = 0; i < n; i++)
        if (map[i] >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
            drain_fd(cap, map[i]);
}

/* After the main process has exited its group is killed; a child that escaped into a session
 * of its own may still hold a pipe open, so the pipes get this long to reach EOF. */
#define EXIT_GRACE_MS 2000
/* The longest wait between checks of the timeout, the cancel flag and (without a pidfd) the
 * main process's exit. */
#define POLL_MAX_MS 100

/* The parent's side: capture until the main process has exited and the pipes are closed (or
 * the grace period ran out), killing the group on timeout or cancel. Fills res->end/code.
 * The pipes usually reach EOF a moment before the exit can be reaped: the pidfd wakes the
 * poll at the exit itself; without one, the waits start at 1 ms and grow. */
static void supervise(pid_t pid, const struct worker_run_spec *spec, struct capture *cap,
                      struct worker_run_result *res)
{
    uint64_t start = mono_ms();
    uint64_t deadline = spec->timeout_s > 0 ? start + (uint64_t)spec->timeout_s * 1000u : 0;
    uint64_t exited_at = 0;
    bool exited = false, killed = false;
    int status = 0, blind_ms = 1;

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
        int wait_ms = POLL_MAX_MS;
        if (!exited && cap->pidfd < 0 && cap->fd[0] < 0 && cap->fd[1] < 0) {
            /* nothing would wake us at the exit */
            wait_ms = blind_ms;
            blind_ms = blind_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : blind_ms * 2;
        }
        if (!exited && !killed && deadline != 0 && deadline - now < (uint64_t)wait_ms)
            wait_ms = (int)(deadline - now) + 1;
        poll_once(cap, !exited, wait_ms);
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
    struct capture cap = {.fd = {-1, -1}, .pidfd = -1};
    struct command *cmd = NULL;
    int ret = -1;

    memset(res, 0, sizeof(*res));
    res->end = WORKER_RUN_FAILED;
    worker_capbuf_init(&cap.log, spec->log_max_bytes);
    worker_capbuf_init(&cap.out, spec->log_max_bytes);
    if ((size_t)snprintf(path, sizeof(path), "%s/script.sh", spec->dir) >= sizeof(path)) {
        snprintf(res->reason, sizeof(res->reason), "work dir path too long");
        goto out;
    }
    if (write_script(path, spec->script_text) != 0) {
        snprintf(res->reason, sizeof(res->reason), "cannot write the script: %s", strerror(errno));
        goto out;
    }
    ret = 0;
    cmd = xmalloc(sizeof(*cmd));
    command_init(cmd, spec->script_text, path);
    if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0 ||
        (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(res->reason, sizeof(res->reason), "cannot start the script: %s", strerror(errno));
        goto out;
    }
    struct child child = {
        .dir = spec->dir,
        .argv = cmd->argv,
        .envp = spec->envp,
        .devnull = devnull,
        .out_w = out_p[1],
        .err_w = err_p[1],
        .max_fd = max_fd_guess(),
        .parent = getpid(),
    };
    pid_t pid = spawn(&child);
    if (pid < 0) {
        snprintf(res->reason, sizeof(res->reason), "cannot start the script: %s", strerror(errno));
        goto out;
    }
    cap.pidfd = pidfd_for(pid);
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
    if (cap.pidfd >= 0)
        close(cap.pidfd);
    if (devnull >= 0)
        close(devnull);
    free(cmd);
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
