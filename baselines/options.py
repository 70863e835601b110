"""Reading model options (`-o key=value`): strings from the command line or numbers from Python.

Every adapter refuses keys it does not know, so a typo cannot silently run the defaults under
a new configuration hash, and every bad value is one `ModelOptionError` naming model and key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kaleido_bench.core.errors import ModelOptionError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_UNSET = ("auto", "none", "")


def refuse_unknown(model: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    known = tuple(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ModelOptionError(
            f"model {model!r} has no option(s) {', '.join(unknown)} (known: {', '.join(known)})"
        )


def int_option(model: str, key: str, value: Any) -> int:
    """An integer from 81, 81.0, "81" or "81.0"; 81.5, True and "x" are refused."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).strip())
        if not number.is_integer():
            raise ValueError
        return int(number)
    except ValueError:
        raise ModelOptionError(
            f"model {model!r}: option {key} must be an integer, got {value!r}"
        ) from None


def float_option(model: str, key: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(str(value).strip())
    except ValueError:
        raise ModelOptionError(
            f"model {model!r}: option {key} must be a number, got {value!r}"
        ) from None


def bool_option(model: str, key: str, value: Any) -> bool | None:
    """True / False from the usual spellings; "auto", "none" and "" give None (let the model decide)."""
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _UNSET:
        return None
    raise ModelOptionError(f"model {model!r}: option {key} must be true or false, got {value!r}")


def options_for(model: str, options: Mapping[str, Any], models: Iterable[str]) -> dict[str, Any]:
    """The options one of several `--model`s gets: plain keys go to every model, `model.key` to that one.

    `-o height=480 -o kaleido.steps=30` gives every model height 480 and only `kaleido` 30 steps;
    a scoped key wins over a plain one. A scope naming no given model is an error, not a no-op.
    """
    models = tuple(models)
    plain: dict[str, Any] = {}
    scoped: dict[str, Any] = {}
    for key, value in options.items():
        scope, dot, name = key.rpartition(".")
        if not dot:
            plain[key] = value
            continue
        if scope not in models:
            raise ModelOptionError(
                f"option {key!r} is for model {scope!r}, which is not one of --model {', '.join(models)}"
            )
        if scope == model:
            scoped[name] = value
    return {**plain, **scoped}


_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
           "fp32": "float32", "float32": "float32"}  # fmt: skip


def dtype_option(model: str, key: str, value: Any) -> str:
    """A torch dtype name ("bfloat16", "float16", "float32") from bf16 / fp16 / fp32 or the full names."""
    text = str(value).strip().lower()
    if text not in _DTYPES:
        raise ModelOptionError(
            f"model {model!r}: {key} must be one of bf16, fp16, fp32, got {value!r}"
        )
    return _DTYPES[text]


def check_wan_video_size(model: str, height: int, width: int, num_frames: int) -> None:
    """Sizes the Wan VAE + DiT can make: H, W multiples of 16 (VAE 8 x patch 2), 4k + 1 frames."""
    for key, value in (("height", height), ("width", width)):
        if value < 16 or value % 16:
            raise ModelOptionError(
                f"model {model!r}: {key} must be a multiple of 16 (VAE 8 x patch 2), got {value}"
            )
    if num_frames < 1 or (num_frames - 1) % 4:
        raise ModelOptionError(
            f"model {model!r}: num_frames must be 4k + 1 (Wan VAE), e.g. 81, got {num_frames}"
        )
