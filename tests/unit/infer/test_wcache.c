/*
 * test_wcache.c - the weight cache (src/infer/wcache.c) on a small conv
 * graph written to a model file: a cached load gives bit-identical output
 * to an uncached one (fp32, bf16 and int8 where the CPU has them); a
 * corrupted, truncated or foreign cache is never used but rebuilt; a model
 * file touched without changing its bytes keeps its cache (re-hashed and
 * restamped); changing the calibration file rebuilds an int8 cache; and
 * the checksum finds every single-bit flip tried.
 */
#define _GNU_SOURCE
#include "infer/backend.h"
#include "onnx_build.h"
#include "runner.h"
#include "tmp_dir.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NI ((size_t)16 * 64 * 66)

static uint64_t seed = 4242;
static char *dir;

static void rand_fill(float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        p[i] = scale * ob_rand(&seed);
}

static void add_conv(struct onnx_build *b, const char *name, const char *in, const char *out,
                     int64_t C, int64_t M, float wscale)
{
    char inputs[256], wname[64], bname[64];
    int64_t wd[4] = {M, C, 3, 3}, bd[1] = {M};
    size_t nw = (size_t)(M * C * 9);
    float *w = malloc(nw * sizeof *w), *bv = malloc((size_t)M * sizeof *bv);
    snprintf(wname, sizeof wname, "%s.w", name);
    snprintf(bname, sizeof bname, "%s.b", name);
    rand_fill(w, nw, wscale / sqrtf((float)(9 * C)));
    rand_fill(bv, (size_t)M, 0.3f);
    /* fp16 weights, as ISNet's file has them */
    ob_initializer(b, ob_tensor_f32(b, wname, 4, wd, w, 1, OB_RAW));
    ob_initializer(b, ob_tensor_f32(b, bname, 1, bd, bv, 0, OB_RAW));
    snprintf(inputs, sizeof inputs, "%s,%s,%s", in, wname, bname);
    Onnx__NodeProto *n = ob_node(b, "Conv", name, inputs, out);
    ob_attr_ints(b, n, "kernel_shape", 2, (int64_t[]){3, 3});
    ob_attr_ints(b, n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    free(w);
    free(bv);
}

/* conv+relu, conv+relu + residual, maxpool, concat, conv to one channel,
 * resize back, sigmoid: the ops ISNet's graph has, with fused post-ops,
 * a Concat written in place and a plain fp32 tail. wscale varies the
 * weights (two models of the same shape). Written to dir/name. */
static void write_model(const char *name, float wscale, char *path, size_t cap)
{
    struct onnx_build b;
    struct bgr_error e = {0};
    size_t len;
    ob_init(&b, 15);
    ob_input(&b, "x", (int64_t[]){1, 16, 64, 66});
    add_conv(&b, "c1", "x", "c1o", 16, 32, wscale);
    ob_node(&b, "Relu", "r1", "c1o", "a");
    add_conv(&b, "c2", "a", "c2o", 32, 32, wscale);
    ob_node(&b, "Relu", "r2", "c2o", "r2o");
    ob_node(&b, "Add", "add", "r2o,a", "s");
    ob_attr_int(&b, ob_node(&b, "Concat", "cat", "s,a", "cs"), "axis", 1);
    add_conv(&b, "c3", "cs", "c3o", 64, 1, wscale);
    ob_node(&b, "Sigmoid", "sig", "c3o", "y");
    ob_output(&b, "y");
    uint8_t *bytes = ob_pack(&b, &len);
    snprintf(path, cap, "%s/%s", dir, name);
    if (bgr_file_write_atomic(path, bytes, len, &e))
        fprintf(stderr, "  cannot write %s: %s\n", path, e.msg);
    ob_free(&b);
}

/* Loads path (cache on unless no_cache), runs the seeded input, returns the
 * output (malloc'd) and the cache state; NULL on failure. */
static float *load_run(const char *path, enum bgr_precision prec, int no_cache,
                       enum bgr_cache_state *state, char *note, size_t note_cap, size_t *n_out)
{
    struct bgr_model_opts o = {.precision = prec, .no_cache = no_cache};
    struct bgr_error e = {0};
    struct bgr_model *m = NULL;
    float *in = malloc(NI * sizeof *in), *out = NULL;
    const char *nt = "";
    uint64_t s = 99;
    for (size_t i = 0; i < NI; i++)
        in[i] = ob_rand(&s);
    if (bgr_model_load_file(path, &o, &m, &e)) {
        fprintf(stderr, "  load %s: %s\n", path, e.msg);
        goto out;
    }
    *state = bgr_model_cache_state(m, &nt);
    if (note)
        snprintf(note, note_cap, "%s", nt);
    out = ob_run(m, in, n_out);
out:
    bgr_model_free(m);
    free(in);
    return out;
}

static int same(const float *a, const float *b, size_t n)
{
    return a && b && memcmp(a, b, n * sizeof *a) == 0;
}

static int file_size(const char *path, off_t *size)
{
    struct stat st;
    if (stat(path, &st))
        return -1;
    *size = st.st_size;
    return 0;
}

/* Flips one bit of the file at offset off. */
static int flip_bit(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    int rc = -1;
    if (fd < 0)
        return -1;
    if (pread(fd, &c, 1, off) == 1) {
        c ^= 0x10;
        rc = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
    }
    close(fd);
    return rc;
}

/* The round trip at one precision: uncached, writing, cached: all equal. */
static void round_trip(enum bgr_precision prec, const char *name)
{
    char path[512], note[600];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    size_t n0 = 0, n1 = 0, n2 = 0;
    write_model(name, 1.0f, path, sizeof path);
    char *cpath = bgr_model_cache_path(path, prec);
    float *y0 = load_run(path, prec, 1, &st, NULL, 0, &n0);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_OFF);
    BGR_CHECK(access(cpath, F_OK) != 0); /* no_cache writes nothing */
    float *y1 = load_run(path, prec, 0, &st, note, sizeof note, &n1);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
    BGR_CHECK(strstr(note, "no cache file") != NULL);
    BGR_CHECK(access(cpath, F_OK) == 0);
    float *y2 = load_run(path, prec, 0, &st, note, sizeof note, &n2);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_USED);
    BGR_CHECK_STR(note, "");
    BGR_REQUIRE(y0 && n0 == 16 * 64 * 66 / 16 && n1 == n0 && n2 == n0);
    BGR_CHECK(same(y0, y1, n0));
    BGR_CHECK(same(y0, y2, n0)); /* bit-identical from the mapped weights */
    free(cpath);
    free(y0);
    free(y1);
    free(y2);
}

BGR_TEST(round_trip_fp32)
{
    round_trip(BGR_PREC_FP32, "rt32.onnx");
}

BGR_TEST(round_trip_bf16)
{
    if (!bgr_dnnl_has_bf16()) {
        fprintf(stderr, "  no native bf16 here: not tested\n");
        return;
    }
    round_trip(BGR_PREC_BF16, "rt16.onnx");
}

/* A corrupt cache (a flipped bit anywhere: header, graph, weights) or a
 * truncated one is rebuilt, and the output stays the uncached one. */
BGR_TEST(corrupt_or_truncated_cache_is_rebuilt)
{
    char path[512], note[600];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    size_t n0 = 0, n = 0;
    off_t size = 0;
    write_model("cor.onnx", 1.0f, path, sizeof path);
    char *cpath = bgr_model_cache_path(path, BGR_PREC_FP32);
    float *y0 = load_run(path, BGR_PREC_FP32, 1, &st, NULL, 0, &n0);
    free(load_run(path, BGR_PREC_FP32, 0, &st, NULL, 0, &n));
    BGR_REQUIRE(st == BGR_CACHE_WRITTEN && file_size(cpath, &size) == 0);
    /* the header (the engine id), the graph record, the middle, the last byte */
    const off_t offs[] = {40, 4096 + 64 + 10, size / 2, size - 1};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        BGR_REQUIRE(flip_bit(cpath, offs[i]) == 0);
        float *y = load_run(path, BGR_PREC_FP32, 0, &st, note, sizeof note, &n);
        BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
        BGR_CHECK(strstr(note, "corrupt") != NULL || strstr(note, "another engine") != NULL);
        BGR_CHECK(same(y0, y, n0));
        free(y);
        y = load_run(path, BGR_PREC_FP32, 0, &st, NULL, 0, &n); /* the rebuilt one */
        BGR_CHECK_EQ_INT(st, BGR_CACHE_USED);
        BGR_CHECK(same(y0, y, n0));
        free(y);
    }
    /* truncated: cut in the middle of the weights, and to nothing */
    const off_t cuts[] = {size - 100, 4096 + 10, 0};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        BGR_REQUIRE(truncate(cpath, cuts[i]) == 0);
        float *y = load_run(path, BGR_PREC_FP32, 0, &st, note, sizeof note, &n);
        BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
        BGR_CHECK(strstr(note, "truncated") != NULL);
        BGR_CHECK(same(y0, y, n0));
        free(y);
        off_t again = 0;
        BGR_CHECK(file_size(cpath, &again) == 0 && again == size);
    }
    free(y0);
    free(cpath);
}

/* Another model's cache under this model's cache name is ignored. */
BGR_TEST(cache_of_another_model_is_ignored)
{
    char a[512], b[512], note[600];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    size_t na = 0, nb = 0, n = 0;
    struct bgr_buf buf;
    struct bgr_error e = {0};
    write_model("ma.onnx", 1.0f, a, sizeof a);
    write_model("mb.onnx", 0.5f, b, sizeof b); /* same size, other weights */
    char *ca = bgr_model_cache_path(a, BGR_PREC_FP32), *cb = bgr_model_cache_path(b, BGR_PREC_FP32);
    float *ya = load_run(a, BGR_PREC_FP32, 0, &st, NULL, 0, &na); /* writes a's cache */
    float *yb = load_run(b, BGR_PREC_FP32, 1, &st, NULL, 0, &nb);
    BGR_REQUIRE(ya && yb && na == nb && !same(ya, yb, na));
    bgr_buf_init(&buf, 0);
    BGR_REQUIRE(bgr_file_read(ca, 0, &buf, &e) == 0);
    BGR_REQUIRE(bgr_file_write_atomic(cb, buf.data, buf.len, &e) == 0);
    bgr_buf_release(&buf);
    float *y = load_run(b, BGR_PREC_FP32, 0, &st, note, sizeof note, &n);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
    BGR_CHECK(strstr(note, "another model") != NULL);
    BGR_CHECK(same(yb, y, nb));
    free(y);
    y = load_run(b, BGR_PREC_FP32, 0, &st, NULL, 0, &n);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_USED);
    BGR_CHECK(same(yb, y, nb));
    free(y);
    /* a model file replaced by another with the same stat size: the inode
     * or the times differ, the hash decides */
    BGR_REQUIRE(bgr_file_read(a, 0, &buf, &e) == 0);
    BGR_REQUIRE(bgr_file_write_atomic(b, buf.data, buf.len, &e) == 0);
    bgr_buf_release(&buf);
    y = load_run(b, BGR_PREC_FP32, 0, &st, note, sizeof note, &n);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
    BGR_CHECK(strstr(note, "another model") != NULL);
    BGR_CHECK(same(ya, y, na));
    free(y);
    free(ya);
    free(yb);
    free(ca);
    free(cb);
}

/* A model file whose stat changed but whose bytes did not keeps its
 * cache: hashed again once, then restamped. */
BGR_TEST(touched_model_keeps_its_cache)
{
    char path[512], note[600];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    size_t n0 = 0, n = 0;
    write_model("t.onnx", 1.0f, path, sizeof path);
    float *y0 = load_run(path, BGR_PREC_FP32, 0, &st, NULL, 0, &n0);
    BGR_REQUIRE(st == BGR_CACHE_WRITTEN);
    struct timespec ts[2] = {{.tv_sec = 1000000000, .tv_nsec = 0}, {.tv_sec = 1000000000}};
    BGR_REQUIRE(utimensat(AT_FDCWD, path, ts, 0) == 0);
    float *y = load_run(path, BGR_PREC_FP32, 0, &st, note, sizeof note, &n);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_USED);
    BGR_CHECK(strstr(note, "restamped") != NULL);
    BGR_CHECK(same(y0, y, n0));
    free(y);
    y = load_run(path, BGR_PREC_FP32, 0, &st, note, sizeof note, &n);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_USED);
    BGR_CHECK_STR(note, "");
    BGR_CHECK(same(y0, y, n0));
    free(y);
    free(y0);
}

/* A cache that cannot be written (no such directory for it) costs the
 * load nothing but the note. */
BGR_TEST(unwritable_cache_still_loads)
{
    char path[512], note[600];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    size_t n0 = 0, n = 0;
    write_model("ro.onnx", 1.0f, path, sizeof path);
    float *y0 = load_run(path, BGR_PREC_FP32, 1, &st, NULL, 0, &n0);
    char *cpath = bgr_model_cache_path(path, BGR_PREC_FP32);
    BGR_REQUIRE(mkdir(cpath, 0755) == 0); /* a directory where the file would go */
    float *y = load_run(path, BGR_PREC_FP32, 0, &st, note, sizeof note, &n);
    BGR_CHECK_EQ_INT(st, BGR_CACHE_UNWRITTEN);
    BGR_CHECK(strstr(note, "rename") != NULL);
    BGR_CHECK(same(y0, y, n0));
    rmdir(cpath);
    free(cpath);
    free(y);
    free(y0);
}

/* A temporary file that a writer killed mid-way left is removed by the
 * next writer once it is old; a recent one (a writer at work) is kept. */
BGR_TEST(stale_temporary_files_are_removed)
{
    char path[512], old_tmp[600], new_tmp[600], other[600];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    struct bgr_error e = {0};
    size_t n = 0;
    write_model("tmp.onnx", 1.0f, path, sizeof path);
    char *cpath = bgr_model_cache_path(path, BGR_PREC_FP32);
    snprintf(old_tmp, sizeof old_tmp, "%s.tmp.AbC123", cpath);
    snprintf(new_tmp, sizeof new_tmp, "%s.tmp.XyZ789", cpath);
    snprintf(other, sizeof other, "%s/unrelated.tmp.AbC123", dir);
    BGR_REQUIRE(bgr_file_write_atomic(old_tmp, "partial", 7, &e) == 0);
    BGR_REQUIRE(bgr_file_write_atomic(new_tmp, "partial", 7, &e) == 0);
    BGR_REQUIRE(bgr_file_write_atomic(other, "x", 1, &e) == 0);
    struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    BGR_REQUIRE(utimensat(AT_FDCWD, old_tmp, ts, 0) == 0);
    BGR_REQUIRE(utimensat(AT_FDCWD, other, ts, 0) == 0);
    free(load_run(path, BGR_PREC_FP32, 0, &st, NULL, 0, &n));
    BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
    BGR_CHECK(access(old_tmp, F_OK) != 0);
    BGR_CHECK(access(new_tmp, F_OK) == 0);
    BGR_CHECK(access(other, F_OK) == 0);
    free(cpath);
}

/* Caches of other engine builds: a writer keeps the 3 newest of its own
 * model, precision and ISA, removes the older ones, and leaves other
 * families alone. */
BGR_TEST(old_builds_caches_are_pruned)
{
    char path[512], fake[6][700];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    struct bgr_error e = {0};
    size_t n = 0;
    write_model("pr.onnx", 1.0f, path, sizeof path);
    char *cpath = bgr_model_cache_path(path, BGR_PREC_FP32);
    size_t cl = strlen(cpath);
    BGR_REQUIRE(cl > 16);
    /* the same family with 5 other engine ids, oldest first; then another
     * precision's file with an old time */
    for (int i = 0; i < 6; i++) {
        snprintf(fake[i], sizeof fake[i], "%.*s%08x.wcache", (int)(cl - 15), cpath,
                 0xabc00000u + (unsigned)i);
        if (i == 5) /* ".fp32." -> ".xx32." */
            memcpy(strstr(fake[i], ".fp32.") + 1, "xx", 2);
        BGR_REQUIRE(bgr_file_write_atomic(fake[i], "old", 3, &e) == 0);
        struct timespec ts[2] = {{.tv_sec = 1000000000 + i * 1000},
                                 {.tv_sec = 1000000000 + i * 1000}};
        BGR_REQUIRE(utimensat(AT_FDCWD, fake[i], ts, 0) == 0);
    }
    free(load_run(path, BGR_PREC_FP32, 0, &st, NULL, 0, &n));
    BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
    BGR_CHECK(access(cpath, F_OK) == 0);
    BGR_CHECK(access(fake[0], F_OK) != 0); /* the two oldest */
    BGR_CHECK(access(fake[1], F_OK) != 0);
    BGR_CHECK(access(fake[2], F_OK) == 0);
    BGR_CHECK(access(fake[3], F_OK) == 0);
    BGR_CHECK(access(fake[4], F_OK) == 0);
    BGR_CHECK(access(fake[5], F_OK) == 0); /* another family */
    free(cpath);
}

/* int8: cached load identical; a new calibration file rebuilds the cache. */
BGR_TEST(int8_cache_follows_calibration)
{
    char path[512], note[600];
    enum bgr_cache_state st = BGR_CACHE_OFF;
    struct bgr_error e = {0};
    size_t n0 = 0, n = 0;
    if (!bgr_dnnl_has_vnni() || !bgr_dnnl_has_bf16()) {
        fprintf(stderr, "  no AVX512-VNNI/BF16 here: int8 not tested\n");
        return;
    }
    write_model("q.onnx", 1.0f, path, sizeof path);
    for (int round = 0; round < 2; round++) { /* two calibrations: 1 and 3 runs */
        struct bgr_model_opts o = {.precision = BGR_PREC_FP32};
        struct bgr_model *m = NULL;
        float *in = malloc(NI * sizeof *in), *out = malloc(NI * sizeof *out);
        char *cal = bgr_model_calib_path(path);
        BGR_REQUIRE(bgr_model_load_file(path, &o, &m, &e) == 0);
        BGR_REQUIRE(bgr_model_calib_start(m, &e) == 0);
        for (int i = 0; i < 1 + 2 * round; i++) {
            rand_fill(in, NI, 1.0f + (float)round);
            BGR_REQUIRE(bgr_model_run(m, in, NI, out, NI / 16, &e) == 0);
        }
        BGR_REQUIRE(bgr_model_calib_write(m, cal, &e) == 0);
        bgr_model_free(m);
        free(in);
        free(out);
        free(cal);
        float *y0 = load_run(path, BGR_PREC_INT8, 1, &st, NULL, 0, &n0);
        float *y1 = load_run(path, BGR_PREC_INT8, 0, &st, note, sizeof note, &n);
        BGR_CHECK_EQ_INT(st, BGR_CACHE_WRITTEN);
        if (round == 1)
            BGR_CHECK(strstr(note, "calibration") != NULL);
        float *y2 = load_run(path, BGR_PREC_INT8, 0, &st, NULL, 0, &n);
        BGR_CHECK_EQ_INT(st, BGR_CACHE_USED);
        BGR_CHECK(same(y0, y1, n0));
        BGR_CHECK(same(y0, y2, n0));
        free(y0);
        free(y1);
        free(y2);
    }
}

BGR_TEST(checksum_sees_every_bit)
{
    size_t n = (3u << 20) + 77; /* several blocks and a tail */
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 2654435761u >> 13);
    uint64_t h = bgr_wc_checksum(p, n);
    BGR_CHECK(h == bgr_wc_checksum(p, n));
    int missed = 0;
    for (size_t k = 0; k < 2000; k++) {
        size_t off = (k * 1000003u) % n;
        uint8_t bit = (uint8_t)(1u << (k % 8));
        p[off] ^= bit;
        missed += bgr_wc_checksum(p, n) == h;
        p[off] ^= bit;
    }
    BGR_CHECK_EQ_INT(missed, 0);
    BGR_CHECK(bgr_wc_checksum(p, n - 1) != h); /* the length counts */
    free(p);
}

int runner_main(int argc, char **argv);
#define main runner_main
BGR_TEST_MAIN()
#undef main

int main(int argc, char **argv)
{
    dir = tmp_dir_named("wcache");
    int rc = runner_main(argc, argv);
    rm_rf(dir);
    free(dir);
    return rc;
}
