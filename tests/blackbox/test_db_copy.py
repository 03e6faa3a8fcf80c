# SPDX-License-Identifier: MIT
"""jada-agent db copy --to URL against a real PostgreSQL 15 (tests/lib/pg.py):
every column the two schemas share, of every row of every table, arrives
as it was (a 1 MiB prompt with tabs, newlines and backslashes among them),
the fleet's own columns keep their defaults and each sequence goes past the
copied ids; each refusal (a database with rows, a running daemon, a server
out of reach, text PostgreSQL cannot hold) exits 1 and writes nothing."""

import os
import socket
import sqlite3

from harness import TempStateTest
from pg import PostgresServer, free_port

TABLES = ["tasks", "task_after", "task_events", "sessions", "notifications", "sync_runs",
          "port_sheet", "port_sheet_meta", "usage_limit"]
# The fleet's own columns, which SQLite does not have, and their defaults
# (None: NULL).
PG_ONLY = {"tasks": {"claim_generation": "0", "claimed_by": None},
           "sessions": {"node": None, "claim_generation": None},
           "sync_runs": {"node": None}}
IDENTITY = ["tasks", "task_events", "sessions", "notifications", "sync_runs"]
# 1 MiB exactly (QUEUE_PROMPT_MAX): every byte COPY's text format escapes,
# "\N" (NULL when unescaped) and "\." alone on a line (its old end marker).
LINE = "a\tb\\c\r\n\\N\n\\.\n"
BIG = (LINE * ((1 << 20) // len(LINE) + 1))[:1 << 20]


def quoted(column):
    return '"%s"' % column


def parse(text, kind):
    """A value as psql printed it ('NULL', or 'v' and its text in hex) as
    Python's sqlite3 reads the same value (a boolean as 0 or 1)."""
    if text == "NULL":
        return None
    text = bytes.fromhex(text[1:]).decode()
    if kind in ("bigint", "integer"):
        return int(text)
    if kind == "double precision":
        return float(text)
    if kind == "boolean":
        return int(text == "true")
    return text


class DbCopyTest(TempStateTest):
    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresServer()
        try:
            cls.pg.start()
        except BaseException:
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        super().setUp()
        self.write_config()
        self.dbname = self._testMethodName
        self.url = self.pg.createdb(self.dbname)

    def cli(self, *args, input=None, env=None):
        r = self.run_cli("-c", self.config, *args, input=input, env=env)
        for marker in ("Sanitizer", "runtime error:"):
            self.assertNotIn(marker, r.stderr, r.stderr)
        return r

    def copy(self, url=None, env=None):
        return self.cli("db", "copy", "--to", url or self.url, env=env)

    def add(self, *args, input=None):
        r = self.cli("task", "add", *args, input=input)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout)

    def sql(self, statement, *args):
        db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"), timeout=30)
        db.execute(statement, args)
        db.commit()
        db.close()

    def rows(self, db=None):
        """Every row of every table in PostgreSQL, as text."""
        return {t: self.pg.psql_rows(f"SELECT * FROM {t} ORDER BY 1, 2", db=db or self.dbname)
                for t in TABLES}

    def counts(self, db=None):
        return {t: int(self.pg.psql(f"SELECT count(*) FROM {t}", db=db or self.dbname)) for t in TABLES}

    def assert_shared_columns_equal(self, table):
        """Each column of the SQLite table has one in PostgreSQL, the others
        are the fleet's; then every row of those columns, value by value."""
        lite = sqlite3.connect(os.path.join(self.state, "jada-agent.db"))
        columns = [r[1] for r in lite.execute(f"PRAGMA table_info({table})")]
        types = dict(self.pg.psql_rows("SELECT column_name, data_type FROM information_schema.columns "
                                       f"WHERE table_schema = 'public' AND table_name = '{table}'",
                                       db=self.dbname))
        self.assertEqual(set(columns) - set(types), set(), f"{table}: SQLite columns PostgreSQL lacks")
        self.assertEqual(set(types) - set(columns), set(PG_ONLY.get(table, {})), table)
        select = ", ".join(map(quoted, columns))
        want = lite.execute(f"SELECT {select} FROM {table} ORDER BY 1, 2").fetchall()
        lite.close()
        # In hex, because psql's text reaches Python with "\r\n" made "\n";
        # 'v' before a value tells it from NULL.
        exprs = ", ".join(f"CASE WHEN {quoted(c)} IS NULL THEN 'NULL'"
                          f" ELSE 'v' || encode(convert_to({quoted(c)}::text, 'UTF8'), 'hex') END"
                          for c in columns)
        got = [tuple(parse(text, types[c]) for c, text in zip(columns, row))
               for row in self.pg.psql_rows(f"SELECT {exprs} FROM {table} ORDER BY 1, 2", db=self.dbname)]
        self.assertEqual(len(got), len(want), table)
        # Value by value: unittest's diff of two 1 MiB strings takes minutes.
        for g, w in zip(got, want):
            for column, a, b in zip(columns, g, w):
                if a != b or type(a) is not type(b):
                    self.fail(f"{table} {columns[0]} {w[0]}: {column} is {a!r:.200} in PostgreSQL, "
                              f"{b!r:.200} in SQLite")
        return len(want)

    def make_state(self):
        """Tasks in several states, sub-tasks, an after-task, events; the
        daemon's other tables filled as it would fill them."""
        parent = self.add("--title", "Parent", "--priority", "3", "The whole job.")
        first = self.add("--parent", str(parent), "Part one.")
        second = self.add("--parent", str(parent), "--after-task", str(first), "Part two, after one.")
        big = self.add("--title", "Big", "-", input=BIG)
        uni = self.add("--title", "Ünïcode ✓ 𝄞", "--max-cost", "2.5", "Prompt: é ✓ 𝄞 \\ and\ttab.")
        cancelled = self.add("Changed my mind.")
        self.assertEqual(self.cli("task", "cancel", str(cancelled)).returncode, 0)
        self.sql("UPDATE tasks SET state = 'done', result = ?, cost_usd = ?, sessions_used = 1, turns_used = 7,"
                 " claude_session_id = 'abc-123' WHERE id = ?", "Done:\n\tall\\fine", 0.1234567890123457, first)
        self.sql("UPDATE tasks SET worktree = ? WHERE id = ?", os.path.join(self.state, "work", "task-2"), first)
        self.sql("UPDATE tasks SET state = 'failed', error = 'claude exited 1' WHERE id = ?", uni)
        self.sql("UPDATE tasks SET state = 'needs_you', needs_you_reason = 'Which\r\nbranch?' WHERE id = ?", big)
        self.sql("INSERT INTO task_events (task_id, at, old_state, new_state, reason) VALUES (?, 1700000000,"
                 " 'queued', 'running', 'claimed\tby the daemon')", first)
        self.sql("INSERT INTO sessions (task_id, started_at, ended_at, outcome, exit_status, pid, pid_start, turns,"
                 " input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cost_usd,"
                 " reported_cost_usd, claude_session_id, resumed, error) VALUES (?, 1700000000, 1700000090, 'done',"
                 " 0, 4242, 987654, 7, 1000, 2000, 300, 40000, 0.1234567890123457, 0.5, 'abc-123', 0, NULL)", first)
        self.sql("INSERT INTO sessions (task_id, started_at, ended_at, outcome, resumed, uncounted, error)"
                 " VALUES (?, 1700000100, 1700000101, 'launch_error', 1, 'never reached the model', 'no such"
                 " file')", uni)
        self.sql("INSERT INTO sessions (task_id, started_at) VALUES (NULL, 1700000200)")
        self.sql("INSERT INTO sync_runs (started_at, ended_at, ok, rows, changed, http_status) VALUES"
                 " (1700000000, 1700000002, 1, 12, 3, 200)")
        self.sql("INSERT INTO sync_runs (started_at, ended_at, ok, error) VALUES (1700000300, 1700000301, 0,"
                 " 'HTTP 503: backend\nerror')")
        self.sql("INSERT INTO notifications (task_id, event, created_at, title, detail, branch, webhook_done,"
                 " command_done) VALUES (?, 'done', 1700000090, 'Part one', 'Done:\tall', NULL, 1, 0)", first)
        self.sql("INSERT INTO port_sheet (row, data) VALUES (2, '{\"Port\":\"Le Havre\\\\t\",\"Note\":\"é\"}'),"
                 " (3, '{}')")
        self.sql("INSERT INTO port_sheet_meta (id, header, content_hash, updated_at) VALUES (1, '[\"Port\"]',"
                 " 'e3b0c442', 1700000000)")
        self.sql("INSERT INTO usage_limit (id, parked_until, park_type, status, utilization, seen_at) VALUES"
                 " (1, 1700003600, 'five_hour', 'allowed_warning', 0.73, 1700000000)")
        return parent, second

    def test_round_trip_keeps_every_shared_column_and_moves_the_sequences(self):
        parent, second = self.make_state()
        r = self.copy()
        self.assertEqual(r.returncode, 0, r.stderr)
        counts = {t: self.assert_shared_columns_equal(t) for t in TABLES}
        self.assertEqual(counts["tasks"], 6)
        self.assertEqual(counts["task_after"], 1)
        self.assertEqual(counts["sessions"], 3)
        for table, n in counts.items():
            self.assertRegex(r.stdout, rf"(?m)^\s*{table}\s+{n}$")
        self.assertIn("[database] url", r.stdout)
        self.assertEqual(self.pg.psql("SELECT length(prompt) FROM tasks WHERE title = 'Big'",
                                      db=self.dbname), f"{1 << 20}\n")
        self.assertEqual(self.pg.psql(f"SELECT parent_id FROM tasks WHERE id = {second}", db=self.dbname),
                         f"{parent}\n")
        # The task whose worktree is on this machine is this node's (its
        # janitor's), the host's name here: the config names no node.
        self.assertEqual(self.pg.psql_rows("SELECT id, claimed_by FROM tasks WHERE claimed_by IS NOT NULL",
                                           db=self.dbname), [(str(parent + 1), socket.gethostname())])
        for table, defaults in PG_ONLY.items():
            for column, value in defaults.items():
                where = " WHERE worktree IS NULL" if column == "claimed_by" else ""
                self.assertEqual(self.pg.psql_rows(f"SELECT DISTINCT {column} IS NULL, {column} FROM {table}{where}",
                                                   db=self.dbname),
                                 [("t", "")] if value is None else [("f", value)], f"{table}.{column}")
        # New rows get ids past the copied ones.
        top = {t: int(self.pg.psql(f"SELECT max(id) FROM {t}", db=self.dbname)) for t in IDENTITY}
        new = self.pg.psql(
            "INSERT INTO tasks (title, prompt, state, run_after, created_at, updated_at)"
            " VALUES ('new', 'new', 'queued', 0, 0, 0) RETURNING id;"
            "INSERT INTO task_events (task_id, at, new_state, reason) VALUES (1, 0, 'queued', 'x') RETURNING id;"
            "INSERT INTO sessions (started_at) VALUES (0) RETURNING id;"
            "INSERT INTO notifications (task_id, event, created_at, title, detail)"
            " VALUES (1, 'done', 0, 't', 'd') RETURNING id;"
            "INSERT INTO sync_runs (started_at) VALUES (0) RETURNING id", db=self.dbname).split()
        self.assertEqual(len(new), len(IDENTITY))
        for table, new_id in zip(IDENTITY, new):
            self.assertGreater(int(new_id), top[table], table)

    def test_refuses_a_database_with_rows_and_leaves_it_as_it_was(self):
        self.add("Only task.")
        r = self.copy()
        self.assertEqual(r.returncode, 0, r.stderr)
        before = self.rows()
        self.add("Added after the first copy.")
        r = self.copy()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("tasks has 1 row", r.stderr)
        self.assertIn("task_events has 1 row", r.stderr)
        self.assertIn("nothing was copied", r.stderr)
        self.assertEqual(self.rows(), before)
        # An empty table's sequence was left at its start.
        self.assertEqual(self.pg.psql("INSERT INTO sessions (started_at) VALUES (0) RETURNING id",
                                      db=self.dbname), "1\n")

    def test_refuses_while_the_daemon_runs(self):
        d = self.start()
        d.notify.wait_field("READY=1")
        r = self.copy()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("stop the daemon first", r.stderr)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'tasks'",
                                      db=self.dbname), "0\n", "refused, yet the schema was written")
        d.stop()
        r = self.copy()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_server_out_of_reach_or_a_bad_url(self):
        self.add("A task.")
        creds = os.path.join(self.tmp, "credentials")
        os.mkdir(creds)
        with open(os.path.join(creds, "database-password"), "w") as f:
            f.write("s3cret-never-printed\n")
        env = {"CREDENTIALS_DIRECTORY": creds}
        for url in (f"postgresql://jada@127.0.0.1:{free_port()}/jada",
                    f"postgresql://jada@/jada?host={self.tmp}&port={free_port()}"):
            r = self.copy(url, env=env)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("cannot connect", r.stderr)
            self.assertNotIn("s3cret", r.stdout + r.stderr)
        r = self.copy("mysql://jada@localhost/jada")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("postgresql://", r.stderr)
        r = self.cli("db", "copy")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("usage", r.stderr)

    def test_text_postgresql_cannot_hold_is_refused_naming_the_row(self):
        self.add("Fine.")
        bad = self.add("Its title will not be UTF-8.")
        self.sql("UPDATE tasks SET title = CAST(? AS TEXT) WHERE id = ?", b"caf\xe9 \xff", bad)
        r = self.copy()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn(f"tasks id {bad}: title is not valid UTF-8", r.stderr)
        self.assertEqual(set(self.counts().values()), {0})
        # A later table's bad text (a NUL here) rolls back the tables copied
        # before it in the same transaction.
        self.sql("UPDATE tasks SET title = 'fixed' WHERE id = ?", bad)
        self.sql("INSERT INTO sync_runs (started_at, error) VALUES (0, CAST(? AS TEXT))", b"a\x00b")
        r = self.copy()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("sync_runs id 1: error", r.stderr)
        self.assertEqual(set(self.counts().values()), {0})
        self.sql("DELETE FROM sync_runs")
        r = self.copy()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.counts()["tasks"], 2)
