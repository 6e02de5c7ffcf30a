"""Gateway runtime settings, read once from the environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

_DEFAULT_TORCHSERVE_HOST = "127.0.0.1"
# Must match the port of inference_address in config.properties (checked by a test).
_DEFAULT_TORCHSERVE_INFERENCE_PORT = 8080
_MAX_PORT = 65535


def _torchserve_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


@dataclass(frozen=True)
class Settings:
    """Everything the gateway can be told; the field defaults are the only defaults."""

    host: str = "127.0.0.1"
    port: int = 8000
    torchserve_url: str = _torchserve_url(
        _DEFAULT_TORCHSERVE_HOST, _DEFAULT_TORCHSERVE_INFERENCE_PORT
    )
    model_name: str = "clearmark"
    # Per file (image, mask); TorchServe's max_request_size holds both plus framing.
    max_upload_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    inference_timeout_s: float = 120.0
    # Uploads being read, checked or cleaned at once; more get 503 at once (gateway/admission.py).
    # 16: on 2 cores a 3-megapixel photo takes about 1.4 s, so the last admitted waits about
    # 20 s, well inside inference_timeout_s; it also caps request bodies held to 16 x 32 MiB.
    max_in_flight: int = 16
    connect_timeout_s: float = 5.0
    ready_timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Build settings from environment variables; unset ones keep the field defaults.

        Raises ValueError naming the variable when a value is not a positive number.
        """
        defaults = cls()
        return cls(
            host=env.get("GATEWAY_HOST", defaults.host),
            port=_port(env, "GATEWAY_PORT", defaults.port),
            torchserve_url=_torchserve_url(
                env.get("TORCHSERVE_HOST", _DEFAULT_TORCHSERVE_HOST),
                _port(env, "TORCHSERVE_INFERENCE_PORT", _DEFAULT_TORCHSERVE_INFERENCE_PORT),
            ),
            model_name=env.get("CLEARMARK_MODEL_NAME", defaults.model_name),
            max_upload_bytes=_positive_int(
                env, "GATEWAY_MAX_UPLOAD_BYTES", defaults.max_upload_bytes
            ),
            max_pixels=_positive_int(env, "GATEWAY_MAX_PIXELS", defaults.max_pixels),
            inference_timeout_s=positive_float(
                env, "GATEWAY_INFERENCE_TIMEOUT_S", defaults.inference_timeout_s
            ),
            max_in_flight=_positive_int(env, "GATEWAY_MAX_IN_FLIGHT", defaults.max_in_flight),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = _positive_int(env, name, default)
    if value > _MAX_PORT:
        raise ValueError(f"{name} must be a TCP port (1-{_MAX_PORT}), got {value}")
    return value


def positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    """The number of seconds in ``env[name]`` (``default`` when unset); a clear error otherwise."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number greater than 0, got {raw!r}")
    return value
