"""``make run``: start TorchServe and the gateway, wait for a real prediction, serve until Ctrl-C.

    python -m serving [--model-store model_store] [--run-dir var/run]

Ports come from the environment (GATEWAY_PORT and TORCHSERVE_<API>_PORT for the inference,
management, metrics, grpc_inference and grpc_management APIs); defaults from config.properties
and gateway/settings.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from gateway.settings import Settings
from handler.archive import MODEL_NAME
from serving.torchserve import REPO, Ports, TorchServe, TorchServeError

READY_TIMEOUT_S = 300


def gateway_ready(base_url: str) -> bool:
    """True once the gateway's /readyz has seen TorchServe answer a real prediction."""
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=15) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def wait_for_gateway(
    base_url: str, gateway: subprocess.Popen[bytes], torchserve: TorchServe
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if gateway.poll() is not None:
            raise RuntimeError(f"the gateway exited with status {gateway.returncode}")
        if torchserve.process is None or torchserve.process.poll() is not None:
            raise TorchServeError(f"TorchServe exited; see {torchserve.log_dir}")
        if gateway_ready(base_url):
            return
        time.sleep(1)
    raise RuntimeError(f"no successful prediction within {READY_TIMEOUT_S} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-store", type=Path, default=REPO / "model_store")
    parser.add_argument("--run-dir", type=Path, default=REPO / "var" / "run")
    args = parser.parse_args()
    settings = Settings.from_env()
    ports = Ports.from_env(os.environ)
    archive = f"{MODEL_NAME}.mar"
    if not (args.model_store / archive).is_file():
        print(f"{args.model_store / archive} is missing: build it with `make run`", file=sys.stderr)
        return 1
    # Ctrl-C and SIGTERM both end the wait below; the finally blocks stop every process.
    # SIGINT is set explicitly: a shell starting us in the background would have it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    torchserve = TorchServe(args.model_store, archive, args.run_dir, ports)
    print(f"starting TorchServe (logs in {torchserve.log_dir}) ...", flush=True)
    with torchserve:
        env = {**os.environ, "TORCHSERVE_INFERENCE_PORT": str(ports.inference)}
        gateway = subprocess.Popen([sys.executable, "-m", "gateway"], env=env, cwd=REPO)
        base_url = f"http://{settings.host}:{settings.port}"
        try:
            wait_for_gateway(base_url, gateway, torchserve)
            print(f"\nclearmark is ready: {base_url}  (Ctrl-C to stop)\n", flush=True)
            gateway.wait()
            print(f"the gateway exited with status {gateway.returncode}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
            return 0
        except (RuntimeError, TorchServeError) as exc:
            print(f"clearmark failed to start: {exc}", file=sys.stderr)
            return 1
        finally:
            gateway.terminate()  # aiohttp's run_app shuts down gracefully on SIGTERM
            try:
                gateway.wait(timeout=15)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait()


if __name__ == "__main__":
    sys.exit(main())
