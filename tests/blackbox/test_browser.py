# SPDX-License-Identifier: MIT
"""The dashboard in a real browser: Debian's chromium, headless, driven
through chromedriver (tests/lib/webdriver.py). Every page on a daemon with
tasks in every state, at a desktop's and a phone's width, saved as
screenshots (build/test-artifacts/web/); a needs_you task answered from
its page resumes and ends done; no page runs a script or logs an error."""

import os

from harness import REPO
from test_sessions import SAMPLES
from test_web import XSS, WebTest
from webdriver import Browser

SUCCESS = SAMPLES + "success.stream.jsonl"
ARTIFACTS = os.path.join(os.environ.get("JADA_BUILD", os.path.join(REPO, "build")), "test-artifacts", "web")


class InABrowser(WebTest):
    CLAUDE = "max_attempts = 1\n"

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def shot(self, browser, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = browser.screenshot(os.path.join(ARTIFACTS, f"{name}.png"))
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(path), 2000)
        return path

    def test_every_page_desktop_and_phone(self):
        _, ids = self.tasks_in_every_state()
        pages = [("overview", "/"), ("tasks", "/tasks"), ("sessions", "/sessions"),
                 ("tasks-failed", "/tasks?state=failed")] + [(f"task-{s}", f"/tasks/{i}") for s, i in ids.items()]
        for width, height, kind in ((1280, 900, "desktop"), (390, 844, "phone")):
            with Browser(size=(width, height)) as b:
                for name, path in pages:
                    b.get(self.url(path))
                    b.wait_for("main")
                    self.assertIn("jada-agent", b.title)
                    # What a task said is text on the page, never markup.
                    self.assertEqual(b.execute("return document.scripts.length"), 0, path)
                    self.assertEqual(b.execute("return [...document.querySelectorAll('main b')]"
                                               ".filter(e => e.textContent === 'one').length"), 0, path)
                    # Nothing wider than the screen but what scrolls by itself (tables, pre).
                    overflow = b.execute("return document.documentElement.scrollWidth - window.innerWidth")
                    self.assertLessEqual(overflow, 1, f"{path} is {overflow}px wider than a {kind} screen")
                    self.shot(b, f"{kind}-{name}")
                errors = [m for m in b.console_log() if m.get("level") == "SEVERE"]
                self.assertEqual(errors, [])
                b.get(self.url(f"/tasks/{ids['needs_you']}"))
                self.assertIn(XSS, b.find(".question").text)
                b.get(self.url("/sessions"))
                self.assertEqual(len(b.find_all("svg g title")), 30)

    def test_reply_to_a_needs_you_task_from_its_page(self):
        self.scenario(stream=SUCCESS, result_text="NEEDS-YOU: which port should I use?")
        self.scenario(stream=SUCCESS, result_text="Used port 8080.")
        self.daemon()
        i = self.add("Set up the service.", "--title", "Set up")
        self.wait_state(i, "needs_you")
        with Browser(size=(390, 844)) as b:
            b.get(self.url("/"))
            b.find('a.card[href="/tasks?state=needs_you"]').click()
            b.wait_until(lambda: "state=needs_you" in b.current_url)
            b.find(f'a[href="/tasks/{i}"]').click()
            b.wait_for(".question")
            self.assertIn("which port should I use?", b.find(".question").text)
            b.find("textarea[name=text]").send_keys("Port 8080, please.")
            self.shot(b, "phone-reply-typed")
            b.find(f'form[action="/tasks/{i}/reply"] button[type=submit]').click()
            b.wait_until(lambda: b.current_url.endswith(f"/tasks/{i}") and not b.find_all(".question"))
            t = self.wait_state(i, "done")
            self.assertEqual(t["result"], "Used port 8080.")
            self.assertEqual(self.invocations()[-1]["stdin"], "Port 8080, please.")
            b.get(self.url(f"/tasks/{i}"))
            self.assertIn("done", b.find("h1 .state").text)
            self.assertIn("replied", b.find("ol.timeline").text)
            self.shot(b, "phone-reply-done")

    def test_add_a_task_from_the_overview(self):
        self.default_scenario(stream=SUCCESS)
        self.daemon()
        with Browser() as b:
            b.get(self.url("/"))
            b.find("input[name=title]").send_keys("From the browser")
            b.find("textarea[name=prompt]").send_keys("Say hi.\nThen stop.")
            b.find('form[action="/tasks"] button[type=submit]').click()
            b.wait_until(lambda: "/tasks/" in b.current_url)
            i = int(b.current_url.rsplit("/", 1)[1])
            t = self.wait_state(i, "done")
            self.assertEqual((t["title"], t["prompt"]), ("From the browser", "Say hi.\nThen stop."))
