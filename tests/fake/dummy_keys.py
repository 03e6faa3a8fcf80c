# SPDX-License-Identifier: MIT
"""The dummy credentials the benches give the daemon: not secrets. The
fakes take any key; the daemon only needs one to start sessions."""

API_KEY = "sk-ant-bench-0000-not-a-real-key"
