/* Unit tests of src/core: error table, buffers, arenas, files, hashing. */
#include "core/core.h"
#include "runner.h"

#include <stdlib.h>
#include <unistd.h>

BGR_TEST(err_table)
{
    BGR_CHECK_STR(bgr_err_code(BGR_EINVALID_PARAMETER), "INVALID_PARAMETER");
    BGR_CHECK_EQ_INT(bgr_err_http_status(BGR_EFILE_TOO_LARGE), 413);
    BGR_CHECK_EQ_INT(bgr_err_http_status(BGR_ESERVICE_BUSY), 503);
    BGR_CHECK_STR(bgr_err_code(BGR_ENOMEM), "INTERNAL_ERROR");
    BGR_CHECK_STR(bgr_err_code(12345), "INTERNAL_ERROR");
    BGR_CHECK_EQ_INT(bgr_err_http_status(0), 500);
}

BGR_TEST(error_set_and_prefix)
{
    struct bgr_error e;
    bgr_error_clear(&e);
    BGR_CHECK_EQ_INT(bgr_error_set(&e, BGR_EIO, "read %s", "x"), BGR_EIO);
    bgr_error_prefix(&e, "file %d", 3);
    BGR_CHECK_STR(e.msg, "file 3: read x");
    BGR_CHECK_EQ_INT(e.code, BGR_EIO);
}

BGR_TEST(hex_digit)
{
    BGR_CHECK_EQ_INT(bgr_hex_digit('0'), 0);
    BGR_CHECK_EQ_INT(bgr_hex_digit('9'), 9);
    BGR_CHECK_EQ_INT(bgr_hex_digit('a'), 10);
    BGR_CHECK_EQ_INT(bgr_hex_digit('F'), 15);
    BGR_CHECK_EQ_INT(bgr_hex_digit('g'), -1);
    BGR_CHECK_EQ_INT(bgr_hex_digit('/'), -1);
    BGR_CHECK_EQ_INT(bgr_hex_digit('\0'), -1);
}

BGR_TEST(buf_cap)
{
    struct bgr_buf b;
    struct bgr_error e;
    bgr_buf_init(&b, 8);
    BGR_CHECK_EQ_INT(bgr_buf_append(&b, "12345678", 8, &e), 0);
    BGR_CHECK_EQ_INT(bgr_buf_append(&b, "9", 1, &e), BGR_EFILE_TOO_LARGE);
    BGR_CHECK_EQ_INT(b.len, 8);
    bgr_buf_release(&b);
    bgr_buf_init(&b, 0);
    BGR_CHECK_EQ_INT(bgr_buf_appendf(&b, &e, "%d-%s", 42, "x"), 0);
    BGR_CHECK_STR((char *)b.data, "42-x");
    bgr_buf_release(&b);
}

BGR_TEST(arena)
{
    struct bgr_arena a;
    bgr_arena_init(&a, 100000);
    char *s = bgr_arena_strdup(&a, "hello");
    BGR_CHECK_STR(s, "hello");
    void *big = bgr_arena_alloc(&a, 50000);
    BGR_CHECK(big != NULL && ((uintptr_t)big & 15) == 0);
    BGR_CHECK(bgr_arena_alloc(&a, 60000) == NULL); /* over the limit */
    bgr_arena_release(&a);
}

BGR_TEST(file_roundtrip)
{
    char dir[] = "/tmp/bgr_test_XXXXXX", path[256];
    struct bgr_buf b;
    struct bgr_error e;
    BGR_REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/a/b/c.bin", dir);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    BGR_CHECK_EQ_INT(bgr_mkdir_p(sub, &e), 0);
    BGR_CHECK_EQ_INT(bgr_file_write_atomic(path, "abcdef", 6, &e), 0);
    BGR_CHECK_EQ_INT(bgr_file_read(path, 0, &b, &e), 0);
    BGR_CHECK_EQ_INT(b.len, 6);
    bgr_buf_release(&b);
    BGR_CHECK_EQ_INT(bgr_file_read(path, 5, &b, &e), BGR_EFILE_TOO_LARGE);
    BGR_CHECK_EQ_INT(bgr_file_read("/nonexistent/x", 0, &b, &e), BGR_EIO);
    unlink(path);
    snprintf(sub, sizeof sub, "rm -rf %s", dir);
    BGR_CHECK(system(sub) == 0);
}

BGR_TEST(sha256_known)
{
    char hex[65];
    bgr_sha256_hex("abc", 3, hex);
    BGR_CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    uint8_t mac[32];
    char mhex[65];
    bgr_hmac_sha256("key", 3, "The quick brown fox jumps over the lazy dog", 43, mac);
    bgr_hex_encode(mac, 32, mhex);
    BGR_CHECK_STR(mhex, "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
    BGR_CHECK(bgr_ct_equal("abc", "abc", 3));
    BGR_CHECK(!bgr_ct_equal("abc", "abd", 3));
}

BGR_TEST_MAIN()
