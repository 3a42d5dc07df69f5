#!/usr/bin/env python3
"""Self-test of tests/common/procs.py with today's `bgremover serve` (exit 0 =
pass, 1 = fail, 77 = skipped: no binary given or found).

    procs_selftest.py [--bin build/bgremover]

Two API nodes (each with its own data directory, so this runs on SQLite as
well) and a process that does not listen start and become ready; kill -9,
restart on a new port and on the same port; logs collected; nothing left
running after close(), nor after the owning process is killed with SIGKILL.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import procs  # noqa: E402

FAILS = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        FAILS.append(what)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return not any(alive(p) for p in pids)


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def group_test(bin_path):
    # workers=1: today's serve refuses --workers 0 (the API-only node of issue 12).
    with procs.ProcGroup(bin_path, common_args=["--set", "log_level=info"]) as g:
        a = g.api("a", workers=1)
        b = g.api("b", ["--set", "plan.free.per_minute=7"], workers=1)
        s = g.add("sleeper", ["sleep", "600"], listens=False)
        g.start_all()
        check(a.port and b.port and a.port != b.port, "two nodes on ports %s, %s" % (a.port, b.port))
        check(a.get("/readyz").status == 200 and b.get("/readyz").status == 200, "both ready")
        check(s.alive, "the non-listening process runs")
        check(g.procs["a"] is a and g["b"] is b, "by name")
        check(a.env.get("BGR_STORE") is None, "no stray BGR_* in the environment")
        check(any("--data-dir" == x for x in a.argv) and
              a.argv[a.argv.index("--data-dir") + 1] != b.argv[b.argv.index("--data-dir") + 1],
              "a data directory per process")
        pid, port = a.pid, a.port
        a.kill9()
        check(not alive(pid) and not a.alive, "kill9: gone")
        check(refused(port), "kill9: its port is closed")
        check(b.get("/healthz").status == 200, "the other node still serves")
        a.restart()
        check(a.alive and a.get("/readyz").status == 200, "restarted (port %d -> %d)" % (port, a.port))
        port = a.port
        a.restart(same_port=True)
        check(a.port == port and a.get("/readyz").status == 200, "restarted on the same port")
        logs = g.logs()
        check(sorted(logs) == ["a", "b", "sleeper"], "a log per process")
        check(logs["a"].count("=== procs: start") == 3, "restarts append to the log")
        check("--workers 1" in logs["b"], "the log names the argv")
        check("--- b (running) ---" in g.dump_logs(), "dump_logs")
        pids = [a.pid, b.pid, s.pid]
        d = g.dir
    check(wait_gone(pids), "all stopped after the with block")
    check(not os.path.exists(d), "the group's directory removed")

    # A process that exits at once is reported with its log.
    with procs.ProcGroup(bin_path) as g:
        bad = g.api("bad", ["--set", "workers=zero"], workers=None)
        try:
            g.start_all(timeout=30)
            check(False, "a failing start raises")
        except RuntimeError as e:
            check("did not start" in str(e) and "workers" in str(e), "a failing start raises "
                  "with its log: %s" % str(e).splitlines()[0][:80])
        check(not bad.alive, "and is not left running")


CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import procs
g = procs.ProcGroup(sys.argv[2])
a = g.api("a", workers=1)
s = g.add("sleeper", ["sleep", "600"], listens=False)
g.start_all()
print(a.pid, s.pid, flush=True)
time.sleep(600)
"""


def kill9_test(bin_path):
    p = subprocess.Popen([sys.executable, "-c", CHILD, HERE, bin_path], stdout=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline().split()
    check(len(line) == 2, "child started its group: %r" % line)
    if len(line) == 2:
        pids = [int(x) for x in line]
        p.send_signal(signal.SIGKILL)
        p.wait()
        check(wait_gone(pids), "its processes died with it (parent-death signal)")
    else:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("BGR_BIN", "build/bgremover"))
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        print("skipped: no binary at %s" % args.bin)
        return 77
    t0 = time.time()
    group_test(args.bin)
    kill9_test(args.bin)
    print("procs self-test: %d failed, %.1f s" % (len(FAILS), time.time() - t0))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
