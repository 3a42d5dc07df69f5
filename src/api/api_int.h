/*
 * api_int.h - what the files of src/api share: the per-request context the
 * prepare hook builds (authenticated account, rate status), the handler
 * prototypes the routing table names, and small helpers.
 */
#ifndef BGR_API_API_INT_H
#define BGR_API_API_INT_H

#include "api/api.h"

/* Per-request state, in the request's arena (req->user). */
struct api_ctx {
    bool authed;   /* a valid key was presented */
    bool admitted; /* and the request passed the rate limits: it is recorded */
    struct bgr_account acct;
    struct bgr_rate_status rate;
};

static inline struct api_ctx *api_ctx_of(struct bgr_http_req *req)
{
    return (struct api_ctx *)req->user;
}

/* The job system, or NULL while the model loads. */
struct bgr_jobs *api_jobs(struct bgr_api *api);

/* Largest JSON body that is not an image (batch requests, parameters). */
#define API_SMALL_BODY (256u * 1024u)
/* Multipart framing and form fields allowed on top of the image itself. */
#define API_FORM_SLACK (64u * 1024u)
/* JSON nesting depth accepted anywhere in the API. */
#define API_JSON_DEPTH 8

/* Handlers (app = struct bgr_api *). */
void api_remove(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_batch_create(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_batch_get(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_account(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_usage(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_image_delete(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_result_get(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_healthz(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_readyz(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_metrics(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_openapi(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);

/* ---- the remove.bg drop-in (removebg*.c, docs/REMOVEBG.md) ---- */
/* Route flag: remove.bg's auth (X-Api-Key too) and error shape. */
#define API_ROUTE_REMOVEBG 0x100u
void api_removebg(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void api_removebg_account(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
/* {"errors":[{"title","code","detail"}]} with the given status. */
void api_removebg_error(struct bgr_http_resp *resp, int status, const char *code, const char *title,
                        const char *detail);
/* The title remove.bg gives a 400 code ("No image given"). Static. */
const char *api_removebg_title(const char *code);
/* One of our errors in remove.bg's shape and status (403 for auth, ...). */
void api_removebg_reply_err(struct bgr_http_resp *resp, int err, const struct bgr_error *e);
/* Rewrites an error the shared hooks answered in the /v1 envelope (the
 * finish hook calls it on remove.bg routes). */
void api_removebg_reshape(struct bgr_http_req *req, struct bgr_http_resp *resp);

/* Replies with err's code and the detail in e (or the default message). */
void api_reply_err(struct bgr_http_resp *resp, int rc, const struct bgr_error *e);

/* True when s is prefix followed by 1..40 characters of [A-Za-z0-9]: the
 * only ids we look up (anything else is 404 without touching the store). */
bool api_id_valid(const char *s, const char *prefix);

/* True for the names of the output options (params.c's one list). */
bool api_is_opt(const char *name);
/* Output option parsing shared by /v1/remove and the batch endpoint: sets
 * one option of o from a string value (form fields) or a JSON value.
 * field names the parameter in messages ("images[2].crop"). Returns 0,
 * 1 when name is not an output option, or BGR_EINVALID_PARAMETER. */
int api_opt_from_string(struct bgr_output_opts *o, const char *name, const char *value,
                        const char *field, struct bgr_error *err);
/* The rules between options, once all are parsed (strict parameters: an
 * option that would be ignored is an error). prefix names where they came
 * from ("" or "images[3]."). Returns 0 or BGR_EINVALID_PARAMETER. */
int api_opts_check(const struct bgr_output_opts *o, const char *prefix, struct bgr_error *err);
int api_opt_from_json(struct bgr_output_opts *o, const char *name, json_t *value, const char *field,
                      struct bgr_error *err);
/* Parses a JSON request body that must be an object (every JSON body of the
 * API is): *root is a new reference, also on the non-object error.
 * Errors: BGR_EINVALID_JSON. */
int api_json_object(const uint8_t *body, size_t len, json_t **root, struct bgr_error *err);
/* Checks a URL parameter (image_url, webhook_url) with the net guard's
 * syntax rules; the message names field. */
int api_check_url(const char *url, const char *field, struct bgr_error *err);
/* Refuses a webhook_url the SSRF guard would refuse whatever happens later
 * (issue 13, row 9): a literal private/loopback/local address or a
 * localhost name; with resolve (only off the event loop) also a host name
 * all of whose addresses are refused. A name that does not resolve now
 * passes (DNS may recover; delivery checks again). Nothing is refused with
 * allow_private_urls. Errors: BGR_EINVALID_PARAMETER. */
int api_check_webhook_dest(const struct bgr_api *api, const char *url, bool resolve,
                           struct bgr_error *err);

/* The parameters of one POST /v1/remove request, validated. Strings and
 * file point into the body, the arena or *root (see api_remove_parse). */
struct api_remove_params {
    struct bgr_output_opts opts;
    const char *image_url;
    const char *webhook_url;
    const char *b64;
    const uint8_t *file;
    size_t file_len;
    bool has_file;
    unsigned seen; /* bit per known field, to refuse repeats */
};

/* Validates a POST /v1/remove body (any accepted Content-Type) without
 * doing any work: exactly one image source, every option, the URLs' syntax,
 * base64 decoded against max bytes. Split from the handler so the fuzz
 * target drives the very code the server runs. On return the caller owns
 * *root (json_decref) and *decoded (free), set or not; p points into body,
 * a, *root and *decoded. */
int api_remove_parse(struct bgr_arena *a, const char *content_type, const uint8_t *body, size_t len,
                     size_t max, struct api_remove_params *p, json_t **root, uint8_t **decoded,
                     struct bgr_error *err);
/* Validates a POST /v1/remove/batch JSON body into items[0..*nitems) (image
 * URLs and per-item options over the batch-level defaults). The caller owns
 * *root (json_decref), set or not; *webhook_url and the items' strings live
 * in it. */
int api_batch_parse(const uint8_t *body, size_t len, json_t **root, const char **webhook_url,
                    struct bgr_batch_item_new items[BGR_BATCH_MAX_ITEMS], size_t *nitems,
                    struct bgr_error *err);

#endif
