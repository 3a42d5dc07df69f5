#!/usr/bin/env python3
"""The browser test of the web page: page.test.mjs in headless Chromium.

run.py --bin PATH --work DIR [--out DIR]

Starts the real `bgremover serve` on 127.0.0.1 (a free port, a temporary
data directory, a pro account and key made with the admin commands), then
runs page.test.mjs with Node: it drives Debian's `chromium` through
puppeteer-core (installed into DIR/node_modules with `npm ci
--ignore-scripts` from the committed package-lock.json, once; DIR is in the
build tree). Screenshots (web-desktop.png, web-phone.png, web-docs.png) and
the downloaded result go to --out (default DIR/artifacts), kept as test
artefacts.

There is no skip: a missing chromium, node or npm is a failure naming
scripts/setup, which installs them. Exit status 0 pass, 1 fail; last line
"N passed, N failed".
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "api"))
import bgrtest  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee")


def install(work):
    if os.path.exists(os.path.join(work, "node_modules", "puppeteer-core", "package.json")):
        same = all(open(os.path.join(HERE, f), "rb").read() ==
                   open(os.path.join(work, f), "rb").read()
                   for f in ("package.json", "package-lock.json")
                   if os.path.exists(os.path.join(work, f)))
        if same:
            return
    os.makedirs(work, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, f), os.path.join(work, f))
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=work,
                   check=True, capture_output=True, text=True, timeout=600)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bgremover")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bgr-browser-test"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    bgrtest.BIN = os.path.abspath(args.bin)
    work = os.path.abspath(args.work)
    out = os.path.abspath(args.out or os.path.join(work, "artifacts"))
    chromium = os.environ.get("BGR_CHROMIUM") or shutil.which("chromium")
    for tool, path in (("chromium", chromium), ("node", shutil.which("node")),
                       ("npm", shutil.which("npm"))):
        if not path:
            print("FAIL: %s is not installed (scripts/setup installs it)" % tool)
            print("0 passed, 1 failed")
            return 1
    srv = None
    tmp = tempfile.mkdtemp(prefix="bgr-browser-")
    try:
        install(work)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        photos = []
        for name in PHOTOS:
            p = os.path.join(tmp, name + ".png")
            with open(p, "wb") as f:
                f.write(bgrtest.photo(name))
            photos.append(p)
        srv = bgrtest.Server("browser").start()
        _, key = srv.new_account("pro")
        env = dict(os.environ, BGR_WEB_BASE=srv.base, BGR_WEB_KEY=key,
                   BGR_WEB_PHOTOS=os.pathsep.join(photos), BGR_WEB_OUT=out,
                   BGR_WEB_NODE_MODULES=os.path.join(work, "node_modules"), BGR_CHROMIUM=chromium)
        p = subprocess.run(["node", os.path.join(HERE, "page.test.mjs")], capture_output=True,
                           text=True, timeout=900, env=env)
        sys.stderr.write(p.stderr[-5000:])
        checks = []
        for line in p.stdout.splitlines():
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if "check" in r:
                checks.append(r)
                print("%s ... %s" % (r["check"], "ok" if r["ok"] else "FAIL " + r["detail"]))
            elif "metrics" in r:
                m = r["metrics"]
                print("metrics: page transfer %s bytes (/, /web/*), first result %s ms" %
                      (m.get("page_transfer_bytes"), m.get("first_result_ms")))
        print("artefacts: %s" % " ".join(os.path.join(out, f) for f in sorted(os.listdir(out))))
        failed = [c for c in checks if not c["ok"]]
        if p.returncode != 0 and not failed:
            failed = [{"check": "node", "ok": False}]
            print("FAIL: node exited %d:\n%s" % (p.returncode, p.stdout[-3000:]))
        if failed or not checks:
            print(srv.read_log()[-3000:], file=sys.stderr)
        print("%d passed, %d failed" % (len(checks) - len(failed), len(failed) or (0 if checks else 1)))
        return 1 if failed or not checks else 0
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        print("FAIL: %s: %s" % (type(e).__name__, e))
        print("0 passed, 1 failed")
        return 1
    finally:
        if srv:
            srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
