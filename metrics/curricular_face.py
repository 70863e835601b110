"""TFace's IR-101 backbone (CurricularFace, glint360k) in plain torch, for `face_sim_cur`.

OpenS2V-Eval's FaceSim-Cur embeds aligned faces with
`glint360k_curricular_face_r101_backbone.bin` through `get_model("IR_101")([112, 112])`
(`eval/utils/curricularface/model_irse.py`, adopted from Tencent/TFace
`recognition/torchkit/backbone/model_irse.py`). This is a fresh implementation of that
architecture for 112x112 inputs whose parameter names and shapes match the released state
dict exactly, so it loads STRICTLY:

- `input_layer`: 3x3 conv 3->64 (no bias), BatchNorm2d, PReLU.
- `body.{i}`: 49 IR units in stages of (3, 13, 30, 3) with widths (64, 128, 256, 512); the
  first unit of each stage has stride 2. A unit is `res_layer` = BN, 3x3 conv (stride 1),
  BN, PReLU, 3x3 conv (stride s), BN; plus `shortcut_layer` = 1x1 max-pool with stride s
  when the width is unchanged, else 1x1 conv (stride s, no bias) + BN.
- `output_layer`: BatchNorm2d(512), Dropout(0.4), flatten, Linear(512*7*7, 512),
  BatchNorm1d(512, affine=False).

`stage_units` lets tests build a shallower variant of the same code.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kaleido_bench.metrics.weights import load_tensor_file

IR101_STAGE_UNITS: tuple[int, int, int, int] = (3, 13, 30, 3)
STAGE_WIDTHS: tuple[int, int, int, int] = (64, 128, 256, 512)
EMBEDDING_DIM = 512
INPUT_SIZE = 112


@functools.cache
def _backbone_class() -> type:
    """Define the torch modules on first use, so importing this file does not import torch."""
    import torch
    from torch import nn

    class IRUnit(nn.Module):
        """One improved-residual unit (TFace `BasicBlockIR`): BN-conv-BN-PReLU-conv-BN + shortcut."""

        def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
            super().__init__()
            if in_channels == out_channels:
                self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
            else:
                self.shortcut_layer = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            self.res_layer = nn.Sequential(
                nn.BatchNorm2d(in_channels),
                nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.PReLU(out_channels),
                nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.res_layer(x) + self.shortcut_layer(x)

    class IRBackbone(nn.Module):
        """TFace IR backbone for 112x112 faces; the default `stage_units` is IR-101."""

        def __init__(self, stage_units: Sequence[int] = IR101_STAGE_UNITS) -> None:
            super().__init__()
            if len(stage_units) != len(STAGE_WIDTHS) or min(stage_units) < 1:
                raise ValueError(f"stage_units needs 4 positive counts, got {tuple(stage_units)}")
            self.input_layer = nn.Sequential(
                nn.Conv2d(3, STAGE_WIDTHS[0], 3, 1, 1, bias=False),
                nn.BatchNorm2d(STAGE_WIDTHS[0]),
                nn.PReLU(STAGE_WIDTHS[0]),
            )
            # output_layer is registered before body, as in TFace, so state-dict keys come in
            # the same order as the released file's.
            side = INPUT_SIZE // 2 ** len(STAGE_WIDTHS)  # 7
            self.output_layer = nn.Sequential(
                nn.BatchNorm2d(STAGE_WIDTHS[-1]),
                nn.Dropout(0.4),
                nn.Flatten(),
                nn.Linear(STAGE_WIDTHS[-1] * side * side, EMBEDDING_DIM),
                nn.BatchNorm1d(EMBEDDING_DIM, affine=False),
            )
            units: list[nn.Module] = []
            in_channels = STAGE_WIDTHS[0]
            for count, width in zip(stage_units, STAGE_WIDTHS, strict=True):
                for index in range(count):
                    units.append(IRUnit(in_channels, width, 2 if index == 0 else 1))
                    in_channels = width
            self.body = nn.Sequential(*units)
            self._init_weights()

        def _init_weights(self) -> None:
            """TFace's `initialize_weights`: Kaiming (fan_out) convs / linears, BN at identity."""
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
                elif isinstance(module, nn.BatchNorm2d):
                    nn.init.ones_(module.weight)
                    nn.init.zeros_(module.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """(N, 3, 112, 112) RGB in [-1, 1] -> (N, 512) raw (not normalised) embeddings."""
            return self.output_layer(self.body(self.input_layer(x)))

    return IRBackbone


def build_ir_backbone(stage_units: Sequence[int] = IR101_STAGE_UNITS) -> Any:
    """A randomly initialised TFace IR backbone (`nn.Module`); the default is IR-101."""
    return _backbone_class()(stage_units)


def load_ir_backbone(
    path: str | Path, *, stage_units: Sequence[int] = IR101_STAGE_UNITS, device: str = "cpu"
) -> Any:
    """Build the backbone, load a TFace state dict strictly (`weights_only=True`), eval mode."""

    model = build_ir_backbone(stage_units)
    state = load_tensor_file(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
