/*
 * body.c - request bodies: read against the request's cap and the
 * server-wide budget (budget.h), grown in step with their reservation, and
 * drained unstored when the answer comes first. See body.h.
 *
 * Request bodies are held in memory whole, so their sum is capped too: a
 * request reserves its body's bytes before the first one is buffered, and
 * gives them back in bgr_http_body_free, the only place a body buffer is
 * freed, as soon as the handler no longer needs it.
 */
#include "http/body.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>

/* Bodies sent to routes that take none are read (up to this) and ignored. */
#define NO_BODY_SLACK (64u * 1024u)
/* Retry-After of a 503 for want of body budget: bodies are held through
 * their queue wait and inference, a second or two per image. */
#define BUDGET_RETRY_S 2
/* Lingering before an answer to a body that is too large (see
 * bgr_http_body_refuse_early): at most this many bytes past the request's
 * cap, and this long from the refusal. Dropped bytes cost no memory and no
 * budget; the bounds keep a refused upload from holding its connection
 * slot for longer than a slow accepted one would (nginx lingers 30 s). */
#define LINGER_EXTRA_BYTES (128u * 1024u * 1024u)
#define LINGER_MS 30000

static bool parse_content_length(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

void bgr_http_body_init(struct bgr_http_body *bd, struct bgr_http_budget *budget,
                        struct bgr_http_req *req)
{
    bd->budget = budget;
    bgr_buf_init(&req->body, NO_BODY_SLACK);
}

/* The limit to name in a 413: the plan's size when the prepare hook said
 * it, else the cap itself. */
static const char *limit_text(const struct bgr_http_body *bd, const struct bgr_http_req *req,
                              char out[32])
{
    uint64_t shown =
        req->body_limit_shown && req->body_limit_shown < bd->cap ? req->body_limit_shown : bd->cap;
    return bgr_size_text(shown, out);
}

/* The answer to a reservation refused by the budget (took says which
 * limit): 503 when the server is full, 429 when the account holds its
 * share already (only it has to wait). */
static void reply_no_budget(struct bgr_http_body *bd, enum bgr_http_budget_take_rc took,
                            struct bgr_http_resp *resp)
{
    bgr_http_budget_count_refusal(bd->budget);
    if (took == BGR_HTTP_BUDGET_OWNER_FULL) {
        char lim[32], msg[200];
        (void)snprintf(msg, sizeof msg,
                       "This account is already uploading %s at once, the most one account may; "
                       "retry when an upload finishes",
                       bgr_size_text(bd->owner_cap, lim));
        bgr_http_reply_error(resp, BGR_ERATE_LIMITED, msg);
    } else {
        bgr_http_reply_error(resp, BGR_ESERVICE_BUSY,
                             "The server is receiving too many uploads at once, retry later");
    }
    resp->retry_after_s = BUDGET_RETRY_S;
}

void bgr_http_body_admit(struct bgr_http_body *bd, struct bgr_http_req *req,
                         struct bgr_http_resp *resp)
{
    size_t cap = req->body_cap ? req->body_cap : NO_BODY_SLACK;
    /* A body larger than the whole budget could never be admitted: it is
     * too large (413), not a reason to retry later (503). */
    if (cap > bd->budget->limit)
        cap = bd->budget->limit;
    bd->cap = cap;
    bd->owner = req->budget_owner;
    /* An account may hold this many of its largest uploads at once: enough
     * for a client that overlaps a few uploads, never the whole budget
     * (one pro key declaring 10 x 25 MB made everyone else's 4.5 KB upload
     * wait; see docs/SECURITY.md). */
    bd->owner_cap = bd->owner ? (size_t)req->budget_owner_uploads * cap : 0;
    bgr_buf_init(&req->body, cap);
    uint64_t clen = 0;
    const char *cl = bgr_http_req_header(req, "Content-Length");
    if (!cl || !parse_content_length(cl, &clen) || clen == 0)
        return; /* nothing declared: a chunked body reserves as it streams */
    if (clen > cap) {
        /* Refused from the header alone: no byte of the body is stored. */
        char msg[160], got[32], lim[32];
        (void)snprintf(msg, sizeof msg, "The upload (%s) exceeds the maximum file size of %s",
                       bgr_size_text(clen, got), limit_text(bd, req, lim));
        bgr_http_reply_error(resp, BGR_EFILE_TOO_LARGE, msg);
        return;
    }
    enum bgr_http_budget_take_rc took =
        bgr_http_budget_take_owned(bd->budget, bd->owner, bd->owner_cap, (size_t)clen);
    if (took != BGR_HTTP_BUDGET_OK) {
        /* Decided before a body byte is buffered; the body is then drained
         * unstored like any early refusal (bgr_http_body_refuse_early). */
        reply_no_budget(bd, took, resp);
        return;
    }
    bd->reserved = (size_t)clen;
    req->body.cap_limit = bd->reserved;
}

/* Most HTTP clients send the whole body before they read the answer (Node's
 * fetch, Python's urllib and requests); an early answer followed by closing
 * the connection with their upload unread makes the kernel reset it, and the
 * client sees a broken pipe instead of the error. So a refusal of a request
 * with a declared body is sent once that body has been read and dropped
 * (never stored): any refusal of a body within the route's cap, and a 413
 * for a body up to LINGER_EXTRA_BYTES over it, read within LINGER_MS. A
 * client that asked "Expect: 100-continue" has sent nothing and waits for
 * this answer, so it gets it at once; so does an undeclared (chunked) body,
 * and one declared far over the cap, which no bounded wait could drain. */
bool bgr_http_body_refuse_early(struct bgr_http_body *bd, struct bgr_http_req *req,
                                const struct bgr_http_resp *resp)
{
    uint64_t clen = 0, most;
    bd->discard = true;
    bd->discard_since_ms = bgr_now_ms();
    const char *cl = bgr_http_req_header(req, "Content-Length");
    const char *expect = bgr_http_req_header(req, "Expect");
    if (!req->route || !cl || !parse_content_length(cl, &clen) || clen == 0 ||
        (expect && strcasecmp(expect, "100-continue") == 0))
        return false;
    most = resp->status == 413 ? (uint64_t)bd->cap + LINGER_EXTRA_BYTES : req->body_cap;
    if (!req->body_cap || clen > most)
        return false;
    req->body.cap_limit = (size_t)clen; /* bounds the discarding in bgr_http_body_feed */
    return true;
}

void bgr_http_body_free(struct bgr_http_body *bd, struct bgr_http_req *req)
{
    bgr_buf_release(&req->body);
    bgr_http_budget_give_owned(bd->budget, bd->owner, bd->reserved);
    bd->reserved = 0;
}

/* Makes room for n more body bytes within the request's reservation,
 * reserving more for a body of undeclared length (chunked). The buffer's
 * cap_limit follows the reservation and its storage is sized to it, so the
 * memory held is the reservation (plus a NUL byte). Returns 0,
 * BGR_EFILE_TOO_LARGE (past the request's cap), BGR_ESERVICE_BUSY (the
 * budget is spent) or BGR_ENOMEM. */
static int make_room(struct bgr_http_body *bd, struct bgr_buf *b, size_t n)
{
    if (n > bd->cap - b->len)
        return BGR_EFILE_TOO_LARGE;
    size_t need = b->len + n;
    if (need > bd->reserved) {
        /* Doubling bounds a long chunked body to a few reservations and
         * reallocations; if the double does not fit, the exact need may. */
        size_t want = bd->reserved > bd->cap / 2 ? bd->cap : 2 * bd->reserved;
        if (want < need)
            want = need;
        enum bgr_http_budget_take_rc took =
            bgr_http_budget_take_owned(bd->budget, bd->owner, bd->owner_cap, want - bd->reserved);
        if (took != BGR_HTTP_BUDGET_OK && want != need)
            took = bgr_http_budget_take_owned(bd->budget, bd->owner, bd->owner_cap,
                                              need - bd->reserved);
        else
            need = want;
        if (took != BGR_HTTP_BUDGET_OK) {
            bgr_http_budget_count_refusal(bd->budget);
            return took == BGR_HTTP_BUDGET_OWNER_FULL ? BGR_ERATE_LIMITED : BGR_ESERVICE_BUSY;
        }
        want = need;
        bd->reserved = want;
        b->cap_limit = want;
    }
    if (b->cap < bd->reserved + 1 && bgr_buf_reserve(b, bd->reserved - b->len, NULL) != 0)
        return BGR_ENOMEM;
    return 0;
}

enum bgr_http_body_step bgr_http_body_feed(struct bgr_http_body *bd, struct bgr_http_req *req,
                                           struct bgr_http_resp *resp, const char *data, size_t n)
{
    if (bd->discard) {
        /* Answered already; drop what the client still sends, but not
         * forever: past the declared length (or the cap) again, or after
         * lingering for LINGER_MS, we close the connection. */
        bd->discarded += n;
        return bd->discarded > req->body.cap_limit + NO_BODY_SLACK ||
                       bgr_now_ms() - bd->discard_since_ms > LINGER_MS
                   ? BGR_HTTP_BODY_CLOSE
                   : BGR_HTTP_BODY_MORE;
    }
    int rc = make_room(bd, &req->body, n);
    if (rc == 0)
        rc = bgr_buf_append(&req->body, data, n, NULL);
    if (rc == 0)
        return BGR_HTTP_BODY_MORE;
    if (rc == BGR_EFILE_TOO_LARGE) {
        char lim[32];
        bd->overflow_err = BGR_EFILE_TOO_LARGE;
        (void)snprintf(bd->overflow_msg, sizeof bd->overflow_msg,
                       "The upload exceeds the maximum file size of %s", limit_text(bd, req, lim));
    } else if (rc == BGR_ERATE_LIMITED) {
        char lim[32];
        bd->overflow_err = BGR_ERATE_LIMITED;
        (void)snprintf(bd->overflow_msg, sizeof bd->overflow_msg,
                       "This account is already uploading %s at once, the most one account may; "
                       "retry when an upload finishes",
                       bgr_size_text(bd->owner_cap, lim));
    } else {
        bd->overflow_err = BGR_ESERVICE_BUSY;
        (void)snprintf(bd->overflow_msg, sizeof bd->overflow_msg,
                       "The server is receiving too many uploads at once, retry later");
    }
    bgr_http_body_free(bd, req);
    req->body.cap_limit = bd->cap; /* bounds the discarding above */
    bgr_http_body_reply_refusal(bd, resp);
    bd->discard = true;
    bd->discard_since_ms = bgr_now_ms();
    return BGR_HTTP_BODY_REFUSED;
}

void bgr_http_body_reply_refusal(const struct bgr_http_body *bd, struct bgr_http_resp *resp)
{
    BGR_ASSERT(bd->overflow_err != 0);
    bgr_http_reply_error(resp, bd->overflow_err, bd->overflow_msg);
    if (bd->overflow_err == BGR_ESERVICE_BUSY || bd->overflow_err == BGR_ERATE_LIMITED)
        resp->retry_after_s = BUDGET_RETRY_S;
}
