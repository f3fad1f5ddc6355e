"""A `Recipe`: what one rendition should be, and its canonical option string (same meaning,
same string; `byte_form` leaves out what cannot change the bytes, for cache keys). Pure.
The option language that makes recipes is `options.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

from .errors import Problem
from .formats import AUTO

DEFAULT_TIMEOUT = 30.0
DEFAULT_BGCOLOR = "FFFFFF"


@dataclass(frozen=True)
class Recipe:
    """What one rendition should be. Sizes are CSS pixels; `density` multiplies them."""

    width: int | None = None
    height: int | None = None
    density: Fraction = Fraction(1)
    mode: str = "scale-down"
    gravity: str = "centre"  # for crop: centre|auto|top|bottom|left|right|focal
    # The focal point every crop keeps (fractions of the uncropped, autorotated image). With
    # mode crop it is the crop's own point (gravity "focal"); otherwise it places the aspect cut.
    focal: tuple[Fraction, Fraction] | None = None
    aspect: tuple[int, int] | None = None  # W:H in lowest terms: cut to it before sizing
    trim: bool = False
    bgcolor: str = DEFAULT_BGCOLOR
    quality: str | int = "medium"
    format: str = AUTO
    metadata: str = "strip"
    timeout: float = DEFAULT_TIMEOUT
    warnings: tuple[Problem, ...] = field(default=(), compare=False, hash=False)

    @property
    def full(self) -> bool:
        return self.width is None and self.height is None

    def box(self) -> tuple[Fraction | None, Fraction | None]:
        """The box in device pixels (None for a side that is not given). crop and pad with
        one side and an aspect get the other side from the aspect."""
        w = self.width * self.density if self.width else None
        h = self.height * self.density if self.height else None
        if self.aspect and self.mode in ("crop", "pad"):
            ratio = Fraction(*self.aspect)
            w = w if w is not None else h * ratio if h is not None else None
            h = h if h is not None else w / ratio if w is not None else None
        return w, h

    @property
    def aspect_gravity(self) -> str:
        """Where the aspect cut sits: the focal point, else the crop's gravity, else where
        libvips' attention finds the interesting part ("auto")."""
        if self.focal is not None:
            return "focal"
        return self.gravity if self.mode == "crop" else "auto"

    @property
    def uses_attention(self) -> bool:
        """Some cut of this recipe is placed by libvips attention (several pixel passes)."""
        return (self.mode == "crop" and self.gravity == "auto") or (
            self.aspect is not None and self.aspect_gravity == "auto"
        )

    def with_focus(self, focus: tuple[Fraction, Fraction]) -> Recipe:
        """This recipe with an image's focal point: every crop of it keeps that point, unless
        its own options name a side or a point."""
        if self.focal is not None or (
            self.mode == "crop" and self.gravity not in ("centre", "auto")
        ):
            return self
        if self.mode == "crop":
            return self.with_(gravity="focal", focal=focus)
        return self.with_(focal=focus) if self.aspect else self

    def canonical(self) -> str:
        """Same meaning, same string: defaults are left out, tokens in a fixed order."""
        return ",".join(self._tokens(with_timeout=True))

    def byte_form(self) -> str:
        """The canonical form without what cannot change the output bytes (for cache keys)."""
        return ",".join(self._tokens(with_timeout=False))

    def _tokens(self, with_timeout: bool) -> list[str]:
        if self.full:
            tokens = ["full"]
        else:
            tokens = [f"{self.width or ''}x{self.height}" if self.height else str(self.width)]
        if self.mode == "crop":
            if self.focal:
                tokens.append(f"crop={_num(self.focal[0])}x{_num(self.focal[1])}")
            elif self.gravity != "centre":
                tokens.append(f"crop={self.gravity}")
            else:
                tokens.append("crop")
        elif self.mode != "scale-down":
            tokens.append(self.mode)
        if self.aspect:
            tokens.append(f"aspect={self.aspect[0]}:{self.aspect[1]}")
            if self.focal and self.mode != "crop":
                tokens.append(f"focus={_num(self.focal[0])}x{_num(self.focal[1])}")
        if self.density != 1:
            tokens.append(f"{_num(self.density)}x")
        if self.trim:
            tokens.append("trim")
        if self.bgcolor != DEFAULT_BGCOLOR:
            tokens.append(f"bgcolor={self.bgcolor}")
        if self.quality != "medium":
            tokens.append(f"quality={self.quality}")
        if self.format != AUTO:
            tokens.append(f"format={self.format}")
        if self.metadata != "strip":
            tokens.append(f"metadata={self.metadata}")
        if with_timeout and self.timeout != DEFAULT_TIMEOUT:
            tokens.append(f"timeout={self.timeout:g}")
        return tokens

    def __str__(self) -> str:
        return self.canonical()

    def with_(self, **changes) -> Recipe:
        return replace(self, **changes)


def _num(value: Fraction) -> str:
    return f"{float(value):g}"
