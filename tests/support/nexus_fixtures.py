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


def import_official(eval_dir: Path, ops: str) -> tuple[ModuleType, ModuleType]:
    """`get_nexusscore` (OpenS2V-Nexus `eval/`) imported in its own environment the way
    `make_fixtures.py` does it (`ops` "torchvision": mmcv-lite with torchvision's nms; decord read
    through PyAV), and the fixture script's helpers."""
    import sys

    helpers = official_helpers()
    if ops == "torchvision":
        helpers.install_torchvision_nms_ext()
    sys.path[:0] = [str(eval_dir), str(eval_dir / "utils/yoloworld")]
    import mmyolo.models  # noqa: F401

    helpers.install_decord_shim()
    import get_nexusscore

    return get_nexusscore, helpers


def write_full_size_checkpoint(
    helpers: ModuleType, eval_dir: Path, clip_dir: Path, video: Path, path: Path
) -> None:
    """The released YOLO-World v2-L image-prompt shape with random weights, built and saved by
    the official code (`make_checkpoint`, BatchNorm statistics from 3 frames of `video`)."""
    import torch
    from mmengine.config import Config

    cfg = Config.fromfile(str(eval_dir / helpers.CONFIG))
    cfg.model.vision_model = str(clip_dir)
    cfg.model.backbone.text_model.model_name = str(clip_dir)
    frames = helpers.decode_rgb(video)[:3]
    prompt = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    helpers.make_checkpoint(cfg, list(frames), prompt, path)
