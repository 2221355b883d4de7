"""durio's entry point for the benchmark: bench_services.py, with durio standing in for `restate`.

    durio serve benchmarks/durio_app.py

bench_services.py is written for the official SDK (`import restate`) so the
very same file can run on Restate; registering durio under that module name
before the import is the whole adapter.
"""

from __future__ import annotations

import os
import sys

import durio

sys.modules["restate"] = durio
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_services import services  # noqa: E402

__all__ = ["services"]
