"""One contract, every engine: the real one, the test fake and each wrapper (watch's timer).

The same calls and the same expected results run against each, so a wrapper that drops an
argument (TimedEngine once lost `svg_mode`, and watch failed every SVG) or a fake that
accepts less than the engine fails here. mypy checks the same implementations against
`imgpipe.model.Engine` (see [tool.mypy] in pyproject.toml).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_engine import FakeEngine

import imgpipe.engine
from imgpipe.errors import ImageError
from imgpipe.model import Engine, Limits, Rendition, SourceHandle
from imgpipe.options import parse
from imgpipe.rounds import TimedEngine

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
    b'<rect width="40" height="20" fill="#336699"/></svg>'
)


def _png(width: int, height: int) -> bytes:
    import pyvips

    image = pyvips.Image.black(width, height, bands=3).new_from_image([51, 102, 153])
    return bytes(image.cast("uchar").copy(interpretation="srgb").pngsave_buffer())


def _text(width: int, height: int) -> bytes:
    return f"{width}x{height}\n".encode()


@dataclass(frozen=True)
class Implementation:
    make: Callable[[], Engine]
    raster: Callable[[int, int], bytes]  # a WxH source this engine can read


def _real() -> Engine:
    return imgpipe.engine  # the module is the engine: mypy checks it against the protocol


IMPLEMENTATIONS = {
    "engine": Implementation(_real, _png),
    "fake": Implementation(FakeEngine, _text),
    "timed-engine": Implementation(lambda: TimedEngine(_real()), _png),
    "timed-fake": Implementation(lambda: TimedEngine(FakeEngine()), _text),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def impl(request: pytest.FixtureRequest) -> Implementation:
    return IMPLEMENTATIONS[str(request.param)]


def _renditions(source: SourceHandle, *options: str) -> list[Rendition]:
    results = source.render_all([parse(o) for o in options])
    assert len(results) == len(options)
    assert all(isinstance(r, Rendition) for r in results), results
    return [r for r in results if isinstance(r, Rendition)]


def test_open_source_takes_every_argument_of_the_protocol(impl: Implementation) -> None:
    expected = inspect.signature(Engine.open_source).parameters
    found = inspect.signature(impl.make().open_source).parameters
    for name in ("source", "limits", "svg_mode"):
        assert name in found, f"open_source has no {name!r}"
        assert found[name].kind == expected[name].kind, name
    assert found["svg_mode"].default is None


def test_raster_source_renders_every_recipe(impl: Implementation) -> None:
    source = impl.make().open_source(impl.raster(40, 30), Limits())
    assert (source.info.width, source.info.height) == (40, 30)
    small, square = _renditions(source, "20,format=jpeg", "10x10,crop,format=png")
    assert (small.format, small.width, small.height) == ("jpeg", 20, 15)
    assert (square.format, square.width, square.height) == ("png", 10, 10)
    assert small.data and square.data


def test_render_is_render_all_of_one(impl: Implementation) -> None:
    source = impl.make().open_source(impl.raster(40, 30), Limits())
    one = source.render(parse("20,format=png"))
    (same,) = _renditions(source, "20,format=png")
    assert (one.format, one.width, one.height) == (same.format, same.width, same.height)


def test_a_path_opens_like_its_bytes(impl: Implementation, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(impl.raster(40, 30))
    source = impl.make().open_source(str(path), Limits())
    assert (source.info.width, source.info.height) == (40, 30)


def test_unreadable_source_is_an_image_error(impl: Implementation) -> None:
    with pytest.raises(ImageError):
        impl.make().open_source(b"not an image at all", Limits())


def test_svg_is_refused_without_a_mode(impl: Implementation) -> None:
    with pytest.raises(ImageError):
        impl.make().open_source(SVG, Limits())


def test_svg_copy_publishes_the_source_bytes(impl: Implementation) -> None:
    source = impl.make().open_source(SVG, Limits(), svg_mode="copy")
    (copy,) = _renditions(source, "20")
    assert (copy.data, copy.format, copy.width, copy.height) == (SVG, "svg", 40, 20)


def test_svg_rasterize_draws_it(impl: Implementation) -> None:
    source = impl.make().open_source(SVG, Limits(), svg_mode="rasterize")
    (drawn,) = _renditions(source, "20,format=png")
    assert (drawn.format, drawn.width, drawn.height) == ("png", 20, 10)


def test_versions_and_identity_are_plain_strings(impl: Implementation) -> None:
    engine = impl.make()
    assert isinstance(engine.ENGINE_VERSION, str) and engine.ENGINE_VERSION
    versions = engine.versions()
    assert versions and all(isinstance(k, str) and isinstance(v, str) for k, v in versions.items())
    identity = engine.identity()
    assert identity is None or all(
        isinstance(k, str) and isinstance(v, str) for k, v in identity.items()
    )


def test_timed_engine_counts_the_time_spent_inside() -> None:
    timer = TimedEngine(FakeEngine())
    source = timer.open_source(b"40x30\n", Limits())
    _renditions(source, "20")
    assert timer.seconds > 0
