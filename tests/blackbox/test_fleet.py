# SPDX-License-Identifier: MIT
"""A fleet of real daemons sharing one real PostgreSQL 15 (tests/lib/pg.py),
each with its own state directory as if on its own machine: registration,
heartbeats, `jada-agent nodes` and `status`, one leader that alone syncs the
port sheet and a new one when it dies (kill -9) or is paused past its lease
(SIGSTOP: fenced), the server stopped for 30 s, a schema newer than the
binary, and check-config of [database]."""

import json
import os
import re
import signal
import time

from harness import TIMEOUT, Daemon, TempStateTest, read_fake_claude_log
from pg import PostgresServer
from test_projects import git, make_repo
from test_sync import SHEET, FakeGoogle

LEASE = 6                       # seconds; heartbeats every 2 s
HEARTBEAT = LEASE / 3


def wait_until(predicate, timeout=TIMEOUT, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(step)


class FleetBase(TempStateTest):
    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresServer()
        cls.pg.start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def setUp(self):
        super().setUp()
        if self.pg.pid() is None:
            self.pg.start()
        self.db = f"fleet_{self._testMethodName[-40:].lower()}"
        self.url = self.pg.createdb(self.db)
        self.nodes = {}

    def node_config(self, name, extra=""):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "jada-agent.conf")
        with open(path, "w") as f:
            f.write(f"[daemon]\nstate_dir = {d}/state\n"
                    f"[database]\nurl = {self.url}\nnode_name = {name}\nlease = {LEASE}s\n" + extra)
        return d, path

    def start_node(self, name, extra="", env=None):
        d, path = self.node_config(name, extra)
        daemon = Daemon(d, path, extra_env=env)
        self.daemons.append(daemon)
        self.nodes[name] = (daemon, path)
        return daemon

    def cli(self, name, *args):
        return self.run_cli(*args, env={"JADA_AGENT_CONFIG": self.nodes[name][1]})

    def fleet(self, name):
        r = self.cli(name, "nodes", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return {n["name"]: n for n in json.loads(r.stdout)["nodes"]}

    def sql(self, text):
        return self.pg.psql_rows(text, db=self.db)

    def leaders(self):
        return [name for (name,) in self.sql("SELECT name FROM nodes WHERE leader AND stopped_at IS NULL")]

    def wait_alive(self, via, names, timeout=TIMEOUT):
        def ok():
            try:
                f = self.fleet(via)
            except (AssertionError, ValueError):
                return None
            return f if all(f.get(n, {}).get("state") == "alive" for n in names) else None
        f = wait_until(ok, timeout)
        self.assertTrue(f, f"not all of {names} alive: {self.fleet(via) if f is None else f}")
        return f

    def the_leader(self, names, timeout=TIMEOUT):
        """The one node whose journal says it leads now, and that says so in nodes."""
        def one():
            leading = [n for n in names if self.nodes[n][0].log().count("now leads the fleet")
                       > self.nodes[n][0].log().count("no longer leads the fleet")]
            return leading if len(leading) == 1 else None
        leading = wait_until(one, timeout)
        self.assertTrue(leading, {n: self.nodes[n][0].log() for n in names})
        return leading[0]



class Fleet(FleetBase):
    # -- the cases ---------------------------------------------------------

    def test_three_nodes_register_heartbeat_and_one_leads(self):
        for n in ("a", "b", "c"):
            self.start_node(n)
        f = self.wait_alive("a", ["a", "b", "c"])
        self.assertEqual(sorted(f), ["a", "b", "c"])
        for n, row in f.items():
            self.assertEqual(row["pid"], self.nodes[n][0].proc.pid)
            self.assertLessEqual(row["heartbeat_age_seconds"], LEASE)
            self.assertIsNone(row["stopped_at"])
        leader = self.the_leader(["a", "b", "c"])
        self.assertEqual(wait_until(lambda: self.leaders() == [leader] and self.leaders()), [leader])
        # The heartbeat moves: a later read has a later heartbeat.
        before = int(self.sql("SELECT heartbeat_at FROM nodes WHERE name = 'b'")[0][0])
        self.assertTrue(wait_until(lambda: int(self.sql("SELECT heartbeat_at FROM nodes WHERE name = 'b'")[0][0])
                                   > before, timeout=3 * HEARTBEAT + 2, step=0.2))
        # One migration for three nodes starting together.
        self.assertEqual(sum(self.nodes[n][0].log().count("migrated the fleet's schema") for n in "abc"), 1)
        self.assertEqual(self.sql("SELECT version FROM jada_schema"), [("2",)])
        # The human form names each node; status shows the fleet and is OK.
        r = self.cli("a", "nodes")
        self.assertEqual(r.returncode, 0, r.stderr)
        for n in "abc":
            self.assertRegex(r.stdout, rf"(?m)^{n}\s+\S+\s+\S+\s+alive\s")
        self.assertIn("(leader)", r.stdout)
        # Each node's health row: its STATUS= line, under its name.
        self.assertEqual(len(re.findall(r"(?m)^    Idle · queue: ", r.stdout)), 3, r.stdout)
        self.assertTrue(all(n["status"].startswith("Idle") and n["problems"] == [] for n in self.fleet("a").values()))
        st = self.cli("a", "status", "--json")
        doc = json.loads(st.stdout)
        self.assertEqual(sorted(n["name"] for n in doc["fleet"]["nodes"]), ["a", "b", "c"])
        self.assertIsNone(doc["fleet"]["error"])
        self.assertNotIn("node_lost", [p["kind"] for p in doc["problems"]])
        human = self.cli("a", "status").stdout
        self.assertRegex(human, r"fleet\s+3 nodes: a \(this one\) alive")
        # A clean stop says so: stopped, not lost.
        self.nodes["c"][0].stop()
        self.assertEqual(self.fleet("a")["c"]["state"], "stopped")
        time.sleep(LEASE + HEARTBEAT + 1)
        self.assertEqual(self.fleet("a")["c"]["state"], "stopped")
        self.assertNotIn("node_lost", [p["kind"] for p in json.loads(self.cli("a", "status", "--json").stdout)["problems"]])

    def test_kill_9_of_the_leader_another_takes_over_and_the_lost_node_is_a_warning(self):
        for n in ("a", "b", "c"):
            self.start_node(n)
        self.wait_alive("a", ["a", "b", "c"])
        leader = self.the_leader(["a", "b", "c"])
        rest = [n for n in "abc" if n != leader]
        killed = time.monotonic()
        self.nodes[leader][0].proc.kill()
        self.nodes[leader][0].proc.wait(timeout=TIMEOUT)
        # Its connection closed with it, and the lock with that: the next
        # heartbeat of another node takes it.
        new = self.the_leader(rest, timeout=3 * HEARTBEAT + 5)
        took = time.monotonic() - killed
        self.assertLess(took, LEASE + HEARTBEAT + 5)
        self.assertIn(new, rest)
        # Past the lease the dead node is lost: a WARNING with its name.
        f = wait_until(lambda: self.fleet(rest[0])[leader]["state"] == "lost" and self.fleet(rest[0]),
                       timeout=LEASE + 3 * HEARTBEAT + 5)
        self.assertTrue(f)
        def warned():
            st = self.cli(rest[0], "status", "--json")
            kinds = {p["kind"]: p for p in json.loads(st.stdout)["problems"]}
            return (st.returncode, kinds) if "node_lost" in kinds else None
        got = wait_until(warned, timeout=3 * HEARTBEAT + 5)
        self.assertTrue(got)
        code, kinds = got
        self.assertGreaterEqual(code, 1)
        self.assertIn(f"node {leader}", kinds["node_lost"]["text"])
        self.assertEqual(kinds["node_lost"]["severity"], "WARNING")
        self.assertTrue(wait_until(lambda: "ALERT: node " + leader in self.nodes[rest[0]][0].log()),
                        self.nodes[rest[0]][0].log())
        # A live node cannot be forgotten; an unknown one is said so.
        r = self.cli(rest[0], "nodes", "forget", rest[1])
        self.assertEqual(r.returncode, 1)
        self.assertIn("is alive", r.stderr)
        r = self.cli(rest[0], "nodes", "forget", "nosuch")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no node named nosuch", r.stderr)
        # It comes back (the same host: its own name again), and the warning goes.
        self.daemons.remove(self.nodes[leader][0])
        self.nodes[leader][0].stop()
        self.start_node(leader)
        self.wait_alive(rest[0], ["a", "b", "c"])
        self.assertTrue(wait_until(lambda: "RECOVERED: node " in self.nodes[rest[0]][0].log(),
                                   timeout=3 * HEARTBEAT + 5), self.nodes[rest[0]][0].log())
        self.assertEqual(self.the_leader(["a", "b", "c"]), new)

    def test_a_node_that_died_for_good_is_forgotten_and_the_warning_goes(self):
        for n in ("a", "b"):
            self.start_node(n)
        self.wait_alive("a", ["a", "b"])
        self.nodes["b"][0].proc.kill()
        self.nodes["b"][0].proc.wait(timeout=TIMEOUT)
        a = self.nodes["a"][0]
        self.assertTrue(wait_until(lambda: "ALERT: node b" in a.log(), timeout=2 * LEASE + TIMEOUT), a.log())
        r = self.cli("a", "nodes", "forget", "b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("node b forgotten", r.stdout)
        self.assertEqual(sorted(self.fleet("a")), ["a"])
        self.assertEqual(self.sql("SELECT count(*) FROM health WHERE node = 'b'"), [("0",)])
        self.assertTrue(wait_until(lambda: "RECOVERED: node b" in a.log(), timeout=3 * HEARTBEAT + 5), a.log())

    def test_only_the_leader_syncs_the_sheet_and_a_new_leader_syncs_at_once(self):
        google = FakeGoogle()
        self.addCleanup(google.close)
        google.sheet(SHEET["values"])
        extra = ("[sheets]\nenabled = yes\nspreadsheet_id = SHEET-1\nrange = 'Port list'!A1:Z\ninterval = 1h\n"
                 f"client_id = client-1\ntoken_url = {google.url}/token\napi_url = {google.url}\n")
        for n in ("a", "b", "c"):
            d, _ = self.node_config(n, extra)
            os.makedirs(f"{d}/state", mode=0o700, exist_ok=True)
            with open(f"{d}/state/google-token.json", "w") as f:
                json.dump({"refresh_token": "refresh-1"}, f)
            os.chmod(f"{d}/state/google-token.json", 0o600)
            self.start_node(n, extra, env={"GOOGLE_CLIENT_SECRET": "test-secret"})
        self.wait_alive("a", ["a", "b", "c"])
        leader = self.the_leader(["a", "b", "c"])

        def runs(n):
            # The fleet's sync runs are one table; each node's journal says
            # which of them it ran.
            return self.nodes[n][0].log().count("sheets: synced ")

        def shared_runs():
            return int(self.sql("SELECT count(*) FROM sync_runs WHERE ok = 1")[0][0])
        self.assertTrue(wait_until(lambda: runs(leader) >= 1), self.nodes[leader][0].log())
        self.assertTrue(wait_until(lambda: shared_runs() >= 1))
        # The others' timers fell due at their start too (no sync yet): they
        # left it to the leader.
        time.sleep(2 * HEARTBEAT)
        rest = [n for n in "abc" if n != leader]
        self.assertEqual([runs(n) for n in rest], [0, 0])
        # sync --now on a follower: it says who syncs, and does not.
        r = self.cli(rest[0], "sync", "--now")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: "another node leads the fleet and syncs" in self.nodes[rest[0]][0].log()),
                        self.nodes[rest[0]][0].log())
        self.assertEqual(runs(rest[0]), 0)
        # The leader dies: the next one syncs at once.
        self.nodes[leader][0].proc.kill()
        self.nodes[leader][0].proc.wait(timeout=TIMEOUT)
        new = self.the_leader(rest, timeout=3 * HEARTBEAT + 5)
        self.assertTrue(wait_until(lambda: runs(new) >= 1, timeout=3 * HEARTBEAT + 10), self.nodes[new][0].log())
        other = [n for n in rest if n != new][0]
        self.assertEqual(runs(other), 0)

    def test_a_node_paused_past_its_lease_is_fenced_and_says_so(self):
        for n in ("a", "b"):
            self.start_node(n)
        self.wait_alive("a", ["a", "b"])
        leader = self.the_leader(["a", "b"])
        other = "b" if leader == "a" else "a"
        paused = self.nodes[leader][0]
        paused.signal(signal.SIGSTOP)
        try:
            # The other sees it lost, ends its connection, and takes the lock.
            new = wait_until(lambda: self.leaders() == [other] and other, timeout=LEASE + 3 * HEARTBEAT + 5)
            self.assertEqual(new, other, self.nodes[other][0].log())
            self.assertIn("now leads the fleet", self.nodes[other][0].log())
        finally:
            paused.signal(signal.SIGCONT)
        # Awake, it finds its connection gone, says it no longer leads, and
        # joins again as a follower: one leader, never two.
        self.assertTrue(wait_until(lambda: "no longer leads the fleet" in paused.log()), paused.log())
        self.wait_alive(other, ["a", "b"])
        time.sleep(2 * HEARTBEAT)
        self.assertEqual(self.leaders(), [other])
        self.assertEqual(self.the_leader(["a", "b"]), other)

    def test_the_server_stopped_for_30_s(self):
        for n in ("a", "b", "c"):
            self.start_node(n)
        self.wait_alive("a", ["a", "b", "c"])
        add = self.cli("a", "task", "add", "--after", "1h", "added before the outage")
        self.assertEqual(add.returncode, 0, add.stderr)
        self.pg.stop()
        try:
            down = time.monotonic()
            for n in "abc":
                d = self.nodes[n][0]
                self.assertTrue(wait_until(lambda: "ALERT: the fleet's database cannot be reached" in d.log()),
                                d.log())
            # Each reports it where an operator looks: STATUS= and status.
            for n in "abc":
                d = self.nodes[n][0]
                self.assertTrue(wait_until(lambda: any("fleet's database cannot be reached" in s
                                                       for s in d.notify.fields("STATUS"))), d.notify.text())
                st = self.cli(n, "status", "--json")
                self.assertEqual(st.returncode, 2, st.stdout)
                kinds = [p["kind"] for p in json.loads(st.stdout)["problems"]]
                self.assertIn("fleet_database", kinds)
            r = self.cli("a", "nodes")
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot connect", r.stderr)
            # A task cannot be added meanwhile: the queue is the fleet's, and
            # the command says so rather than keep it where no node looks.
            add = self.cli("a", "task", "add", "written while the database is down")
            self.assertEqual(add.returncode, 1, add.stdout)
            self.assertIn("cannot use the fleet's database", add.stderr)
            time.sleep(max(0, 30 - (time.monotonic() - down)))
            for n in "abc":
                self.assertIsNone(self.nodes[n][0].proc.poll(), self.nodes[n][0].log())
        finally:
            self.pg.start()
        # Back within the reconnect's backoff (at most 10 s) plus a heartbeat.
        self.wait_alive("a", ["a", "b", "c"], timeout=10 + 2 * HEARTBEAT + TIMEOUT)
        for n in "abc":
            d = self.nodes[n][0]
            self.assertTrue(wait_until(lambda: "RECOVERED: the fleet's database cannot be reached" in d.log()),
                            d.log())
            # One warning for the outage, not one per retry.
            self.assertLessEqual(d.log().count("warning database: cannot connect"), 2, d.log())
        self.the_leader(["a", "b", "c"])
        # Nothing was lost: a task added before the outage is still there.
        listed = self.cli("a", "task", "list", "--json")
        self.assertIn("added before the outage", listed.stdout)

    def test_a_database_of_an_older_version_is_migrated(self):
        d = self.start_node("a")
        self.wait_alive("a", ["a"])
        d.stop()
        # Back to version 1 (before conversations had a node).
        self.sql("ALTER TABLE conversations DROP COLUMN node; UPDATE jada_schema SET version = 1")
        d = self.start_node("a")
        self.assertTrue(wait_until(lambda: self.sql("SELECT version FROM jada_schema") == [("2",)]), d.log())
        self.assertEqual(self.sql("SELECT count(*) FROM information_schema.columns "
                                  "WHERE table_name = 'conversations' AND column_name = 'node'"), [("1",)])
        self.wait_alive("a", ["a"])

    def test_a_schema_newer_than_the_binary_is_refused_loudly(self):
        self.sql("CREATE TABLE jada_schema (version integer NOT NULL); INSERT INTO jada_schema VALUES (99)")
        d = self.start_node("a")
        self.assertTrue(wait_until(lambda: "schema version 99, newer than this binary" in d.log()), d.log())
        self.assertIsNone(d.proc.poll())
        st = self.cli("a", "status", "--json")
        self.assertIn("fleet_database", [p["kind"] for p in json.loads(st.stdout)["problems"]])
        self.assertEqual(self.sql("SELECT count(*) FROM pg_tables WHERE tablename = 'nodes'"), [("0",)])


class FleetConfig(TempStateTest):
    def check(self, text):
        self.write_config(text)
        return self.run_cli("check-config", "-c", self.config)

    def test_check_config_refuses_what_cannot_work(self):
        r = self.check("[database]\nurl = postgresql://jada:hunter2@db.example/jada\n")
        self.assertEqual(r.returncode, 78)
        self.assertIn(":4: [database] url holds a password", r.stderr)
        self.assertNotIn("hunter2", r.stderr + r.stdout)
        r = self.check("[database]\nurl = postgresql://jada@db.example/jada?password=hunter2\n")
        self.assertEqual(r.returncode, 78)
        self.assertNotIn("hunter2", r.stderr + r.stdout)
        r = self.check("[database]\nurl = mysql://db.example/jada\n")
        self.assertEqual(r.returncode, 78)
        self.assertIn("must start with postgresql://", r.stderr)
        r = self.check("[database]\nurl = postgresql://db.example/jada?frobnicate=1\n")
        self.assertEqual(r.returncode, 78)
        self.assertIn("frobnicate", r.stderr)
        r = self.check("[database]\nnode_name = " + "n" * 48 + "\n")
        self.assertEqual(r.returncode, 78)
        self.assertIn("node_name", r.stderr)
        r = self.check("[database]\nlease = 1s\n")
        self.assertEqual(r.returncode, 78)
        r = self.check("[database]\nurl = postgresql://jada@db.example:5432/jada?sslmode=verify-full\n"
                       "node_name = worker-1.eu\nlease = 90s\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_check_config_asks_a_fleet_for_a_push_remote(self):
        url = "[database]\nurl = postgresql://jada@db.example/jada\n"
        site = make_repo(os.path.join(self.tmp, "site"))
        r = self.check(url + f"[project site]\npath = {site}\n")
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn(":5: [project site] a fleet ([database] url) needs push = REMOTE", r.stderr)
        r = self.check(url + f"[project site]\npath = {site}\nisolation = none\n")
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("needs isolation = worktree and a push remote", r.stderr)
        r = self.check(url + f"[project site]\npath = {site}\npush = origin\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Without a fleet a project needs no remote.
        r = self.check(f"[project site]\npath = {site}\n")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_nodes_without_a_fleet_or_a_server(self):
        self.write_config("")
        r = self.run_cli("nodes", "-c", self.config)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not in a fleet", r.stderr)
        self.write_config(f"[database]\nurl = postgresql://jada@/jada?host={self.tmp}&port=1\n")
        r = self.run_cli("nodes", "-c", self.config)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)
        r = self.run_cli("nodes", "-c", self.config, "extra")
        self.assertEqual(r.returncode, 2)


FAKE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fake", "fake-claude")
SAMPLES = os.path.join(os.path.dirname(FAKE), "scenarios", "samples", "v2.1.332_")


class FleetQueue(FleetBase):
    """The shared queue: tasks added on any node run on some node, each once,
    and the day's budget holds across the fleet."""

    def setUp(self):
        super().setUp()
        self.scenarios = os.path.join(self.tmp, "scenarios")
        os.makedirs(self.scenarios)
        with open(os.path.join(self.scenarios, "default.json"), "w") as f:
            json.dump({"stream": SAMPLES + "success.stream.jsonl"}, f)
        self.env = {"FAKE_CLAUDE_SCENARIOS": self.scenarios, "ANTHROPIC_API_KEY": "sk-ant-test-0000-not-a-real-key"}

    def start_fleet(self, claude):
        # poll_interval 1h: only the NOTIFY of an added task wakes a node.
        for n in "abc":
            self.start_node(n, f"[claude]\ncommand = {FAKE}\n{claude}", env=self.env)
        self.wait_alive("a", ["a", "b", "c"])

    def add_tasks(self, n):
        for i in range(n):
            r = self.cli("abc"[i % 3], "task", "add", f"task {i}")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(int(r.stdout), i + 1)

    def counts(self):
        return dict(self.sql("SELECT state, count(*) FROM tasks GROUP BY state"))

    def test_a_task_added_where_no_daemon_runs_is_taken_by_a_node(self):
        self.start_node("a", f"[claude]\ncommand = {FAKE}\n", env=self.env)
        self.wait_alive("a", ["a"])
        _, path = self.node_config("laptop")
        r = self.run_cli("-c", path, "task", "add", "from the laptop")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Not "the daemon is not running": the fleet's nodes heard it.
        self.assertEqual(r.stderr, "")
        self.assertTrue(wait_until(lambda: self.counts() == {"done": "1"}), self.counts())
        self.assertEqual(self.sql("SELECT node FROM sessions"), [("a",)])

    def test_300_tasks_from_three_nodes_each_run_exactly_once(self):
        self.start_fleet("concurrency = 2\nsessions_per_day = 1000\n")
        self.add_tasks(300)
        done = wait_until(lambda: self.counts().get("done") == "300", timeout=300, step=0.5)
        self.assertTrue(done, self.counts())
        # Exactly once: one session per task, one "claimed" event per task.
        self.assertEqual(self.sql("SELECT count(*), count(DISTINCT task_id) FROM sessions"), [("300", "300")])
        self.assertEqual(self.sql("SELECT count(*) FROM task_events WHERE reason = 'claimed'"), [("300",)])
        # Shared out: every node ran some (added round-robin, woken by NOTIFY).
        per_node = dict(self.sql("SELECT node, count(*) FROM sessions GROUP BY node"))
        self.assertEqual(sorted(per_node), ["a", "b", "c"], per_node)
        # And each session row is its task's claim: the node that claimed it.
        self.assertEqual(self.sql("SELECT count(*) FROM sessions s JOIN tasks t ON t.id = s.task_id "
                                  "WHERE s.node <> t.claimed_by OR s.claim_generation <> t.claim_generation"),
                         [("0",)])

    def test_sessions_per_day_holds_across_the_fleet(self):
        # The budget is per UTC day: a run across midnight would get two.
        # Within 4 minutes of it, wait for the new day (bounded).
        left = 86400 - time.time() % 86400
        if left < 240:
            time.sleep(left + 1)
        self.start_fleet("concurrency = 3\nsessions_per_day = 50\n")
        self.add_tasks(80)
        self.assertTrue(wait_until(lambda: self.counts().get("done") == "50", timeout=240, step=0.5), self.counts())
        # Racing nodes start no 51st: give them every chance (wake them all).
        for n in "abc":
            self.cli(n, "task", "add", "--after", "1h", f"a wake-up for {n}")
        time.sleep(3)
        self.assertEqual(self.counts().get("done"), "50", self.counts())
        self.assertEqual(self.sql("SELECT count(*) FROM sessions"), [("50",)])
        self.assertEqual(self.counts().get("queued"), "33", self.counts())
        for n in "abc":
            st = json.loads(self.cli(n, "status", "--json").stdout)
            self.assertEqual(st["budget"]["sessions_today"], 50, st["budget"])


class FleetRescueBase(FleetBase):

    POLL = 5                    # seconds: the rescue must come within lease + poll

    def setUp(self):
        super().setUp()
        self.scenarios = os.path.join(self.tmp, "scenarios")
        os.makedirs(self.scenarios)
        self.fake_log = os.path.join(self.tmp, "claude.log")
        with open(os.path.join(self.scenarios, "default.json"), "w") as f:
            json.dump({"stream": SAMPLES + "success.stream.jsonl"}, f)
        self.env = {"FAKE_CLAUDE_SCENARIOS": self.scenarios, "FAKE_CLAUDE_LOG": self.fake_log,
                    "ANTHROPIC_API_KEY": "sk-ant-test-0000-not-a-real-key"}

    def scenario(self, n, **kw):
        with open(os.path.join(self.scenarios, f"{n:03d}-s.json"), "w") as f:
            json.dump(kw, f)

    def start(self, name, conversations=False, extra=""):
        env = dict(self.env, **({"FAKE_CLAUDE_CONVERSATIONS": "1"} if conversations else {}))
        return self.start_node(name, f"[daemon]\npoll_interval = {self.POLL}s\n"
                                     f"[claude]\ncommand = {FAKE}\nmax_turns = 3\n" + extra, env=env)

    def lose(self, daemon, record):
        """The machine is lost: the daemon and its claude, at once."""
        os.killpg(record["pgid"], signal.SIGKILL)
        daemon.proc.kill()
        daemon.proc.wait(TIMEOUT)

    def invocations(self):
        return read_fake_claude_log(self.fake_log)

    def sessions(self):
        return self.sql("SELECT id, node, outcome, claude_session_id FROM sessions ORDER BY id")


class FleetRescue(FleetRescueBase):
    """A node lost mid-session: another node rescues its task after the lease
    (its session recorded as node_lost) and resumes it with the conversation
    stored in the database; a node that was only paused records nothing over
    the rescuer's work."""

    def test_kill9_mid_session_rescued_and_resumed_with_its_conversation(self):
        self.scenario(1, stream=SAMPLES + "max_turns.stream.jsonl")
        self.scenario(2, stream=SAMPLES + "success.stream.jsonl", hang_after=1)
        a = self.start("a", conversations=True)
        self.wait_alive("a", ["a"])
        r = self.cli("a", "task", "add", "a task that outlives its node")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Session 1 hits the turn limit; session 2 resumes it on a and hangs.
        self.assertTrue(wait_until(lambda: len(self.invocations()) == 2), self.invocations())
        first, second = self.invocations()
        self.assertTrue(second["resumed"])
        self.assertEqual(second["session_id"], first["session_id"])
        self.assertEqual(len(second["conversation"]), 1)
        # Session 1's conversation is in the database, from node a.
        stored = self.sql("SELECT claude_session_id, node, bytes > 0 FROM conversations")
        self.assertEqual(stored, [(first["session_id"], "a", "t")])

        self.lose(a, second)
        killed = time.monotonic()
        b = self.start("b", conversations=True)

        # b takes the task over: within the lease (and b's own first lease,
        # before which it judges nobody) plus a poll.
        third = wait_until(lambda: len(self.invocations()) >= 3 and self.invocations()[2],
                           timeout=2 * LEASE + self.POLL + TIMEOUT)
        self.assertTrue(third, b.log())
        rescued_after = time.monotonic() - killed
        self.assertIn("task 1 rescued from node a", b.log())
        self.assertIn("its conversation from node a is restored for the resume", b.log())
        # It resumes the same conversation, with what session 1 left in it
        # (session 2's part died with a's disk), in b's own work dir.
        self.assertTrue(third["resumed"])
        self.assertEqual(third["session_id"], first["session_id"])
        self.assertEqual([line["prompt"] for line in third["conversation"]], ["a task that outlives its node"])
        self.assertTrue(third["cwd"].startswith(os.path.join(self.tmp, "b")), third["cwd"])

        self.assertTrue(wait_until(lambda: self.sql("SELECT state FROM tasks") == [("done",)]),
                        self.sql("SELECT state FROM tasks"))
        rows = self.sessions()
        self.assertEqual([(n, o) for _, n, o, _ in rows], [("a", "max_turns"), ("a", "node_lost"), ("b", "done")])
        events = [e for (e,) in self.sql("SELECT reason FROM task_events ORDER BY id")]
        self.assertEqual(sum(e.startswith("rescued: node a missed its heartbeat") for e in events), 1, events)
        # The conversation stored now is b's, with all three runs' lines.
        self.assertEqual(self.sql("SELECT node FROM conversations"), [("b",)])
        print(f"\n  rescued and resumed {rescued_after:.1f} s after the kill (lease {LEASE} s, "
              f"poll {self.POLL} s, b started then)", end=" ")

    def test_sigstop_past_the_lease_is_fenced_and_nothing_is_recorded_twice(self):
        # Session 1 on a takes about 16 s (9 lines, 2 s apart).
        self.scenario(1, stream=SAMPLES + "success.stream.jsonl", line_delay=2)
        a = self.start("a")
        self.wait_alive("a", ["a"])
        r = self.cli("a", "task", "add", "a task whose node pauses")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: len(self.invocations()) == 1), self.invocations())
        a.signal(signal.SIGSTOP)
        try:
            b = self.start("b")
            # b rescues it and runs it to the end.
            self.assertTrue(wait_until(lambda: self.sql("SELECT state FROM tasks") == [("done",)],
                                       timeout=2 * LEASE + self.POLL + TIMEOUT), b.log())
            self.assertIn("task 1 rescued from node a", b.log())
            # a's claude has ended meanwhile (it was not paused).
            self.assertTrue(wait_until(lambda: not os.path.exists(f"/proc/{self.invocations()[0]['pid']}/cmdline")
                                       or open(f"/proc/{self.invocations()[0]['pid']}/stat").read().split()[2] == "Z",
                                       timeout=30))
        finally:
            a.signal(signal.SIGCONT)
        # a wakes, finds its connections ended, reconnects, and its outcome
        # is refused: it says so, and writes nothing.
        self.assertTrue(wait_until(lambda: "this outcome is not recorded" in a.log(), timeout=LEASE + TIMEOUT),
                        a.log())
        time.sleep(2 * HEARTBEAT)
        rows = self.sessions()
        self.assertEqual([(n, o) for _, n, o, _ in rows], [("a", "node_lost"), ("b", "done")], rows)
        self.assertEqual(self.sql("SELECT state, claimed_by FROM tasks"), [("done", "b")])
        moves = self.sql("SELECT old_state, new_state FROM task_events ORDER BY id")
        self.assertEqual(moves, [("", "queued"), ("queued", "running"), ("running", "queued"),
                                 ("queued", "running"), ("running", "done")], moves)
        self.assertEqual(len(self.invocations()), 2)
        # Both nodes are alive again, and a runs on.
        self.wait_alive("b", ["a", "b"])
        self.assertIsNone(a.proc.poll())

    def test_a_claim_whose_commit_fails_leaves_no_session_running(self):
        # A session left to run would take some 40 s.
        with open(os.path.join(self.scenarios, "default.json"), "w") as f:
            json.dump({"stream": SAMPLES + "success.stream.jsonl", "line_delay": 5}, f)
        a = self.start("a")
        self.wait_alive("a", ["a"])
        # A real fault: a deferred trigger on the session's row ends the
        # first claim's connection in its COMMIT, so that the claim fails
        # and the daemon cannot even read the task back (a sequence counts:
        # it is not rolled back with the transaction).
        self.sql("CREATE SEQUENCE commits_seen; "
                 "CREATE FUNCTION fail_first() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF nextval('commits_seen') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
                 "PERFORM pg_sleep(5); END IF; "
                 "RETURN NULL; END $$; "
                 "CREATE CONSTRAINT TRIGGER fail_first AFTER INSERT ON sessions DEFERRABLE INITIALLY DEFERRED "
                 "FOR EACH ROW EXECUTE FUNCTION fail_first()")
        r = self.cli("a", "task", "add", "claimed twice, run once")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_until(lambda: "its claim was not committed" in a.log()), a.log())
        # Killed by now, it cannot take this quick one; the next session does.
        self.scenario(1, stream=SAMPLES + "success.stream.jsonl")
        # Killed (often before the fake could log its start), not left
        # running on a task the database calls queued.
        pid = int(re.search(r"task 1: session started \(new conversation \S+, pid (\d+)", a.log()).group(1))
        self.assertTrue(wait_until(lambda: not os.path.exists(f"/proc/{pid}")), a.log())
        # The next claim commits, and the task runs once, to the end.
        self.assertTrue(wait_until(lambda: self.sql("SELECT state FROM tasks") == [("done",)],
                                   timeout=self.POLL + TIMEOUT), a.log())
        self.assertEqual([(n, o) for _, n, o, _ in self.sessions()], [("a", "done")])
        self.assertEqual(self.sql("SELECT count(*) FROM task_events WHERE reason = 'claimed'"), [("1",)])
        self.assertEqual(a.log().count("task 1: session started"), 2, a.log())
        # The killed session's transcript went with its rolled-back row.
        ids = [i for i, _, _, _ in self.sessions()]
        self.assertEqual(sorted(os.listdir(os.path.join(self.tmp, "a", "state", "transcripts"))),
                         [f"{i}.jsonl.zst" for i in ids])


class FleetProject(FleetRescueBase):
    """A project's task moves between nodes with its branch: each node has
    its own clone, and the push remote carries the branch."""

    def test_the_next_node_fetches_the_branch_and_goes_on_from_it(self):
        bare = os.path.join(self.tmp, "remote.git")
        origin = make_repo(os.path.join(self.tmp, "origin"))
        git(self.tmp, "clone", "-q", "--bare", origin, bare)
        for n in "ab":
            git(self.tmp, "clone", "-q", bare, os.path.join(self.tmp, f"{n}-site"))
        self.scenario(1, stream=SAMPLES + "max_turns.stream.jsonl", write_files={"from-a.txt": "a's work\n"})
        self.scenario(2, stream=SAMPLES + "success.stream.jsonl", hang_after=1)
        self.scenario(3, stream=SAMPLES + "success.stream.jsonl", read_files=["from-a.txt"],
                      write_files={"from-b.txt": "b's work\n"})
        project = lambda n: (f"[project site]\npath = {self.tmp}/{n}-site\npush = origin\n"
                             f"on_done = echo $JADA_TASK_ID >> {self.tmp}/on-done-{n}\n")
        a = self.start("a", conversations=True, extra=project("a"))
        self.wait_alive("a", ["a"])
        r = self.cli("a", "task", "add", "--project", "site", "work on the site")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Session 1 on a leaves a file, committed and pushed; session 2 hangs.
        self.assertTrue(wait_until(lambda: len(self.invocations()) == 2),
                        (a.log(), self.sql("SELECT * FROM task_events"), self.sql("SELECT * FROM tasks")))
        self.assertIn("pushed jada/task-1 to origin", a.log())
        self.assertEqual(git(bare, "show", "jada/task-1:from-a.txt"), "a's work\n")
        self.lose(a, self.invocations()[1])
        b = self.start("b", conversations=True, extra=project("b"))
        # b fetches the branch into its own clone, and resumes in a worktree of it.
        third = wait_until(lambda: len(self.invocations()) >= 3 and self.invocations()[2],
                           timeout=2 * LEASE + self.POLL + TIMEOUT)
        self.assertTrue(third, b.log())
        self.assertIn("branch jada/task-1 fetched from origin", b.log())
        self.assertTrue(third["resumed"])
        self.assertEqual(third["read"], {"from-a.txt": "a's work\n"})
        self.assertTrue(third["cwd"].startswith(os.path.join(self.tmp, "b")), third["cwd"])
        self.assertTrue(wait_until(lambda: self.sql("SELECT state FROM tasks") == [("done",)]),
                        self.sql("SELECT state FROM tasks"))
        # And b pushed its own work on top of a's.
        self.assertTrue(wait_until(lambda: git(bare, "show", "jada/task-1:from-b.txt", check=False) == "b's work\n"),
                        b.log())
        self.assertEqual(git(bare, "show", "jada/task-1:from-a.txt"), "a's work\n")
        # on_done runs once, on the node that finished the task; a, back,
        # leaves its own old worktree of it alone.
        self.assertTrue(wait_until(lambda: os.path.exists(f"{self.tmp}/on-done-b")), b.log())
        a = self.start("a", conversations=True, extra=project("a"))
        self.wait_alive("b", ["a", "b"])
        time.sleep(2 * self.POLL)
        self.assertFalse(os.path.exists(f"{self.tmp}/on-done-a"), a.log())
        with open(f"{self.tmp}/on-done-b") as f:
            self.assertEqual(f.read(), "1\n")
