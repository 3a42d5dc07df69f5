/*
 * results.h - the public header of src/results: where result files live.
 * The one owner of every result object: writing one, opening one to serve,
 * deleting one, and listing them for the orphan sweep. Nothing else in the
 * tree builds a result path or talks to the object store.
 *
 * Two backends, chosen by the location string given to bgr_results_open:
 *   - a directory ("/var/lib/bgremover/results", or a shared mount):
 *     <dir>/<key>, written as temp file + fsync + rename + fsync of the
 *     directory, so a reader never sees a partial file;
 *   - "s3://BUCKET[/PREFIX]": objects BUCKET/PREFIX/<key> on any
 *     S3-compatible store, path-style, signed with AWS Signature V4 by
 *     libcurl (CURLOPT_AWS_SIGV4). An S3 PUT is atomic by itself.
 *
 * Keys are the result names "<id>.<ext>" (bgr_results_key_make): letters,
 * digits, '_' and '-', one dot, an extension of letters and digits. Every
 * function refuses anything else, so a corrupt database row can never make
 * us write, read or delete outside the results location.
 *
 * What it does not do: decide what is expired or orphaned (the store keeps
 * those rules; the jobs' sweeper applies them), retries (a failed delete is
 * retried by the sweeper), caching.
 *
 * Errors: BGR_ENOT_FOUND (no such object), BGR_EIO (the store failed, is
 * unreachable or refused our credentials; the message says which and never
 * contains a secret), BGR_EFILE_TOO_LARGE (over the caller's cap),
 * BGR_EINVALID_PARAMETER (a bad key), BGR_EUSAGE (a bad location or missing
 * settings at open).
 *
 * Thread-safety: every function may be called from any thread between
 * bgr_results_open and bgr_results_close.
 */
#ifndef BGR_RESULTS_RESULTS_H
#define BGR_RESULTS_RESULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define BGR_RESULTS_KEY_MAX 80 /* with the NUL */

struct bgr_results;

/* Settings of bgr_results_open. Strings are borrowed for the call only. */
struct bgr_results_opts {
    /* Where an S3 download is spooled before it is served (an unlinked
     * file, so memory stays flat whatever the result size); NULL =
     * $TMPDIR, else /tmp. */
    const char *spool_dir;
    long connect_timeout_ms; /* S3: 0 = 5000 */
    long timeout_ms;         /* S3: one whole request; 0 = 120000 */
    /* S3 settings; NULL = the conventional environment variable:
     * BGR_S3_ENDPOINT (default https://s3.<region>.amazonaws.com),
     * AWS_REGION (then AWS_DEFAULT_REGION; default us-east-1), AWS_ACCESS_KEY_ID,
     * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional). */
    const char *endpoint;
    const char *region;
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
};
void bgr_results_opts_init(struct bgr_results_opts *o); /* all defaults */

/* Opens the results location: a directory path (created if missing) or
 * "s3://BUCKET[/PREFIX]". Makes no request to an S3 store (see
 * bgr_results_check). On success the caller owns *out
 * (bgr_results_close). Errors: BGR_EUSAGE (malformed location, S3 without
 * credentials), BGR_EIO (directory cannot be created). */
int bgr_results_open(const char *location, const struct bgr_results_opts *o,
                     struct bgr_results **out, struct bgr_error *err);
void bgr_results_close(struct bgr_results *r); /* accepts NULL */

/* The location as given to open, safe to log (no credentials). */
const char *bgr_results_location(const struct bgr_results *r);

/* Checks that the location is usable now: the directory is writable, or
 * the S3 store answers a listing of our prefix with our credentials.
 * Errors: BGR_EIO with a message for the operator. */
int bgr_results_check(struct bgr_results *r, struct bgr_error *err);

/* false when the last request to the store failed for a reason other than
 * a missing object (unreachable, refused credentials, I/O error); true
 * again after the next success. Never waits on the network, so /readyz may
 * call it on an event-loop thread: a directory that failed is checked
 * again here (one access(2) call); an S3 store only when someone calls
 * bgr_results_check (the jobs' sweeper does, every round, while it fails). */
bool bgr_results_healthy(struct bgr_results *r);

/* ---- keys ----------------------------------------------------------------- */
/* out = "<id>.<ext>". Errors: BGR_EINVALID_PARAMETER when that is not a
 * valid key. */
int bgr_results_key_make(const char *id, const char *ext, char out[BGR_RESULTS_KEY_MAX],
                         struct bgr_error *err);
bool bgr_results_key_valid(const char *key);
/* Copies the id part of a valid key ("img_abc.png" -> "img_abc"); false if
 * key is not valid or id does not fit n bytes. */
bool bgr_results_key_id(const char *key, char *id, size_t n);

/* ---- objects -------------------------------------------------------------- */
/* Stores data under key, replacing any object there; atomic for readers.
 * content_type may be NULL. */
int bgr_results_put(struct bgr_results *r, const char *key, const void *data, size_t len,
                    const char *content_type, struct bgr_error *err);

/* An object opened for serving: a readable fd positioned anywhere (serve it
 * with pread/sendfile from offset 0) and its size. The caller owns fd. */
struct bgr_results_obj {
    int fd;
    uint64_t size;
};
/* Opens key for serving: the file itself for a directory (zero-copy), an
 * unlinked spool file holding the downloaded object for S3. Objects over
 * max_bytes (0 = no cap) are BGR_EFILE_TOO_LARGE. */
int bgr_results_open_obj(struct bgr_results *r, const char *key, uint64_t max_bytes,
                         struct bgr_results_obj *out, struct bgr_error *err);
/* Reads key into *out (initialised here; the caller releases it), at most
 * max_bytes (0 = no cap). */
int bgr_results_read(struct bgr_results *r, const char *key, size_t max_bytes, struct bgr_buf *out,
                     struct bgr_error *err);
/* Removes key. Idempotent: a missing object is success. */
int bgr_results_delete(struct bgr_results *r, const char *key, struct bgr_error *err);

/* Called once per object; a non-zero return stops the listing (and is
 * returned by bgr_results_list). mtime_ms: last modification, UNIX ms. */
typedef int (*bgr_results_list_fn)(void *ctx, const char *key, int64_t mtime_ms);
/* Lists the objects under the location that are at least min_age_ms old at
 * now_ms, in no particular order, streaming (S3: 1000 keys a page).
 * Names that are not keys are not reported; the directory backend removes
 * its own temporary files of interrupted writes once they are that old.
 * Objects may be deleted from the callback. */
int bgr_results_list(struct bgr_results *r, int64_t now_ms, int64_t min_age_ms,
                     bgr_results_list_fn fn, void *ctx, struct bgr_error *err);

#endif
