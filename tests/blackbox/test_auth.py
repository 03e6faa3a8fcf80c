# SPDX-License-Identifier: MIT
"""`jada-agent auth google` and `auth status` end to end against the fake
Google (tests/fake/fake_google_oauth.py), the test playing the browser."""

import http.client
import json
import os
import queue
import socket
import stat
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from harness import BIN, REPO, TIMEOUT, WRAP, TempStateTest

FAKE = os.path.join(REPO, "tests", "fake", "fake_google_oauth.py")
CLIENT_ID = "123-test.apps.googleusercontent.com"
SECRET = "test-client-secret"


class FakeGoogle:
    def __init__(self):
        self.proc = subprocess.Popen(["python3", FAKE], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self.port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=TIMEOUT)
        self.proc.stdout.close()

    def call(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        with urllib.request.urlopen(self.base + path, data=data, timeout=TIMEOUT) as r:
            return json.loads(r.read())

    def stats(self):
        return self.call("/_stats")


class AuthTest(TempStateTest):
    def setUp(self):
        super().setUp()
        self.google = FakeGoogle()
        self.addCleanup(self.google.stop)
        self.google.call("/_config", {"client_id": CLIENT_ID, "client_secret": SECRET})
        self.token_path = os.path.join(self.state, "google-token.json")
        self.configure()

    def configure(self, enabled="yes", extra=""):
        self.write_config(f"[sheets]\nenabled = {enabled}\nspreadsheet_id = sheet-123\nrange = Ports!A1:Z\n"
                          f"client_id = {CLIENT_ID}\ntoken_url = {self.google.base}/token\n"
                          f"api_url = {self.google.base}\n" + extra)

    def env(self):
        return {"GOOGLE_CLIENT_SECRET": SECRET, "JADA_GOOGLE_AUTH_URL": self.google.base + "/auth",
                "CREDENTIALS_DIRECTORY": ""}

    def start_flow(self, *args):
        """Starts `auth google`; returns (process, consent URL, loopback port)."""
        e = dict(os.environ)
        e.pop("JADA_AGENT_CONFIG", None)
        e.update(self.env())
        proc = subprocess.Popen([*WRAP, BIN, "-c", self.config, "auth", "google", "--no-browser", *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=e)
        self.addCleanup(self.reap, proc)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout] and lines.put(None),
                         daemon=True).start()
        self.out_lines = lines
        url = port = None
        deadline = time.monotonic() + TIMEOUT
        while url is None or port is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                self.fail("auth google ended before printing the URL: " + proc.stderr.read())
            if "code_challenge=" in line:
                url = line.strip()
            if "ssh -L" in line:
                port = int(line.split("ssh -L", 1)[1].split(":", 1)[0])
        return proc, url, port

    def reap(self, proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f:
                f.close()

    def finish(self, proc):
        proc.stdin.close()
        proc.stdin = None
        rc = proc.wait(timeout=TIMEOUT)
        out = []
        while True:
            line = self.out_lines.get(timeout=TIMEOUT)
            if line is None:
                break
            out.append(line)
        return rc, "".join(out), proc.stderr.read()

    def consent(self, url):
        """The browser's part at Google: GET the consent URL, return where it redirects."""
        u = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=TIMEOUT)
        conn.request("GET", u.path + "?" + u.query)
        r = conn.getresponse()
        r.read()
        conn.close()
        self.assertEqual(r.status, 302, "the fake refused the consent request's parameters")
        return r.getheader("Location")

    def check_token_file(self):
        st = os.stat(self.token_path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.geteuid())
        with open(self.token_path) as f:
            token = json.load(f)
        self.assertTrue(token["refresh_token"].startswith("1//fake-refresh-"), token)
        self.assertTrue(token["access_token"].startswith("ya29.fake-"))
        self.assertGreater(token["expires_at"], time.time() + 3000)
        self.assertLessEqual(abs(token["obtained_at"] - time.time()), 60)
        return token

    def control_socket(self):
        os.makedirs(self.state, exist_ok=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(os.path.join(self.state, "control.sock"))
        self.addCleanup(s.close)
        return s

    def test_loopback_redirect(self):
        control = self.control_socket()
        proc, url, port = self.start_flow()
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        self.assertEqual(q["redirect_uri"], f"http://127.0.0.1:{port}/")
        self.assertEqual(q["code_challenge_method"], "S256")
        self.assertEqual(q["access_type"], "offline")
        self.assertEqual(q["prompt"], "consent")
        self.assertEqual(q["scope"], "https://www.googleapis.com/auth/spreadsheets")
        location = self.consent(url)
        self.assertTrue(location.startswith(f"http://127.0.0.1:{port}/?"))
        with urllib.request.urlopen(location, timeout=TIMEOUT) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b"received the authorization", r.read())
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("Test read of Ports!A1:Z: 3 rows", out)
        self.check_token_file()
        stats = self.google.stats()
        self.assertEqual(stats.get("token_code"), 1, stats)
        self.assertEqual(stats.get("token_refresh"), 1, stats)
        self.assertEqual(stats.get("values"), 1, stats)
        # The running daemon (here: its socket) is told to reload the token.
        control.settimeout(TIMEOUT)
        self.assertEqual(control.recv(64), b"reload-auth")
        self.assertIn("Told the running daemon", out)
        # No secret on the terminal.
        self.assertNotIn(SECRET, out + err)

        r = self.run_cli("-c", self.config, "auth", "status", "--json", env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        status = json.loads(r.stdout)
        self.assertEqual(status["auth"], "oauth")
        self.assertTrue(status["usable"])
        self.assertTrue(status["access_token_valid"])
        self.assertIsNone(status["last_error"])
        self.assertEqual(status["warnings"], [])
        self.assertLess(status["token_age_seconds"], 60)
        self.assertNotIn("ya29", r.stdout)
        self.assertNotIn("1//", r.stdout)
        r = self.run_cli("-c", self.config, "auth", "status", env=self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("access token:  expires in", r.stdout)

    def test_pasted_address(self):
        proc, url, port = self.start_flow()
        location = self.consent(url)
        proc.stdin.write("not an address\n")
        proc.stdin.write(location + "\n")
        proc.stdin.flush()
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("not the address with code=", err)
        self.assertIn("daemon is not running", out)
        self.check_token_file()

    def test_wrong_state_refused(self):
        proc, url, port = self.start_flow()
        location = self.consent(url)
        u = urllib.parse.urlsplit(location)
        q = dict(urllib.parse.parse_qsl(u.query))
        q["state"] = "forged-" + q["state"][:10]
        proc.stdin.write(f"http://127.0.0.1:{port}/?" + urllib.parse.urlencode(q) + "\n")
        proc.stdin.flush()
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("state does not match", err)
        self.assertFalse(os.path.exists(self.token_path))
        self.assertNotIn("token", self.google.stats())

    def test_access_denied(self):
        proc, url, port = self.start_flow()
        proc.stdin.write(f"http://127.0.0.1:{port}/?error=access_denied&state=x\n")
        proc.stdin.flush()
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 1)
        self.assertIn("did not grant access: access_denied", err)

    def test_failed_test_read_saves_nothing(self):
        self.google.call("/_config", {"values": []})
        self.configure(extra="")
        proc, url, port = self.start_flow()
        location = self.consent(url)
        # A refresh answer that is not a token: the flow stops before saving.
        self.google.call("/_script", {"answers": [{"issue": {"refresh_token": True}},
                                                  {"status": 500, "raw": "<html>oops</html>",
                                                   "content_type": "text/html"}]})
        urllib.request.urlopen(location, timeout=TIMEOUT).read()
        rc, out, err = self.finish(proc)
        self.assertEqual(rc, 1, out + err)
        self.assertIn("test refresh failed", err)
        self.assertFalse(os.path.exists(self.token_path))

    def test_sheets_disabled(self):
        self.configure(enabled="no")
        r = self.run_cli("-c", self.config, "auth", "google", "--no-browser", env=self.env())
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("enabled = yes", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_service_account_needs_no_flow(self):
        self.configure(extra="auth = service_account\n")
        r = self.run_cli("-c", self.config, "auth", "google", env=self.env())
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("service account", r.stderr)

    def test_missing_secret(self):
        e = self.env()
        e["GOOGLE_CLIENT_SECRET"] = ""
        r = self.run_cli("-c", self.config, "auth", "google", "--no-browser", env=e)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("google-client-secret", r.stderr)

    def write_token(self, mode=0o600, **fields):
        os.makedirs(self.state, exist_ok=True)
        token = {"refresh_token": "1//x", "access_token": "ya29.x", "expires_at": int(time.time()) + 1000,
                 "obtained_at": int(time.time()) - 100, "refreshed_at": int(time.time()) - 100}
        token.update(fields)
        with open(self.token_path, "w") as f:
            json.dump(token, f)
        os.chmod(self.token_path, mode)

    def status(self):
        r = self.run_cli("-c", self.config, "auth", "status", "--json", env=self.env())
        return r.returncode, json.loads(r.stdout)

    def test_status_without_token(self):
        rc, s = self.status()
        self.assertEqual(rc, 1)
        self.assertFalse(s["usable"])
        self.assertIn("auth google", s["problem"])

    def test_status_old_refresh_token_warns(self):
        self.write_token(obtained_at=int(time.time()) - 6 * 86400 - 3600)
        rc, s = self.status()
        self.assertEqual(rc, 0)
        self.assertEqual(len(s["warnings"]), 1)
        self.assertIn("7 days", s["warnings"][0])
        r = self.run_cli("-c", self.config, "auth", "status", env=self.env())
        self.assertIn("warning:", r.stdout)

    def test_status_refuses_readable_and_dead_tokens(self):
        self.write_token(mode=0o644)
        rc, s = self.status()
        self.assertEqual(rc, 1)
        self.assertIn("0644", s["problem"])
        self.write_token(needs_reauth=True, last_error="invalid_grant: Bad Request (HTTP 400)",
                         last_error_at=int(time.time()))
        rc, s = self.status()
        self.assertEqual(rc, 1)
        self.assertTrue(s["needs_reauth"])
        self.assertIn("invalid_grant: Bad Request", s["problem"])
        with open(self.token_path, "w") as f:
            f.write("{not json")
        rc, s = self.status()
        self.assertEqual(rc, 1)
        self.assertIn("corrupt", s["problem"])
