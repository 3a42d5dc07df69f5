/*
 * cmd_eval.c - `bgremover eval --gt DIR`: scores cutouts against ground-truth
 * mattes and prints the table docs/QUALITY.md reports.
 *
 * DIR holds masks/NAME.png (8-bit alpha) and images/NAME.* (the photo, same
 * size). Without --pred each image goes through the same code as `remove`
 * (decode, bgr_pipeline_matte with the given --refine/--decontaminate, then
 * the cutout compose), so the scores are those of what users get. With
 * --pred DIR2, DIR2/NAME.png is scored instead: RGBA (its alpha is the
 * matte, its colours the cutout's) or a grayscale matte (colours from the
 * photo). Metrics are src/eval's, the same as eval.py's.
 */
#define _GNU_SOURCE
#include "cli/cli.h"
#include "eval/eval.h"
#include "image/image.h"
#include "models/models.h"
#include "pipeline/pipeline.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <vips/vips.h>

#define CMD "eval"
#define MAX_INPUT_BYTES ((size_t)512 << 20)
#define MAX_NAMES 100000

#define MAX_MODES 4

struct eval_args {
    const char *gt, *pred, *save;
    bool synthetic;
    enum bgr_refine modes[MAX_MODES]; /* --refine A,B,...: one table each */
    int nmodes;
    struct bgr_output_opts opts;
    struct bgr_cli_model_args m; /* model, model dir, model options */
    int verbose;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: bgremover eval --gt DIR [--pred DIR | model options] [OPTIONS]\n\n"
               "Scores cutouts against ground truth. DIR holds masks/NAME.png (8-bit alpha:\n"
               "0 background, 255 subject) and images/NAME.* (the photos, same size).\n"
               "Prints per image and mean: MAE, MSE, SAD (sum |error| / 1000), IoU at 0.5,\n"
               "boundary F (band ceil(0.008 x diagonal) px), gradient error (sigma 1.4, / 1000),\n"
               "composite error (cutout vs ground truth over black and white, mean |diff|),\n"
               "connectivity error (Rhemann et al. 2009, all pixels, / 1000) and the median\n"
               "SAD; for model runs also the confidence score, the refinement that ran and\n"
               "the Spearman correlation of confidence with SAD. See docs/QUALITY.md.\n\n"
               "      --gt DIR            the ground truth folder (required)\n"
               "      --pred DIR          score DIR/NAME.png (RGBA cutout or grayscale matte)\n"
               "                          instead of running the model\n"
               "      --save DIR          also write each cutout as DIR/NAME.png (RGBA)\n"
               "      --synthetic         score re-composited photos: each photo is blended by\n"
               "                          its true alpha over a colour gradient, so the true\n"
               "                          subject colour of every edge pixel is known (the\n"
               "                          composite error then measures colour fringes)\n"
               "      --refine R[,R...]   auto (default), none, fast or full; a list (e.g.\n"
               "                          fast,auto,full) scores each in turn and ends with a\n"
               "                          comparison (mean and median SAD, IoU, time, how\n"
               "                          often auto ran the extra views)\n"
               "      --decontaminate B   true (default) or false\n"
               "  -m, --model NAME|PATH   medium (default), small, or an .onnx file\n"
               "  -d, --model-dir DIR     where installed models live\n"
               "      --precision P       auto (default), fp32, bf16 or int8 (int8 needs\n"
               "                          'bgremover models calibrate')\n"
               "  -j, --threads N         threads for inference\n"
               "  -v, --verbose           per-image timings and the matte features behind\n"
               "                          refine=auto and the confidence score\n"
               "  -h, --help              show this help\n\n"
               "Exit status: 0 all scored, 1 some image failed (reported, left out of the\n"
               "means), 2 usage error.\n");
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int parse_args(int argc, char **argv, struct eval_args *a)
{
    static const struct option longopts[] = {
        {"gt", required_argument, NULL, 'g'},
        {"pred", required_argument, NULL, 'p'},
        {"save", required_argument, NULL, 's'},
        {"synthetic", no_argument, NULL, 'S'},
        {"refine", required_argument, NULL, 'R'},
        {"decontaminate", required_argument, NULL, 'D'},
        {"model", required_argument, NULL, 'm'},
        {"model-dir", required_argument, NULL, 'd'},
        {"precision", required_argument, NULL, 'P'},
        {"threads", required_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bgr_error err;
    int c;
    bgr_error_clear(&err);
    while ((c = getopt_long(argc, argv, ":m:d:j:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            a->gt = optarg;
            break;
        case 'p':
            a->pred = optarg;
            break;
        case 's':
            a->save = optarg;
            break;
        case 'S':
            a->synthetic = true;
            break;
        case 'R': { /* a list of modes; each one checked by the shared parser */
            char *list = bgr_xstrdup(optarg), *save = NULL;
            a->nmodes = 0;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (a->nmodes == MAX_MODES) {
                    free(list);
                    return bgr_cli_usage_error(CMD, "--refine: at most %d modes", MAX_MODES);
                }
                if (bgr_parse_refine(t, &a->modes[a->nmodes++], &err)) {
                    free(list);
                    return bgr_cli_usage_error(CMD, "--refine: %s", err.msg);
                }
            }
            free(list);
            if (a->nmodes == 0)
                return bgr_cli_usage_error(CMD, "--refine: empty list");
            break;
        }
        case 'v':
            a->verbose++;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default: {
            int r = bgr_cli_model_option(CMD, c, optarg, argv, &a->m, &a->opts);
            if (r)
                return r;
            break;
        }
        }
    }
    if (optind < argc)
        return bgr_cli_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!a->gt)
        return bgr_cli_usage_error(CMD, "--gt DIR is required");
    if (!is_dir(a->gt))
        return bgr_cli_usage_error(CMD, "--gt %s: no such folder", a->gt);
    if (a->pred && !is_dir(a->pred))
        return bgr_cli_usage_error(CMD, "--pred %s: no such folder", a->pred);
    if (a->pred && a->nmodes > 1)
        return bgr_cli_usage_error(CMD, "--pred scores saved files: one table, no --refine list");
    if (a->nmodes == 0)
        a->modes[a->nmodes++] = a->opts.refine;
    if (a->synthetic && a->pred)
        return bgr_cli_usage_error(CMD, "--synthetic runs the model: not with --pred");
    return 0;
}

/* Reads an 8-bit (or 16-bit, scaled) image file as it is stored: 1 to 4
 * bands. *out owns the pixels. */
static int load_raw(const char *path, struct bgr_pixels *out, struct bgr_error *err)
{
    VipsImage *img = NULL, *u8 = NULL;
    size_t len = 0;
    int rc = bgr_image_global_init(err);
    if (rc)
        return rc;
    img = vips_image_new_from_file(path, NULL);
    if (!img)
        goto bad;
    if (vips_image_get_format(img) == VIPS_FORMAT_USHORT) {
        VipsImage *t = NULL;
        if (vips_linear1(img, &t, 1.0 / 257.0, 0.0, NULL) || vips_cast_uchar(t, &u8, NULL)) {
            if (t)
                g_object_unref(t);
            goto bad;
        }
        g_object_unref(t);
    } else if (vips_cast_uchar(img, &u8, NULL)) {
        goto bad;
    }
    int w = vips_image_get_width(u8), h = vips_image_get_height(u8), b = u8->Bands;
    if (b < 1 || b > 4) {
        rc = bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT, "%s: %d bands", path, b);
        goto out;
    }
    void *px = vips_image_write_to_memory(u8, &len);
    if (!px || len != (size_t)w * (size_t)h * (size_t)b) {
        g_free(px);
        goto bad;
    }
    rc = bgr_pixels_alloc(out, w, h, b, err);
    if (rc == 0)
        memcpy(out->data, px, len);
    g_free(px);
    goto out;
bad:
    rc = bgr_error_set(err, BGR_EUNSUPPORTED_FORMAT, "%s: %s", path, vips_error_buffer());
    vips_error_clear();
out:
    if (u8)
        g_object_unref(u8);
    if (img)
        g_object_unref(img);
    return rc;
}

/* The alpha of a loaded prediction or mask: band 0 of grey, band 1 of
 * grey+alpha, band 3 of RGBA; grey stored as RGB when all equal. Writes
 * w*h bytes into alpha (caller's). */
static int alpha_of(const struct bgr_pixels *p, uint8_t *alpha, const char *what,
                    struct bgr_error *err)
{
    size_t n = (size_t)p->width * (size_t)p->height;
    int band = p->bands == 2 ? 1 : p->bands == 4 ? 3 : 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *px = p->data + i * (size_t)p->bands;
        if (p->bands == 3 && (px[0] != px[1] || px[1] != px[2]))
            return bgr_error_set(err, BGR_EINVALID_PARAMETER,
                                 "%s: RGB without alpha and with differing channels", what);
        alpha[i] = px[band];
    }
    return 0;
}

/* Finds images/NAME.* in dir; *out malloc'd. */
static char *find_image(const char *dir, const char *name)
{
    char *sub = NULL, *found = NULL;
    if (asprintf(&sub, "%s/images", dir) < 0)
        return NULL;
    DIR *d = opendir(sub);
    struct dirent *e;
    size_t n = strlen(name);
    while (d && !found && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, name, n) == 0 && e->d_name[n] == '.' &&
            asprintf(&found, "%s/%s", sub, e->d_name) < 0)
            found = NULL;
    if (d)
        closedir(d);
    free(sub);
    return found;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted NAMEs of DIR/masks/NAME.png; returns the count (or -1). */
static int list_names(const char *gt, char ***names)
{
    char *sub = NULL;
    int n = 0, cap = 0;
    if (asprintf(&sub, "%s/masks", gt) < 0)
        return -1;
    DIR *d = opendir(sub);
    free(sub);
    if (!d)
        return -1;
    struct dirent *e;
    *names = NULL;
    while ((e = readdir(d)) != NULL && n < MAX_NAMES) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcasecmp(e->d_name + l - 4, ".png") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            *names = realloc(*names, (size_t)cap * sizeof **names);
            if (!*names)
                abort();
        }
        (*names)[n] = bgr_xstrdup(e->d_name);
        (*names)[n][l - 4] = 0;
        n++;
    }
    closedir(d);
    if (n)
        qsort(*names, (size_t)n, sizeof **names, cmp_str);
    return n;
}

struct one_result {
    struct bgr_eval_metrics m;
    double refine_ms, mp;
    double wall_ms; /* the whole bgr_pipeline_matte call */
    struct bgr_matte_info info;
};

/* Our cutout of the photo (copied, not changed): RGBA pixels as `remove`
 * would write them before crop/flatten/encode. */
static int run_pipeline(struct bgr_model *model, const struct bgr_output_opts *opts,
                        const struct bgr_pixels *photo, struct bgr_pixels *cut,
                        struct bgr_timings *t, struct one_result *r, struct bgr_error *err)
{
    struct bgr_pixels pix = {0};
    uint8_t *matte = NULL;
    int rc = bgr_pixels_alloc(&pix, photo->width, photo->height, photo->bands, err);
    if (rc)
        return rc;
    memcpy(pix.data, photo->data,
           (size_t)photo->width * (size_t)photo->height * (size_t)photo->bands);
    matte = malloc((size_t)pix.width * (size_t)pix.height);
    if (!matte) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory");
        goto out;
    }
    double t0 = bgr_now_sec();
    rc = bgr_pipeline_matte_ex(model, &pix, opts, matte, t, &r->info, err);
    if (rc)
        goto out;
    r->wall_ms = (bgr_now_sec() - t0) * 1e3;
    struct bgr_compose_opts co = {0};
    rc = bgr_image_compose(&pix, matte, &co, cut, err);
out:
    free(matte);
    bgr_pixels_release(&pix);
    return rc;
}

/* The --synthetic input: photo blended by its true alpha over a smooth
 * colour gradient (red to blue across, green down): a background with no
 * object the model could take for a subject, and a different colour behind
 * every edge. */
static int recomposite(const struct bgr_pixels *photo, const uint8_t *alpha, struct bgr_pixels *out,
                       struct bgr_error *err)
{
    int w = photo->width, h = photo->height;
    int rc = bgr_pixels_alloc(out, w, h, 3, err);
    if (rc)
        return rc;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            const uint8_t *f = photo->data + i * (size_t)photo->bands;
            unsigned b[3] = {(unsigned)(255 * (w - 1 - x) / (w > 1 ? w - 1 : 1)),
                             (unsigned)(40 + 200 * y / (h > 1 ? h - 1 : 1)),
                             (unsigned)(255 * x / (w > 1 ? w - 1 : 1))};
            for (int c = 0; c < 3; c++)
                out->data[i * 3 + (size_t)c] =
                    (uint8_t)((f[c] * alpha[i] + b[c] * (255u - alpha[i]) + 127) / 255);
        }
    return 0;
}

static int save_png(const char *dir, const char *name, const struct bgr_pixels *p,
                    struct bgr_error *err)
{
    struct bgr_encode_opts eo = {.codec = BGR_IMAGE_PNG};
    struct bgr_encoded enc = {0};
    char *path = NULL;
    int rc = bgr_mkdir_p(dir, err);
    if (rc == 0)
        rc = bgr_image_encode(p, &eo, &enc, err);
    if (rc == 0 && asprintf(&path, "%s/%s.png", dir, name) < 0)
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory");
    if (rc == 0)
        rc = bgr_file_write_atomic(path, enc.data, enc.len, err);
    free(path);
    bgr_encoded_release(&enc);
    return rc;
}

/* Scores one NAME; prints its row. */
static int eval_one(struct bgr_model *model, const struct eval_args *a,
                    const struct bgr_output_opts *opts, const char *name, struct one_result *r,
                    struct bgr_error *err)
{
    struct bgr_pixels gtp = {0}, photo = {0}, cut = {0}, pred = {0}, synth = {0};
    uint8_t *ga = NULL, *pa = NULL;
    char *gpath = NULL, *ipath = find_image(a->gt, name), *ppath = NULL;
    struct bgr_timings t = {0};
    int rc;

    if (!ipath) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "no images/%s.* in %s", name, a->gt);
        goto out;
    }
    if (asprintf(&gpath, "%s/masks/%s.png", a->gt, name) < 0)
        abort();
    rc = load_raw(gpath, &gtp, err);
    if (rc)
        goto out;
    size_t n = (size_t)gtp.width * (size_t)gtp.height;
    ga = malloc(n);
    pa = malloc(n);
    if (!ga || !pa) {
        rc = bgr_error_set(err, BGR_ENOMEM, "out of memory");
        goto out;
    }
    rc = alpha_of(&gtp, ga, gpath, err);
    if (rc)
        goto out;
    /* The photo as the pipeline sees it (sRGB, EXIF-rotated). */
    struct bgr_buf in;
    rc = bgr_file_read(ipath, MAX_INPUT_BYTES, &in, err);
    if (rc)
        goto out;
    rc = bgr_image_decode(in.data, in.len, NULL, &photo, NULL, err);
    bgr_buf_release(&in);
    if (rc)
        goto out;
    const struct bgr_pixels *colours = &photo;
    if (a->pred) {
        if (asprintf(&ppath, "%s/%s.png", a->pred, name) < 0)
            abort();
        rc = load_raw(ppath, &pred, err);
        if (rc == 0 && (pred.width != gtp.width || pred.height != gtp.height))
            rc = bgr_error_set(err, BGR_EINVALID_PARAMETER,
                               "size mismatch: prediction %dx%d, GT %dx%d", pred.width, pred.height,
                               gtp.width, gtp.height);
        if (rc == 0)
            rc = alpha_of(&pred, pa, ppath, err);
        if (rc)
            goto out;
        if (pred.bands == 4)
            colours = &pred;
    } else {
        if (photo.width == gtp.width && photo.height == gtp.height && a->synthetic) {
            rc = recomposite(&photo, ga, &synth, err);
            if (rc)
                goto out;
        }
        rc = run_pipeline(model, opts, synth.data ? &synth : &photo, &cut, &t, r, err);
        if (rc)
            goto out;
        for (size_t i = 0; i < n && cut.width == gtp.width && cut.height == gtp.height; i++)
            pa[i] = cut.data[i * 4 + 3];
        colours = &cut;
        if (a->save && (rc = save_png(a->save, name, &cut, err)) != 0)
            goto out;
    }
    if (photo.width != gtp.width || photo.height != gtp.height) {
        rc = bgr_error_set(err, BGR_EINVALID_PARAMETER, "size mismatch: image %dx%d, GT %dx%d",
                           photo.width, photo.height, gtp.width, gtp.height);
        goto out;
    }
    rc = bgr_eval_alpha(pa, ga, gtp.width, gtp.height, &r->m, err);
    if (rc)
        goto out;
    r->m.comp = bgr_eval_composite(colours->data, colours->bands, pa, photo.data, photo.bands, ga,
                                   gtp.width, gtp.height);
    if (a->synthetic)
        r->m.fringe = bgr_eval_fringe(colours->data, colours->bands, pa, ga, photo.data,
                                      photo.bands, gtp.width, gtp.height);
    r->refine_ms = t.refine_ms;
    r->mp = (double)n / 1e6;
    printf("%-30s %8.5f %8.5f %9.3f %7.4f %7.4f %8.3f %8.5f %8.3f", name, r->m.mae, r->m.mse,
           r->m.sad, r->m.iou, r->m.bf, r->m.grad, r->m.comp, r->m.conn);
    if (a->synthetic && r->m.fringe >= 0)
        printf(" %8.5f", r->m.fringe);
    else if (a->synthetic)
        printf(" %8s", "-");
    if (a->pred)
        printf(" %6s %6s", "-", "-");
    else
        printf(" %6.3f %4s/%d", r->info.confidence, bgr_refine_name(r->info.refine), r->info.views);
    if (a->verbose && !a->pred) {
        const struct bgr_matte_features *f = &r->info.plain;
        printf("  infer %.0f ms, refine %.1f ms (%.0f ms/MP), total %.0f ms; plain view: "
               "subject %.4f soft %.4f mid %.4f border %.4f; final: soft %.4f mid %.4f "
               "disagree %.4f",
               t.infer_ms, t.refine_ms, t.refine_ms / r->mp, r->wall_ms, f->subject, f->soft,
               f->mid, f->border, r->info.final.soft, r->info.final.mid, r->info.final.disagree);
    }
    printf("\n");
out:
    free(ga);
    free(pa);
    free(gpath);
    free(ipath);
    free(ppath);
    bgr_pixels_release(&gtp);
    bgr_pixels_release(&photo);
    bgr_pixels_release(&cut);
    bgr_pixels_release(&pred);
    bgr_pixels_release(&synth);
    return rc;
}

static int load_model(const struct eval_args *a, struct bgr_model **model)
{
    struct bgr_error err;
    char *path = NULL;
    bgr_error_clear(&err);
    if (bgr_models_resolve(a->m.model, a->m.model_dir, &path, &err) ||
        bgr_model_load_file(path, &a->m.mo, model, &err)) {
        /* the engine's messages may name the file already */
        bool named = !path || strstr(err.msg, path) != NULL;
        bgr_cli_error(CMD, "%s%s%s", named ? "" : path, named ? "" : ": ", err.msg);
        free(path);
        return BGR_EXIT_FAIL;
    }
    free(path);
    return 0;
}

struct mode_summary {
    double mean_sad, median_sad, mean_iou, mean_bf, spearman, total_ms;
    int n, full_runs;
};

/* Prints the confidence figures: Spearman of confidence against SAD, and
 * the mean SAD of the 20% lowest-confidence images against the rest. */
static double confidence_report(const struct one_result *res, int ok)
{
    double *c = bgr_xcalloc((size_t)ok, sizeof *c), *s = bgr_xcalloc((size_t)ok, sizeof *s);
    for (int i = 0; i < ok; i++)
        c[i] = res[i].info.confidence, s[i] = res[i].m.sad;
    double rho = bgr_eval_spearman(c, s, (size_t)ok);
    /* the lowest fifth by confidence (at least one image) */
    int low = ok / 5 > 0 ? ok / 5 : 1;
    double cut = 0, low_sad = 0, rest_sad = 0;
    int nl = 0, nr = 0;
    double *sorted = bgr_xcalloc((size_t)ok, sizeof *sorted);
    memcpy(sorted, c, (size_t)ok * sizeof *c);
    bgr_eval_median(sorted, (size_t)ok); /* sorts */
    cut = sorted[low - 1];
    for (int i = 0; i < ok; i++) {
        if (c[i] <= cut && nl < low)
            low_sad += s[i], nl++;
        else
            rest_sad += s[i], nr++;
    }
    printf("confidence: spearman(confidence, sad)=%.3f; mean sad of the %d lowest-confidence "
           "images %.3f, of the other %d %.3f\n",
           rho, nl, nl ? low_sad / nl : 0.0, nr, nr ? rest_sad / nr : 0.0);
    free(sorted);
    free(c);
    free(s);
    return rho;
}

/* Scores every name with opts (or the --pred files) and prints one table;
 * returns the number of failed images and fills *sm. */
static int run_table(struct bgr_model *model, const struct eval_args *a,
                     const struct bgr_output_opts *opts, char **names, int n,
                     struct one_result *res, double *sads, struct mode_summary *sm)
{
    int ok = 0, failed = 0, full_runs = 0;
    if (a->pred)
        printf("predictions: %s\n", a->pred);
    else
        printf("model run%s: refine=%s decontaminate=%s precision=%s\n",
               a->synthetic ? " on re-composited photos (--synthetic)" : "",
               bgr_refine_name(opts->refine), opts->decontaminate ? "true" : "false",
               bgr_model_precision_name(model));
    printf("%-30s %8s %8s %9s %7s %7s %8s %8s %8s%s %6s %6s\n", "name", "mae", "mse", "sad", "iou",
           "bf", "grad", "comp", "conn", a->synthetic ? "   fringe" : "", "conf", "ran");
    struct bgr_eval_metrics sum = {0};
    double refine_ms = 0, mp = 0, wall_ms = 0;
    int n_fringe = 0;
    for (int i = 0; i < n; i++) {
        struct bgr_error err;
        bgr_error_clear(&err);
        memset(&res[ok], 0, sizeof res[ok]);
        if (eval_one(model, a, opts, names[i], &res[ok], &err) != 0) {
            printf("ERROR %s: %s\n", names[i], err.msg);
            failed++;
            continue;
        }
        struct bgr_eval_metrics *m = &res[ok].m;
        sum.mae += m->mae, sum.mse += m->mse, sum.sad += m->sad, sum.iou += m->iou;
        sum.bf += m->bf, sum.grad += m->grad, sum.comp += m->comp, sum.conn += m->conn;
        if (m->fringe >= 0) /* images with soft ground truth only */
            sum.fringe += m->fringe, n_fringe++;
        refine_ms += res[ok].refine_ms, mp += res[ok].mp, wall_ms += res[ok].wall_ms;
        full_runs += res[ok].info.views > 1;
        sads[ok] = m->sad;
        ok++;
    }
    printf("evaluated %d of %d images, %d error(s)\n", ok, n, failed);
    *sm = (struct mode_summary){.n = ok, .full_runs = full_runs, .total_ms = wall_ms};
    if (ok) {
        double k = ok;
        printf("%-30s %8.5f %8.5f %9.3f %7.4f %7.4f %8.3f %8.5f %8.3f", "mean", sum.mae / k,
               sum.mse / k, sum.sad / k, sum.iou / k, sum.bf / k, sum.grad / k, sum.comp / k,
               sum.conn / k);
        if (a->synthetic)
            printf(" %8.5f", n_fringe ? sum.fringe / n_fringe : 0.0);
        printf("\n");
        if (!a->pred)
            sm->spearman = confidence_report(res, ok);
        sm->mean_sad = sum.sad / k, sm->mean_iou = sum.iou / k, sm->mean_bf = sum.bf / k;
        sm->median_sad = bgr_eval_median(sads, (size_t)ok);
        printf("mean_mae=%.6f mean_mse=%.6f mean_sad=%.3f median_sad=%.3f mean_iou=%.4f "
               "mean_bf=%.4f mean_grad=%.3f mean_comp=%.5f mean_conn=%.3f",
               sum.mae / k, sum.mse / k, sum.sad / k, sm->median_sad, sum.iou / k, sum.bf / k,
               sum.grad / k, sum.comp / k, sum.conn / k);
        if (a->synthetic)
            printf(" mean_fringe=%.5f (n=%d)", n_fringe ? sum.fringe / n_fringe : 0.0, n_fringe);
        if (!a->pred)
            printf(" refine_ms_per_mp=%.1f extra_views=%d/%d pipeline_s=%.2f",
                   mp > 0 ? refine_ms / mp : 0.0, full_runs, ok, wall_ms / 1e3);
        printf("\n");
    }
    return failed;
}

int bgr_cmd_eval(int argc, char **argv)
{
    struct eval_args a;
    struct bgr_model *model = NULL;
    char **names = NULL;
    struct one_result *res = NULL;
    double *sads = NULL;
    struct mode_summary summ[MAX_MODES] = {0};
    int rc, n, failed = 0;

    memset(&a, 0, sizeof a);
    bgr_output_opts_init(&a.opts);
    rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? BGR_EXIT_OK : rc;
    n = list_names(a.gt, &names);
    if (n <= 0) {
        bgr_cli_error(CMD, "no ground truth in %s: expected %s/masks/NAME.png", a.gt, a.gt);
        return BGR_EXIT_USAGE;
    }
    if (!a.pred && (rc = load_model(&a, &model)) != 0)
        goto out;
    res = bgr_xcalloc((size_t)n, sizeof *res);
    sads = bgr_xcalloc((size_t)n, sizeof *sads);
    for (int k = 0; k < a.nmodes; k++) {
        struct bgr_output_opts o = a.opts;
        o.refine = a.modes[k];
        int f = run_table(model, &a, &o, names, n, res, sads, &summ[k]);
        failed += f;
    }
    if (a.nmodes > 1) {
        printf("\n%-6s %9s %10s %8s %9s %8s %11s %9s\n", "refine", "mean_sad", "median_sad",
               "mean_iou", "mean_bf", "spearman", "extra_views", "total_s");
        for (int k = 0; k < a.nmodes; k++)
            printf("%-6s %9.3f %10.3f %8.4f %9.4f %8.3f %5d of %-3d %9.2f\n",
                   bgr_refine_name(a.modes[k]), summ[k].mean_sad, summ[k].median_sad,
                   summ[k].mean_iou, summ[k].mean_bf, summ[k].spearman, summ[k].full_runs,
                   summ[k].n, summ[k].total_ms / 1e3);
    }
    rc = failed ? BGR_EXIT_FAIL : BGR_EXIT_OK;
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(res);
    free(sads);
    bgr_model_free(model);
    return rc;
}
