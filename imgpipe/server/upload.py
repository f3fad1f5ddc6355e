"""Read an uploaded image: the request body under a size limit, then the multipart field `file`.

Tolerant where real clients are sloppy: the official PHP client sends
`Content-Type: multipart/form-data, boundary=...` (a comma, not a semicolon) and a Content-MD5
of the file *name*, so the header is parsed by hand and Content-MD5 is ignored.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from ..errors import ImgpipeError, Problem

FIELD = "file"
# Room for the multipart framing around a file of the maximum size.
FRAMING_ALLOWANCE = 64 * 1024
# An upload is one image and perhaps a few form fields. Parsing stops at this many parts: 900,000
# tiny parts in a 47 MB body used to take 50 s (and a 400 listing every name).
MAX_PARTS = 16
# RFC 2046 says 70 characters, which some clients exceed; python-multipart refuses more than
# 256 with an exception of its own (older versions have no limit at all).
MAX_BOUNDARY = 256
_SHOWN_NAMES, _SHOWN_NAME = 5, 40  # field names quoted back in an error, characters of each
_PARAM = re.compile(r'[;,]\s*boundary\s*=\s*("([^"]+)"|[^;,\s]+)', re.IGNORECASE)


class UploadError(ImgpipeError):
    """The request body is not a usable upload."""


def _fail(code: str, message: str) -> UploadError:
    return UploadError(Problem(code=code, message=message, where="upload"))


async def read_body(chunks: AsyncIterator[bytes], declared_length: str | None, limit: int) -> bytes:
    """The whole body, or UploadError('too-large') as soon as it passes `limit`."""
    if declared_length and declared_length.isdigit() and int(declared_length) > limit:
        raise _fail(
            "too-large", f"the upload is {declared_length} bytes; the limit is {limit} bytes"
        )
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise _fail("too-large", f"the upload is larger than the limit of {limit} bytes")
    return bytes(body)


def boundary_of(content_type: str) -> str | None:
    """The multipart boundary, accepting `;` or `,` before it; None if not multipart."""
    media = re.split(r"[;,]", content_type, maxsplit=1)[0].strip().lower()
    if media != "multipart/form-data":
        return None
    match = _PARAM.search(content_type)
    if not match:
        return None
    return match.group(2) or match.group(1)


def file_field(body: bytes, content_type: str) -> bytes:
    """The bytes of the multipart field `file`, or UploadError saying what was sent instead."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise _fail(
            "missing-url",
            "expected an image URL after the options, or a "
            f"multipart/form-data upload with the image in the field {FIELD!r} "
            f"(got Content-Type {content_type or 'none'!r})",
        )
    if len(boundary) > MAX_BOUNDARY:
        raise _fail(
            "bad-upload",
            f"the multipart boundary is {len(boundary)} characters long; "
            f"expected at most {MAX_BOUNDARY}",
        )
    parts: list[tuple[bytes, bytearray]] = []  # (Content-Disposition, data)
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    disposition = [b""]

    def on_part_begin() -> None:
        if len(parts) == MAX_PARTS:  # stops the parser: the work per request stays bounded
            raise _fail(
                "bad-upload",
                f"the upload has more than {MAX_PARTS} parts; expected "
                f"the image in the field {FIELD!r} and at most {MAX_PARTS - 1} others",
            )
        disposition[0] = b""
        parts.append((b"", bytearray()))

    def on_header_end() -> None:
        if bytes(header["field"]).strip().lower() == b"content-disposition":
            disposition[0] = bytes(header["value"])
        header["field"].clear()
        header["value"].clear()

    def on_headers_finished() -> None:
        parts[-1] = (disposition[0], parts[-1][1])

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_part_data": lambda data, start, end: parts[-1][1].extend(data[start:end]),
        "on_header_field": lambda data, start, end: header["field"].extend(data[start:end]),
        "on_header_value": lambda data, start, end: header["value"].extend(data[start:end]),
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise _fail("bad-upload", f"the multipart body cannot be read: {exc}") from exc
    names = []
    for raw_disposition, data in parts:
        _, params = parse_options_header(raw_disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == FIELD:
            if not data:
                raise _fail("empty-file", f"the field {FIELD!r} is empty")
            return bytes(data)
        names.append(repr(name[:_SHOWN_NAME] + ("..." if len(name) > _SHOWN_NAME else "")))
    shown = ", ".join(names[:_SHOWN_NAMES]) or "none"
    if len(names) > _SHOWN_NAMES:
        shown += f" and {len(names) - _SHOWN_NAMES} more"
    raise _fail("bad-upload", f"no field {FIELD!r} in the upload (fields sent: {shown})")
