"""A photo with a marker near its edge, for the focal point tests (helpers only)."""

from __future__ import annotations

from pathlib import Path

import pyvips

MARKER = [0, 0, 255]  # pure blue, 40x40, near the left edge
WIDTH, HEIGHT = 800, 400
FOCUS = "0.045x0.5"  # the marker's centre: (16 + 20) / 800, 200 / 400


def draw_photo(path: Path) -> None:
    """Grey, the blue marker at the left edge, and a big skin-toned, high-contrast patch on
    the right that libvips attention goes for."""
    image = pyvips.Image.black(WIDTH, HEIGHT, bands=3).new_from_image([128, 128, 128])
    patch = pyvips.Image.black(200, 200, bands=3).new_from_image([230, 160, 120])
    stripes = (pyvips.Image.xyz(200, 60)[0] // 10 % 2 * 255).cast("uchar")
    image = image.insert(patch, 560, 100).insert(stripes.bandjoin([stripes, stripes]), 560, 240)
    marker = pyvips.Image.black(40, 40, bands=3).new_from_image(MARKER)
    image = image.insert(marker, 16, 180)
    image.cast("uchar").copy(interpretation="srgb").pngsave(str(path))


def marker_pixels(path: Path) -> int:
    image = pyvips.Image.new_from_file(str(path))[0:3]
    near = (image - MARKER).abs().bandor() < 24  # every band within 24 of pure blue
    return int(near.ifthenelse(1, 0).avg() * image.width * image.height)
