"""Globs over '/'-separated relative paths, compiled to one regex per list (pure)."""

from __future__ import annotations

import re


def compile_globs(patterns: list[str]) -> re.Pattern:
    """One regex for a list of globs over '/'-separated relative paths.

    `*` and `?` stay inside one path segment, `**` spans segments (zero or more), `[...]` is a
    character class and `{a,b}` alternatives (they may nest). Matching is anchored at the
    source directory, like .gitignore patterns that contain a slash, and ignores case, like
    Hugo's resource globs: cameras name their files `IMG_0001.JPG`, and a `*.jpg` that skipped
    them would leave full-size originals on the page without a word.
    """
    return re.compile("(?:" + "|".join(_glob_re(p) for p in patterns) + r")\Z", re.IGNORECASE)


def escape(path: str) -> str:
    """A glob that matches `path` literally: each special character in a one-character class
    (`[` as `[\\[]`, which the regex reads as an escaped bracket, not a nested set)."""
    special = {"[": "[\\[]", "]": "[]]", **{c: f"[{c}]" for c in "*?{},"}}
    return "".join(special.get(c, c) for c in path)


def _glob_re(pattern: str) -> str:
    out, i, depth = [], 0, 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise ValueError(f"unclosed '[' in glob {pattern!r}")
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
            continue
        elif c == "{":
            out.append("(?:")
            depth += 1
        elif c == "}" and depth:
            out.append(")")
            depth -= 1
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise ValueError(f"unclosed '{{' in glob {pattern!r}")
    return "".join(out)
