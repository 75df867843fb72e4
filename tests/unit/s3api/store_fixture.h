/* What the store's unit tests share: a loop with a ticking timer (so EVLOOP_ONCE returns), a
 * disk pool, a store `st` in a fresh temp dir, and the helpers to wait on them. Included by one
 * test file each (the definitions are static). */
#ifndef FG_TESTS_UNIT_S3API_STORE_FIXTURE_H
#define FG_TESTS_UNIT_S3API_STORE_FIXTURE_H

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "gateway/pool.h"
#include "s3api/store.h"
#include "s3api/store_fs_internal.h"
#include "tests/unit/tap.h"

static struct event_base *base;
static struct gw_pool *pool;
static struct s3_store *st;
static char root[256];     /* mkdtemp */
static char data_dir[300]; /* root/data */
static struct event *fixture_tick;

static inline void fixture_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *flag is set. */
static inline void run_until(const bool *flag)
{
    while (!*flag)
        event_base_loop(base, EVLOOP_ONCE);
}

/* Runs the loop until the store has no pool job or commit in flight. */
static inline void settle(void)
{
    while (st->loop.inflight > 0 || st->loop.committing)
        event_base_loop(base, EVLOOP_ONCE);
}

/* Opens `st` with cfg (data_dir: the fixture's when NULL); a failure ends the test. */
static inline void fixture_store_open(struct s3_store_config cfg)
{
    char err[256] = "";
    if (cfg.data_dir == NULL)
        cfg.data_dir = data_dir;
    st = s3_store_open(base, pool, &cfg, err, sizeof(err));
    if (st == NULL)
        printf("# open: %s\n", err);
    ASSERT(st != NULL);
}

/* One store call's outcome: on_res as its callback, wait_res to run the loop until it came. */
struct res {
    bool done;
    enum s3_err err;
};

static inline void on_res(enum s3_err err, void *arg)
{
    struct res *r = arg;
    ASSERT(!r->done);
    r->done = true;
    r->err = err;
}

static inline enum s3_err wait_res(struct res *r)
{
    run_until(&r->done);
    return r->err;
}

/* The loop, a 4-thread pool and root = /tmp/fg-<name>-XXXXXX; the store is the test's to open. */
static inline void fixture_init(const char *name)
{
    evthread_use_pthreads();
    base = event_base_new();
    pool = gw_pool_new(base, 4, "disk");
    fixture_tick = event_new(base, -1, EV_PERSIST, fixture_on_tick, NULL);
    struct timeval tv = {0, 50 * 1000};
    event_add(fixture_tick, &tv);
    snprintf(root, sizeof(root), "/tmp/fg-%s-XXXXXX", name);
    ASSERT(mkdtemp(root) != NULL);
    snprintf(data_dir, sizeof(data_dir), "%s/data", root);
}

static inline int fixture_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Closes the store, frees the loop and pool, removes the temp dir. */
static inline void fixture_fini(void)
{
    s3_store_close(st);
    st = NULL;
    gw_pool_free(pool);
    event_free(fixture_tick);
    event_base_free(base);
    nftw(root, fixture_rm, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
