/*
 * cmd_serve.c - `bgremover serve`: the API server.
 *
 * Start-up order, chosen so the server answers as early as possible and
 * never half-ready: settings (defaults < config file < BGR_* env < flags),
 * the store (migrations), the HTTP server (healthz, account, usage, results
 * work from here on; /readyz and the endpoints that need the model say 503),
 * the model, then the job system (which also resumes unfinished batches),
 * published to the handlers atomically. SIGINT/SIGTERM stop it in reverse
 * order: no new connections, running jobs finish, queued batch items stay
 * in the store for the next start.
 */
#define _GNU_SOURCE
#include "api/api.h"
#include "cli/cli.h"
#include "http/http.h"
#include "infer/infer.h"
#include "jobs/jobs.h"
#include "models/models.h"
#include "net/net.h"
#include "pipeline/pipeline.h"
#include "results/results.h"
#include "store/store.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f, const char *cmd)
{
    size_t n;
    const struct bgr_serve_option *o = bgr_serve_options(&n);
    if (strcmp(cmd, "worker") == 0)
        fprintf(f, "Usage: bgremover worker --store postgresql://... [OPTIONS]\n\n"
                   "Runs inference for API nodes that share the PostgreSQL store: claims\n"
                   "requests and batch items from its queue, writes results to --results\n"
                   "(shared with the API nodes), and delivers webhooks. Takes the options of\n"
                   "`serve` below (those about HTTP apply only with --listen, which serves\n"
                   "/healthz, /readyz and /metrics); --workers is the number of images in\n"
                   "work at once. docs/DEPLOY.md.\n\n");
    else
        fprintf(f, "Usage: bgremover serve [OPTIONS]\n\n"
                   "Serves the Bg Remover API v1 (see docs/API.md).\n\n");
    fprintf(f, "Options (each also settable in a config file and as an environment variable):\n"
               "      --listen ADDR:PORT     address to serve on (default 0.0.0.0:8080)\n"
               "      --data-dir DIR         database and results (default ./data)\n"
               "      --store URL            postgresql://... : state in that database, shared\n"
               "                             by API nodes and workers (default: SQLite in\n"
               "                             DATA-DIR)\n"
               "      --results DIR|s3://BUCKET/PREFIX\n"
               "                             where results are stored (default DATA-DIR/results;\n"
               "                             S3: BGR_S3_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID,\n"
               "                             AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)\n"
               "      --public-url URL       base of output_url/poll_url\n"
               "      --model-dir DIR        model directory\n"
               "      --model NAME|PATH      model (default medium)\n"
               "      --precision P          auto (default), fp32, bf16 or int8\n"
               "  -j, --threads N            inference threads (default 0: every core)\n"
               "      --workers N            worker threads (default 2; 0: API node only,\n"
               "                             `bgremover worker` processes do the images)\n"
               "      --queue-size N         waiting sync requests before 503 (default 16)\n"
               "      --tls-cert FILE        PEM certificate: serve HTTPS (with --tls-key)\n"
               "      --tls-key FILE         PEM private key\n"
               "      --allow-private-urls   let image_url/webhook_url reach private addresses\n"
               "      --init                 create a store in --data-dir even if the directory\n"
               "                             is not empty (without it, a directory that has no\n"
               "                             store is used only if it is new or empty)\n"
               "      --no-web               API only: no web page at / and /docs\n"
               "  -c, --config FILE          config file (default: $BGR_CONFIG if set)\n"
               "  -s, --set KEY=VALUE        set any option below (repeatable)\n"
               "  -h, --help                 show this help\n\n"
               "All options (key, environment variable, default):\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-28s %-34s %s\n", o[i].key, o[i].env, o[i].def[0] ? o[i].def : "\"\"");
}

struct flag_kv {
    const char *key;
    const char *value;
};

/* Reads a PEM file into a NUL-terminated malloc'd string. */
static char *read_pem(const char *path, struct bgr_error *err)
{
    struct bgr_buf b;
    bgr_buf_init(&b, 1024 * 1024);
    if (bgr_file_read(path, 1024 * 1024, &b, err) != 0 || bgr_buf_append(&b, "", 1, err) != 0) {
        bgr_buf_release(&b);
        return NULL;
    }
    return (char *)bgr_buf_detach(&b, NULL);
}

static enum bgr_log_level level_of(const char *s)
{
    if (!strcmp(s, "debug"))
        return BGR_LOG_DEBUG;
    if (!strcmp(s, "warn"))
        return BGR_LOG_WARN;
    if (!strcmp(s, "error"))
        return BGR_LOG_ERROR;
    return BGR_LOG_INFO;
}

/* The config checked the name (bgr_serve_config_check). */
static enum bgr_precision precision_of(const char *s)
{
    if (!strcmp(s, "fp32"))
        return BGR_PREC_FP32;
    if (!strcmp(s, "bf16"))
        return BGR_PREC_BF16;
    if (!strcmp(s, "int8"))
        return BGR_PREC_INT8;
    return BGR_PREC_AUTO;
}

/* Parses argv into flags (applied last) and the config file path. */
static int parse_args(const char *cmd, int argc, char **argv, struct flag_kv *kv, size_t *nkv,
                      size_t cap, const char **config, bool *init, bool *listen_given)
{
    enum {
        O_LISTEN = 256,
        O_DATA,
        O_PUBURL,
        O_MDIR,
        O_MODEL,
        O_WORKERS,
        O_QUEUE,
        O_CERT,
        O_KEY,
        O_PRIV,
        O_PREC,
        O_NOWEB,
        O_RESULTS,
        O_STORE,
        O_INIT /* not a setting: a one-time action of this start */
    };
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"data-dir", required_argument, NULL, O_DATA},
        {"public-url", required_argument, NULL, O_PUBURL},
        {"model-dir", required_argument, NULL, O_MDIR},
        {"model", required_argument, NULL, O_MODEL},
        {"workers", required_argument, NULL, O_WORKERS},
        {"queue-size", required_argument, NULL, O_QUEUE},
        {"tls-cert", required_argument, NULL, O_CERT},
        {"tls-key", required_argument, NULL, O_KEY},
        {"allow-private-urls", no_argument, NULL, O_PRIV},
        {"precision", required_argument, NULL, O_PREC},
        {"init", no_argument, NULL, O_INIT},
        {"no-web", no_argument, NULL, O_NOWEB},
        {"results", required_argument, NULL, O_RESULTS},
        {"store", required_argument, NULL, O_STORE},
        {"threads", required_argument, NULL, 'j'},
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const keys[] = {
        "listen",   "data_dir", "public_url",         "model_dir", "model", "workers", "queue_size",
        "tls_cert", "tls_key",  "allow_private_urls", "precision", "web",   "results", "store"};
    int c;
    while ((c = getopt_long(argc, argv, ":c:s:j:h", longopts, NULL)) != -1) {
        if (*nkv >= cap)
            return bgr_cli_usage_error(cmd, "too many options");
        if (c == O_LISTEN)
            *listen_given = true;
        if (c >= O_LISTEN && c <= O_STORE) {
            const char *v = c == O_PRIV ? "true" : c == O_NOWEB ? "false" : optarg;
            kv[(*nkv)++] = (struct flag_kv){keys[c - O_LISTEN], v};
        } else if (c == O_INIT) {
            *init = true;
        } else if (c == 's') {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg)
                return bgr_cli_usage_error(cmd, "--set wants KEY=VALUE, not '%s'", optarg);
            *eq = '\0';
            kv[(*nkv)++] = (struct flag_kv){optarg, eq + 1};
        } else if (c == 'j') {
            kv[(*nkv)++] = (struct flag_kv){"threads", optarg};
        } else if (c == 'c') {
            *config = optarg;
        } else if (c == 'h') {
            usage(stdout, cmd);
            return -1;
        } else {
            return bgr_cli_bad_option(cmd, c, argv);
        }
    }
    if (optind < argc)
        return bgr_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

static int load_config(const char *cmd, int argc, char **argv, struct bgr_serve_config *cfg,
                       bool *init, bool *listen_given)
{
    struct flag_kv kv[128];
    size_t nkv = 0;
    const char *config = getenv("BGR_CONFIG");
    struct bgr_error e = {0};
    int rc = parse_args(cmd, argc, argv, kv, &nkv, BGR_ARRAY_LEN(kv), &config, init, listen_given);
    if (rc)
        return rc < 0 ? BGR_EXIT_OK + 100 : rc; /* 100: --help shown */
    if (config && *config && bgr_serve_config_load_file(cfg, config, &e) != 0)
        return bgr_cli_usage_error(cmd, "%s", e.msg);
    if (bgr_serve_config_load_env(cfg, &e) != 0)
        return bgr_cli_usage_error(cmd, "%s", e.msg);
    for (size_t i = 0; i < nkv; i++)
        if (bgr_serve_config_set(cfg, kv[i].key, kv[i].value, &e) != 0)
            return bgr_cli_usage_error(cmd, "%s", e.msg);
    if (bgr_serve_config_check(cfg, &e) != 0)
        return bgr_cli_usage_error(cmd, "%s", e.msg);
    return 0;
}

/* "SCHEME://HOST:PORT" of what was bound: the listen address's host (any
 * address when it has none) with the port actually bound, which differs
 * from the configured one when that is 0 (a free port). */
static void bound_url(const char *listen, const char *scheme, unsigned port, char *out, size_t n)
{
    const char *colon = strrchr(listen, ':');
    int hlen = colon ? (int)(colon - listen) : (int)strlen(listen);
    if (hlen == 0)
        (void)snprintf(out, n, "%s://0.0.0.0:%u", scheme, port);
    else
        (void)snprintf(out, n, "%s://%.*s:%u", scheme, hlen, listen, port);
}

/* Opens where results live (default <data-dir>/results, today's layout) and
 * checks it answers: an S3 store that is unreachable or refuses our
 * credentials stops the start here, with the store's reason. */
static int open_results(const struct bgr_serve_config *cfg, struct bgr_results **out,
                        struct bgr_error *err)
{
    struct bgr_results_opts ro;
    char *dflt = NULL;
    const char *loc = cfg->results;
    int rc;
    bgr_results_opts_init(&ro);
    ro.spool_dir = cfg->data_dir; /* S3 downloads being served: the server's own disk */
    if (!loc[0]) {
        if (asprintf(&dflt, "%s/results", cfg->data_dir) < 0)
            return bgr_error_set(err, BGR_ENOMEM, "out of memory");
        loc = dflt;
    }
    rc = bgr_results_open(loc, &ro, out, err);
    free(dflt);
    if (!rc && (rc = bgr_results_check(*out, err)) != 0) {
        bgr_results_close(*out);
        *out = NULL;
    }
    if (!rc)
        bgr_log(BGR_LOG_INFO, "results stored in %s", bgr_results_location(*out));
    return rc;
}

/* The jobs' per-image hook (a worker thread): every processed image, batch
 * items included, lands in the processing-time histogram. */
static void image_done(void *ctx, bool ok, int64_t processing_ms)
{
    if (ok)
        bgr_http_metrics_processing(ctx, (double)processing_ms);
}

int bgr_cmd_serve(int argc, char **argv)
{
    return bgr_cli_run_node(argc, argv, false);
}

int bgr_cli_run_node(int argc, char **argv, bool worker)
{
    const char *cmd = worker ? "worker" : "serve";
    bool listen_given = false;
    struct bgr_serve_config cfg;
    struct bgr_error e = {0};
    struct bgr_store *store = NULL;
    struct bgr_results *results = NULL;
    struct bgr_http_server *http = NULL;
    struct bgr_http_metrics *metrics = NULL;
    struct bgr_model *model = NULL;
    struct bgr_jobs *jobs = NULL;
    struct bgr_api api = {0};
    char *model_path = NULL, *cert = NULL, *key = NULL;
    int status = BGR_EXIT_FAIL;

    bgr_serve_config_init(&cfg);
    bool init = false;
    int rc = load_config(cmd, argc, argv, &cfg, &init, &listen_given);
    if (rc) {
        bgr_serve_config_release(&cfg);
        return rc == 100 ? BGR_EXIT_OK : rc;
    }
    bgr_log_set_level(level_of(cfg.log_level));

    /* Signals are taken by sigwait in this thread only: block them before
     * any thread starts so every thread inherits the mask. */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    (void)signal(SIGPIPE, SIG_IGN);

    /* An API node without workers needs neither the model nor its memory. */
    bool api_only = !worker && cfg.workers == 0;
    if (worker && cfg.workers == 0) {
        bgr_serve_config_release(&cfg);
        return bgr_cli_usage_error(cmd, "a worker needs --workers 1 or more");
    }
    if (bgr_net_global_init(&e) || bgr_pipeline_global_init(&e))
        goto fail;
    if (!api_only &&
        bgr_models_resolve(cfg.model, cfg.model_dir[0] ? cfg.model_dir : NULL, &model_path, &e))
        goto fail;
    /* A mistyped --data-dir must not quietly serve a new, empty store: one
     * is created only with --init or in a new (or empty) directory. */
    struct bgr_store_opts sopts = {.url = cfg.store,
                                   .plans = cfg.plans,
                                   .n_plans = BGR_PLAN_DEFAULT_COUNT,
                                   .pool_size = (int)cfg.workers + 8,
                                   .create = worker ? BGR_STORE_MUST_EXIST
                                             : init ? BGR_STORE_CREATE
                                                    : BGR_STORE_IF_EMPTY};
    if (bgr_store_open(cfg.data_dir, &sopts, &store, &e))
        goto fail;
    {
        char where[512];
        bgr_store_describe(store, where, sizeof(where));
        bgr_log(BGR_LOG_INFO, "%s store in %s",
                bgr_store_created(store) ? "created a new, empty" : "using the", where);
    }
    if ((worker || api_only) && !bgr_store_shared(store)) {
        bgr_error_set(&e, BGR_EUSAGE,
                      "%s needs a store shared with %s: --store postgresql://... (SQLite in a"
                      " data directory belongs to one server, which has workers of its own)",
                      worker ? "a worker" : "--workers 0",
                      worker ? "the API nodes" : "`bgremover worker` processes");
        goto fail;
    }
    /* the node's own scratch (S3 downloads being served, ...): with a
     * PostgreSQL store nothing else has made the directory */
    if (bgr_mkdir_p(cfg.data_dir, &e))
        goto fail;
    if (open_results(&cfg, &results, &e))
        goto fail;
    if (cfg.tls_cert[0] &&
        (!(cert = read_pem(cfg.tls_cert, &e)) || !(key = read_pem(cfg.tls_key, &e))))
        goto fail;

    metrics = bgr_http_metrics_new();
    api.store = store;
    api.results = results;
    api.metrics = metrics;
    api.cfg = &cfg;
    size_t nroutes;
    const struct bgr_http_route *routes =
        worker ? bgr_api_routes_ops(&nroutes) : bgr_api_routes_for(cfg.web, &nroutes);
    struct bgr_http_config hc = {
        .listen = cfg.listen,
        .tls_cert_pem = cert,
        .tls_key_pem = key,
        .max_connections = (unsigned)cfg.max_connections,
        .header_timeout_s = (unsigned)cfg.header_timeout_s,
        .max_inflight_body_bytes = (size_t)cfg.max_inflight_body_bytes,
        .routes = routes,
        .nroutes = nroutes,
        .prepare = bgr_api_prepare,
        .finish = bgr_api_finish,
        .app = &api,
        .metrics = metrics,
        .access_log = cfg.access_log,
        .max_connections_per_ip = (unsigned)cfg.max_connections_per_ip,
        .body_min_rate = (unsigned)cfg.body_min_rate,
        .body_grace_s = (unsigned)cfg.body_grace_s,
        .unauth_conn_pct = (unsigned)cfg.unauth_conn_pct,
        .uploads_per_owner = (unsigned)cfg.uploads_per_account,
        .tls_priorities = cfg.tls_priorities,
        .hsts_max_age_s = (unsigned)cfg.hsts_max_age_s,
    };
    /* public_url must be known before the first request, and may depend on
     * the port actually bound: derive it from the listen address when it is
     * not configured and the port is fixed, else fix it up just after start. */
    if (cfg.public_url[0])
        (void)snprintf(api.public_url, sizeof api.public_url, "%s", cfg.public_url);
    if (worker && !listen_given) {
        /* no HTTP: webhooks and output URLs still need the API's base */
        if (!cfg.public_url[0])
            bgr_log(BGR_LOG_WARN, "worker: no --public-url: result URLs in webhooks will say"
                                  " http://localhost:8080");
        (void)snprintf(api.public_url, sizeof api.public_url, "%s",
                       cfg.public_url[0] ? cfg.public_url : "http://localhost:8080");
        printf("bgremover: worker started (no HTTP: give --listen for /healthz, /readyz and"
               " /metrics)\n");
        (void)fflush(stdout);
        goto model;
    }
    if (bgr_http_server_start(&hc, &http, &e))
        goto fail;
    if (!cfg.public_url[0] && worker)
        (void)snprintf(api.public_url, sizeof api.public_url, "http://localhost:8080");
    else if (!cfg.public_url[0])
        (void)snprintf(api.public_url, sizeof api.public_url, "%s://localhost:%u",
                       cert ? "https" : "http", (unsigned)bgr_http_server_port(http));
    size_t plen = strlen(api.public_url);
    while (plen && api.public_url[plen - 1] == '/')
        api.public_url[--plen] = '\0';
    char where[300];
    bound_url(cfg.listen, cert ? "https" : "http", bgr_http_server_port(http), where, sizeof where);
    printf("bgremover: serving on %s (port %u), public URL %s\n", where,
           (unsigned)bgr_http_server_port(http), api.public_url);
    (void)fflush(stdout);
    if (cfg.web)
        bgr_log(BGR_LOG_INFO, "web page at %s/ (API reference at %s/docs)", api.public_url,
                api.public_url);

model:;
    double t0 = bgr_now_sec();
    struct bgr_model_opts mo = {
        .backend = strcmp(cfg.backend, "ref") == 0 ? BGR_BACKEND_REF : BGR_BACKEND_DNNL,
        .precision = precision_of(cfg.precision),
        .n_threads = (int)cfg.threads,
    };
    if (api_only) {
        bgr_log(BGR_LOG_INFO, "API node: no local workers, no model (bgremover worker processes"
                              " take the images)");
    } else if ((rc = bgr_model_load_file(model_path, &mo, &model, &e)) != 0) {
        /* The engine refuses what it cannot do (int8 without its calibration
         * file, bf16 without the CPU support): stop rather than serve
         * without a model, and say which settings were refused. */
        char why[sizeof e.msg];
        (void)snprintf(why, sizeof why, "%s", e.msg);
        bgr_error_set(&e, rc, "cannot load the model (backend %s, precision %s): %s", cfg.backend,
                      cfg.precision, why);
        goto fail;
    }
    if (model)
        bgr_log(BGR_LOG_INFO, "model %s loaded in %.2f s (%s)", model_path, bgr_now_sec() - t0,
                bgr_model_precision_name(model));

    struct bgr_jobs_config jc;
    bgr_jobs_config_init(&jc);
    jc.public_url = api.public_url;
    jc.workers = (int)cfg.workers;
    jc.api_only = api_only;
    jc.job_lease_ms = cfg.job_lease_s * 1000;
    jc.job_max_attempts = (int)cfg.job_max_attempts;
    jc.sync_wait_ms = cfg.sync_wait_s * 1000;
    jc.renders = bgr_api_renders(&jc.n_renders);
    jc.queue_size = (int)cfg.queue_size;
    jc.allow_private_urls = cfg.allow_private_urls;
    jc.model = model;
    jc.limits.max_pixels = (uint64_t)cfg.max_pixels;
    jc.limits.max_side = (int)cfg.max_image_side;
    jc.limits.max_jpeg_scans = (int)cfg.max_jpeg_scans;
    jc.webhook_base_ms = cfg.webhook_retry_base_s * 1000;
    jc.webhook_max_attempts = (int)cfg.webhook_max_attempts;
    jc.sweep_interval_ms = cfg.sweep_interval_s * 1000;
    jc.fetch_total_timeout_ms = (long)cfg.fetch_timeout_s * 1000;
    jc.fetch_workers = (int)cfg.fetch_workers;
    jc.fetch_per_account = (int)cfg.fetch_per_account;
    jc.fetch_buffer = (int)cfg.fetch_buffer;
    jc.webhook_workers = (int)cfg.webhook_workers;
    jc.webhook_per_host = (int)cfg.webhook_per_host;
    jc.job_timeout_ms = cfg.job_timeout_s * 1000;
    jc.on_image = image_done;
    jc.on_image_ctx = metrics;
    jc.results = results;
    if (bgr_jobs_start(store, &jc, &jobs, &e))
        goto fail;
    bgr_api_set_jobs(&api, jobs);
    bgr_log(BGR_LOG_INFO, "ready: %lld workers, queue %lld", (long long)cfg.workers,
            (long long)cfg.queue_size);

    int sig = 0;
    sigwait(&stop_sigs, &sig);
    bgr_log(BGR_LOG_INFO, "signal %d: shutting down", sig);
    status = BGR_EXIT_OK;
    goto cleanup;
fail:
    bgr_cli_error(cmd, "%s", e.msg[0] ? e.msg : "start-up failed");
cleanup:
    bgr_http_server_stop(http); /* no request runs after this */
    bgr_api_set_jobs(&api, NULL);
    bgr_jobs_stop(jobs);
    bgr_model_free(model);
    bgr_results_close(results); /* after the jobs and the HTTP server: nothing uses it now */
    bgr_store_close(store);
    bgr_http_metrics_free(metrics);
    free(model_path);
    free(cert);
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    bgr_serve_config_release(&cfg);
    return status;
}
