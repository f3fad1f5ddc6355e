"""`imgpipe serve` under hostile or odd requests (issue 18, item 8): bounded work per request,
no 500 or framework answer for a client's mistake, idle connections shed.

Real uvicorn servers on loopback; the engine is a stand-in where the test is about the server.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
from test_server_support import ALLOW, Origin, ServerThread, Tripwire, png

from imgpipe.engine.types import Rendition
from imgpipe.server import ServerConfig, create_app
from imgpipe.server.upload import MAX_PARTS

USER = "u"
LIMIT = 2_000_000


def config(**changes) -> ServerConfig:
    values = dict(users=(USER,), allow_nets=ALLOW, max_bytes=LIMIT, workers=2, queue=8,
                  fetch_timeout=5)
    return ServerConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def server():
    with ServerThread(create_app(config(), transport=Tripwire())) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=20) as http:
        yield http


def multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> tuple[bytes, dict]:
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                    .encode() + data + b"\r\n" for name, data in parts)
    return body + f"--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"}


def raw_request(port: int, target: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a request sent byte for byte, path unnormalised."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


# A client's mistakes get the API's error body and a 4xx, never a 500 or a framework page


def test_format_webm_on_a_still_image_is_400_not_500(client):
    response = client.post(f"/{USER}/full,format=webm",
                           files={"file": ("a.png", png(20, 20), "image/png")})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "video-needs-animation"


def test_multipart_boundary_over_256_characters_is_400_not_500(client):
    boundary = "x" * 300
    body, headers = multipart([("file", png(4, 4))], boundary)
    response = client.post(f"/{USER}/full", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "bad-upload"
    assert "boundary is 300 characters long" in response.json()["error"]


@pytest.mark.parametrize("target", ["/u/full/http://127.0.0.1/%0d%0ax", "/u/%0a/x", "/%0a%0a",
                                    "/u/full/%0d%0a"])
def test_crlf_path_gets_the_api_error_body_not_a_plain_404(server, target):
    status, content_type, body = raw_request(server.port, target)
    assert 400 <= status < 500, (status, body)
    assert content_type == "application/im2+json", (content_type, body)
    assert json.loads(body)["problems"]


# Multipart: bounded work, off the event loop, a short answer


def test_multipart_with_many_parts_stops_early_with_a_short_400(client):
    body, headers = multipart([(f"field-{i:06d}", b"x") for i in range(25_000)])
    assert len(body) < LIMIT
    response = client.post(f"/{USER}/full", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "bad-upload"
    assert f"more than {MAX_PARTS} parts" in response.json()["error"]
    assert len(response.content) < 1500


def test_long_field_names_are_shortened_in_the_400(client):
    body, headers = multipart([(c * 1000, b"x") for c in "nmopqrstuv"])
    response = client.post(f"/{USER}/full", content=body, headers=headers)
    assert response.status_code == 400 and response.json()["code"] == "bad-upload"
    assert len(response.content) < 1500


def test_multipart_parsing_runs_off_the_event_loop(server, monkeypatch):
    """While an upload is being parsed, the server still answers others."""
    from imgpipe.server import app as app_module

    parsing, answered = threading.Event(), threading.Event()
    real = app_module.file_field

    def slow_parse(body, content_type):
        parsing.set()
        answered.wait(5)  # on the event loop this would block the GET below: a deadlock
        return real(body, content_type)

    monkeypatch.setattr(app_module, "file_field", slow_parse)
    body, headers = multipart([("file", png(8, 8))])
    upload: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: upload.append(
        httpx.post(f"{server.url}/{USER}/full", content=body, headers=headers, timeout=20)))
    thread.start()
    assert parsing.wait(5)
    try:
        page = httpx.get(server.url + "/", timeout=3)
    finally:
        answered.set()
        thread.join(20)
    assert page.status_code == 200
    assert upload[0].status_code == 200, upload[0].text
