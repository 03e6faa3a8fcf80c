# SPDX-License-Identifier: MIT
"""Claude sessions through the real daemon and a fake `claude` that replays
real captures: every outcome, the budget, timeouts, stop and kill -9."""

import calendar
import glob
import json
import os
import signal
import socket
import time

from harness import REPO, TIMEOUT, TempStateTest, alive, needs_root, read_fake_claude_log

FAKE = os.path.join(REPO, "tests", "fake", "fake-claude")
SAMPLES = "samples/v2.1.332_"
API_KEY = "sk-ant-test-0000-not-a-real-key"


class SessionTest(TempStateTest):
    CONFIG = ""

    def setUp(self):
        super().setUp()
        self.scenarios = os.path.join(self.tmp, "scenarios")
        os.makedirs(self.scenarios)
        self.fake_log = os.path.join(self.tmp, "fake-claude.log")
        self.n_scenarios = 0
        self.configure(self.CONFIG)

    def configure(self, extra=""):
        self.write_config(f"poll_interval = 1h\n[claude]\ncommand = {FAKE}\n" + extra)

    def scenario(self, **kw):
        self.n_scenarios += 1
        with open(os.path.join(self.scenarios, f"{self.n_scenarios:03d}-scenario.json"), "w") as f:
            json.dump(kw, f)

    def default_scenario(self, **kw):
        with open(os.path.join(self.scenarios, "default.json"), "w") as f:
            json.dump(kw, f)

    def daemon(self, extra_env=None, **kw):
        env = {"FAKE_CLAUDE_SCENARIOS": self.scenarios, "FAKE_CLAUDE_LOG": self.fake_log,
               "ANTHROPIC_API_KEY": API_KEY}
        env.update(extra_env or {})
        d = self.start(extra_env=env, **kw)
        d.notify.wait_field("READY=1")
        return d

    def add(self, prompt, *args):
        r = self.run_cli("-c", self.config, "task", "add", *args, prompt)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout)

    def show(self, task_id):
        r = self.run_cli("-c", self.config, "task", "show", str(task_id), "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def wait_state(self, task_id, state, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            t = self.show(task_id)
            if t["state"] == state:
                return t
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} is {t['state']}, not {state}: {t}")
            time.sleep(0.05)

    def wait_sessions(self, n, ended=True, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            rows = self.sessions()
            done = [r for r in rows if r["ended_at"] is not None] if ended else rows
            if len(done) >= n:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(done)} sessions, wanted {n}: {rows}")
            time.sleep(0.05)

    def sessions(self):
        return self.db_rows("SELECT * FROM sessions ORDER BY id")

    def invocations(self):
        return read_fake_claude_log(self.fake_log)

    def wait_invocations(self, n, after=0):
        """after: seconds before the runs can start (a task added --after)."""
        deadline = time.monotonic() + after + TIMEOUT
        while len(self.invocations()) < n:
            self.assertLess(time.monotonic(), deadline, f"fewer than {n} claude runs")
            time.sleep(0.05)
        return self.invocations()

    def wake(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"wake", os.path.join(self.state, "control.sock"))
        s.close()

    def sql(self, statement, *args):
        self.db_exec(statement, *args)


class Outcomes(SessionTest):
    def test_success_is_done_and_the_child_gets_the_right_world(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl")
        self.daemon()
        i = self.add("Say hi, then finish.")
        t = self.wait_state(i, "done")
        self.assertEqual(t["result"], "All done. The command printed hi.")
        self.assertEqual(t["sessions_used"], 1)
        self.assertEqual(t["turns_used"], 3)
        self.assertAlmostEqual(t["cost_usd"], 0.149708)
        (run,) = self.invocations()
        argv = run["argv"]
        for a, b in (("--output-format", "stream-json"), ("--max-turns", "30"),
                     ("--permission-mode", "acceptEdits")):
            self.assertEqual(argv[argv.index(a) + 1], b)
        self.assertIn("-p", argv)
        self.assertIn("--verbose", argv)
        self.assertIn("NEEDS-YOU:", argv[argv.index("--append-system-prompt") + 1])
        self.assertNotIn("Say hi, then finish.", argv)  # the prompt goes on stdin
        self.assertEqual(run["stdin"], "Say hi, then finish.")
        self.assertEqual(t["claude_session_id"], argv[argv.index("--session-id") + 1])
        self.assertEqual(run["cwd"], os.path.join(self.state, "work", f"task-{i}"))
        self.assertEqual(os.stat(run["cwd"]).st_mode & 0o777, 0o700)
        env = run["env"]
        self.assertEqual(env["HOME"], os.path.join(self.state, "home"))
        self.assertEqual(env["CLAUDE_CONFIG_DIR"], os.path.join(self.state, "home", ".claude"))
        self.assertEqual(env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"], "1")
        self.assertEqual(env["JADA_TASK_ID"], str(i))
        self.assertEqual(env["ANTHROPIC_API_KEY"], API_KEY)
        self.assertNotIn("NOTIFY_SOCKET", env)
        self.assertEqual(run["pgid"], run["pid"])  # its own process group
        (row,) = self.sessions()
        self.assertEqual(row["outcome"], "done")
        self.assertEqual(row["exit_status"], 0)
        self.assertEqual((row["input_tokens"], row["output_tokens"]), (37152, 55))
        self.assertEqual(row["resumed"], 0)
        self.assertNotIn(API_KEY, open(self.daemons[0].stderr_path).read())

    def test_api_key_from_credentials_directory(self):
        creds = os.path.join(self.tmp, "creds")
        os.makedirs(creds)
        with open(os.path.join(creds, "anthropic-api-key"), "w") as f:
            f.write("sk-ant-from-credential\n")
        self.scenario(stream=SAMPLES + "success.stream.jsonl")
        self.daemon(extra_env={"CREDENTIALS_DIRECTORY": creds})
        self.wait_state(self.add("x"), "done")
        env = self.invocations()[0]["env"]
        self.assertEqual(env["ANTHROPIC_API_KEY"], "sk-ant-from-credential")

    def test_needs_you_then_reply_resumes(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl",
                      result_text="I checked.\nNEEDS-YOU: which branch should I deploy?")
        self.scenario(stream=SAMPLES + "success.stream.jsonl")
        self.daemon()
        i = self.add("Deploy it")
        t = self.wait_state(i, "needs_you")
        self.assertEqual(t["needs_you_reason"], "which branch should I deploy?")
        r = self.run_cli("-c", self.config, "task", "reply", str(i), "main, please")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_state(i, "done")
        first, second = self.invocations()
        sid = first["argv"][first["argv"].index("--session-id") + 1]
        self.assertEqual(second["argv"][second["argv"].index("--resume") + 1], sid)
        self.assertEqual(second["stdin"], "main, please")
        self.assertEqual([r["resumed"] for r in self.sessions()], [0, 1])

    def test_permission_denials_need_you(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl",
                      permission_denials=[{"tool_name": "Bash", "tool_use_id": "t1", "tool_input": {}}])
        self.daemon()
        t = self.wait_state(self.add("x"), "needs_you")
        self.assertIn("Bash", t["needs_you_reason"])

    def test_max_turns_resumes_then_completes(self):
        self.scenario(stream=SAMPLES + "max_turns.stream.jsonl")
        self.scenario(stream=SAMPLES + "resume_after_max_turns.stream.jsonl")
        self.scenario(stream=SAMPLES + "success.stream.jsonl")
        self.configure("max_turns = 3\n")
        self.daemon()
        i = self.add("A long task")
        t = self.wait_state(i, "done")
        runs = self.invocations()
        self.assertEqual(len(runs), 3)
        sid = runs[0]["argv"][runs[0]["argv"].index("--session-id") + 1]
        for r in runs[1:]:
            self.assertEqual(r["argv"][r["argv"].index("--resume") + 1], sid)
            self.assertIn("Continue the task", r["stdin"])
        rows = self.sessions()
        self.assertEqual([r["outcome"] for r in rows], ["max_turns", "max_turns", "done"])
        # 2.1.332 reports cost cumulatively across --resume: the second
        # session cost 0.30276 - 0.149808, not 0.30276.
        self.assertAlmostEqual(rows[1]["cost_usd"], 0.152952, places=6)
        self.assertAlmostEqual(t["cost_usd"], 0.149808 + 0.152952 + 0.149708, places=6)
        self.assertEqual(t["sessions_used"], 3)

    def test_max_turns_cap_needs_you(self):
        self.scenario(stream=SAMPLES + "max_turns.stream.jsonl")
        self.scenario(stream=SAMPLES + "resume_after_max_turns.stream.jsonl")
        self.configure("max_turns = 3\nmax_sessions_per_task = 2\n")
        self.daemon()
        t = self.wait_state(self.add("x"), "needs_you")
        self.assertEqual(t["needs_you_reason"], "hit the turn limit 2 times: split the task or raise max_turns")

    def test_auth_error_stops_launching_without_burning_the_task(self):
        self.scenario(stream=SAMPLES + "401.stream.jsonl")
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        d = self.daemon()
        i = self.add("first")
        self.wait_sessions(1)
        j = self.add("second")
        d.notify.wait_for(lambda m: "API key rejected" in m)
        t = self.show(i)
        self.assertEqual(t["state"], "queued")
        self.assertEqual(t["attempts"], 0)
        self.assertEqual(self.show(j)["state"], "queued")
        self.assertEqual(len(self.invocations()), 1, "nothing more may launch with a rejected key")
        self.assertEqual(self.sessions()[0]["outcome"], "auth_error")
        # The operator fixes the key and reloads: sessions run again.
        d.signal(signal.SIGHUP)
        self.wait_state(i, "done")
        self.wait_state(j, "done")

    @needs_root
    def test_auth_error_is_one_alert_in_the_journal(self):
        self.scenario(stream=SAMPLES + "401.stream.jsonl")
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        d = self.daemon(journal=True)
        self.add("first")
        self.wait_sessions(1)
        self.add("second")  # wakes the daemon: it must not launch, nor alert again
        d.notify.wait_for(lambda m: "API key rejected" in m)
        d.journal.drain(0.5)
        alerts = [e for e in d.journal.entries if e.get("MESSAGE_ID") == "3cffc81229714862b0213440807db794"]
        self.assertEqual(len(alerts), 1, alerts)
        self.assertEqual(alerts[0]["PRIORITY"], "3")
        self.assertEqual(alerts[0]["JADA_ALERT"], "api_key")
        d.signal(signal.SIGHUP)  # the operator fixed the key: recovery is one notice
        self.wait_state(1, "done")
        d.journal.drain(0.5)
        rec = [e for e in d.journal.entries if e.get("JADA_ALERT") == "api_key" and e["PRIORITY"] == "5"]
        self.assertEqual(len(rec), 1, d.journal.entries)

    def test_transient_api_error_requeues_with_backoff(self):
        self.scenario(lines=[
            {"type": "system", "subtype": "init", "session_id": "$SESSION_ID"},
            {"type": "system", "subtype": "api_retry", "attempt": 10, "error_status": 529, "error": "overloaded"},
            {"type": "result", "subtype": "success", "is_error": True, "terminal_reason": "api_error",
             "num_turns": 1, "total_cost_usd": 0, "session_id": "$SESSION_ID", "result": "Overloaded",
             "permission_denials": []}], exit=1)
        self.daemon()
        before = int(time.time())
        i = self.add("x")
        self.wait_sessions(1)
        t = self.wait_state(i, "queued")
        self.assertEqual(t["attempts"], 0)
        run_after = self.db_value("SELECT run_after FROM tasks WHERE id = ?", i)
        self.assertGreaterEqual(run_after, before + 60)
        self.assertEqual(self.sessions()[0]["outcome"], "api_error")

    def test_529_retries_inside_the_cli_then_success(self):
        self.scenario(stream=SAMPLES + "529x2_then_ok.stream.jsonl")
        self.daemon()
        self.wait_state(self.add("x"), "done")

    def test_unknown_conversation_gets_one_fresh_session(self):
        self.scenario(no_conversation=True)
        self.scenario(stream=SAMPLES + "success.stream.jsonl")
        self.add("x")  # no daemon yet: set it up as a task that ran before
        old = "11111111-2222-4333-8444-555555555555"
        self.sql("UPDATE tasks SET claude_session_id = ?, sessions_used = 1 WHERE id = 1", old)
        self.daemon()
        self.wait_state(1, "done")
        first, second = self.invocations()
        self.assertEqual(first["argv"][first["argv"].index("--resume") + 1], old)
        self.assertIn("--session-id", second["argv"])
        self.assertNotEqual(second["session_id"], old)
        self.assertEqual([r["outcome"] for r in self.sessions()], ["no_conversation", "done"])
        self.assertIn("conversation to resume is gone", self.daemons[0].log())

    def test_crash_retries_then_fails(self):
        crash = dict(lines=[{"type": "system", "subtype": "init", "session_id": "$SESSION_ID"}], exit=1)
        self.scenario(**crash)
        self.scenario(**crash)
        self.configure("max_attempts = 2\n")
        self.daemon()
        i = self.add("x")
        self.wait_sessions(1)
        t = self.wait_state(i, "queued")
        self.assertEqual(t["attempts"], 1)
        self.assertIn("retry in 60s", t["events"][-1]["reason"])
        # Skip the backoff rather than wait a minute.
        self.sql("UPDATE tasks SET run_after = 0 WHERE id = ?", i)
        self.wake()
        t = self.wait_state(i, "failed")
        self.assertIn("without a result", t["error"])
        self.assertIn("giving up", t["error"])
        self.assertEqual([r["outcome"] for r in self.sessions()], ["crashed", "crashed"])

    def test_malformed_stream(self):
        self.scenario(lines=["not json at all", "[1, 2, 3]", '{"type": "assistant", "message": '], exit=0)
        self.daemon()
        i = self.add("x")
        self.wait_sessions(1)
        t = self.wait_state(i, "queued")
        self.assertEqual(t["attempts"], 1)
        self.assertEqual(self.sessions()[0]["outcome"], "protocol_error")

    def test_turn_overrun_is_stopped(self):
        lines = [{"type": "system", "subtype": "init", "session_id": "$SESSION_ID"}]
        for n in range(8):
            lines.append({"type": "assistant", "session_id": "$SESSION_ID",
                          "message": {"id": f"msg_{n}", "role": "assistant", "content": []}})
        self.scenario(lines=lines, hang_after=len(lines))
        self.configure("max_turns = 3\n")
        self.daemon()
        i = self.add("x")
        rows = self.wait_sessions(1)
        self.assertEqual(rows[0]["outcome"], "turn_overrun")
        self.assertEqual(self.show(i)["attempts"], 1)

    def test_overlong_line_is_a_protocol_error(self):
        self.scenario(lines=[{"type": "system", "subtype": "init", "session_id": "$SESSION_ID"},
                             "x" * (16 * 1024 * 1024 + 10)], hang_after=2)
        self.daemon()
        self.add("x")
        rows = self.wait_sessions(1)
        self.assertEqual(rows[0]["outcome"], "protocol_error")

    def test_stderr_goes_to_the_log(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", stderr="warning: from the CLI\x1b[31m red\n")
        d = self.daemon()
        self.wait_state(self.add("x"), "done")
        self.assertIn("claude: warning: from the CLI", d.log())
        self.assertNotIn("\x1b", d.log())

    def test_command_that_cannot_run(self):
        self.write_config(f"poll_interval = 1h\n[claude]\ncommand = {self.tmp}/no-such-claude\n")
        d = self.daemon()
        i = self.add("x")
        d.notify.wait_for(lambda m: "cannot run" in m and "DEGRADED" in m)
        t = self.wait_state(i, "queued")
        self.assertEqual(t["attempts"], 0)
        self.assertEqual(self.sessions()[0]["outcome"], "launch_error")
        self.assertNotCounted(i, "never started")

    def assertNotCounted(self, task_id, why):
        """The session is listed, marked as not counted, and takes no slot
        of the day's budget nor of the task's sessions."""
        r = self.run_cli("-c", self.config, "sessions", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        (row,) = doc["sessions"]
        self.assertEqual((row["task_id"], row["counted"]), (task_id, False), row)
        self.assertIn(why, row["not_counted_why"])
        self.assertEqual((doc["summary"]["total"], doc["summary"]["not_counted"]), (0, 1), doc["summary"])
        r = self.run_cli("-c", self.config, "sessions")
        self.assertIn("(not counted: " + why, r.stdout)
        self.assertIn("0 sessions in the last 7d", r.stdout)
        r = self.run_cli("-c", self.config, "status")
        self.assertIn("0/5 sessions today", r.stdout)
        self.assertIn("0 in 7 days", r.stdout)
        r = self.run_cli("-c", self.config, "status", "--json")
        self.assertEqual(json.loads(r.stdout)["budget"]["sessions_today"], 0)
        self.assertEqual(self.show(task_id)["sessions_used"], 0)

    @needs_root
    def test_no_credential_is_one_alert_through_reloads(self):
        d = self.daemon(extra_env={"ANTHROPIC_API_KEY": ""}, journal=True)
        i = self.add("x")
        d.notify.wait_for(lambda m: "DEGRADED: no Claude credential: set ANTHROPIC_API_KEY" in m)
        with d.notify.cond:
            mark = len(d.notify.messages)
        d.signal(signal.SIGHUP)
        d.notify.wait_for(lambda m: "RELOADING=1" in m.split("\n"), start=mark)
        d.notify.wait_field("READY=1", start=mark)
        time.sleep(0.5)
        d.journal.drain(0.5)
        kinds = [(e["PRIORITY"], e.get("JADA_ALERT")) for e in d.journal.entries if e.get("JADA_ALERT")]
        self.assertEqual(kinds, [("3", "api_key")], kinds)
        self.assertEqual(self.invocations(), [], "no session may start without a credential")
        self.assertEqual(self.show(i)["state"], "queued")

    def test_api_refusal_before_the_first_turn_is_not_counted(self):
        # The real CLI's 401 after its own retries: num_turns 1 (a
        # "<synthetic>" message), no cost, no tokens.
        self.scenario(stream=SAMPLES + "401.stream.jsonl")
        d = self.daemon()
        i = self.add("x")
        d.notify.wait_for(lambda m: "API key rejected" in m)
        self.wait_state(i, "queued")
        self.assertEqual(self.sessions()[0]["outcome"], "auth_error")
        self.assertNotCounted(i, "refused by the API (HTTP 401) before its first turn")

    def test_overloaded_before_the_first_turn_is_not_counted_and_the_reply_is_kept(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", result_text="NEEDS-YOU: which branch?")
        self.scenario(lines=[
            {"type": "system", "subtype": "init", "session_id": "$SESSION_ID"},
            {"type": "system", "subtype": "api_retry", "attempt": 10, "error_status": 529, "error": "overloaded"},
            {"type": "result", "subtype": "success", "is_error": True, "terminal_reason": "api_error",
             "num_turns": 1, "total_cost_usd": 0, "session_id": "$SESSION_ID", "result": "Overloaded",
             "usage": {"input_tokens": 0, "output_tokens": 0}, "permission_denials": []}], exit=1)
        self.configure("sessions_per_day = 2\n")
        self.daemon()
        i = self.add("x")
        self.wait_state(i, "needs_you")
        r = self.run_cli("-c", self.config, "task", "reply", str(i), "use main")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.wait_sessions(2)
        self.assertEqual(rows[1]["outcome"], "api_error")
        t = self.wait_state(i, "queued")
        self.assertEqual((t["sessions_used"], t["reply"]), (1, "use main"), t)
        r = self.run_cli("-c", self.config, "status", "--json")
        self.assertEqual(json.loads(r.stdout)["budget"]["sessions_today"], 1)


class Budget(SessionTest):
    def test_sessions_per_day(self):
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        self.configure("sessions_per_day = 2\n")
        for n in range(3):
            self.add(f"task {n}")
        d = self.daemon()
        self.wait_state(1, "done")
        self.wait_state(2, "done")
        d.notify.wait_for(lambda m: "budget spent: 2/2 sessions today, resets 00:00 UTC" in m)
        self.assertEqual(self.show(3)["state"], "queued")
        self.assertEqual(len(self.invocations()), 2)

    def test_daily_cost_limit(self):
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")  # $0.149708 each
        self.configure("daily_cost_limit_usd = 0.2\n")
        for n in range(3):
            self.add(f"task {n}")
        d = self.daemon()
        self.wait_state(2, "done")
        d.notify.wait_for(lambda m: "budget spent: $0.30 of $0.20 today" in m)
        self.assertEqual(self.show(3)["state"], "queued")

    def test_budget_resets_at_utc_midnight(self):
        shim = os.path.join(os.environ.get("JADA_BUILD", "build"), "tests", "libfakeclock.so")
        self.assertTrue(os.path.exists(shim), shim)
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        self.configure("sessions_per_day = 1\n")
        self.add("before midnight")
        self.add("after midnight")
        # The next UTC midnight after now: the tasks are stamped with the
        # real clock, so the daemon's fake clock must start after them.
        midnight = (int(time.time()) // 86400 + 1) * 86400
        d = self.daemon(extra_env={
            "LD_PRELOAD": shim, "FAKE_REALTIME_START": str(midnight - 4),
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
        self.wait_state(1, "done")
        d.notify.wait_for(lambda m: "budget spent: 1/1 sessions today" in m)
        self.assertEqual(self.show(2)["state"], "queued")
        self.wait_state(2, "done", timeout=TIMEOUT + 10)
        first, second = self.sessions()
        self.assertLess(first["started_at"], midnight)
        self.assertGreaterEqual(second["started_at"], midnight)


class Due(SessionTest):
    """The daemon sleeps until the earliest deadline, not a whole
    poll_interval (1h here): a task's run_after, the budget's reset."""

    def test_a_task_added_for_later_starts_when_it_falls_due(self):
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        self.daemon()
        i = self.add("later", "--after", "3s")
        run_after = calendar.timegm(time.strptime(self.show(i)["run_after"], "%Y-%m-%dT%H:%M:%SZ"))
        (run,) = self.wait_invocations(1, after=3)
        late = run["started"] - run_after
        print(f"\n    run_after to claude's start: {late * 1000:.0f} ms", end=" ")
        self.assertGreaterEqual(late, 0, "started before it was due")
        self.wait_state(i, "done")


class Stopping(SessionTest):
    def test_sigterm_interrupts_and_leaves_the_task_resumable(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", hang_after=3, spawn_child=True)
        d = self.daemon()
        i = self.add("x")
        (run,) = self.wait_invocations(1)
        self.wait_until(lambda: run.get("child_pid") or self.invocations()[0].get("child_pid"))
        run = self.invocations()[0]
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(), 0)
        self.assertFalse(alive(run["pid"]), "claude outlived the daemon")
        self.assertFalse(alive(run["child_pid"]), "a process of claude's group outlived the daemon")
        t = self.show(i)
        self.assertEqual(t["state"], "queued")
        self.assertEqual(t["attempts"], 0)
        self.assertEqual(t["claude_session_id"], run["session_id"])
        self.assertEqual(self.sessions()[0]["outcome"], "interrupted")

    def test_a_child_that_ignores_sigterm_is_killed(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", hang_after=2, ignore_sigterm=True)
        d = self.daemon()
        self.add("x")
        (run,) = self.wait_invocations(1)
        time.sleep(0.3)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(timeout=TIMEOUT + 15), 0)
        self.assertFalse(alive(run["pid"]))
        self.assertIn("SIGKILL", d.log())

    def test_cancel_stops_a_running_session(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", hang_after=2)
        self.daemon()
        i = self.add("x")
        (run,) = self.wait_invocations(1)
        r = self.run_cli("-c", self.config, "task", "cancel", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = self.wait_sessions(1)
        self.assertEqual(rows[0]["outcome"], "cancelled")
        self.assertEqual(self.show(i)["state"], "cancelled")
        self.assertFalse(alive(run["pid"]))

    def test_kill_9_of_the_daemon_mid_session(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", hang_after=3, spawn_child=True)
        self.scenario(stream=SAMPLES + "success.stream.jsonl")
        d = self.daemon()
        i = self.add("x")
        self.wait_invocations(1)
        self.wait_until(lambda: self.invocations()[0].get("child_pid"))
        run = self.invocations()[0]
        d.signal(signal.SIGKILL)
        d.wait()
        # claude dies with the daemon (PR_SET_PDEATHSIG); the tool it started
        # is reaped by the next daemon, which also resumes the task.
        self.wait_until(lambda: not alive(run["pid"]))
        self.daemon()
        self.wait_until(lambda: not alive(run["child_pid"]))
        t = self.wait_state(i, "done")
        second = self.invocations()[1]
        self.assertEqual(second["argv"][second["argv"].index("--resume") + 1], run["session_id"])
        rows = self.sessions()
        self.assertEqual([r["outcome"] for r in rows], ["interrupted", "done"])
        self.assertEqual(t["sessions_used"], 2)  # the killed one counts against the budget

    def test_session_timeout(self):
        self.scenario(lines=[{"type": "system", "subtype": "init", "session_id": "$SESSION_ID"}] * 60,
                      line_delay=0.5)
        self.configure("session_timeout = 10s\n")
        self.daemon()
        i = self.add("x")
        rows = self.wait_sessions(1, timeout=TIMEOUT + 15)
        self.assertEqual(rows[0]["outcome"], "timeout")
        self.assertEqual(self.show(i)["attempts"], 1)

    def test_idle_timeout(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", hang_after=2)
        self.configure("idle_timeout = 10s\n")
        self.daemon()
        self.add("x")
        rows = self.wait_sessions(1, timeout=TIMEOUT + 15)
        self.assertEqual(rows[0]["outcome"], "idle_timeout")

    def test_concurrency(self):
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl", hang_after=2)
        self.configure("concurrency = 2\n")
        for n in range(3):
            self.add(f"task {n}")
        d = self.daemon()
        self.wait_invocations(2)
        d.notify.wait_for(lambda m: "Running 2 sessions" in m)
        time.sleep(0.3)
        self.assertEqual(len(self.invocations()), 2)

    def wait_until(self, predicate):
        deadline = time.monotonic() + TIMEOUT
        while not predicate():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
