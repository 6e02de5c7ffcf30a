"""Settings.from_env: defaults, overrides, and refusal of bad values."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.settings import Settings


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.torchserve_url == "http://127.0.0.1:8080"
    assert settings.model_name == "clearmark"
    assert settings.max_upload_bytes == 32 * 1024 * 1024
    assert settings.max_pixels == 4096 * 4096
    assert settings.inference_timeout_s == 120.0
    assert settings.connect_timeout_s == 5.0
    assert settings.ready_timeout_s == 10.0
    assert settings.max_in_flight == 16
    assert settings.proof_of_work is True
    assert settings.proof_of_work_key == ""  # generated at start
    assert settings.proof_of_work_expiry_s == 300
    assert settings.rate_limit_per_minute == 30
    assert settings.rate_limit_burst == 40
    assert settings.max_uploads_per_client == 4
    assert settings.trusted_proxies == ()
    assert settings.redis_url == ""
    assert (settings.idle_timeout_s, settings.upload_timeout_s) == (10.0, 60.0)


def test_abuse_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "GATEWAY_PROOF_OF_WORK": "OFF",
            "GATEWAY_PROOF_OF_WORK_KEY": "k",
            "GATEWAY_PROOF_OF_WORK_COST": "5000",
            "GATEWAY_PROOF_OF_WORK_EXPIRY_S": "60",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
            "GATEWAY_RATE_LIMIT_BURST": "5",
            "GATEWAY_MAX_UPLOADS_PER_CLIENT": "1",
            "GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "GATEWAY_REDIS_URL": "redis://cache:6379/0",
            "GATEWAY_IDLE_TIMEOUT_S": "3",
            "GATEWAY_UPLOAD_TIMEOUT_S": "30.5",
        }
    )

    assert settings.proof_of_work is False
    assert (settings.proof_of_work_key, settings.proof_of_work_cost) == ("k", 5000)
    assert settings.proof_of_work_expiry_s == 60
    assert settings.rate_limit_per_minute == 0 and not settings.rate_limited
    assert (settings.rate_limit_burst, settings.max_uploads_per_client) == (5, 1)
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert settings.redis_url == "redis://cache:6379/0"
    assert (settings.idle_timeout_s, settings.upload_timeout_s) == (3.0, 30.5)


def test_environment_overrides() -> None:
    settings = Settings.from_env(
        {
            "GATEWAY_HOST": "0.0.0.0",
            "GATEWAY_PORT": "9000",
            "TORCHSERVE_HOST": "torchserve",
            "TORCHSERVE_INFERENCE_PORT": "18080",
            "CLEARMARK_MODEL_NAME": "clearmark-v2",
            "GATEWAY_MAX_UPLOAD_BYTES": "1048576",
            "GATEWAY_MAX_PIXELS": "1000000",
            "GATEWAY_INFERENCE_TIMEOUT_S": "2.5",
            "GATEWAY_MAX_IN_FLIGHT": "3",
        }
    )

    assert settings.host == "0.0.0.0"
    assert settings.port == 9000
    assert settings.torchserve_url == "http://torchserve:18080"
    assert settings.model_name == "clearmark-v2"
    assert settings.max_upload_bytes == 1_048_576
    assert settings.max_pixels == 1_000_000
    assert settings.inference_timeout_s == 2.5
    assert settings.max_in_flight == 3


def test_torchserve_host_alone_keeps_default_port() -> None:
    assert Settings.from_env({"TORCHSERVE_HOST": "ts"}).torchserve_url == "http://ts:8080"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEWAY_PORT", "eighty"),
        ("GATEWAY_PORT", "0"),
        ("GATEWAY_PORT", "70000"),
        ("TORCHSERVE_INFERENCE_PORT", "-1"),
        ("TORCHSERVE_INFERENCE_PORT", "8080.5"),
        ("GATEWAY_MAX_UPLOAD_BYTES", "32MiB"),
        ("GATEWAY_MAX_UPLOAD_BYTES", "0"),
        ("GATEWAY_MAX_PIXELS", "-16777216"),
        ("GATEWAY_MAX_PIXELS", ""),
        ("GATEWAY_INFERENCE_TIMEOUT_S", "soon"),
        ("GATEWAY_INFERENCE_TIMEOUT_S", "0"),
        ("GATEWAY_INFERENCE_TIMEOUT_S", "inf"),
        ("GATEWAY_INFERENCE_TIMEOUT_S", "nan"),
        ("GATEWAY_MAX_IN_FLIGHT", "0"),
        ("GATEWAY_MAX_IN_FLIGHT", "many"),
        ("GATEWAY_PROOF_OF_WORK", "maybe"),
        ("GATEWAY_PROOF_OF_WORK_COST", "0"),
        ("GATEWAY_RATE_LIMIT_PER_MINUTE", "-1"),
        ("GATEWAY_RATE_LIMIT_BURST", "0"),
        ("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("GATEWAY_TRUSTED_PROXIES", "proxy.example"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
