"""Idempotency-Key on POST /v1/remove, /v1/remove/batch and /v1.0/removebg.

A retry with the same key and request gets the first answer (marked
Idempotent-Replayed) and is charged nothing; the same key with another
request is 409 IDEMPOTENCY_KEY_REUSED; a retry while the first runs is 409
IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After; a failed request gives its key
back.
"""
import concurrent.futures
import time
import unittest

from bgrtest import Listener, Server, multipart, photo

SRV = None
FILES = None


def setUpModule():
    global SRV, FILES
    FILES = Listener(files={"/chelsea.png": photo("chelsea")})
    SRV = Server("idem", args=["--allow-private-urls"]).start()


def tearDownModule():
    if SRV:
        SRV.cleanup()
    if FILES:
        FILES.close()


def remove(key, idem, fields=(("refine", "none"),), data=None):
    body, ct = multipart(list(fields), [("image_file", "c.png", data or photo("chelsea"),
                                         "image/png")])
    h = {"Idempotency-Key": idem} if idem is not None else {}
    return SRV.request("POST", "/v1/remove", body=body, ctype=ct, key=key, headers=h)


def credits_used(key):
    return SRV.get("/v1/account", key=key).data["usage_this_month"]["credits_used"]


class T01Remove(unittest.TestCase):
    def test_retry_replays_and_charges_once(self):
        _, key = SRV.new_account("pro")
        first = remove(key, "order-42")
        self.assertEqual(first.status, 200, first.body)
        self.assertIsNone(first.header("Idempotent-Replayed"))
        again = remove(key, "order-42")
        self.assertEqual(again.status, 200, again.body)
        self.assertEqual(again.header("Idempotent-Replayed"), "true")
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.header("Content-Type"), first.header("Content-Type"))
        self.assertEqual(credits_used(key), 1)
        self.assertEqual(len(SRV.get("/v1/images", key=key).data["images"]), 1)
        # without the key the same request runs again
        self.assertEqual(remove(key, None).status, 200)
        self.assertEqual(credits_used(key), 2)

    def test_same_key_other_request(self):
        _, key = SRV.new_account("pro")
        self.assertEqual(remove(key, "k-reused").status, 200)
        r = remove(key, "k-reused", fields=(("refine", "none"), ("output_format", "webp")))
        self.assertEqual((r.status, r.code), (409, "IDEMPOTENCY_KEY_REUSED"))
        self.assertEqual(credits_used(key), 1)
        # keys belong to their account
        _, other = SRV.new_account("pro")
        r = remove(other, "k-reused", fields=(("refine", "none"), ("output_format", "webp")))
        self.assertEqual(r.status, 200, r.body)

    def test_retry_while_running(self):
        _, key = SRV.new_account("pro")
        slow = (("refine", "full"),)  # four model runs: long enough to overlap
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            f = ex.submit(remove, key, "k-running", slow)
            time.sleep(0.3)
            r = remove(key, "k-running", slow)
            first = f.result()
        self.assertEqual(first.status, 200, first.body)
        if r.status == 409:
            self.assertEqual(r.code, "IDEMPOTENCY_KEY_IN_PROGRESS")
            self.assertEqual(r.header("Retry-After"), "1")
        else:  # the first had finished already on a fast machine: a replay
            self.assertEqual(r.header("Idempotent-Replayed"), "true")
        again = remove(key, "k-running", slow)
        self.assertEqual(again.body, first.body)
        self.assertEqual(credits_used(key), 1)

    def test_failure_gives_the_key_back(self):
        _, key = SRV.new_account("pro")
        bad = remove(key, "k-fail", data=b"not an image")
        self.assertEqual(bad.status, 415)
        ok = remove(key, "k-fail")
        self.assertEqual(ok.status, 200, ok.body)
        self.assertIsNone(ok.header("Idempotent-Replayed"))

    def test_malformed_key(self):
        _, key = SRV.new_account("pro")
        for k in ("", "has space", "x" * 256):
            r = remove(key, k)
            self.assertEqual((r.status, r.code), (400, "INVALID_PARAMETER"), k)
            self.assertIn("Idempotency-Key", r.message)


class T02Batch(unittest.TestCase):
    def test_batch_retry_same_batch(self):
        _, key = SRV.new_account("pro")
        body = {"refine": "none", "images": [{"image_url": FILES.url("/chelsea.png")}] * 2}
        h = {"Idempotency-Key": "batch-1"}
        a = SRV.request("POST", "/v1/remove/batch", body=body, key=key, headers=h)
        b = SRV.request("POST", "/v1/remove/batch", body=body, key=key, headers=h)
        self.assertEqual((a.status, b.status), (202, 202), (a.body, b.body))
        self.assertEqual(a.data["batch_id"], b.data["batch_id"])
        self.assertEqual(b.header("Idempotent-Replayed"), "true")
        deadline = time.time() + 120
        while time.time() < deadline:
            st = SRV.get("/v1/batch/" + a.data["batch_id"], key=key).data
            if st["status"] in ("completed", "failed"):
                break
            time.sleep(0.5)
        self.assertEqual(st["completed"], 2)
        self.assertEqual(credits_used(key), 2)


class T03RemoveBg(unittest.TestCase):
    def test_removebg_retry(self):
        _, key = SRV.new_account("pro")
        body, ct = multipart([("size", "preview")],
                             [("image_file", "c.png", photo("chelsea"), "image/png")])
        h = {"X-Api-Key": key, "Idempotency-Key": "rbg-1"}
        a = SRV.request("POST", "/v1.0/removebg", body=body, ctype=ct, headers=h)
        b = SRV.request("POST", "/v1.0/removebg", body=body, ctype=ct, headers=h)
        self.assertEqual((a.status, b.status), (200, 200))
        self.assertEqual(a.body, b.body)
        self.assertEqual(b.header("X-Credits-Charged"), a.header("X-Credits-Charged"))
        self.assertEqual(b.header("X-Width"), a.header("X-Width"))
        self.assertEqual(b.header("Idempotent-Replayed"), "true")
        acct = SRV.get("/v1.0/account", headers={"X-Api-Key": key}).json()
        self.assertAlmostEqual(acct["data"]["attributes"]["credits"]["total"], 1000 - 0.25,
                               places=2)
        body2, ct2 = multipart([("size", "medium")],
                               [("image_file", "c.png", photo("chelsea"), "image/png")])
        c = SRV.request("POST", "/v1.0/removebg", body=body2, ctype=ct2, headers=h)
        self.assertEqual(c.status, 409)
        self.assertEqual(c.json()["errors"][0]["code"], "idempotency_key_reused")


if __name__ == "__main__":
    unittest.main()
