# SPDX-License-Identifier: MIT
"""The journal catalog: every alert's MESSAGE_ID has an entry, and
journalctl compiles the file."""

import os
import re
import shutil
import subprocess

from harness import REPO, TempStateTest


class Catalog(TempStateTest):
    def test_every_alert_id_has_a_catalog_entry(self):
        with open(os.path.join(REPO, "src", "health.c")) as f:
            ids = set(re.findall(r'"([0-9a-f]{32})"', f.read()))
        with open(os.path.join(REPO, "systemd", "jada-agent.catalog")) as f:
            entries = set(re.findall(r"(?m)^-- ([0-9a-f]{32})$", f.read()))
        self.assertGreaterEqual(len(ids), 10)
        self.assertEqual(ids, entries)

    def test_journalctl_compiles_it(self):
        journalctl = shutil.which("journalctl")
        self.assertIsNotNone(journalctl, "journalctl (systemd) is needed")
        d = os.path.join(self.tmp, "usr", "lib", "systemd", "catalog")
        os.makedirs(d)
        shutil.copy(os.path.join(REPO, "systemd", "jada-agent.catalog"), d)
        r = subprocess.run([journalctl, "--root", self.tmp, "--update-catalog"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([journalctl, "--root", self.tmp, "--list-catalog"], capture_output=True, text=True)
        self.assertIn("031fdb3625a540adbabb2c328c4f102d jada-agent: the Google token needs re-authorization",
                      r.stdout)
