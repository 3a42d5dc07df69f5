/*
 * s3.c - the S3 backend: result objects on any S3-compatible store through
 * libcurl, path-style (ENDPOINT/BUCKET/PREFIX<key>), signed with AWS
 * Signature V4 by libcurl itself (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3").
 *
 * What libcurl 7.88 (Debian 12) does and does not do, read from its
 * lib/http_aws_sigv4.c, and what we do about it:
 *   - it signs the method, the URL path and query exactly as written, the
 *     Host header and every header we add, and adds X-Amz-Date;
 *   - it takes the payload hash from an x-amz-content-sha256 header when we
 *     send one, else hashes CURLOPT_POSTFIELDS (not an upload), and it does
 *     not add that header itself, which S3 requires: so every request sends
 *     x-amz-content-sha256 with the SHA-256 of its body, computed here;
 *   - it neither sorts nor encodes the query: we write the ListObjectsV2
 *     query with its parameters in sorted order and values encoded as SigV4
 *     wants (everything but A-Z a-z 0-9 - _ . ~);
 *   - paths are used as written, so keys and prefixes are restricted to
 *     characters that need no encoding (results.c checks them).
 *
 * Traffic goes to the configured endpoint only: no redirects, proxies from
 * the environment ignored, http and https only. Each request has a connect
 * and a total timeout. Secrets are never logged and never in a message; the
 * secret key is wiped from memory at close.
 *
 * Connections: a small pool of curl easy handles (curl_easy_reset keeps a
 * handle's live connections), so requests reuse TCP/TLS connections.
 */
#define _GNU_SOURCE
#include "results/results_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net.h"

#define S3_POOL 8
#define S3_ERRBODY_MAX 4096
#define S3_LIST_MAX (8u << 20) /* one page of 1000 keys is ~ 300 KB */

static const char EMPTY_SHA256[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct s3_impl {
    char *endpoint; /* scheme://host[:port], no trailing '/' */
    char *bucket;
    char *prefix; /* "" or "a/b/" */
    char *sigv4;  /* "aws:amz:REGION:s3" */
    char *access_key;
    char *secret_key;
    char *token_hdr; /* "x-amz-security-token: ..." or NULL */
    char *spool_dir;
    long connect_ms, total_ms;
    pthread_mutex_t mu;
    CURL *idle[S3_POOL];
    int n_idle;
};

/* Where a response body goes. */
struct sink {
    CURL *h;
    struct bgr_buf *buf; /* 2xx body into buf (its cap applies), or */
    int fd;              /* into fd (-1 = none) */
    uint64_t fd_max, fd_len;
    bool too_large, io_failed;
    char errbody[S3_ERRBODY_MAX]; /* non-2xx body, truncated */
    size_t errlen;
};

struct source {
    const uint8_t *p;
    size_t len, off;
};

static struct s3_impl *impl(struct bgr_results *r)
{
    return r->impl;
}

static size_t on_read(char *dst, size_t size, size_t nitems, void *arg)
{
    struct source *s = arg;
    size_t n = size * nitems;
    if (n > s->len - s->off)
        n = s->len - s->off;
    memcpy(dst, s->p + s->off, n);
    s->off += n;
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *k = arg;
    size_t n = size * nmemb;
    long status = 0;
    curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        size_t room = sizeof(k->errbody) - 1 - k->errlen;
        memcpy(k->errbody + k->errlen, data, n < room ? n : room);
        k->errlen += n < room ? n : room;
        k->errbody[k->errlen] = 0;
        return n;
    }
    if (k->buf) {
        if (bgr_buf_append(k->buf, data, n, NULL) != 0) {
            k->too_large = true;
            return 0; /* aborts the transfer */
        }
        return n;
    }
    if (k->fd >= 0) {
        if (k->fd_max && k->fd_len + n > k->fd_max) {
            k->too_large = true;
            return 0;
        }
        for (size_t off = 0; off < n;) {
            ssize_t w = write(k->fd, data + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                k->io_failed = true;
                return 0;
            }
            off += (size_t)w;
        }
        k->fd_len += n;
    }
    return n;
}

static CURL *handle_get(struct s3_impl *s)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->n_idle > 0)
        h = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->mu);
    if (h)
        curl_easy_reset(h); /* drops every option, keeps the connections */
    else
        h = curl_easy_init();
    return h;
}

static void handle_put(struct s3_impl *s, CURL *h)
{
    if (!h)
        return;
    /* The credentials are options: gone from the handle once reset. */
    curl_easy_reset(h);
    pthread_mutex_lock(&s->mu);
    if (s->n_idle < S3_POOL) {
        s->idle[s->n_idle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* The <Code> of an S3 error body ("" if none). */
static void err_code(const struct sink *k, char *out, size_t n)
{
    const char *s = strstr(k->errbody, "<Code>"), *e;
    out[0] = 0;
    if (!s)
        return;
    s += 6;
    e = strstr(s, "</Code>");
    if (!e || (size_t)(e - s) >= n)
        return;
    for (const char *c = s; c < e; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
            return; /* not a code: leave it out of our messages */
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = 0;
}

/* SigV4 URI encoding of a query value: all but the unreserved characters. */
static void query_encode(const char *in, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)in; *c && o + 4 < n; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~') {
            out[o++] = (char)*c;
        } else {
            out[o++] = '%';
            out[o++] = hex[*c >> 4];
            out[o++] = hex[*c & 15];
        }
    }
    out[o] = 0;
}

/*
 * One signed request. key NULL = the bucket itself (with query). body/len
 * for PUT. On a 2xx answer returns 0; otherwise maps the status (and the
 * S3 error code) to BGR_ENOT_FOUND (404 NoSuchKey) or BGR_EIO with a
 * message naming what failed, never a secret. *status gets the HTTP status.
 */
static int request(struct s3_impl *s, const char *method, const char *key, const char *query,
                   const void *body, size_t len, const char *content_type, struct sink *k,
                   struct bgr_error *err)
{
    CURL *h = handle_get(s);
    struct curl_slist *hdrs = NULL, *t;
    struct source src = {.p = body, .len = len};
    char url[2048], hash[65], hdr[160], what[200], code[64], cerr[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURLcode cc;
    int rc = 0;

    if (!h)
        return bgr_error_set(err, BGR_ENOMEM, "S3: cannot create a curl handle");
    if (key)
        (void)snprintf(what, sizeof what, "%s s3://%s/%s%s", method, s->bucket, s->prefix, key);
    else
        (void)snprintf(what, sizeof what, "listing s3://%s/%s", s->bucket, s->prefix);
    if ((size_t)snprintf(url, sizeof url, "%s/%s%s%s%s%s", s->endpoint, s->bucket, key ? "/" : "",
                         key ? s->prefix : "", key ? key : "", query ? query : "") >= sizeof url) {
        handle_put(s, h);
        return bgr_error_set(err, BGR_EIO, "S3: URL too long for %s", what);
    }
    if (body && len)
        bgr_sha256_hex(body, len, hash);
    else
        memcpy(hash, EMPTY_SHA256, sizeof hash);
    (void)snprintf(hdr, sizeof hdr, "x-amz-content-sha256: %s", hash);
    t = curl_slist_append(hdrs, hdr);
    if (t && content_type) {
        hdrs = t;
        (void)snprintf(hdr, sizeof hdr, "Content-Type: %s", content_type);
        t = curl_slist_append(hdrs, hdr);
    }
    if (t && s->token_hdr) {
        hdrs = t;
        t = curl_slist_append(hdrs, s->token_hdr);
    }
    if (!t) {
        curl_slist_free_all(hdrs);
        handle_put(s, h);
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    }
    hdrs = t;

    k->h = h;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never an environment proxy */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->total_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_USERNAME, s->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret_key);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    /* Every request we make is idempotent (PUT of the same bytes, GET,
     * DELETE, a listing), so a server-side hiccup (500, 502, 503, 504, as
     * S3 asks clients to retry) or a dropped connection is retried twice,
     * after 100 and 400 ms; a timeout is not (it already took its time). */
    for (int attempt = 0;; attempt++) {
        cc = curl_easy_perform(h);
        status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        bool transient = (cc == CURLE_OK &&
                          (status == 500 || status == 502 || status == 503 || status == 504)) ||
                         cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
                         cc == CURLE_GOT_NOTHING;
        if (!transient || attempt == 2 || k->too_large || k->io_failed)
            break;
        usleep(attempt ? 400000 : 100000);
        /* Start the body over. */
        src.off = 0;
        k->errlen = 0;
        k->errbody[0] = 0;
        if (k->buf)
            k->buf->len = 0;
        if (k->fd >= 0) {
            if (ftruncate(k->fd, 0) != 0 || lseek(k->fd, 0, SEEK_SET) != 0) {
                k->io_failed = true;
                break;
            }
            k->fd_len = 0;
        }
    }
    err_code(k, code, sizeof code);
    if (k->too_large)
        rc = bgr_error_set(err, BGR_EFILE_TOO_LARGE, "S3: %s: larger than expected", what);
    else if (k->io_failed)
        rc = bgr_error_set(err, BGR_EIO, "S3: %s: cannot spool the object: %s", what,
                           strerror(errno));
    else if (cc != CURLE_OK)
        rc = bgr_error_set(err, BGR_EIO, "S3: %s: cannot reach %s: %s", what, s->endpoint,
                           cerr[0] ? cerr : curl_easy_strerror(cc));
    else if (status >= 200 && status <= 299)
        rc = 0;
    else if (status == 404 && (strcmp(code, "NoSuchKey") == 0 || (!code[0] && key)))
        rc = bgr_error_set(err, BGR_ENOT_FOUND, "S3: %s: no such object", what);
    else if (status == 403 || strcmp(code, "InvalidAccessKeyId") == 0 ||
             strcmp(code, "SignatureDoesNotMatch") == 0)
        rc = bgr_error_set(err, BGR_EIO,
                           "S3: %s: %s refused our credentials (HTTP %ld%s%s): check "
                           "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION",
                           what, s->endpoint, status, code[0] ? " " : "", code);
    else if (strcmp(code, "NoSuchBucket") == 0)
        rc = bgr_error_set(err, BGR_EIO, "S3: %s: bucket '%s' does not exist at %s", what,
                           s->bucket, s->endpoint);
    else
        rc = bgr_error_set(err, BGR_EIO, "S3: %s: %s answered HTTP %ld%s%s", what, s->endpoint,
                           status, code[0] ? " " : "", code);
    curl_slist_free_all(hdrs);
    handle_put(s, h);
    return rc;
}

static int s3_put(struct bgr_results *r, const char *key, const void *data, size_t len,
                  const char *content_type, struct bgr_error *err)
{
    struct sink k = {.fd = -1};
    return request(impl(r), "PUT", key, NULL, data, len,
                   content_type ? content_type : "application/octet-stream", &k, err);
}

/* An unlinked file in the spool directory. */
static int spool_open(struct s3_impl *s, struct bgr_error *err)
{
    char path[4200];
    int fd = open(s->spool_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    (void)snprintf(path, sizeof path, "%s/bgremover-s3-XXXXXX", s->spool_dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return bgr_error_set(err, BGR_EIO, "S3: cannot create a spool file in %s: %s", s->spool_dir,
                             strerror(errno));
    unlink(path);
    return fd;
}

static int s3_open_obj(struct bgr_results *r, const char *key, uint64_t max_bytes,
                       struct bgr_results_obj *out, struct bgr_error *err)
{
    struct sink k = {.fd = -1, .fd_max = max_bytes};
    int rc = spool_open(impl(r), err);
    if (rc < 0)
        return rc;
    k.fd = rc;
    rc = request(impl(r), "GET", key, NULL, NULL, 0, NULL, &k, err);
    if (rc) {
        close(k.fd);
        return rc;
    }
    out->fd = k.fd;
    out->size = k.fd_len;
    return 0;
}

static int s3_read(struct bgr_results *r, const char *key, size_t max_bytes, struct bgr_buf *out,
                   struct bgr_error *err)
{
    struct sink k = {.fd = -1, .buf = out};
    int rc = request(impl(r), "GET", key, NULL, NULL, 0, NULL, &k, err);
    (void)max_bytes; /* out's cap_limit, set by results.c */
    if (rc)
        bgr_buf_release(out);
    return rc;
}

static int s3_del(struct bgr_results *r, const char *key, struct bgr_error *err)
{
    struct sink k = {.fd = -1};
    int rc = request(impl(r), "DELETE", key, NULL, NULL, 0, NULL, &k, err);
    return rc == BGR_ENOT_FOUND ? 0 : rc; /* gone already: done */
}

struct list_ctx {
    struct s3_impl *s;
    int64_t now_ms, min_age_ms;
    bgr_results_list_fn fn;
    void *ctx;
};

/* A listed object: ours if it is PREFIX<key> with a valid key. */
static int list_entry(void *arg, const char *full, int64_t mtime_ms)
{
    struct list_ctx *c = arg;
    size_t pn = strlen(c->s->prefix);
    if (strncmp(full, c->s->prefix, pn) != 0 || !bgr_results_key_valid(full + pn))
        return 0;
    if (c->now_ms - mtime_ms < c->min_age_ms)
        return 0;
    return c->fn(c->ctx, full + pn, mtime_ms);
}

/* One ListObjectsV2 page into *page; token "" for the first. */
static int list_page(struct s3_impl *s, const char *token, int max_keys, struct bgr_buf *page,
                     struct bgr_error *err)
{
    char etok[3200], epre[800], query[4200];
    struct sink k = {.fd = -1, .buf = page};
    query_encode(token, etok, sizeof etok);
    query_encode(s->prefix, epre, sizeof epre);
    /* Parameters in SigV4's sorted order (libcurl signs the query as is). */
    (void)snprintf(query, sizeof query, "?%s%s%slist-type=2&max-keys=%d&prefix=%s",
                   token[0] ? "continuation-token=" : "", etok, token[0] ? "&" : "", max_keys,
                   epre);
    bgr_buf_init(page, S3_LIST_MAX);
    return request(s, "GET", NULL, query, NULL, 0, NULL, &k, err);
}

static int s3_list(struct bgr_results *r, int64_t now_ms, int64_t min_age_ms,
                   bgr_results_list_fn fn, void *ctx, struct bgr_error *err)
{
    struct list_ctx c = {impl(r), now_ms, min_age_ms, fn, ctx};
    char token[1100] = "", next[1100];
    int rc;
    do {
        struct bgr_buf page;
        rc = list_page(impl(r), token, 1000, &page, err);
        if (!rc)
            rc = bgr_s3_list_parse((const char *)page.data, page.len, list_entry, &c, next,
                                   sizeof next, err);
        bgr_buf_release(&page);
        if (!rc && next[0] && strcmp(next, token) == 0)
            rc = bgr_error_set(err, BGR_EIO, "S3: the listing repeats its continuation token");
        memcpy(token, next, sizeof token);
    } while (!rc && token[0]);
    return rc;
}

static int s3_check(struct bgr_results *r, struct bgr_error *err)
{
    struct bgr_buf page;
    char next[8];
    int rc = list_page(impl(r), "", 1, &page, err);
    if (!rc) {
        /* Parse it too: an endpoint that is not S3 fails here, not later. */
        struct list_ctx c = {impl(r), 0, 1, NULL, NULL}; /* min_age 1 at now 0: nothing passes */
        rc = bgr_s3_list_parse((const char *)page.data, page.len, list_entry, &c, next, sizeof next,
                               err);
        if (rc == BGR_EIO && strstr(err->msg, "continuation token"))
            rc = 0; /* a token longer than our probe's buffer: fine */
    }
    bgr_buf_release(&page);
    return rc;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void s3_close(struct bgr_results *r)
{
    struct s3_impl *s = impl(r);
    if (!s)
        return;
    for (int i = 0; i < s->n_idle; i++)
        curl_easy_cleanup(s->idle[i]);
    pthread_mutex_destroy(&s->mu);
    free(s->endpoint);
    free(s->bucket);
    free(s->prefix);
    free(s->sigv4);
    free(s->access_key);
    wipe_free(s->secret_key);
    wipe_free(s->token_hdr);
    free(s->spool_dir);
    free(s);
}

static const struct bgr_results_ops s3_ops = {
    .check = s3_check,
    .put = s3_put,
    .open_obj = s3_open_obj,
    .read = s3_read,
    .del = s3_del,
    .list = s3_list,
    .close = s3_close,
};

static const char *setting(const char *given, const char *env)
{
    const char *v = given ? given : getenv(env);
    return v && v[0] ? v : NULL;
}

/* Accepts scheme://host[:port][/] only: the bucket goes in the path. */
static int endpoint_parse(const char *ep, char **out, struct bgr_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *user = NULL, *query = NULL;
    int rc = 0;
    if (!u)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, ep, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = bgr_error_set(err, BGR_EUSAGE, "results: BGR_S3_ENDPOINT '%s' is not a URL", ep);
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if ((strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) || user || query ||
        (path && strcmp(path, "/") != 0 && path[0])) {
        rc = bgr_error_set(err, BGR_EUSAGE,
                           "results: BGR_S3_ENDPOINT must be http(s)://HOST[:PORT] (no path, "
                           "credentials or query; the bucket comes from s3://BUCKET/PREFIX)");
        goto out;
    }
    if (asprintf(out, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "") < 0) {
        *out = NULL;
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory");
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(user);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

static bool region_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 40)
        return false;
    for (const char *c = r; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return false;
    return true;
}

int bgr_results_s3_open(struct bgr_results *r, const char *bucket, const char *prefix,
                        const struct bgr_results_opts *o, struct bgr_error *err)
{
    const char *region = setting(o->region, "AWS_REGION");
    const char *ak = setting(o->access_key_id, "AWS_ACCESS_KEY_ID");
    const char *sk = setting(o->secret_access_key, "AWS_SECRET_ACCESS_KEY");
    const char *tok = setting(o->session_token, "AWS_SESSION_TOKEN");
    const char *ep = setting(o->endpoint, "BGR_S3_ENDPOINT");
    const char *spool = o->spool_dir ? o->spool_dir : setting(NULL, "TMPDIR");
    char *def_ep = NULL;
    struct s3_impl *s;
    int rc = bgr_net_global_init(err);
    if (rc)
        return rc;
    if (!region && !o->region)
        region = setting(NULL, "AWS_DEFAULT_REGION"); /* the older SDK spelling */
    if (!region)
        region = "us-east-1";
    if (!region_valid(region))
        return bgr_error_set(err, BGR_EUSAGE, "results: AWS_REGION '%s' is not a region name",
                             region);
    if (!ak || !sk)
        return bgr_error_set(err, BGR_EUSAGE,
                             "results: %s needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                             r->location);
    if (strlen(ak) > 128 || strchr(ak, ':') || (tok && strlen(tok) > 4096))
        return bgr_error_set(err, BGR_EUSAGE,
                             "results: AWS_ACCESS_KEY_ID or AWS_SESSION_TOKEN is malformed");
    if (!ep) {
        if (asprintf(&def_ep, "https://s3.%s.amazonaws.com", region) < 0)
            return bgr_error_set(err, BGR_ENOMEM, "out of memory");
        ep = def_ep;
    }
    s = bgr_xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    r->impl = s;
    r->ops = &s3_ops;
    rc = endpoint_parse(ep, &s->endpoint, err);
    free(def_ep);
    if (rc) {
        s3_close(r);
        r->impl = NULL;
        r->ops = NULL;
        return rc;
    }
    s->bucket = bgr_xstrdup(bucket);
    s->prefix = bgr_xstrdup(prefix);
    s->access_key = bgr_xstrdup(ak);
    s->secret_key = bgr_xstrdup(sk);
    if (tok && asprintf(&s->token_hdr, "x-amz-security-token: %s", tok) < 0)
        s->token_hdr = NULL;
    if (asprintf(&s->sigv4, "aws:amz:%s:s3", region) < 0)
        s->sigv4 = NULL;
    if ((tok && !s->token_hdr) || !s->sigv4) {
        s3_close(r);
        r->impl = NULL;
        r->ops = NULL;
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    }
    s->spool_dir = bgr_xstrdup(spool ? spool : "/tmp");
    s->connect_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 5000;
    s->total_ms = o->timeout_ms > 0 ? o->timeout_ms : 120000;
    return 0;
}
