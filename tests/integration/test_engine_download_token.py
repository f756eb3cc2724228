"""The Hugging Face token goes only to the host it is for, not to the CDN a download is
redirected to: two local servers on different loopback hosts (127.0.0.1 plays the Hub,
127.0.0.2 its CDN) record the Authorization header each was sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.engines import provision

TOKEN = "hf_test_token_123"
GGUF = b"GGUF" + b"\0" * 60


class Recording(ThreadingHTTPServer):
    """A server that answers GETs from `routes` (path -> (status, Location or body)) and
    keeps (path, Authorization header) for every request."""

    def __init__(self, host: str, routes: dict[str, tuple[int, bytes | str]]) -> None:
        super().__init__((host, 0), Answer)
        self.routes = routes
        self.seen: list[tuple[str, str | None]] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class Answer(BaseHTTPRequestHandler):
    server: Recording

    def do_GET(self) -> None:  # noqa: N802
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        status, answer = self.server.routes[self.path]
        self.send_response(status)
        if isinstance(answer, str):
            self.send_header("Location", answer)
            answer = b""
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def serving(server: Recording) -> Recording:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def hub_and_cdn(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Recording, Recording]]:
    """The Hub redirects within itself, then to the CDN, which serves the file."""
    cdn = serving(Recording("127.0.0.2", {"/blob/m.gguf?signed=1": (200, GGUF)}))
    hub = serving(
        Recording(
            "127.0.0.1",
            {
                "/org/repo/resolve/main/m.gguf": (302, "/org/repo/resolve/renamed/m.gguf"),
                "/org/repo/resolve/renamed/m.gguf": (302, f"{cdn.url}/blob/m.gguf?signed=1"),
            },
        )
    )
    monkeypatch.setattr(provision, "HF_HOSTS", ("127.0.0.1",))  # 127.0.0.1 plays the Hub
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield hub, cdn
    for server in (hub, cdn):
        server.shutdown()
        server.server_close()


def test_the_token_reaches_the_hub_and_not_the_cdn_it_redirects_to(
    hub_and_cdn: tuple[Recording, Recording], tmp_path: Path
) -> None:
    hub, cdn = hub_and_cdn
    target = provision.download(f"{hub.url}/org/repo/resolve/main/m.gguf", tmp_path / "m.gguf")
    assert target.read_bytes() == GGUF
    assert hub.seen == [
        ("/org/repo/resolve/main/m.gguf", f"Bearer {TOKEN}"),
        ("/org/repo/resolve/renamed/m.gguf", f"Bearer {TOKEN}"),  # same host: kept
    ]
    assert cdn.seen == [("/blob/m.gguf?signed=1", None)]
