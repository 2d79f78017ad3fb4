"""The played instance's mirror (``simple_index``) answers as PEP 503 says a simple repository does,
so what pip does against it is what it does against a real mirror."""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.harness.targets.aws.simple_index import SimpleIndex, normalize


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), b""


@pytest.fixture
def index(tmp_path: Path) -> SimpleIndex:
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"torch wheel")
    (tmp_path / "prometheus_client-0.26.0-py3-none-any.whl").write_bytes(b"client wheel")
    (tmp_path / ".made-for").write_text("a stamp, not a package\n")
    return SimpleIndex(tmp_path)


def test_names_are_normalized_as_pep_503_says() -> None:
    assert normalize("Prometheus_Client") == "prometheus-client"
    assert normalize("zope.interface") == "zope-interface"
    assert normalize("a-_.b") == "a-b"


def test_project_pages_link_each_file_percent_encoded_with_its_sha256(index: SimpleIndex, tmp_path: Path) -> None:
    with index:
        status, root = _get(index.url)
        assert status == 200 and b'href="/simple/torch/"' in root and b'href="/simple/prometheus-client/"' in root
        status, page = _get(f"{index.url}torch/")
        assert status == 200
        [href] = re.findall(rb'href="([^"]+)"', page)
        digest = hashlib.sha256(b"torch wheel").hexdigest()
        # pip sends a local version's "+" back as %2B: the link and the file route agree on that.
        assert href.decode() == f"/files/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl#sha256={digest}"
        base = index.url.removesuffix("/simple/")
        assert _get(base + href.decode().split("#")[0]) == (200, b"torch wheel")
        assert index.misses() == []


def test_an_unnormalized_name_is_redirected_and_a_missing_project_is_a_miss(index: SimpleIndex) -> None:
    with index:
        status, page = _get(f"{index.url}Prometheus_Client/")  # urllib follows the 301
        assert status == 200 and b"prometheus_client-0.26.0-py3-none-any.whl" in page
        assert _get(f"{index.url}numpy/")[0] == 404
        assert _get(index.url.replace("/simple/", "/files/.made-for"))[0] == 404
    assert index.misses() == [
        "GET /simple/Prometheus_Client/: 301",
        "GET /simple/numpy/: 404",
        "GET /files/.made-for: 404",
    ]
