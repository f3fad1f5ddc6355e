"""How the server answers: problem codes to HTTP statuses (one table), error bodies, warnings.

Error bodies follow the ImageOptim API: `application/im2+json` with `status`, `error` and
`code`; clients (the official PHP one included) read `code == "IM2ACCOUNT"` as "your account is
wrong" and any other 403 as "the origin refused". So an origin refusal is a plain-text 403.
We add `problems`: every problem with its stable code, message and place.
"""

from __future__ import annotations

import html
import json

from starlette.responses import HTMLResponse, Response

from ..errors import ImgpipeError, Problem

IM2_JSON = "application/im2+json"
ACCOUNT_CODE = "IM2ACCOUNT"

# Every problem code the server can answer with, and its status. Option-language codes
# (options.py) are all 400 and not repeated here.
STATUS: dict[str, int] = {
    # the request itself
    "unknown-user": 403,
    "bad-host": 400,
    "missing-options": 400,
    "missing-url": 400,
    "bad-upload": 400,
    "too-large": 413,
    "upload-timeout": 408,
    "busy": 503,
    "timeout": 504,
    "internal-error": 500,
    # the image URL and its origin (fetch.py)
    "bad-url": 400,
    "unsupported-scheme": 400,
    "url-credentials": 400,
    "blocked-address": 400,
    "host-not-found": 404,
    "not-found": 404,
    "origin-forbidden": 403,
    "origin-error": 502,
    "origin-unreachable": 502,
    "too-many-redirects": 502,
    "fetch-timeout": 504,
    # the image (engine ImageError codes)
    "empty-file": 400,
    "truncated": 400,
    "decode-failed": 400,
    "unknown-format": 415,
    "blocked-format": 415,
    "unsupported-codec": 415,  # e.g. HEIC without an HEVC decoder
    "too-many-pixels": 413,
    "too-many-frames": 413,
    "file-too-large": 413,
    "unreadable": 400,
    "not-svg": 415,
    "svg-without-size": 400,
    "unsafe-svg": 415,
    "video-needs-animation": 400,  # format=webm|h264 asked of a still image
    "encode-failed": 500,  # an encoder failing on a readable image is our fault
}
# Answered as text/plain without an im2+json code: see the module docstring.
PLAIN = frozenset({"origin-forbidden"})
RETRY_AFTER_SECONDS = 2


def status_for(error: ImgpipeError) -> int:
    """The table's status; else 400: option errors and engine refusals are the request's.

    A crash in our code is not an ImgpipeError and is answered 500 by the app.
    """
    return STATUS.get(error.code, 400)


def error_response(error: ImgpipeError, status: int | None = None) -> Response:
    status = status or status_for(error)
    text = "; ".join(p.message for p in error.problems)
    if error.code in PLAIN:
        return Response(f"{status} {text}\n", status_code=status, media_type="text/plain")
    body = {
        "status": status,
        "error": text,
        "code": ACCOUNT_CODE if error.code == "unknown-user" else error.code,
        "problems": [
            {"code": p.code, "message": p.message, "where": p.where} for p in error.problems
        ],
    }
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status in (429, 503) else None
    return Response(
        json.dumps(body, indent=1) + "\n", status_code=status, media_type=IM2_JSON, headers=headers
    )


def warning_value(problem: Problem) -> str:
    """RFC 7234 `Warning: 199 - "text"`, with the text made safe for a header line."""
    text = str(problem).replace("\\", "\\\\").replace('"', '\\"')
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return f'199 - "{" ".join(text.split())}"'


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>imgpipe serve</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
code,pre{{background:#f4f4f4;padding:.1em .3em;white-space:pre-wrap}}</style></head><body>
<h1>imgpipe serve</h1>
{lead}
<pre>curl -XPOST -O -L '{example}'</pre>
{details}
<h2>How to call it</h2>
<p>This is a self-hosted endpoint compatible with the ImageOptim API. Send a <b>POST</b>
request to <code>/&lt;user&gt;/&lt;options&gt;/&lt;image URL&gt;</code>, or POST a multipart
upload in the field <code>file</code> to <code>/&lt;user&gt;/&lt;options&gt;</code>.
Options are comma-separated, e.g. <code>160x100,crop,2x,quality=low,format=webp</code>;
use <code>full</code> to optimize without resizing.</p>
</body></html>
"""


def help_page(
    request_url: str, options_report: str | None, image_url: str | None, status: int
) -> HTMLResponse:
    """The readable answer to a GET (a browser opening an API URL)."""
    if options_report is None:
        lead = "<p>Optimizes images sent to it with POST, for example:</p>"
        example = (
            html.escape(request_url.rstrip("/"))
            + "/&lt;user&gt;/full/https://example.com/image.png"
        )
    else:
        lead = "<p><b>This URL needs a POST request</b>; a browser sends GET. Try it with curl:</p>"
        example = html.escape(request_url)
    details = ""
    if options_report is not None:
        details += f"<h2>Options</h2><pre>{html.escape(options_report)}</pre>"
    if image_url:
        details += f"<h2>Image URL</h2><pre>{html.escape(image_url)}</pre>"
    page = _PAGE.format(lead=lead, example=example, details=details)
    headers = {"Allow": "POST"} if status == 405 else None
    return HTMLResponse(page, status_code=status, headers=headers)
