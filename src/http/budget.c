/*
 * budget.c - the in-flight body budget of budget.h: a compare-and-swap on
 * one counter, so a reservation either fits entirely or changes nothing,
 * and concurrent reservations can never together pass the limit.
 */
#include "http/budget.h"

#include <string.h>

#include "core/core.h"

void bgr_http_budget_init(struct bgr_http_budget *b, size_t limit)
{
    BGR_ASSERT(limit > 0);
    b->limit = limit;
    atomic_init(&b->used, 0);
    atomic_init(&b->refused, 0);
    atomic_init(&b->owner_refused, 0);
    pthread_mutex_init(&b->owners_mu, NULL);
    memset(b->owners, 0, sizeof b->owners);
}

bool bgr_http_budget_take(struct bgr_http_budget *b, size_t n)
{
    if (n == 0)
        return true;
    size_t cur = atomic_load_explicit(&b->used, memory_order_relaxed);
    do {
        /* Written as a subtraction: cur + n could wrap for a huge n. */
        if (n > b->limit - cur)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

void bgr_http_budget_give(struct bgr_http_budget *b, size_t n)
{
    if (n == 0)
        return;
    size_t before = atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
    BGR_ASSERT(before >= n); /* given back more than was taken: a double release */
}

size_t bgr_http_budget_used(const struct bgr_http_budget *b)
{
    return atomic_load_explicit(&b->used, memory_order_relaxed);
}

void bgr_http_budget_count_refusal(struct bgr_http_budget *b)
{
    atomic_fetch_add_explicit(&b->refused, 1, memory_order_relaxed);
}

uint64_t bgr_http_budget_refused(const struct bgr_http_budget *b)
{
    return atomic_load_explicit(&b->refused, memory_order_relaxed);
}

/* A linear scan: at most max_connections entries are ever in use, and a
 * reservation is made once or a few times per request. */
enum bgr_http_budget_take_rc bgr_http_budget_take_owned(struct bgr_http_budget *b, uint64_t owner,
                                                        size_t owner_cap, size_t n)
{
    if (owner == 0 || n == 0)
        return bgr_http_budget_take(b, n) ? BGR_HTTP_BUDGET_OK : BGR_HTTP_BUDGET_FULL;
    enum bgr_http_budget_take_rc rc = BGR_HTTP_BUDGET_FULL;
    pthread_mutex_lock(&b->owners_mu);
    size_t at = BGR_HTTP_BUDGET_OWNERS, free_at = BGR_HTTP_BUDGET_OWNERS;
    for (size_t i = 0; i < BGR_HTTP_BUDGET_OWNERS; i++) {
        if (b->owners[i].used && b->owners[i].id == owner) {
            at = i;
            break;
        }
        if (!b->owners[i].used && free_at == BGR_HTTP_BUDGET_OWNERS)
            free_at = i;
    }
    if (at == BGR_HTTP_BUDGET_OWNERS) {
        if (free_at == BGR_HTTP_BUDGET_OWNERS)
            goto out; /* more accounts uploading than the table holds: busy */
        at = free_at;
        b->owners[at].id = owner;
    }
    if (owner_cap &&
        n > owner_cap - (b->owners[at].used < owner_cap ? b->owners[at].used : owner_cap)) {
        rc = BGR_HTTP_BUDGET_OWNER_FULL;
        atomic_fetch_add_explicit(&b->owner_refused, 1, memory_order_relaxed);
        goto out;
    }
    if (!bgr_http_budget_take(b, n))
        goto out;
    b->owners[at].used += n;
    rc = BGR_HTTP_BUDGET_OK;
out:
    pthread_mutex_unlock(&b->owners_mu);
    return rc;
}

void bgr_http_budget_give_owned(struct bgr_http_budget *b, uint64_t owner, size_t n)
{
    if (owner == 0 || n == 0) {
        bgr_http_budget_give(b, n);
        return;
    }
    pthread_mutex_lock(&b->owners_mu);
    size_t i = 0;
    while (i < BGR_HTTP_BUDGET_OWNERS && !(b->owners[i].used && b->owners[i].id == owner))
        i++;
    BGR_ASSERT(i < BGR_HTTP_BUDGET_OWNERS && b->owners[i].used >= n); /* never given twice */
    b->owners[i].used -= n;
    bgr_http_budget_give(b, n);
    pthread_mutex_unlock(&b->owners_mu);
}
