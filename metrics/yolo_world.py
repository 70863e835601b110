"""YOLO-World v2 with image prompts (OpenS2V NexusScore's detector) in plain torch.

OpenS2V-Eval's `eval/get_nexusscore.py` (OpenS2V-Nexus 210eb08) runs the detector through
mmdet / mmyolo / mmcv, with the config
`eval/utils/yoloworld/configs/yolo_world_v2_l_vlpan_bn_2e-4_80e_8gpus_image_prompt_demo.py` and
the checkpoint `yolo_world_v2_l_image_prompt_adapter-719a7afb.pth`. This module is a fresh
implementation of exactly the inference path that script takes, so the project needs none of
the mm packages (mmcv 2.2.0 builds from source only; see `tests/fixtures/nexus/README.md`).

Architecture (`YoloWorldArch`; `YOLO_WORLD_V2_L` is the released one, a tiny variant of the same
code makes the test fixtures), parameter names and maths of the official modules:

- `backbone` = mmyolo `YOLOv8CSPDarknet` (P5; `csp_darknet.py`): stem 3x3/2 ConvModule, four
  stages of [3x3/2 ConvModule, `CSPLayerWithTwoConv`], the last one + `SPPFBottleneck` (pool 5
  applied three times). ConvModule = Conv2d (no bias) + BatchNorm2d(eps 1e-3) + SiLU.
  Widths `make_divisible(c * widen, 8)`, depths `make_round(n * deepen)` (`models/utils/misc.py`).
- `neck` = `YOLOWorldPAFPN` (`yolo_world/models/necks/yolo_world_pafpn.py`): identity reduce
  layers, nearest x2 upsampling, top-down and bottom-up `MaxSigmoidCSPLayerWithTwoConv`
  (`yolo_world/models/layers/yolo_bricks.py` l.280) whose extra branch is a `MaxSigmoidAttnBlock`
  (l.16): `sigmoid(max_n <embed, guide_fc(prompt_n)> / sqrt(head_ch) + bias)` per head scales a
  3x3 projection. Embed channels (128, 256, 256), heads (4, 8, 8), guide 512.
- `head` = `YOLOWorldHeadModule` (`yolo_world/models/dense_heads/yolo_world_head.py` l.131):
  per level two 3x3 ConvModules + 1x1 conv to 4*16 box bins and to a 512-d class embedding, the
  latter through `BNContrastiveHead` (l.68): BatchNorm, dot product with the L2-normalised
  prompt, `* exp(logit_scale) + bias`. Boxes: DFL, softmax over 16 bins @ arange(16).
- `projector` = `ImagePromptEncoder.projector` (`yolo_world/models/detectors/yolo_world_image.py`
  l.23): Linear 512-1024, GELU, Linear 1024-512. The script applies it WITHOUT the residual the
  training path adds (`run_image` -> `generate_image_embeddings`), normalising before and after.

Inference as the script runs it (`run_image`), per frame and per prompt (one class):
- preprocessing (`yolov8_s_syncbn_fast_8xb16-500e_coco.py` test_pipeline with
  `LoadImageFromNDArray`): `YOLOv5KeepRatioResize(640)` (cv2 INTER_AREA when shrinking,
  INTER_LINEAR when enlarging, sizes truncated with int()), `LetterResize(640,
  allow_scale_up=False, pad 114)` (top / left pad `int(round(pad // 2 - 0.1))`), then
  `YOLOv5DetDataPreprocessor(bgr_to_rgb=True)`: channels flipped and /255. The script hands it an
  RGB array, so the network sees BGR: reproduced here (`letterbox`, `network_input`).
- post-processing (`YOLOWorldHead.predict_by_feat`, l.624; test_cfg of the yolov8 config):
  sigmoid scores; multi-label only with more than one class; scores > 0.001, top 30000 sorted;
  boxes minus the pad, divided by the scale factor; class-wise NMS 0.7 (mmcv's `batched_nms`:
  for one class torchvision's `nms` keeps the same boxes in the same order); at most 300; clamped
  to the frame.

Speed (issue 13): the backbone does not see the prompt, so it runs ONCE on a batch of frames and
only neck + head run per prompt, all prompts of a video in one batch (`detect`). The official
script runs the whole network once per (frame, prompt).

Strict loading (`load_yolo_world`): every tensor of our modules must be in the file under its
official name (`official_key`) and every tensor of the file must be ours, except the two CLIP
towers the checkpoint also carries (`backbone.text_model.*`, `image_prompt_encoder.image_encoder.*`
and its mean / std buffers): the script embeds prompts with its own CLIP ViT-B/32
(`openai/clip-vit-base-patch32`) and never runs them. A missing or extra tensor is a
`CheckpointMismatchError` naming the tensor and the file.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.errors import CheckpointMismatchError
from kaleido_bench.metrics.weights import WeightFile

YOLO_WORLD_V2_L_IMAGE_PROMPT = WeightFile(
    "opens2v/yolo_world_v2_l_image_prompt_adapter-719a7afb.pth",
    "YOLO-World v2-L image-prompt detector (mmengine checkpoint, OpenS2V NexusScore)",
    repo_id="BestWishYsh/OpenS2V-Weight",
    repo_filename="yolo_world_v2_l_image_prompt_adapter-719a7afb.pth",
)

#: official state-dict prefix -> ours (the rest of every name is the same)
PREFIX_MAP: tuple[tuple[str, str], ...] = (
    ("backbone.image_model.", "backbone."),
    ("neck.", "neck."),
    ("bbox_head.head_module.", "head."),
    ("image_prompt_encoder.projector.", "projector."),
)
#: tensors the checkpoint carries that the official script never runs (see module doc)
UNUSED_PREFIXES: tuple[str, ...] = (
    "backbone.text_model.",
    "image_prompt_encoder.image_encoder.",
    "image_prompt_encoder.img_mean",
    "image_prompt_encoder.img_std",
)
P5_STAGES: tuple[tuple[int, int, int, bool], ...] = (  # in, out, blocks, SPPF (last out = arch's)
    (64, 128, 3, False),
    (128, 256, 6, False),
    (256, 512, 6, False),
    (512, -1, 3, True),
)
PAD_VALUE = 114
INPUT_SIZE = 640


@dataclass(frozen=True)
class YoloWorldArch:
    """The config values that shape the network (`yolov8_l` base + the image-prompt config)."""

    deepen_factor: float = 1.0
    widen_factor: float = 1.0
    last_stage_out_channels: int = 512
    text_channels: int = 512
    neck_embed_channels: tuple[int, int, int] = (128, 256, 256)
    neck_num_heads: tuple[int, int, int] = (4, 8, 8)
    num_csp_blocks: int = 3
    num_train_classes: int = 80  # only sets the class-branch width: max(in_channels[0], this)
    reg_max: int = 16
    strides: tuple[int, int, int] = (8, 16, 32)
    bn_eps: float = 0.001

    @property
    def neck_channels(self) -> tuple[int, int, int]:
        return (256, 512, self.last_stage_out_channels)


YOLO_WORLD_V2_L = YoloWorldArch()


@dataclass(frozen=True)
class PostprocessConfig:
    """`model_test_cfg` of mmyolo's yolov8 config (the image-prompt config keeps it)."""

    multi_label: bool = True
    nms_pre: int = 30000
    score_thr: float = 0.001
    iou_threshold: float = 0.7
    max_per_img: int = 300


@dataclass(frozen=True)
class Letterbox:
    """How one frame was fitted into the network input (mmyolo's `scale_factor`, `pad_param`)."""

    ori_shape: tuple[int, int]  # h, w
    resized_shape: tuple[int, int]  # h, w before padding
    scale_factor: tuple[float, float]  # w, h
    pad_param: tuple[int, int, int, int]  # top, bottom, left, right


@dataclass(frozen=True)
class Detections:
    """One frame's boxes (x1, y1, x2, y2 in frame pixels), scores and class indices, best first."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def make_divisible(x: float, widen_factor: float = 1.0, divisor: int = 8) -> int:
    """mmyolo `make_divisible`: ceil(x * widen / divisor) * divisor."""
    return math.ceil(x * widen_factor / divisor) * divisor


def make_round(x: float, deepen_factor: float = 1.0) -> int:
    """mmyolo `make_round`: max(round(x * deepen), 1) when x > 1, else x."""
    return max(round(x * deepen_factor), 1) if x > 1 else x


# ----------------------------------------------------------------------------- preprocessing


def letterbox(frame: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """`YOLOv5KeepRatioResize` + `LetterResize(allow_scale_up=False, pad 114)` of one HxWx3 uint8 frame."""
    import cv2

    h, w = frame.shape[:2]
    ratio = min(size / max(h, w), size / min(h, w))  # _get_rescale_ratio with a square scale
    image = frame
    if ratio != 1:
        interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
        image = cv2.resize(frame, (int(w * ratio), int(h * ratio)), interpolation=interpolation)
    rh, rw = image.shape[:2]
    scale_w, scale_h = rw / w, rh / h
    # LetterResize: never enlarges; with the first resize the ratio is already <= 1
    letter = min(min(size / rh, size / rw), 1.0)
    no_pad = (int(round(rh * letter)), int(round(rw * letter)))
    if (rh, rw) != no_pad:
        image = cv2.resize(image, (no_pad[1], no_pad[0]), interpolation=cv2.INTER_LINEAR)
    scale_w, scale_h = scale_w * no_pad[1] / rw, scale_h * no_pad[0] / rh
    pad_h, pad_w = size - no_pad[0], size - no_pad[1]
    top, left = int(round(pad_h // 2 - 0.1)), int(round(pad_w // 2 - 0.1))
    bottom, right = pad_h - top, pad_w - left
    if top or bottom or left or right:
        padded = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
        padded[top : top + no_pad[0], left : left + no_pad[1]] = image
        image = padded
    return image, Letterbox((h, w), no_pad, (scale_w, scale_h), (top, bottom, left, right))


def network_input(
    frames: np.ndarray | Sequence[np.ndarray], size: int = INPUT_SIZE
) -> tuple[Any, list[Letterbox]]:
    """A (B, 3, size, size) float batch of letterboxed frames as the official preprocessor makes it.

    The frames are RGB; the data preprocessor's `bgr_to_rgb=True` flips them, so the network
    sees BGR, exactly as in the official script (which also hands it RGB). Values: x / 255.
    """
    import torch

    boxes, metas = [], []
    for frame in frames:
        image, meta = letterbox(np.asarray(frame), size)
        boxes.append(image)
        metas.append(meta)
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(boxes).transpose(0, 3, 1, 2)))
    batch = batch[:, [2, 1, 0]].float()
    return batch / 255.0, metas


# ----------------------------------------------------------------------------- network


@functools.cache
def _modules() -> Any:
    """Define the torch modules on first use, so importing this file does not import torch."""
    import types

    import torch
    import torch.nn.functional as F
    from torch import nn

    class ConvModule(nn.Module):
        """mmcv ConvModule with BN: `conv` (no bias) + `bn` (+ SiLU when `act`)."""

        def __init__(
            self,
            cin: int,
            cout: int,
            k: int,
            s: int = 1,
            p: int = 0,
            act: bool = True,
            eps: float = 1e-3,
        ) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, s, p, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=eps, momentum=0.03)
            self.act = act

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.bn(self.conv(x))
            return F.silu(x) if self.act else x

    class DarknetBottleneck(nn.Module):
        """mmyolo DarknetBottleneck as CSPLayerWithTwoConv builds it: two 3x3 convs, optional identity."""

        def __init__(self, channels: int, add_identity: bool, eps: float) -> None:
            super().__init__()
            self.conv1 = ConvModule(channels, channels, 3, 1, 1, eps=eps)
            self.conv2 = ConvModule(channels, channels, 3, 1, 1, eps=eps)
            self.add_identity = add_identity

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.conv2(self.conv1(x))
            return x + out if self.add_identity else out

    class CSPLayerWithTwoConv(nn.Module):
        """mmyolo CSPLayerWithTwoConv (C2f): split, chained bottlenecks, concat, 1x1."""

        def __init__(
            self, cin: int, cout: int, blocks: int, add_identity: bool, eps: float, extra: int = 0
        ) -> None:
            super().__init__()
            self.mid_channels = int(cout * 0.5)
            self.main_conv = ConvModule(cin, 2 * self.mid_channels, 1, eps=eps)
            self.final_conv = ConvModule((2 + extra + blocks) * self.mid_channels, cout, 1, eps=eps)
            self.blocks = nn.ModuleList(
                DarknetBottleneck(self.mid_channels, add_identity, eps) for _ in range(blocks)
            )

        def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
            parts = list(self.main_conv(x).split((self.mid_channels, self.mid_channels), 1))
            parts.extend(block(parts[-1]) for block in self.blocks)
            return parts

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.final_conv(torch.cat(self.branches(x), 1))

    class SPPFBottleneck(nn.Module):
        """mmyolo SPPFBottleneck (kernel 5): 1x1, three chained max-pools concatenated, 1x1."""

        def __init__(self, cin: int, cout: int, eps: float) -> None:
            super().__init__()
            mid = int(cin * 0.5)
            self.conv1 = ConvModule(cin, mid, 1, eps=eps)
            self.poolings = nn.MaxPool2d(kernel_size=5, stride=1, padding=2)
            self.conv2 = ConvModule(mid * 4, cout, 1, eps=eps)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv1(x)
            y1 = self.poolings(x)
            y2 = self.poolings(y1)
            return self.conv2(torch.cat([x, y1, y2, self.poolings(y2)], dim=1))

    class CSPDarknet(nn.Module):
        """mmyolo YOLOv8CSPDarknet (P5), outputs of stages 2, 3, 4."""

        def __init__(self, arch: YoloWorldArch) -> None:
            super().__init__()
            wf, df, eps = arch.widen_factor, arch.deepen_factor, arch.bn_eps
            self.stem = ConvModule(3, make_divisible(64, wf), 3, 2, 1, eps=eps)
            for index, (cin, cout, blocks, spp) in enumerate(P5_STAGES, start=1):
                cout = arch.last_stage_out_channels if cout < 0 else cout
                cin, cout = make_divisible(cin, wf), make_divisible(cout, wf)
                layers = [
                    ConvModule(cin, cout, 3, 2, 1, eps=eps),
                    CSPLayerWithTwoConv(cout, cout, make_round(blocks, df), True, eps),
                ]
                if spp:
                    layers.append(SPPFBottleneck(cout, cout, eps))
                self.add_module(f"stage{index}", nn.Sequential(*layers))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            x = self.stage1(self.stem(x))
            c3 = self.stage2(x)
            c4 = self.stage3(c3)
            return c3, c4, self.stage4(c4)

    class MaxSigmoidAttnBlock(nn.Module):
        """YOLO-World's max-sigmoid attention (yolo_bricks.py l.16), `with_scale=False`, einsum path."""

        def __init__(
            self, cin: int, cout: int, guide: int, embed: int, heads: int, eps: float
        ) -> None:
            super().__init__()
            if cout % heads or embed % heads:
                raise ValueError(
                    f"out_channels {cout} and embed_channels {embed} must be divisible by {heads} heads"
                )
            self.num_heads, self.head_channels = heads, embed // heads
            self.embed_conv = (
                ConvModule(cin, embed, 1, act=False, eps=eps) if embed != cin else None
            )
            self.guide_fc = nn.Linear(guide, embed)
            self.bias = nn.Parameter(torch.zeros(heads))
            self.project_conv = ConvModule(cin, cout, 3, 1, 1, act=False, eps=eps)

        def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
            b, _, h, w = x.shape
            guide = self.guide_fc(guide).reshape(b, -1, self.num_heads, self.head_channels)
            embed = self.embed_conv(x) if self.embed_conv is not None else x
            embed = embed.reshape(b, self.num_heads, self.head_channels, h, w)
            weight = torch.einsum("bmchw,bnmc->bmhwn", embed, guide).max(dim=-1)[0]
            weight = (weight / (self.head_channels**0.5) + self.bias[None, :, None, None]).sigmoid()
            x = self.project_conv(x).reshape(b, self.num_heads, -1, h, w) * weight.unsqueeze(2)
            return x.reshape(b, -1, h, w)

    class MaxSigmoidCSPLayerWithTwoConv(CSPLayerWithTwoConv):
        """C2f whose concat also takes the max-sigmoid attention of the last branch (l.280)."""

        def __init__(
            self, cin: int, cout: int, guide: int, embed: int, heads: int, blocks: int, eps: float
        ) -> None:
            super().__init__(cin, cout, blocks, False, eps, extra=1)
            self.attn_block = MaxSigmoidAttnBlock(
                self.mid_channels, self.mid_channels, guide, embed, heads, eps
            )

        def forward(self, x: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            parts = self.branches(x)
            parts.append(self.attn_block(parts[-1], guide))
            return self.final_conv(torch.cat(parts, 1))

    class YoloWorldPAFPN(nn.Module):
        """YOLOWorldPAFPN: YOLOv8 PAFPN with prompt-guided CSP layers (upsample-first concat)."""

        def __init__(self, arch: YoloWorldArch) -> None:
            super().__init__()
            wf, eps = arch.widen_factor, arch.bn_eps
            cin, cout = arch.neck_channels, arch.neck_channels
            blocks = make_round(arch.num_csp_blocks, arch.deepen_factor)

            def layer(cat: int, out: int, i: int) -> nn.Module:
                return MaxSigmoidCSPLayerWithTwoConv(
                    make_divisible(cat, wf),
                    make_divisible(out, wf),
                    arch.text_channels,
                    make_round(arch.neck_embed_channels[i], wf),
                    make_round(arch.neck_num_heads[i], wf),
                    blocks,
                    eps,
                )

            # top-down for idx = 2, 1; bottom-up for idx = 0, 1 (base_yolo_neck.py)
            self.top_down_layers = nn.ModuleList(
                layer(cin[i - 1] + cin[i], cout[i - 1], i - 1) for i in (2, 1)
            )
            self.downsample_layers = nn.ModuleList(
                ConvModule(make_divisible(cin[i], wf), make_divisible(cin[i], wf), 3, 2, 1, eps=eps)
                for i in (0, 1)
            )
            self.bottom_up_layers = nn.ModuleList(
                layer(cout[i] + cout[i + 1], cout[i + 1], i + 1) for i in (0, 1)
            )

        def forward(
            self, feats: Sequence[torch.Tensor], guide: torch.Tensor
        ) -> tuple[torch.Tensor, ...]:
            inner = [feats[2]]
            for step, idx in enumerate((2, 1)):
                up = F.interpolate(inner[0], scale_factor=2, mode="nearest")
                inner.insert(
                    0, self.top_down_layers[step](torch.cat([up, feats[idx - 1]], 1), guide)
                )
            outs = [inner[0]]
            for idx in range(2):
                down = self.downsample_layers[idx](outs[-1])
                outs.append(self.bottom_up_layers[idx](torch.cat([down, inner[idx + 1]], 1), guide))
            return tuple(outs)

    class BNContrastiveHead(nn.Module):
        """BatchNorm on the region embedding, dot with the normalised prompt, `* exp(scale) + bias`."""

        def __init__(self, embed_dims: int, eps: float) -> None:
            super().__init__()
            self.norm = nn.BatchNorm2d(embed_dims, eps=eps, momentum=0.03)
            self.bias = nn.Parameter(torch.zeros([]))
            self.logit_scale = nn.Parameter(-1.0 * torch.ones([]))

        def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            x = self.norm(x)
            w = F.normalize(w, dim=-1, p=2)
            x = torch.einsum("bchw,bkc->bkhw", x, w)
            return x * self.logit_scale.exp() + self.bias

    class YoloWorldHeadModule(nn.Module):
        """Decoupled class-embedding / DFL box branches per level (`use_bn_head=True`)."""

        def __init__(self, arch: YoloWorldArch) -> None:
            super().__init__()
            eps, embed = arch.bn_eps, arch.text_channels
            channels = [make_divisible(c, arch.widen_factor) for c in arch.neck_channels]
            reg_out = max(16, channels[0] // 4, arch.reg_max * 4)
            cls_out = max(channels[0], arch.num_train_classes)
            self.reg_max = arch.reg_max

            def branch(cin: int, mid: int, out: int) -> nn.Module:
                return nn.Sequential(
                    ConvModule(cin, mid, 3, 1, 1, eps=eps),
                    ConvModule(mid, mid, 3, 1, 1, eps=eps),
                    nn.Conv2d(mid, out, 1),
                )

            self.reg_preds = nn.ModuleList(branch(c, reg_out, 4 * arch.reg_max) for c in channels)
            self.cls_preds = nn.ModuleList(branch(c, cls_out, embed) for c in channels)
            self.cls_contrasts = nn.ModuleList(BNContrastiveHead(embed, eps) for _ in channels)
            self.register_buffer(
                "proj", torch.arange(arch.reg_max, dtype=torch.float), persistent=False
            )

        def forward(
            self, feats: Sequence[torch.Tensor], prompts: torch.Tensor
        ) -> tuple[list, list]:
            logits, boxes = [], []
            for feat, cls_pred, reg_pred, contrast in zip(
                feats, self.cls_preds, self.reg_preds, self.cls_contrasts
            ):
                b, _, h, w = feat.shape
                logits.append(contrast(cls_pred(feat), prompts))
                dist = reg_pred(feat).reshape([-1, 4, self.reg_max, h * w]).permute(0, 3, 1, 2)
                dist = dist.softmax(3).matmul(self.proj.view([-1, 1])).squeeze(-1)
                boxes.append(dist.transpose(1, 2).reshape(b, -1, h, w))
            return logits, boxes

    class YoloWorldImagePrompt(nn.Module):
        """Backbone, neck, head and the prompt projector under our names (see `official_key`)."""

        def __init__(self, arch: YoloWorldArch) -> None:
            super().__init__()
            self.arch = arch
            self.backbone = CSPDarknet(arch)
            self.neck = YoloWorldPAFPN(arch)
            self.head = YoloWorldHeadModule(arch)
            dim = arch.text_channels
            self.projector = nn.Sequential(
                nn.Linear(dim, dim * 2), nn.GELU(), nn.Linear(dim * 2, dim)
            )

        def forward(self, images: torch.Tensor, prompts: torch.Tensor) -> tuple[list, list]:
            """Class logits and DFL distances per level; `prompts` (B, K, D), one row of K per image."""
            return self.head(self.neck(self.backbone(images), prompts), prompts)

    return types.SimpleNamespace(YoloWorldImagePrompt=YoloWorldImagePrompt, ConvModule=ConvModule)


def build_yolo_world(arch: YoloWorldArch = YOLO_WORLD_V2_L) -> Any:
    """A randomly initialised detector of `arch` (eval mode)."""
    return _modules().YoloWorldImagePrompt(arch).eval()


# ----------------------------------------------------------------------------- checkpoint


def official_key(our_key: str) -> str:
    """The official (mmengine) state-dict name of one of our tensors."""
    for theirs, ours in PREFIX_MAP:
        if our_key.startswith(ours):
            return theirs + our_key[len(ours) :]
    raise KeyError(f"{our_key} has no official name")


def our_key(official: str) -> str | None:
    """Our name of an official tensor; None for the tensors the script never runs (UNUSED_PREFIXES)."""
    if official.startswith(UNUSED_PREFIXES):
        return None
    for theirs, ours in PREFIX_MAP:
        if official.startswith(theirs):
            return ours + official[len(theirs) :]
    return official  # unknown: reported as extra by `check_keys`


def read_state_dict(path: str | Path) -> Mapping[str, Any]:
    """The `state_dict` of an mmengine checkpoint (`module.` prefixes dropped, as mmengine does)."""
    import torch

    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or non-torch file
        raise CheckpointMismatchError(f"{path} is not a torch checkpoint: {exc}") from None
    state = payload.get("state_dict", payload) if isinstance(payload, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(
            f"{path} holds no state dict (mmengine saves {{'state_dict': ...}})"
        )
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}


def check_keys(model: Any, state: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Rename the file's tensors to ours, checking the map complete both ways; raises naming the key and file."""
    expected = {official_key(k): k for k in model.state_dict()}
    renamed: dict[str, Any] = {}
    extra: list[str] = []
    for name, tensor in state.items():
        ours = our_key(name)
        if ours is None:
            continue
        if name not in expected:
            extra.append(name)
            continue
        renamed[ours] = tensor
    missing = sorted(set(expected) - set(state))
    if missing or extra:
        parts = []
        if missing:
            parts.append(
                f"missing tensor(s) {', '.join(missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        if extra:
            extra.sort()
            parts.append(
                f"unexpected tensor(s) {', '.join(extra[:5])}"
                + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            )
        raise CheckpointMismatchError(
            f"{source} is not a YOLO-World image-prompt checkpoint of this architecture: {'; '.join(parts)}"
        )
    own = model.state_dict()
    wrong = [
        f"{official_key(k)} {tuple(v.shape)} (expected {tuple(own[k].shape)})"
        for k, v in renamed.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if wrong:
        raise CheckpointMismatchError(
            f"{source}: tensor(s) of the wrong shape: {', '.join(wrong[:5])}"
        )
    return renamed


def load_yolo_world(
    context: Any,
    path: str | Path,
    arch: YoloWorldArch = YOLO_WORLD_V2_L,
    precision: str = "fp32",
) -> Any:
    """The detector filled STRICTLY from an official checkpoint, once per (file, arch, device, dtype)."""
    from kaleido_bench.metrics import backbones

    path = Path(path)
    dev, dtype = backbones.torch_device(context.device), backbones.torch_dtype(precision)

    def build() -> Any:
        model = build_yolo_world(arch)
        model.load_state_dict(check_keys(model, read_state_dict(path), str(path)), strict=True)
        return model.to(dev, dtype).eval()

    key = (
        "yolo-world",
        backbones.file_identity(path),
        backbones.freeze(arch.__dict__),
        str(dev),
        str(dtype),
    )
    return context.models.get(key, build)


# ----------------------------------------------------------------------------- inference


def prompt_embeddings(model: Any, clip_image_embeds: Any) -> Any:
    """CLIP `image_embeds` (K, D) -> detector prompts: normalise, projector (no residual), normalise.

    `generate_image_embeddings` then `run_image` in get_nexusscore.py (`x / x.norm(p=2)` each time).
    """
    import torch

    with torch.inference_mode():
        feats = clip_image_embeds.to(next(model.parameters()).device, torch.float32)
        feats = feats / feats.norm(p=2, dim=-1, keepdim=True)
        feats = model.projector(feats.to(next(model.parameters()).dtype)).float()
        return feats / feats.norm(p=2, dim=-1, keepdim=True)


def raw_outputs(model: Any, images: Any, prompts: Any) -> tuple[list, list]:
    """Network outputs for a batch of images, each with its own prompt set (B, K, D)."""
    import torch

    param = next(model.parameters())
    with torch.inference_mode():
        return model(images.to(param.device, param.dtype), prompts.to(param.device, param.dtype))


def detect(
    model: Any,
    frames: np.ndarray | Sequence[np.ndarray],
    prompts: Any,
    cfg: PostprocessConfig = PostprocessConfig(),
    frame_batch: int = 32,
) -> list[list[Detections]]:
    """Detections [prompt][frame], each prompt a one-class detector as the official script runs it.

    The backbone runs once per batch of `frame_batch` frames; neck and head run on those features
    repeated for every prompt (batch = frames x prompts).
    """
    import torch

    param = next(model.parameters())
    prompts = prompts.to(param.device, param.dtype)
    num_prompts = prompts.shape[0]
    out: list[list[Detections]] = [[] for _ in range(num_prompts)]
    with torch.inference_mode():
        for start in range(0, len(frames), frame_batch):
            images, metas = network_input(frames[start : start + frame_batch])
            images = images.to(param.device, param.dtype)
            feats = model.backbone(images)
            b = images.shape[0]
            tiled = [f.repeat(num_prompts, 1, 1, 1) for f in feats]  # prompt-major: k * b + i
            guide = prompts.repeat_interleave(b, dim=0)[:, None, :]
            logits, boxes = model.head(model.neck(tiled, guide), guide)
            results = postprocess(model, logits, boxes, metas * num_prompts, cfg)
            for k in range(num_prompts):
                out[k].extend(results[k * b : (k + 1) * b])
    return out


def postprocess(
    model: Any,
    cls_logits: Sequence[Any],
    bbox_dists: Sequence[Any],
    metas: Sequence[Letterbox],
    cfg: PostprocessConfig,
) -> list[Detections]:
    """`YOLOWorldHead.predict_by_feat` + `_bbox_post_process` (rescale, NMS, max 300, clamp)."""
    import torch

    arch: YoloWorldArch = model.arch
    num_classes = cls_logits[0].shape[1]
    num_imgs = cls_logits[0].shape[0]
    device = cls_logits[0].device
    priors, strides = [], []
    for logit, stride in zip(cls_logits, arch.strides):
        h, w = logit.shape[2:]
        # mmdet MlvlPointGenerator(offset=0.5): row-major (y outer, x inner)
        xs = (torch.arange(0, w, device=device) + 0.5) * stride
        ys = (torch.arange(0, h, device=device) + 0.5) * stride
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        priors.append(torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1).to(logit.dtype))
        strides.append(torch.full((h * w,), stride, dtype=logit.dtype, device=device))
    flat_priors, flat_strides = torch.cat(priors), torch.cat(strides)
    scores_all = torch.cat(
        [c.permute(0, 2, 3, 1).reshape(num_imgs, -1, num_classes) for c in cls_logits], 1
    ).sigmoid()
    dists = torch.cat([b.permute(0, 2, 3, 1).reshape(num_imgs, -1, 4) for b in bbox_dists], 1)
    dists = dists * flat_strides[None, :, None]  # DistancePointBBoxCoder.decode
    boxes_all = torch.stack(
        [
            flat_priors[None, :, 0] - dists[..., 0],
            flat_priors[None, :, 1] - dists[..., 1],
            flat_priors[None, :, 0] + dists[..., 2],
            flat_priors[None, :, 1] + dists[..., 3],
        ],
        -1,
    )
    multi_label = cfg.multi_label and num_classes > 1
    results = []
    for boxes, scores, meta in zip(boxes_all, scores_all, metas):
        if multi_label:
            valid = scores > cfg.score_thr
            kept_scores = scores[valid]
            valid_idxs = torch.nonzero(valid)
            kept_scores, idxs = kept_scores.sort(descending=True)
            top = min(cfg.nms_pre, valid_idxs.size(0))
            kept_scores = kept_scores[:top]
            keep_idxs, labels = valid_idxs[idxs[:top]].unbind(dim=1)
        else:
            best, labels = scores.max(1, keepdim=True)
            valid = best > cfg.score_thr
            kept_scores = best[valid]
            valid_idxs = torch.nonzero(valid)
            kept_scores, idxs = kept_scores.sort(descending=True)
            top = min(cfg.nms_pre, valid_idxs.size(0))
            kept_scores = kept_scores[:top]
            keep_idxs = valid_idxs[idxs[:top]][:, 0]
            labels = labels[:, 0][keep_idxs]
        kept_boxes = boxes[keep_idxs]
        top_pad, _, left_pad, _ = meta.pad_param
        kept_boxes = kept_boxes - kept_boxes.new_tensor([left_pad, top_pad, left_pad, top_pad])
        kept_boxes = kept_boxes / kept_boxes.new_tensor(meta.scale_factor).repeat((1, 2))
        if kept_boxes.numel() > 0:
            keep = mmcv_batched_nms(kept_boxes, kept_scores, labels, cfg.iou_threshold)
            kept_boxes, kept_scores, labels = kept_boxes[keep], kept_scores[keep], labels[keep]
            kept_boxes, kept_scores, labels = (
                kept_boxes[: cfg.max_per_img],
                kept_scores[: cfg.max_per_img],
                labels[: cfg.max_per_img],
            )
        h, w = meta.ori_shape
        kept_boxes[:, 0::2].clamp_(0, w)
        kept_boxes[:, 1::2].clamp_(0, h)
        results.append(
            Detections(
                kept_boxes.float().cpu().numpy(),
                kept_scores.float().cpu().numpy(),
                labels.cpu().numpy().astype(np.int64),
            )
        )
    return results


def mmcv_batched_nms(
    boxes: Any, scores: Any, labels: Any, iou_threshold: float, split_thr: int = 10000
) -> Any:
    """mmcv `batched_nms` (class-aware, `split_thr` 10000) with torchvision's `nms` as the NMS op.

    mmcv's CPU / CUDA `nms` and torchvision's suppress the same boxes (IoU > threshold against a
    kept box, offset 0) and return them best first; they differ only in how equal scores are
    ordered (mmcv's sort is not stable).
    """
    import torch
    from torchvision.ops import nms

    max_coordinate = boxes.max()
    offsets = labels.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    if boxes_for_nms.shape[0] < split_thr:
        return nms(boxes_for_nms, scores, iou_threshold)
    total_mask = scores.new_zeros(scores.size(), dtype=torch.bool)
    scores_after_nms = scores.new_zeros(scores.size())
    for label in torch.unique(labels):
        mask = (labels == label).nonzero(as_tuple=False).view(-1)
        keep = nms(boxes_for_nms[mask], scores[mask], iou_threshold)
        total_mask[mask[keep]] = True
        scores_after_nms[mask[keep]] = scores[mask[keep]]
    keep = total_mask.nonzero(as_tuple=False).view(-1)
    _, order = scores_after_nms[keep].sort(descending=True)
    return keep[order]
