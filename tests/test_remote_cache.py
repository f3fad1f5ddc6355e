"""The shared cache on object storage (`remote_cache`), without a cluster: a fresh machine fills
its output from the store without encoding; blobs are write-once and trusted only when their
hash matches. Against memory://, file:// and a real S3 API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from cluster_support import cli, fresh_machine, make_site
from site_support import files

pytest.importorskip("pyvips")
pytest.importorskip("fsspec")

from imgpipe.build import build  # noqa: E402
from imgpipe.config import load  # noqa: E402
from imgpipe.model import Record  # noqa: E402
from imgpipe.store import StoreSpec  # noqa: E402


class NoEncoding:
    """An engine that must not be asked for pixels: the refill is a copy, not a render."""

    def __init__(self):
        from imgpipe import engine

        self.real = engine
        self.ENGINE_VERSION = engine.ENGINE_VERSION

    def versions(self):
        return self.real.versions()

    def identity(self):
        return self.real.identity()

    def open_source(self, *args, **kw):
        raise AssertionError("the engine was asked to decode a source")


def _remote(kind: str, tmp_path: Path, request) -> str:
    if kind == "memory":
        return f"memory://imgpipe-{uuid.uuid4().hex}"
    if kind == "file":
        return (tmp_path / "store").as_uri()
    s3 = request.getfixturevalue("s3")
    request.getfixturevalue("monkeypatch")
    for name, value in s3.env().items():
        request.getfixturevalue("monkeypatch").setenv(name, value)
    return s3.make_bucket(f"b-{uuid.uuid4().hex[:12]}") + "/cache"


@pytest.mark.parametrize("kind", ["memory", "file", "s3"])
def test_fresh_machine_fills_output_from_remote_cache_without_encoding(tmp_path, request, kind):
    url = _remote(kind, tmp_path, request)
    first = make_site(tmp_path / "a", extra=f'remote_cache = "{url}"')
    summary = build(load(first / "imgpipe.toml"))
    assert summary.ok and summary.built == 14 and summary.cached == 0

    second = fresh_machine(first, tmp_path / "b")
    refill = build(load(second / "imgpipe.toml"), engine=NoEncoding())
    assert refill.ok, refill.failures
    assert (refill.built, refill.cached) == (0, 14)
    assert {o.where for o in refill.origins} == {"remote-cache"}
    assert files(second / "public") == files(first / "public")


def test_remote_cache_over_s3_with_the_cli_reports_where_renditions_came_from(tmp_path, s3):
    url = s3.make_bucket(f"b-{uuid.uuid4().hex[:12]}")
    first = make_site(tmp_path / "a", extra=f'remote_cache = "{url}/site"')
    done = cli(first, "build", "--report", "r.json", env=s3.env())
    assert done.returncode == 0, done.stderr
    origins = json.loads((first / "r.json").read_text())["origins"]
    assert origins["logo.png"] == {"thumb": "local", "big": "local"}

    second = fresh_machine(first, tmp_path / "b")
    done = cli(second, "build", "--report", "r.json", env=s3.env())
    assert done.returncode == 0, done.stderr
    report = json.loads((second / "r.json").read_text())
    assert report["renditions"] == {"built": 0, "cached": 14, "failed": 0}
    assert report["origins"]["photos/p0.jpg"]["240-webp"] == "remote-cache"
    assert files(second / "public") == files(first / "public")
    # A third build on that machine finds everything in its own cache.
    done = cli(second, "build", "--report", "r.json", env=s3.env())
    assert set(json.loads((second / "r.json").read_text())["origins"]["logo.png"].values()) == {
        "cache"
    }


def test_remote_blob_whose_hash_does_not_match_is_not_trusted(tmp_path):
    url = (tmp_path / "store").as_uri()
    first = make_site(tmp_path / "a", count=1, extra=f'remote_cache = "{url}"')
    assert build(load(first / "imgpipe.toml")).built == 8
    # A hostile (or broken) writer replaces one blob's bytes behind the record's back.
    stored = sorted((tmp_path / "store" / "renditions").rglob("*"))
    victim = next(p for p in stored if p.is_file())
    record, _, data = victim.read_bytes().partition(b"\n")
    forged = b"not the rendition" + data[17:]
    victim.write_bytes(record + b"\n" + forged)

    second = fresh_machine(first, tmp_path / "b")
    summary = build(load(second / "imgpipe.toml"))
    assert summary.ok
    assert (summary.built, summary.cached) == (1, 7)  # that one is rendered again, here
    assert len([o for o in summary.origins if o.where == "local"]) == 1
    mine, theirs = files(second / "public"), files(first / "public")
    assert mine.keys() == theirs.keys() and forged not in mine.values()
    # Rendered alone, a rendition may still differ in bytes from one rendered with its
    # siblings (engine/source.py resizes from the largest; the determinism work removes
    # that); its pixels and size are the same rendition.
    import pyvips

    for name in mine:
        if mine[name] != theirs[name] and not name.endswith((".json", ".html")):
            a, b = (pyvips.Image.new_from_buffer(x, "") for x in (mine[name], theirs[name]))
            assert (a.width, a.height) == (b.width, b.height) and (a - b).abs().avg() < 2


def test_renditions_of_a_source_without_header_facts_in_the_store_are_not_looked_for(tmp_path):
    """Whoever renders puts a source's header facts after its renditions, so a refill asks for
    a source's renditions only when its facts are there (a cold store: one request per source,
    not per rendition). Facts missing (a writer killed in between): rendered again, here."""
    url = (tmp_path / "store").as_uri()
    first = make_site(tmp_path / "a", count=1, extra=f'remote_cache = "{url}"')
    assert build(load(first / "imgpipe.toml")).built == 8
    assert len([p for p in (tmp_path / "store/renditions").rglob("*") if p.is_file()]) == 8
    infos = [p for p in (tmp_path / "store/infos").rglob("*") if p.is_file()]
    assert len(infos) == 2
    infos[0].unlink()

    second = fresh_machine(first, tmp_path / "b")
    summary = build(load(second / "imgpipe.toml"))
    assert summary.ok
    where: dict[str, set[str]] = {}
    for o in summary.origins:
        where.setdefault(o.source, set()).add(o.where)
    assert sorted(map(sorted, where.values())) == [["local"], ["remote-cache"]]
    assert summary.built + summary.cached == 8 and summary.built in (2, 6)
    assert files(second / "public") == files(first / "public")


@pytest.mark.parametrize("kind", ["memory", "file", "s3"])
def test_remote_blobs_are_write_once(tmp_path, request, kind):
    store = StoreSpec(_remote(kind, tmp_path, request)).open()
    key = "k" * 64
    honest = b"honest rendition"
    import hashlib
    from dataclasses import replace

    record = Record(key, "jpeg", 1, 1, len(honest), 80, 80, (), hashlib.sha256(honest).hexdigest())
    assert store.put_rendition(record, honest)
    forged = b"forged rendition"
    assert not store.put_rendition(
        replace(record, sha256=hashlib.sha256(forged).hexdigest()), forged
    )
    assert store.renditions([key]) == {key: (record, honest)}


def test_remote_record_that_is_malformed_is_not_trusted(tmp_path):
    store = StoreSpec((tmp_path / "store").as_uri()).open()
    store.put("renditions", "a" * 64, b"{not json\ndata")
    assert store.renditions(["a" * 64]) == {}


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            'scheduler = "localhost:8786"',
            "'localhost:8786' at scheduler: expected a dask scheduler "
            "address such as tcp://10.0.0.5:8786",
        ),
        (
            'remote_cache = "bucket/prefix"',
            "'bucket/prefix' at remote_cache: expected an fsspec URL such as s3://bucket/prefix",
        ),
        ('remote_cache_options = "anon"', "remote_cache_options"),
    ],
)
def test_cluster_config_keys_are_validated(tmp_path, raw, message):
    import tomllib

    from imgpipe.config import from_dict
    from imgpipe.errors import ConfigError

    table = {"source": "src", "output": "out", **tomllib.loads(raw)}
    with pytest.raises(ConfigError) as info:
        from_dict(table, tmp_path)
    assert message in str(info.value)


def test_scheduler_without_remote_cache_is_a_clear_error(tmp_path):
    root = make_site(tmp_path, count=1)
    done = cli(root, "build", "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == 2
    assert "scheduler is set but remote_cache is not" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_remote_cache_is_a_clean_error(tmp_path):
    from cluster_support import free_port

    root = make_site(tmp_path, count=1, extra='remote_cache = "s3://nowhere/x"')
    done = cli(
        root,
        "build",
        env={
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
        },
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error[remote-cache-unavailable]: cannot write to the remote cache s3://nowhere/x"
        )
    )
    assert "Traceback" not in done.stderr
