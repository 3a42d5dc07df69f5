"""Admin commands against a running server (issue 11), black box.

- `accounts delete` takes effect at once: the deleted account's keys are
  refused (401) from the next request, its results are gone (404) and their
  files removed from the data directory; another account is untouched.
- `accounts credits` changes what a running server charges and reports:
  /v1/account's credits_total and credits_remaining follow the adjustment,
  and a balance set to 0 refuses the next image with 402.
- A duplicate e-mail is refused while the server runs.

The model runs three times.
"""
import os
import subprocess
import unittest

from bgrtest import Server, child_env, photo

SRV = None


def setUpModule():
    global SRV
    SRV = Server("admin", args=["--workers", "1"]).start()


def tearDownModule():
    if SRV:
        SRV.cleanup()


def admin_raw(*args):
    return subprocess.run(SRV.admin_argv(*args), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=child_env())


class A01Delete(unittest.TestCase):
    def test_deleted_account_is_refused_at_once(self):
        acct, key = SRV.new_account("pro")
        other, other_key = SRV.new_account("pro")
        r = SRV.remove_file(key, photo("coffee"))
        self.assertEqual(r.status, 200, r.body)
        out_url = r.data["output_url"]
        name = out_url.rsplit("/", 1)[1]
        results = os.path.join(SRV.data_dir, "results")
        self.assertIn(name, os.listdir(results))
        self.assertEqual(SRV.get("/v1/account", key=key).status, 200)

        # Without confirmation nothing happens (stdin is not a terminal).
        p = admin_raw("accounts", "delete", acct)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("nothing was deleted", p.stderr)
        self.assertEqual(SRV.get("/v1/account", key=key).status, 200)

        p = admin_raw("accounts", "delete", acct, "--yes")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deleted %s" % acct, p.stdout)
        self.assertIn("1 results (1 files)", p.stdout)

        r = SRV.get("/v1/account", key=key)
        self.assertEqual(r.status, 401, r.body)
        self.assertEqual(r.code, "UNAUTHORIZED")
        self.assertEqual(SRV.fetch_url(out_url).status, 404)
        self.assertNotIn(name, os.listdir(results))
        # The other account still works.
        self.assertEqual(SRV.get("/v1/account", key=other_key).status, 200)


class A02Credits(unittest.TestCase):
    def test_adjustment_reaches_the_running_server(self):
        acct, key = SRV.new_account("free")
        d = SRV.get("/v1/account", key=key).data
        self.assertEqual((d["credits_total"], d["credits_remaining"]), (50, 50))

        SRV.admin("accounts", "credits", acct, "--add", "20")
        d = SRV.get("/v1/account", key=key).data
        self.assertEqual((d["credits_total"], d["credits_remaining"]), (70, 70))

        SRV.admin("accounts", "credits", acct, "--set", "0")
        d = SRV.get("/v1/account", key=key).data
        self.assertEqual(d["credits_remaining"], 0)
        r = SRV.remove_file(key, photo("coffee"))
        self.assertEqual(r.status, 402, r.body)

        SRV.admin("accounts", "credits", acct, "--set", "1")
        r = SRV.remove_file(key, photo("coffee"))
        self.assertEqual(r.status, 200, r.body)
        d = SRV.get("/v1/account", key=key).data
        self.assertEqual(d["credits_remaining"], 0)
        self.assertEqual(d["usage_this_month"]["credits_used"], 1)


class A03UniqueEmail(unittest.TestCase):
    def test_duplicate_email_refused(self):
        SRV.admin("accounts", "create", "--email", "Unique@Example.com", "--plan", "free")
        p = admin_raw("accounts", "create", "--email", "unique@example.COM", "--plan", "pro")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("exists already", p.stderr)


if __name__ == "__main__":
    unittest.main()
