"""The self-contained HTML page: figures embedded pixel for pixel, in fewer PNG bytes."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from feraug.reporting.html import compact_png, markdown_to_html


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def test_an_opaque_grey_figure_shrinks_and_keeps_every_pixel() -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])  # what matplotlib writes
    data = _png(rgba)
    small = compact_png(data)
    assert len(small) < len(data) * 0.6
    assert Image.open(io.BytesIO(small)).mode == "L"
    assert np.array_equal(_pixels(small), rgba)


def test_colour_and_transparency_survive_unchanged() -> None:
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 256, (30, 30, 4), dtype=np.uint8)
    colour[..., 3] = 255
    small = compact_png(_png(colour))
    assert Image.open(io.BytesIO(small)).mode == "RGB"
    assert np.array_equal(_pixels(small), colour)
    see_through = colour.copy()
    see_through[0, 0, 3] = 10  # any transparency: left as it was
    assert compact_png(_png(see_through)) == _png(see_through)
    assert compact_png(b"not a png") == b"not a png"


def test_the_page_embeds_the_compact_figure(tmp_path: Path) -> None:
    grey = np.tile(np.arange(64, dtype=np.uint8), (32, 1))
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    (tmp_path / "fig.png").write_bytes(_png(rgba))
    page = markdown_to_html("# t\n\n![a figure](fig.png)\n", tmp_path, "t")
    encoded = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert np.array_equal(_pixels(base64.b64decode(encoded)), rgba)


def test_sixteen_bit_and_transparent_colour_files_are_left_alone() -> None:
    deep = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(deep, "PNG")
    assert compact_png(deep.getvalue()) == deep.getvalue()
    keyed = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(keyed, "PNG",
                                                              transparency=(0, 0, 0))
    assert compact_png(keyed.getvalue()) == keyed.getvalue()
