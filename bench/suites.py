"""Suite loaders and the suite registry.

Built in: `opens2v` (180 cases), `opens2v-human` (60), `opens2v-single` (90), one per OpenS2V
domain (the map and every other OpenS2V rule: `bench/protocols/opens2v.py`), from the official
JSON files shipped in this package (images from the public dataset
`BestWishYsh/OpenS2V-Eval`, given with `--data-root`), and `mini`, a bundled offline suite of
real packaged images. A path instead of a name loads a user's suite file: the official Kaleido
input format (`.txt`, `prompt@@img1.png@@img2.png` a line) or our JSON / YAML schema
(see `load_suite_file`), or an OpenS2V-style JSON dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kaleido_bench.bench.protocols.opens2v import (
    DATASET,
    SUITE_DOMAINS,
    SUITE_VERSION,
    dataset_hint,
    suite_file,
)
from kaleido_bench.core.cases import Case, ReferenceImage, Role, Suite, resolve_in_root
from kaleido_bench.core.errors import MissingImageError, SuiteFileError, UnknownNameError
from kaleido_bench.core.registry import Registry

SuiteLoader = Callable[[Path | None], Suite]
SUITES: Registry[SuiteLoader] = Registry("suite")


def load_suite(name_or_path: str, data_root: str | Path | None = None) -> Suite:
    """A registered suite by (case-insensitive) name, or a suite file by path."""
    root = Path(data_root).expanduser() if data_root else None
    suite_names()  # make sure every built-in suite is registered
    key = name_or_path.lower()
    if key in SUITES:
        return SUITES.get(key)(root)
    path = Path(name_or_path).expanduser()
    if path.suffix.lower() in {".txt", ".json", ".yaml", ".yml"} or path.exists():
        return load_suite_file(path, root)
    raise UnknownNameError(
        f"unknown suite {name_or_path!r} (known: {', '.join(SUITES.names())}; or a suite file path)"
    )


# -- OpenS2V ---------------------------------------------------------------------------------


def opens2v_role(relpath: str) -> Role:
    """Role from the dataset's folder names: crop_man/crop_woman are face crops, man/woman are
    whole people, environment/scene are backgrounds, everything else is an object."""
    parts = set(relpath.replace("\\", "/").split("/"))
    if parts & {"crop_man", "crop_woman"}:
        return Role.FACE
    if parts & {"man", "woman"}:
        return Role.HUMAN
    if parts & {"environment", "scene"}:
        return Role.BACKGROUND
    return Role.OBJECT


def opens2v_cases(data: dict[str, Any], data_root: Path, source: str | Path) -> tuple[Case, ...]:
    """Cases from an OpenS2V-Eval JSON dict (`{case_id: {img_paths, prompt, class_label, ...}}`)."""
    cases = []
    for case_id, entry in data.items():
        try:
            paths, prompt = entry["img_paths"], entry["prompt"]
        except (KeyError, TypeError):
            raise SuiteFileError(f"{source}: case {case_id!r} lacks img_paths or prompt") from None
        where = f"{source}: case {case_id!r}"
        prompt = _prompt(prompt, where)
        paths = [_relpath(path, where) for path in _items(paths, "img_paths", where)]
        labels = [
            None if label is None else str(label)
            for label in _items(entry.get("class_label") or [], "class_label", where)
        ]
        if labels and len(labels) != len(paths):
            raise SuiteFileError(
                f"{source}: case {case_id!r} has {len(paths)} images but {len(labels)} class labels"
            )
        labels += [None] * (len(paths) - len(labels))
        references = tuple(
            ReferenceImage(
                rel, resolve_in_root(data_root, rel, source=source), opens2v_role(rel), label
            )
            for rel, label in zip(paths, labels)
        )
        flag = str(entry.get("synthesis_flag", "")).strip().lower()
        cases.append(
            Case(
                id=case_id,
                prompt=prompt,
                references=references,
                category=re.sub(r"_\d+$", "", case_id),
                metadata={"synthesis_flag": flag == "true"} if flag else {},
            )
        )
    return tuple(cases)


def _opens2v_loader(name: str, domain: str) -> SuiteLoader:
    def load(data_root: Path | None) -> Suite:
        if data_root is not None and not data_root.is_dir():  # one line, not 317 missing images
            raise MissingImageError(f"data root {data_root} does not exist{dataset_hint(name)}")
        root = data_root or Path("OpenS2V-Eval")
        cases = opens2v_cases(json.loads(suite_file(domain)), root, f"{domain}_Eval.json")
        return Suite(name, SUITE_VERSION, cases, root.resolve(), domain)

    load.__doc__ = (
        f"OpenS2V-Eval {SUITE_VERSION} {domain}; images under --data-root (dataset {DATASET})."
    )
    return load


for _name, _domain in SUITE_DOMAINS.items():
    SUITES.add(_name, _opens2v_loader(_name, _domain))


# -- user suite files ------------------------------------------------------------------------


def load_suite_file(path: Path, data_root: Path | None = None) -> Suite:
    """Load a suite file; reference paths are relative to `data_root` (default: the file's folder).

    `.txt`: the official Kaleido input, one case a line, `prompt@@img1.png@@img2.png`; ids are
    `case_001`, ... and roles default to object (a line may end with `@@` items only).
    `.json` / `.yaml`: either an OpenS2V-style dict of cases, or our schema::

        name: my-suite            # optional, default: file stem
        version: "1"              # optional
        cases:
          - id: cat_on_beach
            prompt: A cat walks along a beach at sunset.
            category: singleobj   # optional
            references:
              - {path: images/cat.png, role: object, label: Cat}   # role: face|human|object|background
    """
    if not path.is_file():
        raise SuiteFileError(f"suite file {path} does not exist")
    if data_root is not None and not data_root.is_dir():
        raise MissingImageError(f"data root {data_root} does not exist")
    root = (data_root or path.parent).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SuiteFileError(f"suite file {path} cannot be read: {exc}") from None
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return Suite(path.stem, "1", _kaleido_lines(text, root, path), root)
    try:
        if suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise SuiteFileError(
            f"suite file {path} is not valid {suffix[1:].upper()}: {exc}"
        ) from None
    if isinstance(data, dict) and "cases" in data:
        return _schema_suite(data, root, path)
    if (
        isinstance(data, dict)
        and all(isinstance(v, dict) and "img_paths" in v for v in data.values())
        and data
    ):
        return Suite(path.stem, "1", opens2v_cases(data, root, path), root)
    raise SuiteFileError(f"suite file {path} has neither a 'cases' list nor OpenS2V-style cases")


def _kaleido_lines(text: str, root: Path, source: Path) -> tuple[Case, ...]:
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        prompt, *images = [part.strip() for part in line.split("@@")]
        images = [image for image in images if image]
        if not prompt or not images:
            raise SuiteFileError(
                f"{source}:{number}: expected 'prompt@@img1.png[@@img2.png...]', got {line[:80]!r}"
            )
        references = tuple(
            ReferenceImage(
                image, resolve_in_root(root, image, source=f"{source}:{number}"), Role.OBJECT
            )
            for image in images
        )
        cases.append(Case(f"case_{len(cases) + 1:03d}", prompt, references))
    if not cases:
        raise SuiteFileError(f"{source} holds no cases")
    return tuple(cases)


def _schema_suite(data: dict[str, Any], root: Path, source: Path) -> Suite:
    cases, seen = [], set()
    if not isinstance(data["cases"], list):
        raise SuiteFileError(f"{source}: 'cases' must be a list")
    for index, entry in enumerate(data["cases"]):
        where = f"{source}: case #{index + 1}"
        if not isinstance(entry, dict) or "prompt" not in entry or not entry.get("references"):
            raise SuiteFileError(f"{where} needs 'prompt' and a non-empty 'references' list")
        prompt = _prompt(entry["prompt"], where)
        case_id = str(entry.get("id") or f"case_{index + 1:03d}")
        if case_id in seen or not re.fullmatch(r"[A-Za-z0-9_.-]+", case_id):
            raise SuiteFileError(f"{where}: id {case_id!r} is duplicated or not a valid file stem")
        seen.add(case_id)
        references = []
        for ref in _items(entry["references"], "references", where):
            ref = {"path": ref} if isinstance(ref, str) else ref
            if not isinstance(ref, dict) or "path" not in ref:
                raise SuiteFileError(
                    f"{where}: a reference must be a path or a mapping with 'path', got {ref!r}"
                )
            try:
                role = Role(str(ref.get("role", "object")).lower())
            except ValueError:
                raise SuiteFileError(
                    f"{where}: unknown role {ref.get('role')!r} (face, human, object, background)"
                ) from None
            rel = _relpath(ref["path"], where)
            label = ref.get("label")
            references.append(
                ReferenceImage(
                    rel,
                    resolve_in_root(root, rel, source=where),
                    role,
                    None if label is None else str(label),
                )
            )
        cases.append(Case(case_id, prompt, tuple(references), str(entry.get("category") or "")))
    return Suite(
        str(data.get("name") or source.stem), str(data.get("version", "1")), tuple(cases), root
    )


def _prompt(value: Any, where: str) -> str:
    """A prompt must be text: `null` would become the prompt "None", a number its digits."""
    if not isinstance(value, str) or not value.strip():
        raise SuiteFileError(f"{where}: prompt must be non-empty text, got {value!r}")
    return value


def _items(value: Any, field: str, where: str) -> list:
    """A list field; a bare string would otherwise be read one character at a time."""
    if not isinstance(value, list):
        raise SuiteFileError(
            f"{where}: {field!r} must be a list, got {type(value).__name__} {value!r}"
        )
    return value


def _relpath(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SuiteFileError(f"{where}: a reference path must be non-empty text, got {value!r}")
    return value


def suite_names() -> list[str]:
    import kaleido_bench.bench.mini_suite  # noqa: F401  (registers "mini")

    return SUITES.names()
