"""Every model stage of the data pipeline loads its tiny random model from `save_pretrained`
files (the released weights' path) and runs on packaged photos; the caption parser, the kind
draw and the config loader on their own."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from skimage import data

from kaleido_bench.kaleido.data.captioner import (
    Captioner,
    CaptionerConfig,
    CaptionUnparsableError,
    parse_caption_reply,
)
from kaleido_bench.kaleido.data.detector import DetectorConfig, SubjectDetector
from kaleido_bench.kaleido.data.models import DataModelNotFoundError, resolve_model
from kaleido_bench.kaleido.data.pipeline import PipelineConfig, load_config
from kaleido_bench.kaleido.data.records import Box
from kaleido_bench.kaleido.data.segmenter import Segmenter, SegmenterConfig, cutout_on_white
from kaleido_bench.kaleido.data.synthesis import (
    Inpainter,
    InpainterConfig,
    MixConfig,
    Reposer,
    ReposerConfig,
    choose_kind,
    subject_seed,
)


def test_a_missing_model_names_the_repo_and_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(DataModelNotFoundError, match=r"hf download nobody/no-such-vlm"):
        resolve_model("nobody/no-such-vlm", "captioner")
    with pytest.raises(DataModelNotFoundError, match="does not exist"):
        resolve_model(tmp_path / "missing" / "folder", "segmenter")
    with pytest.raises(DataModelNotFoundError, match="hf download"):
        Captioner(CaptionerConfig(model="nobody/no-such-vlm"))


def test_caption_parser_reads_json_in_prose_and_rejects_the_rest():
    reply = 'Sure! ```json\n{"caption": "A cat naps.", "subjects": ["cat", "cat", " sofa ", 3], "backgrounds": ["a beach"]}\n```'
    caption = parse_caption_reply(reply)
    assert (
        caption.text == "A cat naps."
        and caption.subjects == ("cat", "sofa")
        and caption.backgrounds == ("a beach",)
    )
    many = json.dumps({"caption": "x", "subjects": ["a", "b", "c", "d"]})
    assert parse_caption_reply(many, max_subjects=2).subjects == ("a", "b")
    for bad in ('" ] " ] " ]', '{"caption": "x"}', '{"caption": "", "subjects": ["a"]}', '{"caption": "x", "subjects": []}',
                '{"caption": "x", "subjects": "cat"}', "[1, 2]", '{"caption": "x", "subjects": ["a"'):  # fmt: skip
        with pytest.raises(CaptionUnparsableError):
            parse_caption_reply(bad)


def test_captioner_generates_text_with_the_tiny_qwen2_vl(data_models):
    captioner = Captioner(CaptionerConfig(model=str(data_models["qwen2_vl"]), max_new_tokens=6))
    reply = captioner.generate([data.chelsea(), data.coffee()])
    assert isinstance(reply, str) and reply.strip()
    assert captioner.generate([data.chelsea(), data.coffee()]) == reply  # greedy
    with pytest.raises(CaptionUnparsableError):  # random weights write no JSON
        captioner.caption([data.chelsea()])


def test_detector_boxes_a_subject_inside_the_frame(data_models):
    image = data.chelsea()
    detector = SubjectDetector(
        DetectorConfig(
            model=str(data_models["grounding_dino"]), box_threshold=0.0, text_threshold=0.0
        )
    )
    box, score = detector.detect(image, "cat")
    h, w = image.shape[:2]
    assert 0 <= box.x0 < box.x1 <= w and 0 <= box.y0 < box.y1 <= h and 0 <= score <= 1
    strict = SubjectDetector(
        DetectorConfig(model=str(data_models["grounding_dino"]), box_threshold=1.01)
    )
    assert strict.detect(image, "cat") is None


def test_segmenter_masks_stay_in_their_boxes_and_cutouts_are_on_white(data_models):
    image = data.astronaut()
    boxes = [Box(100, 50, 400, 450), Box(0, 0, 200, 200)]
    masks = Segmenter(SegmenterConfig(model=str(data_models["sam"]))).segment(image, boxes)
    assert [m.shape for m in masks] == [image.shape[:2]] * 2
    for mask, box in zip(masks, boxes):
        assert mask.any()
        outside = mask.copy()
        outside[int(box.y0) : int(box.y1), int(box.x0) : int(box.x1)] = False
        assert not outside.any()
    cutout, crop_mask = cutout_on_white(image, masks[0], boxes[0])
    assert cutout.shape == (400, 300, 3) and crop_mask.shape == (400, 300)
    assert (cutout[~crop_mask] == 255).all() and (
        cutout[crop_mask] == image[50:450, 100:400][crop_mask]
    ).all()


def _disc_cutout() -> tuple[np.ndarray, np.ndarray]:
    photo = data.chelsea()[50:250, 100:300]
    yy, xx = np.mgrid[:200, :200]
    mask = (yy - 100) ** 2 + (xx - 100) ** 2 < 70**2
    return np.where(mask[..., None], photo, 255).astype(np.uint8), mask


def test_inpainter_repaints_only_the_background(data_models):
    cutout, mask = _disc_cutout()
    inpainter = Inpainter(
        InpainterConfig(
            model=str(data_models["flux_fill"]), size=32, steps=2, max_sequence_length=16
        )
    )
    out = inpainter.inpaint(cutout, mask, "cat", "a beach", seed=0)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    import cv2

    small = cv2.resize(cutout, (32, 32), interpolation=cv2.INTER_AREA)
    subject = cv2.resize(mask.astype(np.uint8), (32, 32), interpolation=cv2.INTER_NEAREST).astype(
        bool
    )
    assert (out[subject] == small[subject]).all()  # the subject is kept pixel for pixel
    assert np.abs(out[~subject].astype(int) - 255).mean() > 5  # the white background is gone
    assert (inpainter.inpaint(cutout, mask, "cat", "a beach", seed=0) == out).all()


def test_reposer_makes_a_seeded_new_view(data_models):
    cutout, _ = _disc_cutout()
    reposer = Reposer(
        ReposerConfig(
            model=str(data_models["flux"]),
            redux_model=str(data_models["flux_redux"]),
            size=32,
            steps=2,
        )
    )
    a, b = reposer.repose(cutout, "cat", seed=0), reposer.repose(cutout, "cat", seed=1)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert (reposer.repose(cutout, "cat", seed=0) == a).all() and not (a == b).all()


def test_kind_draw_is_seeded_follows_the_probabilities_and_skips_missing_kinds():
    mix = MixConfig(cutout=0.2, inpainted=0.3, reposed=0.5)
    all_kinds = ["cutout", "inpainted", "reposed"]
    draws = Counter(
        choose_kind(all_kinds, mix, subject_seed(0, f"clip{i}", 0)) for i in range(3000)
    )
    for kind, p in (("cutout", 0.2), ("inpainted", 0.3), ("reposed", 0.5)):
        assert abs(draws[kind] / 3000 - p) < 0.04
    assert choose_kind(all_kinds, mix, 7) == choose_kind(all_kinds, mix, 7)
    assert {choose_kind(["cutout", "inpainted"], mix, s) for s in range(200)} == {
        "cutout",
        "inpainted",
    }
    assert choose_kind(["reposed"], MixConfig(cutout=1, inpainted=0, reposed=0), 0) is None
    assert subject_seed(0, "a", 0) != subject_seed(0, "a", 1) != subject_seed(1, "a", 1)


def test_config_file_sets_nested_stage_options_and_refuses_unknown_ones(tmp_path):
    path = tmp_path / "pipeline.json"
    path.write_text(
        json.dumps({"workers": 2, "filters": {"min_mean_luminance": 10}, "mix": {"seed": 3}})
    )
    config = load_config(path)
    assert config.workers == 2 and config.filters.min_mean_luminance == 10 and config.mix.seed == 3
    assert config.captioner == PipelineConfig().captioner
    assert load_config(path).on("cuda", "bfloat16").reposer.device == "cuda"
    path.write_text(json.dumps({"filters": {"min_luma": 10}}))
    with pytest.raises(ValueError, match="unknown FilterConfig option"):
        load_config(path)
