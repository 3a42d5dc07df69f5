/*
 * test_http.c - unit tests of src/http: the body parsers (multipart,
 * urlencoded, JSON), routing, request ids, the envelope, metrics, the
 * in-flight body budget, and a live server on 127.0.0.1 driven over a raw
 * socket (caps, the budget's 503, 404/405, ids).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/budget.h"
#include "http/http.h"
#include "runner.h"

static int parse_mp(struct bgr_arena *a, const char *body, struct bgr_http_part **parts, size_t *n,
                    size_t max_parts)
{
    struct bgr_error e = {0};
    struct bgr_multipart_limits lim = {max_parts, 128};
    int rc =
        bgr_http_multipart_parse(a, "XyZ", (const uint8_t *)body, strlen(body), &lim, parts, n, &e);
    if (rc)
        fprintf(stderr, "    (multipart: %s)\n", e.msg);
    return rc;
}

BGR_TEST(multipart_basic)
{
    struct bgr_arena a;
    bgr_arena_init(&a, 0);
    const char *body =
        "preamble\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=\"output_format\"\r\n\r\n"
        "webp\r\n--XyZ\r\n"
        "content-disposition: form-data; name=\"image_file\"; filename=\"a \\\"b\\\".png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
        "\x89PNG\r\n--X not a boundary\r\n--XyZ--\r\nepilogue";
    struct bgr_http_part *p = NULL;
    size_t n = 0;
    BGR_REQUIRE(parse_mp(&a, body, &p, &n, 8) == 0);
    BGR_REQUIRE(n == 2);
    BGR_CHECK_STR(p[0].name, "output_format");
    BGR_CHECK(p[0].filename == NULL);
    BGR_CHECK_EQ_INT(p[0].len, 4);
    BGR_CHECK(memcmp(p[0].data, "webp", 4) == 0);
    BGR_CHECK_STR(p[1].name, "image_file");
    BGR_CHECK_STR(p[1].filename, "a \"b\".png");
    BGR_CHECK_STR(p[1].content_type, "image/png");
    BGR_CHECK_EQ_INT(p[1].len, strlen("\x89PNG\r\n--X not a boundary"));
    bgr_arena_release(&a);
}

BGR_TEST(multipart_malformed)
{
    struct bgr_arena a;
    bgr_arena_init(&a, 0);
    struct bgr_http_part *p;
    size_t n;
    /* no closing boundary */
    BGR_CHECK(parse_mp(&a, "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx", &p, &n,
                       8) == BGR_EINVALID_PARAMETER);
    /* no boundary at all */
    BGR_CHECK(parse_mp(&a, "hello", &p, &n, 8) == BGR_EINVALID_PARAMETER);
    /* no name */
    BGR_CHECK(parse_mp(&a, "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--", &p, &n,
                       8) == BGR_EINVALID_PARAMETER);
    /* not form-data */
    BGR_CHECK(parse_mp(&a, "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--XyZ--",
                       &p, &n, 8) == BGR_EINVALID_PARAMETER);
    /* header block over the 128-byte limit of this test */
    BGR_CHECK(parse_mp(&a,
                       "--XyZ\r\nContent-Disposition: form-data; name=a\r\nX-Pad: "
                       "0123456789012345678901234567890123456789012345678901234567890123456789"
                       "0123456789012345678901234567890123456789\r\n\r\nx\r\n--XyZ--",
                       &p, &n, 8) == BGR_EINVALID_PARAMETER);
    /* too many parts */
    BGR_CHECK(parse_mp(&a,
                       "--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n--XyZ--",
                       &p, &n, 1) == BGR_EINVALID_PARAMETER);
    /* garbage after a boundary */
    BGR_CHECK(parse_mp(&a,
                       "--XyZjunk\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ--",
                       &p, &n, 8) == BGR_EINVALID_PARAMETER);
    /* unterminated quoted name */
    BGR_CHECK(parse_mp(&a, "--XyZ\r\nContent-Disposition: form-data; name=\"a\r\n\r\n1\r\n--XyZ--",
                       &p, &n, 8) == BGR_EINVALID_PARAMETER);
    /* empty form (only the closing delimiter) is fine */
    BGR_CHECK(parse_mp(&a, "--XyZ--\r\n", &p, &n, 8) == 0 && n == 0);
    bgr_arena_release(&a);
}

BGR_TEST(multipart_truncations_never_overrun)
{
    /* Every prefix of a valid body must be rejected or parsed, never crash
     * (run under ASan to make this meaningful). */
    const char *body = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n"
                       "Content-Type: image/png\r\n\r\nDATA\r\n--XyZ--\r\n";
    size_t len = strlen(body), ok = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        struct bgr_arena a;
        bgr_arena_init(&a, 0);
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, body, cut);
        struct bgr_http_part *p;
        size_t n;
        if (bgr_http_multipart_parse(&a, "XyZ", copy, cut, NULL, &p, &n, NULL) == 0)
            ok++;
        free(copy);
        bgr_arena_release(&a);
    }
    BGR_CHECK(ok >= 1 && ok <= 5); /* the full body, and at most the "--" tail variants */
}

BGR_TEST(multipart_random_mutations)
{
    /* Random byte flips, insertions and cuts of a valid body: every result
     * must be a clean parse or a clean refusal, with parts inside the body
     * (meaningful under ASan/UBSan). Fixed seed: reproducible. */
    const char *base = "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
                       "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\n"
                       "Content-Type: image/png\r\n\r\n\x89PNG--XyZ\r\n\r\n--XyZ--\r\n";
    size_t blen = strlen(base);
    unsigned seed = 12345;
    uint8_t buf[512];
    for (int iter = 0; iter < 5000; iter++) {
        memcpy(buf, base, blen);
        size_t len = blen;
        int edits = 1 + iter % 4;
        for (int k = 0; k < edits && len > 0; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            int kind = (int)((seed >> 4) % 3);
            if (kind == 0) {
                buf[pos] = (uint8_t)(seed >> 16);
            } else if (kind == 1 && len + 1 < sizeof buf) {
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = "-\r\n\"=;:"[(seed >> 20) % 7];
                len++;
            } else {
                len = pos;
            }
        }
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
        memcpy(copy, buf, len);
        struct bgr_arena a;
        bgr_arena_init(&a, 0);
        struct bgr_http_part *p;
        size_t n;
        if (bgr_http_multipart_parse(&a, "XyZ", copy, len, NULL, &p, &n, NULL) == 0) {
            for (size_t i = 0; i < n; i++) {
                BGR_CHECK(p[i].data >= copy && p[i].data + p[i].len <= copy + len);
                BGR_CHECK(p[i].name && *p[i].name);
            }
        }
        bgr_arena_release(&a);
        free(copy);
    }
}

BGR_TEST(multipart_boundary_header)
{
    struct bgr_arena a;
    bgr_arena_init(&a, 0);
    const char *b = NULL;
    BGR_CHECK(bgr_http_multipart_boundary(&a, "multipart/form-data; boundary=abc123", &b, NULL) ==
              0);
    BGR_CHECK_STR(b, "abc123");
    BGR_CHECK(bgr_http_multipart_boundary(&a, "multipart/form-data; charset=x; BOUNDARY=\"a b:c\"",
                                          &b, NULL) == 0);
    BGR_CHECK_STR(b, "a b:c");
    BGR_CHECK(bgr_http_multipart_boundary(&a, "multipart/form-data", &b, NULL) ==
              BGR_EINVALID_PARAMETER);
    BGR_CHECK(bgr_http_multipart_boundary(&a, "multipart/form-data; boundary=", &b, NULL) ==
              BGR_EINVALID_PARAMETER);
    char longb[160];
    snprintf(longb, sizeof longb, "multipart/form-data; boundary=%s",
             "0123456789012345678901234567890123456789012345678901234567890123456789X");
    BGR_CHECK(bgr_http_multipart_boundary(&a, longb, &b, NULL) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(bgr_http_multipart_boundary(&a, "multipart/form-data; boundary=a\x01", &b, NULL) ==
              BGR_EINVALID_PARAMETER);
    bgr_arena_release(&a);
}

BGR_TEST(urlencoded)
{
    struct bgr_arena a;
    bgr_arena_init(&a, 0);
    struct bgr_http_field *f = NULL;
    size_t n = 0;
    const char *s = "a=1&&b=hello+world%21&c&d=%2F%2f";
    BGR_REQUIRE(bgr_http_urlencoded_parse(&a, s, strlen(s), 8, &f, &n, NULL) == 0);
    BGR_REQUIRE(n == 4);
    BGR_CHECK_STR(f[0].name, "a");
    BGR_CHECK_STR(f[0].value, "1");
    BGR_CHECK_STR(f[1].value, "hello world!");
    BGR_CHECK_STR(f[2].name, "c");
    BGR_CHECK_STR(f[2].value, "");
    BGR_CHECK_STR(f[3].value, "//");
    BGR_CHECK(bgr_http_urlencoded_parse(&a, "a=%4", 4, 8, &f, &n, NULL) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(bgr_http_urlencoded_parse(&a, "a=%zz", 5, 8, &f, &n, NULL) == BGR_EINVALID_PARAMETER);
    BGR_CHECK(bgr_http_urlencoded_parse(&a, "a=1&b=2&c=3", 11, 2, &f, &n, NULL) ==
              BGR_EINVALID_PARAMETER);
    BGR_CHECK(bgr_http_urlencoded_parse(&a, "%00=1", 5, 2, &f, &n, NULL) == BGR_EINVALID_PARAMETER);
    bgr_arena_release(&a);
}

BGR_TEST(json_limits)
{
    json_t *j = NULL;
    struct bgr_error e = {0};
    const char *ok = "{\"a\":[1,{\"b\":\"[[[[\"}]}";
    BGR_CHECK(bgr_http_json_parse((const uint8_t *)ok, strlen(ok), 3, &j, &e) == 0);
    json_decref(j);
    const char *deep = "[[[[1]]]]";
    BGR_CHECK(bgr_http_json_parse((const uint8_t *)deep, strlen(deep), 3, &j, &e) ==
              BGR_EINVALID_JSON);
    const char *dup = "{\"a\":1,\"a\":2}";
    BGR_CHECK(bgr_http_json_parse((const uint8_t *)dup, strlen(dup), 8, &j, &e) ==
              BGR_EINVALID_JSON);
    BGR_CHECK(bgr_http_json_parse((const uint8_t *)"{", 1, 8, &j, &e) == BGR_EINVALID_JSON);
    BGR_CHECK(strstr(e.msg, "line") != NULL);
    BGR_CHECK(bgr_http_json_parse((const uint8_t *)"", 0, 8, &j, &e) == BGR_EINVALID_JSON);
}

static void h_dummy(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)app;
    json_t *d = json_object();
    json_object_set_new(d, "len", json_integer((json_int_t)req->body.len));
    json_object_set_new(d, "param", json_string(req->nparams ? req->params[0] : ""));
    const char *q = bgr_http_req_query(req, "q");
    json_object_set_new(d, "q", json_string(q ? q : "(none)"));
    bgr_http_reply_data(resp, 200, d);
}

static const struct bgr_http_route routes[] = {
    {BGR_HTTP_POST, "/v1/upload", "upload", 0, 1000, h_dummy},
    {BGR_HTTP_GET, "/v1/batch/:id", "batch", 0, 0, h_dummy},
    {BGR_HTTP_DELETE, "/v1/images/:id", "images", 0, 0, h_dummy},
    {BGR_HTTP_GET, "/healthz", "healthz", 0, 0, h_dummy},
};

BGR_TEST(route_match)
{
    struct bgr_arena a;
    bgr_arena_init(&a, 0);
    const char *params[BGR_HTTP_MAX_PARAMS];
    int np = 0, status = 0;
    unsigned allowed = 0;
    const struct bgr_http_route *r =
        bgr_http_route_match(routes, BGR_ARRAY_LEN(routes), BGR_HTTP_GET, "/v1/batch/batch_x", &a,
                             params, &np, &status, &allowed);
    BGR_REQUIRE(r == &routes[1]);
    BGR_CHECK_EQ_INT(np, 1);
    BGR_CHECK_STR(params[0], "batch_x");
    BGR_CHECK(!bgr_http_route_match(routes, 4, BGR_HTTP_GET, "/v1/batch/", &a, params, &np, &status,
                                    &allowed));
    BGR_CHECK_EQ_INT(status, 404);
    BGR_CHECK(!bgr_http_route_match(routes, 4, BGR_HTTP_GET, "/v1/batch/a/b", &a, params, &np,
                                    &status, &allowed));
    BGR_CHECK_EQ_INT(status, 404);
    BGR_CHECK(!bgr_http_route_match(routes, 4, BGR_HTTP_POST, "/v1/images/x", &a, params, &np,
                                    &status, &allowed));
    BGR_CHECK_EQ_INT(status, 405);
    BGR_CHECK(allowed == BGR_HTTP_DELETE);
    BGR_CHECK(!bgr_http_route_match(routes, 4, BGR_HTTP_GET, "/healthz/", &a, params, &np, &status,
                                    &allowed));
    BGR_CHECK(!bgr_http_route_match(routes, 4, BGR_HTTP_GET, "/healthzz", &a, params, &np, &status,
                                    &allowed));
    BGR_CHECK(bgr_http_method_parse("get") == BGR_HTTP_OTHER);
    BGR_CHECK(bgr_http_method_parse("DELETE") == BGR_HTTP_DELETE);
    bgr_arena_release(&a);
}

BGR_TEST(request_ids)
{
    BGR_CHECK(bgr_http_request_id_sane("abc-DEF_1.2"));
    BGR_CHECK(!bgr_http_request_id_sane(""));
    BGR_CHECK(!bgr_http_request_id_sane("a b"));
    BGR_CHECK(!bgr_http_request_id_sane("a\r\nX: y"));
    char s65[66];
    memset(s65, 'a', 65);
    s65[65] = '\0';
    BGR_CHECK(!bgr_http_request_id_sane(s65));
    s65[64] = '\0';
    BGR_CHECK(bgr_http_request_id_sane(s65));
    char id1[BGR_HTTP_REQUEST_ID_MAX + 1], id2[BGR_HTTP_REQUEST_ID_MAX + 1];
    bgr_http_request_id_new(id1);
    bgr_http_request_id_new(id2);
    BGR_CHECK(bgr_http_request_id_sane(id1));
    BGR_CHECK(strcmp(id1, id2) != 0);
}

BGR_TEST(envelope)
{
    struct bgr_http_resp r = {0};
    r.fd = -1;
    bgr_http_reply_error(&r, BGR_EFILE_TOO_LARGE, "too big");
    BGR_CHECK_EQ_INT(r.status, 413);
    BGR_CHECK_STR(r.content_type, "application/json");
    json_t *j = json_loadb((const char *)r.body, r.len, 0, NULL);
    BGR_REQUIRE(j);
    BGR_CHECK(json_is_false(json_object_get(j, "success")));
    BGR_CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                  "FILE_TOO_LARGE");
    BGR_CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
                  "too big");
    json_decref(j);
    /* internal detail is not shown to clients */
    bgr_http_reply_error(&r, BGR_EIO, "open /secret/path: EACCES");
    BGR_CHECK_EQ_INT(r.status, 500);
    BGR_CHECK(memmem(r.body, r.len, "secret", 6) == NULL);
    bgr_http_reply_data(&r, 200, json_pack("{s:i}", "x", 1));
    BGR_CHECK(r.len == strlen("{\"success\":true,\"data\":{\"x\":1}}"));
    BGR_CHECK(memcmp(r.body, "{\"success\":true,\"data\":{\"x\":1}}", r.len) == 0);
    BGR_CHECK(bgr_http_resp_header(&r, "X-A", "1") == 0);
    BGR_CHECK(bgr_http_resp_header(&r, "x-a", "2") == 0);
    BGR_CHECK_EQ_INT(r.nheaders, 1);
    BGR_CHECK_STR(r.headers[0].value, "2");
    bgr_http_resp_release(&r);
}

BGR_TEST(metrics_render)
{
    struct bgr_http_metrics *m = bgr_http_metrics_new();
    bgr_http_metrics_request(m, "remove", 200);
    bgr_http_metrics_request(m, "remove", 200);
    bgr_http_metrics_request(m, "account", 401);
    bgr_http_metrics_image(m, true);
    bgr_http_metrics_processing(m, 1500);
    bgr_http_metrics_image(m, false);
    struct bgr_http_gauge g = {"bgremover_queue_depth", "Jobs waiting.", 3, NULL};
    struct bgr_buf b;
    bgr_buf_init(&b, 0);
    BGR_REQUIRE(bgr_http_metrics_render(m, &g, 1, &b, NULL) == 0);
    bgr_buf_append(&b, "", 1, NULL);
    const char *s = (const char *)b.data;
    BGR_CHECK(strstr(s, "bgremover_http_requests_total{route=\"remove\",status=\"200\"} 2\n"));
    BGR_CHECK(strstr(s, "bgremover_http_requests_total{route=\"account\",status=\"401\"} 1\n"));
    BGR_CHECK(strstr(s, "bgremover_processing_seconds_bucket{le=\"1\"} 0\n"));
    BGR_CHECK(strstr(s, "bgremover_processing_seconds_bucket{le=\"2\"} 1\n"));
    BGR_CHECK(strstr(s, "bgremover_processing_seconds_count 1\n"));
    BGR_CHECK(strstr(s, "bgremover_request_images_total{result=\"failure\"} 1\n"));
    BGR_CHECK(strstr(s, "bgremover_queue_depth 3\n"));
    bgr_buf_release(&b);
    bgr_http_metrics_free(m);
}

/* ---- live server --------------------------------------------------------- */

/* Sends raw bytes, returns the whole response (until close) in out. */
static int roundtrip(uint16_t port, const char *req, size_t reqlen, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    size_t off = 0;
    while (off < reqlen) {
        ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may close early (413); read what it said */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = recv(fd, out + n, cap - 1 - n, 0)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fd);
    return (int)n;
}

static void prepare_cap(void *app, struct bgr_http_req *req, struct bgr_http_resp *resp)
{
    (void)app;
    if (bgr_http_req_header(req, "X-Deny"))
        bgr_http_reply_error(resp, BGR_EUNAUTHORIZED, NULL);
}

BGR_TEST(live_server)
{
    struct bgr_http_metrics *m = bgr_http_metrics_new();
    struct bgr_http_config cfg = {.listen = "127.0.0.1:0",
                                  .routes = routes,
                                  .nroutes = BGR_ARRAY_LEN(routes),
                                  .prepare = prepare_cap,
                                  .metrics = m};
    struct bgr_http_server *srv = NULL;
    struct bgr_error e = {0};
    BGR_REQUIRE(bgr_http_server_start(&cfg, &srv, &e) == 0);
    uint16_t port = bgr_http_server_port(srv);
    BGR_REQUIRE(port != 0);
    static char out[65536];
    char req[4096];

    int n = snprintf(req, sizeof req,
                     "GET /v1/batch/b_1?q=a%%20b HTTP/1.1\r\nHost: x\r\nX-Request-ID: my-id.1\r\n"
                     "Connection: close\r\n\r\n");
    BGR_REQUIRE(roundtrip(port, req, (size_t)n, out, sizeof out) > 0);
    BGR_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    BGR_CHECK(strstr(out, "X-Request-ID: my-id.1\r\n"));
    BGR_CHECK(strstr(out, "\"param\":\"b_1\""));
    BGR_CHECK(strstr(out, "\"q\":\"a b\""));

    n = snprintf(
        req, sizeof req,
        "GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-ID: bad id!\r\nConnection: close\r\n\r\n");
    roundtrip(port, req, (size_t)n, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 404", 12) == 0);
    BGR_CHECK(strstr(out, "X-Request-ID: req_"));
    BGR_CHECK(strstr(out, "\"code\":\"NOT_FOUND\""));

    n = snprintf(req, sizeof req, "POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    roundtrip(port, req, (size_t)n, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 405", 12) == 0);
    BGR_CHECK(strstr(out, "Allow: GET"));

    n = snprintf(req, sizeof req,
                 "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Deny: 1\r\nConnection: close\r\n\r\n");
    roundtrip(port, req, (size_t)n, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 401", 12) == 0);

    /* Content-Length over the cap, a client waiting for "100 Continue":
     * refused before the body is sent. */
    n = snprintf(req, sizeof req,
                 "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                 "Expect: 100-continue\r\nConnection: close\r\n\r\n");
    roundtrip(port, req, (size_t)n, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 413", 12) == 0);
    BGR_CHECK(strstr(out, "FILE_TOO_LARGE"));

    /* The same, from a client that sends its whole body before it reads:
     * the body is drained unstored, then the 413 comes (not a reset). */
    {
        static char big[5000 + 256];
        int h = snprintf(big, sizeof big,
                         "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                         "Connection: close\r\n\r\n");
        memset(big + h, 'x', 5000);
        roundtrip(port, big, (size_t)h + 5000, out, sizeof out);
        BGR_CHECK(strncmp(out, "HTTP/1.1 413", 12) == 0);
        BGR_CHECK(strstr(out, "FILE_TOO_LARGE"));
    }

    /* A chunked body that grows past the cap. */
    n = snprintf(req, sizeof req,
                 "POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += snprintf(req + n, sizeof req - (size_t)n, "258\r\n");
        memset(req + n, 'z', 600);
        n += 600;
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    }
    n += snprintf(req + n, sizeof req - (size_t)n, "0\r\n\r\n");
    roundtrip(port, req, (size_t)n, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 413", 12) == 0);

    /* Within the cap. */
    n = snprintf(req, sizeof req,
                 "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                 "Connection: close\r\n\r\n0123456789");
    roundtrip(port, req, (size_t)n, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    BGR_CHECK(strstr(out, "\"len\":10"));

    bgr_http_server_stop(srv);
    struct bgr_buf b;
    bgr_buf_init(&b, 0);
    bgr_http_metrics_render(m, NULL, 0, &b, NULL);
    bgr_buf_append(&b, "", 1, NULL);
    BGR_CHECK(strstr((const char *)b.data, "route=\"upload\",status=\"413\"} 3"));
    BGR_CHECK(strstr((const char *)b.data, "route=\"unmatched\",status=\"404\"} 1"));
    bgr_buf_release(&b);
    bgr_http_metrics_free(m);
}

/* ---- in-flight body budget ------------------------------------------------ */

BGR_TEST(budget_take_give)
{
    struct bgr_http_budget b;
    bgr_http_budget_init(&b, 1000);
    BGR_CHECK(bgr_http_budget_take(&b, 0));
    BGR_CHECK(bgr_http_budget_take(&b, 600));
    BGR_CHECK(!bgr_http_budget_take(&b, 401)); /* all or nothing */
    BGR_CHECK_EQ_INT(bgr_http_budget_used(&b), 600);
    BGR_CHECK(bgr_http_budget_take(&b, 400)); /* exactly to the limit */
    BGR_CHECK(!bgr_http_budget_take(&b, 1));
    BGR_CHECK(!bgr_http_budget_take(&b, SIZE_MAX)); /* no wrap-around */
    bgr_http_budget_give(&b, 600);
    BGR_CHECK(!bgr_http_budget_take(&b, SIZE_MAX - 100));
    BGR_CHECK_EQ_INT(bgr_http_budget_used(&b), 400);
    bgr_http_budget_give(&b, 400);
    bgr_http_budget_give(&b, 0);
    BGR_CHECK_EQ_INT(bgr_http_budget_used(&b), 0);
    /* Refusals are counted by the caller, once per refused request. */
    BGR_CHECK_EQ_INT(bgr_http_budget_refused(&b), 0);
    bgr_http_budget_count_refusal(&b);
    BGR_CHECK_EQ_INT(bgr_http_budget_refused(&b), 1);
}

#define BUDGET_THREADS 8
#define BUDGET_ROUNDS 20000

struct budget_worker {
    struct bgr_http_budget *b;
    unsigned seed;
    int over; /* times the counter was seen above the limit */
    int granted;
};

static void *budget_worker_main(void *arg)
{
    struct budget_worker *w = arg;
    for (int i = 0; i < BUDGET_ROUNDS; i++) {
        size_t n = 1 + (size_t)(rand_r(&w->seed) % 300);
        if (!bgr_http_budget_take(w->b, n))
            continue;
        w->granted++;
        if (bgr_http_budget_used(w->b) > w->b->limit)
            w->over++;
        bgr_http_budget_give(w->b, n);
    }
    return NULL;
}

/* Many threads reserving at once: the sum never passes the limit, some
 * reservations are refused, and everything taken comes back. */
BGR_TEST(budget_concurrent)
{
    struct bgr_http_budget b;
    bgr_http_budget_init(&b, 1000);
    struct budget_worker w[BUDGET_THREADS];
    pthread_t t[BUDGET_THREADS];
    for (int i = 0; i < BUDGET_THREADS; i++) {
        w[i] = (struct budget_worker){&b, (unsigned)i * 7919u + 1u, 0, 0};
        BGR_REQUIRE(pthread_create(&t[i], NULL, budget_worker_main, &w[i]) == 0);
    }
    int over = 0, granted = 0;
    for (int i = 0; i < BUDGET_THREADS; i++) {
        pthread_join(t[i], NULL);
        over += w[i].over;
        granted += w[i].granted;
    }
    BGR_CHECK_EQ_INT(over, 0);
    BGR_CHECK(granted > 0);
    BGR_CHECK_EQ_INT(bgr_http_budget_used(&b), 0);
}

static int connect_local(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The value of a metric line "NAME VALUE" in the rendered metrics, or -1. */
static long long metric_value(struct bgr_http_metrics *m, const char *name)
{
    struct bgr_buf b;
    long long v = -1;
    char key[128];
    bgr_buf_init(&b, 0);
    snprintf(key, sizeof key, "\n%s ", name);
    if (bgr_http_metrics_render(m, NULL, 0, &b, NULL) == 0 &&
        bgr_buf_append(&b, "", 1, NULL) == 0) {
        const char *p = strstr((const char *)b.data, key);
        if (p)
            v = strtoll(p + strlen(key), NULL, 10);
    }
    bgr_buf_release(&b);
    return v;
}

/* Waits (bounded, not timed) until the server reports `want` reserved bytes:
 * the point where a request's headers have been taken in. */
static bool wait_inflight(struct bgr_http_metrics *m, long long want)
{
    for (int i = 0; i < 1000; i++) {
        if (metric_value(m, "bgremover_http_inflight_body_bytes") == want)
            return true;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    return false;
}

static const struct bgr_http_route budget_routes[] = {
    {BGR_HTTP_POST, "/v1/upload", "upload", 0, 1000, h_dummy},
    {BGR_HTTP_POST, "/v1/offloaded", "offloaded", BGR_ROUTE_BLOCKING, 1000, h_dummy},
};

/* Sends a chunked body of nchunks chunks of 200 bytes; the response in out. */
static void send_chunked(uint16_t port, const char *path, int nchunks, char *out, size_t cap)
{
    char req[4096];
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: close\r\n\r\n",
                     path);
    for (int i = 0; i < nchunks; i++) {
        n += snprintf(req + n, sizeof req - (size_t)n, "c8\r\n");
        memset(req + n, 'c', 200);
        n += 200;
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    }
    n += snprintf(req + n, sizeof req - (size_t)n, "0\r\n\r\n");
    roundtrip(port, req, (size_t)n, out, cap);
}

/* A server with a 1500-byte budget: one upload holds 900 of it while the
 * others arrive. */
BGR_TEST(live_server_budget)
{
    struct bgr_http_metrics *m = bgr_http_metrics_new();
    struct bgr_http_config cfg = {.listen = "127.0.0.1:0",
                                  .routes = budget_routes,
                                  .nroutes = BGR_ARRAY_LEN(budget_routes),
                                  .metrics = m,
                                  .max_inflight_body_bytes = 1500};
    struct bgr_http_server *srv = NULL;
    struct bgr_error e = {0};
    static char out[65536], body[1000];
    char req[4096];
    memset(body, 'b', sizeof body);
    BGR_REQUIRE(bgr_http_server_start(&cfg, &srv, &e) == 0);
    uint16_t port = bgr_http_server_port(srv);
    BGR_CHECK_EQ_INT(metric_value(m, "bgremover_http_inflight_body_limit_bytes"), 1500);
    BGR_CHECK_EQ_INT(metric_value(m, "bgremover_http_inflight_body_bytes"), 0);

    /* A: declares 900 bytes, sends 10 of them and waits. */
    int a = connect_local(port);
    BGR_REQUIRE(a >= 0);
    int n = snprintf(req, sizeof req,
                     "POST /v1/offloaded HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n"
                     "Connection: close\r\n\r\n");
    memcpy(req + n, body, 10);
    BGR_REQUIRE(send(a, req, (size_t)n + 10, MSG_NOSIGNAL) == n + 10);
    BGR_REQUIRE(wait_inflight(m, 900));

    /* B: 700 more do not fit: 503 with Retry-After, after its body was read. */
    n = snprintf(req, sizeof req,
                 "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 700\r\n"
                 "Connection: close\r\n\r\n");
    memcpy(req + n, body, 700);
    roundtrip(port, req, (size_t)n + 700, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 503", 12) == 0);
    BGR_CHECK(strstr(out, "Retry-After: 2\r\n"));
    BGR_CHECK(strstr(out, "\"code\":\"SERVICE_BUSY\""));

    /* C: 600 bytes fit what is left, chunked (reserved as they stream). */
    n = snprintf(req, sizeof req,
                 "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 600\r\n"
                 "Connection: close\r\n\r\n");
    memcpy(req + n, body, 600);
    roundtrip(port, req, (size_t)n + 600, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    send_chunked(port, "/v1/upload", 3, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    BGR_CHECK(strstr(out, "\"len\":600"));

    /* D: a chunked body growing past what is left: 503 mid-stream. */
    send_chunked(port, "/v1/upload", 4, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 503", 12) == 0);
    BGR_CHECK(strstr(out, "Retry-After: 2\r\n"));
    BGR_CHECK(strstr(out, "\"code\":\"SERVICE_BUSY\""));
    BGR_CHECK(wait_inflight(m, 900)); /* D's reservation came back */

    /* A finishes: nothing of it was lost, and the budget is whole again. */
    BGR_CHECK(send(a, body + 10, 890, MSG_NOSIGNAL) == 890);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < sizeof out && (r = recv(a, out + got, sizeof out - 1 - got, 0)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(a);
    BGR_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    BGR_CHECK(strstr(out, "\"len\":900"));
    BGR_CHECK(wait_inflight(m, 0));

    /* A client gone mid-body gives its reservation back too. */
    a = connect_local(port);
    BGR_REQUIRE(a >= 0);
    n = snprintf(req, sizeof req,
                 "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\n");
    memcpy(req + n, body, 100);
    BGR_CHECK(send(a, req, (size_t)n + 100, MSG_NOSIGNAL) == n + 100);
    BGR_CHECK(wait_inflight(m, 800));
    close(a);
    BGR_CHECK(wait_inflight(m, 0));
    BGR_CHECK_EQ_INT(metric_value(m, "bgremover_http_body_budget_refused_total"), 2);

    bgr_http_server_stop(srv); /* asserts that nothing is still reserved */
    bgr_http_metrics_free(m);
}

/* A client that stops sending mid-body is cut by the idle timeout, and its
 * reservation comes back with it. */
BGR_TEST(live_server_budget_timeout)
{
    struct bgr_http_metrics *m = bgr_http_metrics_new();
    struct bgr_http_config cfg = {.listen = "127.0.0.1:0",
                                  .routes = budget_routes,
                                  .nroutes = BGR_ARRAY_LEN(budget_routes),
                                  .metrics = m,
                                  .timeout_s = 1,
                                  .max_inflight_body_bytes = 1500};
    struct bgr_http_server *srv = NULL;
    struct bgr_error e = {0};
    char req[4096];
    BGR_REQUIRE(bgr_http_server_start(&cfg, &srv, &e) == 0);
    int a = connect_local(bgr_http_server_port(srv));
    BGR_REQUIRE(a >= 0);
    int n = snprintf(req, sizeof req,
                     "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\n");
    memset(req + n, 'b', 100);
    BGR_CHECK(send(a, req, (size_t)n + 100, MSG_NOSIGNAL) == n + 100);
    BGR_CHECK(wait_inflight(m, 800));
    BGR_CHECK(wait_inflight(m, 0)); /* the server gave up on it, the socket still open */
    close(a);
    bgr_http_server_stop(srv);
    bgr_http_metrics_free(m);
}

/* A body larger than the whole budget can never be admitted: 413, not 503. */
BGR_TEST(live_server_budget_below_cap)
{
    struct bgr_http_config cfg = {.listen = "127.0.0.1:0",
                                  .routes = budget_routes,
                                  .nroutes = BGR_ARRAY_LEN(budget_routes),
                                  .max_inflight_body_bytes = 500};
    struct bgr_http_server *srv = NULL;
    struct bgr_error e = {0};
    static char out[65536];
    char req[4096];
    BGR_REQUIRE(bgr_http_server_start(&cfg, &srv, &e) == 0);
    uint16_t port = bgr_http_server_port(srv);
    int n = snprintf(req, sizeof req,
                     "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 700\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n");
    roundtrip(port, req, (size_t)n, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 413", 12) == 0);
    BGR_CHECK(strstr(out, "maximum file size of 500 bytes"));
    send_chunked(port, "/v1/upload", 3, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 413", 12) == 0);
    send_chunked(port, "/v1/upload", 2, out, sizeof out);
    BGR_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0);
    bgr_http_server_stop(srv);
}

BGR_TEST(listen_parse)
{
    struct sockaddr_storage ss;
    unsigned len;
    BGR_CHECK(bgr_http_parse_listen("127.0.0.1:8080", &ss, &len, NULL) == 0);
    BGR_CHECK(ss.ss_family == AF_INET);
    BGR_CHECK(bgr_http_parse_listen("[::1]:0", &ss, &len, NULL) == 0);
    BGR_CHECK(ss.ss_family == AF_INET6);
    BGR_CHECK(bgr_http_parse_listen(":9000", &ss, &len, NULL) == 0);
    BGR_CHECK(bgr_http_parse_listen("127.0.0.1", &ss, &len, NULL) == BGR_EUSAGE);
    BGR_CHECK(bgr_http_parse_listen("127.0.0.1:70000", &ss, &len, NULL) == BGR_EUSAGE);
    BGR_CHECK(bgr_http_parse_listen("1.2.3.4.5:1", &ss, &len, NULL) == BGR_EUSAGE);
}

BGR_TEST_MAIN()
