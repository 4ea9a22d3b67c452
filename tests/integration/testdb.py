"""The database under an integration test, on either engine (Python 3 standard library only).

PBIPORT_TEST_DB chooses it: unset or "sqlite", a SQLite file in the stack's folder; "postgresql",
a fresh database in a throwaway cluster (tests/tools/pg_cluster.py). The cluster is the one the
test runs under (`pg_cluster.py run`, which sets PBIPORT_TEST_PG and PBIPORT_TEST_PG_DIR), else
one this process starts at its first database and that goes away when the process exits.

    target = new_database(folder)      # PBIPORT_DB's value for a stack: a path or a connection string
    db = connect(target)                # what tests read and write below the API
    db.execute("SELECT id FROM users WHERE name = ?", ("alice",)).fetchone()

connect() gives sqlite3's connection on SQLite and, on PostgreSQL, PgConnection: the same calls
(execute with ? parameters, fetchone/fetchall/iteration, commit, close, `with`), through `psql`.
psql rather than a driver because the tests may only use the standard library; parameters reach
psql as variables (-v pN=VALUE, written :'pN' in the statement), which psql quotes as literals, so
no value is ever pasted into SQL text; rows come back as row_to_json lines, keeping numbers numbers.
"""

import json
import os
import re
import sqlite3
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PG_CLUSTER = os.path.join(ROOT, "tests", "tools", "pg_cluster.py")
PSQL_TIMEOUT_S = 60
SKIP_STATUS = 77   # pg_cluster.py's exit status when the PostgreSQL binaries are absent


class Unavailable(Exception):
    """No PostgreSQL server binaries here (the message says what to install)."""


def backend():
    """"postgresql" or "sqlite", as PBIPORT_TEST_DB says."""
    value = os.environ.get("PBIPORT_TEST_DB", "sqlite") or "sqlite"
    if value not in ("sqlite", "postgresql"):
        raise ValueError("PBIPORT_TEST_DB must be sqlite or postgresql, not %r" % value)
    return value


def is_postgresql(target):
    """True when a PBIPORT_DB value names a PostgreSQL database (as runtime/config.c tells)."""
    return target.startswith(("postgresql://", "postgres://")) or "=" in target.split("/")[0]


class PgServer:
    """A running cluster: its folder (for pg_cluster.py down/up/stop) and its connection string."""

    def __init__(self, folder, conninfo):
        self.dir = folder
        self.conninfo = conninfo

    @classmethod
    def start(cls):
        """A new cluster, stopped and removed by pg_cluster.py's watcher once this process exits."""
        res = subprocess.run([sys.executable, PG_CLUSTER, "start", "--owner-pid", str(os.getpid())],
                             capture_output=True, text=True, timeout=120)
        if res.returncode == SKIP_STATUS:
            raise Unavailable(res.stdout.strip())
        if res.returncode != 0:
            raise RuntimeError("pg_cluster.py start failed (exit %d): %s%s" % (res.returncode, res.stdout, res.stderr))
        folder, conninfo = res.stdout.splitlines()[:2]
        return cls(folder, conninfo)

    def tool(self, command):
        """pg_cluster.py down|up|stop on this cluster."""
        subprocess.run([sys.executable, PG_CLUSTER, command, self.dir], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)

    def down(self):
        self.tool("down")

    def up(self):
        self.tool("up")

    def stop(self):
        self.tool("stop")

    def conninfo_for(self, dbname):
        return re.sub(r"dbname=\S+", "dbname=" + dbname, self.conninfo)

    def create_database(self, dbname):
        """A new empty database (dbname: letters, digits, _), its connection string."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", dbname):
            raise ValueError("bad database name %r" % dbname)
        psql(self.conninfo, "CREATE DATABASE %s" % dbname)
        return self.conninfo_for(dbname)

    def drop_database(self, dbname):
        """Removes dbname, cutting its connections (the stack's processes may linger)."""
        psql(self.conninfo, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % dbname)


_shared = None
_seq = 0


def shared_server():
    """The cluster this process's stacks use (see the module's text)."""
    global _shared
    if _shared is None:
        have, folder = os.environ.get("PBIPORT_TEST_PG"), os.environ.get("PBIPORT_TEST_PG_DIR")
        _shared = PgServer(folder, have) if have and folder else PgServer.start()
    return _shared


def new_database(folder, server=None):
    """PBIPORT_DB's value for a new stack whose files live in folder: folder/db/pbiport.db on
    SQLite, else a fresh database in server (default: shared_server())."""
    global _seq
    if backend() == "sqlite" and server is None:
        return os.path.join(folder, "db", "pbiport.db")
    server = server or shared_server()
    _seq += 1
    return server.create_database("it_%d_%d" % (os.getpid(), _seq))


def drop_database(target, server=None):
    """Removes a PostgreSQL database new_database made (a SQLite file goes with its folder)."""
    if is_postgresql(target):
        m = re.search(r"dbname=(\S+)", target)
        (server or shared_server()).drop_database(m.group(1))


def raw_contents(target):
    """Every byte the database stores, to assert a secret is nowhere in it: the SQLite file and its
    write-ahead log, or a plain pg_dump of the PostgreSQL database."""
    if is_postgresql(target):
        res = subprocess.run(["pg_dump", "--no-owner", "-d", target], capture_output=True, timeout=PSQL_TIMEOUT_S)
        if res.returncode != 0:
            raise RuntimeError("pg_dump failed: %s" % res.stderr.decode(errors="replace"))
        return res.stdout
    raw = b""
    for path in (target, target + "-wal"):
        if os.path.exists(path):
            with open(path, "rb") as f:
                raw += f.read()
    return raw


def connect(target, timeout=30):
    """A connection to the database PBIPORT_DB=target names (see the module's text)."""
    if is_postgresql(target):
        return PgConnection(target)
    return sqlite3.connect(target, timeout=timeout)


def psql(conninfo, sql, variables=None):
    """Runs sql (read from standard input, so psql substitutes :'name' variables) with
    ON_ERROR_STOP; its unaligned, tuples-only output."""
    argv = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo]
    for name, value in (variables or {}).items():
        argv += ["-v", "%s=%s" % (name, value)]
    res = subprocess.run(argv, input=sql.encode("utf-8"), capture_output=True, timeout=PSQL_TIMEOUT_S)
    if res.returncode != 0:
        raise PgError("%s\n%s" % (res.stderr.decode(errors="replace").strip(), sql))
    return res.stdout.decode("utf-8")


class PgError(Exception):
    pass


# A ? outside quotes, or a quoted span kept as it is.
_PARAM = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")|\?")
_QUERY = re.compile(r"^\s*(SELECT|WITH|VALUES)\b", re.IGNORECASE)


def bind(sql, params):
    """sql with each ? outside quotes replaced by psql's :'pN' (a str), a number or NULL; the
    variables psql needs. A number is written as Python prints it (digits, never text a caller
    chose)."""
    params = list(params or ())
    variables = {}
    count = [0]

    def repl(m):
        if m.group(1):
            return m.group(1)
        i = count[0]
        count[0] += 1
        if i >= len(params):
            raise ValueError("more ? than parameters in %r" % sql)
        value = params[i]
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (int, float)):
            return repr(value)
        name = "p%d" % (i + 1)
        variables[name] = value if isinstance(value, str) else str(value)
        return ":'%s'" % name

    text = _PARAM.sub(repl, sql)
    if count[0] != len(params):
        raise ValueError("%d parameters for %d ? in %r" % (len(params), count[0], sql))
    return text, variables


class PgCursor:
    def __init__(self, rows):
        self._rows = rows

    def fetchone(self):
        return self._rows.pop(0) if self._rows else None

    def fetchall(self):
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self):
        return iter(self.fetchall())


class PgConnection:
    """sqlite3.Connection's calls the tests use, on PostgreSQL through psql. Every statement
    commits on its own (commit() has nothing left to do); SQLite's PRAGMAs are not PostgreSQL's
    business (its foreign keys are always on) and do nothing."""

    def __init__(self, conninfo):
        self.conninfo = conninfo

    def execute(self, sql, params=()):
        if re.match(r"^\s*PRAGMA\b", sql, re.IGNORECASE):
            return PgCursor([])
        text, variables = bind(sql, params)
        if not _QUERY.match(text):
            psql(self.conninfo, text.rstrip().rstrip(";") + ";\n", variables)
            return PgCursor([])
        out = psql(self.conninfo, "SELECT row_to_json(q) FROM (%s) q;\n" % text.rstrip().rstrip(";"), variables)
        rows = []
        for line in out.splitlines():
            if line:
                rows.append(tuple(v for _, v in json.loads(line, object_pairs_hook=list)))
        return PgCursor(rows)

    def commit(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
