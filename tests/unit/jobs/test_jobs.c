/* Unit tests of src/jobs with a stand-in process function (no model): the
 * queue bound, committed sync results, webhook signing, backoff and outbox
 * retries against a listener that fails the first attempts, batches to
 * completion, and resumption of a batch a "crash" left half done. */
#define _GNU_SOURCE
#include "../net/test_httpd.h"
#include "jobs/jobs.h"
#include "runner.h"
#include "tmp_dir.h"

#include <ftw.h>
#include <sys/stat.h>
#include <time.h>

/* ---- fixtures ---------------------------------------------------------------- */

static char *tmp_dir(void)
{
    return tmp_dir_named("jobs");
}

/* The stand-in pipeline: "OUT:" + input; "BAD..." is unreadable; "WAIT..."
 * blocks until the gate opens (to fill the queue deterministically). */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open = true;

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static int fake_process(void *ctx, const void *data, size_t len,
                        const struct bgr_decode_limits *lim, const struct bgr_output_opts *opts,
                        struct bgr_result *res, struct bgr_error *err)
{
    (void)ctx;
    (void)lim;
    if (len >= 3 && memcmp(data, "BAD", 3) == 0)
        return bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT, "not an image");
    if (len >= 4 && memcmp(data, "WAIT", 4) == 0) {
        pthread_mutex_lock(&gate_mu);
        while (!gate_open)
            pthread_cond_wait(&gate_cv, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    }
    memset(res, 0, sizeof(*res));
    res->data = malloc(len + 4); /* released with g_free: the system allocator */
    memcpy(res->data, "OUT:", 4);
    memcpy(res->data + 4, data, len);
    res->len = len + 4;
    res->format = opts->format;
    res->width = 32;
    res->height = 24;
    res->original_width = 64;
    res->original_height = 48;
    res->mime = opts->format == BGR_FORMAT_WEBP ? "image/webp" : "image/png";
    res->ext = opts->format == BGR_FORMAT_WEBP ? "webp" : "png";
    return 0;
}

/* The listener: serves /img*, and records webhooks on /hook, failing the
 * first `fail_first` deliveries with HTTP 500. */
struct listener {
    struct thttpd srv;
    pthread_mutex_t mu;
    int fail_first;
    int hook_hits;
    int sig_ok;
    char secret[BGR_SECRET_MAX];
    char last_event_id[64];
    bool event_id_stable;
    char last_body[16384];
};

static void on_request(void *ctx, const struct thttpd_req *r, char **out, size_t *len)
{
    struct listener *l = ctx;
    if (strncmp(r->path, "/img", 4) == 0) {
        const char *body = strstr(r->path, "bad")    ? "BADBYTES"
                           : strstr(r->path, "wait") ? "WAITBYTES"
                                                     : "IMAGEBYTES";
        thttpd_respond(out, len, 200, "Content-Type: image/png\r\n", body, strlen(body), true);
        return;
    }
    if (strcmp(r->path, "/hook") == 0) {
        char id[64] = "", ts[32] = "", sig[128] = "", want[68];
        int status;
        thttpd_header(r, BGR_WEBHOOK_HDR_ID, id, sizeof(id));
        thttpd_header(r, BGR_WEBHOOK_HDR_TS, ts, sizeof(ts));
        thttpd_header(r, BGR_WEBHOOK_HDR_SIG, sig, sizeof(sig));
        pthread_mutex_lock(&l->mu);
        bgr_webhook_sign(l->secret, strtoll(ts, NULL, 10), r->body, r->body_len, want);
        if (strcmp(want, sig) == 0)
            l->sig_ok++;
        if (l->hook_hits > 0 && strcmp(id, l->last_event_id) != 0)
            l->event_id_stable = false;
        snprintf(l->last_event_id, sizeof(l->last_event_id), "%s", id);
        snprintf(l->last_body, sizeof(l->last_body), "%.*s", (int)r->body_len, r->body);
        status = l->hook_hits++ < l->fail_first ? 500 : 200;
        pthread_mutex_unlock(&l->mu);
        thttpd_respond(out, len, status, "", "ok", 2, true);
        return;
    }
    thttpd_respond(out, len, 404, "", "no", 2, true);
}

struct env {
    char *dir;
    struct bgr_store *store;
    struct bgr_jobs *jobs;
    struct bgr_account acct;
    struct listener l;
    char url[256];
};

static bool env_open(struct env *v, const char *plan, const struct bgr_store_opts *so)
{
    struct bgr_error e = {0};
    memset(v, 0, sizeof(*v));
    v->dir = tmp_dir();
    pthread_mutex_init(&v->l.mu, NULL);
    v->l.event_id_stable = true;
    if (bgr_store_open(v->dir, so, &v->store, &e) != 0 ||
        bgr_store_account_create(v->store, "j@example.com", plan, bgr_wall_ms(), &v->acct, &e) !=
            0 ||
        thttpd_start(&v->l.srv, on_request, &v->l) != 0) {
        fprintf(stderr, "  env: %s\n", e.msg);
        return false;
    }
    memcpy(v->l.secret, v->acct.webhook_secret, sizeof(v->l.secret));
    return true;
}

static int images_ok, images_failed; /* via on_image */

static void on_image(void *ctx, bool ok, int64_t ms)
{
    (void)ctx;
    (void)ms;
    __atomic_add_fetch(ok ? &images_ok : &images_failed, 1, __ATOMIC_SEQ_CST);
}

/* Per test (each runs in a child process of its own). */
static int64_t opt_job_timeout_ms;
static bool opt_guard_on; /* the SSRF guard's address check (off in most tests) */

static bool env_start_jobs(struct env *v, int workers, int queue)
{
    struct bgr_jobs_config c;
    struct bgr_error e = {0};
    bgr_jobs_config_init(&c);
    c.public_url = "http://api.test/";
    c.workers = workers;
    c.queue_size = queue;
    c.allow_private_urls = !opt_guard_on;
    c.job_timeout_ms = opt_job_timeout_ms;
    c.process = fake_process;
    c.webhook_base_ms = 40;
    c.webhook_max_attempts = 4;
    c.webhook_timeout_ms = 2000;
    c.on_image = on_image;
    if (bgr_jobs_start(v->store, &c, &v->jobs, &e) != 0) {
        fprintf(stderr, "  jobs: %s\n", e.msg);
        return false;
    }
    return true;
}

static const char *env_url(struct env *v, const char *path)
{
    snprintf(v->url, sizeof(v->url), "http://127.0.0.1:%d%s", v->l.srv.port, path);
    return v->url;
}

static void env_close(struct env *v)
{
    bgr_jobs_stop(v->jobs);
    thttpd_stop(&v->l.srv);
    bgr_store_close(v->store);
    pthread_mutex_destroy(&v->l.mu);
    rm_rf(v->dir);
    free(v->dir);
}

static int hook_hits(struct env *v)
{
    int n;
    pthread_mutex_lock(&v->l.mu);
    n = v->l.hook_hits;
    pthread_mutex_unlock(&v->l.mu);
    return n;
}

/* ---- pure functions ------------------------------------------------------------ */

BGR_TEST(webhook_signature)
{
    char sig[68];
    /* Reference: Python's hmac module on the same inputs. */
    bgr_webhook_sign("whsec_test", 1700000000, "{\"a\":1}", 7, sig);
    BGR_CHECK_STR(sig, "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
    bgr_webhook_sign("whsec_test", 1700000001, "{\"a\":1}", 7, sig);
    BGR_CHECK(strcmp(sig, "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789") !=
              0);
}

BGR_TEST(backoff_schedule)
{
    int64_t total = 0;
    BGR_CHECK_EQ_INT(bgr_webhook_backoff_ms(15000, 9, 1), 15000);
    BGR_CHECK_EQ_INT(bgr_webhook_backoff_ms(15000, 9, 2), 30000);
    BGR_CHECK_EQ_INT(bgr_webhook_backoff_ms(15000, 9, 8), 15000 * 128);
    BGR_CHECK_EQ_INT(bgr_webhook_backoff_ms(15000, 9, 9), 0); /* give up */
    BGR_CHECK_EQ_INT(bgr_webhook_backoff_ms(15000, 9, 0), 0);
    for (int a = 1; a < 9; a++)
        total += bgr_webhook_backoff_ms(15000, 9, a);
    /* The default schedule spans about an hour. */
    BGR_CHECK(total >= 55 * 60000 && total <= 70 * 60000);
}

BGR_TEST(image_json_shape)
{
    struct bgr_image m = {0};
    json_t *o;
    snprintf(m.id, sizeof(m.id), "img_abc");
    snprintf(m.ext, sizeof(m.ext), "jpg");
    snprintf(m.format, sizeof(m.format), "jpeg");
    m.width = 3;
    m.credits = 1;
    m.expires_at_ms = bgr_day_from_ymd(2026, 2, 14) * 86400000LL + 81000000LL;
    o = bgr_jobs_image_json(&m, "https://x.test");
    BGR_REQUIRE(o);
    BGR_CHECK_STR(json_string_value(json_object_get(o, "output_url")),
                  "https://x.test/v1/results/img_abc.jpg");
    BGR_CHECK_STR(json_string_value(json_object_get(o, "format")), "jpeg");
    BGR_CHECK_STR(json_string_value(json_object_get(o, "expires_at")), "2026-02-14T22:30:00Z");
    BGR_CHECK_EQ_INT(json_integer_value(json_object_get(o, "credits_used")), 1);
    BGR_CHECK_EQ_INT(json_object_size(o), 13);
    /* no subject: null; confidence rounded to 3 decimals */
    BGR_CHECK(json_is_null(json_object_get(o, "subject")));
    BGR_CHECK(json_is_real(json_object_get(o, "confidence")));
    json_decref(o);

    m.confidence = 0.81234;
    m.subject_x = 1, m.subject_y = 2, m.subject_w = 30, m.subject_h = 40;
    o = bgr_jobs_image_json(&m, "https://x.test");
    BGR_REQUIRE(o);
    double d = json_real_value(json_object_get(o, "confidence")) - 0.812;
    BGR_CHECK(d < 1e-12 && d > -1e-12);
    json_t *s = json_object_get(o, "subject");
    BGR_CHECK_EQ_INT(json_integer_value(json_object_get(s, "x")), 1);
    BGR_CHECK_EQ_INT(json_integer_value(json_object_get(s, "y")), 2);
    BGR_CHECK_EQ_INT(json_integer_value(json_object_get(s, "width")), 30);
    BGR_CHECK_EQ_INT(json_integer_value(json_object_get(s, "height")), 40);
    json_decref(o);

    m.confidence = -1; /* a row stored before the score existed */
    o = bgr_jobs_image_json(&m, "https://x.test");
    BGR_REQUIRE(o);
    BGR_CHECK(json_is_null(json_object_get(o, "confidence")));
    json_decref(o);
}

/* ---- sync jobs -------------------------------------------------------------------- */

BGR_TEST(sync_result_committed)
{
    struct env v;
    struct bgr_remove_req r = {0};
    struct bgr_image img, got;
    struct bgr_error e = {0};
    struct bgr_buf file;
    char path[512];
    int64_t used = 0;
    BGR_REQUIRE(env_open(&v, "free", NULL) && env_start_jobs(&v, 1, 4));
    images_ok = images_failed = 0;
    r.acct = &v.acct;
    r.data = "PIXELS";
    r.len = 6;
    bgr_output_opts_init(&r.opts);
    r.opts.format = BGR_FORMAT_WEBP;
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), 0);
    BGR_CHECK(strncmp(img.id, "img_", 4) == 0);
    BGR_CHECK_STR(img.ext, "webp");
    BGR_CHECK_EQ_INT(img.size_bytes, 10);
    BGR_CHECK_EQ_INT(img.expires_at_ms - img.created_at_ms, 86400000LL);
    /* Committed before the call returned, file in place. */
    BGR_CHECK_EQ_INT(bgr_store_image_get(v.store, img.id, v.acct.id, bgr_wall_ms(), &got, &e), 0);
    /* Today's layout: <data-dir>/results/<id>.<ext> (the jobs' default). */
    BGR_CHECK(strlen(got.path) == 31 && strcmp(got.path + 26, ".webp") == 0);
    snprintf(path, sizeof(path), "%s/results/%s", v.dir, got.path);
    BGR_REQUIRE(bgr_file_read(path, 0, &file, &e) == 0);
    BGR_CHECK(file.len == 10 && memcmp(file.data, "OUT:PIXELS", 10) == 0);
    bgr_buf_release(&file);
    BGR_CHECK_EQ_INT(bgr_store_credits(v.store, &v.acct, bgr_wall_ms(), &used, NULL, &e), 0);
    BGR_CHECK_EQ_INT(used, 1);

    /* By URL (fetched on this thread), and a failure charges nothing. */
    r.data = NULL;
    r.len = 0;
    r.image_url = env_url(&v, "/img.png");
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), 0);
    r.image_url = env_url(&v, "/img-bad.png");
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), BGR_EUNSUPPORTED_FORMAT);
    r.image_url = env_url(&v, "/nothing");
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK_EQ_INT(bgr_store_credits(v.store, &v.acct, bgr_wall_ms(), &used, NULL, &e), 0);
    BGR_CHECK_EQ_INT(used, 2);
    BGR_CHECK_EQ_INT(__atomic_load_n(&images_ok, __ATOMIC_SEQ_CST), 2);
    BGR_CHECK_EQ_INT(__atomic_load_n(&images_failed, __ATOMIC_SEQ_CST),
                     1); /* the download never queued */
    /* Both sources, or neither: refused. */
    r.data = "x";
    r.len = 1;
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), BGR_EINVALID_PARAMETER);
    env_close(&v);
}

struct caller {
    struct bgr_jobs *jobs;
    struct bgr_remove_req r;
    struct bgr_image img;
    int rc;
};

static void *call_remove(void *arg)
{
    struct caller *c = arg;
    struct bgr_error e;
    c->rc = bgr_jobs_remove(c->jobs, &c->r, &c->img, &e);
    return NULL;
}

BGR_TEST(queue_bound_busy)
{
    struct env v;
    struct caller c[3];
    pthread_t th[3];
    struct bgr_jobs_stats st = {0};
    struct bgr_image img;
    struct bgr_error e = {0};
    struct bgr_remove_req r = {0};
    BGR_REQUIRE(env_open(&v, "pro", NULL) && env_start_jobs(&v, 1, 2));
    gate_set(false);
    /* The first job goes to the worker (held by the gate), then two more
     * wait: the queue is full. Started in that order so the worker has
     * taken the first before the others arrive. */
    for (int i = 0; i < 3; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].jobs = v.jobs;
        c[i].r.acct = &v.acct;
        c[i].r.data = "WAIT";
        c[i].r.len = 4;
        bgr_output_opts_init(&c[i].r.opts);
        pthread_create(&th[i], NULL, call_remove, &c[i]);
        for (int k = 0; k < 10000; k++) {
            bgr_jobs_get_stats(v.jobs, &st);
            if (st.in_flight == 1 && st.queue_depth == i)
                break;
            usleep(1000);
        }
    }
    BGR_CHECK_EQ_INT(st.in_flight, 1);
    BGR_CHECK_EQ_INT(st.queue_depth, 2);
    r.acct = &v.acct;
    r.data = "X";
    r.len = 1;
    bgr_output_opts_init(&r.opts);
    if (st.in_flight == 1 && st.queue_depth == 2) /* else the call would wait for the gate */
        BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), BGR_ESERVICE_BUSY);
    BGR_CHECK_EQ_INT(bgr_err_http_status(BGR_ESERVICE_BUSY), 503);
    gate_set(true);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        BGR_CHECK_EQ_INT(c[i].rc, 0);
    }
    BGR_CHECK(strcmp(c[0].img.id, c[1].img.id) != 0);
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), 0); /* room again */
    bgr_jobs_get_stats(v.jobs, &st);
    BGR_CHECK_EQ_INT(st.processed, 4);
    env_close(&v);
}

BGR_TEST(one_server_per_data_dir)
{
    struct env v;
    struct bgr_jobs *second = NULL;
    struct bgr_jobs_config c;
    struct bgr_error e = {0};
    BGR_REQUIRE(env_open(&v, "pro", NULL) && env_start_jobs(&v, 1, 4));
    bgr_jobs_config_init(&c);
    c.process = fake_process;
    BGR_CHECK_EQ_INT(bgr_jobs_start(v.store, &c, &second, &e), BGR_EIO);
    BGR_CHECK(strstr(e.msg, "another server") != NULL);
    bgr_jobs_stop(v.jobs);
    v.jobs = NULL;
    BGR_CHECK_EQ_INT(bgr_jobs_start(v.store, &c, &second, &e), 0); /* free again */
    v.jobs = second;
    env_close(&v);
}

BGR_TEST(credits_exhausted)
{
    struct bgr_plan plans[BGR_PLAN_DEFAULT_COUNT];
    struct bgr_store_opts so = {0};
    struct env v;
    struct bgr_remove_req r = {0};
    struct bgr_image img;
    struct bgr_error e = {0};
    bgr_plan_defaults(plans);
    plans[0].monthly_credits = 1; /* a tiny free plan */
    so.plans = plans;
    so.n_plans = BGR_PLAN_DEFAULT_COUNT;
    BGR_REQUIRE(env_open(&v, "free", &so) && env_start_jobs(&v, 1, 4));
    r.acct = &v.acct;
    r.data = "A";
    r.len = 1;
    bgr_output_opts_init(&r.opts);
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), 0);
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), BGR_EINSUFFICIENT_CREDITS);
    BGR_CHECK_EQ_INT(bgr_err_http_status(BGR_EINSUFFICIENT_CREDITS), 402);
    env_close(&v);
}

/* ---- webhooks ------------------------------------------------------------------------ */

static bool wait_hits(struct env *v, int n, int ms)
{
    for (int i = 0; i < ms / 5; i++) {
        if (hook_hits(v) >= n)
            return true;
        usleep(5000);
    }
    return hook_hits(v) >= n;
}

BGR_TEST(webhook_retried_until_delivered)
{
    struct env v;
    struct bgr_remove_req r = {0};
    struct bgr_image img;
    struct bgr_error e = {0};
    struct bgr_webhook w;
    json_t *body;
    BGR_REQUIRE(env_open(&v, "pro", NULL));
    v.l.fail_first = 2; /* 500, 500, then 200 */
    BGR_REQUIRE(env_start_jobs(&v, 1, 4));
    r.acct = &v.acct;
    r.data = "PIXELS";
    r.len = 6;
    bgr_output_opts_init(&r.opts);
    r.webhook_url = env_url(&v, "/hook");
    BGR_REQUIRE(bgr_jobs_remove(v.jobs, &r, &img, &e) == 0);
    BGR_CHECK(wait_hits(&v, 3, 5000));
    BGR_CHECK(bgr_jobs_wait_idle(v.jobs, 5000));
    usleep(200000); /* a fourth (unwanted) delivery would land here */
    pthread_mutex_lock(&v.l.mu);
    BGR_CHECK_EQ_INT(v.l.hook_hits, 3);
    BGR_CHECK_EQ_INT(v.l.sig_ok, 3);
    BGR_CHECK(v.l.event_id_stable);
    BGR_CHECK(strncmp(v.l.last_event_id, "evt_", 4) == 0);
    body = json_loads(v.l.last_body, 0, NULL);
    pthread_mutex_unlock(&v.l.mu);
    BGR_REQUIRE(body);
    BGR_CHECK_STR(json_string_value(json_object_get(body, "event")), "image.completed");
    BGR_CHECK(json_is_string(json_object_get(body, "created_at")));
    BGR_CHECK_STR(json_string_value(json_object_get(json_object_get(body, "data"), "id")), img.id);
    json_decref(body);
    BGR_REQUIRE(bgr_store_outbox_get(v.store, v.l.last_event_id, &w, &e) == 0);
    BGR_CHECK_EQ_INT(w.status, BGR_WH_DELIVERED);
    BGR_CHECK_EQ_INT(w.attempts, 3);
    bgr_webhook_release(&w);
    env_close(&v);
}

BGR_TEST(webhook_gives_up_and_failure_event)
{
    struct env v;
    struct bgr_remove_req r = {0};
    struct bgr_image img;
    struct bgr_error e = {0};
    struct bgr_webhook w;
    json_t *body;
    BGR_REQUIRE(env_open(&v, "pro", NULL));
    v.l.fail_first = 1000;
    BGR_REQUIRE(env_start_jobs(&v, 1, 4)); /* 4 attempts: +40, +80, +160 ms */
    r.acct = &v.acct;
    r.data = "BAD";
    r.len = 3;
    bgr_output_opts_init(&r.opts);
    r.webhook_url = env_url(&v, "/hook");
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), BGR_EUNSUPPORTED_FORMAT);
    BGR_CHECK(wait_hits(&v, 4, 5000));
    BGR_CHECK(bgr_jobs_wait_idle(v.jobs, 5000));
    usleep(300000);
    pthread_mutex_lock(&v.l.mu);
    BGR_CHECK_EQ_INT(v.l.hook_hits, 4);
    body = json_loads(v.l.last_body, 0, NULL);
    pthread_mutex_unlock(&v.l.mu);
    BGR_REQUIRE(body);
    BGR_CHECK_STR(json_string_value(json_object_get(body, "event")), "image.failed");
    BGR_CHECK_STR(json_string_value(json_object_get(
                      json_object_get(json_object_get(body, "data"), "error"), "code")),
                  "UNSUPPORTED_FORMAT");
    json_decref(body);
    BGR_REQUIRE(bgr_store_outbox_get(v.store, v.l.last_event_id, &w, &e) == 0);
    BGR_CHECK_EQ_INT(w.status, BGR_WH_FAILED);
    BGR_CHECK_EQ_INT(w.attempts, 4);
    BGR_CHECK(strstr(w.last_error, "500") != NULL);
    bgr_webhook_release(&w);
    env_close(&v);
}

BGR_TEST(webhook_refused_address_not_retried)
{
    struct env v;
    struct bgr_remove_req r = {0};
    struct bgr_image img;
    struct bgr_error e = {0};
    int64_t next = -1;
    BGR_REQUIRE(env_open(&v, "pro", NULL));
    opt_guard_on = true; /* 127.0.0.1 is refused at delivery */
    BGR_REQUIRE(env_start_jobs(&v, 1, 4));
    r.acct = &v.acct;
    r.data = "BAD";
    r.len = 3;
    bgr_output_opts_init(&r.opts);
    r.webhook_url = env_url(&v, "/hook");
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), BGR_EUNSUPPORTED_FORMAT);
    /* one attempt, failed for good: nothing pending (a retry would be due
     * 40 ms later, and would be seen pending until its 4th attempt) */
    BGR_CHECK(bgr_jobs_wait_idle(v.jobs, 5000));
    BGR_CHECK_EQ_INT(bgr_store_outbox_next_due(v.store, &next, &e), 0);
    BGR_CHECK_EQ_INT(next, 0);
    usleep(200000);
    BGR_CHECK_EQ_INT(hook_hits(&v), 0);
    env_close(&v);
}

/* ---- the ceiling ---------------------------------------------------------------------------- */

BGR_TEST(ceiling_answers_sync_and_frees_worker)
{
    struct env v;
    struct caller c = {0};
    struct bgr_remove_req r = {0};
    struct bgr_image img;
    struct bgr_error e = {0};
    pthread_t th;
    int64_t used = -1, t0;
    BGR_REQUIRE(env_open(&v, "pro", NULL));
    opt_job_timeout_ms = 300;
    BGR_REQUIRE(env_start_jobs(&v, 1, 4));
    gate_set(false);
    c.jobs = v.jobs;
    c.r.acct = &v.acct;
    c.r.data = "WAIT";
    c.r.len = 4;
    bgr_output_opts_init(&c.r.opts);
    t0 = bgr_now_ms();
    pthread_create(&th, NULL, call_remove, &c);
    pthread_join(th, NULL); /* answered while the run still blocks */
    BGR_CHECK_EQ_INT(c.rc, BGR_EPROCESSING_TIMEOUT);
    BGR_CHECK(bgr_now_ms() - t0 >= 290);
    BGR_CHECK(bgr_now_ms() - t0 < 10000);
    /* the only worker is stuck in the abandoned run: its replacement
     * serves the next request */
    r.acct = &v.acct;
    r.data = "IMG";
    r.len = 3;
    bgr_output_opts_init(&r.opts);
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), 0);
    gate_set(true); /* the abandoned run ends: discarded, not charged */
    BGR_CHECK(bgr_jobs_wait_idle(v.jobs, 5000));
    BGR_CHECK_EQ_INT(bgr_store_credits(v.store, &v.acct, bgr_wall_ms(), &used, NULL, &e), 0);
    BGR_CHECK_EQ_INT(used, 1);
    /* and the pool is back to one worker that still works */
    BGR_CHECK_EQ_INT(bgr_jobs_remove(v.jobs, &r, &img, &e), 0);
    env_close(&v);
}

/* ---- batches ------------------------------------------------------------------------------ */

static bool wait_batch(struct env *v, const char *id, int ms)
{
    struct bgr_batch b;
    struct bgr_error e;
    for (int i = 0; i < ms / 5; i++) {
        if (bgr_store_batch_get(v->store, id, NULL, &b, &e) == 0 && b.finished_at_ms)
            return true;
        usleep(5000);
    }
    return false;
}

BGR_TEST(batch_to_completion_with_webhook)
{
    struct env v;
    struct bgr_batch_item_new items[3];
    struct bgr_batch b;
    struct bgr_error e = {0};
    char u0[256], u1[256], u2[256];
    int64_t est = 0, used = 0;
    json_t *body, *data, *res;
    BGR_REQUIRE(env_open(&v, "pro", NULL) && env_start_jobs(&v, 2, 4));
    snprintf(u0, sizeof(u0), "%s", env_url(&v, "/img1.png"));
    snprintf(u1, sizeof(u1), "%s", env_url(&v, "/img-bad.png"));
    snprintf(u2, sizeof(u2), "%s", env_url(&v, "/img2.png"));
    memset(items, 0, sizeof(items));
    items[0].image_url = u0;
    items[1].image_url = u1;
    items[2].image_url = u2;
    for (int i = 0; i < 3; i++)
        bgr_output_opts_init(&items[i].opts);
    items[2].opts.format = BGR_FORMAT_WEBP;
    BGR_CHECK_EQ_INT(
        bgr_jobs_batch_submit(v.jobs, &v.acct, env_url(&v, "/hook"), items, 0, &b, &est, &e),
        BGR_EBATCH_TOO_LARGE);
    BGR_REQUIRE(
        bgr_jobs_batch_submit(v.jobs, &v.acct, env_url(&v, "/hook"), items, 3, &b, &est, &e) == 0);
    BGR_CHECK(est > 0);
    BGR_CHECK(wait_batch(&v, b.id, 5000));
    BGR_CHECK(wait_hits(&v, 1, 5000));
    BGR_CHECK(bgr_jobs_wait_idle(v.jobs, 5000));
    BGR_CHECK_EQ_INT(hook_hits(&v), 1); /* one webhook for the whole batch */
    pthread_mutex_lock(&v.l.mu);
    body = json_loads(v.l.last_body, 0, NULL);
    BGR_CHECK_EQ_INT(v.l.sig_ok, 1);
    pthread_mutex_unlock(&v.l.mu);
    BGR_REQUIRE(body);
    BGR_CHECK_STR(json_string_value(json_object_get(body, "event")), "batch.completed");
    data = json_object_get(body, "data");
    BGR_CHECK_STR(json_string_value(json_object_get(data, "batch_id")), b.id);
    BGR_CHECK_STR(json_string_value(json_object_get(data, "status")), "completed");
    BGR_CHECK_EQ_INT(json_integer_value(json_object_get(data, "completed")), 2);
    BGR_CHECK_EQ_INT(json_integer_value(json_object_get(data, "failed")), 1);
    res = json_object_get(data, "results");
    BGR_REQUIRE(json_array_size(res) == 3);
    BGR_CHECK_STR(json_string_value(
                      json_object_get(json_object_get(json_array_get(res, 1), "error"), "code")),
                  "UNSUPPORTED_FORMAT");
    BGR_CHECK(strstr(json_string_value(json_object_get(json_array_get(res, 2), "output_url")),
                     "http://api.test/v1/results/img_") != NULL);
    BGR_CHECK(strstr(json_string_value(json_object_get(json_array_get(res, 2), "output_url")),
                     ".webp") != NULL);
    json_decref(body);
    /* Another account cannot see it. */
    BGR_CHECK_EQ_INT(bgr_jobs_batch_json(v.store, "http://api.test", b.id, "usr_other", &data, &e),
                     BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_store_credits(v.store, &v.acct, bgr_wall_ms(), &used, NULL, &e), 0);
    BGR_CHECK_EQ_INT(used, 2);
    env_close(&v);
}

BGR_TEST(ceiling_fails_batch_item)
{
    struct env v;
    struct bgr_batch_item_new items[2];
    struct bgr_batch b;
    struct bgr_batch_item *its = NULL;
    struct bgr_error e = {0};
    char u0[256], u1[256];
    size_t n = 0;
    int64_t est, used = -1;
    BGR_REQUIRE(env_open(&v, "pro", NULL));
    opt_job_timeout_ms = 300;
    BGR_REQUIRE(env_start_jobs(&v, 1, 4));
    gate_set(false);
    snprintf(u0, sizeof(u0), "%s", env_url(&v, "/img-wait.png"));
    snprintf(u1, sizeof(u1), "%s", env_url(&v, "/img.png"));
    memset(items, 0, sizeof(items));
    items[0].image_url = u0;
    items[1].image_url = u1;
    bgr_output_opts_init(&items[0].opts);
    bgr_output_opts_init(&items[1].opts);
    BGR_REQUIRE(bgr_jobs_batch_submit(v.jobs, &v.acct, NULL, items, 2, &b, &est, &e) == 0);
    /* the batch finishes while the first item's run still blocks */
    BGR_CHECK(wait_batch(&v, b.id, 10000));
    BGR_REQUIRE(bgr_store_batch_items(v.store, b.id, &its, &n, &e) == 0 && n == 2);
    BGR_CHECK_EQ_INT(its[0].status, BGR_ITEM_FAILED);
    BGR_CHECK_STR(its[0].error_code, "PROCESSING_TIMEOUT");
    BGR_CHECK_EQ_INT(its[1].status, BGR_ITEM_COMPLETED);
    free(its);
    gate_set(true);
    BGR_CHECK(bgr_jobs_wait_idle(v.jobs, 5000));
    BGR_CHECK_EQ_INT(bgr_store_credits(v.store, &v.acct, bgr_wall_ms(), &used, NULL, &e), 0);
    BGR_CHECK_EQ_INT(used, 1);
    env_close(&v);
}

BGR_TEST(batch_resumes_after_crash)
{
    struct env v;
    struct bgr_batch_item_new items[4];
    struct bgr_batch b;
    struct bgr_batch_item *its = NULL;
    struct bgr_error e = {0};
    struct bgr_month_usage mu;
    char urls[4][256];
    size_t n = 0;
    int64_t *ids = NULL;
    BGR_REQUIRE(env_open(&v, "pro", NULL));
    memset(items, 0, sizeof(items));
    for (int i = 0; i < 4; i++) {
        snprintf(urls[i], sizeof(urls[i]), "%s", env_url(&v, "/img.png"));
        items[i].image_url = urls[i];
        bgr_output_opts_init(&items[i].opts);
    }
    /* The state a kill -9 leaves: a persisted batch, one item mid-processing,
     * one never started, two queued. No jobs ran. */
    BGR_REQUIRE(bgr_store_batch_create(v.store, v.acct.id, env_url(&v, "/hook"), items, 4, 20,
                                       bgr_wall_ms(), &b, &e) == 0);
    BGR_REQUIRE(bgr_store_items_recover(v.store, &ids, &n, &e) == 0 && n == 4);
    BGR_CHECK_EQ_INT(bgr_store_item_start(v.store, ids[0], bgr_wall_ms(), &e), 0);
    free(ids);
    bgr_store_close(v.store);
    BGR_REQUIRE(bgr_store_open(v.dir, NULL, &v.store, &e) == 0);

    /* Restart: every item finishes exactly once. */
    BGR_REQUIRE(env_start_jobs(&v, 2, 4));
    BGR_CHECK(wait_batch(&v, b.id, 5000));
    BGR_CHECK(wait_hits(&v, 1, 5000));
    BGR_CHECK(bgr_jobs_wait_idle(v.jobs, 5000));
    BGR_REQUIRE(bgr_store_batch_items(v.store, b.id, &its, &n, &e) == 0);
    BGR_REQUIRE(n == 4);
    for (size_t i = 0; i < n; i++) {
        BGR_CHECK_EQ_INT(its[i].status, BGR_ITEM_COMPLETED);
        BGR_CHECK(its[i].image.id[0] != 0);
    }
    BGR_CHECK_EQ_INT(its[0].attempts, 2); /* the crashed attempt and the resumed one */
    BGR_CHECK_EQ_INT(its[1].attempts, 1);
    free(its);
    BGR_CHECK_EQ_INT(bgr_store_usage_month(v.store, v.acct.id, bgr_wall_ms(), &mu, &e), 0);
    BGR_CHECK_EQ_INT(mu.images_processed, 4);
    BGR_CHECK_EQ_INT(mu.credits_used, 4);
    BGR_CHECK_EQ_INT(hook_hits(&v), 1);
    env_close(&v);
}

BGR_TEST(stop_leaves_batch_items_queued)
{
    struct env v;
    struct bgr_batch_item_new items[2];
    struct bgr_batch b, got;
    struct bgr_error e = {0};
    char u[256];
    int64_t est;
    BGR_REQUIRE(env_open(&v, "pro", NULL) && env_start_jobs(&v, 1, 4));
    gate_set(false);
    snprintf(u, sizeof(u), "%s", env_url(&v, "/img.png"));
    memset(items, 0, sizeof(items));
    items[0].image_url = u;
    items[1].image_url = u;
    bgr_output_opts_init(&items[0].opts);
    bgr_output_opts_init(&items[1].opts);
    /* Hold the only worker with a sync job so the batch waits. */
    struct caller c = {.jobs = v.jobs};
    pthread_t th;
    c.r.acct = &v.acct;
    c.r.data = "WAIT";
    c.r.len = 4;
    bgr_output_opts_init(&c.r.opts);
    pthread_create(&th, NULL, call_remove, &c);
    for (int i = 0; i < 1000; i++) {
        struct bgr_jobs_stats st;
        bgr_jobs_get_stats(v.jobs, &st);
        if (st.in_flight == 1)
            break;
        usleep(1000);
    }
    BGR_REQUIRE(bgr_jobs_batch_submit(v.jobs, &v.acct, NULL, items, 2, &b, &est, &e) == 0);
    gate_set(true);
    pthread_join(th, NULL);
    bgr_jobs_stop(v.jobs); /* the batch may be partly done: the rest stays queued */
    v.jobs = NULL;
    BGR_CHECK_EQ_INT(bgr_store_batch_get(v.store, b.id, NULL, &got, &e), 0);
    BGR_CHECK_EQ_INT(got.processing, 0);
    BGR_CHECK_EQ_INT(got.queued + got.completed, 2);
    BGR_REQUIRE(env_start_jobs(&v, 1, 4));
    BGR_CHECK(wait_batch(&v, b.id, 5000));
    BGR_CHECK_EQ_INT(bgr_store_batch_get(v.store, b.id, NULL, &got, &e), 0);
    BGR_CHECK_EQ_INT(got.completed, 2);
    env_close(&v);
}

static bool obj_exists(const char *dir, const char *key)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/results/%s", dir, key);
    return access(p, F_OK) == 0;
}

static void obj_put(struct bgr_results *r, const char *key)
{
    struct bgr_error e;
    BGR_CHECK_EQ_INT(bgr_results_put(r, key, "x", 1, NULL, &e), 0);
}

/* Delete, expiry and orphans end to end: the store's rules applied to the
 * objects of a directory results store. */
BGR_TEST(sweep_objects)
{
    struct env v;
    struct bgr_results *r = NULL;
    struct bgr_error e = {0};
    struct bgr_image m1 = {0}, m2, m3, got;
    char rdir[600], key[96];
    int n = -1;
    int64_t now = bgr_wall_ms();
    BGR_REQUIRE(env_open(&v, "free", NULL));
    snprintf(rdir, sizeof(rdir), "%s/results", v.dir);
    BGR_REQUIRE(bgr_results_open(rdir, NULL, &r, &e) == 0);
    bgr_store_new_id("img_", m1.id);
    snprintf(m1.account_id, sizeof(m1.account_id), "%s", v.acct.id);
    snprintf(m1.format, sizeof(m1.format), "png");
    snprintf(m1.ext, sizeof(m1.ext), "png");
    m1.credits = 0;
    m1.created_at_ms = now;
    m1.expires_at_ms = now + 5000;
    m2 = m3 = m1;
    bgr_store_new_id("img_", m2.id);
    bgr_store_new_id("img_", m3.id);
    BGR_REQUIRE(bgr_results_key_make(m1.id, "png", m1.path, &e) == 0);
    BGR_REQUIRE(bgr_results_key_make(m2.id, "png", m2.path, &e) == 0);
    /* m3: a row written before src/results, holding "results/<key>". */
    snprintf(m3.path, sizeof(m3.path), "results/%s.png", m3.id);
    snprintf(key, sizeof(key), "%s.png", m3.id);
    obj_put(r, m1.path);
    obj_put(r, m2.path);
    obj_put(r, key);
    BGR_CHECK_EQ_INT(bgr_store_image_add(v.store, &v.acct, &m1, NULL, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_image_add(v.store, &v.acct, &m2, NULL, &e), 0);
    BGR_CHECK_EQ_INT(bgr_store_image_add(v.store, &v.acct, &m3, NULL, &e), 0);

    /* DELETE: the row is dead and the object gone at once. */
    BGR_CHECK_EQ_INT(bgr_jobs_image_delete(v.store, r, v.acct.id, m1.id, now + 1, &got, &e), 0);
    BGR_CHECK(!obj_exists(v.dir, m1.path));
    BGR_CHECK_EQ_INT(bgr_jobs_image_delete(v.store, r, v.acct.id, m1.id, now + 2, &got, &e),
                     BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_jobs_sweep_expired(v.store, r, now + 3, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 0); /* recorded purged already */

    /* Expiry: nothing before, both (new and old-style rows) at expires_at. */
    BGR_CHECK_EQ_INT(bgr_jobs_sweep_expired(v.store, r, now + 4999, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 0);
    BGR_CHECK(obj_exists(v.dir, m2.path) && obj_exists(v.dir, key));
    BGR_CHECK_EQ_INT(bgr_jobs_sweep_expired(v.store, r, now + 5000, &n, &e), 0);
    BGR_CHECK_EQ_INT(n, 2);
    BGR_CHECK(!obj_exists(v.dir, m2.path) && !obj_exists(v.dir, key));

    /* Orphans: no row, a purged row, a temp file of a crashed write go; a
     * live result and a name that is not a key stay; young files stay. */
    {
        struct bgr_image m4 = m1;
        char p[700];
        bgr_store_new_id("img_", m4.id);
        m4.expires_at_ms = now + 86400000;
        BGR_REQUIRE(bgr_results_key_make(m4.id, "png", m4.path, &e) == 0);
        obj_put(r, m4.path);
        BGR_CHECK_EQ_INT(bgr_store_image_add(v.store, &v.acct, &m4, NULL, &e), 0);
        obj_put(r, "img_orphanorphanorphan00.png");
        obj_put(r, m2.path); /* its row is purged */
        snprintf(p, sizeof(p), "%s/img_x.png.tmp.AbCdEf", rdir);
        BGR_CHECK_EQ_INT(bgr_file_write_atomic(p, "x", 1, &e), 0);
        snprintf(p, sizeof(p), "%s/notes.txt.bak", rdir);
        BGR_CHECK_EQ_INT(bgr_file_write_atomic(p, "x", 1, &e), 0);
        BGR_CHECK_EQ_INT(bgr_jobs_sweep_orphans(v.store, r, bgr_wall_ms(), 3600000, &n, &e), 0);
        BGR_CHECK_EQ_INT(n, 0); /* all young */
        BGR_CHECK(obj_exists(v.dir, "img_x.png.tmp.AbCdEf"));
        BGR_CHECK_EQ_INT(
            bgr_jobs_sweep_orphans(v.store, r, bgr_wall_ms() + 7200000, 3600000, &n, &e), 0);
        BGR_CHECK_EQ_INT(n, 2);
        BGR_CHECK(obj_exists(v.dir, m4.path));
        BGR_CHECK(!obj_exists(v.dir, "img_orphanorphanorphan00.png"));
        BGR_CHECK(!obj_exists(v.dir, m2.path));
        BGR_CHECK(!obj_exists(v.dir, "img_x.png.tmp.AbCdEf"));
        BGR_CHECK(obj_exists(v.dir, "notes.txt.bak"));
    }
    bgr_results_close(r);
    env_close(&v);
}

BGR_TEST_MAIN()
