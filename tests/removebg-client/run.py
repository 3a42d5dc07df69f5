#!/usr/bin/env python3
"""The real-client test: the npm package `remove.bg` against bgremover.

run.py --bin PATH --work DIR [--store sqlite|pg]

The client cannot be pointed anywhere but https://api.remove.bg, so this
does what an operator would: makes a test CA and a certificate for
api.remove.bg with openssl, runs `bgremover serve` with TLS on 127.0.0.1:443
inside a fresh network namespace whose /etc/netns/NAME/hosts maps
api.remove.bg to 127.0.0.1, and runs the client there with
NODE_EXTRA_CA_CERTS. A small HTTP server in the same namespace serves the
photo for the URL call. The client's file, URL and base64 calls (crop,
scale, position, bg_color, channels) must succeed, and the images they write
are decoded and checked here.

The client and its dependencies are installed into DIR/node_modules with
`npm ci --ignore-scripts` from the committed package-lock.json (once; DIR is
in the build tree, never committed). Exit status: 0 pass, 1 fail, 77 skipped
(network namespaces not permitted here: the reason is printed). Everything
it creates (namespace, /etc/netns/NAME, processes, temporary files) is
removed on every path. Last line: "N passed, N failed".

--store pg (or $BGR_TEST_STORE=pg): the server and the admin commands use a
throw-away PostgreSQL cluster (tests/common/pgserver.py) through its unix
socket, which the namespace can reach (its loopback is not the host's);
exit 77 when the PostgreSQL binaries are absent.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "api"))
from bgrtest import photo, run_admin  # noqa: E402
import bgrtest  # noqa: E402
from test_removebg import jpeg_info, png_decode  # noqa: E402

SKIP = 77


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=300, **kw)


def install_client(work):
    mod = os.path.join(work, "node_modules", "remove.bg", "package.json")
    if os.path.exists(mod):
        return
    os.makedirs(work, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, f), os.path.join(work, f))
    sh(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=work)


def make_certs(d):
    """A test CA, and a certificate for api.remove.bg signed by it."""
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, cert = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "ext.cnf")
    sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=bgremover test CA"])
    sh(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
        "/CN=api.remove.bg"])
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:api.remove.bg\nextendedKeyUsage=serverAuth\n")
    sh(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext])
    return ca, cert, key


class Netns:
    """A network namespace with loopback up and its own hosts file."""

    def __init__(self):
        self.name = "bgrrbg%d" % os.getpid()
        self.etc = "/etc/netns/" + self.name
        self.made = False

    def create(self):
        p = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True)
        if p.returncode != 0:
            return p.stderr.strip() or "ip netns add failed"
        self.made = True
        os.makedirs(self.etc, exist_ok=True)
        with open(os.path.join(self.etc, "hosts"), "w") as f:
            f.write("127.0.0.1 localhost api.remove.bg\n::1 localhost\n")
        sh(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"])
        return None

    def argv(self, args):
        return ["ip", "netns", "exec", self.name] + list(args)

    def destroy(self):
        if self.made:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)
        try:
            os.rmdir("/etc/netns")  # only if empty: others may use it
        except OSError:
            pass


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(ns, ca, proc, log, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited:\n" + open(log).read()[-3000:])
        p = subprocess.run(ns.argv(["curl", "-s", "--cacert", ca, "https://api.remove.bg/readyz"]),
                           capture_output=True, text=True)
        if '"ready"' in p.stdout:
            return
        time.sleep(0.5)
    raise RuntimeError("server not ready in %d s" % timeout)


def check(results, out):
    """Returns a list of (name, error or None)."""
    by = {r["call"]: r for r in results}
    checks = []

    def case(name, fn):
        r = by.get(name)
        try:
            if not r:
                raise AssertionError("no result")
            fn(r)
            checks.append((name, None))
        except Exception as e:  # noqa: BLE001 - report every failure
            checks.append((name, "%s: %r" % (type(e).__name__, e)))

    def ok(r):
        if not r["ok"]:
            raise AssertionError("call failed: %r" % r["error"])
        return r["result"]

    def file_crop_scale(r):
        res = ok(r)
        w, h, bands, rows = png_decode(open(os.path.join(out, "file_crop_scale.png"), "rb").read())
        assert bands == 4, bands
        assert (str(w), str(h)) == (res["resultWidth"], res["resultHeight"]), (w, h, res)
        assert res["creditsCharged"] == "0.25", res
        assert res["detectedType"] == "person", res
        assert res["rateLimit"] and res["rateLimitRemaining"] and res["rateLimitReset"], res
        # crop then scale=50%: the canvas is the subject's box, the subject
        # half of it and centred, so the border is transparent.
        assert all(rows[0][x] == 0 for x in range(3, w * 4, 4)), "top row not transparent"
        assert max(rows[h // 2][3::4]) == 255, "no opaque subject in the middle"
        assert w * h < 500 * 500, (w, h)

    def file_plain(r):
        res = ok(r)
        w, h, bands, rows = png_decode(open(os.path.join(out, "file_plain.png"), "rb").read())
        assert (w, h, bands) == (500, 500, 4), (w, h, bands)
        alpha = set(v for row in rows for v in row[3::4])
        assert 0 in alpha and 255 in alpha
        assert res["creditsCharged"] == "0.25", res

    def url_bg_color(r):
        res = ok(r)
        w, h, comps = jpeg_info(open(os.path.join(out, "url_bg_color.jpg"), "rb").read())
        assert (w, h, comps) == (512, 512, 3), (w, h, comps)  # medium: the original size
        assert res["creditsCharged"] == "1", res

    def base64_channels_crop(r):
        res = ok(r)
        w, h, comps = jpeg_info(open(os.path.join(out, "base64_channels_crop.jpg"), "rb").read())
        assert comps == 1, comps  # channels=alpha: the grey matte
        assert (str(w), str(h)) == (res["resultWidth"], res["resultHeight"]), (w, h, res)
        assert w * h < 500 * 500, (w, h)  # cropped

    def base64_scale_position(r):
        ok(r)
        w, h, comps = jpeg_info(open(os.path.join(out, "base64_scale_position.jpg"), "rb").read())
        assert (w, h, comps) == (500, 500, 3), (w, h, comps)

    def bad_key(r):
        assert not r["ok"], r
        err = r["error"][0]
        assert err["code"] == "auth_failed" and err["title"], err
        assert not os.path.exists(os.path.join(out, "never.png"))

    for name, fn in [("file_crop_scale", file_crop_scale), ("file_plain", file_plain),
                     ("url_bg_color", url_bg_color), ("base64_channels_crop", base64_channels_crop),
                     ("base64_scale_position", base64_scale_position), ("bad_key", bad_key)]:
        case(name, fn)
    return checks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bgremover")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bgr-removebg-client"))
    ap.add_argument("--store", choices=("sqlite", "pg"),
                    default=os.environ.get("BGR_TEST_STORE") or "sqlite")
    args = ap.parse_args()
    bgrtest.BIN = os.path.abspath(args.bin)
    bgrtest.STORE = args.store
    if args.store == "pg":
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "common"))
        import pgserver
        if not pgserver.available():
            print("SKIP: --store pg needs PostgreSQL 15 (Debian: postgresql-15)")
            print("0 passed, 0 failed")
            return SKIP
    for tool in ("ip", "openssl", "node", "npm", "curl"):
        if not shutil.which(tool):
            print("FAIL: %s is not installed (scripts/setup --test installs it)" % tool)
            print("0 passed, 1 failed")
            return 1
    ns = Netns()
    tmp = tempfile.mkdtemp(prefix="bgr-rbg-client-")
    srv = files = None
    try:
        why = ns.create()
        if why:
            print("SKIP: network namespaces are not permitted here (%s)" % why)
            print("0 passed, 0 failed")
            return SKIP
        install_client(args.work)
        ca, cert, key = make_certs(tmp)
        data = os.path.join(tmp, "data")
        store = bgrtest.store_url(bgrtest.new_store_db(), socket=True)  # None on SQLite
        acct = run_admin(["accounts", "create", "--email", "client@example.com", "--plan", "pro"],
                         data, store)[-1].split()[0]
        api_key = run_admin(["keys", "create", "--account", acct], data, store)[-1].strip()
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        photo_path = os.path.join(www, "astronaut.png")
        with open(photo_path, "wb") as f:
            f.write(photo("astronaut"))
        log = os.path.join(tmp, "server.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BGR_") or
               k == "BGR_MODEL_DIR"}
        with open(log, "ab") as lf:
            srv = subprocess.Popen(ns.argv([bgrtest.BIN, "serve", "--listen", "127.0.0.1:443",
                                            "--data-dir", data, "--tls-cert", cert, "--tls-key",
                                            key, "--allow-private-urls"] +
                                           bgrtest.store_argv(store)),
                                   stdout=subprocess.DEVNULL, stderr=lf, env=env)
            files = subprocess.Popen(ns.argv([sys.executable, "-m", "http.server", "8099",
                                              "--bind", "127.0.0.1", "--directory", www]),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(ns, ca, srv, log)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        cenv = dict(os.environ, NODE_EXTRA_CA_CERTS=ca,
                    NODE_PATH=os.path.join(os.path.abspath(args.work), "node_modules"))
        p = subprocess.run(ns.argv(["node", os.path.join(HERE, "client.js"), api_key, photo_path,
                                    "http://127.0.0.1:8099/astronaut.png", out]),
                           capture_output=True, text=True, timeout=600, env=cenv)
        sys.stderr.write(p.stderr)
        results = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        for r in results:
            print(json.dumps(r)[:300])
        checks = check(results, out)
        failed = [c for c in checks if c[1]]
        for name, err in checks:
            print("%s ... %s" % (name, "FAIL " + err if err else "ok"))
        if failed:
            print(open(log).read()[-3000:], file=sys.stderr)
        print("%d passed, %d failed" % (len(checks) - len(failed), len(failed)))
        return 1 if failed else 0
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        print("FAIL: %s: %s" % (type(e).__name__, e))
        print("0 passed, 1 failed")
        return 1
    finally:
        stop(srv)
        stop(files)
        ns.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
        if bgrtest.PG is not None:
            bgrtest.PG.close()


if __name__ == "__main__":
    sys.exit(main())
