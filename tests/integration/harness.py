"""Integration harness: a real web server in front of a pbiport FastCGI pool, on loopback.

A Stack owns one temporary folder, a fresh database (made with `pbiport migrate`: a SQLite file in
the folder, or with PBIPORT_TEST_DB=postgresql a new database in a throwaway PostgreSQL cluster, see
testdb.py),
two organizations with users and API tokens (made with the CLI), a FastCGI pool on a unix socket
(spawn-fcgi -n + deploy/systemd/pbiport-pool), and nginx, lighttpd or Apache on a free 127.0.0.1
port, rendered from the same templates admins deploy (deploy/<server>/). stop() ends every process
group it started.

    with Stack("nginx", fcgi_procs=4) as s:
        status, headers, body = s.request("GET", "/healthz")

StackTestCase starts one Stack per test class (setUpClass) and stops it in tearDownClass.
Environment: PBIPORT_BIN (binary under test, default <repo>/bin/pbiport; pbiport.fcgi is its
sibling), PBIPORT_TEST_DB (sqlite, the default, or postgresql), PBIPORT_KEEP_TMP=1 keeps the
temporary folder for inspection.
Python 3 standard library only.
"""

import atexit
import base64
import grp
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import testdb

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
DEPLOY = os.path.join(ROOT, "deploy")
POOL = os.path.join(DEPLOY, "systemd", "pbiport-pool")

# Default request body bound, as PBIPORT_MAX_BODY defaults to in the application.
DEFAULT_MAX_BODY = 10485760
STREAM_MAX_BODY = 268435456
START_TIMEOUT_S = 30.0
PORT_ATTEMPTS = 3
STOP_TIMEOUT_S = 10.0
APACHE_MODULES = "/usr/lib/apache2/modules"
# When the tests run as root, web server workers drop to this account.
WEB_USER, WEB_GROUP = "nobody", "nogroup"

WEB_UID = pwd.getpwnam(WEB_USER).pw_uid
WEB_GID = grp.getgrnam(WEB_GROUP).gr_gid

PLACEHOLDER = re.compile(r"@[A-Z][A-Z0-9_]*@")

# Users every stack creates: name -> (organization, role).
USERS = {
    "alice": ("acme", "owner"),
    "bob": ("acme", "member"),
    "carol": ("globex", "owner"),
}
# Known to the web server's password file only: pbiport must answer 401 for it.
GHOST_USER = "ghost"


def pbiport_bin():
    return os.path.abspath(os.environ.get("PBIPORT_BIN") or os.path.join(ROOT, "bin", "pbiport"))


def render(template_path, values):
    """Text of a deploy template with every @KEY@ outside comment lines replaced (comments keep
    documenting the placeholders); fails on a placeholder left without a value, so a template and
    its callers cannot drift apart silently. deploy/demo.sh renders the same way with sed."""
    with open(template_path, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    out = []
    for line in lines:
        if not line.lstrip().startswith("#"):
            for key, value in values.items():
                line = line.replace("@%s@" % key, str(value))
            left = PLACEHOLDER.search(line)
            if left:
                raise ValueError("%s: placeholder %s has no value" % (template_path, left.group(0)))
        out.append(line)
    return "".join(out)


def render_to(template_path, values, out_path):
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(render(template_path, values))
    return out_path


def free_port():
    """A loopback port nobody listens on (bound once with port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def apr1_hash(password):
    """An htpasswd line hash every server here accepts ($apr1$), made by openssl."""
    out = subprocess.run(["openssl", "passwd", "-apr1", "-stdin"], input=password.encode(),
                         capture_output=True, check=True)
    return out.stdout.decode().strip()


def become_subreaper():
    """Orphans of our children (the spawn-fcgi pool) are re-parented to this process instead of
    init, so stop() can reap them and leaves no zombie behind (Linux only; harmless elsewhere)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def reap_orphans():
    """Collect exited processes re-parented to us (see become_subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_group(proc_or_pgid, timeout=STOP_TIMEOUT_S):
    """SIGTERM a process group, SIGKILL what is left after timeout, reap the leader."""
    pgid = proc_or_pgid.pid if hasattr(proc_or_pgid, "pid") else proc_or_pgid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if hasattr(proc_or_pgid, "poll"):
                proc_or_pgid.poll()
            else:
                reap(pgid)
            if not group_alive(pgid):
                break
            time.sleep(0.05)
        if not group_alive(pgid):
            break
    if not hasattr(proc_or_pgid, "wait"):
        reap(pgid)
    else:
        try:
            proc_or_pgid.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass


def process_alive(pid):
    """True while pid runs (a zombie counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg; look for a live member.
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class CommandError(Exception):
    pass


class ServerExited(RuntimeError):
    pass


class Stack:
    """One database + FastCGI pool + web server, started by start() and ended by stop()."""

    def __init__(self, server="nginx", fcgi_procs=2, env=None, max_body=None, web_max_body=None,
                 nginx_workers=1, nginx_extra="", database=None, same_identities_as=None):
        """database: PBIPORT_DB of a database to use (default: a new one, see testdb.py), which
        the caller owns; same_identities_as: another Stack on that database whose users and tokens
        this one takes instead of making its own (a second web host)."""
        if server not in ("nginx", "lighttpd", "apache"):
            raise ValueError("unknown web server %r" % server)
        self.server = server
        self.fcgi_procs = fcgi_procs
        self.extra_env = dict(env or {})
        self.max_body = int(max_body or self.extra_env.get("PBIPORT_MAX_BODY") or DEFAULT_MAX_BODY)
        self.extra_env.setdefault("PBIPORT_MAX_BODY", str(self.max_body))
        # The web server's own bound; the shipped configs keep it equal to PBIPORT_MAX_BODY, tests
        # raise it to reach pbiport's check.
        self.web_max_body = int(web_max_body or self.max_body)
        self.nginx_workers = nginx_workers
        # More http-context text for nginx (the benchmark's `return 200` server).
        self.nginx_extra = nginx_extra
        self.bin = pbiport_bin()
        self.fcgi_bin = os.path.join(os.path.dirname(self.bin), "pbiport.fcgi")
        self.dir = None
        self.db_target = None  # PBIPORT_DB: the SQLite file's path or a PostgreSQL connection string
        self.database = database
        self.same_identities_as = same_identities_as
        self.port = None
        self.tokens = {}
        self.passwords = {}
        self._groups = []  # (name, Popen or pgid)

    # ---- paths -----------------------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def socket_path(self):
        return self.path("run", "pbiport.sock")

    @property
    def fcgi_log(self):
        return self.path("logs", "pbiport.log")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- life cycle --------------------------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def env(self):
        """The application's environment, passed explicitly (nothing inherited but PATH and the
        sanitizer settings)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PBIPORT_DB": self.db_target}
        for key in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "PBIPORT_TEMPLATE_PATH"):
            if key in os.environ:
                env[key] = os.environ[key]
        env.update(self.extra_env)
        return env

    def start(self):
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError("pbiport binary not found at %s (run make)" % self.bin)
        become_subreaper()
        self.dir = tempfile.mkdtemp(prefix="pbiport-it-")
        atexit.register(self.stop)
        # Web server workers run as nobody when we are root: they need to reach the socket.
        os.chmod(self.dir, 0o711)
        for sub in ("db", "run", "logs", "web", "web/logs", "web/tmp", "web/run", "web/empty"):
            os.makedirs(self.path(sub), exist_ok=True)
        os.chmod(self.path("db"), 0o700)
        if os.geteuid() == 0:
            # lighttpd opens its logs after dropping privileges.
            for sub in ("web/logs", "web/tmp", "web/run"):
                os.chown(self.path(sub), WEB_UID, WEB_GID)
        os.chmod(self.path("run"), 0o711)
        try:
            self.db_target = self.database or testdb.new_database(self.dir)
            self.cli("migrate")
            if self.same_identities_as:
                self._take_identities(self.same_identities_as)
            else:
                self._make_identities()
            self._start_pool()
            for attempt in range(PORT_ATTEMPTS):
                self.port = free_port()
                getattr(self, "_start_" + self.server)()
                try:
                    self._wait_healthy()
                    break
                except ServerExited:
                    # Another process took the port between free_port() and the bind: try another.
                    if attempt + 1 == PORT_ATTEMPTS or not self._port_was_taken():
                        raise
                    _, proc = self._groups.pop()
                    kill_group(proc)
        except BaseException:
            sys.stderr.write(self.diagnostics())
            self.stop()
            raise
        return self

    def stop(self):
        while self._groups:
            _, proc = self._groups.pop()
            kill_group(proc)
        reap_orphans()
        if (self.db_target and not self.database and testdb.is_postgresql(self.db_target)
                and not os.environ.get("PBIPORT_KEEP_TMP")):
            try:
                testdb.drop_database(self.db_target)
            except (RuntimeError, OSError, subprocess.SubprocessError, testdb.PgError) as e:
                sys.stderr.write("harness: %s\n" % e)   # the cluster goes with the process anyway
        self.db_target = None
        if self.dir and os.path.isdir(self.dir):
            if os.environ.get("PBIPORT_KEEP_TMP"):
                sys.stderr.write("harness: kept %s\n" % self.dir)
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def pids(self):
        """Live process ids of every group this stack started."""
        out = []
        for _, proc in self._groups:
            pgid = proc.pid if hasattr(proc, "pid") else proc
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        if os.getpgid(int(entry)) == pgid:
                            out.append(int(entry))
                    except OSError:
                        pass
        return out

    # ---- CLI ---------------------------------------------------------------------------------
    def cli(self, *args, check=True, input_text=None):
        """Run `pbiport ARGS` with the stack's environment; returns (rc, stdout, stderr)."""
        res = subprocess.run([self.bin] + list(args), env=self.env(), capture_output=True,
                             input=input_text.encode() if input_text is not None else None,
                             timeout=60)
        out, err = res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")
        if check and res.returncode != 0:
            raise CommandError("pbiport %s: exit %d: %s" % (" ".join(args), res.returncode, err.strip()))
        return res.returncode, out, err

    def _make_identities(self):
        for org in sorted({org for org, _ in USERS.values()}):
            self.cli("org", "create", org)
        lines = []
        for name, (org, role) in USERS.items():
            self.cli("user", "add", name, "--org", org, "--role", role)
            _, out, _ = self.cli("token", "create", name)
            self.tokens[name] = out.strip()
            self.passwords[name] = base64.b32encode(os.urandom(10)).decode().lower()
            lines.append("%s:%s\n" % (name, apr1_hash(self.passwords[name])))
        self.passwords[GHOST_USER] = base64.b32encode(os.urandom(10)).decode().lower()
        lines.append("%s:%s\n" % (GHOST_USER, apr1_hash(self.passwords[GHOST_USER])))
        with open(self.path("web", "htpasswd"), "w") as f:
            f.writelines(lines)
        os.chmod(self.path("web", "htpasswd"), 0o644)

    def _take_identities(self, other):
        self.tokens, self.passwords = dict(other.tokens), dict(other.passwords)
        shutil.copyfile(other.path("web", "htpasswd"), self.path("web", "htpasswd"))
        os.chmod(self.path("web", "htpasswd"), 0o644)

    def _start_pool(self):
        # spawn-fcgi makes the socket (owner, mode) and, with -n, stays in the foreground as
        # deploy/systemd/pbiport-pool, which runs fcgi_procs copies of pbiport.fcgi on it (forking
        # spawn-fcgi -F N would send their stderr, the request log, to /dev/null).
        args = ["spawn-fcgi", "-n", "-s", self.socket_path, "-M", "0600"]
        if os.geteuid() == 0:
            # Only the web server's unprivileged workers may connect.
            args += ["-U", WEB_USER, "-G", WEB_GROUP]
        args += ["--", POOL, self.fcgi_bin]
        env = self.env()
        env["PBIPORT_FCGI_PROCS"] = str(self.fcgi_procs)
        log = open(self.fcgi_log, "ab")
        proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
        log.close()
        self._groups.append(("fcgi", proc))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(self.socket_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("spawn-fcgi did not create %s" % self.socket_path)
            time.sleep(0.02)

    def restart_pool(self, env=None, wait_healthy=True):
        """Stops the FastCGI pool and starts it again with env merged into the application's
        environment (None values remove a variable): a configuration change such as a key
        rotation, with the same database and web server. wait_healthy=False returns once the
        socket is there (a pool started while its database is away answers 503)."""
        for i, (name, proc) in enumerate(self._groups):
            if name == "fcgi":
                kill_group(proc)
                del self._groups[i]
                break
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        for key, value in (env or {}).items():
            if value is None:
                self.extra_env.pop(key, None)
            else:
                self.extra_env[key] = value
        self._start_pool()
        if wait_healthy:
            self._wait_healthy()

    def _spawn_server(self, args):
        log = open(self.path("web", "logs", "stderr.log"), "ab")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
        log.close()
        self._groups.append((self.server, proc))

    def _common_values(self):
        return {
            "SOCKET": self.socket_path,
            "HTPASSWD": self.path("web", "htpasswd"),
            "MAX_BODY": self.web_max_body,
            "STREAM_BODY": max(STREAM_MAX_BODY, self.web_max_body),
            "MAX_BODY_KB": max(1, self.web_max_body // 1024),
            "STREAM_BODY_KB": max(STREAM_MAX_BODY, self.web_max_body) // 1024,
            "PREFIX": self.path("web"),
            "BIND": "127.0.0.1",
            "PORT": self.port,
            "LISTEN": "127.0.0.1:%d" % self.port,
            "SERVER_CONF": self.path("web", "pbiport.conf"),
        }

    def _start_nginx(self):
        values = self._common_values()
        values.update({"USER_LINE": "user %s %s;" % (WEB_USER, WEB_GROUP) if os.geteuid() == 0 else "",
                       "DAEMON": "off", "WORKERS": str(self.nginx_workers)})
        render_to(os.path.join(DEPLOY, "nginx", "pbiport.conf"), values, values["SERVER_CONF"])
        if self.nginx_extra:
            with open(values["SERVER_CONF"], "a") as f:
                f.write("\n" + self.nginx_extra)
        conf = render_to(os.path.join(DEPLOY, "nginx", "nginx.conf"), values, self.path("web", "nginx.conf"))
        self._spawn_server(["nginx", "-p", self.path("web") + "/", "-c", conf,
                            "-e", self.path("web", "logs", "error.log")])

    def _start_lighttpd(self):
        values = self._common_values()
        values["USER_LINES"] = ('server.username = "%s"\nserver.groupname = "%s"' % (WEB_USER, WEB_GROUP)
                                if os.geteuid() == 0 else "")
        render_to(os.path.join(DEPLOY, "lighttpd", "pbiport.conf"), values, values["SERVER_CONF"])
        conf = render_to(os.path.join(DEPLOY, "lighttpd", "lighttpd.conf"), values,
                         self.path("web", "lighttpd.conf"))
        self._spawn_server(["lighttpd", "-D", "-f", conf])

    def _start_apache(self):
        values = self._common_values()
        values["USER_LINES"] = "User %s\nGroup %s" % (WEB_USER, WEB_GROUP) if os.geteuid() == 0 else ""
        values["MODULES"] = APACHE_MODULES
        render_to(os.path.join(DEPLOY, "apache", "pbiport.conf"), values, values["SERVER_CONF"])
        conf = render_to(os.path.join(DEPLOY, "apache", "httpd.conf"), values,
                         self.path("web", "httpd.conf"))
        self._spawn_server(["apache2", "-d", self.path("web"), "-f", conf, "-DFOREGROUND"])

    def _wait_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            for name, proc in self._groups:
                if hasattr(proc, "poll") and proc.poll() is not None:
                    raise ServerExited("%s exited with %d during start-up" % (name, proc.returncode))
            try:
                status, _, body = self.request("GET", "/healthz", timeout=2)
                if status == 200:
                    return
                last = "%d %s" % (status, body[:200])
            except OSError as e:
                last = str(e)
            time.sleep(0.05)
        raise RuntimeError("no healthy /healthz within %.0fs (last: %s)" % (START_TIMEOUT_S, last))

    def _port_was_taken(self):
        """True when the web server's logs say its port was in use; the logs are emptied for the
        next attempt."""
        taken = False
        for rel in ("web/logs/stderr.log", "web/logs/error.log"):
            p = self.path(rel)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    taken = taken or "already in use" in f.read()
                open(p, "w").close()
        return taken

    def diagnostics(self):
        """Tails of every log file, for a failing start or test."""
        if not self.dir:
            return ""
        out = []
        for rel in ("logs/pbiport.log", "web/logs/stderr.log", "web/logs/error.log"):
            p = self.path(rel)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    tail = f.readlines()[-20:]
                out.append("---- %s\n%s" % (rel, "".join(tail)))
        return "".join(out)

    # ---- HTTP --------------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, token=None, basic=None, timeout=30):
        """One HTTP/1.1 request; returns (status, headers with lower-case names, body bytes).
        token: a Bearer token or a user name of this stack; basic: a user name of this stack
        (their generated password is used) or a (user, password) pair."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + self.tokens.get(token, token)
        if basic is not None:
            user, pw = basic if isinstance(basic, tuple) else (basic, self.passwords[basic])
            hdrs["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
        return http_request(self.port, method, path, body=body, headers=hdrs, timeout=timeout)

    def json(self, method, path, body=None, headers=None, token=None, basic=None):
        """request() with a JSON-decoded body (None when the body is not JSON)."""
        status, hdrs, data = self.request(method, path, body=body, headers=headers, token=token, basic=basic)
        try:
            doc = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            doc = None
        return status, hdrs, doc

    def send_json(self, method, path, body=None, token=None):
        """json() with body sent as JSON: a Python value is encoded, a str or bytes goes as it is
        (a test's malformed body); None sends no body."""
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        headers = {"Content-Type": "application/json"} if body is not None else None
        return self.json(method, path, body=body, headers=headers, token=token)

    def db(self):
        """The stack's database, for what a test checks or sets up below the API: sqlite3's
        connection (waiting up to 30 s for a writer: the workers write too) or testdb's
        PgConnection with the same calls."""
        return testdb.connect(self.db_target, timeout=30)

    def execute(self, sql, *args):
        """One statement straight into the database and committed: another process than the
        pool's, as a worker or an admin's tool writes."""
        with self.db() as db:
            db.execute(sql, args)
            db.commit()

    def scalar(self, sql, *args):
        """The first column of the first row sql selects."""
        with self.db() as db:
            return db.execute(sql, args).fetchone()[0]

    def db_raw(self):
        """Every byte the database stores (to assert a secret is nowhere in it)."""
        return testdb.raw_contents(self.db_target)

    def import_contract(self, text, token="alice", content_type=None, name_hint=None):
        """POST a contract; the content type follows the text (JSON or YAML) unless given."""
        if content_type is None:
            content_type = "application/json" if text.lstrip().startswith("{") else "application/yaml"
        return self.json("POST", "/api/data-products", body=text,
                         headers={"Content-Type": content_type}, token=token)

    def sanitizer_reports(self):
        """AddressSanitizer / UndefinedBehaviorSanitizer lines the pool wrote (check-asan builds)."""
        return [line for line in self.log_lines()
                if "ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line
                or "runtime error:" in line]

    def log_lines(self):
        """The FastCGI processes' stderr lines so far."""
        with open(self.fcgi_log, errors="replace") as f:
            return f.read().splitlines()


def http_request(port, method, path, body=None, headers=None, timeout=30):
    """One HTTP/1.1 request to 127.0.0.1:port; (status, headers with lower-case names, body)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def emulator_env(emu):
    """The environment that points pbiport at a running emulator (tests/emulator/emutest.py
    Emulator): its four hosts and its test CA (verification stays on)."""
    return {
        "PBIPORT_ENTRA_URL": emu.url + "/entra",
        "PBIPORT_FABRIC_URL": emu.url + "/fabric",
        "PBIPORT_POWERBI_URL": emu.url + "/powerbi",
        "PBIPORT_GRAPH_URL": emu.url + "/graph",
        "PBIPORT_CA_BUNDLE": os.path.join(emu.dir, "ca.pem"),
    }


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def tenants_fixture(name="demo.json"):
    """The emulator's tenant fixture tests/fixtures/tenants/<name>, parsed (a new copy each call)."""
    with open(os.path.join(ROOT, "tests", "fixtures", "tenants", name), encoding="utf-8") as f:
        return json.load(f)


def app_credentials(tenant, index):
    """(client_id, client_secret) of app number index of a fixture tenant (demo.json: 0 the web
    sign-in app, 1 the scanner app, 2 the push app)."""
    app = tenant["apps"][index]
    return app["client_id"], app["client_secret"]


class StackTestCase(unittest.TestCase):
    """One Stack per test class. Subclasses set SERVER, FCGI_PROCS, ENV; ADMIN_TEMPLATES = True
    gives the stack an admin's template folder, cls.tpl (PBIPORT_TEMPLATE_PATH), which
    cls.fill_templates(folder) fills before the stack starts and which goes with the class."""
    SERVER = "nginx"
    FCGI_PROCS = 2
    ENV = {}
    WEB_MAX_BODY = None
    ADMIN_TEMPLATES = False
    stack = None
    tpl = None

    @classmethod
    def setUpClass(cls):
        env = cls.ENV
        if cls.ADMIN_TEMPLATES:
            cls.tpl = tempfile.mkdtemp(prefix="pbiport-admin-templates-")
            cls.fill_templates(cls.tpl)
            env = dict(env, PBIPORT_TEMPLATE_PATH=cls.tpl)
        cls.stack = Stack(cls.SERVER, fcgi_procs=cls.FCGI_PROCS, env=env, web_max_body=cls.WEB_MAX_BODY,
                          **cls.stack_options())
        cls.stack.start()

    @classmethod
    def fill_templates(cls, folder):
        """Writes the admin's templates into folder (ADMIN_TEMPLATES)."""

    @classmethod
    def stack_options(cls):
        """More Stack keywords for the class's stack (none by default)."""
        return {}

    @classmethod
    def tearDownClass(cls):
        if cls.tpl:
            shutil.rmtree(cls.tpl, ignore_errors=True)
        if not cls.stack:
            return
        reports = cls.stack.sanitizer_reports() if cls.stack.dir else []
        cls.stack.stop()
        if reports:
            raise AssertionError("sanitizer reports from the FastCGI processes:\n" + "\n".join(reports[:20]))

    def assertError(self, resp, status, code=None):
        """resp = (status, headers, doc) from Stack.json: checks the JSON error shape."""
        got, hdrs, doc = resp
        self.assertEqual(got, status, "expected %d, got %d: %r" % (status, got, doc))
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), hdrs)
        self.assertIsInstance(doc, dict, resp)
        self.assertIn("error", doc)
        self.assertIsInstance(doc["error"].get("code"), str)
        self.assertIsInstance(doc["error"].get("message"), str)
        if code is not None:
            self.assertEqual(doc["error"]["code"], code, doc)
        return doc["error"]


class EmulatorStackTestCase(StackTestCase):
    """A Stack pointed at a Power BI emulator (tests/emulator/emutest.py) that is started
    before it and stopped after it. Subclasses set EMU_FIXTURE, EMU_OPTIONS (more Emulator
    keywords) and EMU_ENV (settings beside the emulator's hosts), and override
    set_up_stack() for class set-up that needs the running stack."""
    EMU_FIXTURE = "demo.json"
    EMU_OPTIONS = {}
    EMU_ENV = {}
    emu = None

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
        import emutest  # the emulator's own helper, beside server.py
        cls.emu = emutest.Emulator(fixture=cls.EMU_FIXTURE, **cls.EMU_OPTIONS)
        cls.ENV = dict(emulator_env(cls.emu), **cls.EMU_ENV)
        try:
            super().setUpClass()
            cls.set_up_stack()
        except BaseException:
            cls.emu.stop()
            raise

    @classmethod
    def set_up_stack(cls):
        """More class set-up once the stack runs (nothing by default)."""

    @classmethod
    def load_tenants_aged(cls, fx):
        """Resets the emulator to the tenants of fx as they were two hours ago, so that nothing
        counts as modified in the last 30 minutes (the shortest modifiedSince Power BI takes)."""
        cls.emu.control("POST", "reset")
        cls.emu.control("POST", "advance", {"seconds": -7200})
        cls.emu.control("POST", "load", fx)
        cls.emu.control("POST", "advance", {"seconds": 7200})

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.emu.stop()


def main():
    """unittest.main that exits non-zero on failure (each test file calls this)."""
    unittest.main(verbosity=2)


def contract_variant(text, contract_id=None, version=None):
    """A YAML fixture with its top-level `id:` and/or `version:` line replaced."""
    out = []
    for line in text.splitlines(keepends=True):
        if contract_id is not None and line.startswith("id:"):
            line = "id: %s\n" % contract_id
        elif version is not None and line.startswith("version:"):
            line = "version: %s\n" % version
        out.append(line)
    return "".join(out)


LINE_COLUMN = re.compile(r"(\d+:\d+|line \d+.{0,20}col(umn)? \d+)", re.IGNORECASE)


class SmokeTests:
    """The short check every supported web server passes (mixed into a StackTestCase with
    SERVER set): liveness, token and basic-auth identity, an import and a read, 413 and 401."""
    ENV = {"PBIPORT_MAX_BODY": "65536"}

    def test_healthz(self):
        status, hdrs, doc = self.stack.json("GET", "/healthz")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc.get("status"), "ok")
        self.assertTrue(hdrs.get("x-request-id"))

    def test_import_and_read_with_token(self):
        text = contract_variant(fixture("orders.odcs.yaml"), contract_id="urn:pbiport:it:smoke-" + self.SERVER)
        status, _, doc = self.stack.import_contract(text, token="alice")
        self.assertEqual(status, 201, doc)
        status, _, got = self.stack.json("GET", "/api/data-products/" + doc["id"], token="bob")
        self.assertEqual(status, 200, got)
        self.assertEqual(got["id"], doc["id"])
        self.assertEqual(len(got["output_ports"]), 2)
        status, _, port = self.stack.json("GET", "/api/output-ports/" + doc["output_ports"][0]["id"], token="alice")
        self.assertEqual(status, 200, port)

    def test_read_with_basic_auth(self):
        status, _, doc = self.stack.json("GET", "/api/data-products", basic="alice")
        self.assertEqual(status, 200, doc)
        self.assertIn("data_products", doc)

    def server_error(self, status, code, method="GET", body=None, headers=None):
        """A request the web server refuses itself: the answer has pbiport's JSON error shape, the
        request id the client sent, and (for 401) exactly one WWW-Authenticate header."""
        request_id = "it-%s-%d" % (self.SERVER, status)
        hdrs = dict(headers or {}, **{"X-Request-Id": request_id})
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
        try:
            conn.request(method, "/api/data-products", body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            pairs = resp.getheaders()
        finally:
            conn.close()
        self.assertEqual(resp.status, status, data)
        named = lambda name: [v for k, v in pairs if k.lower() == name]
        self.assertEqual(len(named("content-type")), 1, pairs)
        self.assertTrue(named("content-type")[0].startswith("application/json"), pairs)
        self.assertEqual(named("x-request-id"), [request_id], pairs)
        doc = json.loads(data.decode("utf-8"))
        self.assertEqual(doc["error"]["code"], code, doc)
        self.assertTrue(doc["error"]["message"], doc)
        if status == 401:
            self.assertEqual(len(named("www-authenticate")), 1, pairs)
            self.assertTrue(named("www-authenticate")[0].startswith("Basic"), pairs)
        return doc["error"]

    def test_body_over_limit_is_413(self):
        body = "# padding\n" * 7000 + fixture("orders.odcs.yaml")
        self.server_error(413, "payload_too_large", "POST", body.encode(),
                          {"Content-Type": "application/yaml", "Authorization": "Bearer " + self.stack.tokens["alice"]})

    def test_no_identity_is_401(self):
        self.server_error(401, "unauthorized")

    def test_wrong_basic_password_is_401(self):
        self.server_error(401, "unauthorized", headers={
            "Authorization": "Basic " + base64.b64encode(b"alice:not-her-password").decode()})

    def test_session_cookie_and_sign_in_pages_reach_pbiport(self):
        """pbiport's own sign-in passes the web server's basic auth: a request with its session cookie
        is answered by pbiport (its 401 asks for a Bearer token, the web server's for basic auth), and
        so is /signin (turned off here: no PBIPORT_SSO_*)."""
        status, hdrs, doc = self.stack.json("GET", "/api/data-products", headers={"Cookie": "pbiport_session=forged"})
        self.assertEqual(status, 401, doc)
        self.assertEqual(doc["error"]["code"], "unauthorized")
        self.assertTrue(hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs)
        status, _, doc = self.stack.json("GET", "/signin")
        self.assertEqual((status, doc["error"]["code"]), (404, "feature_disabled"), doc)
        # a basic header without a password check is not believed
        status, _, doc = self.stack.json("GET", "/api/data-products", headers={
            "Cookie": "pbiport_session=forged", "Authorization": "Basic " + base64.b64encode(b"alice:x").decode()})
        self.assertEqual(status, 401, doc)

    def test_wrong_token_is_401(self):
        status, hdrs, doc = self.stack.json("GET", "/api/data-products", token="not-a-real-token")
        self.assertEqual(status, 401, doc)
        self.assertIn("error", doc)
