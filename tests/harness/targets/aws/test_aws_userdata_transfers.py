"""The bootstrap's transfers, run with bash against a real HTTP server on 127.0.0.1.

Before siliconbench is installed the instance moves objects through presigned URLs with ``curl``
(or the image's ``python3``). S3 answers a request on the wrong host with a 307 redirect and a bad
or expired signature with 403 and an XML error body (Amazon S3 API Reference, "Error responses";
User Guide, "Virtual hosting of buckets": "temporary redirect"). ``curl`` without ``-L`` treats a
3xx as success and without ``-f`` saves a 4xx's body as if it were the object, so the old
``curl -fsS`` stored S3's XML error as ``bundle.tar.gz``. The server here answers 200, 307 and 403
on cue; the script's own ``http``, ``put`` and ``heartbeat`` functions are cut out of the rendered
user data and run as they are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from harness.targets.aws.userdata import Bootstrap, PresignedUrls, render_user_data

BUNDLE = b"\x1f\x8b not really a tarball, but the right bytes"
FORBIDDEN = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code></Error>'


class _S3Cues(BaseHTTPRequestHandler):
    """``/ok/...`` 200; ``/moved/...`` 307 to ``/ok/...``; ``/moved-bad/...`` 307 to ``/denied/...``
    (a redirect to the regional host, where a signature made for the global one does not match);
    ``/denied/...`` 403 with S3's XML error; ``/loop/...`` 307 to itself."""

    stored: ClassVar[dict[str, bytes]] = {}
    #: HTTP/1.1, as S3 speaks it: curl's ``Expect: 100-continue`` on PUTs gets its answer at once.
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"", location: str | None = None) -> None:
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, body: bytes | None) -> None:
        cue, _, rest = self.path.lstrip("/").partition("/")
        if cue == "ok":
            if body is not None:
                self.stored[rest.split("?")[0]] = body
            self._answer(200, b"" if body is not None else BUNDLE)
        elif cue == "moved":
            self._answer(307, location=f"/ok/{rest}")
        elif cue == "moved-bad":
            self._answer(307, location=f"/denied/{rest}")
        elif cue == "loop":
            self._answer(307, location=self.path)
        else:
            self._answer(403, FORBIDDEN)

    def do_GET(self) -> None:
        self._route(None)

    def do_PUT(self) -> None:
        self._route(self.rfile.read(int(self.headers.get("Content-Length", "0"))))


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _S3Cues)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _functions(*names: str) -> str:
    script = render_user_data(
        Bootstrap(
            bucket="b",
            prefix="p",
            region="us-west-2",
            kind="neuron",
            run_id="r1",
            instance_type="inf2.xlarge",
            watchdog_minutes=60,
            urls=PresignedUrls(bundle="u", heartbeat="u", error="u", log="u"),
            probe="trace",
        )
    )
    parts = []
    for name in names:
        match = re.search(rf"^{name}\(\) \{{.*?^\}}\n", script, re.S | re.M)
        assert match is not None, name
        parts.append(match.group(0))
    return "".join(parts)


def _bin(tmp_path: Path, with_curl: bool) -> Path:
    """A PATH with the tools the images have; without curl, python3 is the fallback."""
    folder = tmp_path / ("bin-curl" if with_curl else "bin-python")
    if folder.exists():
        return folder
    folder.mkdir()
    tools = ["date", "tr", "cut", "rm", "cat", "printf"] + (["curl"] if with_curl else [])
    for tool in tools:
        found = shutil.which(tool, path="/usr/bin:/bin")
        if found:
            (folder / tool).symlink_to(found)
    (folder / "python3").symlink_to(sys.executable)
    return folder


def _bash(tmp_path: Path, program: str, with_curl: bool = True) -> subprocess.CompletedProcess[str]:
    prelude = 'set -uo pipefail\nHTTP_ERROR=""\nREADY=""\nPY=""\n' + _functions(
        "http", "put", "now", "clean", "heartbeat"
    )
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", "-c", prelude + program],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(_bin(tmp_path, with_curl)), "HOME_DIR": str(tmp_path)},
    )


@pytest.fixture(params=["curl", "python3"])
def client(request: pytest.FixtureRequest) -> bool:
    if request.param == "curl" and shutil.which("curl", path="/usr/bin:/bin") is None:
        pytest.skip("no curl on this machine")
    return bool(request.param == "curl")


def test_a_get_follows_a_redirect_to_the_object(tmp_path: Path, s3: str, client: bool) -> None:
    out = tmp_path / "bundle.tar.gz"
    done = _bash(tmp_path, f'http get "{s3}/moved/r1/bundle.tar.gz?X-Amz-Signature=abc" "{out}"; echo "rc=$?"', client)
    assert done.stdout.strip() == "rc=0", done
    assert out.read_bytes() == BUNDLE


@pytest.mark.parametrize(
    ("cue", "status"),
    [("denied", "403"), ("moved-bad", "403")],
)
def test_a_get_answered_with_an_error_fails_in_one_line_naming_the_object(
    tmp_path: Path, s3: str, client: bool, cue: str, status: str
) -> None:
    out = tmp_path / "bundle.tar.gz"
    url = f"{s3}/{cue}/r1/bundle.tar.gz?X-Amz-Signature=secret"
    done = _bash(tmp_path, f'http get "{url}" "{out}"; echo "rc=$?"; echo "error=$HTTP_ERROR"', client)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3, done
    assert lines[0].startswith(f"GET {s3}/{cue}/r1/bundle.tar.gz failed: HTTP {status} (exit "), done
    assert "secret" not in done.stdout, "the signature stays out of the log"
    assert lines[1] == "rc=1" and lines[2] == f"error={lines[0]}"
    assert not out.exists(), "S3's XML error body is never left behind as the object"


def test_a_redirect_that_never_ends_is_a_failure(tmp_path: Path, s3: str) -> None:
    if shutil.which("curl", path="/usr/bin:/bin") is None:
        pytest.skip("no curl on this machine")
    done = _bash(tmp_path, f'http get "{s3}/loop/r1/bundle.tar.gz" "{tmp_path}/b"; echo "rc=$?"')
    assert done.stdout.strip().splitlines()[-1] == "rc=1", done
    assert "failed: HTTP 307" in done.stdout


def test_the_old_curl_line_would_have_stored_the_error_body(tmp_path: Path, s3: str) -> None:
    """The wrong belief, run: ``curl -fsS`` without ``-L`` takes a 307 as success."""
    curl = shutil.which("curl", path="/usr/bin:/bin")
    if curl is None:
        pytest.skip("no curl on this machine")
    out = tmp_path / "bundle.tar.gz"
    done = subprocess.run([curl, "-fsS", "--retry", "3", "-o", str(out), f"{s3}/moved/r1/bundle.tar.gz"], timeout=60)
    assert done.returncode == 0 and out.read_bytes() != BUNDLE


def test_puts_follow_redirects_and_fail_on_errors(tmp_path: Path, s3: str, client: bool) -> None:
    body = tmp_path / "error.json"
    body.write_text('{"phase": "download"}\n')
    _S3Cues.stored.clear()
    done = _bash(
        tmp_path,
        f'http put "{body}" "{s3}/ok/r1/error.json?sig=1"; echo "rc=$?"\n'
        f'http put "{body}" "{s3}/denied/r1/log?sig=1"; echo "rc=$?"\n',
        client,
    )
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "rc=0" and _S3Cues.stored["r1/error.json"] == body.read_bytes(), done
    assert lines[1].startswith(f"PUT {s3}/denied/r1/log failed: HTTP 403") and lines[2] == "rc=1", done
    if client:  # curl re-sends the body after a 307; urllib follows redirects for GET only
        _S3Cues.stored.clear()
        done = _bash(tmp_path, f'http put "{body}" "{s3}/moved/r1/error.json"; echo "rc=$?"')
        assert done.stdout.strip() == "rc=0" and _S3Cues.stored["r1/error.json"] == body.read_bytes(), done


def test_a_heartbeat_that_is_not_stored_says_so(tmp_path: Path, s3: str, client: bool) -> None:
    _S3Cues.stored.clear()
    done = _bash(
        tmp_path,
        f'HEARTBEAT_URL="{s3}/ok/r1/heartbeat.json?sig=1"; heartbeat bootstrapping "fetching"; echo "rc=$?"\n'
        f'HEARTBEAT_URL="{s3}/denied/r1/heartbeat.json?sig=1"; heartbeat bootstrapping "again"; echo "rc=$?"\n',
        client,
    )
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "rc=0" and b'"state": "bootstrapping"' in _S3Cues.stored["r1/heartbeat.json"], done
    assert lines[1] == f"PUT {s3}/denied/r1/heartbeat.json failed: HTTP 403 (exit 22)" and lines[2] == "rc=1", done
