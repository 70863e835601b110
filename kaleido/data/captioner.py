"""Caption and subject list of a clip from a vision-language model (transformers Qwen2-VL /
Qwen2.5-VL). The model is asked for JSON; a reply that does not parse rejects the sample with
`CAPTION_UNPARSABLE` rather than guessing subjects from free text."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from kaleido_bench.kaleido.data.models import resolve_model

CAPTION_UNPARSABLE = "caption unparsable"

PROMPT = (
    "Describe this video for a text-to-video model. Reply with JSON only: "
    '{"caption": "<one detailed sentence>", "subjects": ["<each salient person, animal or object, '
    'a short noun phrase>"], "backgrounds": ["<two new scenes the subjects could be placed in>"]}'
)


@dataclass(frozen=True)
class CaptionerConfig:
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"  # folder or HF repo id
    max_new_tokens: int = 256
    max_subjects: int = 3
    device: str = "cpu"
    dtype: str = "float32"  # "bfloat16" on GPU


@dataclass(frozen=True)
class Caption:
    text: str
    subjects: tuple[str, ...]
    backgrounds: tuple[str, ...] = ()


class CaptionUnparsableError(ValueError):
    """The VLM's reply holds no JSON object with a caption and a non-empty subject list."""


def parse_caption_reply(reply: str, max_subjects: int = 3) -> Caption:
    """The first JSON object in `reply` (code fences and prose around it are ignored) with a
    non-empty string `caption` and a non-empty list of string `subjects`."""
    for match in re.finditer(r"\{", reply):
        try:
            obj, _ = json.JSONDecoder().raw_decode(reply[match.start() :])
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        caption, subjects = obj.get("caption"), obj.get("subjects")
        if not isinstance(caption, str) or not caption.strip() or not isinstance(subjects, list):
            continue
        names = [s.strip() for s in subjects if isinstance(s, str) and s.strip()]
        if not names:
            continue
        backgrounds = [
            b.strip() for b in obj.get("backgrounds") or [] if isinstance(b, str) and b.strip()
        ]
        unique = list(dict.fromkeys(names))[:max_subjects]
        return Caption(caption.strip(), tuple(unique), tuple(backgrounds))
    raise CaptionUnparsableError(reply[:200])


class Captioner:
    """Qwen2-VL / Qwen2.5-VL (`AutoModelForImageTextToText` picks the class from config.json)."""

    def __init__(self, config: CaptionerConfig):
        self.config = config
        self.path: Path = resolve_model(config.model, "captioner (Qwen2-VL)")

    @cached_property
    def _model(self):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = AutoModelForImageTextToText.from_pretrained(
            self.path, dtype=getattr(torch, self.config.dtype)
        )
        return model.to(self.config.device).eval(), AutoProcessor.from_pretrained(self.path)

    def generate(self, frames: list[np.ndarray]) -> str:
        """The model's raw reply for the given frames (RGB uint8), greedy."""
        import torch
        from PIL import Image

        model, processor = self._model
        content = [{"type": "image"} for _ in frames] + [{"type": "text", "text": PROMPT}]
        text = processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True
        )
        images = [Image.fromarray(f) for f in frames]
        inputs = processor(text=[text], images=images, return_tensors="pt").to(self.config.device)
        with torch.no_grad():
            out = model.generate(
                **inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False
            )
        return processor.batch_decode(
            out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
        )[0]

    def caption(self, frames: list[np.ndarray]) -> Caption:
        """Caption and subjects; `CaptionUnparsableError` when the reply is not the asked JSON."""
        return parse_caption_reply(self.generate(frames), self.config.max_subjects)
