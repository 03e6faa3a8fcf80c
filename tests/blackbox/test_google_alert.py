# SPDX-License-Identifier: MIT
"""The incident this daemon was born from: a revoked Google token. It must
be one loud alert at once (journal with MESSAGE_ID, STATUS=, status exit 2),
no hammering of the token endpoint, and a re-authorization must recover
without a restart."""

import json
import os
import socket
import time

from harness import TIMEOUT
from test_sync import SyncTest
from test_webhook import Hook

REAUTH = "031fdb3625a540adbabb2c328c4f102d"
RECOVERED = "e0f35a58938e41ba9c34baecf999758a"


class DeadToken(SyncTest):
    def alerts(self, d, message_id):
        d.journal.drain(0.3)
        return [e for e in d.journal.entries if e.get("MESSAGE_ID") == message_id]

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


class SyncFailing(SyncTest):
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
