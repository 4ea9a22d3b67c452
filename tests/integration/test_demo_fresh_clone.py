"""The README's first command in a brand-new clone, as a newcomer runs it: `git clone`, then
`deploy/demo.sh start` with the demo folder at its default place (var/demo inside the clone).

Run as root, nginx's workers are `nobody`: every folder between them and the FastCGI socket, the
folder nginx keeps request bodies over 1 MiB in, and the password file must be within their reach,
whatever the caller's umask, while the database and demo.env stay private. Two clones:
- umask 022 in a folder anyone may pass (as /home/x or /srv): var/demo is used as it is;
- umask 077 in a folder only root may pass (as /root): the web-facing part moves to /tmp.
Each one answers /healthz, basic auth, and a 2 MiB body; `stop` leaves nothing behind.

The clone gets the binary under test (PBIPORT_BIN) instead of building its own, so the suite does
not build twice; what is checked here is what the clone's files and the script do."""
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import unittest

import harness
from test_demo import StartedDemo, processes_mentioning

ROOT_USER = os.geteuid() == 0
WEB_USER = "nobody"


def clone_with_umask(parent, mask):
    dest = os.path.join(parent, "pbiport")
    res = subprocess.run(["git", "clone", "-q", "--no-hardlinks", harness.ROOT, dest],
                         capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.umask(mask))
    if res.returncode:
        raise RuntimeError("git clone failed: " + res.stderr)
    os.makedirs(os.path.join(dest, "bin"), exist_ok=True)
    shutil.copy2(harness.pbiport_bin(), os.path.join(dest, "bin", "pbiport"))
    os.symlink("pbiport", os.path.join(dest, "bin", "pbiport.fcgi"))
    return dest


class FreshClone(StartedDemo):
    """Mixed into a TestCase: MASK is the caller's umask, PARENT_MODE the clone's parent folder."""
    CURL_SECONDS = 30
    MASK = 0o022
    PARENT_MODE = 0o755

    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(harness.ROOT, ".git")):
            raise unittest.SkipTest("SKIP: %s is not a git clone" % harness.ROOT)
        cls.tmp = tempfile.mkdtemp(prefix="pbiport-clone-test-")
        os.chmod(cls.tmp, cls.PARENT_MODE)
        cls.clone = clone_with_umask(cls.tmp, cls.MASK)
        cls.demo_dir = os.path.join(cls.clone, "var", "demo")
        cls.port = harness.free_port()
        cls.start_demo({"PBIPORT_DEMO_PORT": str(cls.port), "PBIPORT_DEMO_BUILD": "0"})

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "clone", None):
            cls.demo("stop")
        shutil.rmtree(getattr(cls, "tmp", "/nonexistent"), ignore_errors=True)

    @classmethod
    def demo(cls, command):
        return subprocess.run(["bash", os.path.join(cls.clone, "deploy", "demo.sh"), command],
                              env=cls.env, capture_output=True, text=True, timeout=180,
                              preexec_fn=lambda: os.umask(cls.MASK))

    def test_1_answers_through_nginx(self):
        url = self.demo_env["PBIPORT_URL"]
        code, body = self.curl(url + "/healthz")
        self.assertEqual(code, 200, body)
        # basic auth: nginx's workers read the password file
        code, body = self.curl("-u", "member:" + self.demo_env["PBIPORT_DEMO_MEMBER_PASSWORD"],
                               url + "/api/data-products")
        self.assertEqual(code, 200, body)
        self.assertIn("Orders", body)

    def test_2_body_over_one_mib(self):
        # nginx keeps a body over client_body_buffer_size (1 MiB) in its temporary folder
        with open(os.path.join(harness.ROOT, "examples", "contracts", "orders.odcs.yaml")) as f:
            text = f.read().replace("id: urn:datacontract:sales:orders", "id: urn:datacontract:sales:orders-big", 1)
        pad = "# padding line to pass nginx's in-memory body buffer\n"
        body = pad * ((2 * 1024 * 1024) // len(pad) + 1) + text
        self.assertGreater(len(body), 2 * 1024 * 1024)
        path = os.path.join(self.tmp, "big.yaml")
        with open(path, "w") as f:
            f.write(body)
        code, reply = self.curl("-H", "Authorization: Bearer " + self.demo_env["PBIPORT_OWNER_TOKEN"],
                                "-H", "Content-Type: application/yaml", "--data-binary", "@" + path,
                                self.demo_env["PBIPORT_URL"] + "/api/data-products")
        self.assertIn(code, (200, 201), reply)
        self.assertIn("orders-big", reply)

    def test_3_private_parts_stay_private(self):
        mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
        self.assertEqual(mode(os.path.join(self.demo_dir, "demo.env")), 0o600)
        self.assertEqual(mode(os.path.join(self.demo_dir, "db")), 0o700)
        self.assertEqual(mode(os.path.join(self.demo_dir, "logs")), 0o700)
        htpasswd = os.path.join(self.demo_dir, "nginx", "htpasswd")
        self.assertEqual(mode(htpasswd), 0o400)
        if ROOT_USER:
            self.assertEqual(os.stat(htpasswd).st_uid, pwd.getpwnam(WEB_USER).pw_uid)

    def test_9_stop_leaves_nothing(self):
        web = os.path.realpath(os.path.join(self.demo_dir, "nginx"))
        res = self.demo("stop")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(processes_mentioning(self.clone), [])
        self.assertFalse(os.path.exists(web) and web.startswith("/tmp/pbiport-demo-web."), web)


class CloneUmask022(FreshClone, unittest.TestCase):
    MASK = 0o022
    PARENT_MODE = 0o755

    def test_4_demo_folder_is_used_in_place(self):
        self.assertFalse(os.path.islink(os.path.join(self.demo_dir, "nginx")))
        for rel in ("var", "var/demo", "var/demo/run", "var/demo/nginx", "var/demo/nginx/tmp"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.clone, rel)).st_mode), 0o711, rel)


class CloneUmask077InPrivateFolder(FreshClone, unittest.TestCase):
    MASK = 0o077
    PARENT_MODE = 0o700

    def test_4_web_part_moves_out_of_reach_of_nobody_else(self):
        if not ROOT_USER:
            self.skipTest("SKIP: nginx's workers run as the caller when not root")
        link = os.path.join(self.demo_dir, "nginx")
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.realpath(link).startswith("/tmp/pbiport-demo-web."))
        self.assertIn("out of reach", self.started.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
