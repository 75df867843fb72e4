/* Fixed-size thread pool with completions posted back to the event loop through one
 * event_active()'d event, like nginx's "aio threads". */
#include "gateway/pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "gateway/xmalloc.h"

struct job {
    struct job *next;
    gw_work_cb *work;
    gw_done_cb *done;
    void *arg;
};

struct job_list {
    struct job *head;
    struct job *tail;
};

struct gw_pool {
    struct {
        pthread_mutex_t mu;
        pthread_cond_t cond;
        struct job_list todo;
        struct job_list finished;
        bool stopping;
    } locked;
    struct {
        struct event *wake; /* drains `finished` on the loop */
        unsigned pending;
    } loop;
    int n_threads;
    pthread_t *threads;
    char name[16]; /* the threads' name, "fg-<name>" */
};

static void list_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    if (l->tail != NULL)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static struct job *list_pop(struct job_list *l)
{
    struct job *j = l->head;
    if (j != NULL) {
        l->head = j->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return j;
}

static void *worker_main(void *arg)
{
    struct gw_pool *pool = arg;
    pthread_setname_np(pthread_self(), pool->name);
    pthread_mutex_lock(&pool->locked.mu);
    for (;;) {
        struct job *j = list_pop(&pool->locked.todo);
        if (j == NULL) {
            if (pool->locked.stopping)
                break;
            pthread_cond_wait(&pool->locked.cond, &pool->locked.mu);
            continue;
        }
        pthread_mutex_unlock(&pool->locked.mu);
        j->work(j->arg);
        pthread_mutex_lock(&pool->locked.mu);
        bool was_empty = pool->locked.finished.head == NULL;
        list_push(&pool->locked.finished, j);
        if (was_empty && !pool->locked.stopping)
            event_active(pool->loop.wake, EV_READ, 0);
    }
    pthread_mutex_unlock(&pool->locked.mu);
    return NULL;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct gw_pool *pool = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&pool->locked.mu);
    struct job_list done = pool->locked.finished;
    pool->locked.finished.head = pool->locked.finished.tail = NULL;
    pthread_mutex_unlock(&pool->locked.mu);
    struct job *j;
    while ((j = list_pop(&done)) != NULL) {
        pool->loop.pending--;
        if (j->done != NULL)
            j->done(j->arg);
        free(j);
    }
}

struct gw_pool *gw_pool_new(struct event_base *base, int n_threads, const char *name)
{
    struct gw_pool *pool = xcalloc(1, sizeof(*pool));
    snprintf(pool->name, sizeof(pool->name), "fg-%.12s", name != NULL ? name : "pool");
    pthread_mutex_init(&pool->locked.mu, NULL);
    pthread_cond_init(&pool->locked.cond, NULL);
    pool->loop.wake = event_new(base, -1, 0, on_wake, pool);
    pool->n_threads = n_threads > 0 ? n_threads : 1;
    pool->threads = xcalloc((size_t)pool->n_threads, sizeof(pthread_t));
    for (int i = 0; i < pool->n_threads; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&pool->threads[i], &attr, worker_main, pool) != 0)
            ASSERT(!"pthread_create failed");
        pthread_attr_destroy(&attr);
    }
    return pool;
}

void gw_pool_submit(struct gw_pool *pool, gw_work_cb *work, gw_done_cb *done, void *arg)
{
    struct job *j = xmalloc(sizeof(*j));
    j->work = work;
    j->done = done;
    j->arg = arg;
    pool->loop.pending++;
    pthread_mutex_lock(&pool->locked.mu);
    list_push(&pool->locked.todo, j);
    pthread_cond_signal(&pool->locked.cond);
    pthread_mutex_unlock(&pool->locked.mu);
}

unsigned gw_pool_pending(const struct gw_pool *pool)
{
    return pool->loop.pending;
}

void gw_pool_free(struct gw_pool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->locked.mu);
    pool->locked.stopping = true;
    pthread_cond_broadcast(&pool->locked.cond);
    pthread_mutex_unlock(&pool->locked.mu);
    for (int i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    struct job *j;
    while ((j = list_pop(&pool->locked.finished)) != NULL)
        free(j);
    event_free(pool->loop.wake);
    pthread_mutex_destroy(&pool->locked.mu);
    pthread_cond_destroy(&pool->locked.cond);
    free(pool->threads);
    free(pool);
}
