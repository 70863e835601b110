"""Cross-pair synthesis (SPEC.md section 1, "Data pipeline"): a new background behind the
subject (diffusers `FluxFillPipeline`, prompt from the VLM) and a new pose or view (diffusers
`FluxPriorReduxPipeline` + `FluxPipeline`, the Redux image-variation recipe), then one of
{cut-out, inpainted, re-posed} per subject, drawn with configured probabilities, so a training
sample's references are other instances than the target video's frames."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from kaleido_bench.kaleido.data.models import resolve_model
from kaleido_bench.kaleido.data.records import KINDS


def _dtype(name: str):
    import torch

    return getattr(torch, name)


def _square(
    image: np.ndarray, mask: np.ndarray | None, size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """`image` padded with white to a square and resized to size x size (mask alike)."""
    import cv2

    h, w = image.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    canvas[top : top + h, left : left + w] = image
    out = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    if mask is None:
        return out, None
    full = np.zeros((side, side), dtype=np.uint8)
    full[top : top + h, left : left + w] = mask
    return out, cv2.resize(full, (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)


@dataclass(frozen=True)
class InpainterConfig:
    model: str = "black-forest-labs/FLUX.1-Fill-dev"  # folder or HF repo id
    size: int = 512  # square output; a multiple of 16 for FLUX
    steps: int = 28
    guidance_scale: float = 30.0  # FLUX Fill's documented default
    max_sequence_length: int = 512
    default_background: str = "a sunlit park"  # when the VLM proposed no background
    device: str = "cpu"
    dtype: str = "float32"


class Inpainter:
    """Paints a new background around the subject: FLUX Fill with the mask = not-subject."""

    def __init__(self, config: InpainterConfig):
        self.config = config
        self.path = resolve_model(config.model, "inpainter (FLUX.1 Fill)")

    @cached_property
    def _pipe(self):
        from diffusers import FluxFillPipeline

        pipe = FluxFillPipeline.from_pretrained(self.path, dtype=_dtype(self.config.dtype))
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(self.config.device)

    def inpaint(
        self, cutout: np.ndarray, mask: np.ndarray, label: str, background: str, seed: int
    ) -> np.ndarray:
        """`label` kept pixel for pixel, everything else repainted as `background` (RGB uint8)."""
        import torch
        from PIL import Image

        image, subject = _square(cutout, mask, self.config.size)
        out = self._pipe(
            prompt=f"{label} in {background or self.config.default_background}",
            image=Image.fromarray(image),
            mask_image=Image.fromarray((~subject).astype(np.uint8) * 255),
            height=self.config.size,
            width=self.config.size,
            num_inference_steps=self.config.steps,
            guidance_scale=self.config.guidance_scale,
            max_sequence_length=self.config.max_sequence_length,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        ).images[0]
        painted = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
        return np.where(subject[..., None], image, painted)


@dataclass(frozen=True)
class ReposerConfig:
    model: str = "black-forest-labs/FLUX.1-dev"  # base FLUX (text encoders, transformer, VAE)
    redux_model: str = "black-forest-labs/FLUX.1-Redux-dev"  # SigLIP + Redux image embedder
    size: int = 512
    steps: int = 28
    guidance_scale: float = 2.5  # the Redux model card's setting
    device: str = "cpu"
    dtype: str = "float32"


class Reposer:
    """A new view of the subject: Redux turns the cut-out into FLUX prompt embeddings (with the
    label as text), FLUX samples a new image from them (diffusers' Redux recipe)."""

    def __init__(self, config: ReposerConfig):
        self.config = config
        self.path = resolve_model(config.model, "re-poser (FLUX.1)")
        self.redux_path = resolve_model(config.redux_model, "re-poser (FLUX.1 Redux)")

    @cached_property
    def _pipes(self):
        from diffusers import FluxPipeline, FluxPriorReduxPipeline

        dtype = _dtype(self.config.dtype)
        base = FluxPipeline.from_pretrained(self.path, dtype=dtype).to(self.config.device)
        redux = FluxPriorReduxPipeline.from_pretrained(
            self.redux_path,
            text_encoder=base.text_encoder,
            tokenizer=base.tokenizer,
            text_encoder_2=base.text_encoder_2,
            tokenizer_2=base.tokenizer_2,
            dtype=dtype,
        ).to(self.config.device)
        base.set_progress_bar_config(disable=True)
        return base, redux

    def repose(self, cutout: np.ndarray, label: str, seed: int) -> np.ndarray:
        import torch
        from PIL import Image

        base, redux = self._pipes
        image, _ = _square(cutout, None, self.config.size)
        prior = redux(
            image=Image.fromarray(image),
            prompt=f"{label}, a different pose and view, plain background",
        )
        out = base(
            prompt_embeds=prior.prompt_embeds,
            pooled_prompt_embeds=prior.pooled_prompt_embeds,
            height=self.config.size,
            width=self.config.size,
            num_inference_steps=self.config.steps,
            guidance_scale=self.config.guidance_scale,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np",
        ).images[0]
        return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


@dataclass(frozen=True)
class MixConfig:
    """Probabilities of each reference kind (renormalised over the kinds that survived the
    filters) and the seed of the draw."""

    cutout: float = 0.2
    inpainted: float = 0.4
    reposed: float = 0.4
    seed: int = 0


def subject_seed(seed: int, sample_id: str, index: int) -> int:
    """A seed fixed by (run seed, sample, subject): reruns and resumed runs draw the same."""
    digest = hashlib.sha256(f"{seed}/{sample_id}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def choose_kind(available: list[str], mix: MixConfig, seed: int) -> str | None:
    """One kind from `available`, with `mix`'s probabilities renormalised over them (None when
    none is available or all have probability 0)."""
    weights = np.array(
        [getattr(mix, k) if k in available else 0.0 for k in KINDS], dtype=np.float64
    )
    if weights.sum() <= 0:
        return None
    return str(np.random.default_rng(seed).choice(KINDS, p=weights / weights.sum()))
