"""SVG sources: copied untouched by default; rasterised only when a rule opts in, and then only
after a pre-scan that refuses anything reaching outside the file or blowing up. No network or
file access happens either way (a listening socket counts connections; a secret file's
contents must appear nowhere)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

pyvips = pytest.importorskip("pyvips")

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402
from imgpipe.engine import open_source  # noqa: E402
from imgpipe.engine.svg import declared_size  # noqa: E402
from imgpipe.errors import ImageError  # noqa: E402
from imgpipe.options import parse  # noqa: E402

NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
SECRET = "TOPSECRET-4f1c9"


def svg(body: str, attrs: str = 'width="40" height="20"', prolog: str = "") -> bytes:
    return f"{prolog}<svg {NS} {attrs}>{body}</svg>".encode()


def hostile(url: str, secret: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (SVG, the code refusing it when rasterising)."""
    laughs = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    return {
        "external-entity": (
            svg(
                "<text>&s;</text>", prolog=f'<!DOCTYPE svg [<!ENTITY s SYSTEM "file://{secret}">]>'
            ),
            "unsafe-svg",
        ),
        "billion-laughs": (
            svg("<text>&l9;</text>", prolog=f"<!DOCTYPE svg [{laughs}]>"),
            "unsafe-svg",
        ),
        "xinclude": (
            svg(
                f'<text><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                f'href="file://{secret}" parse="text"/></text>'
            ),
            "unsafe-svg",
        ),
        "http-image": (
            svg(f'<image xlink:href="{url}/img.png" width="9" height="9"/>'),
            "unsafe-svg",
        ),
        "file-image": (svg(f'<image href="file://{secret}" width="9" height="9"/>'), "unsafe-svg"),
        "relative-use": (svg('<use href="other.svg#shape"/>'), "unsafe-svg"),
        "css-import": (svg(f"<style>@import url({url}/x.css);</style>"), "unsafe-svg"),
        "css-url": (svg(f'<rect width="9" height="9" style="fill:url({url}/#p)"/>'), "unsafe-svg"),
        "stylesheet-pi": (svg("", prolog=f'<?xml-stylesheet href="{url}/s.css"?>'), "unsafe-svg"),
        "nested-svg-data": (
            svg('<image href="data:image/svg+xml;base64,PHN2Zy8+"/>'),
            "unsafe-svg",
        ),
        "script": (svg("<script>fetch('/x')</script>"), "unsafe-svg"),
        "foreign-object": (svg("<foreignObject><p>hi</p></foreignObject>"), "unsafe-svg"),
        "huge-canvas": (svg("", 'width="1000000" height="1000000"'), "too-many-pixels"),
        "huge-viewbox": (svg("", 'viewBox="0 0 90000 90000"'), "too-many-pixels"),
        "no-size": (svg("", 'width="100%"'), "svg-without-size"),
    }


@pytest.fixture
def listener():
    """A local TCP server that records every connection made to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1)
                try:
                    accepted.append(conn.recv(1024) or b"<connected>")
                except OSError:
                    accepted.append(b"<connected>")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", accepted
    done.set()
    thread.join(2)
    server.close()


def test_the_listener_does_record_a_connection(listener):
    url, accepted = listener  # so its silence below means something
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))):
        pass
    for _ in range(20):
        if accepted:
            break
        threading.Event().wait(0.05)
    assert accepted


@pytest.mark.parametrize("rasterize", [True, False])
def test_hostile_svgs_are_refused_when_rasterising_and_copied_untouched_otherwise(
    tmp_path, listener, rasterize
):
    url, accepted = listener
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    cases = hostile(url, secret)
    (tmp_path / "images").mkdir()
    for name, (data, _code) in cases.items():
        (tmp_path / f"images/{name}.svg").write_bytes(data)
    (tmp_path / "imgpipe.toml").write_text(
        'source = "images"\noutput = "public"\ncache_dir = ".cache"\njobs = 2\n'
        f'[[rules]]\ninclude = ["*.svg"]\nrasterize_svg = {str(rasterize).lower()}\n'
        'renditions = { small = "32,format=png" }\n'
    )
    summary = build(load(tmp_path / "imgpipe.toml"))

    outputs = [p for p in (tmp_path / "public").rglob("*") if p.is_file()]
    assert all(SECRET.encode() not in p.read_bytes() for p in outputs)
    assert accepted == []
    if rasterize:
        refused = {Path(f.source).stem: f.code for f in summary.failures}
        assert refused == {name: code for name, (_, code) in cases.items()}
        assert all(f.label is None and f.stage == "load" for f in summary.failures)
    else:
        assert summary.ok and summary.built == len(cases)
        for name, (data, _code) in cases.items():
            (copy,) = (tmp_path / "public").glob(f"{name}-svg.*.svg")
            assert copy.read_bytes() == data


def test_refusals_say_why(tmp_path):
    cases = hostile("http://127.0.0.1:9", tmp_path / "secret")
    messages = {}
    for name in ("external-entity", "xinclude", "http-image", "huge-canvas"):
        with pytest.raises(ImageError) as error:
            open_source(cases[name][0], svg_mode="rasterize")
        messages[name] = str(error.value)
    assert "not rasterised: it has a DOCTYPE or ENTITY declaration" in messages["external-entity"]
    assert "it has an xi:include element" in messages["xinclude"]
    assert "refers outside the file" in messages["http-image"]
    assert "publish it as it is (drop rasterize_svg)" in messages["http-image"]
    assert "1000000x1000000" in messages["huge-canvas"]


def test_a_clean_svg_is_drawn_at_the_size_asked_for_and_the_loader_is_blocked_again():
    png = pyvips.Image.black(2, 2).new_from_image([0, 0, 255]).cast("uchar").pngsave_buffer()
    import base64

    data = svg(
        '<defs><rect id="r" width="20" height="10" fill="#f00"/></defs>'
        '<use href="#r"/><use xlink:href="#r" x="20" y="10" style="fill:url(#r)"/>'
        f'<image href="data:image/png;base64,{base64.b64encode(png).decode()}" '
        'x="30" y="0" width="10" height="10"/>',
        'viewBox="0 0 40 20"',
    )
    source = open_source(data, svg_mode="rasterize")
    assert (source.info.width, source.info.height, source.info.format) == (40, 20, "svg")
    # A vector is drawn, not enlarged: 4x the declared size stays sharp-edged.
    out = pyvips.Image.new_from_buffer(source.render(parse("160,format=png")).data, "")
    assert (out.width, out.height) == (160, 80)
    assert out.getpoint(70, 30)[:3] == [255, 0, 0] and out.getpoint(79, 39)[3] > 250
    assert out.getpoint(81, 10)[3] == 0  # transparent where nothing was drawn
    assert out.getpoint(150, 20)[:3] == [0, 0, 255]  # the inline PNG
    with pytest.raises(pyvips.Error, match="blocked"):
        pyvips.Image.svgload_buffer(data)
    with pytest.raises(ImageError) as error:  # and without svg_mode an SVG is still refused
        open_source(data)
    assert error.value.code == "blocked-format"


def test_copy_mode_refuses_a_file_that_is_not_an_svg(synth):
    with pytest.raises(ImageError) as error:
        open_source(synth.coords(8, 8).pngsave_buffer(), svg_mode="copy", name="logo.svg")
    assert error.value.code == "not-svg"
    assert "named as an SVG, it holds a PNG image" in str(error.value)


@pytest.mark.parametrize(
    "attrs,size",
    [
        ('width="40" height="20"', (40, 20)),
        ('width="2in" height="1in"', (192, 96)),
        ('width="10mm" height="5pt"', (10 * 96 / 25.4, 5 * 4 / 3)),
        ('viewBox="0 0 300 100"', (300, 100)),
        ('width="100%" height="50%" viewBox="0,0,30,10"', (30, 10)),
        ('width="60" viewBox="0 0 30 10"', (60, 20)),
        ('height="60" viewBox="0 0 30 10"', (180, 60)),
        ('width="100%"', None),
        ('viewBox="0 0 0 10"', None),
    ],
)
def test_declared_size(attrs, size):
    found = declared_size(svg("", attrs))
    assert found == (pytest.approx(size) if size else None)


def test_a_copied_svg_keeps_its_declared_size_in_the_manifest_and_snippet(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images/logo.svg").write_bytes(svg("<!-- kept -->", 'viewBox="0 0 120 30"'))
    (tmp_path / "images/badge.svg").write_bytes(svg("", 'width="100%"'))
    (tmp_path / "imgpipe.toml").write_text(
        'source = "images"\noutput = "public"\ncache_dir = ".cache"\n'
        '[[rules]]\ninclude = ["*.svg"]\nwidths = [200, 400]\nformats = ["webp", "png"]\n'
    )
    assert build(load(tmp_path / "imgpipe.toml")).ok
    snippet = (tmp_path / "public/_snippets/logo.svg.default.html").read_text()
    assert snippet.startswith('<img src="/logo-svg.') and 'width="120" height="30"' in snippet
    # No size of its own: the size a browser gives such an <img> (300x150).
    assert (
        'width="300" height="150"'
        in (tmp_path / "public/_snippets/badge.svg.default.html").read_text()
    )
