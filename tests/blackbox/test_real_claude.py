# SPDX-License-Identifier: MIT
"""End to end: the daemon runs the real Claude Code CLI (npm, pinned by
tools/install-claude-cli) against a fake Messages API (tests/e2e/) on
127.0.0.1, all inside a private network namespace with only loopback up.

Set JADA_CLAUDE_CLI to the claude executable (the last line that
tools/install-claude-cli prints). Needs root (a new network namespace) and
`ip` (iproute2). Without them the tests fail: a skipped test would hide that
the real client was never tried."""

import contextlib
import ctypes
import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time

from harness import BIN, REPO, TempStateTest, needs_root

FAKE_API = os.path.join(REPO, "tests", "e2e", "fake_messages_api.py")
API_KEY = "sk-ant-e2e-0000-not-a-real-key"
# The real CLI takes a second or two to start, more on a loaded machine.
WAIT = float(os.environ.get("JADA_E2E_TIMEOUT", "120"))
CONTINUE_MARKER = "Continue the task where you left off"
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def private_network():
    """Within the block, processes started by this thread are created in a
    new network namespace where only `lo` is up; afterwards the thread is back
    in its own namespace, and the new one lives on as long as they do."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise AssertionError(f"unshare(CLONE_NEWNET): {os.strerror(e)}: "
                                 "the end-to-end test needs root (CAP_SYS_ADMIN)")
        try:
            r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True, timeout=10)
            if r.returncode != 0:
                raise AssertionError(f"ip link set lo up: {r.stderr.strip()}")
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                # Do not let the rest of the suite run in the wrong namespace.
                e = ctypes.get_errno()
                print(f"setns back to the original network namespace: {os.strerror(e)}", file=sys.stderr)
                os._exit(3)
    finally:
        os.close(home)


@needs_root
class RealClaudeTest(TempStateTest):
    def setUp(self):
        super().setUp()
        self.cli = os.environ.get("JADA_CLAUDE_CLI", "")
        if not self.cli:
            self.fail("JADA_CLAUDE_CLI is not set: run `tools/install-claude-cli` (it needs node and npm) "
                      "and set JADA_CLAUDE_CLI to the path it prints on its last line")
        self.cli = os.path.abspath(self.cli)
        if not os.access(self.cli, os.X_OK):
            self.fail(f"JADA_CLAUDE_CLI={self.cli} is not an executable file: run tools/install-claude-cli")
        if not shutil.which("ip"):
            self.fail("`ip` (Debian package iproute2) is needed to bring up loopback in the test's network namespace")
        self.api_log = os.path.join(self.tmp, "fake-api.jsonl")
        self.api_stderr = os.path.join(self.tmp, "fake-api.stderr")
        self.fake = None

    # ---- setting up the world ------------------------------------------------

    def launch(self, rules, claude_config="", credential=None, env=None):
        """Writes the config and the fake API's script, then starts the fake
        API and the daemon together in a new network namespace."""
        script = os.path.join(self.tmp, "fake-api-script.json")
        with open(script, "w") as f:
            json.dump({"rules": rules}, f, indent=1)
        self.write_config(f"poll_interval = 1h\n[claude]\ncommand = {self.cli}\n{claude_config}")
        with private_network():
            self.version = self.cli_version()
            with open(self.api_stderr, "wb") as err:
                self.fake = subprocess.Popen([sys.executable, FAKE_API, script, "--log", self.api_log],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
            self.addCleanup(self.stop_fake)
            port = self.read_port()
            d = self.start(extra_env={
                "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
                **(credential or {"ANTHROPIC_API_KEY": API_KEY}),
                # A proxy from the environment must not swallow loopback.
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                **(env or {}),
            })
        d.notify.wait_field("READY=1")
        self.check_isolated(d.proc.pid)
        return d

    def cli_version(self):
        r = subprocess.run([self.cli, "--version"], capture_output=True, text=True, timeout=WAIT,
                           env=dict(os.environ, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
                                    HOME=self.tmp, CLAUDE_CONFIG_DIR=os.path.join(self.tmp, "cli-version")))
        self.assertEqual(r.returncode, 0, f"{self.cli} --version: {r.stderr}")
        return r.stdout.strip()

    def read_port(self):
        deadline = time.monotonic() + 30
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fake.stdout], [], [], max(left, 0))
            if not ready:
                self.fail(f"the fake Messages API printed no port in 30s: {self.fake_stderr()}")
            chunk = os.read(self.fake.stdout.fileno(), 64)
            if not chunk:
                self.fail(f"the fake Messages API exited: {self.fake_stderr()}")
            line += chunk
        return int(line)

    def stop_fake(self):
        if self.fake and self.fake.poll() is None:
            self.fake.terminate()
            try:
                self.fake.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.fake.kill()
                self.fake.wait()
        if self.fake:
            self.fake.stdout.close()

    def check_isolated(self, pid):
        """The daemon (so its claude) and the fake share a namespace that is
        not ours and holds loopback alone."""
        ns = os.readlink(f"/proc/{pid}/ns/net")
        self.assertNotEqual(ns, os.readlink("/proc/self/ns/net"))
        self.assertEqual(ns, os.readlink(f"/proc/{self.fake.pid}/ns/net"))
        with open(f"/proc/{pid}/net/dev") as f:
            interfaces = [l.split(":")[0].strip() for l in f.readlines()[2:]]
        self.assertEqual(interfaces, ["lo"])

    # ---- looking at it ---------------------------------------------------------

    def fake_stderr(self):
        try:
            with open(self.api_stderr, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def requests(self):
        if not os.path.exists(self.api_log):
            return []
        with open(self.api_log) as f:
            return [json.loads(l) for l in f if l.strip()]

    def conversation(self):
        """The CLI's requests for the agent's own turns (those offering tools)."""
        return [r for r in self.requests() if r.get("path", "").startswith("/v1/messages") and r.get("main")]

    def diagnostics(self):
        log = self.daemons[0].log() if self.daemons else ""
        reqs = "\n".join(json.dumps({k: v for k, v in r.items() if k not in ("headers", "metadata", "system_tail")})
                         for r in self.requests())
        return f"\n--- CLI {getattr(self, 'version', '?')}\n--- daemon log:\n{log}\n--- fake API requests:\n{reqs}\n"

    def web_get(self, sock, path):
        """A page of the dashboard on its unix socket ([web] listen = SOCK):
        a path reaches into the daemon's network namespace, a port would not."""
        conn = http.client.HTTPConnection("localhost", timeout=WAIT)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.settimeout(WAIT)
        conn.sock.connect(sock)
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode("utf-8")
        conn.close()
        self.assertEqual(r.status, 200, path)
        return body

    def add(self, prompt):
        r = self.run_cli("-c", self.config, "task", "add", prompt)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout)

    def show(self, task_id):
        r = self.run_cli("-c", self.config, "task", "show", str(task_id), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def drain_notify(self):
        """Takes in what the daemon told "systemd". The stand-in socket queues
        only net.unix.max_dgram_qlen (10) datagrams; past that the daemon's
        sd_notify() blocks, and with it the daemon."""
        for d in self.daemons:
            d.notify.drain()

    def tearDown(self):
        self.drain_notify()
        super().tearDown()

    def wait_state(self, task_id, state, timeout=WAIT, passing=("queued", "running")):
        deadline = time.monotonic() + timeout
        while True:
            self.drain_notify()
            t = self.show(task_id)
            if t["state"] == state:
                return t
            if t["state"] not in passing or time.monotonic() > deadline:
                self.fail(f"task {task_id} is {t['state']}, not {state}: {json.dumps(t, indent=1)}"
                          + self.diagnostics())
            time.sleep(0.2)

    def sessions_json(self):
        r = self.run_cli("-c", self.config, "sessions", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["sessions"]

    def session_rows(self):
        return self.db_rows("SELECT * FROM sessions ORDER BY id")

    def transcript(self, claude_id):
        """The CLI's own record of the conversation under CLAUDE_CONFIG_DIR."""
        projects = os.path.join(self.state, "home", ".claude", "projects")
        for root, _, files in os.walk(projects):
            if f"{claude_id}.jsonl" in files:
                return os.path.join(root, f"{claude_id}.jsonl")
        return None

    def check_requests_came_from_the_daemon(self, claude_ids):
        reqs = self.conversation()
        self.assertTrue(reqs, self.diagnostics())
        for r in reqs:
            h = r.get("headers", {})
            self.assertEqual(h.get("x-api-key"), API_KEY, "the API key reached the CLI")
            # The conversation the CLI ran is the one the daemon named.
            sid = h.get("x-claude-code-session-id")
            if sid is None:
                sid = json.loads((r.get("metadata") or {}).get("user_id") or "{}").get("session_id")
            self.assertIn(sid, claude_ids)
            self.assertTrue(r["stream"])
        # The daemon's own system prompt reached the model.
        for r in reqs:
            self.assertIn("NEEDS-YOU: <what you need>", r.get("system_tail", ""))
        # Nothing but the Messages API (and the CLI's HEAD / preconnect) was asked for.
        for r in self.requests():
            self.assertIn(r["path"].split("?")[0], ("/v1/messages", "/v1/messages/count_tokens", "/"), r)


class RealClaude(RealClaudeTest):
    def test_task_runs_to_done(self):
        work = os.path.join(self.state, "work", "task-1")
        sock = os.path.join(self.tmp, "web.sock")
        self.launch(claude_config=f"allowed_tools = Bash(python3:*)\n[web]\nlisten = {sock}\n", rules=[
            # Side requests (no tools offered) get plain text, never a tool call.
            {"main": False, "text": "Side answer."},
            {"min_tool_results": 2, "text": "All done. hello.py printed: {last_result}"},
            # Bash with python3 needs approval under acceptEdits: allowed_tools must have reached it.
            {"min_tool_results": 1, "tool_use": {"name": "Bash", "input": {
                "command": "python3 hello.py", "description": "Run the script"}}},
            {"text": "Writing the script.", "tool_use": {"name": "Write", "input": {
                "file_path": os.path.join(work, "hello.py"),
                "content": "print('hello from ' + 'the fake model'.upper())\n"}}},
        ])
        i = self.add("Write hello.py, run it, and tell me what it printed.")
        self.assertEqual(i, 1)
        t = self.wait_state(i, "done")
        self.assertEqual(t["result"], "All done. hello.py printed: hello from THE FAKE MODEL", self.diagnostics())
        self.assertEqual(t["sessions_used"], 1)
        self.assertGreater(t["turns_used"], 0)
        self.assertGreater(t["cost_usd"], 0)
        with open(os.path.join(work, "hello.py")) as f:
            self.assertIn("the fake model", f.read())

        (s,) = self.sessions_json()
        self.assertEqual(s["outcome"], "done", self.diagnostics())
        self.assertEqual(s["exit_status"], 0)
        self.assertGreater(s["turns"], 0)
        self.assertFalse(s["resumed"])
        self.assertIsNone(s["error"])
        self.assertEqual(s["claude_session_id"], t["claude_session_id"])
        self.assertGreater(s["tokens"]["input"], 0)
        (row,) = self.session_rows()
        self.assertAlmostEqual(row["cost_usd"], row["reported_cost_usd"], places=6)

        reqs = self.conversation()
        self.assertEqual([r["tool_results"] for r in reqs], [0, 1, 2], self.diagnostics())
        self.assertEqual(reqs[0]["last_user_text"].strip(), "Write hello.py, run it, and tell me what it printed.")
        self.check_requests_came_from_the_daemon({t["claude_session_id"]})
        self.assertIsNotNone(self.transcript(t["claude_session_id"]))
        # The daemon's own transcript of the real CLI's stream, rendered.
        r = self.run_cli("-c", self.config, "transcript", "--task", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"  → Write: {os.path.join(work, 'hello.py')}", r.stdout)
        self.assertIn("  → Bash: python3 hello.py", r.stdout)
        self.assertIn("  ← hello from THE FAKE MODEL", r.stdout)
        self.assertRegex(r.stdout, r"== result: success, \d+ turns, \$0\.\d{4}")
        # The same on the dashboard's task page, escaped: the tool calls and the turns.
        page = self.web_get(sock, f"/tasks/{i}")
        self.assertIn("<summary>Session 1</summary>", page)
        self.assertIn("[turn 1]", page)
        calls = [l for l in r.stdout.splitlines() if l.startswith("  → ")]
        self.assertEqual([c.split(":")[0] for c in calls], ["  → Write", "  → Bash"], r.stdout)
        for line in calls + ["  ← hello from THE FAKE MODEL"]:
            escaped = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
                          .replace('"', "&quot;").replace("'", "&#39;")
            self.assertIn(escaped, page)

    def test_a_write_of_the_real_cli_lands_on_the_task_branch(self):
        repo = os.path.join(self.tmp, "site")
        env = dict(os.environ, GIT_AUTHOR_NAME="P", GIT_AUTHOR_EMAIL="p@example.org", GIT_COMMITTER_NAME="P",
                   GIT_COMMITTER_EMAIL="p@example.org", HOME=self.tmp)
        os.makedirs(repo)
        for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "first"]):
            subprocess.run(["git", "-C", repo, *args], check=True, env=env, capture_output=True)
        work = os.path.join(self.state, "work", "task-1")
        self.launch(claude_config=f"[project site]\npath = {repo}\n", rules=[
            {"main": False, "text": "Side answer."},
            {"min_tool_results": 1, "text": "Wrote notes.md."},
            {"text": "Writing.", "tool_use": {"name": "Write", "input": {
                "file_path": os.path.join(work, "notes.md"), "content": "# Release notes\n"}}},
        ])
        r = self.run_cli("-c", self.config, "task", "add", "--project", "site", "Write notes.md.")
        self.assertEqual(r.returncode, 0, r.stderr)
        i = int(r.stdout)
        self.wait_state(i, "done")
        deadline = time.monotonic() + WAIT
        while self.show(i)["worktree"] is not None:
            self.assertLess(time.monotonic(), deadline, self.diagnostics())
            time.sleep(0.2)
        shown = subprocess.run(["git", "-C", repo, "show", f"jada/task-{i}:notes.md"], capture_output=True, text=True)
        self.assertEqual(shown.stdout, "# Release notes\n", shown.stderr + self.diagnostics())
        subject = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%s", f"jada/task-{i}"],
                                 capture_output=True, text=True).stdout.strip()
        self.assertEqual(subject, f"jada-agent: task {i}, session 1 (done)")
        # The agent was told its branch.
        self.assertIn(f"branch jada/task-{i}", json.dumps(self.conversation()[0].get("system_tail", "")),
                      self.diagnostics())

    def test_a_usage_limit_of_the_real_cli_parks_the_daemon(self):
        # A subscription login (an OAuth token): only then does the CLI
        # report the limit the API's anthropic-ratelimit-unified-* headers give.
        reset = int(time.time()) + 3600
        headers = {"anthropic-ratelimit-unified-status": "rejected",
                   "anthropic-ratelimit-unified-reset": str(reset),
                   "anthropic-ratelimit-unified-5h-status": "rejected",
                   "anthropic-ratelimit-unified-5h-reset": str(reset),
                   "anthropic-ratelimit-unified-representative-claim": "five_hour",
                   "retry-after": "3600"}
        self.launch(credential={"CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat01-e2e-not-a-real-token",
                                "ANTHROPIC_API_KEY": ""}, rules=[
            {"main": False, "text": "Side answer."},
            {"refuse": {"status": 429, "type": "rate_limit_error", "message": "usage limit", "headers": headers}},
        ])
        ids = [self.add(f"Task {n}.") for n in range(3)]
        deadline = time.monotonic() + WAIT
        while True:
            self.drain_notify()
            r = self.run_cli("-c", self.config, "status", "--json")
            st = json.loads(r.stdout)
            if st["usage_limit"]["parked"]:
                break
            self.assertLess(time.monotonic(), deadline, self.diagnostics())
            time.sleep(0.2)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(st["usage_limit"]["parked_until"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset + 60)), self.diagnostics())
        self.assertEqual(st["usage_limit"]["parked_by"], "five_hour")
        time.sleep(2)
        rows = self.session_rows()
        self.assertEqual(len(rows), 1, self.diagnostics())
        self.assertEqual(rows[0]["outcome"], "usage_limit")
        self.assertIsNotNone(rows[0]["uncounted"])
        self.assertEqual(len([r for r in self.requests() if r.get("main")]), 1)
        self.assertEqual([self.show(i)["state"] for i in ids], ["queued"] * 3)

    def test_max_turns_then_resume_completes(self):
        work = os.path.join(self.state, "work", "task-1")
        self.launch(claude_config="max_turns = 2\n", rules=[
            {"main": False, "text": "Side answer."},
            # The resumed session: the daemon's continue prompt is in the conversation.
            {"contains": CONTINUE_MARKER, "text": "Finished the rest after resuming."},
            # Until then, one more step every turn: the limit is hit.
            {"text": "Step {n}.", "tool_use": {"name": "Write", "input": {
                "file_path": os.path.join(work, "step-{n}.txt"), "content": "step {n}\n"}}},
        ])
        i = self.add("Do this long task in many steps.")
        self.assertEqual(i, 1)
        t = self.wait_state(i, "done")
        self.assertEqual(t["result"], "Finished the rest after resuming.", self.diagnostics())
        self.assertEqual(t["sessions_used"], 2)
        self.assertTrue(os.path.exists(os.path.join(work, "step-0.txt")))
        self.assertTrue(os.path.exists(os.path.join(work, "step-1.txt")))
        self.assertFalse(os.path.exists(os.path.join(work, "step-2.txt")))

        first, second = self.sessions_json()
        self.assertEqual([first["outcome"], second["outcome"]], ["max_turns", "done"], self.diagnostics())
        self.assertEqual([first["resumed"], second["resumed"]], [False, True])
        self.assertEqual(first["claude_session_id"], second["claude_session_id"])
        self.assertEqual(second["claude_session_id"], t["claude_session_id"])
        self.assertEqual(first["exit_status"], 1)
        self.assertEqual(second["exit_status"], 0)
        self.assertGreater(first["turns"], 0)
        self.assertGreater(second["turns"], 0)
        self.assertEqual(t["turns_used"], first["turns"] + second["turns"])
        self.assertIn("turn limit", first["error"])
        self.assertIsNone(second["error"])
        self.assertAlmostEqual(t["cost_usd"], first["cost_usd"] + second["cost_usd"], places=6)
        self.assertGreater(second["cost_usd"], 0)
        self.assertEqual([e["new_state"] for e in t["events"]][-4:], ["running", "queued", "running", "done"],
                         t["events"])

        # --max-turns 2 allowed exactly two requests; the resumed session
        # sent the whole conversation back, with the continue prompt last.
        reqs = self.conversation()
        self.assertEqual(len(reqs), 3, self.diagnostics())
        self.assertEqual([r["rule"] for r in reqs], [2, 2, 1])
        self.assertEqual(reqs[2]["tool_results"], 2)
        self.assertTrue(reqs[2]["last_user_text"].startswith(CONTINUE_MARKER), reqs[2]["last_user_text"])
        self.check_requests_came_from_the_daemon({t["claude_session_id"]})
        self.assertIn(f"resuming {t['claude_session_id']}", self.daemons[0].log())


    def test_a_bash_call_splits_the_task_and_the_parent_resumes_with_the_results(self):
        # The agent splits its task the way the system prompt tells it (the
        # task's id written out), with no -c and no path: `jada-agent` from
        # the session's PATH (the daemon's own directory comes first), the db
        # from its environment (JADA_AGENT_CONFIG, STATE_DIRECTORY), and no
        # allowed_tools: the daemon allows Bash(jada-agent task add:*) itself.
        split = " && ".join(f"printf 'Do part {x}.' | jada-agent task add --parent 1 --title {x} -"
                            for x in ("A", "B"))
        report = "Your sub-tasks have all ended"
        self.launch(
            rules=[
                {"main": False, "text": "Side answer."},
                # The parent's resumed session: the daemon's report of its children.
                {"contains": report, "text": "Both parts are in; the big job is done."},
                # The children's sessions: their prompts came through the CLI's stdin.
                {"contains": "Do part A.", "text": "Result of part A."},
                {"contains": "Do part B.", "text": "Result of part B."},
                # The parent: after the Bash call, it ends its session.
                {"contains": "A big job", "min_tool_results": 1, "text": "Split; the CLI said: {last_result}"},
                {"contains": "A big job", "text": "Splitting into two parts.", "tool_use": {"name": "Bash", "input": {
                    "command": split, "description": "Add the two sub-tasks"}}},
            ])
        p = self.add("A big job, in two parts.")
        self.assertEqual(p, 1)  # the id the scripted command names
        t = self.wait_state(p, "done", passing=("queued", "running", "waiting"))
        self.assertEqual(t["result"], "Both parts are in; the big job is done.", self.diagnostics())

        # The sub-tasks, children of the task, with the prompts from stdin.
        self.assertEqual([c["title"] for c in t["children"]], ["A", "B"], self.diagnostics())
        a, b = (c["id"] for c in t["children"])
        for child, part in ((a, "A"), (b, "B")):
            c = self.show(child)
            self.assertEqual((c["parent"], c["state"], c["result"]), (p, "done", f"Result of part {part}."))
            self.assertEqual(c["prompt"].strip(), f"Do part {part}.")
        # The CLI ran inside the session: its output (the new ids) was the tool's result.
        conv = self.conversation()
        first = [r for r in conv if r["rule"] == 4]
        self.assertEqual(len(first), 1, self.diagnostics())
        self.assertEqual(first[0]["last_user_text"].split(), [str(a), str(b)], self.diagnostics())

        # The parent waited, then was queued again and resumed its own conversation.
        states = [e["new_state"] for e in t["events"]]
        self.assertEqual(states[-5:], ["running", "waiting", "queued", "running", "done"], t["events"])
        self.assertEqual(t["sessions_used"], 2)
        rows = [s for s in self.sessions_json() if s["task_id"] == p]
        self.assertEqual([(s["outcome"], s["resumed"]) for s in rows], [("done", False), ("done", True)],
                         self.diagnostics())
        self.assertEqual({s["claude_session_id"] for s in rows}, {t["claude_session_id"]})
        # The resumed session sent the whole conversation (the Bash call and its
        # result) with the children's report last, their results in it.
        (last,) = [r for r in conv if r["rule"] == 1]
        self.assertEqual(last["tool_results"], 1, self.diagnostics())
        text = last["last_user_text"]
        self.assertTrue(text.startswith(report), text)
        for words in (f"## Sub-task {a}: A\nstate: done\nresult:\nResult of part A.",
                      f"## Sub-task {b}: B\nstate: done\nresult:\nResult of part B."):
            self.assertIn(words, text)
        # One request per turn and session: the parent's two, one for each child, the resume's one.
        self.assertEqual(sorted(r["rule"] for r in conv), [1, 2, 3, 4, 5], self.diagnostics())
        self.check_requests_came_from_the_daemon({t["claude_session_id"], self.show(a)["claude_session_id"],
                                                  self.show(b)["claude_session_id"]})

class MakeRun(RealClaudeTest):
    """A newcomer's first minutes: `make run` (tools/run-dev, after the
    build) in a source tree on a machine with no `claude` on PATH, then
    `./jada-agent task add` in a second terminal, with no -c anywhere."""

    def tree(self):
        tree = os.path.join(self.tmp, "tree")
        for d in ("config", "tools"):
            os.makedirs(os.path.join(tree, d))
        shutil.copy(BIN, os.path.join(tree, "jada-agent"))
        for f in ("Makefile", "config/jada-agent.dev.conf", "tools/run-dev", "tools/install-claude-cli"):
            shutil.copy2(os.path.join(REPO, f), os.path.join(tree, f))
        # What `make run` leaves to the user's second terminal: no config
        # path anywhere, and the state where the dev config puts it.
        self.state = os.path.join(tree, "var")
        os.makedirs(self.state)
        return tree

    def make_run(self, tree, env):
        path = "/usr/bin:/bin"
        if shutil.which("claude", path=path):
            self.fail(f"this test needs a machine without claude in {path}")
        if not shutil.which("node", path=path):
            self.fail(f"node is not in {path}: install Debian's nodejs")
        e = {"PATH": path, "HOME": self.tmp, "LANG": "C.UTF-8",
             # The cached pinned CLI of this test run: no download here.
             "CLAUDE_CLI_DIR": os.path.dirname(os.path.dirname(os.path.dirname(self.cli))),
             "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        e.update(env)
        out = os.path.join(self.tmp, "make-run.log")
        with open(out, "wb") as f:
            p = subprocess.Popen([os.path.join(tree, "tools", "run-dev")], env=e, stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_make_run, p)
        deadline = time.monotonic() + WAIT
        while "started: config" not in self.read(out):
            if p.poll() is not None or time.monotonic() > deadline:
                self.fail(f"make run did not start the daemon:\n{self.read(out)}")
            time.sleep(0.1)
        return p, out

    @staticmethod
    def read(path):
        with open(path, errors="replace") as f:
            return f.read()

    @staticmethod
    def stop_make_run(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def second_terminal(self, tree, *args):
        env = {k: v for k, v in os.environ.items() if k != "JADA_AGENT_CONFIG"}
        return subprocess.run([os.path.join(tree, "jada-agent"), *args], cwd=tree, env=env,
                              capture_output=True, text=True, timeout=WAIT)

    def test_without_a_credential_status_says_what_to_set(self):
        tree = self.tree()
        p, out = self.make_run(tree, {})
        text = self.read(out)
        self.assertIn("no 'claude' on PATH: using the pinned Claude Code CLI", text)
        self.assertIn("no credential is set", text)
        self.assertIn('./jada-agent task add "', text)
        r = self.second_terminal(tree, "task", "add", "Write hello.txt that says hello")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "1"), r.stderr)
        r = self.second_terminal(tree, "status")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("no Claude credential: set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (under systemd: the "
                      "credential anthropic-api-key or claude-oauth-token) and restart\n", r.stdout)
        r = self.second_terminal(tree, "status", "--json")
        problems = json.loads(r.stdout)["problems"]
        self.assertIn("api_key", [q["kind"] for q in problems], problems)
        time.sleep(1)
        r = self.second_terminal(tree, "task", "show", "1", "--json")
        t = json.loads(r.stdout)
        self.assertEqual((t["state"], t["sessions_used"], t["attempts"]), ("queued", 0, 0), t)
        self.assertFalse(os.path.exists(os.path.join(self.state, "work", "task-1")), "no session may start")

    def test_with_a_key_the_first_task_runs_to_done(self):
        tree = self.tree()
        script = os.path.join(self.tmp, "fake-api-script.json")
        with open(script, "w") as f:
            json.dump({"rules": [{"main": False, "text": "Side answer."}, {"text": "Hello from the fake model."}]}, f)
        with private_network():
            with open(self.api_stderr, "wb") as err:
                self.fake = subprocess.Popen([sys.executable, FAKE_API, script, "--log", self.api_log],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
            self.addCleanup(self.stop_fake)
            port = self.read_port()
            p, out = self.make_run(tree, {"ANTHROPIC_API_KEY": API_KEY,
                                          "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"})
        self.assertIn("sessions use ANTHROPIC_API_KEY", self.read(out))
        r = self.second_terminal(tree, "task", "add", "Say hello")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "1"), r.stderr)
        deadline = time.monotonic() + WAIT
        while True:
            r = self.second_terminal(tree, "task", "show", "1", "--json")
            t = json.loads(r.stdout)
            if t["state"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(t["state"], "done", f"{t}\n{self.read(out)}")
        self.assertEqual(t["result"], "Hello from the fake model.")
        r = self.second_terminal(tree, "status")
        self.assertEqual(r.returncode, 0, r.stdout)
