"""`gme_score`: OpenS2V-Eval's GmeScore (`eval/get_gmescore.py` at 210eb08), exactly.

Per video (lines 80-103 of the script): 32 frames at `np.linspace(0, T-1, 32, dtype=int)`
(decord there, PyAV rgb24 here: identical frames), the case prompt embedded as a text query
with the instruction "Find an image that matches the given text.", each frame embedded as a
corpus image (`is_query=False`), and `(e_query * e_corpus).sum(-1).mean()` computed on the CPU
in the model dtype: fp16 for the published numbers (so they are fp16-exact, e.g.
0.68115234375), fp32 on our CPU runs. The official merge clips it to <= 1 later.

The script embeds the same prompt 32 times; ours embeds it once per case (the rows are
identical: causal attention, right padding) and reuses it for every video of the case.
"""

from __future__ import annotations

from typing import Any

from kaleido_bench.core.cases import Case
from kaleido_bench.core.video import DecodedVideo
from kaleido_bench.metrics.base import Metric, MetricResult, Needs, register_metric
from kaleido_bench.metrics.context import ScoringContext
from kaleido_bench.metrics.gme import (
    GME_QWEN2_VL_7B,
    TEXT_TO_IMAGE_INSTRUCTION,
    GmeEmbedder,
    load_gme,
)
from kaleido_bench.metrics.weights import resolve

NUM_FRAMES = 32


def frame_similarities(
    embedder: GmeEmbedder, frames: Any, prompt: str, batch_size: int | None = None
) -> Any:
    """(N,) similarities of the prompt (cached per prompt) to each frame, reduced as the script does."""
    text = embedder.embed_text_cached(prompt, TEXT_TO_IMAGE_INSTRUCTION)
    images = embedder.embed_images(list(frames), is_query=False, batch_size=batch_size)
    return (text * images).sum(-1)  # CPU, model dtype (get_gmescore.py line 100)


@register_metric("gme_score")
class GmeScore(Metric):
    """OpenS2V GmeScore: GME-Qwen2-VL text-frame similarity, mean of 32 frames (exact)."""

    description = "OpenS2V GmeScore: GME-Qwen2-VL-7B prompt-frame similarity, mean of 32 frames"
    weights = (GME_QWEN2_VL_7B,)
    option_names = frozenset({"model_path", "precision"})
    path_options = {GME_QWEN2_VL_7B.filename: "model_path"}
    # one GME-Qwen2-VL-7B (8.3 B parameters, 16.6 GB in fp16), shared with nexus_score
    needs = Needs(frames="sampled", group="gme-qwen2-vl-7b", model_bytes=16_600_000_000)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.embedder: GmeEmbedder | None = None

    def setup(self, context: ScoringContext) -> None:
        path = resolve(GME_QWEN2_VL_7B, self.options.get("model_path"), metric=self.name)
        self.embedder = load_gme(
            context, path, precision=self.options.get("precision"), metric=self.name
        )

    def config(self) -> dict[str, Any]:
        return {**super().config(), "frames": NUM_FRAMES, "instruction": TEXT_TO_IMAGE_INSTRUCTION}

    def score(self, video: DecodedVideo, case: Case, context: ScoringContext) -> MetricResult:
        sims = frame_similarities(
            self.embedder, video.linspace(NUM_FRAMES), case.prompt, self.options.get("batch_size")
        )
        return MetricResult(
            sims.mean().item(),
            {
                "frames": NUM_FRAMES,
                "dtype": str(sims.dtype).removeprefix("torch."),
                "frame_sims": sims.float().tolist(),
            },
        )
