/*
 * deadline.c - the header deadline of deadline.h: a list of open
 * connections and a watchdog thread that shuts down the sockets of those
 * that took too long to send their request headers.
 *
 * Why shutdown(2) is safe here: MHD reports MHD_CONNECTION_NOTIFY_CLOSED
 * before it closes the socket, and that report takes the same mutex the
 * watchdog holds while it shuts a socket down, so the descriptor it touches
 * is always still the connection's own (never a reused number).
 */
#define _GNU_SOURCE
#include "http/deadline.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct watch {
    struct bgr_http_deadline *owner;
    int fd;
    bool busy;        /* headers complete, request under way */
    bool shut;        /* already shut down */
    int64_t since_ms; /* start of the wait for headers */
    struct watch *prev, *next;
};

struct bgr_http_deadline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stopping;
    int64_t timeout_ms;
    struct watch *head;
};

static void *watchdog_main(void *arg)
{
    struct bgr_http_deadline *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stopping) {
        struct timespec ts;
        int64_t now = bgr_now_ms();
        for (struct watch *w = d->head; w; w = w->next) {
            if (!w->busy && !w->shut && now - w->since_ms > d->timeout_ms) {
                /* MHD's recv sees end-of-stream and closes the connection. */
                (void)shutdown(w->fd, SHUT_RDWR);
                w->shut = true;
            }
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500 * 1000000L; /* twice a second: deadlines are seconds */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int bgr_http_deadline_start(unsigned header_timeout_s, struct bgr_http_deadline **out,
                            struct bgr_error *err)
{
    struct bgr_http_deadline *d = bgr_xcalloc(1, sizeof *d);
    int rc;
    d->timeout_ms = (int64_t)(header_timeout_s ? header_timeout_s : 20) * 1000;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    rc = pthread_create(&d->thread, NULL, watchdog_main, d);
    if (rc != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return bgr_error_set(err, BGR_EINTERNAL, "cannot start the header watchdog: error %d", rc);
    }
    *out = d;
    return 0;
}

void bgr_http_deadline_stop(struct bgr_http_deadline *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    /* MHD has closed every connection (and so emptied the list) by now. */
    BGR_ASSERT(d->head == NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

void bgr_http_deadline_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    struct bgr_http_deadline *d = cls;
    struct watch *w = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        w = calloc(1, sizeof *w);
        if (!w || !ci) { /* untracked: only the idle timeout applies to it */
            free(w);
            *socket_context = NULL;
            return;
        }
        w->owner = d;
        w->fd = ci->connect_fd;
        w->since_ms = bgr_now_ms();
        pthread_mutex_lock(&d->mu);
        w->next = d->head;
        if (d->head)
            d->head->prev = w;
        d->head = w;
        pthread_mutex_unlock(&d->mu);
        *socket_context = w;
        return;
    }
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && w) {
        pthread_mutex_lock(&d->mu);
        if (w->prev)
            w->prev->next = w->next;
        else
            d->head = w->next;
        if (w->next)
            w->next->prev = w->prev;
        pthread_mutex_unlock(&d->mu);
        free(w);
        *socket_context = NULL;
    }
}

void bgr_http_deadline_busy(struct MHD_Connection *c, bool busy)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watch *w = ci ? ci->socket_context : NULL;
    if (!w)
        return;
    pthread_mutex_lock(&w->owner->mu);
    w->busy = busy;
    w->since_ms = bgr_now_ms();
    pthread_mutex_unlock(&w->owner->mu);
}
