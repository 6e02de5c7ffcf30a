"""The gateway's defaults and TorchServe's config.properties must agree."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
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


MODEL_CONFIG = CONFIG_PROPERTIES.parent / "handler" / "model-config.yaml"


def test_torchserve_can_queue_every_upload_the_gateway_admits() -> None:
    # The gateway refuses past max_in_flight with its own 503 + Retry-After; TorchServe's
    # queue must hold them all, or its 503 would come first, without Retry-After.
    queue = int(read_properties(CONFIG_PROPERTIES)["job_queue_size"])

    assert queue >= Settings().max_in_flight


def test_torchserve_may_send_every_answer_the_gateway_accepts() -> None:
    assert int(read_properties(CONFIG_PROPERTIES)["max_response_size"]) >= (
        Settings().max_answer_bytes
    )


def test_the_gateway_waits_at_least_as_long_as_torchserve_lets_a_batch_run() -> None:
    # A batch within responseTimeout is answered by TorchServe; a slower one makes TorchServe
    # restart the worker and answer an error. The gateway must not give up on it earlier.
    response_timeout_s = yaml.safe_load(MODEL_CONFIG.read_text())["responseTimeout"]

    assert Settings().inference_timeout_s >= response_timeout_s


def test_the_gateway_knows_the_models_response_timeout() -> None:
    # It tells a batch TorchServe gave up on (504) from a crashed worker (502) by this.
    response_timeout_s = yaml.safe_load(MODEL_CONFIG.read_text())["responseTimeout"]

    assert Settings().model_response_timeout_s == response_timeout_s


def test_torchserve_is_locked_down() -> None:
    properties = read_properties(CONFIG_PROPERTIES)

    for key in ("inference_address", "management_address", "metrics_address"):
        assert URL(properties[key]).host == "127.0.0.1", key
    for key in ("grpc_inference_address", "grpc_management_address"):
        assert properties[key] == "127.0.0.1", key
    assert properties["enable_model_api"] == "false"
    allowed = properties["allowed_urls"]
    for url in ("http://example.com/m.mar", "https://example.com/m.mar", "file:///tmp/m.mar"):
        assert re.fullmatch(allowed, url) is None, url
