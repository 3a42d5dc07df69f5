"""Black-box tests of the Bg Remover API v1 (`bgremover serve`).

Servers (started once, shared by the tests that fit them):
  MAIN  pro-plan defaults, --allow-private-urls, fast webhook retries;
  TINY  tiny plan limits (rate, daily, credits, size), short retention and a
        fast sweeper, private URLs NOT allowed;
  plus short-lived servers for batch resumption after kill -9, TLS, a
  one-slot queue, and configuration precedence.
The model runs about 25 times in all.
"""
import base64
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from bgrtest import (BIN, REPO, Listener, Server, check_signature, child_env, fresh_store_argv,
                     make_cert, multipart, photo, png_bomb, png_size)

MAIN = None
TINY = None
FILES = None  # Listener serving the photos for image_url


def setUpModule():
    global MAIN, TINY, FILES
    FILES = Listener(files={"/astronaut.png": photo("astronaut"), "/chelsea.png": photo("chelsea"),
                            "/coffee.png": photo("coffee"), "/text.png": b"not an image at all"})
    MAIN = Server("main", args=["--allow-private-urls", "--workers", "2",
                                "--set", "webhook_retry_base_s=1"]).start()
    TINY = Server("tiny", config="""
# tiny limits so the tests can exhaust them
plan.free.per_minute = 5
plan.free.per_day = unlimited
plan.free.monthly_credits = 2
plan.free.max_bytes = 300000
plan.pro.per_minute = 100
plan.pro.per_day = 4
plan.enterprise.retention_s = 2
sweep_interval_s = 1
""").start()


def tearDownModule():
    for s in (MAIN, TINY):
        if s:
            s.cleanup()
    if FILES:
        FILES.close()


def wait_minute_start(margin=8):
    """Per-minute windows are UTC minutes: avoid starting near a boundary."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.5)


class T01Basics(unittest.TestCase):
    def test_health_ready(self):
        r = MAIN.get("/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"success": True, "data": {"status": "ok"}})
        self.assertEqual(r.header("Content-Type"), "application/json")
        r = MAIN.get("/readyz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.data["status"], "ready")

    def test_request_ids(self):
        r = MAIN.get("/healthz", headers={"X-Request-ID": "client-id_1.2"})
        self.assertEqual(r.header("X-Request-ID"), "client-id_1.2")
        for bad in ("has space", "x" * 65, "semi;colon", ""):
            r = MAIN.get("/healthz", headers={"X-Request-ID": bad})
            rid = r.header("X-Request-ID")
            self.assertNotEqual(rid, bad)
            self.assertRegex(rid, r"^req_[0-9a-f]{24}$")
        a, b = MAIN.get("/healthz"), MAIN.get("/healthz")
        self.assertNotEqual(a.header("X-Request-ID"), b.header("X-Request-ID"))

    def test_unknown_route_and_method(self):
        r = MAIN.get("/v1/nothing")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.json()["success"], False)
        self.assertEqual(r.code, "NOT_FOUND")
        self.assertTrue(r.header("X-Request-ID"))
        r = MAIN.request("GET", "/v1/remove")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.code, "METHOD_NOT_ALLOWED")
        self.assertEqual(r.header("Allow"), "POST")
        r = MAIN.request("DELETE", "/v1/account")
        self.assertEqual(r.status, 405)

    def test_openapi_is_the_repo_file(self):
        r = MAIN.get("/v1/openapi.json")
        self.assertEqual(r.status, 200)
        with open(os.path.join(REPO, "docs", "openapi.json"), "rb") as f:
            repo = json.load(f)
        doc = r.json()
        # the repository's document, but for "servers", which names this server (its
        # public_url: without --public-url, localhost and the port it listens on)
        self.assertEqual(doc["servers"], [{"url": "http://localhost:%d" % MAIN.port,
                                           "description": "this server (its public_url)"}])
        repo["servers"] = doc["servers"]
        self.assertEqual(doc, repo)
        self.assertTrue(doc["openapi"].startswith("3.1"))
        for p in ("/v1/remove", "/v1/remove/batch", "/v1/batch/{batch_id}", "/v1/account",
                  "/v1/usage", "/v1/images/{image_id}", "/v1/results/{file}", "/healthz",
                  "/readyz", "/metrics", "/v1/openapi.json"):
            self.assertIn(p, doc["paths"])

    def test_conf_example_documents_every_option(self):
        out = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True).stdout
        keys = re.findall(r"^  ([a-z_.]+)\s+(BGR_[A-Z_]+)\s", out, re.M)
        self.assertGreater(len(keys), 20)
        with open(os.path.join(REPO, "conf", "bgremover.conf.example")) as f:
            conf = f.read()
        for key, env in keys:
            self.assertRegex(conf, r"(?m)^#?\s*%s\s*=" % re.escape(key), key)
            self.assertIn(env, conf)


class T02Auth(unittest.TestCase):
    def test_missing_malformed_unknown_revoked(self):
        acct, key = MAIN.new_account("pro")
        cases = [None, "Basic abc", "Bearer", "Bearer bgr_live_" + "A" * 43, "Bearer " + key + "x",
                 "Bearer nonsense"]
        for h in cases:
            r = MAIN.get("/v1/account", headers={"Authorization": h} if h else {})
            self.assertEqual(r.status, 401, h)
            self.assertEqual(r.code, "UNAUTHORIZED")
            self.assertFalse(r.json()["success"])
            self.assertIsNone(r.header("X-RateLimit-Limit"))
        self.assertEqual(MAIN.get("/v1/account", key=key).status, 200)
        MAIN.admin("keys", "revoke", key)
        r = MAIN.get("/v1/account", key=key)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.code, "UNAUTHORIZED")

    def test_key_never_logged(self):
        acct, key = MAIN.new_account("pro")
        MAIN.get("/v1/account", key=key, headers={"X-Request-ID": "log-check-1"})
        time.sleep(0.2)
        log = MAIN.read_log()
        self.assertNotIn(key, log)
        line = [l for l in log.splitlines() if "log-check-1" in l]
        self.assertTrue(line, "no access-log line with the request id")
        self.assertIn("GET /v1/account 200", line[0])


class T03Remove(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.acct, cls.key = MAIN.new_account("pro")

    def check_result(self, r, fmt, ext, magic):
        self.assertEqual(r.status, 200, r.body)
        d = r.data
        self.assertEqual(list(d.keys()), ["id", "output_url", "format", "width", "height",
                                          "original_width", "original_height", "file_size_bytes",
                                          "processing_time_ms", "credits_used", "expires_at",
                                          "confidence", "subject"])
        self.assertRegex(d["id"], r"^img_[A-Za-z0-9]{16,}$")
        self.assertTrue(0 <= d["confidence"] <= 1, d)
        s = d["subject"]  # every test photo has a subject, inside the output
        self.assertEqual(list(s.keys()), ["x", "y", "width", "height"])
        self.assertTrue(0 <= s["x"] and s["x"] + s["width"] <= d["width"], d)
        self.assertTrue(0 <= s["y"] and s["y"] + s["height"] <= d["height"], d)
        self.assertTrue(s["width"] > 0 and s["height"] > 0, d)
        self.assertEqual(d["format"], fmt)
        self.assertEqual(d["output_url"], "%s/v1/results/%s.%s" % (MAIN.base.replace(
            "127.0.0.1", "localhost"), d["id"], ext))
        self.assertEqual(d["credits_used"], 1)
        self.assertRegex(d["expires_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIsNotNone(r.header("X-RateLimit-Limit"))
        out = MAIN.fetch_url(d["output_url"])
        self.assertEqual(out.status, 200)
        self.assertTrue(out.body.startswith(magic), out.body[:16])
        self.assertEqual(len(out.body), d["file_size_bytes"])
        self.assertEqual(out.header("Content-Type"), {"png": "image/png", "webp": "image/webp",
                                                       "jpg": "image/jpeg"}[ext])
        self.assertTrue(out.header("ETag"))
        self.assertRegex(out.header("Cache-Control"), r"max-age=\d+")
        return d, out

    def test_multipart_png_default(self):
        r = MAIN.remove_file(self.key, photo("astronaut"))
        d, out = self.check_result(r, "png", "png", b"\x89PNG")
        self.assertEqual((d["width"], d["height"]), (512, 512))
        self.assertEqual((d["original_width"], d["original_height"]), (512, 512))
        w, h, ctype = png_size(out.body)
        self.assertEqual((w, h, ctype), (512, 512, 6))  # RGBA: transparent background
        # conditional GET
        r2 = MAIN.fetch_url(d["output_url"].replace(".png", ".png"))
        self.assertEqual(r2.header("ETag"), out.header("ETag"))
        c = MAIN.conn()
        c.request("GET", "/v1/results/%s.png" % d["id"], headers={"If-None-Match": out.header("ETag")})
        self.assertEqual(c.getresponse().status, 304)
        c.close()
        # another extension for the same id is not an alias
        self.assertEqual(MAIN.get("/v1/results/%s.webp" % d["id"]).status, 404)

    def test_json_b64_webp_quality(self):
        body = {"image_file_b64": base64.b64encode(photo("chelsea")).decode(),
                "output_format": "webp", "output_quality": 60}
        r = MAIN.request("POST", "/v1/remove", body=body, key=self.key)
        d, out = self.check_result(r, "webp", "webp", b"RIFF")
        self.assertEqual(out.body[8:12], b"WEBP")
        self.assertEqual((d["original_width"], d["original_height"]), (451, 300))

    def test_jpeg_bg_color_multipart_fields(self):
        r = MAIN.remove_file(self.key, photo("coffee"),
                             fields=[("output_format", "jpeg"), ("bg_color", "#00FF00"),
                                     ("output_quality", "80"), ("crop", "0")])
        d, out = self.check_result(r, "jpeg", "jpg", b"\xff\xd8\xff")
        self.assertEqual((d["width"], d["height"]), (600, 400))

    def test_max_resolution_and_crop(self):
        r = MAIN.remove_file(self.key, photo("astronaut"),
                             fields=[("max_resolution", "480p"), ("crop", "true")])
        d, out = self.check_result(r, "png", "png", b"\x89PNG")
        self.assertLessEqual(d["height"], 480)
        self.assertLessEqual(d["width"], 854)
        self.assertTrue(d["width"] < 512 or d["height"] < 480)  # cropped to the subject
        w, h, _ = png_size(out.body)
        self.assertEqual((w, h), (d["width"], d["height"]))
        self.assertEqual((d["original_width"], d["original_height"]), (512, 512))

    def test_quality_options(self):
        # output_type=mask: the matte alone, a grayscale PNG whatever the format asked
        r = MAIN.remove_file(self.key, photo("chelsea"),
                             fields=[("output_type", "mask"), ("output_format", "webp")])
        d, out = self.check_result(r, "png", "png", b"\x89PNG")
        self.assertEqual(png_size(out.body), (451, 300, 0))  # colour type 0: grayscale
        # crop_margin widens the crop around the subject (pixels, clamped to the image)
        tight = MAIN.remove_file(self.key, photo("chelsea"),
                                 fields=[("crop", "true"), ("refine", "none"),
                                         ("decontaminate", "false")]).data
        body = {"image_file_b64": base64.b64encode(photo("chelsea")).decode(), "crop": True,
                "crop_margin": 10, "refine": "none", "decontaminate": False}
        wide = MAIN.request("POST", "/v1/remove", body=body, key=self.key).data
        self.assertGreater(wide["width"], tight["width"])
        self.assertLessEqual(wide["width"], min(451, tight["width"] + 20))
        self.assertLessEqual(wide["height"], min(300, tight["height"] + 20))

    def test_image_url_json_and_urlencoded(self):
        r = MAIN.request("POST", "/v1/remove", key=self.key,
                         body={"image_url": FILES.url("/chelsea.png"), "output_format": "png",
                               "crop": False, "max_resolution": "original"})
        d, _ = self.check_result(r, "png", "png", b"\x89PNG")
        self.assertEqual((d["width"], d["height"]), (451, 300))
        # an unreachable path on the same server: a download failure, no credit
        r = MAIN.request("POST", "/v1/remove", key=self.key, ctype="application/x-www-form-urlencoded",
                         body=("image_url=" + FILES.url("/missing.png")).encode())
        self.assertEqual(r.status, 400)
        self.assertEqual(r.code, "IMAGE_DOWNLOAD_FAILED")

    def test_concurrent_requests_not_blocked_by_inference(self):
        # No clock involved: three uploads keep the model busy for several
        # runs; account calls made meanwhile must all be answered while at
        # least one upload is still unanswered. (If inference were on the
        # request path of /v1/account they would queue behind the uploads.)
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            futs = [ex.submit(MAIN.remove_file, self.key, photo(p))
                    for p in ("coffee", "chelsea", "astronaut")]
            time.sleep(0.2)
            for _ in range(3):
                self.assertEqual(MAIN.get("/v1/account", key=self.key).status, 200)
            self.assertFalse(all(f.done() for f in futs))
            for f in futs:
                self.assertIn(f.result().status, (200, 503))


class T04Validation(unittest.TestCase):
    """Every refusal that needs no model run."""

    @classmethod
    def setUpClass(cls):
        cls.acct, cls.key = MAIN.new_account("pro")

    def expect(self, r, status, code, field=None):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.code, code, r.body)
        if field:
            self.assertIn(field, r.message)

    def test_bad_values_name_the_field(self):
        png = photo("chelsea")
        for name, value in [("output_format", "gif"), ("output_quality", "0"),
                            ("output_quality", "101"), ("output_quality", "abc"),
                            ("bg_color", "red"), ("bg_color", "#GGGGGG"),
                            ("max_resolution", "4k"), ("crop", "maybe"),
                            ("output_type", "matte"), ("crop_margin", "-5"),
                            ("crop_margin", "150%"), ("refine", "best"),
                            ("decontaminate", "perhaps"),
                            ("webhook_url", "ftp://example.com/x"), ("webhook_url", "not a url")]:
            r = MAIN.remove_file(self.key, png, fields=[(name, value)])
            self.expect(r, 400, "INVALID_PARAMETER", name)
        for body, field in [({"image_url": "https://example.com/a.png", "output_quality": "90"},
                             "output_quality"),
                            ({"image_url": "https://example.com/a.png", "crop": "true"}, "crop"),
                            ({"image_url": "javascript:alert(1)"}, "image_url"),
                            ({"image_url": "http://user:pw@example.com/a.png"}, "image_url"),
                            ({"image_url": 12}, "image_url"),
                            ({"image_url": "https://example.com/a.png", "surprise": 1}, "surprise")]:
            r = MAIN.request("POST", "/v1/remove", body=body, key=self.key)
            self.expect(r, 400, "INVALID_PARAMETER", field)

    def test_sources(self):
        png = photo("chelsea")
        body, ct = multipart([("image_url", FILES.url("/chelsea.png"))],
                             [("image_file", "a.png", png, "image/png")])
        self.expect(MAIN.request("POST", "/v1/remove", body=body, key=self.key, ctype=ct), 400,
                    "MULTIPLE_SOURCES")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key,
                                 body={"image_url": FILES.url("/a.png"),
                                       "image_file_b64": base64.b64encode(png).decode()}),
                    400, "MULTIPLE_SOURCES")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body={}), 400, "MISSING_IMAGE")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body={"image_url": None}),
                    400, "MISSING_IMAGE")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body=b""), 400, "MISSING_IMAGE")
        body, ct = multipart([("output_format", "png")])
        self.expect(MAIN.request("POST", "/v1/remove", body=body, key=self.key, ctype=ct), 400,
                    "MISSING_IMAGE")
        self.expect(MAIN.remove_file(self.key, b""), 400, "MISSING_IMAGE")
        # blank form inputs are "not given": a blank file with a URL is one source
        body, ct = multipart([("image_url", "not a url"), ("bg_color", "")],
                             [("image_file", "", b"", "application/octet-stream")])
        self.expect(MAIN.request("POST", "/v1/remove", body=body, key=self.key, ctype=ct), 400,
                    "INVALID_PARAMETER", "image_url")
        body, ct = multipart([("crop", "true"), ("crop", "false")],
                             [("image_file", "a.png", png, "image/png")])
        self.expect(MAIN.request("POST", "/v1/remove", body=body, key=self.key, ctype=ct), 400,
                    "INVALID_PARAMETER", "crop")

    def test_bodies(self):
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body=b"{not json",
                                 ctype="application/json"), 400, "INVALID_JSON")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body=b"[1,2]",
                                 ctype="application/json"), 400, "INVALID_JSON")
        deep = b"{\"a\":" * 50 + b"1" + b"}" * 50
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body=deep,
                                 ctype="application/json"), 400, "INVALID_JSON")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body=b"hello",
                                 ctype="text/plain"), 415, "UNSUPPORTED_FORMAT")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key, body=b"--x\r\nbroken",
                                 ctype="multipart/form-data; boundary=x"), 400, "INVALID_PARAMETER")
        self.expect(MAIN.request("POST", "/v1/remove", key=self.key,
                                 body={"image_file_b64": "!!!notbase64"}),
                    400, "INVALID_PARAMETER", "image_file_b64")

    def test_unsupported_image_and_bomb(self):
        self.expect(MAIN.remove_file(self.key, b"GIF89a this is not really an image" * 10),
                    415, "UNSUPPORTED_FORMAT")
        r = MAIN.remove_file(self.key, png_bomb())
        self.expect(r, 400, "RESOLUTION_TOO_HIGH")
        acct = MAIN.get("/v1/account", key=self.key).data
        self.assertEqual(acct["usage_this_month"]["credits_used"], 0)  # failures are free

    def test_size_limit_before_reading(self):
        # The declared length alone is refused: no body byte is sent.
        s = socket.create_connection(("127.0.0.1", MAIN.port), timeout=10)
        s.sendall(("POST /v1/remove HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: multipart/form-data; boundary=b\r\n"
                   "Content-Length: 900000000\r\n\r\n" % self.key).encode())
        head = s.recv(65536).decode("latin-1")
        s.close()
        self.assertTrue(head.startswith("HTTP/1.1 413"), head[:200])
        self.assertIn("FILE_TOO_LARGE", head)
        self.assertIn("X-RateLimit-Limit", head)

    def test_size_limit_free_plan(self):
        acct, key = TINY.new_account("free")  # max_bytes 300000 on TINY
        big = os.urandom(310000)
        r = TINY.remove_file(key, big)
        self.expect(r, 413, "FILE_TOO_LARGE")
        r = TINY.request("POST", "/v1/remove", key=key,
                         body={"image_file_b64": base64.b64encode(big).decode()})
        self.expect(r, 413, "FILE_TOO_LARGE")
        # A chunked upload has no length to check: counted as it streams.
        c = TINY.conn()
        body, ct = multipart([], [("image_file", "x.png", os.urandom(600000), "image/png")])
        c.putrequest("POST", "/v1/remove")
        c.putheader("Authorization", "Bearer " + key)
        c.putheader("Content-Type", ct)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        try:
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                c.send(b"%x\r\n%s\r\n" % (len(part), part))
            c.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server may close once it has answered
        r = c.getresponse()
        self.assertEqual(r.status, 413)
        c.close()


class T05Limits(unittest.TestCase):
    def test_rate_limit_per_minute(self):
        acct, key = TINY.new_account("free")  # 5 per minute
        wait_minute_start()
        seen = []
        for i in range(5):
            r = TINY.get("/v1/account", key=key)
            self.assertEqual(r.status, 200)
            seen.append(int(r.header("X-RateLimit-Remaining")))
            self.assertEqual(r.header("X-RateLimit-Limit"), "5")
        self.assertEqual(seen, [4, 3, 2, 1, 0])
        r = TINY.get("/v1/account", key=key)
        self.assertEqual(r.status, 429)
        self.assertEqual(r.code, "RATE_LIMITED")
        self.assertEqual(r.header("X-RateLimit-Remaining"), "0")
        reset = int(r.header("X-RateLimit-Reset"))
        self.assertEqual(reset % 60, 0)
        self.assertTrue(0 < reset - time.time() <= 61)
        self.assertTrue(1 <= int(r.header("Retry-After")) <= 61)

    def test_daily_limit(self):
        acct, key = TINY.new_account("pro")  # 100 per minute, 4 per day
        for i in range(4):
            self.assertEqual(TINY.get("/v1/usage", key=key).status, 200)
        r = TINY.get("/v1/account", key=key)
        self.assertEqual(r.status, 429)
        self.assertEqual(r.code, "DAILY_LIMIT_EXCEEDED")
        self.assertTrue(r.header("Retry-After"))
        self.assertTrue(r.header("X-RateLimit-Limit"))

    def test_credits(self):
        acct, key = TINY.new_account("free")  # 2 credits, 5 requests per minute
        png = photo("chelsea")
        a = TINY.get("/v1/account", key=key).data
        self.assertEqual((a["credits_total"], a["credits_remaining"]), (2, 2))
        for i in range(2):
            self.assertEqual(TINY.remove_file(key, png).status, 200)
        r = TINY.remove_file(key, png)
        self.assertEqual(r.status, 402, r.body)
        self.assertEqual(r.code, "INSUFFICIENT_CREDITS")
        a = TINY.get("/v1/account", key=key).data
        self.assertEqual(a["credits_remaining"], 0)
        self.assertEqual(a["usage_this_month"]["credits_used"], 2)
        self.assertEqual(a["usage_this_month"]["images_processed"], 2)
        self.assertEqual(a["plan"], "free")
        self.assertEqual(a["rate_limit"], {"requests_per_minute": 5, "daily_limit": None})

    def test_private_urls_refused_without_flag(self):
        acct, key = TINY.new_account("enterprise")
        gets = FILES.gets
        for url in (FILES.url("/chelsea.png"), "http://localhost:%d/chelsea.png" % FILES.port,
                    "http://2130706433:%d/chelsea.png" % FILES.port, "http://[::1]/x.png",
                    "http://169.254.169.254/latest/meta-data/"):
            r = TINY.request("POST", "/v1/remove", key=key, body={"image_url": url})
            self.assertEqual(r.status, 400, url)
            self.assertIn(r.code, ("IMAGE_DOWNLOAD_FAILED", "INVALID_PARAMETER"), url)
        self.assertEqual(FILES.gets, gets)  # nothing reached the listener


class T06AccountUsage(unittest.TestCase):
    def test_account_fields(self):
        acct, key = MAIN.new_account("enterprise", email="ent@example.com")
        r = MAIN.get("/v1/account", key=key)
        self.assertEqual(r.status, 200)
        d = r.data
        self.assertEqual(list(d.keys()), ["id", "email", "plan", "credits_remaining",
                                          "credits_total", "rate_limit", "usage_this_month"])
        self.assertEqual(d["id"], acct)
        self.assertEqual(d["email"], "ent@example.com")
        self.assertEqual(d["plan"], "enterprise")
        self.assertIsNone(d["credits_total"])
        self.assertEqual(d["rate_limit"], {"requests_per_minute": 200, "daily_limit": None})
        self.assertEqual(d["usage_this_month"], {"images_processed": 0, "credits_used": 0,
                                                 "api_calls": 0})
        d = MAIN.get("/v1/account", key=key).data
        self.assertEqual(d["usage_this_month"]["api_calls"], 1)
        MAIN.admin("accounts", "set-plan", acct, "free")
        d = MAIN.get("/v1/account", key=key).data
        self.assertEqual((d["plan"], d["credits_total"]), ("free", 50))

    def test_usage_arithmetic(self):
        acct, key = MAIN.new_account("pro")
        calls = 0
        for _ in range(3):
            self.assertEqual(MAIN.get("/v1/account", key=key).status, 200)
            calls += 1
        self.assertEqual(MAIN.remove_file(key, photo("chelsea")).status, 200)
        calls += 1
        self.assertEqual(MAIN.remove_file(key, b"garbage bytes" * 10).status, 415)
        calls += 1
        self.assertEqual(MAIN.request("POST", "/v1/remove", key=key, body={}).status, 400)
        calls += 1
        today = time.strftime("%Y-%m-%d", time.gmtime())
        r = MAIN.get("/v1/usage", key=key)
        self.assertEqual(r.status, 200)
        d = r.data
        self.assertEqual(d["period"]["end"], today)
        self.assertEqual(d["period"]["start"], today[:8] + "01")
        self.assertEqual(d["total_requests"], calls)
        self.assertEqual(d["total_credits_used"], 1)
        self.assertGreater(d["avg_processing_time_ms"], 0)
        self.assertEqual(d["daily"][0], {"date": today, "requests": calls, "credits": 1})
        self.assertEqual(len(d["daily"]), int(today[8:]))  # every day of the month so far
        self.assertTrue(all(x["requests"] == 0 for x in d["daily"][1:]))
        calls += 1
        d = MAIN.get("/v1/usage?granularity=monthly&start_date=%s&end_date=%s" % (today, today),
                     key=key).data
        self.assertEqual(d["monthly"][0]["requests"], calls)
        self.assertEqual(d["period"], {"start": today, "end": today})
        calls += 1
        d = MAIN.get("/v1/usage?granularity=weekly&start_date=2020-01-01T00:00:00Z", key=key).data
        self.assertEqual(d["total_requests"], calls)
        self.assertEqual(d["period"]["start"], "2020-01-01")
        self.assertEqual(sum(x["requests"] for x in d["weekly"]), calls)
        for q, field in [("start_date=2026-02-30", "start_date"), ("end_date=yesterday", "end_date"),
                         ("granularity=hourly", "granularity"),
                         ("start_date=2026-03-01&end_date=2026-02-01", "start_date"),
                         ("color=blue", "color")]:
            r = MAIN.get("/v1/usage?" + q, key=key)
            self.assertEqual(r.status, 400, q)
            self.assertEqual(r.code, "INVALID_PARAMETER")
            self.assertIn(field, r.message)


class T07DeleteExpiry(unittest.TestCase):
    def test_delete(self):
        acct, key = MAIN.new_account("pro")
        other_acct, other = MAIN.new_account("pro")
        d = MAIN.remove_file(key, photo("chelsea"), fields=[("output_format", "webp")]).data
        self.assertEqual(MAIN.fetch_url(d["output_url"]).status, 200)
        r = MAIN.request("DELETE", "/v1/images/" + d["id"], key=other)
        self.assertEqual(r.status, 404)
        self.assertEqual(MAIN.fetch_url(d["output_url"]).status, 200)
        r = MAIN.request("DELETE", "/v1/images/" + d["id"], key=key)
        self.assertEqual(r.status, 200)
        self.assertEqual(list(r.data.keys()), ["id", "deleted", "deleted_at"])
        self.assertEqual(r.data["id"], d["id"])
        self.assertIs(r.data["deleted"], True)
        self.assertRegex(r.data["deleted_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        g = MAIN.fetch_url(d["output_url"])
        self.assertEqual(g.status, 404)
        self.assertEqual(g.code, "NOT_FOUND")
        self.assertEqual(MAIN.request("DELETE", "/v1/images/" + d["id"], key=key).status, 404)
        self.assertFalse(os.path.exists(os.path.join(MAIN.data_dir, "results",
                                                     d["id"] + ".webp")))
        for bad in ("img_doesnotexist", "img_..%2F..%2Fbgremover.db", "..", "img_a.b"):
            self.assertEqual(MAIN.request("DELETE", "/v1/images/" + bad, key=key).status, 404)
        for bad in ("..%2Fbgremover.db", "img_x.png", "bgremover.db", "%2e%2e", "img_.png"):
            self.assertEqual(MAIN.get("/v1/results/" + bad).status, 404, bad)
        self.assertEqual(MAIN.get("/v1/results/../bgremover.db").status, 404)

    def test_expiry_and_sweeper(self):
        acct, key = TINY.new_account("enterprise")  # retention 2 s, sweep every 1 s
        r = TINY.remove_file(key, photo("chelsea"))
        self.assertEqual(r.status, 200, r.body)
        d = r.data
        path = os.path.join(TINY.data_dir, "results", d["id"] + ".png")
        self.assertEqual(TINY.fetch_url(d["output_url"]).status, 200)
        self.assertTrue(os.path.exists(path))
        time.sleep(4.5)
        self.assertEqual(TINY.fetch_url(d["output_url"]).status, 404)
        self.assertFalse(os.path.exists(path), "the sweeper left the expired file")
        self.assertEqual(TINY.request("DELETE", "/v1/images/" + d["id"], key=key).status, 404)


class T08Batch(unittest.TestCase):
    def test_batch_to_completion_with_webhook(self):
        hook = Listener()
        try:
            acct, key = MAIN.new_account("pro")
            secret = MAIN.webhook_secret(acct)
            body = {"images": [{"image_url": FILES.url("/chelsea.png")},
                               {"image_url": FILES.url("/coffee.png"), "output_format": "jpeg"},
                               {"image_url": FILES.url("/missing.png")}],
                    "output_format": "webp", "webhook_url": hook.url("/batch-done")}
            r = MAIN.request("POST", "/v1/remove/batch", body=body, key=key)
            self.assertEqual(r.status, 202, r.body)
            d = r.data
            self.assertEqual(list(d.keys()), ["batch_id", "total_images", "status",
                                              "estimated_time_ms", "poll_url"])
            self.assertRegex(d["batch_id"], r"^batch_[A-Za-z0-9]+$")
            self.assertEqual(d["total_images"], 3)
            self.assertEqual(d["status"], "processing")
            self.assertGreaterEqual(d["estimated_time_ms"], 0)
            self.assertTrue(d["poll_url"].endswith("/v1/batch/" + d["batch_id"]))
            st = self.poll(MAIN, key, d["poll_url"])
            self.assertEqual(st["status"], "completed")
            self.assertEqual((st["total_images"], st["completed"], st["failed"]), (3, 2, 1))
            res = st["results"]
            self.assertEqual(len(res), 3)
            self.assertTrue(res[0]["output_url"].endswith(".webp"))
            self.assertTrue(res[1]["output_url"].endswith(".jpg"))
            self.assertEqual(res[2]["error"]["code"], "IMAGE_DOWNLOAD_FAILED")
            for item in res[:2]:
                self.assertRegex(item["id"], r"^img_")
                self.assertGreater(item["processing_time_ms"], 0)
                self.assertTrue(0 <= item["confidence"] <= 1, item)
                self.assertGreater(item["subject"]["width"], 0)
                self.assertLessEqual(item["subject"]["x"] + item["subject"]["width"], item["width"])
                self.assertEqual(MAIN.fetch_url(item["output_url"]).status, 200)
            got = hook.wait_for(lambda rec: rec["path"] == "/batch-done", 30)
            self.assertEqual(len(got), 1)
            check_signature(self, got[0], secret)
            ev = json.loads(got[0]["body"])
            self.assertEqual(ev["event"], "batch.completed")
            self.assertEqual(ev["data"]["batch_id"], d["batch_id"])
            self.assertIn("created_at", ev)
            a = MAIN.get("/v1/account", key=key).data
            self.assertEqual(a["usage_this_month"]["credits_used"], 2)
            # another account cannot see it
            _, other = MAIN.new_account("pro")
            self.assertEqual(MAIN.fetch_url(d["poll_url"]).status, 401)
            r = MAIN.get("/v1/batch/" + d["batch_id"], key=other)
            self.assertEqual((r.status, r.code), (404, "NOT_FOUND"))
            self.assertEqual(MAIN.get("/v1/batch/batch_nope", key=key).status, 404)
            self.assertEqual(MAIN.get("/v1/batch/..", key=key).status, 404)
        finally:
            hook.close()

    # Every option of POST /v1/remove, one at a time, as a batch item gives
    # the same bytes as the synchronous request (an earlier store kept 7 of
    # 11 fields and ran every item with refine=none, decontaminate=false,
    # crop_margin=0); an item without options gets the synchronous defaults.
    ITEM_OPTIONS = [
        {},
        {"output_format": "webp"},
        {"output_format": "jpeg", "output_quality": 40},
        {"output_quality": 30, "output_format": "webp"},
        {"bg_color": "#336699"},
        {"max_resolution": "480p"},
        {"crop": True},
        {"crop": True, "crop_margin": "10%"},
        {"crop": True, "crop_margin": 7},
        {"output_type": "mask"},
        {"refine": "none"},
        {"refine": "full"},
        {"decontaminate": False},
    ]

    def test_item_options_match_sync(self):
        _, key = MAIN.new_account("enterprise")  # polls count against the minute limit
        url = FILES.url("/chelsea.png")
        items = [dict(opts, image_url=url) for opts in self.ITEM_OPTIONS]
        r = MAIN.request("POST", "/v1/remove/batch", body={"images": items}, key=key)
        self.assertEqual(r.status, 202, r.body)
        st = self.poll(MAIN, key, r.data["poll_url"])
        self.assertEqual(st["completed"], len(items), st)
        # batch-level options are defaults for items, overridden per item
        r2 = MAIN.request("POST", "/v1/remove/batch", key=key, body={
            "refine": "none", "decontaminate": False,
            "images": [{"image_url": url}, {"image_url": url, "refine": "full"}]})
        self.assertEqual(r2.status, 202, r2.body)
        st2 = self.poll(MAIN, key, r2.data["poll_url"])
        self.assertEqual(st2["completed"], 2, st2)
        cases = [(opts, st["results"][i]) for i, opts in enumerate(self.ITEM_OPTIONS)]
        cases += [({"refine": "none", "decontaminate": False}, st2["results"][0]),
                  ({"refine": "full", "decontaminate": False}, st2["results"][1])]
        distinct = set()
        for opts, item in cases:
            sync = MAIN.request("POST", "/v1/remove", body=dict(opts, image_url=url), key=key)
            self.assertEqual(sync.status, 200, sync.body)
            want = MAIN.fetch_url(sync.data["output_url"]).body
            got = MAIN.fetch_url(item["output_url"]).body
            self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(want).hexdigest(),
                             "batch item with %r differs from the sync request" % (opts,))
            for k in ("width", "height", "output_format"):
                if k in sync.data:
                    self.assertEqual(item.get(k), sync.data[k], (opts, k))
            distinct.add(hashlib.sha256(got).hexdigest())
        # each option changed the result: none of them was dropped on both sides
        self.assertEqual(len(distinct), len(self.ITEM_OPTIONS), "an option had no effect")

    def poll(self, server, key, url, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.match(r"https?://[^/]+(/.*)$", url)
            r = server.get(m.group(1), key=key)
            if r.status == 429:  # polling as a client would: the minute's limit holds across
                time.sleep(min(int(r.header("Retry-After") or "1"), 5))  # restarts on PostgreSQL
                continue
            self.assertEqual(r.status, 200, r.body)
            if r.data["status"] in ("completed", "failed"):
                return r.data
            time.sleep(0.5)
        self.fail("batch did not finish")

    def test_batch_validation(self):
        acct, key = MAIN.new_account("pro")
        u = FILES.url("/chelsea.png")
        cases = [({"images": [{"image_url": u}] * 21}, "BATCH_TOO_LARGE", None),
                 ({"images": []}, "BATCH_TOO_LARGE", None),
                 ({}, "INVALID_PARAMETER", "images"),
                 ({"images": "x"}, "INVALID_PARAMETER", "images"),
                 ({"images": [{"image_url": "not-a-url"}]}, "INVALID_PARAMETER", "images[0].image_url"),
                 ({"images": [{"image_url": u}, {"output_format": "png"}]}, "INVALID_PARAMETER",
                  "images[1].image_url"),
                 ({"images": [{"image_url": u, "crop": "yes"}]}, "INVALID_PARAMETER", "images[0].crop"),
                 ({"images": [{"image_url": u}], "output_format": "bmp"}, "INVALID_PARAMETER",
                  "output_format"),
                 ({"images": [{"image_url": u}], "webhook_url": "gopher://x"}, "INVALID_PARAMETER",
                  "webhook_url"),
                 ({"images": [{"image_url": u}], "extra": 1}, "INVALID_PARAMETER", "extra")]
        for body, code, field in cases:
            r = MAIN.request("POST", "/v1/remove/batch", body=body, key=key)
            self.assertEqual(r.status, 400, body)
            self.assertEqual(r.code, code, r.body)
            if field:
                self.assertIn(field, r.message)
        r = MAIN.request("POST", "/v1/remove/batch", body=b"nope", key=key, ctype="application/json")
        self.assertEqual((r.status, r.code), (400, "INVALID_JSON"))
        r = MAIN.request("POST", "/v1/remove/batch", body={"images": [{"image_url": u}]})
        self.assertEqual(r.status, 401)

    def test_resume_after_kill9(self):
        srv = Server("resume", args=["--allow-private-urls", "--workers", "1"]).start()
        try:
            acct, key = srv.new_account("pro")
            imgs = ["/chelsea.png", "/coffee.png", "/chelsea.png", "/astronaut.png"]
            r = srv.request("POST", "/v1/remove/batch", key=key,
                            body={"images": [{"image_url": FILES.url(p)} for p in imgs]})
            self.assertEqual(r.status, 202, r.body)
            bid = r.data["batch_id"]
            # kill as soon as the first item is done (others queued or running)
            deadline = time.time() + 120
            while time.time() < deadline:
                st = srv.get("/v1/batch/" + bid, key=key).data
                if st["completed"] >= 1:
                    break
                time.sleep(0.1)
            self.assertLess(st["completed"], 4, "too fast to test resumption")
            srv.kill9()
            srv.start()
            st = self.poll(srv, key, "http://x/v1/batch/" + bid)
            self.assertEqual((st["completed"], st["failed"]), (4, 0))
            ids = [x["id"] for x in st["results"]]
            self.assertEqual(len(set(ids)), 4)
            a = srv.get("/v1/account", key=key).data
            self.assertEqual(a["usage_this_month"]["credits_used"], 4)  # each item exactly once
            self.assertEqual(a["usage_this_month"]["images_processed"], 4)
            for item in st["results"]:
                self.assertEqual(srv.fetch_url(item["output_url"]).status, 200)
        finally:
            srv.cleanup()


class T09Webhooks(unittest.TestCase):
    def test_sync_webhooks_signed_and_retried(self):
        hook = Listener(fail_first=1)  # the first delivery fails: it must be retried
        try:
            acct, key = MAIN.new_account("pro")
            secret = MAIN.webhook_secret(acct)
            r = MAIN.remove_file(key, photo("chelsea"), fields=[("webhook_url", hook.url("/ok"))])
            self.assertEqual(r.status, 200)
            got = hook.wait_for(lambda rec: rec["path"] == "/ok", 60)
            self.assertEqual(len(got), 1)
            check_signature(self, got[0], secret)
            ev = json.loads(got[0]["body"])
            self.assertEqual(ev["event"], "image.completed")
            self.assertEqual(ev["data"]["id"], r.data["id"])
            self.assertEqual(ev["data"]["output_url"], r.data["output_url"])
            self.assertRegex(ev["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertGreaterEqual(hook.attempts, 2)
            r = MAIN.remove_file(key, b"not an image" * 20, fields=[("webhook_url", hook.url("/bad"))])
            self.assertEqual(r.status, 415)
            got = hook.wait_for(lambda rec: rec["path"] == "/bad", 30)
            self.assertEqual(len(got), 1)
            ev = json.loads(got[0]["body"])
            self.assertEqual(ev["event"], "image.failed")
            check_signature(self, got[0], secret)
        finally:
            hook.close()


class T10Operations(unittest.TestCase):
    def test_metrics(self):
        acct, key = MAIN.new_account("pro")
        self.assertEqual(MAIN.remove_file(key, photo("chelsea")).status, 200)
        MAIN.get("/healthz")  # the series below, also when this test runs alone
        MAIN.get("/no-such-route")
        r = MAIN.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/plain"))
        text = r.body.decode()
        self.assertRegex(text, r'bgremover_http_requests_total\{route="healthz",status="200"\} \d+')
        self.assertRegex(text, r'bgremover_http_requests_total\{route="unmatched",status="404"\} \d+')
        self.assertIn("bgremover_queue_depth ", text)
        m = re.search(r'(?m)^bgremover_processing_seconds_bucket\{le="\+Inf"\} (\d+)', text)
        self.assertTrue(m and int(m.group(1)) > 0, "empty processing-time histogram")
        m = re.search(r"(?m)^bgremover_images_processed_total (\d+)", text)
        self.assertTrue(m and int(m.group(1)) > 0, "no images counted")
        self.assertRegex(text, r'bgremover_http_requests_total\{route="remove",status="200"\} \d+')

    def test_metrics_count_batch_items(self):
        # A fresh server: its histogram holds exactly the two batch items.
        srv = Server("metrics-batch", args=["--allow-private-urls"]).start()
        try:
            acct, key = srv.new_account("pro")
            body = {"images": [{"image_url": FILES.url("/chelsea.png")},
                               {"image_url": FILES.url("/coffee.png")}]}
            r = srv.request("POST", "/v1/remove/batch", body=body, key=key)
            self.assertEqual(r.status, 202, r.body)
            st = T08Batch.poll(self, srv, key, r.data["poll_url"])
            self.assertEqual((st["completed"], st["failed"]), (2, 0))
            text = srv.get("/metrics").body.decode()
            m = re.search(r"(?m)^bgremover_processing_seconds_count (\d+)", text)
            self.assertTrue(m, text)
            self.assertEqual(int(m.group(1)), 2)
            self.assertRegex(text, r'(?m)^bgremover_request_images_total\{result="success"\} 0$')
        finally:
            srv.cleanup()

    def test_service_busy(self):
        srv = Server("busy", args=["--workers", "1", "--queue-size", "1"]).start()
        try:
            acct, key = srv.new_account("enterprise")
            png = photo("astronaut")
            with concurrent.futures.ThreadPoolExecutor(5) as ex:
                rs = list(ex.map(lambda _: srv.remove_file(key, png), range(5)))
            statuses = sorted(r.status for r in rs)
            self.assertIn(503, statuses, statuses)
            self.assertIn(200, statuses, statuses)
            busy = [r for r in rs if r.status == 503][0]
            self.assertEqual(busy.code, "SERVICE_BUSY")
            self.assertTrue(int(busy.header("Retry-After")) >= 1)
            self.assertTrue(busy.header("X-RateLimit-Limit"))
        finally:
            srv.cleanup()

    def test_tls(self):
        tmp = tempfile.mkdtemp(prefix="bgr-tls-")
        cert, key_path = make_cert(tmp)
        srv = Server("tls", tls=(cert, key_path)).start(wait_ready=False)
        try:
            r = srv.get("/healthz")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.data["status"], "ok")
            # plain HTTP to the TLS port gets no HTTP answer
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(100)
            except OSError:
                data = b""
            s.close()
            self.assertFalse(data.startswith(b"HTTP/1.1 200"))
            # an unverified client fails the handshake
            c = http.client.HTTPSConnection(
                "127.0.0.1", srv.port, timeout=5, context=ssl.create_default_context())
            with self.assertRaises(ssl.SSLError):
                c.request("GET", "/healthz")
            c.close()
        finally:
            srv.cleanup()

    def test_port_in_use_is_refused(self):
        # A second server must not share a port (no SO_REUSEPORT): it would
        # silently split clients between two data directories.
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:%d" % MAIN.port,
                                "--data-dir", d] + fresh_store_argv(),
                               capture_output=True, text=True, timeout=60, env=child_env())
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot serve", p.stderr)
        self.assertEqual(MAIN.get("/healthz").status, 200)

    def test_config_precedence(self):
        conf = "plan.pro.per_minute = 11\nplan.pro.monthly_credits = 77\nworkers = 1\n"
        srv = Server("conf", config=conf, env={"BGR_PLAN_PRO_PER_MINUTE": "22"},
                     args=["--set", "plan.pro.monthly_credits=88"]).start(wait_ready=False)
        try:
            acct, key = srv.new_account("pro")
            d = srv.get("/v1/account", key=key).data
            self.assertEqual(d["rate_limit"]["requests_per_minute"], 22)  # env over file
            self.assertEqual(d["credits_total"], 88)                      # flag over file
        finally:
            srv.cleanup()
        bad = subprocess.run([BIN, "serve", "--set", "workers=zero"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("workers", bad.stderr)
        bad = subprocess.run([BIN, "serve", "--tls-cert", "/nonexistent"], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(bad.returncode, 2)


if __name__ == "__main__":
    unittest.main()
