"""The gateway's container healthcheck: its /readyz, where the model has just cleaned a tiny
test image through TorchServe. The port is the gateway's own setting (GATEWAY_PORT or its
default), read the way the gateway reads it. Exit 0 when ready, 1 with the reason otherwise."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from gateway.settings import Settings

TIMEOUT_S = 20


def main() -> int:
    url = f"http://127.0.0.1:{Settings.from_env().port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
