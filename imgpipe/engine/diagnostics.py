"""What libvips says while it works: never printed, and a warning of ours when it matters.

pyvips hands libvips' log messages to the Python logger "pyvips". An application that sets up
logging (MkDocs, Pelican, uvicorn under `imgpipe serve`, a user's script) would print them as
stray lines naming no file ("VIPS: read gave 4 warnings", libpng chatter about a chunk). They
stop at that logger instead. While a decode runs on a thread, what that thread reports is
collected (`listening`), and libjpeg's reports of damaged data, which it passes over with a
grey or smeared block, become one `damaged-source` warning on the renditions.
Messages from libvips' own worker threads cannot be told apart by source, so they are dropped:
those threads report the decode errors that end as an ImageError anyway.

GLib treats a message logged while the same thread is inside a log handler as fatal (its
G_LOG_FATAL_MASK holds G_LOG_FLAG_RECURSION) and aborts the process. With pyvips' handler in
Python that happens: Python's garbage collector runs inside the handler, frees a JPEG loader,
and the loader logs "read gave 2 warnings" (measured: a build of the hostile corpus died of
SIGABRT after a "VIPS-WARNING (recursed)" line). Such a message goes to GLib's fallback
handler instead (one stderr line), and the process lives on.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import pyvips

from ..errors import Problem

_HEARD: ContextVar[list[str] | None] = ContextVar("heard", default=None)
# libjpeg's warnings about the data itself (jerror.h: JWRN_*), as libvips passes them on.
_DAMAGE = (
    "corrupt jpeg data",
    "premature end of jpeg file",
    "invalid scan script",
    "inconsistent progression",
    "huffman",
    "jpeg datastream contains no image",
)


class _Collector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        heard = _HEARD.get()
        if heard is not None:
            heard.append(record.getMessage())


def install() -> None:
    _recursion_not_fatal()
    _warnings_only()
    logger = logging.getLogger("pyvips")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    if not any(isinstance(h, _Collector) for h in logger.handlers):
        logger.addHandler(_Collector())


G_LOG_LEVEL_ERROR = 1 << 2  # GLib keeps errors fatal whatever the mask says
G_LOG_WARNING_AND_WORSE = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4)


def _warnings_only() -> None:
    """Only warnings and worse go through pyvips' handler into Python. pyvips registers it for
    every level, so each evaluation's "threadpool completed" INFO runs Python code, where the
    garbage collector may free a loader that logs (the recursion above); GLib's own default
    handler drops INFO and DEBUG unless G_MESSAGES_DEBUG asks for them. Best effort: it uses
    pyvips' private handler id, and leaves things as they are if that is gone."""
    handler_id = getattr(pyvips, "_log_handler_id", None)
    callback = getattr(pyvips, "_log_handler_cb", None)
    if not handler_id or callback is None:
        return
    pyvips.glib_lib.g_log_remove_handler(b"VIPS", handler_id)
    # pyvips removes the handler by this id at exit: keep it pointing at the live one.
    pyvips._log_handler_id = pyvips.glib_lib.g_log_set_handler(
        b"VIPS", G_LOG_WARNING_AND_WORSE, callback, pyvips.ffi.NULL
    )


def _recursion_not_fatal() -> None:
    """Clear G_LOG_FLAG_RECURSION from GLib's fatal masks, in the GLib that libvips uses (a
    system libglib, or the copy linked into pyvips-binary's libvips). Best effort: where the
    library cannot be found (no /proc), the masks stay as they are."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return
    paths = {
        line.split(maxsplit=5)[-1]
        for line in maps.splitlines()
        if "libvips" in line or "libglib-2.0" in line
    }
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same library and GLib state
            set_always, set_domain = lib.g_log_set_always_fatal, lib.g_log_set_fatal_mask
        except (OSError, AttributeError):
            continue
        set_always.argtypes, set_always.restype = [ctypes.c_uint], ctypes.c_uint
        set_domain.argtypes = [ctypes.c_char_p, ctypes.c_uint]
        set_domain.restype = ctypes.c_uint
        set_always(G_LOG_LEVEL_ERROR)
        set_domain(b"VIPS", G_LOG_LEVEL_ERROR)


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
    # A message may carry several lines (libvips repeats its error buffer): one report each.
    lines = (line for message in heard for line in message.removeprefix("VIPS: ").splitlines())
    for line in lines:
        text = line.strip().removeprefix("VipsJpeg: ")
        # "N extraneous bytes before marker" is padding many cameras write: no damage.
        if (
            any(word in text.lower() for word in _DAMAGE)
            and "extraneous" not in text
            and text not in reports
        ):
            reports.append(text)
    if not reports:
        return None
    more = f", and {len(reports) - 1} more" if len(reports) > 1 else ""
    return Problem(
        "damaged-source",
        f"the {label} decoder passed over damaged data "
        f"({reports[0]}{more}); the rendition may show it: re-export the original "
        "if it does",
    )
