"""The records one clip carries through the pipeline: its subjects, their cut-outs and
synthesised variants, and every rejection with its reason (the funnel is counted from these)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The three instances a reference can come from (SPEC.md section 1, "Data pipeline").
KINDS = ("cutout", "inpainted", "reposed")


@dataclass(frozen=True)
class Box:
    """A box in pixels, corners (x0, y0) inclusive and (x1, y1) exclusive."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


@dataclass(frozen=True)
class Rejection:
    """Why a sample or one of its subjects (`subject` = its label) was dropped, and by which stage."""

    stage: str
    reason: str
    subject: str | None = None


@dataclass
class SubjectState:
    """One subject of a clip as it moves through the stages (mutable: each stage fills a part)."""

    label: str
    box: Box | None = None
    mask: np.ndarray | None = None  # bool HxW over the key frame
    variants: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> RGB uint8 image
    dropped: bool = False


@dataclass
class SampleState:
    """One clip: its id, source, caption, subjects, the stages that ran and what was rejected."""

    sample_id: str
    video_path: str
    caption: str = ""
    background_prompts: list[str] = field(default_factory=list)
    key_frame: np.ndarray | None = None  # RGB uint8
    subjects: list[SubjectState] = field(default_factory=list)
    injected_subjects: list[str] | None = None
    rejections: list[Rejection] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)  # model stages that processed this sample
    stage_seconds: list[float] = field(default_factory=list)  # time in each of `stages`
    rejected: bool = False
    chosen: list[tuple[str, str]] = field(default_factory=list)  # (label, kind) per reference

    def reject(self, stage: str, reason: str) -> None:
        self.rejected = True
        self.rejections.append(Rejection(stage, reason))

    def drop_subject(self, subject: SubjectState, stage: str, reason: str) -> None:
        subject.dropped = True
        self.rejections.append(Rejection(stage, reason, subject.label))

    def live_subjects(self) -> list[SubjectState]:
        return [s for s in self.subjects if not s.dropped]
