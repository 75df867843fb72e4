/* Disk thread pool: every file-system call of the object path runs here so the event loop
 * never blocks. Work is handed off, not shared: the submitter gives `arg` to the pool and gets
 * it back in `done`, which runs on the loop thread after `work` has returned on a pool thread.
 * `done` never runs before gw_pool_submit() has returned. */
#ifndef FG_GATEWAY_POOL_H
#define FG_GATEWAY_POOL_H

struct event_base;
struct gw_pool;

typedef void gw_work_cb(void *arg);
typedef void gw_done_cb(void *arg);

/* Needs evthread_use_pthreads() before `base` was created. The threads are named
 * "fg-<name>" (at most 12 characters of name are kept), as `top -H` and perf show them. */
struct gw_pool *gw_pool_new(struct event_base *base, int n_threads, const char *name);
/* Runs work(arg) on a pool thread, then done(arg) on the loop. `done` may be NULL. */
void gw_pool_submit(struct gw_pool *pool, gw_work_cb *work, gw_done_cb *done, void *arg);
/* Jobs queued or running; loop thread only. */
unsigned gw_pool_pending(const struct gw_pool *pool);
/* Finishes queued work, runs no more `done` callbacks, joins the threads. Accepts NULL. */
void gw_pool_free(struct gw_pool *pool);

#endif
