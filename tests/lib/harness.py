# SPDX-License-Identifier: MIT
"""Black-box test harness: runs the real jada-agent binary with a temporary
state dir and a stand-in NOTIFY_SOCKET that records what it tells systemd."""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("JADA_BIN", "./jada-agent")
# A command every run of the binary goes through (`make valgrind` sets it to
# valgrind memcheck); whatever it reports fails the test (see VALGRIND_REPORT).
WRAP = shlex.split(os.environ.get("JADA_TEST_WRAPPER", ""))
VALGRIND_REPORT = re.compile(r"^==\d+== ", re.M)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# tests/run.py --postgresql: the listed tests once more with every daemon and
# command of a test on a fleet's database of its own, on this server (pg.py).
POSTGRESQL = None
_databases = iter(range(1, 1 << 30))

# Every wait in the tests is bounded; this is the ceiling, generous for ASan.
TIMEOUT = float(os.environ.get("JADA_TEST_TIMEOUT", "20"))


def read_fake_claude_log(path):
    """The fake claude's records ($FAKE_CLAUDE_LOG), one JSON object a line.
    A record the fake wrote when it was SIGKILLed can be cut short (a write
    that crosses a page of the file is copied in two steps, and a fatal
    signal may land between them); the next record is then appended to the
    torn one. The torn record is dropped (that claude was killed before it
    printed anything) and the one behind it recovered; a last line still
    being written is left for the next read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    records = []
    for raw in data.split(b"\n")[:-1]:
        line = raw.decode("ascii", "replace")
        while line:
            try:
                records.append(json.loads(line))
                break
            except ValueError:
                i = line.find('{"argv"', 1)
                if i < 0:
                    break
                line = line[i:]
    return records


def needs_root(obj):
    """Marks a test (or a class of them) that needs root: a private mount or
    network namespace, a mount. `make test` (tests/run.py --no-root) leaves
    them out and says how many; `make check` runs them."""
    obj.needs_root = True
    return obj


def alive(pid):
    """Whether a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class NotifyRecorder:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET. Records
    every message (a datagram of NAME=value lines) in arrival order.

    A thread reads it all the time, as systemd would: a unix datagram queue
    holds only net.unix.max_dgram_qlen (10) messages, and a daemon whose
    sd_notify() finds it full blocks in sendmsg()."""

    count = 0

    def __init__(self, directory):
        NotifyRecorder.count += 1
        self.path = os.path.join(directory, f"notify-{NotifyRecorder.count}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.times = []         # time.monotonic() of each message's arrival
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            with self.cond:
                self.messages.append(data.decode("utf-8", "replace"))
                self.times.append(time.monotonic())
                self.cond.notify_all()

    def close(self):
        self.closed = True
        self.thread.join(timeout=5)
        self.sock.close()

    def wait_for(self, predicate, timeout=TIMEOUT, start=0):
        """Waits until predicate(message) holds for a message at index >= start;
        returns its index. Fails the test after timeout seconds."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.messages):
                    if predicate(self.messages[i]):
                        return i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching notify message in {timeout}s; got {self.messages!r}")
                self.cond.wait(min(left, 0.5))

    def wait_field(self, field, start=0, timeout=TIMEOUT):
        """Waits for a message carrying NAME=value line `field` (e.g. READY=1)."""
        return self.wait_for(lambda m: field in m.split("\n"), timeout, start)

    def drain(self):
        """Lets messages already sent arrive (the reader thread takes them)."""
        time.sleep(0.05)

    def text(self):
        self.drain()
        with self.cond:
            return "\n".join(self.messages)

    def fields(self, name):
        self.drain()
        out = []
        with self.cond:
            for m in self.messages:
                for line in m.split("\n"):
                    if line.startswith(name + "="):
                        out.append(line[len(name) + 1:])
        return out


class JournalRecorder:
    """A stand-in for journald's native socket (/run/systemd/journal/socket),
    bind-mounted over that path in a private mount namespace. Parses the
    native protocol: "KEY=value\\n", or "KEY\\n" + 64-bit LE length + data + "\\n".
    It reads all the time, as journald does: a datagram socket holds only
    net.unix.max_dgram_qlen messages (10 here), and a daemon whose journal
    is not read blocks in its eleventh log line."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "journal.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(0.05)
        self.entries = []
        self.closing = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while not self.closing:
            try:
                data = self.sock.recv(1 << 20)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            entry = self.parse(data)
            # When it arrived (time.monotonic(), the same clock in every
            # process of this machine), for the tests' timings.
            entry["_RECEIVED_MONOTONIC"] = time.monotonic()
            self.entries.append(entry)

    def close(self):
        self.closing = True
        self.reader.join(5)
        self.sock.close()
        try:
            os.unlink(self.path)  # a later daemon of the same test binds it anew
        except FileNotFoundError:
            pass

    @staticmethod
    def parse(data):
        entry, i = {}, 0
        while i < len(data):
            nl = data.index(b"\n", i)
            line = data[i:nl]
            if b"=" in line:
                k, _, v = line.partition(b"=")
                entry[k.decode()] = v.decode("utf-8", "replace")
                i = nl + 1
            else:
                n = int.from_bytes(data[nl + 1:nl + 9], "little")
                entry[line.decode()] = data[nl + 9:nl + 9 + n].decode("utf-8", "replace")
                i = nl + 9 + n + 1
        return entry

    def drain(self, timeout=0.001):
        """Lets what the daemon sends within timeout arrive (the reader
        thread collects it into entries)."""
        time.sleep(timeout)

    def wait_for(self, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            for e in self.entries:
                if predicate(e):
                    return e
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching journal entry in {timeout}s; got {self.entries!r}")
            self.drain(min(left, 0.2))


class Daemon:
    """The real binary in the foreground, as systemd would run it."""

    def __init__(self, tmp, config_path, extra_env=None, args=(), journal=False):
        self.tmp = tmp
        self.notify = NotifyRecorder(tmp)
        self.journal = JournalRecorder(tmp) if journal else None
        self.stderr_path = os.path.join(tmp, "stderr.log")
        env = dict(os.environ)
        for k in ("INVOCATION_ID", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID",
                  "STATE_DIRECTORY", "JADA_AGENT_CONFIG"):
            env.pop(k, None)
        env["NOTIFY_SOCKET"] = self.notify.path
        # A daemon without any Claude credential starts no session and says
        # so (a health problem): the tests' daemons have a dummy key, as a
        # deployment has a real one; a test of the missing key removes it.
        env.setdefault("ANTHROPIC_API_KEY", "sk-ant-harness-0000-not-a-real-key")
        env.update(extra_env or {})
        self.stderr = open(self.stderr_path, "wb")
        argv = [*WRAP, BIN, "run", "-c", config_path, *args]
        if journal:
            # A private mount namespace where journald's socket is ours.
            env["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                    "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && "
                    ": > /run/systemd/journal/socket && "
                    f"mount --bind {self.journal.path} /run/systemd/journal/socket && "
                    'exec "$@"', "sh", *argv]
        self.proc = subprocess.Popen(argv, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr)

    def log(self):
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        self.notify.close()
        if self.journal:
            self.journal.close()


def _literal(value):
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _inline(statement, params):
    """The statement with each `?` outside a quoted string replaced by its
    parameter as a PostgreSQL literal (psql takes no parameters)."""
    out, quote, i = [], None, 0
    for ch in statement:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            out.append(_literal(params[i]))
            i += 1
            continue
        out.append(ch)
    if i != len(params):
        raise ValueError(f"{len(params)} parameters for {i} places in {statement!r}")
    return "".join(out)


class TempStateTest(unittest.TestCase):
    """A test with its own temporary directory, state dir and config."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jada-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.state = os.path.join(self.tmp, "state")
        self.config = os.path.join(self.tmp, "jada-agent.conf")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.stop()
        for d in self.daemons:
            log = d.log()
            # Sanitizer reports fail the test even when the exit code was not looked at.
            for marker in ("Sanitizer", "runtime error:", "LeakSanitizer"):
                self.assertNotIn(marker, log, log)
            self.assertIsNone(VALGRIND_REPORT.search(log), log)

    def write_config(self, text="", path=None):
        path = path or self.config
        if POSTGRESQL is not None and "[database]" not in text:
            # A fleet of one node: the test's own database.
            if not getattr(self, "database_url", None):
                self.database_name = f"suite_{next(_databases)}"
                self.database_url = POSTGRESQL.createdb(self.database_name)
            text += f"\n[database]\nurl = {self.database_url}\nnode_name = {self.node_name()}\n"
        with open(path, "w") as f:
            f.write(f"[daemon]\nstate_dir = {self.state}\n" + text)
        return path

    # The test's database, whichever backend the daemon uses: SQLite in the
    # state dir, or the test's PostgreSQL database (--postgresql). `?` is a
    # parameter in both; rows are dicts of Python values (a PostgreSQL
    # boolean reads as True/False, which equal SQLite's 1/0).
    def on_postgresql(self):
        return getattr(self, "database_url", None) is not None

    def node_name(self):
        """The daemon's name in the fleet (--postgresql), else None."""
        return self.id().split(".")[-1][:47] if self.on_postgresql() else None

    def db_rows(self, statement, *params):
        if self.on_postgresql():
            out = POSTGRESQL.psql(f"SELECT COALESCE(json_agg(q), '[]') FROM ({_inline(statement, params)}) q",
                                  db=self.database_name)
            return json.loads(out)
        import sqlite3
        db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"), timeout=30)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(statement, params)]
        finally:
            db.close()

    def db_value(self, statement, *params):
        """The first column of the first row, or None."""
        rows = self.db_rows(statement, *params)
        return next(iter(rows[0].values())) if rows else None

    def db_exec(self, statement, *params):
        if self.on_postgresql():
            POSTGRESQL.psql(_inline(statement, params), db=self.database_name)
            return
        import sqlite3
        db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"), timeout=30)
        try:
            db.execute(statement, params)
            db.commit()
        finally:
            db.close()

    def start(self, extra_env=None, args=(), journal=False):
        d = Daemon(self.tmp, self.config, extra_env, args, journal)
        self.daemons.append(d)
        return d

    def run_cli(self, *args, input=None, env=None):
        e = dict(os.environ)
        e.pop("JADA_AGENT_CONFIG", None)
        e.update(env or {})
        r = subprocess.run([*WRAP, BIN, *args], input=input, capture_output=True, text=True,
                           env=e, timeout=TIMEOUT)
        self.assertIsNone(VALGRIND_REPORT.search(r.stderr), r.stderr)
        return r
