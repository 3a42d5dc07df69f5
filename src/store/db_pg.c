/*
 * db_pg.c - the PostgreSQL engine behind db.h, over libpq.
 *
 * A statement is its SQL with SQLite's `?`/`?N` placeholders rewritten to
 * `$N` once, at prepare; it runs with PQexecParams at its first step (text
 * results; blobs go as binary parameters and come back as bytea's hex
 * text) and then steps through the result's rows. Parameter types are
 * sent for numbers and blobs (int8, float8, bytea) and left to the server
 * to infer for text, which is what lets the same SQL compare a text
 * parameter with a text column and an integer one with a bigint column.
 *
 * Write transactions take advisory locks, held until COMMIT/ROLLBACK:
 * a global one exclusively (the same guarantee SQLite's write lock gives),
 * or, for the per-request writes that concern one account, the global one
 * shared plus one per account. So two accounts' requests never wait for
 * each other, while an account's read-then-write (the daily limit) stays
 * exact across every API node.
 */
#include "store/db.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 32
#define MAX_BLOBS 4 /* decoded bytea columns kept per row */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_FLOAT8 701
/* Advisory lock keys: the global write lock (a bigint key) and the class
 * of per-account locks (the first of two int4 keys). */
#define LOCK_GLOBAL 0x62677231LL /* "bgr1" */
#define LOCK_ACCOUNT_CLASS 0x62677232

struct pg_db {
    struct bgr_db base;
    PGconn *c;
    unsigned generation; /* of the session: a reconnect drops server-side statements */
    unsigned next_name;
    int64_t changes;
    bool lost;
    char err[512];
};

struct pg_stmt {
    struct bgr_db_stmt base;
    char *sql; /* with $N placeholders */
    int nparams;
    bool keep;     /* prepare on the server (bgr_db_keep) */
    bool prepared; /* ...done, in session generation: */
    unsigned generation;
    char name[24];
    const char *vals[MAX_PARAMS];
    int lens[MAX_PARAMS], fmts[MAX_PARAMS];
    Oid types[MAX_PARAMS];
    char nums[MAX_PARAMS][32]; /* text of bound numbers */
    PGresult *res;
    bool executed;
    int row, nrows;
    struct {
        int col;
        unsigned char *p;
        size_t n;
    } blobs[MAX_BLOBS];
    int n_blobs;
};

static struct pg_db *D(struct bgr_db *db)
{
    return (struct pg_db *)db;
}
static struct pg_stmt *S(struct bgr_db_stmt *st)
{
    return (struct pg_stmt *)st;
}

bool bgr_db_is_pg_url(const char *url)
{
    return url && (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0);
}

/* Records why the last call failed; notices whether the server is gone. */
static void fail(struct pg_db *d, const PGresult *res)
{
    const char *m = res ? PQresultErrorMessage(res) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    size_t n;
    if (!m || !*m)
        m = PQerrorMessage(d->c);
    (void)snprintf(d->err, sizeof(d->err), "%s", m && *m ? m : "unknown PostgreSQL error");
    n = strlen(d->err);
    while (n && (d->err[n - 1] == '\n' || d->err[n - 1] == ' '))
        d->err[--n] = 0;
    /* Class 08: connection exceptions; 57P01-03: the server shutting down
     * or starting up. Either way the statement was fine. */
    d->lost = PQstatus(d->c) == CONNECTION_BAD ||
              (state && (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
                         strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0));
}

/* Rewrites ? and ?N to $N outside quotes, as SQLite numbers them: a bare
 * ? is one more than the largest index so far. */
static char *translate(const char *sql, int *nparams)
{
    size_t len = strlen(sql);
    char *out = bgr_xmalloc(len * 4 + 1), *o = out;
    int max = 0;
    char quote = 0;
    for (const char *p = sql; *p;) {
        if (quote) {
            if (*p == quote)
                quote = 0;
            *o++ = *p++;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
            *o++ = *p++;
        } else if (*p == '?') {
            int n = 0;
            p++;
            if (*p >= '0' && *p <= '9') {
                while (*p >= '0' && *p <= '9')
                    n = n * 10 + (*p++ - '0');
            } else {
                n = max + 1;
            }
            if (n > max)
                max = n;
            /* the buffer has 4 bytes for each of the SQL's bytes: "$NNN"
             * for a "?" (a bigger index fails at prepare: MAX_PARAMS) */
            o += snprintf(o, (size_t)(out + len * 4 + 1 - o), "$%d", n > 999 ? 999 : n);
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    *nparams = max;
    return out;
}

static int pg_prepare(struct bgr_db *db, const char *sql, struct bgr_db_stmt **out)
{
    struct pg_stmt *st;
    int n = 0;
    char *t = translate(sql, &n);
    *out = NULL;
    if (n > MAX_PARAMS) {
        (void)snprintf(D(db)->err, sizeof(D(db)->err), "statement has %d parameters (max %d)", n,
                       MAX_PARAMS);
        free(t);
        return -1;
    }
    st = bgr_xcalloc(1, sizeof(*st));
    st->base.db = db;
    st->sql = t;
    st->nparams = n;
    *out = &st->base;
    return 0;
}

static void drop_blobs(struct pg_stmt *st)
{
    for (int i = 0; i < st->n_blobs; i++)
        free(st->blobs[i].p);
    st->n_blobs = 0;
}

static void pg_reset(struct bgr_db_stmt *bst)
{
    struct pg_stmt *st = S(bst);
    drop_blobs(st);
    PQclear(st->res);
    st->res = NULL;
    st->executed = false;
    st->row = st->nrows = 0;
    memset(st->vals, 0, sizeof(st->vals));
    memset(st->lens, 0, sizeof(st->lens));
    memset(st->fmts, 0, sizeof(st->fmts));
    memset(st->types, 0, sizeof(st->types));
}

static void pg_finalize(struct bgr_db_stmt *bst)
{
    pg_reset(bst);
    free(S(bst)->sql);
    free(bst);
}

static bool slot(const struct pg_stmt *st, int i)
{
    return i >= 1 && i <= st->nparams && i <= MAX_PARAMS;
}

static void pg_bind_text(struct bgr_db_stmt *bst, int i, const char *v)
{
    struct pg_stmt *st = S(bst);
    if (!slot(st, i))
        return; /* as SQLite: a parameter the SQL lacks is ignored */
    st->vals[i - 1] = v;
    st->fmts[i - 1] = 0;
    st->types[i - 1] = 0; /* the server infers it from the context */
}
static void pg_bind_int64(struct bgr_db_stmt *bst, int i, int64_t v)
{
    struct pg_stmt *st = S(bst);
    if (!slot(st, i))
        return; /* as SQLite: a parameter the SQL lacks is ignored */
    (void)snprintf(st->nums[i - 1], sizeof(st->nums[0]), "%lld", (long long)v);
    st->vals[i - 1] = st->nums[i - 1];
    st->fmts[i - 1] = 0;
    st->types[i - 1] = OID_INT8;
}
static void pg_bind_double(struct bgr_db_stmt *bst, int i, double v)
{
    struct pg_stmt *st = S(bst);
    if (!slot(st, i))
        return; /* as SQLite: a parameter the SQL lacks is ignored */
    (void)snprintf(st->nums[i - 1], sizeof(st->nums[0]), "%.17g", v);
    st->vals[i - 1] = st->nums[i - 1];
    st->fmts[i - 1] = 0;
    st->types[i - 1] = OID_FLOAT8;
}
static void pg_bind_blob(struct bgr_db_stmt *bst, int i, const void *v, size_t n)
{
    struct pg_stmt *st = S(bst);
    BGR_ASSERT(n <= (size_t)INT32_MAX);
    if (!slot(st, i))
        return; /* as SQLite: a parameter the SQL lacks is ignored */
    st->vals[i - 1] = v ? v : "";
    st->lens[i - 1] = (int)n;
    st->fmts[i - 1] = 1;
    st->types[i - 1] = OID_BYTEA;
}

static int pg_step(struct bgr_db_stmt *bst)
{
    struct pg_stmt *st = S(bst);
    struct pg_db *d = D(bst->db);
    drop_blobs(st);
    if (!st->executed && st->keep && (!st->prepared || st->generation != d->generation)) {
        PGresult *p;
        (void)snprintf(st->name, sizeof(st->name), "bgr%u", ++d->next_name);
        p = PQprepare(d->c, st->name, st->sql, st->nparams, st->types);
        if (PQresultStatus(p) != PGRES_COMMAND_OK) {
            fail(d, p);
            PQclear(p);
            return -1;
        }
        PQclear(p);
        st->prepared = true;
        st->generation = d->generation;
    }
    if (!st->executed) {
        st->res = st->prepared
                      ? PQexecPrepared(d->c, st->name, st->nparams, st->vals, st->lens, st->fmts, 0)
                      : PQexecParams(d->c, st->sql, st->nparams, st->types, st->vals, st->lens,
                                     st->fmts, 0);
        st->executed = true;
        st->row = -1;
        switch (PQresultStatus(st->res)) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
            st->nrows = PQntuples(st->res);
            d->changes = strtoll(PQcmdTuples(st->res), NULL, 10);
            d->lost = false;
            break;
        default:
            fail(d, st->res);
            st->nrows = 0;
            return -1;
        }
    }
    if (st->row < st->nrows)
        st->row++;
    return st->row < st->nrows ? BGR_DB_ROW : BGR_DB_DONE;
}

static bool has_value(struct pg_stmt *st, int i)
{
    return st->res && st->row >= 0 && st->row < st->nrows && i >= 0 && i < PQnfields(st->res) &&
           !PQgetisnull(st->res, st->row, i);
}

static const char *pg_col_text(struct bgr_db_stmt *bst, int i)
{
    struct pg_stmt *st = S(bst);
    return has_value(st, i) ? PQgetvalue(st->res, st->row, i) : NULL;
}

static int64_t pg_col_int64(struct bgr_db_stmt *bst, int i)
{
    const char *v = pg_col_text(bst, i);
    if (!v)
        return 0;
    if (v[0] == 't' && !v[1]) /* booleans: as SQLite's comparisons give 1/0 */
        return 1;
    if (v[0] == 'f' && !v[1])
        return 0;
    if (strpbrk(v, ".eE")) /* numeric or float: truncated, as SQLite does */
        return (int64_t)strtod(v, NULL);
    return strtoll(v, NULL, 10);
}

static double pg_col_double(struct bgr_db_stmt *bst, int i)
{
    const char *v = pg_col_text(bst, i);
    return v ? strtod(v, NULL) : 0.0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* bytea in text format: "\x" and two hex digits per byte (the default
 * bytea_output since PostgreSQL 9.0). Decoded once per row and column. */
static const void *pg_col_blob(struct bgr_db_stmt *bst, int i, size_t *n)
{
    struct pg_stmt *st = S(bst);
    const char *v = pg_col_text(bst, i);
    size_t len, k;
    unsigned char *p;
    *n = 0;
    if (!v)
        return NULL;
    for (int b = 0; b < st->n_blobs; b++) {
        if (st->blobs[b].col == i) {
            *n = st->blobs[b].n;
            return st->blobs[b].p;
        }
    }
    BGR_ASSERT(st->n_blobs < MAX_BLOBS);
    if (v[0] != '\\' || v[1] != 'x')
        return NULL; /* not bytea (a text column read as a blob): nothing */
    len = strlen(v + 2) / 2;
    p = bgr_xmalloc(len + 1);
    for (k = 0; k < len; k++) {
        int hi = hexval(v[2 + 2 * k]), lo = hexval(v[3 + 2 * k]);
        if (hi < 0 || lo < 0)
            break;
        p[k] = (unsigned char)(hi << 4 | lo);
    }
    st->blobs[st->n_blobs].col = i;
    st->blobs[st->n_blobs].p = p;
    st->blobs[st->n_blobs].n = k;
    st->n_blobs++;
    *n = k;
    return p;
}

static int pg_exec(struct bgr_db *db, const char *sql)
{
    struct pg_db *d = D(db);
    PGresult *res = PQexec(d->c, sql);
    ExecStatusType s = PQresultStatus(res);
    int rc = 0;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        d->changes = strtoll(PQcmdTuples(res), NULL, 10);
        d->lost = false;
    } else {
        fail(d, res);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

static int pg_begin_write(struct bgr_db *db, const char *account_id)
{
    struct pg_db *d = D(db);
    char sql[160];
    PGresult *res;
    int rc;
    if (!account_id) {
        (void)snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%lld)", LOCK_GLOBAL);
        return pg_exec(db, sql);
    }
    if (!account_id[0]) { /* shared: one round trip */
        (void)snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock_shared(%lld)",
                       LOCK_GLOBAL);
        return pg_exec(db, sql);
    }
    rc = pg_exec(db, "BEGIN");
    if (rc)
        return rc;
    (void)snprintf(sql, sizeof(sql),
                   "SELECT pg_advisory_xact_lock_shared(%lld),"
                   " pg_advisory_xact_lock(%d, hashtext($1))",
                   LOCK_GLOBAL, LOCK_ACCOUNT_CLASS);
    res = PQexecParams(d->c, sql, 1, NULL, &account_id, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fail(d, res);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

static int64_t pg_changes(struct bgr_db *db)
{
    return D(db)->changes;
}
static bool pg_in_txn(struct bgr_db *db)
{
    PGTransactionStatusType t = PQtransactionStatus(D(db)->c);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}
static const char *pg_errmsg(struct bgr_db *db)
{
    return D(db)->err;
}
static bool pg_unavailable(struct bgr_db *db)
{
    return D(db)->lost || PQstatus(D(db)->c) == CONNECTION_BAD;
}

static int pg_reconnect(struct bgr_db *db)
{
    struct pg_db *d = D(db);
    if (PQstatus(d->c) == CONNECTION_OK && !d->lost)
        return 0;
    PQreset(d->c);
    d->generation++;
    if (PQstatus(d->c) != CONNECTION_OK) {
        fail(d, NULL);
        d->lost = true;
        return -1;
    }
    d->lost = false;
    return 0;
}

static void pg_close(struct bgr_db *db)
{
    PQfinish(D(db)->c);
    free(db);
}

static void pg_keep(struct bgr_db_stmt *st)
{
    S(st)->keep = true;
}

static const struct bgr_db_ops pg_ops = {
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_blob = pg_bind_blob,
    .step = pg_step,
    .col_text = pg_col_text,
    .col_int64 = pg_col_int64,
    .col_double = pg_col_double,
    .col_blob = pg_col_blob,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .exec = pg_exec,
    .begin_write = pg_begin_write,
    .changes = pg_changes,
    .in_txn = pg_in_txn,
    .errmsg = pg_errmsg,
    .unavailable = pg_unavailable,
    .reconnect = pg_reconnect,
    .close = pg_close,
    .keep = pg_keep,
};

/* NOTICEs ("relation already exists, skipping") are not for the log. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int bgr_db_pg_open(const char *url, struct bgr_db **out, char *msg, size_t msg_len)
{
    /* Keywords before dbname are defaults the URL's own parameters
     * override (expand_dbname): a dead server must not hang a start-up or
     * a reconnect for the OS's TCP timeout. */
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"5", "bgremover", url, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    *out = NULL;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        const char *m = c ? PQerrorMessage(c) : "out of memory";
        size_t n;
        (void)snprintf(msg, msg_len, "%s", m);
        n = strlen(msg);
        while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = 0;
        PQfinish(c);
        return -1;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    struct pg_db *d = bgr_xcalloc(1, sizeof(*d));
    d->base.ops = &pg_ops;
    d->base.kind = BGR_DB_PG;
    d->c = c;
    *out = &d->base;
    return 0;
}

int bgr_db_pg_listen(struct bgr_db *db, const char *channel)
{
    char sql[96];
    BGR_ASSERT(db->kind == BGR_DB_PG &&
               strspn(channel, "abcdefghijklmnopqrstuvwxyz_") == strlen(channel));
    (void)snprintf(sql, sizeof(sql), "LISTEN %s", channel);
    return pg_exec(db, sql);
}

int bgr_db_pg_wait(struct bgr_db *db, int timeout_ms, char *payload, size_t n)
{
    struct pg_db *d = D(db);
    PGnotify *nt;
    struct pollfd pfd;
    int sock;
    if (PQconsumeInput(d->c) == 0) {
        fail(d, NULL);
        d->lost = true;
        return -1;
    }
    nt = PQnotifies(d->c);
    if (!nt) {
        sock = PQsocket(d->c);
        if (sock < 0) {
            d->lost = true;
            return -1;
        }
        pfd.fd = sock;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return 0;
        if (PQconsumeInput(d->c) == 0) {
            fail(d, NULL);
            d->lost = true;
            return -1;
        }
        nt = PQnotifies(d->c);
        if (!nt)
            return 0;
    }
    (void)snprintf(payload, n, "%s", nt->extra ? nt->extra : "");
    PQfreemem(nt);
    return 1;
}
