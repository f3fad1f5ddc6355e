"""Write example-site/public/index.html from the build's manifest and snippets.

Run `imgpipe build` in the repository root first. This stands in for a site generator: it uses
only what the build publishes (imgpipe-manifest.json and _snippets/), no image code.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

SITE = Path(__file__).resolve().parent
PUBLIC = SITE / "public"
IMG = PUBLIC / "img"


def main() -> None:
    manifest = json.loads((IMG / "imgpipe-manifest.json").read_text())
    sources = manifest["sources"]
    # The badge and the first photo are in the first viewport: a lazy image there would delay
    # the largest paint (what `imgpipe audit` calls lazy-above-fold). Snippets are lazy.
    badge = eager((IMG / "_snippets/graphics/badge.png.badge.html").read_text())
    photos = sorted(rel for rel in sources if rel.startswith("photos/"))
    gallery = []
    for rel in photos:
        r = sources[rel]["renditions"]
        one, two = r["thumb"], r["thumb-2x"]
        gallery.append(
            f'<a href="#{html.escape(rel)}"><img src="{one["url"]}" '
            f'srcset="{one["url"]} 1x, {two["url"]} 2x" width="{one["width"]}" '
            f'height="{one["height"]}" alt="{html.escape(Path(rel).stem)}"></a>'
        )
    sections = [
        f'<section id="{html.escape(rel)}"><h2>{html.escape(Path(rel).stem)}</h2>\n'
        + (eager if n == 0 else str)((IMG / f"_snippets/{rel}.default.html").read_text())
        + "</section>"
        for n, rel in enumerate(photos)
    ]
    page = TEMPLATE.format(
        badge=badge, gallery="\n".join(gallery), sections="\n".join(sections), count=len(sources)
    )
    (PUBLIC / "index.html").write_text(page)
    print(f"wrote {PUBLIC / 'index.html'}")


def eager(snippet: str) -> str:
    return snippet.replace(' loading="lazy"', "")


TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>imgpipe example site</title>
<style>
  body {{ font-family: system-ui, sans-serif; max-width: 50rem; margin: 0 auto; padding: 1rem; }}
  img {{ max-width: 100%; height: auto; display: block; }}
  header {{ display: flex; gap: 1rem; align-items: center; }}
  header img {{ width: 128px; }}
  header picture {{ flex: none; }}  /* a flex item that shrank would be narrower than its sizes */
  .gallery {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(120px, 1fr));
             gap: .5rem; }}
</style>
</head>
<body>
<header>{badge}<h1>imgpipe example site</h1></header>
<p>{count} sources, built by <code>imgpipe build</code>; every image below comes from its
snippets or manifest.</p>
<h2>Gallery</h2>
<div class="gallery">
{gallery}
</div>
{sections}
<footer><p>Photos: MATE backgrounds, GPL-2+; see images/CREDITS.md.</p></footer>
</body>
</html>
"""

if __name__ == "__main__":
    main()
