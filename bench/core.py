#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Measures the daemon core: start to READY=1 (new and existing db), SIGTERM
to exit when idle, and CPU time and memory over an idle period.
Prints a table; asserts nothing (figures are reported, not tested)."""

import argparse
import calendar
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fake"))
from dummy_keys import API_KEY  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cpu_seconds(pid):
    # schedstat's first field is time on a CPU in ns: far finer than the
    # 10 ms ticks of /proc/PID/stat's utime and stime.
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except OSError:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


class Run:
    """The daemon under a stand-in NOTIFY_SOCKET. A thread reads the socket
    all the time, as systemd does: a full datagram queue (10 messages) would
    block the daemon in sd_notify(). Each message is kept with the
    monotonic time it arrived."""

    def __init__(self, binary, tmp, config):
        self.sock_path = os.path.join(tmp, f"notify-{time.monotonic_ns()}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(0.05)
        self.messages = []
        self.cond = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        env.pop("INVOCATION_ID", None)
        env.pop("JOURNAL_STREAM", None)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([binary, "run", "-c", config], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _read(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.cond:
                self.messages.append((time.monotonic(), data.decode()))
                self.cond.notify_all()

    def _wait(self, predicate, timeout, start=0):
        deadline = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.messages):
                    if predicate(self.messages[i][1]):
                        return self.messages[i][0], i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no such notify message")
                self.cond.wait(left)

    def wait_ready(self, timeout=10):
        at, _ = self._wait(lambda m: "READY=1" in m.split("\n"), timeout)
        return at - self.t0

    def stop(self):
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        took = time.monotonic() - t
        self.closed = True
        self.reader.join()
        self.sock.close()
        os.unlink(self.sock_path)
        return took, rc


def row(name, values, unit, scale=1.0):
    v = [x * scale for x in values]
    print(f"{name:<38} {statistics.median(v):>10.2f} {min(v):>10.2f} {max(v):>10.2f}  {unit}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./jada-agent")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--idle", type=float, default=120, help="seconds of idle measurement")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="jada-bench-")
    config = os.path.join(tmp, "bench.conf")
    with open(config, "w") as f:
        f.write(f"[daemon]\nstate_dir = {tmp}/state\npoll_interval = 60s\n")
    try:
        first = Run(args.bin, tmp, config)
        new_db = first.wait_ready()
        first.stop()

        ready, stop = [], []
        for _ in range(args.runs):
            r = Run(args.bin, tmp, config)
            ready.append(r.wait_ready())
            time.sleep(0.2)
            took, rc = r.stop()
            if rc != 0:
                sys.exit(f"daemon exited {rc} on SIGTERM")
            stop.append(took)

        r = Run(args.bin, tmp, config)
        r.wait_ready()
        time.sleep(1)
        pid = r.proc.pid
        cpu0 = cpu_seconds(pid)
        ctx0 = int(proc_status(pid)["voluntary_ctxt_switches"])
        time.sleep(args.idle)
        cpu1 = cpu_seconds(pid)
        st = proc_status(pid)
        ctx1 = int(st["voluntary_ctxt_switches"])
        r.stop()

        # Memory while a session runs: the daemon's own, the child excluded.
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        scen = os.path.join(tmp, "scenarios")
        os.makedirs(scen)
        with open(os.path.join(scen, "default.json"), "w") as f:
            f.write('{"stream": "samples/v2.1.332_success.stream.jsonl", "hang_after": 6}')
        with open(config, "a") as f:
            f.write(f"[claude]\ncommand = {repo}/tests/fake/fake-claude\n")
        env_backup = dict(os.environ)
        os.environ["FAKE_CLAUDE_SCENARIOS"] = scen
        os.environ["ANTHROPIC_API_KEY"] = API_KEY  # without one no session starts
        subprocess.run([args.bin, "-c", config, "task", "add", "bench"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = Run(args.bin, tmp, config)
        r.wait_ready()
        deadline = time.monotonic() + 10
        sess = None
        while time.monotonic() < deadline:
            time.sleep(0.05)
            children = open(f"/proc/{r.proc.pid}/task/{r.proc.pid}/children").read().split()
            if children:
                time.sleep(1.0)  # the child has printed its lines; the daemon parsed them
                sess = proc_status(r.proc.pid)
                break
        r.stop()

        # task add to session start, with the daemon running and idle.
        with open(os.path.join(scen, "default.json"), "w") as f:
            f.write('{"stream": "samples/v2.1.332_success.stream.jsonl"}')
        with open(config, "a") as f:
            f.write("sessions_per_day = 1000\n")
        r = Run(args.bin, tmp, config)
        r.wait_ready()
        add_to_start = []
        for _ in range(args.runs):
            time.sleep(0.3)
            with r.cond:
                mark = len(r.messages)
            t = time.monotonic()
            out = subprocess.run([args.bin, "-c", config, "task", "add", "bench"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            at, _ = r._wait(lambda m, needle=f"Running task {out} ": needle in m, 20, mark)
            add_to_start.append(at - t)
        # --after: from the moment a task falls due to its session's start,
        # with poll_interval 60 s (the timer is armed for the run_after).
        due_to_start = []
        for _ in range(3):
            with r.cond:
                mark = len(r.messages)
            out = subprocess.run([args.bin, "-c", config, "task", "add", "--after", "2s", "bench"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            shown = json.loads(subprocess.run([args.bin, "-c", config, "task", "show", out, "--json"], check=True,
                                              capture_output=True, text=True).stdout)
            due = calendar.timegm(time.strptime(shown["run_after"], "%Y-%m-%dT%H:%M:%SZ"))
            at, _ = r._wait(lambda m, needle=f"Running task {out} ": needle in m, 20, mark)
            due_to_start.append(time.time() - (time.monotonic() - at) - due)
        r.stop()
        os.environ.clear()
        os.environ.update(env_backup)

        # Memory during a sync (a Sheets answer that hangs), and the HTTP
        # requests of a simulated hour of a dead token: 60 runs, as a
        # 1-minute interval would make (the default 30 min makes 2).
        google = subprocess.Popen([sys.executable, os.path.join(repo, "tests/fake/fake_google_sheets.py")],
                                  stdout=subprocess.PIPE, text=True)
        port = int(google.stdout.readline())
        gurl = f"http://127.0.0.1:{port}"

        def gcall(path, body=None):
            data = None if body is None else json.dumps(body).encode()
            with urllib.request.urlopen(gurl + path, data=data, timeout=10) as resp:
                return json.loads(resp.read())

        sync_conf = os.path.join(tmp, "sync.conf")
        sync_state = os.path.join(tmp, "sync-state")
        os.makedirs(sync_state, mode=0o700)

        def token_file(refresh):
            fd = os.open(os.path.join(sync_state, "google-token.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"refresh_token": refresh}, f)

        token_file("r1")
        with open(sync_conf, "w") as f:
            f.write(f"[daemon]\nstate_dir = {sync_state}\n[sheets]\nenabled = yes\nspreadsheet_id = S\n"
                    f"client_id = c\ninterval = 1min\ntoken_url = {gurl}/token\napi_url = {gurl}\n")
        os.environ["GOOGLE_CLIENT_SECRET"] = "bench-secret"
        gcall("/_sheet", {"values": [["port", "city"]] + [[f"p{i}", "c"] for i in range(500)]})
        gcall("/_script", {"get": [{"hang": 3}]})
        r = Run(args.bin, tmp, sync_conf)
        r.wait_ready()
        deadline = time.monotonic() + 10
        while gcall("/_stats")["get"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        during_sync = proc_status(r.proc.pid)
        r.stop()

        token_file("r-dead")
        gcall("/_script", {"clear": True, "token": [{"status": 400, "body": {
            "error": "invalid_grant", "error_description": "Token has been expired or revoked."}}] * 1000})
        before = gcall("/_stats")
        r = Run(args.bin, tmp, sync_conf)
        r.wait_ready()
        for _ in range(60):
            subprocess.run([args.bin, "-c", sync_conf, "sync", "--now"], check=True, capture_output=True)
            time.sleep(0.05)
        time.sleep(1)
        after = gcall("/_stats")
        r.stop()
        google.terminate()
        google.wait()
        dead_token = {k: after[k] - before[k] for k in ("token", "get", "put")}
        os.environ.clear()
        os.environ.update(env_backup)

        print(f"jada-agent core, {time.strftime('%Y-%m-%d', time.gmtime())}, {os.uname().machine}, "
              f"{os.cpu_count()} CPUs; {args.runs} runs")
        print(f"{'':<38} {'median':>10} {'min':>10} {'max':>10}")
        print(f"{'start to READY=1, new db':<38} {new_db * 1000:>10.2f} {'':>10} {'':>10}  ms")
        row("start to READY=1, existing db", ready, "ms", 1000)
        row("SIGTERM to exit, idle", stop, "ms", 1000)
        minutes = args.idle / 60
        print(f"idle {args.idle:.0f} s: CPU {cpu1 - cpu0:.6f} s ({(cpu1 - cpu0) / minutes:.4f} s/min), "
              f"voluntary wakeups {(ctx1 - ctx0) / minutes:.1f}/min")
        print(f"idle memory: RssAnon {st['RssAnon']}, VmRSS {st['VmRSS']}, VmHWM {st['VmHWM']}")
        row("task add to session start", add_to_start, "ms", 1000)
        row("--after: due to session start", due_to_start, "ms", 1000)
        print(f"during a sync (a Sheets answer in flight): RssAnon {during_sync['RssAnon']}, "
              f"VmRSS {during_sync['VmRSS']}")
        print(f"a dead Google token for a simulated hour (60 sync runs): {dead_token['token']} token request(s), "
              f"{dead_token['get']} Sheets request(s)")
        if sess:
            print(f"during a session (child excluded): RssAnon {sess['RssAnon']}, VmRSS {sess['VmRSS']}, "
                  f"VmHWM {sess['VmHWM']}")
        else:
            print("during a session: no session started within 10 s (not measured)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
