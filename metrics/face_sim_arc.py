"""FaceSim-Arc (OpenS2V-Eval): insightface buffalo_l's ArcFace embedding under the FaceSim rules.

Reproduces the `arc_score` of the official `eval/get_facesim.py` (OpenS2V-Nexus v1.1, commit
8cb7427 = fork 210eb08). This module also owns the buffalo_l face search that FaceSim-Cur
reuses (`InsightFaceFaces`): `FaceAnalysis("buffalo_l")` through onnxruntime, det_size
(320, 320), det_thresh 0.5, BGR frames at native size, the largest face (ties: the later one),
and on a miss a grey 25% pad and one retry (`face_rules`). Detections are cached on the
`DecodedVideo`, so a run scoring both Arc and Cur detects each frame once.

Arc's own part: the embedding insightface computes during the search, i.e. on the PADDED
image with the padded keypoints after a retry, used raw (cosine does not need it normalised);
per frame `max(0, cos)`; the mean KEEPS zero scores (the official guard compares the score
list, not the score, to 0.0); frames without a face are skipped; no scored frame gives 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.cases import Case
from kaleido_bench.core.errors import WeightsMissingError
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import face_rules
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.embedding_cache import EmbeddingCache
from kaleido_bench.metrics.weights import WeightFile, reading_weight_file, resolve, weights_dir

PACK_NAME = "buffalo_l"
PACK_FILES = ("det_10g.onnx", "w600k_r50.onnx")  # SCRFD-10G detector, ArcFace R50 (WebFace600K)
DET_SIZE = (320, 320)
DET_THRESH = 0.5
BUFFALO_L_ZIP = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"

#: insightface's `FaceAnalysis(root=R)` reads `R/models/buffalo_l/*.onnx`; the resolved folder
#: (weights dir entry, or the hub snapshot) has that layout and is passed as R.
BUFFALO_L = WeightFile(
    filename="insightface_buffalo_l",
    description=(
        "insightface buffalo_l model pack (det_10g.onnx + w600k_r50.onnx) laid out as "
        f"<root>/models/{PACK_NAME}/; the same files as insightface's {BUFFALO_L_ZIP} "
        "(unzip into <root>/models/buffalo_l) or OpenS2V-Weight's face_extractor/ folder"
    ),
    repo_id="public-data/insightface",
    snapshot=True,
    allow_patterns=tuple(f"models/{PACK_NAME}/{name}" for name in PACK_FILES),
)


def pack_location(path: str | Path) -> tuple[str, Path]:
    """(`name`, `root`) for `FaceAnalysis` from a resolved folder, checking the files are there.

    Accepts `<root>` (holding `models/buffalo_l`), OpenS2V-Weight's checkout (holding
    `face_extractor/models/buffalo_l`) or the `buffalo_l` folder itself. Raises
    `WeightsMissingError` rather than let insightface start a download.
    """
    path = Path(path).expanduser()
    candidates = [
        path / "models" / PACK_NAME,
        path / "face_extractor" / "models" / PACK_NAME,
        path,
    ]
    for folder in candidates:
        if all((folder / name).is_file() for name in PACK_FILES):
            if folder.parent.name == "models":
                return PACK_NAME, folder.parent.parent
            # a bare pack folder: an absolute `name` wins in insightface's os.path.join(root, "models", name)
            return str(folder.resolve()), folder.parent
    raise WeightsMissingError(
        f"missing weights {PACK_NAME} ({', '.join(PACK_FILES)}) for metric face_sim_arc / face_sim_cur: "
        f"{path} holds no models/{PACK_NAME}/ with them. Get it with `kaleido-bench weights download "
        f"face_sim_arc` on a connected machine, or unzip {BUFFALO_L_ZIP} into "
        f"{weights_dir() / BUFFALO_L.filename / 'models' / PACK_NAME}"
    )


def _providers(device: str) -> tuple[list[str], int]:
    if device.startswith("cuda"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], index
    return ["CPUExecutionProvider"], -1


class InsightFaceFaces:
    """buffalo_l's face search with OpenS2V's settings and rules, shared by Arc and Cur.

    Wraps a prepared `FaceAnalysis` (`app`): its `det_model` finds faces exactly as
    `FaceAnalysis.get` does, and its recognition model gives the ArcFace embedding on demand,
    so Cur does not pay for ArcFace. `key` names the models and settings in cache keys.
    """

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.key = key
        self.preprocess_id = (
            f"opens2v-facesim/det{DET_SIZE[0]}-t{DET_THRESH}-pad{face_rules.PAD_FRACTION}"
        )

    def detect(self, bgr: np.ndarray) -> list:
        """All faces (insightface `Face`: bbox, kps, det_score), as `FaceAnalysis.get` finds them."""
        from insightface.app.common import Face

        bboxes, kpss = self.app.det_model.detect(bgr, max_num=0, metric="default")
        return [
            Face(bbox=bboxes[i, 0:4], kps=None if kpss is None else kpss[i], det_score=bboxes[i, 4])
            for i in range(bboxes.shape[0])
        ]

    def find(self, rgb: np.ndarray) -> face_rules.PadHit | None:
        """The face OpenS2V scores in an RGB image: largest, with the grey-pad retry."""
        return face_rules.detect_with_pad_retry(to_bgr(rgb), self.detect, lambda face: face.bbox)

    def video_faces(self, video: DecodedVideo, num_frames: int = face_rules.NUM_FRAMES) -> list:
        """`find` on the 32 linspace frames, computed once per video for every metric using it."""
        return video.cached(
            ("opens2v_insightface_faces", self.key, num_frames),
            lambda: face_rules.per_sampled_frame(video, self.find, num_frames),
        )

    def reference(
        self, path: Path, cache: EmbeddingCache
    ) -> tuple[np.ndarray, face_rules.PadHit | None]:
        """(BGR image, face or None) of a reference file, searched once per file content and `key`.

        Kept in the run's `EmbeddingCache`, so `cache.clear()` forgets it too.
        """

        def search() -> tuple[np.ndarray, face_rules.PadHit | None]:
            rgb = face_rules.load_reference_rgb(path)
            return to_bgr(rgb), self.find(rgb)

        return cache.derived(path, f"insightface-reference/{self.key}/{self.preprocess_id}", search)

    def arc_embedding(self, bgr: np.ndarray, hit: face_rules.PadHit) -> np.ndarray:
        """insightface's raw ArcFace embedding, from the image the face was found in (padded or not)."""
        from insightface.app.common import Face

        image = face_rules.pad_image(bgr)[0] if hit.padded else bgr
        face = Face(bbox=hit.face.bbox, kps=hit.face.kps, det_score=hit.face.det_score)
        return np.asarray(self.app.models["recognition"].get(image, face)).ravel()


def to_bgr(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)


def shared_faces(context: ScoringContext, path: str | Path) -> InsightFaceFaces:
    """One prepared buffalo_l per (folder, device) per scoring context, so Arc and Cur share it."""
    name, root = pack_location(path)
    providers, ctx_id = _providers(context.device)
    key = (str(Path(root).resolve()), name, tuple(providers), DET_SIZE, DET_THRESH)

    def build() -> InsightFaceFaces:
        from insightface.app import FaceAnalysis

        with reading_weight_file(path):  # onnxruntime refuses a file that is not an ONNX model
            app = FaceAnalysis(
                name=name,
                root=str(root),
                allowed_modules=["detection", "recognition"],
                providers=providers,
            )
        if "recognition" not in app.models:
            raise WeightsMissingError(
                f"{root}: the {PACK_NAME} pack has no recognition model (w600k_r50.onnx)"
            )
        app.prepare(ctx_id=ctx_id, det_thresh=DET_THRESH, det_size=DET_SIZE)
        return InsightFaceFaces(app, f"{PACK_NAME}@{key[0]}/det{DET_SIZE[0]}/t{DET_THRESH}")

    return context.models.get(("insightface-faces", *key), build)


def resolve_pack(option: str | Path | None, metric: str) -> Path:
    """The buffalo_l folder: the metric option, else the weights dir / hub cache."""
    return resolve(BUFFALO_L, option, metric=metric)


def scored_frames(
    video: DecodedVideo, faces: list, embed, num_frames: int
) -> tuple[list, list[int]]:
    """`embed(rgb_frame, hit)` for the sampled frames with a face (once per distinct frame index).

    Returns the embeddings and their positions among the `num_frames` samples.
    """
    indices = video.linspace_indices(num_frames).tolist()
    sampled = video.linspace(num_frames)
    done: dict[int, np.ndarray] = {}
    embeddings, positions = [], []
    for position, (index, hit) in enumerate(zip(indices, faces, strict=True)):
        if hit is None:
            continue
        if index not in done:
            done[index] = embed(sampled[position], hit)
        embeddings.append(done[index])
        positions.append(position)
    return embeddings, positions


def facesim_result(
    value_scores: list[float], positions: list[int], total: int, *, drop_zeros: bool, **details
) -> MetricResult:
    """The per-video `MetricResult` with per-frame scores (None: no face) in `details`."""
    per_frame: list[float | None] = [None] * total
    for position, score in zip(positions, value_scores, strict=True):
        per_frame[position] = score
    return MetricResult(
        face_rules.video_score(value_scores, drop_zeros=drop_zeros),
        {
            **details,
            "frames_sampled": total,
            "frames_with_face": len(positions),
            "frame_scores": per_frame,
        },
    )


@register_metric("face_sim_arc")
class FaceSimArc(Metric):
    """OpenS2V FaceSim-Arc (option `buffalo_l_path`: a folder holding models/buffalo_l)."""

    description = "OpenS2V FaceSim-Arc: insightface buffalo_l ArcFace cosine to the face reference"
    weights = (BUFFALO_L,)
    option_names = frozenset({"buffalo_l_path", "num_frames"})
    path_options = {BUFFALO_L.filename: "buffalo_l_path"}
    needs = Needs(frames="sampled", group="insightface-buffalo-l", model_bytes=350_000_000)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.num_frames = int(options.get("num_frames", face_rules.NUM_FRAMES))
        self.faces: InsightFaceFaces | None = None

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "det_size": list(DET_SIZE),
            "det_thresh": DET_THRESH,
            "num_frames": self.num_frames,
        }

    def setup(self, context: ScoringContext) -> None:
        self.faces = shared_faces(
            context, resolve_pack(self.options.get("buffalo_l_path"), self.name)
        )

    def _reference_embedding(self, path: Path, cache: EmbeddingCache) -> np.ndarray | None:
        faces = self.faces
        assert faces is not None

        def embed(p: Path) -> np.ndarray | None:
            bgr, hit = faces.reference(p, cache)
            return None if hit is None else faces.arc_embedding(bgr, hit)

        return face_rules.reference_embedding(
            path, f"arcface/{faces.key}", faces.preprocess_id, embed, cache
        )

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        reason = face_rules.absent_reason(case)
        if reason is not None:
            return MetricResult.absent(reason)
        assert self.faces is not None
        reference = face_rules.face_reference(case)
        assert reference is not None
        ref_embedding = self._reference_embedding(reference.path, context.cache)
        if ref_embedding is None:
            return MetricResult.absent(
                f"no face found in reference {reference.relpath}", reference=reference.relpath
            )
        search = self.faces
        hits = search.video_faces(video, self.num_frames)
        embeddings, positions = scored_frames(
            video, hits, lambda rgb, hit: search.arc_embedding(to_bgr(rgb), hit), self.num_frames
        )
        scores = face_rules.frame_scores(ref_embedding, np.stack(embeddings)) if embeddings else []
        return facesim_result(
            scores, positions, len(hits), drop_zeros=False, reference=reference.relpath
        )
