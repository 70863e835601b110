"""The pipeline's stages as Ray Data callable classes (`map_batches(StageClass, concurrency=n)`):
each actor loads its model once and handles batches of rows `{sample_id, state}`, `state`
being a pickled `SampleState`. A rejected sample passes through later stages untouched; every
model call is recorded in `state.stages`, so a resumed run can be checked to redo nothing. The
driver writes the results (`shards.py`): only it needs to see the output folder."""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np

from kaleido_bench.kaleido.data.captioner import (
    CAPTION_UNPARSABLE,
    Captioner,
    CaptionerConfig,
    CaptionUnparsableError,
)
from kaleido_bench.kaleido.data.detector import DetectorConfig, SubjectDetector
from kaleido_bench.kaleido.data.filters import (
    REASONS,
    ClipScorer,
    FaceDetector,
    FilterConfig,
    box_size_ok,
    cutout_failures,
    overlapping_subjects,
)
from kaleido_bench.kaleido.data.records import SampleState, SubjectState
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
from kaleido_bench.kaleido.data.video import read_frames, sample_frames

NO_SUBJECT_LEFT = "no subject left"


def unpack(batch: dict[str, Any]) -> list[SampleState]:
    return [pickle.loads(blob) for blob in batch["state"]]


def pack(states: list[SampleState]) -> dict[str, np.ndarray]:
    blobs = np.empty(len(states), dtype=object)
    blobs[:] = [pickle.dumps(s) for s in states]
    return {"sample_id": np.array([s.sample_id for s in states]), "state": blobs}


class _Stage:
    name = "stage"

    def process(self, state: SampleState) -> None:
        raise NotImplementedError

    def __call__(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        states = unpack(batch)
        for state in states:
            if not state.rejected:
                state.stages.append(self.name)
                start = time.perf_counter()
                self.process(state)
                state.stage_seconds.append(time.perf_counter() - start)
                if not state.rejected and not state.live_subjects():
                    state.reject(self.name, NO_SUBJECT_LEFT)
        return pack(states)


class CaptionStage(_Stage):
    """Key frame, caption and subjects. Subjects given with the clip (`injected_subjects`) skip
    the VLM; then `caption` comes with them."""

    name = "caption"

    def __init__(self, config: CaptionerConfig, caption_frames: int = 3):
        self.captioner, self.caption_frames = Captioner(config), caption_frames

    def process(self, state: SampleState) -> None:
        try:
            frames = read_frames(state.video_path)
        except Exception as exc:
            state.reject(self.name, f"unreadable video ({type(exc).__name__})")
            return
        state.key_frame = frames[len(frames) // 2]
        if state.injected_subjects is None:
            try:
                caption = self.captioner.caption(sample_frames(frames, self.caption_frames))
            except CaptionUnparsableError:
                state.reject(self.name, CAPTION_UNPARSABLE)
                return
            state.caption, state.background_prompts = caption.text, list(caption.backgrounds)
            labels = list(caption.subjects)
        else:
            labels = state.injected_subjects
        state.subjects = [SubjectState(label) for label in labels]


class DetectStage(_Stage):
    """A box per subject, then the box-size and overlap filters."""

    name = "detect"

    def __init__(self, config: DetectorConfig, filters: FilterConfig):
        self.detector, self.filters = SubjectDetector(config), filters

    def process(self, state: SampleState) -> None:
        frame = state.key_frame
        for subject in state.subjects:
            found = self.detector.detect(frame, subject.label)
            if found is None:
                state.drop_subject(subject, self.name, "not detected")
            elif not box_size_ok(found[0], frame.shape[:2], self.filters.min_box_area_fraction):
                subject.box = found[0]
                state.drop_subject(subject, self.name, REASONS["box_size"])
            else:
                subject.box = found[0]
        live = state.live_subjects()
        for i in sorted(overlapping_subjects([s.box for s in live], self.filters.max_subject_iou)):
            state.drop_subject(live[i], self.name, REASONS["overlap"])


class _Filtered(_Stage):
    def __init__(self, filters: FilterConfig, device: str):
        self.filters = filters
        self.clip = ClipScorer(filters.clip_model, device)
        self.faces = FaceDetector(filters.face_upsample)

    def failures(self, label: str, image: np.ndarray, mask: np.ndarray | None) -> list[str]:
        return cutout_failures(label, image, mask, self.filters, self.clip, self.faces)


class CutoutStage(_Filtered):
    """SAM masks from the boxes, cut-outs on white, and the cut-out filters."""

    name = "cutout"

    def __init__(self, config: SegmenterConfig, filters: FilterConfig):
        super().__init__(filters, config.device)
        self.segmenter = Segmenter(config)

    def process(self, state: SampleState) -> None:
        live = state.live_subjects()
        masks = self.segmenter.segment(state.key_frame, [s.box for s in live])
        for subject, mask in zip(live, masks):
            cutout, crop_mask = cutout_on_white(state.key_frame, mask, subject.box)
            subject.mask = crop_mask
            failed = self.failures(subject.label, cutout, crop_mask)
            if failed:
                state.drop_subject(subject, self.name, REASONS[failed[0]])
            else:
                subject.variants["cutout"] = cutout
        state.key_frame = None  # not needed downstream: keeps the rows small


class InpaintStage(_Filtered):
    """A new background behind each subject (prompt: the VLM's proposed scenes), filtered again."""

    name = "inpaint"

    def __init__(self, config: InpainterConfig, filters: FilterConfig, seed: int = 0):
        super().__init__(filters, config.device)
        self.inpainter, self.seed = Inpainter(config), seed

    def process(self, state: SampleState) -> None:
        for i, subject in enumerate(state.live_subjects()):
            scenes = state.background_prompts or [""]
            seed = subject_seed(self.seed, state.sample_id, i)
            image = self.inpainter.inpaint(
                subject.variants["cutout"],
                subject.mask,
                subject.label,
                scenes[seed % len(scenes)],
                seed,
            )
            failed = self.failures(subject.label, image, None)
            if failed:
                state.rejections.append(
                    _variant_rejection(self.name, "inpainted", failed[0], subject.label)
                )
            else:
                subject.variants["inpainted"] = image


class ReposeStage(_Filtered):
    """A new pose / view of each subject, filtered again; then one kind per subject is drawn."""

    name = "repose"

    def __init__(self, config: ReposerConfig, filters: FilterConfig, mix: MixConfig):
        super().__init__(filters, config.device)
        self.reposer, self.mix = Reposer(config), mix

    def process(self, state: SampleState) -> None:
        for i, subject in enumerate(state.live_subjects()):
            seed = subject_seed(self.mix.seed, state.sample_id, i)
            image = self.reposer.repose(subject.variants["cutout"], subject.label, seed)
            failed = self.failures(subject.label, image, None)
            if failed:
                state.rejections.append(
                    _variant_rejection(self.name, "reposed", failed[0], subject.label)
                )
            else:
                subject.variants["reposed"] = image
            kind = choose_kind(list(subject.variants), self.mix, seed)
            if kind is None:
                state.drop_subject(subject, self.name, "no reference kind left")
            else:
                state.chosen.append((subject.label, kind))
            subject.variants = {k: v for k, v in subject.variants.items() if k == kind}
            subject.mask = None  # only the chosen image travels back to the writer


def _variant_rejection(stage: str, kind: str, filter_name: str, label: str):
    from kaleido_bench.kaleido.data.records import Rejection

    return Rejection(stage, f"{kind}: {REASONS[filter_name]}", label)
