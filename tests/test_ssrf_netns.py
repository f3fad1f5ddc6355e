"""SSRF matrix against real listeners on metadata, private and link-local addresses.

Those addresses exist only inside a private network namespace made for the test
(`unshare -n`, tests/ssrf_netns.py): there they are local listeners that count connections,
and nothing can leave the machine even if the code under test is wrong. (The machine this
was written on answers on the real 169.254.169.254.)

Each row: URL, the exact code with the default policy ("ok" when fetched), and the outcome
with `--allow-net ::/0` and with `--allow-net 0.0.0.0/0 --allow-net ::/0`. The allow-list
may open private networks; it never opens metadata, however the address is spelled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
OK, NO = "ok", "refused"
B = "blocked-address"

# (url, default policy, allow ::/0, allow everything)
MATRIX = [
    # the cloud metadata service, every spelling: refused whatever is allowed
    ("http://169.254.169.254/latest/meta-data/", B, NO, NO),
    ("http://0251.0376.0251.0376/", B, NO, NO),  # octal
    ("http://2852039166/", B, NO, NO),  # decimal
    ("http://0xa9fea9fe/", B, NO, NO),  # hex
    ("http://169.254.43518/", B, NO, NO),  # short form
    ("http://[::ffff:169.254.169.254]/", B, NO, NO),  # IPv4-mapped
    ("http://[::ffff:a9fe:a9fe]/", B, NO, NO),
    ("http://[0:0:0:0:0:ffff:a9fe:a9fe]/", B, NO, NO),
    ("http://[::ffff:0:a9fe:a9fe]/", B, NO, NO),  # IPv4-translated
    ("http://[64:ff9b::a9fe:a9fe]/", B, NO, NO),  # NAT64
    ("http://[64:ff9b::169.254.169.254]/", B, NO, NO),
    ("http://[64:ff9b:1::a9fe:a9fe]/", B, NO, NO),  # local-use NAT64, /96 layout
    ("http://[64:ff9b:1:a9fe:a9:fe00::]/", B, NO, NO),  # local-use NAT64, /48 layout
    ("http://[2002:a9fe:a9fe::]/", B, NO, NO),  # 6to4
    ("http://[2002:a9fe:a9fe:1::1]/", B, NO, NO),
    ("http://[::a9fe:a9fe]/", B, NO, NO),  # IPv4-compatible
    ("http://[::169.254.169.254]/", B, NO, NO),
    ("http://[2001:0:4136:e378:8000:63bf:5601:5601]/", B, NO, NO),  # Teredo client
    ("http://[fd00:ec2::254]/", B, NO, NO),  # IPv6 metadata
    ("http://169.254.170.2/v2/credentials", B, NO, NO),  # container credentials
    ("http://100.100.100.200/", B, NO, NO),
    ("https://169.254.169.254/", B, NO, NO),
    ("http://169.254.169.254:8080/", B, NO, NO),
    ("http://metadata.google.internal/", B, NO, NO),  # names for it
    ("http://mapped-metadata.example/", B, NO, NO),
    ("http://nat64-metadata.example/", B, NO, NO),
    ("http://8.8.8.8/redirect?to=http://169.254.169.254/", B, NO, NO),  # a redirect to it
    ("http://8.8.8.8/redirect?to=http://[::ffff:a9fe:a9fe]/", B, NO, NO),
    # loopback hidden in IPv6 forms: opened only by allowing IPv4
    ("http://[::ffff:0:7f00:1]/", B, NO, OK),
    ("http://[::ffff:127.0.0.1]/", B, NO, OK),
    ("http://[64:ff9b::7f00:1]/", B, NO, OK),
    ("http://[2002:7f00:1::]/", B, NO, OK),
    ("http://[::127.0.0.1]/", B, NO, OK),
    # private, shared and link-local networks
    ("http://10.0.0.7/", B, NO, OK),
    ("http://10.1/", B, NO, OK),
    ("http://172.16.0.1/", B, NO, OK),
    ("http://172.31.255.254:8080/", B, NO, OK),
    ("http://192.168.1.1/", B, NO, OK),
    ("http://100.64.0.1/", B, NO, OK),
    ("http://169.254.1.1/", B, NO, OK),
    ("http://192.0.0.170/", B, NO, OK),
    ("http://[::ffff:10.0.0.7]/", B, NO, OK),
    ("http://[64:ff9b::a00:7]/", B, NO, OK),
    ("http://[2002:a00:7::]/", B, NO, OK),
    ("http://[fd12:3456::1]/", B, OK, OK),
    ("http://[fc00::1]/", B, OK, OK),
    ("http://[fe80::1]/", B, NO, NO),  # allowed, but unreachable without a zone
    ("http://[fe80::1%25lo]/", "bad-url", NO, NO),
    ("http://intranet.example/", B, NO, OK),
    ("http://v6private.example/", B, OK, OK),
    ("http://linklocal6.example/", B, NO, NO),
    ("http://mixed.example/", B, NO, OK),  # one public and one private answer
    ("http://8.8.8.8/redirect?to=http://10.0.0.7/", B, NO, OK),
    ("http://224.0.0.1/", B, NO, NO),  # multicast: allowed, but TCP cannot connect
    ("http://255.255.255.255/", B, NO, NO),
    ("http://user@10.0.0.7/", "url-credentials", NO, NO),
    ("http://%31%30.0.0.7/", "bad-url", NO, NO),
    # public addresses (local in the namespace): the proof that the listeners count
    ("http://8.8.8.8/", OK, OK, OK),
    ("http://public.example/", OK, OK, OK),
    ("http://[2606:4700:4700::1111]/", OK, OK, OK),
    ("http://[64:ff9b::808:808]/", OK, OK, OK),
    ("http://[2002:808:808::]/", OK, OK, OK),
]
POLICIES = {"default": ([], 1), "allow-v6": (["::/0"], 2), "allow-all": (["0.0.0.0/0", "::/0"], 3)}
FIRST_HOP = "8.8.8.8"  # the only address a refused redirect may have reached


def can_unshare() -> str | None:
    """Why the namespace cannot be made here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root for unshare -n"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    return None


def run_in_namespace(allow: list[str]) -> dict:
    request = json.dumps({"allow": allow, "urls": [row[0] for row in MATRIX]})
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(HERE / "ssrf_netns.py")],
        input=request,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("policy", POLICIES)
def test_ssrf_matrix_in_a_private_network_namespace(policy):
    why_not = can_unshare()
    if why_not:
        pytest.skip(why_not)
    allow, column = POLICIES[policy]
    report = run_in_namespace(allow)
    expected = {row[0]: row[column] for row in MATRIX}
    wrong = []
    for result in report["results"]:
        url, want, got = result["url"], expected[result["url"]], result["result"]
        reached = result["connections"]
        if want == OK:
            good = got == OK and reached
        else:
            first_hop = [FIRST_HOP] if "/redirect?" in url else []
            good = got != OK and reached == first_hop and (want == NO or got == want)
        if not good:
            wrong.append(f"{result['encoding']} {url}: {got}, connections {reached}")
    assert not wrong, "\n".join(wrong)
    assert len(report["results"]) == 2 * len(MATRIX)  # raw and percent-encoded
    assert report["total_connections"] == sum(len(r["connections"]) for r in report["results"])


def test_allow_net_is_checked_after_embedded_ipv4_and_metadata():
    """Issue 18 item 8: `--allow-net ::/0` opened metadata behind IPv6 spellings."""
    import ipaddress

    from imgpipe.server.netguard import AddressPolicy

    v6 = AddressPolicy.from_strings(["::/0"])
    for address in (
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "64:ff9b::a9fe:a9fe",
        "::ffff:0:7f00:1",
        "2002:a9fe:a9fe::",
        "::a9fe:a9fe",
    ):
        assert v6.refusal(ipaddress.ip_address(address)), address
    assert AddressPolicy().refusal(ipaddress.ip_address("::ffff:0:7f00:1"))
    everything = AddressPolicy.from_strings(["0.0.0.0/0", "::/0"])
    for address in (
        "::ffff:a9fe:a9fe",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a9fe:a9fe",
        "2001:0:4136:e378:8000:63bf:5601:5601",
    ):
        assert "metadata" in everything.refusal(ipaddress.ip_address(address)), address
