/*
 * jobs_int.h - internals shared by the jobs module's files. Not part of
 * its interface.
 */
#ifndef BGR_JOBS_JOBS_INT_H
#define BGR_JOBS_JOBS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "jobs/jobs.h"
#include "jobs/rrq.h"
#include "net/net.h"

#define BGR_JOBS_RECENT 32      /* processing times kept for estimates, per refine mode */
#define BGR_JOBS_REFINE_SLOTS 8 /* more than the values of enum bgr_refine */

/* A sync request waiting for (or on) a worker. Allocated by the caller
 * (bgr_jobs_remove), freed by whichever of the caller and the worker lets
 * go last (refs, under jobs->mu): the ceiling may answer the caller while
 * the worker still runs. The caller's pointers (acct, data, opts, req,
 * webhook_url, image_url) are valid while the caller waits; a worker that
 * takes a job without a render hook copies what the pipeline reads
 * (own_*), so that the caller may leave at the ceiling. */
struct bgr_sync_job {
    struct bgr_sync_job *next;
    const struct bgr_account *acct;
    const void *data;
    size_t len;
    const struct bgr_output_opts *opts;
    const char *webhook_url;
    const char *image_url;            /* for the image.failed payload only */
    const struct bgr_remove_req *req; /* render hook and credits */
    int refs;                         /* 1 caller + 1 once a worker took it */
    /* the worker's copies (a render hook's too when the request names a
     * render the jobs know: bgr_remove_req.render_name) */
    void *own_data;
    struct bgr_account own_acct;
    struct bgr_output_opts own_opts;
    double own_credits;
    const struct bgr_jobs_render *own_render;
    char *own_spec;
    void *own_extra;
    size_t own_extra_len;
    char own_outcome[64];
    bool abandonable; /* copied: the watchdog may answer the caller at the ceiling */
    /* written by the worker (or the watchdog), read by the caller after done */
    bool done;
    int rc;
    struct bgr_error err;
    struct bgr_image img;
};

/* A batch item that the fetch stage downloaded, waiting for a worker. */
struct bgr_fetched {
    struct bgr_fetched *next;
    int64_t id;
    struct bgr_batch_item *it; /* owned */
    struct bgr_account acct;
    struct bgr_buf body; /* owned: the image */
};

/* One job thread and what it runs, under jobs->mu: the in-process
 * workers (jobs.c) and, on a shared store, the queue's job threads
 * (queue.c) alike. A thread whose job passed the ceiling is "abandoned":
 * its result will be discarded, and a replacement may take its place
 * while it finishes (src/infer has no hook to stop a model run part-way). */
enum bgr_worker_state { BGR_W_UNUSED = 0, BGR_W_RUNNING, BGR_W_EXITED };
/* A queue thread's processing slot (jobs->q_producing). RETURNED: the
 * watchdog gave it back at the ceiling while the run goes on. */
enum bgr_slot_state { BGR_SLOT_NONE = 0, BGR_SLOT_HELD, BGR_SLOT_RETURNED };
struct bgr_worker {
    struct bgr_jobs *j;
    pthread_t t;
    enum bgr_worker_state state;
    int64_t deadline_ms;       /* of the job it runs (bgr_now_ms clock); 0 = idle */
    bool abandoned;            /* the watchdog gave up on the job */
    bool committing;           /* past the point where the watchdog may give up */
    struct bgr_sync_job *sync; /* the sync job it runs, or NULL */
    int64_t item;              /* the batch item it runs, or 0 */
    /* queue.c only */
    bool general;                /* takes sync jobs (cfg.workers of the live threads do) */
    enum bgr_slot_state slot;    /* its processing slot */
    const struct bgr_job *q_job; /* the claimed job (the thread's own), while deadline_ms */
};

/* What the watchdog does, outside the lock, for a job it gave up on. */
struct bgr_abandoned {
    int64_t item;    /* a batch item to record failed, or 0 */
    int64_t sync_id; /* queue: a sync job to record failed, or 0 */
    char account_id[BGR_ID_MAX];
    char *webhook_url, *image_url; /* owned (sync_id), or NULL */
};

/* A webhook handed to a delivery thread. DONE: the attempt is recorded;
 * the dispatcher frees the slot before its next read of the outbox, so a
 * row it read before the record is never handed out twice. */
enum bgr_wh_slot_state { BGR_WH_FREE = 0, BGR_WH_READY, BGR_WH_BUSY, BGR_WH_DONE };
struct bgr_wh_slot {
    enum bgr_wh_slot_state state;
    struct bgr_webhook w; /* owned while not FREE */
    char dest[300];       /* "host:port" of w.url: the per-destination cap's key */
};

struct bgr_jobs {
    struct bgr_store *store; /* borrowed */
    int lock_fd;             /* flock on <data-dir>/server.lock: one server per data dir */
    struct bgr_jobs_config cfg;
    char *public_url;          /* owned copy */
    struct bgr_results *owned; /* cfg.results when the jobs opened it */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* work arrived, or stopping */
    pthread_cond_t done_cv;  /* a sync job finished */
    pthread_cond_t idle_cv;  /* a job finished (wait_idle) */
    pthread_cond_t bg_cv;    /* wakes the webhook dispatcher and the sweeper */
    pthread_cond_t fetch_cv; /* fetch work or room for it, or stopping */
    pthread_cond_t wh_cv;    /* a webhook slot is ready, or stopping */
    pthread_cond_t wd_cv;    /* a job started (new deadline), or stopping */
    bool stopping;
    atomic_int cancel; /* 1 at stop: outbound transfers end at once */

    struct bgr_sync_job *q_head, *q_tail;
    int q_len;
    int in_flight;
    unsigned turn; /* sync/batch alternation */
    bool wh_kick;

    /* Batch items: waiting to be fetched (round-robin by account), being
     * fetched, fetched and waiting for a worker (FIFO). Their truth is in
     * the store; these are the in-memory lines of this process. */
    struct bgr_rrq fetch_q;
    int f_active; /* downloads in progress */
    struct bgr_fetched *r_head, *r_tail;
    int r_len;
    pthread_t *fetchers;
    int n_fetchers;

    /* Job threads: wk_target live ones (cfg.workers; on a shared store
     * cfg.workers + cfg.fetch_workers), plus up to as many again whose job
     * was abandoned at the ceiling and which still finish it. */
    struct bgr_worker *wk;
    int wk_cap;
    int wk_target;
    void *(*wk_main)(void *);      /* a job thread's function; its arg is its struct bgr_worker */
    int n_live;                    /* running and not abandoned */
    struct bgr_abandoned *wd_fail; /* the watchdog's list (wk_cap entries) */
    pthread_t watchdog;
    bool watchdog_started;

    /* Webhooks: a dispatcher reads due rows and hands them to
     * cfg.webhook_workers delivery threads through the slots. */
    struct bgr_wh_slot *wh_slots;
    pthread_t *wh_threads;
    int n_wh_threads;
    pthread_t deliverer, sweeper;
    bool deliverer_started, sweeper_started;

    uint64_t processed, failed;

    /* shared store (queue.c) */
    char worker_name[160]; /* host:pid:start, the lease holder's name */
    struct bgr_store_listener *q_work, *q_done;
    pthread_t q_work_thread, q_done_thread, q_renewer;
    bool q_work_started, q_done_started, q_renewer_started;
    uint64_t q_kicks;                   /* NOTIFY bgr_jobs received */
    int q_items_busy;                   /* job threads on batch items */
    int q_general_live;                 /* live (not abandoned) general job threads */
    int q_general_items;                /* general job threads on batch items */
    int q_producing;                    /* images being processed (at most cfg.workers) */
    int q_late;                         /* abandoned runs whose slot was given back */
    pthread_cond_t q_slot_cv;           /* a processing slot freed */
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
                     const struct bgr_remove_req *render, double credits, struct bgr_image *img,
                     struct bgr_error *err);
void bgr_jobs_drop_object(struct bgr_jobs *j, const char *key);
void bgr_jobs_send_failed(struct bgr_jobs *j, const struct bgr_account *acct, const char *url,
                          const char *image_url, int rc, const struct bgr_error *e);

/* Sets err to the one text of a job given up at the ceiling (422
 * PROCESSING_TIMEOUT, nothing charged), in either mode; returns the code.
 * Inline, so that the static analyzer sees it never returns 0. */
static inline int bgr_jobs_err_ceiling(const struct bgr_jobs *j, struct bgr_error *err)
{
    return bgr_error_set(err, BGR_EPROCESSING_TIMEOUT,
                         "processing the image took longer than this server's limit of %lld s;"
                         " nothing was charged",
                         (long long)((j->cfg.job_timeout_ms + 999) / 1000));
}
/* After job thread w's run, under no lock: true when the watchdog gave up
 * on its job (its result is to be discarded); else the job can no longer
 * be given up (jobs.c). */
bool bgr_jobs_worker_given_up(struct bgr_jobs *j, struct bgr_worker *w);
/* After the abandoned run of job thread w ended, under mu: true if w
 * takes its place among the live threads again (no replacement took it),
 * false if its thread is to end (jobs.c). */
bool bgr_jobs_worker_rejoin(struct bgr_jobs *j, struct bgr_worker *w);

/* queue.c: the shared-store mode. */
int bgr_jobs_queue_start(struct bgr_jobs *j, struct bgr_error *err);
void bgr_jobs_queue_stop(struct bgr_jobs *j); /* joins its listeners and renewer */
/* A job thread of the queue (jobs->wk_main; arg: its struct bgr_worker). */
void *bgr_jobs_queue_worker_main(void *arg);
/* The watchdog gives up on queue thread w's job, under mu: gives its
 * processing slot back (bounded), and fills *a with what to record. */
void bgr_jobs_queue_abandon(struct bgr_jobs *j, struct bgr_worker *w, struct bgr_abandoned *a);
/* Records a sync job given up at the ceiling failed (and image.failed),
 * outside the lock. */
void bgr_jobs_queue_fail_abandoned(struct bgr_jobs *j, const struct bgr_abandoned *a);
int bgr_jobs_remove_queued(struct bgr_jobs *j, const struct bgr_remove_req *r, const void *data,
                           size_t len, struct bgr_image *out, struct bgr_error *err);

/* The webhook dispatcher, its delivery threads and the sweeper
 * (webhook.c). A delivery thread's arg is the jobs. */
void *bgr_jobs_deliverer_main(void *arg);
void *bgr_jobs_wh_thread_main(void *arg);
void *bgr_jobs_sweeper_main(void *arg);
/* Wakes the dispatcher: a webhook was added or a delivery ended. */
void bgr_jobs_kick_deliverer(struct bgr_jobs *j);

/* The fetch stage (stage.c). */
/* Downloads url for acct as every image fetch does (its plan's size cap,
 * the address guard, the configured timeouts, cancelled at stop). */
int bgr_jobs_fetch(struct bgr_jobs *j, const struct bgr_account *acct, const char *url,
                   struct bgr_buf *out, struct bgr_error *e);
/* Reads started item id, its account, checks credits are left, and
 * downloads its image into *body: what a worker needs to run it. */
int bgr_jobs_item_load(struct bgr_jobs *j, int64_t id, struct bgr_batch_item *it,
                       struct bgr_account *acct, struct bgr_buf *body, struct bgr_error *e);
void *bgr_jobs_fetcher_main(void *arg);
/* Queues batch item ids of one account for download; caller holds mu. */
void bgr_jobs_fetch_push(struct bgr_jobs *j, const char *account_id, const int64_t *ids, size_t n);
/* Batch items held in memory anywhere in the stage; caller holds mu. */
size_t bgr_jobs_fetch_backlog(const struct bgr_jobs *j);
void bgr_jobs_fetched_free(struct bgr_fetched *f); /* accepts NULL */
/* Frees what the stage still holds (at stop, after its threads ended). */
void bgr_jobs_fetch_release(struct bgr_jobs *j);
/* Records a batch item failed (and kicks the dispatcher when that ended
 * its batch). */
void bgr_jobs_fail_item(struct bgr_jobs *j, int64_t id, int rc, const struct bgr_error *e);

/* {"event","created_at","data"} as a compact JSON string (malloc'd);
 * steals data. NULL on out-of-memory. */
char *bgr_jobs_event_payload(const char *event, int64_t created_ms, json_t *data);

#endif
