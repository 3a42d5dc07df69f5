/*
 * stage.c - the fetch stage of batch items: downloads run here, on their
 * own bounded pool, before an item takes an inference worker.
 *
 * Why a stage: a download waits on somebody else's server (an attacker's
 * may send a byte every half second for the whole fetch timeout). Run on
 * the inference workers, 20 such items held both workers for minutes and
 * every other account's uploads waited behind them (issue 13, row 4).
 *
 * The lines, all under jobs->mu:
 *   fetch_q   batch item ids waiting to be downloaded, one lane per
 *             account, served round-robin (rrq.h) with at most
 *             cfg.fetch_per_account downloads of one account at once;
 *   f_active  downloads in progress (at most cfg.fetch_workers threads);
 *   r_head    downloaded items waiting for a worker (FIFO; the workers
 *             alternate them with sync jobs, see jobs.c).
 * A download starts only while f_active + r_len < cfg.fetch_buffer, so at
 * most fetch_buffer images (each at most its plan's max_bytes) are held in
 * memory by the stage, however fast the sources and slow the workers.
 *
 * An item is marked processing in the store (bgr_store_item_start) when its
 * download starts; the credit check runs then too (the charge is at
 * completion, as before). A failed download fails the item with the
 * download's error. At stop, downloads in progress are cancelled and
 * nothing is recorded: the items stay "processing" in the store, and the
 * next start queues them again (as after a crash).
 *
 * A database queue shared by several servers would replace fetch_q by a
 * claim of "the next item of the account after the last one served" and
 * keep everything else: the stage, its bounds and the hand-off to workers.
 */
#include "jobs/jobs_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bgr_jobs_fetch_push(struct bgr_jobs *j, const char *account_id, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        bgr_rrq_push(&j->fetch_q, account_id, ids[i]);
    if (n)
        pthread_cond_broadcast(&j->fetch_cv);
}

size_t bgr_jobs_fetch_backlog(const struct bgr_jobs *j)
{
    return j->fetch_q.waiting + (size_t)j->f_active + (size_t)j->r_len;
}

void bgr_jobs_fetched_free(struct bgr_fetched *f)
{
    if (!f)
        return;
    bgr_buf_release(&f->body);
    free(f->it);
    free(f);
}

void bgr_jobs_fetch_release(struct bgr_jobs *j)
{
    while (j->r_head) {
        struct bgr_fetched *f = j->r_head;
        j->r_head = f->next;
        bgr_jobs_fetched_free(f);
    }
    j->r_tail = NULL;
    j->r_len = 0;
    bgr_rrq_release(&j->fetch_q);
}

void bgr_jobs_fail_item(struct bgr_jobs *j, int64_t id, int rc, const struct bgr_error *e)
{
    struct bgr_error err2;
    bool done = false;
    if (bgr_store_item_fail(j->store, id, bgr_err_code(rc),
                            e->msg[0] ? e->msg : bgr_err_default_msg(rc), bgr_wall_ms(), &done,
                            &err2) != 0)
        /* not found: finished already (a late run of an item failed at
         * the ceiling, one completed by another worker, a deleted batch) */
        bgr_log(err2.code == BGR_ENOT_FOUND ? BGR_LOG_DEBUG : BGR_LOG_ERROR,
                "jobs: item %lld: cannot record failure: %s", (long long)id, err2.msg);
    if (done)
        bgr_jobs_kick_deliverer(j);
}

int bgr_jobs_fetch(struct bgr_jobs *j, const struct bgr_account *acct, const char *url,
                   struct bgr_buf *out, struct bgr_error *e)
{
    struct bgr_fetch_opts fo;
    bgr_fetch_opts_init(&fo);
    fo.max_bytes = (size_t)acct->plan.max_bytes;
    fo.allow_private = j->cfg.allow_private_urls;
    fo.connect_timeout_ms = j->cfg.fetch_connect_timeout_ms;
    fo.total_timeout_ms = j->cfg.fetch_total_timeout_ms;
    fo.cancel = &j->cancel;
    return bgr_net_get(url, &fo, out, NULL, e);
}

int bgr_jobs_item_load(struct bgr_jobs *j, int64_t id, struct bgr_batch_item *it,
                       struct bgr_account *acct, struct bgr_buf *body, struct bgr_error *e)
{
    int64_t remaining = 0;
    int rc = bgr_store_item_get(j->store, id, it, e);
    if (!rc)
        rc = bgr_store_account_get(j->store, it->account_id, acct, e);
    if (!rc)
        rc = bgr_store_credits(j->store, acct, bgr_wall_ms(), NULL, &remaining, e);
    if (!rc && remaining == 0)
        rc = bgr_store_err_credits_spent(acct, bgr_wall_ms(), e);
    if (!rc)
        rc = bgr_jobs_fetch(j, acct, it->image_url, body, e);
    return rc;
}

/* Starts item id and downloads its image into *out (malloc'd). *started
 * tells whether the item was marked processing (else another node or run
 * has it, or it is finished: nothing to do). */
static int fetch_one(struct bgr_jobs *j, int64_t id, struct bgr_fetched **out, bool *started,
                     struct bgr_error *e)
{
    struct bgr_fetched *f = bgr_xcalloc(1, sizeof(*f));
    int rc = bgr_store_item_start(j->store, id, bgr_wall_ms(), e);
    if (rc)
        goto out; /* taken or finished already */
    *started = true;
    f->id = id;
    f->it = bgr_xmalloc(sizeof(*f->it));
    rc = bgr_jobs_item_load(j, id, f->it, &f->acct, &f->body, e);
out:
    if (rc) {
        bgr_jobs_fetched_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

void *bgr_jobs_fetcher_main(void *arg)
{
    struct bgr_jobs *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        struct bgr_fetched *f = NULL;
        struct bgr_error e = {0};
        char key[BGR_RRQ_KEY_MAX];
        int64_t id = 0;
        bool started = false, cancelled;
        int rc;
        /* pop only when there is room: the pop counts the account's turn */
        while (!j->stopping && !(j->f_active + j->r_len < j->cfg.fetch_buffer &&
                                 bgr_rrq_pop(&j->fetch_q, j->cfg.fetch_per_account, &id, key)))
            pthread_cond_wait(&j->fetch_cv, &j->mu);
        if (j->stopping)
            break;
        j->f_active++;
        pthread_mutex_unlock(&j->mu);

        rc = fetch_one(j, id, &f, &started, &e);
        cancelled = rc && atomic_load(&j->cancel);
        if (rc && started && !cancelled) {
            bgr_jobs_fail_item(j, id, rc, &e);
            if (j->cfg.on_image)
                j->cfg.on_image(j->cfg.on_image_ctx, false, 0);
        }

        pthread_mutex_lock(&j->mu);
        bgr_rrq_done(&j->fetch_q, key);
        j->f_active--;
        if (f) {
            if (j->r_tail)
                j->r_tail->next = f;
            else
                j->r_head = f;
            j->r_tail = f;
            j->r_len++;
            pthread_cond_signal(&j->work_cv);
        } else if (started && !cancelled) {
            j->failed++;
        }
        pthread_cond_broadcast(&j->fetch_cv); /* the account's cap may allow another */
        pthread_cond_broadcast(&j->idle_cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}
