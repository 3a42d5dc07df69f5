/*
 * server.c - the libmicrohttpd daemon: a pool of epoll event-loop threads
 * (one per core, at least EVENT_THREADS_MIN), the request lifecycle of
 * http.h (route, prepare, capped body, handler, reply), X-Request-ID,
 * Retry-After, metrics and the access log.
 *
 * Why a pool and not a thread per connection: 64 keep-alive clients meant 64
 * threads on 2 cores, and the context switches between them cost more than
 * the requests. A handler that may block (BGR_ROUTE_BLOCKING: inference,
 * URL fetches) must not hold an event-loop thread, so its connection is
 * suspended, the handler runs on a detached thread of its own, and the
 * connection is resumed to send the answer (the finish hook then runs on the
 * event loop, as for every other request).
 *
 * Request bodies are held in memory whole, so their sum is capped too (see
 * budget.h): a request reserves its body's bytes before the first one is
 * buffered, and gives them back in bgr_http_body_free, the only place a
 * body buffer is freed, as soon as the handler no longer needs it. body.c
 * reads them; this file hands it the bytes and sends what it decides.
 *
 * This file is the one wrapper around libmicrohttpd: nothing else in
 * bgremover includes microhttpd.h (but deadline.c, its helper against slow
 * clients).
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "http/body.h"
#include "http/budget.h"
#include "http/deadline.h"

/* Request-scoped allocations (parsed fields, names) are bounded too. */
#define REQ_ARENA_LIMIT (8u * 1024u * 1024u)
/* Event-loop threads: one per core, but a few even on small machines, so a
 * hook waiting briefly on the store (a group commit, the CLI's write lock)
 * leaves others to serve, and several requests share one commit. */
#define EVENT_THREADS_MIN 4
#define EVENT_THREADS_MAX 16

struct bgr_http_server {
    struct MHD_Daemon *daemon;
    struct bgr_http_deadline *deadline; /* header deadline (slowloris, idle keep-alive) */
    struct bgr_http_budget budget;      /* bytes of request bodies held at once */
    struct bgr_http_config cfg;
    uint16_t port;
    char hsts[48];      /* Strict-Transport-Security value when serving TLS, else "" */
    pthread_mutex_t mu; /* guards offloaded */
    pthread_cond_t idle_cv;
    unsigned offloaded; /* handlers running on threads of their own */
    bool stopping;      /* no more offloading: the daemon is about to stop */
    bool inplace_ok;    /* this MHD parses headers as framing.c's in-place check models */
};

/* Per-request state hung on MHD's *con_cls. */
struct req_state {
    struct bgr_http_req req;
    struct bgr_http_resp resp;
    struct bgr_http_body body; /* req.body's cap, reservation and refusal */
    bool queued;               /* a response has been handed to MHD */
    bool finished;             /* the finish hook has run */
    bool handled;              /* an offloaded handler has finished (set before resume) */
    bool answering;            /* the body is in (the deadline module knows) */
    struct bgr_http_server *srv;
    struct MHD_Connection *conn;
    char path_buf[512]; /* sanitised path for the log */
};

/* ---- request accessors -------------------------------------------------- */

const char *bgr_http_req_header(const struct bgr_http_req *r, const char *name)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)r->conn_, MHD_HEADER_KIND, name);
}

const char *bgr_http_req_query(const struct bgr_http_req *r, const char *name)
{
    const char *v =
        MHD_lookup_connection_value((struct MHD_Connection *)r->conn_, MHD_GET_ARGUMENT_KIND, name);
    if (v)
        return v;
    /* An argument without '=' has a NULL value in MHD; report it as "". */
    if (MHD_lookup_connection_value_n((struct MHD_Connection *)r->conn_, MHD_GET_ARGUMENT_KIND,
                                      name, strlen(name), NULL, NULL) == MHD_YES)
        return "";
    return NULL;
}

struct query_each_ctx {
    int (*fn)(void *ctx, const char *name, const char *value);
    void *ctx;
    int rc;
};

static enum MHD_Result query_each_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct query_each_ctx *q = cls;
    (void)kind;
    q->rc = q->fn(q->ctx, key, value ? value : "");
    return q->rc ? MHD_NO : MHD_YES;
}

int bgr_http_req_query_each(const struct bgr_http_req *r,
                            int (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    struct query_each_ctx q = {fn, ctx, 0};
    MHD_get_connection_values((struct MHD_Connection *)r->conn_, MHD_GET_ARGUMENT_KIND,
                              query_each_cb, &q);
    return q.rc;
}

bool bgr_http_req_from_loopback(const struct bgr_http_req *r)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
        (struct MHD_Connection *)r->conn_, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

const char *bgr_http_req_mime(struct bgr_http_req *r)
{
    const char *ct = bgr_http_req_header(r, "Content-Type");
    if (!ct)
        return "";
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    while (n > 0 && (*ct == ' ' || *ct == '\t')) {
        ct++;
        n--;
    }
    char *m = bgr_arena_strndup(&r->arena, ct, n);
    if (!m)
        return "";
    for (char *p = m; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return m;
}

/* ---- listen address ------------------------------------------------------- */

int bgr_http_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *sslen,
                          struct bgr_error *err)
{
    char host[256];
    const char *port;
    if (!s || !*s)
        return bgr_error_set(err, BGR_EUSAGE, "empty listen address");
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof host)
            return bgr_error_set(err, BGR_EUSAGE, "bad listen address '%s' (want [ADDR]:PORT)", s);
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host)
            return bgr_error_set(err, BGR_EUSAGE, "bad listen address '%s' (want ADDR:PORT)", s);
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (!*port || *end || errno || p < 0 || p > 65535)
        return bgr_error_set(err, BGR_EUSAGE, "bad port in listen address '%s'", s);

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
    if (rc != 0 || !res)
        return bgr_error_set(err, BGR_EUSAGE, "cannot resolve listen address '%s': %s", s,
                             gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = (unsigned)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* ---- sending ---------------------------------------------------------------- */

/* Runs of this many letters and digits or more are replaced in the log: an
 * API key's secret part (43 base62 characters) is one, and clients do put
 * keys in paths and request ids; our own ids (img_ + 22) are shorter. */
#define LOG_TOKEN_MAX 31

/* Replaces every over-long alphanumeric run of s (in place) by "[redacted]". */
static void redact_tokens(char *s)
{
    static const char mark[] = "[redacted]";
    size_t r = 0, w = 0;
    while (s[r]) {
        size_t n = 0;
        while (isalnum((unsigned char)s[r + n]))
            n++;
        if (n > LOG_TOKEN_MAX) {
            /* n > sizeof mark: the text only shrinks, w stays behind r. */
            memcpy(s + w, mark, sizeof mark - 1);
            w += sizeof mark - 1;
            r += n;
        } else if (n > 0) {
            memmove(s + w, s + r, n);
            w += n;
            r += n;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
}

static void sanitize_for_log(const char *in, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; in && in[i] && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        out[j++] = (c >= 0x21 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    out[j] = '\0';
    redact_tokens(out);
}

static enum MHD_Result send_response(struct bgr_http_server *srv, struct req_state *st,
                                     struct MHD_Connection *c)
{
    struct bgr_http_resp *resp = &st->resp;
    struct MHD_Response *r = NULL;
    if (resp->status == 0)
        bgr_http_reply_error(resp, BGR_EINTERNAL, "the handler gave no response");
    if (srv->cfg.finish && !st->finished) {
        st->finished = true;
        srv->cfg.finish(srv->cfg.app, &st->req, resp);
    }

    if (resp->fd >= 0) {
        r = MHD_create_response_from_fd64(resp->fd_size, resp->fd);
        if (r)
            resp->fd = -1; /* MHD closes it now */
    } else if (resp->body && resp->len) {
        r = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (r)
            resp->body = NULL; /* MHD frees it now */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return MHD_NO;
    if (resp->content_type[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    MHD_add_response_header(r, "X-Request-ID", st->req.request_id);
    for (int i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value);
    if (resp->status == 429 || resp->status == 503) {
        char ra[16];
        (void)snprintf(ra, sizeof ra, "%d", resp->retry_after_s > 0 ? resp->retry_after_s : 1);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (st->body.discard)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    if (srv->hsts[0])
        MHD_add_response_header(r, "Strict-Transport-Security", srv->hsts);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    if (ok == MHD_YES)
        st->queued = true;
    return ok;
}

/* ---- the access handler ------------------------------------------------------ */

/* ---- framing ------------------------------------------------------------------ */

#define FRAMING_MAX_FIELDS 128

struct fields_ctx {
    struct bgr_http_hfield f[FRAMING_MAX_FIELDS];
    size_t n;
    bool overflow;
};

static enum MHD_Result collect_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    struct fields_ctx *fc = cls;
    (void)kind;
    if (fc->n == FRAMING_MAX_FIELDS) {
        fc->overflow = true;
        return MHD_NO;
    }
    fc->f[fc->n++] = (struct bgr_http_hfield){key, key_size, value ? value : "", value_size};
    return MHD_YES;
}

/* NULL when c's request is framed as RFC 9112 wants, else why not (see
 * framing.c). MHD gives each field with its length as received; the
 * in-place check runs only on the MHD whose parser it models (inplace_ok,
 * decided at start). */
static const char *framing_problem(struct bgr_http_server *srv, struct MHD_Connection *c,
                                   const char *method, const char *version)
{
    struct fields_ctx *fc = malloc(sizeof *fc);
    const char *why;
    if (!fc)
        return "out of memory";
    fc->n = 0;
    fc->overflow = false;
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, collect_field, fc);
    why = fc->overflow
              ? "too many header fields"
              : bgr_http_framing_check(fc->f, fc->n, version && strcmp(version, "HTTP/1.0") != 0);
    if (!why && srv->inplace_ok) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        why = ci ? bgr_http_framing_inplace_check(method, ci->header_size, version, fc->f, fc->n)
                 : "the header block is malformed";
    }
    free(fc);
    return why;
}

/* The declared body length of c's request: Content-Length, or for a
 * chunked body the request's cap; 0 = none. */
static uint64_t declared_body(const struct bgr_http_req *req)
{
    const char *cl = bgr_http_req_header(req, "Content-Length");
    if (cl) {
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);
        return end && !*end ? (uint64_t)v : 0;
    }
    return bgr_http_req_header(req, "Transfer-Encoding") ? req->body_cap : 0;
}

/* Headers are in: choose the request id, route, run prepare, admit the
 * declared length. Leaves st->resp.status set when answering at once. */
static void begin_request(struct bgr_http_server *srv, struct req_state *st,
                          struct MHD_Connection *c, const char *url, const char *method)
{
    struct bgr_http_req *req = &st->req;
    req->conn_ = c;
    req->start_ms = bgr_now_ms();
    req->method = bgr_http_method_parse(method);
    req->method_str = bgr_arena_strdup(&req->arena, method);
    req->path = bgr_arena_strdup(&req->arena, url);
    sanitize_for_log(url, st->path_buf, sizeof st->path_buf);
    if (!req->method_str || !req->path) {
        bgr_http_reply_error(&st->resp, BGR_ENOMEM, NULL);
        return;
    }

    const char *rid = bgr_http_req_header(req, "X-Request-ID");
    if (rid && bgr_http_request_id_sane(rid))
        (void)snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    else
        bgr_http_request_id_new(req->request_id);

    int status = 0;
    unsigned allowed = 0;
    enum bgr_http_method m = req->method == BGR_HTTP_HEAD ? BGR_HTTP_GET : req->method;
    req->route = bgr_http_route_match(srv->cfg.routes, srv->cfg.nroutes, m, req->path, &req->arena,
                                      req->params, &req->nparams, &status, &allowed);
    if (!req->route) {
        if (status == 405) {
            char allow[64] = "";
            static const struct {
                unsigned bit;
                const char *name;
            } names[] = {{BGR_HTTP_GET, "GET"},
                         {BGR_HTTP_POST, "POST"},
                         {BGR_HTTP_DELETE, "DELETE"},
                         {BGR_HTTP_PUT, "PUT"},
                         {BGR_HTTP_PATCH, "PATCH"}};
            for (size_t i = 0; i < BGR_ARRAY_LEN(names); i++)
                if (allowed & names[i].bit) {
                    if (allow[0])
                        strncat(allow, ", ", sizeof allow - strlen(allow) - 1);
                    strncat(allow, names[i].name, sizeof allow - strlen(allow) - 1);
                }
            bgr_http_reply_error(&st->resp, BGR_EMETHOD_NOT_ALLOWED, NULL);
            bgr_http_resp_header(&st->resp, "Allow", allow);
        } else {
            bgr_http_reply_error(&st->resp, BGR_ENOT_FOUND, "No such endpoint");
        }
        return;
    }

    req->body_cap = req->route->max_body;
    if (srv->cfg.prepare)
        srv->cfg.prepare(srv->cfg.app, req, &st->resp);
    if (st->resp.status)
        return;

    bgr_http_body_admit(&st->body, req, &st->resp);
}

/* The thread of one offloaded handler: runs it, then resumes the suspended
 * connection, whose next access-handler call sends the response. */
static void *offload_main(void *arg)
{
    struct req_state *st = arg;
    struct bgr_http_server *srv = st->srv;
    st->req.route->handler(srv->cfg.app, &st->req, &st->resp);
    bgr_http_body_free(&st->body, &st->req); /* the response never points into the body */
    st->handled = true;
    pthread_mutex_lock(&srv->mu);
    MHD_resume_connection(st->conn); /* st may be freed by MHD from here on */
    if (--srv->offloaded == 0)
        pthread_cond_broadcast(&srv->idle_cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

/* Suspends c and starts st's handler on a detached thread. 0 on success;
 * otherwise the connection is not suspended and the caller runs it inline. */
static int offload(struct bgr_http_server *srv, struct req_state *st, struct MHD_Connection *c)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;
    st->srv = srv;
    st->conn = c;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&srv->mu);
    rc = -1;
    if (!srv->stopping) {
        MHD_suspend_connection(c);
        rc = pthread_create(&t, &attr, offload_main, st);
        if (rc == 0)
            srv->offloaded++;
        else
            MHD_resume_connection(c);
    }
    pthread_mutex_unlock(&srv->mu);
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct bgr_http_server *srv = cls;
    struct req_state *st = *con_cls;

    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        bgr_arena_init(&st->req.arena, REQ_ARENA_LIMIT);
        bgr_http_body_init(&st->body, &srv->budget, &st->req);
        st->resp.fd = -1;
        *con_cls = st;
        const char *bad = framing_problem(srv, c, method, version);
        if (bad) {
            char msg[160];
            st->req.start_ms = bgr_now_ms();
            st->req.method_str = bgr_arena_strdup(&st->req.arena, method);
            sanitize_for_log(url, st->path_buf, sizeof st->path_buf);
            bgr_http_request_id_new(st->req.request_id);
            (void)snprintf(msg, sizeof msg, "Malformed HTTP request: %s", bad);
            bgr_http_reply_error(&st->resp, BGR_EINVALID_PARAMETER, msg);
            st->body.discard = true; /* Connection: close: the framing cannot be trusted */
            bgr_http_deadline_answering(c);
            st->answering = true;
            return send_response(srv, st, c);
        }
        st->req.budget_owner_uploads = srv->cfg.uploads_per_owner ? srv->cfg.uploads_per_owner : 2;
        begin_request(srv, st, c, url, method);
        bool linger = st->resp.status && bgr_http_body_refuse_early(&st->body, &st->req, &st->resp);
        if (st->resp.status && !linger) {
            bgr_http_deadline_answering(c);
            st->answering = true;
            return send_response(srv, st, c);
        }
        /* headers are complete: the body is due within its time */
        bgr_http_deadline_body(c, declared_body(&st->req), st->req.authed);
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        switch (bgr_http_body_feed(&st->body, &st->req, &st->resp, upload_data, n)) {
        case BGR_HTTP_BODY_CLOSE:
            return MHD_NO;
        case BGR_HTTP_BODY_REFUSED:
            /* Some MHD versions accept a response only once the body is
             * complete; try now, else it goes out after the discarded rest
             * (rebuilt: a failed queue has consumed the body). */
            (void)send_response(srv, st, c);
            break;
        case BGR_HTTP_BODY_MORE:
            break;
        }
        return MHD_YES;
    }

    if (!st->answering) { /* the body is in */
        bgr_http_deadline_answering(c);
        st->answering = true;
    }
    if (st->queued)
        return MHD_YES;
    if (st->handled) /* resumed after an offloaded handler */
        return send_response(srv, st, c);
    if (st->body.overflow_err)
        bgr_http_body_reply_refusal(&st->body, &st->resp);
    if (!st->resp.status) {
        if (!st->req.route->max_body)
            bgr_http_body_free(&st->body, &st->req); /* ignored */
        if ((st->req.route->flags & BGR_ROUTE_BLOCKING) && offload(srv, st, c) == 0)
            return MHD_YES;
        st->req.route->handler(srv->cfg.app, &st->req, &st->resp);
        bgr_http_body_free(&st->body, &st->req); /* the response never points into the body */
    }
    return send_response(srv, st, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct bgr_http_server *srv = cls;
    struct req_state *st = *con_cls;
    bgr_http_deadline_idle(c); /* the next request's headers are due in time */
    if (!st)
        return;
    *con_cls = NULL;
    const char *route = st->req.route ? st->req.route->name : "unmatched";
    int status = st->queued ? st->resp.status : 0;
    if (srv->cfg.metrics)
        bgr_http_metrics_request(srv->cfg.metrics, route, status);
    if (srv->cfg.access_log) {
        double ms = (double)(bgr_now_ms() - st->req.start_ms);
        /* Never the query string or headers: they may carry secrets. The
         * path and a client-chosen request id may too: long tokens in them
         * are redacted. */
        char rid[BGR_HTTP_REQUEST_ID_MAX + 1];
        (void)snprintf(rid, sizeof rid, "%s", st->req.request_id);
        redact_tokens(rid);
        bgr_log(BGR_LOG_INFO, "http %s %s %d %.0fms rid=%s%s",
                st->req.method_str ? st->req.method_str : "-", st->path_buf, status, ms, rid,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    }
    bgr_http_resp_release(&st->resp);
    bgr_http_body_free(&st->body, &st->req);
    bgr_arena_release(&st->req.arena);
    free(st);
}

/* libmicrohttpd's own messages (bad requests, TLS handshakes) at debug level. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    (void)vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    bgr_log(BGR_LOG_DEBUG, "mhd: %s", line);
}

/* Percent-decodes the request path and query arguments in place, as MHD's
 * default does, except that "%00" is left as it is: MHD hands us C strings,
 * so a decoded NUL would silently cut "/v1/results/ID.png%00.x" down to a
 * valid-looking path (an alias of a result, and the classic truncation
 * trick). Left encoded, such a path matches no id and is 404. */
static size_t unescape_no_nul(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    size_t r = 0, w = 0;
    while (s[r]) {
        int hi, lo;
        if (s[r] == '%' && (hi = bgr_hex_digit(s[r + 1])) >= 0 &&
            (lo = bgr_hex_digit(s[r + 2])) >= 0 && (hi | lo) != 0) {
            s[w++] = (char)(hi * 16 + lo);
            r += 3;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    return w;
}

/* Why MHD could not start on ss: it only says that it failed, so bind a
 * socket the way it does (SO_REUSEADDR, IPv6 only) and report errno, with
 * what usually causes it. Returns false if this bind works (then the cause
 * was elsewhere: TLS, threads). */
static bool bind_failure(const struct sockaddr_storage *ss, unsigned sslen, char *why, size_t n)
{
    int one = 1, e = 0, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        e = errno;
    } else {
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ss->ss_family == AF_INET6)
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)ss, sslen) != 0 || listen(fd, 1) != 0)
            e = errno;
        close(fd);
    }
    if (!e)
        return false;
    (void)snprintf(why, n, "%s%s", strerror(e),
                   e == EADDRINUSE      ? " (another process listens there)"
                   : e == EACCES        ? " (ports below 1024 need privileges)"
                   : e == EADDRNOTAVAIL ? " (not an address of this machine)"
                                        : "");
    return true;
}

int bgr_http_server_start(const struct bgr_http_config *cfg, struct bgr_http_server **out,
                          struct bgr_error *err)
{
    struct sockaddr_storage ss;
    unsigned sslen = 0;
    int rc = bgr_http_parse_listen(cfg->listen, &ss, &sslen, err);
    if (rc)
        return rc;
    bool tls = cfg->tls_cert_pem && cfg->tls_key_pem;
    if ((cfg->tls_cert_pem != NULL) != (cfg->tls_key_pem != NULL))
        return bgr_error_set(err, BGR_EUSAGE, "TLS needs both a certificate and a key");

    if (tls) {
        /* Checked here for a clear message: MHD only says it cannot start. */
        gnutls_priority_t prio;
        const char *errpos = NULL;
        const char *ps = cfg->tls_priorities && cfg->tls_priorities[0] ? cfg->tls_priorities
                                                                       : BGR_HTTP_TLS_PRIORITIES;
        if (gnutls_priority_init(&prio, ps, &errpos) != GNUTLS_E_SUCCESS)
            return bgr_error_set(err, BGR_EUSAGE, "bad tls_priorities '%s' near '%.20s'", ps,
                                 errpos ? errpos : "");
        gnutls_priority_deinit(prio);
    }

    struct bgr_http_server *srv = bgr_xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    /* framing.c's in-place check models 0.9.75's header parser (Debian 12);
     * on another MHD it would refuse good requests, so it is off there and
     * only the field check runs (later MHDs refuse obs-fold and NUL
     * themselves) */
    srv->inplace_ok = strcmp(MHD_get_version(), "0.9.75") == 0;
    if (!srv->inplace_ok)
        bgr_log(BGR_LOG_WARN,
                "http: libmicrohttpd %s, not 0.9.75: obs-fold, NUL bytes in header values and "
                "bare LF line ends are left to it",
                MHD_get_version());
    bgr_http_budget_init(&srv->budget, cfg->max_inflight_body_bytes
                                           ? cfg->max_inflight_body_bytes
                                           : BGR_HTTP_INFLIGHT_BODY_DEFAULT);
    struct bgr_http_deadline_cfg dc = {
        .header_timeout_s = cfg->header_timeout_s,
        .max_connections = cfg->max_connections ? cfg->max_connections : 256,
        .body_min_rate = cfg->body_min_rate,
        .body_grace_s = cfg->body_grace_s,
        .unauth_pct = cfg->unauth_conn_pct,
    };
    if (tls && cfg->hsts_max_age_s)
        (void)snprintf(srv->hsts, sizeof srv->hsts, "max-age=%u", cfg->hsts_max_age_s);
    if ((rc = bgr_http_deadline_start(&dc, &srv->deadline, err)) != 0) {
        free(srv);
        return rc;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned nthreads = ncpu > EVENT_THREADS_MIN ? (unsigned)ncpu : EVENT_THREADS_MIN;
    if (nthreads > EVENT_THREADS_MAX)
        nthreads = EVENT_THREADS_MAX;
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->idle_cv, NULL);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    /* No MHD_OPTION_LISTENING_ADDRESS_REUSE: it sets SO_REUSEPORT, which would
     * let a second server bind the same port and silently share its clients.
     * MHD's default SO_REUSEADDR is enough for quick restarts. */
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections ? cfg->max_connections : 256, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, nthreads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s ? cfg->timeout_s : 60, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)bgr_http_deadline_notify, srv->deadline},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape_no_nul, NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, (void *)cfg->tls_key_pem},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert_pem},
        {MHD_OPTION_HTTPS_PRIORITIES, 0,
         (void *)(cfg->tls_priorities && cfg->tls_priorities[0] ? cfg->tls_priorities
                                                                : BGR_HTTP_TLS_PRIORITIES)},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
                                   MHD_OPTION_END);
    if (!srv->daemon) {
        bgr_http_deadline_stop(srv->deadline);
        pthread_mutex_destroy(&srv->mu);
        pthread_cond_destroy(&srv->idle_cv);
        free(srv);
        char why[160];
        if (bind_failure(&ss, sslen, why, sizeof why))
            return bgr_error_set(err, BGR_EIO, "cannot serve on %s: %s", cfg->listen, why);
        return bgr_error_set(err, BGR_EIO, "cannot serve on %s: %s", cfg->listen,
                             tls ? "the TLS certificate or key was refused (run with"
                                   " log_level=debug for the library's reason)"
                                 : "the HTTP library failed to start (run with log_level=debug"
                                   " for its reason)");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    if (cfg->metrics)
        bgr_http_metrics_set_budget(cfg->metrics, &srv->budget);
    *out = srv;
    return 0;
}

uint16_t bgr_http_server_port(const struct bgr_http_server *s)
{
    return s->port;
}

void bgr_http_server_stop(struct bgr_http_server *s)
{
    if (!s)
        return;
    /* Let offloaded handlers finish and resume their connections (MHD must
     * not stop with suspended ones); from now on handlers run inline. */
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    while (s->offloaded)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    MHD_stop_daemon(s->daemon);
    if (s->cfg.metrics)
        bgr_http_metrics_set_budget(s->cfg.metrics, NULL);
    /* Every request has completed and freed its body by now. */
    BGR_ASSERT(bgr_http_budget_used(&s->budget) == 0);
    bgr_http_deadline_stop(s->deadline);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle_cv);
    free(s);
}
