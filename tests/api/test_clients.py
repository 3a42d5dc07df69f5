"""Over-limit uploads as common HTTP clients send them (issue 11 item 3).

A free-plan key may upload 10 MB. Most clients send their whole request before
they read the answer: a server that answers 413 from the headers and closes
while the body is still arriving leaves them with a broken pipe (Node's fetch:
"fetch failed", EPIPE; Python's urllib: BrokenPipeError) instead of the error.
The server answers, keeps reading and dropping the body for a bounded number
of bytes and time, then closes ("lingering close"). Each client here must get
the 413 JSON on /v1/remove and on /v1.0/removebg, for an 11 MB upload and for
a declared Content-Length far over the limit.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from bgrtest import Server, multipart, rss_kib

SRV = None
KEY = None
TMP = None
BIG = 11 * 1000 * 1000  # over the free plan's 10 MB
NODE = shutil.which("node")
CURL = shutil.which("curl")


def setUpModule():
    global SRV, KEY, TMP
    # the free plan's sizes, with room in the minute for every client's tries
    SRV = Server("clients", config="plan.free.per_minute = 1000\nplan.free.per_day = unlimited\n").start()
    _, KEY = SRV.new_account("free")
    TMP = tempfile.mkdtemp(prefix="bgr-clients-")
    with open(os.path.join(TMP, "big.png"), "wb") as f:
        # a PNG signature, then noise: refused for its size before anyone decodes it
        f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(BIG - 8))


def tearDownModule():
    if SRV:
        SRV.cleanup()
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


ROUTES = {
    # path, file field, key header
    "v1": ("/v1/remove", "image_file", "Authorization", "Bearer "),
    "removebg": ("/v1.0/removebg", "image_file", "X-Api-Key", ""),
}


def big_path():
    return os.path.join(TMP, "big.png")


def check_413(tc, status, body, route):
    """The refusal in the route's own envelope. remove.bg answers file_too_large
    with 400 (its documented code list), and its route keeps that status."""
    doc = json.loads(body)
    if route == "v1":
        tc.assertEqual(status, 413, body[:300])
        tc.assertFalse(doc["success"])
        tc.assertEqual(doc["error"]["code"], "FILE_TOO_LARGE")
        tc.assertIn("10 MB", doc["error"]["message"])
    else:
        tc.assertEqual(status, 400, body[:300])
        tc.assertEqual(doc["errors"][0]["code"], "file_too_large")
        tc.assertIn("10 MB", doc["errors"][0]["detail"])


class T01Clients(unittest.TestCase):
    def url(self, route):
        return "http://127.0.0.1:%d%s" % (SRV.port, ROUTES[route][0])

    def headers(self, route):
        _, _, name, prefix = ROUTES[route]
        return {name: prefix + KEY}

    def body(self, route):
        with open(big_path(), "rb") as f:
            data = f.read()
        return multipart([], [(ROUTES[route][1], "big.png", data, "image/png")])

    def test_curl(self):
        if not CURL:
            self.fail("curl is not installed (scripts/setup installs it)")
        for route in ROUTES:
            with self.subTest(route=route):
                h = sum([["-H", "%s: %s" % kv] for kv in self.headers(route).items()], [])
                p = subprocess.run([CURL, "-sS", "-o", "-", "-w", "\n%{http_code}", "-F",
                                    "%s=@%s;type=image/png" % (ROUTES[route][1], big_path())] +
                                   h + [self.url(route)], capture_output=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr)
                body, _, status = p.stdout.rpartition(b"\n")
                check_413(self, int(status), body, route)

    def test_python_requests(self):
        import requests  # Debian's python3-requests (scripts/setup)
        for route in ROUTES:
            with self.subTest(route=route):
                with open(big_path(), "rb") as f:
                    r = requests.post(self.url(route), headers=self.headers(route),
                                      files={ROUTES[route][1]: ("big.png", f, "image/png")},
                                      timeout=60)
                check_413(self, r.status_code, r.content, route)

    def test_python_requests_chunked(self):
        """No Content-Length (a generator body goes out chunked): refused while it
        streams, at the cap, and answered all the same."""
        import requests
        for route in ROUTES:
            with self.subTest(route=route):
                body, ctype = self.body(route)

                def chunks():
                    for i in range(0, len(body), 65536):
                        yield body[i:i + 65536]
                h = dict(self.headers(route), **{"Content-Type": ctype})
                r = requests.post(self.url(route), headers=h, data=chunks(), timeout=60)
                check_413(self, r.status_code, r.content, route)

    def test_python_urllib(self):
        for route in ROUTES:
            with self.subTest(route=route):
                body, ctype = self.body(route)
                h = dict(self.headers(route), **{"Content-Type": ctype})
                req = urllib.request.Request(self.url(route), data=body, headers=h,
                                             method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, data = e.code, e.read()
                check_413(self, status, data, route)

    def test_node_fetch(self):
        if not NODE:
            self.fail("node is not installed (scripts/setup installs it)")
        script = r"""
const fs = require('fs');
const [url, hname, hval, field, path] = process.argv.slice(1);
(async () => {
  const fd = new FormData();
  fd.append(field, new Blob([fs.readFileSync(path)], {type: 'image/png'}), 'big.png');
  try {
    const r = await fetch(url, {method: 'POST', body: fd, headers: {[hname]: hval}});
    process.stdout.write(JSON.stringify({status: r.status, body: await r.text()}));
  } catch (e) {
    process.stdout.write(JSON.stringify({error: String(e), cause: String(e.cause)}));
  }
})();
"""
        for route in ROUTES:
            with self.subTest(route=route):
                (hname, hval), = self.headers(route).items()
                p = subprocess.run([NODE, "-e", script, self.url(route), hname, hval,
                                    ROUTES[route][1], big_path()],
                                   capture_output=True, text=True, timeout=60)
                out = json.loads(p.stdout or "{}")
                self.assertNotIn("error", out, out)
                check_413(self, out["status"], out["body"].encode(), route)

    def test_declared_length_far_over(self):
        """Content-Length of 5 GB: the answer comes from the headers, whatever the
        client does next (sends some of it, or waits)."""
        for route in ROUTES:
            for send in (0,):
                with self.subTest(route=route, send=send):
                    s = socket.create_connection(("127.0.0.1", SRV.port), timeout=30)
                    try:
                        (hname, hval), = self.headers(route).items()
                        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s: %s\r\n"
                                   "Content-Type: multipart/form-data; boundary=x\r\n"
                                   "Content-Length: 5000000000\r\n"
                                   "\r\n" % (ROUTES[route][0], hname, hval)).encode())
                        if send:
                            try:
                                s.sendall(b"\0" * send)
                            except OSError:
                                pass
                        data = b""
                        while b"\r\n\r\n" not in data or not self.complete(data):
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                    finally:
                        s.close()
                    head, _, body = data.partition(b"\r\n\r\n")
                    status = int(head.split(b" ")[1])
                    check_413(self, status, body, route)

    @staticmethod
    def complete(data):
        head, _, body = data.partition(b"\r\n\r\n")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                return len(body) >= int(line.split(b":")[1])
        return False


class T02Burst(unittest.TestCase):
    def test_burst_of_over_limit_uploads(self):
        """Many over-limit uploads at once: every one gets its 413, the server's
        memory stays bounded (nothing is buffered) and /healthz keeps answering."""
        import concurrent.futures
        body, ctype = T01Clients().body("v1")
        url = "http://127.0.0.1:%d/v1/remove" % SRV.port

        def one(_):
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Authorization": "Bearer " + KEY, "Content-Type": ctype})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
            except OSError as e:
                return repr(e)

        rss0 = rss_kib(SRV.proc.pid)
        with concurrent.futures.ThreadPoolExecutor(32) as ex:
            futs = [ex.submit(one, i) for i in range(64)]
            t0 = time.time()
            worst = 0.0
            while not all(f.done() for f in futs):
                h0 = time.time()
                self.assertEqual(SRV.get("/healthz").status, 200)
                worst = max(worst, time.time() - h0)
                time.sleep(0.2)
            got = [f.result() for f in futs]
        self.assertEqual(got, [413] * 64)
        grown = rss_kib(SRV.proc.pid) - rss0
        print("\n  64 x 11 MB over-limit uploads (32 at a time): %.1f s, RSS +%d KiB, "
              "worst /healthz %.3f s" % (time.time() - t0, grown, worst))
        # nothing of the bodies is kept: far less than one body per connection
        self.assertLess(grown, 64 * 1024)


if __name__ == "__main__":
    unittest.main()
