"""diffusers' `WanVACEPipeline` as `vace-*` configures it, against the VACE release's `WanVace.generate`.

Both sides get the same random weights in the release's formats: a small `VaceWanModel` (VACE's
`vace/models/wan/modules/model.py`; diffusers' single-file converter renames it into
`WanVACETransformer3DModel`, loaded strictly) and a Wan VAE of Wan's structure at base width 8
instead of 96 (`WanVAE_`, saved as `Wan2.1_VAE.pth`; ours converts it with diffusers). References go through the release's
`prepare_source` on its side and diffusers' `preprocess_conditions` on ours; they are real
photos whose sizes are multiples of 8 (skimage astronaut 512x512, coffee 400x600), where
diffusers' extra rounding step is a no-op (see `baselines/wan/vace.py`). The sampler is ours
(`WanReleaseUniPCScheduler`, shift 16) against the release's. umT5 is left out (its port is
checked in tests/kaleido/test_umt5.py): both sides get the same made-up prompt states. The
release only accepts 480x832 and 720x1280 areas (`prepare_source`), so this runs at 480x832,
5 frames, on the CPU in fp32, where the release's seeded generator draws the same noise as ours.

Shims, all on the release's side and only to run it without a GPU: `torch.cuda.current_device`
(a default argument evaluated at import), `_video_vae` given the small width, `flash_attention` replaced by PyTorch's SDPA (the
release's own fallback in Wan's `modules/attention.py`; no padding here), `offload_model=False`.
Needs the VACE checkout and a Wan2.1 checkout (VACE imports the `wan` package). Example:

    python benchmarks/parity_vace.py --vace /path/to/VACE --wan /path/to/Wan2.1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

#: a small Wan T2V DiT with VACE blocks after layers 0 and 1 (head dim 12: Wan's 4/4/4 RoPE split)
DIT = {"dim": 24, "ffn_dim": 48, "freq_dim": 16, "num_heads": 2, "num_layers": 2, "text_dim": 32}
#: the VAE keeps Wan's structure (z 16, dim_mult 1,2,4,4, 2 res blocks, t4 x h8 x w8) at a CPU-sized width
VAE_DIM = 8


def import_release(vace: Path, wan: Path):
    sys.path[:0] = [str(wan), str(vace / "vace")]
    torch.cuda.current_device = lambda: 0  # t5.py evaluates it as a default argument at import

    import models.wan.modules.model as vace_model
    import models.wan.wan_vace as wan_vace
    import wan.modules.model as wan_model
    import wan.modules.vae as wan_vae

    def sdpa(q, k, v, q_lens=None, k_lens=None, **_):
        out = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        return out.transpose(1, 2).contiguous()

    wan_model.flash_attention = sdpa
    # Wan's VAE structure at base width VAE_DIM instead of 96 (`_video_vae` takes config overrides)
    video_vae = wan_vae._video_vae
    wan_vae._video_vae = lambda pretrained_path=None, z_dim=None, **kw: video_vae(
        pretrained_path, z_dim, dim=VAE_DIM, **kw
    )
    return wan_vace, vace_model, wan_vae


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vace", type=Path, required=True, help="checkout of ali-vilab/VACE")
    parser.add_argument("--wan", type=Path, required=True, help="checkout of Wan-Video/Wan2.1")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/parity_vace"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--label", help="how to name the checkouts in the report")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    wan_vace, vace_model, wan_vae = import_release(args.vace, args.wan)
    args.work.mkdir(parents=True, exist_ok=True)
    height, width, cpu = 480, 832, torch.device("cpu")

    torch.manual_seed(0)
    dit = vace_model.VaceWanModel(
        vace_layers=[0, 1], vace_in_dim=96, model_type="t2v", **DIT
    ).eval()
    with (
        torch.no_grad()
    ):  # Wan zero-initialises heads, biases and VACE projections: make every tensor matter
        for param in dit.parameters():
            param.add_(0.05 * torch.randn_like(param))
    vae_model = wan_vae.WanVAE_(dim=VAE_DIM, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                temperal_downsample=[False, True, True], dropout=0.0)  # fmt: skip
    torch.save(vae_model.state_dict(), args.work / "Wan2.1_VAE.pth")

    from skimage import data

    paths = []
    for name, array in (("astronaut", data.astronaut()), ("coffee", data.coffee())):
        paths.append(args.work / f"{name}.png")
        Image.fromarray(array).save(paths[-1])
    g = torch.Generator().manual_seed(1)
    prompt_states, negative_states = (
        torch.randn(20, 32, generator=g),
        torch.randn(35, 32, generator=g),
    )

    # the release, without its __init__ (that one wants CUDA, umT5 and the checkpoint folder)
    release = wan_vace.WanVace.__new__(wan_vace.WanVace)

    class Text:
        model = torch.nn.Identity()

        def __call__(self, texts, device):
            return [prompt_states if t == "PROMPT" else negative_states for t in texts]

    release.device, release.rank, release.t5_cpu, release.sp_size = cpu, 0, False, 1
    release.num_train_timesteps, release.param_dtype = 1000, torch.float32
    release.vae_stride, release.patch_size, release.sample_neg_prompt = (
        (4, 8, 8),
        (1, 2, 2),
        "NEGATIVE",
    )
    release.text_encoder, release.model = Text(), dit
    release.vae = wan_vae.WanVAE(
        vae_pth=str(args.work / "Wan2.1_VAE.pth"), dtype=torch.float32, device="cpu"
    )
    release.vid_proc = wan_vace.VaceVideoProcessor(downsample=(4, 16, 16), min_area=480 * 832, max_area=480 * 832,
                                                   min_fps=16, max_fps=16, zero_start=True, seq_len=32760,
                                                   keep_last=True)  # fmt: skip
    src_video, src_mask, src_refs = release.prepare_source([None], [None], [[str(p) for p in paths]], args.frames,
                                                           (width, height), cpu)  # fmt: skip
    captured = {}
    decode = release.vae.decode
    release.vae.decode = lambda zs: (
        captured.setdefault("latents", zs[0].clone()) is not None and decode(zs)
    )
    theirs = release.generate("PROMPT", src_video, src_mask, src_refs, size=(width, height), frame_num=args.frames,
                              shift=16, sample_solver="unipc", sampling_steps=args.steps, guide_scale=5.0,
                              n_prompt="", seed=args.seed, offload_model=False)  # fmt: skip

    # ours: diffusers' pipeline on the same files, the way baselines/wan/vace.py builds and calls it
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    from kaleido_bench.baselines.wan.scheduler import wan_release_scheduler
    from kaleido_bench.baselines.wan.vace import tiny_tokenizer
    from kaleido_bench.kaleido.config import TransformerConfig, VaeConfig
    from kaleido_bench.kaleido.vae import load_vae

    ours_config = TransformerConfig(num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
                                    text_dim=32, freq_dim=16, ffn_dim=48, num_layers=2)  # fmt: skip
    transformer = WanVACETransformer3DModel(
        **ours_config.diffusers_kwargs(), vace_layers=[0, 1], vace_in_channels=96
    )
    state = convert_wan_transformer_to_diffusers(dict(dit.state_dict()))
    transformer.load_state_dict(state, strict=True)
    final = {}

    def keep_latents(
        pipeline, step, timestep, tensors
    ):  # the pipeline's latents after its last step
        final["latents"] = tensors["latents"].clone()
        return tensors

    pipe = WanVACEPipeline(tiny_tokenizer(), None, load_vae(args.work, VaeConfig(base_dim=VAE_DIM)), wan_release_scheduler(16.0),
                           transformer.eval())  # fmt: skip
    pipe.set_progress_bar_config(disable=True)

    def padded(states):
        out = torch.zeros(1, 512, 32)
        out[0, : len(states)] = states
        return out

    images = [Image.open(p).convert("RGB") for p in paths]
    common = dict(reference_images=images, height=height, width=width, num_frames=args.frames,
                  num_inference_steps=args.steps, guidance_scale=5.0, prompt_embeds=padded(prompt_states),
                  negative_prompt_embeds=padded(negative_states), callback_on_step_end=keep_latents)  # fmt: skip
    video = pipe(
        **common, generator=torch.Generator("cpu").manual_seed(args.seed), output_type="np"
    ).frames[0]
    k = len(images)
    frames_ours = (np.clip(video, 0, 1) * 255).astype(np.uint8)
    frames_theirs = (
        (((theirs.float() + 1) / 2).clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 3, 0).numpy()
    )
    _, _, canvases = pipe.preprocess_conditions(
        None, None, images, 1, height, width, args.frames, torch.float32, "cpu"
    )
    ref_ours = torch.stack(canvases[0])
    ref_theirs = torch.stack([r[:, 0] for r in src_refs[0]])
    noise = torch.randn(16, (args.frames - 1) // 4 + 1 + k, height // 8, width // 8,
                        generator=torch.Generator().manual_seed(args.seed))[:, k:]  # fmt: skip
    report = {
        "official": args.label or f"{args.vace} + {args.wan}",
        "video": f"{height}x{width}x{args.frames}, {args.steps} steps, {k} references, seed {args.seed}",
        "reference_canvas_max_abs_diff": float((ref_ours - ref_theirs).abs().max()),
        "final_latents_max_abs_diff": float(
            (final["latents"][0, :, k:] - captured["latents"]).abs().max()
        ),
        "final_latents_abs_mean": float(captured["latents"].abs().mean()),
        "final_latents_vs_initial_noise_abs_mean": float(
            (captured["latents"] - noise).abs().mean()
        ),
        "frames_max_abs_diff_uint8": int(
            np.abs(frames_ours.astype(int) - frames_theirs.astype(int)).max()
        ),
        "frames_equal_fraction": float((frames_ours == frames_theirs).mean()),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
