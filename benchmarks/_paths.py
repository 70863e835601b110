"""Benchmarks run from a checkout: test-only helpers (random weights in the real formats) live in
`tests/support/`, not in the installed package; this puts `tests/` on the import path."""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
