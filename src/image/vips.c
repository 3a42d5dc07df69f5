/*
 * vips.c - libvips start-up, the one translation of libvips errors into
 * struct bgr_error, and the pixel buffer lifecycle.
 *
 * Pixel and encoded buffers come from GLib's allocator because libvips hands
 * us buffers it allocated (vips_image_write_to_memory, *save_buffer); using
 * one allocator for all of them keeps a single release function per type.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/image_int.h"

/* libvips runs each operation on a pool of this many threads at most. The
 * server already runs several images at once and inference uses every core,
 * so a small pool per operation is enough; VIPS_CONCURRENCY overrides. */
#define BGR_IMAGE_MAX_CONCURRENCY 4

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = BGR_EINTERNAL;
static char init_msg[256];

/* libvips reports recoverable trouble (a truncated file, an ignored
 * colour profile) through g_warning, once per tile. For a server that is
 * client-caused noise: the failure itself reaches the caller as an error, so
 * the details go to our log at debug level instead of raw stderr. */
static void vips_log_handler(const gchar *domain, GLogLevelFlags level, const gchar *message,
                             gpointer user)
{
    (void)domain;
    (void)level;
    (void)user;
    bgr_log(BGR_LOG_DEBUG, "libvips: %s", message);
}

static void image_init_once(void)
{
    if (VIPS_INIT("bgremover") != 0) {
        char *m = vips_error_buffer_copy();
        (void)snprintf(init_msg, sizeof(init_msg), "%s", m ? m : "");
        g_free(m);
        return;
    }
    /* A server decodes a stream of distinct images: caching operations only
     * holds memory, so the cache is off entirely. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    /* Loaders vips itself does not consider safe for untrusted input
     * (ImageMagick, PDF, SVG, FITS, ...) are refused at the source; the
     * decoder also keeps its own allow-list. */
    vips_block_untrusted_set(TRUE);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
                      vips_log_handler, NULL);
    if (!getenv("VIPS_CONCURRENCY")) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        vips_concurrency_set((int)(n < 1                           ? 1
                                   : n > BGR_IMAGE_MAX_CONCURRENCY ? BGR_IMAGE_MAX_CONCURRENCY
                                                                   : n));
    }
    init_status = 0;
}

int bgr_image_global_init(struct bgr_error *err)
{
    pthread_once(&init_once, image_init_once);
    if (init_status != 0)
        return bgr_error_set(err, BGR_EINTERNAL, "libvips initialisation failed: %s", init_msg);
    return 0;
}

int bgr_image_vips_error(struct bgr_error *err, int code, const char *what)
{
    /* Copy-and-clear happens under libvips' own lock. */
    char *m = vips_error_buffer_copy();
    if (m) {
        /* One line: libvips separates its messages with newlines. */
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
            m[--n] = '\0';
        for (char *p = m; *p; p++)
            if (*p == '\n')
                *p = ';';
    }
    /* libvips' own text names its classes and internals ("VipsForeignLoad
     * PngBuffer: ...") and reaches API clients through err: the operator
     * gets it in the log, the message says only what failed. */
    if (m && *m)
        bgr_log(BGR_LOG_DEBUG, "libvips: %s: %s", what, m);
    int rc = bgr_error_set(err, code, "%s", what);
    g_free(m);
    return rc;
}

void bgr_image_unref_all(VipsImage **imgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (imgs[i])
            g_object_unref(imgs[i]);
}

void bgr_pixels_release(struct bgr_pixels *p)
{
    if (!p)
        return;
    g_free(p->data);
    memset(p, 0, sizeof(*p));
}

int bgr_pixels_alloc(struct bgr_pixels *out, int w, int h, int bands, struct bgr_error *err)
{
    BGR_ASSERT(w > 0 && h > 0 && bands >= 1 && bands <= 4);
    size_t n = (size_t)w * (size_t)h * (size_t)bands;
    uint8_t *d = g_try_malloc(n);
    if (!d)
        return bgr_error_set(err, BGR_ENOMEM, "out of memory for a %dx%d image", w, h);
    *out = (struct bgr_pixels){.data = d, .width = w, .height = h, .bands = bands};
    return 0;
}

void bgr_encoded_release(struct bgr_encoded *e)
{
    if (!e)
        return;
    g_free(e->data);
    memset(e, 0, sizeof(*e));
}
