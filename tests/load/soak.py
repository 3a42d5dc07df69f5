#!/usr/bin/env python3
"""Soak: the sync queue kept exactly full for a while (default 300 s); RSS must stay flat.

    tests/load/soak.py [--bin build/bgremover] [--seconds 300] [--workers 2] [--queue 16]

workers + queue clients each POST skimage's astronaut (512x512 PNG, 0.5 MB)
in a loop, so the workers never idle and the queue is at capacity; a few
extra clients poll GET /v1/account meanwhile. Prints RSS samples (every 10 s),
the status counts and throughput. PASS when there was no 5xx other than
503-with-Retry-After, the server is alive, and the RSS of the last third of
the run exceeds that of the first sample after warm-up (60 s) by less than
--max-growth-mib (default 32). Runs under nice 10.
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
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queue", type=int, default=16)
    ap.add_argument("--max-growth-mib", type=float, default=32)
    a = ap.parse_args()
    os.nice(10)
    common.set_bin(a.bin)
    photo = bgrtest.photo("astronaut")
    body, ctype = bgrtest.multipart([("output_format", "webp")],
                                    [("image_file", "a.png", photo, "image/png")])
    srv = bgrtest.Server("soak", args=["--workers", str(a.workers), "--queue-size", str(a.queue),
                                       "--set", "plan.enterprise.per_minute=100000",
                                       "--set", "access_log=false"]).start()
    ok = True
    try:
        key = srv.new_account("enterprise")[1]
        pid = srv.proc.pid
        stop = time.time() + a.seconds
        counts = collections.Counter()
        lock = threading.Lock()
        lat = []

        def uploader():
            while time.time() < stop:
                t0 = time.time()
                try:
                    r = srv.request("POST", "/v1/remove", body=body, key=key, ctype=ctype)
                    st = r.status if r.status != 503 or r.header("Retry-After") else "503-no-RA"
                except OSError as e:
                    st = "error " + type(e).__name__
                with lock:
                    counts[st] += 1
                    if st == 200:
                        lat.append(time.time() - t0)
                if st != 200:
                    time.sleep(0.5)

        def poller():
            while time.time() < stop:
                try:
                    st = srv.get("/v1/account", key=key).status
                except OSError as e:
                    st = "error " + type(e).__name__
                with lock:
                    counts["account %s" % st] += 1
                time.sleep(0.5)

        sampler = common.RssSampler(pid, 10.0)
        threads = [threading.Thread(target=uploader) for _ in range(a.workers + a.queue)]
        threads += [threading.Thread(target=poller) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        samples = sampler.stop()
        alive = srv.proc.poll() is None
        print("soak: %d s, workers %d, queue %d, %d uploaders + 2 account pollers" %
              (a.seconds, a.workers, a.queue, a.workers + a.queue))
        print("  statuses: %s" % dict(counts))
        if lat:
            lat.sort()
            print("  200s: %d (%.2f/s), latency median %.1f s, p95 %.1f s" %
                  (len(lat), len(lat) / a.seconds, lat[len(lat) // 2], lat[int(len(lat) * .95)]))
        print("  RSS samples (s: MiB): " + ", ".join("%d: %.0f" % (t, mib(k)) for t, k in samples))
        warm = [k for t, k in samples if t >= 60]
        if alive:
            print("  peak (VmHWM) %.0f MiB" % mib(proc_status(pid)["VmHWM"]))
        if len(warm) >= 3:
            tail = warm[-max(1, len(warm) // 3):]
            growth = mib(max(tail) - warm[0])
            print("  growth after warm-up: %.1f MiB (first after 60 s %.0f MiB, max of last third "
                  "%.0f MiB)" % (growth, mib(warm[0]), mib(max(tail))))
            if growth >= a.max_growth_mib:
                ok = False
        bad = [k for k in counts if isinstance(k, str) and not k.startswith("account 200")] + \
              [k for k in counts if isinstance(k, int) and k not in (200, 503)]
        if bad:
            ok = False
            print("  unexpected statuses: %s" % bad)
        if not alive:
            ok = False
            print("  SERVER DIED:\n" + srv.read_log()[-2000:])
    finally:
        srv.cleanup()
    print("soak: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
