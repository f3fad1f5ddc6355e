"""The metadata policy (option `metadata=`): what of a source's EXIF, XMP and IPTC reaches its
renditions. The encoders write exactly what is left on the image they get
(`encode.keep_of`), so the decode drops it all (`bare`) and each rendition puts back what its
policy allows (`attach`):

- strip (default): nothing but the colour profile a wide-gamut source needs;
- copyright: the EXIF Artist and Copyright fields, nothing else: no GPS position, camera
  make, model or serial numbers, dates or XMP;
- keep: everything the source had (GPS included), with the orientation reset to upright,
  since the pixels are turned already.
"""

from __future__ import annotations

import pyvips

# libvips' names of the blobs a decoded image may carry besides its pixels and profile.
BLOBS = ("exif-data", "xmp-data", "iptc-data")
# The EXIF fields "copyright" keeps (libvips names them exif-ifd0-Artist...); libvips drops
# every tag of the blob that has no field when it writes it.
COPYRIGHT_FIELDS = ("exif-ifd0-Artist", "exif-ifd0-Copyright")

# The pixels are turned upright before anything else: a kept orientation would turn them again.
ORIENTATION = "exif-ifd0-Orientation"

Blobs = tuple[tuple[str, bytes], ...]


def blobs(image: pyvips.Image) -> Blobs:
    """The metadata blobs of a decoded image (read from its header: no pixels needed)."""
    return tuple((field, image.get(field)) for field in BLOBS if image.get_typeof(field))


def bare(image: pyvips.Image) -> pyvips.Image:
    """`image` without its EXIF, XMP and IPTC (a colour profile stays)."""
    present = [field for field in BLOBS if image.get_typeof(field)]
    if not present:
        return image
    image = image.copy()
    for field in present:
        image.remove(field)
    return image


def attach(image: pyvips.Image, found: Blobs, policy: str) -> pyvips.Image:
    """`image` (bare) with the source's metadata `found` that `policy` lets through."""
    kept = dict(found) if policy == "keep" else {}
    if policy == "copyright" and "exif-data" in dict(found):
        kept = {"exif-data": dict(found)["exif-data"]}
    if not kept:
        return image
    image = image.copy()
    # Setting the blob makes libvips parse it into exif-ifd* fields; on writing, it drops
    # every tag that has no field left.
    for field, value in kept.items():
        image.set_type(pyvips.GValue.blob_type, field, value)
    for field in image.get_fields():
        if field == ORIENTATION or (
            policy == "copyright" and field.startswith("exif-ifd") and field not in COPYRIGHT_FIELDS
        ):
            image.remove(field)
    if policy == "copyright" and not any(image.get_typeof(f) for f in COPYRIGHT_FIELDS):
        return bare(image)  # nothing to credit: no EXIF block either
    if image.get_typeof("orientation"):  # parsed from the blob; libvips writes it back
        image.set_type(pyvips.GValue.gint_type, "orientation", 1)
    return image
