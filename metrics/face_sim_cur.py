"""FaceSim-Cur (OpenS2V-Eval, the FaceSim that enters the Total): CurricularFace IR-101 cosine.

Reproduces the `cur_score` of the official `eval/get_facesim.py` (OpenS2V-Nexus v1.1, commit
8cb7427 = fork 210eb08). Faces are found by buffalo_l exactly as for FaceSim-Arc (shared
`InsightFaceFaces`, detections cached per video, so Arc + Cur detect once). Then, per face:

- `norm_crop(bgr, kps, 224)` on the UNPADDED image (after a pad retry the keypoints are shifted
  back, and whatever falls outside the frame is black), BGR -> RGB, `cv2.resize` to 112x112
  (bilinear), `(x / 255 - 0.5) / 0.5`, TFace IR-101 `glint360k_curricular_face_r101_backbone.bin`
  in fp32, L2-normalised (`process_image` + `inference`);
- per frame `max(0, cos)`; the mean DROPS zero scores (`if cur_score != 0.0`); frames without a
  face are skipped; a video with no scored frame is 0.

All crops of a video go through the backbone in one batch (the official loop runs them one by
one; in eval mode the maths per sample is the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics import backbones, face_rules
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.curricular_face import IR101_STAGE_UNITS, load_ir_backbone
from kaleido_bench.metrics.embedding_cache import EmbeddingCache
from kaleido_bench.metrics.face_sim_arc import (
    BUFFALO_L,
    InsightFaceFaces,
    facesim_result,
    resolve_pack,
    scored_frames,
    shared_faces,
    to_bgr,
)
from kaleido_bench.metrics.weights import WeightFile, resolve

CURRICULAR_FACE = WeightFile(
    filename="glint360k_curricular_face_r101_backbone.bin",
    description="CurricularFace IR-101 backbone trained on Glint360K (TFace), OpenS2V's FaceSim-Cur model",
    repo_id="BestWishYsh/OpenS2V-Weight",
)
ALIGN_SIZE = 224  # norm_crop size used by get_facesim.py, then resized to the backbone's 112
INPUT_SIZE = 112


def aligned_crop(bgr: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The backbone's input for one face: 224 ArcFace alignment, RGB, bilinear resize to 112 (uint8)."""
    import cv2
    from insightface.utils import face_align

    aligned = face_align.norm_crop(bgr, landmark=keypoints, image_size=ALIGN_SIZE)
    return cv2.resize(cv2.cvtColor(aligned, cv2.COLOR_BGR2RGB), (INPUT_SIZE, INPUT_SIZE))


def unpadded_keypoints(hit: face_rules.PadHit) -> np.ndarray:
    """The face's five keypoints in the original image (shifted back after a pad retry)."""
    return face_rules.shift_points(hit.face.kps, hit.offset)


@register_metric("face_sim_cur")
class FaceSimCur(Metric):
    """OpenS2V FaceSim-Cur (options `buffalo_l_path`, `curricular_face_path`)."""

    description = (
        "OpenS2V FaceSim-Cur: CurricularFace IR-101 cosine to the face reference (enters the Total)"
    )
    weights = (BUFFALO_L, CURRICULAR_FACE)
    option_names = frozenset(
        {"buffalo_l_path", "curricular_face_path", "num_frames", "stage_units"}
    )
    path_options = {
        BUFFALO_L.filename: "buffalo_l_path",
        CURRICULAR_FACE.filename: "curricular_face_path",
    }
    needs = Needs(frames="sampled", group="insightface-buffalo-l", model_bytes=620_000_000)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.num_frames = int(options.get("num_frames", face_rules.NUM_FRAMES))
        self.faces: InsightFaceFaces | None = None
        self.model: Any = None  # the IR-101 nn.Module
        self.model_id = "curricular_face_ir101"

    def config(self) -> dict[str, Any]:
        return {**super().config(), "num_frames": self.num_frames}

    def setup(self, context: ScoringContext) -> None:
        """Resolve buffalo_l and the IR-101 file; option `stage_units` (tests only) builds a shallower IR."""
        pack = resolve_pack(self.options.get("buffalo_l_path"), self.name)
        backbone = resolve(
            CURRICULAR_FACE, self.options.get("curricular_face_path"), metric=self.name
        )
        self.faces = shared_faces(context, pack)
        units = tuple(self.options.get("stage_units", IR101_STAGE_UNITS))
        self.device = backbones.torch_device(context.device)
        self.model = context.models.get(
            ("curricular-face", backbones.file_identity(backbone), units, str(self.device)),
            lambda: load_ir_backbone(backbone, stage_units=units, device=self.device),
        )
        stat = backbone.stat()
        self.model_id = f"curricular_face_ir101/{backbone.name}/{stat.st_size}/{stat.st_mtime_ns}"

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB crops -> (N, 512) float32 unit embeddings, in one batch."""
        import torch

        batch = (
            torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
            .float()
            .to(self.device)
        )
        batch.div_(255).sub_(0.5).div_(0.5)
        with torch.no_grad():
            raw = self.model(batch).detach().cpu().numpy()
        return np.stack([row / np.linalg.norm(row) for row in raw])  # per row, as the official

    def _reference_embedding(self, path: Path, cache: EmbeddingCache) -> np.ndarray | None:
        faces = self.faces
        assert faces is not None

        def embed(p: Path) -> np.ndarray | None:
            bgr, hit = faces.reference(p, cache)
            return (
                None
                if hit is None
                else self.embed_crops(aligned_crop(bgr, unpadded_keypoints(hit))[None])[0]
            )

        return face_rules.reference_embedding(
            path, self.model_id, f"{faces.key}/{faces.preprocess_id}/cur", embed, cache
        )

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        reason = face_rules.absent_reason(case)
        if reason is not None:
            return MetricResult.absent(reason)
        faces = self.faces
        assert faces is not None
        reference = face_rules.face_reference(case)
        assert reference is not None
        ref_embedding = self._reference_embedding(reference.path, context.cache)
        if ref_embedding is None:
            return MetricResult.absent(
                f"no face found in reference {reference.relpath}", reference=reference.relpath
            )
        hits = faces.video_faces(video, self.num_frames)
        crops, positions = scored_frames(
            video,
            hits,
            lambda rgb, hit: aligned_crop(to_bgr(rgb), unpadded_keypoints(hit)),
            self.num_frames,
        )
        scores = (
            face_rules.frame_scores(ref_embedding, self.embed_crops(np.stack(crops)))
            if crops
            else []
        )
        return facesim_result(
            scores, positions, len(hits), drop_zeros=True, reference=reference.relpath
        )
