/*
 * wcache.h - the weight cache (private to src/infer): one file next to a
 * model file holding its prepared graph and every weight already converted
 * and packed in the layout the oneDNN primitives chose, so that a load maps
 * it instead of parsing 88 MB of protobuf and reordering every weight.
 *
 * A cache file belongs to one (model file, engine build, oneDNN version,
 * CPU ISA, precision[, int8 calibration file]); its header records all of
 * them and a load uses it only when every one matches (struct bgr_wc_key).
 * The model is identified by its SHA-256; hashing 88 MB at every load would
 * cost 160-200 ms, so the header also records the model file's stat
 * identity (device, inode, size, mtime and ctime in ns) at the time it was
 * hashed: while that is unchanged the file is the one hashed (a write
 * changes mtime and ctime, a replacement the inode); when it changed, the
 * model is hashed again and the cache is used only if the hash still
 * matches. The body is checksummed (64-bit, not cryptographic: it finds
 * truncation and corruption; anyone who can write the cache can also write
 * the model next to it) and verified at every load.
 *
 * Writing: a load that finds no usable cache builds the backend normally,
 * recording (by reference) every packed weight it makes; the file is then
 * written to a temporary name and renamed into place, so a reader sees an
 * old file or a complete new one, never a partial one.
 *
 * Reading: the backend asks for its blobs in the same order it made them;
 * each comes with its tag and size (and a packed weight with its memory
 * descriptor), and any difference fails the cached load, which then falls
 * back to the full load (and rewrites the cache).
 */
#ifndef BGR_INFER_WCACHE_H
#define BGR_INFER_WCACHE_H

#include "infer/graph.h"

#include <stdint.h>

/* What a cache file must match. */
struct bgr_wc_key {
    char model_sha256[65]; /* lower-case hex */
    uint64_t model_size;
    /* the model file's stat identity when model_sha256 was taken */
    uint64_t st_dev, st_ino, mtime_ns, ctime_ns;
    char calib_sha256[65]; /* int8: of the calibration file's bytes, else "" */
    uint32_t prec;         /* enum bgr_precision, resolved */
    uint32_t isa;          /* dnnl_get_effective_cpu_isa() */
    uint32_t dnnl_ver[3];
};

/* Blob tags (the backend's order of requests is the file's order). */
enum bgr_wc_tag {
    BGR_WC_GRAPH = 1, /* the prepared graph (written by bgr_wc_commit) */
    BGR_WC_WMD,       /* a packed weight's memory descriptor */
    BGR_WC_WDATA,     /* its bytes */
    BGR_WC_WSCALE,    /* an int8 conv's weight scales, one float per output channel */
};

struct bgr_wcache;

/* Fills the parts of *key that do not depend on the model file (engine
 * build, oneDNN version, ISA, precision); the caller adds the rest. */
void bgr_wc_key_init(struct bgr_wc_key *key, uint32_t prec);
/* The model file's stat identity into *key (size, device, inode, times);
 * BGR_EIO when it cannot be stat'ed. */
int bgr_wc_key_stat(struct bgr_wc_key *key, const char *model_path, struct bgr_error *err);

/* Maps path and checks the header (its own checksum, the body's length)
 * against want (everything except the model's identity), then the model:
 * same stat identity as recorded, or, when the stat differs, *need_hash = 1
 * and the caller must compare bgr_wc_model_sha256() with a fresh hash of
 * the model (the mapping is kept). The body's checksum is left to
 * bgr_wc_verify, which the caller must run (on any thread) and pass before
 * anything read from the cache is used to compute: the readers below only
 * bound-check. On success *out owns the mapping (free with bgr_wc_free)
 * and is in reading mode. Any mismatch is BGR_EMODEL with the reason in
 * err (a missing file BGR_EIO). */
int bgr_wc_open(const char *path, const struct bgr_wc_key *want, struct bgr_wcache **out,
                int *need_hash, struct bgr_error *err);
/* The body's checksum: 0, or BGR_EMODEL ("corrupt"). Reads only: safe on
 * another thread while this one reads blobs. */
int bgr_wc_verify(const struct bgr_wcache *wc, struct bgr_error *err);
const char *bgr_wc_model_sha256(const struct bgr_wcache *wc);
/* The backend's activation and scratchpad bytes when the cache was
 * written (0 for none), so that they can be made and faulted in early. */
void bgr_wc_mem_hint(const struct bgr_wcache *wc, size_t *arena, size_t *scratch);
size_t bgr_wc_bytes(const struct bgr_wcache *wc); /* of the file */

/* Reading: the graph (into an empty *g; node names, shapes, fused
 * parameters; constants carry no data, conv weights are NULL and conv
 * biases point into the mapping, valid while wc lives). BGR_EMODEL when
 * the record is malformed. */
int bgr_wc_graph(struct bgr_wcache *wc, struct bgr_graph *g, struct bgr_error *err);
/* Reading: the next blob, which must have this tag and length; NULL (and
 * the cache is marked failed) otherwise. The bytes are the mapping's (64-byte
 * aligned, read-only, valid while wc lives). */
const void *bgr_wc_next(struct bgr_wcache *wc, enum bgr_wc_tag tag, size_t len);

/* Reading: writes the mapped cache again under key (a new stat identity
 * of the same model), atomically at path. Errors: BGR_EIO. */
int bgr_wc_restamp(const struct bgr_wcache *wc, const struct bgr_wc_key *key, const char *path,
                   struct bgr_error *err);

/* Writing: a recorder for a new cache. */
struct bgr_wcache *bgr_wc_writer_new(void);
/* Records a blob. copy = 0: data is borrowed and must stay valid and
 * unchanged until bgr_wc_commit (packed weights the backend keeps);
 * copy = 1: copied now. */
void bgr_wc_put(struct bgr_wcache *wc, enum bgr_wc_tag tag, const void *data, size_t len, int copy);
/* Writes graph g (which must still hold its conv biases) and the recorded
 * blobs to path atomically under key, with the backend's memory sizes as
 * hints. Errors: BGR_EIO. */
int bgr_wc_commit(struct bgr_wcache *wc, const struct bgr_graph *g, const struct bgr_wc_key *key,
                  size_t arena, size_t scratch, const char *path, struct bgr_error *err);
/* Writing: whether wc records (else it reads). */
int bgr_wc_writing(const struct bgr_wcache *wc);

void bgr_wc_free(struct bgr_wcache *wc); /* accepts NULL; unmaps */

/* The 64-bit checksum the file uses (exposed for tests). */
uint64_t bgr_wc_checksum(const void *data, size_t len);

#endif
