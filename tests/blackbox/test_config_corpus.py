# SPDX-License-Identifier: MIT
"""check-config against the corpus: every bad config gives exit 78 and
FILE:LINE: with the expected message; every good one exit 0."""

import glob
import os
import re

from harness import REPO, TempStateTest

BAD = sorted(glob.glob(os.path.join(REPO, "tests", "configs", "bad", "*.conf")))
GOOD = sorted(glob.glob(os.path.join(REPO, "tests", "configs", "good", "*.conf")))


class ConfigCorpus(TempStateTest):
    def test_corpus_is_large_enough(self):
        self.assertGreaterEqual(len(BAD), 30)
        self.assertGreaterEqual(len(GOOD), 3)

    def test_bad_configs(self):
        for path in BAD:
            with self.subTest(config=os.path.basename(path)):
                with open(path, "rb") as f:
                    first = f.readline().decode()
                m = re.match(r"# expect: (\d+): (.*)", first)
                self.assertIsNotNone(m, f"{path}: first line must be '# expect: LINE: text'")
                line, text = m.group(1), m.group(2).strip()
                r = self.run_cli("check-config", "-c", path)
                self.assertEqual(r.returncode, 78, r.stderr)
                self.assertIn(f"{path}:{line}: ", r.stderr)
                first_problem = r.stderr.splitlines()[0]
                self.assertIn(text, first_problem)
                self.assertNotIn("Sanitizer", r.stderr)

    def test_good_configs(self):
        for path in GOOD + [os.path.join(REPO, "config", "jada-agent.conf"),
                            os.path.join(REPO, "config", "jada-agent.dev.conf")]:
            with self.subTest(config=os.path.basename(path)):
                r = self.run_cli("check-config", "-c", path)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("OK", r.stdout)

    def test_every_problem_is_reported(self):
        path = self.write_config("poll_interval = x\nretention = y\n[claude]\nmax_turns = 0\nnope = 1\n")
        r = self.run_cli("check-config", "-c", path)
        self.assertEqual(r.returncode, 78)
        lines = [l for l in r.stderr.splitlines() if l.startswith(path + ":")]
        self.assertEqual([l.split(":")[1] for l in lines[:4]], ["3", "4", "6", "7"], r.stderr)

    def test_missing_file(self):
        path = os.path.join(self.tmp, "nope.conf")
        r = self.run_cli("check-config", "-c", path)
        self.assertEqual(r.returncode, 78)
        self.assertIn(f"{path}:0: cannot read: No such file or directory", r.stderr)

    def test_directory_is_not_a_config(self):
        r = self.run_cli("check-config", "-c", self.tmp)
        self.assertEqual(r.returncode, 78)
        self.assertIn(f"{self.tmp}:0: cannot read", r.stderr)

    def test_huge_file(self):
        path = os.path.join(self.tmp, "huge.conf")
        with open(path, "w") as f:
            f.write("# x\n" * 300000)
        r = self.run_cli("check-config", "-c", path)
        self.assertEqual(r.returncode, 78)
        self.assertIn(f"{path}:0: file is larger than", r.stderr)

    def test_environment_variable_names_the_config(self):
        path = self.write_config("poll_interval = never\n")
        r = self.run_cli("check-config", env={"JADA_AGENT_CONFIG": path})
        self.assertEqual(r.returncode, 78)
        self.assertIn(f"{path}:3:", r.stderr)

    def test_usage_errors(self):
        self.assertEqual(self.run_cli("check-config", "extra").returncode, 2)
        self.assertEqual(self.run_cli("no-such-command").returncode, 2)
        self.assertEqual(self.run_cli().returncode, 2)
        self.assertEqual(self.run_cli("-c").returncode, 2)
        r = self.run_cli("version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^jada-agent \d+\.\d+\.\d+\n$")
