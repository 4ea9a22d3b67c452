"""The harness itself: templates render without leftovers, and stop() leaves no process and no
temporary folder behind."""
import os
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
