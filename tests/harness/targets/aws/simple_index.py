"""A package index as a private mirror of PyPI serves one: a folder of wheels as a PEP 503 "simple
repository", over HTTP on the played instance's loopback.

What pip asks of an index (PEP 503, packaging.python.org/specifications/simple-repository-api):
``GET /simple/`` lists the projects; ``GET /simple/<name>/``, with the name normalized
(``re.sub(r"[-_.]+", "-", name).lower()``), is an HTML page of anchors to that project's files,
each URL percent-encoded (a local version's ``+`` is ``%2B``, which pip sends back so) and ending in
``#sha256=<hex>`` so pip checks what it downloads; a request for a name not
normalized is redirected to the normalized one. Files are served from ``/files/<filename>``.

Every request is recorded with its answer, so a test can tell that the bootstrap asked for nothing
the wheelhouse lacks (a 404 here is a package a real mirror of PyPI would have had to hold).
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["SimpleIndex", "normalize"]


def normalize(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _project(filename: str) -> str:
    """The normalized project of a wheel (``{name}-{version}(-{build})?-{tags}.whl``, PEP 427) or an
    sdist (``{name}-{version}.tar.gz``); names in file names have ``-`` escaped as ``_``."""
    return normalize(filename.split("-", 1)[0])


class SimpleIndex:
    """``folder``'s wheels and sdists served on ``127.0.0.1``; ``url`` is the index URL for pip."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.projects: dict[str, list[str]] = {}
        for path in sorted(folder.iterdir()):
            if path.name.endswith((".whl", ".tar.gz", ".zip")):
                self.projects.setdefault(_project(path.name), []).append(path.name)
        #: (method, path, status) of every request, in order.
        self.requests: list[tuple[str, str, int]] = []
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def __enter__(self) -> SimpleIndex:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def misses(self) -> list[str]:
        """The requests answered with anything but 200 (a redirect to a normalized name included)."""
        return [f"{method} {path}: {status}" for method, path, status in self.requests if status != 200]

    def _sha256(self, filename: str) -> str:
        with self._lock:
            known = self._hashes.get(filename)
        if known is None:
            digest = hashlib.sha256()
            with (self.folder / filename).open("rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
            known = digest.hexdigest()
            with self._lock:
                self._hashes[filename] = known
        return known

    def _page(self, title: str, links: list[tuple[str, str]]) -> bytes:
        anchors = "\n".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a><br/>' for href, text in links)
        return (
            f'<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
            f"<title>{html.escape(title)}</title></head><body>\n{anchors}\n</body></html>\n"
        ).encode()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = urllib.parse.unquote(request.path.split("?", 1)[0])
        status = self._serve(request, path)
        with self._lock:
            self.requests.append((request.command, path, status))

    def _serve(self, request: BaseHTTPRequestHandler, path: str) -> int:
        if path == "/simple/":
            body = self._page("Simple index", [(f"/simple/{name}/", name) for name in self.projects])
            return _send(request, 200, body, "text/html")
        match = re.fullmatch(r"/simple/([^/]+)/?", path)
        if match:
            name = match.group(1)
            if name != normalize(name) or not path.endswith("/"):
                request.send_response(301)
                request.send_header("Location", f"/simple/{normalize(name)}/")
                request.send_header("Content-Length", "0")
                request.end_headers()
                return 301
            files = self.projects.get(name)
            if files is None:
                return _send(request, 404, b"not in this wheelhouse\n", "text/plain")
            links = [(f"/files/{urllib.parse.quote(file)}#sha256={self._sha256(file)}", file) for file in files]
            return _send(request, 200, self._page(f"Links for {name}", links), "text/html")
        match = re.fullmatch(r"/files/([^/]+)", path)
        if match and (self.folder / match.group(1)).is_file() and _project(match.group(1)) in self.projects:
            file = self.folder / match.group(1)
            request.send_response(200)
            request.send_header("Content-Type", "application/octet-stream")
            request.send_header("Content-Length", str(file.stat().st_size))
            request.end_headers()
            with file.open("rb") as source:
                shutil.copyfileobj(source, request.wfile, 1 << 20)
            return 200
        return _send(request, 404, b"not found\n", "text/plain")


def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> int:
    request.send_response(status)
    request.send_header("Content-Type", f"{kind}; charset=utf-8")
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
    return status
