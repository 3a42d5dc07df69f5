#!/usr/bin/env python3
"""burst - a burst of N concurrent POST /v1/remove uploads of one noise PNG of about
SIZE_MIB MiB against a fresh `bgremover serve` (its defaults, a pro account, and any
extra serve arguments, e.g. --set plan.pro.per_minute=10000); prints the server's idle
and peak RSS (VmHWM), the answers by status and message, and the body-budget gauges
read from /metrics afterwards (bgremover_http_inflight_body_bytes must be back to 0).

Usage: bench/burst.py BIN N SIZE_MIB [serve args...]
  e.g. bench/burst.py build/bgremover 100 10 --set plan.pro.per_minute=10000
Uses the API test harness (tests/api/bgrtest.py) to start the server."""
import collections, os, re, sys, threading, time, zlib, struct
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
import bgrtest
from bgrtest import Server, multipart

BIN, N, MIB = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
bgrtest.BIN = BIN

def noise_png(nbytes):
    w = 1024
    h = max(1, int(nbytes / (w * 3)))
    raw = b"".join(b"\x00" + os.urandom(w * 3) for _ in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))

def hwm(pid):
    with open("/proc/%d/status" % pid) as f:
        s = f.read()
    return {k: int(re.search(r"%s:\s+(\d+) kB" % k, s).group(1)) // 1024 for k in ("VmHWM", "VmRSS")}

img = noise_png(int(MIB * 1024 * 1024))
body, ct = multipart([], [("image_file", "n.png", img, "image/png")])
srv = Server("burst", args=sys.argv[4:]).start()
try:
    _, key = srv.new_account("pro")
    idle = hwm(srv.proc.pid)
    results = []
    lock = threading.Lock()
    go = threading.Event()
    def one():
        go.wait()
        try:
            c = srv.conn(timeout=600)
            c.request("POST", "/v1/remove", body=body,
                      headers={"Authorization": "Bearer " + key, "Content-Type": ct})
            r = c.getresponse()
            data = r.read()
            c.close()
            msg = ""
            if r.status != 200:
                m = re.search(rb'"message":"([^"]*)"', data)
                msg = m.group(1).decode()[:40] if m else data[:40].decode("latin1")
            res = (r.status, msg)
        except Exception as e:
            res = ("exc", type(e).__name__)
        with lock:
            results.append(res)
    ts = [threading.Thread(target=one) for _ in range(N)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join()
    peak = hwm(srv.proc.pid)
    m = srv.get("/metrics").body.decode()
    infl = re.findall(r"(?m)^bgremover_http_(inflight_body_bytes|body_budget_refused_total) (\d+)", m)
    print("bin=%s N=%d body=%.1fMiB idleHWM=%dMiB peakHWM=%dMiB rssAfter=%dMiB statuses=%s %s" % (
        os.path.basename(BIN), N, len(body) / 1048576, idle["VmHWM"], peak["VmHWM"], peak["VmRSS"],
        dict(collections.Counter(results)), dict(infl)))
finally:
    srv.cleanup()
