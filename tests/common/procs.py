"""procs - a group of bgremover processes on loopback, for the multi-process
tests (API nodes and inference workers sharing one store). Python 3 standard
library only.

    with ProcGroup(BIN, common_args=["--store", url, "--results", results]) as g:
        a = g.api("a")                       # bgremover serve --workers 0
        b = g.api("b")
        w1 = g.worker("w1", ["-j", "1"])      # bgremover worker --listen 127.0.0.1:0
        g.start_all()                         # and wait for every /readyz
        a.get("/readyz").status
        w1.kill9(); w1.restart()
        print(g.logs()["w1"])

Generic: each process is an argument list; the group adds only what the
constructor and api()/worker() say: `--listen 127.0.0.1:0` (the process
prints "... (port N)" as its first line of standard output, as `serve` does,
and that is how its port is learnt), `--workers 0` for API nodes, and a
data directory of its own per process (`--data-dir`, local scratch: each
process stands for a machine of its own), then common_args, then the
process's own args.

Every process's stderr (and stdout after the port line) goes to a log file
of its own (logs(), and dump_logs() for a failure message); restarts append
to it. Nothing outlives the group: stop_all() at close(), at the end of the
`with` block and at interpreter exit, and each process is started under
`setpriv --pdeathsig KILL`, so that a kill -9 of the test process takes its
processes along (the kernel's parent-death signal follows the thread that
started the process: call start()/restart() from the main thread).
"""
import atexit
import http.client
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

PORT_LINE = re.compile(r"\(port (\d+)\)")


def clean_env(extra=None):
    """The environment of a started process: ours without BGR_* settings (a
    stray BGR_STORE or BGR_WORKERS must not change a test), except
    BGR_MODEL_DIR, and without libpq's PG* settings; plus extra."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("BGR_") or k.startswith("PG")) or k == "BGR_MODEL_DIR"}
    env.update(extra or {})
    return env


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


class Proc:
    """One process of a ProcGroup. argv[0] is the binary."""

    def __init__(self, name, argv, env, log_path, listens):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.listens = listens  # prints its port on stdout, answers /readyz
        self.proc = None
        self.port = None
        self.starts = 0
        self._log = None
        self._drain = None

    # -- lifecycle ------------------------------------------------------------
    def start(self, wait=True, timeout=120, port=None):
        """Starts the process; with port, on that port instead of the argv's
        (restart(same_port=True)). Learns its port; with wait, waits for /readyz."""
        assert self.proc is None, "%s is running" % self.name
        argv = list(self.argv)
        if port is not None:
            argv = [re.sub(r"^127\.0\.0\.1:0$", "127.0.0.1:%d" % port, a) for a in argv]
        pre = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        self._log = open(self.log_path, "ab")
        self.starts += 1
        self._log.write(b"=== procs: start %d of %s: %s\n" % (
            self.starts, self.name.encode(), " ".join(argv).encode()))
        self._log.flush()
        self.proc = subprocess.Popen(pre + argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if self.listens else self._log,
                                     stderr=self._log, env=self.env)
        if self.listens:
            line = self.proc.stdout.readline().decode("utf-8", "replace")
            m = PORT_LINE.search(line)
            if not m:
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                self._close_files()
                self.proc = None
                raise RuntimeError("%s did not start (first line %r):\n%s" % (
                    self.name, line, self.read_log()[-4000:]))
            self.port = int(m.group(1))
            # Later standard output, if any, goes to the log (a full pipe would block it).
            out, log = self.proc.stdout, self._log
            self._drain = threading.Thread(target=_copy, args=(out, log), daemon=True)
            self._drain.start()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=120):
        """Until /readyz answers 200 (a process that listens) or, for one that
        does not, until it has run for a moment without exiting."""
        t0 = time.time()
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %d:\n%s" % (self.name, self.proc.returncode,
                                                               self.read_log()[-4000:]))
            if not self.listens:
                if time.time() - t0 >= 0.5:
                    return self
            else:
                try:
                    if self.get("/readyz", timeout=5).status == 200:
                        return self
                except OSError:
                    pass
            if time.time() > deadline:
                raise RuntimeError("%s not ready in %s s:\n%s" % (self.name, timeout,
                                                                  self.read_log()[-4000:]))
            time.sleep(0.2)

    def stop(self, timeout=30):
        """SIGTERM, then SIGKILL after timeout; returns the exit status (None
        if it was not running)."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
            self._close_files()
            self.proc = None
        return rc

    def kill9(self):
        """SIGKILL, as a crash or a lost machine would."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self._close_files()
            self.proc = None

    def restart(self, wait=True, timeout=120, same_port=False):
        """Stops it if it runs (SIGTERM) and starts it again with the same
        arguments, on a new port or (same_port) the one it had."""
        port = self.port if same_port and self.listens else None
        self.stop()
        return self.start(wait=wait, timeout=timeout, port=port)

    def _close_files(self):
        if self.proc is not None and self.proc.stdout is not None:
            if self._drain is not None:
                self._drain.join(5)
            self.proc.stdout.close()
        self._drain = None
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- HTTP -------------------------------------------------------------------
    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=None, headers=None, timeout=120):
        assert self.port, "%s does not listen" % self.name
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=dict(headers or {}))
            r = c.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            c.close()

    def get(self, path, headers=None, timeout=120):
        return self.request("GET", path, headers=headers, timeout=timeout)


def _copy(src, dst):
    try:
        for chunk in iter(lambda: src.read1(65536), b""):
            dst.write(chunk)
            dst.flush()
    except (OSError, ValueError):
        pass  # closed under us at stop


class ProcGroup:
    """Processes started together, stopped together; see the module doc."""

    def __init__(self, bin_path, common_args=(), env=None, base_dir=None):
        self.bin = os.path.abspath(bin_path)
        self.common_args = list(common_args)
        self.env = dict(env or {})
        self.own_dir = base_dir is None
        self.dir = base_dir or tempfile.mkdtemp(prefix="bgr-procs-")
        self.procs = {}
        self._closed = False
        atexit.register(self.close)

    def add(self, name, argv, env=None, listens=True):
        """A process from a full argument list (argv[0]: the binary)."""
        assert name not in self.procs, name
        assert re.match(r"^[A-Za-z0-9_.-]+$", name), name
        p = Proc(name, argv, clean_env(dict(self.env, **(env or {}))),
                 os.path.join(self.dir, name + ".log"), listens)
        self.procs[name] = p
        return p

    def data_dir(self, name):
        d = os.path.join(self.dir, name, "data")
        os.makedirs(d, exist_ok=True)
        return d

    def api(self, name, args=(), env=None, workers=0):
        """`bgremover serve` on 127.0.0.1 (a free port); workers=0: an API-only
        node (None: no --workers flag)."""
        argv = [self.bin, "serve", "--listen", "127.0.0.1:0"]
        if workers is not None:
            argv += ["--workers", str(workers)]
        argv += ["--data-dir", self.data_dir(name)] + self.common_args + list(args)
        return self.add(name, argv, env, listens=True)

    def worker(self, name, args=(), env=None, listen=True):
        """`bgremover worker`; listen: with `--listen 127.0.0.1:0` (health and
        /metrics, and how the group knows it is ready)."""
        argv = [self.bin, "worker"]
        if listen:
            argv += ["--listen", "127.0.0.1:0"]
        argv += ["--data-dir", self.data_dir(name)] + self.common_args + list(args)
        return self.add(name, argv, env, listens=listen)

    def __getitem__(self, name):
        return self.procs[name]

    def start_all(self, wait=True, timeout=180):
        """Starts every process not running (in the calling thread, in order),
        then waits until all are ready."""
        started = [p.start(wait=False) for p in self.procs.values() if p.proc is None]
        if wait:
            deadline = time.time() + timeout
            for p in started:
                p.wait_ready(max(1, deadline - time.time()))
        return self

    def stop_all(self, timeout=30):
        """SIGTERM to all at once, then waits (SIGKILL past timeout)."""
        running = [p for p in self.procs.values() if p.alive]
        for p in running:
            p.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + timeout
        for p in running:
            try:
                p.proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs.values():
            p.stop(timeout=1)

    def logs(self):
        """{name: its whole log}."""
        return {n: p.read_log() for n, p in self.procs.items()}

    def dump_logs(self, tail=3000):
        """The end of every log, for a failure message."""
        return "\n".join("--- %s (%s) ---\n%s" % (n, "running" if p.alive else "stopped",
                                                   p.read_log()[-tail:])
                         for n, p in self.procs.items())

    def close(self):
        if self._closed:
            return
        self._closed = True
        self.stop_all()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
