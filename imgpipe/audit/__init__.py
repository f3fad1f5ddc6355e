"""`imgpipe audit`: a built site's images checked in headless Chromium, with the fix for each.

    report = audit("site/")                      # a folder (served on 127.0.0.1 for the run)
    report = audit("http://127.0.0.1:8000/", pages=["index.html"], config=config)

For each page: two fresh loads (a phone at DPR 2, a laptop at DPR 1) say which files Chromium
chose; a sweep of the viewport width (sweep.py) measures every image's rendered width and what
its `sizes` says there; findings.py judges them. One browser serves the whole run. Playwright
(the `audit` extra) is imported only by browser.py, when a run starts; the core never imports
this package (import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from . import browser
from .findings import KINDS, Finding, judge
from .site import Manifests, crawl, folder_pages, served

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["KINDS", "AuditError", "Finding", "Report", "audit"]


class AuditError(Exception):
    """The site or a page cannot be audited: one readable line."""


@dataclass(frozen=True)
class Report:
    pages: tuple[str, ...]
    findings: tuple[Finding, ...]
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {"pages": len(self.pages), "findings": [f.as_dict() for f in self.findings]}

    def failing(self, allowed: Sequence[str] = ()) -> list[Finding]:
        return [f for f in self.findings if f.kind not in allowed]


def audit(
    target: str | Path,
    pages: Sequence[str] = (),
    config: Config | None = None,
    progress: Callable[[str], None] = lambda _line: None,
    manifests: Sequence[Path] = (),
    chromium: object | None = None,
) -> Report:
    """Audit the site at `target` (a folder or an http:// URL): every HTML page, or `pages`
    (site-relative paths). `config` names the rules behind imgpipe's `sizes`; `manifests`
    are imgpipe manifests of the site not published with it; `chromium` is a Playwright
    browser to use (default: one launched for this run). Raises AuditError."""
    started = time.perf_counter()
    target = str(target)
    if not target.startswith(("http://", "https://")) and not Path(target).is_dir():
        raise AuditError(
            f"{target}: no such folder; expected a built site's folder or an http:// URL "
            "(build the site first)"
        )
    with served(target) as (base, folder), _browser(chromium) as chromium:
        wanted = [_page_path(p) for p in pages]
        if not wanted:
            if folder is not None:
                wanted = folder_pages(folder)
            else:
                wanted = crawl(base, [""], lambda url: browser.links(chromium, url, base))
        if not wanted:
            raise AuditError(f"{target}: no HTML pages found; expected a built site")
        known = Manifests(base, config, manifests)
        findings: list[Finding] = []
        for page in wanted:
            progress(f"auditing {page or '/'}")
            try:
                scan = browser.scan(chromium, urljoin(base, page), known.origin)
            except browser.PageError as error:
                raise AuditError(
                    f"{page}: cannot load it ({error}); check the --page path"
                ) from None
            findings += judge(page, scan, known.origin_of)
    return Report(tuple(wanted), tuple(findings), time.perf_counter() - started)


def _page_path(page: str) -> str:
    return page.lstrip("/")


@contextmanager
def _browser(given: object | None) -> Iterator[object]:
    if given is not None:
        yield given
        return
    if importlib.util.find_spec("playwright") is None:
        raise AuditError("imgpipe audit needs Playwright: pip install 'imgpipe[audit]'")
    try:
        with browser.chromium() as chromium:
            yield chromium
    except browser.LaunchError as error:
        raise AuditError(
            f"cannot start Chromium ({error}); expected {browser.CHROMIUM} or "
            "$IMGPIPE_CHROMIUM; install it (apt-get install chromium, or: playwright install "
            "chromium)"
        ) from None
