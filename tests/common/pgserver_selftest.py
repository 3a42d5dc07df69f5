#!/usr/bin/env python3
"""Self-test of tests/common/pgserver.py: exit 0 = pass, 1 = fail, 77 = skipped
(no PostgreSQL binaries).

A cluster starts as the unprivileged user when run as root, listens on
127.0.0.1 only, creates and drops databases, answers queries, survives a
stop/start on the same port with its data, and leaves nothing behind: not
after close(), and not after its owner is killed with SIGKILL (the watchdog).
"""
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pgserver  # noqa: E402

FAILS = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        FAILS.append(what)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not running
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and alive(pid):
        time.sleep(0.1)
    return not alive(pid)


def connectable(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def mentioning(text, timeout=20):
    """Live processes whose command line holds text (the watchdog's holds the
    cluster's directory), after waiting up to timeout for them to end."""
    deadline = time.time() + timeout
    while True:
        found = []
        for pid in os.listdir("/proc"):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if text.encode() in f.read() and alive(int(pid)):
                        found.append(int(pid))
            except (OSError, ValueError):
                pass
        if not found or time.time() > deadline:
            return found
        time.sleep(0.1)


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def main_test():
    with pgserver.PgServer() as pg:
        pid = pg.postmaster_pid()
        check(pid and alive(pid), "postmaster running (pid %s)" % pid)
        if os.geteuid() == 0:
            check(proc_uid(pid) != 0, "postmaster does not run as root (uid %s)" % proc_uid(pid))
        check(pg.psql("SHOW listen_addresses") == [["127.0.0.1"]], "listens on 127.0.0.1 only")
        check(pg.psql("SHOW server_version_num")[0][0].startswith("15"), "PostgreSQL 15")
        check(int(pg.psql("SHOW max_connections")[0][0]) >= 300, "max_connections >= 300")
        check(pg.psql("SHOW fsync") == [["off"]], "fsync off (tests only)")

        t0 = time.time()
        pg.create_db("bgr_a")
        pg.create_db("bgr_b")
        print("     two databases created in %.2f s" % (time.time() - t0))
        check(pg.databases() == ["bgr_a", "bgr_b"], "two databases: %s" % pg.databases())
        pg.psql("CREATE TABLE t(id int PRIMARY KEY, name text); "
                "INSERT INTO t VALUES (1, 'o''neil'), (2, NULL), (3, 'a|b\nc')", "bgr_a")
        rows = pg.psql("SELECT id, name FROM t ORDER BY id", "bgr_a")
        check(rows == [["1", "o'neil"], ["2", ""], ["3", "a|b\nc"]], "psql rows: %r" % rows)
        q = pg.query(pgserver.bind("SELECT id, name FROM t WHERE id >= ? AND name <> ? ORDER BY id",
                                   (1, "x")), "bgr_a")
        check(q == [(1, "o'neil"), (3, "a|b\nc")], "typed query rows: %r" % q)
        check(pg.query("SELECT 1 AS a WHERE false", "bgr_a") == [], "empty query result")
        try:
            pg.psql("SELECT * FROM t", "bgr_b")
            check(False, "databases are separate")
        except pgserver.PgError as e:
            check("does not exist" in str(e), "databases are separate (%s)" % str(e)[:60])

        # Both URL forms reach the server (a client as the caller's user).
        for url in (pg.url("bgr_a"), pg.url("bgr_a", socket=True)):
            p = subprocess.run([os.path.join(pg.bin_dir, "psql"), "-X", "-At", "-c",
                                "SELECT count(*) FROM t", url], capture_output=True, text=True,
                               timeout=30, env=pgserver._env())
            check(p.returncode == 0 and p.stdout.strip() == "3", "connects by %s" % url)

        # A client still connected does not stop drop_db.
        hold = subprocess.Popen([os.path.join(pg.bin_dir, "psql"), "-X", "-q", pg.url("bgr_b")],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        pg.drop_db("bgr_b")
        hold.stdin.close()
        hold.wait(30)
        check(pg.databases() == ["bgr_a"], "drop_db with a client connected")

        # stop/start: same port, same data; nothing listens in between.
        port = pg.port
        pg.stop()
        check(wait_gone(pid), "postmaster gone after stop()")
        check(not connectable(port), "port %d closed while stopped" % port)
        pg.start()
        check(pg.port == port, "same port after start()")
        check(pg.psql("SELECT count(*) FROM t", "bgr_a") == [["3"]], "data kept across stop/start")
        pid = pg.postmaster_pid()
        tmp = pg.tmp
        check(mentioning(tmp, 0) != [], "a watchdog guards the cluster")
    check(wait_gone(pid), "postmaster gone after the with block")
    check(not os.path.exists(tmp), "temporary directory removed")
    check(mentioning(tmp) == [], "no process left (watchdog ended)")


# The kill -9 case: a child process owns the cluster and is killed.
CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import pgserver
pg = pgserver.PgServer()
pg.create_db("bgr_k")
print(pg.postmaster_pid(), pg.port, pg.tmp, flush=True)
time.sleep(600)
"""


def kill9_test():
    p = subprocess.Popen([sys.executable, "-c", CHILD, HERE], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    check(len(line) == 3, "child started a cluster: %r" % line)
    if len(line) != 3:
        p.kill()
        p.wait()
        return
    pid, port, tmp = int(line[0]), int(line[1]), line[2]
    check(alive(pid) and connectable(port), "child's cluster answers")
    p.send_signal(signal.SIGKILL)
    p.wait()
    check(wait_gone(pid, 40), "postmaster stopped after its owner's kill -9 (watchdog)")
    deadline = time.time() + 20
    while time.time() < deadline and os.path.exists(tmp):
        time.sleep(0.1)
    check(not os.path.exists(tmp), "its temporary directory removed")
    check(not connectable(port), "its port closed")
    check(mentioning(tmp) == [], "no process left (watchdog ended)")


def main():
    if not pgserver.available():
        print("skipped: PostgreSQL binaries not found (Debian: postgresql-15)")
        return 77
    t0 = time.time()
    main_test()
    kill9_test()
    print("pgserver self-test: %d failed, %.1f s" % (len(FAILS), time.time() - t0))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
