"""Records for test cases and suites: what a model is asked to make and what it is scored against."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kaleido_bench.core.errors import MissingImageError, PathEscapeError, UnknownNameError


class Role(str, enum.Enum):
    """What a reference image shows; metrics pick references by role."""

    FACE = "face"
    HUMAN = "human"
    OBJECT = "object"
    BACKGROUND = "background"


@dataclass(frozen=True)
class ReferenceImage:
    """One reference image: `relpath` as written in the suite file, `path` resolved in the data root."""

    relpath: str
    path: Path
    role: Role
    label: str | None = None


@dataclass(frozen=True)
class Case:
    """One test case: a prompt and 1-3 subject references (the first decides nothing by itself)."""

    id: str
    prompt: str
    references: tuple[ReferenceImage, ...]
    category: str = ""
    metadata: dict = field(default_factory=dict, hash=False, compare=False)

    def references_with_role(self, *roles: Role) -> tuple[ReferenceImage, ...]:
        return tuple(ref for ref in self.references if ref.role in roles)


@dataclass(frozen=True)
class Suite:
    """A named, versioned list of cases whose reference images live under `data_root`."""

    name: str
    version: str
    cases: tuple[Case, ...]
    data_root: Path
    domain: str = ""

    def case(self, case_id: str) -> Case:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise KeyError(case_id)

    def select(self, case_ids: list[str] | None = None, limit: int | None = None) -> Suite:
        """A copy with only the named cases (in suite order) and at most `limit` of them."""
        cases = self.cases
        if case_ids:
            known = {case.id for case in cases}
            unknown = [cid for cid in case_ids if cid not in known]
            if unknown:
                raise UnknownNameError(f"suite {self.name!r} has no case(s) {', '.join(unknown)}")
            wanted = set(case_ids)
            cases = tuple(case for case in cases if case.id in wanted)
        if limit is not None:
            if limit < 1:
                raise ValueError(
                    f"limit must be at least 1, got {limit}"
                )  # cases[:-1] would drop one silently
            cases = cases[:limit]
        return Suite(self.name, self.version, cases, self.data_root, self.domain)

    def missing_images(self) -> list[Path]:
        return sorted(
            {ref.path for case in self.cases for ref in case.references if not ref.path.is_file()}
        )

    def check_images(self, note: str = "") -> None:
        """Raise one error listing every missing reference image at once, before any generation;
        `note` (the suite protocol's, e.g. which public dataset holds the images) ends a one-liner."""
        missing = self.missing_images()
        total = len({ref.path for case in self.cases for ref in case.references})
        if missing and len(missing) == total:  # a wrong or empty folder: one line, not every path
            first = missing[0]
            shown = (
                first.relative_to(self.data_root) if first.is_relative_to(self.data_root) else first
            )
            raise MissingImageError(
                f"all {total} reference image(s) of suite {self.name!r} are missing under data root "
                f"{self.data_root} (the first: {shown}); download the suite's images there or pass --data-root"
                + note
            )
        if missing:
            root = self.data_root
            shown = "\n  ".join(
                str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in missing
            )
            raise MissingImageError(
                f"{len(missing)} reference image(s) of suite {self.name!r} are missing under data root "
                f"{root} (download the suite's images there or pass --data-root):\n  {shown}"
            )


def resolve_in_root(data_root: Path, relpath: str, *, source: str | Path = "") -> Path:
    """Resolve `relpath` inside `data_root`, refusing absolute paths and any `..` escape."""
    where = f" (in {source})" if source else ""
    pure = PurePosixPath(relpath.replace("\\", "/"))
    if pure.is_absolute() or Path(relpath).is_absolute():
        raise PathEscapeError(
            f"reference path {relpath!r}{where} is absolute; paths must be relative to the data root {data_root}"
        )
    if ".." in pure.parts:
        raise PathEscapeError(
            f"reference path {relpath!r}{where} contains '..'; paths must stay inside the data root {data_root}"
        )
    root = data_root.resolve()
    resolved = (root / Path(*pure.parts)).resolve()
    if not resolved.is_relative_to(root):  # a symlink pointing out of the root
        raise PathEscapeError(
            f"reference path {relpath!r}{where} resolves to {resolved}, outside the data root {root}"
        )
    return resolved
