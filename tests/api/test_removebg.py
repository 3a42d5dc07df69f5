#!/usr/bin/env python3
"""Black-box tests of the remove.bg drop-in (POST /v1.0/removebg, GET /v1.0/account).

Run: test_removebg.py [--bin PATH] [TEST_NAME_SUBSTRING...]; the last line is
"N passed, N failed". Every parameter and error code of docs/REMOVEBG.md is
exercised against the real server. Results are decoded here (PNG with the
standard library's zlib, JPEG sizes from the frame header, zip with zipfile)
to check sizes, bands and alpha, not just status codes.
"""
import argparse
import base64
import io
import json
import os
import struct
import sys
import time
import unittest
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bgrtest  # noqa: E402
from bgrtest import Listener, Server, multipart, photo, png_bomb  # noqa: E402

MAIN = None   # pro plan, --allow-private-urls
TIGHT = None  # free: 1 credit a month, 300000 bytes; pro: 3 requests a minute
FILES = None  # serves photos for image_url / bg_image_url
PATH = "/v1.0/removebg"


# ---- decoding results --------------------------------------------------------
def png_decode(data):
    """(width, height, bands, rows) of an 8-bit non-interlaced PNG; rows are bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: %r" % data[:16]
    pos, idat, w = 8, [], None
    while pos < len(data):
        n, t = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if t == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, (depth, interlace)
            bands = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
        elif t == b"IDAT":
            idat.append(body)
        pos += 12 + n
    raw = zlib.decompress(b"".join(idat))
    stride = w * bands
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bands] if x >= bands else 0
            b = prev[x]
            c = prev[x - bands] if x >= bands else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bands, rows


def jpeg_info(data):
    """(width, height, components) from a JPEG's SOF header."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    pos = 2
    while pos < len(data):
        marker, n = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return w, h, data[pos + 9]
        pos += 2 + n
    raise AssertionError("no SOF in JPEG")


def alpha_values(png):
    w, h, bands, rows = png_decode(png)
    assert bands in (2, 4), "no alpha channel (bands %d)" % bands
    return [row[x] for row in rows for x in range(bands - 1, len(row), bands)], w, h


def post(srv, key, fields=(), files=(), json_body=None, accept=None, form=None, header="x"):
    h = {}
    if header == "x":
        h["X-Api-Key"] = key
    elif header == "bearer":
        h["Authorization"] = "Bearer " + key
    if accept:
        h["Accept"] = accept
    if json_body is not None:
        return srv.request("POST", PATH, body=json.dumps(json_body).encode(), headers=h,
                           ctype="application/json")
    if form is not None:
        from urllib.parse import urlencode
        return srv.request("POST", PATH, body=urlencode(form).encode(), headers=h,
                           ctype="application/x-www-form-urlencoded")
    body, ct = multipart(list(fields), list(files))
    return srv.request("POST", PATH, body=body, headers=h, ctype=ct)


def img_file(name="astronaut", field="image_file"):
    return (field, name + ".png", photo(name), "image/png")


def error_of(r):
    j = r.json()
    assert set(j) == {"errors"}, j
    e = j["errors"][0]
    assert "title" in e and "code" in e, e
    return e["code"]


def setUpModule():
    global MAIN, TIGHT, FILES
    FILES = Listener(files={"/astronaut.png": photo("astronaut"), "/coffee.png": photo("coffee"),
                            "/text.png": b"not an image at all"})
    MAIN = Server("rbg-main", args=["--allow-private-urls", "--workers", "2"]).start()
    TIGHT = Server("rbg-tight", args=["--allow-private-urls"], config="""
plan.free.per_minute = 30
plan.free.per_day = unlimited
plan.free.monthly_credits = 1
plan.free.max_bytes = 300000
plan.pro.per_minute = 3
""").start()


def tearDownModule():
    for s in (MAIN, TIGHT):
        if s:
            s.cleanup()
    if FILES:
        FILES.close()


class R01Sources(unittest.TestCase):
    """The three request forms and image sources, and the response headers."""

    def test_multipart_file_png_headers(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("size", "preview"), ("type", "auto"), ("crop", "false"),
                             ("scale", ""), ("roi", "")], [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.header("Content-Type"), "image/png")
        alpha, w, h = alpha_values(r.body)
        self.assertEqual((w, h), (500, 500))  # 512x512 capped to 0.25 MP
        self.assertEqual((r.header("X-Width"), r.header("X-Height")), ("500", "500"))
        self.assertEqual(r.header("X-Credits-Charged"), "0.25")
        self.assertEqual(r.header("X-Type"), "other")
        self.assertIn(0, alpha)
        self.assertIn(255, alpha)
        top, left = int(r.header("X-Foreground-Top")), int(r.header("X-Foreground-Left"))
        fw, fh = int(r.header("X-Foreground-Width")), int(r.header("X-Foreground-Height"))
        self.assertTrue(0 <= left and left + fw <= 500 and 0 <= top and top + fh <= 500)
        self.assertGreater(fw * fh, 500 * 500 // 4)
        self.assertRegex(r.header("X-Confidence"), r"^[01]\.\d{3}$")  # ours: 0..1
        self.assertTrue(0 <= float(r.header("X-Confidence")) <= 1)
        for hname in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            self.assertTrue(r.header(hname), hname)

    def test_json_b64_accept_json_crop(self):
        _, key = MAIN.new_account()
        b64 = base64.b64encode(photo("astronaut")).decode()
        r = post(MAIN, key, json_body={"image_file_b64": b64, "crop": True, "size": "preview",
                                       "type": "person", "bg_color": None, "scale": ""},
                 accept="application/json")
        self.assertEqual(r.status, 200, r.body[:300])
        d = r.json()["data"]
        png = base64.b64decode(d["result_b64"])
        w, h, bands, _ = png_decode(png)
        self.assertEqual(bands, 4)
        self.assertEqual((str(w), str(h)), (r.header("X-Width"), r.header("X-Height")))
        # Cropped to the subject: the foreground box is the whole result.
        self.assertEqual((d["foreground_left"], d["foreground_top"]), (0, 0))
        self.assertEqual((d["foreground_width"], d["foreground_height"]), (w, h))
        self.assertLess(w * h, 500 * 500)
        self.assertEqual(r.header("X-Type"), "person")  # the client's hint, echoed

    def test_urlencoded_image_url_medium(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, form={"image_url": FILES.url("/astronaut.png"), "size": "medium",
                                  "type_level": "none"})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual((r.header("X-Width"), r.header("X-Height")), ("512", "512"))
        self.assertEqual(r.header("X-Credits-Charged"), "1")
        self.assertIsNone(r.header("X-Type"))  # type_level=none

    def test_bearer_auth_and_data_uri(self):
        _, key = MAIN.new_account()
        b64 = "data:image/png;base64," + base64.b64encode(photo("astronaut")).decode()
        r = post(MAIN, key, json_body={"image_file_b64": b64, "size": "small", "channels": "alpha",
                                       "format": "png"}, header="bearer")
        self.assertEqual(r.status, 200, r.body[:300])
        w, h, bands, rows = png_decode(r.body)
        self.assertEqual((w, h, bands), (500, 500, 1))  # channels=alpha: the matte alone
        vals = set(v for row in rows for v in row)
        self.assertIn(0, vals)
        self.assertIn(255, vals)


class R02Output(unittest.TestCase):
    """size, format, channels, bg_color, bg_image_*, semitransparency, shadow."""

    def test_size_auto_and_hd_credits(self):
        _, key = MAIN.new_account()
        for size in ("auto", "HD"):
            r = post(MAIN, key, [("size", size), ("format", "jpg")], [img_file()])
            self.assertEqual(r.status, 200, r.body[:300])
            self.assertEqual(jpeg_info(r.body)[:2], (512, 512), size)  # under both caps
            self.assertEqual(r.header("X-Credits-Charged"), "1", size)

    def test_auto_format_jpg_with_opaque_bg_color_name(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("bg_color", "red")], [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.header("Content-Type"), "image/jpeg")
        self.assertEqual(jpeg_info(r.body), (500, 500, 3))

    def test_bg_color_with_alpha_keeps_png(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("bg_color", "#00f8"), ("format", "auto"),
                             ("semitransparency", "false")], [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        w, h, bands, rows = png_decode(r.body)
        self.assertEqual(bands, 4)
        # Top-left corner is background: blue at alpha 0x88.
        self.assertEqual(tuple(rows[0][0:4]), (0, 0, 255, 0x88))

    def test_zip_color_jpg_alpha_png(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("format", "zip"), ("crop", "true")], [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.header("Content-Type"), "application/zip")
        z = zipfile.ZipFile(io.BytesIO(r.body))
        self.assertIsNone(z.testzip())  # CRCs check out
        self.assertEqual(z.namelist(), ["color.jpg", "alpha.png"])
        cw, ch, comps = jpeg_info(z.read("color.jpg"))
        aw, ah, bands, _ = png_decode(z.read("alpha.png"))
        self.assertEqual((cw, ch, comps, bands), (aw, ah, 3, 1))
        self.assertEqual((str(aw), str(ah)), (r.header("X-Width"), r.header("X-Height")))

    def test_webp_and_semitransparency_false(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("format", "webp")], [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.body[:4], b"RIFF")
        self.assertEqual(r.body[8:12], b"WEBP")
        r = post(MAIN, key, [("semitransparency", "false"), ("format", "png")], [img_file()])
        alpha, _, _ = alpha_values(r.body)
        self.assertEqual(set(alpha), {0, 255})

    def test_channels_alpha_auto_is_grey_jpeg(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("channels", "alpha")], [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(jpeg_info(r.body), (500, 500, 1))

    def test_bg_image_file_and_url(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("format", "png")], [img_file(), img_file("coffee", "bg_image_file")])
        self.assertEqual(r.status, 200, r.body[:300])
        w, h, bands, rows = png_decode(r.body)
        self.assertEqual((w, h, bands), (500, 500, 3))  # opaque background: no alpha left
        r2 = post(MAIN, key, json_body={"image_url": FILES.url("/astronaut.png"), "format": "png",
                                        "bg_image_url": FILES.url("/coffee.png")})
        self.assertEqual(r2.status, 200, r2.body[:300])
        self.assertEqual(png_decode(r2.body)[:3], (500, 500, 3))
        # coffee.png is 600x400: covering 500x500 keeps its centre, so the
        # corner is not a flat colour from a stretched edge.
        self.assertNotEqual(rows[0][0:3], rows[0][-3:])

    def test_shadow_darkens_margin(self):
        _, key = MAIN.new_account()
        fields = [("crop", "true"), ("crop_margin", "40px"), ("bg_color", "ffffff"),
                  ("format", "png")]
        plain = post(MAIN, key, fields, [img_file()])
        shadow = post(MAIN, key, fields + [("add_shadow", "true"), ("shadow_type", "drop"),
                                           ("shadow_opacity", "90")], [img_file()])
        self.assertEqual((plain.status, shadow.status), (200, 200), shadow.body[:300])
        _, _, _, a = png_decode(plain.body)
        w, h, bands, b = png_decode(shadow.body)
        darker = sum(1 for y in range(h) for x in range(0, w * bands, bands)
                     if b[y][x] + 30 < a[y][x])
        self.assertGreater(darker, 100)  # a visible shadow


class R03Geometry(unittest.TestCase):
    """roi, crop, crop_margin, scale, position."""

    def test_crop_margin_px_and_percent(self):
        _, key = MAIN.new_account()
        r0 = post(MAIN, key, [("crop", "true"), ("format", "png")], [img_file()])
        w0, h0 = int(r0.header("X-Width")), int(r0.header("X-Height"))
        r = post(MAIN, key, [("crop", "true"), ("crop_margin", "10px 20px"), ("format", "png")],
                 [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        w, h, _, rows = png_decode(r.body)
        # px are the input's pixels (512 -> 500 here): 20 -> 20, 10 -> 10.
        self.assertLessEqual(abs(w - (w0 + 40)), 1)
        self.assertLessEqual(abs(h - (h0 + 20)), 1)
        self.assertEqual(int(r.header("X-Foreground-Left")), 20)
        self.assertEqual(rows[0][3], 0)  # margin is transparent
        r = post(MAIN, key, [("crop", "true"), ("crop_margin", "10%"), ("format", "png")],
                 [img_file()])
        self.assertLessEqual(abs(int(r.header("X-Width")) - round(w0 * 1.2)), 2)

    def test_scale_and_position(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("scale", "50%"), ("position", "0% 100%"), ("format", "png")],
                 [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual((r.header("X-Width"), r.header("X-Height")), ("500", "500"))
        fw, fh = int(r.header("X-Foreground-Width")), int(r.header("X-Foreground-Height"))
        self.assertEqual(max(fw, fh), 250)  # half the canvas along the limiting side
        self.assertEqual(int(r.header("X-Foreground-Left")), 0)
        self.assertEqual(int(r.header("X-Foreground-Top")) + fh, 500)
        r = post(MAIN, key, [("scale", "original"), ("position", "center"), ("crop", "false")],
                 [img_file()])
        self.assertEqual(r.status, 200)

    def test_roi_limits_the_subject(self):
        _, key = MAIN.new_account()
        r = post(MAIN, key, [("roi", "0% 0% 256px 100%"), ("format", "png")], [img_file()])
        self.assertEqual(r.status, 200, r.body[:300])
        alpha, w, h = alpha_values(r.body)
        right = [alpha[y * w + x] for y in range(h) for x in range(251, w)]
        self.assertEqual(max(right), 0)  # nothing right of x = 256 * 500 / 512
        self.assertLessEqual(int(r.header("X-Foreground-Left")) +
                             int(r.header("X-Foreground-Width")), 251)


class R04Errors(unittest.TestCase):
    """Every error code, with remove.bg's shape and status; nothing charged."""

    def check(self, r, status, code):
        self.assertEqual(r.status, status, r.body[:300])
        self.assertEqual(error_of(r), code, r.body[:300])

    def test_json_numbers_as_text(self):
        # JSON numbers are read as their text, which must outlive the parse
        # for the fields kept by pointer (it pointed into a scratch buffer:
        # clang-tidy's StackAddressEscape): 12345 is refused as a URL or as
        # base64, naming the field.
        _, key = MAIN.new_account()
        for name, code in (("image_url", "invalid_image_url"),
                           ("image_file_b64", "failed_to_read_image"),
                           ("bg_image_url", "invalid_bg_image_url")):
            body = {name: 12345}
            if name == "bg_image_url":
                body["image_url"] = FILES.url("/astronaut.png")
            r = post(MAIN, key, json_body=body)
            self.check(r, 400, code)
            self.assertIn(name, r.json()["errors"][0]["detail"])

    def test_parameter_errors(self):
        _, key = MAIN.new_account()
        f = [img_file()]
        cases = [
            ([("size", "huge")], "invalid_size"),
            ([("format", "gif")], "invalid_format"),
            ([("channels", "rgb")], "invalid_channels"),
            ([("bg_color", "notacolour")], "invalid_bg_color"),
            ([("bg_color", "12345")], "invalid_bg_color"),
            ([("bg_image_url", "ftp://x/y.png")], "invalid_bg_image_url"),
            ([("bg_image_url", FILES.url("/coffee.png")), ("bg_color", "red")],
             "multiple_bg_sources"),
            ([("crop", "true"), ("crop_margin", "60%")], "invalid_crop_margin"),
            ([("crop_margin", "1px 2px 3px")], "invalid_crop_margin"),
            ([("scale", "5%")], "invalid_scale"),
            ([("scale", "big")], "invalid_scale"),
            ([("position", "left")], "invalid_position"),
            ([("roi", "0 0 10")], "invalid_roi"),
            ([("roi", "0px 0px 600px 100px")], "roi_exceeds_bounds"),
            ([("roi", "50% 0% 10% 100%")], "roi_region_empty"),
            ([("semitransparency", "maybe")], "invalid_semitransparency"),
            ([("type", "spaceship")], "invalid_type"),
            ([("type_level", "7")], "invalid_type_level"),
            ([("crop", "yes")], "invalid_crop"),
            ([("shadow_opacity", "150")], "invalid_shadow_opacity"),
        ]
        for fields, code in cases:
            self.check(post(MAIN, key, fields, f), 400, code)
        self.check(post(MAIN, key, [("size", "preview")]), 400, "missing_source")
        self.check(post(MAIN, key, json_body={}), 400, "missing_source")
        self.check(post(MAIN, key, [("image_url", FILES.url("/astronaut.png"))], f), 400,
                   "multiple_sources")
        self.check(post(MAIN, key, json_body={"image_url": "not a url"}), 400,
                   "invalid_image_url")
        self.check(post(MAIN, key, json_body={"image_url": FILES.url("/missing.png")}), 400,
                   "failed_image_download")
        self.check(post(MAIN, key, json_body={"image_url": FILES.url("/astronaut.png"),
                                              "bg_image_url": FILES.url("/missing.png")}),
                   400, "failed_bg_download")
        self.check(post(MAIN, key, [], [("image_file", "x.png", b"not an image", "image/png")]),
                   400, "invalid_file_type")
        self.check(post(MAIN, key, json_body={"image_file_b64": "!!!"}), 400,
                   "failed_to_read_image")
        self.check(post(MAIN, key, [], [("image_file", "bomb.png", png_bomb(), "image/png")]),
                   400, "resolution_too_high")
        a = MAIN.request("GET", "/v1.0/account", headers={"X-Api-Key": key}).json()
        self.assertEqual(a["data"]["attributes"]["credits"]["total"], 1000.0)  # nothing charged

    def test_unknown_foreground(self):
        _, key = MAIN.new_account()
        # A flat grey image has no subject.
        w = h = 64
        raw = b"".join(b"\x00" + b"\x80" * w for _ in range(h))
        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
               + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
        r = post(MAIN, key, [("roi", "0px 0px 2px 2px")], [("image_file", "g.png", png,
                                                            "image/png")])
        self.check(r, 400, "unknown_foreground")

    def test_auth_errors_are_403(self):
        r = MAIN.request("POST", PATH, body=b"{}", ctype="application/json")
        self.check(r, 403, "auth_failed")
        self.assertEqual(r.json()["errors"][0]["title"], "Missing API Key")
        r = MAIN.request("POST", PATH, body=b"{}", ctype="application/json",
                         headers={"X-Api-Key": "bgr_live_nope"})
        self.check(r, 403, "auth_failed")
        r = MAIN.request("GET", "/v1.0/account", headers={"x-api-key": "wrong"})
        self.check(r, 403, "auth_failed")

    def test_file_too_large(self):
        _, key = TIGHT.new_account("free")  # 300000 bytes
        big = photo("chelsea") + b"\x00" * 70000  # over the plan, under the body cap
        self.check(post(TIGHT, key, [], [("image_file", "a.png", big, "image/png")]), 400,
                   "file_too_large")

    def test_credits_402_and_fractions(self):
        _, key = TIGHT.new_account("free")  # 1 credit a month
        bgrtest_wait_minute()
        r = post(TIGHT, key, [("size", "preview")], [img_file("chelsea")])
        self.assertEqual(r.status, 200, r.body[:300])
        acc = TIGHT.request("GET", "/v1.0/account", headers={"X-Api-Key": key}).json()
        self.assertEqual(acc["data"]["attributes"]["credits"]["total"], 0.75)
        self.check(post(TIGHT, key, [("size", "full")], [img_file("chelsea")]), 402,
                   "insufficient_credits")
        r = TIGHT.request("GET", "/v1/usage", key=key)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.data["total_requests"], 3)  # both APIs count in /v1/usage
        self.assertEqual(r.data["total_credits_used"], 1)  # 0.25, a started credit

    def test_rate_limit_429(self):
        _, key = TIGHT.new_account("pro")  # 3 per minute
        bgrtest_wait_minute()
        for _ in range(3):
            TIGHT.request("GET", "/v1.0/account", headers={"X-Api-Key": key})
        r = post(TIGHT, key, [("size", "preview")], [img_file("chelsea")])
        self.check(r, 429, "rate_limit_exceeded")
        self.assertTrue(1 <= int(r.header("Retry-After")) <= 61)
        self.assertEqual(r.header("X-RateLimit-Remaining"), "0")


class R05Account(unittest.TestCase):
    def test_account_shape(self):
        _, key = MAIN.new_account()
        r = MAIN.request("GET", "/v1.0/account", headers={"X-Api-Key": key})
        self.assertEqual(r.status, 200, r.body)
        a = r.json()["data"]["attributes"]
        self.assertEqual(set(a["credits"]), {"total", "subscription", "payg", "enterprise"})
        self.assertEqual(a["credits"]["total"], 1000.0)
        self.assertIsInstance(a["credits"]["total"], float)
        self.assertEqual(a["api"], {"free_calls": 0, "sizes": "all"})


def bgrtest_wait_minute(margin=8):
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("BGR_BIN", "build/bgremover"))
    ap.add_argument("only", nargs="*")
    args = ap.parse_args()
    bgrtest.BIN = os.path.abspath(args.bin)
    suite = unittest.TestLoader().loadTestsFromModule(sys.modules[__name__])

    def flat(s):
        for t in s:
            yield from (flat(t) if isinstance(t, unittest.TestSuite) else [t])
    if args.only:
        suite = unittest.TestSuite(t for t in flat(suite) if any(o in t.id() for o in args.only))
    total = suite.countTestCases()
    res = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
    failed = len(res.failures) + len(res.errors)
    if total and res.testsRun == 0:
        failed = total
    passed = res.testsRun - failed - len(res.skipped)
    print("%d passed, %d failed" % (max(passed, 0), failed))
    return 0 if failed == 0 and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
