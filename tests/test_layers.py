"""The architecture, enforced: import contracts, mypy on the seam, and what a cheap path loads.

DESIGN §6: each layer imports only layers below it; pyvips only under engine/ (and jinja2 only
in html, click only in cli, watchdog only in watch); `import imgpipe` loads no pyvips. The
contracts live in pyproject.toml ([tool.importlinter], [tool.mypy]).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_hold():
    done = _run("-c", "from importlinter.cli import lint_imports_command as c; c()")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_mypy_passes_on_the_model_and_the_engine_seam():
    done = _run("-m", "mypy")
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_imgpipe_loads_no_pyvips_and_no_numpy():
    done = _run(
        "-c",
        textwrap.dedent("""
        import sys
        import imgpipe, imgpipe.build, imgpipe.plan, imgpipe.state, imgpipe.manifest
        import imgpipe.html, imgpipe.config, imgpipe.model, imgpipe.engine, imgpipe.executor
        import imgpipe.rounds, imgpipe.report, imgpipe.cli
        loaded = sorted({'pyvips', 'numpy', 'av'} & set(sys.modules))
        assert not loaded, loaded
    """),
    )
    assert done.returncode == 0, done.stderr


def test_noop_build_loads_no_pyvips(tmp_path):
    """The second build of an unchanged site (a real engine, a real SVG and PNG) answers from
    the state alone: the engine fingerprint is remembered under its cheap identity."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        '<rect width="40" height="20" fill="#336699"/></svg>'
    )
    (tmp_path / "imgpipe.toml").write_text(
        textwrap.dedent("""
        source = "images"
        output = "public"
        cache_dir = "cache"
        [[rules]]
        include = ["*.svg"]
        rasterize_svg = true
        renditions = { small = "20,format=png" }
    """)
    )
    script = textwrap.dedent("""
        import sys
        from imgpipe.cli import main
        try:
            main(["build", "--no-progress"])
        except SystemExit as exit:
            assert not exit.code, exit.code
        print(sorted({'pyvips', 'numpy'} & set(sys.modules)))
    """)
    first = _run("-c", script, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "'pyvips'" in first.stdout and "1 built" in first.stdout  # it did render
    second = _run("-c", script, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "[]" in second.stdout and "0 built" in second.stdout, second.stdout
