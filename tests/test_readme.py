"""README documents what users type and read (issue 12, item 10d): every flag of the commands
that take them, and every key a built manifest has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_build import config, site

from imgpipe import build as b
from imgpipe.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("command", ["build", "check", "watch", "serve"])
def test_every_flag_is_in_the_readme(command):
    missing = [
        opt
        for param in main.commands[command].params
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("-") and not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", README)
    ]
    assert missing == []


def test_every_manifest_key_is_in_the_readme_schema(tmp_path, fake_engine):
    root = site(tmp_path)
    b.build(config(root), engine=fake_engine)
    manifest = json.loads((root / "public/img/imgpipe-manifest.json").read_text())
    entry = manifest["sources"]["blog/cat.jpg"]
    group = entry["srcsets"]["default"]
    keys = {
        *manifest,
        *entry,
        *entry["renditions"]["thumb"],
        *group,
        *group["formats"]["jpeg"][0],
    }
    schema = README[README.index("**The manifest**") :]
    assert sorted(k for k in keys if f'"{k}"' not in schema) == []
