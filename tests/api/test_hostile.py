"""Hostile clients (issue 13): each attack runs against a real server on
loopback while a victim (another account, or /healthz) keeps asking; the test
asserts the victim's worst latency and prints its median and worst, so the
same file run with --bin on an older binary gives the "before" figures.

Attackers connect from 127.0.0.2.. (all of 127/8 is loopback on Linux), so
per-address limits see them apart from the victim on 127.0.0.1. Every attack
is bounded in connections and time; nothing leaves the host.
"""
import http.client
import os
import re
import socket
import ssl
import statistics
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import zlib

from bgrtest import Server, make_cert


class Victim:
    """Asks fn() every `every` seconds on a thread; records latencies and
    counts failures (fn false or raising; a timeout takes `timeout`) until
    stop()."""

    def __init__(self, fn, every=0.5, timeout=10.0):
        self.fn, self.every, self.timeout = fn, every, timeout
        self.lat, self.failed = [], 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t0 = time.time()
            ok = False
            try:
                ok = self.fn()
            except (OSError, http.client.HTTPException):
                ok = False
            dt = time.time() - t0
            if not ok:  # refused, reset, timed out or a wrong status: counted apart
                self.failed += 1
            self.lat.append(dt)
            self._stop.wait(max(0.0, self.every - dt))

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(60)
        return self

    def report(self, label):
        med, worst = statistics.median(self.lat), max(self.lat)
        print("\n    %s: victim median %.3f s, worst %.3f s, %d/%d failed" %
              (label, med, worst, self.failed, len(self.lat)), end=" ")
        return med, worst


_KNOWN = None


def sets(*pairs):
    """["--set", "k=v", ...] for the keys this binary knows: run with --bin
    on a binary older than these limits, the attacks still run (that is how
    the "before" figures were measured) and only the assertions fail."""
    global _KNOWN
    if _KNOWN is None:
        import bgrtest
        _KNOWN = subprocess.run([bgrtest.BIN, "serve", "--help"], capture_output=True,
                                text=True, timeout=30).stdout
    out = []
    for kv in pairs:
        if (" %s " % kv.split("=")[0]) in _KNOWN:
            out += ["--set", kv]
    return out


def healthz(port, src="127.0.0.1", timeout=10.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(src, 0))
    try:
        c.request("GET", "/healthz")
        return c.getresponse().status == 200
    finally:
        c.close()


def raw(port, data, src="127.0.0.1", wait=3.0):
    """Sends data on a fresh connection; returns (status codes seen, closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait, source_address=(src, 0))
    s.sendall(data)
    got, closed = b"", False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            got += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return statuses(got), closed


def statuses(got):
    """The status codes of the answers in got, in order (a pipelined
    answer's status line follows the previous body directly)."""
    return [int(c) for c in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)]


def progressive_jpeg_bomb(size=7000, scans=3000):
    """A grey size x size progressive JPEG (all coefficients zero) with one
    DC scan and `scans` identical AC scans, no EOI: each scan is ~60 bytes
    (end-of-band runs) but a full decoding pass over the image."""
    def seg(marker, payload):
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    blocks = ((size + 7) // 8) ** 2
    out = bytearray(b"\xff\xd8")
    out += seg(0xDB, b"\x00" + b"\x01" * 64)                            # DQT: all ones
    out += seg(0xC2, struct.pack(">BHHB", 8, size, size, 1) + b"\x01\x11\x00")  # SOF2, grey
    out += seg(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")         # DC: symbol 0 = "0"
    out += seg(0xC4, b"\x10" + bytes([1, 1] + [0] * 14) + b"\xe0\xd0")  # AC: EOB14 "0", EOB13 "10"
    # DC scan: one "0" bit (difference 0) per block, padded with ones.
    out += seg(0xDA, b"\x01\x01\x00\x00\x00\x00")
    nbits = blocks
    out += b"\x00" * (nbits // 8)
    if nbits % 8:
        out.append(0xFF >> (nbits % 8))
    # AC scan: end-of-band runs over every block.
    bits = ""
    left = blocks
    while left >= 16384:
        run = min(left, 32767)
        bits += "0" + format(run - 16384, "014b")
        left -= run
    if left >= 8192:
        bits += "10" + format(left - 8192, "013b")
        left = 0
    assert left == 0, "size must leave no run below 8192 blocks"
    bits += "1" * (-len(bits) % 8)
    data = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    ac = seg(0xDA, b"\x01\x01\x00\x01\x3f\x00") + data
    out += ac * scans
    return bytes(out)


def tall_png(width=1, height=9_999_999):
    """A ~10-40 KB grey PNG of width x height (all zero)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw_rows = (b"\x00" + b"\x00" * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw_rows, 9)) + chunk(b"IEND", b""))


class H01SlowBodies(unittest.TestCase):
    def test_slow_bodies_without_key_do_not_starve_healthz(self):
        # 80 connections (4 addresses x 20) without a key declare a 1 MB
        # upload and send one byte every 5 s, on 64 slots: before, they held
        # every slot (the idle timeout restarts with each byte).
        srv = Server("hostile-slow", args=["--workers", "1"] + sets("max_connections=64",
                                                                      "body_grace_s=2")).start()
        socks, stop = [], threading.Event()
        try:
            hdr = (b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                   b"Content-Length: 1000000\r\n\r\n")
            for i in range(80):
                try:
                    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                                 source_address=("127.0.0.%d" % (2 + i % 4), 0))
                    s.sendall(hdr)
                    socks.append(s)
                except OSError:
                    pass

            def drip():
                while not stop.wait(5.0):
                    for s in socks:
                        try:
                            s.send(b"x")
                        except OSError:
                            pass
            threading.Thread(target=drip, daemon=True).start()
            v = Victim(lambda: healthz(srv.port)).start()
            time.sleep(20)
            v.stop()
            med, worst = v.report("80 slow no-key bodies on 64 slots")
            self.assertEqual(v.failed, 0)
            self.assertLess(worst, 2.0)
        finally:
            stop.set()
            for s in socks:
                s.close()
            srv.cleanup()

    def test_body_must_arrive_at_the_minimum_rate(self):
        # An authenticated upload trickling 1 byte/s is closed at its
        # deadline: grace 2 s + 100 kB at 32 kB/s = ~5 s, not the idle timeout.
        srv = Server("hostile-rate", args=["--workers", "1"] + sets("body_grace_s=2")).start()
        try:
            acct, key = srv.new_account("pro")
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
            s.sendall(b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      key.encode() + b"\r\nContent-Type: image/png\r\n"
                      b"Content-Length: 100000\r\n\r\n")
            t0 = time.time()
            closed_after = None
            while time.time() - t0 < 20:
                try:
                    s.send(b"x")
                    s.settimeout(1.0)
                    if s.recv(1) == b"":
                        closed_after = time.time() - t0
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed_after = time.time() - t0
                    break
            s.close()
            print("\n    1 B/s upload of 100 kB closed after %s s" %
                  ("%.1f" % closed_after if closed_after else "-"), end=" ")
            self.assertIsNotNone(closed_after, "a 1 B/s body was never cut off")
            self.assertLess(closed_after, 9)
            self.assertTrue(healthz(srv.port))
        finally:
            srv.cleanup()

    def test_idle_connections_give_way(self):
        # 70 idle connections (never a request) from 4 addresses on 64 slots,
        # re-opened as they close: the victim is still served at once.
        srv = Server("hostile-idle", args=["--workers", "1", "--set", "max_connections=64"]).start()
        socks, stop = [], threading.Event()
        try:
            def opener():
                i = 0
                while not stop.wait(0.05):
                    socks[:] = [s for s in socks if s.fileno() >= 0]
                    if len(socks) < 70:
                        try:
                            socks.append(socket.create_connection(
                                ("127.0.0.1", srv.port), timeout=2,
                                source_address=("127.0.0.%d" % (2 + i % 4), 0)))
                        except OSError:
                            pass
                        i += 1
            threading.Thread(target=opener, daemon=True).start()
            time.sleep(3)
            v = Victim(lambda: healthz(srv.port)).start()
            time.sleep(10)
            v.stop()
            med, worst = v.report("70 idle connections on 64 slots")
            self.assertEqual(v.failed, 0)
            self.assertLess(worst, 2.0)
        finally:
            stop.set()
            for s in list(socks):
                s.close()
            srv.cleanup()


class H02UploadBudget(unittest.TestCase):
    def test_one_account_cannot_hold_the_upload_budget(self):
        # 8 MiB of budget; the attacker's plan takes 1 MB uploads and it
        # declares the whole budget in them and sends nothing. Before: every
        # other upload got 503 SERVICE_BUSY. Now it may hold 2 uploads' worth
        # (429 past it).
        srv = Server("hostile-budget", args=[
            "--workers", "1", "--set", "max_inflight_body_bytes=8388608",
            "--set", "plan.pro.max_bytes=1048576"]).start()
        socks = []
        try:
            _, bad = srv.new_account("pro")
            _, good = srv.new_account("enterprise")
            # 8 x 1,000,000 and the rest of the 8 MiB (the limit is public on
            # /metrics), and 4 more of 1,000,000 for good measure
            for n in [1000000] * 8 + [8388608 - 8000000] + [1000000] * 4:
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                             source_address=("127.0.0.2", 0))
                s.sendall(b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          bad.encode() + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                          b"Content-Length: %d\r\n\r\n" % n)
                socks.append(s)
            time.sleep(1)
            body = open(os.path.join(os.path.dirname(__file__), "fixtures", "small.png"),
                        "rb").read()
            statuses = []

            def upload():
                r = srv.remove_file(good, body)
                statuses.append(r.status)
                return r.status == 200
            v = Victim(upload, every=1.0, timeout=30).start()
            time.sleep(12)
            v.stop()
            med, worst = v.report("one key declaring all of an 8 MiB budget")
            self.assertEqual(set(statuses), {200}, statuses)
            # one more, asking 100-continue: it is answered at once
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                         source_address=("127.0.0.2", 0))
            s.sendall(b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      bad.encode() + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      b"Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n")
            s.settimeout(5)
            first = s.recv(4096)
            s.close()
            self.assertTrue(first.startswith(b"HTTP/1.1 429"), first[:200])
            m = srv.get("/metrics").body.decode()
            held = int(m.split("\nbgremover_http_inflight_body_bytes ")[1].split()[0])
            refused = int(m.split("\nbgremover_http_body_account_share_refused_total ")[1].split()[0])
            self.assertLessEqual(held, 2 * (1048576 + 65536), m)
            self.assertGreaterEqual(refused, 10)
        finally:
            for s in socks:
                s.close()
            srv.cleanup()


class H03DecodeWork(unittest.TestCase):
    def _bomb_vs_victim(self, name, bomb, ctype, want_status, want_code):
        srv = Server(name, args=["--workers", "2"]).start()
        try:
            _, attacker = srv.new_account("free")
            _, good = srv.new_account("enterprise")
            small = open(os.path.join(os.path.dirname(__file__), "fixtures", "small.png"),
                         "rb").read()
            r = srv.remove_file(good, small)  # warm up
            self.assertEqual(r.status, 200, r.body)
            results = []

            def attack():
                t0 = time.time()
                r = srv.remove_file(attacker, bomb, filename="x", ctype=ctype)
                results.append((r, time.time() - t0))
            ts = [threading.Thread(target=attack) for _ in range(2)]
            v = Victim(lambda: srv.remove_file(good, small).status == 200, every=0.5,
                       timeout=60).start()
            t0 = time.time()
            for t in ts:
                t.start()
            for t in ts:
                t.join(120)
            time.sleep(max(1.0, 8.0 - (time.time() - t0)))  # a few victim samples at least
            v.stop()
            med, worst = v.report("%s x2 (%d bytes), answered in %s s" % (
                name, len(bomb), ", ".join("%.1f" % d for _, d in results)))
            for r, d in results:
                self.assertEqual(r.status, want_status, r.body)
                self.assertEqual(r.code, want_code)
                self.assertLess(d, 5)
            acct = srv.get("/v1/account", key=attacker)
            self.assertEqual(acct.status, 200)
            self.assertLess(worst, 10)
            return results
        finally:
            srv.cleanup()

    def test_progressive_jpeg_scan_bomb(self):
        bomb = progressive_jpeg_bomb(7000, 3000)
        res = self._bomb_vs_victim("hostile-scans", bomb, "image/jpeg", 415, "UNSUPPORTED_FORMAT")
        self.assertIn("progressive scans", res[0][0].message)

    def test_one_pixel_wide_png(self):
        self._bomb_vs_victim("hostile-tall", tall_png(1, 9_999_999), "image/png", 400,
                             "RESOLUTION_TOO_HIGH")


class H06Framing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("hostile-framing", args=["--workers", "1"]).start(wait_ready=False)

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()

    def test_ambiguous_framing_is_refused_and_closed(self):
        p = self.srv.port
        cases = {
            "two Content-Length (smuggling)":
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 35\r\n\r\n"
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "Content-Length with Transfer-Encoding":
                b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "space before the colon":
                b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            "no Host": b"GET /healthz HTTP/1.1\r\n\r\n",
            "two Host": b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            "Content-Length not a number":
                b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
            "Transfer-Encoding other than chunked":
                b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                b"0\r\n\r\n",
            # what libmicrohttpd 0.9.75 hides from its API (framing.c's
            # in-place check): a folded Transfer-Encoding becomes a field
            # named "Transfer-Encodingchunked" to MHD, framing to a proxy
            "obs-fold": b"POST /v1/remove HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n"
                        b"\r\n0\r\n\r\n",
            "obs-fold of an ordinary field":
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n",
            "NUL in a value": b"GET /healthz HTTP/1.1\r\nHost: x\x00y\r\n\r\n",
            "NUL in the last value": b"GET /healthz HTTP/1.1\r\nX-A: b\r\nHost: x\x00\x00y\r\n\r\n",
            "Content-Length hidden behind a NUL":
                b"POST /v1/account HTTP/1.1\r\nHost: x\r\nX-A: b\x00\r\nContent-Length: 5\r\n\r\n"
                b"hello",
            "bare LF line ends": b"GET /healthz HTTP/1.1\nHost: x\n\n",
            "bare LF after a field": b"GET /healthz HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
            "CR inside a value": b"GET /healthz HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(name):
                codes, closed = raw(p, data)
                # (MHD refuses a non-numeric Content-Length itself, writing
                # its status line twice: still one 400 answer, then close)
                self.assertTrue(codes and set(codes) == {400}, (name, codes))
                self.assertTrue(closed, name)

    def test_plain_requests_still_served(self):
        p = self.srv.port
        self.assertEqual(raw(p, b"GET /healthz HTTP/1.0\r\n\r\n")[0], [200])
        # what the in-place check must keep accepting: empty values, tabs and
        # runs of spaces around a value, many fields, pipelined requests
        self.assertEqual(raw(p, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Sp:   \r\n"
                                b"X-Tab:\t a\tb \t\r\nConnection: close\r\n\r\n")[0], [200])
        many = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * i) for i in range(60))
        self.assertEqual(raw(p, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many +
                                b"Connection: close\r\n\r\n")[0], [200])
        self.assertEqual(raw(p, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0],
                         [200, 200])
        c = http.client.HTTPConnection("127.0.0.1", p, timeout=10)
        for _ in range(3):  # keep-alive: one Host each time
            c.request("POST", "/v1/account", body=b"{}", headers={"Content-Type": "application/json"})
            self.assertEqual(c.getresponse().read()[:1], b"{")
        c.close()
        big = b"".join(b"X-Big%d: %s\r\n" % (i, b"w" * 200) for i in range(50))  # 10 kB: the buffer grows
        self.assertEqual(raw(p, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big +
                                b"Connection: close\r\n\r\n")[0], [200])

    def test_hostile_framing_on_a_kept_alive_connection(self):
        # the second request of a connection is checked as the first
        codes, closed = raw(self.srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                           b"GET /healthz HTTP/1.1\r\nHost: x\x00y\r\n\r\n"
                                           b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(codes, [200, 400])
        self.assertTrue(closed)


class H07Tls(unittest.TestCase):
    def test_old_protocols_and_weak_suites_refused_hsts_sent(self):
        tmp = tempfile.mkdtemp(prefix="bgr-tls-")
        cert, key_path = make_cert(tmp)
        srv = Server("hostile-tls", tls=(cert, key_path)).start(wait_ready=False)
        try:
            r = srv.get("/healthz")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Strict-Transport-Security"), "max-age=31536000")

            def handshake(version=None, ciphers=None):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
                if version:
                    ctx.minimum_version = ctx.maximum_version = version
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                    with ctx.wrap_socket(s) as t:
                        return t.version(), t.cipher()[0]
            for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                with self.subTest(v):
                    with self.assertRaises((ssl.SSLError, OSError)):
                        handshake(v)
            for c in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"):
                with self.subTest(c):  # RSA key transport, CBC-SHA1
                    with self.assertRaises((ssl.SSLError, OSError)):
                        handshake(ssl.TLSVersion.TLSv1_2, c)
            ver, cipher = handshake(ssl.TLSVersion.TLSv1_2)
            self.assertIn("ECDHE", cipher)
            self.assertTrue("GCM" in cipher or "CHACHA20" in cipher, cipher)
            self.assertEqual(handshake(ssl.TLSVersion.TLSv1_3)[0], "TLSv1.3")

            def over_tls(data):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
                    with ctx.wrap_socket(s) as t:
                        t.sendall(data)
                        got = b""
                        try:
                            while d := t.recv(65536):
                                got += d
                        except (socket.timeout, ssl.SSLError, OSError):
                            pass
                return statuses(got)
            # the in-place framing check sees the decrypted header block too
            self.assertEqual(over_tls(b"GET /healthz HTTP/1.1\r\nHost: x\x00y\r\n\r\n"), [400])
            self.assertEqual(over_tls(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n"),
                             [400])
            self.assertEqual(over_tls(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                             [200])
        finally:
            srv.cleanup()


class H10Operational(unittest.TestCase):
    def test_metrics_token(self):
        srv = Server("hostile-metrics", args=["--set", "metrics_token=s3cret-token"]).start(
            wait_ready=False)
        try:
            self.assertEqual(srv.get("/metrics").status, 401)
            self.assertEqual(srv.get("/metrics", headers={
                "Authorization": "Bearer wrong"}).status, 401)
            r = srv.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
            self.assertEqual(r.status, 200)
            self.assertIn(b"bgremover_", r.body)
        finally:
            srv.cleanup()

    def test_webhook_to_refused_address_rejected_at_request_time(self):
        srv = Server("hostile-webhook", args=["--workers", "1"]).start()
        try:
            _, key = srv.new_account("pro")
            small = open(os.path.join(os.path.dirname(__file__), "fixtures", "small.png"),
                         "rb").read()
            for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/x",
                        "http://localhost:8080/x", "http://169.254.169.254/latest"):
                with self.subTest(url):
                    r = srv.remove_file(key, small, fields=[("webhook_url", url)])
                    self.assertEqual(r.status, 400, r.body)
                    self.assertIn("webhook_url", r.message)
                    r = srv.request("POST", "/v1/remove/batch", key=key, body={
                        "webhook_url": url, "images": [{"image_url": "https://example.com/a.png"}]})
                    self.assertEqual(r.status, 400, r.body)
                    self.assertIn("webhook_url", r.message)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
