# SPDX-License-Identifier: MIT
"""The daemon under a stand-in NOTIFY_SOCKET: READY, STATUS, reload, stop,
watchdog, and refusal of databases that are not ours."""

import os
import re
import signal
import sqlite3
import time

from harness import TIMEOUT, TempStateTest, needs_root


class DaemonLifecycle(TempStateTest):
    def start_ready(self, config="", **kw):
        self.write_config(config)
        d = self.start(**kw)
        d.notify.wait_field("READY=1")
        return d

    def test_ready_then_status(self):
        t0 = time.monotonic()
        d = self.start_ready()
        print(f"\n    start to READY=1: {(time.monotonic() - t0) * 1000:.1f} ms (new db)", end=" ")
        ready = d.notify.wait_field("READY=1")
        statuses = d.notify.fields("STATUS")
        self.assertTrue(statuses, d.notify.messages)
        self.assertIn("Idle", statuses[-1])
        # READY only once the db is open (migrated) and the health row that
        # `status` reads says this daemon runs.
        if self.on_postgresql():
            self.assertGreaterEqual(int(self.db_value("SELECT version FROM jada_schema")), 1)
        else:
            db = sqlite3.connect(os.path.join(self.state, "jada-agent.db"))
            self.assertGreaterEqual(db.execute("PRAGMA user_version").fetchone()[0], 1)
            self.assertEqual(db.execute("PRAGMA application_id").fetchone()[0], 0x4A414441)
            db.close()
        (row,) = self.db_rows("SELECT pid, state, status FROM health")
        self.assertEqual(row["pid"], d.proc.pid)
        self.assertEqual(row["state"], "ok")
        self.assertGreaterEqual(ready, 0)
        self.assertEqual(os.stat(self.state).st_mode & 0o777, 0o700)

    def test_sigterm_stops_cleanly(self):
        d = self.start_ready()
        start = len(d.notify.messages)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(), 0)
        d.notify.wait_field("STOPPING=1", start=start)
        self.assertIn("stopped", d.log())

    def test_sigint_stops_cleanly(self):
        d = self.start_ready()
        d.signal(signal.SIGINT)
        self.assertEqual(d.wait(), 0)
        d.notify.wait_field("STOPPING=1")

    def test_reload_good_config(self):
        d = self.start_ready("poll_interval = 60s\n")
        self.write_config("poll_interval = 2min\n")
        mark = len(d.notify.messages)
        d.signal(signal.SIGHUP)
        i = d.notify.wait_field("RELOADING=1", start=mark)
        self.assertTrue(any(l.startswith("MONOTONIC_USEC=") for l in d.notify.messages[i].split("\n")))
        j = d.notify.wait_field("READY=1", start=i + 1)
        self.assertGreater(j, i)
        status = d.notify.fields("STATUS")[-1]
        self.assertIn("2min", status)
        self.assertNotIn("DEGRADED", status)
        self.assertIn("configuration reloaded", d.log())
        self.assertIsNone(d.proc.poll())

    def test_reload_bad_config_keeps_old(self):
        d = self.start_ready("poll_interval = 60s\n")
        self.write_config("poll_interval = soon\n[claude]\nmax_turns = 0\n")
        mark = len(d.notify.messages)
        d.signal(signal.SIGHUP)
        i = d.notify.wait_field("RELOADING=1", start=mark)
        d.notify.wait_field("READY=1", start=i + 1)
        self.assertIsNone(d.proc.poll(), "a bad reload must not stop the daemon")
        log = d.log()
        self.assertIn(f"{self.config}:3: [daemon] poll_interval: 'soon' is not a duration", log)
        self.assertIn(f"{self.config}:5: [claude] max_turns: 0 is out of range", log)
        self.assertIn("still running on the previous configuration", log)
        status = d.notify.fields("STATUS")[-1]
        self.assertTrue(status.startswith("DEGRADED: config reload failed"), status)
        self.assertNotIn("configuration reloaded", log)  # the old one is still in force

        # Fixing the file and reloading clears the problem.
        self.write_config("poll_interval = 90s\n")
        mark = len(d.notify.messages)
        d.signal(signal.SIGHUP)
        d.notify.wait_field("READY=1", start=d.notify.wait_field("RELOADING=1", start=mark) + 1)
        status = d.notify.fields("STATUS")[-1]
        self.assertNotIn("DEGRADED", status)
        self.assertIn("1min30s", status)

    def test_reload_keeps_state_dir(self):
        d = self.start_ready()
        with open(self.config, "w") as f:
            f.write(f"[daemon]\nstate_dir = {self.tmp}/elsewhere\n")
        mark = len(d.notify.messages)
        d.signal(signal.SIGHUP)
        d.notify.wait_field("READY=1", start=d.notify.wait_field("RELOADING=1", start=mark) + 1)
        self.assertIn("takes effect after a restart", d.log())
        self.assertFalse(os.path.exists(f"{self.tmp}/elsewhere"))

    def test_bad_config_at_start(self):
        self.write_config("poll_interval = 0\n")
        d = self.start()
        self.assertEqual(d.wait(), 78)
        self.assertIn(f"{self.config}:3: [daemon] poll_interval: 0 is out of range", d.log())
        self.assertNotIn("READY=1", d.notify.text())

    def test_poll_timer_fires(self):
        self.write_config("poll_interval = 1s\n")
        d = self.start(args=("-v",))
        d.notify.wait_field("READY=1")
        deadline = time.monotonic() + TIMEOUT
        while "poll #3" not in d.log():
            self.assertLess(time.monotonic(), deadline, d.log())
            time.sleep(0.1)

    def test_watchdog_is_fed_from_the_loop(self):
        # 400 ms: sd-event pings at a quarter to half of it.
        d = self.start_ready(extra_env={"WATCHDOG_USEC": "400000"})
        first = d.notify.wait_field("WATCHDOG=1")
        d.notify.wait_field("WATCHDOG=1", start=first + 1)
        d.notify.wait_field("WATCHDOG=1", start=d.notify.wait_field("WATCHDOG=1", start=first + 1) + 1)

    def test_watchdog_for_another_pid_is_ignored(self):
        d = self.start_ready(extra_env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
        time.sleep(0.6)
        self.assertNotIn("WATCHDOG=1", d.notify.text())

    def test_restart_on_existing_db(self):
        d = self.start_ready()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(), 0)
        t0 = time.monotonic()
        d2 = self.start()
        d2.notify.wait_field("READY=1")
        print(f"\n    start to READY=1: {(time.monotonic() - t0) * 1000:.1f} ms (existing db)", end=" ")
        self.assertNotIn("schema migrated", d2.log())


class DatabaseRefusal(TempStateTest):
    def db_path(self):
        os.makedirs(self.state, exist_ok=True)
        return os.path.join(self.state, "jada-agent.db")

    def expect_refusal(self, text):
        self.write_config()
        d = self.start()
        self.assertEqual(d.wait(), 1)
        self.assertIn(text, d.log())
        self.assertNotIn("READY=1", d.notify.text())
        self.assertTrue(any("Failed to start" in s for s in d.notify.fields("STATUS")))

    def test_garbage_file(self):
        with open(self.db_path(), "wb") as f:
            f.write(b"this is not a database at all\n" * 100)
        self.expect_refusal("not a usable SQLite database")

    def test_someone_elses_sqlite(self):
        db = sqlite3.connect(self.db_path())
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
        self.expect_refusal("not a jada-agent database")
        db = sqlite3.connect(self.db_path())  # and it was not touched
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 0)
        db.close()

    def test_newer_schema(self):
        db = sqlite3.connect(self.db_path())
        db.execute("PRAGMA application_id = %d" % 0x4A414441)
        db.execute("PRAGMA user_version = 999")
        db.commit()
        db.close()
        self.expect_refusal("schema version 999 was written by a newer jada-agent")

    def test_state_dir_cannot_be_created(self):
        with open(os.path.join(self.tmp, "file"), "w"):
            pass
        with open(self.config, "w") as f:
            f.write(f"[daemon]\nstate_dir = {self.tmp}/file/state\n")
        d = self.start()
        self.assertEqual(d.wait(), 1)
        self.assertRegex(d.log(), re.escape(f"cannot create the state directory {self.tmp}/file/state") + ".*Not a directory")


class JournalLogging(TempStateTest):
    """Under systemd (INVOCATION_ID set) log entries go to the journal's
    native socket with structured fields; here that socket is a stand-in."""

    @needs_root
    def test_native_entries_with_fields(self):
        self.write_config()
        d = self.start(journal=True)
        d.notify.wait_field("READY=1")
        e = d.journal.wait_for(lambda e: "started" in e.get("MESSAGE", ""))
        self.assertEqual(e["PRIORITY"], "6")
        self.assertEqual(e["SYSLOG_IDENTIFIER"], "jada-agent")
        self.assertEqual(e["CODE_FILE"], "src/daemon.c")
        self.assertEqual(e["CODE_FUNC"], "daemon_run")
        self.assertRegex(e["CODE_LINE"], r"^\d+$")
        self.assertEqual(d.log(), "", "nothing on stderr when the journal takes the log")

        # A bad reload: each problem an error entry with JADA_CONFIG_* fields.
        self.write_config("poll_interval = soon\n")
        d.signal(signal.SIGHUP)
        e = d.journal.wait_for(lambda e: e.get("JADA_CONFIG_LINE") == "3")
        self.assertEqual(e["PRIORITY"], "3")
        self.assertEqual(e["JADA_CONFIG_FILE"], self.config)
        self.assertIn(f"{self.config}:3:", e["MESSAGE"])

    @needs_root
    def test_errno_field(self):
        with open(os.path.join(self.tmp, "file"), "w"):
            pass
        with open(self.config, "w") as f:
            f.write(f"[daemon]\nstate_dir = {self.tmp}/file/state\n")
        d = self.start(journal=True)
        self.assertEqual(d.wait(), 1)
        d.journal.drain(0.2)
        e = [e for e in d.journal.entries if "state directory" in e.get("MESSAGE", "")]
        self.assertTrue(e, d.journal.entries)
        self.assertEqual(e[0]["ERRNO"], "20")  # ENOTDIR
        self.assertEqual(e[0]["PRIORITY"], "3")
