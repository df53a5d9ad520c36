/* worker.c: event-loop threads, cross-thread posts, clocks. */
#include "http/worker.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tg_app *tg_app;

static __thread struct tg_worker *current;

struct tg_worker *tg_worker_current(void)
{
    return current;
}

void tg_worker_set_current(struct tg_worker *w)
{
    current = w;
}

int64_t tg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t tg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void post_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tg_worker *w = arg;
    pthread_mutex_lock(&w->post_mu);
    struct tg_post *p = w->post_head;
    w->post_head = w->post_tail = NULL;
    pthread_mutex_unlock(&w->post_mu);
    while (p != NULL) {
        struct tg_post *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

int tg_worker_post(struct tg_worker *w, void (*fn)(void *), void *arg)
{
    struct tg_post *p = malloc(sizeof(*p));
    if (p == NULL)
        return -1;
    p->fn = fn;
    p->arg = arg;
    p->next = NULL;
    pthread_mutex_lock(&w->post_mu);
    if (w->post_ev == NULL) {
        pthread_mutex_unlock(&w->post_mu);
        free(p);
        return -1;
    }
    bool was_empty = w->post_head == NULL;
    if (w->post_tail)
        w->post_tail->next = p;
    else
        w->post_head = p;
    w->post_tail = p;
    if (was_empty)
        event_active(w->post_ev, EV_READ, 0);
    pthread_mutex_unlock(&w->post_mu);
    return 0;
}

int tg_worker_init(struct tg_worker *w, int idx)
{
    memset(w, 0, sizeof(*w));
    w->idx = idx;
    TAILQ_INIT(&w->conns);
    pthread_mutex_init(&w->post_mu, NULL);
    /* the changelist folds the add/delete pairs of one loop turn into one epoll_ctl: a
     * bufferevent enables and disables its write event around every reply */
    struct event_config *ec = event_config_new();
    if (ec == NULL)
        return -1;
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL)
        return -1;
    w->post_ev = event_new(w->base, -1, EV_PERSIST | EV_READ, post_cb, w);
    if (w->post_ev == NULL)
        return -1;
    /* a persistent event with no fd never fires by itself; keep it added so the loop runs */
    event_add(w->post_ev, NULL);
    if (tg_uuid7_init(&w->ids) != 0)
        return -1;
    return 0;
}

void tg_worker_cleanup(struct tg_worker *w)
{
    pthread_mutex_lock(&w->post_mu);
    struct tg_post *p = w->post_head;
    w->post_head = w->post_tail = NULL;
    if (w->post_ev != NULL) {
        event_free(w->post_ev);
        w->post_ev = NULL;
    }
    pthread_mutex_unlock(&w->post_mu);
    while (p != NULL) {
        struct tg_post *next = p->next;
        free(p);
        p = next;
    }
    if (w->base != NULL) {
        event_base_free(w->base);
        w->base = NULL;
    }
}
