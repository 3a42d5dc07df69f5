/*
 * test_api_unit.c - unit tests of src/api that need no server: the serve
 * configuration (layers, values, errors), output-option parsing from form
 * and JSON values, id validation, and the routing table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_int.h"
#include "runner.h"

BGR_TEST(config_defaults_are_the_spec)
{
    struct bgr_serve_config c;
    bgr_serve_config_init(&c);
    BGR_CHECK_STR(c.listen, "0.0.0.0:8080");
    BGR_CHECK_STR(c.data_dir, "./data");
    BGR_CHECK_EQ_INT(c.workers, 2);
    BGR_CHECK_EQ_INT(c.queue_size, 16);
    BGR_CHECK(!c.allow_private_urls);
    BGR_CHECK_STR(c.plans[0].name, "free");
    BGR_CHECK_EQ_INT(c.plans[0].per_minute, 10);
    BGR_CHECK_EQ_INT(c.plans[0].per_day, 50);
    BGR_CHECK_EQ_INT(c.plans[0].max_bytes, 10 * 1024 * 1024);
    BGR_CHECK_EQ_INT(c.plans[0].retention_s, 86400);
    BGR_CHECK_EQ_INT(c.plans[0].monthly_credits, 50);
    BGR_CHECK_EQ_INT(c.plans[1].per_minute, 60);
    BGR_CHECK_EQ_INT(c.plans[1].per_day, 1000);
    BGR_CHECK_EQ_INT(c.plans[1].retention_s, 7 * 86400);
    BGR_CHECK_EQ_INT(c.plans[2].per_minute, 200);
    BGR_CHECK_EQ_INT(c.plans[2].per_day, BGR_UNLIMITED);
    BGR_CHECK_EQ_INT(c.plans[2].monthly_credits, BGR_UNLIMITED);
    BGR_CHECK_EQ_INT(c.plans[2].retention_s, 30 * 86400);
    BGR_CHECK(bgr_serve_config_check(&c, NULL) == 0);
    bgr_serve_config_release(&c);
}

BGR_TEST(config_layers)
{
    char path[] = "/tmp/bgr-conf-XXXXXX";
    int fd = mkstemp(path);
    BGR_REQUIRE(fd >= 0);
    const char *text = "# comment\n\n  workers = 3   # trailing comment\n"
                       "plan.pro.per_day = unlimited\nlisten=\"127.0.0.1:9\"\n"
                       "plan.free.per_minute = 7\n";
    BGR_REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    struct bgr_serve_config c;
    struct bgr_error e = {0};
    bgr_serve_config_init(&c);
    BGR_CHECK(bgr_serve_config_load_file(&c, path, &e) == 0);
    BGR_CHECK_EQ_INT(c.workers, 3);
    BGR_CHECK_EQ_INT(c.plans[1].per_day, BGR_UNLIMITED);
    BGR_CHECK_STR(c.listen, "127.0.0.1:9");
    setenv("BGR_WORKERS", "5", 1);
    setenv("BGR_ALLOW_PRIVATE_URLS", "yes", 1);
    BGR_CHECK(bgr_serve_config_load_env(&c, &e) == 0);
    BGR_CHECK_EQ_INT(c.workers, 5);
    BGR_CHECK(c.allow_private_urls);
    BGR_CHECK_EQ_INT(c.plans[0].per_minute, 7); /* no env for it: the file's value stays */
    BGR_CHECK(bgr_serve_config_set(&c, "workers", "6", &e) == 0);
    BGR_CHECK_EQ_INT(c.workers, 6);
    setenv("BGR_WORKERS", "many", 1);
    BGR_CHECK(bgr_serve_config_load_env(&c, &e) == BGR_EUSAGE);
    BGR_CHECK(strstr(e.msg, "BGR_WORKERS") != NULL);
    unsetenv("BGR_WORKERS");
    unsetenv("BGR_ALLOW_PRIVATE_URLS");
    bgr_serve_config_release(&c);
    unlink(path);
}

BGR_TEST(config_errors)
{
    struct bgr_serve_config c;
    struct bgr_error e = {0};
    bgr_serve_config_init(&c);
    BGR_CHECK(bgr_serve_config_set(&c, "nope", "1", &e) == BGR_EUSAGE);
    BGR_CHECK(bgr_serve_config_set(&c, "workers", "-1", &e) == BGR_EUSAGE);
    BGR_CHECK(bgr_serve_config_set(&c, "workers", "65", &e) == BGR_EUSAGE);
    BGR_CHECK(bgr_serve_config_set(&c, "workers", "0", &e) == 0); /* an API node */
    BGR_CHECK(bgr_serve_config_set(&c, "workers", "2x", &e) == BGR_EUSAGE);
    BGR_CHECK(bgr_serve_config_set(&c, "allow_private_urls", "maybe", &e) == BGR_EUSAGE);
    BGR_CHECK(bgr_serve_config_set(&c, "plan.free.per_minute", "unlimited", &e) == BGR_EUSAGE);
    BGR_CHECK(bgr_serve_config_set(&c, "tls_cert", "/x.pem", &e) == 0);
    BGR_CHECK(bgr_serve_config_check(&c, &e) == BGR_EUSAGE); /* cert without key */
    BGR_CHECK(bgr_serve_config_set(&c, "tls_key", "/k.pem", &e) == 0);
    BGR_CHECK(bgr_serve_config_check(&c, &e) == 0);
    BGR_CHECK(bgr_serve_config_set(&c, "public_url", "ftp://x", &e) == 0);
    BGR_CHECK(bgr_serve_config_check(&c, &e) == BGR_EUSAGE);
    BGR_CHECK(bgr_serve_config_load_file(&c, "/nonexistent/bgr.conf", &e) == BGR_EIO);
    bgr_serve_config_release(&c);

    char path[] = "/tmp/bgr-conf-XXXXXX";
    int fd = mkstemp(path);
    BGR_REQUIRE(fd >= 0);
    const char *text = "workers = 2\nthis line has no equals\n";
    BGR_REQUIRE(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    bgr_serve_config_init(&c);
    BGR_CHECK(bgr_serve_config_load_file(&c, path, &e) == BGR_EUSAGE);
    BGR_CHECK(strstr(e.msg, ":2:") != NULL);
    bgr_serve_config_release(&c);
    unlink(path);
}

BGR_TEST(options_from_form_and_json)
{
    struct bgr_output_opts o;
    struct bgr_error e = {0};
    bgr_output_opts_init(&o);
    BGR_CHECK(api_opt_from_string(&o, "output_format", "webp", "output_format", &e) == 0);
    BGR_CHECK(o.format == BGR_FORMAT_WEBP);
    BGR_CHECK(api_opt_from_string(&o, "crop", "1", "crop", &e) == 0 && o.crop);
    BGR_CHECK(api_opt_from_string(&o, "crop", "FALSE", "crop", &e) == 0 && !o.crop);
    BGR_CHECK(api_opt_from_string(&o, "crop", "yes", "crop", &e) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(e.msg, "crop") != NULL);
    BGR_CHECK(api_opt_from_string(&o, "bg_color", "#fff", "bg_color", &e) == 0 && o.has_bg_color);
    BGR_CHECK(api_opt_from_string(&o, "output_quality", "101", "images[3].output_quality", &e) ==
              BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(e.msg, "images[3].output_quality") != NULL);
    BGR_CHECK(api_opt_from_string(&o, "image_url", "x", "image_url", &e) == 1);

    json_t *q = json_integer(55), *qs = json_string("55"), *t = json_true(), *n = json_integer(1);
    BGR_CHECK(api_opt_from_json(&o, "output_quality", q, "output_quality", &e) == 0);
    BGR_CHECK_EQ_INT(o.quality, 55);
    BGR_CHECK(api_opt_from_json(&o, "output_quality", qs, "output_quality", &e) ==
              BGR_EINVALID_PARAMETER);
    BGR_CHECK(api_opt_from_json(&o, "crop", t, "crop", &e) == 0 && o.crop);
    BGR_CHECK(api_opt_from_json(&o, "crop", n, "crop", &e) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(api_opt_from_json(&o, "max_resolution", n, "max_resolution", &e) ==
              BGR_EINVALID_PARAMETER);
    json_decref(q);
    json_decref(qs);
    json_decref(t);
    json_decref(n);

    BGR_CHECK(api_check_url("https://example.com/a.png", "image_url", &e) == 0);
    BGR_CHECK(api_check_url("file:///etc/passwd", "image_url", &e) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(e.msg, "image_url") != NULL);
}

BGR_TEST(ids)
{
    BGR_CHECK(api_id_valid("img_abcXYZ019", "img_"));
    BGR_CHECK(!api_id_valid("img_", "img_"));
    BGR_CHECK(!api_id_valid("img_../x", "img_"));
    BGR_CHECK(!api_id_valid("img_a.b", "img_"));
    BGR_CHECK(!api_id_valid("batch_x", "img_"));
    BGR_CHECK(!api_id_valid("img_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "img_")); /* 41 */
    BGR_CHECK(api_id_valid("batch_Q9", "batch_"));
}

BGR_TEST(route_table)
{
    size_t n;
    const struct bgr_http_route *r = bgr_api_routes(&n);
    struct bgr_arena a;
    bgr_arena_init(&a, 0);
    const char *params[BGR_HTTP_MAX_PARAMS];
    int np, status;
    unsigned allowed;
    static const struct {
        enum bgr_http_method m;
        const char *path;
        const char *name;
        bool auth;
    } want[] = {
        {BGR_HTTP_POST, "/v1/remove", "remove", true},
        {BGR_HTTP_POST, "/v1/remove/batch", "batch_create", true},
        {BGR_HTTP_GET, "/v1/batch/batch_1", "batch_get", true},
        {BGR_HTTP_GET, "/v1/account", "account", true},
        {BGR_HTTP_GET, "/v1/usage", "usage", true},
        {BGR_HTTP_GET, "/v1/images", "images_list", true},
        {BGR_HTTP_GET, "/v1/images/img_1", "image_get", true},
        {BGR_HTTP_DELETE, "/v1/images/img_1", "image_delete", true},
        {BGR_HTTP_GET, "/v1/results/img_1.png", "result", false},
        {BGR_HTTP_GET, "/v1/openapi.json", "openapi", false},
        {BGR_HTTP_GET, "/healthz", "healthz", false},
        {BGR_HTTP_GET, "/readyz", "readyz", false},
        {BGR_HTTP_GET, "/metrics", "metrics", false},
        {BGR_HTTP_POST, "/v1.0/removebg", "removebg", true},
        {BGR_HTTP_GET, "/v1.0/account", "removebg_account", true},
        {BGR_HTTP_GET, "/", "web", false},
        {BGR_HTTP_GET, "/docs", "web_docs", false},
        {BGR_HTTP_GET, "/web/app.mjs", "web_asset", false},
    };
    for (size_t i = 0; i < BGR_ARRAY_LEN(want); i++) {
        const struct bgr_http_route *m =
            bgr_http_route_match(r, n, want[i].m, want[i].path, &a, params, &np, &status, &allowed);
        BGR_REQUIRE(m != NULL);
        BGR_CHECK_STR(m->name, want[i].name);
        BGR_CHECK(((m->flags & BGR_ROUTE_AUTH) != 0) == want[i].auth);
    }
    BGR_CHECK_EQ_INT(n, BGR_ARRAY_LEN(want));
    BGR_CHECK(bgr_api_openapi_json_len > 100);
    BGR_CHECK(bgr_api_openapi_json[bgr_api_openapi_json_len] == '\0');

    /* --no-web: the same table without the web page's three routes, so they
     * are 404 like any unknown path (not 405) and /v1 is unchanged. */
    size_t n_api;
    const struct bgr_http_route *r2 = bgr_api_routes_for(false, &n_api);
    BGR_CHECK(r2 == r);
    BGR_CHECK_EQ_INT(n_api, n - 3);
    for (size_t i = 0; i < BGR_ARRAY_LEN(want); i++) {
        const struct bgr_http_route *m = bgr_http_route_match(r2, n_api, want[i].m, want[i].path,
                                                              &a, params, &np, &status, &allowed);
        bool web = strncmp(want[i].name, "web", 3) == 0;
        BGR_CHECK((m == NULL) == web);
        if (web)
            BGR_CHECK_EQ_INT(status, 404);
    }
    bgr_arena_release(&a);
}

BGR_TEST(web_files)
{
    /* The page's files are embedded, each once, with the SHA-256 of its bytes. */
    static const char *const need[] = {"index.html", "docs.html", "app.mjs", "lib.mjs",
                                       "docs.mjs",   "style.css", "icon.svg"};
    for (size_t i = 0; i < BGR_ARRAY_LEN(need); i++) {
        const struct api_web_file *f = api_web_find(need[i]);
        BGR_REQUIRE(f != NULL);
        BGR_CHECK(f->len > 100);
        BGR_CHECK_EQ_INT(strlen(f->sha256), 64);
        BGR_CHECK(f->data[f->len] == '\0');
    }
    BGR_CHECK(api_web_find("../index.html") == NULL);
    BGR_CHECK(api_web_find("") == NULL);
    BGR_CHECK(api_web_find(NULL) == NULL);
    for (size_t i = 0; i < api_web_nfiles; i++)
        for (size_t j = i + 1; j < api_web_nfiles; j++)
            BGR_CHECK(strcmp(api_web_files[i].name, api_web_files[j].name) != 0);
}

BGR_TEST_MAIN()
