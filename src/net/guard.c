/*
 * guard.c - the SSRF guard: which URLs and which addresses the server may
 * fetch from on a client's behalf.
 *
 * IPv4: everything that is not globally routable unicast is refused (the
 * special-purpose registry: this network, private, CGNAT, loopback,
 * link-local, IETF protocol assignments, documentation, benchmarking, 6to4
 * relay, multicast, reserved, broadcast).
 * IPv6: only 2000::/3 (global unicast) is allowed, minus the parts of it
 * that are not plain internet hosts or that embed an IPv4 address the
 * client picks (Teredo and the rest of 2001::/23, documentation, 6to4,
 * SRv6). Outside 2000::/3 lie ::, ::1, IPv4-mapped and -compatible
 * addresses, NAT64 (64:ff9b::/96, 64:ff9b:1::/48), discard (100::/64),
 * unique-local, link-local, site-local and multicast: all refused.
 */
#define _GNU_SOURCE
#include "net/net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct v4_range {
    uint32_t net;
    int bits;
};

static const struct v4_range v4_blocked[] = {
    {0x00000000, 8},  /* 0.0.0.0/8 this network */
    {0x0A000000, 8},  /* 10/8 private */
    {0x64400000, 10}, /* 100.64/10 CGNAT */
    {0x7F000000, 8},  /* 127/8 loopback */
    {0xA9FE0000, 16}, /* 169.254/16 link-local (cloud metadata) */
    {0xAC100000, 12}, /* 172.16/12 private */
    {0xC0000000, 24}, /* 192.0.0/24 IETF protocol assignments */
    {0xC0000200, 24}, /* 192.0.2/24 TEST-NET-1 */
    {0xC0586300, 24}, /* 192.88.99/24 6to4 relay anycast */
    {0xC0A80000, 16}, /* 192.168/16 private */
    {0xC6120000, 15}, /* 198.18/15 benchmarking */
    {0xC6336400, 24}, /* 198.51.100/24 TEST-NET-2 */
    {0xCB007100, 24}, /* 203.0.113/24 TEST-NET-3 */
    {0xE0000000, 4},  /* 224/4 multicast */
    {0xF0000000, 4},  /* 240/4 reserved, and 255.255.255.255 */
};

static bool v4_is_blocked(uint32_t a)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(v4_blocked); i++) {
        uint32_t mask = 0xFFFFFFFFu << (32 - v4_blocked[i].bits);
        if ((a & mask) == v4_blocked[i].net)
            return true;
    }
    return false;
}

struct v6_range {
    uint8_t net[16];
    int bits;
};

static const struct v6_range v6_blocked_in_global[] = {
    {{0x20, 0x01, 0x00, 0x00}, 23}, /* 2001::/23 IETF protocol assignments, Teredo */
    {{0x20, 0x01, 0x0d, 0xb8}, 32}, /* 2001:db8::/32 documentation */
    {{0x20, 0x02}, 16},             /* 2002::/16 6to4 (embeds any IPv4) */
    {{0x3f, 0xff, 0x00, 0x00}, 20}, /* 3fff::/20 documentation */
    {{0x5f, 0x00}, 16},             /* 5f00::/16 SRv6 SIDs */
};

static bool v6_in(const uint8_t *a, const uint8_t *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    if (rest) {
        uint8_t mask = (uint8_t)(0xFF << (8 - rest));
        if ((a[full] & mask) != (net[full] & mask))
            return false;
    }
    return true;
}

static bool v6_is_blocked(const uint8_t *a)
{
    if ((a[0] & 0xE0) != 0x20) /* outside 2000::/3 */
        return true;
    for (size_t i = 0; i < BGR_ARRAY_LEN(v6_blocked_in_global); i++)
        if (v6_in(a, v6_blocked_in_global[i].net, v6_blocked_in_global[i].bits))
            return true;
    return false;
}

bool bgr_net_addr_blocked(const struct sockaddr *sa)
{
    if (!sa)
        return true;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return v4_is_blocked(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return v6_is_blocked(in6->sin6_addr.s6_addr);
    }
    return true;
}

bool bgr_net_addr_is_local(const struct sockaddr *sa)
{
    struct ifaddrs *ifs = NULL;
    bool local = false;
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return true;
    /* Asked per connection, not cached: addresses come and go (DHCP,
     * failover) and a stale list would let the new one through. */
    if (getifaddrs(&ifs) != 0)
        return true; /* cannot tell: fail closed */
    for (struct ifaddrs *i = ifs; i && !local; i = i->ifa_next) {
        const struct sockaddr *ia = i->ifa_addr;
        if (!ia || ia->sa_family != sa->sa_family)
            continue;
        if (sa->sa_family == AF_INET)
            local = ((const struct sockaddr_in *)(const void *)ia)->sin_addr.s_addr ==
                    ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr;
        else
            local = memcmp(&((const struct sockaddr_in6 *)(const void *)ia)->sin6_addr,
                           &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                           sizeof(struct in6_addr)) == 0;
    }
    freeifaddrs(ifs);
    return local;
}

bool bgr_net_ip_blocked(const char *ip)
{
    struct sockaddr_in in = {0};
    struct sockaddr_in6 in6 = {0};
    if (ip && inet_pton(AF_INET, ip, &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        return bgr_net_addr_blocked((const struct sockaddr *)&in);
    }
    if (ip && inet_pton(AF_INET6, ip, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        return bgr_net_addr_blocked((const struct sockaddr *)&in6);
    }
    return true;
}

/* ---- URLs ------------------------------------------------------------------ */

int bgr_net_url_parse(const char *url, struct bgr_url *out, struct bgr_error *err)
{
    struct bgr_url u = {0};
    CURLU *h = NULL;
    char *scheme = NULL, *user = NULL, *pass = NULL, *host = NULL, *port = NULL, *zone = NULL;
    size_t len = url ? strlen(url) : 0;
    int rc = 0;

    if (len == 0)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "the URL is empty");
    if (len > BGR_NET_URL_MAX)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "the URL is longer than %d bytes",
                             BGR_NET_URL_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "the URL contains whitespace or control characters");
    {
        /* curl reads "http:///host" as "http://host"; a careful client
         * never sends that, so refuse it instead of guessing. */
        const char *sep = strstr(url, "://");
        if (sep && (sep[3] == '/' || sep[3] == '\\'))
            return bgr_error_set(err, BGR_EINVALID_PARAMETER, "the URL has no host");
    }
    h = curl_url();
    if (!h)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory");
    /* Parse with curl's own parser, so what we check is what curl will
     * fetch (no parser differential). No scheme guessing. */
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "not an absolute http(s) URL");
        goto out;
    }
    for (char *p = scheme; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "only http and https URLs are allowed");
        goto out;
    }
    u.https = strcmp(scheme, "https") == 0;
    if (curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(h, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "credentials in URLs are not allowed");
        goto out;
    }
    if (curl_url_get(h, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "IPv6 zone ids are not allowed");
        goto out;
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "the URL has no host");
        goto out;
    }
    /* International names must reach DNS (and the pin) in their ASCII
     * form. curl would convert with the process locale, which a server
     * does not set (and its converter leaks on failure in 7.88), so a
     * non-ASCII name is refused with advice instead. */
    for (const char *p = host; *p; p++) {
        if ((unsigned char)*p >= 0x80) {
            rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                               "give international host names in their ASCII (xn--) form");
            goto out;
        }
    }
    {
        const char *hp = host;
        size_t hl = strlen(host);
        if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
            hp++;
            hl -= 2;
        }
        if (hl >= sizeof(u.host)) {
            rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "the URL's host is too long");
            goto out;
        }
        for (size_t i = 0; i < hl; i++)
            u.host[i] = (char)tolower((unsigned char)hp[i]);
        u.host[hl] = 0;
    }
    if (curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "the URL's port is invalid");
        goto out;
    }
    u.port = (int)strtol(port, NULL, 10); /* curl validated the digits */
    if (u.port < 1 || u.port > 65535) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "the URL's port is invalid");
        goto out;
    }
    *out = u;
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(pass);
    curl_free(host);
    curl_free(port);
    curl_free(zone);
    curl_url_cleanup(h);
    return rc;
}
