/*
 * params.c - the output options a client may send (output_format,
 * output_quality, bg_color, max_resolution, crop, and the quality options
 * output_type, crop_margin, refine, decontaminate), from form fields (text)
 * or JSON values (typed), through the parsers the CLI uses too
 * (pipeline.h), so both mean the same by the same words. Every message
 * names the offending field.
 */
#include "api/api_int.h"

#include <netdb.h>
#include <sys/socket.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"
#include "pipeline/pipeline.h"

/* The option names, in one place: /v1/remove and each batch item accept
 * exactly these (besides their image source and webhook_url). */
static const char *const opt_names[] = {"output_format",  "output_quality", "bg_color",
                                        "max_resolution", "crop",           "output_type",
                                        "crop_margin",    "refine",         "decontaminate"};

bool api_is_opt(const char *name)
{
    for (size_t i = 0; i < BGR_ARRAY_LEN(opt_names); i++)
        if (strcmp(name, opt_names[i]) == 0)
            return true;
    return false;
}

/* The shared parsers say "invalid <what> '<value>': expected ..." in the
 * CLI's words; the API names its own field instead, once:
 * "Invalid output_format 'gif': expected png, webp or jpeg". */
static int bad(struct bgr_error *err, const char *field, const struct bgr_error *inner,
               const char *what)
{
    const char *m = inner && inner->msg[0] ? inner->msg : NULL;
    const char *quoted = m && strncmp(m, "invalid ", 8) == 0 ? strchr(m, '\'') : NULL;
    if (quoted)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Invalid %s %s", field, quoted);
    return bgr_error_set(err, BGR_EINVALID_PARAMETER, "Invalid %s: %s", field, m ? m : what);
}

int api_opt_from_string(struct bgr_output_opts *o, const char *name, const char *value,
                        const char *field, struct bgr_error *err)
{
    struct bgr_error e = {0};
    if (strcmp(name, "output_format") == 0) {
        if (bgr_parse_format(value, &o->format, &e))
            return bad(err, field, &e, "expected png, webp or jpeg");
    } else if (strcmp(name, "output_quality") == 0) {
        if (bgr_parse_quality(value, &o->quality, &e))
            return bad(err, field, &e, "expected an integer from 1 to 100");
    } else if (strcmp(name, "bg_color") == 0) {
        if (bgr_parse_color(value, &o->bg_color, &e))
            return bad(err, field, &e, "expected a hex colour such as #FFFFFF");
        o->has_bg_color = true;
    } else if (strcmp(name, "max_resolution") == 0) {
        if (bgr_parse_max_res(value, &o->max_res, &e))
            return bad(err, field, &e, "expected original, 1080p, 720p or 480p");
    } else if (strcmp(name, "crop") == 0) {
        if (strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
            o->crop = true;
        else if (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
            o->crop = false;
        else
            return bad(err, field, NULL, "expected true, false, 1 or 0");
    } else if (strcmp(name, "output_type") == 0) {
        if (bgr_parse_output_type(value, &o->mask_only, &e))
            return bad(err, field, &e, "expected cutout or mask");
    } else if (strcmp(name, "crop_margin") == 0) {
        if (bgr_parse_crop_margin(value, &o->crop_margin, &o->crop_margin_percent, &e))
            return bad(err, field, &e, "expected pixels (20, 20px) or a percentage (10%)");
    } else if (strcmp(name, "refine") == 0) {
        if (bgr_parse_refine(value, &o->refine, &e))
            return bad(err, field, &e, "expected auto, none, fast or full");
    } else if (strcmp(name, "decontaminate") == 0) {
        if (bgr_parse_bool(value, field, &o->decontaminate, &e))
            return bad(err, field, &e, "expected true or false");
    } else {
        return 1;
    }
    return 0;
}

int api_opt_from_json(struct bgr_output_opts *o, const char *name, json_t *value, const char *field,
                      struct bgr_error *err)
{
    if (strcmp(name, "output_quality") == 0) {
        if (!json_is_integer(value))
            return bad(err, field, NULL, "expected an integer from 1 to 100");
        json_int_t q = json_integer_value(value);
        if (q < 1 || q > 100)
            return bad(err, field, NULL, "expected an integer from 1 to 100");
        o->quality = (int)q;
        return 0;
    }
    if (strcmp(name, "crop") == 0 || strcmp(name, "decontaminate") == 0) {
        if (!json_is_boolean(value))
            return bad(err, field, NULL, "expected true or false");
        if (name[0] == 'c')
            o->crop = json_is_true(value);
        else
            o->decontaminate = json_is_true(value);
        return 0;
    }
    if (strcmp(name, "crop_margin") == 0 && json_is_integer(value)) {
        /* a JSON integer is pixels; strings carry units ("20px", "10%") */
        char buf[32];
        (void)snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return api_opt_from_string(o, name, buf, field, err);
    }
    if (strcmp(name, "output_format") == 0 || strcmp(name, "bg_color") == 0 ||
        strcmp(name, "max_resolution") == 0 || strcmp(name, "output_type") == 0 ||
        strcmp(name, "crop_margin") == 0 || strcmp(name, "refine") == 0) {
        if (!json_is_string(value))
            return bad(err, field, NULL, "expected a string");
        return api_opt_from_string(o, name, json_string_value(value), field, err);
    }
    return 1;
}

int api_opts_check(const struct bgr_output_opts *o, const char *prefix, struct bgr_error *err)
{
    /* crop_margin=0 without crop asks for nothing, so only a margin that
     * would be ignored is refused */
    if (o->crop_margin > 0 && !o->crop)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Invalid %scrop_margin: it is the border kept around the subject "
                             "when cropping, so it needs crop=true",
                             prefix);
    return 0;
}

int api_json_object(const uint8_t *body, size_t len, json_t **root, struct bgr_error *err)
{
    int rc = bgr_http_json_parse(body, len, API_JSON_DEPTH, root, err);
    if (rc == 0 && !json_is_object(*root))
        rc = bgr_error_set(err, BGR_EINVALID_JSON, "The request body must be a JSON object");
    return rc;
}

int api_check_url(const char *url, const char *field, struct bgr_error *err)
{
    struct bgr_url u;
    struct bgr_error e = {0};
    if (bgr_net_url_parse(url, &u, &e) != 0)
        return bad(err, field, &e, "expected an absolute http or https URL");
    return 0;
}

int api_check_webhook_dest(const struct bgr_api *api, const char *url, bool resolve,
                           struct bgr_error *err)
{
    struct bgr_url u;
    struct bgr_error e = {0};
    if (api->cfg && api->cfg->allow_private_urls)
        return 0;
    if (bgr_net_url_parse(url, &u, &e) != 0)
        return bad(err, "webhook_url", &e, "expected an absolute http or https URL");
    size_t hl = strlen(u.host);
    bool numeric = strspn(u.host, "0123456789.") == hl || strchr(u.host, ':') != NULL;
    bool blocked = false;
    if (strcmp(u.host, "localhost") == 0 || (hl > 10 && !strcmp(u.host + hl - 10, ".localhost")))
        blocked = true;
    else if (numeric)
        blocked = bgr_net_ip_blocked(u.host);
    else if (resolve) {
        struct addrinfo hints = {0}, *res = NULL;
        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(u.host, NULL, &hints, &res) == 0 && res) {
            blocked = true;
            for (struct addrinfo *a = res; a; a = a->ai_next)
                if (!bgr_net_addr_blocked(a->ai_addr) && !bgr_net_addr_is_local(a->ai_addr))
                    blocked = false;
            freeaddrinfo(res);
        }
    }
    if (blocked)
        return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                             "Invalid webhook_url: '%s' is a private, loopback or local address "
                             "that webhooks are never sent to",
                             u.host);
    return 0;
}
