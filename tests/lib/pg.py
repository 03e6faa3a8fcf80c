# SPDX-License-Identifier: MIT
"""A real PostgreSQL 15 server in a temporary directory, for the tests of a
fleet of daemons sharing one database. Debian's postgresql-15: initdb and
pg_ctl from its bin dir, psql as a client.

The server listens on a unix socket in its own directory (optionally also on
127.0.0.1), trusts every local connection as role jada, and trades durability
for speed (fsync off): a test's database lives only as long as the test."""

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import urllib.parse

from harness import TIMEOUT, alive

PG_BIN = "/usr/lib/postgresql/15/bin"
PSQL = "/usr/bin/psql"
USER = "jada"
# initdb and a start or stop that waits (pg_ctl -w -t 60) may take a while on
# a loaded CI machine; this bounds them with room over pg_ctl's own limit.
SLOW = 60 + TIMEOUT
# psql_rows's separators: NUL between fields (text in PostgreSQL cannot hold
# it), RS between rows (no test writes one into a value).
FS, RS = "\0", "\x1e"


def free_port():
    """A TCP port nobody listens on now. The unix socket's name carries it
    too, and with tcp=True the server binds it on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster: initdb in __init__, then start()/stop() as often as a test
    wants (same port, same data), close() to end it and remove every file.
    As a context manager it starts on entry and closes on exit."""

    def __init__(self, tmpdir=None, tcp=False, create=True, durable=False):
        self.dir = tempfile.mkdtemp(prefix="jada-pg-", dir=tmpdir)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.tcp = tcp
        self.create = create
        # initdb and postgres refuse to run as root (make check): they run as
        # nobody, who then owns the directory. Its mode 0755 and searchable
        # parents let both nobody and root's tests reach the socket.
        self.as_user = []
        try:
            os.chmod(self.dir, 0o755)
            if os.geteuid() == 0:
                self.as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                "--clear-groups", "--reset-env"]
                os.chown(self.dir, pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
                self._check_searchable()
            self._run([f"{PG_BIN}/initdb", "-D", self.data, "-A", "trust", "-U", USER,
                       "--no-sync", "-E", "UTF8", "--locale=C"])
            quoted = self.dir.replace("'", "''")
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write(f"\n# tests/lib/pg.py\n"
                        f"unix_socket_directories = '{quoted}'\n"
                        f"listen_addresses = '{'127.0.0.1' if tcp else ''}'\n"
                        f"port = {self.port}\n"
                        "max_connections = 100\n"
                        "logging_collector = off\n")
                # A test's database need not outlive a crash; a benchmark's
                # figures compare with SQLite's fsynced commits (durable).
                if not durable:
                    f.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        except BaseException:
            shutil.rmtree(self.dir, True)
            raise

    def _check_searchable(self):
        """As root, every parent of the directory must let nobody through; a
        caller's tmpdir from mkdtemp (0700) would not, and postgres would fail
        far from the cause."""
        path = os.path.dirname(self.dir)
        while True:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                raise ValueError(f"{path} is not searchable by others: nobody cannot reach {self.dir}")
            if path == os.path.dirname(path):
                return
            path = os.path.dirname(path)

    def _run(self, argv, timeout=SLOW, check=True):
        """Runs a server program as the server's user, in its directory (root's
        cwd may be closed to nobody), without the caller's PG* variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        r = subprocess.run([*self.as_user, *argv], cwd=self.dir, env=env, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                               f"log:\n{self.log_text()}")
        return r

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self):
        """Starts the server and waits until it accepts connections; the first
        start creates the database jada (create=True)."""
        self._run([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])
        if self.create:
            self.createdb(USER)
            self.create = False
        return self

    def stop(self, mode="fast"):
        """Stops the server (pg_ctl's smart, fast or immediate) and waits."""
        self._run([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-t", "60", "stop", "-m", mode])

    def pid(self):
        """The postmaster's pid (first line of postmaster.pid), or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (FileNotFoundError, ValueError):
            return None

    def close(self):
        """Stops the server at once if it runs (even one a test SIGKILLed or
        SIGSTOPped) and removes its directory."""
        pid = self.pid()
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGCONT)
            r = self._run([f"{PG_BIN}/pg_ctl", "-D", self.data, "-w", "-t", "60", "stop",
                           "-m", "immediate"], check=False)
            if r.returncode != 0 and alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, True)

    def __enter__(self):
        if self.pid() is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def url(self, dbname=USER):
        """A libpq URL through the unix socket (host is the socket's directory,
        percent-encoded as libpq decodes it)."""
        host = urllib.parse.quote(self.dir, safe="")
        return f"postgresql://{USER}@/{urllib.parse.quote(dbname, safe='')}?host={host}&port={self.port}"

    def tcp_url(self, dbname=USER):
        """A libpq URL through 127.0.0.1 (only with tcp=True)."""
        if not self.tcp:
            raise ValueError("PostgresServer(tcp=False) does not listen on TCP")
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{urllib.parse.quote(dbname, safe='')}"

    def createdb(self, name):
        """Creates a database and returns its url."""
        self.psql('CREATE DATABASE "%s"' % name.replace('"', '""'), db="postgres")
        return self.url(name)

    def psql(self, sql, db=USER, args=()):
        """Runs SQL (several statements, psql's commands too) and returns what
        psql printed (unaligned, tuples only); raises with psql's stderr on the
        first error."""
        r = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *args,
                            "-d", self.url(db), "-f", "-"], input=sql, capture_output=True,
                           text=True, timeout=TIMEOUT,
                           env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        if r.returncode != 0:
            raise RuntimeError(f"psql failed ({r.returncode}) on {sql!r}: {r.stderr}")
        return r.stdout

    def dump(self, db=USER):
        """Every row of the database as pg_dump prints it (data only)."""
        r = subprocess.run([f"{PG_BIN}/pg_dump", "--data-only", "-d", self.url(db)], capture_output=True,
                           text=True, timeout=TIMEOUT,
                           env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        if r.returncode != 0:
            raise RuntimeError(f"pg_dump failed ({r.returncode}): {r.stderr}")
        return r.stdout

    def psql_rows(self, sql, db=USER):
        """The rows of one query as tuples of strings (NULL reads as '')."""
        out = self.psql(sql, db, ["-z", "-R", RS])
        if out == "":
            return []
        # Rows are joined by RS; psql ends the last one with a newline.
        return [tuple(row.split(FS)) for row in out[:-1].split(RS)]
