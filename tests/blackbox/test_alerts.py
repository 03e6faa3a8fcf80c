# SPDX-License-Identifier: MIT
"""Every alert kind, entering and leaving: exactly one journal entry each
way (priority err, then notice, with the kind's MESSAGE_ID) and one webhook
POST each way; and the Prometheus textfile, read by a strict parser."""

import os
import re
import subprocess
import time

from harness import TIMEOUT, needs_root
from test_sessions import FAKE, SAMPLES, SessionTest
from test_webhook import Hook


class AlertTest(SessionTest):
    def setUp(self):
        super().setUp()
        self.hook = Hook()
        self.addCleanup(self.hook.close)
        self.configure(self.CONFIG)  # again, now with the hook

    def configure(self, extra=""):
        hook = getattr(self, "hook", None)
        alerts = f"[alerts]\nwebhook_url = {hook.url}\n" if hook else ""
        self.write_config(f"poll_interval = 1s\n[claude]\ncommand = {FAKE}\n" + extra + alerts)

    def entries(self, d, kind):
        d.journal.drain(0.2)
        return [e for e in d.journal.entries if e.get("JADA_ALERT") == kind]

    def wait_entries(self, d, kind, n):
        deadline = time.monotonic() + TIMEOUT
        while len(self.entries(d, kind)) < n:
            self.assertLess(time.monotonic(), deadline, f"{kind}: {self.entries(d, kind)}")
        return self.entries(d, kind)

    def assert_in_and_out(self, d, kind, text):
        """After the leaving step: one err and one notice, in that order,
        and the same two on the webhook."""
        e = self.wait_entries(d, kind, 2)
        time.sleep(1.5)  # a second poll or two: nothing more may come
        e = self.entries(d, kind)
        self.assertEqual([x["PRIORITY"] for x in e], ["3", "5"], e)
        self.assertRegex(e[0]["MESSAGE_ID"], r"^[0-9a-f]{32}$")
        self.assertNotEqual(e[0]["MESSAGE_ID"], e[1]["MESSAGE_ID"])
        self.assertIn(text, e[0]["MESSAGE"])
        self.hook.wait(2)
        texts = [t for t in self.hook.texts() if text in t]
        self.assertEqual(len(texts), 2, self.hook.texts())
        self.assertIn("ALERT:", texts[0])
        self.assertIn("RECOVERED:", texts[1])


class Kinds(AlertTest):
    @needs_root
    def test_needs_you(self):
        self.scenario(stream=SAMPLES + "success.stream.jsonl", result_text="NEEDS-YOU: which one?")
        d = self.daemon(journal=True)
        i = self.add("x")
        self.wait_state(i, "needs_you")
        self.wait_entries(d, "needs_you", 1)
        r = self.run_cli("-c", self.config, "task", "done", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_in_and_out(d, "needs_you", "1 task needs you")

    @needs_root
    def test_budget_spent_while_tasks_wait(self):
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        self.configure("sessions_per_day = 1\n")
        self.add("a")
        b = self.add("b")
        d = self.daemon(journal=True)
        self.wait_entries(d, "budget_spent", 1)
        r = self.run_cli("-c", self.config, "task", "cancel", str(b))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_in_and_out(d, "budget_spent", "1 task wait")

    @needs_root
    def test_turn_limit_share(self):
        self.configure("max_turns = 3\nmax_sessions_per_task = 1\nsessions_per_day = 50\n")
        for _ in range(3):
            self.scenario(stream=SAMPLES + "max_turns.stream.jsonl")
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        for n in range(3):
            self.add(f"long {n}")
        d = self.daemon(journal=True)
        self.wait_entries(d, "max_turns", 1)
        for n in range(7):  # 3 of 10 is not more than 30%
            self.add(f"short {n}")
        self.assert_in_and_out(d, "max_turns", "of the week's sessions hit the turn limit")

    @needs_root
    def test_disk_nearly_full(self):
        mnt = os.path.join(self.tmp, "small")
        os.makedirs(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        self.state = os.path.join(mnt, "state")
        self.configure("")
        d = self.daemon(journal=True)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:  # leave about 5% free
            st = os.statvfs(mnt)
            f.write(b"\0" * int(st.f_bavail * st.f_frsize - 0.05 * st.f_blocks * st.f_frsize))
        self.wait_entries(d, "disk", 1)
        os.unlink(filler)
        self.assert_in_and_out(d, "disk", "free on the disk of")


# Prometheus text format 0.0.4, strictly: every sample's family has HELP and
# TYPE before it, names and labels are well formed, values are numbers, no
# series twice, no family split.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf'^({NAME})(\{{({NAME}="(?:[^"\\\n]|\\.)*"(?:,{NAME}="(?:[^"\\\n]|\\.)*")*)?\}})? '
                    r'(-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\+Inf|-Inf|NaN))$')


def parse_prometheus(text):
    assert text.endswith("\n"), "the file must end with a newline"
    helps, types, seen, done, current, out = {}, {}, set(), set(), None, {}
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and name not in helps and doc, line
            helps[name] = doc
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types and name not in done, line
            types[name] = kind
            if current:
                done.add(current)
            current = name
        elif line.startswith("#") or not line:
            raise AssertionError(f"unexpected line {line!r}")
        else:
            m = SAMPLE.match(line)
            assert m, f"bad sample {line!r}"
            name, labels, value = m.group(1), m.group(3) or "", m.group(4)
            assert name == current and name in helps, f"{name} outside its family"
            assert (name, labels) not in seen, f"duplicate series {line!r}"
            seen.add((name, labels))
            out[name + ("{" + labels + "}" if labels else "")] = float(value)
    return out


class Metrics(AlertTest):
    def test_textfile_is_valid_and_true(self):
        path = os.path.join(self.tmp, "jada.prom")
        self.configure(f"[metrics]\ntextfile = {path}\n")
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl", result_text="NEEDS-YOU: ok?")
        self.add("x")
        d = self.daemon()
        self.wait_state(1, "needs_you")
        deadline = time.monotonic() + TIMEOUT
        while True:
            with open(path) as f:
                m = parse_prometheus(f.read())
            if m.get('jada_agent_tasks{state="needs_you"}') == 1:
                break
            self.assertLess(time.monotonic(), deadline, m)
            time.sleep(0.2)
        self.assertEqual(m["jada_agent_up"], 1)
        self.assertEqual(m['jada_agent_problem{kind="needs_you"}'], 1)
        self.assertEqual(m['jada_agent_problem{kind="api_key"}'], 0)
        self.assertEqual(m["jada_agent_sessions_today"], 1)
        self.assertAlmostEqual(m["jada_agent_cost_today_usd"], 0.149708)
        self.assertGreater(m["jada_agent_resident_memory_bytes"], 1e6)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        d.stop()
        with open(path) as f:
            self.assertEqual(parse_prometheus(f.read())["jada_agent_up"], 0)

    def test_the_parser_is_strict(self):
        good = "# HELP a x\n# TYPE a gauge\na 1\n"
        self.assertEqual(parse_prometheus(good), {"a": 1.0})
        for bad in ("a 1\n", "# HELP a x\n# TYPE a gauge\na one\n", "# HELP a x\n# TYPE a gauge\na 1",
                    "# HELP a x\n# TYPE a gauge\na{b=c} 1\n", "# HELP a x\n# TYPE a gauge\na 1\na 2\n",
                    "# HELP a x\n# TYPE a bogus\na 1\n"):
            with self.assertRaises(AssertionError, msg=bad):
                parse_prometheus(bad)
