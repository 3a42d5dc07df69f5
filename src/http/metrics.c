/*
 * metrics.c - the counters behind GET /metrics, rendered in the Prometheus
 * text exposition format (version 0.0.4).
 *
 * Labels are bounded by construction: the route label is a route *name*
 * from the routing table (or "unmatched"), never a client path, so a client
 * cannot grow the series set. Thread-safe: one mutex, held for a few
 * increments or one render.
 */
#include "http/http.h"

#include "http/budget.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 256

/* Processing-time histogram upper bounds, seconds. */
static const double buckets_s[] = {0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60};
#define NBUCKETS (sizeof buckets_s / sizeof buckets_s[0])

struct series {
    const char *route; /* static route name */
    int status;
    uint64_t count;
};

struct bgr_http_metrics {
    pthread_mutex_t mu;
    struct series req[MAX_SERIES];
    size_t nreq;
    uint64_t dropped;              /* requests not counted because the table was full */
    uint64_t bucket[NBUCKETS + 1]; /* last = +Inf */
    double sum_s;
    uint64_t images_ok, images_failed;
    const struct bgr_http_budget *budget; /* the running server's, or NULL */
};

struct bgr_http_metrics *bgr_http_metrics_new(void)
{
    struct bgr_http_metrics *m = bgr_xcalloc(1, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void bgr_http_metrics_free(struct bgr_http_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void bgr_http_metrics_request(struct bgr_http_metrics *m, const char *route, int status)
{
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    for (; i < m->nreq; i++)
        if (m->req[i].status == status && strcmp(m->req[i].route, route) == 0)
            break;
    if (i == m->nreq) {
        if (m->nreq < MAX_SERIES)
            m->req[m->nreq++] = (struct series){route, status, 0};
        else
            i = MAX_SERIES;
    }
    if (i < MAX_SERIES)
        m->req[i].count++;
    else
        m->dropped++;
    pthread_mutex_unlock(&m->mu);
}

void bgr_http_metrics_set_budget(struct bgr_http_metrics *m, const struct bgr_http_budget *b)
{
    pthread_mutex_lock(&m->mu);
    m->budget = b;
    pthread_mutex_unlock(&m->mu);
}

void bgr_http_metrics_image(struct bgr_http_metrics *m, bool ok)
{
    pthread_mutex_lock(&m->mu);
    if (ok)
        m->images_ok++;
    else
        m->images_failed++;
    pthread_mutex_unlock(&m->mu);
}

void bgr_http_metrics_processing(struct bgr_http_metrics *m, double ms)
{
    double s = ms / 1000.0;
    pthread_mutex_lock(&m->mu);
    size_t b = 0;
    while (b < NBUCKETS && s > buckets_s[b])
        b++;
    m->bucket[b]++;
    m->sum_s += s;
    pthread_mutex_unlock(&m->mu);
}

int bgr_http_metrics_render(struct bgr_http_metrics *m, const struct bgr_http_gauge *gauges,
                            size_t ngauges, struct bgr_buf *out, struct bgr_error *err)
{
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    rc = bgr_buf_appendf(out, err,
                         "# HELP bgremover_http_requests_total HTTP requests by route and status.\n"
                         "# TYPE bgremover_http_requests_total counter\n");
    for (size_t i = 0; !rc && i < m->nreq; i++)
        rc = bgr_buf_appendf(
            out, err, "bgremover_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
            m->req[i].route, m->req[i].status, (unsigned long long)m->req[i].count);
    if (!rc)
        rc = bgr_buf_appendf(
            out, err,
            "# HELP bgremover_request_images_total Images of POST /v1/remove, by result.\n"
            "# TYPE bgremover_request_images_total counter\n"
            "bgremover_request_images_total{result=\"success\"} %llu\n"
            "bgremover_request_images_total{result=\"failure\"} %llu\n"
            "# HELP bgremover_processing_seconds Worker time to process one image (requests and "
            "batch items).\n"
            "# TYPE bgremover_processing_seconds histogram\n",
            (unsigned long long)m->images_ok, (unsigned long long)m->images_failed);
    uint64_t cum = 0;
    for (size_t b = 0; !rc && b < NBUCKETS; b++) {
        cum += m->bucket[b];
        rc = bgr_buf_appendf(out, err, "bgremover_processing_seconds_bucket{le=\"%g\"} %llu\n",
                             buckets_s[b], (unsigned long long)cum);
    }
    cum += m->bucket[NBUCKETS];
    if (!rc)
        rc = bgr_buf_appendf(out, err,
                             "bgremover_processing_seconds_bucket{le=\"+Inf\"} %llu\n"
                             "bgremover_processing_seconds_sum %.6f\n"
                             "bgremover_processing_seconds_count %llu\n",
                             (unsigned long long)cum, m->sum_s, (unsigned long long)cum);
    if (!rc && m->budget)
        rc = bgr_buf_appendf(
            out, err,
            "# HELP bgremover_http_inflight_body_bytes Bytes of request bodies reserved now "
            "(being received or in use).\n"
            "# TYPE bgremover_http_inflight_body_bytes gauge\n"
            "bgremover_http_inflight_body_bytes %zu\n"
            "# HELP bgremover_http_inflight_body_limit_bytes The cap on them "
            "(max_inflight_body_bytes).\n"
            "# TYPE bgremover_http_inflight_body_limit_bytes gauge\n"
            "bgremover_http_inflight_body_limit_bytes %zu\n"
            "# HELP bgremover_http_body_budget_refused_total Bodies refused (503) because the cap "
            "was reached.\n"
            "# TYPE bgremover_http_body_budget_refused_total counter\n"
            "bgremover_http_body_budget_refused_total %llu\n"
            "# HELP bgremover_http_body_account_share_refused_total Bodies refused (429) because "
            "their account held its share of the cap (uploads_per_account).\n"
            "# TYPE bgremover_http_body_account_share_refused_total counter\n"
            "bgremover_http_body_account_share_refused_total %llu\n",
            bgr_http_budget_used(m->budget), m->budget->limit,
            (unsigned long long)bgr_http_budget_refused(m->budget),
            (unsigned long long)atomic_load_explicit(&m->budget->owner_refused,
                                                     memory_order_relaxed));
    pthread_mutex_unlock(&m->mu);
    for (size_t g = 0; !rc && g < ngauges; g++)
        rc = bgr_buf_appendf(out, err, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", gauges[g].name,
                             gauges[g].help, gauges[g].name,
                             gauges[g].type ? gauges[g].type : "gauge", gauges[g].name,
                             gauges[g].value);
    return rc;
}
