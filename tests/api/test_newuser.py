"""What a new user met (issue 11 item 4): the answers the docs promise, messages
that say what happened in the client's words, and strict parameters.

One server with a free plan of one monthly credit, an image server on loopback
for image_url, and a public URL of its own.
"""
import json
import os
import re
import unittest

from bgrtest import Listener, Server, multipart, photo

SRV = None
FILES = None
PUBLIC = "https://bg.example.test"


def setUpModule():
    global SRV, FILES
    FILES = Listener(files={"/chelsea.png": photo("chelsea")})
    SRV = Server("newuser", args=["--allow-private-urls", "--public-url", PUBLIC + "/"],
                 config="plan.free.monthly_credits = 1\n").start()


def tearDownModule():
    if SRV:
        SRV.cleanup()
    if FILES:
        FILES.close()


class T01Docs(unittest.TestCase):
    def test_health_in_envelope_without_rate_headers(self):
        for path, status in (("/healthz", "ok"), ("/readyz", "ready")):
            r = SRV.get(path)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"success": True, "data": {"status": status}})
            self.assertIsNone(r.header("X-RateLimit-Limit"))
        # and the OpenAPI document says the same
        doc = SRV.get("/v1/openapi.json").json()
        for path in ("/healthz", "/readyz"):
            hdrs = doc["paths"][path]["get"]["responses"]["200"].get("headers", {})
            self.assertFalse([h for h in hdrs if h.startswith("X-RateLimit")], path)

    def test_openapi_servers_is_public_url(self):
        doc = SRV.get("/v1/openapi.json").json()
        self.assertEqual([s["url"] for s in doc["servers"]], [PUBLIC])

    def test_401_messages(self):
        acct, key = SRV.new_account("pro")
        missing = SRV.get("/v1/account")
        self.assertEqual((missing.status, missing.code), (401, "UNAUTHORIZED"))
        self.assertIn("Bearer", missing.message)
        unknown = SRV.get("/v1/account", key="bgr_live_" + "x" * 43)
        malformed = SRV.get("/v1/account", key="nonsense")
        prefix = key[:len("bgr_live_") + 8]
        SRV.admin("keys", "revoke", prefix)
        revoked = SRV.get("/v1/account", key=key)
        for r in (unknown, malformed, revoked):
            self.assertEqual((r.status, r.code), (401, "UNAUTHORIZED"))
        # one message: an answer never tells whether a key exists or was revoked
        self.assertEqual(len({unknown.message, malformed.message, revoked.message}), 1)
        self.assertNotEqual(unknown.message, missing.message)


class T02Messages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        _, cls.key = SRV.new_account("pro")

    def test_svg_names_the_format_not_a_class(self):
        svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'
        r = SRV.remove_file(self.key, svg, filename="x.svg", ctype="image/svg+xml")
        self.assertEqual((r.status, r.code), (415, "UNSUPPORTED_FORMAT"))
        self.assertIn("SVG", r.message)
        self.assertNotIn("Vips", r.message)

    def test_invalid_option_message(self):
        r = SRV.remove_file(self.key, photo("chelsea"), fields=[("output_format", "gif")])
        self.assertEqual((r.status, r.code), (400, "INVALID_PARAMETER"))
        self.assertEqual(r.message, "Invalid output_format 'gif': expected png, webp or jpeg")

    def test_missing_image_names_every_source(self):
        r = SRV.request("POST", "/v1/remove", body={"output_format": "png"}, key=self.key)
        self.assertEqual((r.status, r.code), (400, "MISSING_IMAGE"))
        for src in ("image_file", "image_file_b64", "image_url"):
            self.assertIn(src, r.message)

    def test_dates(self):
        r = SRV.get("/v1/usage?start_date=2026-02-30", key=self.key)
        self.assertEqual((r.status, r.code), (400, "INVALID_PARAMETER"))
        self.assertIn("start_date", r.message)
        self.assertIn("does not exist", r.message)
        r = SRV.get("/v1/usage?end_date=13/02/2026", key=self.key)
        self.assertEqual(r.status, 400)
        self.assertIn("end_date", r.message)
        self.assertIn("ISO 8601", r.message)
        r = SRV.get("/v1/usage?start_date=2000-01-01&end_date=2026-01-01", key=self.key)
        self.assertEqual((r.status, r.code), (400, "INVALID_PARAMETER"))
        self.assertIn("start_date", r.message)
        self.assertIn("end_date", r.message)

    def test_credits_spent_message(self):
        _, key = SRV.new_account("free")  # one credit a month here
        ok = SRV.remove_file(key, photo("chelsea"), fields=[("refine", "none")])
        self.assertEqual(ok.status, 200, ok.body)
        r = SRV.remove_file(key, photo("chelsea"), fields=[("refine", "none")])
        self.assertEqual((r.status, r.code), (402, "INSUFFICIENT_CREDITS"))
        self.assertRegex(r.message, r"^This month's 1 credit \(free plan\) is used up; it renews "
                                    r"on \d{4}-\d{2}-01$")


class T03Strict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        _, cls.key = SRV.new_account("pro")

    def test_crop_margin_needs_crop(self):
        r = SRV.remove_file(self.key, photo("chelsea"), fields=[("crop_margin", "20")])
        self.assertEqual((r.status, r.code), (400, "INVALID_PARAMETER"))
        self.assertIn("crop_margin", r.message)
        self.assertIn("crop=true", r.message)
        # zero asks for nothing: accepted
        r = SRV.remove_file(self.key, photo("chelsea"),
                            fields=[("crop_margin", "0"), ("refine", "none")])
        self.assertEqual(r.status, 200, r.body)
        # in a batch the item is named, and nothing is queued
        body = {"images": [{"image_url": FILES.url("/chelsea.png")},
                           {"image_url": FILES.url("/chelsea.png"), "crop_margin": "10%"}]}
        r = SRV.request("POST", "/v1/remove/batch", body=body, key=self.key)
        self.assertEqual((r.status, r.code), (400, "INVALID_PARAMETER"))
        self.assertIn("images[1].crop_margin", r.message)
        # a batch-level margin with crop on the item is fine
        body = {"crop_margin": 5, "refine": "none",
                "images": [{"image_url": FILES.url("/chelsea.png"), "crop": True}]}
        r = SRV.request("POST", "/v1/remove/batch", body=body, key=self.key)
        self.assertEqual(r.status, 202, r.body)


class T04RemoveBg(unittest.TestCase):
    def test_results_not_kept(self):
        srv = Server("rbg-keep").start()  # its own: no other test writes results there
        try:
            _, key = srv.new_account("pro")
            results = os.path.join(srv.data_dir, "results")
            body, ct = multipart([("size", "preview")],
                                 [("image_file", "c.png", photo("chelsea"), "image/png")])
            r = srv.request("POST", "/v1.0/removebg", body=body, ctype=ct,
                            headers={"X-Api-Key": key})
            self.assertEqual(r.status, 200, r.body[:300])
            self.assertEqual(r.header("X-Credits-Charged"), "0.25")
            self.assertEqual(os.listdir(results), [])
            # the charge is recorded all the same
            acct = srv.get("/v1.0/account", headers={"X-Api-Key": key}).json()
            self.assertAlmostEqual(acct["data"]["attributes"]["credits"]["total"],
                                   1000 - 0.25, places=2)
            self.assertEqual(srv.get("/v1/account", key=key).data["usage_this_month"]
                             ["images_processed"], 1)
        finally:
            srv.cleanup()


class T05Estimate(unittest.TestCase):
    def test_estimate_follows_refine(self):
        """refine=full runs the model four times: a batch of it is estimated longer."""
        srv = Server("estimate", args=["--allow-private-urls", "--workers", "1"]).start()
        try:
            _, key = srv.new_account("pro")
            url = FILES.url("/chelsea.png")
            est = {}
            for mode in ("none", "full"):
                r = srv.request("POST", "/v1/remove/batch", key=key,
                                body={"refine": mode, "images": [{"image_url": url}] * 2})
                self.assertEqual(r.status, 202, r.body)
                est[mode] = r.data["estimated_time_ms"]
            self.assertGreaterEqual(est["full"], 3 * est["none"], est)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main()
