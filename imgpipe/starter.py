"""`imgpipe init`: a commented starter imgpipe.toml.

The data is written by tomli-w (so it is valid TOML by construction); comments are attached
to the lines of known keys afterwards. A test reads the file back and validates it.
"""

from __future__ import annotations

import re

import tomli_w

STARTER: dict = {
    "source": "images",
    "output": "public/img",
    "base_url": "/img/",
    "cache_dir": ".imgpipe-cache",
    "jobs": 0,
    "presets": {"thumb": "160x100,crop=auto"},
    "rules": [
        {
            "include": ["gallery/**/*.{jpg,jpeg,png}"],
            "renditions": {"thumb": "thumb,2x", "large": "1600x1200,quality=high"},
        },
        {
            "include": ["**/*.{jpg,jpeg,png}"],
            "exclude": ["gallery/**"],
            "widths": [480, 800, 1200, 1600],
            "formats": ["webp", "auto"],
            "options": "quality=medium",
            "sizes": "(min-width: 50rem) 50rem, 100vw",
        },
    ],
}

# Comment lines put above the first line that starts with the key (a table header or `key =`).
COMMENTS: dict[str, str] = {
    "source": "Originals (paths are relative to this file).",
    "output": "Renditions, the manifest (imgpipe-manifest.json) and _snippets/ go here.",
    "base_url": "URL at which `output` is published.",
    "cache_dir": "State and encoded results. Keep it OUTSIDE source and output; cache it in CI\n"
    "and a build refills `output` without re-encoding.",
    "jobs": "Sources rendered in parallel; 0 = all cores.\n"
    'Also: manifest = "path", snippets = "dir", templates = "dir" (your own\n'
    "picture.html), follow_symlinks = true (follow links out of `source`),\n"
    "[limits] max_pixels = 100000000, max_bytes = 52428800,\n"
    '[images."blog/cat.jpg"] focus = "0.3x0.7" (the point every crop of it keeps),\n'
    'alt = "A cat" (its default alt text).',
    "[presets]": 'Named option strings, usable as a token: "thumb,2x".',
    "[[rules]]": "Every matching rule applies; labels must be unique per source.\n"
    "Globs: * and ? within a directory, ** across directories, {a,b} alternatives;\n"
    "case is ignored (*.jpg matches IMG_0001.JPG).",
    "[rules.renditions]": 'label = "options" (ImageOptim API option language).',
    "widths": "A responsive family: widths x formats -> one srcset group with labels\n"
    'like 800-webp (or NAME-800-webp with name = "NAME"). AVIF is smaller but\n'
    'slow to encode: add "avif" first in formats when you want it. The last format\n'
    'is what every browser gets: "auto" keeps transparency (PNG for images with\n'
    'transparent pixels, JPEG for photos); "jpeg" would flatten it onto white.\n'
    'Art direction: [[rules.art]] media = "(max-width: 600px)", aspect = "1:1",\n'
    "widths = [360, 720] adds a square crop for phones to the same <picture>.",
}


def starter_text() -> str:
    text = _compact_arrays(tomli_w.dumps(STARTER))
    out = [
        "# imgpipe configuration. Docs: `imgpipe check` validates it, `imgpipe build --dry-run`",
        "# shows what a build would do.",
        "",
    ]
    seen: set[str] = set()
    for line in text.splitlines():
        key = line if line.startswith("[") else line.split(" =", 1)[0]
        comment = COMMENTS.get(key)
        if comment and (key not in seen or key == "[[rules]]"):
            if key == "[[rules]]" and key in seen:
                comment = "Responsive images for everything outside the gallery."
            out.extend("# " + c for c in comment.splitlines())
            seen.add(key)
        out.append(line)
    return "\n".join(out) + "\n"


def _compact_arrays(text: str) -> str:
    """tomli-w writes one element per line; short arrays read better on one line."""

    def join(match: re.Match) -> str:
        items = [i.strip().rstrip(",") for i in match.group(2).strip().splitlines()]
        return f"{match.group(1)}[{', '.join(items)}]"

    return re.sub(r"(= )\[\n((?:    .*\n)+?)\]", join, text)
