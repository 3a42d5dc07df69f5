/*
 * parity.c - e2e_parity: our mattes against a folder of reference mattes,
 * for checks beyond the committed test photos (not a CTest test).
 *
 *   e2e_parity [--ref] [--precision fp32|bf16|auto] [--model NAME|PATH] REF_DIR PHOTO...
 *
 * For each PHOTO, compares the matte of the real pipeline (fp32 unless
 * --precision says; oneDNN, or the plain C reference backend with --ref)
 * with REF_DIR/NAME.png and prints MAE, IoU at 0.5 and time; then the mean
 * and largest MAE, the lowest IoU and the mean time. Exit 1 if any photo
 * failed to run. bench/accuracy uses it to compare bf16 with fp32 mattes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "matte.h"

int main(int argc, char **argv)
{
    enum bgr_backend backend = BGR_BACKEND_DNNL;
    const char *model_arg = NULL, *ref_dir;
    double sum_mae = 0, max_mae = 0, min_iou = 1, sum_ms = 0;
    enum bgr_precision prec = BGR_PREC_FP32;
    struct bgr_model *model;
    int i = 1, n = 0, failed = 0;

    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--ref") == 0)
            backend = BGR_BACKEND_REF;
        else if (strcmp(argv[i], "--precision") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "fp32") == 0)
                prec = BGR_PREC_FP32;
            else if (strcmp(argv[i], "bf16") == 0)
                prec = BGR_PREC_BF16;
            else if (strcmp(argv[i], "auto") == 0)
                prec = BGR_PREC_AUTO;
            else
                break;
        } else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model_arg = argv[++i];
        else
            break;
    }
    if (argc - i < 2) {
        fprintf(stderr,
                "usage: e2e_parity [--ref] [--precision P] [--model NAME|PATH] REF_DIR PHOTO...\n");
        return 2;
    }
    ref_dir = argv[i++];
    model = e2e_load_model_prec(model_arg, backend, prec);
    if (!model)
        return 1;
    for (; i < argc; i++) {
        struct e2e_matte ours = {0}, ref = {0};
        const char *base = strrchr(argv[i], '/');
        const char *dot;
        char refpath[1024];
        double mae, iou, ms = 0;
        base = base ? base + 1 : argv[i];
        dot = strrchr(base, '.');
        snprintf(refpath, sizeof refpath, "%s/%.*s.png", ref_dir,
                 (int)(dot ? dot - base : (long)strlen(base)), base);
        if (e2e_load_gray(refpath, &ref) || e2e_predict(model, argv[i], &ours, &ms) ||
            ours.w != ref.w || ours.h != ref.h) {
            fprintf(stderr, "%s: failed\n", argv[i]);
            failed++;
        } else {
            e2e_compare(&ours, &ref, &mae, &iou);
            printf("%-22s %5dx%-5d MAE %.6f  IoU %.6f  %6.0f ms\n", base, ours.w, ours.h, mae, iou,
                   ms);
            fflush(stdout);
            sum_mae += mae;
            max_mae = mae > max_mae ? mae : max_mae;
            sum_ms += ms;
            min_iou = iou < min_iou ? iou : min_iou;
            n++;
        }
        e2e_matte_release(&ours);
        e2e_matte_release(&ref);
    }
    if (n)
        printf("%d photos: mean MAE %.6f, largest MAE %.6f, lowest IoU %.6f, mean time %.0f ms\n",
               n, sum_mae / n, max_mae, min_iou, sum_ms / n);
    bgr_model_free(model);
    return failed ? 1 : 0;
}
