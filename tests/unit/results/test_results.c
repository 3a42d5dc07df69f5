/*
 * test_results.c - the results module: keys, locations, the directory
 * backend (put, open, read, delete, list, atomicity debris, symlinks, caps),
 * the ListObjectsV2 parser, and an S3 store that cannot be reached. The S3
 * protocol itself is tested against a real S3 server in tests/api/test_s3.py.
 */
#define _GNU_SOURCE
#include "results/results_int.h"
#include "runner.h"
#include "tmp_dir.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp_dir(void)
{
    return tmp_dir_named("results");
}

BGR_TEST(keys)
{
    char k[BGR_RESULTS_KEY_MAX], id[40];
    struct bgr_error e;
    static const char *const bad[] = {"",          ".png",    "x.",           "x",
                                      "../x.png",  "a/b.png", "x.png.tmp",    "x.p-g",
                                      "x y.png",   "x.png/",  "x.toolongext", "img\n.png",
                                      "/etc.conf", "x.png%00"};
    BGR_CHECK(bgr_results_key_valid("img_AbC123.png"));
    BGR_CHECK(bgr_results_key_valid("img_a-b.webp"));
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++)
        BGR_CHECK(!bgr_results_key_valid(bad[i]));
    BGR_CHECK(!bgr_results_key_valid(NULL));
    BGR_CHECK_EQ_INT(bgr_results_key_make("img_abc", "jpg", k, &e), 0);
    BGR_CHECK_STR(k, "img_abc.jpg");
    BGR_CHECK_EQ_INT(bgr_results_key_make("../img", "jpg", k, &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK(bgr_results_key_id("img_abc.jpg", id, sizeof id));
    BGR_CHECK_STR(id, "img_abc");
    BGR_CHECK(!bgr_results_key_id("img_abc.jpg", id, 7)); /* does not fit */
    BGR_CHECK(!bgr_results_key_id("a/b.png", id, sizeof id));
}

BGR_TEST(locations)
{
    struct bgr_results *r = NULL;
    struct bgr_results_opts o;
    struct bgr_error e = {0};
    static const char *const bad[] = {"",
                                      "s3://",
                                      "s3://ab",
                                      "s3://Bucket/x",
                                      "s3://b_c/x",
                                      "s3://-bb/x",
                                      "s3://bucket/../x",
                                      "s3://bucket/a//b",
                                      "s3://bucket/a b",
                                      "s3://bucket/%2e",
                                      "ftp://host/x",
                                      "file:///tmp/x"};
    bgr_results_opts_init(&o);
    o.access_key_id = "AK";
    o.secret_access_key = "SK";
    o.endpoint = "http://127.0.0.1:9";
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++) {
        r = NULL;
        BGR_CHECK_EQ_INT(bgr_results_open(bad[i], &o, &r, &e), BGR_EUSAGE);
        BGR_CHECK(r == NULL);
    }
    /* Accepted: with and without prefix, trailing slash. */
    BGR_CHECK_EQ_INT(bgr_results_open("s3://my-bucket.1", &o, &r, &e), 0);
    bgr_results_close(r);
    BGR_CHECK_EQ_INT(bgr_results_open("s3://bucket/a/b_c-d.e/", &o, &r, &e), 0);
    BGR_CHECK_STR(bgr_results_location(r), "s3://bucket/a/b_c-d.e/");
    bgr_results_close(r);
    /* Endpoint: scheme://host[:port] only. */
    o.endpoint = "http://127.0.0.1:9/path";
    BGR_CHECK_EQ_INT(bgr_results_open("s3://bucket/x", &o, &r, &e), BGR_EUSAGE);
    o.endpoint = "http://user:pw@127.0.0.1:9";
    BGR_CHECK_EQ_INT(bgr_results_open("s3://bucket/x", &o, &r, &e), BGR_EUSAGE);
    BGR_CHECK(strstr(e.msg, "pw") == NULL); /* never echo credentials */
    o.endpoint = "gopher://127.0.0.1:9";
    BGR_CHECK_EQ_INT(bgr_results_open("s3://bucket/x", &o, &r, &e), BGR_EUSAGE);
    o.endpoint = "http://127.0.0.1:9";
    o.region = "us east";
    BGR_CHECK_EQ_INT(bgr_results_open("s3://bucket/x", &o, &r, &e), BGR_EUSAGE);
    o.region = NULL;
    /* No credentials (the environment has none here): a clear refusal. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    o.access_key_id = o.secret_access_key = NULL;
    BGR_CHECK_EQ_INT(bgr_results_open("s3://bucket/x", &o, &r, &e), BGR_EUSAGE);
    BGR_CHECK(strstr(e.msg, "AWS_ACCESS_KEY_ID") != NULL);
}

static bool exists(const char *dir, const char *name)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

struct seen {
    int n;
    char keys[8][BGR_RESULTS_KEY_MAX];
};

static int collect(void *ctx, const char *key, int64_t mtime_ms)
{
    struct seen *s = ctx;
    (void)mtime_ms;
    if (s->n < 8)
        snprintf(s->keys[s->n], BGR_RESULTS_KEY_MAX, "%s", key);
    s->n++;
    return 0;
}

static int stop_at_first(void *ctx, const char *key, int64_t mtime_ms)
{
    (void)ctx;
    (void)key;
    (void)mtime_ms;
    return 7;
}

BGR_TEST(directory_backend)
{
    char *base = tmp_dir(), dir[600], p[700];
    struct bgr_results *r = NULL;
    struct bgr_results_obj obj;
    struct bgr_buf b;
    struct bgr_error e = {0};
    struct seen seen = {0};
    char small[16];
    snprintf(dir, sizeof dir, "%s/a/results", base);
    BGR_REQUIRE(bgr_results_open(dir, NULL, &r, &e) == 0); /* creates it */
    BGR_CHECK_STR(bgr_results_location(r), dir);
    BGR_CHECK_EQ_INT(bgr_results_check(r, &e), 0);
    BGR_CHECK(bgr_results_healthy(r));

    /* put (replacing), read, open for serving, a cap. */
    BGR_CHECK_EQ_INT(bgr_results_put(r, "img_a.png", "first", 5, "image/png", &e), 0);
    BGR_CHECK_EQ_INT(bgr_results_put(r, "img_a.png", "PNGDATA", 7, "image/png", &e), 0);
    BGR_CHECK_EQ_INT(bgr_results_read(r, "img_a.png", 0, &b, &e), 0);
    BGR_CHECK(b.len == 7 && memcmp(b.data, "PNGDATA", 7) == 0);
    bgr_buf_release(&b);
    BGR_CHECK_EQ_INT(bgr_results_read(r, "img_a.png", 6, &b, &e), BGR_EFILE_TOO_LARGE);
    BGR_CHECK_EQ_INT(bgr_results_open_obj(r, "img_a.png", 7, &obj, &e), 0);
    BGR_CHECK_EQ_INT((int)obj.size, 7);
    BGR_CHECK_EQ_INT((int)pread(obj.fd, small, sizeof small, 0), 7);
    close(obj.fd);
    BGR_CHECK_EQ_INT(bgr_results_open_obj(r, "img_a.png", 6, &obj, &e), BGR_EFILE_TOO_LARGE);
    BGR_CHECK_EQ_INT(bgr_results_open_obj(r, "img_none.png", 0, &obj, &e), BGR_ENOT_FOUND);
    BGR_CHECK_EQ_INT(bgr_results_read(r, "img_none.png", 0, &b, &e), BGR_ENOT_FOUND);
    BGR_CHECK(bgr_results_healthy(r)); /* a missing object is not a failing store */
    /* No temp file is left behind by a write. */
    {
        struct seen all = {0};
        BGR_CHECK_EQ_INT(bgr_results_list(r, bgr_wall_ms() + 10000, 0, collect, &all, &e), 0);
        BGR_CHECK_EQ_INT(all.n, 1);
    }

    /* Bad keys never reach the disk. */
    BGR_CHECK_EQ_INT(bgr_results_put(r, "../escape.png", "x", 1, NULL, &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK(!exists(base, "a/escape.png"));
    BGR_CHECK_EQ_INT(bgr_results_delete(r, "../results", &e), BGR_EINVALID_PARAMETER);
    BGR_CHECK_EQ_INT(bgr_results_open_obj(r, "a/b.png", 0, &obj, &e), BGR_EINVALID_PARAMETER);

    /* A symlink planted in the directory is never served. */
    snprintf(p, sizeof p, "%s/img_link.png", dir);
    BGR_CHECK_EQ_INT(symlink("/etc/passwd", p), 0);
    BGR_CHECK_EQ_INT(bgr_results_open_obj(r, "img_link.png", 0, &obj, &e), BGR_EIO);
    unlink(p);
    BGR_CHECK(bgr_results_healthy(r)); /* that file failed; the directory is fine */

    /* The directory replaced by a file: unhealthy until it is back. */
    {
        char moved[700];
        snprintf(moved, sizeof moved, "%s.moved", dir);
        BGR_REQUIRE(rename(dir, moved) == 0);
        BGR_CHECK_EQ_INT(bgr_file_write_atomic(dir, "x", 1, &e), 0);
        BGR_CHECK_EQ_INT(bgr_results_put(r, "img_z.png", "x", 1, NULL, &e), BGR_EIO);
        BGR_CHECK(!bgr_results_healthy(r));
        BGR_CHECK_EQ_INT(bgr_results_check(r, &e), BGR_EIO);
        unlink(dir);
        BGR_REQUIRE(rename(moved, dir) == 0);
        BGR_CHECK(bgr_results_healthy(r));
    }

    /* delete is idempotent. */
    BGR_CHECK_EQ_INT(bgr_results_delete(r, "img_a.png", &e), 0);
    BGR_CHECK(!exists(dir, "img_a.png"));
    BGR_CHECK_EQ_INT(bgr_results_delete(r, "img_a.png", &e), 0);

    /* list: keys only, by age; stale temp files removed, young ones kept;
     * foreign names and subdirectories left alone; a stop is passed on. */
    BGR_CHECK_EQ_INT(bgr_results_put(r, "img_b.webp", "x", 1, NULL, &e), 0);
    snprintf(p, sizeof p, "%s/img_c.png.tmp.XyZ123", dir);
    BGR_CHECK_EQ_INT(bgr_file_write_atomic(p, "x", 1, &e), 0);
    snprintf(p, sizeof p, "%s/README", dir);
    BGR_CHECK_EQ_INT(bgr_file_write_atomic(p, "x", 1, &e), 0);
    snprintf(p, sizeof p, "%s/sub.dir", dir);
    BGR_CHECK_EQ_INT(mkdir(p, 0755), 0);
    BGR_CHECK_EQ_INT(bgr_results_list(r, bgr_wall_ms(), 3600000, collect, &seen, &e), 0);
    BGR_CHECK_EQ_INT(seen.n, 0);
    BGR_CHECK(exists(dir, "img_c.png.tmp.XyZ123"));
    BGR_CHECK_EQ_INT(bgr_results_list(r, bgr_wall_ms() + 7200000, 3600000, collect, &seen, &e), 0);
    BGR_CHECK_EQ_INT(seen.n, 1);
    BGR_CHECK_STR(seen.keys[0], "img_b.webp");
    BGR_CHECK(!exists(dir, "img_c.png.tmp.XyZ123"));
    BGR_CHECK(exists(dir, "README") && exists(dir, "sub.dir"));
    BGR_CHECK_EQ_INT(bgr_results_list(r, bgr_wall_ms() + 7200000, 0, stop_at_first, NULL, &e), 7);

    bgr_results_close(r);
    bgr_results_close(NULL);
    rm_rf(base);
    free(base);
}

struct listed {
    int n;
    char key[4][64];
    int64_t mtime[4];
};

static int on_entry(void *ctx, const char *key, int64_t mtime_ms)
{
    struct listed *l = ctx;
    if (l->n < 4) {
        snprintf(l->key[l->n], sizeof l->key[0], "%s", key);
        l->mtime[l->n] = mtime_ms;
    }
    l->n++;
    return 0;
}

BGR_TEST(s3_listing_parser)
{
    static const char page1[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>b</Name><Prefix>r/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
        "<IsTruncated>true</IsTruncated>"
        "<Contents><Key>r/img_a.png</Key><LastModified>2026-12-05T15:51:40.123Z</LastModified>"
        "<ETag>&quot;abc&quot;</ETag><Size>5</Size></Contents>"
        "<Contents><LastModified>2026-12-05T15:51:41Z</LastModified><Key>r/a&amp;b&#x2F;&#60;.png"
        "</Key></Contents>"
        "<NextContinuationToken>tok+/=&amp;</NextContinuationToken></ListBucketResult>";
    static const char last[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                               "</ListBucketResult>";
    struct listed l = {0};
    struct bgr_error e = {0};
    char next[64];
    BGR_CHECK_EQ_INT(bgr_s3_list_parse(page1, strlen(page1), on_entry, &l, next, sizeof next, &e),
                     0);
    BGR_CHECK_EQ_INT(l.n, 2);
    BGR_CHECK_STR(l.key[0], "r/img_a.png");
    BGR_CHECK_EQ_INT(l.mtime[0], 1796485900123LL);
    BGR_CHECK_STR(l.key[1], "r/a&b/<.png");
    BGR_CHECK_EQ_INT(l.mtime[1], 1796485901000LL);
    BGR_CHECK_STR(next, "tok+/=&");
    BGR_CHECK_EQ_INT(bgr_s3_list_parse(last, strlen(last), on_entry, &l, next, sizeof next, &e), 0);
    BGR_CHECK_STR(next, "");
    /* Not bounded by a NUL: only len bytes are read. */
    l.n = 0;
    BGR_CHECK_EQ_INT(bgr_s3_list_parse(page1, 300, on_entry, &l, next, sizeof next, &e), BGR_EIO);
    /* Malformed. */
    static const char *const bad[] = {
        "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><Contents><Key>x</Key></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>x</Key><LastModified>yesterday</LastModified>"
        "</Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>x</Key>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
    };
    for (size_t i = 0; i < BGR_ARRAY_LEN(bad); i++)
        BGR_CHECK_EQ_INT(
            bgr_s3_list_parse(bad[i], strlen(bad[i]), on_entry, &l, next, sizeof next, &e),
            BGR_EIO);
    /* A key with an entity we do not decode is skipped, not fatal. */
    {
        static const char odd[] = "<ListBucketResult><Contents><Key>a&nbsp;.png</Key>"
                                  "<LastModified>2026-01-01T00:00:00Z</LastModified></Contents>"
                                  "</ListBucketResult>";
        l.n = 0;
        BGR_CHECK_EQ_INT(bgr_s3_list_parse(odd, strlen(odd), on_entry, &l, next, sizeof next, &e),
                         0);
        BGR_CHECK_EQ_INT(l.n, 0);
    }
    BGR_CHECK_EQ_INT(bgr_s3_time_parse("1970-01-01T00:00:00Z", 20), 0);
    BGR_CHECK_EQ_INT(bgr_s3_time_parse("1970-01-01T00:00:01.5Z", 22), 1500);
    BGR_CHECK_EQ_INT(bgr_s3_time_parse("1970-01-01T00:00:01", 19), -1);
    BGR_CHECK_EQ_INT(bgr_s3_time_parse("1970-13-01T00:00:01Z", 20), -1);
}

/* Nothing listens on the port: every call fails fast with BGR_EIO naming
 * the endpoint, and the store reads as unhealthy. */
BGR_TEST(s3_unreachable)
{
    struct bgr_results *r = NULL;
    struct bgr_results_opts o;
    struct bgr_error e = {0};
    struct bgr_buf b;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    char ep[64];
    /* A port that was free a moment ago (bound, then closed). */
    BGR_REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    close(fd);
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    bgr_results_opts_init(&o);
    o.endpoint = ep;
    o.access_key_id = "AKIDEXAMPLE";
    o.secret_access_key = "very-secret-key";
    o.connect_timeout_ms = 2000;
    o.timeout_ms = 4000;
    BGR_REQUIRE(bgr_results_open("s3://bucket/prefix", &o, &r, &e) == 0);
    BGR_CHECK(bgr_results_healthy(r));
    BGR_CHECK_EQ_INT(bgr_results_check(r, &e), BGR_EIO);
    BGR_CHECK(strstr(e.msg, ep) != NULL);
    BGR_CHECK(strstr(e.msg, "very-secret-key") == NULL);
    BGR_CHECK(!bgr_results_healthy(r));
    BGR_CHECK_EQ_INT(bgr_results_put(r, "img_a.png", "x", 1, "image/png", &e), BGR_EIO);
    BGR_CHECK_EQ_INT(bgr_results_read(r, "img_a.png", 0, &b, &e), BGR_EIO);
    BGR_CHECK_EQ_INT(bgr_results_delete(r, "img_a.png", &e), BGR_EIO);
    bgr_results_close(r);
}

BGR_TEST_MAIN()
