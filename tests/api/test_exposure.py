"""Secrets and exposure (issue 6, item 7), black box.

- API keys never reach the log (at debug level, access log on) nor any
  response, wherever a client puts them: Authorization, other headers, the
  query string, the path, form fields and JSON values; keys are stored
  hashed (no file of the data directory holds a key's bytes).
- Result ids are unguessable and give no oracle: an id that never existed,
  one that was deleted and one of another account answer alike.
- GET /v1/results/ serves only the files the store recorded: traversal in
  every spelling (dot segments, %-encoded, double-encoded, overlong UTF-8,
  backslashes, NUL, overlong ids, absolute-form request targets) is 404,
  and a result file swapped for a symlink is not followed.
- Error messages (4xx and 5xx) name no file system path nor internals
  (source files, SQLite, libvips, errno texts, addresses).

The model runs 3 times.
"""
import base64
import json
import os
import re
import shutil
import socket
import time
import unittest

from bgrtest import Server, multipart, photo

SRV = None

# What an error message must never contain (the data directory is added per
# server): source locations, libraries, errno texts, pointers, paths.
LEAKS = [r"\.c:\d+", r"(?i)sqlite", r"(?i)vips", r"(?i)gnutls", r"(?i)no such file",
         r"(?i)permission denied", r"(?i)not a directory", r"0x[0-9a-f]{6,}", r"/tmp/",
         r"/etc/", r"/home/", r"/root", r"/usr/", r"/work", r"(?i)errno", r"(?i)segfault",
         r"(?i)assert"]


def setUpModule():
    global SRV
    SRV = Server("exposure", args=["--workers", "1", "--set", "log_level=debug",
                                   "--set", "access_log=true"]).start()


def tearDownModule():
    if SRV:
        SRV.cleanup()


def raw_request(port, data, timeout=10):
    """Sends raw bytes, returns the raw response (status line, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_of(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else 0


class X01Keys(unittest.TestCase):
    def test_keys_never_in_logs_or_responses(self):
        acct, key = SRV.new_account("pro")
        other_acct, revoked = SRV.new_account("pro")
        SRV.admin("keys", "revoke", revoked)
        wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
        secrets = [key, revoked, wrong]
        bodies = []
        for k in secrets:
            reqs = [
                ("GET", "/v1/account", None, {"Authorization": "Bearer " + k}),
                ("GET", "/v1/account", None, {"Authorization": "Basic " +
                                              base64.b64encode((k + ":").encode()).decode()}),
                ("GET", "/v1/account", None, {"Authorization": k}),
                ("GET", "/v1/account", None, {"X-Api-Key": k}),
                ("GET", "/v1/account?api_key=" + k, None, {}),
                ("GET", "/v1/" + k, None, {"Authorization": "Bearer " + k}),
                ("GET", "/v1/results/" + k + ".png", None, {}),
                ("GET", "/v1/batch/batch_" + k.replace("_", ""), None,
                 {"Authorization": "Bearer " + key}),
                ("GET", "/healthz", None, {"X-Request-ID": k, "Cookie": "k=" + k,
                                           "User-Agent": k, "Referer": "http://x/" + k}),
                ("POST", "/v1/remove", json.dumps({"image_url": "http://" + k + "/",
                                                   "bg_color": k, "output_format": k}).encode(),
                 {"Authorization": "Bearer " + k, "Content-Type": "application/json"}),
                ("POST", "/v1/remove", ("api_key=%s&image_url=%s" % (k, k)).encode(),
                 {"Authorization": "Bearer " + key,
                  "Content-Type": "application/x-www-form-urlencoded"}),
                ("POST", "/v1/remove/batch", json.dumps({"images": [{"image_url": k}],
                                                         "webhook_url": k}).encode(),
                 {"Authorization": "Bearer " + key, "Content-Type": "application/json"}),
            ]
            body, ct = multipart([("bg_color", k), ("max_resolution", k)])
            reqs.append(("POST", "/v1/remove", body, {"Authorization": "Bearer " + key,
                                                      "Content-Type": ct}))
            # A key sent as a parameter *name* comes back to the same client
            # in "Unknown parameter '...'" (messages name the offending
            # field); it must still stay out of the log.
            echoed = SRV.request("POST", "/v1/remove", body=json.dumps({k: 1}).encode(),
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
            self.assertEqual(echoed.status, 400)
            for method, path, data, headers in reqs:
                r = SRV.request(method, path, body=data, headers=headers)
                self.assertLess(r.status, 500, (method, path, r.body[:200]))
                bodies.append((path, r))
                # Only the very key the client sent as its own credential
                # may come back, and then only where the client put it in
                # a parameter it asked to be validated... and not even
                # there: messages quote field names, never values.
                for s in secrets:
                    self.assertNotIn(s.encode(), r.body, (method, path, r.body[:300]))
                    for name, value in r.headers.items():
                        if name.lower() == "x-request-id":
                            continue  # echoed only when it is a sane id (it is: [A-Za-z0-9_])
                        self.assertNotIn(s, value, (method, path, name))
        time.sleep(0.3)
        log = SRV.read_log()
        self.assertIn("/v1/account", log, "the access log is on: it must show requests")
        for s in secrets:
            self.assertNotIn(s, log, "a key reached the server log")
            # Nor a recognisable part of it (the secret half of the key).
            self.assertNotIn(s[-20:], log)

    def test_keys_stored_hashed(self):
        acct, key = SRV.new_account("pro")
        self.assertEqual(SRV.get("/v1/account", key=key).status, 200)
        needle = key.encode()
        secret_part = key.split("_")[-1].encode()
        for root, _, files in os.walk(SRV.data_dir):
            for fn in files:
                with open(os.path.join(root, fn), "rb") as f:
                    data = f.read()
                self.assertNotIn(needle, data, fn)
                self.assertNotIn(secret_part, data, fn)
        dump = SRV.store_dump()  # PostgreSQL: the database is not in the data directory
        if dump is not None:
            self.assertIn(b"CREATE TABLE", dump)
            self.assertNotIn(needle, dump, "a key is stored in the clear in PostgreSQL")
            self.assertNotIn(secret_part, dump, "a key is stored in the clear in PostgreSQL")


class X02Results(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.acct, cls.key = SRV.new_account("pro")
        cls.other_acct, cls.other = SRV.new_account("pro")
        cls.results = []
        for _ in range(3):
            r = SRV.remove_file(cls.key, photo("coffee"), fields=[("max_resolution", "480p")])
            assert r.status == 200, r.body
            cls.results.append(r.data)

    def path_of(self, d):
        m = re.match(r"https?://[^/]+(/.*)$", d["output_url"])
        return m.group(1)

    def test_ids_unguessable(self):
        ids = [d["id"] for d in self.results]
        self.assertEqual(len(set(ids)), 3)
        for i in ids:
            self.assertRegex(i, r"^img_[A-Za-z0-9]{16,}$")
        # Not a counter or a timestamp: no shared prefix beyond chance, and
        # neighbours differ in most positions.
        a, b = ids[0][4:], ids[1][4:]
        self.assertLess(len(os.path.commonprefix([a, b])), 4, ids)
        self.assertGreater(sum(x != y for x, y in zip(a, b)), len(a) // 2, ids)

    def test_no_oracle(self):
        d = self.results[2]
        # Another account cannot delete it, and learns nothing it would not
        # learn from an id that never existed.
        never = "img_" + "Z" * (len(d["id"]) - 4)
        r1 = SRV.request("DELETE", "/v1/images/" + d["id"], key=self.other)
        r2 = SRV.request("DELETE", "/v1/images/" + never, key=self.other)
        self.assertEqual((r1.status, r1.code), (404, "NOT_FOUND"))
        self.assertEqual((r2.status, r2.code), (404, "NOT_FOUND"))
        self.assertEqual(r1.message, r2.message)
        # The owner deletes it: the result URL then answers exactly like one
        # that never existed.
        self.assertEqual(SRV.request("DELETE", "/v1/images/" + d["id"], key=self.key).status, 200)
        g1 = SRV.get(self.path_of(d))
        g2 = SRV.get("/v1/results/%s.png" % never)
        self.assertEqual((g1.status, g2.status), (404, 404))
        self.assertEqual(g1.body, g2.body)

    def test_traversal_and_aliases(self):
        d = self.results[0]
        good = self.path_of(d)
        self.assertEqual(SRV.get(good).status, 200)
        rid, ext = d["id"], good.rsplit(".", 1)[1]
        bad = [
            "/v1/results/../../etc/passwd", "/v1/results/..%2F..%2Fetc%2Fpasswd",
            "/v1/results/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/v1/results/%252e%252e%252fetc%252fpasswd",
            "/v1/results/..%c0%af..%c0%afetc%c0%afpasswd", "/v1/results/..\\..\\etc\\passwd",
            "/v1/results/%2Fetc%2Fpasswd", "/v1/results//etc/passwd", "/v1/results/.",
            "/v1/results/..", "/v1/results/bgremover.db", "/v1/results/..%2Fbgremover.db",
            "/v1/results/%2e%2e/bgremover.db", "/v1/results/img_x.png/../../bgremover.db",
            "/v1/results/%s.%s%%00" % (rid, ext), "/v1/results/%s%%00.%s" % (rid, ext),
            "/v1/results/%s.%s%%00.png" % (rid, ext), "/v1/results/%s.%s/" % (rid, ext),
            "/v1/results/%s.%s/.." % (rid, ext), "/v1/results/%s.%s" % (rid, ext.upper()),
            "/v1/results/%s.%s" % (rid.upper(), ext), "/v1/results/%s" % rid,
            "/v1/results/%s." % rid, "/v1/results/%s.%s.%s" % (rid, ext, ext),
            "/v1/results/%s.jpg" % rid if ext != "jpg" else "/v1/results/%s.png" % rid,
            "/v1/results/%s.%s%%2f" % (rid, ext),
            "/v1/results/img_" + "A" * 5000 + ".png", "/v1/results/img_%s.png" % ("9" * 100),
            "/v1/results/img_.png", "/v1/results/.png", "/v1/results/%s.png~" % rid,
            "/v1/results/img_*.png", "/v1/results/img_%25.png",
        ]
        for p in bad:
            r = SRV.get(p)
            self.assertIn(r.status, (400, 404, 414), p)
            self.assertNotIn(b"root:", r.body, p)
            self.assertNotIn(b"SQLite format", r.body, p)
            self.assertNotIn(b"\x89PNG", r.body, p)
        # The same through raw request targets http.client would not send.
        for target in [b"../../etc/passwd", b"/v1/results/../../../../etc/passwd",
                       b"http://127.0.0.1/v1/results/../../etc/passwd", b"*",
                       b"/v1/results/\x00" + rid.encode() + b"." + ext.encode(),
                       b"/v1/results/" + rid.encode() + b"\x00." + ext.encode(),
                       b"/v1/results/" + rid.encode() + b"." + ext.encode() + b"\x00"]:
            raw = raw_request(SRV.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n")
            st = status_of(raw)
            self.assertNotIn(b"root:", raw)
            self.assertNotIn(b"SQLite format", raw)
            if st == 200:
                # libmicrohttpd ends the request target at a raw NUL byte, so
                # "GOOD\0..." is GOOD itself: allowed, as it names the same
                # file and nothing else (a %00 is kept encoded: 404 above).
                self.assertEqual(target.split(b"\0")[0], good.encode(), target)
                continue
            self.assertIn(st, (0, 400, 404, 414), (target, raw[:200]))
            self.assertNotIn(b"\x89PNG", raw, target)
        # Still serving, and the good URL still works.
        self.assertEqual(SRV.get(good).status, 200)

    def test_symlinked_result_not_followed(self):
        d = self.results[1]
        good = self.path_of(d)
        name = good.rsplit("/", 1)[1]
        found = [os.path.join(r, f) for r, _, fs in os.walk(SRV.data_dir) for f in fs
                 if f == name]
        self.assertEqual(len(found), 1, "the result file should be stored once")
        os.unlink(found[0])
        os.symlink("/etc/passwd", found[0])
        try:
            r = SRV.get(good)
            self.assertNotEqual(r.status, 200)
            self.assertNotIn(b"root:", r.body)
            if r.status >= 500:
                self.check_message(r)
        finally:
            os.unlink(found[0])

    def check_message(self, r):
        msg = r.message
        self.assertNotIn(SRV.data_dir, msg)
        self.assertNotIn(SRV.tmp, msg)
        for pat in LEAKS:
            self.assertIsNone(re.search(pat, msg), "%r leaks %s" % (msg, pat))


class X03Messages(unittest.TestCase):
    """Error messages name fields and limits, never paths or internals."""

    def check(self, r, status=None):
        if status:
            self.assertEqual(r.status, status, r.body[:300])
        self.assertGreaterEqual(r.status, 400)
        j = r.json()
        self.assertIs(j["success"], False)
        msg = j["error"]["message"]
        self.assertTrue(msg)
        self.assertNotIn(SRV.data_dir, msg)
        self.assertNotIn(SRV.tmp, msg)
        for pat in LEAKS:
            self.assertIsNone(re.search(pat, msg), "%r leaks %s" % (msg, pat))
        return msg

    def test_4xx(self):
        acct, key = SRV.new_account("free")
        js = "application/json"
        cases = [
            SRV.get("/nope"), SRV.request("DELETE", "/healthz"), SRV.get("/v1/account"),
            SRV.get("/v1/account", key="bgr_live_" + "x" * 40),
            SRV.request("POST", "/v1/remove", body=b"{", key=key, ctype=js),
            SRV.request("POST", "/v1/remove", body=b"\xff\xfe{}", key=key, ctype=js),
            SRV.request("POST", "/v1/remove", body=b"[" * 100 + b"]" * 100, key=key, ctype=js),
            SRV.request("POST", "/v1/remove", body=b'{"image_url":"file:///etc/passwd"}',
                        key=key, ctype=js),
            SRV.request("POST", "/v1/remove", body=b'{"image_url":"http://127.0.0.1:1/x"}',
                        key=key, ctype=js),
            SRV.request("POST", "/v1/remove", body=b"x", key=key, ctype="text/plain"),
            SRV.request("POST", "/v1/remove", body=b"--x--", key=key,
                        ctype="multipart/form-data; boundary=y"),
            SRV.remove_file(key, b"GIF89a" + b"\0" * 40, filename="../../etc/passwd"),
            SRV.remove_file(key, b"not an image", filename="/etc/passwd"),
            SRV.remove_file(key, b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
            SRV.remove_file(key, open("/usr/lib/python3/dist-packages/skimage/data/"
                                      "chessboard_GRAY_U16.tif", "rb").read()[:200]),
            SRV.remove_file(key, b'<svg xmlns="http://www.w3.org/2000/svg" width="9" '
                            b'height="9"><image href="file:///etc/passwd"/></svg>'),
            SRV.get("/v1/batch/batch_doesnotexist", key=key),
            SRV.get("/v1/batch/../../etc/passwd", key=key),
            SRV.request("POST", "/v1/remove/batch", body=b'{"images":[]}', key=key, ctype=js),
            SRV.request("POST", "/v1/remove/batch",
                        body=b'{"images":[{"image_url":"gopher://x/"}]}', key=key, ctype=js),
        ]
        for r in cases:
            self.check(r)
            self.assertLess(r.status, 500, r.body[:300])
        # 413 from the declared length alone, to a client that waits for
        # "100 Continue" before it sends (so this one goes over a raw
        # socket; clients that send at once are tests/api/test_clients.py).
        key = SRV.new_account("free")[1]  # the first one is rate-limited by now
        raw = raw_request(SRV.port, ("POST /v1/remove HTTP/1.1\r\nHost: x\r\n"
                                     "Authorization: Bearer %s\r\nContent-Type: image/png\r\n"
                                     "Expect: 100-continue\r\n"
                                     "Content-Length: %d\r\n\r\n" % (key, 11 << 20)).encode())
        self.assertEqual(status_of(raw), 413, raw[:200])
        msg = json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]["message"]
        for pat in LEAKS:
            self.assertIsNone(re.search(pat, msg), "%r leaks %s" % (msg, pat))

    def test_5xx_storage_failure(self):
        """The results directory replaced by a file: the write fails, the
        client gets a 5xx that says so without naming the path or errno."""
        acct, key = SRV.new_account("pro")
        results = os.path.join(SRV.data_dir, "results")
        self.assertTrue(os.path.isdir(results), os.listdir(SRV.data_dir))
        moved = results + ".moved"
        os.rename(results, moved)
        with open(results, "w") as f:
            f.write("not a directory")
        try:
            r = SRV.remove_file(key, photo("coffee"), fields=[("max_resolution", "480p")])
            self.assertGreaterEqual(r.status, 500, r.body[:300])
            self.check(r)
        finally:
            os.unlink(results)
            os.rename(moved, results)
        # It recovers once the directory is back.
        self.assertEqual(SRV.get("/readyz").status, 200)
