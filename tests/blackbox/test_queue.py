# SPDX-License-Identifier: MIT
"""The task queue through the real binary: every `task` command, bad input,
wake on add, crash recovery, retention, and many processes claiming."""

import calendar
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time

from harness import BIN, TIMEOUT, WRAP, TempStateTest

TOOL = os.path.join(os.environ.get("JADA_BUILD", "build"), "tests", "queue-tool")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FIELDS = ["id", "title", "prompt", "state", "priority", "run_after", "attempts", "sessions_used",
          "turns_used", "cost_usd", "claude_session_id", "needs_you_reason", "reply", "result",
          "error", "created_at", "updated_at", "project", "branch", "base", "worktree", "max_cost_usd",
          "parent"]


class QueueTest(TempStateTest):
    def setUp(self):
        super().setUp()
        self.write_config()

    def task(self, *args, input=None):
        return self.run_cli("-c", self.config, "task", *args, input=input)

    def add(self, *args, input=None):
        r = self.task("add", *args, input=input)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout.strip())

    def db(self):
        return sqlite3.connect(os.path.join(self.state, "jada-agent.db"), timeout=30)

    def set_state(self, task_id, state, **fields):
        """Puts a task in a state the way the daemon would (sessions come later)."""
        sets = ", ".join(["state = ?"] + [f"{k} = ?" for k in fields])
        self.db_exec(f"UPDATE tasks SET {sets} WHERE id = ?", state, *fields.values(), task_id)

    def show(self, task_id):
        r = self.task("show", str(task_id), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def snapshot(self):
        return self.db_rows("SELECT * FROM tasks ORDER BY id"), self.db_rows("SELECT * FROM task_events ORDER BY id")


class TaskCommands(QueueTest):
    def test_add_prints_id_and_show_has_every_field(self):
        a = self.add("--title", "First", "--priority", "5", "Do the first thing")
        b = self.add("Second line one\nline two")
        self.assertEqual((a, b), (1, 2))
        t = self.show(a)
        self.assertEqual(list(t.keys()), FIELDS + ["events", "commits", "cost_cap_usd", "diffstat", "children", "after"])
        self.assertEqual(t["title"], "First")
        self.assertEqual(t["prompt"], "Do the first thing")
        self.assertEqual(t["state"], "queued")
        self.assertEqual(t["priority"], 5)
        for k in ("run_after", "created_at", "updated_at"):
            self.assertRegex(t[k], ISO)
        self.assertIsNone(t["claude_session_id"])
        self.assertEqual(t["events"][0]["old_state"], None)
        self.assertEqual(t["events"][0]["new_state"], "queued")
        self.assertRegex(t["events"][0]["at"], ISO)
        self.assertEqual(self.show(b)["title"], "Second line one")

    def test_add_from_stdin(self):
        prompt = "from stdin — ünïcödé\n" * 100
        i = self.add("-", input=prompt)
        self.assertEqual(self.show(i)["prompt"], prompt)

    def test_add_one_mebibyte_but_not_more(self):
        ok = "x" * (1024 * 1024)
        i = self.add("-", input=ok)
        self.assertEqual(len(self.show(i)["prompt"]), 1024 * 1024)
        before = self.snapshot()
        r = self.task("add", "-", input=ok + "y")
        self.assertEqual(r.returncode, 1)
        self.assertIn("larger than 1048576 bytes", r.stderr)
        self.assertEqual(self.snapshot(), before)

    def test_add_bad_input(self):
        self.add("make the db exist")
        before = self.snapshot()
        year = time.gmtime().tm_year + 1  # well-formed but for what the case breaks
        cases = [
            (["add", ""], 1, "empty"),
            (["add", "  \n "], 1, "empty"),
            (["add", "-"], 1, "empty"),  # empty stdin
            (["add", "--after", "tomorrow", "x"], 2, "--after 'tomorrow'"),
            (["add", "--after", f"{year}-11-30T09:00:00", "x"], 2, "UTC time"),  # no Z
            (["add", "--after", f"{year}-13-01T00:00:00Z", "x"], 2, "--after"),
            (["add", "--priority", "high", "x"], 2, "--priority"),
            (["add", "--priority", "5000", "x"], 2, "--priority"),
            (["add", "--title", "two\nlines", "x"], 2, "--title"),
            (["add", "--title", "t" * 201, "x"], 2, "--title"),
            (["add"], 2, "usage"),
            (["add", "a", "b"], 2, "usage"),
            (["add", "--bogus", "x"], 2, "usage"),
        ]
        for args, code, text in cases:
            with self.subTest(args=args):
                r = self.task(*args, input="")
                self.assertEqual(r.returncode, code, r.stderr)
                self.assertIn(text, r.stderr)
        r = subprocess.run([*WRAP, BIN, "-c", self.config, "task", "add", "-"], input=b"bad \xff\xfe utf8",
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not valid UTF-8", r.stderr)
        r = subprocess.run([*WRAP, BIN, "-c", self.config, "task", "add", "-"], input=b"nul \x00 byte",
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(self.snapshot(), before, "nothing may be written on bad input")

    def test_after(self):
        t0 = int(time.time())
        # A UTC time some years after today, whatever today is.
        year = time.gmtime(t0).tm_year + 4
        later = calendar.timegm((year, 1, 2, 3, 4, 5))
        i = self.add("--after", "2h", "later")
        j = self.add("--after", f"{year}-01-02T03:04:05Z", "much later")
        k = self.add("--after", f"{year}-01-02T03:04Z", "minutes")
        ra = {r["id"]: r["run_after"] for r in self.db_rows("SELECT id, run_after FROM tasks")}
        self.assertTrue(t0 + 7200 <= ra[i] <= int(time.time()) + 7200)
        self.assertEqual(ra[j], later)
        self.assertEqual(ra[k], later - 5)
        self.assertEqual(self.show(j)["run_after"], f"{year}-01-02T03:04:05Z")

    def test_list_table_and_json(self):
        self.add("--title", "Alpha", "a")
        self.add("--title", "Beta ünïcödé", "b")
        c = self.add("--title", "Gamma", "c")
        self.assertEqual(self.task("cancel", str(c)).returncode, 0)
        r = self.task("list")
        self.assertEqual(r.returncode, 0)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "STATE", "PRI", "TITLE", "SESSIONS", "TURNS", "UPDATED"])
        self.assertEqual(len(lines), 4)
        # Aligned: the UPDATED column starts at the same place on every line.
        cols = {l.rindex(" ") for l in lines}
        self.assertEqual(len(cols), 1, r.stdout)
        self.assertIn("Beta ünïcödé", lines[2])

        j = json.loads(self.task("list", "--json").stdout)
        self.assertEqual([t["title"] for t in j], ["Alpha", "Beta ünïcödé", "Gamma"])
        self.assertEqual(list(j[0].keys()), FIELDS)
        j = json.loads(self.task("list", "--state", "cancelled", "--json").stdout)
        self.assertEqual([t["id"] for t in j], [c])
        r = self.task("list", "--state", "done")
        self.assertEqual(r.stdout.strip(), "no tasks in state done")
        r = self.task("list", "--state", "nope")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not one of", r.stderr)

    def test_show_human(self):
        i = self.add("--title", "Shown", "the prompt text")
        r = self.task("show", str(i))
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"(?m)^state\s+queued$")
        self.assertIn("the prompt text", r.stdout)
        self.assertIn("(new)", r.stdout)

    def test_unknown_and_bad_ids(self):
        self.add("x")
        for cmd in (["show"], ["cancel"], ["retry"], ["done"], ["reply"]):
            extra = ["text"] if cmd == ["reply"] else []
            with self.subTest(cmd=cmd):
                r = self.task(*cmd, "42", *extra)
                self.assertEqual(r.returncode, 1)
                self.assertIn("no task 42", r.stderr)
                for bad in ("abc", "0", "1x", "99999999999999999999", "-1"):
                    r = self.task(*cmd, bad, *extra)
                    self.assertEqual(r.returncode, 2, (bad, r.stderr))
                    # "-1" reads as an option: a usage error too.
                    self.assertIn("not a task id" if bad != "-1" else "usage", r.stderr)


class Transitions(QueueTest):
    def test_cancel(self):
        i = self.add("x")
        r = self.task("cancel", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), f"task {i}: queued → cancelled")
        r = self.task("cancel", str(i))
        self.assertEqual(r.returncode, 1)
        self.assertIn("already cancelled", r.stderr)
        for state in ("running", "needs_you", "failed"):
            j = self.add(state)
            self.set_state(j, state)
            self.assertEqual(self.task("cancel", str(j)).returncode, 0)
            self.assertEqual(self.show(j)["state"], "cancelled")

    def test_done_task_cannot_change(self):
        i = self.add("x")
        self.set_state(i, "done")
        before = self.snapshot()
        for args in (["cancel", str(i)], ["retry", str(i)], ["done", str(i)], ["reply", str(i), "hi"]):
            r = self.task(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(f"task {i} is done", r.stderr)
        self.assertEqual(self.snapshot(), before)

    def test_illegal_transitions_change_nothing(self):
        i = self.add("x")
        before = self.snapshot()
        for args, text in ((["done", str(i)], "only a task in needs_you can be marked done"),
                           (["retry", str(i)], "only a failed task can be retried"),
                           (["reply", str(i), "answer"], "only a task in needs_you takes a reply")):
            r = self.task(*args)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"task {i} is queued: {text}", r.stderr)
        self.assertEqual(self.snapshot(), before)

    def test_retry_failed(self):
        i = self.add("x")
        self.set_state(i, "failed", attempts=5, error="crashed 5 times", run_after=0)
        r = self.task("retry", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        t = self.show(i)
        self.assertEqual(t["state"], "queued")
        self.assertEqual(t["attempts"], 0)
        self.assertNotEqual(t["run_after"], None)
        self.assertEqual(t["events"][-1]["old_state"], "failed")
        self.assertEqual(t["events"][-1]["reason"], "retried by hand")

    def test_reply_and_done_on_needs_you(self):
        i = self.add("x")
        self.set_state(i, "needs_you", needs_you_reason="which branch?")
        self.assertEqual(self.show(i)["needs_you_reason"], "which branch?")
        r = self.task("reply", str(i), "-", input="use main\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        t = self.show(i)
        self.assertEqual(t["state"], "queued")
        self.assertEqual(t["reply"], "use main\n")
        self.assertIsNone(t["needs_you_reason"])

        j = self.add("y")
        self.set_state(j, "needs_you", needs_you_reason="?")
        self.assertEqual(self.task("done", str(j)).returncode, 0)
        self.assertEqual(self.show(j)["state"], "done")
        r = self.task("reply", str(i), "")
        self.assertEqual(r.returncode, 1)


class BadDatabases(QueueTest):
    def expect_refused(self, text):
        before = open(os.path.join(self.state, "jada-agent.db"), "rb").read()
        for args in (["list"], ["add", "x"], ["show", "1"], ["cancel", "1"]):
            r = self.task(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(text, r.stderr)
            self.assertNotIn("Sanitizer", r.stderr)
        self.assertEqual(open(os.path.join(self.state, "jada-agent.db"), "rb").read(), before)

    def test_not_sqlite(self):
        os.makedirs(self.state)
        with open(os.path.join(self.state, "jada-agent.db"), "wb") as f:
            f.write(os.urandom(8192))
        self.expect_refused("not a SQLite database, or it is corrupt")

    def test_foreign_sqlite(self):
        os.makedirs(self.state)
        db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"))
        db.execute("CREATE TABLE tasks (x)")
        db.commit()
        db.close()
        self.expect_refused("not a jada-agent database")

    def test_newer_schema(self):
        self.add("x")
        db = self.db()
        db.execute("PRAGMA user_version = 1000")
        db.commit()
        db.close()
        self.expect_refused("written by a newer jada-agent")

    def test_corrupt_pages(self):
        self.add("x")
        path = os.path.join(self.state, "jada-agent.db")
        size = os.path.getsize(path)
        with open(path, "r+b") as f:  # every page but the header page
            f.seek(4096)
            f.write(b"\xff" * (size - 4096))
        for args in (["list"], ["show", "1"], ["add", "y"], ["cancel", "1"]):
            r = self.task(*args)
            self.assertEqual(r.returncode, 1, (args, r.stderr))
            self.assertRegex(r.stderr, "corrupt|malformed|not a SQLite")
            self.assertNotIn("Sanitizer", r.stderr)

    def test_busy_database_makes_the_command_wait(self):
        self.add("x")
        db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"), check_same_thread=False)
        db.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(1.5, lambda: (db.commit()))
        timer.start()
        try:
            t = time.monotonic()
            i = self.add("waits for the lock")
            waited = time.monotonic() - t
        finally:
            timer.join()
            db.close()
        self.assertEqual(i, 2)
        self.assertGreater(waited, 1.0)  # it did wait (a causal check, not a speed limit)


class WithDaemon(QueueTest):
    def test_add_wakes_the_daemon(self):
        self.write_config("poll_interval = 1h\n")
        d = self.start(args=("-v",))
        d.notify.wait_field("READY=1")
        d.notify.wait_for(lambda m: "queue: 0 queued" in m)
        t = time.monotonic()
        self.add("wake up")
        d.notify.wait_for(lambda m: "queue: 1 queued" in m)
        print(f"\n    task add to daemon seeing it: {(time.monotonic() - t) * 1000:.0f} ms", end=" ")
        self.assertIn("woken by the command line", d.log())

    def test_reply_and_retry_wake_the_daemon(self):
        i = self.add("a")
        j = self.add("b")
        self.set_state(i, "needs_you")
        self.set_state(j, "failed")
        self.write_config("poll_interval = 1h\n")
        d = self.start()
        d.notify.wait_for(lambda m: "1 needs you" in m and "1 failed" in m)
        self.assertEqual(self.task("reply", str(i), "ok").returncode, 0)
        d.notify.wait_for(lambda m: "queue: 1 queued" in m and "needs you" not in m)
        self.assertEqual(self.task("retry", str(j)).returncode, 0)
        d.notify.wait_for(lambda m: "queue: 2 queued" in m and "failed" not in m)

    def test_add_without_daemon_is_fine(self):
        r = self.task("add", "nobody listens")
        self.assertEqual(r.returncode, 0)
        if self.on_postgresql():  # the fleet's nodes heard it
            self.assertEqual(r.stderr, "")
        else:
            self.assertIn("not running", r.stderr)
        self.assertEqual(self.show(1)["state"], "queued")

    def test_second_daemon_is_refused(self):
        d = self.start()
        d.notify.wait_field("READY=1")
        d2 = self.start()
        self.assertEqual(d2.wait(), 1)
        self.assertIn(f"another jada-agent (pid {d.proc.pid}) is running on {self.state}", d2.log())
        self.assertIsNone(d.proc.poll())

    def test_recovery_at_start(self):
        # Due later, so that no poll claims them before they are looked at.
        i = self.add("--after", "1h", "was running")
        j = self.add("--after", "1h", "still queued")
        # On a fleet, this node's earlier run claimed it.
        self.set_state(i, "running", claude_session_id="4b7c2f5e-0000-4000-8000-000000000001",
                       **({"claimed_by": self.node_name()} if self.on_postgresql() else {}))
        d = self.start()
        d.notify.wait_field("READY=1")
        t = self.show(i)
        self.assertEqual(t["state"], "queued")
        self.assertEqual(t["claude_session_id"], "4b7c2f5e-0000-4000-8000-000000000001")
        self.assertEqual(t["events"][-1]["old_state"], "running")
        self.assertIn("recovered at start-up", t["events"][-1]["reason"])
        self.assertEqual(len(self.show(j)["events"]), 1)
        self.assertIn("1 task left running by a daemon that is gone is queued again", d.log())

    def test_retention_prunes_old_done_tasks(self):
        old_done, old_cancelled, old_failed, new_done = (self.add(x) for x in "abcd")
        long_ago = int(time.time()) - 3 * 86400
        self.set_state(old_done, "done", updated_at=long_ago)
        self.set_state(old_cancelled, "cancelled", updated_at=long_ago)
        self.set_state(old_failed, "failed", updated_at=long_ago)
        self.set_state(new_done, "done")
        self.write_config("retention = 1d\n")
        d = self.start()
        d.notify.wait_field("READY=1")
        d.notify.wait_for(lambda m: "STATUS=" in m and "1 failed" in m)
        ids = [r["id"] for r in self.db_rows("SELECT id FROM tasks ORDER BY id")]
        orphans = self.db_value("SELECT count(*) FROM task_events WHERE task_id NOT IN (SELECT id FROM tasks)")
        self.assertEqual(ids, [old_failed, new_done])
        self.assertEqual(orphans, 0)
        self.assertIn("pruned 2 done or cancelled tasks", d.log())


class Claiming(QueueTest):
    N = 1000

    def fill(self):
        os.makedirs(self.state)
        path = os.path.join(self.state, "jada-agent.db")
        r = subprocess.run([TOOL, "add", path, str(self.N)], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        return path

    def test_four_processes_claim_each_task_once(self):
        path = self.fill()
        procs = [subprocess.Popen([TOOL, "claim", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        claimed = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            self.assertEqual(p.returncode, 0, err)
            claimed += [int(x) for x in out.split()]
        self.assertEqual(len(claimed), self.N)
        self.assertEqual(sorted(claimed), list(range(1, self.N + 1)))
        db = self.db()
        self.assertEqual(db.execute("SELECT count(*) FROM tasks WHERE state = 'running'").fetchone()[0], self.N)
        per_task = db.execute("SELECT count(*) FROM task_events WHERE new_state = 'running' "
                              "GROUP BY task_id").fetchall()
        db.close()
        self.assertEqual(len(per_task), self.N)
        self.assertTrue(all(n == 1 for (n,) in per_task))

    def test_kill_9_during_claims_loses_nothing(self):
        path = self.fill()
        rng = random.Random(1234)
        printed = []
        for round in range(40):
            procs = [subprocess.Popen([TOOL, "claim", path], stdout=subprocess.PIPE, text=True)
                     for _ in range(4)]
            time.sleep(rng.uniform(0.01, 0.05))
            for p in procs:
                p.send_signal(signal.SIGKILL)
            for p in procs:
                out, _ = p.communicate(timeout=TIMEOUT)
                printed += [int(x) for x in out.split()]
            if round == 0:
                # The kills must land mid-stream, or this test proves nothing.
                self.assertLess(len(printed), self.N)
        db = self.db()
        self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        states = dict(db.execute("SELECT state, count(*) FROM tasks GROUP BY state").fetchall())
        self.assertEqual(sum(states.values()), self.N)
        self.assertLessEqual(set(states), {"queued", "running"})
        running = {r[0] for r in db.execute("SELECT id FROM tasks WHERE state = 'running'")}
        # Every id a claimer reported is running, and reported once; a claim
        # committed just before the kill may be running but unreported.
        self.assertEqual(len(printed), len(set(printed)))
        self.assertLessEqual(set(printed), running)
        # A running task has exactly one claim event; a queued one none.
        claims = dict(db.execute("SELECT task_id, count(*) FROM task_events WHERE new_state = 'running' "
                                 "GROUP BY task_id").fetchall())
        db.close()
        self.assertEqual(set(claims), running)
        self.assertTrue(all(n == 1 for n in claims.values()))
        print(f"\n    {len(running)} claimed before the kills, {len(printed)} reported", end=" ")

        # The daemon's start-up recovery returns every one of them to the queue.
        d = self.start()
        d.notify.wait_field("READY=1")
        d.notify.wait_for(lambda m: f"queue: {self.N} queued" in m)
