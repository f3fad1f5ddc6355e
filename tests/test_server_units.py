"""Pure parts of `imgpipe serve` as tables: request paths, upload headers, warning headers."""

from __future__ import annotations

import pytest

from imgpipe.errors import Problem
from imgpipe.server.apipath import ApiPath, split
from imgpipe.server.fetch import FetchError, check_url
from imgpipe.server.responses import warning_value
from imgpipe.server.settings import ServerConfig
from imgpipe.server.upload import boundary_of


@pytest.mark.parametrize(
    ("raw", "query", "expected"),
    [
        (b"/", b"", ApiPath(None, None, None)),
        (b"/u", b"", ApiPath("u", None, None)),
        (b"/u/", b"", ApiPath("u", None, None)),
        (b"/u/full", b"", ApiPath("u", "full", None)),
        (b"/u/full/", b"", ApiPath("u", "full", None)),
        (
            b"/u/160x100,crop,2x/http://h/a.png",
            b"",
            ApiPath("u", "160x100,crop,2x", "http://h/a.png"),
        ),
        (b"/u/full/https://h/a.png", b"v=1", ApiPath("u", "full", "https://h/a.png?v=1")),
        # proxies merge // into /
        (b"/u/full/http:/h/a.png", b"", ApiPath("u", "full", "http://h/a.png")),
        (b"/u/full/HTTPS:/h/a.png", b"", ApiPath("u", "full", "HTTPS://h/a.png")),
        # raw: the URL's own escapes stay as they are
        (b"/u/full/http://h/a%2Fb%20c.png", b"", ApiPath("u", "full", "http://h/a%2Fb%20c.png")),
        # encoded as one segment (PHP rawurlencode): decoded once, so %252F -> %2F
        (b"/u/full/http%3A%2F%2Fh%2Fa%252Fb.png", b"", ApiPath("u", "full", "http://h/a%2Fb.png")),
        (b"/u/full/https%3a%2f%2fh%2fa.png", b"", ApiPath("u", "full", "https://h/a.png")),
        (b"/u/full/gopher%3A%2F%2Fh%2F", b"", ApiPath("u", "full", "gopher://h/")),
        # user and options are decoded once too
        (b"/us%40er/full%2C2x/http://h/a.png", b"", ApiPath("us@er", "full,2x", "http://h/a.png")),
        # options left out before a URL
        (b"/u/http://h/a.png", b"", ApiPath("u", None, "http://h/a.png")),
        (b"/u/http%3A%2F%2Fh%2Fa.png", b"", ApiPath("u", None, "http://h/a.png")),
        (b"/u//http://h/a.png", b"", ApiPath("u", None, "http://h/a.png")),
    ],
)
def test_split(raw, query, expected):
    assert split(raw, query) == expected


@pytest.mark.parametrize(
    ("content_type", "boundary"),
    [
        ("multipart/form-data; boundary=abc", "abc"),
        ("multipart/form-data, boundary=XXXd41d8cd9", "XXXd41d8cd9"),  # the PHP client
        ('multipart/form-data; charset=utf-8; boundary="a b"', "a b"),
        ("Multipart/Form-Data;boundary=x", "x"),
        ("multipart/form-data", None),
        ("multipart/mixed; boundary=abc", None),
        ("image/png", None),
        ("", None),
    ],
)
def test_boundary_of(content_type, boundary):
    assert boundary_of(content_type) == boundary


@pytest.mark.parametrize(
    ("url", "host", "port", "path"),
    [
        ("http://Example.COM/a.png", "example.com", 80, "/a.png"),
        (
            "https://example.com:8443/a%2Fb.png?x=1&y=%20",
            "example.com",
            8443,
            "/a%2Fb.png?x=1&y=%20",
        ),
        ("http://example.com", "example.com", 80, "/"),
        (
            "http://example.com/caf\u00e9 bar.png".replace(" ", "_"),
            "example.com",
            80,
            "/caf%C3%A9_bar.png",
        ),
        ("http://b\u00fccher.example/a.png", "xn--bcher-kva.example", 80, "/a.png"),
        ("http://0x5d.0xb8.0xd8.0x22/a.png", "93.184.216.34", 80, "/a.png"),
        ("http://[2606:4700::1]:81/", "2606:4700::1", 81, "/"),
        ("http://h/a.png#fragment", "h", 80, "/a.png"),
    ],
)
def test_check_url_normalises(url, host, port, path):
    target = check_url(url)
    assert (target.host, target.port, target.path) == (host, port, path)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://h:0/", "bad-url"),
        ("http://h:70000/", "bad-url"),
        ("http://h /a.png", "bad-url"),
        ("http://h/a\nb.png", "bad-url"),
        ("http:///a.png", "bad-url"),
        ("data:image/png;base64,AAAA", "unsupported-scheme"),
        ("javascript:alert(1)", "unsupported-scheme"),
        ("https://u@h/", "url-credentials"),
    ],
)
def test_check_url_refuses(url, code):
    with pytest.raises(FetchError) as error:
        check_url(url)
    assert error.value.code == code


def test_warning_header_is_one_safe_quoted_line():
    problem = Problem("x-code", 'said "hi" \\ caf\u00e9\nnext line')
    assert warning_value(problem) == '199 - "x-code: said \\"hi\\" \\\\ caf\\xe9 next line"'


def test_host_names_default_to_bind_host_and_local_names():
    assert ServerConfig(users=("u",), host="10.1.2.3").host_names() == {
        "10.1.2.3",
        "localhost",
        "127.0.0.1",
        "::1",
    }
    assert ServerConfig(users=("u",), allowed_hosts=("Img.Example", "[::1]")).host_names() == {
        "img.example",
        "::1",
    }


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("::ffff:169.254.169.254", ["169.254.169.254"]),  # IPv4-mapped
        ("::ffff:0:7f00:1", ["127.0.0.1"]),  # IPv4-translated
        ("64:ff9b::a9fe:a9fe", ["169.254.169.254"]),  # NAT64 well-known prefix
        ("64:ff9b:1::a9fe:a9fe", ["169.254.169.254"]),  # local-use NAT64, /96 layout
        # local-use NAT64 whose layout the site chose: every RFC 6052 layout the zero bits allow
        (
            "64:ff9b:1:a9fe:a9:fe00::",
            ["0.0.0.0", "169.254.169.254", "254.169.254.0", "169.254.0.0"],
        ),
        ("64:ff9b:1::5db8:d822", ["93.184.216.34"]),
        ("2002:a9fe:a9fe::1", ["169.254.169.254"]),  # 6to4
        ("2001:0:4136:e378:8000:63bf:5601:5601", ["65.54.227.120", "169.254.169.254"]),  # Teredo
        ("::a9fe:a9fe", ["169.254.169.254"]),  # IPv4-compatible
        ("::1", []),
        ("::", []),
        ("2606:4700:4700::1111", []),
        ("8.8.8.8", []),
    ],
)
def test_embedded_ipv4_forms(address, embedded):
    import ipaddress

    from imgpipe.server.netguard import embedded_ipv4

    assert [str(a) for a in embedded_ipv4(ipaddress.ip_address(address))] == embedded
