"""deploy/demo.sh end to end: start on a free port in a temporary PBIPORT_DEMO_DIR, use it with
curl, check that no secret sits anywhere in the demo folder but demo.env, stop, nothing left."""
import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import harness

DEMO = os.path.join(harness.ROOT, "deploy", "demo.sh")


def processes_mentioning(text):
    """Live pids whose command line or environment mentions text (the demo folder)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (entry, name), "rb") as f:
                    if text.encode() in f.read() and harness.process_alive(int(entry)):
                        found.append(int(entry))
                        break
            except OSError:
                pass
    return found


def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = shlex.split(line)
            if words[0] == "export":
                words = words[1:]
            key, _, value = words[0].partition("=")
            env[key] = value
    return env


class StartedDemo:
    """Mixed into a TestCase whose setUpClass sets cls.demo_dir and starts the demo with start_demo:
    what every demo test does with a started demo (its demo.env, curl, each test refused with the
    start's output when the start failed). CURL_SECONDS bounds one curl call."""
    CURL_SECONDS = 10

    @classmethod
    def start_demo(cls, env):
        """Runs `demo.sh start` (cls.demo) with the caller's environment less every pbiport
        setting, plus env; cls.started is the result, cls.demo_env the demo.env it wrote."""
        cls.env = {k: v for k, v in os.environ.items() if not k.startswith(("PBIPORT_", "APPLICATION_"))}
        cls.env.update(env)
        cls.started = cls.demo("start")
        cls.demo_env = {}
        if cls.started.returncode == 0:
            cls.demo_env = read_env_file(os.path.join(cls.demo_dir, "demo.env"))

    def curl(self, *args):
        res = subprocess.run(["curl", "-sS", "-m", str(self.CURL_SECONDS), "-w", "\n%{http_code}"] + list(args),
                             capture_output=True, text=True, timeout=3 * self.CURL_SECONDS)
        body, _, code = res.stdout.rpartition("\n")
        return int(code or 0), body

    def setUp(self):
        self.assertEqual(self.started.returncode, 0, self.started.stdout + self.started.stderr)


class DemoScript(StartedDemo, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pbiport-demo-test-")
        # As root, nginx workers run as nobody and must traverse to the socket in the demo folder.
        os.chmod(cls.tmp, 0o711)
        cls.demo_dir = os.path.join(cls.tmp, "demo")
        cls.port = harness.free_port()
        env = {"PBIPORT_DEMO_DIR": cls.demo_dir, "PBIPORT_DEMO_PORT": str(cls.port), "PBIPORT_DEMO_FCGI": "2"}
        # The suite has built the binary already; building again could race another make.
        if os.access(os.path.join(harness.ROOT, "bin", "pbiport"), os.X_OK):
            env["PBIPORT_DEMO_BUILD"] = "0"
        cls.start_demo(env)

    @classmethod
    def tearDownClass(cls):
        cls.demo("stop")
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def demo(cls, command):
        return subprocess.run(["bash", DEMO, command], env=cls.env, capture_output=True, text=True,
                              timeout=180)

    def test_1_env_file(self):
        for key in ("PBIPORT_URL", "PBIPORT_OWNER_TOKEN", "PBIPORT_MEMBER_TOKEN", "PBIPORT_OTHER_ORG_TOKEN"):
            self.assertTrue(self.demo_env.get(key), key)
        self.assertEqual(self.demo_env["PBIPORT_URL"], "http://127.0.0.1:%d" % self.port)
        self.assertEqual(self.demo_env.get("PBIPORT_DEMO_PORT"), str(self.port))
        self.assertEqual(self.demo_env.get("APPLICATION_POWERBI_WEB_ENABLED"), "true")
        self.assertEqual(self.demo_env.get("APPLICATION_INGESTIONS_ENABLED"), "true")
        self.assertRegex(self.demo_env.get("APPLICATION_ENCRYPTION_KEYS", ""), r"^[0-9a-f]{64}")
        mode = os.stat(os.path.join(self.demo_dir, "demo.env")).st_mode & 0o777
        self.assertEqual(mode, 0o600)
        self.assertIn("curl", self.started.stdout)
        # the start ends with the page to open and the browser passwords, which sign in to it
        url = "http://127.0.0.1:%d/" % self.port
        self.assertIn("Open %s in a browser" % url, self.started.stdout)
        for user, key in (("owner", "PBIPORT_DEMO_OWNER_PASSWORD"), ("member", "PBIPORT_DEMO_MEMBER_PASSWORD")):
            password = self.demo_env[key]
            self.assertRegex(self.started.stdout, r"\n  %s +password %s " % (user, re.escape(password)))
            req = urllib.request.Request(url, headers={"Accept": "text/html", "Authorization": "Basic " + base64.b64encode(
                ("%s:%s" % (user, password)).encode()).decode()})
            with urllib.request.urlopen(req, timeout=30) as page:
                self.assertEqual(page.status, 200)
                self.assertIn("text/html", page.headers["Content-Type"])
        if os.path.exists(os.path.join(harness.ROOT, "tests", "emulator", "server.py")):
            # The emulator hook: when the emulator is there and starts, pbiport is pointed at it.
            self.assertTrue(self.demo_env.get("EMULATOR_URL", "").startswith("https://127.0.0.1:"))
            self.assertEqual(self.demo_env.get("PBIPORT_FABRIC_URL"), self.demo_env["EMULATOR_URL"] + "/fabric")

    def test_2_healthz_and_catalog(self):
        url = self.demo_env["PBIPORT_URL"]
        code, body = self.curl(url + "/healthz")
        self.assertEqual(code, 200, body)
        auth = "Authorization: Bearer " + self.demo_env["PBIPORT_OWNER_TOKEN"]
        code, body = self.curl("-H", auth, url + "/api/data-products")
        self.assertEqual(code, 200, body)
        self.assertIn('"data_products"', body)
        self.assertIn("Orders", body)  # the sample contract the demo imports
        code, body = self.curl("-u", "member:" + self.demo_env["PBIPORT_DEMO_MEMBER_PASSWORD"],
                               url + "/api/data-products")
        self.assertEqual(code, 200, body)
        self.assertIn("Orders", body)
        code, body = self.curl("-H", "Authorization: Bearer " + self.demo_env["PBIPORT_OTHER_ORG_TOKEN"],
                               url + "/api/data-products")
        self.assertEqual(code, 200, body)
        self.assertNotIn("Orders", body)
        code, _ = self.curl(url + "/api/data-products")
        self.assertEqual(code, 401)

    def test_3_status(self):
        res = self.demo("status")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("nginx running", res.stdout)
        self.assertIn("fastcgi running", res.stdout)
        self.assertIn("/healthz answers", res.stdout)

    def test_4_no_secret_outside_env_file(self):
        secrets = [v for k, v in self.demo_env.items() if k.endswith(("_TOKEN", "_PASSWORD"))]
        secrets += self.demo_env["APPLICATION_ENCRYPTION_KEYS"].split(",")
        secrets.append(self.demo_env["APPLICATION_SECURITY_REMEMBERME_KEY"])
        self.assertGreaterEqual(len(secrets), 6)
        checked = 0
        for folder, _, files in os.walk(self.demo_dir):
            for name in files:
                path = os.path.join(folder, name)
                if path == os.path.join(self.demo_dir, "demo.env") or not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    data = f.read()
                checked += 1
                for secret in secrets:
                    self.assertNotIn(secret.encode(), data, "%s holds a secret in clear" % path)
        self.assertGreater(checked, 3)

    def test_5_push_connection_for_the_demo_team(self):
        # the push-connection example of docs/refresh-push.md works as it is: both demo users share
        # the team demo.env names
        team = self.demo_env.get("PBIPORT_DEMO_TEAM")
        self.assertTrue(team)
        if "DEMO_SP_CLIENT_ID" not in self.demo_env:
            self.skipTest("SKIP: no emulator in this demo")
        body = json.dumps({"name": "demo-push", "team": team, "tenant_id": self.demo_env["DEMO_TENANT_ID"],
                           "client_id": self.demo_env["DEMO_SP_CLIENT_ID"],
                           "client_secret": self.demo_env["DEMO_SP_CLIENT_SECRET"]})
        code, reply = self.curl("-H", "Authorization: Bearer " + self.demo_env["PBIPORT_MEMBER_TOKEN"],
                                "-H", "Content-Type: application/json", "-d", body,
                                self.demo_env["PBIPORT_URL"] + "/api/push-connections")
        self.assertEqual(code, 201, reply)
        self.assertEqual(json.loads(reply)["team"], team)

    def test_6_readme_try_it_runs_as_one_paste(self):
        # README.md's "Try it" block, as a newcomer pastes it: no id is copied by hand
        if "DEMO_SP_CLIENT_ID" not in self.demo_env:
            self.skipTest("SKIP: no emulator in this demo")
        with open(os.path.join(harness.ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        section = readme[readme.index("## Try it"):]
        block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
        self.assertIn(". var/demo/demo.env", block)
        self.assertNotRegex(block, r"<[a-z_ ]*id>")
        script = "set -eo pipefail\n" + block.replace(". var/demo/demo.env", ". " + shlex.quote(
            os.path.join(self.demo_dir, "demo.env")))
        for attempt in ("first", "again"):   # a second paste works too
            res = subprocess.run(["bash", "-c", script], cwd=harness.ROOT, capture_output=True, text=True,
                                 timeout=180)
            self.assertEqual(res.returncode, 0, "%s paste: %s%s" % (attempt, res.stdout, res.stderr))
            self.assertEqual(res.stdout.count('"state": "succeeded"'), 2, res.stdout)
            self.assertIn('"finalizing"', res.stdout)
            self.assertIn("digraph lineage", res.stdout)

    def test_9_stop_leaves_nothing(self):
        pids = []
        for rel in ("nginx/nginx.pid", "run/fcgi.pid", "run/worker.pid", "run/emulator.pid"):
            path = os.path.join(self.demo_dir, rel)
            if os.path.exists(path):
                with open(path) as f:
                    pids += [int(x) for x in f.read().split() if x.isdigit()]
        self.assertTrue(pids)
        res = self.demo("stop")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual([p for p in pids if harness.process_alive(p)], [])
        self.assertEqual(processes_mentioning(self.demo_dir), [])
        res = self.demo("status")
        self.assertNotEqual(res.returncode, 0)
        self.assertNotIn(" running (pid", res.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
