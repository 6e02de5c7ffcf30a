"""Settings.from_env: defaults, overrides, and refusal of bad values."""

from __future__ import annotations

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
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    settings = Settings()

    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
