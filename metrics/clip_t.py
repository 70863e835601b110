"""`clip_t` / `clip_t_l14`: CLIP text-video alignment of the prompt and the video's frames.

Per frame, the cosine between the CLIP image embedding of the frame and the CLIP text
embedding of the case's prompt (Radford et al. 2021; as a score: Hessel et al. 2021's
CLIPScore, which reports w * max(cos, 0), the video papers use w = 100).

- Frames: the 32 OpenS2V linspace frames, whole, through open_clip's OpenAI preprocessing
  (short side 224 bicubic, centre crop 224) and the image tower `clip_i` uses (transformers'
  implementation, `clip_vision.py`): the same embeddings as `clip_i` with the same model
  (shared through the video's cache). The text tower is open_clip's, built alone
  (`backbones.load_open_clip_text`: the file's image half is not read).
- Text: open_clip's tokenizer (the BPE vocabulary ships with open_clip, so it works offline),
  77 tokens with start and end tokens: longer prompts are TRUNCATED (CLIP cannot read more);
  `details["text_truncated"]` says when. Each prompt is encoded once per metric instance.
- `value` = the mean over frames of the RAW cosine (comparable to `clip_i` / `dino_i`, keeps
  negative evidence). `details["clipscore"]` = mean over frames of 100 * max(cos, 0) (the
  per-frame CLIPScore convention; clipping is per frame, before the mean), with
  `details["cosine"]` (= value) and the per-frame min / max of the cosine.
"""

from __future__ import annotations

from typing import Any

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.base import MetricResult, Needs, register_metric
from kaleido_bench.metrics.clip_i import OpenClipSimilarity, frame_embeddings
from kaleido_bench.metrics.context import ScoringContext

CLIPSCORE_WEIGHT = 100.0


def clipscore(cosines: Any, weight: float = CLIPSCORE_WEIGHT) -> float:
    """Mean over frames of weight * max(cos, 0) (CLIPScore per frame, then averaged)."""
    return float((weight * cosines.clamp(min=0)).mean())


class _ClipT(OpenClipSimilarity):
    """Frames through the shared image tower (as `clip_i`), the prompt through open_clip's text tower."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.text_backbone: backbones.Backbone | None = None
        self._text: dict[str, tuple[Any, bool]] = {}

    def load_backbone(self, context: ScoringContext, path) -> backbones.Backbone:
        """The image tower as `clip_i`; the same file's open_clip text tower (only) for the prompt."""
        self.text_backbone = backbones.load_open_clip_text(
            context,
            self.model_name,
            path,
            precision=self.options.get("precision", "fp32"),
            model_overrides=self.options.get("model_overrides"),
        )
        return super().load_backbone(context, path)

    def text_embedding(self, prompt: str) -> tuple[Any, bool]:
        """(D,) float32 CPU embedding of `prompt` and whether it was truncated; once per prompt."""
        if prompt not in self._text:
            backbone = self.text_backbone
            truncated = False
            encoder = getattr(backbone.tokenizer, "encode", None)
            if encoder is not None and backbone.context_length:
                truncated = len(encoder(prompt)) + 2 > backbone.context_length
            self._text[prompt] = (backbone.embed_texts([prompt])[0], truncated)
        return self._text[prompt]

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        import torch.nn.functional as F

        if not case.prompt.strip():
            return MetricResult.absent("case has an empty prompt")
        frames = frame_embeddings(
            video, self.backbone, self.num_frames, int(self.options.get("batch_size", 32))
        )
        text, truncated = self.text_embedding(case.prompt)
        cosines = F.normalize(frames.float(), dim=-1) @ F.normalize(text.float(), dim=-1)
        value = float(cosines.mean())
        return MetricResult(
            value,
            {
                "cosine": value,
                "clipscore": clipscore(cosines),
                "min": float(cosines.min()),
                "max": float(cosines.max()),
                "frames": int(cosines.shape[0]),
                "text_truncated": truncated,
            },
        )


@register_metric("clip_t")
class ClipT(_ClipT):
    """CLIP-T with OpenAI CLIP ViT-B/32: mean cosine of frames and prompt."""

    description = "CLIP-T (OpenAI CLIP ViT-B/32): mean cosine of 32 frames vs the prompt; CLIPScore in details"
    weights = (backbones.OPENCLIP_VIT_B32_OPENAI,)
    needs = Needs(frames="sampled", group="clip-vit-b32", model_bytes=600_000_000)
    model_name = "ViT-B-32"
    backbone_name = (
        "OpenAI CLIP ViT-B/32, open_clip file; image tower run by transformers (clip_vision.py)"
    )


@register_metric("clip_t_l14")
class ClipTL14(_ClipT):
    """CLIP-T with OpenAI CLIP ViT-L/14."""

    description = "CLIP-T (OpenAI CLIP ViT-L/14): mean cosine of 32 frames vs the prompt; CLIPScore in details"
    weights = (backbones.OPENCLIP_VIT_L14_OPENAI,)
    needs = Needs(frames="sampled", group="clip-vit-l14", model_bytes=1_710_000_000)
    model_name = "ViT-L-14"
    backbone_name = (
        "OpenAI CLIP ViT-L/14, open_clip file; image tower run by transformers (clip_vision.py)"
    )
