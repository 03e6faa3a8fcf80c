#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Measures the daemon core: start to READY=1 (new and existing db), SIGTERM
to exit when idle, and CPU time and memory over an idle period.
Prints a table; asserts nothing (figures are reported, not tested)."""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

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
    def __init__(self, binary, tmp, config):
        self.sock_path = os.path.join(tmp, f"notify-{time.monotonic_ns()}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        env.pop("INVOCATION_ID", None)
        env.pop("JOURNAL_STREAM", None)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([binary, "run", "-c", config], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, timeout=10):
        self.sock.settimeout(timeout)
        while True:
            msg = self.sock.recv(65536).decode()
            if "READY=1" in msg.split("\n"):
                return time.monotonic() - self.t0

    def stop(self):
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        took = time.monotonic() - t
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
        if sess:
            print(f"during a session (child excluded): RssAnon {sess['RssAnon']}, VmRSS {sess['VmRSS']}, "
                  f"VmHWM {sess['VmHWM']}")
        else:
            print("during a session: no session started within 10 s (not measured)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
