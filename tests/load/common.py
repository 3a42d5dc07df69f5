"""Shared helpers of the load scripts (tests/load/*.py): not part of `make test`.

They drive the real `bgremover serve` through tests/api/bgrtest.py and print
numbers. Server RSS comes from /proc/<pid>/status (VmRSS now, VmHWM peak).
The 10 MB photo is skimage's astronaut upscaled 6x with colour noise, made
with the `vips` command (Debian: libvips-tools) and cached in /tmp.
"""
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "api"))
import bgrtest  # noqa: E402

SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"


def set_bin(path):
    bgrtest.BIN = os.path.abspath(path)


def proc_status(pid):
    """{'VmRSS': KiB, 'VmHWM': KiB, 'Threads': n} of a live process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def big_photo(target_mb=10.0, path="/tmp/bgr-load-photo-%dmb.jpg"):
    """A noisy ~target_mb MB JPEG photo (cached)."""
    path = path % round(target_mb)
    if os.path.exists(path):
        return path
    tmp = tempfile.mkdtemp(prefix="bgr-photo-")
    try:
        def vips(*a):
            subprocess.run(("vips",) + a, check=True, capture_output=True, timeout=120)
        vips("resize", os.path.join(SKIMAGE, "astronaut.png"), tmp + "/big.v", "6")
        for i in range(3):
            vips("gaussnoise", "%s/n%d.v" % (tmp, i), "3072", "3072", "--sigma", "17")
        vips("bandjoin", " ".join("%s/n%d.v" % (tmp, i) for i in range(3)), tmp + "/n.v")
        vips("add", tmp + "/big.v", tmp + "/n.v", tmp + "/s.v")
        vips("cast", tmp + "/s.v", tmp + "/u.v", "uchar")
        for q in (96, 97, 98, 99, 100):
            vips("copy", tmp + "/u.v", "%s/p.jpg[Q=%d]" % (tmp, q))
            if os.path.getsize(tmp + "/p.jpg") >= target_mb * 1e6:
                break
        os.replace(tmp + "/p.jpg", path)
    finally:
        subprocess.run(["rm", "-rf", tmp])
    return path


class RssSampler:
    """Samples a process's VmRSS every `every` seconds in a thread."""

    def __init__(self, pid, every=1.0):
        self.pid, self.every = pid, every
        self.samples = []  # (seconds since start, KiB)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.time()
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append((time.time() - self.t0, proc_status(self.pid)["VmRSS"]))
            except OSError:
                return
            self._stop.wait(self.every)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.samples


def mib(kib):
    return kib / 1024.0
