#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs the black-box tests (tests/blackbox/test_*.py) and the crash
torture (tests/torture/test_*.py) against a binary."""

import argparse
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--bin", required=True, help="the jada-agent binary under test")
parser.add_argument("--build", default="build", help="the build directory of that binary")
parser.add_argument("-k", action="append", default=[], help="only tests matching this pattern")
parser.add_argument("--no-root", action="store_true",
                    help="the everyday layer (make test): leave out the crash torture and every test "
                         "marked needs_root (namespaces, mounts), and say how many")
parser.add_argument("--postgresql", metavar="LIST",
                    help="the tests named in LIST (one pattern a line) once more on a fleet's PostgreSQL: "
                         "each test's config gets [database] url of a database of its own")
args = parser.parse_args()

os.environ["JADA_BIN"] = os.path.abspath(args.bin)
os.environ["JADA_BUILD"] = os.path.abspath(args.build)
sys.path.insert(0, os.path.join(here, "lib"))

loader = unittest.TestLoader()
if args.postgresql:
    with open(args.postgresql) as f:
        args.k += [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]
if args.k:
    loader.testNamePatterns = [f"*{k}*" for k in args.k]
suite = unittest.TestSuite()
for directory in ("blackbox",) if args.no_root else ("blackbox", "torture"):
    path = os.path.join(here, directory)
    suite.addTests(loader.discover(path, top_level_dir=path))


def flatten(s):
    for t in s:
        if isinstance(t, unittest.TestSuite):
            yield from flatten(t)
        else:
            yield t


if args.no_root:
    kept, left = [], []
    for t in flatten(suite):
        method = getattr(t, t._testMethodName, None) if hasattr(t, "_testMethodName") else None
        (left if getattr(type(t), "needs_root", False) or getattr(method, "needs_root", False) else kept).append(t)
    suite = unittest.TestSuite(kept)
    print(f"make test: {len(left)} black-box tests that need root and the crash torture are left out; "
          "make check runs them", file=sys.stderr)
if args.postgresql:
    import harness
    from pg import PostgresServer
    harness.POSTGRESQL = PostgresServer()
    harness.POSTGRESQL.start()
try:
    result = unittest.TextTestRunner(verbosity=2).run(suite)
finally:
    if args.postgresql:
        harness.POSTGRESQL.close()
if result.testsRun == 0:
    print("no tests ran", file=sys.stderr)
    sys.exit(1)
# A skipped test is not a passed one: report and fail.
if result.skipped:
    print(f"{len(result.skipped)} test(s) skipped: failing", file=sys.stderr)
    sys.exit(1)
sys.exit(0 if result.wasSuccessful() else 1)
