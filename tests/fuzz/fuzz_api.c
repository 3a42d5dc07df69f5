/*
 * fuzz_api.c - the validation of API request bodies, the code the handlers
 * run before any work is queued (src/api): POST /v1/remove in all three
 * encodings (api_remove_parse: multipart, JSON, urlencoded; options, URL
 * syntax, base64) and POST /v1/remove/batch (api_batch_parse).
 *
 * Input: byte 0 picks the endpoint and the plan's byte cap; for /v1/remove
 * the first line after it is the Content-Type header, the rest the body.
 */
#include <string.h>

#include "api/api_int.h"
#include "fuzz.h"
#include "net/net.h"

static void check_err(int rc, const struct bgr_error *e)
{
    fuzz_check(rc < 0);
    fuzz_check(e->code == (enum bgr_err)rc);
    fuzz_check(memchr(e->msg, '\0', sizeof e->msg) != NULL);
}

static void check_opts(const struct bgr_output_opts *o)
{
    fuzz_check(o->quality >= 1 && o->quality <= 100);
}

static void remove_body(const uint8_t *data, size_t size, size_t max)
{
    char *ct = NULL;
    const uint8_t *body;
    size_t len;
    struct bgr_arena a;
    struct bgr_error e = {0};
    struct api_remove_params p;
    json_t *root = NULL;
    uint8_t *decoded = NULL;
    bgr_arena_init(&a, 1u << 20);
    if (fuzz_split_line(data, size, &ct, &body, &len) != 0)
        goto done;
    int rc = api_remove_parse(&a, ct, body, len, max, &p, &root, &decoded, &e);
    if (rc) {
        check_err(rc, &e);
        goto done;
    }
    /* Exactly one image source, within the plan's cap. */
    fuzz_check((p.has_file ? 1 : 0) + (p.image_url ? 1 : 0) == 1);
    if (p.has_file)
        fuzz_check(p.file && p.file_len >= 1 && p.file_len <= max);
    check_opts(&p.opts);
done:
    json_decref(root);
    free(decoded);
    bgr_arena_release(&a);
    free(ct);
}

static void batch_body(const uint8_t *data, size_t size)
{
    struct bgr_error e = {0};
    json_t *root = NULL;
    const char *webhook;
    struct bgr_batch_item_new items[BGR_BATCH_MAX_ITEMS];
    size_t n;
    int rc = api_batch_parse(data, size, &root, &webhook, items, &n, &e);
    if (rc) {
        check_err(rc, &e);
    } else {
        fuzz_check(n >= 1 && n <= BGR_BATCH_MAX_ITEMS);
        for (size_t i = 0; i < n; i++) {
            fuzz_check(items[i].image_url != NULL);
            fuzz_check(strlen(items[i].image_url) <= BGR_NET_URL_MAX);
            check_opts(&items[i].opts);
        }
    }
    json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    static const size_t caps[] = {SIZE_MAX, 12, 1u << 20};
    if (sel & 1)
        batch_body(data, size);
    else
        remove_body(data, size, caps[(sel >> 1) % 3]);
    return 0;
}
