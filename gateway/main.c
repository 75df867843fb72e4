/* floodgate: the gateway daemon. Reads the settings, opens the logs and the store, serves S3
 * on the HTTP layer, and handles signals: SIGTERM/SIGINT drain gracefully, SIGHUP reopens the
 * logs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/h1.h"
#include "gateway/log.h"
#include "gateway/main_settings.h"
#include "gateway/xmalloc.h"
#include "s3api/s3api.h"

static struct log_ctx main_log = {.module = "main"};

struct daemon {
    struct event_base *base;
    struct h1_server *srv;
    struct s3_api *api;
    struct event *sig_term;
    struct event *sig_int;
    struct event *sig_hup;
    struct event *drain_timer;
    bool draining;
};

static void on_drained(void *arg)
{
    struct daemon *d = arg;
    log_info(&main_log, "drained; exiting");
    event_base_loopexit(d->base, NULL);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    (void)fd;
    (void)what;
    log_warn(&main_log, "drain timed out with %u connections open; exiting",
             h1_server_n_conns(d->srv));
    event_base_loopexit(d->base, NULL);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    (void)what;
    if (d->draining) {
        log_info(&main_log, "second signal %d: exiting now", (int)sig);
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->draining = true;
    log_info(&main_log, "signal %d: draining %u connections", (int)sig, h1_server_n_conns(d->srv));
    struct timeval tv = {30, 0};
    d->drain_timer = evtimer_new(d->base, on_drain_timeout, d);
    evtimer_add(d->drain_timer, &tv);
    h1_server_drain(d->srv, on_drained, d);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    if (log_reopen() != 0)
        log_error(&main_log, "reopening logs failed: %m");
    else
        log_info(&main_log, "logs reopened");
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f);
}

int main(int argc, char **argv)
{
    struct fg_settings s;
    int code = 0;
    if (fg_settings_load(&s, argc, argv, &code) != 0)
        return code;

    enum log_level lvl = LOG_INFO;
    if (s.log_level != NULL)
        log_level_parse(s.log_level, &lvl);
    log_level_now = lvl;
    if (log_open(s.error_log, s.access_log) != 0) {
        fprintf(stderr, "floodgate: cannot open logs: %m\n");
        fg_settings_cleanup(&s);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();

    struct daemon d = {0};
    d.base = event_base_new();
    char err[256] = "";
    d.api = s3_api_new(d.base, &s.s3, err, sizeof(err));
    if (d.api == NULL) {
        log_error(&main_log, "cannot open the store in %s: %s", s.s3.data_dir, err);
        code = 1;
        goto out;
    }
    struct h1_handler handler;
    s3_api_handler(d.api, &handler);
    d.srv = h1_server_new(d.base, &s.limits, &handler);
    if (h1_server_listen(d.srv, s.listen) != 0) {
        code = 1;
        goto out;
    }
    if (s.pid_file != NULL && write_pid_file(s.pid_file) != 0)
        log_warn(&main_log, "cannot write pid file %s: %m", s.pid_file);
    d.sig_term = evsignal_new(d.base, SIGTERM, on_stop_signal, &d);
    d.sig_int = evsignal_new(d.base, SIGINT, on_stop_signal, &d);
    d.sig_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
    event_add(d.sig_term, NULL);
    event_add(d.sig_int, NULL);
    event_add(d.sig_hup, NULL);
    log_info(&main_log, "floodgate %s listening on %s (data in %s, region %s)", FG_VERSION,
             s.listen, s.s3.data_dir, s.s3.region);
    event_base_dispatch(d.base);
    log_info(&main_log, "stopped");

out:
    h1_server_free(d.srv);
    s3_api_free(d.api);
    if (d.sig_term != NULL) {
        event_free(d.sig_term);
        event_free(d.sig_int);
        event_free(d.sig_hup);
    }
    if (d.drain_timer != NULL)
        event_free(d.drain_timer);
    event_base_free(d.base);
    fg_settings_cleanup(&s);
    log_close();
    return code;
}
