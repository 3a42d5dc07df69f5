#!/usr/bin/env python3
"""wrk on GET /v1/account (default 60 s, 2 threads, 16 connections): no errors allowed.

    tests/load/wrk_account.py [--bin build/bgremover] [--seconds 60] [--connections 16]

Needs `wrk` (Debian package wrk, in scripts/setup --test). The account's per-minute
limit is raised for the run (every request is still authenticated, limited
and recorded as an API call, as in production). Prints wrk's report and the
server's RSS; PASS when wrk saw no socket errors and no non-2xx answers.
wrk runs under nice 10 like the server.
"""
import argparse
import os
import re
import subprocess
import sys

import common
from common import bgrtest, mib, proc_status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bgremover")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    os.nice(10)
    common.set_bin(a.bin)
    srv = bgrtest.Server("wrk", args=["--set", "plan.enterprise.per_minute=1000000"]).start()
    ok = True
    try:
        key = srv.new_account("enterprise")[1]
        pid = srv.proc.pid
        before = proc_status(pid)
        p = subprocess.run(["wrk", "-t%d" % a.threads, "-c%d" % a.connections,
                            "-d%ds" % a.seconds, "--latency", "-H", "Authorization: Bearer " + key,
                            "http://127.0.0.1:%d/v1/account" % srv.port],
                           capture_output=True, text=True, timeout=a.seconds + 60)
        out = p.stdout
        print(out.replace(key, "<key>"))
        alive = srv.proc.poll() is None
        after = proc_status(pid) if alive else {}
        print("wrk: server RSS before %.0f MiB, after %.0f MiB, peak %.0f MiB; alive %s" %
              (mib(before["VmRSS"]), mib(after.get("VmRSS", 0)), mib(after.get("VmHWM", 0)), alive))
        if p.returncode != 0 or "Socket errors" in out or "Non-2xx" in out or not alive:
            ok = False
        if not re.search(r"Requests/sec:\s+[0-9.]+", out):
            ok = False
        r = srv.get("/v1/account", key=key)
        calls = r.data["usage_this_month"]["api_calls"] if r.status == 200 else None
        m = re.search(r"(\d+) requests in", out)
        print("wrk: requests by wrk %s, api_calls recorded %s" % (m.group(1) if m else "?", calls))
    finally:
        srv.cleanup()
    print("wrk: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
