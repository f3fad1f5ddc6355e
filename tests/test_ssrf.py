"""SSRF matrix on loopback: every address trick is refused before any connection is made.

Forms aimed at metadata, private or link-local addresses run in test_ssrf_netns.py, inside a
private network namespace where those addresses are local listeners.

Proof of "no connection": loopback targets point at a `Listener` that counts accepts (a guard
bug would really connect there), and every request the fetcher makes passes a `Tripwire` that
records it and never lets a non-loopback packet out. Only the origin on 127.0.0.2 is
allow-listed; 127.0.0.1 and ::1 stay forbidden, which makes redirect and rebinding tricks
testable on one machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl

import httpx
import pytest
from server_support import (
    ALLOW,
    ORIGIN_IP,
    Listener,
    Origin,
    Tripwire,
    ipv6_loopback,
    self_signed,
)

from imgpipe.server.fetch import Fetcher, FetchError, system_resolver
from imgpipe.server.netguard import AddressPolicy, HostError, parse_host

HAS_V6 = ipv6_loopback()

# Names the fake resolver answers; everything else goes to the system resolver (localhost).
FAKE_DNS = {
    "mixed.example": ["127.0.0.2", "127.0.0.1"],  # one allowed answer, one forbidden
}


class FakeResolver:
    """Fake DNS; `rebind.example` answers the allow-listed origin once, then 127.0.0.1."""

    def __init__(self) -> None:
        self.rebind_calls = 0

    async def __call__(self, host: str, port: int):
        if host == "rebind.example":
            self.rebind_calls += 1
            answer = ORIGIN_IP if self.rebind_calls == 1 else "127.0.0.1"
            return [ipaddress.ip_address(answer)]
        if host in FAKE_DNS:
            return [ipaddress.ip_address(a) for a in FAKE_DNS[host]]
        return await system_resolver(host, port)


@pytest.fixture(scope="module")
def listener():
    target = Listener("127.0.0.1")
    yield target
    target.close()


@pytest.fixture(scope="module")
def listener6():
    if not HAS_V6:
        yield None
        return
    target = Listener("::1")
    yield target
    target.close()


@pytest.fixture(scope="module")
def origin():
    with Origin() as server:
        yield server


def fetch(url: str, resolver=None, inner=None):
    """Fetch with the test policy; return (result or FetchError, hosts the transport saw).
    `inner` is the real transport behind the tripwire (default: the tripwire's own)."""
    tripwire = Tripwire(inner) if inner is not None else Tripwire()

    async def go():
        fetcher = Fetcher(
            AddressPolicy.from_strings(ALLOW),
            max_bytes=1 << 20,
            timeout=5,
            resolver=resolver or FakeResolver(),
            transport=tripwire,
        )
        try:
            return await fetcher.fetch(url)
        except FetchError as error:
            return error
        finally:
            await fetcher.aclose()

    return asyncio.run(go()), tripwire.seen


# (url template, expected code). {p} is the IPv4 listener's port, {p6} the IPv6 one's.
MATRIX = [
    ("http://127.0.0.1:{p}/", "blocked-address"),
    ("http://2130706433:{p}/", "blocked-address"),  # decimal
    ("http://0177.0.0.1:{p}/", "blocked-address"),  # octal
    ("http://0x7f.0.0.1:{p}/", "blocked-address"),  # hex part
    ("http://0x7f000001:{p}/", "blocked-address"),  # hex whole
    ("http://127.1:{p}/", "blocked-address"),  # short form
    ("http://127.0.1:{p}/", "blocked-address"),
    ("http://0:{p}/", "blocked-address"),
    ("http://0.0.0.0:{p}/", "blocked-address"),
    ("http://localhost:{p}/", "blocked-address"),  # real resolver
    ("http://LocalHost.:{p}/", "blocked-address"),  # case and trailing dot
    ("http://\u2460\u2461\u2466.0.0.1:{p}/", "blocked-address"),  # IDNA maps circled digits
    ("https://127.0.0.1:{p}/", "blocked-address"),
    ("http://[::ffff:127.0.0.1]:{p}/", "blocked-address"),  # IPv4-mapped IPv6
    ("http://[0:0:0:0:0:ffff:7f00:1]:{p}/", "blocked-address"),
    ("http://[::ffff:7f00:1]:{p}/", "blocked-address"),
    ("http://[64:ff9b::7f00:1]:{p}/", "blocked-address"),  # NAT64
    ("http://[2002:7f00:1::]:{p}/", "blocked-address"),  # 6to4
    ("http://[::127.0.0.1]:{p}/", "blocked-address"),  # IPv4-compatible
    ("http://[::1]:{p6}/", "blocked-address"),
    ("http://[::]:{p6}/", "blocked-address"),
    ("http://mixed.example:{p}/", "blocked-address"),
    ("http://example.com@127.0.0.1:{p}/", "url-credentials"),  # userinfo tricks
    ("http://127.0.0.1:{p}\\@example.com/", "bad-url"),
    ("http://%31%32%37.0.0.1:{p}/", "bad-url"),  # percent-encoded host
    ("http://[fe80::1%25lo]:{p}/", "bad-url"),  # zone id
    ("http://1.2.3.4.5/", "bad-url"),
    ("http://256.0.0.1/", "bad-url"),
    ("file:///etc/passwd", "unsupported-scheme"),
    ("gopher://127.0.0.1:{p}/_GET", "unsupported-scheme"),
    ("ftp://127.0.0.1:{p}/", "unsupported-scheme"),
    ("dict://127.0.0.1:{p}/", "unsupported-scheme"),
    ("//127.0.0.1:{p}/", "unsupported-scheme"),
]


@pytest.mark.parametrize(("template", "code"), MATRIX, ids=[m[0] for m in MATRIX])
def test_refused_without_connecting(template, code, listener, listener6):
    if "{p6}" in template and listener6 is None:
        pytest.skip("no IPv6 loopback here")
    before = (listener.accepted, listener6.accepted if listener6 else 0)
    url = template.format(p=listener.port, p6=listener6.port if listener6 else 0)
    result, seen = fetch(url)
    assert isinstance(result, FetchError), result
    assert result.code == code, result
    assert seen == []
    assert (listener.accepted, listener6.accepted if listener6 else 0) == before


REDIRECTS = [
    ("http://127.0.0.1:{p}/", 302),
    ("http://localhost:{p}/", 301),
    ("http://[::ffff:127.0.0.1]:{p}/", 307),
    ("http://2130706433:{p}/", 308),
    ("//127.0.0.1:{p}/scheme-relative", 303),
    ("file:///etc/passwd", 302),
    ("gopher://127.0.0.1:{p}/", 302),
]


@pytest.mark.parametrize(("target", "status"), REDIRECTS, ids=[r[0] for r in REDIRECTS])
def test_redirect_from_allowed_origin_is_checked_again(target, status, origin, listener):
    before = listener.accepted
    to = target.format(p=listener.port)
    result, seen = fetch(f"{origin.base}/redirect?code={status}&to={to}")
    assert isinstance(result, FetchError)
    assert result.code in ("blocked-address", "unsupported-scheme"), result
    assert seen == [ORIGIN_IP]  # the allowed first hop only
    assert listener.accepted == before


def test_dns_rebinding_connects_to_the_checked_address(origin, listener):
    resolver = FakeResolver()
    # First lookup: the allowed origin. The fetch must connect to that very address, and a
    # later lookup (now answering 127.0.0.1) must be checked again, not trusted.
    ok, seen = fetch(f"http://rebind.example:{origin.port}/img/8x8.png", resolver)
    assert not isinstance(ok, FetchError), ok
    assert seen == [ORIGIN_IP]
    before = listener.accepted
    again, seen = fetch(
        f"{origin.base}/redirect?to=http://rebind.example:{listener.port}/", resolver
    )
    assert isinstance(again, FetchError) and again.code == "blocked-address"
    assert seen == [ORIGIN_IP]
    assert listener.accepted == before


def test_tls_pins_the_address_and_checks_the_name(tmp_path):
    files = self_signed("origin.test", tmp_path)
    if files is None:
        pytest.skip("no openssl command")
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(*files)
    client_tls = ssl.create_default_context(cafile=files[0])

    async def names(host: str, port: int):
        return [ipaddress.ip_address(ORIGIN_IP)] if host.endswith(".test") else []

    def get(url: str):
        return fetch(url, names, httpx.AsyncHTTPTransport(verify=client_tls, retries=0))

    with Origin(tls=server_tls) as origin:
        good, seen = get(f"https://origin.test:{origin.port}/img/8x8.png")
        # Same address, another name: the certificate does not match, so no image.
        wrong, _ = get(f"https://other.test:{origin.port}/img/8x8.png")
    assert not isinstance(good, FetchError), good
    assert good.data == origin.image(8, 8)
    assert seen == [ORIGIN_IP]  # connected to the checked address...
    assert origin.sni[0] == "origin.test"  # ...while TLS saw the name
    assert isinstance(wrong, FetchError) and "CERTIFICATE_VERIFY_FAILED" in str(wrong), wrong


def test_allow_listed_origin_is_fetched(origin):
    result, seen = fetch(f"{origin.base}/img/8x6.png")
    assert not isinstance(result, FetchError), result
    assert result.data == origin.image(8, 6)
    assert seen == [ORIGIN_IP]


def test_redirect_loop_stops():
    with Origin() as server:
        result, seen = fetch(f"{server.base}/loop")
    assert isinstance(result, FetchError) and result.code == "too-many-redirects"
    assert len(seen) == 6  # the first request and five redirects


def test_metadata_stays_blocked_even_when_allow_listed():
    policy = AddressPolicy.from_strings(["0.0.0.0/0", "::/0"])
    assert policy.refusal(ipaddress.ip_address("169.254.169.254"))
    assert policy.refusal(ipaddress.ip_address("fd00:ec2::254"))
    assert policy.refusal(ipaddress.ip_address("10.1.1.1")) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0x0a.0x00.0x00.0x01", "10.0.0.1"),
        ("[::1]", "::1"),
        ("8.8.8.8.", "8.8.8.8"),
    ],
)
def test_host_spellings_are_read_like_inet_aton(host, address):
    assert parse_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host",
    ["", "a..b", "-a.com", "0x7g.0.0.1", "08.0.0.1", "1.2.3.256", "4294967296", "a%2eb", "[::g]"],
)
def test_bad_hosts_are_errors(host):
    with pytest.raises(HostError):
        parse_host(host)


def test_public_addresses_pass():
    policy = AddressPolicy()
    for address in ("93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::"):
        assert policy.refusal(ipaddress.ip_address(address)) is None, address
