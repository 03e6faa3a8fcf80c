#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Projects: the time from `task add` to claude's start with and without a
worktree to create, on a repository of 10,000 files, and the loop's
responsiveness meanwhile (the largest gap between two watchdog pings, with
WATCHDOG_USEC = 200 ms: sd-event pings every 100-150 ms when the loop runs).

usage: bench/project.py [--bin ./jada-agent] [--runs 5] [--files 10000]"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from core import Run  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fake"))
from dummy_keys import API_KEY  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="B", GIT_AUTHOR_EMAIL="b@example.org", GIT_COMMITTER_NAME="B",
               GIT_COMMITTER_EMAIL="b@example.org", HOME="/nonexistent")


def make_repo(path, files):
    os.makedirs(path)
    subprocess.run(["git", "-C", path, "init", "-q", "-b", "main"], check=True, env=GIT_ENV)
    for i in range(files):
        d = os.path.join(path, f"d{i // 100:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:05d}.txt"), "w") as f:
            f.write(f"file {i}\n" * 20)
    subprocess.run(["git", "-C", path, "add", "-A"], check=True, env=GIT_ENV)
    subprocess.run(["git", "-C", path, "commit", "-q", "-m", "10k files"], check=True, env=GIT_ENV)


def log_entries(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./jada-agent")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=10000)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="jada-bench-project-")
    try:
        repo = os.path.join(tmp, "repo")
        t = time.monotonic()
        make_repo(repo, args.files)
        print(f"repository of {args.files} files made in {time.monotonic() - t:.1f} s")
        # git alone, for comparison: the same worktree add by hand, after
        # one that is not counted (the first add after the commit refreshes
        # the index: seconds on a cold cache).
        wt = os.path.join(tmp, "wt")
        by_hand = []
        for i in range(args.runs + 1):
            t = time.monotonic()
            subprocess.run(["git", "-C", repo, "worktree", "add", "-q", "-b", f"b{i}", wt, "main"], check=True,
                           env=GIT_ENV)
            if i > 0:
                by_hand.append(time.monotonic() - t)
            subprocess.run(["git", "-C", repo, "worktree", "remove", "--force", wt], check=True, env=GIT_ENV)
        scen = os.path.join(tmp, "scenarios")
        os.makedirs(scen)
        with open(os.path.join(scen, "default.json"), "w") as f:
            json.dump({"stream": "samples/v2.1.332_success.stream.jsonl", "write_files": {"out.txt": "x\n"}}, f)
        fake_log = os.path.join(tmp, "fake.log")
        config = os.path.join(tmp, "bench.conf")
        state = os.path.join(tmp, "state")
        with open(config, "w") as f:
            f.write(f"[daemon]\nstate_dir = {state}\npoll_interval = 60s\n[claude]\n"
                    f"command = {REPO}/tests/fake/fake-claude\nsessions_per_day = 1000\n"
                    f"[project big]\npath = {repo}\n")
        os.environ.update(FAKE_CLAUDE_SCENARIOS=scen, FAKE_CLAUDE_LOG=fake_log,
                          ANTHROPIC_API_KEY=API_KEY, WATCHDOG_USEC="200000")
        os.environ.pop("WATCHDOG_PID", None)

        r = Run(args.bin, tmp, config)
        r.wait_ready()

        def run_task(*extra):
            n = len(log_entries(fake_log))
            t0 = time.time()
            out = subprocess.run([args.bin, "-c", config, "task", "add", *extra, "bench"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            deadline = time.monotonic() + 120
            while len(log_entries(fake_log)) <= n:
                if time.monotonic() > deadline:
                    sys.exit("no session started within 120 s")
                time.sleep(0.002)
            started = log_entries(fake_log)[n]["started"]
            # Wait for the task to end and its worktree to go before the next.
            while True:
                shown = json.loads(subprocess.run([args.bin, "-c", config, "task", "show", out, "--json"],
                                                  check=True, capture_output=True, text=True).stdout)
                if shown["state"] == "done" and shown["worktree"] is None:
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"task {out} did not finish: {shown}")
                time.sleep(0.02)
            return started - t0

        plain = [run_task() for _ in range(args.runs)]
        with r.cond:
            mark = len(r.messages)
        project = [run_task("--project", "big") for _ in range(args.runs)]
        with r.cond:
            pings = [at for at, m in r.messages[mark:] if "WATCHDOG=1" in m.split("\n")]
        r.stop()
        gaps = [b - a for a, b in zip(pings, pings[1:])]

        def row(name, v, unit="ms", scale=1000.0):
            v = [x * scale for x in v]
            print(f"{name:<52} {statistics.median(v):>9.1f} {min(v):>9.1f} {max(v):>9.1f}  {unit}")
        print(f"{'':<52} {'median':>9} {'min':>9} {'max':>9}")
        row("task add to claude's start, no project", plain)
        row(f"task add to claude's start, new worktree ({args.files} files)", project)
        row("git worktree add by hand (same repository)", by_hand)
        print(f"watchdog pings during the project tasks: {len(pings)}, largest gap {max(gaps) * 1000:.1f} ms, "
              f"median {statistics.median(gaps) * 1000:.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
