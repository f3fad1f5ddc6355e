"""The metadata policy: `metadata=strip` (default) keeps nothing but colour, `copyright` the
credit and never the GPS position or camera serials, `keep` everything; per option string and
per rule."""

from __future__ import annotations

import pytest

from imgpipe.config import load
from imgpipe.engine import open_source
from imgpipe.errors import ConfigError, OptionError
from imgpipe.options import parse

OUTPUTS = ("jpeg", "png", "webp", "avif")
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="52,31.2N"/></rdf:RDF></x:xmpmeta>'
)
SECRETS = (b"SN-12345", b"PhoneMaker", b"52,31.2N")  # serial, make, XMP position


@pytest.fixture(scope="module")
def photo(synth):
    """A phone photo: credit, camera make and serial, a GPS position in EXIF and XMP, and an
    orientation (stored turned)."""
    image = synth.coords(120, 80).copy()
    text = synth.vips.GValue.gstr_type
    for field, value in {
        "exif-ifd0-Artist": "Jane Doe",
        "exif-ifd0-Copyright": "(c) Jane Doe",
        "exif-ifd0-Make": "PhoneMaker",
        "exif-ifd2-BodySerialNumber": "SN-12345",
        "exif-ifd3-GPSLatitudeRef": "N",
        "exif-ifd3-GPSLatitude": "52/1 31/1 12/1",
    }.items():
        image.set_type(text, field, value)
    image.set_type(synth.vips.GValue.gint_type, "orientation", 6)
    image.set_type(synth.vips.GValue.blob_type, "xmp-data", XMP)
    return image.jpegsave_buffer(Q=95, keep="exif,xmp")


def fields(synth, data: bytes) -> dict[str, str]:
    out = synth.decode(data)
    return {f: str(out.get(f)) for f in out.get_fields() if f.startswith(("exif-", "xmp-"))}


def test_the_source_carries_what_the_policies_sort(photo, synth):
    found = fields(synth, photo)
    assert "exif-ifd3-GPSLatitude" in found and "xmp-data" in found
    assert "exif-ifd2-BodySerialNumber" in found


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_strip_keeps_nothing(fmt, photo, synth):
    for options in (f"60,format={fmt}", f"60,format={fmt},metadata=strip"):
        data = open_source(photo).render(parse(options)).data
        assert fields(synth, data) == {}, options
        assert not any(secret in data for secret in (*SECRETS, b"Jane Doe")), options


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_copyright_keeps_the_credit_and_never_the_position(fmt, photo, synth):
    data = open_source(photo).render(parse(f"60,format={fmt},metadata=copyright")).data
    found = fields(synth, data)
    assert found["exif-ifd0-Artist"].startswith("Jane Doe")
    assert found["exif-ifd0-Copyright"].startswith("(c) Jane Doe")
    assert not [f for f in found if "GPS" in f or "Serial" in f or "Make" in f], found
    assert "xmp-data" not in found
    assert not any(secret in data for secret in SECRETS)


@pytest.mark.parametrize("fmt", OUTPUTS)
def test_keep_keeps_everything_upright(fmt, photo, synth):
    rendition = open_source(photo).render(parse(f"60,format={fmt},metadata=keep"))
    found = fields(synth, rendition.data)
    assert found["exif-ifd3-GPSLatitudeRef"].startswith("N")
    assert "exif-ifd2-BodySerialNumber" in found
    assert fmt == "png" or "xmp-data" in found  # libvips writes no XMP into a PNG
    # The pixels are turned already: a viewer must not turn them again.
    assert found.get("exif-ifd0-Orientation", "1").startswith("1")
    assert (rendition.width, rendition.height) == (60, 90)


def test_copyright_without_a_credit_writes_no_exif(synth):
    image = synth.coords(120, 80).copy()
    image.set_type(synth.vips.GValue.gstr_type, "exif-ifd3-GPSLatitudeRef", "N")
    data = open_source(image.jpegsave_buffer(keep="exif")).render(
        parse("60,format=jpeg,metadata=copyright")
    )
    assert fields(synth, data.data) == {}


def test_the_option_is_part_of_the_canonical_form():
    assert parse("metadata=copyright,full").canonical() == "full,metadata=copyright"
    assert parse("full,metadata=strip").canonical() == "full"
    assert parse("full,metadata=keep").byte_form() == "full,metadata=keep"  # in cache keys
    with pytest.raises(OptionError) as caught:
        parse("full,metadata=all")
    assert "metadata=strip|copyright|keep" in str(caught.value)


def test_a_rule_sets_the_policy_of_its_renditions(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "imgpipe.toml").write_text(
        'source = "src"\noutput = "out"\n'
        '[[rules]]\ninclude = ["*.jpg"]\nmetadata = "copyright"\n'
        'renditions = { a = "100", b = "100,metadata=keep" }\n'
        'widths = [200]\nformats = ["webp"]\n'
    )
    rule = load(directory=tmp_path).rules[0]
    policies = {spec.label: spec.recipe.metadata for spec in rule.renditions}
    assert policies == {"a": "copyright", "b": "keep", "200-webp": "copyright"}
    (tmp_path / "imgpipe.toml").write_text(
        'source = "src"\n[[rules]]\ninclude = ["*"]\nmetadata = "gps"\nrenditions = {a = "100"}\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(directory=tmp_path)
    assert "rules[0].metadata" in str(caught.value) and '"copyright"' in str(caught.value)
