/*
 * queue.c - the jobs on a shared store (PostgreSQL): work goes through the
 * store's queue (store/queue.c) instead of this process's memory, so API
 * nodes (`serve --workers 0`) and workers (`bgremover worker`, or the
 * local workers of `serve`) can be separate processes on separate machines.
 *
 * API side (bgr_jobs_remove): the input bytes and options go into a
 * sync_jobs row; the request thread then waits for its bgr_done
 * notification (a listener thread of this process routes them by job id),
 * reads the committed result and answers exactly as the in-process path.
 * A notification missed while the database connection was being re-made is
 * covered by re-reading the job's state every few seconds.
 *
 * Worker side: each worker thread claims a job (sync first, then batch
 * items), runs it through the same produce() as the in-process path and
 * commits it with the exactly-once rules of the store; idle threads sleep
 * on a condition that the bgr_jobs listener thread signals on NOTIFY, and
 * look again after half a lease in any case (to take jobs whose worker
 * died). A renewer thread extends the leases of the jobs this process
 * holds every third of a lease.
 *
 * The ceiling, counted from the claim: the jobs' watchdog (jobs.c, as for
 * the in-process workers) gives up on a job thread whose run passed it.
 * The job is recorded failed (PROCESSING_TIMEOUT, unless its API node,
 * which answers its client at the same ceiling, abandoned it first): it is
 * then no longer running, so the renewer stops extending its lease and no
 * other worker takes it again. Its processing slot is given back (while
 * at most cfg.workers such late runs go on, the in-process bound) and a
 * replacement thread takes its place (up to twice the threads), so the
 * next job does not wait behind it. The late run commits nothing when it
 * ends, and its thread ends too if the replacement started.
 */
#define _GNU_SOURCE
#include "jobs/jobs_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_SLICE_MS 500 /* how soon a listener notices a stop */
#define RECHECK_MS 3000     /* a waiting request re-reads its job's state */
/* Inputs up to this size travel in the job's row; larger ones through the
 * result storage (shared by every node), so the database stays small. */
#define INLINE_INPUT_MAX (1024 * 1024)

/* A sync request waiting for its job (on the caller's stack). */
struct bgr_queue_waiter {
    struct bgr_queue_waiter *next;
    int64_t id;
    bool notified;
};

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* The enum of an error's symbolic name (bgr_err_name), for errors that
 * cross processes as text; BGR_EINTERNAL if unknown. */
static int err_from_name(const char *name)
{
    for (int e = BGR_E__FIRST + 1; e < BGR_E__LAST; e++)
        if (strcmp(bgr_err_name(e), name) == 0)
            return e;
    return BGR_EINTERNAL;
}

/* ---- listener threads --------------------------------------------------------- */

/* A listener thread: waits on one channel until the jobs stop, and hands
 * each notification (payload "" after a reconnect, when some may have been
 * missed) to on(), called with j->mu held. */
struct listen_arg {
    struct bgr_jobs *j;
    struct bgr_store_listener *l;
    void (*on)(struct bgr_jobs *j, const char *payload);
};

static void *listener_main(void *arg)
{
    struct listen_arg *a = arg;
    char payload[64];
    for (;;) {
        pthread_mutex_lock(&a->j->mu);
        bool stop = a->j->stopping;
        pthread_mutex_unlock(&a->j->mu);
        if (stop)
            break;
        if (bgr_store_listener_wait(a->l, LISTEN_SLICE_MS, payload, sizeof(payload)) == 1) {
            pthread_mutex_lock(&a->j->mu);
            a->on(a->j, payload);
            pthread_mutex_unlock(&a->j->mu);
        }
    }
    free(a);
    return NULL;
}

/* bgr_jobs: wakes idle worker threads. */
static void on_work(struct bgr_jobs *j, const char *payload)
{
    (void)payload;
    j->q_kicks++;
    pthread_cond_broadcast(&j->work_cv);
}

/* bgr_done: wakes the request waiting for that job (every waiter after a
 * reconnect: each re-reads its state). */
static void on_done(struct bgr_jobs *j, const char *payload)
{
    int64_t id = payload[0] ? strtoll(payload, NULL, 10) : 0;
    for (struct bgr_queue_waiter *w = j->q_waiters; w; w = w->next)
        if (id == 0 || w->id == id)
            w->notified = true;
    pthread_cond_broadcast(&j->done_cv);
}

static int start_listener(struct bgr_jobs *j, struct bgr_store_listener *l,
                          void (*on)(struct bgr_jobs *, const char *), pthread_t *t,
                          struct bgr_error *err)
{
    struct listen_arg *a = bgr_xcalloc(1, sizeof(*a));
    a->j = j;
    a->l = l;
    a->on = on;
    if (pthread_create(t, NULL, listener_main, a) != 0) {
        free(a);
        return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start a listener thread");
    }
    return 0;
}

/* Extends the leases of what this process holds: the jobs running under
 * its name in the store. A job given up at the ceiling is no longer
 * running there (its API node or the watchdog recorded it failed), so its
 * lease is not extended while its late run goes on. */
static void *renewer_main(void *arg)
{
    struct bgr_jobs *j = arg;
    struct timespec ts;
    pthread_mutex_lock(&j->mu);
    while (!j->stopping) {
        deadline_in(&ts, j->cfg.job_lease_ms / 3);
        (void)pthread_cond_timedwait(&j->bg_cv, &j->mu, &ts);
        if (j->stopping || j->in_flight == 0)
            continue;
        pthread_mutex_unlock(&j->mu);
        struct bgr_error e;
        if (bgr_store_job_renew(j->store, j->worker_name, bgr_wall_ms() + j->cfg.job_lease_ms,
                                &e) != 0)
            bgr_log(BGR_LOG_WARN, "queue: cannot renew leases: %s", e.msg);
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- worker threads ------------------------------------------------------------ */

/* At most cfg.workers images are decoded, run and encoded at once (the
 * memory of a decoded image is the bound; late runs whose slot the
 * watchdog gave back add at most as many again): thread w, which claimed
 * a job, waits here after its download. A job past its ceiling by then
 * (or given up while waiting) is not run at all (BGR_EPROCESSING_TIMEOUT,
 * no slot held): its client has been answered. since_ms: when the job was
 * claimed. */
static int slot_take(struct bgr_jobs *j, struct bgr_worker *w, int64_t since_ms,
                     struct bgr_error *err)
{
    pthread_mutex_lock(&j->mu);
    while (j->q_producing >= j->cfg.workers && !w->abandoned)
        pthread_cond_wait(&j->q_slot_cv, &j->mu);
    if (w->abandoned || bgr_wall_ms() - since_ms > j->cfg.job_timeout_ms) {
        pthread_mutex_unlock(&j->mu);
        bgr_log(BGR_LOG_INFO, "queue: an abandoned run ended before it began (its job waited past"
                              " the ceiling for a slot); nothing was run");
        return bgr_error_set(err, BGR_EPROCESSING_TIMEOUT,
                             "the image waited past the limit of %lld s to be processed",
                             (long long)(j->cfg.job_timeout_ms / 1000));
    }
    j->q_producing++;
    w->slot = BGR_SLOT_HELD;
    pthread_mutex_unlock(&j->mu);
    return 0;
}

/* After a slot_take that returned 0. A slot that the watchdog gave back
 * at the ceiling is not given again. */
static void slot_give(struct bgr_jobs *j, struct bgr_worker *w)
{
    pthread_mutex_lock(&j->mu);
    if (w->slot == BGR_SLOT_HELD) {
        BGR_ASSERT(j->q_producing > 0);
        j->q_producing--;
        pthread_cond_signal(&j->q_slot_cv);
    } else {
        BGR_ASSERT(w->slot == BGR_SLOT_RETURNED && j->q_late > 0);
        j->q_late--;
    }
    w->slot = BGR_SLOT_NONE;
    pthread_mutex_unlock(&j->mu);
}

void bgr_jobs_queue_abandon(struct bgr_jobs *j, struct bgr_worker *w, struct bgr_abandoned *a)
{
    const struct bgr_job *job = w->q_job;
    BGR_ASSERT(job);
    if (w->general)
        j->q_general_live--; /* the replacement takes sync jobs in its place */
    if (w->slot == BGR_SLOT_HELD) {
        if (j->q_late < j->cfg.workers) {
            w->slot = BGR_SLOT_RETURNED;
            j->q_late++;
            j->q_producing--;
        } else {
            bgr_log(BGR_LOG_WARN,
                    "queue: %d abandoned runs still go on: this one keeps its processing slot",
                    j->q_late);
        }
    }
    /* the next job's thread takes the slot; one waiting for a slot for
     * this job stops waiting */
    pthread_cond_broadcast(&j->q_slot_cv);
    if (job->is_item) {
        a->item = job->item_id;
    } else {
        a->sync_id = job->id;
        (void)snprintf(a->account_id, sizeof(a->account_id), "%s", job->account_id);
        a->webhook_url =
            job->webhook_url && job->webhook_url[0] ? bgr_xstrdup(job->webhook_url) : NULL;
        a->image_url = job->image_url && job->image_url[0] ? bgr_xstrdup(job->image_url) : NULL;
    }
}

void bgr_jobs_queue_fail_abandoned(struct bgr_jobs *j, const struct bgr_abandoned *a)
{
    struct bgr_error e, e2;
    bgr_jobs_err_ceiling(j, &e);
    /* Not found: its API node abandoned it first (and sends image.failed).
     * Another error: the job stays running under this worker, its lease
     * renewed (so no other worker runs it again), and the late run records
     * the failure when it ends. */
    int rc =
        bgr_store_job_fail(j->store, a->sync_id, j->worker_name,
                           bgr_err_name(BGR_EPROCESSING_TIMEOUT), e.msg, NULL, bgr_wall_ms(), &e2);
    if (rc && e2.code != BGR_ENOT_FOUND)
        bgr_log(BGR_LOG_WARN, "queue: job %lld: cannot record it failed at the ceiling: %s",
                (long long)a->sync_id, e2.msg);
    if (!rc && a->webhook_url) {
        struct bgr_account acct;
        memset(&acct, 0, sizeof(acct));
        (void)snprintf(acct.id, sizeof(acct.id), "%s", a->account_id);
        bgr_jobs_send_failed(j, &acct, a->webhook_url, a->image_url, BGR_EPROCESSING_TIMEOUT, &e);
    }
}

/* A render named in a job (the remove.bg route's), run through the same
 * produce() as the in-process path via its render hook. */
struct spec_render {
    const struct bgr_jobs_render *r;
    const struct bgr_job *job;
    char *outcome;
    size_t outcome_len;
};

static int spec_trampoline(void *ctx, struct bgr_model *model, const void *data, size_t len,
                           const struct bgr_decode_limits *lim, struct bgr_result *res,
                           struct bgr_error *err)
{
    struct spec_render *sr = ctx;
    return sr->r->fn(sr->job->render_spec, sr->job->extra, sr->job->extra_len, model, data, len,
                     lim, res, sr->outcome, sr->outcome_len, err);
}

/* A claimed sync job on thread w, start to finish: produce, commit (or
 * fail), notify. */
static int run_queued_sync(struct bgr_jobs *j, struct bgr_worker *w, struct bgr_job *job,
                           int64_t *ms)
{
    struct bgr_account acct;
    struct bgr_output_opts opts;
    struct bgr_image img;
    struct bgr_error e = {0};
    char outcome[64] = "";
    char *payload = NULL;
    struct bgr_buf in = {0};
    int rc;
    memset(&acct, 0, sizeof(acct));
    rc = bgr_store_account_get(j->store, job->account_id, &acct, &e);
    if (!rc && job->input_key[0]) {
        /* a large input, put in the result storage by its API node */
        rc = bgr_results_read(j->cfg.results, job->input_key, (size_t)acct.plan.max_bytes + 1, &in,
                              &e);
        if (!rc) {
            free(job->input);
            job->input = bgr_xmalloc(in.len ? in.len : 1);
            memcpy(job->input, in.data, in.len);
            job->input_len = in.len;
        }
        bgr_buf_release(&in);
    }
    if (!rc)
        rc = bgr_output_opts_from_text(job->opts, &opts, &e);
    if (!rc && job->render[0]) {
        const struct bgr_jobs_render *r = NULL;
        for (size_t i = 0; i < j->cfg.n_renders; i++)
            if (strcmp(j->cfg.renders[i].name, job->render) == 0)
                r = &j->cfg.renders[i];
        if (!r)
            rc = bgr_error_set(&e, BGR_EINTERNAL, "this worker cannot render '%.40s' jobs",
                               job->render);
        else {
            struct spec_render sr = {r, job, outcome, sizeof(outcome)};
            struct bgr_remove_req rr = {.render = spec_trampoline, .render_ctx = &sr};
            rc = slot_take(j, w, job->claimed_at_ms, &e);
            if (!rc) {
                rc = bgr_jobs_produce(j, &acct, job->input, job->input_len, &opts, NULL, &rr,
                                      job->credits, &img, &e);
                slot_give(j, w);
            }
        }
    } else if (!rc) {
        rc = slot_take(j, w, job->claimed_at_ms, &e);
        if (!rc) {
            rc = bgr_jobs_produce(j, &acct, job->input, job->input_len, &opts, NULL, NULL,
                                  job->credits, &img, &e);
            slot_give(j, w);
        }
    }
    if (bgr_jobs_worker_given_up(j, w)) {
        /* The watchdog recorded it failed and freed this thread's place.
         * Recorded again below, which finds it finished (or does it, had
         * the watchdog's write failed). */
        if (rc != BGR_EPROCESSING_TIMEOUT) /* else slot_take said so */
            bgr_log(BGR_LOG_INFO,
                    "queue: job %lld: an abandoned run ended (%s, past the ceiling); its"
                    " result was discarded",
                    (long long)job->id, rc ? bgr_err_code(rc) : "done");
        if (!rc)
            bgr_jobs_drop_object(j, img.path);
        rc = bgr_jobs_err_ceiling(j, &e);
    } else if (!rc && bgr_wall_ms() - job->claimed_at_ms > j->cfg.job_timeout_ms) {
        /* past the ceiling: its API node has answered and abandoned it */
        bgr_log(BGR_LOG_INFO,
                "queue: job %lld: an abandoned run ended (past the ceiling); its"
                " result was discarded",
                (long long)job->id);
        bgr_jobs_drop_object(j, img.path);
        rc = bgr_jobs_err_ceiling(j, &e);
    }
    if (!rc) {
        struct bgr_webhook_new wh = {.url = job->webhook_url, .event = "image.completed"};
        if (job->webhook_url[0]) {
            payload = bgr_jobs_event_payload("image.completed", img.created_at_ms,
                                             bgr_jobs_image_json(&img, j->public_url));
            wh.payload = payload;
            if (!payload)
                rc = bgr_error_set(&e, BGR_ENOMEM, "out of memory");
        }
        double tc = bgr_now_sec();
        if (!rc)
            rc = bgr_store_job_complete(j->store, job->id, j->worker_name, &acct, &img,
                                        job->webhook_url[0] ? &wh : NULL, &e);
        /* the queue's own cost, for bench/scaleout: waiting to be claimed
         * (clocks of two machines: roughly) and committing the result */
        if (!rc)
            bgr_log(BGR_LOG_DEBUG,
                    "queue: job %lld: claimed %lld ms after enqueue, committed in %.2f ms",
                    (long long)job->id, (long long)(job->claimed_at_ms - job->created_at_ms),
                    (bgr_now_sec() - tc) * 1000.0);
        if (rc)
            bgr_jobs_drop_object(j, img.path);
        else if (job->webhook_url[0])
            bgr_jobs_kick_deliverer(j);
        if (rc == BGR_ENOT_FOUND)
            bgr_log(BGR_LOG_INFO,
                    "queue: job %lld: an abandoned run ended (its client was answered at the"
                    " ceiling, or its lease passed to another worker); its result was discarded",
                    (long long)job->id);
        if (!rc)
            *ms = img.processing_ms;
    }
    if (rc && rc != BGR_ENOT_FOUND) {
        struct bgr_error e2;
        /* recorded first: a job its API node abandoned at the ceiling (which
         * sent image.failed itself) is no longer ours to fail */
        int rc2 = bgr_store_job_fail(j->store, job->id, j->worker_name, bgr_err_name(rc),
                                     e.msg[0] ? e.msg : bgr_err_default_msg(rc), outcome,
                                     bgr_wall_ms(), &e2);
        if (rc2 && e2.code != BGR_ENOT_FOUND)
            bgr_log(BGR_LOG_ERROR, "queue: job %lld: cannot record failure: %s", (long long)job->id,
                    e2.msg);
        if (!rc2 && job->webhook_url[0] && acct.id[0])
            bgr_jobs_send_failed(j, &acct, job->webhook_url,
                                 job->image_url[0] ? job->image_url : NULL, rc, &e);
    }
    free(payload);
    return rc;
}

/* A claimed batch item (processing already) on thread w, start to finish:
 * the download (on this worker: in a worker process there is no inference
 * to keep it from), the pipeline, the completing transaction. 0 if it
 * completed. */
static int run_queued_item(struct bgr_jobs *j, struct bgr_worker *w, int64_t id, int64_t *ms)
{
    struct bgr_batch_item *it = bgr_xmalloc(sizeof(*it));
    struct bgr_account acct;
    struct bgr_buf body = {0};
    struct bgr_error e = {0};
    struct bgr_image img;
    bool done = false;
    int64_t t0 = bgr_wall_ms();
    int rc = bgr_jobs_item_load(j, id, it, &acct, &body, &e);
    if (!rc) {
        rc = slot_take(j, w, t0, &e);
        if (!rc) {
            rc = bgr_jobs_produce(j, &acct, body.data, body.len, &it->opts, it->batch_id, NULL, 1,
                                  &img, &e);
            slot_give(j, w);
        }
    }
    bgr_buf_release(&body);
    if (bgr_jobs_worker_given_up(j, w)) {
        /* The watchdog recorded the item failed and freed this thread's
         * place. Recorded again below, which finds it finished (or does
         * it, had the watchdog's write failed). */
        if (rc != BGR_EPROCESSING_TIMEOUT) /* else slot_take said so */
            bgr_log(BGR_LOG_INFO,
                    "queue: item %lld: an abandoned run ended (%s, past the ceiling); its"
                    " result was discarded",
                    (long long)id, rc ? bgr_err_code(rc) : "done");
        if (!rc)
            bgr_jobs_drop_object(j, img.path);
        rc = bgr_jobs_err_ceiling(j, &e);
        goto out;
    }
    if (rc)
        goto out;
    if (bgr_wall_ms() - t0 > j->cfg.job_timeout_ms) {
        bgr_log(BGR_LOG_INFO,
                "queue: item %lld: an abandoned run ended (past the ceiling); its"
                " result was discarded",
                (long long)id);
        bgr_jobs_drop_object(j, img.path); /* the ceiling: failed, not charged */
        rc = bgr_jobs_err_ceiling(j, &e);
    }
    if (rc)
        goto out;
    rc = bgr_store_item_complete(j->store, id, &acct, &img, bgr_wall_ms(), &done, &e);
    if (rc) {
        bgr_jobs_drop_object(j, img.path); /* another worker completed it first */
        goto out;
    }
    *ms = img.processing_ms;
    if (done)
        bgr_jobs_kick_deliverer(j);
out:
    /* stopping: the lease runs out and another worker takes it */
    if (rc && rc != BGR_ENOT_FOUND && !(rc == BGR_ESERVICE_BUSY && j->stopping))
        bgr_jobs_fail_item(j, id, rc, &e);
    bgr_buf_release(&body);
    free(it);
    return rc;
}

/* A job that was claimed more often than allowed: its worker died each
 * time (a crash on this input, or lost machines). It fails instead. */
static void give_up(struct bgr_jobs *j, struct bgr_job *job)
{
    struct bgr_error e;
    char msg[200];
    (void)snprintf(msg, sizeof(msg),
                   "the image was tried %d times and its worker stopped each time (a crash or a"
                   " lost machine); it is not tried again",
                   job->attempts - 1);
    bgr_log(BGR_LOG_ERROR, "queue: %s %lld: %s", job->is_item ? "item" : "job", (long long)job->id,
            msg);
    bgr_error_set(&e, BGR_EINTERNAL, "%s", msg);
    if (job->is_item)
        bgr_jobs_fail_item(j, job->item_id, BGR_EINTERNAL, &e);
    else if (bgr_store_job_fail(j->store, job->id, j->worker_name, bgr_err_name(BGR_EINTERNAL), msg,
                                NULL, bgr_wall_ms(), &e) != 0)
        bgr_log(BGR_LOG_ERROR, "queue: job %lld: %s", (long long)job->id, e.msg);
}

/* Under mu: whether live thread w takes sync jobs: the first cfg.workers
 * live threads do, then batch items; the fetch_workers others take batch
 * items only (they exist for downloads, as the one-box fetch pool does). */
static void take_role(struct bgr_jobs *j, struct bgr_worker *w)
{
    w->general = j->q_general_live < j->cfg.workers;
    j->q_general_live += w->general;
}

void *bgr_jobs_queue_worker_main(void *arg)
{
    struct bgr_worker *w = arg;
    struct bgr_jobs *j = w->j;
    pthread_mutex_lock(&j->mu);
    take_role(j, w);
    while (!j->stopping) {
        struct bgr_job job;
        struct bgr_error e;
        uint64_t kicks = j->q_kicks;
        bool general = w->general;
        int64_t ms = 0;
        int rc;
        /* A process holds no more items than its processing slots plus one
         * account's downloads ahead, leaving the rest to other workers; and
         * one general thread always stays free of items for the
         * synchronous requests, whose clients wait. */
        int item_cap = j->cfg.workers + j->cfg.fetch_per_account;
        bool items =
            j->q_items_busy < item_cap && (!general || j->q_general_items < j->cfg.workers - 1);
        j->in_flight++; /* counted while claiming: the renewer must not skip a fresh claim */
        if (items) {
            j->q_items_busy++; /* held while claiming: two idle threads cannot both pass */
            j->q_general_items += general;
        }
        pthread_mutex_unlock(&j->mu);
        /* the ceiling counts from the claim (the claim's clock, at most
         * as late as its stamp in the store) */
        int64_t claimed = bgr_now_ms();
        rc = bgr_store_job_claim(j->store, j->worker_name, bgr_wall_ms(), j->cfg.job_lease_ms,
                                 j->cfg.fetch_per_account, general, items, &job, &e);
        if (items && (rc || !job.is_item)) {
            pthread_mutex_lock(&j->mu);
            j->q_items_busy--;
            j->q_general_items -= general;
            items = false;
            pthread_mutex_unlock(&j->mu);
        }
        if (rc) {
            if (rc != BGR_ENOT_FOUND)
                bgr_log(BGR_LOG_WARN, "queue: cannot claim work: %s", e.msg);
            pthread_mutex_lock(&j->mu);
            j->in_flight--;
            pthread_cond_broadcast(&j->idle_cv);
            /* Nothing to do: sleep until NOTIFY (a kick) or half a lease,
             * after which jobs of dead workers may be ready. */
            struct timespec ts;
            deadline_in(&ts, rc == BGR_ENOT_FOUND ? j->cfg.job_lease_ms / 2 : 1000);
            while (!j->stopping && j->q_kicks == kicks)
                if (pthread_cond_timedwait(&j->work_cv, &j->mu, &ts) == ETIMEDOUT)
                    break;
            continue;
        }
        pthread_mutex_lock(&j->mu);
        w->q_job = &job;
        w->abandoned = w->committing = false;
        w->deadline_ms = claimed + j->cfg.job_timeout_ms;
        pthread_cond_signal(&j->wd_cv);
        pthread_mutex_unlock(&j->mu);
        if (job.attempts > j->cfg.job_max_attempts) {
            give_up(j, &job);
            rc = BGR_EINTERNAL;
        } else if (job.is_item)
            rc = run_queued_item(j, w, job.item_id, &ms);
        else
            rc = run_queued_sync(j, w, &job, &ms);
        pthread_mutex_lock(&j->mu);
        bool abandoned = w->abandoned;
        w->deadline_ms = 0;
        w->q_job = NULL;
        pthread_mutex_unlock(&j->mu);
        bgr_job_release(&job);
        if (j->cfg.on_image && rc != BGR_ENOT_FOUND)
            j->cfg.on_image(j->cfg.on_image_ctx, rc == 0, ms);
        pthread_mutex_lock(&j->mu);
        j->in_flight--;
        if (items) {
            j->q_items_busy--;
            j->q_general_items -= general;
        }
        if (rc == 0)
            j->processed++;
        else if (rc != BGR_ENOT_FOUND)
            j->failed++;
        pthread_cond_broadcast(&j->idle_cv);
        if (abandoned) {
            if (!bgr_jobs_worker_rejoin(j, w))
                break; /* a replacement took this thread's place */
            take_role(j, w);
        }
    }
    w->state = BGR_W_EXITED;
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- start and stop ------------------------------------------------------------- */

/* A process restarted after a crash (kill -9, OOM) finds its old self's
 * jobs still leased: those whose worker ran on this host under a pid that
 * no longer exists are released now rather than at their leases' end. A
 * reused pid only delays that to the lease, and a wrong release costs at
 * most a duplicate run that the store's exactly-once rules discard. */
static void release_dead_local(struct bgr_jobs *j, const char *host)
{
    char **names = NULL;
    size_t n = 0, hl = strlen(host);
    struct bgr_error e;
    if (bgr_store_job_workers(j->store, &names, &n, &e) != 0) {
        bgr_log(BGR_LOG_WARN, "queue: %s", e.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *w = names[i];
        if (strncmp(w, host, hl) == 0 && w[hl] == ':') {
            long pid = strtol(w + hl + 1, NULL, 10);
            if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
                bgr_log(BGR_LOG_INFO, "queue: worker %s is gone: its jobs are ready again", w);
                if (bgr_store_job_expire_worker(j->store, w, &e) != 0)
                    bgr_log(BGR_LOG_WARN, "queue: %s", e.msg);
            }
        }
        free(names[i]);
    }
    free(names);
}

int bgr_jobs_queue_start(struct bgr_jobs *j, struct bgr_error *err)
{
    char host[128] = "host";
    int rc;
    (void)gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = 0;
    (void)snprintf(j->worker_name, sizeof(j->worker_name), "%.100s:%ld:%08x", host, (long)getpid(),
                   (unsigned)bgr_wall_ms());
    release_dead_local(j, host);
    rc = bgr_store_listener_open(j->store, "bgr_done", &j->q_done, err);
    if (rc)
        return rc;
    rc = start_listener(j, j->q_done, on_done, &j->q_done_thread, err);
    if (rc)
        return rc;
    j->q_done_started = true;
    if (j->cfg.workers == 0)
        return 0; /* an API node: others do the work */
    rc = bgr_store_listener_open(j->store, "bgr_jobs", &j->q_work, err);
    if (rc)
        return rc;
    rc = start_listener(j, j->q_work, on_work, &j->q_work_thread, err);
    if (rc)
        return rc;
    j->q_work_started = true;
    if (pthread_create(&j->q_renewer, NULL, renewer_main, j) != 0)
        return bgr_error_set(err, BGR_EINTERNAL, "jobs: cannot start the lease renewer");
    j->q_renewer_started = true;
    /* the job threads and the watchdog: bgr_jobs_start, after this */
    bgr_log(BGR_LOG_INFO, "queue: %d workers as %s (lease %lld ms, at most %d attempts)",
            j->cfg.workers, j->worker_name, (long long)j->cfg.job_lease_ms,
            j->cfg.job_max_attempts);
    return 0;
}

/* After stopping is set and broadcast, and the job threads joined:
 * joins the queue's listeners and renewer. */
void bgr_jobs_queue_stop(struct bgr_jobs *j)
{
    if (j->q_work_started)
        pthread_join(j->q_work_thread, NULL);
    if (j->q_done_started)
        pthread_join(j->q_done_thread, NULL);
    if (j->q_renewer_started)
        pthread_join(j->q_renewer, NULL);
    bgr_store_listener_close(j->q_work);
    bgr_store_listener_close(j->q_done);
    j->q_work = j->q_done = NULL;
}

/* ---- the API side ------------------------------------------------------------------ */

int bgr_jobs_remove_queued(struct bgr_jobs *j, const struct bgr_remove_req *r, const void *data,
                           size_t len, struct bgr_image *out, struct bgr_error *err)
{
    struct bgr_queue_waiter w = {0};
    struct bgr_job_state js;
    char opts[BGR_OUTPUT_OPTS_TEXT_MAX];
    int64_t t0 = bgr_wall_ms();
    int rc;

    char input_key[BGR_RESULTS_KEY_MAX] = "";
    BGR_ASSERT(bgr_output_opts_to_text(&r->opts, opts, sizeof(opts)) == 0);
    if (r->render && !r->render_name)
        return bgr_error_set(err, BGR_EINTERNAL, "this request's render cannot be queued");
    struct bgr_job_new jn = {
        .account_id = r->acct->id,
        .opts = opts,
        .render = r->render_name,
        .render_spec = r->render_spec,
        .input = len > INLINE_INPUT_MAX ? NULL : data,
        .input_len = len > INLINE_INPUT_MAX ? 0 : len,
        .extra = r->render_extra,
        .extra_len = r->render_extra_len,
        .webhook_url = r->webhook_url,
        .image_url = r->image_url,
        .credits = r->credits,
    };
    pthread_mutex_lock(&j->mu);
    bool full = j->stopping || j->q_len >= j->cfg.queue_size;
    if (!full)
        j->q_len++; /* requests of this node waiting on the shared queue */
    pthread_mutex_unlock(&j->mu);
    if (full)
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "the processing queue is full, retry later");
    if (len > INLINE_INPUT_MAX) {
        char id[BGR_ID_MAX];
        bgr_store_new_id("inp_", id);
        /* no row owns it: the orphan sweep removes it should this node die */
        rc = bgr_results_key_make(id, "bin", input_key, err);
        if (!rc)
            rc = bgr_results_put(j->cfg.results, input_key, data, len, "application/octet-stream",
                                 err);
        if (rc) {
            input_key[0] = 0;
            goto out;
        }
        jn.input_key = input_key;
    }
    rc = bgr_store_job_enqueue(j->store, &jn, t0, &w.id, err);
    if (rc)
        goto out;

    pthread_mutex_lock(&j->mu);
    w.next = j->q_waiters;
    j->q_waiters = &w;
    for (;;) {
        struct timespec ts;
        bool stopping = j->stopping;
        w.notified = false;
        pthread_mutex_unlock(&j->mu);
        rc = bgr_store_job_state(j->store, w.id, &js, err);
        pthread_mutex_lock(&j->mu);
        /* The database away for a moment: the job goes on (or waits for
         * it), so keep waiting rather than answer 503 for an image that
         * may yet be done and charged. */
        if (rc == BGR_ESERVICE_BUSY && !stopping && bgr_wall_ms() - t0 <= j->cfg.sync_wait_ms) {
            js.state = BGR_JOB_QUEUED;
            rc = 0;
        }
        if (rc || js.state >= BGR_JOB_DONE)
            break;
        int64_t ran = js.state == BGR_JOB_RUNNING && js.claimed_at_ms > 0
                          ? bgr_wall_ms() - js.claimed_at_ms
                          : 0;
        if (ran > j->cfg.job_timeout_ms) {
            /* The ceiling: the client is answered now and the job
             * abandoned, so its worker commits nothing when it ends. */
            pthread_mutex_unlock(&j->mu);
            int gone = bgr_store_job_abandon(j->store, w.id, bgr_err_name(BGR_EPROCESSING_TIMEOUT),
                                             "abandoned at the ceiling", bgr_wall_ms(), NULL);
            pthread_mutex_lock(&j->mu);
            if (gone == 0) {
                rc = bgr_jobs_err_ceiling(j, err);
                break;
            }
            continue; /* it finished meanwhile: read how */
        }
        if (stopping || bgr_wall_ms() - t0 > j->cfg.sync_wait_ms) {
            /* Withdraw it if no worker took it; a running one is waited
             * for (its lease and attempts bound it), except at shutdown. */
            pthread_mutex_unlock(&j->mu);
            int gone = bgr_store_job_forget(j->store, w.id, true, NULL);
            pthread_mutex_lock(&j->mu);
            if (gone == 0 || stopping) {
                rc = bgr_error_set(err, BGR_ESERVICE_BUSY,
                                   stopping ? "the server is shutting down"
                                            : "no worker took the image in time, retry later");
                break;
            }
        }
        /* wake at the ceiling too, to answer on time */
        deadline_in(&ts, ran > 0 && j->cfg.job_timeout_ms - ran < RECHECK_MS
                             ? j->cfg.job_timeout_ms - ran + 10
                             : RECHECK_MS);
        while (!w.notified && !j->stopping)
            if (pthread_cond_timedwait(&j->done_cv, &j->mu, &ts) == ETIMEDOUT)
                break;
    }
    for (struct bgr_queue_waiter **p = &j->q_waiters; *p; p = &(*p)->next) {
        if (*p == &w) {
            *p = w.next;
            break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (rc == BGR_EPROCESSING_TIMEOUT) {
        if (r->webhook_url)
            bgr_jobs_send_failed(j, r->acct, r->webhook_url, r->image_url, rc, err);
        (void)bgr_store_job_forget(j->store, w.id, false, NULL);
    }
    if (rc)
        goto out;
    if (js.state == BGR_JOB_DONE) {
        rc = bgr_store_image_get(j->store, js.image_id, r->acct->id, bgr_wall_ms(), out, err);
    } else {
        rc = bgr_error_set(err, err_from_name(js.error_code), "%s", js.error_message);
        if (r->outcome && r->outcome_len)
            (void)snprintf(r->outcome, r->outcome_len, "%s", js.outcome);
    }
    (void)bgr_store_job_forget(j->store, w.id, false, NULL);
out:
    if (input_key[0]) {
        struct bgr_error e2;
        if (bgr_results_delete(j->cfg.results, input_key, &e2) != 0)
            bgr_log(BGR_LOG_WARN, "queue: cannot remove input %s: %s (the orphan sweep will)",
                    input_key, e2.msg);
    }
    pthread_mutex_lock(&j->mu);
    j->q_len--;
    pthread_cond_broadcast(&j->idle_cv);
    pthread_mutex_unlock(&j->mu);
    return rc;
}
