"""The gateway's defaults and TorchServe's config.properties must agree."""

from __future__ import annotations

from pathlib import Path

from yarl import URL

from gateway.settings import Settings
from gateway.upload import MULTIPART_OVERHEAD_BYTES
from gateway.validation import SUPPORTED_FORMATS
from handler.archive import MODEL_NAME
from handler.imaging import MIME_TYPES
from serving.torchserve import Ports, read_properties

CONFIG_PROPERTIES = Path(__file__).resolve().parent.parent / "config.properties"


def test_torchserve_accepts_the_largest_upload() -> None:
    # The gateway forwards the image and a mask, each up to max_upload_bytes, as multipart.
    properties = read_properties(CONFIG_PROPERTIES)
    largest = 2 * Settings().max_upload_bytes + MULTIPART_OVERHEAD_BYTES

    assert int(properties["max_request_size"]) >= largest


def test_torchserve_can_return_the_largest_image() -> None:
    # Worst case: an RGBA PNG of max_pixels that does not compress, plus 5% for
    # PNG filter bytes and chunk framing.
    worst_case_bytes = 4 * Settings().max_pixels * 1.05

    assert int(read_properties(CONFIG_PROPERTIES)["max_response_size"]) >= worst_case_bytes


def test_gateway_default_port_is_torchserve_inference_port() -> None:
    inference_address = URL(read_properties(CONFIG_PROPERTIES)["inference_address"])

    assert inference_address.port == URL(Settings().torchserve_url).port


def test_gateway_asks_for_the_model_the_archive_holds() -> None:
    assert Settings().model_name == MODEL_NAME


def test_torchserve_ports_follow_the_environment() -> None:
    assert Ports.from_env({}) == Ports(8080, 8081, 8082, 7070, 7071)
    assert Ports.from_env({"TORCHSERVE_MANAGEMENT_PORT": "9001"}).management == 9001


def test_gateway_accepts_exactly_what_the_handler_returns() -> None:
    assert SUPPORTED_FORMATS == MIME_TYPES
