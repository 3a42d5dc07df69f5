/*
 * jobs.c - the queue and the workers: sync requests and batch items through
 * the pipeline to committed results.
 *
 * Two waiting lines share the workers: sync jobs (bounded by queue_size; a
 * client waits on each) and batch item ids (bounded by max_backlog; their
 * truth is in the store). Workers take sync jobs first but every fourth
 * pick goes to the backlog when it is not empty, so a stream of sync
 * requests cannot starve batches.
 */
#define _GNU_SOURCE
#include "jobs/jobs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* Runs the pipeline and writes the result object; *img describes it (not
 * yet committed). */
int bgr_jobs_produce(struct bgr_jobs *j, const struct bgr_account *acct, const void *data,
                     size_t len, const struct bgr_output_opts *opts, const char *batch_id,
                     const struct bgr_remove_req *req, struct bgr_image *img, struct bgr_error *err)
{
    struct bgr_result res = {0};
    struct bgr_image m = {0};
    double t0 = bgr_now_sec();
    int rc = req && req->render
                 ? req->render(req->render_ctx, j->cfg.model, data, len, &j->cfg.limits, &res, err)
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
    m.credits = req && req->credits > 0 ? req->credits : 1;
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

static void run_sync(struct bgr_jobs *j, struct bgr_sync_job *job)
{
    struct bgr_image img;
    char *payload = NULL;
    int rc = bgr_jobs_produce(j, job->acct, job->data, job->len, job->opts, NULL, job->req, &img,
                              &job->err);
    if (!rc) {
        struct bgr_webhook_new wh = {.url = job->webhook_url, .event = "image.completed"};
        if (job->webhook_url) {
            payload = bgr_jobs_event_payload("image.completed", img.created_at_ms,
                                             bgr_jobs_image_json(&img, j->public_url));
            wh.payload = payload;
            if (!payload)
                rc = bgr_error_set(&job->err, BGR_ENOMEM, "out of memory");
        }
        if (!rc)
            rc = bgr_store_image_add(j->store, job->acct, &img, job->webhook_url ? &wh : NULL,
                                     &job->err);
        if (rc)
            bgr_jobs_drop_object(j, img.path);
        else if (job->webhook_url)
            bgr_jobs_kick_deliverer(j);
    }
    if (rc && job->webhook_url)
        bgr_jobs_send_failed(j, job->acct, job->webhook_url, job->image_url, rc, &job->err);
    free(payload);
    job->rc = rc;
    if (!rc)
        job->img = img;
}

void bgr_jobs_fail_item(struct bgr_jobs *j, int64_t id, int rc, const struct bgr_error *e)
{
    struct bgr_error err2;
    bool done = false;
    if (bgr_store_item_fail(j->store, id, bgr_err_code(rc),
                            e->msg[0] ? e->msg : bgr_err_default_msg(rc), bgr_wall_ms(), &done,
                            &err2) != 0)
        bgr_log(BGR_LOG_ERROR, "jobs: item %lld: cannot record failure: %s", (long long)id,
                err2.msg);
    if (done)
        bgr_jobs_kick_deliverer(j);
}

int bgr_jobs_run_item(struct bgr_jobs *j, int64_t id, bool claimed, int64_t *ms)
{
    struct bgr_batch_item *it = bgr_xmalloc(sizeof(*it));
    struct bgr_account acct;
    struct bgr_fetch_opts fo;
    struct bgr_buf body = {0};
    struct bgr_error e = {0};
    struct bgr_image img;
    int64_t remaining = 0;
    bool done = false, started = false;
    int rc = claimed ? 0 : bgr_store_item_start(j->store, id, bgr_wall_ms(), &e);
    if (rc)
        goto out; /* taken or finished already: nothing to do */
    started = true;
    rc = bgr_store_item_get(j->store, id, it, &e);
    if (!rc)
        rc = bgr_store_account_get(j->store, it->account_id, &acct, &e);
    if (!rc)
        rc = bgr_store_credits(j->store, &acct, bgr_wall_ms(), NULL, &remaining, &e);
    if (!rc && remaining == 0)
        rc = bgr_store_err_credits_spent(&acct, bgr_wall_ms(), &e);
    if (rc)
        goto out;
    bgr_fetch_opts_init(&fo);
    fo.max_bytes = (size_t)acct.plan.max_bytes;
    fo.allow_private = j->cfg.allow_private_urls;
    fo.connect_timeout_ms = j->cfg.fetch_connect_timeout_ms;
    fo.total_timeout_ms = j->cfg.fetch_total_timeout_ms;
    rc = bgr_net_get(it->image_url, &fo, &body, NULL, &e);
    if (rc)
        goto out;
    rc = bgr_jobs_produce(j, &acct, body.data, body.len, &it->opts, it->batch_id, NULL, &img, &e);
    bgr_buf_release(&body);
    if (rc)
        goto out;
    rc = bgr_store_item_complete(j->store, id, &acct, &img, bgr_wall_ms(), &done, &e);
    if (rc) {
        bgr_jobs_drop_object(j, img.path);
        goto out;
    }
    *ms = img.processing_ms;
    pthread_mutex_lock(&j->mu);
    record_time(j, it->opts.refine, img.processing_ms);
    pthread_mutex_unlock(&j->mu);
    if (done)
        bgr_jobs_kick_deliverer(j);
out:
    if (rc && started && rc != BGR_ENOT_FOUND)
        bgr_jobs_fail_item(j, id, rc, &e);
    bgr_buf_release(&body);
    free(it);
    return rc;
}

static void *worker_main(void *arg)
{
    struct bgr_jobs *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        struct bgr_sync_job *job = NULL;
        int64_t item = 0, ms = 0;
        int rc;
        while (!j->stopping && !j->q_head && j->b_len == 0)
            pthread_cond_wait(&j->work_cv, &j->mu);
        if (j->stopping)
            break;
        bool take_batch = j->b_len > 0 && (!j->q_head || (++j->turn % 4) == 0);
        if (take_batch) {
            item = j->backlog[j->b_head];
            j->b_head = (j->b_head + 1) % j->b_cap;
            j->b_len--;
        } else {
            job = j->q_head;
            j->q_head = job->next;
            if (!j->q_head)
                j->q_tail = NULL;
            j->q_len--;
        }
        j->in_flight++;
        pthread_mutex_unlock(&j->mu);

        if (job) {
            run_sync(j, job);
            ms = job->rc ? 0 : job->img.processing_ms;
        }
        rc = job ? job->rc : bgr_jobs_run_item(j, item, false, &ms);
        if (j->cfg.on_image && (job || rc != BGR_ENOT_FOUND))
            j->cfg.on_image(j->cfg.on_image_ctx, rc == 0, ms);

        pthread_mutex_lock(&j->mu);
        j->in_flight--;
        if (rc == 0)
            j->processed++;
        else if (rc != BGR_ENOT_FOUND || job)
            j->failed++;
        if (job) {
            if (!rc)
                record_time(j, job->opts->refine, job->img.processing_ms);
            job->done = true;
            pthread_cond_broadcast(&j->done_cv);
        }
        pthread_cond_broadcast(&j->idle_cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Appends ids to the backlog; caller holds mu. Fails if over max_backlog. */
static int backlog_push(struct bgr_jobs *j, const int64_t *ids, size_t n, bool force)
{
    if (!force && j->b_len + n > (size_t)j->cfg.max_backlog)
        return -1;
    if (j->b_len + n > j->b_cap) {
        size_t cap = j->b_cap ? j->b_cap : 64;
        int64_t *v;
        while (cap < j->b_len + n)
            cap *= 2;
        v = bgr_xcalloc(cap, sizeof(*v));
        BGR_ASSERT(j->b_len == 0 || j->b_cap > 0);
        for (size_t i = 0; i < j->b_len; i++)
            v[i] = j->backlog[(j->b_head + i) % j->b_cap];
        free(j->backlog);
        j->backlog = v;
        j->b_cap = cap;
        j->b_head = 0;
    }
    for (size_t i = 0; i < n; i++)
        j->backlog[(j->b_head + j->b_len + i) % j->b_cap] = ids[i];
    j->b_len += n;
    pthread_cond_broadcast(&j->work_cv);
    return 0;
}

int bgr_jobs_start(struct bgr_store *store, const struct bgr_jobs_config *cfg,
                   struct bgr_jobs **out, struct bgr_error *err)
{
    struct bgr_jobs *j;
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
    if (j->cfg.workers <= 0)
        j->cfg.workers = 2;
    if (j->cfg.queue_size <= 0)
        j->cfg.queue_size = 16;
    if (j->cfg.max_backlog <= 0)
        j->cfg.max_backlog = 2000;
    if (j->cfg.webhook_base_ms <= 0)
        j->cfg.webhook_base_ms = 15000;
    if (j->cfg.webhook_max_attempts <= 0)
        j->cfg.webhook_max_attempts = 9;
    if (j->cfg.webhook_timeout_ms <= 0)
        j->cfg.webhook_timeout_ms = 10000;
    if (j->cfg.sweep_interval_ms <= 0)
        j->cfg.sweep_interval_ms = 60000;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->work_cv, NULL);
    pthread_cond_init(&j->done_cv, NULL);
    pthread_cond_init(&j->idle_cv, NULL);
    pthread_cond_init(&j->bg_cv, NULL);
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
        if (rc)
            goto fail;
        goto background;
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
    pthread_mutex_lock(&j->mu);
    backlog_push(j, ids, n, true);
    pthread_mutex_unlock(&j->mu);
    free(ids);

    j->workers = bgr_xcalloc((size_t)j->cfg.workers, sizeof(*j->workers));
    for (int i = 0; i < j->cfg.workers; i++) {
        if (pthread_create(&j->workers[i], NULL, worker_main, j) != 0) {
            rc = bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start a worker thread");
            goto fail;
        }
        j->n_started++;
    }
background:
    if (pthread_create(&j->deliverer, NULL, bgr_jobs_deliverer_main, j) != 0) {
        rc = bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start the webhook thread");
        goto fail;
    }
    j->deliverer_started = true;
    if (pthread_create(&j->sweeper, NULL, bgr_jobs_sweeper_main, j) != 0) {
        rc = bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start the sweeper thread");
        goto fail;
    }
    j->sweeper_started = true;
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
    for (struct bgr_sync_job *job = j->q_head; job; job = job->next) {
        job->rc = bgr_error_set(&job->err, BGR_ESERVICE_BUSY, "the server is shutting down");
        job->done = true;
    }
    j->q_head = j->q_tail = NULL;
    j->q_len = 0;
    pthread_cond_broadcast(&j->work_cv);
    pthread_cond_broadcast(&j->done_cv);
    pthread_cond_broadcast(&j->bg_cv);
    pthread_mutex_unlock(&j->mu);
    for (int i = 0; i < j->n_started; i++)
        pthread_join(j->workers[i], NULL);
    bgr_jobs_queue_stop(j);
    if (j->deliverer_started)
        pthread_join(j->deliverer, NULL);
    if (j->sweeper_started)
        pthread_join(j->sweeper, NULL);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->work_cv);
    pthread_cond_destroy(&j->done_cv);
    pthread_cond_destroy(&j->idle_cv);
    pthread_cond_destroy(&j->bg_cv);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* releases the flock */
    free(j->workers);
    free(j->backlog);
    bgr_results_close(j->owned);
    free(j->public_url);
    free(j);
}

int bgr_jobs_remove(struct bgr_jobs *j, const struct bgr_remove_req *r, struct bgr_image *out,
                    struct bgr_error *err)
{
    struct bgr_sync_job job = {0};
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
    job.acct = r->acct;
    job.req = r;
    job.opts = &r->opts;
    job.webhook_url = r->webhook_url;
    job.image_url = r->image_url;
    if (r->image_url) {
        struct bgr_fetch_opts fo;
        bgr_fetch_opts_init(&fo);
        fo.max_bytes = (size_t)r->acct->plan.max_bytes;
        fo.allow_private = j->cfg.allow_private_urls;
        fo.connect_timeout_ms = j->cfg.fetch_connect_timeout_ms;
        fo.total_timeout_ms = j->cfg.fetch_total_timeout_ms;
        rc = bgr_net_get(r->image_url, &fo, &body, NULL, err);
        if (rc) {
            if (r->webhook_url && rc != BGR_EINVALID_PARAMETER)
                bgr_jobs_send_failed(j, r->acct, r->webhook_url, r->image_url, rc, err);
            return rc;
        }
        job.data = body.data;
        job.len = body.len;
    } else {
        if (r->len > (size_t)r->acct->plan.max_bytes)
            return bgr_error_set(err, BGR_EFILE_TOO_LARGE, "the image is larger than %lld bytes",
                                 (long long)r->acct->plan.max_bytes);
        job.data = r->data;
        job.len = r->len;
    }

    if (bgr_store_shared(j->store)) {
        rc = bgr_jobs_remove_queued(j, r, job.data, job.len, out, err);
        bgr_buf_release(&body);
        return rc;
    }
    pthread_mutex_lock(&j->mu);
    if (j->stopping || j->q_len >= j->cfg.queue_size) {
        pthread_mutex_unlock(&j->mu);
        bgr_buf_release(&body);
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "the processing queue is full, retry later");
    }
    if (j->q_tail)
        j->q_tail->next = &job;
    else
        j->q_head = &job;
    j->q_tail = &job;
    j->q_len++;
    pthread_cond_signal(&j->work_cv);
    while (!job.done)
        pthread_cond_wait(&j->done_cv, &j->mu);
    pthread_mutex_unlock(&j->mu);

    bgr_buf_release(&body);
    if (job.rc) {
        if (err)
            *err = job.err;
        return job.rc;
    }
    *out = job.img;
    return 0;
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
    bool full = j->stopping || j->b_len + n > (size_t)j->cfg.max_backlog;
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
    ahead = (size_t)j->q_len + j->b_len + (size_t)j->in_flight;
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
        backlog_push(j, ids, got, true); /* admitted above; a race may overshoot by one batch */
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
    st->backlog = (int)j->b_len;
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
        busy = j->q_len || j->b_len || j->in_flight;
        pthread_mutex_unlock(&j->mu);
        if (!busy && bgr_store_outbox_next_due(j->store, &next, &e) == 0 &&
            (next == 0 || next > bgr_wall_ms()))
            return true;
        if (bgr_now_ms() >= deadline)
            return false;
        usleep(5000);
    }
}
