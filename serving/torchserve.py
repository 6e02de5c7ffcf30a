"""Start and stop a TorchServe process: config, ports, logs and every child process.

TorchServe's CLI starts a Java frontend, which starts Python workers. All three run in a
process group of their own, so stopping kills the whole group and leaves nothing behind.
Its pid file, logs and config snapshot all go to the run folder, never the source tree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config.properties"
# Ports field -> config.properties key; an *_address key holds a URL, a *_port key a number.
PORT_KEYS = {
    "inference": "inference_address",
    "management": "management_address",
    "metrics": "metrics_address",
    "grpc_inference": "grpc_inference_port",
    "grpc_management": "grpc_management_port",
}


def read_properties(path: Path) -> dict[str, str]:
    """Parse a Java .properties file of ``key=value`` lines (``#`` starts a comment line)."""
    properties = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            properties[key.strip()] = value.strip()
    return properties


def port_of(value: str) -> int:
    """The port in ``http://host:port`` or a bare ``port``."""
    return int(value.rsplit(":", 1)[-1])


def _setting(key: str, port: int) -> str:
    return f"http://127.0.0.1:{port}" if key.endswith("_address") else str(port)


@dataclass(frozen=True)
class Ports:
    inference: int
    management: int
    metrics: int
    grpc_inference: int
    grpc_management: int

    @classmethod
    def from_env(cls, env: Mapping[str, str], config: Path = CONFIG) -> Ports:
        """config.properties' ports, each replaced by TORCHSERVE_<NAME>_PORT when set."""
        properties = read_properties(config)
        ports = {}
        for name, key in PORT_KEYS.items():
            variable = f"TORCHSERVE_{name.upper()}_PORT"
            ports[name] = int(env[variable]) if env.get(variable) else port_of(properties[key])
        return cls(**ports)


def run_config(config: Path, ports: Ports, overrides: Mapping[str, str] | None = None) -> str:
    """config.properties with every port moved to ``ports``, on loopback, and the keys of
    ``overrides`` (tests: a short queue) set to their values."""
    lines = []
    for line in config.read_text().splitlines():
        key = line.partition("=")[0].strip()
        for name, port_key in PORT_KEYS.items():
            if key == port_key:
                line = f"{key}={_setting(key, getattr(ports, name))}"
        if overrides and key in overrides and not line.lstrip().startswith("#"):
            line = f"{key}={overrides[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


class TorchServeError(RuntimeError):
    pass


class TorchServe:
    """One TorchServe with one model archive; use as a context manager."""

    def __init__(
        self,
        model_store: Path,
        archive: str,
        run_dir: Path,
        ports: Ports,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.model_store = model_store.resolve()
        self.archive = archive
        self.run_dir = run_dir.resolve()
        self.ports = ports
        self.overrides = dict(overrides or {})
        self.log_dir = self.run_dir / "logs"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.management}"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "config.properties"
        config.write_text(run_config(CONFIG, self.ports, self.overrides))
        # TMPDIR holds TorchServe's pid file: a private one lets several run side by side.
        env = {
            **os.environ,
            "LOG_LOCATION": str(self.log_dir),
            "METRICS_LOCATION": str(self.log_dir),
            "TMPDIR": str(self.run_dir),
        }
        command = [
            str(Path(sys.executable).with_name("torchserve")),
            "--start",
            "--foreground",
            "--ncs",
            "--ts-config", str(config),
            "--model-store", str(self.model_store),
            "--models", self.archive,
        ]  # fmt: skip
        with open(self.log_dir / "torchserve-console.log", "ab") as console:
            self.process = subprocess.Popen(
                command,
                cwd=self.run_dir,
                env=env,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def worker_status(self, model_name: str) -> list[str]:
        """Status of each worker of ``model_name`` per the management API ([] if not loaded)."""
        url = f"{self.management_url}/models/{model_name}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                described = json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return []
        return [worker.get("status", "") for model in described for worker in model["workers"]]

    def wait_until_ready(self, model_name: str, timeout_s: float = 180) -> None:
        """Block until a worker of the model is READY. /ping says Healthy earlier than that."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise TorchServeError(f"TorchServe exited early.{self.worker_errors()}")
            if "READY" in self.worker_status(model_name):
                return
            time.sleep(0.5)
        raise TorchServeError(f"no READY worker after {timeout_s:.0f} s.{self.worker_errors()}")

    def worker_errors(self, lines: int = 5) -> str:
        """The last error lines the model's workers logged, to say why they did not start."""
        model_log = self.log_dir / "model_log.log"
        errors = []
        if model_log.is_file():
            errors = [line for line in model_log.read_text(errors="replace").splitlines()
                      if "Error" in line or "Exception" in line]  # fmt: skip
        return f" Logs: {self.log_dir}" + "".join(f"\n  {line}" for line in errors[-lines:])

    def stop(self, timeout_s: float = 20) -> None:
        """Terminate the whole process group (CLI, Java frontend, Python workers) and wait."""
        if self.process is None:
            return
        group = self.process.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            if self._wait_for_group_exit(group, timeout_s):
                break
        self.process.wait()
        self.process = None

    def _wait_for_group_exit(self, group: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            self.process.poll()  # reap the CLI: a zombie still counts as a group member
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        return False

    def __enter__(self) -> TorchServe:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
