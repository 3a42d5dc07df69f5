"""bgrtest - helpers of the black-box API tests (Python 3 standard library only).

A Server is the real `bgremover serve` on 127.0.0.1 with a free port (the
server binds port 0 and prints the port it got) and a temporary data
directory; accounts and keys are made with the admin commands, exactly as an
operator would. Listener is a local HTTP server that records webhooks;
FileServer serves test images for image_url. Nothing here knows the
server's internals.

The store: SQLite in the data directory by default. With BGR_TEST_STORE=pg
(run.py --store pg) the runner starts one throw-away PostgreSQL cluster
(tests/common/pgserver.py, set as PG here) and every Server gets a fresh
database of its own (bgr_<n>), passed as `--store URL` to serve and to every
admin command; the data directory stays (local scratch, results). Tests
that are about SQLite itself are marked with sqlite_only(reason).
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import sys
import time
import unittest
import uuid

BIN = os.environ.get("BGR_BIN", "build/bgremover")
SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def photo(name):
    with open(os.path.join(SKIMAGE, name + ".png"), "rb") as f:
        return f.read()


def rss_kib(pid):
    """Resident memory of a process, from /proc (KiB)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return w, h, data[25]  # colour type: 6 = RGBA, 2 = RGB, 0 = grey


# -- the store under test -------------------------------------------------------
STORE = os.environ.get("BGR_TEST_STORE") or "sqlite"  # "sqlite" or "pg"
PG = None  # the pgserver.PgServer of a PostgreSQL run (run.py starts it)
_DB_SEQ = [0]
_DB_LOCK = threading.Lock()


def on_pg():
    return STORE == "pg"


def sqlite_only(reason):
    """Marks a test (or class) that is about SQLite itself: skipped on PostgreSQL."""
    return unittest.skipIf(on_pg(), "SQLite only: " + reason)


def start_pg():
    """Starts the run's PostgreSQL cluster (once); returns it."""
    global PG
    if PG is None:
        sys.path.insert(0, os.path.join(REPO, "tests", "common"))
        import pgserver
        PG = pgserver.PgServer()
    return PG


def new_store_db():
    """On PostgreSQL: a fresh, empty database bgr_<n>; returns its name (None on SQLite)."""
    if not on_pg():
        return None
    pg = start_pg()
    with _DB_LOCK:
        _DB_SEQ[0] += 1
        name = "bgr_%d" % _DB_SEQ[0]
    pg.create_db(name)
    return name


def store_url(db, socket=False):
    """The --store URL of database db (None: SQLite, no flag)."""
    return PG.url(db, socket=socket) if db else None


def store_argv(url):
    return ["--store", url] if url else []


def fresh_store_argv():
    """--store with a new empty database on PostgreSQL, [] on SQLite: for a
    one-off `serve` with a fresh data directory."""
    return store_argv(store_url(new_store_db()))


def child_env(extra=None):
    """The environment of a bgremover the tests start: ours without BGR_*
    settings (a developer's BGR_STORE or BGR_WORKERS must not change a test)
    except BGR_MODEL_DIR, and without libpq's PG* settings; plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("BGR_") or k.startswith("PG")) or k == "BGR_MODEL_DIR"}
    env.update(extra or {})
    return env


def run_admin(args, data_dir, store=None):
    """Runs an admin command on data_dir (and the --store URL store, if any);
    returns stdout lines (raises on failure)."""
    p = subprocess.run([BIN] + args + ["--data-dir", data_dir] + store_argv(store),
                       capture_output=True, text=True, timeout=60, env=child_env())
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return [l for l in p.stdout.splitlines() if l.strip()]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get()
        self.body = body
        self._json = None

    def json(self):
        if self._json is None:
            self._json = json.loads(self.body.decode("utf-8"))
        return self._json

    @property
    def data(self):
        return self.json()["data"]

    @property
    def code(self):
        return self.json()["error"]["code"]

    @property
    def message(self):
        return self.json()["error"]["message"]

    def header(self, name):
        return self.headers.get(name)


def multipart(fields, files=None, boundary=None):
    """fields: list of (name, str); files: list of (name, filename, bytes, ctype)."""
    boundary = boundary or "----bgrtest" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" %
                    (boundary, name)).encode() + value.encode() + b"\r\n")
    for name, filename, data, ctype in files or []:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (boundary, name, filename, ctype)).encode() +
                   data + b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


class Server:
    """One `bgremover serve` process with its own data directory."""

    def __init__(self, name, args=(), env=None, config=None, data_dir=None, tls=None,
                 store_from=None):
        """store_from: another Server whose store this one shares (on PostgreSQL
        its database: a second node; on SQLite the store is the data directory,
        so share that with data_dir instead)."""
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="bgr-api-%s-" % name)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.args = list(args)
        self.env = dict(env or {})
        self.config = config
        self.tls = tls  # (cert, key) paths
        self.prefix = []  # argv before BIN, e.g. ["ip", "netns", "exec", NS] (test_ssrf)
        self.proc = None
        self.port = None
        self.log_path = os.path.join(self.tmp, "server.log")
        # On PostgreSQL: its own database, dropped by cleanup(), or the one of
        # store_from. store_socket: reach it over the unix socket (a server run
        # in another network namespace cannot reach the host's loopback).
        self.store_socket = False
        if store_from is not None:
            self.store_db, self.own_store = store_from.store_db, False
        else:
            self.store_db, self.own_store = new_store_db(), True

    @property
    def store(self):
        """The --store URL this server and its admin commands get (None: SQLite)."""
        return store_url(self.store_db, self.store_socket)

    # -- process ------------------------------------------------------------
    def start(self, wait_ready=True):
        argv = self.prefix + [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                              self.data_dir] + store_argv(self.store) + self.args
        if self.config is not None:
            path = os.path.join(self.tmp, "bgremover.conf")
            with open(path, "w") as f:
                f.write(self.config)
            argv += ["--config", path]
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        env = child_env(self.env)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, env=env)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"\(port (\d+)\)", line)
        if not m:
            self.proc.wait(10)
            raise RuntimeError("server %s did not start: %r\n%s" % (self.name, line, self.read_log()))
        self.port = int(m.group(1))
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.get("/readyz").status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("server %s exited: %s" % (self.name, self.read_log()))
            time.sleep(0.2)
        raise RuntimeError("server %s not ready in %ss" % (self.name, timeout))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
            self.log.close()
        self.proc = None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.store_db and self.own_store and PG is not None and PG.running:
            PG.drop_db(self.store_db)
            self.store_db = None

    def store_dump(self):
        """On PostgreSQL, all of this server's database as pg_dump text (bytes);
        None on SQLite, whose store is a file in the data directory."""
        return PG.dump(self.store_db) if self.store_db else None

    def query(self, sql, params=()):
        """Rows (tuples) of a read-only SELECT on this server's store, with `?`
        placeholders: the SQLite file opened read-only, or the PostgreSQL
        database through psql. For what the API does not show (outbox,
        usage rows); the tables and columns are the same on both."""
        if self.store_db:
            import pgserver
            return PG.query(pgserver.bind(sql, tuple(params)), self.store_db)
        import sqlite3
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.data_dir, "bgremover.db"),
                             uri=True, timeout=10)
        try:
            return [tuple(r) for r in db.execute(sql, tuple(params))]
        finally:
            db.close()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- admin ----------------------------------------------------------------
    def admin(self, *args):
        return run_admin(list(args), self.data_dir, self.store)

    def admin_argv(self, *args):
        """The argv of an admin command on this server's data (for subprocess)."""
        return [BIN] + list(args) + ["--data-dir", self.data_dir] + store_argv(self.store)

    def new_account(self, plan="pro", email=None):
        """Creates an account and a key; returns (account_id, key)."""
        email = email or "t-%s@example.com" % uuid.uuid4().hex[:8]
        acct = self.admin("accounts", "create", "--email", email, "--plan", plan)[-1].split()[0]
        key = self.admin("keys", "create", "--account", acct)[-1].strip()
        return acct, key

    def webhook_secret(self, acct):
        return self.admin("accounts", "webhook-secret", acct)[-1].strip()

    # -- HTTP -------------------------------------------------------------------
    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)

    def conn(self, timeout=120):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            ctx.check_hostname = False
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, key=None, ctype=None):
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if ctype:
            h["Content-Type"] = ctype
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def remove_file(self, key, data, fields=(), filename="photo.png", ctype="image/png"):
        body, ct = multipart(list(fields), [("image_file", filename, data, ctype)])
        return self.request("POST", "/v1/remove", body=body, key=key, ctype=ct)

    def fetch_url(self, url):
        """GETs an absolute URL the server gave out (output_url, poll_url)."""
        m = re.match(r"https?://[^/]+(/.*)$", url)
        assert m, url
        return self.get(m.group(1))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class _Recorder(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        srv = self.server.owner
        with srv.lock:
            srv.attempts += 1
            fail = srv.attempts <= srv.fail_first
            if not fail:
                srv.received.append({"path": self.path, "headers": dict(self.headers.items()),
                                     "body": body})
            srv.cond.notify_all()
        self.send_response(500 if fail else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        srv = self.server.owner
        with srv.lock:
            srv.gets += 1
        data = srv.files.get(self.path.split("?")[0])
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Listener:
    """A local HTTP server: records POSTs (webhooks), serves GETs from files."""

    def __init__(self, files=None, fail_first=0, port=0):
        self.files = dict(files or {})
        self.received = []
        self.attempts = 0
        self.gets = 0
        self.fail_first = fail_first
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Recorder)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait_for(self, pred, timeout=60):
        deadline = time.time() + timeout
        with self.lock:
            while True:
                hits = [r for r in self.received if pred(r)]
                if hits:
                    return hits
                left = deadline - time.time()
                if left <= 0:
                    return []
                self.cond.wait(left)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def check_signature(testcase, rec, secret):
    """Asserts that a recorded webhook is signed as docs/API.md says."""
    ts = rec["headers"].get("X-Bgr-Timestamp")
    sig = rec["headers"].get("X-Bgr-Signature")
    testcase.assertTrue(ts and sig, "signature headers missing: %r" % rec["headers"])
    testcase.assertTrue(rec["headers"].get("X-Bgr-Event-Id", "").startswith("evt_"))
    want = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + rec["body"],
                            hashlib.sha256).hexdigest()
    testcase.assertTrue(hmac.compare_digest(sig, want), "bad signature %s" % sig)
    testcase.assertLess(abs(int(ts) - time.time()), 300)


def make_cert(directory):
    """A self-signed certificate for 127.0.0.1/localhost with openssl."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def png_bomb(width=10000, height=10000):
    """A small, valid PNG whose header claims width x height (grey, all zero)."""
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    comp = b"".join(raw.compress(row) for _ in range(height)) + raw.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", comp) + chunk(b"IEND", b"")
