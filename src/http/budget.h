/*
 * budget.h - internal to src/http: one server-wide cap on the bytes of
 * request bodies held in memory at once.
 *
 * Each request's cap (the prepare hook's body_cap) bounds one body; this
 * bounds their sum, which max_connections alone does not (256 connections x
 * a 25 MiB plan cap is over 6 GiB). A request reserves its declared
 * Content-Length from the headers, before a body byte is buffered; a chunked
 * body reserves as it grows. A reservation that does not fit is refused (the
 * server answers 503 SERVICE_BUSY) and reserves nothing. Every reservation is
 * given back exactly once, when the request's body buffer is freed; the
 * server keeps the per-request count that makes "exactly once" checkable.
 *
 * What it does not do: wait. A request that does not fit is refused at once
 * rather than queued: a queued upload would still hold its connection and
 * its socket buffers, and the client can retry after Retry-After.
 *
 * Thread-safety: every call may come from any thread (MHD's event loops, the
 * threads of offloaded handlers, the /metrics render); the counters are
 * lock-free atomics.
 */
#ifndef BGR_HTTP_BUDGET_H
#define BGR_HTTP_BUDGET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Accounts holding a reservation at once: one per connection at most, so
 * more than the default 256 connections; a full table refuses (503). */
#define BGR_HTTP_BUDGET_OWNERS 1024

struct bgr_http_budget {
    size_t limit;                  /* bytes; fixed once initialised, > 0 */
    atomic_size_t used;            /* bytes reserved now, never above limit */
    atomic_uint_least64_t refused; /* requests refused since start */
    /* Per account ("owner"): what each holds of used, so that one account
     * cannot hold the budget the others need (issue 13, row 2). Guarded by
     * owners_mu; an entry with used 0 is free. */
    pthread_mutex_t owners_mu;
    struct {
        uint64_t id;
        size_t used;
    } owners[BGR_HTTP_BUDGET_OWNERS];
    atomic_uint_least64_t owner_refused; /* requests refused for their account's share */
};

enum bgr_http_budget_take_rc {
    BGR_HTTP_BUDGET_OK,
    BGR_HTTP_BUDGET_FULL,       /* the server-wide limit */
    BGR_HTTP_BUDGET_OWNER_FULL, /* the account's share */
};

/* Sets the limit (bytes, > 0) and zeroes the counters. */
void bgr_http_budget_init(struct bgr_http_budget *b, size_t limit);
/* Reserves n bytes if they fit under the limit together with what is
 * reserved already; returns false (and reserves nothing) otherwise. n == 0
 * always succeeds. */
bool bgr_http_budget_take(struct bgr_http_budget *b, size_t n);
/* Reserves n bytes for owner (an account id; 0 = none: bgr_http_budget_take)
 * if they fit both the limit and owner_cap, the most that owner may hold at
 * once (0 = no share limit). Reserves nothing when it says no. */
enum bgr_http_budget_take_rc bgr_http_budget_take_owned(struct bgr_http_budget *b, uint64_t owner,
                                                        size_t owner_cap, size_t n);
/* Gives back n bytes an earlier take_owned reserved for owner. */
void bgr_http_budget_give_owned(struct bgr_http_budget *b, uint64_t owner, size_t n);
/* Gives back n bytes that an earlier take reserved (asserted: never more
 * than is reserved). */
void bgr_http_budget_give(struct bgr_http_budget *b, size_t n);
/* Bytes reserved now (a snapshot). */
size_t bgr_http_budget_used(const struct bgr_http_budget *b);
/* Counts one request refused for want of budget (a request may try more
 * than one reservation before it is refused: the caller decides). */
void bgr_http_budget_count_refusal(struct bgr_http_budget *b);
/* Requests refused since start (a snapshot). */
uint64_t bgr_http_budget_refused(const struct bgr_http_budget *b);

struct bgr_http_metrics;
/* Makes m render b's gauges (NULL: stop rendering them; the server calls it
 * before b goes away). Implemented in metrics.c. */
void bgr_http_metrics_set_budget(struct bgr_http_metrics *m, const struct bgr_http_budget *b);

#endif
