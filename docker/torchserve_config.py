"""The container's config.properties: the repo's, with the inference API listening on every
interface of the container (compose's internal network); management, metrics and gRPC stay on
the container's own loopback, out of reach of every other container.

    python3 docker/torchserve_config.py config.properties > /etc/clearmark/config.properties
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

INFERENCE_KEY = "inference_address"
ALL_INTERFACES = "0.0.0.0"


def container_config(properties: str) -> str:
    """``properties`` with only the host of ``inference_address`` replaced (its port kept);
    every other line, comments included, as it was."""
    lines = properties.splitlines()
    replaced = 0
    for i, line in enumerate(lines):
        key, _, value = line.partition("=")
        if key.strip() == INFERENCE_KEY:
            address = urlsplit(value.strip())
            lines[i] = f"{INFERENCE_KEY}={address.scheme}://{ALL_INTERFACES}:{address.port}"
            replaced += 1
    if replaced != 1:
        raise ValueError(f"expected one {INFERENCE_KEY} line, found {replaced}")
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.stdout.write(container_config(Path(sys.argv[1]).read_text()))


if __name__ == "__main__":
    main()
