"""bgremover store copy: a one-box install (SQLite) moved to PostgreSQL
without losing anything (issue 12, item 7).

A SQLite server does what users do (results, a batch with a webhook, usage,
a credit adjustment, a revoked key, an idempotent request); it is stopped,
`store copy --results DEST` moves it into a fresh PostgreSQL database, and a
server on that database answers as the old one did: the account's credits
and usage, /v1/usage, /v1/images, the result downloads (byte for byte), the
batch, the idempotent replay; the old key works, the revoked one does not,
and new writes get fresh ids. A second copy into the same database, a copy
while the source server runs, and a target holding other tables are refused;
`store verify` notices a target tampered with after the copy; a batch item
left "processing" is copied as queued.

Runs in both test runs: on PostgreSQL it uses the run's cluster (a database
of its own), on SQLite it starts a cluster of its own; skipped when the
PostgreSQL binaries are absent.
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import types
import unittest

import bgrtest
from bgrtest import BIN, REPO, Listener, Server, photo, run_admin

sys.path.insert(0, os.path.join(REPO, "tests", "common"))
import pgserver  # noqa: E402

SQLITE = types.SimpleNamespace(store_db=None)  # Server(store_from=...): SQLite, whatever the run
PG = None
OWN_PG = None
_SEQ = [0]


def setUpModule():
    global PG, OWN_PG
    if not pgserver.available():
        raise unittest.SkipTest("store copy needs PostgreSQL 15 (Debian: postgresql-15)")
    if bgrtest.on_pg():
        PG = bgrtest.start_pg()
    else:
        PG = OWN_PG = pgserver.PgServer()


def tearDownModule():
    if OWN_PG:
        OWN_PG.close()


def new_db():
    _SEQ[0] += 1
    name = "copy_%d_%d" % (os.getpid(), _SEQ[0])
    PG.create_db(name)
    return name


def store(*args, timeout=300):
    return subprocess.run([BIN, "store"] + list(args), capture_output=True, text=True,
                          timeout=timeout)


def poll_batch(srv, key, url, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = srv.get(re.match(r"https?://[^/]+(/.*)$", url).group(1), key=key)
        assert r.status == 200, r.body
        if r.data["status"] in ("completed", "failed"):
            return r.data
        time.sleep(0.3)
    raise AssertionError("batch did not finish")


def hostless(v):
    """v (JSON) with the servers' own addresses left out of its URLs."""
    return json.loads(re.sub(r'https?://[^/"]+', "", json.dumps(v)))


class UrlServer(Server):
    """A server on the store at url (also for its admin commands), in either run."""

    def __init__(self, name, url, args=()):
        super().__init__(name, args=args, store_from=SQLITE)
        self.url = url

    @property
    def store(self):
        return self.url


class T01CopyAndServe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.files = Listener(files={"/chelsea.png": photo("chelsea"),
                                    "/coffee.png": photo("coffee")})
        cls.hook = Listener()
        cls.tmp = tempfile.mkdtemp(prefix="bgr-copy-")
        cls.src = Server("copy-src", args=["--allow-private-urls"], store_from=SQLITE).start()
        cls.dst = None
        s = cls.src
        cls.acct, cls.key = s.new_account("pro")
        cls.key2 = s.admin("keys", "create", "--account", cls.acct)[-1].strip()
        s.admin("accounts", "credits", cls.acct, "--add", "7")
        cls.acct_b, cls.key_b = s.new_account("free")

        # a synchronous result, with an Idempotency-Key (its answer is a stored blob)
        body, ct = bgrtest.multipart([("refine", "none")],
                                     [("image_file", "c.png", photo("chelsea"), "image/png")])
        cls.idem_body, cls.idem_ct = body, ct
        r = s.request("POST", "/v1/remove", body=body, ctype=ct, key=cls.key,
                      headers={"Idempotency-Key": "order-1"})
        assert r.status == 200, r.body
        cls.sync_png = r.body
        # a batch with a webhook: two results and a failure
        r = s.request("POST", "/v1/remove/batch", key=cls.key, body={
            "images": [{"image_url": cls.files.url("/chelsea.png"), "refine": "none"},
                       {"image_url": cls.files.url("/coffee.png"), "refine": "none",
                        "output_format": "jpeg"},
                       {"image_url": cls.files.url("/missing.png")}],
            "webhook_url": cls.hook.url("/done")})
        assert r.status == 202, r.body
        cls.batch_id = r.data["batch_id"]
        cls.batch = poll_batch(s, cls.key, r.data["poll_url"])
        assert cls.hook.wait_for(lambda rec: rec["path"] == "/done", 60), "no webhook"
        # the other account's usage, and a refused request (usage of its own)
        assert s.get("/v1/account", key=cls.key_b).status == 200
        s.admin("keys", "revoke", cls.key2)
        assert s.get("/v1/account", key=cls.key2).status == 401
        cls.downloads = {}
        for im in s.get("/v1/images", key=cls.key).data["images"]:
            d = s.get("/v1/results/%s" % im["output_url"].rsplit("/", 1)[1], key=cls.key)
            assert d.status == 200, d.body
            cls.downloads[im["id"]] = (im["output_url"].rsplit("/", 1)[1], d.body)
        # the source's last word, for the comparison
        cls.images_before = s.get("/v1/images", key=cls.key).data
        cls.usage_before = s.get("/v1/usage", key=cls.key).data
        cls.account_before = s.get("/v1/account", key=cls.key).data

        # the copy is refused while the source server runs
        cls.db = new_db()
        cls.url = PG.url(cls.db)
        cls.running = store("copy", "--from", s.data_dir, "--to", cls.url)
        s.stop()
        cls.dest = os.path.join(cls.tmp, "results")
        cls.copy = store("copy", "--from", s.data_dir, "--to", cls.url, "--results", cls.dest)
        assert cls.copy.returncode == 0, cls.copy.stderr + cls.copy.stdout
        cls.verify = store("verify", "--from", s.data_dir, "--to", cls.url)
        cls.outbox_src = s.query("SELECT event_id, status, attempts FROM outbox ORDER BY id")
        cls.dst = UrlServer("copy-dst", cls.url,
                            args=["--results", cls.dest, "--allow-private-urls"]).start()

    @classmethod
    def tearDownClass(cls):
        for srv in (cls.src, cls.dst):
            if srv:
                srv.cleanup()
        cls.files.close()
        cls.hook.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if PG and PG.running:
            PG.drop_db(cls.db)

    def test_refused_while_server_runs(self):
        self.assertEqual(self.running.returncode, 1, self.running.stdout)
        self.assertIn("server", self.running.stderr)
        self.assertIn("stop it first", self.running.stderr)

    def test_report(self):
        out = self.copy.stdout
        self.assertRegex(out, r"accounts\s+2\b")
        self.assertRegex(out, r"api_keys\s+3\b")
        self.assertRegex(out, r"credit_grants\s+1\b")
        self.assertRegex(out, r"batch_items\s+3\b")
        self.assertRegex(out, r"idempotency\s+1\b")
        self.assertIn("2 keys active, 1 revoked", out)
        self.assertIn("3 of 3 copied to %s" % self.dest, out)
        self.assertIn("verified and committed", self.copy.stderr)
        self.assertEqual(self.verify.returncode, 0, self.verify.stderr)
        self.assertIn("match", self.verify.stdout)
        # the objects in DEST are the source's, byte for byte
        for name, data in self.downloads.values():
            with open(os.path.join(self.dest, name), "rb") as f:
                self.assertEqual(f.read(), data, name)

    def test_account_and_usage(self):
        # The target's first two requests: /v1/usage, then /v1/account; the
        # source's last were /v1/usage and /v1/account, each counted.
        u = self.dst.get("/v1/usage", key=self.key)
        self.assertEqual(u.status, 200, u.body)
        a = self.dst.get("/v1/account", key=self.key)
        self.assertEqual(a.status, 200, a.body)
        ub, ab = self.usage_before, self.account_before
        self.assertEqual(u.data["total_credits_used"], ub["total_credits_used"])
        self.assertEqual(u.data["total_credits_used"], 3)
        self.assertEqual(u.data["avg_processing_time_ms"], ub["avg_processing_time_ms"])
        self.assertEqual(u.data["total_requests"], ub["total_requests"] + 2)
        self.assertEqual([(b["date"], b["credits"]) for b in u.data["daily"]],
                         [(b["date"], b["credits"]) for b in ub["daily"]])
        self.assertEqual(a.data["credits_total"], ab["credits_total"])
        self.assertEqual(a.data["credits_total"], 1007)  # the plan's 1000 and the grant
        m, mb = a.data["usage_this_month"], ab["usage_this_month"]
        self.assertEqual(m["credits_used"], mb["credits_used"])
        self.assertEqual(m["credits_used"], 3)
        self.assertEqual(m["images_processed"], mb["images_processed"])
        self.assertEqual(m["api_calls"], mb["api_calls"] + 2)

    def test_images_results_batch(self):
        im = self.dst.get("/v1/images", key=self.key)
        self.assertEqual(im.status, 200, im.body)
        self.assertEqual([i["id"] for i in im.data["images"]],
                         [i["id"] for i in self.images_before["images"]])
        self.assertEqual(len(self.downloads), 3)
        for img_id, (name, data) in self.downloads.items():
            d = self.dst.get("/v1/results/" + name, key=self.key)
            self.assertEqual(d.status, 200, d.body)
            self.assertEqual(d.body, data, img_id)
        b = self.dst.get("/v1/batch/" + self.batch_id, key=self.key)
        self.assertEqual(b.status, 200, b.body)
        self.assertEqual(hostless(b.data), hostless(self.batch))
        # the webhook was delivered by the source: the copy keeps it delivered
        rows = PG.query("SELECT event_id, status, attempts FROM outbox ORDER BY id", self.db)
        self.assertEqual([tuple(r) for r in rows], [tuple(r) for r in self.outbox_src])

    def test_idempotent_replay(self):
        r = self.dst.request("POST", "/v1/remove", body=self.idem_body, ctype=self.idem_ct,
                             key=self.key, headers={"Idempotency-Key": "order-1"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("Idempotent-Replayed"), "true")
        self.assertEqual(r.body, self.sync_png)

    def test_keys(self):
        self.assertEqual(self.dst.get("/v1/account", key=self.key).status, 200)
        self.assertEqual(self.dst.get("/v1/account", key=self.key_b).status, 200)
        r = self.dst.get("/v1/account", key=self.key2)
        self.assertEqual(r.status, 401, r.body)

    def test_new_writes_get_fresh_ids(self):
        # usage rows, a credit grant, a batch with its items and its webhook:
        # each table's sequence continues after the copied ids
        acct, key = self.dst.new_account("pro")
        self.dst.admin("accounts", "credits", acct, "--add", "3")
        r = self.dst.request("POST", "/v1/remove/batch", key=key, body={
            "images": [{"image_url": self.files.url("/chelsea.png"), "refine": "none"}],
            "webhook_url": self.hook.url("/done-2")})
        self.assertEqual(r.status, 202, r.body)
        st = poll_batch(self.dst, key, r.data["poll_url"])
        self.assertEqual(st["completed"], 1, st)
        self.assertTrue(self.hook.wait_for(lambda rec: rec["path"] == "/done-2", 60))

    def test_second_copy_refused(self):
        p = store("copy", "--from", self.src.data_dir, "--to", self.url)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("not empty", p.stderr)
        self.assertIn("accounts", p.stderr)


class T02Checks(unittest.TestCase):
    """Small stores made with the admin commands alone (no server)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bgr-copy2-")
        self.dir = os.path.join(self.tmp, "data")
        acct = run_admin(["accounts", "create", "--email", "c@example.com", "--plan", "pro"],
                         self.dir)[-1].split()[0]
        self.acct = acct
        self.key = run_admin(["keys", "create", "--account", acct], self.dir)[-1].strip()
        run_admin(["keys", "revoke", self.key], self.dir)
        run_admin(["keys", "create", "--account", acct], self.dir)
        self.dbs = []

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        for db in self.dbs:
            PG.drop_db(db)

    def db(self):
        name = new_db()
        self.dbs.append(name)
        return name

    def test_verify_notices_tampering(self):
        db = self.db()
        p = store("copy", "--from", self.dir, "--to", PG.url(db))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("result objects were not copied", p.stdout)
        self.assertIn("--results %s/results" % self.dir, p.stdout)
        self.assertEqual(store("verify", "--from", self.dir, "--to", PG.url(db)).returncode, 0)
        PG.psql("UPDATE api_keys SET revoked_at = 0", db)  # a revoked key come back to life
        p = store("verify", "--from", self.dir, "--to", PG.url(db))
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("active api_keys: source 1, target 2", p.stderr)
        self.assertIn("revoked api_keys: source 1, target 0", p.stderr)

    def test_processing_item_copied_as_queued(self):
        # What a server stopped mid-item leaves behind (written here directly:
        # a stopped server requeues its items at its own next start).
        con = sqlite3.connect(os.path.join(self.dir, "bgremover.db"))
        con.execute("INSERT INTO batches(id, account_id, total, created_at)"
                    " VALUES('batch_x', ?, 2, 1)", (self.acct,))
        con.execute("INSERT INTO batch_items(id, batch_id, idx, image_url, status, attempts)"
                    " VALUES(7, 'batch_x', 0, 'http://a/x.png', 1, 1),"
                    " (9, 'batch_x', 1, 'http://a/y.png', 0, 0)")
        con.commit()
        con.close()
        db = self.db()
        p = store("copy", "--from", self.dir, "--to", PG.url(db))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 batch item in progress when the server stopped was copied as queued",
                      p.stdout)
        self.assertEqual(PG.query("SELECT id, status, attempts FROM batch_items ORDER BY id", db),
                         [(7, 0, 1), (9, 0, 0)])
        self.assertEqual(PG.psql("SELECT nextval('batch_items_id_seq')", db), [["10"]])

    def test_rows_exact(self):
        # Every column of every table, including what escaping could get
        # wrong: quotes, backslashes, newlines, non-ASCII text, NULL and
        # empty blobs, fractional credits, 64-bit values.
        con = sqlite3.connect(os.path.join(self.dir, "bgremover.db"))
        a = self.acct
        con.execute("INSERT INTO outbox(id, event_id, ref, account_id, event, url, payload,"
                    " next_attempt_at, created_at) VALUES(5000000000, 'evt_1', '', ?,"
                    " 'image.completed', ?, ?, 9007199254740993, 1)",
                    (a, "http://h/x?a=1&b='2'", '{"it\'s": "back\\\\slash", "n": "l\u00e4\nng \u2603"}'))
        con.execute("INSERT INTO idempotency VALUES(?, 'k-null', x'00ff', 0, 5, 0, '', '', NULL,"
                    " 9)", (a,))
        con.execute("INSERT INTO idempotency VALUES(?, 'k-empty', x'', 1, 5, 200, 'image/png',"
                    " ?, x'', 9)", (a, "A: b\n"))
        con.execute("INSERT INTO idempotency VALUES(?, 'k-bytes', x'01', 1, 5, 200, 'image/png',"
                    " '', ?, 9)", (a, bytes(range(256)) * 3))
        con.execute("INSERT INTO images(id, account_id, path, format, ext, mime, sha256, width,"
                    " height, orig_width, orig_height, size_bytes, processing_ms, credits,"
                    " created_at, day, expires_at, confidence, subject_x) VALUES('img_q', ?,"
                    " 'results/img_q.png', 'png', 'png', 'image/png', 'ab', 1, 2, 3, 4, 5, 6,"
                    " 0.25, -9223372036854775807, 7, 8, 0.1234567890123456789, 9)", (a,))
        con.commit()
        tables = ["accounts", "api_keys", "credit_grants", "daily_counts", "usage", "usage_days",
                  "images", "batches", "batch_items", "outbox", "idempotency"]
        want = {}
        for t in tables:
            cur = con.execute("SELECT * FROM %s ORDER BY 1, 2" % t)
            cols = [d[0] for d in cur.description]
            want[t] = (cols, [tuple("\\x" + v.hex() if isinstance(v, bytes) else v for v in r)
                              for r in cur])
        con.close()
        self.assertEqual(len(want["idempotency"][1]), 3)
        db = self.db()
        p = store("copy", "--from", self.dir, "--to", PG.url(db))
        self.assertEqual(p.returncode, 0, p.stderr)
        for t in tables:
            cols, rows = want[t]
            got = PG.query("SELECT %s FROM %s ORDER BY 1, 2" % (", ".join(cols), t), db)
            self.assertEqual(got, rows, t)
        self.assertEqual(PG.psql("SELECT nextval('outbox_id_seq')", db), [["5000000001"]])

    def test_target_with_other_tables_refused(self):
        db = self.db()
        PG.psql("CREATE TABLE invoices(id int)", db)
        p = store("copy", "--from", self.dir, "--to", PG.url(db))
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("other tables", p.stderr)

    def test_usage_errors(self):
        self.assertEqual(store("copy", "--from", self.dir).returncode, 2)
        self.assertEqual(store("copy", "--from", self.dir, "--to", "/tmp/x.db").returncode, 2)
        self.assertEqual(store("copy", "--from", self.dir, "--to", PG.url("postgres"),
                               "--results", os.path.join(self.dir, "results")).returncode, 2)
        self.assertEqual(store("frobnicate").returncode, 2)
        p = store("copy", "--from", os.path.join(self.tmp, "nope"), "--to", PG.url(self.db()))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no bgremover store", p.stderr)


if __name__ == "__main__":
    unittest.main()
