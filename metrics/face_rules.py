"""OpenS2V-Eval's FaceSim rules, shared by `face_sim_cur`, `face_sim_arc` and `face_sim_dlib`.

Everything here is reproduced from the official `eval/get_facesim.py` (OpenS2V-Nexus v1.1,
commit 8cb7427 = fork 210eb08) and kept free of any face model, so the three metrics differ
only in the detector / embedder they plug in:

- which cases are scored (`is_face_case`) and which reference shows the face (`face_reference`),
- the largest detected face, ties going to the later one (`largest_face`),
- the grey pad-and-retry on a miss, keypoints shifted back (`detect_with_pad_retry`),
- per-frame `max(0, cos)` (`frame_scores`) and the video mean, where Cur drops zero scores
  and Arc keeps them (`video_score`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from kaleido_bench.core.cases import Case, ReferenceImage
from kaleido_bench.core.errors import MissingImageError
from kaleido_bench.core.images import rgb_image
from kaleido_bench.metrics.embedding_cache import EmbeddingCache

#: `process_video_files`: a video is scored only when its name contains one of these.
FACE_CASE_KEYWORDS: tuple[str, ...] = ("singlehuman", "singleface", "faceobj", "humanobj")
#: `get_image_path_from_json`: the first `img_paths` entry containing one of these is the face.
FACE_REFERENCE_DIRS: tuple[str, ...] = ("/man/", "/woman/", "/crop_man/", "/crop_woman/")
#: `pad_np_bgr_image(scale=1.25)`: 25% of the height / width on each side, grey.
PAD_FRACTION = 0.25
PAD_VALUE = 128
#: `sample_video_frames(num_frames=32)`.
NUM_FRAMES = 32

F = TypeVar("F")


def is_face_case(case_id: str) -> bool:
    """True for the case families OpenS2V scores with FaceSim (a substring test on the id)."""
    return any(keyword in case_id for keyword in FACE_CASE_KEYWORDS)


def face_reference(case: Case) -> ReferenceImage | None:
    """The FIRST reference whose suite path contains /man/, /woman/, /crop_man/ or /crop_woman/."""
    for reference in case.references:
        relpath = reference.relpath.replace("\\", "/")
        if any(folder in relpath for folder in FACE_REFERENCE_DIRS):
            return reference
    return None


def absent_reason(case: Case) -> str | None:
    """Why FaceSim does not apply to `case` (None when it does); the official script skips these."""
    if not is_face_case(case.id):
        return (
            f"case {case.id!r} is not a face case (OpenS2V scores FaceSim only for ids containing "
            f"{', '.join(FACE_CASE_KEYWORDS)})"
        )
    if face_reference(case) is None:
        return f"case {case.id!r} has no reference under {', '.join(FACE_REFERENCE_DIRS)}"
    return None


def box_area(box: Sequence[float]) -> float:
    """`(x2 - x1) * (y2 - y1)`, the key `get_face_keypoints` sorts faces by."""
    return float((box[2] - box[0]) * (box[3] - box[1]))


def largest_face(faces: Sequence[F], box: Callable[[F], Sequence[float]]) -> F | None:
    """The face with the largest box; among equal areas the LATER one.

    The official code takes `sorted(faces, key=area)[-1]`: Python's sort is stable, so the last
    of several equal areas wins.
    """
    best: F | None = None
    best_area = -np.inf
    for face in faces:
        area = box_area(box(face))
        if area >= best_area:
            best, best_area = face, area
    return best


def pad_image(image: np.ndarray, fraction: float = PAD_FRACTION, value: int = PAD_VALUE):
    """Grey border of `int(fraction * h)` rows and `int(fraction * w)` columns on each side.

    Returns the padded image and the `(left, top)` offset to subtract from coordinates found in it
    (`cv2.copyMakeBorder(..., BORDER_CONSTANT, value=(128, 128, 128))` in `pad_np_bgr_image`).
    """
    height, width = image.shape[:2]
    top, left = int(height * fraction), int(width * fraction)
    padded = np.full(
        (height + 2 * top, width + 2 * left, *image.shape[2:]), value, dtype=image.dtype
    )
    padded[top : top + height, left : left + width] = image
    return padded, (left, top)


def shift_points(points: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """Map (x, y) points found in the padded image back to the original one (`kps -= (left, top)`)."""
    points = np.asarray(points)
    return (points - np.asarray(offset)).astype(points.dtype, copy=False)


@dataclass(frozen=True)
class PadHit(Generic[F]):
    """The face `detect_with_pad_retry` chose, in the coordinates of the image it was found in.

    `offset` is (0, 0) when the face was found in the image itself, else the pad's (left, top):
    recognisers that work on the padded image (ArcFace) re-pad with `pad_image`; those that
    work on the original (CurricularFace) shift the keypoints back with `shift_points`.
    """

    face: F
    offset: tuple[int, int] = (0, 0)

    @property
    def padded(self) -> bool:
        return self.offset != (0, 0)


def detect_with_pad_retry(
    image: np.ndarray,
    detect: Callable[[np.ndarray], Sequence[F]],
    box: Callable[[F], Sequence[float]],
) -> PadHit[F] | None:
    """`process_image`'s search: the largest face, else the largest face after grey padding, else None."""
    face = largest_face(detect(image), box)
    if face is not None:
        return PadHit(face)
    padded, offset = pad_image(image)
    face = largest_face(detect(padded), box)
    return None if face is None else PadHit(face, offset)


def cosine(reference: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Cosine of one reference embedding against (N, D) frame embeddings.

    Computed with `torch.nn.functional.cosine_similarity` in float32, the op the official
    `batch_cosine_similarity` uses, so per-frame values match it to float32 rounding.
    """
    import torch

    ref = torch.as_tensor(np.asarray(reference, dtype=np.float32))
    rows = torch.as_tensor(np.asarray(frames, dtype=np.float32)).reshape(-1, ref.shape[-1])
    return torch.nn.functional.cosine_similarity(ref.unsqueeze(0), rows, dim=-1).numpy()


def frame_scores(reference: np.ndarray, frames: np.ndarray) -> list[float]:
    """Per-frame `max(0, cos)` as Python floats (the official `.item()` of a float32)."""
    if len(frames) == 0:
        return []
    return [max(0.0, float(value)) for value in cosine(reference, frames)]


def video_score(scores: Sequence[float], *, drop_zeros: bool) -> float:
    """Mean of the scored frames; 0.0 when none is left.

    `drop_zeros=True` is Cur's rule (`if cur_score != 0.0: append`); Arc's guard compares the
    LIST to 0.0 (`if arc_scores != 0.0`), which is always true, so Arc keeps zero frames.
    Frames without a face never reach this list (`continue` in `process_video`).
    """
    kept = [s for s in scores if not (drop_zeros and s == 0.0)]
    return float(np.mean(kept)) if kept else 0.0


def reference_embedding(
    path: str | Path,
    model_id: str,
    preprocess_id: str,
    embed: Callable[[Path], np.ndarray | None],
    cache: EmbeddingCache,
) -> np.ndarray | None:
    """A reference's embedding, computed once per run, or None when it shows no face.

    Goes through the run's `EmbeddingCache` (key: sha256 of the file's bytes, model id,
    preprocessing id), so every case and video sharing a reference file reuses one embedding.
    `embed(path)` returns None for "no face"; that answer is cached too, as a one-element NaN row.
    """

    def compute(paths: list[Path]) -> np.ndarray:
        rows = [embed(p) for p in paths]
        width = max((len(r) for r in rows if r is not None), default=1)
        no_face = np.full(width, np.nan, dtype=np.float32)
        return np.stack([no_face if r is None else np.asarray(r, np.float32) for r in rows])

    row = cache.embeddings([path], model_id, preprocess_id, compute)[0].numpy()
    return None if np.isnan(row).all() else row


def load_reference_rgb(path: str | Path) -> np.ndarray:
    """The reference as the official script reads it: PIL `convert("RGB")` (alpha dropped)."""
    from PIL import Image

    if not Path(path).is_file():
        raise MissingImageError(f"reference image {path} does not exist")
    with Image.open(path) as image:
        return np.array(rgb_image(image, path))  # 16-bit greyscale scaled, not clipped


def per_sampled_frame(video, compute: Callable[[np.ndarray], F], n: int = NUM_FRAMES) -> list[F]:
    """`compute` on each of OpenS2V's `n` linspace frames (RGB), once per DISTINCT frame index.

    Videos shorter than `n` frames repeat indices; the repeats reuse the first result.
    """
    done: dict[int, F] = {}
    results: list[F] = []
    sampled = video.linspace(n)  # only these frames are decoded for a video too large to hold whole
    for position, index in enumerate(video.linspace_indices(n).tolist()):
        if index not in done:
            done[index] = compute(sampled[position])
        results.append(done[index])
    return results
