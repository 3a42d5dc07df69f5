"""Usage stays exact under concurrent load (issue 4): requests are
group-committed, several to a transaction, and each response is sent only
after the commit that records it, so:

- api_calls (GET /v1/account) and total_requests (GET /v1/usage) equal the
  number of admitted requests the clients saw answered, while the admin CLI
  writes to the same database at the same time;
- a daily limit admits exactly per_day requests however many race for it;
- after kill -9 nothing answered is lost and nothing is counted twice.

No timing is asserted: speed is bench/http's business.
"""
import http.client
import threading
import time
import unittest

from bgrtest import Server

THREADS = 16
PER_THREAD = 125  # 2000 requests
DAILY = 300       # the limited plan's per_day in this test

SRV = None


def setUpModule():
    global SRV
    SRV = Server("usage-exact", args=[
        "--workers", "1",
        "--set", "plan.enterprise.per_minute=1000000",
        "--set", "plan.pro.per_minute=1000000",
        "--set", "plan.pro.per_day=%d" % DAILY,
    ]).start(wait_ready=False)  # no model needed: nothing here is inferred
    wait_up(SRV)


def tearDownModule():
    if SRV:
        SRV.cleanup()


def hammer(srv, key, paths, n_threads, per_thread):
    """n_threads keep-alive clients, per_thread requests each, cycling
    through paths. Returns {status: count}."""
    counts = {}
    lock = threading.Lock()
    errors = []

    def client(i):
        mine = {}
        try:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            for k in range(per_thread):
                c.request("GET", paths[(i + k) % len(paths)],
                          headers={"Authorization": "Bearer " + key})
                r = c.getresponse()
                r.read()
                mine[r.status] = mine.get(r.status, 0) + 1
                if r.getheader("Connection", "").lower() == "close":
                    c.close()
                    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
            c.close()
        except Exception as e:  # reported below: a lost request would skew the counts
            errors.append(repr(e))
        with lock:
            for s, n in mine.items():
                counts[s] = counts.get(s, 0) + n

    ts = [threading.Thread(target=client, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise AssertionError("client errors: %s" % errors[:3])
    return counts


def wait_up(srv, timeout=60):
    """Until the server answers (/healthz: not an API call, not counted)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if srv.get("/healthz").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not answering: %s" % srv.read_log())


def usage_days(srv, acct):
    """(usage rows, sum of usage_days) of acct, read from the store (SQLite
    file or PostgreSQL database)."""
    rows = srv.query("SELECT COUNT(*) AS n FROM usage WHERE account_id = ?", (acct,))[0][0]
    days = srv.query("SELECT COALESCE(SUM(n), 0) AS n FROM usage_days WHERE account_id = ?",
                     (acct,))[0][0]
    return int(rows), int(days)


class T01UsageExact(unittest.TestCase):
    def test_counts_match_answers_with_cli_writing(self):
        acct, key = SRV.new_account("enterprise")
        stop = threading.Event()
        cli_runs = []

        def admin_writer():
            # The admin CLI writes the same database while the server is
            # under load: accounts, keys, a plan change.
            while not stop.is_set():
                a, _ = SRV.new_account("free")
                SRV.admin("accounts", "set-plan", a, "pro")
                cli_runs.append(a)

        w = threading.Thread(target=admin_writer)
        w.start()
        try:
            counts = hammer(SRV, key, ["/v1/account", "/v1/usage"], THREADS, PER_THREAD)
        finally:
            stop.set()
            w.join()
        self.assertEqual(counts, {200: THREADS * PER_THREAD})
        self.assertGreater(len(cli_runs), 0)
        answered = THREADS * PER_THREAD
        d = SRV.get("/v1/account", key=key).data
        self.assertEqual(d["usage_this_month"]["api_calls"], answered)
        r = SRV.get("/v1/usage", key=key)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.data["total_requests"], answered + 1)
        self.assertEqual(usage_days(SRV, acct), (answered + 2, answered + 2))

    def test_daily_limit_exact_under_a_race(self):
        acct, key = SRV.new_account("pro")
        counts = hammer(SRV, key, ["/v1/account"], THREADS, 40)  # 640 racing for 300
        self.assertEqual(counts.get(200), DAILY, counts)
        self.assertEqual(counts.get(429), THREADS * 40 - DAILY, counts)
        self.assertEqual(usage_days(SRV, acct), (DAILY, DAILY))

    def test_kill9_loses_nothing_answered(self):
        acct, key = SRV.new_account("enterprise")
        counts = hammer(SRV, key, ["/v1/account"], 8, 50)
        self.assertEqual(counts, {200: 400})
        SRV.kill9()
        SRV.start(wait_ready=False)
        wait_up(SRV)
        d = SRV.get("/v1/account", key=key).data
        self.assertEqual(d["usage_this_month"]["api_calls"], 400)
        self.assertEqual(usage_days(SRV, acct), (401, 401))


if __name__ == "__main__":
    unittest.main()
