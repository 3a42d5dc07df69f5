/*
 * http.h - the public header of src/http: an HTTP/1.1 server on
 * libmicrohttpd (optionally TLS through GnuTLS), a routing table that is
 * plain data, request bodies read against a cap, parsers for the body
 * syntaxes clients send (multipart/form-data, urlencoded, JSON), the JSON
 * response envelope, request ids, the access log and Prometheus metrics.
 *
 * It knows nothing of accounts, images or jobs: src/api supplies the routes,
 * a "prepare" hook (authentication, rate limits, the per-request body cap)
 * and the handlers.
 *
 * Threading model: a small pool of event-loop threads (epoll) serves all
 * connections, with a bounded number of connections. Hooks and handlers run
 * on those threads and must not block for long, except the handlers of
 * routes flagged BGR_ROUTE_BLOCKING (waiting for an inference job, fetching
 * a URL): their connection is suspended and the handler runs on a thread of
 * its own, so requests that need no model never wait behind inference. The
 * bound on inference work lives in the job queue, which answers
 * BGR_ESERVICE_BUSY (503) when full.
 *
 * Request lifecycle, per request:
 *   1. headers arrive: a request id is chosen, the route is looked up
 *      (404/405 otherwise), the prepare hook runs (it may answer at once, e.g.
 *      401 or 429) and returns the body cap;
 *   2. a Content-Length over the cap is answered 413 before any body byte is
 *      read; bytes are counted as they stream (chunked bodies too); the
 *      body's bytes are reserved from a server-wide budget
 *      (max_inflight_body_bytes) before they are buffered, and a body that
 *      does not fit what is left is answered 503 SERVICE_BUSY;
 *   3. the handler runs with the whole body in req->body, which is freed
 *      (and its reservation given back) as soon as the handler returns;
 *   4. the response gets X-Request-ID (and Retry-After on 429/503), is
 *      sent, counted in the metrics and written to the access log.
 */
#ifndef BGR_HTTP_HTTP_H
#define BGR_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

/* ---- requests ------------------------------------------------------------ */

enum bgr_http_method {
    BGR_HTTP_GET = 1u << 0,
    BGR_HTTP_HEAD = 1u << 1,
    BGR_HTTP_POST = 1u << 2,
    BGR_HTTP_PUT = 1u << 3,
    BGR_HTTP_DELETE = 1u << 4,
    BGR_HTTP_PATCH = 1u << 5,
    BGR_HTTP_OPTIONS = 1u << 6,
    BGR_HTTP_OTHER = 1u << 7,
};

#define BGR_HTTP_MAX_PARAMS 4
#define BGR_HTTP_REQUEST_ID_MAX 64

struct bgr_http_route;

/* One request. Owned by the server; handlers read it and may allocate from
 * its arena (freed when the response has been sent). Strings are
 * NUL-terminated and live as long as the request. */
struct bgr_http_req {
    struct bgr_arena arena;
    enum bgr_http_method method;
    const char *method_str;
    const char *path; /* without the query string, as received */
    const struct bgr_http_route *route;
    const char *params[BGR_HTTP_MAX_PARAMS]; /* captured ":name" segments, in order */
    int nparams;
    char request_id[BGR_HTTP_REQUEST_ID_MAX + 1];
    struct bgr_buf body; /* the whole body once the handler runs (capped) */
    size_t body_cap;     /* set by the prepare hook; 0 = no body accepted */
    /* set by the prepare hook with body_cap: the limit as the client's plan
     * states it (body_cap less the encoding's slack), for the 413's message;
     * 0 = say body_cap */
    uint64_t body_limit_shown;
    int64_t start_ms; /* monotonic, when the headers arrived */
    /* set by the prepare hook: the request carried a valid API key (its
     * connection is then no longer counted as unauthenticated), and the
     * account its body's bytes are reserved for (0 = none), which may hold
     * budget_owner_uploads (the server sets it from its config) times
     * body_cap of the body budget at once */
    bool authed;
    uint64_t budget_owner;
    unsigned budget_owner_uploads;
    void *user;  /* per-request state of the application (prepare hook) */
    void *conn_; /* internal: the MHD connection */
};

/* Value of a request header (case-insensitive name) or NULL. */
const char *bgr_http_req_header(const struct bgr_http_req *r, const char *name);
/* Value of a query-string argument (decoded) or NULL. An argument given
 * without '=' yields "". */
const char *bgr_http_req_query(const struct bgr_http_req *r, const char *name);
/* Calls fn for every query argument; stops when fn returns non-zero. */
int bgr_http_req_query_each(const struct bgr_http_req *r,
                            int (*fn)(void *ctx, const char *name, const char *value), void *ctx);
/* True when the client connected from a loopback address (127.0.0.0/8,
 * ::1, or ::ffff:127.0.0.0/104). */
bool bgr_http_req_from_loopback(const struct bgr_http_req *r);
/* The "type/subtype" part of Content-Type, lower-cased, in the arena ("" if
 * absent). */
const char *bgr_http_req_mime(struct bgr_http_req *r);

/* ---- responses ----------------------------------------------------------- */

#define BGR_HTTP_MAX_HEADERS 12

struct bgr_http_header {
    char name[40];
    char value[200];
};

/* A response under construction. The body is either bytes (owned, malloc'd,
 * freed by the server) or an open file descriptor (owned, closed by the
 * server) sent with sendfile. */
struct bgr_http_resp {
    int status; /* 0 = not answered yet */
    char content_type[80];
    uint8_t *body;
    size_t len;
    int fd; /* -1 = none */
    uint64_t fd_size;
    int retry_after_s; /* > 0: Retry-After value on 429/503 (default 1 there) */
    struct bgr_http_header headers[BGR_HTTP_MAX_HEADERS];
    int nheaders;
    int err; /* the bgr_err of an error reply, 0 otherwise (for logs/metrics) */
};

/* Adds (or replaces) a header. Values longer than the slot are truncated;
 * returns BGR_EINTERNAL if all slots are used. */
int bgr_http_resp_header(struct bgr_http_resp *resp, const char *name, const char *value);
/* {"success":true,"data":DATA}. Steals the reference to data. */
void bgr_http_reply_data(struct bgr_http_resp *resp, int status, json_t *data);
/* {"success":false,"error":{"code","message"}}; the status and code come
 * from the error table of core/err.h; msg NULL uses the default message. */
void bgr_http_reply_error(struct bgr_http_resp *resp, int err, const char *msg);
/* Raw bytes, copied. */
void bgr_http_reply_bytes(struct bgr_http_resp *resp, int status, const char *content_type,
                          const void *data, size_t len);
/* Takes ownership of buf->data (buf is left empty). */
void bgr_http_reply_buf(struct bgr_http_resp *resp, int status, const char *content_type,
                        struct bgr_buf *buf);
/* Serves an open file (fd is owned by resp from here on). */
void bgr_http_reply_fd(struct bgr_http_resp *resp, int status, const char *content_type, int fd,
                       uint64_t size);
/* Releases what a response owns (the server does it after sending). */
void bgr_http_resp_release(struct bgr_http_resp *resp);

/* ---- routes -------------------------------------------------------------- */

/* Handlers fill resp (they must answer). app is bgr_http_config.app. */
typedef void (*bgr_http_handler_fn)(void *app, struct bgr_http_req *req,
                                    struct bgr_http_resp *resp);
/* Runs once the route is known and before the body is read: may answer at
 * once (set resp->status, e.g. 401), and sets req->body_cap (bytes accepted;
 * it starts at the route's max_body). */
typedef void (*bgr_http_prepare_fn)(void *app, struct bgr_http_req *req,
                                    struct bgr_http_resp *resp);
/* Runs for every answered request just before its response is sent (also
 * early answers and unmatched routes: req->route may be NULL): a place to
 * add headers and to commit per-request records before the client sees the
 * response. */
typedef void (*bgr_http_finish_fn)(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);

/* Route flags, for the prepare hook. */
#define BGR_ROUTE_AUTH 1u     /* needs an API key */
#define BGR_ROUTE_BLOCKING 2u /* the handler may wait long: run off the event loop */

/* One line of the routing table. A pattern is a path whose segments are
 * literals or ":name" (captures one whole non-empty segment). */
struct bgr_http_route {
    unsigned methods; /* bitmask of enum bgr_http_method */
    const char *pattern;
    const char *name; /* stable label for metrics and logs */
    unsigned flags;
    size_t max_body; /* upper bound of the body in bytes; 0 = none accepted */
    bgr_http_handler_fn handler;
};

/* Finds the route for method+path. Returns the route and fills params, or
 * NULL with *status 404 (no pattern matches) or 405 (pattern matches, method
 * does not; *allowed then holds the allowed methods). */
const struct bgr_http_route *bgr_http_route_match(const struct bgr_http_route *routes,
                                                  size_t nroutes, enum bgr_http_method method,
                                                  const char *path, struct bgr_arena *arena,
                                                  const char **params, int *nparams, int *status,
                                                  unsigned *allowed);
enum bgr_http_method bgr_http_method_parse(const char *s);

/* ---- server -------------------------------------------------------------- */

struct bgr_http_metrics;

struct bgr_http_config {
    const char *listen;       /* "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT"; port 0 = any free */
    const char *tls_cert_pem; /* PEM text (not a path); both set = TLS */
    const char *tls_key_pem;
    unsigned max_connections;  /* 0 = 256 */
    unsigned timeout_s;        /* idle connection timeout; 0 = 60 */
    unsigned header_timeout_s; /* headers due within this of connect or the last request; 0 = 20 */
    /* Sum of the request bodies held in memory at once (being received or
     * in use by a handler); 0 = BGR_HTTP_INFLIGHT_BODY_DEFAULT. A body that
     * does not fit what is left is refused with 503 SERVICE_BUSY and
     * Retry-After; one larger than the whole of it with 413. */
    size_t max_inflight_body_bytes;
    const struct bgr_http_route *routes;
    size_t nroutes;
    bgr_http_prepare_fn prepare; /* may be NULL */
    bgr_http_finish_fn finish;   /* may be NULL */
    void *app;
    struct bgr_http_metrics *metrics; /* may be NULL; not owned */
    bool access_log;                  /* one INFO line per request */
    /* Hostile clients (docs/SECURITY.md); 0 = the default in brackets. */
    unsigned max_connections_per_ip; /* connections from one address [0 = no cap] */
    unsigned body_min_rate;          /* bytes/s a body must average [32768] */
    unsigned body_grace_s;           /* added to each body's time [10] */
    unsigned unauth_conn_pct;        /* % of slots for connections without a key [50] */
    unsigned uploads_per_owner;      /* largest bodies one account may hold at once [2] */
    const char *tls_priorities;      /* GnuTLS priority string [BGR_HTTP_TLS_PRIORITIES] */
    unsigned hsts_max_age_s;         /* Strict-Transport-Security over TLS [0 = none] */
};

/* TLS 1.2 and 1.3 only, forward-secret key exchange (ECDHE, DHE) and AEAD
 * ciphers only: no TLS 1.0/1.1, no RSA key transport, no CBC or SHA-1 MACs. */
#define BGR_HTTP_TLS_PRIORITIES                                                                    \
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:"   \
    "+AES-128-GCM:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:%SERVER_PRECEDENCE"

#define BGR_HTTP_INFLIGHT_BODY_DEFAULT ((size_t)256 * 1024 * 1024)

struct bgr_http_server;

/* Starts serving in background threads. *out owns the server. The config's
 * strings, routes and metrics must outlive it. Errors: BGR_EUSAGE (bad
 * listen address), BGR_EIO (bind failed, bad certificate). */
int bgr_http_server_start(const struct bgr_http_config *cfg, struct bgr_http_server **out,
                          struct bgr_error *err);
/* The port actually bound (useful with port 0). */
uint16_t bgr_http_server_port(const struct bgr_http_server *s);
/* Stops accepting, waits for the connection threads and frees. NULL ok. */
void bgr_http_server_stop(struct bgr_http_server *s);

/* Parses "ADDR:PORT" into a socket address. Errors: BGR_EUSAGE. */
struct sockaddr_storage;
int bgr_http_parse_listen(const char *s, struct sockaddr_storage *ss, unsigned *sslen,
                          struct bgr_error *err);

/* ---- framing ---------------------------------------------------------------- */

/* One header field as received: name and value with their exact lengths
 * (a value may hold bytes a C string cannot). */
struct bgr_http_hfield {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Checks a request's header fields against RFC 9112's framing rules
 * (framing.c): at most one Content-Length, digits only; not with
 * Transfer-Encoding; Transfer-Encoding only as one "chunked" on HTTP/1.1;
 * field names are tokens (no whitespace before the colon, no obs-fold
 * remains); no NUL, CR or LF in values; exactly one Host on HTTP/1.1, at
 * most one on 1.0. Returns NULL when the request may be served, else a
 * static text saying why not (the server answers 400 and closes). */
const char *bgr_http_framing_check(const struct bgr_http_hfield *f, size_t n, bool http11);

/* What bgr_http_framing_check cannot see, because libmicrohttpd 0.9.75
 * rewrites it before any callback runs: an obs-fold continuation line (MHD
 * glues it onto the field *name*, in a copy), a NUL byte inside a value (MHD
 * ends the value there), and a bare LF as a line end. MHD parses the header
 * block in place: it zeroes each line's CR LF and the colon after a name,
 * and hands out pointers into that block. So a request framed as RFC 9112
 * wants has exactly this layout from the request line's version to the
 * empty line:
 *
 *     name \0 [SP/HTAB...] value \0 \0  name ...  \0 \0 (empty line)
 *
 * with every field name starting where the previous line's zeroed CR LF
 * ends. block/block_len: the header block (from the method's first byte,
 * MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE bytes); version: MHD's pointer to
 * the request line's version; f: the header fields in order, with MHD's
 * pointers. Returns NULL when every byte is accounted for, else why not.
 * What it cannot tell apart: a NUL byte in one run of line-end bytes with
 * a bare LF ("\0\n", "\0\r\n\n"): once MHD has zeroed the line ends, the
 * run reads as CR LFs, so the request is served as if the client had sent
 * them. Any other NUL, and any other bare LF, is refused.
 * Reads only inside [block, block + block_len). Valid for MHD 0.9.75 only
 * (the server checks MHD_get_version()); fuzzed against a model of MHD's
 * parser in tests/fuzz/fuzz_http.c. */
const char *bgr_http_framing_inplace_check(const char *block, size_t block_len, const char *version,
                                           const struct bgr_http_hfield *f, size_t n);

/* ---- request ids ----------------------------------------------------------- */

/* True when s is 1..64 chars of [A-Za-z0-9._-] (safe to echo and to log). */
bool bgr_http_request_id_sane(const char *s);
/* Writes a fresh random id ("req_" + 24 hex digits) into out. */
void bgr_http_request_id_new(char out[BGR_HTTP_REQUEST_ID_MAX + 1]);

/* ---- body parsers ---------------------------------------------------------- */

/* A name/value pair. Values of form fields are NUL-terminated too. */
struct bgr_http_field {
    const char *name;
    const char *value;
    size_t len; /* of value */
};

/* Parses application/x-www-form-urlencoded (also a query string): '&'
 * separated, '+' is space, %XX decoded (a bad escape is an error). Strings
 * go into the arena. At most max_fields fields. Errors:
 * BGR_EINVALID_PARAMETER, BGR_ENOMEM. */
int bgr_http_urlencoded_parse(struct bgr_arena *a, const char *s, size_t len, size_t max_fields,
                              struct bgr_http_field **out, size_t *nout, struct bgr_error *err);

/* One part of a multipart/form-data body. data points into the body given
 * to the parser (no copy); names are in the arena. */
struct bgr_http_part {
    const char *name;         /* form field name (required by the parser) */
    const char *filename;     /* NULL when the part is not a file */
    const char *content_type; /* NULL when absent */
    const uint8_t *data;
    size_t len;
};

struct bgr_multipart_limits {
    size_t max_parts;        /* 0 = 32 */
    size_t max_header_bytes; /* of one part's header block; 0 = 4096 */
};

/* Extracts the boundary parameter from a multipart/form-data Content-Type
 * (quoted or not; 1..70 chars per RFC 2046) into the arena. */
int bgr_http_multipart_boundary(struct bgr_arena *a, const char *content_type,
                                const char **boundary, struct bgr_error *err);
/* Parses a whole multipart/form-data body. Errors: BGR_EINVALID_PARAMETER
 * (malformed: the message says what), BGR_ENOMEM. */
int bgr_http_multipart_parse(struct bgr_arena *a, const char *boundary, const uint8_t *body,
                             size_t len, const struct bgr_multipart_limits *lim,
                             struct bgr_http_part **parts, size_t *nparts, struct bgr_error *err);

/* Parses a JSON body: at most max_depth nested arrays/objects (checked
 * before jansson parses), duplicate keys rejected. *out is a new reference.
 * Errors: BGR_EINVALID_JSON (message with line/column). */
int bgr_http_json_parse(const uint8_t *body, size_t len, int max_depth, json_t **out,
                        struct bgr_error *err);

/* ---- metrics ---------------------------------------------------------------- */

/* Thread-safe counters rendered in the Prometheus text format. A server
 * started with these metrics adds its body budget to them
 * (bgremover_http_inflight_body_bytes and friends) while it runs. */
struct bgr_http_metrics *bgr_http_metrics_new(void);
void bgr_http_metrics_free(struct bgr_http_metrics *m); /* NULL ok */
/* One finished request (the server calls it). route is a route name. */
void bgr_http_metrics_request(struct bgr_http_metrics *m, const char *route, int status);
/* One image of a request (POST /v1/remove, the remove.bg route), by
 * result: bgremover_request_images_total. */
void bgr_http_metrics_image(struct bgr_http_metrics *m, bool ok);
/* One image a worker processed, for a request or a batch item, and the
 * worker's time for it: the bgremover_processing_seconds histogram. */
void bgr_http_metrics_processing(struct bgr_http_metrics *m, double ms);
/* Renders every metric; extra series (name, help, value, type "gauge" or
 * "counter", NULL = gauge) are appended as given: values other modules own,
 * such as the queue depth, read by the caller at render time. */
struct bgr_http_gauge {
    const char *name;
    const char *help;
    double value;
    const char *type;
};
int bgr_http_metrics_render(struct bgr_http_metrics *m, const struct bgr_http_gauge *gauges,
                            size_t ngauges, struct bgr_buf *out, struct bgr_error *err);

#endif
