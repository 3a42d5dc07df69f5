/*
 * jobs.h - the server's work: a bounded in-process queue and worker pool
 * that runs images through the pipeline, persisted batches that survive a
 * crash, the webhook outbox deliverer, and the sweeper of expired results.
 *
 * Flow of a sync request (POST /v1/remove): the HTTP thread calls
 * bgr_jobs_remove, which fetches image_url on that thread (network waits
 * never occupy a worker), pre-checks credits, queues the bytes (full queue:
 * BGR_ESERVICE_BUSY at once), and waits. A worker runs the pipeline, writes
 * the result object <id>.<ext> atomically through src/results (a directory,
 * <data-dir>/results by default, or S3), then commits the result row
 * (charging the credit, and adding the image.completed webhook when asked)
 * in one transaction before the caller is woken: what the response reports
 * is durable.
 *
 * Batches (POST /v1/remove/batch): bgr_jobs_batch_submit persists the batch
 * and its items before returning. Workers take batch items when no sync job
 * waits (sync requests have a client waiting), each item start/finish is a
 * transaction, and at start-up items a crash left queued or processing are
 * queued again: every item finishes exactly once, and is charged at most once
 * (the charge is in the item's completing transaction). The batch's one
 * webhook, batch.completed, is added to the outbox in the transaction that
 * finishes its last item. Items do not send webhooks of their own.
 *
 * Webhooks: POST of {"event","created_at","data"} with headers
 *   X-Bgr-Event-Id: evt_...      (same on every retry: the idempotency key)
 *   X-Bgr-Timestamp: <UNIX s>    (of this attempt)
 *   X-Bgr-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
 * with the account's webhook secret. Any 2xx is delivered; anything else is
 * retried after base * 2^(attempt-1) (default base 15 s, 9 attempts: about
 * 64 minutes in all), then recorded as failed.
 *
 * Thread-safety: every function may be called from any thread between
 * bgr_jobs_start and bgr_jobs_stop.
 */
#ifndef BGR_JOBS_JOBS_H
#define BGR_JOBS_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "infer/infer.h"
#include "pipeline/pipeline.h"
#include "results/results.h"
#include "store/store.h"

#define BGR_WEBHOOK_HDR_ID "X-Bgr-Event-Id"
#define BGR_WEBHOOK_HDR_TS "X-Bgr-Timestamp"
#define BGR_WEBHOOK_HDR_SIG "X-Bgr-Signature"

/* Replaces the pipeline (tests, or another engine): same contract as
 * bgr_pipeline_process with the model bound in ctx. */
typedef int (*bgr_jobs_process_fn)(void *ctx, const void *data, size_t len,
                                   const struct bgr_decode_limits *lim,
                                   const struct bgr_output_opts *opts, struct bgr_result *res,
                                   struct bgr_error *err);

/* A render a worker can run for a queued job (shared store): the
 * bgr_remove_req.render hook in serialisable form. spec and extra are the
 * request's render_spec and render_extra; outcome receives the render's own
 * error code on failure (may stay ""). Same result contract as
 * bgr_pipeline_process. */
typedef int (*bgr_jobs_render_fn)(const char *spec, const void *extra, size_t extra_len,
                                  struct bgr_model *model, const void *data, size_t len,
                                  const struct bgr_decode_limits *lim, struct bgr_result *res,
                                  char *outcome, size_t outcome_len, struct bgr_error *err);
struct bgr_jobs_render {
    const char *name;
    bgr_jobs_render_fn fn;
};

struct bgr_jobs_config {
    const char
        *public_url; /* "https://host[:port]" without trailing '/': output_url base; copied */
    int workers;     /* 0 = 2 (see api_only) */
    /* Shared store only: no local workers; every image goes to the queue
     * for `bgremover worker` processes (serve --workers 0). */
    bool api_only;
    int64_t job_lease_ms; /* shared store: a claimed job's lease; 0 = 30000 */
    int job_max_attempts; /* shared store: claims before a job fails; 0 = 3 */
    int64_t sync_wait_ms; /* shared store: a request waits this long for a worker to
                           * take its image, then 503; 0 = 300000 */
    const struct bgr_jobs_render *renders; /* borrowed; for queued render jobs */
    size_t n_renders;
    int queue_size;  /* sync jobs waiting for a worker; 0 = 16 */
    int max_backlog; /* batch items waiting in memory; 0 = 2000 (over: SERVICE_BUSY) */
    bool allow_private_urls;
    struct bgr_model *model;     /* used by the default process fn; borrowed, outlives jobs */
    bgr_jobs_process_fn process; /* NULL = bgr_pipeline_process on model */
    void *process_ctx;
    struct bgr_decode_limits limits; /* zero = pipeline defaults (50 MP) */
    int64_t webhook_base_ms;         /* first retry delay; 0 = 15000 */
    int webhook_max_attempts;        /* 0 = 9 */
    long webhook_timeout_ms;         /* per attempt; 0 = 10000 */
    int64_t sweep_interval_ms;       /* 0 = 60000 */
    /* Where result objects go; borrowed, outlives the jobs. NULL = the
     * directory <data-dir>/results, opened and owned by the jobs. */
    struct bgr_results *results;
    long fetch_connect_timeout_ms; /* image_url; 0 = 5000 */
    long fetch_total_timeout_ms;   /* 0 = 30000 */
    /* The fetch stage of batch items (see "Batches" above). */
    int fetch_workers;     /* threads downloading batch items' image_url; 0 = 4 */
    int fetch_per_account; /* one account's downloads at once; 0 = 2 */
    int fetch_buffer;      /* batch images downloading or downloaded and waiting for a
                            * worker, held in memory; 0 = 8 (raised to fetch_workers) */
    /* The webhook pool (see "Webhooks" above). */
    int webhook_workers;  /* deliveries at once; 0 = 8 */
    int webhook_per_host; /* deliveries at once to one host:port; 0 = 2 */
    /* Wall-clock ceiling of one image on a worker (sync or batch item),
     * from when a worker takes it; past it the image fails with
     * BGR_EPROCESSING_TIMEOUT (see "Ceiling" above). 0 = 120000. */
    int64_t job_timeout_ms;
    /* Called on a worker thread after each image (sync or batch item) ends:
     * ok, and the worker's processing time (0 when it failed before
     * processing). For metrics; must be quick and thread-safe. NULL = none. */
    void (*on_image)(void *ctx, bool ok, int64_t processing_ms);
    void *on_image_ctx;
};
void bgr_jobs_config_init(struct bgr_jobs_config *c); /* zeroes: all defaults */

struct bgr_jobs;

/* Starts workers, the webhook deliverer and the sweeper, after requeuing the
 * batch items a previous run left unfinished. The store is borrowed and must
 * outlive the jobs. Errors: BGR_EINVALID_PARAMETER, BGR_EIO, BGR_EINTERNAL. */
int bgr_jobs_start(struct bgr_store *store, const struct bgr_jobs_config *cfg,
                   struct bgr_jobs **out, struct bgr_error *err);
/* Stops accepting, lets running jobs finish, fails sync jobs still queued
 * with BGR_ESERVICE_BUSY, joins every thread and frees. Batch items not yet
 * started stay queued in the store (the next start resumes them). Accepts NULL. */
void bgr_jobs_stop(struct bgr_jobs *j);

/* ---- sync requests ------------------------------------------------------- */
struct bgr_remove_req {
    const struct bgr_account *acct; /* its plan bounds the size and credits */
    const void *data;               /* image bytes (borrowed until return), or */
    size_t len;
    const char *image_url; /* fetched on the calling thread (exactly one of data/image_url) */
    struct bgr_output_opts opts;
    const char *webhook_url; /* NULL = none; else image.completed/image.failed is sent */
    /* Optional (the remove.bg route): replaces the pipeline for this request;
     * runs on the worker with the configured model (NULL when the jobs run a
     * custom process fn) and must fill *res as bgr_pipeline_process does. */
    int (*render)(void *ctx, struct bgr_model *model, const void *data, size_t len,
                  const struct bgr_decode_limits *lim, struct bgr_result *res,
                  struct bgr_error *err);
    void *render_ctx;
    /* The same render for a worker in another process (shared store): a
     * name in the workers' bgr_jobs_config.renders, its options as text
     * and a second input (borrowed). A request with render but no
     * render_name cannot be queued. */
    const char *render_name;
    const char *render_spec;
    const void *render_extra;
    size_t render_extra_len;
    /* Out, optional: the render's own error code when a queued render
     * failed (in process, the render reports it through render_ctx). */
    char *outcome;
    size_t outcome_len;
    double credits; /* charged for the result; 0 = 1 */
};
/* Runs one image to a committed result in *out. Errors: those of
 * bgr_net_get (for image_url), of bgr_pipeline_process,
 * BGR_EINSUFFICIENT_CREDITS, BGR_ESERVICE_BUSY (queue full or stopping:
 * nothing was done, no webhook), BGR_EIO. A failure after the image was
 * accepted (download, decode, credits at commit) sends image.failed when a
 * webhook_url was given. */
int bgr_jobs_remove(struct bgr_jobs *j, const struct bgr_remove_req *r, struct bgr_image *out,
                    struct bgr_error *err);

/* ---- batches -------------------------------------------------------------- */
/* Persists and queues a batch (1..20 items; URLs should be pre-checked with
 * bgr_net_url_parse). *est_ms is the estimated time to finish it, from
 * recent processing times, the queue ahead and the worker count. Errors:
 * BGR_EBATCH_TOO_LARGE, BGR_ESERVICE_BUSY (backlog full: nothing stored), BGR_EIO. */
#define BGR_BATCH_MAX_ITEMS 20
int bgr_jobs_batch_submit(struct bgr_jobs *j, const struct bgr_account *acct,
                          const char *webhook_url, const struct bgr_batch_item_new *items, size_t n,
                          struct bgr_batch *out, int64_t *est_ms, struct bgr_error *err);

/* ---- JSON shared by responses and webhooks (caller owns the json_t) ------- */
/* The data object of a POST /v1/remove response (spec fields, in order). */
json_t *bgr_jobs_image_json(const struct bgr_image *img, const char *public_url);
/* The data object of GET /v1/batch/:id (account_id NULL = any owner):
 * batch_id, status, total_images, completed, failed, processing, queued,
 * created_at, finished_at (null until then), and results: one object per
 * item in request order: {"index","image_url","status"} plus, completed:
 * the image fields of bgr_jobs_image_json; failed: "error":{"code","message"}.
 * Errors: BGR_ENOT_FOUND, BGR_EIO, BGR_ENOMEM. */
int bgr_jobs_batch_json(struct bgr_store *s, const char *public_url, const char *batch_id,
                        const char *account_id, json_t **out, struct bgr_error *err);

/* ---- webhooks -------------------------------------------------------------- */
/* out = "v1=" + hex HMAC-SHA256(secret, "<ts_s>." + body). */
void bgr_webhook_sign(const char *secret, int64_t ts_s, const void *body, size_t len, char out[68]);
/* Delay before the next attempt after `attempt` failed attempts (1-based),
 * or 0 when attempt >= max_attempts (give up). */
int64_t bgr_webhook_backoff_ms(int64_t base_ms, int max_attempts, int attempt);

/* ---- result objects: delete, expiry, orphans (sweep.c) ------------------- */
/* These need no running jobs (the API deletes while the model loads), and
 * are idempotent: any node may run them at any time. */

/* DELETE of a result: bgr_store_image_delete (the URL is dead on return),
 * then the object is removed and the row marked purged; a failed removal is
 * logged and left to the sweeper. Errors: those of bgr_store_image_delete. */
int bgr_jobs_image_delete(struct bgr_store *s, struct bgr_results *r, const char *account_id,
                          const char *id, int64_t now_ms, struct bgr_image *out,
                          struct bgr_error *err);
/* Removes the objects of results expired at now_ms (and of deleted ones
 * whose removal failed) and marks them purged; *n_purged (may be NULL)
 * counts them. At most 500 per call. Errors: the store's. */
int bgr_jobs_sweep_expired(struct bgr_store *s, struct bgr_results *r, int64_t now_ms,
                           int *n_purged, struct bgr_error *err);
/* Removes result objects at least min_age_ms old that no live row owns
 * (bgr_store_image_needs_object), and the directory backend's stale
 * temporary files. *n_removed may be NULL. Errors: the listing's. */
int bgr_jobs_sweep_orphans(struct bgr_store *s, struct bgr_results *r, int64_t now_ms,
                           int64_t min_age_ms, int *n_removed, struct bgr_error *err);

/* ---- operations -------------------------------------------------------------- */
struct bgr_jobs_stats {
    int queue_depth; /* sync jobs waiting */
    int backlog;     /* batch items waiting */
    int in_flight;   /* jobs on workers now */
    int workers;
    uint64_t processed, failed; /* since start */
};
void bgr_jobs_get_stats(struct bgr_jobs *j, struct bgr_jobs_stats *st);
/* Waits until no job is queued or running and no webhook is due now, up
 * to timeout_ms; returns true if idle (tests). */
bool bgr_jobs_wait_idle(struct bgr_jobs *j, int64_t timeout_ms);

#endif
