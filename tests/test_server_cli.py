"""The `imgpipe serve` command: argument errors, and one real run as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
from click.testing import CliRunner
from server_support import ALLOW, Origin, serve_command

from imgpipe.cli import main


def test_user_is_required():
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2 and "--user" in result.output


def test_bad_allow_net_is_a_usage_error():
    result = CliRunner().invoke(main, ["serve", "--user", "u", "--allow-net", "10.0.0.0/33"])
    assert result.exit_code == 2 and "--allow-net" in result.output


def test_serve_runs_and_answers(tmp_path):
    command, port = serve_command("cli-user", "--allow-net", ALLOW[0], "--workers", "1")
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        with Origin() as origin:
            url = f"http://127.0.0.1:{port}/cli-user/40x40,fit/{origin.base}/img/20x10.png"
            deadline = time.monotonic() + 30
            while True:
                try:
                    response = httpx.post(url, timeout=30)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.1)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("image/")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(15)
        log.close()
    assert "POST http://127.0.0.1" in (tmp_path / "serve.log").read_text()


def test_users_from_the_environment_may_be_separated_by_commas(tmp_path):
    """Issue 12 item 8: IMGPIPE_USERS="a,b" was one user called "a,b"."""
    command, port = serve_command("unused", "--allow-net", ALLOW[0], "--workers", "1")
    at = command.index("--user")
    del command[at : at + 2]
    environment = {**os.environ, "IMGPIPE_USERS": "first-user,second-user third-user"}
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(command, stdout=log, stderr=log, env=environment)
    try:
        with Origin() as origin:
            statuses = {}
            for user in ("first-user", "second-user", "third-user", "first-user,second-user"):
                url = f"http://127.0.0.1:{port}/{user}/full/{origin.base}/img/20x10.png"
                deadline = time.monotonic() + 60  # a hang guard: the server may start slowly
                while True:
                    try:
                        statuses[user] = httpx.post(url, timeout=30).status_code
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline or server.poll() is not None:
                            raise
                        time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(15)
        log.close()
    assert statuses == {
        "first-user": 200,
        "second-user": 200,
        "third-user": 200,
        "first-user,second-user": 403,
    }, (tmp_path / "serve.log").read_text()
    assert "(3 user(s)" in (tmp_path / "serve.log").read_text()
