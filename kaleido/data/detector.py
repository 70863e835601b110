"""Boxes of each named subject in a frame: Grounding DINO (transformers
`GroundingDinoForObjectDetection`), queried one label at a time so each box belongs to the
subject asked for (no token-to-label matching across a joint prompt)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kaleido_bench.kaleido.data.models import resolve_model
from kaleido_bench.kaleido.data.records import Box


@dataclass(frozen=True)
class DetectorConfig:
    model: str = "IDEA-Research/grounding-dino-base"  # folder or HF repo id
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    device: str = "cpu"


class SubjectDetector:
    def __init__(self, config: DetectorConfig):
        self.config = config
        self.path = resolve_model(config.model, "subject detector (Grounding DINO)")

    @cached_property
    def _model(self):
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        model = (
            GroundingDinoForObjectDetection.from_pretrained(self.path).to(self.config.device).eval()
        )
        return model, AutoProcessor.from_pretrained(self.path)

    def detect(self, image: np.ndarray, label: str) -> tuple[Box, float] | None:
        """The highest-scoring box of `label` above the thresholds, or None when nothing is found."""
        import torch
        from PIL import Image

        model, processor = self._model
        prompt = label.lower().strip().rstrip(".") + "."  # Grounding DINO's query format
        inputs = processor(images=Image.fromarray(image), text=prompt, return_tensors="pt").to(
            self.config.device
        )
        with torch.no_grad():
            out = model(**inputs)
        result = processor.post_process_grounded_object_detection(
            out,
            inputs["input_ids"],
            threshold=self.config.box_threshold,
            text_threshold=self.config.text_threshold,
            target_sizes=[image.shape[:2]],
        )[0]
        if len(result["scores"]) == 0:
            return None
        best = int(result["scores"].argmax())
        h, w = image.shape[:2]
        x0, y0, x1, y1 = result["boxes"][best].tolist()
        box = Box(max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
        return (box, float(result["scores"][best])) if box.area > 0 else None
