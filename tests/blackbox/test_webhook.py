# SPDX-License-Identifier: MIT
"""Alerts reach [alerts] webhook_url as JSON {"text": ...}, once per
transition, retried when the hook fails."""

import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import TIMEOUT
from test_sessions import SAMPLES, SessionTest


class Hook:
    """A webhook on 127.0.0.1 that answers `fail_first` POSTs with 500."""

    def __init__(self, fail_first=0):
        self.posts = []
        self.fail_first = fail_first
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.posts.append((self.headers.get("Content-Type"), body))
                status = 500 if len(hook.posts) <= hook.fail_first else 200
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

    def texts(self):
        return [json.loads(b)["text"] for _, b in self.posts]

    def wait(self, n):
        deadline = time.monotonic() + TIMEOUT
        while len(self.posts) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.posts)} webhook posts, not {n}")
            time.sleep(0.05)


class Webhook(SessionTest):
    def test_alert_and_recovery_reach_the_hook_once_each(self):
        hook = Hook(fail_first=1)
        self.addCleanup(hook.close)
        self.configure(f"[alerts]\nwebhook_url = {hook.url}\n")
        self.scenario(stream=SAMPLES + "401.stream.jsonl")
        self.default_scenario(stream=SAMPLES + "success.stream.jsonl")
        d = self.daemon()
        self.add("first")
        d.notify.wait_for(lambda m: "API key rejected" in m)
        self.add("second")  # no new alert for the same problem
        hook.wait(2)  # the first POST got a 500: retried after 5 s
        self.assertEqual(hook.posts[0], hook.posts[1])
        ctype, body = hook.posts[1]
        self.assertEqual(ctype, "application/json")
        text = json.loads(body)["text"]
        self.assertRegex(text, r"^jada-agent on .+: ALERT: Anthropic API key rejected \(HTTP 401\)")
        d.signal(signal.SIGHUP)
        hook.wait(3)
        self.assertIn("RECOVERED: Anthropic API key rejected", hook.texts()[2])
        self.wait_state(2, "done")
        time.sleep(0.5)
        self.assertEqual(len(hook.posts), 3)
