"""The harness and the pool runner: templates render without leftovers, stop() leaves no process
and no temporary folder behind, and pbiport-pool replaces a FastCGI process that dies."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness

TEMPLATES = {
    "nginx/pbiport.conf": ["LISTEN", "SOCKET", "HTPASSWD", "MAX_BODY", "STREAM_BODY"],
    "nginx/nginx.conf": ["PREFIX", "USER_LINE", "DAEMON", "WORKERS", "SERVER_CONF"],
    "lighttpd/pbiport.conf": ["SOCKET", "HTPASSWD", "MAX_BODY_KB", "STREAM_BODY_KB"],
    "lighttpd/lighttpd.conf": ["PREFIX", "BIND", "PORT", "USER_LINES", "SERVER_CONF"],
    "apache/pbiport.conf": ["SOCKET", "HTPASSWD", "MAX_BODY", "STREAM_BODY"],
    "apache/httpd.conf": ["PREFIX", "MODULES", "BIND", "PORT", "USER_LINES", "SERVER_CONF"],
}


class Templates(unittest.TestCase):
    def test_every_placeholder_is_known(self):
        # render() raises on a placeholder left without a value.
        for rel, keys in TEMPLATES.items():
            text = harness.render(os.path.join(harness.DEPLOY, rel), {k: "x" for k in keys})
            self.assertTrue(text, rel)

    def test_missing_value_is_refused(self):
        with self.assertRaises(ValueError):
            harness.render(os.path.join(harness.DEPLOY, "nginx", "pbiport.conf"), {"LISTEN": "1"})


class Teardown(unittest.TestCase):
    def test_stop_leaves_nothing(self):
        stack = harness.Stack("nginx", fcgi_procs=3).start()
        folder = stack.dir
        pids = stack.pids()
        # nginx master + worker, pbiport-pool with its three keepers, three pbiport.fcgi
        self.assertGreaterEqual(len(pids), 2 + 1 + 3)
        stack.stop()
        self.assertEqual([p for p in pids if harness.process_alive(p)], [])
        self.assertFalse(os.path.exists(folder))


class PoolRestart(harness.StackTestCase):
    """deploy/systemd/pbiport-pool replaces a pbiport.fcgi process that dies; requests keep working."""
    FCGI_PROCS = 2

    def fcgi_pids(self):
        out = []
        for pid in self.stack.pids():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv0 = f.read().split(b"\0")[0]
            except OSError:
                continue
            if argv0.endswith(b"pbiport.fcgi") and harness.process_alive(pid):
                out.append(pid)
        return sorted(out)

    def test_killed_process_is_replaced(self):
        before = self.fcgi_pids()
        self.assertEqual(len(before), 2, before)
        os.kill(before[0], signal.SIGKILL)
        for _ in range(20):
            status, _, _ = self.stack.request("GET", "/api/data-products", token="alice")
            self.assertEqual(status, 200)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = self.fcgi_pids()
            if len(now) == 2 and before[0] not in now:
                break
            time.sleep(0.1)
        self.assertEqual(len(now), 2, now)
        self.assertNotIn(before[0], now)


class PoolGivesUp(unittest.TestCase):
    """A pool whose processes cannot start (database not migrated) fails with their one clear
    line instead of restarting them forever."""

    def test_unmigrated_database(self):
        tmp = tempfile.mkdtemp(prefix="pbiport-pool-test-")
        try:
            db = os.path.join(tmp, "empty.db")
            open(db, "w").close()
            with socket.socket(socket.AF_UNIX) as listener:
                listener.bind(os.path.join(tmp, "pbiport.sock"))
                listener.listen(8)
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PBIPORT_DB": db,
                       "PBIPORT_FCGI_PROCS": "2"}
                fcgi = os.path.join(os.path.dirname(harness.pbiport_bin()), "pbiport.fcgi")
                res = subprocess.run([harness.POOL, fcgi], stdin=listener.fileno(), env=env,
                                     capture_output=True, text=True, timeout=120)
            self.assertEqual(res.returncode, 1, res.stderr)
            self.assertIn("pbiport migrate", res.stderr)
            self.assertIn("giving up", res.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
