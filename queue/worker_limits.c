/* floodgate-worker: counters of running jobs by service, for the services' `concurrency`
 * (the design is in worker.h). Knows nothing of Redis: slots ask here before starting a job. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/xmalloc.h"
#include "queue/worker.h"

#define STOP_POLL_MS 50

struct limit {
    char *service;
    unsigned running; /* units taken */
    unsigned waiting; /* callers waiting for a unit */
    struct limit *next;
};

struct worker_limits {
    pthread_mutex_t mu;
    pthread_cond_t room; /* broadcast on every release */
    struct limit *head;  /* services with units taken or waiters; others are dropped */
};

struct worker_limits *worker_limits_new(void)
{
    struct worker_limits *l = xcalloc(1, sizeof(*l));
    pthread_condattr_t attr;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->room, &attr);
    pthread_condattr_destroy(&attr);
    return l;
}

void worker_limits_free(struct worker_limits *l)
{
    if (l == NULL)
        return;
    for (struct limit *x = l->head, *next; x != NULL; x = next) {
        next = x->next;
        free(x->service);
        free(x);
    }
    pthread_cond_destroy(&l->room);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* The counter of `service`, made when `create`; NULL when absent. Under mu. */
static struct limit *find(struct worker_limits *l, const char *service, bool create)
{
    for (struct limit *x = l->head; x != NULL; x = x->next)
        if (strcmp(x->service, service) == 0)
            return x;
    if (!create)
        return NULL;
    struct limit *x = xcalloc(1, sizeof(*x));
    x->service = xstrdup(service);
    x->next = l->head;
    l->head = x;
    return x;
}

/* Drops a counter nobody uses, so services come and go without growing the list. Under mu. */
static void forget_if_idle(struct worker_limits *l, struct limit *x)
{
    if (x->running > 0 || x->waiting > 0)
        return;
    for (struct limit **pp = &l->head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            free(x->service);
            free(x);
            return;
        }
    }
}

static void add_ms(struct timespec *ts, unsigned ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static bool stopped(const atomic_int *stop)
{
    return stop != NULL && atomic_load(stop) != 0;
}

/* Waits on x until it has room, the deadline passes or *stop is set. Under mu. */
static bool wait_for_room(struct worker_limits *l, struct limit *x, unsigned max, unsigned wait_ms,
                          const atomic_int *stop)
{
    struct timespec deadline, now, step;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    add_ms(&deadline, wait_ms);
    x->waiting++;
    for (;;) {
        if (x->running < max || stopped(stop))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!before(&now, &deadline))
            break;
        /* wake now and then to see *stop, which nobody signals */
        step = now;
        add_ms(&step, STOP_POLL_MS);
        if (before(&deadline, &step))
            step = deadline;
        int rc = pthread_cond_timedwait(&l->room, &l->mu, &step);
        ASSERT(rc == 0 || rc == ETIMEDOUT || rc == EINTR);
    }
    x->waiting--;
    return x->running < max && !stopped(stop);
}

bool worker_limits_acquire(struct worker_limits *l, const char *service, unsigned max,
                           unsigned wait_ms, const atomic_int *stop)
{
    bool ok;
    pthread_mutex_lock(&l->mu);
    struct limit *x = find(l, service, true);
    if (max == 0 || (x->running < max && x->waiting == 0))
        ok = true;
    else /* waiting slots go first */
        ok = wait_ms > 0 && wait_for_room(l, x, max, wait_ms, stop);
    if (ok)
        x->running++;
    else
        forget_if_idle(l, x);
    pthread_mutex_unlock(&l->mu);
    return ok;
}

void worker_limits_release(struct worker_limits *l, const char *service)
{
    pthread_mutex_lock(&l->mu);
    struct limit *x = find(l, service, false);
    ASSERT(x != NULL && x->running > 0);
    x->running--;
    forget_if_idle(l, x);
    pthread_cond_broadcast(&l->room);
    pthread_mutex_unlock(&l->mu);
}

unsigned worker_limits_running(struct worker_limits *l, const char *service)
{
    pthread_mutex_lock(&l->mu);
    struct limit *x = find(l, service, false);
    unsigned n = x != NULL ? x->running : 0;
    pthread_mutex_unlock(&l->mu);
    return n;
}
