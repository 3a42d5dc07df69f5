/*
 * infer.c - the public face of the engine (infer.h): load = parse + prepare
 * + one backend, run = shape checks, the model's lock and the backend's run.
 */
#include "infer/infer.h"
#include "infer/backend.h"
#include "infer/calib.h"
#include "infer/engine_id.h"
#include "infer/wcache.h"

#include <dnnl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BGR_MODEL_FILE_MAX ((size_t)1 << 30)

struct bgr_model {
    pthread_mutex_t mu; /* serialises runs: the backend owns one set of buffers */
    struct bgr_model_opts opts;
    struct bgr_graph g;
    struct bgr_ref_be *ref;
    struct bgr_dnnl_be *dn;
    struct bgr_shape in_shape, out_shape;
    size_t in_count, out_count;
    enum bgr_precision prec; /* resolved: never AUTO */
    int profiling;
    double op_ms[BGR_OP__COUNT + 1]; /* last profiled run, index BGR_OP__COUNT: reorders */
    double parse_ms, build_ms;       /* load: ONNX parse and graph passes; backend */
    char *file;                      /* the path loaded from (owned), NULL for memory */
    /* int8: the model file's identity; calibration mode: per value id the
     * range seen so far (owned, read by the backend) */
    struct bgr_calib_id id;
    float *cal_lo, *cal_hi;
    int cal_runs;
    /* the weight cache: the mapping the packed weights live in when loaded
     * from it (owned), what happened, and the load's stages */
    struct bgr_wcache *wc;
    enum bgr_cache_state cache;
    char cache_note[256];
    double hash_ms, cache_ms; /* model hashing; cache open + verify, or write */
    double prep_ms;           /* cached load: the second thread's work */
    /* a cached load's activation memory, made and faulted in while the
     * primitives are created (owned; the backend borrows it) */
    struct bgr_act_mem arena, scratch;
};

static struct bgr_shape shape_of(const struct bgr_value *v)
{
    struct bgr_shape s = {.rank = 4};
    memcpy(s.dims, v->dims, sizeof s.dims);
    return s;
}

static void print_plan(const struct bgr_model *m)
{
    const dnnl_version_t *dv = dnnl_version();
    int counts[BGR_OP__COUNT] = {0}, fused = 0;
    for (int k = 0; k < m->g.norder; k++) {
        const struct bgr_node *nd = &m->g.nodes[m->g.order[k]];
        counts[nd->op]++;
        fused += nd->op == BGR_OP_CONV && nd->conv.relu;
    }
    int ex[BGR_OP__COUNT + 1] = {0};
    if (m->dn)
        bgr_dnnl_be_counts(m->dn, ex);
    size_t bytes = bgr_model_planned_bytes(m);
    fprintf(stderr,
            "infer: %d steps (%d Conv, %d with fused ReLU, %d in int8), %d concat copies, "
            "%d reorders, "
            "%.2f GMAC, %zu MiB planned, backend %s, %s, oneDNN %d.%d.%d (cpu runtime %u); "
            "%s in %.0f ms, backend built in %.0f ms\n",
            m->g.norder, counts[BGR_OP_CONV], fused, m->dn ? bgr_dnnl_be_int8_convs(m->dn) : 0,
            m->dn ? ex[BGR_OP_CONCAT] : counts[BGR_OP_CONCAT], ex[BGR_OP__COUNT], m->g.macs / 1e9,
            bytes >> 20, m->opts.backend == BGR_BACKEND_REF ? "reference" : "oneDNN",
            bgr_model_precision_name(m), dv->major, dv->minor, dv->patch, dv->cpu_runtime,
            m->wc ? "graph mapped" : "parsed", m->parse_ms, m->build_ms);
    static const char *const state[] = {"off", "used", "written", "not written"};
    char prep[160] = "";
    if (m->cache == BGR_CACHE_USED)
        (void)snprintf(prep, sizeof prep,
                       ", open + waiting for the second thread, which took %.0f ms to fault in "
                       "the activations and verify the checksum",
                       m->prep_ms);
    fprintf(stderr,
            "infer: weight cache %s (%.0f ms on this thread%s)%s%s; model hashed in %.0f ms\n",
            state[m->cache], m->cache_ms, prep, m->cache_note[0] ? ": " : "", m->cache_note,
            m->hash_ms);
}

/* The oneDNN backend, for int8 with the calibration file's ranges. */
static int build_dnnl(struct bgr_model *m, const char *model_path, struct bgr_wcache *wc,
                      struct bgr_error *err)
{
    struct bgr_dnnl_cfg cfg = {.n_threads = m->opts.n_threads,
                               .bf16 = m->prec != BGR_PREC_FP32,
                               .wc = wc,
                               .arena = m->arena,
                               .scratch = m->scratch};
    float *lo = NULL, *hi = NULL;
    char *path = NULL;
    int rc = 0, n = m->g.nvals + 1;
    if (m->prec == BGR_PREC_INT8) {
        if (!model_path) {
            rc = bgr_error_set(err, BGR_EMODEL,
                               "int8 loads a model file (its calibration file lies next to it)");
            goto out;
        }
        path = bgr_model_calib_path(model_path);
        lo = bgr_xmalloc((size_t)n * sizeof *lo);
        hi = bgr_xmalloc((size_t)n * sizeof *hi);
        if ((rc = bgr_calib_read(&m->g, path, &m->id, lo, hi, err)))
            goto out;
        cfg.q_lo = lo;
        cfg.q_hi = hi;
    }
    rc = bgr_dnnl_be_new(&m->g, &cfg, &m->dn, err);
out:
    free(lo);
    free(hi);
    free(path);
    return rc;
}

/* The precision opts ask for, resolved (never AUTO), or an error when this
 * CPU or backend cannot compute in it. */
static int resolve_prec(const struct bgr_model_opts *opts, enum bgr_precision *out,
                        struct bgr_error *err)
{
    if (opts->backend != BGR_BACKEND_DNNL && opts->backend != BGR_BACKEND_REF)
        return bgr_error_set(err, BGR_EUSAGE, "unknown backend %d", (int)opts->backend);
    enum bgr_precision prec = opts->precision;
    if (prec == BGR_PREC_AUTO) /* the reference backend computes in fp32 only */
        prec = opts->backend == BGR_BACKEND_REF ? BGR_PREC_FP32 : bgr_precision_auto();
    if (prec != BGR_PREC_FP32 && opts->backend == BGR_BACKEND_REF)
        return bgr_error_set(err, BGR_EMODEL, "the reference backend computes in fp32 only");
    /* int8 keeps bf16 between the int8 convolutions; without VNNI oneDNN's
     * int8 kernels lose precision (saturating u8 x s8 pairs) */
    if (prec == BGR_PREC_INT8 && (!bgr_dnnl_has_bf16() || !bgr_dnnl_has_vnni()))
        return bgr_error_set(err, BGR_EMODEL,
                             "int8 needs a CPU with AVX512-VNNI and AVX512-BF16; this one lacks "
                             "them");
    /* without native bf16 oneDNN would fall back to slow reference kernels */
    if (prec == BGR_PREC_BF16 && !bgr_dnnl_has_bf16())
        return bgr_error_set(err, BGR_EMODEL,
                             "bf16 needs a CPU with AVX512-BF16; this one has none");
    *out = prec;
    return 0;
}

/* Appends text to the model's cache note ("; " between parts), cut at its size. */
static void note_add(struct bgr_model *m, const char *text)
{
    size_t n = strlen(m->cache_note), cap = sizeof m->cache_note;
    if (!text[0])
        return;
    if (n > 0 && n + 2 < cap) {
        memcpy(m->cache_note + n, "; ", 3);
        n += 2;
    }
    size_t k = strlen(text);
    if (k > cap - 1 - n)
        k = cap - 1 - n;
    memcpy(m->cache_note + n, text, k);
    m->cache_note[n + k] = '\0';
}

static struct bgr_model *model_new(const struct bgr_model_opts *opts, enum bgr_precision prec)
{
    struct bgr_model *m = bgr_xcalloc(1, sizeof *m);
    m->opts = *opts;
    m->prec = prec;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void model_shapes(struct bgr_model *m)
{
    m->in_shape = shape_of(&m->g.vals[m->g.input]);
    m->out_shape = shape_of(&m->g.vals[m->g.output]);
    m->in_count = (size_t)bgr_act_count(&m->g.vals[m->g.input]);
    m->out_count = (size_t)bgr_act_count(&m->g.vals[m->g.output]);
}

/* Loads from data; file, when not NULL, holds data and is released as soon
 * as it has been parsed; path names it (NULL for memory). wkey, when not
 * NULL, is the weight cache key of path (stat identity filled): the packed
 * weights are then written to the cache file m->cache_note names. */
static int load(const void *data, size_t len, struct bgr_buf *file, const char *path,
                const struct bgr_model_opts *opts, struct bgr_wc_key *wkey, struct bgr_model **out,
                struct bgr_error *err)
{
    struct bgr_wcache *writer = NULL;
    struct bgr_model *m = NULL;
    enum bgr_precision prec;
    int rc;
    if ((rc = resolve_prec(opts, &prec, err)))
        return rc;
    m = model_new(opts, prec);
    double t0 = bgr_now_sec();
    /* what the calibration file and the weight cache are checked against
     * (about 160 ms for ISNet's 88 MB, so only where one is read or
     * written) */
    if (prec == BGR_PREC_INT8 || wkey) {
        bgr_sha256_hex(data, len, m->id.sha256);
        m->id.size = len;
        m->hash_ms = (bgr_now_sec() - t0) * 1e3;
        t0 = bgr_now_sec();
    }
    if ((rc = bgr_onnx_load_buf(data, len, file, &m->g, err))) {
        bgr_model_free(m);
        return rc;
    }
    model_shapes(m);
    m->parse_ms = (bgr_now_sec() - t0) * 1e3;
    t0 = bgr_now_sec();
    if (opts->backend == BGR_BACKEND_REF) {
        rc = bgr_ref_be_new(&m->g, &m->ref, err);
    } else {
        if (wkey)
            writer = bgr_wc_writer_new();
        rc = build_dnnl(m, path, writer, err);
    }
    if (rc) {
        bgr_wc_free(writer);
        bgr_model_free(m);
        return rc;
    }
    m->build_ms = (bgr_now_sec() - t0) * 1e3;
    if (writer) { /* the graph still holds its biases, the backend the weights */
        struct bgr_error werr = {0};
        char *cpath = bgr_model_cache_path(path, prec);
        t0 = bgr_now_sec();
        size_t arena = 0, scratch = 0;
        bgr_dnnl_be_sizes(m->dn, &arena, &scratch);
        memcpy(wkey->model_sha256, m->id.sha256, sizeof wkey->model_sha256);
        if (bgr_wc_commit(writer, &m->g, wkey, arena, scratch, cpath, &werr) == 0) {
            m->cache = BGR_CACHE_WRITTEN;
        } else {
            /* a read-only model directory: every load then parses */
            m->cache = BGR_CACHE_UNWRITTEN;
            note_add(m, werr.msg);
        }
        m->cache_ms = (bgr_now_sec() - t0) * 1e3;
        free(cpath);
        bgr_wc_free(writer);
    }
    if (opts->backend == BGR_BACKEND_DNNL) /* the primitives hold the weights now */
        bgr_graph_drop_consts(&m->g);
    *out = m;
    return 0;
}

/* Whether a file can be created next to path. */
static int dir_writable(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return access(".", W_OK) == 0;
    if (slash == path)
        return access("/", W_OK) == 0;
    char *dir = bgr_xmalloc((size_t)(slash - path) + 1);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    int ok = access(dir, W_OK) == 0;
    free(dir);
    return ok;
}

/* The model's SHA-256 (hex) from its file. */
static int hash_file(const char *path, char out[65], struct bgr_error *err)
{
    struct bgr_buf buf;
    int rc;
    bgr_buf_init(&buf, BGR_MODEL_FILE_MAX);
    if ((rc = bgr_file_read(path, BGR_MODEL_FILE_MAX, &buf, err)) == 0)
        bgr_sha256_hex(buf.data, buf.len, out);
    bgr_buf_release(&buf);
    return rc;
}

/* The SHA-256 of the calibration file int8 reads for path, into key
 * (missing: the cached load fails and the full load reports it). */
static int key_calib(struct bgr_wc_key *key, const char *path, struct bgr_error *err)
{
    char *cal = bgr_model_calib_path(path);
    struct bgr_buf buf;
    int rc;
    bgr_buf_init(&buf, (size_t)16 << 20);
    if ((rc = bgr_file_read(cal, (size_t)16 << 20, &buf, err)) == 0)
        bgr_sha256_hex(buf.data, buf.len, key->calib_sha256);
    bgr_buf_release(&buf);
    free(cal);
    return rc;
}

/* The second thread of a cached load: faults in the activation memory and
 * verifies the cache's checksum while the first creates the primitives. */
struct cache_prep {
    const struct bgr_wcache *wc;
    const struct bgr_act_mem *arena, *scratch;
    int rc;
    struct bgr_error err;
    double ms;
};

static void *cache_prep_main(void *arg)
{
    struct cache_prep *cp = arg;
    double t0 = bgr_now_sec();
    bgr_act_mem_populate(cp->arena);
    bgr_act_mem_populate(cp->scratch);
    cp->rc = bgr_wc_verify(cp->wc, &cp->err);
    cp->ms = (bgr_now_sec() - t0) * 1e3;
    return NULL;
}

/* Loads path from its weight cache: the graph and the packed weights are
 * mapped, the primitives created over them while a second thread faults in
 * the activation memory and checks the cache's checksum; nothing computes
 * before that check passed. Fails (err says why) when there is no cache or
 * it does not match; key (filled here) is then the one a new cache is
 * written under. */
static int load_cached(const char *path, const struct bgr_model_opts *opts, enum bgr_precision prec,
                       struct bgr_wc_key *key, struct bgr_model **out, struct bgr_error *err)
{
    struct bgr_wcache *wc = NULL;
    struct bgr_model *m = NULL;
    struct cache_prep cp = {0};
    pthread_t th;
    char *cpath = bgr_model_cache_path(path, prec), sha[65];
    int rc, need_hash = 0, started = 0;
    size_t arena = 0, scratch = 0;
    double t0 = bgr_now_sec(), hash_ms = 0;
    bgr_wc_key_init(key, (uint32_t)prec);
    if ((rc = bgr_wc_key_stat(key, path, err)) ||
        (prec == BGR_PREC_INT8 && (rc = key_calib(key, path, err))) ||
        (rc = bgr_wc_open(cpath, key, &wc, &need_hash, err)))
        goto out;
    if (need_hash) { /* the model file was touched, copied or replaced */
        double th0 = bgr_now_sec();
        if ((rc = hash_file(path, sha, err)))
            goto out;
        hash_ms = (bgr_now_sec() - th0) * 1e3;
        if (strcmp(sha, bgr_wc_model_sha256(wc)) != 0) {
            rc = bgr_error_set(err, BGR_EMODEL, "cache made for another model (SHA-256)");
            goto out;
        }
    }
    m = model_new(opts, prec);
    m->hash_ms = hash_ms;
    bgr_wc_mem_hint(wc, &arena, &scratch);
    if ((arena && (rc = bgr_act_mem_alloc(&m->arena, arena, err))) ||
        (scratch && (rc = bgr_act_mem_alloc(&m->scratch, scratch, err))))
        goto out;
    cp.wc = wc;
    cp.arena = &m->arena;
    cp.scratch = &m->scratch;
    if (pthread_create(&th, NULL, cache_prep_main, &cp) == 0)
        started = 1;
    else /* no thread to spare: the same work on this one */
        cache_prep_main(&cp);
    m->cache_ms = (bgr_now_sec() - t0) * 1e3;
    t0 = bgr_now_sec();
    if ((rc = bgr_wc_graph(wc, &m->g, err)))
        goto out;
    model_shapes(m);
    memcpy(m->id.sha256, bgr_wc_model_sha256(wc), sizeof m->id.sha256);
    m->id.size = key->model_size;
    m->parse_ms = (bgr_now_sec() - t0) * 1e3;
    t0 = bgr_now_sec();
    if ((rc = build_dnnl(m, path, wc, err)))
        goto out;
    bgr_graph_drop_consts(&m->g); /* the biases pointed into the mapping */
    m->build_ms = (bgr_now_sec() - t0) * 1e3;
    t0 = bgr_now_sec();
    if (started)
        pthread_join(th, NULL);
    started = 0;
    m->cache_ms += (bgr_now_sec() - t0) * 1e3; /* waited for the second thread */
    m->prep_ms = cp.ms;
    if ((rc = cp.rc)) {
        *err = cp.err;
        goto out;
    }
    if (need_hash) { /* same model: record its new stat identity */
        struct bgr_error werr = {0};
        memcpy(key->model_sha256, m->id.sha256, sizeof key->model_sha256);
        note_add(m, "model file changed, same SHA-256: cache restamped");
        if (bgr_wc_restamp(wc, key, cpath, &werr))
            note_add(m, werr.msg);
    }
    m->cache = BGR_CACHE_USED;
    m->wc = wc;
    wc = NULL;
    *out = m;
    m = NULL;
out:
    if (started) /* before anything it reads is freed */
        pthread_join(th, NULL);
    if (started && rc && cp.rc) /* a corrupt cache fails in many ways: say so */
        *err = cp.err;
    bgr_model_free(m);
    bgr_wc_free(wc);
    free(cpath);
    return rc;
}

int bgr_model_load_mem(const void *data, size_t len, const struct bgr_model_opts *opts,
                       struct bgr_model **out, struct bgr_error *err)
{
    struct bgr_model_opts def = {0};
    int rc = load(data, len, NULL, NULL, opts ? opts : &def, NULL, out, err);
    if (rc == 0 && (*out)->opts.verbose)
        print_plan(*out);
    return rc;
}

int bgr_model_load_file(const char *path, const struct bgr_model_opts *opts, struct bgr_model **out,
                        struct bgr_error *err)
{
    struct bgr_model_opts def = {0};
    struct bgr_wc_key key, *wkey = NULL;
    struct bgr_error cerr = {0};
    struct bgr_buf buf;
    enum bgr_precision prec;
    int rc;
    if (!opts)
        opts = &def;
    if ((rc = resolve_prec(opts, &prec, err))) {
        bgr_error_prefix(err, "%s", path);
        return rc;
    }
    if (opts->backend == BGR_BACKEND_DNNL && !opts->no_cache) {
        if (load_cached(path, opts, prec, &key, out, &cerr) == 0) {
            (*out)->file = bgr_xstrdup(path);
            if (opts->verbose)
                print_plan(*out);
            return 0;
        }
        /* the stat identity is taken before the file is read: a change
         * after it shows at the next load */
        wkey = key.model_size && dir_writable(path) ? &key : NULL;
        if (key.model_size && !wkey) { /* no hashing for a cache that cannot be written */
            struct bgr_error why = cerr;
            bgr_error_set(&cerr, why.code, "%.400s; the model's directory is not writable",
                          why.msg);
        }
    }
    bgr_buf_init(&buf, BGR_MODEL_FILE_MAX);
    if ((rc = bgr_file_read(path, BGR_MODEL_FILE_MAX, &buf, err)))
        return rc;
    rc = load(buf.data, buf.len, &buf, path, opts, wkey, out, err);
    if (rc) {
        bgr_error_prefix(err, "%s", path);
    } else {
        struct bgr_model *m = *out;
        char note[sizeof m->cache_note];
        m->file = bgr_xstrdup(path);
        /* why the cache was not used, then what writing it gave */
        memcpy(note, m->cache_note, sizeof note);
        m->cache_note[0] = '\0';
        note_add(m, cerr.msg);
        note_add(m, note);
        if (opts->verbose)
            print_plan(*out);
    }
    bgr_buf_release(&buf); /* released already unless an early check failed */
    return rc;
}

void bgr_model_free(struct bgr_model *m)
{
    if (!m)
        return;
    bgr_ref_be_free(m->ref);
    bgr_dnnl_be_free(m->dn);
    bgr_graph_release(&m->g);
    pthread_mutex_destroy(&m->mu);
    free(m->cal_lo);
    free(m->cal_hi);
    free(m->file);
    bgr_wc_free(m->wc); /* after the backend: its weights were in the mapping */
    bgr_act_mem_free(&m->arena);
    bgr_act_mem_free(&m->scratch);
    free(m);
}

struct bgr_shape bgr_model_input_shape(const struct bgr_model *m)
{
    return m->in_shape;
}

struct bgr_shape bgr_model_output_shape(const struct bgr_model *m)
{
    return m->out_shape;
}

static void print_times(const double *op_ms, double total_ms)
{
    fprintf(stderr, "infer: run %.1f ms:", total_ms);
    for (int i = 0; i <= BGR_OP__COUNT; i++)
        if (op_ms[i] > 0)
            fprintf(stderr, " %s %.1f", i == BGR_OP__COUNT ? "Reorder" : bgr_op_name(i), op_ms[i]);
    fprintf(stderr, "\n");
}

int bgr_model_run(struct bgr_model *m, const float *in, size_t in_count, float *out,
                  size_t out_count, struct bgr_error *err)
{
    double op_ms[BGR_OP__COUNT + 1] = {0}, t0 = bgr_now_sec();
    int rc = 0;
    if (in_count != m->in_count)
        return bgr_error_set(err, BGR_ESHAPE, "input holds %zu floats, the model takes %zu",
                             in_count, m->in_count);
    if (out_count != m->out_count)
        return bgr_error_set(err, BGR_ESHAPE, "output holds %zu floats, the model gives %zu",
                             out_count, m->out_count);
    if (!in || !out)
        return bgr_error_set(err, BGR_EUSAGE, "NULL tensor");
    int timed = m->opts.verbose || m->profiling;
    pthread_mutex_lock(&m->mu);
    if (m->ref)
        bgr_ref_be_run(m->ref, &m->g, in, out, timed ? op_ms : NULL);
    else
        rc = bgr_dnnl_be_run(m->dn, in, out, timed ? op_ms : NULL, err);
    if (timed && rc == 0)
        memcpy(m->op_ms, op_ms, sizeof op_ms);
    m->cal_runs += rc == 0 && m->cal_lo;
    pthread_mutex_unlock(&m->mu);
    if (m->opts.verbose && rc == 0)
        print_times(op_ms, (bgr_now_sec() - t0) * 1e3);
    return rc;
}

double bgr_model_macs(const struct bgr_model *m)
{
    return m->g.macs;
}

int bgr_model_int8_convs(const struct bgr_model *m)
{
    return m->dn ? bgr_dnnl_be_int8_convs(m->dn) : 0;
}

const char *bgr_model_precision_name(const struct bgr_model *m)
{
    return m->prec == BGR_PREC_INT8 ? "int8" : m->prec == BGR_PREC_BF16 ? "bf16" : "fp32";
}

int bgr_model_calib_start(struct bgr_model *m, struct bgr_error *err)
{
    int rc = 0, n = m->g.nvals + 1;
    pthread_mutex_lock(&m->mu);
    if (!m->dn || m->prec != BGR_PREC_FP32 || !m->file) {
        rc = bgr_error_set(err, BGR_EUSAGE,
                           "calibration runs fp32 on the oneDNN backend, on a model file");
    } else if (!m->cal_lo) {
        m->cal_lo = bgr_xmalloc((size_t)n * sizeof *m->cal_lo);
        m->cal_hi = bgr_xmalloc((size_t)n * sizeof *m->cal_hi);
        for (int v = 0; v < n; v++) { /* empty ranges until a run widens them */
            m->cal_lo[v] = INFINITY;
            m->cal_hi[v] = -INFINITY;
        }
        m->cal_runs = 0;
        rc = bgr_dnnl_be_calibrate(m->dn, m->cal_lo, m->cal_hi);
        BGR_ASSERT(rc == 0);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int bgr_model_calib_write(struct bgr_model *m, const char *path, struct bgr_error *err)
{
    struct bgr_calib_id id = {.size = 0};
    struct bgr_buf file;
    int rc;
    if (!m->cal_lo)
        return bgr_error_set(err, BGR_EUSAGE, "no calibration started");
    /* the file's identity, read again: hashing at every fp32 load would
     * cost every load what only calibration needs */
    bgr_buf_init(&file, BGR_MODEL_FILE_MAX);
    if ((rc = bgr_file_read(m->file, BGR_MODEL_FILE_MAX, &file, err)))
        return rc;
    bgr_sha256_hex(file.data, file.len, id.sha256);
    id.size = file.len;
    bgr_buf_release(&file);
    pthread_mutex_lock(&m->mu); /* the ranges change during runs */
    if (m->cal_runs == 0)
        rc = bgr_error_set(err, BGR_EUSAGE, "no calibration run yet");
    else
        rc = bgr_calib_write(&m->g, m->cal_lo, m->cal_hi, m->cal_runs, &id, path, err);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static const char *isa_name(unsigned isa)
{
    switch (isa) {
    case dnnl_cpu_isa_avx512_core_amx:
        return "amx";
    case dnnl_cpu_isa_avx512_core_bf16:
        return "avx512bf16";
    case dnnl_cpu_isa_avx512_core_vnni:
        return "avx512vnni";
    case dnnl_cpu_isa_avx512_core:
        return "avx512";
    case dnnl_cpu_isa_avx2_vnni:
        return "avx2vnni";
    case dnnl_cpu_isa_avx2:
        return "avx2";
    default:
        return NULL;
    }
}

char *bgr_model_cache_path(const char *model_path, enum bgr_precision prec)
{
    static const char ext[] = ".onnx";
    size_t n = strlen(model_path), e = sizeof ext - 1;
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    const char *iname = isa_name(isa);
    char tail[64];
    if (n >= e && strcmp(model_path + n - e, ext) == 0)
        n -= e;
    if (prec == BGR_PREC_AUTO)
        prec = bgr_precision_auto();
    const char *pname = prec == BGR_PREC_INT8 ? "int8" : prec == BGR_PREC_BF16 ? "bf16" : "fp32";
    /* tail holds the longest of these with room to spare; the engine id's
     * first 8 digits keep builds that share a model directory apart */
    if (iname)
        (void)snprintf(tail, sizeof tail, ".%s.%s.%.8s.wcache", pname, iname, BGR_ENGINE_ID);
    else
        (void)snprintf(tail, sizeof tail, ".%s.isa%x.%.8s.wcache", pname, isa, BGR_ENGINE_ID);
    char *p = bgr_xmalloc(n + strlen(tail) + 1);
    memcpy(p, model_path, n);
    memcpy(p + n, tail, strlen(tail) + 1);
    return p;
}

enum bgr_cache_state bgr_model_cache_state(const struct bgr_model *m, const char **note)
{
    if (note)
        *note = m->cache_note;
    return m->cache;
}

char *bgr_model_calib_path(const char *model_path)
{
    static const char ext[] = ".onnx", cal[] = ".int8cal";
    size_t n = strlen(model_path), e = sizeof ext - 1;
    if (n >= e && strcmp(model_path + n - e, ext) == 0)
        n -= e;
    char *p = bgr_xmalloc(n + sizeof cal);
    memcpy(p, model_path, n);
    memcpy(p + n, cal, sizeof cal);
    return p;
}

enum bgr_precision bgr_precision_auto(void)
{
    /* bf16 held the accuracy bar (matte MAE <= 0.003 against fp32) on every
     * test photo: see bench/README.md. Where the CPU lacks native bf16,
     * oneDNN would emulate it slower than fp32. */
    return bgr_dnnl_has_bf16() ? BGR_PREC_BF16 : BGR_PREC_FP32;
}

void bgr_model_set_profiling(struct bgr_model *m, int on)
{
    pthread_mutex_lock(&m->mu);
    m->profiling = on;
    pthread_mutex_unlock(&m->mu);
}

int bgr_model_profile(const struct bgr_model *m, struct bgr_op_profile *out, int max)
{
    int counts[BGR_OP__COUNT + 1] = {0}, n = 0;
    if (m->dn) {
        bgr_dnnl_be_counts(m->dn, counts);
    } else {
        for (int k = 0; k < m->g.norder; k++)
            counts[m->g.nodes[m->g.order[k]].op]++;
    }
    for (int i = 0; i <= BGR_OP__COUNT; i++) {
        if (!counts[i])
            continue;
        if (n < max)
            out[n] = (struct bgr_op_profile){i == BGR_OP__COUNT ? "Reorder" : bgr_op_name(i),
                                             counts[i], m->op_ms[i]};
        n++;
    }
    return n;
}

size_t bgr_model_planned_bytes(const struct bgr_model *m)
{
    return m->ref ? bgr_ref_be_bytes(m->ref) : bgr_dnnl_be_bytes(m->dn);
}
