/*
 * api.h - the public header of src/api: the Bg Remover API v1 on top of
 * src/http. It holds the routing table (data), the handlers (one file per
 * endpoint group), the authentication / rate-limit hook that runs before a
 * body is read, and the server's configuration (defaults < config file <
 * BGR_* environment < command-line flags).
 *
 * What it does not do: persistence (src/store), running images and webhooks
 * (src/jobs), outbound fetches (src/net), the HTTP mechanics (src/http).
 *
 * Thread-safety: handlers run on the connection threads of src/http, all
 * sharing one struct bgr_api. Its fields are set before the server starts,
 * except jobs, which is published atomically once the model is loaded (until
 * then endpoints that need the model answer 503 and /readyz says so).
 */
#ifndef BGR_API_API_H
#define BGR_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "http/http.h"
#include "jobs/jobs.h"
#include "store/store.h"

/* ---- configuration --------------------------------------------------------- */

/* Every option of `bgremover serve`; conf/bgremover.conf.example documents
 * each with its default and environment variable. Strings are malloc'd and
 * owned by the struct (bgr_serve_config_release frees them). */
struct bgr_serve_config {
    char *listen; /* ADDR:PORT */
    char *data_dir;
    char *store;      /* "" = SQLite in data_dir; postgresql://... = that database */
    char *results;    /* directory or s3://BUCKET/PREFIX; "" = <data_dir>/results */
    char *public_url; /* "" = derived from the bound address */
    char *model_dir;  /* "" = the models module's default */
    char *model;      /* name or path; "" = medium */
    char *backend;    /* "dnnl" or "ref" */
    char *precision;  /* "auto", "fp32", "bf16" or "int8" (the engine may refuse it at load) */
    char *tls_cert;   /* paths; both or neither */
    char *tls_key;
    char *log_level; /* debug, info, warn, error */
    bool allow_private_urls;
    bool access_log;
    bool web; /* serve the web page at / and /docs */
    int64_t workers;
    int64_t job_lease_s, job_max_attempts, sync_wait_s;
    int64_t queue_size;
    int64_t max_connections;
    int64_t header_timeout_s;
    int64_t max_inflight_body_bytes; /* sum of request bodies held in memory at once */
    int64_t max_pixels;
    int64_t threads; /* inference threads; 0 = all cores */
    int64_t sweep_interval_s;
    int64_t webhook_retry_base_s;
    int64_t webhook_max_attempts;
    int64_t fetch_timeout_s;
    int64_t fetch_workers; /* the fetch stage and webhook pool (src/jobs) */
    int64_t fetch_per_account;
    int64_t fetch_buffer;
    int64_t webhook_workers;
    int64_t webhook_per_host;
    int64_t job_timeout_s;
    /* hostile clients (docs/SECURITY.md) */
    int64_t max_connections_per_ip;
    int64_t body_min_rate;
    int64_t body_grace_s;
    int64_t unauth_conn_pct;
    int64_t uploads_per_account;
    int64_t max_image_side;
    int64_t max_jpeg_scans;
    char *tls_priorities;
    int64_t hsts_max_age_s;
    char *metrics_token;
    struct bgr_plan plans[BGR_PLAN_DEFAULT_COUNT];
};

/* Fills every option with its default. */
void bgr_serve_config_init(struct bgr_serve_config *c);
void bgr_serve_config_release(struct bgr_serve_config *c);
/* Sets one option by its config-file key ("workers", "plan.free.per_day").
 * Errors: BGR_EUSAGE naming the key (unknown key, bad value). */
int bgr_serve_config_set(struct bgr_serve_config *c, const char *key, const char *value,
                         struct bgr_error *err);
/* Reads "key = value" lines ('#' comments, blank lines ignored) from path.
 * Errors: BGR_EIO (unreadable), BGR_EUSAGE (line N: ...). */
int bgr_serve_config_load_file(struct bgr_serve_config *c, const char *path, struct bgr_error *err);
/* Applies every set BGR_<KEY> environment variable (key upper-cased, '.'
 * as '_': BGR_PLAN_FREE_PER_DAY). Errors: BGR_EUSAGE naming the variable. */
int bgr_serve_config_load_env(struct bgr_serve_config *c, struct bgr_error *err);
/* Checks consistency (TLS pair, ranges). Errors: BGR_EUSAGE. */
int bgr_serve_config_check(const struct bgr_serve_config *c, struct bgr_error *err);

/* One documented option (for --help and the docs test). */
struct bgr_serve_option {
    const char *key;
    const char *env;
    const char *def; /* default, as text */
    const char *help;
};
const struct bgr_serve_option *bgr_serve_options(size_t *n);

/* ---- the application --------------------------------------------------------- */

struct bgr_api {
    struct bgr_store *store;          /* borrowed */
    struct bgr_results *results;      /* borrowed: where result objects live */
    struct bgr_jobs *jobs;            /* borrowed; NULL until ready (read atomically) */
    struct bgr_http_metrics *metrics; /* borrowed */
    const struct bgr_serve_config *cfg;
    char public_url[512]; /* no trailing '/' */
};

/* The routing table, with the web page (/, /docs, /web/...). */
const struct bgr_http_route *bgr_api_routes(size_t *n);
/* The same, without the web page's routes when web is false (--no-web). */
const struct bgr_http_route *bgr_api_routes_for(bool web, size_t *n);
/* /healthz, /readyz and /metrics only (`bgremover worker --listen`). */
const struct bgr_http_route *bgr_api_routes_ops(size_t *n);
/* The hooks to put in struct bgr_http_config (app = struct bgr_api *). */
void bgr_api_prepare(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);
void bgr_api_finish(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp);

/* Publishes the job system once the model is loaded (NULL to withdraw it
 * before stopping). */
void bgr_api_set_jobs(struct bgr_api *api, struct bgr_jobs *jobs);

/* The renders a worker must know to run queued requests of this API's
 * routes (the remove.bg route's), for struct bgr_jobs_config.renders. */
const struct bgr_jobs_render *bgr_api_renders(size_t *n);

/* The OpenAPI document (docs/openapi.json), embedded at build time. */
extern const unsigned char bgr_api_openapi_json[];
extern const size_t bgr_api_openapi_json_len;

#endif
