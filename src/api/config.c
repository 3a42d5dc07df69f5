/*
 * config.c - the settings of `bgremover serve`, from four layers, each
 * overriding the one before: built-in defaults < config file (--config or
 * BGR_CONFIG) < BGR_* environment variables < command-line flags.
 *
 * One table describes every option (key, environment variable, default,
 * help); conf/bgremover.conf.example documents the same list and the API
 * tests check that it names every key. Config files are "key = value"
 * lines with '#' comments.
 */
#include "api/api.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum opt_type { T_STR, T_INT, T_BOOL, T_LIMIT };

struct opt {
    const char *key;
    const char *env;
    enum opt_type type;
    size_t off;
    int64_t lo, hi; /* for T_INT / T_LIMIT */
    const char *def;
    const char *help;
};

#define OFF(f) offsetof(struct bgr_serve_config, f)
#define PLAN_OPTS(i, name, NAME, pm, pd, mb, ret, cr)                                              \
    {"plan." name ".per_minute",                                                                   \
     "BGR_PLAN_" NAME "_PER_MINUTE",                                                               \
     T_INT,                                                                                        \
     OFF(plans[i].per_minute),                                                                     \
     1,                                                                                            \
     1000000,                                                                                      \
     pm,                                                                                           \
     "requests per minute (fixed UTC-minute window)"},                                             \
        {"plan." name ".per_day",                                                                  \
         "BGR_PLAN_" NAME "_PER_DAY",                                                              \
         T_LIMIT,                                                                                  \
         OFF(plans[i].per_day),                                                                    \
         1,                                                                                        \
         INT64_MAX,                                                                                \
         pd,                                                                                       \
         "requests per UTC day, or unlimited"},                                                    \
        {"plan." name ".max_bytes",                                                                \
         "BGR_PLAN_" NAME "_MAX_BYTES",                                                            \
         T_INT,                                                                                    \
         OFF(plans[i].max_bytes),                                                                  \
         1024,                                                                                     \
         1024LL * 1024 * 1024,                                                                     \
         mb,                                                                                       \
         "largest image accepted (upload or download), bytes"},                                    \
        {"plan." name ".retention_s",                                                              \
         "BGR_PLAN_" NAME "_RETENTION_S",                                                          \
         T_INT,                                                                                    \
         OFF(plans[i].retention_s),                                                                \
         1,                                                                                        \
         10LL * 365 * 86400,                                                                       \
         ret,                                                                                      \
         "seconds a result is kept before it expires"},                                            \
    {                                                                                              \
        "plan." name ".monthly_credits", "BGR_PLAN_" NAME "_MONTHLY_CREDITS", T_LIMIT,             \
            OFF(plans[i].monthly_credits), 0, INT64_MAX, cr,                                       \
            "credits per UTC calendar month (one per processed image), or unlimited"               \
    }

static const struct opt opts[] = {
    {"listen", "BGR_LISTEN", T_STR, OFF(listen), 0, 0, "0.0.0.0:8080",
     "address and port to serve on (ADDR:PORT, [V6]:PORT; port 0 picks a free one)"},
    {"data_dir", "BGR_DATA_DIR", T_STR, OFF(data_dir), 0, 0, "./data",
     "directory of the database and stored results"},
    {"store", "BGR_STORE", T_STR, OFF(store), 0, 0, "",
     "where state lives: empty for SQLite in DATA_DIR, or postgresql://... (a libpq URI)"
     " shared by API nodes and workers"},
    {"results", "BGR_RESULTS", T_STR, OFF(results), 0, 0, "",
     "where results are stored: a directory or s3://BUCKET/PREFIX; empty: DATA_DIR/results"},
    {"public_url", "BGR_PUBLIC_URL", T_STR, OFF(public_url), 0, 0, "",
     "base of output_url and poll_url; empty: http(s)://localhost:PORT"},
    {"model_dir", "BGR_MODEL_DIR", T_STR, OFF(model_dir), 0, 0, "",
     "model directory; empty: $HOME/.local/share/bgremover/models"},
    {"model", "BGR_MODEL", T_STR, OFF(model), 0, 0, "medium",
     "model name or path to an .onnx file"},
    {"backend", "BGR_BACKEND", T_STR, OFF(backend), 0, 0, "dnnl", "inference backend: dnnl or ref"},
    {"precision", "BGR_PRECISION", T_STR, OFF(precision), 0, 0, "auto",
     "compute precision: auto, fp32, bf16 or int8 (start-up fails if the engine cannot)"},
    {"threads", "BGR_THREADS", T_INT, OFF(threads), 0, 1024, "0",
     "inference threads; 0: all cores"},
    {"workers", "BGR_WORKERS", T_INT, OFF(workers), 0, 64, "2",
     "worker threads (inference itself is serialised; decode/encode overlap); 0: an API node"
     " only, whose images `bgremover worker` processes take (needs a postgresql:// store)"},
    {"job_lease_s", "BGR_JOB_LEASE_S", T_INT, OFF(job_lease_s), 2, 3600, "30",
     "shared store: seconds a worker's claim on a job lasts unless renewed; a job whose worker"
     " died is taken again after at most this long"},
    {"job_max_attempts", "BGR_JOB_MAX_ATTEMPTS", T_INT, OFF(job_max_attempts), 1, 100, "3",
     "shared store: claims of one job (each ended by its worker dying) before it fails"},
    {"sync_wait_s", "BGR_SYNC_WAIT_S", T_INT, OFF(sync_wait_s), 1, 86400, "300",
     "shared store: seconds a request waits for a worker to take its image before 503"},
    {"queue_size", "BGR_QUEUE_SIZE", T_INT, OFF(queue_size), 1, 100000, "16",
     "sync requests that may wait for a worker; more get 503 SERVICE_BUSY"},
    {"max_connections", "BGR_MAX_CONNECTIONS", T_INT, OFF(max_connections), 1, 100000, "256",
     "concurrent HTTP connections (one thread each)"},
    {"header_timeout_s", "BGR_HEADER_TIMEOUT_S", T_INT, OFF(header_timeout_s), 1, 3600, "20",
     "seconds a connection has to send complete request headers (slow clients)"},
    {"max_inflight_body_bytes", "BGR_MAX_INFLIGHT_BODY_BYTES", T_INT, OFF(max_inflight_body_bytes),
     1024 * 1024, 1LL << 40, "268435456",
     "request body bytes held in memory at once, all connections together; past it 503"},
    {"max_pixels", "BGR_MAX_PIXELS", T_INT, OFF(max_pixels), 1, INT64_MAX, "50000000",
     "largest image in pixels, checked from the header before decoding"},
    {"tls_cert", "BGR_TLS_CERT", T_STR, OFF(tls_cert), 0, 0, "",
     "PEM certificate file; with tls_key the server speaks HTTPS"},
    {"tls_key", "BGR_TLS_KEY", T_STR, OFF(tls_key), 0, 0, "", "PEM private key file"},
    {"allow_private_urls", "BGR_ALLOW_PRIVATE_URLS", T_BOOL, OFF(allow_private_urls), 0, 0, "false",
     "allow image_url/webhook_url to reach private addresses (development only)"},
    {"access_log", "BGR_ACCESS_LOG", T_BOOL, OFF(access_log), 0, 0, "true",
     "one log line per request"},
    {"web", "BGR_WEB", T_BOOL, OFF(web), 0, 0, "true",
     "serve the web page at / and /docs (false: API only, --no-web)"},
    {"log_level", "BGR_LOG_LEVEL", T_STR, OFF(log_level), 0, 0, "info",
     "debug, info, warn or error"},
    {"sweep_interval_s", "BGR_SWEEP_INTERVAL_S", T_INT, OFF(sweep_interval_s), 1, 86400, "60",
     "seconds between sweeps of expired results"},
    {"webhook_retry_base_s", "BGR_WEBHOOK_RETRY_BASE_S", T_INT, OFF(webhook_retry_base_s), 1, 3600,
     "15", "first webhook retry delay; doubles per attempt"},
    {"webhook_max_attempts", "BGR_WEBHOOK_MAX_ATTEMPTS", T_INT, OFF(webhook_max_attempts), 1, 30,
     "9", "webhook attempts before giving up (9 with base 15 s: about an hour)"},
    {"fetch_timeout_s", "BGR_FETCH_TIMEOUT_S", T_INT, OFF(fetch_timeout_s), 1, 600, "30",
     "total time allowed to download an image_url"},
    {"fetch_workers", "BGR_FETCH_WORKERS", T_INT, OFF(fetch_workers), 1, 256, "4",
     "threads downloading batch items' image_url, apart from the inference workers"},
    {"fetch_per_account", "BGR_FETCH_PER_ACCOUNT", T_INT, OFF(fetch_per_account), 1, 256, "2",
     "batch downloads of one account at once (the rest wait their round-robin turn)"},
    {"fetch_buffer", "BGR_FETCH_BUFFER", T_INT, OFF(fetch_buffer), 1, 4096, "8",
     "batch images downloading or downloaded and waiting for a worker, held in memory"},
    {"webhook_workers", "BGR_WEBHOOK_WORKERS", T_INT, OFF(webhook_workers), 1, 256, "8",
     "webhook deliveries at once"},
    {"webhook_per_host", "BGR_WEBHOOK_PER_HOST", T_INT, OFF(webhook_per_host), 1, 256, "2",
     "webhook deliveries at once to one host:port (a slow receiver delays only its own)"},
    {"job_timeout_s", "BGR_JOB_TIMEOUT_S", T_INT, OFF(job_timeout_s), 1, 86400, "120",
     "seconds one image may run on a worker; past it 422 PROCESSING_TIMEOUT, no charge"},
    {"max_connections_per_ip", "BGR_MAX_CONNECTIONS_PER_IP", T_INT, OFF(max_connections_per_ip), 0,
     100000, "64", "connections from one client address; 0: no cap (behind a proxy on this host)"},
    {"body_min_rate", "BGR_BODY_MIN_RATE", T_INT, OFF(body_min_rate), 1, 1LL << 30, "32768",
     "bytes/s a request body must average after body_grace_s, or the connection is closed"},
    {"body_grace_s", "BGR_BODY_GRACE_S", T_INT, OFF(body_grace_s), 1, 3600, "10",
     "seconds every request body gets on top of its size at body_min_rate"},
    {"unauth_conn_pct", "BGR_UNAUTH_CONN_PCT", T_INT, OFF(unauth_conn_pct), 1, 100, "50",
     "percent of max_connections that connections without a valid key may hold"},
    {"uploads_per_account", "BGR_UPLOADS_PER_ACCOUNT", T_INT, OFF(uploads_per_account), 1, 1000,
     "2", "largest uploads of its plan one account may hold in memory at once; past it 429"},
    {"max_image_side", "BGR_MAX_IMAGE_SIDE", T_INT, OFF(max_image_side), 1, 1000000, "16384",
     "longest image side in pixels, checked from the header before decoding"},
    {"max_jpeg_scans", "BGR_MAX_JPEG_SCANS", T_INT, OFF(max_jpeg_scans), 1, 100000, "100",
     "most scans a progressive JPEG may have (each is a decoding pass over the image)"},
    {"tls_priorities", "BGR_TLS_PRIORITIES", T_STR, OFF(tls_priorities), 0, 0, "",
     "GnuTLS priority string; empty: TLS 1.2/1.3 with forward-secret AEAD suites only"},
    {"hsts_max_age_s", "BGR_HSTS_MAX_AGE_S", T_INT, OFF(hsts_max_age_s), 0, 1LL << 31, "31536000",
     "Strict-Transport-Security max-age sent over TLS; 0: none"},
    {"metrics_token", "BGR_METRICS_TOKEN", T_STR, OFF(metrics_token), 0, 0, "",
     "bearer token GET /metrics requires; empty: /metrics answers loopback clients only"},
    PLAN_OPTS(0, "free", "FREE", "10", "50", "10485760", "86400", "50"),
    PLAN_OPTS(1, "pro", "PRO", "60", "1000", "26214400", "604800", "1000"),
    PLAN_OPTS(2, "enterprise", "ENTERPRISE", "200", "unlimited", "52428800", "2592000",
              "unlimited"),
};

const struct bgr_serve_option *bgr_serve_options(size_t *n)
{
    static struct bgr_serve_option pub[BGR_ARRAY_LEN(opts)];
    for (size_t i = 0; i < BGR_ARRAY_LEN(opts); i++)
        pub[i] = (struct bgr_serve_option){opts[i].key, opts[i].env, opts[i].def, opts[i].help};
    *n = BGR_ARRAY_LEN(opts);
    return pub;
}

static int set_opt(struct bgr_serve_config *c, const struct opt *o, const char *value,
                   const char *origin, struct bgr_error *err)
{
    char *base = (char *)c;
    switch (o->type) {
    case T_STR: {
        char **p = (char **)(base + o->off);
        free(*p);
        *p = bgr_xstrdup(value);
        return 0;
    }
    case T_BOOL: {
        bool *p = (bool *)(base + o->off);
        if (!strcasecmp(value, "true") || !strcmp(value, "1") || !strcasecmp(value, "yes") ||
            !strcasecmp(value, "on"))
            *p = true;
        else if (!strcasecmp(value, "false") || !strcmp(value, "0") || !strcasecmp(value, "no") ||
                 !strcasecmp(value, "off"))
            *p = false;
        else
            return bgr_error_set(err, BGR_EUSAGE, "%s: expected true or false, not '%s'", origin,
                                 value);
        return 0;
    }
    case T_INT:
    case T_LIMIT: {
        int64_t *p = (int64_t *)(base + o->off);
        if (o->type == T_LIMIT && (!strcasecmp(value, "unlimited") || !strcmp(value, "-1"))) {
            *p = BGR_UNLIMITED;
            return 0;
        }
        char *end = NULL;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno || v < o->lo || v > o->hi)
            return bgr_error_set(err, BGR_EUSAGE,
                                 "%s: expected an integer from %lld to %lld%s, not '%s'", origin,
                                 (long long)o->lo, (long long)o->hi,
                                 o->type == T_LIMIT ? " or unlimited" : "", value);
        *p = v;
        return 0;
    }
    }
    return bgr_error_set(err, BGR_EINTERNAL, "bad option type");
}

static const struct opt *find_opt(const char *key)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(opts); i++)
        if (strcmp(opts[i].key, key) == 0)
            return &opts[i];
    return NULL;
}

void bgr_serve_config_init(struct bgr_serve_config *c)
{
    memset(c, 0, sizeof *c);
    bgr_plan_defaults(c->plans);
    for (size_t i = 0; i < BGR_ARRAY_LEN(opts); i++) {
        int rc = set_opt(c, &opts[i], opts[i].def, opts[i].key, NULL);
        BGR_ASSERT(rc == 0); /* our own defaults parse */
    }
}

void bgr_serve_config_release(struct bgr_serve_config *c)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(opts); i++)
        if (opts[i].type == T_STR)
            BGR_FREE_AND_NULL(*(char **)((char *)c + opts[i].off));
}

int bgr_serve_config_set(struct bgr_serve_config *c, const char *key, const char *value,
                         struct bgr_error *err)
{
    const struct opt *o = find_opt(key);
    if (!o)
        return bgr_error_set(err, BGR_EUSAGE, "unknown option '%s'", key);
    return set_opt(c, o, value, key, err);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int bgr_serve_config_load_file(struct bgr_serve_config *c, const char *path, struct bgr_error *err)
{
    struct bgr_buf b;
    bgr_buf_init(&b, 1024 * 1024);
    int rc = bgr_file_read(path, 1024 * 1024, &b, err);
    if (rc) {
        bgr_buf_release(&b);
        return rc;
    }
    bgr_buf_append(&b, "", 1, NULL);
    char *text = (char *)b.data, *save = NULL;
    int lineno = 0;
    char *line = text;
    while (line && !rc) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *l = trim(line);
        if (*l) {
            char *eq = strchr(l, '=');
            if (!eq) {
                rc = bgr_error_set(err, BGR_EUSAGE, "%s:%d: expected key = value", path, lineno);
                break;
            }
            *eq = '\0';
            char *key = trim(l), *val = trim(eq + 1);
            size_t vn = strlen(val);
            if (vn >= 2 && val[0] == '"' && val[vn - 1] == '"') {
                val[vn - 1] = '\0';
                val++;
            }
            char origin[300];
            (void)snprintf(origin, sizeof origin, "%s:%d: %s", path, lineno, key);
            const struct opt *o = find_opt(key);
            if (!o)
                rc =
                    bgr_error_set(err, BGR_EUSAGE, "%s:%d: unknown option '%s'", path, lineno, key);
            else
                rc = set_opt(c, o, val, origin, err);
        }
        line = nl ? nl + 1 : NULL;
    }
    (void)save;
    bgr_buf_release(&b);
    return rc;
}

int bgr_serve_config_load_env(struct bgr_serve_config *c, struct bgr_error *err)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(opts); i++) {
        const char *v = getenv(opts[i].env);
        if (!v || !*v)
            continue;
        int rc = set_opt(c, &opts[i], v, opts[i].env, err);
        if (rc)
            return rc;
    }
    return 0;
}

int bgr_serve_config_check(const struct bgr_serve_config *c, struct bgr_error *err)
{
    if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0'))
        return bgr_error_set(err, BGR_EUSAGE, "--tls-cert and --tls-key go together");
    if (strcmp(c->backend, "dnnl") && strcmp(c->backend, "ref"))
        return bgr_error_set(err, BGR_EUSAGE, "backend: expected dnnl or ref, not '%s'",
                             c->backend);
    if (strcmp(c->precision, "auto") && strcmp(c->precision, "fp32") &&
        strcmp(c->precision, "bf16") && strcmp(c->precision, "int8"))
        return bgr_error_set(err, BGR_EUSAGE,
                             "precision: expected auto, fp32, bf16 or int8, not '%s'",
                             c->precision);
    if (strcmp(c->log_level, "debug") && strcmp(c->log_level, "info") &&
        strcmp(c->log_level, "warn") && strcmp(c->log_level, "error"))
        return bgr_error_set(err, BGR_EUSAGE, "log_level: expected debug, info, warn or error");
    if (!c->data_dir[0])
        return bgr_error_set(err, BGR_EUSAGE, "data_dir must not be empty");
    size_t n = strlen(c->public_url);
    if (n && strncmp(c->public_url, "http://", 7) && strncmp(c->public_url, "https://", 8))
        return bgr_error_set(err, BGR_EUSAGE, "public_url must start with http:// or https://");
    if (n >= 400)
        return bgr_error_set(err, BGR_EUSAGE, "public_url is too long");
    return 0;
}
