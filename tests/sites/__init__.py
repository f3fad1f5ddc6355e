"""Test sites for the MkDocs, Pelican and Sphinx plugins and the browser test.

The text of each site lives here; its images are made by `make_images` when a test copies the
site to a temp dir, so the repository holds no binary fixtures and each image has a size the
tests can reason about: 1280 px wide, larger than every rendition width the sites ask for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).parent
# relative path -> (width, height); PNGs carry alpha, so `auto` keeps them PNG.
IMAGES = {
    "photo.jpg": (1280, 800),
    "wide.png": (1280, 640),
}


def make_images(directory: Path) -> None:
    """Smooth gradients with a few shapes: small files, yet real photos to every encoder."""
    import pyvips

    directory.mkdir(parents=True, exist_ok=True)
    for name, (width, height) in IMAGES.items():
        xyz = pyvips.Image.xyz(width, height)
        x, y = xyz[0], xyz[1]
        image = (x * 255 / width).bandjoin([y * 255 / height, (x + y) * 127 / (width + height)])
        image = image.cast("uchar").copy(interpretation="srgb")
        image = image.draw_circle([250, 240, 30], width // 3, height // 2, height // 4, fill=True)
        if name.endswith(".png"):
            image.bandjoin(255).copy(interpretation="srgb").pngsave(str(directory / name))
        else:
            image.jpegsave(str(directory / name), Q=85)


def copy_site(name: str, dest: Path, images_at: str) -> Path:
    """Copy site `name` to `dest` and make its images in `dest/images_at`."""
    shutil.copytree(HERE / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
    make_images(dest / images_at)
    return dest
