# SPDX-License-Identifier: MIT
"""The incident this daemon was born from: a revoked Google token. It must
be one loud alert at once (journal with MESSAGE_ID, STATUS=, status exit 2),
no hammering of the token endpoint, and a re-authorization must recover
without a restart."""

import json
import os
import socket
import time

from harness import TIMEOUT, needs_root
from test_sync import SyncTest
from test_webhook import Hook

REAUTH = "031fdb3625a540adbabb2c328c4f102d"
RECOVERED = "e0f35a58938e41ba9c34baecf999758a"


class DeadToken(SyncTest):
    def alerts(self, d, message_id):
        d.journal.drain(0.3)
        return [e for e in d.journal.entries if e.get("MESSAGE_ID") == message_id]

    @needs_root
    def test_invalid_grant_is_one_alert_and_reauth_recovers(self):
        hook = Hook()
        self.addCleanup(hook.close)
        self.sheets_config(f"[alerts]\nwebhook_url = {hook.url}\n")
        self.google.script(token=[{"status": 400, "body": {
            "error": "invalid_grant", "error_description": "Token has been expired or revoked."}}])
        t0 = time.monotonic()
        d = self.start(extra_env={"GOOGLE_CLIENT_SECRET": "test-secret"}, journal=True)
        d.notify.wait_field("READY=1")
        alert = d.journal.wait_for(lambda e: e.get("MESSAGE_ID") == REAUTH)
        print(f"\n    start to alert (bounds first invalid_grant to alert): "
              f"{(time.monotonic() - t0) * 1000:.0f} ms", end=" ")
        self.assertEqual(alert["PRIORITY"], "3")
        self.assertIn("jada-agent auth google", alert["MESSAGE"])
        self.assertIn("invalid_grant", alert["MESSAGE"])
        self.assertIn("Token has been expired or revoked.", alert["MESSAGE"])
        d.notify.wait_for(lambda m: "STATUS=DEGRADED: Google token revoked" in m)

        r = self.run_cli("-c", self.config, "status", "--json")
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn('"fix": "jada-agent auth google"', r.stdout)
        oauth = json.loads(r.stdout)["oauth"]
        self.assertEqual((oauth["auth"], oauth["token"]), ("oauth", "needs_reauth"))
        self.assertIn("invalid_grant", oauth["last_error"])

        # More syncs while the token is dead: no token request, no new alert.
        for _ in range(5):
            self.sync_now()
        time.sleep(1)
        self.assertEqual(self.google.stats()["token"], 1)
        self.assertEqual(len(self.alerts(d, REAUTH)), 1)

        # The operator re-authorizes (jada-agent auth google writes the file
        # and sends reload-auth): recovered, once, without a restart.
        self.google.script(token=[])
        self.write_token({"refresh_token": "refresh-2"})
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"reload-auth", os.path.join(self.state, "control.sock"))
        s.close()
        d.journal.wait_for(lambda e: e.get("MESSAGE_ID") == RECOVERED)
        deadline = time.monotonic() + TIMEOUT
        while not any(r["ok"] for r in self.runs()):
            self.assertLess(time.monotonic(), deadline, d.log())
            time.sleep(0.05)
        d.notify.wait_for(lambda m: m.startswith("STATUS=") and "DEGRADED" not in m)
        self.assertEqual(len(self.alerts(d, REAUTH)), 1)
        self.assertEqual(len(self.alerts(d, RECOVERED)), 1)
        hook.wait(2)
        texts = hook.texts()
        self.assertEqual(len(texts), 2, texts)
        self.assertIn("ALERT: Google token revoked or expired (invalid_grant", texts[0])
        self.assertIn("run 'jada-agent auth google'", texts[0])
        self.assertIn("RECOVERED:", texts[1])
        for e in d.journal.entries:  # no token in any log line
            self.assertNotIn("refresh-2", e.get("MESSAGE", ""))
            self.assertNotIn("test-secret", e.get("MESSAGE", ""))


class RevokedAccess(SyncTest):
    """Google answers 401 UNAUTHENTICATED at once when access is revoked,
    long before a cached access token would expire. The daemon must drop
    the token, refresh once and retry once (as google-auth does)."""

    def setUp(self):
        super().setUp()
        now = int(time.time())
        # A cached access token valid for another hour: without the 401
        # rule it would be used, and fail, until it expired.
        self.write_token({"refresh_token": "refresh-1", "access_token": "cached-access-1",
                          "expires_at": now + 3600, "refreshed_at": now - 60, "obtained_at": now - 86400})

    def token_file(self):
        with open(os.path.join(self.state, "google-token.json")) as f:
            return json.load(f)

    def gets(self):
        return [r for r in self.google.stats()["requests"] if r["method"] == "GET"]

    @needs_root
    def test_revoked_grant_is_the_token_alert_at_the_first_401(self):
        self.sheets_config()
        self.google.revoke(refresh=True)
        d = self.start(extra_env={"GOOGLE_CLIENT_SECRET": "test-secret"}, journal=True)
        alert = d.journal.wait_for(lambda e: e.get("MESSAGE_ID") == REAUTH)
        first_401 = self.gets()[0]["time"]
        print(f"\n    first 401 to the dead-token alert: "
              f"{(alert['_RECEIVED_MONOTONIC'] - first_401) * 1000:.0f} ms", end=" ")
        self.assertIn("invalid_grant", alert["MESSAGE"])
        stats = self.google.stats()
        self.assertEqual(stats["token"], 1, "exactly one token request")
        self.assertEqual(stats["get"], 1, "no retry of values.get without a token")
        self.assertEqual(self.gets()[0]["auth"], "Bearer cached-access-1")
        d.notify.wait_for(lambda m: "STATUS=DEGRADED: Google token revoked" in m)
        r = self.run_cli("-c", self.config, "status", "--json")
        self.assertEqual(r.returncode, 2, r.stdout)
        # The refused access token is gone from the file too: a restart
        # must not use it again, nor ask the token endpoint again.
        tok = self.token_file()
        self.assertNotIn("cached-access-1", json.dumps(tok))
        self.assertTrue(tok.get("needs_reauth"), tok)
        d.stop()
        d2 = self.start(extra_env={"GOOGLE_CLIENT_SECRET": "test-secret"}, journal=True)
        d2.journal.wait_for(lambda e: e.get("MESSAGE_ID") == REAUTH)
        self.wait_runs(2, d2)
        stats = self.google.stats()
        self.assertEqual((stats["token"], stats["get"]), (1, 1), stats)

    def test_revoked_access_token_is_refreshed_and_the_run_succeeds(self):
        self.sheets_config()
        self.google.revoke(refresh=False)
        d = self.start_daemon()
        runs = self.wait_runs(1, d)
        self.assertEqual(runs[0]["ok"], 1, runs)
        stats = self.google.stats()
        self.assertEqual(stats["token"], 1)
        self.assertEqual([g["auth"] for g in self.gets()], ["Bearer cached-access-1", "Bearer fake-access-1"])
        self.assertEqual(self.token_file()["access_token"], "fake-access-1")
        self.assertIn("refreshing the access token and trying once more", d.log())

    def test_a_second_401_with_a_fresh_token_fails_the_run_with_googles_message(self):
        self.sheets_config()
        unauth = {"status": 401, "body": {"error": {"code": 401, "status": "UNAUTHENTICATED",
                                                     "message": "Request had invalid authentication credentials."}}}
        self.google.script(get=[unauth, unauth])
        d = self.start_daemon()
        runs = self.wait_runs(1, d)
        self.assertEqual(runs[0]["ok"], 0, runs)
        self.assertEqual(runs[0]["http_status"], 401)
        self.assertIn("UNAUTHENTICATED: Request had invalid authentication credentials.", runs[0]["error"])
        self.assertIn("refused again with a fresh access token", runs[0]["error"])
        stats = self.google.stats()
        self.assertEqual((stats["token"], stats["get"]), (1, 2), stats)
        # A working refresh is no dead token.
        r = self.run_cli("-c", self.config, "status", "--json")
        self.assertNotIn("needs_reauth", r.stdout)


class SyncFailing(SyncTest):
    @needs_root
    def test_three_failed_runs_are_one_alert_and_a_good_run_clears_it(self):
        hook = Hook()
        self.addCleanup(hook.close)
        self.sheets_config(f"[alerts]\nwebhook_url = {hook.url}\n")
        denied = {"status": 403, "body": {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                                     "message": "The caller does not have permission"}}}
        self.google.script(get=[denied] * 5)
        d = self.start(extra_env={"GOOGLE_CLIENT_SECRET": "test-secret"}, journal=True)
        d.notify.wait_field("READY=1")
        self.wait_runs(1, d)  # the start-up run
        for n in (2, 3, 4):
            self.sync_now()
            self.wait_runs(n, d)
        d.journal.drain(0.5)
        alerts = [e for e in d.journal.entries if e.get("JADA_ALERT") == "sync_failing"]
        self.assertEqual([e["PRIORITY"] for e in alerts], ["3"], alerts)  # at the 3rd, not again at the 4th
        self.assertIn("failing 3 runs in a row", alerts[0]["MESSAGE"])
        self.assertIn("PERMISSION_DENIED", alerts[0]["MESSAGE"])
        r = self.run_cli("-c", self.config, "status", "--json")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('"kind": "sync_failing"', r.stdout)

        self.google.script(get=[], clear=True)  # access restored
        self.sync_now()
        d.journal.wait_for(lambda e: e.get("JADA_ALERT") == "sync_failing" and e["PRIORITY"] == "5")
        hook.wait(2)
        texts = hook.texts()
        self.assertEqual(len(texts), 2, texts)
        self.assertIn("ALERT: port-sheet sync failing 3 runs in a row", texts[0])
        self.assertIn("RECOVERED:", texts[1])
