# SPDX-License-Identifier: MIT
"""Secrets never reach a log, the db or a state file: a daemon that runs a
Claude session and a Google sync (with a token refresh) is searched, journal
stand-in, stderr, the db with its WAL, every file of the state dir and
every page and API answer of the dashboard, for the API key, the client
secret and the refresh and access tokens it used. The only allowed places
are the credential and the token file."""

import http.client
import json
import os
import time

import harness
from harness import TIMEOUT, needs_root
from test_sessions import FAKE, SAMPLES
from test_sync import SyncTest
from test_web import free_port

API_KEY = "sk-ant-test-secret-5f1c0e9a7b2d"
CLIENT_SECRET = "client-secret-9d8e7f6a5b4c"
REFRESH = "refresh-token-3c2b1a0f9e8d"


class Secrets(SyncTest):
    def web(self, port, path):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
        r = conn.getresponse()
        body = r.read().decode("utf-8")
        conn.close()
        self.assertEqual(r.status, 200, path)
        return body

    @needs_root
    def test_no_secret_outside_the_credential_and_token_files(self):
        scenarios = os.path.join(self.tmp, "scenarios")
        os.makedirs(scenarios)
        with open(os.path.join(scenarios, "default.json"), "w") as f:
            json.dump({"stream": SAMPLES + "success.stream.jsonl"}, f)
        self.write_token({"refresh_token": REFRESH})
        port = free_port()
        self.sheets_config(f"[claude]\ncommand = {FAKE}\n[web]\nlisten = 127.0.0.1:{port}\n")
        d = self.start(extra_env={"GOOGLE_CLIENT_SECRET": CLIENT_SECRET, "ANTHROPIC_API_KEY": API_KEY,
                                  "FAKE_CLAUDE_SCENARIOS": scenarios}, journal=True)
        d.notify.wait_field("READY=1")
        self.wait_runs(1, d)  # a refresh and a sync
        r = self.run_cli("-c", self.config, "task", "add", "say hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + TIMEOUT
        while '"state": "done"' not in self.run_cli("-c", self.config, "task", "show", "1", "--json").stdout:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.sync_now()
        self.wait_runs(2, d)
        stats = self.google.stats()
        access = [f"fake-access-{n}" for n in range(1, stats["token"] + 1)]
        self.assertTrue(access)
        # What the dashboard serves: every page and API answer, each task's.
        ids = [t["id"] for t in json.loads(self.web(port, "/api/tasks"))]
        self.assertEqual(ids, [1])
        paths = ["/", "/tasks", "/sessions", "/api/status", "/api/tasks", "/api/sessions", "/metrics"]
        paths += [f"/tasks/{i}" for i in ids] + [f"/api/tasks/{i}" for i in ids]
        served = {f"web {p}": self.web(port, p) for p in paths}
        self.assertIn("[turn 1]", served["web /tasks/1"])  # its transcript, rendered
        d.journal.drain(0.5)
        d.stop()

        secrets = [API_KEY, CLIENT_SECRET, REFRESH] + access
        places = {"journal": json.dumps(d.journal.entries), "stderr": d.log(), **served}
        for root, _, files in os.walk(self.state):
            for name in files:
                path = os.path.join(root, name)
                if name == "google-token.json":
                    continue  # the token file: tokens belong there
                if name.endswith(".jsonl.zst"):
                    # A transcript is compressed: searched as the command line shows it.
                    r = self.run_cli("-c", self.config, "transcript", "--json", name.split(".")[0])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    places[os.path.relpath(path, self.state)] = r.stdout
                    continue
                with open(path, "rb") as f:
                    places[os.path.relpath(path, self.state)] = f.read().decode("latin-1")
        if self.on_postgresql():
            # The fleet's database: every row of it (conversations are
            # bytea, zstd: what matters is that the daemon's rows say none).
            places["the fleet's database"] = harness.POSTGRESQL.dump(self.database_name)
            self.assertIn("say hi", places["the fleet's database"])  # the search can find what is there
        else:
            self.assertIn("jada-agent.db", places)
        self.assertTrue(any(p.startswith("transcripts/") for p in places), list(places))
        self.assertGreater(len(d.journal.entries), 5)
        for where, text in places.items():
            for secret in secrets:
                self.assertNotIn(secret, text, f"{secret[:12]}... found in {where}")
        with open(os.path.join(self.state, "google-token.json")) as f:
            self.assertIn(REFRESH, f.read())  # the search can find what is there
