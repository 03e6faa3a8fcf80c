# SPDX-License-Identifier: MIT
"""jada-agent status: the audit and its monitoring-plugin exit codes."""

import json
import os
import signal
import sqlite3
import time

from harness import TIMEOUT, TempStateTest
from test_sessions import FAKE, SAMPLES, SessionTest


class Status(SessionTest):
    def status(self):
        r = self.run_cli("-c", self.config, "status", "--json")
        self.assertNotIn("Sanitizer", r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["exit_code"], r.returncode)
        human = self.run_cli("-c", self.config, "status")
        self.assertEqual(human.returncode, r.returncode)
        self.assertTrue(human.stdout.startswith(f"jada-agent: {doc['verdict']}\n"), human.stdout)
        return r.returncode, doc

    def kinds(self, doc):
        return [p["kind"] for p in doc["problems"]]

    def test_not_running_is_unknown(self):
        code, doc = self.status()
        self.assertEqual(code, 3)
        self.assertEqual(doc["verdict"], "UNKNOWN")
        self.assertFalse(doc["service"]["running"])
        self.assertIn("not_running", self.kinds(doc))
        self.assertIn("systemctl start jada-agent", doc["problems"][0]["fix"])

    def test_running_and_idle_is_ok(self):
        d = self.daemon()
        code, doc = self.status()
        self.assertEqual(code, 0, doc)
        self.assertEqual(doc["service"]["pid"], d.proc.pid)
        self.assertGreater(doc["service"]["rss_kb"], 0)
        self.assertEqual(doc["problems"], [])
        for key in ("queue", "budget", "sessions_7d", "sheets", "disk"):
            self.assertIn(key, doc)
        self.assertGreater(doc["disk"]["state_dir_bytes"], 4096)  # the db at least
        self.assertTrue(0 < doc["disk"]["free_share"] <= 1)

    def test_a_sync_still_running_is_not_a_failing_one(self):
        self.daemon()
        now = int(time.time())
        self.sql("INSERT INTO sync_runs (started_at, ended_at, ok) VALUES (?, ?, 1)", now - 60, now - 59)
        self.sql("INSERT INTO sync_runs (started_at) VALUES (?)", now)  # in flight: ok 0, no end
        code, doc = self.status()
        self.assertEqual(doc["sheets"]["failing_runs"], 0, doc)
        self.sql("INSERT INTO sync_runs (started_at, ended_at, ok, error) VALUES (?, ?, 0, 'x')", now, now)
        self.assertEqual(self.status()[1]["sheets"]["failing_runs"], 1)

    def test_stopped_daemon_is_unknown_again(self):
        d = self.daemon()
        d.signal(signal.SIGTERM)
        d.wait()
        self.assertEqual(self.status()[0], 3)

    def test_hung_daemon_is_unknown(self):
        self.configure("")
        self.write_config(f"poll_interval = 1s\n[claude]\ncommand = {FAKE}\n")
        d = self.daemon()
        self.assertEqual(self.status()[0], 0)
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(4.5)  # more than 3 poll intervals without a health update
            code, doc = self.status()
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        self.assertEqual(code, 3)
        self.assertIn("stale", self.kinds(doc))

    def test_rejected_api_key_is_critical(self):
        self.scenario(stream=SAMPLES + "401.stream.jsonl")
        d = self.daemon()
        self.add("x")
        d.notify.wait_for(lambda m: "API key rejected" in m)
        code, doc = self.status()
        self.assertEqual(code, 2)
        p = [p for p in doc["problems"] if p["kind"] == "api_key"][0]
        self.assertEqual(p["severity"], "CRITICAL")
        self.assertIn("anthropic-api-key", p["fix"])

    def test_needs_you_and_failed_are_warnings(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", result_text="NEEDS-YOU: approve?")
        self.daemon()
        self.wait_state(self.add("x"), "needs_you")
        code, doc = self.status()
        self.assertEqual(code, 1)
        self.assertEqual(self.kinds(doc), ["needs_you"])
        self.assertIn("task reply", doc["problems"][0]["fix"])

    def test_spent_budget_with_waiting_tasks_is_a_warning(self):
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        self.configure("sessions_per_day = 1\n")
        self.add("a")
        self.add("b")
        d = self.daemon()
        self.wait_state(1, "done")
        d.notify.wait_for(lambda m: "budget spent" in m)
        code, doc = self.status()
        self.assertEqual(code, 1)
        self.assertIn("budget_spent", self.kinds(doc))

    def test_turn_limit_share_is_a_warning(self):
        self.default_scenario(stream=SAMPLES + "max_turns.stream.jsonl")
        self.configure("max_turns = 3\nmax_sessions_per_task = 1\n")
        for n in range(3):
            self.add(f"t{n}")
        self.daemon()
        for n in range(1, 4):
            self.wait_state(n, "needs_you")
        code, doc = self.status()
        self.assertEqual(code, 1)
        self.assertIn("max_turns", self.kinds(doc))
        self.assertEqual(doc["sessions_7d"]["max_turns_rate"], 1.0)
