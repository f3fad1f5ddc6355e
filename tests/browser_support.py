"""Headless Chromium and a local HTTP server for the browser tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

# One launch configuration and one static server for the tests and `imgpipe audit`.
from imgpipe.audit.browser import CHROMIUM, CHROMIUM_ARGS
from imgpipe.audit.site import serve_directory as serve  # noqa: F401 - for the tests


def require_chromium() -> None:
    """Skip the module without Debian's chromium, except in CI, where .ci/run installs it."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing; .ci/run should have installed chromium")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


@contextmanager
def chromium(sync_api) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
