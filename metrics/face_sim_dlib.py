"""FaceSim-dlib: OpenS2V's FaceSim rules with dlib's ResNet face descriptor.

Why it exists: the official FaceSim models (insightface buffalo_l, CurricularFace IR-101)
cannot be downloaded on offline machines, while dlib's 128-d descriptor, its landmark model
and its detectors ship in the `face_recognition_models` pip package. This metric keeps every
rule of `eval/get_facesim.py` (see `face_rules`) and swaps the models, so it is a working
identity score everywhere, NOT a parity number: do not compare it with published FaceSim.

Pipeline per image (RGB): HOG (default) or CNN (MMOD) detector (upsampled only when needed), largest face (later one on a
tie), on a miss grey 25% padding and one retry, 5-point landmarks and the descriptor on the
image the face was found in (padded after a retry, like ArcFace's embedding), cosine to the
reference, `max(0, cos)` per frame, mean over frames with a face (zeros kept: dlib has no
official aggregation, and keeping zeros is the plain mean, as Arc does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import face_rules
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.embedding_cache import EmbeddingCache
from kaleido_bench.metrics.weights import WeightFile, reading_weight_file, resolve

PACKAGE = "face_recognition_models"
_PACKAGE_URL = (
    "https://github.com/ageitgey/face_recognition_models/raw/master/face_recognition_models/models/"
)
_SHIPPED = f"ships in the pip package {PACKAGE} (its models/ folder)"

DLIB_RECOGNITION = WeightFile(
    filename="dlib/dlib_face_recognition_resnet_model_v1.dat",
    description=f"dlib ResNet 128-d face descriptor; {_SHIPPED}",
    url=_PACKAGE_URL + "dlib_face_recognition_resnet_model_v1.dat",
    package=f"{PACKAGE}:models/dlib_face_recognition_resnet_model_v1.dat",
)
DLIB_LANDMARKS_5 = WeightFile(
    filename="dlib/shape_predictor_5_face_landmarks.dat",
    description=f"dlib 5-point face landmarks; {_SHIPPED}",
    url=_PACKAGE_URL + "shape_predictor_5_face_landmarks.dat",
    package=f"{PACKAGE}:models/shape_predictor_5_face_landmarks.dat",
)
DLIB_CNN_DETECTOR = WeightFile(
    filename="dlib/mmod_human_face_detector.dat",
    description=f"dlib CNN (MMOD) face detector, used with detector='cnn'; {_SHIPPED}",
    url=_PACKAGE_URL + "mmod_human_face_detector.dat",
    package=f"{PACKAGE}:models/mmod_human_face_detector.dat",
)

DETECTORS = ("hog", "cnn")
PAD = face_rules.PAD_FRACTION


def _box(face: Any) -> tuple[int, int, int, int]:
    rect = getattr(face, "rect", face)  # the CNN detector returns mmod_rectangles
    return rect.left(), rect.top(), rect.right(), rect.bottom()


@register_metric("face_sim_dlib")
class FaceSimDlib(Metric):
    """OpenS2V FaceSim rules with dlib's offline descriptor (options: detector, upsample, model_dir)."""

    description = (
        "Face identity (OpenS2V FaceSim rules) with dlib's ResNet descriptor; works offline"
    )
    weights = (DLIB_RECOGNITION, DLIB_LANDMARKS_5, DLIB_CNN_DETECTOR)
    option_names = frozenset({"detector", "model_dir", "upsample", "num_frames"})
    needs = Needs(frames="sampled", resource="cpu")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.detector_kind = str(options.get("detector", "hog"))
        if self.detector_kind not in DETECTORS:
            raise ValueError(
                f"face_sim_dlib detector must be one of {DETECTORS}, got {self.detector_kind!r}"
            )
        self.upsample = int(options.get("upsample", 1))
        self.num_frames = int(options.get("num_frames", face_rules.NUM_FRAMES))
        self._detector = self._landmarks = self._recognizer = None

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "detector": self.detector_kind,
            "upsample": self.upsample,
            "num_frames": self.num_frames,
        }

    def explicit_path(self, weight: WeightFile) -> Path | None:
        folder = self.options.get("model_dir")
        return Path(folder) / Path(weight.filename).name if folder else None

    def _weight_path(self, weight: WeightFile) -> Path:
        """Option `model_dir` first, then the installed package, the weights dir, the hub cache."""
        return resolve(weight, self.explicit_path(weight), metric=self.name)

    def setup(self, context: ScoringContext) -> None:
        """Resolve the model files (package folder first) and load them once."""
        import dlib

        recognition, landmarks = (
            self._weight_path(DLIB_RECOGNITION),
            self._weight_path(DLIB_LANDMARKS_5),
        )
        with reading_weight_file(recognition, metric=self.name):
            self._recognizer = dlib.face_recognition_model_v1(str(recognition))
        with reading_weight_file(landmarks, metric=self.name):
            self._landmarks = dlib.shape_predictor(str(landmarks))
        if self.detector_kind == "cnn":
            detector = self._weight_path(DLIB_CNN_DETECTOR)
            with reading_weight_file(detector, metric=self.name):
                self._detector = dlib.cnn_face_detection_model_v1(str(detector))
        else:
            self._detector = dlib.get_frontal_face_detector()

    @property
    def _model_key(self) -> str:
        return f"{self.detector_kind}-up{self.upsample}-pad{PAD}"

    def _detect(self, image: np.ndarray) -> list:
        """Faces at upsampling 0, then 1, ... `upsample` until some are found.

        A single upsample-1 pass (face_recognition's default, faces down to ~40 px) costs 4x a
        plain pass; faces of 80 px and more are found without it, and then the largest face is
        the same, so the finer passes run only on frames where the coarse one finds nothing.
        """
        for times in range(self.upsample + 1):
            faces = list(self._detector(image, times))
            if faces:
                return faces
        return []

    def describe(self, rgb: np.ndarray) -> np.ndarray | None:
        """The descriptor of the largest face in `rgb` (grey-pad retry on a miss), or None."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        hit = face_rules.detect_with_pad_retry(rgb, self._detect, _box)
        if hit is None:
            return None
        image = face_rules.pad_image(rgb)[0] if hit.padded else rgb
        rect = getattr(hit.face, "rect", hit.face)
        shape = self._landmarks(image, rect)
        return np.asarray(self._recognizer.compute_face_descriptor(image, shape), dtype=np.float32)

    def _reference_descriptor(self, path: Path, cache: EmbeddingCache) -> np.ndarray | None:
        return face_rules.reference_embedding(
            path,
            "dlib_face_recognition_resnet_model_v1",
            f"opens2v-facesim/{self._model_key}",
            lambda p: self.describe(face_rules.load_reference_rgb(p)),
            cache,
        )

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        reason = face_rules.absent_reason(case)
        if reason is not None:
            return MetricResult.absent(reason)
        reference = face_rules.face_reference(case)
        assert reference is not None
        ref_descriptor = self._reference_descriptor(reference.path, context.cache)
        if ref_descriptor is None:
            return MetricResult.absent(
                f"no face found in reference {reference.relpath}", reference=reference.relpath
            )
        descriptors = video.cached(
            ("face_sim_dlib", self._model_key, self.num_frames),
            lambda: face_rules.per_sampled_frame(video, self.describe, self.num_frames),
        )
        found = [d for d in descriptors if d is not None]
        scores = face_rules.frame_scores(ref_descriptor, np.stack(found)) if found else []
        it = iter(scores)
        per_frame = [None if d is None else next(it) for d in descriptors]
        return MetricResult(
            face_rules.video_score(scores, drop_zeros=False),
            {
                "reference": reference.relpath,
                "frames_sampled": len(descriptors),
                "frames_with_face": len(found),
                "frame_scores": per_frame,
            },
        )
