"""pgserver - a throw-away PostgreSQL 15 cluster for the tests (Python 3 standard library only).

    with PgServer() as pg:
        pg.create_db("bgr_1")
        url = pg.url("bgr_1")          # postgresql://bgr@127.0.0.1:PORT/bgr_1
        rows = pg.psql("SELECT 1", "bgr_1")

What it does: `initdb` into a fresh temporary directory (trust authentication,
which initdb's -A trust gives to the unix socket and to loopback only), then
`pg_ctl start` with the server listening on 127.0.0.1 only, on a free port,
and on a unix socket inside that temporary directory (mode 0700). The
binaries are Debian's postgresql-15 ones (/usr/lib/postgresql/15/bin), else
whatever initdb/pg_ctl/postgres/psql are on PATH; `available()` says whether
they are there (callers skip with exit 77 when not).

PostgreSQL refuses to run as root, and CI runs as root: then initdb, pg_ctl
and the postmaster run as an unprivileged user ($BGR_PG_USER, else `nobody`;
where there is no `nobody`, a system user `bgrtest` is created with useradd)
through setpriv (or runuser), and the temporary directory is given to that
user. PG* variables of the caller's environment (PGHOST, PGOPTIONS, ...) are
not passed to the PostgreSQL tools. The client side (psql, and bgremover itself) runs as the caller.

It stops by itself: stop() at close(), at interpreter exit (atexit) and at
the end of the `with` block. And since none of those run when the test
process is killed with SIGKILL, a watchdog guards the cluster: a small
process, detached from the caller (a grandchild in a session of its own, so
that killing the runner's children or process group does not take it
along), that blocks reading a pipe whose only write end the caller holds.
When the caller dies, however it dies, the kernel closes that end; the
watchdog then stops the postmaster (`pg_ctl stop -m immediate`) and removes
the temporary directory.

Speed over durability, for tests only: fsync, synchronous_commit and
full_page_writes are off (a crash of the machine would lose the cluster,
which is thrown away anyway); a kill -9 of bgremover is unaffected, since
the PostgreSQL server itself keeps running.
"""
import atexit
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PG_BIN_DIRS = ["/usr/lib/postgresql/15/bin"]
TOOLS = ("initdb", "pg_ctl", "postgres", "psql", "pg_dump")
SUPERUSER = "bgr"  # the cluster's superuser (initdb -U); trust auth, no password


def find_bin_dir():
    """The directory holding initdb, pg_ctl, postgres and psql, or None."""
    env = os.environ.get("BGR_PG_BIN")
    for d in ([env] if env else []) + PG_BIN_DIRS:
        if all(os.access(os.path.join(d, t), os.X_OK) for t in TOOLS):
            return d
    found = [shutil.which(t) for t in TOOLS]
    if all(found):
        # PATH entries may be links into the real directory (e.g. /usr/local/bin/initdb
        # -> /usr/lib/postgresql/15/bin/initdb): use initdb's real directory when it
        # holds the others, so that the versions match.
        real = os.path.dirname(os.path.realpath(found[0]))
        if all(os.access(os.path.join(real, t), os.X_OK) for t in TOOLS):
            return real
        return os.path.dirname(found[0])
    return None


def available():
    return find_bin_dir() is not None


def _env():
    """The caller's environment without PG* settings, which would redirect
    or reconfigure the tools (PGHOST, PGPORT, PGDATA, PGOPTIONS, ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _unprivileged_user(name=None):
    """The passwd entry PostgreSQL runs as under root."""
    name = name or os.environ.get("BGR_PG_USER")
    if name:
        return pwd.getpwnam(name)
    for n in ("nobody", "bgrtest"):
        try:
            return pwd.getpwnam(n)
        except KeyError:
            pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "bgrtest"], check=True, capture_output=True, timeout=60)
    return pwd.getpwnam("bgrtest")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _traversable_by_others(path):
    """Whether every directory above path lets others through (o+x)."""
    p = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(p).st_mode & 0o001:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


# The watchdog, run as `python3 -c WATCHDOG rfd pid_file tmp_dir pg_ctl data_dir [as_user...]`.
# It double-forks first (the caller reaps the first fork at once), so it is
# nobody's child but init's, in a session of its own.
WATCHDOG = r"""
import os, shutil, signal, subprocess, sys, time
rfd = int(sys.argv[1]); pid_file, tmp, pg_ctl, data = sys.argv[2:6]; as_user = sys.argv[6:]
if os.fork():
    os._exit(0)
os.setsid()
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
devnull = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(devnull, fd)
while True:
    try:
        if not os.read(rfd, 4096):
            break
    except InterruptedError:
        continue
    except OSError:
        break
if os.path.exists(pid_file):
    try:
        subprocess.run(as_user + [pg_ctl, "stop", "-D", data, "-m", "immediate", "-w", "-t", "20"],
                       cwd=tmp, timeout=30, stdin=devnull, stdout=devnull, stderr=devnull)
    except Exception:
        pass
    # If pg_ctl could not do it: SIGQUIT is PostgreSQL's immediate shutdown.
    try:
        with open(pid_file) as f:
            pid = int(f.readline())
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    except Exception:
        pass
shutil.rmtree(tmp, ignore_errors=True)
"""


class PgError(RuntimeError):
    pass


class PgServer:
    """One PostgreSQL cluster in a temporary directory; see the module doc."""

    def __init__(self, max_connections=300, user=None, start=True):
        self.bin_dir = find_bin_dir()
        if not self.bin_dir:
            raise PgError("PostgreSQL binaries not found (Debian: apt-get install postgresql-15)")
        self.max_connections = max_connections
        self.host = "127.0.0.1"
        self.port = None
        self._run_as = []
        self._os_user = None
        if os.geteuid() == 0:
            pw = _unprivileged_user(user)
            self._os_user = pw.pw_name
            if shutil.which("setpriv"):
                self._run_as = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                                "--clear-groups", "--"]
            else:
                self._run_as = ["runuser", "-u", self._os_user, "--"]
        self.tmp = tempfile.mkdtemp(prefix="bgr-pg-")
        if self._os_user and not _traversable_by_others(self.tmp):
            # $TMPDIR inside a directory the unprivileged user cannot enter.
            os.rmdir(self.tmp)
            self.tmp = tempfile.mkdtemp(prefix="bgr-pg-", dir="/tmp")
        self.data_dir = os.path.join(self.tmp, "data")
        self.socket_dir = os.path.join(self.tmp, "sock")
        self.log_path = os.path.join(self.tmp, "postgres.log")
        os.mkdir(self.socket_dir, 0o700)
        if self._os_user:
            pw = pwd.getpwnam(self._os_user)
            for p in (self.tmp, self.socket_dir):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._lock = threading.Lock()
        self._running = False
        self._closed = False
        self._watch_w = None
        self._start_watchdog()
        atexit.register(self.close)
        try:
            self._initdb()
            if start:
                self.start()
        except BaseException:
            self.close()
            raise

    # -- lifecycle ------------------------------------------------------------
    def _tool(self, name):
        return os.path.join(self.bin_dir, name)

    def _as_owner(self, argv, timeout=120, check=True):
        p = subprocess.run(self._run_as + argv, cwd=self.tmp, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, env=_env())
        if check and p.returncode != 0:
            raise PgError("%s failed (%d): %s%s\n%s" % (
                " ".join(argv[:2]), p.returncode, p.stdout, p.stderr, self.read_log()[-3000:]))
        return p

    def _start_watchdog(self):
        r, w = os.pipe()  # both ends non-inheritable: no other child holds w
        try:
            p = subprocess.Popen(
                [sys.executable, "-c", WATCHDOG, str(r), os.path.join(self.data_dir, "postmaster.pid"),
                 self.tmp, self._tool("pg_ctl"), self.data_dir] + self._run_as,
                pass_fds=(r,), stdin=subprocess.DEVNULL, start_new_session=True, env=_env())
            p.wait(30)  # the first fork; the watchdog itself lives on
        finally:
            os.close(r)
        self._watch_w = w

    def _initdb(self):
        self._as_owner([self._tool("initdb"), "-D", self.data_dir, "-U", SUPERUSER, "-A", "trust",
                        "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"])
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write("\n# bgremover tests (tests/common/pgserver.py)\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = '%s'\n"
                    "max_connections = %d\n"
                    "# Tests only: speed over crash safety (the cluster is thrown away).\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "shared_buffers = 64MB\n"
                    "log_min_messages = warning\nlog_connections = off\n" % (
                        self.socket_dir, self.max_connections))

    def start(self, timeout=60):
        """Starts the postmaster (again, after stop(): same port, same data)."""
        with self._lock:
            if self._running:
                return self
            tries = 1 if self.port else 5
            for i in range(tries):
                port = self.port or _free_port()
                p = self._as_owner([self._tool("pg_ctl"), "start", "-D", self.data_dir, "-l",
                                    self.log_path, "-w", "-t", str(timeout), "-o", "-p %d" % port],
                                   timeout=timeout + 30, check=False)
                if p.returncode == 0:
                    self.port = port
                    self._running = True
                    return self
                if i + 1 == tries:
                    raise PgError("pg_ctl start failed (%d): %s%s\n%s" % (
                        p.returncode, p.stdout, p.stderr, self.read_log()[-3000:]))
            return self

    def stop(self, mode="fast"):
        """Stops the postmaster; the data stay, start() brings it back."""
        with self._lock:
            if not self._running:
                return
            self._as_owner([self._tool("pg_ctl"), "stop", "-D", self.data_dir, "-m", mode, "-w",
                            "-t", "60"], timeout=90, check=False)
            self._running = False

    def close(self):
        """Stops the cluster for good and removes its directory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._running = self._running or os.path.exists(
                os.path.join(self.data_dir, "postmaster.pid"))
            self.stop("fast")
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if self._watch_w is not None:
                os.close(self._watch_w)  # the watchdog wakes, finds nothing left, exits
                self._watch_w = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def running(self):
        return self._running

    def postmaster_pid(self):
        """The postmaster's pid while it runs, else None."""
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- databases ------------------------------------------------------------
    def url(self, dbname="postgres", socket=False):
        """A libpq connection URI for dbname: over TCP to 127.0.0.1, or with
        socket=True over the unix socket (for a process in another network
        namespace, which cannot reach this loopback)."""
        if socket:
            return "postgresql://%s@/%s?host=%s&port=%d" % (SUPERUSER, dbname, self.socket_dir,
                                                            self.port)
        return "postgresql://%s@%s:%d/%s" % (SUPERUSER, self.host, self.port, dbname)

    def psql(self, sql, db="postgres", timeout=60):
        """Runs sql with psql (-At, stops at the first error); returns the rows of
        its last statement as lists of strings (NULL is '')."""
        p = subprocess.run(
            [self._tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-R",
             "\x1e", "-h", self.socket_dir, "-p", str(self.port), "-U", SUPERUSER, "-d", db],
            input=sql, capture_output=True, text=True, timeout=timeout, env=_env())
        if p.returncode != 0:
            raise PgError("psql on %s failed (%d): %s\nSQL: %s" % (db, p.returncode,
                                                                  p.stderr.strip(), sql[:500]))
        out = p.stdout.rstrip("\n")
        return [r.split("\x1f") for r in out.split("\x1e") if r != ""] if out else []

    def query(self, sql, db="postgres"):
        """Runs one SELECT; returns its rows as tuples of JSON-typed values
        (numbers, strings, booleans, None). Column names must be distinct."""
        rows = self.psql("SELECT coalesce(json_agg(row_to_json(q)), '[]') FROM (%s) q" %
                         sql.strip().rstrip(";"), db)
        return [tuple(r.values()) for r in json.loads(rows[0][0])]

    def create_db(self, name, template="template0"):
        self.psql('CREATE DATABASE "%s" TEMPLATE %s' % (name, template))
        return self.url(name)

    def drop_db(self, name):
        """Drops name, even while clients are still connected to it."""
        self.psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)

    def dump(self, db):
        """Everything in db as pg_dump's plain SQL text (bytes)."""
        p = subprocess.run([self._tool("pg_dump"), "-h", self.socket_dir, "-p", str(self.port),
                            "-U", SUPERUSER, db], capture_output=True, timeout=120, env=_env())
        if p.returncode != 0:
            raise PgError("pg_dump %s failed: %s" % (db, p.stderr.decode("utf-8", "replace")))
        return p.stdout

    def databases(self):
        return [r[0] for r in self.psql("SELECT datname FROM pg_database WHERE NOT datistemplate "
                                        "AND datname <> 'postgres' ORDER BY 1")]


def literal(v):
    """v as an SQL literal (for the tests' few parameters: psql takes none)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (bytes, bytearray)):
        return "'\\x%s'::bytea" % bytes(v).hex()
    return "'%s'" % str(v).replace("'", "''")


def bind(sql, params):
    """sql with each `?` replaced by the next parameter as a literal."""
    parts = sql.split("?")
    if len(parts) - 1 != len(params):
        raise ValueError("%d placeholders, %d parameters" % (len(parts) - 1, len(params)))
    out = [parts[0]]
    for v, rest in zip(params, parts[1:]):
        out += [literal(v), rest]
    return "".join(out)


if __name__ == "__main__":
    # A cluster for manual use: prints its URL and runs until Ctrl-C.
    if not available():
        sys.exit("PostgreSQL binaries not found")
    with PgServer() as pg:
        print(pg.url("postgres"), flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
