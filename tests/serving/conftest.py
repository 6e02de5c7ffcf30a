"""The gateway's fake TorchServe and test settings, shared with tests/gateway."""

from tests.gateway.conftest import closed_port_url, fake_torchserve, settings

__all__ = ["closed_port_url", "fake_torchserve", "settings"]
