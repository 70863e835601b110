"""Model options: one parser for every adapter, and `model.key=value` for one of several models."""

from __future__ import annotations

import pytest

from kaleido_bench.baselines.base import get_model_class
from kaleido_bench.baselines.options import bool_option, int_option, options_for
from kaleido_bench.core.errors import ModelOptionError


@pytest.mark.parametrize("value", [81, 81.0, "81", " 81.0 "])
def test_integers_from_numbers_and_strings(value):
    assert int_option("m", "num_frames", value) == 81


@pytest.mark.parametrize("value", [81.5, True, "x", ""])
def test_non_integers_are_refused_naming_model_and_key(value):
    with pytest.raises(ModelOptionError, match="model 'm': option num_frames must be an integer"):
        int_option("m", "num_frames", value)


def test_booleans_and_auto():
    assert [bool_option("m", "k", v) for v in ("yes", "0", "auto", True)] == [
        True,
        False,
        None,
        True,
    ]
    with pytest.raises(ModelOptionError, match="option k must be true or false"):
        bool_option("m", "k", "maybe")


def test_plain_keys_go_to_every_model_scoped_keys_to_one_and_win():
    options = {"height": 480, "still.height": 240, "collage.num_frames": 9}
    models = ("still", "collage")
    assert options_for("still", options, models) == {"height": 240}
    assert options_for("collage", options, models) == {"height": 480, "num_frames": 9}


def test_scope_may_be_an_entry_point_path_with_dots():
    options = {"my_pkg.models:Mine.steps": 4}
    assert options_for("my_pkg.models:Mine", options, ("my_pkg.models:Mine", "still")) == {
        "steps": 4
    }
    assert options_for("still", options, ("my_pkg.models:Mine", "still")) == {}


def test_scope_naming_no_given_model_is_an_error():
    with pytest.raises(
        ModelOptionError, match="'kaleido.steps' is for model 'kaleido'.*still, collage"
    ):
        options_for("still", {"kaleido.steps": 4}, ("still", "collage"))


def test_still_and_collage_accept_the_same_spellings():
    still = get_model_class("still")(height="240.0", num_frames=9)
    assert (still.frame.height, still.frame.num_frames) == (240, 9)
    with pytest.raises(ModelOptionError, match="model 'collage' has no option\\(s\\) steps"):
        get_model_class("collage")(steps=3)
