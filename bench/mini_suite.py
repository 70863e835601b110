"""`mini`: a bundled offline suite built only from REAL images that ship inside installed packages.

The images (skimage's astronaut, chelsea, coffee, rocket, grass, ...; matplotlib's
grace_hopper) are copied byte for byte into a data root under the user's cache the first time
the suite loads. Case ids and folder names follow OpenS2V's conventions (`singleface_*`,
`images/crop_woman/`, `images/environment/`) so the OpenS2V rules (which reference is the face, which cases
FaceSim scores) apply to it unchanged.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from kaleido_bench.bench.suites import SUITES
from kaleido_bench.core.cases import Case, ReferenceImage, Role, Suite, resolve_in_root
from kaleido_bench.core.errors import MissingImageError

MINI_VERSION = "2"


@dataclass(frozen=True)
class PackagedImage:
    """An image file inside an installed package, and where the mini data root keeps it."""

    package: str
    resource: str
    relpath: str

    def source(self) -> Path:
        spec = find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise MissingImageError(
                f"package {self.package} is not installed; the mini suite needs its {self.resource}"
            )
        return Path(list(spec.submodule_search_locations)[0]) / self.resource


ASTRONAUT = PackagedImage("skimage", "data/astronaut.png", "images/crop_woman/astronaut.png")
HOPPER = PackagedImage(
    "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "images/crop_woman/grace_hopper.jpg"
)
CAT = PackagedImage("skimage", "data/chelsea.png", "images/object/cat/chelsea.png")
COFFEE = PackagedImage("skimage", "data/coffee.png", "images/object/cup/coffee.png")
ROCKET = PackagedImage("skimage", "data/rocket.jpg", "images/object/rocket/rocket.jpg")
GIFT = PackagedImage(
    "matplotlib",
    "mpl-data/sample_data/Minduka_Present_Blue_Pack.png",
    "images/object/gift/present.png",
)
HORSE = PackagedImage("skimage", "data/horse.png", "images/object/horse/horse.png")
GRASS = PackagedImage("skimage", "data/grass.png", "images/environment/grass.png")
MOTORCYCLE = PackagedImage("skimage", "data/motorcycle_left.png", "images/environment/garage.png")

_CASES: tuple[tuple[str, str, tuple[tuple[PackagedImage, Role, str], ...]], ...] = (
    (
        "singleface_astronaut",
        "A woman in an orange space suit smiles and turns her head slowly towards the camera.",
        ((ASTRONAUT, Role.FACE, "Woman"),),
    ),
    (
        "singleface_hopper",
        "An elderly woman in a naval uniform speaks calmly in a quiet office.",
        ((HOPPER, Role.FACE, "Woman"),),
    ),
    (
        "singleobj_cat",
        "A tabby cat sits on a windowsill and slowly blinks at the camera.",
        ((CAT, Role.OBJECT, "Cat"),),
    ),
    (
        "singleobj_coffee",
        "A cup of coffee with latte art steams gently on a wooden table.",
        ((COFFEE, Role.OBJECT, "Cup"),),
    ),
    (
        "singleobj_gift",
        "A blue gift box with a ribbon spins slowly on a white table.",
        ((GIFT, Role.OBJECT, "Box"),),
    ),
    (
        "multiface_astronaut_hopper",
        "Two women talk to each other at a desk, one in a space suit, one in uniform.",
        ((ASTRONAUT, Role.FACE, "Woman"), (HOPPER, Role.FACE, "Woman")),
    ),
    (
        "multiobject_cat_coffee",
        "A cat sniffs at a cup of coffee standing on a kitchen counter.",
        ((CAT, Role.OBJECT, "Cat"), (COFFEE, Role.OBJECT, "Cup")),
    ),
    (
        "faceobj_astronaut_rocket",
        "A woman in a space suit stands in front of a rocket on the launch pad and waves.",
        ((ASTRONAUT, Role.FACE, "Woman"), (ROCKET, Role.OBJECT, "Rocket")),
    ),
    (
        "bgobj_cat_grass",
        "A cat walks slowly across a green lawn in the sun.",
        ((CAT, Role.OBJECT, "Cat"), (GRASS, Role.BACKGROUND, "Grassland")),
    ),
    (
        "bgobj_horse_garage",
        "A horse trots past a motorcycle parked in a garage.",
        ((HORSE, Role.OBJECT, "Horse"), (MOTORCYCLE, Role.BACKGROUND, "Garage")),
    ),
)


def mini_data_root() -> Path:
    base = os.environ.get("KALEIDO_BENCH_CACHE") or Path.home() / ".cache" / "kaleido_bench"
    return Path(base) / f"mini-v{MINI_VERSION}"


def materialise(root: Path) -> None:
    """Copy each packaged image into `root` once (atomic per file)."""
    images = {image for _, _, refs in _CASES for image, _, _ in refs}
    for image in images:
        target = root / image.relpath
        if target.is_file():
            continue
        source = image.source()
        if not source.is_file():
            raise MissingImageError(
                f"packaged image {source} is missing; reinstall {image.package}"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


@SUITES.register("mini")
def load_mini(data_root: Path | None = None) -> Suite:
    """10 offline cases: single face, single object, multi-subject, subject + background."""
    root = (data_root or mini_data_root()).resolve()
    materialise(root)
    cases = tuple(
        Case(
            case_id,
            prompt,
            tuple(
                ReferenceImage(img.relpath, resolve_in_root(root, img.relpath), role, label)
                for img, role, label in refs
            ),
            category=case_id.split("_")[0],
        )
        for case_id, prompt, refs in _CASES
    )
    return Suite("mini", MINI_VERSION, cases, root)
