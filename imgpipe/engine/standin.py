"""When the source file itself is the answer for a `full` rendition in its own format.

Two cases (issue 12):
- time ran out (`timeout=`: the decode, an encode or a quality search): the file as it is
  beats an error, as the README promises for every timeout;
- the encode came out larger than the file: re-optimising an optimised JPEG grew it by 10
  bytes, an animated GIF by 768; at `full` the file is the smaller equal.

The file stands in only when a browser shows it as the rendition would look: the same format,
the same frames, no EXIF turn (the mozjpeg recode drops the tag, and the sizes in the manifest
are those after the turn). And never with what the encoders strip (DESIGN §4: no EXIF, no GPS
position leaks): a JPEG is recoded losslessly by mozjpeg, which keeps no marker, unless it
carries an ICC profile (its colours would shift without it); otherwise the file is used only
when it carries no EXIF, XMP or IPTC.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import pyvips

from ..errors import ImageError, Problem
from ..formats import AUTO, FORMATS
from ..model import Rendition, SourceInfo
from ..options import Recipe
from .optimise import Original
from .sniff import Kind

_METADATA = ("exif-data", "xmp-data", "iptc-data")


@dataclass
class OwnFile:
    """A source file, as a possible stand-in for its `full` renditions."""

    original: Original
    kind: Kind
    info: SourceInfo

    def stands_in(self, recipe: Recipe) -> bool:
        """Whether the file has the pixels and format `recipe` asks for (not its bytes yet)."""
        family = self.info.format
        return (
            recipe.full
            and not recipe.trim
            and family in FORMATS
            and recipe.format in (AUTO, family)
            # format=auto keeps an animation as a GIF only: an animated WebP would be remade.
            and (self.info.frames == 1 or family == "gif" or recipe.format == family)
            and not self._header("turned")
        )

    def instead_of(self, recipe: Recipe, result: Rendition | ImageError) -> Rendition | ImageError:
        """`result`, or the file in its place when time ran out or the file is smaller."""
        if isinstance(result, ImageError):
            if result.code != "timeout" or not self.stands_in(recipe) or self.clean is None:
                return result
            note = Problem(
                "timeout-copied",
                f"{recipe} took longer than timeout={recipe.timeout:g}s; the source file is "
                "used as it is",
            )
            return self._rendition(recipe, self.clean, (*recipe.warnings, note))
        if (
            len(result.data) <= len(self.original.data)  # the common case: nothing to do
            or result.format != self.info.format
            or not self.stands_in(recipe)
        ):
            return result
        clean = self.clean
        if clean is None or len(clean) >= len(result.data):
            return result
        return replace(
            result,
            data=clean,
            encoder_quality=self.original.jpeg_quality,
            score=100.0 if result.score is not None else None,
        )

    @cached_property
    def clean(self) -> bytes | None:
        """The file's bytes without metadata, or None when they cannot be had."""
        if self.info.format == "jpeg" and not self._header("icc"):
            recoded = self.original.recoded()
            if recoded is not None:
                return (
                    min(recoded, self.original.data, key=len)
                    if not self._header("metadata")
                    else recoded
                )
        return None if self._header("metadata") else self.original.data

    def _rendition(self, recipe: Recipe, data: bytes, warnings: tuple[Problem, ...]) -> Rendition:
        return Rendition(
            data=data,
            format=self.info.format,
            width=self.info.width,
            height=self.info.height,
            quality=recipe.quality,
            encoder_quality=self.original.jpeg_quality,
            warnings=warnings,
        )

    def _header(self, what: str) -> bool:
        return self._fields[what]

    @cached_property
    def _fields(self) -> dict[str, bool]:
        # The allow-listed loader, by name, as everywhere (load.py)
        header = getattr(pyvips.Image, self.kind.loader)(self.original.data, access="sequential")
        fields = set(header.get_fields())
        turned = "orientation" in fields and header.get("orientation") not in (0, 1)
        return {
            "turned": turned,
            "icc": "icc-profile-data" in fields,
            "metadata": any(name in fields for name in _METADATA),
        }
