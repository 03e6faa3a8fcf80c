#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The dashboard: the daemon's private memory (RssAnon) with [web] off and
on, idle and after serving pages, and each page's latency (p50, p99) on a
state of 500 tasks, 100 of them run to done by the fake claude (so with
sessions and transcripts). Prints figures; asserts nothing.

usage: bench/web.py [--bin ./jada-agent] [--requests 300]"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from core import Run, proc_status  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = os.path.join(REPO, "tests", "fake", "fake-claude")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(path, state, port):
    with open(path, "w") as f:
        f.write(f"[daemon]\nstate_dir = {state}\npoll_interval = 1h\n"
                f"[claude]\ncommand = {FAKE}\nsessions_per_day = 1000\nconcurrency = 4\n")
        if port:
            f.write(f"[web]\nlisten = 127.0.0.1:{port}\n")


def cli(binary, config, *args):
    return subprocess.run([binary, "-c", config, *args], check=True, capture_output=True, text=True).stdout


def done_count(binary, config):
    return sum(1 for t in json.loads(cli(binary, config, "task", "list", "--json")) if t["state"] == "done")


def kb(status, key):
    return int(status[key].split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./jada-agent")
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    tmp = tempfile.mkdtemp(prefix="jada-bench-web-")
    try:
        state, config = os.path.join(tmp, "state"), os.path.join(tmp, "jada-agent.conf")
        scen = os.path.join(tmp, "scenarios")
        os.makedirs(scen)
        with open(os.path.join(scen, "default.json"), "w") as f:
            json.dump({"stream": "samples/v2.1.332_success.stream.jsonl"}, f)
        os.environ.update(FAKE_CLAUDE_SCENARIOS=scen, FAKE_CLAUDE_LOG=os.path.join(tmp, "fake.log"),
                          ANTHROPIC_API_KEY="sk-ant-bench-0000-not-a-real-key")

        # The state: 100 tasks run to done, 400 that wait.
        write_config(config, state, 0)
        r = Run(args.bin, tmp, config)
        r.wait_ready()
        for i in range(100):
            cli(args.bin, config, "task", "add", "--title", f"task {i} <b>", f"prompt {i}")
        deadline = time.monotonic() + 300
        while done_count(args.bin, config) < 100 and time.monotonic() < deadline:
            time.sleep(0.5)
        for i in range(400):
            cli(args.bin, config, "task", "add", "--after", "30d", "--title", f"later {i}", f"prompt later {i}")
        time.sleep(2)
        r.stop()
        r = Run(args.bin, tmp, config)     # [web] off, fresh: the baseline
        r.wait_ready()
        time.sleep(2)
        off = proc_status(r.proc.pid)
        r.stop()

        port = free_port()
        write_config(config, state, port)
        r = Run(args.bin, tmp, config)
        r.wait_ready()
        time.sleep(2)
        on_idle = proc_status(r.proc.pid)
        done_id = next(t["id"] for t in json.loads(cli(args.bin, config, "task", "list", "--json"))
                       if t["state"] == "done")
        pages = ["/", "/tasks", f"/tasks/{done_id}", "/sessions", "/api/tasks", f"/api/tasks/{done_id}",
                 "/api/status", "/metrics"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        times, sizes = {}, {}
        for page in pages:
            t = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                conn.request("GET", page, headers={"Host": f"127.0.0.1:{port}"})
                resp = conn.getresponse()
                body = resp.read()
                t.append(time.perf_counter() - t0)
                assert resp.status == 200, (page, resp.status)
            times[page], sizes[page] = t, len(body)
            if os.environ.get("BENCH_WEB_DUMP"):
                print(page, body[:3000].decode("utf-8", "replace"))
        conn.close()
        served = proc_status(r.proc.pid)
        r.stop()

        print(f"jada-agent dashboard, {time.strftime('%Y-%m-%d', time.gmtime())}, {os.uname().machine}, "
              f"{os.cpu_count()} CPUs; 500 tasks (100 done, with transcripts); {args.requests} requests a page, "
              f"one keep-alive connection")
        print(f"memory, [web] off, idle:       RssAnon {off['RssAnon']}, VmRSS {off['VmRSS']}")
        print(f"memory, [web] on, idle:        RssAnon {on_idle['RssAnon']}, VmRSS {on_idle['VmRSS']} "
              f"(+{kb(on_idle, 'RssAnon') - kb(off, 'RssAnon')} kB RssAnon)")
        print(f"memory, [web] on, after pages: RssAnon {served['RssAnon']}, VmRSS {served['VmRSS']}, "
              f"VmHWM {served['VmHWM']} (+{kb(served, 'RssAnon') - kb(off, 'RssAnon')} kB RssAnon over off)")
        print(f"{'page':<22} {'bytes':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for page in pages:
            t = sorted(times[page])
            p99 = t[min(len(t) - 1, int(len(t) * 0.99))]
            print(f"{page:<22} {sizes[page]:>8} {statistics.median(t) * 1000:>8.2f} {p99 * 1000:>8.2f} "
                  f"{t[-1] * 1000:>8.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
