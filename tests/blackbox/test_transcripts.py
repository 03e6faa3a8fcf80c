# SPDX-License-Identifier: MIT
"""Transcripts: every session's stream-json kept (zstd, written as it
arrives), shown readably or raw, followed while the session runs, whole
after a kill -9 up to what was written, and pruned with the task."""

import json
import os
import signal
import subprocess
import time

from harness import BIN, REPO, TIMEOUT, WRAP
from test_sessions import SAMPLES, SessionTest

SUCCESS = SAMPLES + "success.stream.jsonl"
MAX_TURNS = SAMPLES + "max_turns.stream.jsonl"
SAMPLE_DIR = os.path.join(REPO, "tests", "fake", "scenarios")
FAKE_CLOCK = os.path.join(os.environ.get("JADA_BUILD", os.path.join(REPO, "build")), "tests", "libfakeclock.so")


def sample_lines(name):
    with open(os.path.join(SAMPLE_DIR, name)) as f:
        return [json.loads(line) for line in f if line.strip()]


class Transcripts(SessionTest):
    def transcript(self, *args):
        return self.run_cli("-c", self.config, "transcript", *args)

    def test_readable_and_raw(self):
        self.scenario(stream=SUCCESS)
        self.daemon()
        i = self.add("Say hi.")
        self.wait_state(i, "done")
        (row,) = self.sessions()
        path = os.path.join(self.state, "transcripts", f"{row['id']}.jsonl.zst")
        self.assertTrue(os.path.exists(path))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path, "rb") as f:
            self.assertEqual(f.read(4), b"\x28\xb5\x2f\xfd")  # a zstd frame
        raw = self.transcript(str(row["id"]), "--json")
        self.assertEqual(raw.returncode, 0, raw.stderr)
        lines = [json.loads(x) for x in raw.stdout.splitlines()]
        want = sample_lines(SUCCESS)
        self.assertEqual(len(lines), len(want))
        self.assertEqual([x["type"] for x in lines], [x["type"] for x in want])
        shown = self.transcript(str(row["id"]))
        self.assertEqual(shown.returncode, 0, shown.stderr)
        out = shown.stdout
        self.assertIn("== session ", out)
        self.assertIn("[turn 1]", out)
        self.assertIn("  → Bash: ", out)
        self.assertIn("  ← ", out)
        self.assertRegex(out, r"== result: success, 3 turns, \$0\.\d{4}")
        self.assertIn("All done. The command printed hi.", out)
        by_task = self.transcript("--task", str(i))
        self.assertEqual(by_task.stdout, f"### session {row['id']}\n" + out)

    def test_all_sessions_of_a_task(self):
        self.scenario(stream=MAX_TURNS)
        self.scenario(stream=SUCCESS)
        self.daemon()
        i = self.add("Two sessions.")
        self.wait_state(i, "done")
        out = self.transcript("--task", str(i)).stdout
        ids = [r["id"] for r in self.sessions()]
        self.assertIn(f"### session {ids[0]}\n", out)
        self.assertIn(f"\n### session {ids[1]}\n", out)
        self.assertIn("== result: error_max_turns (error)", out)

    def test_follow_while_it_runs(self):
        self.scenario(stream=SUCCESS, line_delay=0.3)
        self.daemon()
        i = self.add("Slowly.")
        rows = self.wait_sessions(1, ended=False)
        env = dict(os.environ)
        env.pop("JADA_AGENT_CONFIG", None)
        p = subprocess.Popen([*WRAP, BIN, "-c", self.config, "transcript", "--follow", str(rows[0]["id"])],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(self.show(i)["state"], "done")
        self.assertIn("== result: success", out)  # it read to the very end

    def test_what_was_written_survives_a_kill_9(self):
        self.scenario(stream=SUCCESS, hang_after=4)
        d = self.daemon()
        self.add("Cut short.")
        self.wait_invocations(1)
        rows = self.wait_sessions(1, ended=False)
        path = os.path.join(self.state, "transcripts", f"{rows[0]['id']}.jsonl.zst")
        deadline = time.monotonic() + TIMEOUT
        while True:
            raw = self.transcript(str(rows[0]["id"]), "--json")
            if len(raw.stdout.splitlines()) == 4:
                break
            self.assertLess(time.monotonic(), deadline, raw.stdout + raw.stderr)
            time.sleep(0.05)
        d.proc.send_signal(signal.SIGKILL)
        d.wait()
        raw = self.transcript(str(rows[0]["id"]), "--json")
        self.assertEqual(raw.returncode, 0, raw.stderr)
        self.assertEqual(len(raw.stdout.splitlines()), 4)
        self.assertTrue(os.path.getsize(path) > 0)

    def test_bad_input(self):
        self.daemon()
        r = self.transcript("42")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no session 42", r.stderr)
        r = self.transcript("--task", "42")
        self.assertEqual(r.returncode, 1)
        self.assertIn("task 42 has no sessions", r.stderr)
        for bad in (["abc"], ["1", "2"], []):
            self.assertEqual(self.transcript(*bad).returncode, 2, bad)
        # A file that is not ours.
        self.scenario(stream=SUCCESS)
        i = self.add("x")
        self.wait_state(i, "done")
        (row,) = self.sessions()
        with open(os.path.join(self.state, "transcripts", f"{row['id']}.jsonl.zst"), "wb") as f:
            f.write(b"not zstd at all\n" * 10)
        r = self.transcript(str(row["id"]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a transcript", r.stderr)

    def test_pruned_with_its_task(self):
        self.configure("[daemon]\nretention = 1h\n")
        self.scenario(stream=SUCCESS)
        d = self.daemon()
        i = self.add("Old news.")
        self.wait_state(i, "done")
        (row,) = self.sessions()
        path = os.path.join(self.state, "transcripts", f"{row['id']}.jsonl.zst")
        self.assertTrue(os.path.exists(path))
        d.stop()
        # Two hours later the task is past its retention.
        self.daemon(extra_env={"LD_PRELOAD": FAKE_CLOCK, "FAKE_REALTIME_START": str(int(time.time()) + 7200)})
        deadline = time.monotonic() + TIMEOUT
        while os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, "the transcript was not pruned")
            time.sleep(0.05)
        self.assertEqual(len(self.sessions()), 1)  # the row stays: the budget's history
