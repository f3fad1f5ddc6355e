"""The one way the engine words an image failure: a single line naming the file, what is
wrong, what was expected and what to do. libvips errors are multi-line logs; only their most
telling line is kept, and no traceback ever reaches the user.
"""

from __future__ import annotations

from ..errors import ImageError, describe, size_text  # noqa: F401 - load.py's name for it


def fail(
    code: str, name: str, problem: str, expected: str, suggestion: str, stage: str = "load"
) -> ImageError:
    """The engine's shorthand for `errors.describe` of a file (the one wording)."""
    return ImageError(describe(code, name, expected, problem=problem, advice=suggestion), stage)


_WRAPPERS = (
    "unable to call",
    "unable to load",
    "unable to copy",
    "unable to write",
    "load error",
    "save error",
)


def vips_reason(error: BaseException) -> str | None:
    """The most telling line of a pyvips.Error, or None if it has only wrapper lines.

    libvips puts the cause last and its wrappers first; libpng and libnsgif report their cause
    as a log warning instead, leaving only "unable to call pngload_buffer", which tells nothing.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = [line for line in lines if not any(w in line for w in _WRAPPERS)]
    return detail[-1][:200] if detail else None


def because(error: BaseException) -> str:
    """' (reason)' for appending to a message, or '' when libvips said nothing useful."""
    reason = vips_reason(error)
    return f" ({reason})" if reason else ""


def megapixels(pixels: int) -> str:
    return f"{_short(pixels / 1_000_000)} megapixels"


def _short(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")
