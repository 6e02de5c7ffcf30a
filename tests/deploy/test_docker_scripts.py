"""The scripts the images run: pins read from pyproject.toml, TorchServe's container config,
and its healthcheck against a stand-in TorchServe on loopback."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "docker"))
from requirements import requirements  # noqa: E402
from torchserve_config import container_config  # noqa: E402
from torchserve_healthcheck import check, model_name  # noqa: E402

PYPROJECT = """
[project]
dependencies = ["torch==2.15.0", "Pillow>=13", "opencv_python-headless>=4.10"]
"""


def test_requirements_are_the_pinned_lines_in_the_order_asked():
    assert requirements(PYPROJECT, ["pillow", "opencv-python-headless", "torch"]) == [
        "Pillow>=13",
        "opencv_python-headless>=4.10",
        "torch==2.15.0",
    ]


def test_an_undeclared_requirement_is_refused():
    with pytest.raises(KeyError, match="scipy"):
        requirements(PYPROJECT, ["torch", "scipy"])


def test_container_config_opens_only_the_inference_address():
    properties = "# comment\ninference_address=http://127.0.0.1:8123\nmetrics_address=http://127.0.0.1:8082\n"

    assert container_config(properties) == (
        "# comment\ninference_address=http://0.0.0.0:8123\nmetrics_address=http://127.0.0.1:8082\n"
    )
    with pytest.raises(ValueError, match="one inference_address"):
        container_config("metrics_address=http://127.0.0.1:8082\n")


def test_model_name_is_the_one_archive_in_the_store(tmp_path):
    (tmp_path / "clearmark.mar").write_bytes(b"")
    assert model_name(tmp_path) == "clearmark"
    (tmp_path / "other.mar").write_bytes(b"")
    with pytest.raises(ValueError, match="found 2"):
        model_name(tmp_path)


class FakeTorchServe(BaseHTTPRequestHandler):
    """Answers /ping with ``ping`` and predictions with ``answer`` (content type, body)."""

    ping = "Healthy"
    answer = ("image/png", b"\x89PNG\r\n\x1a\n")

    def do_GET(self) -> None:
        self._reply(200, "application/json", json.dumps({"status": self.ping}).encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/predictions/clearmark" or not body.startswith(b"\x89PNG"):
            self._reply(404, "application/json", b"{}")
            return
        self._reply(200, *self.answer)

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def torchserve() -> Iterator[type[FakeTorchServe]]:
    class Handler(FakeTorchServe):
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield Handler
    server.shutdown()
    server.server_close()


def test_healthy_when_ping_and_a_real_prediction_pass(torchserve):
    assert check(torchserve.url, "clearmark") is None


def test_unhealthy_when_ping_says_so(torchserve):
    torchserve.ping = "Unhealthy"
    assert check(torchserve.url, "clearmark") == "/ping says 'Unhealthy'"


def test_unhealthy_when_the_prediction_is_not_an_image(torchserve):
    torchserve.answer = ("application/json", b'{"error": "worker died"}')
    assert "not a PNG" in check(torchserve.url, "clearmark")


def test_unhealthy_when_the_model_is_not_served(torchserve):
    assert "404" in check(torchserve.url, "other")
