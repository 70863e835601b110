"""Reference images: fit keeping aspect (LANCZOS, int()), pad white and centre, alpha dropped."""

from __future__ import annotations

import numpy as np
from PIL import Image

from kaleido_bench.kaleido.references import fit_reference, load_reference_image, reference_pixels


def test_wide_image_fills_the_width_and_is_centred_on_white():
    image = Image.new("RGB", (200, 50), (10, 20, 30))
    out = np.asarray(fit_reference(image, 64, 96))
    assert out.shape == (64, 96, 3)
    # 200x50 -> 96 x int(50 * 96 / 200) = 96x24, top gets (64 - 24) // 2 = 20 white rows
    assert (out[:20] == 255).all() and (out[44:] == 255).all()
    assert (out[20:44] == (10, 20, 30)).all()


def test_tall_image_fills_the_height_and_left_gets_half_the_delta():
    image = Image.new("RGB", (30, 100), (0, 0, 0))
    out = np.asarray(fit_reference(image, 64, 96))
    # 30x100 -> int(30 * 64 / 100) = 19 x 64; left = (96 - 19) // 2 = 38
    assert (out[:, :38] == 255).all() and (out[:, 57:] == 255).all()
    assert (out[:, 38:57] == 0).all()


def test_alpha_is_dropped_not_composited(tmp_path):
    rgba = Image.new("RGBA", (16, 16), (200, 0, 0, 0))  # fully transparent red
    rgba.save(tmp_path / "a.png")
    image = load_reference_image(tmp_path / "a.png")
    assert image.mode == "RGB"
    assert np.asarray(image)[0, 0].tolist() == [200, 0, 0]


def test_pixels_are_one_frame_clips_in_minus_one_one(astronaut_png):
    pixels = reference_pixels([load_reference_image(astronaut_png)] * 2, 64, 96)
    assert pixels.shape == (2, 3, 1, 64, 96)
    assert pixels.min() >= -1 and pixels.max() <= 1
    assert (pixels[0, :, 0, :, 0] == 1).all()  # square image in a wide frame: white left border
