# SPDX-License-Identifier: MIT
"""The port-sheet sync through the real daemon, against a fake Google
(tests/fake/fake_google_sheets.py: token endpoint and Sheets values.get /
values.update with scripted answers): the start-up sync, `sync --now`,
failures that leave the data alone, a hanging Google while the loop keeps
feeding the watchdog, the progress push, and no hammering."""

import json
import os
import stat
import subprocess
import sys
import time
import urllib.request

from harness import REPO, TIMEOUT, TempStateTest

FAKE = os.path.join(REPO, "tests", "fake", "fake_google_sheets.py")
SHEET = {"values": [["port", "city"], ["Hamburg", "DE"], ["Rotterdam"]]}


class FakeGoogle:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE], stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=TIMEOUT)
        self.proc.stdout.close()

    def call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        with urllib.request.urlopen(self.url + path, data=data, timeout=TIMEOUT) as r:
            return json.loads(r.read())

    def sheet(self, values):
        self.call("/_sheet", {"values": values})

    def script(self, **kinds):
        self.call("/_script", kinds)

    def stats(self):
        return self.call("/_stats")

    def revoke(self, refresh):
        """The user revoked access: every access token issued so far is
        refused (401); with refresh, the refresh token too (invalid_grant)."""
        self.call("/_revoke", {"refresh": refresh})


class SyncTest(TempStateTest):
    def setUp(self):
        super().setUp()
        self.google = FakeGoogle()
        self.addCleanup(self.google.close)
        self.google.sheet(SHEET["values"])
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        self.write_token({"refresh_token": "refresh-1"})

    def write_token(self, token):
        path = os.path.join(self.state, "google-token.json")
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(token, f)
        os.rename(path + ".tmp", path)

    def sheets_config(self, extra="", enabled="yes"):
        self.write_config(
            "[sheets]\n"
            f"enabled = {enabled}\n"
            "spreadsheet_id = SHEET-1\n"
            "range = 'Port list'!A1:Z\n"
            "interval = 1min\n"
            "client_id = client-1\n"
            f"token_url = {self.google.url}/token\n"
            f"api_url = {self.google.url}\n" + extra)

    def start_daemon(self, extra_env=None):
        env = {"GOOGLE_CLIENT_SECRET": "test-secret"}
        env.update(extra_env or {})
        d = self.start(extra_env=env)
        d.notify.wait_field("READY=1")
        return d

    def runs(self):
        return self.db_rows("SELECT * FROM sync_runs WHERE ended_at IS NOT NULL ORDER BY id")

    def port_sheet_rows(self):
        return [json.loads(r["data"]) for r in self.db_rows("SELECT data FROM port_sheet ORDER BY row")]

    def wait_runs(self, n, daemon):
        deadline = time.monotonic() + TIMEOUT
        while True:
            runs = self.runs() if self.on_postgresql() or os.path.exists(os.path.join(self.state, "jada-agent.db")) \
                else []
            if len(runs) >= n:
                return runs
            if time.monotonic() > deadline:
                if daemon.journal:
                    daemon.journal.drain(0.2)
                journal = "\n".join(e.get("MESSAGE", "") for e in daemon.journal.entries) if daemon.journal else ""
                self.fail(f"{len(runs)} finished sync runs, not {n}; log:\n{daemon.log()}{journal}")
            time.sleep(0.05)

    def port_file(self):
        with open(os.path.join(self.state, "port-sheet.json")) as f:
            return f.read()

    def sync_now(self):
        r = self.run_cli("-c", self.config, "sync", "--now")
        self.assertEqual(r.returncode, 0, r.stderr)


class StartupAndNow(SyncTest):
    def test_startup_sync_writes_table_and_file(self):
        self.sheets_config()
        d = self.start_daemon()
        runs = self.wait_runs(1, d)
        self.assertEqual((runs[0]["ok"], runs[0]["changed"], runs[0]["rows"], runs[0]["http_status"]),
                         (1, 1, 2, 200), runs)
        self.assertIsNone(runs[0]["error"])
        doc = json.loads(self.port_file())
        self.assertEqual(doc["spreadsheet_id"], "SHEET-1")
        self.assertEqual(doc["range"], "'Port list'!A1:Z")
        self.assertEqual(doc["columns"], ["port", "city"])
        self.assertEqual(doc["rows"], [{"port": "Hamburg", "city": "DE"}, {"port": "Rotterdam", "city": ""}])
        self.assertRegex(doc["synced_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        mode = stat.S_IMODE(os.stat(os.path.join(self.state, "port-sheet.json")).st_mode)
        self.assertEqual(mode & 0o007, 0, oct(mode))
        self.assertEqual(self.port_sheet_rows()[0], {"port": "Hamburg", "city": "DE"})
        s = self.google.stats()
        self.assertEqual((s["token"], s["get"]), (1, 1))
        get = [r for r in s["requests"] if r["method"] == "GET"][0]
        self.assertEqual(get["path"], "/v4/spreadsheets/SHEET-1/values/'Port list'!A1:Z")
        self.assertEqual(get["auth"], "Bearer fake-access-1")
        tok = [r for r in s["requests"] if r["method"] == "POST"][0]["body"]
        self.assertEqual((tok["client_id"], tok["client_secret"], tok["refresh_token"]),
                         ("client-1", "test-secret", "refresh-1"))
        # The token is never in the log.
        self.assertNotIn("fake-access-1", d.log())

    def test_sync_now_runs_and_replaces(self):
        self.sheets_config()
        d = self.start_daemon()
        self.wait_runs(1, d)
        self.sync_now()
        runs = self.wait_runs(2, d)
        self.assertEqual((runs[1]["ok"], runs[1]["changed"]), (1, 0))
        self.google.sheet([["port", "country"], ["Kiel", "DE"]])
        self.sync_now()
        runs = self.wait_runs(3, d)
        self.assertEqual((runs[2]["ok"], runs[2]["changed"], runs[2]["rows"]), (1, 1, 1))
        self.assertEqual(json.loads(self.port_file())["rows"], [{"port": "Kiel", "country": "DE"}])
        self.assertEqual(self.port_sheet_rows(), [{"port": "Kiel", "country": "DE"}])
        self.assertEqual(self.google.stats()["token"], 1)

    def test_recent_good_sync_is_not_repeated_at_start(self):
        self.sheets_config()
        d = self.start_daemon()
        self.wait_runs(1, d)
        d.stop()
        d = self.start_daemon()
        time.sleep(1.0)  # a start-up sync would have begun by now; this only fails if one did
        self.assertEqual(len(self.runs()), 1)
        self.assertEqual(self.google.stats()["get"], 1)

    def test_sync_now_when_disabled(self):
        self.sheets_config(enabled="no")
        d = self.start_daemon()
        r = self.run_cli("-c", self.config, "sync", "--now")
        self.assertEqual(r.returncode, 1)
        self.assertIn("enabled = no", r.stderr)
        d.stop()
        self.assertFalse(os.path.exists(os.path.join(self.state, "port-sheet.json")))
        self.assertEqual(self.google.stats()["get"] + self.google.stats()["token"], 0)


class Failures(SyncTest):
    def test_403_fails_and_keeps_data(self):
        self.sheets_config()
        d = self.start_daemon()
        self.wait_runs(1, d)
        before = self.port_file()
        self.google.sheet([["port"], ["Changed"]])
        self.google.script(get=[{"status": 403, "body": {"error": {
            "code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}}}])
        self.sync_now()
        runs = self.wait_runs(2, d)
        self.assertEqual((runs[1]["ok"], runs[1]["http_status"]), (0, 403))
        self.assertIn("PERMISSION_DENIED: The caller does not have permission", runs[1]["error"])
        self.assertEqual(self.port_file(), before)
        self.assertEqual(self.port_sheet_rows()[0]["port"], "Hamburg")
        self.assertEqual(self.google.stats()["get"], 2)  # not retried
        self.assertIn("The caller does not have permission", d.log())

    def test_500_then_success_backs_off(self):
        self.sheets_config()
        self.google.script(get=[{"status": 500, "body": "oops", "content_type": "text/plain"}])
        d = self.start_daemon()
        runs = self.wait_runs(1, d)
        self.assertEqual(runs[0]["ok"], 1)
        reqs = [r for r in self.google.stats()["requests"] if r["method"] == "GET"]
        self.assertEqual(len(reqs), 2)
        self.assertGreaterEqual(reqs[1]["time"] - reqs[0]["time"], 0.95)  # 2^0 s + jitter

    def test_429_honours_retry_after(self):
        self.sheets_config()
        self.google.script(get=[{"status": 429, "retry_after": "3", "body": {"error": {
            "code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}}])
        d = self.start_daemon()
        runs = self.wait_runs(1, d)
        self.assertEqual(runs[0]["ok"], 1)
        reqs = [r for r in self.google.stats()["requests"] if r["method"] == "GET"]
        self.assertEqual(len(reqs), 2)
        self.assertGreaterEqual(reqs[1]["time"] - reqs[0]["time"], 2.9)

    def test_malformed_json_keeps_data(self):
        self.sheets_config()
        d = self.start_daemon()
        self.wait_runs(1, d)
        before = self.port_file()
        self.google.script(get=[{"status": 200, "raw": '{"values": [["port"], ["Kiel"'}])
        self.sync_now()
        runs = self.wait_runs(2, d)
        self.assertEqual(runs[1]["ok"], 0)
        self.assertIn("not JSON", runs[1]["error"])
        self.assertEqual(self.port_file(), before)

    def test_invalid_grant_no_sheets_request_no_hammering(self):
        self.sheets_config()
        self.google.script(token=[{"status": 400, "body": {
            "error": "invalid_grant", "error_description": "Token has been expired or revoked."}}])
        d = self.start_daemon()
        runs = self.wait_runs(1, d)
        self.assertEqual(runs[0]["ok"], 0)
        self.assertIn("invalid_grant", runs[0]["error"])
        for _ in range(3):
            self.sync_now()
        self.wait_runs(2, d)
        time.sleep(0.5)
        s = self.google.stats()
        self.assertEqual((s["token"], s["get"]), (1, 0))
        self.assertFalse(os.path.exists(os.path.join(self.state, "port-sheet.json")))

    def test_hanging_google_never_blocks_the_loop(self):
        self.sheets_config()
        self.google.script(get=[{"hang": 20}])
        d = self.start_daemon(extra_env={"WATCHDOG_USEC": "400000"})
        deadline = time.monotonic() + TIMEOUT
        while self.google.stats()["get"] < 1:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        # The request hangs (for 30 s, the request timeout); the loop feeds the watchdog meanwhile.
        first = d.notify.wait_field("WATCHDOG=1", start=len(d.notify.messages))
        i = first
        for _ in range(4):
            i = d.notify.wait_field("WATCHDOG=1", start=i + 1, timeout=2)
        self.assertEqual(self.runs(), [])
        d.stop()  # stops cleanly with a transfer in flight
        self.assertEqual(d.proc.returncode, 0, d.log())


class Push(SyncTest):
    def test_progress_push_matches_queue(self):
        self.sheets_config("progress_range = Progress!A1\n")
        # Tasks first (the CLI creates the db), then the daemon's first sync.
        ids = []
        for title in ("First", "Second"):
            r = self.run_cli("-c", self.config, "task", "add", "--title", title, "--after", "3650d",
                             f"prompt {title}")
            self.assertEqual(r.returncode, 0, r.stderr)
            ids.append(int(r.stdout.strip()))
        d = self.start_daemon()
        runs = self.wait_runs(1, d)
        self.assertEqual(runs[0]["ok"], 1, runs)
        puts = [r for r in self.google.stats()["requests"] if r["method"] == "PUT"]
        self.assertEqual(len(puts), 1)
        self.assertEqual(puts[0]["path"], "/v4/spreadsheets/SHEET-1/values/Progress!A1")
        self.assertEqual(puts[0]["query"], "valueInputOption=RAW")
        body = puts[0]["body"]
        self.assertEqual((body["range"], body["majorDimension"]), ("Progress!A1", "ROWS"))
        self.assertEqual(body["values"][0], ["id", "title", "state", "sessions", "turns", "cost", "updated",
                                              "parent"])
        self.assertEqual([row[:5] for row in body["values"][1:]],
                         [[ids[0], "First", "queued", 0, 0], [ids[1], "Second", "queued", 0, 0]])
