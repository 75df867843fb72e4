/* Fuzz target for the HTTP/1.1 server glue (gateway/h1_server.c, h1_response.c): the input is
 * what a client sends on one connection, fed over a bufferevent_pair to a handler that reads
 * every body and answers 200 (some paths pause and resume, answer early or stream a chunked
 * response). The loop runs until idle, then the client half-closes and everything is freed;
 * the sanitizers and the leak checker do the judging. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/h1.h"
#include "gateway/h1_internal.h"
#include "gateway/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct freq {
    struct h1_req *req;
    bool paused_once;
};

static struct freq *freq_of(struct h1_req *req)
{
    return h1_req_data(req);
}

static void answer(struct h1_req *req)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "ok %s", h1_req_log(req)->request_id);
    free(freq_of(req));
    h1_req_set_data(req, NULL);
    h1_resp_header(req, "X-Test", "a\r\nb");
    h1_resp_send(req, 200, "text/plain", b);
    evbuffer_free(b);
}

static void on_request(struct h1_req *req, void *arg)
{
    struct span t = h1_req_target(req);
    struct freq *f = calloc(1, sizeof(*f));
    (void)arg;
    f->req = req;
    h1_req_set_data(req, f);
    if (span_starts_with(t, "/deny")) {
        free(f);
        h1_req_set_data(req, NULL);
        h1_resp_send(req, 403, NULL, NULL);
        return;
    }
    if (span_starts_with(t, "/chunked")) {
        free(f);
        h1_req_set_data(req, NULL);
        h1_resp_start(req, 200, -1);
        h1_resp_write(req, "abc", 3);
        h1_resp_end(req);
        return;
    }
    if (span_starts_with(t, "/short")) {
        free(f);
        h1_req_set_data(req, NULL);
        h1_resp_start(req, 200, 10);
        h1_resp_write(req, "abc", 3);
        h1_resp_end(req);
        return;
    }
    h1_req_read_body(req);
}

static void on_body(struct h1_req *req, struct evbuffer *data, void *arg)
{
    struct freq *f = freq_of(req);
    (void)arg;
    evbuffer_drain(data, evbuffer_get_length(data));
    if (!f->paused_once && span_starts_with(h1_req_target(req), "/pause")) {
        /* pause and resume at once: the resume is processed from the deferred event */
        f->paused_once = true;
        h1_req_pause_body(req);
        h1_req_resume_body(req);
    }
}

static void on_body_end(struct h1_req *req, void *arg)
{
    (void)arg;
    size_t n;
    h1_req_trailers(req, &n);
    answer(req);
}

static void on_abort(struct h1_req *req, void *arg)
{
    (void)arg;
    free(freq_of(req));
}

static void run_until_idle(struct event_base *base)
{
    for (int i = 0; i < 256; i++)
        if (event_base_loop(base, EVLOOP_NONBLOCK) != 0)
            break;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        evthread_use_pthreads();
        log_level_now = LOG_ERROR;
        log_open(NULL, "off");
        init = true;
    }
    struct event_base *base = event_base_new();
    struct h1_limits l;
    h1_limits_default(&l);
    l.max_header_bytes = 8192;
    l.max_headers = 32;
    l.max_url_bytes = 2048;
    l.max_trailer_bytes = 1024;
    l.read_high_water = (size_t)16 * 1024;
    l.write_low_water = (size_t)4 * 1024;
    struct h1_handler h = {
        .on_request = on_request,
        .on_body = on_body,
        .on_body_end = on_body_end,
        .on_abort = on_abort,
    };
    struct h1_server *srv = h1_server_new(base, &l, &h);
    struct bufferevent *pair[2];
    bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair);
    h1_server_adopt(srv, pair[0], "fuzz:0");
    bufferevent_enable(pair[1], EV_READ | EV_WRITE);

    /* two writes, so a request can be split across reads */
    size_t half = size / 2;
    bufferevent_write(pair[1], data, half);
    run_until_idle(base);
    bufferevent_write(pair[1], data + half, size - half);
    run_until_idle(base);
    struct evbuffer *in = bufferevent_get_input(pair[1]);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED); /* the client half-closes */
    run_until_idle(base);

    h1_server_free(srv);
    bufferevent_free(pair[1]);
    event_base_free(base);
    return 0;
}
