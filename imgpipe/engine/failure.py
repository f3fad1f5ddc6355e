"""The one way the engine words an image failure: a single line naming the file, what is
wrong, what was expected and what to do. libvips errors are multi-line logs; only their most
telling line is kept, and no traceback ever reaches the user.
"""

from __future__ import annotations

from ..errors import ImageError, image_error


def fail(code: str, name: str, problem: str, expected: str, suggestion: str,
         stage: str = "load") -> ImageError:
    return image_error(code, f"{name}: {problem}; expected {expected}; {suggestion}", stage)


def vips_reason(error: BaseException) -> str:
    """The most telling line of a pyvips.Error: libvips puts the cause last, the wrapper first."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = [line for line in lines if not line.startswith(("unable to call", "unable to load",
                                                              "unable to copy", "unable to write"))]
    reason = (detail or lines or ["unknown libvips error"])[-1]
    return reason[:200]


def megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.1f} megapixels"


def megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB"
