/* floodgate-worker's per-service concurrency counters (queue/worker_limits.c): limits per
 * service, no limit at 0, bounded waits that end with a release or a stop, waiting slots
 * served before newcomers, and never more than the limit under contention. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

/* floodgate-worker's files are not in a library; this one needs nothing else of them */
#include "queue/worker_limits.c"
#include "tests/unit/tap.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_limits_zero_means_no_limit(void)
{
    struct worker_limits *l = worker_limits_new();
    bool all = true;
    for (int i = 0; i < 100; i++)
        all = all && worker_limits_acquire(l, "free", 0, 0, NULL);
    ok(all, "100 units of a service without a limit");
    is_int(worker_limits_running(l, "free"), 100, "all counted");
    for (int i = 0; i < 100; i++)
        worker_limits_release(l, "free");
    is_int(worker_limits_running(l, "free"), 0, "all released");
    worker_limits_free(l);
}

static void test_limits_refuse_past_the_limit_per_service(void)
{
    struct worker_limits *l = worker_limits_new();
    ok(worker_limits_acquire(l, "a", 2, 0, NULL), "first unit of a (limit 2)");
    ok(worker_limits_acquire(l, "a", 2, 0, NULL), "second unit of a");
    ok(!worker_limits_acquire(l, "a", 2, 0, NULL), "third refused");
    ok(worker_limits_acquire(l, "b", 1, 0, NULL), "another service has its own counter");
    ok(!worker_limits_acquire(l, "b", 1, 0, NULL), "b at its limit of 1");
    worker_limits_release(l, "a");
    ok(worker_limits_acquire(l, "a", 2, 0, NULL), "a unit again after a release");
    ok(worker_limits_acquire(l, "a", 3, 0, NULL), "a raised limit applies at once");
    is_int(worker_limits_running(l, "a"), 3, "a counts 3");
    worker_limits_release(l, "a");
    worker_limits_release(l, "a");
    worker_limits_release(l, "a");
    worker_limits_release(l, "b");
    is_int(worker_limits_running(l, "a") + worker_limits_running(l, "b"), 0, "all released");
    ok(l->head == NULL, "idle counters are dropped");
    worker_limits_free(l);
}

static void test_limits_wait_times_out(void)
{
    struct worker_limits *l = worker_limits_new();
    worker_limits_acquire(l, "s", 1, 0, NULL);
    uint64_t t0 = now_ms();
    ok(!worker_limits_acquire(l, "s", 1, 200, NULL), "no unit within the wait");
    uint64_t dt = now_ms() - t0;
    ok(dt >= 190 && dt < 1000, "it waited the whole time, no more");
    worker_limits_release(l, "s");
    worker_limits_free(l);
}

struct releaser {
    struct worker_limits *l;
    unsigned delay_ms;
    atomic_int *stop; /* set instead of releasing when not NULL */
};

static void *on_release_later(void *arg)
{
    struct releaser *r = arg;
    sleep_ms(r->delay_ms);
    if (r->stop != NULL)
        atomic_store(r->stop, 1);
    else
        worker_limits_release(r->l, "s");
    return NULL;
}

static void test_limits_wait_ends_with_a_release(void)
{
    struct worker_limits *l = worker_limits_new();
    struct releaser r = {.l = l, .delay_ms = 100};
    pthread_t t;
    worker_limits_acquire(l, "s", 1, 0, NULL);
    uint64_t t0 = now_ms();
    pthread_create(&t, NULL, on_release_later, &r);
    ok(worker_limits_acquire(l, "s", 1, 5000, NULL), "the unit released is taken");
    uint64_t dt = now_ms() - t0;
    ok(dt >= 90 && dt < 2000, "as soon as it is released");
    pthread_join(t, NULL);
    is_int(worker_limits_running(l, "s"), 1, "one unit taken");
    worker_limits_release(l, "s");
    worker_limits_free(l);
}

static void test_limits_wait_ends_with_stop(void)
{
    struct worker_limits *l = worker_limits_new();
    atomic_int stop = 0;
    struct releaser r = {.l = l, .delay_ms = 100, .stop = &stop};
    pthread_t t;
    worker_limits_acquire(l, "s", 1, 0, NULL);
    uint64_t t0 = now_ms();
    pthread_create(&t, NULL, on_release_later, &r);
    ok(!worker_limits_acquire(l, "s", 1, 10000, &stop), "stopping ends the wait, no unit");
    ok(now_ms() - t0 < 2000, "within the poll interval");
    pthread_join(t, NULL);
    worker_limits_release(l, "s");
    worker_limits_free(l);
}

struct waiter {
    struct worker_limits *l;
    bool got;
};

static void *on_wait(void *arg)
{
    struct waiter *wt = arg;
    wt->got = worker_limits_acquire(wt->l, "s", 1, 10000, NULL);
    return NULL;
}

static void test_limits_waiters_go_before_newcomers(void)
{
    struct worker_limits *l = worker_limits_new();
    struct waiter wt = {.l = l};
    pthread_t t;
    worker_limits_acquire(l, "s", 1, 0, NULL);
    pthread_create(&t, NULL, on_wait, &wt);
    for (int i = 0; i < 200; i++) { /* until it waits */
        pthread_mutex_lock(&l->mu);
        struct limit *x = find(l, "s", false);
        bool waiting = x != NULL && x->waiting > 0;
        pthread_mutex_unlock(&l->mu);
        if (waiting)
            break;
        sleep_ms(5);
    }
    worker_limits_release(l, "s");
    /* the waiter either still waits or has taken the unit: a newcomer gets nothing */
    ok(!worker_limits_acquire(l, "s", 1, 0, NULL), "a newcomer does not jump the waiter");
    pthread_join(t, NULL);
    ok(wt.got, "the waiter got the unit");
    worker_limits_release(l, "s");
    worker_limits_free(l);
}

#define N_THREADS 8
#define N_ROUNDS  200
#define LIMIT     3

struct contender {
    struct worker_limits *l;
    atomic_int *inside, *most;
    int done, refused;
};

static void *on_contend(void *arg)
{
    struct contender *c = arg;
    for (int i = 0; i < N_ROUNDS; i++) {
        if (!worker_limits_acquire(c->l, "busy", LIMIT, 10000, NULL)) {
            c->refused++;
            continue;
        }
        int n = atomic_fetch_add(c->inside, 1) + 1;
        int m = atomic_load(c->most);
        while (n > m && !atomic_compare_exchange_weak(c->most, &m, n))
            ;
        struct timespec ts = {0, 20000}; /* 20 us */
        nanosleep(&ts, NULL);
        atomic_fetch_sub(c->inside, 1);
        worker_limits_release(c->l, "busy");
        c->done++;
    }
    return NULL;
}

static void test_limits_hold_under_contention(void)
{
    struct worker_limits *l = worker_limits_new();
    atomic_int inside = 0, most = 0;
    struct contender c[N_THREADS];
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        c[i] = (struct contender){.l = l, .inside = &inside, .most = &most};
        pthread_create(&t[i], NULL, on_contend, &c[i]);
    }
    int done = 0, refused = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(t[i], NULL);
        done += c[i].done;
        refused += c[i].refused;
    }
    ok(atomic_load(&most) <= LIMIT, "never more than the limit inside at once");
    ok(atomic_load(&most) >= 1, "some ran");
    is_int(done + refused, N_THREADS * N_ROUNDS, "every round accounted for");
    is_int(refused, 0, "none refused with a long wait");
    is_int(worker_limits_running(l, "busy"), 0, "all released");
    worker_limits_free(l);
}

int main(void)
{
    subtest(test_limits_zero_means_no_limit);
    subtest(test_limits_refuse_past_the_limit_per_service);
    subtest(test_limits_wait_times_out);
    subtest(test_limits_wait_ends_with_a_release);
    subtest(test_limits_wait_ends_with_stop);
    subtest(test_limits_waiters_go_before_newcomers);
    subtest(test_limits_hold_under_contention);
    return done_testing();
}
