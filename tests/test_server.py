"""`imgpipe serve` end to end: a real uvicorn server and a real origin, both on loopback.

The origin listens on 127.0.0.2, the only allow-listed network; the engine is the real one.
Tests that need a slow or blocking engine (timeout, full queue) use a stand-in optimizer.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
from urllib.parse import quote

import httpx
import pytest
import pyvips
from fuzz_corpus import heic_without_decoder
from server_support import ALLOW, Listener, Origin, ServerThread, Tripwire, png

from imgpipe.errors import OptionError
from imgpipe.model import Rendition
from imgpipe.options import parse
from imgpipe.server import ServerConfig, create_app
from imgpipe.server.fetch import system_resolver

USER = "eX4mp1E4pI"
LIMIT = 2_000_000


async def resolver(host: str, port: int):
    if host.endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return await system_resolver(host, port)


def config(**changes) -> ServerConfig:
    values = dict(
        users=(USER, "second-user"),
        allow_nets=ALLOW,
        max_bytes=LIMIT,
        workers=2,
        queue=8,
        fetch_timeout=5,
    )
    return ServerConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def origin():
    with Origin() as server:
        yield server


@pytest.fixture(scope="module")
def server():
    app = create_app(config(), resolver=resolver, transport=Tripwire())
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=20) as http:
        yield http


def dimensions(data: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.width, image.height


def problem_codes(response: httpx.Response) -> list[str]:
    return [p["code"] for p in response.json()["problems"]]


# The documented call and the official clients' URL forms


def test_documented_curl_command_returns_320x200(server, origin, tmp_path):
    url = f"{server.url}/{USER}/160x100,crop,2x/{origin.base}/img/400x250.png"
    if shutil.which("curl"):
        subprocess.run(
            ["curl", "-XPOST", "-O", "-L", "--fail", "--silent", "--show-error", url],
            cwd=tmp_path,
            check=True,
            timeout=60,
        )
        data = (tmp_path / "400x250.png").read_bytes()
    else:
        data = httpx.post(url, follow_redirects=True, timeout=60).raise_for_status().content
    assert dimensions(data) == (320, 200)


def test_php_client_encoded_url(client, origin):
    # URLRequest: BASE/rawurlencode(user)/options/rawurlencode(url)
    source = f"{origin.base}/img/400x250.png"
    response = client.post(
        f"/{quote(USER, safe='')}/160x100,crop,2x/{quote(source, safe='')}",
        headers={"Accept": "image/*,application/im2+json"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("image/")
    assert dimensions(response.content) == (320, 200)


def test_raw_url_with_collapsed_slashes(client, origin):
    collapsed = origin.base.replace("http://", "http:/")
    response = client.post(f"/{USER}/100x100/{collapsed}/img/400x250.png")
    assert response.status_code == 200, response.text
    assert dimensions(response.content) == (100, 62)


@pytest.mark.parametrize("form", ["raw", "encoded"])
def test_url_is_decoded_exactly_once(client, origin, form):
    source = f"{origin.base}/a%2Fb.png"  # the origin's file name holds an encoded slash
    part = source if form == "raw" else quote(source, safe="")
    response = client.post(f"/{USER}/full/{part}")
    assert response.status_code == 200, response.text
    assert origin.paths[-1] == "/a%2Fb.png"


def test_query_string_belongs_to_the_image_url(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/img/20x10.png?v=2&x=%2F")
    assert response.status_code == 200, response.text
    assert origin.paths[-1] == "/img/20x10.png?v=2&x=%2F"


def php_upload(data: bytes, name: str = "photo.png", field: str = "file"):
    """Exactly what FileRequest.php sends: comma before boundary, MD5 of the *path*."""
    content_hash = hashlib.md5(name.encode()).hexdigest()
    boundary = f"XXX{content_hash}"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n'
            "Content-Transfer-Encoding: binary\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--".encode()
    )
    headers = {
        "Content-MD5": content_hash,
        "Content-Type": f"multipart/form-data, boundary={boundary}",
        "Accept": "image/*,application/im2+json",
    }
    return body, headers


@pytest.mark.parametrize("trailing", ["", "/"])
def test_php_client_upload(client, trailing):
    body, headers = php_upload(png(400, 250))
    response = client.post(f"/{USER}/160x100,crop,2x{trailing}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert dimensions(response.content) == (320, 200)


def test_standard_multipart_upload(client):
    response = client.post(
        "/second-user/50x50,fit,format=png/", files={"file": ("a.png", png(30, 20), "image/png")}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert dimensions(response.content) == (50, 33)


# Headers passed on


def test_warnings_become_warning_headers(client, origin):
    response = client.post(f"/{USER}/160x100,crop,2x,format=jpg/{origin.base}/img/400x250.png")
    assert response.status_code == 200
    warnings = response.headers.get_list("warning")
    assert warnings == ['199 - "format-alias: format=jpg is read as format=jpeg"']
    assert response.headers["content-type"] == "image/jpeg"


def test_origin_cache_control_is_passed_through(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/cached.png")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=3600"


# Errors, as the API documents them


@pytest.mark.parametrize("user", ["nobody", USER.lower(), ""])
def test_wrong_or_missing_user_is_403_im2account(client, origin, user):
    response = client.post(f"/{user}/full/{origin.base}/img/10x10.png")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/im2+json"
    body = response.json()
    assert body["status"] == 403 and body["code"] == "IM2ACCOUNT" and body["error"]


def test_root_post_is_403_im2account(client):
    response = client.post("/")
    assert response.status_code == 403 and response.json()["code"] == "IM2ACCOUNT"


def test_bad_options_list_every_problem(client, origin):
    options = "160x100,crop,quality=best,format=tiff"
    response = client.post(f"/{USER}/{options}/{origin.base}/img/10x10.png")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/im2+json"
    with pytest.raises(OptionError) as expected:
        parse(options)
    assert response.json()["problems"] == [
        {"code": p.code, "message": p.message, "where": p.where} for p in expected.value.problems
    ]
    assert problem_codes(response) == ["bad-quality", "bad-format"]


def test_bad_options_and_bad_url_reported_together(client):
    response = client.post(f"/{USER}/999999/ftp://example.com/a.png")
    assert response.status_code == 400
    assert problem_codes(response) == ["size-out-of-range", "unsupported-scheme"]


@pytest.mark.parametrize(
    ("path", "codes"),
    [
        (f"/{USER}", ["missing-options", "missing-url"]),
        (f"/{USER}/", ["missing-options", "missing-url"]),
        (f"/{USER}/full", ["missing-url"]),
        (f"/{USER}/http://127.0.0.2/a.png", ["missing-options"]),
        (f"/{USER}/%20/http://127.0.0.2/a.png", ["empty-options"]),
        (f"/{USER}/full/http://[::1/a.png", ["bad-url"]),
        (f"/{USER}/full/not-a-url", ["unsupported-scheme"]),
        (f"/{USER}/full/file:///etc/passwd", ["unsupported-scheme"]),
        (f"/{USER}/full/http://user:pw@example.com/a.png", ["url-credentials"]),
    ],
)
def test_missing_or_bad_parts_are_400(client, path, codes):
    response = client.post(path)
    assert response.status_code == 400, response.text
    assert problem_codes(response) == codes


def test_missing_image_is_404(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/nothing-here.png")
    assert response.status_code == 404
    assert response.json()["code"] == "not-found"


def test_unresolvable_host_is_404(client):
    response = client.post(f"/{USER}/full/http://nowhere.invalid/a.png")
    assert response.status_code == 404
    assert response.json()["code"] == "host-not-found"


def test_origin_refusal_is_a_plain_403(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/status/403")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert "IM2ACCOUNT" not in response.text and "refused" in response.text


def test_origin_server_error_is_502(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/status/500")
    assert response.status_code == 502 and response.json()["code"] == "origin-error"


def test_download_over_the_limit_is_413(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/big?n={LIMIT * 3}")
    assert response.status_code == 413 and response.json()["code"] == "too-large"


def test_gzip_encoded_image_is_decoded(client, origin):
    response = client.post(f"/{USER}/full,format=png/{origin.base}/gzip.png")
    assert response.status_code == 200, response.text
    assert dimensions(response.content) == (30, 20)


def test_gzip_bomb_stops_at_the_limit(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/gzip-bomb?n={LIMIT * 20}")
    assert response.status_code == 413 and response.json()["code"] == "too-large"


def test_slow_origin_hits_the_fetch_timeout(origin):
    app = create_app(config(fetch_timeout=0.5), transport=Tripwire())
    with ServerThread(app) as running:
        response = httpx.post(f"{running.url}/{USER}/full/{origin.base}/slow?s=2", timeout=60)
    # The origin answers only after 2 s, so a fetch-timeout (not an image) proves the server
    # stopped waiting at fetch_timeout; no clock needs reading here.
    assert response.status_code == 504 and response.json()["code"] == "fetch-timeout"


def test_chunked_upload_over_the_limit_is_413(client):
    body, headers = php_upload(b"\0" * (LIMIT + 100_000))

    def chunks():  # no Content-Length: only the streaming check can stop it
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = client.post(f"/{USER}/full", content=chunks(), headers=headers)
    assert response.status_code == 413 and response.json()["code"] == "too-large"


def test_upload_over_the_limit_is_413(client):
    body, headers = php_upload(b"\0" * (LIMIT + 1))
    response = client.post(f"/{USER}/full", content=body, headers=headers)
    assert response.status_code == 413 and response.json()["code"] == "too-large"


def test_upload_without_file_field_is_400(client):
    body, headers = php_upload(png(4, 4), field="image")
    response = client.post(f"/{USER}/full", content=body, headers=headers)
    assert response.status_code == 400 and problem_codes(response) == ["bad-upload"]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"<html>not an image</html>" * 4, 415, "unknown-format"),
        (png(40, 40)[:60], 400, None),
        (heic_without_decoder(), 415, "unsupported-codec"),
    ],
)
def test_unusable_image_upload(client, data, status, code):
    body, headers = php_upload(data)
    response = client.post(f"/{USER}/full", content=body, headers=headers)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["code"] == code


def test_non_image_from_origin_is_415(client, origin):
    response = client.post(f"/{USER}/full/{origin.base}/garbage")
    assert response.status_code == 415


def test_fetch_to_loopback_is_refused_through_the_server(client, origin):
    listener = Listener("127.0.0.1")
    try:
        direct = client.post(f"/{USER}/full/http://127.0.0.1:{listener.port}/a.png")
        hop = client.post(
            f"/{USER}/full/{origin.base}/redirect?to=http://127.0.0.1:{listener.port}/a.png"
        )
        assert listener.accepted == 0
    finally:
        listener.close()
    for response in (direct, hop):
        assert response.status_code == 400 and response.json()["code"] == "blocked-address"
        # Issue 12 item 8: the refusal says which flag would allow it.
        assert response.json()["problems"][0]["message"].endswith(
            "; to fetch from it (local testing), start imgpipe serve with --allow-net 127.0.0.1/32"
        )


def test_metadata_address_refusal_suggests_no_flag(client):
    """--allow-net never opens a cloud metadata address: no flag is suggested for it."""
    response = client.post(f"/{USER}/full/http://169.254.169.254/latest/meta-data")
    assert response.status_code == 400 and response.json()["code"] == "blocked-address"
    assert "--allow-net" not in response.json()["problems"][0]["message"]


def test_get_shows_a_readable_explanation(client, origin):
    response = client.get(f"/{USER}/160x100,crop,2x/{origin.base}/img/400x250.png")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"].startswith("text/html")
    assert "POST" in response.text and "curl -XPOST -O -L" in response.text
    assert "canonical form: 160x100,crop,2x" in response.text
    root = client.get("/")
    assert root.status_code == 200 and "POST" in root.text


def test_get_reports_option_errors(client):
    response = client.get(f"/{USER}/160x100,quality=best/http://example.com/a.png")
    assert response.status_code == 405
    assert "error: bad-quality: &#x27;quality=best&#x27; at token 2" in response.text


def test_foreign_host_header_is_refused(client, origin, server):
    url = f"/{USER}/full/{origin.base}/img/10x10.png"
    refused = client.post(url, headers={"Host": "evil.example"})
    assert refused.status_code == 400 and refused.json()["code"] == "bad-host"
    allowed = client.post(url, headers={"Host": f"localhost:{server.port}"})
    assert allowed.status_code == 200


def test_lan_host_refused_on_all_interfaces_names_the_flag(origin):
    """Issue 12 item 8: `serve --host 0.0.0.0` answered a LAN Host header without saying
    which flag accepts it. (The app is driven on 127.0.0.1; only its config says 0.0.0.0.)"""
    app = create_app(config(host="0.0.0.0"), resolver=resolver, transport=Tripwire())
    with ServerThread(app) as running:
        refused = httpx.post(
            f"{running.url}/{USER}/full/{origin.base}/img/10x10.png",
            headers={"Host": "192.168.1.20:8000"},
            timeout=20,
        )
    assert refused.status_code == 400 and refused.json()["code"] == "bad-host"
    message = refused.json()["problems"][0]["message"]
    assert message.startswith("Host '192.168.1.20:8000' is not served here; expected one of: ")
    assert message.endswith("; to accept it, start imgpipe serve with --allowed-host 192.168.1.20")


# Time and queue bounds, with a stand-in engine


class SlowEngine:
    """Waits for `gate` instead of working; counts jobs that really ran.

    Tests hold a job with the gate, never with the clock: a job held for "long enough" ended
    early on a busy machine (issue 12: `200 == 503`). The wait's bound is a hang guard only."""

    HANG_GUARD = 120.0

    def __init__(self, gate: threading.Event):
        self.gate, self.finished = gate, 0

    def __call__(self, source, recipe, *, limits=None) -> Rendition:
        assert self.gate.wait(self.HANG_GUARD), "the test never opened the gate"
        self.finished += 1
        return Rendition(png(2, 2), "png", 2, 2, "medium", None)


def wait_until(condition, seconds: float = 60.0) -> None:
    """Poll `condition` until it holds; the bound is a hang guard, not a timing claim."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "hang guard: the condition never held"
        time.sleep(0.01)


def test_timeout_option_bounds_processing(origin):
    gate = threading.Event()
    engine = SlowEngine(gate=gate)
    app = create_app(config(workers=1, queue=0), optimizer=engine, transport=Tripwire())
    try:
        with ServerThread(app) as running:
            response = httpx.post(
                f"{running.url}/{USER}/full,timeout=0.3/{origin.base}/img/8x8.png", timeout=60
            )
            assert response.status_code == 504 and response.json()["code"] == "timeout"
            # Answered at timeout=, while the gate still holds the job: however slow the
            # machine, the job cannot have ended, so the answer did not wait for it.
            assert engine.finished == 0
            # The job cannot be killed: until it ends, this client is refused more work.
            busy = httpx.post(f"{running.url}/{USER}/full/{origin.base}/img/8x8.png", timeout=60)
            assert busy.status_code == 503 and busy.json()["code"] == "busy"
            gate.set()
            queue = app.state.server.queue
            wait_until(lambda: engine.finished == 1 and not queue.late)
            again = httpx.post(f"{running.url}/{USER}/full/{origin.base}/img/8x8.png", timeout=60)
            assert again.status_code == 200
    finally:
        gate.set()


def test_full_queue_answers_503_with_retry_after(origin):
    gate = threading.Event()
    engine = SlowEngine(gate=gate)
    app = create_app(config(workers=1, queue=1), optimizer=engine, transport=Tripwire())
    url_path = f"/{USER}/full/{origin.base}/img/8x8.png"
    with ServerThread(app) as running:
        results: list[int] = []

        def call() -> None:
            results.append(httpx.post(running.url + url_path, timeout=20).status_code)

        held = [threading.Thread(target=call) for _ in range(2)]
        for thread in held:
            thread.start()
        queue = app.state.server.queue
        try:
            wait_until(lambda: queue.taken == 2)  # one running (held by the gate), one waiting
            refused = httpx.post(running.url + url_path, timeout=60)
        finally:
            gate.set()
        for thread in held:
            thread.join(60)
    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    assert json.loads(refused.text)["code"] == "busy"
    assert sorted(results) == [200, 200]
    assert queue.taken == 0
