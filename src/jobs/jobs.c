/*
 * jobs.c - the queue and the workers: sync requests and batch items through
 * the pipeline to committed results; the ceiling on a job's time.
 *
 * Two waiting lines share the workers: sync jobs (bounded by queue_size; a
 * client waits on each) and batch items whose image the fetch stage
 * (stage.c) has downloaded (the whole backlog, fetched or not, is bounded
 * by max_backlog; its truth is in the store). Workers take sync jobs first
 * but every fourth pick goes to the fetched items when there are any, so a
 * stream of sync requests cannot starve batches.
 *
 * The ceiling: a watchdog thread gives up on a job that has run longer
 * than cfg.job_timeout_ms on its worker. src/infer and the pipeline offer
 * no hook to stop a run part-way, so the run goes on to its end and its
 * result is then discarded (nothing committed, nothing charged); meanwhile
 * the job fails with BGR_EPROCESSING_TIMEOUT (a sync caller is answered at
 * once, a batch item is recorded failed) and a replacement thread takes
 * the worker's place, so the pool keeps its capacity while at most
 * `workers` abandoned runs finish. A worker decides under the lock, after
 * the run, whether it was abandoned; once it commits, it no longer can be.
 * The same watchdog and thread table serve the job threads of a shared
 * store's queue (queue.c), whose ceiling counts from the claim.
 */
#define _GNU_SOURCE
#include "jobs/jobs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

void bgr_jobs_config_init(struct bgr_jobs_config *c)
{
    memset(c, 0, sizeof(*c));
}

/* Under j->mu. */
static void record_time(struct bgr_jobs *j, enum bgr_refine refine, int64_t ms)
{
    BGR_ASSERT((unsigned)refine < BGR_JOBS_REFINE_SLOTS);
    j->recent[refine].ms[j->recent[refine].i] = ms;
    j->recent[refine].i = (j->recent[refine].i + 1) % BGR_JOBS_RECENT;
    if (j->recent[refine].n < BGR_JOBS_RECENT)
        j->recent[refine].n++;
}

/* Removes an unused result object (its commit failed). Should that fail
 * too, the orphan sweep removes it later. */
void bgr_jobs_drop_object(struct bgr_jobs *j, const char *key)
{
    struct bgr_error e;
    if (bgr_results_delete(j->cfg.results, key, &e) != 0)
        bgr_log(BGR_LOG_WARN, "jobs: cannot remove unused result %s: %s", key, e.msg);
}

/* Runs the pipeline (or render, with render_ctx) and writes the result
 * object; *img describes it (not yet committed). Reads only its arguments:
 * a worker passes its own copies when the job may be abandoned. */
int bgr_jobs_produce(struct bgr_jobs *j, const struct bgr_account *acct, const void *data,
                     size_t len, const struct bgr_output_opts *opts, const char *batch_id,
                     const struct bgr_remove_req *render, double credits, struct bgr_image *img,
                     struct bgr_error *err)
{
    struct bgr_result res = {0};
    struct bgr_image m = {0};
    double t0 = bgr_now_sec();
    int rc =
        render
            ? render->render(render->render_ctx, j->cfg.model, data, len, &j->cfg.limits, &res, err)
            : j->cfg.process(j->cfg.process_ctx, data, len, &j->cfg.limits, opts, &res, err);
    if (rc)
        return rc;
    bgr_store_new_id("img_", m.id);
    (void)snprintf(m.account_id, sizeof(m.account_id), "%s", acct->id);
    (void)snprintf(m.batch_id, sizeof(m.batch_id), "%s", batch_id ? batch_id : "");
    (void)snprintf(m.format, sizeof(m.format), "%s", bgr_format_name(res.format));
    (void)snprintf(m.ext, sizeof(m.ext), "%s", res.ext ? res.ext : m.format);
    (void)snprintf(m.mime, sizeof(m.mime), "%s", res.mime ? res.mime : "application/octet-stream");
    rc = bgr_results_key_make(m.id, m.ext, m.path, err);
    if (rc)
        goto out;
    bgr_sha256_hex(res.data, res.len, m.sha256);
    m.width = res.width;
    m.height = res.height;
    m.original_width = res.original_width;
    m.original_height = res.original_height;
    m.confidence = res.confidence;
    if (res.has_subject) {
        m.subject_x = res.subject.x;
        m.subject_y = res.subject.y;
        m.subject_w = res.subject.width;
        m.subject_h = res.subject.height;
    }
    m.size_bytes = (int64_t)res.len;
    m.credits = credits > 0 ? credits : 1;
    rc = bgr_results_put(j->cfg.results, m.path, res.data, res.len, m.mime, err);
    if (rc)
        goto out;
    m.processing_ms = (int64_t)((bgr_now_sec() - t0) * 1000.0 + 0.5);
    m.created_at_ms = bgr_wall_ms();
    m.expires_at_ms = m.created_at_ms + acct->plan.retention_s * 1000;
    *img = m;
out:
    bgr_result_release(&res);
    return rc;
}

/* Adds image.failed for a sync job that asked for webhooks. Best effort:
 * the client gets the error in its response anyway. */
void bgr_jobs_send_failed(struct bgr_jobs *j, const struct bgr_account *acct, const char *url,
                          const char *image_url, int rc, const struct bgr_error *e)
{
    struct bgr_error err2;
    int64_t now = bgr_wall_ms();
    json_t *data = json_pack(
        "{s:o, s:{s:s, s:s}}", "image_url", image_url ? json_string(image_url) : json_null(),
        "error", "code", bgr_err_code(rc), "message", e->msg[0] ? e->msg : bgr_err_default_msg(rc));
    char *payload = data ? bgr_jobs_event_payload("image.failed", now, data) : NULL;
    struct bgr_webhook_new wh = {.url = url, .event = "image.failed", .payload = payload};
    if (!payload || bgr_store_outbox_add(j->store, acct->id, &wh, now, &err2) != 0)
        bgr_log(BGR_LOG_WARN, "jobs: could not queue image.failed for %s", acct->id);
    else
        bgr_jobs_kick_deliverer(j);
    free(payload);
}

bool bgr_jobs_worker_given_up(struct bgr_jobs *j, struct bgr_worker *w)
{
    bool abandoned;
    pthread_mutex_lock(&j->mu);
    abandoned = w->abandoned;
    w->committing = !abandoned;
    pthread_mutex_unlock(&j->mu);
    return abandoned;
}

/* A sync job on worker w. Returns its rc (BGR_EPROCESSING_TIMEOUT when
 * abandoned; then nothing was committed or sent, and the caller, answered
 * by the watchdog, sends image.failed). */
/* The render of a copied job: the registered render on the job's copies
 * of its spec and second input (bgr_remove_req.render's signature). */
static int own_render_fn(void *ctx, struct bgr_model *model, const void *data, size_t len,
                         const struct bgr_decode_limits *lim, struct bgr_result *res,
                         struct bgr_error *err)
{
    struct bgr_sync_job *job = ctx;
    return job->own_render->fn(job->own_spec, job->own_extra, job->own_extra_len, model, data, len,
                               lim, res, job->own_outcome, sizeof(job->own_outcome), err);
}

static int run_sync(struct bgr_jobs *j, struct bgr_worker *w, struct bgr_sync_job *job)
{
    /* the copies when made (job->abandonable), else the caller's state */
    bool own = job->abandonable;
    struct bgr_remove_req own_rr = {.render = own_render_fn, .render_ctx = job};
    const struct bgr_remove_req *render = own && job->own_render     ? &own_rr
                                          : !own && job->req->render ? job->req
                                                                     : NULL;
    const struct bgr_account *acct = own ? &job->own_acct : job->acct;
    struct bgr_error e = {0};
    struct bgr_image img;
    char *payload = NULL;
    int rc = bgr_jobs_produce(j, acct, own ? job->own_data : job->data, job->len,
                              own ? &job->own_opts : job->opts, NULL, render, job->own_credits,
                              &img, &e);
    if (bgr_jobs_worker_given_up(j, w)) {
        if (!rc)
            bgr_jobs_drop_object(j, img.path);
        return BGR_EPROCESSING_TIMEOUT;
    }
    /* Not abandoned: the caller waits, its pointers are valid. */
    if (rc && job->own_render && job->own_outcome[0] && job->req->outcome && job->req->outcome_len)
        (void)snprintf(job->req->outcome, job->req->outcome_len, "%s", job->own_outcome);
    if (!rc) {
        struct bgr_webhook_new wh = {.url = job->webhook_url, .event = "image.completed"};
        if (job->webhook_url) {
            payload = bgr_jobs_event_payload("image.completed", img.created_at_ms,
                                             bgr_jobs_image_json(&img, j->public_url));
            wh.payload = payload;
            if (!payload)
                rc = bgr_error_set(&e, BGR_ENOMEM, "out of memory");
        }
        if (!rc)
            rc = bgr_store_image_add(j->store, job->acct, &img, job->webhook_url ? &wh : NULL, &e);
        if (rc)
            bgr_jobs_drop_object(j, img.path);
        else if (job->webhook_url)
            bgr_jobs_kick_deliverer(j);
    }
    if (rc && job->webhook_url)
        bgr_jobs_send_failed(j, job->acct, job->webhook_url, job->image_url, rc, &e);
    free(payload);
    job->err = e;
    if (!rc)
        job->img = img;
    return rc;
}

/* A downloaded batch item on worker w, start to finish. Returns 0 if it
 * completed; *ms is the processing time of the result (0 if none). */
static int run_fetched(struct bgr_jobs *j, struct bgr_worker *w, struct bgr_fetched *f, int64_t *ms)
{
    struct bgr_error e = {0};
    struct bgr_image img;
    bool done = false;
    int rc = bgr_jobs_produce(j, &f->acct, f->body.data, f->body.len, &f->it->opts, f->it->batch_id,
                              NULL, 1, &img, &e);
    bgr_buf_release(&f->body);
    if (bgr_jobs_worker_given_up(j, w)) { /* the watchdog failed the item */
        if (!rc)
            bgr_jobs_drop_object(j, img.path);
        return BGR_EPROCESSING_TIMEOUT;
    }
    if (rc)
        goto out;
    rc = bgr_store_item_complete(j->store, f->id, &f->acct, &img, bgr_wall_ms(), &done, &e);
    if (rc) {
        bgr_jobs_drop_object(j, img.path);
        goto out;
    }
    *ms = img.processing_ms;
    pthread_mutex_lock(&j->mu);
    record_time(j, f->it->opts.refine, img.processing_ms);
    pthread_mutex_unlock(&j->mu);
    if (done)
        bgr_jobs_kick_deliverer(j);
out:
    if (rc && rc != BGR_ENOT_FOUND)
        bgr_jobs_fail_item(j, f->id, rc, &e);
    return rc;
}

/* Drops one reference to a sync job; frees it with the last. Under mu. */
static void sync_job_unref(struct bgr_sync_job *job)
{
    BGR_ASSERT(job->refs > 0);
    if (--job->refs == 0) {
        free(job->own_data);
        free(job->own_spec);
        free(job->own_extra);
        free(job);
    }
}

/* Makes the worker's copies of what the pipeline reads, so the caller may
 * be answered at the ceiling and leave. A job with a render hook is copied
 * when it names a render the jobs know (its spec and second input are
 * then copied too; the remove.bg route's); else it reads the caller's
 * state through the hook and is not copied (see bgr_jobs_remove).
 * Returns false when not copied (also on out-of-memory: the job then runs
 * on the caller's state). */
static bool sync_job_copy(struct bgr_jobs *j, struct bgr_sync_job *job)
{
    const struct bgr_remove_req *r = job->req;
    if (r->render) {
        for (size_t i = 0; r->render_name && i < j->cfg.n_renders; i++)
            if (strcmp(j->cfg.renders[i].name, r->render_name) == 0)
                job->own_render = &j->cfg.renders[i];
        if (!job->own_render)
            return false;
        job->own_spec = strdup(r->render_spec ? r->render_spec : "");
        job->own_extra = r->render_extra_len ? malloc(r->render_extra_len) : NULL;
        if (!job->own_spec || (r->render_extra_len && !job->own_extra)) {
            job->own_render = NULL;
            return false;
        }
        if (r->render_extra_len)
            memcpy(job->own_extra, r->render_extra, r->render_extra_len);
        job->own_extra_len = r->render_extra_len;
    }
    job->own_data = malloc(job->len ? job->len : 1);
    if (!job->own_data) {
        job->own_render = NULL;
        return false;
    }
    memcpy(job->own_data, job->data, job->len);
    job->own_acct = *job->acct;
    job->own_opts = *job->opts;
    return true;
}

static void *worker_main(void *arg);

/* Starts a job thread (j->wk_main) in a free slot; under mu. False if
 * none is free or the thread cannot start. */
static bool worker_spawn(struct bgr_jobs *j)
{
    for (int i = 0; i < j->wk_cap; i++) {
        struct bgr_worker *w = &j->wk[i];
        if (w->state == BGR_W_RUNNING)
            continue;
        if (w->state == BGR_W_EXITED) /* it returned already: the join is immediate */
            pthread_join(w->t, NULL);
        memset(w, 0, sizeof(*w));
        w->j = j;
        if (pthread_create(&w->t, NULL, j->wk_main, w) != 0) {
            w->state = BGR_W_UNUSED;
            return false;
        }
        w->state = BGR_W_RUNNING;
        j->n_live++;
        return true;
    }
    return false;
}

static void *worker_main(void *arg)
{
    struct bgr_worker *w = arg;
    struct bgr_jobs *j = w->j;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        struct bgr_sync_job *job = NULL;
        struct bgr_fetched *f = NULL;
        int64_t ms = 0;
        bool abandoned, copied = false;
        int rc;
        while (!j->stopping && !j->q_head && !j->r_head)
            pthread_cond_wait(&j->work_cv, &j->mu);
        if (j->stopping)
            break;
        bool take_batch = j->r_head && (!j->q_head || (++j->turn % 4) == 0);
        if (take_batch) {
            f = j->r_head;
            j->r_head = f->next;
            if (!j->r_head)
                j->r_tail = NULL;
            j->r_len--;
            pthread_cond_broadcast(&j->fetch_cv); /* room for another download */
        } else {
            job = j->q_head;
            j->q_head = job->next;
            if (!j->q_head)
                j->q_tail = NULL;
            j->q_len--;
            job->refs++;
            job->own_credits = job->req->credits;
        }
        j->in_flight++;
        w->sync = job;
        w->item = f ? f->id : 0;
        w->abandoned = w->committing = false;
        w->deadline_ms = 0; /* not before the copy below */
        pthread_mutex_unlock(&j->mu);

        if (job)
            copied = sync_job_copy(j, job);
        pthread_mutex_lock(&j->mu);
        if (job)
            job->abandonable = copied;
        w->deadline_ms = bgr_now_ms() + j->cfg.job_timeout_ms;
        pthread_cond_signal(&j->wd_cv);
        pthread_mutex_unlock(&j->mu);

        if (job) {
            rc = run_sync(j, w, job);
            ms = rc ? 0 : job->img.processing_ms;
        } else {
            rc = run_fetched(j, w, f, &ms);
            bgr_jobs_fetched_free(f);
        }
        if (j->cfg.on_image && (job || rc != BGR_ENOT_FOUND))
            j->cfg.on_image(j->cfg.on_image_ctx, rc == 0, ms);

        pthread_mutex_lock(&j->mu);
        abandoned = w->abandoned;
        w->deadline_ms = 0;
        w->sync = NULL;
        w->item = 0;
        j->in_flight--;
        if (rc == 0)
            j->processed++;
        else if (rc != BGR_ENOT_FOUND || job)
            j->failed++;
        if (job) {
            if (!rc)
                record_time(j, job->opts->refine, job->img.processing_ms);
            if (!abandoned)
                job->rc = rc;
            /* abandoned: the watchdog set rc, and answered the caller
             * unless the job reads the caller's state (render hook) */
            job->done = true;
            pthread_cond_broadcast(&j->done_cv);
            sync_job_unref(job);
        }
        pthread_cond_broadcast(&j->idle_cv);
        if (abandoned) {
            bgr_log(BGR_LOG_INFO, "jobs: an abandoned run ended (%s); its result was discarded",
                    bgr_err_code(rc));
            if (!bgr_jobs_worker_rejoin(j, w))
                break;
        }
    }
    w->state = BGR_W_EXITED;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

bool bgr_jobs_worker_rejoin(struct bgr_jobs *j, struct bgr_worker *w)
{
    BGR_ASSERT(w->abandoned);
    w->abandoned = false;
    /* a replacement took this thread's place: end; else carry on */
    if (j->n_live >= j->wk_target)
        return false;
    j->n_live++;
    return true;
}

/* Gives up on job thread w's job at the ceiling; under mu. *a says what
 * the caller records outside the lock. */
static void abandon(struct bgr_jobs *j, struct bgr_worker *w, struct bgr_abandoned *a)
{
    bool sync = w->sync || (w->q_job && !w->q_job->is_item);
    memset(a, 0, sizeof(*a));
    w->abandoned = true;
    j->n_live--;
    if (j->wk_main != worker_main) {
        bgr_jobs_queue_abandon(j, w, a);
    } else if (w->sync) {
        struct bgr_sync_job *job = w->sync;
        job->rc = bgr_jobs_err_ceiling(j, &job->err);
        if (job->abandonable) {
            job->done = true;
            pthread_cond_broadcast(&j->done_cv);
        }
    } else {
        a->item = w->item;
    }
    bgr_log(BGR_LOG_WARN, "jobs: %s passed the %lld ms ceiling: abandoned",
            sync ? "a request" : "a batch item", (long long)j->cfg.job_timeout_ms);
    /* The abandoned run keeps its thread (and CPU) until it ends; a
     * replacement keeps the pool's capacity, up to twice the threads. */
    if (j->n_live < j->wk_target && !worker_spawn(j))
        bgr_log(BGR_LOG_WARN, "jobs: no replacement thread (%d abandoned runs still going)",
                j->wk_cap - j->n_live);
}

/* The watchdog: fails the jobs that run past cfg.job_timeout_ms, in
 * either mode (a queue thread's deadline counts from its claim). */
static void *watchdog_main(void *arg)
{
    struct bgr_jobs *j = arg;
    struct bgr_abandoned *fail = j->wd_fail;
    pthread_mutex_lock(&j->mu);
    while (!j->stopping) {
        int64_t now = bgr_now_ms(), next = 0;
        int n_fail = 0;
        for (int i = 0; i < j->wk_cap; i++) {
            struct bgr_worker *w = &j->wk[i];
            if (w->state != BGR_W_RUNNING || !w->deadline_ms || w->abandoned || w->committing)
                continue;
            if (w->deadline_ms <= now) {
                abandon(j, w, &fail[n_fail]);
                if (fail[n_fail].item || fail[n_fail].sync_id)
                    n_fail++;
            } else if (!next || w->deadline_ms < next) {
                next = w->deadline_ms;
            }
        }
        if (n_fail) {
            pthread_mutex_unlock(&j->mu);
            for (int i = 0; i < n_fail; i++) {
                struct bgr_error e = {0};
                bgr_jobs_err_ceiling(j, &e);
                if (fail[i].item)
                    bgr_jobs_fail_item(j, fail[i].item, BGR_EPROCESSING_TIMEOUT, &e);
                else
                    bgr_jobs_queue_fail_abandoned(j, &fail[i]);
                free(fail[i].webhook_url);
                free(fail[i].image_url);
            }
            pthread_mutex_lock(&j->mu);
            continue;
        }
        if (!next) {
            pthread_cond_wait(&j->wd_cv, &j->mu);
        } else {
            struct timespec ts;
            int64_t wait = next - now + 1;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            (void)pthread_cond_timedwait(&j->wd_cv, &j->mu, &ts);
        }
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

static void apply_defaults(struct bgr_jobs_config *c)
{
    if (c->workers <= 0)
        c->workers = 2;
    if (c->queue_size <= 0)
        c->queue_size = 16;
    if (c->max_backlog <= 0)
        c->max_backlog = 2000;
    if (c->webhook_base_ms <= 0)
        c->webhook_base_ms = 15000;
    if (c->webhook_max_attempts <= 0)
        c->webhook_max_attempts = 9;
    if (c->webhook_timeout_ms <= 0)
        c->webhook_timeout_ms = 10000;
    if (c->sweep_interval_ms <= 0)
        c->sweep_interval_ms = 60000;
    if (c->fetch_workers <= 0)
        c->fetch_workers = 4;
    if (c->fetch_per_account <= 0)
        c->fetch_per_account = 2;
    if (c->fetch_buffer <= 0)
        c->fetch_buffer = 8;
    if (c->fetch_buffer < c->fetch_workers)
        c->fetch_buffer = c->fetch_workers;
    if (c->webhook_workers <= 0)
        c->webhook_workers = 8;
    if (c->webhook_per_host <= 0)
        c->webhook_per_host = 2;
    if (c->job_timeout_ms <= 0)
        c->job_timeout_ms = 120000;
}

/* Queues recovered batch item ids, each in its account's lane. */
static void requeue(struct bgr_jobs *j, const int64_t *ids, size_t n)
{
    struct bgr_batch_item *it = bgr_xmalloc(sizeof(*it));
    for (size_t i = 0; i < n; i++) {
        struct bgr_error e;
        /* an unreadable row still goes through the stage, which fails it */
        const char *owner = bgr_store_item_get(j->store, ids[i], it, &e) == 0 ? it->account_id : "";
        pthread_mutex_lock(&j->mu);
        bgr_jobs_fetch_push(j, owner, &ids[i], 1);
        pthread_mutex_unlock(&j->mu);
    }
    free(it);
}

/* local: this process's own queue (workers, watchdog, fetchers); without,
 * a shared store's: its job threads (queue.c), if any, and the watchdog;
 * then either way the webhook and sweeper threads. */
static int start_threads(struct bgr_jobs *j, bool local, struct bgr_error *err)
{
    /* A queue's job threads: the workers, plus fetch_workers more. A batch
     * item's download runs on the thread that claimed it, and inference is
     * one run at a time per model whatever the thread count, so the extra
     * threads let slow downloads wait without holding the others; the
     * per-account cap in the claim keeps one account from taking them all. */
    j->wk_target = local            ? j->cfg.workers
                   : j->cfg.workers ? j->cfg.workers + j->cfg.fetch_workers
                                    : 0;
    j->wk_main = local ? worker_main : bgr_jobs_queue_worker_main;
    if (j->wk_target == 0)
        goto background; /* an API node: others do the work */
    j->wk_cap = 2 * j->wk_target;
    j->wk = bgr_xcalloc((size_t)j->wk_cap, sizeof(*j->wk));
    /* Allocated here: a watchdog thread that never allocates gets no
     * malloc arena of its own (which would shift the arenas of the threads
     * started after it, and with them the memory glibc keeps). */
    j->wd_fail = bgr_xcalloc((size_t)j->wk_cap, sizeof(*j->wd_fail));
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < j->wk_target; i++) {
        if (!worker_spawn(j)) {
            pthread_mutex_unlock(&j->mu);
            return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start a worker thread");
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (pthread_create(&j->watchdog, NULL, watchdog_main, j) != 0)
        return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start the watchdog thread");
    j->watchdog_started = true;
    if (!local)
        goto background;
    j->fetchers = bgr_xcalloc((size_t)j->cfg.fetch_workers, sizeof(*j->fetchers));
    for (int i = 0; i < j->cfg.fetch_workers; i++) {
        if (pthread_create(&j->fetchers[i], NULL, bgr_jobs_fetcher_main, j) != 0)
            return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start a fetch thread");
        j->n_fetchers++;
    }
background:
    j->wh_slots = bgr_xcalloc((size_t)j->cfg.webhook_workers, sizeof(*j->wh_slots));
    j->wh_threads = bgr_xcalloc((size_t)j->cfg.webhook_workers, sizeof(*j->wh_threads));
    for (int i = 0; i < j->cfg.webhook_workers; i++) {
        if (pthread_create(&j->wh_threads[i], NULL, bgr_jobs_wh_thread_main, j) != 0)
            return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start a webhook thread");
        j->n_wh_threads++;
    }
    if (pthread_create(&j->deliverer, NULL, bgr_jobs_deliverer_main, j) != 0)
        return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start the webhook thread");
    j->deliverer_started = true;
    if (pthread_create(&j->sweeper, NULL, bgr_jobs_sweeper_main, j) != 0)
        return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start the sweeper thread");
    j->sweeper_started = true;
    return 0;
}

int bgr_jobs_start(struct bgr_store *store, const struct bgr_jobs_config *cfg,
                   struct bgr_jobs **out, struct bgr_error *err)
{
    struct bgr_jobs *j;
    pthread_condattr_t mono;
    int64_t *ids = NULL;
    size_t n = 0;
    int rc;

    if (!cfg->process && !cfg->model && !cfg->api_only)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "jobs: no model and no process function");
    rc = bgr_net_global_init(err);
    if (rc)
        return rc;
    j = bgr_xcalloc(1, sizeof(*j));
    j->lock_fd = -1;
    j->store = store;
    j->cfg = *cfg;
    j->public_url = bgr_xstrdup(cfg->public_url ? cfg->public_url : "http://localhost:8080");
    {
        size_t l = strlen(j->public_url);
        while (l > 0 && j->public_url[l - 1] == '/')
            j->public_url[--l] = 0;
    }
    j->cfg.public_url = j->public_url;
    if (!j->cfg.results) {
        char *dir = NULL;
        if (asprintf(&dir, "%s/results", bgr_store_data_dir(store)) < 0) {
            free(j->public_url);
            free(j);
            return bgr_error_set(err, BGR_ENOMEM, "out of memory");
        }
        rc = bgr_results_open(dir, NULL, &j->owned, err);
        free(dir);
        if (rc) {
            free(j->public_url);
            free(j);
            return rc;
        }
        j->cfg.results = j->owned;
    }
    if (!j->cfg.process) {
        j->cfg.process = bgr_jobs_pipeline_process;
        j->cfg.process_ctx = cfg->model;
    }
    apply_defaults(&j->cfg);
    bgr_rrq_init(&j->fetch_q);
    atomic_init(&j->cancel, 0);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->work_cv, NULL);
    pthread_cond_init(&j->done_cv, NULL);
    pthread_cond_init(&j->idle_cv, NULL);
    pthread_cond_init(&j->bg_cv, NULL);
    pthread_cond_init(&j->fetch_cv, NULL);
    pthread_cond_init(&j->wh_cv, NULL);
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC); /* deadlines are bgr_now_ms */
    pthread_cond_init(&j->wd_cv, &mono);
    pthread_condattr_destroy(&mono);
    pthread_cond_init(&j->q_slot_cv, NULL);
    if (j->cfg.job_lease_ms <= 0)
        j->cfg.job_lease_ms = 30000;
    if (j->cfg.job_max_attempts <= 0)
        j->cfg.job_max_attempts = 3;
    if (j->cfg.sync_wait_ms <= 0)
        j->cfg.sync_wait_ms = 300000;
    if (j->cfg.api_only && !bgr_store_shared(store)) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                           "jobs: no local workers needs a shared store (--store postgresql://...)"
                           " and `bgremover worker` processes");
        goto fail;
    }
    if (bgr_store_shared(store)) {
        /* The store is the queue: no lock on the data directory (many
         * processes share the work) and no recovery (leases do it). */
        if (j->cfg.api_only)
            j->cfg.workers = 0;
        rc = bgr_jobs_queue_start(j, err);
        if (!rc)
            rc = start_threads(j, false, err);
        if (rc)
            goto fail;
        *out = j;
        return 0;
    }

    /* Recovery below requeues every item left "processing": right after a
     * crash, wrong if another live server is working on them. The lock
     * (released by the kernel even on kill -9) keeps it to one server. */
    {
        char *lock = NULL;
        if (asprintf(&lock, "%s/server.lock", bgr_store_data_dir(store)) >= 0) {
            j->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            free(lock);
        }
        if (j->lock_fd < 0 || flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
            rc = bgr_error_set(err, BGR_EIO, "jobs: another server is using the data directory %s",
                               bgr_store_data_dir(store));
            goto fail;
        }
    }

    /* Crash recovery before any worker runs: what a previous run left
     * queued or processing is queued again (outside max_backlog: it was
     * accepted already). */
    rc = bgr_store_items_recover(store, &ids, &n, err);
    if (rc)
        goto fail;
    if (n)
        bgr_log(BGR_LOG_INFO, "jobs: resuming %zu unfinished batch items", n);
    requeue(j, ids, n);
    free(ids);

    rc = start_threads(j, true, err);
    if (rc)
        goto fail;
    *out = j;
    return 0;
fail:
    bgr_jobs_stop(j);
    return rc;
}

void bgr_jobs_stop(struct bgr_jobs *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stopping = true;
    atomic_store(&j->cancel, 1);
    for (struct bgr_sync_job *job = j->q_head; job; job = job->next) {
        job->rc = bgr_error_set(&job->err, BGR_ESERVICE_BUSY, "the server is shutting down");
        job->done = true;
    }
    j->q_head = j->q_tail = NULL;
    j->q_len = 0;
    pthread_cond_broadcast(&j->work_cv);
    pthread_cond_broadcast(&j->done_cv);
    pthread_cond_broadcast(&j->bg_cv);
    pthread_cond_broadcast(&j->fetch_cv);
    pthread_cond_broadcast(&j->wh_cv);
    pthread_cond_broadcast(&j->wd_cv);
    pthread_mutex_unlock(&j->mu);
    /* the watchdog first: it is the one that starts workers; after it,
     * no slot changes from unused to used */
    if (j->watchdog_started)
        pthread_join(j->watchdog, NULL);
    for (int i = 0; i < j->wk_cap; i++) {
        bool used;
        pthread_mutex_lock(&j->mu);
        used = j->wk[i].state != BGR_W_UNUSED;
        pthread_mutex_unlock(&j->mu);
        if (used)
            pthread_join(j->wk[i].t, NULL);
    }
    /* a shared store's listeners and lease renewer: after the job threads,
     * whose leases it renews to the end */
    bgr_jobs_queue_stop(j);
    for (int i = 0; i < j->n_fetchers; i++)
        pthread_join(j->fetchers[i], NULL);
    if (j->deliverer_started)
        pthread_join(j->deliverer, NULL);
    for (int i = 0; i < j->n_wh_threads; i++)
        pthread_join(j->wh_threads[i], NULL);
    if (j->sweeper_started)
        pthread_join(j->sweeper, NULL);
    /* Items the stage started (downloading, or downloaded and not run)
     * are "processing" in the store: put them back to "queued", as the
     * contract says, so the data directory reads right while no server
     * runs. Every thread has ended and the flock makes this server the
     * only one, so "processing" can only be ours. (A queue shared by
     * several servers would release only its own claims instead.) The
     * next start queues them again either way. */
    if (j->wk && !bgr_store_shared(j->store)) {
        struct bgr_error e;
        int64_t *ids = NULL;
        size_t n = 0;
        if (bgr_store_items_recover(j->store, &ids, &n, &e) != 0)
            bgr_log(BGR_LOG_WARN, "jobs: at stop: %s (the next start requeues them)", e.msg);
        free(ids);
    }
    bgr_jobs_fetch_release(j);
    for (int i = 0; j->wh_slots && i < j->cfg.webhook_workers; i++)
        if (j->wh_slots[i].state != BGR_WH_FREE)
            bgr_webhook_release(&j->wh_slots[i].w);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->work_cv);
    pthread_cond_destroy(&j->done_cv);
    pthread_cond_destroy(&j->idle_cv);
    pthread_cond_destroy(&j->bg_cv);
    pthread_cond_destroy(&j->fetch_cv);
    pthread_cond_destroy(&j->wh_cv);
    pthread_cond_destroy(&j->wd_cv);
    pthread_cond_destroy(&j->q_slot_cv);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* releases the flock */
    free(j->wk);
    free(j->wd_fail);
    free(j->fetchers);
    free(j->wh_slots);
    free(j->wh_threads);
    bgr_results_close(j->owned);
    free(j->public_url);
    free(j);
}

int bgr_jobs_remove(struct bgr_jobs *j, const struct bgr_remove_req *r, struct bgr_image *out,
                    struct bgr_error *err)
{
    struct bgr_sync_job *job;
    struct bgr_error je = {0};
    struct bgr_buf body = {0};
    double remaining = 0, need = r->credits > 0 ? r->credits : 1;
    int rc;

    if (!r->acct || (r->data == NULL) == (r->image_url == NULL))
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "give either image bytes or a URL");
    rc = bgr_store_credits_exact(j->store, r->acct, bgr_wall_ms(), NULL, &remaining, err);
    if (rc)
        return rc;
    if (remaining != BGR_UNLIMITED && remaining < need)
        return remaining <= 0 ? bgr_store_err_credits_spent(r->acct, bgr_wall_ms(), err)
                              : bgr_error_set(err, BGR_EINSUFFICIENT_CREDITS,
                                              "%g credits are left this month; this image costs %g",
                                              remaining, need);
    /* A full queue answers before the download: 503 should be cheap. The
     * binding check is at enqueue below. */
    pthread_mutex_lock(&j->mu);
    bool full = j->stopping || j->q_len >= j->cfg.queue_size;
    pthread_mutex_unlock(&j->mu);
    if (full)
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "the processing queue is full, retry later");
    /* image_url is fetched here, on the request's own thread (the HTTP
     * layer runs each handler on a thread of its own): the wait holds only
     * this client's connection, never a worker or a shared fetch thread,
     * and the client is answered by its own download's timeout. */
    if (r->image_url) {
        rc = bgr_jobs_fetch(j, r->acct, r->image_url, &body, err);
        if (rc) {
            if (r->webhook_url && rc != BGR_EINVALID_PARAMETER && rc != BGR_ESERVICE_BUSY)
                bgr_jobs_send_failed(j, r->acct, r->webhook_url, r->image_url, rc, err);
            return rc;
        }
    } else if (r->len > (size_t)r->acct->plan.max_bytes) {
        return bgr_error_set(err, BGR_EFILE_TOO_LARGE, "the image is larger than %lld bytes",
                             (long long)r->acct->plan.max_bytes);
    }
    if (bgr_store_shared(j->store)) {
        rc = bgr_jobs_remove_queued(j, r, r->image_url ? body.data : r->data,
                                    r->image_url ? body.len : r->len, out, err);
        bgr_buf_release(&body);
        return rc;
    }
    job = bgr_xcalloc(1, sizeof(*job));
    job->refs = 1;
    job->acct = r->acct;
    job->req = r;
    job->opts = &r->opts;
    job->webhook_url = r->webhook_url;
    job->image_url = r->image_url;
    job->data = r->image_url ? body.data : r->data;
    job->len = r->image_url ? body.len : r->len;

    pthread_mutex_lock(&j->mu);
    if (j->stopping || j->q_len >= j->cfg.queue_size) {
        pthread_mutex_unlock(&j->mu);
        free(job);
        bgr_buf_release(&body);
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "the processing queue is full, retry later");
    }
    if (j->q_tail)
        j->q_tail->next = job;
    else
        j->q_head = job;
    j->q_tail = job;
    j->q_len++;
    pthread_cond_signal(&j->work_cv);
    while (!job->done)
        pthread_cond_wait(&j->done_cv, &j->mu);
    rc = job->rc;
    if (rc)
        je = job->err;
    else
        *out = job->img;
    sync_job_unref(job); /* the worker may still hold it (abandoned at the ceiling) */
    pthread_mutex_unlock(&j->mu);

    /* Abandoned: the worker commits and sends nothing; the failure event
     * is ours to add. */
    if (rc == BGR_EPROCESSING_TIMEOUT && r->webhook_url)
        bgr_jobs_send_failed(j, r->acct, r->webhook_url, r->image_url, rc, &je);
    if (rc && err)
        *err = je;
    bgr_buf_release(&body);
    return rc;
}

/* Model runs per image of a refine mode (docs/QUALITY.md): what scales a
 * time measured in one mode to another. auto runs 1 or 3: 1.37 on average
 * over the dev set and the test photos (37 runs for 27 images). */
static double model_runs(int refine)
{
    return refine == BGR_REFINE_FULL ? 4.0 : refine == BGR_REFINE_AUTO ? 1.37 : 1.0;
}

static double slot_mean(const struct bgr_jobs *j, int refine)
{
    int64_t sum = 0;
    for (int i = 0; i < j->recent[refine].n; i++)
        sum += j->recent[refine].ms[i];
    return (double)sum / j->recent[refine].n;
}

/* The expected time of one image in this refine mode, under j->mu: the
 * mode's own recent mean; else the recent time per model run of the modes
 * seen, times this mode's runs; else the store's recent mean (the last
 * run's), likewise scaled; else a cold guess. */
static int64_t mean_recent(struct bgr_jobs *j, enum bgr_refine refine)
{
    int64_t mean = 0;
    struct bgr_error e;
    double per_run = 0;
    int modes = 0;
    if (j->recent[refine].n)
        return (int64_t)(slot_mean(j, refine) + 0.5);
    for (int r = 0; r < BGR_JOBS_REFINE_SLOTS; r++)
        if (j->recent[r].n) {
            per_run += slot_mean(j, r) / model_runs(r);
            modes++;
        }
    if (modes)
        return (int64_t)(per_run / modes * model_runs(refine) + 0.5);
    if (bgr_store_recent_processing_ms(j->store, 20, &mean, &e) == 0 && mean > 0)
        return (int64_t)((double)mean * model_runs(refine));
    return (int64_t)(2000 * model_runs(refine)); /* a cold guess on a few cores */
}

int bgr_jobs_batch_submit(struct bgr_jobs *j, const struct bgr_account *acct,
                          const char *webhook_url, const struct bgr_batch_item_new *items, size_t n,
                          struct bgr_batch *out, int64_t *est_ms, struct bgr_error *err)
{
    struct bgr_batch b;
    struct bgr_batch_item *its = NULL;
    int64_t *ids = NULL, work, slowest = 0;
    size_t got = 0, ahead;
    int rc;

    if (n == 0 || n > BGR_BATCH_MAX_ITEMS)
        return bgr_error_set(err, BGR_EBATCH_TOO_LARGE, "a batch holds 1 to %d images",
                             BGR_BATCH_MAX_ITEMS);
    pthread_mutex_lock(&j->mu);
    bool full = j->stopping || bgr_jobs_fetch_backlog(j) + n > (size_t)j->cfg.max_backlog;
    pthread_mutex_unlock(&j->mu);
    if (full)
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "too many batch images waiting, retry later");
    rc = bgr_store_batch_create(j->store, acct->id, webhook_url, items, n, BGR_BATCH_MAX_ITEMS,
                                bgr_wall_ms(), &b, err);
    if (rc)
        return rc;
    rc = bgr_store_batch_items(j->store, b.id, &its, &got, err);
    if (rc)
        return rc; /* persisted: the next start runs it */
    ids = bgr_xcalloc(got ? got : 1, sizeof(*ids));
    for (size_t i = 0; i < got; i++)
        ids[i] = its[i].item_id;
    free(its);
    pthread_mutex_lock(&j->mu);
    ahead = (size_t)j->q_len + bgr_jobs_fetch_backlog(j) + (size_t)j->in_flight;
    if (bgr_store_shared(j->store)) {
        /* the stored items are the queue (woken by the store's NOTIFY) */
        int64_t sync_ready = 0, items_ready = 0;
        pthread_mutex_unlock(&j->mu);
        if (bgr_store_queue_depth(j->store, bgr_wall_ms(), &sync_ready, &items_ready, NULL) == 0)
            ahead = (size_t)(sync_ready + items_ready) > got
                        ? (size_t)(sync_ready + items_ready) - got
                        : 0;
        pthread_mutex_lock(&j->mu);
    } else {
        /* admitted above; a race may overshoot by one batch */
        bgr_jobs_fetch_push(j, acct->id, ids, got);
    }
    /* The work ahead at the default mode's pace, then each item at its own
     * mode's; the workers share it. */
    work = (int64_t)ahead * mean_recent(j, BGR_REFINE_FAST);
    for (size_t i = 0; i < n; i++) {
        int64_t m = mean_recent(j, items[i].opts.refine);
        work += m;
        slowest = m > slowest ? m : slowest;
    }
    pthread_mutex_unlock(&j->mu);
    free(ids);
    if (est_ms) {
        int64_t w = j->cfg.workers > 0 ? j->cfg.workers : 1;
        /* never less than its slowest item alone */
        *est_ms = (work + w - 1) / w > slowest ? (work + w - 1) / w : slowest;
    }
    *out = b;
    return 0;
}

void bgr_jobs_get_stats(struct bgr_jobs *j, struct bgr_jobs_stats *st)
{
    pthread_mutex_lock(&j->mu);
    st->queue_depth = j->q_len;
    st->backlog = (int)bgr_jobs_fetch_backlog(j);
    st->in_flight = j->in_flight;
    st->workers = j->cfg.workers;
    st->processed = j->processed;
    st->failed = j->failed;
    pthread_mutex_unlock(&j->mu);
}

bool bgr_jobs_wait_idle(struct bgr_jobs *j, int64_t timeout_ms)
{
    int64_t deadline = bgr_now_ms() + timeout_ms;
    for (;;) {
        int64_t next = 0;
        struct bgr_error e;
        bool busy;
        pthread_mutex_lock(&j->mu);
        busy = j->q_len || bgr_jobs_fetch_backlog(j) || j->in_flight;
        pthread_mutex_unlock(&j->mu);
        if (!busy && bgr_store_outbox_next_due(j->store, &next, &e) == 0 &&
            (next == 0 || next > bgr_wall_ms()))
            return true;
        if (bgr_now_ms() >= deadline)
            return false;
        usleep(5000);
    }
}
