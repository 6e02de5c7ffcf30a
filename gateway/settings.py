"""Gateway runtime settings, read once from the environment."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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
    # TorchServe's responseTimeout for the model (handler/model-config.yaml; a test checks they
    # agree). TorchServe answers a batch that outlives it with the same 500 "Worker died." as
    # a crash; one that comes this late is the model running out of time: 504, not 502.
    model_response_timeout_s: float = 120.0
    # Uploads being read, checked or cleaned at once; more get 503 at once (gateway/admission.py).
    # 16: on 2 cores a 3-megapixel photo takes about 1.4 s, so the last admitted waits about
    # 20 s, well inside inference_timeout_s; it also caps request bodies held to 16 x 32 MiB.
    max_in_flight: int = 16
    connect_timeout_s: float = 5.0
    ready_timeout_s: float = 10.0
    # A connection that has not finished sending a request's headers (slowloris) or sits
    # idle between requests is closed after this.
    idle_timeout_s: float = 10.0
    # An upload's body must have arrived within this (a phone sends 10 MB in about 40 s at
    # 2 Mbit/s); a slower one is 408 and gives its slots back.
    upload_timeout_s: float = 60.0
    # An ALTCHA proof of work on every upload (gateway/proof_of_work.py); off for a private
    # deployment or a benchmark.
    proof_of_work: bool = True
    # Signs challenges; "" makes create_app generate one, so each start invalidates old ones.
    # Replicas that share a Redis must share the key too.
    proof_of_work_key: str = ""
    # PBKDF2-SHA-256 iterations per attempt; the derived key must start with one zero byte,
    # so a solution takes 256 attempts on average (README: Proof of work).
    proof_of_work_cost: int = 1000
    proof_of_work_expiry_s: int = 300
    # Uploads per client a minute, averaged over ten minutes; 0 turns every per-client limit
    # off. Up to rate_limit_burst of them may come within any one minute.
    rate_limit_per_minute: int = 30
    rate_limit_burst: int = 40
    # Uploads of one client inside the gateway at once (the page sends 2 at a time).
    max_uploads_per_client: int = 4
    # Peers whose X-Forwarded-For is believed (a reverse proxy in front of the gateway).
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # "" keeps limits and spent proofs of work in this process; redis://host:port/db shares
    # them between replicas.
    redis_url: str = ""

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
            model_response_timeout_s=positive_float(
                env, "GATEWAY_MODEL_RESPONSE_TIMEOUT_S", defaults.model_response_timeout_s
            ),
            max_in_flight=_positive_int(env, "GATEWAY_MAX_IN_FLIGHT", defaults.max_in_flight),
            idle_timeout_s=positive_float(env, "GATEWAY_IDLE_TIMEOUT_S", defaults.idle_timeout_s),
            upload_timeout_s=positive_float(
                env, "GATEWAY_UPLOAD_TIMEOUT_S", defaults.upload_timeout_s
            ),
            proof_of_work=_on_off(env, "GATEWAY_PROOF_OF_WORK", defaults.proof_of_work),
            proof_of_work_key=env.get("GATEWAY_PROOF_OF_WORK_KEY", defaults.proof_of_work_key),
            proof_of_work_cost=_positive_int(
                env, "GATEWAY_PROOF_OF_WORK_COST", defaults.proof_of_work_cost
            ),
            proof_of_work_expiry_s=_positive_int(
                env, "GATEWAY_PROOF_OF_WORK_EXPIRY_S", defaults.proof_of_work_expiry_s
            ),
            rate_limit_per_minute=_whole_number(
                env, "GATEWAY_RATE_LIMIT_PER_MINUTE", defaults.rate_limit_per_minute
            ),
            rate_limit_burst=_positive_int(
                env, "GATEWAY_RATE_LIMIT_BURST", defaults.rate_limit_burst
            ),
            max_uploads_per_client=_positive_int(
                env, "GATEWAY_MAX_UPLOADS_PER_CLIENT", defaults.max_uploads_per_client
            ),
            trusted_proxies=_networks(env, "GATEWAY_TRUSTED_PROXIES", defaults.trusted_proxies),
            redis_url=env.get("GATEWAY_REDIS_URL", defaults.redis_url),
        )

    @property
    def max_answer_bytes(self) -> int:
        """The largest answer taken from TorchServe: an RGBA PNG of max_pixels that does not
        compress (4 bytes a pixel, 5% for filter bytes and chunks) and 64 KiB of headers.
        TorchServe's max_response_size must allow it (tests/test_config_agreement.py)."""
        return math.ceil(4 * self.max_pixels * 1.05) + 64 * 1024

    @property
    def rate_limited(self) -> bool:
        """Whether the per-client limits apply (GATEWAY_RATE_LIMIT_PER_MINUTE=0 turns them off)."""
        return self.rate_limit_per_minute > 0


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, got {raw!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _whole_number(env, name, default)
    if value == 0:
        raise ValueError(f"{name} must be greater than 0, got {env[name]!r}")
    return value


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    words = {"on": True, "off": False}
    if raw.strip().lower() not in words:
        raise ValueError(f"{name} must be on or off, got {raw!r}")
    return words[raw.strip().lower()]


def _networks(
    env: Mapping[str, str], name: str, default: tuple[IPNetwork, ...]
) -> tuple[IPNetwork, ...]:
    """Comma-separated addresses or CIDR networks, e.g. "10.0.0.0/8, ::1"."""
    raw = env.get(name)
    if raw is None:
        return default
    try:
        return tuple(
            ipaddress.ip_network(item.strip(), strict=False)
            for item in raw.split(",")
            if item.strip()
        )
    except ValueError:
        raise ValueError(f"{name} must list IP addresses or networks, got {raw!r}") from None


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
