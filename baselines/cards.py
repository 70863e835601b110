"""Model cards: what `kaleido-bench list models` says about each model, read from its class.

A card is the class attributes of `ModelAdapter` (description, label, parameters, licence,
weights_source, default_capabilities), so listing builds no model and needs no weights or API
keys. Each line is short enough to wrap cleanly at 80 columns.
"""

from __future__ import annotations

from kaleido_bench.baselines.base import ModelAdapter, ModelCapabilities


def describe_capabilities(caps: ModelCapabilities | None) -> tuple[str, str]:
    """("at most 3" | "any number" | "not declared", "512x896, 81 frames at 16 fps" | ...)."""
    if caps is None:
        return "not declared", "not declared"
    refs = "any number" if caps.max_references is None else f"at most {caps.max_references}"
    if not (caps.height and caps.width):  # 0 = not fixed (e.g. videos made elsewhere)
        return refs, "as the videos are"
    return refs, f"{caps.height}x{caps.width}, {caps.num_frames} frames at {caps.fps:g} fps"


def model_card_lines(name: str, cls: type[ModelAdapter]) -> list[str]:
    """The card as lines: the name (and label) first, then one fact a line."""
    refs, video = describe_capabilities(cls.default_capabilities)
    return [
        f"{name} ({cls.label})" if cls.label else name,
        cls.description or "(no description)",
        f"references: {refs}; video: {video}",
        f"parameters: {cls.parameters or 'not stated'}",
        f"licence: {cls.licence or 'not stated'}",
        f"weights: {cls.weights_source or 'not stated'}",
    ]
