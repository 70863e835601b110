"""The NexusScore fixtures (`tests/fixtures/nexus`, made by the official code) as tests and
benchmarks load them: the tiny detector's architecture, `nexus_score`'s options for the fixture
models, and the fixture script itself (for benchmarks that run the official side).

Imports nothing of kaleido_bench at module level: the benchmarks' official side runs it in the
official environment.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NEXUS = FIXTURES / "nexus"
#: the tiny GME whose <|endoftext|> row is a random vector: crops pass the 0.30 text rule
GME_KEEPING_CROPS = NEXUS / "tiny_gme_eot"


def fixture_arch() -> Any:
    """`YoloWorldArch` of `yolo_world_tiny.pth`, from the config values in `arch.json`."""
    from kaleido_bench.metrics.yolo_world import YoloWorldArch

    values = json.loads((NEXUS / "arch.json").read_text())
    return YoloWorldArch(
        **{
            key: tuple(value) if isinstance(value, list) else value
            for key, value in values.items()
            if key in YoloWorldArch.__dataclass_fields__
        }
    )


def nexus_options(gme: Path = GME_KEEPING_CROPS) -> dict[str, Any]:
    """`nexus_score` options for the fixture detector, its tiny CLIP B/32 and a tiny GME."""
    import dataclasses

    return {
        "detector_path": str(NEXUS / "yolo_world_tiny.pth"),
        "clip_path": str(NEXUS / "clip_b32_tiny"),
        "gme_path": str(gme),
        "arch": dataclasses.asdict(fixture_arch()),
    }


def official_helpers() -> ModuleType:
    """`tests/fixtures/nexus/make_fixtures.py` as a module (its environment helpers)."""
    spec = importlib.util.spec_from_file_location("make_fixtures", NEXUS / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
