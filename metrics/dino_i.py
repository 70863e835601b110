"""`dino_i`: DINOv2 image similarity of the video's frames to each subject reference.

DreamBooth's DINO metric (Ruiz et al. 2023: mean cosine of DINO ViT-S/16 CLS embeddings of
generated and real subject images; self-supervised features separate instances of one class
better than CLIP's) with DINOv2 ViT-B/14 (`vit_base_patch14_dinov2.lvd142m`, timm), the CLS
token after the final norm.

Frames, references, pairing, subject / background split and the value are exactly as in
`clip_i` (see `metrics/clip_i.py`): 32 linspace frames, every frame against every reference,
raw cosine, per-reference mean over frames, value = mean over face / human / object references,
background references reported apart. Cropping: DINOv2's evaluation transform on the whole
frame and the whole reference: short side 256 bicubic (antialiased, PIL), centre crop 224,
ImageNet mean/std; the 518-pixel position embedding of the checkpoint is resampled to the
16x16 grid of 224 once, by timm at load time.
"""

from __future__ import annotations

from kaleido_bench.metrics import backbones
from kaleido_bench.metrics.backbones import Backbone
from kaleido_bench.metrics.base import Needs, register_metric
from kaleido_bench.metrics.clip_i import SubjectSimilarity
from kaleido_bench.metrics.context import ScoringContext

DINOV2_ARCH = "vit_base_patch14_dinov2"


@register_metric("dino_i")
class DinoI(SubjectSimilarity):
    """DINO-I with DINOv2 ViT-B/14: mean cosine of frame and subject-reference CLS embeddings."""

    description = "DINO-I (DINOv2 ViT-B/14): mean cosine of 32 frames vs each subject reference"
    weights = (backbones.DINOV2_VITB14,)
    backbone_name = "timm vit_base_patch14_dinov2.lvd142m at 224"
    needs = Needs(frames="sampled", group="dinov2-b14", model_bytes=350_000_000)

    def load_backbone(self, context: ScoringContext, path) -> Backbone:
        return backbones.load_timm_vit(
            context,
            DINOV2_ARCH,
            path,
            precision=self.options.get("precision", "fp32"),
            img_size=224,
            model_overrides=self.options.get("model_overrides"),
        )
