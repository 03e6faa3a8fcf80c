# SPDX-License-Identifier: MIT
"""The HTTP fault matrix: the ways an HTTP peer fails, against each of the
daemon's HTTP clients (the Google token endpoint, Sheets values.get, the
alert webhook), each ending in its documented state after a bounded number
of requests.

CASES below is the whole matrix, one row per case. Every row runs in a
world of its own, all rows at once:

  - a private network namespace with only loopback up: nothing can leave
    the machine (the name under .invalid cannot even send a DNS packet:
    there is no route for one), and no port can clash with anything;
  - a fake Google (tests/fake/fake_google_sheets.py) that serves the token
    endpoint, values.get and the webhook with scripted answers and counts
    every request; with --tls-cert a second one that speaks HTTPS with a
    self-signed certificate made here with `openssl`, counting the
    handshakes the daemon refuses;
  - its own state dir and daemon.

The daemon's delays are fixed in the code, not the config (oauth backoff
30 s; a sync run retries after 1, 2, 4, 8, 16 s; the webhook after 5, 10,
20 ... s; request timeouts 30 s, the webhook's 15 s), so running the rows
side by side is what keeps this file under a minute.

What each endpoint's rows go through, and the state they must end in
(README "The port sheet", "Is it healthy?"; src/oauth.c, sync.c, alert.c):

  token       a good sync first (data in port_sheet, a short-lived access
              token), a restart with the fault, then three `sync --now`.
              The first run makes the one token request, which fails; the
              token goes into backoff (30 s, or Retry-After if longer), so
              the next two runs make no request at all. All three runs are
              sync_runs rows with ok=0 and an error naming the cause; the
              third makes the health problem "port-sheet sync failing 3 runs
              in a row: ..." (STATUS=, `status` exit 1); the token is not
              marked dead (status: token ok, last_error the cause); no
              values.get without a token; port_sheet untouched.
  values.get  a good sync first, a restart with the fault, one
              `sync --now`. Transient faults (no connection, TLS, 429, 5xx,
              a cut transfer) are retried 5 times with backoff (2^n s, at
              least Retry-After), then the run fails: 6 requests, one
              sync_runs row, ok=0, "... (gave up after 5 retries)". An
              answer that cannot be right (not JSON, over the 1 MiB cap, a
              Retry-After longer than a run waits) fails the run at once: 1
              request. A timeout (30 s) is retried too; the row's window
              closes at the retry, the run still going (the full run takes
              over 3 minutes), and a stop leaves its row unfinished. A
              `sync --now` during a run starts no second one. One failed
              run is no health problem yet (three are). The cached access
              token serves every retry: no token request. port_sheet
              untouched.
  webhook     no Google token: the daemon raises the "no Google token yet"
              alert at start and POSTs it. A failing hook is retried after
              5 s, then 10 s (at least Retry-After); the window closes at
              the third attempt (the second for the 15 s timeout): the
              full schedule (6 attempts) takes minutes. A 2xx answer is a
              delivered alert, whatever its body: exactly one POST.

Every row: the daemon is still running and answers the command line during
the fault, and stops cleanly (exit 0) when it is over."""

import concurrent.futures
import contextlib
import ctypes
import json
import os
import re
import select
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request

from harness import REPO, TIMEOUT, Daemon, TempStateTest, needs_root

FAKE = os.path.join(REPO, "tests", "fake", "fake_google_sheets.py")
CLONE_NEWNET = 0x40000000
# Bounds every single wait of a row; the slowest row needs about 40 s.
WAIT = 60 + TIMEOUT
POLL = 0.3
# Gaps between attempts are measured at the fake, at each request's (or
# refused handshake's) arrival; the daemon's retry timer starts later than
# that (sd-event times it from the start of the loop iteration that saw the
# failure), so a gap is never shorter than the backoff. The slack is for the
# fake's own scheduling only. (Stamping a refused handshake when the client
# left made gaps look 0.5 s short under valgrind, where checking the
# certificate is slow.)
GAP_SLACK = 0.25

TOKEN, SHEETS, HOOK = "token", "values.get", "webhook"
UNRESOLVABLE = "fault.invalid"  # RFC 6761: never resolves

# What the daemon says about each cause (curl's wording, then ours).
REFUSED = r"Failed to connect to 127\.0\.0\.1 port \d+ after \d+ ms: (Couldn't connect to server|Connection refused)"
NO_HOST = r"Could not resolve host: \w+\." + re.escape(UNRESOLVABLE)
UNTRUSTED = r"SSL certificate problem: self.signed certificate"
TIMED_OUT = r"Operation timed out after \d+ milliseconds with \d+ (out of \d+ )?bytes received"
CUT = r"transfer closed with 100 bytes remaining to read"
GAVE_UP = r" \(gave up after 5 retries\)$"
QUOTA = r"Quota exceeded for quota metric 'Read requests'"

# The matrix. end: what the row's window closes on --
#   failed     the run(s) ended, ok=0 (token: three runs; values.get: one)
#   in_flight  a retry of the run is on its way (values.get timeouts)
#   retrying   the hook failed and a retry is scheduled
#   delivered  the hook took the alert
# attempts: (at least, at most) requests at the faulty endpoint in the
# window, counted by the fake (refused handshakes for TLS); where nothing
# can answer (refused, unresolvable) the daemon's log lines count them.
# error: a regex for the cause, named: in the sync_runs error (token rows:
# after "no Google access token (backoff): "), or all of the cause in each
# of the webhook's failure log lines (nothing glued on).
CASES = [
    # endpoint fault                    end          attempts  error
    (TOKEN,  "refused",                 "failed",    (1, 1),   "no answer: " + REFUSED),
    (TOKEN,  "unresolvable",            "failed",    (1, 1),   "no answer: " + NO_HOST),
    (TOKEN,  "tls untrusted",           "failed",    (1, 1),   "no answer: " + UNTRUSTED),
    (TOKEN,  "timeout",                 "failed",    (1, 1),   "no answer: " + TIMED_OUT),
    (TOKEN,  "429 Retry-After: 120",    "failed",    (1, 1),   r"HTTP 429 without an OAuth error \(application/json"),
    (TOKEN,  "500",                     "failed",    (1, 1),   r"HTTP 500 without an OAuth error \(text/html"),
    (TOKEN,  "503",                     "failed",    (1, 1),   r"temporarily_unavailable: The service is currently unavailable\. \(HTTP 503\)"),
    (TOKEN,  "truncated json",          "failed",    (1, 1),   r"incomplete answer \(HTTP 200\): " + CUT),
    (TOKEN,  "invalid json",            "failed",    (1, 1),   r"HTTP 200: the answer is not JSON \(application/json"),
    (TOKEN,  "huge body",               "failed",    (1, 1),   r"HTTP 200: the answer is larger than 65536 bytes"),

    (SHEETS, "refused",                 "failed",    (6, 6),   "values.get: " + REFUSED + GAVE_UP),
    (SHEETS, "unresolvable",            "failed",    (6, 6),   "values.get: " + NO_HOST + GAVE_UP),
    (SHEETS, "tls untrusted",           "failed",    (6, 6),   "values.get: " + UNTRUSTED + GAVE_UP),
    (SHEETS, "timeout",                 "in_flight", (2, 2),   "values.get: " + TIMED_OUT),
    (SHEETS, "slow answer",             "in_flight", (2, 2),   "values.get: " + TIMED_OUT),
    (SHEETS, "429 Retry-After: 3",      "failed",    (6, 6),   r"values\.get: HTTP 429: RESOURCE_EXHAUSTED: " + QUOTA + GAVE_UP),
    (SHEETS, "429 Retry-After: 3600",   "failed",    (1, 1),   r"values\.get: HTTP 429: RESOURCE_EXHAUSTED: " + QUOTA + r" \(Retry-After 3600 s is longer than a run waits\)$"),
    (SHEETS, "500",                     "failed",    (6, 6),   r"values\.get: HTTP 500" + GAVE_UP),
    (SHEETS, "503",                     "failed",    (6, 6),   r"values\.get: HTTP 503: UNAVAILABLE: The service is currently unavailable\." + GAVE_UP),
    (SHEETS, "truncated json",          "failed",    (6, 6),   "values.get: " + CUT + GAVE_UP),
    (SHEETS, "invalid json",            "failed",    (1, 1),   r"values\.get of A1:Z: the answer is not JSON"),
    (SHEETS, "huge body",               "failed",    (1, 1),   r"values\.get: the answer is larger than the 1048576 bytes accepted$"),

    (HOOK,   "refused",                 "retrying",  (3, 3),   REFUSED),
    (HOOK,   "unresolvable",            "retrying",  (3, 3),   NO_HOST),
    (HOOK,   "tls untrusted",           "retrying",  (3, 3),   UNTRUSTED),
    (HOOK,   "timeout",                 "retrying",  (2, 2),   TIMED_OUT),
    (HOOK,   "429 Retry-After: 7",      "retrying",  (3, 3),   r"HTTP 429"),
    (HOOK,   "500",                     "retrying",  (3, 3),   r"HTTP 500"),
    (HOOK,   "503",                     "retrying",  (3, 3),   r"HTTP 503"),
    (HOOK,   "truncated json",          "delivered", (1, 1),   None),
    (HOOK,   "invalid json",            "delivered", (1, 1),   None),
    (HOOK,   "huge body",               "delivered", (1, 1),   None),
]

SHEET = [["port", "city"], ["Hamburg", "DE"], ["Rotterdam", "NL"]]
# The fake answers the endpoint's scripted requests with these: Google's
# shapes where Google has one (a Sheets error object, an OAuth error).
SHEETS_ERROR = {
    429: {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                    "message": "Quota exceeded for quota metric 'Read requests'"}},
    503: {"error": {"code": 503, "status": "UNAVAILABLE", "message": "The service is currently unavailable."}},
}
OAUTH_503 = {"error": "temporarily_unavailable", "error_description": "The service is currently unavailable."}
HTML_500 = "<!DOCTYPE html><html><title>Error 500 (Server Error)!!1</title><p>That's an error.</p></html>"
HUGE = 2 << 20  # over every cap: 64 KiB (token, webhook) and 1 MiB (values.get)

# The daemon's log lines, one per failed attempt (src/oauth.c, sync.c, alert.c).
LOG_ATTEMPT = {
    TOKEN: re.compile(r"google oauth: token refresh failed \(\d+ in a row\): (.*); next try in (\d+)s"),
    SHEETS: re.compile(r"sheets: (values\.get: .*); retry (\d+) of 5 in (\d+)\.\d+ s$"
                       r"|sheets: sync of \S+ failed: (values\.get.*)$"),
    HOOK: re.compile(r"alert webhook: (.*); retrying in (\d+)s$|alert webhook: giving up .*\(last: (.*)\)$"),
}


def fault_answer(endpoint, fault):
    """The scripted answer of the faulty endpoint, or None when the fault is
    in its URL (refused, unresolvable, TLS)."""
    if fault == "timeout":
        return {"hang": 50}
    if fault == "slow answer":
        return {"status": 200, "drip": 50, "raw": json.dumps({"values": SHEET})}
    if fault.startswith("429"):
        return {"status": 429, "retry_after": fault.split(": ")[1], "body": SHEETS_ERROR[429]}
    if fault == "500":
        return {"status": 500, "raw": HTML_500, "content_type": "text/html; charset=UTF-8"}
    if fault == "503":
        return {"status": 503, "body": OAUTH_503 if endpoint == TOKEN else SHEETS_ERROR[503]}
    if fault == "truncated json":
        return {"status": 200, "truncate": True, "body": {"access_token": "cut", "expires_in": 3599}
                if endpoint == TOKEN else {"values": SHEET}}
    if fault == "invalid json":
        return {"status": 200, "raw": '{"values": [["port"], ["Kiel"'}
    if fault == "huge body":
        return {"status": 200, "huge": HUGE}
    return None


def retry_after(fault):
    return int(fault.split(": ")[1]) if fault.startswith("429") else 0


class Netns:
    """A private network namespace with only loopback up. Processes started
    by this thread inside `with ns.inside():` live in it; the thread itself
    is back in its own namespace afterwards (as in test_real_claude.py)."""

    libc = ctypes.CDLL(None, use_errno=True)

    def __init__(self):
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if self.libc.unshare(CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise AssertionError(f"unshare(CLONE_NEWNET): {os.strerror(e)}: the fault matrix needs root")
            try:
                self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True, timeout=10)
                if r.returncode != 0:
                    raise AssertionError(f"ip link set lo up: {r.stderr.strip()}")
            finally:
                self._back(home)
        finally:
            os.close(home)

    def _back(self, home):
        if self.libc.setns(home, CLONE_NEWNET) != 0:
            # The rest of the suite must not run in the wrong namespace.
            print(f"setns back: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
            os._exit(3)

    @contextlib.contextmanager
    def inside(self):
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if self.libc.setns(self.fd, CLONE_NEWNET) != 0:
                raise AssertionError(f"setns: {os.strerror(ctypes.get_errno())}")
            try:
                yield
            finally:
                self._back(home)
        finally:
            os.close(home)

    def close(self):
        os.close(self.fd)


class Fake:
    """fake_google_sheets.py in a world; plain HTTP, or HTTPS with `cert`
    (certificate, key)."""

    def __init__(self, ns, cert=None):
        self.ns = ns
        argv = [sys.executable, FAKE]
        if cert:
            argv += ["--tls-cert", cert[0], "--tls-key", cert[1]]
        with ns.inside():
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            self.close()
            raise AssertionError(f"the fake Google printed no port: {line!r}")
        self.port = int(line)
        self.url = f"{'https' if cert else 'http'}://127.0.0.1:{self.port}"
        # The control side trusts the certificate the daemon does not.
        self.ctx = ssl.create_default_context(cafile=cert[0]) if cert else None

    def call(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        with self.ns.inside():
            with urllib.request.urlopen(self.url + path, data=data, timeout=TIMEOUT, context=self.ctx) as r:
                return json.loads(r.read())

    def stats(self):
        return self.call("/_stats")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def wait_until(what, predicate, timeout=WAIT, log=None):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} in {timeout:.0f}s" + (f"; daemon log:\n{log()}" if log else ""))
        time.sleep(POLL)


class Case:
    """One row of the matrix, driven from its own thread."""

    def __init__(self, test, n, row):
        self.t = test
        self.endpoint, self.fault, self.end, (self.lo, self.hi), self.error = row
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.endpoint}-{self.fault}".lower()).strip("-")
        self.dir = os.path.join(test.tmp, f"{n:02d}-{slug}")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state, mode=0o700)
        self.closers = []
        self.daemon = None
        self.observed = {}

    # ---- the world ----------------------------------------------------------

    def build_world(self):
        self.ns = Netns()
        self.closers.append(self.ns.close)
        self.google = Fake(self.ns)
        self.closers.append(self.google.close)
        self.google.call("/_sheet", {"values": SHEET})
        self.tls = None
        if self.fault == "tls untrusted":
            self.tls = Fake(self.ns, self.t.cert)
            self.closers.append(self.tls.close)
        if self.fault == "refused":
            # Bound, never listening: a connection is refused, and the port
            # stays ours. (The namespace is new: nothing else listens here.)
            with self.ns.inside():
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
            self.closers.append(s.close)
            self.refused_port = s.getsockname()[1]

    def fault_base(self):
        """The faulty endpoint's scheme://host:port, for the config."""
        if self.fault == "refused":
            return f"http://127.0.0.1:{self.refused_port}"
        if self.fault == "unresolvable":
            return f"http://{self.endpoint.split('.')[0]}.{UNRESOLVABLE}"
        if self.fault == "tls untrusted":
            return self.tls.url
        return self.google.url

    def write_config(self, name, token_url, api_url, webhook_url=""):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(f"[daemon]\nstate_dir = {self.state}\n"
                    "[sheets]\nenabled = yes\nspreadsheet_id = SHEET-1\nrange = A1:Z\n"
                    # No timer run inside the window: every run is a `sync --now`.
                    "interval = 1h\nclient_id = client-1\n"
                    f"token_url = {token_url}\napi_url = {api_url}\n"
                    f"[alerts]\nwebhook_url = {webhook_url}\n")
        self.config = path
        return path

    def start_daemon(self, name):
        d_dir = os.path.join(self.dir, name)
        os.makedirs(d_dir)
        with self.ns.inside():
            d = Daemon(d_dir, self.config, extra_env={"GOOGLE_CLIENT_SECRET": "test-secret"})
        self.t.daemons.append(d)  # tearDown checks its log for sanitizer reports
        d.notify.wait_field("READY=1", timeout=WAIT)
        with open(f"/proc/{d.proc.pid}/net/dev") as f:
            interfaces = [l.split(":")[0].strip() for l in f.readlines()[2:]]
        self.t.assertEqual(interfaces, ["lo"], "the daemon must see loopback only")
        return d

    def stop_daemon(self, d):
        d.signal(15)
        rc = d.wait(timeout=WAIT)
        self.t.assertEqual(rc, 0, f"the daemon did not stop cleanly; log:\n{d.log()}")

    # ---- what the daemon did ------------------------------------------------

    def db(self, sql):
        db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"), timeout=30)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql)]
        finally:
            db.close()

    def runs(self, since=0, finished=True):
        return self.db(f"SELECT * FROM sync_runs WHERE id > {since}"
                       f"{' AND ended_at IS NOT NULL' if finished else ''} ORDER BY id")

    def snapshot(self):
        with open(os.path.join(self.state, "port-sheet.json")) as f:
            return self.db("SELECT row, data FROM port_sheet ORDER BY row"), \
                self.db("SELECT * FROM port_sheet_meta"), f.read()

    def log_lines(self):
        return self.daemon.log().splitlines() if self.daemon else []

    def log_attempts(self):
        """(cause, number) of each failed attempt the daemon logged."""
        out = []
        for line in self.log_lines():
            m = LOG_ATTEMPT[self.endpoint].search(line)
            if m:
                out.append(m)
        return out

    def server_stats(self):
        if self.fault == "tls untrusted":
            return self.tls.stats()
        if self.fault in ("refused", "unresolvable"):
            return None
        return self.google.stats()

    def attempts(self):
        """Requests at the faulty endpoint, counted where they arrive;
        where nothing can answer, the daemon's own count (its log)."""
        s = self.server_stats()
        if s is None:
            return len(self.log_attempts())
        if self.fault == "tls untrusted":
            return s["tls_failed"]
        return s[{TOKEN: "token", SHEETS: "get", HOOK: "hook"}[self.endpoint]]

    def attempt_times(self):
        s = self.server_stats()
        if s is None:
            return None
        if self.fault == "tls untrusted":
            return s["tls_failures"]
        method = {TOKEN: "POST", SHEETS: "GET", HOOK: "POST"}[self.endpoint]
        prefix = {TOKEN: "/token", SHEETS: "/v4/", HOOK: "/hook"}[self.endpoint]
        return [r["time"] for r in s["requests"] if r["method"] == method and r["path"].startswith(prefix)]

    def sync_now(self):
        r = self.t.run_cli("-c", self.config, "sync", "--now")
        self.t.assertEqual(r.returncode, 0, r.stderr)

    def status(self):
        r = self.t.run_cli("-c", self.config, "status", "--json")
        return r.returncode, json.loads(r.stdout)

    def asked_while_running(self):
        return sum("a sync was asked for; one is already running" in l for l in self.log_lines())

    # ---- the row --------------------------------------------------------------

    def run(self):
        t0 = time.monotonic()
        try:
            self.build_world()
            {TOKEN: self.google_row, SHEETS: self.google_row, HOOK: self.hook_row}[self.endpoint]()
        finally:
            self.observed["seconds"] = time.monotonic() - t0
            for close in reversed(self.closers):
                try:
                    close()
                except Exception as e:  # noqa: BLE001 - cleanup goes on
                    print(f"cleanup of {self.endpoint} {self.fault}: {e}", file=sys.stderr)

    def good_sync_first(self):
        """A daemon that syncs once, well: the data the fault must not touch.
        For the token rows the access token it leaves is short-lived (less
        than the 5 min margin), so the next run must ask the token endpoint."""
        with open(os.path.join(self.state, "google-token.json"), "w") as f:
            json.dump({"refresh_token": "refresh-1"}, f)
        os.chmod(os.path.join(self.state, "google-token.json"), 0o600)
        if self.endpoint == TOKEN:
            self.google.call("/_script", {"token": [{"status": 200, "body": {
                "access_token": "short-lived", "expires_in": 120, "token_type": "Bearer"}}]})
        self.write_config("good.conf", f"{self.google.url}/token", self.google.url)
        d = self.start_daemon("good")
        runs = wait_until("good sync", lambda: self.runs(), log=d.log)
        self.t.assertEqual([(r["ok"], r["rows"]) for r in runs], [(1, 2)], d.log())
        self.stop_daemon(d)
        self.google.call("/_reset", {})
        return runs[-1]["id"]

    def google_row(self):
        t = self.t
        last_good = self.good_sync_first()
        before = self.snapshot()
        answer = fault_answer(self.endpoint, self.fault)
        if answer:
            kind = "token" if self.endpoint == TOKEN else "get"
            self.google.call("/_script", {kind: [answer] * (self.hi + 2)})
        bad = self.fault_base()
        if self.endpoint == TOKEN:
            self.write_config("fault.conf", f"{bad}/token", self.google.url)
        else:
            self.write_config("fault.conf", f"{self.google.url}/token", bad)
        d = self.daemon = self.start_daemon("fault")

        self.sync_now()
        wait_until("first attempt", lambda: self.attempts() >= 1, log=d.log)
        if self.fault == "timeout" or self.hi > 1:
            # Mid-run (a request hangs, or retries wait): the loop still
            # answers, and starts no second run.
            self.sync_now()
            wait_until("'already running'", lambda: self.asked_while_running() >= 1, log=d.log)
        if self.end == "in_flight":
            wait_until("the retry after the timeout", lambda: self.attempts() >= 2, log=d.log)
            time.sleep(0.5)  # a third request would need a second 30 s timeout
        else:
            wait_until("the run's end", lambda: self.runs(last_good), log=d.log)
        if self.endpoint == TOKEN:
            # Two more runs inside the token's backoff: no request, no wait.
            for n in (2, 3):
                self.sync_now()
                wait_until(f"run {n}", lambda: len(self.runs(last_good)) >= n, log=d.log)
            d.notify.wait_for(lambda m: "STATUS=DEGRADED: port-sheet sync failing 3 runs in a row" in m,
                              timeout=WAIT)

        n = self.attempts()
        self.observed["attempts"] = n
        t.assertGreaterEqual(n, self.lo, d.log())
        t.assertLessEqual(n, self.hi, d.log())
        runs = self.runs(last_good)
        stats = self.google.stats()
        logged = self.log_attempts()
        code, status = self.status()

        if self.endpoint == TOKEN:
            t.assertEqual(len(runs), 3, runs)
            for r in runs:
                t.assertEqual(r["ok"], 0, r)
                t.assertRegex(r["error"], r"^no Google access token \(backoff\): " + self.error)
            t.assertEqual(stats["get"], 0, "no values.get without a token")
            # One failure logged, its backoff at least 30 s, or Retry-After.
            t.assertEqual(len(logged), 1, d.log())
            t.assertRegex(logged[0].group(1), self.error)
            t.assertGreaterEqual(int(logged[0].group(2)), max(30, retry_after(self.fault)), logged[0].group(0))
            status_line = d.notify.fields("STATUS")[-1]
            t.assertRegex(status_line, r"^DEGRADED: port-sheet sync failing 3 runs in a row: "
                                       r"no Google access token \(backoff\): " + self.error)
            t.assertEqual(code, 1, status)
            t.assertEqual([p["kind"] for p in status["problems"]], ["sync_failing"], status["problems"])
            # Transient: the token is not taken for dead.
            t.assertEqual(status["oauth"]["token"], "ok", status["oauth"])
            t.assertRegex(status["oauth"]["last_error"], self.error)
            t.assertEqual(status["sheets"]["failing_runs"], 3)
        else:
            t.assertEqual(stats["token"], 0, "the cached access token serves every attempt")
            t.assertLessEqual(self.asked_while_running(), 1)
            if self.end == "in_flight":
                t.assertEqual(runs, [], "the run is still retrying")
                t.assertEqual(len(logged), 1, d.log())
                t.assertEqual(logged[0].group(2), "1", logged[0].group(0))  # retry 1 of 5
                t.assertRegex(logged[0].group(1), self.error)
            else:
                t.assertEqual(len(runs), 1, runs)  # `sync --now` mid-run started none
                t.assertEqual((runs[0]["ok"], runs[0]["rows"], runs[0]["changed"]), (0, 0, 0), runs)
                t.assertRegex(runs[0]["error"], self.error)
                # Every failed attempt logged; retries back off 2^n s, at least Retry-After.
                t.assertEqual(len(logged), self.hi, d.log())
                t.assertRegex(logged[-1].group(4) or "", self.error)
                for i, m in enumerate(logged[:-1]):
                    t.assertEqual(int(m.group(2)), i + 1, m.group(0))
                    t.assertGreaterEqual(int(m.group(3)), max(2 ** i, retry_after(self.fault)), m.group(0))
                times = self.attempt_times()
                if times is not None:
                    for i, gap in enumerate(b - a for a, b in zip(times, times[1:])):
                        t.assertGreaterEqual(gap, max(2 ** i, retry_after(self.fault)) - GAP_SLACK, times)
                t.assertEqual(status["sheets"]["failing_runs"], 1)
                t.assertEqual(status["sheets"]["last_error"], runs[0]["error"])
            # One failed run is not yet a health problem.
            t.assertNotIn("DEGRADED", d.notify.fields("STATUS")[-1])
            t.assertEqual(code, 0, status)

        t.assertEqual(self.snapshot(), before, "port_sheet and port-sheet.json untouched")
        t.assertIsNone(d.proc.poll(), "the daemon is still running")
        self.stop_daemon(d)
        if self.end == "in_flight":
            # Stopped mid-run: its row stays unfinished (ended_at NULL).
            rows = self.runs(last_good, finished=False)
            t.assertEqual([(r["ended_at"], r["ok"]) for r in rows], [(None, 0)], rows)
        t.assertEqual(self.snapshot(), before)

    def hook_row(self):
        t = self.t
        answer = fault_answer(HOOK, self.fault)
        if answer:
            self.google.call("/_script", {"hook": [answer] * (self.hi + 2)})
        g = self.google.url
        self.write_config("fault.conf", f"{g}/token", g, webhook_url=f"{self.fault_base()}/hook")
        # No token file: the "no Google token yet" alert, at once.
        d = self.daemon = self.start_daemon("fault")
        wait_until(f"{self.lo} webhook attempts", lambda: self.attempts() >= self.lo, log=d.log)
        first = time.monotonic()
        if self.end == "delivered":
            # Longer than the first retry's 5 s: a retry would show by now.
            time.sleep(max(0.0, first + 6 - time.monotonic()))
        else:
            time.sleep(0.5)  # the next retry is at least 10 s away
        n = self.attempts()
        self.observed["attempts"] = n
        t.assertGreaterEqual(n, self.lo, d.log())
        t.assertLessEqual(n, self.hi, d.log())

        # The loop answers during the retries: `sync --now` is a new run.
        before = len(self.runs())
        self.sync_now()
        wait_until("a sync run", lambda: len(self.runs()) > before, log=d.log)

        logged = self.log_attempts()
        s = self.google.stats()
        t.assertEqual((s["token"], s["get"]), (0, 0), "no token, no Google requests")
        text = f"jada-agent on {socket.gethostname()}: ALERT: no Google token yet: run 'jada-agent auth google'"
        if answer:
            t.assertEqual([r["body"] for r in s["requests"]], [{"text": text}] * n, "the same alert each time")
        if self.end == "delivered":
            t.assertEqual(logged, [], d.log())
        else:
            # Failures logged with their cause; retried after 5 s, then 10 s (at least Retry-After).
            complete = [m for m in logged if m.group(2)]
            t.assertGreaterEqual(len(complete), n - 1, d.log())
            t.assertLessEqual(len(complete), n, d.log())
            for i, m in enumerate(complete):
                t.assertRegex(m.group(1), rf"^(?:{self.error})$")  # the cause, nothing glued on
                t.assertEqual(int(m.group(2)), max(5 << i, retry_after(self.fault)), m.group(0))
            t.assertFalse([m for m in logged if m.group(3)], "no giving up within 6 attempts")
            times = self.attempt_times()
            if times is not None:
                t.assertEqual(len(times), n)
                for i, gap in enumerate(b - a for a, b in zip(times, times[1:])):
                    t.assertGreaterEqual(gap, max(5 << i, retry_after(self.fault)) - GAP_SLACK, times)
        t.assertIsNone(d.proc.poll(), "the daemon is still running")
        self.stop_daemon(d)


@needs_root
class HttpFaultMatrix(TempStateTest):
    def setUp(self):
        super().setUp()
        for tool in ("openssl", "ip"):
            if not shutil.which(tool):
                self.fail(f"`{tool}` is needed (tools/install-deps check installs it)")
        # A certificate for 127.0.0.1 that nothing trusts (self-signed).
        self.cert = (os.path.join(self.tmp, "untrusted.crt"), os.path.join(self.tmp, "untrusted.key"))
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-out", self.cert[0], "-keyout", self.cert[1]],
                           capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_http_fault_matrix(self):
        cases = [Case(self, n, row) for n, row in enumerate(CASES)]
        # All rows at once, unless told fewer (`make valgrind`: 32 daemons
        # under valgrind at once would starve each other past the timeouts).
        workers = int(os.environ.get("JADA_FAULT_ROWS_AT_ONCE", "0")) or len(cases)
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(c.run) for c in cases]
            concurrent.futures.wait(futures)
        print()
        for c, f in zip(cases, futures):
            e = f.exception()
            print(f"    {c.endpoint:<10} {c.fault:<22} {c.end:<9} attempts {c.observed.get('attempts', '?')!s:<2} "
                  f"{'ok' if e is None else 'FAILED'}  {c.observed.get('seconds', 0):5.1f} s")
        for c, f in zip(cases, futures):
            with self.subTest(endpoint=c.endpoint, fault=c.fault):
                f.result()
