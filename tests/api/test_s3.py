"""S3 results: `serve --results s3://BUCKET/PREFIX` against a real S3-protocol
server on loopback, behind a proxy that verifies every AWS Signature V4.

s3rver (npm, pinned in tests/s3/package-lock.json, installed with `npm ci`
into the build directory on first use) implements the S3 REST calls but
checks only the access key id, never the signature. tests/s3/sigv4proxy.py
is put in front of it: it recomputes each request's SigV4 signature from
AWS's published algorithm and answers 403 to any request whose signature,
date, scope, signed headers or payload hash is wrong, so everything that
reaches s3rver was signed correctly by libcurl. T01 proves the proxy on
AWS's own published examples and on tampered requests.

What T02/T03 show: results are written to, served from, deleted from and
expired out of the bucket (checked with our own signed ListObjectsV2
through the proxy), nothing lands in the data directory, a second node
holding the database and no result files serves the same bytes (on
SQLite, where one data directory allows one server, the "other node" has a
copy of the database; on PostgreSQL it shares the database), the remove.bg
route leaves no object behind, and a server with wrong credentials, an
unreachable endpoint or a missing bucket refuses to start with a clear
message; /readyz turns 503 while the store fails and 200 once it is back.

Skipped (with the reason) where node/npm are missing. Everything listens on
127.0.0.1 and is stopped in tearDownModule, also after a failure.
"""
import datetime
import hashlib
import http.client
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import bgrtest
from bgrtest import REPO, Server, free_port, multipart, photo

sys.path.insert(0, os.path.join(REPO, "tests", "s3"))
import sigv4proxy  # noqa: E402

BIN = bgrtest.BIN
BUCKET = "bgr-results"
PREFIX = "nodes/results"
REGION = "eu-west-3"
AK, SK = "S3RVER", "S3RVER"  # the one key pair s3rver knows

S3 = None  # the s3rver process
S3PORT = None
PROXY = None
TMP = None
SERVERS = []


def s3_env(endpoint=None, secret=SK, akid=AK):
    return {"BGR_S3_ENDPOINT": endpoint or PROXY.endpoint, "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": ""}


def install(work):
    if os.path.exists(os.path.join(work, "node_modules", "s3rver", "package.json")):
        return
    os.makedirs(work, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(REPO, "tests", "s3", f), os.path.join(work, f))
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=work,
                   check=True, capture_output=True, timeout=300)


def setUpModule():
    global S3, S3PORT, PROXY, TMP
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise unittest.SkipTest("%s is not installed: the S3 tests need s3rver (npm)" % tool)
    work = os.environ.get("BGR_S3_WORK") or os.path.join(os.path.dirname(BIN), "s3rver-test")
    install(work)
    TMP = tempfile.mkdtemp(prefix="bgr-s3-")
    # s3rver encrypts its ListObjectsV2 continuation tokens with DES, which
    # OpenSSL 3 keeps in its legacy provider: without it every truncated
    # listing is a 500 (Node >= 17 has the flag).
    major = int(subprocess.run(["node", "--version"], capture_output=True, text=True,
                               timeout=30).stdout.strip().lstrip("v").split(".")[0] or 0)
    node = ["node"] + (["--openssl-legacy-provider"] if major >= 17 else [])
    S3 = subprocess.Popen(
        node + [os.path.join(work, "node_modules", "s3rver", "bin", "s3rver.js"), "-d",
         os.path.join(TMP, "s3"), "-a", "127.0.0.1", "-p", "0", "-s", "--no-vhost-buckets",
         "--configure-bucket", BUCKET], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline, line = time.time() + 30, b""
    while time.time() < deadline and not re.search(rb"listening on [^\n]*:\d+\s", line):
        r, _, _ = select.select([S3.stdout], [], [], 1)
        if r:
            ch = S3.stdout.read1(256) if hasattr(S3.stdout, "read1") else S3.stdout.read(1)
            if not ch:
                break
            line += ch
    m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        tearDownModule()
        raise RuntimeError("s3rver did not start: %r" % line)
    S3PORT = int(m.group(1))
    PROXY = sigv4proxy.Proxy(S3PORT, {AK: SK}, REGION)


def tearDownModule():
    for s in SERVERS:
        s.cleanup()
    if PROXY:
        PROXY.close()
    if S3 and S3.poll() is None:
        S3.terminate()
        try:
            S3.wait(10)
        except subprocess.TimeoutExpired:
            S3.kill()
            S3.wait()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def s3(method, path_query, body=b"", headers=None, port=None, secret=SK, akid=AK, amz_date=None,
       tamper=None):
    """A request signed here (sigv4proxy.sign) to the proxy; tamper(headers, body) may
    change it after signing. Returns (status, body)."""
    port = port or PROXY.port
    h = {"Host": "127.0.0.1:%d" % port}
    h.update(headers or {})
    h = sigv4proxy.sign(method, path_query, h, body, akid, secret, REGION, amz_date=amz_date)
    if tamper:
        h, body = tamper(h, body)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.putrequest(method, path_query, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def listing(prefix=PREFIX + "/"):
    """Keys under prefix, by our own signed ListObjectsV2 through the proxy."""
    keys, token = [], ""
    while True:
        q = "list-type=2&prefix=" + sigv4proxy._enc(prefix)
        if token:
            q = "continuation-token=%s&%s" % (sigv4proxy._enc(token), q)
        st, body = s3("GET", "/%s?%s" % (BUCKET, q))
        assert st == 200, (st, body)
        root = ET.fromstring(body)
        for el in root.iter():  # whatever the namespace (s3rver's differs from AWS's)
            el.tag = el.tag.rsplit("}", 1)[-1]
        keys += [c.findtext("Key") for c in root.findall("Contents")]
        token = root.findtext("NextContinuationToken") or ""
        if root.findtext("IsTruncated") != "true":
            return keys


def s3_server(name, env=None, config=None, data_dir=None, start=True, store_from=None):
    s = Server(name, args=["--results", "s3://%s/%s" % (BUCKET, PREFIX)], env=env or s3_env(),
               config=config, data_dir=data_dir, store_from=store_from)
    SERVERS.append(s)
    return s.start() if start else s


class T01Proxy(unittest.TestCase):
    """The verifier implements the published algorithm and rejects tampering."""

    def test_aws_published_examples(self):
        # AWS's SigV4 test suite "get-vanilla" (service "service", URI double-encoded).
        c = sigv4proxy.canonical_request(
            "GET", "/", "", [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            ["host", "x-amz-date"], sigv4proxy.EMPTY_SHA256, double_encode=True)
        self.assertEqual(sigv4proxy.signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                              "20150830T123600Z", "us-east-1", "service", c),
                         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        # The S3 documentation's GET Object example, through the whole verifier.
        h = [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
             ("x-amz-content-sha256", sigv4proxy.EMPTY_SHA256), ("x-amz-date", "20130524T000000Z"),
             ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1"
              "/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")]
        keys = {"AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
        then = datetime.datetime(2013, 5, 24, 0, 1, tzinfo=datetime.timezone.utc)
        self.assertEqual(sigv4proxy.verify("GET", "/test.txt", "", h, b"", keys, "us-east-1",
                                           now=then), "AKIAIOSFODNN7EXAMPLE")
        h2 = list(h)
        h2[1] = ("Range", "bytes=0-99")
        with self.assertRaises(sigv4proxy.Rejected):
            sigv4proxy.verify("GET", "/test.txt", "", h2, b"", keys, "us-east-1", now=then)

    def test_tampered_requests_are_refused(self):
        path = "/%s/proxy-check/obj.bin" % BUCKET
        body = b"bytes of the object"

        def resign(h, b):
            return h, b

        def flip_sig(h, b):
            sig = h["Authorization"][-64:]
            h["Authorization"] = h["Authorization"][:-64] + ("0" if sig[0] != "0" else "1") + sig[1:]
            return h, b

        def other_body(h, b):
            return h, b.replace(b"bytes", b"BYTES")

        def other_date(h, b):
            d = datetime.datetime.strptime(h["x-amz-date"], "%Y%m%dT%H%M%SZ")
            h["x-amz-date"] = (d + datetime.timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
            return h, b

        def extra_amz_header(h, b):
            h["x-amz-meta-owner"] = "mallory"
            return h, b

        def other_hash(h, b):
            h["x-amz-content-sha256"] = hashlib.sha256(b"other").hexdigest()
            return h, b

        old = (datetime.datetime.now(datetime.timezone.utc) -
               datetime.timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ")
        cases = [
            ("signature", {"tamper": flip_sig}, "SignatureDoesNotMatch"),
            ("body", {"tamper": other_body}, "XAmzContentSHA256Mismatch"),
            ("payload hash", {"tamper": other_hash}, "XAmzContentSHA256Mismatch"),
            ("date", {"tamper": other_date}, "SignatureDoesNotMatch"),
            ("unsigned x-amz header", {"tamper": extra_amz_header}, "AccessDenied"),
            ("secret", {"secret": "not-the-secret"}, "SignatureDoesNotMatch"),
            ("access key", {"akid": "NOBODY"}, "InvalidAccessKeyId"),
            ("stale date", {"amz_date": old}, "RequestTimeTooSkewed"),
        ]
        _, before = PROXY.counts()
        for what, kw, code in cases:
            st, resp = s3("PUT", path, body, **kw)
            self.assertEqual(st, 403, what)
            self.assertIn(code.encode(), resp, what)
        _, after = PROXY.counts()
        self.assertEqual(len(after) - len(before), len(cases))
        # None of them reached the store; the same request signed correctly does.
        self.assertEqual(s3("GET", path)[0], 404)
        self.assertEqual(s3("PUT", path, body, tamper=resign)[0], 200)
        self.assertEqual(s3("GET", path), (200, body))
        self.assertEqual(s3("DELETE", path)[0], 204)


class T02Results(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = s3_server("s3a", config="plan.enterprise.retention_s = 2\nsweep_interval_s = 1\n")
        cls.acct, cls.key = cls.srv.new_account("pro")
        cls.img = photo("coffee")

    def upload(self, key=None, srv=None):
        r = (srv or self.srv).remove_file(key or self.key, self.img)
        self.assertEqual(r.status, 200, r.body[:300])
        return r.data

    def local_result_files(self, srv):
        d = os.path.join(srv.data_dir, "results")
        return os.listdir(d) if os.path.isdir(d) else []

    def test_1_written_served_and_any_node_serves_it(self):
        _, rej0 = PROXY.counts()
        d = self.upload()
        key = "%s/%s.png" % (PREFIX, d["id"])
        self.assertIn(key, listing())
        self.assertEqual(self.local_result_files(self.srv), [])  # nothing on this node's disk
        st, obj = s3("GET", "/%s/%s" % (BUCKET, key))
        self.assertEqual(st, 200)
        r = self.srv.fetch_url(d["output_url"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, obj)
        self.assertEqual(r.header("Content-Type"), "image/png")
        self.assertEqual(r.header("ETag"), '"%s"' % hashlib.sha256(obj).hexdigest())
        c = self.srv.get("/v1/results/%s.png" % d["id"], headers={"If-None-Match": r.header("ETag")})
        self.assertEqual(c.status, 304)
        self.assertEqual(self.srv.get("/v1/results/%s.webp" % d["id"]).status, 404)
        # Another node: a copy of the database (on PostgreSQL: the same
        # database), no result files, same bucket.
        self.srv.stop()
        other = os.path.join(self.srv.tmp, "node-b")
        os.makedirs(other)
        for f in os.listdir(self.srv.data_dir):
            if f.startswith("bgremover.db"):
                shutil.copy(os.path.join(self.srv.data_dir, f), other)
        b = s3_server("s3b", data_dir=other, store_from=self.srv)
        try:
            rb = b.fetch_url(d["output_url"])
            self.assertEqual(rb.status, 200)
            self.assertEqual(rb.body, obj)
            self.assertEqual(self.local_result_files(b), [])
        finally:
            b.stop()
            self.srv.start()
        acc, rej = PROXY.counts()
        self.assertGreater(acc, 0)
        self.assertEqual(rej[len(rej0):], [], "bgremover sent a request the verifier refused")

    def test_2_delete_removes_the_object(self):
        d = self.upload()
        key = "%s/%s.png" % (PREFIX, d["id"])
        self.assertIn(key, listing())
        r = self.srv.request("DELETE", "/v1/images/" + d["id"], key=self.key)
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn(key, listing())
        self.assertEqual(self.srv.fetch_url(d["output_url"]).status, 404)
        self.assertEqual(self.srv.request("DELETE", "/v1/images/" + d["id"], key=self.key).status,
                         404)

    def test_3_expiry_removes_the_object(self):
        _, key = self.srv.new_account("enterprise")  # retention 2 s, sweep every 1 s
        d = self.upload(key)
        k = "%s/%s.png" % (PREFIX, d["id"])
        self.assertIn(k, listing())
        deadline = time.time() + 30
        while time.time() < deadline and k in listing():
            time.sleep(0.5)
        self.assertNotIn(k, listing(), "the sweeper did not remove the expired object")
        self.assertEqual(self.srv.fetch_url(d["output_url"]).status, 404)

    def test_4_removebg_route_keeps_no_object(self):
        before = set(listing())
        body, ct = multipart([("size", "auto")], [("image_file", "p.png", self.img, "image/png")])
        r = self.srv.request("POST", "/v1.0/removebg", body=body, ctype=ct,
                             headers={"X-Api-Key": self.key})
        self.assertEqual(r.status, 200, r.body[:300])
        self.assertEqual(r.body[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(set(listing()) - before, set())


class T03Failures(unittest.TestCase):
    def start_fails(self, env, bucket=BUCKET):
        d = tempfile.mkdtemp(prefix="bgr-s3-fail-", dir=TMP)
        e = {k: v for k, v in os.environ.items() if not k.startswith(("BGR_", "AWS_")) or
             k == "BGR_MODEL_DIR"}
        e.update(env)
        p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", d, "--results",
                            "s3://%s/%s" % (bucket, PREFIX)] + bgrtest.fresh_store_argv(),
                           env=e, capture_output=True,
                           text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertNotIn("(port", p.stdout)  # it never served
        return p.stderr

    def test_wrong_credentials_unreachable_or_missing_bucket(self):
        err = self.start_fails(s3_env(secret="wrong-secret-value"))
        self.assertIn("refused our credentials", err)
        self.assertIn("SignatureDoesNotMatch", err)
        self.assertNotIn("wrong-secret-value", err)
        err = self.start_fails(s3_env(akid="NOBODY"))
        self.assertIn("InvalidAccessKeyId", err)
        dead = "http://127.0.0.1:%d" % free_port()
        err = self.start_fails(s3_env(endpoint=dead))
        self.assertIn("cannot reach " + dead, err)
        err = self.start_fails(s3_env(), bucket="no-such-bucket")
        self.assertIn("bucket 'no-such-bucket' does not exist", err)
        err = self.start_fails({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
        self.assertIn("AWS_ACCESS_KEY_ID", err)

    def test_readyz_follows_the_store(self):
        proxy = sigv4proxy.Proxy(S3PORT, {AK: SK}, REGION)
        port = proxy.port
        srv = s3_server("s3c", env=s3_env(endpoint=proxy.endpoint),
                        config="sweep_interval_s = 1\n")
        try:
            _, key = srv.new_account("pro")
            self.assertEqual(srv.get("/readyz").status, 200)
            proxy.close()  # the store goes away
            r = srv.remove_file(key, photo("coffee"))
            self.assertEqual(r.status, 500, r.body[:300])
            self.assertEqual(srv.get("/readyz").status, 503)
            # Back on the same address: ready again without any request (the sweeper probes).
            proxy = sigv4proxy.Proxy(S3PORT, {AK: SK}, REGION, port=port)
            deadline = time.time() + 20
            while time.time() < deadline and srv.get("/readyz").status != 200:
                time.sleep(0.3)
            self.assertEqual(srv.get("/readyz").status, 200)
            self.assertEqual(srv.remove_file(key, photo("coffee")).status, 200)
        finally:
            srv.stop()
            proxy.close()
