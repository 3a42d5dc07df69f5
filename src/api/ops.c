/*
 * ops.c - the operational endpoints: /healthz (the process answers),
 * /readyz (the model is loaded and the job system runs: 503 otherwise),
 * /metrics (Prometheus text) and /v1/openapi.json (the repository's
 * docs/openapi.json, embedded in the binary at build time).
 */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void api_healthz(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)app;
    (void)req;
    bgr_http_reply_data(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)req;
    if (!api_jobs(app)) {
        bgr_http_reply_error(resp, BGR_ESERVICE_BUSY, "The model is still loading");
        resp->retry_after_s = 5;
        return;
    }
    /* The outcome of the last request to the results store (never a
     * network wait here: this runs on an event-loop thread); the sweeper
     * probes a failing S3 store every round. */
    struct bgr_api *api = app;
    if (api->store && !bgr_store_healthy(api->store)) {
        bgr_http_reply_error(resp, BGR_ESERVICE_BUSY, "The database is unreachable");
        resp->retry_after_s = 5;
        return;
    }
    if (api->results && !bgr_results_healthy(api->results)) {
        bgr_http_reply_error(resp, BGR_ESERVICE_BUSY, "The result storage is unreachable");
        resp->retry_after_s = 5;
        return;
    }
    bgr_http_reply_data(resp, 200, json_pack("{s:s}", "status", "ready"));
}

/* /metrics shows the body budget, the queue and failure counts: enough to
 * time an attack (issue 13). With metrics_token set it needs that bearer
 * token (compared in constant time) from anywhere; without, it answers
 * only clients on the loopback interface, where a local Prometheus or an
 * operator's curl runs, so the default stays convenient. */
static bool metrics_allowed(const struct bgr_api *api, const struct bgr_http_req *req)
{
    const char *tok = api->cfg ? api->cfg->metrics_token : NULL;
    if (!tok || !tok[0])
        return bgr_http_req_from_loopback(req);
    const char *auth = bgr_http_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return false;
    auth += 7;
    size_t n = strlen(tok), m = strlen(auth);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(tok[i] ^ auth[i < m ? i : 0]);
    return diff == 0;
}

void api_metrics(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    struct bgr_jobs *jobs = api_jobs(api);
    struct bgr_jobs_stats st = {0};
    struct bgr_error e = {0};
    struct bgr_buf b;
    if (!metrics_allowed(api, req)) {
        bgr_http_reply_error(resp, BGR_EUNAUTHORIZED,
                             api->cfg && api->cfg->metrics_token && api->cfg->metrics_token[0]
                                 ? "/metrics needs Authorization: Bearer <metrics_token>"
                                 : "/metrics answers loopback clients only unless metrics_token "
                                   "is set");
        return;
    }
    if (jobs)
        bgr_jobs_get_stats(jobs, &st);
    struct bgr_http_gauge g[] = {
        {"bgremover_queue_depth", "Sync jobs waiting for a worker.", st.queue_depth, NULL},
        {"bgremover_batch_backlog", "Batch items waiting for a worker.", st.backlog, NULL},
        {"bgremover_jobs_in_flight", "Jobs running on workers.", st.in_flight, NULL},
        {"bgremover_workers", "Worker threads.", st.workers, NULL},
        {"bgremover_ready", "1 once the model is loaded.", jobs ? 1 : 0, NULL},
        {"bgremover_images_processed_total",
         "Images processed by the workers since start (requests and batch items).",
         (double)st.processed, "counter"},
        {"bgremover_images_failed_total", "Images that failed on the workers since start.",
         (double)st.failed, "counter"},
    };
    bgr_buf_init(&b, 1024 * 1024);
    if (bgr_http_metrics_render(api->metrics, g, BGR_ARRAY_LEN(g), &b, &e) != 0) {
        bgr_buf_release(&b);
        api_reply_err(resp, BGR_EINTERNAL, &e);
        return;
    }
    bgr_http_reply_buf(resp, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

/* The embedded document, with "servers" naming this server (its public_url)
 * rather than the repository's http://localhost:8080, so generated clients
 * and "try it" tools reach the server that served it. Built per request: the
 * document is small and rarely asked for (and cached by clients for an
 * hour). */
void api_openapi(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    struct bgr_api *api = app;
    json_error_t je;
    (void)req;
    json_t *doc = json_loadb((const char *)bgr_api_openapi_json, bgr_api_openapi_json_len, 0, &je);
    BGR_ASSERT(doc != NULL); /* embedded at build time from a checked file */
    json_t *servers = json_pack("[{s:s,s:s}]", "url", api->public_url, "description",
                                "this server (its public_url)");
    if (!servers || json_object_set_new(doc, "servers", servers) != 0) {
        json_decref(doc);
        bgr_http_reply_error(resp, BGR_ENOMEM, NULL);
        return;
    }
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!text) {
        bgr_http_reply_error(resp, BGR_ENOMEM, NULL);
        return;
    }
    bgr_http_reply_bytes(resp, 200, "application/json", text, strlen(text));
    free(text);
    bgr_http_resp_header(resp, "Cache-Control", "public, max-age=3600");
}
