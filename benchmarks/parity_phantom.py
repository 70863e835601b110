"""Our Phantom-Wan pipeline (`baselines/wan/phantom.py`) against the release's own `Phantom_Wan_S2V.generate`.

Both sides get the same random weights in the release's formats: a small `WanModel` (Wan's
T2V DiT; ours reads its state dict through the strict Wan -> diffusers key map) and a real-size
Wan VAE (`WanVAE_`, saved as `Wan2.1_VAE.pth`; ours converts it with diffusers). The references
go through the release's `load_ref_images` (its source, taken from `generate.py`) on its side
and through ours on ours. umT5 is left out on purpose (5.7 B parameters; its port is checked in
tests/kaleido/test_umt5.py): both sides get the same made-up prompt states. Everything runs
in fp32 on the CPU, where the release's seeded generator draws the same noise as ours.

Shims, all on the release's side and only to run it without a GPU: `torch.cuda.current_device`
(a default argument evaluated at import), `flash_attention` replaced by PyTorch's SDPA (the
release's own fallback in `modules/attention.py` `attention()`; no padding here, so no mask is
lost), `offload_model=False`. Example:

    python benchmarks/parity_phantom.py --official /path/to/Phantom --json results/parity/phantom.json
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from kaleido_bench.baselines.wan.phantom import (
    PHANTOM_1_3B,
    PhantomConfig,
    PhantomPipeline,
    load_phantom_transformer,
)
from kaleido_bench.kaleido.config import TransformerConfig, VaeConfig
from kaleido_bench.kaleido.vae import load_vae

#: a small Wan T2V DiT (head dim 12 keeps Wan's 4/4/4 RoPE split), real latent and VAE sizes
DIT = {"dim": 24, "ffn_dim": 48, "freq_dim": 16, "num_heads": 2, "num_layers": 2, "text_dim": 32}
OURS = TransformerConfig(num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16, text_dim=32,
                         freq_dim=16, ffn_dim=48, num_layers=2)  # fmt: skip


def import_release(checkout: Path):
    """The release's modules, with the two CPU shims described in the module docstring."""
    sys.path.insert(0, str(checkout))
    torch.cuda.current_device = lambda: 0  # t5.py evaluates it as a default argument at import

    import phantom_wan.modules.model as wan_model
    import phantom_wan.modules.vae as wan_vae
    import phantom_wan.subject2video as s2v

    def sdpa(q, k, v, q_lens=None, k_lens=None, **_):
        out = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        return out.transpose(1, 2).contiguous()

    wan_model.flash_attention = sdpa
    return s2v, wan_model, wan_vae


def release_load_ref_images(checkout: Path):
    """`load_ref_images` from the release's generate.py, compiled alone (the module imports DashScope)."""
    tree = ast.parse((checkout / "generate.py").read_text())
    (node,) = [
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "load_ref_images"
    ]
    namespace: dict = {}
    from PIL import ImageOps

    exec(
        compile(ast.Module([node], []), "generate.py", "exec"),
        {"Image": Image, "ImageOps": ImageOps},
        namespace,
    )
    return namespace["load_ref_images"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--official", type=Path, required=True, help="checkout of Phantom-video/Phantom"
    )
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--width", type=int, default=80)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/parity_phantom"))
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--label", help="how to name the checkout in the report (e.g. its repository and commit)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    s2v, wan_model, wan_vae = import_release(args.official)
    args.work.mkdir(parents=True, exist_ok=True)

    # the same random weights, written in the release's formats
    torch.manual_seed(0)
    dit = wan_model.WanModel(model_type="t2v", **DIT).eval()
    # Wan's init_weights zeroes the output head and every bias: the network would return 0 and
    # both sides would only step pure noise. Perturb every tensor so each one matters.
    with torch.no_grad():
        for param in dit.parameters():
            param.add_(0.05 * torch.randn_like(param))
    torch.save(dit.state_dict(), args.work / "Phantom-Wan-tiny.pth")
    vae_model = wan_vae.WanVAE_(dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                temperal_downsample=[False, True, True], dropout=0.0)  # fmt: skip
    torch.save(vae_model.state_dict(), args.work / "Wan2.1_VAE.pth")

    # references: two real photos from scikit-image, saved as files for the release's loader
    from skimage import data

    paths = []
    for name, array in (("astronaut", data.astronaut()), ("coffee", data.coffee())):
        paths.append(args.work / f"{name}.png")
        Image.fromarray(array).save(paths[-1])
    g = torch.Generator().manual_seed(1)
    prompt_states = torch.randn(20, 32, generator=g)  # a 20-token prompt
    negative_states = torch.randn(35, 32, generator=g)

    # the release: Phantom_Wan_S2V without its __init__ (that one wants CUDA, umT5 and FSDP)
    release = s2v.Phantom_Wan_S2V.__new__(s2v.Phantom_Wan_S2V)
    cpu = torch.device("cpu")

    class Text:  # the release's T5EncoderModel interface: list of [L_i, C] states
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
    release.text_encoder = Text()
    release.vae = wan_vae.WanVAE(
        vae_pth=str(args.work / "Wan2.1_VAE.pth"), dtype=torch.float32, device="cpu"
    )
    release.model = wan_model.WanModel(model_type="t2v", **DIT).eval()
    release.model.load_state_dict(torch.load(args.work / "Phantom-Wan-tiny.pth"), strict=True)
    captured = {}
    decode = release.vae.decode
    release.vae.decode = lambda zs: (
        captured.setdefault("latents", zs[0].clone()) is not None and decode(zs)
    )
    refs = release_load_ref_images(args.official)(
        ",".join(map(str, paths)), (args.width, args.height)
    )
    theirs = release.generate("PROMPT", refs, size=(args.width, args.height), frame_num=args.frames, shift=5.0,
                              sampling_steps=args.steps, guide_scale_img=5.0, guide_scale_text=7.5,
                              n_prompt="", seed=args.seed, offload_model=False)  # fmt: skip

    # ours: the same files through our loaders
    config = PhantomConfig(
        "parity", OURS, VaeConfig(), PHANTOM_1_3B.text_encoder, PHANTOM_1_3B.sampling
    )
    transformer = load_phantom_transformer(
        args.work / "Phantom-Wan-tiny.pth", OURS, dtype=torch.float32
    )

    class OurText(torch.nn.Module):
        def encode(self, prompts):
            out = torch.zeros(len(prompts), 512, 32)
            for row, text in enumerate(prompts):
                states = prompt_states if text == "PROMPT" else negative_states
                out[row, : len(states)] = states
            return out

    ours = PhantomPipeline(transformer, load_vae(args.work, VaeConfig()), OurText(), config, cpu)
    images = [Image.open(p).convert("RGB") for p in paths]
    ours.decode, decode_ours = (lambda latents: latents), ours.decode
    latents = ours("PROMPT", images, height=args.height, width=args.width, num_frames=args.frames,
                   num_steps=args.steps, seed=args.seed, negative_prompt="NEGATIVE")  # fmt: skip
    frames_ours = decode_ours(latents)
    # the starting noise of the video frames (same generator call as both pipelines), to show the DiT moved it
    k = len(images)
    shape = (16, (args.frames - 1) // 4 + 1 + k, args.height // 8, args.width // 8)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))[:, :-k]
    frames_theirs = (
        (((theirs.float() + 1) / 2).clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 3, 0).numpy()
    )

    from kaleido_bench.kaleido.references import reference_pixels

    ref_theirs = torch.stack([torch.from_numpy(np.asarray(r, dtype=np.float32)) for r in refs])
    ref_ours = torch.stack([torch.from_numpy(np.asarray(reference_pixels([im], args.height, args.width)[0, :, 0]
                                                        .permute(1, 2, 0).add(1).mul(127.5).round().numpy()))
                            for im in images])  # fmt: skip
    report = {
        "official": args.label or str(args.official),
        "video": f"{args.height}x{args.width}x{args.frames}, {args.steps} steps, 2 references, seed {args.seed}",
        "reference_pixels_max_abs_diff": float((ref_theirs - ref_ours).abs().max()),
        "final_latents_max_abs_diff": float((captured["latents"] - latents[0]).abs().max()),
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
