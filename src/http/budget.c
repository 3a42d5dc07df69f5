/*
 * budget.c - the in-flight body budget of budget.h: a compare-and-swap on
 * one counter, so a reservation either fits entirely or changes nothing,
 * and concurrent reservations can never together pass the limit.
 */
#include "http/budget.h"

#include "core/core.h"

void bgr_http_budget_init(struct bgr_http_budget *b, size_t limit)
{
    BGR_ASSERT(limit > 0);
    b->limit = limit;
    atomic_init(&b->used, 0);
    atomic_init(&b->refused, 0);
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
