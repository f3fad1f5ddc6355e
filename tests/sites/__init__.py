"""Test sites for the MkDocs, Pelican and Sphinx plugins and the browser test.

The text of each site lives here; its images are made by `make_images` when a test copies the
site to a temp dir, so the repository holds no binary fixtures and each image has a size the
tests can reason about: 1280 px wide, larger than every rendition width the sites ask for.
`add_camera_page` adds what a first day brings (issue 12): a camera's upper-case `.JPG` and
GIFs, animated and still.
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


# name -> (width, height, frames)
CAMERA_IMAGES = {
    "IMG_0001.JPG": (1000, 560, 1),
    "anim.gif": (480, 270, 4),
    "still.gif": (600, 300, 1),
}


def add_camera_page(page: Path, images: Path, prefix: str, header: str = "") -> None:
    """Make CAMERA_IMAGES in `images` and a Markdown page that shows them, each linked as
    `prefix` + name."""
    import pyvips
    from animation_support import coloured_frames, gif

    images.mkdir(parents=True, exist_ok=True)
    for name, (width, height, frames) in CAMERA_IMAGES.items():
        if frames > 1:
            (images / name).write_bytes(gif(coloured_frames(width, height, frames)))
            continue
        xyz = pyvips.Image.xyz(width, height)
        image = (xyz[0] * 255 / width).bandjoin([xyz[1] * 255 / height, xyz[0] * 0 + 90])
        image = image.cast("uchar").copy(interpretation="srgb")
        if name.endswith(".gif"):
            image.gifsave(str(images / name))
        else:
            image.jpegsave(str(images / name), Q=85)
    lines = [f"![{name}]({prefix}{name})" for name in CAMERA_IMAGES]
    page.write_text(header + "# Camera\n\n" + "\n\n".join(lines) + "\n")
