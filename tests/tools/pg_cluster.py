#!/usr/bin/env python3
"""A throwaway PostgreSQL cluster for tests (Python standard library only).

initdb in a new temporary folder, the server listening on a unix socket in that folder (no TCP
unless --tcp), a database made with createdb, and everything stopped and removed at the end.
PostgreSQL refuses to run as root: when this runs as root the cluster belongs to an unprivileged
system user (postgres when Debian's package made it, else nobody) and its commands run through
runuser. The server binaries come from PBIPORT_PG_BINDIR, Debian's /usr/lib/postgresql/*/bin
(the newest) or PATH.

As a module:

    with Cluster() as c:          # started; stopped and removed on leaving, also on Ctrl-C
        c.conninfo                # "host=/tmp/pbiport-pg-.../sock port=5432 user=pbiport dbname=pbiport"
        c.down(); c.up()          # stop / start the server, keeping its data (a restart test)

From the shell (exit status 77 with a SKIP line when the PostgreSQL binaries are absent):

    pg_cluster.py run [--tcp] [--db NAME] -- CMD ARG...
        starts a cluster, runs CMD with PBIPORT_TEST_PG set to the connection string, stops and
        removes the cluster whatever happens to CMD (also on Ctrl-C, SIGTERM), exits with CMD's status
    pg_cluster.py start [--tcp] [--db NAME] [--owner-pid PID] [--url]
        starts a cluster that outlives this command and prints two lines: its folder, then its
        connection string (a postgresql:// URL with --url). With --owner-pid, a watcher stops and
        removes it once process PID has exited (a test that crashed leaves nothing behind)
    pg_cluster.py down DIR | up DIR | stop DIR
        stops the server (fast shutdown), starts it again on the same data and socket, or stops it
        and removes DIR
    pg_cluster.py ensure-up DIR
        starts the server again only when it is down, saying so (tests/run.sh after each test: a
        test that stopped the shared server and failed before starting it again fails alone)
"""
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

SKIP_STATUS = 77
SUPERUSER = "pbiport"
STATE_FILE = "cluster.json"
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; PostgreSQL appends "/.s.PGSQL.NNNNN"


class Unavailable(Exception):
    """The PostgreSQL server binaries are not installed."""


def find_bindir():
    """The folder holding initdb, pg_ctl and postgres, or raises Unavailable."""
    candidates = []
    if os.environ.get("PBIPORT_PG_BINDIR"):
        candidates.append(os.environ["PBIPORT_PG_BINDIR"])

    def version(path):
        try:
            return float(path.split("/")[-2])
        except ValueError:
            return 0.0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(os.path.dirname(os.path.realpath(on_path)))
    for d in candidates:
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres", "createdb")):
            return d
    raise Unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's "
                      "postgresql package (make deps) or set PBIPORT_PG_BINDIR")


def server_user():
    """The account the server runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a postgres nor a nobody account exists")


def world_traversable(path):
    """True when every folder from / down to path lets others through (o+x)."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def free_tcp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, dbname="pbiport", tcp=False):
        self.dbname = dbname
        self.tcp = tcp
        self.dir = None
        self.port = None
        self.bindir = None
        self.user = None

    # -- paths and connection strings -------------------------------------------------------
    @property
    def datadir(self):
        return os.path.join(self.dir, "data")

    @property
    def sockdir(self):
        return os.path.join(self.dir, "sock")

    @property
    def logfile(self):
        return os.path.join(self.dir, "postgres.log")

    @property
    def host(self):
        return "127.0.0.1" if self.tcp else self.sockdir

    @property
    def conninfo(self):
        """A libpq key=value connection string (psql and pbiport's PBIPORT_DB accept it)."""
        return "host=%s port=%d user=%s dbname=%s" % (self.host, self.port, SUPERUSER, self.dbname)

    def conninfo_for(self, dbname):
        return "host=%s port=%d user=%s dbname=%s" % (self.host, self.port, SUPERUSER, dbname)

    @property
    def url(self):
        """The same as a postgresql:// URL (a socket folder goes in the host query parameter)."""
        if self.tcp:
            return "postgresql://%s@127.0.0.1:%d/%s" % (SUPERUSER, self.port, self.dbname)
        return "postgresql://%s@/%s?host=%s&port=%d" % (
            SUPERUSER, self.dbname, urllib.parse.quote(self.sockdir, safe="/"), self.port)

    # -- running commands --------------------------------------------------------------------
    def _server_cmd(self, argv):
        """argv run as the server's account."""
        if self.user is None:
            return argv
        return ["runuser", "-u", self.user.pw_name, "--"] + argv

    def _run(self, argv, as_server=True, check=True):
        cmd = self._server_cmd(argv) if as_server else argv
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, cwd=self.dir)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (exit %d):\n%s%s" % (" ".join(argv[:2]), p.returncode, p.stdout,
                                                              self._log_tail()))
        return p

    def _log_tail(self):
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return "\n--- postgres.log ---\n" + "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def _bin(self, name):
        return os.path.join(self.bindir, name)

    # -- life cycle --------------------------------------------------------------------------
    def start(self):
        self.bindir = find_bindir()
        self.user = server_user()
        base = None
        if self.user is not None and not world_traversable(tempfile.gettempdir()):
            base = "/tmp"  # the server's account must reach the folder
        self.dir = tempfile.mkdtemp(prefix="pbiport-pg-", dir=base)
        if len(self.sockdir) > SOCKET_PATH_MAX:
            os.rmdir(self.dir)
            self.dir = tempfile.mkdtemp(prefix="pbiport-pg-", dir="/tmp")
        try:
            os.chmod(self.dir, 0o755)
            os.mkdir(self.sockdir, 0o755)
            if self.user is not None:
                for p in (self.dir, self.sockdir):
                    os.chown(p, self.user.pw_uid, self.user.pw_gid)
            self.port = free_tcp_port() if self.tcp else 5432
            # C locale: text sorts and compares byte by byte, as SQLite's BINARY collation does
            self._run([self._bin("initdb"), "-D", self.datadir, "-U", SUPERUSER, "--auth=trust",
                       "--encoding=UTF8", "--locale=C", "--no-sync"])
            settings = {
                "listen_addresses": "'127.0.0.1'" if self.tcp else "''",
                "port": str(self.port),
                "unix_socket_directories": "'%s'" % self.sockdir,
                "unix_socket_permissions": "0777",
                "max_connections": "200",
                "shared_buffers": "32MB",
                # a throwaway cluster: nothing to keep if the machine goes down
                "fsync": "off",
                "full_page_writes": "off",
                "synchronous_commit": "off",
                "logging_collector": "off",
            }
            conf = "".join("%s = %s\n" % kv for kv in settings.items())
            self._append_conf(conf)
            self.up()
            self._run([self._bin("createdb"), "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, self.dbname], as_server=False)
            self._save_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _append_conf(self, text):
        path = os.path.join(self.datadir, "postgresql.conf")
        with open(path, "a", encoding="utf-8") as f:  # root may write it; it stays the server's
            f.write("\n# pbiport test cluster (tests/tools/pg_cluster.py)\n" + text)

    def up(self):
        """Starts the server on the existing data; returns once it accepts connections."""
        self._run([self._bin("pg_ctl"), "-D", self.datadir, "-l", self.logfile, "-w", "-t", "60", "start"])

    def running(self):
        """Whether the server runs (pg_ctl status)."""
        return self._run([self._bin("pg_ctl"), "-D", self.datadir, "status"], check=False).returncode == 0

    def ensure_up(self):
        if not self.running():
            print("pg_cluster.py: the server was down: started again")
            self.up()

    def down(self, mode="fast"):
        """Stops the server (connections are cut), keeping its data."""
        self._run([self._bin("pg_ctl"), "-D", self.datadir, "-w", "-t", "60", "-m", mode, "stop"], check=False)

    def stop(self):
        """Stops the server and removes the folder. Safe to call twice."""
        if not self.dir:
            return
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            self.down(mode="immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def _save_state(self):
        state = {"dbname": self.dbname, "tcp": self.tcp, "port": self.port, "bindir": self.bindir}
        with open(os.path.join(self.dir, STATE_FILE), "w", encoding="utf-8") as f:
            json.dump(state, f)

    @classmethod
    def attach(cls, folder):
        """The cluster a `start` command left running in folder."""
        with open(os.path.join(folder, STATE_FILE), encoding="utf-8") as f:
            state = json.load(f)
        c = cls(dbname=state["dbname"], tcp=state["tcp"])
        c.dir, c.port, c.bindir = folder, state["port"], state["bindir"]
        c.user = server_user()
        return c

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _watch_owner(cluster, owner_pid):
    """In a detached child: stops and removes cluster once owner_pid has exited."""
    if os.fork() != 0:
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        while os.path.isdir(cluster.dir):
            try:
                os.kill(owner_pid, 0)
            except ProcessLookupError:
                cluster.stop()
                break
            except PermissionError:
                pass
            time.sleep(0.5)
    finally:
        os._exit(0)


def _parse(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("run", "start"):
        p = sub.add_parser(name)
        p.add_argument("--tcp", action="store_true", help="listen on 127.0.0.1 (a free port) as well")
        p.add_argument("--db", default="pbiport", help="the database to create (default pbiport)")
        if name == "run":
            p.add_argument("cmd", nargs=argparse.REMAINDER)
        else:
            p.add_argument("--owner-pid", type=int, help="stop and remove the cluster when this process exits")
            p.add_argument("--url", action="store_true", help="print a postgresql:// URL")
    for name in ("down", "up", "stop", "ensure-up"):
        sub.add_parser(name).add_argument("dir")
    return ap.parse_args(argv)


def main(argv):
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if args.command == "run":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                print("pg_cluster.py run: no command given", file=sys.stderr)
                return 2
            with Cluster(dbname=args.db, tcp=args.tcp) as c:
                env = dict(os.environ, PBIPORT_TEST_PG=c.conninfo, PBIPORT_TEST_PG_DIR=c.dir)
                child = subprocess.Popen(cmd, env=env)
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    child.terminate()
                    child.wait()
                    return 130
        if args.command == "start":
            c = Cluster(dbname=args.db, tcp=args.tcp).start()
            if args.owner_pid:
                _watch_owner(c, args.owner_pid)
            print(c.dir)
            print(c.url if args.url else c.conninfo)
            return 0
        c = Cluster.attach(args.dir)
        getattr(c, args.command.replace("-", "_"))()
        return 0
    except Unavailable as e:
        print("SKIP: %s" % e)
        return SKIP_STATUS
    except KeyboardInterrupt:
        return 130
    except (RuntimeError, OSError) as e:
        print("pg_cluster.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
