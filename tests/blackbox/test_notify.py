# SPDX-License-Identifier: MIT
"""Per-task notifications ([alerts] notify): the outbox written with the
task's move, delivered to the webhook and to [alerts] command, each once,
across failures, kill -9 and restarts; the messages a person acts on."""

import json
import os
import shlex
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import TIMEOUT
from test_sessions import FAKE, SAMPLES, SessionTest

SUCCESS = SAMPLES + "success.stream.jsonl"
CRASH = dict(lines=[{"type": "system", "subtype": "init", "session_id": "$SESSION_ID"}], exit=1)
# The first retry of a delivery comes 5 s after a failure, the second 10 s
# after that ([alerts] retries): waits that span retries get this much more.
RETRIES = 16

# A command that records what it got (stdin, the JADA_* environment and a
# few others) as one JSON line; its first runs for task events (argv[2] of
# them) fail with exit status 3.
COMMAND = r'''
import fcntl, json, os, sys
log, count = sys.argv[1], sys.argv[1] + ".count"
data = sys.stdin.read()
n = None  # alerts never fail
if os.environ.get("JADA_EVENT") not in ("alert", "recovery"):
    with open(count, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = len(f.read()) + 1
        f.write("x")
keep = ("PATH", "HOME", "ANTHROPIC_API_KEY", "NOTIFY_SOCKET")
env = {k: v for k, v in os.environ.items() if k.startswith("JADA_") or k in keep}
with open(log, "a") as f:
    f.write(json.dumps({"stdin": data, "env": env, "n": n}) + "\n")
sys.exit(3 if n is not None and n <= int(sys.argv[2]) else 0)
'''


class Hook:
    """A webhook on 127.0.0.1 answering `status` (settable) to each POST.
    Keeps the notifications' (they have an "event"), not the problem
    alerts' ({"text"} alone: test_webhook.py's business)."""

    def __init__(self, status=200):
        self.posts = []  # (status answered, parsed JSON body)
        self.status = status
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    status = hook.status
                    doc = json.loads(body)
                    if "event" in doc:
                        hook.posts.append((status, doc))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def delivered(self):
        with self.lock:
            return [b for s, b in self.posts if 200 <= s < 300]

    def wait(self, n, timeout=TIMEOUT, delivered=True):
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                got = len([p for p in self.posts if not delivered or 200 <= p[0] < 300])
            if got >= n:
                return self.delivered()
            if time.monotonic() > deadline:
                raise AssertionError(f"{got} webhook posts, not {n}: {self.posts}")
            time.sleep(0.05)


class NotifyTest(SessionTest):
    def setUp(self):
        super().setUp()
        self.hook = Hook()
        self.addCleanup(self.hook.close)
        self.command_log = os.path.join(self.tmp, "command.log")
        self.command_script = os.path.join(self.tmp, "command.py")
        with open(self.command_script, "w") as f:
            f.write(COMMAND)

    def command(self, fail_first=0):
        return f"{shlex.quote(sys.executable)} {self.command_script} {self.command_log} {fail_first}"

    def alerts(self, notify=None, webhook=True, command=None, extra="", daemon=""):
        text = "[alerts]\n"
        if webhook:
            text += f"webhook_url = {self.hook.url}\n"
        if notify is not None:
            text += f"notify = {notify}\n"
        if command:
            text += f"command = {command}\n"
        self.write_config(daemon + f"poll_interval = 1h\n[claude]\ncommand = {FAKE}\n" + extra + text)

    def commands(self, alerts=False):
        """The command's runs for task events (or, alerts=True, for problem alerts)."""
        try:
            with open(self.command_log) as f:
                runs = [json.loads(line) for line in f]
        except FileNotFoundError:
            return []
        return [r for r in runs if (r["env"]["JADA_EVENT"] in ("alert", "recovery")) == alerts]

    def wait_commands(self, n, timeout=TIMEOUT, alerts=False):
        deadline = time.monotonic() + timeout
        while len(self.commands(alerts)) < n:
            self.assertLess(time.monotonic(), deadline, f"fewer than {n} command runs: {self.commands(alerts)}; "
                                                        f"{[d.log() for d in self.daemons]}")
            time.sleep(0.05)
        return self.commands(alerts)

    def outbox(self):
        return [(r["task_id"], r["event"], int(r["webhook_done"]), int(r["command_done"])) for r in
                self.db_rows("SELECT task_id, event, webhook_done, command_done FROM notifications ORDER BY id")]

    def wait_outbox_empty(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.outbox():
            self.assertLess(time.monotonic(), deadline, f"the outbox keeps {self.outbox()}")
            time.sleep(0.05)

    def wait_log(self, d, text):
        deadline = time.monotonic() + TIMEOUT
        while text not in d.log():
            self.assertLess(time.monotonic(), deadline, d.log())
            time.sleep(0.05)

    def reply_prefix(self):
        return f"jada-agent -c {self.config}"


class Messages(NotifyTest):
    def test_needs_you_carries_the_question_and_a_reply_line_that_works(self):
        self.alerts()  # notify: the default, needs_you failed
        self.scenario(stream=SUCCESS, result_text="I looked.\nNEEDS-YOU: which branch should I deploy?")
        self.scenario(stream=SUCCESS)
        self.daemon()
        i = self.add("Deploy the site", "--title", "Deploy")
        self.wait_state(i, "needs_you")
        (body,) = self.hook.wait(1)
        reply = f'{self.reply_prefix()} task reply {i} "..."'
        self.assertEqual(body["text"], f'Task {i} "Deploy" needs you: which branch should I deploy?\nReply: {reply}')
        self.assertEqual(body["event"], "needs_you")
        self.assertEqual(body["task_id"], i)
        self.assertEqual(body["title"], "Deploy")
        self.assertEqual(body["reply_command"], reply)
        self.assertNotIn("url", body)  # [web] is off
        # The line as a person would run it, with their answer for "...".
        argv = shlex.split(body["reply_command"])
        self.assertEqual(argv[0], "jada-agent")
        argv[-1] = "main, please"
        r = self.run_cli(*argv[1:])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_state(i, "done")
        self.assertEqual(self.invocations()[1]["stdin"], "main, please")
        self.wait_outbox_empty()  # done is not wanted: dropped, not sent
        time.sleep(0.5)
        self.assertEqual(len(self.hook.posts), 1, self.hook.posts)

    def test_failed_and_done_with_the_dashboard_url(self):
        self.alerts(notify="needs_you failed done",
                    extra="max_attempts = 1\n[web]\nlisten = 127.0.0.1:8780\nurl = https://jada.example/\n")
        self.scenario(stream=SUCCESS)
        self.scenario(**CRASH)
        self.daemon()
        ok = self.add("say hi", "--title", "Greet")
        self.wait_state(ok, "done")
        self.hook.wait(1)
        bad = self.add("crash", "--title", "Crash")
        error = self.wait_state(bad, "failed")["error"]
        done, failed = self.hook.wait(2)
        self.assertEqual(done["text"], f'Task {ok} "Greet" is done.\nAll done. The command printed hi.\n'
                                       f"https://jada.example/tasks/{ok}")
        self.assertEqual((done["event"], done["url"]), ("done", f"https://jada.example/tasks/{ok}"))
        self.assertNotIn("reply_command", done)
        self.assertEqual(failed["text"], f'Task {bad} "Crash" failed: {error}\n'
                                         f"Retry: {self.reply_prefix()} task retry {bad}\n"
                                         f"https://jada.example/tasks/{bad}")
        self.assertEqual(failed["event"], "failed")

    def test_notify_words_choose_the_events(self):
        self.alerts(notify="done")
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: which one?")
        self.scenario(stream=SUCCESS)
        self.daemon()
        asks = self.add("ask")
        self.wait_state(asks, "needs_you")
        finishes = self.add("finish")
        self.wait_state(finishes, "done")
        (body,) = self.hook.wait(1)
        self.assertEqual((body["event"], body["task_id"]), ("done", finishes))
        self.wait_outbox_empty()
        time.sleep(0.5)
        self.assertEqual(len(self.hook.posts), 1, self.hook.posts)

    def test_a_huge_question_and_result_are_bounded(self):
        self.alerts(notify="needs_you done")
        question = "Which of these? " + "é" * 100000
        result = "".join(f"line {n}\n" for n in range(1000))
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: " + question)
        self.scenario(stream=SUCCESS, result_text=result)
        self.daemon()
        i = self.add("ask")
        self.wait_state(i, "needs_you")
        j = self.add("long")
        self.wait_state(j, "done")
        asked, done = self.hook.wait(2)
        head = asked["text"].split("\nReply: ")[0]
        self.assertTrue(head.startswith(f'Task {i} "ask" needs you: Which of these? éé'), head[:80])
        self.assertTrue(head.endswith("é…"), head[-20:])  # cut between characters, never inside one
        self.assertLess(len(asked["text"].encode()), 2048)
        lines = done["text"].split("\n")
        self.assertEqual(lines[1:11], [f"line {n}" for n in range(9)] + ["line 9…"])
        self.assertEqual(len(lines), 11)

    def test_the_command_line_marking_done_notifies(self):
        self.alerts(notify="done")
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: ship it?")
        d = self.daemon()
        i = self.add("ship", "--title", "Ship")
        self.wait_state(i, "needs_you")
        self.wait_outbox_empty()  # needs_you: not wanted
        r = self.run_cli("-c", self.config, "task", "done", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        (body,) = self.hook.wait(1)  # the command line woke the daemon
        self.assertEqual(body["event"], "done")
        self.assertTrue(body["text"].startswith(f'Task {i} "Ship" is done.'), body["text"])
        self.assertIn(f"task {i}'s done notification delivered to the webhook", d.log())


class Delivery(NotifyTest):
    def test_webhook_down_then_up_delivers_once(self):
        self.alerts()
        self.hook.status = 500
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: ok?")
        d = self.daemon()
        i = self.add("x")
        self.hook.wait(2, delivered=False)  # the first try and the first retry fail
        self.assertEqual(self.outbox(), [(i, "needs_you", 0, 0)])
        self.hook.status = 200
        self.hook.wait(1, timeout=TIMEOUT + RETRIES)
        self.wait_outbox_empty()
        time.sleep(1)
        self.assertEqual([s for s, _ in self.hook.posts], [500, 500, 200])
        self.assertEqual(len({json.dumps(b) for _, b in self.hook.posts}), 1)  # the same message each time
        self.assertIn("failed: HTTP 500; retrying in 5s", d.log())

    def test_kill_9_while_the_webhook_is_down_then_restart_delivers_once(self):
        self.alerts()
        self.hook.status = 503
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: ok?")
        d = self.daemon()
        i = self.add("x")
        self.hook.wait(1, delivered=False)
        d.signal(signal.SIGKILL)
        d.wait()
        self.assertEqual(self.outbox(), [(i, "needs_you", 0, 0)])
        self.hook.status = 200
        self.daemon()
        (body,) = self.hook.wait(1)
        self.assertEqual(body["task_id"], i)
        self.wait_outbox_empty()
        time.sleep(1)
        self.assertEqual([s for s, _ in self.hook.posts], [503, 200])

    def test_a_restart_after_delivery_sends_nothing_again(self):
        self.alerts(notify="needs_you failed done")
        self.scenario(stream=SUCCESS)
        d = self.daemon()
        self.wait_state(self.add("x"), "done")
        self.hook.wait(1)
        self.wait_outbox_empty()
        d.stop()
        d2 = self.daemon(args=("-v",))
        self.wait_log(d2, "poll #1")  # it looked at the outbox
        time.sleep(1)
        self.assertEqual(len(self.hook.posts), 1, self.hook.posts)

    def test_a_pruned_task_takes_its_notifications(self):
        self.alerts(notify="done", daemon="retention = 1d\n")
        self.hook.status = 503
        self.scenario(stream=SUCCESS)
        d = self.daemon()
        i = self.add("x")
        self.wait_state(i, "done")
        self.hook.wait(1, delivered=False)
        d.signal(signal.SIGKILL)
        d.wait()
        self.sql("UPDATE tasks SET updated_at = ? WHERE id = ?", int(time.time()) - 3 * 86400, i)
        self.assertEqual(len(self.outbox()), 1)
        self.hook.status = 200
        d2 = self.daemon(args=("-v",))
        self.wait_log(d2, "pruned 1 done or cancelled task")
        self.wait_log(d2, "poll #1")
        self.assertEqual(self.outbox(), [])
        time.sleep(1.5)
        self.assertEqual(self.hook.delivered(), [])


class Command(NotifyTest):
    def test_the_command_gets_the_message_on_stdin_and_its_environment(self):
        self.alerts(webhook=False, command=self.command(),
                    extra="[web]\nlisten = 127.0.0.1:8780\n")
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: may I?")
        self.daemon()
        i = self.add("x", "--title", "Ask 'me'")
        self.wait_state(i, "needs_you")
        (run,) = self.wait_commands(1)
        url = f"http://127.0.0.1:8780/tasks/{i}"
        self.assertEqual(run["stdin"], f'Task {i} "Ask \'me\'" needs you: may I?\n'
                                       f'Reply: {self.reply_prefix()} task reply {i} "..."\n{url}\n')
        env = run["env"]
        self.assertEqual(env["JADA_EVENT"], "needs_you")
        self.assertEqual(env["JADA_TASK_ID"], str(i))
        self.assertEqual(env["JADA_TASK_TITLE"], "Ask 'me'")
        self.assertEqual(env["JADA_URL"], url)
        self.assertIn("PATH", env)
        self.assertNotIn("ANTHROPIC_API_KEY", env)  # nothing of the daemon's
        self.assertNotIn("NOTIFY_SOCKET", env)
        self.wait_outbox_empty()

    def test_a_failing_command_is_retried(self):
        self.alerts(webhook=False, command=self.command(fail_first=1))
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: again?")
        d = self.daemon()
        self.add("x")
        first, second = self.wait_commands(2, timeout=TIMEOUT + RETRIES)
        self.assertEqual(first["stdin"], second["stdin"])
        self.wait_outbox_empty()
        time.sleep(1)
        self.assertEqual(len(self.commands()), 2)
        self.assertIn("to the command failed: exit status 3; retrying in 5s", d.log())

    def test_both_channels_get_it_once_each(self):
        self.alerts(command=self.command())
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: both?")
        self.daemon()
        i = self.add("x")
        (body,) = self.hook.wait(1)
        (run,) = self.wait_commands(1)
        self.assertEqual(run["stdin"], body["text"] + "\n")
        self.wait_outbox_empty()
        time.sleep(1)
        self.assertEqual((len(self.hook.posts), len(self.commands())), (1, 1))
        self.assertEqual(body["task_id"], i)

    def test_problem_alerts_go_to_the_command_too(self):
        self.alerts(webhook=False, command=self.command())
        self.scenario(stream=SAMPLES + "401.stream.jsonl")
        self.daemon()
        self.add("x")
        (run,) = self.wait_commands(1, alerts=True)
        self.assertEqual(run["env"]["JADA_EVENT"], "alert")
        self.assertRegex(run["stdin"], r"^jada-agent on .+: ALERT: Anthropic API key rejected \(HTTP 401\)")
