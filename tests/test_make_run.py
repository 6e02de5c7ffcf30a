"""`make run`'s launcher: serves the page once a real prediction works, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from handler.archive import build_archive
from serving.torchserve import PORT_KEYS, REPO
from tests.test_integration import free_ports

pytestmark = pytest.mark.integration


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serves_then_stops_cleanly_on_ctrl_c(tmp_path):
    store = tmp_path / "store"
    build_archive(REPO / "model" / "clearmark.pt", store, restorer=REPO / "model" / "restorer.pt")
    gateway_port, *torchserve_ports = free_ports(1 + len(PORT_KEYS))
    env = {**os.environ, "GATEWAY_PORT": str(gateway_port)}
    for name, port in zip(PORT_KEYS, torchserve_ports, strict=True):
        env[f"TORCHSERVE_{name.upper()}_PORT"] = str(port)
    with subprocess.Popen(
        [sys.executable, "-m", "serving", "--model-store", str(store),
         "--run-dir", str(tmp_path / "run")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as launcher:  # fmt: skip
        try:
            assert launcher.stdout is not None
            deadline = time.monotonic() + 240
            for line in launcher.stdout:
                if "clearmark is ready" in line:
                    break
                assert time.monotonic() < deadline, "not ready in time"
            else:
                pytest.fail(f"launcher exited with {launcher.wait()} before it was ready")
            assert f"http://127.0.0.1:{gateway_port}" in line
            with urllib.request.urlopen(f"http://127.0.0.1:{gateway_port}/", timeout=10) as page:
                assert page.status == 200 and b"<form" in page.read()
            launcher.send_signal(signal.SIGINT)
            launcher.communicate(timeout=60)  # drains the pipe while it shuts down
            assert launcher.returncode == 0
        finally:
            if launcher.poll() is None:
                # SIGTERM lets the launcher stop TorchServe too; SIGKILL would orphan it.
                launcher.terminate()
                launcher.communicate(timeout=60)
    assert not port_open(gateway_port)
    assert not any(port_open(port) for port in torchserve_ports), "TorchServe left running"
