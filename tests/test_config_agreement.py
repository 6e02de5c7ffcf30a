"""The gateway's defaults and TorchServe's config.properties must agree."""

from __future__ import annotations

from pathlib import Path

from yarl import URL

from gateway.settings import Settings

CONFIG_PROPERTIES = Path(__file__).resolve().parent.parent / "config.properties"


def _read_properties(path: Path) -> dict[str, str]:
    properties = {}
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, _, value = stripped.partition("=")
        properties[key.strip()] = value.strip()
    return properties


def test_torchserve_accepts_the_largest_upload() -> None:
    properties = _read_properties(CONFIG_PROPERTIES)

    assert int(properties["max_request_size"]) >= Settings().max_upload_bytes


def test_torchserve_can_return_the_largest_image() -> None:
    # Worst case: an RGBA PNG of max_pixels that does not compress, plus 5% for
    # PNG filter bytes and chunk framing.
    worst_case_bytes = 4 * Settings().max_pixels * 1.05

    assert int(_read_properties(CONFIG_PROPERTIES)["max_response_size"]) >= worst_case_bytes


def test_gateway_default_port_is_torchserve_inference_port() -> None:
    inference_address = URL(_read_properties(CONFIG_PROPERTIES)["inference_address"])

    assert inference_address.port == URL(Settings().torchserve_url).port
