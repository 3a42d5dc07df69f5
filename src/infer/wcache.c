/*
 * wcache.c - the weight cache file (wcache.h).
 *
 * Layout (all integers little-endian, as the CPU that wrote it; the ISA in
 * the key rules out reading it elsewhere):
 *   [0, 4096)  struct wc_header, zero-padded (the body starts page-aligned)
 *   body       records: a 64-byte record header (tag, length), then the
 *              bytes, zero-padded to a multiple of 64, so every blob is
 *              64-byte aligned in the mapping (oneDNN's packed weights are
 *              read in place). The first record is the graph.
 * The body's checksum is over its whole length: 1 MiB blocks hashed (4
 * lanes of 64-bit multiply-rotate rounds, the block index as seed), then
 * the block hashes hashed in order. About 10 ms for ISNet's 88 MB once its
 * pages are mapped; the load runs it on a second thread.
 */
#define _GNU_SOURCE
#include "infer/wcache.h"
#include "infer/engine_id.h"

#include <dirent.h>
#include <dnnl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WC_MAGIC "bgremover-wcache"
#define WC_FORMAT 1u
#define WC_HDR_BYTES 4096u
#define WC_REC_BYTES 64u
#define WC_BLOCK ((size_t)1 << 20)
#define WC_MAX_BYTES ((uint64_t)8 << 30)
#define WC_MAX_VALS (1 << 22)
#define WC_MAX_STR 4096u

struct wc_header {
    char magic[16];
    uint32_t format, hdr_bytes;
    char engine[72];
    struct bgr_wc_key key;
    uint64_t body_len, body_sum;
    uint64_t arena_bytes, scratch_bytes; /* what the backend planned (hints) */
    uint64_t hdr_sum;                    /* of the bytes of this struct before this field */
};

struct wc_rec {
    uint32_t tag, pad;
    uint64_t len;
    uint8_t zero[WC_REC_BYTES - 16];
};

struct wc_piece {
    uint32_t tag;
    const void *data;
    size_t len;
    void *owned; /* copy = 1 */
};

struct bgr_wcache {
    int writing;
    /* reading */
    uint8_t *map;
    size_t map_len, pos; /* pos: offset of the next record */
    int failed;
    struct wc_header hdr;
    /* writing */
    struct wc_piece *pieces;
    int npieces, cap_pieces;
};

/* ---- checksum ------------------------------------------------------------------ */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t mix(uint64_t acc, uint64_t w)
{
    return rotl64(acc + w * P2, 31) * P1;
}

static uint64_t block_sum(const uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t a0 = seed + P1 + P2, a1 = seed + P2, a2 = seed, a3 = seed - P1, w[4];
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        memcpy(w, p + i, 32);
        a0 = mix(a0, w[0]);
        a1 = mix(a1, w[1]);
        a2 = mix(a2, w[2]);
        a3 = mix(a3, w[3]);
    }
    uint64_t h = rotl64(a0, 1) + rotl64(a1, 7) + rotl64(a2, 12) + rotl64(a3, 18) + n;
    for (; i < n; i++)
        h = (h ^ p[i]) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P1;
    h ^= h >> 32;
    return h;
}

uint64_t bgr_wc_checksum(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = P1 ^ len, i = 0;
    for (size_t off = 0; off < len; off += WC_BLOCK, i++)
        h = mix(h, block_sum(p + off, len - off < WC_BLOCK ? len - off : WC_BLOCK, i));
    return h;
}

/* ---- key ----------------------------------------------------------------------- */

void bgr_wc_key_init(struct bgr_wc_key *key, uint32_t prec)
{
    const dnnl_version_t *v = dnnl_version();
    memset(key, 0, sizeof *key);
    key->prec = prec;
    key->isa = (uint32_t)dnnl_get_effective_cpu_isa();
    key->dnnl_ver[0] = (uint32_t)v->major;
    key->dnnl_ver[1] = (uint32_t)v->minor;
    key->dnnl_ver[2] = (uint32_t)v->patch;
}

int bgr_wc_key_stat(struct bgr_wc_key *key, const char *model_path, struct bgr_error *err)
{
    struct stat st;
    if (stat(model_path, &st))
        return bgr_error_set(err, BGR_EIO, "cannot stat %s: %s", model_path, strerror(errno));
    key->model_size = (uint64_t)st.st_size;
    key->st_dev = (uint64_t)st.st_dev;
    key->st_ino = (uint64_t)st.st_ino;
    key->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
    key->ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000u + (uint64_t)st.st_ctim.tv_nsec;
    return 0;
}

static int same_stat(const struct bgr_wc_key *a, const struct bgr_wc_key *b)
{
    return a->model_size == b->model_size && a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* ---- reading ------------------------------------------------------------------- */

int bgr_wc_open(const char *path, const struct bgr_wc_key *want, struct bgr_wcache **out,
                int *need_hash, struct bgr_error *err)
{
    struct bgr_wcache *wc = NULL;
    struct stat st;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    *need_hash = 0;
    if (fd < 0)
        return bgr_error_set(err, BGR_EIO, "no cache file (%s)", strerror(errno));
    if (fstat(fd, &st)) {
        rc = bgr_error_set(err, BGR_EIO, "cannot stat the cache: %s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = bgr_error_set(err, BGR_EMODEL, "the cache is not a regular file");
        goto out;
    }
    if ((uint64_t)st.st_size < WC_HDR_BYTES || (uint64_t)st.st_size > WC_MAX_BYTES) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache file of %lld bytes (truncated?)",
                           (long long)st.st_size);
        goto out;
    }
    wc = bgr_xcalloc(1, sizeof *wc);
    wc->map_len = (size_t)st.st_size;
    /* populated: the checksum reads every page, and so does the first run */
    wc->map = mmap(NULL, wc->map_len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (wc->map == MAP_FAILED) {
        wc->map = NULL;
        rc = bgr_error_set(err, BGR_EIO, "cannot map the cache: %s", strerror(errno));
        goto out;
    }
    struct wc_header *h = &wc->hdr;
    memcpy(h, wc->map, sizeof *h);
    const struct bgr_wc_key *k = &h->key;
    if (memcmp(h->magic, WC_MAGIC, sizeof h->magic) != 0 || h->format != WC_FORMAT ||
        h->hdr_bytes != WC_HDR_BYTES) {
        rc = bgr_error_set(err, BGR_EMODEL, "not a cache file of this format");
    } else if (h->hdr_sum != bgr_wc_checksum(h, offsetof(struct wc_header, hdr_sum))) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache header corrupt (checksum)");
    } else if (strncmp(h->engine, BGR_ENGINE_ID, sizeof h->engine) != 0) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache made by another engine build");
    } else if (memcmp(k->dnnl_ver, want->dnnl_ver, sizeof k->dnnl_ver) != 0) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache made with oneDNN %u.%u.%u", k->dnnl_ver[0],
                           k->dnnl_ver[1], k->dnnl_ver[2]);
    } else if (k->isa != want->isa || k->prec != want->prec) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache packed for another CPU ISA or precision");
    } else if (strncmp(k->calib_sha256, want->calib_sha256, sizeof k->calib_sha256) != 0) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache made with another int8 calibration");
    } else if (k->model_size != want->model_size) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache made for another model (size)");
    } else if (h->body_len != wc->map_len - WC_HDR_BYTES) {
        rc = bgr_error_set(err, BGR_EMODEL, "cache file truncated or extended");
    }
    if (rc)
        goto out;
    *need_hash = !same_stat(k, want);
    wc->pos = WC_HDR_BYTES;
    *out = wc;
    wc = NULL;
out:
    close(fd);
    bgr_wc_free(wc);
    return rc;
}

int bgr_wc_verify(const struct bgr_wcache *wc, struct bgr_error *err)
{
    BGR_ASSERT(!wc->writing);
    if (wc->hdr.body_sum != bgr_wc_checksum(wc->map + WC_HDR_BYTES, (size_t)wc->hdr.body_len))
        return bgr_error_set(err, BGR_EMODEL, "cache body corrupt (checksum)");
    return 0;
}

void bgr_wc_mem_hint(const struct bgr_wcache *wc, size_t *arena, size_t *scratch)
{
    *arena = (size_t)wc->hdr.arena_bytes;
    *scratch = (size_t)wc->hdr.scratch_bytes;
}

const char *bgr_wc_model_sha256(const struct bgr_wcache *wc)
{
    return wc->hdr.key.model_sha256;
}

size_t bgr_wc_bytes(const struct bgr_wcache *wc)
{
    return wc->map_len;
}

/* The next record's bytes if it has this tag (any length when len is
 * SIZE_MAX: *got receives it). */
static const uint8_t *next_rec(struct bgr_wcache *wc, uint32_t tag, size_t len, size_t *got)
{
    struct wc_rec r;
    if (wc->writing || wc->failed || wc->map_len - wc->pos < WC_REC_BYTES)
        goto fail;
    memcpy(&r, wc->map + wc->pos, sizeof r);
    size_t room = wc->map_len - wc->pos - WC_REC_BYTES;
    if (r.tag != tag || r.len > room || (len != SIZE_MAX && r.len != len))
        goto fail;
    const uint8_t *p = wc->map + wc->pos + WC_REC_BYTES;
    size_t padded = ((size_t)r.len + WC_REC_BYTES - 1) / WC_REC_BYTES * WC_REC_BYTES;
    wc->pos += WC_REC_BYTES + (padded < room ? padded : room);
    if (got)
        *got = (size_t)r.len;
    return p;
fail:
    wc->failed = 1;
    return NULL;
}

const void *bgr_wc_next(struct bgr_wcache *wc, enum bgr_wc_tag tag, size_t len)
{
    BGR_ASSERT(len != SIZE_MAX);
    return next_rec(wc, (uint32_t)tag, len, NULL);
}

/* ---- graph record ---------------------------------------------------------------- */

struct wbuf {
    uint8_t *p;
    size_t n, cap;
};

static void w_bytes(struct wbuf *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 4096;
        w->p = bgr_xrealloc(w->p, w->cap);
    }
    if (n)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void w_i32(struct wbuf *w, int64_t v)
{
    int32_t x = (int32_t)v;
    w_bytes(w, &x, sizeof x);
}

static void w_i64(struct wbuf *w, int64_t v)
{
    w_bytes(w, &v, sizeof v);
}

static void w_str(struct wbuf *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    w_i32(w, (int64_t)n);
    w_bytes(w, s, n);
}

struct rbuf {
    const uint8_t *p;
    size_t n, pos;
    int bad;
};

static const void *r_bytes(struct rbuf *r, size_t n)
{
    if (r->bad || r->n - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    const void *p = r->p + r->pos;
    r->pos += n;
    return p;
}

static int32_t r_i32(struct rbuf *r)
{
    int32_t x = 0;
    const void *p = r_bytes(r, sizeof x);
    if (p)
        memcpy(&x, p, sizeof x);
    return x;
}

static int64_t r_i64(struct rbuf *r)
{
    int64_t x = 0;
    const void *p = r_bytes(r, sizeof x);
    if (p)
        memcpy(&x, p, sizeof x);
    return x;
}

/* A malloc'd copy of the next string. */
static char *r_str(struct rbuf *r)
{
    int32_t n = r_i32(r);
    const char *p = n >= 0 && (uint32_t)n <= WC_MAX_STR ? r_bytes(r, (size_t)n) : NULL;
    if (!p) {
        r->bad = 1;
        return bgr_xstrdup("");
    }
    char *s = bgr_xmalloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static int in_order(const struct bgr_graph *g, int node)
{
    for (int k = 0; k < g->norder; k++)
        if (g->order[k] == node)
            return 1;
    return 0;
}

static void graph_write(struct wbuf *w, const struct bgr_graph *g)
{
    w_i32(w, g->nvals);
    w_i32(w, g->nnodes);
    w_i32(w, g->input);
    w_i32(w, g->output);
    w_i64(w, g->opset);
    w_i32(w, g->secondary);
    w_bytes(w, &g->macs, sizeof g->macs);
    w_i32(w, g->norder);
    for (int k = 0; k < g->norder; k++)
        w_i32(w, g->order[k]);
    for (int v = 0; v < g->nvals; v++) {
        const struct bgr_value *x = &g->vals[v];
        w_str(w, x->name);
        w_i32(w, x->kind);
        for (int i = 0; i < 4; i++)
            w_i64(w, x->dims[i]);
        w_i32(w, x->producer);
        w_i32(w, x->sec_node);
        w_i32(w, x->alias);
    }
    for (int i = 0; i < g->nnodes; i++) {
        const struct bgr_node *nd = &g->nodes[i];
        const struct bgr_conv_p *c = &nd->conv;
        const struct bgr_pool_p *q = &nd->pool;
        w_i32(w, nd->op);
        w_str(w, nd->name);
        w_str(w, nd->op_type);
        w_i32(w, nd->nin);
        for (int j = 0; j < nd->nin; j++)
            w_i32(w, nd->in[j]);
        w_i32(w, nd->out);
        w_i32(w, nd->needed);
        w_i32(w, nd->folded);
        w_i64(w, nd->axis);
        w_i64(w, nd->axis_end);
        w_i64(w, nd->to);
        w_i32(w, nd->n_ints);
        for (int j = 0; j < nd->n_ints; j++)
            w_i64(w, nd->ints[j]);
        const int64_t cv[] = {c->M,  c->C,  c->kh, c->kw, c->sh, c->sw,   c->dh,
                              c->dw, c->pt, c->pl, c->pb, c->pr, c->group};
        for (size_t j = 0; j < sizeof cv / sizeof cv[0]; j++)
            w_i64(w, cv[j]);
        w_i32(w, c->relu);
        w_i32(w, c->sum_in);
        /* biases of the convs that run (the backend copies them at build) */
        int has_b = nd->op == BGR_OP_CONV && c->b && in_order(g, i);
        w_i32(w, has_b);
        if (has_b) {
            static const uint8_t zero[4];
            w_bytes(w, zero, (4 - w->n % 4) % 4); /* the floats 4-byte aligned */
            w_bytes(w, c->b, (size_t)c->M * sizeof(float));
        }
        const int64_t pv[] = {q->kh, q->kw, q->sh, q->sw, q->pt, q->pl, q->pb, q->pr};
        for (size_t j = 0; j < sizeof pv / sizeof pv[0]; j++)
            w_i64(w, pv[j]);
        w_i32(w, q->ceil_mode);
        w_bytes(w, &nd->rs.scale_h, sizeof(float));
        w_bytes(w, &nd->rs.scale_w, sizeof(float));
    }
}

static int val_ok(const struct bgr_graph *g, int v, int allow_none)
{
    return (v >= 0 && v < g->nvals) || (allow_none && v == -1);
}

int bgr_wc_graph(struct bgr_wcache *wc, struct bgr_graph *g, struct bgr_error *err)
{
    size_t len = 0;
    const uint8_t *p = next_rec(wc, BGR_WC_GRAPH, SIZE_MAX, &len);
    struct rbuf r = {p, len, 0, !p};
    memset(g, 0, sizeof *g);
    int nvals = r_i32(&r), nnodes = r_i32(&r);
    if (r.bad || nvals < 1 || nvals > WC_MAX_VALS || nnodes < 0 || nnodes > WC_MAX_VALS)
        goto bad;
    g->input = r_i32(&r);
    g->output = r_i32(&r);
    g->opset = r_i64(&r);
    g->secondary = r_i32(&r);
    const void *mp = r_bytes(&r, sizeof g->macs);
    if (mp)
        memcpy(&g->macs, mp, sizeof g->macs);
    g->norder = r_i32(&r);
    if (r.bad || g->norder < 0 || g->norder > nnodes)
        goto bad;
    g->order = bgr_xmalloc(((size_t)g->norder + 1) * sizeof *g->order);
    for (int k = 0; k < g->norder; k++)
        if ((g->order[k] = r_i32(&r)) < 0 || g->order[k] >= nnodes)
            goto bad;
    for (int v = 0; v < nvals && !r.bad; v++) {
        char *name = r_str(&r);
        int id = bgr_graph_value_get(g, name);
        free(name);
        if (id != v) /* duplicate names: not a graph this engine wrote */
            goto bad;
        struct bgr_value *x = &g->vals[v];
        x->kind = (enum bgr_val_kind)r_i32(&r);
        for (int i = 0; i < 4; i++)
            x->dims[i] = r_i64(&r);
        x->producer = r_i32(&r);
        x->sec_node = r_i32(&r);
        x->alias = r_i32(&r);
        if (x->kind != BGR_VAL_UNKNOWN && x->kind != BGR_VAL_CONST && x->kind != BGR_VAL_ACT)
            goto bad;
        if (x->kind == BGR_VAL_ACT)
            for (int i = 0; i < 4; i++)
                if (x->dims[i] < 1 || x->dims[i] > BGR_MAX_ELEMS)
                    goto bad;
    }
    if (r.bad || !val_ok(g, g->input, 0) || !val_ok(g, g->output, 0) || !val_ok(g, g->secondary, 1))
        goto bad;
    for (int v = 0; v < nvals; v++)
        if (!val_ok(g, g->vals[v].alias, 1))
            goto bad;
    g->nodes = bgr_xcalloc(nnodes ? (size_t)nnodes : 1, sizeof *g->nodes);
    g->nnodes = nnodes;
    for (int i = 0; i < nnodes && !r.bad; i++) {
        struct bgr_node *nd = &g->nodes[i];
        struct bgr_conv_p *c = &nd->conv;
        struct bgr_pool_p *q = &nd->pool;
        nd->op = (enum bgr_opk)r_i32(&r);
        nd->name = r_str(&r);
        nd->op_type = r_str(&r);
        nd->nin = r_i32(&r);
        if ((unsigned)nd->op > BGR_OP__COUNT || nd->nin < 0 || nd->nin > BGR_MAX_INPUTS)
            goto bad;
        for (int j = 0; j < nd->nin; j++)
            if (!val_ok(g, nd->in[j] = r_i32(&r), 1))
                goto bad;
        nd->out = r_i32(&r);
        nd->needed = r_i32(&r);
        nd->folded = r_i32(&r);
        nd->axis = r_i64(&r);
        nd->axis_end = r_i64(&r);
        nd->to = r_i64(&r);
        nd->n_ints = r_i32(&r);
        if (!val_ok(g, nd->out, 0) || nd->n_ints < 0 || nd->n_ints > BGR_MAX_RANK)
            goto bad;
        for (int j = 0; j < nd->n_ints; j++)
            nd->ints[j] = r_i64(&r);
        int64_t *cv[] = {&c->M,  &c->C,  &c->kh, &c->kw, &c->sh, &c->sw,   &c->dh,
                         &c->dw, &c->pt, &c->pl, &c->pb, &c->pr, &c->group};
        for (size_t j = 0; j < sizeof cv / sizeof cv[0]; j++)
            *cv[j] = r_i64(&r);
        c->relu = r_i32(&r);
        c->sum_in = r_i32(&r);
        if (c->sum_in < 0 || c->sum_in >= (nd->nin > 0 ? nd->nin : 1))
            goto bad;
        if (r_i32(&r)) {
            if (c->M < 1 || c->M > BGR_MAX_ELEMS)
                goto bad;
            /* padded to 4-byte alignment (the record starts 64-byte aligned) */
            r_bytes(&r, (4 - r.pos % 4) % 4);
            c->b = r_bytes(&r, (size_t)c->M * sizeof(float));
        }
        int64_t *pv[] = {&q->kh, &q->kw, &q->sh, &q->sw, &q->pt, &q->pl, &q->pb, &q->pr};
        for (size_t j = 0; j < sizeof pv / sizeof pv[0]; j++)
            *pv[j] = r_i64(&r);
        q->ceil_mode = r_i32(&r);
        const void *sp = r_bytes(&r, 2 * sizeof(float));
        if (sp) {
            memcpy(&nd->rs.scale_h, sp, sizeof(float));
            memcpy(&nd->rs.scale_w, (const char *)sp + sizeof(float), sizeof(float));
        }
    }
    if (r.bad || r.pos != r.n)
        goto bad;
    for (int k = 0; k < g->norder; k++) /* executable steps only */
        if (g->nodes[g->order[k]].op > BGR_OP_ADD)
            goto bad;
    return 0;
bad:
    bgr_graph_release(g);
    wc->failed = 1;
    return bgr_error_set(err, BGR_EMODEL, "cache graph record malformed");
}

/* ---- writing ------------------------------------------------------------------- */

struct bgr_wcache *bgr_wc_writer_new(void)
{
    struct bgr_wcache *wc = bgr_xcalloc(1, sizeof *wc);
    wc->writing = 1;
    return wc;
}

int bgr_wc_writing(const struct bgr_wcache *wc)
{
    return wc->writing;
}

static void add_piece(struct bgr_wcache *wc, uint32_t tag, const void *data, size_t len, int copy)
{
    BGR_ASSERT(wc->writing);
    if (wc->npieces == wc->cap_pieces) {
        wc->cap_pieces = wc->cap_pieces ? 2 * wc->cap_pieces : 256;
        wc->pieces = bgr_xrealloc(wc->pieces, (size_t)wc->cap_pieces * sizeof *wc->pieces);
    }
    struct wc_piece *pc = &wc->pieces[wc->npieces++];
    pc->tag = tag;
    pc->len = len;
    pc->owned = NULL;
    if (copy) {
        pc->owned = bgr_xmalloc(len ? len : 1);
        memcpy(pc->owned, data, len);
        data = pc->owned;
    }
    pc->data = data;
}

void bgr_wc_put(struct bgr_wcache *wc, enum bgr_wc_tag tag, const void *data, size_t len, int copy)
{
    add_piece(wc, (uint32_t)tag, data, len, copy);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int write_rec(int fd, uint32_t tag, const void *data, size_t len)
{
    static const uint8_t zero[WC_REC_BYTES];
    struct wc_rec r;
    memset(&r, 0, sizeof r);
    r.tag = tag;
    r.len = len;
    size_t pad = (WC_REC_BYTES - len % WC_REC_BYTES) % WC_REC_BYTES;
    return write_all(fd, &r, sizeof r) || write_all(fd, data, len) || write_all(fd, zero, pad);
}

/* Removes the temporary files of path (path.tmp.XXXXXX) that a writer
 * killed mid-way left behind: each is as large as the cache. Only those
 * untouched for WC_STALE_SEC, so that a writer still at work (seconds) keeps
 * its own. Failures are ignored: this is housekeeping. */
#define WC_STALE_SEC 600
static void remove_stale_tmps(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) : 0;
    char dir[4096], prefix[1024], full[8192];
    struct dirent *de;
    time_t now = time(NULL);
    if (dlen + 1 >= sizeof dir ||
        (size_t)snprintf(prefix, sizeof prefix, "%s.tmp.", base) >= sizeof prefix)
        return;
    if (!slash) {
        memcpy(dir, ".", 2);
    } else if (dlen == 0) {
        memcpy(dir, "/", 2);
    } else {
        memcpy(dir, path, dlen);
        dir[dlen] = '\0';
    }
    DIR *d = opendir(dir);
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 ||
            strlen(de->d_name) != strlen(prefix) + 6 || /* mkostemp's XXXXXX */
            (size_t)snprintf(full, sizeof full, "%s/%s", dir, de->d_name) >= sizeof full ||
            lstat(full, &st) != 0 || !S_ISREG(st.st_mode) || now - st.st_mtime < WC_STALE_SEC)
            continue;
        (void)unlink(full);
    }
    (void)closedir(d);
}

/* Keeps the WC_KEEP most recently written caches of other engine builds
 * next to path and removes older ones. Cache names end in
 * ".ENGINE.wcache" (8 hex digits of the engine id, bgr_model_cache_path),
 * so that builds sharing a model directory (worktrees, an upgrade next to
 * the old version) keep one file each instead of rewriting one another's;
 * without pruning every engine change would leave a file as large as the
 * model behind. A removed file stays valid for a process that maps it. */
#define WC_KEEP 3
#define WC_SCAN_MAX 64 /* siblings looked at (more only by hand) */
struct wc_sibling {
    char name[256];
    time_t mtime;
};

static int newer_first(const void *a, const void *b)
{
    time_t x = ((const struct wc_sibling *)a)->mtime, y = ((const struct wc_sibling *)b)->mtime;
    return x > y ? -1 : x < y;
}

static void prune_other_builds(const char *path)
{
    static const char ext[] = ".wcache";
    size_t n = strlen(path), e = sizeof ext - 1;
    const char *slash = strrchr(path, '/');
    char dir[4096], full[8192];
    struct wc_sibling *sib = NULL;
    int nsib = 0;
    /* family: the name up to and with the '.' before the engine's 8 digits */
    if (!slash || n < e + 9 || strcmp(path + n - e, ext) != 0 || path[n - e - 9] != '.' ||
        slash > path + n - e - 9 || (size_t)(slash - path) + 1 >= sizeof dir)
        return;
    const char *base = slash + 1;
    size_t flen = (size_t)(path + n - e - 8 - base); /* "medium.bf16.ISA." */
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if (!dir[0])
        memcpy(dir, "/", 2);
    DIR *d = opendir(dir);
    if (!d)
        return;
    sib = bgr_xmalloc(WC_SCAN_MAX * sizeof *sib);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && nsib < WC_SCAN_MAX) {
        struct stat st;
        size_t dl = strlen(de->d_name);
        if (dl != flen + 8 + e || dl >= sizeof sib[0].name ||
            strncmp(de->d_name, base, flen) != 0 || strcmp(de->d_name + flen + 8, ext) != 0 ||
            strcmp(de->d_name, base) == 0 ||
            (size_t)snprintf(full, sizeof full, "%s/%s", dir, de->d_name) >= sizeof full ||
            lstat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        memcpy(sib[nsib].name, de->d_name, dl + 1);
        sib[nsib++].mtime = st.st_mtime;
    }
    (void)closedir(d);
    qsort(sib, (size_t)nsib, sizeof *sib, newer_first);
    for (int i = WC_KEEP; i < nsib; i++)
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, sib[i].name) < sizeof full)
            (void)unlink(full);
    free(sib);
}

/* Creates the temporary file next to path (name in tmp) with a zeroed
 * header page; the caller writes the body. */
static int tmp_open(const char *path, char *tmp, size_t cap, int *fd, struct bgr_error *err)
{
    static const uint8_t zero[WC_HDR_BYTES];
    remove_stale_tmps(path);
    if ((size_t)snprintf(tmp, cap, "%s.tmp.XXXXXX", path) >= cap)
        return bgr_error_set(err, BGR_EIO, "path too long: %s", path);
    if ((*fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return bgr_error_set(err, BGR_EIO, "cannot create %s: %s", tmp, strerror(errno));
    /* the header goes last, once the body's checksum is known: a crash
     * before that leaves a temporary file that fails every check */
    if (write_all(*fd, zero, WC_HDR_BYTES)) {
        int rc = bgr_error_set(err, BGR_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(*fd);
        unlink(tmp);
        return rc;
    }
    return 0;
}

/* Checksums the body written to fd (read back through a mapping), writes
 * the header, syncs, closes fd and renames tmp to path; unlinks tmp on
 * failure. */
static int tmp_finish(int fd, const char *tmp, const struct bgr_wc_key *key, uint64_t arena,
                      uint64_t scratch, const char *path, struct bgr_error *err)
{
    struct wc_header h;
    uint8_t *page = bgr_xcalloc(1, WC_HDR_BYTES);
    void *map = MAP_FAILED;
    int rc = 0;
    off_t len = lseek(fd, 0, SEEK_END);
    if (len < (off_t)WC_HDR_BYTES)
        goto io;
    map = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        goto io;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, WC_MAGIC, sizeof h.magic);
    h.format = WC_FORMAT;
    h.hdr_bytes = WC_HDR_BYTES;
    (void)snprintf(h.engine, sizeof h.engine, "%s", BGR_ENGINE_ID); /* 64 hex digits */
    h.key = *key;
    h.arena_bytes = arena;
    h.scratch_bytes = scratch;
    h.body_len = (uint64_t)len - WC_HDR_BYTES;
    h.body_sum = bgr_wc_checksum((const uint8_t *)map + WC_HDR_BYTES, (size_t)h.body_len);
    h.hdr_sum = bgr_wc_checksum(&h, offsetof(struct wc_header, hdr_sum));
    memcpy(page, &h, sizeof h);
    if (pwrite(fd, page, WC_HDR_BYTES, 0) != (ssize_t)WC_HDR_BYTES || fsync(fd) || fchmod(fd, 0644))
        goto io;
    munmap(map, (size_t)len);
    map = MAP_FAILED;
    int cr = close(fd);
    fd = -1;
    if (cr)
        goto io;
    if (rename(tmp, path)) {
        rc = bgr_error_set(err, BGR_EIO, "cannot rename to %s: %s", path, strerror(errno));
        unlink(tmp);
    } else {
        prune_other_builds(path);
    }
    goto out;
io:
    rc = bgr_error_set(err, BGR_EIO, "cannot write %s: %s", tmp, strerror(errno));
    unlink(tmp);
out:
    if (map != MAP_FAILED)
        munmap(map, (size_t)len);
    if (fd >= 0)
        close(fd);
    free(page);
    return rc;
}

int bgr_wc_commit(struct bgr_wcache *wc, const struct bgr_graph *g, const struct bgr_wc_key *key,
                  size_t arena, size_t scratch, const char *path, struct bgr_error *err)
{
    char tmp[4096];
    struct wbuf gw = {0};
    int rc, fd;
    BGR_ASSERT(wc->writing);
    if ((rc = tmp_open(path, tmp, sizeof tmp, &fd, err)))
        return rc;
    graph_write(&gw, g);
    int bad = write_rec(fd, BGR_WC_GRAPH, gw.p, gw.n);
    for (int i = 0; i < wc->npieces && !bad; i++)
        bad = write_rec(fd, wc->pieces[i].tag, wc->pieces[i].data, wc->pieces[i].len);
    free(gw.p);
    if (bad) {
        rc = bgr_error_set(err, BGR_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return rc;
    }
    return tmp_finish(fd, tmp, key, arena, scratch, path, err);
}

int bgr_wc_restamp(const struct bgr_wcache *wc, const struct bgr_wc_key *key, const char *path,
                   struct bgr_error *err)
{
    char tmp[4096];
    int rc, fd;
    BGR_ASSERT(!wc->writing);
    if ((rc = tmp_open(path, tmp, sizeof tmp, &fd, err)))
        return rc;
    if (write_all(fd, wc->map + WC_HDR_BYTES, wc->map_len - WC_HDR_BYTES)) {
        rc = bgr_error_set(err, BGR_EIO, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return rc;
    }
    return tmp_finish(fd, tmp, key, wc->hdr.arena_bytes, wc->hdr.scratch_bytes, path, err);
}

void bgr_wc_free(struct bgr_wcache *wc)
{
    if (!wc)
        return;
    if (wc->map)
        munmap(wc->map, wc->map_len);
    for (int i = 0; i < wc->npieces; i++)
        free(wc->pieces[i].owned);
    free(wc->pieces);
    free(wc);
}
