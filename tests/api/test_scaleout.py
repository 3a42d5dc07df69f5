"""Scale-out (issue 12): two API nodes (`serve --workers 0`) and two worker
processes (`bgremover worker`) on loopback, sharing one PostgreSQL database
and one results directory, as four machines would.

Runs in the PostgreSQL run only (run.py --store pg, CTest api_pg): it uses
that run's cluster, and stops and starts it for the outage test.
"""
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

import bgrtest
from bgrtest import BIN, REPO, Listener, multipart, on_pg, photo, run_admin

sys.path.insert(0, os.path.join(REPO, "tests", "common"))
import procs  # noqa: E402

LEASE_S = 4  # a killed worker's job is taken again after at most this


def _noise_png(w, h):
    """An incompressible RGB PNG (stored, not deflated): w * h * 3 bytes and more."""
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    raw = b"".join(b"\x00" + os.urandom(w * 3) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


def _key_hdr(key):
    return {"Authorization": "Bearer " + key}


@unittest.skipUnless(on_pg(), "needs the PostgreSQL run (run.py --store pg)")
class T95ScaleOut(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = bgrtest.new_store_db()
        cls.url = bgrtest.store_url(cls.db)
        cls.pg = bgrtest.PG
        cls.tmp = tempfile.mkdtemp(prefix="bgr-scaleout-")
        cls.results = os.path.join(cls.tmp, "results")
        os.makedirs(cls.results)
        admin_dir = os.path.join(cls.tmp, "admin")

        def account(plan, email):
            out = run_admin(["accounts", "create", "--email", email, "--plan", plan], admin_dir,
                            cls.url)
            acct = out[-1]
            key = run_admin(["keys", "create", "--account", acct], admin_dir, cls.url)[-1]
            return acct, key

        cls.pro_acct, cls.pro = account("pro", "pro@example.com")
        cls.free_acct, cls.free = account("free", "free@example.com")
        cls.files = Listener(files={"/%d.png" % i: photo(n) for i, n in enumerate(
            ["camera", "coins", "astronaut", "chelsea", "coffee", "horse"])})
        cls.hooks = Listener()
        cls.g = procs.ProcGroup(BIN, common_args=[
            "--store", cls.url, "--results", cls.results, "--allow-private-urls",
            "--set", "job_lease_s=%d" % LEASE_S, "--set", "webhook_retry_base_s=1",
            # the pro key's load must not meet its per-minute limit (the free key's test does)
            "--set", "plan.pro.per_minute=100000",
            "--set", "log_level=debug"], base_dir=os.path.join(cls.tmp, "procs"))
        cls.a = cls.g.api("a")
        cls.b = cls.g.api("b")
        cls.w1 = cls.g.worker("w1", ["--workers", "1", "-j", "1"])
        cls.w2 = cls.g.worker("w2", ["--workers", "1", "-j", "1"])
        try:
            cls.g.start_all()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "g", None):
            cls.g.close()
        for l in ("files", "hooks"):
            if getattr(cls, l, None):
                getattr(cls, l).close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def fail_with_logs(self, msg):
        self.fail("%s\n%s" % (msg, self.g.dump_logs()))

    def q(self, sql):
        return self.pg.query(sql, self.db)

    def account(self, node, key):
        r = node.get("/v1/account", headers=_key_hdr(key))
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)["data"]

    def remove(self, node, key, data):
        body, ct = multipart([], [("image_file", "p.png", data, "image/png")])
        return node.request("POST", "/v1/remove", body=body,
                            headers=dict(_key_hdr(key), **{"Content-Type": ct}))

    # -- tests -------------------------------------------------------------------
    def test_1_sync_on_one_node_result_from_the_other(self):
        before = self.account(self.a, self.pro)["usage_this_month"]["credits_used"]
        r = self.remove(self.b, self.pro, photo("camera"))
        self.assertEqual(r.status, 200, r.body)
        d = json.loads(r.body)["data"]
        path = d["output_url"].split("://", 1)[1].split("/", 1)[1]
        got = self.a.get("/" + path)
        self.assertEqual(got.status, 200)
        self.assertEqual(len(got.body), d["file_size_bytes"])
        self.assertEqual(bgrtest.png_size(got.body)[:2], (512, 512))
        after = self.account(self.a, self.pro)["usage_this_month"]["credits_used"]
        self.assertEqual(after - before, 1)
        # a worker took it, not an API node (they have no model)
        done = self.q("SELECT worker FROM sync_jobs")
        self.assertEqual(done, [], "finished jobs are forgotten once answered")
        # a large input goes through the shared result storage, not the
        # database, and is removed once answered
        big = _noise_png(700, 700)
        self.assertGreater(len(big), 1024 * 1024)
        r = self.remove(self.a, self.pro, big)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.body)["data"]["width"], 700)
        self.assertEqual([f for f in os.listdir(self.results) if f.startswith("inp_")], [])
        # the remove.bg route goes through the queue too, headers included
        body, ct = multipart([("size", "preview")], [("image_file", "p.png", photo("coins"),
                                                      "image/png")])
        r = self.a.request("POST", "/v1.0/removebg", body=body,
                           headers={"X-Api-Key": self.pro, "Content-Type": ct})
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.headers.get("X-Width") and r.headers.get("X-Foreground-Width"))

    def test_2_batch_survives_kill9_of_a_worker(self):
        before = self.account(self.a, self.pro)["usage_this_month"]["credits_used"]
        items = [{"image_url": self.files.url("/%d.png" % i)} for i in range(6)]
        r = self.a.request("POST", "/v1/remove/batch",
                           body=json.dumps({"images": items,
                                            "webhook_url": self.hooks.url("/batch")}).encode(),
                           headers=dict(_key_hdr(self.pro), **{"Content-Type": "application/json"}))
        self.assertEqual(r.status, 202, r.body)
        batch = json.loads(r.body)["data"]["batch_id"]
        # the first item a worker holds: kill that worker
        victim, deadline = None, time.time() + 60
        while victim is None and time.time() < deadline:
            rows = self.q("SELECT worker FROM batch_items WHERE batch_id = '%s' AND status = 1"
                          % batch)
            for (w,) in rows:
                pid = int(w.split(":")[1])
                victim = next((p for p in (self.w1, self.w2) if p.pid == pid), None)
            time.sleep(0.05)
        if victim is None:
            self.fail_with_logs("no worker took an item")
        victim.kill9()
        t_kill = time.time()
        deadline = time.time() + 180
        while time.time() < deadline:
            d = json.loads(self.b.get("/v1/batch/" + batch, headers=_key_hdr(self.pro)).body)["data"]
            if d["status"] != "processing" and d["queued"] == 0 and d["processing"] == 0:
                break
            time.sleep(0.5)
        else:
            self.fail_with_logs("batch not finished: %r" % d)
        self.assertEqual(d["completed"], 6, d)
        self.assertEqual(d["failed"], 0, d)
        print("  batch of 6 done %.1f s after the kill -9" % (time.time() - t_kill))
        self.assertEqual(self.q("SELECT COUNT(*) AS n FROM images WHERE batch_id = '%s'" % batch),
                         [(6,)], "each item exactly once")
        after = self.account(self.a, self.pro)["usage_this_month"]["credits_used"]
        self.assertEqual(after - before, 6, "charged exactly six credits")
        hits = self.hooks.wait_for(lambda h: h["path"] == "/batch", timeout=30)
        time.sleep(3)  # a duplicate would come from the other nodes' deliverers now
        hits = [h for h in self.hooks.received if h["path"] == "/batch"]
        self.assertEqual(len(hits), 1, "batch.completed delivered exactly once")
        self.assertEqual(json.loads(hits[0]["body"])["event"], "batch.completed")
        victim.restart()

    def test_3_per_minute_limit_shared_by_both_nodes(self):
        # 16 requests in one UTC minute, alternating nodes: the free plan's 10
        if time.gmtime().tm_sec >= 45:
            time.sleep(61 - time.gmtime().tm_sec)
        codes = []
        for i in range(16):
            node = self.a if i % 2 == 0 else self.b
            codes.append(node.get("/v1/account", headers=_key_hdr(self.free)).status)
        self.assertEqual(codes.count(200), 10, codes)
        self.assertEqual(codes.count(429), 6, codes)

    def test_4_postgresql_away_for_ten_seconds(self):
        before = self.account(self.b, self.pro)["usage_this_month"]
        ok_images = [0]
        statuses = []
        stop = threading.Event()

        def load(images):  # light load on both nodes throughout
            i = 0
            while not stop.is_set():
                node = self.a if i % 2 == 0 else self.b
                i += 1
                try:
                    if images:  # a request waits through the outage for its image
                        r = self.remove(node, self.pro, photo("coins"))
                        if r.status == 200:
                            ok_images[0] += 1
                    else:
                        r = node.get("/v1/account", headers=_key_hdr(self.pro))
                    statuses.append(r.status)
                except OSError as e:
                    statuses.append(str(e))
                time.sleep(1.0 if images else 0.3)

        threads = [threading.Thread(target=load, args=(im,), daemon=True) for im in (False, True)]
        for t in threads:
            t.start()
        time.sleep(2)
        self.pg.stop()
        try:
            time.sleep(3)
            ready = self.a.get("/readyz").status
            time.sleep(7)
        finally:
            self.pg.start()
        time.sleep(8)
        stop.set()
        for t in threads:
            t.join(120)
        print("  outage: %d answers 503, %d images 200, %d other answers" % (
            statuses.count(503), ok_images[0], len(statuses) - statuses.count(503)))
        self.assertIn(503, statuses, "requests during the outage: %r" % statuses)
        self.assertEqual(ready, 503, "/readyz says the database is away")
        self.assertFalse([s for s in statuses if not isinstance(s, int) or s >= 500 and s != 503],
                         "only 503s, no errors or dropped connections: %r" % statuses)
        # recovered: both nodes answer, an image goes through
        deadline = time.time() + 30
        while self.a.get("/readyz").status != 200 and time.time() < deadline:
            time.sleep(0.5)
        self.assertEqual(self.b.get("/readyz").status, 200)
        r = self.remove(self.b, self.pro, photo("camera"))
        self.assertEqual(r.status, 200, r.body)
        ok_images[0] += 1
        # usage and credits exact: every 200 image charged once, nothing else
        time.sleep(LEASE_S + 2)  # a job cut off by the outage finishes or fails by now
        after = self.account(self.a, self.pro)["usage_this_month"]
        charged = after["credits_used"] - before["credits_used"]
        self.assertEqual(charged, ok_images[0],
                         "credits: %d charged, %d images answered 200" % (charged, ok_images[0]))
        self.assertEqual(after["images_processed"] - before["images_processed"], ok_images[0])


@unittest.skipUnless(on_pg(), "needs the PostgreSQL run (run.py --store pg)")
class T96AttemptsBound(unittest.TestCase):
    """job_max_attempts: a job whose worker dies each time it holds it (a
    crash on this input, or lost machines) fails with INTERNAL_ERROR once
    claimed more often than allowed, instead of killing workers for ever."""

    def test_job_whose_workers_die_fails_after_max_attempts(self):
        from test_hostile_pools import big_png
        db = bgrtest.new_store_db()
        url = bgrtest.store_url(db)
        tmp = tempfile.mkdtemp(prefix="bgr-attempts-")
        results = os.path.join(tmp, "results")
        os.makedirs(results)
        g = None
        try:
            admin_dir = os.path.join(tmp, "admin")
            acct = run_admin(["accounts", "create", "--email", "a@example.com", "--plan", "pro"],
                             admin_dir, url)[-1]
            key = run_admin(["keys", "create", "--account", acct], admin_dir, url)[-1]
            g = procs.ProcGroup(BIN, common_args=[
                "--store", url, "--results", results,
                "--set", "job_lease_s=2", "--set", "job_max_attempts=2"],
                base_dir=os.path.join(tmp, "procs"))
            api = g.api("a")
            ws = [g.worker("w1", ["--workers", "1", "-j", "1"]),
                  g.worker("w2", ["--workers", "1", "-j", "1"])]
            g.start_all()

            def q(sql):
                return bgrtest.PG.query(sql, db)

            # an image that runs for seconds, so that its worker can be
            # killed while it holds it
            big = big_png(3000, 3000)
            answer = {}

            def send():
                body, ct = multipart([("refine", "full")],
                                     [("image_file", "big.png", big, "image/png")])
                answer["r"] = api.request("POST", "/v1/remove", body=body,
                                          headers=dict(_key_hdr(key), **{"Content-Type": ct}))
            th = threading.Thread(target=send, daemon=True)
            th.start()
            t0 = time.time()
            # claim 1: kill its worker; claim 2 (the other worker, once the
            # lease ran out): kill it too
            for attempt in (1, 2):
                holder, deadline = None, time.time() + 30
                while holder is None and time.time() < deadline:
                    for w, n in q("SELECT worker, attempts FROM sync_jobs WHERE state = 1"):
                        pid = int(w.split(":")[1])
                        if int(n) == attempt:
                            holder = next((p for p in ws if p.pid == pid), None)
                    time.sleep(0.02)
                if holder is None:
                    self.fail("claim %d not seen\n%s" % (attempt, g.dump_logs()))
                self.assertNotIn("r", answer)
                holder.kill9()
            # both come back: the third claim is one too many
            for w in ws:
                w.start(wait=False)
            for w in ws:
                w.wait_ready()
            th.join(90)
            took = time.time() - t0
            self.assertIn("r", answer, g.dump_logs())
            r = answer["r"]
            print("\n    killed twice: %d after %.1f s" % (r.status, took), end=" ")
            self.assertEqual(r.status, 500, r.body)
            err = json.loads(r.body)["error"]
            self.assertEqual(err["code"], "INTERNAL_ERROR")  # (its detail stays in the log)
            self.assertIn("tried 2 times and its worker stopped each time",
                          "".join(g.logs().values()))
            # nothing charged, no result
            self.assertEqual(q("SELECT COUNT(*) FROM images"), [(0,)])
            d = json.loads(api.get("/v1/account", headers=_key_hdr(key)).body)["data"]
            self.assertEqual(d["usage_this_month"]["credits_used"], 0)
            # the workers serve the next job
            body, ct = multipart([], [("image_file", "p.png", photo("camera"), "image/png")])
            r = api.request("POST", "/v1/remove", body=body,
                            headers=dict(_key_hdr(key), **{"Content-Type": ct}))
            self.assertEqual(r.status, 200, r.body)
            d = json.loads(api.get("/v1/account", headers=_key_hdr(key)).body)["data"]
            self.assertEqual(d["usage_this_month"]["credits_used"], 1)
        finally:
            if g:
                g.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
