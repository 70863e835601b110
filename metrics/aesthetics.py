"""`aesthetics`: OpenS2V-Eval's Aesthetics (`eval/get_aesscore.py`, `aes_score`), exactly.

- Frames: 32 at `np.linspace(0, T-1, 32, dtype=int)` (decord there, PyAV rgb24 here: identical).
- Preprocessing: the stock `CLIPProcessor` of `openai/clip-vit-large-patch14` as OpenS2V's
  transformers 4.51 ran it: the PIL image processor (short side 224 PIL BICUBIC, long side
  `int(224 * long / short)`, centre crop 224 at `(n - 224) // 2`, `* (1/255)` in float64 then
  float32, CLIP mean/std). `backbones.hf_clip_preprocess` reproduces it bit for bit (tested
  against transformers' `CLIPImageProcessorPil`). NOT transformers 5's default
  `CLIPImageProcessor`, a torchvision backend that is up to 1.5e-2 off per pixel.
- Model: HF `CLIPVisionModelWithProjection` `image_embeds` (the projected 768-d embedding),
  the 32 frames in ONE fp32 batch, then `embed / torch.linalg.vector_norm(embed, dim=-1)`.
  The tower is built from the folder's tensors by `clip_vision.py`, so `clip_i_l14` /
  `clip_t_l14` reuse this model and these embeddings when their file holds the same weights.
- Head: OpenS2V's `MLP`, `layers` = Linear 768-1024, Dropout 0.2, Linear 1024-128, Dropout 0.2,
  Linear 128-64, Dropout 0.1, Linear 64-16, Linear 16-1: NO activations (the LAION "improved
  aesthetic predictor" shape); dropouts are off in eval. State-dict keys `layers.{0,2,4,6,7}.
  {weight,bias}`, loaded strictly from `aesthetic-model.pth` (hub `BestWishYsh/OpenS2V-Weight`,
  repo root) with `torch.load(weights_only=True)`.
- Value: `scores.mean().item()` of the 32 raw outputs (about 1 to 10; not divided by 10). The
  official merge clips it to [4, 7] later; that belongs to the OpenS2V total, not here.
"""

from __future__ import annotations

from typing import Any

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.backbones import Backbone
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.clip_i import frame_embeddings
from kaleido_bench.metrics.clip_vision import load_hf_clip_vision
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.weights import WeightFile, load_tensor_file, resolve

NUM_FRAMES = 32
AESTHETIC_MLP = WeightFile(
    "opens2v/aesthetic-model.pth",
    "OpenS2V aesthetic MLP head (768-1024-128-64-16-1 on CLIP ViT-L/14 image embeddings)",
    repo_id="BestWishYsh/OpenS2V-Weight",
    repo_filename="aesthetic-model.pth",
)
MLP_SHAPE = ((768, 1024, 0.2), (1024, 128, 0.2), (128, 64, 0.1), (64, 16, None), (16, 1, None))


def aesthetic_mlp() -> Any:
    """OpenS2V's head, randomly initialised; its sub-module `layers` gives the official key names."""
    from collections import OrderedDict

    from torch import nn

    layers: list[nn.Module] = []
    for fan_in, fan_out, dropout in MLP_SHAPE:
        layers.append(nn.Linear(fan_in, fan_out))
        if dropout is not None:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(OrderedDict(layers=nn.Sequential(*layers))).eval()


def load_aesthetic_mlp(context: ScoringContext, path) -> Any:
    """`aesthetic-model.pth` loaded strictly (weights_only), once per scoring context."""

    dev = backbones.torch_device(context.device)

    def build() -> Any:
        head = aesthetic_mlp()
        state = load_tensor_file(path)
        head.load_state_dict(state, strict=True)
        return head.to(dev).eval()

    return context.models.get(("aesthetic-mlp", backbones.file_identity(path), str(dev)), build)


def aesthetic_scores(backbone: Backbone, head: Any, pixels: Any) -> Any:
    """Per-image raw scores: normalised `image_embeds` (one batch, fp32) through the head."""
    import torch

    with torch.inference_mode():
        return head_scores(
            backbone, head, backbone.forward(pixels.to(backbone.device, torch.float32))
        )


def head_scores(backbone: Backbone, head: Any, embeds: Any) -> Any:
    """The head on `image_embeds` (moved to the model's device), each first divided by its L2 norm."""
    import torch

    with torch.inference_mode():
        embed = embeds.to(backbone.device, torch.float32)
        embed = embed / torch.linalg.vector_norm(embed, dim=-1, keepdim=True)
        return head(embed).squeeze(1)


@register_metric("aesthetics")
class Aesthetics(Metric):
    """OpenS2V Aesthetics: LAION-style MLP on CLIP ViT-L/14 embeddings of 32 frames (exact)."""

    description = (
        "OpenS2V Aesthetics: MLP on CLIP ViT-L/14 image embeddings, mean of 32 frames (about 1-10)"
    )
    weights = (backbones.CLIP_VIT_L14_HF, AESTHETIC_MLP)
    option_names = frozenset({"clip_path", "mlp_path"})
    path_options = {
        backbones.CLIP_VIT_L14_HF.filename: "clip_path",
        AESTHETIC_MLP.filename: "mlp_path",
    }
    needs = Needs(frames="sampled", group="clip-vit-l14", model_bytes=1_220_000_000)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.backbone: Backbone | None = None
        self.head: Any = None

    def setup(self, context: ScoringContext) -> None:
        clip_path = resolve(
            backbones.CLIP_VIT_L14_HF, self.options.get("clip_path"), metric=self.name
        )
        mlp_path = resolve(AESTHETIC_MLP, self.options.get("mlp_path"), metric=self.name)
        self.backbone = load_hf_clip_vision(context, clip_path, precision="fp32")
        self.head = load_aesthetic_mlp(context, mlp_path)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "preprocess": backbones.HF_CLIP_PREPROCESS_ID,
            "frames": NUM_FRAMES,
        }

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        # all 32 frames in ONE batch, as OpenS2V; shared with clip_i_l14 / clip_t_l14 when their
        # file holds the same weights and their preprocessing gives the same pixels
        embeds = frame_embeddings(video, self.backbone, NUM_FRAMES, batch_size=NUM_FRAMES)
        scores = head_scores(self.backbone, self.head, embeds)
        return MetricResult(
            scores.mean().item(),
            {"frames": int(scores.shape[0]), "per_frame": [float(s) for s in scores.cpu()]},
        )
