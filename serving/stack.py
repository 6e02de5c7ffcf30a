"""Start ``python -m serving`` as a child process, wait for its gateway, stop it: for the tools
that drive the whole stack from outside (the load test, the benchmark).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from serving.__main__ import READY_TIMEOUT_S, gateway_ready
from serving.torchserve import REPO

# The launcher stops TorchServe and the gateway on SIGTERM; past this it is killed.
STOP_TIMEOUT_S = 60
# A stack started to be measured is a private deployment: no proof of work to solve (its CPU
# would be the clients' on the same cores) and no per-client limit (every request comes from
# one address). Each tool says so when it starts one.
MEASUREMENT_ENV = {"GATEWAY_PROOF_OF_WORK": "off", "GATEWAY_RATE_LIMIT_PER_MINUTE": "0"}
MEASUREMENT_NOTE = (
    "proof of work off, per-client limits off: GATEWAY_PROOF_OF_WORK=off "
    "GATEWAY_RATE_LIMIT_PER_MINUTE=0"
)


class GatewayError(RuntimeError):
    """No ready gateway to drive: none running, or the stack did not start."""


def exit_status(run: Callable[[], int]) -> int:
    """``run()``'s exit status for a command-line tool that drives the stack: SIGTERM ends it
    like Ctrl-C (130; the stack's ``finally`` blocks stop it), and a gateway that is not there
    or does not start is one line on stderr and status 1."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except GatewayError as exc:
        print(exc, file=sys.stderr)
        return 1


def start_stack(
    host: str,
    log: Path,
    env: Mapping[str, str] | None = None,
    options: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """``python -m serving [options]`` listening at ``host``, with MEASUREMENT_ENV and ``env``
    added to ours (e.g. TORCHSERVE_*_PORT), in its own process group (Ctrl-C in the terminal
    reaches only us; we stop it)."""
    url = urlsplit(host)
    gateway = {"GATEWAY_HOST": url.hostname or "", "GATEWAY_PORT": str(url.port or 80)}
    with log.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "serving", *options],
            cwd=REPO,
            env={**os.environ, **MEASUREMENT_ENV, **(env or {}), **gateway},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_ready(host: str, stack: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            exited = f"python -m serving exited with status {stack.returncode}"
            raise GatewayError(f"the stack did not start: {exited}; see {log}")
        if gateway_ready(host):
            return
        time.sleep(1)
    late = f"{host} not ready within {READY_TIMEOUT_S} s"
    raise GatewayError(f"the stack did not start: {late}; see {log}")


def stop_stack(stack: subprocess.Popen[bytes]) -> None:
    if stack.poll() is not None:
        return
    print("stopping the stack ...", flush=True)
    stack.terminate()
    try:
        stack.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(stack.pid, signal.SIGKILL)
        stack.wait()
