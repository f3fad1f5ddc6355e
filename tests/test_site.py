"""Why a plugin leaves a local image as written (integrations/site.py `left_as_is`), as a
table over a real Config and manifest data; the MkDocs and Pelican tests log these for real."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from imgpipe.config import from_dict
from imgpipe.html import Images
from imgpipe.integrations.site import SiteBuild, left_as_is
from imgpipe.model import Issue, Summary

SOURCE = Path("/site/docs")
GROUP = {"name": "default", "sizes": "100vw", "fallback": "jpeg", "order": ["jpeg"]}
MANIFEST = {
    "base_url": "/",
    "sources": {
        "img/photo.jpg": {"srcsets": {"default": GROUP}},
        "img/named.jpg": {"srcsets": {}},  # only named renditions: no srcset group
    },
}


def built(failures=(), warnings=()) -> SiteBuild:
    config = from_dict(
        {
            "source": str(SOURCE),
            "output": "/site/out",
            "rules": [
                {"include": ["img/**/*.{jpg,png,gif}"], "exclude": ["img/raw/**"], "widths": [200]}
            ],
        },
        Path("/site"),
    )
    summary = Summary(
        0, 0, 0, len(failures), 0, 0, 0.0, 0, 0, failures=tuple(failures), warnings=tuple(warnings)
    )
    return SiteBuild(config, summary, Images(MANIFEST))


@pytest.mark.parametrize(
    "path, level, reason",
    [
        ("img/photo.jpg", None, None),
        (
            "img/named.jpg",
            logging.WARNING,
            "no rule that matches 'img/named.jpg' has `widths`, so it has no srcset group; "
            "give its rule `widths` (a responsive family)",
        ),
        ("img/raw/a.jpg", logging.INFO, "rules[0].exclude leaves it out"),
        (
            "other/a.jpg",
            logging.WARNING,
            "no rule includes 'other/a.jpg' (include: img/**/*.{jpg,png,gif}); "
            "add a glob that matches it to `include`",
        ),
        (
            "img/scan.BMP",
            logging.WARNING,
            "imgpipe does not read .bmp files (it reads jpg, jpeg, jpe, png, webp, gif, tif, "
            "tiff, avif, heic, heif); convert it to PNG or JPEG",
        ),
        (
            "img/logo.svg",
            logging.DEBUG,
            "an SVG is published as written (a vector needs no renditions)",
        ),
        ("img/broken.jpg", logging.DEBUG, "it failed to build (reported above)"),
        ("img/link.jpg", logging.WARNING, "outside-source: a link out of the source tree"),
    ],
)
def test_why_an_image_is_left_as_written(path, level, reason):
    site = built(
        failures=[Issue("load", "truncated", "cut short", source="img/broken.jpg")],
        warnings=[
            Issue(
                "discover", "outside-source", "a link out of the source tree", source="img/link.jpg"
            )
        ],
    )
    found = left_as_is(site, str(SOURCE / path))
    assert found == (None if level is None else (level, reason))


def test_an_image_outside_the_source_names_the_source():
    assert left_as_is(built(), "/site/assets/a.jpg") == (
        logging.WARNING,
        f"it is outside imgpipe's source ({SOURCE}); set `source` to a directory that holds it",
    )
