"""Packaging and the layout's rules: every folder installs under `kaleido_bench`, and who imports whom."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {
    "core": "kaleido_bench.core",
    "kaleido": "kaleido_bench.kaleido",
    "bench": "kaleido_bench.bench",
    "metrics": "kaleido_bench.metrics",
    "baselines": "kaleido_bench.baselines",
}


def test_every_python_folder_is_a_listed_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, package_dir = set(config["packages"]), config["package-dir"]
    for folder, package in FOLDERS.items():
        assert package_dir[package] == folder
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            assert ".".join((package, *relative)) in packages, (
                f"{init.parent} is not in [tool.setuptools] packages"
            )


def imported_modules(folder: str) -> dict[Path, set[str]]:
    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[path] = names
    return found


def offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path, names in imported_modules(folder).items()
        for name in names
        if name.startswith(forbidden)
    ]


def test_kaleido_knows_nothing_of_the_bench():
    assert (
        offenders(
            "kaleido", ("kaleido_bench.bench", "kaleido_bench.metrics", "kaleido_bench.baselines")
        )
        == []
    )


def test_metrics_never_import_models():
    assert offenders("metrics", ("kaleido_bench.baselines", "kaleido_bench.kaleido")) == []


def test_metrics_and_models_use_only_the_core_of_the_harness():
    """Records, video I/O, registry, errors and atomic writes are `core`; the runner side of `bench`
    (runner, store, engine, CLI, leaderboard) is built on metrics and models, never the reverse."""
    for folder in ("metrics", "baselines"):
        assert offenders(folder, ("kaleido_bench.bench",)) == [], folder


def test_core_imports_nothing_else_of_ours():
    assert (
        offenders(
            "core",
            (
                "kaleido_bench.bench",
                "kaleido_bench.metrics",
                "kaleido_bench.baselines",
                "kaleido_bench.kaleido",
            ),
        )
        == []
    )


def test_test_only_code_is_not_installed():
    """Random weights for tests and benchmarks, and the one-metric-at-a-time emulation of the
    official scripts, live beside the tests, not in the package."""
    for path in ("metrics/random_weights.py", "bench/scoring_passes.py"):
        assert not (ROOT / path).exists(), path


def test_no_top_level_import_of_taken_names():
    """`kaleido`, `bench`, `metrics`, `baselines` are other PyPI packages: always import ours by namespace."""
    taken = ("kaleido", "bench", "metrics", "baselines", "core")
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in FOLDERS
        for path, names in imported_modules(folder).items()
        for name in names
        if name.split(".")[0] in taken
    ]
    assert bad == []


def test_console_script_points_at_the_cli():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["kaleido-bench"] == "kaleido_bench.bench.cli:main"
    assert (
        "torch==2.14.1" in project["dependencies"]
        and "torchvision==0.29.1" in project["dependencies"]
    )


def test_code_is_ruff_clean_and_formatted():
    """`ruff check` and `ruff format --check` pass on the whole tree (ruff comes with the dev extra)."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        import pytest

        pytest.skip("ruff not installed (pip install -e '.[dev]')")
    for args in (["check", "--quiet", "."], ["format", "--check", "--quiet", "."]):
        result = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
