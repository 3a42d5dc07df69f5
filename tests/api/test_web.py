"""The web page's routes (/, /docs, /web/*), --no-web, and the endpoints it
added to the API: GET /v1/images (pages, batch filter) and GET
/v1/images/:id, both scoped to the key's account.

One server (pro defaults, private URLs allowed so a batch can fetch from the
local file server) plus short-lived ones for --no-web and `web = false`.
The model runs 6 times.
"""
import hashlib
import json
import os
import re
import time
import unittest

from bgrtest import REPO, Listener, Server, photo

SRV = None
FILES = None
WEB = ("index.html", "docs.html", "app.mjs", "lib.mjs", "docs.mjs", "style.css", "icon.svg")


def setUpModule():
    global SRV, FILES
    FILES = Listener(files={"/chelsea.png": photo("chelsea"), "/coffee.png": photo("coffee")})
    SRV = Server("web", args=["--allow-private-urls"]).start()


def tearDownModule():
    if SRV:
        SRV.cleanup()
    if FILES:
        FILES.close()


class T01Page(unittest.TestCase):
    def check_security(self, r):
        csp = r.header("Content-Security-Policy")
        self.assertIsNotNone(csp)
        directives = dict((d.split(" ", 1) + [""])[:2] for d in csp.split("; "))
        self.assertEqual(directives["default-src"], "'self'")
        self.assertEqual(directives["script-src"], "'self'")  # no inline, no eval
        self.assertEqual(directives["style-src"], "'self'")
        self.assertEqual(directives["frame-ancestors"], "'none'")
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.header("Referrer-Policy"), "no-referrer")

    def test_index_docs_and_assets_are_the_repo_files(self):
        for path, name, ctype in (("/", "index.html", "text/html"), ("/docs", "docs.html", "text/html"),
                                  ("/web/app.mjs", "app.mjs", "text/javascript"),
                                  ("/web/style.css", "style.css", "text/css"),
                                  ("/web/icon.svg", "icon.svg", "image/svg+xml")):
            r = SRV.get(path)
            self.assertEqual(r.status, 200, path)
            with open(os.path.join(REPO, "web", name), "rb") as f:
                data = f.read()
            self.assertEqual(r.body, data, path)
            self.assertTrue(r.header("Content-Type").startswith(ctype), r.header("Content-Type"))
            self.assertEqual(r.header("ETag"), '"%s"' % hashlib.sha256(data).hexdigest())
            self.assertEqual(r.header("Cache-Control"), "no-cache")
            self.check_security(r)
            r2 = SRV.get(path, headers={"If-None-Match": r.header("ETag")})
            self.assertEqual(r2.status, 304)
            self.assertEqual(r2.body, b"")

    def test_no_inline_script_or_style_and_no_other_origin(self):
        for name in WEB:
            with open(os.path.join(REPO, "web", name), encoding="utf-8") as f:
                text = f.read()
            if name.endswith(".html"):
                self.assertNotRegex(text, r"<script(?![^>]*\bsrc=)", name)
                self.assertNotRegex(text, r"<style|\sstyle=|\son[a-z]+=", name)
            # No URL of another origin is loaded (links in text are fine: none here).
            self.assertNotRegex(text, r"(src|href)=\"(https?:)?//", name)
            if name.endswith(".mjs"):
                self.assertNotIn("innerHTML", text, name)
                self.assertNotIn("eval(", text, name)

    def test_unknown_asset_and_traversal(self):
        for p in ("/web/nope.js", "/web/..", "/web/%2e%2e%2fetc%2fpasswd", "/web/index.html.bak"):
            r = SRV.get(p)
            self.assertEqual(r.status, 404, p)
        self.assertEqual(SRV.get("/web/").status, 404)
        self.assertEqual(SRV.request("POST", "/", body=b"x", ctype="text/plain").status, 405)

    def test_no_web_flag_and_config(self):
        for how in (dict(args=["--no-web"]), dict(config="web = false\n"),
                    dict(env={"BGR_WEB": "false"})):
            srv = Server("noweb", **how).start(wait_ready=False)
            try:
                for p in ("/", "/docs", "/web/app.mjs"):
                    r = srv.get(p)
                    self.assertEqual(r.status, 404, (how, p))
                    self.assertEqual(r.code, "NOT_FOUND")
                    self.assertEqual(r.json(), srv.get("/nothing-here").json())
                self.assertEqual(srv.request("POST", "/", body=b"x", ctype="text/plain").status, 404)
                self.assertEqual(srv.get("/v1/openapi.json").status, 200)
                self.assertEqual(srv.get("/v1/account").status, 401)
            finally:
                srv.cleanup()


class T02Images(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.acct, cls.key = SRV.new_account("pro")
        cls.other_acct, cls.other = SRV.new_account("pro")
        cls.made = []
        for name in ("astronaut", "chelsea", "coffee"):
            r = SRV.remove_file(cls.key, photo(name), fields=[("output_format", "webp")])
            assert r.status == 200, r.body
            cls.made.append(r.data)
            time.sleep(0.01)
        r = SRV.remove_file(cls.other, photo("coins"))
        assert r.status == 200, r.body
        cls.theirs = r.data
        r = SRV.request("POST", "/v1/remove/batch", key=cls.key, body={
            "images": [{"image_url": FILES.url("/chelsea.png")}, {"image_url": FILES.url("/coffee.png")}]})
        assert r.status == 202, r.body
        cls.batch_id = r.data["batch_id"]
        deadline = time.time() + 180
        while time.time() < deadline:
            st = SRV.get("/v1/batch/" + cls.batch_id, key=cls.key).data
            if st["status"] in ("completed", "failed"):
                break
            time.sleep(0.3)
        assert st["status"] == "completed" and st["completed"] == 2, st
        cls.batch_ids = sorted(x["id"] for x in st["results"])

    def test_get_has_the_remove_response_fields(self):
        made = self.made[0]
        r = SRV.get("/v1/images/" + made["id"], key=self.key)
        self.assertEqual(r.status, 200, r.body)
        d = r.data
        # Every field of the POST /v1/remove response, with the same values,
        # then what only a stored result has.
        self.assertEqual(list(d.keys())[:len(made)], list(made.keys()))
        for k, v in made.items():
            self.assertEqual(d[k], v, k)
        self.assertEqual(set(d) - set(made), {"created_at", "batch_id"})
        self.assertRegex(d["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIsNone(d["batch_id"])
        self.assertEqual(r.header("X-RateLimit-Limit"), "60")
        self.assertEqual(r.header("X-RateLimit-Daily-Limit"), "1000")
        self.assertRegex(r.header("X-RateLimit-Daily-Remaining"), r"^\d+$")

    def test_other_accounts_ids_are_not_found(self):
        for key, img in ((self.key, self.theirs["id"]), (self.other, self.made[0]["id"])):
            r = SRV.get("/v1/images/" + img, key=key)
            self.assertEqual(r.status, 404)
            self.assertEqual(r.code, "NOT_FOUND")
            # the same answer as an id that never existed
            self.assertEqual(r.message, SRV.get("/v1/images/img_doesnotexist", key=key).message)
        theirs = SRV.get("/v1/images?limit=100", key=self.other).data["images"]
        self.assertEqual([x["id"] for x in theirs], [self.theirs["id"]])
        mine = [x["id"] for x in SRV.get("/v1/images?limit=100", key=self.key).data["images"]]
        self.assertNotIn(self.theirs["id"], mine)
        # filtering by my batch with the other key: nothing (no probing)
        r = SRV.get("/v1/images?batch_id=" + self.batch_id, key=self.other)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.data["images"], [])

    def test_bad_ids_and_auth(self):
        for bad in ("nope", "img_", "img_a-b", "img_" + "a" * 41):
            self.assertEqual(SRV.get("/v1/images/" + bad, key=self.key).status, 404, bad)
        self.assertEqual(SRV.get("/v1/images").status, 401)
        self.assertEqual(SRV.get("/v1/images/" + self.made[0]["id"]).status, 401)

    def test_list_newest_first_with_pages(self):
        r = SRV.get("/v1/images", key=self.key)
        self.assertEqual(r.status, 200, r.body)
        d = r.data
        self.assertEqual(list(d.keys()), ["images", "has_more", "next_cursor"])
        ids = [x["id"] for x in d["images"]]
        self.assertEqual(len(ids), 5)
        self.assertFalse(d["has_more"])
        self.assertIsNone(d["next_cursor"])
        created = [x["created_at"] for x in d["images"]]
        self.assertEqual(created, sorted(created, reverse=True))
        # the three sync results, newest first, after the batch's two
        self.assertEqual(ids[2:], [m["id"] for m in reversed(self.made)])
        self.assertEqual(sorted(ids[:2]), self.batch_ids)
        # pages of two: the same order, nothing twice, nothing missed
        seen, cursor, pages = [], None, 0
        while True:
            q = "/v1/images?limit=2" + ("&cursor=" + cursor if cursor else "")
            p = SRV.get(q, key=self.key).data
            pages += 1
            seen += [x["id"] for x in p["images"]]
            if not p["has_more"]:
                self.assertIsNone(p["next_cursor"])
                break
            self.assertEqual(len(p["images"]), 2)
            cursor = p["next_cursor"]
            self.assertTrue(cursor)
        self.assertEqual(seen, ids)
        self.assertEqual(pages, 3)

    def test_filter_by_batch(self):
        d = SRV.get("/v1/images?batch_id=" + self.batch_id, key=self.key).data
        self.assertEqual(sorted(x["id"] for x in d["images"]), self.batch_ids)
        self.assertTrue(all(x["batch_id"] == self.batch_id for x in d["images"]))
        d = SRV.get("/v1/images?batch_id=batch_unknown123", key=self.key).data
        self.assertEqual(d["images"], [])

    def test_invalid_parameters(self):
        for q, word in (("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
                        ("limit=", "limit"), ("cursor=abc", "cursor"), ("cursor=1.nope", "cursor"),
                        ("batch_id=img_1", "batch_id"), ("page=2", "page")):
            r = SRV.get("/v1/images?" + q, key=self.key)
            self.assertEqual(r.status, 400, q)
            self.assertEqual(r.code, "INVALID_PARAMETER", q)
            self.assertIn(word, r.message, q)

    def test_deleted_leaves_the_list_and_get(self):
        _, key = SRV.new_account("pro")
        d = SRV.remove_file(key, photo("astronaut")).data
        self.assertEqual(SRV.get("/v1/images/" + d["id"], key=key).status, 200)
        self.assertEqual(SRV.request("DELETE", "/v1/images/" + d["id"], key=key).status, 200)
        self.assertEqual(SRV.get("/v1/images/" + d["id"], key=key).status, 404)
        self.assertEqual(SRV.get("/v1/images", key=key).data["images"], [])

    def test_documented(self):
        with open(os.path.join(REPO, "docs", "openapi.json")) as f:
            doc = json.load(f)
        self.assertEqual(doc["paths"]["/v1/images"]["get"]["operationId"], "listImages")
        self.assertEqual(doc["paths"]["/v1/images/{image_id}"]["get"]["operationId"], "getImage")
        for path, item in doc["paths"].items():
            for m, op in item.items():
                src = " ".join(s["source"] for s in op.get("x-codeSamples", []))
                self.assertIn("curl ", src, "%s %s has no curl example" % (m, path))
        with open(os.path.join(REPO, "docs", "API.md")) as f:
            api = f.read()
        for h in ("## GET /v1/images\n", "## GET /v1/images/:image_id\n", "## The web page\n"):
            self.assertTrue(h in api, "docs/API.md lacks " + h.strip())
