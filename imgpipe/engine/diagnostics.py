"""What libvips says while it works: never printed, and a warning of ours when it matters.

pyvips hands libvips' log messages to the Python logger "pyvips". An application that sets up
logging (MkDocs, Pelican, uvicorn under `imgpipe serve`, a user's script) would print them as
stray lines naming no file ("VIPS: read gave 4 warnings", libpng chatter about a chunk). They
stop at that logger instead. While a decode runs on a thread, what that thread reports is
collected (`listening`), and libjpeg's reports of damaged data, which it passes over with a
grey or smeared block, become one `damaged-source` warning on the renditions.
Messages from libvips' own worker threads cannot be told apart by source, so they are dropped:
those threads report the decode errors that end as an ImageError anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ..errors import Problem

_HEARD: ContextVar[list[str] | None] = ContextVar("heard", default=None)
# libjpeg's warnings about the data itself (jerror.h: JWRN_*), as libvips passes them on.
_DAMAGE = ("corrupt jpeg data", "premature end of jpeg file", "invalid scan script",
           "inconsistent progression", "huffman", "jpeg datastream contains no image")


class _Collector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        heard = _HEARD.get()
        if heard is not None:
            heard.append(record.getMessage())


def install() -> None:
    logger = logging.getLogger("pyvips")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    if not any(isinstance(h, _Collector) for h in logger.handlers):
        logger.addHandler(_Collector())


@contextmanager
def listening() -> Iterator[list[str]]:
    """The libvips messages logged on this thread inside the block."""
    heard: list[str] = []
    token = _HEARD.set(heard)
    try:
        yield heard
    finally:
        _HEARD.reset(token)


def damage_warning(heard: list[str], label: str) -> Problem | None:
    """One warning for what the decoder passed over, or None if it reported no damage."""
    reports = []
    for message in heard:
        text = message.removeprefix("VIPS: ").removeprefix("VipsJpeg: ").strip()
        # "N extraneous bytes before marker" is padding many cameras write: no damage.
        if (any(word in text.lower() for word in _DAMAGE) and "extraneous" not in text
                and text not in reports):
            reports.append(text)
    if not reports:
        return None
    more = f", and {len(reports) - 1} more" if len(reports) > 1 else ""
    return Problem("damaged-source", f"the {label} decoder passed over damaged data "
                   f"({reports[0]}{more}); the rendition may show it: re-export the original "
                   "if it does")
