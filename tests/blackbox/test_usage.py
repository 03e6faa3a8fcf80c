# SPDX-License-Identifier: MIT
"""Usage limits and cost caps through the real daemon and the fake claude:
a refusal parks the whole daemon until the reset (no burst, no budget slot),
the park survives a restart and ends by itself, a nearly used limit is a
warning, and a task's cost cap holds across its sessions.

The refusals are built from the shapes Claude Code 2.1.332 reports
(../shared/DESIGN.md): rate_limit_event lines, a refused turn with
api_error_status 429, api_error and api_error_params.rate_limit_info, and
the older texts."""

import datetime
import json
import os
import time
import zoneinfo

from harness import REPO, TIMEOUT
from test_sessions import SAMPLES, SessionTest

SUCCESS = SAMPLES + "success.stream.jsonl"
MAX_TURNS = SAMPLES + "max_turns.stream.jsonl"
MAX_BUDGET = SAMPLES + "max_budget.stream.jsonl"
FAKE_CLOCK = os.path.join(os.environ.get("JADA_BUILD", os.path.join(REPO, "build")), "tests", "libfakeclock.so")
ZERO_USAGE = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def info(status="rejected", reset=None, kind="five_hour", utilization=1.0):
    i = {"status": status, "rateLimitType": kind, "utilization": utilization}
    if reset is not None:
        i["resetsAt"] = reset
    return i


def init():
    return {"type": "system", "subtype": "init", "session_id": "$SESSION_ID", "tools": [], "model": "claude-test"}


def event(i):
    return {"type": "rate_limit_event", "rate_limit_info": i, "uuid": "7f1c0e2a", "session_id": "$SESSION_ID"}


def refused(i=None, text="Claude AI usage limit reached", api_error="usage_limit_reached"):
    """A session the plan's limit refused before its first turn, as 2.1.332 ends one."""
    extra = {"api_error_status": 429}
    if api_error:
        extra["api_error"] = api_error
    if i is not None:
        extra["api_error_params"] = {"rate_limit_info": i}
    lines = [init()] + ([event(i)] if i else [])
    lines.append(dict({"type": "assistant", "session_id": "$SESSION_ID", "message": {
        "id": "msg_refused", "model": "<synthetic>", "role": "assistant", "usage": ZERO_USAGE,
        "content": [{"type": "text", "text": text}]}}, **extra))
    lines.append(dict({"type": "result", "subtype": "success", "is_error": True, "num_turns": 1, "result": text,
                       "session_id": "$SESSION_ID", "total_cost_usd": 0, "usage": ZERO_USAGE,
                       "terminal_reason": "api_error", "permission_denials": []}, **extra))
    return {"lines": lines}


class UsageTest(SessionTest):
    CONFIG = "sessions_per_day = 20\n"

    def status(self):
        r = self.run_cli("-c", self.config, "status", "--json")
        return r.returncode, json.loads(r.stdout)

    def problems(self):
        return {p["kind"]: p for p in self.status()[1]["problems"]}

    def wait_for(self, what, predicate, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            self.assertLess(time.monotonic(), deadline, f"timed out waiting for {what}")
            time.sleep(0.05)

    def wait_parked(self):
        return self.wait_for("the park", lambda: self.status()[1]["usage_limit"]["parked"] and self.status()[1])

    def utc(self, text):
        return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp())


class Parking(UsageTest):
    CONFIG = "sessions_per_day = 20\nconcurrency = 2\n"

    def test_one_refusal_parks_all_with_no_burst_and_no_slot(self):
        reset = int(time.time()) + 3600
        for _ in range(2):  # concurrency 2: both first sessions start at once
            self.scenario(**refused(info(reset=reset)))
        self.default_scenario(stream=SUCCESS)
        d = self.daemon()
        ids = [self.add(f"task {n}") for n in range(8)]
        self.wait_sessions(1)
        st = self.wait_parked()
        time.sleep(2.0)  # a burst would show by now
        rows = self.sessions()
        self.assertLessEqual(len(rows), 2, rows)
        self.assertEqual({r["outcome"] for r in rows if r["ended_at"]}, {"usage_limit"})
        self.assertTrue(all(r["uncounted"] for r in rows if r["ended_at"]), rows)
        for i in ids:
            t = self.show(i)
            self.assertIn(t["state"], ("queued", "running"))
            self.assertEqual(t["attempts"], 0)
        u = st["usage_limit"]
        self.assertEqual(self.utc(u["parked_until"]), reset + 60)
        self.assertEqual((u["parked_by"], u["type"], u["status"]), ("five_hour", "five_hour", "rejected"))
        self.assertEqual(st["budget"]["sessions_today"], 0)
        details = self.db_value("SELECT details FROM health")
        row = json.loads(details)["usage_limit"]
        self.assertEqual((row["type"], row["status"], row["parked_until"]), ("five_hour", "rejected", reset + 60))
        code, _ = self.status()
        self.assertEqual(code, 1)
        self.assertIn("Parked: 5-hour usage limit", self.problems()["usage_limit"]["text"])
        d.notify.wait_for(lambda m: m.startswith("STATUS=Parked: 5-hour usage limit, resets "))

    def test_the_reset_passing_resumes_by_itself(self):
        # Reported as just past, inside the 60 s margin: parked for up to
        # 10 s. (57 s left 3 s for the daemon's start and the refused
        # session: a loaded machine took longer, the reset then counted as
        # unknown and parked for 30 min.)
        reset = int(time.time()) - 50
        self.scenario(**refused(info(reset=reset)))
        self.default_scenario(stream=SUCCESS)
        d = self.daemon()
        ids = [self.add(f"task {n}") for n in range(3)]
        self.wait_parked()
        for i in ids:
            self.wait_state(i, "done")
        self.assertNotIn("usage_limit", self.problems())
        self.assertIn("RECOVERED", d.log())


class Restart(UsageTest):
    def test_a_park_survives_a_restart_and_the_clock_ends_it(self):
        now = int(time.time())
        self.scenario(**refused(info(reset=now + 3600, kind="seven_day")))
        self.default_scenario(stream=SUCCESS)
        d = self.daemon()
        i = self.add("parked")
        self.wait_parked()
        d.stop()
        # The park is the db's fact: status tells it with no daemon to ask
        # (and so never between the park's row and the next health row).
        code, _ = self.status()
        self.assertEqual(code, 3)
        self.assertIn("Parked: weekly usage limit, resets ", self.problems()["usage_limit"]["text"])
        d = self.daemon()
        time.sleep(1.5)
        self.assertEqual(len(self.invocations()), 1)
        self.assertEqual(self.show(i)["state"], "queued")
        d.notify.wait_for(lambda m: m.startswith("STATUS=Parked: weekly usage limit"))
        self.assertIn("parked by the weekly usage limit until", d.log())
        d.stop()
        # An hour and some later (the settable clock): the park is over.
        self.daemon(extra_env={"LD_PRELOAD": FAKE_CLOCK, "FAKE_REALTIME_START": str(now + 3700)})
        self.wait_state(i, "done")
        self.assertEqual(len(self.invocations()), 2)

    def test_the_budgets_midnight_does_not_lift_a_park(self):
        now = int(time.time())
        midnight = now - now % 86400 + 86400
        self.scenario(**refused(info(reset=midnight + 3600)))
        self.default_scenario(stream=SUCCESS)
        d = self.daemon()
        i = self.add("across midnight")
        self.wait_parked()
        d.stop()
        # Just past 00:00 UTC (the settable clock): a new budget day, the park stays.
        d = self.daemon(extra_env={"LD_PRELOAD": FAKE_CLOCK, "FAKE_REALTIME_START": str(midnight + 5)})
        d.notify.wait_for(lambda m: m.startswith("STATUS=Parked: 5-hour usage limit"))
        time.sleep(1.5)
        self.assertEqual(len(self.invocations()), 1)
        self.assertEqual(self.show(i)["state"], "queued")
        self.assertEqual(self.utc(self.status()[1]["usage_limit"]["parked_until"]), midnight + 3660)

    def test_an_unknown_reset_waits_30_min_then_doubles(self):
        now = int(time.time())
        self.scenario(**refused(None, text="Usage limit reached", api_error="usage_limit_reached"))
        self.scenario(**refused(None, text="Usage limit reached", api_error="usage_limit_reached"))
        self.default_scenario(stream=SUCCESS)
        d = self.daemon()
        i = self.add("no reset known")
        st = self.wait_parked()
        self.assertAlmostEqual(self.utc(st["usage_limit"]["parked_until"]), now + 1800, delta=10)
        d.stop()
        later = now + 1810
        d = self.daemon(extra_env={"LD_PRELOAD": FAKE_CLOCK, "FAKE_REALTIME_START": str(later)})
        self.wait_sessions(2)
        st = self.wait_for("the second park", lambda: self.status()[1]["usage_limit"]["parked_until"] and
                           self.utc(self.status()[1]["usage_limit"]["parked_until"]) > later + 1800 and
                           self.status()[1])
        self.assertAlmostEqual(self.utc(st["usage_limit"]["parked_until"]), later + 3600, delta=10)
        self.assertEqual(self.show(i)["state"], "queued")


class Texts(UsageTest):
    def test_the_old_text_with_an_epoch(self):
        reset = int(time.time()) + 7200
        self.scenario(**refused(None, text=f"Claude AI usage limit reached|{reset}", api_error=None))
        self.daemon()
        self.add("old CLI")
        st = self.wait_parked()
        self.assertEqual(self.utc(st["usage_limit"]["parked_until"]), reset + 60)

    def test_the_session_limit_text_with_a_time_zone(self):
        self.scenario(**refused(None, text="You've hit your session limit \u00b7 resets 8pm (America/New_York)",
                                api_error=None))
        self.daemon()
        self.add("newer text")
        st = self.wait_parked()
        ny = datetime.datetime.now(zoneinfo.ZoneInfo("America/New_York"))
        at8 = ny.replace(hour=20, minute=0, second=0, microsecond=0)
        if at8 <= ny:
            at8 = (at8 + datetime.timedelta(days=1)).replace(hour=20)
        self.assertAlmostEqual(self.utc(st["usage_limit"]["parked_until"]), int(at8.timestamp()) + 60, delta=2)

    def test_a_plain_429_stays_a_transient_error(self):
        r = refused(None, text="API Error: 429 rate limited", api_error=None)
        self.scenario(**r)
        self.daemon()
        i = self.add("plain 429")
        self.wait_sessions(1)
        t = self.wait_for("the backoff", lambda: self.show(i)["state"] == "queued" and self.show(i))
        self.assertFalse(self.status()[1]["usage_limit"]["parked"])
        self.assertEqual(self.sessions()[0]["outcome"], "api_error")
        self.assertIsNotNone(self.sessions()[0]["uncounted"])  # no turn ran: no slot
        self.assertGreater(self.utc(t["run_after"]), int(time.time()) + 30)


class Captures(UsageTest):
    """Real output of the pinned CLI (2.1.112) given a 429 with the
    anthropic-ratelimit-unified-* headers by the fake Messages API."""

    def test_the_real_clis_refusal_on_an_oauth_login_parks(self):
        self.scenario(stream="samples/v2.1.112_usage_limit_oauth.stream.jsonl")
        self.default_scenario(stream=SUCCESS)
        self.daemon()
        i = self.add("logged in with a subscription")
        st = self.wait_parked()
        (row,) = self.sessions()
        self.assertEqual(row["outcome"], "usage_limit")
        self.assertIsNotNone(row["uncounted"])
        self.assertEqual(st["usage_limit"]["parked_by"], "five_hour")
        self.assertEqual(st["usage_limit"]["status"], "rejected")
        self.assertEqual(self.show(i)["state"], "queued")

    def test_the_same_429_with_an_api_key_is_a_transient_error(self):
        self.scenario(stream="samples/v2.1.112_429_api_key.stream.jsonl")
        self.daemon()
        i = self.add("an API key")
        self.wait_sessions(1)
        self.wait_for("the backoff", lambda: self.show(i)["state"] == "queued")
        self.assertEqual(self.sessions()[0]["outcome"], "api_error")
        self.assertFalse(self.status()[1]["usage_limit"]["parked"])


class Warning(UsageTest):
    CONFIG = "sessions_per_day = 20\n"

    def setUp(self):
        super().setUp()
        self.metrics = os.path.join(self.tmp, "metrics.prom")
        self.configure(f"sessions_per_day = 20\n[metrics]\ntextfile = {self.metrics}\n")

    def test_allowed_warning_is_a_warning_in_status_and_metrics(self):
        reset = int(time.time()) + 4000
        self.scenario(stream=SUCCESS, lines=[event(info("allowed_warning", reset, "seven_day", 0.85))])
        self.daemon()
        i = self.add("almost there")
        self.wait_state(i, "done")
        p = self.wait_for("the warning", lambda: self.problems().get("usage_warning"))
        self.assertIn("weekly usage limit is nearly used (85% used)", p["text"])
        code, st = self.status()
        self.assertEqual(code, 1)
        self.assertEqual((st["usage_limit"]["status"], st["usage_limit"]["utilization"]), ("allowed_warning", 0.85))
        self.assertFalse(st["usage_limit"]["parked"])

        def metric():
            try:
                with open(self.metrics) as f:
                    text = f.read()
            except FileNotFoundError:
                return None
            return text if "jada_usage_limit_utilization" in text else None
        self.wake()
        text = self.wait_for("the metrics", metric)
        self.assertIn('jada_usage_limit_utilization{type="seven_day"} 0.8500', text)
        self.assertIn(f'jada_usage_limit_reset_timestamp_seconds{{type="seven_day"}} {reset}', text)


class CostCaps(UsageTest):
    def budget_args(self):
        out = []
        for inv in self.invocations():
            argv = inv["argv"]
            out.append(float(argv[argv.index("--max-budget-usd") + 1]) if "--max-budget-usd" in argv else None)
        return out

    def test_a_cap_across_three_sessions(self):
        for _ in range(3):
            self.scenario(stream=MAX_TURNS)
        self.scenario(stream=SUCCESS)
        self.daemon()
        i = self.add("expensive", "--max-cost", "0.40")
        t = self.wait_state(i, "needs_you")
        self.assertEqual(t["sessions_used"], 3)
        self.assertIn("cost cap of $0.40 reached", t["needs_you_reason"])
        self.assertEqual((t["max_cost_usd"], t["cost_cap_usd"]), (0.40, 0.40))
        budgets = self.budget_args()
        self.assertEqual(len(budgets), 3)
        self.assertAlmostEqual(budgets[0], 0.40, places=3)
        self.assertAlmostEqual(budgets[1], 0.40 - t["cost_usd"] / 3, places=3)
        self.assertAlmostEqual(budgets[2], 0.40 - 2 * t["cost_usd"] / 3, places=3)
        r = self.run_cli("-c", self.config, "sessions", "--json")
        (tc,) = json.loads(r.stdout)["tasks"]
        self.assertEqual((tc["id"], tc["cost_cap_usd"]), (i, 0.40))
        r = self.run_cli("-c", self.config, "sessions")
        self.assertIn(f"task {i}: $", r.stdout)
        self.assertIn("of its $0.40 cost cap (reached", r.stdout)
        # A higher cap, then a reply: it resumes with what remains.
        spent = t["cost_usd"]
        r = self.run_cli("-c", self.config, "task", "budget", str(i), "1.00")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.run_cli("-c", self.config, "task", "reply", str(i), "go on").returncode, 0)
        self.wait_state(i, "done")
        self.assertAlmostEqual(self.budget_args()[3], 1.00 - spent, places=3)

    def test_the_default_cap_and_the_clis_own_stop(self):
        self.configure("sessions_per_day = 20\nmax_cost_per_task_usd = 0.25\n")
        self.scenario(stream=MAX_BUDGET)
        self.daemon()
        i = self.add("capped by default")
        t = self.wait_state(i, "needs_you")
        self.assertIn("cost cap of $0.25 reached", t["needs_you_reason"])
        self.assertIsNone(t["max_cost_usd"])
        self.assertEqual(t["cost_cap_usd"], 0.25)
        self.assertAlmostEqual(self.budget_args()[0], 0.25, places=3)

    def test_the_days_cost_limit_bounds_a_session_and_resumes_tomorrow(self):
        self.configure("sessions_per_day = 20\ndaily_cost_limit_usd = 0.30\n")
        self.scenario(stream=MAX_BUDGET)
        self.daemon()
        i = self.add("the day's money")
        self.wait_sessions(1)
        t = self.wait_for("the task back in the queue", lambda: self.show(i)["state"] == "queued" and self.show(i))
        self.assertIn("day's cost limit", t["events"][-1]["reason"])
        self.assertAlmostEqual(self.budget_args()[0], 0.30, places=3)
        self.assertEqual(self.utc(t["run_after"]) % 86400, 0)  # tomorrow, 00:00 UTC
        self.assertEqual(len(self.invocations()), 1)

    def test_bad_amounts_are_refused(self):
        for bad in ("0", "-1", "abc", "1e9", "nan", ""):
            r = self.run_cli("-c", self.config, "task", "add", "--max-cost", bad, "x")
            self.assertEqual(r.returncode, 2, bad)
        i = self.add("fine")
        for bad in ("0", "x"):
            r = self.run_cli("-c", self.config, "task", "budget", str(i), bad)
            self.assertEqual(r.returncode, 2, bad)
        r = self.run_cli("-c", self.config, "task", "budget", "99", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no task 99", r.stderr)


class Measure(UsageTest):
    """The closing note's figure: a 5-hour limit with 10 queued tasks."""

    def test_ten_tasks_through_a_limit(self):
        reset = int(time.time()) - 55  # parked for about 5 s
        self.scenario(**refused(info(reset=reset)))
        self.default_scenario(stream=SUCCESS)
        self.daemon()
        ids = [self.add(f"task {n}") for n in range(10)]
        self.wait_parked()
        refused_rows = [r for r in self.sessions() if r["outcome"] == "usage_limit"]
        for i in ids:
            self.wait_state(i, "done", timeout=60)
        rows = self.sessions()
        counted = [r for r in rows if r["uncounted"] is None]
        print(f"\n    a 5-hour limit with 10 queued tasks: {len(refused_rows)} refused session(s), "
              f"{sum(1 for r in rows if r['outcome'] == 'usage_limit' and r['uncounted'] is None)} budget slot(s) "
              f"used by refusals, then {len(counted)} sessions ran all 10 tasks", end=" ")
        self.assertEqual(len(refused_rows), 1)
        self.assertEqual([r["outcome"] for r in counted], ["done"] * 10)
