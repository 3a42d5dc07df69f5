#!/usr/bin/env python3
"""Burst: N concurrent uploads of a ~10 MB photo (default 100) at one server.

    tests/load/burst.py [--bin build/bgremover] [-n 100] [--mb 10] [--workers 2] [--queue 16]

Every answer must be 200, or 503 SERVICE_BUSY with Retry-After (429 cannot
happen: the account's per-minute limit and its share of the body budget,
uploads_per_account, are raised for the run, which measures the server-wide
budget: one account's burst is otherwise answered 429 past two uploads); the server
must still be alive afterwards (no OOM kill). Prints the status counts,
latencies and the server's peak RSS (VmHWM), and exits non-zero on failure.
Runs under nice 10; takes about a minute on 2 cores.
"""
import argparse
import collections
import os
import sys
import threading
import time

import common
from common import bgrtest, mib, proc_status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bgremover")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=16)
    a = ap.parse_args()
    os.nice(10)
    common.set_bin(a.bin)
    photo_path = common.big_photo(a.mb)
    with open(photo_path, "rb") as f:
        photo = f.read()
    body, ctype = bgrtest.multipart([], [("image_file", "big.jpg", photo, "image/jpeg")])
    srv = bgrtest.Server("burst", args=["--workers", str(a.workers), "--queue-size", str(a.queue),
                                        "--set", "plan.enterprise.per_minute=100000",
                                        "--set", "uploads_per_account=1000",
                                        "--set", "max_connections_per_ip=0"]).start()
    ok = True
    try:
        key = srv.new_account("enterprise")[1]
        pid = srv.proc.pid
        base = proc_status(pid)
        sampler = common.RssSampler(pid, 0.2)
        results = [None] * a.n
        barrier = threading.Barrier(a.n)

        def one(i):
            barrier.wait()
            t0 = time.time()
            try:
                c = srv.conn(timeout=600)
                c.request("POST", "/v1/remove", body=body,
                          headers={"Authorization": "Bearer " + key, "Content-Type": ctype})
                r = c.getresponse()
                data = r.read()
                results[i] = (r.status, r.getheader("Retry-After"), time.time() - t0, data[:200])
                c.close()
            except OSError as e:
                results[i] = ("error " + type(e).__name__, None, time.time() - t0, str(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(a.n)]
        t0 = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.time() - t0
        samples = sampler.stop()
        alive = srv.proc.poll() is None
        st = proc_status(pid) if alive else {}
        counts = collections.Counter(r[0] for r in results)
        print("burst: %d uploads of %.1f MB, workers %d, queue %d, on %d CPUs" %
              (a.n, len(photo) / 1e6, a.workers, a.queue, os.cpu_count()))
        print("  statuses: %s" % dict(counts))
        for status in sorted(counts, key=str):
            lat = sorted(r[2] for r in results if r[0] == status)
            print("  %s: latency min %.2f s, median %.2f s, max %.2f s" %
                  (status, lat[0], lat[len(lat) // 2], lat[-1]))
        ra = collections.Counter(r[1] for r in results if r[0] == 503)
        if ra:
            print("  503 Retry-After values: %s" % dict(ra))
        print("  wall %.1f s; server alive: %s" % (wall, alive))
        print("  server RSS: before %.0f MiB, peak (VmHWM) %.0f MiB, sampled max %.0f MiB, after %.0f MiB"
              % (mib(base["VmRSS"]), mib(st.get("VmHWM", 0)),
                 mib(max(s[1] for s in samples)) if samples else 0, mib(st.get("VmRSS", 0))))
        for r in results:
            if r[0] == 200:
                continue
            if r[0] == 503 and r[1] and b"SERVICE_BUSY" in r[3]:
                continue
            ok = False
            print("  UNEXPECTED: %r" % (r,))
            break
        if not alive:
            ok = False
            print("  SERVER DIED:\n" + srv.read_log()[-2000:])
        elif srv.get("/healthz").status != 200:
            ok = False
    finally:
        srv.cleanup()
    print("burst: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
