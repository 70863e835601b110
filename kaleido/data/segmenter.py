"""Subject masks from box prompts: SAM (transformers `SamModel` + `SamProcessor`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kaleido_bench.kaleido.data.models import resolve_model
from kaleido_bench.kaleido.data.records import Box


@dataclass(frozen=True)
class SegmenterConfig:
    model: str = "facebook/sam-vit-huge"  # folder or HF repo id
    device: str = "cpu"


class Segmenter:
    def __init__(self, config: SegmenterConfig):
        self.config = config
        self.path = resolve_model(config.model, "segmenter (SAM)")

    @cached_property
    def _model(self):
        from transformers import SamModel, SamProcessor

        return SamModel.from_pretrained(self.path).to(
            self.config.device
        ).eval(), SamProcessor.from_pretrained(self.path)

    def segment(self, image: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
        """One bool HxW mask per box (SAM's single-mask output), kept inside its box."""
        import torch
        from PIL import Image

        if not boxes:
            return []
        model, processor = self._model
        prompt = [[[b.x0, b.y0, b.x1, b.y1] for b in boxes]]
        inputs = processor(
            images=Image.fromarray(image), input_boxes=prompt, return_tensors="pt"
        ).to(self.config.device)
        with torch.no_grad():
            out = model(**inputs, multimask_output=False)
        masks = processor.image_processor.post_process_masks(
            out.pred_masks.cpu(),
            inputs["original_sizes"].cpu(),
            inputs["reshaped_input_sizes"].cpu(),
        )[0][:, 0].numpy()
        inside = []
        for mask, box in zip(masks, boxes):
            keep = np.zeros_like(mask, dtype=bool)
            keep[int(box.y0) : int(np.ceil(box.y1)), int(box.x0) : int(np.ceil(box.x1))] = True
            inside.append(mask.astype(bool) & keep)
        return inside


def cutout_on_white(image: np.ndarray, mask: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The subject's pixels on white, cropped to its box, and the mask cropped alike."""
    y0, y1 = int(box.y0), int(np.ceil(box.y1))
    x0, x1 = int(box.x0), int(np.ceil(box.x1))
    crop, crop_mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    return np.where(crop_mask[..., None], crop, 255).astype(np.uint8), crop_mask
