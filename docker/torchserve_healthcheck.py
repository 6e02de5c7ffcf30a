"""TorchServe's container healthcheck: /ping answers Healthy, then the model cleans a real image.

    python3 torchserve_healthcheck.py /etc/clearmark/config.properties /opt/model_store

The port is the inference_address of the config TorchServe runs with; the model is the one
archive in the model store (TorchServe registers it under the archive's name). Exit 0 when both
pass, 1 with the reason otherwise.
"""

from __future__ import annotations

import io
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from PIL import Image

from serving.torchserve import port_of, read_properties

TIMEOUT_S = 20


def model_name(model_store: Path) -> str:
    archives = sorted(model_store.glob("*.mar"))
    if len(archives) != 1:
        raise ValueError(f"expected one .mar in {model_store}, found {len(archives)}")
    return archives[0].stem


def probe_png() -> bytes:
    """An 8x8 grey RGB PNG: small, but it goes through decode, detection and encode."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def check(base_url: str, model: str) -> str | None:
    """None when TorchServe is healthy and cleans the probe into a PNG, else why not."""
    try:
        with urllib.request.urlopen(f"{base_url}/ping", timeout=TIMEOUT_S) as response:
            status = json.load(response).get("status")
        if status != "Healthy":
            return f"/ping says {status!r}"
        request = urllib.request.Request(
            f"{base_url}/predictions/{model}", data=probe_png(),
            headers={"Content-Type": "image/png"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = response.read()
            content_type = response.headers.get("Content-Type", "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{base_url}: {exc}"
    if not content_type.startswith("image/png") or not body.startswith(b"\x89PNG"):
        return f"the prediction answered {content_type!r}, not a PNG"
    return None


def main() -> int:
    config, model_store = (Path(arg) for arg in sys.argv[1:3])
    port = port_of(read_properties(config)["inference_address"])
    failure = check(f"http://127.0.0.1:{port}", model_name(model_store))
    if failure is not None:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
