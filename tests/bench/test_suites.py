"""Suite loaders: the official OpenS2V files, mini, user files, and refusal of escaping paths."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kaleido_bench.bench.suites import load_suite
from kaleido_bench.core.cases import Role
from kaleido_bench.core.errors import (
    MissingImageError,
    PathEscapeError,
    SuiteFileError,
    UnknownNameError,
)


def test_opens2v_domains_have_official_case_counts(tmp_path):
    open_domain = load_suite("opens2v", tmp_path)
    assert len(open_domain.cases) == 180
    assert Counter(case.category for case in open_domain.cases) == {
        "singleobj": 30,
        "singlehuman": 30,
        "singleface": 30,
        "multiobject": 30,
        "multiface": 15,
        "multihuman": 15,
        "humanobj": 15,
        "faceobj": 15,
    }
    assert Counter(len(case.references) for case in open_domain.cases) == {1: 90, 2: 40, 3: 50}
    assert len(load_suite("opens2v-human", tmp_path).cases) == 60
    assert len(load_suite("opens2v-single", tmp_path).cases) == 90
    assert load_suite("openS2V", tmp_path).name == "opens2v"  # case-insensitive, as users type it


def test_opens2v_roles_labels_and_flags(tmp_path):
    suite = load_suite("opens2v", tmp_path)
    case = suite.case("faceobj_14")
    assert [ref.role for ref in case.references] == [Role.FACE, Role.OBJECT, Role.BACKGROUND]
    assert [ref.label for ref in case.references] == ["Woman", "Clothes", "Square"]
    assert (
        case.references[0].path
        == (tmp_path / "Images/humanobj/human/crop_woman/celebrity/4.jpg").resolve()
    )
    flags = Counter(case.metadata["synthesis_flag"] for case in suite.cases)
    assert flags == {False: 120, True: 60}  # "wrong"/"Wrong"/"True" normalised


def test_missing_images_are_listed_at_once_with_the_root(tmp_path):
    suite = load_suite("opens2v", tmp_path)
    with pytest.raises(MissingImageError) as error:
        suite.check_images()
    message = str(error.value)
    assert "317 reference image(s)" in message and str(tmp_path.resolve()) in message


def test_mini_is_offline_real_images_covering_every_kind(tmp_path):
    suite = load_suite("mini", tmp_path / "mini")
    suite.check_images()
    assert len(suite.cases) >= 8
    kinds = {case.category for case in suite.cases}
    assert {"singleface", "singleobj", "multiface", "multiobject", "bgobj"} <= kinds
    assert any(ref.role is Role.BACKGROUND for case in suite.cases for ref in case.references)
    from PIL import Image

    for case in suite.cases:
        for ref in case.references:
            with Image.open(ref.path) as image:
                assert min(image.size) >= 64  # a real photograph, not a placeholder


def test_kaleido_line_format(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    path = tmp_path / "jobs.txt"
    path.write_text("A cat on a sofa@@a.png@@sub/b.png\n\n# comment\nA dog@@a.png\n")
    suite = load_suite(str(path))
    assert [case.id for case in suite.cases] == ["case_001", "case_002"]
    assert suite.cases[0].prompt == "A cat on a sofa"
    assert [ref.relpath for ref in suite.cases[0].references] == ["a.png", "sub/b.png"]
    assert suite.missing_images() == [(tmp_path / "sub/b.png").resolve()]


def test_kaleido_line_without_image_is_refused(tmp_path):
    path = tmp_path / "jobs.txt"
    path.write_text("only a prompt\n")
    with pytest.raises(SuiteFileError, match="jobs.txt:1"):
        load_suite(str(path))


def test_yaml_schema(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(
        "name: mine\nversion: '2'\ncases:\n"
        "  - id: cat_beach\n    prompt: A cat on a beach.\n"
        "    references:\n      - {path: cat.png, role: object, label: Cat}\n      - {path: beach.png, role: background}\n"
    )
    suite = load_suite(str(path))
    assert (suite.name, suite.version) == ("mine", "2")
    assert [ref.role for ref in suite.cases[0].references] == [Role.OBJECT, Role.BACKGROUND]


def test_json_with_unknown_role_is_refused(tmp_path):
    path = tmp_path / "suite.json"
    path.write_text(
        json.dumps(
            {
                "cases": [
                    {"id": "a", "prompt": "p", "references": [{"path": "x.png", "role": "pet"}]}
                ]
            }
        )
    )
    with pytest.raises(SuiteFileError, match="unknown role 'pet'"):
        load_suite(str(path))


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.png", "images/../../outside.png"])
def test_paths_escaping_the_data_root_are_refused(tmp_path, bad):
    path = tmp_path / "jobs.txt"
    path.write_text(f"prompt@@{bad}\n")
    with pytest.raises(PathEscapeError, match="data root"):
        load_suite(str(path))


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.png").symlink_to(tmp_path / "secret.png")
    path = root / "jobs.txt"
    path.write_text("prompt@@link.png\n")
    with pytest.raises(PathEscapeError, match="outside the data root"):
        load_suite(str(path))


def test_unknown_suite_names_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown suite 'nope'.*mini.*opens2v"):
        load_suite("nope")


def test_mini_follows_the_opens2v_face_rules(tmp_path):
    """FaceSim (OpenS2V rules) must find the face reference of mini's face cases, as on OpenS2V."""
    from kaleido_bench.metrics.face_rules import face_reference, is_face_case

    suite = load_suite("mini", tmp_path / "mini")
    scored = {
        case.id: face_reference(case).relpath for case in suite.cases if is_face_case(case.id)
    }
    assert scored == {
        "singleface_astronaut": "images/crop_woman/astronaut.png",
        "singleface_hopper": "images/crop_woman/grace_hopper.jpg",
        "faceobj_astronaut_rocket": "images/crop_woman/astronaut.png",
    }
