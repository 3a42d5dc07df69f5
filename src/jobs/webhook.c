/*
 * webhook.c - webhook signing and delivery: a dispatcher thread and a pool
 * of delivery threads; also the sweeper of expired results (both loops
 * wait on jobs->bg_cv).
 *
 * The dispatcher reads the due rows of the outbox (oldest due first, up to
 * DUE_READ at a time) and hands each to a free slot of the pool
 * (cfg.webhook_workers threads), skipping rows already in a slot and rows
 * whose destination (host:port of the URL, as written) has
 * cfg.webhook_per_host deliveries in a slot already. So a slow or dead
 * receiver holds at most webhook_per_host threads for its timeout, and
 * every other destination's events go out on the others: it delays only
 * its own events (issue 13, row 5). A skipped row stays due in the store
 * and is read again when a delivery ends (which wakes the dispatcher).
 *
 * Each attempt is recorded in the store before its slot is given back, so
 * a restart resumes with the right attempt count and schedule. Delivery is
 * at least once: receivers deduplicate on X-Bgr-Event-Id, which is the same
 * on every attempt; with two deliveries in flight to one receiver, events
 * may arrive out of order (they carry created_at). An address the guard
 * refuses (private, loopback, reserved, the server's own, or a URL that
 * breaks the syntax rules) fails the row at once: it cannot get better, so
 * it is not retried. A name that does not resolve may be a passing DNS
 * fault and is retried like a refused connection or a timeout.
 */
#define _GNU_SOURCE
#include "jobs/jobs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void bgr_webhook_sign(const char *secret, int64_t ts_s, const void *body, size_t len, char out[68])
{
    uint8_t mac[32];
    char ts[24];
    int n = snprintf(ts, sizeof(ts), "%lld.", (long long)ts_s);
    /* Our own payloads (bounded by us), so the aborting allocator is right. */
    uint8_t *msg = bgr_xmalloc((size_t)n + len + 1);
    memcpy(msg, ts, (size_t)n);
    if (len)
        memcpy(msg + n, body, len);
    bgr_hmac_sha256(secret, strlen(secret), msg, (size_t)n + len, mac);
    free(msg);
    memcpy(out, "v1=", 3);
    bgr_hex_encode(mac, sizeof(mac), out + 3);
}

int64_t bgr_webhook_backoff_ms(int64_t base_ms, int max_attempts, int attempt)
{
    int64_t d = base_ms;
    if (attempt < 1 || attempt >= max_attempts)
        return 0;
    for (int i = 1; i < attempt && d < INT64_MAX / 2; i++)
        d *= 2;
    return d;
}

char *bgr_jobs_event_payload(const char *event, int64_t created_ms, json_t *data)
{
    char ts[21];
    json_t *o;
    char *s;
    if (!data)
        return NULL;
    bgr_time_format(created_ms, ts);
    o = json_pack("{s:s, s:s, s:o}", "event", event, "created_at", ts, "data", data);
    if (!o)
        return NULL;
    s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(o);
    return s;
}

void bgr_jobs_kick_deliverer(struct bgr_jobs *j)
{
    pthread_mutex_lock(&j->mu);
    j->wh_kick = true;
    pthread_cond_broadcast(&j->bg_cv);
    pthread_mutex_unlock(&j->mu);
}

/* Waits on bg_cv until ms have passed, a kick (if kickable) or stop.
 * Returns false when stopping. */
static bool bg_wait(struct bgr_jobs *j, int64_t ms, bool kickable)
{
    struct timespec ts;
    bool go_on;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (!j->stopping && !(kickable && j->wh_kick)) {
        if (pthread_cond_timedwait(&j->bg_cv, &j->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (kickable)
        j->wh_kick = false;
    go_on = !j->stopping;
    pthread_mutex_unlock(&j->mu);
    return go_on;
}

/* A batch.completed row is added with an empty payload inside the
 * transaction that finished the batch; render it now from committed state
 * and store it, so every retry sends the same bytes. */
static int ensure_payload(struct bgr_jobs *j, struct bgr_webhook *w, struct bgr_error *err)
{
    json_t *data = NULL;
    char *payload;
    int rc;
    if (w->payload[0])
        return 0;
    if (!w->ref[0])
        return bgr_error_set(err, BGR_EINTERNAL, "webhook %s has no payload", w->event_id);
    rc = bgr_jobs_batch_json(j->store, j->public_url, w->ref, NULL, &data, err);
    if (rc)
        return rc;
    payload = bgr_jobs_event_payload(w->event, w->created_at_ms, data);
    if (!payload)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    rc = bgr_store_outbox_set_payload(j->store, w->row_id, payload, err);
    free(w->payload);
    w->payload = payload;
    return rc;
}

#define DUE_READ 256 /* outbox rows read per round: past the ones a slow receiver holds */

static void deliver(struct bgr_jobs *j, struct bgr_webhook *w)
{
    struct bgr_account acct;
    struct bgr_fetch_opts fo;
    struct bgr_error e = {0};
    char sig[68], h_id[96], h_ts[64], h_sig[96], h_ev[64];
    const char *headers[5];
    long status = 0;
    int64_t ts = bgr_wall_ms() / 1000, next = 0;
    bool ok = false, refused = false;
    int rc = ensure_payload(j, w, &e);
    if (!rc)
        rc = bgr_store_account_get(j->store, w->account_id, &acct, &e);
    if (!rc) {
        bgr_webhook_sign(acct.webhook_secret, ts, w->payload, strlen(w->payload), sig);
        (void)snprintf(h_id, sizeof(h_id), BGR_WEBHOOK_HDR_ID ": %s", w->event_id);
        (void)snprintf(h_ts, sizeof(h_ts), BGR_WEBHOOK_HDR_TS ": %lld", (long long)ts);
        (void)snprintf(h_sig, sizeof(h_sig), BGR_WEBHOOK_HDR_SIG ": %s", sig);
        (void)snprintf(h_ev, sizeof(h_ev), "X-Bgr-Event: %s", w->event);
        headers[0] = "Content-Type: application/json";
        headers[1] = h_id;
        headers[2] = h_ts;
        headers[3] = h_sig;
        headers[4] = h_ev;
        bgr_fetch_opts_init(&fo);
        fo.allow_private = j->cfg.allow_private_urls;
        fo.total_timeout_ms = j->cfg.webhook_timeout_ms;
        fo.connect_timeout_ms = j->cfg.webhook_timeout_ms < 5000 ? j->cfg.webhook_timeout_ms : 5000;
        fo.cancel = &j->cancel;
        fo.refused = &refused;
        rc = bgr_net_post(w->url, &fo, headers, BGR_ARRAY_LEN(headers), w->payload,
                          strlen(w->payload), &status, &e);
        if (rc && atomic_load(&j->cancel))
            return; /* stopping: not an attempt; the row stays due for the next start */
        if (!rc && (status < 200 || status > 299))
            rc = bgr_error_set(&e, BGR_EIMAGE_DOWNLOAD_FAILED, "the endpoint answered HTTP %ld",
                               status);
        ok = rc == 0;
    }
    if (!ok) {
        /* A destination the guard refuses will not get better: give up at
         * once, and say why in last_error. */
        bool final = refused || rc == BGR_EINVALID_PARAMETER;
        int64_t delay = final
                            ? 0
                            : bgr_webhook_backoff_ms(j->cfg.webhook_base_ms,
                                                     j->cfg.webhook_max_attempts, w->attempts + 1);
        if (refused) {
            char why[sizeof e.msg];
            (void)snprintf(why, sizeof why, "%s", e.msg);
            bgr_error_set(&e, BGR_EINVALID_PARAMETER,
                          "%s: refused by the server's address guard, not retried", why);
        }
        next = delay ? bgr_wall_ms() + delay : 0;
        bgr_log(next ? BGR_LOG_INFO : BGR_LOG_WARN, "webhook %s attempt %d failed: %s%s",
                w->event_id, w->attempts + 1, e.msg, next ? "" : " (giving up)");
    }
    if (bgr_store_outbox_result(j->store, w->row_id, ok, next, ok ? "" : e.msg, &e) != 0)
        bgr_log(BGR_LOG_ERROR, "webhook %s: cannot record the attempt: %s", w->event_id, e.msg);
}

/* The per-destination key of a webhook URL: "host:port" as parsed (a URL
 * that does not parse gets "", and fails at once when delivered). */
static void dest_of(const char *url, char *out, size_t len)
{
    struct bgr_url u;
    struct bgr_error e;
    if (bgr_net_url_parse(url, &u, &e) == 0)
        (void)snprintf(out, len, "%s:%d", u.host, u.port);
    else
        out[0] = 0;
}

/* Hands w to a free slot if its row is not in one already and its
 * destination is under the cap; under mu. True when w moved into a slot
 * (the slot owns it now). */
static bool dispatch_one(struct bgr_jobs *j, struct bgr_webhook *w)
{
    char dest[sizeof(((struct bgr_wh_slot *)0)->dest)];
    int free_slot = -1, same = 0;
    dest_of(w->url, dest, sizeof dest);
    for (int i = 0; i < j->cfg.webhook_workers; i++) {
        const struct bgr_wh_slot *sl = &j->wh_slots[i];
        if (sl->state == BGR_WH_FREE) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        if (sl->w.row_id == w->row_id)
            return false; /* being delivered, or just recorded */
        if (sl->state != BGR_WH_DONE && strcmp(sl->dest, dest) == 0)
            same++;
    }
    if (free_slot < 0 || same >= j->cfg.webhook_per_host)
        return false;
    j->wh_slots[free_slot].w = *w;
    memcpy(j->wh_slots[free_slot].dest, dest, sizeof dest);
    j->wh_slots[free_slot].state = BGR_WH_READY;
    pthread_cond_signal(&j->wh_cv);
    return true;
}

void *bgr_jobs_wh_thread_main(void *arg)
{
    struct bgr_jobs *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        struct bgr_wh_slot *sl = NULL;
        while (!j->stopping) {
            for (int i = 0; i < j->cfg.webhook_workers && !sl; i++)
                if (j->wh_slots[i].state == BGR_WH_READY)
                    sl = &j->wh_slots[i];
            if (sl)
                break;
            pthread_cond_wait(&j->wh_cv, &j->mu);
        }
        if (j->stopping)
            break;
        sl->state = BGR_WH_BUSY;
        pthread_mutex_unlock(&j->mu);
        deliver(j, &sl->w);
        pthread_mutex_lock(&j->mu);
        bgr_webhook_release(&sl->w);
        sl->state = BGR_WH_DONE;
        j->wh_kick = true; /* the dispatcher may hand out more */
        pthread_cond_broadcast(&j->bg_cv);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

void *bgr_jobs_deliverer_main(void *arg)
{
    struct bgr_jobs *j = arg;
    for (;;) {
        struct bgr_webhook *due = NULL;
        struct bgr_error e;
        size_t n = 0, handed = 0;
        int64_t next = 0, wait = 1000;
        /* Slots whose attempt is recorded: free them before reading, so
         * what is read next already shows those attempts. */
        pthread_mutex_lock(&j->mu);
        for (int i = 0; i < j->cfg.webhook_workers; i++)
            if (j->wh_slots[i].state == BGR_WH_DONE) {
                memset(&j->wh_slots[i], 0, sizeof(j->wh_slots[i]));
                j->wh_slots[i].state = BGR_WH_FREE;
            }
        pthread_mutex_unlock(&j->mu);
        if (bgr_store_outbox_due(j->store, bgr_wall_ms(), DUE_READ, &due, &n, &e) != 0)
            bgr_log(BGR_LOG_ERROR, "webhooks: %s", e.msg);
        int64_t *kept = n ? bgr_xcalloc(n, sizeof(*kept)) : NULL;
        size_t n_kept = 0;
        pthread_mutex_lock(&j->mu);
        for (size_t i = 0; i < n; i++) {
            if (!j->stopping && dispatch_one(j, &due[i])) {
                memset(&due[i], 0, sizeof(due[i])); /* moved */
                handed++;
            } else {
                kept[n_kept++] = due[i].row_id;
            }
        }
        pthread_mutex_unlock(&j->mu);
        /* A shared store's read claimed them all: give back those not sent
         * now, so they stay due (for this node or another). */
        if (bgr_store_outbox_unclaim(j->store, kept, n_kept, bgr_wall_ms(), &e) != 0)
            bgr_log(BGR_LOG_WARN, "webhooks: %s", e.msg);
        free(kept);
        for (size_t i = 0; i < n; i++)
            bgr_webhook_release(&due[i]);
        free(due);
        if (handed && n == DUE_READ)
            wait = 0; /* more may be due */
        else if (bgr_store_outbox_next_due(j->store, &next, &e) == 0 && next > 0)
            wait = next - bgr_wall_ms();
        /* Rows due but not handed out (their destination at its cap, or
         * every slot busy) wait for a delivery to end: it kicks. */
        if (wait <= 0 && !(handed && n == DUE_READ))
            wait = 1000;
        if (wait > 1000)
            wait = 1000; /* also notices rows the admin CLI or a kick missed */
        if (wait < 0)
            wait = 0;
        if (!bg_wait(j, wait, true))
            break;
    }
    return NULL;
}

void *bgr_jobs_sweeper_main(void *arg)
{
    struct bgr_jobs *j = arg;
    unsigned round = 0;
    do {
        struct bgr_store_exclusive *lock = NULL;
        struct bgr_error e;
        int n = 0;
        /* The results store failed its last request: probe it, so /readyz
         * turns ready again once it is back even when no request comes. */
        if (!bgr_results_healthy(j->cfg.results) && bgr_results_check(j->cfg.results, &e) != 0)
            bgr_log(BGR_LOG_WARN, "sweeper: results store: %s", e.msg);
        /* Nodes sharing a store sweep one at a time: the others skip the
         * round (nothing would be deleted twice anyway: every step is
         * idempotent, but N nodes would list the same rows N times). */
        if (bgr_store_exclusive_try(j->store, "sweep", &lock, &e) != 0) {
            bgr_log(BGR_LOG_WARN, "sweeper: %s", e.msg);
            continue;
        }
        if (!lock)
            continue; /* another node sweeps */
        if (bgr_jobs_sweep_expired(j->store, j->cfg.results, bgr_wall_ms(), &n, &e) != 0)
            bgr_log(BGR_LOG_ERROR, "sweeper: %s", e.msg);
        else if (n)
            bgr_log(BGR_LOG_INFO, "sweeper: removed %d expired results", n);
        /* Orphans (a crash between writing a file and committing its row)
         * are rare: look for them every tenth round, and only at files
         * an hour old, far past any write still in progress. */
        if (round++ % 10 == 0) {
            if (bgr_jobs_sweep_orphans(j->store, j->cfg.results, bgr_wall_ms(), 3600 * 1000LL, &n,
                                       &e) != 0)
                bgr_log(BGR_LOG_ERROR, "sweeper: %s", e.msg);
            else if (n)
                bgr_log(BGR_LOG_INFO, "sweeper: removed %d orphaned result objects", n);
            /* idempotency keys past their 24 hours (claims read expired
             * rows as absent: this only keeps the table small) */
            if (bgr_store_idem_sweep(j->store, bgr_wall_ms(), &n, &e) != 0)
                bgr_log(BGR_LOG_ERROR, "sweeper: %s", e.msg);
            /* shared queue: finished requests whose API node died before
             * it read them */
            if (bgr_store_shared(j->store) &&
                bgr_store_job_sweep(j->store, bgr_wall_ms() - 3600 * 1000LL, &n, &e) != 0)
                bgr_log(BGR_LOG_ERROR, "sweeper: %s", e.msg);
        }
        bgr_store_exclusive_release(lock);
    } while (bg_wait(j, j->cfg.sweep_interval_ms, false));
    return NULL;
}
