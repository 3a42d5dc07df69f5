/*
 * test_httpd.h - a tiny HTTP/1.1 server for the net and jobs unit tests:
 * one thread on 127.0.0.1 and an ephemeral port, one connection at a time,
 * "Connection: close" on every answer. A handler sees the parsed request
 * and writes the raw response. Header-only (static functions) so each test
 * binary gets its own copy.
 */
#ifndef BGR_TEST_HTTPD_H
#define BGR_TEST_HTTPD_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct thttpd_req {
    char method[16];
    char path[1024];
    char headers[8192]; /* raw header block, "Name: value\r\n" lines */
    char *body;         /* NUL-terminated */
    size_t body_len;
};

/* Writes the full response (status line, headers, body) into out/out_len
 * (malloc'd by the handler). Called on the server thread. */
typedef void (*thttpd_handler)(void *ctx, const struct thttpd_req *r, char **out, size_t *out_len);

struct thttpd {
    int fd;
    int port;
    pthread_t th;
    thttpd_handler handler;
    void *ctx;
    pthread_mutex_t mu;
    int hits; /* requests served (under mu) */
};

/* Finds header name (case-insensitive) in r; copies its value to out. */
__attribute__((unused)) static bool thttpd_header(const struct thttpd_req *r, const char *name,
                                                  char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            size_t vl = len - nl - 1;
            while (vl && *v == ' ') {
                v++;
                vl--;
            }
            if (vl >= n)
                vl = n - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return true;
        }
        if (!eol)
            break;
        p = eol + 2;
    }
    return false;
}

static void thttpd_serve_one(struct thttpd *s, int c)
{
    char buf[65536];
    size_t got = 0;
    char *hdr_end = NULL;
    struct thttpd_req r;
    char *out = NULL;
    size_t out_len = 0, need;
    char cl[32];

    memset(&r, 0, sizeof(r));
    while (got < sizeof(buf) - 1) {
        ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            return;
        got += (size_t)n;
        buf[got] = 0;
        hdr_end = strstr(buf, "\r\n\r\n");
        if (hdr_end)
            break;
    }
    if (!hdr_end)
        return;
    sscanf(buf, "%15s %1023s", r.method, r.path);
    {
        char *line2 = strstr(buf, "\r\n");
        size_t hl = (size_t)(hdr_end + 2 - (line2 + 2));
        if (hl >= sizeof(r.headers))
            hl = sizeof(r.headers) - 1;
        memcpy(r.headers, line2 + 2, hl);
    }
    need = thttpd_header(&r, "Content-Length", cl, sizeof(cl)) ? (size_t)strtoul(cl, NULL, 10) : 0;
    while (got - (size_t)(hdr_end + 4 - buf) < need && got < sizeof(buf) - 1) {
        ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
    }
    r.body = hdr_end + 4;
    r.body_len = got - (size_t)(hdr_end + 4 - buf);
    pthread_mutex_lock(&s->mu);
    s->hits++;
    pthread_mutex_unlock(&s->mu);
    s->handler(s->ctx, &r, &out, &out_len);
    for (size_t off = 0; out && off < out_len;) {
        ssize_t n = write(c, out + off, out_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    free(out);
}

static void *thttpd_main(void *arg)
{
    struct thttpd *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break; /* shutdown() of the listening socket */
        thttpd_serve_one(s, c);
        shutdown(c, SHUT_WR);
        close(c);
    }
    return NULL;
}

static int thttpd_start(struct thttpd *s, thttpd_handler h, void *ctx)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int one = 1;
    memset(s, 0, sizeof(*s));
    s->handler = h;
    s->ctx = ctx;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0)
        return -1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
        close(s->fd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->th, NULL, thttpd_main, s) == 0 ? 0 : -1;
}

static void thttpd_stop(struct thttpd *s)
{
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->th, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

__attribute__((unused)) static int thttpd_hits(struct thttpd *s)
{
    int n;
    pthread_mutex_lock(&s->mu);
    n = s->hits;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Builds a response: status, extra headers ("" or "Name: v\r\n"...), body.
 * with_length false omits Content-Length (the body ends at close). */
static void thttpd_respond(char **out, size_t *out_len, int status, const char *extra,
                           const void *body, size_t body_len, bool with_length)
{
    char head[1024];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%sConnection: close\r\n", status,
                     extra ? extra : "");
    if (with_length)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    *out = malloc((size_t)n + body_len);
    memcpy(*out, head, (size_t)n);
    if (body_len)
        memcpy(*out + n, body, body_len);
    *out_len = (size_t)n + body_len;
}

#endif
