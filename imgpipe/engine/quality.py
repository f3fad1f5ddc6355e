"""Estimating the quality a JPEG was saved at, from its quantization tables. Pure.

DESIGN §2: JPEG quality can only go down. Re-encoding a quality-50 JPEG at 75 makes a bigger
file with the same artefacts, so the engine caps the encoder at the source's own quality.
"""

from __future__ import annotations

# The IJG luminance table (JPEG Annex K) that libjpeg scales by quality.
_STD_LUMINANCE = (
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
)


def luminance_table(data: bytes) -> list[int] | None:
    """Table 0 from the DQT segments before the first scan, or None if there is none."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA or length < 2:  # start of scan: no more tables
            return None
        if marker == 0xDB:
            segment = data[pos + 4 : pos + 2 + length]
            i = 0
            while i < len(segment):
                precision, table_id = segment[i] >> 4, segment[i] & 0x0F
                size = 128 if precision else 64
                body = segment[i + 1 : i + 1 + size]
                if len(body) < size:
                    return None
                if table_id == 0:
                    if precision:
                        return [int.from_bytes(body[j : j + 2], "big") for j in range(0, 128, 2)]
                    return list(body)
                i += 1 + size
        pos += 2 + length
    return None


def estimate_jpeg_quality(data: bytes) -> int | None:
    """The libjpeg quality (1..100) whose scaled standard table best matches this file's.

    Files made with other tables (mozjpeg's, cameras') get the libjpeg quality of similar
    overall coarseness, which is what matters for not re-encoding above it.
    """
    table = luminance_table(data)
    if not table or len(table) != 64:
        return None
    scale = 100 * sum(table) / sum(_STD_LUMINANCE)
    if scale <= 0:
        return None
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return max(1, min(100, round(quality)))
