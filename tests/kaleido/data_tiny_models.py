"""Tiny random models for every data-pipeline stage, saved in their real formats
(`save_pretrained`) so the stages load them through the same code path as the released weights.
Used by tests/kaleido/test_data_*.py and benchmarks/data_pipeline_speed.py."""

from __future__ import annotations

from pathlib import Path

import torch


def _word_tokenizer(words: list[str], specials: list[str] = (), **tokens):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, additional_special_tokens=list(specials), **tokens
    )


QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def write_qwen2_vl(folder: Path, seed: int = 0) -> Path:
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    specials = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    words = specials + [
        "<unk>",
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        '"',
        "caption",
        "subjects",
        "a",
        "cat",
        "person",
        "cup",
    ]
    ids = {w: i for i, w in enumerate(words)}
    tokenizer = _word_tokenizer(
        words, specials, unk_token="<unk>", pad_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN_TEMPLATE,
    )
    config = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(words), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=4, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    torch.manual_seed(seed)
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_grounding_dino(folder: Path, seed: int = 0) -> Path:
    from transformers import (
        BertConfig,
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        ".",
        "a",
        "cat",
        "person",
        "cup",
        "woman",
        "man",
        "dog",
    ]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(
            size={"shortest_edge": 128, "longest_edge": 192}
        ),
        tokenizer=BertTokenizerFast(vocab_file=str(folder / "vocab.txt")),
    )
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(window_size=7, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1], image_size=64,
                                   out_features=["stage2", "stage3", "stage4"], out_indices=[2, 3, 4]),
        text_config=BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=16, max_position_embeddings=64),
        d_model=32, num_queries=10, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=16, decoder_ffn_dim=16,
        encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=4, encoder_n_points=2,
        decoder_n_points=2, max_text_len=32,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(config)
    with torch.no_grad():  # random weights, but subject-sized boxes: widen every box head's w/h
        for head in model.bbox_embed:
            head.layers[-1].bias[2:] = 3.0
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def write_sam(folder: Path, seed: int = 0) -> Path:
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    config = SamConfig(
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                           output_channels=16, image_size=64, patch_size=8, global_attn_indexes=[0],
                           num_pos_feats=8, mlp_dim=32, window_size=2),
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=16,
                                 iou_head_hidden_dim=8),
    )  # fmt: skip
    torch.manual_seed(seed)
    SamModel(config).save_pretrained(folder)
    SamProcessor(
        SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                          mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16})
    ).save_pretrained(folder)  # fmt: skip
    return folder


def write_clip(folder: Path, seed: int = 0) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    words = [
        "<pad>",
        "</s>",
        "<unk>",
        "<s>",
        "a",
        "cat",
        "person",
        "cup",
        "woman",
        "man",
        "mug",
        "photo",
        "of",
    ]
    config = CLIPConfig(
        text_config=dict(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=3, eos_token_id=1, pad_token_id=0),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    tokenizer = _word_tokenizer(
        words,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
        model_max_length=32,
    )
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def _flux_parts(in_channels: int, seed: int) -> dict:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    words = [
        "<pad>",
        "</s>",
        "<unk>",
        "<s>",
        "a",
        "cat",
        "person",
        "cup",
        "on",
        "in",
        "the",
        "beach",
        "park",
        "room",
        "plain",
        "background",
    ]
    tokenizer = dict(
        unk_token="<unk>", pad_token="<pad>", eos_token="</s>", bos_token="<s>", model_max_length=77
    )
    torch.manual_seed(seed)
    return dict(
        transformer=FluxTransformer2DModel(
            patch_size=1, in_channels=in_channels, out_channels=8, num_layers=1, num_single_layers=1,
            attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32,
            axes_dims_rope=[4, 4, 8]),
        text_encoder=CLIPTextModel(CLIPTextConfig(
            bos_token_id=3, eos_token_id=1, pad_token_id=0, hidden_size=32, intermediate_size=37,
            num_attention_heads=4, num_hidden_layers=2, vocab_size=len(words), projection_dim=32)),
        text_encoder_2=T5EncoderModel(T5Config(
            vocab_size=len(words), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
            decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)),
        tokenizer=_word_tokenizer(words, **tokenizer),
        tokenizer_2=_word_tokenizer(words, **tokenizer),
        vae=AutoencoderKL(
            sample_size=32, in_channels=3, out_channels=3, block_out_channels=(4,), layers_per_block=1,
            latent_channels=2, norm_num_groups=1, use_quant_conv=False, use_post_quant_conv=False,
            shift_factor=0.0609, scaling_factor=1.5035),
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )  # fmt: skip


def write_flux_fill(folder: Path, seed: int = 0) -> Path:
    """diffusers' own tiny FLUX Fill test shapes (tests/pipelines/flux/test_pipeline_flux_fill.py):
    20 input channels = 8 packed latents + 8 packed masked-image latents + 4 packed mask."""
    from diffusers import FluxFillPipeline

    FluxFillPipeline(**_flux_parts(20, seed)).save_pretrained(folder)
    return folder


def write_flux(folder: Path, seed: int = 1) -> Path:
    from diffusers import FluxPipeline

    FluxPipeline(**_flux_parts(8, seed)).save_pretrained(folder)
    return folder


def write_flux_redux(folder: Path, seed: int = 2) -> Path:
    """SigLIP vision tower + Redux embedder projecting into the tiny FLUX's 32-wide text space."""
    from diffusers import FluxPriorReduxPipeline
    from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    siglip = SiglipVisionModel(SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, image_size=32, patch_size=8))  # fmt: skip
    FluxPriorReduxPipeline(
        image_encoder=siglip,
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
        image_embedder=ReduxImageEncoder(redux_dim=16, txt_in_features=32),
    ).save_pretrained(folder)
    return folder


def write_all(root: Path) -> dict[str, Path]:
    """Every stage's tiny model under `root` (one folder each)."""
    root.mkdir(parents=True, exist_ok=True)
    writers = {"qwen2_vl": write_qwen2_vl, "grounding_dino": write_grounding_dino, "sam": write_sam, "clip": write_clip,
               "flux_fill": write_flux_fill, "flux": write_flux, "flux_redux": write_flux_redux}  # fmt: skip
    return {name: write(root / name) for name, write in writers.items()}


def tiny_pipeline_config(models: dict[str, Path], **overrides):
    """A `PipelineConfig` on the tiny models: small images, 1-2 diffusion steps, and thresholds of
    the model-driven filters (detector score, CLIP similarity) opened up, since random weights
    score at random; the image filters keep their defaults."""
    from dataclasses import replace

    from kaleido_bench.kaleido.data.captioner import CaptionerConfig
    from kaleido_bench.kaleido.data.detector import DetectorConfig
    from kaleido_bench.kaleido.data.filters import FilterConfig
    from kaleido_bench.kaleido.data.pipeline import PipelineConfig
    from kaleido_bench.kaleido.data.segmenter import SegmenterConfig
    from kaleido_bench.kaleido.data.synthesis import InpainterConfig, ReposerConfig

    config = PipelineConfig(
        captioner=CaptionerConfig(model=str(models["qwen2_vl"]), max_new_tokens=8),
        detector=DetectorConfig(
            model=str(models["grounding_dino"]), box_threshold=0.0, text_threshold=0.0
        ),
        segmenter=SegmenterConfig(model=str(models["sam"])),
        inpainter=InpainterConfig(
            model=str(models["flux_fill"]), size=32, steps=1, max_sequence_length=16
        ),
        reposer=ReposerConfig(
            model=str(models["flux"]), redux_model=str(models["flux_redux"]), size=32, steps=1
        ),
        filters=FilterConfig(clip_model=str(models["clip"]), min_clip_similarity=-1.0),
        caption_frames=1,
        shard_size=1,
    )
    return replace(config, **overrides)
