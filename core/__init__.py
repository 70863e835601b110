"""The small core every part shares: records (cases, suites), video I/O, registries, errors, atomic writes.

`metrics/` and `baselines/` import only this from the harness side; the runner, store, engine and
CLI (`bench/`) build on it.
"""
