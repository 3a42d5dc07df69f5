/*
 * net.h - outbound HTTP(S) for the server: GET of a client's image_url and
 * POST of webhooks, through libcurl, behind a URL guard against SSRF.
 *
 * The guard: http and https only; no credentials in the URL; the host is
 * resolved here (getaddrinfo) and every address checked (private, loopback,
 * link-local, multicast, reserved, documentation, CGNAT, unique-local,
 * IPv4-mapped/compatible, NAT64, 6to4, Teredo, 0.0.0.0 ...
 * are refused); the checked address is pinned (CURLOPT_RESOLVE) and checked
 * again when curl opens the socket, so DNS rebinding cannot swap it; proxies
 * from the environment are ignored; redirects are followed here, at most 5,
 * each one guarded again. Decimal/octal/hex IPv4 spellings are caught because
 * the resolved address is checked, not the string. allow_private lifts only
 * the address check (development and tests).
 *
 * What it does not do: retries, caching, cookies, authentication.
 *
 * Thread-safety: every function may be called from any thread after
 * bgr_net_global_init (each call uses its own curl handle).
 *
 * Errors: messages are safe to show to the client who gave the URL: they
 * never name resolved addresses or internal hosts.
 */
#ifndef BGR_NET_NET_H
#define BGR_NET_NET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/core.h"

/* curl_global_init, once per process (thread-safe, idempotent). */
int bgr_net_global_init(struct bgr_error *err);

struct bgr_fetch_opts {
    size_t max_bytes;        /* body cap (0 = 25 MiB): past it BGR_EFILE_TOO_LARGE */
    bool allow_private;      /* lift the address check (--allow-private-urls) */
    long connect_timeout_ms; /* 0 = 5000 */
    long total_timeout_ms;   /* whole transfer incl. redirects; 0 = 30000 */
    int max_redirects;       /* 0 = 5; negative = follow none */
    /* Optional: while *cancel is nonzero the request ends at once (checked
     * before each hop and during the transfer, about every second when
     * nothing arrives) with BGR_ESERVICE_BUSY "the server is shutting
     * down". A name lookup in progress is not interrupted. */
    const atomic_int *cancel;
    /* Optional output: set to true when the request was not made because
     * the guard refused the destination (its address is private, loopback,
     * reserved or the server's own; or the URL breaks the syntax rules).
     * Such a failure is final: retrying cannot help, unlike a name that
     * does not resolve, a refused connection or a timeout. Left alone
     * otherwise (the caller initialises it). */
    bool *refused;
};
/* Fills *o with the defaults above. */
void bgr_fetch_opts_init(struct bgr_fetch_opts *o);

/* GETs url. On success *body (initialised here; caller releases) holds the
 * body and content_type (may be NULL; 128 bytes) the response's type ("" if
 * none). Errors: BGR_EINVALID_PARAMETER (not an acceptable URL: scheme,
 * credentials, length, syntax), BGR_EIMAGE_DOWNLOAD_FAILED (refused address,
 * DNS, connect, TLS, timeout, non-2xx, too many redirects),
 * BGR_EFILE_TOO_LARGE (over max_bytes, by Content-Length or while reading). */
int bgr_net_get(const char *url, const struct bgr_fetch_opts *o, struct bgr_buf *body,
                char *content_type, struct bgr_error *err);

/* POSTs body (JSON) to url with extra headers ("Name: value" strings, n of
 * them); redirects are not followed (a 3xx is a failed delivery). *status
 * receives the HTTP status (0 if none came). The response body is read up
 * to 64 KiB and dropped. Returns 0 when a response came (any status),
 * BGR_EINVALID_PARAMETER for a bad URL, BGR_EIMAGE_DOWNLOAD_FAILED when
 * nothing came (refused address, DNS, connect, timeout). */
int bgr_net_post(const char *url, const struct bgr_fetch_opts *o, const char *const *headers,
                 size_t n_headers, const void *body, size_t len, long *status,
                 struct bgr_error *err);

/* ---- the guard, exposed for tests and for the API's early validation ---- */

#define BGR_NET_URL_MAX 2048
struct bgr_url {
    bool https;
    char host[256]; /* as given (IPv6 without brackets), lower-case */
    int port;       /* explicit or the scheme's default */
};
/* Parses and checks an absolute URL (with curl's own parser, so what is
 * checked is what curl fetches): http/https, a host in ASCII (international
 * names in their xn-- form), no user/password, no IPv6 zone id, at most
 * BGR_NET_URL_MAX bytes, no whitespace or control characters.
 * Errors: BGR_EINVALID_PARAMETER with a message saying which rule failed. */
int bgr_net_url_parse(const char *url, struct bgr_url *out, struct bgr_error *err);

/* True when a connection to this address must be refused (anything not
 * globally routable unicast). Handles AF_INET and AF_INET6; other families
 * are blocked. */
bool bgr_net_addr_blocked(const struct sockaddr *sa);
/* True when the address is one of this host's own interface addresses: a
 * public address of the server itself reaches everything it listens on
 * (admin ports, other services on 0.0.0.0), so it is refused like loopback.
 * Also true when the interface list cannot be read (fail closed). */
bool bgr_net_addr_is_local(const struct sockaddr *sa);
/* The same for a numeric address string ("10.0.0.1", "::ffff:127.0.0.1");
 * a string that is not a numeric address is blocked. */
bool bgr_net_ip_blocked(const char *ip);

#endif
