#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fleet's cost and reflexes against a real PostgreSQL 15 in a temp dir
(tests/lib/pg.py): each daemon's private memory (RssAnon) and CPU idle
without [database] url and as a node of a fleet of 3 (connected,
heartbeating); how long the leader's lock takes to pass on after kill -9;
the time from `task add` on a machine with no daemon to the session's
start on a node; how long the nodes take to be back after the server
returns; and with
--claims, claims/s and latency from one queue with 1 and 3 claiming nodes,
beside SQLite's (bench/claims.c). Prints figures; asserts nothing.

usage: bench/fleet.py [--bin ./jada-agent] [--idle 30] [--claims build/bench/claims]"""

import argparse
import calendar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "fake"))
from core import cpu_seconds, proc_status  # noqa: E402
from dummy_keys import API_KEY  # noqa: E402
from pg import PostgresServer  # noqa: E402

def write_config(tmp, name, url=None, lease="60s", extra=""):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "c.conf")
    with open(conf, "w") as f:
        f.write(f"[daemon]\nstate_dir = {d}/state\n" + extra)
        if url:
            f.write(f"[database]\nurl = {url}\nnode_name = {name}\nlease = {lease}\n")
    return d, conf


def start(binary, tmp, name, url=None, lease="60s", extra=""):
    d, conf = write_config(tmp, name, url, lease, extra)
    env = dict(os.environ, ANTHROPIC_API_KEY=API_KEY)
    for k in ("NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM", "WATCHDOG_USEC"):
        env.pop(k, None)
    log = open(os.path.join(d, "log"), "w")
    p = subprocess.Popen([binary, "run", "-c", conf], env=env, stdout=log, stderr=log)
    p.log_path = os.path.join(d, "log")
    return p


def log_of(p):
    with open(p.log_path) as f:
        return f.read()


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def memory(procs, idle):
    cpu0 = [cpu_seconds(p.pid) for p in procs]
    time.sleep(idle)
    rows = []
    for p, c0 in zip(procs, cpu0):
        s = proc_status(p.pid)
        rows.append((int(s["RssAnon"].split()[0]), int(s["VmRSS"].split()[0]), cpu_seconds(p.pid) - c0))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./jada-agent")
    ap.add_argument("--idle", type=float, default=30, help="seconds of idle measured")
    ap.add_argument("--runs", type=int, default=20, help="tasks added for the add-to-start time")
    ap.add_argument("--claims", help="bench/claims.c's binary: claims on PostgreSQL beside SQLite")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    tmp = tempfile.mkdtemp(prefix="jada-bench-fleet-")
    procs = []
    try:
        with PostgresServer() as pg:
            url = pg.url()
            if args.claims:
                # Side by side, in one run: SQLite, then 1 and 3 nodes on a
                # server that fsyncs its commits as SQLite does (the tests'
                # servers do not).
                subprocess.run([args.claims], check=True)
                with PostgresServer(durable=True) as durable:
                    for nodes in (1, 3):
                        subprocess.run([args.claims, durable.createdb(f"claims_{nodes}"), str(nodes)], check=True)
            alone = [start(binary, tmp, f"alone-{i}") for i in range(3)]
            procs += alone
            time.sleep(2)
            solo = memory(alone, args.idle)
            for p in alone:
                p.terminate()
                p.wait()
            # The nodes run the fake claude; the time a session starts is
            # the stamp of its node's "session started" line.
            scenarios = os.path.join(tmp, "scenarios")
            os.makedirs(scenarios)
            with open(os.path.join(scenarios, "default.json"), "w") as f:
                f.write('{"stream": "samples/v2.1.332_success.stream.jsonl"}')
            os.environ["FAKE_CLAUDE_SCENARIOS"] = scenarios
            claude = (f"[claude]\ncommand = {os.path.join(REPO, 'tests', 'fake', 'fake-claude')}\n"
                      "sessions_per_day = 1000\n")
            fleet = [start(binary, tmp, f"node-{i}", url, lease="6s", extra=claude) for i in range(3)]
            procs += fleet
            wait_for(lambda: all("registered in the fleet" in log_of(p) for p in fleet))
            time.sleep(2)
            node = memory(fleet, args.idle)

            print(f"idle for {args.idle:.0f} s, 3 daemons each (kB; CPU in ms):")
            print(f"{'':28} {'RssAnon':>8} {'VmRSS':>8} {'CPU':>8}")
            for label, rows in (("without [database] url", solo), ("a node (heartbeat every 2 s)", node)):
                for r in rows:
                    print(f"{label:28} {r[0]:8d} {r[1]:8d} {r[2] * 1000:8.1f}")
            extra = sum(r[0] for r in node) / 3 - sum(r[0] for r in solo) / 3
            extra_vm = sum(r[1] for r in node) / 3 - sum(r[1] for r in solo) / 3
            print(f"libpq and the node's state cost each daemon {extra:+.0f} kB of RssAnon "
                  f"({extra_vm:+.0f} kB of VmRSS, mostly libpq's shared pages)")

            # task add on a machine with no daemon (its own node name) to
            # the session's start on one of the nodes: NOTIFY, not the
            # poll (60 s), wakes them.
            _, cli_conf = write_config(tmp, "cli-machine", url)
            from_call, from_commit = [], []
            for n in range(args.runs):
                time.sleep(0.3)
                t0 = time.time()
                out = subprocess.run([binary, "-c", cli_conf, "task", "add", f"bench {n}"], check=True,
                                     capture_output=True, text=True).stdout.strip()
                t1 = time.time()
                needle = re.compile(rf"^(\S+)Z \S+ +task {out}: session started", re.M)
                stamp = []
                wait_for(lambda: any(stamp.extend(needle.findall(log_of(p))) or stamp for p in fleet), 20)
                if not stamp:
                    print(f"task {out} did not start within 20 s", file=sys.stderr)
                    continue
                at = calendar.timegm(time.strptime(stamp[0][:19], "%Y-%m-%dT%H:%M:%S")) + float(stamp[0][19:])
                from_call.append(at - t0)
                from_commit.append(at - t1)
            for label, xs in (("task add (the command's start)", from_call),
                              ("task add (the command's exit)", from_commit)):
                if xs:
                    xs.sort()
                    print(f"{label} to the session's start on a node: median {xs[len(xs) // 2] * 1000:.0f} ms, "
                          f"max {xs[-1] * 1000:.0f} ms ({len(xs)} tasks)")

            # The leader dies: how long until another holds the lock.
            def leader():
                rows = pg.psql_rows("SELECT name FROM nodes WHERE leader AND stopped_at IS NULL")
                return rows[0][0] if len(rows) == 1 else None
            wait_for(lambda: leader() is not None)
            lead = int(leader().split("-")[1])
            killed = time.monotonic()
            fleet[lead].kill()
            fleet[lead].wait()
            others = [p for i, p in enumerate(fleet) if i != lead]
            wait_for(lambda: any(log_of(p).count("now leads the fleet") for p in others))
            took = time.monotonic() - killed
            print(f"kill -9 of the leader to another node leading: {took * 1000:.0f} ms (heartbeat every 2 s)")

            # The server stops for 10 s: how long after it returns are the nodes back.
            pg.stop()
            time.sleep(10)
            before = [log_of(p).count("registered in the fleet") for p in others]
            back = time.monotonic()
            pg.start()
            wait_for(lambda: all(log_of(p).count("registered in the fleet") > b for p, b in zip(others, before)))
            print(f"server back to every node registered again: {(time.monotonic() - back) * 1000:.0f} ms "
                  "(reconnect backoff 0.5 s doubling to 10 s)")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
        shutil.rmtree(tmp, True)


if __name__ == "__main__":
    main()
