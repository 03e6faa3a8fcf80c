# SPDX-License-Identifier: MIT
"""Projects with a real git: each task on its own branch and worktree, what a
session leaves committed, worktrees removed and branches kept, push,
on_done, isolation = none, and the faults (a foreign branch, a missing base,
a lock held by another process, an unknown project)."""

import json
import os
import subprocess
import time

from harness import TIMEOUT, TempStateTest, needs_root
from test_sessions import API_KEY, FAKE, SAMPLES, SessionTest

SUCCESS = SAMPLES + "success.stream.jsonl"
MAX_TURNS = SAMPLES + "max_turns.stream.jsonl"
GIT_ENV = {"GIT_AUTHOR_NAME": "Person", "GIT_AUTHOR_EMAIL": "person@example.org",
           "GIT_COMMITTER_NAME": "Person", "GIT_COMMITTER_EMAIL": "person@example.org",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "LC_ALL": "C"}


def git(repo, *args, check=True):
    env = dict(os.environ)
    env.update(GIT_ENV)
    r = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, env=env, timeout=TIMEOUT)
    if check and r.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {r.stderr}")
    return r.stdout


def make_repo(path, branch="main"):
    os.makedirs(path)
    git(path, "init", "-q", "-b", branch)
    with open(os.path.join(path, "README.md"), "w") as f:
        f.write("# site\n")
    with open(os.path.join(path, ".gitignore"), "w") as f:
        f.write("*.log\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "first")
    return path


class ProjectTest(SessionTest):
    PROJECT = ""          # extra keys of [project site]
    CLAUDE = ""           # extra keys of [claude]
    DAEMON = ""           # extra keys of [daemon]

    def setUp(self):
        self.repo = None
        super().setUp()
        self.repo = make_repo(os.path.join(self.tmp, "site"))
        self.configure()

    def configure(self, extra=""):
        if self.repo is None:
            return
        self.write_config(f"poll_interval = 1h\n{self.DAEMON}[claude]\ncommand = {FAKE}\n{self.CLAUDE}"
                          f"[project site]\npath = {self.repo}\n{self.PROJECT}" + extra)

    def branch_files(self, task_id, name):
        return git(self.repo, "show", f"jada/task-{task_id}:{name}")

    def subjects(self, task_id):
        return git(self.repo, "log", "--format=%s", f"main..jada/task-{task_id}").splitlines()

    def worktree(self, task_id):
        return os.path.join(self.state, "work", f"task-{task_id}")

    def wait_gone(self, path):
        deadline = time.monotonic() + TIMEOUT
        while os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, f"{path} is still there")
            time.sleep(0.05)

    def wait_retried(self, task_id):
        """Until the task is queued again after one failed attempt (a retry with backoff)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            t = self.show(task_id)
            if t["state"] == "queued" and t["attempts"] == 1:
                return t
            self.assertLess(time.monotonic(), deadline, t)
            time.sleep(0.05)

    def events(self, task_id):
        return [e["reason"] for e in self.show(task_id)["events"]]


class Branches(ProjectTest):
    def test_the_branch_holds_what_the_session_wrote(self):
        self.scenario(stream=SUCCESS, write_files={"new.txt": "hello\n", "README.md": "# site, changed\n",
                                                   "debug.log": "ignored\n"})
        self.daemon()
        i = self.add("Change the site.", "--project", "site")
        self.wait_state(i, "done")
        self.wait_gone(self.worktree(i))

        inv = self.invocations()[0]
        self.assertEqual(inv["cwd"], self.worktree(i))
        self.assertEqual(inv["env"]["JADA_PROJECT"], "site")
        self.assertEqual(inv["env"]["JADA_BRANCH"], f"jada/task-{i}")
        prompt = inv["argv"][inv["argv"].index("--append-system-prompt") + 1]
        self.assertIn(f"branch jada/task-{i}", prompt)

        self.assertEqual(self.branch_files(i, "new.txt"), "hello\n")
        self.assertEqual(self.branch_files(i, "README.md"), "# site, changed\n")
        self.assertNotIn("debug.log", git(self.repo, "ls-tree", "--name-only", f"jada/task-{i}"))
        self.assertEqual(self.subjects(i), [f"jada-agent: task {i}, session 1 (done)"])
        self.assertEqual(git(self.repo, "log", "-1", "--format=%an <%ae>", f"jada/task-{i}").strip(),
                         "jada-agent <jada-agent@localhost>")
        # The worktree is gone from git's list too; main is untouched.
        self.assertNotIn(self.worktree(i), git(self.repo, "worktree", "list"))
        self.assertEqual(git(self.repo, "log", "--format=%s", "main").splitlines(), ["first"])

        t = self.show(i)
        self.assertEqual((t["project"], t["branch"], t["base"], t["commits"]), ("site", f"jada/task-{i}", "main", 1))
        self.assertIsNone(t["worktree"])
        self.assertIn("new.txt", t["diffstat"])
        r = self.run_cli("-c", self.config, "task", "diff", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("+hello", r.stdout)
        self.assertIn("+# site, changed", r.stdout)
        r = self.run_cli("-c", self.config, "task", "diff", str(i), "--stat")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 files changed", r.stdout)
        r = self.run_cli("-c", self.config, "task", "list", "--project", "site", "--json")
        self.assertEqual([t["id"] for t in json.loads(r.stdout)], [i])
        r = self.run_cli("-c", self.config, "task", "list", "--project", "other")
        self.assertIn("no tasks", r.stdout)

    def test_the_agents_own_commits_stay_as_they_are(self):
        self.scenario(stream=SUCCESS, write_files={"a.txt": "a\n"}, git_commit="agent: add a")
        self.daemon()
        i = self.add("Commit it yourself.", "--project", "site")
        self.wait_state(i, "done")
        self.wait_gone(self.worktree(i))
        # Nothing was left uncommitted: no commit of the daemon's.
        self.assertEqual(self.subjects(i), ["agent: add a"])
        self.assertEqual(git(self.repo, "log", "-1", "--format=%an", f"jada/task-{i}").strip(), "Agent")

    def test_max_turns_is_committed_before_the_resume_which_sees_it(self):
        self.scenario(stream=MAX_TURNS, write_files={"draft.txt": "v1\n"})
        self.scenario(stream=SUCCESS, read_files=["draft.txt"], run="git log --format=%s",
                      write_files={"draft.txt": "v2\n"})
        self.daemon()
        i = self.add("A long job.", "--project", "site")
        self.wait_state(i, "done")
        first, second = self.wait_invocations(2)
        self.assertEqual(first["cwd"], second["cwd"])
        self.assertTrue(second["resumed"])
        self.assertEqual(second["read"], {"draft.txt": "v1\n"})
        self.assertIn(f"jada-agent: task {i}, session 1 (max_turns)", second["ran"].splitlines())
        self.wait_gone(self.worktree(i))
        self.assertEqual(self.subjects(i), [f"jada-agent: task {i}, session 2 (done)",
                                            f"jada-agent: task {i}, session 1 (max_turns)"])
        self.assertEqual(self.branch_files(i, "draft.txt"), "v2\n")

    def test_needs_you_then_reply_goes_on_in_the_same_worktree(self):
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: which colour?", write_files={"a.txt": "a\n"})
        self.scenario(stream=SUCCESS, read_files=["a.txt"], write_files={"b.txt": "blue\n"})
        self.daemon()
        i = self.add("Paint it.", "--project", "site")
        self.wait_state(i, "needs_you")
        self.assertTrue(os.path.exists(os.path.join(self.worktree(i), "a.txt")))
        self.assertEqual(self.subjects(i), [f"jada-agent: task {i}, session 1 (needs_you)"])
        r = self.run_cli("-c", self.config, "task", "reply", str(i), "blue")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_state(i, "done")
        first, second = self.invocations()
        self.assertEqual(first["cwd"], second["cwd"])
        self.assertEqual(second["read"], {"a.txt": "a\n"})
        self.wait_gone(self.worktree(i))
        self.assertEqual(self.branch_files(i, "b.txt"), "blue\n")

    def test_cancel_removes_the_worktree_and_keeps_the_branch(self):
        self.scenario(stream=SUCCESS, hang_after=1, write_files={"half.txt": "half done\n"})
        self.daemon()
        i = self.add("Never finishes.", "--project", "site")
        self.wait_invocations(1)
        r = self.run_cli("-c", self.config, "task", "cancel", str(i))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_gone(self.worktree(i))
        self.assertEqual(self.branch_files(i, "half.txt"), "half done\n")
        self.assertEqual(self.subjects(i), [f"jada-agent: task {i}, session 1 (cancelled)"])
        self.assertNotIn(self.worktree(i), git(self.repo, "worktree", "list"))

    def test_unknown_project_is_refused_and_nothing_added(self):
        r = self.run_cli("-c", self.config, "task", "add", "--project", "nope", "hello")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no project 'nope'", r.stderr)
        r = self.run_cli("-c", self.config, "task", "list", "--json")
        self.assertEqual(json.loads(r.stdout), [])

    def test_a_task_without_a_project_runs_as_before(self):
        self.scenario(stream=SUCCESS, write_files={"x.txt": "x\n"})
        self.daemon()
        i = self.add("No project.")
        self.wait_state(i, "done")
        self.assertEqual(self.invocations()[0]["cwd"], self.worktree(i))
        self.assertNotIn("JADA_PROJECT", self.invocations()[0]["env"])
        self.assertIsNone(self.show(i)["branch"])
        self.assertEqual(git(self.repo, "branch", "--list", "jada/*"), "")
        r = self.run_cli("-c", self.config, "task", "diff", str(i))
        self.assertEqual(r.returncode, 1)
        self.assertIn("has no project", r.stderr)


class Concurrent(ProjectTest):
    CLAUDE = "concurrency = 2\n"

    def test_two_tasks_of_one_project_have_two_branches(self):
        self.scenario(stream=SUCCESS, line_delay=0.1, write_files={"one.txt": "1\n", "shared.txt": "from one\n"})
        self.scenario(stream=SUCCESS, line_delay=0.1, write_files={"two.txt": "2\n", "shared.txt": "from two\n"})
        self.daemon()
        a = self.add("One.", "--project", "site")
        b = self.add("Two.", "--project", "site")
        self.wait_state(a, "done")
        self.wait_state(b, "done")
        inv = self.invocations()
        self.assertEqual(len({x["cwd"] for x in inv}), 2)
        files = {t: git(self.repo, "ls-tree", "--name-only", f"jada/task-{t}").split() for t in (a, b)}
        # Each branch has one of the two and its own shared.txt.
        self.assertEqual(sorted(files[a] + files[b]).count("shared.txt"), 2)
        self.assertEqual({"one.txt" in files[a], "one.txt" in files[b]}, {True, False})
        for t in (a, b):
            mine = "one.txt" if "one.txt" in files[t] else "two.txt"
            self.assertEqual(self.branch_files(t, "shared.txt"), "from one\n" if mine == "one.txt" else "from two\n")


class Shared(ProjectTest):
    CLAUDE = "concurrency = 2\n"
    PROJECT = "isolation = none\n"

    def test_sessions_of_a_shared_project_run_one_at_a_time_in_its_path(self):
        self.scenario(stream=SUCCESS, hang_after=1, write_files={"in-place.txt": "x\n"})
        self.scenario(stream=SUCCESS)
        self.daemon()
        a = self.add("First.", "--project", "site")
        b = self.add("Second.", "--project", "site")
        self.wait_invocations(1)
        time.sleep(1.0)  # the second would have started by now if it could
        self.assertEqual(len(self.invocations()), 1)
        self.assertEqual(self.show(b)["state"], "queued")
        self.assertEqual(self.invocations()[0]["cwd"], self.repo)
        self.assertNotIn("JADA_BRANCH", self.invocations()[0]["env"])
        self.run_cli("-c", self.config, "task", "cancel", str(a))
        self.wait_state(b, "done")
        self.assertEqual(self.invocations()[1]["cwd"], self.repo)
        # In place: no branch, no daemon commit.
        self.assertEqual(git(self.repo, "branch", "--list", "jada/*"), "")
        self.assertEqual(git(self.repo, "log", "--format=%s").splitlines(), ["first"])
        self.assertIn("in-place.txt", git(self.repo, "status", "--porcelain"))


class Push(ProjectTest):
    def setUp(self):
        super().setUp()
        self.bare = os.path.join(self.tmp, "remote.git")
        git(self.tmp, "init", "-q", "--bare", self.bare)
        git(self.repo, "remote", "add", "origin", self.bare)
        self.configure("push = origin\n")

    def test_the_branch_is_pushed_after_each_session(self):
        self.scenario(stream=MAX_TURNS, write_files={"a.txt": "a\n"})
        self.scenario(stream=SUCCESS, write_files={"b.txt": "b\n"})
        self.daemon()
        i = self.add("Push it.", "--project", "site")
        self.wait_state(i, "done")
        self.wait_gone(self.worktree(i))
        self.assertEqual(git(self.bare, "rev-parse", f"jada/task-{i}"), git(self.repo, "rev-parse", f"jada/task-{i}"))
        self.assertEqual(git(self.bare, "log", "--format=%s", f"jada/task-{i}").splitlines()[0],
                         f"jada-agent: task {i}, session 2 (done)")

    def test_a_failed_push_is_a_warning_not_a_lost_session(self):
        git(self.repo, "remote", "set-url", "origin", os.path.join(self.tmp, "missing.git"))
        self.scenario(stream=SUCCESS, write_files={"a.txt": "a\n"})
        self.daemon()
        i = self.add("Push it.", "--project", "site")
        self.wait_state(i, "done")
        self.wait_gone(self.worktree(i))
        self.assertEqual(self.branch_files(i, "a.txt"), "a\n")
        self.assertTrue(any("git push origin" in e and "failed" in e for e in self.events(i)), self.events(i))


class OnDone(ProjectTest):
    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.tmp, "on-done.out")
        self.configure(f"on_done = env | grep ^JADA_ | sort > {self.out}; cat \"$JADA_RESULT\" > {self.out}.result; "
                       f"pwd > {self.out}.pwd; echo said-by-on-done\n")

    def test_on_done_gets_its_variables(self):
        self.scenario(stream=SUCCESS, write_files={"a.txt": "a\n"})
        self.daemon()
        i = self.add("Finish it.", "--project", "site", "--title", "The title")
        self.wait_state(i, "done")
        self.wait_gone(self.worktree(i))
        with open(self.out) as f:
            env = dict(line.rstrip("\n").split("=", 1) for line in f)
        self.assertEqual(env["JADA_TASK_ID"], str(i))
        self.assertEqual(env["JADA_TASK_TITLE"], "The title")
        self.assertEqual(env["JADA_PROJECT"], "site")
        self.assertEqual(env["JADA_BRANCH"], f"jada/task-{i}")
        self.assertEqual(env["JADA_BASE"], "main")
        self.assertEqual(env["JADA_WORKTREE"], self.worktree(i))
        with open(self.out + ".result") as f:
            self.assertEqual(f.read(), "All done. The command printed hi.")
        with open(self.out + ".pwd") as f:
            self.assertEqual(f.read().strip(), self.worktree(i))
        self.assertFalse(os.path.exists(env["JADA_RESULT"]))  # removed after
        self.assertIn("on_done ran (exit 0)", self.events(i))

    def test_a_failing_on_done_is_an_event_and_the_task_stays_done(self):
        self.configure("on_done = echo broken >&2; exit 3\n")
        self.scenario(stream=SUCCESS)
        d = self.daemon()
        i = self.add("Finish it.", "--project", "site")
        self.wait_state(i, "done")
        self.wait_gone(self.worktree(i))
        self.assertIn("on_done failed: exit status 3", self.events(i))
        self.assertEqual(self.show(i)["state"], "done")
        deadline = time.monotonic() + TIMEOUT
        while "on_done: broken" not in d.log():
            self.assertLess(time.monotonic(), deadline, d.log())
            time.sleep(0.05)


class Faults(ProjectTest):
    def test_a_foreign_branch_of_the_same_name_is_refused(self):
        git(self.repo, "branch", "jada/task-1")
        git(self.repo, "checkout", "-q", "jada/task-1")
        with open(os.path.join(self.repo, "theirs.txt"), "w") as f:
            f.write("someone else's\n")
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "not the daemon's")
        git(self.repo, "checkout", "-q", "main")
        self.scenario(stream=SUCCESS)
        self.daemon()
        i = self.add("Collide.", "--project", "site")
        self.assertEqual(i, 1)
        t = self.wait_state(i, "needs_you")
        self.assertIn("already exists", t["needs_you_reason"])
        self.assertEqual(self.invocations(), [])
        self.assertEqual(git(self.repo, "log", "-1", "--format=%s", "jada/task-1").strip(), "not the daemon's")
        # It took no slot of the budget.
        self.assertEqual([s["uncounted"] for s in self.sessions()], ["never started"])

    def test_a_branch_at_its_base_is_adopted(self):
        git(self.repo, "branch", "jada/task-1")
        self.scenario(stream=SUCCESS, write_files={"a.txt": "a\n"})
        self.daemon()
        i = self.add("Adopt.", "--project", "site")
        self.wait_state(i, "done")
        self.wait_gone(self.worktree(i))
        self.assertEqual(self.branch_files(i, "a.txt"), "a\n")

    def test_a_missing_base_needs_you(self):
        self.configure("base = release\n")
        self.scenario(stream=SUCCESS)
        self.daemon()
        i = self.add("On release.", "--project", "site")
        t = self.wait_state(i, "needs_you")
        self.assertIn("base branch 'release' does not exist", t["needs_you_reason"])
        r = self.run_cli("-c", self.config, "check-config")
        self.assertEqual(r.returncode, 78)
        self.assertIn("base branch 'release' does not exist", r.stderr)

    def test_a_half_made_worktree_is_made_again_and_nothing_deleted(self):
        # As a daemon killed inside `git worktree add` leaves it: git's
        # "initializing" lock, and a checkout that never finished.
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: go on?")
        self.scenario(stream=SUCCESS, read_files=["README.md"], run="git status --porcelain")
        self.daemon()
        i = self.add("Half made.", "--project", "site")
        self.wait_state(i, "needs_you")
        wt = self.worktree(i)
        gitdir = git(wt, "rev-parse", "--absolute-git-dir").strip()
        with open(os.path.join(gitdir, "locked"), "w") as f:
            f.write("initializing")
        os.unlink(os.path.join(wt, "README.md"))
        self.assertEqual(self.run_cli("-c", self.config, "task", "reply", str(i), "yes").returncode, 0)
        self.wait_state(i, "done")
        second = self.invocations()[1]
        self.assertEqual(second["read"], {"README.md": "# site\n"})
        self.assertEqual(second["ran"], "")
        self.assertTrue(any("left half made" in e for e in self.events(i)), self.events(i))
        self.wait_gone(wt)
        # No commit deleted what the half-made checkout lacked.
        self.assertEqual(self.branch_files(i, "README.md"), "# site\n")
        self.assertEqual(self.subjects(i), [])

    def test_a_held_lock_retries_with_backoff_and_loses_nothing(self):
        # The agent's session ends with the worktree's index locked (as by
        # another git that is still running): nothing can be committed.
        self.scenario(stream=MAX_TURNS, write_files={"work.txt": "precious\n"},
                      run="touch \"$(git rev-parse --git-dir)/index.lock\"")
        self.scenario(stream=SUCCESS, run="git log --format=%s")
        self.daemon()
        i = self.add("Locked.", "--project", "site")
        self.wait_retried(i)
        self.assertEqual(len(self.invocations()), 1)  # the resume did not start
        self.assertTrue(any("not committed yet" in e for e in self.events(i)), self.events(i))
        self.assertTrue(any("cannot commit what the last session left" in e for e in self.events(i)), self.events(i))
        self.assertTrue(os.path.exists(os.path.join(self.worktree(i), "work.txt")))
        # The lock goes away; the retry commits, then the session runs.
        gitdir = git(self.worktree(i), "rev-parse", "--git-dir").strip()
        os.unlink(os.path.join(self.worktree(i), gitdir, "index.lock"))
        self.sql("UPDATE tasks SET run_after = 0 WHERE id = ?", i)
        self.wake()
        self.wait_state(i, "done")
        self.assertIn(f"jada-agent: task {i}, session 1 (max_turns)", self.invocations()[1]["ran"].splitlines())
        self.wait_gone(self.worktree(i))
        self.assertEqual(self.branch_files(i, "work.txt"), "precious\n")


class HangingGit(ProjectTest):
    DAEMON = "git_timeout = 1s\n"
    CLAUDE = "concurrency = 2\n"

    def test_a_hanging_git_is_stopped_and_the_task_retried(self):
        # A git on the daemon's PATH whose `worktree add` hangs while the flag exists.
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        flag = os.path.join(self.tmp, "hang")
        real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout.strip()
        with open(os.path.join(bindir, "git"), "w") as f:
            f.write(f"#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = worktree ] && [ -e {flag} ] && exec sleep 300; done\n"
                    f"exec {real} \"$@\"\n")
        os.chmod(os.path.join(bindir, "git"), 0o755)
        open(flag, "w").close()
        self.scenario(stream=SUCCESS, line_delay=0.2)  # the other task's session
        self.scenario(stream=SUCCESS, write_files={"a.txt": "a\n"})
        self.daemon(extra_env={"PATH": bindir + ":" + os.environ["PATH"]})
        a = self.add("Hangs first.", "--project", "site")
        b = self.add("No project.")
        # The other session runs to its end meanwhile: the loop is not blocked.
        self.wait_state(b, "done")
        self.wait_retried(a)
        self.assertTrue(any("git worktree add: timed out" in e for e in self.events(a)), self.events(a))
        self.assertEqual([s["uncounted"] for s in self.sessions() if s["task_id"] == a], ["never started"])
        os.unlink(flag)
        self.sql("UPDATE tasks SET run_after = 0 WHERE id = ?", a)
        self.wake()
        self.wait_state(a, "done")
        self.wait_gone(self.worktree(a))
        self.assertEqual(self.branch_files(a, "a.txt"), "a\n")


@needs_root
class FullDisk(ProjectTest):
    """The repository's disk fills while the daemon commits: nothing lost."""

    def setUp(self):
        self.mnt = None
        super().setUp()
        self.mnt = os.path.join(self.tmp, "small")
        os.makedirs(self.mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", self.mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])
        moved = os.path.join(self.mnt, "site")
        subprocess.run(["cp", "-a", self.repo, moved], check=True)
        self.repo = moved
        self.configure()

    def test_a_full_disk_mid_commit_loses_nothing(self):
        # 2 MiB of incompressible data: git cannot store its blob in 1 MiB.
        self.scenario(stream=MAX_TURNS, write_random={"big.bin": 2 * 1024 * 1024}, write_files={"note.txt": "n\n"})
        self.scenario(stream=SUCCESS, run="git log --format=%s; git status --porcelain")
        self.daemon()
        i = self.add("Fill it.", "--project", "site")
        self.wait_retried(i)
        self.assertEqual(len(self.invocations()), 1)
        self.assertTrue(any("not committed yet" in e and "space" in e.lower() for e in self.events(i)),
                        self.events(i))
        big = os.path.join(self.worktree(i), "big.bin")
        with open(big, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 2 * 1024 * 1024)  # still there
        subprocess.run(["mount", "-o", "remount,size=64m", self.mnt], check=True)
        self.sql("UPDATE tasks SET run_after = 0 WHERE id = ?", i)
        self.wake()
        self.wait_state(i, "done")
        ran = self.invocations()[1]["ran"]
        self.assertIn(f"jada-agent: task {i}, session 1 (max_turns)", ran)
        self.assertNotIn("big.bin", ran)  # nothing uncommitted when the resume started
        self.wait_gone(self.worktree(i))
        blob = subprocess.run(["git", "-C", self.repo, "show", f"jada/task-{i}:big.bin"], capture_output=True,
                              check=True).stdout
        self.assertEqual(blob, data)


class Config(TempStateTest):
    def check(self, text):
        self.write_config(text)
        return self.run_cli("-c", self.config, "check-config")

    def test_bad_project_sections_name_file_and_line(self):
        repo = make_repo(os.path.join(self.tmp, "r"))
        cases = [
            ("[project Bad]\npath = /x\n", ":3: [project Bad]: a project name is"),
            (f"[project a]\npath = {repo}\n[project a]\npath = {repo}\n", ":5: [project a] is defined twice"),
            ("[project a]\n", ":3: [project a] needs path"),
            (f"[project a]\npath = {repo}\nisolation = maybe\n", ":5: [project a] isolation: 'maybe'"),
            (f"[project a]\npath = {repo}\nauthor = nobody\n", ":5: [project a] author: 'nobody' is not"),
            (f"[project a]\npath = {repo}\nbase = --upload-pack=x\n", ":5: [project a] base:"),
            (f"[project a]\npath = {repo}\npush = a b\n", ":5: [project a] push:"),
            (f"[project a]\npath = {repo}\ncolour = red\n", ":5: unknown key 'colour' in section [project a]"),
            (f"[project a]\npath = {repo}\nisolation = none\npush = origin\n", ":3: [project a] push needs isolation"),
            ("default_project = site\n", ":3: [daemon] default_project: there is no [project site]"),
            (f"[project a]\npath = {self.tmp}/missing\n", ":3: project a: path"),
            (f"[project a]\npath = {self.tmp}\n", ":3: project a: " + self.tmp + " is not a git repository"),
        ]
        for text, expected in cases:
            with self.subTest(text=text):
                r = self.check(text)
                self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
                self.assertIn(expected, r.stderr)

    def test_a_good_project_and_default_project(self):
        repo = make_repo(os.path.join(self.tmp, "r"))
        r = self.check(f"default_project = site\n[project site]\npath = {repo}\nbase = main\npush = origin\n"
                       "author = Bot <bot@example.org>\non_done = true\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_cli("-c", self.config, "task", "add", "hello")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_cli("-c", self.config, "task", "show", r.stdout.strip(), "--json")
        self.assertEqual(json.loads(r.stdout)["project"], "site")


class Health(ProjectTest):
    def test_a_missing_path_is_a_problem_with_its_fix(self):
        self.configure()
        os.rename(self.repo, self.repo + ".moved")
        self.daemon()
        deadline = time.monotonic() + TIMEOUT
        while True:
            r = self.run_cli("-c", self.config, "status", "--json")
            problems = {p["kind"]: p for p in json.loads(r.stdout).get("problems", [])}
            if "project" in problems:
                break
            self.assertLess(time.monotonic(), deadline, r.stdout)
            time.sleep(0.1)
        self.assertIn("project site", problems["project"]["text"])
        self.assertEqual(r.returncode, 1)
