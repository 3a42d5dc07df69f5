/*
 * sweep.c - removing result objects: a client's delete, expiry, orphans.
 *
 * The rules live in the store (which results are expired or deleted, which
 * objects a row still needs); the objects live in src/results. This file
 * joins the two: it asks the store what must go, removes it through the
 * results module, and records it gone. Everything here is idempotent, so
 * any node may run it at any time: removing an object twice is success,
 * and marking a row purged twice is harmless.
 */
#include "jobs/jobs_int.h"

#include <stdlib.h>
#include <string.h>

int bgr_jobs_image_delete(struct bgr_store *s, struct bgr_results *r, const char *account_id,
                          const char *id, int64_t now_ms, struct bgr_image *out,
                          struct bgr_error *err)
{
    struct bgr_error e2;
    int rc = bgr_store_image_delete(s, account_id, id, now_ms, out, err);
    if (rc)
        return rc;
    /* Committed: the URL is dead now. Remove the bytes; should that fail,
     * the sweeper retries (the row is not marked purged). */
    if (bgr_results_delete(r, out->path, &e2) != 0)
        bgr_log(BGR_LOG_WARN, "results: removing %s failed (the sweeper retries): %s", out->id,
                e2.msg);
    else if (bgr_store_image_purged(s, out->id, now_ms, &e2) != 0)
        bgr_log(BGR_LOG_WARN, "results: %s removed but not recorded: %s", out->id, e2.msg);
    return 0;
}

int bgr_jobs_sweep_expired(struct bgr_store *s, struct bgr_results *r, int64_t now_ms,
                           int *n_purged, struct bgr_error *err)
{
    struct bgr_image_ref *refs = NULL;
    size_t n = 0;
    int purged = 0, rc = bgr_store_images_to_purge(s, now_ms, 0, &refs, &n, err);
    for (size_t i = 0; i < n && !rc; i++) {
        struct bgr_error e2;
        /* A row whose key is not a key (a corrupt row) has nothing we may
         * remove: record it purged so it is not offered forever. */
        if (bgr_results_key_valid(refs[i].key) && bgr_results_delete(r, refs[i].key, &e2) != 0) {
            bgr_log(BGR_LOG_WARN, "sweeper: cannot remove %s: %s", refs[i].id, e2.msg);
            continue;
        }
        rc = bgr_store_image_purged(s, refs[i].id, now_ms, err);
        if (!rc)
            purged++;
    }
    free(refs);
    if (!rc && n_purged)
        *n_purged = purged;
    return rc;
}

struct orphan_ctx {
    struct bgr_store *s;
    struct bgr_results *r;
    int removed;
};

static int orphan_one(void *arg, const char *key, int64_t mtime_ms)
{
    struct orphan_ctx *c = arg;
    char id[BGR_ID_MAX];
    bool needed = true;
    struct bgr_error e;
    (void)mtime_ms; /* old enough: the listing filtered by age */
    if (!bgr_results_key_id(key, id, sizeof id))
        return 0; /* a name too long to be an id of ours: leave it */
    if (bgr_store_image_needs_object(c->s, id, &needed, &e) != 0 || needed)
        return 0;
    if (bgr_results_delete(c->r, key, &e) == 0)
        c->removed++;
    else
        bgr_log(BGR_LOG_WARN, "sweeper: cannot remove orphan %s: %s", key, e.msg);
    return 0;
}

int bgr_jobs_sweep_orphans(struct bgr_store *s, struct bgr_results *r, int64_t now_ms,
                           int64_t min_age_ms, int *n_removed, struct bgr_error *err)
{
    struct orphan_ctx c = {s, r, 0};
    int rc = bgr_results_list(r, now_ms, min_age_ms, orphan_one, &c, err);
    if (!rc && n_removed)
        *n_removed = c.removed;
    return rc;
}
