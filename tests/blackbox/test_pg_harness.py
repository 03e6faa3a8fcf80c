# SPDX-License-Identifier: MIT
"""The PostgreSQL harness itself (tests/lib/pg.py), before the fleet's tests
lean on it: a server that starts and answers through its url, and one that
stops and starts again with its data and the same url."""

import subprocess
import unittest

from harness import TIMEOUT
from pg import PSQL, PostgresServer


class PgHarnessTest(unittest.TestCase):
    def setUp(self):
        self.pg = PostgresServer()
        self.addCleanup(self.pg.close)
        self.pg.start()

    def test_start_select_and_round_trip(self):
        # The url as a libpq client (psql) parses it, not through the harness.
        r = subprocess.run([PSQL, "-X", "-A", "-t", self.pg.url(), "-c", "select 1"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stdout), (0, "1\n"), r.stderr)
        self.pg.psql("create table t (id int primary key, name text, note text);"
                     "insert into t values (1, 'a|b', null), (2, E'two\\nlines', '')")
        self.assertEqual(self.pg.psql_rows("select id, name, note from t order by id"),
                         [("1", "a|b", ""), ("2", "two\nlines", "")])
        self.assertEqual(self.pg.psql_rows("select 1 where false"), [])
        with self.assertRaisesRegex(RuntimeError, "nosuch"):
            self.pg.psql("select nosuch")
        other = self.pg.createdb("other")
        self.assertIn("/other?", other)
        self.assertEqual(self.pg.psql("select current_database()", db="other"), "other\n")

    def test_stop_start_keeps_data_and_url(self):
        url = self.pg.url()
        self.pg.psql("create table kept (v text); insert into kept values ('before stop')")
        first = self.pg.pid()
        self.assertIsNotNone(first)
        self.pg.stop()
        self.assertIsNone(self.pg.pid())
        r = subprocess.run([PSQL, "-X", url, "-c", "select 1"], capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0, "a stopped server still answered")
        self.pg.start()
        self.assertNotEqual(self.pg.pid(), first)
        self.assertEqual(self.pg.url(), url)
        r = subprocess.run([PSQL, "-X", "-A", "-t", url, "-c", "select v from kept"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stdout), (0, "before stop\n"), r.stderr)


if __name__ == "__main__":
    unittest.main()
