#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""System tests: jada-agent under a real systemd as PID 1.

Boots a throw-away overlay of the cached Debian 12 tree (tools/system-tree)
with `systemd-nspawn --boot`, installs the daemon the way `make install`
does (PREFIX=/usr/local) plus the fake claude, and drives the container with
`nsenter` (machinectl has no host systemd to talk to here).

usage: python3 tests/system/test_system.py --bin build/jada-agent --tree TREE
                                          [--claude-cli build/claude-cli] [-k NAME] [--keep]

--claude-cli is the directory tools/install-claude-cli filled (the pinned
npm install of the real Claude Code CLI); check_real_claude copies it into
the container and fails without it.

Needs root, systemd-nspawn, nsenter and overlayfs; a missing prerequisite
is a failure, never a skip. Every wait is bounded; the container is always
torn down and the cached tree is never written to. Exit status 0 only if
every check passed.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARE = "/usr/local/share/jada-test"          # fake claude + its samples (read-only for the service)
PLAY = "/var/lib/jada-test/play"              # FAKE_CLAUDE_SCENARIOS (writable: ReadWritePaths=)
FAKE_LOG = "/var/lib/jada-test/fake-claude.log"
UNIT_DIR = "/usr/local/lib/systemd/system"    # as `make install` puts it
DEB_UNIT_DIR = "/lib/systemd/system"          # as the Debian package puts it (dh_installsystemd)
DEB_IN_CONTAINER = "/root/jada-agent.deb"
DROPIN_DIR = "/etc/systemd/system/jada-agent.service.d"
API_KEY = "sk-ant-system-test-dummy"
SUCCESS = "samples/v2.1.332_success.stream.jsonl"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The real Claude Code CLI (check_real_claude): the host's npm install, copied in.
CLAUDE_DIR = "/usr/local/lib/claude-cli"
CLAUDE = f"{CLAUDE_DIR}/node_modules/.bin/claude"
CLAUDE_VERSION = "2.1.112"                    # pinned by tools/install-claude-cli
FAKE_API = f"{SHARE}/fake_messages_api.py"    # tests/e2e/fake_messages_api.py
API_DIR = "/var/lib/jada-test/api"            # its script, request log and port (root's, outside the sandbox)
API_UNIT = "jada-fake-api.service"
NEEDS_YOU_ID = "3d14176fe0c8445f82cbba86e0bfa005"
CONFIG_REFUSED_ID = "2ef26d2ae91e45d8a7ce13f806dedc79"

# What the fake model has the CLI write and run (Write, then Bash): it says
# what sandbox the CLI's tools, so the CLI, ran in.
HELLO_PY = """\
import os
st = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
uid_map = open("/proc/self/uid_map").read().split()
sandbox = {k: st[k].strip() for k in ("Seccomp", "NoNewPrivs", "CapEff")}
sandbox["usr_ro"] = int(bool(os.statvfs("/usr").f_flag & os.ST_RDONLY))
sandbox["userns"] = int(uid_map[:3] != ["0", "0", "4294967295"])
print("hello from " + "the fake model".upper(), " ".join(f"{k}={v}" for k, v in sandbox.items()))
"""

CONFIG = """\
# /etc/jada-agent.conf written by tests/system/test_system.py
[daemon]
poll_interval = {poll}

[claude]
command = {share}/fake-claude
max_turns = 30
sessions_per_day = 50
{extra}
"""


class Failure(Exception):
    pass


class Interrupted(BaseException):
    """The run's overall deadline (--timeout) passed, or SIGTERM/SIGINT: not
    caught by the checks, so the container is still torn down."""


def log(msg):
    print(msg, flush=True)


class Container:
    """One booted container: an overlayfs over the cached tree (the upper
    layer in a temp dir), systemd-nspawn --boot in the background."""

    def __init__(self, tree, name, keep=False):
        self.tree, self.name, self.keep = tree, name, keep
        self.tmp = tempfile.mkdtemp(prefix="jada-system-")
        self.root = os.path.join(self.tmp, "root")
        self.console = os.path.join(self.tmp, "console.log")
        self.proc = None
        self.leader = None
        self.mounted = False

    # --- life cycle ---------------------------------------------------------
    def mount(self):
        for d in ("upper", "work", "root"):
            os.mkdir(os.path.join(self.tmp, d))
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={self.tree},upperdir={self.tmp}/upper,workdir={self.tmp}/work",
                            self.root], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise Failure(f"cannot mount an overlay over {self.tree}: {r.stderr.strip()}")
        self.mounted = True

    def boot(self, timeout=60):
        out = open(self.console, "wb")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--boot", "--quiet", "-D", self.root, f"--machine={self.name}",
             "--register=no", "--keep-unit", "--private-network", "--console=passive",
             "--setenv=SYSTEMD_COLORS=0"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while self.leader is None:
            if self.proc.poll() is not None:
                raise Failure(f"systemd-nspawn exited with {self.proc.returncode}:\n{self.console_tail()}")
            if time.monotonic() > deadline:
                raise Failure(f"no systemd in the container after {timeout}s:\n{self.console_tail()}")
            self.leader = self._find_leader()
            time.sleep(0.1)
        # systemctl can talk to PID 1 once its private socket is there.
        while True:
            r = self.run(["systemctl", "is-system-running", "--wait"], timeout=max(1, deadline - time.monotonic()),
                         check=False)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            if time.monotonic() > deadline:
                raise Failure(f"container not up after {timeout}s (is-system-running: {state!r} {r.stderr.strip()})")
            time.sleep(0.2)

    def _find_leader(self):
        """The container's PID 1: the nspawn process's child running systemd."""
        pending = [self.proc.pid]
        seen = set()
        while pending:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
                if pid != self.proc.pid and comm == "systemd":
                    return pid
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        pending.extend(int(p) for p in f.read().split())
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
        return None

    def teardown(self):
        signal.alarm(0)
        if self.proc and self.proc.poll() is None:
            # nspawn turns SIGTERM into an orderly shutdown of the container.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                log(f"  container {self.name} did not halt in 20 s: killing it")
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                if self.leader:
                    try:
                        os.kill(self.leader, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    log(f"  systemd-nspawn {self.proc.pid} will not die")
        if self.mounted:
            r = subprocess.run(["umount", self.root], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.root], capture_output=True, timeout=30)
            self.mounted = False
        if self.keep:
            log(f"  kept {self.tmp} (upper layer and console log)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def console_tail(self, n=30):
        try:
            with open(self.console, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    # --- inside the container ----------------------------------------------
    def run(self, argv, timeout=30, check=True, input=None):
        """Runs argv inside the container (all of its namespaces)."""
        if self.leader is None:
            raise Failure("the container is not running")
        cmd = ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i", f"PATH={CONTAINER_PATH}",
               "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "TERM=dumb"] + list(argv)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        except subprocess.TimeoutExpired:
            raise Failure(f"timed out after {timeout:.0f}s: {' '.join(argv)}")
        if check and r.returncode != 0:
            raise Failure(f"{' '.join(argv)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def sh(self, script, **kw):
        return self.run(["sh", "-c", script], **kw)

    def path(self, p):
        """Host path of container path p (through the overlay mount, which
        is the container's root)."""
        return os.path.join(self.root, p.lstrip("/"))

    def write(self, p, text, mode=0o644):
        host = self.path(p)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, mode)

    def install(self, src, p, mode=0o644):
        host = self.path(p)
        os.makedirs(os.path.dirname(host), exist_ok=True)
        shutil.copyfile(src, host)
        os.chmod(host, mode)


class SystemTest:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.tree = os.path.abspath(args.tree)
        self.c = None
        self.results = []
        self.tasks = {}
        self.deb = os.path.abspath(args.deb) if args.deb else None
        self.unit_dir = DEB_UNIT_DIR if self.deb else UNIT_DIR

    # --- helpers -------------------------------------------------------------
    def systemctl(self, *args, timeout=60, check=True):
        return self.c.run(["systemctl", "--no-pager", *args], timeout=timeout, check=check)

    def show(self, *props):
        r = self.systemctl("show", "jada-agent", *[f"-p{p}" for p in props])
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out

    def journal(self, *args, timeout=30):
        return self.c.run(["journalctl", "--no-pager", "-u", "jada-agent", *args], timeout=timeout).stdout

    def cli(self, *args, timeout=30, check=True):
        return self.c.run(["jada-agent", *args], timeout=timeout, check=check)

    def task_show(self, tid):
        return json.loads(self.cli("task", "show", str(tid), "--json").stdout)

    def wait(self, what, pred, timeout=30, interval=0.2):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            last = pred()
            if last:
                return last
            if time.monotonic() > deadline:
                raise Failure(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def wait_task(self, tid, states, timeout=40):
        states = (states,) if isinstance(states, str) else states
        box = {}

        def pred():
            box["t"] = self.task_show(tid)
            return box["t"]["state"] in states
        try:
            self.wait(f"task {tid} to be {'/'.join(states)}", pred, timeout)
        except Failure as e:
            raise Failure(f"{e}: {json.dumps(box.get('t'), indent=1)}")
        return box["t"]

    def play(self, **scenario):
        """The fake claude plays this scenario from now on (default.json)."""
        self.c.write(f"{PLAY}/default.json", json.dumps(scenario) + "\n", 0o644)

    def fake_log(self):
        try:
            with open(self.c.path(FAKE_LOG)) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def write_config(self, poll="5s", extra=""):
        self.c.write("/etc/jada-agent.conf", CONFIG.format(poll=poll, share=SHARE, extra=extra))

    def status_text(self):
        return self.show("StatusText")["StatusText"]

    def proc_status(self, pid):
        r = self.c.run(["cat", f"/proc/{pid}/status"])
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition(":")
            out[k] = v.strip()
        return out

    def container_processes(self):
        r = self.c.run(["ps", "-eo", "pid,user,args", "--no-headers"])
        return r.stdout

    def diagnostics(self):
        if not self.c or self.c.leader is None:
            return ""
        try:
            st = self.systemctl("status", "jada-agent", "-n0", check=False).stdout
            jr = self.c.run(["journalctl", "--no-pager", "-u", "jada-agent", "-n", "40"], check=False).stdout
            return textwrap.indent(f"--- systemctl status\n{st}--- journal (last 40)\n{jr}", "    ")
        except Failure as e:
            return f"    (no diagnostics: {e})"

    # --- setup -----------------------------------------------------------------
    def prerequisites(self):
        problems = []
        if os.geteuid() != 0:
            problems.append("must run as root (overlay mount, systemd-nspawn)")
        for tool in ("systemd-nspawn", "nsenter", "mount"):
            if not shutil.which(tool):
                problems.append(f"{tool} not found (tools/system-tree installs it)")
        if not os.access(self.bin, os.X_OK):
            problems.append(f"--bin {self.bin}: not an executable")
        if self.deb and not os.path.isfile(self.deb):
            problems.append(f"--deb {self.deb}: no such file (make deb builds it)")
        if not os.path.exists(os.path.join(self.tree, ".jada-tree-complete")):
            problems.append(f"--tree {self.tree}: not a tree built by tools/system-tree")
        if self.args.claude_cli:
            cli = os.path.join(self.args.claude_cli, "node_modules", ".bin", "claude")
            if not os.path.exists(cli):
                problems.append(f"--claude-cli {self.args.claude_cli}: no node_modules/.bin/claude "
                                "(run tools/install-claude-cli DIR first)")
        for f in ("systemd/jada-agent.service", "systemd/jada-agent.sysusers", "systemd/jada-agent.catalog",
                  "tests/fake/fake-claude", "tests/e2e/fake_messages_api.py"):
            if not os.path.exists(os.path.join(REPO, f)):
                problems.append(f"{f} missing")
        if problems:
            raise Failure("; ".join(problems))

    def populate(self):
        c = self.c
        if self.deb:
            # The package is installed by apt inside the booted container
            # (check_deb_install), as an operator would.
            c.install(self.deb, DEB_IN_CONTAINER)
        else:
            c.install(self.bin, "/usr/local/bin/jada-agent", 0o755)
            c.install(os.path.join(REPO, "systemd/jada-agent.service"), f"{UNIT_DIR}/jada-agent.service")
            c.install(os.path.join(REPO, "systemd/jada-agent.sysusers"), "/usr/local/lib/sysusers.d/jada-agent.conf")
            c.install(os.path.join(REPO, "systemd/jada-agent.catalog"),
                      "/usr/local/lib/systemd/catalog/jada-agent.catalog")
        c.install(os.path.join(REPO, "tests/fake/fake-claude"), f"{SHARE}/fake-claude", 0o755)
        shutil.copytree(os.path.join(REPO, "tests/fake/scenarios"), c.path(f"{SHARE}/scenarios"))
        c.install(os.path.join(REPO, "tests/e2e/fake_messages_api.py"), FAKE_API, 0o755)
        if self.args.claude_cli:
            # .bin/claude is a relative symlink to cli.js (#!/usr/bin/env node): keep it one.
            shutil.copytree(os.path.abspath(self.args.claude_cli), c.path(CLAUDE_DIR), symlinks=True)
        # The fake renames numbered scenarios and appends to its log: a
        # writable place, opened to the service the way an operator would
        # (README: a drop-in with ReadWritePaths=).
        os.makedirs(c.path(PLAY))
        os.chmod(c.path(os.path.dirname(PLAY)), 0o777)
        os.chmod(c.path(PLAY), 0o777)
        c.write("/etc/credstore/anthropic-api-key", API_KEY, 0o600)
        os.chmod(c.path("/etc/credstore"), 0o700)
        c.write(f"{DROPIN_DIR}/10-system-test.conf", textwrap.dedent(f"""\
            [Service]
            Environment=FAKE_CLAUDE_SCENARIOS={PLAY} FAKE_CLAUDE_LOG={FAKE_LOG}
            ReadWritePaths=/var/lib/jada-test
            # A watchdog abort must not write core files or wait long.
            LimitCORE=0
            TimeoutAbortSec=5s
            """))
        if not self.deb:
            self.write_config()  # the package brings its own; the test's replaces it after the install

    # --- checks ------------------------------------------------------------------
    def check_sysusers(self):
        """1a. systemd-sysusers created the jada-agent user from the sysusers file."""
        self.c.run(["systemd-sysusers"])
        r = self.c.run(["getent", "passwd", "jada-agent"], check=False)
        if r.returncode != 0:
            raise Failure("no user jada-agent after systemd-sysusers")
        fields = r.stdout.strip().split(":")
        if fields[5] != "/var/lib/jada-agent":
            raise Failure(f"home is {fields[5]!r}, not /var/lib/jada-agent")
        self.c.run(["getent", "group", "jada-agent"])

    def check_start(self):
        """1b. systemctl start returns after READY=1: the unit is active at once."""
        r = self.systemctl("cat", "jada-agent")
        if f"{self.unit_dir}/jada-agent.service" not in r.stdout:
            raise Failure(f"the unit is not loaded from {self.unit_dir}:\n{r.stdout[:300]}")
        t0 = time.monotonic()
        r = self.systemctl("start", "jada-agent", timeout=60, check=False)
        took = time.monotonic() - t0
        if r.returncode != 0:
            raise Failure(f"systemctl start failed ({r.returncode}): {r.stderr.strip()}\n{self.diagnostics()}")
        p = self.show("ActiveState", "SubState", "MainPID", "Type", "NotifyAccess")
        if (p["ActiveState"], p["SubState"]) != ("active", "running"):
            raise Failure(f"right after start: {p}")
        if self.c.run(["systemctl", "is-active", "jada-agent"], check=False).stdout.strip() != "active":
            raise Failure("is-active is not active")
        user = self.c.run(["ps", "-o", "user=", "-p", p["MainPID"]]).stdout.strip()
        if user != "jada-agent":
            raise Failure(f"MainPID {p['MainPID']} runs as {user!r}")
        log(f"  start took {took:.2f}s, MainPID {p['MainPID']} as {user}")

    def check_status_text(self):
        """2. systemctl status shows the STATUS= text."""
        st = self.status_text()
        if not st.startswith("Idle · queue"):
            raise Failure(f"StatusText is {st!r}")
        out = self.systemctl("status", "jada-agent", check=False).stdout
        if f"Status: \"{st}\"" not in out:
            raise Failure(f"systemctl status does not show Status: \"{st}\":\n{out}")
        if "poll every 5s" not in st:
            raise Failure(f"StatusText {st!r} does not show the configured poll interval 5s")

    def check_journal(self):
        """3a. journalctl -u shows the daemon's lines, with JADA_* fields (task, outcome) in -o json."""
        text = self.journal("-o", "cat")
        lines = [l for l in text.splitlines() if l.strip()]
        if len(lines) < 2:
            raise Failure(f"journalctl -u jada-agent shows {len(lines)} lines:\n{text}")
        entries = [json.loads(l) for l in self.journal("-o", "json").splitlines() if l.strip()]
        ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "jada-agent"]
        if not ours:
            raise Failure("no entry with SYSLOG_IDENTIFIER=jada-agent")
        jada = sorted({k for e in ours for k in e if k.startswith("JADA_")})
        if "done" in self.tasks:
            tid = str(self.tasks["done"])
            of_task = [e for e in ours if e.get("JADA_TASK_ID") == tid]
            if not of_task:
                raise Failure(f"no entry with JADA_TASK_ID={tid}; JADA fields seen: {jada}")
            if not any(e.get("JADA_OUTCOME") for e in of_task):
                raise Failure(f"no JADA_OUTCOME among the entries of task {tid}: {[e.get('MESSAGE') for e in of_task]}")
        elif not jada:
            raise Failure(f"no JADA_* field in {len(ours)} entries")
        log(f"  {len(lines)} lines; fields {', '.join(jada)}")

    def check_reload(self):
        """4. systemctl reload takes a changed config; a bad one is refused with FILE:LINE and the old kept."""
        try:
            self._check_reload()
        finally:
            self.write_config(poll="5s")

    def _check_reload(self):
        """4. systemctl reload takes a changed config; a bad one is refused with FILE:LINE and the old kept."""
        pid = self.show("MainPID")["MainPID"]
        self.write_config(poll="7s")
        self.systemctl("reload", "jada-agent")
        self.wait("StatusText to show poll every 7s", lambda: "poll every 7s" in self.status_text(), 15)
        # A bad file: an unknown key on line 4 (after the 3 lines of the template).
        self.c.write("/etc/jada-agent.conf", CONFIG.format(poll="9s", share=SHARE, extra="")
                     .replace("[daemon]\n", "[daemon]\nno_such_key = 1\n"))
        lineno = CONFIG.splitlines().index("[daemon]") + 2
        since = self.c.run(["date", "+@%s.%N"]).stdout.strip()
        self.systemctl("reload", "jada-agent")
        self.wait("the refused reload in the status", lambda: "reload failed" in self.status_text(), 15)
        p = self.show("ActiveState", "MainPID", "StatusText")
        if p["ActiveState"] != "active" or p["MainPID"] != pid:
            raise Failure(f"after a bad reload: {p} (MainPID was {pid})")
        text = self.journal("-o", "cat", "--since", since)
        if "still running on the previous configuration" not in text:
            raise Failure(f"the journal does not say the old config is kept:\n{text}")
        if f"/etc/jada-agent.conf:{lineno}" not in text:
            raise Failure(f"the journal does not show /etc/jada-agent.conf:{lineno}:\n{text}")
        entries = [json.loads(l) for l in self.journal("-o", "json", "--since", since).splitlines() if l.strip()]
        where = [(e.get("JADA_CONFIG_FILE"), e.get("JADA_CONFIG_LINE")) for e in entries if "JADA_CONFIG_LINE" in e]
        if ("/etc/jada-agent.conf", str(lineno)) not in where:
            raise Failure(f"no entry with JADA_CONFIG_FILE/JADA_CONFIG_LINE = /etc/jada-agent.conf:{lineno}: {where}")
        alert = [e for e in entries if e.get("MESSAGE_ID") == CONFIG_REFUSED_ID]
        if not alert:
            raise Failure(f"no alert entry MESSAGE_ID={CONFIG_REFUSED_ID} for the refused reload")
        # Fixed again: the problem clears, and the status shows the 7 s it kept.
        self.write_config(poll="7s")
        self.systemctl("reload", "jada-agent")
        self.wait("a good reload to clear the problem", lambda: self.status_text().startswith("Idle"), 15)
        if "poll every 7s" not in self.status_text():
            raise Failure(f"after the good reload: {self.status_text()!r}")
        self.write_config(poll="5s")
        self.systemctl("reload", "jada-agent")
        self.wait("poll every 5s", lambda: "poll every 5s" in self.status_text(), 15)

    def check_task_done(self):
        """6. a task added with the CLI inside the container runs with the fake claude and ends done."""
        self.play(stream=SUCCESS)
        r = self.cli("task", "add", "--title", "system test", "Say hello")
        tid = int(r.stdout.strip())
        self.tasks["done"] = tid
        t = self.wait_task(tid, ("done", "failed", "needs_you"), 40)
        if t["state"] != "done":
            raise Failure(f"task {tid} ended {t['state']}:\n{json.dumps(t, indent=1)}\n{self.diagnostics()}")
        runs = [e for e in self.fake_log() if e.get("env", {}).get("JADA_TASK_ID") == str(tid)]
        if not runs:
            raise Failure("the fake claude has no record of the task's session")
        env = runs[-1]["env"]
        if env.get("ANTHROPIC_API_KEY") != API_KEY:
            raise Failure(f"the session did not get the key from /etc/credstore: {env.get('ANTHROPIC_API_KEY')!r}")
        if "NOTIFY_SOCKET" in env:
            raise Failure("the session inherited NOTIFY_SOCKET")
        if not runs[-1]["cwd"].startswith("/var/lib/jada-agent/work/"):
            raise Failure(f"the session ran in {runs[-1]['cwd']}")
        log(f"  task {tid} done; session cwd {runs[-1]['cwd']}, HOME {env.get('HOME')}")

    def check_project(self):
        """6b. a project outside the state dir: read-only until the README's ReadWritePaths= drop-in, then the agent's work is on its branch."""
        repo = "/srv/projects/site"
        git = ["git", "-c", "safe.directory=*", "-C", repo]
        self.c.sh(f"""set -e
            mkdir -p {repo}; cd {repo}; git init -q -b main
            echo hi > README.md; git add -A
            git -c user.name=Op -c user.email=op@example.org commit -q -m first
            chown -R jada-agent:jada-agent /srv/projects""")
        self.write_config(extra=f"[project site]\npath = {repo}\n")
        self.systemctl("restart", "jada-agent")
        r = self.cli("check-config", check=False)
        if r.returncode != 78 or f"add ReadWritePaths={repo}" not in r.stderr:
            raise Failure(f"check-config did not name the ReadWritePaths= to add ({r.returncode}): {r.stderr}")

        def problem():
            st = json.loads(self.cli("status", "--json", check=False).stdout)
            return [p["text"] for p in st.get("problems", []) if p["kind"] == "project"]
        texts = self.wait("the daemon's project problem", problem, 20)
        if "read-only" not in texts[0] or f"ReadWritePaths={repo}" not in texts[0]:
            raise Failure(f"the project problem does not say what to add: {texts}")

        self.c.write(f"{DROPIN_DIR}/30-projects.conf", f"[Service]\nReadWritePaths={repo}\n")
        self.systemctl("daemon-reload")
        self.systemctl("restart", "jada-agent")
        r = self.cli("check-config", check=False)
        if r.returncode != 0:
            raise Failure(f"check-config with the drop-in: {r.stderr}")
        self.play(stream=SUCCESS, write_files={"page.html": "<h1>hi</h1>\n"})
        tid = int(self.cli("task", "add", "--project", "site", "Write the page").stdout.strip())
        t = self.wait_task(tid, ("done", "failed", "needs_you"), 40)
        if t["state"] != "done" or t["branch"] != f"jada/task-{tid}":
            raise Failure(f"task {tid}: {json.dumps(t, indent=1)}\n{self.diagnostics()}")
        self.wait("the worktree's removal", lambda: self.task_show(tid)["worktree"] is None, 20)
        page = self.c.run([*git, "show", f"jada/task-{tid}:page.html"], check=False)
        if page.stdout != "<h1>hi</h1>\n":
            raise Failure(f"the branch does not hold the page: {page.stdout!r} {page.stderr}")
        subject = self.c.run([*git, "log", "-1", "--format=%s", f"jada/task-{tid}"]).stdout.strip()
        if subject != f"jada-agent: task {tid}, session 1 (done)":
            raise Failure(f"the branch's last commit: {subject!r}")
        log(f"  task {tid}: jada/task-{tid} holds page.html in {repo}")
        os.unlink(self.c.path(f"{DROPIN_DIR}/30-projects.conf"))
        self.write_config()
        self.systemctl("daemon-reload")
        self.systemctl("restart", "jada-agent")

    def check_subtasks(self):
        """6c. a session splits its task with `jada-agent task add --parent "$JADA_TASK_ID"` under the hardened unit: the parent waits, the children run, the parent resumes and ends done."""
        try:
            self._check_subtasks()
        finally:
            for name in os.listdir(self.c.path(PLAY)):
                if name.endswith(".json") and name[:1].isdigit():
                    os.unlink(self.c.path(f"{PLAY}/{name}"))
            self.play(stream=SUCCESS)

    def _check_subtasks(self):
        # As the system prompt says: no -c, no path; `jada-agent` from the
        # unit's PATH, the config and db from the session's environment.
        split = "; ".join(f"printf 'Do part {x}.' | jada-agent task add --parent \"$JADA_TASK_ID\" --title {x} - 2>&1"
                          for x in ("A", "B"))
        scenarios = [dict(stream=SUCCESS, run=split, result_text="Split into two parts."),
                     dict(stream=SUCCESS, result_text="Result of part A."),
                     dict(stream=SUCCESS, result_text="Result of part B."),
                     dict(stream=SUCCESS, result_text="Parent finished with both parts.")]
        for n, sc in enumerate(scenarios, 1):
            self.c.write(f"{PLAY}/{n:03d}-subtasks.json", json.dumps(sc) + "\n", 0o644)
        self.play(stream=SUCCESS, result_text="An unexpected session (default.json).")
        n_before = len(self.fake_log())
        p = int(self.cli("task", "add", "--title", "big job", "A big job, in two parts.").stdout.strip())
        t = self.wait_task(p, ("done", "failed", "needs_you"), 60)
        runs = self.fake_log()[n_before:]
        if t["state"] != "done":
            raise Failure(f"task {p} ended {t['state']}; the sessions: {json.dumps(runs, indent=1)}\n"
                          f"{self.diagnostics()}")
        if len(runs) != 4 or not runs[0].get("scenario", "").startswith("001-"):
            raise Failure(f"{len(runs)} sessions, not 4: {json.dumps(runs, indent=1)}")
        # What the CLI printed inside the session (stdout and stderr): the new ids, nothing else.
        ran = runs[0].get("ran") or ""
        ids = [int(x) for x in ran.split() if x.isdigit()]
        if len(ids) != 2 or ran.split() != [str(i) for i in ids]:
            raise Failure(f"`jada-agent task add` in the session printed {ran!r}, not two ids "
                          f"(env {runs[0].get('env')})\n{self.diagnostics()}")
        a, b = ids
        env = runs[0]["env"]
        if (env.get("JADA_TASK_ID"), env.get("JADA_AGENT_CONFIG")) != (str(p), "/etc/jada-agent.conf"):
            raise Failure(f"the session's environment: {env}")
        if [r["env"].get("JADA_TASK_ID") for r in runs] != [str(p), str(a), str(b), str(p)]:
            raise Failure(f"the sessions ran tasks {[r['env'].get('JADA_TASK_ID') for r in runs]}, "
                          f"not {[p, a, b, p]}")
        if [c["id"] for c in t["children"]] != [a, b]:
            raise Failure(f"task {p}'s children are {t['children']}, not {[a, b]}")
        for child, part in ((a, "A"), (b, "B")):
            c = self.task_show(child)
            if (c["parent"], c["state"], c["title"], c["result"]) != (p, "done", part, f"Result of part {part}."):
                raise Failure(f"sub-task {child}: {json.dumps(c, indent=1)}")
        if runs[1]["stdin"] != "Do part A.":
            raise Failure(f"sub-task {a}'s session got {runs[1]['stdin']!r} on stdin")
        states = [e["new_state"] for e in t["events"]]
        if states[-5:] != ["running", "waiting", "queued", "running", "done"]:
            raise Failure(f"task {p}'s states: {states}")
        last = runs[3]
        if not last.get("resumed") or last.get("session_id") != runs[0].get("session_id"):
            raise Failure(f"the parent's last session did not resume its conversation: {last}")
        for words in (f"## Sub-task {a}: A", f"## Sub-task {b}: B", "Result of part A.", "Result of part B."):
            if words not in last["stdin"]:
                raise Failure(f"the resumed session's prompt lacks {words!r}: {last['stdin']!r}")
        if t["result"] != "Parent finished with both parts.":
            raise Failure(f"task {p}'s result: {t['result']!r}")
        log(f"  task {p} split into {a} and {b} from its session, waited, resumed, done")

    def check_catalog(self):
        """3b. a needs_you task raises an alert that journalctl -x explains from the catalog."""
        self.play(stream=SUCCESS, result_text="NEEDS-YOU: ok?")
        tid = int(self.cli("task", "add", "--title", "needs a person", "Ask me").stdout.strip())
        self.tasks["needs_you"] = tid
        t = self.wait_task(tid, ("needs_you", "done", "failed"), 40)
        if t["state"] != "needs_you":
            raise Failure(f"task {tid} is {t['state']}, not needs_you")
        def alert():
            return [json.loads(l) for l in self.journal("-o", "json", f"MESSAGE_ID={NEEDS_YOU_ID}").splitlines()
                    if l.strip()]
        self.wait("the needs_you alert in the journal", alert, 15)
        self.c.run(["journalctl", "--update-catalog"])
        r = self.c.run(["journalctl", "--list-catalog", NEEDS_YOU_ID], check=False)
        if "tasks need a person" not in r.stdout:
            raise Failure(f"the catalog has no entry {NEEDS_YOU_ID} after --update-catalog "
                          f"(installed in /usr/local/lib/systemd/catalog):\n{r.stdout}{r.stderr}")
        text = self.journal("-x", f"MESSAGE_ID={NEEDS_YOU_ID}")
        if "Subject: tasks need a person" not in text or "jada-agent task reply ID TEXT" not in text:
            raise Failure(f"journalctl -x shows no catalog text:\n{text}")
        self.cli("task", "done", str(tid))

    def check_stop_during_session(self):
        """7. systemctl stop while a session runs leaves no process and the task resumable."""
        self.play(stream=SUCCESS, hang_after=3, spawn_child=True)
        n_before = len(self.fake_log())
        tid = int(self.cli("task", "add", "--title", "long one", "Take your time").stdout.strip())
        self.tasks["stopped"] = tid
        self.wait_task(tid, "running", 30)
        self.wait("the fake claude to start", lambda: len(self.fake_log()) > n_before, 15)
        rec = self.fake_log()[-1]
        self.wait("the session to print its lines", lambda: self.task_show(tid).get("claude_session_id"), 15)
        procs = self.container_processes()
        if "fake-claude" not in procs:
            raise Failure(f"no fake-claude process while the session runs:\n{procs}")
        if not rec.get("child_pid"):
            raise Failure(f"the fake claude recorded no grandchild: {rec}")
        # The session (python3) runs inside the daemon's sandbox.
        main = self.show("MainPID")["MainPID"]
        fake = self.proc_status(rec["pid"])
        daemon = self.proc_status(main)
        for k in ("Seccomp", "NoNewPrivs", "CapBnd", "CapEff", "Uid"):
            if fake.get(k) != daemon.get(k):
                raise Failure(f"the fake claude's {k} is {fake.get(k)!r}, the daemon's {daemon.get(k)!r}")
        if self.c.run(["readlink", f"/proc/{rec['pid']}/ns/mnt"]).stdout != \
                self.c.run(["readlink", f"/proc/{main}/ns/mnt"]).stdout:
            raise Failure("the fake claude is not in the daemon's mount namespace")
        t0 = time.monotonic()
        self.systemctl("stop", "jada-agent", timeout=60)
        took = time.monotonic() - t0
        p = self.show("ActiveState", "MainPID", "Result", "ExecMainStatus")
        if p["ActiveState"] != "inactive" or p["MainPID"] != "0":
            raise Failure(f"after stop: {p}")
        if p["Result"] != "success":
            raise Failure(f"stop was not clean: {p}\n{self.diagnostics()}")
        procs = self.container_processes()
        left = [l for l in procs.splitlines()
                if "fake-claude" in l or "sleep 300" in l or "jada-agent" in l.split(None, 2)[1:2]
                or "python3" in l]
        if left:
            raise Failure(f"processes left after stop: {left}")
        for pid in (rec["pid"], rec["child_pid"]):
            if self.c.run(["kill", "-0", str(pid)], check=False).returncode == 0:
                raise Failure(f"pid {pid} of the session (fake claude or its grandchild) is alive after stop")
        r = self.c.run(["systemd-cgls", "--no-pager", "-u", "jada-agent.service"], check=False)
        if "fake-claude" in r.stdout or "sleep" in r.stdout:
            raise Failure(f"the unit's cgroup still has processes:\n{r.stdout}")
        t = self.task_show(tid)
        if t["state"] != "queued" or not t.get("claude_session_id"):
            raise Failure(f"task {tid} after stop is not resumable: {json.dumps(t, indent=1)}")
        if t["claude_session_id"] != rec.get("session_id"):
            raise Failure(f"session id {t['claude_session_id']} is not the one claude had ({rec.get('session_id')})")
        self.tasks["stopped_session"] = t["claude_session_id"]
        log(f"  stop took {took:.1f}s; task {tid} queued with session {t['claude_session_id']}")

    def check_state_survives_restart(self):
        """8. the state survives a restart; the interrupted task resumes its conversation."""
        self.play(stream=SUCCESS)
        self.systemctl("start", "jada-agent")
        for key in ("done", "needs_you"):
            if key in self.tasks:
                t = self.task_show(self.tasks[key])
                if t["state"] != "done":
                    raise Failure(f"task {self.tasks[key]} is {t['state']} after the restart")
        listed = json.loads(self.cli("task", "list", "--json").stdout)
        if len(listed) < len({k for k in self.tasks if k != "stopped_session"}):
            raise Failure(f"task list after restart: {listed}")
        self.systemctl("restart", "jada-agent")
        if "stopped" in self.tasks:
            tid = self.tasks["stopped"]
            t = self.wait_task(tid, ("done", "failed", "needs_you"), 40)
            if t["state"] != "done":
                raise Failure(f"the interrupted task {tid} ended {t['state']}")
            runs = [e for e in self.fake_log() if e.get("env", {}).get("JADA_TASK_ID") == str(tid)]
            if not runs or not runs[-1].get("resumed") or runs[-1].get("session_id") != self.tasks["stopped_session"]:
                raise Failure(f"task {tid} did not resume its conversation: {runs[-1:]}")

    def check_watchdog(self):
        """5. a hung loop is killed by the watchdog (SIGABRT) and restarted."""
        self.c.write(f"{DROPIN_DIR}/20-watchdog.conf", "[Service]\nWatchdogSec=3s\nRestartSec=1s\n")
        self.systemctl("daemon-reload")
        self.systemctl("restart", "jada-agent")
        p = self.show("MainPID", "NRestarts", "WatchdogUSec")
        if p["WatchdogUSec"] not in ("3s", "3000000"):
            raise Failure(f"the drop-in did not apply: {p}")
        since = self.c.run(["date", "+@%s.%N"]).stdout.strip()
        old = p["MainPID"]
        time.sleep(4)  # the loop feeds a 3 s watchdog: still alive
        if self.show("MainPID")["MainPID"] != old:
            raise Failure("the daemon was restarted although its loop runs (watchdog not fed?)")
        self.c.run(["kill", "-STOP", old])

        def restarted():
            q = self.show("MainPID", "ActiveState", "SubState", "NRestarts")
            return q if q["MainPID"] not in ("0", old) and q["ActiveState"] == "active" else None
        q = self.wait("a new MainPID, active", restarted, 30)
        if int(q["NRestarts"]) <= int(p["NRestarts"]):
            raise Failure(f"NRestarts did not grow: {p} -> {q}")
        text = self.c.run(["journalctl", "--no-pager", "-o", "cat", "--since", since, "-u", "jada-agent"]).stdout
        if "Watchdog timeout" not in text or "ABRT" not in text:
            raise Failure(f"the journal does not show a watchdog kill by SIGABRT:\n{text}")
        os.unlink(self.c.path(f"{DROPIN_DIR}/20-watchdog.conf"))
        self.systemctl("daemon-reload")
        self.systemctl("restart", "jada-agent")
        log(f"  MainPID {old} -> {q['MainPID']}, NRestarts {p['NRestarts']} -> {q['NRestarts']}")

    def check_unit_verify(self):
        """0. systemd-analyze verify accepts the unit (systemd 252 knows every directive; man pages not checked here)."""
        r = self.c.run(["systemd-analyze", "verify", "--man=no", f"{self.unit_dir}/jada-agent.service"], check=False, timeout=60)
        noise = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        if r.returncode != 0 or noise:
            raise Failure(f"systemd-analyze verify: exit {r.returncode}\n" + "\n".join(noise))
        r = self.c.run(["systemd-analyze", "security", "--no-pager", "jada-agent.service"], check=False)
        last = [l for l in r.stdout.splitlines() if "Overall exposure level" in l]
        if last:
            log(f"  online {last[0].strip()}")

    def check_sandbox_applied(self):
        """H. the hardening is really in force on the running daemon (not silently skipped in a container)."""
        main = self.show("MainPID")["MainPID"]
        st = self.proc_status(main)
        want = {"NoNewPrivs": "1", "Seccomp": "2", "CapBnd": "0000000000000000", "CapEff": "0000000000000000"}
        wrong = {k: st.get(k) for k, v in want.items() if st.get(k) != v}
        if wrong:
            raise Failure(f"/proc/{main}/status: {wrong} (want {want})")
        uid_map = self.c.run(["cat", f"/proc/{main}/uid_map"]).stdout.split()
        if uid_map[:3] == ["0", "0", "4294967295"]:
            raise Failure("PrivateUsers=yes: the daemon is in the initial user namespace")
        mounts = self.c.run(["cat", f"/proc/{main}/mountinfo"]).stdout.splitlines()
        def opts(mountpoint):
            for m in mounts:
                f = m.split()
                if f[4] == mountpoint:
                    return f[5] + "," + m.split(" - ")[1]
            return ""
        problems = []
        if "ro" not in opts("/usr").split(",") and "ro" not in opts("/").split(","):
            problems.append(f"/ and /usr not read-only: {opts('/')!r} {opts('/usr')!r}")
        if "rw" not in opts("/var/lib/jada-agent").split(","):
            problems.append(f"the state dir is not a rw mount: {opts('/var/lib/jada-agent')!r}")
        proc = opts("/proc")
        if "hidepid=invisible" not in proc or "subset=pid" not in proc:
            problems.append(f"/proc is not hidepid=invisible,subset=pid: {proc!r}")
        if not opts("/tmp"):
            problems.append("no private /tmp")
        if problems:
            raise Failure("; ".join(problems))
        log(f"  uid_map {' '.join(uid_map)}; /proc {proc.split(' ')[-1]}")

    def check_cli_as_root_while_stopped(self):
        """9. root's CLI while the daemon is stopped leaves nothing the sandboxed daemon cannot use."""
        self.systemctl("stop", "jada-agent")
        self.play(stream=SUCCESS)
        tid = int(self.cli("task", "add", "--title", "added while stopped", "Hello again").stdout.strip())
        self.cli("task", "list")
        r = self.c.run(["find", "/var/lib/jada-agent", "-not", "-user", "jada-agent", "-printf", "%u %p\n"])
        foreign = r.stdout.strip()
        self.systemctl("start", "jada-agent")
        t = self.wait_task(tid, ("done", "failed", "needs_you"), 40)
        if t["state"] != "done":
            raise Failure(f"task {tid} ended {t['state']}; files not owned by jada-agent: {foreign!r}\n"
                          f"{self.diagnostics()}")
        if self.status_text().startswith("DEGRADED"):
            raise Failure(f"{self.status_text()!r}; files not owned by jada-agent: {foreign!r}")
        if foreign:
            log(f"  note: files owned by others in the state dir after root's CLI: {foreign}")

    def check_bad_config_no_restart(self):
        """10. a bad config at start is exit 78: the unit fails and is not restarted (RestartPreventExitStatus)."""
        self.c.write(f"{DROPIN_DIR}/20-fast-restart.conf", "[Service]\nRestartSec=1s\n")
        self.systemctl("daemon-reload")
        try:
            self.systemctl("stop", "jada-agent")
            before = int(self.show("NRestarts")["NRestarts"])
            self.c.write("/etc/jada-agent.conf", CONFIG.format(poll="nonsense", share=SHARE, extra=""))
            r = self.systemctl("start", "jada-agent", check=False)
            if r.returncode == 0:
                raise Failure("systemctl start succeeded with a bad config")
            time.sleep(2.5)  # two RestartSec: a restart would have happened
            p = self.show("ActiveState", "Result", "ExecMainStatus", "NRestarts")
            if p["ActiveState"] != "failed" or p["ExecMainStatus"] != "78" or int(p["NRestarts"]) != before:
                raise Failure(f"after a start with a bad config: {p} (NRestarts was {before})")
        finally:
            os.unlink(self.c.path(f"{DROPIN_DIR}/20-fast-restart.conf"))
            self.write_config()
            self.systemctl("daemon-reload")
            self.systemctl("reset-failed", "jada-agent", check=False)
        self.systemctl("start", "jada-agent")

    def check_no_unit_problems(self):
        """Hardening: nothing in the daemon's journal says a sandboxing directive got in the way."""
        text = self.c.run(["journalctl", "--no-pager", "-b", "-o", "cat"]).stdout
        bad = [l for l in text.splitlines()
               if "jada-agent" in l and any(w in l for w in ("Operation not permitted", "Permission denied",
                                                              "Read-only file system", "SECCOMP", "Bad system call",
                                                              "status=31/SYS", "status=226", "status=243"))]
        if bad:
            raise Failure("hardening problems in the journal:\n" + "\n".join(bad[:20]))
        r = self.c.run(["journalctl", "--no-pager", "-u", "jada-agent", "-p", "warning", "-o", "cat"])
        log(textwrap.indent("warnings and errors of the unit:\n" + r.stdout, "  ") if r.stdout.strip()
            else "  no warnings from the unit")

    def check_real_claude(self):
        """R. the real Claude Code CLI (Node 18) runs a task to done inside the hardened unit."""
        self.with_real_claude(self._check_real_claude)

    def check_real_claude_subtasks(self):
        """R2. the real CLI's Bash tool runs `jada-agent task add --parent "$JADA_TASK_ID"` in the hardened unit: the parent waits, its children run, it resumes with their results and ends done."""
        self.with_real_claude(self._check_real_claude_subtasks)

    def with_real_claude(self, check):
        if not self.args.claude_cli:
            raise Failure("needs --claude-cli DIR (the directory tools/install-claude-cli filled)")
        try:
            check()
        except Failure as e:
            raise Failure(f"{e}\n{self.real_claude_diagnostics()}")
        finally:
            self.systemctl("stop", API_UNIT, check=False)   # --collect: gone once stopped or failed
            dropin = self.c.path(f"{DROPIN_DIR}/30-real-claude.conf")
            if os.path.exists(dropin):
                os.unlink(dropin)
            self.write_config()
            self.systemctl("daemon-reload")
            self.systemctl("restart", "jada-agent")

    def _check_real_claude(self):
        # Outside the sandbox first: a CLI that cannot run at all is not the hardening's fault.
        node = self.c.run(["node", "--version"], check=False)
        if node.returncode != 0:
            raise Failure(f"node --version in the container: {node.stdout}{node.stderr} (tools/system-tree has nodejs?)")
        major = int(node.stdout.strip().lstrip("v").split(".")[0])
        if major < 18:
            raise Failure(f"node {node.stdout.strip()} in the container; the CLI needs >= 18")
        r = self.c.run(["env", "HOME=/tmp/jada-cli-version", "CLAUDE_CONFIG_DIR=/tmp/jada-cli-version/.claude",
                        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", CLAUDE, "--version"], check=False, timeout=60)
        if r.returncode != 0 or not r.stdout.startswith(CLAUDE_VERSION):
            raise Failure(f"{CLAUDE} --version as root outside the unit: exit {r.returncode}\n{r.stdout}{r.stderr}")
        # --private-network: loopback only. systemd (PID 1) brings lo up; make sure.
        self.c.run(["ip", "link", "set", "lo", "up"])
        links = self.c.run(["ip", "-o", "link", "show"]).stdout
        if "lo:" not in links or "UP" not in links.split("lo:")[1].split("\n")[0]:
            raise Failure(f"loopback is not up in the container:\n{links}")

        # The task first (daemon stopped), so the script can name its work directory.
        self.systemctl("stop", "jada-agent")
        prompt = "Write hello.py, run it, and tell me what it printed."
        tid = int(self.cli("task", "add", "--title", "real claude", prompt).stdout.strip())
        self.tasks["real_claude"] = tid
        work = f"/var/lib/jada-agent/work/task-{tid}"
        rules = [
            # Side requests (no tools offered) get plain text, never a tool call.
            {"main": False, "text": "Side answer."},
            {"min_tool_results": 2, "text": "All done. hello.py printed: {last_result}"},
            # Bash with python3 needs approval under acceptEdits: allowed_tools must have reached it.
            {"min_tool_results": 1, "tool_use": {"name": "Bash", "input": {
                "command": "python3 hello.py", "description": "Run the script"}}},
            {"text": "Writing the script.", "tool_use": {"name": "Write", "input": {
                "file_path": f"{work}/hello.py", "content": HELLO_PY}}},
        ]
        self.start_fake_api(rules, "allowed_tools = Bash(python3:*)\n")
        self.systemctl("daemon-reload")
        self.since = self.c.run(["date", "+@%s.%N"]).stdout.strip()
        t0 = time.monotonic()
        self.systemctl("start", "jada-agent")
        t = self.wait_task(tid, ("done", "failed", "needs_you"), 150)
        took = time.monotonic() - t0
        if t["state"] != "done":
            raise Failure(f"task {tid} ended {t['state']}: {json.dumps(t, indent=1)}")
        # hello.py ran under the CLI's Bash tool, so inside the CLI's own sandbox
        # (seccomp, no_new_privs, the user namespace and the mounts are inherited).
        result = t.get("result") or ""
        want = "All done. hello.py printed: hello from THE FAKE MODEL"
        if not result.startswith(want):
            raise Failure(f"task {tid} result {result!r}, not {want!r}...")
        seen = dict(kv.split("=", 1) for kv in result[len(want):].split())
        sandbox = {"Seccomp": "2", "NoNewPrivs": "1", "CapEff": "0000000000000000", "usr_ro": "1", "userns": "1"}
        wrong = {k: seen.get(k) for k, v in sandbox.items() if seen.get(k) != v}
        if wrong:
            raise Failure(f"the CLI's tool did not run inside the unit's sandbox: {wrong} (want {sandbox}); "
                          f"result {result!r}")
        sessions = [s for s in json.loads(self.cli("sessions", "--json").stdout)["sessions"]
                    if s.get("task_id") == tid]
        if len(sessions) != 1:
            raise Failure(f"task {tid} has {len(sessions)} session rows: {sessions}")
        s = sessions[0]
        if s["outcome"] != "done" or not s["turns"] > 0 or s["exit_status"] != 0 or s.get("error"):
            raise Failure(f"the session row: {json.dumps(s, indent=1)}")
        if not os.path.exists(self.c.path(f"{work}/hello.py")):
            raise Failure(f"the CLI's Write tool left no {work}/hello.py")
        reqs = self.api_requests()
        conv = [q for q in reqs if q.get("path", "").startswith("/v1/messages") and q.get("main")]
        if [q["tool_results"] for q in conv] != [0, 1, 2]:
            raise Failure(f"the CLI's turns (tool results per request): {[q['tool_results'] for q in conv]}")
        for q in conv:
            h = q.get("headers", {})
            if h.get("x-api-key") != API_KEY:
                raise Failure(f"the CLI sent x-api-key {h.get('x-api-key')!r}, not the key from /etc/credstore")
            if h.get("x-claude-code-session-id") not in (None, t["claude_session_id"]):
                raise Failure(f"the CLI ran conversation {h.get('x-claude-code-session-id')}, "
                              f"not the daemon's {t['claude_session_id']}")
        agent = conv[0]["headers"].get("user-agent", "")
        if f"claude-cli/{CLAUDE_VERSION}" not in agent:
            raise Failure(f"user-agent {agent!r}: not the real CLI {CLAUDE_VERSION}")
        log(f"  task {tid} done in {took:.1f}s: {s['turns']} turns, {len(reqs)} requests to the fake API, "
            f"node {major}, {agent}\n  the CLI's Bash tool saw: {' '.join(f'{k}={v}' for k, v in seen.items())}")

    def _check_real_claude_subtasks(self):
        self.c.run(["ip", "link", "set", "lo", "up"])
        self.systemctl("stop", "jada-agent")
        p = int(self.cli("task", "add", "--title", "real split", "A big job, in two parts.").stdout.strip())
        # The command as the system prompt gives it (the task's id written
        # out): `jada-agent` from the session's PATH, the config and db from
        # its environment.
        split = " && ".join(f"printf 'Do part {x}.' | jada-agent task add --parent {p} --title {x} -"
                            for x in ("A", "B"))
        report = "Your sub-tasks have all ended"
        rules = [
            {"main": False, "text": "Side answer."},
            {"contains": report, "text": "Both parts are in; the big job is done."},
            {"contains": "Do part A.", "text": "Result of part A."},
            {"contains": "Do part B.", "text": "Result of part B."},
            {"contains": "A big job", "min_tool_results": 1, "text": "Split; the CLI said: {last_result}"},
            {"contains": "A big job", "text": "Splitting into two parts.", "tool_use": {"name": "Bash", "input": {
                "command": split, "description": "Add the two sub-tasks"}}},
        ]
        # No allowed_tools: the daemon allows Bash(jada-agent task add:*) itself.
        self.start_fake_api(rules, "")
        self.systemctl("daemon-reload")
        self.since = self.c.run(["date", "+@%s.%N"]).stdout.strip()
        t0 = time.monotonic()
        self.systemctl("start", "jada-agent")
        t = self.wait_task(p, ("done", "failed", "needs_you"), 200)
        took = time.monotonic() - t0
        if t["state"] != "done" or t["result"] != "Both parts are in; the big job is done.":
            raise Failure(f"task {p} ended {t['state']}: {json.dumps(t, indent=1)}")
        conv = [q for q in self.api_requests() if q.get("path", "").startswith("/v1/messages") and q.get("main")]
        said = [q.get("last_user_text") or "" for q in conv if q["rule"] == 4]
        ids = [c["id"] for c in t["children"]]
        if len(said) != 1 or said[0].split() != [str(i) for i in ids] or len(ids) != 2:
            raise Failure(f"the Bash tool's `jada-agent task add` said {said!r}; task {p}'s children: {t['children']}")
        a, b = ids
        for child, part in ((a, "A"), (b, "B")):
            c = self.task_show(child)
            if (c["parent"], c["state"], c["title"], c["result"]) != (p, "done", part, f"Result of part {part}."):
                raise Failure(f"sub-task {child}: {json.dumps(c, indent=1)}")
        states = [e["new_state"] for e in t["events"]]
        if states[-5:] != ["running", "waiting", "queued", "running", "done"]:
            raise Failure(f"task {p}'s states: {states}")
        # The resumed session sent the whole conversation (the Bash call and
        # its result), the children's report last.
        resumed = [q for q in conv if q["rule"] == 1]
        if len(resumed) != 1 or resumed[0]["tool_results"] != 1:
            raise Failure(f"the resumed session's requests: {resumed}")
        for words in (f"## Sub-task {a}: A\nstate: done\nresult:\nResult of part A.",
                      f"## Sub-task {b}: B\nstate: done\nresult:\nResult of part B."):
            if words not in (resumed[0].get("last_user_text") or ""):
                raise Failure(f"the resumed conversation's last message lacks {words!r}: {resumed}")
        sessions = [s for s in json.loads(self.cli("sessions", "--json").stdout)["sessions"] if s.get("task_id") == p]
        if [(s["outcome"], s["resumed"], s["claude_session_id"]) for s in sessions] != \
                [("done", False, t["claude_session_id"]), ("done", True, t["claude_session_id"])]:
            raise Failure(f"task {p}'s sessions: {json.dumps(sessions, indent=1)}")
        log(f"  task {p} split into {a} and {b} by the CLI's Bash tool, resumed, done in {took:.1f}s "
            f"({len(conv)} turns to the fake API)")

    def start_fake_api(self, rules, claude_config):
        """The fake Messages API on these rules, and the real CLI as the
        daemon's claude (the drop-in and the config; daemon-reload to follow)."""
        os.makedirs(self.c.path(API_DIR), exist_ok=True)
        self.c.write(f"{API_DIR}/script.json", json.dumps({"rules": rules}, indent=1) + "\n")
        for f in ("port", "requests.jsonl"):
            if os.path.exists(self.c.path(f"{API_DIR}/{f}")):
                os.unlink(self.c.path(f"{API_DIR}/{f}"))
        # The fake Messages API: a transient unit as root, outside jada-agent's sandbox.
        self.c.run(["systemd-run", f"--unit={API_UNIT}", "--collect", "--quiet",
                    f"--property=StandardOutput=truncate:{API_DIR}/port", "--property=StandardError=journal",
                    "python3", FAKE_API, f"{API_DIR}/script.json", "--log", f"{API_DIR}/requests.jsonl"])

        def port():
            try:
                with open(self.c.path(f"{API_DIR}/port")) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return int(text) if text.endswith("\n") else None
        api = self.wait("the fake Messages API to print its port", port, 30)
        self.c.write(f"{DROPIN_DIR}/30-real-claude.conf", textwrap.dedent(f"""\
            [Service]
            Environment=ANTHROPIC_BASE_URL=http://127.0.0.1:{api}
            Environment=NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
            """))
        self.c.write("/etc/jada-agent.conf", CONFIG.format(poll="5s", share=SHARE, extra=claude_config)
                     .replace(f"command = {SHARE}/fake-claude", f"command = {CLAUDE}"))

    def api_requests(self):
        try:
            with open(self.c.path(f"{API_DIR}/requests.jsonl")) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def real_claude_diagnostics(self):
        try:
            since = getattr(self, "since", None)
            args = ["journalctl", "--no-pager", "-o", "short-precise", "-u", "jada-agent", "-u", API_UNIT]
            jr = self.c.run(args + (["--since", since] if since else ["-n", "60"]), check=False).stdout
            reqs = "\n".join(json.dumps({k: v for k, v in q.items() if k not in ("headers", "metadata", "system_tail")})
                             for q in self.api_requests())
            return textwrap.indent(f"--- journal (jada-agent, {API_UNIT})\n{jr}--- fake API requests\n{reqs}\n", "    ")
        except Failure as e:
            return f"    (no diagnostics: {e})"

    CHECKS = ["check_unit_verify", "check_sysusers", "check_start", "check_sandbox_applied", "check_status_text",
              "check_reload",
              "check_task_done", "check_subtasks", "check_project", "check_journal", "check_catalog", "check_stop_during_session", "check_state_survives_restart",
              "check_watchdog", "check_cli_as_root_while_stopped", "check_bad_config_no_restart",
              "check_real_claude", "check_real_claude_subtasks", "check_no_unit_problems"]

    # With --deb: the same checks on the Debian package, installed by apt.
    DEB_CHECKS = ["check_deb_install", "check_unit_verify", "check_start", "check_status_text", "check_task_done",
                  "check_deb_purge"]

    def check_deb_install(self):
        """D1. apt-get install ./jada-agent_*.deb: the user, the unit, the conffile, and the service started."""
        r = self.c.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends",
                        DEB_IN_CONTAINER], timeout=120, check=False)
        if r.returncode != 0:
            raise Failure(f"apt-get install of the package failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr}")
        status = self.c.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "jada-agent"]).stdout
        if not status.startswith("install ok installed"):
            raise Failure(f"dpkg says: {status}")
        conffiles = self.c.run(["dpkg-query", "-W", "-f=${Conffiles}", "jada-agent"]).stdout
        if "/etc/jada-agent.conf" not in conffiles:
            raise Failure(f"/etc/jada-agent.conf is not a conffile: {conffiles!r}")
        if self.c.run(["getent", "passwd", "jada-agent"], check=False).returncode != 0:
            raise Failure("the package's postinst did not create the jada-agent user (dh_installsysusers)")
        # dpkg's list, not the disk: the minimal tree drops man pages (path-exclude).
        listed = set(self.c.run(["dpkg", "-L", "jada-agent"]).stdout.split())
        for path in ("/usr/bin/jada-agent", f"{DEB_UNIT_DIR}/jada-agent.service", "/usr/share/man/man8/jada-agent.8.gz",
                     "/usr/share/man/man5/jada-agent.conf.5.gz", "/usr/lib/systemd/catalog/jada-agent.catalog",
                     "/usr/lib/sysusers.d/jada-agent.conf"):
            if path not in listed:
                raise Failure(f"{path} is not in the package")
        enabled = self.c.run(["systemctl", "is-enabled", "jada-agent"], check=False).stdout.strip()
        if enabled != "enabled":
            raise Failure(f"the unit is {enabled!r} after the install, not enabled")
        # Started by the postinst on the packaged config (no credential yet:
        # running, and saying so).
        self.wait("the service started by the package", lambda: self.c.run(
            ["systemctl", "is-active", "jada-agent"], check=False).stdout.strip() == "active", 15)
        # The test's config (the fake claude) replaces the packaged one.
        self.systemctl("stop", "jada-agent")
        self.write_config()
        log(f"  installed {status.split()[-1]}, unit enabled, user and conffile in place")

    def check_deb_purge(self):
        """D2. systemctl stop, then apt-get purge: nothing of the package is left, the service is gone."""
        self.systemctl("stop", "jada-agent")
        r = self.c.run(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "jada-agent"], timeout=120,
                       check=False)
        if r.returncode != 0:
            raise Failure(f"apt-get purge failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr}")
        for path in ("/usr/bin/jada-agent", "/etc/jada-agent.conf", f"{DEB_UNIT_DIR}/jada-agent.service"):
            if os.path.exists(self.c.path(path)):
                raise Failure(f"{path} is left after the purge")
        if self.c.run(["systemctl", "cat", "jada-agent"], check=False).returncode == 0:
            raise Failure("systemd still knows the unit after the purge")
        if self.c.run(["pgrep", "-x", "jada-agent"], check=False).returncode == 0:
            raise Failure("a jada-agent process runs after the purge")

    def record(self, name, ok, detail="", took=0.0):
        self.results.append((name, ok))
        if ok:
            log(f"PASS {name} ({took:.1f}s)")
        else:
            log(f"FAIL {name} ({took:.1f}s): {detail}")

    def main(self):
        t_all = time.monotonic()
        try:
            self.prerequisites()
        except Failure as e:
            self.record("prerequisites", False, str(e))
            return 1
        self.c = Container(self.tree, f"jada-test-{os.getpid()}", keep=self.args.keep)
        try:
            self.run_all()
        except Interrupted as e:
            self.record("run", False, f"interrupted: {e}")
        finally:
            self.c.teardown()
        failed = [n for n, ok in self.results if not ok]
        log(f"\nsystem tests: {len(self.results) - len(failed)} passed, {len(failed)} failed "
            f"in {time.monotonic() - t_all:.1f}s" + (f": {', '.join(failed)}" if failed else ""))
        return 1 if failed or not self.results else 0

    def run_all(self):
        try:
            t0 = time.monotonic()
            self.c.mount()
            self.populate()
            state = self.c.boot()
            self.record("boot", True, took=time.monotonic() - t0)
            if state != "running":
                failed = self.c.run(["systemctl", "--failed", "--no-pager"], check=False).stdout
                log(f"  note: the container is {state}:\n{textwrap.indent(failed, '    ')}")
        except Exception as e:
            self.record("boot", False, f"{e}\n{traceback.format_exc() if not isinstance(e, Failure) else ''}")
            return
        for name in self.DEB_CHECKS if self.deb else self.CHECKS:
            if self.args.k and not any(k in name for k in self.args.k):
                continue
            doc = getattr(self, name).__doc__.strip().splitlines()[0]
            log(f"== {name}: {doc}")
            t0 = time.monotonic()
            try:
                getattr(self, name)()
                self.record(name, True, took=time.monotonic() - t0)
            except Failure as e:
                self.record(name, False, str(e), took=time.monotonic() - t0)
            except Exception:
                self.record(name, False, traceback.format_exc(), took=time.monotonic() - t0)
        self.save_journal()

    def save_journal(self):
        if not self.args.journal:
            return
        try:
            r = self.c.run(["journalctl", "--no-pager", "-b", "-o", "short-precise"], check=False, timeout=30)
            with open(self.args.journal, "w") as f:
                f.write(r.stdout)
            log(f"the container's journal: {self.args.journal}")
        except Exception as e:  # diagnostics only
            log(f"could not save the journal: {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the jada-agent binary to install in the container")
    ap.add_argument("--tree", required=True, help="the Debian tree from tools/system-tree (not modified)")
    ap.add_argument("--claude-cli", metavar="DIR",
                    help="the npm install from tools/install-claude-cli DIR (for check_real_claude)")
    ap.add_argument("--deb", metavar="FILE",
                    help="instead of installing like make install, install this Debian package with apt "
                         "and run the package's checks (install, start, status, a task, purge)")
    ap.add_argument("-k", action="append", help="run only checks whose name contains this (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the overlay's upper layer and console log")
    ap.add_argument("--journal", help="write the container's whole journal to this file")
    ap.add_argument("--timeout", type=int, default=600, help="overall deadline in seconds (default 600)")
    args = ap.parse_args()
    t = SystemTest(args)

    def on_signal(signum, frame):
        signal.alarm(0)
        raise Interrupted(f"{signal.Signals(signum).name}" +
                          (f" after {args.timeout}s (--timeout)" if signum == signal.SIGALRM else ""))
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, on_signal)
    signal.alarm(args.timeout)
    sys.exit(t.main())


if __name__ == "__main__":
    main()
