/* Unit tests of src/net: the address classifier on every special range, URL
 * rules, and real fetches against a server on 127.0.0.1 (reachable only
 * with allow_private): redirect chains, size caps, status codes, timeouts,
 * numeric IPv4 spellings, POST. */
#define _GNU_SOURCE
#include "net/net.h"
#include "runner.h"
#include "test_httpd.h"

#include <time.h>

BGR_TEST(ipv4_blocked_ranges)
{
    static const char *const blocked[] = {
        "0.0.0.0",         "0.255.255.255",   "10.0.0.0",        "10.255.255.255",
        "100.64.0.0",      "100.127.255.255", "127.0.0.1",       "127.255.255.254",
        "169.254.169.254", "169.254.0.1",     "172.16.0.0",      "172.31.255.255",
        "192.0.0.1",       "192.0.0.255",     "192.0.2.1",       "192.88.99.1",
        "192.168.0.1",     "192.168.255.255", "198.18.0.1",      "198.19.255.255",
        "198.51.100.7",    "203.0.113.9",     "224.0.0.1",       "239.255.255.255",
        "240.0.0.1",       "255.255.255.254", "255.255.255.255",
    };
    static const char *const allowed[] = {
        "8.8.8.8",         "1.1.1.1",         "9.255.255.255", "11.0.0.0",        "100.63.255.255",
        "100.128.0.0",     "126.255.255.255", "128.0.0.0",     "169.253.255.255", "169.255.0.0",
        "172.15.255.255",  "172.32.0.0",      "192.0.1.1",     "192.0.3.0",       "192.167.255.255",
        "192.169.0.0",     "198.17.255.255",  "198.20.0.0",    "198.51.101.0",    "203.0.114.0",
        "223.255.255.255",
    };
    for (size_t i = 0; i < BGR_ARRAY_LEN(blocked); i++) {
        if (!bgr_net_ip_blocked(blocked[i]))
            fprintf(stderr, "  not blocked: %s\n", blocked[i]);
        BGR_CHECK(bgr_net_ip_blocked(blocked[i]));
    }
    for (size_t i = 0; i < BGR_ARRAY_LEN(allowed); i++) {
        if (bgr_net_ip_blocked(allowed[i]))
            fprintf(stderr, "  blocked: %s\n", allowed[i]);
        BGR_CHECK(!bgr_net_ip_blocked(allowed[i]));
    }
}

BGR_TEST(ipv6_blocked_ranges)
{
    static const char *const blocked[] = {
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "::ffff:0:0",
        "::127.0.0.1",
        "::8.8.8.8",
        "64:ff9b::7f00:1",
        "64:ff9b::808:808",
        "64:ff9b:1::1",
        "100::1",
        "fc00::1",
        "fdff:ffff::1",
        "fe80::1",
        "febf:ffff::1",
        "fec0::1",
        "ff02::1",
        "ff0e::1",
        "2001:db8::1",
        "2001:db8:ffff::1",
        "2001::1",
        "2001:0:4136:e378::1",
        "2001:2::1",
        "2001:10::1",
        "2002:7f00:1::1",
        "2002:0808:0808::1",
        "3fff::1",
        "5f00::1",
        "1::1",
        "4000::1",
        "e000::1",
    };
    static const char *const allowed[] = {
        "2606:4700:4700::1111", "2a00:1450:4001::1", "2001:4860:4860::8888",
        "2400:cb00::1",         "2c0f:fb50::1",      "2001:200::1",
    };
    for (size_t i = 0; i < BGR_ARRAY_LEN(blocked); i++) {
        if (!bgr_net_ip_blocked(blocked[i]))
            fprintf(stderr, "  not blocked: %s\n", blocked[i]);
        BGR_CHECK(bgr_net_ip_blocked(blocked[i]));
    }
    for (size_t i = 0; i < BGR_ARRAY_LEN(allowed); i++) {
        if (bgr_net_ip_blocked(allowed[i]))
            fprintf(stderr, "  blocked: %s\n", allowed[i]);
        BGR_CHECK(!bgr_net_ip_blocked(allowed[i]));
    }
    BGR_CHECK(bgr_net_ip_blocked("not-an-ip"));
    BGR_CHECK(bgr_net_ip_blocked(""));
    BGR_CHECK(bgr_net_ip_blocked(NULL));
}

/* The host's own interface addresses are refused like loopback (issue 6:
 * a public address of the server reaches everything it listens on). */
BGR_TEST(own_addresses_are_local)
{
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    struct sockaddr_in pub = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x08080808)};
    BGR_CHECK(bgr_net_addr_is_local((const struct sockaddr *)&lo));
    BGR_CHECK(!bgr_net_addr_is_local((const struct sockaddr *)&pub));
    BGR_CHECK(bgr_net_addr_is_local(NULL));
}

BGR_TEST(url_rules)
{
    struct bgr_url u;
    struct bgr_error e = {0};
    char *longurl;
    BGR_CHECK_EQ_INT(bgr_net_url_parse("http://Example.COM/a.png?x=1", &u, &e), 0);
    BGR_CHECK_STR(u.host, "example.com");
    BGR_CHECK_EQ_INT(u.port, 80);
    BGR_CHECK(!u.https);
    BGR_CHECK_EQ_INT(bgr_net_url_parse("HTTPS://example.com:8443/", &u, &e), 0);
    BGR_CHECK(u.https);
    BGR_CHECK_EQ_INT(u.port, 8443);
    BGR_CHECK_EQ_INT(bgr_net_url_parse("https://[2606:4700::1]/x", &u, &e), 0);
    BGR_CHECK_STR(u.host, "2606:4700::1");
    BGR_CHECK_EQ_INT(u.port, 443);
    /* International names are checked (and resolved) in their ASCII form. */
    BGR_CHECK_EQ_INT(bgr_net_url_parse("http://b\xc3\xbc"
                                       "cher.example/",
                                       &u, &e),
                     BGR_EINVALID_PARAMETER);
    BGR_CHECK(strstr(e.msg, "xn--") != NULL);
    BGR_CHECK_EQ_INT(bgr_net_url_parse("http://xn--bcher-kva.example/", &u, &e), 0);

    static const char *const bad[] = {
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "gopher://example.com/",
        "dict://example.com:11211/",
        "example.com/a.png",
        "//example.com/a.png",
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "http://:pass@example.com/",
        "http:///a.png",
        "http://exa mple.com/",
        "http://example.com/a b",
        "http://example.com/\r\nX: y",
        "http://[fe80::1%25eth0]/",
        "http://example.com:99999/",
        "",
        "javascript:alert(1)",
    };
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++) {
        int rc = bgr_net_url_parse(bad[i], &u, &e);
        if (rc != BGR_EINVALID_PARAMETER)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        BGR_CHECK_EQ_INT(rc, BGR_EINVALID_PARAMETER);
    }
    BGR_CHECK(strstr((bgr_net_url_parse("http://u:p@h/", &u, &e), e.msg), "credentials"));
    longurl = malloc(BGR_NET_URL_MAX + 2);
    memcpy(longurl, "http://example.com/", 19);
    memset(longurl + 19, 'a', BGR_NET_URL_MAX + 1 - 19);
    longurl[BGR_NET_URL_MAX + 1] = 0;
    BGR_CHECK_EQ_INT(bgr_net_url_parse(longurl, &u, &e), BGR_EINVALID_PARAMETER);
    longurl[BGR_NET_URL_MAX] = 0; /* exactly the maximum is fine */
    BGR_CHECK_EQ_INT(bgr_net_url_parse(longurl, &u, &e), 0);
    free(longurl);
}

/* ---- the server ------------------------------------------------------------ */

static const char png_like[] = "\x89PNG\r\n\x1a\n-fake-image-bytes-";

static void handler(void *ctx, const struct thttpd_req *r, char **out, size_t *len)
{
    char loc[256];
    int port = *(int *)ctx;
    if (strcmp(r->path, "/img") == 0) {
        thttpd_respond(out, len, 200, "Content-Type: image/png\r\n", png_like, sizeof(png_like) - 1,
                       true);
    } else if (strncmp(r->path, "/r", 2) == 0 && r->path[2] >= '1' && r->path[2] <= '9') {
        int k = r->path[2] - '0';
        /* /rK redirects K times: /rK -> /r(K-1) ... /r1 -> /img; mixes
         * absolute and relative Location headers. */
        if (k == 1)
            snprintf(loc, sizeof(loc), "Location: /img\r\n");
        else if (k % 2)
            snprintf(loc, sizeof(loc), "Location: /r%d\r\n", k - 1);
        else
            snprintf(loc, sizeof(loc), "Location: http://127.0.0.1:%d/r%d\r\n", port, k - 1);
        thttpd_respond(out, len, k % 3 == 0 ? 301 : 302, loc, NULL, 0, true);
    } else if (strcmp(r->path, "/to-ftp") == 0) {
        thttpd_respond(out, len, 302, "Location: ftp://127.0.0.1/x\r\n", NULL, 0, true);
    } else if (strcmp(r->path, "/to-creds") == 0) {
        snprintf(loc, sizeof(loc), "Location: http://u:p@127.0.0.1:%d/img\r\n", port);
        thttpd_respond(out, len, 302, loc, NULL, 0, true);
    } else if (strcmp(r->path, "/big") == 0 || strcmp(r->path, "/big-nolen") == 0) {
        char *b = malloc(5000);
        memset(b, 'x', 5000);
        thttpd_respond(out, len, 200, "", b, 5000, strcmp(r->path, "/big") == 0);
        free(b);
    } else if (strcmp(r->path, "/slow") == 0) {
        struct timespec ts = {1, 200000000};
        nanosleep(&ts, NULL);
        thttpd_respond(out, len, 200, "", "late", 4, true);
    } else if (strcmp(r->path, "/hook") == 0 && strcmp(r->method, "POST") == 0) {
        char v[128] = "";
        thttpd_header(r, "X-Test", v, sizeof(v));
        bool ok = strcmp(v, "yes") == 0 && r->body_len == 7 && memcmp(r->body, "{\"a\":1}", 7) == 0;
        thttpd_respond(out, len, ok ? 204 : 400, "", NULL, 0, true);
    } else {
        thttpd_respond(out, len, 404, "", "no", 2, true);
    }
}

struct fixture {
    struct thttpd srv;
    int port;
    struct bgr_fetch_opts o;
    char url[256];
};

static bool fx_start(struct fixture *f)
{
    if (thttpd_start(&f->srv, handler, &f->port) != 0)
        return false;
    f->port = f->srv.port;
    bgr_fetch_opts_init(&f->o);
    f->o.allow_private = true;
    f->o.max_bytes = 1000;
    return true;
}

static const char *fx_url(struct fixture *f, const char *path)
{
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d%s", f->port, path);
    return f->url;
}

BGR_TEST(fetch_local_allowed_only_with_flag)
{
    struct fixture f;
    struct bgr_buf body;
    struct bgr_error e = {0};
    char ct[128];
    BGR_REQUIRE(fx_start(&f));
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/img"), &f.o, &body, ct, &e), 0);
    BGR_CHECK_EQ_INT(body.len, sizeof(png_like) - 1);
    BGR_CHECK(memcmp(body.data, png_like, body.len) == 0);
    BGR_CHECK_STR(ct, "image/png");
    bgr_buf_release(&body);
    BGR_CHECK_EQ_INT(thttpd_hits(&f.srv), 1);
    /* A name, pinned to every address it has (localhost may be ::1 first,
     * where nothing listens: the pinned 127.0.0.1 is the fallback). */
    {
        char u[128];
        snprintf(u, sizeof(u), "http://localhost:%d/img", f.port);
        BGR_CHECK_EQ_INT(bgr_net_get(u, &f.o, &body, NULL, &e), 0);
        bgr_buf_release(&body);
    }
    BGR_CHECK_EQ_INT(thttpd_hits(&f.srv), 2);

    /* Without the flag: refused before any connection. */
    f.o.allow_private = false;
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/img"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(strstr(e.msg, "private") != NULL);
    BGR_CHECK(strstr(e.msg, "127.0.0.1") == NULL); /* no internal detail leaks */
    {
        char u[128];
        static const char *const hosts[] = {
            "2130706433", "0x7f000001",         "017700000001", "127.1", "0x7f.0.0.1",
            "localhost",  "[::ffff:127.0.0.1]", "0.0.0.0",      "[::1]",
        };
        for (size_t i = 0; i < BGR_ARRAY_LEN(hosts); i++) {
            snprintf(u, sizeof(u), "http://%s:%d/img", hosts[i], f.port);
            int rc = bgr_net_get(u, &f.o, &body, NULL, &e);
            if (rc == 0)
                fprintf(stderr, "  fetched: %s\n", u);
            BGR_CHECK(rc == BGR_EIMAGE_DOWNLOAD_FAILED);
        }
    }
    BGR_CHECK_EQ_INT(thttpd_hits(&f.srv), 2); /* none of them connected */
    thttpd_stop(&f.srv);
}

BGR_TEST(fetch_redirects)
{
    struct fixture f;
    struct bgr_buf body;
    struct bgr_error e = {0};
    BGR_REQUIRE(fx_start(&f));
    /* Five redirects are allowed, six are not. */
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/r5"), &f.o, &body, NULL, &e), 0);
    BGR_CHECK_EQ_INT(body.len, sizeof(png_like) - 1);
    bgr_buf_release(&body);
    BGR_CHECK_EQ_INT(thttpd_hits(&f.srv), 6);
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/r6"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(strstr(e.msg, "redirects") != NULL);
    f.o.max_redirects = 2;
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/r3"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/r2"), &f.o, &body, NULL, &e), 0);
    bgr_buf_release(&body);
    /* Each hop is guarded again: another scheme or credentials are refused. */
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/to-ftp"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/to-creds"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    thttpd_stop(&f.srv);
}

BGR_TEST(fetch_size_cap_status_timeout)
{
    struct fixture f;
    struct bgr_buf body;
    struct bgr_error e = {0};
    BGR_REQUIRE(fx_start(&f));
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/big"), &f.o, &body, NULL, &e), BGR_EFILE_TOO_LARGE);
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/big-nolen"), &f.o, &body, NULL, &e),
                     BGR_EFILE_TOO_LARGE);
    f.o.max_bytes = 5000; /* exactly the size: fine */
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/big-nolen"), &f.o, &body, NULL, &e), 0);
    BGR_CHECK_EQ_INT(body.len, 5000);
    bgr_buf_release(&body);
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/missing"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(strstr(e.msg, "404") != NULL);
    f.o.total_timeout_ms = 300;
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/slow"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(strstr(e.msg, "timed out") != NULL);
    /* Nothing listens on port 1: connection refused. */
    BGR_CHECK_EQ_INT(bgr_net_get("http://127.0.0.1:1/", &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    thttpd_stop(&f.srv);
}

BGR_TEST(post_webhook)
{
    struct fixture f;
    struct bgr_error e = {0};
    const char *h[] = {"Content-Type: application/json", "X-Test: yes"};
    long status = 0;
    BGR_REQUIRE(fx_start(&f));
    BGR_CHECK_EQ_INT(bgr_net_post(fx_url(&f, "/hook"), &f.o, h, 2, "{\"a\":1}", 7, &status, &e), 0);
    BGR_CHECK_EQ_INT(status, 204);
    BGR_CHECK_EQ_INT(bgr_net_post(fx_url(&f, "/elsewhere"), &f.o, h, 2, "{}", 2, &status, &e), 0);
    BGR_CHECK_EQ_INT(status, 404);
    /* Redirects are not followed for POST. */
    BGR_CHECK_EQ_INT(bgr_net_post(fx_url(&f, "/r1"), &f.o, h, 2, "{}", 2, &status, &e), 0);
    BGR_CHECK_EQ_INT(status, 302);
    f.o.allow_private = false;
    BGR_CHECK_EQ_INT(bgr_net_post(fx_url(&f, "/hook"), &f.o, h, 2, "{\"a\":1}", 7, &status, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK_EQ_INT(status, 0);
    BGR_CHECK_EQ_INT(thttpd_hits(&f.srv), 3);
    thttpd_stop(&f.srv);
}

/* The refused flag tells a final refusal (the guard) from a failure that
 * may pass (a refused connection, a timeout); the cancel flag ends a
 * request before it starts. */
BGR_TEST(refused_flag_and_cancel)
{
    struct fixture f;
    struct bgr_buf body;
    struct bgr_error e = {0};
    const char *h[] = {"Content-Type: application/json"};
    long status = 0;
    bool refused = false;
    atomic_int cancel;
    atomic_init(&cancel, 0);
    BGR_REQUIRE(fx_start(&f));
    f.o.refused = &refused;
    /* allowed, and answered: not refused */
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/img"), &f.o, &body, NULL, &e), 0);
    bgr_buf_release(&body);
    BGR_CHECK(!refused);
    /* connection refused, timeout: may pass, not refused */
    BGR_CHECK_EQ_INT(bgr_net_post("http://127.0.0.1:1/", &f.o, h, 1, "{}", 2, &status, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(!refused);
    f.o.total_timeout_ms = 300;
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/slow"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(!refused);
    f.o.total_timeout_ms = 0;
    /* a redirect to a URL the rules refuse: final */
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/to-ftp"), &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(refused);
    refused = false;
    /* the guard's address check: final */
    f.o.allow_private = false;
    BGR_CHECK_EQ_INT(bgr_net_post(fx_url(&f, "/hook"), &f.o, h, 1, "{}", 2, &status, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(refused);
    refused = false;
    BGR_CHECK_EQ_INT(bgr_net_get("http://[::1]:9/x", &f.o, &body, NULL, &e),
                     BGR_EIMAGE_DOWNLOAD_FAILED);
    BGR_CHECK(refused);
    refused = false;
    BGR_CHECK_EQ_INT(bgr_net_get("ftp://example.com/x", &f.o, &body, NULL, &e),
                     BGR_EINVALID_PARAMETER);
    BGR_CHECK(refused);
    /* cancelled: nothing is sent */
    f.o.allow_private = true;
    f.o.cancel = &cancel;
    atomic_store(&cancel, 1);
    int hits = thttpd_hits(&f.srv);
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/img"), &f.o, &body, NULL, &e), BGR_ESERVICE_BUSY);
    BGR_CHECK_EQ_INT(bgr_net_post(fx_url(&f, "/hook"), &f.o, h, 1, "{}", 2, &status, &e),
                     BGR_ESERVICE_BUSY);
    BGR_CHECK_EQ_INT(thttpd_hits(&f.srv), hits);
    atomic_store(&cancel, 0);
    BGR_CHECK_EQ_INT(bgr_net_get(fx_url(&f, "/img"), &f.o, &body, NULL, &e), 0);
    bgr_buf_release(&body);
    thttpd_stop(&f.srv);
}

BGR_TEST_MAIN()
