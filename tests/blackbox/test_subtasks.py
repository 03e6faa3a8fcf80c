# SPDX-License-Identifier: MIT
"""Sub-tasks and after-tasks: a session splits its task through the CLI
(JADA_TASK_ID, JADA_AGENT_CONFIG), the parent waits, its children run, and
the parent resumes its conversation with their results; --after-task
chains; cancel cascading; the limits, each refused with exit 1 and nothing
changed."""

import json
import os
import shlex

from harness import BIN
from test_sessions import SAMPLES, SessionTest

SUCCESS = SAMPLES + "success.stream.jsonl"
# A run that never reaches a result: with max_attempts = 1 the task fails.
CRASH = dict(lines=[{"type": "system", "subtype": "init", "session_id": "$SESSION_ID"}], exit=1)


def split_into(*titles):
    """The shell line of a session that adds sub-tasks of its own task,
    with no -c: the session's environment must lead the CLI to the db."""
    cli = shlex.quote(os.path.abspath(BIN))
    return "; ".join(f"printf 'Do part {t}.' | {cli} task add --parent \"$JADA_TASK_ID\" --title {shlex.quote(t)} -"
                     for t in titles)


class SubTaskTest(SessionTest):
    CONFIG = "sessions_per_day = 50\nmax_attempts = 1\n"

    def cli(self, *args, input=None, env=None):
        return self.run_cli("-c", self.config, *args, input=input, env=env)

    def count_tasks(self):
        return self.db_value("SELECT count(*) FROM tasks")

    def refused(self, *args, words, env=None):
        before = self.count_tasks()
        r = self.cli("task", "add", *args, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(words, r.stderr)
        self.assertEqual(self.count_tasks(), before, "a refused add changed the queue")
        return r


class Split(SubTaskTest):
    def run_split(self, child_scenarios):
        self.scenario(stream=SUCCESS, run=split_into("A", "B"), result_text="Split into two parts.")
        for kw in child_scenarios:
            self.scenario(**kw)
        self.scenario(stream=SUCCESS, result_text="Parent finished with both parts.")
        self.daemon()
        p = self.add("A big job.", "--title", "Big")
        t = self.wait_state(p, "done")
        runs = self.wait_invocations(4)
        self.assertEqual(len(runs), 4, runs)
        return p, t, runs

    def test_a_reply_while_sub_tasks_run_waits_for_them(self):
        # The parent asks a question after splitting; the person answers
        # while the part still runs: the parent waits, and its next session
        # gets both the answer and the part's result.
        self.scenario(stream=SUCCESS, run=split_into("A"), result_text="NEEDS-YOU: blue or green?")
        self.scenario(stream=SUCCESS, line_delay=0.5, result_text="Result of part A.")
        self.scenario(stream=SUCCESS, result_text="Parent done.")
        self.daemon()
        p = self.add("A big job.", "--title", "Big")
        self.wait_state(p, "needs_you")
        self.wait_sessions(2, ended=False)
        r = self.cli("task", "reply", str(p), "Green.")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.show(p)["state"], "waiting")
        t = self.wait_state(p, "done")
        runs = self.wait_invocations(3)
        self.assertIn("--resume", runs[2]["argv"])
        self.assertTrue(runs[2]["stdin"].startswith("Green.\n\n"), runs[2]["stdin"])
        self.assertIn("Result of part A.", runs[2]["stdin"])
        self.assertEqual(t["result"], "Parent done.")

    def test_children_wait_for_the_parents_session_to_end(self):
        # Two sessions at a time: the child must not run while its parent's
        # session goes on, or it could end first and its result be lost.
        self.configure(self.CONFIG + "concurrency = 2\n")
        self.scenario(stream=SUCCESS, run=split_into("A"), line_delay=0.4, result_text="Split.")
        self.scenario(stream=SUCCESS, result_text="Result of part A.")
        self.scenario(stream=SUCCESS, result_text="Parent done.")
        self.daemon()
        p = self.add("A big job.", "--title", "Big")
        t = self.wait_state(p, "done")
        runs = self.wait_invocations(3)
        self.assertEqual([r["env"]["JADA_TASK_ID"] for r in runs][::2], [str(p), str(p)])
        self.assertIn("Result of part A.", runs[2]["stdin"])
        self.assertEqual(t["result"], "Parent done.")
        rows = self.sessions()
        self.assertGreaterEqual(rows[1]["started_at"], rows[0]["ended_at"])

    def test_parent_waits_children_run_parent_resumes_done(self):
        p, t, runs = self.run_split([dict(stream=SUCCESS, result_text="Result of part A."),
                                     dict(stream=SUCCESS, result_text="Result of part B.")])
        a, b = (int(x) for x in runs[0]["ran"].split())
        self.assertEqual(runs[0]["env"]["JADA_TASK_ID"], str(p))
        self.assertIn("--parent", runs[0]["argv"][runs[0]["argv"].index("--append-system-prompt") + 1])
        self.assertEqual([r["env"]["JADA_TASK_ID"] for r in runs], [str(p), str(a), str(b), str(p)])
        self.assertEqual(runs[1]["stdin"], "Do part A.")
        # The parent's last run resumes its own conversation with the results.
        last = runs[3]
        self.assertIn("--resume", last["argv"])
        self.assertEqual(last["argv"][last["argv"].index("--resume") + 1], runs[0]["session_id"])
        for words in (f"Sub-task {a}: A", f"Sub-task {b}: B", "Result of part A.", "Result of part B.", "state: done"):
            self.assertIn(words, last["stdin"])
        self.assertEqual(t["result"], "Parent finished with both parts.")
        self.assertIn(f"task {p} waits for its sub-tasks (not done)", self.daemons[0].log())
        self.assertEqual(t["parent"], None)
        self.assertEqual([c["id"] for c in t["children"]], [a, b])
        self.assertEqual({c["state"] for c in t["children"]}, {"done"})
        self.assertEqual(self.show(a)["parent"], p)
        self.assertIn("waiting", [e["new_state"] for e in t["events"]])
        # The tree, children indented under their parent.
        out = self.cli("task", "list", "--tree").stdout.splitlines()
        rows = [line for line in out[1:]]
        self.assertEqual([int(line.split()[0]) for line in rows], [p, a, b])
        self.assertIn("  A", rows[1])
        self.assertNotIn("  Big", rows[0].split("done", 1)[1][:8])

    def test_a_failing_child_is_reported_to_the_parent(self):
        p, t, runs = self.run_split([CRASH, dict(stream=SUCCESS, result_text="Result of part B.")])
        a, b = (int(x) for x in runs[0]["ran"].split())
        self.assertEqual(self.show(a)["state"], "failed")
        self.assertIn("state: failed", runs[3]["stdin"])
        self.assertIn(f"Sub-task {a}: A", runs[3]["stdin"])
        self.assertIn("Result of part B.", runs[3]["stdin"])


class After(SubTaskTest):
    def test_chain_runs_in_order_despite_priorities(self):
        for text in ("first", "second", "third"):
            self.scenario(stream=SUCCESS, result_text=f"{text} done")
        a = self.add("Step one.")
        b = self.add("Step two.", "--priority", "5", "--after-task", str(a))
        c = self.add("Step three.", "--priority", "9", "--after-task", f"{b},{a}")
        self.assertEqual([x["id"] for x in self.show(c)["after"]], [a, b])
        self.daemon()
        self.wait_state(c, "done")
        self.assertEqual([r["stdin"] for r in self.invocations()], ["Step one.", "Step two.", "Step three."])

    def test_a_failing_link_needs_you_and_nothing_after_it_runs(self):
        self.scenario(**CRASH)
        a = self.add("Step one.")
        b = self.add("Step two.", "--after-task", str(a))
        c = self.add("Step three.", "--after-task", str(b))
        self.daemon()
        self.wait_state(a, "failed")
        t = self.wait_state(b, "needs_you")
        self.assertIn(f"task {a}", t["needs_you_reason"])
        self.assertIn("failed", t["needs_you_reason"])
        self.wake()
        self.assertEqual(self.show(c)["state"], "queued")
        self.assertEqual(len(self.invocations()), 1)

    def test_unknown_and_cycles_refused(self):
        p = self.add("Parent.")
        q = self.add("After the parent.", "--after-task", str(p))
        self.refused("--after-task", "999", "x", words="no task 999")
        self.refused("--parent", str(p), "--after-task", str(p), "x", words="cycle")
        self.refused("--parent", str(p), "--after-task", str(q), "x", words="cycle")
        r = self.cli("task", "add", "--after-task", "a,b", "x")
        self.assertEqual(r.returncode, 2)


class Cancel(SubTaskTest):
    def test_cancel_cascades_to_unfinished_children(self):
        p = self.add("Parent.")
        c1 = self.add("Child one.", "--parent", str(p))
        c2 = self.add("Child two.", "--parent", str(p))
        g = self.add("Grandchild.", "--parent", str(c1))
        self.sql("UPDATE tasks SET state = 'done' WHERE id = ?", c2)
        r = self.cli("task", "cancel", str(p))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 unfinished sub-tasks cancelled", r.stdout)
        self.assertEqual([self.show(i)["state"] for i in (p, c1, c2, g)], ["cancelled", "cancelled", "done", "cancelled"])
        self.assertIn(f"its parent task {p} was cancelled", self.show(g)["events"][-1]["reason"])


class Limits(SubTaskTest):
    CONFIG = SubTaskTest.CONFIG + "max_task_depth = 2\nmax_children_per_task = 2\n"

    def test_each_limit_refused_with_nothing_changed(self):
        p = self.add("Parent.", "--priority", "4")
        c = self.add("Child.", "--parent", str(p))
        self.assertEqual(self.show(c)["priority"], 4)
        self.refused("--parent", str(c), "x", words="max_task_depth")
        self.add("Second child.", "--parent", str(p))
        self.refused("--parent", str(p), "x", words="max_children_per_task")
        self.refused("--parent", "999", "x", words="no task 999")
        d = self.add("Done one.")
        self.sql("UPDATE tasks SET state = 'done' WHERE id = ?", d)
        self.refused("--parent", str(d), "x", words="done")
        k = self.add("Cancelled one.")
        self.assertEqual(self.cli("task", "cancel", str(k)).returncode, 0)
        self.refused("--parent", str(k), "x", words="cancelled")
        # In a session, only sub-tasks of its own task.
        self.refused("--parent", str(d), "x", env={"JADA_TASK_ID": str(p)}, words="JADA_TASK_ID")
        other = self.add("Another.")
        r = self.cli("task", "add", "--parent", str(other), "ok", env={"JADA_TASK_ID": str(other)})
        self.assertEqual(r.returncode, 0, r.stderr)
        # status counts waiting tasks.
        self.sql("UPDATE tasks SET state = 'waiting' WHERE id = ?", other)
        status = json.loads(self.cli("status", "--json").stdout)
        self.assertEqual(status["queue"]["waiting"], 1)
