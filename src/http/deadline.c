/*
 * deadline.c - the deadlines and slot sharing of deadline.h: a list of open
 * connections, each with its phase and deadline, and a watchdog thread that
 * shuts down the sockets of those past their deadline.
 *
 * Why shutdown(2) is safe here: MHD reports MHD_CONNECTION_NOTIFY_CLOSED
 * before it closes the socket, and that report takes the same mutex the
 * watchdog (or an eviction) holds while it shuts a socket down, so the
 * descriptor it touches is always still the connection's own (never a
 * reused number).
 *
 * The list is kept in order of last activity (the most recent at the
 * head), so the longest idle connection is found from the tail.
 */
#define _GNU_SOURCE
#include "http/deadline.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

enum phase { PH_HEADERS, PH_BODY, PH_ANSWER };

struct watch {
    struct bgr_http_deadline *owner;
    int fd;
    enum phase phase;
    bool authed;         /* one of its requests carried a valid API key */
    bool shut;           /* already shut down (closing: counts for nothing) */
    int64_t deadline_ms; /* of the current phase; 0 = none */
    struct watch *prev, *next;
};

struct bgr_http_deadline {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool stopping;
    struct bgr_http_deadline_cfg cfg;
    int64_t header_ms;
    unsigned open;   /* connections not shut */
    unsigned unauth; /* of which not authenticated */
    struct watch *head, *tail;
    struct bgr_http_deadline_stats stats;
};

/* ---- list (callers hold d->mu) --------------------------------------------- */

static void unlink_watch(struct bgr_http_deadline *d, struct watch *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        d->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        d->tail = w->prev;
    w->prev = w->next = NULL;
}

static void push_head(struct bgr_http_deadline *d, struct watch *w)
{
    w->next = d->head;
    w->prev = NULL;
    if (d->head)
        d->head->prev = w;
    else
        d->tail = w;
    d->head = w;
}

/* MHD's recv sees end-of-stream and closes the connection. */
static void shut(struct bgr_http_deadline *d, struct watch *w)
{
    (void)shutdown(w->fd, SHUT_RDWR);
    w->shut = true;
    d->open--;
    if (!w->authed)
        d->unauth--;
}

/* The longest idle connection that may be closed to make room: waiting for
 * headers (never one being answered), not newcomer, and with only_unauth
 * not authenticated; a body upload qualifies only for only_unauth. */
static struct watch *victim(struct bgr_http_deadline *d, const struct watch *newcomer,
                            bool only_unauth)
{
    for (struct watch *w = d->tail; w; w = w->prev) {
        if (w == newcomer || w->shut || w->phase == PH_ANSWER)
            continue;
        if (only_unauth ? w->authed : w->phase != PH_HEADERS)
            continue;
        return w;
    }
    return NULL;
}

/* Makes room after newcomer joined (caller holds d->mu). */
static void share_slots(struct bgr_http_deadline *d, const struct watch *newcomer)
{
    unsigned max = d->cfg.max_connections;
    unsigned reserve = max / 32 > 2 ? max / 32 : 2;
    unsigned unauth_max = (unsigned)((uint64_t)max * d->cfg.unauth_pct / 100);
    struct watch *w;
    while (d->unauth > unauth_max && (w = victim(d, newcomer, true)) != NULL) {
        shut(d, w);
        d->stats.unauth_evicted++;
    }
    while (d->open + reserve > max && (w = victim(d, newcomer, false)) != NULL) {
        shut(d, w);
        d->stats.idle_evicted++;
    }
}

/* ---- the watchdog ------------------------------------------------------------ */

static void *watchdog_main(void *arg)
{
    struct bgr_http_deadline *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stopping) {
        struct timespec ts;
        int64_t now = bgr_now_ms();
        for (struct watch *w = d->head; w; w = w->next) {
            if (!w->shut && w->deadline_ms && now > w->deadline_ms) {
                if (w->phase == PH_BODY)
                    d->stats.body_timeouts++;
                else
                    d->stats.header_timeouts++;
                shut(d, w);
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

int bgr_http_deadline_start(const struct bgr_http_deadline_cfg *cfg, struct bgr_http_deadline **out,
                            struct bgr_error *err)
{
    struct bgr_http_deadline *d = bgr_xcalloc(1, sizeof *d);
    int rc;
    d->cfg = *cfg;
    if (!d->cfg.header_timeout_s)
        d->cfg.header_timeout_s = 20;
    if (!d->cfg.max_connections)
        d->cfg.max_connections = 256;
    if (!d->cfg.body_min_rate)
        d->cfg.body_min_rate = 32768;
    if (!d->cfg.body_grace_s)
        d->cfg.body_grace_s = 10;
    if (!d->cfg.unauth_pct || d->cfg.unauth_pct > 100)
        d->cfg.unauth_pct = 50;
    d->header_ms = (int64_t)d->cfg.header_timeout_s * 1000;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    rc = pthread_create(&d->thread, NULL, watchdog_main, d);
    if (rc != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
        return bgr_error_set(err, BGR_EINTERNAL, "cannot start the connection watchdog: error %d",
                             rc);
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
        w->phase = PH_HEADERS;
        w->deadline_ms = bgr_now_ms() + d->header_ms;
        pthread_mutex_lock(&d->mu);
        push_head(d, w);
        d->open++;
        d->unauth++;
        share_slots(d, w);
        pthread_mutex_unlock(&d->mu);
        *socket_context = w;
        return;
    }
    if (code == MHD_CONNECTION_NOTIFY_CLOSED && w) {
        pthread_mutex_lock(&d->mu);
        unlink_watch(d, w);
        if (!w->shut) {
            d->open--;
            if (!w->authed)
                d->unauth--;
        }
        pthread_mutex_unlock(&d->mu);
        free(w);
        *socket_context = NULL;
    }
}

static struct watch *watch_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Moves w to phase ph with the given deadline, as the most recently active. */
static void set_phase(struct watch *w, enum phase ph, int64_t deadline_ms, bool authed)
{
    struct bgr_http_deadline *d = w->owner;
    pthread_mutex_lock(&d->mu);
    w->phase = ph;
    w->deadline_ms = deadline_ms;
    if (authed && !w->authed) {
        w->authed = true;
        if (!w->shut)
            d->unauth--;
    }
    unlink_watch(d, w);
    push_head(d, w);
    pthread_mutex_unlock(&d->mu);
}

void bgr_http_deadline_body(struct MHD_Connection *c, uint64_t body_len, bool authed)
{
    struct watch *w = watch_of(c);
    if (!w)
        return;
    const struct bgr_http_deadline_cfg *cfg = &w->owner->cfg;
    /* In milliseconds: 1 TB at 32 KB/s is 3e10 ms, far from overflowing. */
    int64_t ms = (int64_t)cfg->body_grace_s * 1000 +
                 (int64_t)(body_len / cfg->body_min_rate) * 1000 +
                 (int64_t)(body_len % cfg->body_min_rate) * 1000 / cfg->body_min_rate;
    set_phase(w, PH_BODY, bgr_now_ms() + ms, authed);
}

void bgr_http_deadline_answering(struct MHD_Connection *c)
{
    struct watch *w = watch_of(c);
    if (w && w->phase != PH_ANSWER)
        set_phase(w, PH_ANSWER, 0, false);
}

void bgr_http_deadline_idle(struct MHD_Connection *c)
{
    struct watch *w = watch_of(c);
    if (w)
        set_phase(w, PH_HEADERS, bgr_now_ms() + w->owner->header_ms, false);
}

void bgr_http_deadline_stats(struct bgr_http_deadline *d, struct bgr_http_deadline_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->stats;
    pthread_mutex_unlock(&d->mu);
}
