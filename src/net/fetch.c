/*
 * fetch.c - outbound GET and POST through libcurl, behind the guard of
 * guard.c.
 *
 * One hop: parse the URL with curl's parser, resolve the host ourselves,
 * check every address, pin the first with CURLOPT_RESOLVE, and check again
 * in CURLOPT_OPENSOCKETFUNCTION (the address curl actually connects to), so
 * neither DNS rebinding between our lookup and curl's nor a curl code path
 * that resolves on its own can reach a refused address. Redirects are
 * followed here, hop by hop, each hop guarded again. Environment proxies
 * are disabled (a proxy would make the address check meaningless).
 */
#define _GNU_SOURCE
#include "net/net.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POST_BODY_KEEP (64 * 1024)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int bgr_net_global_init(struct bgr_error *err)
{
    pthread_once(&global_once, global_init_once);
    if (global_rc != CURLE_OK)
        return bgr_error_set(err, BGR_EINTERNAL, "curl_global_init: %s",
                             curl_easy_strerror(global_rc));
    return 0;
}

void bgr_fetch_opts_init(struct bgr_fetch_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_bytes = 25u * 1024 * 1024;
    o->connect_timeout_ms = 5000;
    o->total_timeout_ms = 30000;
    o->max_redirects = 5;
}

struct xfer {
    const struct bgr_fetch_opts *o;
    struct bgr_buf *body; /* NULL: discard (POST) */
    size_t max_bytes;
    size_t seen;
    bool too_large;
    bool refused_addr; /* the open-socket check said no */
};

static bool cancelled(const struct bgr_fetch_opts *o)
{
    return o->cancel && atomic_load(o->cancel) != 0;
}

static void mark_refused(const struct bgr_fetch_opts *o)
{
    if (o->refused)
        *o->refused = true;
}

/* libcurl's progress callback: a nonzero return aborts the transfer. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct xfer *x = ud;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return cancelled(x->o) ? 1 : 0;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    if (!x->body) { /* POST: read and drop, bounded */
        x->seen += len;
        return x->seen > POST_BODY_KEEP ? 0 : len;
    }
    if (x->body->len + len > x->max_bytes) {
        x->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (bgr_buf_append(x->body, p, len, NULL) != 0)
        return 0;
    return len;
}

static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct xfer *x = ud;
    (void)purpose;
    if (!x->o->allow_private &&
        (bgr_net_addr_blocked(&a->addr) || bgr_net_addr_is_local(&a->addr))) {
        x->refused_addr = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

/* Resolves u->host and checks the addresses: all must be allowed (a name
 * that also points inward is refused outright). Writes the pinned address
 * as curl's RESOLVE entry. */
static int resolve_and_pin(const struct bgr_url *u, const struct bgr_fetch_opts *o,
                           const char *what, char *entry, size_t entry_len, struct bgr_error *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[8], addr[INET6_ADDRSTRLEN];
    int rc = 0, gai;

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    (void)snprintf(port, sizeof(port), "%d", u->port);
    gai = getaddrinfo(u->host, port, &hints, &res);
    if (gai != 0 || !res)
        return bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "could not resolve the %s host",
                             what);
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (!o->allow_private &&
            (bgr_net_addr_blocked(ai->ai_addr) || bgr_net_addr_is_local(ai->ai_addr))) {
            mark_refused(o);
            rc = bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED,
                               "the %s URL points to a private or reserved address", what);
            goto out;
        }
    }
    /* Pin every checked address (up to 8, in the resolver's order) so curl
     * can fall back, e.g. from IPv6 to IPv4, without resolving again. */
    {
        char seen[8][INET6_ADDRSTRLEN];
        int count = 0;
        size_t n = (size_t)snprintf(entry, entry_len, "%s:%d:", u->host, u->port);
        for (struct addrinfo *ai = res; ai && count < 8 && n < entry_len; ai = ai->ai_next) {
            const void *src;
            bool dup = false;
            if (ai->ai_family == AF_INET)
                src = &((struct sockaddr_in *)(void *)ai->ai_addr)->sin_addr;
            else if (ai->ai_family == AF_INET6)
                src = &((struct sockaddr_in6 *)(void *)ai->ai_addr)->sin6_addr;
            else
                continue;
            if (!inet_ntop(ai->ai_family, src, addr, sizeof(addr)))
                continue;
            for (int k = 0; k < count; k++) /* one entry per socket type: dedupe */
                dup = dup || strcmp(seen[k], addr) == 0;
            if (dup)
                continue;
            memcpy(seen[count++], addr, sizeof(addr));
            n += (size_t)snprintf(entry + n, entry_len - n,
                                  ai->ai_family == AF_INET6 ? "%s[%s]" : "%s%s",
                                  count > 1 ? "," : "", addr);
        }
        if (count == 0 || n >= entry_len)
            rc = bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "could not resolve the %s host",
                               what);
    }
out:
    freeaddrinfo(res);
    return rc;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Translates a failed transfer into a message safe for the client. */
static int curl_fail(CURLcode cc, const struct xfer *x, const char *what, struct bgr_error *err)
{
    char lim[32];
    if (x->too_large || cc == CURLE_FILESIZE_EXCEEDED)
        return bgr_error_set(err, BGR_EFILE_TOO_LARGE,
                             "the %s is larger than the maximum file size of %s", what,
                             bgr_size_text(x->max_bytes, lim));
    if (x->refused_addr) {
        mark_refused(x->o);
        return bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED,
                             "the %s URL points to a private or reserved address", what);
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK && cancelled(x->o))
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "the server is shutting down");
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "timed out fetching the %s", what);
    case CURLE_COULDNT_RESOLVE_HOST:
        return bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "could not resolve the %s host",
                             what);
    case CURLE_COULDNT_CONNECT:
        return bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "could not connect to the %s host",
                             what);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED,
                             "TLS handshake with the %s host failed", what);
    default:
        return bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "fetching the %s failed (%s)", what,
                             curl_easy_strerror(cc));
    }
}

struct hop {
    const char *url;
    const struct bgr_fetch_opts *o;
    long timeout_ms; /* left for this hop */
    const char *what;
    /* POST only */
    struct curl_slist *headers;
    const void *post;
    size_t post_len;
};

/* One request without following redirects. On success *status and (GET)
 * *location (malloc'd, absolute, or NULL) are set. */
static int one_hop(const struct hop *h, struct xfer *x, long *status, char **location,
                   char *content_type, struct bgr_error *err)
{
    struct bgr_url u;
    struct curl_slist *resolve = NULL;
    char entry[1024];
    CURL *c = NULL;
    CURLcode cc;
    int rc;
    if (cancelled(h->o))
        return bgr_error_set(err, BGR_ESERVICE_BUSY, "the server is shutting down");
    rc = bgr_net_url_parse(h->url, &u, err);
    if (rc) {
        mark_refused(h->o);
        return rc;
    }
    rc = resolve_and_pin(&u, h->o, h->what, entry, sizeof(entry), err);
    if (rc)
        return rc;
    c = curl_easy_init();
    if (!c)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    if (!is_ip_literal(u.host)) {
        resolve = curl_slist_append(NULL, entry);
        if (!resolve) {
            rc = bgr_error_set(err, BGR_ENOMEM, "out of memory");
            goto out;
        }
        curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
    }
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->o->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "bgremover/0.1");
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    if (h->o->cancel) {
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    }
    if (x->body)
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_bytes);
    if (h->post) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->post);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->post_len);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h->headers);
    }
    cc = curl_easy_perform(c);
    /* A POST whose response body we stopped reading still got its status. */
    if (cc != CURLE_OK && !(h->post && cc == CURLE_WRITE_ERROR && !x->body)) {
        rc = curl_fail(cc, x, h->what, err);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (location) {
        char *loc = NULL;
        *location = NULL;
        if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            *location = strdup(loc);
    }
    if (content_type) {
        char *ct = NULL;
        content_type[0] = 0;
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            (void)snprintf(content_type, 128, "%s", ct);
    }
out:
    curl_slist_free_all(resolve);
    curl_easy_cleanup(c);
    return rc;
}

int bgr_net_get(const char *url, const struct bgr_fetch_opts *opts, struct bgr_buf *body,
                char *content_type, struct bgr_error *err)
{
    struct bgr_fetch_opts o;
    char *cur = NULL;
    int64_t deadline;
    int rc, hops = 0;

    rc = bgr_net_global_init(err);
    if (rc)
        return rc;
    bgr_fetch_opts_init(&o);
    if (opts) {
        o.allow_private = opts->allow_private;
        o.cancel = opts->cancel;
        o.refused = opts->refused;
        if (opts->max_bytes)
            o.max_bytes = opts->max_bytes;
        if (opts->connect_timeout_ms > 0)
            o.connect_timeout_ms = opts->connect_timeout_ms;
        if (opts->total_timeout_ms > 0)
            o.total_timeout_ms = opts->total_timeout_ms;
        o.max_redirects = opts->max_redirects < 0 ? 0
                          : opts->max_redirects   ? opts->max_redirects
                                                  : 5;
    }
    deadline = bgr_now_ms() + o.total_timeout_ms;
    bgr_buf_init(body, 0);
    cur = bgr_xstrdup(url);
    for (;;) {
        struct xfer x = {.o = &o, .body = body, .max_bytes = o.max_bytes};
        struct hop h = {.url = cur, .o = &o, .what = "image"};
        char *next = NULL;
        long status = 0;
        h.timeout_ms = (long)(deadline - bgr_now_ms());
        if (h.timeout_ms <= 0) {
            rc = bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "timed out fetching the image");
            break;
        }
        body->len = 0;
        rc = one_hop(&h, &x, &status, &next, content_type, err);
        if (rc == BGR_EINVALID_PARAMETER && hops > 0)
            rc = bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED,
                               "the image URL redirected to a URL that is not allowed");
        if (rc)
            break;
        if (status >= 300 && status < 400 && next) {
            free(cur);
            cur = next;
            if (++hops > o.max_redirects) {
                rc = bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED,
                                   "too many redirects (more than %d)", o.max_redirects);
                break;
            }
            continue;
        }
        free(next);
        if (status < 200 || status > 299) {
            rc = bgr_error_set(err, BGR_EIMAGE_DOWNLOAD_FAILED, "the image host answered HTTP %ld",
                               status);
            break;
        }
        /* NUL-terminate for callers that sniff text; not counted in len. */
        rc = bgr_buf_reserve(body, 1, err);
        if (!rc)
            body->data[body->len] = 0;
        break;
    }
    free(cur);
    if (rc)
        bgr_buf_release(body);
    return rc;
}

int bgr_net_post(const char *url, const struct bgr_fetch_opts *opts, const char *const *headers,
                 size_t n_headers, const void *body, size_t len, long *status,
                 struct bgr_error *err)
{
    struct bgr_fetch_opts o;
    struct curl_slist *hl = NULL;
    struct xfer x = {0};
    struct hop h = {0};
    long st = 0;
    int rc = bgr_net_global_init(err);
    if (rc)
        return rc;
    bgr_fetch_opts_init(&o);
    if (opts) {
        o.allow_private = opts->allow_private;
        o.cancel = opts->cancel;
        o.refused = opts->refused;
        if (opts->connect_timeout_ms > 0)
            o.connect_timeout_ms = opts->connect_timeout_ms;
        if (opts->total_timeout_ms > 0)
            o.total_timeout_ms = opts->total_timeout_ms;
    }
    for (size_t i = 0; i < n_headers; i++) {
        struct curl_slist *n = curl_slist_append(hl, headers[i]);
        if (!n) {
            curl_slist_free_all(hl);
            return bgr_error_set(err, BGR_ENOMEM, "out of memory");
        }
        hl = n;
    }
    /* "Expect: 100-continue" would add a round trip to every delivery. */
    {
        struct curl_slist *e = curl_slist_append(hl, "Expect:");
        if (e)
            hl = e;
    }
    x.o = &o;
    h.url = url;
    h.o = &o;
    h.what = "webhook";
    h.timeout_ms = o.total_timeout_ms;
    h.headers = hl;
    h.post = body ? body : "";
    h.post_len = len;
    rc = one_hop(&h, &x, &st, NULL, NULL, err);
    curl_slist_free_all(hl);
    if (!rc)
        *status = st;
    else
        *status = 0;
    return rc;
}
