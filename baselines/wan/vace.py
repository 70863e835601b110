"""VACE (ali-vilab/VACE, Wan2.1-VACE) through diffusers' `WanVACEPipeline`: loading, a tiny model, one call.

The release (ali-vilab/VACE at 48eb44f) runs reference-to-video as `vace/vace_wan_inference.py`
with `--src_ref_images a.png,b.png` and no source video. What that does, and what diffusers does:

- Defaults (`vace_wan_inference.py` `validate_args` / `get_parser`): 50 steps, shift 16, guide
  scale 5.0, solver `unipc`, 81 frames, `sample_fps` 16 (`configs/shared_config.py`), negative
  prompt = Wan's `sample_neg_prompt` (`wan_vace.py` `generate`: an empty `n_prompt` becomes it).
  Size: the release's `480p` key is `(480, 832)` as (W, H) in Wan's convention, i.e. portrait;
  ours is 480x832 (H x W, landscape), the size of every other model in the benchmark (`-o
  height=832 -o width=480` gives the release's).
- No source video: a zero (mid-grey) video and an all-ones mask (`prepare_source`; diffusers'
  `preprocess_conditions` does the same).
- References (`wan_vace.py` `prepare_source`): `Image.open().convert("RGB")`, to [-1, 1], then,
  unless already H x W, resized with `F.interpolate(mode="bilinear", align_corners=False)` by
  scale = min(H / h, W / w) to (int(h * scale), int(w * scale)) and pasted centred (top/left =
  delta // 2) on a WHITE canvas (ones in [-1, 1]). diffusers (`pipeline_wan_vace.py`
  `preprocess_conditions`) does the same after one extra step: its `VaeImageProcessor` first
  resizes each image to its own size rounded DOWN to a multiple of 8 (LANCZOS), so a
  reference's fitted size can differ from the release's by a few pixels.
- Each reference is VAE-encoded alone as one frame, paired with zeros in the reactive channels
  and put IN FRONT of the control latents (`vace_encode_frames`); the mask gets K zero frames in
  front; the noise has K extra latent frames, trimmed off before decoding (`decode_latent`).
- CFG: cond and uncond both see the same control context (`generate`:
  `noise_pred_uncond + guide_scale * (cond - uncond)`), the VACE context scale 1.0.
- Sampler: Wan's FlowUniPC, reproduced exactly by `baselines/wan/scheduler.py`; the release
  keeps the VAE in fp32 (Wan's `WanVAE`), as diffusers' docs recommend too.

Checked end to end against the release's `WanVace.generate` with the same random weights
(`benchmarks/parity_vace.py`, `results/parity/vace.json`): identical reference canvases, final
latents within 6.1e-6 in fp32.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kaleido_bench.baselines.wan.scheduler import wan_release_scheduler
from kaleido_bench.kaleido.config import KALEIDO_TINY, WAN_NEGATIVE_PROMPT

TINY_SEED = 20250314
#: tiny prompts are padded to this many tokens (the real pipeline: 512, Wan's `text_len`)
TINY_TEXT_LEN = KALEIDO_TINY.text_encoder.text_len


def tiny_tokenizer():
    """A byte-level `PreTrainedTokenizerFast` built in code (no files): pad 0, eos 1, unk 2, one token a byte.

    Offline stand-in for umT5's SentencePiece tokenizer, so the tiny model runs diffusers'
    own text path (`_get_t5_prompt_embeds`) unchanged.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{char: i + 3 for i, char in enumerate(alphabet)}}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def release_transformer_kwargs(size: str) -> dict:
    """`WanVACETransformer3DModel` arguments of the released models, for random real-size builds.

    Wan2.1 T2V DiTs (VACE's `configs/wan_t2v_{1_3B,14B}.py`) plus VACE blocks: `VaceWanModel`
    puts one after every 2nd layer by default (`modules/model.py`: `range(0, num_layers, 2)`,
    1.3B), the 14B after every 5th; `vace_in_dim` 96 = 16 + 16 latent channels + 64 mask.
    """
    from kaleido_bench.kaleido.config import TransformerConfig

    if size == "1.3B":
        config = TransformerConfig(
            num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30
        )
        layers = list(range(0, 30, 2))
    elif size == "14B":
        config, layers = TransformerConfig(), list(range(0, 40, 5))
    else:
        raise ValueError(f"VACE comes in 1.3B and 14B, not {size!r}")
    return {**config.diffusers_kwargs(), "vace_layers": layers, "vace_in_channels": 96}


def tiny_transformer_kwargs() -> dict:
    """`WanVACETransformer3DModel` at Kaleido's tiny widths; VACE blocks after layers 0 and 1.

    `vace_in_channels` = 2 z_dim (inactive + reactive latents) + 64 (the 8 x 8 mask patch).
    """
    t, z = KALEIDO_TINY.transformer, KALEIDO_TINY.vae.z_dim
    return {**t.diffusers_kwargs(), "vace_layers": [0, 1], "vace_in_channels": 2 * z + 64}


def build_tiny_pipeline(*, shift: float = 16.0, seed: int = TINY_SEED, device: str = "cpu"):
    """A random `WanVACEPipeline` (fixed seed): tiny VACE DiT, tiny Wan VAE, tiny umT5, byte tokenizer."""
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    from kaleido_bench.kaleido.text_encoder import build_umt5
    from kaleido_bench.kaleido.vae import build_vae

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = WanVACETransformer3DModel(**tiny_transformer_kwargs()).eval()
    vae = build_vae(KALEIDO_TINY.vae, seed=seed + 1)
    text_encoder = build_umt5(KALEIDO_TINY.text_encoder, seed=seed + 2)
    pipe = WanVACEPipeline(
        tiny_tokenizer(), text_encoder, vae, wan_release_scheduler(shift), transformer
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_pipeline(root: Path, *, shift: float, dtype: torch.dtype = torch.bfloat16, vae_dtype: torch.dtype = torch.float32,
                  device: str = "cuda", offload: bool = False):  # fmt: skip
    """`Wan-AI/Wan2.1-VACE-{1.3B,14B}-diffusers` from a local folder, with the release's sampler."""
    from diffusers import AutoencoderKLWan, WanVACEPipeline

    vae = AutoencoderKLWan.from_pretrained(str(root), subfolder="vae", dtype=vae_dtype)
    pipe = WanVACEPipeline.from_pretrained(str(root), vae=vae, dtype=dtype)
    pipe.scheduler = wan_release_scheduler(shift)  # the folder ships diffusers' grid (flow_shift 3)
    pipe.set_progress_bar_config(disable=True)
    if offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def generate(pipe, prompt: str, references: Sequence[Image.Image], *, height: int, width: int, num_frames: int,
             num_steps: int, guidance_scale: float, seed: int, negative_prompt: str = WAN_NEGATIVE_PROMPT,
             max_sequence_length: int = 512) -> np.ndarray:  # fmt: skip
    """One video as (T, H, W, 3) uint8: diffusers' [0, 1] frames x 255, truncated as Wan's `cache_video`."""
    output = pipe(
        prompt=prompt,
        negative_prompt=negative_prompt,
        reference_images=list(references) or None,
        height=height,
        width=width,
        num_frames=num_frames,
        num_inference_steps=num_steps,
        guidance_scale=guidance_scale,
        generator=torch.Generator("cpu").manual_seed(
            int(seed)
        ),  # noise drawn on the CPU: any device, same noise
        output_type="np",
        max_sequence_length=max_sequence_length,
    )
    frames = np.asarray(output.frames[0], dtype=np.float32)
    return (np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)


def reference_canvases(
    pipe, references: Sequence[Image.Image], height: int, width: int
) -> torch.Tensor:
    """(K, 3, H, W) in [-1, 1]: the fitted, white-padded references exactly as the pipeline builds them."""
    _, _, canvases = pipe.preprocess_conditions(
        None, None, list(references), 1, height, width, 5, torch.float32, "cpu"
    )
    return torch.stack(canvases[0])
