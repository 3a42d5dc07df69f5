"""The cap on request bodies held in memory at once (max_inflight_body_bytes, issue 4 item 5)
and the `precision` server setting.

One server with a 1 MiB body budget. An upload that has declared its Content-Length and
sent part of its body holds its reservation (seen in /metrics as
bgremover_http_inflight_body_bytes) while other requests arrive, so the tests need no
timing: they wait for the gauge, not for the clock. Bad values of the new settings are
checked against the binary directly (it exits before it loads anything).
"""
import http.client
import os
import re
import socket
import subprocess
import time
import unittest

from bgrtest import BIN, Server, fresh_store_argv, multipart, photo

BUDGET = 1024 * 1024
SRV = None
KEY = None


def setUpModule():
    global SRV, KEY
    SRV = Server("budget", config="max_inflight_body_bytes = %d\n" % BUDGET,
                 env={"BGR_PRECISION": "fp32"}).start()
    _, KEY = SRV.new_account("pro")


def tearDownModule():
    if SRV:
        SRV.cleanup()


def metric(name):
    body = SRV.get("/metrics").body.decode()
    m = re.search(r"(?m)^%s (\d+)$" % re.escape(name), body)
    return int(m.group(1)) if m else None


def wait_inflight(tc, want, timeout=30):
    """Waits until the gauge reads want (a bounded wait, not a measurement)."""
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = metric("bgremover_http_inflight_body_bytes")
        if got == want:
            return
        time.sleep(0.05)
    tc.fail("bgremover_http_inflight_body_bytes is %r, expected %d" % (got, want))


class HeldUpload:
    """A POST /v1/remove whose body is only partly sent: it holds its reservation."""

    def __init__(self, body, ctype, first=4096):
        self.body = body
        self.sock = socket.create_connection(("127.0.0.1", SRV.port), timeout=120)
        head = ("POST /v1/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" %
                (KEY, ctype, len(body))).encode()
        self.sock.sendall(head + body[:first])
        self.sent = first

    def finish(self):
        """Sends the rest; returns (status, headers, body bytes)."""
        self.sock.sendall(self.body[self.sent:])
        r = http.client.HTTPResponse(self.sock)
        r.begin()
        data = r.read()
        self.sock.close()
        return r.status, r.headers, data

    def abandon(self):
        self.sock.close()


def raw_chunked(path, payload, chunk=65536, key=None, ctype="application/octet-stream"):
    """Sends payload chunked on a fresh connection, then reads the whole answer."""
    s = socket.create_connection(("127.0.0.1", SRV.port), timeout=120)
    head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n" % path
    if key:
        head += "Authorization: Bearer %s\r\n" % key
    head += "Content-Type: %s\r\nConnection: close\r\n\r\n" % ctype
    out = [head.encode()]
    for i in range(0, len(payload), chunk):
        part = payload[i:i + chunk]
        out.append(b"%x\r\n" % len(part) + part + b"\r\n")
    out.append(b"0\r\n\r\n")
    try:
        s.sendall(b"".join(out))
    except OSError:
        pass  # the server may stop reading once it has answered; read what it said
    r = http.client.HTTPResponse(s)
    r.begin()
    data = r.read()
    s.close()
    return r.status, r.headers, data


class T01Budget(unittest.TestCase):
    def setUp(self):
        wait_inflight(self, 0)

    def test_limit_is_reported(self):
        self.assertEqual(metric("bgremover_http_inflight_body_limit_bytes"), BUDGET)

    def test_two_uploads_over_budget_one_503_none_lost(self):
        img = photo("astronaut")  # 791,555 bytes: two do not fit in 1 MiB, one does
        body, ct = multipart([], [("image_file", "a.png", img, "image/png")])
        refused_before = metric("bgremover_http_body_budget_refused_total")
        a = HeldUpload(body, ct)
        try:
            wait_inflight(self, len(body))
            r = SRV.remove_file(KEY, img)  # the second upload, sent whole
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.code, "SERVICE_BUSY")
            self.assertTrue(r.header("Retry-After") and int(r.header("Retry-After")) >= 1)
            self.assertIsNotNone(r.header("X-RateLimit-Limit"))  # after the key check
            status, _, data = a.finish()
        except BaseException:
            a.abandon()
            raise
        self.assertEqual(status, 200, data)
        self.assertIn(b'"success":true', data)
        self.assertEqual(metric("bgremover_http_body_budget_refused_total"), refused_before + 1)
        wait_inflight(self, 0)
        # Within budget again: the refused client's retry succeeds.
        r = SRV.remove_file(KEY, img)
        self.assertEqual(r.status, 200, r.body)
        wait_inflight(self, 0)

    def test_chunked_past_what_is_left_503(self):
        img = photo("astronaut")
        body, ct = multipart([], [("image_file", "a.png", img, "image/png")])
        a = HeldUpload(body, ct)
        try:
            wait_inflight(self, len(body))
            status, headers, data = raw_chunked("/v1/remove", body, key=KEY, ctype=ct)
            self.assertEqual(status, 503, data)
            self.assertIn(b'"SERVICE_BUSY"', data)
            self.assertIsNotNone(headers.get("Retry-After"))
            wait_inflight(self, len(body))  # the chunked body's part came back
        finally:
            a.abandon()  # a client gone mid-body gives its reservation back too
        wait_inflight(self, 0)

    def test_chunked_larger_than_the_whole_budget_413(self):
        # It could never be admitted: too large, not "retry later".
        payload = b"x" * (BUDGET + 100000)
        status, headers, data = raw_chunked("/v1/remove", payload, key=KEY,
                                            ctype="multipart/form-data; boundary=zz")
        self.assertEqual(status, 413, data)
        self.assertIn(b'"FILE_TOO_LARGE"', data)
        wait_inflight(self, 0)

    def test_small_requests_unaffected_while_held(self):
        img = photo("astronaut")
        body, ct = multipart([], [("image_file", "a.png", img, "image/png")])
        a = HeldUpload(body, ct)
        try:
            wait_inflight(self, len(body))
            self.assertEqual(SRV.get("/v1/account", key=KEY).status, 200)
            # A small image fits what is left of the budget and is processed meanwhile.
            r = SRV.remove_file(KEY, photo("chelsea"))
            self.assertEqual(r.status, 200, r.body)
        finally:
            a.abandon()
        wait_inflight(self, 0)

    def test_precision_setting_reaches_the_model(self):
        self.assertRegex(SRV.read_log(), r"model .* loaded in .*\(fp32\)")


def serve_fails(args=(), env=None):
    """Runs `serve` expected to stop at start-up; returns its stderr."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("BGR_") or k == "BGR_MODEL_DIR"}
    e.update(env or {})
    tmp = "/tmp/bgr-api-budget-cfg-%d" % os.getpid()
    p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", tmp] +
                       fresh_store_argv() + list(args),
                       capture_output=True, text=True, env=e, timeout=120)
    subprocess.run(["rm", "-rf", tmp])
    return p.returncode, p.stderr


class T02Config(unittest.TestCase):
    def test_default_budget(self):
        out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
        self.assertRegex(out, r"(?m)^  max_inflight_body_bytes\s+BGR_MAX_INFLIGHT_BODY_BYTES\s+"
                              r"268435456$")
        self.assertRegex(out, r"(?m)^  precision\s+BGR_PRECISION\s+auto$")

    def test_bad_budget_values(self):
        for args, env, where in [
                (["--set", "max_inflight_body_bytes=1000"], None, "max_inflight_body_bytes"),
                (["--set", "max_inflight_body_bytes=0"], None, "max_inflight_body_bytes"),
                (["--set", "max_inflight_body_bytes=64MiB"], None, "max_inflight_body_bytes"),
                ([], {"BGR_MAX_INFLIGHT_BODY_BYTES": "-1"}, "BGR_MAX_INFLIGHT_BODY_BYTES")]:
            rc, err = serve_fails(args, env)
            self.assertNotEqual(rc, 0, args)
            self.assertIn("%s: expected an integer from 1048576 to" % where, err)

    def test_bad_precision_values(self):
        for args, env in [(["--precision", "fp16"], None), (["--set", "precision=INT4"], None),
                          ([], {"BGR_PRECISION": "half"})]:
            rc, err = serve_fails(args, env)
            self.assertNotEqual(rc, 0, args)
            self.assertIn("precision: expected auto, fp32, bf16 or int8, not", err)

    def test_precision_the_engine_refuses_stops_the_server(self):
        # The reference backend computes in fp32 only, on every CPU.
        rc, err = serve_fails(["--precision", "bf16", "--set", "backend=ref"])
        self.assertNotEqual(rc, 0)
        self.assertIn("cannot load the model (backend ref, precision bf16): ", err)
        self.assertIn("the reference backend computes in fp32 only", err)


if __name__ == "__main__":
    unittest.main()
