"""SSRF suite (issue 6, item 6): every URL that could reach something other
than a public host is refused, for image_url, batch items and webhook_url.

Topology (made here as root, removed on every path):

    netns SRV  (the server; lo up; veth 11.22.33.1/24; resolv.conf -> 11.22.33.2)
      - bgremover serve on 127.0.0.1, WITHOUT --allow-private-urls
      - a sentinel on 0.0.0.0:80, 0.0.0.0:8080, [::]:80 and [::]:8080: anything
        the server must not reach. It logs every connection and answers with
        an image, so a leak would show twice (a log line, and a 200).
    netns PUB  (veth 11.22.33.2/24): the "public" host the guard allows
      - HTTP on :80: /img.png, /r/<code>?to=URL redirects, POST = webhook
      - DNS on :53 (UDP) for *.test names, including rebinding ones

11.22.33.0/24 is an ordinary global unicast range (so the guard allows it);
it exists only on the veth pair between the two namespaces, which have no
other interface and no route out: no packet of this suite leaves them. The
test process (root namespace) reaches the server through a socket created
inside SRV (setns(2) on the calling thread). Without `ip netns`, every test
skips with the reason.
"""
import ctypes
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bgrtest import Server  # noqa: E402

SRV_IP, PUB_IP = "11.22.33.1", "11.22.33.2"
NS = None  # {"srv": name, "pub": name}
SKIP = "network namespaces not set up"
HELPERS = []
LOGDIR = None
SERVER = None
KEY = None


# ---- namespaces ---------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_ns_lock = threading.Lock()
CLONE_NEWNET = 0x40000000


def ns_connect(ns, addr, timeout):
    """A TCP socket connected to addr from inside netns ns (the thread switches and back)."""
    with _ns_lock:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open("/run/netns/" + ns, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(target)
    s.settimeout(timeout)
    s.connect(addr)
    return s


class NsServer(Server):
    """bgrtest.Server run inside a namespace, reached through ns_connect."""

    def __init__(self, ns, *a, **kw):
        super().__init__(*a, **kw)
        self.ns = ns
        self.prefix = ["ip", "netns", "exec", ns]
        self.store_socket = True  # PostgreSQL listens on the host's loopback, not the namespace's

    def conn(self, timeout=120):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        c.sock = ns_connect(self.ns, ("127.0.0.1", self.port), timeout)
        return c


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def teardown_ns():
    for p in HELPERS:
        if p.poll() is None:
            p.kill()
        p.wait()
    HELPERS.clear()
    if NS:
        for ns in NS.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            subprocess.run(["rm", "-rf", "/etc/netns/" + ns])


def setup_ns():
    global NS, SKIP, LOGDIR
    tag = "%d" % os.getpid()
    names = {"srv": "bgrssrf-s" + tag, "pub": "bgrssrf-p" + tag}
    p = subprocess.run(["ip", "netns", "add", names["srv"]], capture_output=True, text=True)
    if p.returncode != 0:
        SKIP = "cannot create a network namespace (%s): SSRF suite skipped" % p.stderr.strip()
        return
    NS = names
    try:
        sh("ip", "netns", "add", NS["pub"])
        va, vb = "bgrs%s" % tag[-8:], "bgrp%s" % tag[-8:]
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        sh("ip", "link", "set", va, "netns", NS["srv"])
        sh("ip", "link", "set", vb, "netns", NS["pub"])
        sh("ip", "-n", NS["srv"], "addr", "add", SRV_IP + "/24", "dev", va)
        sh("ip", "-n", NS["pub"], "addr", "add", PUB_IP + "/24", "dev", vb)
        for ns, dev in ((NS["srv"], va), (NS["pub"], vb)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        os.makedirs("/etc/netns/" + NS["srv"], exist_ok=True)
        with open("/etc/netns/%s/resolv.conf" % NS["srv"], "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:1\n" % PUB_IP)
        LOGDIR = tempfile.mkdtemp(prefix="bgr-ssrf-")
        img = os.path.join(HERE, "fixtures", "small.png")
        for ns, role in ((NS["pub"], "public"), (NS["srv"], "sentinel")):
            log = os.path.join(LOGDIR, role + ".log")
            HELPERS.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable,
                                             os.path.abspath(__file__), "--helper", role, log, img]))
            deadline = time.time() + 10
            while time.time() < deadline and not os.path.exists(log):
                time.sleep(0.05)
            if not os.path.exists(log):
                raise RuntimeError("helper %s did not start" % role)
    except Exception as e:  # noqa: BLE001 - any failure here means: skip, cleaned up
        SKIP = "network namespace setup failed (%s): SSRF suite skipped" % e
        teardown_ns()
        NS = None


def setUpModule():
    global SERVER, KEY
    setup_ns()
    if not NS:
        return
    try:
        SERVER = NsServer(NS["srv"], "ssrf", args=[
            "--workers", "1", "--set", "plan.enterprise.per_minute=100000",
            "--set", "webhook_max_attempts=1", "--set", "fetch_timeout_s=10"]).start()
        KEY = SERVER.new_account("enterprise")[1]
    except Exception:
        tearDownModule()
        raise


def tearDownModule():
    global SERVER
    if SERVER:
        SERVER.cleanup()
        SERVER = None
    teardown_ns()
    if LOGDIR:
        subprocess.run(["rm", "-rf", LOGDIR])


def log_lines(role):
    with open(os.path.join(LOGDIR, role + ".log")) as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("ready")]


# ---- the URLs -----------------------------------------------------------------------------------

V4 = ["0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.254", "100.64.0.1", "100.127.255.254",
      "127.0.0.1", "127.1.2.3", "127.255.255.254", "169.254.169.254", "169.254.0.1", "172.16.0.1",
      "172.31.255.254", "192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.0.1", "192.168.255.254",
      "198.18.0.1", "198.19.255.254", "198.51.100.1", "203.0.113.1", "224.0.0.1",
      "239.255.255.250", "240.0.0.1", "255.255.255.255", SRV_IP]  # SRV_IP: the server's own
ENCODED = ["2130706433", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "017700000001", "127.1",
           "127.0.1", "0", "0x0", "0177.1", "0x7f.1", "3232235521", "0xa9fea9fe", "0251.0376.0251.0376"]
V6 = ["::", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1",
      "::ffff:169.254.169.254", "::ffff:" + PUB_IP, "::127.0.0.1", "::ffff:0:127.0.0.1",
      "64:ff9b::7f00:1", "64:ff9b::b16:2102", "64:ff9b:1::a00:1", "100::1", "fc00::1",
      "fd12:3456:789a::1", "fe80::1", "fec0::1", "ff02::1", "ff0e::1", "2001:db8::1",
      "2002:7f00:1::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "3fff::1", "5f00::1"]
NAMES = ["localhost", "LOCALHOST", "localhost.", "loop.test", "meta.test", "ten.test",
         "v6loop.test", "mixed.test", "mapped.test"]


def address_urls():
    urls = ["http://%s/img.png" % a for a in V4]
    urls += ["http://%s/img.png" % a for a in ENCODED]
    urls += ["http://[%s]/img.png" % a for a in V6]
    urls += ["http://%s/img.png" % n for n in NAMES]
    urls += ["http://127.0.0.1:8080/img.png", "https://127.0.0.1/img.png",
             "http://[::1]:8080/img.png", "http://localhost:8080/img.png",
             "http://127.0.0.1#@%s/img.png" % PUB_IP, "http://127.0.0.1?@%s/img.png" % PUB_IP]
    return urls


BAD_SYNTAX = ["file:///etc/passwd", "file://localhost/etc/passwd", "gopher://127.0.0.1:8080/_GET",
              "ftp://127.0.0.1/img.png", "dict://127.0.0.1:8080/info", "ldap://127.0.0.1/",
              "sftp://127.0.0.1/x", "tftp://127.0.0.1/x", "telnet://127.0.0.1:8080/",
              "smtp://127.0.0.1/", "ws://127.0.0.1/", "data:image/png;base64,iVBORw0KGgo=",
              "javascript:alert(1)", "jar:http://127.0.0.1/x!/y", "//127.0.0.1/img.png",
              "127.0.0.1/img.png", "http:///127.0.0.1/img.png",
              "http://user:pass@%s/img.png" % PUB_IP, "http://user@%s/img.png" % PUB_IP,
              "http://:@%s/img.png" % PUB_IP, "http://%s@127.0.0.1/img.png" % PUB_IP,
              "https://u:p@good.test/img.png", "http://[fe80::1%25lo]/img.png",
              "http://%s/%s" % (PUB_IP, "a" * 2100), "http://%s.test/" % ("a" * 300),
              "http://127.0.0.1 /img.png", "http://127.0.0.1\t/img.png"]

REDIRECT_TARGETS = ["http://127.0.0.1/img.png", "http://localhost:8080/img.png",
                    "http://[::1]/img.png", "http://169.254.169.254/latest/meta-data/",
                    "http://10.0.0.1/img.png", "http://2130706433/img.png",
                    "http://loop.test/img.png", "http://[::ffff:127.0.0.1]/img.png",
                    "file:///etc/passwd", "gopher://127.0.0.1:8080/_x",
                    "http://user:pw@%s/img.png" % PUB_IP]
CODES = (301, 302, 303, 307, 308)


def redirect(code, to):
    return "http://%s/r/%d?to=%s" % (PUB_IP, code, urllib.parse.quote(to, safe=""))


def redirect_urls():
    urls = [redirect(c, t) for c in CODES for t in REDIRECT_TARGETS]
    # two hops: allowed -> allowed -> forbidden
    urls.append(redirect(302, redirect(307, "http://127.0.0.1:8080/img.png")))
    urls.append("http://%s/loop/0" % PUB_IP)  # more than 5 redirects
    return urls


# ---- tests --------------------------------------------------------------------------------------

class Base(unittest.TestCase):
    def setUp(self):
        if not NS:
            self.skipTest(SKIP)
        self.sentinel_before = len(log_lines("sentinel"))

    def tearDown(self):
        if NS:
            leaked = log_lines("sentinel")[self.sentinel_before:]
            self.assertEqual(leaked, [], "the server reached a forbidden address")

    def remove_url(self, url, **extra):
        body = {"image_url": url}
        body.update(extra)
        return SERVER.request("POST", "/v1/remove", body=body, key=KEY)

    def check_sync_refused(self, urls, code=None):
        for url in urls:
            r = self.remove_url(url)
            self.assertEqual(r.status, 400, "%s: %r" % (url[:120], r.body[:200]))
            if code:
                self.assertEqual(r.code, code, "%s: %r" % (url[:120], r.body[:200]))
            else:
                self.assertIn(r.code, ("INVALID_PARAMETER", "IMAGE_DOWNLOAD_FAILED"), url[:120])
            # no internal address or resolver detail in the message
            self.assertNotIn("11.22.33", r.message.replace(url, ""))

    def check_batch_refused(self, urls, code=None):
        """Addresses: accepted, then every item fails with IMAGE_DOWNLOAD_FAILED.
        Syntax: the whole batch is refused with INVALID_PARAMETER naming the item."""
        if code == "INVALID_PARAMETER":
            for url in urls:
                r = SERVER.request("POST", "/v1/remove/batch", key=KEY,
                                   body={"images": [{"image_url": "http://%s/img.png" % PUB_IP},
                                                    {"image_url": url}]})
                self.assertEqual((r.status, r.code), (400, "INVALID_PARAMETER"), url[:120])
                self.assertIn("images[1].image_url", r.message)
            return
        for i in range(0, len(urls), 20):
            chunk = urls[i:i + 20]
            r = SERVER.request("POST", "/v1/remove/batch", key=KEY,
                               body={"images": [{"image_url": u} for u in chunk]})
            self.assertEqual(r.status, 202, r.body)
            st = self.poll(r.data["batch_id"])
            self.assertEqual(st["status"], "failed", st)
            for item, url in zip(st["results"], chunk):
                self.assertEqual(item["status"], "failed", url)
                self.assertEqual(item["error"]["code"], "IMAGE_DOWNLOAD_FAILED", url)

    def check_webhooks_refused(self, urls, code=None):
        """A sync request with a bad image (no model run) and the URL as webhook_url:
        refused at once (syntax), or accepted and its delivery recorded as failed
        without any connection (addresses; webhook_max_attempts=1 here)."""
        queued = []
        for url in urls:
            r = SERVER.remove_file(KEY, b"not an image" * 20, fields=[("webhook_url", url)])
            if r.status == 400:
                # syntax, or (issue 13) an address the guard refuses whatever
                # happens later, refused at request time instead of retried
                self.assertEqual(r.code, "INVALID_PARAMETER", url[:120])
                self.assertIn("webhook_url", r.message)
            else:
                self.assertEqual(r.status, 415, url[:120])
                self.assertNotEqual(code, "INVALID_PARAMETER", url[:120])
                queued.append(url)
        if queued:
            rows = self.wait_outbox(queued)
            for url in queued:
                self.assertEqual(rows[url]["status"], 2, (url, rows[url]))  # failed
                self.assertEqual(rows[url]["attempts"], 1, url)

    def wait_outbox(self, urls, timeout=120):
        deadline = time.time() + timeout
        while True:
            rows = {r[0]: {"status": r[1], "attempts": r[2], "error": r[3]} for r in SERVER.query(
                "SELECT url, status, attempts, last_error FROM outbox")}
            if all(u in rows and rows[u]["status"] != 0 for u in urls) or time.time() > deadline:
                return rows
            time.sleep(0.3)

    def poll(self, bid, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = SERVER.get("/v1/batch/" + bid, key=KEY)
            self.assertEqual(r.status, 200, r.body)
            if r.data["status"] in ("completed", "failed"):
                return r.data
            time.sleep(0.3)
        self.fail("batch did not finish")


class S01Controls(Base):
    """The allowed host is reachable: the refusals below are the guard's doing."""

    def test_public_host_direct_redirect_dns_webhook(self):
        for url in ("http://%s/img.png" % PUB_IP, redirect(302, "http://%s/img.png" % PUB_IP),
                    redirect(308, "http://good.test/img.png"), "http://good.test/img.png"):
            r = self.remove_url(url)
            self.assertEqual(r.status, 200, "%s: %r" % (url, r.body[:200]))
        hook = "http://%s/hook/ok" % PUB_IP
        r = SERVER.remove_file(KEY, b"not an image" * 20, fields=[("webhook_url", hook)])
        self.assertEqual(r.status, 415)
        rows = self.wait_outbox([hook])
        self.assertEqual(rows[hook]["status"], 1, rows[hook])  # delivered
        self.assertTrue(any(l.startswith("http POST /hook/ok") for l in log_lines("public")))


class S02Addresses(Base):
    def test_image_url(self):
        self.check_sync_refused(address_urls(), "IMAGE_DOWNLOAD_FAILED")

    def test_batch_items(self):
        self.check_batch_refused(address_urls())

    def test_webhook_url(self):
        self.check_webhooks_refused(address_urls(), "IMAGE_DOWNLOAD_FAILED")


class S03Syntax(Base):
    """Schemes other than http(s), credentials, overlong URLs, zone ids, no host."""

    def test_image_url(self):
        self.check_sync_refused(BAD_SYNTAX, "INVALID_PARAMETER")

    def test_batch_items(self):
        self.check_batch_refused(BAD_SYNTAX, "INVALID_PARAMETER")

    def test_webhook_url(self):
        self.check_webhooks_refused(BAD_SYNTAX, "INVALID_PARAMETER")


class S04Redirects(Base):
    def test_image_url(self):
        self.check_sync_refused(redirect_urls(), "IMAGE_DOWNLOAD_FAILED")
        hits = [l for l in log_lines("public") if l.startswith("http GET /r/")]
        self.assertGreaterEqual(len(hits), len(CODES) * len(REDIRECT_TARGETS))

    def test_batch_items(self):
        self.check_batch_refused(redirect_urls())

    def test_webhook_url(self):
        # Webhooks never follow redirects: a 3xx is a failed delivery.
        self.check_webhooks_refused([redirect(c, "http://127.0.0.1/hook") for c in CODES] +
                                    [redirect(307, "http://%s/hook/ok" % PUB_IP)],
                                    "IMAGE_DOWNLOAD_FAILED")


class S05DnsRebinding(Base):
    """rebind-*.test answer the public host first and 127.0.0.1 from then on;
    late-*.test the other way round. The server resolves once, checks, and
    connects to exactly the address it checked."""

    def test_first_allowed_then_loopback_is_pinned(self):
        r = self.remove_url("http://rebind-sync.test/img.png")
        self.assertEqual(r.status, 200, r.body[:200])  # fetched from the checked address
        dns = [l for l in log_lines("public") if " rebind-sync.test " in l and l.startswith("dns A ")]
        self.assertEqual(len(dns), 1, dns)  # resolved once: no second lookup to rebind
        # Every later lookup of the name gives 127.0.0.1: refused.
        self.check_sync_refused(["http://rebind-sync.test/img.png"], "IMAGE_DOWNLOAD_FAILED")
        r = SERVER.request("POST", "/v1/remove/batch", key=KEY,
                           body={"images": [{"image_url": "http://rebind-batch.test/img.png"}]})
        self.assertEqual(r.status, 202)
        self.assertEqual(self.poll(r.data["batch_id"])["status"], "completed")

    def test_first_loopback_then_allowed_is_refused(self):
        self.check_sync_refused(["http://late-sync.test/img.png"], "IMAGE_DOWNLOAD_FAILED")
        self.check_batch_refused(["http://late-batch.test/img.png"])
        self.check_webhooks_refused(["http://late-hook.test/hook"], "IMAGE_DOWNLOAD_FAILED")

    def test_redirect_to_a_rebinding_name(self):
        # The redirect target is resolved and checked again at its own hop.
        self.check_sync_refused([redirect(302, "http://late-redir.test/img.png")],
                                "IMAGE_DOWNLOAD_FAILED")


# ---- helpers run inside the namespaces (python3 test_ssrf.py --helper ROLE LOG IMG) -----------

def _helper(role, log_path, img_path):
    import http.server
    import socketserver
    with open(img_path, "rb") as f:
        img = f.read()
    log_lock = threading.Lock()
    logf = open(log_path, "a", buffering=1)

    def log(line):
        with log_lock:
            logf.write(line + "\n")

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            log("http GET %s host=%s" % (self.path, self.headers.get("Host")))
            u = urllib.parse.urlsplit(self.path)
            if role == "public" and u.path.startswith("/r/"):
                to = urllib.parse.parse_qs(u.query).get("to", [""])[0]
                return self.reply(int(u.path[3:]), headers=[("Location", to)])
            if role == "public" and u.path.startswith("/loop/"):
                n = int(u.path[6:]) + 1
                return self.reply(302, headers=[("Location", "/loop/%d" % n)])
            self.reply(200, img, [("Content-Type", "image/png")])

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            log("http POST %s host=%s" % (self.path, self.headers.get("Host")))
            u = urllib.parse.urlsplit(self.path)
            if role == "public" and u.path.startswith("/r/"):
                to = urllib.parse.parse_qs(u.query).get("to", [""])[0]
                return self.reply(int(u.path[3:]), headers=[("Location", to)])
            self.reply(200)

    class TS4(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    class TS6(TS4):
        address_family = socket.AF_INET6

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            super().server_bind()

    servers = [TS4(("0.0.0.0", 80), H)]
    if role == "sentinel":
        servers.append(TS4(("0.0.0.0", 8080), H))
        for port in (80, 8080):
            try:
                servers.append(TS6(("::", port), H))
            except OSError as e:
                log("note: no IPv6 sentinel on %d: %s" % (port, e))
    if role == "public":
        threading.Thread(target=_dns, args=(log,), daemon=True).start()
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    log("ready")
    servers[0].serve_forever()


def _dns(log):
    """A tiny authoritative DNS for *.test over UDP: A and AAAA, NXDOMAIN otherwise."""
    import struct
    counts = {}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 53))
    while True:
        q, addr = s.recvfrom(1500)
        try:
            qid, flags, qd = struct.unpack(">HHH", q[:6])
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace"))
                i += 1 + q[i]
            qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
            question = q[12:i + 5]
        except (IndexError, struct.error):
            continue
        name = ".".join(labels).lower()
        v4, v6, known = [], [], True
        if qtype == 1:
            n = counts[name] = counts.get(name, 0) + 1
        if name == "good.test":
            v4 = [PUB_IP]
        elif name.startswith("rebind-"):
            v4 = [PUB_IP] if qtype == 1 and n == 1 else ["127.0.0.1"]
        elif name.startswith("late-"):
            v4 = ["127.0.0.1"] if qtype == 1 and n == 1 else [PUB_IP]
        elif name == "loop.test":
            v4 = ["127.0.0.1"]
        elif name == "meta.test":
            v4 = ["169.254.169.254"]
        elif name == "ten.test":
            v4 = ["10.0.0.1"]
        elif name == "mixed.test":
            v4 = [PUB_IP, "127.0.0.1"]
        elif name == "v6loop.test":
            v6 = ["::1"]
        elif name == "mapped.test":
            v6 = ["::ffff:127.0.0.1"]
        else:
            known = False
        answers = b""
        if qtype == 1:
            for a in v4:
                answers += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 0, 4) + socket.inet_aton(a)
            got = v4
        elif qtype == 28:
            for a in v6:
                answers += b"\xc0\x0c" + struct.pack(">HHIH", 28, 1, 0, 16) + \
                    socket.inet_pton(socket.AF_INET6, a)
            got = v6
        else:
            got = []
        log("dns %s %s -> %s" % ({1: "A", 28: "AAAA"}.get(qtype, qtype), name,
                                  ",".join(got) if known else "NXDOMAIN"))
        rflags = 0x8400 | (flags & 0x0100) | (0 if known else 3)
        count = len(got) if qtype in (1, 28) else 0
        s.sendto(struct.pack(">HHHHHH", qid, rflags, 1, count, 0, 0) + question + answers, addr)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--helper":
        _helper(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        unittest.main()
