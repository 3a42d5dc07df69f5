/*
 * jobs_int.h - internals shared by the jobs module's files. Not part of
 * its interface.
 */
#ifndef BGR_JOBS_JOBS_INT_H
#define BGR_JOBS_JOBS_INT_H

#include <pthread.h>

#include "jobs/jobs.h"
#include "net/net.h"

#define BGR_JOBS_RECENT 32      /* processing times kept for estimates, per refine mode */
#define BGR_JOBS_REFINE_SLOTS 8 /* more than the values of enum bgr_refine */

/* A sync request waiting for (or on) a worker. Lives on the caller's stack;
 * every pointer in it is the caller's and valid until done is set. */
struct bgr_sync_job {
    struct bgr_sync_job *next;
    const struct bgr_account *acct;
    const void *data;
    size_t len;
    const struct bgr_output_opts *opts;
    const char *webhook_url;
    const char *image_url;            /* for the image.failed payload only */
    const struct bgr_remove_req *req; /* render hook and credits */
    /* written by the worker, read by the caller after done */
    bool done;
    int rc;
    struct bgr_error err;
    struct bgr_image img;
};

struct bgr_jobs {
    struct bgr_store *store; /* borrowed */
    int lock_fd;             /* flock on <data-dir>/server.lock: one server per data dir */
    struct bgr_jobs_config cfg;
    char *public_url;          /* owned copy */
    struct bgr_results *owned; /* cfg.results when the jobs opened it */

    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* work arrived, or stopping */
    pthread_cond_t done_cv; /* a sync job finished */
    pthread_cond_t idle_cv; /* a job finished (wait_idle) */
    pthread_cond_t bg_cv;   /* wakes the deliverer and the sweeper */
    bool stopping;

    struct bgr_sync_job *q_head, *q_tail;
    int q_len;
    int64_t *backlog; /* ring of batch item ids */
    size_t b_head, b_len, b_cap;
    int in_flight;
    unsigned turn; /* sync/batch alternation */
    bool wh_kick;

    pthread_t *workers;
    int n_started;
    pthread_t deliverer, sweeper;
    bool deliverer_started, sweeper_started;

    uint64_t processed, failed;

    /* shared store (queue.c) */
    char worker_name[160]; /* host:pid:start, the lease holder's name */
    struct bgr_store_listener *q_work, *q_done;
    pthread_t q_work_thread, q_done_thread, q_renewer;
    bool q_work_started, q_done_started, q_renewer_started;
    uint64_t q_kicks;                   /* NOTIFY bgr_jobs received */
    struct bgr_queue_waiter *q_waiters; /* sync requests waiting for their job */
    /* Recent processing times per refine mode (full costs about four model
     * runs, so one mean would misjudge a batch of either kind). */
    struct {
        int64_t ms[BGR_JOBS_RECENT];
        int n, i;
    } recent[BGR_JOBS_REFINE_SLOTS];
};

/* The default process function: bgr_pipeline_process on ctx (a struct
 * bgr_model *). */
int bgr_jobs_pipeline_process(void *ctx, const void *data, size_t len,
                              const struct bgr_decode_limits *lim,
                              const struct bgr_output_opts *opts, struct bgr_result *res,
                              struct bgr_error *err);

/* Shared by the in-process path (jobs.c) and the queue (queue.c). */
int bgr_jobs_produce(struct bgr_jobs *j, const struct bgr_account *acct, const void *data,
                     size_t len, const struct bgr_output_opts *opts, const char *batch_id,
                     const struct bgr_remove_req *req, struct bgr_image *img,
                     struct bgr_error *err);
void bgr_jobs_drop_object(struct bgr_jobs *j, const char *key);
void bgr_jobs_send_failed(struct bgr_jobs *j, const struct bgr_account *acct, const char *url,
                          const char *image_url, int rc, const struct bgr_error *e);
void bgr_jobs_fail_item(struct bgr_jobs *j, int64_t id, int rc, const struct bgr_error *e);
/* One batch item, start to finish (claimed: the queue moved it to
 * processing already). 0 if it completed; *ms its processing time. */
int bgr_jobs_run_item(struct bgr_jobs *j, int64_t id, bool claimed, int64_t *ms);

/* queue.c: the shared-store mode. */
int bgr_jobs_queue_start(struct bgr_jobs *j, struct bgr_error *err);
void bgr_jobs_queue_stop(struct bgr_jobs *j);
int bgr_jobs_remove_queued(struct bgr_jobs *j, const struct bgr_remove_req *r, const void *data,
                           size_t len, struct bgr_image *out, struct bgr_error *err);

/* The deliverer and sweeper threads (webhook.c). */
void *bgr_jobs_deliverer_main(void *arg);
void *bgr_jobs_sweeper_main(void *arg);
/* Wakes the deliverer: a webhook was added. */
void bgr_jobs_kick_deliverer(struct bgr_jobs *j);

/* {"event","created_at","data"} as a compact JSON string (malloc'd);
 * steals data. NULL on out-of-memory. */
char *bgr_jobs_event_payload(const char *event, int64_t created_ms, json_t *data);

#endif
