#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sub-tasks against resuming: the same work of about 50 turns, done as one
task that hits max_turns and is resumed (--resume) until it is done, or split
by its agent into 3 sub-tasks whose results its resumed session reads. For
each: sessions, turns (the sum of the sessions' turns, `sessions --json`),
requests to the API, the bytes of their bodies (the conversation the CLI
sends: the sum and the largest, and the part that is the "messages" array
alone), and the wall time from `task add` to done.

The real Claude Code CLI (build/claude-cli, 2.1.112) runs against the fake
Messages API of tests/e2e, in a private network namespace where only
loopback is up, as tests/blackbox/test_real_claude.py does (needs root and
`ip`). The fake is run from this file, with each request's body size added
to its log. Prints figures, asserts nothing.

The numbers: 50 steps, each a Bash call whose output is about 1.3 KB (25
lines of a build log), then the answer. With max_turns = 30, as the issue
says, 51 requests take two sessions (resumed once); the issue asks for a
task resumed twice, so max_turns is 20 here: 20 + 20 + 11 requests, three
sessions. Split: the parent's first session adds 3 sub-tasks in one Bash
call and ends (2 requests); the parts do 17, 17 and 16 steps (each under 20
turns: one session each); the parent's second session reads their report
and answers (1 request).

usage: bench/subtasks.py [--bin ./jada-agent] [--cli CLAUDE] [--steps 50] [--max-turns 20] [--timeout 900] [--keep]"""

import argparse
import contextlib
import ctypes
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from core import Run  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fake"))
from dummy_keys import API_KEY  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_DIR = os.path.join(REPO, "tests", "e2e")
CLI = os.path.join(REPO, "build", "claude-cli", "node_modules", ".bin", "claude")
REPORT = "Your sub-tasks have all ended"  # the daemon's message to a parent (src/queue-family.c)
CLONE_NEWNET = 0x40000000


def serve_fake(script, log):
    """The fake Messages API of the tests, each logged request with the size
    of its body ("bytes")."""
    sys.path.insert(0, FAKE_DIR)
    import fake_messages_api as fake

    body, record = fake.Handler.body, fake.Handler.record

    def sized_body(self):
        self.bench_bytes = int(self.headers.get("Content-Length") or 0)
        req = body(self)
        # The conversation proper, without the system prompt and the tools.
        self.bench_messages = len(json.dumps(req.get("messages"))) if isinstance(req, dict) else 0
        return req

    def sized_record(self, entry):
        entry["bytes"] = getattr(self, "bench_bytes", 0)
        entry["messages_bytes"] = getattr(self, "bench_messages", 0)
        entry["session"] = self.headers.get("x-claude-code-session-id")
        entry["at"] = time.time()
        record(self, entry)

    fake.Handler.body, fake.Handler.record = sized_body, sized_record
    sys.argv = [fake.__file__, script, "--log", log]
    fake.main()


@contextlib.contextmanager
def private_network():
    """Processes this thread starts within the block are in a new network
    namespace with only `lo` up (as in test_real_claude.py)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            sys.exit(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}: this bench needs root")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                print(f"setns back: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
                os._exit(3)
    finally:
        os.close(home)


class LoggedRun(Run):
    """core.Run with the daemon's stderr kept in a file."""

    def __init__(self, binary, tmp, config, env, log):
        self.sock_path = os.path.join(tmp, f"notify-{time.monotonic_ns()}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(0.05)
        self.messages = []
        self.cond = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        env = dict(env, NOTIFY_SOCKET=self.sock_path)
        for k in ("INVOCATION_ID", "JOURNAL_STREAM", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(k, None)
        self.t0 = time.monotonic()
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([binary, "run", "-c", config], env=env, stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=subprocess.STDOUT)


def step_command(tag, n="{n}"):
    # 25 lines of a build log: about 1.3 KB of output (printed by main()).
    return f"seq -f '{tag} step {n}: unit %g of 25 compiled, no warnings' 1 25"


def step_call(tag):
    return {"name": "Bash", "input": {"command": step_command(tag), "description": f"Step {{n}} of {tag}"}}


def scripts(steps):
    side = {"main": False, "text": "Side answer."}
    resume = [side,
              {"contains": "JOB-A:", "min_tool_results": steps, "text": f"All {steps} steps of JOB-A are done."},
              {"contains": "JOB-A:", "text": "Step {n}.", "tool_use": step_call("JOB-A")}]
    base, extra = divmod(steps, 3)
    parts = [base + (1 if k < extra else 0) for k in range(3)]
    add = " && ".join(f"printf 'PART-{k} of JOB-B: do {n} steps.' | jada-agent task add --parent \"$JADA_TASK_ID\" "
                      f"--title part-{k} -" for k, n in enumerate(parts, 1))
    split = [side,
             # The parent's resumed session: the daemon's report on its sub-tasks.
             {"contains": REPORT, "text": "All three parts of JOB-B are in; the job is done."}]
    # The parts before the parent: their prompts say JOB-B too.
    for k, n in enumerate(parts, 1):
        split += [{"contains": f"PART-{k} of JOB-B", "min_tool_results": n, "text": f"Part {k}: {n} steps done."},
                  {"contains": f"PART-{k} of JOB-B", "text": "Step {n}.", "tool_use": step_call(f"PART-{k}")}]
    split += [{"contains": "JOB-B:", "min_tool_results": 1, "text": "Split into three sub-tasks: {last_result}"},
              {"contains": "JOB-B:", "text": "Splitting into three parts.", "tool_use": {"name": "Bash", "input": {
                  "command": add, "description": "Add the three sub-tasks"}}}]
    return {"resume": resume, "split": split}, parts


def cli(binary, config, *args):
    r = subprocess.run([binary, "-c", config, *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sys.exit(f"jada-agent {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def read_port(proc, timeout=30):
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            sys.exit("the fake Messages API printed no port in 30 s")
        chunk = os.read(proc.stdout.fileno(), 64)
        if not chunk:
            sys.exit("the fake Messages API exited")
        line += chunk
    return int(line)


def run_scenario(args, tmp, name, rules, prompt, max_turns):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    state = os.path.join(d, "state")
    config = os.path.join(d, "jada-agent.conf")
    script = os.path.join(d, "fake-api-script.json")
    api_log = os.path.join(d, "fake-api.jsonl")
    with open(script, "w") as f:
        json.dump({"rules": rules}, f, indent=1)
    with open(config, "w") as f:
        f.write(f"[daemon]\nstate_dir = {state}\npoll_interval = 1h\n[claude]\ncommand = {args.cli}\n"
                f"max_turns = {max_turns}\nmax_sessions_per_task = 10\nsessions_per_day = 1000\n"
                # CLI 2.1.112 matches no prefix rule like Bash(jada-agent task add:*)
                # against a command with "$JADA_TASK_ID" in it ("Contains
                # simple_expansion"): the whole Bash tool, as test_real_claude.py.
                "allowed_tools = Bash\n")
    binary = os.path.abspath(args.bin)
    env = dict(os.environ, ANTHROPIC_BASE_URL="", ANTHROPIC_API_KEY=API_KEY,
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               # `jada-agent` in the session: the binary under test.
               PATH=os.path.dirname(binary) + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    env.pop("CLAUDE_CODE_OAUTH_TOKEN", None)
    env.pop("JADA_AGENT_CONFIG", None)
    with private_network():
        with open(os.path.join(d, "fake-api.stderr"), "wb") as err:
            fake = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-fake", script, api_log],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        try:
            env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{read_port(fake)}"
            daemon = LoggedRun(binary, d, config, env, os.path.join(d, "daemon.log"))
        except BaseException:
            fake.kill()
            raise
    try:
        daemon.wait_ready(timeout=30)
        t0 = time.monotonic()
        task = cli(binary, config, "task", "add", prompt).strip()
        deadline = t0 + args.timeout
        while True:
            shown = json.loads(cli(binary, config, "task", "show", task, "--json"))
            if shown["state"] not in ("queued", "running", "waiting"):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        wall = time.monotonic() - t0
        sessions = json.loads(cli(binary, config, "sessions", "--since", "1d", "--json"))["sessions"]
        tasks = [json.loads(cli(binary, config, "task", "show", str(c["id"]), "--json"))
                 for c in shown.get("children") or []]
    finally:
        daemon.stop()
        fake.terminate()
        try:
            fake.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fake.kill()
            fake.wait()
        fake.stdout.close()
    with open(api_log) as f:
        reqs = [json.loads(line) for line in f if line.strip()]
    return {"name": name, "dir": d, "task": shown, "children": tasks, "sessions": sessions, "requests": reqs,
            "wall": wall}


def summary(r):
    msgs = [q for q in r["requests"] if q["path"].split("?")[0] == "/v1/messages"]
    main = [q for q in msgs if q.get("main")]
    return {
        "sessions": len(r["sessions"]),
        "turns": sum(s["turns"] for s in r["sessions"]),
        "requests": len(msgs),
        "main": len(main),
        "bytes": sum(q["bytes"] for q in msgs),
        "largest": max((q["bytes"] for q in msgs), default=0),
        "messages": sum(q["messages_bytes"] for q in msgs),
        "input_tokens": sum(s["tokens"]["input"] for s in r["sessions"]),
        "wall": r["wall"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="./jada-agent")
    ap.add_argument("--cli", default=os.environ.get("JADA_CLAUDE_CLI") or CLI,
                    help="the claude executable (tools/install-claude-cli prints it; default $JADA_CLAUDE_CLI, else build/claude-cli)")
    ap.add_argument("--steps", type=int, default=50, help="tool-call turns the work takes")
    ap.add_argument("--max-turns", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=900, help="seconds a scenario may take")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, state)")
    ap.add_argument("--serve-fake", nargs=2, metavar=("SCRIPT", "LOG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_fake:
        return serve_fake(*args.serve_fake)
    args.cli = os.path.abspath(args.cli)
    if not os.access(args.cli, os.X_OK):
        sys.exit(f"{args.cli}: no Claude Code CLI there: run tools/install-claude-cli build/claude-cli")
    if os.path.basename(args.bin) != "jada-agent":
        sys.exit("--bin must be named jada-agent: the session runs `jada-agent task add` from PATH")
    if not shutil.which("ip"):
        sys.exit("`ip` (iproute2) is needed to bring up loopback in the private network namespace")
    version = subprocess.run([args.cli, "--version"], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")).stdout.strip()

    rules, parts = scripts(args.steps)
    tmp = tempfile.mkdtemp(prefix="jada-bench-subtasks-")
    try:
        results = [
            run_scenario(args, tmp, "resume", rules["resume"],
                         f"JOB-A: do all {args.steps} steps, one at a time.", args.max_turns),
            run_scenario(args, tmp, "split", rules["split"],
                         f"JOB-B: do all {args.steps} steps, one at a time; split the work into 3 sub-tasks.",
                         args.max_turns),
        ]
        print(f"jada-agent sub-tasks against resume, {time.strftime('%Y-%m-%d', time.gmtime())}, "
              f"{os.uname().machine}, {os.cpu_count()} CPUs; Claude Code {version} against the fake Messages API")
        out = len(subprocess.run(["sh", "-c", step_command("PART-1", 10)], capture_output=True).stdout)
        print(f"work: {args.steps} Bash steps ({out:,} bytes of output each) and an answer; max_turns = {args.max_turns}; "
              f"split: parts of {', '.join(map(str, parts))} steps")
        print("bytes sent: the request bodies of POST /v1/messages (sum; largest one); messages: their "
              "\"messages\" arrays alone (no system prompt, no tool definitions); input tok: the sessions' own count")
        print(f"{'scenario':<9} {'state':<6} {'sessions':>8} {'turns':>6} {'requests':>8} {'bytes sent':>11} "
              f"{'largest':>9} {'messages':>10} {'input tok':>10} {'wall':>8}")
        for r in results:
            s = summary(r)
            print(f"{r['name']:<9} {r['task']['state']:<6} {s['sessions']:>8} {s['turns']:>6} {s['requests']:>8} "
                  f"{s['bytes']:>11,} {s['largest']:>9,} {s['messages']:>10,} {s['input_tokens']:>10,} {s['wall']:>7.1f}s")
        for r in results:
            print(f"{r['name']}: per conversation (a task's claude session id)")
            convs = {}
            for q in r["requests"]:
                if q["path"].split("?")[0] == "/v1/messages":
                    convs.setdefault(q.get("session"), []).append(q["bytes"])
            for sid, sizes in convs.items():
                rows = [s for s in r["sessions"] if s["claude_session_id"] == sid]
                task = rows[0]["task_id"] if rows else "?"
                print(f"  task {task}: {len(rows)} session(s) ({', '.join(s['outcome'] or '?' for s in rows)}), "
                      f"turns {'+'.join(str(s['turns']) for s in rows)}, {len(sizes)} requests, "
                      f"{sum(sizes):,} bytes, largest {max(sizes):,}")
            if r["task"]["state"] != "done":
                print(f"  the task ended {r['task']['state']}, not done: see {r['dir']} (run with --keep)")
                args.keep = True
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
