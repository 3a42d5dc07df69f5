/*
 * fuzz_params.c - the small string parsers of option values and URLs:
 * bgr_parse_color / format / max_res / quality / refine / bool /
 * output_type / crop_margin (src/pipeline, shared by CLI and API),
 * api_opt_from_string (the API's form-field path), bgr_net_url_parse (the
 * syntax half of the SSRF guard) and the address classifier
 * (bgr_net_ip_blocked on text, bgr_net_addr_blocked on raw socket
 * addresses). No network is used.
 *
 * Input: byte 0 picks the parser, the rest is the value.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api/api_int.h"
#include "fuzz.h"
#include "net/net.h"
#include "pipeline/pipeline.h"

static void expect_invalid(int rc, const struct bgr_error *e)
{
    if (rc) {
        fuzz_check(rc == BGR_EINVALID_PARAMETER);
        fuzz_check(e->code == BGR_EINVALID_PARAMETER && e->msg[0] != '\0');
    }
}

static void url(const char *s)
{
    struct bgr_url u;
    struct bgr_error e = {0};
    int rc = bgr_net_url_parse(s, &u, &e);
    expect_invalid(rc, &e);
    if (rc)
        return;
    size_t n = strlen(s);
    fuzz_check(n <= BGR_NET_URL_MAX);
    fuzz_check(u.host[0] != '\0' && memchr(u.host, '\0', sizeof u.host));
    fuzz_check(u.port >= 1 && u.port <= 65535);
    /* curl's parser also takes "http:/host" and "http:host": only the scheme
     * is certain (what curl parsed is what curl fetches, so that is fine). */
    fuzz_check(strncasecmp(s, u.https ? "https:" : "http:", u.https ? 6 : 5) == 0);
    for (size_t i = 0; i < n; i++)
        fuzz_check((unsigned char)s[i] > ' ' && (unsigned char)s[i] != 0x7f);
    /* The host, if numeric, classifies the same way as text. */
    (void)bgr_net_ip_blocked(u.host);
}

static void addr(const uint8_t *d, size_t n)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (n >= 16) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, d, 16);
        bool blocked = bgr_net_addr_blocked((struct sockaddr *)s6);
        char txt[INET6_ADDRSTRLEN];
        fuzz_check(inet_ntop(AF_INET6, &s6->sin6_addr, txt, sizeof txt) != NULL);
        /* The text and the binary classifier agree. */
        fuzz_check(bgr_net_ip_blocked(txt) == blocked);
        /* Only 2000::/3 may pass (guard.c): IPv4-mapped, NAT64 and every
         * other way of spelling an IPv4 address in IPv6 are refused. */
        if ((d[0] & 0xe0) != 0x20)
            fuzz_check(blocked);
    } else if (n >= 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, d, 4);
        bool blocked = bgr_net_addr_blocked((struct sockaddr *)s4);
        char txt[INET_ADDRSTRLEN];
        fuzz_check(inet_ntop(AF_INET, &s4->sin_addr, txt, sizeof txt) != NULL);
        fuzz_check(bgr_net_ip_blocked(txt) == blocked);
        /* Loopback, private and unspecified are never allowed. */
        if (d[0] == 127 || d[0] == 10 || d[0] == 0 || (d[0] == 192 && d[1] == 168) ||
            (d[0] == 172 && (d[1] & 0xf0) == 16) || (d[0] == 169 && d[1] == 254) ||
            d[0] >= 224)
            fuzz_check(blocked);
    } else {
        ss.ss_family = (sa_family_t)(n ? d[0] : AF_UNIX);
        if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
            fuzz_check(bgr_net_addr_blocked((struct sockaddr *)&ss));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    char *s = fuzz_strndup(data, size);
    if (!s)
        return 0;
    struct bgr_error e = {0};
    int rc = 0;
    switch (sel % 12) {
    case 0: {
        struct bgr_color c;
        rc = bgr_parse_color(s, &c, &e);
        break;
    }
    case 1: {
        enum bgr_format f;
        rc = bgr_parse_format(s, &f, &e);
        if (!rc)
            fuzz_check(bgr_format_name(f) != NULL);
        break;
    }
    case 2: {
        enum bgr_max_res m;
        rc = bgr_parse_max_res(s, &m, &e);
        break;
    }
    case 3: {
        int q = 0;
        rc = bgr_parse_quality(s, &q, &e);
        if (!rc)
            fuzz_check(q >= 1 && q <= 100);
        break;
    }
    case 4: {
        enum bgr_refine r;
        rc = bgr_parse_refine(s, &r, &e);
        if (!rc)
            fuzz_check(bgr_refine_name(r) != NULL);
        break;
    }
    case 5: {
        bool b;
        rc = bgr_parse_bool(s, "crop", &b, &e);
        break;
    }
    case 6: {
        bool m;
        rc = bgr_parse_output_type(s, &m, &e);
        break;
    }
    case 7: {
        int v = -1;
        bool pct;
        rc = bgr_parse_crop_margin(s, &v, &pct, &e);
        if (!rc)
            fuzz_check(v >= 0 && v <= (pct ? 100 : 10000));
        break;
    }
    case 8: {
        static const char *const names[] = {"output_format", "output_quality", "bg_color",
                                            "max_resolution", "crop"};
        struct bgr_output_opts o;
        bgr_output_opts_init(&o);
        rc = api_opt_from_string(&o, names[size % 5], s, names[size % 5], &e);
        fuzz_check(rc != 1);
        fuzz_check(o.quality >= 1 && o.quality <= 100);
        break;
    }
    case 9:
        url(s);
        break;
    case 10:
        (void)bgr_net_ip_blocked(s);
        break;
    default:
        addr(data, size);
        break;
    }
    expect_invalid(rc, &e);
    free(s);
    return 0;
}
