# SPDX-License-Identifier: MIT
"""Crash torture: the daemon is killed with SIGKILL at random moments of a
task's life (start-up recovery, claim, session start, mid-stream, result,
transition, sync write), 200 times, with the fake `claude` and a fake Google.
After each kill and restart the state must be whole: the db passes
integrity_check, no task is lost or in two states, every claude that ran has
its sessions row (the day's budget is never undercounted), no claude or tool
of a dead daemon lives on, and interrupted conversations are resumed.

Also: kill -9s across parents' and sub-tasks' lives (FamilyCrash: no parent
stuck waiting on sub-tasks that all ended, no sub-task running twice), SIGKILL
of claude alone, and a full disk under the state dir."""

import json
import os
import random
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

from harness import BIN, REPO, TIMEOUT, TempStateTest, alive, read_fake_claude_log

FAKE_CLAUDE = os.path.join(REPO, "tests", "fake", "fake-claude")
FAKE_GOOGLE = os.path.join(REPO, "tests", "fake", "fake_google_sheets.py")
SAMPLES = "samples/v2.1.332_"
API_KEY = "sk-ant-test-0000-not-a-real-key"
KILLS = int(os.environ.get("JADA_TORTURE_KILLS", "200"))
STATES = {"queued", "running", "done", "needs_you", "failed", "cancelled"}
TERMINAL = {"done", "needs_you", "failed", "cancelled"}
FINISHED = {"done", "failed", "cancelled"}  # a sub-task in one of these no longer holds its parent
SPLIT = os.path.join(REPO, "tests", "torture", "split-in-session")
PARTS = ("A", "B")  # what split-in-session adds to a top-level task


def proc_environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class TortureBase(TempStateTest):
    def setUp(self):
        super().setUp()
        self.scenarios = os.path.join(self.tmp, "scenarios")
        os.makedirs(self.scenarios)
        self.fake_log = os.path.join(self.tmp, "fake-claude.log")
        # Every process a session starts carries this in its environment.
        self.marker = f"FAKE_CLAUDE_SCENARIOS={self.scenarios}".encode()

    def env(self, extra=None):
        env = {"FAKE_CLAUDE_SCENARIOS": self.scenarios, "FAKE_CLAUDE_LOG": self.fake_log,
               "ANTHROPIC_API_KEY": API_KEY, "GOOGLE_CLIENT_SECRET": "test-secret"}
        env.update(extra or {})
        return env

    def daemon(self, extra_env=None):
        d = self.start(extra_env=self.env(extra_env))
        d.notify.wait_field("READY=1")
        return d

    def scenario(self, n, **kw):
        with open(os.path.join(self.scenarios, f"{n:04d}-s.json"), "w") as f:
            json.dump(kw, f)

    def db(self):
        db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"), timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def query(self, sql, *args):
        db = self.db()
        try:
            return [dict(r) for r in db.execute(sql, args)]
        finally:
            db.close()

    def invocations(self):
        return read_fake_claude_log(self.fake_log)

    def add(self, prompt):
        r = self.run_cli("-c", self.config, "task", "add", prompt)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout)

    def session_processes(self):
        """Live processes that a session started (claude and its tools)."""
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit() and self.marker in proc_environ(int(name)) and alive(int(name)):
                out.append(int(name))
        return out

    def wait_until(self, predicate, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.01)


class FakeGoogle:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE_GOOGLE], stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=TIMEOUT)
        self.proc.stdout.close()

    def sheet(self, values):
        req = urllib.request.Request(self.url + "/_sheet", data=json.dumps({"values": values}).encode())
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            r.read()


def sheet_version(v):
    """Version v of the sheet: 2 + v % 5 rows, every cell naming v, so a
    half-replaced table shows as mixed versions or a wrong row count."""
    return [["port", "version"]] + [[f"port-{i}", str(v)] for i in range(2 + v % 5)]


class CrashTorture(TortureBase):
    def setUp(self):
        super().setUp()
        self.google = FakeGoogle()
        self.addCleanup(self.google.close)
        self.sheet_version = 0
        self.google.sheet(sheet_version(0))
        os.makedirs(self.state, mode=0o700)
        path = os.path.join(self.state, "google-token.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"refresh_token": "refresh-1"}, f)
        self.write_config(
            "poll_interval = 1h\n"
            "[claude]\n"
            f"command = {FAKE_CLAUDE}\n"
            "sessions_per_day = 1000\n"
            "max_sessions_per_task = 100\n"
            "max_attempts = 100\n"
            "[sheets]\n"
            "enabled = yes\n"
            "spreadsheet_id = SHEET-1\n"
            "range = Ports!A1:Z\n"
            "client_id = client-1\n"
            f"token_url = {self.google.url}/token\n"
            f"api_url = {self.google.url}\n")
        # Each session plays a random scenario: done, a max-turns stop that
        # resumes, or a question for a person; at a random pace, sometimes
        # with a tool left running in claude's process group.
        rng = random.Random(1)
        for n in range(1, 2000):
            kind = rng.random()
            s = {"line_delay": rng.choice([0, 0.01, 0.03, 0.08]), "spawn_child": rng.random() < 0.2}
            if kind < 0.7:
                s["stream"] = SAMPLES + "success.stream.jsonl"
            elif kind < 0.9:
                s["stream"] = SAMPLES + "max_turns.stream.jsonl"
            else:
                s["stream"] = SAMPLES + "success.stream.jsonl"
                s["result_text"] = "NEEDS-YOU: which port?"
            self.scenario(n, **s)

    def request_sync(self):
        self.sheet_version += 1
        self.google.sheet(sheet_version(self.sheet_version))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(b"sync", os.path.join(self.state, "control.sock"))
        except OSError:
            pass  # the daemon may be just gone: that is the point
        finally:
            s.close()

    def wait_for_session_end(self, timeout=3.0):
        """Returns once a session row ends (or the timeout passes)."""
        before = self.query("SELECT count(*) AS n FROM sessions WHERE ended_at IS NOT NULL")[0]["n"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = self.query("SELECT count(*) AS n FROM sessions WHERE ended_at IS NOT NULL")[0]["n"]
            if n > before:
                return
            time.sleep(0.002)

    def wait_for_new_invocation(self, timeout=3.0):
        before = len(self.invocations())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.invocations()) == before:
            time.sleep(0.002)

    def snapshot(self):
        """What was going on at the moment of the kill."""
        open_rows = self.query("SELECT count(*) AS n FROM sessions WHERE ended_at IS NULL")[0]["n"]
        running = self.query("SELECT count(*) AS n FROM tasks WHERE state = 'running'")[0]["n"]
        if running > open_rows:
            return "claimed, no session row yet"
        if open_rows:
            return "mid-session"
        return "between sessions"

    def check_state(self, ids, when):
        """The invariants that must hold whenever no daemon runs."""
        db = self.db()
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok", when)
            self.assertEqual(db.execute("PRAGMA foreign_key_check").fetchall(), [], when)
            tasks = {r["id"]: dict(r) for r in db.execute("SELECT * FROM tasks")}
            self.assertEqual(set(tasks), set(ids), f"{when}: tasks lost or invented")
            for t in tasks.values():
                self.assertIn(t["state"], STATES)
                last = db.execute("SELECT new_state FROM task_events WHERE task_id = ? ORDER BY id DESC LIMIT 1",
                                  (t["id"],)).fetchone()
                self.assertIsNotNone(last, f"{when}: task {t['id']} has no events")
                self.assertEqual(last[0], t["state"], f"{when}: task {t['id']}'s audit trail disagrees")
            rows = [dict(r) for r in db.execute("SELECT * FROM sessions")]
            # Budget: every claude that got as far as running has its row,
            # and the row names its conversation and task.
            by_pid = {r["pid"]: r for r in rows if r["pid"] is not None}
            for inv in self.invocations():
                row = by_pid.get(inv["pid"])
                self.assertIsNotNone(row, f"{when}: claude pid {inv['pid']} ran without a sessions row")
                self.assertEqual(row["claude_session_id"], inv["session_id"], when)
                self.assertEqual(str(row["task_id"]), inv["env"].get("JADA_TASK_ID"), when)
            for t in tasks.values():
                # Sessions that never reached the model give their slot back.
                n = sum(1 for r in rows if r["task_id"] == t["id"] and r["uncounted"] is None)
                self.assertEqual(t["sessions_used"], n, f"{when}: task {t['id']} sessions_used")
            # The port sheet is one whole version, never a mix.
            data = [json.loads(r[0]) for r in db.execute("SELECT data FROM port_sheet ORDER BY row")]
            meta = db.execute("SELECT header FROM port_sheet_meta").fetchall()
            if data:
                versions = {d["version"] for d in data}
                self.assertEqual(len(versions), 1, f"{when}: port_sheet mixes versions {versions}")
                v = int(versions.pop())
                self.assertEqual(len(data), 2 + v % 5, f"{when}: port_sheet version {v} is partial")
                self.assertEqual(len(meta), 1)
            path = os.path.join(self.state, "port-sheet.json")
            if os.path.exists(path):
                with open(path) as f:
                    doc = json.load(f)  # never half-written
                self.assertIsInstance(doc, dict)
            return tasks, rows
        finally:
            db.close()

    def test_200_kills(self):
        rng = random.Random(int(os.environ.get("JADA_TORTURE_SEED", "8")))
        ids = [self.add(f"task {n}") for n in range(20)]
        phases = {}
        moments = {}
        grandchildren = set()
        for k in range(KILLS):
            d = self.daemon()
            phase = rng.choice(["start-up", "anywhere", "anywhere", "session start", "session end", "sync"])
            if phase == "start-up":
                time.sleep(rng.uniform(0, 0.02))
            elif phase == "anywhere":
                time.sleep(rng.uniform(0, 1.0))
            elif phase == "session start":
                self.wait_for_new_invocation()
                time.sleep(rng.uniform(0, 0.05))
            elif phase == "session end":
                self.wait_for_session_end()
                time.sleep(rng.uniform(0, 0.003))
            else:
                self.request_sync()
                time.sleep(rng.uniform(0, 0.03))
            d.signal(signal.SIGKILL)
            d.wait()
            phases[phase] = phases.get(phase, 0) + 1
            moment = self.snapshot()
            moments[moment] = moments.get(moment, 0) + 1
            when = f"kill {k + 1} ({phase}, {moment})"
            # claude dies with the daemon (PR_SET_PDEATHSIG); a tool it left
            # in its group lives until the next daemon reaps it.
            self.wait_until(lambda: all(proc_comm(p) == "sleep" for p in self.session_processes()),
                            f"{when}: claude outliving the daemon")
            grandchildren.update(self.session_processes())
            self.check_state(ids, when)
            queued = self.query("SELECT count(*) AS n FROM tasks WHERE state = 'queued'")[0]["n"]
            if queued < 5:
                ids.append(self.add(f"task {len(ids)}"))

        # The last daemon runs undisturbed: every tool of a dead daemon's
        # session is killed, every task reaches an end, each resumed.
        d = self.daemon()
        self.wait_until(lambda: not any(alive(p) for p in grandchildren), "orphaned tools to be killed")
        self.wait_until(lambda: all(t["state"] in TERMINAL for t in self.query("SELECT state FROM tasks")),
                        "every task to finish", timeout=TIMEOUT * 6)
        self.wait_until(lambda: not self.query("SELECT id FROM sessions WHERE ended_at IS NULL"),
                        "every session row to close")
        d.stop()
        self.assertEqual(d.wait(), 0)
        self.wait_until(lambda: not self.session_processes(), "no session process left")
        tasks, rows = self.check_state(ids, "the end")
        self.assertTrue(all(r["outcome"] for r in rows))
        interrupted = 0
        for tid in tasks:
            mine = [r for r in rows if r["task_id"] == tid]
            for prev, nxt in zip(mine, mine[1:]):
                if prev["outcome"] in ("interrupted", "max_turns"):
                    interrupted += prev["outcome"] == "interrupted"
                    self.assertEqual(nxt["resumed"], 1, f"task {tid}: {prev} → {nxt}")
                    self.assertEqual(nxt["claude_session_id"], prev["claude_session_id"], f"task {tid}")
        synced = self.query("SELECT count(*) AS n FROM sync_runs WHERE ok = 1")[0]["n"]
        self.assertGreater(synced, 0, "no sync ever completed between the kills")
        budget = self.query("SELECT count(*) AS n FROM sessions")[0]["n"]
        self.assertEqual(budget, len(rows))
        self.assertGreaterEqual(len(self.invocations()), KILLS // 4)
        print(f"\ntorture: {KILLS} kills; phases {phases}; at the kill: {moments}; "
              f"{len(ids)} tasks, {len(rows)} sessions ({interrupted} interrupted and resumed), "
              f"{len(self.invocations())} claude runs, {len(grandchildren)} orphaned tools reaped, "
              f"{synced} syncs completed",
              file=sys.stderr)
        # The kills must have landed in every part of a task's life.
        for moment in ("mid-session", "between sessions"):
            self.assertGreater(moments.get(moment, 0), 0, moments)


class FamilyCrash(TortureBase):
    """kill -9 of the daemon at random moments of parents' and sub-tasks'
    lives (issue 18). Each top-level task's session splits it into the parts
    A and B through the command line (tests/torture/split-in-session), then
    ends; the parts run, two at a time; the parent resumes its conversation
    with their results and ends done. Kills land at start-up (recovery),
    anywhere, while the session's CLI call adds a part, while a part's
    session runs, just after a session ends (a part done and its parent
    queued again, a parent going to waiting) and just after a parent is
    queued again (its claim, the start of its resumed session). After each
    kill: a waiting parent always has an unfinished part, no task ran twice
    at once (a part's session never overlaps another of its own or one of
    its parent's, a parent never has a part twice), a part is done at most
    once, and the db's invariants of CrashTorture. At the end every parent
    and part is done, and the parent's first session after its parts ended
    was told every part's result."""

    # Each kill starts a daemon, checks what its recovery made, waits for
    # its moment (up to 3 s) and checks the db again: about 1.2 s a kill.
    # 33 (at CrashTorture's default 200) is 5 or 6 kills at each of the 6
    # moments, over about 10 families, in about 40 s. Checked against a
    # recovery that queues a parent with unfinished parts, and a part's end
    # that forgets its waiting parent: each caught within the first 5 kills.
    KILLS = max(6, KILLS // 6)
    PHASES = ("start-up", "anywhere", "CLI add", "part's session", "session end", "parent queued again")
    PARENTS_AT_ONCE = 2

    def setUp(self):
        super().setUp()
        self.marks = os.path.join(self.tmp, "marks")
        os.makedirs(self.marks)
        self.write_config(f"poll_interval = 1h\n[claude]\ncommand = {FAKE_CLAUDE}\nconcurrency = 2\n"
                          "sessions_per_day = 1000\nmax_sessions_per_task = 100\nmax_attempts = 100\n")
        run = " ".join(shlex.quote(a) for a in (sys.executable, SPLIT, BIN, self.marks))
        # Each session splits its task if it is a top-level one lacking a
        # part; it ends done or at its turn limit (resumed), at a random
        # pace, sometimes with a tool left running in claude's group.
        rng = random.Random(2)
        for n in range(1, 800):
            kind = "max_turns" if rng.random() < 0.2 else "success"
            self.scenario(n, run=run, stream=f"{SAMPLES}{kind}.stream.jsonl",
                          line_delay=rng.choice([0, 0.01, 0.03]), spawn_child=rng.random() < 0.2)

    def count_marks(self):
        return len(os.listdir(self.marks))

    def count_part_runs(self):
        parts = {str(r["id"]) for r in self.query("SELECT id FROM tasks WHERE parent_id IS NOT NULL")}
        return sum(1 for inv in self.invocations() if inv["env"].get("JADA_TASK_ID") in parts)

    def count_requeued(self):
        return self.query("SELECT count(*) AS n FROM task_events WHERE old_state = 'waiting' "
                          "AND new_state = 'queued'")[0]["n"]

    def count_ended(self):
        return self.query("SELECT count(*) AS n FROM sessions WHERE ended_at IS NOT NULL")[0]["n"]

    def wait_for_more(self, count, timeout=3.0):
        """Returns once count() grows (or the timeout passes)."""
        before = count()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and count() == before:
            time.sleep(0.002)

    def snapshot(self):
        """What was going on at the moment of the kill."""
        running = self.query("SELECT count(*) AS n FROM tasks WHERE state = 'running'")[0]["n"]
        open_rows = self.query("SELECT t.parent_id FROM sessions s JOIN tasks t ON t.id = s.task_id "
                               "WHERE s.ended_at IS NULL")
        if running > len(open_rows):
            return "claimed, no session row yet"
        if any(r["parent_id"] is None for r in open_rows):
            return "mid-session of a parent"
        if open_rows:
            return "mid-session of a part"
        return "between sessions"

    def check_family(self, parents, when, live=False):
        """The invariants that must hold whenever no daemon runs; and, but
        for the claude log's, while one runs (live): each move is one
        transaction, and they are read in one."""
        db = self.db()
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok", when)
            self.assertEqual(db.execute("PRAGMA foreign_key_check").fetchall(), [], when)
            db.execute("BEGIN")
            tasks = {r["id"]: dict(r) for r in db.execute("SELECT * FROM tasks")}
            rows = [dict(r) for r in db.execute("SELECT * FROM sessions ORDER BY id")]
            last_event = dict(db.execute("SELECT task_id, new_state FROM task_events e WHERE id = "
                                         "(SELECT max(id) FROM task_events WHERE task_id = e.task_id)").fetchall())
            db.rollback()
        finally:
            db.close()
        # No task lost or invented: the parents, and the parts their sessions added, each once.
        self.assertLessEqual(set(parents), set(tasks), f"{when}: a parent lost")
        parts = {}
        for t in tasks.values():
            if t["id"] in parents:
                self.assertIsNone(t["parent_id"], when)
                continue
            self.assertIn(t["parent_id"], parents, f"{when}: task {t['id']} invented")
            self.assertIn(t["title"], PARTS, when)
            key = (t["parent_id"], t["title"])
            self.assertNotIn(key, parts, f"{when}: task {key[0]} has part {key[1]} twice "
                                         f"({parts.get(key)} and {t['id']}): two of its sessions ran at once")
            parts[key] = t["id"]
        children = {p: [t for t in tasks.values() if t["parent_id"] == p] for p in parents}
        for t in tasks.values():
            self.assertIn(t["state"], STATES | {"waiting"}, when)
            self.assertEqual(last_event.get(t["id"]), t["state"], f"{when}: task {t['id']}'s audit trail disagrees")
        for p in parents:
            unfinished = [c["id"] for c in children[p] if c["state"] not in FINISHED]
            state = tasks[p]["state"]
            # The point of issue 18's crash safety: never stuck waiting.
            if state == "waiting":
                self.assertTrue(unfinished, f"{when}: task {p} waits, but its sub-tasks have all ended: "
                                            f"{[(c['id'], c['state']) for c in children[p]]}")
            # A session's end, or its daemon's death, with parts unfinished makes it wait.
            if state == "queued":
                self.assertEqual(unfinished, [], f"{when}: task {p} queued with unfinished sub-tasks")
            if state == "done":
                self.assertEqual(unfinished, [], f"{when}: task {p} done before its sub-tasks")
        # Budget: every claude that ran has its row, naming its conversation and task.
        by_pid = {r["pid"]: r for r in rows if r["pid"] is not None}
        for inv in [] if live else self.invocations():
            row = by_pid.get(inv["pid"])
            self.assertIsNotNone(row, f"{when}: claude pid {inv['pid']} ran without a sessions row")
            self.assertEqual(row["claude_session_id"], inv["session_id"], when)
            self.assertEqual(str(row["task_id"]), inv["env"].get("JADA_TASK_ID"), when)
        for t in tasks.values():
            mine = [r for r in rows if r["task_id"] == t["id"]]
            if not live:  # (a session that never started gives its slot back in a second write)
                self.assertEqual(t["sessions_used"], sum(1 for r in mine if r["uncounted"] is None),
                                 f"{when}: task {t['id']} sessions_used")
            # Never twice at once: each session of a task began once the one
            # before it had ended (a killed one ends at the next start-up).
            if live:
                self.assertLessEqual(sum(1 for r in mine if r["ended_at"] is None), 1, f"{when}: {mine}")
                mine = [r for r in mine if r["ended_at"] is not None]
            for prev, nxt in zip(mine, mine[1:]):
                self.assertIsNotNone(prev["ended_at"], f"{when}: task {t['id']}: {prev} still open under {nxt}")
                self.assertGreaterEqual(nxt["started_at"], prev["ended_at"], f"{when}: task {t['id']}: {prev} {nxt}")
            # A part is done once: one session that ended it done, its last.
            if t["parent_id"] is not None:
                done = [i for i, r in enumerate(mine) if r["outcome"] == "done"]
                self.assertLessEqual(len(done), 1, f"{when}: part {t['id']} done twice: {mine}")
                if done:
                    self.assertEqual(done[0], len(mine) - 1, f"{when}: part {t['id']} ran after it was done: {mine}")
        # A part never runs while its parent's session does. Seconds, floored:
        # a strict overlap of the floored spans is an overlap of the real ones.
        for c in (t for t in tasks.values() if t["parent_id"] is not None):
            for cr in (r for r in rows if r["task_id"] == c["id"]):
                for pr in (r for r in rows if r["task_id"] == c["parent_id"]):
                    c_end = cr["ended_at"] if cr["ended_at"] is not None else 2 ** 62
                    p_end = pr["ended_at"] if pr["ended_at"] is not None else 2 ** 62
                    self.assertFalse(cr["started_at"] < p_end and pr["started_at"] < c_end,
                                     f"{when}: part {c['id']} ran during its parent's session: {cr} {pr}")
        return tasks, rows

    def test_kills_across_parents_and_sub_tasks(self):
        rng = random.Random(int(os.environ.get("JADA_TORTURE_SEED", "8")))
        parents, phases, moments, grandchildren = [], {}, {}, set()
        # Each moment as often as the others, in a random order.
        order = list(self.PHASES) * (self.KILLS // len(self.PHASES) + 1)
        rng.shuffle(order)
        for k in range(self.KILLS):
            states = {p: "queued" for p in parents}
            if parents:
                states = {r["id"]: r["state"] for r in self.query("SELECT id, state FROM tasks WHERE parent_id IS NULL")}
            while sum(1 for p in parents if states[p] not in TERMINAL) < self.PARENTS_AT_ONCE:
                parents.append(self.add(f"big job {len(parents)}"))
                states[parents[-1]] = "queued"
            d = self.daemon()
            phase = order[k]
            if phase != "start-up":
                # What the start-up recovery made of the last kill, at once
                # (a kill at start-up keeps its moment).
                self.check_family(parents, f"start {k + 1}", live=True)
            if phase == "start-up":
                time.sleep(rng.uniform(0, 0.02))
            elif phase == "anywhere":
                time.sleep(rng.uniform(0, 1.0))
            elif phase == "CLI add":
                self.wait_for_more(self.count_marks)
                time.sleep(rng.uniform(0, 0.03))
            elif phase == "part's session":
                self.wait_for_more(self.count_part_runs)
                time.sleep(rng.uniform(0, 0.05))
            elif phase == "session end":
                self.wait_for_more(self.count_ended)
                time.sleep(rng.uniform(0, 0.003))
            else:
                self.wait_for_more(self.count_requeued)
                time.sleep(rng.uniform(0, 0.05))
            d.signal(signal.SIGKILL)
            d.wait()
            phases[phase] = phases.get(phase, 0) + 1
            when = f"kill {k + 1} ({phase})"
            # claude dies with the daemon; what its shell line ran (the CLI
            # adding a part) ends on its own, as under systemd's final kill
            # of the unit's group; a tool left in claude's group lives until
            # the next daemon reaps it.
            self.wait_until(lambda: all(proc_comm(p) == "sleep" for p in self.session_processes()),
                            f"{when}: a session's processes outliving the daemon")
            grandchildren.update(self.session_processes())
            moment = self.snapshot()
            moments[moment] = moments.get(moment, 0) + 1
            self.check_family(parents, f"{when}, {moment}")

        # The last daemon runs undisturbed: every parent and part ends done.
        d = self.daemon()
        self.wait_until(lambda: not any(alive(p) for p in grandchildren), "orphaned tools to be killed")
        self.wait_until(lambda: all(t["state"] == "done" for t in self.query("SELECT state FROM tasks")),
                        "every parent and sub-task to end done", timeout=TIMEOUT * 6)
        self.wait_until(lambda: not self.query("SELECT id FROM sessions WHERE ended_at IS NULL"),
                        "every session row to close")
        d.stop()
        self.assertEqual(d.wait(), 0)
        self.wait_until(lambda: not self.session_processes(), "no session process left")
        tasks, rows = self.check_family(parents, "the end")
        self.assertTrue(all(r["outcome"] for r in rows))
        runs = {inv["pid"]: inv for inv in self.invocations()}
        interrupted = 0
        for tid, t in tasks.items():
            mine = [r for r in rows if r["task_id"] == tid]
            for prev, nxt in zip(mine, mine[1:]):
                if prev["outcome"] in ("interrupted", "max_turns") or t["parent_id"] is None:
                    interrupted += prev["outcome"] == "interrupted"
                    self.assertEqual(nxt["resumed"], 1, f"task {tid}: {prev} → {nxt}")
                    self.assertEqual(nxt["claude_session_id"], prev["claude_session_id"], f"task {tid}")
        told = lost_with_claude = 0
        for p in parents:
            kids = sorted((t for t in tasks.values() if t["parent_id"] == p), key=lambda t: t["id"])
            self.assertEqual([c["title"] for c in kids], list(PARTS), f"task {p}'s parts")
            # The parent's first session after its last part's: it was told
            # every part's result, unless claude was killed before the fake
            # recorded what it read (a session that never started claude
            # leaves the message in the task: the next one must have it).
            last_part_row = max(r["id"] for r in rows if r["task_id"] in {c["id"] for c in kids})
            after = [r for r in rows if r["task_id"] == p and r["id"] > last_part_row]
            self.assertTrue(after, f"task {p} never resumed after its parts")
            for r in after:
                if r["pid"] in runs:
                    stdin = runs[r["pid"]]["stdin"]
                    for c in kids:
                        self.assertIn(f"Sub-task {c['id']}: {c['title']}\nstate: done", stdin,
                                      f"task {p}'s resume after its parts: {stdin!r}")
                    self.assertIn("--resume", runs[r["pid"]]["argv"])
                    told += 1
                    break
                if r["pid"] is not None:
                    # claude ran, killed before it recorded what it was told:
                    # a real one may have kept it in its conversation.
                    self.assertEqual(r["outcome"], "interrupted", r)
                    lost_with_claude += 1
                    break
                # A session killed before claude started: the report stays
                # in the task (it is used up only by a session that reached
                # the model), so the next session must be told.
                continue
        self.assertGreaterEqual(told, 1)
        print(f"\nfamily torture: {self.KILLS} kills; phases {phases}; at the kill: {moments}; "
              f"{len(parents)} parents, {len(tasks) - len(parents)} sub-tasks, {len(rows)} sessions "
              f"({interrupted} interrupted and resumed), {len(runs)} claude runs, {self.count_marks()} CLI adds begun, "
              f"{told} parents seen told their sub-tasks' results, {lost_with_claude} killed before the fake recorded it, "
              f"{len(grandchildren)} orphaned tools reaped", file=sys.stderr)
        for moment in ("mid-session of a parent", "mid-session of a part", "between sessions"):
            self.assertGreater(moments.get(moment, 0), 0, moments)


class ChildKill(TortureBase):
    """SIGKILL of claude alone: a crashed attempt, counted, resumed later."""

    def setUp(self):
        super().setUp()
        self.write_config(f"poll_interval = 1h\n[claude]\ncommand = {FAKE_CLAUDE}\nmax_attempts = 2\n")

    def test_sigkill_of_claude_alone(self):
        self.scenario(1, stream=SAMPLES + "success.stream.jsonl", hang_after=3, spawn_child=True)
        self.scenario(2, stream=SAMPLES + "success.stream.jsonl")
        d = self.daemon()
        i = self.add("x")
        self.wait_until(lambda: self.invocations() and self.invocations()[0]["child_pid"], "claude to start")
        first = self.invocations()[0]
        os.kill(first["pid"], signal.SIGKILL)
        self.wait_until(lambda: self.query("SELECT state FROM tasks")[0]["state"] != "running", "the outcome")
        (row,) = self.query("SELECT * FROM sessions")
        self.assertEqual((row["outcome"], row["exit_status"]), ("crashed", 128 + signal.SIGKILL))
        (t,) = self.query("SELECT * FROM tasks WHERE id = ?", i)
        self.assertEqual((t["state"], t["attempts"], t["sessions_used"]), ("queued", 1, 1))
        self.assertGreaterEqual(t["run_after"] - t["updated_at"], 60)  # backoff, not a hot loop
        self.assertIn("killed by signal 9", self.query("SELECT reason FROM task_events ORDER BY id DESC")[0]["reason"])
        # The tool claude left in its group goes with it; the daemon lives on.
        self.wait_until(lambda: not alive(first["child_pid"]), "claude's tool to be killed")
        self.assertIsNone(d.proc.poll())
        self.assertEqual(len(self.invocations()), 1)
        # Past the backoff (a later clock), the task resumes its conversation.
        d.stop()
        shim = os.path.join(os.environ.get("JADA_BUILD", "build"), "tests", "libfakeclock.so")
        self.daemon({"LD_PRELOAD": shim, "FAKE_REALTIME_START": str(int(time.time()) + 120)})
        self.wait_until(lambda: self.query("SELECT state FROM tasks")[0]["state"] == "done", "the task to finish")
        second = self.invocations()[1]
        self.assertTrue(second["resumed"])
        self.assertEqual(second["session_id"], first["session_id"])


class FullDisk(TortureBase):
    """The state dir on a small tmpfs that fills up: SQLITE_FULL is reported,
    the daemon runs on and keeps what it could not write, and everything is
    recorded once there is room again."""

    def setUp(self):
        super().setUp()
        mnt = os.path.join(self.tmp, "small")
        os.makedirs(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        self.mnt = mnt
        self.state = os.path.join(mnt, "state")
        self.write_config(f"poll_interval = 1s\n[claude]\ncommand = {FAKE_CLAUDE}\n")

    def fill(self):
        """Fills the file system to the last block."""
        path = os.path.join(self.mnt, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (65536, 4096, 1):
                try:
                    while os.write(fd, b"\0" * size) > 0:
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        self.assertLess(os.statvfs(self.mnt).f_bavail, 2)
        return path

    def test_full_disk(self):
        # A 1 MiB answer: recording it needs the WAL to grow by as much.
        answer = "the answer " + "x" * (1024 * 1024)
        self.scenario(1, stream=SAMPLES + "success.stream.jsonl", line_delay=0.3, result_text=answer)
        self.scenario(2, stream=SAMPLES + "success.stream.jsonl")
        d = self.daemon()
        a = self.add("the one whose end meets a full disk")
        b = self.add("the one waiting behind it")
        self.wait_until(lambda: self.invocations(), "the first session")
        filler = self.fill()

        # The session ends on a full disk: reported, kept, nothing launched.
        full_at = d.notify.wait_for(lambda m: "cannot write the database" in m and "No space left" in m)
        self.assertIn("ALERT: cannot write the database", d.log())
        self.wait_until(lambda: "kept until the database can be written" in d.log(), "the session's end")
        time.sleep(2.5)  # two more polls on the full disk
        self.assertIsNone(d.proc.poll(), "the daemon must run on")
        self.assertEqual(len(self.invocations()), 1, "a session started without room for its row")
        db = self.db()
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            states = dict(db.execute("SELECT id, state FROM tasks").fetchall())
        finally:
            db.close()
        self.assertEqual(states, {a: "running", b: "queued"})  # nothing half-written
        # The command line says so too, and adds nothing.
        r = self.run_cli("-c", self.config, "task", "add", "-", input="y" * 500000)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("full", r.stderr)
        self.assertEqual(len(self.query("SELECT id FROM tasks")), 2)

        # Room again: the kept outcome is written, the next task runs.
        os.unlink(filler)
        self.wait_until(lambda: self.query("SELECT state FROM tasks WHERE id = ?", b)[0]["state"] == "done",
                        "the waiting task to run")
        (t,) = self.query("SELECT * FROM tasks WHERE id = ?", a)
        self.assertEqual(t["state"], "done")
        self.assertEqual(t["result"], answer)  # nothing lost
        rows = self.query("SELECT * FROM sessions ORDER BY id")
        self.assertEqual([(r["task_id"], r["outcome"]) for r in rows], [(a, "done"), (b, "done")])
        d.notify.wait_for(lambda m: m.startswith("STATUS=") and "DEGRADED" not in m, start=full_at + 1)
        self.assertIn("RECOVERED", d.log())
        d.stop()
        self.assertEqual(d.wait(), 0)


class ProjectCrash(TortureBase):
    """kill -9 of the daemon at random moments of a project task's life
    (while git prepares the worktree, while claude writes, while the daemon
    commits): nothing a session wrote is lost, and every session starts on a
    worktree with nothing left uncommitted."""

    KILLS = max(3, KILLS // 20)

    def setUp(self):
        super().setUp()
        self.repo = os.path.join(self.tmp, "repo")
        os.makedirs(self.repo)
        env = dict(os.environ, GIT_AUTHOR_NAME="P", GIT_AUTHOR_EMAIL="p@example.org", GIT_COMMITTER_NAME="P",
                   GIT_COMMITTER_EMAIL="p@example.org", HOME="/nonexistent")
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "first"]):
            subprocess.run(["git", "-C", self.repo, *args], check=True, env=env, capture_output=True)
        self.write_config(f"poll_interval = 1h\ndefault_project = p\n[claude]\ncommand = {FAKE_CLAUDE}\n"
                          "sessions_per_day = 1000\n"
                          f"max_sessions_per_task = 100\nmax_attempts = 100\n[project p]\npath = {self.repo}\n")

    def test_kill_9_mid_project_session(self):
        rng = random.Random(os.environ.get("JADA_TORTURE_SEED", str(time.time())))
        # Each session writes its own file, reports what it found, and ends
        # at its turn limit, so the task resumes again and again.
        for n in range(1, self.KILLS + 2):
            self.scenario(n, stream=SAMPLES + "max_turns.stream.jsonl", line_delay=0.02,
                          run="git status --porcelain; echo ---; ls", write_files={f"f-{n}.txt": f"{n}\n"})
        i = None
        for k in range(self.KILLS):
            d = self.daemon()
            if i is None:
                i = self.add("keeps going")
            time.sleep(rng.uniform(0.0, 0.6))
            d.proc.kill()
            d.wait()
        with open(os.path.join(self.scenarios, "default.json"), "w") as f:
            json.dump({"stream": SAMPLES + "success.stream.jsonl", "run": "git status --porcelain; echo ---; ls"}, f)
        d = self.daemon()
        self.wait_until(lambda: self.query("SELECT state, worktree FROM tasks")[0] == {"state": "done", "worktree": None},
                        "the task to finish and its worktree to go", timeout=60)
        d.stop()

        runs = self.invocations()
        self.assertGreater(len(runs), 1)
        seen = set()
        for r in runs[1:]:
            status, _, listing = r["ran"].partition("---\n")
            # What the session before it left was committed before it started.
            self.assertEqual(status, "", f"{r['scenario']} started on uncommitted changes: {status!r}")
            seen.update(name for name in listing.split() if name.startswith("f-"))
        r = subprocess.run(["git", "-C", self.repo, "ls-tree", "--name-only", "jada/task-1"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr + d.log())
        tree = r.stdout.split()
        self.assertTrue(seen, runs)
        self.assertLessEqual(seen, set(tree))
        self.assertNotIn("task-1", os.listdir(os.path.join(self.state, "work")))
