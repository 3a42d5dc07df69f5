/*
 * body.h - internal to src/http: the body side of one request, between the
 * headers and the handler.
 *
 * A request's body is held in memory whole (req->body), so it is read
 * against two caps: the request's own (the prepare hook's body_cap, or
 * less if the whole budget is less) and the server-wide budget of bytes
 * held at once (budget.h). The declared Content-Length is reserved before
 * a body byte is buffered; a chunked body reserves as it grows. A request
 * answered before its body (an early refusal, or a body refused while it
 * streams) has the rest of its body read and dropped, never stored.
 *
 * This file knows nothing of libmicrohttpd: server.c feeds it the bytes
 * MHD hands over and sends whatever answer it leaves in the response.
 *
 * Thread-safety: one request's body is used by one thread at a time (an
 * event loop, or the thread of its offloaded handler); the budget is
 * shared and lock-free.
 */
#ifndef BGR_HTTP_BODY_H
#define BGR_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/budget.h"
#include "http/http.h"

/* Per-request body state; lives beside the request it belongs to. */
struct bgr_http_body {
    struct bgr_http_budget *budget; /* the server's; not owned */
    size_t cap;       /* largest body accepted: body_cap, or less if the whole budget is less */
    size_t reserved;  /* bytes of *budget held; the body buffer's cap_limit while it grows */
    uint64_t owner;   /* the account the reservation is held for (req->budget_owner); 0 = none */
    size_t owner_cap; /* the most that account may hold at once (0 = no share limit) */
    size_t discarded; /* bytes dropped since the answer was decided */
    bool discard;     /* answered early: the remaining body is dropped */
    int64_t discard_since_ms; /* when dropping began (lingering is bounded in time) */
    int overflow_err;         /* 413 or 503 decided while the body streamed (0 = none) */
    char overflow_msg[160];   /* its message */
};

/* What to do after a piece of the body has been fed. */
enum bgr_http_body_step {
    BGR_HTTP_BODY_MORE,    /* read on */
    BGR_HTTP_BODY_REFUSED, /* refused just now: the answer is in resp, send it */
    BGR_HTTP_BODY_CLOSE,   /* the client sends too much after its answer: close */
};

/* Starts bd for a fresh request (bd zeroed by the caller): req's body
 * accepts only a little (ignored) until bgr_http_body_admit sets its cap. */
void bgr_http_body_init(struct bgr_http_body *bd, struct bgr_http_budget *budget,
                        struct bgr_http_req *req);
/* Headers are in, the route matched and the prepare hook let the request
 * through: sets the body's cap from req->body_cap and reserves a declared
 * Content-Length. Leaves resp->status set (413, or 503 with Retry-After)
 * when the body is refused from its headers alone. */
void bgr_http_body_admit(struct bgr_http_body *bd, struct bgr_http_req *req,
                         struct bgr_http_resp *resp);
/* The request is answered (resp->status set) before its body was read:
 * from now on the body is dropped. Returns true when the answer should
 * wait until the declared body has been drained. */
bool bgr_http_body_refuse_early(struct bgr_http_body *bd, struct bgr_http_req *req,
                                const struct bgr_http_resp *resp);
/* Takes the next n bytes of the body: buffers them, or drops them once
 * the answer is decided. On BGR_HTTP_BODY_REFUSED the body is freed and
 * resp holds the refusal. */
enum bgr_http_body_step bgr_http_body_feed(struct bgr_http_body *bd, struct bgr_http_req *req,
                                           struct bgr_http_resp *resp, const char *data, size_t n);
/* Writes the answer to a body refused while it streamed (bd->overflow_err
 * set) into resp, again if a first try at sending it consumed it. */
void bgr_http_body_reply_refusal(const struct bgr_http_body *bd, struct bgr_http_resp *resp);
/* Frees req's body and gives back its reservation: the one place either
 * happens, so whichever way a request ends (handled, refused while
 * streaming, client gone, timed out) its bytes are returned exactly once.
 * Safe to call again. */
void bgr_http_body_free(struct bgr_http_body *bd, struct bgr_http_req *req);

#endif
