#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The dashboard: the daemon's private memory (RssAnon) with [web] off and
on, idle and after serving pages, and each page's latency (p50, p99) on a
state of 501 tasks, 101 of them run to done by the fake claude (so with
sessions and transcripts), one with a 10 MB transcript. Prints figures; asserts nothing.

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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fake"))
from dummy_keys import API_KEY  # noqa: E402

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


def big_stream(path, mb):
    """The success sample with its middle repeated 8 times (24 turns, under
    max_turns), each tool result padded with varied text so that the whole
    is about mb MB: a session that read and printed a lot."""
    import random
    rnd = random.Random(1)
    words = ["alpha", "beta", "gamma", "delta", "port", "city", "ship", "cargo", "berth", "tide"]
    sample = os.path.join(REPO, "tests", "fake", "scenarios", "samples", "v2.1.332_success.stream.jsonl")
    with open(sample) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    head, body, tail = lines[:1], lines[1:-1], lines[-1:]
    rounds = 8     # three turns each: 24, under max_turns (30)
    results = sum(1 for o in body if o.get("type") == "user")
    pad = int(mb * 1e6 / rounds / max(1, results))
    size = 0
    with open(path, "w") as f:
        for o in head:
            f.write(json.dumps(o) + "\n")
        for n in range(rounds):
            for o in body:
                o = json.loads(json.dumps(o))
                if isinstance(o.get("message"), dict) and "id" in o["message"]:
                    o["message"]["id"] = f"{o['message']['id']}_{n}"
                if o.get("type") == "user":
                    text = " ".join(rnd.choice(words) for _ in range(pad // 6))
                    o["message"]["content"][0]["content"] = text
                line = json.dumps(o) + "\n"
                f.write(line)
                size += len(line)
        for o in tail:
            f.write(json.dumps(o) + "\n")
    return size


def big_sessions(state, task_id):
    import sqlite3
    db = sqlite3.connect(os.path.join(state, "jada-agent.db"))
    (sid,) = db.execute("SELECT max(id) FROM sessions WHERE task_id = ?", (task_id,)).fetchone()
    db.close()
    return sid


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
                          ANTHROPIC_API_KEY=API_KEY)

        # The state: 100 tasks run to done, 400 that wait.
        write_config(config, state, 0)
        r = Run(args.bin, tmp, config)
        r.wait_ready()
        for i in range(100):
            cli(args.bin, config, "task", "add", "--title", f"task {i} <b>", f"prompt {i}")
        deadline = time.monotonic() + 300
        while done_count(args.bin, config) < 100 and time.monotonic() < deadline:
            time.sleep(0.5)
        # One task whose session left a 10 MB transcript.
        big = os.path.join(tmp, "big.stream.jsonl")
        big_bytes = big_stream(big, 10)
        with open(os.path.join(scen, "001-big.json"), "w") as f:
            json.dump({"stream": big}, f)
        big_id = int(cli(args.bin, config, "task", "add", "--title", "big transcript", "a long one"))
        deadline = time.monotonic() + 120
        while json.loads(cli(args.bin, config, "task", "show", str(big_id), "--json"))["state"] != "done" and \
                time.monotonic() < deadline:
            time.sleep(0.2)
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
        pages = ["/", "/tasks", f"/tasks/{done_id}", f"/tasks/{big_id}", "/sessions", "/api/tasks", f"/api/tasks/{done_id}",
                 "/api/status", "/metrics"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        times, sizes = {}, {}
        for page in pages:
            t = []
            for _ in range(args.requests if page != f"/tasks/{big_id}" else max(20, args.requests // 5)):
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
        # The loop while big transcripts render (in children): "/" meanwhile.
        import threading
        stop = threading.Event()

        def render():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while not stop.is_set():
                c.request("GET", f"/tasks/{big_id}", headers={"Host": f"127.0.0.1:{port}"})
                c.getresponse().read()
            c.close()
        renderers = [threading.Thread(target=render) for _ in range(2)]
        for t in renderers:
            t.start()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        during = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            conn.request("GET", "/", headers={"Host": f"127.0.0.1:{port}"})
            conn.getresponse().read()
            during.append(time.perf_counter() - t0)
        conn.close()
        stop.set()
        for t in renderers:
            t.join()
        times["/ (2 clients on the 10 MB page)"] = during
        sizes["/ (2 clients on the 10 MB page)"] = sizes["/"]
        pages.append("/ (2 clients on the 10 MB page)")
        served = proc_status(r.proc.pid)
        r.stop()

        print(f"jada-agent dashboard, {time.strftime('%Y-%m-%d', time.gmtime())}, {os.uname().machine}, "
              f"{os.cpu_count()} CPUs; 501 tasks (101 done, with transcripts); {args.requests} requests a page, "
              f"one keep-alive connection; task {big_id}'s transcript: {big_bytes / 1e6:.1f} MB of stream-json, "
              f"{os.path.getsize(os.path.join(state, 'transcripts', str(big_sessions(state, big_id)) + '.jsonl.zst')) / 1e6:.2f} MB "
              f"compressed")
        print(f"memory, [web] off, idle:       RssAnon {off['RssAnon']}, VmRSS {off['VmRSS']}")
        print(f"memory, [web] on, idle:        RssAnon {on_idle['RssAnon']}, VmRSS {on_idle['VmRSS']} "
              f"(+{kb(on_idle, 'RssAnon') - kb(off, 'RssAnon')} kB RssAnon)")
        print(f"memory, [web] on, after pages: RssAnon {served['RssAnon']}, VmRSS {served['VmRSS']}, "
              f"VmHWM {served['VmHWM']} (+{kb(served, 'RssAnon') - kb(off, 'RssAnon')} kB RssAnon over off)")
        print(f"{'page':<34} {'bytes':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for page in pages:
            t = sorted(times[page])
            p99 = t[min(len(t) - 1, int(len(t) * 0.99))]
            print(f"{page:<34} {sizes[page]:>8} {statistics.median(t) * 1000:>8.2f} {p99 * 1000:>8.2f} "
                  f"{t[-1] * 1000:>8.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
